#!/bin/sh
# test-launchd.sh -- the macOS LaunchDaemon packaging/launchd/
# org.dkv.manager.plist, checked offline by svc-plist.py: it loads with
# plistlib, the keys launchd needs have their types (Label,
# ProgramArguments, UserName, GroupName, RunAtLoad, KeepAlive on failure,
# ExitTimeOut, log paths, the file limit), and the names and paths are
# those of docs/internals/operations.md.  Then broken copies (no Label,
# a wrong config path, not XML) must be refused, so the checker can fail.
#
#   top_srcdir=SRC sh tests/packaging/test-launchd.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)
# shellcheck disable=SC2034 # read by tests/testlib.sh's finish
NAME=launchd
PLIST=$top_srcdir/packaging/launchd/org.dkv.manager.plist
DOC=$top_srcdir/docs/internals/operations.md
UNIT=$top_srcdir/packaging/systemd/dkv-manager.service
CHECK="python3 $top_srcdir/tests/packaging/svc-plist.py"

# shellcheck source=/dev/null # tests/testlib.sh, checked alone
. "$top_srcdir/tests/testlib.sh"

command -v python3 >/dev/null 2>&1 || skip "python3 not found"

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-launchd.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM HUP

# The plist itself: every check of svc-plist.py counts.
$CHECK "$PLIST" "$DOC" "$UNIT" >"$T/out" 2>&1
rc=$?
n=$(grep -c -E '^(ok|FAIL) ' "$T/out")
f=$(grep -c '^FAIL ' "$T/out")
grep '^FAIL ' "$T/out"
checks=$((checks + n))
fails=$((fails + f))
if [ "$n" -lt 15 ]; then
    fail "svc-plist.py made only $n checks:"; sed 's/^/  | /' "$T/out"
fi
if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
    fail "svc-plist.py exited $rc"; sed 's/^/  | /' "$T/out"
fi
if command -v plutil >/dev/null 2>&1; then
    if plutil -lint "$PLIST" >/dev/null; then ok; else fail "plutil -lint"; fi
fi

# refused WHAT FILE: the checker fails FILE.
refused() {
    if $CHECK "$2" "$DOC" "$UNIT" >"$T/bad.out" 2>&1; then
        fail "a plist with $1 passes"
    else
        ok
    fi
}
python3 - "$PLIST" "$T" <<'EOF'
import plistlib, sys
job = plistlib.load(open(sys.argv[1], "rb"))
bad = dict(job); del bad["Label"]
plistlib.dump(bad, open(sys.argv[2] + "/nolabel.plist", "wb"))
bad = dict(job); bad["ProgramArguments"] = ["/usr/local/bin/dkv-manager",
                                            "--config", "/etc/dkv.conf"]
plistlib.dump(bad, open(sys.argv[2] + "/config.plist", "wb"))
bad = dict(job); bad["KeepAlive"] = True
plistlib.dump(bad, open(sys.argv[2] + "/keepalive.plist", "wb"))
EOF
refused "no Label" "$T/nolabel.plist"
refused "another config path" "$T/config.plist"
refused "KeepAlive always" "$T/keepalive.plist"
head -c 200 "$PLIST" >"$T/cut.plist"
refused "a cut file" "$T/cut.plist"

finish
