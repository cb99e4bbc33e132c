#!/bin/sh
# demo-node.sh -- the second half of `scripts/run.sh demo`: one dkv-node on
# loopback and the ClientShell commands against it, narrated.
#
#   scripts/demo-node.sh [BUILD_DIR]      (default: build)
#
# The node takes a free port (--client-port 0) and a fresh data directory;
# the ClientShell session lives in a temporary config directory, so the
# demo leaves nothing behind and never touches the user's own session.
set -eu
B=$(cd "${1:-build}" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-demo.XXXXXX")
NODE_PID=
cleanup() {
    if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
        kill -TERM "$NODE_PID" 2>/dev/null || true
        wait "$NODE_PID" 2>/dev/null || true
    fi
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
export XDG_CONFIG_HOME="$T/config"

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ dkv %s\n' "$*"; "$B/dkv" "$@"; }

say "Start a node of store 'orders' (a free loopback port, data in $T/data)"
"$B/dkv-node" --store orders --data-dir "$T/data" --client-port 0 \
    --port-file "$T/port" --log-file "$T/node.log" >/dev/null &
NODE_PID=$!
i=0
while [ ! -s "$T/port" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 "$NODE_PID" 2>/dev/null; then
        echo "dkv-node did not start; its log:" >&2
        cat "$T/node.log" >&2 2>/dev/null || true
        exit 1
    fi
    sleep 0.1
done
PORT=$(cat "$T/port")
echo "dkv-node serves 'orders' on 127.0.0.1:$PORT"

say "Connect, write, read"
run Connect-DkvStore -StoreName orders -Endpoints "127.0.0.1:$PORT"
run Set-DkvItem -Key order:1001 -Value confirmed
run Set-DkvItem -Key order:1002 -Value pending -ExpireAfterSec 300
run Get-DkvItem order:1001
run Get-DkvItemMetadata order:1002

say "Counters and leases"
run Increment-DkvCounter -Key orders:processed
run Increment-DkvCounter -Key orders:processed -Delta 5
LEASE=$("$B/dkv" Grant-DkvLease -TimeToLive 30s -Json |
        sed -n 's/.*"LeaseId": *"\{0,1\}\([0-9][0-9]*\).*/\1/p')
echo "granted lease $LEASE"
run Set-DkvItem -Key worker:1 -Value busy -LeaseId "$LEASE"
run Revoke-DkvLease "$LEASE"
run Test-DkvItem worker:1 -Detailed

say "Watch a prefix while another client writes"
"$B/dkv" Watch-DkvPrefix -Prefix order: -IncludeSnapshot -MaxEvents 4 \
    -DurationSec 10 &
WATCH_PID=$!
sleep 0.5
"$B/dkv" Set-DkvItem -Key order:1003 -Value shipped >/dev/null
"$B/dkv" Remove-DkvItem order:1001 >/dev/null
wait "$WATCH_PID" || true

say "Latency of 1000 reads"
run Test-DkvLatency -Iterations 1000

say "Stop the node (SIGTERM: a graceful stop)"
kill -TERM "$NODE_PID"
wait "$NODE_PID" || true
NODE_PID=
run Disconnect-DkvStore
echo "The node's log:"
sed 's/^/    /' "$T/node.log"
