/*
 * test_api_persist.c -- suite api_persist: what survives dkv_close() and a
 * reopen of "inproc:PATH" (values, versions, revisions, counters, leases,
 * locks and their fencing, the search index, lifetimes), the removal of
 * "inproc:" temporary stores, one handle per path, closing by pool, bad
 * paths, and the NULL-safe release functions.
 */
#include <string.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "apitest.h"
#include "client/client.h"

static const char *
addr(const char *path, apr_pool_t *p)
{
    return apr_pstrcat(p, "inproc:", path, NULL);
}

/* Opens ADDRESS on the fake clock, without resetting the clock. */
static dkv_client_t *
open_at(const char *address)
{
    dkv_open_opts_t oo;

    memset(&oo, 0, sizeof oo);
    oo.clock = at_clock_fn;
    oo.expire_interval_ms = 10;
    return at_open(address, &oo);
}

static void
test_reopen(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *path = dkv_test_tempdir(p);
    const char *a = addr(path, p);
    dkv_client_t *c;
    dkv_label_t lab[1] = { { "city", "London", 1 } };
    dkv_clause_t cl;
    dkv_query_t q;
    dkv_page_t *pg = NULL;
    dkv_put_opts_t po;
    dkv_lock_t lk, lk2;
    dkv_lease_info_t li;
    dkv_item_t *it = NULL;
    dkv_result_t r;
    uint64_t lease = 0, lease2 = 0, rev = 0, rev2 = 0;
    int64_t v = 0;

    at_clock_set(AT_T0);
    c = open_at(a);
    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "k1", "v1", NULL));
    AT_OK(at_put(NULL, c, "k1", "v2", NULL));
    memset(&po, 0, sizeof po);
    po.entity = "customer";
    po.labels = lab;
    po.nlabels = 1;
    po.content_type = "text/plain";
    AT_OK(at_put(NULL, c, "k2", "labelled", &po));
    AT_OK(dkv_counter_add(NULL, NULL, c, "cnt", 3, 5, NULL));
    AT_OK(dkv_lease_grant(&lease, c, 60000));
    memset(&po, 0, sizeof po);
    po.lease = lease;
    AT_OK(at_put(NULL, c, "owned", "o", &po));
    AT_OK(dkv_lock_acquire(&lk, c, "guarded", 7, lease));
    memset(&po, 0, sizeof po);
    po.ttl_ms = 1000;
    AT_OK(at_put(NULL, c, "ttl", "t", &po));
    AT_OK(dkv_revision(&rev, c));
    dkv_close(c);

    c = open_at(a);
    DKV_ASSERT_NOT_NULL(c);
    AT_OK(dkv_revision(&rev2, c));
    DKV_EXPECT_UINT_EQ(rev2, rev);
    AT_OK(at_get(&it, c, "k1", p));
    DKV_ASSERT_NOT_NULL(it);
    AT_BYTES(it->value, it->value_len, "v2");
    DKV_EXPECT_UINT_EQ(it->version, 2);
    DKV_EXPECT_INT_EQ(it->created_at, AT_T0);
    AT_OK(at_get(&it, c, "k2", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_STR_EQ(it->entity, "customer");
    DKV_EXPECT_STR_EQ(it->content_type, "text/plain");
    DKV_EXPECT_UINT_EQ(it->nlabels, 1);
    AT_OK(dkv_counter_get(&v, c, "cnt", 3));
    DKV_EXPECT_INT_EQ(v, 5);
    AT_OK(at_get(&it, c, "ttl", p));
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->expires_at, AT_T0 + 1000);

    /* The search index. */
    memset(&cl, 0, sizeof cl);
    cl.type = DKV_CLAUSE_EQ;
    cl.label = "city";
    cl.value = "London";
    memset(&q, 0, sizeof q);
    q.entity = "customer";
    q.where = &cl;
    AT_OK(dkv_search(&pg, c, &q, NULL, p));
    DKV_ASSERT_NOT_NULL(pg);
    DKV_EXPECT_UINT_EQ(pg->count, 1);
    if (pg->count == 1) {
        AT_BYTES(pg->items[0].key, pg->items[0].key_len, "k2");
    }

    /* The lease and its lock. */
    AT_OK(dkv_lease_info(&li, c, lease));
    DKV_EXPECT_UINT_EQ(li.keys, 1);
    DKV_EXPECT_UINT_EQ(li.locks, 1);
    DKV_EXPECT_INT_EQ(li.expires_at, AT_T0 + 60000);
    AT_OK(dkv_lease_keepalive(NULL, c, lease));
    AT_OK(dkv_lease_grant(&lease2, c, 60000));
    DKV_EXPECT_TRUE(lease2 != lease && lease2 != 0);
    AT_STATUS(DKV_ELOCKED, at_put(NULL, c, "guarded", "x", NULL));
    AT_STATUS(DKV_ELOCKED, dkv_lock_acquire(&lk2, c, "guarded", 7, lease2));
    DKV_EXPECT_UINT_EQ(lk2.lease, lease);
    AT_OK(dkv_lock_acquire(&lk2, c, "guarded", 7, lease));
    DKV_EXPECT_UINT_EQ(lk2.token, lk.token);
    memset(&po, 0, sizeof po);
    po.lock = lk.token;
    AT_OK(at_put(NULL, c, "guarded", "x", &po));
    AT_OK(dkv_lock_release(c, "guarded", 7, lk.token));
    AT_OK(dkv_lock_acquire(&lk2, c, "guarded", 7, lease2));
    DKV_EXPECT_TRUE(lk2.token > lk.token);

    /* Revisions continue. */
    AT_OK(at_put(&r, c, "k1", "v3", NULL));
    DKV_EXPECT_UINT_EQ(r.version, 3);
    DKV_EXPECT_TRUE(r.revision > rev);
    AT_OK(dkv_revision(&rev, c));
    dkv_close(c);

    /* Reopened later: the TTL key and the unkept lease have expired. */
    at_clock_advance(120000);
    c = open_at(a);
    DKV_ASSERT_NOT_NULL(c);
    CU_ASSERT(at_is(c, "ttl", NULL, p));
    CU_ASSERT(at_is(c, "k1", "v3", p));
    AT_STATUS(DKV_ENOTFOUND, dkv_lease_keepalive(NULL, c, lease));
    {
        int64_t deadline = at_mono_ms() + 2000;

        while (!at_is(c, "owned", NULL, p) && at_mono_ms() < deadline) {
            at_sleep_ms(5);
        }
        CU_ASSERT(at_is(c, "owned", NULL, p));
    }
    AT_OK(dkv_revision(&rev2, c));
    DKV_EXPECT_TRUE(rev2 >= rev);
    dkv_close(c);
    apr_pool_destroy(p);
}

/* The names of the directories directly under DIR (name -> name). */
static apr_hash_t *
list_dir(const char *dir, apr_pool_t *p)
{
    apr_hash_t *h = apr_hash_make(p);
    apr_dir_t *d;
    apr_finfo_t fi;

    if (apr_dir_open(&d, dir, p) != APR_SUCCESS) {
        return h;
    }
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d)
           == APR_SUCCESS) {
        if (fi.filetype == APR_DIR && strcmp(fi.name, ".") != 0 &&
            strcmp(fi.name, "..") != 0) {
            const char *n = apr_pstrdup(p, fi.name);

            apr_hash_set(h, n, APR_HASH_KEY_STRING, n);
        }
    }
    apr_dir_close(d);
    return h;
}

/* 1 when DIR holds a "*.mdb" file, looking DEPTH levels further down. */
static int
holds_mdb(const char *dir, int depth, apr_pool_t *p)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    int found = 0;

    if (depth < 0 || apr_dir_open(&d, dir, p) != APR_SUCCESS) {
        return 0;
    }
    while (!found && apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d)
           == APR_SUCCESS) {
        size_t n = strlen(fi.name);

        if (strcmp(fi.name, ".") == 0 || strcmp(fi.name, "..") == 0) {
            continue;
        }
        if (fi.filetype == APR_DIR) {
            found = holds_mdb(apr_pstrcat(p, dir, "/", fi.name, NULL),
                              depth - 1, p);
        } else if (n > 4 && strcmp(fi.name + n - 4, ".mdb") == 0) {
            found = 1;
        }
    }
    apr_dir_close(d);
    return found;
}

/* The last path component of PATH ('/' or '\\' separated). */
static const char *
base_name(const char *path)
{
    const char *b = path, *q;

    for (q = path; *q != '\0'; q++) {
        if (*q == '/' || *q == '\\') {
            b = q + 1;
        }
    }
    return b;
}

/* "inproc:" lives in a new directory of the temporary directory, and
 * dkv_close removes it.  The directory is the handle's own
 * (dkv_client_dir, internal): new names in the shared temporary
 * directory can also be other processes' stores (the examples run beside
 * this runner under `make -j check`), so they cannot tell which one is
 * ours. */
static void
test_temp_store_removed(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *tmp = NULL, *dir;
    apr_hash_t *before, *during;
    dkv_client_t *c;

    DKV_ASSERT_INT_EQ(apr_temp_dir_get(&tmp, p), APR_SUCCESS);
    before = list_dir(tmp, p);
    c = at_open("inproc:", NULL);
    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "k", "v", NULL));
    DKV_ASSERT_NOT_NULL(dkv_client_dir(c));
    dir = apr_pstrdup(p, dkv_client_dir(c));
    during = list_dir(tmp, p);
    /* The store lives in a new directory under the temporary dir. */
    DKV_EXPECT_TRUE(apr_hash_get(before, base_name(dir),
                                 APR_HASH_KEY_STRING) == NULL);
    DKV_EXPECT_TRUE(apr_hash_get(during, base_name(dir),
                                 APR_HASH_KEY_STRING) != NULL);
    DKV_EXPECT_TRUE(holds_mdb(dir, 0, p));
    dkv_close(c);
    /* Nothing to report: the removal succeeded. */
    DKV_EXPECT_STR_EQ(dkv_last_error(), "");
    if (dkv_test_exists(dir, p)) {
        fprintf(stderr, "\n  still there after dkv_close: %s\n", dir);
    }
    DKV_EXPECT_TRUE(!dkv_test_exists(dir, p));
    apr_pool_destroy(p);
}

static void
test_one_handle_per_path(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *a = addr(dkv_test_tempdir(p), p);
    dkv_client_t *c, *c2 = NULL;
    dkv_status_t s;

    c = at_open(a, NULL);
    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "k", "v", NULL));
    s = dkv_open(&c2, a, NULL, NULL);
    DKV_EXPECT_TRUE(s != DKV_OK);
    DKV_EXPECT_TRUE(c2 == NULL);
    if (s != DKV_OK) {
        AT_HAS_ERROR();
    } else if (c2 != NULL) {
        dkv_close(c2);
    }
    /* The first handle is unharmed. */
    CU_ASSERT(at_is(c, "k", "v", p));
    AT_OK(at_put(NULL, c, "k2", "v2", NULL));
    dkv_close(c);
    /* Closed: it can be opened again. */
    c = at_open(a, NULL);
    DKV_ASSERT_NOT_NULL(c);
    CU_ASSERT(at_is(c, "k2", "v2", p));
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_pool_destroy_closes(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *a = addr(dkv_test_tempdir(p), p);
    apr_pool_t *sub = NULL;
    dkv_client_t *c = NULL;

    DKV_ASSERT_INT_EQ(apr_pool_create(&sub, p), APR_SUCCESS);
    AT_OK_FATAL(dkv_open(&c, a, NULL, sub));
    AT_OK(at_put(NULL, c, "k", "v", NULL));
    apr_pool_destroy(sub);
    c = at_open(a, NULL);
    DKV_ASSERT_NOT_NULL(c);
    CU_ASSERT(at_is(c, "k", "v", p));
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_bad_paths(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *dir = dkv_test_tempdir(p);
    const char *file = apr_pstrcat(p, dir, "/plainfile", NULL);
    const char *junk = apr_pstrcat(p, dir, "/junk", NULL);
    apr_file_t *f;
    apr_size_t n;
    dkv_client_t *c = NULL;
    dkv_status_t s;
    char buf[16384];

    /* A regular file where the directory should be. */
    DKV_ASSERT_INT_EQ(apr_file_open(&f, file, APR_FOPEN_WRITE |
                                    APR_FOPEN_CREATE, APR_OS_DEFAULT, p),
                      APR_SUCCESS);
    n = 5;
    apr_file_write(f, "hello", &n);
    apr_file_close(f);
    s = dkv_open(&c, addr(file, p), NULL, NULL);
    DKV_EXPECT_TRUE(s != DKV_OK);
    DKV_EXPECT_TRUE(c == NULL);
    if (c != NULL) {
        dkv_close(c);
        c = NULL;
    }

    /* A directory whose data file is not a dkv store. */
    DKV_ASSERT_INT_EQ(apr_dir_make(junk, APR_OS_DEFAULT, p), APR_SUCCESS);
    DKV_ASSERT_INT_EQ(apr_file_open(&f, apr_pstrcat(p, junk, "/data.mdb",
                                                    NULL),
                                    APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                                    APR_OS_DEFAULT, p),
                      APR_SUCCESS);
    memset(buf, 'J', sizeof buf);
    n = sizeof buf;
    apr_file_write(f, buf, &n);
    apr_file_close(f);
    s = dkv_open(&c, addr(junk, p), NULL, NULL);
    AT_STATUS(DKV_ECORRUPT, s);
    DKV_EXPECT_TRUE(c == NULL);
    if (c != NULL) {
        dkv_close(c);
    }
    apr_pool_destroy(p);
}

static void
test_history_survives_reopen(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *a = addr(dkv_test_tempdir(p), p);
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo;
    dkv_watch_t *w = NULL;
    dkv_client_t *c;
    dkv_result_t r1;

    c = at_open(a, NULL);
    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(&r1, c, "h:1", "a", NULL));
    AT_OK(at_put(NULL, c, "h:2", "b", NULL));
    AT_OK(at_del(NULL, c, "h:1"));
    dkv_close(c);
    c = at_open(a, NULL);
    DKV_ASSERT_NOT_NULL(c);
    memset(&wo, 0, sizeof wo);
    wo.prefix = 1;
    wo.start_revision = r1.revision;
    AT_OK_FATAL(dkv_watch_start(&w, c, "h:", 2, &wo, at_events_cb, ev));
    DKV_EXPECT_TRUE(at_events_wait(ev, 3, 5000));
    at_sleep_ms(20);
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(ev->n, 3);
    AT_EVENT(ev, 0, DKV_EVENT_PUT, "h:1", "a");
    AT_EVENT(ev, 1, DKV_EVENT_PUT, "h:2", "b");
    AT_EVENT(ev, 2, DKV_EVENT_DELETE, "h:1", NULL);
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_temp_stores_independent(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *a = at_open("inproc:", NULL);
    dkv_client_t *b = at_open("inproc:", NULL);

    DKV_ASSERT_NOT_NULL(a);
    DKV_ASSERT_NOT_NULL(b);
    AT_OK(at_put(NULL, a, "k", "in a", NULL));
    CU_ASSERT(at_is(b, "k", NULL, p));
    AT_OK(at_put(NULL, b, "k", "in b", NULL));
    CU_ASSERT(at_is(a, "k", "in a", p));
    dkv_close(a);
    CU_ASSERT(at_is(b, "k", "in b", p));
    dkv_close(b);
    apr_pool_destroy(p);
}

static void
test_null_safe(void)
{
    dkv_close(NULL);
    dkv_watch_stop(NULL);
    dkv_txn_rollback(NULL);
    CU_PASS("NULL handles are ignored");
}

static void
test_full_store(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *a = addr(dkv_test_tempdir(p), p);
    dkv_open_opts_t oo;
    dkv_client_t *c;
    char *val = apr_palloc(p, 64 * 1024);
    dkv_status_t s = DKV_OK;
    int i, written = 0;

    memset(val, 'f', 64 * 1024);
    memset(&oo, 0, sizeof oo);
    oo.map_size = 2 * 1024 * 1024;
    c = at_open(a, &oo);
    DKV_ASSERT_NOT_NULL(c);
    for (i = 0; i < 200; i++) {
        char k[16];

        snprintf(k, sizeof k, "f%03d", i);
        s = dkv_put(NULL, c, k, strlen(k), val, 64 * 1024, NULL);
        if (s != DKV_OK) {
            break;
        }
        written++;
    }
    AT_STATUS(DKV_EFULL, s);
    DKV_EXPECT_TRUE(written > 0);
    /* What was written is still readable. */
    {
        dkv_item_t *it = NULL;

        AT_OK(dkv_get(&it, c, "f000", 4, NULL, p));
        DKV_EXPECT_TRUE(it != NULL && it->value_len == 64 * 1024);
    }
    dkv_close(c);

    /* Reopened larger: everything there, writes work again. */
    oo.map_size = 64 * 1024 * 1024;
    c = at_open(a, &oo);
    DKV_ASSERT_NOT_NULL(c);
    {
        dkv_range_t rg = at_prefix("f");
        uint64_t n = 0;

        AT_OK(dkv_count(&n, c, &rg));
        DKV_EXPECT_UINT_EQ(n, (uint64_t)written);
    }
    AT_OK(dkv_put(NULL, c, "more", 4, val, 64 * 1024, NULL));
    dkv_close(c);
    apr_pool_destroy(p);
}

/* Registers the api_persist suite. */
void
test_api_persist_register(void)
{
    CU_pSuite s = dkv_test_add_suite("api_persist", NULL, NULL);

    DKV_TEST_ADD(s, test_reopen);
    DKV_TEST_ADD(s, test_temp_store_removed);
    DKV_TEST_ADD(s, test_one_handle_per_path);
    DKV_TEST_ADD(s, test_pool_destroy_closes);
    DKV_TEST_ADD(s, test_bad_paths);
    DKV_TEST_ADD(s, test_full_store);
    DKV_TEST_ADD(s, test_history_survives_reopen);
    DKV_TEST_ADD(s, test_temp_stores_independent);
    DKV_TEST_ADD(s, test_null_safe);
}
