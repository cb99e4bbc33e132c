/*
 * cpus.c -- the number of processors (GetSystemInfo) and the process-wide
 * lock (a slim reader/writer lock, statically initialized), Windows.
 */
#include "platform/platform.h"   /* first: APR includes winsock2.h
                                  * before windows.h */
#include <windows.h>

/* See platform.h. */
unsigned
dkv_plat_cpus(void)
{
    SYSTEM_INFO si;

    GetSystemInfo(&si);
    return si.dwNumberOfProcessors > 0 ? (unsigned)si.dwNumberOfProcessors
                                       : 1;
}

static SRWLOCK global_lock = SRWLOCK_INIT;

/* See platform.h. */
void
dkv_plat_global_lock(void)
{
    AcquireSRWLockExclusive(&global_lock);
}

/* See platform.h. */
void
dkv_plat_global_unlock(void)
{
    ReleaseSRWLockExclusive(&global_lock);
}
