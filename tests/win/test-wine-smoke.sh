#!/bin/sh
# test-wine-smoke.sh -- the Windows programs under wine (the mingw
# cross-build only, else skipped): one dkv-node.exe on loopback with a
# port it picks, dkv.exe writes and reads an item through it, the node is
# stopped gracefully through its stop event "Local\dkv-stop-<pid>" the
# way dkv-manager stops nodes (tests/win/smoke-stop.exe calls
# dkv_plat_proc_signal), exits 0 and says so in its log, keeps the item
# across a restart, and a forced stop ends it with exit code 1.  Then a
# node that ignores its stop event (smoke-stop.exe as dkv-manager.exe's
# --node-bin, with stop-timeout 3): Stop-DkvStore still ends it, killed
# after the 3 s, and the manager itself stops through its stop event.
# Then `dkv.exe firewall status|open` must answer without crashing
# (wine's firewall API accepts rules and stores nothing).
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null # tests/win/smoke-lib.sh, checked alone
. "$here/smoke-lib.sh"

NODE_BG=
MGR_BG=
# At exit (from win_cleanup): stops a node or manager still running,
# through its stop event, then the shell's job.
# shellcheck disable=SC2317 # called by win_cleanup, the exit trap
test_cleanup() {
    if [ -n "$NODE_BG" ] && kill -0 "$NODE_BG" 2>/dev/null; then
        if [ -s "$T/node.pid" ]; then
            wine_run 20 "$B/tests/win/smoke-stop.exe" kill \
                "$(tr -d '\r\n' < "$T/node.pid")" >/dev/null 2>&1
        fi
        kill "$NODE_BG" 2>/dev/null
        wait "$NODE_BG" 2>/dev/null
    fi
    if [ -n "$MGR_BG" ] && kill -0 "$MGR_BG" 2>/dev/null; then
        if [ -s "$T/mgr.pid" ]; then
            wine_run 20 "$B/tests/win/smoke-stop.exe" kill \
                "$(tr -d '\r\n' < "$T/mgr.pid")" >/dev/null 2>&1
        fi
        kill "$MGR_BG" 2>/dev/null
        wait "$MGR_BG" 2>/dev/null
    fi
}

win_setup wine-smoke shared
for p in dkv-node.exe dkv.exe tests/win/smoke-stop.exe; do
    [ -f "$B/$p" ] || { echo "missing $B/$p: build it first"; exit 1; }
done
W=$(winpath "$T")

# start_node: starts dkv-node.exe (store smoke, data in $T/data) under
# smoke-stop.exe in the background; NODE_BG is the shell's job, PORT the
# client port, NODE_PID the Windows process id.  Returns 1 if it did not
# come up within 30 s.
start_node() {
    rm -f "$T/port" "$T/node.pid"
    wine_run 120 "$B/tests/win/smoke-stop.exe" run "$W\\node.pid" 90 \
        "$(winpath "$B/dkv-node.exe")" --store smoke \
        --data-dir "$W\\data" --client-port 0 --port-file "$W\\port" \
        --log-file "$W\\node.log" >"$T/node.out" 2>&1 &
    NODE_BG=$!
    wait_file "$T/port" 300 && wait_file "$T/node.pid" 50 || return 1
    PORT=$(tr -d '\r\n' < "$T/port")
    NODE_PID=$(tr -d '\r\n' < "$T/node.pid")
    return 0
}

# wait_node: waits for the node's job to end (bounded by its timeouts)
# and sets NODE_EXIT to its exit status.
wait_node() {
    wait "$NODE_BG"
    NODE_EXIT=$?
    NODE_BG=
}

# dkv ARG...: the CLI under wine, output in $T/out.
dkv() {
    wine_run 60 "$B/dkv.exe" "$@" >"$T/out" 2>&1
}

# ------------------------------------------------------------ the node
if start_node; then
    ok "dkv-node.exe listens on 127.0.0.1:$PORT (pid $NODE_PID)"
else
    fail "dkv-node.exe did not start"
    cat "$T/node.out" "$T/node.log" 2>/dev/null
    finish
fi
# -Force: a shared prefix (the windows stage's) may hold another test's
# session.
check "Connect-DkvStore" dkv Connect-DkvStore -StoreName smoke \
    -Endpoints "127.0.0.1:$PORT" -Force
check "Set-DkvItem" dkv Set-DkvItem -Key wine:1 -Value hello-from-wine
if dkv Get-DkvItem wine:1 && grep -q hello-from-wine "$T/out"; then
    ok "Get-DkvItem reads the value back"
else
    fail "Get-DkvItem: $(cat "$T/out")"
fi

# Graceful stop through the stop event.
if wine_run 30 "$B/tests/win/smoke-stop.exe" stop "$NODE_PID"; then
    ok "the stop event of pid $NODE_PID was set"
else
    fail "smoke-stop stop $NODE_PID failed"
fi
wait_node
if [ "$NODE_EXIT" -eq 0 ]; then
    ok "dkv-node.exe exited 0 after the stop event"
else
    fail "dkv-node.exe exited $NODE_EXIT after the stop event"
fi
check "node.log: stopping (stop event)" \
    grep -q "stopping (stop event)" "$T/node.log"
check "node.log: closed cleanly" grep -q "closed cleanly" "$T/node.log"

# The item survived; a forced stop is exit code 1.
if start_node; then
    check "Connect-DkvStore -Force to the new port" \
        dkv Connect-DkvStore -StoreName smoke -Endpoints "127.0.0.1:$PORT" \
        -Force
    if dkv Get-DkvItem wine:1 && grep -q hello-from-wine "$T/out"; then
        ok "the item is still there after a restart"
    else
        fail "after a restart Get-DkvItem says: $(cat "$T/out")"
    fi
    check "smoke-stop kill (TerminateProcess)" \
        wine_run 30 "$B/tests/win/smoke-stop.exe" kill "$NODE_PID"
    wait_node
    if [ "$NODE_EXIT" -eq 1 ]; then
        ok "a forced stop ends dkv-node.exe with exit code 1"
    else
        fail "after a forced stop dkv-node.exe exited $NODE_EXIT"
    fi
else
    fail "dkv-node.exe did not restart"
    cat "$T/node.out" "$T/node.log" 2>/dev/null
fi
if wine_run 30 "$B/tests/win/smoke-stop.exe" stop 4000000 \
       >"$T/out" 2>&1; then
    fail "smoke-stop stop of a pid that does not exist succeeded"
else
    ok "no such pid: $(cat "$T/out")"
fi

# ------------------------------------- a node that ignores its stop event
# 10 free loopback ports in a row, never 78xx: the manager's BASE, a
# cluster port BASE+2 and a client port BASE+6.
BASE=$(free_ports 10 2>/dev/null)
if [ -z "$BASE" ] || ! command -v curl >/dev/null 2>&1; then
    echo "SKIP (part): no python3, curl or free ports for the deaf node"
else
    mkdir -p "$T/deaf"
    cat >"$T/deaf/mgr.conf" <<CONF
data-dir = $W\\deaf\\data
bind = 127.0.0.1
port = $BASE
management-range = $BASE-$((BASE + 1))
cluster-range = $((BASE + 2))-$((BASE + 5))
client-range = $((BASE + 6))-$((BASE + 9))
node-bin = $(winpath "$B/tests/win/smoke-stop.exe")
stop-timeout = 3
log-file = $W\\deaf\\mgr.log
CONF
    rm -f "$T/mgr.pid"
    wine_run 180 "$B/tests/win/smoke-stop.exe" run "$W\\mgr.pid" 150 \
        "$(winpath "$B/dkv-manager.exe")" --config "$W\\deaf\\mgr.conf" \
        >"$T/mgr.out" 2>&1 &
    MGR_BG=$!
    n=0
    until curl -s -m 3 "http://127.0.0.1:$BASE/health" 2>/dev/null |
          grep -q '"status"'; do
        n=$((n + 1))
        [ "$n" -gt 120 ] && break
        sleep 0.5
    done
    if [ "$n" -le 120 ] && wait_file "$T/mgr.pid" 50; then
        ok "a console dkv-manager.exe with the deaf node program answers"
        check "Connect-DkvManager" dkv Connect-DkvManager \
            -Managers "127.0.0.1:$BASE" -Force
        check "New-DkvStore Deaf" dkv New-DkvStore -Name Deaf \
            -InstancePrefix deaf -InstanceCount 1 \
            -ClustronPort $((BASE + 2)) -ClientPort $((BASE + 6))
        if dkv Start-DkvStore Deaf; then ok "Start-DkvStore Deaf"; else
            fail "Start-DkvStore Deaf: $(cat "$T/out")"; fi
        t0=$(date +%s)
        dkv Stop-DkvStore Deaf
        rc=$?
        t1=$(date +%s)
        sed 's/^/    /' "$T/out"
        if [ "$rc" -eq 0 ] && grep -q -i "killed after 3 s" "$T/out" \
           && [ $((t1 - t0)) -ge 3 ]; then
            ok "Stop-DkvStore killed the deaf node after 3 s"
        else
            fail "Stop-DkvStore of the deaf node: exit $rc in" \
                "$((t1 - t0)) s"
        fi
        DLOG=$(find "$T/deaf/data" -name node.log 2>/dev/null | head -n 1)
        check "the deaf node got the stop event and ignored it" \
            grep -q "stop request ignored (stop event)" "${DLOG:-/dev/null}"
        if curl -s -m 2 "http://127.0.0.1:$((BASE + 6))/" >/dev/null 2>&1 \
           || python3 -c 'import socket, sys
s = socket.socket(); s.settimeout(2)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' \
               $((BASE + 6)); then
            fail "the deaf node's port $((BASE + 6)) still accepts"
        else
            ok "the deaf node is gone (its port refuses)"
        fi
        MPID=$(tr -d '\r\n' < "$T/mgr.pid")
        check "the manager's stop event" \
            wine_run 30 "$B/tests/win/smoke-stop.exe" stop "$MPID"
        wait "$MGR_BG"
        rc=$?
        MGR_BG=
        check "the manager exited 0 after its stop event (got $rc)" \
            [ "$rc" -eq 0 ]
        check "manager log: stopping (stop event)" \
            grep -q "stopping (stop event)" "$T/deaf/mgr.log"
    else
        fail "the console manager did not answer on $BASE"
        cat "$T/mgr.out" "$T/deaf/mgr.log" 2>/dev/null
    fi
fi

# ------------------------------------------------------------ firewall
# The documented exit codes only (0 done, 1 the firewall refused or
# failed, 3 none active, 4 privileges), always with a message; a crash
# is another code.  Wine's INetFwRules cannot be enumerated (E_NOTIMPL),
# which is exit 1 with that message.
dkv firewall status
rc=$?
sed 's/^/    /' "$T/out"
case $rc in
0|1|3|4) if [ -s "$T/out" ]; then ok "firewall status exits $rc"
         else fail "firewall status exits $rc and says nothing"; fi ;;
*) fail "firewall status exits $rc" ;;
esac
dkv firewall open -Backend windows -Ranges 21001-21002
rc=$?
sed 's/^/    /' "$T/out"
case $rc in
0|1|3|4) if [ -s "$T/out" ]; then ok "firewall open exits $rc"
         else fail "firewall open exits $rc and says nothing"; fi ;;
*) fail "firewall open -Backend windows exits $rc" ;;
esac
finish
