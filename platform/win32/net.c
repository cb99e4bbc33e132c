/*
 * net.c (win32) -- what dkv needs beyond APR's sockets.  Windows has no
 * per-process descriptor limit for sockets, and SO_REUSEADDR there would
 * let a second server bind the same port, so both are no-ops; a connect
 * bounded by a timeout has to be built here, since APR's win32 connect
 * blocks as long as Windows retries.  The unix twin is
 * platform/unix/net.c.
 */
#include "platform/platform.h"

#include <winsock2.h>
#include <ws2tcpip.h>
#include <mstcpip.h>

#include <apr_portable.h>

/* See platform.h. */
dkv_status_t
dkv_plat_raise_fd_limit(uint64_t *limit)
{
    *limit = 0;
    return DKV_OK;
}

/* See platform.h. */
dkv_status_t
dkv_plat_listener_prepare(apr_socket_t *sock)
{
    (void)sock;
    return DKV_OK;
}

/* Whether SA is a loopback address (127/8, ::1). */
static int
is_loopback(const apr_sockaddr_t *sa)
{
    if (sa->family == APR_INET) {
        return (ntohl(sa->sa.sin.sin_addr.s_addr) >> 24) == 127;
    }
#if APR_HAVE_IPV6
    if (sa->family == APR_INET6) {
        return IN6_IS_ADDR_LOOPBACK(&sa->sa.sin6.sin6_addr);
    }
#endif
    return 0;
}

/* Asks Windows not to retransmit the SYN of FD's connect to a loopback
 * SA, so a refusal (RST) fails the connect at once instead of after about
 * 2 s of retries; other destinations keep the retries a lossy network
 * needs.  Best effort: older Windows (and wine) refuse the ioctl, which
 * changes nothing but speed. */
static void
no_syn_retries(SOCKET fd, const apr_sockaddr_t *sa)
{
#if defined(SIO_TCP_INITIAL_RTO) \
    && defined(TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS)
    TCP_INITIAL_RTO_PARAMETERS p;
    DWORD out = 0;

    if (!is_loopback(sa)) {
        return;
    }
    p.Rtt = TCP_INITIAL_RTO_UNSPECIFIED_RTT;
    p.MaxSynRetransmissions = TCP_INITIAL_RTO_NO_SYN_RETRANSMISSIONS;
    (void)WSAIoctl(fd, SIO_TCP_INITIAL_RTO, &p, sizeof(p), NULL, 0, &out,
                   NULL, NULL);
#else
    (void)fd;
    (void)sa;
#endif
}

/* See platform.h. */
dkv_status_t
dkv_plat_connect(apr_socket_t *sock, apr_sockaddr_t *sa,
                 apr_interval_time_t timeout)
{
    apr_os_sock_t fd;
    fd_set wset, eset;
    struct timeval tv;
    int n, err = 0, len = sizeof(err);
    apr_status_t rv, rv2;

    if (timeout < 0) {
        rv = apr_socket_timeout_set(sock, timeout);
        return rv == APR_SUCCESS ? apr_socket_connect(sock, sa) : rv;
    }
    rv = apr_os_sock_get(&fd, sock);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* Non-blocking: APR then reports WSAEWOULDBLOCK as EINPROGRESS. */
    rv = apr_socket_timeout_set(sock, 0);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    no_syn_retries(fd, sa);
    rv = apr_socket_connect(sock, sa);
    if (APR_STATUS_IS_EINPROGRESS(rv)) {
        FD_ZERO(&wset);
        FD_SET(fd, &wset);
        FD_ZERO(&eset);
        FD_SET(fd, &eset);
        tv.tv_sec = (long)apr_time_sec(timeout);
        tv.tv_usec = (long)apr_time_usec(timeout);
        n = select(0, NULL, &wset, &eset, &tv);
        if (n == SOCKET_ERROR) {
            rv = apr_get_netos_error();
        }
        else if (n == 0) {
            rv = APR_TIMEUP;
        }
        else if (FD_ISSET(fd, &eset)) {
            /* Windows reports a failed connect as an exception. */
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, (char *)&err, &len)
                != 0) {
                rv = apr_get_netos_error();
            }
            else {
                rv = err != 0 ? APR_FROM_OS_ERROR(err) : APR_ECONNREFUSED;
            }
        }
        else {
            rv = APR_SUCCESS;
        }
    }
    /* Back to blocking with TIMEOUT for sends and receives. */
    rv2 = apr_socket_timeout_set(sock, timeout);
    return rv != APR_SUCCESS ? rv : rv2;
}
