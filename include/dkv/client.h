/*
 * dkv/client.h -- opening a store and the key-value operations: put, get,
 * delete, their bulk forms, batches, clear, scan and count.
 *
 * One API serves both modes.  dkv_open("inproc:PATH") embeds the store in
 * the calling process, persisted in PATH; dkv_open("dkv://host:port/Store")
 * reaches a store served by dkv-node, behind the same functions and
 * statuses.
 *
 * Conventions, for every function of the API:
 *  - Output arguments come first, the pool for returned memory last.  What
 *    a function returns lives in that pool (or in the caller's struct) and
 *    stays valid until the pool is cleared or destroyed.
 *  - Keys and values are bytes (pointer and length).  A key is 1 to
 *    DKV_MAX_KEY bytes; a value is 0 to the store's value limit (1 MiB by
 *    default, see dkv_open_opts_t).  Names, entities, label names and
 *    values and content types are NUL-terminated UTF-8 strings.
 *  - Options structs may be NULL; a zeroed struct means the defaults, so
 *    designated initializers read well: (dkv_put_opts_t){ .ttl_ms = 500 }.
 *  - Times are milliseconds: durations (ttl_ms) and instants since the Unix
 *    epoch (created_at, expires_at).
 *  - A handle (dkv_client_t) is thread-safe: share one per store.
 *  - Bad input never aborts the process: it returns DKV_EINVAL (or
 *    DKV_ETOOLARGE) and dkv_last_error() says what was wrong.
 *  - The statuses listed for each function are the store's answers.  On a
 *    remote store ("dkv://") any call that goes to the node may also
 *    return DKV_EUNAVAILABLE, DKV_ETRANSPORT or DKV_ETIMEOUT (the last two:
 *    the outcome of a write is unknown), DKV_EUNAUTHORIZED when a
 *    reconnection's token is refused, DKV_ETOOLARGE for a request larger
 *    than the node accepts, and DKV_ECLOSED when the handle closes while
 *    the call is in flight.
 */
#ifndef DKV_CLIENT_H
#define DKV_CLIENT_H

#include "dkv/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest key, in bytes. */
#define DKV_MAX_KEY 500
/* Default and largest configurable value limit, in bytes. */
#define DKV_DEFAULT_MAX_VALUE (1024u * 1024u)
#define DKV_LIMIT_MAX_VALUE (256u * 1024u * 1024u)
/* Limits on search metadata, in bytes (without the NUL). */
#define DKV_MAX_ENTITY 64
#define DKV_MAX_LABEL_NAME 64
#define DKV_MAX_LABEL_VALUE 256     /* indexed labels */
#define DKV_MAX_LABELS 32           /* labels per key */
#define DKV_MAX_CONTENT_TYPE 128
/* Most keys (or operations) in one bulk call or batch: dkv_put_many,
 * dkv_get_many, dkv_delete_many and dkv_batch refuse more with
 * DKV_ETOOLARGE, in every mode. */
#define DKV_MAX_BULK 100000

/* A handle on one store.  Opaque. */
typedef struct dkv_client dkv_client_t;

/* ------------------------------------------------------------- open/close */

/* Options for dkv_open().  Zero means the default for every field. */
typedef struct dkv_open_opts {
    /* Largest value accepted, in bytes: default DKV_DEFAULT_MAX_VALUE,
     * at most DKV_LIMIT_MAX_VALUE. */
    size_t max_value;
    /* Size of the data file's memory map, in bytes: the most the store can
     * hold.  Default 1 GiB (64 MiB for "inproc:").  A store that reaches it
     * answers writes with DKV_EFULL; reopen with a larger size. */
    uint64_t map_size;
    /* How many revisions of change history are kept for watches that
     * resume from the past.  Default 100000. */
    uint64_t history_retain;
    /* 1: do not sync each commit to disk.  Faster; a crash of the process
     * loses nothing, a crash of the machine may lose the last commits but
     * never corrupts the store.  Default 0 (synced) for "inproc:PATH";
     * "inproc:" (temporary) never syncs. */
    int no_sync;
    /* The clock, in milliseconds since the epoch; default the system
     * clock.  For tests and simulations: TTL and lease expiry follow it. */
    int64_t (*clock)(void *baton);
    void *clock_baton;
    /* How often the in-process timer looks for expired keys and leases,
     * in milliseconds.  Default 50.  Expired keys are invisible to reads
     * at once; the timer makes their Delete events. */
    unsigned expire_interval_ms;

    /* Remote stores only.  The store's access token (NULL: none; a node
     * without a token accepts loopback clients only). */
    const char *token;
    /* Remote: how long a connection attempt to one endpoint may take, in
     * ms (default 5000), and how long a request may wait for its answer
     * (default 10000) before failing with DKV_ETIMEOUT. */
    unsigned connect_timeout_ms;
    unsigned request_timeout_ms;
    /* Remote: 1 sends the reads (dkv_get, dkv_get_many, dkv_scan,
     * dkv_count, dkv_counter_get, dkv_lease_info, dkv_search,
     * dkv_revision) as serializable: the node that answers serves them
     * from its own copy of the store, without first confirming with the
     * leader.  Faster, and they work while the store has no leader, but
     * on a store of several nodes they may miss the latest writes, even
     * one this client has just written.  Default 0: reads are
     * linearizable.  Ignored for "inproc:". */
    int serializable_reads;
} dkv_open_opts_t;

/* Opens the store at ADDRESS:
 *   "inproc:PATH"  embedded, persisted in the directory PATH (created if
 *                  missing, reopened with everything in it if present);
 *   "inproc:"      embedded and temporary: a fresh store in a new
 *                  temporary directory, removed by dkv_close().
 *   "dkv://HOST:PORT[,HOST:PORT...]/STORE"
 *                  the store STORE served by dkv-node on its client port;
 *                  the endpoints are a seed list, tried in order, and the
 *                  later ones are used when earlier ones fail.  Once
 *                  connected, the handle also learns the store's other
 *                  nodes from the node and adds them after the seeds, so
 *                  it can fail over to any of them.  HOST may
 *                  be a name, an IPv4 address or a bracketed IPv6 address.
 *                  The handle connects lazily and reconnects with backoff;
 *                  dkv_open itself makes the first connection, so an
 *                  unreachable store fails here with DKV_EUNAVAILABLE.
 * Only one handle per PATH may be open in a process; open it once and
 * share it.  CLIENT receives the handle.  OPTS may be NULL.  POOL is the
 * parent for the handle's memory; NULL makes a private root pool (and
 * initializes APR), so callers need not use APR themselves.  Destroying
 * POOL closes the handle.
 * Returns DKV_OK; DKV_EINVAL for a malformed address or options; an APR
 * or system status when the directory cannot be made or opened (for
 * example APR_EACCES); DKV_ECORRUPT when the files are not a dkv store;
 * for remote stores DKV_EUNAVAILABLE (no endpoint answered),
 * DKV_EUNAUTHORIZED (token refused), DKV_ETIMEOUT. */
DKV_API dkv_status_t dkv_open(dkv_client_t **client, const char *address,
                              const dkv_open_opts_t *opts,
                              apr_pool_t *pool) DKV_WARN_UNUSED;

/* Closes CLIENT: stops its timer and watches (no callback runs after
 * dkv_close returns), syncs and closes the files (remote: fails the calls
 * in flight with DKV_ECLOSED and closes the connection), frees the handle.
 * For "inproc:" it also removes the temporary directory; should that fail,
 * the handle is freed all the same and dkv_last_error() says what could
 * not be removed (it is "" after a clean close).  Transactions still open
 * must not be used afterwards.  NULL does nothing.  Not to be called
 * concurrently with other calls on CLIENT. */
DKV_API void dkv_close(dkv_client_t *client);

/* The store's current revision: the number of changes ever made to it.
 * Returns DKV_OK or DKV_ECLOSED. */
DKV_API dkv_status_t dkv_revision(uint64_t *revision, dkv_client_t *client);

/* ----------------------------------------------------------------- types */

/* A label: searchable metadata on a key (see dkv/search.h). */
typedef struct dkv_label {
    const char *name;
    const char *value;
    /* 1: indexed, usable in searches.  0: stored only. */
    int indexed;
} dkv_label_t;

/* What a mutation reports. */
typedef struct dkv_result {
    /* This item's status (bulk and batch calls fill one per key). */
    dkv_status_t status;
    /* 1 when the store changed. */
    int mutated;
    /* 1 when an existing key was overwritten (0 when created). */
    int is_update;
    /* The key's version after the operation: 1 on creation, +1 per write;
     * for a delete, the version the key had. 0 when there is none. */
    uint64_t version;
    /* The store revision of this change, or the current revision when
     * nothing changed. */
    uint64_t revision;
} dkv_result_t;

/* A key with its value and metadata, as read. */
typedef struct dkv_item {
    /* DKV_OK, or why this item is absent (DKV_ENOTFOUND). */
    dkv_status_t status;
    const void *key;
    size_t key_len;
    /* The value (NULL with meta_only, or in keys-only results).  It is
     * followed by a NUL byte not counted in value_len, so text values can
     * be used as C strings. */
    const void *value;
    size_t value_len;
    uint64_t version;          /* 1 on creation, +1 per write */
    uint64_t create_revision;  /* store revision that created the key */
    uint64_t mod_revision;     /* store revision of its last change */
    uint64_t revision;         /* the store's revision when read */
    int64_t created_at;        /* ms since the epoch, at creation */
    int64_t expires_at;        /* ms since the epoch; 0: never expires */
    int64_t ttl_ms;            /* remaining lifetime; -1: none */
    uint64_t lease;            /* lease the key is bound to; 0: none */
    const char *entity;        /* NULL when none */
    const char *content_type;  /* NULL when none */
    const dkv_label_t *labels;
    size_t nlabels;
} dkv_item_t;

/* Key and value, for dkv_put_many(). */
typedef struct dkv_kv {
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
} dkv_kv_t;

/* A key, for the bulk calls. */
typedef struct dkv_key {
    const void *key;
    size_t key_len;
} dkv_key_t;

/* ------------------------------------------------------------ put/get/del */

/* Options of a write.  A put replaces the value and all metadata: a key
 * written without ttl_ms no longer expires, without a lease is unbound,
 * without labels has none. */
typedef struct dkv_put_opts {
    /* Lifetime in ms from now; 0: never expires. */
    int64_t ttl_ms;
    /* Bind the key to this lease: it is deleted when the lease ends. */
    uint64_t lease;
    /* 1: write only if the key does not exist, else DKV_ECONFLICT. */
    int if_absent;
    /* Write only if the key exists at this version, else DKV_ECONFLICT
     * (DKV_ENOTFOUND if it does not exist).  0: unconditional. */
    uint64_t if_version;
    /* Entity (type) for search; NULL: none. */
    const char *entity;
    const dkv_label_t *labels;
    size_t nlabels;
    const char *content_type;
    /* The fencing token of a lock held on this key (dkv_lock_t.token).
     * Required to write a locked key. */
    uint64_t lock;
} dkv_put_opts_t;

/* Options of a read. */
typedef struct dkv_get_opts {
    /* 1: metadata only, no value copied (existence tests). */
    int meta_only;
    /* A lock token: the read fails with DKV_ELOCKED unless this lock is
     * still held on the key (a read under the lock). */
    uint64_t lock;
} dkv_get_opts_t;

/* Options of a delete. */
typedef struct dkv_delete_opts {
    /* Delete only if the key is at this version, else DKV_ECONFLICT. */
    uint64_t if_version;
    /* Lock token, required to delete a locked key. */
    uint64_t lock;
} dkv_delete_opts_t;

/* Writes KEY = VALUE.  RES (may be NULL) receives the outcome.
 * Returns DKV_OK; DKV_ECONFLICT (if_absent, if_version); DKV_ENOTFOUND
 * (if_version on a missing key, or an unknown lease); DKV_ELOCKED;
 * DKV_EINVAL; DKV_ETOOLARGE; DKV_EFULL; DKV_ECLOSED; or an I/O status. */
DKV_API dkv_status_t dkv_put(dkv_result_t *res, dkv_client_t *client,
                             const void *key, size_t key_len,
                             const void *value, size_t value_len,
                             const dkv_put_opts_t *opts);

/* Reads KEY.  *ITEM is allocated in POOL and filled (its status is the
 * return value); on DKV_ENOTFOUND *ITEM is set too, with status
 * DKV_ENOTFOUND and no value.  OPTS may be NULL.
 * Returns DKV_OK; DKV_ENOTFOUND (absent or expired); DKV_ELOCKED (opts
 * lock not held); DKV_EINVAL; DKV_ECLOSED. */
DKV_API dkv_status_t dkv_get(dkv_item_t **item, dkv_client_t *client,
                             const void *key, size_t key_len,
                             const dkv_get_opts_t *opts, apr_pool_t *pool);

/* Deletes KEY.  RES may be NULL.
 * Returns DKV_OK; DKV_ENOTFOUND; DKV_ECONFLICT (if_version); DKV_ELOCKED;
 * DKV_EINVAL; DKV_ECLOSED. */
DKV_API dkv_status_t dkv_delete(dkv_result_t *res, dkv_client_t *client,
                                const void *key, size_t key_len,
                                const dkv_delete_opts_t *opts);

/* Sets KEY's lifetime without rewriting it: TTL_MS from now, or no
 * expiry when TTL_MS is 0.  The version stays; the revision advances;
 * watches see no event.  Returns DKV_OK, DKV_ENOTFOUND, DKV_ELOCKED (the
 * key is locked; pass LOCK), DKV_EINVAL, DKV_ECLOSED. */
DKV_API dkv_status_t dkv_expire(dkv_result_t *res, dkv_client_t *client,
                                const void *key, size_t key_len,
                                int64_t ttl_ms, uint64_t lock);

/* Restarts KEY's lifetime with the TTL it was last given (sliding
 * expiry).  Returns DKV_OK, DKV_ENOTFOUND, DKV_EINVAL (the key has no
 * TTL), DKV_ELOCKED, DKV_ECLOSED. */
DKV_API dkv_status_t dkv_refresh(dkv_result_t *res, dkv_client_t *client,
                                 const void *key, size_t key_len,
                                 uint64_t lock);

/* ------------------------------------------------------------- bulk/batch */

/* The bulk calls make one request of many keys.  Each key succeeds or
 * fails on its own (not atomic); the results come in the order of the
 * input, and a key (or value, or batch operation) that breaks a limit
 * gets its own status (DKV_EINVAL, DKV_ETOOLARGE) while the others run.
 * N is at most DKV_MAX_BULK.  The call returns DKV_OK when it ran,
 * whatever the keys' own statuses; an error return (DKV_EINVAL for NULL
 * arrays, DKV_ETOOLARGE for N above DKV_MAX_BULK, DKV_ECLOSED, an I/O
 * status) means no result was filled. */

/* Writes N pairs with the same OPTS.  RESULTS: N elements, or NULL. */
DKV_API dkv_status_t dkv_put_many(dkv_result_t *results,
                                  dkv_client_t *client, const dkv_kv_t *kvs,
                                  size_t n, const dkv_put_opts_t *opts);

/* Reads N keys.  *ITEMS: an array of N items in POOL, each with its own
 * status (DKV_OK or DKV_ENOTFOUND...). */
DKV_API dkv_status_t dkv_get_many(dkv_item_t **items, dkv_client_t *client,
                                  const dkv_key_t *keys, size_t n,
                                  const dkv_get_opts_t *opts,
                                  apr_pool_t *pool);

/* Deletes N keys.  RESULTS: N elements, or NULL. */
DKV_API dkv_status_t dkv_delete_many(dkv_result_t *results,
                                     dkv_client_t *client,
                                     const dkv_key_t *keys, size_t n,
                                     const dkv_delete_opts_t *opts);

typedef enum dkv_op_type {
    DKV_OP_PUT = 1,
    DKV_OP_DELETE = 2
} dkv_op_type_t;

/* One operation of a batch. */
typedef struct dkv_op {
    dkv_op_type_t type;
    const void *key;
    size_t key_len;
    const void *value;              /* DKV_OP_PUT */
    size_t value_len;
    const dkv_put_opts_t *put;      /* DKV_OP_PUT; may be NULL */
    const dkv_delete_opts_t *del;   /* DKV_OP_DELETE; may be NULL */
} dkv_op_t;

/* Runs N (at most DKV_MAX_BULK) mixed operations in order, in one
 * request; each succeeds or fails on its own (not atomic: use a
 * transaction for all-or-nothing).  RESULTS: N elements, or NULL.
 * Returns as the bulk calls do. */
DKV_API dkv_status_t dkv_batch(dkv_result_t *results, dkv_client_t *client,
                               const dkv_op_t *ops, size_t n);

/* ------------------------------------------------------ clear/scan/count */

/* A set of keys: everything (all fields zero), the keys starting with
 * PREFIX, or the keys K with START <= K < END in byte order (a zero
 * length END means no upper bound).  PREFIX and START/END exclude each
 * other. */
typedef struct dkv_range {
    const void *prefix;
    size_t prefix_len;
    const void *start;
    size_t start_len;
    const void *end;
    size_t end_len;
} dkv_range_t;

/* Deletes every key in RANGE (NULL: the whole store), each with its own
 * revision and Delete event.  Locked keys are left in place.  Not atomic
 * for watchers, but one commit.  DELETED (may be NULL) receives the
 * number of keys deleted.  Returns DKV_OK, DKV_EINVAL, DKV_ECLOSED. */
DKV_API dkv_status_t dkv_clear(uint64_t *deleted, dkv_client_t *client,
                               const dkv_range_t *range);

/* Options of a scan. */
typedef struct dkv_scan_opts {
    /* Continue after this key (the previous page's next cursor). */
    const void *after;
    size_t after_len;
    /* Most items in the page; 0: 1000.  At most 10000. */
    size_t limit;
    /* 1: keys and metadata only, no values. */
    int keys_only;
} dkv_scan_opts_t;

/* A page of results, for dkv_scan() and dkv_search(). */
typedef struct dkv_page {
    dkv_item_t *items;
    size_t count;
    /* 1 when more results follow: pass NEXT as the next call's cursor. */
    int more;
    const void *next;
    size_t next_len;
    /* The store revision the page was read at. */
    uint64_t revision;
} dkv_page_t;

/* Reads one page of the keys in RANGE (NULL: all), in byte order, from a
 * consistent snapshot.  *PAGE is allocated in POOL.
 * Returns DKV_OK, DKV_EINVAL, DKV_ECLOSED. */
DKV_API dkv_status_t dkv_scan(dkv_page_t **page, dkv_client_t *client,
                              const dkv_range_t *range,
                              const dkv_scan_opts_t *opts,
                              apr_pool_t *pool);

/* Counts the live (unexpired) keys in RANGE (NULL: all).
 * Returns DKV_OK, DKV_EINVAL, DKV_ECLOSED. */
DKV_API dkv_status_t dkv_count(uint64_t *count, dkv_client_t *client,
                               const dkv_range_t *range);

#ifdef __cplusplus
}
#endif
#endif /* DKV_CLIENT_H */
