/*
 * status.h -- internal error reporting: the per-thread detail message
 * behind dkv_last_error(), and the mapping of LMDB codes to statuses.
 *
 * At a failure, the code that detects it calls dkv_error_set() once with
 * the status and a message naming what failed (operation, key size,
 * path...), and returns the status unchanged up the stack.
 */
#ifndef DKV_COMMON_STATUS_H
#define DKV_COMMON_STATUS_H

#include <stdarg.h>

#include "dkv/common.h"

#if defined(__MINGW32__)
#define DKV_PRINTF(f, a) __attribute__((format(__MINGW_PRINTF_FORMAT, f, a)))
#elif defined(__GNUC__)
#define DKV_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DKV_PRINTF(f, a)
#endif

/* Storage class of per-thread variables (the last-error buffer). */
#if defined(_MSC_VER)
#define DKV_THREAD_LOCAL __declspec(thread)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L \
    && !defined(__STDC_NO_THREADS__)
#define DKV_THREAD_LOCAL _Thread_local
#else
#define DKV_THREAD_LOCAL __thread
#endif

/* Longest detail message kept by dkv_error_set(), in bytes. */
#define DKV_ERROR_MAX 255

/* Records MESSAGE (printf-style) as the calling thread's last error and
 * returns STATUS, so callers write `return dkv_error_set(DKV_EINVAL, ...)`.
 * FMT is C99 printf (%zu and PRIu64 work; APR's own %pm extensions do
 * not).  The message is truncated to 255 bytes.  An argument may be
 * dkv_last_error() itself, to prefix the error so far.  Thread-safe. */
dkv_status_t dkv_error_set(dkv_status_t status, const char *fmt, ...)
    DKV_PRINTF(2, 3);

/* Clears the calling thread's last error (dkv_last_error() returns ""). */
void dkv_error_clear(void);

/* Maps an LMDB return code to a status: 0 -> DKV_OK, MDB_NOTFOUND ->
 * DKV_ENOTFOUND, MDB_MAP_FULL -> DKV_EFULL, MDB_CORRUPTED/MDB_INVALID/
 * MDB_VERSION_MISMATCH/MDB_PAGE_NOTFOUND -> DKV_ECORRUPT, MDB_BAD_VALSIZE
 * -> DKV_ETOOLARGE, other MDB_* -> DKV_EUNAVAILABLE.  The C-runtime
 * errno values LMDB returns itself (ENOENT, ENOMEM, EACCES, EBUSY, EINVAL,
 * ENOSPC) stay as they are, which APR reads as those errors everywhere
 * (APR_EACCES == EACCES, also on Windows); any other code is the
 * system's (errno on Unix, GetLastError() on Windows) and becomes
 * APR_FROM_OS_ERROR(code).  So access denied and not found satisfy
 * APR_STATUS_IS_EACCES / APR_STATUS_IS_ENOENT on every platform.  Does
 * not set the message. */
dkv_status_t dkv_status_from_mdb(int rc);

#endif /* DKV_COMMON_STATUS_H */
