/*
 * client.h -- the inside of a dkv_client_t: the backend vtable behind the
 * public functions, and the argument checks every backend shares.
 *
 * The public functions (client.c) check what is checkable without the
 * store, clear the thread's last error and call the backend through
 * dkv_backend_ops_t.  A backend is a set of those functions plus its
 * state: inproc.c embeds the engine ("inproc:"), remote.c speaks the
 * client protocol to dkv-node ("dkv://host:port/Store").
 * Transactions (txn.c) are generic: they read through ops->get and commit
 * through ops->txn_commit.
 */
#ifndef DKV_CLIENT_CLIENT_H
#define DKV_CLIENT_CLIENT_H

#include <apr_pools.h>

#include "dkv.h"

/* One compare of an optimistic transaction's read set: KEY had
 * MOD_REVISION when first read (0: it was absent). */
typedef struct dkv_txn_compare {
    const void *key;
    size_t key_len;
    uint64_t mod_revision;
} dkv_txn_compare_t;

/* A backend: one function per public operation, with the public
 * function's parameters and statuses (client first, replaced by the
 * backend's STATE), called after the common argument checks of client.c
 * have passed (handles and outputs non-NULL; keys 1..DKV_MAX_KEY bytes
 * except in the bulk calls, whose per-key checks are the backend's, using
 * dkv_check_key).  Every function may be called from any thread. */
typedef struct dkv_backend_ops {
    const char *name;

    /* Stops everything (no watch callback runs after it returns) and
     * frees the state.  Called once, from the client pool's cleanup. */
    void (*close)(void *state);

    /* The largest value the store accepts. */
    size_t (*max_value)(void *state);

    dkv_status_t (*revision)(void *state, uint64_t *revision);
    dkv_status_t (*put)(void *state, dkv_result_t *res,
                        const void *key, size_t key_len,
                        const void *value, size_t value_len,
                        const dkv_put_opts_t *opts);
    /* ITEM is the caller's (already allocated in POOL). */
    dkv_status_t (*get)(void *state, dkv_item_t *item,
                        const void *key, size_t key_len,
                        const dkv_get_opts_t *opts, apr_pool_t *pool);
    dkv_status_t (*del)(void *state, dkv_result_t *res,
                        const void *key, size_t key_len,
                        const dkv_delete_opts_t *opts);
    dkv_status_t (*expire)(void *state, dkv_result_t *res,
                           const void *key, size_t key_len,
                           int64_t ttl_ms, uint64_t lock);
    dkv_status_t (*refresh)(void *state, dkv_result_t *res,
                            const void *key, size_t key_len, uint64_t lock);
    /* Bulk calls: N >= 1, arrays non-NULL; RESULTS may be NULL.  ITEMS
     * is an array of N items allocated by the caller in POOL. */
    dkv_status_t (*put_many)(void *state, dkv_result_t *results,
                             const dkv_kv_t *kvs, size_t n,
                             const dkv_put_opts_t *opts);
    dkv_status_t (*get_many)(void *state, dkv_item_t *items,
                             const dkv_key_t *keys, size_t n,
                             const dkv_get_opts_t *opts, apr_pool_t *pool);
    dkv_status_t (*delete_many)(void *state, dkv_result_t *results,
                                const dkv_key_t *keys, size_t n,
                                const dkv_delete_opts_t *opts);
    dkv_status_t (*batch)(void *state, dkv_result_t *results,
                          const dkv_op_t *ops, size_t n);
    /* RANGE is never NULL here (client.c passes an all-zero range). */
    dkv_status_t (*clear)(void *state, uint64_t *deleted,
                          const dkv_range_t *range);
    dkv_status_t (*scan)(void *state, dkv_page_t **page,
                         const dkv_range_t *range,
                         const dkv_scan_opts_t *opts, apr_pool_t *pool);
    dkv_status_t (*count)(void *state, uint64_t *count,
                          const dkv_range_t *range);

    dkv_status_t (*counter_add)(void *state, int64_t *previous,
                                int64_t *current,
                                const void *key, size_t key_len,
                                int64_t delta,
                                const dkv_counter_opts_t *opts);
    dkv_status_t (*counter_get)(void *state, int64_t *value,
                                const void *key, size_t key_len);
    dkv_status_t (*counter_set)(void *state, const void *key,
                                size_t key_len, int64_t value,
                                const dkv_counter_opts_t *opts);
    dkv_status_t (*lease_grant)(void *state, uint64_t *lease,
                                int64_t ttl_ms);
    dkv_status_t (*lease_keepalive)(void *state, int64_t *remaining_ms,
                                    uint64_t lease);
    dkv_status_t (*lease_revoke)(void *state, uint64_t *keys_deleted,
                                 uint64_t lease);
    dkv_status_t (*lease_info)(void *state, dkv_lease_info_t *info,
                               uint64_t lease);
    dkv_status_t (*lock_acquire)(void *state, dkv_lock_t *lock,
                                 const void *key, size_t key_len,
                                 uint64_t lease);
    dkv_status_t (*lock_release)(void *state, const void *key,
                                 size_t key_len, uint64_t token);

    /* Starts a watch; the backend allocates *WATCH (a struct dkv_watch
     * at the start of its own struct) and owns it until watch_stop. */
    dkv_status_t (*watch_start)(void *state, dkv_watch_t **watch,
                                const void *key, size_t key_len,
                                const dkv_watch_opts_t *opts,
                                dkv_watch_cb_t *callback, void *baton);
    void (*watch_stop)(void *state, dkv_watch_t *watch);

    /* Applies an optimistic transaction atomically: every op if every
     * compare holds, else nothing (DKV_ECONFLICT).  REVISION receives the
     * store revision after the commit (may be NULL). */
    dkv_status_t (*txn_commit)(void *state, uint64_t *revision,
                               const dkv_txn_compare_t *compares,
                               size_t ncompares,
                               const dkv_op_t *ops, size_t nops);

    dkv_status_t (*search)(void *state, dkv_page_t **page,
                           const dkv_query_t *query,
                           const dkv_search_opts_t *opts, apr_pool_t *pool);
} dkv_backend_ops_t;

/* A handle on one store. */
struct dkv_client {
    const dkv_backend_ops_t *ops;
    void *state;               /* the backend's */
    apr_pool_t *pool;          /* the handle's own pool (destroyed at close) */
    char *dir;                 /* the store's directory (absolute,
                                * canonical), in POOL; for "inproc:" the
                                * temporary directory dkv_close removes;
                                * NULL for a remote store */
    int own_apr;               /* 1: dkv_open called apr_initialize() */
    volatile int closed;       /* 1 once closing has begun */
};

/* The directory of CLIENT's store (see struct dkv_client), valid until
 * the handle closes.  Internal: the tests use it to find the temporary
 * directory of an "inproc:" store without scanning the shared temporary
 * directory, which other processes use too. */
const char *dkv_client_dir(const dkv_client_t *client);

/* The public part of every backend's watch: backends put it first in
 * their own watch struct. */
struct dkv_watch {
    dkv_client_t *client;
};

/* Checks a key: KEY non-NULL unless KEY_LEN is 0, and 1..DKV_MAX_KEY bytes
 * (0..DKV_MAX_KEY with ALLOW_EMPTY).  Returns DKV_OK, or DKV_EINVAL /
 * DKV_ETOOLARGE with dkv_error_set. */
dkv_status_t dkv_check_key(const void *key, size_t key_len, int allow_empty);

/* Checks a value of VALUE_LEN bytes against MAX_VALUE (and VALUE non-NULL
 * when VALUE_LEN > 0).  DKV_OK, DKV_EINVAL or DKV_ETOOLARGE (with
 * dkv_error_set). */
dkv_status_t dkv_check_value(const void *value, size_t value_len,
                             size_t max_value);

/* Checks put options (NULL is fine): ttl, entity, labels, content type
 * sizes.  DKV_OK, DKV_EINVAL or DKV_ETOOLARGE (with dkv_error_set). */
dkv_status_t dkv_check_put_opts(const dkv_put_opts_t *opts);

/* Checks a whole put: key, value, options. */
dkv_status_t dkv_check_put(const void *key, size_t key_len,
                           const void *value, size_t value_len,
                           const dkv_put_opts_t *opts, size_t max_value);

/* Checks one operation of a batch or transaction (type, key, value,
 * options). */
dkv_status_t dkv_check_op(const dkv_op_t *op, size_t max_value);

/* The in-process backend (inproc.c): opens the engine in DIR (which
 * exists) with OPTS, and returns its state in *STATE, allocated from a
 * subpool of POOL.  Returns the engine's open statuses. */
extern const dkv_backend_ops_t dkv_inproc_ops;
dkv_status_t dkv_inproc_open(void **state, dkv_client_t *client,
                             const char *dir, const dkv_open_opts_t *opts,
                             apr_pool_t *pool);


/* ------------------------------------------------------- transactions */

/* txn.c: the bodies of the dkv_txn_* functions, called by client.c after
 * the common checks (TXN and outputs non-NULL, key valid, client open). */
dkv_status_t dkv_txn_do_begin(dkv_txn_t **txn, dkv_client_t *client,
                              apr_pool_t *pool);
dkv_status_t dkv_txn_do_get(dkv_item_t *item, dkv_txn_t *txn,
                            const void *key, size_t key_len,
                            apr_pool_t *pool);
dkv_status_t dkv_txn_do_put(dkv_txn_t *txn, const void *key,
                            size_t key_len, const void *value,
                            size_t value_len, const dkv_put_opts_t *opts);
dkv_status_t dkv_txn_do_delete(dkv_txn_t *txn, const void *key,
                               size_t key_len);
/* Commits and frees TXN. */
dkv_status_t dkv_txn_do_commit(uint64_t *revision, dkv_txn_t *txn);
/* Frees TXN. */
void dkv_txn_do_rollback(dkv_txn_t *txn);
/* The client TXN belongs to. */
dkv_client_t *dkv_txn_client(const dkv_txn_t *txn);

#endif /* DKV_CLIENT_CLIENT_H */
