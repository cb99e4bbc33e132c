#!/bin/sh
# test-manager-api.sh -- dkv-manager's HTTP surface on loopback, without
# the CLI: settings errors, /health, identity, the refusals, /metrics,
# signed creates and replays (when python3 has `cryptography`), the key
# and the nonces across a restart.  The checks are in mgrapi.py.
#
#   top_builddir=BUILD top_srcdir=SRC sh tests/admin/test-manager-api.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)
case ${DKV_EXEEXT:-} in
    .exe) echo "test-manager-api: Windows build (needs wine); skipped"
          exit 77 ;;
esac
command -v python3 >/dev/null 2>&1 || {
    echo "test-manager-api: python3 not found; skipped"; exit 77; }
MGR=$top_builddir/dkv-manager
[ -x "$MGR" ] || { echo "test-manager-api: $MGR not built"; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-mgrapi.XXXXXX")
HOME=$T/home XDG_CONFIG_HOME=$T/config
export HOME XDG_CONFIG_HOME
unset LOCALAPPDATA
mkdir -p "$HOME"

timeout 300 python3 "$top_srcdir/tests/admin/mgrapi.py" "$MGR" "$T"
rc=$?
if [ $rc -ne 0 ]; then
    echo "test-manager-api: failed; the manager's log:"
    tail -n 40 "$T/manager.log" 2>/dev/null
else
    rm -rf "$T"
fi
exit $rc
