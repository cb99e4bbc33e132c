#!/bin/sh
# test-systemd-units.sh -- the systemd side of dkv-manager: the unit files
# in packaging/systemd/ (offline `systemd-analyze verify` with no output
# at all, `systemd-analyze security` exposure at most $MAX_EXPOSURE, the
# settings docs/internals/operations.md promises, the packaged
# dkv-manager.conf equal to the one shown there), and the readiness
# protocol for real: the built dkv-manager runs with NOTIFY_SOCKET
# pointing to svc-notify.py (a unix datagram socket, once by path, once in
# the abstract namespace), which checks that READY=1 carries the
# manager's MAINPID and comes when the management port already answers,
# that STOPPING=1 comes after SIGTERM, and that the node the manager
# starts does not inherit NOTIFY_SOCKET.  Loopback only, ports chosen
# free at run time.
#
#   top_builddir=BUILD top_srcdir=SRC sh tests/packaging/test-systemd-units.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)
NAME=systemd-units
# The exposure measured with systemd 252 is 1.2 ("OK"); a little margin
# for other versions' weights.
MAX_EXPOSURE=2.0

# shellcheck source=/dev/null # tests/testlib.sh, checked alone
. "$top_srcdir/tests/testlib.sh"

[ "${DKV_EXEEXT:-}" != .exe ] || skip "Windows build (systemd is Linux's)"
command -v python3 >/dev/null 2>&1 || skip "python3 not found"
[ "$(uname -s)" = Linux ] || skip "not Linux"
MGR=$top_builddir/dkv-manager
DKV=$top_builddir/dkv
for p in "$MGR" "$DKV" "$top_builddir/dkv-node"; do
    [ -x "$p" ] || { echo "$NAME: $p not built"; exit 1; }
done
UNITS=$top_srcdir/packaging/systemd
NOTIFY="python3 $top_srcdir/tests/packaging/svc-notify.py"
ADMIN="python3 $top_srcdir/tests/admin/admintest.py"

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-svcunits.XXXXXX")
HOME=$T/home XDG_CONFIG_HOME=$T/config
export HOME XDG_CONFIG_HOME
unset DKV_TOKEN LOCALAPPDATA NOTIFY_SOCKET
mkdir -p "$HOME"

MGR_PID="" LISTEN_PID="" NODE_PIDS=""
# At exit: stops the manager (TERM, then KILL after 20 s), the listener
# and any node left; removes $T unless DKV_TEST_KEEP=1.
cleanup() {
    if [ -n "$MGR_PID" ]; then
        kill -TERM "$MGR_PID" 2>/dev/null
        i=0
        while kill -0 "$MGR_PID" 2>/dev/null && [ $i -lt 200 ]; do
            sleep 0.1; i=$((i + 1))
        done
        kill -KILL "$MGR_PID" 2>/dev/null
    fi
    [ -n "$LISTEN_PID" ] && kill "$LISTEN_PID" 2>/dev/null
    for p in $NODE_PIDS; do
        if kill -0 "$p" 2>/dev/null \
            && grep -q dkv-node "/proc/$p/cmdline" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null
        fi
    done
    if [ "${DKV_TEST_KEEP:-0}" = 1 ]; then
        echo "$NAME: kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# has FILE TEXT WHAT: FILE holds a line matching TEXT (grep -E)
has() {
    if grep -q -E -e "$2" "$1" 2>/dev/null; then ok; else
        fail "$3"
        sed 's/^/  | /' "$1" 2>/dev/null | tail -15
    fi
}

# ------------------------------------------------------- the unit files
for line in 'Type=notify' 'NotifyAccess=main' 'KillMode=mixed' \
    'User=dkv' 'Group=dkv' 'StateDirectory=dkv' 'Restart=on-failure' \
    'ExecStart=/usr/bin/dkv-manager --config /etc/dkv/dkv-manager.conf' \
    'CapabilityBoundingSet=' 'ProtectSystem=strict' 'NoNewPrivileges=yes' \
    'WantedBy=multi-user.target'; do
    if grep -q -x -F -e "$line" "$UNITS/dkv-manager.service"; then ok; else
        fail "dkv-manager.service lacks the line '$line'"; fi
done
check "dkv-manager.service is not ordered after dkv-firewall" \
    grep -q -x -E 'After=.*dkv-firewall\.service.*' \
    "$UNITS/dkv-manager.service"
for line in 'Type=oneshot' 'RemainAfterExit=yes' \
    'ExecStart=/usr/bin/dkv firewall open -IfActive -Config /etc/dkv/dkv-manager.conf' \
    'ExecStop=/usr/bin/dkv firewall close -IfActive -Config /etc/dkv/dkv-manager.conf' \
    'Before=dkv-manager.service' 'WantedBy=multi-user.target'; do
    if grep -q -x -F -e "$line" "$UNITS/dkv-firewall.service"; then ok; else
        fail "dkv-firewall.service lacks the line '$line'"; fi
done
for fw in nftables.service firewalld.service ufw.service; do
    check "dkv-firewall.service is not ordered after $fw" \
        grep -q -x -E "After=.*$fw.*" "$UNITS/dkv-firewall.service"
done
# The packaged settings are the block after "The packaged one:" in the
# contract, comments aside.
awk '/The packaged one:$/ { seen = 1; next }
     seen && /^```/ { if (inside) exit; inside = 1; next }
     inside { print }' "$top_srcdir/docs/internals/operations.md" \
    >"$T/conf.doc"
grep -v -e '^#' -e '^$' "$UNITS/dkv-manager.conf" >"$T/conf.pkg"
if [ -s "$T/conf.doc" ] && cmp -s "$T/conf.doc" "$T/conf.pkg"; then ok; else
    fail "packaging/systemd/dkv-manager.conf differs from" \
        "docs/internals/operations.md"
    diff "$T/conf.doc" "$T/conf.pkg" | sed 's/^/  | /'
fi

# ------------------------------------------------- systemd-analyze verify
# verify wants the programs of Exec*= to exist: the copies point to the
# build tree's programs instead of /usr/bin.
if command -v systemd-analyze >/dev/null 2>&1; then
    mkdir -p "$T/units"
    sed -e "s#/usr/bin/dkv-manager #$MGR #" \
        "$UNITS/dkv-manager.service" >"$T/units/dkv-manager.service"
    sed -e "s#/usr/bin/dkv #$DKV #" \
        "$UNITS/dkv-firewall.service" >"$T/units/dkv-firewall.service"
    if grep -q -F "$MGR --config" "$T/units/dkv-manager.service" \
        && grep -q -F "$DKV firewall open" "$T/units/dkv-firewall.service"
    then ok; else fail "the Exec paths were not substituted"; fi
    (cd "$T/units" && systemd-analyze verify --man=no \
        ./dkv-manager.service ./dkv-firewall.service) >"$T/verify" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && [ ! -s "$T/verify" ]; then ok; else
        fail "systemd-analyze verify: exit $rc or output:"
        sed 's/^/  | /' "$T/verify"
    fi
    # The check can fail: a unit with a bad key makes verify talk.
    mkdir -p "$T/bad"
    sed -e 's/^KillMode=mixed/KillMod=mixed/' \
        "$T/units/dkv-manager.service" >"$T/bad/dkv-manager.service"
    (cd "$T/bad" && systemd-analyze verify --man=no ./dkv-manager.service) \
        >"$T/verify.bad" 2>&1
    check "systemd-analyze verify is silent about a bad key" \
        test -s "$T/verify.bad"
    (cd "$T/units" && systemd-analyze security --offline=true \
        ./dkv-manager.service) >"$T/security" 2>&1
    score=$(sed -n 's/.*Overall exposure level for dkv-manager\.service: *\([0-9.]*\).*/\1/p' \
        "$T/security")
    if [ -n "$score" ] \
        && awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'
    then
        ok; echo "$NAME: dkv-manager.service exposure $score" \
            "(at most $MAX_EXPOSURE)"
    else
        fail "systemd-analyze security: exposure '$score' above" \
            "$MAX_EXPOSURE"
        grep -e '✗' -e Overall "$T/security" | sed 's/^/  | /'
    fi
else
    echo "SKIP: systemd-analyze not found: the unit files are not verified"
fi

# --------------------------------------------------------- readiness
B=$($ADMIN ports 8) || exit 1
C=$B L=$((B + 4))
RANGES="--management-range $((B - 2))-$((B - 1)) --cluster-range $C-$((C + 3))
    --client-range $L-$((L + 3))"

# start_listener ADDRESS: svc-notify.py on ADDRESS, logging to $T/notify.
start_listener() {
    : >"$T/notify"
    rm -f "$T/port"
    $NOTIFY "$1" "$T/notify" "$T/port" 180 &
    LISTEN_PID=$!
    i=0
    while ! grep -q '^listening' "$T/notify" && [ $i -lt 100 ]; do
        sleep 0.1; i=$((i + 1))
    done
    check "svc-notify.py did not bind $1" grep -q '^listening' "$T/notify"
}
# start_mgr ADDRESS: the manager with NOTIFY_SOCKET=ADDRESS; waits (30 s)
# for READY=1.
start_mgr() {
    # shellcheck disable=SC2086
    NOTIFY_SOCKET=$1 "$MGR" --data-dir "$T/mgr" --bind 127.0.0.1 --port 0 \
        --port-file "$T/port" $RANGES --log-file "$T/mgr.log" \
        --stop-timeout 5 >>"$T/mgr.out" 2>&1 &
    MGR_PID=$!
    i=0
    while ! grep -q 'READY=1' "$T/notify" && [ $i -lt 300 ]; do
        kill -0 "$MGR_PID" 2>/dev/null || break
        sleep 0.1; i=$((i + 1))
    done
    has "$T/notify" "READY=1" "no READY=1 from dkv-manager ($1)"
    has "$T/notify" "READY=1.*\|MAINPID=$MGR_PID(\||$)" \
        "READY=1 lacks MAINPID=$MGR_PID"
    has "$T/notify" "READY=1.*\|STATUS=serving on port [0-9]+, [0-9]+ stores?" \
        "READY=1 lacks the serving STATUS"
    # svc-notify.py connected when READY=1 arrived: the port listened.
    has "$T/notify" "^connect ok [0-9]+$" \
        "the management port did not answer when READY=1 arrived"
    has "$T/notify" "^health 200$" "GET /health failed at READY=1"
}
# stop_mgr: SIGTERM, the manager gone within 30 s with exit 0, STOPPING=1
# received (a datagram queued before its sender exited).
stop_mgr() {
    kill -TERM "$MGR_PID"
    i=0
    while kill -0 "$MGR_PID" 2>/dev/null && [ $i -lt 300 ]; do
        sleep 0.1; i=$((i + 1))
    done
    if kill -0 "$MGR_PID" 2>/dev/null; then
        fail "dkv-manager still runs 30 s after SIGTERM"
        kill -KILL "$MGR_PID"
    fi
    wait "$MGR_PID"
    rc=$?
    check "dkv-manager exited $rc after SIGTERM" test $rc -eq 0
    MGR_PID=""
    sleep 0.3
    has "$T/notify" "STOPPING=1" "no STOPPING=1 after SIGTERM"
    kill "$LISTEN_PID" 2>/dev/null
    wait "$LISTEN_PID" 2>/dev/null
    LISTEN_PID=""
}
# node_env_clean: the store's node runs and its environment has HOME
# (it can be read) but no NOTIFY_SOCKET.
node_env_clean() {
    port=$(cat "$T/port" 2>/dev/null)
    i=0 pid=""
    while [ $i -lt 60 ]; do
        pid=$($ADMIN get "http://127.0.0.1:$port/admin/v1/stores/SvcStore" \
            instances.0.pid 2>/dev/null)
        case $pid in ''|*[!0-9]*|0) ;; *) break ;; esac
        sleep 0.5; i=$((i + 1))
    done
    case $pid in
        ''|*[!0-9]*|0) fail "no node pid for SvcStore ($1)"; return ;;
    esac
    NODE_PIDS="$NODE_PIDS $pid"
    if grep -q dkv-node "/proc/$pid/cmdline" 2>/dev/null; then ok; else
        fail "pid $pid is not a dkv-node ($1)"; return; fi
    tr '\0' '\n' <"/proc/$pid/environ" >"$T/environ" 2>/dev/null
    has "$T/environ" "^HOME=$HOME$" "cannot read the node's environment"
    if grep -q '^NOTIFY_SOCKET=' "$T/environ"; then
        fail "the node inherited NOTIFY_SOCKET ($1)"
    else
        ok
    fi
}

# Run 1: a socket by path; a store of one node made and started.
start_listener "$T/notify.sock"
start_mgr "$T/notify.sock"
has "$T/notify" "STATUS=serving on port [0-9]+, 0 stores" \
    "READY=1 does not count 0 stores"
# cli ARGS...: dkv ARGS (bounded) succeeds.
cli() {
    if timeout 60 "$DKV" "$@" >"$T/cli" 2>&1; then ok; else
        fail "dkv $*"; sed 's/^/  | /' "$T/cli"; fi
}
cli Connect-DkvManager -Managers "127.0.0.1:$(cat "$T/port")"
cli New-DkvStore -Name SvcStore -InstancePrefix n -InstanceCount 1 \
    -ClustronPort "$C" -ClientPort "$L"
cli Start-DkvStore SvcStore
node_env_clean "started by the API"
stop_mgr
has "$T/notify" "STOPPING=1.*EXTEND_TIMEOUT_USEC=20000000" \
    "STOPPING=1 lacks the wait hint (stop timeout 5 s + 15 s)"

# Run 2: the abstract namespace; the node comes back with the manager,
# reported in a later STATUS.
start_listener "@dkv-svctest-$$"
start_mgr "@dkv-svctest-$$"
has "$T/notify" "STATUS=serving on port [0-9]+, 1 store(\||$)" \
    "READY=1 does not count 1 store"
i=0
while ! grep -q 'STATUS=.*1 node running' "$T/notify" && [ $i -lt 300 ]; do
    sleep 0.1; i=$((i + 1))
done
has "$T/notify" "STATUS=serving on port [0-9]+, 1 store, 1 node running" \
    "no STATUS counting the restarted node"
check "the restarted node's STATUS came before READY=1" \
    awk '/READY=1/ { r = NR } /1 node running/ { n = NR }
         END { exit !(r && n > r) }' "$T/notify"
node_env_clean "restarted"
stop_mgr

finish
