#!/bin/sh
# runner-remote.sh -- the public-API suites again, against real dkv-node
# processes instead of "inproc:" stores (DKV_TEST_MODE=remote: each store
# a test opens is a fresh node on loopback, port picked by the node; see
# tests/unit/testnode.h).  Run by `make check`.
#
# Left out: api_persist (it tests "inproc:PATH" directories: reopening,
# one handle per path, removal of temporary stores; persistence across a
# node's restart is tested by tests/integration/).  Tests that drive the
# fake clock skip themselves and say so; api_realtime covers expiry.
top_builddir=${top_builddir:-.}
runner="$top_builddir/tests/unit/runner${DKV_EXEEXT:-}"
case "${DKV_EXEEXT:-}" in
    *.exe) echo "SKIP: dkv-node children need a native build"; exit 77 ;;
esac
DKV_TEST_MODE=remote
DKV_NODE="$top_builddir/dkv-node"
export DKV_TEST_MODE DKV_NODE
status=0
for suite in api_kv api_ttl api_coord api_watch api_txn api_search \
        api_realtime; do
    echo "=== remote: $suite"
    if command -v timeout >/dev/null 2>&1; then
        timeout 300 "$runner" "$suite" || status=1
    else
        "$runner" "$suite" || status=1
    fi
done
exit $status
