/*
 * test_testutil.c -- self-test of the unit-test helpers (testutil.c):
 * temporary directories are fresh, distinct and removed with their pool;
 * rmtree removes nested trees; status texts name dkv's codes.
 */
#include <string.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include "testutil.h"

/* Writes a small file at DIR/NAME. */
static void
write_file(const char *dir, const char *name, apr_pool_t *pool)
{
    apr_file_t *f;
    apr_size_t n = 5;
    char *path;

    DKV_ASSERT_INT_EQ(apr_filepath_merge(&path, dir, name,
                                         APR_FILEPATH_NATIVE, pool),
                      APR_SUCCESS);
    DKV_ASSERT_INT_EQ(apr_file_open(&f, path,
                                    APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                                    APR_OS_DEFAULT, pool),
                      APR_SUCCESS);
    DKV_ASSERT_INT_EQ(apr_file_write(f, "hello", &n), APR_SUCCESS);
    DKV_ASSERT_INT_EQ(apr_file_close(f), APR_SUCCESS);
}

/* Number of entries in DIR, without "." and "..". */
static int
count_entries(const char *dir, apr_pool_t *pool)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    int n = 0;

    DKV_ASSERT_INT_EQ(apr_dir_open(&d, dir, pool), APR_SUCCESS);
    while (apr_dir_read(&fi, APR_FINFO_NAME, d) == APR_SUCCESS) {
        if (strcmp(fi.name, ".") != 0 && strcmp(fi.name, "..") != 0) {
            n++;
        }
    }
    apr_dir_close(d);
    return n;
}

static void
tempdir_is_fresh_and_distinct(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *a = dkv_test_tempdir(pool);
    const char *b = dkv_test_tempdir(pool);

    DKV_ASSERT_NOT_NULL(a);
    DKV_ASSERT_NOT_NULL(b);
    DKV_EXPECT_TRUE(strcmp(a, b) != 0);
    DKV_EXPECT_TRUE(dkv_test_exists(a, pool));
    DKV_EXPECT_INT_EQ(count_entries(a, pool), 0);
    DKV_EXPECT_INT_EQ(count_entries(b, pool), 0);
    apr_pool_destroy(pool);
}

static void
tempdir_removed_with_pool(void)
{
    apr_pool_t *check = dkv_test_pool();
    apr_pool_t *pool = dkv_test_pool();
    const char *dir = apr_pstrdup(check, dkv_test_tempdir(pool));
    char *sub;

    write_file(dir, "top", pool);
    DKV_ASSERT_INT_EQ(apr_filepath_merge(&sub, dir, "sub",
                                         APR_FILEPATH_NATIVE, pool),
                      APR_SUCCESS);
    DKV_ASSERT_INT_EQ(apr_dir_make(sub, APR_OS_DEFAULT, pool), APR_SUCCESS);
    write_file(sub, "inner", pool);
    DKV_EXPECT_INT_EQ(count_entries(dir, pool), 2);

    apr_pool_destroy(pool);
    DKV_EXPECT_TRUE(!dkv_test_exists(dir, check));
    apr_pool_destroy(check);
}

static void
rmtree_nested_and_missing(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *dir = dkv_test_tempdir(pool);
    char *a, *ab;

    DKV_ASSERT_INT_EQ(apr_filepath_merge(&a, dir, "a", APR_FILEPATH_NATIVE,
                                         pool), APR_SUCCESS);
    DKV_ASSERT_INT_EQ(apr_filepath_merge(&ab, a, "b", APR_FILEPATH_NATIVE,
                                         pool), APR_SUCCESS);
    DKV_ASSERT_INT_EQ(apr_dir_make_recursive(ab, APR_OS_DEFAULT, pool),
                      APR_SUCCESS);
    write_file(ab, "f", pool);
    write_file(a, "g", pool);

    DKV_EXPECT_INT_EQ(dkv_test_rmtree(a, pool), APR_SUCCESS);
    DKV_EXPECT_TRUE(!dkv_test_exists(a, pool));
    DKV_EXPECT_INT_EQ(count_entries(dir, pool), 0);
    /* Removing what is not there is success. */
    DKV_EXPECT_INT_EQ(dkv_test_rmtree(a, pool), APR_SUCCESS);
    apr_pool_destroy(pool);
}

static void
status_texts(void)
{
    char buf[160];

    DKV_EXPECT_STR_EQ(dkv_test_status_name(DKV_OK), "DKV_OK");
    DKV_EXPECT_STR_EQ(dkv_test_status_name(DKV_ECONFLICT), "DKV_ECONFLICT");
    DKV_EXPECT_STR_EQ(dkv_test_status_name(DKV_ENOTIMPL), "DKV_ENOTIMPL");
    DKV_EXPECT_TRUE(dkv_test_status_name(APR_ENOENT) == NULL);

    dkv_test_status_str(buf, sizeof(buf), DKV_ENOTFOUND);
    DKV_EXPECT_TRUE(strstr(buf, "120001 DKV_ENOTFOUND (") == buf);
    DKV_EXPECT_STATUS(DKV_EINVAL, DKV_EINVAL);
    DKV_EXPECT_OK(DKV_OK);
    DKV_EXPECT_MEM_EQ("ab\0c", 4, "ab\0c", 4);
    DKV_EXPECT_UINT_EQ(UINT64_MAX, UINT64_MAX);
}

static void
crash_child_found(void)
{
    apr_pool_t *pool = dkv_test_pool();

    /* Built beside the runner by `make check`. */
    DKV_EXPECT_TRUE(dkv_test_crash_child_path(pool) != NULL);
    apr_pool_destroy(pool);
}

void
test_testutil_register(void)
{
    CU_pSuite s = dkv_test_add_suite("testutil", NULL, NULL);

    DKV_TEST_ADD(s, tempdir_is_fresh_and_distinct);
    DKV_TEST_ADD(s, tempdir_removed_with_pool);
    DKV_TEST_ADD(s, rmtree_nested_and_missing);
    DKV_TEST_ADD(s, status_texts);
    DKV_TEST_ADD(s, crash_child_found);
}
