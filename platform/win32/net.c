/*
 * net.c (win32) -- what a server needs beyond APR's sockets.  Windows has
 * no per-process descriptor limit for sockets, and SO_REUSEADDR there
 * would let a second server bind the same port, so both are no-ops.  The
 * unix twin is platform/unix/net.c.
 */
#include "platform/platform.h"

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
