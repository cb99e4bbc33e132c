# shellcheck shell=sh
# smoke-lib.sh -- shared by tests/win/test-wine-*.sh (sourced, POSIX sh):
# the skip rules, a scratch directory, the wine prefix and its
# wineserver, host paths as Windows paths, free loopback ports; the check
# counting of tests/testlib.sh.
#
# The sourcing test calls "win_setup NAME shared|own" (NAME: the test's
# name in the summary line), which skips (exit 77) outside the Windows
# cross-build or without wine, and leaves:
#   B        the build tree (absolute), whose .exe files are tested
#   T        a scratch directory, removed at exit
#   WINEPREFIX (exported) shared: the caller's prefix if it set one,
#            else (and always with own) a fresh one under $T
#   OWN_PREFIX  1 when the prefix is ours (its wineserver is killed at
#            exit), 0 when the caller gave it (left alone)
# The test adds its own clean-up as a function named test_cleanup.

# B, T and OWN_PREFIX are for the sourcing test (file-wide directive).
# shellcheck disable=SC2034
NAME=wine

# ok, fail, check, skip and finish: tests/testlib.sh.
# shellcheck source=/dev/null # tests/testlib.sh, checked alone
. "$(cd "$(dirname "$0")/.." && pwd)/testlib.sh"

# winpath PATH: the Windows name of the absolute host PATH (drive Z: is
# the host's root in every wine prefix).
winpath() {
    printf 'Z:%s' "$1" | sed 's|/|\\|g'
}

# free_ports N: prints a base port B with B..B+N-1 free on loopback,
# never 78xx (tests/admin/admintest.py); nothing when there is none.
free_ports() {
    python3 "$(cd "$(dirname "$0")/.." && pwd)/admin/admintest.py" \
        ports "$1"
}

# wine_run SECONDS PROGRAM ARG...: runs a Windows PROGRAM under wine,
# bounded in time.
wine_run() {
    secs=$1
    shift
    timeout "$secs" wine "$@"
}

# wait_file FILE TENTHS: waits until FILE is non-empty, at most TENTHS
# tenths of a second.  Returns 0 when it is.
wait_file() {
    n=0
    while [ ! -s "$1" ]; do
        n=$((n + 1))
        [ "$n" -gt "$2" ] && return 1
        sleep 0.1
    done
    return 0
}

# The exit trap: the test's own clean-up, then the prefix's wineserver
# (only ours) and the scratch directory.
win_cleanup() {
    if command -v test_cleanup >/dev/null 2>&1; then
        test_cleanup
    fi
    if [ "${OWN_PREFIX:-0}" = 1 ]; then
        wineserver -k >/dev/null 2>&1 || true
        timeout 20 wineserver -w >/dev/null 2>&1 || true
    fi
    [ -n "${T:-}" ] && rm -rf "$T"
}

# win_setup NAME shared|own: see the header.
win_setup() {
    NAME=$1
    [ "${DKV_EXEEXT:-}" = ".exe" ] ||
        skip "not the Windows cross-build (DKV_EXEEXT is not .exe)"
    command -v wine >/dev/null 2>&1 || skip "wine is not installed"
    command -v wineserver >/dev/null 2>&1 || skip "wineserver is missing"
    command -v timeout >/dev/null 2>&1 || skip "timeout is missing"
    B=$(cd "${top_builddir:-.}" && pwd)
    T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-$NAME.XXXXXX") || exit 1
    WINEDEBUG=-all
    export WINEDEBUG
    OWN_PREFIX=0
    if [ -z "${WINEPREFIX:-}" ] || [ "$2" = own ]; then
        WINEPREFIX=$T/prefix
        OWN_PREFIX=1
    fi
    export WINEPREFIX
    trap win_cleanup EXIT
    trap 'exit 1' INT TERM HUP
    # A new prefix is made first, and its server ended: a server started
    # on the empty directory can end up with two services.exe, one of
    # which does not know the services created in the other (sc and reg
    # then fail every other call).
    if [ "$OWN_PREFIX" = 1 ] || [ ! -f "$WINEPREFIX/system.reg" ]; then
        mkdir -p "$WINEPREFIX"
        echo "making the wine prefix $WINEPREFIX"
        timeout 180 wineboot -i >/dev/null 2>&1 ||
            skip "wineboot could not make a prefix in $WINEPREFIX"
        wineserver -k >/dev/null 2>&1
        timeout 30 wineserver -w >/dev/null 2>&1
    fi
    # Then a server that stays 60 s after its last program (services need
    # it; the default is 3 s); when one runs already, this one exits.
    wineserver -p60 >/dev/null 2>&1 &
    sleep 0.5
}
