#!/bin/sh
# test-admin-cli.sh -- the AdminShell commands of `dkv` without a manager:
# the no-managers message and exit code, refusal of unspecified addresses
# (0.0.0.0, ::, ::0), parameter validation, the row and exit code for an
# unreachable manager (a closed loopback port chosen at run time), the
# managers context left alone after a failed connect, several managers
# with -Parallel and -FailFast, and Get-DkvAdminKey
# (format, 0600 key file, the same line twice), all in a private
# XDG_CONFIG_HOME.  The end-to-end tests with real managers are elsewhere.
#
#   top_builddir=BUILD top_srcdir=SRC sh tests/cli/test-admin-cli.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=${top_builddir:-.}
case ${DKV_EXEEXT:-} in
    .exe) echo "test-admin-cli: Windows build (needs wine); skipped"; exit 77 ;;
esac
command -v python3 >/dev/null 2>&1 || {
    echo "test-admin-cli: python3 not found; skipped"; exit 77; }
DKV=$(cd "$top_builddir" && pwd)/dkv
[ -x "$DKV" ] || { echo "test-admin-cli: $DKV not built"; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-admin-cli.XXXXXX")
trap 'rm -rf "$T"' EXIT
HOME=$T/home XDG_CONFIG_HOME=$T/config
export HOME XDG_CONFIG_HOME
unset DKV_TOKEN LOCALAPPDATA http_proxy HTTP_PROXY
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
cd "$T" || exit 1

fails=0
n=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# run EXPECTED_RC ARGS...: runs dkv (bounded), output in $T/out, $T/err.
run() {
    want=$1; shift
    n=$((n + 1))
    last="$*"
    timeout 60 "$DKV" "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" != "$want" ]; then
        fail "dkv $* -> exit $rc, expected $want"
        sed 's/^/  out: /' "$T/out" | head -20
        sed 's/^/  err: /' "$T/err" | head -20
    fi
}
grep_out() { grep -q -- "$1" "$T/out" || fail "$last: output lacks '$1'"; }
grep_err() { grep -q -- "$1" "$T/err" || fail "$last: stderr lacks '$1'"; }
no_file() { [ ! -e "$1" ] || fail "$last: $1 exists"; }

# A loopback port that nothing listens on: bound, then closed.
closed_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
P=$(closed_port)
[ -n "$P" ] || { echo "test-admin-cli: cannot pick a port"; exit 1; }

NOMGR="No managers connected. Use Connect-DkvManager or specify -Managers."

# ------------------------------------------------------------- help
run 0 help; grep_out Connect-DkvManager; grep_out Watch-DkvStoreMetrics
grep_out Get-DkvAdminKey
run 0 help New-DkvStore; grep_out InstancePrefix; grep_out "Default: 7811"
run 0 help Connect-DkvManager; grep_out "Default: 7801"

# ------------------------------------------------------- no managers
for cmd in "Get-DkvStore" "Get-DkvStore -Name S" "Start-DkvStore TestStore" \
        "Stop-DkvStore TestStore" "New-DkvStore -Name S -InstancePrefix n" \
        "Add-DkvInstance -StoreName S -InstanceName s-2 -ClustronPort 1 \
-ClientPort 2" \
        "Watch-DkvStoreMetrics -StoreName S -Count 1"; do
    # shellcheck disable=SC2086
    run 3 $cmd; grep_err "$NOMGR"
done

# ----------------------------------------------- unspecified addresses
for a in 0.0.0.0 :: ::0 "[::]" "[::]:7801" "0.0.0.0:7801" \
        "http://0.0.0.0:7801"; do
    run 2 Connect-DkvManager -Managers "$a"
    grep_err "is an unspecified bind address, not a manager; give the"
    grep_err "manager's reachable address"
done
run 2 Get-DkvStore -Managers 0.0.0.0; grep_err "unspecified bind address"
run 2 Connect-DkvManager -Managers "https://127.0.0.1:$P"; grep_err "plain HTTP"
run 2 Connect-DkvManager -Managers "127.0.0.1:70000"; grep_err "1 to 65535"
run 2 Connect-DkvManager -Managers "[::1"; grep_err "brackets"
run 2 Connect-DkvManager; grep_err "missing mandatory parameter -Managers"

# ---------------------------------------------------- parameter checks
run 2 Watch-DkvStoreMetrics -StoreName S -RefreshSec 0; grep_err "RefreshSec"
run 2 Watch-DkvStoreMetrics -StoreName S -RefreshSec 61; grep_err "1..60"
run 2 Watch-DkvStoreMetrics -RefreshSec 5
grep_err "missing mandatory parameter -StoreName"
run 2 New-DkvStore -Name S -InstancePrefix n -InstanceCount 0
grep_err "InstanceCount"
run 2 New-DkvStore -Name S -InstancePrefix n -ClustronPort 65535 \
    -InstanceCount 2 -Managers "127.0.0.1:$P"
grep_err "65535"
run 2 New-DkvStore -Name S -InstancePrefix n -ClustronPort 0
grep_err "ClustronPort"
run 2 New-DkvStore -Name S -InstancePrefix n -ClustronPort 20000 \
    -ClientPort 20001 -InstanceCount 2
grep_err "overlap"
run 2 New-DkvStore -Name "bad/name" -InstancePrefix n
grep_err "not a valid name"
run 2 New-DkvStore -Name S
grep_err "missing mandatory parameter -InstancePrefix"
run 2 Add-DkvInstance -StoreName S -InstanceName s-2
grep_err "ClustronPort"
run 2 Add-DkvInstance -StoreName S -Nodes "s-2:20001"
grep_err "neither"
run 2 Add-DkvInstance -StoreName S \
    -Nodes "@{ InstanceName = 's-2'; Colour = 1 }"
grep_err "unknown field 'Colour'"
run 2 Add-DkvInstance -StoreName S -Nodes "s-2:20001:20002,s-2:20003:20004"
grep_err "given twice"
run 2 Add-DkvInstance -StoreName S -Nodes "s-2:20001:20001"
grep_err "differ"

# ---------------------------------------------- unreachable manager
run 4 Connect-DkvManager -Managers "127.0.0.1:$P"
grep_out "127.0.0.1:$P"; grep_out "Connect"; grep_out "FAILED"
grep_out "cannot reach the manager at 127.0.0.1:$P: connection refused"
grep_out "is the management port $P open in its firewall"
grep_err "context was not changed"
no_file "$XDG_CONFIG_HOME/dkv/managers.json"
run 4 Connect-DkvManager -Managers "127.0.0.1" -Port "$P" -Json
python3 - "$T/out" "$P" <<'EOF' || fail "Connect-DkvManager -Json rows"
import json, sys
rows = json.load(open(sys.argv[1]))
assert isinstance(rows, list) and len(rows) == 1, rows
r = rows[0]
assert r["Manager"] == "127.0.0.1:" + sys.argv[2], r
assert r["Action"] == "Connect" and r["Result"] == "FAILED", r
assert "connection refused" in r["Message"], r
EOF
run 4 Connect-DkvManager -Managers "http://127.0.0.1:$P/"
grep_out "127.0.0.1:$P"
run 4 Get-DkvStore -Managers "127.0.0.1:$P"
grep_out "FAILED"; grep_out "connection refused"
run 4 Start-DkvStore TestStore -Managers "127.0.0.1:$P"
grep_out "StartInstance"; grep_out "FAILED"
run 4 New-DkvStore -Name S -InstancePrefix n -Managers "127.0.0.1:$P"
grep_out "CreateStore"; grep_out "FAILED"
run 4 Watch-DkvStoreMetrics -StoreName S -Count 2 -RefreshSec 1 \
    -Managers "127.0.0.1:$P"
grep_out "Store: S Updated: "; grep_out "No metrics for store S"
grep_out "connection refused"
[ "$(grep -c 'Store: S Updated' "$T/out")" = 2 ] ||
    fail "Watch-DkvStoreMetrics -Count 2 did not draw twice"
grep -q "$(printf '\033')" "$T/out" && fail "escape codes without a terminal"

# Several managers: -Parallel (one thread each) keeps the rows in the
# order given; -FailFast skips the managers after a failed one.
P2=$P P3=$P
while [ "$P2" = "$P" ]; do P2=$(closed_port); done
while [ "$P3" = "$P" ] || [ "$P3" = "$P2" ]; do P3=$(closed_port); done
run 4 Connect-DkvManager -Managers "127.0.0.1:$P,127.0.0.1:$P2,127.0.0.1:$P3" \
    -Parallel -Json
python3 - "$T/out" "$P" "$P2" "$P3" <<'EOF' || fail "Connect -Parallel rows"
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["Manager"] for r in rows] == \
    ["127.0.0.1:" + p for p in sys.argv[2:]], rows
assert all(r["Result"] == "FAILED" for r in rows), rows
assert all("connection refused" in r["Message"] for r in rows), rows
EOF
no_file "$XDG_CONFIG_HOME/dkv/managers.json"
run 4 Get-DkvStore -Managers "127.0.0.1:$P,127.0.0.1:$P2" -FailFast
grep_out "connection refused"; grep_out "not tried"

# A corrupt managers file is reported, not trusted.
mkdir -p "$XDG_CONFIG_HOME/dkv"
echo '{"Managers": [' >"$XDG_CONFIG_HOME/dkv/managers.json"
run 1 Get-DkvStore; grep_err "damaged"
rm -f "$XDG_CONFIG_HOME/dkv/managers.json"

# --------------------------------------------------- Get-DkvAdminKey
# (a fresh directory: the signed commands above made a key already)
XDG_CONFIG_HOME=$T/config2
mkdir -p "$XDG_CONFIG_HOME"
no_file "$XDG_CONFIG_HOME/dkv/admin.key"
run 0 Get-DkvAdminKey
grep_err "made your admin key"
line1=$(cat "$T/out")
echo "$line1" | grep -Eq '^ed25519 [A-Za-z0-9+/]{43}= [^ ]+$' ||
    fail "Get-DkvAdminKey line: '$line1'"
[ "$(wc -l <"$T/out")" = 1 ] || fail "Get-DkvAdminKey prints one line"
[ -f "$XDG_CONFIG_HOME/dkv/admin.key" ] || fail "no admin.key"
mode=$(stat -c %a "$XDG_CONFIG_HOME/dkv/admin.key" 2>/dev/null || echo 600)
[ "$mode" = 600 ] || fail "admin.key has mode $mode"
run 0 Get-DkvAdminKey
[ "$(cat "$T/out")" = "$line1" ] || fail "Get-DkvAdminKey changed"
[ -s "$T/err" ] && fail "second Get-DkvAdminKey wrote to stderr"
run 0 Get-DkvAdminKey -Json
python3 - "$T/out" "$line1" <<'EOF' || fail "Get-DkvAdminKey -Json"
import json, sys
o = json.load(open(sys.argv[1]))
assert o["Line"] == sys.argv[2], o
assert sys.argv[2].split(" ")[1] == o["KeyId"], o
assert o["KeyFile"].endswith("/dkv/admin.key"), o
EOF

echo "test-admin-cli: $n commands, $fails failures"
[ "$fails" = 0 ]
