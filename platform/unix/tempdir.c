/*
 * tempdir.c (unix) -- private temporary directories for "inproc:" stores:
 * mkdtemp(3) under APR's temporary directory, with an APR fallback where
 * mkdtemp is missing.  The win32 twin is platform/win32/tempdir.c.
 */
#include "platform/platform.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <apr_errno.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "common/status.h"

#define MKDTEMP_TRIES 100

#if !defined(DKV_HAVE_MKDTEMP)
/* mkdtemp(3) replacement: the XXXXXX tail of TEMPLATE becomes random
 * letters and the directory is created 0700; retried on collision. */
static char *
fallback_mkdtemp(char *template)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t len = strlen(template);
    unsigned char rnd[6];
    int tries, i;

    if (len < 6) {
        errno = EINVAL;
        return NULL;
    }
    for (tries = 0; tries < MKDTEMP_TRIES; tries++) {
        apr_status_t rv;
        apr_pool_t *p;

        if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
            errno = EIO;
            return NULL;
        }
        for (i = 0; i < 6; i++) {
            template[len - 6 + i] = chars[rnd[i] % (sizeof(chars) - 1)];
        }
        if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
            errno = ENOMEM;
            return NULL;
        }
        rv = apr_dir_make(template, APR_FPROT_UREAD | APR_FPROT_UWRITE
                                     | APR_FPROT_UEXECUTE, p);
        apr_pool_destroy(p);
        if (rv == APR_SUCCESS) {
            return template;
        }
        if (!APR_STATUS_IS_EEXIST(rv)) {
            errno = APR_TO_OS_ERROR(rv);
            return NULL;
        }
    }
    errno = EEXIST;
    return NULL;
}
#define mkdtemp fallback_mkdtemp
#endif

/* See platform.h. */
dkv_status_t
dkv_plat_mkdtemp(char **path, const char *prefix, apr_pool_t *pool)
{
    const char *tmp;
    char *template;
    apr_status_t rv;

    rv = apr_temp_dir_get(&tmp, pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "no temporary directory found: %s",
                             dkv_strerror(rv));
    }
    template = apr_pstrcat(pool, tmp, "/", prefix ? prefix : "dkv-",
                           "XXXXXX", NULL);
    if (mkdtemp(template) == NULL) {
        rv = APR_FROM_OS_ERROR(errno);
        return dkv_error_set(rv, "cannot create a directory in %s: %s",
                             tmp, dkv_strerror(rv));
    }
    *path = template;
    return DKV_OK;
}
