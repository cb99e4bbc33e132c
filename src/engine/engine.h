/*
 * engine.h -- the store engine: dkv's deterministic state machine on LMDB.
 *
 * One engine serves both modes: the in-process client calls it directly;
 * a replicated node (later) applies committed log entries through it.  It
 * reads no clock and draws no random numbers: every write and every read
 * takes `now` (milliseconds since the epoch) from its caller, and expiry
 * happens only when the caller asks for it (dkv_engine_expire_due).  So
 * the same calls with the same `now` give the same store, byte for byte.
 *
 * Writes happen inside a write context (one LMDB write transaction): any
 * number of operations, then commit, which makes them durable together
 * with the applied log index.  Each operation is atomic on its own: when
 * it fails with a logical status (DKV_ENOTFOUND, DKV_ECONFLICT,
 * DKV_ELOCKED, DKV_EINVAL, DKV_ETOOLARGE, DKV_ERANGE) it leaves no trace
 * and the context stays usable.  Any other failure (I/O, DKV_EFULL,
 * DKV_ECORRUPT) poisons the context: later operations and the commit
 * return that status and nothing of the context is applied.
 *
 * Reads happen inside a read context: a consistent snapshot (one LMDB
 * read transaction), cheap to begin and end, usable from any thread but by
 * one thread at a time.  Keys whose expiry time is <= now are invisible to
 * reads and are treated as absent by writes (which first delete them, with
 * their Delete event) even before dkv_engine_expire_due() removes them.
 *
 * The engine speaks the public value types of the headers of include/dkv.
 * Thread safety: one dkv_engine_t is shared by all threads; any number of
 * read contexts at once; write contexts are serialized by LMDB (a second
 * dkv_engine_write_begin waits for the first to end).
 */
#ifndef DKV_ENGINE_H
#define DKV_ENGINE_H

#include <apr_pools.h>

#include "dkv.h"

typedef struct dkv_engine dkv_engine_t;
typedef struct dkv_eng_write dkv_eng_write_t;
typedef struct dkv_eng_read dkv_eng_read_t;

/* ------------------------------------------------------------ lifecycle */

typedef struct dkv_engine_opts {
    size_t max_value;          /* 0: DKV_DEFAULT_MAX_VALUE */
    uint64_t map_size;         /* 0: 1 GiB */
    uint64_t history_retain;   /* 0: 100000 revisions */
    int no_sync;               /* 1: MDB_NOSYNC (never corrupts) */
} dkv_engine_opts_t;

/* Opens (creating if needed) the engine in directory DIR, which must
 * exist.  OPTS may be NULL.  The engine's memory comes from POOL;
 * destroying POOL closes it.  Returns DKV_OK, DKV_EINVAL (bad options),
 * DKV_ECORRUPT (not a dkv store, or a newer format), or an LMDB/OS status
 * mapped to APR (e.g. APR_EACCES, APR_ENOENT). */
dkv_status_t dkv_engine_open(dkv_engine_t **engine, const char *dir,
                             const dkv_engine_opts_t *opts,
                             apr_pool_t *pool);

/* Closes ENGINE; no context may be open.  NULL does nothing. */
void dkv_engine_close(dkv_engine_t *engine);

/* The largest value ENGINE accepts. */
size_t dkv_engine_max_value(const dkv_engine_t *engine);

/* --------------------------------------------------------------- writes */

/* Begins a write context at time NOW.  Scratch memory and the events come
 * from POOL (a pool the caller clears after the context ends). */
dkv_status_t dkv_engine_write_begin(dkv_eng_write_t **write,
                                    dkv_engine_t *engine, int64_t now,
                                    apr_pool_t *pool);

/* Commits WRITE and ends it.  APPLIED_INDEX, when nonzero, is stored with
 * the changes (the replicated log's index; 0 leaves it as it is).  On
 * failure nothing was applied.  Returns DKV_OK, DKV_EFULL, or an I/O
 * status (or the status that poisoned the context). */
dkv_status_t dkv_engine_write_commit(dkv_eng_write_t *write,
                                     uint64_t applied_index);

/* Discards WRITE and ends it.  NULL does nothing. */
void dkv_engine_write_abort(dkv_eng_write_t *write);

/* The events WRITE produced, in revision order (valid after commit, until
 * the context's pool is cleared; snapshot 0, status 0). */
const dkv_event_t *dkv_engine_write_events(const dkv_eng_write_t *write,
                                           size_t *count);

/* The store revision WRITE has reached so far (after commit: the
 * committed revision). */
uint64_t dkv_engine_write_revision(const dkv_eng_write_t *write);

/* The operations of a write context, with the semantics and statuses of
 * their public counterparts (in the headers of include/dkv: dkv_put,
 * dkv_delete, dkv_expire, dkv_refresh, dkv_clear, dkv_counter_add,
 * dkv_counter_set, dkv_lease_grant, dkv_lease_keepalive, dkv_lease_revoke,
 * dkv_lock_acquire, dkv_lock_release).  Output pointers may be NULL.
 * Every key change takes the next revision and adds a Put or Delete
 * event (counters are keys: their changes are Put events); leases and
 * locks take a revision per change too (a lock's fencing token is the
 * revision of its acquisition), with no event. */
dkv_status_t dkv_engine_put(dkv_result_t *res, dkv_eng_write_t *write,
                            const void *key, size_t key_len,
                            const void *value, size_t value_len,
                            const dkv_put_opts_t *opts);
dkv_status_t dkv_engine_delete(dkv_result_t *res, dkv_eng_write_t *write,
                               const void *key, size_t key_len,
                               const dkv_delete_opts_t *opts);
dkv_status_t dkv_engine_expire(dkv_result_t *res, dkv_eng_write_t *write,
                               const void *key, size_t key_len,
                               int64_t ttl_ms, uint64_t lock);
dkv_status_t dkv_engine_refresh(dkv_result_t *res, dkv_eng_write_t *write,
                                const void *key, size_t key_len,
                                uint64_t lock);
dkv_status_t dkv_engine_clear(uint64_t *deleted, dkv_eng_write_t *write,
                              const dkv_range_t *range);
dkv_status_t dkv_engine_counter_add(int64_t *previous, int64_t *current,
                                    dkv_eng_write_t *write,
                                    const void *key, size_t key_len,
                                    int64_t delta,
                                    const dkv_counter_opts_t *opts);
dkv_status_t dkv_engine_counter_set(dkv_eng_write_t *write,
                                    const void *key, size_t key_len,
                                    int64_t value,
                                    const dkv_counter_opts_t *opts);
dkv_status_t dkv_engine_lease_grant(uint64_t *lease, dkv_eng_write_t *write,
                                    int64_t ttl_ms);
dkv_status_t dkv_engine_lease_keepalive(int64_t *remaining_ms,
                                        dkv_eng_write_t *write,
                                        uint64_t lease);
dkv_status_t dkv_engine_lease_revoke(uint64_t *keys_deleted,
                                     dkv_eng_write_t *write, uint64_t lease);
dkv_status_t dkv_engine_lock_acquire(dkv_lock_t *lock,
                                     dkv_eng_write_t *write,
                                     const void *key, size_t key_len,
                                     uint64_t lease);
dkv_status_t dkv_engine_lock_release(dkv_eng_write_t *write,
                                     const void *key, size_t key_len,
                                     uint64_t token);

/* A read-set entry of an optimistic transaction: KEY had MOD_REVISION
 * when read (0: it was absent). */
typedef struct dkv_eng_compare {
    const void *key;
    size_t key_len;
    uint64_t mod_revision;
} dkv_eng_compare_t;

/* Applies a transaction atomically: if every compare holds, every op
 * (puts with all their options, deletes of keys that may be absent) in
 * order; otherwise nothing.  Returns DKV_OK; DKV_ECONFLICT when a compare
 * or a staged if_absent/if_version fails; DKV_ELOCKED, DKV_ENOTFOUND
 * (unknown lease), DKV_EINVAL, DKV_ETOOLARGE as for single operations --
 * in every failure case with no trace in WRITE. */
dkv_status_t dkv_engine_txn(dkv_eng_write_t *write,
                            const dkv_eng_compare_t *compares,
                            size_t ncompares,
                            const dkv_op_t *ops, size_t nops);

/* Expires what is due at the context's `now`: keys and counters whose
 * expiry time is <= now (Delete events), and leases whose expiry is <= now
 * (deleting their keys, with events, and releasing their locks).  Handles
 * at most MAX items (0: no limit), in expiry order; *MORE (may be NULL)
 * is set to 1 when some remain.  *EXPIRED (may be NULL) receives the
 * number of keys deleted. */
dkv_status_t dkv_engine_expire_due(uint64_t *expired, int *more,
                                   dkv_eng_write_t *write, size_t max);

/* ---------------------------------------------------------------- reads */

/* Begins a read context (a snapshot) at time NOW.  Results are copied
 * into the pools the read functions take; the context itself allocates
 * nothing per call.  Returns DKV_OK or an LMDB status. */
dkv_status_t dkv_engine_read_begin(dkv_eng_read_t **read,
                                   dkv_engine_t *engine, int64_t now);

/* Ends READ.  NULL does nothing. */
void dkv_engine_read_end(dkv_eng_read_t *read);

/* The store revision of READ's snapshot. */
uint64_t dkv_engine_read_revision(const dkv_eng_read_t *read);

/* As dkv_get(): fills *ITEM (status included) with copies in POOL. */
dkv_status_t dkv_engine_get(dkv_item_t *item, dkv_eng_read_t *read,
                            const void *key, size_t key_len,
                            const dkv_get_opts_t *opts, apr_pool_t *pool);

/* As dkv_scan(), dkv_count(), dkv_counter_get(), dkv_lease_info(),
 * dkv_search(). */
dkv_status_t dkv_engine_scan(dkv_page_t **page, dkv_eng_read_t *read,
                             const dkv_range_t *range,
                             const dkv_scan_opts_t *opts, apr_pool_t *pool);
dkv_status_t dkv_engine_count(uint64_t *count, dkv_eng_read_t *read,
                              const dkv_range_t *range);
dkv_status_t dkv_engine_counter_get(int64_t *value, dkv_eng_read_t *read,
                                    const void *key, size_t key_len);
dkv_status_t dkv_engine_lease_info(dkv_lease_info_t *info,
                                   dkv_eng_read_t *read, uint64_t lease);
dkv_status_t dkv_engine_search(dkv_page_t **page, dkv_eng_read_t *read,
                               const dkv_query_t *query,
                               const dkv_search_opts_t *opts,
                               apr_pool_t *pool);

/* Called once per event by dkv_engine_history(); the event is valid
 * during the call only.  A non-OK return stops the replay and is
 * returned by dkv_engine_history(). */
typedef dkv_status_t (dkv_eng_event_fn)(void *baton,
                                        const dkv_event_t *event);

/* Replays the retained events with revision >= FROM that touch KEY (or,
 * with PREFIX, keys starting with KEY), in revision order, up to READ's
 * revision.  Returns DKV_OK; DKV_ECOMPACTED when FROM is older than the
 * oldest retained revision; or FN's status. */
dkv_status_t dkv_engine_history(dkv_eng_read_t *read, uint64_t from,
                                const void *key, size_t key_len,
                                int prefix, dkv_eng_event_fn *fn,
                                void *baton);

/* The oldest revision a history replay can start from. */
uint64_t dkv_engine_history_oldest(const dkv_eng_read_t *read);

/* The earliest expiry time of any key, counter or lease in READ's
 * snapshot (ms since the epoch), or 0 when nothing expires. */
int64_t dkv_engine_next_expiry(dkv_eng_read_t *read);

/* The applied log index stored by the last commit that gave one. */
uint64_t dkv_engine_applied_index(dkv_eng_read_t *read);

/* ---------------------------------------------------------- replication
 * (src/engine/repl.c; docs/internals/replication.md).  The Raft log, the
 * hard state and other replica metadata live in the same LMDB
 * environment as the store, in databases of their own, so one write
 * context can append log entries, apply committed ones and store the
 * applied index in one transaction (one sync). */

/* Sets the time of WRITE's later operations (an applied log entry's
 * time; the caller keeps it from going back). */
void dkv_engine_write_set_now(dkv_eng_write_t *write, int64_t now);

/* Stores log entry INDEX (its encoded bytes, opaque to the engine),
 * replacing any entry with that index. */
dkv_status_t dkv_engine_log_put(dkv_eng_write_t *write, uint64_t index,
                                const void *data, size_t len);

/* Deletes every log entry with index >= FROM. */
dkv_status_t dkv_engine_log_truncate(dkv_eng_write_t *write, uint64_t from);

/* Deletes every log entry with index <= UPTO. */
dkv_status_t dkv_engine_log_compact(dkv_eng_write_t *write, uint64_t upto);

/* Called per log entry by dkv_engine_log_scan; DATA is valid during the
 * call only.  A non-OK return stops the scan and is returned. */
typedef dkv_status_t (dkv_eng_log_fn)(void *baton, uint64_t index,
                                      const void *data, size_t len);

/* Calls FN for every log entry with index >= FROM, in index order. */
dkv_status_t dkv_engine_log_scan(dkv_eng_read_t *read, uint64_t from,
                                 dkv_eng_log_fn *fn, void *baton);

/* Replica metadata: a small record NAME (e.g. "raft.hard") -> bytes. */
dkv_status_t dkv_engine_meta_put(dkv_eng_write_t *write, const char *name,
                                 const void *data, size_t len);
/* *DATA points into READ's snapshot (valid until it ends); DKV_ENOTFOUND
 * when there is no such record. */
dkv_status_t dkv_engine_meta_get(const void **data, size_t *len,
                                 dkv_eng_read_t *read, const char *name);

/* Called per record by dkv_engine_dump; valid during the call only. */
typedef dkv_status_t (dkv_eng_dump_fn)(void *baton, const void *rec,
                                       size_t len);

/* Streams READ's state -- everything but the log and the replica
 * metadata: keys, history, expiry, leases, locks, search indexes and the
 * store's counters (revision etc.) -- as a sequence of self-delimiting
 * records, for a snapshot.  The applied index is not in it (the loader
 * is given it). */
dkv_status_t dkv_engine_dump(dkv_eng_read_t *read, dkv_eng_dump_fn *fn,
                             void *baton);

/* Replaces the whole state of the store in WRITE (which must have done
 * nothing else yet) with the dump's records: _load_begin empties the
 * state (not the log or the replica metadata), _load_record takes each
 * record dkv_engine_dump gave, in order; commit with the snapshot's index
 * as applied index.  A malformed record returns DKV_ECORRUPT and poisons
 * WRITE. */
dkv_status_t dkv_engine_load_begin(dkv_eng_write_t *write);
dkv_status_t dkv_engine_load_record(dkv_eng_write_t *write,
                                    const void *rec, size_t len);

#endif /* DKV_ENGINE_H */
