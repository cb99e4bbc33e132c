#!/usr/bin/env bash
# install-deps.sh -- install the Debian/Ubuntu packages dkv needs to build
# and test, and only those dpkg reports missing.
#
#   scripts/install-deps.sh [--windows] [--dev]
#
#   (always)   compiler, autotools, APR, LMDB, libsodium, CUnit, jansson,
#              libmicrohttpd, libcurl, python3
#   --windows  mingw-w64 and wine, for the Windows cross-build
#   --dev      clang with its sanitizer runtimes, valgrind, redis-server
#              and redis-tools (the peer of bench/run-node-bench.sh),
#              etcd-server and etcd-client (bench/run-cluster-bench.sh),
#              and what the operations tests drive: the firewalls
#              (nftables, iptables, ufw, firewalld with dbus; installing
#              them enables none), systemd-analyze and systemd-nspawn,
#              debootstrap, dpkg-dev, rpm, nsis, shellcheck
#
# Runs apt-get update at most once, and only when something is missing.
# Uses sudo when not root.  On systems without apt-get it only reports what
# it would have wanted and exits 0 (install the equivalents yourself).
set -euo pipefail

want=(build-essential autoconf automake libtool pkg-config make python3
      libapr1-dev libaprutil1-dev liblmdb-dev libsodium-dev libcunit1-dev
      libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev)
windows=0
dev=0
for arg in "$@"; do
    case $arg in
        --windows) windows=1 ;;
        --dev) dev=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
    esac
done
[ $windows = 1 ] && want+=(mingw-w64 wine wine64)
[ $dev = 1 ] && want+=(clang valgrind)
# The peer of bench/run-node-bench.sh (not needed to build or test).
[ $dev = 1 ] && want+=(redis-server redis-tools)
# The peer of bench/run-cluster-bench.sh: etcd 3.4 (server and etcdctl).
[ $dev = 1 ] && want+=(etcd-server etcd-client)
# The operations tests (tests/firewall, tests/packaging, tests/win).
[ $dev = 1 ] && want+=(nftables iptables ufw firewalld dbus systemd \
    systemd-container debootstrap dpkg-dev rpm nsis shellcheck)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: no dpkg/apt-get here; make sure these (or their"
    echo "  equivalents) are installed: ${want[*]}"
    exit 0
fi

SUDO=
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-deps: not root and no sudo" >&2
    fi
fi
export DEBIAN_FRONTEND=noninteractive

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

updated=0
apt_update() {
    if [ $updated = 0 ]; then
        echo "install-deps: apt-get update"
        $SUDO apt-get update -q >/dev/null
        updated=1
    fi
}

# Does the archive know PKG?  (After one update, so fresh images work.)
available() {
    apt-cache show "$1" >/dev/null 2>&1 && \
        [ -n "$(apt-cache show "$1" 2>/dev/null | sed -n 's/^Version: //p' | head -1)" ]
}

missing=()
for p in "${want[@]}"; do
    installed "$p" || missing+=("$p")
done

# clang's sanitizer runtime lives in a package whose name differs between
# releases: libclang-rt-14-dev (Debian 12), libclang-rt-dev (newer), or
# inside libclang-common-14-dev (Ubuntu 22.04).  Take the first that exists.
if [ $dev = 1 ]; then
    rt=""
    for cand in libclang-rt-14-dev libclang-rt-dev libclang-common-14-dev; do
        if installed "$cand"; then rt=installed; break; fi
    done
    if [ -z "$rt" ]; then
        apt_update
        for cand in libclang-rt-14-dev libclang-rt-dev libclang-common-14-dev; do
            if available "$cand"; then missing+=("$cand"); rt=$cand; break; fi
        done
        [ -n "$rt" ] || echo "install-deps: warning: no clang sanitizer runtime package found"
    fi
fi

if [ ${#missing[@]} = 0 ]; then
    echo "install-deps: everything is installed"
    exit 0
fi
apt_update
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
