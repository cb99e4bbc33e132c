/*
 * status.c -- dkv's status texts and the per-thread last-error message.
 *
 * dkv_strerror() names dkv's own codes and hands every other status to
 * apr_strerror() (APR and operating-system errors); dkv_error_set() keeps
 * the detail of the calling thread's last failure for dkv_last_error().
 * Both use thread-local buffers, so neither needs a lock.  The mapping of
 * LMDB return codes to statuses lives here too, so that every component
 * reports LMDB failures the same way.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <apr_errno.h>
#include <apr_strings.h>
#include <lmdb.h>

#include "common/status.h"

/* dkv's codes sit in APR's user range: a build-time check. */
typedef char dkv_start_error_is_apr_user_range
    [(DKV_START_ERROR == APR_OS_START_USERERR) ? 1 : -1];

/* Room for apr_strerror()'s texts of non-dkv statuses. */
#define STRERROR_BUF 256

static DKV_THREAD_LOCAL char strerror_buf[STRERROR_BUF];
static DKV_THREAD_LOCAL char last_error[DKV_ERROR_MAX + 1];

static const char *const dkv_texts[] = {
    "unknown dkv error",                        /* DKV_START_ERROR */
    "not found",                                /* DKV_ENOTFOUND */
    "conflict",                                 /* DKV_ECONFLICT */
    "invalid argument",                         /* DKV_EINVAL */
    "store unavailable",                        /* DKV_EUNAVAILABLE */
    "transport failure",                        /* DKV_ETRANSPORT */
    "locked",                                   /* DKV_ELOCKED */
    "too large",                                /* DKV_ETOOLARGE */
    "timed out",                                /* DKV_ETIMEOUT */
    "unauthorized",                             /* DKV_EUNAUTHORIZED */
    "handle closed",                            /* DKV_ECLOSED */
    "history compacted",                        /* DKV_ECOMPACTED */
    "store full",                               /* DKV_EFULL */
    "out of range",                             /* DKV_ERANGE */
    "not the leader",                           /* DKV_ENOTLEADER */
    "store data corrupt",                       /* DKV_ECORRUPT */
    "not implemented"                           /* DKV_ENOTIMPL */
};

typedef char dkv_texts_cover_every_code
    [(sizeof(dkv_texts) / sizeof(dkv_texts[0])
      == DKV_END_ERROR - DKV_START_ERROR) ? 1 : -1];

/* See dkv/common.h. */
const char *
dkv_strerror(dkv_status_t status)
{
    if (status == DKV_OK) {
        return "success";
    }
    if (status >= DKV_START_ERROR && status < DKV_END_ERROR) {
        return dkv_texts[status - DKV_START_ERROR];
    }
    if (status > DKV_END_ERROR && status < APR_OS_START_USERERR + 50000) {
        /* The rest of APR's user range: nobody else's codes live here. */
        apr_snprintf(strerror_buf, sizeof(strerror_buf),
                     "unknown dkv error %d", status);
        return strerror_buf;
    }
    strerror_buf[0] = '\0';
    if (apr_strerror(status, strerror_buf, sizeof(strerror_buf)) == NULL
        || strerror_buf[0] == '\0') {
        apr_snprintf(strerror_buf, sizeof(strerror_buf), "error %d",
                     status);
    }
    return strerror_buf;
}

/* See dkv/common.h. */
const char *
dkv_last_error(void)
{
    return last_error;
}

/* See status.h. */
dkv_status_t
dkv_error_set(dkv_status_t status, const char *fmt, ...)
{
    char msg[sizeof(last_error)];
    va_list ap;

    /* Formatted apart first: an argument may be dkv_last_error() itself
     * ("%s: %s", where, dkv_last_error()), and vsnprintf must not read
     * the buffer it writes. */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof(last_error));
    return status;
}

/* See status.h. */
void
dkv_error_clear(void)
{
    last_error[0] = '\0';
}

/* See status.h. */
dkv_status_t
dkv_status_from_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return DKV_OK;
    case MDB_NOTFOUND:
        return DKV_ENOTFOUND;
    case MDB_MAP_FULL:
        return DKV_EFULL;
    case MDB_CORRUPTED:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_PAGE_NOTFOUND:
        return DKV_ECORRUPT;
    case MDB_BAD_VALSIZE:
        return DKV_ETOOLARGE;
    default:
        break;
    }
    if (rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE) {
        return DKV_EUNAVAILABLE;
    }
    switch (rc) {
    /* The C-runtime errno values LMDB returns itself, on every platform
     * (mdb_strerror's list for Windows).  APR takes errno values as they
     * are, on Windows too (APR_EACCES is EACCES there), so they stay
     * errno values rather than being read as Win32 codes of the same
     * number (13 would be ERROR_INVALID_DATA).  EIO (5) is left out on
     * purpose: on Windows 5 is far more often ERROR_ACCESS_DENIED from
     * the file calls than LMDB's rare short-write EIO. */
    case ENOENT:
    case ENOMEM:
    case EACCES:
    case EBUSY:
    case EINVAL:
    case ENOSPC:
        return rc;
    default:
        break;
    }
    /* What the system said: errno on Unix, GetLastError() on Windows
     * (ERROR_ACCESS_DENIED, ERROR_PATH_NOT_FOUND...), so APR's
     * APR_STATUS_IS_EACCES / _ENOENT recognize them on both. */
    return APR_FROM_OS_ERROR(rc);
}
