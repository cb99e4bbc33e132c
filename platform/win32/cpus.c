/*
 * cpus.c -- the number of processors, Windows (GetSystemInfo).
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
