/*
 * proc.h -- what dkv-manager needs from the OS about processes and ports
 * beyond APR: is a pid alive, stop it by pid (for nodes adopted after a
 * manager restart, which are not APR children, and on Windows for every
 * graceful stop), who holds a port, what command line a process runs,
 * and where our own executable lives.
 *
 * platform/unix/proc.c reads /proc where there is one (Linux) and answers
 * "unknown" elsewhere; platform/win32/proc.c uses the Win32 API.
 */
#ifndef DKV_PLATFORM_PROC_H
#define DKV_PLATFORM_PROC_H

#include <stddef.h>
#include <stdint.h>

#include "platform/platform.h"

/* 1 when a process with id PID exists (Unix: kill(PID, 0) succeeds or
 * fails with EPERM; Windows: it can be opened and has not exited), else
 * 0.  A zombie (exited, not reaped) is not alive where /proc tells.
 * Thread-safe. */
int dkv_plat_proc_alive(int64_t pid);

/* Asks process PID to stop: GRACEFUL nonzero sends SIGTERM, zero
 * SIGKILL.  Windows has no SIGTERM: GRACEFUL sets the named event
 * "Local\dkv-stop-PID" that every dkv daemon waits on from
 * dkv_plat_stop_signals() (its stop function then runs with the reason
 * "stop event"); a process without that event is terminated at once
 * (TerminateProcess, exit code 1) and a warning is logged.  Zero
 * GRACEFUL terminates at once.  Returns DKV_OK when the request was
 * delivered (the process may still be running), or the system's status
 * (no such process, permission denied) with dkv_error_set naming the
 * pid.  Thread-safe. */
dkv_status_t dkv_plat_proc_signal(int64_t pid, int graceful);

/* Describes the local process listening on TCP PORT (any address, IPv4
 * or IPv6) into BUF (CAP bytes, NUL-terminated) as "pid 42 (dkv-node)".
 * Linux: the socket's inode from /proc/net/tcp and tcp6, then the
 * process whose /proc/PID/fd has it (processes we may not inspect are
 * skipped).  BUF is "" when the holder is unknown, and always on the
 * other systems.  Slow-ish (scans every process): for error messages
 * only.  Thread-safe. */
void dkv_plat_port_holder(uint16_t port, char *buf, size_t cap);

/* 1 when RV, the status of a failed bind, says the address is in use
 * (Unix EADDRINUSE; Windows WSAEADDRINUSE, and WSAEACCES, which an
 * exclusive listener causes). */
int dkv_plat_addr_in_use(apr_status_t rv);

/* Whether process PID runs a command line that has the argument pair
 * "--store STORE" and "--instance INSTANCE" (Linux: /proc/PID/cmdline).
 * Returns 1 (yes), 0 (no, or no such process), -1 when the system does
 * not tell (no /proc; Windows).  Thread-safe. */
int dkv_plat_proc_runs_instance(int64_t pid, const char *store,
                                const char *instance);

/* The directory of the running executable (Linux: /proc/self/exe;
 * Windows: GetModuleFileName), in POOL; NULL when the system does not
 * tell.  Thread-safe. */
const char *dkv_plat_exe_dir(apr_pool_t *pool);

#endif /* DKV_PLATFORM_PROC_H */
