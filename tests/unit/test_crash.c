/*
 * test_crash.c -- suite crash: a process killed (SIGKILL; TerminateProcess
 * on Windows) in the middle of writing loses nothing it acknowledged and
 * leaves no write half-applied.
 *
 * The parent starts crash_child (found by dkv_test_crash_child_path())
 * on a store directory, reads its "ACK <round>" lines, kills it at a
 * varying moment after a few acknowledgements, reopens the store and
 * checks every round: acknowledged rounds complete, other rounds complete
 * or absent, values belonging to their round.  Six kill cycles run on
 * the same store.  Every wait is bounded.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "apitest.h"
#include "crash_child.h"

#ifndef SIGKILL
#define SIGKILL 9
#endif

#define CYCLES 6
#define ACKS_BEFORE_KILL 2
#define CHILD_WAIT_MS 20000

/* Runs one child from round FIRST, kills it after some ACKs.  Returns the
 * last acknowledged round, or FIRST - 1 when none. */
static long
run_child(const char *child, const char *path, long first, int cycle,
          apr_pool_t *p)
{
    apr_procattr_t *attr;
    apr_proc_t proc;
    const char *args[5];
    long last = first - 1;
    int acks = 0, code = 0, done = 0;
    apr_exit_why_e why;
    int64_t deadline = at_mono_ms() + CHILD_WAIT_MS;
    char line[128];

    DKV_ASSERT_INT_EQ(apr_procattr_create(&attr, p), APR_SUCCESS);
    DKV_ASSERT_INT_EQ(apr_procattr_io_set(attr, APR_NO_PIPE,
                                          APR_CHILD_BLOCK, APR_NO_PIPE),
                      APR_SUCCESS);
    DKV_ASSERT_INT_EQ(apr_procattr_cmdtype_set(attr, APR_PROGRAM),
                      APR_SUCCESS);
    args[0] = child;
    args[1] = path;
    args[2] = apr_psprintf(p, "%ld", first);
    args[3] = "200";
    args[4] = NULL;
    DKV_ASSERT_INT_EQ(apr_proc_create(&proc, child, args, NULL, attr, p),
                      APR_SUCCESS);
    apr_file_pipe_timeout_set(proc.out, apr_time_from_msec(200));

    while (!done && acks < ACKS_BEFORE_KILL && at_mono_ms() < deadline) {
        apr_status_t rv = apr_file_gets(line, sizeof line, proc.out);

        if (rv == APR_SUCCESS) {
            if (strncmp(line, "ACK ", 4) == 0) {
                last = strtol(line + 4, NULL, 10);
                acks++;
            } else if (strncmp(line, "DONE", 4) == 0) {
                done = 1;
            }
        } else if (!APR_STATUS_IS_TIMEUP(rv) && !APR_STATUS_IS_EAGAIN(rv)) {
            break;      /* EOF: the child ended */
        }
    }
    /* Kill it at a varying moment of the next round (a synced round takes
     * some 20 ms here). */
    at_sleep_ms(cycle * 5);
    apr_proc_kill(&proc, SIGKILL);
    apr_proc_wait(&proc, &code, &why, APR_WAIT);
    /* Lines printed before the kill: more acknowledged rounds. */
    apr_file_pipe_timeout_set(proc.out, 0);
    while (apr_file_gets(line, sizeof line, proc.out) == APR_SUCCESS) {
        if (strncmp(line, "ACK ", 4) == 0) {
            last = strtol(line + 4, NULL, 10);
            acks++;
        }
    }
    apr_file_close(proc.out);
    DKV_EXPECT_TRUE(acks >= ACKS_BEFORE_KILL);
    if (acks < ACKS_BEFORE_KILL) {
        fprintf(stderr, "\n  crash_child: %d ACKs (exit %d, why %d)\n",
                acks, code, (int)why);
    }
    return last;
}

/* Checks rounds [0, upto) of the store at PATH: complete or absent, the
 * acknowledged ones (<= ACKED) complete.  Returns the number of the last
 * complete round, or -1. */
static long
check_store(const char *path, long upto, long acked, apr_pool_t *p)
{
    dkv_client_t *c = at_open(apr_pstrcat(p, "inproc:", path, NULL), NULL);
    long r, last_complete = -1;
    uint64_t total = 0, n, complete = 0;
    int half = 0, lost = 0, badval = 0;

    if (c == NULL) {
        CU_FAIL("the store does not reopen after the crash");
        return -1;
    }
    for (r = 0; r < upto; r++) {
        char prefix[32];
        dkv_range_t rg;

        snprintf(prefix, sizeof prefix, CRASH_PREFIX_FMT, r);
        rg = at_prefix(prefix);
        n = 0;
        AT_OK(dkv_count(&n, c, &rg));
        if (n == CRASH_ROUND_KEYS) {
            dkv_scan_opts_t so;
            dkv_page_t *pg = NULL;
            apr_pool_t *sp;
            size_t i;

            complete++;
            last_complete = r;
            /* Every value belongs to its round and key. */
            apr_pool_create(&sp, p);
            memset(&so, 0, sizeof so);
            so.limit = CRASH_ROUND_KEYS;
            AT_OK(dkv_scan(&pg, c, &rg, &so, sp));
            if (pg != NULL) {
                for (i = 0; i < pg->count; i++) {
                    char want[160];

                    snprintf(want, sizeof want, CRASH_VALUE_FMT, r,
                             (int)i, (int)i);
                    if (pg->items[i].value_len != strlen(want) ||
                        memcmp(pg->items[i].value, want,
                               strlen(want)) != 0) {
                        badval++;
                    }
                }
            }
            apr_pool_destroy(sp);
        } else if (n != 0) {
            fprintf(stderr, "\n  round %ld (%s) half-applied: %lu of %d"
                    " keys\n", r, r % 2 ? "txn" : "put_many",
                    (unsigned long)n, CRASH_ROUND_KEYS);
            half++;
        }
        if (r <= acked && n != CRASH_ROUND_KEYS) {
            fprintf(stderr, "\n  acknowledged round %ld has %lu keys\n", r,
                    (unsigned long)n);
            lost++;
        }
        total += n;
    }
    AT_OK(dkv_count(&n, c, NULL));
    DKV_EXPECT_UINT_EQ(n, total);
    DKV_EXPECT_UINT_EQ(total, complete * CRASH_ROUND_KEYS);
    DKV_EXPECT_INT_EQ(half, 0);
    DKV_EXPECT_INT_EQ(lost, 0);
    DKV_EXPECT_INT_EQ(badval, 0);
    /* Still writable. */
    AT_OK(at_put(NULL, c, "after-crash", "ok", NULL));
    AT_OK(at_del(NULL, c, "after-crash"));
    dkv_close(c);
    return last_complete;
}

static void
test_kill_during_writes(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *child = dkv_test_crash_child_path(p);
    const char *path;
    long next = 0, acked = -1;
    int cycle;

    if (child == NULL) {
        CU_FAIL("crash_child not found (set DKV_CRASH_CHILD)");
        apr_pool_destroy(p);
        return;
    }
    path = dkv_test_tempdir(p);
    for (cycle = 0; cycle < CYCLES; cycle++) {
        long last = run_child(child, path, next, cycle, p);
        long complete;

        if (last > acked) {
            acked = last;
        }
        /* Rounds beyond the last acknowledged one + 2 cannot exist; look
         * a little further anyway. */
        complete = check_store(path, acked + 10, acked, p);
        DKV_EXPECT_TRUE(complete >= acked);
        next = (complete > acked ? complete : acked) + 1;
    }
    apr_pool_destroy(p);
}

/* Registers the crash suite. */
void
test_crash_register(void)
{
    CU_pSuite s = dkv_test_add_suite("crash", NULL, NULL);

    DKV_TEST_ADD(s, test_kill_during_writes);
}
