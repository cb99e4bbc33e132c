#!/bin/sh
# build-deb.sh -- build the Debian package dkv_<version>_<arch>.deb.
#
# Usage: scripts/build-deb.sh BUILDDIR OUTDIR
#
# Configures the source tree (out of tree, in BUILDDIR; an already
# configured BUILDDIR is reused; a git checkout without configure gets
# autogen.sh first) for the Debian paths, builds it, installs
# it into BUILDDIR/stage, adds the systemd units, the settings file and
# the documentation, computes Depends with dpkg-shlibdeps and assembles
# OUTDIR/dkv_<version>_<arch>.deb with dpkg-deb.  Prints the package's
# path on the last line.  Needs dpkg-dev (dpkg-architecture,
# dpkg-shlibdeps) and the build dependencies of scripts/install-deps.sh.
#
# The layout and the maintainer scripts' behaviour are those of
# docs/internals/operations.md ("Names and paths", "Packages").
#
# Environment:
#   DKV_DEB_VERSION  the package's version (default: configure's
#                    PACKAGE_VERSION)
#   DKV_DEB_JOBS     make's -j (default 2)
#   DKV_DEB_UNITS    the directory of the units and dkv-manager.conf
#                    (default packaging/systemd)
set -eu

# Prints the usage to stderr and exits 2.
usage() {
    echo "usage: $0 BUILDDIR OUTDIR" >&2
    exit 2
}

[ $# -eq 2 ] || usage
builddir=$1
outdir=$2
top=$(cd "$(dirname "$0")/.." && pwd)
jobs=${DKV_DEB_JOBS:-2}
units=${DKV_DEB_UNITS:-$top/packaging/systemd}
umask 022

for tool in dpkg-architecture dpkg-shlibdeps dpkg-deb make; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "build-deb: $tool not found (apt-get install dpkg-dev make)" >&2
        exit 1
    fi
done

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
libdir=/usr/lib/$multiarch

# A git checkout has no configure until autogen.sh made it.
if [ ! -x "$top/configure" ]; then
    echo "build-deb: no $top/configure: running autogen.sh"
    sh "$top/autogen.sh"
fi

mkdir -p "$builddir" "$outdir"
builddir=$(cd "$builddir" && pwd)
outdir=$(cd "$outdir" && pwd)

# Configure unless BUILDDIR already holds a tree configured for these
# paths (a tree configured otherwise is configured again).
configured=no
if [ -f "$builddir/config.status" ] && [ -f "$builddir/Makefile" ]; then
    if "$builddir/config.status" --config 2>/dev/null \
        | grep -q -e "--libdir=$libdir"; then
        configured=yes
    fi
fi
if [ $configured = no ]; then
    echo "build-deb: configuring in $builddir"
    # Debian's hardening and optimisation flags, as a package build gets.
    cflags=$(dpkg-buildflags --get CFLAGS 2>/dev/null || echo "-g -O2")
    cppflags=$(dpkg-buildflags --get CPPFLAGS 2>/dev/null || true)
    ldflags=$(dpkg-buildflags --get LDFLAGS 2>/dev/null || true)
    (cd "$builddir" && "$top/configure" -q \
        --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
        --libdir="$libdir" --disable-static \
        CFLAGS="$cflags" CPPFLAGS="$cppflags" LDFLAGS="$ldflags")
fi

echo "build-deb: building in $builddir"
make -C "$builddir" -s -j"$jobs" >/dev/null

version=${DKV_DEB_VERSION:-$(sed -n \
    's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$builddir/config.h")}
if [ -z "$version" ]; then
    echo "build-deb: no PACKAGE_VERSION in $builddir/config.h" >&2
    exit 1
fi

# The staged tree, from scratch every time.
stage=$builddir/stage
rm -rf "$stage"
if ! make -C "$builddir" install DESTDIR="$stage" \
        > "$builddir/deb-install.log" 2>&1; then
    tail -n 30 "$builddir/deb-install.log" >&2
    exit 1
fi

# No libtool archives in a Debian package.
find "$stage" -name '*.la' -exec rm -f {} +

# Strip the debug information (not the symbols shared libraries need).
find "$stage/usr/bin" "$stage$libdir" -type f | while read -r f; do
    if readelf -h "$f" >/dev/null 2>&1; then
        strip --strip-unneeded --remove-section=.comment \
            --remove-section=.note "$f"
    fi
done

# The units (Debian 12 keeps them in /lib/systemd/system).
unitdir=$stage/lib/systemd/system
mkdir -p "$unitdir"
for unit in dkv-manager.service dkv-firewall.service; do
    if [ ! -f "$units/$unit" ]; then
        echo "build-deb: $units/$unit is missing" >&2
        exit 1
    fi
    install -m 0644 "$units/$unit" "$unitdir/$unit"
done

# The settings file (a conffile).
mkdir -p "$stage/etc/dkv"
install -m 0644 "$units/dkv-manager.conf" \
    "$stage/etc/dkv/dkv-manager.conf"

# Documentation.
docdir=$stage/usr/share/doc/dkv
mkdir -p "$docdir"
install -m 0644 "$top/README.md" "$docdir/README.md"
if [ -f "$top/docs/operations.md" ]; then
    install -m 0644 "$top/docs/operations.md" "$docdir/operations.md"
fi
install -m 0644 "$top/packaging/debian/copyright" "$docdir/copyright"

# Depends, from the ELF files' needs (dpkg-shlibdeps wants a
# debian/control of a source package in its working directory).
scratch=$builddir/deb-scratch
rm -rf "$scratch"
mkdir -p "$scratch/debian"
printf 'Source: dkv\n\nPackage: dkv\nArchitecture: any\n' \
    > "$scratch/debian/control"
elfs=$(find "$stage/usr/bin" "$stage$libdir" -type f \
    -exec sh -c 'readelf -h "$1" >/dev/null 2>&1' sh {} \; -print)
# shellcheck disable=SC2086 # $elfs: one path per word (no spaces here)
if ! (cd "$scratch" && dpkg-shlibdeps -O -e $elfs \
        >"$scratch/vars" 2>"$scratch/log"); then
    cat "$scratch/log" >&2
    exit 1
fi
depends=$(sed -n 's/^shlibs:Depends=//p' "$scratch/vars")
if [ -z "$depends" ]; then
    echo "build-deb: dpkg-shlibdeps found no dependencies" >&2
    cat "$scratch/log" >&2
    exit 1
fi

# The control area.
ctl=$stage/DEBIAN
mkdir -p "$ctl"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" \
    -e "s|@DEPENDS@|$depends|" -e "s|@SIZE@|$size|" \
    "$top/packaging/debian/control.in" > "$ctl/control"
install -m 0644 "$top/packaging/debian/conffiles" "$ctl/conffiles"
install -m 0644 "$top/packaging/debian/triggers" "$ctl/triggers"
for script in postinst prerm postrm; do
    install -m 0755 "$top/packaging/debian/$script" "$ctl/$script"
done
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print \
    | sed 's|^\./||' | LC_ALL=C sort | xargs md5sum) > "$ctl/md5sums"
chmod 0644 "$ctl/md5sums"

deb=$outdir/dkv_${version}_$arch.deb
rm -f "$deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
