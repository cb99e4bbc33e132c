# shellcheck shell=sh
# testlib.sh -- check counting for the shell tests (sourced, POSIX sh):
#   . "$top_srcdir/tests/testlib.sh"
# The test sets NAME (its name in the summary line) and then calls:
#   ok [WHAT]             a passed check ("ok: WHAT" when WHAT is given)
#   fail WHAT             a failed check ("FAIL: WHAT")
#   check WHAT CMD...     runs CMD: ok WHAT when it exits 0, else fail WHAT
#   count_results FILE    adds a checker's "PASS: ..." and "FAIL: ..."
#                         lines in FILE (a checker that printed none fails)
#   skip REASON           "SKIP: REASON", exit 77
#   finish                "NAME: N checks, M failed", exit 0 or 1
# checks and fails hold the counts so far.

checks=0
fails=0

# ok [WHAT]: counts a passed check, says so when WHAT is given.
ok() {
    checks=$((checks + 1))
    [ $# -eq 0 ] || echo "ok: $*"
}

# fail WHAT: counts a failed check and says which.
fail() {
    checks=$((checks + 1))
    fails=$((fails + 1))
    echo "FAIL: $*"
}

# check WHAT CMD...: runs CMD; one check, passed when it exits 0.
check() {
    tl_what=$1
    shift
    if "$@"; then ok "$tl_what"; else fail "$tl_what"; fi
}

# count_results FILE: counts the "PASS: " and "FAIL: " lines a checker
# wrote to FILE as checks, shows the failed ones; a FILE without any is
# one failed check.
count_results() {
    tl_n=$(grep -c '^PASS: ' "$1")
    tl_m=$(grep -c '^FAIL: ' "$1")
    checks=$((checks + tl_n + tl_m))
    fails=$((fails + tl_m))
    grep '^FAIL: ' "$1"
    [ $((tl_n + tl_m)) -gt 0 ] || fail "$1: the checker printed no checks"
}

# skip REASON: not testable here; exits 77 (automake's skip).
skip() {
    echo "SKIP: $*"
    exit 77
}

# finish: prints the summary line; exits 0 when no check failed, else 1.
finish() {
    echo "$NAME: $checks checks, $fails failed"
    [ "$fails" -eq 0 ]
    exit $?
}
