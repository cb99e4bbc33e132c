/*
 * signals.c (win32) -- stop requests for daemons.  Three ways in, one
 * stop function: the console control events (Ctrl+C, Ctrl+Break, window
 * close, shutdown; not logoff, which any user's logoff sends to services)
 * call it on the thread Windows starts for them;
 * the named event "Local\dkv-stop-<pid>" (plat-win32.h), which
 * dkv_plat_proc_signal sets for a graceful stop since Windows has no
 * SIGTERM, wakes a thread of ours that calls it; and the service control
 * manager's stop (service.c) goes through the same event thread with
 * dkv_plat_win32_request_stop.  The unix twin uses SIGTERM/SIGINT.
 */
#include "platform/platform.h"

#include <windows.h>
#include <process.h>

#include <apr_strings.h>

#include "common/status.h"
#include "platform/win32/plat-win32.h"

/* Guards everything below. */
static SRWLOCK lock = SRWLOCK_INIT;
static dkv_plat_stop_fn *stop_fn;
static void *stop_baton;
/* The auto-reset stop event (NULL until dkv_plat_stop_signals). */
static HANDLE stop_event;
/* The reason of a request made in this process, NULL for one that came
 * from outside through the event. */
static const char *pending_reason;

/* Reads the stop function under the lock. */
static void
get_fn(dkv_plat_stop_fn **fn, void **baton)
{
    AcquireSRWLockShared(&lock);
    *fn = stop_fn;
    *baton = stop_baton;
    ReleaseSRWLockShared(&lock);
}

/* How long the console handler holds a closing console or a shutdown
 * (Windows ends the process when the handler returns), in ms: enough
 * for the stop to finish, which ends the process first. */
#define CLOSE_HOLD_MS 20000

/* The console control handler: runs FN on the thread Windows made.  A
 * logoff is not a stop: Windows sends it to the services (and processes
 * of session 0) whenever any user logs off, so it goes on to the next
 * handler (a service's default one ignores it).  For a closing console
 * or a shutdown the handler then waits, since the process ends when it
 * returns. */
static BOOL WINAPI
console_handler(DWORD event)
{
    dkv_plat_stop_fn *fn;
    void *baton;
    const char *reason;

    switch (event) {
    case CTRL_C_EVENT:
        reason = "console Ctrl+C";
        break;
    case CTRL_BREAK_EVENT:
        reason = "console Ctrl+Break";
        break;
    case CTRL_CLOSE_EVENT:
        reason = "console closed";
        break;
    case CTRL_SHUTDOWN_EVENT:
        reason = "system shutdown";
        break;
    default:
        return FALSE;
    }
    get_fn(&fn, &baton);
    if (fn == NULL) {
        return FALSE;
    }
    fn(baton, reason);
    if (event == CTRL_CLOSE_EVENT || event == CTRL_SHUTDOWN_EVENT) {
        Sleep(CLOSE_HOLD_MS);
    }
    return TRUE;
}

/* The stop event's thread: each time the event is set, calls the stop
 * function with the pending reason, or "stop event" when another process
 * set it.  Ends only with the process (or if waiting fails). */
static unsigned __stdcall
event_thread(void *arg)
{
    HANDLE ev = arg;
    dkv_plat_stop_fn *fn;
    void *baton;
    const char *reason;

    while (WaitForSingleObject(ev, INFINITE) == WAIT_OBJECT_0) {
        AcquireSRWLockExclusive(&lock);
        reason = pending_reason != NULL ? pending_reason : "stop event";
        pending_reason = NULL;
        fn = stop_fn;
        baton = stop_baton;
        ReleaseSRWLockExclusive(&lock);
        if (fn != NULL) {
            fn(baton, reason);
        }
    }
    return 0;
}

/* See plat-win32.h. */
void
dkv_plat_win32_stop_event_name(char *buf, size_t cap, unsigned long pid)
{
    apr_snprintf(buf, cap, "Local\\dkv-stop-%lu", pid);
}

/* See plat-win32.h. */
void
dkv_plat_win32_request_stop(const char *reason)
{
    HANDLE ev;

    AcquireSRWLockExclusive(&lock);
    pending_reason = reason;
    ev = stop_event;
    ReleaseSRWLockExclusive(&lock);
    if (ev != NULL) {
        (void)SetEvent(ev);
    }
}

/* See platform.h: also creates the stop event "Local\dkv-stop-<pid>"
 * and the thread that waits on it (once per process; a second call only
 * replaces the function).  A request made before (the SCM's stop during
 * start-up) is delivered at once through the event. */
dkv_status_t
dkv_plat_stop_signals(dkv_plat_stop_fn *fn, void *baton)
{
    char name[64];
    HANDLE ev, th;
    DWORD e;
    int deliver;

    AcquireSRWLockExclusive(&lock);
    stop_fn = fn;
    stop_baton = baton;
    ev = stop_event;
    ReleaseSRWLockExclusive(&lock);
    if (!SetConsoleCtrlHandler(console_handler, TRUE)) {
        e = GetLastError();
        return dkv_error_set(APR_FROM_OS_ERROR(e), "SetConsoleCtrlHandler "
                             "failed (Windows error %lu)", (unsigned long)e);
    }
    if (ev != NULL) {
        return DKV_OK;
    }
    dkv_plat_win32_stop_event_name(name, sizeof(name),
                                   (unsigned long)GetCurrentProcessId());
    ev = CreateEventA(NULL, FALSE, FALSE, name);
    if (ev == NULL) {
        e = GetLastError();
        return dkv_error_set(APR_FROM_OS_ERROR(e), "cannot create the stop "
                             "event %s (Windows error %lu)", name,
                             (unsigned long)e);
    }
    if (GetLastError() == ERROR_ALREADY_EXISTS) {
        /* Made before us by another process of the session, with its
         * own security: whoever did could stop us at will. */
        CloseHandle(ev);
        return dkv_error_set(APR_FROM_OS_ERROR(ERROR_ALREADY_EXISTS),
                             "the stop event %s exists already (made by "
                             "another process): refusing to use it", name);
    }
    th = (HANDLE)_beginthreadex(NULL, 0, event_thread, ev, 0, NULL);
    if (th == NULL) {
        CloseHandle(ev);
        return dkv_error_set(APR_EGENERAL, "cannot start the thread that "
                             "waits on the stop event %s", name);
    }
    CloseHandle(th);
    AcquireSRWLockExclusive(&lock);
    stop_event = ev;
    deliver = pending_reason != NULL;
    ReleaseSRWLockExclusive(&lock);
    if (deliver) {
        (void)SetEvent(ev);
    }
    return DKV_OK;
}
