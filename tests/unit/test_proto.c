/*
 * test_proto.c -- suite `proto`: the client protocol's codec
 * (src/common/proto.c, docs/protocol.md).
 *
 * Every request and response op is round-tripped with all its fields set
 * (encode, parse the frame, decode, re-encode: the bytes must match, and
 * the decoded fields are checked), then every decoder is run on each
 * sample cut short at every byte and with a trailing byte, each copy in
 * a heap block of its exact size so AddressSanitizer sees any over-read.
 * Hand-made frames check the wire layout, bad bools, counts that the body
 * cannot hold, clause depth and count limits, and the status mapping.
 *
 * With DKV_PROTO_CORPUS=DIR in the environment, the test `write_corpus`
 * also writes every sample frame to DIR, one file each: that is how
 * tests/fuzz/corpus/proto/ was made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_errno.h>
#include <apr_strings.h>

#include "testutil.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/proto.h"

/* ------------------------------------------------------------- samples */

static const dkv_label_t labels[] = {
    { "city", "Paris", 1 },
    { "note", "stored only", 0 }
};

static const dkv_put_opts_t put_opts = {
    500, 7, 1, 3, "user", labels, 2, "text/plain", 9
};

static const dkv_delete_opts_t del_opts = { 4, 11 };

static const dkv_counter_opts_t counter_opts = {
    1, 100, 1, -100, 60000, 13
};

static const dkv_key_t keys[] = {
    { "alpha", 5 }, { "beta", 4 }, { "gamma", 5 }
};

static const dkv_kv_t kvs[] = {
    { "k1", 2, "v1", 2 }, { "k2", 2, "", 0 }
};

static const dkv_op_t ops[] = {
    { DKV_OP_PUT, "p1", 2, "value", 5, &put_opts, NULL },
    { DKV_OP_PUT, "p2", 2, "", 0, NULL, NULL },
    { DKV_OP_DELETE, "d1", 2, NULL, 0, NULL, &del_opts },
    { DKV_OP_DELETE, "d2", 2, NULL, 0, NULL, NULL }
};

static const dkv_proto_compare_t compares[] = {
    { "c1", 2, 17 }, { "c2", 2, 0 }
};

static const dkv_clause_t or_kids[] = {
    { DKV_CLAUSE_RANGE, "age", NULL, "18", NULL, NULL, 0 },
    { DKV_CLAUSE_RANGE, "score", NULL, NULL, "9.5", NULL, 0 },
    { DKV_CLAUSE_PREFIX, "name", "Jo", NULL, NULL, NULL, 0 }
};
static const dkv_clause_t not_kid[] = {
    { DKV_CLAUSE_EQ, "banned", "yes", NULL, NULL, NULL, 0 }
};
static const dkv_clause_t and_kids[] = {
    { DKV_CLAUSE_EQ, "city", "Paris", NULL, NULL, NULL, 0 },
    { DKV_CLAUSE_OR, NULL, NULL, NULL, NULL, or_kids, 3 },
    { DKV_CLAUSE_NOT, NULL, NULL, NULL, NULL, not_kid, 1 }
};
static const dkv_clause_t where = {
    DKV_CLAUSE_AND, NULL, NULL, NULL, NULL, and_kids, 3
};
static const dkv_order_t order[] = { { "age", 1 }, { "name", 0 } };
static const char *const select_[] = { "city", "age" };

/* Fills REQS with one request per op (some ops twice) and returns the
 * count (at most 40). */
static size_t
sample_requests(dkv_request_t *reqs)
{
    size_t n = 0;
    dkv_request_t *r;

#define NEXT(o) (r = &reqs[n++], memset(r, 0, sizeof(*r)), r->op = (o), \
                 r->id = 1000 + n)
    NEXT(DKV_MSG_HELLO);
    r->magic = DKV_PROTO_MAGIC;
    r->min_version = 1;
    r->max_version = 3;
    r->store = "Orders";
    r->token = "s3cret";
    r->token_len = 6;
    r->client = "test_proto on localhost";
    NEXT(DKV_MSG_PING);
    NEXT(DKV_MSG_REVISION);
    r->id = 0;
    NEXT(DKV_MSG_GET);
    r->key = "key";
    r->key_len = 3;
    r->get.meta_only = 1;
    r->get.lock = 77;
    NEXT(DKV_MSG_PUT);
    r->key = "key";
    r->key_len = 3;
    r->value = "the value";
    r->value_len = 9;
    r->put = put_opts;
    NEXT(DKV_MSG_PUT);
    r->key = "k";
    r->key_len = 1;
    r->value = "";
    r->value_len = 0;
    NEXT(DKV_MSG_DELETE);
    r->key = "key";
    r->key_len = 3;
    r->del = del_opts;
    NEXT(DKV_MSG_EXPIRE);
    r->key = "key";
    r->key_len = 3;
    r->num = -5;
    r->u64 = UINT64_MAX;
    NEXT(DKV_MSG_REFRESH);
    r->key = "key";
    r->key_len = 3;
    r->u64 = 42;
    NEXT(DKV_MSG_GET_MANY);
    r->keys = (dkv_key_t *)keys;
    r->n = 3;
    r->get.meta_only = 0;
    r->get.lock = 5;
    NEXT(DKV_MSG_PUT_MANY);
    r->kvs = (dkv_kv_t *)kvs;
    r->n = 2;
    r->put = put_opts;
    NEXT(DKV_MSG_DELETE_MANY);
    r->keys = (dkv_key_t *)keys;
    r->n = 2;
    r->del = del_opts;
    NEXT(DKV_MSG_BATCH);
    r->ops = (dkv_op_t *)ops;
    r->n = 4;
    NEXT(DKV_MSG_CLEAR);
    NEXT(DKV_MSG_CLEAR);
    r->range.prefix = "user/";
    r->range.prefix_len = 5;
    NEXT(DKV_MSG_SCAN);
    r->range.start = "a";
    r->range.start_len = 1;
    r->range.end = "m";
    r->range.end_len = 1;
    r->scan.after = "b";
    r->scan.after_len = 1;
    r->scan.limit = 100;
    r->scan.keys_only = 1;
    NEXT(DKV_MSG_COUNT);
    r->range.start = "a";
    r->range.start_len = 1;
    NEXT(DKV_MSG_COUNTER_ADD);
    r->key = "ctr";
    r->key_len = 3;
    r->num = -3;
    r->counter = counter_opts;
    NEXT(DKV_MSG_COUNTER_GET);
    r->key = "ctr";
    r->key_len = 3;
    NEXT(DKV_MSG_COUNTER_SET);
    r->key = "ctr";
    r->key_len = 3;
    r->num = INT64_MIN;
    r->counter = counter_opts;
    NEXT(DKV_MSG_LEASE_GRANT);
    r->num = 5000;
    NEXT(DKV_MSG_LEASE_KEEPALIVE);
    r->u64 = 8;
    NEXT(DKV_MSG_LEASE_REVOKE);
    r->u64 = 8;
    NEXT(DKV_MSG_LEASE_INFO);
    r->u64 = 8;
    NEXT(DKV_MSG_LOCK_ACQUIRE);
    r->key = "lock";
    r->key_len = 4;
    r->u64 = 8;
    NEXT(DKV_MSG_LOCK_RELEASE);
    r->key = "lock";
    r->key_len = 4;
    r->u64 = 99;
    NEXT(DKV_MSG_TXN_COMMIT);
    r->compares = (dkv_proto_compare_t *)compares;
    r->ncompares = 2;
    r->ops = (dkv_op_t *)ops;
    r->n = 4;
    NEXT(DKV_MSG_SEARCH);
    r->query.entity = "user";
    r->query.where = &where;
    r->query.order = order;
    r->query.norder = 2;
    r->query.limit = 50;
    r->query.select = select_;
    r->query.nselect = 2;
    r->query.keys_only = 0;
    r->search.page_size = 20;
    r->search.cursor = "cursor";
    r->search.cursor_len = 6;
    NEXT(DKV_MSG_SEARCH);
    r->query.entity = "user";
    r->query.keys_only = 1;
    NEXT(DKV_MSG_WATCH);
    r->key = "user/";
    r->key_len = 5;
    r->watch_flags = DKV_PROTO_WATCH_PREFIX | DKV_PROTO_WATCH_SNAPSHOT;
    r->u64 = 12;
    NEXT(DKV_MSG_WATCH);
    r->watch_flags = DKV_PROTO_WATCH_PREFIX;
    NEXT(DKV_MSG_WATCH_CANCEL);
    r->u64 = 1001;
#undef NEXT
    return n;
}

static const dkv_item_t items[] = {
    { DKV_OK, "alpha", 5, "one", 3, 2, 10, 12, 20, 1700000000000,
      1700000005000, 5000, 8, "user", "text/plain", labels, 2 },
    { DKV_ENOTFOUND, "beta", 4, NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, NULL,
      NULL, NULL, 0 },
    { DKV_OK, "gamma", 5, "", 0, 1, 3, 3, 20, -1, 0, -1, 0, "", NULL,
      NULL, 0 }
};

static const dkv_result_t results[] = {
    { DKV_OK, 1, 1, 4, 21 },
    { DKV_ECONFLICT, 0, 0, 0, 21 },
    { DKV_OK, 1, 0, 1, 22 }
};

/* Fills RESS with one response per op and status variant; returns the
 * count (at most 48). */
static size_t
sample_responses(dkv_response_t *ress)
{
    size_t n = 0;
    dkv_response_t *r;

#define NEXT(o) (r = &ress[n++], memset(r, 0, sizeof(*r)), r->op = (o), \
                 r->id = 2000 + n, r->message = "")
    NEXT(DKV_MSG_HELLO);
    r->version = 1;
    r->store = "Orders";
    r->instance = "node-a";
    r->max_frame = DKV_PROTO_DEFAULT_FRAME;
    r->max_value = 1048576;
    r->revision = 77;
    NEXT(DKV_MSG_HELLO);
    r->status = DKV_EUNAUTHORIZED;
    r->message = "token refused";
    NEXT(DKV_MSG_PING);
    r->revision = 77;
    r->node_time = 1700000000123;
    r->instance = "node-a";
    NEXT(DKV_MSG_REVISION);
    r->revision = UINT64_MAX;
    NEXT(DKV_MSG_GET);
    r->item = items[0];
    NEXT(DKV_MSG_GET);
    r->status = DKV_ENOTFOUND;
    r->message = "no such key";
    NEXT(DKV_MSG_PUT);
    r->result = results[0];
    NEXT(DKV_MSG_DELETE);
    r->result = results[1];
    NEXT(DKV_MSG_EXPIRE);
    r->result = results[2];
    NEXT(DKV_MSG_REFRESH);
    r->result = results[0];
    NEXT(DKV_MSG_GET_MANY);
    r->items = (dkv_item_t *)items;
    r->n = 3;
    NEXT(DKV_MSG_PUT_MANY);
    r->results = (dkv_result_t *)results;
    r->n = 3;
    NEXT(DKV_MSG_DELETE_MANY);
    r->results = (dkv_result_t *)results;
    r->n = 2;
    NEXT(DKV_MSG_BATCH);
    r->results = (dkv_result_t *)results;
    r->n = 3;
    NEXT(DKV_MSG_CLEAR);
    r->u64 = 12;
    NEXT(DKV_MSG_SCAN);
    r->page.items = (dkv_item_t *)items;
    r->page.count = 3;
    r->page.more = 1;
    r->page.next = "gamma";
    r->page.next_len = 5;
    r->page.revision = 20;
    NEXT(DKV_MSG_COUNT);
    r->u64 = 3;
    NEXT(DKV_MSG_COUNTER_ADD);
    r->num1 = -1;
    r->num2 = INT64_MAX;
    NEXT(DKV_MSG_COUNTER_GET);
    r->num1 = INT64_MIN;
    NEXT(DKV_MSG_COUNTER_SET);
    NEXT(DKV_MSG_COUNTER_SET);
    r->status = DKV_ERANGE;
    r->message = "above max";
    NEXT(DKV_MSG_LEASE_GRANT);
    r->u64 = 8;
    NEXT(DKV_MSG_LEASE_KEEPALIVE);
    r->num1 = 4999;
    NEXT(DKV_MSG_LEASE_REVOKE);
    r->u64 = 2;
    NEXT(DKV_MSG_LEASE_INFO);
    r->lease_info.id = 8;
    r->lease_info.ttl_ms = 5000;
    r->lease_info.remaining_ms = 4000;
    r->lease_info.expires_at = 1700000004000;
    r->lease_info.keys = 3;
    r->lease_info.locks = 1;
    NEXT(DKV_MSG_LOCK_ACQUIRE);
    r->lock.acquired = 1;
    r->lock.token = 5;
    r->lock.lease = 8;
    NEXT(DKV_MSG_LOCK_ACQUIRE);
    r->status = DKV_ELOCKED;
    r->message = "held by lease 9";
    r->lock.acquired = 0;
    r->lock.token = 0;
    r->lock.lease = 9;
    NEXT(DKV_MSG_LOCK_RELEASE);
    NEXT(DKV_MSG_TXN_COMMIT);
    r->revision = 30;
    NEXT(DKV_MSG_TXN_COMMIT);
    r->status = DKV_ECONFLICT;
    r->message = "key c1 changed";
    NEXT(DKV_MSG_SEARCH);
    r->page.items = (dkv_item_t *)items;
    r->page.count = 1;
    r->page.revision = 20;
    NEXT(DKV_MSG_WATCH);
    r->revision = 31;
    NEXT(DKV_MSG_WATCH);
    r->status = DKV_ECOMPACTED;
    r->message = "history starts at 100";
    NEXT(DKV_MSG_WATCH_CANCEL);
    NEXT(0x5E);
    r->status = DKV_ENOTIMPL;
    r->message = "unknown op";
    NEXT(DKV_MSG_PROTOCOL_ERROR);
    r->status = DKV_EINVAL;
    r->message = "first frame must be HELLO";
    NEXT(DKV_MSG_GET);
    r->status = APR_ENOMEM;
    r->message = "out of memory";
#undef NEXT
    return n;
}

static const dkv_event_t events[] = {
    { DKV_EVENT_PUT, "user/1", 6, "{\"a\":1}", 7, 5, 1, 1, DKV_OK },
    { DKV_EVENT_PUT, "user/2", 6, "", 0, 6, 2, 0, DKV_OK },
    { DKV_EVENT_DELETE, "user/1", 6, NULL, 0, 7, 1, 0, DKV_OK },
    { DKV_EVENT_ERROR, NULL, 0, NULL, 0, 8, 0, 0, DKV_EUNAVAILABLE }
};

/* ------------------------------------------------------------- helpers */

/* Parses the one frame in BUF (exactly). */
static void
parse_one(dkv_frame_t *f, const dkv_wbuf_t *buf)
{
    size_t size = 0;

    DKV_ASSERT_OK(dkv_proto_frame_parse(f, &size, buf->data, buf->len, 0));
    DKV_ASSERT_UINT_EQ(size, buf->len);
}

/* A frame whose body is BODY (LEN bytes) in a heap block of its exact
 * size, so that reading past it is an AddressSanitizer error. */
static unsigned char *
exact_copy(dkv_frame_t *f, const dkv_frame_t *orig, const void *body,
           size_t len)
{
    unsigned char *b = dkv_malloc(len ? len : 1);

    DKV_ASSERT_NOT_NULL(b);
    if (len) {
        memcpy(b, body, len);
    }
    *f = *orig;
    f->body = b;
    f->body_len = len;
    return b;
}

enum { DEC_REQUEST, DEC_RESPONSE, DEC_EVENTS };

static dkv_status_t
run_decoder(int which, const dkv_frame_t *f, apr_pool_t *pool)
{
    dkv_request_t req;
    dkv_response_t res;
    dkv_event_t *ev;
    size_t n;

    switch (which) {
    case DEC_REQUEST:
        return dkv_proto_request_decode(&req, f, pool);
    case DEC_RESPONSE:
        return dkv_proto_response_decode(&res, f, pool);
    default:
        return dkv_proto_events_decode(&ev, &n, f, pool);
    }
}

/* Every proper prefix of F's body and the body plus one byte must be
 * refused as malformed. */
static void
check_truncations(int which, const dkv_frame_t *f, apr_pool_t *pool)
{
    dkv_frame_t g;
    unsigned char *b, *longer;
    size_t cut;

    for (cut = 0; cut < f->body_len; cut++) {
        b = exact_copy(&g, f, f->body, cut);
        DKV_EXPECT_STATUS(run_decoder(which, &g, pool), DKV_EINVAL);
        dkv_free(b);
    }
    longer = dkv_malloc(f->body_len + 1);
    DKV_ASSERT_NOT_NULL(longer);
    if (f->body_len) {
        memcpy(longer, f->body, f->body_len);
    }
    longer[f->body_len] = 0;
    b = exact_copy(&g, f, longer, f->body_len + 1);
    DKV_EXPECT_STATUS(run_decoder(which, &g, pool), DKV_EINVAL);
    dkv_free(b);
    dkv_free(longer);
    /* And the intact body once more, in an exact block. */
    b = exact_copy(&g, f, f->body, f->body_len);
    DKV_EXPECT_OK(run_decoder(which, &g, pool));
    dkv_free(b);
}

/* ------------------------------------------------------------- frames */

static void
frame_parse_incomplete_and_bounds(void)
{
    dkv_wbuf_t w;
    dkv_frame_t f;
    dkv_request_t req;
    size_t len, size;
    unsigned char hdr[16];

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_GET;
    req.id = UINT64_C(0x0102030405060708);
    req.key = "abc";
    req.key_len = 3;
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_request_encode(&w, &req));
    /* length 12 + key (2 + 3) + bool + u64 */
    DKV_ASSERT_UINT_EQ(w.len, 4 + 12 + 5 + 1 + 8);
    for (len = 0; len < w.len; len++) {
        size = 77;
        DKV_EXPECT_STATUS(dkv_proto_frame_parse(&f, &size, w.data, len, 0),
                          APR_INCOMPLETE);
        DKV_EXPECT_UINT_EQ(size, len < 4 ? 0 : w.len);
    }
    DKV_ASSERT_OK(dkv_proto_frame_parse(&f, &size, w.data, w.len, 0));
    DKV_EXPECT_UINT_EQ(size, w.len);
    DKV_EXPECT_UINT_EQ(f.op, DKV_MSG_GET);
    DKV_EXPECT_UINT_EQ(f.flags, 0);
    DKV_EXPECT_UINT_EQ(f.id, UINT64_C(0x0102030405060708));
    DKV_EXPECT_UINT_EQ(f.body_len, 14);
    DKV_EXPECT_TRUE(f.body == w.data + 16);
    /* Extra bytes after the frame are the next frame's. */
    dkv_wbuf_append(&w, "xyz", 3);
    DKV_ASSERT_OK(dkv_proto_frame_parse(&f, &size, w.data, w.len, 0));
    DKV_EXPECT_UINT_EQ(size, w.len - 3);
    /* Exactly the limit passes, one more is too large. */
    DKV_EXPECT_STATUS(dkv_proto_frame_parse(&f, &size, w.data, w.len,
                                            (uint32_t)(size - 4)), DKV_OK);
    DKV_EXPECT_STATUS(dkv_proto_frame_parse(&f, &size, w.data, w.len,
                                            (uint32_t)(size - 5)),
                      DKV_ETOOLARGE);
    dkv_wbuf_free(&w);

    /* Below 12: never a frame. */
    memset(hdr, 0, sizeof(hdr));
    for (len = 0; len < 12; len++) {
        dkv_put_be32(hdr, (uint32_t)len);
        DKV_EXPECT_STATUS(dkv_proto_frame_parse(&f, &size, hdr, 4, 0),
                          DKV_EINVAL);
    }
    dkv_put_be32(hdr, 12);
    DKV_EXPECT_STATUS(dkv_proto_frame_parse(&f, &size, hdr, 16, 0), DKV_OK);
    DKV_EXPECT_UINT_EQ(f.body_len, 0);
    /* Above the limit: refused from the length field alone. */
    dkv_put_be32(hdr, 0xFFFFFFFFu);
    DKV_EXPECT_STATUS(dkv_proto_frame_parse(&f, &size, hdr, 4, 0),
                      DKV_ETOOLARGE);
    dkv_put_be32(hdr, DKV_PROTO_DEFAULT_FRAME + 1);
    DKV_EXPECT_STATUS(dkv_proto_frame_parse(&f, &size, hdr, 4, 0),
                      DKV_ETOOLARGE);
    dkv_put_be32(hdr, DKV_PROTO_DEFAULT_FRAME);
    DKV_EXPECT_STATUS(dkv_proto_frame_parse(&f, &size, hdr, 4, 0),
                      APR_INCOMPLETE);
    DKV_EXPECT_UINT_EQ(size, DKV_PROTO_DEFAULT_FRAME + 4);
    dkv_put_be32(hdr, 2000);
    DKV_EXPECT_STATUS(dkv_proto_frame_parse(&f, &size, hdr, 16, 1999),
                      DKV_ETOOLARGE);
}

/* The bytes of a GET and a PUT request, against docs/protocol.md. */
static void
wire_layout_matches_spec(void)
{
    static const unsigned char get[] = {
        0, 0, 0, 26,                    /* length */
        0x10, 0, 0, 0,                  /* op, flags, reserved */
        0, 0, 0, 0, 0, 0, 0, 7,         /* id */
        0, 3, 'a', 'b', 'c',            /* key */
        1,                              /* meta_only */
        0, 0, 0, 0, 0, 0, 1, 0          /* lock */
    };
    static const unsigned char err[] = {
        0, 0, 0, 21, 0x7F, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9,
        0, 3, 0, 5, 'h', 'e', 'l', 'l', 'o'
    };
    dkv_request_t req;
    dkv_wbuf_t w;
    dkv_frame_t f;
    dkv_response_t res;
    apr_pool_t *pool = dkv_test_pool();
    unsigned char *p;

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_GET;
    req.id = 7;
    req.key = "abc";
    req.key_len = 3;
    req.get.meta_only = 1;
    req.get.lock = 256;
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_request_encode(&w, &req));
    DKV_EXPECT_MEM_EQ(w.data, w.len, get, sizeof(get));
    dkv_wbuf_free(&w);

    /* PROTOCOL_ERROR, and its decoding through the response decoder. */
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_error_encode(&w, 9, DKV_EINVAL, "hello"));
    DKV_EXPECT_MEM_EQ(w.data, w.len, err, sizeof(err));
    parse_one(&f, &w);
    DKV_ASSERT_OK(dkv_proto_response_decode(&res, &f, pool));
    DKV_EXPECT_UINT_EQ(res.op, DKV_MSG_PROTOCOL_ERROR);
    DKV_EXPECT_UINT_EQ(res.id, 9);
    DKV_EXPECT_STATUS(res.status, DKV_EINVAL);
    DKV_EXPECT_STR_EQ(res.message, "hello");
    dkv_wbuf_free(&w);

    /* i64 is two's complement (not codec.h's order-preserving form). */
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_LEASE_GRANT;
    req.num = -2;
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_request_encode(&w, &req));
    DKV_ASSERT_UINT_EQ(w.len, 24);
    p = w.data + 16;
    DKV_EXPECT_UINT_EQ(dkv_get_be64(p), UINT64_C(0xFFFFFFFFFFFFFFFE));
    dkv_wbuf_free(&w);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------------- requests */

static void
requests_round_trip(void)
{
    dkv_request_t reqs[40], d;
    size_t i, n = sample_requests(reqs);
    apr_pool_t *pool = dkv_test_pool();

    for (i = 0; i < n; i++) {
        dkv_wbuf_t w1, w2;
        dkv_frame_t f;

        dkv_wbuf_init(&w1, 0);
        dkv_wbuf_init(&w2, 0);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w1, &reqs[i]));
        parse_one(&f, &w1);
        DKV_EXPECT_UINT_EQ(f.op, reqs[i].op);
        DKV_EXPECT_UINT_EQ(f.id, reqs[i].id);
        DKV_ASSERT_OK(dkv_proto_request_decode(&d, &f, pool));
        DKV_EXPECT_UINT_EQ(d.op, reqs[i].op);
        DKV_EXPECT_UINT_EQ(d.id, reqs[i].id);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w2, &d));
        DKV_EXPECT_MEM_EQ(w2.data, w2.len, w1.data, w1.len);
        check_truncations(DEC_REQUEST, &f, pool);
        /* Not a response, not events. */
        DKV_EXPECT_STATUS(run_decoder(DEC_RESPONSE, &f, pool), DKV_EINVAL);
        DKV_EXPECT_STATUS(run_decoder(DEC_EVENTS, &f, pool), DKV_EINVAL);
        dkv_wbuf_free(&w1);
        dkv_wbuf_free(&w2);
    }
    apr_pool_destroy(pool);
}

/* Decodes sample request I (encoded) into *D. */
static void
decode_sample(dkv_request_t *d, dkv_wbuf_t *w, const dkv_request_t *r,
              apr_pool_t *pool)
{
    dkv_frame_t f;

    dkv_wbuf_init(w, 0);
    DKV_ASSERT_OK(dkv_proto_request_encode(w, r));
    parse_one(&f, w);
    DKV_ASSERT_OK(dkv_proto_request_decode(d, &f, pool));
}

static void
check_put_opts(const dkv_put_opts_t *o)
{
    DKV_EXPECT_INT_EQ(o->ttl_ms, 500);
    DKV_EXPECT_UINT_EQ(o->lease, 7);
    DKV_EXPECT_INT_EQ(o->if_absent, 1);
    DKV_EXPECT_UINT_EQ(o->if_version, 3);
    DKV_EXPECT_UINT_EQ(o->lock, 9);
    DKV_EXPECT_STR_EQ(o->entity, "user");
    DKV_EXPECT_STR_EQ(o->content_type, "text/plain");
    DKV_ASSERT_UINT_EQ(o->nlabels, 2);
    DKV_EXPECT_STR_EQ(o->labels[0].name, "city");
    DKV_EXPECT_STR_EQ(o->labels[0].value, "Paris");
    DKV_EXPECT_INT_EQ(o->labels[0].indexed, 1);
    DKV_EXPECT_STR_EQ(o->labels[1].name, "note");
    DKV_EXPECT_STR_EQ(o->labels[1].value, "stored only");
    DKV_EXPECT_INT_EQ(o->labels[1].indexed, 0);
}

static void
requests_decoded_fields(void)
{
    dkv_request_t reqs[40], d;
    size_t i, n = sample_requests(reqs);
    apr_pool_t *pool = dkv_test_pool();
    dkv_wbuf_t w;

    for (i = 0; i < n; i++) {
        const dkv_request_t *r = &reqs[i];

        decode_sample(&d, &w, r, pool);
        switch (r->op) {
        case DKV_MSG_HELLO:
            DKV_EXPECT_UINT_EQ(d.magic, DKV_PROTO_MAGIC);
            DKV_EXPECT_UINT_EQ(d.min_version, 1);
            DKV_EXPECT_UINT_EQ(d.max_version, 3);
            DKV_EXPECT_STR_EQ(d.store, "Orders");
            DKV_EXPECT_MEM_EQ(d.token, d.token_len, "s3cret", 6);
            DKV_EXPECT_STR_EQ(d.client, "test_proto on localhost");
            break;
        case DKV_MSG_GET:
            DKV_EXPECT_MEM_EQ(d.key, d.key_len, "key", 3);
            DKV_EXPECT_INT_EQ(d.get.meta_only, 1);
            DKV_EXPECT_UINT_EQ(d.get.lock, 77);
            break;
        case DKV_MSG_PUT:
            if (r->put.entity != NULL) {
                DKV_EXPECT_MEM_EQ(d.value, d.value_len, "the value", 9);
                check_put_opts(&d.put);
            } else {
                /* An empty value is a pointer, not NULL. */
                DKV_EXPECT_TRUE(d.value != NULL);
                DKV_EXPECT_UINT_EQ(d.value_len, 0);
                DKV_EXPECT_TRUE(d.put.entity == NULL);
                DKV_EXPECT_TRUE(d.put.content_type == NULL);
                DKV_EXPECT_UINT_EQ(d.put.nlabels, 0);
            }
            break;
        case DKV_MSG_DELETE:
            DKV_EXPECT_UINT_EQ(d.del.if_version, 4);
            DKV_EXPECT_UINT_EQ(d.del.lock, 11);
            break;
        case DKV_MSG_EXPIRE:
            DKV_EXPECT_INT_EQ(d.num, -5);
            DKV_EXPECT_UINT_EQ(d.u64, UINT64_MAX);
            break;
        case DKV_MSG_GET_MANY:
            DKV_ASSERT_UINT_EQ(d.n, 3);
            DKV_EXPECT_MEM_EQ(d.keys[2].key, d.keys[2].key_len, "gamma", 5);
            DKV_EXPECT_UINT_EQ(d.get.lock, 5);
            break;
        case DKV_MSG_PUT_MANY:
            DKV_ASSERT_UINT_EQ(d.n, 2);
            DKV_EXPECT_MEM_EQ(d.kvs[0].value, d.kvs[0].value_len, "v1", 2);
            DKV_EXPECT_MEM_EQ(d.kvs[1].key, d.kvs[1].key_len, "k2", 2);
            check_put_opts(&d.put);
            break;
        case DKV_MSG_BATCH:
        case DKV_MSG_TXN_COMMIT:
            DKV_ASSERT_UINT_EQ(d.n, 4);
            DKV_EXPECT_INT_EQ(d.ops[0].type, DKV_OP_PUT);
            DKV_ASSERT_NOT_NULL(d.ops[0].put);
            check_put_opts(d.ops[0].put);
            DKV_EXPECT_MEM_EQ(d.ops[0].value, d.ops[0].value_len, "value",
                              5);
            DKV_EXPECT_TRUE(d.ops[1].put == NULL);
            DKV_EXPECT_INT_EQ(d.ops[2].type, DKV_OP_DELETE);
            DKV_ASSERT_NOT_NULL(d.ops[2].del);
            DKV_EXPECT_UINT_EQ(d.ops[2].del->lock, 11);
            DKV_EXPECT_TRUE(d.ops[3].del == NULL);
            if (r->op == DKV_MSG_TXN_COMMIT) {
                DKV_ASSERT_UINT_EQ(d.ncompares, 2);
                DKV_EXPECT_MEM_EQ(d.compares[0].key, d.compares[0].key_len,
                                  "c1", 2);
                DKV_EXPECT_UINT_EQ(d.compares[0].mod_revision, 17);
            }
            break;
        case DKV_MSG_CLEAR:
            if (r->range.prefix != NULL) {
                DKV_EXPECT_MEM_EQ(d.range.prefix, d.range.prefix_len,
                                  "user/", 5);
            } else {
                DKV_EXPECT_TRUE(d.range.prefix == NULL
                                && d.range.start == NULL
                                && d.range.end == NULL);
            }
            break;
        case DKV_MSG_SCAN:
            DKV_EXPECT_MEM_EQ(d.range.start, d.range.start_len, "a", 1);
            DKV_EXPECT_MEM_EQ(d.range.end, d.range.end_len, "m", 1);
            DKV_EXPECT_MEM_EQ(d.scan.after, d.scan.after_len, "b", 1);
            DKV_EXPECT_UINT_EQ(d.scan.limit, 100);
            DKV_EXPECT_INT_EQ(d.scan.keys_only, 1);
            break;
        case DKV_MSG_COUNT:
            DKV_EXPECT_TRUE(d.range.end == NULL && d.range.end_len == 0);
            break;
        case DKV_MSG_COUNTER_ADD:
        case DKV_MSG_COUNTER_SET:
            DKV_EXPECT_INT_EQ(d.num, r->num);
            DKV_EXPECT_INT_EQ(d.counter.has_max, 1);
            DKV_EXPECT_INT_EQ(d.counter.max, 100);
            DKV_EXPECT_INT_EQ(d.counter.has_min, 1);
            DKV_EXPECT_INT_EQ(d.counter.min, -100);
            DKV_EXPECT_INT_EQ(d.counter.ttl_ms, 60000);
            DKV_EXPECT_UINT_EQ(d.counter.lock, 13);
            break;
        case DKV_MSG_SEARCH:
            DKV_EXPECT_STR_EQ(d.query.entity, "user");
            if (r->query.where == NULL) {
                DKV_EXPECT_TRUE(d.query.where == NULL);
                DKV_EXPECT_INT_EQ(d.query.keys_only, 1);
                DKV_EXPECT_TRUE(d.search.cursor == NULL);
                break;
            }
            DKV_ASSERT_NOT_NULL(d.query.where);
            DKV_EXPECT_INT_EQ(d.query.where->type, DKV_CLAUSE_AND);
            DKV_ASSERT_UINT_EQ(d.query.where->nchildren, 3);
            DKV_EXPECT_STR_EQ(d.query.where->children[0].value, "Paris");
            DKV_ASSERT_UINT_EQ(d.query.where->children[1].nchildren, 3);
            DKV_EXPECT_STR_EQ(d.query.where->children[1].children[0].low,
                              "18");
            DKV_EXPECT_TRUE(d.query.where->children[1].children[0].high
                            == NULL);
            DKV_EXPECT_TRUE(d.query.where->children[1].children[1].low
                            == NULL);
            DKV_EXPECT_STR_EQ(d.query.where->children[1].children[1].high,
                              "9.5");
            DKV_EXPECT_INT_EQ(d.query.where->children[2].type,
                              DKV_CLAUSE_NOT);
            DKV_EXPECT_STR_EQ(d.query.where->children[2].children[0].label,
                              "banned");
            DKV_ASSERT_UINT_EQ(d.query.norder, 2);
            DKV_EXPECT_STR_EQ(d.query.order[0].label, "age");
            DKV_EXPECT_INT_EQ(d.query.order[0].descending, 1);
            DKV_EXPECT_UINT_EQ(d.query.limit, 50);
            DKV_ASSERT_UINT_EQ(d.query.nselect, 2);
            DKV_EXPECT_STR_EQ(d.query.select[1], "age");
            DKV_EXPECT_UINT_EQ(d.search.page_size, 20);
            DKV_EXPECT_MEM_EQ(d.search.cursor, d.search.cursor_len,
                              "cursor", 6);
            break;
        case DKV_MSG_WATCH:
            DKV_EXPECT_UINT_EQ(d.watch_flags, r->watch_flags);
            DKV_EXPECT_UINT_EQ(d.key_len, r->key_len);
            DKV_EXPECT_UINT_EQ(d.u64, r->u64);
            break;
        default:
            DKV_EXPECT_UINT_EQ(d.u64, r->u64);
            DKV_EXPECT_INT_EQ(d.num, r->num);
            DKV_EXPECT_MEM_EQ(d.key, d.key_len, r->key, r->key_len);
        }
        dkv_wbuf_free(&w);
    }
    apr_pool_destroy(pool);
}

/* Encoders refuse what would break a limit, and leave the buffer as it
 * was. */
static void
requests_encode_validates(void)
{
    static char big[600];
    static dkv_label_t many[33];
    dkv_request_t r;
    dkv_wbuf_t w;
    size_t before;
    dkv_clause_t chain[40], wide[258];
    int i;

    memset(big, 'x', sizeof(big) - 1);
    dkv_wbuf_init(&w, 0);
    dkv_wbuf_append(&w, "prefix", 6);
    before = w.len;

#define BAD(expect) do { \
        DKV_EXPECT_STATUS(dkv_proto_request_encode(&w, &r), (expect)); \
        DKV_EXPECT_UINT_EQ(w.len, before); \
        DKV_EXPECT_UINT_EQ(w.failed, DKV_OK); \
    } while (0)
#define RESET(o) (memset(&r, 0, sizeof(r)), r.op = (o))

    RESET(DKV_MSG_GET);
    BAD(DKV_EINVAL);                    /* empty key */
    r.key = big;
    r.key_len = 501;
    BAD(DKV_EINVAL);
    r.key_len = 500;
    DKV_EXPECT_OK(dkv_proto_request_encode(&w, &r));
    before = w.len;
    r.key = NULL;
    r.key_len = 3;
    BAD(DKV_EINVAL);
    RESET(DKV_MSG_PUT);
    r.key = "k";
    r.key_len = 1;
    r.put.entity = big + sizeof(big) - 1 - 65;
    BAD(DKV_EINVAL);                    /* entity of 65 */
    r.put.entity = big + sizeof(big) - 1 - 64;
    DKV_EXPECT_OK(dkv_proto_request_encode(&w, &r));
    before = w.len;
    r.put.content_type = big + sizeof(big) - 1 - 129;
    BAD(DKV_EINVAL);
    r.put.content_type = NULL;
    for (i = 0; i < 33; i++) {
        many[i].name = "n";
        many[i].value = "v";
    }
    r.put.labels = many;
    r.put.nlabels = 33;
    BAD(DKV_EINVAL);
    r.put.nlabels = 32;
    DKV_EXPECT_OK(dkv_proto_request_encode(&w, &r));
    before = w.len;
    many[0].name = big + sizeof(big) - 1 - 65;
    BAD(DKV_EINVAL);                    /* label name of 65 */
    many[0].name = NULL;
    BAD(DKV_EINVAL);
    many[0].name = "n";
    r.put.labels = NULL;
    BAD(DKV_EINVAL);                    /* NULL array with a count */
    RESET(DKV_MSG_GET_MANY);
    r.keys = (dkv_key_t *)keys;
    r.n = DKV_PROTO_MAX_BULK + 1;
    BAD(DKV_EINVAL);
    RESET(DKV_MSG_TXN_COMMIT);
    r.ops = (dkv_op_t *)ops;
    r.n = DKV_MAX_TXN_OPS + 1;
    BAD(DKV_EINVAL);
    RESET(DKV_MSG_BATCH);
    {
        dkv_op_t bad = { (dkv_op_type_t)3, "k", 1, NULL, 0, NULL, NULL };

        r.ops = &bad;
        r.n = 1;
        BAD(DKV_EINVAL);
    }
    RESET(DKV_MSG_CLEAR);
    r.range.prefix = "p";
    r.range.prefix_len = 1;
    r.range.start = "a";
    r.range.start_len = 1;
    BAD(DKV_EINVAL);
    RESET(DKV_MSG_WATCH);
    BAD(DKV_EINVAL);                    /* empty key without prefix */
    r.watch_flags = DKV_PROTO_WATCH_PREFIX | 0x04;
    BAD(DKV_EINVAL);
    RESET(DKV_MSG_HELLO);
    r.client = big + sizeof(big) - 1 - 129;
    BAD(DKV_EINVAL);
    RESET(DKV_MSG_EVENT);
    BAD(DKV_EINVAL);
    RESET(DKV_MSG_SEARCH);
    BAD(DKV_EINVAL);                    /* no entity */
    r.query.entity = "e";
    /* A chain of 33 nested NOTs is one too deep; 32 is fine. */
    for (i = 0; i < 40; i++) {
        memset(&chain[i], 0, sizeof(chain[i]));
        chain[i].type = DKV_CLAUSE_NOT;
        chain[i].children = &chain[i + 1];
        chain[i].nchildren = 1;
    }
    chain[32].type = DKV_CLAUSE_EQ;
    chain[32].label = "l";
    chain[32].value = "v";
    chain[32].children = NULL;
    chain[32].nchildren = 0;
    r.query.where = &chain[0];
    BAD(DKV_EINVAL);
    r.query.where = &chain[1];
    DKV_EXPECT_OK(dkv_proto_request_encode(&w, &r));
    before = w.len;
    /* 257 clauses are too many; 256 are fine. */
    for (i = 0; i < 258; i++) {
        memset(&wide[i], 0, sizeof(wide[i]));
        wide[i].type = DKV_CLAUSE_EQ;
        wide[i].label = "l";
        wide[i].value = "v";
    }
    wide[0].type = DKV_CLAUSE_OR;
    wide[0].children = &wide[1];
    wide[0].nchildren = 256;
    r.query.where = &wide[0];
    BAD(DKV_EINVAL);
    wide[0].nchildren = 255;
    DKV_EXPECT_OK(dkv_proto_request_encode(&w, &r));
    before = w.len;
    r.query.norder = 33;
    r.query.order = order;
    BAD(DKV_EINVAL);
#undef BAD
#undef RESET
    dkv_wbuf_free(&w);
}

/* ------------------------------------------------------ hand-made frames */

/* Builds a frame of OP with BODY in W and parses it into F. */
static void
make_frame(dkv_frame_t *f, dkv_wbuf_t *w, unsigned op, const void *body,
           size_t len)
{
    unsigned char hdr[16];

    memset(hdr, 0, sizeof(hdr));
    dkv_put_be32(hdr, (uint32_t)(12 + len));
    hdr[4] = (unsigned char)op;
    dkv_wbuf_init(w, 0);
    dkv_wbuf_append(w, hdr, sizeof(hdr));
    dkv_wbuf_append(w, body, len);
    parse_one(f, w);
}

static dkv_status_t
decode_request_bytes(unsigned op, const void *body, size_t len,
                     apr_pool_t *pool)
{
    dkv_wbuf_t w;
    dkv_frame_t f;
    dkv_request_t r;
    dkv_status_t s;
    unsigned char *b;

    make_frame(&f, &w, op, body, len);
    b = exact_copy(&f, &f, f.body, f.body_len);
    s = dkv_proto_request_decode(&r, &f, pool);
    dkv_free(b);
    dkv_wbuf_free(&w);
    return s;
}

static void
malformed_requests(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const unsigned char get_ok[] = {
        0, 1, 'k', 1, 0, 0, 0, 0, 0, 0, 0, 0
    };
    static const unsigned char get_bool2[] = {
        0, 1, 'k', 2, 0, 0, 0, 0, 0, 0, 0, 0
    };
    static const unsigned char get_empty_key[] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    };
    static const unsigned char put_flags[] = {
        0, 1, 'k', 0, 0, 0, 0,
        0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0xFF, 0xFF, 0xFF, 0xFF, 0, 0
    };
    static const unsigned char huge_many[] = {
        0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 'k'
    };
    static const unsigned char watch_no_prefix[] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    };
    static const unsigned char watch_prefix[] = {
        0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0
    };
    static const unsigned char range_kind[] = { 3 };
    static const unsigned char range_prefix0[] = { 1, 0, 0 };
    static const unsigned char hello_nul[] = {
        0x44, 0x4B, 0x56, 0x01, 0, 1, 0, 1, 0, 2, 'a', 0, 0, 0, 0, 0
    };
    static const unsigned char batch_type[] = {
        0, 0, 0, 1, 9, 0, 1, 'k', 0
    };
    unsigned char buf[700];
    size_t i;

    DKV_EXPECT_OK(decode_request_bytes(DKV_MSG_GET, get_ok,
                                       sizeof(get_ok), pool));
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_GET, get_bool2,
                                           sizeof(get_bool2), pool),
                      DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "meta_only") != NULL);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_GET, get_empty_key,
                                           sizeof(get_empty_key), pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_PUT, put_flags,
                                           sizeof(put_flags), pool),
                      DKV_EINVAL);
    /* With the flags fixed the same body is good. */
    memcpy(buf, put_flags, sizeof(put_flags));
    buf[7] = 0x01;
    DKV_EXPECT_OK(decode_request_bytes(DKV_MSG_PUT, buf, sizeof(put_flags),
                                       pool));
    /* Key of 501 bytes. */
    memset(buf, 'k', sizeof(buf));
    buf[0] = 501 >> 8;
    buf[1] = 501 & 0xFF;
    memset(buf + 503, 0, 9);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_GET, buf, 512, pool),
                      DKV_EINVAL);
    buf[1] = 500 & 0xFF;
    memset(buf + 502, 0, 9);
    DKV_EXPECT_OK(decode_request_bytes(DKV_MSG_GET, buf, 511, pool));
    /* A huge count with a tiny body fails at once, for every bulk op. */
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_GET_MANY, huge_many,
                                           sizeof(huge_many), pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_PUT_MANY, huge_many,
                                           sizeof(huge_many), pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_DELETE_MANY, huge_many,
                                           sizeof(huge_many), pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_BATCH, huge_many,
                                           sizeof(huge_many), pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_TXN_COMMIT, huge_many,
                                           sizeof(huge_many), pool),
                      DKV_EINVAL);
    /* Just within the limit but more than the body holds. */
    memcpy(buf, huge_many, sizeof(huge_many));
    dkv_put_be32(buf, DKV_PROTO_MAX_BULK);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_GET_MANY, buf,
                                           sizeof(huge_many), pool),
                      DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "more than the frame")
                    != NULL);
    dkv_put_be32(buf, DKV_PROTO_MAX_BULK + 1);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_GET_MANY, buf,
                                           sizeof(huge_many), pool),
                      DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "limit") != NULL);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_WATCH, watch_no_prefix,
                                           sizeof(watch_no_prefix), pool),
                      DKV_EINVAL);
    DKV_EXPECT_OK(decode_request_bytes(DKV_MSG_WATCH, watch_prefix,
                                       sizeof(watch_prefix), pool));
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_CLEAR, range_kind,
                                           sizeof(range_kind), pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_CLEAR, range_prefix0,
                                           sizeof(range_prefix0), pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_HELLO, hello_nul,
                                           sizeof(hello_nul), pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_BATCH, batch_type,
                                           sizeof(batch_type), pool),
                      DKV_EINVAL);
    /* Not requests. */
    for (i = 0; i < 256; i++) {
        if (i == DKV_MSG_HELLO || i == DKV_MSG_PING
            || i == DKV_MSG_REVISION || i == DKV_MSG_MEMBERS
            || i == DKV_MSG_STATS || i == DKV_MSG_MEMBER_ADD
            || (i >= 0x10 && i <= 0x1B)
            || (i >= 0x20 && i <= 0x28) || i == 0x30 || i == 0x31
            || i == 0x38 || i == 0x39) {
            continue;
        }
        DKV_EXPECT_STATUS(decode_request_bytes((unsigned)i, NULL, 0, pool),
                          DKV_ENOTIMPL);
    }
    apr_pool_destroy(pool);
}

/* Builds a SEARCH body whose where clause is NOTS nested NOTs around an
 * EQ (depth NOTS + 1), and WIDTH extra EQ children under an OR when
 * WIDTH > 0 (then NOTS is ignored). */
static void
search_body(dkv_wbuf_t *b, int nots, int width)
{
    static const unsigned char eq[] = { 1, 0, 1, 'l', 0, 1, 'v' };
    static const unsigned char tail[] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    };
    unsigned char c[3];
    int i;

    dkv_wbuf_init(b, 0);
    dkv_wbuf_append(b, "\0\1e\1", 4);     /* entity "e", has_where */
    if (width > 0) {
        c[0] = DKV_CLAUSE_OR;
        c[1] = (unsigned char)(width >> 8);
        c[2] = (unsigned char)width;
        dkv_wbuf_append(b, c, 3);
        for (i = 0; i < width; i++) {
            dkv_wbuf_append(b, eq, sizeof(eq));
        }
    } else {
        for (i = 0; i < nots; i++) {
            c[0] = DKV_CLAUSE_NOT;
            c[1] = 0;
            c[2] = 1;
            dkv_wbuf_append(b, c, 3);
        }
        dkv_wbuf_append(b, eq, sizeof(eq));
    }
    /* norder 0, limit, nselect 0, keys_only, page_size, cursor "" */
    dkv_wbuf_append(b, tail, sizeof(tail));
}

static void
clause_depth_and_count(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_wbuf_t b;

    search_body(&b, 31, 0);
    DKV_EXPECT_OK(decode_request_bytes(DKV_MSG_SEARCH, b.data, b.len,
                                       pool));
    dkv_wbuf_free(&b);
    search_body(&b, 32, 0);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_SEARCH, b.data, b.len,
                                           pool), DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "deep") != NULL);
    dkv_wbuf_free(&b);
    /* 10000 nested NOTs: refused at depth 33, no deep recursion. */
    search_body(&b, 10000, 0);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_SEARCH, b.data, b.len,
                                           pool), DKV_EINVAL);
    dkv_wbuf_free(&b);
    search_body(&b, 0, 255);
    DKV_EXPECT_OK(decode_request_bytes(DKV_MSG_SEARCH, b.data, b.len,
                                       pool));
    dkv_wbuf_free(&b);
    search_body(&b, 0, 256);
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_SEARCH, b.data, b.len,
                                           pool), DKV_EINVAL);
    dkv_wbuf_free(&b);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------------ responses */

static void
check_item(const dkv_item_t *got, const dkv_item_t *exp)
{
    size_t i;

    DKV_EXPECT_STATUS(got->status, exp->status);
    DKV_EXPECT_MEM_EQ(got->key, got->key_len, exp->key, exp->key_len);
    if (exp->value == NULL) {
        DKV_EXPECT_TRUE(got->value == NULL);
    } else {
        DKV_ASSERT_NOT_NULL(got->value);
        DKV_EXPECT_MEM_EQ(got->value, got->value_len, exp->value,
                          exp->value_len);
        /* NUL-terminated, as the API promises. */
        DKV_EXPECT_INT_EQ(((const char *)got->value)[got->value_len], 0);
    }
    DKV_EXPECT_UINT_EQ(got->version, exp->version);
    DKV_EXPECT_UINT_EQ(got->create_revision, exp->create_revision);
    DKV_EXPECT_UINT_EQ(got->mod_revision, exp->mod_revision);
    DKV_EXPECT_UINT_EQ(got->revision, exp->revision);
    DKV_EXPECT_INT_EQ(got->created_at, exp->created_at);
    DKV_EXPECT_INT_EQ(got->expires_at, exp->expires_at);
    DKV_EXPECT_INT_EQ(got->ttl_ms, exp->ttl_ms);
    DKV_EXPECT_UINT_EQ(got->lease, exp->lease);
    DKV_EXPECT_STR_EQ(got->entity, exp->entity);
    DKV_EXPECT_STR_EQ(got->content_type, exp->content_type);
    DKV_ASSERT_UINT_EQ(got->nlabels, exp->nlabels);
    for (i = 0; i < exp->nlabels; i++) {
        DKV_EXPECT_STR_EQ(got->labels[i].name, exp->labels[i].name);
        DKV_EXPECT_STR_EQ(got->labels[i].value, exp->labels[i].value);
        DKV_EXPECT_INT_EQ(got->labels[i].indexed, exp->labels[i].indexed);
    }
}

static void
check_result(const dkv_result_t *got, const dkv_result_t *exp)
{
    DKV_EXPECT_STATUS(got->status, exp->status);
    DKV_EXPECT_INT_EQ(got->mutated, exp->mutated);
    DKV_EXPECT_INT_EQ(got->is_update, exp->is_update);
    DKV_EXPECT_UINT_EQ(got->version, exp->version);
    DKV_EXPECT_UINT_EQ(got->revision, exp->revision);
}

static void
check_response(const dkv_response_t *d, const dkv_response_t *r)
{
    size_t i;
    dkv_status_t st = DKV_STATUS_IS_DKV(r->status) || r->status == DKV_OK
                      ? r->status : DKV_EUNAVAILABLE;

    DKV_EXPECT_UINT_EQ(d->op, r->op);
    DKV_EXPECT_UINT_EQ(d->id, r->id);
    DKV_EXPECT_STATUS(d->status, st);
    DKV_EXPECT_STR_EQ(d->message, r->message);
    if (r->status != DKV_OK && !(r->op == DKV_MSG_LOCK_ACQUIRE
                                 && r->status == DKV_ELOCKED)) {
        return;
    }
    switch (r->op) {
    case DKV_MSG_HELLO:
        DKV_EXPECT_UINT_EQ(d->version, r->version);
        DKV_EXPECT_STR_EQ(d->store, r->store);
        DKV_EXPECT_STR_EQ(d->instance, r->instance);
        DKV_EXPECT_UINT_EQ(d->max_frame, r->max_frame);
        DKV_EXPECT_UINT_EQ(d->max_value, r->max_value);
        DKV_EXPECT_UINT_EQ(d->revision, r->revision);
        break;
    case DKV_MSG_PING:
        DKV_EXPECT_UINT_EQ(d->revision, r->revision);
        DKV_EXPECT_INT_EQ(d->node_time, r->node_time);
        DKV_EXPECT_STR_EQ(d->instance, r->instance);
        break;
    case DKV_MSG_GET:
        check_item(&d->item, &r->item);
        break;
    case DKV_MSG_PUT: case DKV_MSG_DELETE: case DKV_MSG_EXPIRE:
    case DKV_MSG_REFRESH:
        check_result(&d->result, &r->result);
        break;
    case DKV_MSG_GET_MANY:
        DKV_ASSERT_UINT_EQ(d->n, r->n);
        for (i = 0; i < r->n; i++) {
            check_item(&d->items[i], &r->items[i]);
        }
        break;
    case DKV_MSG_PUT_MANY: case DKV_MSG_DELETE_MANY: case DKV_MSG_BATCH:
        DKV_ASSERT_UINT_EQ(d->n, r->n);
        for (i = 0; i < r->n; i++) {
            check_result(&d->results[i], &r->results[i]);
        }
        break;
    case DKV_MSG_SCAN: case DKV_MSG_SEARCH:
        DKV_ASSERT_UINT_EQ(d->page.count, r->page.count);
        for (i = 0; i < r->page.count; i++) {
            check_item(&d->page.items[i], &r->page.items[i]);
        }
        DKV_EXPECT_INT_EQ(d->page.more, r->page.more);
        DKV_EXPECT_MEM_EQ(d->page.next, d->page.next_len, r->page.next,
                          r->page.next_len);
        DKV_EXPECT_UINT_EQ(d->page.revision, r->page.revision);
        break;
    case DKV_MSG_LEASE_INFO:
        DKV_EXPECT_UINT_EQ(d->lease_info.id, r->lease_info.id);
        DKV_EXPECT_INT_EQ(d->lease_info.ttl_ms, r->lease_info.ttl_ms);
        DKV_EXPECT_INT_EQ(d->lease_info.remaining_ms,
                          r->lease_info.remaining_ms);
        DKV_EXPECT_INT_EQ(d->lease_info.expires_at,
                          r->lease_info.expires_at);
        DKV_EXPECT_UINT_EQ(d->lease_info.keys, r->lease_info.keys);
        DKV_EXPECT_UINT_EQ(d->lease_info.locks, r->lease_info.locks);
        break;
    case DKV_MSG_LOCK_ACQUIRE:
        DKV_EXPECT_INT_EQ(d->lock.acquired, r->lock.acquired);
        DKV_EXPECT_UINT_EQ(d->lock.token, r->lock.token);
        DKV_EXPECT_UINT_EQ(d->lock.lease, r->lock.lease);
        break;
    default:
        DKV_EXPECT_UINT_EQ(d->revision, r->revision);
        DKV_EXPECT_UINT_EQ(d->u64, r->u64);
        DKV_EXPECT_INT_EQ(d->num1, r->num1);
        DKV_EXPECT_INT_EQ(d->num2, r->num2);
    }
}

static void
responses_round_trip(void)
{
    dkv_response_t ress[48], d;
    size_t i, n = sample_responses(ress);
    apr_pool_t *pool = dkv_test_pool();

    for (i = 0; i < n; i++) {
        dkv_wbuf_t w1, w2;
        dkv_frame_t f;

        dkv_wbuf_init(&w1, 0);
        dkv_wbuf_init(&w2, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w1, &ress[i]));
        parse_one(&f, &w1);
        DKV_EXPECT_UINT_EQ(f.op, ress[i].op == DKV_MSG_PROTOCOL_ERROR
                                 ? DKV_MSG_PROTOCOL_ERROR
                                 : ress[i].op | DKV_PROTO_RESPONSE);
        DKV_ASSERT_OK(dkv_proto_response_decode(&d, &f, pool));
        check_response(&d, &ress[i]);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w2, &d));
        if (ress[i].status == DKV_OK || DKV_STATUS_IS_DKV(ress[i].status)) {
            DKV_EXPECT_MEM_EQ(w2.data, w2.len, w1.data, w1.len);
        } else {
            /* 0xFFFF came back as DKV_EUNAVAILABLE, which goes out as
             * its own code. */
            DKV_ASSERT_UINT_EQ(w2.len, w1.len);
            DKV_EXPECT_UINT_EQ(w1.data[16] << 8 | w1.data[17], 0xFFFF);
            DKV_EXPECT_UINT_EQ(w2.data[16] << 8 | w2.data[17],
                               DKV_EUNAVAILABLE - DKV_START_ERROR);
        }
        check_truncations(DEC_RESPONSE, &f, pool);
        DKV_EXPECT_STATUS(run_decoder(DEC_EVENTS, &f, pool), DKV_EINVAL);
        dkv_wbuf_free(&w1);
        dkv_wbuf_free(&w2);
    }
    apr_pool_destroy(pool);
}

static void
responses_malformed(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_response_t res;
    dkv_wbuf_t w;
    dkv_frame_t f;
    /* GET_MANY OK with a count of 2^32 - 1 and nothing after it. */
    static const unsigned char huge[] = { 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF };
    /* SCAN OK with a page count of 10001. */
    static const unsigned char page[] = { 0, 0, 0, 0, 0, 0, 0x27, 0x11 };
    /* LOCK_ACQUIRE ELOCKED with acquired = 2. */
    static const unsigned char lock[] = {
        0, 6, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9
    };
    /* An unknown op with status OK. */
    static const unsigned char ok[] = { 0, 0, 0, 0 };
    /* PUT OK with unknown result flags. */
    static const unsigned char flags[] = {
        0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0
    };

    make_frame(&f, &w, DKV_MSG_GET_MANY | 0x80, huge, sizeof(huge));
    DKV_EXPECT_STATUS(dkv_proto_response_decode(&res, &f, pool),
                      DKV_EINVAL);
    DKV_EXPECT_STR_EQ(res.message, "");
    dkv_wbuf_free(&w);
    make_frame(&f, &w, DKV_MSG_SCAN | 0x80, page, sizeof(page));
    DKV_EXPECT_STATUS(dkv_proto_response_decode(&res, &f, pool),
                      DKV_EINVAL);
    dkv_wbuf_free(&w);
    make_frame(&f, &w, DKV_MSG_LOCK_ACQUIRE | 0x80, lock, sizeof(lock));
    DKV_EXPECT_STATUS(dkv_proto_response_decode(&res, &f, pool),
                      DKV_EINVAL);
    dkv_wbuf_free(&w);
    make_frame(&f, &w, 0x5E | 0x80, ok, sizeof(ok));
    DKV_EXPECT_STATUS(dkv_proto_response_decode(&res, &f, pool),
                      DKV_EINVAL);
    dkv_wbuf_free(&w);
    make_frame(&f, &w, DKV_MSG_PUT | 0x80, flags, sizeof(flags));
    DKV_EXPECT_STATUS(dkv_proto_response_decode(&res, &f, pool),
                      DKV_EINVAL);
    dkv_wbuf_free(&w);
    /* A request op is not a response. */
    make_frame(&f, &w, DKV_MSG_PUT, flags, sizeof(flags));
    DKV_EXPECT_STATUS(dkv_proto_response_decode(&res, &f, pool),
                      DKV_EINVAL);
    dkv_wbuf_free(&w);
    /* Encoding: an unknown op with OK, a response-bit op. */
    memset(&res, 0, sizeof(res));
    res.op = 0x5E;
    dkv_wbuf_init(&w, 0);
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &res), DKV_EINVAL);
    res.op = 0x91;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &res), DKV_EINVAL);
    res.op = DKV_MSG_GET_MANY;
    res.n = DKV_PROTO_MAX_BULK + 1;
    res.items = (dkv_item_t *)items;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &res), DKV_EINVAL);
    res.op = DKV_MSG_SCAN;
    res.page.count = DKV_PROTO_MAX_PAGE + 1;
    res.page.items = (dkv_item_t *)items;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &res), DKV_EINVAL);
    DKV_EXPECT_UINT_EQ(w.len, 0);
    dkv_wbuf_free(&w);
    apr_pool_destroy(pool);
}

/* --------------------------------------------------------------- events */

static void
events_round_trip(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_wbuf_t w1, w2;
    dkv_frame_t f;
    dkv_event_t *ev;
    size_t n, i;

    dkv_wbuf_init(&w1, 0);
    dkv_wbuf_init(&w2, 0);
    DKV_ASSERT_OK(dkv_proto_events_encode(&w1, 1001, events, 4));
    parse_one(&f, &w1);
    DKV_EXPECT_UINT_EQ(f.op, DKV_MSG_EVENT);
    DKV_EXPECT_UINT_EQ(f.id, 1001);
    DKV_ASSERT_OK(dkv_proto_events_decode(&ev, &n, &f, pool));
    DKV_ASSERT_UINT_EQ(n, 4);
    for (i = 0; i < n; i++) {
        DKV_EXPECT_INT_EQ(ev[i].type, events[i].type);
        DKV_EXPECT_MEM_EQ(ev[i].key, ev[i].key_len, events[i].key,
                          events[i].key_len);
        DKV_EXPECT_UINT_EQ(ev[i].value_len, events[i].value_len);
        DKV_EXPECT_TRUE((ev[i].value == NULL) == (events[i].value == NULL));
        if (events[i].value_len) {
            DKV_EXPECT_MEM_EQ(ev[i].value, ev[i].value_len,
                              events[i].value, events[i].value_len);
        }
        DKV_EXPECT_UINT_EQ(ev[i].revision, events[i].revision);
        DKV_EXPECT_UINT_EQ(ev[i].version, events[i].version);
        DKV_EXPECT_INT_EQ(ev[i].snapshot, events[i].snapshot);
        DKV_EXPECT_STATUS(ev[i].status, events[i].status);
    }
    DKV_ASSERT_OK(dkv_proto_events_encode(&w2, 1001, ev, n));
    DKV_EXPECT_MEM_EQ(w2.data, w2.len, w1.data, w1.len);
    check_truncations(DEC_EVENTS, &f, pool);
    DKV_EXPECT_STATUS(run_decoder(DEC_REQUEST, &f, pool), DKV_ENOTIMPL);
    DKV_EXPECT_STATUS(run_decoder(DEC_RESPONSE, &f, pool), DKV_EINVAL);
    /* No events, or an unknown type, is refused. */
    DKV_EXPECT_STATUS(dkv_proto_events_encode(&w2, 1, events, 0),
                      DKV_EINVAL);
    {
        dkv_event_t bad = events[0];

        bad.type = (dkv_event_type_t)4;
        DKV_EXPECT_STATUS(dkv_proto_events_encode(&w2, 1, &bad, 1),
                          DKV_EINVAL);
        bad.type = DKV_EVENT_PUT;
        bad.key_len = 0;
        DKV_EXPECT_STATUS(dkv_proto_events_encode(&w2, 1, &bad, 1),
                          DKV_EINVAL);
    }
    dkv_wbuf_free(&w1);
    dkv_wbuf_free(&w2);
    {
        static const unsigned char zero[] = { 0, 0, 0, 0 };
        static const unsigned char huge[] = { 0xFF, 0xFF, 0xFF, 0xFF, 1 };
        /* An error event with a key. */
        static const unsigned char errkey[] = {
            0, 0, 0, 1, 3, 0, 0, 1, 'k', 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 4
        };
        /* A delete with a status. */
        static const unsigned char delst[] = {
            0, 0, 0, 1, 2, 0, 0, 1, 'k', 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 4
        };

        make_frame(&f, &w1, DKV_MSG_EVENT, zero, sizeof(zero));
        DKV_EXPECT_STATUS(dkv_proto_events_decode(&ev, &n, &f, pool),
                          DKV_EINVAL);
        dkv_wbuf_free(&w1);
        make_frame(&f, &w1, DKV_MSG_EVENT, huge, sizeof(huge));
        DKV_EXPECT_STATUS(dkv_proto_events_decode(&ev, &n, &f, pool),
                          DKV_EINVAL);
        dkv_wbuf_free(&w1);
        make_frame(&f, &w1, DKV_MSG_EVENT, errkey, sizeof(errkey));
        DKV_EXPECT_STATUS(dkv_proto_events_decode(&ev, &n, &f, pool),
                          DKV_EINVAL);
        dkv_wbuf_free(&w1);
        make_frame(&f, &w1, DKV_MSG_EVENT, delst, sizeof(delst));
        DKV_EXPECT_STATUS(dkv_proto_events_decode(&ev, &n, &f, pool),
                          DKV_EINVAL);
        dkv_wbuf_free(&w1);
    }
    apr_pool_destroy(pool);
}

/* GET, PUT, DELETE, EXPIRE, REFRESH: a presence bool after the message;
 * the item or result travels with a failure too when the node sets
 * has_result, and never without it. */
static void
responses_carry_results_on_failure(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const uint8_t rops[] = { DKV_MSG_PUT, DKV_MSG_DELETE,
                                    DKV_MSG_EXPIRE, DKV_MSG_REFRESH };
    dkv_response_t res, d;
    dkv_wbuf_t w;
    dkv_frame_t f;
    size_t i;

    for (i = 0; i < sizeof(rops); i++) {
        memset(&res, 0, sizeof(res));
        res.op = rops[i];
        res.id = 70 + i;
        res.status = DKV_ENOTFOUND;
        res.message = "key not found";
        res.has_result = 1;
        res.result.status = DKV_ENOTFOUND;
        res.result.revision = 41;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w, &res));
        parse_one(&f, &w);
        /* status, message, then the bool. */
        DKV_EXPECT_UINT_EQ(f.body[2 + 2 + strlen(res.message)], 1);
        DKV_ASSERT_OK(dkv_proto_response_decode(&d, &f, pool));
        DKV_EXPECT_STATUS(d.status, DKV_ENOTFOUND);
        DKV_EXPECT_INT_EQ(d.has_result, 1);
        DKV_EXPECT_STATUS(d.result.status, DKV_ENOTFOUND);
        DKV_EXPECT_INT_EQ(d.result.mutated, 0);
        DKV_EXPECT_UINT_EQ(d.result.revision, 41);
        check_truncations(DEC_RESPONSE, &f, pool);
        dkv_wbuf_free(&w);

        /* Not run (malformed, shutting down): the bool is 0. */
        res.has_result = 0;
        res.status = DKV_EINVAL;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w, &res));
        parse_one(&f, &w);
        DKV_EXPECT_UINT_EQ(f.body_len, 2 + 2 + strlen(res.message) + 1);
        DKV_ASSERT_OK(dkv_proto_response_decode(&d, &f, pool));
        DKV_EXPECT_INT_EQ(d.has_result, 0);
        DKV_EXPECT_UINT_EQ(d.result.revision, 0);
        dkv_wbuf_free(&w);
    }

    /* GET ENOTFOUND: the item with its key and the read's revision. */
    memset(&res, 0, sizeof(res));
    res.op = DKV_MSG_GET;
    res.id = 80;
    res.status = DKV_ENOTFOUND;
    res.has_result = 1;
    res.item.status = DKV_ENOTFOUND;
    res.item.key = "gone";
    res.item.key_len = 4;
    res.item.revision = 9;
    res.item.ttl_ms = -1;
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_response_encode(&w, &res));
    parse_one(&f, &w);
    DKV_ASSERT_OK(dkv_proto_response_decode(&d, &f, pool));
    DKV_EXPECT_INT_EQ(d.has_result, 1);
    DKV_EXPECT_STATUS(d.item.status, DKV_ENOTFOUND);
    DKV_EXPECT_MEM_EQ(d.item.key, d.item.key_len, "gone", 4);
    DKV_EXPECT_UINT_EQ(d.item.revision, 9);
    DKV_EXPECT_INT_EQ(d.item.ttl_ms, -1);
    DKV_EXPECT_TRUE(d.item.value == NULL);
    dkv_wbuf_free(&w);

    /* OK always carries it (has_result is implied). */
    res.status = DKV_OK;
    res.has_result = 0;
    res.item.status = DKV_OK;
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_response_encode(&w, &res));
    parse_one(&f, &w);
    DKV_ASSERT_OK(dkv_proto_response_decode(&d, &f, pool));
    DKV_EXPECT_INT_EQ(d.has_result, 1);
    dkv_wbuf_free(&w);
    {
        /* OK with the bool 0, or a bool of 2: malformed. */
        static const unsigned char ok_absent[] = { 0, 0, 0, 0, 0 };
        static const unsigned char bad_bool[] = { 0, 1, 0, 0, 2 };

        make_frame(&f, &w, DKV_MSG_PUT | 0x80, ok_absent,
                   sizeof(ok_absent));
        DKV_EXPECT_STATUS(dkv_proto_response_decode(&d, &f, pool),
                          DKV_EINVAL);
        DKV_EXPECT_TRUE(strstr(dkv_last_error(), "present") != NULL);
        dkv_wbuf_free(&w);
        make_frame(&f, &w, DKV_MSG_GET | 0x80, bad_bool, sizeof(bad_bool));
        DKV_EXPECT_STATUS(dkv_proto_response_decode(&d, &f, pool),
                          DKV_EINVAL);
        dkv_wbuf_free(&w);
    }
    apr_pool_destroy(pool);
}

/* SNAPSHOT_DONE: header flags bit 0 of an EVENT frame; the only frame
 * that may hold no events. */
static void
events_snapshot_done(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_wbuf_t w;
    dkv_frame_t f;
    dkv_event_t *ev;
    size_t n = 99;

    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_events_encode_flags(
        &w, 5, DKV_PROTO_EVENT_SNAPSHOT_DONE, NULL, 0));
    parse_one(&f, &w);
    DKV_EXPECT_UINT_EQ(f.flags, DKV_PROTO_EVENT_SNAPSHOT_DONE);
    DKV_EXPECT_UINT_EQ(f.body_len, 4);
    DKV_ASSERT_OK(dkv_proto_events_decode(&ev, &n, &f, pool));
    DKV_EXPECT_UINT_EQ(n, 0);
    dkv_wbuf_free(&w);

    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_events_encode_flags(
        &w, 5, DKV_PROTO_EVENT_SNAPSHOT_DONE, events, 2));
    parse_one(&f, &w);
    DKV_EXPECT_UINT_EQ(f.flags, DKV_PROTO_EVENT_SNAPSHOT_DONE);
    DKV_ASSERT_OK(dkv_proto_events_decode(&ev, &n, &f, pool));
    DKV_EXPECT_UINT_EQ(n, 2);
    dkv_wbuf_free(&w);

    /* Without the flag: no empty frame, no flags byte. */
    dkv_wbuf_init(&w, 0);
    DKV_EXPECT_STATUS(dkv_proto_events_encode_flags(&w, 5, 0, NULL, 0),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_proto_events_encode_flags(&w, 5, 0x02, events,
                                                    1), DKV_EINVAL);
    DKV_EXPECT_UINT_EQ(w.len, 0);
    DKV_ASSERT_OK(dkv_proto_events_encode(&w, 5, events, 1));
    parse_one(&f, &w);
    DKV_EXPECT_UINT_EQ(f.flags, 0);
    dkv_wbuf_free(&w);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------ status and wbuf */

static void
status_mapping(void)
{
    dkv_status_t s;

    DKV_EXPECT_UINT_EQ(dkv_proto_status_to_wire(DKV_OK), 0);
    DKV_EXPECT_STATUS(dkv_proto_status_from_wire(0), DKV_OK);
    for (s = DKV_START_ERROR + 1; s < DKV_END_ERROR; s++) {
        uint16_t c = dkv_proto_status_to_wire(s);

        DKV_EXPECT_UINT_EQ(c, (uint16_t)(s - DKV_START_ERROR));
        DKV_EXPECT_STATUS(dkv_proto_status_from_wire(c), s);
    }
    DKV_EXPECT_UINT_EQ(dkv_proto_status_to_wire(DKV_ENOTFOUND), 1);
    DKV_EXPECT_UINT_EQ(dkv_proto_status_to_wire(DKV_ENOTIMPL), 16);
    DKV_EXPECT_UINT_EQ(dkv_proto_status_to_wire(APR_ENOMEM), 0xFFFF);
    DKV_EXPECT_UINT_EQ(dkv_proto_status_to_wire(APR_ENOENT), 0xFFFF);
    DKV_EXPECT_UINT_EQ(dkv_proto_status_to_wire(DKV_START_ERROR), 0xFFFF);
    DKV_EXPECT_UINT_EQ(dkv_proto_status_to_wire(DKV_END_ERROR), 0xFFFF);
    DKV_EXPECT_UINT_EQ(dkv_proto_status_to_wire(-1), 0xFFFF);
    DKV_EXPECT_STATUS(dkv_proto_status_from_wire(0xFFFF), DKV_EUNAVAILABLE);
    DKV_EXPECT_STATUS(dkv_proto_status_from_wire(17), DKV_EUNAVAILABLE);
    DKV_EXPECT_STATUS(dkv_proto_status_from_wire(0x8000), DKV_EUNAVAILABLE);
}

static void
wbuf_limit_and_consume(void)
{
    dkv_wbuf_t w;
    dkv_request_t r;
    size_t one;

    memset(&r, 0, sizeof(r));
    r.op = DKV_MSG_PING;
    dkv_wbuf_init(&w, 40);
    DKV_EXPECT_OK(dkv_proto_request_encode(&w, &r));
    one = w.len;
    DKV_EXPECT_UINT_EQ(one, 16);
    DKV_EXPECT_OK(dkv_proto_request_encode(&w, &r));
    /* The third does not fit: rolled back, sticky failure. */
    DKV_EXPECT_STATUS(dkv_proto_request_encode(&w, &r), DKV_ETOOLARGE);
    DKV_EXPECT_UINT_EQ(w.len, 2 * one);
    DKV_EXPECT_STATUS(w.failed, DKV_ETOOLARGE);
    dkv_wbuf_append(&w, "x", 1);
    DKV_EXPECT_UINT_EQ(w.len, 2 * one);
    DKV_EXPECT_STATUS(dkv_proto_request_encode(&w, &r), DKV_ETOOLARGE);
    /* Sent the first frame; reset the failure; room again. */
    dkv_wbuf_consume(&w, one);
    DKV_EXPECT_UINT_EQ(w.len, one);
    w.failed = DKV_OK;
    DKV_EXPECT_OK(dkv_proto_request_encode(&w, &r));
    DKV_EXPECT_UINT_EQ(w.len, 2 * one);
    dkv_wbuf_consume(&w, 1000);
    DKV_EXPECT_UINT_EQ(w.len, 0);
    dkv_wbuf_free(&w);
    dkv_wbuf_free(&w);          /* twice is harmless */

    /* Growth without a limit, through many reallocations. */
    dkv_wbuf_init(&w, 0);
    {
        int i;

        for (i = 0; i < 5000; i++) {
            DKV_ASSERT_OK(dkv_proto_request_encode(&w, &r));
        }
    }
    DKV_EXPECT_UINT_EQ(w.len, 5000 * one);
    DKV_EXPECT_TRUE(w.cap >= w.len);
    dkv_wbuf_free(&w);
}

/* ------------------------------------------------------------- members */

static const dkv_proto_member_t members3[] = {
    { 1, DKV_PROTO_MEMBER_VOTER | DKV_PROTO_MEMBER_SELF, "10.0.0.1", 7861 },
    { 2, DKV_PROTO_MEMBER_VOTER, "::1", 7862 },
    { 0xFFFFFFFFu, DKV_PROTO_MEMBER_LEARNER, "node-c.example.org", 0 }
};

/* A MEMBERS answer with N members (N <= 16): the three above, then
 * generated ones with host names of growing length in POOL. */
static void
members_sample(dkv_response_t *r, dkv_proto_member_t *m, size_t n,
               apr_pool_t *pool)
{
    size_t i;

    memset(r, 0, sizeof(*r));
    r->op = DKV_MSG_MEMBERS;
    r->id = 4242;
    r->message = "";
    r->leader = n ? 2 : 0;
    for (i = 0; i < n; i++) {
        if (i < 3) {
            m[i] = members3[i];
        } else {
            m[i].id = (uint32_t)(100 + i);
            m[i].roles = (unsigned)(i % 4) & 0x03;
            m[i].host = apr_psprintf(pool, "h%0*u", (int)(i * 8),
                                     (unsigned)i);
            m[i].port = (uint16_t)(40000 + i);
        }
    }
    r->members = n ? m : NULL;
    r->nmembers = n;
}

static void
members_round_trip(void)
{
    static const size_t counts[] = { 0, 1, 3, 16 };
    apr_pool_t *pool = dkv_test_pool();
    dkv_proto_member_t m[16];
    size_t c, i;

    for (c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        dkv_response_t r, d;
        dkv_wbuf_t w1, w2;
        dkv_frame_t f;

        members_sample(&r, m, counts[c], pool);
        dkv_wbuf_init(&w1, 0);
        dkv_wbuf_init(&w2, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w1, &r));
        parse_one(&f, &w1);
        DKV_EXPECT_UINT_EQ(f.op, DKV_MSG_MEMBERS | 0x80);
        /* status, message, leader, count, then 10 + host bytes each. */
        {
            size_t want = 2 + 2 + 4 + 4;

            for (i = 0; i < counts[c]; i++) {
                want += 4 + 1 + 2 + strlen(m[i].host) + 2;
            }
            DKV_EXPECT_UINT_EQ(f.body_len, want);
        }
        DKV_ASSERT_OK(dkv_proto_response_decode(&d, &f, pool));
        DKV_EXPECT_UINT_EQ(d.op, DKV_MSG_MEMBERS);
        DKV_EXPECT_UINT_EQ(d.id, 4242);
        DKV_EXPECT_STATUS(d.status, DKV_OK);
        DKV_EXPECT_UINT_EQ(d.leader, r.leader);
        DKV_ASSERT_UINT_EQ(d.nmembers, counts[c]);
        for (i = 0; i < counts[c]; i++) {
            DKV_EXPECT_UINT_EQ(d.members[i].id, m[i].id);
            DKV_EXPECT_UINT_EQ(d.members[i].roles, m[i].roles);
            DKV_EXPECT_STR_EQ(d.members[i].host, m[i].host);
            DKV_EXPECT_UINT_EQ(d.members[i].port, m[i].port);
        }
        DKV_ASSERT_OK(dkv_proto_response_encode(&w2, &d));
        DKV_EXPECT_MEM_EQ(w2.data, w2.len, w1.data, w1.len);
        check_truncations(DEC_RESPONSE, &f, pool);
        DKV_EXPECT_STATUS(run_decoder(DEC_REQUEST, &f, pool), DKV_ENOTIMPL);
        dkv_wbuf_free(&w1);
        dkv_wbuf_free(&w2);
    }
    /* The wire layout of one member, against docs/protocol.md. */
    {
        static const unsigned char one[] = {
            0, 0, 0, 0,                 /* status OK, empty message */
            0, 0, 0, 2,                 /* leader */
            0, 0, 0, 1,                 /* count */
            0, 0, 0, 2,                 /* id */
            0x01,                       /* roles: voter */
            0, 3, ':', ':', '1',        /* host */
            0x1E, 0xB6                  /* port 7862 */
        };
        dkv_response_t r;
        dkv_wbuf_t w;
        dkv_frame_t f;

        memset(&r, 0, sizeof(r));
        r.op = DKV_MSG_MEMBERS;
        r.leader = 2;
        r.members = (dkv_proto_member_t *)&members3[1];
        r.nmembers = 1;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w, &r));
        parse_one(&f, &w);
        DKV_EXPECT_MEM_EQ(f.body, f.body_len, one, sizeof(one));
        dkv_wbuf_free(&w);
    }
    /* A refusal (an old node: ENOTIMPL) carries no fields. */
    {
        static const unsigned char notimpl[] = { 0, 16, 0, 2, 'n', 'o' };
        dkv_response_t r, d;
        dkv_wbuf_t w;
        dkv_frame_t f;

        memset(&r, 0, sizeof(r));
        r.op = DKV_MSG_MEMBERS;
        r.status = DKV_ENOTIMPL;
        r.message = "no";
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w, &r));
        parse_one(&f, &w);
        DKV_EXPECT_MEM_EQ(f.body, f.body_len, notimpl, sizeof(notimpl));
        DKV_ASSERT_OK(dkv_proto_response_decode(&d, &f, pool));
        DKV_EXPECT_STATUS(d.status, DKV_ENOTIMPL);
        DKV_EXPECT_UINT_EQ(d.nmembers, 0);
        DKV_EXPECT_TRUE(d.members == NULL);
        dkv_wbuf_free(&w);
    }
    /* The request: an empty body. */
    {
        dkv_request_t q, d;
        dkv_wbuf_t w;
        dkv_frame_t f;

        memset(&q, 0, sizeof(q));
        q.op = DKV_MSG_MEMBERS;
        q.id = 5;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w, &q));
        DKV_EXPECT_UINT_EQ(w.len, DKV_PROTO_HEADER);
        parse_one(&f, &w);
        DKV_ASSERT_OK(dkv_proto_request_decode(&d, &f, pool));
        DKV_EXPECT_UINT_EQ(d.op, DKV_MSG_MEMBERS);
        DKV_EXPECT_UINT_EQ(d.id, 5);
        DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_MEMBERS, "x", 1,
                                               pool), DKV_EINVAL);
        dkv_wbuf_free(&w);
    }
    apr_pool_destroy(pool);
}

/* Decodes a MEMBERS response of BODY (LEN bytes, exact heap block). */
static dkv_status_t
decode_members_bytes(const void *body, size_t len, apr_pool_t *pool)
{
    dkv_wbuf_t w;
    dkv_frame_t f;
    dkv_response_t r;
    dkv_status_t s;
    unsigned char *b;

    make_frame(&f, &w, DKV_MSG_MEMBERS | 0x80, body, len);
    b = exact_copy(&f, &f, f.body, f.body_len);
    s = dkv_proto_response_decode(&r, &f, pool);
    dkv_free(b);
    dkv_wbuf_free(&w);
    return s;
}

static void
members_malformed(void)
{
    apr_pool_t *pool = dkv_test_pool();
    /* OK, leader 1, then a count and one member (id 1, voter, "h",
     * port 9); bytes 8..11 are the count. */
    static const unsigned char good[] = {
        0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1,
        0, 0, 0, 1, 0x01, 0, 1, 'h', 0, 9
    };
    unsigned char b[sizeof(good) + 300];
    dkv_response_t r;
    dkv_proto_member_t m;
    dkv_wbuf_t w;
    size_t i;

    DKV_EXPECT_OK(decode_members_bytes(good, sizeof(good), pool));
    /* A count the body cannot hold, and one above the limit. */
    memcpy(b, good, sizeof(good));
    b[11] = 2;
    DKV_EXPECT_STATUS(decode_members_bytes(b, sizeof(good), pool),
                      DKV_EINVAL);
    b[8] = 0xFF;
    b[9] = 0xFF;
    b[10] = 0xFF;
    b[11] = 0xFF;
    DKV_EXPECT_STATUS(decode_members_bytes(b, sizeof(good), pool),
                      DKV_EINVAL);
    memset(b, 0, sizeof(b));
    dkv_put_be32(b + 8, DKV_PROTO_MAX_MEMBERS + 1);
    DKV_EXPECT_STATUS(decode_members_bytes(b, 12, pool), DKV_EINVAL);
    /* Unknown role bits. */
    memcpy(b, good, sizeof(good));
    b[16] = 0x08;
    DKV_EXPECT_STATUS(decode_members_bytes(b, sizeof(good), pool),
                      DKV_EINVAL);
    b[16] = DKV_PROTO_MEMBER_ROLES;
    DKV_EXPECT_OK(decode_members_bytes(b, sizeof(good), pool));
    /* An empty host; a host with a NUL byte. */
    {
        static const unsigned char empty[] = {
            0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1,
            0, 0, 0, 1, 0x01, 0, 0, 0, 9
        };

        DKV_EXPECT_STATUS(decode_members_bytes(empty, sizeof(empty), pool),
                          DKV_EINVAL);
    }
    memcpy(b, good, sizeof(good));
    b[19] = 0;
    DKV_EXPECT_STATUS(decode_members_bytes(b, sizeof(good), pool),
                      DKV_EINVAL);
    /* A host of 256 bytes (255 is the limit). */
    memcpy(b, good, 17);
    for (i = 0; i < 2; i++) {
        size_t hl = 255 + i;

        b[17] = (unsigned char)(hl >> 8);
        b[18] = (unsigned char)hl;
        memset(b + 19, 'a', hl);
        b[19 + hl] = 0;
        b[20 + hl] = 9;
        DKV_EXPECT_STATUS(decode_members_bytes(b, 21 + hl, pool),
                          i == 0 ? DKV_OK : DKV_EINVAL);
    }
    /* Trailing bytes. */
    memcpy(b, good, sizeof(good));
    b[sizeof(good)] = 0;
    DKV_EXPECT_STATUS(decode_members_bytes(b, sizeof(good) + 1, pool),
                      DKV_EINVAL);

    /* The encoder refuses what the decoder would. */
    memset(&r, 0, sizeof(r));
    r.op = DKV_MSG_MEMBERS;
    r.members = &m;
    r.nmembers = 1;
    m = members3[0];
    dkv_wbuf_init(&w, 0);
    m.roles = 0x08;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &r), DKV_EINVAL);
    m.roles = 0;
    m.host = "";
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &r), DKV_EINVAL);
    m.host = NULL;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &r), DKV_EINVAL);
    memset(b, 'a', 256);
    b[256] = '\0';
    m.host = (const char *)b;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &r), DKV_EINVAL);
    b[255] = '\0';
    DKV_EXPECT_OK(dkv_proto_response_encode(&w, &r));
    r.nmembers = DKV_PROTO_MAX_MEMBERS + 1;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &r), DKV_EINVAL);
    r.nmembers = 1;
    r.members = NULL;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &r), DKV_EINVAL);
    /* Only the one good frame is in the buffer (failures roll back). */
    {
        dkv_frame_t f;

        parse_one(&f, &w);
    }
    dkv_wbuf_free(&w);
    apr_pool_destroy(pool);
}

/* --------------------------------------------------------------- stats */

/* A STATS answer with N metrics (N <= 40): the names of docs/admin-api.md
 * first, then generated ones, the last of DKV_PROTO_MAX_STAT_NAME
 * bytes; values spread over 64 bits. */
static void
stats_sample(dkv_response_t *r, dkv_proto_stat_t *st, size_t n,
             apr_pool_t *pool)
{
    static const char *const names[] = {
        "gets_total", "puts_total", "removes_total", "requests_total",
        "errors_total", "items", "connections", "watches",
        "request_latency_us_le_100", "request_latency_us_le_inf",
        "request_latency_us_sum", "raft_term", "node_id", "uptime_ms"
    };
    size_t i, nn = sizeof(names) / sizeof(names[0]);

    memset(r, 0, sizeof(*r));
    r->op = DKV_MSG_STATS;
    r->id = 55;
    r->message = "";
    for (i = 0; i < n; i++) {
        if (i < nn) {
            st[i].name = names[i];
        } else if (i + 1 == n) {
            st[i].name = apr_psprintf(pool, "%064u", 7u);
        } else {
            st[i].name = apr_psprintf(pool, "m_%u", (unsigned)i);
        }
        st[i].value = i == 0 ? UINT64_MAX : (uint64_t)i << (i % 60);
    }
    r->stats = n ? st : NULL;
    r->nstats = n;
}

static void
stats_round_trip(void)
{
    static const size_t counts[] = { 0, 1, 14, 40 };
    apr_pool_t *pool = dkv_test_pool();
    dkv_proto_stat_t st[40];
    size_t c, i;

    for (c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        dkv_response_t r, d;
        dkv_wbuf_t w1, w2;
        dkv_frame_t f;
        size_t want = 2 + 2 + 4;

        stats_sample(&r, st, counts[c], pool);
        dkv_wbuf_init(&w1, 0);
        dkv_wbuf_init(&w2, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w1, &r));
        parse_one(&f, &w1);
        DKV_EXPECT_UINT_EQ(f.op, DKV_MSG_STATS | 0x80);
        for (i = 0; i < counts[c]; i++) {
            want += 2 + strlen(st[i].name) + 8;
        }
        DKV_EXPECT_UINT_EQ(f.body_len, want);
        DKV_ASSERT_OK(dkv_proto_response_decode(&d, &f, pool));
        DKV_EXPECT_UINT_EQ(d.op, DKV_MSG_STATS);
        DKV_EXPECT_UINT_EQ(d.id, 55);
        DKV_EXPECT_STATUS(d.status, DKV_OK);
        DKV_ASSERT_UINT_EQ(d.nstats, counts[c]);
        for (i = 0; i < counts[c]; i++) {
            DKV_EXPECT_STR_EQ(d.stats[i].name, st[i].name);
            DKV_EXPECT_TRUE(d.stats[i].value == st[i].value);
        }
        DKV_ASSERT_OK(dkv_proto_response_encode(&w2, &d));
        DKV_EXPECT_MEM_EQ(w2.data, w2.len, w1.data, w1.len);
        check_truncations(DEC_RESPONSE, &f, pool);
        DKV_EXPECT_STATUS(run_decoder(DEC_REQUEST, &f, pool), DKV_ENOTIMPL);
        dkv_wbuf_free(&w1);
        dkv_wbuf_free(&w2);
    }
    /* The wire layout of one metric, against docs/protocol.md. */
    {
        static const unsigned char one[] = {
            0, 0, 0, 0,                 /* status OK, empty message */
            0, 0, 0, 1,                 /* count */
            0, 5, 'i', 't', 'e', 'm', 's',
            0, 0, 0, 0, 0, 0, 0x01, 0x02    /* 258 */
        };
        dkv_proto_stat_t m = { "items", 258 };
        dkv_response_t r;
        dkv_wbuf_t w;
        dkv_frame_t f;

        memset(&r, 0, sizeof(r));
        r.op = DKV_MSG_STATS;
        r.stats = &m;
        r.nstats = 1;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w, &r));
        parse_one(&f, &w);
        DKV_EXPECT_MEM_EQ(f.body, f.body_len, one, sizeof(one));
        dkv_wbuf_free(&w);
    }
    /* The most metrics an answer may hold. */
    {
        dkv_proto_stat_t *many = apr_pcalloc(pool, DKV_PROTO_MAX_STATS
                                                   * sizeof(*many));
        dkv_response_t r, d;
        dkv_wbuf_t w;
        dkv_frame_t f;

        memset(&r, 0, sizeof(r));
        r.op = DKV_MSG_STATS;
        for (i = 0; i < DKV_PROTO_MAX_STATS; i++) {
            many[i].name = apr_psprintf(pool, "s%u", (unsigned)i);
            many[i].value = i;
        }
        r.stats = many;
        r.nstats = DKV_PROTO_MAX_STATS;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w, &r));
        parse_one(&f, &w);
        DKV_ASSERT_OK(dkv_proto_response_decode(&d, &f, pool));
        DKV_ASSERT_UINT_EQ(d.nstats, DKV_PROTO_MAX_STATS);
        DKV_EXPECT_STR_EQ(d.stats[DKV_PROTO_MAX_STATS - 1].name, "s511");
        DKV_EXPECT_UINT_EQ(d.stats[300].value, 300);
        dkv_wbuf_free(&w);
    }
    /* A refusal carries no fields. */
    {
        dkv_response_t r, d;
        dkv_wbuf_t w;
        dkv_frame_t f;

        memset(&r, 0, sizeof(r));
        r.op = DKV_MSG_STATS;
        r.status = DKV_EUNAVAILABLE;
        r.message = "node shutting down";
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w, &r));
        parse_one(&f, &w);
        DKV_EXPECT_UINT_EQ(f.body_len, 4 + strlen(r.message));
        DKV_ASSERT_OK(dkv_proto_response_decode(&d, &f, pool));
        DKV_EXPECT_STATUS(d.status, DKV_EUNAVAILABLE);
        DKV_EXPECT_UINT_EQ(d.nstats, 0);
        DKV_EXPECT_TRUE(d.stats == NULL);
        dkv_wbuf_free(&w);
    }
    /* The request: an empty body. */
    {
        dkv_request_t q, d;
        dkv_wbuf_t w;
        dkv_frame_t f;

        memset(&q, 0, sizeof(q));
        q.op = DKV_MSG_STATS;
        q.id = 6;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w, &q));
        DKV_EXPECT_UINT_EQ(w.len, DKV_PROTO_HEADER);
        parse_one(&f, &w);
        DKV_ASSERT_OK(dkv_proto_request_decode(&d, &f, pool));
        DKV_EXPECT_UINT_EQ(d.op, DKV_MSG_STATS);
        DKV_EXPECT_UINT_EQ(d.id, 6);
        DKV_EXPECT_TRUE(!dkv_proto_op_reads_store(DKV_MSG_STATS));
        DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_STATS, "x", 1,
                                               pool), DKV_EINVAL);
        dkv_wbuf_free(&w);
    }
    apr_pool_destroy(pool);
}

/* Decodes a STATS response of BODY (LEN bytes, exact heap block). */
static dkv_status_t
decode_stats_bytes(const void *body, size_t len, apr_pool_t *pool)
{
    dkv_wbuf_t w;
    dkv_frame_t f;
    dkv_response_t r;
    dkv_status_t s;
    unsigned char *b;

    make_frame(&f, &w, DKV_MSG_STATS | 0x80, body, len);
    b = exact_copy(&f, &f, f.body, f.body_len);
    s = dkv_proto_response_decode(&r, &f, pool);
    dkv_free(b);
    dkv_wbuf_free(&w);
    return s;
}

static void
stats_malformed(void)
{
    apr_pool_t *pool = dkv_test_pool();
    /* OK, count 1, "ab" = 7; bytes 4..7 are the count, 8..9 the name's
     * length, 10..11 the name. */
    static const unsigned char good[] = {
        0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 'a', 'b', 0, 0, 0, 0, 0, 0, 0, 7
    };
    static const char *const bad_names[] = {
        "", "Items", "a-b", "a b", "caf\xc3\xa9", "x.y"
    };
    unsigned char b[sizeof(good) + 100];
    dkv_proto_stat_t m;
    dkv_response_t r;
    dkv_wbuf_t w;
    size_t i;

    DKV_EXPECT_OK(decode_stats_bytes(good, sizeof(good), pool));
    /* A count the body cannot hold, one above the limit, a huge one. */
    memcpy(b, good, sizeof(good));
    b[7] = 2;
    DKV_EXPECT_STATUS(decode_stats_bytes(b, sizeof(good), pool),
                      DKV_EINVAL);
    memset(b, 0, sizeof(b));
    dkv_put_be32(b + 4, DKV_PROTO_MAX_STATS + 1);
    DKV_EXPECT_STATUS(decode_stats_bytes(b, 8, pool), DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "stat count") != NULL);
    dkv_put_be32(b + 4, 0xFFFFFFFFu);
    DKV_EXPECT_STATUS(decode_stats_bytes(b, 8, pool), DKV_EINVAL);
    /* Names outside [a-z0-9_], empty, or with a NUL. */
    for (i = 0; i < 6; i++) {
        size_t n = strlen(bad_names[i]);

        memcpy(b, good, 8);
        b[8] = 0;
        b[9] = (unsigned char)n;
        memcpy(b + 10, bad_names[i], n);
        memset(b + 10 + n, 0, 8);
        DKV_EXPECT_STATUS(decode_stats_bytes(b, 18 + n, pool), DKV_EINVAL);
        /* (An empty name leaves the body too short for its count.) */
        DKV_EXPECT_TRUE(strstr(dkv_last_error(), n ? "stat name"
                                                   : "stat count") != NULL);
    }
    memcpy(b, good, sizeof(good));
    b[11] = 0;
    DKV_EXPECT_STATUS(decode_stats_bytes(b, sizeof(good), pool),
                      DKV_EINVAL);
    /* A name of 65 bytes (64 is the limit). */
    for (i = 0; i < 2; i++) {
        size_t nl = DKV_PROTO_MAX_STAT_NAME + i;

        memcpy(b, good, 8);
        b[8] = 0;
        b[9] = (unsigned char)nl;
        memset(b + 10, 'z', nl);
        memset(b + 10 + nl, 0, 8);
        DKV_EXPECT_STATUS(decode_stats_bytes(b, 18 + nl, pool),
                          i == 0 ? DKV_OK : DKV_EINVAL);
    }
    /* Trailing bytes. */
    memcpy(b, good, sizeof(good));
    b[sizeof(good)] = 0;
    DKV_EXPECT_STATUS(decode_stats_bytes(b, sizeof(good) + 1, pool),
                      DKV_EINVAL);

    /* The encoder refuses what the decoder would. */
    memset(&r, 0, sizeof(r));
    r.op = DKV_MSG_STATS;
    r.stats = &m;
    r.nstats = 1;
    m.value = 1;
    dkv_wbuf_init(&w, 0);
    for (i = 0; i < 6; i++) {
        m.name = bad_names[i];
        DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &r), DKV_EINVAL);
    }
    m.name = NULL;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &r), DKV_EINVAL);
    memset(b, 'a', DKV_PROTO_MAX_STAT_NAME + 1);
    b[DKV_PROTO_MAX_STAT_NAME + 1] = '\0';
    m.name = (const char *)b;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &r), DKV_EINVAL);
    b[DKV_PROTO_MAX_STAT_NAME] = '\0';
    DKV_EXPECT_OK(dkv_proto_response_encode(&w, &r));
    r.nstats = DKV_PROTO_MAX_STATS + 1;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &r), DKV_EINVAL);
    r.nstats = 1;
    r.stats = NULL;
    DKV_EXPECT_STATUS(dkv_proto_response_encode(&w, &r), DKV_EINVAL);
    /* Only the one good frame is in the buffer (failures roll back). */
    {
        dkv_frame_t f;

        parse_one(&f, &w);
    }
    dkv_wbuf_free(&w);
    apr_pool_destroy(pool);
}

/* ---------------------------------------------------------- member add */

static void
member_add_round_trip(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const unsigned char wire[] = {
        0, 0, 0, 3,                     /* id */
        0, 9, '1', '0', '.', '0', '.', '0', '.', '1', '3',
        0x1E, 0x85,                     /* cluster port 7813 */
        0x1E, 0xB7                      /* client port 7863 */
    };
    static const char *const hosts[] = { "10.0.0.13", "::1", "h" };
    dkv_request_t q, d;
    dkv_response_t r, rd;
    dkv_wbuf_t w, w2;
    dkv_frame_t f;
    char longest[DKV_PROTO_MAX_HOST + 1];
    size_t i;

    memset(longest, 'n', DKV_PROTO_MAX_HOST);
    longest[DKV_PROTO_MAX_HOST] = '\0';
    for (i = 0; i < 4; i++) {
        memset(&q, 0, sizeof(q));
        q.op = DKV_MSG_MEMBER_ADD;
        q.id = 77;
        q.member_id = i == 3 ? 0xFFFFFFFFu : (uint32_t)(3 + i);
        q.member_host = i < 3 ? hosts[i] : longest;
        q.member_cluster_port = (uint16_t)(i == 3 ? 65535 : 7813);
        q.member_client_port = (uint16_t)(i == 2 ? 0 : 7863);
        dkv_wbuf_init(&w, 0);
        dkv_wbuf_init(&w2, 0);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w, &q));
        parse_one(&f, &w);
        DKV_EXPECT_UINT_EQ(f.op, DKV_MSG_MEMBER_ADD);
        DKV_EXPECT_UINT_EQ(f.body_len, 4 + 2 + strlen(q.member_host) + 4);
        if (i == 0) {
            DKV_EXPECT_MEM_EQ(f.body, f.body_len, wire, sizeof(wire));
        }
        DKV_ASSERT_OK(dkv_proto_request_decode(&d, &f, pool));
        DKV_EXPECT_UINT_EQ(d.op, DKV_MSG_MEMBER_ADD);
        DKV_EXPECT_UINT_EQ(d.id, 77);
        DKV_EXPECT_UINT_EQ(d.member_id, q.member_id);
        DKV_EXPECT_STR_EQ(d.member_host, q.member_host);
        DKV_EXPECT_UINT_EQ(d.member_cluster_port, q.member_cluster_port);
        DKV_EXPECT_UINT_EQ(d.member_client_port, q.member_client_port);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w2, &d));
        DKV_EXPECT_MEM_EQ(w2.data, w2.len, w.data, w.len);
        check_truncations(DEC_REQUEST, &f, pool);
        DKV_EXPECT_STATUS(run_decoder(DEC_RESPONSE, &f, pool), DKV_EINVAL);
        dkv_wbuf_free(&w);
        dkv_wbuf_free(&w2);
    }
    DKV_EXPECT_TRUE(!dkv_proto_op_reads_store(DKV_MSG_MEMBER_ADD));

    /* The answer: empty when OK; status and message otherwise. */
    memset(&r, 0, sizeof(r));
    r.op = DKV_MSG_MEMBER_ADD;
    r.id = 77;
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_response_encode(&w, &r));
    parse_one(&f, &w);
    DKV_EXPECT_UINT_EQ(f.op, DKV_MSG_MEMBER_ADD | 0x80);
    DKV_EXPECT_UINT_EQ(f.body_len, 4);
    DKV_ASSERT_OK(dkv_proto_response_decode(&rd, &f, pool));
    DKV_EXPECT_UINT_EQ(rd.op, DKV_MSG_MEMBER_ADD);
    DKV_EXPECT_STATUS(rd.status, DKV_OK);
    check_truncations(DEC_RESPONSE, &f, pool);
    dkv_wbuf_free(&w);
    r.status = DKV_EUNAUTHORIZED;
    r.message = "MEMBER_ADD needs the node admin connection";
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_response_encode(&w, &r));
    parse_one(&f, &w);
    DKV_EXPECT_UINT_EQ(f.body_len, 4 + strlen(r.message));
    DKV_ASSERT_OK(dkv_proto_response_decode(&rd, &f, pool));
    DKV_EXPECT_STATUS(rd.status, DKV_EUNAUTHORIZED);
    DKV_EXPECT_STR_EQ(rd.message, r.message);
    dkv_wbuf_free(&w);
    apr_pool_destroy(pool);
}

static void
member_add_malformed(void)
{
    apr_pool_t *pool = dkv_test_pool();
    /* id 3, host "h", cluster port 9, client port 10. */
    static const unsigned char good[] = {
        0, 0, 0, 3, 0, 1, 'h', 0, 9, 0, 10
    };
    unsigned char b[300];
    dkv_request_t q;
    dkv_wbuf_t w;
    size_t i;

    DKV_EXPECT_OK(decode_request_bytes(DKV_MSG_MEMBER_ADD, good,
                                       sizeof(good), pool));
    /* Id 0. */
    memcpy(b, good, sizeof(good));
    b[3] = 0;
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_MEMBER_ADD, b,
                                           sizeof(good), pool), DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "member id") != NULL);
    /* An empty host, a host with a NUL. */
    {
        static const unsigned char empty[] = {
            0, 0, 0, 3, 0, 0, 0, 9, 0, 10
        };

        DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_MEMBER_ADD, empty,
                                               sizeof(empty), pool),
                          DKV_EINVAL);
        DKV_EXPECT_TRUE(strstr(dkv_last_error(), "member host") != NULL);
    }
    memcpy(b, good, sizeof(good));
    b[6] = 0;
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_MEMBER_ADD, b,
                                           sizeof(good), pool), DKV_EINVAL);
    /* Cluster port 0 (client port 0 is fine). */
    memcpy(b, good, sizeof(good));
    b[8] = 0;
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_MEMBER_ADD, b,
                                           sizeof(good), pool), DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "cluster port") != NULL);
    memcpy(b, good, sizeof(good));
    b[10] = 0;
    DKV_EXPECT_OK(decode_request_bytes(DKV_MSG_MEMBER_ADD, b, sizeof(good),
                                       pool));
    /* A host of 256 bytes (255 is the limit). */
    for (i = 0; i < 2; i++) {
        size_t hl = DKV_PROTO_MAX_HOST + i;

        memcpy(b, good, 4);
        b[4] = (unsigned char)(hl >> 8);
        b[5] = (unsigned char)hl;
        memset(b + 6, 'a', hl);
        memcpy(b + 6 + hl, good + 7, 4);
        DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_MEMBER_ADD, b,
                                               10 + hl, pool),
                          i == 0 ? DKV_OK : DKV_EINVAL);
    }
    /* Trailing bytes. */
    memcpy(b, good, sizeof(good));
    b[sizeof(good)] = 0;
    DKV_EXPECT_STATUS(decode_request_bytes(DKV_MSG_MEMBER_ADD, b,
                                           sizeof(good) + 1, pool),
                      DKV_EINVAL);

    /* The encoder refuses what the decoder would. */
    memset(&q, 0, sizeof(q));
    q.op = DKV_MSG_MEMBER_ADD;
    q.member_id = 3;
    q.member_host = "h";
    q.member_cluster_port = 9;
    dkv_wbuf_init(&w, 0);
    q.member_id = 0;
    DKV_EXPECT_STATUS(dkv_proto_request_encode(&w, &q), DKV_EINVAL);
    q.member_id = 3;
    q.member_host = NULL;
    DKV_EXPECT_STATUS(dkv_proto_request_encode(&w, &q), DKV_EINVAL);
    q.member_host = "";
    DKV_EXPECT_STATUS(dkv_proto_request_encode(&w, &q), DKV_EINVAL);
    memset(b, 'a', DKV_PROTO_MAX_HOST + 1);
    b[DKV_PROTO_MAX_HOST + 1] = '\0';
    q.member_host = (const char *)b;
    DKV_EXPECT_STATUS(dkv_proto_request_encode(&w, &q), DKV_EINVAL);
    q.member_host = "h";
    q.member_cluster_port = 0;
    DKV_EXPECT_STATUS(dkv_proto_request_encode(&w, &q), DKV_EINVAL);
    DKV_EXPECT_UINT_EQ(w.len, 0);
    q.member_cluster_port = 9;
    DKV_EXPECT_OK(dkv_proto_request_encode(&w, &q));
    dkv_wbuf_free(&w);
    apr_pool_destroy(pool);
}

/* The request header's SERIALIZABLE flag: written, decoded, unknown bits
 * refused by the encoder and dropped by the decoder. */
static void
request_flags(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_request_t q, d;
    dkv_wbuf_t w, w2;
    dkv_frame_t f;

    memset(&q, 0, sizeof(q));
    q.op = DKV_MSG_GET;
    q.id = 3;
    q.key = "k";
    q.key_len = 1;
    q.flags = DKV_PROTO_FLAG_SERIALIZABLE;
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_request_encode(&w, &q));
    DKV_ASSERT_UINT_EQ(w.len, DKV_PROTO_HEADER + 3 + 1 + 8);
    DKV_EXPECT_UINT_EQ(w.data[5], 0x01);
    parse_one(&f, &w);
    DKV_EXPECT_UINT_EQ(f.flags, DKV_PROTO_FLAG_SERIALIZABLE);
    DKV_ASSERT_OK(dkv_proto_request_decode(&d, &f, pool));
    DKV_EXPECT_UINT_EQ(d.flags, DKV_PROTO_FLAG_SERIALIZABLE);
    dkv_wbuf_init(&w2, 0);
    DKV_ASSERT_OK(dkv_proto_request_encode(&w2, &d));
    DKV_EXPECT_MEM_EQ(w2.data, w2.len, w.data, w.len);
    dkv_wbuf_free(&w2);

    /* Without the flag: byte 5 is 0 and decodes as 0. */
    q.flags = 0;
    dkv_wbuf_init(&w2, 0);
    DKV_ASSERT_OK(dkv_proto_request_encode(&w2, &q));
    DKV_EXPECT_UINT_EQ(w2.data[5], 0);
    parse_one(&f, &w2);
    DKV_ASSERT_OK(dkv_proto_request_decode(&d, &f, pool));
    DKV_EXPECT_UINT_EQ(d.flags, 0);
    dkv_wbuf_free(&w2);

    /* Unknown bits from the wire are ignored (docs/protocol.md). */
    w.data[5] = 0xFF;
    parse_one(&f, &w);
    DKV_ASSERT_OK(dkv_proto_request_decode(&d, &f, pool));
    DKV_EXPECT_UINT_EQ(d.flags, DKV_PROTO_FLAG_SERIALIZABLE);
    w.data[5] = 0xFE;
    parse_one(&f, &w);
    DKV_ASSERT_OK(dkv_proto_request_decode(&d, &f, pool));
    DKV_EXPECT_UINT_EQ(d.flags, 0);
    dkv_wbuf_free(&w);

    /* ... but never sent, and a failed frame leaves nothing behind. */
    q.flags = 0x02;
    dkv_wbuf_init(&w, 0);
    DKV_EXPECT_STATUS(dkv_proto_request_encode(&w, &q), DKV_EINVAL);
    DKV_EXPECT_UINT_EQ(w.len, 0);
    /* Any op may carry it (a node ignores it outside reads). */
    memset(&q, 0, sizeof(q));
    q.op = DKV_MSG_SCAN;
    q.flags = DKV_PROTO_FLAG_SERIALIZABLE;
    DKV_ASSERT_OK(dkv_proto_request_encode(&w, &q));
    DKV_EXPECT_UINT_EQ(w.data[5], 0x01);
    parse_one(&f, &w);
    DKV_ASSERT_OK(dkv_proto_request_decode(&d, &f, pool));
    DKV_EXPECT_UINT_EQ(d.flags, DKV_PROTO_FLAG_SERIALIZABLE);
    dkv_wbuf_free(&w);
    apr_pool_destroy(pool);
}

/* ---------------------------------------------------------------- corpus */

static void
write_file(const char *dir, const char *name, const dkv_wbuf_t *w)
{
    char path[1024];
    FILE *fp;

    apr_snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "wb");
    DKV_ASSERT_NOT_NULL(fp);
    DKV_EXPECT_UINT_EQ(fwrite(w->data, 1, w->len, fp), w->len);
    fclose(fp);
}

/* With DKV_PROTO_CORPUS=DIR, writes every sample as a fuzzing seed. */
static void
write_corpus(void)
{
    const char *dir = getenv("DKV_PROTO_CORPUS");
    dkv_request_t reqs[40];
    dkv_response_t ress[48];
    size_t i, n;
    char name[64];
    dkv_wbuf_t w;

    if (dir == NULL || dir[0] == '\0') {
        return;
    }
    n = sample_requests(reqs);
    for (i = 0; i < n; i++) {
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w, &reqs[i]));
        apr_snprintf(name, sizeof(name), "req-%02x-%02u", reqs[i].op,
                     (unsigned)i);
        write_file(dir, name, &w);
        dkv_wbuf_free(&w);
    }
    n = sample_responses(ress);
    for (i = 0; i < n; i++) {
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w, &ress[i]));
        apr_snprintf(name, sizeof(name), "res-%02x-%02u", ress[i].op,
                     (unsigned)i);
        write_file(dir, name, &w);
        dkv_wbuf_free(&w);
    }
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_events_encode(&w, 1001, events, 4));
    write_file(dir, "events-4", &w);
    dkv_wbuf_free(&w);
    /* SEARCH at the clause limits: 32 deep, and 256 clauses. */
    {
        static dkv_clause_t tree[257];
        dkv_request_t q;

        memset(&q, 0, sizeof(q));
        q.op = DKV_MSG_SEARCH;
        q.query.entity = "e";
        for (i = 0; i < 257; i++) {
            memset(&tree[i], 0, sizeof(tree[i]));
            tree[i].type = DKV_CLAUSE_EQ;
            tree[i].label = "l";
            tree[i].value = "v";
        }
        for (i = 0; i < 31; i++) {
            tree[i].type = DKV_CLAUSE_NOT;
            tree[i].children = &tree[i + 1];
            tree[i].nchildren = 1;
        }
        q.query.where = &tree[0];
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w, &q));
        write_file(dir, "req-31-deep", &w);
        dkv_wbuf_free(&w);
        tree[0].type = DKV_CLAUSE_AND;
        tree[0].nchildren = 255;
        for (i = 1; i < 32; i++) {
            tree[i].type = DKV_CLAUSE_EQ;
            tree[i].children = NULL;
            tree[i].nchildren = 0;
        }
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w, &q));
        write_file(dir, "req-31-wide", &w);
        dkv_wbuf_free(&w);
    }
    /* A stream of three frames, as a connection reads them. */
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_request_encode(&w, &reqs[0]));
    DKV_ASSERT_OK(dkv_proto_request_encode(&w, &reqs[3]));
    DKV_ASSERT_OK(dkv_proto_events_encode(&w, 7, events + 2, 2));
    write_file(dir, "stream-3", &w);
    dkv_wbuf_free(&w);
    /* MEMBERS: the request, answers of 0, 1, 3 and 16 members, ENOTIMPL;
     * a serializable GET. */
    {
        static const size_t counts[] = { 0, 1, 3, 16 };
        apr_pool_t *pool = dkv_test_pool();
        dkv_proto_member_t m[16];
        dkv_response_t res;
        dkv_request_t q;

        memset(&q, 0, sizeof(q));
        q.op = DKV_MSG_MEMBERS;
        q.id = 4;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w, &q));
        write_file(dir, "req-04-members", &w);
        dkv_wbuf_free(&w);
        for (i = 0; i < 4; i++) {
            members_sample(&res, m, counts[i], pool);
            dkv_wbuf_init(&w, 0);
            DKV_ASSERT_OK(dkv_proto_response_encode(&w, &res));
            apr_snprintf(name, sizeof(name), "res-04-members-%u",
                         (unsigned)counts[i]);
            write_file(dir, name, &w);
            dkv_wbuf_free(&w);
        }
        memset(&res, 0, sizeof(res));
        res.op = DKV_MSG_MEMBERS;
        res.status = DKV_ENOTIMPL;
        res.message = "operation 0x04 is not served";
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w, &res));
        write_file(dir, "res-04-notimpl", &w);
        dkv_wbuf_free(&w);
        q = reqs[3];
        q.flags = DKV_PROTO_FLAG_SERIALIZABLE;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w, &q));
        write_file(dir, "req-10-serializable", &w);
        dkv_wbuf_free(&w);
        apr_pool_destroy(pool);
    }
    /* STATS: the request, answers of 0, 14 and 40 metrics; MEMBER_ADD:
     * a request, its OK answer and a refusal. */
    {
        static const size_t counts[] = { 0, 14, 40 };
        apr_pool_t *pool = dkv_test_pool();
        dkv_proto_stat_t st[40];
        dkv_response_t res;
        dkv_request_t q;

        memset(&q, 0, sizeof(q));
        q.op = DKV_MSG_STATS;
        q.id = 5;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w, &q));
        write_file(dir, "req-05-stats", &w);
        dkv_wbuf_free(&w);
        for (i = 0; i < 3; i++) {
            stats_sample(&res, st, counts[i], pool);
            dkv_wbuf_init(&w, 0);
            DKV_ASSERT_OK(dkv_proto_response_encode(&w, &res));
            apr_snprintf(name, sizeof(name), "res-05-stats-%u",
                         (unsigned)counts[i]);
            write_file(dir, name, &w);
            dkv_wbuf_free(&w);
        }
        memset(&q, 0, sizeof(q));
        q.op = DKV_MSG_MEMBER_ADD;
        q.id = 6;
        q.member_id = 4;
        q.member_host = "10.0.0.14";
        q.member_cluster_port = 7814;
        q.member_client_port = 7864;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_request_encode(&w, &q));
        write_file(dir, "req-06-member-add", &w);
        dkv_wbuf_free(&w);
        memset(&res, 0, sizeof(res));
        res.op = DKV_MSG_MEMBER_ADD;
        res.id = 6;
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w, &res));
        write_file(dir, "res-06-member-add", &w);
        dkv_wbuf_free(&w);
        res.status = DKV_EUNAUTHORIZED;
        res.message = "MEMBER_ADD needs the node admin connection "
                      "(loopback, from the store's manager)";
        dkv_wbuf_init(&w, 0);
        DKV_ASSERT_OK(dkv_proto_response_encode(&w, &res));
        write_file(dir, "res-06-unauthorized", &w);
        dkv_wbuf_free(&w);
        apr_pool_destroy(pool);
    }
}

/* ------------------------------------------------------------- register */

void
test_proto_register(void)
{
    CU_pSuite s = dkv_test_add_suite("proto", NULL, NULL);

    DKV_TEST_ADD(s, frame_parse_incomplete_and_bounds);
    DKV_TEST_ADD(s, wire_layout_matches_spec);
    DKV_TEST_ADD(s, requests_round_trip);
    DKV_TEST_ADD(s, requests_decoded_fields);
    DKV_TEST_ADD(s, requests_encode_validates);
    DKV_TEST_ADD(s, malformed_requests);
    DKV_TEST_ADD(s, clause_depth_and_count);
    DKV_TEST_ADD(s, responses_round_trip);
    DKV_TEST_ADD(s, responses_malformed);
    DKV_TEST_ADD(s, events_round_trip);
    DKV_TEST_ADD(s, responses_carry_results_on_failure);
    DKV_TEST_ADD(s, events_snapshot_done);
    DKV_TEST_ADD(s, status_mapping);
    DKV_TEST_ADD(s, wbuf_limit_and_consume);
    DKV_TEST_ADD(s, members_round_trip);
    DKV_TEST_ADD(s, members_malformed);
    DKV_TEST_ADD(s, stats_round_trip);
    DKV_TEST_ADD(s, stats_malformed);
    DKV_TEST_ADD(s, member_add_round_trip);
    DKV_TEST_ADD(s, member_add_malformed);
    DKV_TEST_ADD(s, request_flags);
    DKV_TEST_ADD(s, write_corpus);
}
