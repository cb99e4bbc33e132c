/*
 * testutil.c -- the unit tests' helpers: suite registration that fails
 * loudly, assertions that explain statuses, temporary directories removed
 * with their pool, and locating the crash_child helper.  See testutil.h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_env.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <CUnit/CUnit.h>

#include "testutil.h"

const char *dkv_test_argv0 = "runner";

/* Made by the first dkv_test_root_pool() call (the runner's). */
static apr_pool_t *dkv_test_root;

/* ============================================================ registry */

CU_pSuite
dkv_test_add_suite(const char *name, CU_InitializeFunc init,
                   CU_CleanupFunc cleanup)
{
    CU_pSuite suite = CU_add_suite(name, init, cleanup);

    if (suite == NULL) {
        fprintf(stderr, "cannot add suite %s: %s\n", name, CU_get_error_msg());
        exit(2);
    }
    return suite;
}

void
dkv_test_add(CU_pSuite suite, const char *name, CU_TestFunc fn)
{
    if (CU_add_test(suite, name, fn) == NULL) {
        fprintf(stderr, "cannot add test %s: %s\n", name, CU_get_error_msg());
        exit(2);
    }
}

/* ============================================================== status */

static const struct {
    dkv_status_t status;
    const char *name;
} status_names[] = {
    { DKV_OK, "DKV_OK" },
    { DKV_ENOTFOUND, "DKV_ENOTFOUND" },
    { DKV_ECONFLICT, "DKV_ECONFLICT" },
    { DKV_EINVAL, "DKV_EINVAL" },
    { DKV_EUNAVAILABLE, "DKV_EUNAVAILABLE" },
    { DKV_ETRANSPORT, "DKV_ETRANSPORT" },
    { DKV_ELOCKED, "DKV_ELOCKED" },
    { DKV_ETOOLARGE, "DKV_ETOOLARGE" },
    { DKV_ETIMEOUT, "DKV_ETIMEOUT" },
    { DKV_EUNAUTHORIZED, "DKV_EUNAUTHORIZED" },
    { DKV_ECLOSED, "DKV_ECLOSED" },
    { DKV_ECOMPACTED, "DKV_ECOMPACTED" },
    { DKV_EFULL, "DKV_EFULL" },
    { DKV_ERANGE, "DKV_ERANGE" },
    { DKV_ENOTLEADER, "DKV_ENOTLEADER" },
    { DKV_ECORRUPT, "DKV_ECORRUPT" },
    { DKV_ENOTIMPL, "DKV_ENOTIMPL" },
};

const char *
dkv_test_status_name(dkv_status_t status)
{
    size_t i;

    for (i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
        if (status_names[i].status == status) {
            return status_names[i].name;
        }
    }
    return NULL;
}

const char *
dkv_test_status_str(char *buf, size_t size, dkv_status_t status)
{
    const char *name = dkv_test_status_name(status);

    if (name != NULL) {
        snprintf(buf, size, "%d %s (%s)", status, name,
                 dkv_strerror(status));
    }
    else {
        snprintf(buf, size, "%d (%s)", status, dkv_strerror(status));
    }
    return buf;
}

/* Records the outcome with CUnit.  On failure, MSG (the explanation) is
 * printed to stderr at once, so it lands in the test's log next to the
 * program's own output, and becomes the CUnit failure's condition text. */
static int
report(int ok, const char *msg, const char *file, unsigned line, int fatal)
{
    if (!ok) {
        fprintf(stderr, "%s:%u: FAILED: %s\n", file, line, msg);
        fflush(stderr);
    }
    /* May longjmp out of the test when FATAL. */
    CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg, file, "",
                            fatal ? CU_TRUE : CU_FALSE);
    return ok;
}

/* dkv_last_error() made printable: "" becomes "(none)". */
static const char *
last_error(void)
{
    const char *msg = dkv_last_error();

    return (msg != NULL && *msg != '\0') ? msg : "(none)";
}

int
dkv_test_check_status(dkv_status_t got, dkv_status_t expected,
                      const char *expr, const char *file, unsigned line,
                      int fatal)
{
    char msg[1024], g[160], e[160];

    if (got == expected) {
        return report(1, expr, file, line, fatal);
    }
    snprintf(msg, sizeof(msg), "%s: got %s, expected %s; last error: %s",
             expr, dkv_test_status_str(g, sizeof(g), got),
             dkv_test_status_str(e, sizeof(e), expected), last_error());
    return report(0, msg, file, line, fatal);
}

/* ======================================================= typed values */

int
dkv_test_check_int(int64_t got, int64_t expected, const char *expr,
                   const char *file, unsigned line, int fatal)
{
    char msg[1024];

    if (got == expected) {
        return report(1, expr, file, line, fatal);
    }
    snprintf(msg, sizeof(msg), "%s: got %" PRId64 ", expected %" PRId64,
             expr, got, expected);
    return report(0, msg, file, line, fatal);
}

int
dkv_test_check_uint(uint64_t got, uint64_t expected, const char *expr,
                    const char *file, unsigned line, int fatal)
{
    char msg[1024];

    if (got == expected) {
        return report(1, expr, file, line, fatal);
    }
    snprintf(msg, sizeof(msg), "%s: got %" PRIu64 ", expected %" PRIu64,
             expr, got, expected);
    return report(0, msg, file, line, fatal);
}

int
dkv_test_check_str(const char *got, const char *expected, const char *expr,
                   const char *file, unsigned line, int fatal)
{
    char msg[1024];

    if ((got == NULL && expected == NULL)
        || (got != NULL && expected != NULL && strcmp(got, expected) == 0)) {
        return report(1, expr, file, line, fatal);
    }
    snprintf(msg, sizeof(msg), "%s: got %s%s%s, expected %s%s%s", expr,
             got ? "\"" : "", got ? got : "NULL", got ? "\"" : "",
             expected ? "\"" : "", expected ? expected : "NULL",
             expected ? "\"" : "");
    return report(0, msg, file, line, fatal);
}

/* Appends up to 32 bytes of P (length N) to BUF as printable text. */
static void
dump_bytes(char *buf, size_t size, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t used = strlen(buf), i;

    for (i = 0; i < n && i < 32 && used + 5 < size; i++) {
        if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\') {
            buf[used++] = (char)b[i];
            buf[used] = '\0';
        }
        else {
            snprintf(buf + used, size - used, "\\x%02x", b[i]);
            used = strlen(buf);
        }
    }
    if (n > 32 && used + 4 < size) {
        snprintf(buf + used, size - used, "...");
    }
}

int
dkv_test_check_mem(const void *got, size_t got_len, const void *expected,
                   size_t expected_len, const char *expr, const char *file,
                   unsigned line, int fatal)
{
    char msg[1024];

    if (got_len == expected_len
        && (got_len == 0 || (got != NULL && expected != NULL
                             && memcmp(got, expected, got_len) == 0))) {
        return report(1, expr, file, line, fatal);
    }
    snprintf(msg, sizeof(msg), "%s: got %lu bytes \"", expr,
             (unsigned long)got_len);
    if (got != NULL) {
        dump_bytes(msg, sizeof(msg), got, got_len);
    }
    snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
             "\", expected %lu bytes \"", (unsigned long)expected_len);
    if (expected != NULL) {
        dump_bytes(msg, sizeof(msg), expected, expected_len);
    }
    snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "\"");
    return report(0, msg, file, line, fatal);
}

int
dkv_test_check_true(int value, const char *expr, const char *file,
                    unsigned line, int fatal)
{
    char msg[1024];

    if (value) {
        return report(1, expr, file, line, fatal);
    }
    snprintf(msg, sizeof(msg), "%s; last error: %s", expr, last_error());
    return report(0, msg, file, line, fatal);
}

/* ==================================================== pools and files */

apr_pool_t *
dkv_test_root_pool(void)
{
    if (dkv_test_root == NULL) {
        if (apr_initialize() != APR_SUCCESS
            || apr_pool_create(&dkv_test_root, NULL) != APR_SUCCESS) {
            fprintf(stderr, "cannot initialize APR\n");
            exit(2);
        }
    }
    return dkv_test_root;
}

void
dkv_test_shutdown(void)
{
    if (dkv_test_root != NULL) {
        apr_pool_destroy(dkv_test_root);
        dkv_test_root = NULL;
        apr_terminate();
    }
}

apr_pool_t *
dkv_test_pool(void)
{
    apr_pool_t *pool = NULL;

    DKV_ASSERT_INT_EQ(apr_pool_create(&pool, dkv_test_root_pool()),
                      APR_SUCCESS);
    return pool;
}

apr_status_t
dkv_test_rmtree(const char *path, apr_pool_t *pool)
{
    apr_pool_t *sub;
    apr_dir_t *dir;
    apr_finfo_t fi;
    apr_status_t rv;

    rv = apr_stat(&fi, path, APR_FINFO_TYPE | APR_FINFO_LINK, pool);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
        return rv;
    }
    if (fi.filetype != APR_DIR) {
        return apr_file_remove(path, pool);
    }

    if ((rv = apr_pool_create(&sub, pool)) != APR_SUCCESS) {
        return rv;
    }
    if ((rv = apr_dir_open(&dir, path, sub)) != APR_SUCCESS) {
        apr_pool_destroy(sub);
        return rv;
    }
    for (;;) {
        char *child;

        rv = apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, dir);
        if (APR_STATUS_IS_ENOENT(rv)) {
            rv = APR_SUCCESS;
            break;
        }
        if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
            break;
        }
        if (strcmp(fi.name, ".") == 0 || strcmp(fi.name, "..") == 0) {
            continue;
        }
        rv = apr_filepath_merge(&child, path, fi.name,
                                APR_FILEPATH_NATIVE, sub);
        if (rv != APR_SUCCESS) {
            break;
        }
        if (fi.valid & APR_FINFO_TYPE && fi.filetype != APR_DIR) {
            rv = apr_file_remove(child, sub);
        }
        else {
            rv = dkv_test_rmtree(child, sub);
        }
        if (rv != APR_SUCCESS) {
            break;
        }
    }
    apr_dir_close(dir);
    apr_pool_destroy(sub);
    if (rv == APR_SUCCESS) {
        rv = apr_dir_remove(path, pool);
    }
    return rv;
}

int
dkv_test_exists(const char *path, apr_pool_t *pool)
{
    apr_finfo_t fi;
    apr_status_t rv = apr_stat(&fi, path, APR_FINFO_TYPE, pool);

    return rv == APR_SUCCESS || rv == APR_INCOMPLETE;
}

/* Pool cleanup of dkv_test_tempdir(): removes the directory. */
static apr_status_t
tempdir_cleanup(void *data)
{
    const char *path = data;
    apr_pool_t *pool;
    apr_status_t rv;

    if (apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        return APR_SUCCESS;
    }
    rv = dkv_test_rmtree(path, pool);
    if (rv != APR_SUCCESS) {
        char err[256];

        fprintf(stderr, "warning: cannot remove %s: %s\n", path,
                apr_strerror(rv, err, sizeof(err)));
    }
    apr_pool_destroy(pool);
    return APR_SUCCESS;
}

const char *
dkv_test_tempdir(apr_pool_t *pool)
{
    static unsigned counter;
    const char *base = NULL;
    char *env = NULL, *path = NULL;
    apr_status_t rv = APR_EGENERAL;
    int tries;

    if (apr_env_get(&env, "DKV_TEST_TMPDIR", pool) == APR_SUCCESS
        && env != NULL && *env != '\0') {
        base = env;
        /* Make it if missing (parents too). */
        (void)apr_dir_make_recursive(base, APR_OS_DEFAULT, pool);
    }
    else {
        rv = apr_temp_dir_get(&base, pool);
        DKV_ASSERT_INT_EQ(rv, APR_SUCCESS);
    }

    /* Unique among concurrent runners: time, counter, retry on EEXIST. */
    for (tries = 0; tries < 100; tries++) {
        const char *name = apr_psprintf(
            pool, "dkv-test-%" APR_TIME_T_FMT "-%u",
            apr_time_now() % APR_INT64_C(1000000000000), ++counter);

        rv = apr_filepath_merge(&path, base, name, APR_FILEPATH_NATIVE,
                                pool);
        DKV_ASSERT_INT_EQ(rv, APR_SUCCESS);
        rv = apr_dir_make(path, APR_OS_DEFAULT, pool);
        if (!APR_STATUS_IS_EEXIST(rv)) {
            break;
        }
    }
    if (rv != APR_SUCCESS) {
        char err[256], msg[1024];

        snprintf(msg, sizeof(msg), "cannot make a directory under %s: %s",
                 base, apr_strerror(rv, err, sizeof(err)));
        report(0, msg, __FILE__, __LINE__, 1);
        return NULL;
    }

    if (apr_env_get(&env, "DKV_TEST_KEEP", pool) == APR_SUCCESS
        && env != NULL && *env != '\0') {
        fprintf(stderr, "keeping test directory %s\n", path);
    }
    else {
        apr_pool_cleanup_register(pool, path, tempdir_cleanup,
                                  apr_pool_cleanup_null);
    }
    return path;
}

/* ============================================================= threads */

apr_status_t
dkv_test_thread_join(apr_status_t *retval, apr_thread_t *thread)
{
    apr_status_t exitval = APR_SUCCESS;
    apr_status_t rv = apr_thread_join(&exitval, thread);

    if (rv == APR_INCOMPLETE) {
        /* APR on Windows: joined, but no apr_thread_exit status. */
        exitval = APR_SUCCESS;
        rv = APR_SUCCESS;
    }
    if (retval != NULL) {
        *retval = rv == APR_SUCCESS ? exitval : rv;
    }
    return rv;
}

/* ============================================================ programs */

const char *
dkv_test_crash_child_path(apr_pool_t *pool)
{
#ifdef _WIN32
    static const char exe[] = "crash_child.exe";
#else
    static const char exe[] = "crash_child";
#endif
    char *env = NULL;
    const char *path, *slash, *p;

    if (apr_env_get(&env, "DKV_CRASH_CHILD", pool) == APR_SUCCESS
        && env != NULL && *env != '\0') {
        path = env;
    }
    else {
        slash = NULL;
        for (p = dkv_test_argv0; *p != '\0'; p++) {
            if (*p == '/' || *p == '\\') {
                slash = p;
            }
        }
        if (slash == NULL) {
            path = apr_pstrdup(pool, exe);
        }
        else {
            path = apr_pstrcat(pool,
                               apr_pstrndup(pool, dkv_test_argv0,
                                            (apr_size_t)(slash + 1
                                                         - dkv_test_argv0)),
                               exe, NULL);
        }
    }
    return dkv_test_exists(path, pool) ? path : NULL;
}
