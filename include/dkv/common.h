/*
 * dkv/common.h -- what every part of the public API shares: the export
 * macro, version numbers, the status type and its codes, dkv_strerror().
 *
 * dkv's statuses are APR statuses: 0 is success, operating-system and APR
 * errors keep their APR values, and dkv's own codes sit in APR's user range
 * (APR_OS_START_USERERR and up), so one dkv_status_t travels from the disk
 * to the caller unchanged.  Include <dkv.h>, not this file.
 */
#ifndef DKV_COMMON_H
#define DKV_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <apr_pools.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- export */

#if defined(DKV_STATIC)
#define DKV_API
#elif defined(_WIN32) && defined(DKV_BUILDING)
#define DKV_API __declspec(dllexport)
#elif defined(_WIN32)
#define DKV_API __declspec(dllimport)
#elif defined(__GNUC__)
#define DKV_API __attribute__((visibility("default")))
#else
#define DKV_API
#endif

#if defined(__GNUC__)
#define DKV_WARN_UNUSED __attribute__((warn_unused_result))
#else
#define DKV_WARN_UNUSED
#endif

/* --------------------------------------------------------------- version */

#define DKV_VERSION_MAJOR 0
#define DKV_VERSION_MINOR 1
#define DKV_VERSION_PATCH 0
#define DKV_VERSION_STRING "0.1.0"

/* The library's version string ("0.1.0"); may differ from the header's
 * DKV_VERSION_STRING when an application runs against a newer library.
 * Static storage; thread-safe. */
DKV_API const char *dkv_version(void);

/* ---------------------------------------------------------------- status */

/* Every dkv function returns a dkv_status_t.  It is an apr_status_t. */
typedef int dkv_status_t;

#define DKV_OK 0

/* First of dkv's codes; equal to APR_OS_START_USERERR (checked at build). */
#define DKV_START_ERROR 120000

/* The key (or lease, lock, counter) does not exist or has expired. */
#define DKV_ENOTFOUND    (DKV_START_ERROR + 1)
/* A condition failed: IfAbsent on an existing key, IfMatch on another
 * version, or a transaction whose reads changed before it committed. */
#define DKV_ECONFLICT    (DKV_START_ERROR + 2)
/* The caller's input is invalid (NULL, empty or malformed argument,
 * unknown lease, value of the wrong kind).  Not worth retrying. */
#define DKV_EINVAL       (DKV_START_ERROR + 3)
/* The store cannot serve the request now (no leader, shutting down). */
#define DKV_EUNAVAILABLE (DKV_START_ERROR + 4)
/* The connection to the store failed or broke; the outcome is unknown. */
#define DKV_ETRANSPORT   (DKV_START_ERROR + 5)
/* The key is locked by another holder, or the lock handle given is not
 * (or no longer) the holder's. */
#define DKV_ELOCKED      (DKV_START_ERROR + 6)
/* A key, value, label or request exceeds its size limit. */
#define DKV_ETOOLARGE    (DKV_START_ERROR + 7)
/* The request did not complete in time; the outcome is unknown. */
#define DKV_ETIMEOUT     (DKV_START_ERROR + 8)
/* The credentials were missing or refused. */
#define DKV_EUNAUTHORIZED (DKV_START_ERROR + 9)
/* The handle (client, transaction, watch) was closed. */
#define DKV_ECLOSED      (DKV_START_ERROR + 10)
/* A watch asked for history older than the store still retains. */
#define DKV_ECOMPACTED   (DKV_START_ERROR + 11)
/* The store's data file is full (see dkv_open_opts_t.map_size). */
#define DKV_EFULL        (DKV_START_ERROR + 12)
/* A counter would leave its bounds (max, min, or the int64 range); the
 * counter is unchanged. */
#define DKV_ERANGE       (DKV_START_ERROR + 13)
/* Retry elsewhere: this node is not the leader (replicated stores). */
#define DKV_ENOTLEADER   (DKV_START_ERROR + 14)
/* Stored data failed validation: the store's files are damaged. */
#define DKV_ECORRUPT     (DKV_START_ERROR + 15)
/* A feature the build or this mode does not provide. */
#define DKV_ENOTIMPL     (DKV_START_ERROR + 16)
#define DKV_END_ERROR    (DKV_START_ERROR + 17)

/* True for dkv's own codes (not APR or operating-system errors). */
#define DKV_STATUS_IS_DKV(s) ((s) > DKV_START_ERROR && (s) < DKV_END_ERROR)
#define DKV_STATUS_IS_NOTFOUND(s) ((s) == DKV_ENOTFOUND)
#define DKV_STATUS_IS_CONFLICT(s) ((s) == DKV_ECONFLICT)
/* Outcomes worth retrying as they are (after a pause, or elsewhere). */
#define DKV_STATUS_IS_RETRYABLE(s) \
    ((s) == DKV_ECONFLICT || (s) == DKV_ELOCKED || \
     (s) == DKV_EUNAVAILABLE || (s) == DKV_ETRANSPORT || \
     (s) == DKV_ETIMEOUT || (s) == DKV_ENOTLEADER)

/* A short, static English text for any status: dkv's own, APR's, or the
 * operating system's.  Never NULL.  Thread-safe. */
DKV_API const char *dkv_strerror(dkv_status_t status);

/* The detailed message of the last failed dkv call on the calling thread
 * ("key is 612 bytes; the limit is 500"), or "" when the last call
 * succeeded.  Valid until the thread's next dkv call.  Thread-safe. */
DKV_API const char *dkv_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* DKV_COMMON_H */
