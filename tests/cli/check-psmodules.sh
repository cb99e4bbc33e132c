#!/bin/sh
# check-psmodules.sh -- static checks of the PowerShell modules in
# win32/powershell (tests/cli/check-psmodules.py: exports, the reference's
# cmdlets, balanced brackets and quotes, parameters known to dkv), after
# the checker's own self-test.  Run by `make check`.
#
#   top_builddir=BUILD top_srcdir=SRC sh tests/cli/check-psmodules.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_builddir=${top_builddir:-.}
command -v python3 >/dev/null 2>&1 || {
    echo "check-psmodules: python3 not found; skipped"; exit 77; }
CHK="$top_srcdir/tests/cli/check-psmodules.py"
python3 "$CHK" --self-test || exit 1
DKV="$top_builddir/dkv${DKV_EXEEXT:-}"
if [ -x "$DKV" ] && [ -z "${DKV_EXEEXT:-}" ]; then
    exec python3 "$CHK" --dkv "$DKV" "$top_srcdir/win32/powershell"
fi
exec python3 "$CHK" "$top_srcdir/win32/powershell"
