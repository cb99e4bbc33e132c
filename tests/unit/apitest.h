/*
 * apitest.h -- helpers for the suites that test the public API only
 * (test_api_*.c, test_crash.c), on top of testutil.h: short status
 * assertions, a test-controlled clock, string-key shortcuts, bounded waits
 * and a thread-safe collector of watch events.
 *
 * Everything here is static inline so each suite gets its own copy (and
 * its own fake clock) without link-time coupling.
 */
#ifndef DKV_APITEST_H
#define DKV_APITEST_H

#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include <apr_atomic.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include <dkv.h>

#include "testutil.h"
#include "testnode.h"

/* ------------------------------------------------------------ statuses */

/* Non-fatal (the test continues) and fatal status assertions, through
 * testutil's typed checks (they print both statuses and dkv_last_error). */
#define AT_STATUS(want, expr) DKV_EXPECT_STATUS((expr), (want))
#define AT_OK(expr) DKV_EXPECT_STATUS((expr), DKV_OK)
#define AT_STATUS_FATAL(want, expr) DKV_ASSERT_STATUS((expr), (want))
#define AT_OK_FATAL(expr) DKV_ASSERT_STATUS((expr), DKV_OK)

/* Asserts the bytes P (length N) equal the C string S. */
#define AT_BYTES(p, n, s) DKV_EXPECT_MEM_EQ((p), (n), (s), strlen(s))

/* Asserts dkv_last_error() says something (after a failed call). */
#define AT_HAS_ERROR() DKV_EXPECT_TRUE(dkv_last_error() != NULL && \
                                       dkv_last_error()[0] != '\0')

/* --------------------------------------------------------- fake clock */

/* One fake clock per suite; tests set and advance it. */
static volatile apr_uint64_t at_now_ms;

/* The dkv_open_opts_t.clock of the fake clock. */
static inline int64_t
at_clock_fn(void *baton)
{
    (void)baton;
    return (int64_t)apr_atomic_read64(&at_now_ms);
}

/* Sets the fake clock to MS. */
static inline void
at_clock_set(int64_t ms)
{
    apr_atomic_set64(&at_now_ms, (apr_uint64_t)ms);
}

/* Moves the fake clock MS forward. */
static inline void
at_clock_advance(int64_t ms)
{
    apr_atomic_add64(&at_now_ms, (apr_uint64_t)ms);
}

/* The fake clock's time. */
static inline int64_t
at_clock_now(void)
{
    return (int64_t)apr_atomic_read64(&at_now_ms);
}

/* A start time far from zero and from the real clock. */
#define AT_T0 ((int64_t)1700000000000LL)

/* Options using the fake clock (set to AT_T0) and a fast timer. */
static inline dkv_open_opts_t
at_fake_clock_opts(void)
{
    dkv_open_opts_t o;

    memset(&o, 0, sizeof o);
    at_clock_set(AT_T0);
    o.clock = at_clock_fn;
    o.expire_interval_ms = 10;
    return o;
}

/* -------------------------------------------------------------- opening */

/* Opens ADDRESS with OPTS (own pool); NULL after a recorded failure.
 * In remote mode (DKV_TEST_MODE=remote, see testnode.h) "inproc:" opens
 * a fresh dkv-node's store instead, configured like OPTS. */
static inline dkv_client_t *
at_open(const char *address, const dkv_open_opts_t *opts)
{
    dkv_client_t *c = NULL;
    dkv_status_t s;

    if (dkv_test_remote_mode() && strcmp(address, "inproc:") == 0) {
        s = dkv_test_remote_open(&c, opts);
    }
    else {
        s = dkv_open(&c, address, opts, NULL);
    }

    dkv_test_check_status(s, DKV_OK, "dkv_open", __FILE__, __LINE__, 0);
    return s == DKV_OK ? c : NULL;
}

/* Tests that drive the fake clock (dkv_open_opts_t.clock) cannot drive a
 * node's time: in remote mode they skip themselves, saying so.  Real-time
 * TTL and lease expiry is tested in both modes by test_api_realtime.c. */
#define AT_FAKE_CLOCK_ONLY(client) \
    do { \
        if (dkv_test_remote_mode()) { \
            dkv_close(client); \
            dkv_test_skip(__func__, "needs the fake clock, which cannot " \
                          "drive a node's time"); \
            return; \
        } \
    } while (0)

/* Tests of what only an in-process store has (REASON says what): in
 * remote mode they skip themselves, saying so. */
#define AT_INPROC_ONLY(reason) \
    do { \
        if (dkv_test_remote_mode()) { \
            dkv_test_skip(__func__, (reason)); \
            return; \
        } \
    } while (0)

/* ------------------------------------------------ string-key shortcuts */

/* dkv_put() of C-string KEY and VAL. */
static inline dkv_status_t
at_put(dkv_result_t *res, dkv_client_t *c, const char *key, const char *val,
       const dkv_put_opts_t *opts)
{
    return dkv_put(res, c, key, strlen(key), val, strlen(val), opts);
}

/* dkv_get() of C-string KEY, default options. */
static inline dkv_status_t
at_get(dkv_item_t **item, dkv_client_t *c, const char *key, apr_pool_t *p)
{
    return dkv_get(item, c, key, strlen(key), NULL, p);
}

/* dkv_delete() of C-string KEY, default options. */
static inline dkv_status_t
at_del(dkv_result_t *res, dkv_client_t *c, const char *key)
{
    return dkv_delete(res, c, key, strlen(key), NULL);
}

/* 1 when KEY reads as VAL (VAL NULL: when KEY is absent). */
static inline int
at_is(dkv_client_t *c, const char *key, const char *val, apr_pool_t *p)
{
    dkv_item_t *it = NULL;
    dkv_status_t s = at_get(&it, c, key, p);

    if (val == NULL) {
        return s == DKV_ENOTFOUND;
    }
    return s == DKV_OK && it != NULL && it->value_len == strlen(val) &&
           memcmp(it->value, val, it->value_len) == 0;
}

/* A range of the keys starting with PREFIX. */
static inline dkv_range_t
at_prefix(const char *prefix)
{
    dkv_range_t r;

    memset(&r, 0, sizeof r);
    r.prefix = prefix;
    r.prefix_len = strlen(prefix);
    return r;
}

/* The keys K with START <= K < END (END "" : no upper bound). */
static inline dkv_range_t
at_span(const char *start, const char *end)
{
    dkv_range_t r;

    memset(&r, 0, sizeof r);
    r.start = start;
    r.start_len = strlen(start);
    r.end = end;
    r.end_len = strlen(end);
    return r;
}

/* ------------------------------------------------------------ time/wait */

/* Sleeps MS milliseconds of real time. */
static inline void
at_sleep_ms(int ms)
{
    apr_sleep((apr_interval_time_t)ms * 1000);
}

/* Real time in ms, for deadlines of bounded waits. */
static inline int64_t
at_mono_ms(void)
{
    return (int64_t)(apr_time_now() / 1000);
}

/* --------------------------------------------------------- watch events */

typedef struct at_event {
    dkv_event_type_t type;
    char *key;
    size_t key_len;
    char *value;            /* NULL when the event had none */
    size_t value_len;
    uint64_t revision;
    uint64_t version;
    int snapshot;
    dkv_status_t status;
} at_event_t;

/* Collects the events of one or more watches. */
typedef struct at_events {
    apr_pool_t *pool;
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *cv;
    at_event_t *ev;
    size_t n;
    size_t cap;
    /* Stop-from-callback test: stop SELF on the STOP_AT-th event. */
    dkv_watch_t *self;
    size_t stop_at;
    /* Set by the test once dkv_watch_stop() returned; calls after it. */
    int stopped;
    int calls_after_stop;
    int in_callback;
    int concurrent_calls;
} at_events_t;

/* A new, empty collector in POOL. */
static inline at_events_t *
at_events_make(apr_pool_t *pool)
{
    at_events_t *c = apr_pcalloc(pool, sizeof *c);

    apr_pool_create(&c->pool, pool);
    apr_thread_mutex_create(&c->mu, APR_THREAD_MUTEX_DEFAULT, pool);
    apr_thread_cond_create(&c->cv, pool);
    return c;
}

/* The watch callback: copies EVENT into the collector BATON. */
static inline void
at_events_cb(void *baton, const dkv_event_t *e)
{
    at_events_t *c = baton;
    at_event_t *x;
    dkv_watch_t *stop = NULL;

    apr_thread_mutex_lock(c->mu);
    if (c->stopped) {
        c->calls_after_stop++;
    }
    if (c->in_callback) {
        c->concurrent_calls++;
    }
    c->in_callback = 1;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        at_event_t *nev = apr_palloc(c->pool, cap * sizeof *nev);

        if (c->n) {
            memcpy(nev, c->ev, c->n * sizeof *nev);
        }
        c->ev = nev;
        c->cap = cap;
    }
    x = &c->ev[c->n];
    memset(x, 0, sizeof *x);
    x->type = e->type;
    x->key = apr_pmemdup(c->pool, e->key ? e->key : "", e->key_len + 1);
    x->key[e->key_len] = '\0';
    x->key_len = e->key_len;
    if (e->value != NULL) {
        x->value = apr_palloc(c->pool, e->value_len + 1);
        memcpy(x->value, e->value, e->value_len);
        x->value[e->value_len] = '\0';
    }
    x->value_len = e->value_len;
    x->revision = e->revision;
    x->version = e->version;
    x->snapshot = e->snapshot;
    x->status = e->status;
    c->n++;
    if (c->self != NULL && c->stop_at != 0 && c->n == c->stop_at) {
        stop = c->self;
        c->self = NULL;
    }
    apr_thread_cond_broadcast(c->cv);
    apr_thread_mutex_unlock(c->mu);
    if (stop != NULL) {
        dkv_watch_stop(stop);
        apr_thread_mutex_lock(c->mu);
        c->in_callback = 0;
        c->stopped = 1;
        apr_thread_cond_broadcast(c->cv);
        apr_thread_mutex_unlock(c->mu);
        return;
    }
    apr_thread_mutex_lock(c->mu);
    c->in_callback = 0;
    apr_thread_mutex_unlock(c->mu);
}

/* The number of events collected so far. */
static inline size_t
at_events_count(at_events_t *c)
{
    size_t n;

    apr_thread_mutex_lock(c->mu);
    n = c->n;
    apr_thread_mutex_unlock(c->mu);
    return n;
}

/* Waits until at least N events arrived, at most TIMEOUT_MS.  1: arrived. */
static inline int
at_events_wait(at_events_t *c, size_t n, int timeout_ms)
{
    int64_t deadline = at_mono_ms() + timeout_ms;
    int ok;

    apr_thread_mutex_lock(c->mu);
    while (c->n < n) {
        int64_t left = deadline - at_mono_ms();

        if (left <= 0) {
            break;
        }
        apr_thread_cond_timedwait(c->cv, c->mu,
                                  (apr_interval_time_t)left * 1000);
    }
    ok = c->n >= n;
    apr_thread_mutex_unlock(c->mu);
    return ok;
}

/* Index of the first event of TYPE on KEY (a C string), or -1. */
static inline long
at_events_find(at_events_t *c, dkv_event_type_t type, const char *key)
{
    long i, found = -1;

    apr_thread_mutex_lock(c->mu);
    for (i = 0; i < (long)c->n; i++) {
        if (c->ev[i].type == type && c->ev[i].key_len == strlen(key) &&
            memcmp(c->ev[i].key, key, c->ev[i].key_len) == 0) {
            found = i;
            break;
        }
    }
    apr_thread_mutex_unlock(c->mu);
    return found;
}

/* Waits until an event of TYPE on KEY arrived, at most TIMEOUT_MS. */
static inline long
at_events_wait_key(at_events_t *c, dkv_event_type_t type, const char *key,
                   int timeout_ms)
{
    int64_t deadline = at_mono_ms() + timeout_ms;
    long i;

    for (;;) {
        size_t seen = at_events_count(c);
        int64_t left;

        i = at_events_find(c, type, key);
        left = deadline - at_mono_ms();
        if (i >= 0 || left <= 0) {
            return i;
        }
        at_events_wait(c, seen + 1, (int)(left < 50 ? left : 50));
    }
}

/* Prints the first events of C to stderr, under TITLE (for failures). */
static inline void
at_events_dump(at_events_t *c, const char *title)
{
    size_t i;

    apr_thread_mutex_lock(c->mu);
    fprintf(stderr, "\n  %s: %lu events\n", title, (unsigned long)c->n);
    for (i = 0; i < c->n && i < 40; i++) {
        fprintf(stderr, "    %c %s=%s rev=%lu ver=%lu snap=%d\n",
                c->ev[i].type == DKV_EVENT_PUT ? 'P' :
                c->ev[i].type == DKV_EVENT_DELETE ? 'D' : 'E',
                c->ev[i].key, c->ev[i].value ? c->ev[i].value : "(null)",
                (unsigned long)c->ev[i].revision,
                (unsigned long)c->ev[i].version, c->ev[i].snapshot);
    }
    apr_thread_mutex_unlock(c->mu);
}

/* Checks that event I of C is TYPE on KEY with VALUE (NULL: none). */
static inline void
at_event_check(at_events_t *c, size_t i, dkv_event_type_t type,
               const char *key, const char *value, const char *file,
               unsigned line)
{
    at_event_t *e;

    if (!dkv_test_check_true(c->n > i, "event index in range", file, line,
                             0)) {
        return;
    }
    e = &c->ev[i];
    dkv_test_check_int(e->type, type, "event type", file, line, 0);
    dkv_test_check_str(e->key, key, "event key", file, line, 0);
    dkv_test_check_str(e->value, value, "event value", file, line, 0);
}

#define AT_EVENT(c, i, type, key, value) \
    at_event_check((c), (i), (type), (key), (value), __FILE__, __LINE__)

#endif /* DKV_APITEST_H */
