/*
 * platform.h -- what dkv needs from the operating system beyond APR, behind
 * one header; platform/unix and platform/win32 implement it file for file.
 *
 * It is also the one place sources get config.h from (configure's
 * DKV_HAVE_* feature macros, or win32/config-win32.h in Visual Studio
 * builds), so callers never test the platform themselves.
 */
#ifndef DKV_PLATFORM_H
#define DKV_PLATFORM_H

#if defined(HAVE_CONFIG_H)
#include "config.h"
#elif defined(_MSC_VER)
#include "win32/config-win32.h"
#endif

#include <apr_network_io.h>
#include <apr_pools.h>

#include "dkv/common.h"

/* ------------------------------------------------------ temporary dirs */

/* Creates a new, empty, private directory under the system's temporary
 * directory, named PREFIX followed by random characters (PREFIX NULL:
 * "dkv-").  *PATH receives its absolute path, allocated in POOL.
 * Returns DKV_OK or the APR/system status of the failure (with
 * dkv_error_set naming the path).  Thread-safe. */
dkv_status_t dkv_plat_mkdtemp(char **path, const char *prefix,
                              apr_pool_t *pool);

/* Removes PATH and everything below it (files, nested directories).  A
 * missing PATH is not an error.  Symbolic links are removed, not followed.
 * Scratch memory comes from a subpool of POOL.  Returns DKV_OK or the
 * status of the first removal that failed (the rest is still attempted).
 * Implemented once with APR (platform/unix/rmtree.c, compiled on every
 * platform). */
dkv_status_t dkv_plat_rmtree(const char *path, apr_pool_t *pool);

/* ----------------------------------------------------------- processors */

/* The number of processors the system has online (at least 1).
 * Thread-safe. */
unsigned dkv_plat_cpus(void);

/* A process-wide lock usable before APR is initialized: the client takes
 * it around apr_initialize and apr_terminate, whose reference count is
 * not thread-safe.  Not recursive. */
void dkv_plat_global_lock(void);
void dkv_plat_global_unlock(void);

/* ------------------------------------------------------------- daemons */

/* Called when the process is asked to stop: REASON names the request
 * ("SIGTERM", "SIGINT", "console Ctrl+C", ...).  Runs on a thread of its
 * own (never in a signal handler), so it may lock and wake up pollsets; it
 * may be called again for a second request. */
typedef void (dkv_plat_stop_fn)(void *baton, const char *reason);

/* Routes the process's stop requests to FN: on Unix SIGTERM and SIGINT
 * (blocked in every thread and taken by a sigwait thread; SIGPIPE is
 * ignored, since a closed peer is reported by send() instead); on Windows
 * the console control events (Ctrl+C, Ctrl+Break, close, shutdown; not
 * logoff), the named event "Local\dkv-stop-<pid>" that
 * dkv_plat_proc_signal() sets (reason "stop event"), and the service
 * control manager's stop (platform/service.h).  Call it once, before any
 * other thread starts, so threads inherit the signal mask.  Returns
 * DKV_OK or the system's status. */
dkv_status_t dkv_plat_stop_signals(dkv_plat_stop_fn *fn, void *baton);

/* Raises the limit on open descriptors (Unix: RLIMIT_NOFILE's soft limit
 * up to the hard limit) so a server can hold many connections.  *LIMIT
 * receives the limit now in force (0: the platform has no such limit).
 * Returns DKV_OK, or the system's status when the limit could not be read
 * (a refused raise is not an error: *LIMIT tells what is in force). */
dkv_status_t dkv_plat_raise_fd_limit(uint64_t *limit);

/* Sets the options a listening socket needs before bind (Unix:
 * SO_REUSEADDR, so a restarted server can bind while old connections sit
 * in TIME_WAIT; Windows: nothing, since SO_REUSEADDR there would let two
 * servers share a port).  Returns DKV_OK or the APR status. */
dkv_status_t dkv_plat_listener_prepare(apr_socket_t *sock);

/* Connects SOCK to SA, giving up after TIMEOUT (negative: as long as the
 * system tries), and leaves SOCK with TIMEOUT as its APR timeout.  Unix
 * APR already bounds a connect by the socket timeout; win32 APR makes a
 * blocking connect() that no timeout shortens (a refused loopback port
 * costs about 2 s of SYN retries, an unanswered address about 21 s), so
 * the win32 twin connects non-blocking, waits in select() and reads
 * SO_ERROR, and asks for no SYN retransmissions where Windows supports
 * that (a refusal then fails at once).  Returns APR_SUCCESS, APR_TIMEUP
 * (test with APR_STATUS_IS_TIMEUP) when TIMEOUT passed, or the system's
 * status of the failure (ECONNREFUSED, ...).  Thread-safe for distinct
 * sockets. */
dkv_status_t dkv_plat_connect(apr_socket_t *sock, apr_sockaddr_t *sa,
                              apr_interval_time_t timeout);

#endif /* DKV_PLATFORM_H */
