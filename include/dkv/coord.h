/*
 * dkv/coord.h -- coordination primitives: counters, leases and locks.
 *
 * Counters are ordinary keys whose value is a decimal int64 ("42"): they
 * can be read, watched, scanned and given a TTL like any key, and the
 * counter calls refuse a key whose value is not a number (DKV_EINVAL).
 * A lease is a lifetime that its owner keeps alive; keys and locks bound
 * to it end with it.  A lock is held on a key by a lease; its fencing
 * token grows with every acquisition of that key.
 */
#ifndef DKV_COORD_H
#define DKV_COORD_H

#include "dkv/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- counters */

/* Options of a counter change. */
typedef struct dkv_counter_opts {
    /* 1: the counter may not exceed MAX. */
    int has_max;
    int64_t max;
    /* 1: the counter may not fall below MIN. */
    int has_min;
    int64_t min;
    /* Lifetime in ms, applied when this call creates the counter (and by
     * dkv_counter_set); an existing counter keeps its expiry, so a
     * fixed-window rate limit works as expected.  0: none. */
    int64_t ttl_ms;
    /* The token of a lock held on the key (dkv_lock_t.token); required
     * to change a locked counter. */
    uint64_t lock;
} dkv_counter_opts_t;

/* Adds DELTA (negative to subtract) to counter KEY, creating it at 0
 * first if absent.  PREVIOUS and CURRENT (either may be NULL) receive the
 * values before and after.  Atomic.
 * Returns DKV_OK; DKV_ERANGE when the result would pass max/min or
 * overflow int64 (the counter is unchanged); DKV_EINVAL when KEY holds a
 * value that is not a counter; DKV_ELOCKED when KEY is locked and
 * opts->lock is not the holder's token; DKV_ECLOSED. */
DKV_API dkv_status_t dkv_counter_add(int64_t *previous, int64_t *current,
                                     dkv_client_t *client,
                                     const void *key, size_t key_len,
                                     int64_t delta,
                                     const dkv_counter_opts_t *opts);

/* Reads counter KEY.  Returns DKV_OK, DKV_ENOTFOUND, DKV_EINVAL (not a
 * counter), DKV_ECLOSED. */
DKV_API dkv_status_t dkv_counter_get(int64_t *value, dkv_client_t *client,
                                     const void *key, size_t key_len);

/* Sets counter KEY to VALUE (creating it).  OPTS bounds are checked
 * against VALUE.  Returns DKV_OK, DKV_ERANGE, DKV_ELOCKED, DKV_EINVAL,
 * DKV_ECLOSED. */
DKV_API dkv_status_t dkv_counter_set(dkv_client_t *client,
                                     const void *key, size_t key_len,
                                     int64_t value,
                                     const dkv_counter_opts_t *opts);

/* --------------------------------------------------------------- leases */

/* Shortest and longest lease, in ms. */
#define DKV_MIN_LEASE_TTL 100
#define DKV_MAX_LEASE_TTL (7LL * 24 * 3600 * 1000)

/* What dkv_lease_info() tells. */
typedef struct dkv_lease_info {
    uint64_t id;
    int64_t ttl_ms;        /* as granted */
    int64_t remaining_ms;  /* until expiry, if not kept alive */
    int64_t expires_at;    /* ms since the epoch */
    uint64_t keys;         /* keys bound to it */
    uint64_t locks;        /* locks it holds */
} dkv_lease_info_t;

/* Grants a lease of TTL_MS; *LEASE receives its id (never 0).
 * Returns DKV_OK; DKV_EINVAL when TTL_MS is outside
 * [DKV_MIN_LEASE_TTL, DKV_MAX_LEASE_TTL]; DKV_ECLOSED. */
DKV_API dkv_status_t dkv_lease_grant(uint64_t *lease, dkv_client_t *client,
                                     int64_t ttl_ms);

/* Restarts LEASE's lifetime at its full TTL.  REMAINING_MS (may be NULL)
 * receives the new remaining time.  Returns DKV_OK; DKV_ENOTFOUND when
 * the lease has expired or was revoked; DKV_ECLOSED. */
DKV_API dkv_status_t dkv_lease_keepalive(int64_t *remaining_ms,
                                         dkv_client_t *client,
                                         uint64_t lease);

/* Ends LEASE now: deletes its keys (with Delete events) and releases its
 * locks.  KEYS_DELETED may be NULL.  Returns DKV_OK, DKV_ENOTFOUND,
 * DKV_ECLOSED. */
DKV_API dkv_status_t dkv_lease_revoke(uint64_t *keys_deleted,
                                      dkv_client_t *client, uint64_t lease);

/* Describes LEASE.  Returns DKV_OK, DKV_ENOTFOUND, DKV_ECLOSED. */
DKV_API dkv_status_t dkv_lease_info(dkv_lease_info_t *info,
                                    dkv_client_t *client, uint64_t lease);

/* ---------------------------------------------------------------- locks */

/* A held lock. */
typedef struct dkv_lock {
    /* 1 when this call acquired (or already held) the lock. */
    int acquired;
    /* The fencing token: pass it as dkv_put_opts_t.lock (and to
     * dkv_lock_release).  For a given key, every acquisition gets a larger
     * token than the one before, so a resource guarded by the lock can
     * refuse a stale holder. */
    uint64_t token;
    /* The lease that holds the lock. */
    uint64_t lease;
} dkv_lock_t;

/* Acquires the lock on KEY for LEASE, without waiting.  The lock lasts
 * until released or until the lease ends.  While it is held, writes to
 * KEY (put, delete, expire, counters) fail with DKV_ELOCKED unless they
 * carry the token.  Acquiring again with the same lease returns the same
 * token.  The key itself need not exist.
 * Returns DKV_OK (LOCK->acquired = 1); DKV_ELOCKED when another lease
 * holds it (LOCK->acquired = 0, LOCK->lease names the holder);
 * DKV_ENOTFOUND for an unknown lease; DKV_EINVAL; DKV_ECLOSED. */
DKV_API dkv_status_t dkv_lock_acquire(dkv_lock_t *lock, dkv_client_t *client,
                                      const void *key, size_t key_len,
                                      uint64_t lease);

/* Releases the lock on KEY held with TOKEN.  Returns DKV_OK; DKV_ENOTFOUND
 * when no lock is held on KEY; DKV_ELOCKED when it is held with another
 * token; DKV_EINVAL; DKV_ECLOSED. */
DKV_API dkv_status_t dkv_lock_release(dkv_client_t *client,
                                      const void *key, size_t key_len,
                                      uint64_t token);

#ifdef __cplusplus
}
#endif
#endif /* DKV_COORD_H */
