#!/bin/sh
# run-node-bench.sh -- dkv-node against redis-server, side by side, in one
# run: 50 connections, 100-byte values, GET and PUT/SET, pipelining 1 and
# 16.  dkv-node runs with its defaults (durable: every commit synced, with
# group commit); redis runs twice, durable (--appendonly yes
# --appendfsync always) and plain (no persistence), driven by
# redis-benchmark at the same concurrency and pipelining.  Both listen on
# 127.0.0.1, on ports picked at run time, with their own directories
# under a temporary directory removed at the end.  Bounded: SECONDS per
# dkv operation (default 3) and REQUESTS per redis-benchmark run.
#
#   bench/run-node-bench.sh [BUILDDIR]      (default: the current directory)
#
# Needs redis-server and redis-benchmark (scripts/install-deps.sh --dev).
# Prints a table: operation, dkv ops/s, redis ops/s, ratio, p50/p99 (ms).
set -eu
B=${1:-.}
SECONDS_PER_OP=${SECONDS:-3}
REQUESTS=${REQUESTS:-200000}
CLIENTS=50
VALUE=100
for p in "$B/dkv-node" "$B/bench/bench-node"; do
    [ -x "$p" ] || { echo "run-node-bench: $p missing: run make bench" >&2; exit 2; }
done
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
    echo "run-node-bench: needs redis-server and redis-benchmark" \
         "(apt-get install redis-server redis-tools)" >&2; exit 2; }

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-node-bench.XXXXXX")
NODE_PID=; REDIS_PID=
cleanup() {
    [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null || true
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
    sleep 0.3
    rm -rf "$T"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_file() {        # wait_file FILE: at most 10 s
    i=0
    while [ ! -s "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -s "$1" ]
}

# ------------------------------------------------------------- dkv-node
"$B/dkv-node" --store Bench --data-dir "$T/dkv" --client-port 0 \
    --port-file "$T/dkv.port" --log-file "$T/dkv.log" >"$T/dkv.out" 2>&1 &
NODE_PID=$!
wait_file "$T/dkv.port" || { cat "$T/dkv.out"; exit 1; }
DKV_PORT=$(cat "$T/dkv.port")
for P in 1 16; do
    "$B/bench/bench-node" --port "$DKV_PORT" --store Bench \
        --clients $CLIENTS --pipeline $P --value $VALUE \
        --seconds "$SECONDS_PER_OP" >>"$T/dkv.res"
done
kill "$NODE_PID"; wait "$NODE_PID" || true; NODE_PID=

# --------------------------------------------------------- redis-server
# redis_run MODE: MODE durable or plain; appends "MODE OP P ops p50 p99".
redis_run() {
    mode=$1
    port=$(free_port)
    mkdir -p "$T/redis-$mode"
    if [ "$mode" = durable ]; then
        persist="--appendonly yes --appendfsync always"
    else
        persist="--appendonly no"
    fi
    # shellcheck disable=SC2086
    redis-server --port "$port" --bind 127.0.0.1 --dir "$T/redis-$mode" \
        --save '' $persist --daemonize no --logfile "$T/redis-$mode.log" &
    REDIS_PID=$!
    i=0
    until redis-cli -p "$port" ping >/dev/null 2>&1 || [ $i -ge 100 ]; do
        sleep 0.1; i=$((i + 1))
    done
    for P in 1 16; do
        redis-benchmark -h 127.0.0.1 -p "$port" -c $CLIENTS -P $P -d $VALUE \
            -t set,get -n "$REQUESTS" -r 10000 --csv 2>/dev/null |
        awk -F',' -v m="$mode" -v p="$P" 'NR > 1 {
            gsub(/"/, ""); print m, $1, p, $2, $5, $7 }' >>"$T/redis.res"
    done
    kill "$REDIS_PID"; wait "$REDIS_PID" || true; REDIS_PID=
}
redis_run durable
redis_run plain

# ---------------------------------------------------------------- table
echo
echo "dkv-node (durable: synced group commits) vs redis-server, loopback,"
echo "$CLIENTS connections, $VALUE-byte values ($(nproc) CPUs shared by" \
     "client and server)"
echo
awk '
FILENAME ~ /dkv.res$/ {
    split($3, a, "="); p = a[2]; split($4, b, "="); split($5, c, "=");
    split($6, d, "=");
    op = $2 == "PUT" ? "SET" : "GET";
    dk[op, p] = b[2]; d50[op, p] = c[2]; d99[op, p] = d[2]; next
}
{ r[$1, $2, $3] = $4; r50[$1, $2, $3] = $5; r99[$1, $2, $3] = $6 }
END {
    printf "%-12s %10s %12s %6s %12s %6s  %-15s %-15s %-15s\n",
        "operation", "dkv ops/s", "redis-aof/s", "ratio", "redis-mem/s",
        "ratio", "dkv p50/p99", "aof p50/p99", "mem p50/p99";
    n = split("SET 1,SET 16,GET 1,GET 16", rows, ",");
    for (i = 1; i <= n; i++) {
        split(rows[i], x, " "); op = x[1]; p = x[2];
        name = (op == "SET" ? "PUT/SET" : "GET") " P=" p;
        ra = r["durable", op, p]; rm = r["plain", op, p];
        printf "%-12s %10.0f %12.0f %6.2f %12.0f %6.2f  %-15s %-15s %-15s\n",
            name, dk[op, p], ra, (ra > 0 ? dk[op, p] / ra : 0), rm,
            (rm > 0 ? dk[op, p] / rm : 0),
            d50[op, p] "/" d99[op, p],
            r50["durable", op, p] "/" r99["durable", op, p],
            r50["plain", op, p] "/" r99["plain", op, p];
    }
}' "$T/dkv.res" "$T/redis.res"
echo
echo "ratio = dkv ops/s / redis ops/s (same run, same machine); redis-aof:"
echo "--appendonly yes --appendfsync always; redis-mem: no persistence."
echo "Raw results:"
cat "$T/dkv.res" "$T/redis.res"
