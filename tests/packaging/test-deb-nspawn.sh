#!/bin/sh
# test-deb-nspawn.sh -- the .deb installed, used, rebooted, upgraded and
# purged on a real Debian 12 booted in systemd-nspawn.
#
# Usage: tests/packaging/test-deb-nspawn.sh DEB
#
# Builds a minimal Debian bookworm root with debootstrap (systemd, dbus,
# nftables and the package's Depends), turns on nftables with a ruleset
# that drops incoming connections by default, and boots it twice with a
# private network (so dkv's default 78xx ports are the point here):
#   boot 1: dpkg -i, the services, the firewall rules, the README's
#           walkthrough through the manager, the nodes in its cgroup;
#   boot 2: the manager and the store came back, an upgrade keeps data
#           and keys, systemctl stop/start, dpkg -r closes the ranges and
#           keeps the data, reinstalling brings the store back, dpkg
#           --purge leaves nothing.
# The checks inside are tests/packaging/deb-inside.sh.
#
# Root only, and needs debootstrap, systemd-nspawn, script (else SKIP,
# exit 77).  DKV_NSPAWN_CACHE=DIR keeps the debootstrapped root in DIR
# and reuses it (a copy is booted); without it the root is built in a
# temporary directory and deleted (kept when DKV_NSPAWN_KEEP is set, for
# debugging).  Prints "ok - ..." / "not ok - ..."
# and "deb-nspawn: N checks, M failed"; exit 0 when none failed.
set -u

NAME='deb-nspawn'
SUITE=bookworm
here=$(cd "$(dirname "$0")" && pwd)
checks=0
failed=0
work=""
nspawn_pid=""

# skip REASON: not testable here; the summary line, exit 77.
skip() {
    echo "SKIP: $*"
    echo "$NAME: 0 checks, 0 failed"
    exit 77
}

# Records one check made out here: ok when $1 is 0.
check() {
    st=$1
    shift
    checks=$((checks + 1))
    if [ "$st" -eq 0 ]; then
        echo "ok - $*"
    else
        echo "not ok - $*"
        failed=$((failed + 1))
    fi
}

# Prints the PIDs of the processes whose command line names the root
# ours boots (the nspawn and script processes of this test only).
our_pids() {
    [ -n "$work" ] || return 0
    for d in /proc/[0-9]*; do
        { tr '\0' ' ' < "$d/cmdline"; } 2>/dev/null \
            | grep -qF -- "-D $work/root" && echo "${d#/proc/}"
    done
}

# Stops a container that is still running and deletes the work dir.
cleanup() {
    trap - EXIT INT TERM HUP
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        kill -TERM "$nspawn_pid" 2>/dev/null
        sleep 2
        kill -KILL "$nspawn_pid" 2>/dev/null
    fi
    pids=$(our_pids)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086 # one PID per word
        kill -TERM $pids 2>/dev/null
        sleep 3
        pids=$(our_pids)
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
    fi
    if [ -n "${DKV_NSPAWN_KEEP:-}" ] && [ -n "$work" ]; then
        echo "# kept $work (DKV_NSPAWN_KEEP)"
    elif [ -n "$work" ] && [ -d "$work" ]; then
        # Nothing may stay mounted inside before the tree goes.
        if grep -q " $work/" /proc/mounts; then
            grep " $work/" /proc/mounts | cut -d' ' -f2 | sort -r \
                | while read -r m; do umount -l "$m" 2>/dev/null; done
        fi
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

[ $# -eq 1 ] || { echo "usage: $0 DEB" >&2; exit 2; }
deb=$1
[ -f "$deb" ] || { echo "$0: $deb: no such file" >&2; exit 2; }
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")

[ "$(id -u)" -eq 0 ] || skip "not root"
for tool in debootstrap systemd-nspawn script timeout dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool not found"
done
[ -d /run/systemd/system ] || [ -d /sys/fs/cgroup ] \
    || skip "no cgroup file system"

# The Debian mirror this machine uses (deb822 first, then sources.list).
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '
        /^URIs:/ { uri = $2 }
        /^Suites:/ { for (i = 2; i <= NF; i++)
                         if ($i == "'$SUITE'") ok = 1 }
        /^$/ { if (ok && uri != "") { print uri; exit } uri = ""; ok = 0 }
        END { if (ok && uri != "") print uri }' \
        /etc/apt/sources.list.d/debian.sources | head -n 1)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1 == "deb" && $3 == "'$SUITE'" { print $2; exit }' \
        /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

# The package's run-time dependencies as package names (the first of
# each set of alternatives, without versions).
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' \
    | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' -e '/^$/d' \
    | sort -u | tr '\n' ',' | sed 's/,$//')
include="systemd,systemd-sysv,dbus,nftables,procps${deps:+,$deps}"
echo "# packages: $include"
echo "# mirror: $mirror"

work=$(mktemp -d "${TMPDIR:-/tmp}/deb-nspawn.XXXXXX")
root=$work/root

# Makes a fresh root in $1 (about 40 s); 0 when it worked.
bootstrap() {
    echo "# debootstrap $SUITE into $1"
    timeout 600 debootstrap --variant=minbase --include="$include" \
        "$SUITE" "$1" "$mirror" > "$work/debootstrap.log" 2>&1 && return 0
    tail -n 20 "$work/debootstrap.log"
    return 1
}

t0=$(date +%s)
if [ -n "${DKV_NSPAWN_CACHE:-}" ]; then
    cache=$DKV_NSPAWN_CACHE
    mkdir -p "$cache"
    if [ ! -f "$cache/base.ok" ] \
        || [ "$(cat "$cache/base.ok")" != "$include $mirror" ]; then
        rm -rf "$cache/base" "$cache/base.ok"
        if bootstrap "$cache/base"; then
            echo "$include $mirror" > "$cache/base.ok"
        fi
    fi
    [ -f "$cache/base.ok" ] && cp -a "$cache/base" "$root"
    how="cached in $cache"
else
    bootstrap "$root" || rm -rf "$root"
    how="$(($(date +%s) - t0)) s"
fi
[ -x "$root/lib/systemd/systemd" ]
check $? \
    "debootstrap $SUITE root with $include ($how)"
if [ ! -x "$root/lib/systemd/systemd" ]; then
    echo "$NAME: $checks checks, $failed failed"
    exit 1
fi

# An upgrade of the same package: its version plus "+1".
rm -rf "$work/up"
dpkg-deb -R "$deb" "$work/up"
version=$(sed -n 's/^Version: //p' "$work/up/DEBIAN/control")
sed -i "s/^Version: .*/Version: $version+1/" "$work/up/DEBIAN/control"
dpkg-deb --root-owner-group --build "$work/up" "$root/root/dkv-upgrade.deb" \
    >/dev/null
check $? "repacked the package as version $version+1 (the upgrade)"
rm -rf "$work/up"

cp "$deb" "$root/root/dkv.deb"
install -m 0755 "$here/deb-inside.sh" "$root/root/deb-inside.sh"

# nftables on, dropping incoming connections by default.
cat > "$root/etc/nftables.conf" <<'EOF'
#!/usr/sbin/nft -f
flush ruleset

table inet filter {
    chain input {
        type filter hook input priority filter; policy drop;
        iif "lo" accept
        ct state established,related accept
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
    }
    chain output {
        type filter hook output priority filter; policy accept;
    }
}
EOF

# The test unit: runs deb-inside.sh PHASE after the boot, then powers
# the container off whatever happens.
cat > "$root/etc/systemd/system/dkv-test.service" <<'EOF'
[Unit]
Description=dkv package test (tests/packaging/test-deb-nspawn.sh)
After=multi-user.target
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'exec /root/deb-inside.sh "$(cat /root/phase)"'
TimeoutStartSec=240
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF
chroot "$root" systemctl enable -q nftables.service dkv-test.service
check $? "nftables.service and the test unit enabled"
# No getty on the console: the boot's log stays readable.
chroot "$root" systemctl mask -q console-getty.service getty@.service \
    >/dev/null 2>&1
# The names a Debian installation has (debootstrap writes none).
echo dkv-deb-test > "$root/etc/hostname"
cat > "$root/etc/hosts" <<'EOF'
127.0.0.1       localhost
127.0.1.1       dkv-deb-test
::1             localhost ip6-localhost ip6-loopback
EOF
: > "$root/root/results.txt"
: > "$root/root/details.txt"

# Boots the root once for phase $1, bounded to $2 seconds; 0 when the
# phase reported its end.
boot() {
    echo "$1" > "$root/root/phase"
    log=$work/boot$1.log
    tb=$(date +%s)
    timeout -k 10 "$2" script -qfc "systemd-nspawn -q --register=no \
--keep-unit -D $root --boot --private-network" "$log" \
        </dev/null >/dev/null 2>&1 &
    nspawn_pid=$!
    wait "$nspawn_pid"
    st=$?
    nspawn_pid=""
    echo "# boot $1: exit $st after $(($(date +%s) - tb)) s"
    grep -q "^done phase $1\$" "$root/root/results.txt"
}

boot 1 200
check $? "boot 1 ran its checks and powered off"
boot 2 240
check $? "boot 2 ran its checks and powered off"

# The checks made inside.
inside=$(grep -e '^ok - ' -e '^not ok - ' "$root/root/results.txt")
if [ -n "$inside" ]; then
    echo "$inside"
    checks=$((checks + $(echo "$inside" | grep -c '')))
    failed=$((failed + $(echo "$inside" | grep -c '^not ok - ')))
fi
if [ "$(echo "$inside" | grep -c '')" -lt 40 ]; then
    echo "not ok - all the checks inside ran"
    checks=$((checks + 1))
    failed=$((failed + 1))
fi

if [ "$failed" -gt 0 ]; then
    echo "# ---- details (commands run inside and their output) ----"
    tail -n 150 "$root/root/details.txt"
    for n in 1 2; do
        [ -f "$work/boot$n.log" ] || continue
        echo "# ---- boot $n: console, last lines ----"
        tail -n 40 "$work/boot$n.log" | tr -d '\r'
    done
fi
echo "# total $(($(date +%s) - t0)) s"
echo "$NAME: $checks checks, $failed failed"
[ "$failed" -eq 0 ]
