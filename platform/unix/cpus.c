/*
 * cpus.c -- the number of online processors, Unix (sysconf).
 */
#include <unistd.h>

#include "platform/platform.h"

/* See platform.h. */
unsigned
dkv_plat_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    return n > 0 ? (unsigned)n : 1;
}
