#!/usr/bin/env bash
# run.sh -- the two commands of the README, on a fresh Debian/Ubuntu machine.
#
#   scripts/run.sh demo   install dependencies, build in build/, run the demo
#                         (examples/demo, scripts/demo-node.sh,
#                         scripts/demo-cluster.sh, then
#                         scripts/demo-manager.sh)
#   scripts/run.sh test   install dependencies, then run every test stage:
#       native      build/ with --enable-werror, make check
#       asan        build-asan/ with ASan+UBSan (clang when present), make check
#       valgrind    the unit-test runner of build/ under valgrind
#       fuzz        build-fuzz/ with clang --enable-fuzz, then the libFuzzer
#                   target fuzz_proto on a copy of the seed corpus
#                   (skipped without clang)
#       distcheck   make distcheck in build/ (the tarball builds and passes)
#       packaging   the .deb (scripts/build-deb.sh into build-deb/ and
#                   out-deb/), installed and booted in systemd-nspawn on a
#                   debootstrapped Debian (tests/packaging/test-deb-nspawn.sh;
#                   root only, else skipped)
#       windows     mingw cross-build in build-win/, make check under wine
#       win32check  Visual Studio projects match Makefile.am
#     Every stage runs even when an earlier one failed; the exit status is
#     non-zero when any failed.  A summary of stages and test counts ends
#     the output.
#
# Environment:
#   DKV_STAGES        stages to run (default: all of the above, in order)
#   DKV_WINDEPS       where the mingw dependencies are built and cached
#                     (default /tmp/dkv-win-deps; reused when complete)
#   DKV_TEST_TIMEOUT  seconds each test program may run (default 600)
#   DKV_FUZZ_SECONDS  how long stage fuzz fuzzes (default 60)
#   JOBS              make -j (default 2)
#   DKV_NO_DEPS=1     skip scripts/install-deps.sh
set -u

cd "$(dirname "$0")/.."
TOP=$(pwd)
JOBS=${JOBS:-2}
TIMEOUT=${DKV_TEST_TIMEOUT:-600}
WINDEPS=${DKV_WINDEPS:-/tmp/dkv-win-deps}
ALL_STAGES="native asan valgrind fuzz distcheck packaging windows win32check"

banner() {
    printf '\n'
    printf '=%.0s' $(seq 1 76); printf '\n'
    printf '== %s\n' "$*"
    printf '=%.0s' $(seq 1 76); printf '\n'
}

die() { echo "run.sh: $*" >&2; exit 1; }

install_deps() {
    [ "${DKV_NO_DEPS:-0}" = 1 ] && return 0
    bash "$TOP/scripts/install-deps.sh" "$@"
}

bootstrap() {
    banner "autoreconf -fi"
    (cd "$TOP" && autoreconf -fi) || die "autoreconf failed"
}

# configure_in DIR ARGS...: a fresh configure of the tree in DIR (and no
# stale test logs to summarize should the build fail).
configure_in() {
    local dir=$1; shift
    mkdir -p "$TOP/$dir"
    cd "$TOP/$dir"
    rm -f test-suite.log tests/unit/runner.log
    echo "+ ../configure $*"
    ../configure -q "$@"
}

# ----------------------------------------------------------------- stages

stage_native() {
    configure_in build --enable-werror
    make -j"$JOBS"
    make -j"$JOBS" check LOG_COMPILER="timeout $TIMEOUT"
}

stage_asan() {
    local cc=gcc
    command -v clang >/dev/null 2>&1 && cc=clang
    configure_in build-asan CC="$cc" --enable-asan --enable-ubsan \
        --enable-debug --enable-werror
    make -j"$JOBS"
    # use_sigaltstack=0: clang 14's ASan reports a stack-buffer-overflow in
    # its own sigaltstack interceptor when a thread libmicrohttpd made
    # exits (dkv-manager's connection threads; a sanitizer bug, not ours).
    # It only loses ASan's report of a stack overflow in a signal handler.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:use_sigaltstack=0} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        make -j"$JOBS" check LOG_COMPILER="timeout $TIMEOUT"
}

stage_valgrind() {
    command -v valgrind >/dev/null 2>&1 || { echo "valgrind missing"; return 1; }
    [ -f "$TOP/build/Makefile" ] || configure_in build --enable-werror
    cd "$TOP/build"
    make -j"$JOBS"
    rm -f tests/unit/valgrind.log
    make -j"$JOBS" tests/unit/runner tests/unit/crash_child
    echo "+ valgrind tests/unit/runner"
    timeout $((TIMEOUT * 3)) valgrind -q --error-exitcode=99 \
        --leak-check=full --errors-for-leak-kinds=definite \
        --track-fds=no ./tests/unit/runner 2>&1 | tee tests/unit/valgrind.log
    return "${PIPESTATUS[0]}"
}

# Exit status 77 marks the stage skipped.
stage_fuzz() {
    command -v clang >/dev/null 2>&1 || {
        echo "clang missing: stage fuzz skipped"; return 77; }
    configure_in build-fuzz CC=clang --enable-fuzz --enable-werror
    make -j"$JOBS" tests/fuzz/fuzz_proto
    # A copy: the fuzzer adds what it finds to its corpus directory.
    rm -rf tests/fuzz/corpus-proto tests/fuzz/crashes
    mkdir -p tests/fuzz/crashes
    cp -R "$TOP/tests/fuzz/corpus/proto" tests/fuzz/corpus-proto
    echo "+ fuzz_proto -max_total_time=${DKV_FUZZ_SECONDS:-60} corpus"
    local rc=0
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        ./tests/fuzz/fuzz_proto -max_total_time="${DKV_FUZZ_SECONDS:-60}" \
        -malloc_limit_mb=512 -timeout=10 -print_final_stats=1 \
        -artifact_prefix=tests/fuzz/crashes/ tests/fuzz/corpus-proto \
        > tests/fuzz/fuzz.log 2>&1 || rc=$?
    grep -E 'INFO: Seed|DONE|^Done|ERROR|SUMMARY' tests/fuzz/fuzz.log || true
    if [ $rc != 0 ]; then
        tail -60 tests/fuzz/fuzz.log
        echo "fuzz_proto failed (exit $rc); inputs in build-fuzz/tests/fuzz/crashes"
    fi
    return $rc
}

stage_distcheck() {
    [ -f "$TOP/build/Makefile" ] || configure_in build --enable-werror
    cd "$TOP/build"
    make -j"$JOBS" distcheck
}

# Exit status 77 marks the stage skipped.
stage_packaging() {
    if [ "$(id -u)" != 0 ]; then
        echo "not root: stage packaging skipped (the boot test needs root)"
        return 77
    fi
    cd "$TOP"
    rm -rf out-deb
    bash scripts/build-deb.sh build-deb out-deb
    local deb
    deb=$(ls out-deb/dkv_*.deb)
    local rc=0
    bash tests/packaging/test-deb-nspawn.sh "$deb" \
        > build-deb/deb-nspawn.log 2>&1 || rc=$?
    cat build-deb/deb-nspawn.log
    return $rc
}

windeps_complete() {
    local f
    for f in lib/libapr-1.a lib/liblmdb.a lib/libsodium.a lib/libcunit.a \
             lib/pkgconfig/apr-1.pc lib/pkgconfig/lmdb.pc \
             lib/pkgconfig/libsodium.pc lib/pkgconfig/cunit.pc \
             lib/libjansson.a lib/pkgconfig/jansson.pc \
             lib/libmicrohttpd.a lib/pkgconfig/libmicrohttpd.pc \
             lib/libcurl.a lib/pkgconfig/libcurl.pc; do
        [ -f "$WINDEPS/prefix/$f" ] || return 1
    done
}

stage_windows() {
    local P=$WINDEPS/prefix
    if windeps_complete; then
        echo "mingw dependencies: reusing $P"
    else
        echo "mingw dependencies: building into $P (about 4 minutes)"
        local sudo=
        [ "$(id -u)" = 0 ] || sudo="sudo -E"
        $sudo bash "$TOP/scripts/mingw-deps.sh" "$WINDEPS" \
            > "$TOP/mingw-deps.log" 2>&1 || {
                tail -30 "$TOP/mingw-deps.log"; return 1; }
        tail -3 "$TOP/mingw-deps.log"
        windeps_complete || { echo "incomplete prefix $P"; return 1; }
    fi
    configure_in build-win --host=x86_64-w64-mingw32 --disable-shared \
        --enable-werror PKG_CONFIG_LIBDIR="$P/lib/pkgconfig" \
        CPPFLAGS="-I$P/include" LDFLAGS="-L$P/lib"
    make -j"$JOBS"
    WINEPREFIX=${WINEPREFIX:-$WINDEPS/wineprefix} WINEDEBUG=-all \
        make -j"$JOBS" check LOG_COMPILER="timeout $TIMEOUT wine"
}

stage_win32check() {
    bash "$TOP/scripts/check-win32-sources.sh"
}

# ------------------------------------------------------------- summaries

# print_summaries STAGE...: test counts of the stages that ran.
print_summaries() {
    local d s dirs=""
    for s in "$@"; do
        case $s in
            native) dirs="$dirs build" ;;
            asan) dirs="$dirs build-asan" ;;
            windows) dirs="$dirs build-win" ;;
        esac
    done
    for d in $dirs; do
        [ -d "$TOP/$d" ] || continue
        if [ -f "$TOP/$d/tests/unit/runner.log" ]; then
            echo "-- $d/tests/unit/runner (CUnit):"
            sed -n '/^Run Summary/,/asserts/p' "$TOP/$d/tests/unit/runner.log"
        fi
        if [ -f "$TOP/$d/tests/raft/raftsim.log" ]; then
            echo "-- $d/tests/raft/raftsim (Raft simulation):"
            grep -E '^raftsim: [0-9]+ seeds|FAIL' \
                "$TOP/$d/tests/raft/raftsim.log" || true
        fi
        if [ -f "$TOP/$d/tests/fault/run-fault.log" ]; then
            echo "-- $d/tests/fault/fault (fault tests, real nodes):"
            grep -E '^fault: .*(PASS|FAIL)|^fault: [0-9]+ scenarios|^SKIP' \
                "$TOP/$d/tests/fault/run-fault.log" || true
        fi
        if ls "$TOP/$d"/tests/admin/*.log >/dev/null 2>&1; then
            echo "-- $d/tests/admin (manager and AdminShell, real processes):"
            grep -h -E '^[a-z-]+: [0-9]+ checks, [0-9]+ failed|^SKIP' \
                "$TOP/$d"/tests/admin/*.log || true
        fi
        if ls "$TOP/$d"/tests/firewall/*.log "$TOP/$d"/tests/packaging/*.log \
            "$TOP/$d"/tests/win/*.log >/dev/null 2>&1; then
            echo "-- $d/tests/{firewall,packaging,win} (operations):"
            grep -h -E '^[a-z-]+: [0-9]+ checks, [0-9]+ failed|^SKIP' \
                "$TOP/$d"/tests/firewall/*.log \
                "$TOP/$d"/tests/packaging/*.log \
                "$TOP/$d"/tests/win/*.log 2>/dev/null || true
        fi
        if [ -f "$TOP/$d/test-suite.log" ]; then
            echo "-- $d (automake harness):"
            grep -E '^# (TOTAL|PASS|SKIP|XFAIL|FAIL|XPASS|ERROR):' \
                "$TOP/$d/test-suite.log" | tr '\n' ' '
            echo
            grep -E '^(FAIL|ERROR): ' "$TOP/$d/test-suite.log" || true
        fi
    done
    if [ -f "$TOP/build-fuzz/tests/fuzz/fuzz.log" ] \
        && [ "${result[fuzz]:-SKIP}" != SKIP ]; then
        echo "-- build-fuzz/tests/fuzz/fuzz_proto (libFuzzer):"
        grep -E 'DONE|^Done' "$TOP/build-fuzz/tests/fuzz/fuzz.log" || true
    fi
    if [ -f "$TOP/build-deb/deb-nspawn.log" ] \
        && [ -n "${result[packaging]:-}" ]; then
        echo "-- the .deb booted in systemd-nspawn (tests/packaging/test-deb-nspawn.sh):"
        grep -E '^[a-z-]+: [0-9]+ checks, [0-9]+ failed|^SKIP' \
            "$TOP/build-deb/deb-nspawn.log" || true
    fi
    if [ -f "$TOP/build/tests/unit/valgrind.log" ] \
        && [ -n "${result[valgrind]:-}" ]; then
        echo "-- build/tests/unit/runner under valgrind:"
        sed -n '/^Run Summary/,/asserts/p' "$TOP/build/tests/unit/valgrind.log"
    fi
}

# ------------------------------------------------------------------- main

mode=${1:-}
case $mode in
demo)
    set -e
    install_deps
    bootstrap
    banner "configure and build in build/"
    configure_in build
    make -j"$JOBS"
    make -j"$JOBS" examples
    banner "examples/demo: the store embedded in a program"
    ./examples/demo
    banner "dkv-node and the dkv ClientShell commands"
    sh "$TOP/scripts/demo-node.sh" "$TOP/build"
    banner "a store of three nodes: replication and failover"
    sh "$TOP/scripts/demo-cluster.sh" "$TOP/build"
    banner "dkv-manager and the AdminShell: a store made by the manager"
    # The manager and its store stay up for you to connect to (the script
    # prints how, and how to stop them); DKV_DEMO_KEEP=0 stops them.
    DKV_DEMO_KEEP=${DKV_DEMO_KEEP:-1} \
        exec sh "$TOP/scripts/demo-manager.sh" "$TOP/build"
    ;;
test)
    install_deps --windows --dev
    bootstrap
    stages=${DKV_STAGES:-$ALL_STAGES}
    declare -A result
    declare -A took
    failed=0
    for s in $stages; do
        case " $ALL_STAGES " in
            *" $s "*) ;;
            *) die "unknown stage $s (stages: $ALL_STAGES)" ;;
        esac
        banner "stage $s"
        t0=$(date +%s)
        ( set -e; "stage_$s" )
        rc=$?
        took[$s]=$(( $(date +%s) - t0 ))
        if [ $rc = 0 ]; then
            result[$s]=PASS
        elif [ $rc = 77 ]; then
            result[$s]=SKIP
        else
            result[$s]="FAIL (exit $rc)"
            failed=1
        fi
        echo "== stage $s: ${result[$s]} in ${took[$s]}s"
    done
    banner "summary"
    for s in $stages; do
        printf '  %-12s %-16s %5ss\n' "$s" "${result[$s]}" "${took[$s]}"
    done
    echo
    print_summaries $stages
    exit $failed
    ;;
*)
    sed -n '2,30p' "$0"
    exit 2
    ;;
esac
