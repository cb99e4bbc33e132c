/*
 * service.c (unix) -- readiness and stopping reported to systemd with the
 * sd_notify datagram protocol, spoken by hand (no libsystemd): one
 * datagram of "NAME=value" lines per report, sent to the unix socket
 * named by $NOTIFY_SOCKET (a path, or "@name" for Linux's abstract
 * namespace).  Without $NOTIFY_SOCKET every report is a no-op, which is
 * the case under rc.d, launchd and a shell.
 *
 * The socket's address is read from the environment once, at the first
 * report, and kept: the daemon may then remove NOTIFY_SOCKET from its
 * environment so that the processes it starts (dkv-manager's nodes)
 * cannot notify in its name.  Installing a service is Windows-only here
 * (platform/win32/service.c); on Unix the unit files and scripts under
 * packaging/ do that job.
 */
#include "platform/service.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/status.h"

/* The longest datagram sent; longer STATUS texts are cut. */
#define NOTIFY_MAX 1024

/* Where the reports go, read once from $NOTIFY_SOCKET. */
static pthread_once_t notify_once = PTHREAD_ONCE_INIT;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;   /* 0: no systemd to notify */

static const char unsupported[] =
    "dkv-manager runs under systemd (dkv-manager.service), rc.d "
    "(dkv_manager) or launchd (org.dkv.manager) on this system; see "
    "docs/operations.md";

/* Reads $NOTIFY_SOCKET into notify_addr and notify_len (left 0 when the
 * variable is unset, empty, too long or of a kind not spoken here, such
 * as "vsock:"). */
static void
notify_init(void)
{
    const char *env = getenv("NOTIFY_SOCKET");
    size_t len;

    if (env == NULL || (env[0] != '/' && env[0] != '@')) {
        return;
    }
    len = strlen(env);
    if (len < 2 || len >= sizeof(notify_addr.sun_path)) {
        return;
    }
    memset(&notify_addr, 0, sizeof(notify_addr));
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, env, len);
    if (env[0] == '@') {
        /* Abstract namespace: a leading NUL, and the length counts
         * exactly the name's bytes (no terminating NUL). */
        notify_addr.sun_path[0] = '\0';
        notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path)
                                 + len);
    } else {
        notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path)
                                 + len + 1);
    }
}

/* Sends MSG (LEN bytes) as one datagram to systemd, if there is one.
 * Failures are ignored: a report that cannot be delivered must not stop
 * the daemon (systemd then times the start out, which says enough). */
static void
notify_send(const char *msg, size_t len)
{
    int fd;

    pthread_once(&notify_once, notify_init);
    if (notify_len == 0) {
        return;
    }
    /* Close-on-exec from the start where the system allows it: another
     * thread may fork and exec a node between socket() and fcntl(). */
#ifdef SOCK_CLOEXEC
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
#else
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
#endif
    if (fd < 0) {
        return;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    while (sendto(fd, msg, len, 0, (const struct sockaddr *)&notify_addr,
                  notify_len) < 0 && errno == EINTR) {
        continue;
    }
    close(fd);
}

/* Appends "STATUS=<STATUS>\n" to BUF (of NOTIFY_MAX bytes, *USED used so
 * far), newlines in STATUS turned into blanks and the text cut to fit. */
static void
append_status(char *buf, size_t *used, const char *status)
{
    static const char key[] = "STATUS=";
    size_t n = *used;

    if (n + sizeof(key) + 1 >= NOTIFY_MAX) {
        return;
    }
    memcpy(buf + n, key, sizeof(key) - 1);
    n += sizeof(key) - 1;
    for (; *status != '\0' && n < NOTIFY_MAX - 2; status++) {
        buf[n++] = (*status == '\n' || *status == '\r') ? ' ' : *status;
    }
    buf[n++] = '\n';
    buf[n] = '\0';
    *used = n;
}

/* See service.h. */
void
dkv_plat_service_ready(const char *status)
{
    char buf[NOTIFY_MAX];
    size_t used;
    int n;

    n = snprintf(buf, sizeof(buf), "READY=1\nMAINPID=%ld\n",
                 (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        return;
    }
    used = (size_t)n;
    if (status != NULL) {
        append_status(buf, &used, status);
    }
    notify_send(buf, used);
}

/* See service.h. */
void
dkv_plat_service_status(const char *status)
{
    char buf[NOTIFY_MAX];
    size_t used = 0;

    append_status(buf, &used, status != NULL ? status : "");
    notify_send(buf, used);
}

/* See service.h.  The wait hint becomes EXTEND_TIMEOUT_USEC, which lets
 * systemd wait that long for the stop even when TimeoutStopSec is shorter
 * (older systemd versions ignore the line). */
void
dkv_plat_service_stopping(unsigned wait_hint_ms)
{
    char buf[NOTIFY_MAX];
    int n;

    n = snprintf(buf, sizeof(buf), "STOPPING=1\nEXTEND_TIMEOUT_USEC=%llu\n",
                 (unsigned long long)wait_hint_ms * 1000ULL);
    if (n > 0 && (size_t)n < sizeof(buf)) {
        notify_send(buf, (size_t)n);
    }
}

/* See service.h: never a service run on Unix. */
int
dkv_plat_service_dispatch(const char *name, dkv_plat_service_main_fn *fn,
                          int argc, const char *const *argv)
{
    (void)name;
    (void)fn;
    (void)argc;
    (void)argv;
    return -1;
}

/* See service.h: APR_ENOTIMPL, naming the unit, rc.d script and launchd
 * job that do this job on Unix. */
dkv_status_t
dkv_plat_service_install(const char *name, const char *display,
                         const char *description, const char *args,
                         const char *account)
{
    (void)name;
    (void)display;
    (void)description;
    (void)args;
    (void)account;
    return dkv_error_set(APR_ENOTIMPL, "%s", unsupported);
}

/* See service.h: APR_ENOTIMPL like dkv_plat_service_install. */
dkv_status_t
dkv_plat_service_uninstall(const char *name)
{
    (void)name;
    return dkv_error_set(APR_ENOTIMPL, "%s", unsupported);
}
