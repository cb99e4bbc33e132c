/*
 * plat-win32.h -- what the win32 platform files share among themselves
 * (not for callers outside platform/win32): the stop requests that
 * service.c receives from the service control manager go to the stop
 * function that signals.c keeps.
 */
#ifndef DKV_PLATFORM_WIN32_PLAT_WIN32_H
#define DKV_PLATFORM_WIN32_PLAT_WIN32_H

#include "platform/platform.h"

/* The prefix of the named event every daemon waits on for a graceful
 * stop; the full name is this followed by the process id in decimal
 * ("Local\dkv-stop-1234").  dkv_plat_proc_signal sets it. */
#define DKV_WIN32_STOP_EVENT "Local\\dkv-stop-"

/* Asks this process to stop with REASON (a static string): the function
 * given to dkv_plat_stop_signals() is called on the stop event's thread.
 * When no function is registered yet, the request is kept and delivered
 * as soon as one is.  Never blocks on the stop function.  Thread-safe. */
void dkv_plat_win32_request_stop(const char *reason);

#endif /* DKV_PLATFORM_WIN32_PLAT_WIN32_H */
