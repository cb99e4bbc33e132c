/*
 * engine-int.h -- what the engine's own files (engine.c, kv.c, coord.c)
 * share: the engine, write and read context structures, the database
 * handles, and the internal helpers each file provides to the others.
 * Not for use outside src/engine.  docs/internals/engine.md describes the
 * databases and their encodings.
 */
#ifndef DKV_ENGINE_INT_H
#define DKV_ENGINE_INT_H

#include <lmdb.h>
#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_thread_mutex.h>

#include "common/alloc.h"
#include "engine/engine.h"
#include "engine/record.h"
#include "engine/search.h"

/* Format of the store, in meta "format"; any other format is refused.
 * 3: records in LMDB's main database after the named databases' records
 * (DKV_KV_TAG 0xff), compact record encoding (record.h); 2 had the tag
 * 0x01 and 72-byte fixed record headers, 1 records in a named database
 * "kv"; neither shipped. */
#define DKV_ENG_FORMAT 3

/* First byte of every record key in the main database (DKV_KV_TAG + user
 * key).  The names of the named databases, whose records share the main
 * database, are ASCII text, so they never look like a record key and all
 * sort before the records: keys written in order are appended at the end
 * of the database, where LMDB's splits leave full pages (a split before
 * the last key moves about half of a page). */
#define DKV_KV_TAG 0xff

/* Tags of the expiry index and of the lease attachments. */
#define DKV_TAG_KEY 'k'
#define DKV_TAG_LEASE 'l'
#define DKV_TAG_LOCK 'l'

/* The persistent counters of the store (meta "state", 32 bytes). */
typedef struct dkv_eng_state {
    uint64_t revision;      /* last revision used */
    uint64_t applied;       /* applied log index */
    uint64_t compact;       /* oldest revision history can replay from */
    uint64_t next_lease;    /* the next lease id to grant */
} dkv_eng_state_t;

/* Lock-free slots of reset read contexts (struct dkv_engine). */
#define DKV_ENG_READ_SLOTS 8

struct dkv_engine {
    apr_pool_t *pool;
    MDB_env *env;
    MDB_dbi meta;       /* "format", "state" */
    MDB_dbi kv;         /* the main database: DKV_KV_TAG + user key ->
                         * record (a read needs no named-database
                         * lookup, which LMDB repeats in each snapshot) */
    MDB_dbi hist;       /* be64 revision -> event */
    MDB_dbi expiry;     /* be64s time + tag -> dup: user key / be64 lease */
    MDB_dbi leases;     /* be64 lease -> ttl, expires_at */
    MDB_dbi lease_att;  /* be64 lease -> dup: tag + user key */
    MDB_dbi locks;      /* user key -> be64 lease, be64 token */
    dkv_eng_search_t *search;
    MDB_dbi raftlog;    /* repl.c: be64 index -> log entry */
    MDB_dbi replica;    /* repl.c: name -> replica metadata */
    MDB_dbi srch_entity;    /* search.c's databases, for dump and load */
    MDB_dbi srch_label;
    size_t max_value;
    uint64_t history_retain;

    /* Ended read contexts ready for reuse, taken and given back with
     * atomic exchanges (no lock on the read path); more of them go to
     * free_reads.  A context in a slot may still be live (its transaction
     * not reset), for reuse while no commit has followed. */
    volatile void *read_slots[DKV_ENG_READ_SLOTS];

    /* Guards the fields below. */
    apr_thread_mutex_t *mutex;
    dkv_eng_read_t *free_reads;     /* reset read contexts to reuse */
    size_t snap_txnid;              /* the committed state below ... */
    dkv_eng_state_t snap;           /* ... belongs to this txn id */
};

struct dkv_eng_write {
    dkv_engine_t *engine;
    MDB_txn *txn;            /* the current (maybe nested) transaction */
    MDB_txn *top;            /* the top-level transaction */
    int64_t now;
    apr_pool_t *pool;
    dkv_eng_state_t state;   /* revision etc. as of now */
    uint64_t base_revision;  /* the revision at begin */
    uint64_t base_lease;     /* next_lease at begin */
    MDB_cursor *kv_cur;      /* cursors in txn, opened on first use and */
    MDB_cursor *hist_cur;    /* closed by LMDB when txn ends */
    dkv_status_t status;     /* nonzero: poisoned */
    int ended;
    int loaded;              /* a load replaced the state (repl.c): the
                              * commit stores the state */
    dkv_event_t *events;
    size_t nevents;
    size_t cap;
};

struct dkv_eng_read {
    dkv_engine_t *engine;
    MDB_txn *txn;
    int64_t now;
    dkv_eng_state_t state;
    size_t state_txnid;      /* the snapshot STATE was read in (0: none) */
    int live;                /* ended but not reset: TXN is still open on
                              * its snapshot (only while in a slot) */
    dkv_eng_read_t *next;    /* free list link */
};

/* A lock as stored. */
typedef struct dkv_eng_lock {
    uint64_t lease;
    uint64_t token;
} dkv_eng_lock_t;

/* ---------------------------------------------------------- engine.c */

/* Poisons WRITE with the fatal STATUS (message set by the caller) and
 * returns it. */
dkv_status_t dkv_eng_fail(dkv_eng_write_t *write, dkv_status_t status);

/* Maps a failed LMDB call RC in operation WHAT to a status, sets the
 * message, poisons WRITE (may be NULL for reads) and returns it. */
dkv_status_t dkv_eng_mdb_fail(dkv_eng_write_t *write, int rc,
                              const char *what);

/* Sets *C to the cursor *SLOT (WRITE's kv_cur or hist_cur) on DBI in
 * WRITE's current transaction, opening it on first use.  Reusing one
 * cursor lets LMDB skip the tree descent when the next key is on the
 * same page.  Returns DKV_OK or a fatal status (poisoning WRITE). */
dkv_status_t dkv_eng_cursor(MDB_cursor **c, dkv_eng_write_t *write,
                            MDB_cursor **slot, MDB_dbi dbi);

/* Appends an event (copying KEY and VALUE into the context's pool) and
 * writes it to the history database under REVISION. */
dkv_status_t dkv_eng_add_event(dkv_eng_write_t *write, dkv_event_type_t type,
                               const void *key, size_t key_len,
                               const void *value, size_t value_len,
                               uint64_t revision, uint64_t version);

/* Validates a key: DKV_EINVAL (NULL or empty), DKV_ETOOLARGE. */
dkv_status_t dkv_eng_check_key(const void *key, size_t key_len,
                               const char *op);

/* Validates RANGE (may be NULL): DKV_EINVAL when prefix and start/end are
 * both set or a pointer is NULL with a length. */
dkv_status_t dkv_eng_check_range(const dkv_range_t *range);

/* 1 when KEY lies in RANGE (NULL: everything). */
int dkv_eng_in_range(const dkv_range_t *range, const void *key,
                     size_t key_len);

/* 1 when a key past the range's end (or prefix) is reached: KEY and all
 * keys after it are out of RANGE. */
int dkv_eng_past_range(const dkv_range_t *range, const void *key,
                       size_t key_len);

/* -------------------------------------------------------------- kv.c */

/* Looks up KEY in TXN.  Returns DKV_OK with *REC (pointing into LMDB
 * memory), DKV_ENOTFOUND, or a fatal status (not poisoning). */
dkv_status_t dkv_eng_load(dkv_rec_t *rec, dkv_engine_t *engine,
                          MDB_txn *txn, const void *key, size_t key_len);

/* 1 when REC is live at NOW: not past its expiry, and its lease (if any)
 * exists and has not expired.  *LEASE_GONE is set to 1 when the lease is
 * the reason it is not.  Returns a fatal status through *STATUS. */
int dkv_eng_live(dkv_engine_t *engine, MDB_txn *txn, const dkv_rec_t *rec,
                 int64_t now, int *lease_gone, dkv_status_t *status);

/* Deletes KEY (whose record is REC) with a Delete event at the next
 * revision: record, expiry entry, lease attachment, search entries.
 * REC's byte fields are not used after the first write. */
dkv_status_t dkv_eng_remove_key(dkv_eng_write_t *write, const void *key,
                                size_t key_len, const dkv_rec_t *rec);

/* Loads KEY's record in WRITE as a copy in the context's pool (so it stays
 * valid while the databases change).  DKV_OK, DKV_ENOTFOUND, or fatal. */
dkv_status_t dkv_eng_load_copy(dkv_rec_t *rec, dkv_eng_write_t *write,
                               const void *key, size_t key_len);

/* Makes KEY writable at WRITE's now, after the checks of an operation
 * passed: ends STALE_LEASE (nonzero: the expired lease of the lock on
 * KEY), then removes KEY's record if it is not live (past its expiry: the
 * key with its Delete event; bound to an expired lease: the whole lease).
 * Callers reload the record afterwards. */
dkv_status_t dkv_eng_settle(dkv_eng_write_t *write, const void *key,
                            size_t key_len, uint64_t stale_lease);

/* Writes KEY's new record REC at the next revision with its Put event,
 * moving the expiry entry, lease attachment and (REINDEX 1) search
 * entries from OLD (the live record being replaced, or NULL).  Fills
 * REC's version, revisions and created_at.  LABELS, when not NULL, give
 * the label area (else REC's raw one).  OLD's bytes are copied before the
 * first write. */
dkv_status_t dkv_eng_write_record(dkv_eng_write_t *write, const void *key,
                                  size_t key_len, const dkv_rec_t *old,
                                  dkv_rec_t *rec, const dkv_label_t *labels,
                                  size_t nlabels, int reindex);

/* Checks the arguments of a put against ENGINE's limits; *ENTITY_LEN and
 * *CTYPE_LEN receive the lengths of the entity and content type. */
dkv_status_t dkv_eng_check_put(const dkv_engine_t *engine, const void *key,
                               size_t key_len, const void *value,
                               size_t value_len, const dkv_put_opts_t *opts,
                               size_t *entity_len, size_t *ctype_len);

/* ----------------------------------------------------------- coord.c */

/* Reads the lock on KEY: DKV_OK with *LOCK, DKV_ENOTFOUND, or fatal. */
dkv_status_t dkv_eng_lock_get(dkv_eng_lock_t *lock, dkv_engine_t *engine,
                              MDB_txn *txn, const void *key,
                              size_t key_len);

/* Reads lease ID: DKV_OK with *TTL and *EXPIRES_AT, DKV_ENOTFOUND, or a
 * fatal status.  Either output may be NULL. */
dkv_status_t dkv_eng_lease_get(int64_t *ttl, int64_t *expires_at,
                               dkv_engine_t *engine, MDB_txn *txn,
                               uint64_t id);

/* Checks that a write carrying lock token TOKEN may change KEY at NOW:
 * DKV_OK, DKV_ELOCKED (with message), or fatal.  A lock whose lease has
 * expired counts as released.  *STALE_LEASE receives that lease (0: none)
 * so the write can end it before changing the key. */
dkv_status_t dkv_eng_lock_check(uint64_t *stale_lease,
                                dkv_eng_write_t *write, const void *key,
                                size_t key_len, uint64_t token,
                                const char *op);

/* Ends lease ID (which exists): deletes its keys with events, releases
 * its locks, removes it.  *KEYS (may be NULL) receives the number of keys
 * deleted. */
dkv_status_t dkv_eng_lease_end(uint64_t *keys, dkv_eng_write_t *write,
                               uint64_t id);

/* Adds or removes (ADD 0) the attachment TAG+KEY of lease ID. */
dkv_status_t dkv_eng_attach(dkv_eng_write_t *write, uint64_t id, int tag,
                            const void *key, size_t key_len, int add);

/* Adds or removes (ADD 0) an expiry index entry. */
dkv_status_t dkv_eng_expiry_entry(dkv_eng_write_t *write, int64_t at,
                                  int tag, const void *data, size_t len,
                                  int add);

/* ------------------------------------------------------------ repl.c */

/* Opens (creating) the replication databases and the handles of the
 * search databases inside TXN, the write transaction of the engine's
 * open, after dkv_eng_search_init.  Returns DKV_OK or a status. */
dkv_status_t dkv_eng_repl_open(dkv_engine_t *engine, MDB_txn *txn);

#endif /* DKV_ENGINE_INT_H */
