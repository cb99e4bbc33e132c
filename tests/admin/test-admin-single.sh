#!/bin/sh
# test-admin-single.sh -- the reference's single-machine admin walkthrough
# (Connect-DkvManager, New-DkvStore, Start-DkvStore, Get-DkvStore, the
# ClientShell, Watch-DkvStoreMetrics, Stop-DkvStore) against a real
# dkv-manager from the build tree on loopback, then what the manager owes
# beyond it: errors naming the port, a restart of the manager (TERM: its
# nodes stop and come back; kill -9: they keep running and are adopted), a
# crashed node restarted, an admin whose key is not authorized refused.
# Ports are chosen free at run time; the manager gets ranges holding them.
#
#   top_builddir=BUILD top_srcdir=SRC sh tests/admin/test-admin-single.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)
case ${DKV_EXEEXT:-} in
    .exe) echo "test-admin-single: Windows build (needs wine); skipped"
          exit 77 ;;
esac
command -v python3 >/dev/null 2>&1 || {
    echo "test-admin-single: python3 not found; skipped"; exit 77; }
DKV=$top_builddir/dkv
MGR=$top_builddir/dkv-manager
for p in "$DKV" "$MGR" "$top_builddir/dkv-node"; do
    [ -x "$p" ] || { echo "test-admin-single: $p not built"; exit 1; }
done
PY="python3 $top_srcdir/tests/admin/admintest.py"

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-admin1.XXXXXX")
HOME=$T/home XDG_CONFIG_HOME=$T/config
export HOME XDG_CONFIG_HOME
unset DKV_TOKEN LOCALAPPDATA
mkdir -p "$HOME"
cd "$T" || exit 1

MGR_PID=""
HOLD_PID=""
NODE_PIDS=""          # every node pid seen, killed at exit if still there
cleanup() {
    [ -n "$HOLD_PID" ] && kill "$HOLD_PID" 2>/dev/null
    if [ -n "$MGR_PID" ]; then
        kill -TERM "$MGR_PID" 2>/dev/null
        i=0
        while kill -0 "$MGR_PID" 2>/dev/null && [ $i -lt 150 ]; do
            sleep 0.1; i=$((i + 1))
        done
        kill -KILL "$MGR_PID" 2>/dev/null
    fi
    for p in $NODE_PIDS; do
        if kill -0 "$p" 2>/dev/null \
            && grep -q dkv-node "/proc/$p/cmdline" 2>/dev/null; then
            kill -KILL "$p" 2>/dev/null
        fi
    done
    if [ "${DKV_TEST_KEEP:-0}" = 1 ]; then
        echo "test-admin-single: kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

checks=0
fails=0
ok() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*"; }
check() {   # check DESCRIPTION COMMAND...: passes when COMMAND succeeds
    what=$1; shift
    if "$@"; then ok; else fail "$what"; fi
}
show() {
    sed 's/^/  out: /' "$T/out" | head -25
    sed 's/^/  err: /' "$T/err" | head -25
}
# run EXPECT ARGS...: runs dkv (bounded); EXPECT 0, or "nz" for any
# failure exit; output in $T/out, $T/err, both in $T/all.
run() {
    want=$1; shift
    timeout 60 "$DKV" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    cat "$T/out" "$T/err" >"$T/all"
    if [ "$want" = nz ]; then
        if [ $rc -ne 0 ] && [ $rc -ne 124 ]; then ok; else
            fail "dkv $* -> exit $rc, expected a failure exit"; show; fi
    elif [ "$rc" = "$want" ]; then ok; else
        fail "dkv $* -> exit $rc, expected $want"; show
    fi
}
has() {     # has TEXT: the last command's output (out+err) contains TEXT
    if grep -q -i -e "$1" "$T/all"; then ok; else
        fail "output of the last command lacks '$1'"; show; fi
}
jval() { $PY val "$T/out" "$1" 2>/dev/null; }
jeq() {     # jeq PATH VALUE: the last -Json output has VALUE at PATH
    got=$(jval "$1")
    if [ "$got" = "$2" ]; then ok; else
        fail "-Json $1 is '$got', expected '$2'"; show; fi
}
jparse() {
    if $PY parse "$T/out" >/dev/null; then ok; else
        fail "-Json output does not parse"; show; fi
}

# --------------------------------------------------------------- ports
# One free block: the management port, six cluster and six client ports.
B=$($PY ports 13) || exit 1
P=$B C=$((B + 1)) L=$((B + 7))
echo "test-admin-single: manager 127.0.0.1:$P, cluster $C-$((C + 5))," \
    "client $L-$((L + 5))"
API=http://127.0.0.1:$P/admin/v1
CH=$((C + 5)) LH=$((L + 5))

start_mgr() {
    "$MGR" --data-dir "$T/mgr" --bind 127.0.0.1 --port "$P" \
        --management-range "$P-$P" --cluster-range "$C-$CH" \
        --client-range "$L-$LH" --log-file "$T/mgr.log" \
        --stop-timeout 5 >>"$T/mgr.out" 2>&1 &
    MGR_PID=$!
    i=0
    while [ $i -lt 100 ]; do
        if $PY get "http://127.0.0.1:$P/health" status >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$MGR_PID" 2>/dev/null || break
        sleep 0.1; i=$((i + 1))
    done
    echo "test-admin-single: dkv-manager did not answer on port $P:"
    tail -20 "$T/mgr.out" "$T/mgr.log" 2>/dev/null
    return 1
}
# stop_mgr SIGNAL: signals the manager and waits (20 s) until it is gone.
stop_mgr() {
    kill "-$1" "$MGR_PID" 2>/dev/null
    i=0
    while kill -0 "$MGR_PID" 2>/dev/null && [ $i -lt 200 ]; do
        sleep 0.1; i=$((i + 1))
    done
    # Reap it here, so the shell does not report the signal on stderr.
    kill -0 "$MGR_PID" 2>/dev/null || wait "$MGR_PID" 2>/dev/null
    if kill -0 "$MGR_PID" 2>/dev/null; then
        fail "dkv-manager still runs 20 s after SIG$1"
        kill -KILL "$MGR_PID" 2>/dev/null
    else
        ok
    fi
    { wait "$MGR_PID"; } 2>/dev/null
    MGR_PID=""
}
# store_get PATH: a field of GET /admin/v1/stores/TestStore.
store_get() { $PY get "$API/stores/TestStore" "$1" 2>/dev/null; }
# ipid N: the pid the manager reports for node-N (instances in order).
ipid() {
    name=$(store_get "instances.$(($1 - 1)).name")
    [ "$name" = "node-$1" ] || { echo "?"; return; }
    store_get "instances.$(($1 - 1)).pid"
}
alive() { kill -0 "$1" 2>/dev/null; }
# wait_store STATUS RUNNING PARTICIPATING SEC: polls Get-DkvStore -Json.
wait_store() {
    i=0
    while :; do
        timeout 30 "$DKV" Get-DkvStore TestStore -Json >"$T/out" 2>"$T/err"
        if [ "$(jval StoreStatus)" = "$1" ] \
            && [ "$(jval RunningInstances)" = "$2" ] \
            && [ "$(jval ParticipatingNodes)" = "$3" ]; then
            ok; return 0
        fi
        i=$((i + 1))
        [ $i -ge $(($4 * 2)) ] && break
        sleep 0.5
    done
    fail "Get-DkvStore TestStore: not $1/$2 running/$3 participating" \
        "within $4 s"
    show
    return 1
}
record_pids() {
    PIDS=""
    for n in 1 2 3; do
        p=$(ipid $n)
        PIDS="$PIDS $p"
        case $p in ''|*[!0-9]*) ;; *) NODE_PIDS="$NODE_PIDS $p" ;; esac
    done
}
# get_item KEY VALUE SEC: Get-DkvItem KEY shows VALUE within SEC seconds
# (a restarted store needs a leader first).
get_item() {
    i=0
    while :; do
        timeout 30 "$DKV" Get-DkvItem "$1" -Json >"$T/out" 2>"$T/err"
        [ "$(jval Value)" = "$2" ] && { ok; return 0; }
        i=$((i + 1))
        [ $i -ge $(($3 * 2)) ] && break
        sleep 0.5
    done
    fail "Get-DkvItem $1: not '$2' within $3 s"; show
    return 1
}

start_mgr || { echo "test-admin-single: 1 checks, 1 failed"; exit 1; }
[ -f "$T/mgr/authorized_keys" ] && ok \
    || fail "no authorized_keys made in the data directory"

# -------------------------------------------------------- admin key
run 0 Get-DkvAdminKey
has "^ed25519 "
KEYLINE=$(grep '^ed25519 ' "$T/out" | head -1)
KEYID=$(echo "$KEYLINE" | cut -d' ' -f2)
if [ -n "$KEYID" ] && grep -q -F "$KEYID" "$T/mgr/authorized_keys" 2>/dev/null
then ok; else fail "the manager does not trust the admin key '$KEYID'"; fi

# ------------------------------------------------------------ connect
run 3 Start-DkvStore TestStore
has "No managers connected"
run 0 Connect-DkvManager -Managers "127.0.0.1:$P"
has "127.0.0.1:$P"; has Connect; has SUCCESS
run 1 Connect-DkvManager -Managers "127.0.0.1:$P"
run 0 Connect-DkvManager -Managers "127.0.0.1:$P" -Force
run 2 Connect-DkvManager -Managers 0.0.0.0:$P -Force
run 0 Connect-DkvManager -Managers "127.0.0.1:$P" -Force

# ------------------------------------------------------------- create
run 0 New-DkvStore -Name TestStore -InstancePrefix node -InstanceCount 3 \
    -ClustronPort "$C" -ClientPort "$L"
has CreateStore; has SUCCESS; has Created
run 0 New-DkvStore -Name TestStore -InstancePrefix node -InstanceCount 3 \
    -ClustronPort "$C" -ClientPort "$L"
has "Already exists"
run 0 Get-DkvStore TestStore -Json
jparse
jeq StoreName TestStore; jeq StoreStatus Stopped; jeq InstanceCount 3
jeq RunningInstances 0; jeq StoppedInstances 3
for n in 1 2 3; do
    port=$(store_get "instances.$((n - 1)).clientPort")
    [ "$port" = $((L + n - 1)) ] && ok \
        || fail "node-$n client port $port, expected $((L + n - 1))"
    port=$(store_get "instances.$((n - 1)).clusterPort")
    [ "$port" = $((C + n - 1)) ] && ok \
        || fail "node-$n cluster port $port, expected $((C + n - 1))"
done

# -------------------------------------------------------------- start
run 0 Start-DkvStore TestStore
has "StartInstance:node-1"; has "StartInstance:node-3"; has Started
wait_store Running 3 3 15
run 0 Get-DkvStore TestStore
has "TestStore"; has "Running"; has "Instances:3"
run 0 Get-DkvStore -Json
jparse
record_pids
for p in $PIDS; do
    if alive "$p" && grep -q dkv-node "/proc/$p/cmdline" 2>/dev/null; then
        ok; else fail "node pid '$p' is not a running dkv-node"; fi
done
run 0 Start-DkvStore TestStore
has "Already running"

# -------------------------------------------------------- ClientShell
run 0 Connect-DkvStore -StoreName TestStore -Endpoints "127.0.0.1:$L"
run 0 Set-DkvItem -Key order:1001 -Value confirmed
run 0 Set-DkvItem -Key order:1002 -Value shipped
run 0 Set-DkvItem -Key order:1003 -Value delivered
run 0 Get-DkvItem order:1001 -Json
jeq Value confirmed
run 0 Increment-DkvCounter -Key orders:processed -Json
jparse
run 0 Increment-DkvCounter -Key orders:processed -Json
jeq Value 2
# Through another node of the group.
run 0 Connect-DkvStore -StoreName TestStore -Endpoints "127.0.0.1:$((L + 2))" \
    -Force
run 0 Get-DkvItem order:1002 -Json
jeq Value shipped

# ------------------------------------------------------------ metrics
( i=0; while [ $i -lt 40 ]; do
      timeout 10 "$DKV" Set-DkvItem -Key "load:$i" -Value x >/dev/null 2>&1
      timeout 10 "$DKV" Get-DkvItem "load:$i" >/dev/null 2>&1
      i=$((i + 1))
  done ) &
LOAD=$!
sleep 1
run 0 Watch-DkvStoreMetrics -StoreName TestStore -RefreshSec 1 -Count 3
wait $LOAD
cp "$T/out" "$T/watch"
run 0 Watch-DkvStoreMetrics -StoreName TestStore -Count 1 -Json
jparse
cp "$T/watch" "$T/out"; cp "$T/watch" "$T/all"
has "TestStore"; has "Put"; has "Get"; has "node-1"; has "node-3"
if grep -E '^ *(DKV +)?Put ' "$T/out" \
    | grep -q -E '(^|[^0-9.,])[0-9.,]*[1-9][0-9.,]*/s'; then ok
else fail "Watch-DkvStoreMetrics shows no non-zero Put rate"; show; fi
sleep 1.5     # the manager samples its nodes once a second
$PY get "$API/metrics?windowSec=5&store=TestStore" nodes >"$T/out" 2>"$T/err"
n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' \
    "$T/out" 2>/dev/null)
[ "$n" = 3 ] && ok || { fail "GET metrics: '$n' nodes, expected 3"; show; }
# The first three puts went in through node-1, the load through node-3:
# each node counts the requests answered on its client connections.
puts1=$($PY val "$T/out" 0.totals.puts_total)
puts3=$($PY val "$T/out" 2.totals.puts_total)
[ "${puts1:-0}" -ge 3 ] 2>/dev/null && ok \
    || fail "GET metrics: node-1 puts_total '$puts1', expected >= 3"
[ "${puts3:-0}" -ge 40 ] 2>/dev/null && ok \
    || fail "GET metrics: node-3 puts_total '$puts3', expected >= 40"
timeout 10 curl -s "http://127.0.0.1:$P/metrics" >"$T/prom" 2>/dev/null
grep -q 'dkv_node_puts_total{store="TestStore",instance="node-1"}' "$T/prom" \
    && ok || fail "GET /metrics lacks dkv_node_puts_total of node-1"

# --------------------------------------------------------------- stop
run 0 Stop-DkvStore TestStore -Json
jparse
run 0 Get-DkvStore TestStore -Json
jeq StoreStatus Stopped; jeq RunningInstances 0; jeq StoppedInstances 3
for p in $PIDS; do
    i=0
    while alive "$p" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    alive "$p" && fail "node pid $p still runs after Stop-DkvStore" || ok
done
run 4 Get-DkvItem order:1001
run 0 Stop-DkvStore TestStore
has "Already stopped"

# ------------------------------------------------------ start again
run 0 Start-DkvStore TestStore -Json
jparse
wait_store Running 3 3 15
run 0 Connect-DkvStore -StoreName TestStore -Endpoints "127.0.0.1:$L" -Force
get_item order:1001 confirmed 10
run 0 Get-DkvCounter -Key orders:processed -Json
jeq Value 2

# ------------------------------------------------------------ errors
$PY hold $((L + 3)) 60 &
HOLD_PID=$!
sleep 0.5
run 1 New-DkvStore -Name BusyStore -InstancePrefix busy -ClustronPort \
    $((C + 3)) -ClientPort $((L + 3))
has "$((L + 3))"; has "in use"
kill "$HOLD_PID" 2>/dev/null; { wait "$HOLD_PID"; } 2>/dev/null; HOLD_PID=""
run 1 New-DkvStore -Name FarStore -InstancePrefix far -ClustronPort \
    $((C + 40)) -ClientPort $((L + 3))
has "$((C + 40))"; has "outside"; has "$C-$CH"
grep -q "409 PortOutOfRange: .*$((C + 40))" "$T/mgr.log" && ok \
    || fail "the manager log lacks the 409 PortOutOfRange line"
run 1 New-DkvStore -Name TestStore -InstancePrefix node -InstanceCount 2 \
    -ClustronPort "$C" -ClientPort "$L"
has TestStore
run 2 New-DkvStore -Name "bad/name" -InstancePrefix node
has "bad/name"
run 1 Get-DkvStore NoSuchStore
has NoSuchStore
run 1 Start-DkvStore NoSuchStore
run 1 Start-DkvStore TestStore -InstanceName node-9
has node-9

# ---------------------------------------- manager restart (SIGTERM)
record_pids
stop_mgr TERM
for p in $PIDS; do
    i=0
    while alive "$p" && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    alive "$p" && fail "node $p outlived its manager's SIGTERM" || ok
done
run 4 Get-DkvStore TestStore
start_mgr || fail "dkv-manager did not restart"
wait_store Running 3 3 20
record_pids
get_item order:1003 delivered 10

# ------------------------------------ manager kill -9: nodes adopted
BEFORE=$PIDS
stop_mgr KILL
for p in $BEFORE; do
    alive "$p" && ok || fail "node $p died with its manager (kill -9)"
done
get_item order:1002 shipped 5
start_mgr || fail "dkv-manager did not restart after kill -9"
wait_store Running 3 3 15
record_pids
[ "$PIDS" = "$BEFORE" ] && ok \
    || fail "pids after adoption '$PIDS', before '$BEFORE'"

# ------------------------------------------ a crashing node restarted
OLD=$(ipid 2)
kill -KILL "$OLD" 2>/dev/null
i=0
NEW=$OLD
while [ $i -lt 40 ]; do
    sleep 0.5
    NEW=$(ipid 2)
    st=$(store_get instances.1.state)
    if [ "$st" = Running ] && [ -n "$NEW" ] && [ "$NEW" != "$OLD" ] \
        && [ "$NEW" != null ] && alive "$NEW"; then
        break
    fi
    i=$((i + 1))
done
if [ "$NEW" != "$OLD" ] && [ "$st" = Running ]; then ok; else
    fail "node-2 (pid $OLD, kill -9) not restarted within 20 s" \
        "(state $st, pid $NEW)"; fi
case $NEW in ''|*[!0-9]*) ;; *) NODE_PIDS="$NODE_PIDS $NEW" ;; esac
r=$(store_get instances.1.restarts)
[ "${r:-0}" -ge 1 ] 2>/dev/null && ok || fail "node-2 restarts '$r'"
wait_store Running 3 3 15

# ------------------------------------ an admin the manager does not know
O=$T/other
mkdir -p "$O"
other() {   # other CMD...: CMD as the second admin (own dkv directory)
    save=$XDG_CONFIG_HOME
    XDG_CONFIG_HOME=$O; export XDG_CONFIG_HOME
    "$@"
    XDG_CONFIG_HOME=$save; export XDG_CONFIG_HOME
}
other run 0 Get-DkvAdminKey
OTHER=$(grep '^ed25519 ' "$T/out" | head -1 | cut -d' ' -f2)
[ -n "$OTHER" ] && [ "$OTHER" != "$KEYID" ] && ok \
    || fail "the second admin's key '$OTHER' (first '$KEYID')"
other run 0 Connect-DkvManager -Managers "127.0.0.1:$P"
other run 0 Get-DkvStore TestStore
other run 1 Stop-DkvStore TestStore
has "does not accept your admin key"
other run 1 New-DkvStore -Name Intruder -InstancePrefix x \
    -ClustronPort $((C + 4)) -ClientPort $((L + 4))
has "does not accept your admin key"; has "Get-DkvAdminKey"
grep "401 Unauthorized" "$T/mgr.log" | grep -q -F "unknown key $OTHER" && ok \
    || fail "the manager log lacks '401 Unauthorized ... unknown key $OTHER'"
run 0 Get-DkvStore TestStore -Json
jeq StoreStatus Running
# Trusting it: append its line to authorized_keys (re-read on change).
echo "ed25519 $OTHER second admin" >>"$T/mgr/authorized_keys"
sleep 1.1
other run 0 Stop-DkvStore TestStore -InstanceName node-3
has "StopInstance:node-3"
run 0 Get-DkvStore TestStore -Json
jeq StoreStatus Partial; jeq RunningInstances 2

# ------------------------------------------------------------- end
run 0 Stop-DkvStore TestStore
stop_mgr TERM
echo "test-admin-single: $checks checks, $fails failed"
[ $fails -eq 0 ]
