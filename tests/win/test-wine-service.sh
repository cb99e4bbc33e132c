#!/bin/sh
# test-wine-service.sh -- dkv-manager.exe as the Windows service
# dkv-manager under wine (the mingw cross-build only, else skipped), in a
# wine prefix of its own: --install-service with a settings file (loopback,
# ports picked free at run time), `sc query`, `sc start` until the
# management port answers, a one-instance store made and started through
# the manager (its node is the service's child), `sc stop`: the service
# reports STOPPED, the manager logged the service stop and its node the
# graceful stop through its stop event (not a kill); then
# --uninstall-service of a running service stops and deletes it.  Also
# the refusals: a second install, --service from a console, uninstalling
# what is not installed.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null # tests/win/smoke-lib.sh, checked alone
. "$here/smoke-lib.sh"

# No test_cleanup: the service and its nodes go with the prefix's
# wineserver (win_cleanup).

win_setup wine-service own
command -v curl >/dev/null 2>&1 || skip "curl is missing"
command -v python3 >/dev/null 2>&1 || skip "python3 is missing"
for p in dkv-manager.exe dkv-node.exe dkv.exe; do
    [ -f "$B/$p" ] || { echo "missing $B/$p: build it first"; exit 1; }
done

# 18 free loopback ports in a row, never 78xx: management BASE-BASE+1,
# cluster BASE+2-BASE+9, client BASE+10-BASE+17.
BASE=$(free_ports 18)
[ -n "$BASE" ] || skip "no 18 free loopback ports in a row"
P=$BASE
C=$((BASE + 2))
L=$((BASE + 10))

# The settings, in the prefix's C:\dkvsvc (the service's own paths).
D=$WINEPREFIX/drive_c/dkvsvc
mkdir -p "$D"
cat >"$D/dkv-manager.conf" <<CONF
# test-wine-service.sh
data-dir = C:\\dkvsvc\\data
bind = 127.0.0.1
port = $P
management-range = $P-$((P + 1))
cluster-range = $C-$((C + 7))
client-range = $L-$((L + 7))
log-file = C:\\dkvsvc\\dkv-manager.log
stop-timeout = 10
CONF
MGR=$(winpath "$B/dkv-manager.exe")

# sc_state: the service's state word from `sc query` (STOPPED, RUNNING,
# ...), empty when the query fails.
sc_state() {
    wine_run 30 sc query dkv-manager 2>/dev/null |
        sed -n 's/^ *STATE *: *[0-9]* *\([A-Z_]*\).*/\1/p'
}

# sc_quiet start|stop: `sc start|stop dkv-manager`, output in $T/sc.out.
sc_quiet() {
    wine_run 60 sc "$1" dkv-manager >"$T/sc.out" 2>&1
}

# wait_state STATE SECONDS: polls until the service is in STATE.
wait_state() {
    n=0
    while [ "$(sc_state)" != "$1" ]; do
        n=$((n + 1))
        [ "$n" -gt "$(($2 * 2))" ] && return 1
        sleep 0.5
    done
    return 0
}

# health: 0 when the management port answers GET /health.
health() {
    curl -s -m 3 "http://127.0.0.1:$P/health" 2>/dev/null |
        grep -q '"status"'
}

# wait_health SECONDS: polls /health until it answers.
wait_health() {
    n=0
    until health; do
        n=$((n + 1))
        [ "$n" -gt "$(($1 * 2))" ] && return 1
        sleep 0.5
    done
    return 0
}

# dkv ARG...: the CLI under wine, output in $T/out.
dkv() {
    wine_run 60 "$B/dkv.exe" "$@" >"$T/out" 2>&1
}

# ------------------------------------------------------------- install
if wine_run 60 "$MGR" --install-service \
       --config 'C:\dkvsvc\dkv-manager.conf' >"$T/out" 2>&1; then
    ok "--install-service: $(cat "$T/out")"
else
    fail "--install-service failed: $(cat "$T/out")"
    finish
fi
if wine_run 60 "$MGR" --install-service \
       --config 'C:\dkvsvc\dkv-manager.conf' >"$T/out" 2>&1; then
    fail "a second --install-service succeeded"
elif grep -q "already exists" "$T/out"; then
    ok "a second install: $(cat "$T/out")"
else
    fail "a second install says: $(cat "$T/out")"
fi
st=$(sc_state)
if [ "$st" = STOPPED ]; then
    ok "sc query: installed, STOPPED"
else
    fail "sc query after install: '$st'"
fi
wine_run 30 "$MGR" --service --config 'C:\dkvsvc\dkv-manager.conf' \
    >"$T/out" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && grep -q "service control manager" "$T/out"; then
    ok "--service from a console exits 2: $(cat "$T/out")"
else
    fail "--service from a console: exit $rc: $(cat "$T/out")"
fi

# A start that fails (bad settings: exit status 2) is reported as the
# service-specific exit code 2 (WIN32_EXIT_CODE 1066).
cp "$D/dkv-manager.conf" "$D/good.conf"
echo "stop-timeout = soon" >>"$D/dkv-manager.conf"
sc_quiet start
if wait_state STOPPED 30 \
   && wine_run 30 sc query dkv-manager >"$T/out" 2>&1 \
   && grep -q "WIN32_EXIT_CODE *: *1066" "$T/out" \
   && grep -q "SERVICE_EXIT_CODE *: *2 " "$T/out"; then
    ok "bad settings: STOPPED with the service exit code 2"
else
    fail "bad settings: sc query says: $(cat "$T/out")"
fi
cp "$D/good.conf" "$D/dkv-manager.conf"

# --------------------------------------------------------------- start
check "sc start dkv-manager" sc_quiet start
if wait_health 60; then
    ok "the management port $P answers /health"
else
    fail "the management port $P did not answer within 60 s"
    cat "$D/dkv-manager.log" 2>/dev/null
    finish
fi
if wait_state RUNNING 30; then
    ok "sc query: RUNNING"
else
    fail "sc query: '$(sc_state)', not RUNNING"
fi

# A store through the manager: the admin key of this wine user is the one
# the service trusts (it made authorized_keys on its first start).
check "Connect-DkvManager" dkv Connect-DkvManager -Managers "127.0.0.1:$P"
if dkv New-DkvStore -Name WinStore -InstancePrefix node -InstanceCount 1 \
       -ClustronPort "$C" -ClientPort "$L"; then
    ok "New-DkvStore WinStore"
else
    fail "New-DkvStore: $(cat "$T/out")"
fi
if dkv Start-DkvStore WinStore; then
    ok "Start-DkvStore WinStore"
else
    fail "Start-DkvStore: $(cat "$T/out")"
fi
NODELOG=$(find "$D/data/stores" -name node.log 2>/dev/null | head -n 1)
if [ -n "$NODELOG" ] && grep -q "started dkv-node" "$NODELOG"; then
    ok "the node runs: $(grep -c . "$NODELOG") line(s) in its log"
else
    fail "no started node under $D/data/stores"
fi

# ---------------------------------------------------------------- stop
check "sc stop dkv-manager" sc_quiet stop
if wait_state STOPPED 60; then
    if wine_run 30 sc query dkv-manager 2>&1 |
       grep -q "WIN32_EXIT_CODE *: *0 "; then
        ok "sc query: STOPPED, exit code 0, after sc stop"
    else
        fail "sc query: STOPPED with an exit code after sc stop"
    fi
else
    fail "sc query: '$(sc_state)' 60 s after sc stop"
fi
if health; then
    fail "the management port still answers after sc stop"
else
    ok "the management port is closed"
fi
check "manager log: stopping (service stop)" \
    grep -q "stopping (service stop)" "$D/dkv-manager.log"
check "manager log: stopped" grep -q "INFO dkv-manager: stopped" \
    "$D/dkv-manager.log"
if [ -n "$NODELOG" ] && grep -q "stopping (stop event)" "$NODELOG" \
   && grep -q "closed cleanly" "$NODELOG"; then
    ok "the node stopped gracefully: $(grep "stopped (" "$NODELOG")"
else
    fail "the node did not log a graceful stop"
    tail -5 "$NODELOG" 2>/dev/null
fi
if grep -q "terminated it instead\|killed" "$D/dkv-manager.log"; then
    fail "the manager killed a node: $(grep "terminated\|killed" \
        "$D/dkv-manager.log")"
else
    ok "the manager killed no node"
fi

# ----------------------------------------------- uninstall while running
check "sc start dkv-manager (again)" sc_quiet start
if wait_health 60; then
    ok "it answers again"
else
    fail "it did not answer again within 60 s"
fi
if wine_run 90 "$MGR" --uninstall-service >"$T/out" 2>&1; then
    ok "--uninstall-service: $(cat "$T/out")"
else
    fail "--uninstall-service failed: $(cat "$T/out")"
fi
if health; then
    fail "the management port answers after --uninstall-service"
else
    ok "--uninstall-service stopped the running service"
fi
runs=$(grep -c "started dkv-node" "$NODELOG" 2>/dev/null)
stops=$(grep -c "stopped (stop event).*closed cleanly" "$NODELOG" \
        2>/dev/null)
if [ "${runs:-0}" -ge 1 ] && [ "$runs" = "$stops" ]; then
    ok "each of the node's $runs run(s) ended with a graceful stop"
else
    fail "the node ran ${runs:-0} time(s), stopped gracefully ${stops:-0}"
fi
if wine_run 30 sc query dkv-manager >"$T/out" 2>&1 \
   && grep -q "STATE" "$T/out"; then
    fail "sc query still finds the service: $(cat "$T/out")"
else
    ok "sc query no longer finds dkv-manager"
fi
if wine_run 60 "$MGR" --uninstall-service >"$T/out" 2>&1; then
    fail "a second --uninstall-service succeeded"
elif grep -q "not installed" "$T/out"; then
    ok "a second uninstall: $(cat "$T/out")"
else
    fail "a second uninstall says: $(cat "$T/out")"
fi
finish
