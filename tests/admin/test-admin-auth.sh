#!/bin/sh
# test-admin-auth.sh -- starts a dkv-manager from the build tree on
# loopback (free port, private data and dkv directories) and runs
# tests/admin/authtest against it: forged, stale, replayed and misdirected
# signed requests are refused and logged.  Run by `make check`; skipped
# where authtest is not built (not Linux) or the programs are .exe files.
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)
case ${DKV_EXEEXT:-} in
    .exe) echo "test-admin-auth: Windows build (needs wine); skipped"
          exit 77 ;;
esac
AUTHTEST=$top_builddir/tests/admin/authtest
MGR=$top_builddir/dkv-manager
[ -x "$AUTHTEST" ] || {
    echo "test-admin-auth: $AUTHTEST not built (not Linux); skipped"
    exit 77; }
command -v python3 >/dev/null 2>&1 || {
    echo "test-admin-auth: python3 not found; skipped"; exit 77; }
PY="python3 $top_srcdir/tests/admin/admintest.py"

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-admauth.XXXXXX")
HOME=$T/home XDG_CONFIG_HOME=$T/config
export HOME XDG_CONFIG_HOME
mkdir -p "$HOME"
MGR_PID=""
cleanup() {
    if [ -n "$MGR_PID" ]; then
        kill -TERM "$MGR_PID" 2>/dev/null
        i=0
        while kill -0 "$MGR_PID" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.1; i=$((i + 1))
        done
        kill -KILL "$MGR_PID" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

C=$($PY ports 2) || exit 1
"$MGR" --data-dir "$T/mgr" --bind 127.0.0.1 --port 0 \
    --port-file "$T/port" --cluster-range "$C-$C" \
    --client-range "$((C + 1))-$((C + 1))" --log-file "$T/mgr.log" \
    >"$T/mgr.out" 2>&1 &
MGR_PID=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do
    kill -0 "$MGR_PID" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
done
P=$(cat "$T/port" 2>/dev/null)
ID=$($PY get "http://127.0.0.1:$P/admin/v1/identity" signKey 2>&1)
if [ -z "$P" ] || [ -z "$ID" ]; then
    echo "test-admin-auth: dkv-manager did not start (port '$P', id '$ID')"
    cat "$T/mgr.out" "$T/mgr.log" 2>/dev/null | tail -20
    echo "test-admin-auth: 1 checks, 1 failed"
    exit 1
fi
echo "test-admin-auth: dkv-manager on 127.0.0.1:$P, key $ID"
timeout 120 "$AUTHTEST" "http://127.0.0.1:$P" "$ID" "$XDG_CONFIG_HOME/dkv" \
    "$T/stranger" "$T/mgr.log"
rc=$?
if [ $rc -ne 0 ]; then
    echo "-- the manager's log:"
    tail -40 "$T/mgr.log" 2>/dev/null
fi
exit $rc
