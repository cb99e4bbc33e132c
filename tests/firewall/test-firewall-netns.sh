#!/bin/sh
# test-firewall-netns.sh -- `dkv firewall` against the real Linux
# firewalls (nftables, iptables, ufw, firewalld), each inside a network
# namespace of its own, proven with TCP connections.
#
# For each backend: a server namespace with a baseline firewall that
# denies inbound traffic, a listener on one port inside each of dkv's
# three ranges and one outside them, and a client namespace joined to it
# by a veth pair.  Checks: before `open` nothing connects; `status` names
# the backend; after `open` (detected; one range given twice) the ranges
# connect and the outside port does not; a second `open` (with -Backend
# forced, the ranges from a manager config file with a quoted value and
# a trailing comment) changes nothing;
# `status` lists the ranges; a foreign rule the test adds survives
# `close`; after `close` the ranges are refused and no dkv rule is left;
# closing again is fine.  Once: no active firewall -> `open` exits 3 and
# `open -IfActive` exits 0; not root -> exit 4 or a privilege message.
#
# Root only (else skipped).  Nothing outside the namespaces changes
# except the machine-wide configuration of ufw (/etc/ufw,
# /etc/default/ufw) and firewalld (/etc/firewalld), which are saved first
# and restored on every exit.  firewalld runs on a private D-Bus of its
# own; every other step points D-Bus at a socket that does not exist, so
# a firewalld on the host is never asked.
#
# Environment: top_srcdir, top_builddir, DKV_EXEEXT (automake's);
# FW_TEST_BACKENDS (default "nftables iptables iptables-legacy ufw
# firewalld") to run fewer; FW_TEST_DKV, another dkv program to test.
# About 45 s (firewalld's share is about 15 s).
#
# The backends' helpers are called by name ("base_$b"), hence SC2317.
# shellcheck disable=SC2317
set -u

NAME=firewall-netns
ran=""
skipped=""

top_srcdir=$(cd "${top_srcdir:-$(dirname "$0")/../..}" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)
# ok, fail, check and skip.
# shellcheck source=/dev/null # tests/testlib.sh, checked alone
. "$top_srcdir/tests/testlib.sh"
# say TEXT: one line of output.
say() { printf '%s\n' "$*"; }

[ "$(id -u)" = 0 ] || skip "not root"
[ -z "${DKV_EXEEXT:-}" ] || skip "Windows build ($DKV_EXEEXT)"
for tool in ip python3 timeout; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool not installed"
done

DKV=${FW_TEST_DKV:-$top_builddir/dkv}
[ -x "$DKV" ] || skip "$DKV not built"

# Our own namespaces (refuse to run where netns are not allowed).
SNS=dkvfw-s-$$
CNS=dkvfw-c-$$
VS=dkvfws$$
VC=dkvfwc$$
SADDR=10.231.7.1
CADDR=10.231.7.2
ip netns add "$CNS" 2>/dev/null || skip "cannot create network namespaces"

T=$(mktemp -d /tmp/dkvfw.XXXXXX) || exit 1
NOBUS="unix:path=$T/no-such-bus"
DBUS_SYSTEM_BUS_ADDRESS=$NOBUS
export DBUS_SYSTEM_BUS_ADDRESS
listener_pid=""
dbus_pid=""
fwd_pid=""
ufw_saved=""
fwd_saved=""

# Stops PID (if any) and waits at most 5 s for it to go.
stop_pid() {
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null || return 0
    i=0
    while kill -0 "$1" 2>/dev/null && [ "$i" -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    return 0
}

# Deletes the server namespace and what runs in it.
server_down() {
    stop_pid "$listener_pid"
    listener_pid=""
    stop_pid "$fwd_pid"
    fwd_pid=""
    # Deleting the pair here is synchronous; the namespace's end is not.
    ip -n "$CNS" link del "$VC" 2>/dev/null
    ip netns del "$SNS" 2>/dev/null
    return 0
}

# Puts back a saved machine-wide directory: restore SAVED DEST.
restore_dir() {
    [ -d "$1" ] || return 0
    rm -rf "$2" && cp -a "$1" "$2"
}

# At exit: both namespaces, the private D-Bus, ufw's and firewalld's
# saved configuration put back, $T removed.
cleanup() {
    server_down
    ip netns del "$CNS" 2>/dev/null
    stop_pid "$dbus_pid"
    if [ -n "$ufw_saved" ]; then
        restore_dir "$T/etc-ufw" /etc/ufw
        [ -f "$T/default-ufw" ] && cp -p "$T/default-ufw" /etc/default/ufw
    fi
    [ -n "$fwd_saved" ] && restore_dir "$T/etc-firewalld" /etc/firewalld
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# sx CMD...: runs CMD in the server namespace.
sx() { ip netns exec "$SNS" "$@"; }


# Runs dkv in the server namespace: output in $T/out, exit code in $rc.
dkv() {
    ip netns exec "$SNS" timeout 60 "$DKV" "$@" >"$T/out" 2>&1
    rc=$?
    sed 's/^/    | /' "$T/out"
    return 0
}

# Ports: one inside each range, one outside.
RANGES="management=21001-21010,cluster=21011-21060,client=21061-21099"
P_MGMT=21005
P_CLUS=21035
P_CLI=21080
P_OUT=21200
ALL_CLOSED="$P_MGMT:closed $P_CLUS:closed $P_CLI:closed $P_OUT:closed"
RANGES_OPEN="$P_MGMT:open $P_CLUS:open $P_CLI:open $P_OUT:closed"
FOREIGN_ONLY="$P_MGMT:closed $P_CLUS:closed $P_CLI:closed $P_OUT:open"
ALL_OPEN="$P_MGMT:open $P_CLUS:open $P_CLI:open $P_OUT:open"

# Makes a fresh server namespace joined to the client's, with the
# listener running in it.
server_up() {
    ip netns add "$SNS" || return 1
    ip link add "$VS" netns "$SNS" type veth peer name "$VC" netns "$CNS" \
        || return 1
    sx ip link set lo up
    sx ip addr add "$SADDR/24" dev "$VS"
    sx ip link set "$VS" up
    ip netns exec "$CNS" ip addr add "$CADDR/24" dev "$VC"
    ip netns exec "$CNS" ip link set "$VC" up
    # Not through sx: `ip netns exec` execs, so $! is the listener.
    ip netns exec "$SNS" python3 "$top_srcdir/tests/firewall/fw-net.py" \
        listen 0.0.0.0 120 \
        "$P_MGMT" "$P_CLUS" "$P_CLI" "$P_OUT" \
        >"$T/listen.out" 2>&1 &
    listener_pid=$!
    i=0
    while ! grep -q listening "$T/listen.out" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -lt 50 ] || { say "listener did not start"; return 1; }
        sleep 0.1
    done
    return 0
}

# Probes the four ports from the client namespace; checks the answer is
# WANT.
expect_ports() {
    desc=$1
    want=$2
    got=$(ip netns exec "$CNS" python3 "$top_srcdir/tests/firewall/fw-net.py" \
              probe "$SADDR" 1 "$P_MGMT" "$P_CLUS" "$P_CLI" "$P_OUT")
    if [ "$got" = "$want" ]; then
        ok "$desc ($got)"
    else
        fail "$desc: got '$got', want '$want'"
    fi
}

# -------------------------------------------------- per-backend helpers
# base_B: the baseline firewall; dump_B: every rule, to compare;
# tags_B: how many dkv rules (or ports) there are; foreign_B: an
# untagged accept for the outside port.

base_nftables() {
    sx nft -f - <<'EOF'
table inet filter {
    chain input {
        type filter hook input priority 0; policy drop;
        ct state established,related accept
        iif "lo" accept
    }
}
EOF
}
dump_nftables() { sx nft list ruleset; }
tags_nftables() { sx nft list ruleset | grep -c 'comment "dkv:'; }
foreign_nftables() {
    sx nft insert rule inet filter input tcp dport "$P_OUT" accept
}

# iptables-legacy runs with a PATH whose iptables and ip6tables are the
# legacy ones (dkv runs "iptables").
IPT=iptables
IP6T=ip6tables
base_iptables() {
    for t in "$IPT" "$IP6T"; do
        sx "$t" -P INPUT DROP || return 1
        sx "$t" -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED \
            -j ACCEPT || return 1
        sx "$t" -A INPUT -i lo -j ACCEPT || return 1
    done
}
dump_iptables() { sx "$IPT" -S; sx "$IP6T" -S; }
tags_iptables() { dump_iptables | grep -c 'dkv:'; }
foreign_iptables() {
    sx "$IPT" -I INPUT -p tcp --dport "$P_OUT" -j ACCEPT
}

base_ufw() {
    sx ufw --force reset >/dev/null 2>&1
    sx ufw default deny incoming >/dev/null && sx ufw --force enable >/dev/null
}
dump_ufw() { sx ufw status verbose; }
tags_ufw() { sx ufw status | grep -c '# dkv:'; }
foreign_ufw() { sx ufw allow "$P_OUT/tcp"; }

# Starts the private D-Bus and firewalld in the server namespace.
base_firewalld() {
    cat >"$T/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$T/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_type="*"/>
  </policy>
</busconfig>
EOF
    dbus-daemon --config-file="$T/bus.conf" --nofork >"$T/dbus.log" 2>&1 &
    dbus_pid=$!
    i=0
    while [ ! -S "$T/bus" ]; do
        i=$((i + 1))
        [ "$i" -lt 50 ] || { say "dbus-daemon did not start"; return 1; }
        sleep 0.1
    done
    DBUS_SYSTEM_BUS_ADDRESS="unix:path=$T/bus"
    ip netns exec "$SNS" firewalld --nofork --nopid --log-target file \
        --log-file "$T/firewalld.log" >"$T/firewalld.out" 2>&1 &
    fwd_pid=$!
    i=0
    until sx firewall-cmd --state >/dev/null 2>&1; do
        i=$((i + 1))
        [ "$i" -lt 100 ] || { say "firewalld did not start"; return 1; }
        kill -0 "$fwd_pid" 2>/dev/null || {
            say "firewalld exited:"; cat "$T/firewalld.out"; return 1; }
        sleep 0.2
    done
    say "firewalld up after $i waits, default zone" \
        "$(sx firewall-cmd --get-default-zone)"
}
dump_firewalld() {
    sx firewall-cmd --list-all
    sx firewall-cmd --permanent --info-service=dkv 2>&1
}
tags_firewalld() {
    if sx firewall-cmd --permanent --get-services | grep -qw dkv; then
        sx firewall-cmd --permanent --service=dkv --get-ports | wc -w
    else
        echo 0
    fi
}
foreign_firewalld() {
    sx firewall-cmd --permanent --add-port="$P_OUT/tcp" >/dev/null \
        && sx firewall-cmd --reload >/dev/null
}

# Stops firewalld and its bus; D-Bus points nowhere again.
end_firewalld() {
    stop_pid "$fwd_pid"
    fwd_pid=""
    stop_pid "$dbus_pid"
    dbus_pid=""
    DBUS_SYSTEM_BUS_ADDRESS=$NOBUS
}

# run_backend LABEL B NAME NRULES: the whole sequence for backend B (its
# helpers' suffix; NAME is dkv's name for it: iptables-legacy is
# "iptables" to dkv); NRULES is how many dkv rules an open of the three
# ranges leaves.
run_backend() {
    label=$1
    b=$2
    name=$3
    nrules=$4
    start=$(date +%s)
    say "=== $label"
    if ! server_up; then
        fail "$label: server namespace"
        server_down
        return
    fi
    if ! "base_$b"; then
        fail "$label: baseline firewall"
        [ "$b" = firewalld ] && end_firewalld
        server_down
        return
    fi
    expect_ports "$label: baseline refuses everything" "$ALL_CLOSED"

    dkv firewall status
    if [ $rc = 0 ] && grep -qi "in charge.*$name\|$name.*in charge" \
        "$T/out"; then
        ok "$label: status names $name as in charge"
    else
        fail "$label: status (exit $rc) does not name $name as in charge"
    fi

    dkv firewall open -Ranges "$RANGES,client=21061-21099"
    check "$label: open (detected) exits 0 (got $rc)" [ "$rc" = 0 ]
    expect_ports "$label: after open the ranges connect, the rest not" \
        "$RANGES_OPEN"
    n=$("tags_$b")
    check "$label: open made $nrules tagged rules (got $n)" [ "$n" = "$nrules" ]
    "dump_$b" >"$T/dump1" 2>&1

    cat >"$T/manager.conf" <<'EOF'
# the manager's settings, as dkv-manager reads them
management-range = "21001-21010"
cluster-range = 21011-21060    # the nodes
client-range=21061-21099
EOF
    dkv firewall open -Config "$T/manager.conf" -Backend "$name"
    check "$label: second open (-Config, -Backend $name) exits 0 (got $rc)" \
        [ "$rc" = 0 ]
    "dump_$b" >"$T/dump2" 2>&1
    if cmp -s "$T/dump1" "$T/dump2"; then
        ok "$label: second open changed nothing"
    else
        fail "$label: second open changed the rules"
        diff "$T/dump1" "$T/dump2" | sed 's/^/    /'
    fi

    dkv firewall status
    missing=""
    for r in 21001-21010 21011-21060 21061-21099; do
        grep -q "$r" "$T/out" || missing="$missing $r"
    done
    [ "$rc" = 0 ] || missing="$missing (exit $rc)"
    check "$label: status lists the open ranges (missing:${missing:- none})" \
        [ -z "$missing" ]

    if "foreign_$b" >/dev/null 2>&1; then
        expect_ports "$label: a foreign rule opens the outside port" "$ALL_OPEN"
    else
        fail "$label: cannot add a foreign rule"
    fi

    dkv firewall close
    check "$label: close exits 0 (got $rc)" [ "$rc" = 0 ]
    expect_ports "$label: after close only the foreign rule's port connects" \
        "$FOREIGN_ONLY"
    n=$("tags_$b")
    check "$label: no tagged rule left (got $n)" [ "$n" = 0 ]

    dkv firewall close -Backend "$name"
    check "$label: closing again exits 0 (got $rc)" [ "$rc" = 0 ]

    [ "$b" = firewalld ] && end_firewalld
    server_down
    ran="$ran $label"
    say "=== $label: $(($(date +%s) - start)) s"
}

# Skips backend B with a reason.
skip_backend() {
    say "SKIP: $1: $2"
    skipped="$skipped $1"
}

# --------------------------------------------------------------- checks

# No active firewall, and not root.
say "=== no firewall"
if server_up; then
    dkv firewall open -Ranges "$RANGES"
    if [ "$rc" = 3 ] && grep -qi "no .*firewall\|not active\|no active" \
        "$T/out"; then
        ok "no firewall: open exits 3 and says so"
    else
        fail "no firewall: open exited $rc"
    fi
    dkv firewall open -Ranges "$RANGES" -IfActive
    check "no firewall: open -IfActive exits 0 (got $rc)" [ "$rc" = 0 ]
    expect_ports "no firewall: nothing was added (all connect)" "$ALL_OPEN"

    if command -v setpriv >/dev/null 2>&1 && command -v nft >/dev/null 2>&1
    then
        base_nftables
        for forced in "" "-Backend nftables"; do
            # shellcheck disable=SC2086
            sx setpriv --reuid=65534 --regid=65534 --clear-groups \
                timeout 60 "$DKV" firewall open -Ranges "$RANGES" $forced \
                >"$T/out" 2>&1
            rc=$?
            sed 's/^/    | /' "$T/out"
            if [ "$rc" = 4 ] || grep -qi "root\|privilege" "$T/out"; then
                ok "not root${forced:+ ($forced)}: exit $rc, says why"
            else
                fail "not root${forced:+ ($forced)}: exit $rc, no privilege" \
                    "message"
            fi
        done
        n=$(tags_nftables)
        check "not root: no rule was added (got $n)" [ "$n" = 0 ]
    else
        say "SKIP: not root: setpriv or nft missing"
    fi
else
    fail "no firewall: server namespace"
fi
server_down

backends=${FW_TEST_BACKENDS:-nftables iptables iptables-legacy ufw firewalld}
for b in $backends; do
    case $b in
    nftables)
        if command -v nft >/dev/null 2>&1; then
            run_backend nftables nftables nftables 3
        else
            skip_backend nftables "nft not installed"
        fi
        ;;
    iptables)
        if command -v iptables >/dev/null 2>&1 \
            && command -v ip6tables >/dev/null 2>&1; then
            IPT=iptables IP6T=ip6tables
            run_backend iptables iptables iptables 6
        else
            skip_backend iptables "iptables/ip6tables not installed"
        fi
        ;;
    iptables-legacy)
        if command -v iptables-legacy >/dev/null 2>&1 \
            && command -v ip6tables-legacy >/dev/null 2>&1 \
            && ip netns exec "$CNS" iptables-legacy -S INPUT >/dev/null 2>&1
        then
            mkdir -p "$T/legacy"
            ln -sf "$(command -v iptables-legacy)" "$T/legacy/iptables"
            ln -sf "$(command -v ip6tables-legacy)" "$T/legacy/ip6tables"
            IPT=iptables-legacy IP6T=ip6tables-legacy
            saved_path=$PATH
            PATH=$T/legacy:$PATH
            run_backend iptables-legacy iptables iptables 6
            PATH=$saved_path
            IPT=iptables IP6T=ip6tables
        else
            skip_backend iptables-legacy "iptables-legacy not usable here"
        fi
        ;;
    ufw)
        if command -v ufw >/dev/null 2>&1 && [ -d /etc/ufw ]; then
            cp -a /etc/ufw "$T/etc-ufw" \
                && cp -p /etc/default/ufw "$T/default-ufw" 2>/dev/null
            ufw_saved=1
            run_backend ufw ufw ufw 6
            sx ufw --force disable >/dev/null 2>&1
            restore_dir "$T/etc-ufw" /etc/ufw
            [ -f "$T/default-ufw" ] && cp -p "$T/default-ufw" /etc/default/ufw
        else
            skip_backend ufw "ufw not installed"
        fi
        ;;
    firewalld)
        if command -v firewalld >/dev/null 2>&1 \
            && command -v firewall-cmd >/dev/null 2>&1 \
            && command -v dbus-daemon >/dev/null 2>&1 \
            && [ -d /etc/firewalld ]; then
            cp -a /etc/firewalld "$T/etc-firewalld"
            fwd_saved=1
            run_backend firewalld firewalld firewalld 3
            restore_dir "$T/etc-firewalld" /etc/firewalld
        else
            skip_backend firewalld "firewalld, firewall-cmd or dbus-daemon" \
                "not installed"
        fi
        ;;
    *)
        fail "unknown backend $b in FW_TEST_BACKENDS"
        ;;
    esac
done

say "backends run:${ran:- none}; skipped:${skipped:- none}"
# shellcheck disable=SC2154 # checks and fails: tests/testlib.sh
say "$NAME: $checks checks, $fails failed"
[ "$fails" = 0 ] || exit 1
[ -n "$ran" ] || exit 77
exit 0
