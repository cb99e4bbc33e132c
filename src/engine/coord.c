/*
 * coord.c -- the engine's coordination state: counters (decimal keys),
 * leases (a sequence-numbered lifetime with attached keys and locks),
 * locks with fencing tokens, the expiry index and attachment helpers, and
 * dkv_engine_expire_due(), which applies the TTL and lease expiry that
 * the caller's clock has made due.
 *
 * Databases (see docs/internals/engine.md):
 *   leases     be64 id -> be64 ttl_ms, be64 expires_at
 *   lease_att  be64 id -> dup: tag ('k' key, 'l' lock) + user key
 *   locks      user key -> be64 lease, be64 token
 *   expiry     be64s time + tag ('k', 'l') -> dup: user key / be64 id
 */
#include <string.h>

#include "common/codec.h"
#include "common/status.h"
#include "engine/engine-int.h"
#include "common/alloc.h"

#define LEASE_REC 16
#define LOCK_REC 16
#define I64_TEXT 21     /* "-9223372036854775808" plus room */

/* ===================================================== index helpers */

dkv_status_t
dkv_eng_expiry_entry(dkv_eng_write_t *w, int64_t at, int tag,
                     const void *data, size_t len, int add)
{
    unsigned char kb[9];
    MDB_val k = { sizeof(kb), kb }, v = { len, (void *)data };
    int rc;

    dkv_put_be64s(kb, at);
    kb[8] = (unsigned char)tag;
    rc = add ? mdb_put(w->txn, w->engine->expiry, &k, &v, 0)
             : mdb_del(w->txn, w->engine->expiry, &k, &v);
    if (rc != 0 && !(rc == MDB_NOTFOUND && !add)) {
        return dkv_eng_mdb_fail(w, rc, "updating the expiry index");
    }
    return DKV_OK;
}

dkv_status_t
dkv_eng_attach(dkv_eng_write_t *w, uint64_t id, int tag, const void *key,
               size_t key_len, int add)
{
    unsigned char kb[8], db[1 + DKV_MAX_KEY];
    MDB_val k = { sizeof(kb), kb }, v = { 1 + key_len, db };
    int rc;

    dkv_put_be64(kb, id);
    db[0] = (unsigned char)tag;
    memcpy(db + 1, key, key_len);
    rc = add ? mdb_put(w->txn, w->engine->lease_att, &k, &v, 0)
             : mdb_del(w->txn, w->engine->lease_att, &k, &v);
    if (rc != 0 && !(rc == MDB_NOTFOUND && !add)) {
        return dkv_eng_mdb_fail(w, rc, "updating lease attachments");
    }
    return DKV_OK;
}

dkv_status_t
dkv_eng_lock_get(dkv_eng_lock_t *lock, dkv_engine_t *engine, MDB_txn *txn,
                 const void *key, size_t key_len)
{
    MDB_val k = { key_len, (void *)key }, v;
    int rc = mdb_get(txn, engine->locks, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return DKV_ENOTFOUND;
    }
    if (rc != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "reading a lock");
    }
    if (v.mv_size != LOCK_REC) {
        return dkv_error_set(DKV_ECORRUPT, "damaged lock record");
    }
    lock->lease = dkv_get_be64(v.mv_data);
    lock->token = dkv_get_be64((const unsigned char *)v.mv_data + 8);
    return DKV_OK;
}

dkv_status_t
dkv_eng_lease_get(int64_t *ttl, int64_t *expires_at, dkv_engine_t *engine,
                  MDB_txn *txn, uint64_t id)
{
    unsigned char kb[8];
    MDB_val k = { sizeof(kb), kb }, v;
    int rc;

    dkv_put_be64(kb, id);
    rc = mdb_get(txn, engine->leases, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return DKV_ENOTFOUND;
    }
    if (rc != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "reading a lease");
    }
    if (v.mv_size != LEASE_REC) {
        return dkv_error_set(DKV_ECORRUPT, "damaged lease record");
    }
    if (ttl) {
        *ttl = (int64_t)dkv_get_be64(v.mv_data);
    }
    if (expires_at) {
        *expires_at = dkv_get_be64s((const unsigned char *)v.mv_data + 8);
    }
    return DKV_OK;
}

/* Reads lease ID and tells whether it is live at W's now: DKV_OK (live),
 * DKV_ENOTFOUND (absent or expired; message set), or fatal (poisons). */
static dkv_status_t
live_lease(int64_t *ttl, int64_t *expires_at, dkv_eng_write_t *w,
           uint64_t id, const char *op)
{
    int64_t t = 0, at = 0;
    dkv_status_t s = dkv_eng_lease_get(&t, &at, w->engine, w->txn, id);

    if (s == DKV_OK && at <= w->now) {
        s = DKV_ENOTFOUND;
    }
    if (s == DKV_ENOTFOUND) {
        return dkv_error_set(s, "%s: lease %llu not found or expired", op,
                             (unsigned long long)id);
    }
    if (s != DKV_OK) {
        return dkv_eng_fail(w, s);
    }
    if (ttl) {
        *ttl = t;
    }
    if (expires_at) {
        *expires_at = at;
    }
    return DKV_OK;
}

static dkv_status_t
lease_write(dkv_eng_write_t *w, uint64_t id, int64_t ttl, int64_t at)
{
    unsigned char kb[8], vb[LEASE_REC];
    MDB_val k = { sizeof(kb), kb }, v = { sizeof(vb), vb };
    int rc;

    dkv_put_be64(kb, id);
    dkv_put_be64(vb, (uint64_t)ttl);
    dkv_put_be64s(vb + 8, at);
    if ((rc = mdb_put(w->txn, w->engine->leases, &k, &v, 0)) != 0) {
        return dkv_eng_mdb_fail(w, rc, "writing a lease");
    }
    return DKV_OK;
}

dkv_status_t
dkv_eng_lock_check(uint64_t *stale_lease, dkv_eng_write_t *w,
                   const void *key, size_t key_len, uint64_t token,
                   const char *op)
{
    dkv_eng_lock_t lock;
    int64_t at = 0;
    dkv_status_t s;

    *stale_lease = 0;
    if (token == 0) {
        MDB_stat st;

        /* The common case, no lock in the store, costs no lookup. */
        if (mdb_stat(w->txn, w->engine->locks, &st) == 0
            && st.ms_entries == 0) {
            return DKV_OK;
        }
    }
    s = dkv_eng_lock_get(&lock, w->engine, w->txn, key, key_len);
    if (s == DKV_ENOTFOUND) {
        if (token) {
            return dkv_error_set(DKV_ELOCKED, "%s: the key is not locked "
                                 "with token %llu", op,
                                 (unsigned long long)token);
        }
        return DKV_OK;
    }
    if (s == DKV_OK) {
        s = dkv_eng_lease_get(NULL, &at, w->engine, w->txn, lock.lease);
    }
    if (s == DKV_OK && at > w->now) {
        if (token != lock.token) {
            return dkv_error_set(DKV_ELOCKED, "%s: the key is locked "
                                 "(token %llu given)", op,
                                 (unsigned long long)token);
        }
        return DKV_OK;
    }
    if (s != DKV_OK && s != DKV_ENOTFOUND) {
        return dkv_eng_fail(w, s);
    }
    /* The holder's lease has expired: the lock is as good as released. */
    if (token) {
        return dkv_error_set(DKV_ELOCKED, "%s: the lock with token %llu "
                             "ended with its lease", op,
                             (unsigned long long)token);
    }
    *stale_lease = s == DKV_OK ? lock.lease : 0;
    return DKV_OK;
}

/* Removes the lock on KEY (held by LEASE) at the next revision. */
static dkv_status_t
lock_remove(dkv_eng_write_t *w, const void *key, size_t key_len,
            uint64_t lease)
{
    MDB_val k = { key_len, (void *)key };
    dkv_status_t s;
    int rc;

    if ((rc = mdb_del(w->txn, w->engine->locks, &k, NULL)) != 0) {
        return dkv_eng_mdb_fail(w, rc, "releasing a lock");
    }
    if ((s = dkv_eng_attach(w, lease, DKV_TAG_LOCK, key, key_len, 0))
        != DKV_OK) {
        return s;
    }
    w->state.revision++;
    return DKV_OK;
}

dkv_status_t
dkv_eng_lease_end(uint64_t *keys, dkv_eng_write_t *w, uint64_t id)
{
    dkv_engine_t *e = w->engine;
    apr_array_header_t *att;
    unsigned char kb[8];
    MDB_val k = { sizeof(kb), kb }, v;
    MDB_cursor *c;
    int64_t at;
    uint64_t n = 0;
    dkv_status_t s;
    int rc, i;

    if (keys) {
        *keys = 0;
    }
    if ((s = dkv_eng_lease_get(NULL, &at, e, w->txn, id)) != DKV_OK) {
        return dkv_eng_fail(w, s == DKV_ENOTFOUND ? DKV_ECORRUPT : s);
    }
    /* Copy the attachments first: ending them changes the database. */
    att = apr_array_make(w->pool, 8, sizeof(MDB_val));
    dkv_put_be64(kb, id);
    if ((rc = mdb_cursor_open(w->txn, e->lease_att, &c)) != 0) {
        return dkv_eng_mdb_fail(w, rc, "ending a lease");
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        MDB_val *copy = apr_array_push(att);

        copy->mv_size = v.mv_size;
        copy->mv_data = apr_pmemdup(w->pool, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) {
        return dkv_eng_mdb_fail(w, rc, "ending a lease");
    }
    for (i = 0; i < att->nelts; i++) {
        const MDB_val *a = &DKV_ARRAY_IDX(att, i, MDB_val);
        const unsigned char *p = a->mv_data;
        const void *key = p + 1;
        size_t key_len = a->mv_size - 1;

        if (a->mv_size < 2 || a->mv_size > 1 + DKV_MAX_KEY) {
            return dkv_eng_fail(w, dkv_error_set(DKV_ECORRUPT,
                                                 "damaged lease "
                                                 "attachment"));
        }
        if (p[0] == DKV_TAG_KEY) {
            dkv_rec_t rec;

            s = dkv_eng_load(&rec, e, w->txn, key, key_len);
            if (s == DKV_OK && rec.lease == id) {
                if ((s = dkv_eng_remove_key(w, key, key_len, &rec))
                    != DKV_OK) {
                    return s;
                }
                n++;
            } else if (s != DKV_OK && s != DKV_ENOTFOUND) {
                return dkv_eng_fail(w, s);
            }
        } else if (p[0] == DKV_TAG_LOCK) {
            dkv_eng_lock_t lock;

            s = dkv_eng_lock_get(&lock, e, w->txn, key, key_len);
            if (s == DKV_OK && lock.lease == id) {
                if ((s = lock_remove(w, key, key_len, id)) != DKV_OK) {
                    return s;
                }
            } else if (s != DKV_OK && s != DKV_ENOTFOUND) {
                return dkv_eng_fail(w, s);
            }
        }
    }
    k.mv_size = sizeof(kb);
    k.mv_data = kb;
    rc = mdb_del(w->txn, e->lease_att, &k, NULL);
    if (rc == 0 || rc == MDB_NOTFOUND) {
        rc = mdb_del(w->txn, e->leases, &k, NULL);
    }
    if (rc != 0) {
        return dkv_eng_mdb_fail(w, rc, "ending a lease");
    }
    if ((s = dkv_eng_expiry_entry(w, at, DKV_TAG_LEASE, kb, sizeof(kb), 0))
        != DKV_OK) {
        return s;
    }
    w->state.revision++;
    if (keys) {
        *keys = n;
    }
    return DKV_OK;
}

/* =========================================================== counters */

/* Parses the decimal int64 text P[0..N-1]; 1 on success. */
static int
parse_i64(int64_t *out, const unsigned char *p, size_t n)
{
    uint64_t acc = 0, limit;
    size_t i = 0;
    int neg = 0;

    if (n == 0 || n > 20) {
        return 0;
    }
    if (p[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n) {
        return 0;
    }
    limit = neg ? UINT64_C(9223372036854775808)
                : UINT64_C(9223372036854775807);
    for (; i < n; i++) {
        unsigned d;

        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
        d = (unsigned)(p[i] - '0');
        if (acc > (limit - d) / 10) {
            return 0;
        }
        acc = acc * 10 + d;
    }
    if (neg) {
        *out = acc == UINT64_C(9223372036854775808)
               ? INT64_MIN : -(int64_t)acc;
    } else {
        *out = (int64_t)acc;
    }
    return 1;
}

/* Writes V in decimal into BUF (I64_TEXT bytes); returns the length. */
static size_t
format_i64(char *buf, int64_t v)
{
    char tmp[I64_TEXT];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0, len = 0;

    do {
        tmp[n++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    if (v < 0) {
        buf[len++] = '-';
    }
    while (n) {
        buf[len++] = tmp[--n];
    }
    return len;
}

static dkv_status_t
check_counter_opts(const dkv_counter_opts_t *o, int64_t v)
{
    if (o->ttl_ms < 0) {
        return dkv_error_set(DKV_EINVAL, "counter: negative ttl");
    }
    if (o->has_max && v > o->max) {
        return dkv_error_set(DKV_ERANGE, "counter: %lld is over the max "
                             "%lld", (long long)v, (long long)o->max);
    }
    if (o->has_min && v < o->min) {
        return dkv_error_set(DKV_ERANGE, "counter: %lld is under the min "
                             "%lld", (long long)v, (long long)o->min);
    }
    return DKV_OK;
}

/* Sets counter KEY: to its value plus DELTA (SET 0) or to DELTA (SET 1). */
static dkv_status_t
counter_change(int64_t *previous, int64_t *current, dkv_eng_write_t *w,
               const void *key, size_t key_len, int64_t delta, int set,
               const dkv_counter_opts_t *o)
{
    static const dkv_counter_opts_t none;
    dkv_rec_t old, rec;
    char text[I64_TEXT];
    int64_t base = 0, nv;
    uint64_t stale;
    int found, live, lease_gone;
    dkv_status_t s;

    if (o == NULL) {
        o = &none;
    }
    if (w->status != DKV_OK) {
        return w->status;
    }
    if ((s = dkv_eng_check_key(key, key_len, "counter")) != DKV_OK) {
        return s;
    }
    if (o->ttl_ms < 0 || (o->ttl_ms && w->now > INT64_MAX - o->ttl_ms)) {
        return dkv_error_set(DKV_EINVAL, "counter: bad ttl");
    }
    if ((s = dkv_eng_load(&old, w->engine, w->txn, key, key_len))
        == DKV_OK) {
        found = 1;
        live = dkv_eng_live(w->engine, w->txn, &old, w->now, &lease_gone,
                            &s);
    } else {
        found = live = 0;
        s = s == DKV_ENOTFOUND ? DKV_OK : s;
    }
    if (s != DKV_OK) {
        return dkv_eng_fail(w, s);
    }
    if ((s = dkv_eng_lock_check(&stale, w, key, key_len, o->lock,
                                "counter")) != DKV_OK) {
        return s;
    }
    if (live && !parse_i64(&base, old.value, old.value_len)) {
        return dkv_error_set(DKV_EINVAL, "counter: the key holds a value "
                             "that is not a decimal int64");
    }
    if (set) {
        nv = delta;
    } else if ((delta > 0 && base > INT64_MAX - delta)
               || (delta < 0 && base < INT64_MIN - delta)) {
        return dkv_error_set(DKV_ERANGE, "counter: %lld + %lld overflows",
                             (long long)base, (long long)delta);
    } else {
        nv = base + delta;
    }
    if ((s = check_counter_opts(o, nv)) != DKV_OK) {
        return s;
    }

    if ((stale || (found && !live))
        && (s = dkv_eng_settle(w, key, key_len, stale)) != DKV_OK) {
        return s;
    }
    memset(&rec, 0, sizeof(rec));
    if (live) {
        if ((s = dkv_eng_load_copy(&old, w, key, key_len)) != DKV_OK) {
            return dkv_eng_fail(w, s == DKV_ENOTFOUND ? DKV_ECORRUPT : s);
        }
        rec = old;
    }
    if (!live || set) {
        rec.ttl_ms = o->ttl_ms;
        rec.expires_at = o->ttl_ms ? w->now + o->ttl_ms : 0;
    }
    rec.value = (const unsigned char *)text;
    rec.value_len = format_i64(text, nv);
    if ((s = dkv_eng_write_record(w, key, key_len, live ? &old : NULL, &rec,
                                  NULL, 0, 0)) != DKV_OK) {
        return s;
    }
    if (previous) {
        *previous = base;
    }
    if (current) {
        *current = nv;
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_counter_add(int64_t *previous, int64_t *current,
                       dkv_eng_write_t *write, const void *key,
                       size_t key_len, int64_t delta,
                       const dkv_counter_opts_t *opts)
{
    return counter_change(previous, current, write, key, key_len, delta, 0,
                          opts);
}

dkv_status_t
dkv_engine_counter_set(dkv_eng_write_t *write, const void *key,
                       size_t key_len, int64_t value,
                       const dkv_counter_opts_t *opts)
{
    return counter_change(NULL, NULL, write, key, key_len, value, 1, opts);
}

dkv_status_t
dkv_engine_counter_get(int64_t *value, dkv_eng_read_t *read,
                       const void *key, size_t key_len)
{
    dkv_rec_t rec;
    dkv_status_t s;
    int live;

    if ((s = dkv_eng_check_key(key, key_len, "counter get")) != DKV_OK) {
        return s;
    }
    s = dkv_eng_load(&rec, read->engine, read->txn, key, key_len);
    if (s == DKV_OK) {
        live = dkv_eng_live(read->engine, read->txn, &rec, read->now, NULL,
                            &s);
        if (s == DKV_OK && !live) {
            s = DKV_ENOTFOUND;
        }
    }
    if (s == DKV_ENOTFOUND) {
        return dkv_error_set(s, "counter get: key not found");
    }
    if (s != DKV_OK) {
        return s;
    }
    if (!parse_i64(value, rec.value, rec.value_len)) {
        return dkv_error_set(DKV_EINVAL, "counter get: the key holds a "
                             "value that is not a decimal int64");
    }
    return DKV_OK;
}

/* ============================================================= leases */

dkv_status_t
dkv_engine_lease_grant(uint64_t *lease, dkv_eng_write_t *w, int64_t ttl_ms)
{
    unsigned char id[8];
    uint64_t n;
    dkv_status_t s;

    if (w->status != DKV_OK) {
        return w->status;
    }
    if (ttl_ms < DKV_MIN_LEASE_TTL || ttl_ms > DKV_MAX_LEASE_TTL
        || w->now > INT64_MAX - ttl_ms) {
        return dkv_error_set(DKV_EINVAL, "lease grant: ttl %lld ms is "
                             "outside [%d, %lld]", (long long)ttl_ms,
                             DKV_MIN_LEASE_TTL,
                             (long long)DKV_MAX_LEASE_TTL);
    }
    n = w->state.next_lease;
    dkv_put_be64(id, n);
    if ((s = lease_write(w, n, ttl_ms, w->now + ttl_ms)) != DKV_OK
        || (s = dkv_eng_expiry_entry(w, w->now + ttl_ms, DKV_TAG_LEASE, id,
                                     sizeof(id), 1)) != DKV_OK) {
        return s;
    }
    w->state.next_lease = n + 1;
    w->state.revision++;
    if (lease) {
        *lease = n;
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_lease_keepalive(int64_t *remaining_ms, dkv_eng_write_t *w,
                           uint64_t lease)
{
    unsigned char id[8];
    int64_t ttl, at, nat;
    dkv_status_t s;

    if (w->status != DKV_OK) {
        return w->status;
    }
    if ((s = live_lease(&ttl, &at, w, lease, "lease keepalive")) != DKV_OK) {
        return s;
    }
    nat = w->now + ttl;
    dkv_put_be64(id, lease);
    if (nat != at
        && ((s = dkv_eng_expiry_entry(w, at, DKV_TAG_LEASE, id, sizeof(id),
                                      0)) != DKV_OK
            || (s = dkv_eng_expiry_entry(w, nat, DKV_TAG_LEASE, id,
                                         sizeof(id), 1)) != DKV_OK
            || (s = lease_write(w, lease, ttl, nat)) != DKV_OK)) {
        return s;
    }
    w->state.revision++;
    if (remaining_ms) {
        *remaining_ms = ttl;
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_lease_revoke(uint64_t *keys_deleted, dkv_eng_write_t *w,
                        uint64_t lease)
{
    dkv_status_t s;

    if (keys_deleted) {
        *keys_deleted = 0;
    }
    if (w->status != DKV_OK) {
        return w->status;
    }
    if ((s = live_lease(NULL, NULL, w, lease, "lease revoke")) != DKV_OK) {
        return s;
    }
    return dkv_eng_lease_end(keys_deleted, w, lease);
}

dkv_status_t
dkv_engine_lease_info(dkv_lease_info_t *info, dkv_eng_read_t *r,
                      uint64_t lease)
{
    unsigned char kb[8];
    MDB_val k = { sizeof(kb), kb }, v;
    MDB_cursor *c;
    int64_t ttl, at;
    dkv_status_t s;
    int rc;

    s = dkv_eng_lease_get(&ttl, &at, r->engine, r->txn, lease);
    if (s == DKV_OK && at <= r->now) {
        s = DKV_ENOTFOUND;
    }
    if (s == DKV_ENOTFOUND) {
        return dkv_error_set(s, "lease info: lease %llu not found or "
                             "expired", (unsigned long long)lease);
    }
    if (s != DKV_OK) {
        return s;
    }
    memset(info, 0, sizeof(*info));
    info->id = lease;
    info->ttl_ms = ttl;
    info->expires_at = at;
    info->remaining_ms = at - r->now;
    if ((rc = mdb_cursor_open(r->txn, r->engine->lease_att, &c)) != 0) {
        return dkv_eng_mdb_fail(NULL, rc, "lease info");
    }
    dkv_put_be64(kb, lease);
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        const unsigned char *p = v.mv_data;

        if (v.mv_size >= 1 && p[0] == DKV_TAG_KEY) {
            info->keys++;
        } else if (v.mv_size >= 1 && p[0] == DKV_TAG_LOCK) {
            info->locks++;
        }
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) {
        return dkv_eng_mdb_fail(NULL, rc, "lease info");
    }
    return DKV_OK;
}

/* ============================================================== locks */

dkv_status_t
dkv_engine_lock_acquire(dkv_lock_t *lock, dkv_eng_write_t *w,
                        const void *key, size_t key_len, uint64_t lease)
{
    dkv_eng_lock_t held;
    unsigned char vb[LOCK_REC];
    MDB_val k = { key_len, (void *)key }, v = { sizeof(vb), vb };
    dkv_lock_t out = { 0, 0, 0 };
    uint64_t token;
    dkv_status_t s;
    int rc;

    if (lock) {
        *lock = out;
    }
    if (w->status != DKV_OK) {
        return w->status;
    }
    if ((s = dkv_eng_check_key(key, key_len, "lock acquire")) != DKV_OK) {
        return s;
    }
    if (lease == 0) {
        return dkv_error_set(DKV_EINVAL, "lock acquire: no lease");
    }
    if ((s = live_lease(NULL, NULL, w, lease, "lock acquire")) != DKV_OK) {
        return s;
    }
    s = dkv_eng_lock_get(&held, w->engine, w->txn, key, key_len);
    if (s == DKV_OK) {
        int64_t at = 0;
        dkv_status_t ls = dkv_eng_lease_get(NULL, &at, w->engine, w->txn,
                                            held.lease);

        if (ls != DKV_OK && ls != DKV_ENOTFOUND) {
            return dkv_eng_fail(w, ls);
        }
        if (ls == DKV_OK && at > w->now) {
            if (lock) {
                lock->acquired = held.lease == lease;
                lock->token = held.lease == lease ? held.token : 0;
                lock->lease = held.lease;
            }
            if (held.lease == lease) {
                return DKV_OK;
            }
            return dkv_error_set(DKV_ELOCKED, "lock acquire: held by lease "
                                 "%llu", (unsigned long long)held.lease);
        }
        /* The holder's lease has expired: end it, which frees the lock. */
        if (ls == DKV_OK) {
            if ((s = dkv_eng_lease_end(NULL, w, held.lease)) != DKV_OK) {
                return s;
            }
        } else if ((rc = mdb_del(w->txn, w->engine->locks, &k, NULL))
                   != 0) {
            return dkv_eng_mdb_fail(w, rc, "lock acquire");
        }
    } else if (s != DKV_ENOTFOUND) {
        return dkv_eng_fail(w, s);
    }
    token = w->state.revision + 1;
    dkv_put_be64(vb, lease);
    dkv_put_be64(vb + 8, token);
    if ((rc = mdb_put(w->txn, w->engine->locks, &k, &v, 0)) != 0) {
        return dkv_eng_mdb_fail(w, rc, "lock acquire");
    }
    if ((s = dkv_eng_attach(w, lease, DKV_TAG_LOCK, key, key_len, 1))
        != DKV_OK) {
        return s;
    }
    w->state.revision = token;
    if (lock) {
        lock->acquired = 1;
        lock->token = token;
        lock->lease = lease;
    }
    return DKV_OK;
}

dkv_status_t
dkv_engine_lock_release(dkv_eng_write_t *w, const void *key,
                        size_t key_len, uint64_t token)
{
    dkv_eng_lock_t held;
    int64_t at = 0;
    dkv_status_t s;

    if (w->status != DKV_OK) {
        return w->status;
    }
    if ((s = dkv_eng_check_key(key, key_len, "lock release")) != DKV_OK) {
        return s;
    }
    s = dkv_eng_lock_get(&held, w->engine, w->txn, key, key_len);
    if (s == DKV_OK) {
        s = dkv_eng_lease_get(NULL, &at, w->engine, w->txn, held.lease);
        if (s == DKV_OK && at <= w->now) {
            s = DKV_ENOTFOUND;
        }
    }
    if (s == DKV_ENOTFOUND) {
        return dkv_error_set(s, "lock release: no lock is held on the key");
    }
    if (s != DKV_OK) {
        return dkv_eng_fail(w, s);
    }
    if (held.token != token) {
        return dkv_error_set(DKV_ELOCKED, "lock release: the lock is held "
                             "with another token");
    }
    return lock_remove(w, key, key_len, held.lease);
}

/* ============================================================= expiry */

/* One due entry of the expiry index, copied. */
typedef struct due {
    int64_t at;
    int tag;
    MDB_val data;
} due_t;

/* 1 when the expiry index still has an entry due at W's now. */
static int
first_due(dkv_eng_write_t *w)
{
    MDB_cursor *c;
    MDB_val k, v;
    int due = 0;

    if (mdb_cursor_open(w->txn, w->engine->expiry, &c) != 0) {
        return 0;
    }
    if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && k.mv_size == 9) {
        due = dkv_get_be64s(k.mv_data) <= w->now;
    }
    mdb_cursor_close(c);
    return due;
}

dkv_status_t
dkv_engine_expire_due(uint64_t *expired, int *more, dkv_eng_write_t *w,
                      size_t max)
{
    dkv_engine_t *e = w->engine;
    apr_array_header_t *due;
    MDB_cursor *c;
    MDB_val k, v;
    uint64_t n = 0;
    dkv_status_t s;
    int rc, i;

    if (expired) {
        *expired = 0;
    }
    if (more) {
        *more = 0;
    }
    if (w->status != DKV_OK) {
        return w->status;
    }
    due = apr_array_make(w->pool, 16, sizeof(due_t));
    if ((rc = mdb_cursor_open(w->txn, e->expiry, &c)) != 0) {
        return dkv_eng_mdb_fail(w, rc, "expire");
    }
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        due_t *d;

        if (k.mv_size != 9) {
            mdb_cursor_close(c);
            return dkv_eng_fail(w, dkv_error_set(DKV_ECORRUPT,
                                                 "damaged expiry entry"));
        }
        if (dkv_get_be64s(k.mv_data) > w->now
            || (max && (size_t)due->nelts == max)) {
            break;
        }
        d = apr_array_push(due);
        d->at = dkv_get_be64s(k.mv_data);
        d->tag = ((const unsigned char *)k.mv_data)[8];
        d->data.mv_size = v.mv_size;
        d->data.mv_data = apr_pmemdup(w->pool, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return dkv_eng_mdb_fail(w, rc, "expire");
    }

    for (i = 0; i < due->nelts; i++) {
        const due_t *d = &DKV_ARRAY_IDX(due, i, due_t);

        if (d->tag == DKV_TAG_KEY) {
            dkv_rec_t rec;

            s = dkv_eng_load(&rec, e, w->txn, d->data.mv_data,
                             d->data.mv_size);
            if (s == DKV_OK && rec.expires_at == d->at) {
                if ((s = dkv_eng_remove_key(w, d->data.mv_data,
                                            d->data.mv_size, &rec))
                    != DKV_OK) {
                    return s;
                }
                n++;
            } else if (s != DKV_OK && s != DKV_ENOTFOUND) {
                return dkv_eng_fail(w, s);
            }
        } else if (d->tag == DKV_TAG_LEASE && d->data.mv_size == 8) {
            uint64_t id = dkv_get_be64(d->data.mv_data), keys;
            int64_t at;

            s = dkv_eng_lease_get(NULL, &at, e, w->txn, id);
            if (s == DKV_OK && at == d->at) {
                if ((s = dkv_eng_lease_end(&keys, w, id)) != DKV_OK) {
                    return s;
                }
                n += keys;
            } else if (s != DKV_OK && s != DKV_ENOTFOUND) {
                return dkv_eng_fail(w, s);
            }
        } else {
            return dkv_eng_fail(w, dkv_error_set(DKV_ECORRUPT,
                                                 "damaged expiry entry"));
        }
    }
    if (more) {
        *more = first_due(w);
    }
    if (expired) {
        *expired = n;
    }
    return DKV_OK;
}
