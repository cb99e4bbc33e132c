/*
 * test_engine.c -- unit tests of the store engine (src/engine): every
 * write and read operation with its statuses, revisions and versions,
 * events and history, expiry at explicit `now`s, leases, locks, counters,
 * transactions and their no-trace failures, persistence across reopen,
 * damaged records and the size limits.  Suite "engine".
 */
#include <string.h>

#include <lmdb.h>

#include "testutil.h"
#include "common/codec.h"
#include "engine/engine-int.h"
#include "engine/record.h"

#define T0 INT64_C(1700000000000)

/* ============================================================ helpers */

typedef struct fx {
    apr_pool_t *pool;
    const char *dir;
    dkv_engine_t *e;
} fx_t;

static void
fx_open(fx_t *fx, const dkv_engine_opts_t *opts)
{
    fx->pool = dkv_test_pool();
    fx->dir = dkv_test_tempdir(fx->pool);
    DKV_ASSERT_OK(dkv_engine_open(&fx->e, fx->dir, opts, fx->pool));
}

static void
fx_reopen(fx_t *fx, const dkv_engine_opts_t *opts)
{
    dkv_engine_close(fx->e);
    fx->e = NULL;
    DKV_ASSERT_OK(dkv_engine_open(&fx->e, fx->dir, opts, fx->pool));
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

static void
wcommit(dkv_eng_write_t *w)
{
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 0));
}

/* One put in its own write context. */
static dkv_status_t
put1(fx_t *fx, int64_t now, const char *key, const char *value,
     const dkv_put_opts_t *opts, dkv_result_t *res)
{
    dkv_eng_write_t *w = wbegin(fx, now);
    dkv_status_t s = dkv_engine_put(res, w, key, strlen(key), value,
                                    strlen(value), opts);

    wcommit(w);
    return s;
}

/* One get in its own read context; item in fx's pool. */
static dkv_status_t
get1(fx_t *fx, int64_t now, const char *key, dkv_item_t *item)
{
    dkv_eng_read_t *r = NULL;
    dkv_status_t s;

    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx->e, now));
    s = dkv_engine_get(item, r, key, strlen(key), NULL, fx->pool);
    dkv_engine_read_end(r);
    return s;
}

static uint64_t
revision(fx_t *fx)
{
    dkv_eng_read_t *r = NULL;
    uint64_t rev;

    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx->e, T0));
    rev = dkv_engine_read_revision(r);
    dkv_engine_read_end(r);
    return rev;
}

static uint64_t
count_all(fx_t *fx, int64_t now, const dkv_range_t *range)
{
    dkv_eng_read_t *r = NULL;
    uint64_t n = 0;

    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx->e, now));
    DKV_EXPECT_OK(dkv_engine_count(&n, r, range));
    dkv_engine_read_end(r);
    return n;
}

static void
expect_event(const dkv_event_t *ev, dkv_event_type_t type, const char *key,
             const char *value, uint64_t rev, uint64_t version)
{
    DKV_EXPECT_INT_EQ(ev->type, type);
    DKV_EXPECT_MEM_EQ(ev->key, ev->key_len, key, strlen(key));
    if (value) {
        DKV_EXPECT_MEM_EQ(ev->value, ev->value_len, value, strlen(value));
    } else {
        DKV_EXPECT_TRUE(ev->value == NULL);
    }
    DKV_EXPECT_UINT_EQ(ev->revision, rev);
    DKV_EXPECT_UINT_EQ(ev->version, version);
    DKV_EXPECT_INT_EQ(ev->snapshot, 0);
}

/* ======================================================== basic kv */

static void
test_put_get(void)
{
    fx_t fx;
    dkv_result_t res;
    dkv_item_t item;
    dkv_eng_write_t *w;
    const dkv_event_t *ev;
    size_t n;

    fx_open(&fx, NULL);
    DKV_EXPECT_UINT_EQ(revision(&fx), 0);

    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_put(&res, w, "a", 1, "one", 3, NULL));
    DKV_EXPECT_INT_EQ(res.mutated, 1);
    DKV_EXPECT_INT_EQ(res.is_update, 0);
    DKV_EXPECT_UINT_EQ(res.version, 1);
    DKV_EXPECT_UINT_EQ(res.revision, 1);
    DKV_ASSERT_OK(dkv_engine_put(&res, w, "a", 1, "two", 3, NULL));
    DKV_EXPECT_INT_EQ(res.is_update, 1);
    DKV_EXPECT_UINT_EQ(res.version, 2);
    DKV_EXPECT_UINT_EQ(res.revision, 2);
    DKV_ASSERT_OK(dkv_engine_put(&res, w, "b", 1, "", 0, NULL));
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), 3);
    wcommit(w);
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), 3);
    ev = dkv_engine_write_events(w, &n);
    DKV_ASSERT_UINT_EQ(n, 3);
    expect_event(&ev[0], DKV_EVENT_PUT, "a", "one", 1, 1);
    expect_event(&ev[1], DKV_EVENT_PUT, "a", "two", 2, 2);
    expect_event(&ev[2], DKV_EVENT_PUT, "b", "", 3, 1);

    DKV_ASSERT_OK(get1(&fx, T0 + 5, "a", &item));
    DKV_EXPECT_INT_EQ(item.status, DKV_OK);
    DKV_EXPECT_MEM_EQ(item.value, item.value_len, "two", 3);
    DKV_EXPECT_INT_EQ(((const char *)item.value)[3], '\0');
    DKV_EXPECT_MEM_EQ(item.key, item.key_len, "a", 1);
    DKV_EXPECT_UINT_EQ(item.version, 2);
    DKV_EXPECT_UINT_EQ(item.create_revision, 1);
    DKV_EXPECT_UINT_EQ(item.mod_revision, 2);
    DKV_EXPECT_UINT_EQ(item.revision, 3);
    DKV_EXPECT_INT_EQ(item.created_at, T0);
    DKV_EXPECT_INT_EQ(item.expires_at, 0);
    DKV_EXPECT_INT_EQ(item.ttl_ms, -1);
    DKV_EXPECT_UINT_EQ(item.lease, 0);
    DKV_EXPECT_TRUE(item.entity == NULL && item.content_type == NULL);
    DKV_EXPECT_UINT_EQ(item.nlabels, 0);

    DKV_ASSERT_OK(get1(&fx, T0, "b", &item));
    DKV_EXPECT_UINT_EQ(item.value_len, 0);
    DKV_EXPECT_TRUE(item.value != NULL);

    /* delete, then re-create: version starts at 1 again */
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_delete(&res, w, "a", 1, NULL));
    DKV_EXPECT_UINT_EQ(res.version, 2);
    DKV_EXPECT_UINT_EQ(res.revision, 4);
    DKV_ASSERT_OK(dkv_engine_put(&res, w, "a", 1, "x", 1, NULL));
    DKV_EXPECT_UINT_EQ(res.version, 1);
    DKV_EXPECT_INT_EQ(res.is_update, 0);
    wcommit(w);
    ev = dkv_engine_write_events(w, &n);
    DKV_ASSERT_UINT_EQ(n, 2);
    expect_event(&ev[0], DKV_EVENT_DELETE, "a", NULL, 4, 2);
    expect_event(&ev[1], DKV_EVENT_PUT, "a", "x", 5, 1);
    DKV_ASSERT_OK(get1(&fx, T0, "a", &item));
    DKV_EXPECT_UINT_EQ(item.create_revision, 5);
    fx_close(&fx);
}

static void
test_metadata(void)
{
    fx_t fx;
    dkv_item_t item;
    dkv_label_t labels[2] = { { "color", "red", 1 }, { "note", "x y", 0 } };
    dkv_put_opts_t o;
    dkv_eng_read_t *r;

    fx_open(&fx, NULL);
    memset(&o, 0, sizeof(o));
    o.entity = "car";
    o.content_type = "text/plain";
    o.labels = labels;
    o.nlabels = 2;
    DKV_ASSERT_OK(put1(&fx, T0, "k", "v", &o, NULL));
    DKV_ASSERT_OK(get1(&fx, T0, "k", &item));
    DKV_EXPECT_STR_EQ(item.entity, "car");
    DKV_EXPECT_STR_EQ(item.content_type, "text/plain");
    DKV_ASSERT_UINT_EQ(item.nlabels, 2);
    DKV_EXPECT_STR_EQ(item.labels[0].name, "color");
    DKV_EXPECT_STR_EQ(item.labels[0].value, "red");
    DKV_EXPECT_INT_EQ(item.labels[0].indexed, 1);
    DKV_EXPECT_STR_EQ(item.labels[1].name, "note");
    DKV_EXPECT_STR_EQ(item.labels[1].value, "x y");
    DKV_EXPECT_INT_EQ(item.labels[1].indexed, 0);

    /* meta_only: no value */
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    {
        dkv_get_opts_t g = { 1, 0 };

        DKV_ASSERT_OK(dkv_engine_get(&item, r, "k", 1, &g, fx.pool));
        DKV_EXPECT_TRUE(item.value == NULL);
        DKV_EXPECT_UINT_EQ(item.version, 1);
    }
    dkv_engine_read_end(r);

    /* a put replaces all metadata */
    DKV_ASSERT_OK(put1(&fx, T0, "k", "w", NULL, NULL));
    DKV_ASSERT_OK(get1(&fx, T0, "k", &item));
    DKV_EXPECT_TRUE(item.entity == NULL);
    DKV_EXPECT_UINT_EQ(item.nlabels, 0);
    fx_close(&fx);
}

static void
test_search_wiring(void)
{
    fx_t fx;
    dkv_label_t l1[1] = { { "age", "30", 1 } };
    dkv_label_t l2[1] = { { "age", "40", 1 } };
    dkv_put_opts_t o;
    dkv_query_t q;
    dkv_clause_t c;
    dkv_page_t *page = NULL;
    dkv_eng_read_t *r;
    dkv_eng_write_t *w;

    fx_open(&fx, NULL);
    memset(&o, 0, sizeof(o));
    o.entity = "user";
    o.labels = l1;
    o.nlabels = 1;
    DKV_ASSERT_OK(put1(&fx, T0, "u1", "alice", &o, NULL));
    o.labels = l2;
    DKV_ASSERT_OK(put1(&fx, T0, "u2", "bob", &o, NULL));
    o.ttl_ms = 10;
    DKV_ASSERT_OK(put1(&fx, T0, "u3", "carol", &o, NULL));

    memset(&q, 0, sizeof(q));
    memset(&c, 0, sizeof(c));
    q.entity = "user";
    c.type = DKV_CLAUSE_EQ;
    c.label = "age";
    c.value = "40";
    q.where = &c;
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0 + 100));
    DKV_ASSERT_OK(dkv_engine_search(&page, r, &q, NULL, fx.pool));
    DKV_ASSERT_UINT_EQ(page->count, 1);   /* u3 has expired */
    DKV_EXPECT_MEM_EQ(page->items[0].key, page->items[0].key_len, "u2", 2);
    DKV_EXPECT_MEM_EQ(page->items[0].value, page->items[0].value_len,
                      "bob", 3);
    dkv_engine_read_end(r);

    /* moving u1 to age 40, deleting u2 */
    w = wbegin(&fx, T0);
    o.ttl_ms = 0;
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "u1", 2, "alice", 5, &o));
    DKV_ASSERT_OK(dkv_engine_delete(NULL, w, "u2", 2, NULL));
    wcommit(w);
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_ASSERT_OK(dkv_engine_search(&page, r, &q, NULL, fx.pool));
    DKV_ASSERT_UINT_EQ(page->count, 2);   /* u1 and unexpired u3 */
    DKV_EXPECT_MEM_EQ(page->items[0].key, page->items[0].key_len, "u1", 2);
    q.entity = NULL;
    DKV_EXPECT_STATUS(dkv_engine_search(&page, r, &q, NULL, fx.pool),
                      DKV_EINVAL);
    dkv_engine_read_end(r);
    fx_close(&fx);
}

static void
test_statuses(void)
{
    fx_t fx;
    dkv_result_t res;
    dkv_item_t item;
    dkv_eng_write_t *w;
    dkv_put_opts_t o;
    dkv_delete_opts_t d;
    char big[DKV_MAX_KEY + 1];
    dkv_engine_opts_t eo = { 16, 0, 0, 1 };
    dkv_label_t lab[2] = { { "a", "1", 1 }, { "a", "2", 1 } };
    char longval[DKV_MAX_LABEL_VALUE + 2];
    size_t n;

    memset(big, 'k', sizeof(big));
    memset(longval, 'v', sizeof(longval) - 1);
    longval[sizeof(longval) - 1] = '\0';
    fx_open(&fx, &eo);
    DKV_EXPECT_UINT_EQ(dkv_engine_max_value(fx.e), 16);
    w = wbegin(&fx, T0);
    DKV_EXPECT_STATUS(dkv_engine_put(&res, w, NULL, 0, "v", 1, NULL),
                      DKV_EINVAL);
    DKV_EXPECT_INT_EQ(res.status, DKV_EINVAL);
    DKV_EXPECT_INT_EQ(res.mutated, 0);
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, big, DKV_MAX_KEY + 1, "v", 1,
                                     NULL), DKV_ETOOLARGE);
    DKV_EXPECT_OK(dkv_engine_put(NULL, w, big, DKV_MAX_KEY, "v", 1, NULL));
    DKV_EXPECT_OK(dkv_engine_put(NULL, w, "v16", 3, big, 16, NULL));
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "v17", 3, big, 17, NULL),
                      DKV_ETOOLARGE);
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "k", 1, NULL, 3, NULL),
                      DKV_EINVAL);
    memset(&o, 0, sizeof(o));
    o.ttl_ms = -1;
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "k", 1, "v", 1, &o),
                      DKV_EINVAL);
    memset(&o, 0, sizeof(o));
    o.labels = lab;
    o.nlabels = 2;
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "k", 1, "v", 1, &o),
                      DKV_EINVAL);
    lab[1].name = "b";
    lab[1].value = longval;
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "k", 1, "v", 1, &o),
                      DKV_ETOOLARGE);
    lab[1].indexed = 0;     /* stored-only labels may be longer */
    DKV_EXPECT_OK(dkv_engine_put(NULL, w, "k", 1, "v", 1, &o));
    o.nlabels = DKV_MAX_LABELS + 1;
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "k", 1, "v", 1, &o),
                      DKV_ETOOLARGE);
    memset(&o, 0, sizeof(o));
    o.entity = longval;
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "k", 1, "v", 1, &o),
                      DKV_ETOOLARGE);
    o.entity = "";
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "k", 1, "v", 1, &o),
                      DKV_EINVAL);

    /* conditions */
    memset(&o, 0, sizeof(o));
    o.if_absent = 1;
    DKV_EXPECT_STATUS(dkv_engine_put(&res, w, "k", 1, "v", 1, &o),
                      DKV_ECONFLICT);
    DKV_EXPECT_UINT_EQ(res.revision, 3);
    DKV_EXPECT_OK(dkv_engine_put(NULL, w, "new", 3, "v", 1, &o));
    memset(&o, 0, sizeof(o));
    o.if_version = 7;
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "k", 1, "v", 1, &o),
                      DKV_ECONFLICT);
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "nope", 4, "v", 1, &o),
                      DKV_ENOTFOUND);
    o.if_version = 1;
    DKV_EXPECT_OK(dkv_engine_put(&res, w, "k", 1, "v", 1, &o));
    DKV_EXPECT_UINT_EQ(res.version, 2);
    o.lease = 99;
    o.if_version = 0;
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "k", 1, "v", 1, &o),
                      DKV_ENOTFOUND);
    memset(&d, 0, sizeof(d));
    DKV_EXPECT_STATUS(dkv_engine_delete(&res, w, "nope", 4, &d),
                      DKV_ENOTFOUND);
    d.if_version = 1;
    DKV_EXPECT_STATUS(dkv_engine_delete(NULL, w, "k", 1, &d),
                      DKV_ECONFLICT);
    DKV_EXPECT_STATUS(dkv_engine_delete(NULL, w, "", 0, NULL), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_engine_expire(NULL, w, "nope", 4, 10, 0),
                      DKV_ENOTFOUND);
    DKV_EXPECT_STATUS(dkv_engine_expire(NULL, w, "k", 1, -5, 0),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_engine_refresh(NULL, w, "k", 1, 0), DKV_EINVAL);
    /* none of the failures consumed a revision or made an event */
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), 5);
    wcommit(w);
    dkv_engine_write_events(w, &n);
    DKV_EXPECT_UINT_EQ(n, 5);

    DKV_EXPECT_STATUS(get1(&fx, T0, "nope", &item), DKV_ENOTFOUND);
    DKV_EXPECT_INT_EQ(item.status, DKV_ENOTFOUND);
    DKV_EXPECT_TRUE(item.value == NULL);
    DKV_EXPECT_STATUS(get1(&fx, T0, "", &item), DKV_EINVAL);
    fx_close(&fx);

    /* bad options */
    {
        dkv_engine_t *e;
        dkv_engine_opts_t bad = { DKV_LIMIT_MAX_VALUE + 1, 0, 0, 0 };
        apr_pool_t *p = dkv_test_pool();

        DKV_EXPECT_STATUS(dkv_engine_open(&e, dkv_test_tempdir(p), &bad,
                                          p), DKV_EINVAL);
        DKV_EXPECT_TRUE(dkv_engine_open(&e, "/nonexistent/dkv/x", NULL, p)
                        != DKV_OK);
        apr_pool_destroy(p);
    }
}

/* ================================================================ ttl */

static void
test_ttl(void)
{
    fx_t fx;
    dkv_item_t item;
    dkv_put_opts_t o;
    dkv_result_t res;
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    const dkv_event_t *ev;
    size_t n;

    fx_open(&fx, NULL);
    memset(&o, 0, sizeof(o));
    o.ttl_ms = 500;
    DKV_ASSERT_OK(put1(&fx, T0, "t", "v", &o, NULL));      /* rev 1 */
    DKV_ASSERT_OK(put1(&fx, T0, "p", "v", NULL, NULL));    /* rev 2 */
    DKV_ASSERT_OK(get1(&fx, T0 + 499, "t", &item));
    DKV_EXPECT_INT_EQ(item.ttl_ms, 1);
    DKV_EXPECT_INT_EQ(item.expires_at, T0 + 500);
    DKV_EXPECT_STATUS(get1(&fx, T0 + 500, "t", &item), DKV_ENOTFOUND);
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0 + 499, NULL), 2);
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0 + 500, NULL), 1);
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_EXPECT_INT_EQ(dkv_engine_next_expiry(r), T0 + 500);
    dkv_engine_read_end(r);

    /* a write to an expired key: its Delete event comes first */
    w = wbegin(&fx, T0 + 600);
    DKV_ASSERT_OK(dkv_engine_put(&res, w, "t", 1, "new", 3, NULL));
    DKV_EXPECT_INT_EQ(res.is_update, 0);
    DKV_EXPECT_UINT_EQ(res.version, 1);
    DKV_EXPECT_UINT_EQ(res.revision, 4);
    wcommit(w);
    ev = dkv_engine_write_events(w, &n);
    DKV_ASSERT_UINT_EQ(n, 2);
    expect_event(&ev[0], DKV_EVENT_DELETE, "t", NULL, 3, 1);
    expect_event(&ev[1], DKV_EVENT_PUT, "t", "new", 4, 1);
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_EXPECT_INT_EQ(dkv_engine_next_expiry(r), 0);
    dkv_engine_read_end(r);

    /* expire / refresh: metadata only */
    w = wbegin(&fx, T0 + 1000);
    DKV_ASSERT_OK(dkv_engine_expire(&res, w, "p", 1, 200, 0));
    DKV_EXPECT_UINT_EQ(res.version, 1);
    DKV_EXPECT_UINT_EQ(res.revision, 5);
    wcommit(w);
    dkv_engine_write_events(w, &n);
    DKV_EXPECT_UINT_EQ(n, 0);
    DKV_ASSERT_OK(get1(&fx, T0 + 1100, "p", &item));
    DKV_EXPECT_UINT_EQ(item.version, 1);
    DKV_EXPECT_UINT_EQ(item.mod_revision, 5);
    DKV_EXPECT_INT_EQ(item.expires_at, T0 + 1200);
    w = wbegin(&fx, T0 + 1150);
    DKV_ASSERT_OK(dkv_engine_refresh(&res, w, "p", 1, 0));
    wcommit(w);
    DKV_ASSERT_OK(get1(&fx, T0 + 1300, "p", &item));
    DKV_EXPECT_INT_EQ(item.expires_at, T0 + 1350);
    DKV_EXPECT_INT_EQ(item.ttl_ms, 50);
    w = wbegin(&fx, T0 + 1200);
    DKV_ASSERT_OK(dkv_engine_expire(&res, w, "p", 1, 0, 0));   /* persist */
    wcommit(w);
    DKV_ASSERT_OK(get1(&fx, T0 + 99999, "p", &item));
    DKV_EXPECT_INT_EQ(item.expires_at, 0);
    DKV_EXPECT_INT_EQ(item.ttl_ms, -1);
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_EXPECT_INT_EQ(dkv_engine_next_expiry(r), 0);
    dkv_engine_read_end(r);
    /* expired keys cannot be expired, refreshed or deleted */
    o.ttl_ms = 10;
    DKV_ASSERT_OK(put1(&fx, T0, "q", "v", &o, NULL));
    w = wbegin(&fx, T0 + 10);
    DKV_EXPECT_STATUS(dkv_engine_refresh(NULL, w, "q", 1, 0),
                      DKV_ENOTFOUND);
    DKV_EXPECT_STATUS(dkv_engine_delete(NULL, w, "q", 1, NULL),
                      DKV_ENOTFOUND);
    dkv_engine_write_abort(w);
    fx_close(&fx);
}

static void
test_expire_due(void)
{
    fx_t fx;
    dkv_put_opts_t o;
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    const dkv_event_t *ev;
    uint64_t expired;
    int more;
    size_t n;

    fx_open(&fx, NULL);
    memset(&o, 0, sizeof(o));
    o.ttl_ms = 300;
    DKV_ASSERT_OK(put1(&fx, T0, "c", "v", &o, NULL));   /* rev 1, T0+300 */
    o.ttl_ms = 100;
    DKV_ASSERT_OK(put1(&fx, T0, "a", "v", &o, NULL));   /* rev 2, T0+100 */
    DKV_ASSERT_OK(put1(&fx, T0, "b", "v", &o, NULL));   /* rev 3, T0+100 */
    DKV_ASSERT_OK(put1(&fx, T0, "keep", "v", NULL, NULL));

    w = wbegin(&fx, T0 + 99);
    DKV_ASSERT_OK(dkv_engine_expire_due(&expired, &more, w, 0));
    DKV_EXPECT_UINT_EQ(expired, 0);
    DKV_EXPECT_INT_EQ(more, 0);
    wcommit(w);

    w = wbegin(&fx, T0 + 1000);
    DKV_ASSERT_OK(dkv_engine_expire_due(&expired, &more, w, 1));
    DKV_EXPECT_UINT_EQ(expired, 1);
    DKV_EXPECT_INT_EQ(more, 1);
    DKV_ASSERT_OK(dkv_engine_expire_due(&expired, &more, w, 0));
    DKV_EXPECT_UINT_EQ(expired, 2);
    DKV_EXPECT_INT_EQ(more, 0);
    wcommit(w);
    ev = dkv_engine_write_events(w, &n);
    DKV_ASSERT_UINT_EQ(n, 3);
    /* expiry order: a and b (T0+100, key order), then c */
    expect_event(&ev[0], DKV_EVENT_DELETE, "a", NULL, 5, 1);
    expect_event(&ev[1], DKV_EVENT_DELETE, "b", NULL, 6, 1);
    expect_event(&ev[2], DKV_EVENT_DELETE, "c", NULL, 7, 1);
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0 + 1000, NULL), 1);
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_EXPECT_INT_EQ(dkv_engine_next_expiry(r), 0);
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0, NULL), 1);
    dkv_engine_read_end(r);
    fx_close(&fx);
}

/* ============================================================= leases */

static void
test_leases(void)
{
    fx_t fx;
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    dkv_put_opts_t o;
    dkv_lease_info_t info;
    dkv_item_t item;
    const dkv_event_t *ev;
    uint64_t l1, l2, l3, keys;
    int64_t rem;
    size_t n;

    fx_open(&fx, NULL);
    w = wbegin(&fx, T0);
    DKV_EXPECT_STATUS(dkv_engine_lease_grant(&l1, w, DKV_MIN_LEASE_TTL - 1),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_engine_lease_grant(&l1, w, DKV_MAX_LEASE_TTL + 1),
                      DKV_EINVAL);
    DKV_ASSERT_OK(dkv_engine_lease_grant(&l1, w, 1000));
    DKV_ASSERT_OK(dkv_engine_lease_grant(&l2, w, 5000));
    DKV_EXPECT_UINT_EQ(l1, 1);
    DKV_EXPECT_UINT_EQ(l2, 2);
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), 2);
    memset(&o, 0, sizeof(o));
    o.lease = l1;
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "k1", 2, "v", 1, &o));
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "k2", 2, "v", 1, &o));
    o.lease = l2;
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "k3", 2, "v", 1, &o));
    wcommit(w);

    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0 + 100));
    DKV_ASSERT_OK(dkv_engine_lease_info(&info, r, l1));
    DKV_EXPECT_UINT_EQ(info.id, l1);
    DKV_EXPECT_INT_EQ(info.ttl_ms, 1000);
    DKV_EXPECT_INT_EQ(info.remaining_ms, 900);
    DKV_EXPECT_INT_EQ(info.expires_at, T0 + 1000);
    DKV_EXPECT_UINT_EQ(info.keys, 2);
    DKV_EXPECT_UINT_EQ(info.locks, 0);
    DKV_EXPECT_STATUS(dkv_engine_lease_info(&info, r, 77), DKV_ENOTFOUND);
    DKV_EXPECT_INT_EQ(dkv_engine_next_expiry(r), T0 + 1000);
    dkv_engine_read_end(r);
    DKV_ASSERT_OK(get1(&fx, T0, "k1", &item));
    DKV_EXPECT_UINT_EQ(item.lease, l1);

    /* rebinding k2 to l2, then to no lease */
    o.lease = l2;
    DKV_ASSERT_OK(put1(&fx, T0, "k2", "v", &o, NULL));
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_ASSERT_OK(dkv_engine_lease_info(&info, r, l1));
    DKV_EXPECT_UINT_EQ(info.keys, 1);
    DKV_ASSERT_OK(dkv_engine_lease_info(&info, r, l2));
    DKV_EXPECT_UINT_EQ(info.keys, 2);
    dkv_engine_read_end(r);
    DKV_ASSERT_OK(put1(&fx, T0, "k2", "v", NULL, NULL));
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_ASSERT_OK(dkv_engine_lease_info(&info, r, l2));
    DKV_EXPECT_UINT_EQ(info.keys, 1);
    dkv_engine_read_end(r);

    /* keepalive */
    w = wbegin(&fx, T0 + 500);
    DKV_ASSERT_OK(dkv_engine_lease_keepalive(&rem, w, l1));
    DKV_EXPECT_INT_EQ(rem, 1000);
    DKV_EXPECT_STATUS(dkv_engine_lease_keepalive(&rem, w, 77),
                      DKV_ENOTFOUND);
    wcommit(w);

    /* past its expiry a lease's keys are invisible, before expire_due */
    DKV_ASSERT_OK(get1(&fx, T0 + 1499, "k1", &item));
    DKV_EXPECT_STATUS(get1(&fx, T0 + 1500, "k1", &item), DKV_ENOTFOUND);
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0 + 1500, NULL), 2);   /* k2, k3 */
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0 + 1499, NULL), 3);
    w = wbegin(&fx, T0 + 1500);
    o.lease = l1;
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "x", 1, "v", 1, &o),
                      DKV_ENOTFOUND);
    DKV_EXPECT_STATUS(dkv_engine_lease_keepalive(&rem, w, l1),
                      DKV_ENOTFOUND);
    DKV_ASSERT_OK(dkv_engine_expire_due(&keys, NULL, w, 0));
    DKV_EXPECT_UINT_EQ(keys, 1);
    wcommit(w);
    ev = dkv_engine_write_events(w, &n);
    DKV_ASSERT_UINT_EQ(n, 1);
    DKV_EXPECT_MEM_EQ(ev[0].key, ev[0].key_len, "k1", 2);
    DKV_EXPECT_INT_EQ(ev[0].type, DKV_EVENT_DELETE);
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_EXPECT_STATUS(dkv_engine_lease_info(&info, r, l1), DKV_ENOTFOUND);
    dkv_engine_read_end(r);

    /* revoke */
    w = wbegin(&fx, T0 + 1600);
    DKV_ASSERT_OK(dkv_engine_lease_revoke(&keys, w, l2));
    DKV_EXPECT_UINT_EQ(keys, 1);
    DKV_EXPECT_STATUS(dkv_engine_lease_revoke(&keys, w, l2),
                      DKV_ENOTFOUND);
    DKV_ASSERT_OK(dkv_engine_lease_grant(&l3, w, 1000));
    DKV_EXPECT_UINT_EQ(l3, 3);
    wcommit(w);
    DKV_EXPECT_STATUS(get1(&fx, T0 + 1600, "k3", &item), DKV_ENOTFOUND);
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0 + 1600, NULL), 1);

    /* a write to a key of an expired lease ends the lease first */
    o.lease = l3;
    DKV_ASSERT_OK(put1(&fx, T0 + 1600, "k4", "v", &o, NULL));
    DKV_ASSERT_OK(put1(&fx, T0 + 1600, "k5", "v", &o, NULL));
    w = wbegin(&fx, T0 + 2600);
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "k4", 2, "again", 5, NULL));
    wcommit(w);
    ev = dkv_engine_write_events(w, &n);
    DKV_ASSERT_UINT_EQ(n, 3);
    DKV_EXPECT_INT_EQ(ev[0].type, DKV_EVENT_DELETE);
    DKV_EXPECT_INT_EQ(ev[1].type, DKV_EVENT_DELETE);
    DKV_EXPECT_MEM_EQ(ev[2].key, ev[2].key_len, "k4", 2);
    DKV_EXPECT_INT_EQ(ev[2].type, DKV_EVENT_PUT);
    DKV_EXPECT_UINT_EQ(ev[2].version, 1);
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_EXPECT_INT_EQ(dkv_engine_next_expiry(r), 0);
    dkv_engine_read_end(r);
    fx_close(&fx);
}

/* ============================================================== locks */

static void
test_locks(void)
{
    fx_t fx;
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    dkv_put_opts_t o;
    dkv_delete_opts_t d;
    dkv_get_opts_t g;
    dkv_lock_t lk, lk2;
    dkv_lease_info_t info;
    dkv_item_t item;
    uint64_t l1, l2, l3, cleared, first_token;
    int64_t cur;

    fx_open(&fx, NULL);
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_lease_grant(&l1, w, 1000));
    DKV_ASSERT_OK(dkv_engine_lease_grant(&l2, w, 10000));
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "res", 3, "v", 1, NULL));
    DKV_ASSERT_OK(dkv_engine_lock_acquire(&lk, w, "res", 3, l1));
    DKV_EXPECT_INT_EQ(lk.acquired, 1);
    DKV_EXPECT_UINT_EQ(lk.token, 4);      /* the revision of acquisition */
    DKV_EXPECT_UINT_EQ(lk.lease, l1);
    DKV_ASSERT_OK(dkv_engine_lock_acquire(&lk2, w, "res", 3, l1));
    DKV_EXPECT_UINT_EQ(lk2.token, lk.token);
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), 4);
    DKV_EXPECT_STATUS(dkv_engine_lock_acquire(&lk2, w, "res", 3, l2),
                      DKV_ELOCKED);
    DKV_EXPECT_INT_EQ(lk2.acquired, 0);
    DKV_EXPECT_UINT_EQ(lk2.lease, l1);
    DKV_EXPECT_STATUS(dkv_engine_lock_acquire(&lk2, w, "res", 3, 99),
                      DKV_ENOTFOUND);
    DKV_EXPECT_STATUS(dkv_engine_lock_acquire(&lk2, w, "res", 3, 0),
                      DKV_EINVAL);

    /* writes need the token */
    memset(&o, 0, sizeof(o));
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "res", 3, "x", 1, &o),
                      DKV_ELOCKED);
    o.lock = lk.token + 1;
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "res", 3, "x", 1, &o),
                      DKV_ELOCKED);
    o.lock = lk.token;
    DKV_EXPECT_OK(dkv_engine_put(NULL, w, "res", 3, "x", 1, &o));
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "free", 4, "x", 1, &o),
                      DKV_ELOCKED);    /* token on an unlocked key */
    memset(&d, 0, sizeof(d));
    DKV_EXPECT_STATUS(dkv_engine_delete(NULL, w, "res", 3, &d),
                      DKV_ELOCKED);
    DKV_EXPECT_STATUS(dkv_engine_expire(NULL, w, "res", 3, 100, 0),
                      DKV_ELOCKED);
    DKV_EXPECT_OK(dkv_engine_expire(NULL, w, "res", 3, 0, lk.token));
    DKV_EXPECT_STATUS(dkv_engine_counter_add(NULL, &cur, w, "res", 3, 1,
                                             NULL), DKV_ELOCKED);
    DKV_EXPECT_OK(dkv_engine_clear(&cleared, w, NULL));
    DKV_EXPECT_UINT_EQ(cleared, 0);       /* locked keys are left */
    wcommit(w);

    /* reads under the lock */
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0 + 10));
    memset(&g, 0, sizeof(g));
    g.lock = lk.token;
    DKV_EXPECT_OK(dkv_engine_get(&item, r, "res", 3, &g, fx.pool));
    g.lock = lk.token + 1;
    DKV_EXPECT_STATUS(dkv_engine_get(&item, r, "res", 3, &g, fx.pool),
                      DKV_ELOCKED);
    DKV_ASSERT_OK(dkv_engine_lease_info(&info, r, l1));
    DKV_EXPECT_UINT_EQ(info.locks, 1);
    dkv_engine_read_end(r);

    /* release */
    w = wbegin(&fx, T0 + 20);
    DKV_EXPECT_STATUS(dkv_engine_lock_release(w, "res", 3, lk.token + 1),
                      DKV_ELOCKED);
    DKV_EXPECT_STATUS(dkv_engine_lock_release(w, "zzz", 3, lk.token),
                      DKV_ENOTFOUND);
    DKV_ASSERT_OK(dkv_engine_lock_release(w, "res", 3, lk.token));
    DKV_EXPECT_STATUS(dkv_engine_lock_release(w, "res", 3, lk.token),
                      DKV_ENOTFOUND);
    o.lock = lk.token;      /* a stale holder cannot write */
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "res", 3, "x", 1, &o),
                      DKV_ELOCKED);
    DKV_EXPECT_OK(dkv_engine_put(NULL, w, "res", 3, "y", 1, NULL));
    first_token = lk.token;
    DKV_ASSERT_OK(dkv_engine_lock_acquire(&lk, w, "res", 3, l2));
    DKV_EXPECT_TRUE(lk.token > first_token);
    wcommit(w);

    /* a lock whose lease expired is free: another lease acquires it,
     * with a larger token, after the old lease is ended */
    w = wbegin(&fx, T0 + 30);
    DKV_ASSERT_OK(dkv_engine_lease_grant(&l3, w, 100));
    DKV_ASSERT_OK(dkv_engine_lock_acquire(&lk2, w, "other", 5, l3));
    wcommit(w);
    w = wbegin(&fx, T0 + 200);
    DKV_EXPECT_OK(dkv_engine_put(NULL, w, "other", 5, "free now", 8,
                                 NULL));
    first_token = lk2.token;
    DKV_ASSERT_OK(dkv_engine_lock_acquire(&lk2, w, "other", 5, l2));
    DKV_EXPECT_TRUE(lk2.token > first_token);
    wcommit(w);
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0 + 200));
    DKV_EXPECT_STATUS(dkv_engine_lease_info(&info, r, l3), DKV_ENOTFOUND);
    DKV_ASSERT_OK(dkv_engine_lease_info(&info, r, l2));
    DKV_EXPECT_UINT_EQ(info.locks, 2);
    dkv_engine_read_end(r);

    /* revoking the lease releases its locks */
    w = wbegin(&fx, T0 + 300);
    DKV_ASSERT_OK(dkv_engine_lease_revoke(NULL, w, l2));
    DKV_EXPECT_OK(dkv_engine_put(NULL, w, "res", 3, "z", 1, NULL));
    DKV_EXPECT_OK(dkv_engine_clear(&cleared, w, NULL));
    DKV_EXPECT_UINT_EQ(cleared, 2);
    wcommit(w);
    fx_close(&fx);
}

/* =========================================================== counters */

static void
test_counters(void)
{
    fx_t fx;
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    dkv_counter_opts_t co;
    dkv_item_t item;
    const dkv_event_t *ev;
    int64_t prev, cur, v;
    size_t n;

    fx_open(&fx, NULL);
    memset(&co, 0, sizeof(co));
    co.ttl_ms = 1000;
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_counter_add(&prev, &cur, w, "c", 1, 5, &co));
    DKV_EXPECT_INT_EQ(prev, 0);
    DKV_EXPECT_INT_EQ(cur, 5);
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), 1);
    wcommit(w);
    ev = dkv_engine_write_events(w, &n);
    DKV_ASSERT_UINT_EQ(n, 1);
    expect_event(&ev[0], DKV_EVENT_PUT, "c", "5", 1, 1);

    /* ttl applies at creation only */
    co.ttl_ms = 5000;
    w = wbegin(&fx, T0 + 500);
    DKV_ASSERT_OK(dkv_engine_counter_add(&prev, &cur, w, "c", 1, -7, &co));
    DKV_EXPECT_INT_EQ(prev, 5);
    DKV_EXPECT_INT_EQ(cur, -2);
    wcommit(w);
    DKV_ASSERT_OK(get1(&fx, T0 + 500, "c", &item));
    DKV_EXPECT_MEM_EQ(item.value, item.value_len, "-2", 2);
    DKV_EXPECT_INT_EQ(item.expires_at, T0 + 1000);
    DKV_EXPECT_UINT_EQ(item.version, 2);

    /* bounds and overflow: ERANGE, unchanged */
    w = wbegin(&fx, T0 + 600);
    memset(&co, 0, sizeof(co));
    co.has_max = 1;
    co.max = 0;
    DKV_EXPECT_STATUS(dkv_engine_counter_add(NULL, NULL, w, "c", 1, 3, &co),
                      DKV_ERANGE);
    co.has_max = 0;
    co.has_min = 1;
    co.min = -2;
    DKV_EXPECT_STATUS(dkv_engine_counter_add(NULL, NULL, w, "c", 1, -1,
                                             &co), DKV_ERANGE);
    DKV_EXPECT_OK(dkv_engine_counter_add(NULL, &cur, w, "c", 1, 0, &co));
    DKV_ASSERT_OK(dkv_engine_counter_set(w, "big", 3, INT64_MAX, NULL));
    DKV_EXPECT_STATUS(dkv_engine_counter_add(NULL, NULL, w, "big", 3, 1,
                                             NULL), DKV_ERANGE);
    DKV_ASSERT_OK(dkv_engine_counter_set(w, "small", 5, INT64_MIN, NULL));
    DKV_EXPECT_STATUS(dkv_engine_counter_add(NULL, NULL, w, "small", 5, -1,
                                             NULL), DKV_ERANGE);
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "text", 4, "hello", 5, NULL));
    DKV_EXPECT_STATUS(dkv_engine_counter_add(NULL, NULL, w, "text", 4, 1,
                                             NULL), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_engine_counter_set(w, "text", 4, 1, NULL),
                      DKV_EINVAL);
    co.has_min = 0;
    co.has_max = 1;
    co.max = 10;
    DKV_EXPECT_STATUS(dkv_engine_counter_set(w, "x", 1, 11, &co),
                      DKV_ERANGE);
    co.ttl_ms = 100;
    DKV_ASSERT_OK(dkv_engine_counter_set(w, "c", 1, 10, &co));
    wcommit(w);

    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0 + 650));
    DKV_ASSERT_OK(dkv_engine_counter_get(&v, r, "c", 1));
    DKV_EXPECT_INT_EQ(v, 10);
    DKV_ASSERT_OK(dkv_engine_counter_get(&v, r, "big", 3));
    DKV_EXPECT_INT_EQ(v, INT64_MAX);
    DKV_ASSERT_OK(dkv_engine_counter_get(&v, r, "small", 5));
    DKV_EXPECT_INT_EQ(v, INT64_MIN);
    DKV_EXPECT_STATUS(dkv_engine_counter_get(&v, r, "text", 4), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_engine_counter_get(&v, r, "none", 4),
                      DKV_ENOTFOUND);
    dkv_engine_read_end(r);
    /* counter_set gave c a new 100 ms life; then it expires */
    DKV_ASSERT_OK(get1(&fx, T0 + 699, "c", &item));
    DKV_EXPECT_STATUS(get1(&fx, T0 + 700, "c", &item), DKV_ENOTFOUND);
    w = wbegin(&fx, T0 + 700);
    DKV_ASSERT_OK(dkv_engine_counter_add(&prev, &cur, w, "c", 1, 1, NULL));
    DKV_EXPECT_INT_EQ(prev, 0);   /* an expired counter starts again */
    DKV_EXPECT_INT_EQ(cur, 1);
    wcommit(w);
    ev = dkv_engine_write_events(w, &n);
    DKV_ASSERT_UINT_EQ(n, 2);
    DKV_EXPECT_INT_EQ(ev[0].type, DKV_EVENT_DELETE);
    DKV_EXPECT_INT_EQ(ev[1].type, DKV_EVENT_PUT);
    DKV_EXPECT_UINT_EQ(ev[1].version, 1);

    /* counters expire through expire_due like keys */
    memset(&co, 0, sizeof(co));
    co.ttl_ms = 10;
    w = wbegin(&fx, T0 + 800);
    DKV_ASSERT_OK(dkv_engine_counter_add(NULL, NULL, w, "rate", 4, 1, &co));
    wcommit(w);
    w = wbegin(&fx, T0 + 810);
    DKV_ASSERT_OK(dkv_engine_expire_due(NULL, NULL, w, 0));
    wcommit(w);
    ev = dkv_engine_write_events(w, &n);
    DKV_ASSERT_UINT_EQ(n, 1);
    DKV_EXPECT_MEM_EQ(ev[0].key, ev[0].key_len, "rate", 4);
    fx_close(&fx);
}

/* ======================================================= transactions */

static void
test_txn(void)
{
    fx_t fx;
    dkv_eng_write_t *w;
    dkv_item_t item;
    dkv_put_opts_t absent, ttl;
    dkv_delete_opts_t dv;
    dkv_eng_compare_t cmp[2];
    dkv_op_t ops[3];
    const dkv_event_t *ev;
    uint64_t lease;
    size_t n;

    fx_open(&fx, NULL);
    DKV_ASSERT_OK(put1(&fx, T0, "a", "1", NULL, NULL));       /* rev 1 */
    memset(&ttl, 0, sizeof(ttl));
    ttl.ttl_ms = 10;
    DKV_ASSERT_OK(put1(&fx, T0, "e", "1", &ttl, NULL));       /* rev 2 */
    memset(cmp, 0, sizeof(cmp));
    memset(ops, 0, sizeof(ops));
    memset(&absent, 0, sizeof(absent));
    absent.if_absent = 1;

    /* compares hold: ops applied in order, each with its revision */
    cmp[0].key = "a"; cmp[0].key_len = 1; cmp[0].mod_revision = 1;
    cmp[1].key = "e"; cmp[1].key_len = 1; cmp[1].mod_revision = 0;
    ops[0].type = DKV_OP_PUT; ops[0].key = "b"; ops[0].key_len = 1;
    ops[0].value = "2"; ops[0].value_len = 1;
    ops[1].type = DKV_OP_DELETE; ops[1].key = "a"; ops[1].key_len = 1;
    ops[2].type = DKV_OP_DELETE; ops[2].key = "zz"; ops[2].key_len = 2;
    w = wbegin(&fx, T0 + 10);     /* e has expired: counts as absent */
    DKV_ASSERT_OK(dkv_engine_txn(w, cmp, 2, ops, 3));
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), 4);
    wcommit(w);
    ev = dkv_engine_write_events(w, &n);
    DKV_ASSERT_UINT_EQ(n, 2);
    expect_event(&ev[0], DKV_EVENT_PUT, "b", "2", 3, 1);
    expect_event(&ev[1], DKV_EVENT_DELETE, "a", NULL, 4, 1);

    /* a compare fails: nothing */
    w = wbegin(&fx, T0 + 10);
    cmp[0].key = "b"; cmp[0].mod_revision = 2;
    DKV_EXPECT_STATUS(dkv_engine_txn(w, cmp, 1, ops, 1), DKV_ECONFLICT);
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), 4);
    dkv_engine_write_events(w, &n);
    DKV_EXPECT_UINT_EQ(n, 0);

    /* an op fails after others succeeded: no trace, context usable */
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "pre", 3, "p", 1, NULL));
    ops[0].key = "c"; ops[0].put = NULL;
    ops[1].type = DKV_OP_PUT; ops[1].key = "e"; ops[1].key_len = 1;
    ops[1].value = "x"; ops[1].value_len = 1; ops[1].put = NULL;
    ops[2].type = DKV_OP_PUT; ops[2].key = "b"; ops[2].key_len = 1;
    ops[2].value = "x"; ops[2].value_len = 1; ops[2].put = &absent;
    DKV_EXPECT_STATUS(dkv_engine_txn(w, NULL, 0, ops, 3), DKV_ECONFLICT);
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), 5);
    dkv_engine_write_events(w, &n);
    DKV_EXPECT_UINT_EQ(n, 1);
    /* if_version on an absent key is a conflict in a transaction */
    memset(&dv, 0, sizeof(dv));
    dv.if_version = 1;
    ops[2].type = DKV_OP_DELETE; ops[2].key = "nope"; ops[2].key_len = 4;
    ops[2].del = &dv;
    DKV_EXPECT_STATUS(dkv_engine_txn(w, NULL, 0, ops, 3), DKV_ECONFLICT);
    /* unknown lease */
    {
        dkv_put_opts_t lo;

        memset(&lo, 0, sizeof(lo));
        lo.lease = 42;
        ops[2].type = DKV_OP_PUT; ops[2].key = "l"; ops[2].key_len = 1;
        ops[2].put = &lo;
        DKV_EXPECT_STATUS(dkv_engine_txn(w, NULL, 0, ops, 3),
                          DKV_ENOTFOUND);
    }
    /* a bad op is refused before anything runs */
    ops[2].type = (dkv_op_type_t)9;
    DKV_EXPECT_STATUS(dkv_engine_txn(w, NULL, 0, ops, 3), DKV_EINVAL);
    ops[2].type = DKV_OP_PUT; ops[2].key = ""; ops[2].key_len = 0;
    DKV_EXPECT_STATUS(dkv_engine_txn(w, NULL, 0, ops, 3), DKV_EINVAL);
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), 5);
    dkv_engine_write_events(w, &n);
    DKV_EXPECT_UINT_EQ(n, 1);
    wcommit(w);
    DKV_EXPECT_STATUS(get1(&fx, T0 + 10, "c", &item), DKV_ENOTFOUND);
    DKV_ASSERT_OK(get1(&fx, T0 + 10, "pre", &item));

    /* a locked key fails the whole txn with ELOCKED */
    w = wbegin(&fx, T0 + 20);
    DKV_ASSERT_OK(dkv_engine_lease_grant(&lease, w, 1000));
    DKV_ASSERT_OK(dkv_engine_lock_acquire(NULL, w, "b", 1, lease));
    ops[2].type = DKV_OP_DELETE; ops[2].key = "b"; ops[2].key_len = 1;
    ops[2].del = NULL;
    n = (size_t)dkv_engine_write_revision(w);
    DKV_EXPECT_STATUS(dkv_engine_txn(w, NULL, 0, ops, 3), DKV_ELOCKED);
    DKV_EXPECT_UINT_EQ(dkv_engine_write_revision(w), n);
    wcommit(w);
    DKV_ASSERT_OK(get1(&fx, T0 + 20, "b", &item));
    DKV_EXPECT_STATUS(get1(&fx, T0 + 20, "c", &item), DKV_ENOTFOUND);
    fx_close(&fx);
}

/* ============================================================ history */

typedef struct hist_acc {
    size_t n;
    uint64_t revs[64];
    dkv_event_type_t types[64];
    size_t stop_after;
} hist_acc_t;

static dkv_status_t
hist_cb(void *baton, const dkv_event_t *ev)
{
    hist_acc_t *acc = baton;

    if (acc->n < 64) {
        acc->revs[acc->n] = ev->revision;
        acc->types[acc->n] = ev->type;
    }
    acc->n++;
    if (acc->stop_after && acc->n == acc->stop_after) {
        return DKV_ECLOSED;
    }
    return DKV_OK;
}

static void
test_history(void)
{
    fx_t fx;
    dkv_engine_opts_t eo = { 0, 0, 5, 1 };
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    hist_acc_t acc;
    char key[8];
    int i;

    fx_open(&fx, NULL);
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "a/1", 3, "x", 1, NULL)); /* 1 */
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "b/1", 3, "x", 1, NULL)); /* 2 */
    DKV_ASSERT_OK(dkv_engine_lease_grant(NULL, w, 1000));           /* 3 */
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "a/2", 3, "y", 1, NULL)); /* 4 */
    DKV_ASSERT_OK(dkv_engine_delete(NULL, w, "a/1", 3, NULL));      /* 5 */
    wcommit(w);

    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_EXPECT_UINT_EQ(dkv_engine_history_oldest(r), 1);
    memset(&acc, 0, sizeof(acc));
    DKV_ASSERT_OK(dkv_engine_history(r, 1, "a/", 2, 1, hist_cb, &acc));
    DKV_ASSERT_UINT_EQ(acc.n, 3);
    DKV_EXPECT_UINT_EQ(acc.revs[0], 1);
    DKV_EXPECT_UINT_EQ(acc.revs[1], 4);
    DKV_EXPECT_UINT_EQ(acc.revs[2], 5);
    DKV_EXPECT_INT_EQ(acc.types[2], DKV_EVENT_DELETE);
    memset(&acc, 0, sizeof(acc));
    DKV_ASSERT_OK(dkv_engine_history(r, 2, "a/1", 3, 0, hist_cb, &acc));
    DKV_ASSERT_UINT_EQ(acc.n, 1);
    DKV_EXPECT_UINT_EQ(acc.revs[0], 5);
    memset(&acc, 0, sizeof(acc));
    DKV_ASSERT_OK(dkv_engine_history(r, 1, "", 0, 1, hist_cb, &acc));
    DKV_EXPECT_UINT_EQ(acc.n, 4);
    memset(&acc, 0, sizeof(acc));
    acc.stop_after = 2;
    DKV_EXPECT_STATUS(dkv_engine_history(r, 1, "", 0, 1, hist_cb, &acc),
                      DKV_ECLOSED);
    memset(&acc, 0, sizeof(acc));
    DKV_ASSERT_OK(dkv_engine_history(r, 6, "", 0, 1, hist_cb, &acc));
    DKV_EXPECT_UINT_EQ(acc.n, 0);
    dkv_engine_read_end(r);

    /* a snapshot replays only up to its own revision */
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_ASSERT_OK(put1(&fx, T0, "a/3", "z", NULL, NULL));             /* 6 */
    memset(&acc, 0, sizeof(acc));
    DKV_ASSERT_OK(dkv_engine_history(r, 1, "a/", 2, 1, hist_cb, &acc));
    DKV_EXPECT_UINT_EQ(acc.n, 3);
    dkv_engine_read_end(r);

    /* retention 5: after 30 revisions only the last 5 remain */
    fx_reopen(&fx, &eo);
    for (i = 0; i < 24; i++) {
        key[0] = 'k';
        key[1] = (char)('a' + i);
        key[2] = '\0';
        DKV_ASSERT_OK(put1(&fx, T0, key, "v", NULL, NULL));
    }
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_EXPECT_UINT_EQ(dkv_engine_read_revision(r), 30);
    DKV_EXPECT_UINT_EQ(dkv_engine_history_oldest(r), 26);
    memset(&acc, 0, sizeof(acc));
    DKV_EXPECT_STATUS(dkv_engine_history(r, 25, "", 0, 1, hist_cb, &acc),
                      DKV_ECOMPACTED);
    DKV_EXPECT_STATUS(dkv_engine_history(r, 1, "", 0, 1, hist_cb, &acc),
                      DKV_ECOMPACTED);
    DKV_ASSERT_OK(dkv_engine_history(r, 26, "", 0, 1, hist_cb, &acc));
    DKV_EXPECT_UINT_EQ(acc.n, 5);
    DKV_EXPECT_UINT_EQ(acc.revs[0], 26);
    memset(&acc, 0, sizeof(acc));
    DKV_ASSERT_OK(dkv_engine_history(r, 0, "", 0, 1, hist_cb, &acc));
    DKV_EXPECT_UINT_EQ(acc.n, 5);
    {
        MDB_stat st;

        DKV_ASSERT_TRUE(mdb_stat(r->txn, fx.e->hist, &st) == 0);
        DKV_EXPECT_UINT_EQ(st.ms_entries, 5);
    }
    dkv_engine_read_end(r);
    fx_close(&fx);
}

/* A large backlog is trimmed a bounded amount per commit. */
static void
test_history_amortized(void)
{
    fx_t fx;
    dkv_engine_opts_t eo = { 0, 0, 10, 1 };
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    hist_acc_t acc;
    MDB_stat st;
    char key[16];
    int i;

    fx_open(&fx, NULL);
    w = wbegin(&fx, T0);
    for (i = 0; i < 1000; i++) {
        key[0] = 'k';
        dkv_put_be32((unsigned char *)key + 1, (uint32_t)i);
        DKV_ASSERT_OK(dkv_engine_put(NULL, w, key, 5, "v", 1, NULL));
    }
    wcommit(w);
    fx_reopen(&fx, &eo);
    DKV_ASSERT_OK(put1(&fx, T0, "x", "v", NULL, NULL));     /* rev 1001 */
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_ASSERT_TRUE(mdb_stat(r->txn, fx.e->hist, &st) == 0);
    /* 130 deleted (budget 2 * 1 + 128), the rest later */
    DKV_EXPECT_UINT_EQ(st.ms_entries, 1001 - 130);
    DKV_EXPECT_UINT_EQ(dkv_engine_history_oldest(r), 131);
    memset(&acc, 0, sizeof(acc));
    DKV_EXPECT_STATUS(dkv_engine_history(r, 130, "", 0, 1, hist_cb, &acc),
                      DKV_ECOMPACTED);
    DKV_EXPECT_OK(dkv_engine_history(r, 131, "x", 1, 0, hist_cb, &acc));
    DKV_EXPECT_UINT_EQ(acc.n, 1);
    dkv_engine_read_end(r);
    for (i = 0; i < 10; i++) {
        DKV_ASSERT_OK(put1(&fx, T0, "x", "v", NULL, NULL));
    }
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_ASSERT_TRUE(mdb_stat(r->txn, fx.e->hist, &st) == 0);
    DKV_EXPECT_UINT_EQ(st.ms_entries, 10);
    DKV_EXPECT_UINT_EQ(dkv_engine_history_oldest(r), 1002);
    dkv_engine_read_end(r);
    fx_close(&fx);
}

/* ========================================================= scan/count */

static void
test_scan_count(void)
{
    fx_t fx;
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    dkv_page_t *pg;
    dkv_scan_opts_t so;
    dkv_range_t rg;
    dkv_put_opts_t o;
    const char *keys[] = { "a", "b/1", "b/2", "b/3", "b/4", "c", "d" };
    size_t i;

    fx_open(&fx, NULL);
    w = wbegin(&fx, T0);
    memset(&o, 0, sizeof(o));
    for (i = 0; i < 7; i++) {
        o.ttl_ms = strcmp(keys[i], "b/3") == 0 ? 10 : 0;
        DKV_ASSERT_OK(dkv_engine_put(NULL, w, keys[i], strlen(keys[i]),
                                     keys[i], strlen(keys[i]), &o));
    }
    wcommit(w);

    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0 + 10));
    DKV_ASSERT_OK(dkv_engine_scan(&pg, r, NULL, NULL, fx.pool));
    DKV_ASSERT_UINT_EQ(pg->count, 6);      /* b/3 expired */
    DKV_EXPECT_INT_EQ(pg->more, 0);
    DKV_EXPECT_UINT_EQ(pg->revision, 7);
    DKV_EXPECT_MEM_EQ(pg->items[3].key, pg->items[3].key_len, "b/4", 3);
    DKV_EXPECT_MEM_EQ(pg->items[3].value, pg->items[3].value_len, "b/4", 3);

    /* prefix, paged by 2 */
    memset(&rg, 0, sizeof(rg));
    rg.prefix = "b/";
    rg.prefix_len = 2;
    memset(&so, 0, sizeof(so));
    so.limit = 2;
    DKV_ASSERT_OK(dkv_engine_scan(&pg, r, &rg, &so, fx.pool));
    DKV_ASSERT_UINT_EQ(pg->count, 2);
    DKV_EXPECT_INT_EQ(pg->more, 1);
    DKV_EXPECT_MEM_EQ(pg->next, pg->next_len, "b/2", 3);
    so.after = pg->next;
    so.after_len = pg->next_len;
    DKV_ASSERT_OK(dkv_engine_scan(&pg, r, &rg, &so, fx.pool));
    DKV_ASSERT_UINT_EQ(pg->count, 1);
    DKV_EXPECT_MEM_EQ(pg->items[0].key, pg->items[0].key_len, "b/4", 3);
    DKV_EXPECT_INT_EQ(pg->more, 0);

    /* [b/2, d), keys only */
    memset(&rg, 0, sizeof(rg));
    rg.start = "b/2";
    rg.start_len = 3;
    rg.end = "d";
    rg.end_len = 1;
    memset(&so, 0, sizeof(so));
    so.keys_only = 1;
    DKV_ASSERT_OK(dkv_engine_scan(&pg, r, &rg, &so, fx.pool));
    DKV_ASSERT_UINT_EQ(pg->count, 3);
    DKV_EXPECT_TRUE(pg->items[0].value == NULL);
    DKV_EXPECT_MEM_EQ(pg->items[2].key, pg->items[2].key_len, "c", 1);
    /* an after cursor before the start */
    so.after = "a";
    so.after_len = 1;
    DKV_ASSERT_OK(dkv_engine_scan(&pg, r, &rg, &so, fx.pool));
    DKV_EXPECT_UINT_EQ(pg->count, 3);

    /* counts */
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0 + 10, NULL), 6);
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0 + 9, NULL), 7);
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0 + 10, &rg), 3);
    memset(&rg, 0, sizeof(rg));
    rg.prefix = "b/";
    rg.prefix_len = 2;
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0 + 10, &rg), 3);
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0, &rg), 4);

    /* bad arguments */
    rg.start = "a";
    rg.start_len = 1;
    DKV_EXPECT_STATUS(dkv_engine_scan(&pg, r, &rg, NULL, fx.pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_engine_count(&i, r, &rg), DKV_EINVAL);
    memset(&so, 0, sizeof(so));
    so.limit = 10001;
    DKV_EXPECT_STATUS(dkv_engine_scan(&pg, r, NULL, &so, fx.pool),
                      DKV_EINVAL);
    dkv_engine_read_end(r);
    fx_close(&fx);
}

static void
test_clear(void)
{
    fx_t fx;
    dkv_eng_write_t *w;
    dkv_range_t rg;
    const dkv_event_t *ev;
    uint64_t deleted;
    size_t n;

    fx_open(&fx, NULL);
    DKV_ASSERT_OK(put1(&fx, T0, "a", "1", NULL, NULL));
    DKV_ASSERT_OK(put1(&fx, T0, "b", "1", NULL, NULL));
    DKV_ASSERT_OK(put1(&fx, T0, "c", "1", NULL, NULL));
    DKV_ASSERT_OK(put1(&fx, T0, "d", "1", NULL, NULL));
    memset(&rg, 0, sizeof(rg));
    rg.start = "b";
    rg.start_len = 1;
    rg.end = "d";
    rg.end_len = 1;
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_clear(&deleted, w, &rg));
    DKV_EXPECT_UINT_EQ(deleted, 2);
    wcommit(w);
    ev = dkv_engine_write_events(w, &n);
    DKV_ASSERT_UINT_EQ(n, 2);
    expect_event(&ev[0], DKV_EVENT_DELETE, "b", NULL, 5, 1);
    expect_event(&ev[1], DKV_EVENT_DELETE, "c", NULL, 6, 1);
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_clear(&deleted, w, NULL));
    DKV_EXPECT_UINT_EQ(deleted, 2);
    rg.prefix = "x";
    rg.prefix_len = 1;
    DKV_EXPECT_STATUS(dkv_engine_clear(&deleted, w, &rg), DKV_EINVAL);
    wcommit(w);
    DKV_EXPECT_UINT_EQ(count_all(&fx, T0, NULL), 0);
    fx_close(&fx);
}

/* ====================================================== persistence */

static void
test_reopen(void)
{
    fx_t fx;
    dkv_eng_write_t *w;
    dkv_eng_read_t *r;
    dkv_item_t item;
    dkv_put_opts_t o;
    dkv_lease_info_t info;
    uint64_t lease;

    fx_open(&fx, NULL);
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_lease_grant(&lease, w, 60000));
    memset(&o, 0, sizeof(o));
    o.lease = lease;
    o.ttl_ms = 5000;
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "k", 1, "persisted", 9, &o));
    DKV_ASSERT_OK(dkv_engine_lock_acquire(NULL, w, "k", 1, lease));
    DKV_ASSERT_OK(dkv_engine_write_commit(w, 42));
    /* an aborted context leaves nothing */
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "gone", 4, "x", 1, NULL));
    dkv_engine_write_abort(w);
    dkv_engine_write_abort(NULL);
    /* a commit without applied index keeps it */
    DKV_ASSERT_OK(put1(&fx, T0, "k2", "v", NULL, NULL));

    fx_reopen(&fx, NULL);
    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0 + 1));
    DKV_EXPECT_UINT_EQ(dkv_engine_read_revision(r), 4);
    DKV_EXPECT_UINT_EQ(dkv_engine_applied_index(r), 42);
    DKV_EXPECT_INT_EQ(dkv_engine_next_expiry(r), T0 + 5000);
    DKV_ASSERT_OK(dkv_engine_get(&item, r, "k", 1, NULL, fx.pool));
    DKV_EXPECT_MEM_EQ(item.value, item.value_len, "persisted", 9);
    DKV_EXPECT_UINT_EQ(item.lease, lease);
    DKV_EXPECT_INT_EQ(item.ttl_ms, 4999);
    DKV_EXPECT_STATUS(dkv_engine_get(&item, r, "gone", 4, NULL, fx.pool),
                      DKV_ENOTFOUND);
    DKV_ASSERT_OK(dkv_engine_lease_info(&info, r, lease));
    DKV_EXPECT_UINT_EQ(info.keys, 1);
    DKV_EXPECT_UINT_EQ(info.locks, 1);
    dkv_engine_read_end(r);
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_lease_grant(&lease, w, 1000));
    DKV_EXPECT_UINT_EQ(lease, 2);       /* the sequence persisted */
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "k", 1, "x", 1, NULL),
                      DKV_ELOCKED);     /* and the lock */
    wcommit(w);
    fx_close(&fx);
}

/* A directory holding a foreign LMDB environment is refused. */
static void
test_not_a_store(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *dir = dkv_test_tempdir(p);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = { 3, (void *)"foo" }, v = { 3, (void *)"bar" };
    dkv_engine_t *e;

    DKV_ASSERT_TRUE(mdb_env_create(&env) == 0);
    DKV_ASSERT_TRUE(mdb_env_open(env, dir, 0, 0644) == 0);
    DKV_ASSERT_TRUE(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    DKV_ASSERT_TRUE(mdb_dbi_open(txn, NULL, 0, &dbi) == 0);
    DKV_ASSERT_TRUE(mdb_put(txn, dbi, &k, &v, 0) == 0);
    DKV_ASSERT_TRUE(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
    DKV_EXPECT_STATUS(dkv_engine_open(&e, dir, NULL, p), DKV_ECORRUPT);
    apr_pool_destroy(p);
}

/* ============================================= records and damage */

static void
test_record_codec(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_label_t labels[2] = { { "n", "v", 1 }, { "long", "value", 0 } };
    dkv_rec_t rec, out;
    unsigned char *buf;
    const dkv_label_t *dl;
    size_t size, i;

    memset(&rec, 0, sizeof(rec));
    rec.version = 3;
    rec.create_rev = 1;
    rec.mod_rev = 9;
    rec.created_at = T0;
    rec.expires_at = T0 + 5;
    rec.ttl_ms = 5;
    rec.lease = 7;
    rec.value = (const unsigned char *)"val";
    rec.value_len = 3;
    rec.entity = "ent";
    rec.entity_len = 3;
    rec.ctype = "ct";
    rec.ctype_len = 2;
    size = dkv_rec_size(&rec, labels, 2);
    buf = apr_palloc(p, size);
    dkv_rec_encode(buf, &rec, labels, 2);
    DKV_ASSERT_OK(dkv_rec_decode(&out, buf, size));
    DKV_EXPECT_UINT_EQ(out.version, 3);
    DKV_EXPECT_UINT_EQ(out.mod_rev, 9);
    DKV_EXPECT_INT_EQ(out.expires_at, T0 + 5);
    DKV_EXPECT_UINT_EQ(out.lease, 7);
    DKV_EXPECT_MEM_EQ(out.value, out.value_len, "val", 3);
    DKV_EXPECT_MEM_EQ(out.entity, out.entity_len, "ent", 3);
    DKV_EXPECT_MEM_EQ(out.ctype, out.ctype_len, "ct", 2);
    DKV_EXPECT_UINT_EQ(out.nlabels, 2);
    dkv_rec_labels(&dl, &out, p);
    DKV_EXPECT_STR_EQ(dl[1].name, "long");
    DKV_EXPECT_STR_EQ(dl[1].value, "value");
    DKV_EXPECT_INT_EQ(dl[1].indexed, 0);

    /* numbers of every size (2^k - 1, 2^k, 2^k + 1) round-trip, at the
     * very end of the record and before a value */
    for (i = 0; i < 64 * 3 * 2; i++) {
        uint64_t n = ((uint64_t)1 << (i / 6)) + (i / 2) % 3 - 1;

        memset(&rec, 0, sizeof(rec));
        rec.version = n ? n : 1;
        rec.mod_rev = n;
        rec.create_rev = n / 3;
        rec.created_at = (int64_t)n;
        rec.expires_at = (int64_t)(n >> 1) + 1;
        rec.ttl_ms = (int64_t)(n >> 2) + 1;
        rec.lease = n ? n : 1;
        rec.value = (const unsigned char *)"0123456789";
        rec.value_len = i % 2 ? 10 : 0;
        size = dkv_rec_size(&rec, NULL, 0);
        buf = apr_palloc(p, size);
        dkv_rec_encode(buf, &rec, NULL, 0);
        DKV_ASSERT_OK(dkv_rec_decode(&out, buf, size));
        DKV_EXPECT_UINT_EQ(out.version, rec.version);
        DKV_EXPECT_UINT_EQ(out.mod_rev, rec.mod_rev);
        DKV_EXPECT_UINT_EQ(out.create_rev, rec.create_rev);
        DKV_EXPECT_INT_EQ(out.created_at, rec.created_at);
        DKV_EXPECT_INT_EQ(out.expires_at, rec.expires_at);
        DKV_EXPECT_INT_EQ(out.ttl_ms, rec.ttl_ms);
        DKV_EXPECT_UINT_EQ(out.lease, rec.lease);
        DKV_EXPECT_UINT_EQ(out.value_len, rec.value_len);
    }

    /* a plain key: 14 bytes besides its value */
    memset(&rec, 0, sizeof(rec));
    rec.version = 1;
    rec.create_rev = rec.mod_rev = 100000;
    rec.created_at = T0;
    rec.value = (const unsigned char *)"val";
    rec.value_len = 3;
    DKV_EXPECT_UINT_EQ(dkv_rec_size(&rec, NULL, 0), 14 + 3);
    apr_pool_destroy(p);
}

/* Every truncation of a record is refused, and every damaged byte either
 * is refused or decodes to a record whose encoding is exactly the
 * damaged bytes (a changed number or text that only a checksum could
 * catch). */
static void
test_record_damage(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_label_t labels[2] = { { "n", "v", 1 }, { "long", "value", 0 } };
    dkv_rec_t rec, out;
    unsigned char *buf, *again;
    size_t size, cut, i, area, vlen_at, refused = 0;
    uint64_t zz;
    unsigned bit;

    memset(&rec, 0, sizeof(rec));
    rec.version = 3;
    rec.create_rev = 1;
    rec.mod_rev = 9;
    rec.created_at = T0;
    rec.expires_at = T0 + 5;
    rec.ttl_ms = 5;
    rec.lease = 7;
    rec.value = (const unsigned char *)"val";
    rec.value_len = 3;
    rec.entity = "ent";
    rec.entity_len = 3;
    rec.ctype = "ct";
    rec.ctype_len = 2;
    size = dkv_rec_size(&rec, labels, 2);
    buf = apr_palloc(p, size);
    again = apr_palloc(p, size);
    dkv_rec_encode(buf, &rec, labels, 2);
    DKV_ASSERT_OK(dkv_rec_decode(&out, buf, size));
    area = (size_t)(out.labels - buf);

    for (cut = 0; cut < size; cut++) {
        DKV_EXPECT_STATUS(dkv_rec_decode(&out, buf, cut), DKV_ECORRUPT);
    }
    for (i = 0; i < size; i++) {
        for (bit = 0; bit < 8; bit++) {
            dkv_status_t s;

            buf[i] ^= (unsigned char)(1u << bit);
            s = dkv_rec_decode(&out, buf, size);
            if (s == DKV_OK) {
                DKV_EXPECT_UINT_EQ(dkv_rec_size(&out, NULL, 0), size);
                dkv_rec_encode(again, &out, NULL, 0);
                DKV_EXPECT_TRUE(memcmp(again, buf, size) == 0);
            } else {
                DKV_EXPECT_STATUS(s, DKV_ECORRUPT);
                refused++;
            }
            buf[i] ^= (unsigned char)(1u << bit);
        }
    }
    /* the flips refused include every one of the format and flags
     * bytes */
    DKV_EXPECT_TRUE(refused >= 16);

    buf[0] = 9;
    DKV_EXPECT_STATUS(dkv_rec_decode(&out, buf, size), DKV_ECORRUPT);
    buf[0] = DKV_REC_FORMAT;
    buf[1] |= 0x40;                             /* unknown flag */
    DKV_EXPECT_STATUS(dkv_rec_decode(&out, buf, size), DKV_ECORRUPT);
    buf[1] &= (unsigned char)~0x40;
    buf[area + 1] = 200;                        /* first label name len */
    DKV_EXPECT_STATUS(dkv_rec_decode(&out, buf, size), DKV_ECORRUPT);
    buf[area + 1] = 1;
    buf[area] = 0x80;                           /* unknown label flag */
    DKV_EXPECT_STATUS(dkv_rec_decode(&out, buf, size), DKV_ECORRUPT);
    buf[area] = 1;
    /* the value length: after format, flags, three one-byte varints and
     * the created-at varint */
    vlen_at = 5;
    for (zz = (uint64_t)T0 << 1; zz; zz >>= 7) {
        vlen_at++;
    }
    DKV_EXPECT_UINT_EQ(buf[vlen_at], 3);
    buf[vlen_at] = 4;
    DKV_EXPECT_STATUS(dkv_rec_decode(&out, buf, size), DKV_ECORRUPT);
    buf[vlen_at] = 0x83;                        /* runs into the next */
    DKV_EXPECT_STATUS(dkv_rec_decode(&out, buf, size), DKV_ECORRUPT);
    buf[vlen_at] = 3;
    DKV_EXPECT_OK(dkv_rec_decode(&out, buf, size));
    apr_pool_destroy(p);
}

static void
test_damaged_store(void)
{
    fx_t fx;
    MDB_txn *txn;
    /* a record key: DKV_KV_TAG + user key (engine-int.h) */
    MDB_val k = { 4, (void *)"\377bad" }, v = { 10, (void *)"0123456789" };
    dkv_eng_read_t *r;
    dkv_eng_write_t *w;
    dkv_item_t item;
    dkv_page_t *pg;

    fx_open(&fx, NULL);
    DKV_ASSERT_TRUE(mdb_txn_begin(fx.e->env, NULL, 0, &txn) == 0);
    DKV_ASSERT_TRUE(mdb_put(txn, fx.e->kv, &k, &v, 0) == 0);
    DKV_ASSERT_TRUE(mdb_txn_commit(txn) == 0);

    DKV_ASSERT_OK(dkv_engine_read_begin(&r, fx.e, T0));
    DKV_EXPECT_STATUS(dkv_engine_get(&item, r, "bad", 3, NULL, fx.pool),
                      DKV_ECORRUPT);
    DKV_EXPECT_INT_EQ(item.status, DKV_ECORRUPT);
    DKV_EXPECT_STATUS(dkv_engine_scan(&pg, r, NULL, NULL, fx.pool),
                      DKV_ECORRUPT);
    dkv_engine_read_end(r);
    /* a write hitting it poisons the context */
    w = wbegin(&fx, T0);
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "ok", 2, "v", 1, NULL));
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "bad", 3, "v", 1, NULL),
                      DKV_ECORRUPT);
    DKV_EXPECT_STATUS(dkv_engine_put(NULL, w, "ok2", 3, "v", 1, NULL),
                      DKV_ECORRUPT);
    DKV_EXPECT_STATUS(dkv_engine_write_commit(w, 0), DKV_ECORRUPT);
    DKV_EXPECT_STATUS(get1(&fx, T0, "ok", &item), DKV_ENOTFOUND);
    fx_close(&fx);
}

/* A full map poisons the context; the engine stays usable. */
static void
test_full(void)
{
    fx_t fx;
    dkv_engine_opts_t eo = { 0, 256 * 1024, 0, 1 };
    dkv_eng_write_t *w;
    dkv_item_t item;
    char *big;
    char key[8];
    dkv_status_t s = DKV_OK;
    int i;

    fx_open(&fx, &eo);
    big = apr_pcalloc(fx.pool, 64 * 1024);
    w = wbegin(&fx, T0);
    for (i = 0; i < 100 && s == DKV_OK; i++) {
        key[0] = 'k';
        key[1] = (char)('0' + i / 10);
        key[2] = (char)('0' + i % 10);
        s = dkv_engine_put(NULL, w, key, 3, big, 64 * 1024, NULL);
    }
    DKV_EXPECT_STATUS(s, DKV_EFULL);
    DKV_EXPECT_STATUS(dkv_engine_write_commit(w, 0), DKV_EFULL);
    DKV_ASSERT_OK(put1(&fx, T0, "small", "v", NULL, NULL));
    DKV_ASSERT_OK(get1(&fx, T0, "small", &item));
    DKV_EXPECT_UINT_EQ(item.revision, 1);
    fx_close(&fx);
}

/* ============================================================ reads */

static void
test_read_contexts(void)
{
    fx_t fx;
    dkv_eng_read_t *r1, *r2, *r3;
    dkv_item_t item;
    int i;

    fx_open(&fx, NULL);
    DKV_ASSERT_OK(put1(&fx, T0, "k", "1", NULL, NULL));
    DKV_ASSERT_OK(dkv_engine_read_begin(&r1, fx.e, T0));
    DKV_ASSERT_OK(put1(&fx, T0, "k", "2", NULL, NULL));
    DKV_ASSERT_OK(dkv_engine_read_begin(&r2, fx.e, T0));
    DKV_ASSERT_OK(dkv_engine_get(&item, r1, "k", 1, NULL, fx.pool));
    DKV_EXPECT_MEM_EQ(item.value, item.value_len, "1", 1);
    DKV_EXPECT_UINT_EQ(item.revision, 1);
    DKV_ASSERT_OK(dkv_engine_get(&item, r2, "k", 1, NULL, fx.pool));
    DKV_EXPECT_MEM_EQ(item.value, item.value_len, "2", 1);
    DKV_EXPECT_UINT_EQ(dkv_engine_read_revision(r2), 2);
    dkv_engine_read_end(r1);
    dkv_engine_read_end(r2);
    dkv_engine_read_end(NULL);
    /* recycled contexts see new commits */
    for (i = 0; i < 100; i++) {
        char v[2] = { (char)('a' + i % 26), 0 };

        DKV_ASSERT_OK(put1(&fx, T0, "k", v, NULL, NULL));
        DKV_ASSERT_OK(dkv_engine_read_begin(&r3, fx.e, T0));
        DKV_ASSERT_OK(dkv_engine_get(&item, r3, "k", 1, NULL, fx.pool));
        DKV_ASSERT_MEM_EQ(item.value, item.value_len, v, 1);
        DKV_ASSERT_UINT_EQ(dkv_engine_read_revision(r3), (uint64_t)i + 3);
        dkv_engine_read_end(r3);
    }
    fx_close(&fx);
}

/* Same calls with the same `now`s give the same store, byte for byte. */
static void
run_script(fx_t *fx)
{
    dkv_eng_write_t *w;
    dkv_put_opts_t o;
    uint64_t lease;

    w = wbegin(fx, T0);
    DKV_ASSERT_OK(dkv_engine_lease_grant(&lease, w, 500));
    memset(&o, 0, sizeof(o));
    o.lease = lease;
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "l", 1, "v", 1, &o));
    o.lease = 0;
    o.ttl_ms = 100;
    DKV_ASSERT_OK(dkv_engine_put(NULL, w, "t", 1, "v", 1, &o));
    DKV_ASSERT_OK(dkv_engine_counter_add(NULL, NULL, w, "c", 1, 3, NULL));
    DKV_ASSERT_OK(dkv_engine_lock_acquire(NULL, w, "c", 1, lease));
    wcommit(w);
    w = wbegin(fx, T0 + 1000);
    DKV_ASSERT_OK(dkv_engine_expire_due(NULL, NULL, w, 0));
    wcommit(w);
}

static void
dump(fx_t *fx, apr_pool_t *pool, char **out, size_t *len)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    MDB_dbi dbis[7];
    char *buf = NULL;
    size_t n = 0, i;

    dbis[0] = fx->e->meta; dbis[1] = fx->e->kv; dbis[2] = fx->e->hist;
    dbis[3] = fx->e->expiry; dbis[4] = fx->e->leases;
    dbis[5] = fx->e->lease_att; dbis[6] = fx->e->locks;
    DKV_ASSERT_TRUE(mdb_txn_begin(fx->e->env, NULL, MDB_RDONLY, &txn) == 0);
    for (i = 0; i < 7; i++) {
        DKV_ASSERT_TRUE(mdb_cursor_open(txn, dbis[i], &c) == 0);
        while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
            char *nb = apr_palloc(pool, n + k.mv_size + v.mv_size + 2);

            if (n) {
                memcpy(nb, buf, n);
            }
            memcpy(nb + n, k.mv_data, k.mv_size);
            n += k.mv_size;
            nb[n++] = '=';
            memcpy(nb + n, v.mv_data, v.mv_size);
            n += v.mv_size;
            nb[n++] = ';';
            buf = nb;
        }
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    *out = buf;
    *len = n;
}

static void
test_determinism(void)
{
    fx_t a, b;
    char *da, *db;
    size_t la, lb;

    fx_open(&a, NULL);
    fx_open(&b, NULL);
    run_script(&a);
    run_script(&b);
    dump(&a, a.pool, &da, &la);
    dump(&b, b.pool, &db, &lb);
    DKV_EXPECT_MEM_EQ(da, la, db, lb);
    DKV_EXPECT_UINT_EQ(count_all(&a, T0 + 1000, NULL), 1);    /* c */
    fx_close(&a);
    fx_close(&b);
}

void
test_engine_register(void)
{
    CU_pSuite s = dkv_test_add_suite("engine", NULL, NULL);

    DKV_TEST_ADD(s, test_put_get);
    DKV_TEST_ADD(s, test_metadata);
    DKV_TEST_ADD(s, test_search_wiring);
    DKV_TEST_ADD(s, test_statuses);
    DKV_TEST_ADD(s, test_ttl);
    DKV_TEST_ADD(s, test_expire_due);
    DKV_TEST_ADD(s, test_leases);
    DKV_TEST_ADD(s, test_locks);
    DKV_TEST_ADD(s, test_counters);
    DKV_TEST_ADD(s, test_txn);
    DKV_TEST_ADD(s, test_history);
    DKV_TEST_ADD(s, test_history_amortized);
    DKV_TEST_ADD(s, test_scan_count);
    DKV_TEST_ADD(s, test_clear);
    DKV_TEST_ADD(s, test_reopen);
    DKV_TEST_ADD(s, test_not_a_store);
    DKV_TEST_ADD(s, test_record_codec);
    DKV_TEST_ADD(s, test_record_damage);
    DKV_TEST_ADD(s, test_damaged_store);
    DKV_TEST_ADD(s, test_full);
    DKV_TEST_ADD(s, test_read_contexts);
    DKV_TEST_ADD(s, test_determinism);
}
