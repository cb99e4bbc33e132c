/*
 * test_api_ttl.c -- suite api_ttl: key lifetimes through the public API,
 * driven by a fake clock (dkv_open_opts_t.clock) so nothing sleeps long:
 * expired keys vanish from get, count, scan and the bulk reads; rewrites
 * clear or restart the lifetime; dkv_expire and dkv_refresh; the timer
 * turns expiry into Delete events.
 */
#include <string.h>

#include "apitest.h"

/* A temporary store on the fake clock (reset to AT_T0). */
static dkv_client_t *
open_fake(void)
{
    dkv_open_opts_t oo = at_fake_clock_opts();

    return at_open("inproc:", &oo);
}

static dkv_put_opts_t
ttl_opts(int64_t ttl)
{
    dkv_put_opts_t po;

    memset(&po, 0, sizeof po);
    po.ttl_ms = ttl;
    return po;
}

static void
test_expired_invisible(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    dkv_put_opts_t po = ttl_opts(1000);
    dkv_item_t *it = NULL, *items = NULL;
    dkv_page_t *pg = NULL;
    dkv_key_t keys[2];
    dkv_result_t r;
    uint64_t n;

    AT_FAKE_CLOCK_ONLY(c);
    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "t:short", "gone soon", &po));
    AT_OK(at_put(NULL, c, "t:forever", "stays", NULL));

    at_clock_advance(999);
    AT_OK(at_get(&it, c, "t:short", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->ttl_ms, 1);
    DKV_EXPECT_INT_EQ(it->expires_at, AT_T0 + 1000);

    at_clock_advance(2);
    AT_STATUS(DKV_ENOTFOUND, at_get(&it, c, "t:short", p));
    AT_OK(dkv_count(&n, c, NULL));
    DKV_EXPECT_UINT_EQ(n, 1);
    AT_OK(dkv_scan(&pg, c, NULL, NULL, p));
    DKV_ASSERT_NOT_NULL(pg);
    DKV_EXPECT_UINT_EQ(pg->count, 1);
    if (pg->count >= 1) {
        AT_BYTES(pg->items[0].key, pg->items[0].key_len, "t:forever");
    }
    keys[0] = (dkv_key_t){ "t:short", 7 };
    keys[1] = (dkv_key_t){ "t:forever", 9 };
    AT_OK(dkv_get_many(&items, c, keys, 2, NULL, p));
    DKV_ASSERT_NOT_NULL(items);
    DKV_EXPECT_INT_EQ(items[0].status, DKV_ENOTFOUND);
    DKV_EXPECT_INT_EQ(items[1].status, DKV_OK);

    /* Gone for writes too: delete finds nothing, if_absent succeeds and
     * creates the key anew. */
    AT_STATUS(DKV_ENOTFOUND, at_del(NULL, c, "t:short"));
    AT_STATUS(DKV_ENOTFOUND, dkv_expire(NULL, c, "t:short", 7, 500, 0));
    memset(&po, 0, sizeof po);
    po.if_absent = 1;
    AT_OK(at_put(&r, c, "t:short", "again", &po));
    DKV_EXPECT_INT_EQ(r.is_update, 0);
    DKV_EXPECT_UINT_EQ(r.version, 1);
    CU_ASSERT(at_is(c, "t:short", "again", p));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_rewrite_clears_or_resets(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    dkv_put_opts_t po = ttl_opts(1000);
    dkv_item_t *it = NULL;

    AT_FAKE_CLOCK_ONLY(c);
    DKV_ASSERT_NOT_NULL(c);

    /* Rewritten without a TTL: never expires. */
    AT_OK(at_put(NULL, c, "a", "1", &po));
    AT_OK(at_put(NULL, c, "a", "2", NULL));
    at_clock_advance(5000);
    AT_OK(at_get(&it, c, "a", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, 0);
    DKV_EXPECT_INT_EQ(it->ttl_ms, -1);

    /* Rewritten with a TTL: lifetime restarts from the rewrite. */
    AT_OK(at_put(NULL, c, "b", "1", &po));
    at_clock_advance(800);
    AT_OK(at_put(NULL, c, "b", "2", &po));
    AT_OK(at_get(&it, c, "b", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, at_clock_now() + 1000);
    DKV_EXPECT_INT_EQ(it->ttl_ms, 1000);
    at_clock_advance(500);          /* 1300 after the first write */
    CU_ASSERT(at_is(c, "b", "2", p));
    at_clock_advance(501);
    CU_ASSERT(at_is(c, "b", NULL, p));

    /* A key without TTL given one by a rewrite. */
    AT_OK(at_put(NULL, c, "c", "1", NULL));
    po = ttl_opts(200);
    AT_OK(at_put(NULL, c, "c", "2", &po));
    at_clock_advance(201);
    CU_ASSERT(at_is(c, "c", NULL, p));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_expire(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    dkv_result_t r0, r;
    dkv_item_t *it = NULL;

    AT_FAKE_CLOCK_ONLY(c);
    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(&r0, c, "k", "v", NULL));
    memset(&r, 0, sizeof r);
    AT_OK(dkv_expire(&r, c, "k", 1, 500, 0));
    DKV_EXPECT_UINT_EQ(r.version, 1);
    DKV_EXPECT_TRUE(r.revision > r0.revision);
    AT_OK(at_get(&it, c, "k", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_UINT_EQ(it->version, 1);
    DKV_EXPECT_INT_EQ(it->expires_at, AT_T0 + 500);
    DKV_EXPECT_INT_EQ(it->ttl_ms, 500);
    AT_BYTES(it->value, it->value_len, "v");

    /* TTL 0: no expiry any more. */
    AT_OK(dkv_expire(&r, c, "k", 1, 0, 0));
    at_clock_advance(1000);
    AT_OK(at_get(&it, c, "k", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, 0);
    DKV_EXPECT_INT_EQ(it->ttl_ms, -1);

    AT_OK(dkv_expire(&r, c, "k", 1, 300, 0));
    at_clock_advance(299);
    CU_ASSERT(at_is(c, "k", "v", p));
    at_clock_advance(2);
    CU_ASSERT(at_is(c, "k", NULL, p));

    AT_STATUS(DKV_ENOTFOUND, dkv_expire(&r, c, "nope", 4, 300, 0));
    AT_STATUS(DKV_EINVAL, dkv_expire(&r, c, "", 0, 300, 0));
    AT_STATUS(DKV_EINVAL, dkv_expire(&r, c, "k", 1, -5, 0));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_refresh(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    dkv_put_opts_t po = ttl_opts(1000);
    dkv_result_t r;
    dkv_item_t *it = NULL;

    AT_FAKE_CLOCK_ONLY(c);
    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "s", "v", &po));
    at_clock_advance(700);
    AT_OK(dkv_refresh(&r, c, "s", 1, 0));
    DKV_EXPECT_UINT_EQ(r.version, 1);
    AT_OK(at_get(&it, c, "s", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, at_clock_now() + 1000);
    DKV_EXPECT_INT_EQ(it->ttl_ms, 1000);
    at_clock_advance(700);          /* 1400 after the write */
    CU_ASSERT(at_is(c, "s", "v", p));
    at_clock_advance(301);
    CU_ASSERT(at_is(c, "s", NULL, p));
    AT_STATUS(DKV_ENOTFOUND, dkv_refresh(&r, c, "s", 1, 0));

    /* Refresh uses the TTL last given, by dkv_expire too. */
    AT_OK(at_put(NULL, c, "e", "v", NULL));
    AT_STATUS(DKV_EINVAL, dkv_refresh(&r, c, "e", 1, 0));
    AT_HAS_ERROR();
    AT_OK(dkv_expire(&r, c, "e", 1, 400, 0));
    at_clock_advance(300);
    AT_OK(dkv_refresh(&r, c, "e", 1, 0));
    AT_OK(at_get(&it, c, "e", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, at_clock_now() + 400);

    AT_STATUS(DKV_ENOTFOUND, dkv_refresh(&r, c, "missing", 7, 0));
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_expiry_makes_delete_event(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo;
    dkv_watch_t *w = NULL;
    dkv_put_opts_t po = ttl_opts(100);
    dkv_result_t r;
    long i, j;

    AT_FAKE_CLOCK_ONLY(c);
    DKV_ASSERT_NOT_NULL(c);
    memset(&wo, 0, sizeof wo);
    wo.prefix = 1;
    AT_OK_FATAL(dkv_watch_start(&w, c, "x:", 2, &wo, at_events_cb, ev));
    AT_OK(at_put(&r, c, "x:ttl", "v", &po));
    AT_OK(at_put(NULL, c, "x:keep", "v", NULL));
    /* dkv_expire makes no event. */
    AT_OK(dkv_expire(NULL, c, "x:keep", 6, 0, 0));
    AT_OK(at_put(NULL, c, "x:mark", "v", NULL));
    DKV_EXPECT_TRUE(at_events_wait_key(ev, DKV_EVENT_PUT, "x:mark", 5000)
                    >= 0);
    DKV_EXPECT_UINT_EQ(at_events_count(ev), 3);

    at_clock_advance(150);
    i = at_events_wait_key(ev, DKV_EVENT_DELETE, "x:ttl", 2000);
    DKV_EXPECT_TRUE(i >= 0);
    if (i >= 0) {
        DKV_EXPECT_TRUE(ev->ev[i].value == NULL);
        DKV_EXPECT_UINT_EQ(ev->ev[i].version, 1);
        DKV_EXPECT_TRUE(ev->ev[i].revision > r.revision);
    }
    /* Only one delete, and no event for the unexpired key. */
    at_sleep_ms(50);
    j = at_events_find(ev, DKV_EVENT_DELETE, "x:keep");
    DKV_EXPECT_INT_EQ(j, -1);
    DKV_EXPECT_UINT_EQ(at_events_count(ev), 4);
    dkv_watch_stop(w);
    if (at_events_count(ev) != 4) {
        at_events_dump(ev, "expiry events");
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

/* Registers the api_ttl suite. */
void
test_api_ttl_register(void)
{
    CU_pSuite s = dkv_test_add_suite("api_ttl", NULL, NULL);

    DKV_TEST_ADD(s, test_expired_invisible);
    DKV_TEST_ADD(s, test_rewrite_clears_or_resets);
    DKV_TEST_ADD(s, test_expire);
    DKV_TEST_ADD(s, test_refresh);
    DKV_TEST_ADD(s, test_expiry_makes_delete_event);
}
