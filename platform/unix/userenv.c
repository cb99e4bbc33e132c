/*
 * userenv.c (unix) -- the per-user directory of the `dkv` client
 * (XDG base directory rules) and terminal detection.  The win32 twin is
 * platform/win32/userenv.c.
 */
#include "platform/platform.h"
#include "platform/userenv.h"

#include <stdlib.h>
#include <time.h>

#if defined(DKV_HAVE_UNISTD_H)
#include <unistd.h>
#endif

#include <apr_strings.h>
#include <apr_time.h>

dkv_status_t
dkv_plat_user_dir(const char **dir, apr_pool_t *pool)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");

    if (xdg != NULL && xdg[0] == '/') {
        *dir = apr_pstrcat(pool, xdg, "/dkv", NULL);
        return DKV_OK;
    }
    if (home != NULL && home[0] != '\0') {
        *dir = apr_pstrcat(pool, home, "/.config/dkv", NULL);
        return DKV_OK;
    }
    *dir = NULL;
    return DKV_EINVAL;
}

int
dkv_plat_isatty(int fd)
{
#if defined(DKV_HAVE_UNISTD_H)
    return isatty(fd);
#else
    (void)fd;
    return 0;
#endif
}

int64_t
dkv_plat_mono_ns(void)
{
#if defined(DKV_HAVE_CLOCK_GETTIME) && defined(CLOCK_MONOTONIC)
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0) {
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
#endif
    return (int64_t)apr_time_now() * 1000;
}
