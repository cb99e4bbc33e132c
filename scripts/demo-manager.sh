#!/bin/sh
# demo-manager.sh -- the last part of `scripts/run.sh demo`: the admin's
# path of the reference (docs/admin-api.md): a dkv-manager on loopback,
# then with the AdminShell commands of `dkv` a store of three instances
# created, started and looked at, the ClientShell writing and reading
# through it, its metrics watched, and the store stopped.
#
#   scripts/demo-manager.sh [BUILD_DIR]      (default: build)
#
# The manager takes the default ports (management 7801, instances from
# 7811 and 7861) when they are free, else free ports picked at run time.
# Its data and the demo's dkv directory live in a temporary directory,
# removed at the end.  DKV_DEMO_KEEP=1 leaves the manager and the store
# running (and trusts your own admin key too), so you can go on from your
# own shell; the script says how, and how to stop it.
set -eu
B=$(cd "${1:-build}" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-manager.XXXXXX")
KEEP=${DKV_DEMO_KEEP:-0}
USER_XDG=${XDG_CONFIG_HOME:-}
MGR_PID=""
cleanup() {
    if [ "$KEEP" = 1 ]; then
        return
    fi
    if [ -n "$MGR_PID" ]; then
        kill -TERM "$MGR_PID" 2>/dev/null || true
        wait "$MGR_PID" 2>/dev/null || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE
export XDG_CONFIG_HOME="$T/config"

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ dkv %s\n' "$*"; "$B/dkv" "$@"; }

# The defaults when free, else a free block (never 78xx then).
PORTS=$(python3 -c '
import random, socket
def free(p):
    for h in ("127.0.0.1", "0.0.0.0"):
        s = socket.socket()
        # As a server binds: connections in TIME_WAIT do not hold a port.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((h, p))
        except OSError:
            return False
        finally:
            s.close()
    return True
if all(free(p) for p in (7801, 7811, 7812, 7813, 7861, 7862, 7863)):
    print("7801 7811 7861 default")
else:
    r = random.Random()
    for _ in range(1000):
        b = r.randrange(20000, 32000)
        if all(free(b + i) for i in range(9)):
            print(b, b + 1, b + 5, "picked")
            break
')
set -- $PORTS
P=$1 C=$2 L=$3 HOW=$4
if [ "$HOW" = default ]; then
    PORTARGS=""
    MGRARGS=""
else
    echo "(the default ports are taken: using management port $P," \
        "cluster ports from $C, client ports from $L)"
    PORTARGS="-ClustronPort $C -ClientPort $L"
    MGRARGS="--management-range $P-$P --cluster-range $C-$((C + 3))"
    MGRARGS="$MGRARGS --client-range $L-$((L + 3))"
fi

say "Start dkv-manager, the per-machine manager, on 127.0.0.1:$P"
# shellcheck disable=SC2086
"$B/dkv-manager" --data-dir "$T/manager" --bind 127.0.0.1 --port "$P" \
    $MGRARGS --log-file "$T/manager.log" >"$T/manager.out" 2>&1 &
MGR_PID=$!
i=0
until curl -s -o /dev/null "http://127.0.0.1:$P/health"; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$MGR_PID" 2>/dev/null; then
        echo "dkv-manager did not start:" >&2
        cat "$T/manager.out" "$T/manager.log" >&2 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done
echo "data: $T/manager (registry, keys, stores); log: $T/manager.log"
echo "it trusts the admin key of the user who started it:"
run Get-DkvAdminKey

say "Connect to the manager, create a store of three instances, start it"
run Connect-DkvManager -Managers "localhost:$P"
# shellcheck disable=SC2086
run New-DkvStore -Name TestStore -InstancePrefix node -InstanceCount 3 \
    $PORTARGS
run Start-DkvStore TestStore
run Get-DkvStore TestStore
i=0
until "$B/dkv" Get-DkvStore TestStore -Json 2>/dev/null \
    | grep -q '"ParticipatingNodes": *3'; do
    i=$((i + 1))
    [ $i -gt 40 ] && break
    sleep 0.25
done

say "Use it: the ClientShell against the instances' client ports"
run Connect-DkvStore -StoreName TestStore \
    -Endpoints "127.0.0.1:$L,127.0.0.1:$((L + 1)),127.0.0.1:$((L + 2))"
run Set-DkvItem -Key order:1001 -Value confirmed
run Set-DkvItem -Key order:1002 -Value shipped
run Get-DkvItem order:1001
run Increment-DkvCounter -Key orders:processed
run Increment-DkvCounter -Key orders:processed

say "Watch the store's metrics (three refreshes; interactively: Ctrl+C)"
( i=0; while [ $i -lt 30 ]; do
      "$B/dkv" Set-DkvItem -Key "load:$i" -Value x >/dev/null 2>&1 || true
      "$B/dkv" Get-DkvItem "load:$i" >/dev/null 2>&1 || true
      i=$((i + 1))
  done ) &
LOAD=$!
run Watch-DkvStoreMetrics -StoreName TestStore -RefreshSec 1 -Count 3
wait $LOAD || true

if [ "$KEEP" = 1 ]; then
    # Trust the admin key of the user running the demo too.
    XDG_CONFIG_HOME=$USER_XDG
    [ -n "$USER_XDG" ] || unset XDG_CONFIG_HOME
    "$B/dkv" Get-DkvAdminKey >>"$T/manager/authorized_keys"
    say "Left running (DKV_DEMO_KEEP=1): manager pid $MGR_PID"
    echo "From your shell:"
    echo "  $B/dkv Connect-DkvManager -Managers localhost:$P"
    echo "  $B/dkv Get-DkvStore"
    echo "  $B/dkv Watch-DkvStoreMetrics -StoreName TestStore"
    echo "Stop it all: $B/dkv Stop-DkvStore TestStore; kill $MGR_PID;" \
        "rm -rf $T"
    exit 0
fi

say "Stop the store"
run Stop-DkvStore TestStore
run Get-DkvStore TestStore
echo
echo "To do this by hand: start build/dkv-manager (it listens on port 7801;"
echo "--data-dir DIR keeps its registry), then"
echo "  build/dkv Connect-DkvManager -Managers localhost:7801"
echo "  build/dkv Get-DkvStore"
echo "(DKV_DEMO_KEEP=1 scripts/demo-manager.sh leaves this demo's manager" \
    "running.)"
