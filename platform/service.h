/*
 * service.h -- daemons under the system's service manager: readiness and
 * stopping reported to systemd (sd_notify protocol, no libsystemd) or to
 * the Windows service control manager, and dkv-manager as a Windows
 * service (install, uninstall, run under the SCM dispatcher).
 *
 * platform/unix/service.c and platform/win32/service.c implement it.
 * Under no service manager every report is a no-op.  A stop request from
 * the SCM reaches the function given to dkv_plat_stop_signals(), like
 * SIGTERM on Unix.
 */
#ifndef DKV_PLATFORM_SERVICE_H
#define DKV_PLATFORM_SERVICE_H

#include "platform/platform.h"

/* The daemon is ready: its ports listen.  systemd: "READY=1" with
 * "STATUS=<STATUS>" and "MAINPID"; Windows service: SERVICE_RUNNING.
 * STATUS may be NULL.  Thread-safe. */
void dkv_plat_service_ready(const char *status);

/* A free-form status line (systemd "STATUS="; nothing on Windows).
 * Thread-safe. */
void dkv_plat_service_status(const char *status);

/* The daemon has started stopping (systemd "STOPPING=1"; Windows
 * SERVICE_STOP_PENDING with a wait hint of WAIT_HINT_MS).  Thread-safe. */
void dkv_plat_service_stopping(unsigned wait_hint_ms);

/* The program's own main, as the Windows service dispatcher calls it. */
typedef int (dkv_plat_service_main_fn)(int argc, const char *const *argv);

/* Windows: when ARGV holds "--service", connects to the SCM as service
 * NAME (StartServiceCtrlDispatcher), runs FN(argc, argv) with "--service"
 * removed as the service's body, reports SERVICE_STOPPED with its exit
 * code when it returns, and returns that code.  Without "--service", or
 * on Unix, returns -1 at once: the caller runs FN itself. */
int dkv_plat_service_dispatch(const char *name, dkv_plat_service_main_fn *fn,
                              int argc, const char *const *argv);

/* Windows: registers service NAME (DISPLAY, DESCRIPTION) to run this
 * executable with "--service" followed by ARGS (a command-line tail, may
 * be NULL), started automatically at boot, as LocalSystem unless
 * ACCOUNT is given.  Unix: APR_ENOTIMPL with a message naming the unit
 * file or rc.d script to use instead. */
dkv_status_t dkv_plat_service_install(const char *name, const char *display,
                                      const char *description,
                                      const char *args, const char *account);

/* Windows: stops service NAME if it runs (waiting up to 60 s) and
 * deletes it.  Unix: APR_ENOTIMPL like install. */
dkv_status_t dkv_plat_service_uninstall(const char *name);

#endif /* DKV_PLATFORM_SERVICE_H */
