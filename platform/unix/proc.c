/*
 * proc.c (unix) -- processes and ports for dkv-manager (platform/proc.h):
 * liveness and signals by pid, and, where the system has a Linux-style
 * /proc, the holder of a port, a process's command line and our own
 * executable's path.  Without /proc those answer "unknown" at run time.
 * The win32 twin is platform/win32/proc.c.
 */
#include "platform/proc.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <apr_strings.h>

#include "common/status.h"

/* 1 when /proc says PID is a zombie (it has exited, unreaped). */
static int
is_zombie(int64_t pid)
{
    char path[64], buf[512], *close;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "PID (COMM) STATE ...": COMM may hold spaces and parentheses. */
    close = strrchr(buf, ')');
    return close != NULL && close[1] == ' ' && close[2] == 'Z';
}

/* See proc.h. */
int
dkv_plat_proc_alive(int64_t pid)
{
    if (pid <= 0 || (int64_t)(pid_t)pid != pid) {
        return 0;
    }
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM) {
        return 0;
    }
    return !is_zombie(pid);
}

/* See proc.h. */
dkv_status_t
dkv_plat_proc_signal(int64_t pid, int graceful)
{
    int e;

    if (pid <= 0 || (int64_t)(pid_t)pid != pid) {
        return dkv_error_set(DKV_EINVAL, "no process %lld", (long long)pid);
    }
    if (kill((pid_t)pid, graceful ? SIGTERM : SIGKILL) == 0) {
        return DKV_OK;
    }
    e = errno;
    return dkv_error_set(APR_FROM_OS_ERROR(e), "cannot signal pid %lld: %s",
                         (long long)pid, strerror(e));
}

/* See proc.h. */
int
dkv_plat_addr_in_use(apr_status_t rv)
{
    return rv == APR_FROM_OS_ERROR(EADDRINUSE);
}

/* Finds the inode of the socket bound to PORT in the table FILE (the
 * format of /proc/net/tcp): a listener, or a bound socket with no peer.
 * Returns the inode, 0 when none. */
static unsigned long
socket_inode(const char *file, uint16_t port)
{
    FILE *f = fopen(file, "r");
    char line[512];
    unsigned long found = 0;

    if (f == NULL) {
        return 0;
    }
    if (fgets(line, sizeof(line), f) == NULL) {     /* the header */
        fclose(f);
        return 0;
    }
    while (found == 0 && fgets(line, sizeof(line), f) != NULL) {
        char local[80], remote[80];
        unsigned st, lport;
        unsigned long inode;
        const char *colon, *rcolon;

        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, "%*s %79s %79s %x %*s %*s %*s %*s %*s %lu",
                   local, remote, &st, &inode) != 4) {
            continue;
        }
        colon = strrchr(local, ':');
        rcolon = strrchr(remote, ':');
        if (colon == NULL || rcolon == NULL
            || sscanf(colon + 1, "%x", &lport) != 1 || lport != port) {
            continue;
        }
        /* 0x0A LISTEN; 0x07 CLOSE with remote port 0: bound only. */
        if (st == 0x0A || (st == 0x07 && strcmp(rcolon + 1, "0000") == 0)) {
            found = inode;
        }
    }
    fclose(f);
    return found;
}

/* 1 when process PID (a /proc entry name) has a descriptor on socket
 * inode INODE. */
static int
has_socket(const char *pid, unsigned long inode)
{
    char path[300], target[64], want[48];
    DIR *d;
    struct dirent *e;
    int found = 0;

    snprintf(path, sizeof(path), "/proc/%s/fd", pid);
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    d = opendir(path);
    if (d == NULL) {
        return 0;
    }
    while (!found && (e = readdir(d)) != NULL) {
        char link[600];
        ssize_t n;

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
        n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            found = strcmp(target, want) == 0;
        }
    }
    closedir(d);
    return found;
}

/* See proc.h. */
void
dkv_plat_port_holder(uint16_t port, char *buf, size_t cap)
{
    unsigned long inode;
    DIR *d;
    struct dirent *e;

    if (cap == 0) {
        return;
    }
    buf[0] = '\0';
    inode = socket_inode("/proc/net/tcp", port);
    if (inode == 0) {
        inode = socket_inode("/proc/net/tcp6", port);
    }
    if (inode == 0 || (d = opendir("/proc")) == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char path[300], comm[64] = "";
        FILE *f;

        if (e->d_name[0] < '1' || e->d_name[0] > '9'
            || strspn(e->d_name, "0123456789") != strlen(e->d_name)
            || !has_socket(e->d_name, inode)) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
        f = fopen(path, "r");
        if (f != NULL) {
            if (fgets(comm, sizeof(comm), f) == NULL) {
                comm[0] = '\0';
            }
            comm[strcspn(comm, "\n")] = '\0';
            fclose(f);
        }
        if (comm[0] != '\0') {
            snprintf(buf, cap, "pid %s (%s)", e->d_name, comm);
        }
        else {
            snprintf(buf, cap, "pid %s", e->d_name);
        }
        break;
    }
    closedir(d);
}

/* See proc.h. */
int
dkv_plat_proc_runs_instance(int64_t pid, const char *store,
                            const char *instance)
{
    char path[64], args[8192];
    FILE *f;
    size_t n, i;
    const char *prev = NULL;
    int has_store = 0, has_instance = 0;

    f = fopen("/proc/self/cmdline", "r");
    if (f == NULL) {
        return -1;                  /* no /proc here */
    }
    fclose(f);
    snprintf(path, sizeof(path), "/proc/%lld/cmdline", (long long)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    n = fread(args, 1, sizeof(args) - 1, f);
    fclose(f);
    args[n] = '\0';
    for (i = 0; i < n; i += strlen(args + i) + 1) {
        const char *a = args + i;

        if (prev != NULL && strcmp(prev, "--store") == 0
            && strcmp(a, store) == 0) {
            has_store = 1;
        }
        if (prev != NULL && strcmp(prev, "--instance") == 0
            && strcmp(a, instance) == 0) {
            has_instance = 1;
        }
        prev = a;
    }
    return has_store && has_instance;
}

/* See proc.h. */
const char *
dkv_plat_exe_dir(apr_pool_t *pool)
{
    char path[4096];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    char *slash;

    if (n <= 0 || n >= (ssize_t)sizeof(path) - 1) {
        return NULL;
    }
    path[n] = '\0';
    slash = strrchr(path, '/');
    if (slash == NULL) {
        return NULL;
    }
    if (slash == path) {
        slash++;
    }
    *slash = '\0';
    return apr_pstrdup(pool, path);
}
