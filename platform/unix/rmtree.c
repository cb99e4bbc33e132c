/*
 * rmtree.c -- recursive removal of a directory tree with APR's directory
 * functions.  Portable: the Windows build compiles this file directly
 * (platform.h declares it for both).
 */
#include "platform/platform.h"

#include <string.h>

#include <apr_errno.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>

#include "common/status.h"

/* Removes the contents of DIR, then DIR; returns the first failure. */
static apr_status_t
rmtree(const char *dir, apr_pool_t *pool)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    apr_status_t rv, first = APR_SUCCESS;
    apr_pool_t *sub;

    rv = apr_dir_open(&d, dir, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_pool_create(&sub, pool);
    if (rv != APR_SUCCESS) {
        apr_dir_close(d);
        return rv;
    }
    for (;;) {
        const char *child;

        rv = apr_dir_read(&fi,
                          APR_FINFO_NAME | APR_FINFO_TYPE | APR_FINFO_LINK, d);
        if (APR_STATUS_IS_ENOENT(rv)) {
            break;
        }
        if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
            if (first == APR_SUCCESS) {
                first = rv;
            }
            break;
        }
        if (fi.name == NULL || strcmp(fi.name, ".") == 0
            || strcmp(fi.name, "..") == 0) {
            continue;
        }
        apr_pool_clear(sub);
        child = apr_pstrcat(sub, dir, "/", fi.name, NULL);
        if (fi.filetype == APR_DIR) {
            rv = rmtree(child, sub);
        }
        else {
            rv = apr_file_remove(child, sub);
        }
        if (rv != APR_SUCCESS && first == APR_SUCCESS) {
            first = rv;
        }
    }
    apr_dir_close(d);
    apr_pool_destroy(sub);
    rv = apr_dir_remove(dir, pool);
    if (rv != APR_SUCCESS && first == APR_SUCCESS) {
        first = rv;
    }
    return first;
}

/* See platform.h. */
dkv_status_t
dkv_plat_rmtree(const char *path, apr_pool_t *pool)
{
    apr_finfo_t fi;
    apr_pool_t *sub;
    apr_status_t rv;

    if (path == NULL || path[0] == '\0') {
        return dkv_error_set(DKV_EINVAL, "rmtree: empty path");
    }
    rv = apr_pool_create(&sub, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_stat(&fi, path, APR_FINFO_TYPE | APR_FINFO_LINK, sub);
    if (APR_STATUS_IS_ENOENT(rv)) {
        rv = DKV_OK;
    }
    else if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
        dkv_error_set(rv, "cannot remove %s: %s", path, dkv_strerror(rv));
    }
    else if (fi.filetype == APR_DIR) {
        rv = rmtree(path, sub);
        if (rv != APR_SUCCESS) {
            dkv_error_set(rv, "cannot remove %s: %s", path,
                          dkv_strerror(rv));
        }
    }
    else {
        rv = apr_file_remove(path, sub);
        if (rv != APR_SUCCESS) {
            dkv_error_set(rv, "cannot remove %s: %s", path,
                          dkv_strerror(rv));
        }
    }
    apr_pool_destroy(sub);
    return rv;
}
