/*
 * runner.c -- the one CUnit runner for every unit-test suite.
 *
 * Registers the suites listed in suites.h, runs them with CUnit's basic
 * interface in verbose mode (its "Run Summary" block ends the output) and
 * exits non-zero when anything failed, so the automake harness and CI see
 * the result.
 *
 *   runner                 run every suite
 *   runner SUITE [TEST]    run the suites named SUITE or starting with
 *                          "SUITE_" (engine runs engine_kv, engine_ttl...),
 *                          optionally only their test named TEST
 *   runner --list          list suites and tests
 */
#include <stdio.h>
#include <string.h>

#include <apr_general.h>
#include <CUnit/Basic.h>

#include "testutil.h"
#include "testnode.h"

/* Each registrar adds one test file's suites (prototypes in testutil.h). */
static void (*const registrars[])(void) = {
#define DKV_SUITE(name) test_##name##_register,
#include "suites.h"
#undef DKV_SUITE
};

/* 1 when suite NAME is selected by FILTER: equal, or FILTER "_" prefix. */
static int
suite_matches(const char *name, const char *filter)
{
    size_t n = strlen(filter);

    return strcmp(name, filter) == 0
           || (strncmp(name, filter, n) == 0 && name[n] == '_');
}

static void
list_tests(void)
{
    CU_pSuite suite;
    CU_pTest test;

    for (suite = CU_get_registry()->pSuite; suite; suite = suite->pNext) {
        printf("%s\n", suite->pName);
        for (test = suite->pTest; test; test = test->pNext) {
            printf("  %s\n", test->pName);
        }
    }
}

/* Deactivates what FILTER and TEST_NAME do not select; returns the number
 * of selected tests. */
static unsigned
select_tests(const char *filter, const char *test_name)
{
    CU_pSuite suite;
    CU_pTest test;
    unsigned selected = 0;

    for (suite = CU_get_registry()->pSuite; suite; suite = suite->pNext) {
        int on = suite_matches(suite->pName, filter);

        CU_set_suite_active(suite, on ? CU_TRUE : CU_FALSE);
        for (test = suite->pTest; test; test = test->pNext) {
            int t_on = on && (test_name == NULL
                              || strcmp(test->pName, test_name) == 0);

            CU_set_test_active(test, t_on ? CU_TRUE : CU_FALSE);
            selected += t_on ? 1u : 0u;
        }
    }
    return selected;
}

int
main(int argc, char **argv)
{
    CU_ErrorCode run_rv;
    unsigned failed;
    size_t i;

    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 0 && argv[0] != NULL) {
        dkv_test_argv0 = argv[0];
    }
    (void)dkv_test_root_pool(); /* initializes APR */

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "runner: %s\n", CU_get_error_msg());
        return 2;
    }
    for (i = 0; i < sizeof(registrars) / sizeof(registrars[0]); i++) {
        registrars[i]();
    }

    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        list_tests();
        CU_cleanup_registry();
        dkv_test_shutdown();
        return 0;
    }
    if (argc > 1) {
        if (select_tests(argv[1], argc > 2 ? argv[2] : NULL) == 0) {
            fprintf(stderr, "runner: no test matches \"%s%s%s\"; these "
                    "exist:\n", argv[1], argc > 2 ? " " : "",
                    argc > 2 ? argv[2] : "");
            list_tests();
            CU_cleanup_registry();
            dkv_test_shutdown();
            return 2;
        }
        /* What the filter skipped is not a failure. */
        CU_set_fail_on_inactive(CU_FALSE);
    }

    CU_basic_set_mode(CU_BRM_VERBOSE);
    run_rv = CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed()
             + CU_get_number_of_suites_failed()
             + (CU_get_number_of_failures() != 0 ? 1u : 0u)
             + (run_rv != CUE_SUCCESS ? 1u : 0u);
    if (dkv_test_skipped() != 0) {
        printf("\n%u tests skipped themselves (remote mode)\n",
               dkv_test_skipped());
    }
    printf("\n");
    CU_cleanup_registry();
    dkv_test_shutdown();
    return failed == 0 ? 0 : 1;
}
