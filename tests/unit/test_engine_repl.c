/*
 * test_engine_repl.c -- unit tests of the engine's replication support
 * (src/engine/repl.c): the Raft log (put, replace, scan, truncate,
 * compact), the replica metadata, both committed or aborted together with
 * the store's changes and the applied index, dkv_engine_write_set_now,
 * and the dump and load of the store's state: a loaded store answers
 * every read as its source does and goes on identically, a load replaces
 * everything but the log and the metadata, malformed records are
 * refused.  Suite "engine_repl".
 */
#include <string.h>

#include <apr_strings.h>

#include "testutil.h"
#include "common/codec.h"
#include "engine/engine.h"

#define T0 INT64_C(1700000000000)

/* apr_psprintf's conversions of 64-bit and size_t numbers. */
#define U64 "%" APR_UINT64_T_FMT
#define I64 "%" APR_INT64_T_FMT
#define SZ "%" APR_SIZE_T_FMT

/* ============================================================ helpers */

typedef struct fx {
    apr_pool_t *pool;
    const char *dir;
    dkv_engine_t *e;
} fx_t;

static const dkv_engine_opts_t retain_opts = { 0, 0, 40, 1 };

static void
fx_open(fx_t *fx)
{
    fx->pool = dkv_test_pool();
    fx->dir = dkv_test_tempdir(fx->pool);
    DKV_ASSERT_OK(dkv_engine_open(&fx->e, fx->dir, &retain_opts, fx->pool));
}

static void
fx_close(fx_t *fx)
{
    dkv_engine_close(fx->e);
    apr_pool_destroy(fx->pool);
}

static dkv_eng_write_t *
wbegin(fx_t *fx, int64_t now)
{
    dkv_eng_write_t *w = NULL;

    DKV_ASSERT_OK(dkv_engine_write_begin(&w, fx->e, now, fx->pool));
    return w;
}

static dkv_eng_read_t *
rbegin(fx_t *fx, int64_t now)
{
    dkv_eng_read_t *r = NULL;

    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx->e, now));
    return r;
}

static dkv_status_t
put(dkv_eng_write_t *w, const char *key, const char *value,
    const dkv_put_opts_t *opts)
{
    return dkv_engine_put(NULL, w, key, strlen(key), value, strlen(value),
                          opts);
}

/* The log as text: "index=data;" per entry from FROM on. */
typedef struct logacc {
    apr_pool_t *pool;
    const char *text;
    size_t n;
    size_t stop_after;      /* nonzero: return DKV_ECONFLICT after N */
} logacc_t;

static dkv_status_t
log_cb(void *baton, uint64_t index, const void *data, size_t len)
{
    logacc_t *a = baton;

    a->text = apr_psprintf(a->pool, "%s" U64 "=%.*s;", a->text,
                           (apr_uint64_t)index, (int)len,
                           len ? (const char *)data : "");
    a->n++;
    if (a->stop_after && a->n == a->stop_after) {
        return DKV_ECONFLICT;
    }
    return DKV_OK;
}

static const char *
log_text(fx_t *fx, uint64_t from)
{
    dkv_eng_read_t *r = rbegin(fx, T0);
    logacc_t a = { fx->pool, "", 0, 0 };

    DKV_EXPECT_OK(dkv_engine_log_scan(r, from, log_cb, &a));
    dkv_engine_read_end(r);
    return a.text;
}

static uint64_t
revision_of(fx_t *fx)
{
    dkv_eng_read_t *r = rbegin(fx, T0);
    uint64_t rev = dkv_engine_read_revision(r);

    dkv_engine_read_end(r);
    return rev;
}

static void
log_put(dkv_eng_write_t *w, uint64_t index, const char *data)
{
    DKV_EXPECT_OK(dkv_engine_log_put(w, index, data, strlen(data)));
}

/* Replica metadata NAME as a string in FX's pool, or NULL when absent. */
static const char *
meta_text(fx_t *fx, const char *name)
{
    dkv_eng_read_t *r = rbegin(fx, T0);
    const void *data = NULL;
    size_t len = 0;
    dkv_status_t s = dkv_engine_meta_get(&data, &len, r, name);
    const char *out = NULL;

    if (s == DKV_OK) {
        out = apr_pstrmemdup(fx->pool, data, len);
    } else {
        DKV_EXPECT_STATUS(s, DKV_ENOTFOUND);
    }
    dkv_engine_read_end(r);
    return out;
}

/* ================================================================ log */

static void
test_log(void)
{
    fx_t fx;
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    logacc_t a;

    fx_open(&fx);
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "");

    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_log_truncate(w, 1));      /* empty log */
    DKV_EXPECT_OK(dkv_engine_log_compact(w, 10));
    log_put(w, 1, "a");
    log_put(w, 2, "b");
    log_put(w, 3, "c");
    log_put(w, 4, "d");
    log_put(w, 5, "e");
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "1=a;2=b;3=c;4=d;5=e;");
    DKV_EXPECT_STR_EQ(log_text(&fx, 3), "3=c;4=d;5=e;");
    DKV_EXPECT_STR_EQ(log_text(&fx, 5), "5=e;");
    DKV_EXPECT_STR_EQ(log_text(&fx, 6), "");
    DKV_EXPECT_STR_EQ(log_text(&fx, UINT64_MAX), "");

    /* Replace (an existing index, the last one, one before a gap) and
     * out-of-order puts. */
    w = wbegin(&fx, T0);
    log_put(w, 3, "C3");
    log_put(w, 5, "E5");
    log_put(w, 10, "j");
    log_put(w, 7, "g");
    DKV_EXPECT_OK(dkv_engine_log_put(w, 8, NULL, 0));  /* empty entry */
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_EXPECT_STR_EQ(log_text(&fx, 0),
                      "1=a;2=b;3=C3;4=d;5=E5;7=g;8=;10=j;");

    /* Truncation: from the middle of a gap, nothing, the tail. */
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_log_truncate(w, 9));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "1=a;2=b;3=C3;4=d;5=E5;7=g;8=;");
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_log_truncate(w, 100));
    DKV_EXPECT_OK(dkv_engine_log_truncate(w, 7));
    log_put(w, 6, "F");             /* appended after the truncation */
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "1=a;2=b;3=C3;4=d;5=E5;6=F;");

    /* Compaction: nothing below the first, a prefix, exactly one. */
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_log_compact(w, 0));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "1=a;2=b;3=C3;4=d;5=E5;6=F;");
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_log_compact(w, 2));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "3=C3;4=d;5=E5;6=F;");
    DKV_EXPECT_STR_EQ(log_text(&fx, 1), "3=C3;4=d;5=E5;6=F;");
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_log_compact(w, 3));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "4=d;5=E5;6=F;");

    /* The scan stops at the callback's status. */
    r = rbegin(&fx, T0);
    memset(&a, 0, sizeof(a));
    a.pool = fx.pool;
    a.text = "";
    a.stop_after = 2;
    DKV_EXPECT_STATUS(dkv_engine_log_scan(r, 0, log_cb, &a), DKV_ECONFLICT);
    DKV_EXPECT_STR_EQ(a.text, "4=d;5=E5;");
    dkv_engine_read_end(r);

    /* Compaction past the end, then truncation from 0, empty it all. */
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_log_compact(w, 100));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "");
    w = wbegin(&fx, T0);
    log_put(w, 101, "x");
    log_put(w, 102, "y");
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "101=x;102=y;");
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_log_truncate(w, 0));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "");

    /* Many entries, a compaction and a truncation inside them, aborted. */
    w = wbegin(&fx, T0);
    {
        uint64_t i;

        for (i = 1; i <= 2000; i++) {
            DKV_EXPECT_OK(dkv_engine_log_put(w, i, &i, sizeof(i)));
        }
    }
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_log_compact(w, 1500));
    DKV_EXPECT_OK(dkv_engine_log_truncate(w, 1601));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    r = rbegin(&fx, T0);
    memset(&a, 0, sizeof(a));
    a.pool = fx.pool;
    a.text = "";
    DKV_EXPECT_OK(dkv_engine_log_scan(r, 0, log_cb, &a));
    DKV_EXPECT_UINT_EQ(a.n, 100);
    dkv_engine_read_end(r);
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_log_truncate(w, 0));
    log_put(w, 7, "never");
    dkv_engine_write_abort(w);
    r = rbegin(&fx, T0);
    a.n = 0;
    DKV_EXPECT_OK(dkv_engine_log_scan(r, 0, log_cb, &a));
    DKV_EXPECT_UINT_EQ(a.n, 100);
    dkv_engine_read_end(r);

    /* The log is not the store: no revision, no key. */
    r = rbegin(&fx, T0);
    DKV_EXPECT_UINT_EQ(dkv_engine_read_revision(r), 0);
    dkv_engine_read_end(r);
    fx_close(&fx);
}

/* ======================================================= replica meta */

static void
test_meta(void)
{
    fx_t fx;
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    const void *data;
    size_t len;

    fx_open(&fx);
    DKV_EXPECT_TRUE(meta_text(&fx, "raft.hard") == NULL);
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_meta_put(w, "raft.hard", "t1v2c3", 6));
    DKV_EXPECT_OK(dkv_engine_meta_put(w, "empty", NULL, 0));
    DKV_EXPECT_STATUS(dkv_engine_meta_put(w, "", "x", 1), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_engine_meta_put(w, NULL, "x", 1), DKV_EINVAL);
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_EXPECT_STR_EQ(meta_text(&fx, "raft.hard"), "t1v2c3");
    DKV_EXPECT_STR_EQ(meta_text(&fx, "empty"), "");
    DKV_EXPECT_TRUE(meta_text(&fx, "raft.conf") == NULL);
    DKV_EXPECT_TRUE(meta_text(&fx, "raft.har") == NULL);

    /* Replaced; the old value stays in an older snapshot. */
    r = rbegin(&fx, T0);
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_meta_put(w, "raft.hard", "t2", 2));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    DKV_ASSERT_OK(dkv_engine_meta_get(&data, &len, r, "raft.hard"));
    DKV_EXPECT_MEM_EQ(data, len, "t1v2c3", 6);
    DKV_EXPECT_STATUS(dkv_engine_meta_get(&data, &len, r, ""), DKV_EINVAL);
    dkv_engine_read_end(r);
    DKV_EXPECT_STR_EQ(meta_text(&fx, "raft.hard"), "t2");

    /* Not the store's meta: the store is untouched. */
    r = rbegin(&fx, T0);
    DKV_EXPECT_UINT_EQ(dkv_engine_read_revision(r), 0);
    DKV_EXPECT_UINT_EQ(dkv_engine_applied_index(r), 0);
    dkv_engine_read_end(r);
    fx_close(&fx);
}

/* Log, metadata, a key and the applied index commit together, or none of
 * them does. */
static void
test_together(void)
{
    fx_t fx;
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    dkv_item_t item;

    fx_open(&fx);
    w = wbegin(&fx, T0);
    log_put(w, 1, "e1");
    DKV_EXPECT_OK(dkv_engine_meta_put(w, "raft.hard", "h1", 2));
    DKV_EXPECT_OK(put(w, "k", "v1", NULL));
    log_put(w, 2, "e2");
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 2));
    r = rbegin(&fx, T0);
    DKV_EXPECT_UINT_EQ(dkv_engine_applied_index(r), 2);
    DKV_EXPECT_UINT_EQ(dkv_engine_read_revision(r), 1);
    DKV_EXPECT_OK(dkv_engine_get(&item, r, "k", 1, NULL, fx.pool));
    dkv_engine_read_end(r);
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "1=e1;2=e2;");
    DKV_EXPECT_STR_EQ(meta_text(&fx, "raft.hard"), "h1");

    /* Aborted: none of it. */
    w = wbegin(&fx, T0);
    log_put(w, 3, "e3");
    DKV_EXPECT_OK(dkv_engine_log_compact(w, 1));
    DKV_EXPECT_OK(dkv_engine_meta_put(w, "raft.hard", "h2", 2));
    DKV_EXPECT_OK(put(w, "k", "v2", NULL));
    dkv_engine_write_abort(w);
    r = rbegin(&fx, T0);
    DKV_EXPECT_UINT_EQ(dkv_engine_applied_index(r), 2);
    DKV_EXPECT_UINT_EQ(dkv_engine_read_revision(r), 1);
    DKV_EXPECT_OK(dkv_engine_get(&item, r, "k", 1, NULL, fx.pool));
    DKV_EXPECT_MEM_EQ(item.value, item.value_len, "v1", 2);
    dkv_engine_read_end(r);
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "1=e1;2=e2;");
    DKV_EXPECT_STR_EQ(meta_text(&fx, "raft.hard"), "h1");

    /* Only log and metadata, with an applied index. */
    w = wbegin(&fx, T0);
    log_put(w, 3, "e3");
    DKV_EXPECT_OK(dkv_engine_meta_put(w, "raft.hard", "h3", 2));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 3));
    r = rbegin(&fx, T0);
    DKV_EXPECT_UINT_EQ(dkv_engine_applied_index(r), 3);
    DKV_EXPECT_UINT_EQ(dkv_engine_read_revision(r), 1);
    dkv_engine_read_end(r);
    DKV_EXPECT_STR_EQ(log_text(&fx, 0), "1=e1;2=e2;3=e3;");
    DKV_EXPECT_STR_EQ(meta_text(&fx, "raft.hard"), "h3");

    /* They survive a reopen. */
    dkv_engine_close(fx.e);
    DKV_ASSERT_OK(dkv_engine_open(&fx.e, fx.dir, &retain_opts, fx.pool));
    DKV_EXPECT_STR_EQ(log_text(&fx, 2), "2=e2;3=e3;");
    DKV_EXPECT_STR_EQ(meta_text(&fx, "raft.hard"), "h3");
    r = rbegin(&fx, T0);
    DKV_EXPECT_UINT_EQ(dkv_engine_applied_index(r), 3);
    dkv_engine_read_end(r);
    fx_close(&fx);
}

/* ============================================================ set_now */

static void
test_set_now(void)
{
    fx_t fx;
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    dkv_put_opts_t o;
    dkv_item_t item;
    dkv_lease_info_t li;
    uint64_t lease = 0, expired = 0;
    const dkv_event_t *ev;
    size_t nev;

    fx_open(&fx);
    memset(&o, 0, sizeof(o));
    o.ttl_ms = 1000;
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(put(w, "early", "1", &o));
    dkv_engine_write_set_now(w, T0 + 5000);
    DKV_EXPECT_OK(put(w, "late", "2", &o));
    DKV_EXPECT_OK(dkv_engine_lease_grant(&lease, w, 2000));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));

    r = rbegin(&fx, T0 + 1);
    DKV_ASSERT_OK(dkv_engine_get(&item, r, "early", 5, NULL, fx.pool));
    DKV_EXPECT_INT_EQ(item.created_at, T0);
    DKV_EXPECT_INT_EQ(item.expires_at, T0 + 1000);
    DKV_ASSERT_OK(dkv_engine_get(&item, r, "late", 4, NULL, fx.pool));
    DKV_EXPECT_INT_EQ(item.created_at, T0 + 5000);
    DKV_EXPECT_INT_EQ(item.expires_at, T0 + 6000);
    DKV_ASSERT_OK(dkv_engine_lease_info(&li, r, lease));
    DKV_EXPECT_INT_EQ(li.expires_at, T0 + 7000);
    DKV_EXPECT_INT_EQ(dkv_engine_next_expiry(r), T0 + 1000);
    dkv_engine_read_end(r);

    /* Expiry follows the context's time: at T0 nothing is due, after the
     * move to T0 + 5500 "early" is. */
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(dkv_engine_expire_due(&expired, NULL, w, 0));
    DKV_EXPECT_UINT_EQ(expired, 0);
    dkv_engine_write_set_now(w, T0 + 5500);
    DKV_EXPECT_OK(dkv_engine_expire_due(&expired, NULL, w, 0));
    DKV_EXPECT_UINT_EQ(expired, 1);
    /* A write meeting an expired key treats it as absent at the new
     * time: "late" is live at T0 + 5500, gone at T0 + 6000. */
    memset(&o, 0, sizeof(o));
    o.if_absent = 1;
    DKV_EXPECT_STATUS(put(w, "late", "3", &o), DKV_ECONFLICT);
    dkv_engine_write_set_now(w, T0 + 6000);
    DKV_EXPECT_OK(put(w, "late", "3", &o));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    ev = dkv_engine_write_events(w, &nev);
    DKV_ASSERT_UINT_EQ(nev, 3);     /* early deleted, late deleted, put */
    DKV_EXPECT_INT_EQ(ev[0].type, DKV_EVENT_DELETE);
    DKV_EXPECT_MEM_EQ(ev[0].key, ev[0].key_len, "early", 5);
    DKV_EXPECT_INT_EQ(ev[1].type, DKV_EVENT_DELETE);
    DKV_EXPECT_INT_EQ(ev[2].type, DKV_EVENT_PUT);

    r = rbegin(&fx, T0 + 6000);
    DKV_ASSERT_OK(dkv_engine_get(&item, r, "late", 4, NULL, fx.pool));
    DKV_EXPECT_INT_EQ(item.created_at, T0 + 6000);
    DKV_EXPECT_INT_EQ(item.version, 1);
    dkv_engine_read_end(r);
    fx_close(&fx);
}

/* ========================================================== dump/load */

/* A dump as one byte stream, as the replica keeps it in a file. */
typedef struct stream {
    apr_pool_t *pool;
    unsigned char *buf;
    size_t len;
    size_t cap;
    size_t records;
} stream_t;

static dkv_status_t
stream_cb(void *baton, const void *rec, size_t len)
{
    stream_t *st = baton;

    if (st->len + len > st->cap) {
        size_t cap = st->cap ? st->cap : 4096;
        unsigned char *grown;

        while (cap < st->len + len) {
            cap *= 2;
        }
        grown = apr_palloc(st->pool, cap);
        if (st->len) {
            memcpy(grown, st->buf, st->len);
        }
        st->buf = grown;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, rec, len);
    st->len += len;
    st->records++;
    return DKV_OK;
}

static void
dump_all(stream_t *st, fx_t *fx, apr_pool_t *pool)
{
    dkv_eng_read_t *r = rbegin(fx, T0);

    memset(st, 0, sizeof(*st));
    st->pool = pool;
    DKV_EXPECT_OK(dkv_engine_dump(r, stream_cb, st));
    dkv_engine_read_end(r);
}

/* Loads the stream ST into FX in one write context, committed with
 * APPLIED; the stream is split into records by their length fields. */
static void
load_all(fx_t *fx, const stream_t *st, uint64_t applied)
{
    dkv_eng_write_t *w = wbegin(fx, T0);
    size_t off = 0, n = 0;

    DKV_ASSERT_OK(dkv_engine_load_begin(w));
    while (off < st->len && n < 1000000) {
        const unsigned char *p = st->buf + off;
        size_t klen, vlen;

        DKV_ASSERT_TRUE(st->len - off >= 9);
        klen = dkv_get_be32(p + 1);
        DKV_ASSERT_TRUE(st->len - off >= 9 + klen);
        vlen = dkv_get_be32(p + 5 + klen);
        DKV_ASSERT_TRUE(st->len - off >= 9 + klen + vlen);
        DKV_EXPECT_OK(dkv_engine_load_record(w, p, 9 + klen + vlen));
        off += 9 + klen + vlen;
        n++;
    }
    DKV_EXPECT_UINT_EQ(n, st->records);
    DKV_ASSERT_OK(dkv_engine_write_commit(w, applied));
}

static dkv_status_t
hist_text_cb(void *baton, const dkv_event_t *ev)
{
    logacc_t *a = baton;

    a->text = apr_psprintf(a->pool, "%s[%d %.*s=%.*s r" U64 " v" U64 "]\n",
                           a->text, (int)ev->type, (int)ev->key_len,
                           (const char *)ev->key, (int)ev->value_len,
                           ev->value ? (const char *)ev->value : "",
                           (apr_uint64_t)ev->revision,
                           (apr_uint64_t)ev->version);
    a->n++;
    return DKV_OK;
}

static char *
item_text(apr_pool_t *pool, const dkv_item_t *it)
{
    char *s;
    size_t i;

    if (it->status != DKV_OK) {
        return apr_psprintf(pool, "status %d\n", it->status);
    }
    s = apr_psprintf(pool, "%.*s=%.*s v" U64 " c" U64 " m" U64 " r" U64
                     " ca" I64 " "
                     "ea" I64 " ttl" I64 " l" U64 " e:%s ct:%s",
                     (int)it->key_len, (const char *)it->key,
                     (int)it->value_len,
                     it->value ? (const char *)it->value : "",
                     (apr_uint64_t)it->version,
                     (apr_uint64_t)it->create_revision,
                     (apr_uint64_t)it->mod_revision,
                     (apr_uint64_t)it->revision,
                     (apr_int64_t)it->created_at, (apr_int64_t)it->expires_at,
                     (apr_int64_t)it->ttl_ms, (apr_uint64_t)it->lease,
                     it->entity ? it->entity : "-",
                     it->content_type ? it->content_type : "-");
    for (i = 0; i < it->nlabels; i++) {
        s = apr_psprintf(pool, "%s %s=%s/%d", s, it->labels[i].name,
                         it->labels[i].value, it->labels[i].indexed);
    }
    return apr_pstrcat(pool, s, "\n", NULL);
}

static char *
page_text(apr_pool_t *pool, const dkv_page_t *page)
{
    char *s = apr_psprintf(pool, "page n" SZ " more%d r" U64 "\n", page->count,
                           page->more, (apr_uint64_t)page->revision);
    size_t i;

    for (i = 0; i < page->count; i++) {
        s = apr_pstrcat(pool, s, item_text(pool, &page->items[i]), NULL);
    }
    return s;
}

static const char *const all_keys[] = {
    "a01", "a02", "a03", "a04", "a05", "a06", "a07", "a08", "a09", "a10",
    "t-short", "t-long", "u/ann", "u/bob", "u/cy", "u/dee", "cnt1",
    "cnt2", "lk", "lkey1", "lkey2", "xkey", "gone", "new", "lk2"
};

/* Every read the store answers at NOW, as text: get of every key,
 * scans, counts, counters, leases, searches, the history from the
 * oldest revision, next expiry, revision, applied index. */
static const char *
state_text(fx_t *fx, int64_t now, apr_pool_t *pool)
{
    dkv_eng_read_t *r = rbegin(fx, now);
    dkv_scan_opts_t so;
    dkv_range_t range;
    dkv_page_t *page = NULL;
    dkv_item_t item;
    dkv_lease_info_t li;
    dkv_query_t q;
    dkv_clause_t cl[3];
    dkv_order_t ord;
    logacc_t a = { pool, "", 0, 0 };
    const char *s = "";
    uint64_t n, id;
    int64_t cv;
    size_t i;
    dkv_status_t st;

    for (i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++) {
        memset(&item, 0, sizeof(item));
        st = dkv_engine_get(&item, r, all_keys[i], strlen(all_keys[i]),
                            NULL, pool);
        item.status = st;
        s = apr_pstrcat(pool, s, "get ", all_keys[i], ": ",
                        item_text(pool, &item), NULL);
    }
    memset(&so, 0, sizeof(so));
    DKV_EXPECT_OK(dkv_engine_scan(&page, r, NULL, &so, pool));
    s = apr_pstrcat(pool, s, "scan: ", page_text(pool, page), NULL);
    so.limit = 3;
    so.keys_only = 1;
    memset(&range, 0, sizeof(range));
    range.prefix = "u/";
    range.prefix_len = 2;
    DKV_EXPECT_OK(dkv_engine_scan(&page, r, &range, &so, pool));
    s = apr_pstrcat(pool, s, "scan u/: ", page_text(pool, page), NULL);
    DKV_EXPECT_OK(dkv_engine_count(&n, r, NULL));
    s = apr_psprintf(pool, "%scount " U64 "\n", s, (apr_uint64_t)n);
    DKV_EXPECT_OK(dkv_engine_count(&n, r, &range));
    s = apr_psprintf(pool, "%scount u/ " U64 "\n", s, (apr_uint64_t)n);
    for (i = 0; i < 3; i++) {
        const char *k = i == 0 ? "cnt1" : i == 1 ? "cnt2" : "a01";

        cv = 0;
        st = dkv_engine_counter_get(&cv, r, k, strlen(k));
        s = apr_psprintf(pool, "%scounter %s: %d " I64 "\n", s, k, st,
                         (apr_int64_t)cv);
    }
    for (id = 1; id <= 6; id++) {
        memset(&li, 0, sizeof(li));
        st = dkv_engine_lease_info(&li, r, id);
        s = apr_psprintf(pool, "%slease " U64 ": %d id" U64 " ttl" I64
                         " rem" I64 " "
                         "ea" I64 " k" U64 " l" U64 "\n", s, (apr_uint64_t)id,
                         st, (apr_uint64_t)li.id,
                         (apr_int64_t)li.ttl_ms, (apr_int64_t)li.remaining_ms,
                         (apr_int64_t)li.expires_at,
                         (apr_uint64_t)li.keys,
                         (apr_uint64_t)li.locks);
    }

    /* Searches: all of an entity, EQ, numeric range sorted, NOT. */
    memset(&q, 0, sizeof(q));
    memset(cl, 0, sizeof(cl));
    q.entity = "user";
    DKV_EXPECT_OK(dkv_engine_search(&page, r, &q, NULL, pool));
    s = apr_pstrcat(pool, s, "search all: ", page_text(pool, page), NULL);
    cl[0].type = DKV_CLAUSE_EQ;
    cl[0].label = "city";
    cl[0].value = "paris";
    q.where = &cl[0];
    DKV_EXPECT_OK(dkv_engine_search(&page, r, &q, NULL, pool));
    s = apr_pstrcat(pool, s, "search eq: ", page_text(pool, page), NULL);
    cl[1].type = DKV_CLAUSE_RANGE;
    cl[1].label = "age";
    cl[1].low = "20";
    cl[1].high = "40";
    ord.label = "age";
    ord.descending = 1;
    q.where = &cl[1];
    q.order = &ord;
    q.norder = 1;
    DKV_EXPECT_OK(dkv_engine_search(&page, r, &q, NULL, pool));
    s = apr_pstrcat(pool, s, "search range: ", page_text(pool, page), NULL);
    cl[2].type = DKV_CLAUSE_NOT;
    cl[2].children = &cl[0];
    cl[2].nchildren = 1;
    q.where = &cl[2];
    q.order = NULL;
    q.norder = 0;
    DKV_EXPECT_OK(dkv_engine_search(&page, r, &q, NULL, pool));
    s = apr_pstrcat(pool, s, "search not: ", page_text(pool, page), NULL);
    q.entity = "item";
    q.where = NULL;
    DKV_EXPECT_OK(dkv_engine_search(&page, r, &q, NULL, pool));
    s = apr_pstrcat(pool, s, "search item: ", page_text(pool, page), NULL);

    DKV_EXPECT_OK(dkv_engine_history(r, 0, NULL, 0, 1, hist_text_cb, &a));
    if (dkv_engine_history_oldest(r) > 1) {
        DKV_EXPECT_STATUS(dkv_engine_history(r,
                                             dkv_engine_history_oldest(r)
                                             - 1, NULL, 0, 1,
                                             hist_text_cb, &a),
                          DKV_ECOMPACTED);
    }
    s = apr_psprintf(pool, "%shistory from " U64 " (" SZ " events):\n%s", s,
                     (apr_uint64_t)dkv_engine_history_oldest(r), a.n,
                     a.text);
    s = apr_psprintf(pool, "%snext expiry " I64 " revision " U64
                     " applied " U64 "\n",
                     s, (apr_int64_t)dkv_engine_next_expiry(r),
                     (apr_uint64_t)dkv_engine_read_revision(r),
                     (apr_uint64_t)dkv_engine_applied_index(r));
    dkv_engine_read_end(r);
    return s;
}

/* Builds a store with every kind of state; returns the time after it. */
static int64_t
build_store(fx_t *fx)
{
    dkv_eng_write_t *w;
    dkv_put_opts_t o;
    dkv_label_t lab[3];
    dkv_lock_t lock;
    uint64_t lease1 = 0, lease2 = 0, lease3 = 0, del = 0;
    int64_t cur = 0;
    int64_t now = T0;
    char key[8], val[16];
    int i, round;

    /* Plain keys written over several revisions (history longer than
     * the retention of 40: compacted), some deleted. */
    for (round = 0; round < 6; round++) {
        w = wbegin(fx, now);
        for (i = 1; i <= 10; i++) {
            apr_snprintf(key, sizeof(key), "a%02d", i);
            apr_snprintf(val, sizeof(val), "v%d.%d", i, round);
            DKV_EXPECT_OK(put(w, key, val, NULL));
        }
        DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
        now += 10;
    }
    w = wbegin(fx, now);
    DKV_EXPECT_OK(dkv_engine_delete(NULL, w, "a03", 3, NULL));
    DKV_EXPECT_OK(dkv_engine_delete(NULL, w, "a07", 3, NULL));
    DKV_EXPECT_OK(put(w, "gone", "x", NULL));
    DKV_EXPECT_OK(dkv_engine_delete(NULL, w, "gone", 4, NULL));

    /* TTLs: one that is past at read time (not yet expired away), one
     * that is not; content types. */
    memset(&o, 0, sizeof(o));
    o.ttl_ms = 50;
    o.content_type = "text/plain";
    DKV_EXPECT_OK(put(w, "t-short", "s", &o));
    o.ttl_ms = 3600000;
    o.content_type = "application/json";
    DKV_EXPECT_OK(put(w, "t-long", "{}", &o));

    /* Search: entity and labels (indexed, numeric, stored only). */
    for (i = 0; i < 4; i++) {
        static const char *const names[] = { "u/ann", "u/bob", "u/cy",
                                             "u/dee" };
        static const char *const cities[] = { "paris", "rome", "paris",
                                              "oslo" };
        static const char *const ages[] = { "31", "25", "47", "20.5" };

        memset(&o, 0, sizeof(o));
        memset(lab, 0, sizeof(lab));
        o.entity = "user";
        lab[0].name = "city";
        lab[0].value = cities[i];
        lab[0].indexed = 1;
        lab[1].name = "age";
        lab[1].value = ages[i];
        lab[1].indexed = 1;
        lab[2].name = "note";
        lab[2].value = "stored only";
        lab[2].indexed = 0;
        o.labels = lab;
        o.nlabels = 3;
        o.ttl_ms = i == 2 ? 100000 : 0;
        DKV_EXPECT_OK(put(w, names[i], cities[i], &o));
    }
    memset(&o, 0, sizeof(o));
    o.entity = "item";
    DKV_EXPECT_OK(put(w, "xkey", "thing", &o));

    /* Counters, one with a TTL. */
    DKV_EXPECT_OK(dkv_engine_counter_add(NULL, &cur, w, "cnt1", 4, 5,
                                         NULL));
    DKV_EXPECT_OK(dkv_engine_counter_add(NULL, &cur, w, "cnt1", 4, -12,
                                         NULL));
    DKV_EXPECT_OK(dkv_engine_counter_set(w, "cnt2", 4, 42, NULL));

    /* Leases with keys and locks; one that will have expired. */
    DKV_EXPECT_OK(dkv_engine_lease_grant(&lease1, w, 60000));
    DKV_EXPECT_OK(dkv_engine_lease_grant(&lease2, w, 200));
    DKV_EXPECT_OK(dkv_engine_lease_grant(&lease3, w, 30000));
    DKV_EXPECT_OK(dkv_engine_lease_revoke(&del, w, lease3));
    memset(&o, 0, sizeof(o));
    o.lease = lease1;
    DKV_EXPECT_OK(put(w, "lkey1", "l1", &o));
    o.lease = lease2;
    DKV_EXPECT_OK(put(w, "lkey2", "l2", &o));
    DKV_EXPECT_OK(dkv_engine_lock_acquire(&lock, w, "lk", 2, lease1));
    DKV_EXPECT_OK(dkv_engine_lock_acquire(&lock, w, "lk2", 3, lease2));
    memset(&o, 0, sizeof(o));
    o.lock = lock.token;
    DKV_EXPECT_OK(put(w, "lk2", "locked", &o));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 7));
    return now + 1000;
}

/* One more identical write in each store: same results and revisions. */
static const char *
same_write(fx_t *fx, int64_t now, apr_pool_t *pool)
{
    dkv_eng_write_t *w = wbegin(fx, now);
    dkv_result_t res;
    dkv_put_opts_t o;
    dkv_lock_t lock;
    uint64_t expired = 0, lease = 0;
    int more = 0;
    const dkv_event_t *ev;
    size_t nev, i;
    dkv_status_t s1, s2, s3, s4;
    char *s;

    DKV_EXPECT_OK(dkv_engine_expire_due(&expired, &more, w, 0));
    memset(&o, 0, sizeof(o));
    DKV_EXPECT_OK(dkv_engine_lease_grant(&lease, w, 5000));
    o.lease = lease;
    o.entity = "user";
    s1 = dkv_engine_put(&res, w, "new", 3, "n", 1, &o);
    s2 = dkv_engine_lock_acquire(&lock, w, "lk", 2, lease);
    s3 = put(w, "lk", "stale", NULL);
    s4 = put(w, "a05", "over", NULL);
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    s = apr_psprintf(pool, "expired " U64 " more %d lease " U64 " put %d "
                     "rev " U64 " v" U64 " lock %d %d t" U64 " l" U64
                     " put %d %d "
                     "rev " U64 "\n", (apr_uint64_t)expired, more,
                     (apr_uint64_t)lease, s1,
                     (apr_uint64_t)res.revision,
                     (apr_uint64_t)res.version, s2, lock.acquired,
                     (apr_uint64_t)lock.token,
                     (apr_uint64_t)lock.lease, s3, s4,
                     (apr_uint64_t)dkv_engine_write_revision(w));
    ev = dkv_engine_write_events(w, &nev);
    for (i = 0; i < nev; i++) {
        s = apr_psprintf(pool, "%sevent %d %.*s r" U64 " v" U64 "\n", s,
                         (int)ev[i].type, (int)ev[i].key_len,
                         (const char *)ev[i].key,
                         (apr_uint64_t)ev[i].revision,
                         (apr_uint64_t)ev[i].version);
    }
    return s;
}

static void
test_dump_load(void)
{
    fx_t a, b;
    stream_t st, st2;
    int64_t now;
    const char *ta, *tb;
    apr_pool_t *pool = dkv_test_pool();

    fx_open(&a);
    fx_open(&b);
    now = build_store(&a);
    dump_all(&st, &a, pool);
    DKV_EXPECT_TRUE(st.records > 40);
    load_all(&b, &st, 42);

    ta = state_text(&a, now, pool);
    tb = state_text(&b, now, pool);
    /* The applied index differs (7 there, 42 here); all else is equal. */
    DKV_EXPECT_TRUE(strstr(ta, "applied 7\n") != NULL);
    DKV_EXPECT_TRUE(strstr(tb, "applied 42\n") != NULL);
    DKV_EXPECT_STR_EQ(apr_pstrndup(pool, ta, strlen(ta) - 3),
                      apr_pstrndup(pool, tb, strlen(tb) - 4));
    /* The comparison has something to compare. */
    DKV_EXPECT_TRUE(strstr(ta, "get u/cy: u/cy=paris") != NULL);
    DKV_EXPECT_TRUE(strstr(ta, "search range: page n3") != NULL);
    DKV_EXPECT_TRUE(strstr(ta, "counter cnt1: 0 -7") != NULL);
    DKV_EXPECT_TRUE(strstr(ta, "history from 1 ") == NULL);
    DKV_EXPECT_TRUE(strstr(ta, "lease 1: 0 id1 ttl60000") != NULL);
    /* The same at a later time, when more has expired. */
    ta = state_text(&a, now + 200000, pool);
    tb = state_text(&b, now + 200000, pool);
    DKV_EXPECT_STR_EQ(apr_pstrndup(pool, ta, strlen(ta) - 3),
                      apr_pstrndup(pool, tb, strlen(tb) - 4));

    /* A dump of the loaded store is the source's dump. */
    dump_all(&st2, &b, pool);
    DKV_EXPECT_MEM_EQ(st2.buf, st2.len, st.buf, st.len);

    /* The same writes give the same results, revisions and events. */
    DKV_EXPECT_STR_EQ(same_write(&a, now, pool), same_write(&b, now, pool));
    DKV_EXPECT_STR_EQ(same_write(&a, now + 300000, pool),
                      same_write(&b, now + 300000, pool));
    ta = state_text(&a, now + 300000, pool);
    tb = state_text(&b, now + 300000, pool);
    DKV_EXPECT_STR_EQ(apr_pstrndup(pool, ta, strlen(ta) - 3),
                      apr_pstrndup(pool, tb, strlen(tb) - 4));
    dump_all(&st, &a, pool);
    dump_all(&st2, &b, pool);
    DKV_EXPECT_MEM_EQ(st2.buf, st2.len, st.buf, st.len);

    /* The loaded store persists. */
    dkv_engine_close(b.e);
    DKV_ASSERT_OK(dkv_engine_open(&b.e, b.dir, &retain_opts, b.pool));
    tb = state_text(&b, now + 300000, pool);
    DKV_EXPECT_STR_EQ(apr_pstrndup(pool, ta, strlen(ta) - 3),
                      apr_pstrndup(pool, tb, strlen(tb) - 4));
    fx_close(&a);
    fx_close(&b);
    apr_pool_destroy(pool);
}

/* A load replaces the whole state of a store that holds more (a higher
 * revision, keys, leases, locks, history) but keeps its log and replica
 * metadata; a read context open before it keeps its snapshot. */
static void
test_load_replaces(void)
{
    fx_t a, c;
    stream_t st, empty;
    dkv_eng_write_t *w;
    dkv_eng_read_t *old, *r;
    dkv_put_opts_t o;
    dkv_item_t item;
    dkv_lock_t lock;
    uint64_t lease = 0, n = 0;
    int64_t now;
    int i;
    char key[16];
    const char *ta, *tc;
    apr_pool_t *pool = dkv_test_pool();

    fx_open(&a);
    fx_open(&c);
    now = build_store(&a);

    w = wbegin(&c, T0);
    for (i = 0; i < 300; i++) {
        apr_snprintf(key, sizeof(key), "old%03d", i);
        DKV_EXPECT_OK(put(w, key, "o", NULL));
    }
    DKV_EXPECT_OK(dkv_engine_lease_grant(&lease, w, 60000));
    DKV_EXPECT_OK(dkv_engine_lease_grant(&lease, w, 60000));
    memset(&o, 0, sizeof(o));
    o.lease = lease;
    o.entity = "user";
    o.ttl_ms = 10;
    DKV_EXPECT_OK(put(w, "a01", "c's", &o));
    DKV_EXPECT_OK(dkv_engine_lock_acquire(&lock, w, "zz", 2, lease));
    log_put(w, 1, "l1");
    log_put(w, 2, "l2");
    log_put(w, 3, "l3");
    DKV_EXPECT_OK(dkv_engine_meta_put(w, "raft.hard", "hs", 2));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 3));
    old = rbegin(&c, T0);

    dump_all(&st, &a, pool);
    w = wbegin(&c, T0 + 5);
    log_put(w, 4, "l4");            /* the log may change in the same write */
    DKV_EXPECT_OK(dkv_engine_meta_put(w, "raft.hard", "h2", 2));
    {
        size_t off = 0;

        DKV_ASSERT_OK(dkv_engine_load_begin(w));
        while (off < st.len) {
            const unsigned char *p = st.buf + off;
            size_t klen = dkv_get_be32(p + 1);
            size_t vlen = dkv_get_be32(p + 5 + klen);

            DKV_ASSERT_OK(dkv_engine_load_record(w, p, 9 + klen + vlen));
            off += 9 + klen + vlen;
        }
    }
    /* Operations after the load, in the same context, go on from the
     * snapshot's revision. */
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), revision_of(&a));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 42));

    ta = state_text(&a, now, pool);
    tc = state_text(&c, now, pool);
    DKV_EXPECT_STR_EQ(apr_pstrndup(pool, ta, strlen(ta) - 3),
                      apr_pstrndup(pool, tc, strlen(tc) - 4));
    r = rbegin(&c, now);
    DKV_EXPECT_STATUS(dkv_engine_get(&item, r, "old000", 6, NULL, pool),
                      DKV_ENOTFOUND);
    DKV_EXPECT_STATUS(dkv_engine_get(&item, r, "zz", 2, NULL, pool),
                      DKV_ENOTFOUND);
    DKV_EXPECT_UINT_EQ(dkv_engine_applied_index(r), 42);
    dkv_engine_read_end(r);
    DKV_EXPECT_STR_EQ(log_text(&c, 0), "1=l1;2=l2;3=l3;4=l4;");
    DKV_EXPECT_STR_EQ(meta_text(&c, "raft.hard"), "h2");

    /* The snapshot taken before the load still sees the old store. */
    DKV_EXPECT_OK(dkv_engine_get(&item, old, "old299", 6, NULL, pool));
    DKV_EXPECT_UINT_EQ(dkv_engine_read_revision(old), 304);
    DKV_EXPECT_UINT_EQ(dkv_engine_applied_index(old), 3);
    dkv_engine_read_end(old);

    /* The lock "zz" and lease of the old store are gone: acquiring it
     * works with a lease of the loaded store. */
    DKV_EXPECT_STR_EQ(same_write(&a, now, pool), same_write(&c, now, pool));

    /* An empty dump (a new store's) empties the store. */
    {
        fx_t e;

        fx_open(&e);
        dump_all(&empty, &e, pool);
        DKV_EXPECT_UINT_EQ(empty.records, 2);       /* header, state */
        load_all(&c, &empty, 50);
        ta = state_text(&e, now, pool);
        tc = state_text(&c, now, pool);
        DKV_EXPECT_STR_EQ(apr_pstrndup(pool, ta, strlen(ta) - 3),
                          apr_pstrndup(pool, tc, strlen(tc) - 4));
        r = rbegin(&c, now);
        DKV_EXPECT_OK(dkv_engine_count(&n, r, NULL));
        DKV_EXPECT_UINT_EQ(n, 0);
        DKV_EXPECT_UINT_EQ(dkv_engine_read_revision(r), 0);
        DKV_EXPECT_UINT_EQ(dkv_engine_applied_index(r), 50);
        dkv_engine_read_end(r);
        DKV_EXPECT_STR_EQ(log_text(&c, 0), "1=l1;2=l2;3=l3;4=l4;");
        fx_close(&e);
    }
    fx_close(&a);
    fx_close(&c);
    apr_pool_destroy(pool);
}

/* ========================================================= malformed */

/* Makes record DB, KEY, VALUE in POOL; *LEN receives its size. */
static unsigned char *
mkrec(size_t *len, apr_pool_t *pool, int db, const void *key, size_t klen,
      const void *val, size_t vlen)
{
    unsigned char *p = apr_palloc(pool, 9 + klen + vlen);

    p[0] = (unsigned char)db;
    dkv_put_be32(p + 1, (uint32_t)klen);
    memcpy(p + 5, key, klen);
    dkv_put_be32(p + 5 + klen, (uint32_t)vlen);
    memcpy(p + 9 + klen, val, vlen);
    *len = 9 + klen + vlen;
    return p;
}

/* Begins a load into FX with the dump header taken from HEAD. */
static dkv_eng_write_t *
load_start(fx_t *fx, const stream_t *head)
{
    dkv_eng_write_t *w = wbegin(fx, T0);
    size_t klen = dkv_get_be32(head->buf + 1);
    size_t vlen = dkv_get_be32(head->buf + 5 + klen);

    DKV_ASSERT_OK(dkv_engine_load_begin(w));
    DKV_ASSERT_OK(dkv_engine_load_record(w, head->buf, 9 + klen + vlen));
    return w;
}

/* The record REC (LEN bytes) is refused with DKV_ECORRUPT, poisons the
 * context, and the store stays as it was. */
static void
expect_refused(fx_t *fx, const stream_t *head, const void *rec, size_t len)
{
    dkv_eng_write_t *w = load_start(fx, head);
    dkv_eng_read_t *r;
    dkv_item_t item;

    DKV_EXPECT_STATUS(dkv_engine_load_record(w, rec, len), DKV_ECORRUPT);
    DKV_EXPECT_STATUS(put(w, "k", "v", NULL), DKV_ECORRUPT);
    DKV_EXPECT_STATUS(dkv_engine_write_commit(w, 9), DKV_ECORRUPT);
    r = rbegin(fx, T0);
    DKV_EXPECT_OK(dkv_engine_get(&item, r, "keep", 4, NULL, fx->pool));
    DKV_EXPECT_UINT_EQ(dkv_engine_applied_index(r), 0);
    dkv_engine_read_end(r);
}

static void
test_load_malformed(void)
{
    fx_t fx, src;
    stream_t st;
    dkv_eng_write_t *w;
    unsigned char *rec, *good;
    unsigned char big[600], v8[8], v16[16];
    size_t len, glen;
    apr_pool_t *pool = dkv_test_pool();

    fx_open(&fx);
    fx_open(&src);
    w = wbegin(&fx, T0);
    DKV_EXPECT_OK(put(w, "keep", "me", NULL));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    w = wbegin(&src, T0);
    DKV_EXPECT_OK(put(w, "k", "v", NULL));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
    dump_all(&st, &src, pool);
    DKV_ASSERT_UINT_EQ(st.records, 4);      /* header, state, k, hist */
    memset(big, 'x', sizeof(big));
    memset(v8, 0, sizeof(v8));
    memset(v16, 0, sizeof(v16));

    /* Usage: no load begun; a load after other changes. */
    w = wbegin(&fx, T0);
    DKV_EXPECT_STATUS(dkv_engine_load_record(w, st.buf, 24), DKV_EINVAL);
    DKV_EXPECT_OK(put(w, "other", "x", NULL));
    DKV_EXPECT_STATUS(dkv_engine_load_begin(w), DKV_EINVAL);
    dkv_engine_write_abort(w);

    /* No header first; a wrong header. */
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_load_begin(w));
    good = mkrec(&glen, pool, 2, "k", 1, st.buf, 0);
    DKV_EXPECT_STATUS(dkv_engine_load_record(w, good, glen), DKV_ECORRUPT);
    dkv_engine_write_abort(w);
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_load_begin(w));
    rec = apr_pmemdup(pool, st.buf, 25);
    rec[24] ^= 1;                           /* the engine format */
    DKV_EXPECT_STATUS(dkv_engine_load_record(w, rec, 25), DKV_ECORRUPT);
    dkv_engine_write_abort(w);

    /* Lengths: short, key past the end, value length off by one either
     * way, empty key. */
    expect_refused(&fx, &st, st.buf, 5);
    rec = mkrec(&len, pool, 3, v8, 8, "0123456789abcdef", 16);
    dkv_put_be32(rec + 1, 100);
    expect_refused(&fx, &st, rec, len);
    rec = mkrec(&len, pool, 3, v8, 8, "0123456789abcdef", 16);
    expect_refused(&fx, &st, rec, len - 1);
    dkv_put_be32(rec + 13, 15);
    expect_refused(&fx, &st, rec, len);
    rec = mkrec(&len, pool, 5, "", 0, v16, 16);
    expect_refused(&fx, &st, rec, len);

    /* Unknown databases (the header again counts as one). */
    rec = mkrec(&len, pool, 10, "k", 1, "v", 1);
    expect_refused(&fx, &st, rec, len);
    rec = mkrec(&len, pool, 255, "k", 1, "v", 1);
    expect_refused(&fx, &st, rec, len);
    expect_refused(&fx, &st, st.buf, 25);

    /* LMDB's limits and the databases' shapes: a key over 500 bytes, an
     * index entry over LMDB's key size, a damaged key record, a bad
     * state, a lease of the wrong size. */
    rec = mkrec(&len, pool, 2, big, 501, "", 0);
    expect_refused(&fx, &st, rec, len);
    rec = mkrec(&len, pool, 8, "user", 5, big, 600);
    expect_refused(&fx, &st, rec, len);
    rec = mkrec(&len, pool, 2, "k", 1, "\x02\x00\x01\x01", 4);
    expect_refused(&fx, &st, rec, len);
    rec = mkrec(&len, pool, 1, "state", 5, v16, 16);
    expect_refused(&fx, &st, rec, len);
    rec = mkrec(&len, pool, 5, v8, 8, v8, 8);
    expect_refused(&fx, &st, rec, len);

    /* The well-formed dump still loads after all that. */
    load_all(&fx, &st, 3);
    {
        dkv_eng_read_t *r = rbegin(&fx, T0);
        dkv_item_t item;

        DKV_EXPECT_STATUS(dkv_engine_get(&item, r, "keep", 4, NULL, pool),
                          DKV_ENOTFOUND);
        DKV_EXPECT_OK(dkv_engine_get(&item, r, "k", 1, NULL, pool));
        DKV_EXPECT_UINT_EQ(dkv_engine_read_revision(r), 1);
        DKV_EXPECT_UINT_EQ(dkv_engine_applied_index(r), 3);
        dkv_engine_read_end(r);
    }
    fx_close(&fx);
    fx_close(&src);
    apr_pool_destroy(pool);
}

void
test_engine_repl_register(void)
{
    CU_pSuite s = dkv_test_add_suite("engine_repl", NULL, NULL);

    DKV_TEST_ADD(s, test_log);
    DKV_TEST_ADD(s, test_meta);
    DKV_TEST_ADD(s, test_together);
    DKV_TEST_ADD(s, test_set_now);
    DKV_TEST_ADD(s, test_dump_load);
    DKV_TEST_ADD(s, test_load_replaces);
    DKV_TEST_ADD(s, test_load_malformed);
}
