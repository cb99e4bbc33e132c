/*
 * repl.c -- what replication needs from the engine: the Raft log and the
 * replica's metadata in databases of their own ("raftlog", "replica"), in
 * the store's LMDB environment so that one write context can append log
 * entries, store the hard state, apply committed entries and store the
 * applied index in one transaction; and the dump and load of the store's
 * state (every state database, not the log or the replica metadata) as a
 * stream of self-delimiting records, for Raft snapshots.
 *
 * docs/internals/engine.md ("Replication databases", "Dump and load")
 * describes the databases and the record format; the replica
 * (src/node/replica.c) is the caller.
 */
#include <stddef.h>
#include <string.h>

#include "common/codec.h"
#include "common/status.h"
#include "engine/engine-int.h"

/* A dump record: u8 database, be32 key length, key, be32 value length,
 * value. */
#define REC_HEAD 9

/* Database ids of the dump records. */
enum {
    DB_HEADER = 0,      /* first record: "dkv-dump" -> be32 dump version,
                         * be32 engine format */
    DB_STATE = 1,       /* "state" -> be64 revision, compact, next lease */
    DB_KV = 2,          /* user key -> record */
    DB_HIST = 3,
    DB_EXPIRY = 4,
    DB_LEASES = 5,
    DB_LEASE_ATT = 6,
    DB_LOCKS = 7,
    DB_SRCH_ENTITY = 8,
    DB_SRCH_LABEL = 9,
    DB_COUNT = 10
};

#define DUMP_VERSION 1
#define DUMP_MAGIC "dkv-dump"
#define DUMP_MAGIC_LEN 8
#define STATE_NAME "state"
#define STATE_NAME_LEN 5
#define DUMP_STATE_SIZE 24

/* Phases of a load, in write->loaded. */
#define LOAD_BEGUN 1        /* emptied; the header comes next */
#define LOAD_RECORDS 2      /* header seen */

/* The handle of dump database ID (DB_HIST .. DB_SRCH_LABEL, DB_KV). */
static MDB_dbi
db_handle(const dkv_engine_t *e, int id)
{
    switch (id) {
    case DB_KV:
        return e->kv;
    case DB_HIST:
        return e->hist;
    case DB_EXPIRY:
        return e->expiry;
    case DB_LEASES:
        return e->leases;
    case DB_LEASE_ATT:
        return e->lease_att;
    case DB_LOCKS:
        return e->locks;
    case DB_SRCH_ENTITY:
        return e->srch_entity;
    default:
        return e->srch_label;
    }
}

/* 1 for the databases with sorted duplicates. */
static int
db_dupsort(int id)
{
    return id == DB_EXPIRY || id == DB_LEASE_ATT || id == DB_SRCH_ENTITY
           || id == DB_SRCH_LABEL;
}

/* The status of a write operation's start: WRITE's poison, or DKV_EINVAL
 * for a context that has ended or is inside a nested transaction. */
static dkv_status_t
write_usable(dkv_eng_write_t *w, const char *op)
{
    if (w == NULL) {
        return dkv_error_set(DKV_EINVAL, "%s: NULL write context", op);
    }
    if (w->status != DKV_OK) {
        return w->status;
    }
    if (w->ended || w->txn != w->top) {
        return dkv_error_set(DKV_EINVAL, "%s: the write context is not "
                             "usable here", op);
    }
    return DKV_OK;
}

dkv_status_t
dkv_eng_repl_open(dkv_engine_t *engine, MDB_txn *txn)
{
    struct {
        const char *name;
        unsigned flags;
        MDB_dbi *dbi;
    } dbs[4];
    size_t i;
    int rc;

    dbs[0].name = "raftlog";
    dbs[0].flags = 0;
    dbs[0].dbi = &engine->raftlog;
    dbs[1].name = "replica";
    dbs[1].flags = 0;
    dbs[1].dbi = &engine->replica;
    dbs[2].name = "search.entity";
    dbs[2].flags = MDB_DUPSORT;
    dbs[2].dbi = &engine->srch_entity;
    dbs[3].name = "search.label";
    dbs[3].flags = MDB_DUPSORT;
    dbs[3].dbi = &engine->srch_label;
    for (i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        MDB_dbi *dbi = dbs[i].dbi;

        rc = mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | MDB_CREATE, dbi);
        if (rc != 0) {
            return dkv_error_set(rc == MDB_INCOMPATIBLE
                                 ? DKV_ECORRUPT : dkv_status_from_mdb(rc),
                                 "opening database %s: %s", dbs[i].name,
                                 mdb_strerror(rc));
        }
    }
    return DKV_OK;
}

void
dkv_engine_write_set_now(dkv_eng_write_t *write, int64_t now)
{
    write->now = now;
}

/* ================================================================ log */

dkv_status_t
dkv_engine_log_put(dkv_eng_write_t *write, uint64_t index, const void *data,
                   size_t len)
{
    unsigned char kb[8];
    MDB_val k = { sizeof(kb), kb }, v;
    dkv_status_t s;
    int rc;

    if ((s = write_usable(write, "log put")) != DKV_OK) {
        return s;
    }
    if (data == NULL && len) {
        return dkv_error_set(DKV_EINVAL, "log put: NULL data");
    }
    dkv_put_be64(kb, index);
    v.mv_size = len;
    v.mv_data = (void *)data;
    /* Entries usually come in index order: append without a search;
     * an entry replacing one or going before the last is put as usual. */
    rc = mdb_put(write->txn, write->engine->raftlog, &k, &v, MDB_APPEND);
    if (rc == MDB_KEYEXIST) {
        v.mv_size = len;
        v.mv_data = (void *)data;
        rc = mdb_put(write->txn, write->engine->raftlog, &k, &v, 0);
    }
    if (rc != 0) {
        return dkv_eng_mdb_fail(write, rc, "writing a log entry");
    }
    return DKV_OK;
}

/* Deletes the log entries with index >= FROM and <= UPTO. */
static dkv_status_t
log_delete(dkv_eng_write_t *w, uint64_t from, uint64_t upto,
           const char *what)
{
    unsigned char kb[8];
    MDB_cursor *c;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(w->txn, w->engine->raftlog, &c)) != 0) {
        return dkv_eng_mdb_fail(w, rc, what);
    }
    /* Everything goes: empty the database in one step. */
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    if (rc == 0 && k.mv_size == 8 && dkv_get_be64(k.mv_data) >= from) {
        rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
        if (rc == 0 && k.mv_size == 8 && dkv_get_be64(k.mv_data) <= upto) {
            mdb_cursor_close(c);
            if ((rc = mdb_drop(w->txn, w->engine->raftlog, 0)) != 0) {
                return dkv_eng_mdb_fail(w, rc, what);
            }
            return DKV_OK;
        }
    }
    /* Else seek the first entry in range again after each delete. */
    while (rc == 0) {
        uint64_t index;

        k.mv_size = sizeof(kb);
        k.mv_data = kb;
        dkv_put_be64(kb, from);
        if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) != 0) {
            break;
        }
        if (k.mv_size != 8) {
            mdb_cursor_close(c);
            return dkv_eng_fail(w, dkv_error_set(DKV_ECORRUPT,
                                                 "%s: bad log key", what));
        }
        index = dkv_get_be64(k.mv_data);
        if (index > upto) {
            break;
        }
        rc = mdb_cursor_del(c, 0);
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return dkv_eng_mdb_fail(w, rc, what);
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_log_truncate(dkv_eng_write_t *write, uint64_t from)
{
    dkv_status_t s;

    if ((s = write_usable(write, "log truncate")) != DKV_OK) {
        return s;
    }
    return log_delete(write, from, UINT64_MAX, "truncating the log");
}

dkv_status_t
dkv_engine_log_compact(dkv_eng_write_t *write, uint64_t upto)
{
    dkv_status_t s;

    if ((s = write_usable(write, "log compact")) != DKV_OK) {
        return s;
    }
    return log_delete(write, 0, upto, "compacting the log");
}

dkv_status_t
dkv_engine_log_scan(dkv_eng_read_t *read, uint64_t from, dkv_eng_log_fn *fn,
                    void *baton)
{
    unsigned char kb[8];
    MDB_cursor *c;
    MDB_val k = { sizeof(kb), kb }, v;
    MDB_cursor_op op = MDB_SET_RANGE;
    dkv_status_t s = DKV_OK;
    int rc;

    if (read == NULL || fn == NULL) {
        return dkv_error_set(DKV_EINVAL, "log scan: NULL argument");
    }
    if ((rc = mdb_cursor_open(read->txn, read->engine->raftlog, &c)) != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "reading the log");
    }
    dkv_put_be64(kb, from);
    while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if (k.mv_size != 8) {
            s = dkv_error_set(DKV_ECORRUPT, "reading the log: bad key");
            break;
        }
        if ((s = fn(baton, dkv_get_be64(k.mv_data),
                    v.mv_size ? v.mv_data : "", v.mv_size)) != DKV_OK) {
            break;
        }
    }
    mdb_cursor_close(c);
    if (s == DKV_OK && rc != 0 && rc != MDB_NOTFOUND) {
        s = dkv_eng_mdb_fail(NULL, rc, "reading the log");
    }
    return s;
}

/* ======================================================= replica meta */

/* Checks a metadata name: 1..LMDB's key limit bytes. */
static dkv_status_t
meta_name(MDB_val *k, const dkv_engine_t *e, const char *name,
          const char *op)
{
    size_t len = name ? strlen(name) : 0;

    if (len == 0 || len > (size_t)mdb_env_get_maxkeysize(e->env)) {
        return dkv_error_set(DKV_EINVAL, "%s: bad name", op);
    }
    k->mv_size = len;
    k->mv_data = (void *)name;
    return DKV_OK;
}

dkv_status_t
dkv_engine_meta_put(dkv_eng_write_t *write, const char *name,
                    const void *data, size_t len)
{
    MDB_val k, v;
    dkv_status_t s;
    int rc;

    if ((s = write_usable(write, "meta put")) != DKV_OK
        || (s = meta_name(&k, write->engine, name, "meta put")) != DKV_OK) {
        return s;
    }
    if (data == NULL && len) {
        return dkv_error_set(DKV_EINVAL, "meta put: NULL data");
    }
    v.mv_size = len;
    v.mv_data = (void *)data;
    if ((rc = mdb_put(write->txn, write->engine->replica, &k, &v, 0)) != 0) {
        return dkv_eng_mdb_fail(write, rc, "writing replica metadata");
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_meta_get(const void **data, size_t *len, dkv_eng_read_t *read,
                    const char *name)
{
    MDB_val k, v;
    dkv_status_t s;
    int rc;

    if (data == NULL || len == NULL || read == NULL) {
        return dkv_error_set(DKV_EINVAL, "meta get: NULL argument");
    }
    if ((s = meta_name(&k, read->engine, name, "meta get")) != DKV_OK) {
        return s;
    }
    rc = mdb_get(read->txn, read->engine->replica, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return dkv_error_set(DKV_ENOTFOUND, "no replica metadata %s", name);
    }
    if (rc != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "reading replica metadata");
    }
    *data = v.mv_data;
    *len = v.mv_size;
    return DKV_OK;
}

/* =============================================================== dump */

typedef struct dump_ctx {
    dkv_eng_dump_fn *fn;
    void *baton;
    unsigned char *buf;
    size_t cap;
} dump_ctx_t;

/* Hands one record (database ID, KEY, VALUE) to the dump's callback. */
static dkv_status_t
dump_emit(dump_ctx_t *d, int id, const void *key, size_t key_len,
          const void *val, size_t val_len)
{
    size_t need = REC_HEAD + key_len + val_len;
    unsigned char *p;

    if (key_len > UINT32_MAX || val_len > UINT32_MAX
        || need < val_len) {
        return dkv_error_set(DKV_ECORRUPT, "dump: an item is too large");
    }
    if (need > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;

        while (cap < need) {
            cap = cap > SIZE_MAX / 2 ? need : 2 * cap;
        }
        if ((p = dkv_realloc(d->buf, cap)) == NULL) {
            return dkv_error_set(APR_ENOMEM, "dump: out of memory");
        }
        d->buf = p;
        d->cap = cap;
    }
    p = d->buf;
    p[0] = (unsigned char)id;
    dkv_put_be32(p + 1, (uint32_t)key_len);
    if (key_len) {
        memcpy(p + 5, key, key_len);
    }
    dkv_put_be32(p + 5 + key_len, (uint32_t)val_len);
    if (val_len) {
        memcpy(p + REC_HEAD + key_len, val, val_len);
    }
    return d->fn(d->baton, p, need);
}

/* Dumps every item of database ID (for DB_KV: the records only, without
 * their tag). */
static dkv_status_t
dump_db(dump_ctx_t *d, dkv_eng_read_t *r, int id)
{
    unsigned char tag = DKV_KV_TAG;
    MDB_cursor *c;
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST;
    dkv_status_t s = DKV_OK;
    int rc;

    if ((rc = mdb_cursor_open(r->txn, db_handle(r->engine, id), &c)) != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "dump");
    }
    if (id == DB_KV) {
        k.mv_size = 1;
        k.mv_data = &tag;
        op = MDB_SET_RANGE;
    }
    while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0) {
        const unsigned char *kp = k.mv_data;
        size_t klen = k.mv_size;

        op = MDB_NEXT;
        if (id == DB_KV) {
            if (klen < 2 || kp[0] != DKV_KV_TAG) {
                break;      /* past the records (there is nothing) */
            }
            kp++;
            klen--;
        }
        if ((s = dump_emit(d, id, kp, klen, v.mv_data, v.mv_size))
            != DKV_OK) {
            break;
        }
    }
    mdb_cursor_close(c);
    if (s == DKV_OK && rc != 0 && rc != MDB_NOTFOUND) {
        s = dkv_eng_mdb_fail(NULL, rc, "dump");
    }
    return s;
}

dkv_status_t
dkv_engine_dump(dkv_eng_read_t *read, dkv_eng_dump_fn *fn, void *baton)
{
    dump_ctx_t d;
    unsigned char head[8], state[DUMP_STATE_SIZE];
    dkv_status_t s;
    int id;

    if (read == NULL || fn == NULL) {
        return dkv_error_set(DKV_EINVAL, "dump: NULL argument");
    }
    memset(&d, 0, sizeof(d));
    d.fn = fn;
    d.baton = baton;
    dkv_put_be32(head, DUMP_VERSION);
    dkv_put_be32(head + 4, DKV_ENG_FORMAT);
    dkv_put_be64(state, read->state.revision);
    dkv_put_be64(state + 8, read->state.compact);
    dkv_put_be64(state + 16, read->state.next_lease);
    s = dump_emit(&d, DB_HEADER, DUMP_MAGIC, DUMP_MAGIC_LEN, head,
                  sizeof(head));
    if (s == DKV_OK) {
        s = dump_emit(&d, DB_STATE, STATE_NAME, STATE_NAME_LEN, state,
                      sizeof(state));
    }
    for (id = DB_KV; s == DKV_OK && id < DB_COUNT; id++) {
        s = dump_db(&d, read, id);
    }
    dkv_free(d.buf);
    return s;
}

/* =============================================================== load */

dkv_status_t
dkv_engine_load_begin(dkv_eng_write_t *write)
{
    dkv_engine_t *e;
    unsigned char tag = DKV_KV_TAG;
    MDB_cursor *c;
    MDB_val k, v;
    dkv_status_t s;
    int rc, id;

    if ((s = write_usable(write, "load")) != DKV_OK) {
        return s;
    }
    if (write->state.revision != write->base_revision
        || write->state.next_lease != write->base_lease
        || write->nevents != 0) {
        return dkv_error_set(DKV_EINVAL, "load: the write context has "
                             "changed the store already");
    }
    e = write->engine;
    /* The context's own cursors would point into emptied databases. */
    if (write->kv_cur) {
        mdb_cursor_close(write->kv_cur);
        write->kv_cur = NULL;
    }
    if (write->hist_cur) {
        mdb_cursor_close(write->hist_cur);
        write->hist_cur = NULL;
    }
    /* The records share the main database with the named databases'
     * records: delete them one by one (they come last). */
    if ((rc = mdb_cursor_open(write->txn, e->kv, &c)) != 0) {
        return dkv_eng_mdb_fail(write, rc, "load: emptying the store");
    }
    for (;;) {
        k.mv_size = 1;
        k.mv_data = &tag;
        if ((rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) != 0) {
            break;
        }
        if ((rc = mdb_cursor_del(c, 0)) != 0) {
            break;
        }
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) {
        return dkv_eng_mdb_fail(write, rc, "load: emptying the store");
    }
    for (id = DB_HIST; id < DB_COUNT; id++) {
        if ((rc = mdb_drop(write->txn, db_handle(e, id), 0)) != 0) {
            return dkv_eng_mdb_fail(write, rc, "load: emptying the store");
        }
    }
    /* A new store's state until the dump's state record says otherwise;
     * the applied index stays (the commit gives the snapshot's). */
    write->state.revision = 0;
    write->state.compact = 1;
    write->state.next_lease = 1;
    write->base_revision = 0;
    write->base_lease = 1;
    write->loaded = LOAD_BEGUN;
    return DKV_OK;
}

/* Poisons W with DKV_ECORRUPT for a malformed record. */
static dkv_status_t
load_bad(dkv_eng_write_t *w, const char *why)
{
    return dkv_eng_fail(w, dkv_error_set(DKV_ECORRUPT,
                                         "load: malformed record (%s)",
                                         why));
}

/* Checks the sizes of an item of database ID beyond LMDB's limits. */
static const char *
load_check(int id, const unsigned char *key, size_t klen,
           const unsigned char *val, size_t vlen)
{
    dkv_rec_t rec;

    switch (id) {
    case DB_KV:
        if (klen > DKV_MAX_KEY) {
            return "key too long";
        }
        if (dkv_rec_decode(&rec, val, vlen) != DKV_OK) {
            return "damaged key record";
        }
        return NULL;
    case DB_HIST:
        return klen != 8 || vlen < 12 ? "bad history entry" : NULL;
    case DB_EXPIRY:
        return klen != 9 || vlen == 0 ? "bad expiry entry" : NULL;
    case DB_LEASES:
        return klen != 8 || vlen != 16 ? "bad lease" : NULL;
    case DB_LEASE_ATT:
        return klen != 8 || vlen < 2 ? "bad lease attachment" : NULL;
    case DB_LOCKS:
        return klen > DKV_MAX_KEY || vlen != 16 ? "bad lock" : NULL;
    default:
        (void)key;
        return vlen == 0 ? "empty index entry" : NULL;
    }
}

dkv_status_t
dkv_engine_load_record(dkv_eng_write_t *write, const void *rec, size_t len)
{
    const unsigned char *p = rec;
    const unsigned char *key, *val;
    unsigned char kbuf[1 + DKV_MAX_KEY];
    size_t klen, vlen, maxkey;
    const char *why;
    MDB_val k, v;
    dkv_status_t s;
    int id, rc;

    if ((s = write_usable(write, "load")) != DKV_OK) {
        return s;
    }
    if (write->loaded == 0) {
        return dkv_error_set(DKV_EINVAL, "load: no load begun");
    }
    if (rec == NULL || len < REC_HEAD) {
        return load_bad(write, "short");
    }
    id = p[0];
    klen = dkv_get_be32(p + 1);
    if (klen > len - REC_HEAD) {
        return load_bad(write, "key length");
    }
    key = p + 5;
    vlen = dkv_get_be32(p + 5 + klen);
    if (vlen != len - REC_HEAD - klen) {
        return load_bad(write, "value length");
    }
    val = p + REC_HEAD + klen;

    if (write->loaded == LOAD_BEGUN) {
        if (id != DB_HEADER || klen != DUMP_MAGIC_LEN
            || memcmp(key, DUMP_MAGIC, DUMP_MAGIC_LEN) != 0 || vlen != 8) {
            return load_bad(write, "no dump header");
        }
        if (dkv_get_be32(val) != DUMP_VERSION
            || dkv_get_be32(val + 4) != DKV_ENG_FORMAT) {
            return load_bad(write, "unknown dump version or store format");
        }
        write->loaded = LOAD_RECORDS;
        return DKV_OK;
    }
    if (id == DB_STATE) {
        if (klen != STATE_NAME_LEN
            || memcmp(key, STATE_NAME, STATE_NAME_LEN) != 0
            || vlen != DUMP_STATE_SIZE) {
            return load_bad(write, "state");
        }
        write->state.revision = dkv_get_be64(val);
        write->state.compact = dkv_get_be64(val + 8);
        write->state.next_lease = dkv_get_be64(val + 16);
        if (write->state.compact == 0 || write->state.next_lease == 0) {
            return load_bad(write, "state values");
        }
        write->base_revision = write->state.revision;
        write->base_lease = write->state.next_lease;
        return DKV_OK;
    }
    if (id < DB_KV || id >= DB_COUNT) {
        return load_bad(write, "unknown database");
    }
    maxkey = (size_t)mdb_env_get_maxkeysize(write->engine->env);
    if (klen == 0 || klen > maxkey
        || (db_dupsort(id) && vlen > maxkey)) {
        return load_bad(write, "item size");
    }
    if ((why = load_check(id, key, klen, val, vlen)) != NULL) {
        return load_bad(write, why);
    }
    if (id == DB_KV) {
        kbuf[0] = DKV_KV_TAG;
        memcpy(kbuf + 1, key, klen);
        key = kbuf;
        klen++;
    }
    k.mv_size = klen;
    k.mv_data = (void *)key;
    v.mv_size = vlen;
    v.mv_data = (void *)val;
    if ((rc = mdb_put(write->txn, db_handle(write->engine, id), &k, &v, 0))
        != 0) {
        return dkv_eng_mdb_fail(write, rc, "load");
    }
    return DKV_OK;
}
