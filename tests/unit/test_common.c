/*
 * test_common.c -- suite `common`: the small shared layers under the
 * client library: status texts (dkv_strerror for every code, APR and OS
 * statuses), the per-thread last error, the LMDB status mapping, the
 * allocation wrappers, dkv_version, and the platform's temporary
 * directories and recursive removal.
 */
#include <errno.h>
#include <string.h>

#include <apr_errno.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <lmdb.h>

#include "testutil.h"
#include "common/alloc.h"
#include "common/status.h"
#include "platform/platform.h"

/* ------------------------------------------------------------ strerror */

static void
strerror_names_every_code(void)
{
    dkv_status_t s;
    int i;

    DKV_EXPECT_STR_EQ(dkv_strerror(DKV_OK), "success");
    for (s = DKV_START_ERROR + 1; s < DKV_END_ERROR; s++) {
        const char *t = dkv_strerror(s);

        DKV_ASSERT_NOT_NULL(t);
        DKV_EXPECT_TRUE(t[0] != '\0');
        DKV_EXPECT_TRUE(strstr(t, "unknown") == NULL);
        /* Distinct texts. */
        for (i = DKV_START_ERROR + 1; i < s; i++) {
            DKV_EXPECT_TRUE(strcmp(dkv_strerror(i), t) != 0);
        }
    }
    DKV_EXPECT_STR_EQ(dkv_strerror(DKV_ENOTFOUND), "not found");
    DKV_EXPECT_STR_EQ(dkv_strerror(DKV_ECONFLICT), "conflict");
    DKV_EXPECT_STR_EQ(dkv_strerror(DKV_ENOTIMPL), "not implemented");
}

static void
strerror_other_statuses(void)
{
    const char *t;

    t = dkv_strerror(APR_ENOENT);
    DKV_ASSERT_NOT_NULL(t);
    DKV_EXPECT_TRUE(t[0] != '\0');
    t = dkv_strerror(APR_FROM_OS_ERROR(APR_EACCES));
    DKV_ASSERT_NOT_NULL(t);
    DKV_EXPECT_TRUE(t[0] != '\0');
    t = dkv_strerror(APR_EGENERAL);
    DKV_ASSERT_NOT_NULL(t);
    DKV_EXPECT_TRUE(t[0] != '\0');
    /* Codes nobody defines still get a text. */
    t = dkv_strerror(DKV_END_ERROR + 5);
    DKV_ASSERT_NOT_NULL(t);
    DKV_EXPECT_TRUE(t[0] != '\0');
    t = dkv_strerror(-12345);
    DKV_ASSERT_NOT_NULL(t);
    DKV_EXPECT_TRUE(t[0] != '\0');
    DKV_EXPECT_UINT_EQ(DKV_START_ERROR, APR_OS_START_USERERR);
    DKV_EXPECT_TRUE(DKV_STATUS_IS_DKV(DKV_ECORRUPT));
    DKV_EXPECT_TRUE(!DKV_STATUS_IS_DKV(APR_ENOENT));
}

/* ----------------------------------------------------------- last error */

static void
last_error_set_and_clear(void)
{
    char big[600];

    dkv_error_clear();
    DKV_EXPECT_STR_EQ(dkv_last_error(), "");
    DKV_EXPECT_INT_EQ(dkv_error_set(DKV_EINVAL, "key is %d bytes", 612),
                      DKV_EINVAL);
    DKV_EXPECT_STR_EQ(dkv_last_error(), "key is 612 bytes");
    dkv_error_clear();
    DKV_EXPECT_STR_EQ(dkv_last_error(), "");

    /* Truncated, never overflowing. */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    dkv_error_set(DKV_EINVAL, "%s", big);
    DKV_EXPECT_UINT_EQ(strlen(dkv_last_error()), DKV_ERROR_MAX);

    /* The error so far may be an argument: it is prefixed, not garbled. */
    dkv_error_set(DKV_EINVAL, "bad size '9Q'");
    dkv_error_set(DKV_EINVAL, "%s: %s", "line 3", dkv_last_error());
    DKV_EXPECT_STR_EQ(dkv_last_error(), "line 3: bad size '9Q'");
    dkv_error_clear();
}

typedef struct thread_check {
    char seen_before[64];
    char seen_after[64];
} thread_check_t;

static void *APR_THREAD_FUNC
other_thread(apr_thread_t *t, void *data)
{
    thread_check_t *tc = data;

    (void)t;
    apr_cpystrn(tc->seen_before, dkv_last_error(), sizeof(tc->seen_before));
    dkv_error_set(DKV_ECONFLICT, "from the other thread");
    apr_cpystrn(tc->seen_after, dkv_last_error(), sizeof(tc->seen_after));
    return NULL;
}

static void
last_error_is_per_thread(void)
{
    apr_pool_t *pool = dkv_test_pool();
    thread_check_t tc;
    apr_thread_t *t;
    apr_status_t ignored;

    memset(&tc, 0, sizeof(tc));
    dkv_error_set(DKV_EINVAL, "from the main thread");
    DKV_ASSERT_INT_EQ(apr_thread_create(&t, NULL, other_thread, &tc, pool),
                      APR_SUCCESS);
    DKV_ASSERT_INT_EQ(dkv_test_thread_join(&ignored, t), APR_SUCCESS);
    DKV_EXPECT_STR_EQ(tc.seen_before, "");
    DKV_EXPECT_STR_EQ(tc.seen_after, "from the other thread");
    DKV_EXPECT_STR_EQ(dkv_last_error(), "from the main thread");
    dkv_error_clear();
    apr_pool_destroy(pool);
}

/* --------------------------------------------------------- LMDB mapping */

static void
status_from_mdb_maps(void)
{
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(MDB_SUCCESS), DKV_OK);
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(MDB_NOTFOUND), DKV_ENOTFOUND);
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(MDB_MAP_FULL), DKV_EFULL);
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(MDB_CORRUPTED), DKV_ECORRUPT);
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(MDB_INVALID), DKV_ECORRUPT);
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(MDB_VERSION_MISMATCH),
                      DKV_ECORRUPT);
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(MDB_PAGE_NOTFOUND), DKV_ECORRUPT);
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(MDB_BAD_VALSIZE), DKV_ETOOLARGE);
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(MDB_READERS_FULL),
                      DKV_EUNAVAILABLE);
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(MDB_KEYEXIST), DKV_EUNAVAILABLE);
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(MDB_BAD_DBI), DKV_EUNAVAILABLE);
    /* The C-runtime errno values LMDB returns itself, on every platform,
     * are APR's errno statuses (APR_EACCES is EACCES on Windows too). */
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(EACCES), APR_EACCES);
    DKV_EXPECT_TRUE(APR_STATUS_IS_EACCES(dkv_status_from_mdb(EACCES)));
    DKV_EXPECT_TRUE(APR_STATUS_IS_ENOENT(dkv_status_from_mdb(ENOENT)));
    DKV_EXPECT_TRUE(APR_STATUS_IS_ENOMEM(dkv_status_from_mdb(ENOMEM)));
    DKV_EXPECT_TRUE(APR_STATUS_IS_EINVAL(dkv_status_from_mdb(EINVAL)));
    DKV_EXPECT_TRUE(APR_STATUS_IS_ENOSPC(dkv_status_from_mdb(ENOSPC)));
}

/* LMDB passes the system's own error codes on (errno on Unix,
 * GetLastError() on Windows).  Real ones, made here through APR, must
 * keep their meaning after the mapping. */
static void
status_from_mdb_os_codes(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *dir = dkv_test_tempdir(pool);
    const char *missing = apr_pstrcat(pool, dir, "/no/such/dir", NULL);
    apr_file_t *f = NULL;
    apr_dir_t *d = NULL;
    apr_status_t s;
    int code;

    /* Not found: ENOENT, or ERROR_PATH_NOT_FOUND / ERROR_FILE_NOT_FOUND. */
    s = apr_dir_open(&d, missing, pool);
    DKV_ASSERT_TRUE(APR_STATUS_IS_ENOENT(s));
    code = APR_TO_OS_ERROR(s);
    DKV_EXPECT_TRUE(APR_STATUS_IS_ENOENT(dkv_status_from_mdb(code)));

    /* A directory opened for writing: EISDIR on Unix, ERROR_ACCESS_DENIED
     * on Windows.  Either way the code passes through unchanged. */
    s = apr_file_open(&f, dir, APR_FOPEN_WRITE, APR_OS_DEFAULT, pool);
    DKV_ASSERT_TRUE(s != APR_SUCCESS);
    code = APR_TO_OS_ERROR(s);
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(code), APR_FROM_OS_ERROR(code));
    DKV_EXPECT_INT_EQ(dkv_status_from_mdb(code), s);
    DKV_EXPECT_INT_EQ(APR_STATUS_IS_EACCES(dkv_status_from_mdb(code)),
                      APR_STATUS_IS_EACCES(s));
    apr_pool_destroy(pool);
}

/* ---------------------------------------------------- alloc and version */

static void
alloc_wrappers(void)
{
    char *s = dkv_strdup("hello");
    unsigned char *z;
    void *p;
    size_t i;

    DKV_ASSERT_NOT_NULL(s);
    DKV_EXPECT_STR_EQ(s, "hello");
    dkv_free(s);
    DKV_EXPECT_TRUE(dkv_strdup(NULL) == NULL);
    z = dkv_calloc(16, 4);
    DKV_ASSERT_NOT_NULL(z);
    for (i = 0; i < 64; i++) {
        DKV_EXPECT_INT_EQ(z[i], 0);
    }
    p = dkv_realloc(z, 4096);
    DKV_ASSERT_NOT_NULL(p);
    dkv_free(p);
    DKV_EXPECT_TRUE(dkv_calloc((size_t)-1 / 2, 4) == NULL);
    p = dkv_malloc(0);
    DKV_EXPECT_TRUE(p != NULL);
    dkv_free(p);
    dkv_free(NULL);
}

static void
version_matches_header(void)
{
    DKV_EXPECT_STR_EQ(dkv_version(), DKV_VERSION_STRING);
}

/* ------------------------------------------------------ tempdir, rmtree */

static void
make_file(const char *dir, const char *name, apr_pool_t *pool)
{
    apr_file_t *f;
    apr_size_t n = 3;

    DKV_ASSERT_INT_EQ(apr_file_open(&f, apr_pstrcat(pool, dir, "/", name,
                                                    NULL),
                                    APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                                    APR_OS_DEFAULT, pool),
                      APR_SUCCESS);
    DKV_ASSERT_INT_EQ(apr_file_write(f, "abc", &n), APR_SUCCESS);
    apr_file_close(f);
}

static void
mkdtemp_makes_fresh_dirs(void)
{
    apr_pool_t *pool = dkv_test_pool();
    apr_finfo_t fi;
    char *a = NULL, *b = NULL;

    DKV_ASSERT_OK(dkv_plat_mkdtemp(&a, "dkv-test-", pool));
    DKV_ASSERT_OK(dkv_plat_mkdtemp(&b, NULL, pool));
    DKV_ASSERT_NOT_NULL(a);
    DKV_ASSERT_NOT_NULL(b);
    DKV_EXPECT_TRUE(strcmp(a, b) != 0);
    DKV_EXPECT_TRUE(strstr(a, "dkv-test-") != NULL);
    DKV_EXPECT_TRUE(strstr(b, "dkv-") != NULL);
    DKV_ASSERT_INT_EQ(apr_stat(&fi, a, APR_FINFO_TYPE, pool), APR_SUCCESS);
    DKV_EXPECT_INT_EQ(fi.filetype, APR_DIR);
    DKV_EXPECT_OK(dkv_plat_rmtree(a, pool));
    DKV_EXPECT_OK(dkv_plat_rmtree(b, pool));
    DKV_EXPECT_TRUE(!dkv_test_exists(a, pool));
    DKV_EXPECT_TRUE(!dkv_test_exists(b, pool));
    apr_pool_destroy(pool);
}

static void
rmtree_removes_nested_trees(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *base = dkv_test_tempdir(pool);
    const char *root = apr_pstrcat(pool, base, "/tree", NULL);
    const char *deep = apr_pstrcat(pool, root, "/a/b/c/d", NULL);

    DKV_ASSERT_INT_EQ(apr_dir_make_recursive(deep, APR_OS_DEFAULT, pool),
                      APR_SUCCESS);
    DKV_ASSERT_INT_EQ(apr_dir_make(apr_pstrcat(pool, root, "/empty", NULL),
                                   APR_OS_DEFAULT, pool), APR_SUCCESS);
    make_file(root, "top.txt", pool);
    make_file(apr_pstrcat(pool, root, "/a", NULL), "one", pool);
    make_file(apr_pstrcat(pool, root, "/a/b", NULL), "two", pool);
    make_file(deep, "leaf", pool);
    make_file(deep, ".hidden", pool);

    DKV_EXPECT_OK(dkv_plat_rmtree(root, pool));
    DKV_EXPECT_TRUE(!dkv_test_exists(root, pool));
    DKV_EXPECT_TRUE(dkv_test_exists(base, pool));
    /* Missing is fine; a plain file is removed too. */
    DKV_EXPECT_OK(dkv_plat_rmtree(root, pool));
    make_file(base, "plain", pool);
    DKV_EXPECT_OK(dkv_plat_rmtree(apr_pstrcat(pool, base, "/plain", NULL),
                                  pool));
    DKV_EXPECT_TRUE(!dkv_test_exists(apr_pstrcat(pool, base, "/plain",
                                                 NULL), pool));
    DKV_EXPECT_STATUS(dkv_plat_rmtree("", pool), DKV_EINVAL);
    apr_pool_destroy(pool);
}

/* See testutil.h. */
void
test_common_register(void)
{
    CU_pSuite s = dkv_test_add_suite("common", NULL, NULL);

    DKV_TEST_ADD(s, strerror_names_every_code);
    DKV_TEST_ADD(s, strerror_other_statuses);
    DKV_TEST_ADD(s, last_error_set_and_clear);
    DKV_TEST_ADD(s, last_error_is_per_thread);
    DKV_TEST_ADD(s, status_from_mdb_maps);
    DKV_TEST_ADD(s, status_from_mdb_os_codes);
    DKV_TEST_ADD(s, alloc_wrappers);
    DKV_TEST_ADD(s, version_matches_header);
    DKV_TEST_ADD(s, mkdtemp_makes_fresh_dirs);
    DKV_TEST_ADD(s, rmtree_removes_nested_trees);
}
