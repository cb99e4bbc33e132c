/*
 * signals.c (win32) -- stop requests for daemons: the console control
 * events (Ctrl+C, Ctrl+Break, window close, logoff, shutdown) call the
 * daemon's stop function on the thread Windows starts for them.  The
 * service control manager's stop request is added with the service hooks.
 * The unix twin uses SIGTERM/SIGINT.
 */
#include "platform/platform.h"

#include <windows.h>

#include "common/status.h"

static dkv_plat_stop_fn *stop_fn;
static void *stop_baton;

static BOOL WINAPI
console_handler(DWORD event)
{
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
    case CTRL_LOGOFF_EVENT:
        reason = "logoff";
        break;
    case CTRL_SHUTDOWN_EVENT:
        reason = "system shutdown";
        break;
    default:
        return FALSE;
    }
    if (stop_fn != NULL) {
        stop_fn(stop_baton, reason);
    }
    return TRUE;
}

/* See platform.h. */
dkv_status_t
dkv_plat_stop_signals(dkv_plat_stop_fn *fn, void *baton)
{
    stop_fn = fn;
    stop_baton = baton;
    if (!SetConsoleCtrlHandler(console_handler, TRUE)) {
        return dkv_error_set(APR_FROM_OS_ERROR(GetLastError()),
                             "SetConsoleCtrlHandler failed");
    }
    return DKV_OK;
}
