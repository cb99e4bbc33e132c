/*
 * tempdir.c (win32) -- private temporary directories for "inproc:" stores:
 * GetTempPath + CreateDirectory with a random name, retried on collision.
 * The unix twin is platform/unix/tempdir.c; dkv_plat_rmtree comes from
 * platform/unix/rmtree.c, which is portable.
 */
#include "platform/platform.h"

#include <windows.h>

#include <apr_errno.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "common/status.h"

#define MKDTEMP_TRIES 100

/* Six random name characters: APR's generator, or, where it fails, the
 * tick count, process id and a counter. */
static void
random_name(char *out)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    static volatile LONG counter;
    unsigned char rnd[6];
    int i;

    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        DWORD mix = GetTickCount() ^ (GetCurrentProcessId() << 16)
                    ^ (DWORD)InterlockedIncrement(&counter) * 2654435761u;

        for (i = 0; i < 6; i++) {
            rnd[i] = (unsigned char)(mix >> (i * 5));
        }
    }
    for (i = 0; i < 6; i++) {
        out[i] = chars[rnd[i] % (sizeof(chars) - 1)];
    }
    out[6] = '\0';
}

/* See platform.h. */
dkv_status_t
dkv_plat_mkdtemp(char **path, const char *prefix, apr_pool_t *pool)
{
    char tmp[MAX_PATH + 1];
    DWORD len;
    int tries;

    len = GetTempPathA(sizeof(tmp), tmp);
    if (len == 0 || len > sizeof(tmp) - 1) {
        apr_status_t rv = APR_FROM_OS_ERROR(GetLastError());

        return dkv_error_set(rv, "no temporary directory found: %s",
                             dkv_strerror(rv));
    }
    /* GetTempPath ends with a backslash. */
    for (tries = 0; tries < MKDTEMP_TRIES; tries++) {
        char name[7];
        char *dir;
        DWORD err;

        random_name(name);
        dir = apr_pstrcat(pool, tmp, prefix ? prefix : "dkv-", name, NULL);
        if (CreateDirectoryA(dir, NULL)) {
            *path = dir;
            return DKV_OK;
        }
        err = GetLastError();
        if (err != ERROR_ALREADY_EXISTS) {
            apr_status_t rv = APR_FROM_OS_ERROR(err);

            return dkv_error_set(rv, "cannot create a directory in %s: %s",
                                 tmp, dkv_strerror(rv));
        }
    }
    return dkv_error_set(APR_FROM_OS_ERROR(ERROR_ALREADY_EXISTS),
                         "cannot create a directory in %s: every name"
                         " tried exists", tmp);
}
