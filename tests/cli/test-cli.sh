#!/bin/sh
# test-cli.sh -- drives every ClientShell command of `dkv` against an
# inproc store (inproc:PATH endpoint), checking the output field names of
# the reference, values, tables, exit codes, the per-user session file
# (in a private HOME / XDG_CONFIG_HOME), the interactive shell on piped
# input, and Ctrl+C on a watch and a benchmark.  Run by `make check`,
# twice: as is, and with DKV_CLI_NODE=1 (tests/cli/test-cli-node.sh)
# against a real dkv-node from the build tree.
#
#   top_builddir=BUILD top_srcdir=SRC sh tests/cli/test-cli.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)   # absolute: the tests cd away
top_builddir=${top_builddir:-.}
case ${DKV_EXEEXT:-} in
    .exe) echo "test-cli: Windows build (needs wine); skipped"; exit 77 ;;
esac
command -v python3 >/dev/null 2>&1 || {
    echo "test-cli: python3 not found; skipped"; exit 77; }
DKV=$(cd "$top_builddir" && pwd)/dkv
NODE=$(cd "$top_builddir" && pwd)/dkv-node
[ -x "$DKV" ] || { echo "test-cli: $DKV not built"; exit 1; }
CHK="python3 $top_srcdir/tests/cli/clitest.py"

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
HOME=$T/home XDG_CONFIG_HOME=$T/config
export HOME XDG_CONFIG_HOME
unset DKV_TOKEN LOCALAPPDATA
mkdir -p "$HOME"
cd "$T" || exit 1

# Mode: an inproc store (default), or, with DKV_CLI_NODE=1, a real
# dkv-node from the build tree on a port it picks itself (loopback).
EP="inproc:$T/store"
if [ "${DKV_CLI_NODE:-0}" = 1 ]; then
    [ -x "$NODE" ] || { echo "test-cli: no $NODE; skipped"; exit 77; }
    "$NODE" --store Orders --data-dir "$T/node" --client-port 0 \
        --port-file "$T/port" --log-file "$T/node.log" >/dev/null 2>&1 &
    node_pid=$!
    trap 'kill $node_pid 2>/dev/null; wait $node_pid; rm -rf "$T"' EXIT
    i=0
    while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -s "$T/port" ] || { echo "test-cli: dkv-node did not start"; exit 1; }
    EP="127.0.0.1:$(cat "$T/port")"
    echo "test-cli: against dkv-node at $EP"
fi

fails=0
n=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# run EXPECTED_RC ARGS...: runs dkv (bounded), output in $T/out, $T/err.
run() {
    want=$1; shift
    n=$((n + 1))
    timeout 120 "$DKV" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" != "$want" ]; then
        fail "dkv $* -> exit $rc, expected $want"
        sed 's/^/  out: /' "$T/out" | head -20
        sed 's/^/  err: /' "$T/err" | head -20
    fi
}
# chk PATH OP VALUE: checks the last -Json output.
chk() { $CHK "$T/out" "$@" || fail "after: $last"; }
grep_out() { grep -q -- "$1" "$T/out" || fail "output lacks '$1'"; }
grep_err() { grep -q -- "$1" "$T/err" || fail "stderr lacks '$1'"; }
j() { last="$*"; run "$@"; }

# ------------------------------------------------------------ help, usage
j 0 help; grep_out Connect-DkvStore; grep_out Stress-DkvStore
j 0 help set-dkvitem; grep_out ExpireAfterSec; grep_out "Position: 0"
j 2 No-SuchCommand; grep_err "dkv help"
j 2 Get-DkvItem -Nope x; grep_err "no parameter"
j 2 Get-DkvItem; grep_err "missing mandatory parameter -Key"

# ------------------------------------------------------------ connection
j 3 Get-DkvItem order:1001; grep_err "no store connection: run Connect-DkvStore"
j 0 Get-DkvConnection -Json; chk IsConnected eq false
j 0 Disconnect-DkvStore -Json; chk WasConnected eq false; chk Success eq true
j 2 Connect-DkvStore Orders nohostport; grep_err "not host:port"
j 2 Connect-DkvStore -StoreName Orders -Endpoints a:1 -TimeoutSec 121
j 0 Connect-DkvStore -StoreName Orders -Endpoints "$EP" -Json
chk . keys StoreName,Endpoints,ConnectedAtUtc,LogFile,Success,Error
chk Success eq true; chk Endpoints.0 eq "$EP"
[ -f "$XDG_CONFIG_HOME/dkv/session.json" ] || fail "no session file"
ls "$XDG_CONFIG_HOME"/dkv/dkv-Orders-*.log >/dev/null 2>&1 || fail "no log"
perm=$(ls -l "$XDG_CONFIG_HOME/dkv/session.json" | cut -c1-10)
[ "$perm" = "-rw-------" ] || fail "session file mode $perm"
j 1 Connect-DkvStore Orders "$EP"; grep_err "use -Force"
j 0 connect-dkvstore Orders "$EP" -force
j 0 Connect-DkvStore -StoreName Orders -Servers "$EP" -Force
j 0 Get-DkvConnection -Json
chk . keys IsConnected,StoreName,Endpoints,ClientId,ConnectedAtUtc,Success,Error
chk IsConnected eq true; chk StoreName eq Orders
$CHK "$T/out" ClientId ne null || fail "ClientId"
j 0 Get-DkvConnection; grep_out "IsConnected    : True"
j 0 Test-DkvConnection -Json
chk . keys StoreName,Connected,ServerCount,DurationMs,TimestampUtc,Error
chk Connected eq true; chk ServerCount eq 1
j 4 Test-DkvConnection -StoreName S -Endpoints 127.0.0.1:1 -TimeoutSec 1 -Json
chk Connected eq false

# ------------------------------------------------------------------ items
j 0 Set-DkvItem -Key order:1001 -Value confirmed -Json
chk . keys StoreName,Key,IsUpdate,Revision,Version,TimeToLiveSec,LeaseId,Success,Error
chk IsUpdate eq false; chk Version eq 1
j 0 Set-DkvItem order:1001 shipped -Json; chk IsUpdate eq true; chk Version eq 2
j 0 Get-DkvItem order:1001 -Json
chk . keys StoreName,Key,Exists,Value,Revision,Version,TtlSec,Success,Error
chk Exists eq true; chk Value eq shipped; chk TtlSec eq null
j 0 GET-DKVITEM -key order:1001; grep_out "Value     : shipped"
j 0 Get-DkvItem missing -Json; chk Exists eq false; chk Success eq true
j 2 Set-DkvItem k v -ExpireAfterSec 10 -LeaseId 1; grep_err "mutually exclusive"
j 2 Set-DkvItem k v -ExpireAfterSec 0
j 0 Set-DkvItem -Key k -Value v -WhatIf; grep_out "What if"
j 0 Get-DkvItem k -Json; chk Exists eq false
j 0 Set-DkvItem sess:1 data -ExpireAfterSec 300 -Json; chk TimeToLiveSec eq 300
j 0 Get-DkvItem sess:1 -Json; chk TtlSec le 300; chk TtlSec gt 290
j 0 Set-DkvItems -Items a=1,b=2,c=3 -Json; chk . len 3
chk 0 keys StoreName,Key,IsUpdate,Revision,Version,Success,Error
j 0 Set-DkvItems "@{d='x y';e=\"5\"}" -Json; chk 0.Key eq d
j 0 Get-DkvItem d -Json; chk Value eq "x y"
j 0 Get-DkvItems -Keys a,b,nope -Json; chk . len 3; chk 1.Value eq '"2"'
chk 2.Exists eq false
j 0 Get-DkvItems a, b; grep_out "Exists"
j 0 Remove-DkvItem a -Json
chk . keys StoreName,Key,Deleted,Revision,Version,Success,Error
chk Deleted eq true
j 0 Remove-DkvItem a -Json; chk Deleted eq false; chk Success eq true
j 0 Remove-DkvItems b,c,nope -Json; chk 0.Deleted eq true; chk 2.Deleted eq false
j 0 Refresh-DkvItem sess:1 -Json
chk . keys StoreName,Key,Refreshed,TimeToLive,Revision,Version,Success,Error
chk TimeToLive eq '"00:05:00"'
j 1 Refresh-DkvItem order:1001 -Json; chk Refreshed eq false
j 1 Refresh-DkvItem missing
j 0 Set-DkvItemExpiration sess:1 00:10:00 -Json
chk . keys StoreName,Key,TimeToLive,IsUpdate,Revision,Version,Success,Error
chk TimeToLive eq '"00:10:00"'
j 0 Set-DkvItemExpiration sess:1 -TimeToLive 2m -Json; chk TimeToLive eq '"00:02:00"'
j 2 Set-DkvItemExpiration sess:1 -TimeToLive soon
j 1 Set-DkvItemExpiration missing 30s
j 0 Get-DkvItemMetadata sess:1 -Json
chk . keys StoreName,Key,Exists,Revision,Version,TimeToLive,Metadata,Success,Error
chk TimeToLive le 120; chk Metadata eq '{}'
j 0 Test-DkvItem order:1001; grep_out True
j 0 Test-DkvItem nope; grep_out False
j 0 Test-DkvItem nope -Detailed -Json
chk . keys StoreName,Key,Exists,Success,Error

# --------------------------------------------------------------- counters
j 0 Increment-DkvCounter orders:processed -Json
chk . keys StoreName,Key,Value,Delta,Success,Error
chk Value eq 1; chk Delta eq 1
j 0 Increment-DkvCounter orders:processed -Delta 10 -Json; chk Value eq 11
j 0 Decrement-DkvCounter orders:processed 5 -Json; chk Value eq 6; chk Delta eq -5
j 2 Increment-DkvCounter orders:processed -Delta 0
j 2 Decrement-DkvCounter orders:processed -Delta -1
j 0 Set-DkvCounter requests:today 100 -Json
chk . keys StoreName,Key,Value,Success,Error
j 0 Get-DkvCounter requests:today -Json; chk Value eq 100
j 1 Get-DkvCounter nocounter -Json; chk Success eq false
j 0 Set-DkvCounter big 9223372036854775807
j 1 Increment-DkvCounter big; grep_err "range"

# ----------------------------------------------------------------- leases
j 0 Grant-DkvLease -TimeToLive 30s -Json
chk . keys LeaseId,TtlSeconds,Success,Error
chk TtlSeconds eq 30
lease=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["LeaseId"])' "$T/out")
j 0 Grant-DkvLease 00:05:00 -Json; chk TtlSeconds eq 300
j 0 Grant-DkvLease -TtlSec 15 -Json; chk TtlSeconds eq 15
j 2 Grant-DkvLease 10ms
j 0 Set-DkvItem leader-election me -LeaseId "$lease" -Json; chk LeaseId eq "\"$lease\""
j 0 Refresh-DkvLease "$lease" -Json; chk . keys LeaseId,Success,Error
j 0 Revoke-DkvLease -LeaseId "$lease" -Json
chk . keys LeaseId,Revoked,Success,Error; chk Revoked eq true
j 0 Get-DkvItem leader-election -Json; chk Exists eq false
j 1 Refresh-DkvLease "$lease"; grep_err "$lease"
j 1 Revoke-DkvLease "$lease" -Json; chk Revoked eq false
j 2 Refresh-DkvLease not-a-number
j 1 Set-DkvItem k v -LeaseId 999999 -Json; chk Success eq false
j 0 Test-DkvLease -Json
chk . keys Total,Passed,Failed,Success,Tests
chk Total eq 7; chk Passed eq 7; chk Success eq true; chk Tests.6.Test eq RevokeRemovesKey
j 0 Test-DkvLease; grep_out "KeepAliveExtendsLease"; grep_out "Passed  : 7"

# ----------------------------------------------------------------- watches
# Live events come from the same process: snapshot, then the TTL delete.
cat >"$T/in" <<EOF
Set-DkvItem w:1 hello -ExpireAfterSec 1
Set-DkvItem w:2 x
Watch-DkvPrefix -Prefix w: -IncludeSnapshot -MaxEvents 3 -DurationSec 20 -Json
EOF
n=$((n + 1))
timeout 60 "$DKV" <"$T/in" >"$T/out" 2>"$T/err" || fail "watch shell rc $?"
tail -3 "$T/out" >"$T/w"
$CHK "$T/w" 0 keys Event,Key,Revision,Value,Timestamp || fail watch-keys
$CHK "$T/w" 0.Event eq Snapshot || fail watch-snapshot
$CHK "$T/w" 2.Event eq Delete || fail watch-delete
$CHK "$T/w" 2.Key eq w:1 || fail watch-delete-key
j 0 Watch-DkvKey w:2 -IncludeSnapshot -MaxEvents 1; grep_out Timestamp
grep_out "Snapshot w:2"
# Ctrl+C ends a watch cleanly (exit 0).
n=$((n + 1))
"$DKV" Watch-DkvKey never >"$T/out" 2>"$T/err" &
pid=$!
sleep 1
kill -INT $pid
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
wait $pid; rc=$?
[ "$rc" = 0 ] || fail "watch after Ctrl+C: exit $rc"
grep_err "Watch stopped"

# ------------------------------------------------------------ performance
j 0 Test-DkvLatency -StoreName Orders -Iterations 200 -Json
chk . keys StoreName,Iterations,ObjectSizeBytes,MinMs,AvgMs,P95Ms,P99Ms,MaxMs
chk Iterations eq 200; chk ObjectSizeBytes eq 100
j 2 Test-DkvLatency -Iterations 0
j 2 Test-DkvLatency -Iterations 10 -ObjectSizeBytes 16
j 2 Test-DkvLatency -StoreName Other -Iterations 10
j 0 Test-DkvThroughput -StoreName Orders -DurationSec 1 -Concurrency 4 -Json
chk . keys StoreName,DurationSecRequested,DurationSecActual,Concurrency,ObjectSizeBytes,TotalOperations,OpsPerSecond,Failures
chk TotalOperations gt 0; chk Failures eq 0
grep_err "ops/s"
j 2 Test-DkvThroughput -DurationSec 1 -Concurrency 1025
j 0 Benchmark-DkvStore -Profile Mixed -DurationSec 1 -Concurrency 2 -ObjectSizeBytes 64 -Json
chk . keys StoreName,Profile,DurationSecRequested,DurationSecActual,Concurrency,ObjectSizeBytes,TotalOperations,OpsPerSecond,Failures
chk Profile eq Mixed; chk ObjectSizeBytes eq 64
j 0 Benchmark-DkvStore -Profile writeheavy -DurationSec 1 -Concurrency 2 -Json
chk Profile eq WriteHeavy
j 2 Benchmark-DkvStore -Profile Bogus -DurationSec 1
j 0 Stress-DkvStore -DurationSec 1 -Concurrency 8 -Json
chk . keys StoreName,DurationSec,Concurrency,ObjectSizeBytes,TotalOperations,Failures,ErrorRatePct,LastError
chk Failures eq 0; chk LastError eq null
j 2 Stress-DkvStore -DurationSec 1 -Concurrency 2049
# Ctrl+C ends a benchmark early and still prints the summary.
n=$((n + 1))
"$DKV" Benchmark-DkvStore -Profile ReadHeavy -DurationSec 60 -Concurrency 2 -Json \
    >"$T/out" 2>"$T/err" &
pid=$!
sleep 2
kill -INT $pid
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
wait $pid; rc=$?
[ "$rc" = 0 ] || fail "benchmark after Ctrl+C: exit $rc"
chk DurationSecActual le 30; chk TotalOperations gt 0
# The temporary keys are gone.
j 0 Get-DkvConnection
printf 'Get-DkvItem order:1001 -Json\n' | timeout 60 "$DKV" >"$T/out" 2>&1
chk Value eq shipped

# --------------------------------------------------------- interactive shell
cat >"$T/in" <<'EOF'
# comments and blank lines are skipped

Set-DkvItem "sh:1" 'two words'
get-dkvitem sh:1 -json
help Get-DkvItem
quit
Get-DkvItem never-run
EOF
n=$((n + 1))
timeout 60 "$DKV" <"$T/in" >"$T/out" 2>"$T/err"
[ $? = 0 ] || fail "shell exit status"
grep_out '"Value": "two words"'; grep_out SYNTAX
grep -q never-run "$T/out" "$T/err" && fail "ran past quit"
printf 'Get-DkvItem\n' | timeout 60 "$DKV" >"$T/out" 2>"$T/err"
[ $? = 2 ] || fail "shell: last status not returned"

# -------------------------------------------------------------- disconnect
j 0 Disconnect-DkvStore -Json
chk . keys StoreName,WasConnected,DisconnectedAt,Success,Error
chk WasConnected eq true; chk StoreName eq Orders
[ -f "$XDG_CONFIG_HOME/dkv/session.json" ] && fail "session file kept"
j 0 Disconnect-DkvStore -Json; chk WasConnected eq false
j 3 Set-DkvItem a b; grep_err "Connect-DkvStore"
grep -q "connect" "$XDG_CONFIG_HOME"/dkv/dkv-Orders-*.log || fail "log lines"

echo "test-cli: $n commands, $fails failure(s)"
[ $fails = 0 ]
