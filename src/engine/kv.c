/*
 * kv.c -- the key operations of the engine: put, delete, expire, refresh,
 * clear and transactions on the write side; get, scan, count and search
 * on the read side; and the record-level helpers coord.c shares (load,
 * liveness, settling expired keys, writing and removing a record with its
 * indexes and events).
 *
 * Every write operation follows the same order so a logical failure
 * leaves no trace: check the arguments, read the key and judge it at
 * `now` (an expired key, or one bound to an expired lease, counts as
 * absent), check the conditions and the lock, and only then change
 * anything -- first settling what expired (with its Delete events), then
 * the write itself.  Multi-step operations (transactions) run in a nested
 * LMDB transaction instead.
 */
#include <assert.h>
#include <string.h>

#include "common/codec.h"
#include "common/status.h"
#include "engine/engine-int.h"
#include "common/alloc.h"

#define SCAN_DEFAULT 1000
#define SCAN_MAX 10000

/* ---------------------------------------------------- record keys */

/* Records are kept in LMDB's main database under DKV_KV_TAG + user key
 * (engine-int.h): the helpers below add the tag on the way in and strip
 * it on the way out, so the rest of the engine sees user keys only. */

/* The record key of KEY (KEY_LEN <= DKV_MAX_KEY), built in BUF. */
static MDB_val
kv_key(unsigned char *buf, const void *key, size_t key_len)
{
    MDB_val k;

    assert(key_len <= DKV_MAX_KEY);
    buf[0] = DKV_KV_TAG;
    memcpy(buf + 1, key, key_len);
    k.mv_size = key_len + 1;
    k.mv_data = buf;
    return k;
}

/* mdb_cursor_get on the records: MDB_FIRST is the first record,
 * MDB_SET_RANGE takes a user key in *K (longer ones seek by their first
 * DKV_MAX_KEY bytes: no record lies between), and the key returned in
 * *K is the user key.  Past the last record it returns MDB_NOTFOUND. */
static int
kv_cursor_get(MDB_cursor *c, MDB_val *k, MDB_val *v, MDB_cursor_op op)
{
    unsigned char buf[1 + DKV_MAX_KEY];
    const unsigned char *p;
    int rc;

    if (op == MDB_FIRST) {
        buf[0] = DKV_KV_TAG;
        k->mv_size = 1;
        k->mv_data = buf;
        op = MDB_SET_RANGE;
    } else if (op == MDB_SET_RANGE) {
        *k = kv_key(buf, k->mv_data, k->mv_size < DKV_MAX_KEY
                                     ? k->mv_size : DKV_MAX_KEY);
    }
    if ((rc = mdb_cursor_get(c, k, v, op)) != 0) {
        return rc;
    }
    p = k->mv_data;
    if (k->mv_size < 2 || p[0] != DKV_KV_TAG) {
        return MDB_NOTFOUND;    /* a named database's record */
    }
    k->mv_data = (void *)(p + 1);
    k->mv_size--;
    return 0;
}

/* The first kv_cursor_get of a walk over RANGE (NULL: everything): sets
 * *K to its prefix or start and returns MDB_SET_RANGE, or returns
 * MDB_FIRST when the range starts at the first record. */
static MDB_cursor_op
range_seek(MDB_val *k, const dkv_range_t *range)
{
    if (range == NULL || (!range->prefix_len && !range->start_len)) {
        return MDB_FIRST;
    }
    k->mv_data = (void *)(range->prefix_len ? range->prefix : range->start);
    k->mv_size = range->prefix_len ? range->prefix_len : range->start_len;
    return MDB_SET_RANGE;
}

/* ==================================================== record helpers */

/* Loads KEY's record and its raw bytes. */
static dkv_status_t
load_raw(dkv_rec_t *rec, MDB_val *raw, dkv_engine_t *e, MDB_txn *txn,
         const void *key, size_t key_len)
{
    unsigned char buf[1 + DKV_MAX_KEY];
    MDB_val k;
    int rc;

    if (key_len > DKV_MAX_KEY) {
        return DKV_ENOTFOUND;   /* no record has such a key */
    }
    k = kv_key(buf, key, key_len);
    rc = mdb_get(txn, e->kv, &k, raw);
    if (rc == MDB_NOTFOUND) {
        return DKV_ENOTFOUND;
    }
    if (rc != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "reading a key");
    }
    return dkv_rec_decode(rec, raw->mv_data, raw->mv_size);
}

dkv_status_t
dkv_eng_load(dkv_rec_t *rec, dkv_engine_t *engine, MDB_txn *txn,
             const void *key, size_t key_len)
{
    MDB_val raw;

    return load_raw(rec, &raw, engine, txn, key, key_len);
}

dkv_status_t
dkv_eng_load_copy(dkv_rec_t *rec, dkv_eng_write_t *w, const void *key,
                  size_t key_len)
{
    MDB_val raw;
    void *copy;
    dkv_status_t s = load_raw(rec, &raw, w->engine, w->txn, key, key_len);

    if (s != DKV_OK) {
        return s == DKV_ENOTFOUND ? s : dkv_eng_fail(w, s);
    }
    copy = apr_pmemdup(w->pool, raw.mv_data, raw.mv_size);
    return dkv_rec_decode(rec, copy, raw.mv_size);
}

int
dkv_eng_live(dkv_engine_t *engine, MDB_txn *txn, const dkv_rec_t *rec,
             int64_t now, int *lease_gone, dkv_status_t *status)
{
    int64_t lease_exp;
    dkv_status_t s;

    *status = DKV_OK;
    if (lease_gone) {
        *lease_gone = 0;
    }
    if (rec->expires_at && rec->expires_at <= now) {
        return 0;
    }
    if (rec->lease == 0) {
        return 1;
    }
    s = dkv_eng_lease_get(NULL, &lease_exp, engine, txn, rec->lease);
    if (s == DKV_OK && lease_exp > now) {
        return 1;
    }
    if (s != DKV_OK && s != DKV_ENOTFOUND) {
        *status = s;
    }
    if (lease_gone) {
        *lease_gone = 1;
    }
    return 0;
}

/* Loads KEY in WRITE and judges it: *FOUND (a record exists), *LIVE,
 * *LEASE_GONE.  Fatal statuses poison WRITE. */
static dkv_status_t
look(dkv_rec_t *rec, int *found, int *live, int *lease_gone,
     dkv_eng_write_t *w, const void *key, size_t key_len)
{
    unsigned char kb[1 + DKV_MAX_KEY];
    MDB_cursor *c = NULL;
    MDB_val k, raw;
    dkv_status_t s;
    int rc;

    *found = *live = *lease_gone = 0;
    if ((s = dkv_eng_cursor(&c, w, &w->kv_cur, w->engine->kv)) != DKV_OK) {
        return s;
    }
    /* Through the context's cursor, which the write that usually
     * follows reuses (dkv_eng_write_record). */
    k = kv_key(kb, key, key_len);
    rc = mdb_cursor_get(c, &k, &raw, MDB_SET_KEY);
    if (rc == MDB_NOTFOUND) {
        return DKV_OK;
    }
    if (rc != 0) {
        return dkv_eng_mdb_fail(w, rc, "reading a key");
    }
    if ((s = dkv_rec_decode(rec, raw.mv_data, raw.mv_size)) != DKV_OK) {
        return dkv_eng_fail(w, s);
    }
    *found = 1;
    *live = dkv_eng_live(w->engine, w->txn, rec, w->now, lease_gone, &s);
    return s == DKV_OK ? s : dkv_eng_fail(w, s);
}

dkv_status_t
dkv_eng_settle(dkv_eng_write_t *w, const void *key, size_t key_len,
               uint64_t stale_lease)
{
    dkv_rec_t rec;
    int found, live, lease_gone;
    dkv_status_t s;

    if (stale_lease
        && dkv_eng_lease_get(NULL, NULL, w->engine, w->txn, stale_lease)
           == DKV_OK) {
        if ((s = dkv_eng_lease_end(NULL, w, stale_lease)) != DKV_OK) {
            return s;
        }
    }
    if ((s = look(&rec, &found, &live, &lease_gone, w, key, key_len))
        != DKV_OK || !found || live) {
        return s;
    }
    if (lease_gone
        && dkv_eng_lease_get(NULL, NULL, w->engine, w->txn, rec.lease)
           == DKV_OK) {
        return dkv_eng_lease_end(NULL, w, rec.lease);
    }
    return dkv_eng_remove_key(w, key, key_len, &rec);
}

/* Copies OLD's entity and labels into the context's pool, so they stay
 * valid while the databases change. */
static void
copy_meta(const char **entity, const dkv_label_t **labels,
          dkv_eng_write_t *w, const dkv_rec_t *old)
{
    *entity = old->entity ? apr_pstrmemdup(w->pool, old->entity,
                                           old->entity_len)
                          : NULL;
    dkv_rec_labels(labels, old, w->pool);
}

dkv_status_t
dkv_eng_remove_key(dkv_eng_write_t *w, const void *key, size_t key_len,
                   const dkv_rec_t *rec)
{
    dkv_engine_t *e = w->engine;
    unsigned char kb[1 + DKV_MAX_KEY];
    MDB_val k = kv_key(kb, key, key_len);
    uint64_t rev = w->state.revision + 1;
    uint64_t version = rec->version;
    int64_t expires_at = rec->expires_at;
    uint64_t lease = rec->lease;
    dkv_status_t s;
    int rc;

    if (rec->entity) {
        const char *entity;
        const dkv_label_t *labels;

        copy_meta(&entity, &labels, w, rec);
        s = dkv_eng_search_index(e->search, w->txn, key, key_len, entity,
                                 labels, rec->nlabels, NULL, NULL, 0,
                                 w->pool);
        if (s != DKV_OK) {
            return dkv_eng_fail(w, s);
        }
    }
    if (expires_at
        && (s = dkv_eng_expiry_entry(w, expires_at, DKV_TAG_KEY, key,
                                     key_len, 0)) != DKV_OK) {
        return s;
    }
    if (lease
        && (s = dkv_eng_attach(w, lease, DKV_TAG_KEY, key, key_len, 0))
           != DKV_OK) {
        return s;
    }
    if ((rc = mdb_del(w->txn, e->kv, &k, NULL)) != 0) {
        return dkv_eng_mdb_fail(w, rc, "deleting a key");
    }
    w->state.revision = rev;
    return dkv_eng_add_event(w, DKV_EVENT_DELETE, key, key_len, NULL, 0,
                             rev, version);
}

dkv_status_t
dkv_eng_write_record(dkv_eng_write_t *w, const void *key, size_t key_len,
                     const dkv_rec_t *old, dkv_rec_t *rec,
                     const dkv_label_t *labels, size_t nlabels,
                     int reindex)
{
    dkv_engine_t *e = w->engine;
    unsigned char kb[1 + DKV_MAX_KEY];
    MDB_val k = kv_key(kb, key, key_len), v;
    MDB_cursor *c = NULL;
    uint64_t rev = w->state.revision + 1;
    int64_t old_exp = old ? old->expires_at : 0;
    uint64_t old_lease = old ? old->lease : 0;
    dkv_status_t s;
    int rc;

    rec->version = old ? old->version + 1 : 1;
    rec->create_rev = old ? old->create_rev : rev;
    rec->created_at = old ? old->created_at : w->now;
    rec->mod_rev = rev;

    if (reindex && ((old && old->entity) || rec->entity)) {
        const char *old_entity = NULL, *new_entity = NULL;
        const dkv_label_t *old_labels = NULL;

        if (old && old->entity) {
            copy_meta(&old_entity, &old_labels, w, old);
        }
        if (rec->entity) {
            new_entity = apr_pstrmemdup(w->pool, rec->entity,
                                        rec->entity_len);
        }
        s = dkv_eng_search_index(e->search, w->txn, key, key_len,
                                 old_entity, old_labels,
                                 old_entity ? old->nlabels : 0, new_entity,
                                 labels, new_entity ? nlabels : 0,
                                 w->pool);
        if (s != DKV_OK) {
            return dkv_eng_fail(w, s);
        }
    }
    if (old_exp != rec->expires_at) {
        if (old_exp
            && (s = dkv_eng_expiry_entry(w, old_exp, DKV_TAG_KEY, key,
                                         key_len, 0)) != DKV_OK) {
            return s;
        }
        if (rec->expires_at
            && (s = dkv_eng_expiry_entry(w, rec->expires_at, DKV_TAG_KEY,
                                         key, key_len, 1)) != DKV_OK) {
            return s;
        }
    }
    if (old_lease != rec->lease) {
        if (old_lease
            && (s = dkv_eng_attach(w, old_lease, DKV_TAG_KEY, key, key_len,
                                   0)) != DKV_OK) {
            return s;
        }
        if (rec->lease
            && (s = dkv_eng_attach(w, rec->lease, DKV_TAG_KEY, key,
                                   key_len, 1)) != DKV_OK) {
            return s;
        }
    }
    if ((s = dkv_eng_cursor(&c, w, &w->kv_cur, e->kv)) != DKV_OK) {
        return s;
    }
    v.mv_size = dkv_rec_size(rec, labels, nlabels);
    if ((rc = mdb_cursor_put(c, &k, &v, MDB_RESERVE)) != 0) {
        return dkv_eng_mdb_fail(w, rc, "writing a key");
    }
    dkv_rec_encode(v.mv_data, rec, labels, nlabels);
    w->state.revision = rev;
    return dkv_eng_add_event(w, DKV_EVENT_PUT, key, key_len, rec->value,
                             rec->value_len, rev, rec->version);
}

/* ======================================================= validation */

static dkv_status_t
check_text(const char *s, size_t limit, const char *what, size_t *len)
{
    if (s == NULL) {
        *len = 0;
        return DKV_OK;
    }
    *len = strlen(s);
    if (*len == 0) {
        return dkv_error_set(DKV_EINVAL, "put: empty %s", what);
    }
    if (*len > limit) {
        return dkv_error_set(DKV_ETOOLARGE,
                             "put: %s is %zu bytes; the "
                             "limit is %zu", what,
                             *len, limit);
    }
    return DKV_OK;
}

static dkv_status_t
check_labels(const dkv_label_t *labels, size_t n)
{
    size_t i, j;

    if (n > DKV_MAX_LABELS) {
        return dkv_error_set(DKV_ETOOLARGE,
                             "put: %zu labels; the limit "
                             "is %d", n,
                             DKV_MAX_LABELS);
    }
    if (n && labels == NULL) {
        return dkv_error_set(DKV_EINVAL, "put: NULL labels");
    }
    for (i = 0; i < n; i++) {
        size_t nl, vl, limit = labels[i].indexed ? DKV_MAX_LABEL_VALUE
                                                 : DKV_REC_MAX_PLAIN_LABEL;

        if (labels[i].name == NULL || labels[i].value == NULL
            || labels[i].name[0] == '\0') {
            return dkv_error_set(DKV_EINVAL,
                                 "put: label %zu"
                                 " has no name or value", i);
        }
        nl = strlen(labels[i].name);
        vl = strlen(labels[i].value);
        if (nl > DKV_MAX_LABEL_NAME || vl > limit) {
            return dkv_error_set(DKV_ETOOLARGE,
                                 "put: label %s is too large (name %zu, "
                                 "value %zu bytes)", labels[i].name, nl, vl);
        }
        for (j = 0; j < i; j++) {
            if (strcmp(labels[i].name, labels[j].name) == 0) {
                return dkv_error_set(DKV_EINVAL,
                                     "put: label %s given twice",
                                     labels[i].name);
            }
        }
    }
    return DKV_OK;
}

/* Checks a TTL and computes its expiry time at NOW into *AT. */
static dkv_status_t
check_ttl(int64_t *at, int64_t ttl_ms, int64_t now, const char *op)
{
    if (ttl_ms < 0 || (ttl_ms > 0 && now > INT64_MAX - ttl_ms)) {
        return dkv_error_set(DKV_EINVAL, "%s: bad ttl %lld ms", op,
                             (long long)ttl_ms);
    }
    *at = ttl_ms ? now + ttl_ms : 0;
    return DKV_OK;
}

dkv_status_t
dkv_eng_check_put(const dkv_engine_t *e, const void *key, size_t key_len,
                  const void *value, size_t value_len,
                  const dkv_put_opts_t *o, size_t *entity_len,
                  size_t *ctype_len)
{
    dkv_status_t s;

    if ((s = dkv_eng_check_key(key, key_len, "put")) != DKV_OK) {
        return s;
    }
    if (value == NULL && value_len) {
        return dkv_error_set(DKV_EINVAL, "put: NULL value with a length");
    }
    if (value_len > e->max_value) {
        return dkv_error_set(DKV_ETOOLARGE,
                             "put: value is %zu bytes; "
                             "the limit is %zu",
                             value_len, e->max_value);
    }
    if (o->if_absent && o->if_version) {
        return dkv_error_set(DKV_EINVAL,
                             "put: if_absent and if_version together");
    }
    if ((s = check_text(o->entity, DKV_MAX_ENTITY, "entity", entity_len))
        != DKV_OK
        || (s = check_text(o->content_type, DKV_MAX_CONTENT_TYPE,
                           "content type", ctype_len)) != DKV_OK) {
        return s;
    }
    return check_labels(o->labels, o->nlabels);
}

static void
res_fail(dkv_result_t *res, dkv_eng_write_t *w, dkv_status_t s)
{
    if (res) {
        memset(res, 0, sizeof(*res));
        res->status = s;
        res->revision = w->state.revision;
    }
}

/* ============================================================ writes */

static const dkv_put_opts_t no_put_opts;
static const dkv_delete_opts_t no_delete_opts;

/* dkv_engine_put; IN_TXN turns if_version on an absent key into a
 * conflict, as transactions report it. */
static dkv_status_t
put_key(dkv_result_t *res, dkv_eng_write_t *w, const void *key,
        size_t key_len, const void *value, size_t value_len,
        const dkv_put_opts_t *o, int in_txn)
{
    dkv_engine_t *e = w->engine;
    dkv_rec_t old, rec;
    size_t el, cl;
    int64_t expires_at;
    uint64_t stale = 0;
    int found, live, lease_gone;
    dkv_status_t s;

    if (o == NULL) {
        o = &no_put_opts;
    }
    if (w->status != DKV_OK) {
        return w->status;
    }
    if ((s = dkv_eng_check_put(e, key, key_len, value, value_len, o, &el,
                               &cl)) != DKV_OK
        || (s = check_ttl(&expires_at, o->ttl_ms, w->now, "put"))
           != DKV_OK) {
        return s;
    }
    if (o->lease) {
        int64_t lease_exp;

        s = dkv_eng_lease_get(NULL, &lease_exp, e, w->txn, o->lease);
        if (s == DKV_OK && lease_exp <= w->now) {
            s = DKV_ENOTFOUND;
        }
        if (s == DKV_ENOTFOUND) {
            return dkv_error_set(s, "put: lease %llu not found or expired",
                                 (unsigned long long)o->lease);
        }
        if (s != DKV_OK) {
            return dkv_eng_fail(w, s);
        }
    }
    if ((s = look(&old, &found, &live, &lease_gone, w, key, key_len))
        != DKV_OK) {
        return s;
    }
    if (o->if_absent && live) {
        return dkv_error_set(DKV_ECONFLICT, "put: key exists (if_absent)");
    }
    if (o->if_version && !live) {
        return dkv_error_set(in_txn ? DKV_ECONFLICT : DKV_ENOTFOUND,
                             "put: key not found (if_version %llu)",
                             (unsigned long long)o->if_version);
    }
    if (o->if_version && old.version != o->if_version) {
        return dkv_error_set(DKV_ECONFLICT,
                             "put: key is at version %llu, not %llu",
                             (unsigned long long)old.version,
                             (unsigned long long)o->if_version);
    }
    if ((s = dkv_eng_lock_check(&stale, w, key, key_len, o->lock, "put"))
        != DKV_OK) {
        return s;
    }

    if (stale || (found && !live)) {
        if ((s = dkv_eng_settle(w, key, key_len, stale)) != DKV_OK) {
            return s;
        }
        if (live && (s = dkv_eng_load(&old, e, w->txn, key, key_len))
                    != DKV_OK) {
            return dkv_eng_fail(w, s == DKV_ENOTFOUND ? DKV_ECORRUPT : s);
        }
    }
    memset(&rec, 0, sizeof(rec));
    rec.expires_at = expires_at;
    rec.ttl_ms = o->ttl_ms;
    rec.lease = o->lease;
    rec.value = value;
    rec.value_len = value_len;
    rec.entity = o->entity;
    rec.entity_len = el;
    rec.ctype = o->content_type;
    rec.ctype_len = cl;
    if ((s = dkv_eng_write_record(w, key, key_len, live ? &old : NULL, &rec,
                                  o->labels, o->nlabels, 1)) != DKV_OK) {
        return s;
    }
    if (res) {
        res->status = DKV_OK;
        res->mutated = 1;
        res->is_update = live;
        res->version = rec.version;
        res->revision = rec.mod_rev;
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_put(dkv_result_t *res, dkv_eng_write_t *write, const void *key,
               size_t key_len, const void *value, size_t value_len,
               const dkv_put_opts_t *opts)
{
    dkv_status_t s = put_key(res, write, key, key_len, value, value_len,
                             opts, 0);

    if (s != DKV_OK) {
        res_fail(res, write, s);
    }
    return s;
}

/* dkv_engine_delete; IN_TXN makes an absent key a no-op (and if_version
 * on it a conflict). */
static dkv_status_t
delete_key(dkv_result_t *res, dkv_eng_write_t *w, const void *key,
           size_t key_len, const dkv_delete_opts_t *o, int in_txn)
{
    dkv_rec_t old;
    uint64_t stale = 0, version;
    int found, live, lease_gone;
    dkv_status_t s;

    if (o == NULL) {
        o = &no_delete_opts;
    }
    if (w->status != DKV_OK) {
        return w->status;
    }
    if ((s = dkv_eng_check_key(key, key_len, "delete")) != DKV_OK
        || (s = look(&old, &found, &live, &lease_gone, w, key, key_len))
           != DKV_OK) {
        return s;
    }
    if (!live && (!in_txn || o->if_version)) {
        return dkv_error_set(in_txn ? DKV_ECONFLICT : DKV_ENOTFOUND,
                             "delete: key not found");
    }
    if (o->if_version && old.version != o->if_version) {
        return dkv_error_set(DKV_ECONFLICT,
                             "delete: key is at version %llu, not %llu",
                             (unsigned long long)old.version,
                             (unsigned long long)o->if_version);
    }
    if ((s = dkv_eng_lock_check(&stale, w, key, key_len, o->lock,
                                "delete")) != DKV_OK) {
        return s;
    }
    if (!live) {
        /* In a transaction: deleting an absent key changes nothing. */
        if (res) {
            memset(res, 0, sizeof(*res));
            res->revision = w->state.revision;
        }
        return DKV_OK;
    }
    version = old.version;
    if (stale) {
        if ((s = dkv_eng_settle(w, key, key_len, stale)) != DKV_OK) {
            return s;
        }
        if ((s = dkv_eng_load(&old, w->engine, w->txn, key, key_len))
            != DKV_OK) {
            return dkv_eng_fail(w, s == DKV_ENOTFOUND ? DKV_ECORRUPT : s);
        }
    }
    if ((s = dkv_eng_remove_key(w, key, key_len, &old)) != DKV_OK) {
        return s;
    }
    if (res) {
        res->status = DKV_OK;
        res->mutated = 1;
        res->is_update = 0;
        res->version = version;
        res->revision = w->state.revision;
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_delete(dkv_result_t *res, dkv_eng_write_t *write,
                  const void *key, size_t key_len,
                  const dkv_delete_opts_t *opts)
{
    dkv_status_t s = delete_key(res, write, key, key_len, opts, 0);

    if (s != DKV_OK) {
        res_fail(res, write, s);
    }
    return s;
}

/* Sets the expiry of a live key (expire: TTL_MS; refresh: TTL_MS < 0,
 * the key's own TTL). */
static dkv_status_t
set_expiry(dkv_result_t *res, dkv_eng_write_t *w, const void *key,
           size_t key_len, int64_t ttl_ms, uint64_t lock, const char *op)
{
    dkv_engine_t *e = w->engine;
    dkv_rec_t old, rec;
    unsigned char kb[1 + DKV_MAX_KEY];
    MDB_val k, v;
    uint64_t stale = 0;
    int found, live, lease_gone, rc;
    int64_t at = 0;
    dkv_status_t s;

    if (w->status != DKV_OK) {
        return w->status;
    }
    if ((s = dkv_eng_check_key(key, key_len, op)) != DKV_OK
        || (ttl_ms >= 0 && (s = check_ttl(&at, ttl_ms, w->now, op))
                           != DKV_OK)
        || (s = look(&old, &found, &live, &lease_gone, w, key, key_len))
           != DKV_OK) {
        return s;
    }
    if (!live) {
        return dkv_error_set(DKV_ENOTFOUND, "%s: key not found", op);
    }
    if (ttl_ms < 0) {
        if (old.ttl_ms == 0) {
            return dkv_error_set(DKV_EINVAL, "refresh: the key has no TTL");
        }
        ttl_ms = old.ttl_ms;
        if ((s = check_ttl(&at, ttl_ms, w->now, op)) != DKV_OK) {
            return s;
        }
    }
    if ((s = dkv_eng_lock_check(&stale, w, key, key_len, lock, op))
        != DKV_OK) {
        return s;
    }
    if (stale && (s = dkv_eng_settle(w, key, key_len, stale)) != DKV_OK) {
        return s;
    }
    if ((s = dkv_eng_load_copy(&old, w, key, key_len)) != DKV_OK) {
        return dkv_eng_fail(w, s == DKV_ENOTFOUND ? DKV_ECORRUPT : s);
    }
    rec = old;
    rec.mod_rev = w->state.revision + 1;
    rec.expires_at = at;
    rec.ttl_ms = ttl_ms;
    if (old.expires_at != at) {
        if (old.expires_at
            && (s = dkv_eng_expiry_entry(w, old.expires_at, DKV_TAG_KEY,
                                         key, key_len, 0)) != DKV_OK) {
            return s;
        }
        if (at && (s = dkv_eng_expiry_entry(w, at, DKV_TAG_KEY, key,
                                            key_len, 1)) != DKV_OK) {
            return s;
        }
    }
    k = kv_key(kb, key, key_len);
    v.mv_size = dkv_rec_size(&rec, NULL, 0);
    if ((rc = mdb_put(w->txn, e->kv, &k, &v, MDB_RESERVE)) != 0) {
        return dkv_eng_mdb_fail(w, rc, "writing a key");
    }
    dkv_rec_encode(v.mv_data, &rec, NULL, 0);
    w->state.revision = rec.mod_rev;
    if (res) {
        res->status = DKV_OK;
        res->mutated = 1;
        res->is_update = 1;
        res->version = rec.version;
        res->revision = rec.mod_rev;
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_expire(dkv_result_t *res, dkv_eng_write_t *write,
                  const void *key, size_t key_len, int64_t ttl_ms,
                  uint64_t lock)
{
    dkv_status_t s;

    if (ttl_ms < 0) {
        s = dkv_error_set(DKV_EINVAL, "expire: negative ttl");
    } else {
        s = set_expiry(res, write, key, key_len, ttl_ms, lock, "expire");
    }
    if (s != DKV_OK) {
        res_fail(res, write, s);
    }
    return s;
}

dkv_status_t
dkv_engine_refresh(dkv_result_t *res, dkv_eng_write_t *write,
                   const void *key, size_t key_len, uint64_t lock)
{
    dkv_status_t s = set_expiry(res, write, key, key_len, -1, lock,
                                "refresh");

    if (s != DKV_OK) {
        res_fail(res, write, s);
    }
    return s;
}

/* Copies the keys of RANGE in TXN into *KEYS (an array of dkv_key_t in
 * POOL). */
static dkv_status_t
collect_keys(apr_array_header_t **keys, dkv_engine_t *e, MDB_txn *txn,
             const dkv_range_t *range, apr_pool_t *pool)
{
    MDB_cursor *c;
    MDB_val k, v;
    MDB_cursor_op op;
    int rc;

    *keys = apr_array_make(pool, 64, sizeof(dkv_key_t));
    if ((rc = mdb_cursor_open(txn, e->kv, &c)) != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "clear");
    }
    op = range_seek(&k, range);
    while ((rc = kv_cursor_get(c, &k, &v, op)) == 0) {
        dkv_key_t *dk;

        op = MDB_NEXT;
        if (dkv_eng_past_range(range, k.mv_data, k.mv_size)) {
            break;
        }
        if (!dkv_eng_in_range(range, k.mv_data, k.mv_size)) {
            continue;
        }
        dk = apr_array_push(*keys);
        dk->key = apr_pmemdup(pool, k.mv_data, k.mv_size);
        dk->key_len = k.mv_size;
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) {
        return dkv_eng_mdb_fail(NULL, rc, "clear");
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_clear(uint64_t *deleted, dkv_eng_write_t *w,
                 const dkv_range_t *range)
{
    apr_array_header_t *keys;
    uint64_t n = 0;
    dkv_status_t s;
    int i;

    if (deleted) {
        *deleted = 0;
    }
    if (w->status != DKV_OK) {
        return w->status;
    }
    if ((s = dkv_eng_check_range(range)) != DKV_OK) {
        return s;
    }
    if ((s = collect_keys(&keys, w->engine, w->txn, range, w->pool))
        != DKV_OK) {
        return dkv_eng_fail(w, s);
    }
    for (i = 0; i < keys->nelts; i++) {
        const dkv_key_t *dk = &DKV_ARRAY_IDX(keys, i, dkv_key_t);
        dkv_rec_t rec;
        dkv_eng_lock_t lock;
        int found, live, lease_gone;

        if ((s = look(&rec, &found, &live, &lease_gone, w, dk->key,
                      dk->key_len)) != DKV_OK) {
            return s;
        }
        if (!found) {
            continue;   /* removed with a lease ended before */
        }
        if (!live) {
            if ((s = dkv_eng_settle(w, dk->key, dk->key_len, 0))
                != DKV_OK) {
                return s;
            }
            continue;
        }
        s = dkv_eng_lock_get(&lock, w->engine, w->txn, dk->key,
                             dk->key_len);
        if (s == DKV_OK) {
            int64_t exp;
            dkv_status_t ls = dkv_eng_lease_get(NULL, &exp, w->engine,
                                                w->txn, lock.lease);

            if (ls == DKV_OK && exp > w->now) {
                continue;   /* locked: left in place */
            }
            if (ls != DKV_OK && ls != DKV_ENOTFOUND) {
                return dkv_eng_fail(w, ls);
            }
            if ((s = dkv_eng_settle(w, dk->key, dk->key_len,
                                    ls == DKV_OK ? lock.lease : 0))
                != DKV_OK) {
                return s;
            }
            s = dkv_eng_load(&rec, w->engine, w->txn, dk->key,
                             dk->key_len);
            if (s == DKV_ENOTFOUND) {
                continue;
            }
        }
        if (s != DKV_OK && s != DKV_ENOTFOUND) {
            return dkv_eng_fail(w, s);
        }
        if ((s = dkv_eng_remove_key(w, dk->key, dk->key_len, &rec))
            != DKV_OK) {
            return s;
        }
        n++;
    }
    if (deleted) {
        *deleted = n;
    }
    return DKV_OK;
}

/* Checks the arguments of one transaction operation. */
static dkv_status_t
check_op(const dkv_engine_t *e, const dkv_op_t *op)
{
    size_t el, cl;

    if (op->type == DKV_OP_PUT) {
        return dkv_eng_check_put(e, op->key, op->key_len, op->value,
                                 op->value_len,
                                 op->put ? op->put : &no_put_opts, &el,
                                 &cl);
    }
    if (op->type == DKV_OP_DELETE) {
        return dkv_eng_check_key(op->key, op->key_len, "txn delete");
    }
    return dkv_error_set(DKV_EINVAL, "txn: unknown operation type %d",
                         (int)op->type);
}

dkv_status_t
dkv_engine_txn(dkv_eng_write_t *w, const dkv_eng_compare_t *compares,
               size_t ncompares, const dkv_op_t *ops, size_t nops)
{
    dkv_engine_t *e = w->engine;
    MDB_txn *parent = w->txn, *child;
    MDB_cursor *kv_cur, *hist_cur;
    uint64_t saved_rev = w->state.revision;
    uint64_t saved_lease = w->state.next_lease;
    size_t saved_events = w->nevents, i;
    dkv_status_t s = DKV_OK;
    int rc;

    if (w->status != DKV_OK) {
        return w->status;
    }
    if ((ncompares && compares == NULL) || (nops && ops == NULL)) {
        return dkv_error_set(DKV_EINVAL, "txn: NULL array");
    }
    if (nops > DKV_MAX_TXN_OPS) {
        return dkv_error_set(DKV_ETOOLARGE, "txn: %zu"
                             " operations; the "
                             "limit is %d", nops, DKV_MAX_TXN_OPS);
    }
    for (i = 0; i < nops; i++) {
        if ((s = check_op(e, &ops[i])) != DKV_OK) {
            return s;
        }
    }
    for (i = 0; i < ncompares; i++) {
        dkv_rec_t rec;
        int found, live, lease_gone;

        if ((s = dkv_eng_check_key(compares[i].key, compares[i].key_len,
                                   "txn compare")) != DKV_OK
            || (s = look(&rec, &found, &live, &lease_gone, w,
                         compares[i].key, compares[i].key_len)) != DKV_OK) {
            return s;
        }
        if ((live ? rec.mod_rev : 0) != compares[i].mod_revision) {
            return dkv_error_set(DKV_ECONFLICT,
                                 "txn: a key read at revision %llu is now "
                                 "at %llu",
                                 (unsigned long long)compares[i]
                                 .mod_revision,
                                 (unsigned long long)(live ? rec.mod_rev
                                                           : 0));
        }
    }
    if (nops == 0) {
        return DKV_OK;
    }
    if ((rc = mdb_txn_begin(e->env, parent, 0, &child)) != 0) {
        return dkv_eng_mdb_fail(w, rc, "txn");
    }
    /* The parent's cursors cannot be used in the child: the child opens
     * its own, which LMDB closes with it. */
    kv_cur = w->kv_cur;
    hist_cur = w->hist_cur;
    w->kv_cur = w->hist_cur = NULL;
    w->txn = child;
    for (i = 0; i < nops; i++) {
        const dkv_op_t *op = &ops[i];

        if (op->type == DKV_OP_PUT) {
            s = put_key(NULL, w, op->key, op->key_len, op->value,
                        op->value_len, op->put, 1);
        } else {
            s = delete_key(NULL, w, op->key, op->key_len, op->del, 1);
        }
        if (s != DKV_OK) {
            break;
        }
    }
    w->kv_cur = kv_cur;
    w->hist_cur = hist_cur;
    if (s == DKV_OK && (rc = mdb_txn_commit(child)) != 0) {
        w->txn = parent;
        return dkv_eng_mdb_fail(w, rc, "txn");
    }
    w->txn = parent;
    if (s != DKV_OK) {
        mdb_txn_abort(child);
        w->state.revision = saved_rev;
        w->state.next_lease = saved_lease;
        w->nevents = saved_events;
    }
    return s;
}

/* ============================================================= reads */

dkv_status_t
dkv_engine_get(dkv_item_t *item, dkv_eng_read_t *r, const void *key,
               size_t key_len, const dkv_get_opts_t *opts, apr_pool_t *pool)
{
    dkv_engine_t *e = r->engine;
    dkv_rec_t rec;
    dkv_status_t s;

    if ((s = dkv_eng_check_key(key, key_len, "get")) != DKV_OK) {
        goto absent;
    }
    if (opts && opts->lock) {
        dkv_eng_lock_t lock;
        int64_t exp = 0;

        s = dkv_eng_lock_get(&lock, e, r->txn, key, key_len);
        if (s == DKV_OK) {
            s = dkv_eng_lease_get(NULL, &exp, e, r->txn, lock.lease);
        }
        if (s == DKV_ENOTFOUND || (s == DKV_OK && (lock.token != opts->lock
                                                   || exp <= r->now))) {
            s = dkv_error_set(DKV_ELOCKED,
                              "get: lock %llu is not held on the key",
                              (unsigned long long)opts->lock);
        }
        if (s != DKV_OK) {
            goto absent;
        }
    }
    s = dkv_eng_load(&rec, e, r->txn, key, key_len);
    if (s == DKV_OK) {
        int live = dkv_eng_live(e, r->txn, &rec, r->now, NULL, &s);

        if (s == DKV_OK && !live) {
            s = DKV_ENOTFOUND;
        }
    }
    if (s == DKV_ENOTFOUND) {
        s = dkv_error_set(DKV_ENOTFOUND, "get: key not found");
    }
    if (s != DKV_OK) {
        goto absent;
    }
    dkv_rec_to_item(item, &rec, key, key_len, !(opts && opts->meta_only),
                    r->state.revision, r->now, pool);
    return DKV_OK;

absent:
    memset(item, 0, sizeof(*item));
    item->status = s;
    item->key = key;
    item->key_len = key_len;
    item->revision = r->state.revision;
    item->ttl_ms = -1;
    return s;
}

dkv_status_t
dkv_engine_scan(dkv_page_t **page, dkv_eng_read_t *r,
                const dkv_range_t *range, const dkv_scan_opts_t *opts,
                apr_pool_t *pool)
{
    static const dkv_scan_opts_t none;
    dkv_engine_t *e = r->engine;
    dkv_page_t *pg;
    size_t limit, cap;
    MDB_cursor *c;
    MDB_val k, v;
    MDB_cursor_op op;
    dkv_status_t s;
    int rc;

    if (opts == NULL) {
        opts = &none;
    }
    if ((s = dkv_eng_check_range(range)) != DKV_OK) {
        return s;
    }
    if (opts->limit > SCAN_MAX || (opts->after_len && opts->after == NULL)
        || opts->after_len > DKV_MAX_KEY) {
        return dkv_error_set(DKV_EINVAL, "scan: bad limit or cursor");
    }
    limit = opts->limit ? opts->limit : SCAN_DEFAULT;
    cap = limit < 64 ? limit : 64;
    pg = apr_pcalloc(pool, sizeof(*pg));
    pg->items = apr_palloc(pool, cap * sizeof(dkv_item_t));
    pg->revision = r->state.revision;
    if ((rc = mdb_cursor_open(r->txn, e->kv, &c)) != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "scan");
    }
    op = range_seek(&k, range);
    if (opts->after_len
        && (op == MDB_FIRST
            || dkv_bytes_cmp(opts->after, opts->after_len, k.mv_data,
                             k.mv_size) >= 0)) {
        k.mv_data = (void *)opts->after;
        k.mv_size = opts->after_len;
        op = MDB_SET_RANGE;
    }
    while ((rc = kv_cursor_get(c, &k, &v, op)) == 0) {
        dkv_rec_t rec;
        int live;

        op = MDB_NEXT;
        if (dkv_eng_past_range(range, k.mv_data, k.mv_size)) {
            break;
        }
        if (!dkv_eng_in_range(range, k.mv_data, k.mv_size)
            || (opts->after_len && k.mv_size == opts->after_len
                && memcmp(k.mv_data, opts->after, k.mv_size) == 0)) {
            continue;
        }
        if ((s = dkv_rec_decode(&rec, v.mv_data, v.mv_size)) != DKV_OK) {
            break;
        }
        live = dkv_eng_live(e, r->txn, &rec, r->now, NULL, &s);
        if (s != DKV_OK) {
            break;
        }
        if (!live) {
            continue;
        }
        if (pg->count == limit) {
            pg->more = 1;
            break;
        }
        if (pg->count == cap) {
            dkv_item_t *grown;

            cap = cap * 2 < limit ? cap * 2 : limit;
            grown = apr_palloc(pool, cap * sizeof(*grown));
            memcpy(grown, pg->items, pg->count * sizeof(*grown));
            pg->items = grown;
        }
        dkv_rec_to_item(&pg->items[pg->count++], &rec, k.mv_data,
                        k.mv_size, !opts->keys_only, r->state.revision,
                        r->now, pool);
    }
    mdb_cursor_close(c);
    if (s == DKV_OK && rc != 0 && rc != MDB_NOTFOUND) {
        s = dkv_eng_mdb_fail(NULL, rc, "scan");
    }
    if (s != DKV_OK) {
        return s;
    }
    if (pg->count) {
        pg->next = pg->items[pg->count - 1].key;
        pg->next_len = pg->items[pg->count - 1].key_len;
    }
    *page = pg;
    return DKV_OK;
}

/* The number of keys that are in the kv database but not live at NOW,
 * found through the expiry index (keys due, and keys of leases due). */
static dkv_status_t
count_dead(uint64_t *dead, dkv_eng_read_t *r)
{
    dkv_engine_t *e = r->engine;
    MDB_cursor *c, *ac = NULL;
    MDB_val k, v;
    dkv_status_t s = DKV_OK;
    int rc;

    *dead = 0;
    if ((rc = mdb_cursor_open(r->txn, e->expiry, &c)) != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "count");
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP)) {
        const unsigned char *p = k.mv_data;
        size_t n;

        if (k.mv_size != 9 || dkv_get_be64s(p) > r->now) {
            break;
        }
        if (p[8] == DKV_TAG_KEY) {
            if ((rc = mdb_cursor_count(c, &n)) != 0) {
                break;
            }
            *dead += n;
            continue;
        }
        /* A lease due: its keys that are not already due themselves. */
        if (ac == NULL && (rc = mdb_cursor_open(r->txn, e->lease_att, &ac))
                          != 0) {
            break;
        }
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST_DUP); rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
            MDB_val ak = v, av;
            int arc;

            for (arc = mdb_cursor_get(ac, &ak, &av, MDB_SET_KEY); arc == 0;
                 arc = mdb_cursor_get(ac, &ak, &av, MDB_NEXT_DUP)) {
                const unsigned char *a = av.mv_data;
                dkv_rec_t rec;

                if (av.mv_size < 2 || a[0] != DKV_TAG_KEY) {
                    continue;
                }
                s = dkv_eng_load(&rec, e, r->txn, a + 1, av.mv_size - 1);
                if (s == DKV_ENOTFOUND) {
                    s = DKV_OK;
                    continue;
                }
                if (s != DKV_OK) {
                    goto done;
                }
                if (!(rec.expires_at && rec.expires_at <= r->now)) {
                    (*dead)++;
                }
            }
        }
        rc = 0;
    }
done:
    if (ac) {
        mdb_cursor_close(ac);
    }
    mdb_cursor_close(c);
    if (s == DKV_OK && rc != 0 && rc != MDB_NOTFOUND) {
        s = dkv_eng_mdb_fail(NULL, rc, "count");
    }
    return s;
}

/* The number of named databases' records in the main database (they
 * sort before every record key, DKV_KV_TAG being above any name). */
static dkv_status_t
count_named(uint64_t *named, dkv_eng_read_t *r)
{
    MDB_cursor *c;
    MDB_val k, v;
    MDB_cursor_op op = MDB_FIRST;
    int rc;

    *named = 0;
    if ((rc = mdb_cursor_open(r->txn, r->engine->kv, &c)) != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "count");
    }
    while ((rc = mdb_cursor_get(c, &k, &v, op)) == 0
           && (k.mv_size == 0
               || *(const unsigned char *)k.mv_data != DKV_KV_TAG)) {
        op = MDB_NEXT;
        (*named)++;
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return dkv_eng_mdb_fail(NULL, rc, "count");
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_count(uint64_t *count, dkv_eng_read_t *r,
                 const dkv_range_t *range)
{
    dkv_engine_t *e = r->engine;
    MDB_cursor *c;
    MDB_val k, v;
    MDB_cursor_op op;
    uint64_t n = 0;
    dkv_status_t s;
    int rc;

    if ((s = dkv_eng_check_range(range)) != DKV_OK) {
        return s;
    }
    if (range == NULL
        || (!range->prefix_len && !range->start_len && !range->end_len)) {
        MDB_stat st;
        uint64_t named, dead, records;

        if ((rc = mdb_stat(r->txn, e->kv, &st)) != 0) {
            return dkv_eng_mdb_fail(NULL, rc, "count");
        }
        if ((s = count_named(&named, r)) != DKV_OK
            || (s = count_dead(&dead, r)) != DKV_OK) {
            return s;
        }
        records = st.ms_entries >= named ? st.ms_entries - named : 0;
        *count = records >= dead ? records - dead : 0;
        return DKV_OK;
    }
    if ((rc = mdb_cursor_open(r->txn, e->kv, &c)) != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "count");
    }
    op = range_seek(&k, range);
    while ((rc = kv_cursor_get(c, &k, &v, op)) == 0) {
        dkv_rec_t rec;

        op = MDB_NEXT;
        if (dkv_eng_past_range(range, k.mv_data, k.mv_size)) {
            break;
        }
        if (!dkv_eng_in_range(range, k.mv_data, k.mv_size)) {
            continue;
        }
        if ((s = dkv_rec_decode(&rec, v.mv_data, v.mv_size)) != DKV_OK) {
            break;
        }
        n += dkv_eng_live(e, r->txn, &rec, r->now, NULL, &s);
        if (s != DKV_OK) {
            break;
        }
    }
    mdb_cursor_close(c);
    if (s == DKV_OK && rc != 0 && rc != MDB_NOTFOUND) {
        s = dkv_eng_mdb_fail(NULL, rc, "count");
    }
    if (s == DKV_OK) {
        *count = n;
    }
    return s;
}

/* The loader search.c calls for each matching key: the full item as
 * dkv_engine_get() reads it in the same snapshot. */
static dkv_status_t
search_load(void *baton, dkv_item_t *item, const void *key, size_t key_len,
            apr_pool_t *pool)
{
    return dkv_engine_get(item, baton, key, key_len, NULL, pool);
}

dkv_status_t
dkv_engine_search(dkv_page_t **page, dkv_eng_read_t *r,
                  const dkv_query_t *query, const dkv_search_opts_t *opts,
                  apr_pool_t *pool)
{
    if (page == NULL || query == NULL) {
        return dkv_error_set(DKV_EINVAL, "search: NULL argument");
    }
    return dkv_eng_search_query(page, r->engine->search, r->txn, query,
                                opts, search_load, r, r->state.revision,
                                pool);
}
