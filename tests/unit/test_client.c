/*
 * test_client.c -- suite `client`: what src/client adds around the engine
 * and the public API suites do not reach: address parsing, the one-handle-
 * per-directory registry, closing through the parent pool, the removal of
 * temporary stores, and the versions a transaction reports for its own
 * staged writes.
 */
#include <string.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>

#include "testutil.h"
#include "client/client.h"

static void
open_rejects_bad_addresses(void)
{
    dkv_client_t *c = (dkv_client_t *)&c;
    dkv_open_opts_t o;

    /* Remote addresses: the remote suite covers them; one malformed. */
    DKV_EXPECT_STATUS(dkv_open(&c, "dkv://localhost/Store", NULL, NULL),
                      DKV_EINVAL);
    DKV_EXPECT_TRUE(c == NULL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "PORT") != NULL);
    DKV_EXPECT_STATUS(dkv_open(&c, "bogus:/tmp/x", NULL, NULL), DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "unknown address scheme")
                    != NULL);
    DKV_EXPECT_STATUS(dkv_open(&c, "", NULL, NULL), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_open(&c, NULL, NULL, NULL), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_open(NULL, "inproc:", NULL, NULL), DKV_EINVAL);
    memset(&o, 0, sizeof(o));
    o.max_value = DKV_LIMIT_MAX_VALUE + 1;
    DKV_EXPECT_STATUS(dkv_open(&c, "inproc:", &o, NULL), DKV_EINVAL);
    DKV_EXPECT_TRUE(dkv_last_error()[0] != '\0');
    dkv_close(NULL);
}

static void
one_handle_per_directory(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *dir = dkv_test_tempdir(pool);
    const char *addr = apr_pstrcat(pool, "inproc:", dir, "/store", NULL);
    const char *slash = apr_pstrcat(pool, addr, "/", NULL);
    dkv_client_t *a = NULL, *b = NULL;

    DKV_ASSERT_OK(dkv_open(&a, addr, NULL, pool));
    DKV_EXPECT_STATUS(dkv_open(&b, addr, NULL, pool), DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "already open") != NULL);
    DKV_EXPECT_TRUE(b == NULL);
    DKV_EXPECT_STATUS(dkv_open(&b, slash, NULL, pool), DKV_EINVAL);
    dkv_close(a);
    DKV_ASSERT_OK(dkv_open(&b, slash, NULL, NULL));
    dkv_close(b);
    apr_pool_destroy(pool);
}

static void
parent_pool_closes_the_handle(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *dir = dkv_test_tempdir(pool);
    const char *addr = apr_pstrcat(pool, "inproc:", dir, NULL);
    apr_pool_t *parent;
    dkv_client_t *c = NULL;
    dkv_item_t *it = NULL;
    dkv_txn_t *txn = NULL;

    DKV_ASSERT_INT_EQ(apr_pool_create(&parent, pool), APR_SUCCESS);
    DKV_ASSERT_OK(dkv_open(&c, addr, NULL, parent));
    DKV_ASSERT_OK(dkv_put(NULL, c, "k", 1, "v", 1, NULL));
    /* An open transaction in the client's pool goes with it. */
    DKV_ASSERT_OK(dkv_txn_begin(&txn, c, NULL));
    DKV_ASSERT_OK(dkv_txn_put(txn, "t", 1, "x", 1, NULL));
    apr_pool_destroy(parent);

    /* Closed: the directory can be opened again and kept the data. */
    DKV_ASSERT_OK(dkv_open(&c, addr, NULL, NULL));
    DKV_ASSERT_OK(dkv_get(&it, c, "k", 1, NULL, pool));
    DKV_EXPECT_MEM_EQ(it->value, it->value_len, "v", 1);
    DKV_EXPECT_STATUS(dkv_get(&it, c, "t", 1, NULL, pool), DKV_ENOTFOUND);
    dkv_close(c);
    apr_pool_destroy(pool);
}

/* 1 when DIR holds LMDB's data file. */
static int
holds_store(const char *dir, apr_pool_t *pool)
{
    return dkv_test_exists(apr_pstrcat(pool, dir, "/data.mdb", NULL), pool);
}

/* "inproc:" makes a fresh directory per handle and dkv_close removes it.
 * The test follows the handles' own directories (dkv_client_dir) rather
 * than diffing the system's temporary directory, which other processes
 * (the examples, run in parallel by `make -j check`) fill and empty
 * meanwhile. */
static void
temporary_store_is_removed(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_client_t *c = NULL, *d = NULL;
    const char *cdir, *ddir;

    DKV_ASSERT_OK(dkv_open(&c, "inproc:", NULL, NULL));
    /* Temporary stores are independent of each other. */
    DKV_ASSERT_OK(dkv_open(&d, "inproc:", NULL, NULL));
    DKV_ASSERT_OK(dkv_put(NULL, c, "k", 1, "v", 1, NULL));
    DKV_ASSERT_NOT_NULL(dkv_client_dir(c));
    DKV_ASSERT_NOT_NULL(dkv_client_dir(d));
    cdir = apr_pstrdup(pool, dkv_client_dir(c));
    ddir = apr_pstrdup(pool, dkv_client_dir(d));
    DKV_EXPECT_TRUE(strcmp(cdir, ddir) != 0);
    DKV_EXPECT_TRUE(holds_store(cdir, pool));
    DKV_EXPECT_TRUE(holds_store(ddir, pool));
    dkv_close(c);
    /* An empty message: the directory was removed (see client_cleanup). */
    DKV_EXPECT_STR_EQ(dkv_last_error(), "");
    DKV_EXPECT_TRUE(!dkv_test_exists(cdir, pool));
    DKV_EXPECT_TRUE(dkv_test_exists(ddir, pool));
    dkv_close(d);
    DKV_EXPECT_STR_EQ(dkv_last_error(), "");
    DKV_EXPECT_TRUE(!dkv_test_exists(ddir, pool));
    apr_pool_destroy(pool);
}

static void
txn_staged_versions(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_client_t *c = NULL;
    dkv_txn_t *txn = NULL;
    dkv_item_t *it = NULL;
    dkv_put_opts_t po;
    dkv_label_t label = { "colour", "blue", 1 };
    uint64_t rev = 0;

    DKV_ASSERT_OK(dkv_open(&c, "inproc:", NULL, NULL));
    DKV_ASSERT_OK(dkv_put(NULL, c, "a", 1, "1", 1, NULL));
    DKV_ASSERT_OK(dkv_put(NULL, c, "a", 1, "2", 1, NULL));

    DKV_ASSERT_OK(dkv_txn_begin(&txn, c, pool));
    DKV_ASSERT_OK(dkv_txn_get(&it, txn, "a", 1, pool));
    DKV_EXPECT_UINT_EQ(it->version, 2);
    memset(&po, 0, sizeof(po));
    po.entity = "thing";
    po.labels = &label;
    po.nlabels = 1;
    po.ttl_ms = 60000;
    DKV_ASSERT_OK(dkv_txn_put(txn, "a", 1, "3", 1, &po));
    DKV_ASSERT_OK(dkv_txn_get(&it, txn, "a", 1, pool));
    DKV_EXPECT_UINT_EQ(it->version, 3);
    DKV_EXPECT_MEM_EQ(it->value, it->value_len, "3", 1);
    DKV_EXPECT_STR_EQ(it->entity, "thing");
    DKV_ASSERT_UINT_EQ(it->nlabels, 1);
    DKV_EXPECT_STR_EQ(it->labels[0].value, "blue");
    DKV_EXPECT_INT_EQ(it->ttl_ms, 60000);
    /* Never read: version unknown. */
    DKV_ASSERT_OK(dkv_txn_put(txn, "b", 1, "x", 1, NULL));
    DKV_ASSERT_OK(dkv_txn_get(&it, txn, "b", 1, pool));
    DKV_EXPECT_UINT_EQ(it->version, 0);
    DKV_EXPECT_INT_EQ(it->ttl_ms, -1);
    /* Deleted, then recreated. */
    DKV_ASSERT_OK(dkv_txn_delete(txn, "b", 1));
    DKV_EXPECT_STATUS(dkv_txn_get(&it, txn, "b", 1, pool), DKV_ENOTFOUND);
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_INT_EQ(it->status, DKV_ENOTFOUND);
    DKV_ASSERT_OK(dkv_txn_put(txn, "b", 1, "y", 1, NULL));
    DKV_ASSERT_OK(dkv_txn_get(&it, txn, "b", 1, pool));
    DKV_EXPECT_UINT_EQ(it->version, 1);
    DKV_ASSERT_OK(dkv_txn_commit(&rev, txn));
    DKV_EXPECT_TRUE(rev > 0);

    DKV_ASSERT_OK(dkv_get(&it, c, "a", 1, NULL, pool));
    DKV_EXPECT_UINT_EQ(it->version, 3);
    DKV_EXPECT_STR_EQ(it->entity, "thing");
    DKV_ASSERT_OK(dkv_get(&it, c, "b", 1, NULL, pool));
    DKV_EXPECT_MEM_EQ(it->value, it->value_len, "y", 1);
    dkv_close(c);
    apr_pool_destroy(pool);
}

/* See testutil.h. */
void
test_client_register(void)
{
    CU_pSuite s = dkv_test_add_suite("client", NULL, NULL);

    DKV_TEST_ADD(s, open_rejects_bad_addresses);
    DKV_TEST_ADD(s, one_handle_per_directory);
    DKV_TEST_ADD(s, parent_pool_closes_the_handle);
    DKV_TEST_ADD(s, temporary_store_is_removed);
    DKV_TEST_ADD(s, txn_staged_versions);
}
