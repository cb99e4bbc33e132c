/*
 * test_service.c -- the node's request service (src/node/service.c),
 * driven directly with encoded request frames and a send callback that
 * records what comes back: no sockets.
 */
#include <stdio.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_time.h>

#include "testutil.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/proto.h"
#include "engine/engine.h"
#include "node/service.h"
#include "node/service-int.h"

/* ------------------------------------------------------------- harness */

typedef struct got_frame {
    struct got_frame *next;
    uint64_t conn;
    dkv_service_out_t kind;
    unsigned char *data;
    size_t len;
} got_frame_t;

typedef struct harness {
    apr_pool_t *pool;
    dkv_engine_t *engine;
    dkv_service_t *svc;
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *cond;
    got_frame_t *frames, **tail;
    uint64_t refuse_conn;       /* its EVENTS frames are refused */
    int gate;                   /* 1: responses wait until it is 0 */
    int gated;                  /* a response is waiting at the gate */
} harness_t;

static int
on_send(void *baton, uint64_t conn, dkv_service_out_t kind,
        uint64_t watch_id, dkv_wbuf_t *frames)
{
    harness_t *h = baton;
    size_t off = 0;
    int spins;

    (void)watch_id;
    apr_thread_mutex_lock(h->lock);
    if (kind == DKV_SERVICE_EVENTS && conn == h->refuse_conn) {
        apr_thread_mutex_unlock(h->lock);
        dkv_wbuf_free(frames);
        return 1;
    }
    /* Bounded (10 s): a test that fails before opening the gate must
     * not leave the service's thread waiting here forever. */
    for (spins = 0; h->gate && spins < 1000; spins++) {
        h->gated = 1;
        apr_thread_cond_broadcast(h->cond);
        apr_thread_cond_timedwait(h->cond, h->lock, apr_time_from_msec(10));
    }
    /* One record per frame. */
    while (off < frames->len) {
        dkv_frame_t fr;
        size_t size;
        got_frame_t *g;

        if (dkv_proto_frame_parse(&fr, &size, frames->data + off,
                                  frames->len - off, 0xFFFFFFFFu)
            != DKV_OK) {
            break;
        }
        g = dkv_calloc(1, sizeof(*g));
        g->conn = conn;
        g->kind = kind;
        g->data = dkv_malloc(size);
        memcpy(g->data, frames->data + off, size);
        g->len = size;
        *h->tail = g;
        h->tail = &g->next;
        off += size;
    }
    apr_thread_cond_broadcast(h->cond);
    apr_thread_mutex_unlock(h->lock);
    dkv_wbuf_free(frames);
    return 0;
}

static harness_t *
h_start(uint64_t history, unsigned readers)
{
    apr_pool_t *pool = dkv_test_pool();
    harness_t *h = apr_pcalloc(pool, sizeof(*h));
    dkv_engine_opts_t eo;
    dkv_service_opts_t so;

    h->pool = pool;
    h->tail = &h->frames;
    memset(&eo, 0, sizeof(eo));
    eo.no_sync = 1;
    eo.map_size = 64u * 1024u * 1024u;
    eo.history_retain = history;
    DKV_ASSERT_OK(dkv_engine_open(&h->engine, dkv_test_tempdir(pool), &eo,
                                  pool));
    DKV_ASSERT_OK(apr_thread_mutex_create(&h->lock,
                                          APR_THREAD_MUTEX_DEFAULT, pool));
    DKV_ASSERT_OK(apr_thread_cond_create(&h->cond, pool));
    memset(&so, 0, sizeof(so));
    so.readers = readers;
    so.instance = "test-node";
    so.expire_interval_ms = 10;
    DKV_ASSERT_OK(dkv_service_create(&h->svc, h->engine, &so, on_send, h,
                                     pool));
    return h;
}

static void
h_stop(harness_t *h)
{
    got_frame_t *g;

    dkv_service_destroy(h->svc);
    h->svc = NULL;
    while ((g = h->frames) != NULL) {
        h->frames = g->next;
        dkv_free(g->data);
        dkv_free(g);
    }
    dkv_engine_close(h->engine);
    apr_pool_destroy(h->pool);
}

/* Encodes REQ (op, id set by the caller) and submits it on CONN. */
static void
h_submit(harness_t *h, uint64_t conn, dkv_request_t *req)
{
    dkv_wbuf_t out;

    dkv_wbuf_init(&out, 0);
    DKV_ASSERT_OK(dkv_proto_request_encode(&out, req));
    dkv_service_submit(h->svc, conn, out.data, out.len);
}

/* Removes and returns the first recorded frame of CONN with OP (any
 * op when 0) and ID, waiting up to 5 s; NULL on timeout. */
static got_frame_t *
h_take(harness_t *h, uint64_t conn, uint8_t op, uint64_t id, int wait_ms)
{
    apr_time_t end = apr_time_now() + apr_time_from_msec(wait_ms);
    got_frame_t *found = NULL;

    apr_thread_mutex_lock(h->lock);
    for (;;) {
        got_frame_t **pg;

        for (pg = &h->frames; *pg != NULL; pg = &(*pg)->next) {
            dkv_frame_t fr;
            size_t size;

            dkv_proto_frame_parse(&fr, &size, (*pg)->data, (*pg)->len,
                                  0xFFFFFFFFu);
            if ((*pg)->conn == conn && fr.id == id
                && (op == 0 || fr.op == op)) {
                found = *pg;
                *pg = found->next;
                if (h->tail == &found->next) {
                    h->tail = pg;
                }
                break;
            }
        }
        if (found != NULL || apr_time_now() >= end) {
            break;
        }
        apr_thread_cond_timedwait(h->cond, h->lock,
                                  apr_time_from_msec(20));
    }
    apr_thread_mutex_unlock(h->lock);
    return found;
}

/* Waits for the response to request ID of CONN and decodes it into
 * *RES (in POOL).  The frame is kept alive in POOL. */
static void
h_response(harness_t *h, uint64_t conn, uint64_t id, uint8_t op,
           dkv_response_t *res, apr_pool_t *pool)
{
    got_frame_t *g = h_take(h, conn, (uint8_t)(op | DKV_PROTO_RESPONSE),
                            id, 5000);
    dkv_frame_t fr;
    size_t size;
    unsigned char *copy;

    DKV_ASSERT_NOT_NULL(g);
    copy = apr_pmemdup(pool, g->data, g->len);
    dkv_proto_frame_parse(&fr, &size, copy, g->len, 0xFFFFFFFFu);
    dkv_free(g->data);
    dkv_free(g);
    DKV_ASSERT_OK(dkv_proto_response_decode(res, &fr, pool));
}

/* Submits REQ on CONN and waits for its response. */
static dkv_status_t
h_call(harness_t *h, uint64_t conn, dkv_request_t *req, dkv_response_t *res,
       apr_pool_t *pool)
{
    h_submit(h, conn, req);
    h_response(h, conn, req->id, req->op, res, pool);
    return res->status;
}

/* Takes the EVENT frames of watch ID on CONN, appending their events
 * to EVS (up to MAX; *N counts them), until *N >= WANT or WAIT_MS pass. */
static void
h_events(harness_t *h, uint64_t conn, uint64_t id, dkv_event_t *evs,
         size_t *n, size_t max, size_t want, int wait_ms, apr_pool_t *pool)
{
    apr_time_t end = apr_time_now() + apr_time_from_msec(wait_ms);

    while (*n < want || want == 0) {
        apr_time_t left = end - apr_time_now();
        got_frame_t *g;
        dkv_event_t *got;
        size_t k, i, size;
        dkv_frame_t fr;
        unsigned char *copy;

        if (left <= 0) {
            break;
        }
        g = h_take(h, conn, DKV_MSG_EVENT, id,
                   (int)apr_time_as_msec(left) + 1);
        if (g == NULL) {
            break;
        }
        copy = apr_pmemdup(pool, g->data, g->len);
        dkv_proto_frame_parse(&fr, &size, copy, g->len, 0xFFFFFFFFu);
        dkv_free(g->data);
        dkv_free(g);
        DKV_ASSERT_OK(dkv_proto_events_decode(&got, &k, &fr, pool));
        for (i = 0; i < k && *n < max; i++) {
            evs[(*n)++] = got[i];
        }
    }
}

static void
put_req(dkv_request_t *req, uint64_t id, const char *key, const char *value)
{
    memset(req, 0, sizeof(*req));
    req->op = DKV_MSG_PUT;
    req->id = id;
    req->key = key;
    req->key_len = strlen(key);
    req->value = value;
    req->value_len = strlen(value);
}

static void
key_req(dkv_request_t *req, uint8_t op, uint64_t id, const char *key)
{
    memset(req, 0, sizeof(*req));
    req->op = op;
    req->id = id;
    req->key = key;
    req->key_len = key ? strlen(key) : 0;
}

/* --------------------------------------------------------------- tests */

static void
test_operations(void)
{
    harness_t *h = h_start(0, 2);
    apr_pool_t *p = h->pool;
    dkv_request_t req;
    dkv_response_t res;
    dkv_kv_t kvs[2];
    dkv_key_t keys[3];
    dkv_op_t ops[2];
    uint64_t lease;

    put_req(&req, 1, "a", "1");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_TRUE(res.result.mutated);
    DKV_EXPECT_UINT_EQ(res.result.revision, 1);
    DKV_EXPECT_STR_EQ(res.message, "");

    key_req(&req, DKV_MSG_GET, 2, "a");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_MEM_EQ(res.item.value, res.item.value_len, "1", 1);
    key_req(&req, DKV_MSG_GET, 3, "zz");
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, p), DKV_ENOTFOUND);

    /* if_absent conflict: a logical failure with a message. */
    put_req(&req, 4, "a", "2");
    req.put.if_absent = 1;
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, p), DKV_ECONFLICT);

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_PUT_MANY;
    req.id = 5;
    kvs[0].key = "b";
    kvs[0].key_len = 1;
    kvs[0].value = "x";
    kvs[0].value_len = 1;
    kvs[1].key = "c";
    kvs[1].key_len = 1;
    kvs[1].value = "y";
    kvs[1].value_len = 1;
    req.kvs = kvs;
    req.n = 2;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_UINT_EQ(res.n, 2);

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_GET_MANY;
    req.id = 6;
    keys[0].key = "a";
    keys[0].key_len = 1;
    keys[1].key = "b";
    keys[1].key_len = 1;
    keys[2].key = "nope";
    keys[2].key_len = 4;
    req.keys = keys;
    req.n = 3;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_ASSERT_UINT_EQ(res.n, 3);
    DKV_EXPECT_INT_EQ(res.items[1].status, DKV_OK);
    DKV_EXPECT_INT_EQ(res.items[2].status, DKV_ENOTFOUND);

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_COUNT;
    req.id = 7;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_UINT_EQ(res.u64, 3);

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_SCAN;
    req.id = 8;
    req.scan.limit = 2;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_UINT_EQ(res.page.count, 2);
    DKV_EXPECT_TRUE(res.page.more);

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_BATCH;
    req.id = 9;
    memset(ops, 0, sizeof(ops));
    ops[0].type = DKV_OP_PUT;
    ops[0].key = "d";
    ops[0].key_len = 1;
    ops[0].value = "z";
    ops[0].value_len = 1;
    ops[1].type = DKV_OP_DELETE;
    ops[1].key = "missing";
    ops[1].key_len = 7;
    req.ops = ops;
    req.n = 2;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_ASSERT_UINT_EQ(res.n, 2);
    DKV_EXPECT_INT_EQ(res.results[0].status, DKV_OK);
    DKV_EXPECT_INT_EQ(res.results[1].status, DKV_ENOTFOUND);

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_DELETE_MANY;
    req.id = 10;
    req.keys = keys;
    req.n = 2;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));

    key_req(&req, DKV_MSG_DELETE, 11, "c");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    key_req(&req, DKV_MSG_EXPIRE, 12, "d");
    req.num = 60000;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    key_req(&req, DKV_MSG_REFRESH, 13, "d");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));

    key_req(&req, DKV_MSG_COUNTER_ADD, 14, "ctr");
    req.num = 5;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_INT_EQ(res.num2, 5);
    key_req(&req, DKV_MSG_COUNTER_SET, 15, "ctr");
    req.num = 42;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    key_req(&req, DKV_MSG_COUNTER_GET, 16, "ctr");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_INT_EQ(res.num1, 42);

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_LEASE_GRANT;
    req.id = 17;
    req.num = 10000;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    lease = res.u64;
    DKV_EXPECT_TRUE(lease != 0);
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_LEASE_KEEPALIVE;
    req.id = 18;
    req.u64 = lease;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_LEASE_INFO;
    req.id = 19;
    req.u64 = lease;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_UINT_EQ(res.lease_info.id, lease);

    key_req(&req, DKV_MSG_LOCK_ACQUIRE, 20, "lk");
    req.u64 = lease;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_TRUE(res.lock.acquired);
    key_req(&req, DKV_MSG_LOCK_RELEASE, 22, "lk");
    req.u64 = res.lock.token;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_LEASE_REVOKE;
    req.id = 23;
    req.u64 = lease;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_TXN_COMMIT;
    req.id = 24;
    memset(ops, 0, sizeof(ops));
    ops[0].type = DKV_OP_PUT;
    ops[0].key = "t";
    ops[0].key_len = 1;
    ops[0].value = "v";
    ops[0].value_len = 1;
    req.ops = ops;
    req.n = 1;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_TRUE(res.revision > 0);

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_REVISION;
    req.id = 25;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_UINT_EQ(res.revision, dkv_service_revision(h->svc));
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_PING;
    req.id = 26;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_STR_EQ(res.instance, "test-node");

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_CLEAR;
    req.id = 27;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_TRUE(res.u64 >= 3);

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_SEARCH;
    req.id = 28;
    req.query.entity = "order";
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_UINT_EQ(res.page.count, 0);
    h_stop(h);
}

static void
test_malformed(void)
{
    harness_t *h = h_start(0, 1);
    dkv_request_t req;
    dkv_response_t res;
    dkv_wbuf_t out;
    unsigned char *f;

    /* A PUT whose body is cut short. */
    put_req(&req, 7, "k", "v");
    dkv_wbuf_init(&out, 0);
    DKV_ASSERT_OK(dkv_proto_request_encode(&out, &req));
    out.data[0] = 0;
    out.data[1] = 0;
    out.data[2] = 0;
    out.data[3] = 12 + 3;
    dkv_service_submit(h->svc, 1, out.data, 16 + 3);
    h_response(h, 1, 7, DKV_MSG_PUT, &res, h->pool);
    DKV_EXPECT_INT_EQ(res.status, DKV_EINVAL);
    DKV_EXPECT_TRUE(res.message[0] != '\0');

    /* An unknown op. */
    f = dkv_calloc(1, 16);
    f[3] = 12;
    f[4] = 0x5A;
    f[15] = 8;
    dkv_service_submit(h->svc, 1, f, 16);
    h_response(h, 1, 8, 0x5A, &res, h->pool);
    DKV_EXPECT_INT_EQ(res.status, DKV_ENOTIMPL);

    /* Garbage shorter than a header: dropped, no crash. */
    f = dkv_calloc(1, 3);
    dkv_service_submit(h->svc, 1, f, 3);

    /* The connection still works. */
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_PING;
    req.id = 9;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, h->pool));
    h_stop(h);
}

static void
test_group_commit(void)
{
    harness_t *h = h_start(0, 1);
    dkv_request_t req;
    dkv_response_t res;
    dkv_service_stats_t st;
    char key[32];
    uint64_t i;
    int ok = 1;

    dkv_service_stats_t base;

    /* The group of one elects itself first (its own commits): count
     * from after a first write. */
    put_req(&req, 2, "warm", "v");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, h->pool));
    dkv_service_stats(&base, h->svc);

    /* Hold the replica in its first send while 200 writes queue up. */
    h->gate = 1;
    put_req(&req, 1, "first", "v");
    h_submit(h, 1, &req);
    apr_thread_mutex_lock(h->lock);
    for (i = 0; i < 500 && !h->gated; i++) {
        apr_thread_cond_timedwait(h->cond, h->lock, apr_time_from_msec(10));
    }
    apr_thread_mutex_unlock(h->lock);
    DKV_ASSERT_TRUE(h->gated);
    for (i = 0; i < 200; i++) {
        apr_snprintf(key, sizeof(key), "k%03u", (unsigned)i);
        put_req(&req, 100 + i, key, "v");
        h_submit(h, 1, &req);
    }
    apr_thread_mutex_lock(h->lock);
    h->gate = 0;
    apr_thread_cond_broadcast(h->cond);
    apr_thread_mutex_unlock(h->lock);
    h_response(h, 1, 1, DKV_MSG_PUT, &res, h->pool);
    for (i = 0; i < 200; i++) {
        h_response(h, 1, 100 + i, DKV_MSG_PUT, &res, h->pool);
        if (ok && (res.status != DKV_OK || res.result.revision != i + 3)) {
            fprintf(stderr, "\n  write %u: status %d, revision %llu "
                    "(expected %llu)\n", (unsigned)i, (int)res.status,
                    (unsigned long long)res.result.revision,
                    (unsigned long long)(i + 3));
            ok = 0;
        }
    }
    DKV_EXPECT_TRUE(ok);
    dkv_service_stats(&st, h->svc);
    DKV_EXPECT_UINT_EQ(st.writes - base.writes, 201);
    DKV_EXPECT_TRUE(st.commits - base.commits <= 3);
    DKV_EXPECT_TRUE(st.largest >= 100);
    h_stop(h);
}

/* Writes values 1..N of one key from a thread. */
typedef struct writer_arg {
    harness_t *h;
    int n;
} writer_arg_t;

static void *APR_THREAD_FUNC
writer_thread(apr_thread_t *t, void *data)
{
    writer_arg_t *a = data;
    int i;

    (void)t;
    for (i = 1; i <= a->n; i++) {
        dkv_request_t req;
        char v[16];

        apr_snprintf(v, sizeof(v), "%d", i);
        put_req(&req, 1000 + (uint64_t)i, "w/k", v);
        h_submit(a->h, 9, &req);
        if (i % 50 == 0) {
            apr_sleep(1000);
        }
    }
    return NULL;
}

/* Parses an event value "N". */
static int
ev_int(const dkv_event_t *e)
{
    int v = 0;
    size_t i;

    for (i = 0; i < e->value_len; i++) {
        v = v * 10 + (((const char *)e->value)[i] - '0');
    }
    return v;
}

static void
test_watch_exact(void)
{
    harness_t *h = h_start(0, 2);
    enum { N = 600 };
    writer_arg_t a;
    apr_thread_t *t;
    dkv_request_t req;
    dkv_response_t res;
    dkv_event_t *evs = apr_pcalloc(h->pool, (N + 10) * sizeof(*evs));
    size_t n = 0, i;
    int expect, ok = 1;
    uint64_t rev, last;

    a.h = h;
    a.n = N;
    DKV_ASSERT_OK(apr_thread_create(&t, NULL, writer_thread, &a, h->pool));
    /* Watch while the writes go on, after the 100th. */
    h_response(h, 9, 1100, DKV_MSG_PUT, &res, h->pool);
    key_req(&req, DKV_MSG_WATCH, 77, "w/");
    req.watch_flags = DKV_PROTO_WATCH_PREFIX | DKV_PROTO_WATCH_SNAPSHOT;
    DKV_ASSERT_OK(h_call(h, 2, &req, &res, h->pool));
    rev = res.revision;
    DKV_ASSERT_OK(dkv_test_thread_join(NULL, t));
    /* The snapshot (if the key existed at R), then every later value. */
    h_events(h, 2, 77, evs, &n, N + 10, 0, 1500, h->pool);
    DKV_ASSERT_TRUE(n >= 1);
    i = 0;
    expect = 1;
    if (evs[0].snapshot) {
        DKV_EXPECT_UINT_EQ(evs[0].revision, rev);
        expect = ev_int(&evs[0]) + 1;
        i = 1;
    }
    last = rev;
    for (; i < n; i++) {
        if (ok && (evs[i].snapshot || evs[i].revision <= last
                   || ev_int(&evs[i]) != expect)) {
            fprintf(stderr, "\n  event %u: snapshot %d, revision %llu "
                    "(last %llu), value %d (expected %d)\n", (unsigned)i,
                    (int)evs[i].snapshot,
                    (unsigned long long)evs[i].revision,
                    (unsigned long long)last, ev_int(&evs[i]), expect);
            ok = 0;
        }
        last = evs[i].revision;
        expect++;
    }
    DKV_EXPECT_TRUE(ok);
    DKV_EXPECT_INT_EQ(expect, N + 1);

    /* A replay from a revision: exactly the changes from it on. */
    key_req(&req, DKV_MSG_WATCH, 78, "w/k");
    req.u64 = rev;
    DKV_ASSERT_OK(h_call(h, 3, &req, &res, h->pool));
    n = 0;
    h_events(h, 3, 78, evs, &n, N + 10, res.revision - rev + 1, 3000,
             h->pool);
    DKV_EXPECT_UINT_EQ(n, res.revision - rev + 1);
    DKV_EXPECT_UINT_EQ(evs[0].revision, rev);
    h_stop(h);
}

static void
test_watch_compacted(void)
{
    harness_t *h = h_start(10, 1);
    dkv_request_t req;
    dkv_response_t res;
    int i;

    for (i = 0; i < 30; i++) {
        put_req(&req, (uint64_t)i, "x", "v");
        DKV_ASSERT_OK(h_call(h, 1, &req, &res, h->pool));
    }
    key_req(&req, DKV_MSG_WATCH, 50, "x");
    req.u64 = 1;
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, h->pool), DKV_ECOMPACTED);
    /* snapshot and start_revision together: EINVAL. */
    key_req(&req, DKV_MSG_WATCH, 51, "x");
    req.u64 = 25;
    req.watch_flags = DKV_PROTO_WATCH_SNAPSHOT;
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, h->pool), DKV_EINVAL);
    h_stop(h);
}

static void
test_watch_slow_cancel_close(void)
{
    harness_t *h = h_start(0, 1);
    dkv_request_t req;
    dkv_response_t res;
    dkv_event_t evs[8];
    size_t n = 0;
    got_frame_t *g;

    h->refuse_conn = 3;
    key_req(&req, DKV_MSG_WATCH, 1, "s");
    DKV_ASSERT_OK(h_call(h, 3, &req, &res, h->pool));   /* slow */
    key_req(&req, DKV_MSG_WATCH, 2, "s");
    DKV_ASSERT_OK(h_call(h, 4, &req, &res, h->pool));   /* cancelled */
    key_req(&req, DKV_MSG_WATCH, 3, "s");
    DKV_ASSERT_OK(h_call(h, 5, &req, &res, h->pool));   /* closed */
    key_req(&req, DKV_MSG_WATCH, 3, "s");               /* id in use */
    DKV_EXPECT_STATUS(h_call(h, 5, &req, &res, h->pool), DKV_EINVAL);

    put_req(&req, 10, "s", "1");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, h->pool));
    /* The slow one ends with an EUNAVAILABLE error event, sent as a
     * response-kind frame. */
    h_events(h, 3, 1, evs, &n, 8, 1, 3000, h->pool);
    DKV_ASSERT_UINT_EQ(n, 1);
    DKV_EXPECT_INT_EQ(evs[0].type, DKV_EVENT_ERROR);
    DKV_EXPECT_INT_EQ(evs[0].status, DKV_EUNAVAILABLE);
    n = 0;
    h_events(h, 4, 2, evs, &n, 8, 1, 3000, h->pool);
    DKV_EXPECT_UINT_EQ(n, 1);

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_WATCH_CANCEL;
    req.id = 20;
    req.u64 = 2;
    DKV_ASSERT_OK(h_call(h, 4, &req, &res, h->pool));
    dkv_service_conn_closed(h->svc, 5);
    /* conn 5's first event may already be recorded: drop it. */
    n = 0;
    h_events(h, 5, 3, evs, &n, 8, 1, 200, h->pool);

    put_req(&req, 11, "s", "2");
    h->refuse_conn = 0;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, h->pool));
    put_req(&req, 12, "s", "3");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, h->pool));
    g = h_take(h, 3, DKV_MSG_EVENT, 1, 200);
    DKV_EXPECT_TRUE(g == NULL);
    g = h_take(h, 4, DKV_MSG_EVENT, 2, 200);
    DKV_EXPECT_TRUE(g == NULL);
    g = h_take(h, 5, DKV_MSG_EVENT, 3, 200);
    DKV_EXPECT_TRUE(g == NULL);
    h_stop(h);
}

static void
test_shutdown(void)
{
    harness_t *h = h_start(0, 2);
    dkv_request_t req;
    dkv_response_t res;
    dkv_event_t evs[4];
    size_t n = 0;
    int i;

    key_req(&req, DKV_MSG_WATCH, 1, "q");
    DKV_ASSERT_OK(h_call(h, 2, &req, &res, h->pool));
    for (i = 0; i < 20; i++) {
        put_req(&req, 100 + (uint64_t)i, "p", "v");
        h_submit(h, 1, &req);
    }
    dkv_service_shutdown(h->svc);
    put_req(&req, 200, "p", "late");
    h_submit(h, 1, &req);
    key_req(&req, DKV_MSG_GET, 201, "p");
    h_submit(h, 1, &req);
    for (i = 0; i < 20; i++) {
        h_response(h, 1, 100 + (uint64_t)i, DKV_MSG_PUT, &res, h->pool);
        DKV_EXPECT_INT_EQ(res.status, DKV_OK);
    }
    h_response(h, 1, 200, DKV_MSG_PUT, &res, h->pool);
    DKV_EXPECT_INT_EQ(res.status, DKV_EUNAVAILABLE);
    DKV_EXPECT_STR_EQ(res.message, "node shutting down");
    h_response(h, 1, 201, DKV_MSG_GET, &res, h->pool);
    DKV_EXPECT_INT_EQ(res.status, DKV_EUNAVAILABLE);
    h_events(h, 2, 1, evs, &n, 4, 1, 3000, h->pool);
    DKV_ASSERT_UINT_EQ(n, 1);
    DKV_EXPECT_INT_EQ(evs[0].type, DKV_EVENT_ERROR);
    DKV_EXPECT_INT_EQ(evs[0].status, DKV_EUNAVAILABLE);
    h_stop(h);
}

static void
test_expiry_events(void)
{
    harness_t *h = h_start(0, 1);
    dkv_request_t req;
    dkv_response_t res;
    dkv_event_t evs[4];
    size_t n = 0;

    key_req(&req, DKV_MSG_WATCH, 1, "e");
    DKV_ASSERT_OK(h_call(h, 2, &req, &res, h->pool));
    put_req(&req, 2, "e", "v");
    req.put.ttl_ms = 30;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, h->pool));
    h_events(h, 2, 1, evs, &n, 4, 2, 3000, h->pool);
    DKV_ASSERT_UINT_EQ(n, 2);
    DKV_EXPECT_INT_EQ(evs[0].type, DKV_EVENT_PUT);
    DKV_EXPECT_INT_EQ(evs[1].type, DKV_EVENT_DELETE);
    h_stop(h);
}

/* A failed PUT, DELETE, EXPIRE, REFRESH carries its result (status,
 * mutated 0, the current revision) and a failed GET its item, as the
 * in-process backend fills them; requests that did not run do not. */
static void
test_failure_results(void)
{
    harness_t *h = h_start(0, 1);
    apr_pool_t *p = h->pool;
    dkv_request_t req;
    dkv_response_t res;

    put_req(&req, 1, "a", "1");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    put_req(&req, 2, "b", "2");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));

    put_req(&req, 3, "a", "x");
    req.put.if_absent = 1;
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, p), DKV_ECONFLICT);
    DKV_EXPECT_INT_EQ(res.has_result, 1);
    DKV_EXPECT_STATUS(res.result.status, DKV_ECONFLICT);
    DKV_EXPECT_INT_EQ(res.result.mutated, 0);
    DKV_EXPECT_UINT_EQ(res.result.version, 0);
    DKV_EXPECT_UINT_EQ(res.result.revision, 2);

    key_req(&req, DKV_MSG_DELETE, 4, "nope");
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, p), DKV_ENOTFOUND);
    DKV_EXPECT_INT_EQ(res.has_result, 1);
    DKV_EXPECT_UINT_EQ(res.result.revision, 2);

    key_req(&req, DKV_MSG_EXPIRE, 5, "nope");
    req.num = 1000;
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, p), DKV_ENOTFOUND);
    DKV_EXPECT_INT_EQ(res.has_result, 1);
    DKV_EXPECT_UINT_EQ(res.result.revision, 2);

    key_req(&req, DKV_MSG_REFRESH, 6, "a");   /* no TTL: EINVAL */
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, p), DKV_EINVAL);
    DKV_EXPECT_INT_EQ(res.has_result, 1);
    DKV_EXPECT_STATUS(res.result.status, DKV_EINVAL);
    DKV_EXPECT_UINT_EQ(res.result.revision, 2);

    key_req(&req, DKV_MSG_GET, 7, "nope");
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, p), DKV_ENOTFOUND);
    DKV_EXPECT_INT_EQ(res.has_result, 1);
    DKV_EXPECT_STATUS(res.item.status, DKV_ENOTFOUND);
    DKV_EXPECT_MEM_EQ(res.item.key, res.item.key_len, "nope", 4);
    DKV_EXPECT_UINT_EQ(res.item.revision, 2);
    DKV_EXPECT_INT_EQ(res.item.ttl_ms, -1);

    key_req(&req, DKV_MSG_GET, 8, "a");       /* a lock not held */
    req.get.lock = 12345;
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, p), DKV_ELOCKED);
    DKV_EXPECT_INT_EQ(res.has_result, 1);
    DKV_EXPECT_STATUS(res.item.status, DKV_ELOCKED);
    DKV_EXPECT_UINT_EQ(res.item.revision, 2);

    /* Refused before it ran (the node's own argument check): none. */
    key_req(&req, DKV_MSG_EXPIRE, 9, "a");
    req.num = -1;
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, p), DKV_EINVAL);
    DKV_EXPECT_INT_EQ(res.has_result, 0);

    /* A failed write in a commit with others does not move the
     * revision the next reads see. */
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_REVISION;
    req.id = 10;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_UINT_EQ(res.revision, 2);
    put_req(&req, 11, "c", "3");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_UINT_EQ(res.result.revision, 3);
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_REVISION;
    req.id = 12;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_UINT_EQ(res.revision, 3);
    h_stop(h);
}

/* Takes the next EVENT frame of watch ID on CONN: its flags and its
 * event count. */
static int
h_event_frame(harness_t *h, uint64_t conn, uint64_t id, unsigned *flags,
              size_t *n, dkv_event_t **evs, apr_pool_t *pool)
{
    got_frame_t *g = h_take(h, conn, DKV_MSG_EVENT, id, 3000);
    dkv_frame_t fr;
    size_t size;
    unsigned char *copy;

    if (g == NULL) {
        return 0;
    }
    copy = apr_pmemdup(pool, g->data, g->len);
    dkv_proto_frame_parse(&fr, &size, copy, g->len, 0xFFFFFFFFu);
    dkv_free(g->data);
    dkv_free(g);
    *flags = fr.flags;
    DKV_ASSERT_OK(dkv_proto_events_decode(evs, n, &fr, pool));
    return 1;
}

/* An include_snapshot watch: the frame with its last snapshot event has
 * SNAPSHOT_DONE; an empty snapshot is one empty frame with it; live
 * events come after, without it; other watches never have it. */
static void
test_snapshot_done(void)
{
    harness_t *h = h_start(0, 1);
    apr_pool_t *p = h->pool;
    dkv_request_t req;
    dkv_response_t res;
    dkv_event_t *evs;
    unsigned flags;
    size_t n, total = 0;
    char key[16];
    int i, frames = 0, done = 0;

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_PUT_MANY;
    req.id = 1;
    {
        dkv_kv_t *kvs = apr_pcalloc(p, 1200 * sizeof(*kvs));

        for (i = 0; i < 1200; i++) {
            apr_snprintf(key, sizeof(key), "p/%04d", i);
            kvs[i].key = apr_pstrdup(p, key);
            kvs[i].key_len = strlen(key);
            kvs[i].value = "v";
            kvs[i].value_len = 1;
        }
        req.kvs = kvs;
        req.n = 1200;
        DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    }

    key_req(&req, DKV_MSG_WATCH, 20, "p/");
    req.watch_flags = DKV_PROTO_WATCH_PREFIX | DKV_PROTO_WATCH_SNAPSHOT;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    while (!done && frames < 100
           && h_event_frame(h, 1, 20, &flags, &n, &evs, p)) {
        frames++;
        total += n;
        done = (flags & DKV_PROTO_EVENT_SNAPSHOT_DONE) != 0;
        for (i = 0; i < (int)n; i++) {
            DKV_EXPECT_TRUE(evs[i].snapshot);
        }
    }
    DKV_EXPECT_TRUE(done);
    DKV_EXPECT_TRUE(frames >= 3);          /* 512 events per frame */
    DKV_EXPECT_UINT_EQ(total, 1200);
    put_req(&req, 21, "p/live", "x");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_ASSERT_TRUE(h_event_frame(h, 1, 20, &flags, &n, &evs, p));
    DKV_EXPECT_UINT_EQ(flags, 0);
    DKV_ASSERT_UINT_EQ(n, 1);
    DKV_EXPECT_TRUE(!evs[0].snapshot);

    /* Empty snapshot: one frame, no events, the flag. */
    key_req(&req, DKV_MSG_WATCH, 30, "none/");
    req.watch_flags = DKV_PROTO_WATCH_PREFIX | DKV_PROTO_WATCH_SNAPSHOT;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_ASSERT_TRUE(h_event_frame(h, 1, 30, &flags, &n, &evs, p));
    DKV_EXPECT_UINT_EQ(flags, DKV_PROTO_EVENT_SNAPSHOT_DONE);
    DKV_EXPECT_UINT_EQ(n, 0);

    /* Single key with a snapshot: its one event carries the flag. */
    key_req(&req, DKV_MSG_WATCH, 40, "p/0001");
    req.watch_flags = DKV_PROTO_WATCH_SNAPSHOT;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_ASSERT_TRUE(h_event_frame(h, 1, 40, &flags, &n, &evs, p));
    DKV_EXPECT_UINT_EQ(flags, DKV_PROTO_EVENT_SNAPSHOT_DONE);
    DKV_EXPECT_UINT_EQ(n, 1);

    /* No snapshot asked: no marker frame. */
    key_req(&req, DKV_MSG_WATCH, 50, "p/");
    req.watch_flags = DKV_PROTO_WATCH_PREFIX;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    DKV_EXPECT_TRUE(!h_event_frame(h, 1, 50, &flags, &n, &evs, p) ? 1
                    : 0);
    h_stop(h);
}

/* ---------------------------------------------------------------- STATS */

/* The names STATS answers, in order (docs/admin-api.md, "Node
 * metrics"). */
static const char *const stat_names[] = {
    "gets_total", "puts_total", "removes_total", "requests_total",
    "errors_total", "items", "connections", "watches",
    "request_latency_us_le_100", "request_latency_us_le_250",
    "request_latency_us_le_500", "request_latency_us_le_1000",
    "request_latency_us_le_2500", "request_latency_us_le_5000",
    "request_latency_us_le_10000", "request_latency_us_le_25000",
    "request_latency_us_le_50000", "request_latency_us_le_100000",
    "request_latency_us_le_250000", "request_latency_us_le_1000000",
    "request_latency_us_le_inf", "request_latency_us_sum", "raft_term",
    "raft_leader", "raft_commit_index", "raft_applied_index",
    "raft_proposals_total", "fsyncs_total", "fsync_us_total", "node_id",
    "uptime_ms"
};
#define NSTAT_NAMES (sizeof(stat_names) / sizeof(stat_names[0]))

/* Asks for STATS on CONN (request ID) into *RES; checks the names. */
static void
h_stats(harness_t *h, uint64_t conn, uint64_t id, dkv_response_t *res)
{
    dkv_request_t req;
    size_t i;

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_STATS;
    req.id = id;
    DKV_ASSERT_OK(h_call(h, conn, &req, res, h->pool));
    DKV_ASSERT_UINT_EQ(res->nstats, NSTAT_NAMES);
    for (i = 0; i < NSTAT_NAMES; i++) {
        DKV_EXPECT_STR_EQ(res->stats[i].name, stat_names[i]);
    }
}

/* The value of metric NAME in STATS answer RES. */
static uint64_t
stat_of(const dkv_response_t *res, const char *name)
{
    size_t i;

    for (i = 0; i < res->nstats; i++) {
        if (!strcmp(res->stats[i].name, name)) {
            return res->stats[i].value;
        }
    }
    DKV_ASSERT_TRUE(!"metric missing");
    return 0;
}

/* Checks the latency histogram of RES: cumulative, le_inf == requests
 * answered before it. */
static void
check_histogram(const dkv_response_t *res)
{
    uint64_t prev = 0, v, requests = stat_of(res, "requests_total");
    size_t i;

    for (i = 8; i <= 20; i++) {
        v = res->stats[i].value;
        DKV_EXPECT_TRUE(v >= prev);
        prev = v;
    }
    DKV_EXPECT_UINT_EQ(stat_of(res, "request_latency_us_le_inf"), requests);
    /* At most 10 s each, spent in this test. */
    DKV_EXPECT_TRUE(stat_of(res, "request_latency_us_sum")
                    <= requests * 10000000u);
}

static void
test_stats(void)
{
    enum { NPUTS = 7, NGETS = 5 };
    harness_t *h = h_start(0, 2);
    apr_pool_t *p = h->pool;
    dkv_request_t req;
    dkv_response_t res, st, st2;
    dkv_key_t keys[10];
    dkv_kv_t kvs[3];
    dkv_op_t ops[3];
    unsigned char *f;
    uint64_t requests, id = 100;
    int tries;
    size_t i;
    char *k;

    /* Nothing yet: every counter 0, the STATS itself not counted. */
    h_stats(h, 1, id++, &st);
    for (i = 0; i < 8; i++) {
        DKV_EXPECT_UINT_EQ(st.stats[i].value, 0);
    }
    check_histogram(&st);
    DKV_EXPECT_TRUE(stat_of(&st, "uptime_ms") < 600000u);

    /* N puts and M gets over two connections: exact counts. */
    for (i = 0; i < NPUTS; i++) {
        k = apr_psprintf(p, "k%u", (unsigned)i);
        put_req(&req, id++, k, "v");
        DKV_ASSERT_OK(h_call(h, 1 + i % 2, &req, &res, p));
    }
    for (i = 0; i < NGETS; i++) {
        k = apr_psprintf(p, "k%u", (unsigned)i);
        key_req(&req, DKV_MSG_GET, id++, k);
        DKV_ASSERT_OK(h_call(h, 1 + i % 2, &req, &res, p));
    }
    h_stats(h, 2, id++, &st);
    DKV_EXPECT_UINT_EQ(stat_of(&st, "puts_total"), NPUTS);
    DKV_EXPECT_UINT_EQ(stat_of(&st, "gets_total"), NGETS);
    DKV_EXPECT_UINT_EQ(stat_of(&st, "removes_total"), 0);
    /* The first STATS, the puts and the gets. */
    DKV_EXPECT_UINT_EQ(stat_of(&st, "requests_total"), 1 + NPUTS + NGETS);
    DKV_EXPECT_UINT_EQ(stat_of(&st, "errors_total"), 0);
    DKV_EXPECT_UINT_EQ(stat_of(&st, "items"), NPUTS);
    check_histogram(&st);
    DKV_EXPECT_TRUE(stat_of(&st, "raft_term") >= 1);
    DKV_EXPECT_UINT_EQ(stat_of(&st, "raft_leader"),
                       stat_of(&st, "node_id"));
    DKV_EXPECT_TRUE(stat_of(&st, "raft_applied_index")
                    <= stat_of(&st, "raft_commit_index"));
    requests = stat_of(&st, "requests_total") + 1;

    /* Bulk operations count per key, BATCH and TXN ops by kind; a miss
     * and a malformed request are errors. */
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_GET_MANY;
    req.id = id++;
    for (i = 0; i < 10; i++) {
        keys[i].key = apr_psprintf(p, "k%u", (unsigned)(i % NPUTS));
        keys[i].key_len = strlen(keys[i].key);
    }
    req.keys = keys;
    req.n = 10;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_PUT_MANY;
    req.id = id++;
    for (i = 0; i < 3; i++) {
        kvs[i].key = apr_psprintf(p, "m%u", (unsigned)i);
        kvs[i].key_len = 2;
        kvs[i].value = "x";
        kvs[i].value_len = 1;
    }
    req.kvs = kvs;
    req.n = 3;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    key_req(&req, DKV_MSG_DELETE, id++, "k0");
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_DELETE_MANY;
    req.id = id++;
    req.keys = keys + 1;
    req.n = 2;
    DKV_ASSERT_OK(h_call(h, 1, &req, &res, p));
    memset(ops, 0, sizeof(ops));
    ops[0].type = DKV_OP_PUT;
    ops[0].key = "b1";
    ops[0].key_len = 2;
    ops[0].value = "1";
    ops[0].value_len = 1;
    ops[1] = ops[0];
    ops[1].key = "b2";
    ops[2].type = DKV_OP_DELETE;
    ops[2].key = "k3";
    ops[2].key_len = 2;
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_BATCH;
    req.id = id++;
    req.ops = ops;
    req.n = 3;
    DKV_ASSERT_OK(h_call(h, 2, &req, &res, p));
    ops[0].key = "t1";
    ops[2].key = "k4";
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_TXN_COMMIT;
    req.id = id++;
    req.ops = ops;
    req.n = 1;
    DKV_ASSERT_OK(h_call(h, 2, &req, &res, p));
    req.id = id++;
    req.ops = ops + 2;
    DKV_ASSERT_OK(h_call(h, 2, &req, &res, p));
    key_req(&req, DKV_MSG_GET, id++, "nope");
    DKV_EXPECT_STATUS(h_call(h, 1, &req, &res, p), DKV_ENOTFOUND);
    f = dkv_calloc(1, 16);
    f[3] = 12;
    f[4] = 0x5A;
    dkv_put_be64(f + 8, id);
    dkv_service_submit(h->svc, 3, f, 16);
    h_response(h, 3, id++, 0x5A, &res, p);
    DKV_EXPECT_STATUS(res.status, DKV_ENOTIMPL);
    requests += 9;

    /* MEMBER_ADD goes to the replica, which has no group to add to. */
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_MEMBER_ADD;
    req.id = id++;
    req.member_id = 2;
    req.member_host = "127.0.0.1";
    req.member_cluster_port = 9;
    DKV_EXPECT_STATUS(h_call(h, 3, &req, &res, p), DKV_ENOTIMPL);
    requests++;

    /* A watch, and the connections the network half reports. */
    key_req(&req, DKV_MSG_WATCH, id++, "w");
    DKV_ASSERT_OK(h_call(h, 4, &req, &res, p));
    requests++;
    dkv_service_set_connections(h->svc, 3);

    /* The watch is answered before it is registered (answer, backlog,
     * then live events), so the gauge may lag the answer briefly. */
    for (tries = 0; tries < 100; tries++) {
        h_stats(h, 1, id++, &st2);
        requests++;
        if (stat_of(&st2, "watches") == 1) {
            break;
        }
        apr_sleep(20000);
    }
    requests--;                     /* the last STATS is not counted yet */
    DKV_EXPECT_UINT_EQ(stat_of(&st2, "gets_total"), NGETS + 10 + 1);
    DKV_EXPECT_UINT_EQ(stat_of(&st2, "puts_total"), NPUTS + 3 + 2 + 1);
    DKV_EXPECT_UINT_EQ(stat_of(&st2, "removes_total"), 1 + 2 + 1 + 1);
    DKV_EXPECT_UINT_EQ(stat_of(&st2, "requests_total"), requests);
    DKV_EXPECT_UINT_EQ(stat_of(&st2, "errors_total"), 3);
    /* k0..k4 deleted, m0..m2, b1, b2 and t1 added. */
    DKV_EXPECT_UINT_EQ(stat_of(&st2, "items"), NPUTS - 5 + 3 + 2 + 1);
    DKV_EXPECT_UINT_EQ(stat_of(&st2, "watches"), 1);
    DKV_EXPECT_UINT_EQ(stat_of(&st2, "connections"), 3);
    check_histogram(&st2);
    DKV_EXPECT_TRUE(stat_of(&st2, "uptime_ms") >= stat_of(&st, "uptime_ms"));
    DKV_EXPECT_TRUE(stat_of(&st2, "raft_applied_index")
                    >= stat_of(&st, "raft_applied_index"));
    dkv_service_set_connections(h->svc, 0);
    h_stats(h, 1, id++, &st);
    DKV_EXPECT_UINT_EQ(stat_of(&st, "connections"), 0);
    DKV_EXPECT_UINT_EQ(stat_of(&st, "requests_total"), requests + 1);
    h_stop(h);
}


void
test_service_register(void)
{
    CU_pSuite s = dkv_test_add_suite("service", NULL, NULL);

    DKV_TEST_ADD(s, test_operations);
    DKV_TEST_ADD(s, test_malformed);
    DKV_TEST_ADD(s, test_group_commit);
    DKV_TEST_ADD(s, test_watch_exact);
    DKV_TEST_ADD(s, test_watch_compacted);
    DKV_TEST_ADD(s, test_watch_slow_cancel_close);
    DKV_TEST_ADD(s, test_shutdown);
    DKV_TEST_ADD(s, test_expiry_events);
    DKV_TEST_ADD(s, test_failure_results);
    DKV_TEST_ADD(s, test_snapshot_done);
    DKV_TEST_ADD(s, test_stats);
}
