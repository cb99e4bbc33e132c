/*
 * platform.h -- what dkv needs from the operating system beyond APR, behind
 * one header; platform/unix and platform/win32 implement it file for file.
 *
 * It is also the one place sources get config.h from (configure's
 * DKV_HAVE_* feature macros, or win32/config-win32.h in Visual Studio
 * builds), so callers never test the platform themselves.
 */
#ifndef DKV_PLATFORM_H
#define DKV_PLATFORM_H

#if defined(HAVE_CONFIG_H)
#include "config.h"
#elif defined(_MSC_VER)
#include "win32/config-win32.h"
#endif

#include <apr_pools.h>

#include "dkv/common.h"

/* ------------------------------------------------------ temporary dirs */

/* Creates a new, empty, private directory under the system's temporary
 * directory, named PREFIX followed by random characters (PREFIX NULL:
 * "dkv-").  *PATH receives its absolute path, allocated in POOL.
 * Returns DKV_OK or the APR/system status of the failure (with
 * dkv_error_set naming the path).  Thread-safe. */
dkv_status_t dkv_plat_mkdtemp(char **path, const char *prefix,
                              apr_pool_t *pool);

/* Removes PATH and everything below it (files, nested directories).  A
 * missing PATH is not an error.  Symbolic links are removed, not followed.
 * Scratch memory comes from a subpool of POOL.  Returns DKV_OK or the
 * status of the first removal that failed (the rest is still attempted).
 * Implemented once with APR (platform/unix/rmtree.c, compiled on every
 * platform). */
dkv_status_t dkv_plat_rmtree(const char *path, apr_pool_t *pool);

#endif /* DKV_PLATFORM_H */
