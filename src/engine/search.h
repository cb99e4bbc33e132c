/*
 * search.h -- the engine's label index and query evaluator (search.c),
 * as the rest of the engine sees it.
 *
 * search.c owns its LMDB databases (the entity index and the label
 * index) and knows nothing of the record format: the engine tells it what
 * a key's entity and labels were and become at each change, and gives it
 * a loader to read a key's current item when answering a query.  The
 * on-disk encoding of the index is described in docs/internals/engine.md.
 */
#ifndef DKV_ENGINE_SEARCH_H
#define DKV_ENGINE_SEARCH_H

#include <lmdb.h>
#include <apr_pools.h>

#include "dkv.h"

/* search.c's database handles.  Opaque to the rest of the engine. */
typedef struct dkv_eng_search dkv_eng_search_t;

/* Opens (creating) search's databases inside TXN, a write transaction of
 * the engine's open.  *SEARCH lives in POOL.  Returns DKV_OK or an LMDB
 * status mapped to an APR/dkv status. */
dkv_status_t dkv_eng_search_init(dkv_eng_search_t **search, MDB_txn *txn,
                                 apr_pool_t *pool);

/* Moves KEY's index entries, inside write transaction TXN, from what the
 * key had (OLD_ENTITY and OLD_LABELS; OLD_ENTITY NULL: nothing indexed)
 * to what it has now (NEW_ENTITY and NEW_LABELS; NEW_ENTITY NULL: the key
 * is gone or has no entity).  Labels with indexed == 0 are not indexed.
 * Inputs were validated by the caller (sizes within the DKV_MAX_* limits
 * of dkv/client.h).  SCRATCH is for temporary memory.  Returns DKV_OK or
 * a fatal LMDB-derived status. */
dkv_status_t dkv_eng_search_index(dkv_eng_search_t *search, MDB_txn *txn,
                                  const void *key, size_t key_len,
                                  const char *old_entity,
                                  const dkv_label_t *old_labels,
                                  size_t old_nlabels,
                                  const char *new_entity,
                                  const dkv_label_t *new_labels,
                                  size_t new_nlabels, apr_pool_t *scratch);

/* Fills *ITEM with KEY's current value and metadata (copied into POOL),
 * or returns DKV_ENOTFOUND when the key is absent or expired. */
typedef dkv_status_t (dkv_eng_load_fn)(void *baton, dkv_item_t *item,
                                       const void *key, size_t key_len,
                                       apr_pool_t *pool);

/* Answers QUERY (see dkv/search.h for its semantics, validation and
 * paging) from the snapshot TXN, loading matching items with LOAD.
 * REVISION is the snapshot's revision, reported in the page.  Returns
 * DKV_OK, DKV_EINVAL (malformed query or cursor, with dkv_error_set), or
 * a fatal status. */
dkv_status_t dkv_eng_search_query(dkv_page_t **page,
                                  dkv_eng_search_t *search, MDB_txn *txn,
                                  const dkv_query_t *query,
                                  const dkv_search_opts_t *opts,
                                  dkv_eng_load_fn *load, void *baton,
                                  uint64_t revision, apr_pool_t *pool);

#endif /* DKV_ENGINE_SEARCH_H */
