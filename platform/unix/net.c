/*
 * net.c (unix) -- what a server needs beyond APR's sockets: a descriptor
 * limit large enough for its connections, listener options, and a
 * connect bounded by a timeout.  The win32 twin is platform/win32/net.c.
 */
#include "platform/platform.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#include "common/status.h"

/* See platform.h. */
dkv_status_t
dkv_plat_raise_fd_limit(uint64_t *limit)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        int e = errno;

        *limit = 0;
        return dkv_error_set(APR_FROM_OS_ERROR(e), "getrlimit: %s",
                             strerror(e));
    }
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit want = rl;

        want.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) != 0
            && rl.rlim_max == RLIM_INFINITY) {
            /* Some systems refuse "infinity": try a large finite one. */
            want.rlim_cur = 1048576;
            if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
                want.rlim_cur = 65536;
                (void)setrlimit(RLIMIT_NOFILE, &want);
            }
        }
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
            rl.rlim_cur = 0;
        }
    }
    *limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX
                                          : (uint64_t)rl.rlim_cur;
    return DKV_OK;
}

/* See platform.h. */
dkv_status_t
dkv_plat_listener_prepare(apr_socket_t *sock)
{
    return apr_socket_opt_set(sock, APR_SO_REUSEADDR, 1);
}

/* See platform.h.  APR's unix connect already waits at most the socket
 * timeout (non-blocking connect, poll, SO_ERROR). */
dkv_status_t
dkv_plat_connect(apr_socket_t *sock, apr_sockaddr_t *sa,
                 apr_interval_time_t timeout)
{
    apr_status_t rv = apr_socket_timeout_set(sock, timeout);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    return apr_socket_connect(sock, sa);
}
