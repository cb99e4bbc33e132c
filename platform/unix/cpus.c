/*
 * cpus.c -- the number of online processors (sysconf) and the process-wide
 * lock, Unix.
 */
#include <pthread.h>
#include <unistd.h>

#include "platform/platform.h"

/* See platform.h. */
unsigned
dkv_plat_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n > 0 ? (unsigned)n : 1;
}

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;

/* See platform.h. */
void
dkv_plat_global_lock(void)
{
    (void)pthread_mutex_lock(&global_lock);
}

/* See platform.h. */
void
dkv_plat_global_unlock(void)
{
    (void)pthread_mutex_unlock(&global_lock);
}
