/*
 * signals.c (unix) -- stop requests for daemons: SIGTERM and SIGINT are
 * blocked in every thread and taken by one sigwait thread, which calls the
 * daemon's stop function outside any signal handler.  The win32 twin uses
 * the console control handler.
 */
#include "platform/platform.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "common/status.h"

static dkv_plat_stop_fn *stop_fn;
static void *stop_baton;
static sigset_t stop_set;

static void *
stop_thread(void *arg)
{
    (void)arg;
    for (;;) {
        int sig = 0;

        if (sigwait(&stop_set, &sig) != 0) {
            continue;
        }
        stop_fn(stop_baton, sig == SIGTERM ? "SIGTERM"
                            : sig == SIGINT ? "SIGINT" : "signal");
    }
    return NULL;
}

/* See platform.h. */
dkv_status_t
dkv_plat_stop_signals(dkv_plat_stop_fn *fn, void *baton)
{
    pthread_attr_t attr;
    pthread_t thread;
    int rc;

    stop_fn = fn;
    stop_baton = baton;
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    rc = pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    if (rc != 0) {
        return dkv_error_set(APR_FROM_OS_ERROR(rc), "pthread_sigmask: %s",
                             strerror(rc));
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&thread, &attr, stop_thread, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        return dkv_error_set(APR_FROM_OS_ERROR(rc), "cannot start the "
                             "signal thread: %s", strerror(rc));
    }
    return DKV_OK;
}
