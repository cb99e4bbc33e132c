/*
 * test_api_realtime.c -- suite `api_realtime`: TTL and lease expiry on the
 * real clock, with short lifetimes (hundreds of ms) and bounded polls.
 * The other API suites drive a fake clock, which cannot drive a dkv-node's
 * time: in remote mode (DKV_TEST_MODE=remote) this suite is what covers
 * key expiry, expire/refresh, counters with a TTL, lease expiry with its
 * keys and locks, and the Delete events of expiry over the wire.  It runs
 * in both modes, so both keep the same semantics.
 *
 * Waits are bounded: an expiry must show within EXPIRE_WAIT_MS.
 */
#include "apitest.h"

#define EXPIRE_WAIT_MS 5000

static dkv_client_t *
open_store(void)
{
    return at_open("inproc:", NULL);
}

static dkv_put_opts_t
ttl_opts(int64_t ttl)
{
    dkv_put_opts_t po;

    memset(&po, 0, sizeof po);
    po.ttl_ms = ttl;
    return po;
}

/* Polls until KEY reads as absent, at most EXPIRE_WAIT_MS; 1 when it did. */
static int
wait_gone(dkv_client_t *c, const char *key, apr_pool_t *p)
{
    int64_t deadline = at_mono_ms() + EXPIRE_WAIT_MS;

    while (at_mono_ms() < deadline) {
        if (at_is(c, key, NULL, p)) {
            return 1;
        }
        at_sleep_ms(20);
    }
    return 0;
}

/* A key with a 300 ms TTL: visible with its lifetime, then gone for
 * reads, counts and scans. */
static void
test_rt_key_ttl(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_store();
    dkv_put_opts_t po = ttl_opts(300);
    dkv_range_t rg = at_prefix("rt:");
    dkv_item_t *it = NULL;
    uint64_t n = 99;
    int64_t before = (int64_t)(apr_time_now() / 1000);

    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "rt:short", "v", &po));
    AT_OK(at_put(NULL, c, "rt:long", "v", NULL));
    AT_OK_FATAL(at_get(&it, c, "rt:short", p));
    DKV_EXPECT_TRUE(it->ttl_ms > 0 && it->ttl_ms <= 300);
    DKV_EXPECT_TRUE(it->expires_at >= before + 300);
    DKV_EXPECT_TRUE(it->expires_at <= before + 300 + 5000);
    DKV_EXPECT_TRUE(wait_gone(c, "rt:short", p));
    AT_OK(dkv_count(&n, c, &rg));
    DKV_EXPECT_UINT_EQ(n, 1);
    DKV_EXPECT_TRUE(at_is(c, "rt:long", "v", p));
    dkv_close(c);
    apr_pool_destroy(p);
}

/* dkv_expire sets a lifetime on a key without one; dkv_refresh restarts
 * it (sliding expiry keeps a key alive past its first TTL). */
static void
test_rt_expire_refresh(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_store();
    dkv_put_opts_t po = ttl_opts(800);
    int i;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "rt:e", "v", NULL));
    AT_OK(dkv_expire(NULL, c, "rt:e", 4, 200, 0));
    DKV_EXPECT_TRUE(wait_gone(c, "rt:e", p));
    AT_STATUS(DKV_ENOTFOUND, dkv_expire(NULL, c, "rt:e", 4, 200, 0));

    AT_OK(at_put(NULL, c, "rt:r", "v", &po));
    for (i = 0; i < 4; i++) {           /* 1.6 s: twice its TTL */
        at_sleep_ms(400);
        AT_OK(dkv_refresh(NULL, c, "rt:r", 4, 0));
    }
    DKV_EXPECT_TRUE(at_is(c, "rt:r", "v", p));
    DKV_EXPECT_TRUE(wait_gone(c, "rt:r", p));
    AT_STATUS(DKV_ENOTFOUND, dkv_refresh(NULL, c, "rt:r", 4, 0));
    dkv_close(c);
    apr_pool_destroy(p);
}

/* A counter written with a TTL expires like any key. */
static void
test_rt_counter_ttl(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_store();
    dkv_counter_opts_t co;
    int64_t prev = 0, cur = 0, v = 0;
    int64_t deadline;
    dkv_status_t s = DKV_OK;

    DKV_ASSERT_NOT_NULL(c);
    memset(&co, 0, sizeof co);
    co.ttl_ms = 300;
    AT_OK(dkv_counter_add(&prev, &cur, c, "rt:n", 4, 5, &co));
    DKV_EXPECT_INT_EQ(cur, 5);
    AT_OK(dkv_counter_get(&v, c, "rt:n", 4));
    DKV_EXPECT_INT_EQ(v, 5);
    deadline = at_mono_ms() + EXPIRE_WAIT_MS;
    while (at_mono_ms() < deadline) {
        s = dkv_counter_get(&v, c, "rt:n", 4);
        if (s != DKV_OK) {
            break;
        }
        at_sleep_ms(20);
    }
    DKV_EXPECT_STATUS(s, DKV_ENOTFOUND);
    dkv_close(c);
    apr_pool_destroy(p);
}

/* A 300 ms lease: keepalive keeps it (and its key and lock) alive; once
 * left alone it expires, its key is deleted with a Delete event, its lock
 * is free again and the lease is gone. */
static void
test_rt_lease_expiry(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_store();
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo;
    dkv_watch_t *w = NULL;
    dkv_put_opts_t po;
    dkv_lease_info_t li;
    dkv_lock_t lk, lk2;
    uint64_t l = 0, l2 = 0;
    int64_t rem = -1;
    int i;

    DKV_ASSERT_NOT_NULL(c);
    memset(&wo, 0, sizeof wo);
    wo.prefix = 1;
    AT_OK_FATAL(dkv_watch_start(&w, c, "rt:", 3, &wo, at_events_cb, ev));
    AT_OK_FATAL(dkv_lease_grant(&l, c, 300));
    memset(&po, 0, sizeof po);
    po.lease = l;
    AT_OK(at_put(NULL, c, "rt:owned", "v", &po));
    memset(&lk, 0, sizeof lk);
    AT_OK(dkv_lock_acquire(&lk, c, "rt:lock", 7, l));
    DKV_EXPECT_TRUE(lk.acquired);
    for (i = 0; i < 3; i++) {           /* 600 ms: twice its TTL */
        at_sleep_ms(200);
        AT_OK(dkv_lease_keepalive(&rem, c, l));
        DKV_EXPECT_TRUE(rem > 0 && rem <= 300);
    }
    AT_OK(dkv_lease_info(&li, c, l));
    DKV_EXPECT_UINT_EQ(li.keys, 1);
    DKV_EXPECT_TRUE(at_is(c, "rt:owned", "v", p));

    DKV_EXPECT_TRUE(wait_gone(c, "rt:owned", p));
    DKV_EXPECT_TRUE(at_events_wait_key(ev, DKV_EVENT_DELETE, "rt:owned",
                                       EXPIRE_WAIT_MS) >= 0);
    AT_STATUS(DKV_ENOTFOUND, dkv_lease_keepalive(NULL, c, l));
    AT_STATUS(DKV_ENOTFOUND, dkv_lease_info(&li, c, l));
    AT_OK_FATAL(dkv_lease_grant(&l2, c, 5000));
    memset(&lk2, 0, sizeof lk2);
    AT_OK(dkv_lock_acquire(&lk2, c, "rt:lock", 7, l2));
    DKV_EXPECT_TRUE(lk2.acquired);
    AT_OK(dkv_lease_revoke(NULL, c, l2));
    dkv_watch_stop(w);
    dkv_close(c);
    apr_pool_destroy(p);
}

/* Expiry makes Delete events for watchers of a key with a TTL. */
static void
test_rt_expiry_event(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_store();
    at_events_t *ev = at_events_make(p);
    dkv_watch_t *w = NULL;
    dkv_put_opts_t po = ttl_opts(200);
    long i;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK_FATAL(dkv_watch_start(&w, c, "rt:w", 4, NULL, at_events_cb, ev));
    AT_OK(at_put(NULL, c, "rt:w", "v", &po));
    i = at_events_wait_key(ev, DKV_EVENT_DELETE, "rt:w", EXPIRE_WAIT_MS);
    DKV_EXPECT_TRUE(i >= 1);
    if (i < 1) {
        at_events_dump(ev, "expiry events");
    }
    else {
        AT_EVENT(ev, 0, DKV_EVENT_PUT, "rt:w", "v");
    }
    DKV_EXPECT_TRUE(at_is(c, "rt:w", NULL, p));
    dkv_watch_stop(w);
    dkv_close(c);
    apr_pool_destroy(p);
}

void
test_api_realtime_register(void)
{
    CU_pSuite s = dkv_test_add_suite("api_realtime", NULL, NULL);

    DKV_TEST_ADD(s, test_rt_key_ttl);
    DKV_TEST_ADD(s, test_rt_expire_refresh);
    DKV_TEST_ADD(s, test_rt_counter_ttl);
    DKV_TEST_ADD(s, test_rt_lease_expiry);
    DKV_TEST_ADD(s, test_rt_expiry_event);
}
