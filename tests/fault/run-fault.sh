#!/bin/sh
# run-fault.sh -- runs tests/fault/fault (replicated stores of real
# dkv-node processes killed, stopped, partitioned and restarted under
# load; docs/internals/fault-tests.md) under a timeout.  Run by `make
# check`; skipped where the programs are .exe files (the Windows
# cross-build) or the program is not built (not Linux).  The network
# namespaces of the partition scenarios are named after this script's
# process id and deleted on exit, whatever happens to the program.
top_builddir=${top_builddir:-.}
case "${DKV_EXEEXT:-}" in
    *.exe) echo "SKIP: fault tests need a native build"; exit 77 ;;
esac
case "$(uname -s 2>/dev/null)" in
    Linux) ;;
    *) echo "SKIP: fault tests are Linux only"; exit 77 ;;
esac
fault="$top_builddir/tests/fault/fault"
if test ! -x "$fault"; then
    echo "SKIP: $fault not built (not a Linux build)"
    exit 77
fi
DKV_NODE=${DKV_NODE:-$top_builddir/dkv-node}
export DKV_NODE
prefix="dkvf$$"

cleanup() {
    if command -v ip >/dev/null 2>&1; then
        for ns in $(ip netns list 2>/dev/null | awk '{print $1}' \
                    | grep "^$prefix"); do
            ip netns del "$ns" 2>/dev/null
        done
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

timeout -k 10 420 "$fault" --netns-prefix "$prefix" "$@"
rc=$?
if test $rc -eq 124; then
    echo "FAIL: fault tests timed out (420 s)"
fi
exit $rc
