/*
 * test_api_watch.c -- suite api_watch: watches through the public API
 * (dkv/watch.h): key and prefix watches, event contents and order,
 * snapshots under concurrent writes, replay from a past revision,
 * compacted history, Delete events from expiry and leases, and stopping a
 * watch from another thread, from its own callback, and by closing.
 *
 * Every wait is bounded (at most a few seconds); events are collected by
 * apitest.h's at_events_cb under a mutex.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_thread_proc.h>

#include "apitest.h"

#define WAIT_MS 5000

static dkv_watch_opts_t
prefix_opts(void)
{
    dkv_watch_opts_t wo;

    memset(&wo, 0, sizeof wo);
    wo.prefix = 1;
    return wo;
}

/* ------------------------------------------------------------------ */

static void
test_key_watch(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    dkv_watch_t *w = NULL;
    dkv_result_t r1, r2, r3;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "k", "before", NULL));
    AT_OK_FATAL(dkv_watch_start(&w, c, "k", 1, NULL, at_events_cb, ev));
    DKV_ASSERT_NOT_NULL(w);
    AT_OK(at_put(&r1, c, "k", "v1", NULL));
    AT_OK(at_put(NULL, c, "k2", "no", NULL));
    AT_OK(at_put(NULL, c, "other", "no", NULL));
    AT_OK(at_put(&r2, c, "k", "v2", NULL));
    AT_OK(at_del(&r3, c, "k"));
    DKV_EXPECT_TRUE(at_events_wait(ev, 3, WAIT_MS));
    at_sleep_ms(30);
    dkv_watch_stop(w);

    DKV_EXPECT_UINT_EQ(ev->n, 3);
    AT_EVENT(ev, 0, DKV_EVENT_PUT, "k", "v1");
    AT_EVENT(ev, 1, DKV_EVENT_PUT, "k", "v2");
    AT_EVENT(ev, 2, DKV_EVENT_DELETE, "k", NULL);
    if (ev->n >= 3) {
        DKV_EXPECT_UINT_EQ(ev->ev[0].revision, r1.revision);
        DKV_EXPECT_UINT_EQ(ev->ev[0].version, 2);
        DKV_EXPECT_INT_EQ(ev->ev[0].snapshot, 0);
        DKV_EXPECT_UINT_EQ(ev->ev[1].revision, r2.revision);
        DKV_EXPECT_UINT_EQ(ev->ev[1].version, 3);
        DKV_EXPECT_UINT_EQ(ev->ev[2].revision, r3.revision);
        DKV_EXPECT_UINT_EQ(ev->ev[2].version, 3);
    }
    if (ev->n != 3) {
        at_events_dump(ev, "key watch");
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_prefix_watchers_isolated(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ea = at_events_make(p), *eb = at_events_make(p);
    at_events_t *eall = at_events_make(p);
    dkv_watch_opts_t wo = prefix_opts();
    dkv_watch_t *wa = NULL, *wb = NULL, *wall = NULL;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK_FATAL(dkv_watch_start(&wa, c, "a:", 2, &wo, at_events_cb, ea));
    AT_OK_FATAL(dkv_watch_start(&wb, c, "b:", 2, &wo, at_events_cb, eb));
    AT_OK_FATAL(dkv_watch_start(&wall, c, "", 0, &wo, at_events_cb, eall));
    AT_OK(at_put(NULL, c, "a:1", "x", NULL));
    AT_OK(at_put(NULL, c, "b:1", "y", NULL));
    AT_OK(at_put(NULL, c, "c:1", "z", NULL));
    AT_OK(at_put(NULL, c, "a", "no", NULL));
    AT_OK(at_put(NULL, c, "a:2", "x2", NULL));
    AT_OK(at_del(NULL, c, "b:1"));
    AT_OK(at_put(NULL, c, "a:end", "e", NULL));
    AT_OK(at_put(NULL, c, "b:end", "e", NULL));
    DKV_EXPECT_TRUE(at_events_wait_key(ea, DKV_EVENT_PUT, "a:end", WAIT_MS)
                    >= 0);
    DKV_EXPECT_TRUE(at_events_wait_key(eb, DKV_EVENT_PUT, "b:end", WAIT_MS)
                    >= 0);
    DKV_EXPECT_TRUE(at_events_wait(eall, 8, WAIT_MS));
    dkv_watch_stop(wa);
    dkv_watch_stop(wb);
    dkv_watch_stop(wall);

    DKV_EXPECT_UINT_EQ(ea->n, 3);
    AT_EVENT(ea, 0, DKV_EVENT_PUT, "a:1", "x");
    AT_EVENT(ea, 1, DKV_EVENT_PUT, "a:2", "x2");
    AT_EVENT(ea, 2, DKV_EVENT_PUT, "a:end", "e");
    DKV_EXPECT_UINT_EQ(eb->n, 3);
    AT_EVENT(eb, 0, DKV_EVENT_PUT, "b:1", "y");
    AT_EVENT(eb, 1, DKV_EVENT_DELETE, "b:1", NULL);
    AT_EVENT(eb, 2, DKV_EVENT_PUT, "b:end", "e");
    DKV_EXPECT_UINT_EQ(eall->n, 8);
    AT_EVENT(eall, 2, DKV_EVENT_PUT, "c:1", "z");
    AT_EVENT(eall, 3, DKV_EVENT_PUT, "a", "no");
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_event_order(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo = prefix_opts();
    dkv_watch_t *w = NULL;
    dkv_result_t res[40];
    size_t i;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK_FATAL(dkv_watch_start(&w, c, "o:", 2, &wo, at_events_cb, ev));
    for (i = 0; i < 40; i++) {
        char k[16], v[16];

        snprintf(k, sizeof k, "o:%lu", (unsigned long)(i % 7));
        snprintf(v, sizeof v, "v%lu", (unsigned long)i);
        AT_OK(at_put(&res[i], c, k, v, NULL));
    }
    DKV_EXPECT_TRUE(at_events_wait(ev, 40, WAIT_MS));
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(ev->n, 40);
    for (i = 0; i < ev->n && i < 40; i++) {
        char k[16], v[16];

        snprintf(k, sizeof k, "o:%lu", (unsigned long)(i % 7));
        snprintf(v, sizeof v, "v%lu", (unsigned long)i);
        AT_EVENT(ev, i, DKV_EVENT_PUT, k, v);
        DKV_EXPECT_UINT_EQ(ev->ev[i].revision, res[i].revision);
        DKV_EXPECT_UINT_EQ(ev->ev[i].version, res[i].version);
        if (i > 0) {
            DKV_EXPECT_TRUE(ev->ev[i].revision > ev->ev[i - 1].revision);
        }
    }
    DKV_EXPECT_INT_EQ(ev->concurrent_calls, 0);
    dkv_close(c);
    apr_pool_destroy(p);
}

/* ----------------------------------------------- snapshot + concurrency */

#define SNAP_KEYS 70
#define SNAP_OPS 2000

typedef struct writer {
    dkv_client_t *c;
    volatile apr_uint32_t done;         /* ops finished */
    volatile apr_uint32_t stop;         /* set to end early */
    size_t nops;
    /* What each op did: revision 0 when it changed nothing. */
    uint64_t rev[SNAP_OPS];
    int del[SNAP_OPS];
    int key[SNAP_OPS];
    int val[SNAP_OPS];
} writer_t;

static void *APR_THREAD_FUNC
snap_writer(apr_thread_t *t, void *data)
{
    writer_t *w = data;
    size_t i;

    for (i = 0; i < w->nops && !apr_atomic_read32(&w->stop); i++) {
        char k[16], v[16];
        dkv_result_t r;
        dkv_status_t s;

        w->key[i] = (int)((i * 11) % SNAP_KEYS);
        w->val[i] = (int)i;
        w->del[i] = (i % 13 == 5);
        w->rev[i] = 0;
        snprintf(k, sizeof k, "s:%03d", w->key[i]);
        snprintf(v, sizeof v, "w%d", (int)i);
        memset(&r, 0, sizeof r);
        s = w->del[i] ? at_del(&r, w->c, k) : at_put(&r, w->c, k, v, NULL);
        if (s == DKV_OK) {
            w->rev[i] = r.revision;
        }
        apr_atomic_inc32(&w->done);
    }
    /* Plain return (not apr_thread_exit): apr_thread_join still works,
     * and pthread_exit trips AddressSanitizer on some glibc versions. */
    (void)t;
    return NULL;
}

static void
test_snapshot_under_writes(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo = prefix_opts();
    dkv_watch_t *w = NULL;
    writer_t *wr = apr_pcalloc(p, sizeof *wr);
    apr_thread_t *th = NULL;
    apr_status_t trv;
    /* Final value of each key from the events: -1 absent, else w<n>, or
     * -2 for the initial value. */
    int model[SNAP_KEYS];
    size_t i, j, nsnap = 0, matched = 0, expected_live = 0;
    uint64_t snaprev = 0;
    int64_t deadline;
    int bad_order = 0, bad_snap = 0, unmatched = 0;

    DKV_ASSERT_NOT_NULL(c);
    for (i = 0; i < 50; i++) {
        char k[16];

        snprintf(k, sizeof k, "s:%03d", (int)i);
        AT_OK(at_put(NULL, c, k, "init", NULL));
    }
    wr->c = c;
    wr->nops = SNAP_OPS;
    DKV_ASSERT_INT_EQ(apr_thread_create(&th, NULL, snap_writer, wr, p),
                      APR_SUCCESS);
    /* Start the watch while the writer is busy. */
    deadline = at_mono_ms() + WAIT_MS;
    while (apr_atomic_read32(&wr->done) < 200 && at_mono_ms() < deadline) {
        apr_thread_yield();
    }
    wo.include_snapshot = 1;
    AT_OK(dkv_watch_start(&w, c, "s:", 2, &wo, at_events_cb, ev));
    DKV_EXPECT_TRUE(apr_atomic_read32(&wr->done) < SNAP_OPS);
    apr_thread_join(&trv, th);
    AT_OK(at_put(NULL, c, "s:zzz", "end", NULL));
    DKV_EXPECT_TRUE(at_events_wait_key(ev, DKV_EVENT_PUT, "s:zzz", WAIT_MS)
                    >= 0);
    dkv_watch_stop(w);

    /* Snapshot first, all at one read revision, then live events in
     * strictly increasing revisions after it. */
    while (nsnap < ev->n && ev->ev[nsnap].snapshot) {
        nsnap++;
    }
    DKV_EXPECT_TRUE(nsnap > 0);
    if (nsnap > 0) {
        snaprev = ev->ev[0].revision;
    }
    for (i = 0; i < SNAP_KEYS; i++) {
        model[i] = -1;
    }
    for (i = 0; i < ev->n; i++) {
        at_event_t *e = &ev->ev[i];
        int k;

        if (i < nsnap) {
            if (e->revision != snaprev || e->type != DKV_EVENT_PUT) {
                bad_snap++;
            }
        } else {
            if (e->snapshot) {
                bad_snap++;
            }
            if (e->revision <= (i == nsnap ? snaprev
                                           : ev->ev[i - 1].revision)) {
                bad_order++;
            }
        }
        if (strcmp(e->key, "s:zzz") == 0) {
            continue;
        }
        k = (int)strtol(e->key + 2, NULL, 10);
        if (strncmp(e->key, "s:", 2) != 0 || k < 0 || k >= SNAP_KEYS) {
            unmatched++;
            continue;
        }
        if (e->type == DKV_EVENT_DELETE) {
            model[k] = -1;
        } else if (e->value && strcmp(e->value, "init") == 0) {
            model[k] = -2;
        } else if (e->value && e->value[0] == 'w') {
            model[k] = (int)strtol(e->value + 1, NULL, 10);
        } else {
            unmatched++;
        }
        /* Each live event is exactly one of the writer's changes. */
        if (i >= nsnap) {
            int found = 0;

            for (j = 0; j < wr->nops; j++) {
                if (wr->rev[j] == e->revision) {
                    found = wr->key[j] == k &&
                            (wr->del[j] ? e->type == DKV_EVENT_DELETE
                                        : e->type == DKV_EVENT_PUT &&
                                          model[k] == wr->val[j]);
                    break;
                }
            }
            if (found) {
                matched++;
            } else {
                unmatched++;
            }
        }
    }
    /* No change after the snapshot is missed. */
    for (j = 0; j < wr->nops; j++) {
        if (wr->rev[j] > snaprev) {
            expected_live++;
        }
    }
    DKV_EXPECT_INT_EQ(bad_snap, 0);
    DKV_EXPECT_INT_EQ(bad_order, 0);
    DKV_EXPECT_INT_EQ(unmatched, 0);
    DKV_EXPECT_UINT_EQ(matched, expected_live);
    DKV_EXPECT_TRUE(expected_live > 0);
    /* The events reproduce the final state. */
    for (i = 0; i < SNAP_KEYS; i++) {
        char k[16], v[16];

        snprintf(k, sizeof k, "s:%03d", (int)i);
        if (model[i] == -1) {
            DKV_EXPECT_TRUE(at_is(c, k, NULL, p));
        } else if (model[i] == -2) {
            DKV_EXPECT_TRUE(at_is(c, k, "init", p));
        } else {
            snprintf(v, sizeof v, "w%d", model[i]);
            DKV_EXPECT_TRUE(at_is(c, k, v, p));
        }
    }
    if (bad_snap || bad_order || unmatched || matched != expected_live) {
        at_events_dump(ev, "snapshot under writes");
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_snapshot_simple(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo;
    dkv_watch_t *w = NULL;
    uint64_t rev;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(NULL, c, "one", "1", NULL));
    AT_OK(at_put(NULL, c, "one", "2", NULL));
    AT_OK(dkv_revision(&rev, c));
    memset(&wo, 0, sizeof wo);
    wo.include_snapshot = 1;
    AT_OK_FATAL(dkv_watch_start(&w, c, "one", 3, &wo, at_events_cb, ev));
    DKV_EXPECT_TRUE(at_events_wait(ev, 1, WAIT_MS));
    AT_OK(at_put(NULL, c, "one", "3", NULL));
    DKV_EXPECT_TRUE(at_events_wait(ev, 2, WAIT_MS));
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(ev->n, 2);
    AT_EVENT(ev, 0, DKV_EVENT_PUT, "one", "2");
    AT_EVENT(ev, 1, DKV_EVENT_PUT, "one", "3");
    if (ev->n == 2) {
        DKV_EXPECT_INT_EQ(ev->ev[0].snapshot, 1);
        DKV_EXPECT_UINT_EQ(ev->ev[0].revision, rev);
        DKV_EXPECT_UINT_EQ(ev->ev[0].version, 2);
        DKV_EXPECT_INT_EQ(ev->ev[1].snapshot, 0);
        DKV_EXPECT_UINT_EQ(ev->ev[1].revision, rev + 1);
    }

    /* Snapshot of a missing key: nothing, then live. */
    ev = at_events_make(p);
    AT_OK_FATAL(dkv_watch_start(&w, c, "none", 4, &wo, at_events_cb, ev));
    AT_OK(at_put(NULL, c, "none", "x", NULL));
    DKV_EXPECT_TRUE(at_events_wait(ev, 1, WAIT_MS));
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(ev->n, 1);
    AT_EVENT(ev, 0, DKV_EVENT_PUT, "none", "x");
    dkv_close(c);
    apr_pool_destroy(p);
}

/* ------------------------------------------------------------- replay */

static void
test_replay(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo = prefix_opts();
    dkv_watch_t *w = NULL;
    dkv_result_t r[6];
    uint64_t cur;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK(at_put(&r[0], c, "r:a", "1", NULL));
    AT_OK(at_put(&r[1], c, "r:b", "1", NULL));
    AT_OK(at_put(&r[2], c, "r:a", "2", NULL));
    AT_OK(at_del(&r[3], c, "r:b"));
    AT_OK(at_put(&r[4], c, "x:other", "1", NULL));
    AT_OK(at_put(&r[5], c, "r:c", "1", NULL));

    wo.start_revision = r[2].revision;
    AT_OK_FATAL(dkv_watch_start(&w, c, "r:", 2, &wo, at_events_cb, ev));
    DKV_EXPECT_TRUE(at_events_wait(ev, 3, WAIT_MS));
    AT_OK(at_put(NULL, c, "r:d", "live", NULL));
    DKV_EXPECT_TRUE(at_events_wait(ev, 4, WAIT_MS));
    at_sleep_ms(20);
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(ev->n, 4);
    AT_EVENT(ev, 0, DKV_EVENT_PUT, "r:a", "2");
    AT_EVENT(ev, 1, DKV_EVENT_DELETE, "r:b", NULL);
    AT_EVENT(ev, 2, DKV_EVENT_PUT, "r:c", "1");
    AT_EVENT(ev, 3, DKV_EVENT_PUT, "r:d", "live");
    if (ev->n >= 3) {
        DKV_EXPECT_UINT_EQ(ev->ev[0].revision, r[2].revision);
        DKV_EXPECT_UINT_EQ(ev->ev[0].version, 2);
        DKV_EXPECT_UINT_EQ(ev->ev[1].revision, r[3].revision);
        DKV_EXPECT_UINT_EQ(ev->ev[1].version, 1);
        DKV_EXPECT_UINT_EQ(ev->ev[2].revision, r[5].revision);
        DKV_EXPECT_INT_EQ(ev->ev[0].snapshot, 0);
    }

    /* A key watch from the first revision. */
    ev = at_events_make(p);
    memset(&wo, 0, sizeof wo);
    wo.start_revision = r[0].revision;
    AT_OK_FATAL(dkv_watch_start(&w, c, "r:a", 3, &wo, at_events_cb, ev));
    DKV_EXPECT_TRUE(at_events_wait(ev, 2, WAIT_MS));
    at_sleep_ms(20);
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(ev->n, 2);
    AT_EVENT(ev, 0, DKV_EVENT_PUT, "r:a", "1");
    AT_EVENT(ev, 1, DKV_EVENT_PUT, "r:a", "2");

    /* From the next revision: only live events. */
    AT_OK(dkv_revision(&cur, c));
    ev = at_events_make(p);
    wo = prefix_opts();
    wo.start_revision = cur + 1;
    AT_OK_FATAL(dkv_watch_start(&w, c, "r:", 2, &wo, at_events_cb, ev));
    AT_OK(at_put(NULL, c, "r:e", "new", NULL));
    DKV_EXPECT_TRUE(at_events_wait(ev, 1, WAIT_MS));
    at_sleep_ms(20);
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(ev->n, 1);
    AT_EVENT(ev, 0, DKV_EVENT_PUT, "r:e", "new");

    /* start_revision and include_snapshot exclude each other. */
    wo.include_snapshot = 1;
    w = NULL;
    AT_STATUS(DKV_EINVAL, dkv_watch_start(&w, c, "r:", 2, &wo, at_events_cb,
                                          ev));
    DKV_EXPECT_TRUE(w == NULL);
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_compacted(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_open_opts_t oo;
    dkv_client_t *c;
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo = prefix_opts();
    dkv_watch_t *w = NULL;
    uint64_t cur = 0;
    int i;

    AT_INPROC_ONLY("history_retain is an option of in-process stores; "
                   "dkv-node has no setting for it");
    memset(&oo, 0, sizeof oo);
    oo.history_retain = 10;
    c = at_open("inproc:", &oo);
    DKV_ASSERT_NOT_NULL(c);
    for (i = 0; i < 100; i++) {
        char v[16];

        snprintf(v, sizeof v, "%d", i);
        AT_OK(at_put(NULL, c, i % 2 ? "h:a" : "h:b", v, NULL));
    }
    AT_OK(dkv_revision(&cur, c));
    DKV_EXPECT_UINT_EQ(cur, 100);
    wo.start_revision = 1;
    AT_STATUS(DKV_ECOMPACTED, dkv_watch_start(&w, c, "h:", 2, &wo,
                                              at_events_cb, ev));
    AT_HAS_ERROR();
    wo.start_revision = cur - 50;
    AT_STATUS(DKV_ECOMPACTED, dkv_watch_start(&w, c, "h:", 2, &wo,
                                              at_events_cb, ev));

    /* Recent history is still there. */
    wo.start_revision = cur - 4;
    AT_OK_FATAL(dkv_watch_start(&w, c, "h:", 2, &wo, at_events_cb, ev));
    DKV_EXPECT_TRUE(at_events_wait(ev, 5, WAIT_MS));
    at_sleep_ms(20);
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(ev->n, 5);
    if (ev->n >= 5) {
        DKV_EXPECT_UINT_EQ(ev->ev[0].revision, cur - 4);
        DKV_EXPECT_UINT_EQ(ev->ev[4].revision, cur);
        DKV_EXPECT_STR_EQ(ev->ev[4].value, "99");
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

/* ---------------------------------------------- deletes by ttl/leases */

static void
test_expiry_and_lease_deletes(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_open_opts_t oo = at_fake_clock_opts();
    dkv_client_t *c = at_open("inproc:", &oo);
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo = prefix_opts();
    dkv_watch_t *w = NULL;
    dkv_put_opts_t po;
    uint64_t l1 = 0, l2 = 0, n = 0;
    long i;

    AT_FAKE_CLOCK_ONLY(c);
    DKV_ASSERT_NOT_NULL(c);
    AT_OK(dkv_lease_grant(&l1, c, 60000));
    AT_OK(dkv_lease_grant(&l2, c, 1000));
    AT_OK_FATAL(dkv_watch_start(&w, c, "e:", 2, &wo, at_events_cb, ev));
    memset(&po, 0, sizeof po);
    po.ttl_ms = 100;
    AT_OK(at_put(NULL, c, "e:ttl", "t", &po));
    memset(&po, 0, sizeof po);
    po.lease = l1;
    AT_OK(at_put(NULL, c, "e:l1a", "a", &po));
    AT_OK(at_put(NULL, c, "e:l1b", "b", &po));
    po.lease = l2;
    AT_OK(at_put(NULL, c, "e:l2", "c", &po));
    DKV_EXPECT_TRUE(at_events_wait(ev, 4, WAIT_MS));

    /* Revoke: a Delete per bound key. */
    AT_OK(dkv_lease_revoke(&n, c, l1));
    DKV_EXPECT_UINT_EQ(n, 2);
    DKV_EXPECT_TRUE(at_events_wait_key(ev, DKV_EVENT_DELETE, "e:l1a",
                                       WAIT_MS) >= 0);
    DKV_EXPECT_TRUE(at_events_wait_key(ev, DKV_EVENT_DELETE, "e:l1b",
                                       WAIT_MS) >= 0);
    /* TTL expiry, made by the timer. */
    at_clock_advance(200);
    i = at_events_wait_key(ev, DKV_EVENT_DELETE, "e:ttl", 2000);
    DKV_EXPECT_TRUE(i >= 0);
    if (i >= 0) {
        DKV_EXPECT_TRUE(ev->ev[i].value == NULL);
    }
    DKV_EXPECT_INT_EQ(at_events_find(ev, DKV_EVENT_DELETE, "e:l2"), -1);
    /* Lease expiry. */
    at_clock_advance(1000);
    DKV_EXPECT_TRUE(at_events_wait_key(ev, DKV_EVENT_DELETE, "e:l2", 2000)
                    >= 0);
    at_sleep_ms(30);
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(ev->n, 8);
    for (i = 1; i < (long)ev->n; i++) {
        DKV_EXPECT_TRUE(ev->ev[i].revision > ev->ev[i - 1].revision);
    }
    if (ev->n != 8) {
        at_events_dump(ev, "expiry and lease deletes");
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

/* ------------------------------------------------------------ stopping */

typedef struct spinner {
    dkv_client_t *c;
    volatile apr_uint32_t stop;
    volatile apr_uint32_t writes;
} spinner_t;

static void *APR_THREAD_FUNC
spin_writer(apr_thread_t *t, void *data)
{
    spinner_t *s = data;
    int64_t deadline = at_mono_ms() + 10000;
    unsigned i;

    for (i = 0; i < 200000 && !apr_atomic_read32(&s->stop) &&
         at_mono_ms() < deadline; i++) {
        char v[16];

        snprintf(v, sizeof v, "%u", i);
        (void)at_put(NULL, s->c, "spin:k", v, NULL);
        apr_atomic_inc32(&s->writes);
    }
    /* Plain return (not apr_thread_exit): apr_thread_join still works,
     * and pthread_exit trips AddressSanitizer on some glibc versions. */
    (void)t;
    return NULL;
}

static void
test_stop_from_other_thread(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    spinner_t *sp = apr_pcalloc(p, sizeof *sp);
    dkv_watch_t *w = NULL;
    apr_thread_t *th;
    apr_status_t trv;
    uint32_t before;

    DKV_ASSERT_NOT_NULL(c);
    sp->c = c;
    AT_OK_FATAL(dkv_watch_start(&w, c, "spin:k", 6, NULL, at_events_cb,
                                ev));
    DKV_ASSERT_INT_EQ(apr_thread_create(&th, NULL, spin_writer, sp, p),
                      APR_SUCCESS);
    DKV_EXPECT_TRUE(at_events_wait(ev, 20, WAIT_MS));
    dkv_watch_stop(w);
    apr_thread_mutex_lock(ev->mu);
    ev->stopped = 1;
    DKV_EXPECT_INT_EQ(ev->in_callback, 0);
    apr_thread_mutex_unlock(ev->mu);
    /* Keep writing for a while: no callback may run any more. */
    before = apr_atomic_read32(&sp->writes);
    {
        int64_t deadline = at_mono_ms() + 2000;

        while (apr_atomic_read32(&sp->writes) < before + 50 &&
               at_mono_ms() < deadline) {
            at_sleep_ms(1);
        }
    }
    at_sleep_ms(30);
    apr_atomic_set32(&sp->stop, 1);
    apr_thread_join(&trv, th);
    DKV_EXPECT_INT_EQ(ev->calls_after_stop, 0);
    DKV_EXPECT_INT_EQ(ev->concurrent_calls, 0);
    DKV_EXPECT_TRUE(apr_atomic_read32(&sp->writes) >= before + 50);
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_stop_from_callback(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo = prefix_opts();
    dkv_watch_t *w = NULL;
    int i, stopped = 0;
    int64_t deadline;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK_FATAL(dkv_watch_start(&w, c, "cb:", 3, &wo, at_events_cb, ev));
    apr_thread_mutex_lock(ev->mu);
    ev->self = w;
    ev->stop_at = 3;
    apr_thread_mutex_unlock(ev->mu);
    for (i = 0; i < 10; i++) {
        char k[16];

        snprintf(k, sizeof k, "cb:%d", i);
        AT_OK(at_put(NULL, c, k, "v", NULL));
    }
    deadline = at_mono_ms() + WAIT_MS;
    while (!stopped && at_mono_ms() < deadline) {
        apr_thread_mutex_lock(ev->mu);
        stopped = ev->stopped;
        apr_thread_mutex_unlock(ev->mu);
        if (!stopped) {
            at_sleep_ms(2);
        }
    }
    DKV_EXPECT_TRUE(stopped);
    for (i = 10; i < 20; i++) {
        char k[16];

        snprintf(k, sizeof k, "cb:%d", i);
        AT_OK(at_put(NULL, c, k, "v", NULL));
    }
    at_sleep_ms(50);
    DKV_EXPECT_UINT_EQ(at_events_count(ev), 3);
    DKV_EXPECT_INT_EQ(ev->calls_after_stop, 0);
    /* The watch is gone: do not stop it again. */
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_close_with_active_watch(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo = prefix_opts();
    dkv_watch_t *w = NULL;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK_FATAL(dkv_watch_start(&w, c, "", 0, &wo, at_events_cb, ev));
    AT_OK(at_put(NULL, c, "a", "1", NULL));
    DKV_EXPECT_TRUE(at_events_wait(ev, 1, WAIT_MS));
    dkv_close(c);
    apr_thread_mutex_lock(ev->mu);
    ev->stopped = 1;
    apr_thread_mutex_unlock(ev->mu);
    at_sleep_ms(20);
    DKV_EXPECT_INT_EQ(ev->calls_after_stop, 0);
    apr_pool_destroy(p);
}

static void
test_watch_bad_input(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    dkv_watch_t *w = NULL;

    DKV_ASSERT_NOT_NULL(c);
    AT_STATUS(DKV_EINVAL, dkv_watch_start(NULL, c, "k", 1, NULL,
                                          at_events_cb, ev));
    AT_STATUS(DKV_EINVAL, dkv_watch_start(&w, NULL, "k", 1, NULL,
                                          at_events_cb, ev));
    AT_STATUS(DKV_EINVAL, dkv_watch_start(&w, c, "k", 1, NULL, NULL, ev));
    AT_HAS_ERROR();
    /* An empty key is only a prefix. */
    AT_STATUS(DKV_EINVAL, dkv_watch_start(&w, c, "", 0, NULL,
                                          at_events_cb, ev));
    AT_STATUS(DKV_EINVAL, dkv_watch_start(&w, c, NULL, 3, NULL,
                                          at_events_cb, ev));
    dkv_watch_stop(NULL);
    dkv_close(c);
    apr_pool_destroy(p);
}

/* ------------------------------------------------- callbacks and clear */

typedef struct reentrant {
    dkv_client_t *c;
    at_events_t *ev;
    apr_pool_t *pool;       /* used by the callback thread only */
    volatile apr_uint32_t bad;
} reentrant_t;

/* Reads the event's key and writes a side key from inside the callback. */
static void
reentrant_cb(void *baton, const dkv_event_t *e)
{
    reentrant_t *r = baton;
    dkv_item_t *it = NULL;
    char side[64];

    if (e->type == DKV_EVENT_PUT) {
        if (dkv_get(&it, r->c, e->key, e->key_len, NULL, r->pool)
            != DKV_OK) {
            apr_atomic_inc32(&r->bad);
        }
        snprintf(side, sizeof side, "side:%.*s", (int)e->key_len,
                 (const char *)e->key);
        if (at_put(NULL, r->c, side, "seen", NULL) != DKV_OK) {
            apr_atomic_inc32(&r->bad);
        }
    }
    at_events_cb(r->ev, e);
}

static void
test_callback_calls_api(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    reentrant_t *r = apr_pcalloc(p, sizeof *r);
    dkv_watch_opts_t wo = prefix_opts();
    dkv_watch_t *w = NULL;
    int i;

    DKV_ASSERT_NOT_NULL(c);
    r->c = c;
    r->ev = at_events_make(p);
    apr_pool_create(&r->pool, p);
    AT_OK_FATAL(dkv_watch_start(&w, c, "re:", 3, &wo, reentrant_cb, r));
    for (i = 0; i < 5; i++) {
        char k[16];

        snprintf(k, sizeof k, "re:%d", i);
        AT_OK(at_put(NULL, c, k, "v", NULL));
    }
    DKV_EXPECT_TRUE(at_events_wait(r->ev, 5, WAIT_MS));
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(r->ev->n, 5);
    DKV_EXPECT_INT_EQ(apr_atomic_read32(&r->bad), 0);
    for (i = 0; i < 5; i++) {
        char k[32];

        snprintf(k, sizeof k, "side:re:%d", i);
        DKV_EXPECT_TRUE(at_is(c, k, "seen", p));
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_clear_and_batch_events(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo = prefix_opts();
    dkv_watch_t *w = NULL;
    dkv_range_t rg = at_prefix("c:");
    dkv_op_t ops[3];
    uint64_t n = 0;
    size_t i;

    DKV_ASSERT_NOT_NULL(c);
    AT_OK_FATAL(dkv_watch_start(&w, c, "c:", 2, &wo, at_events_cb, ev));
    AT_OK(at_put(NULL, c, "c:1", "a", NULL));
    AT_OK(at_put(NULL, c, "c:2", "b", NULL));
    AT_OK(at_put(NULL, c, "c:3", "c", NULL));
    AT_OK(dkv_clear(&n, c, &rg));
    DKV_EXPECT_UINT_EQ(n, 3);
    memset(ops, 0, sizeof ops);
    ops[0] = (dkv_op_t){ DKV_OP_PUT, "c:4", 3, "d", 1, NULL, NULL };
    ops[1] = (dkv_op_t){ DKV_OP_DELETE, "c:9", 3, NULL, 0, NULL, NULL };
    ops[2] = (dkv_op_t){ DKV_OP_DELETE, "c:4", 3, NULL, 0, NULL, NULL };
    AT_OK(dkv_batch(NULL, c, ops, 3));
    DKV_EXPECT_TRUE(at_events_wait(ev, 8, WAIT_MS));
    at_sleep_ms(20);
    dkv_watch_stop(w);
    DKV_EXPECT_UINT_EQ(ev->n, 8);
    /* One Delete per cleared key (in any order), each its own revision. */
    for (i = 1; i <= 3; i++) {
        char k[8];
        long at;

        snprintf(k, sizeof k, "c:%d", (int)i);
        at = at_events_find(ev, DKV_EVENT_DELETE, k);
        DKV_EXPECT_TRUE(at >= 3 && at <= 5);
    }
    AT_EVENT(ev, 6, DKV_EVENT_PUT, "c:4", "d");
    AT_EVENT(ev, 7, DKV_EVENT_DELETE, "c:4", NULL);
    for (i = 1; i < ev->n; i++) {
        DKV_EXPECT_UINT_EQ(ev->ev[i].revision, ev->ev[i - 1].revision + 1);
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

typedef struct qwriter {
    dkv_client_t *c;
    volatile apr_uint32_t done;
} qwriter_t;

static void *APR_THREAD_FUNC
q_writer(apr_thread_t *t, void *data)
{
    qwriter_t *w = data;
    unsigned i;

    (void)t;
    for (i = 0; i < 1500; i++) {
        char k[16];

        snprintf(k, sizeof k, "q:%u", i % 37);
        (void)at_put(NULL, w->c, k, "v", NULL);
        apr_atomic_inc32(&w->done);
    }
    return NULL;
}

static void
test_replay_under_writes(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = at_open("inproc:", NULL);
    at_events_t *ev = at_events_make(p);
    dkv_watch_opts_t wo = prefix_opts();
    dkv_watch_t *w = NULL;
    qwriter_t *qw = apr_pcalloc(p, sizeof *qw);
    apr_thread_t *th;
    apr_status_t trv;
    uint64_t now = 0, start, last = 0;
    int64_t deadline;
    size_t i;
    int gaps = 0;

    DKV_ASSERT_NOT_NULL(c);
    qw->c = c;
    DKV_ASSERT_INT_EQ(apr_thread_create(&th, NULL, q_writer, qw, p),
                      APR_SUCCESS);
    deadline = at_mono_ms() + WAIT_MS;
    while (apr_atomic_read32(&qw->done) < 300 && at_mono_ms() < deadline) {
        apr_thread_yield();
    }
    AT_OK(dkv_revision(&now, c));
    start = now > 100 ? now - 100 : 1;
    wo.start_revision = start;
    AT_OK(dkv_watch_start(&w, c, "q:", 2, &wo, at_events_cb, ev));
    apr_thread_join(&trv, th);
    AT_OK(at_put(NULL, c, "q:zzz", "end", NULL));
    AT_OK(dkv_revision(&last, c));
    DKV_EXPECT_TRUE(at_events_wait_key(ev, DKV_EVENT_PUT, "q:zzz", WAIT_MS)
                    >= 0);
    dkv_watch_stop(w);
    /* Every revision from START to the last, once, in order. */
    DKV_EXPECT_UINT_EQ(ev->n, last - start + 1);
    for (i = 0; i < ev->n; i++) {
        if (ev->ev[i].revision != start + i || ev->ev[i].snapshot) {
            gaps++;
        }
    }
    DKV_EXPECT_INT_EQ(gaps, 0);
    if (gaps) {
        at_events_dump(ev, "replay under writes");
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

/* Registers the api_watch suite. */
void
test_api_watch_register(void)
{
    CU_pSuite s = dkv_test_add_suite("api_watch", NULL, NULL);

    DKV_TEST_ADD(s, test_key_watch);
    DKV_TEST_ADD(s, test_prefix_watchers_isolated);
    DKV_TEST_ADD(s, test_event_order);
    DKV_TEST_ADD(s, test_snapshot_simple);
    DKV_TEST_ADD(s, test_snapshot_under_writes);
    DKV_TEST_ADD(s, test_replay);
    DKV_TEST_ADD(s, test_replay_under_writes);
    DKV_TEST_ADD(s, test_compacted);
    DKV_TEST_ADD(s, test_expiry_and_lease_deletes);
    DKV_TEST_ADD(s, test_stop_from_other_thread);
    DKV_TEST_ADD(s, test_stop_from_callback);
    DKV_TEST_ADD(s, test_close_with_active_watch);
    DKV_TEST_ADD(s, test_watch_bad_input);
    DKV_TEST_ADD(s, test_callback_calls_api);
    DKV_TEST_ADD(s, test_clear_and_batch_events);
}
