#!/bin/sh
# test-admin-multi.sh -- the reference's multi-machine topology on one
# machine: three network namespaces ("machines") on a bridge, one
# dkv-manager in each bound to its own address, and the admin in a fourth
# namespace that holds the bridge (the pattern of tests/fault: nothing is
# added to the host's own network).  The admin connects to the three
# managers, creates MultiStore (one node per machine) and starts it; a
# client writes through the nodes with the store's token (non-loopback);
# one machine is killed whole (kill -9 of every process in its
# namespace), the store keeps taking writes; the machine comes back (its
# manager restarts its node, which catches up); Add-DkvInstance puts a
# fourth node on machine 1 and the group grows to four voters.
#
# Needs root and `ip netns`; skipped (exit 77) otherwise.  The namespaces
# are named after this script's pid and deleted on every exit path.
#
#   top_builddir=BUILD top_srcdir=SRC sh tests/admin/test-admin-multi.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)
me=test-admin-multi
case ${DKV_EXEEXT:-} in
    .exe) echo "$me: Windows build (needs wine); skipped"; exit 77 ;;
esac
case "$(uname -s 2>/dev/null)" in
    Linux) ;;
    *) echo "$me: network namespaces are Linux only; skipped"; exit 77 ;;
esac
if [ "$(id -u)" != 0 ]; then
    echo "$me: needs root (network namespaces); skipped"; exit 77
fi
if ! command -v ip >/dev/null 2>&1 || ! ip netns list >/dev/null 2>&1; then
    echo "$me: needs iproute2 with 'ip netns'; skipped"; exit 77
fi
command -v python3 >/dev/null 2>&1 || {
    echo "$me: python3 not found; skipped"; exit 77; }
DKV=$top_builddir/dkv
MGR=$top_builddir/dkv-manager
for p in "$DKV" "$MGR" "$top_builddir/dkv-node"; do
    [ -x "$p" ] || { echo "$me: $p not built"; exit 1; }
done
PY="python3 $top_srcdir/tests/admin/admintest.py"

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-admin3.XXXXXX")
HOME=$T/home XDG_CONFIG_HOME=$T/config
export HOME XDG_CONFIG_HOME
unset DKV_TOKEN LOCALAPPDATA
mkdir -p "$HOME"
cd "$T" || exit 1

pre="dkva$$"
tag="da$(($$ % 100000))"
NSH=${pre}h
MGR_PIDS=""
WATCHDOG=""
cleanup() {
    kill "$WATCHDOG" 2>/dev/null
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' \
                | grep "^$pre"); do
        for p in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$p" 2>/dev/null
        done
    done
    for p in $MGR_PIDS; do
        { wait "$p"; } 2>/dev/null
    done
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' \
                | grep "^$pre"); do
        ip netns del "$ns" 2>/dev/null
    done
    if [ "${DKV_TEST_KEEP:-0}" = 1 ]; then
        echo "$me: kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# A watchdog: every wait below is bounded, but their sum could not be.
( sleep 240 & sp=$!
  trap 'kill $sp 2>/dev/null; exit 0' TERM
  wait $sp && { echo "$me: over 240 s; stopping"; kill -TERM $$; } ) &
WATCHDOG=$!

checks=0
fails=0
ok() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*"; }
show() {
    sed 's/^/  out: /' "$T/out" | head -25
    sed 's/^/  err: /' "$T/err" | head -25
}
inh() { ip netns exec "$NSH" "$@"; }   # on the admin's "machine"
# run EXPECT ARGS...: dkv on the admin's side (bounded); EXPECT 0 or nz.
run() {
    want=$1; shift
    inh timeout 60 "$DKV" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    cat "$T/out" "$T/err" >"$T/all"
    if [ "$want" = nz ]; then
        if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then ok; else
            fail "dkv $* -> exit $rc, expected a failure exit"; show; fi
    elif [ "$rc" = "$want" ]; then ok; else
        fail "dkv $* -> exit $rc, expected $want"; show
    fi
}
has() {
    if grep -q -i -e "$1" "$T/all"; then ok; else
        fail "output of the last command lacks '$1'"; show; fi
}
jval() { $PY val "$T/out" "$1" 2>/dev/null; }
# api N PATH [QUERY]: a field of manager N's GET /admin/v1/stores/MultiStore.
api() {
    inh $PY get "http://$NET.$1:$P/admin/v1/stores/MultiStore" "$2" \
        2>/dev/null
}

# ---------------------------------------------------- the network
NET=""
for x in 233 234 235 236 237 238; do
    y=$(( ($$ + x) % 200 + 20 ))
    cand="10.$x.$y"
    if ! ip -4 addr 2>/dev/null | grep -q " $cand\." \
        && ! ip -4 route 2>/dev/null | grep -q "^$cand\." \
        && ! ip -4 route 2>/dev/null | grep -q "^10\.$x\.0\.0/16"; then
        NET=$cand
        break
    fi
done
[ -n "$NET" ] || { echo "$me: no free 10.x.y.0/24 subnet"; exit 77; }
setup_net() {
    ip netns add "$NSH" && ip -n "$NSH" link set lo up \
        && ip -n "$NSH" link add "${tag}br" type bridge \
        && ip -n "$NSH" addr add "$NET.254/24" dev "${tag}br" \
        && ip -n "$NSH" link set "${tag}br" up || return 1
    for m in 1 2 3; do
        ip netns add "$pre$m" && ip -n "$pre$m" link set lo up \
            && ip -n "$NSH" link add "${tag}a$m" type veth peer \
                name "${tag}b$m" netns "$pre$m" \
            && ip -n "$NSH" link set "${tag}a$m" master "${tag}br" up \
            && ip -n "$pre$m" addr add "$NET.$m/24" dev "${tag}b$m" \
            && ip -n "$pre$m" link set "${tag}b$m" up || return 1
    done
}
if ! setup_net; then
    echo "$me: could not make the namespaces; skipped"
    exit 77
fi

# Ports: chosen free at run time (the namespaces are empty, but the rule
# holds: never the defaults).
B=$($PY ports 9) || exit 1
P=$B C=$((B + 1)) L=$((B + 5))
echo "$me: machines $NET.1-3, management port $P, cluster $C-$((C + 3))," \
    "client $L-$((L + 3))"

start_mgr() {   # start_mgr M: the manager of machine M
    ip netns exec "$pre$1" "$MGR" --data-dir "$T/m$1" --bind "$NET.$1" \
        --port "$P" --management-range "$P-$P" \
        --cluster-range "$C-$((C + 3))" --client-range "$L-$((L + 3))" \
        --log-file "$T/m$1.log" --stop-timeout 5 >>"$T/m$1.out" 2>&1 &
    eval "MPID$1=\$!"
    MGR_PIDS="$MGR_PIDS $!"
    i=0
    while [ $i -lt 100 ]; do
        inh $PY get "http://$NET.$1:$P/health" status >/dev/null 2>&1 \
            && return 0
        eval "kill -0 \$MPID$1" 2>/dev/null || break
        sleep 0.1; i=$((i + 1))
    done
    echo "$me: manager $1 did not answer on $NET.$1:$P"
    tail -20 "$T/m$1.out" "$T/m$1.log" 2>/dev/null
    return 1
}
# wait_api M FIELD VALUE SEC: manager M's view of the store.
wait_api() {
    i=0
    while [ $i -lt $(($4 * 2)) ]; do
        [ "$(api "$1" "$2")" = "$3" ] && { ok; return 0; }
        sleep 0.5; i=$((i + 1))
    done
    fail "manager $1: $2 is '$(api "$1" "$2")', expected '$3' within $4 s"
    return 1
}

# The admin key first, so every manager trusts it (they run as this user).
run 0 Get-DkvAdminKey
for m in 1 2 3; do
    start_mgr $m || { fail "manager $m did not start"
                      echo "$me: $checks checks, $fails failed"; exit 1; }
done

MGRS="$NET.1:$P,$NET.2:$P,$NET.3:$P"
run 0 Connect-DkvManager -Managers "$MGRS"
has "$NET.3:$P"
run 0 New-DkvStore -Name MultiStore -InstancePrefix node -ClustronPort "$C" \
    -ClientPort "$L"
has CreateStore
for m in 1 2 3; do
    [ "$(api $m instances.$((m - 1)).host)" = "$NET.$m" ] && ok \
        || fail "manager $m: node-$m host '$(api $m instances.$((m - 1)).host)'"
    [ "$(api $m localInstances)" = 1 ] && ok \
        || fail "manager $m: localInstances '$(api $m localInstances)'"
done
run 0 Start-DkvStore MultiStore
has "StartInstance:node-3"
for m in 1 2 3; do
    wait_api $m status Running 20
    wait_api $m participatingNodes 3 20
done
run 0 Get-DkvStore MultiStore -Json
[ "$(jval 2.ParticipatingNodes)" = 3 ] && ok \
    || { fail "Get-DkvStore -Json: third row's ParticipatingNodes"; show; }

# ---------------------------------------------------- client load
EPS="$NET.1:$L,$NET.2:$L,$NET.3:$L"
# Clients off the nodes' machines need the store's token: a wrong one is
# refused; New-DkvStore saved the right one, which Connect-DkvStore uses.
run 4 Connect-DkvStore -StoreName MultiStore -Endpoints "$NET.2:$L" \
    -Token not-the-token
run 0 Connect-DkvStore -StoreName MultiStore -Endpoints "$EPS"
i=0
while [ $i -lt 10 ]; do
    run 0 Set-DkvItem -Key "before:$i" -Value "v$i"
    i=$((i + 1))
done
run 0 Get-DkvItem before:7 -Json
[ "$(jval Value)" = v7 ] && ok || { fail "before:7 is '$(jval Value)'"; show; }

# ------------------------------------- machine 1 dies (kill -9, all)
N1PID=$(api 1 instances.0.pid)
for p in $(ip netns pids "${pre}1"); do
    kill -KILL "$p" 2>/dev/null
done
i=0
while [ -n "$(ip netns pids "${pre}1")" ] && [ $i -lt 50 ]; do
    sleep 0.1; i=$((i + 1))
done
[ -z "$(ip netns pids "${pre}1")" ] && ok \
    || fail "processes left in machine 1: $(ip netns pids "${pre}1")"
{ wait "$MPID1"; } 2>/dev/null
echo "$me: machine 1 killed (manager $MPID1, node $N1PID)"
i=0
while [ $i -lt 20 ]; do
    run 0 Set-DkvItem -Key "during:$i" -Value "d$i"
    i=$((i + 1))
done
run 0 Get-DkvItem during:19 -Json
[ "$(jval Value)" = d19 ] && ok || { fail "during:19 '$(jval Value)'"; show; }
for m in 2 3; do
    [ "$(api $m status)" = Running ] && ok \
        || fail "manager $m: status '$(api $m status)' while machine 1 is down"
done

# ------------------------------------------------ machine 1 returns
start_mgr 1 || fail "manager 1 did not restart"
wait_api 1 instances.0.state Running 20
wait_api 1 participatingNodes 3 20
applied() {     # applied M: raft_applied_index of machine M's node
    inh $PY get \
        "http://$NET.$1:$P/admin/v1/metrics?windowSec=5&store=MultiStore" \
        nodes.0.totals.raft_applied_index 2>/dev/null
}
i=0
a1="" a2=""
while [ $i -lt 30 ]; do
    a1=$(applied 1); a2=$(applied 2)
    if [ -n "$a1" ] && [ "$a1" = "$a2" ] && [ "$a1" -gt 20 ] 2>/dev/null
    then break; fi
    sleep 0.5; i=$((i + 1))
done
if [ -n "$a1" ] && [ "$a1" = "$a2" ]; then ok; else
    fail "node-1 applied index '$a1', node-2 '$a2': not caught up in 15 s"
fi
# Read through node-1 alone: it has the writes made while it was down.
run 0 Connect-DkvStore -StoreName MultiStore -Endpoints "$NET.1:$L" -Force
run 0 Get-DkvItem during:13 -Json
[ "$(jval Value)" = d13 ] && ok \
    || { fail "node-1: during:13 is '$(jval Value)'"; show; }

# ------------------------------------ a fourth node on machine 1
run 0 Add-DkvInstance -StoreName MultiStore -InstanceName node-4 \
    -ClustronPort $((C + 1)) -ClientPort $((L + 1)) -Manager "$NET.1:$P"
has AddInstance
[ "$(api 1 instances.3.host)" = "$NET.1" ] && ok \
    || fail "node-4 host '$(api 1 instances.3.host)', expected $NET.1"
for m in 2 3; do
    [ "$(api $m instances.3.name)" = node-4 ] && ok \
        || fail "manager $m does not know node-4"
done
run 0 Start-DkvStore MultiStore -InstanceName node-4
for m in 1 2 3; do
    wait_api $m participatingNodes 4 30
done
wait_api 1 localInstances 2 1
run 0 Connect-DkvStore -StoreName MultiStore -Endpoints "$NET.1:$((L + 1))" \
    -Force
run 0 Get-DkvItem before:3 -Json
[ "$(jval Value)" = v3 ] && ok \
    || { fail "node-4: before:3 is '$(jval Value)'"; show; }
run 0 Set-DkvItem -Key after -Value four

echo "$me: $checks checks, $fails failed"
[ $fails -eq 0 ]
