/*
 * exec.h -- the public operations' semantics on engine contexts, shared by
 * the in-process backend (inproc.c) and dkv-node's request service
 * (src/node/service.c), so the two modes cannot drift apart.
 *
 * The engine runs one operation at a time; the public API has bulk calls
 * with per-key statuses and watches that start with a snapshot or a
 * replay.  These helpers turn the second into the first: they run inside a
 * context the caller opened and leave commit, locking and delivery to it.
 * They live beside the argument checks they use (client.h).
 */
#ifndef DKV_CLIENT_EXEC_H
#define DKV_CLIENT_EXEC_H

#include <apr_pools.h>

#include "dkv.h"
#include "engine/engine.h"

/* 1 when RV leaves an engine write context usable (OK or a logical
 * failure: DKV_ENOTFOUND, DKV_ECONFLICT, DKV_ELOCKED, DKV_EINVAL,
 * DKV_ETOOLARGE, DKV_ERANGE); 0 when it poisoned it. */
int dkv_exec_is_logical(dkv_status_t rv);

/* 1 when event EV is for a watch on KEY (KEY_LEN bytes; with PREFIX, every
 * key starting with it). */
int dkv_exec_watch_matches(const void *key, size_t key_len, int prefix,
                           const dkv_event_t *ev);

/* dkv_put_many, dkv_delete_many and dkv_batch in write context W: every
 * item on its own (checked with dkv_check_key and friends, then applied),
 * its status in RESULTS[i] (RESULTS may be NULL; its other fields as the
 * engine fills them).  Returns DKV_OK, or the status that poisoned W (the
 * call must then abort W; items after the poisoning one are untouched). */
dkv_status_t dkv_exec_put_many(dkv_result_t *results, dkv_eng_write_t *w,
                               const dkv_kv_t *kvs, size_t n,
                               const dkv_put_opts_t *opts,
                               size_t max_value);
dkv_status_t dkv_exec_delete_many(dkv_result_t *results,
                                  dkv_eng_write_t *w, const dkv_key_t *keys,
                                  size_t n, const dkv_delete_opts_t *opts);
dkv_status_t dkv_exec_batch(dkv_result_t *results, dkv_eng_write_t *w,
                            const dkv_op_t *ops, size_t n,
                            size_t max_value);

/* dkv_get_many in read context R: ITEMS (N, zeroed by the caller) each
 * get their status; copies in POOL.  Returns DKV_OK or the first status
 * that is not a per-key one (the call fails with it). */
dkv_status_t dkv_exec_get_many(dkv_item_t *items, dkv_eng_read_t *r,
                               const dkv_key_t *keys, size_t n,
                               const dkv_get_opts_t *opts,
                               apr_pool_t *pool);

/* The backlog a watch on KEY starts with, read from R's snapshot (revision
 * R): with START != 0, the retained changes from START to R (nothing when
 * START > R); else with SNAPSHOT, one Put event (snapshot 1, revision R)
 * per live key (the prefix's keys in key order, in pages); else nothing.
 * FN gets each event (valid during the call only); POOL is scratch,
 * cleared by the caller afterwards.  Returns DKV_OK; DKV_ECOMPACTED (with
 * a message naming the oldest retained revision) when START is older than
 * the history; FN's status; or an engine status. */
dkv_status_t dkv_exec_watch_backlog(dkv_eng_read_t *r, const void *key,
                                    size_t key_len, int prefix,
                                    int snapshot, uint64_t start,
                                    dkv_eng_event_fn *fn, void *baton,
                                    apr_pool_t *pool);

#endif /* DKV_CLIENT_EXEC_H */
