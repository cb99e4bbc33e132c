#!/bin/sh
# run-itest.sh -- runs tests/integration/itest (real dkv-node processes on
# loopback; see its opening comment) under a timeout.  Run by `make check`;
# skipped where the programs are .exe files (the Windows cross-build).
top_builddir=${top_builddir:-.}
case "${DKV_EXEEXT:-}" in
    *.exe) echo "SKIP: integration tests need a native build"; exit 77 ;;
esac
itest="$top_builddir/tests/integration/itest"
if test ! -x "$itest"; then
    echo "SKIP: $itest not built (not a Linux build)"
    exit 77
fi
DKV_NODE="$top_builddir/dkv-node"
export DKV_NODE
exec timeout 300 "$itest" "$@"
