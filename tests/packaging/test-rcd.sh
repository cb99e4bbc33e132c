#!/bin/sh
# test-rcd.sh -- the FreeBSD rc.d script packaging/freebsd/files/
# dkv_manager.in: `dash -n`, `shellcheck -s sh` (the script itself
# disables SC1091 and SC2034: rc.subr is sourced and reads its
# variables), then the script run on Linux against a stub rc.subr
# (svc-rc.subr) in a temporary root (%%PREFIX%%, /var and /usr/sbin
# pointed into it): rcvar and its default, start refused until enabled,
# start's command line (daemon(8) with the pid files and log, the
# manager with --config, run as the user, HOME set) and its directories,
# the settings from rc.conf, status, and a real stop of stand-in
# processes (copies of sleep named daemon and dkv-manager): both get
# SIGTERM and are waited for.
#
#   top_srcdir=SRC sh tests/packaging/test-rcd.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)
# shellcheck disable=SC2034 # read by tests/testlib.sh's finish
NAME=rcd
SRC=$top_srcdir/packaging/freebsd/files/dkv_manager.in
STUB=$top_srcdir/tests/packaging/svc-rc.subr

# shellcheck source=/dev/null # tests/testlib.sh, checked alone
. "$top_srcdir/tests/testlib.sh"

[ "${DKV_EXEEXT:-}" != .exe ] || skip "Windows build"
[ -d /proc/self ] || skip "no /proc (the stub rc.subr needs it)"
SLEEP=$(command -v sleep)
[ -n "$SLEEP" ] || skip "no sleep program"

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-rcd.XXXXXX")
PIDS=""
# At exit: kills the stand-in processes ($PIDS), removes $T.
cleanup() {
    for p in $PIDS; do
        kill -KILL "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

has() {     # has FILE TEXT WHAT: FILE contains the fixed string TEXT
    if grep -q -F -e "$2" "$1" 2>/dev/null; then ok; else
        fail "$3"; sed 's/^/  | /' "$1" 2>/dev/null | tail -10; fi
}

# ------------------------------------------------------------- syntax
if command -v dash >/dev/null 2>&1; then
    check "dash -n dkv_manager.in" dash -n "$SRC"
else
    echo "SKIP: dash not found (syntax check)"
fi
if command -v shellcheck >/dev/null 2>&1; then
    if shellcheck -s sh "$SRC" >"$T/sc" 2>&1; then ok; else
        fail "shellcheck -s sh dkv_manager.in"; sed 's/^/  | /' "$T/sc"
    fi
    check "shellcheck svc-rc.subr" shellcheck -s sh "$STUB"
else
    echo "SKIP: shellcheck not found (lint)"
fi
check "the script does not PROVIDE dkv_manager" \
    grep -q -x '# PROVIDE: dkv_manager' "$SRC"
check "the script lacks KEYWORD: shutdown (stop at shutdown)" \
    grep -q -x '# KEYWORD: shutdown' "$SRC"

# ------------------------------------------------- the temporary root
R=$T/root
mkdir -p "$R/usr/local/etc/dkv" "$R/usr/local/bin" "$R/usr/sbin" \
    "$R/var/run" "$R/var/db" "$R/var/log" "$T/bin"
: >"$R/usr/local/etc/dkv/dkv-manager.conf"
# What the port's SUB_FILES does for %%PREFIX%%, and paths moved under R.
sed -e "s#%%PREFIX%%#$R/usr/local#g" -e "s#/etc/rc.subr#$STUB#" \
    -e "s#/var/#$R/var/#g" -e "s#/usr/sbin/daemon#$R/usr/sbin/daemon#" \
    "$SRC" >"$T/dkv_manager"
check "%%...%% left after substitution" \
    test "$(grep -c '%%' "$T/dkv_manager")" = 0
# install(1) as the precmd uses it, without the owners (no user dkv
# here): records its arguments and makes the directories and files.
cat >"$T/bin/install" <<'EOF'
#!/bin/sh
echo "install $*" >>"$RC_INSTALL_LOG"
dirs=0 last=
while [ $# -gt 0 ]; do
    case $1 in
        -d) dirs=1 ;;
        -m|-o|-g) shift ;;
        *) if [ $dirs = 1 ]; then mkdir -p "$1"; else last=$1; fi ;;
    esac
    shift
done
if [ $dirs = 0 ] && [ -n "$last" ]; then : >"$last"; fi
EOF
chmod +x "$T/bin/install"
RC_LOG=$T/rc.log RC_INSTALL_LOG=$T/install.log RC_CONF=$T/rc.conf
export RC_LOG RC_INSTALL_LOG RC_CONF
: >"$RC_CONF"
# rc ARG: runs the script (bounded) with ARG; output in $T/out.
rc() {
    PATH=$T/bin:$PATH timeout 60 sh "$T/dkv_manager" "$1" >"$T/out" 2>&1
}

# --------------------------------------------------------------- rcvar
check "rcvar fails" rc rcvar
has "$T/out" "dkv_manager_enable=NO" "rcvar does not show the default NO"

# ------------------------------------------------- start, not enabled
: >"$RC_LOG"
if rc start; then fail "start runs while dkv_manager_enable=NO"; else ok; fi
has "$T/out" "Set dkv_manager_enable to YES" "start does not say why not"
check "start ran a command while disabled" test ! -s "$RC_LOG"

# ----------------------------------------------------------- onestart
check "onestart fails" rc onestart
has "$T/out" "Starting dkv_manager." "onestart does not say Starting"
D="$R/usr/sbin/daemon -f -R 5 -o $R/var/log/dkv/dkv-manager.log"
D="$D -p $R/var/run/dkv_manager.pid -P $R/var/run/dkv_manager_daemon.pid"
M="$R/usr/local/bin/dkv-manager --config $R/usr/local/etc/dkv/dkv-manager.conf"
has "$RC_LOG" "su -m dkv -c sh -c" "start does not run as the user dkv"
has "$RC_LOG" "env HOME=$R/var/db/dkv " "start does not set HOME"
has "$RC_LOG" "$D $M" "start's command is not daemon(8) running the manager"
has "$RC_INSTALL_LOG" "install -d -m 0750 -o dkv -g dkv $R/var/db/dkv $R/var/log/dkv" \
    "start_precmd does not make the data and log directories"
has "$RC_INSTALL_LOG" "-o dkv -g dkv /dev/null $R/var/run/dkv_manager.pid" \
    "start_precmd does not make the pid file the user's"
check "the data directory was not made" test -d "$R/var/db/dkv"
check "the pid file was not made" test -f "$R/var/run/dkv_manager.pid"

# --------------------------------------------- settings from rc.conf
cat >"$RC_CONF" <<EOF
dkv_manager_enable="YES"
dkv_manager_user="dkvtest"
dkv_manager_group="dkvgrp"
dkv_manager_config="$T/other.conf"
dkv_manager_args="--log-level debug"
EOF
: >"$RC_LOG"
: >"$RC_INSTALL_LOG"
if rc start; then fail "start runs without the config file"; else ok; fi
has "$T/out" "$T/other.conf" "start does not name the missing config file"
: >"$T/other.conf"
check "start (enabled) fails" rc start
has "$RC_LOG" "su -m dkvtest -c" "dkv_manager_user is not used"
has "$RC_LOG" "dkv-manager --config $T/other.conf --log-level debug" \
    "dkv_manager_config or dkv_manager_args is not used"
has "$RC_INSTALL_LOG" "-o dkvtest -g dkvgrp" \
    "dkv_manager_user or dkv_manager_group is not used by start_precmd"
check "rcvar does not show YES" rc rcvar
has "$T/out" "dkv_manager_enable=YES" "rcvar does not show YES"

# ---------------------------------------------- status, stop (real)
rm -f "$R/var/run/dkv_manager.pid" "$R/var/run/dkv_manager_daemon.pid"
if rc status; then fail "status succeeds with nothing running"; else ok; fi
has "$T/out" "is not running" "status does not say not running"
if rc stop; then fail "stop succeeds with nothing running"; else ok; fi
has "$T/out" "not running?" "stop does not say not running"

cp "$SLEEP" "$R/usr/sbin/daemon"
cp "$SLEEP" "$R/usr/local/bin/dkv-manager"
"$R/usr/sbin/daemon" 120 &
SPID=$!
"$R/usr/local/bin/dkv-manager" 120 &
MPID=$!
PIDS="$SPID $MPID"
echo "$SPID" >"$R/var/run/dkv_manager_daemon.pid"
echo "$MPID" >"$R/var/run/dkv_manager.pid"
check "status fails with the manager running" rc status
has "$T/out" "is running as pid $MPID" "status does not show the manager's pid"
: >"$RC_LOG"
if rc start; then fail "start succeeds while running"; else ok; fi
has "$T/out" "already running" "start does not say already running"
check "start ran a command while running" test ! -s "$RC_LOG"

t0=$(date +%s)
check "stop fails" rc stop
has "$T/out" "Stopping dkv_manager." "stop does not say Stopping"
check "stop returned before the manager was gone" \
    sh -c "! kill -0 $MPID 2>/dev/null"
check "stop returned before daemon(8) was gone" \
    sh -c "! kill -0 $SPID 2>/dev/null"
wait "$MPID"
check "the manager did not get SIGTERM" test $? -eq 143
wait "$SPID"
check "daemon(8) did not get SIGTERM" test $? -eq 143
PIDS=""
check "stop took more than 10 s" test $(($(date +%s) - t0)) -le 10

# A pid file naming another program is not the manager's: left alone.
"$SLEEP" 120 &
OPID=$!
PIDS=$OPID
echo "$OPID" >"$R/var/run/dkv_manager.pid"
: >"$R/var/run/dkv_manager_daemon.pid"
if rc stop; then fail "stop succeeds on a stranger's pid"; else ok; fi
check "stop killed a process that is not the manager" kill -0 "$OPID"

finish
