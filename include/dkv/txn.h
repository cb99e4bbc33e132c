/*
 * dkv/txn.h -- optimistic transactions.
 *
 * A transaction reads through to the store, remembering the revision at
 * which it saw each key, and stages its writes in the client.  Its own
 * writes are visible to its reads.  Commit applies every staged write
 * atomically, or none of them with DKV_ECONFLICT if any key it read has
 * changed (or appeared, or vanished) since it was read.  Writes to keys
 * it never read are not checked.
 */
#ifndef DKV_TXN_H
#define DKV_TXN_H

#include "dkv/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dkv_txn dkv_txn_t;

/* Most operations staged in one transaction, and most distinct keys it
 * reads from the store (each is checked at commit), in every mode. */
#define DKV_MAX_TXN_OPS 10000

/* Begins a transaction on CLIENT.  Its memory comes from a subpool of
 * POOL (NULL: the client's).  A transaction is used by one thread at a
 * time.  Returns DKV_OK, DKV_EINVAL, DKV_ECLOSED. */
DKV_API dkv_status_t dkv_txn_begin(dkv_txn_t **txn, dkv_client_t *client,
                                   apr_pool_t *pool);

/* Reads KEY in TXN: its staged write if any, else the store's value
 * (remembered for the conflict check).  As dkv_get(): DKV_OK,
 * DKV_ENOTFOUND (also for a key this transaction deleted), DKV_EINVAL,
 * DKV_ECLOSED; DKV_ETOOLARGE when it would be the transaction's
 * (DKV_MAX_TXN_OPS + 1)th distinct key read from the store. */
DKV_API dkv_status_t dkv_txn_get(dkv_item_t **item, dkv_txn_t *txn,
                                 const void *key, size_t key_len,
                                 apr_pool_t *pool);

/* Stages a put.  Its options (if_absent and if_version too) are checked
 * at commit.  Returns DKV_OK, DKV_EINVAL, DKV_ETOOLARGE (more than
 * DKV_MAX_TXN_OPS, or sizes over the limits), DKV_ECLOSED. */
DKV_API dkv_status_t dkv_txn_put(dkv_txn_t *txn,
                                 const void *key, size_t key_len,
                                 const void *value, size_t value_len,
                                 const dkv_put_opts_t *opts);

/* Stages a delete (of a key that may or may not exist).  Returns as
 * dkv_txn_put(). */
DKV_API dkv_status_t dkv_txn_delete(dkv_txn_t *txn,
                                    const void *key, size_t key_len);

/* Commits TXN and frees it, whatever the outcome.  REVISION (may be
 * NULL) receives the store revision after the commit.
 * Returns DKV_OK; DKV_ECONFLICT when a read key changed or a staged
 * condition failed (nothing applied; retry the whole transaction);
 * DKV_ELOCKED when a staged write hits a lock (nothing applied);
 * DKV_ENOTFOUND for an unknown lease (nothing applied); DKV_EFULL;
 * DKV_ECLOSED. */
DKV_API dkv_status_t dkv_txn_commit(uint64_t *revision, dkv_txn_t *txn);

/* Discards TXN and frees it.  NULL does nothing. */
DKV_API void dkv_txn_rollback(dkv_txn_t *txn);

#ifdef __cplusplus
}
#endif
#endif /* DKV_TXN_H */
