/*
 * dkv/watch.h -- watching a key or a prefix for changes.
 *
 * Events come in revision order, one per change of a matching key,
 * including the deletes made by TTL and lease expiry, delivered to a
 * callback on a thread of the library.  A watch can start with a snapshot
 * of the current values, or replay the history from a past revision while
 * the store still retains it (dkv_open_opts_t.history_retain).
 */
#ifndef DKV_WATCH_H
#define DKV_WATCH_H

#include "dkv/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dkv_watch dkv_watch_t;

typedef enum dkv_event_type {
    DKV_EVENT_PUT = 1,
    DKV_EVENT_DELETE = 2,
    /* The watch ended on its own; STATUS says why.  No event follows;
     * dkv_watch_stop must still be called.  APR_ENOMEM: events could not
     * be queued.  Remote stores resume a watch without a gap after a lost
     * connection, except: DKV_ETRANSPORT, the connection was lost during
     * the initial snapshot, which cannot be resumed (start the watch
     * again); DKV_ECOMPACTED, the history no longer holds the changes
     * missed meanwhile (read the current state, then watch); or another
     * status with which the node refused or ended the watch. */
    DKV_EVENT_ERROR = 3
} dkv_event_type_t;

/* One change.  Everything it points to is valid during the callback
 * only: copy what you keep. */
typedef struct dkv_event {
    dkv_event_type_t type;
    const void *key;
    size_t key_len;
    /* The new value (DKV_EVENT_PUT); NULL for a delete. */
    const void *value;
    size_t value_len;
    /* The store revision of the change (of the read, for a snapshot). */
    uint64_t revision;
    /* The key's version after a put; its last version for a delete. */
    uint64_t version;
    /* 1 for the events of the initial snapshot. */
    int snapshot;
    /* DKV_EVENT_ERROR: why the watch ended. */
    dkv_status_t status;
} dkv_event_t;

/* Called once per event, from one library thread per client: events of
 * one watch never run concurrently and always come in revision order.
 * Keep it short; it may call the API (dkv_watch_stop on its own watch
 * included). */
typedef void (dkv_watch_cb_t)(void *baton, const dkv_event_t *event);

typedef struct dkv_watch_opts {
    /* 1: watch every key starting with the given bytes. */
    int prefix;
    /* 1: first deliver the current matching keys as DKV_EVENT_PUT events
     * with snapshot = 1, then the changes after them. */
    int include_snapshot;
    /* Nonzero: first replay the retained changes from this revision on
     * (inclusive), then live ones.  Excludes include_snapshot. */
    uint64_t start_revision;
} dkv_watch_opts_t;

/* Starts watching KEY (or the prefix KEY, with opts->prefix; an empty
 * prefix watches the whole store).  *WATCH receives the handle.  No
 * change is missed or repeated between the snapshot or replay and the
 * live events.
 * Returns DKV_OK; DKV_ECOMPACTED when start_revision is older than the
 * retained history (read the current state instead, then watch);
 * DKV_EINVAL; DKV_ECLOSED. */
DKV_API dkv_status_t dkv_watch_start(dkv_watch_t **watch,
                                     dkv_client_t *client,
                                     const void *key, size_t key_len,
                                     const dkv_watch_opts_t *opts,
                                     dkv_watch_cb_t *callback, void *baton);

/* Stops WATCH and frees it.  When it returns, its callback is not running
 * and will not run again (called from the callback itself, the current
 * call is the last).  NULL does nothing. */
DKV_API void dkv_watch_stop(dkv_watch_t *watch);

#ifdef __cplusplus
}
#endif
#endif /* DKV_WATCH_H */
