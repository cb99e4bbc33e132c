/*
 * proc.c (win32) -- processes and ports for dkv-manager (platform/proc.h)
 * with the Win32 API.  Windows has no SIGTERM: a graceful stop by pid
 * sets the daemon's named stop event (platform/win32/signals.c), and
 * falls back to TerminateProcess for a process that has none; the holder
 * of a port and a process's command line are not looked up (they answer
 * "unknown").  The unix twin is platform/unix/proc.c.
 */
#include "platform/proc.h"

#include <winsock2.h>
#include <windows.h>

#include <string.h>

#include <apr_strings.h>

#include "common/log.h"
#include "common/status.h"
#include "platform/win32/plat-win32.h"

/* See proc.h. */
int
dkv_plat_proc_alive(int64_t pid)
{
    HANDLE h;
    DWORD code = 0;
    int alive;

    if (pid <= 0 || pid > 0xFFFFFFFFLL) {
        return 0;
    }
    h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    if (h == NULL) {
        /* Access denied means it exists. */
        return GetLastError() == ERROR_ACCESS_DENIED;
    }
    alive = GetExitCodeProcess(h, &code) && code == STILL_ACTIVE;
    CloseHandle(h);
    return alive;
}

/* Terminates process PID at once (exit code 1).  Returns DKV_OK or the
 * system's status with dkv_error_set naming the pid. */
static dkv_status_t
terminate(DWORD pid)
{
    HANDLE h;
    DWORD e;

    h = OpenProcess(PROCESS_TERMINATE, FALSE, pid);
    if (h != NULL) {
        if (TerminateProcess(h, 1)) {
            CloseHandle(h);
            return DKV_OK;
        }
        e = GetLastError();
        CloseHandle(h);
    }
    else {
        e = GetLastError();
    }
    return dkv_error_set(APR_FROM_OS_ERROR(e), "cannot terminate pid %lu"
                         " (Windows error %lu)", (unsigned long)pid,
                         (unsigned long)e);
}

/* See proc.h: graceful sets "Local\dkv-stop-<pid>"; without that event
 * (not a dkv daemon, or one that has not set up its stop requests yet)
 * the process is terminated, with a warning in the log. */
dkv_status_t
dkv_plat_proc_signal(int64_t pid, int graceful)
{
    char name[64];
    HANDLE ev;
    DWORD e;
    dkv_status_t st;

    if (pid <= 0 || pid > 0xFFFFFFFFLL) {
        return dkv_error_set(DKV_EINVAL, "no process %lld", (long long)pid);
    }
    if (!graceful) {
        return terminate((DWORD)pid);
    }
    dkv_plat_win32_stop_event_name(name, sizeof(name), (unsigned long)pid);
    ev = OpenEventA(EVENT_MODIFY_STATE, FALSE, name);
    if (ev != NULL) {
        if (SetEvent(ev)) {
            CloseHandle(ev);
            return DKV_OK;
        }
        e = GetLastError();
        CloseHandle(ev);
    }
    else {
        e = GetLastError();
    }
    if (!dkv_plat_proc_alive(pid)) {
        return dkv_error_set(APR_FROM_OS_ERROR(ERROR_INVALID_PARAMETER),
                             "no process %lld", (long long)pid);
    }
    st = terminate((DWORD)pid);
    if (st == DKV_OK) {
        dkv_log(DKV_LOG_WARN, "pid %lld has no stop event %s (Windows "
                "error %lu): terminated it instead of a graceful stop",
                (long long)pid, name, (unsigned long)e);
    }
    return st;
}

/* See proc.h. */
int
dkv_plat_addr_in_use(apr_status_t rv)
{
    return rv == APR_FROM_OS_ERROR(WSAEADDRINUSE)
           || rv == APR_FROM_OS_ERROR(WSAEACCES);
}

/* See proc.h: unknown on Windows. */
void
dkv_plat_port_holder(uint16_t port, char *buf, size_t cap)
{
    (void)port;
    if (cap > 0) {
        buf[0] = '\0';
    }
}

/* See proc.h: unknown on Windows. */
int
dkv_plat_proc_runs_instance(int64_t pid, const char *store,
                            const char *instance)
{
    (void)pid;
    (void)store;
    (void)instance;
    return -1;
}

/* See proc.h. */
const char *
dkv_plat_exe_dir(apr_pool_t *pool)
{
    char path[MAX_PATH + 1];
    DWORD n = GetModuleFileNameA(NULL, path, (DWORD)sizeof(path));
    char *sep;

    if (n == 0 || n >= sizeof(path)) {
        return NULL;
    }
    path[n] = '\0';
    sep = strrchr(path, '\\');
    if (sep == NULL) {
        sep = strrchr(path, '/');
    }
    if (sep == NULL) {
        return NULL;
    }
    *sep = '\0';
    return apr_pstrdup(pool, path);
}
