/*
 * test_api_txn.c -- suite api_txn: optimistic transactions through the
 * public API (dkv/txn.h): atomic commit, rollback, read-your-writes,
 * conflicts on changed, created and vanished reads, blind writes, staged
 * conditions and locks failing at commit, and what watchers see.
 */
#include <string.h>

#include "apitest.h"

static void
test_commit_and_rollback(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    dkv_txn_t *t = NULL;
    uint64_t rev = 0, cur = 0, before = 0;
    dkv_item_t *it = NULL;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "c", "old", NULL));
    AT_OK(dkv_revision(&before, c));

    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_put(t, "a", 1, "A", 1, NULL));
    AT_OK(dkv_txn_put(t, "b", 1, "B", 1, NULL));
    AT_OK(dkv_txn_delete(t, "c", 1));
    /* Staged writes are invisible outside before the commit. */
    CU_ASSERT(at_is(c, "a", NULL, p));
    CU_ASSERT(at_is(c, "c", "old", p));
    AT_OK(dkv_txn_commit(&rev, t));
    CU_ASSERT(at_is(c, "a", "A", p));
    CU_ASSERT(at_is(c, "b", "B", p));
    CU_ASSERT(at_is(c, "c", NULL, p));
    AT_OK(dkv_revision(&cur, c));
    DKV_EXPECT_UINT_EQ(rev, cur);
    DKV_EXPECT_UINT_EQ(cur, before + 3);
    AT_OK(at_get(&it, c, "a", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_UINT_EQ(it->version, 1);

    /* Rollback discards. */
    AT_OK_FATAL(dkv_txn_begin(&t, c, NULL));
    AT_OK(dkv_txn_put(t, "a", 1, "A2", 2, NULL));
    AT_OK(dkv_txn_put(t, "z", 1, "Z", 1, NULL));
    AT_OK(dkv_txn_delete(t, "b", 1));
    dkv_txn_rollback(t);
    CU_ASSERT(at_is(c, "a", "A", p));
    CU_ASSERT(at_is(c, "z", NULL, p));
    CU_ASSERT(at_is(c, "b", "B", p));
    AT_OK(dkv_revision(&rev, c));
    DKV_EXPECT_UINT_EQ(rev, cur);

    /* An empty transaction commits. */
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_commit(NULL, t));
    dkv_txn_rollback(NULL);

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_read_your_writes(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    dkv_txn_t *t = NULL;
    dkv_item_t *it = NULL;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "x", "outside", NULL));
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_get(&it, t, "x", 1, p));
    DKV_ASSERT_NOT_NULL(it);
    AT_BYTES(it->value, it->value_len, "outside");
    AT_OK(dkv_txn_put(t, "x", 1, "inside", 6, NULL));
    AT_OK(dkv_txn_get(&it, t, "x", 1, p));
    DKV_ASSERT_NOT_NULL(it);
    AT_BYTES(it->value, it->value_len, "inside");
    AT_OK(dkv_txn_put(t, "new", 3, "n", 1, NULL));
    AT_OK(dkv_txn_get(&it, t, "new", 3, p));
    DKV_ASSERT_NOT_NULL(it);
    AT_BYTES(it->value, it->value_len, "n");
    AT_OK(dkv_txn_delete(t, "x", 1));
    AT_STATUS(DKV_ENOTFOUND, dkv_txn_get(&it, t, "x", 1, p));
    AT_STATUS(DKV_ENOTFOUND, dkv_txn_get(&it, t, "missing", 7, p));
    /* Outside, nothing changed yet. */
    CU_ASSERT(at_is(c, "x", "outside", p));
    AT_OK(dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "x", NULL, p));
    CU_ASSERT(at_is(c, "new", "n", p));
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_conflicts(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    dkv_txn_t *t = NULL;
    dkv_item_t *it = NULL;
    uint64_t rev0, rev1;

    DKV_ASSERT_NOT_NULL(c);

    /* A read key changed outside. */
    AT_OK(at_put(NULL, c, "k", "1", NULL));
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_get(&it, t, "k", 1, p));
    AT_OK(at_put(NULL, c, "k", "2", NULL));
    AT_OK(dkv_txn_put(t, "k", 1, "3", 1, NULL));
    AT_OK(dkv_txn_put(t, "other", 5, "x", 1, NULL));
    AT_OK(dkv_revision(&rev0, c));
    AT_STATUS(DKV_ECONFLICT, dkv_txn_commit(NULL, t));
    AT_HAS_ERROR();
    CU_ASSERT(at_is(c, "k", "2", p));
    CU_ASSERT(at_is(c, "other", NULL, p));
    AT_OK(dkv_revision(&rev1, c));
    DKV_EXPECT_UINT_EQ(rev1, rev0);

    /* A key read as absent was created. */
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_STATUS(DKV_ENOTFOUND, dkv_txn_get(&it, t, "fresh", 5, p));
    AT_OK(at_put(NULL, c, "fresh", "outside", NULL));
    AT_OK(dkv_txn_put(t, "fresh", 5, "txn", 3, NULL));
    AT_STATUS(DKV_ECONFLICT, dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "fresh", "outside", p));

    /* A read key vanished. */
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_get(&it, t, "fresh", 5, p));
    AT_OK(at_del(NULL, c, "fresh"));
    AT_OK(dkv_txn_put(t, "side", 4, "x", 1, NULL));
    AT_STATUS(DKV_ECONFLICT, dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "side", NULL, p));

    /* Rewritten with the same value: still a change. */
    AT_OK(at_put(NULL, c, "same", "v", NULL));
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_get(&it, t, "same", 4, p));
    AT_OK(at_put(NULL, c, "same", "v", NULL));
    AT_OK(dkv_txn_put(t, "side", 4, "x", 1, NULL));
    AT_STATUS(DKV_ECONFLICT, dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "side", NULL, p));

    /* Blind writes are not checked. */
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_put(t, "k", 1, "blind", 5, NULL));
    AT_OK(at_put(NULL, c, "k", "meanwhile", NULL));
    AT_OK(dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "k", "blind", p));

    /* A read key unchanged (another key changed) commits. */
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_get(&it, t, "k", 1, p));
    AT_OK(at_put(NULL, c, "unrelated", "u", NULL));
    AT_OK(dkv_txn_put(t, "k", 1, "ok", 2, NULL));
    AT_OK(dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "k", "ok", p));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_staged_conditions(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    dkv_txn_t *t = NULL;
    dkv_put_opts_t po;
    dkv_result_t r;
    uint64_t lease = 0;
    dkv_lock_t lk;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(&r, c, "exists", "e", NULL));

    /* if_absent on an existing key: nothing applied. */
    memset(&po, 0, sizeof po);
    po.if_absent = 1;
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_put(t, "a", 1, "1", 1, NULL));
    AT_OK(dkv_txn_put(t, "exists", 6, "x", 1, &po));
    AT_STATUS(DKV_ECONFLICT, dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "a", NULL, p));
    CU_ASSERT(at_is(c, "exists", "e", p));

    /* if_version mismatch. */
    memset(&po, 0, sizeof po);
    po.if_version = r.version + 1;
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_put(t, "a", 1, "1", 1, NULL));
    AT_OK(dkv_txn_put(t, "exists", 6, "x", 1, &po));
    AT_STATUS(DKV_ECONFLICT, dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "a", NULL, p));
    /* if_version matching. */
    po.if_version = r.version;
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_put(t, "a", 1, "1", 1, NULL));
    AT_OK(dkv_txn_put(t, "exists", 6, "x", 1, &po));
    AT_OK(dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "a", "1", p));
    CU_ASSERT(at_is(c, "exists", "x", p));

    /* A locked key. */
    AT_OK(dkv_lease_grant(&lease, c, 60000));
    AT_OK(dkv_lock_acquire(&lk, c, "locked", 6, lease));
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_put(t, "b", 1, "1", 1, NULL));
    AT_OK(dkv_txn_put(t, "locked", 6, "x", 1, NULL));
    AT_STATUS(DKV_ELOCKED, dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "b", NULL, p));
    CU_ASSERT(at_is(c, "locked", NULL, p));
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_put(t, "b", 1, "1", 1, NULL));
    AT_OK(dkv_txn_delete(t, "locked", 6));
    AT_STATUS(DKV_ELOCKED, dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "b", NULL, p));
    memset(&po, 0, sizeof po);
    po.lock = lk.token;
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_put(t, "b", 1, "1", 1, NULL));
    AT_OK(dkv_txn_put(t, "locked", 6, "x", 1, &po));
    AT_OK(dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "b", "1", p));
    CU_ASSERT(at_is(c, "locked", "x", p));

    /* An unknown lease. */
    memset(&po, 0, sizeof po);
    po.lease = lease + 1000;
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_put(t, "c", 1, "1", 1, NULL));
    AT_OK(dkv_txn_put(t, "d", 1, "1", 1, &po));
    AT_STATUS(DKV_ENOTFOUND, dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "c", NULL, p));
    CU_ASSERT(at_is(c, "d", NULL, p));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_txn_bad_input(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    dkv_txn_t *t = NULL;
    dkv_item_t *it = NULL;
    char key[DKV_MAX_KEY + 1];
    dkv_open_opts_t oo;
    dkv_client_t *small;
    char val[101];

    DKV_ASSERT_NOT_NULL(c);
    AT_STATUS(DKV_EINVAL, dkv_txn_begin(NULL, c, p));
    AT_STATUS(DKV_EINVAL, dkv_txn_begin(&t, NULL, p));
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    memset(key, 'k', sizeof key);
    AT_STATUS(DKV_EINVAL, dkv_txn_put(t, "", 0, "v", 1, NULL));
    AT_STATUS(DKV_EINVAL, dkv_txn_put(t, NULL, 2, "v", 1, NULL));
    AT_STATUS(DKV_EINVAL, dkv_txn_put(NULL, "k", 1, "v", 1, NULL));
    AT_STATUS(DKV_ETOOLARGE, dkv_txn_put(t, key, sizeof key, "v", 1, NULL));
    AT_STATUS(DKV_ETOOLARGE, dkv_txn_delete(t, key, sizeof key));
    AT_STATUS(DKV_EINVAL, dkv_txn_delete(t, "", 0));
    AT_STATUS(DKV_EINVAL, dkv_txn_get(NULL, t, "k", 1, p));
    AT_STATUS(DKV_EINVAL, dkv_txn_get(&it, t, "", 0, p));
    AT_OK(dkv_txn_put(t, key, DKV_MAX_KEY, "v", 1, NULL));
    AT_OK(dkv_txn_commit(NULL, t));

    /* At most DKV_MAX_TXN_OPS staged operations. */
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    {
        int i, failed = 0;

        for (i = 0; i < DKV_MAX_TXN_OPS; i++) {
            char k[16];

            snprintf(k, sizeof k, "op%05d", i);
            failed += dkv_txn_put(t, k, strlen(k), "v", 1, NULL) != DKV_OK;
        }
        DKV_EXPECT_INT_EQ(failed, 0);
        AT_STATUS(DKV_ETOOLARGE, dkv_txn_put(t, "one-more", 8, "v", 1,
                                             NULL));
        AT_STATUS(DKV_ETOOLARGE, dkv_txn_delete(t, "op00000", 7));
    }
    dkv_txn_rollback(t);
    AT_STATUS(DKV_EINVAL, dkv_txn_commit(NULL, NULL));
    dkv_close(c);

    /* The store's value limit applies to staged values. */
    memset(&oo, 0, sizeof oo);
    oo.max_value = 100;
    small = at_open("inproc:", &oo);
    DKV_ASSERT_NOT_NULL(small);
    memset(val, 'v', sizeof val);
    AT_OK_FATAL(dkv_txn_begin(&t, small, p));
    AT_OK(dkv_txn_put(t, "v", 1, val, 100, NULL));
    AT_STATUS(DKV_ETOOLARGE, dkv_txn_put(t, "w", 1, val, 101, NULL));
    AT_OK(dkv_txn_commit(NULL, t));
    dkv_close(small);
    apr_pool_destroy(p);
}

static void
test_txn_watch(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo;
    dkv_watch_t *w = NULL;
    dkv_txn_t *t = NULL;
    dkv_item_t *it = NULL;
    uint64_t rev = 0;
    size_t i;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "t:gone", "g", NULL));
    memset(&wo, 0, sizeof wo);
    wo.prefix = 1;
    AT_OK_FATAL(dkv_watch_start(&w, c, "t:", 2, &wo, at_events_cb, ev));

    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_put(t, "t:1", 3, "a", 1, NULL));
    AT_OK(dkv_txn_put(t, "t:2", 3, "b", 1, NULL));
    AT_OK(dkv_txn_put(t, "t:3", 3, "c", 1, NULL));
    AT_OK(dkv_txn_delete(t, "t:gone", 6));
    AT_OK(dkv_txn_commit(&rev, t));

    /* A failed transaction: no events. */
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_get(&it, t, "t:1", 3, p));
    AT_OK(at_put(NULL, c, "t:1", "outside", NULL));
    AT_OK(dkv_txn_put(t, "t:x", 3, "x", 1, NULL));
    AT_OK(dkv_txn_put(t, "t:y", 3, "y", 1, NULL));
    AT_STATUS(DKV_ECONFLICT, dkv_txn_commit(NULL, t));
    AT_OK(at_put(NULL, c, "t:end", "e", NULL));

    DKV_EXPECT_TRUE(at_events_wait_key(ev, DKV_EVENT_PUT, "t:end", 5000)
                    >= 0);
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(ev->n, 6);
    DKV_EXPECT_INT_EQ(at_events_find(ev, DKV_EVENT_PUT, "t:1"), 0);
    DKV_EXPECT_TRUE(at_events_find(ev, DKV_EVENT_PUT, "t:2") >= 0);
    DKV_EXPECT_TRUE(at_events_find(ev, DKV_EVENT_PUT, "t:3") >= 0);
    DKV_EXPECT_TRUE(at_events_find(ev, DKV_EVENT_DELETE, "t:gone") >= 0);
    DKV_EXPECT_INT_EQ(at_events_find(ev, DKV_EVENT_PUT, "t:x"), -1);
    DKV_EXPECT_INT_EQ(at_events_find(ev, DKV_EVENT_PUT, "t:y"), -1);
    AT_EVENT(ev, 4, DKV_EVENT_PUT, "t:1", "outside");
    AT_EVENT(ev, 5, DKV_EVENT_PUT, "t:end", "e");
    for (i = 1; i < ev->n; i++) {
        DKV_EXPECT_TRUE(ev->ev[i].revision > ev->ev[i - 1].revision);
    }
    if (ev->n >= 4) {
        DKV_EXPECT_UINT_EQ(ev->ev[3].revision, rev);
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_txn_metadata_and_expiry(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_open_opts_t oo = at_fake_clock_opts();
    dkv_client_t *c = at_open("inproc:", &oo);
    dkv_label_t lab[1] = { { "city", "Oslo", 1 } };
    dkv_put_opts_t po;
    dkv_txn_t *t = NULL;
    dkv_item_t *it = NULL;
    dkv_clause_t cl;
    dkv_query_t q;
    dkv_page_t *pg = NULL;

    AT_FAKE_CLOCK_ONLY(c);
    DKV_ASSERT_NOT_NULL(c);
    memset(&po, 0, sizeof po);
    po.ttl_ms = 1000;
    po.entity = "customer";
    po.labels = lab;
    po.nlabels = 1;
    po.content_type = "text/plain";
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_OK(dkv_txn_put(t, "m", 1, "meta", 4, &po));
    AT_OK(dkv_txn_commit(NULL, t));
    AT_OK(at_get(&it, c, "m", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, AT_T0 + 1000);
    DKV_EXPECT_STR_EQ(it->entity, "customer");
    DKV_EXPECT_STR_EQ(it->content_type, "text/plain");
    DKV_EXPECT_UINT_EQ(it->nlabels, 1);
    memset(&cl, 0, sizeof cl);
    cl.type = DKV_CLAUSE_EQ;
    cl.label = "city";
    cl.value = "Oslo";
    memset(&q, 0, sizeof q);
    q.entity = "customer";
    q.where = &cl;
    AT_OK(dkv_search(&pg, c, &q, NULL, p));
    DKV_ASSERT_NOT_NULL(pg);
    DKV_EXPECT_UINT_EQ(pg->count, 1);

    /* An expired key reads as absent in a transaction too, and a
     * transaction that read it as absent commits. */
    at_clock_advance(1001);
    AT_OK_FATAL(dkv_txn_begin(&t, c, p));
    AT_STATUS(DKV_ENOTFOUND, dkv_txn_get(&it, t, "m", 1, p));
    AT_OK(dkv_txn_put(t, "m", 1, "new", 3, NULL));
    AT_OK(dkv_txn_commit(NULL, t));
    CU_ASSERT(at_is(c, "m", "new", p));
    AT_OK(dkv_search(&pg, c, &q, NULL, p));
    DKV_ASSERT_NOT_NULL(pg);
    DKV_EXPECT_UINT_EQ(pg->count, 0);
    dkv_close(c);
    apr_pool_destroy(p);
}

/* Registers the api_txn suite. */
void
test_api_txn_register(void)
{
    CU_pSuite s = dkv_test_add_suite("api_txn", NULL, NULL);

    DKV_TEST_ADD(s, test_commit_and_rollback);
    DKV_TEST_ADD(s, test_read_your_writes);
    DKV_TEST_ADD(s, test_conflicts);
    DKV_TEST_ADD(s, test_staged_conditions);
    DKV_TEST_ADD(s, test_txn_bad_input);
    DKV_TEST_ADD(s, test_txn_watch);
    DKV_TEST_ADD(s, test_txn_metadata_and_expiry);
}
