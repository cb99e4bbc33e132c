#!/bin/sh
# test-wine-installer.sh -- the Windows installer (packaging/windows/
# dkv.nsi) built with makensis from the cross-build's .exe files and run
# under wine in a prefix of its own, twice:
#   1. silently with /NOSTART on a fresh machine: the programs, headers,
#      docs and uninstaller in C:\Program Files\dkv, the PowerShell
#      modules in ...\WindowsPowerShell\Modules, the settings file
#      written with the contract's contents, the Add/Remove Programs
#      entry, bin on the system PATH, the service dkv-manager registered
#      (automatic start) to run dkv-manager.exe --service --config ...
#      (wine's service manager starts automatic services when it starts:
#      the test puts its own settings in place as soon as the installer
#      has written the defaults and they are compared); then the
#      uninstaller (/S): the service, files, modules, entry and PATH
#      element gone, C:\ProgramData\dkv kept;
#   2. with the test's own settings written first (a free loopback port
#      and free ranges, never the 78xx defaults: wine's sockets are the
#      host's): the installer keeps them, the service runs and the
#      manager answers GET /health on that port, and again after an
#      upgrade (the installer run over it); the uninstaller with
#      /PURGE stops it (the port refuses), removes the service and
#      C:\ProgramData\dkv.
# Skipped outside the Windows cross-build, without wine or makensis.
#
#   top_srcdir=SRC top_builddir=WINBUILD DKV_EXEEXT=.exe \
#       sh tests/win/test-wine-installer.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)
# shellcheck source=/dev/null # tests/win/smoke-lib.sh, checked alone
. "$top_srcdir/tests/win/smoke-lib.sh"

# shellcheck disable=SC2034 # read by tests/testlib.sh's finish
NAME=wine-installer
[ "${DKV_EXEEXT:-}" = ".exe" ] ||
    skip "not the Windows cross-build (DKV_EXEEXT is not .exe)"
command -v makensis >/dev/null 2>&1 || skip "makensis not found (nsis)"
command -v python3 >/dev/null 2>&1 || skip "python3 not found"
for exe in dkv dkv-node dkv-manager; do
    [ -f "${top_builddir:-.}/$exe.exe" ] || skip "$exe.exe is not built"
done
win_setup wine-installer own

version=$(sed -n 's/^AC_INIT(\[dkv\], *\[\([^]]*\)\].*/\1/p' \
    "$top_srcdir/configure.ac")
SETUP=$T/dkv-setup.exe
C=$WINEPREFIX/drive_c
PF=$C/Program\ Files/dkv
MODS=$C/Program\ Files/WindowsPowerShell/Modules
DATA=$C/ProgramData/dkv
UNKEY='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\dkv'
svc='HKLM\SYSTEM\CurrentControlSet\Services\dkv-manager'
ENVKEY='HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment'

# At exit: the service and the programs, should a check have stopped
# half-way (the prefix's wineserver goes next, in win_cleanup).
# shellcheck disable=SC2317 # called by win_cleanup, the exit trap
test_cleanup() {
    if [ -f "$PF/bin/dkv-manager.exe" ]; then
        timeout 30 wine "C:\\Program Files\\dkv\\bin\\dkv-manager.exe" \
            --uninstall-service >/dev/null 2>&1
    fi
}

# ------------------------------------------------------ the installer
if makensis -V2 -DVERSION="$version" -DBINDIR="$B" -DSRCDIR="$top_srcdir" \
    -DOUTFILE="$SETUP" "$top_srcdir/packaging/windows/dkv.nsi" \
    >"$T/makensis.log" 2>&1 && [ -s "$SETUP" ]; then
    ok "makensis built the installer"
else
    fail "makensis"; sed 's/^/  | /' "$T/makensis.log"; finish
fi
check "makensis gave no warnings" test ! -s "$T/makensis.log"

# sc_query: `sc query dkv-manager`'s output, in $T/sc (asked up to 3
# times while sc prints nothing: a service manager still starting).
sc_query() {
    k=0
    while [ "$k" -lt 3 ]; do
        timeout 30 wine sc query dkv-manager >"$T/sc" 2>&1
        [ -s "$T/sc" ] && return 0
        k=$((k + 1))
        sleep 1
    done
    return 1
}
# service_gone: `sc query dkv-manager` fails three times in a row (it
# prints nothing then, with WINEDEBUG=-all) and the registry has no
# ImagePath for it.
service_gone() {
    k=0
    while [ "$k" -lt 3 ]; do
        timeout 30 wine sc query dkv-manager >"$T/sc" 2>&1 && return 1
        k=$((k + 1))
    done
    [ -z "$(reg_value "$svc" ImagePath)" ]
}
# wait_state STATE SECONDS: until sc reports the service in STATE.
wait_state() {
    n=0
    while [ "$n" -lt "$2" ]; do
        sc_query
        grep -q "STATE.*$1" "$T/sc" && return 0
        n=$((n + 1))
        sleep 1
    done
    return 1
}
# wait_gone PATH SECONDS: until PATH is gone (the uninstaller runs from
# a copy in %TEMP%, so wine returns before it has finished).
wait_gone() {
    n=0
    while [ -e "$1" ]; do
        n=$((n + 1))
        [ "$n" -gt "$2" ] && return 1
        sleep 1
    done
    return 0
}
# reg_value KEY NAME: the value's data, as `reg query` prints it.
reg_value() {
    timeout 30 wine reg query "$1" /v "$2" 2>/dev/null | tr -d '\r' |
        sed -n "s/^ *$2 *REG_[A-Z_]* *//p"
}
# uninstall ARGS...: runs the uninstaller, waits for it to finish.
uninstall() {
    timeout 120 wine "C:\\Program Files\\dkv\\uninstall.exe" "$@" \
        >"$T/uninst.log" 2>&1
    wait_gone "$PF/uninstall.exe" 60
}

# A free base port B with B..B+29 free on the host's loopback, away from
# the 78xx defaults.
base=$(free_ports 30)
[ -n "$base" ] || { fail "no free ports on loopback"; finish; }
# write_conf: the test's settings, in place of the installed ones.
write_conf() {
    mkdir -p "$DATA"
    printf '%s\r\n' \
        '# the test'"'"'s settings' \
        'data-dir = C:\ProgramData\dkv\data' \
        'authorized-keys = C:\ProgramData\dkv\authorized_keys' \
        'log-file = C:\ProgramData\dkv\dkv-manager.log' \
        "port = $base" 'bind = 127.0.0.1' \
        "management-range = $base-$((base + 1))" \
        "cluster-range = $((base + 10))-$((base + 19))" \
        "client-range = $((base + 20))-$((base + 29))" \
        >"$DATA/dkv-manager.conf"
}

# wineboot -i of a fresh prefix can leave two services.exe (two service
# managers answering in turn): a clean session for the installer.
wineserver -k >/dev/null 2>&1
timeout 20 wineserver -w >/dev/null 2>&1
wineserver -p60 >/dev/null 2>&1 &

# --------------------------------------- 1. fresh install, no start
reg_value "$ENVKEY" Path >"$T/path0"
if timeout 180 wine "$SETUP" /S /NOSTART >"$T/setup1.log" 2>&1; then
    ok "the installer (/S /NOSTART) exited 0"
else
    fail "the installer (/S /NOSTART) failed"; sed 's/^/  | /' "$T/setup1.log"
fi
# At once, before wine runs anything else: the written settings aside
# and the test's in their place.  The service starts automatically, and
# wine's service manager starts such services whenever it starts (the
# next wine command): never with the default 78xx ports of the host.
tr -d '\r' <"$DATA/dkv-manager.conf" 2>/dev/null | grep -v '^#' \
    >"$T/conf1"
write_conf
cp "$DATA/dkv-manager.conf" "$T/conf2"
for f in bin/dkv.exe bin/dkv-node.exe bin/dkv-manager.exe uninstall.exe \
    include/dkv.h include/dkv/client.h include/dkv/common.h doc/README.md; do
    check "installed $f" test -s "$PF/$f"
done
for m in AdminShell ClientShell; do
    for ext in psd1 psm1; do
        check "installed the module Clustron.DKV.$m ($ext)" \
            test -s "$MODS/Clustron.DKV.$m/Clustron.DKV.$m.$ext"
    done
done
if [ -f "$B/.libs/libdkv.a" ]; then
    check "installed lib/libdkv.a (the build has it)" \
        cmp -s "$B/.libs/libdkv.a" "$PF/lib/libdkv.a"
fi
check "the installed dkv.exe is the built one" cmp -s "$B/dkv.exe" \
    "$PF/bin/dkv.exe"
cat >"$T/conf1-want" <<'EOF'
data-dir = C:\ProgramData\dkv\data
authorized-keys = C:\ProgramData\dkv\authorized_keys
log-file = C:\ProgramData\dkv\dkv-manager.log
port = 7801
bind = 0.0.0.0
management-range = 7801-7810
cluster-range = 7811-7860
client-range = 7861-7899
EOF
if cmp -s "$T/conf1" "$T/conf1-want"; then
    ok "wrote C:\\ProgramData\\dkv\\dkv-manager.conf"
else
    fail "the settings file differs (< written, > expected)"
    diff "$T/conf1" "$T/conf1-want" | sed 's/^/  | /'
fi
check "the data directory exists" test -d "$DATA/data"
if grep -q '^ed25519 ' "$DATA/authorized_keys" 2>/dev/null; then
    ok "authorized_keys trusts the installing user's key"
else
    fail "authorized_keys has no key"
fi
# Nothing else in it (dkv.exe's message that it made the key goes to
# stderr, which the installer's nsExec mixes into the output).
if tr -d '\r' <"$DATA/authorized_keys" 2>/dev/null |
   grep -v -e '^#' -e '^ed25519 [A-Za-z0-9+/=]* [^ ]*$' | grep -q .; then
    fail "authorized_keys has other lines:"
    sed 's/^/  | /' "$DATA/authorized_keys"
else
    ok "authorized_keys holds only comments and key lines"
fi
mine=$(timeout 60 wine "$PF/bin/dkv.exe" Get-DkvAdminKey 2>/dev/null |
    tr -d '\r' | cut -d ' ' -f 2)
if [ -n "$mine" ] && tr -d '\r' <"$DATA/authorized_keys" |
   grep -q -F "ed25519 $mine "; then
    ok "the key in authorized_keys is this user's (dkv Get-DkvAdminKey)"
else
    fail "this user's key '$mine' is not in authorized_keys"
fi
check "Add/Remove Programs: DisplayVersion $version" \
    test "$(reg_value "$UNKEY" DisplayVersion)" = "$version"
check "Add/Remove Programs: the uninstaller" \
    test "$(reg_value "$UNKEY" UninstallString)" = \
    '"C:\Program Files\dkv\uninstall.exe"'
reg_value "$ENVKEY" Path >"$T/path1"
check "bin is on the system PATH" \
    grep -q -i -F 'C:\Program Files\dkv\bin' "$T/path1"
if sc_query && grep -q 'SERVICE_NAME: dkv-manager' "$T/sc"; then
    ok "the service dkv-manager is registered"
else
    fail "the service dkv-manager is not registered"
    sed 's/^/  | /' "$T/sc" "$T/setup1.log"
fi
# The service's command line, from the registry.
cmdline=$(reg_value "$svc" ImagePath)
want='--config C:\ProgramData\dkv\dkv-manager.conf'
case $cmdline in
    '"C:\Program Files\dkv\bin\dkv-manager.exe" --service '*"$want"*)
        ok "the service runs dkv-manager.exe --service --config ..." ;;
    *) fail "the service's command line: $cmdline" ;;
esac
check "the service starts automatically" \
    test "$(reg_value "$svc" Start)" = 0x2

if uninstall /S; then ok "the uninstaller (/S) finished"; else
    fail "the uninstaller did not finish in 60 s"
    sed 's/^/  | /' "$T/uninst.log"
fi
if service_gone; then ok "the service is gone"; else
    fail "the service is still there"; sed 's/^/  | /' "$T/sc"; fi
check "C:\\Program Files\\dkv is gone" test ! -e "$PF"
check "the modules are gone" test ! -e "$MODS/Clustron.DKV.AdminShell" -a \
    ! -e "$MODS/Clustron.DKV.ClientShell"
check "the Add/Remove Programs entry is gone" \
    test -z "$(reg_value "$UNKEY" DisplayName)"
reg_value "$ENVKEY" Path >"$T/path2"
if grep -q -i -F 'dkv\bin' "$T/path2"; then
    fail "bin is still on the PATH: $(cat "$T/path2")"
elif ! cmp -s "$T/path0" "$T/path2"; then
    fail "the PATH was '$(cat "$T/path0")', is '$(cat "$T/path2")'"
else
    ok "bin left the PATH, which is as before the install"
fi
check "C:\\ProgramData\\dkv\\dkv-manager.conf is kept" \
    cmp -s "$T/conf2" "$DATA/dkv-manager.conf"

# ------------------------------- 2. own settings, the service running
if timeout 180 wine "$SETUP" /S >"$T/setup2.log" 2>&1; then
    ok "the installer (/S) exited 0"
else
    fail "the installer (/S) failed"; sed 's/^/  | /' "$T/setup2.log"
fi
check "the installer kept the existing settings" \
    cmp -s "$T/conf2" "$DATA/dkv-manager.conf"
if wait_state RUNNING 60; then
    ok "the service dkv-manager runs"
else
    fail "the service is not running"; sed 's/^/  | /' "$T/sc"
    tail -n 20 "$DATA/dkv-manager.log" 2>/dev/null | sed 's/^/  | /'
fi
# health URL: GET /health, a few tries within 30 s.
health() {
    python3 - "$1" <<'PYEOF'
import sys, time, urllib.request
for _ in range(30):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%s/health"
                                    % sys.argv[1], timeout=2) as r:
            print(r.read().decode())
            sys.exit(0)
    except OSError:
        time.sleep(1)
sys.exit(1)
PYEOF
}
if health "$base" >"$T/health" 2>&1 && grep -q '"status"' "$T/health"; then
    ok "the manager answers GET /health on port $base"
else
    fail "no answer on port $base"
    tail -n 20 "$DATA/dkv-manager.log" 2>/dev/null | sed 's/^/  | /'
fi
check "the manager logs to C:\\ProgramData\\dkv\\dkv-manager.log" \
    test -s "$DATA/dkv-manager.log"

# An upgrade over the running installation: the old service goes (its
# programs are in use), the new one runs with the same settings.
if timeout 180 wine "$SETUP" /S >"$T/setup3.log" 2>&1; then
    ok "the installer over a running installation exited 0"
else
    fail "the upgrade failed"; sed 's/^/  | /' "$T/setup3.log"
fi
check "the upgrade kept the settings" \
    cmp -s "$T/conf2" "$DATA/dkv-manager.conf"
if wait_state RUNNING 60 && health "$base" >"$T/health" 2>&1; then
    ok "after the upgrade the service runs and answers"
else
    fail "after the upgrade: no service or no answer"; sed 's/^/  | /' "$T/sc"
fi

if uninstall /S /PURGE; then ok "the uninstaller (/S /PURGE) finished"
else
    fail "the uninstaller did not finish in 60 s"
    sed 's/^/  | /' "$T/uninst.log"
fi
if service_gone; then ok "the service is gone"; else
    fail "the service is still there"; sed 's/^/  | /' "$T/sc"; fi
if python3 -c 'import socket, sys
s = socket.socket(); s.settimeout(2)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) else 1)' \
    "$base"; then
    ok "the manager stopped (port $base refuses)"
else
    fail "port $base still accepts connections"
fi
check "C:\\Program Files\\dkv is gone" test ! -e "$PF"
if wait_gone "$DATA" 20; then ok "/PURGE removed C:\\ProgramData\\dkv"
else fail "C:\\ProgramData\\dkv is still there"; fi
finish
