#!/bin/sh
# test-rpm-spec.sh -- the RPM spec packaging/rpm/dkv.spec, checked against
# the source tree and a real `make install` of $top_builddir:
#   - `rpmspec -P` parses it; Name, Version (= configure.ac's AC_INIT),
#     Source0 (= `make dist`'s tarball), the BuildRequires;
#   - the units and the settings file its %install copies exist in
#     packaging/systemd, and the sysusers file in packaging/rpm;
#   - every scriptlet passes `sh -n`; %post opens the ranges (-IfActive
#     -Config /etc/dkv/dkv-manager.conf) and %preun closes every dkv
#     rule, with the systemd macros; then %post and %preun run for real
#     (paths moved under a scratch directory, a stand-in dkv recording its
#     calls, no systemd): an install ($1 = 1) writes authorized_keys with
#     the admin key and opens the ranges, an upgrade ($1 = 2) does
#     neither and keeps the keys; an erase ($1 = 0) closes the rules, the
#     old package's %preun of an upgrade ($1 = 1) does not;
#   - %files against `make install DESTDIR` of $top_builddir, its
#     bindir, libdir and includedir moved to /usr/bin, /usr/lib64 and
#     /usr/include, without the libtool archive and the static library
#     (the spec configures --disable-static and deletes *.la), plus what
#     %install adds: every installed file packaged exactly once, every
#     %files entry matching (tests/packaging/pkg-lists.py);
#   - then a real package: the spec with %prep and %build replaced by a
#     copy of that staged tree (no second compile) goes through
#     `rpmbuild -bb --nodeps`, which itself fails on unpackaged or
#     missing files; `rpm -qlp` of dkv and dkv-devel must list exactly
#     the expected files, `rpm -qp --scripts` the firewall steps, and
#     /var/lib/dkv must belong to dkv.
# Skipped without rpmspec (package rpm) or in the Windows build.
#
#   top_srcdir=SRC top_builddir=BUILD sh tests/packaging/test-rpm-spec.sh
set -u
top_srcdir=${top_srcdir:-$(dirname "$0")/../..}
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=${top_builddir:-.}
top_builddir=$(cd "$top_builddir" && pwd)
# shellcheck disable=SC2034 # read by tests/testlib.sh's finish
NAME=rpm-spec
SPEC=$top_srcdir/packaging/rpm/dkv.spec
LISTS=$top_srcdir/tests/packaging/pkg-lists.py

# shellcheck source=/dev/null # tests/testlib.sh, checked alone
. "$top_srcdir/tests/testlib.sh"

[ "${DKV_EXEEXT:-}" != .exe ] || skip "Windows build"
for tool in rpmspec python3 make; do
    command -v "$tool" >/dev/null 2>&1 ||
        skip "$tool not found (apt-get install rpm)"
done
[ -x "$top_builddir/dkv" ] || skip "$top_builddir/dkv not built"

T=$(mktemp -d "${TMPDIR:-/tmp}/dkv-rpmspec.XXXXXX")
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM HUP

# ------------------------------------------------------------- parsing
if rpmspec -P "$SPEC" >"$T/spec" 2>"$T/spec.err"; then ok; else
    fail "rpmspec -P dkv.spec"; sed 's/^/  | /' "$T/spec.err"; finish
fi
if grep -q -i 'warning\|error' "$T/spec.err"; then
    fail "rpmspec -P warns"; sed 's/^/  | /' "$T/spec.err"
else ok; fi
version=$(sed -n 's/^AC_INIT(\[dkv\], *\[\([^]]*\)\].*/\1/p' \
    "$top_srcdir/configure.ac")
[ -n "$version" ] || fail "no version in configure.ac's AC_INIT"
# q FORMAT: rpmspec's query of the source package with FORMAT.
q() { rpmspec -q --srpm --qf "$1" "$SPEC" 2>/dev/null; }
check "Name is dkv (got $(q '%{NAME}'))" [ "$(q '%{NAME}')" = dkv ]
check "Version $(q '%{VERSION}') is configure.ac's $version" \
    [ "$(q '%{VERSION}')" = "$version" ]
check "Source0 is dkv-$version.tar.gz" \
    grep -q -x "Source0: *dkv-$version.tar.gz" "$T/spec"
for dep in apr-devel apr-util-devel lmdb-devel libsodium-devel \
    jansson-devel libmicrohttpd-devel libcurl-devel CUnit-devel \
    systemd-rpm-macros; do
    check "BuildRequires $dep" grep -q -x "BuildRequires: *$dep" "$T/spec"
done
check "the dkv-devel subpackage" \
    grep -q -x '%package devel' "$T/spec"
check "%configure in %build" grep -q -e '--libdir=' "$T/spec"

# ---------------------------------------- files %install takes from the tree
srcfiles=$(sed -n 's#.*[[:space:]]\(packaging/[A-Za-z0-9_./-]*\).*#\1#p' \
    "$SPEC" | sort -u)
[ -n "$srcfiles" ] || fail "%install copies nothing from packaging/"
for f in $srcfiles packaging/systemd/dkv-manager.service \
    packaging/systemd/dkv-firewall.service \
    packaging/systemd/dkv-manager.conf; do
    check "$f (used by the spec) exists" [ -f "$top_srcdir/$f" ]
done
sed -n 's/^%doc[[:space:]]*//p' "$SPEC" | tr ' ' '\n' >"$T/docs"
while read -r f; do
    [ -n "$f" ] || continue
    check "%doc $f exists" [ -f "$top_srcdir/$f" ]
done <"$T/docs"

# ----------------------------------------------------------- scriptlets
# One file per scriptlet of the expanded spec, each through sh -n.
awk -v dir="$T" '
    /^%(pre|post|preun|postun|pretrans|posttrans)([ \t]|$)/ {
        out = dir "/scriptlet." substr($1, 2); next }
    /^%[a-z]/ { out = ""; next }
    out != "" { print > out }' "$T/spec"
for s in pre post preun postun; do
    if [ -f "$T/scriptlet.$s" ]; then
        check "%$s passes sh -n" sh -n "$T/scriptlet.$s"
    else
        fail "no %$s scriptlet"
    fi
done
check "%post opens the ranges" grep -q -F \
    'dkv firewall open -IfActive -Config /etc/dkv/dkv-manager.conf' \
    "$T/scriptlet.post"
check "%preun closes every dkv rule" grep -q -F \
    'dkv firewall close -IfActive >' "$T/scriptlet.preun"
check "%pre adds the dkv user" grep -q 'useradd .*dkv' "$T/scriptlet.pre"
for m in '%systemd_post dkv-manager.service' \
    '%systemd_preun dkv-manager.service' \
    '%systemd_postun_with_restart dkv-manager.service'; do
    check "the spec uses $m" grep -q -F "$m" "$SPEC"
done

# The scriptlets run, by $1: paths moved under $T/run, a stand-in dkv.
mkdir -p "$T/run/stub" "$T/run/etc/dkv"
# shellcheck disable=SC2016 # the stand-in's own variables
printf '#!/bin/sh\necho "$*" >>"%s/run/calls"\n%s\n' "$T" \
    '[ "$1" = Get-DkvAdminKey ] && echo "ed25519 AAAA test@host"; exit 0' \
    >"$T/run/stub/dkv"
chmod +x "$T/run/stub/dkv"
for s in post preun; do
    sed -e "s#/usr/bin/dkv#$T/run/stub/dkv#g" -e "s#/etc/dkv#$T/run/etc/dkv#g" \
        -e "s#/sbin/ldconfig#:#g" -e "s#/run/systemd/system#$T/no-systemd#g" \
        -e "s#systemd-update-helper#no-such-helper#g" \
        -e "s#systemctl#$T/no-systemctl#g" "$T/scriptlet.$s" >"$T/run/$s.sh"
done
# run_scriptlet NAME ARG: runs it, the calls it made in $T/run/got.
run_scriptlet() {
    rm -f "$T/run/calls"
    env -u SUDO_USER sh "$T/run/$1.sh" "$2" >/dev/null 2>&1
    cat "$T/run/calls" 2>/dev/null >"$T/run/got"
}
expect_calls() {   # expect_calls WHAT LINE...: $T/run/got is these lines
    what=$1; shift
    if [ $# -eq 0 ]; then : >"$T/run/want"
    else printf '%s\n' "$@" >"$T/run/want"; fi
    if cmp -s "$T/run/got" "$T/run/want"; then ok; else
        fail "$what: dkv was run as (< got, > expected)"
        diff "$T/run/got" "$T/run/want" | sed 's/^/  | /'
    fi
}
run_scriptlet post 1
expect_calls "%post of an install" "Get-DkvAdminKey" \
    "firewall open -IfActive -Config $T/run/etc/dkv/dkv-manager.conf"
check "%post of an install writes authorized_keys with the admin key" \
    grep -q -x 'ed25519 AAAA test@host' "$T/run/etc/dkv/authorized_keys"
echo "ed25519 BBBB kept@host" >"$T/run/etc/dkv/authorized_keys"
run_scriptlet post 2
expect_calls "%post of an upgrade"
check "%post of an upgrade keeps authorized_keys" \
    grep -q -x 'ed25519 BBBB kept@host' "$T/run/etc/dkv/authorized_keys"
run_scriptlet preun 1
expect_calls "%preun of an upgrade"
run_scriptlet preun 0
expect_calls "%preun of an erase" "firewall close -IfActive"

# -------------------------------------------- %files against make install
stage=$T/stage
if make -C "$top_builddir" install DESTDIR="$stage" >"$T/install.log" 2>&1
then ok; else
    fail "make install DESTDIR"; tail -n 20 "$T/install.log"; finish
fi
# The build's own directories, expanded by make.
# shellcheck disable=SC2016 # make's variables, not the shell's
printf 'pkg-dirs:\n\t@echo $(bindir) $(libdir) $(includedir)\n' \
    >"$T/dirs.mk"
# shellcheck disable=SC2046 # three words
# (Only the line of paths: a make run from `make check` may still print
# its "Entering directory" lines, whatever the flags say.)
set -- $(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s \
    --no-print-directory -C "$top_builddir" -f Makefile -f "$T/dirs.mk" \
    pkg-dirs | grep '^/')
if [ $# -eq 3 ]; then ok; else fail "bindir libdir includedir: $*"; finish; fi
tree=$T/tree
mkdir -p "$tree/usr"
if cp -a "$stage$1" "$tree/usr/bin" && cp -a "$stage$2" "$tree/usr/lib64" &&
    cp -a "$stage$3" "$tree/usr/include"; then ok; else
    fail "mapping the tree"; fi
find "$tree" \( -name '*.la' -o -name '*.a' \) -exec rm -f {} +
left=$(cd "$stage" && find . -type f | while read -r f; do
    case /${f#./} in
        "$1"/*|"$2"/*|"$3"/*) ;;
        *) echo "$f" ;;
    esac; done)
check "make install puts nothing outside bindir, libdir, includedir" \
    [ -z "$left" ]
[ -z "$left" ] || echo "  | $left"
ud=$(rpm --eval '%{?_unitdir}' 2>/dev/null)
[ -n "$ud" ] || ud=/usr/lib/systemd/system
extras="$ud/dkv-manager.service $ud/dkv-firewall.service
    /usr/lib/sysusers.d/dkv.conf /etc/dkv/ /etc/dkv/dkv-manager.conf
    /var/lib/dkv/"
# shellcheck disable=SC2086 # one path per word
python3 "$LISTS" rpm "$T/spec" "$tree" $extras >"$T/lists" 2>&1
count_results "$T/lists"

# -------------------------------------------------- a real rpmbuild
if ! command -v rpmbuild >/dev/null 2>&1; then
    echo "SKIP: rpmbuild not found (building the package)"
    finish
fi
top=$T/rpm
mkdir -p "$top/SOURCES" "$top/BUILD"
# The sources %install and %doc read, then the spec with %prep and
# %build replaced and %make_install taking the staged tree.
src=$top/BUILD/dkv-$version
mkdir -p "$src/docs"
cp -R "$top_srcdir/packaging" "$src/packaging"
cp "$top_srcdir/README.md" "$src/"
cp "$top_srcdir/docs/operations.md" "$src/docs/" 2>/dev/null ||
    echo "placeholder" >"$src/docs/operations.md"
awk -v tree="$tree" '
    /^%prep/ { print "%prep"; print "%setup -q -T -D -n dkv-%{version}"
               skip = 1; next }
    /^%build/ { print "%build"; skip = 1; next }
    /^%check/ { skip = 0 }
    /^%make_install/ { print "mkdir -p %{buildroot}"
                       print "cp -a " tree "/. %{buildroot}/"; next }
    !skip { print }' "$SPEC" >"$top/dkv.spec"
# Debian rpm defines no _unitdir: the units go where the spec falls back.
if timeout 300 rpmbuild -bb --nodeps --define "_topdir $top" \
    --define "_builddir $top/BUILD" --define "debug_package %{nil}" \
    --define "_build_id_links none" --define "_tmppath $T" \
    --define "__os_install_post %{nil}" "$top/dkv.spec" \
    >"$T/rpmbuild.log" 2>&1; then ok; else
    fail "rpmbuild -bb"; tail -n 30 "$T/rpmbuild.log" | sed 's/^/  | /'
    finish
fi
main=$(find "$top/RPMS" -name "dkv-$version-*.rpm" | head -n 1)
devel=$(find "$top/RPMS" -name "dkv-devel-$version-*.rpm" | head -n 1)
check "the dkv package was built" [ -n "$main" ]
check "the dkv-devel package was built" [ -n "$devel" ]
if [ -z "$main" ] || [ -z "$devel" ]; then finish; fi
rpm -qlp "$main" "$devel" 2>/dev/null | LC_ALL=C sort >"$T/got"
{
    (cd "$tree" && find . \( -type f -o -type l \) | sed 's#^\.##')
    (cd "$tree" && find ./usr/include -mindepth 1 -type d | sed 's#^\.##')
    for e in $extras; do echo "${e%/}"; done
    docdir=$(rpm --eval '%{_defaultdocdir}')/dkv
    echo "$docdir"
    echo "$docdir/README.md"
    echo "$docdir/operations.md"
} | LC_ALL=C sort -u >"$T/want"
if cmp -s "$T/got" "$T/want"; then ok; else
    fail "rpm -qlp differs from the expected files (< got, > expected)"
    diff "$T/got" "$T/want" | grep '^[<>]' | sed 's/^/  | /'
fi
rpm -qp --scripts "$main" >"$T/scripts" 2>/dev/null
check "the package's %post opens the ranges" \
    grep -q 'dkv firewall open -IfActive' "$T/scripts"
check "the package's %preun closes them" \
    grep -q 'dkv firewall close -IfActive' "$T/scripts"
rpm -qlvp "$main" 2>/dev/null >"$T/long"
check "/var/lib/dkv belongs to dkv:dkv, mode 750" \
    grep -q '^drwxr-x---.* dkv *dkv .* /var/lib/dkv$' "$T/long"
check "/etc/dkv/dkv-manager.conf is root:dkv 640" \
    grep -q '^-rw-r-----.* root *dkv .* /etc/dkv/dkv-manager.conf$' \
    "$T/long"
rpm -qcp "$main" >"$T/conf" 2>/dev/null
check "dkv-manager.conf is a %config file" \
    grep -q -x /etc/dkv/dkv-manager.conf "$T/conf"
finish
