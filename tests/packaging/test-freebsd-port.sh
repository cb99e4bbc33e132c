#!/bin/sh
# test-freebsd-port.sh -- the FreeBSD port skeleton packaging/freebsd/,
# checked from Linux (no ports tree here):
#   - the Makefile's assignments parse (VAR= value lines, backslash
#     continuations, targets), the variables a port needs are there,
#     DISTVERSION is configure.ac's AC_INIT version, PORTNAME dkv,
#     CATEGORIES databases, LIB_DEPENDS names every library configure
#     looks for, GNU_CONFIGURE, USES libtool (it drops the .la files),
#     INSTALL_TARGET install-strip, USERS and GROUPS dkv, recipe lines
#     start with a tab, .include <bsd.port.mk> last;
#   - the rc.d script of USE_RC_SUBR and every SUB_FILES entry exist in
#     files/ (as NAME.in), PORTDOCS exist in the source tree, pkg-descr
#     and distinfo are well formed, pkg-install and pkg-deinstall pass
#     `sh -n` and shellcheck and open/close the ranges with -IfActive;
#     run with a stand-in dkv and rc.d script: an install opens the
#     ranges, a removal stops the manager and closes every dkv rule, an
#     upgrade (PKG_UPGRADE) closes nothing and restarts the manager;
#   - the sample settings are the packaged settings with the port's
#     paths (/var/db/dkv, %%PREFIX%%/etc/dkv);
#   - pkg-plist against `make install DESTDIR` of $top_builddir mapped to
#     PREFIX-relative paths the way the port builds: bindir -> bin,
#     libdir -> lib, includedir -> include, libdir/pkgconfig ->
#     libdata/pkgconfig (the Makefile's MAKE_ARGS pkgconfigdir), no .la
#     (USES=libtool) and no .a (--disable-static), plus what post-install
#     adds (etc/dkv/dkv-manager.conf.sample, /var/db/dkv); every file
#     listed once, every entry matching (tests/packaging/pkg-lists.py).
# Skipped in the Windows build.
#
#   top_srcdir=SRC top_builddir=BUILD sh tests/packaging/test-freebsd-port.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=${top_builddir:-.}
top_builddir=$(cd "$top_builddir" && pwd)
# shellcheck disable=SC2034 # read by tests/testlib.sh's finish
NAME=freebsd-port
PORT=$top_srcdir/packaging/freebsd
LISTS=$top_srcdir/tests/packaging/pkg-lists.py

# shellcheck source=/dev/null # tests/testlib.sh, checked alone
. "$top_srcdir/tests/testlib.sh"

[ "${DKV_EXEEXT:-}" != .exe ] || skip "Windows build"
for tool in python3 make; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool not found"
done
[ -x "$top_builddir/dkv" ] || skip "$top_builddir/dkv not built"

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-port.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM HUP

version=$(sed -n 's/^AC_INIT(\[dkv\], *\[\([^]]*\)\].*/\1/p' \
    "$top_srcdir/configure.ac")
[ -n "$version" ] || fail "no version in configure.ac's AC_INIT"

# ------------------------------------------------- the port's Makefile
# A small parser of the port's make syntax: prints VAR<TAB>value for
# every assignment (continuations joined) and PASS/FAIL lines.
python3 - "$PORT/Makefile" "$version" >"$T/mk" 2>&1 <<'PYEOF'
import re, sys
path, version = sys.argv[1], sys.argv[2]
lines = open(path, encoding="utf-8").read().split("\n")
def report(ok, what):
    print(("PASS: " if ok else "FAIL: ") + what)
vars_, order, bad, targets, last = {}, [], [], [], ""
i = 0
while i < len(lines):
    line = lines[i]
    no = i + 1
    while line.endswith("\\") and i + 1 < len(lines):
        i += 1
        line = line[:-1] + " " + lines[i].strip()
    i += 1
    if not line.strip() or line.startswith("#"):
        continue
    last = line
    if line.startswith("\t"):
        if not targets:
            bad.append("%d: a recipe line outside a target" % no)
        continue
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_.]*)\s*([+?:!]?=)\s*(.*)$", line)
    if m:
        name, op, value = m.groups()
        if m.group(0).startswith(" "):
            bad.append("%d: indented assignment" % no)
        value = value.strip()
        vars_[name] = (vars_.get(name, "") + " " + value).strip() \
            if op == "+=" else value
        order.append(name)
        continue
    m = re.match(r"^([A-Za-z0-9_.-]+(?:\s+[A-Za-z0-9_.-]+)*)\s*:\s*(.*)$",
                 line)
    if m:
        targets.append(m.group(1))
        continue
    if re.match(r"^\.(include|if|else|endif|for|endfor)\b", line):
        continue
    bad.append("%d: not an assignment, target or directive: %s"
               % (no, line.strip()))
report(not bad, "every line parses" + ("" if not bad else ": " +
       "; ".join(bad)))
report(last.strip() == ".include <bsd.port.mk>",
       ".include <bsd.port.mk> is the last line")
for name in ("PORTNAME", "DISTVERSION", "CATEGORIES", "MASTER_SITES",
             "MAINTAINER", "COMMENT", "WWW", "LIB_DEPENDS",
             "BUILD_DEPENDS", "USES", "USE_RC_SUBR", "GNU_CONFIGURE",
             "INSTALL_TARGET", "USERS", "GROUPS", "USE_LDCONFIG"):
    report(name in vars_, "%s is set" % name)
v = lambda n: vars_.get(n, "")
report(v("PORTNAME") == "dkv", "PORTNAME is dkv")
report(v("DISTVERSION") == version,
       "DISTVERSION %s is configure.ac's %s" % (v("DISTVERSION"), version))
report(v("CATEGORIES").split()[:1] == ["databases"],
       "CATEGORIES starts with databases")
report(v("GNU_CONFIGURE") == "yes", "GNU_CONFIGURE=yes")
report(v("INSTALL_TARGET") == "install-strip", "INSTALL_TARGET install-strip")
report(v("USERS") == "dkv" and v("GROUPS") == "dkv", "USERS/GROUPS dkv")
uses = v("USES").split()
for u in ("libtool", "pkgconfig", "gmake"):
    report(u in uses, "USES has %s" % u)
report("--disable-static" in v("CONFIGURE_ARGS"),
       "CONFIGURE_ARGS --disable-static (no .a in the plist)")
report("pkgconfigdir=${PREFIX}/libdata/pkgconfig" in v("MAKE_ARGS"),
       "MAKE_ARGS puts dkv.pc in libdata/pkgconfig")
report(len(v("COMMENT")) <= 70 and not v("COMMENT").endswith("."),
       "COMMENT short, no final period")
deps = v("LIB_DEPENDS").split()
report(all(re.match(r"^lib[\w.+-]+\.so:[\w-]+/[\w.+-]+$", d) for d in deps),
       "LIB_DEPENDS entries are LIB.so:CATEGORY/PORT")
for lib in ("libapr-1.so", "libaprutil-1.so", "liblmdb.so",
            "libsodium.so", "libjansson.so", "libmicrohttpd.so",
            "libcurl.so"):
    report(any(d.startswith(lib + ":") for d in deps),
           "LIB_DEPENDS has %s" % lib)
report("devel/cunit" in v("BUILD_DEPENDS"), "BUILD_DEPENDS has devel/cunit")
report("post-install" in targets, "a post-install target")
for name in ("USE_RC_SUBR", "SUB_FILES", "PORTDOCS"):
    print("VAR\t%s\t%s" % (name, v(name)))
PYEOF
count_results "$T/mk"
# val VAR: the value of the Makefile's VAR, as the parser printed it.
val() { sed -n "s/^VAR	$1	//p" "$T/mk"; }

rc=$(val USE_RC_SUBR)
check "USE_RC_SUBR names dkv_manager" [ "$rc" = dkv_manager ]
for f in $rc $(val SUB_FILES); do
    check "files/$f.in exists" [ -f "$PORT/files/$f.in" ]
done
check "USE_RC_SUBR's script PROVIDEs it" \
    grep -q -x "# PROVIDE: $rc" "$PORT/files/$rc.in"
for f in $(val PORTDOCS); do
    if [ -f "$top_srcdir/$f" ] || [ -f "$top_srcdir/docs/$f" ]; then ok
    else fail "PORTDOCS $f is not in the source tree"; fi
done
check "post-install installs README.md and docs/operations.md" \
    grep -q -F "WRKSRC}/README.md \${WRKSRC}/docs/operations.md" \
    "$PORT/Makefile"

# ------------------------------------------------ the other port files
lines=$(grep -c . "$PORT/pkg-descr")
check "pkg-descr has 1..40 non-empty lines" \
    test "$lines" -ge 1 -a "$lines" -le 40
check "pkg-descr lines <= 80 columns" \
    test -z "$(awk 'length > 80' "$PORT/pkg-descr")"
check "distinfo names dkv-$version.tar.gz (SHA256 and SIZE)" \
    test "$(grep -c -F "(dkv-$version.tar.gz) = " "$PORT/distinfo")" -eq 2
for s in pkg-install pkg-deinstall; do
    check "$s passes sh -n" sh -n "$PORT/$s"
    check "$s is executable" [ -x "$PORT/$s" ]
    if command -v shellcheck >/dev/null 2>&1; then
        check "shellcheck $s" shellcheck -s sh "$PORT/$s"
    fi
done
check "pkg-install opens the ranges with -IfActive" \
    grep -q 'firewall open -IfActive -Config' "$PORT/pkg-install"
check "pkg-deinstall closes them with -IfActive" \
    grep -q 'firewall close -IfActive' "$PORT/pkg-deinstall"
# pkg-install and pkg-deinstall run for real with a stand-in dkv and
# rc.d script that record their arguments (the manager "runs"):
# POST-INSTALL opens, PRE-INSTALL does nothing; DEINSTALL stops the
# manager and closes, POST-DEINSTALL does nothing.
mkdir -p "$T/p/bin" "$T/p/etc/dkv" "$T/p/etc/rc.d"
: >"$T/p/etc/dkv/dkv-manager.conf"
printf '#!/bin/sh\necho "$*" >>"%s/calls"\n' "$T" >"$T/p/bin/dkv"
printf '#!/bin/sh\necho "rc $*" >>"%s/calls"\n' "$T" \
    >"$T/p/etc/rc.d/dkv_manager"
chmod +x "$T/p/bin/dkv" "$T/p/etc/rc.d/dkv_manager"
# scripts PHASE...: runs pkg-install or pkg-deinstall for each PHASE.
scripts() {
    for ph in "$@"; do
        case $ph in
            *DEINSTALL) s=pkg-deinstall ;;
            *) s=pkg-install ;;
        esac
        PKG_PREFIX=$T/p sh "$PORT/$s" "dkv-$version" "$ph"
    done
}
# calls_are WHAT LINE...: the recorded calls were these lines.
calls_are() {
    what=$1; shift
    printf '%s\n' "$@" >"$T/want-calls"
    if cmp -s "$T/calls" "$T/want-calls"; then ok; else
        fail "$what: other calls (< got, > expected)"
        diff "$T/calls" "$T/want-calls" | sed 's/^/  | /'
    fi
    rm -f "$T/calls"
}
open_call="firewall open -IfActive -Config $T/p/etc/dkv/dkv-manager.conf"
(unset PKG_UPGRADE; scripts PRE-INSTALL POST-INSTALL)
calls_are "an install" "$open_call"
(unset PKG_UPGRADE; scripts DEINSTALL POST-DEINSTALL)
calls_are "a removal" "rc onestatus" "rc onestop" "firewall close -IfActive"
# An upgrade, in pkg's order: new PRE-INSTALL, old DEINSTALL, new
# POST-INSTALL (and no POST-DEINSTALL).
(PKG_UPGRADE=yes; export PKG_UPGRADE
 scripts PRE-INSTALL DEINSTALL POST-INSTALL)
calls_are "an upgrade" "$open_call" "rc onestatus" "rc onerestart"

# The sample settings: the packaged ones with the port's paths.
sed -e 's#/var/lib/dkv#/var/db/dkv#' -e 's#/etc/dkv/#%%PREFIX%%/etc/dkv/#' \
    "$top_srcdir/packaging/systemd/dkv-manager.conf" | grep -v '^#' \
    >"$T/conf-want"
grep -v '^#' "$PORT/files/dkv-manager.conf.sample.in" >"$T/conf-got"
if cmp -s "$T/conf-got" "$T/conf-want"; then ok; else
    fail "dkv-manager.conf.sample.in differs from packaging/systemd's"
    diff "$T/conf-got" "$T/conf-want" | sed 's/^/  | /'
fi

# ------------------------------------------- pkg-plist against the build
stage=$T/stage
if make -C "$top_builddir" install DESTDIR="$stage" >"$T/install.log" 2>&1
then ok; else
    fail "make install DESTDIR"; tail -n 20 "$T/install.log"; finish
fi
# shellcheck disable=SC2016 # make's variables, not the shell's
printf 'pkg-dirs:\n\t@echo %s\n' \
    '$(bindir) $(libdir) $(includedir) $(pkgconfigdir)' >"$T/dirs.mk"
# shellcheck disable=SC2046 # four words
# (Only the line of paths: a make run from `make check` may still print
# its "Entering directory" lines, whatever the flags say.)
set -- $(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s \
    --no-print-directory -C "$top_builddir" -f Makefile -f "$T/dirs.mk" \
    pkg-dirs | grep '^/')
if [ $# -eq 4 ]; then ok; else fail "the build's directories: $*"; finish; fi
tree=$T/tree
mkdir -p "$tree/libdata"
if mv "$stage$4" "$tree/libdata/pkgconfig" && cp -a "$stage$1" "$tree/bin" &&
    cp -a "$stage$2" "$tree/lib" && cp -a "$stage$3" "$tree/include"; then
    ok; else fail "mapping the tree"; fi
find "$tree" \( -name '*.la' -o -name '*.a' \) -exec rm -f {} +
python3 "$LISTS" plist "$PORT/pkg-plist" "$tree" \
    etc/dkv/dkv-manager.conf.sample etc/dkv/ /var/db/dkv/ >"$T/lists" 2>&1
count_results "$T/lists"
check "pkg-plist keeps /var/db/dkv for dkv" \
    grep -q -x '@dir(dkv,dkv,750) /var/db/dkv' "$PORT/pkg-plist"
check "pkg-plist's sample is @sample" \
    grep -q '^@sample.* etc/dkv/dkv-manager.conf.sample$' "$PORT/pkg-plist"
finish
