#!/bin/sh
# run-cluster-bench.sh -- a 3-node dkv store against a 3-member etcd 3.4
# cluster, side by side, in one run, on this machine: the same closed-loop
# load (bench/bench-cluster: C client threads, one request outstanding
# each), 100-byte values, random keys from a fixed key space, writes and
# linearizable reads at 1, 16 and 256 clients (and serializable reads,
# for information).  dkv-node runs with its defaults (every commit synced:
# durable writes) and etcd with its own (it fsyncs its WAL), both on
# loopback, on ports picked at run time, with their own data directories
# under a temporary directory removed at the end.  Both run all along;
# the measurements alternate between them (one system at a time), twice.
#
#   bench/run-cluster-bench.sh          (from anywhere; about 4 minutes)
#
# Environment:
#   BUILD          build directory (default: build/ at the top of the
#                  tree; configured there if it has no Makefile)
#   DKV_NO_DEPS=1  do not run scripts/install-deps.sh --dev (etcd-server,
#                  etcd-client and the build dependencies)
#   BENCH_SECONDS  measured seconds per row and system (default 5)
#   BENCH_WARMUP   unmeasured seconds before each row (default 1)
#   BENCH_CLIENTS  concurrencies (default 1,16,256)
#   BENCH_VALUE    value size in bytes (default 100)
#   BENCH_KEYS     key space (default 10000)
#   BENCH_OPS      put,get,sget (default: all three)
#   BENCH_ROUNDS   rounds per row, alternating the systems; the best
#                  round of each counts (default 2)
#   DKV_HANDLES    0 (default): one dkv client handle, hence one
#                  connection, per client thread, as for etcd; H: H
#                  handles shared by the threads
#   DKV_NODES      3 (default), or 1 for a single node (information)
#   ETCD_GATEWAY=1 also measure etcd through its HTTP/JSON gateway
#
# Client i talks to member i mod 3 in both systems (for dkv: a seed list
# that starts at that member).  Prints a table: dkv and etcd ops/s and
# p99 latency per row, and the ratio dkv/etcd.  Not run in CI.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$top/build}
SECS=${BENCH_SECONDS:-5}
WARM=${BENCH_WARMUP:-1}
CLIENTS=${BENCH_CLIENTS:-1,16,256}
VALUE=${BENCH_VALUE:-100}
KEYS=${BENCH_KEYS:-10000}
OPS=${BENCH_OPS:-put,get,sget}
ROUNDS=${BENCH_ROUNDS:-2}
HANDLES=${DKV_HANDLES:-0}
NODES=${DKV_NODES:-3}

if [ "${DKV_NO_DEPS:-0}" != 1 ]; then
    "$top/scripts/install-deps.sh" --dev
fi
command -v etcd >/dev/null || {
    echo "run-cluster-bench: needs etcd (apt-get install etcd-server)" >&2
    exit 2; }
command -v python3 >/dev/null || {
    echo "run-cluster-bench: needs python3" >&2; exit 2; }

mkdir -p "$B"
B=$(cd "$B" && pwd)
if [ ! -f "$B/Makefile" ]; then
    [ -x "$top/configure" ] || (cd "$top" && ./autogen.sh)
    (cd "$B" && "$top/configure" >/dev/null)
fi
make -C "$B" -j2 bench >/dev/null
for p in "$B/dkv-node" "$B/bench/bench-cluster"; do
    [ -x "$p" ] || { echo "run-cluster-bench: $p missing" >&2; exit 2; }
done

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-cluster-bench.XXXXXX")
PIDS=
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    PIDS=
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# N distinct free loopback ports, held open together while picked.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# stop_all: stops what runs now, by PID, and waits for it.
stop_all() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    PIDS=
}

# bench SYSTEM ENDPOINTS OP CLIENTS: one row of bench-cluster, its line
# appended to $T/res.
bench() {
    rc=0
    "$B/bench/bench-cluster" --system "$1" --endpoints "$2" --ops "$3" \
        --clients "$4" --seconds "$SECS" --warmup "$WARM" --value "$VALUE" \
        --keys "$KEYS" --handles "$HANDLES" --load 0 \
        >"$T/row" 2>>"$T/bench.err" || rc=$?
    cat "$T/row"
    cat "$T/row" >>"$T/res"
    [ $rc = 0 ] ||
        echo "run-cluster-bench: $1 $3 C=$4 failed (see below)" >&2
}

# ------------------------------------------------------------------ dkv
replicated=0
if "$B/dkv-node" --help 2>&1 | grep -q -- '--peers'; then
    replicated=1
fi
if [ "$NODES" = 1 ] || [ $replicated = 0 ]; then
    NODES=1
fi
# shellcheck disable=SC2046  # the ports, split on purpose
set -- $(free_ports $((NODES * 2)))
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$T/secret"
PEERS=; EP=
i=1
while [ $i -le "$NODES" ]; do
    eval "CP$i=\$1 KP$i=\$2"
    shift 2
    eval "PEERS=\"\${PEERS:+\$PEERS,}$i=127.0.0.1:\$KP$i:\$CP$i\""
    eval "EP=\"\${EP:+\$EP,}127.0.0.1:\$CP$i\""
    i=$((i + 1))
done
i=1
cport=
while [ $i -le "$NODES" ]; do
    eval "cport=\$CP$i"
    if [ "$NODES" = 1 ]; then
        set -- --client-port "$cport"
    else
        set -- --client-port "$cport" --node-id $i --peers "$PEERS" \
            --secret-file "$T/secret"
    fi
    "$B/dkv-node" --store Bench --data-dir "$T/dkv$i" \
        --log-file "$T/dkv$i.log" "$@" >"$T/dkv$i.out" 2>&1 &
    PIDS="$PIDS $!"
    i=$((i + 1))
done
DKV_EP=$EP

# ----------------------------------------------------------------- etcd
# shellcheck disable=SC2046
set -- $(free_ports 6)
IC="e1=http://127.0.0.1:$2,e2=http://127.0.0.1:$4,e3=http://127.0.0.1:$6"
EP="127.0.0.1:$1,127.0.0.1:$3,127.0.0.1:$5"
i=1
while [ $i -le 3 ]; do
    c=$1; p=$2; shift 2
    etcd --name e$i --data-dir "$T/etcd$i" \
        --listen-client-urls "http://127.0.0.1:$c" \
        --advertise-client-urls "http://127.0.0.1:$c" \
        --listen-peer-urls "http://127.0.0.1:$p" \
        --initial-advertise-peer-urls "http://127.0.0.1:$p" \
        --initial-cluster "$IC" --initial-cluster-state new \
        --initial-cluster-token dkv-bench >"$T/etcd$i.log" 2>&1 &
    PIDS="$PIDS $!"
    i=$((i + 1))
done
ETCD_EP=$EP
export ETCD_EP
ETCD_VERSION=$(etcd --version | sed -n 's/^etcd Version: //p')
echo "run-cluster-bench: dkv, $NODES node(s): $DKV_EP" >&2
echo "run-cluster-bench: etcd $ETCD_VERSION, 3 members: $ETCD_EP" >&2

# ------------------------------------------------------------- the rows
# Both stores run all along (the idle one only heartbeats); the rows
# alternate between them, ROUNDS times, so a change in the machine's
# other load hits both alike.  The best round of each counts.
SYSTEMS="dkv etcd"
[ "${ETCD_GATEWAY:-0}" = 1 ] && SYSTEMS="$SYSTEMS etcd-http"
loaded=0
for op in put get sget; do
    case ",$OPS," in *",$op,"*) ;; *) continue ;; esac
    if [ $op != put ] && [ $loaded = 0 ]; then
        for s in $SYSTEMS; do
            if [ "$s" = dkv ]; then ep=$DKV_EP; else ep=$ETCD_EP; fi
            "$B/bench/bench-cluster" --system "$s" --endpoints "$ep" \
                --ops load --keys "$KEYS" --value "$VALUE" \
                2>>"$T/bench.err" ||
                echo "run-cluster-bench: $s: loading the keys failed" >&2
        done
        loaded=1
    fi
    for c in $(echo "$CLIENTS" | tr ',' ' '); do
        r=1
        while [ $r -le "$ROUNDS" ]; do
            for s in $SYSTEMS; do
                if [ "$s" = dkv ]; then ep=$DKV_EP; else ep=$ETCD_EP; fi
                bench "$s" "$ep" $op "$c"
            done
            r=$((r + 1))
        done
    done
done
# Who led (row C=1 talks to member 1 only: a leader or a follower).
LEADERS="dkv:"
for f in "$T"/dkv*.log; do
    if grep -q "became leader" "$f" 2>/dev/null; then
        LEADERS="$LEADERS $(basename "$f" .log | sed 's/dkv/node /')"
    fi
done
[ "$NODES" = 1 ] && LEADERS="dkv: node 1"
if command -v etcdctl >/dev/null; then
    LEADERS="$LEADERS; etcd: $(ETCDCTL_API=3 etcdctl --endpoints="$ETCD_EP" \
        endpoint status 2>/dev/null | awk -F', *' '$5 == "true" {
            n = split(ENVIRON["ETCD_EP"], a, ",");
            for (i = 1; i <= n; i++) if (a[i] == $1) print "member " i }')"
fi
stop_all

# ---------------------------------------------------------------- table
echo
echo "dkv ($NODES node(s), durable: synced commits) vs etcd" \
     "$ETCD_VERSION (3 members), loopback,"
echo "closed loop (one request outstanding per client), $VALUE-byte" \
     "values, $KEYS keys,"
echo "best of $ROUNDS x ${SECS} s per row, $(nproc) CPUs shared by all;" \
     "leader(s) at the end: $LEADERS"
echo
awk -v clients="$CLIENTS" '
{
    split($3, c, "="); split($4, o, "="); split($6, q, "=");
    split($7, x, "=");
    k = $1 SUBSEP $2 SUBSEP c[2];
    if (!(k in ops) || o[2] + 0 > ops[k] + 0) {
        ops[k] = o[2]; p99[k] = q[2]
    }
    err[k] += x[2]; seen[$1] = 1
}
END {
    printf "%-14s %11s %9s %11s %9s %7s", "row", "dkv ops/s",
        "dkv p99", "etcd ops/s", "etcd p99", "ratio";
    if (seen["etcd-http"]) printf " %11s %9s", "etcd-gw/s", "gw p99";
    printf "\n";
    nc = split(clients, cs, ",");
    split("put get sget", opl, " ");
    split("write linread serread", names, " ");
    for (j = 1; j <= 3; j++) {
        for (i = 1; i <= nc; i++) {
            kd = "dkv" SUBSEP opl[j] SUBSEP cs[i];
            ke = "etcd" SUBSEP opl[j] SUBSEP cs[i];
            kg = "etcd-http" SUBSEP opl[j] SUBSEP cs[i];
            if (!(kd in ops) && !(ke in ops)) continue;
            d = (kd in ops) ? ops[kd] : "-";
            dp = (kd in p99) ? p99[kd] : "-";
            t = (ke in ops) ? ops[ke] : "-";
            tp = (ke in p99) ? p99[ke] : "-";
            r = (d != "-" && t != "-" && t > 0) ? sprintf("%.2f", d / t) : "-";
            printf "%-14s %11s %9s %11s %9s %7s", names[j] " " cs[i], d, dp,
                t, tp, r;
            if (seen["etcd-http"])
                printf " %11s %9s", ops[kg], p99[kg];
            if (err[kd] > 0 || err[ke] > 0)
                printf "  errors dkv %d etcd %d", err[kd], err[ke];
            printf "\n";
        }
    }
}' "$T/res"
echo
echo "ops/s: answered requests per second; p99 in ms; ratio = dkv ops/s /"
echo "etcd ops/s (same run).  write = put; linread = linearizable get/range"
echo "(both systems confirm leadership for it); serread = serializable (local)."
if [ -s "$T/bench.err" ]; then
    echo
    echo "bench-cluster messages:"
    cat "$T/bench.err"
fi
