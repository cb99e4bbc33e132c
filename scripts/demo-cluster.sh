#!/bin/sh
# demo-cluster.sh -- the last part of `scripts/run.sh demo`: a store of
# three dkv-node processes on loopback (one Raft group), the ClientShell
# writing through any of them, the leader killed with SIGKILL, the store
# carrying on, and the dead node restarted and caught up.
#
#   scripts/demo-cluster.sh [BUILD_DIR]      (default: build)
#
# Ports are picked free at run time; data, secret and the ClientShell
# session live in a temporary directory removed at the end.
set -eu
B=$(cd "${1:-build}" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-cluster.XXXXXX")
PIDS=""
cleanup() {
    for p in $PIDS; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in $PIDS; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
export XDG_CONFIG_HOME="$T/config"

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ dkv %s\n' "$*"; "$B/dkv" "$@"; }

# Six free loopback ports (two per node), from the kernel.
PORTS=$(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
')
set -- $PORTS
C1=$1 C2=$2 C3=$3 L1=$4 L2=$5 L3=$6
PEERS="1=127.0.0.1:$C1:$L1,2=127.0.0.1:$C2:$L2,3=127.0.0.1:$C3:$L3"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/secret"
chmod 600 "$T/secret"

start() {
    eval "port=\$L$1"
    "$B/dkv-node" --store orders --node-id "$1" --peers "$PEERS" \
        --secret-file "$T/secret" --data-dir "$T/data$1" \
        --client-port "$port" --log-file "$T/node$1.log" \
        --election-timeout 500 --heartbeat-interval 50 >/dev/null &
    eval "PID$1=\$!"
    PIDS="$PIDS $!"
}

leader() {
    # The node whose log last says it became leader.
    grep -H 'became leader' "$T"/node*.log 2>/dev/null | sort -t' ' -k1,1 |
        tail -1 | sed 's/.*node\([0-9]\)\.log.*/\1/'
}

say "Start store 'orders' as three nodes (Raft group, encrypted links)"
echo "secret: 256 bits in $T/secret (every node needs it)"
for n in 1 2 3; do
    start $n
done
i=0
while [ -z "$(leader)" ]; do
    i=$((i + 1))
    if [ $i -gt 100 ]; then
        echo "no leader was elected; the logs:" >&2
        cat "$T"/node*.log >&2
        exit 1
    fi
    sleep 0.1
done
LEAD=$(leader)
echo "node $LEAD leads; clients may talk to any node"

say "Write through node 1, read through node 3"
run Connect-DkvStore -StoreName orders -Endpoints "127.0.0.1:$L1"
run Set-DkvItem -Key order:2001 -Value confirmed
run Set-DkvItem -Key order:2002 -Value pending
run Connect-DkvStore -StoreName orders -Endpoints "127.0.0.1:$L3" -Force
run Get-DkvItem order:2001

say "Kill the leader (node $LEAD) with SIGKILL"
eval "kill -KILL \$PID$LEAD"
eval "wait \$PID$LEAD 2>/dev/null || true"
OTHERS=""
for n in 1 2 3; do
    [ "$n" = "$LEAD" ] && continue
    eval "OTHERS=\"\$OTHERS,127.0.0.1:\$L$n\""
done
run Connect-DkvStore -StoreName orders -Endpoints "${OTHERS#,}" -Force
run Set-DkvItem -Key order:2003 -Value shipped
run Get-DkvItems order:2001,order:2002,order:2003
echo "new leader: node $(leader)"

say "Restart node $LEAD: it catches up from the others"
start "$LEAD"
sleep 1
eval "run Connect-DkvStore -StoreName orders -Endpoints 127.0.0.1:\$L$LEAD -Force"
run Get-DkvItem order:2003

say "The nodes' logs (replication lines)"
for n in 1 2 3; do
    grep 'replica:\|cluster link\|WARN\|ERROR' "$T/node$n.log" |
        sed "s/^\([^ ]*\) \([A-Z]*\) dkv-node: /\1 node $n \2 /"
done | sort | sed 's/^/    /' | head -40
run Disconnect-DkvStore
