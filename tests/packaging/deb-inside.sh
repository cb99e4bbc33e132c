#!/bin/sh
# deb-inside.sh -- the checks of tests/packaging/test-deb-nspawn.sh that
# run inside the booted container, as root, as a new user would.
#
# Usage (by the unit dkv-test.service the harness installs):
#   deb-inside.sh PHASE      PHASE 1: install the package and use it;
#                            PHASE 2 (the next boot): the manager came
#                            back, upgrade, stop/start, purge.
# Functions called through poll() look unreachable to shellcheck.
# shellcheck disable=SC2317
#
# Every check appends "ok - ..." or "not ok - ..." to /root/results.txt;
# details go to /root/details.txt.  The unit powers the container off
# when this script ends.  Every wait is bounded.
set -u

RESULTS=/root/results.txt
DETAILS=/root/details.txt
KEYS=/etc/dkv/authorized_keys
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
HOME=/root
export HOME
unset XDG_CONFIG_HOME

# Records one check: ok when the status $1 is 0.
check() {
    st=$1
    shift
    if [ "$st" -eq 0 ]; then
        echo "ok - $*" >> "$RESULTS"
    else
        echo "not ok - $*" >> "$RESULTS"
        anyfail=yes
    fi
}

# After a failed check: appends the manager's journal and the nodes'
# logs to $DETAILS.
diagnose() {
    {
        echo "---- journal of dkv-manager.service, dkv-firewall.service"
        journalctl --no-pager -b -u dkv-manager.service \
            -u dkv-firewall.service -n 40
        find /var/lib/dkv/stores -name node.log -exec sh -c \
            'for f; do echo "---- $f"; tail -n 15 "$f"; done' sh {} +
        echo "----"
    } >> "$DETAILS" 2>&1
    anyfail=""
}

# Runs a command (bounded to 60 s), its output into $DETAILS and into
# the file /root/last.out; returns its status.
run() {
    echo "\$ $*" >> "$DETAILS"
    timeout 60 "$@" > /root/last.out 2>&1
    st=$?
    cat /root/last.out >> "$DETAILS"
    [ $st -eq 0 ] || echo "(exit $st)" >> "$DETAILS"
    return $st
}

# Retries `run "$@"` once a second until it succeeds or $WAIT seconds
# (default 30) have passed since the first try.
retry() {
    end=$(($(date +%s) + ${WAIT:-30}))
    while :; do
        run "$@" && return 0
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 1
    done
}

# Succeeds when the dkv-node processes are all gone (waits up to 20 s).
no_nodes() {
    n=0
    while pgrep -x dkv-node >/dev/null; do
        n=$((n + 1))
        [ $n -lt 20 ] || return 1
        sleep 1
    done
    return 0
}

# Runs a command as the user $1 (bounded to 60 s).
as_user() {
    u=$1
    shift
    timeout 60 runuser -u "$u" -- env HOME="/home/$u" "$@"
}

# The store TestStore shows Running.
store_running() {
    run dkv Get-DkvStore TestStore \
        && grep -q ' Running | Instances:3 Running:3' /root/last.out
}

# order:1001 reads "confirmed"; the read is retried until it answers,
# for up to $1 seconds (0: read once).
item_confirmed() {
    WAIT=$1 retry dkv Get-DkvItem -Key order:1001 \
        && grep -q confirmed /root/last.out
}

# Retries a shell function once a second until it succeeds or $1
# seconds have passed since the first try.
poll() {
    end=$(($(date +%s) + $1))
    shift
    while ! "$@"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 1
    done
    return 0
}

# Succeeds when every dkv-node process is in dkv-manager.service's
# cgroup and there are $1 of them.
nodes_in_cgroup() {
    pids=$(pgrep -x dkv-node)
    count=0
    for p in $pids; do
        grep -q 'dkv-manager\.service' "/proc/$p/cgroup" || return 1
        count=$((count + 1))
    done
    echo "nodes $pids in dkv-manager.service's cgroup" >> "$DETAILS"
    [ "$count" -eq "$1" ]
}

# Counts the nodes' "closed cleanly" lines.
clean_stops() {
    find /var/lib/dkv/stores -name node.log -exec cat {} + 2>/dev/null \
        | grep -c 'closed cleanly'
}

# Succeeds when the manager runs again, active/running, under a main
# pid other than $1.
manager_replaced() {
    p=$(systemctl show -p MainPID --value dkv-manager.service)
    [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$1" ] \
        && [ "$(manager_state)" = active/running ]
}

# Succeeds when none of the PIDs $@ is alive.
all_gone() {
    for p in "$@"; do
        kill -0 "$p" 2>/dev/null && return 1
    done
    return 0
}

# The manager's ActiveState and SubState, as "active/running".
manager_state() {
    systemctl show -p ActiveState --value dkv-manager.service | tr -d '\n'
    printf /
    systemctl show -p SubState --value dkv-manager.service
}

# Phase 1: install the package, check what it set up, use the manager.
phase1() {
    # Installed the way `sudo apt install` would by the admin alice.
    useradd -m -s /bin/sh alice
    useradd -m -s /bin/sh bob
    SUDO_USER=alice run dpkg -i /root/dkv.deb
    check $? "dpkg -i dkv.deb (SUDO_USER=alice)"
    cp /root/last.out /root/dpkg-install.out
    grep -q '^dkv: firewall: .*opened' /root/dpkg-install.out
    check $? "postinst reports the firewall ranges it opened"
    grep -q 'dkv Get-DkvAdminKey | sudo tee -a /etc/dkv/authorized_keys' \
        /root/dpkg-install.out
    check $? "postinst says how other users get access"

    getent passwd dkv > /root/last.out && getent group dkv >/dev/null
    check $? "system user and group dkv exist"
    uid=$(id -u dkv 2>/dev/null || echo 99999)
    [ "$uid" -lt 1000 ]
    check $? "dkv is a system user (uid $uid)"
    [ "$(stat -c '%U:%G %a' /etc/dkv)" = "root:dkv 750" ]
    check $? "/etc/dkv is root:dkv 0750"
    [ "$(stat -c '%U:%G %a' "$KEYS")" = "root:dkv 640" ]
    check $? "authorized_keys is root:dkv 0640"
    key=$(timeout 30 dkv Get-DkvAdminKey 2>/dev/null)
    [ -n "$key" ] && grep -qxF "$key" "$KEYS"
    check $? "authorized_keys trusts root's admin key"
    key=$(as_user alice dkv Get-DkvAdminKey 2>/dev/null)
    [ -n "$key" ] && grep -qxF "$key" "$KEYS"
    check $? "authorized_keys trusts \$SUDO_USER's (alice's) admin key"

    WAIT=30 retry systemctl is-active dkv-manager.service
    check $? "dkv-manager.service is active"
    run systemctl is-active dkv-firewall.service
    check $? "dkv-firewall.service is active"
    [ "$(systemctl is-enabled dkv-manager.service)" = enabled ] \
        && [ "$(systemctl is-enabled dkv-firewall.service)" = enabled ]
    check $? "both services are enabled"
    [ "$(manager_state)" = active/running ]
    check $? "manager ActiveState/SubState active/running (READY sent)"
    [ "$(stat -c %U /var/lib/dkv)" = dkv ]
    check $? "/var/lib/dkv belongs to dkv"
    [ "$(ps -o user= -p "$(systemctl show -p MainPID --value \
        dkv-manager.service)")" = dkv ]
    check $? "the manager runs as dkv"

    run dkv firewall status
    st=$?
    grep -q 7801-7810 /root/last.out && grep -q 7811-7860 /root/last.out \
        && grep -q 7861-7899 /root/last.out
    check $(($? + st)) "dkv firewall status shows the three ranges"
    run nft list ruleset
    for role in management cluster client; do
        grep -q "comment \"dkv:$role\"" /root/last.out
        check $? "nft ruleset holds the dkv:$role rule"
    done

    run dkv Connect-DkvManager -Managers localhost:7801
    check $? "Connect-DkvManager -Managers localhost:7801"
    run dkv New-DkvStore -Name TestStore -InstancePrefix node \
        -InstanceCount 3
    check $? "New-DkvStore TestStore, 3 instances"
    run dkv Start-DkvStore TestStore
    check $? "Start-DkvStore TestStore"
    poll 30 store_running
    check $? "Get-DkvStore TestStore shows Running"
    WAIT=20 retry dkv Connect-DkvStore -StoreName TestStore \
        -Endpoints 127.0.0.1:7861
    check $? "Connect-DkvStore -Endpoints 127.0.0.1:7861"
    WAIT=20 retry dkv Set-DkvItem -Key order:1001 -Value confirmed
    check $? "Set-DkvItem order:1001 confirmed"
    item_confirmed 0
    check $? "Get-DkvItem order:1001 reads confirmed"

    # Other users: their signed requests (Start-DkvStore of the running
    # store changes nothing) are refused until their key is added as the
    # postinst said; alice, who ran sudo, is trusted from the start.
    as_user alice dkv Connect-DkvManager -Managers localhost:7801 \
        > /root/last.out 2>&1 \
        && as_user alice dkv Start-DkvStore TestStore >> /root/last.out 2>&1
    st=$?
    cat /root/last.out >> "$DETAILS"
    check $st "alice (who ran sudo) manages the stores at once"
    as_user bob dkv Connect-DkvManager -Managers localhost:7801 \
        >/dev/null 2>&1
    as_user bob dkv Start-DkvStore TestStore > /root/last.out 2>&1
    st=$?
    cat /root/last.out >> "$DETAILS"
    [ $st -ne 0 ] && grep -qi 'authorized' /root/last.out
    check $? "bob is not authorized before his key is added"
    as_user bob dkv Get-DkvAdminKey 2>/dev/null | tee -a "$KEYS" >/dev/null
    end=$(($(date +%s) + 10))
    st=1
    while :; do
        if as_user bob dkv Start-DkvStore TestStore > /root/last.out 2>&1
        then
            st=0
            break
        fi
        [ "$(date +%s)" -lt "$end" ] || break
        sleep 1
    done
    cat /root/last.out >> "$DETAILS"
    check $st "bob is, once 'dkv Get-DkvAdminKey | tee -a' added his key"

    run systemctl show -p MainPID,ActiveState dkv-manager.service
    grep -q '^ActiveState=active' /root/last.out \
        && ! grep -q '^MainPID=0$' /root/last.out
    check $? "systemctl show: MainPID set, ActiveState active"
    poll 10 nodes_in_cgroup 3
    check $? "the 3 nodes run in dkv-manager.service's cgroup"
    run systemctl status --no-pager dkv-manager.service
    [ "$(grep -c 'dkv-node' /root/last.out)" -ge 3 ]
    check $? "systemctl status lists the nodes under the manager"
    [ "$(pgrep -c -x -U dkv dkv-node)" -eq 3 ] \
        && [ "$(pgrep -c -x dkv-node)" -eq 3 ]
    check $? "the nodes run as dkv"
    [ -z "${anyfail:-}" ] || diagnose
}

# Phase 2: after a reboot; then upgrade, stop, start and purge.
phase2() {
    WAIT=30 retry systemctl is-active dkv-manager.service
    check $? "after reboot: dkv-manager.service is active"
    [ "$(manager_state)" = active/running ]
    check $? "after reboot: ActiveState/SubState active/running"
    run nft list ruleset
    grep -q 'comment "dkv:client"' /root/last.out
    check $? "after reboot: dkv-firewall.service reopened the ranges"
    poll 60 store_running
    check $? "after reboot: TestStore is Running again"
    item_confirmed 20
    check $? "after reboot: order:1001 still reads confirmed"

    # An upgrade keeps the data and the keys and restarts the manager.
    keys_before=$(md5sum < "$KEYS")
    mkey_before=$(find /var/lib/dkv -maxdepth 1 -name '*.key' -type f \
        -exec md5sum {} + | sort)
    pid_before=$(systemctl show -p MainPID --value dkv-manager.service)
    run dpkg -i /root/dkv-upgrade.deb
    check $? "upgrade: dpkg -i of a newer version"
    WAIT=30 retry systemctl is-active dkv-manager.service
    pid_after=$(systemctl show -p MainPID --value dkv-manager.service)
    [ "$pid_after" != "$pid_before" ] && [ "$pid_after" != 0 ]
    check $? "upgrade: the manager was restarted ($pid_before->$pid_after)"
    [ "$(md5sum < "$KEYS")" = "$keys_before" ]
    check $? "upgrade: authorized_keys kept"
    [ -n "$mkey_before" ] && [ "$(find /var/lib/dkv -maxdepth 1 \
        -name '*.key' -type f -exec md5sum {} + | sort)" = "$mkey_before" ]
    check $? "upgrade: the manager's keys kept"
    poll 60 store_running
    check $? "upgrade: TestStore Running"
    item_confirmed 20
    check $? "upgrade: order:1001 still reads confirmed"

    before=$(clean_stops)
    run systemctl stop dkv-manager.service
    check $? "systemctl stop dkv-manager"
    [ "$(systemctl show -p Result --value dkv-manager.service)" = success ]
    check $? "stop: Result=success"
    [ "$(systemctl show -p ActiveState --value dkv-manager.service)" \
        = inactive ]
    check $? "stop: ActiveState=inactive"
    no_nodes
    check $? "stop: no dkv-node process left"
    after=$(clean_stops)
    echo "clean stops: $before before, $after after" >> "$DETAILS"
    [ "$after" -ge $((before + 3)) ]
    check $? "stop: the 3 nodes' logs say 'closed cleanly'"
    journalctl --no-pager -u dkv-manager.service -n 30 >> "$DETAILS" 2>&1

    run systemctl start dkv-manager.service
    check $? "systemctl start dkv-manager again"
    [ "$(manager_state)" = active/running ]
    check $? "start: active/running"
    poll 60 store_running
    check $? "start: TestStore Running again"

    # A crash: systemd kills the nodes left in the unit (KillMode=mixed)
    # and starts the manager again (Restart=on-failure), which brings
    # the store back.
    pid_before=$(systemctl show -p MainPID --value dkv-manager.service)
    nodes_before=$(pgrep -x dkv-node | tr '\n' ' ')
    run kill -KILL "$pid_before"
    poll 30 manager_replaced "$pid_before"
    check $? "crash: systemd restarted the killed manager"
    [ "$(systemctl show -p NRestarts --value dkv-manager.service)" -ge 1 ]
    check $? "crash: NRestarts counts the restart"
    # shellcheck disable=SC2086 # one PID per word
    [ -n "$nodes_before" ] && all_gone $nodes_before
    check $? "crash: the old nodes ($nodes_before) were killed with it"
    poll 60 store_running
    check $? "crash: TestStore Running again"
    poll 10 nodes_in_cgroup 3
    check $? "crash: the 3 new nodes run in the manager's cgroup"
    item_confirmed 20
    check $? "crash: order:1001 still reads confirmed"

    # Removal (not purge): the services stop, every dkv rule closes
    # (one outside the settings' ranges too), data, keys and the user
    # stay; installing again brings it all back.
    run dkv firewall open -Ranges 9000-9001
    check $? "dkv firewall open -Ranges 9000-9001 (a custom rule)"
    run dpkg -r dkv
    check $? "dpkg -r dkv"
    ! pgrep -x dkv-manager >/dev/null && no_nodes
    check $? "remove: no dkv process left"
    run nft list ruleset
    ! grep -q 'dkv:' /root/last.out
    check $? "remove: the ranges are closed (no dkv-tagged nft rule)"
    [ -f "$KEYS" ] && [ -d /var/lib/dkv/stores/TestStore ] \
        && getent passwd dkv >/dev/null
    check $? "remove: keys, data and user kept"
    run dpkg -i /root/dkv.deb
    check $? "reinstall: dpkg -i dkv.deb"
    [ "$(manager_state)" = active/running ] \
        && [ "$(systemctl is-enabled dkv-manager.service)" = enabled ]
    check $? "reinstall: the manager is enabled and running again"
    poll 60 store_running
    check $? "reinstall: TestStore Running"
    item_confirmed 20
    check $? "reinstall: order:1001 still reads confirmed"

    # The same version installed over itself: prerm upgrade and postinst
    # configure with the installed version.
    pid_before=$(systemctl show -p MainPID --value dkv-manager.service)
    run dpkg -i /root/dkv.deb
    check $? "same version again: dpkg -i dkv.deb over itself"
    poll 30 manager_replaced "$pid_before"
    check $? "same version again: the manager restarted, active/running"
    [ "$(systemctl is-enabled dkv-manager.service)" = enabled ] \
        && [ "$(systemctl is-enabled dkv-firewall.service)" = enabled ]
    check $? "same version again: both services still enabled"
    poll 60 store_running
    check $? "same version again: TestStore Running"

    [ -z "${anyfail:-}" ] || diagnose
    run dpkg --purge dkv
    check $? "dpkg --purge dkv"
    ! pgrep -x dkv-manager >/dev/null && no_nodes
    check $? "purge: no dkv process left"
    run nft list ruleset
    ! grep -q 'dkv:' /root/last.out
    check $? "purge: no dkv-tagged nft rule left"
    grep -q 'policy drop' /root/last.out
    check $? "purge: the machine's own ruleset stays"
    ! getent passwd dkv >/dev/null && ! getent group dkv >/dev/null
    check $? "purge: user and group dkv gone"
    [ ! -e /etc/dkv ] && [ ! -e /var/lib/dkv ]
    check $? "purge: /etc/dkv and /var/lib/dkv gone"
    [ ! -e /lib/systemd/system/dkv-manager.service ] \
        && [ ! -e /lib/systemd/system/dkv-firewall.service ] \
        && [ -z "$(find /etc/systemd/system -name 'dkv-manager*' -o \
            -name 'dkv-firewall*' 2>/dev/null)" ]
    check $? "purge: the units and their links gone"
    [ -z "$(systemctl list-unit-files --no-legend 'dkv-manager*' \
        'dkv-firewall*' 2>/dev/null)" ]
    check $? "purge: systemd knows no dkv unit"
}

case "${1:-}" in
    1) phase1 ;;
    2) phase2 ;;
    *) echo "not ok - deb-inside.sh: unknown phase '${1:-}'" >> "$RESULTS" ;;
esac
echo "done phase ${1:-}" >> "$RESULTS"
exit 0
