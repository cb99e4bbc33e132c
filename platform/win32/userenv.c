/*
 * userenv.c (win32) -- the per-user directory of the `dkv` client
 * (%LOCALAPPDATA%\dkv) and console detection.  The unix twin is
 * platform/unix/userenv.c.
 */
#include "platform/platform.h"
#include "platform/userenv.h"

#include <windows.h>
#include <io.h>
#include <stdlib.h>

#include <apr_strings.h>

dkv_status_t
dkv_plat_user_dir(const char **dir, apr_pool_t *pool)
{
    const char *local = getenv("LOCALAPPDATA");
    const char *profile = getenv("USERPROFILE");

    if (local != NULL && local[0] != '\0') {
        *dir = apr_pstrcat(pool, local, "\\dkv", NULL);
        return DKV_OK;
    }
    if (profile != NULL && profile[0] != '\0') {
        *dir = apr_pstrcat(pool, profile, "\\AppData\\Local\\dkv", NULL);
        return DKV_OK;
    }
    *dir = NULL;
    return DKV_EINVAL;
}

int
dkv_plat_isatty(int fd)
{
    return _isatty(fd);
}

int64_t
dkv_plat_mono_ns(void)
{
    LARGE_INTEGER f, c;

    if (!QueryPerformanceFrequency(&f) || !QueryPerformanceCounter(&c) ||
        f.QuadPart == 0) {
        return (int64_t)GetTickCount64() * 1000000;
    }
    return (int64_t)((double)c.QuadPart * 1e9 / (double)f.QuadPart);
}
