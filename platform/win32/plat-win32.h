/*
 * plat-win32.h -- what the win32 platform files share among themselves
 * (not for callers outside platform/win32): the stop requests that
 * service.c receives from the service control manager go to the stop
 * function that signals.c keeps.
 */
#ifndef DKV_PLATFORM_WIN32_PLAT_WIN32_H
#define DKV_PLATFORM_WIN32_PLAT_WIN32_H

#include <stddef.h>

#include "platform/platform.h"

/* Writes into BUF (CAP bytes, NUL-terminated) the name of the event
 * process PID waits on for a graceful stop, "Local\dkv-stop-<pid>" in
 * decimal: signals.c creates it, dkv_plat_proc_signal sets it.  64
 * bytes are enough. */
void dkv_plat_win32_stop_event_name(char *buf, size_t cap,
                                    unsigned long pid);

/* Asks this process to stop with REASON (a static string): the function
 * given to dkv_plat_stop_signals() is called on the stop event's thread.
 * When no function is registered yet, the request is kept and delivered
 * as soon as one is.  Never blocks on the stop function.  Thread-safe. */
void dkv_plat_win32_request_stop(const char *reason);

#endif /* DKV_PLATFORM_WIN32_PLAT_WIN32_H */
