/*
 * testutil.h -- what every unit test file includes: CUnit, the dkv API,
 * typed assertions that explain a failure (expression, got and expected
 * status with their dkv_strerror() texts, dkv_last_error()), fresh
 * temporary directories, and the path of the crash_child helper.
 *
 * A test file defines `void test_<name>_register(void)` (declared here
 * from tests/unit/suites.h), which adds its suites with
 * dkv_test_add_suite() and its tests with DKV_TEST_ADD().  The runner
 * (tests/unit/runner.c) calls every registrar listed in suites.h.
 *
 * DKV_ASSERT_* stop the current test on failure (CUnit fatal assertions);
 * DKV_EXPECT_* record the failure and carry on.
 */
#ifndef DKV_TESTUTIL_H
#define DKV_TESTUTIL_H

#include <stdint.h>
#include <string.h>

#include <apr_pools.h>
#include <apr_thread_proc.h>
#include <CUnit/CUnit.h>

#include "dkv.h"

/* One prototype per suite registrar, from the list in suites.h. */
#define DKV_SUITE(name) void test_##name##_register(void);
#include "suites.h"
#undef DKV_SUITE

/* ------------------------------------------------------------ registry */

/* Adds a suite named NAME with optional INIT and CLEANUP functions (CUnit
 * suite-level setup, may be NULL).  Aborts the runner on a registry error:
 * a broken registration is a bug in the test, not a test failure. */
CU_pSuite dkv_test_add_suite(const char *name, CU_InitializeFunc init,
                             CU_CleanupFunc cleanup);

/* Adds test function FN to SUITE under the name "FN"; aborts on error. */
#define DKV_TEST_ADD(suite, fn) dkv_test_add((suite), #fn, (fn))
void dkv_test_add(CU_pSuite suite, const char *name, CU_TestFunc fn);

/* -------------------------------------------------------------- status */

/* Writes "120001 DKV_ENOTFOUND (not found)" for STATUS into BUF (always
 * NUL-terminated) and returns BUF.  Unknown codes print their number and
 * dkv_strerror() text. */
const char *dkv_test_status_str(char *buf, size_t size, dkv_status_t status);

/* The symbolic name of a dkv status ("DKV_OK", "DKV_ECONFLICT") or NULL
 * for codes that are not dkv's own. */
const char *dkv_test_status_name(dkv_status_t status);

/* Implementation of the status assertions: records a CUnit assertion that
 * GOT equals EXPECTED and, on failure, prints the expression, both
 * statuses and dkv_last_error() to stderr and into the CUnit failure
 * record.  Returns 1 when they are equal. */
int dkv_test_check_status(dkv_status_t got, dkv_status_t expected,
                          const char *expr, const char *file,
                          unsigned line, int fatal);

/* EXPR must return DKV_OK. */
#define DKV_ASSERT_OK(expr) \
    ((void)dkv_test_check_status((expr), DKV_OK, #expr, __FILE__, \
                                 __LINE__, 1))
#define DKV_EXPECT_OK(expr) \
    ((void)dkv_test_check_status((expr), DKV_OK, #expr, __FILE__, \
                                 __LINE__, 0))

/* EXPR must return the status EXPECTED. */
#define DKV_ASSERT_STATUS(expr, expected) \
    ((void)dkv_test_check_status((expr), (expected), #expr, __FILE__, \
                                 __LINE__, 1))
#define DKV_EXPECT_STATUS(expr, expected) \
    ((void)dkv_test_check_status((expr), (expected), #expr, __FILE__, \
                                 __LINE__, 0))

/* ------------------------------------------------------- typed values */

/* Implementations of the value assertions below (same contract as
 * dkv_test_check_status). */
int dkv_test_check_int(int64_t got, int64_t expected, const char *expr,
                       const char *file, unsigned line, int fatal);
int dkv_test_check_uint(uint64_t got, uint64_t expected, const char *expr,
                        const char *file, unsigned line, int fatal);
int dkv_test_check_str(const char *got, const char *expected,
                       const char *expr, const char *file, unsigned line,
                       int fatal);
int dkv_test_check_mem(const void *got, size_t got_len,
                       const void *expected, size_t expected_len,
                       const char *expr, const char *file, unsigned line,
                       int fatal);
int dkv_test_check_true(int value, const char *expr, const char *file,
                        unsigned line, int fatal);

/* Signed and unsigned integers, printed in decimal on failure. */
#define DKV_ASSERT_INT_EQ(got, expected) \
    ((void)dkv_test_check_int((int64_t)(got), (int64_t)(expected), \
                              #got " == " #expected, __FILE__, __LINE__, 1))
#define DKV_EXPECT_INT_EQ(got, expected) \
    ((void)dkv_test_check_int((int64_t)(got), (int64_t)(expected), \
                              #got " == " #expected, __FILE__, __LINE__, 0))
#define DKV_ASSERT_UINT_EQ(got, expected) \
    ((void)dkv_test_check_uint((uint64_t)(got), (uint64_t)(expected), \
                               #got " == " #expected, __FILE__, __LINE__, \
                               1))
#define DKV_EXPECT_UINT_EQ(got, expected) \
    ((void)dkv_test_check_uint((uint64_t)(got), (uint64_t)(expected), \
                               #got " == " #expected, __FILE__, __LINE__, \
                               0))

/* NUL-terminated strings; NULL equals only NULL. */
#define DKV_ASSERT_STR_EQ(got, expected) \
    ((void)dkv_test_check_str((got), (expected), #got " == " #expected, \
                              __FILE__, __LINE__, 1))
#define DKV_EXPECT_STR_EQ(got, expected) \
    ((void)dkv_test_check_str((got), (expected), #got " == " #expected, \
                              __FILE__, __LINE__, 0))

/* Byte strings of given lengths (values, keys). */
#define DKV_ASSERT_MEM_EQ(got, got_len, expected, expected_len) \
    ((void)dkv_test_check_mem((got), (got_len), (expected), \
                              (expected_len), #got " == " #expected, \
                              __FILE__, __LINE__, 1))
#define DKV_EXPECT_MEM_EQ(got, got_len, expected, expected_len) \
    ((void)dkv_test_check_mem((got), (got_len), (expected), \
                              (expected_len), #got " == " #expected, \
                              __FILE__, __LINE__, 0))

/* Any condition; prints dkv_last_error() on failure. */
#define DKV_ASSERT_TRUE(cond) \
    ((void)dkv_test_check_true(!!(cond), #cond, __FILE__, __LINE__, 1))
#define DKV_EXPECT_TRUE(cond) \
    ((void)dkv_test_check_true(!!(cond), #cond, __FILE__, __LINE__, 0))
#define DKV_ASSERT_NOT_NULL(ptr) \
    ((void)dkv_test_check_true((ptr) != NULL, #ptr " != NULL", __FILE__, \
                               __LINE__, 1))
#define DKV_ASSERT_NULL(ptr) \
    ((void)dkv_test_check_true((ptr) == NULL, #ptr " == NULL", __FILE__, \
                               __LINE__, 1))

/* --------------------------------------------------- pools and files */

/* The runner's root pool; the first call initializes APR and makes it.
 * Tests make subpools of it and destroy them; whatever a failed test
 * leaves behind is freed (and its temporary directories removed) by
 * dkv_test_shutdown(), which the runner calls before it exits. */
apr_pool_t *dkv_test_root_pool(void);
void dkv_test_shutdown(void);

/* A new subpool of the root pool; fatal assertion on failure. */
apr_pool_t *dkv_test_pool(void);

/* Makes a fresh, empty directory and returns its absolute path, allocated
 * in POOL.  It lies under $DKV_TEST_TMPDIR when set, else under the
 * system's temporary directory (TMPDIR, TMP, TEMP).  Destroying or
 * clearing POOL removes the directory and everything in it, unless
 * $DKV_TEST_KEEP is set (then its path is printed, for debugging).
 * Fatal assertion on failure. */
const char *dkv_test_tempdir(apr_pool_t *pool);

/* Removes PATH and everything under it.  A missing PATH is success.
 * Returns an APR status. */
apr_status_t dkv_test_rmtree(const char *path, apr_pool_t *pool);

/* 1 when PATH exists (file or directory), else 0. */
int dkv_test_exists(const char *path, apr_pool_t *pool);

/* ------------------------------------------------------------- threads */

/* Waits for THREAD (made by apr_thread_create) to end and releases it.
 * Thread functions in the tests end with a plain return, not
 * apr_thread_exit (pthread_exit has produced false AddressSanitizer
 * reports on Linux).  APR on Unix joins such a thread with APR_SUCCESS
 * and exit status 0, but APR on Windows returns APR_INCOMPLETE ("the
 * thread did not call apr_thread_exit") after joining it all the same;
 * this helper takes both as success.  *RETVAL (may be NULL) receives the
 * status given to apr_thread_exit, or APR_SUCCESS after a plain return.
 * Returns APR_SUCCESS, or the failure of the join itself. */
apr_status_t dkv_test_thread_join(apr_status_t *retval,
                                  apr_thread_t *thread);

/* ------------------------------------------------------------ programs */

/* argv[0] of the runner, set by main(). */
extern const char *dkv_test_argv0;

/* Path of the crash_child helper program: $DKV_CRASH_CHILD when set, else
 * "crash_child" (plus ".exe" on Windows) beside the runner.  Allocated in
 * POOL; NULL when no such file exists. */
const char *dkv_test_crash_child_path(apr_pool_t *pool);

#endif /* DKV_TESTUTIL_H */
