/*
 * test_api_coord.c -- suite api_coord: counters, leases and locks through
 * the public API (dkv/coord.h), with a fake clock for lifetimes.
 */
#include <stdint.h>
#include <string.h>

#include "apitest.h"

static dkv_client_t *
open_fake(void)
{
    dkv_open_opts_t oo = at_fake_clock_opts();

    return at_open("inproc:", &oo);
}

/* Waits (at most TIMEOUT_MS of real time) until KEY reads as absent. */
static int
wait_absent(dkv_client_t *c, const char *key, int timeout_ms,
            apr_pool_t *p)
{
    int64_t deadline = at_mono_ms() + timeout_ms;

    for (;;) {
        if (at_is(c, key, NULL, p)) {
            return 1;
        }
        if (at_mono_ms() >= deadline) {
            return 0;
        }
        at_sleep_ms(5);
    }
}

/* ------------------------------------------------------------ counters */

static void
test_counter_basics(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    int64_t prev = 99, cur = 99, v = 99;
    dkv_item_t *it = NULL;

    DKV_ASSERT_NOT_NULL(c);
    AT_STATUS(DKV_ENOTFOUND, dkv_counter_get(&v, c, "n", 1));
    AT_OK(dkv_counter_add(&prev, &cur, c, "n", 1, 5, NULL));
    DKV_EXPECT_INT_EQ(prev, 0);
    DKV_EXPECT_INT_EQ(cur, 5);
    AT_OK(dkv_counter_add(&prev, &cur, c, "n", 1, -7, NULL));
    DKV_EXPECT_INT_EQ(prev, 5);
    DKV_EXPECT_INT_EQ(cur, -2);
    AT_OK(dkv_counter_add(NULL, NULL, c, "n", 1, 0, NULL));
    AT_OK(dkv_counter_get(&v, c, "n", 1));
    DKV_EXPECT_INT_EQ(v, -2);
    /* Visible as decimal text. */
    AT_OK(at_get(&it, c, "n", p));
    DKV_ASSERT_NOT_NULL(it);
    AT_BYTES(it->value, it->value_len, "-2");

    AT_OK(dkv_counter_set(c, "n", 1, 42, NULL));
    AT_OK(dkv_counter_get(&v, c, "n", 1));
    DKV_EXPECT_INT_EQ(v, 42);
    AT_OK(at_get(&it, c, "n", p));
    DKV_ASSERT_NOT_NULL(it);
    AT_BYTES(it->value, it->value_len, "42");
    DKV_EXPECT_TRUE(((const char *)it->value)[2] == '\0');

    /* set creates */
    AT_OK(dkv_counter_set(c, "m", 1, -9, NULL));
    AT_OK(dkv_counter_get(&v, c, "m", 1));
    DKV_EXPECT_INT_EQ(v, -9);

    /* A key written as decimal text is a counter. */
    AT_OK(at_put(NULL, c, "t", "7", NULL));
    AT_OK(dkv_counter_add(&prev, &cur, c, "t", 1, 1, NULL));
    DKV_EXPECT_INT_EQ(prev, 7);
    DKV_EXPECT_INT_EQ(cur, 8);

    /* A non-numeric value is not a counter, and stays as it is. */
    AT_OK(at_put(NULL, c, "s", "hello", NULL));
    AT_STATUS(DKV_EINVAL, dkv_counter_add(&prev, &cur, c, "s", 1, 1, NULL));
    AT_HAS_ERROR();
    AT_STATUS(DKV_EINVAL, dkv_counter_get(&v, c, "s", 1));
    CU_ASSERT(at_is(c, "s", "hello", p));
    {
        static const char *const bad[] = {
            "4.5", "", "12abc", "99999999999999999999", "0x10", "1e3"
        };
        size_t i;

        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            AT_OK(at_put(NULL, c, "bad", bad[i], NULL));
            AT_STATUS(DKV_EINVAL, dkv_counter_add(&prev, &cur, c, "bad", 3,
                                                  1, NULL));
            AT_STATUS(DKV_EINVAL, dkv_counter_get(&v, c, "bad", 3));
            CU_ASSERT(at_is(c, "bad", bad[i], p));
        }
    }

    /* Bad input. */
    AT_STATUS(DKV_EINVAL, dkv_counter_add(&prev, &cur, NULL, "n", 1, 1,
                                          NULL));
    AT_STATUS(DKV_EINVAL, dkv_counter_add(&prev, &cur, c, "", 0, 1, NULL));
    AT_STATUS(DKV_EINVAL, dkv_counter_get(NULL, c, "n", 1));
    AT_STATUS(DKV_EINVAL, dkv_counter_set(c, NULL, 1, 1, NULL));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_counter_bounds(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    dkv_counter_opts_t co;
    int64_t prev, cur, v;
    uint64_t rev0, rev1;

    DKV_ASSERT_NOT_NULL(c);
    memset(&co, 0, sizeof co);
    co.has_max = 1;
    co.max = 10;
    AT_OK(dkv_counter_add(&prev, &cur, c, "c", 1, 10, &co));
    DKV_EXPECT_INT_EQ(cur, 10);
    AT_OK(dkv_revision(&rev0, c));
    AT_STATUS(DKV_ERANGE, dkv_counter_add(&prev, &cur, c, "c", 1, 1, &co));
    AT_HAS_ERROR();
    AT_OK(dkv_counter_get(&v, c, "c", 1));
    DKV_EXPECT_INT_EQ(v, 10);
    AT_OK(dkv_revision(&rev1, c));
    DKV_EXPECT_UINT_EQ(rev1, rev0);

    memset(&co, 0, sizeof co);
    co.has_min = 1;
    co.min = 0;
    AT_OK(dkv_counter_add(&prev, &cur, c, "c", 1, -10, &co));
    DKV_EXPECT_INT_EQ(cur, 0);
    AT_STATUS(DKV_ERANGE, dkv_counter_add(&prev, &cur, c, "c", 1, -1, &co));
    AT_OK(dkv_counter_get(&v, c, "c", 1));
    DKV_EXPECT_INT_EQ(v, 0);
    /* Creation is bounded too: 0 + (-1) < min. */
    AT_STATUS(DKV_ERANGE, dkv_counter_add(&prev, &cur, c, "new", 3, -1,
                                          &co));
    AT_STATUS(DKV_ENOTFOUND, dkv_counter_get(&v, c, "new", 3));

    /* set checks its bounds against the value. */
    co.has_max = 1;
    co.max = 100;
    AT_STATUS(DKV_ERANGE, dkv_counter_set(c, "c", 1, 101, &co));
    AT_STATUS(DKV_ERANGE, dkv_counter_set(c, "c", 1, -1, &co));
    AT_OK(dkv_counter_get(&v, c, "c", 1));
    DKV_EXPECT_INT_EQ(v, 0);
    AT_OK(dkv_counter_set(c, "c", 1, 100, &co));

    /* int64 overflow, both ways. */
    AT_OK(dkv_counter_set(c, "big", 3, INT64_MAX, NULL));
    AT_STATUS(DKV_ERANGE, dkv_counter_add(&prev, &cur, c, "big", 3, 1,
                                          NULL));
    AT_OK(dkv_counter_get(&v, c, "big", 3));
    DKV_EXPECT_INT_EQ(v, INT64_MAX);
    AT_OK(dkv_counter_add(&prev, &cur, c, "big", 3, -1, NULL));
    DKV_EXPECT_INT_EQ(cur, INT64_MAX - 1);
    AT_OK(dkv_counter_set(c, "small", 5, INT64_MIN, NULL));
    AT_STATUS(DKV_ERANGE, dkv_counter_add(&prev, &cur, c, "small", 5, -1,
                                          NULL));
    AT_STATUS(DKV_ERANGE, dkv_counter_add(&prev, &cur, c, "small", 5,
                                          INT64_MIN, NULL));
    AT_OK(dkv_counter_get(&v, c, "small", 5));
    DKV_EXPECT_INT_EQ(v, INT64_MIN);
    {
        dkv_item_t *it = NULL;

        AT_OK(at_get(&it, c, "small", p));
        DKV_ASSERT_NOT_NULL(it);
        AT_BYTES(it->value, it->value_len, "-9223372036854775808");
    }

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_counter_ttl(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    dkv_counter_opts_t co;
    dkv_item_t *it = NULL;
    int64_t prev, cur, v;

    AT_FAKE_CLOCK_ONLY(c);
    DKV_ASSERT_NOT_NULL(c);
    memset(&co, 0, sizeof co);
    co.ttl_ms = 1000;
    AT_OK(dkv_counter_add(&prev, &cur, c, "rate", 4, 1, &co));
    AT_OK(at_get(&it, c, "rate", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, AT_T0 + 1000);

    /* An existing counter keeps its expiry (fixed window). */
    at_clock_advance(500);
    AT_OK(dkv_counter_add(&prev, &cur, c, "rate", 4, 1, &co));
    DKV_EXPECT_INT_EQ(cur, 2);
    AT_OK(at_get(&it, c, "rate", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, AT_T0 + 1000);
    AT_OK(dkv_counter_add(&prev, &cur, c, "rate", 4, 1, NULL));
    AT_OK(at_get(&it, c, "rate", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, AT_T0 + 1000);

    /* The window ends: the next add starts again from 0. */
    at_clock_advance(501);
    AT_STATUS(DKV_ENOTFOUND, dkv_counter_get(&v, c, "rate", 4));
    AT_OK(dkv_counter_add(&prev, &cur, c, "rate", 4, 1, &co));
    DKV_EXPECT_INT_EQ(prev, 0);
    DKV_EXPECT_INT_EQ(cur, 1);
    AT_OK(at_get(&it, c, "rate", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, at_clock_now() + 1000);

    /* dkv_counter_set applies its TTL. */
    co.ttl_ms = 200;
    AT_OK(dkv_counter_set(c, "rate", 4, 50, &co));
    AT_OK(at_get(&it, c, "rate", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, at_clock_now() + 200);
    at_clock_advance(201);
    AT_STATUS(DKV_ENOTFOUND, dkv_counter_get(&v, c, "rate", 4));

    dkv_close(c);
    apr_pool_destroy(p);
}

/* -------------------------------------------------------------- leases */

static void
test_lease_grant(void)
{
    dkv_client_t *c = open_fake();
    uint64_t a = 0, b = 0, x = 7;
    dkv_lease_info_t li;

    DKV_ASSERT_NOT_NULL(c);
    AT_STATUS(DKV_EINVAL, dkv_lease_grant(&x, c, DKV_MIN_LEASE_TTL - 1));
    AT_HAS_ERROR();
    AT_STATUS(DKV_EINVAL, dkv_lease_grant(&x, c, 0));
    AT_STATUS(DKV_EINVAL, dkv_lease_grant(&x, c, -1000));
    AT_STATUS(DKV_EINVAL, dkv_lease_grant(&x, c, DKV_MAX_LEASE_TTL + 1));
    AT_STATUS(DKV_EINVAL, dkv_lease_grant(NULL, c, 1000));
    AT_STATUS(DKV_EINVAL, dkv_lease_grant(&x, NULL, 1000));
    AT_OK(dkv_lease_grant(&a, c, DKV_MIN_LEASE_TTL));
    AT_OK(dkv_lease_grant(&b, c, DKV_MAX_LEASE_TTL));
    DKV_EXPECT_TRUE(a != 0);
    DKV_EXPECT_TRUE(b != 0);
    DKV_EXPECT_TRUE(a != b);

    memset(&li, 0, sizeof li);
    AT_OK(dkv_lease_info(&li, c, b));
    DKV_EXPECT_UINT_EQ(li.id, b);
    DKV_EXPECT_INT_EQ(li.ttl_ms, DKV_MAX_LEASE_TTL);
    if (!dkv_test_remote_mode()) {
        DKV_EXPECT_INT_EQ(li.remaining_ms, DKV_MAX_LEASE_TTL);
        DKV_EXPECT_INT_EQ(li.expires_at, AT_T0 + DKV_MAX_LEASE_TTL);
    }
    else {                          /* a node's real clock runs */
        DKV_EXPECT_TRUE(li.remaining_ms > DKV_MAX_LEASE_TTL - 60000
                        && li.remaining_ms <= DKV_MAX_LEASE_TTL);
        DKV_EXPECT_TRUE(li.expires_at > (int64_t)(apr_time_now() / 1000));
    }
    DKV_EXPECT_UINT_EQ(li.keys, 0);
    DKV_EXPECT_UINT_EQ(li.locks, 0);

    AT_STATUS(DKV_ENOTFOUND, dkv_lease_info(&li, c, a + b + 1000));
    AT_STATUS(DKV_ENOTFOUND, dkv_lease_keepalive(NULL, c, a + b + 1000));
    AT_STATUS(DKV_ENOTFOUND, dkv_lease_revoke(NULL, c, a + b + 1000));
    AT_STATUS(DKV_ENOTFOUND, dkv_lease_revoke(NULL, c, 0));
    dkv_close(c);
}

static void
test_lease_keepalive_info_revoke(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    dkv_lease_info_t li;
    dkv_put_opts_t po;
    dkv_lock_t lk;
    uint64_t l = 0, deleted = 99;
    int64_t rem = 0;

    AT_FAKE_CLOCK_ONLY(c);
    DKV_ASSERT_NOT_NULL(c);
    AT_OK(dkv_lease_grant(&l, c, 1000));
    memset(&po, 0, sizeof po);
    po.lease = l;
    AT_OK(at_put(NULL, c, "w:1", "a", &po));
    AT_OK(at_put(NULL, c, "w:2", "b", &po));
    AT_OK(at_put(NULL, c, "w:free", "c", NULL));
    AT_OK(dkv_lock_acquire(&lk, c, "job", 3, l));

    at_clock_advance(400);
    AT_OK(dkv_lease_info(&li, c, l));
    DKV_EXPECT_UINT_EQ(li.keys, 2);
    DKV_EXPECT_UINT_EQ(li.locks, 1);
    DKV_EXPECT_INT_EQ(li.ttl_ms, 1000);
    DKV_EXPECT_INT_EQ(li.remaining_ms, 600);
    DKV_EXPECT_INT_EQ(li.expires_at, AT_T0 + 1000);

    /* keepalive restarts the full TTL */
    AT_OK(dkv_lease_keepalive(&rem, c, l));
    DKV_EXPECT_INT_EQ(rem, 1000);
    AT_OK(dkv_lease_info(&li, c, l));
    DKV_EXPECT_INT_EQ(li.expires_at, at_clock_now() + 1000);
    at_clock_advance(900);          /* 1300 after the grant: alive */
    CU_ASSERT(at_is(c, "w:1", "a", p));
    AT_OK(dkv_lease_keepalive(NULL, c, l));

    /* A key rebound elsewhere leaves the lease. */
    AT_OK(at_put(NULL, c, "w:2", "b2", NULL));
    AT_OK(dkv_lease_info(&li, c, l));
    DKV_EXPECT_UINT_EQ(li.keys, 1);

    /* revoke deletes the bound keys and ends the locks */
    AT_OK(dkv_lease_revoke(&deleted, c, l));
    DKV_EXPECT_UINT_EQ(deleted, 1);
    CU_ASSERT(at_is(c, "w:1", NULL, p));
    CU_ASSERT(at_is(c, "w:2", "b2", p));
    CU_ASSERT(at_is(c, "w:free", "c", p));
    AT_STATUS(DKV_ENOTFOUND, dkv_lease_info(&li, c, l));
    AT_STATUS(DKV_ENOTFOUND, dkv_lease_keepalive(&rem, c, l));
    AT_STATUS(DKV_ENOTFOUND, dkv_lease_revoke(NULL, c, l));
    AT_STATUS(DKV_ENOTFOUND, at_put(NULL, c, "w:3", "x", &po));
    CU_ASSERT(at_is(c, "w:3", NULL, p));
    /* its lock is gone: release finds no lock */
    AT_STATUS(DKV_ENOTFOUND, dkv_lock_release(c, "job", 3, lk.token));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_lease_expiry(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    dkv_put_opts_t po;
    dkv_lock_t lk, lk2;
    dkv_lease_info_t li;
    uint64_t l = 0, l2 = 0;
    int64_t rem;

    AT_FAKE_CLOCK_ONLY(c);
    DKV_ASSERT_NOT_NULL(c);
    AT_OK(dkv_lease_grant(&l, c, 1000));
    AT_OK(dkv_lease_grant(&l2, c, 60000));
    memset(&po, 0, sizeof po);
    po.lease = l;
    AT_OK(at_put(NULL, c, "e:1", "a", &po));
    AT_OK(at_put(NULL, c, "e:2", "b", &po));
    AT_OK(dkv_lock_acquire(&lk, c, "e:lock", 6, l));
    AT_STATUS(DKV_ELOCKED, dkv_lock_acquire(&lk2, c, "e:lock", 6, l2));

    at_clock_advance(999);
    CU_ASSERT(at_is(c, "e:1", "a", p));
    at_clock_advance(2);
    /* The lease has expired: it cannot be kept alive. */
    AT_STATUS(DKV_ENOTFOUND, dkv_lease_keepalive(&rem, c, l));
    DKV_EXPECT_TRUE(wait_absent(c, "e:1", 2000, p));
    DKV_EXPECT_TRUE(wait_absent(c, "e:2", 2000, p));
    AT_STATUS(DKV_ENOTFOUND, dkv_lease_info(&li, c, l));
    AT_STATUS(DKV_ENOTFOUND, dkv_lock_acquire(&lk2, c, "e:other", 7, l));
    memset(&po, 0, sizeof po);
    po.lease = l;
    AT_STATUS(DKV_ENOTFOUND, at_put(NULL, c, "e:3", "x", &po));
    /* Its lock ended: another lease gets it, with a larger token. */
    {
        int64_t deadline = at_mono_ms() + 2000;
        dkv_status_t s;

        do {
            s = dkv_lock_acquire(&lk2, c, "e:lock", 6, l2);
            if (s != DKV_OK) {
                at_sleep_ms(5);
            }
        } while (s != DKV_OK && at_mono_ms() < deadline);
        AT_OK(s);
        DKV_EXPECT_TRUE(lk2.token > lk.token);
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

/* --------------------------------------------------------------- locks */

static void
test_lock_basics(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    dkv_lock_t a, b, again;
    dkv_put_opts_t po;
    dkv_delete_opts_t dopt;
    dkv_get_opts_t go;
    dkv_item_t *it = NULL;
    dkv_counter_opts_t co;
    uint64_t l1 = 0, l2 = 0, n;
    int64_t prev, cur;
    dkv_range_t rg;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK(dkv_lease_grant(&l1, c, 60000));
    AT_OK(dkv_lease_grant(&l2, c, 60000));
    AT_OK(at_put(NULL, c, "lk", "v0", NULL));

    memset(&a, 0, sizeof a);
    AT_OK(dkv_lock_acquire(&a, c, "lk", 2, l1));
    DKV_EXPECT_INT_EQ(a.acquired, 1);
    DKV_EXPECT_TRUE(a.token != 0);
    DKV_EXPECT_UINT_EQ(a.lease, l1);

    memset(&b, 0xff, sizeof b);
    AT_STATUS(DKV_ELOCKED, dkv_lock_acquire(&b, c, "lk", 2, l2));
    AT_HAS_ERROR();
    DKV_EXPECT_INT_EQ(b.acquired, 0);
    DKV_EXPECT_UINT_EQ(b.lease, l1);

    AT_OK(dkv_lock_acquire(&again, c, "lk", 2, l1));
    DKV_EXPECT_INT_EQ(again.acquired, 1);
    DKV_EXPECT_UINT_EQ(again.token, a.token);

    /* Writes without the token are refused. */
    AT_STATUS(DKV_ELOCKED, at_put(NULL, c, "lk", "x", NULL));
    AT_STATUS(DKV_ELOCKED, at_del(NULL, c, "lk"));
    AT_STATUS(DKV_ELOCKED, dkv_expire(NULL, c, "lk", 2, 1000, 0));
    /* A locked counter changes only with the token (opts->lock). */
    AT_OK(dkv_counter_set(c, "ctr", 3, 5, NULL));
    AT_OK(dkv_lock_acquire(&again, c, "ctr", 3, l1));
    AT_STATUS(DKV_ELOCKED, dkv_counter_add(&prev, &cur, c, "ctr", 3, 1,
                                           NULL));
    AT_STATUS(DKV_ELOCKED, dkv_counter_set(c, "ctr", 3, 9, NULL));
    memset(&co, 0, sizeof co);
    co.lock = again.token + 1;
    AT_STATUS(DKV_ELOCKED, dkv_counter_add(&prev, &cur, c, "ctr", 3, 1,
                                           &co));
    AT_OK(dkv_counter_get(&prev, c, "ctr", 3));
    DKV_EXPECT_INT_EQ(prev, 5);
    co.lock = again.token;
    AT_OK(dkv_counter_add(&prev, &cur, c, "ctr", 3, 1, &co));
    DKV_EXPECT_INT_EQ(cur, 6);
    AT_OK(dkv_counter_set(c, "ctr", 3, 10, &co));
    AT_OK(dkv_counter_get(&prev, c, "ctr", 3));
    DKV_EXPECT_INT_EQ(prev, 10);
    AT_OK(dkv_lock_release(c, "ctr", 3, again.token));
    /* The token of an ended lock is refused; without one it works. */
    AT_STATUS(DKV_ELOCKED, dkv_counter_add(&prev, &cur, c, "ctr", 3, 1,
                                           &co));
    AT_OK(dkv_counter_add(&prev, &cur, c, "ctr", 3, 1, NULL));
    DKV_EXPECT_INT_EQ(cur, 11);
    memset(&po, 0, sizeof po);
    po.lock = a.token + 1000;
    AT_STATUS(DKV_ELOCKED, at_put(NULL, c, "lk", "x", &po));
    CU_ASSERT(at_is(c, "lk", "v0", p));

    /* Reads need no token. */
    CU_ASSERT(at_is(c, "lk", "v0", p));

    /* With the token they pass. */
    po.lock = a.token;
    AT_OK(at_put(NULL, c, "lk", "v1", &po));
    CU_ASSERT(at_is(c, "lk", "v1", p));
    AT_OK(dkv_expire(NULL, c, "lk", 2, 0, a.token));
    AT_OK(dkv_expire(NULL, c, "lk", 2, 5000, a.token));
    AT_OK(dkv_refresh(NULL, c, "lk", 2, a.token));
    AT_STATUS(DKV_ELOCKED, dkv_refresh(NULL, c, "lk", 2, 0));
    memset(&go, 0, sizeof go);
    go.lock = a.token;
    AT_OK(dkv_get(&it, c, "lk", 2, &go, p));

    /* clear leaves the locked key. */
    rg = at_prefix("lk");
    AT_OK(dkv_clear(&n, c, &rg));
    DKV_EXPECT_UINT_EQ(n, 0);
    CU_ASSERT(at_is(c, "lk", "v1", p));

    memset(&dopt, 0, sizeof dopt);
    dopt.lock = a.token;
    AT_OK(dkv_delete(NULL, c, "lk", 2, &dopt));
    CU_ASSERT(at_is(c, "lk", NULL, p));
    /* the lock outlives its key */
    AT_STATUS(DKV_ELOCKED, at_put(NULL, c, "lk", "x", NULL));
    AT_OK(at_put(NULL, c, "lk", "v2", &po));

    /* release */
    AT_STATUS(DKV_ELOCKED, dkv_lock_release(c, "lk", 2, a.token + 1));
    AT_OK(dkv_lock_release(c, "lk", 2, a.token));
    AT_STATUS(DKV_ENOTFOUND, dkv_lock_release(c, "lk", 2, a.token));

    /* A stale token: reads and writes with it are refused. */
    AT_STATUS(DKV_ELOCKED, dkv_get(&it, c, "lk", 2, &go, p));
    AT_STATUS(DKV_ELOCKED, at_put(NULL, c, "lk", "stale", &po));
    CU_ASSERT(at_is(c, "lk", "v2", p));
    AT_STATUS(DKV_ELOCKED, dkv_delete(NULL, c, "lk", 2, &dopt));
    /* Without a token, the unlocked key is writable again. */
    AT_OK(at_put(NULL, c, "lk", "free", NULL));
    AT_OK(dkv_lock_acquire(&b, c, "lk", 2, l2));
    DKV_EXPECT_TRUE(b.token > a.token);
    DKV_EXPECT_UINT_EQ(b.lease, l2);

    /* Unknown lease, bad input, a key that does not exist. */
    AT_STATUS(DKV_ENOTFOUND, dkv_lock_acquire(&a, c, "other", 5,
                                              l1 + l2 + 100));
    AT_STATUS(DKV_EINVAL, dkv_lock_acquire(NULL, c, "other", 5, l1));
    AT_STATUS(DKV_EINVAL, dkv_lock_acquire(&a, c, "", 0, l1));
    AT_STATUS(DKV_EINVAL, dkv_lock_acquire(&a, NULL, "other", 5, l1));
    AT_OK(dkv_lock_acquire(&a, c, "nokey", 5, l1));
    CU_ASSERT(at_is(c, "nokey", NULL, p));
    AT_STATUS(DKV_ELOCKED, at_put(NULL, c, "nokey", "x", NULL));
    AT_STATUS(DKV_ENOTFOUND, dkv_lock_release(c, "never", 5, 1));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_lock_fencing(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    dkv_lock_t lk;
    dkv_put_opts_t po;
    uint64_t leases[4], last = 0, first = 0;
    int i;

    DKV_ASSERT_NOT_NULL(c);
    for (i = 0; i < 4; i++) {
        AT_OK(dkv_lease_grant(&leases[i], c, 60000));
    }
    /* Tokens grow with each acquisition, whatever ended the last. */
    for (i = 0; i < 4; i++) {
        memset(&lk, 0, sizeof lk);
        AT_OK(dkv_lock_acquire(&lk, c, "f", 1, leases[i]));
        DKV_EXPECT_TRUE(lk.token > last);
        if (i == 0) {
            first = lk.token;
        }
        last = lk.token;
        if (i % 2 == 0) {
            AT_OK(dkv_lock_release(c, "f", 1, lk.token));
        } else {
            AT_OK(dkv_lease_revoke(NULL, c, leases[i]));
        }
    }
    /* A write carrying an ended lock's token is refused. */
    memset(&po, 0, sizeof po);
    po.lock = last;
    AT_STATUS(DKV_ELOCKED, at_put(NULL, c, "f", "x", &po));
    po.lock = first;
    AT_STATUS(DKV_ELOCKED, at_put(NULL, c, "f", "x", &po));
    CU_ASSERT(at_is(c, "f", NULL, p));
    dkv_close(c);
    apr_pool_destroy(p);
}

/* --------------------------------------------------------- concurrency */

#define CC_THREADS 4
#define CC_ADDS 250

typedef struct cc_arg {
    dkv_client_t *c;
    uint64_t lease;
    volatile apr_uint32_t *go;
    int failures;
    int acquired;
} cc_arg_t;

static void *APR_THREAD_FUNC
cc_worker(apr_thread_t *t, void *data)
{
    cc_arg_t *a = data;
    dkv_lock_t lk;
    int i;

    apr_time_t until = apr_time_now() + apr_time_from_sec(10);

    (void)t;
    /* Start together; bounded, should the test fail before the start. */
    while (!apr_atomic_read32(a->go) && apr_time_now() < until) {
        apr_thread_yield();
    }
    memset(&lk, 0, sizeof lk);
    if (dkv_lock_acquire(&lk, a->c, "mutex", 5, a->lease) == DKV_OK) {
        a->acquired = lk.acquired;
    }
    for (i = 0; i < CC_ADDS; i++) {
        if (dkv_counter_add(NULL, NULL, a->c, "cc", 2, 1, NULL) != DKV_OK) {
            a->failures++;
        }
    }
    return NULL;
}

static void
test_concurrent_clients(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_fake();
    apr_thread_t *th[CC_THREADS];
    static cc_arg_t args[CC_THREADS];  /* static too, for the same reason */
    static volatile apr_uint32_t go;  /* static: outlives an early return */
    int i, acquired = 0, failures = 0;
    int64_t v = 0;

    DKV_ASSERT_NOT_NULL(c);
    apr_atomic_set32(&go, 0);
    for (i = 0; i < CC_THREADS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].c = c;
        args[i].go = &go;
        AT_OK(dkv_lease_grant(&args[i].lease, c, 60000));
        DKV_ASSERT_INT_EQ(apr_thread_create(&th[i], NULL, cc_worker,
                                            &args[i], p), APR_SUCCESS);
    }
    apr_atomic_set32(&go, 1);
    for (i = 0; i < CC_THREADS; i++) {
        apr_status_t rv;

        apr_thread_join(&rv, th[i]);
        acquired += args[i].acquired;
        failures += args[i].failures;
    }
    DKV_EXPECT_INT_EQ(failures, 0);
    DKV_EXPECT_INT_EQ(acquired, 1);
    AT_OK(dkv_counter_get(&v, c, "cc", 2));
    DKV_EXPECT_INT_EQ(v, CC_THREADS * CC_ADDS);
    dkv_close(c);
    apr_pool_destroy(p);
}

/* Registers the api_coord suite. */
void
test_api_coord_register(void)
{
    CU_pSuite s = dkv_test_add_suite("api_coord", NULL, NULL);

    DKV_TEST_ADD(s, test_counter_basics);
    DKV_TEST_ADD(s, test_counter_bounds);
    DKV_TEST_ADD(s, test_counter_ttl);
    DKV_TEST_ADD(s, test_lease_grant);
    DKV_TEST_ADD(s, test_lease_keepalive_info_revoke);
    DKV_TEST_ADD(s, test_lease_expiry);
    DKV_TEST_ADD(s, test_lock_basics);
    DKV_TEST_ADD(s, test_lock_fencing);
    DKV_TEST_ADD(s, test_concurrent_clients);
}
