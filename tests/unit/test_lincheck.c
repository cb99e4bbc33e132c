/*
 * test_lincheck.c -- suite `lincheck`: the linearizability checker of
 * tests/lincheck/lincheck.h (docs/internals/histories.md).
 *
 * Small hand-made histories, linearizable and not, pin down the model:
 * real-time order, concurrent writes, unknown and failed outcomes,
 * initial values, deletes, cas, several keys.  Then random histories are
 * simulated from a real register (many clients, random overlaps, unknown
 * outcomes whose effect may land after the client gave up): the checker
 * must accept every one, and must reject each again after one read is
 * made stale (it returns a value that was overwritten, by a write that
 * completed, before the read was invoked).  Finally the JSON lines output
 * is read back and the search's time bound is shown to hold.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>

#include "testutil.h"
#include "tests/lincheck/lincheck.h"

/* ------------------------------------------------------------- helpers */

#define K "k"

/* Records a whole operation on key "k" (VALUE: written, or read; NULL is
 * absent). */
static size_t
op_at(lincheck_history_t *h, unsigned client, lincheck_kind_t kind,
      const char *key, const char *value, int64_t t0, int64_t t1,
      lincheck_outcome_t outcome)
{
    size_t id;

    if (kind == LINCHECK_READ)
        id = lincheck_invoke(h, client, kind, key, strlen(key), NULL, 0,
                             t0);
    else
        id = lincheck_invoke(h, client, kind, key, strlen(key), value,
                             value ? strlen(value) : 0, t0);
    CU_ASSERT_FATAL(id != LINCHECK_NO_OP);
    if (t1 >= 0)
        lincheck_complete(h, id, outcome, value,
                          value ? strlen(value) : 0, t1);
    return id;
}

static void
w(lincheck_history_t *h, unsigned c, const char *v, int64_t t0, int64_t t1)
{
    op_at(h, c, LINCHECK_WRITE, K, v, t0, t1, LINCHECK_OK);
}

static void
r(lincheck_history_t *h, unsigned c, const char *v, int64_t t0, int64_t t1)
{
    op_at(h, c, LINCHECK_READ, K, v, t0, t1, LINCHECK_OK);
}

/* Checks H, expects VERDICT, prints the report when it differs, and
 * destroys H. */
static void
expect_verdict(lincheck_history_t *h, int verdict, const char *what)
{
    lincheck_report_t rep;
    int got = lincheck_check(h, &rep, 10000);

    if (got != verdict)
        fprintf(stderr, "\n  %s: verdict %d, expected %d: %s\n", what, got,
                verdict, rep.message);
    DKV_EXPECT_INT_EQ(got, verdict);
    DKV_EXPECT_INT_EQ(rep.verdict, got);
    lincheck_history_destroy(h);
}

static lincheck_history_t *
new_history(void)
{
    lincheck_history_t *h;

    (void)dkv_test_root_pool();         /* APR initialized */
    h = lincheck_history_create();
    DKV_ASSERT_NOT_NULL(h);
    return h;
}

/* -------------------------------------------------- linearizable ones */

static void
sequential_histories(void)
{
    lincheck_history_t *h = new_history();

    r(h, 1, NULL, 0, 5);                /* initially absent */
    w(h, 1, "a", 10, 20);
    r(h, 2, "a", 30, 40);
    w(h, 2, "b", 50, 60);
    r(h, 1, "b", 70, 80);
    r(h, 3, "b", 90, 100);
    op_at(h, 3, LINCHECK_WRITE, K, NULL, 110, 120, LINCHECK_OK);
    r(h, 1, NULL, 130, 140);            /* deleted */
    DKV_EXPECT_UINT_EQ(lincheck_history_count(h), 8);
    expect_verdict(h, LINCHECK_OK, "sequential");

    /* an empty history, and one of failed operations only */
    h = new_history();
    expect_verdict(h, LINCHECK_OK, "empty");
    h = new_history();
    op_at(h, 1, LINCHECK_WRITE, K, "x", 0, 10, LINCHECK_FAIL);
    op_at(h, 1, LINCHECK_READ, K, "nonsense", 20, 30, LINCHECK_FAIL);
    r(h, 2, NULL, 40, 50);
    expect_verdict(h, LINCHECK_OK, "failed write, failed read");
}

static void
concurrent_histories(void)
{
    lincheck_history_t *h = new_history();

    /* b is written inside a's interval and read; a lands later */
    w(h, 1, "a", 0, 100);
    w(h, 2, "b", 10, 50);
    r(h, 3, "b", 20, 60);
    r(h, 3, "a", 70, 110);
    r(h, 4, "a", 120, 130);
    expect_verdict(h, LINCHECK_OK, "overlapping writes");

    /* a read overlapping a write may see the old value or the new */
    h = new_history();
    w(h, 1, "a", 0, 10);
    w(h, 1, "b", 20, 40);
    r(h, 2, "a", 25, 30);
    r(h, 3, "b", 26, 31);
    r(h, 4, "a", 27, 45);               /* also old: placed before b */
    expect_verdict(h, LINCHECK_OK, "read overlapping a write");

    /* touching intervals (one returns when the other is invoked) count
     * as concurrent */
    h = new_history();
    w(h, 1, "a", 0, 10);
    w(h, 2, "b", 10, 20);
    r(h, 3, "a", 20, 30);
    expect_verdict(h, LINCHECK_OK, "equal times");

    /* cas */
    h = new_history();
    op_at(h, 1, LINCHECK_READ, K, NULL, 0, 5, LINCHECK_OK);
    CU_ASSERT(lincheck_invoke_cas(h, 1, K, 1, NULL, 0, "a", 1, 10) == 1);
    lincheck_complete(h, 1, LINCHECK_OK, NULL, 0, 20);
    CU_ASSERT(lincheck_invoke_cas(h, 2, K, 1, "a", 1, "b", 1, 15) == 2);
    lincheck_complete(h, 2, LINCHECK_OK, NULL, 0, 40);
    CU_ASSERT(lincheck_invoke_cas(h, 3, K, 1, "x", 1, "c", 1, 15) == 3);
    lincheck_complete(h, 3, LINCHECK_FAIL, NULL, 0, 40);
    r(h, 3, "b", 50, 60);
    expect_verdict(h, LINCHECK_OK, "cas chain");
}

static void
unknown_outcomes(void)
{
    lincheck_history_t *h = new_history();

    /* an unknown write that took effect long after its client gave up */
    w(h, 1, "a", 0, 10);
    op_at(h, 2, LINCHECK_WRITE, K, "b", 20, 30, LINCHECK_UNKNOWN);
    r(h, 3, "a", 40, 50);
    w(h, 1, "c", 60, 70);
    r(h, 3, "c", 80, 90);
    r(h, 4, "b", 100, 110);
    expect_verdict(h, LINCHECK_OK, "unknown write, late effect");

    /* one that never took effect, and one never completed */
    h = new_history();
    w(h, 1, "a", 0, 10);
    op_at(h, 2, LINCHECK_WRITE, K, "b", 20, 30, LINCHECK_UNKNOWN);
    op_at(h, 3, LINCHECK_WRITE, K, "c", 25, -1, LINCHECK_OK);
    r(h, 4, "a", 40, 50);
    r(h, 4, "a", 60, 70);
    expect_verdict(h, LINCHECK_OK, "unknown writes without effect");

    /* a pending write seen by a reader */
    h = new_history();
    w(h, 1, "a", 0, 10);
    op_at(h, 3, LINCHECK_WRITE, K, "c", 25, -1, LINCHECK_OK);
    r(h, 4, "c", 40, 50);
    r(h, 4, "c", 60, 70);
    expect_verdict(h, LINCHECK_OK, "pending write seen");

    /* values written twice: the unknown write keeps an open end */
    h = new_history();
    w(h, 1, "a", 0, 10);
    w(h, 1, "b", 20, 30);
    op_at(h, 2, LINCHECK_WRITE, K, "a", 25, 26, LINCHECK_UNKNOWN);
    r(h, 3, "a", 40, 50);
    r(h, 3, "a", 60, 70);
    expect_verdict(h, LINCHECK_OK, "repeated value, unknown");

    /* ... but it cannot take effect before it was invoked */
    h = new_history();
    w(h, 1, "a", 0, 10);
    w(h, 1, "b", 20, 30);
    r(h, 3, "a", 40, 50);
    op_at(h, 2, LINCHECK_WRITE, K, "a", 60, 70, LINCHECK_UNKNOWN);
    expect_verdict(h, LINCHECK_VIOLATION, "repeated value, too late");

    /* an unknown write seen, then overwritten, is not seen again */
    h = new_history();
    w(h, 1, "a", 0, 10);
    op_at(h, 2, LINCHECK_WRITE, K, "b", 20, 30, LINCHECK_UNKNOWN);
    r(h, 3, "b", 40, 50);
    w(h, 1, "c", 60, 70);
    r(h, 3, "b", 80, 90);
    expect_verdict(h, LINCHECK_VIOLATION, "unknown write seen twice");

    /* unknown reads are ignored */
    h = new_history();
    w(h, 1, "a", 0, 10);
    op_at(h, 2, LINCHECK_READ, K, "zzz", 20, 30, LINCHECK_UNKNOWN);
    r(h, 2, "a", 40, 50);
    expect_verdict(h, LINCHECK_OK, "unknown read");
}

static void
initial_values_and_keys(void)
{
    lincheck_history_t *h = new_history();
    lincheck_report_t rep;

    CU_ASSERT(lincheck_history_init(h, K, 1, "x", 1) == 0);
    r(h, 1, "x", 0, 10);
    DKV_EXPECT_UINT_EQ(lincheck_history_count(h), 1);
    expect_verdict(h, LINCHECK_OK, "initial value");

    h = new_history();
    r(h, 1, "x", 0, 10);
    expect_verdict(h, LINCHECK_VIOLATION, "no initial value");

    /* keys are independent registers; the report names the bad one */
    h = new_history();
    op_at(h, 1, LINCHECK_WRITE, "one", "a", 0, 10, LINCHECK_OK);
    op_at(h, 2, LINCHECK_WRITE, "two", "b", 0, 10, LINCHECK_OK);
    op_at(h, 1, LINCHECK_READ, "one", "a", 20, 30, LINCHECK_OK);
    op_at(h, 2, LINCHECK_READ, "two", NULL, 20, 30, LINCHECK_OK);
    op_at(h, 3, LINCHECK_READ, "three", NULL, 20, 30, LINCHECK_OK);
    DKV_EXPECT_INT_EQ(lincheck_check(h, &rep, 0), LINCHECK_VIOLATION);
    DKV_EXPECT_STR_EQ(rep.key, "\"two\"");
    DKV_EXPECT_UINT_EQ(rep.keys, 3);
    DKV_EXPECT_UINT_EQ(rep.keys_violated, 1);
    DKV_EXPECT_UINT_EQ(rep.ops, 5);
    DKV_EXPECT_TRUE(strstr(rep.message, "two") != NULL);
    lincheck_history_destroy(h);

    /* a bad op id makes the history unusable */
    h = new_history();
    w(h, 1, "a", 0, 10);
    lincheck_complete(h, 7, LINCHECK_OK, NULL, 0, 10);
    lincheck_complete(h, LINCHECK_NO_OP, LINCHECK_OK, NULL, 0, 10);
    expect_verdict(h, LINCHECK_ERROR, "bad op id");
    lincheck_history_destroy(NULL);
}

/* -------------------------------------------------- violations */

static void
violations(void)
{
    lincheck_history_t *h = new_history();
    lincheck_report_t rep;

    /* stale read after a completed write */
    w(h, 1, "a", 0, 10);
    w(h, 1, "b", 20, 30);
    r(h, 2, "a", 40, 50);
    DKV_EXPECT_INT_EQ(lincheck_check(h, &rep, 0), LINCHECK_VIOLATION);
    DKV_EXPECT_TRUE(strstr(rep.message, "#2 client 2: read -> \"a\"")
                    != NULL);
    DKV_EXPECT_TRUE(strstr(rep.message, "#1 client 1: write \"b\"")
                    != NULL);
    lincheck_history_destroy(h);

    /* a value never written; one only written by a failed write */
    h = new_history();
    w(h, 1, "a", 0, 10);
    r(h, 2, "q", 20, 30);
    DKV_EXPECT_INT_EQ(lincheck_check(h, &rep, 0), LINCHECK_VIOLATION);
    DKV_EXPECT_TRUE(strstr(rep.message, "no write") != NULL);
    lincheck_history_destroy(h);
    h = new_history();
    op_at(h, 1, LINCHECK_WRITE, K, "a", 0, 10, LINCHECK_FAIL);
    r(h, 2, "a", 20, 30);
    expect_verdict(h, LINCHECK_VIOLATION, "failed write seen");

    /* a read before the write it returns was invoked */
    h = new_history();
    r(h, 2, "a", 0, 10);
    w(h, 1, "a", 20, 30);
    expect_verdict(h, LINCHECK_VIOLATION, "read from the future");
    h = new_history();
    r(h, 2, "a", 0, 10);
    op_at(h, 1, LINCHECK_WRITE, K, "a", 20, 30, LINCHECK_UNKNOWN);
    expect_verdict(h, LINCHECK_VIOLATION, "unknown read from the future");

    /* two readers see two concurrent writes in opposite orders */
    h = new_history();
    w(h, 1, "a", 0, 200);
    w(h, 2, "b", 0, 200);
    r(h, 3, "a", 10, 20);
    r(h, 3, "b", 30, 40);
    r(h, 4, "b", 10, 20);
    r(h, 4, "a", 30, 40);
    expect_verdict(h, LINCHECK_VIOLATION, "opposite orders");

    /* a value read again after it was overwritten and read over */
    h = new_history();
    w(h, 1, "a", 0, 10);
    w(h, 2, "b", 5, 100);
    r(h, 3, "b", 20, 30);
    r(h, 4, "a", 40, 50);
    expect_verdict(h, LINCHECK_VIOLATION, "new then old");

    /* cas whose compare cannot hold */
    h = new_history();
    w(h, 1, "a", 0, 10);
    w(h, 1, "b", 20, 30);
    CU_ASSERT(lincheck_invoke_cas(h, 2, K, 1, "a", 1, "c", 1, 40) == 2);
    lincheck_complete(h, 2, LINCHECK_OK, NULL, 0, 50);
    expect_verdict(h, LINCHECK_VIOLATION, "cas on an old value");

    /* a deleted key read as present */
    h = new_history();
    w(h, 1, "a", 0, 10);
    op_at(h, 1, LINCHECK_WRITE, K, NULL, 20, 30, LINCHECK_OK);
    r(h, 2, "a", 40, 50);
    expect_verdict(h, LINCHECK_VIOLATION, "read after delete");
}

/* -------------------------------------------------- random histories */

/* A small deterministic generator (xorshift64*). */
static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static unsigned
rnd_below(uint64_t *s, unsigned n)
{
    return (unsigned)(rnd(s) >> 33) % n;
}

typedef struct sim_op {
    unsigned client;
    int kind;                   /* LINCHECK_WRITE or LINCHECK_READ */
    unsigned key;
    int outcome;                /* outcome; -1: never completed */
    int applied;                /* a write took effect */
    int64_t t0, t1, tl;         /* invoke, complete, linearization */
    char value[24];             /* written or read; "" absent */
    int absent;
} sim_op_t;

#define SIM_MAX 6000

static sim_op_t sim[SIM_MAX];
static size_t sim_order[SIM_MAX];

static int
sim_tl_cmp(const void *a, const void *b)
{
    const sim_op_t *x = &sim[*(const size_t *)a];
    const sim_op_t *y = &sim[*(const size_t *)b];

    if (x->tl != y->tl)
        return x->tl < y->tl ? -1 : 1;
    return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* Simulates CLIENTS clients doing N operations in all on NKEYS registers,
 * each op taking effect at a random instant of its interval (an unknown
 * write: maybe, maybe later).  VALUES 0 makes every written value
 * unique, else values come from a set of VALUES. */
static size_t
simulate(uint64_t seed, unsigned clients, size_t n, unsigned nkeys,
         unsigned values)
{
    int64_t now[64];
    char state[8][24];
    int state_absent[8];
    unsigned seq = 0, c;
    size_t i;
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;

    CU_ASSERT_FATAL(n <= SIM_MAX && clients <= 64 && nkeys <= 8);
    for (c = 0; c < clients; c++)
        now[c] = rnd_below(&s, 50);
    for (i = 0; i < n; i++) {
        sim_op_t *o = &sim[i];
        unsigned roll = rnd_below(&s, 100);
        int64_t dur;

        /* the client furthest behind goes next: invocations in order */
        c = 0;
        for (unsigned k = 1; k < clients; k++)
            if (now[k] < now[c])
                c = k;
        memset(o, 0, sizeof(*o));
        o->client = c;
        o->key = rnd_below(&s, nkeys);
        o->kind = rnd_below(&s, 2) ? LINCHECK_WRITE : LINCHECK_READ;
        o->t0 = now[c] + rnd_below(&s, 20);
        dur = 1 + (rnd_below(&s, 10) ? rnd_below(&s, 100)
                   : rnd_below(&s, 2000));
        o->t1 = o->t0 + dur;
        o->tl = o->t0 + rnd_below(&s, (unsigned)dur + 1);
        o->outcome = roll < 80 ? LINCHECK_OK : roll < 88 ? LINCHECK_FAIL
                     : roll < 97 ? LINCHECK_UNKNOWN : -1;
        if (o->kind == LINCHECK_WRITE) {
            if (values)
                snprintf(o->value, sizeof(o->value), "v%u",
                         rnd_below(&s, values));
            else
                snprintf(o->value, sizeof(o->value), "c%u-%u", c, seq++);
            o->applied = o->outcome == LINCHECK_OK
                         || (o->outcome != LINCHECK_FAIL
                             && rnd_below(&s, 2));
            if (o->outcome != LINCHECK_OK)
                o->tl = o->t0 + rnd_below(&s, 3 * (unsigned)dur + 1);
        }
        now[c] = o->t1;
        sim_order[i] = i;
    }
    /* run the operations in linearization order on the registers */
    qsort(sim_order, n, sizeof(*sim_order), sim_tl_cmp);
    memset(state, 0, sizeof(state));
    for (c = 0; c < nkeys; c++)
        state_absent[c] = 1;
    for (i = 0; i < n; i++) {
        sim_op_t *o = &sim[sim_order[i]];

        if (o->kind == LINCHECK_WRITE && o->applied) {
            memcpy(state[o->key], o->value, sizeof(o->value));
            state_absent[o->key] = 0;
        } else if (o->kind == LINCHECK_READ) {
            if (o->outcome == LINCHECK_OK) {
                memcpy(o->value, state[o->key], sizeof(o->value));
                o->absent = state_absent[o->key];
            } else {
                snprintf(o->value, sizeof(o->value), "garbage%u",
                         rnd_below(&s, 1000));
            }
        }
    }
    return n;
}

/* The simulated history as a lincheck history. */
static lincheck_history_t *
sim_history(size_t n)
{
    lincheck_history_t *h = new_history();
    size_t i;

    for (i = 0; i < n; i++) {
        const sim_op_t *o = &sim[i];
        char key[8];
        size_t id;

        snprintf(key, sizeof(key), "key%u", o->key);
        id = lincheck_invoke(h, o->client, (lincheck_kind_t)o->kind, key,
                             strlen(key), o->value, strlen(o->value),
                             o->t0);
        CU_ASSERT_FATAL(id == i);
        if (o->outcome >= 0)
            lincheck_complete(h, id, (lincheck_outcome_t)o->outcome,
                              o->absent ? NULL : o->value,
                              strlen(o->value), o->t1);
    }
    return h;
}

/* Makes one completed read stale: it returns the value of a write W1
 * that completed before a write W2 (same key, both ok) which completed
 * before the read was invoked.  Returns the read's index or -1. */
static long
inject_stale(uint64_t seed, size_t n)
{
    uint64_t s = seed + 12345;
    unsigned tries;

    for (tries = 0; tries < 200; tries++) {
        size_t ri = rnd_below(&s, (unsigned)n), j, k;
        sim_op_t *rd = &sim[ri];

        if (rd->kind != LINCHECK_READ || rd->outcome != LINCHECK_OK)
            continue;
        for (j = rnd_below(&s, (unsigned)n), k = 0; k < n;
             k++, j = (j + 1) % n) {
            const sim_op_t *w2 = &sim[j];
            size_t i1;

            if (w2->kind != LINCHECK_WRITE || w2->outcome != LINCHECK_OK
                || w2->key != rd->key || w2->t1 >= rd->t0)
                continue;
            for (i1 = 0; i1 < n; i1++) {
                const sim_op_t *w1 = &sim[i1];

                if (w1->kind == LINCHECK_WRITE
                    && w1->outcome == LINCHECK_OK && w1->key == rd->key
                    && w1->t1 < w2->t0) {
                    memcpy(rd->value, w1->value, sizeof(rd->value));
                    rd->absent = 0;
                    return (long)ri;
                }
            }
        }
    }
    return -1;
}

static void
random_histories_and_stale_reads(void)
{
    uint64_t seed;
    unsigned injected = 0;
    apr_time_t start = apr_time_now();

    for (seed = 1; seed <= 150; seed++) {
        lincheck_report_t rep;
        unsigned clients = 2 + (unsigned)(seed % 39);
        size_t n = simulate(seed, clients, 300 + (size_t)(seed % 7) * 100,
                            1 + (unsigned)(seed % 3), 0);
        lincheck_history_t *h = sim_history(n);
        long bad;
        int v;

        v = lincheck_check(h, &rep, 20000);
        if (v != LINCHECK_OK)
            fprintf(stderr, "\n  seed %lu: %s\n", (unsigned long)seed,
                    rep.message);
        DKV_EXPECT_INT_EQ(v, LINCHECK_OK);
        DKV_EXPECT_UINT_EQ(rep.ops, n);
        lincheck_history_destroy(h);

        bad = inject_stale(seed, n);
        if (bad < 0)
            continue;
        injected++;
        h = sim_history(n);
        v = lincheck_check(h, &rep, 20000);
        if (v != LINCHECK_VIOLATION)
            fprintf(stderr, "\n  seed %lu, stale read #%ld: %s\n",
                    (unsigned long)seed, bad, rep.message);
        DKV_EXPECT_INT_EQ(v, LINCHECK_VIOLATION);
        lincheck_history_destroy(h);
        if (apr_time_now() - start > apr_time_from_sec(60))
            break;
    }
    DKV_EXPECT_TRUE(injected >= 100);
}

static void
random_histories_repeated_values(void)
{
    uint64_t seed;
    apr_time_t start = apr_time_now();

    /* few distinct values: unknown writes stay uncertain; the search
     * must still accept every simulated history */
    for (seed = 100; seed < 200; seed++) {
        lincheck_report_t rep;
        size_t n = simulate(seed, 2 + (unsigned)(seed % 6), 200, 1,
                            2 + (unsigned)(seed % 4));
        lincheck_history_t *h = sim_history(n);
        int v = lincheck_check(h, &rep, 20000);

        if (v != LINCHECK_OK)
            fprintf(stderr, "\n  seed %lu: %s\n", (unsigned long)seed,
                    rep.message);
        DKV_EXPECT_INT_EQ(v, LINCHECK_OK);
        lincheck_history_destroy(h);
        if (apr_time_now() - start > apr_time_from_sec(60))
            break;
    }
}

static void
large_history_is_fast(void)
{
    lincheck_report_t rep;
    apr_time_t start = apr_time_now();
    size_t n = simulate(7, 40, SIM_MAX, 1, 0);
    lincheck_history_t *h = sim_history(n);
    int v = lincheck_check(h, &rep, 30000);

    if (v != LINCHECK_OK)
        fprintf(stderr, "\n  %s\n", rep.message);
    DKV_EXPECT_INT_EQ(v, LINCHECK_OK);
    DKV_EXPECT_TRUE(apr_time_now() - start < apr_time_from_sec(10));
    lincheck_history_destroy(h);

    /* and with a stale read */
    CU_ASSERT(inject_stale(7, n) >= 0);
    h = sim_history(n);
    DKV_EXPECT_INT_EQ(lincheck_check(h, &rep, 30000), LINCHECK_VIOLATION);
    lincheck_history_destroy(h);
}

/* 40 concurrent writes of two values, and a delete, all read during
 * the writes; then x read again, then absent: the delete should come
 * last but returned long before.  Every set of the interchangeable
 * writes is a different configuration, far too many to try: the bound
 * must hold. */
static void
search_is_bounded(void)
{
    lincheck_history_t *h = new_history();
    lincheck_report_t rep;
    apr_time_t start = apr_time_now();
    unsigned i;

    for (i = 0; i < 40; i++)
        w(h, i, i % 2 ? "x" : "y", (int64_t)i, 1000);
    op_at(h, 40, LINCHECK_WRITE, K, NULL, 0, 1000, LINCHECK_OK);
    r(h, 41, "x", 0, 1000);
    r(h, 42, "y", 0, 1000);
    r(h, 43, "x", 2000, 2010);
    r(h, 43, NULL, 3000, 3010);
    DKV_EXPECT_INT_EQ(lincheck_check(h, &rep, 300), LINCHECK_TIMEOUT);
    DKV_EXPECT_UINT_EQ(rep.keys_timeout, 1);
    DKV_EXPECT_TRUE(strstr(rep.message, "undecided") != NULL);
    DKV_EXPECT_TRUE(apr_time_now() - start < apr_time_from_sec(5));
    lincheck_history_destroy(h);
}

/* ------------------------------------------ against brute force */

/* A tiny history for the brute-force checker. */
typedef struct tiny_op {
    int kind;
    int outcome;
    int in, expect, out;        /* 0 absent, else "a".."g" */
    int64_t t0, t1;
} tiny_op_t;

/* 1 when some order of the ops not in USED (all certain ones, any of
 * the unknown ones) fits from register value STATE. */
static int
tiny_fits(const tiny_op_t *ops, unsigned n, unsigned used, int state)
{
    unsigned i, j, left = 0;

    for (i = 0; i < n; i++)
        if (!(used & (1u << i)) && ops[i].outcome == LINCHECK_OK)
            left++;
    if (!left)
        return 1;
    for (i = 0; i < n; i++) {
        const tiny_op_t *o = &ops[i];
        int next = state, blocked = 0;

        if (used & (1u << i))
            continue;
        /* an op that must come first: completed before o was invoked */
        for (j = 0; j < n; j++)
            if (j != i && !(used & (1u << j))
                && ops[j].outcome == LINCHECK_OK && ops[j].t1 < o->t0)
                blocked = 1;
        if (blocked)
            continue;
        if (o->kind == LINCHECK_READ && o->out != state)
            continue;
        if (o->kind == LINCHECK_CAS && o->expect != state)
            continue;
        if (o->kind != LINCHECK_READ)
            next = o->in;
        if (tiny_fits(ops, n, used | (1u << i), next))
            return 1;
    }
    return 0;
}

static void
agrees_with_brute_force(void)
{
    static const char *const vals[] = { NULL, "a", "b", "c", "d", "e",
                                        "f", "g" };
    uint64_t s = 99;
    unsigned round, yes = 0, no = 0;

    for (round = 0; round < 20000; round++) {
        tiny_op_t ops[8];
        unsigned n = 2 + rnd_below(&s, 7), i, used = 0;
        lincheck_history_t *h = new_history();
        lincheck_report_t rep;
        int want, got;
        int64_t now[3] = { 0, 0, 0 };
        /* few values (cas and repeats), or many (mostly unique) */
        unsigned nv = round % 2 ? 4 : 8;

        for (i = 0; i < n; i++) {
            tiny_op_t *o = &ops[i];
            unsigned c = rnd_below(&s, 3), roll = rnd_below(&s, 10);
            size_t id;

            o->kind = 1 + (int)rnd_below(&s, 3);
            o->in = (int)rnd_below(&s, nv);
            o->expect = (int)rnd_below(&s, nv);
            /* mostly a value some op of this round writes */
            o->out = i && rnd_below(&s, 4) ? ops[rnd_below(&s, i)].in
                     : (int)rnd_below(&s, nv);
            o->t0 = now[c] + rnd_below(&s, 4);
            o->t1 = o->t0 + rnd_below(&s, 8);
            now[c] = o->t1 + rnd_below(&s, 2);
            o->outcome = roll < 7 ? LINCHECK_OK : roll < 8 ? LINCHECK_FAIL
                         : LINCHECK_UNKNOWN;
            if (o->kind == LINCHECK_CAS)
                id = lincheck_invoke_cas(h, c, K, 1, vals[o->expect], 1,
                                         vals[o->in], 1, o->t0);
            else
                id = lincheck_invoke(h, c, (lincheck_kind_t)o->kind, K, 1,
                                     vals[o->in], 1, o->t0);
            lincheck_complete(h, id, (lincheck_outcome_t)o->outcome,
                              vals[o->out], 1, o->t1);
            /* what the brute force must ignore */
            if (o->outcome == LINCHECK_FAIL
                || (o->kind == LINCHECK_READ
                    && o->outcome == LINCHECK_UNKNOWN))
                used |= 1u << i;
        }
        want = tiny_fits(ops, n, used, 0) ? LINCHECK_OK
               : LINCHECK_VIOLATION;
        got = lincheck_check(h, &rep, 10000);
        if (got != want) {
            FILE *f = stderr;

            fprintf(f, "\n  round %u: checker %d, brute force %d: %s\n",
                    round, got, want, rep.message);
            (void)lincheck_write_jsonl(h, f);
        }
        DKV_EXPECT_INT_EQ(got, want);
        if (want == LINCHECK_OK)
            yes++;
        else
            no++;
        lincheck_history_destroy(h);
        if (got != want)
            break;
    }
    /* both kinds of history were met often */
    DKV_EXPECT_TRUE(yes > 500 && no > 500);
}

/* ------------------------------------------------------- JSON output */

static void
jsonl_output(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *path = apr_pstrcat(pool, dkv_test_tempdir(pool), "/h.jsonl",
                                   NULL);
    lincheck_history_t *h = new_history();
    FILE *f;
    char line[512];
    unsigned lines = 0;
    size_t id;

    CU_ASSERT(lincheck_history_init(h, "k", 1, "x", 1) == 0);
    w(h, 1, "a\"b\\c", 10, 20);
    id = lincheck_invoke(h, 2, LINCHECK_WRITE, "k", 1, "\x01\xff", 2, 30);
    lincheck_complete(h, id, LINCHECK_UNKNOWN, NULL, 0, 40);
    r(h, 3, NULL, 50, 60);
    op_at(h, 4, LINCHECK_WRITE, K, NULL, 70, -1, LINCHECK_OK);
    CU_ASSERT(lincheck_invoke_cas(h, 5, "k", 1, NULL, 0, "z", 1, 80) == 5);
    lincheck_complete(h, 5, LINCHECK_FAIL, NULL, 0, 90);

    f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    DKV_EXPECT_INT_EQ(lincheck_write_jsonl(h, f), 0);
    fclose(f);
    lincheck_history_destroy(h);

    f = fopen(path, "r");
    CU_ASSERT_FATAL(f != NULL);
    while (lines < 10 && fgets(line, sizeof(line), f)) {
        static const char *const want[] = {
            "{\"op\":\"init\",\"key\":\"k\",\"value\":\"x\"}\n",
            "{\"client\":1,\"op\":\"write\",\"key\":\"k\","
            "\"value\":\"a\\\"b\\\\c\",\"invoke\":10,\"complete\":20,"
            "\"outcome\":\"ok\"}\n",
            "{\"client\":2,\"op\":\"write\",\"key\":\"k\","
            "\"value_hex\":\"01ff\",\"invoke\":30,\"complete\":40,"
            "\"outcome\":\"unknown\"}\n",
            "{\"client\":3,\"op\":\"read\",\"key\":\"k\",\"value\":null,"
            "\"invoke\":50,\"complete\":60,\"outcome\":\"ok\"}\n",
            "{\"client\":4,\"op\":\"write\",\"key\":\"k\",\"value\":null,"
            "\"invoke\":70,\"complete\":null,\"outcome\":\"unknown\"}\n",
            "{\"client\":5,\"op\":\"cas\",\"key\":\"k\",\"expect\":null,"
            "\"value\":\"z\",\"invoke\":80,\"complete\":90,"
            "\"outcome\":\"fail\"}\n"
        };

        if (lines < 6)
            DKV_EXPECT_STR_EQ(line, want[lines]);
        lines++;
    }
    fclose(f);
    DKV_EXPECT_UINT_EQ(lines, 6);
    apr_pool_destroy(pool);
}

static void
format_value(void)
{
    char buf[16];

    DKV_EXPECT_STR_EQ(lincheck_format_value(buf, sizeof(buf), NULL, 0),
                      "absent");
    DKV_EXPECT_STR_EQ(lincheck_format_value(buf, sizeof(buf), "ab", 2),
                      "\"ab\"");
    DKV_EXPECT_STR_EQ(lincheck_format_value(buf, sizeof(buf), "a\n\"", 3),
                      "\"a\\x0a\\\"\"");
    DKV_EXPECT_STR_EQ(lincheck_format_value(buf, sizeof(buf),
                                            "0123456789abcdef", 16),
                      "\"0123456789...");
    DKV_EXPECT_UINT_EQ(strlen(buf), 14);
}

/* ------------------------------------------------------------ register */

void
test_lincheck_register(void)
{
    CU_pSuite s = dkv_test_add_suite("lincheck", NULL, NULL);

    DKV_TEST_ADD(s, sequential_histories);
    DKV_TEST_ADD(s, concurrent_histories);
    DKV_TEST_ADD(s, unknown_outcomes);
    DKV_TEST_ADD(s, initial_values_and_keys);
    DKV_TEST_ADD(s, violations);
    DKV_TEST_ADD(s, random_histories_and_stale_reads);
    DKV_TEST_ADD(s, random_histories_repeated_values);
    DKV_TEST_ADD(s, large_history_is_fast);
    DKV_TEST_ADD(s, search_is_bounded);
    DKV_TEST_ADD(s, agrees_with_brute_force);
    DKV_TEST_ADD(s, jsonl_output);
    DKV_TEST_ADD(s, format_value);
}
