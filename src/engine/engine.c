/*
 * engine.c -- the engine's environment and contexts: opening the LMDB
 * environment and its databases, the store's persistent state (revision,
 * applied index, compaction point, lease sequence), write contexts with
 * their events and history, read contexts recycled without a lock on the
 * read path, history replay and the expiry queries.  The operations
 * themselves live in kv.c (keys) and coord.c (counters, leases, locks,
 * expiry).
 */
#include <assert.h>
#include <string.h>

#include "common/codec.h"
#include "common/status.h"
#include "engine/engine-int.h"

#define DEFAULT_MAP_SIZE (UINT64_C(1) << 30)
#define DEFAULT_RETAIN 100000
#define STATE_SIZE 32
#define HIST_HEAD 12

static const MDB_val meta_format = { 6, (void *)"format" };
static const MDB_val meta_state = { 5, (void *)"state" };

/* ============================================================ helpers */

dkv_status_t
dkv_eng_fail(dkv_eng_write_t *write, dkv_status_t status)
{
    if (write && write->status == DKV_OK) {
        write->status = status;
    }
    return status;
}

dkv_status_t
dkv_eng_mdb_fail(dkv_eng_write_t *write, int rc, const char *what)
{
    dkv_status_t st = dkv_status_from_mdb(rc);

    dkv_error_set(st, "%s: %s", what, mdb_strerror(rc));
    return dkv_eng_fail(write, st);
}

dkv_status_t
dkv_eng_check_key(const void *key, size_t key_len, const char *op)
{
    if (key == NULL || key_len == 0) {
        return dkv_error_set(DKV_EINVAL, "%s: empty key", op);
    }
    if (key_len > DKV_MAX_KEY) {
        return dkv_error_set(DKV_ETOOLARGE,
                             "%s: key is %zu bytes; "
                             "the limit is %d", op,
                             key_len, DKV_MAX_KEY);
    }
    return DKV_OK;
}

dkv_status_t
dkv_eng_check_range(const dkv_range_t *range)
{
    if (range == NULL) {
        return DKV_OK;
    }
    if ((range->prefix_len && range->prefix == NULL)
        || (range->start_len && range->start == NULL)
        || (range->end_len && range->end == NULL)) {
        return dkv_error_set(DKV_EINVAL, "range: NULL bytes with a length");
    }
    if (range->prefix_len && (range->start_len || range->end_len)) {
        return dkv_error_set(DKV_EINVAL,
                             "range: prefix and start/end exclude each "
                             "other");
    }
    return DKV_OK;
}

int
dkv_eng_in_range(const dkv_range_t *range, const void *key, size_t key_len)
{
    if (range == NULL) {
        return 1;
    }
    if (range->prefix_len) {
        return key_len >= range->prefix_len
               && memcmp(key, range->prefix, range->prefix_len) == 0;
    }
    if (range->start_len
        && dkv_bytes_cmp(key, key_len, range->start, range->start_len) < 0) {
        return 0;
    }
    return range->end_len == 0
           || dkv_bytes_cmp(key, key_len, range->end, range->end_len) < 0;
}

int
dkv_eng_past_range(const dkv_range_t *range, const void *key,
                   size_t key_len)
{
    if (range == NULL) {
        return 0;
    }
    if (range->prefix_len) {
        return dkv_bytes_cmp(key, key_len < range->prefix_len
                                  ? key_len : range->prefix_len,
                             range->prefix, range->prefix_len) > 0;
    }
    return range->end_len
           && dkv_bytes_cmp(key, key_len, range->end, range->end_len) >= 0;
}

static void
state_encode(unsigned char *p, const dkv_eng_state_t *s)
{
    dkv_put_be64(p, s->revision);
    dkv_put_be64(p + 8, s->applied);
    dkv_put_be64(p + 16, s->compact);
    dkv_put_be64(p + 24, s->next_lease);
}

/* Reads the state record in TXN. */
static dkv_status_t
state_load(dkv_eng_state_t *s, dkv_engine_t *engine, MDB_txn *txn)
{
    MDB_val v;
    const unsigned char *p;
    int rc = mdb_get(txn, engine->meta, (MDB_val *)&meta_state, &v);

    if (rc != 0) {
        if (rc == MDB_NOTFOUND) {
            return dkv_error_set(DKV_ECORRUPT, "store state is missing");
        }
        return dkv_eng_mdb_fail(NULL, rc, "reading the store state");
    }
    if (v.mv_size != STATE_SIZE) {
        return dkv_error_set(DKV_ECORRUPT,
                             "store state is %zu bytes",
                             v.mv_size);
    }
    p = v.mv_data;
    s->revision = dkv_get_be64(p);
    s->applied = dkv_get_be64(p + 8);
    s->compact = dkv_get_be64(p + 16);
    s->next_lease = dkv_get_be64(p + 24);
    return DKV_OK;
}

static void read_release(dkv_engine_t *engine);

/* ========================================================== lifecycle */

static apr_status_t
engine_cleanup(void *data)
{
    dkv_engine_t *engine = data;
    dkv_eng_read_t *r;
    size_t i;

    for (i = 0; i < DKV_ENG_READ_SLOTS; i++) {
        r = apr_atomic_xchgptr(&engine->read_slots[i], NULL);
        if (r) {
            r->next = engine->free_reads;
            engine->free_reads = r;
        }
    }
    for (r = engine->free_reads; r; r = r->next) {
        if (r->txn) {
            mdb_txn_abort(r->txn);
            r->txn = NULL;
        }
    }
    engine->free_reads = NULL;
    if (engine->env) {
        mdb_env_close(engine->env);
        engine->env = NULL;
    }
    return APR_SUCCESS;
}

/* Opens database NAME with FLAGS (plus MDB_CREATE) into *DBI. */
static dkv_status_t
open_db(MDB_dbi *dbi, MDB_txn *txn, const char *name, unsigned flags)
{
    int rc = mdb_dbi_open(txn, name, flags | MDB_CREATE, dbi);

    if (rc != 0) {
        dkv_status_t st = dkv_status_from_mdb(rc);

        if (rc == MDB_INCOMPATIBLE) {
            st = DKV_ECORRUPT;
        }
        return dkv_error_set(st, "opening database %s: %s", name,
                             mdb_strerror(rc));
    }
    return DKV_OK;
}

/* Opens every database and checks (or writes) the format, in TXN. */
static dkv_status_t
open_dbs(dkv_engine_t *engine, MDB_txn *txn)
{
    MDB_val v;
    MDB_dbi main_dbi;
    MDB_stat st;
    dkv_status_t s;
    int rc;

    rc = mdb_dbi_open(txn, "meta", 0, &engine->meta);
    if (rc == MDB_NOTFOUND) {
        /* A new store, unless the environment holds something else. */
        if ((rc = mdb_dbi_open(txn, NULL, 0, &main_dbi)) != 0
            || (rc = mdb_stat(txn, main_dbi, &st)) != 0) {
            return dkv_eng_mdb_fail(NULL, rc, "opening the store");
        }
        if (st.ms_entries != 0) {
            return dkv_error_set(DKV_ECORRUPT,
                                 "the LMDB environment is not a dkv store");
        }
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &engine->meta);
    }
    if (rc != 0) {
        return dkv_error_set(rc == MDB_INCOMPATIBLE ? DKV_ECORRUPT
                                                    : dkv_status_from_mdb(rc),
                             "opening database meta: %s", mdb_strerror(rc));
    }
    if ((rc = mdb_dbi_open(txn, NULL, 0, &engine->kv)) != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "opening the main database");
    }
    if ((s = open_db(&engine->hist, txn, "hist", 0)) != DKV_OK
        || (s = open_db(&engine->expiry, txn, "expiry", MDB_DUPSORT))
           != DKV_OK
        || (s = open_db(&engine->leases, txn, "leases", 0)) != DKV_OK
        || (s = open_db(&engine->lease_att, txn, "lease_att", MDB_DUPSORT))
           != DKV_OK
        || (s = open_db(&engine->locks, txn, "locks", 0)) != DKV_OK) {
        return s;
    }

    rc = mdb_get(txn, engine->meta, (MDB_val *)&meta_format, &v);
    if (rc == MDB_NOTFOUND) {
        unsigned char fmt[4], state[STATE_SIZE];
        dkv_eng_state_t init = { 0, 0, 1, 1 };
        MDB_val fv = { sizeof(fmt), fmt }, sv = { sizeof(state), state };

        dkv_put_be32(fmt, DKV_ENG_FORMAT);
        state_encode(state, &init);
        if ((rc = mdb_put(txn, engine->meta, (MDB_val *)&meta_format, &fv,
                          0)) != 0
            || (rc = mdb_put(txn, engine->meta, (MDB_val *)&meta_state, &sv,
                             0)) != 0) {
            return dkv_eng_mdb_fail(NULL, rc, "initializing the store");
        }
    } else if (rc != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "reading the store format");
    } else if (v.mv_size != 4
               || dkv_get_be32(v.mv_data) != DKV_ENG_FORMAT) {
        return dkv_error_set(DKV_ECORRUPT,
                             "unknown store format (this is format %d)",
                             DKV_ENG_FORMAT);
    } else {
        dkv_eng_state_t check;

        if ((s = state_load(&check, engine, txn)) != DKV_OK) {
            return s;
        }
    }
    if ((s = dkv_eng_search_init(&engine->search, txn, engine->pool))
        != DKV_OK) {
        return s;
    }
    return dkv_eng_repl_open(engine, txn);
}

dkv_status_t
dkv_engine_open(dkv_engine_t **engine, const char *dir,
                const dkv_engine_opts_t *opts, apr_pool_t *pool)
{
    dkv_engine_opts_t o = { 0, 0, 0, 0 };
    dkv_engine_t *e;
    apr_pool_t *p;
    MDB_txn *txn;
    apr_status_t as;
    dkv_status_t s;
    int rc;

    if (engine == NULL || dir == NULL || pool == NULL) {
        return dkv_error_set(DKV_EINVAL, "engine open: NULL argument");
    }
    if (opts) {
        o = *opts;
    }
    if (o.max_value > DKV_LIMIT_MAX_VALUE) {
        return dkv_error_set(DKV_EINVAL,
                             "max_value %zu"
                             " is over the limit %u",
                             o.max_value, DKV_LIMIT_MAX_VALUE);
    }
    if ((as = apr_pool_create(&p, pool)) != APR_SUCCESS) {
        return as;
    }
    e = apr_pcalloc(p, sizeof(*e));
    e->pool = p;
    e->max_value = o.max_value ? o.max_value : DKV_DEFAULT_MAX_VALUE;
    e->history_retain = o.history_retain ? o.history_retain
                                         : DEFAULT_RETAIN;
    if ((as = apr_thread_mutex_create(&e->mutex, APR_THREAD_MUTEX_DEFAULT,
                                      p)) != APR_SUCCESS) {
        apr_pool_destroy(p);
        return dkv_error_set(as, "engine open: cannot make a mutex");
    }
    if ((rc = mdb_env_create(&e->env)) != 0) {
        apr_pool_destroy(p);
        return dkv_eng_mdb_fail(NULL, rc, "engine open");
    }
    apr_pool_cleanup_register(p, e, engine_cleanup, apr_pool_cleanup_null);
    if ((rc = mdb_env_set_maxdbs(e->env, 16)) != 0
        || (rc = mdb_env_set_mapsize(e->env, (size_t)(o.map_size
                                                      ? o.map_size
                                                      : DEFAULT_MAP_SIZE)))
           != 0
        || (rc = mdb_env_open(e->env, dir,
                              MDB_NOTLS | (o.no_sync ? MDB_NOSYNC : 0),
                              0644)) != 0) {
        s = dkv_status_from_mdb(rc);
        dkv_error_set(s, "opening the store in %s: %s", dir,
                      mdb_strerror(rc));
        apr_pool_destroy(p);
        return s;
    }
    if ((rc = mdb_txn_begin(e->env, NULL, 0, &txn)) != 0) {
        s = dkv_eng_mdb_fail(NULL, rc, "engine open");
        apr_pool_destroy(p);
        return s;
    }
    if ((s = open_dbs(e, txn)) != DKV_OK) {
        mdb_txn_abort(txn);
        apr_pool_destroy(p);
        return s;
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        s = dkv_eng_mdb_fail(NULL, rc, "engine open");
        apr_pool_destroy(p);
        return s;
    }
    *engine = e;
    return DKV_OK;
}

void
dkv_engine_close(dkv_engine_t *engine)
{
    if (engine) {
        apr_pool_destroy(engine->pool);
    }
}

size_t
dkv_engine_max_value(const dkv_engine_t *engine)
{
    return engine->max_value;
}

/* ============================================================= writes */

dkv_status_t
dkv_engine_write_begin(dkv_eng_write_t **write, dkv_engine_t *engine,
                       int64_t now, apr_pool_t *pool)
{
    dkv_eng_write_t *w;
    dkv_status_t s;
    int rc;

    w = apr_pcalloc(pool, sizeof(*w));
    w->engine = engine;
    w->now = now;
    w->pool = pool;
    if ((rc = mdb_txn_begin(engine->env, NULL, 0, &w->top)) != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "beginning a write");
    }
    read_release(engine);
    w->txn = w->top;
    if ((s = state_load(&w->state, engine, w->top)) != DKV_OK) {
        mdb_txn_abort(w->top);
        return s;
    }
    w->base_revision = w->state.revision;
    w->base_lease = w->state.next_lease;
    *write = w;
    return DKV_OK;
}

/* Deletes history entries older than the retention, a bounded number per
 * commit so a large backlog is spread over several commits. */
static dkv_status_t
trim_history(dkv_eng_write_t *w)
{
    dkv_engine_t *e = w->engine;
    uint64_t target, budget;
    MDB_cursor *c;
    MDB_val k, v;
    int rc;

    if (w->state.revision <= e->history_retain) {
        return DKV_OK;
    }
    target = w->state.revision - e->history_retain + 1;
    if (target <= w->state.compact) {
        return DKV_OK;
    }
    budget = 2 * (w->state.revision - w->base_revision) + 128;
    if ((rc = mdb_cursor_open(w->top, e->hist, &c)) != 0) {
        return dkv_eng_mdb_fail(w, rc, "trimming history");
    }
    w->state.compact = target;
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
        uint64_t rev;

        if (k.mv_size != 8) {
            mdb_cursor_close(c);
            return dkv_eng_fail(w, dkv_error_set(DKV_ECORRUPT,
                                                 "bad history key"));
        }
        rev = dkv_get_be64(k.mv_data);
        if (rev >= target) {
            break;
        }
        if (budget-- == 0) {
            w->state.compact = rev;
            break;
        }
        if ((rc = mdb_cursor_del(c, 0)) != 0) {
            break;
        }
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return dkv_eng_mdb_fail(w, rc, "trimming history");
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_write_commit(dkv_eng_write_t *write, uint64_t applied_index)
{
    dkv_engine_t *e = write->engine;
    dkv_status_t s;
    size_t txnid;
    int rc, changed;

    assert(!write->ended && write->txn == write->top);
    if (write->status != DKV_OK) {
        s = write->status;
        dkv_engine_write_abort(write);
        return s;
    }
    if (applied_index) {
        write->state.applied = applied_index;
    }
    changed = write->state.revision != write->base_revision
              || applied_index || write->state.next_lease != write->base_lease
              || write->loaded;
    if (changed) {
        unsigned char buf[STATE_SIZE];
        MDB_val v = { sizeof(buf), buf };

        if ((s = trim_history(write)) != DKV_OK) {
            dkv_engine_write_abort(write);
            return s;
        }
        state_encode(buf, &write->state);
        rc = mdb_put(write->top, e->meta, (MDB_val *)&meta_state, &v, 0);
        if (rc != 0) {
            s = dkv_eng_mdb_fail(write, rc, "writing the store state");
            dkv_engine_write_abort(write);
            return s;
        }
    }
    txnid = mdb_txn_id(write->top);
    write->ended = 1;
    write->kv_cur = write->hist_cur = NULL;
    rc = mdb_txn_commit(write->top);
    write->top = write->txn = NULL;
    if (rc != 0) {
        return dkv_eng_mdb_fail(write, rc, "committing");
    }
    /* Only a commit that wrote the state publishes it.  LMDB does not use
     * up the id of a write that changed nothing (dkv-node commits a
     * context whose requests all failed): publishing its id would hand the
     * NEXT commit's id, briefly, an outdated state. */
    if (changed) {
        apr_thread_mutex_lock(e->mutex);
        if (txnid > e->snap_txnid) {
            e->snap_txnid = txnid;
            e->snap = write->state;
        }
        apr_thread_mutex_unlock(e->mutex);
    }
    return DKV_OK;
}

void
dkv_engine_write_abort(dkv_eng_write_t *write)
{
    if (write == NULL || write->ended) {
        return;
    }
    assert(write->txn == write->top);
    write->ended = 1;
    write->kv_cur = write->hist_cur = NULL;
    mdb_txn_abort(write->top);
    write->top = write->txn = NULL;
    write->nevents = 0;
    write->state.revision = write->base_revision;
}

const dkv_event_t *
dkv_engine_write_events(const dkv_eng_write_t *write, size_t *count)
{
    *count = write->nevents;
    return write->events;
}

uint64_t
dkv_engine_write_revision(const dkv_eng_write_t *write)
{
    return write->state.revision;
}

dkv_status_t
dkv_eng_cursor(MDB_cursor **c, dkv_eng_write_t *w, MDB_cursor **slot,
               MDB_dbi dbi)
{
    int rc;

    if (*slot == NULL && (rc = mdb_cursor_open(w->txn, dbi, slot)) != 0) {
        *slot = NULL;
        return dkv_eng_mdb_fail(w, rc, "opening a cursor");
    }
    *c = *slot;
    return DKV_OK;
}

dkv_status_t
dkv_eng_add_event(dkv_eng_write_t *w, dkv_event_type_t type,
                  const void *key, size_t key_len, const void *value,
                  size_t value_len, uint64_t revision, uint64_t version)
{
    dkv_event_t *ev;
    unsigned char kb[8], *p;
    char *copy;
    MDB_cursor *c = NULL;
    MDB_val k = { 8, kb }, v;
    dkv_status_t s;
    int rc;

    assert(key_len <= DKV_MAX_KEY);
    if ((s = dkv_eng_cursor(&c, w, &w->hist_cur, w->engine->hist))
        != DKV_OK) {
        return s;
    }
    dkv_put_be64(kb, revision);
    v.mv_size = HIST_HEAD + key_len + value_len;
    rc = mdb_cursor_put(c, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc != 0) {
        return dkv_eng_mdb_fail(w, rc, "writing history");
    }
    p = v.mv_data;
    p[0] = (unsigned char)type;
    p[1] = 0;
    p[2] = (unsigned char)(key_len >> 8);
    p[3] = (unsigned char)key_len;
    dkv_put_be64(p + 4, version);
    memcpy(p + HIST_HEAD, key, key_len);
    if (value_len) {
        memcpy(p + HIST_HEAD + key_len, value, value_len);
    }

    if (w->nevents == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 16;
        dkv_event_t *grown = apr_palloc(w->pool, cap * sizeof(*grown));

        if (w->nevents) {
            memcpy(grown, w->events, w->nevents * sizeof(*grown));
        }
        w->events = grown;
        w->cap = cap;
    }
    copy = apr_palloc(w->pool, key_len + value_len + 1);
    memcpy(copy, key, key_len);
    if (value_len) {
        memcpy(copy + key_len, value, value_len);
    }
    copy[key_len + value_len] = '\0';
    ev = &w->events[w->nevents++];
    memset(ev, 0, sizeof(*ev));
    ev->type = type;
    ev->key = copy;
    ev->key_len = key_len;
    ev->value = type == DKV_EVENT_PUT ? copy + key_len : NULL;
    ev->value_len = type == DKV_EVENT_PUT ? value_len : 0;
    ev->revision = revision;
    ev->version = version;
    return DKV_OK;
}

/* ============================================================== reads */

/* Takes an ended (or new) read context: from a slot without locking,
 * else from the free list, else a new one. */
static dkv_eng_read_t *
read_take(dkv_engine_t *engine)
{
    dkv_eng_read_t *r;
    size_t i;

    for (i = 0; i < DKV_ENG_READ_SLOTS; i++) {
        if ((r = apr_atomic_xchgptr(&engine->read_slots[i], NULL))
            != NULL) {
            return r;
        }
    }
    apr_thread_mutex_lock(engine->mutex);
    r = engine->free_reads;
    if (r) {
        engine->free_reads = r->next;
    } else {
        r = apr_pcalloc(engine->pool, sizeof(*r));
        r->engine = engine;
    }
    apr_thread_mutex_unlock(engine->mutex);
    return r;
}

/* Gives back the ended read context R: to a free slot (as it is), else
 * reset to the free list. */
static void
read_give(dkv_engine_t *engine, dkv_eng_read_t *r)
{
    size_t i;

    for (i = 0; i < DKV_ENG_READ_SLOTS; i++) {
        if (apr_atomic_casptr(&engine->read_slots[i], r, NULL) == NULL) {
            return;
        }
    }
    if (r->live) {
        mdb_txn_reset(r->txn);
        r->live = 0;
    }
    apr_thread_mutex_lock(engine->mutex);
    r->next = engine->free_reads;
    engine->free_reads = r;
    apr_thread_mutex_unlock(engine->mutex);
}

/* Resets the live read contexts waiting in the slots, at the start of a
 * write: an open read transaction keeps LMDB from reusing the pages freed
 * by its snapshot's commit and later ones, which the write may need. */
static void
read_release(dkv_engine_t *engine)
{
    dkv_eng_read_t *r;
    size_t i;

    for (i = 0; i < DKV_ENG_READ_SLOTS; i++) {
        if ((r = apr_atomic_xchgptr(&engine->read_slots[i], NULL))
            != NULL) {
            if (r->live) {
                mdb_txn_reset(r->txn);
                r->live = 0;
            }
            read_give(engine, r);
        }
    }
}

/* 1 when the live read context R's snapshot is the last commit's. */
static int
read_current(dkv_engine_t *engine, const dkv_eng_read_t *r)
{
    MDB_envinfo info;

    return mdb_env_info(engine->env, &info) == 0
           && info.me_last_txnid == r->state_txnid;
}

dkv_status_t
dkv_engine_read_begin(dkv_eng_read_t **read, dkv_engine_t *engine,
                      int64_t now)
{
    dkv_eng_read_t *r = read_take(engine);
    size_t txnid;
    dkv_status_t s;
    int rc;

    if (r->live) {
        /* Ended but not reset: reusable as it is while no commit has
         * followed (a commit racing with this begin may be seen or not,
         * as with any read that begins while a write commits). */
        r->live = 0;
        if (read_current(engine, r)) {
            r->now = now;
            *read = r;
            return DKV_OK;
        }
        mdb_txn_reset(r->txn);
    }
    rc = r->txn ? mdb_txn_renew(r->txn)
                : mdb_txn_begin(engine->env, NULL, MDB_RDONLY, &r->txn);
    if (rc != 0) {
        if (r->txn) {
            mdb_txn_abort(r->txn);
            r->txn = NULL;
        }
        s = dkv_eng_mdb_fail(NULL, rc, "beginning a read");
        goto recycle;
    }
    r->now = now;
    /* The state of the snapshot: the context's own copy when it is still
     * the same snapshot, else the last commit's, else read it. */
    txnid = mdb_txn_id(r->txn);
    if (txnid != r->state_txnid) {
        int cached = 0;

        apr_thread_mutex_lock(engine->mutex);
        if (engine->snap_txnid != 0 && txnid == engine->snap_txnid) {
            r->state = engine->snap;
            cached = 1;
        }
        apr_thread_mutex_unlock(engine->mutex);
        r->state_txnid = 0;
        if (!cached
            && (s = state_load(&r->state, engine, r->txn)) != DKV_OK) {
            mdb_txn_reset(r->txn);
            goto recycle;
        }
        r->state_txnid = txnid;
    }
    *read = r;
    return DKV_OK;

recycle:
    read_give(engine, r);
    return s;
}

void
dkv_engine_read_end(dkv_eng_read_t *read)
{
    if (read == NULL) {
        return;
    }
    /* Left open: the next read_begin reuses the snapshot if no commit
     * came in between (the next write_begin resets it). */
    read->live = 1;
    read_give(read->engine, read);
}

uint64_t
dkv_engine_read_revision(const dkv_eng_read_t *read)
{
    return read->state.revision;
}

uint64_t
dkv_engine_history_oldest(const dkv_eng_read_t *read)
{
    return read->state.compact ? read->state.compact : 1;
}

uint64_t
dkv_engine_applied_index(dkv_eng_read_t *read)
{
    return read->state.applied;
}

dkv_status_t
dkv_engine_history(dkv_eng_read_t *read, uint64_t from, const void *key,
                   size_t key_len, int prefix, dkv_eng_event_fn *fn,
                   void *baton)
{
    dkv_engine_t *e = read->engine;
    uint64_t oldest = dkv_engine_history_oldest(read);
    unsigned char kb[8];
    MDB_cursor *c;
    MDB_val k = { 8, kb }, v;
    dkv_status_t s = DKV_OK;
    MDB_cursor_op op = MDB_SET_RANGE;
    int rc;

    if (fn == NULL || (key == NULL && key_len)) {
        return dkv_error_set(DKV_EINVAL, "history: NULL argument");
    }
    if (from == 0) {
        from = oldest;
    }
    if (from < oldest) {
        return dkv_error_set(DKV_ECOMPACTED,
                             "history from revision %llu is compacted; "
                             "the oldest retained is %llu",
                             (unsigned long long)from,
                             (unsigned long long)oldest);
    }
    if (from > read->state.revision) {
        return DKV_OK;
    }
    if ((rc = mdb_cursor_open(read->txn, e->hist, &c)) != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "reading history");
    }
    dkv_put_be64(kb, from);
    while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
        const unsigned char *p = v.mv_data;
        dkv_event_t ev;
        size_t klen;

        op = MDB_NEXT;
        if (k.mv_size != 8 || v.mv_size < HIST_HEAD) {
            s = dkv_error_set(DKV_ECORRUPT, "damaged history entry");
            break;
        }
        memset(&ev, 0, sizeof(ev));
        ev.revision = dkv_get_be64(k.mv_data);
        if (ev.revision > read->state.revision) {
            break;
        }
        klen = ((size_t)p[2] << 8) | p[3];
        if (klen == 0 || klen > DKV_MAX_KEY
            || klen > v.mv_size - HIST_HEAD
            || (p[0] != DKV_EVENT_PUT && p[0] != DKV_EVENT_DELETE)) {
            s = dkv_error_set(DKV_ECORRUPT, "damaged history entry at "
                              "revision %llu",
                              (unsigned long long)ev.revision);
            break;
        }
        ev.type = (dkv_event_type_t)p[0];
        ev.key = p + HIST_HEAD;
        ev.key_len = klen;
        if (prefix ? (klen < key_len
                      || (key_len > 0 && memcmp(ev.key, key, key_len) != 0))
                   : (klen != key_len || memcmp(ev.key, key, klen) != 0)) {
            continue;
        }
        ev.version = dkv_get_be64(p + 4);
        if (ev.type == DKV_EVENT_PUT) {
            ev.value = p + HIST_HEAD + klen;
            ev.value_len = v.mv_size - HIST_HEAD - klen;
        }
        if ((s = fn(baton, &ev)) != DKV_OK) {
            break;
        }
    }
    mdb_cursor_close(c);
    if (s == DKV_OK && rc != 0 && rc != MDB_NOTFOUND) {
        s = dkv_eng_mdb_fail(NULL, rc, "reading history");
    }
    return s;
}

int64_t
dkv_engine_next_expiry(dkv_eng_read_t *read)
{
    MDB_cursor *c;
    MDB_val k, v;
    int64_t at = 0;

    if (mdb_cursor_open(read->txn, read->engine->expiry, &c) != 0) {
        return 0;
    }
    if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && k.mv_size == 9) {
        at = dkv_get_be64s(k.mv_data);
    }
    mdb_cursor_close(c);
    return at;
}
