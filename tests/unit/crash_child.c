/*
 * crash_child.c -- helper program of the crash suite (test_crash.c), not
 * a test by itself.
 *
 *   crash_child PATH FIRST_ROUND [ROUNDS]
 *
 * Opens "inproc:PATH" (synced commits) and writes rounds of
 * CRASH_ROUND_KEYS keys "b<round>:<i>" whose values name their round,
 * starting at FIRST_ROUND: even rounds with one dkv_put_many(), odd rounds
 * with one transaction.  After each round that returned DKV_OK for every
 * key it prints "ACK <round>" on stdout and flushes.  The parent kills it
 * with SIGKILL at some point and checks that every acknowledged round is
 * complete and no round is half-applied.  Ends by itself after ROUNDS
 * rounds (default 200) or 30 seconds, printing "DONE".  Exit status: 0
 * done, 2 on a failed call (described on stderr).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_time.h>

#include <dkv.h>

#include "crash_child.h"

static int
fail(const char *what, dkv_status_t s)
{
    fprintf(stderr, "crash_child: %s: %s (%d) %s\n", what, dkv_strerror(s),
            s, dkv_last_error());
    return 2;
}

/* Writes round ROUND with one dkv_put_many(). */
static dkv_status_t
write_bulk(dkv_client_t *c, dkv_kv_t *kvs, dkv_result_t *res)
{
    dkv_status_t s = dkv_put_many(res, c, kvs, CRASH_ROUND_KEYS, NULL);
    int i;

    if (s != DKV_OK) {
        return s;
    }
    for (i = 0; i < CRASH_ROUND_KEYS; i++) {
        if (res[i].status != DKV_OK) {
            return res[i].status;
        }
    }
    return DKV_OK;
}

/* Writes round ROUND with one transaction. */
static dkv_status_t
write_txn(dkv_client_t *c, dkv_kv_t *kvs, apr_pool_t *pool)
{
    dkv_txn_t *t = NULL;
    dkv_status_t s = dkv_txn_begin(&t, c, pool);
    int i;

    if (s != DKV_OK) {
        return s;
    }
    for (i = 0; i < CRASH_ROUND_KEYS; i++) {
        s = dkv_txn_put(t, kvs[i].key, kvs[i].key_len, kvs[i].value,
                        kvs[i].value_len, NULL);
        if (s != DKV_OK) {
            dkv_txn_rollback(t);
            return s;
        }
    }
    return dkv_txn_commit(NULL, t);
}

int
main(int argc, const char *const *argv)
{
    apr_pool_t *pool, *iter;
    dkv_client_t *c = NULL;
    dkv_kv_t *kvs;
    dkv_result_t *res;
    dkv_status_t s;
    long first, rounds, r;
    apr_time_t deadline;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        return 2;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: crash_child PATH FIRST_ROUND [ROUNDS]\n");
        return 2;
    }
    first = strtol(argv[2], NULL, 10);
    rounds = argc > 3 ? strtol(argv[3], NULL, 10) : 200;
    apr_pool_create(&pool, NULL);
    apr_pool_create(&iter, pool);
    kvs = apr_palloc(pool, CRASH_ROUND_KEYS * sizeof *kvs);
    res = apr_palloc(pool, CRASH_ROUND_KEYS * sizeof *res);

    s = dkv_open(&c, apr_pstrcat(pool, "inproc:", argv[1], NULL), NULL,
                 pool);
    if (s != DKV_OK) {
        return fail("dkv_open", s);
    }
    deadline = apr_time_now() + apr_time_from_sec(30);
    for (r = first; r < first + rounds && apr_time_now() < deadline; r++) {
        int i;

        apr_pool_clear(iter);
        for (i = 0; i < CRASH_ROUND_KEYS; i++) {
            char *k = apr_psprintf(iter, CRASH_KEY_FMT, r, i);
            char *v = apr_psprintf(iter, CRASH_VALUE_FMT, r, i, i);

            kvs[i].key = k;
            kvs[i].key_len = strlen(k);
            kvs[i].value = v;
            kvs[i].value_len = strlen(v);
        }
        s = (r % 2 == 0) ? write_bulk(c, kvs, res)
                         : write_txn(c, kvs, iter);
        if (s != DKV_OK) {
            return fail(r % 2 == 0 ? "dkv_put_many" : "dkv_txn_commit", s);
        }
        printf("ACK %ld\n", r);
        fflush(stdout);
    }
    printf("DONE\n");
    fflush(stdout);
    dkv_close(c);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}
