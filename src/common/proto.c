/*
 * proto.c -- the client protocol's codec (docs/protocol.md): frame
 * parsing, the output buffer, and the encoders and decoders of requests,
 * responses, watch events and PROTOCOL_ERROR frames.
 *
 * Decoding goes through a bounds-checked reader (rd_t) whose error is
 * sticky: the first field that runs past the body or breaks a limit is
 * recorded, every later read returns zero, and the decoder reports that
 * first failure once at the end.  Counts are checked against what the
 * rest of the body could hold before anything is allocated, and the clause
 * tree's recursion is bounded by DKV_PROTO_MAX_DEPTH.
 *
 * Encoding appends to a dkv_wbuf_t through an encoder (enc_t) that checks
 * the same limits, so a buggy sender cannot emit a frame its peer would
 * reject as malformed; a frame that fails is rolled back whole.
 */
#include <string.h>

#include <apr_errno.h>
#include <apr_strings.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/proto.h"
#include "common/status.h"

/* Fewest bytes each repeated element takes on the wire: a count is
 * checked against (remaining bytes / this) before anything is
 * allocated. */
#define MIN_KEY 3           /* u16 n, n >= 1 */
#define MIN_KV 7            /* key, bytes */
#define MIN_OP 5            /* u8 type, key, bool has_opts */
#define MIN_COMPARE 11      /* key, u64 */
#define MIN_RESULT 19       /* status, u8, 2 x u64 */
#define MIN_ITEM 76         /* status, key, bool, 8 x 8, 2 ostr, u16 */
#define MIN_LABEL 5         /* str, str, bool */
#define MIN_ORDER 3         /* str, bool */
#define MIN_SELECT 2        /* str */
#define MIN_CLAUSE 3        /* u8 type, u16 nchildren */
#define MIN_EVENT 22        /* u8, bool, key, 2 x u64, status */
#define MIN_MEMBER 10       /* u32, u8, str (n >= 1), u16 */
#define MIN_STAT 11         /* str (n >= 1), u64 */

/* Longest text a u16 length can carry (0xFFFF is "absent" in an ostr). */
#define MAX_STR 0xFFFFu
#define MAX_OSTR 0xFFFEu
#define OSTR_ABSENT 0xFFFFu
#define WIRE_OTHER 0xFFFFu

/* ------------------------------------------------------------ op names */

static const char *
op_name(unsigned op)
{
    switch (op & 0x7F) {
    case DKV_MSG_HELLO: return "HELLO";
    case DKV_MSG_PING: return "PING";
    case DKV_MSG_REVISION: return "REVISION";
    case DKV_MSG_MEMBERS: return "MEMBERS";
    case DKV_MSG_STATS: return "STATS";
    case DKV_MSG_MEMBER_ADD: return "MEMBER_ADD";
    case DKV_MSG_GET: return "GET";
    case DKV_MSG_PUT: return "PUT";
    case DKV_MSG_DELETE: return "DELETE";
    case DKV_MSG_EXPIRE: return "EXPIRE";
    case DKV_MSG_REFRESH: return "REFRESH";
    case DKV_MSG_GET_MANY: return "GET_MANY";
    case DKV_MSG_PUT_MANY: return "PUT_MANY";
    case DKV_MSG_DELETE_MANY: return "DELETE_MANY";
    case DKV_MSG_BATCH: return "BATCH";
    case DKV_MSG_CLEAR: return "CLEAR";
    case DKV_MSG_SCAN: return "SCAN";
    case DKV_MSG_COUNT: return "COUNT";
    case DKV_MSG_COUNTER_ADD: return "COUNTER_ADD";
    case DKV_MSG_COUNTER_GET: return "COUNTER_GET";
    case DKV_MSG_COUNTER_SET: return "COUNTER_SET";
    case DKV_MSG_LEASE_GRANT: return "LEASE_GRANT";
    case DKV_MSG_LEASE_KEEPALIVE: return "LEASE_KEEPALIVE";
    case DKV_MSG_LEASE_REVOKE: return "LEASE_REVOKE";
    case DKV_MSG_LEASE_INFO: return "LEASE_INFO";
    case DKV_MSG_LOCK_ACQUIRE: return "LOCK_ACQUIRE";
    case DKV_MSG_LOCK_RELEASE: return "LOCK_RELEASE";
    case DKV_MSG_TXN_COMMIT: return "TXN_COMMIT";
    case DKV_MSG_SEARCH: return "SEARCH";
    case DKV_MSG_WATCH: return "WATCH";
    case DKV_MSG_WATCH_CANCEL: return "WATCH_CANCEL";
    case DKV_MSG_EVENT: return "EVENT";
    case DKV_MSG_PROTOCOL_ERROR: return "PROTOCOL_ERROR";
    default: return "unknown op";
    }
}

/* 1 when OP (without the response bit) is a request op of version 1. */
static int
is_request_op(unsigned op)
{
    switch (op) {
    case DKV_MSG_HELLO: case DKV_MSG_PING: case DKV_MSG_REVISION:
    case DKV_MSG_MEMBERS: case DKV_MSG_STATS: case DKV_MSG_MEMBER_ADD:
    case DKV_MSG_GET: case DKV_MSG_PUT: case DKV_MSG_DELETE:
    case DKV_MSG_EXPIRE: case DKV_MSG_REFRESH: case DKV_MSG_GET_MANY:
    case DKV_MSG_PUT_MANY: case DKV_MSG_DELETE_MANY: case DKV_MSG_BATCH:
    case DKV_MSG_CLEAR: case DKV_MSG_SCAN: case DKV_MSG_COUNT:
    case DKV_MSG_COUNTER_ADD: case DKV_MSG_COUNTER_GET:
    case DKV_MSG_COUNTER_SET: case DKV_MSG_LEASE_GRANT:
    case DKV_MSG_LEASE_KEEPALIVE: case DKV_MSG_LEASE_REVOKE:
    case DKV_MSG_LEASE_INFO: case DKV_MSG_LOCK_ACQUIRE:
    case DKV_MSG_LOCK_RELEASE: case DKV_MSG_TXN_COMMIT:
    case DKV_MSG_SEARCH: case DKV_MSG_WATCH: case DKV_MSG_WATCH_CANCEL:
        return 1;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- frames */

dkv_status_t
dkv_proto_frame_parse(dkv_frame_t *frame, size_t *size, const void *buf,
                      size_t len, uint32_t max_frame)
{
    const unsigned char *p = buf;
    uint32_t flen;

    *size = 0;
    if (len < 4) {
        return APR_INCOMPLETE;
    }
    if (max_frame == 0) {
        max_frame = DKV_PROTO_DEFAULT_FRAME;
    }
    flen = dkv_get_be32(p);
    if (flen < DKV_PROTO_HEADER - 4) {
        return dkv_error_set(DKV_EINVAL, "frame length %lu is below %d",
                             (unsigned long)flen, DKV_PROTO_HEADER - 4);
    }
    /* (The sum wraps only where size_t is 32 bits.) */
    if (flen > max_frame || (size_t)flen + 4 < 4) {
        return dkv_error_set(DKV_ETOOLARGE,
                             "frame length %lu is above the limit %lu",
                             (unsigned long)flen, (unsigned long)max_frame);
    }
    *size = (size_t)flen + 4;
    if (len < *size) {
        return APR_INCOMPLETE;
    }
    frame->op = p[4];
    frame->flags = p[5];
    frame->id = dkv_get_be64(p + 8);
    frame->body = p + DKV_PROTO_HEADER;
    frame->body_len = *size - DKV_PROTO_HEADER;
    return DKV_OK;
}

/* ---------------------------------------------------------------- wbuf */

void
dkv_wbuf_init(dkv_wbuf_t *buf, size_t limit)
{
    memset(buf, 0, sizeof(*buf));
    buf->limit = limit;
}

void
dkv_wbuf_free(dkv_wbuf_t *buf)
{
    if (buf == NULL) {
        return;
    }
    dkv_free(buf->data);
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void
dkv_wbuf_consume(dkv_wbuf_t *buf, size_t n)
{
    if (n >= buf->len) {
        buf->len = 0;
        return;
    }
    memmove(buf->data, buf->data + n, buf->len - n);
    buf->len -= n;
}

/* Makes room for N more bytes; 0 (and FAILED set) when it cannot. */
static int
wbuf_reserve(dkv_wbuf_t *b, size_t n)
{
    size_t need, cap;
    unsigned char *p;

    if (b->failed != DKV_OK) {
        return 0;
    }
    if (n > SIZE_MAX - b->len
        || (b->limit != 0 && b->len + n > b->limit)) {
        b->failed = DKV_ETOOLARGE;
        return 0;
    }
    need = b->len + n;
    if (need <= b->cap) {
        return 1;
    }
    cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    if (b->limit != 0 && cap > b->limit) {
        cap = b->limit;
    }
    p = dkv_realloc(b->data, cap);
    if (p == NULL) {
        b->failed = APR_ENOMEM;
        return 0;
    }
    b->data = p;
    b->cap = cap;
    return 1;
}

void
dkv_wbuf_append(dkv_wbuf_t *buf, const void *data, size_t n)
{
    if (n == 0 || !wbuf_reserve(buf, n)) {
        return;
    }
    memcpy(buf->data + buf->len, data, n);
    buf->len += n;
}

static void
w_u8(dkv_wbuf_t *b, unsigned v)
{
    unsigned char c = (unsigned char)v;

    dkv_wbuf_append(b, &c, 1);
}

static void
w_u16(dkv_wbuf_t *b, unsigned v)
{
    unsigned char c[2];

    c[0] = (unsigned char)(v >> 8);
    c[1] = (unsigned char)v;
    dkv_wbuf_append(b, c, 2);
}

static void
w_u32(dkv_wbuf_t *b, uint32_t v)
{
    unsigned char c[4];

    dkv_put_be32(c, v);
    dkv_wbuf_append(b, c, 4);
}

static void
w_u64(dkv_wbuf_t *b, uint64_t v)
{
    unsigned char c[8];

    dkv_put_be64(c, v);
    dkv_wbuf_append(b, c, 8);
}

/* Two's complement, not codec.h's order-preserving form. */
static void
w_i64(dkv_wbuf_t *b, int64_t v)
{
    w_u64(b, (uint64_t)v);
}

/* -------------------------------------------------------------- status */

uint16_t
dkv_proto_status_to_wire(dkv_status_t status)
{
    if (status == DKV_OK) {
        return 0;
    }
    if (DKV_STATUS_IS_DKV(status)) {
        return (uint16_t)(status - DKV_START_ERROR);
    }
    return WIRE_OTHER;
}

dkv_status_t
dkv_proto_status_from_wire(uint16_t code)
{
    if (code == 0) {
        return DKV_OK;
    }
    if (code < DKV_END_ERROR - DKV_START_ERROR) {
        return DKV_START_ERROR + code;
    }
    return DKV_EUNAVAILABLE;
}

/* -------------------------------------------------------------- reader */

typedef struct rd {
    const unsigned char *p;
    size_t len;
    size_t pos;
    apr_pool_t *pool;
    const char *field;      /* the first failure: which field */
    const char *why;        /* and what was wrong (NULL: no failure) */
    size_t at;              /* where the field started */
    size_t nclauses;
} rd_t;

static void
rd_init(rd_t *r, const dkv_frame_t *frame, apr_pool_t *pool)
{
    memset(r, 0, sizeof(*r));
    r->p = frame->body;
    r->len = frame->body_len;
    r->pool = pool;
}

static void
rd_fail(rd_t *r, const char *field, const char *why, size_t at)
{
    if (r->why == NULL) {
        r->field = field;
        r->why = why;
        r->at = at;
    }
}

/* The next N bytes, or NULL (failure recorded) when they run past the
 * end or an earlier read failed. */
static const unsigned char *
rd_take(rd_t *r, size_t n, const char *field)
{
    const unsigned char *q;

    if (r->why != NULL) {
        return NULL;
    }
    if (n > r->len - r->pos) {
        rd_fail(r, field, "runs past the end", r->pos);
        return NULL;
    }
    q = r->p + r->pos;
    r->pos += n;
    return q;
}

static unsigned
rd_u8(rd_t *r, const char *field)
{
    const unsigned char *q = rd_take(r, 1, field);

    return q ? q[0] : 0;
}

static unsigned
rd_u16(rd_t *r, const char *field)
{
    const unsigned char *q = rd_take(r, 2, field);

    return q ? ((unsigned)q[0] << 8) | q[1] : 0;
}

static uint32_t
rd_u32(rd_t *r, const char *field)
{
    const unsigned char *q = rd_take(r, 4, field);

    return q ? dkv_get_be32(q) : 0;
}

static uint64_t
rd_u64(rd_t *r, const char *field)
{
    const unsigned char *q = rd_take(r, 8, field);

    return q ? dkv_get_be64(q) : 0;
}

static int64_t
rd_i64(rd_t *r, const char *field)
{
    return (int64_t)rd_u64(r, field);
}

static int
rd_bool(rd_t *r, const char *field)
{
    size_t at = r->pos;
    unsigned v = rd_u8(r, field);

    if (v > 1) {
        rd_fail(r, field, "is not a bool (0 or 1)", at);
        return 0;
    }
    return (int)v;
}

/* A u8 of flags with no bits outside ALLOWED. */
static unsigned
rd_flags(rd_t *r, const char *field, unsigned allowed)
{
    size_t at = r->pos;
    unsigned v = rd_u8(r, field);

    if (v & ~allowed) {
        rd_fail(r, field, "has unknown bits set", at);
        return 0;
    }
    return v;
}

static dkv_status_t
rd_status(rd_t *r, const char *field)
{
    return dkv_proto_status_from_wire((uint16_t)rd_u16(r, field));
}

/* A u16-length blob of MIN..MAX bytes; *PTR points into the body (NULL
 * when empty). */
static void
rd_blob16(rd_t *r, const char *field, const void **ptr, size_t *len,
          size_t min, size_t max)
{
    size_t at = r->pos;
    unsigned n = rd_u16(r, field);
    const unsigned char *q;

    *ptr = NULL;
    *len = 0;
    if (r->why != NULL) {
        return;
    }
    if (n < min) {
        rd_fail(r, field, n ? "is too short" : "is empty", at);
        return;
    }
    if (n > max) {
        rd_fail(r, field, "is too long", at);
        return;
    }
    q = rd_take(r, n, field);
    if (q != NULL && n > 0) {
        *ptr = q;
        *len = n;
    }
}

static void
rd_key(rd_t *r, const char *field, const void **ptr, size_t *len,
       int allow_empty)
{
    rd_blob16(r, field, ptr, len, allow_empty ? 0 : 1, DKV_MAX_KEY);
}

static void
rd_sbytes(rd_t *r, const char *field, const void **ptr, size_t *len)
{
    rd_blob16(r, field, ptr, len, 0, 0xFFFF);
}

/* A u32-length value; *PTR points into the body (never NULL on
 * success, even when empty). */
static void
rd_bytes(rd_t *r, const char *field, const void **ptr, size_t *len)
{
    uint32_t n = rd_u32(r, field);
    const unsigned char *q = rd_take(r, n, field);

    *ptr = q;
    *len = q ? n : 0;
}

/* Text of N bytes at most MAX, copied into the pool with a NUL. */
static const char *
rd_text(rd_t *r, const char *field, unsigned n, size_t max, size_t at)
{
    const unsigned char *q;

    if (r->why != NULL) {
        return NULL;
    }
    if (n > max) {
        rd_fail(r, field, "is too long", at);
        return NULL;
    }
    q = rd_take(r, n, field);
    if (q == NULL) {
        return NULL;
    }
    if (memchr(q, 0, n) != NULL) {
        rd_fail(r, field, "contains a NUL byte", at);
        return NULL;
    }
    return apr_pstrmemdup(r->pool, (const char *)q, n);
}

static const char *
rd_str(rd_t *r, const char *field, size_t max)
{
    size_t at = r->pos;
    unsigned n = rd_u16(r, field);

    return rd_text(r, field, n, max, at);
}

/* Optional text: NULL when absent. */
static const char *
rd_ostr(rd_t *r, const char *field, size_t max)
{
    size_t at = r->pos;
    unsigned n = rd_u16(r, field);

    if (n == OSTR_ABSENT) {
        return NULL;
    }
    return rd_text(r, field, n, max, at);
}

/* Checks count N (read at AT) against MAX and against what the rest of
 * the body could hold at MINSIZE bytes per element. */
static size_t
rd_check_count(rd_t *r, const char *field, uint32_t n, size_t max,
               size_t minsize, size_t at)
{
    if (r->why != NULL) {
        return 0;
    }
    if (n > max) {
        rd_fail(r, field, "is above the protocol's limit", at);
        return 0;
    }
    if ((size_t)n > (r->len - r->pos) / minsize) {
        rd_fail(r, field, "is more than the frame holds", at);
        return 0;
    }
    return n;
}

static size_t
rd_count32(rd_t *r, const char *field, size_t max, size_t minsize)
{
    size_t at = r->pos;
    uint32_t n = rd_u32(r, field);

    return rd_check_count(r, field, n, max, minsize, at);
}

static size_t
rd_count16(rd_t *r, const char *field, size_t max, size_t minsize)
{
    size_t at = r->pos;
    uint32_t n = rd_u16(r, field);

    return rd_check_count(r, field, n, max, minsize, at);
}

/* N zeroed elements of SIZE bytes in the pool (N already bounded by the
 * body's size); NULL when N is 0. */
static void *
rd_alloc(rd_t *r, size_t n, size_t size)
{
    return n ? apr_pcalloc(r->pool, n * size) : NULL;
}

/* Reports the reader's failure, if any, as DKV_EINVAL. */
static dkv_status_t
rd_finish(rd_t *r, const char *kind, unsigned op)
{
    if (r->why == NULL && r->pos != r->len) {
        rd_fail(r, "body", "has trailing bytes", r->pos);
    }
    if (r->why == NULL) {
        return DKV_OK;
    }
    return dkv_error_set(DKV_EINVAL, "malformed %s: %s %s: %s (byte %lu "
                         "of %lu)", kind, op_name(op), r->field, r->why,
                         (unsigned long)r->at, (unsigned long)r->len);
}

/* ------------------------------------------------------ decode: shared */

static void
rd_labels(rd_t *r, const dkv_label_t **out, size_t *nout)
{
    size_t i, n = rd_count16(r, "nlabels", DKV_MAX_LABELS, MIN_LABEL);
    dkv_label_t *l = rd_alloc(r, n, sizeof(*l));

    for (i = 0; i < n && r->why == NULL; i++) {
        l[i].name = rd_str(r, "label name", DKV_MAX_LABEL_NAME);
        l[i].value = rd_str(r, "label value", MAX_STR);
        l[i].indexed = rd_bool(r, "label indexed");
    }
    *out = l;
    *nout = n;
}

static void
rd_put_opts(rd_t *r, dkv_put_opts_t *o)
{
    o->if_absent = (int)rd_flags(r, "put_opts flags", 0x01);
    o->ttl_ms = rd_i64(r, "ttl_ms");
    o->lease = rd_u64(r, "lease");
    o->if_version = rd_u64(r, "if_version");
    o->lock = rd_u64(r, "lock");
    o->entity = rd_ostr(r, "entity", DKV_MAX_ENTITY);
    o->content_type = rd_ostr(r, "content_type", DKV_MAX_CONTENT_TYPE);
    rd_labels(r, &o->labels, &o->nlabels);
}

static void
rd_get_opts(rd_t *r, dkv_get_opts_t *o)
{
    o->meta_only = rd_bool(r, "meta_only");
    o->lock = rd_u64(r, "lock");
}

static void
rd_delete_opts(rd_t *r, dkv_delete_opts_t *o)
{
    o->if_version = rd_u64(r, "if_version");
    o->lock = rd_u64(r, "lock");
}

static void
rd_counter_opts(rd_t *r, dkv_counter_opts_t *o)
{
    unsigned f = rd_flags(r, "counter_opts flags", 0x03);

    o->has_max = (f & 0x01) != 0;
    o->has_min = (f & 0x02) != 0;
    o->max = rd_i64(r, "max");
    o->min = rd_i64(r, "min");
    o->ttl_ms = rd_i64(r, "ttl_ms");
    o->lock = rd_u64(r, "lock");
}

static void
rd_range(rd_t *r, dkv_range_t *g)
{
    size_t at = r->pos;
    unsigned kind = rd_u8(r, "range kind");

    memset(g, 0, sizeof(*g));
    switch (kind) {
    case 0:
        break;
    case 1:
        rd_blob16(r, "range prefix", &g->prefix, &g->prefix_len, 1,
                  0xFFFF);
        break;
    case 2:
        rd_sbytes(r, "range start", &g->start, &g->start_len);
        rd_sbytes(r, "range end", &g->end, &g->end_len);
        break;
    default:
        rd_fail(r, "range kind", "is unknown", at);
    }
}

static void
rd_ops(rd_t *r, dkv_op_t **out, size_t *nout, size_t max)
{
    size_t i, n = rd_count32(r, "op count", max, MIN_OP);
    dkv_op_t *ops = rd_alloc(r, n, sizeof(*ops));

    for (i = 0; i < n && r->why == NULL; i++) {
        size_t at = r->pos;
        unsigned type = rd_u8(r, "op type");

        if (r->why == NULL && type != DKV_OP_PUT && type != DKV_OP_DELETE) {
            rd_fail(r, "op type", "is unknown", at);
            break;
        }
        ops[i].type = (dkv_op_type_t)type;
        rd_key(r, "op key", &ops[i].key, &ops[i].key_len, 0);
        if (type == DKV_OP_PUT) {
            rd_bytes(r, "op value", &ops[i].value, &ops[i].value_len);
            if (rd_bool(r, "op has_opts")) {
                dkv_put_opts_t *o = apr_pcalloc(r->pool, sizeof(*o));

                rd_put_opts(r, o);
                ops[i].put = o;
            }
        } else {
            if (rd_bool(r, "op has_opts")) {
                dkv_delete_opts_t *o = apr_pcalloc(r->pool, sizeof(*o));

                rd_delete_opts(r, o);
                ops[i].del = o;
            }
        }
    }
    *out = ops;
    *nout = n;
}

static void
rd_keys(rd_t *r, dkv_key_t **out, size_t *nout)
{
    size_t i, n = rd_count32(r, "key count", DKV_PROTO_MAX_BULK, MIN_KEY);
    dkv_key_t *keys = rd_alloc(r, n, sizeof(*keys));

    for (i = 0; i < n && r->why == NULL; i++) {
        rd_key(r, "key", &keys[i].key, &keys[i].key_len, 0);
    }
    *out = keys;
    *nout = n;
}

/* A clause at nesting DEPTH (the root is 1). */
static void
rd_clause(rd_t *r, dkv_clause_t *c, int depth)
{
    size_t at = r->pos;
    unsigned type;

    if (r->why != NULL) {
        return;
    }
    if (depth > DKV_PROTO_MAX_DEPTH) {
        rd_fail(r, "clause", "is nested too deep", at);
        return;
    }
    if (++r->nclauses > DKV_PROTO_MAX_CLAUSES) {
        rd_fail(r, "clause", "is one too many in the query", at);
        return;
    }
    type = rd_u8(r, "clause type");
    c->type = (dkv_clause_type_t)type;
    switch (type) {
    case DKV_CLAUSE_EQ:
    case DKV_CLAUSE_PREFIX:
        c->label = rd_str(r, "clause label", DKV_MAX_LABEL_NAME);
        c->value = rd_str(r, "clause value", MAX_STR);
        break;
    case DKV_CLAUSE_RANGE:
        c->label = rd_str(r, "clause label", DKV_MAX_LABEL_NAME);
        c->low = rd_ostr(r, "clause low", MAX_OSTR);
        c->high = rd_ostr(r, "clause high", MAX_OSTR);
        break;
    case DKV_CLAUSE_AND:
    case DKV_CLAUSE_OR:
    case DKV_CLAUSE_NOT: {
        size_t i, n = rd_count16(r, "clause nchildren",
                                 DKV_PROTO_MAX_CLAUSES, MIN_CLAUSE);
        dkv_clause_t *k = rd_alloc(r, n, sizeof(*k));

        for (i = 0; i < n && r->why == NULL; i++) {
            rd_clause(r, &k[i], depth + 1);
        }
        c->children = k;
        c->nchildren = n;
        break;
    }
    default:
        if (r->why == NULL) {
            rd_fail(r, "clause type", "is unknown", at);
        }
    }
}

static void
rd_query(rd_t *r, dkv_query_t *q)
{
    size_t i, n;

    q->entity = rd_str(r, "query entity", DKV_MAX_ENTITY);
    if (rd_bool(r, "query has_where")) {
        dkv_clause_t *c = apr_pcalloc(r->pool, sizeof(*c));

        rd_clause(r, c, 1);
        q->where = c;
    }
    n = rd_count16(r, "query norder", DKV_PROTO_MAX_ORDER, MIN_ORDER);
    if (n) {
        dkv_order_t *o = rd_alloc(r, n, sizeof(*o));

        for (i = 0; i < n && r->why == NULL; i++) {
            o[i].label = rd_str(r, "order label", DKV_MAX_LABEL_NAME);
            o[i].descending = rd_bool(r, "order descending");
        }
        q->order = o;
        q->norder = n;
    }
    q->limit = rd_u32(r, "query limit");
    n = rd_count16(r, "query nselect", DKV_PROTO_MAX_SELECT, MIN_SELECT);
    if (n) {
        const char **s = rd_alloc(r, n, sizeof(*s));

        for (i = 0; i < n && r->why == NULL; i++) {
            s[i] = rd_str(r, "select label", DKV_MAX_LABEL_NAME);
        }
        q->select = s;
        q->nselect = n;
    }
    q->keys_only = rd_bool(r, "query keys_only");
}

/* ----------------------------------------------------- decode: requests */

/* MEMBER_ADD: u32 id (nonzero), str host (1..255), u16 cluster port
 * (nonzero), u16 client port. */
static void
rd_member_add(rd_t *r, dkv_request_t *req)
{
    size_t at = r->pos;

    req->member_id = rd_u32(r, "member id");
    if (r->why == NULL && req->member_id == 0) {
        rd_fail(r, "member id", "is 0", at);
    }
    at = r->pos;
    req->member_host = rd_str(r, "member host", DKV_PROTO_MAX_HOST);
    if (r->why == NULL && req->member_host[0] == '\0') {
        rd_fail(r, "member host", "is empty", at);
    }
    at = r->pos;
    req->member_cluster_port = (uint16_t)rd_u16(r, "member cluster port");
    if (r->why == NULL && req->member_cluster_port == 0) {
        rd_fail(r, "member cluster port", "is 0", at);
    }
    req->member_client_port = (uint16_t)rd_u16(r, "member client port");
}

dkv_status_t
dkv_proto_request_decode(dkv_request_t *req, const dkv_frame_t *frame,
                         apr_pool_t *pool)
{
    rd_t r;
    size_t i;

    memset(req, 0, sizeof(*req));
    req->op = frame->op;
    req->id = frame->id;
    req->flags = (uint8_t)(frame->flags & DKV_PROTO_REQUEST_FLAGS);
    if (!is_request_op(frame->op)) {
        return dkv_error_set(DKV_ENOTIMPL, "op 0x%02x is not a request",
                             (unsigned)frame->op);
    }
    rd_init(&r, frame, pool);
    switch (frame->op) {
    case DKV_MSG_HELLO:
        req->magic = rd_u32(&r, "magic");
        req->min_version = (uint16_t)rd_u16(&r, "min_version");
        req->max_version = (uint16_t)rd_u16(&r, "max_version");
        req->store = rd_str(&r, "store", MAX_STR);
        rd_sbytes(&r, "token", &req->token, &req->token_len);
        req->client = rd_str(&r, "client", DKV_PROTO_MAX_CLIENT_NAME);
        break;
    case DKV_MSG_PING:
    case DKV_MSG_REVISION:
    case DKV_MSG_MEMBERS:
    case DKV_MSG_STATS:
        break;
    case DKV_MSG_MEMBER_ADD:
        rd_member_add(&r, req);
        break;
    case DKV_MSG_GET:
        rd_key(&r, "key", &req->key, &req->key_len, 0);
        rd_get_opts(&r, &req->get);
        break;
    case DKV_MSG_PUT:
        rd_key(&r, "key", &req->key, &req->key_len, 0);
        rd_bytes(&r, "value", &req->value, &req->value_len);
        rd_put_opts(&r, &req->put);
        break;
    case DKV_MSG_DELETE:
        rd_key(&r, "key", &req->key, &req->key_len, 0);
        rd_delete_opts(&r, &req->del);
        break;
    case DKV_MSG_EXPIRE:
        rd_key(&r, "key", &req->key, &req->key_len, 0);
        req->num = rd_i64(&r, "ttl_ms");
        req->u64 = rd_u64(&r, "lock");
        break;
    case DKV_MSG_REFRESH:
        rd_key(&r, "key", &req->key, &req->key_len, 0);
        req->u64 = rd_u64(&r, "lock");
        break;
    case DKV_MSG_GET_MANY:
        rd_keys(&r, &req->keys, &req->n);
        rd_get_opts(&r, &req->get);
        break;
    case DKV_MSG_PUT_MANY:
        req->n = rd_count32(&r, "kv count", DKV_PROTO_MAX_BULK, MIN_KV);
        req->kvs = rd_alloc(&r, req->n, sizeof(*req->kvs));
        for (i = 0; i < req->n && r.why == NULL; i++) {
            rd_key(&r, "key", &req->kvs[i].key, &req->kvs[i].key_len, 0);
            rd_bytes(&r, "value", &req->kvs[i].value,
                     &req->kvs[i].value_len);
        }
        rd_put_opts(&r, &req->put);
        break;
    case DKV_MSG_DELETE_MANY:
        rd_keys(&r, &req->keys, &req->n);
        rd_delete_opts(&r, &req->del);
        break;
    case DKV_MSG_BATCH:
        rd_ops(&r, &req->ops, &req->n, DKV_PROTO_MAX_BULK);
        break;
    case DKV_MSG_CLEAR:
    case DKV_MSG_COUNT:
        rd_range(&r, &req->range);
        break;
    case DKV_MSG_SCAN:
        rd_range(&r, &req->range);
        rd_sbytes(&r, "after", &req->scan.after, &req->scan.after_len);
        req->scan.limit = rd_u32(&r, "limit");
        req->scan.keys_only = rd_bool(&r, "keys_only");
        break;
    case DKV_MSG_COUNTER_ADD:
    case DKV_MSG_COUNTER_SET:
        rd_key(&r, "key", &req->key, &req->key_len, 0);
        req->num = rd_i64(&r, frame->op == DKV_MSG_COUNTER_ADD ? "delta"
                                                               : "value");
        rd_counter_opts(&r, &req->counter);
        break;
    case DKV_MSG_COUNTER_GET:
        rd_key(&r, "key", &req->key, &req->key_len, 0);
        break;
    case DKV_MSG_LEASE_GRANT:
        req->num = rd_i64(&r, "ttl_ms");
        break;
    case DKV_MSG_LEASE_KEEPALIVE:
    case DKV_MSG_LEASE_REVOKE:
    case DKV_MSG_LEASE_INFO:
        req->u64 = rd_u64(&r, "lease");
        break;
    case DKV_MSG_LOCK_ACQUIRE:
        rd_key(&r, "key", &req->key, &req->key_len, 0);
        req->u64 = rd_u64(&r, "lease");
        break;
    case DKV_MSG_LOCK_RELEASE:
        rd_key(&r, "key", &req->key, &req->key_len, 0);
        req->u64 = rd_u64(&r, "token");
        break;
    case DKV_MSG_TXN_COMMIT:
        req->ncompares = rd_count32(&r, "compare count", DKV_MAX_TXN_OPS,
                                    MIN_COMPARE);
        req->compares = rd_alloc(&r, req->ncompares,
                                 sizeof(*req->compares));
        for (i = 0; i < req->ncompares && r.why == NULL; i++) {
            rd_key(&r, "compare key", &req->compares[i].key,
                   &req->compares[i].key_len, 0);
            req->compares[i].mod_revision = rd_u64(&r, "mod_revision");
        }
        rd_ops(&r, &req->ops, &req->n, DKV_MAX_TXN_OPS);
        break;
    case DKV_MSG_SEARCH:
        rd_query(&r, &req->query);
        req->search.page_size = rd_u32(&r, "page_size");
        rd_sbytes(&r, "cursor", &req->search.cursor,
                  &req->search.cursor_len);
        break;
    case DKV_MSG_WATCH: {
        size_t at;

        rd_key(&r, "key", &req->key, &req->key_len, 1);
        at = r.pos;
        req->watch_flags = rd_flags(&r, "watch flags",
                                    DKV_PROTO_WATCH_PREFIX
                                    | DKV_PROTO_WATCH_SNAPSHOT);
        if (r.why == NULL && req->key_len == 0
            && !(req->watch_flags & DKV_PROTO_WATCH_PREFIX)) {
            rd_fail(&r, "key", "is empty without the prefix flag", at);
        }
        req->u64 = rd_u64(&r, "start_revision");
        break;
    }
    case DKV_MSG_WATCH_CANCEL:
        req->u64 = rd_u64(&r, "watch id");
        break;
    default:
        break;
    }
    return rd_finish(&r, "request", frame->op);
}

/* ---------------------------------------------------- decode: responses */

static void
rd_item(rd_t *r, dkv_item_t *it)
{
    it->status = rd_status(r, "item status");
    rd_key(r, "item key", &it->key, &it->key_len, 0);
    if (rd_bool(r, "item has_value")) {
        const void *v;
        size_t n;

        rd_bytes(r, "item value", &v, &n);
        if (r->why == NULL) {
            /* Copied, so that a NUL follows it as dkv_item_t promises. */
            char *c = apr_palloc(r->pool, n + 1);

            memcpy(c, v, n);
            c[n] = '\0';
            it->value = c;
            it->value_len = n;
        }
    }
    it->version = rd_u64(r, "item version");
    it->create_revision = rd_u64(r, "item create_revision");
    it->mod_revision = rd_u64(r, "item mod_revision");
    it->revision = rd_u64(r, "item revision");
    it->created_at = rd_i64(r, "item created_at");
    it->expires_at = rd_i64(r, "item expires_at");
    it->ttl_ms = rd_i64(r, "item ttl_ms");
    it->lease = rd_u64(r, "item lease");
    it->entity = rd_ostr(r, "item entity", DKV_MAX_ENTITY);
    it->content_type = rd_ostr(r, "item content_type",
                               DKV_MAX_CONTENT_TYPE);
    rd_labels(r, &it->labels, &it->nlabels);
}

static void
rd_result(rd_t *r, dkv_result_t *res)
{
    unsigned f;

    res->status = rd_status(r, "result status");
    f = rd_flags(r, "result flags", 0x03);
    res->mutated = (f & 0x01) != 0;
    res->is_update = (f & 0x02) != 0;
    res->version = rd_u64(r, "result version");
    res->revision = rd_u64(r, "result revision");
}

static void
rd_results(rd_t *r, dkv_result_t **out, size_t *nout)
{
    size_t i, n = rd_count32(r, "result count", DKV_PROTO_MAX_BULK,
                             MIN_RESULT);
    dkv_result_t *res = rd_alloc(r, n, sizeof(*res));

    for (i = 0; i < n && r->why == NULL; i++) {
        rd_result(r, &res[i]);
    }
    *out = res;
    *nout = n;
}

static void
rd_page(rd_t *r, dkv_page_t *pg)
{
    size_t i, n = rd_count32(r, "page count", DKV_PROTO_MAX_PAGE,
                             MIN_ITEM);

    pg->items = rd_alloc(r, n, sizeof(*pg->items));
    pg->count = n;
    for (i = 0; i < n && r->why == NULL; i++) {
        rd_item(r, &pg->items[i]);
    }
    pg->more = rd_bool(r, "page more");
    rd_sbytes(r, "page next", &pg->next, &pg->next_len);
    pg->revision = rd_u64(r, "page revision");
}

/* MEMBERS: u32 leader, u32 count, count x member. */
static void
rd_members(rd_t *r, dkv_response_t *res)
{
    size_t i, n;
    dkv_proto_member_t *m;

    res->leader = rd_u32(r, "leader");
    n = rd_count32(r, "member count", DKV_PROTO_MAX_MEMBERS, MIN_MEMBER);
    m = rd_alloc(r, n, sizeof(*m));
    for (i = 0; i < n && r->why == NULL; i++) {
        size_t at;

        m[i].id = rd_u32(r, "member id");
        m[i].roles = rd_flags(r, "member roles", DKV_PROTO_MEMBER_ROLES);
        at = r->pos;
        m[i].host = rd_str(r, "member host", DKV_PROTO_MAX_HOST);
        if (r->why == NULL && m[i].host[0] == '\0') {
            rd_fail(r, "member host", "is empty", at);
        }
        m[i].port = (uint16_t)rd_u16(r, "member port");
    }
    res->nmembers = n;
    res->members = m;
}

/* 1 when the N bytes of NAME are a valid metric name: [a-z0-9_]. */
static int
stat_name_ok(const char *name, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '_')) {
            return 0;
        }
    }
    return 1;
}

/* STATS: u32 count, count x (str name, u64 value). */
static void
rd_stats(rd_t *r, dkv_response_t *res)
{
    size_t i, n;
    dkv_proto_stat_t *st;

    n = rd_count32(r, "stat count", DKV_PROTO_MAX_STATS, MIN_STAT);
    st = rd_alloc(r, n, sizeof(*st));
    for (i = 0; i < n && r->why == NULL; i++) {
        size_t at = r->pos;

        st[i].name = rd_str(r, "stat name", DKV_PROTO_MAX_STAT_NAME);
        if (r->why == NULL && st[i].name[0] == '\0') {
            rd_fail(r, "stat name", "is empty", at);
        } else if (r->why == NULL
                   && !stat_name_ok(st[i].name, strlen(st[i].name))) {
            rd_fail(r, "stat name", "has a byte outside [a-z0-9_]", at);
        }
        st[i].value = rd_u64(r, "stat value");
    }
    res->nstats = n;
    res->stats = st;
}

/* The OK result fields of op OP; 0 when OP has none known. */
static int
rd_response_fields(rd_t *r, dkv_response_t *res, unsigned op)
{
    size_t i;

    switch (op) {
    case DKV_MSG_HELLO:
        res->version = (uint16_t)rd_u16(r, "version");
        res->store = rd_str(r, "store", MAX_STR);
        res->instance = rd_str(r, "instance", MAX_STR);
        res->max_frame = rd_u32(r, "max_frame");
        res->max_value = rd_u32(r, "max_value");
        res->revision = rd_u64(r, "revision");
        break;
    case DKV_MSG_PING:
        res->revision = rd_u64(r, "revision");
        res->node_time = rd_i64(r, "node_time_ms");
        res->instance = rd_str(r, "instance", MAX_STR);
        break;
    case DKV_MSG_REVISION:
    case DKV_MSG_TXN_COMMIT:
    case DKV_MSG_WATCH:
        res->revision = rd_u64(r, "revision");
        break;
    case DKV_MSG_MEMBERS:
        rd_members(r, res);
        break;
    case DKV_MSG_STATS:
        rd_stats(r, res);
        break;
    case DKV_MSG_GET:
        rd_item(r, &res->item);
        break;
    case DKV_MSG_PUT:
    case DKV_MSG_DELETE:
    case DKV_MSG_EXPIRE:
    case DKV_MSG_REFRESH:
        rd_result(r, &res->result);
        break;
    case DKV_MSG_GET_MANY:
        res->n = rd_count32(r, "item count", DKV_PROTO_MAX_BULK, MIN_ITEM);
        res->items = rd_alloc(r, res->n, sizeof(*res->items));
        for (i = 0; i < res->n && r->why == NULL; i++) {
            rd_item(r, &res->items[i]);
        }
        break;
    case DKV_MSG_PUT_MANY:
    case DKV_MSG_DELETE_MANY:
    case DKV_MSG_BATCH:
        rd_results(r, &res->results, &res->n);
        break;
    case DKV_MSG_CLEAR:
        res->u64 = rd_u64(r, "deleted");
        break;
    case DKV_MSG_COUNT:
        res->u64 = rd_u64(r, "count");
        break;
    case DKV_MSG_SCAN:
    case DKV_MSG_SEARCH:
        rd_page(r, &res->page);
        break;
    case DKV_MSG_COUNTER_ADD:
        res->num1 = rd_i64(r, "previous");
        res->num2 = rd_i64(r, "current");
        break;
    case DKV_MSG_COUNTER_GET:
        res->num1 = rd_i64(r, "value");
        break;
    case DKV_MSG_LEASE_GRANT:
        res->u64 = rd_u64(r, "lease");
        break;
    case DKV_MSG_LEASE_KEEPALIVE:
        res->num1 = rd_i64(r, "remaining_ms");
        break;
    case DKV_MSG_LEASE_REVOKE:
        res->u64 = rd_u64(r, "keys_deleted");
        break;
    case DKV_MSG_LEASE_INFO:
        res->lease_info.id = rd_u64(r, "lease id");
        res->lease_info.ttl_ms = rd_i64(r, "lease ttl_ms");
        res->lease_info.remaining_ms = rd_i64(r, "lease remaining_ms");
        res->lease_info.expires_at = rd_i64(r, "lease expires_at");
        res->lease_info.keys = rd_u64(r, "lease keys");
        res->lease_info.locks = rd_u64(r, "lease locks");
        break;
    case DKV_MSG_LOCK_ACQUIRE:
        res->lock.acquired = rd_bool(r, "lock acquired");
        res->lock.token = rd_u64(r, "lock token");
        res->lock.lease = rd_u64(r, "lock lease");
        break;
    case DKV_MSG_COUNTER_SET:
    case DKV_MSG_LOCK_RELEASE:
    case DKV_MSG_WATCH_CANCEL:
    case DKV_MSG_MEMBER_ADD:
        break;
    default:
        return 0;
    }
    return 1;
}

/* Whether a response of OP with STATUS carries result fields (ops
 * without a presence bool). */
static int
has_fields(unsigned op, dkv_status_t status)
{
    return status == DKV_OK
           || (op == DKV_MSG_LOCK_ACQUIRE && status == DKV_ELOCKED);
}

/* 1 for the ops whose responses carry a presence bool before their item
 * or result, whatever the status. */
static int
has_presence(unsigned op)
{
    return op == DKV_MSG_GET || op == DKV_MSG_PUT || op == DKV_MSG_DELETE
           || op == DKV_MSG_EXPIRE || op == DKV_MSG_REFRESH;
}

dkv_status_t
dkv_proto_response_decode(dkv_response_t *res, const dkv_frame_t *frame,
                          apr_pool_t *pool)
{
    rd_t r;
    unsigned op;

    memset(res, 0, sizeof(*res));
    res->id = frame->id;
    res->message = "";
    if (frame->op == DKV_MSG_PROTOCOL_ERROR) {
        op = DKV_MSG_PROTOCOL_ERROR;
    } else if ((frame->op & DKV_PROTO_RESPONSE)
               && frame->op != (DKV_MSG_PROTOCOL_ERROR
                                | DKV_PROTO_RESPONSE)) {
        op = frame->op & 0x7Fu;
    } else {
        return dkv_error_set(DKV_EINVAL, "malformed response: op 0x%02x "
                             "is not a response", (unsigned)frame->op);
    }
    res->op = (uint8_t)op;
    rd_init(&r, frame, pool);
    res->status = rd_status(&r, "status");
    res->message = rd_str(&r, "message", MAX_STR);
    if (r.why == NULL && has_presence(op)) {
        size_t at = r.pos;

        res->has_result = rd_bool(&r, "present");
        if (r.why == NULL && !res->has_result && res->status == DKV_OK) {
            rd_fail(&r, "present", "is 0 with status OK", at);
        }
        if (res->has_result) {
            (void)rd_response_fields(&r, res, op);
        }
    }
    else if (r.why == NULL && op != DKV_MSG_PROTOCOL_ERROR
             && has_fields(op, res->status)
             && !rd_response_fields(&r, res, op)) {
        rd_fail(&r, "op", "is unknown (with status OK)", 0);
    }
    if (res->message == NULL) {
        res->message = "";
    }
    return rd_finish(&r, "response", frame->op);
}

/* ------------------------------------------------------- decode: events */

dkv_status_t
dkv_proto_events_decode(dkv_event_t **events, size_t *n,
                        const dkv_frame_t *frame, apr_pool_t *pool)
{
    rd_t r;
    size_t i, count;
    dkv_event_t *ev;
    dkv_status_t rv;

    *events = NULL;
    *n = 0;
    if (frame->op != DKV_MSG_EVENT) {
        return dkv_error_set(DKV_EINVAL, "malformed event: op 0x%02x is "
                             "not EVENT", (unsigned)frame->op);
    }
    rd_init(&r, frame, pool);
    {
        size_t at = r.pos;

        count = rd_count32(&r, "event count", (size_t)UINT32_MAX,
                           MIN_EVENT);
        if (r.why == NULL && count == 0
            && !(frame->flags & DKV_PROTO_EVENT_SNAPSHOT_DONE)) {
            rd_fail(&r, "event count", "is 0 without SNAPSHOT_DONE", at);
        }
    }
    ev = rd_alloc(&r, count, sizeof(*ev));
    for (i = 0; i < count && r.why == NULL; i++) {
        size_t at = r.pos;
        unsigned type = rd_u8(&r, "event type");

        if (r.why == NULL && (type < DKV_EVENT_PUT
                              || type > DKV_EVENT_ERROR)) {
            rd_fail(&r, "event type", "is unknown", at);
            break;
        }
        ev[i].type = (dkv_event_type_t)type;
        ev[i].snapshot = rd_bool(&r, "event snapshot");
        if (type == DKV_EVENT_ERROR) {
            rd_blob16(&r, "event key", &ev[i].key, &ev[i].key_len, 0, 0);
        } else {
            rd_key(&r, "event key", &ev[i].key, &ev[i].key_len, 0);
        }
        if (type == DKV_EVENT_PUT) {
            rd_bytes(&r, "event value", &ev[i].value, &ev[i].value_len);
        }
        ev[i].revision = rd_u64(&r, "event revision");
        ev[i].version = rd_u64(&r, "event version");
        at = r.pos;
        {
            unsigned code = rd_u16(&r, "event status");

            if (r.why == NULL && type != DKV_EVENT_ERROR && code != 0) {
                rd_fail(&r, "event status", "is not 0 outside an error",
                        at);
            }
            ev[i].status = dkv_proto_status_from_wire((uint16_t)code);
        }
    }
    rv = rd_finish(&r, "event", frame->op);
    if (rv == DKV_OK) {
        *events = ev;
        *n = count;
    }
    return rv;
}

/* ------------------------------------------------------------- encoder */

typedef struct enc {
    dkv_wbuf_t *out;
    size_t start;           /* where the frame began in OUT */
    const char *field;      /* the first limit broken, or NULL */
    const char *why;
    size_t nclauses;
} enc_t;

static void
e_begin(enc_t *e, dkv_wbuf_t *out, unsigned op, uint64_t id)
{
    memset(e, 0, sizeof(*e));
    e->out = out;
    e->start = out->len;
    w_u32(out, 0);          /* patched by e_end */
    w_u8(out, op);
    w_u8(out, 0);
    w_u16(out, 0);
    w_u64(out, id);
}

static void
e_fail(enc_t *e, const char *field, const char *why)
{
    if (e->why == NULL) {
        e->field = field;
        e->why = why;
    }
}

/* Ends the frame: patches its length, or rolls it back on failure. */
static dkv_status_t
e_end(enc_t *e, const char *kind, unsigned op)
{
    dkv_wbuf_t *out = e->out;
    size_t flen;

    if (e->why != NULL) {
        if (out->len > e->start) {
            out->len = e->start;
        }
        return dkv_error_set(DKV_EINVAL, "cannot encode %s %s: %s %s",
                             kind, op_name(op), e->field, e->why);
    }
    if (out->failed != DKV_OK) {
        if (out->len > e->start) {
            out->len = e->start;
        }
        return dkv_error_set(out->failed, "cannot encode %s %s: the output "
                             "buffer %s", kind, op_name(op),
                             out->failed == DKV_ETOOLARGE
                             ? "is full" : "could not grow");
    }
    flen = out->len - e->start - 4;
    if ((uint64_t)flen > (uint64_t)UINT32_MAX) {
        out->len = e->start;
        return dkv_error_set(DKV_ETOOLARGE, "cannot encode %s %s: the "
                             "frame is %lu bytes", kind, op_name(op),
                             (unsigned long)flen);
    }
    dkv_put_be32(out->data + e->start, (uint32_t)flen);
    return DKV_OK;
}

static void
e_bool(enc_t *e, int v)
{
    w_u8(e->out, v ? 1 : 0);
}

static void
e_status(enc_t *e, dkv_status_t s)
{
    w_u16(e->out, dkv_proto_status_to_wire(s));
}

/* A u16-length blob of MIN..MAX bytes. */
static void
e_blob16(enc_t *e, const char *field, const void *p, size_t n, size_t min,
         size_t max)
{
    if (n < min) {
        e_fail(e, field, n ? "is too short" : "is empty");
        return;
    }
    if (n > max) {
        e_fail(e, field, "is too long");
        return;
    }
    if (p == NULL && n > 0) {
        e_fail(e, field, "is NULL with a length");
        return;
    }
    w_u16(e->out, (unsigned)n);
    dkv_wbuf_append(e->out, p, n);
}

static void
e_key(enc_t *e, const char *field, const void *p, size_t n,
      int allow_empty)
{
    e_blob16(e, field, p, n, allow_empty ? 0 : 1, DKV_MAX_KEY);
}

static void
e_sbytes(enc_t *e, const char *field, const void *p, size_t n)
{
    e_blob16(e, field, p, n, 0, 0xFFFF);
}

static void
e_bytes(enc_t *e, const char *field, const void *p, size_t n)
{
    if ((uint64_t)n > (uint64_t)UINT32_MAX) {
        e_fail(e, field, "is too long");
        return;
    }
    if (p == NULL && n > 0) {
        e_fail(e, field, "is NULL with a length");
        return;
    }
    w_u32(e->out, (uint32_t)n);
    dkv_wbuf_append(e->out, p, n);
}

/* Text of at most MAX bytes; NULL is empty text unless REQUIRED. */
static void
e_str(enc_t *e, const char *field, const char *s, size_t max,
      int required)
{
    size_t n;

    if (s == NULL) {
        if (required) {
            e_fail(e, field, "is NULL");
        }
        s = "";
    }
    n = strlen(s);
    if (n > max) {
        e_fail(e, field, "is too long");
        return;
    }
    w_u16(e->out, (unsigned)n);
    dkv_wbuf_append(e->out, s, n);
}

/* Optional text: NULL is absent. */
static void
e_ostr(enc_t *e, const char *field, const char *s, size_t max)
{
    if (s == NULL) {
        w_u16(e->out, OSTR_ABSENT);
        return;
    }
    e_str(e, field, s, max, 1);
}

/* A count of N elements at most MAX, written as a u32 (or u16). */
static int
e_count(enc_t *e, const char *field, size_t n, const void *arr, size_t max,
        int wide)
{
    if (n > max) {
        e_fail(e, field, "is above the protocol's limit");
        return 0;
    }
    if (n > 0 && arr == NULL) {
        e_fail(e, field, "counts a NULL array");
        return 0;
    }
    if (wide) {
        w_u32(e->out, (uint32_t)n);
    } else {
        w_u16(e->out, (unsigned)n);
    }
    return 1;
}

/* A size_t that travels as a u32. */
static void
e_u32size(enc_t *e, const char *field, size_t v)
{
    if ((uint64_t)v > (uint64_t)UINT32_MAX) {
        e_fail(e, field, "is above 2^32 - 1");
        return;
    }
    w_u32(e->out, (uint32_t)v);
}

/* -------------------------------------------------- encode: structures */

static void
e_labels(enc_t *e, const dkv_label_t *l, size_t n)
{
    size_t i;

    if (!e_count(e, "nlabels", n, l, DKV_MAX_LABELS, 0)) {
        return;
    }
    for (i = 0; i < n; i++) {
        e_str(e, "label name", l[i].name, DKV_MAX_LABEL_NAME, 1);
        e_str(e, "label value", l[i].value, MAX_STR, 1);
        e_bool(e, l[i].indexed);
    }
}

static void
e_put_opts(enc_t *e, const dkv_put_opts_t *o)
{
    static const dkv_put_opts_t none;

    if (o == NULL) {
        o = &none;
    }
    w_u8(e->out, o->if_absent ? 0x01 : 0);
    w_i64(e->out, o->ttl_ms);
    w_u64(e->out, o->lease);
    w_u64(e->out, o->if_version);
    w_u64(e->out, o->lock);
    e_ostr(e, "entity", o->entity, DKV_MAX_ENTITY);
    e_ostr(e, "content_type", o->content_type, DKV_MAX_CONTENT_TYPE);
    e_labels(e, o->labels, o->nlabels);
}

static void
e_get_opts(enc_t *e, const dkv_get_opts_t *o)
{
    e_bool(e, o->meta_only);
    w_u64(e->out, o->lock);
}

static void
e_delete_opts(enc_t *e, const dkv_delete_opts_t *o)
{
    w_u64(e->out, o->if_version);
    w_u64(e->out, o->lock);
}

static void
e_counter_opts(enc_t *e, const dkv_counter_opts_t *o)
{
    w_u8(e->out, (o->has_max ? 0x01u : 0) | (o->has_min ? 0x02u : 0));
    w_i64(e->out, o->max);
    w_i64(e->out, o->min);
    w_i64(e->out, o->ttl_ms);
    w_u64(e->out, o->lock);
}

static void
e_range(enc_t *e, const dkv_range_t *g)
{
    int has_prefix = g->prefix_len > 0;
    int has_bounds = g->start_len > 0 || g->end_len > 0;

    if (has_prefix && has_bounds) {
        e_fail(e, "range", "has both a prefix and bounds");
    } else if (has_prefix) {
        w_u8(e->out, 1);
        e_blob16(e, "range prefix", g->prefix, g->prefix_len, 1, 0xFFFF);
    } else if (has_bounds) {
        w_u8(e->out, 2);
        e_sbytes(e, "range start", g->start, g->start_len);
        e_sbytes(e, "range end", g->end, g->end_len);
    } else {
        w_u8(e->out, 0);
    }
}

static void
e_ops(enc_t *e, const dkv_op_t *ops, size_t n, size_t max)
{
    size_t i;

    if (!e_count(e, "op count", n, ops, max, 1)) {
        return;
    }
    for (i = 0; i < n && e->why == NULL; i++) {
        if (ops[i].type != DKV_OP_PUT && ops[i].type != DKV_OP_DELETE) {
            e_fail(e, "op type", "is unknown");
            return;
        }
        w_u8(e->out, (unsigned)ops[i].type);
        e_key(e, "op key", ops[i].key, ops[i].key_len, 0);
        if (ops[i].type == DKV_OP_PUT) {
            e_bytes(e, "op value", ops[i].value, ops[i].value_len);
            e_bool(e, ops[i].put != NULL);
            if (ops[i].put != NULL) {
                e_put_opts(e, ops[i].put);
            }
        } else {
            e_bool(e, ops[i].del != NULL);
            if (ops[i].del != NULL) {
                e_delete_opts(e, ops[i].del);
            }
        }
    }
}

static void
e_keys(enc_t *e, const dkv_key_t *keys, size_t n)
{
    size_t i;

    if (!e_count(e, "key count", n, keys, DKV_PROTO_MAX_BULK, 1)) {
        return;
    }
    for (i = 0; i < n; i++) {
        e_key(e, "key", keys[i].key, keys[i].key_len, 0);
    }
}

static void
e_clause(enc_t *e, const dkv_clause_t *c, int depth)
{
    size_t i;

    if (e->why != NULL) {
        return;
    }
    if (depth > DKV_PROTO_MAX_DEPTH) {
        e_fail(e, "clause", "is nested too deep");
        return;
    }
    if (++e->nclauses > DKV_PROTO_MAX_CLAUSES) {
        e_fail(e, "query", "has too many clauses");
        return;
    }
    switch (c->type) {
    case DKV_CLAUSE_EQ:
    case DKV_CLAUSE_PREFIX:
        w_u8(e->out, (unsigned)c->type);
        e_str(e, "clause label", c->label, DKV_MAX_LABEL_NAME, 1);
        e_str(e, "clause value", c->value, MAX_STR, 1);
        break;
    case DKV_CLAUSE_RANGE:
        w_u8(e->out, (unsigned)c->type);
        e_str(e, "clause label", c->label, DKV_MAX_LABEL_NAME, 1);
        e_ostr(e, "clause low", c->low, MAX_OSTR);
        e_ostr(e, "clause high", c->high, MAX_OSTR);
        break;
    case DKV_CLAUSE_AND:
    case DKV_CLAUSE_OR:
    case DKV_CLAUSE_NOT:
        w_u8(e->out, (unsigned)c->type);
        if (!e_count(e, "clause nchildren", c->nchildren, c->children,
                     DKV_PROTO_MAX_CLAUSES, 0)) {
            return;
        }
        for (i = 0; i < c->nchildren && e->why == NULL; i++) {
            e_clause(e, &c->children[i], depth + 1);
        }
        break;
    default:
        e_fail(e, "clause type", "is unknown");
    }
}

static void
e_query(enc_t *e, const dkv_query_t *q)
{
    size_t i;

    e_str(e, "query entity", q->entity, DKV_MAX_ENTITY, 1);
    e_bool(e, q->where != NULL);
    if (q->where != NULL) {
        e_clause(e, q->where, 1);
    }
    if (e_count(e, "query norder", q->norder, q->order,
                DKV_PROTO_MAX_ORDER, 0)) {
        for (i = 0; i < q->norder; i++) {
            e_str(e, "order label", q->order[i].label, DKV_MAX_LABEL_NAME,
                  1);
            e_bool(e, q->order[i].descending);
        }
    }
    e_u32size(e, "query limit", q->limit);
    if (e_count(e, "query nselect", q->nselect, q->select,
                DKV_PROTO_MAX_SELECT, 0)) {
        for (i = 0; i < q->nselect; i++) {
            e_str(e, "select label", q->select[i], DKV_MAX_LABEL_NAME, 1);
        }
    }
    e_bool(e, q->keys_only);
}

static void
e_item(enc_t *e, const dkv_item_t *it)
{
    e_status(e, it->status);
    e_key(e, "item key", it->key, it->key_len, 0);
    e_bool(e, it->value != NULL);
    if (it->value != NULL) {
        e_bytes(e, "item value", it->value, it->value_len);
    }
    w_u64(e->out, it->version);
    w_u64(e->out, it->create_revision);
    w_u64(e->out, it->mod_revision);
    w_u64(e->out, it->revision);
    w_i64(e->out, it->created_at);
    w_i64(e->out, it->expires_at);
    w_i64(e->out, it->ttl_ms);
    w_u64(e->out, it->lease);
    e_ostr(e, "item entity", it->entity, DKV_MAX_ENTITY);
    e_ostr(e, "item content_type", it->content_type, DKV_MAX_CONTENT_TYPE);
    e_labels(e, it->labels, it->nlabels);
}

static void
e_result(enc_t *e, const dkv_result_t *r)
{
    e_status(e, r->status);
    w_u8(e->out, (r->mutated ? 0x01u : 0) | (r->is_update ? 0x02u : 0));
    w_u64(e->out, r->version);
    w_u64(e->out, r->revision);
}

static void
e_page(enc_t *e, const dkv_page_t *pg)
{
    size_t i;

    if (e_count(e, "page count", pg->count, pg->items, DKV_PROTO_MAX_PAGE,
                1)) {
        for (i = 0; i < pg->count && e->why == NULL; i++) {
            e_item(e, &pg->items[i]);
        }
    }
    e_bool(e, pg->more);
    e_sbytes(e, "page next", pg->next, pg->next_len);
    w_u64(e->out, pg->revision);
}

/* ---------------------------------------------------- encode: requests */

static void
e_member_add(enc_t *e, const dkv_request_t *req)
{
    if (req->member_id == 0) {
        e_fail(e, "member id", "is 0");
        return;
    }
    if (req->member_host == NULL || req->member_host[0] == '\0') {
        e_fail(e, "member host", "is empty");
        return;
    }
    if (req->member_cluster_port == 0) {
        e_fail(e, "member cluster port", "is 0");
        return;
    }
    w_u32(e->out, req->member_id);
    e_str(e, "member host", req->member_host, DKV_PROTO_MAX_HOST, 1);
    w_u16(e->out, req->member_cluster_port);
    w_u16(e->out, req->member_client_port);
}

dkv_status_t
dkv_proto_request_encode(dkv_wbuf_t *out, const dkv_request_t *req)
{
    enc_t e;
    size_t i;

    if (!is_request_op(req->op)) {
        return dkv_error_set(DKV_EINVAL, "cannot encode request: op 0x%02x "
                             "is not a request", (unsigned)req->op);
    }
    e_begin(&e, out, req->op, req->id);
    if (req->flags & ~(unsigned)DKV_PROTO_REQUEST_FLAGS) {
        e_fail(&e, "header flags", "has unknown bits set");
    }
    switch (req->op) {
    case DKV_MSG_HELLO:
        w_u32(out, req->magic);
        w_u16(out, req->min_version);
        w_u16(out, req->max_version);
        e_str(&e, "store", req->store, MAX_STR, 0);
        e_sbytes(&e, "token", req->token, req->token_len);
        e_str(&e, "client", req->client, DKV_PROTO_MAX_CLIENT_NAME, 0);
        break;
    case DKV_MSG_PING:
    case DKV_MSG_REVISION:
    case DKV_MSG_MEMBERS:
    case DKV_MSG_STATS:
        break;
    case DKV_MSG_MEMBER_ADD:
        e_member_add(&e, req);
        break;
    case DKV_MSG_GET:
        e_key(&e, "key", req->key, req->key_len, 0);
        e_get_opts(&e, &req->get);
        break;
    case DKV_MSG_PUT:
        e_key(&e, "key", req->key, req->key_len, 0);
        e_bytes(&e, "value", req->value, req->value_len);
        e_put_opts(&e, &req->put);
        break;
    case DKV_MSG_DELETE:
        e_key(&e, "key", req->key, req->key_len, 0);
        e_delete_opts(&e, &req->del);
        break;
    case DKV_MSG_EXPIRE:
        e_key(&e, "key", req->key, req->key_len, 0);
        w_i64(out, req->num);
        w_u64(out, req->u64);
        break;
    case DKV_MSG_REFRESH:
        e_key(&e, "key", req->key, req->key_len, 0);
        w_u64(out, req->u64);
        break;
    case DKV_MSG_GET_MANY:
        e_keys(&e, req->keys, req->n);
        e_get_opts(&e, &req->get);
        break;
    case DKV_MSG_PUT_MANY:
        if (e_count(&e, "kv count", req->n, req->kvs, DKV_PROTO_MAX_BULK,
                    1)) {
            for (i = 0; i < req->n; i++) {
                e_key(&e, "key", req->kvs[i].key, req->kvs[i].key_len, 0);
                e_bytes(&e, "value", req->kvs[i].value,
                        req->kvs[i].value_len);
            }
        }
        e_put_opts(&e, &req->put);
        break;
    case DKV_MSG_DELETE_MANY:
        e_keys(&e, req->keys, req->n);
        e_delete_opts(&e, &req->del);
        break;
    case DKV_MSG_BATCH:
        e_ops(&e, req->ops, req->n, DKV_PROTO_MAX_BULK);
        break;
    case DKV_MSG_CLEAR:
    case DKV_MSG_COUNT:
        e_range(&e, &req->range);
        break;
    case DKV_MSG_SCAN:
        e_range(&e, &req->range);
        e_sbytes(&e, "after", req->scan.after, req->scan.after_len);
        e_u32size(&e, "limit", req->scan.limit);
        e_bool(&e, req->scan.keys_only);
        break;
    case DKV_MSG_COUNTER_ADD:
    case DKV_MSG_COUNTER_SET:
        e_key(&e, "key", req->key, req->key_len, 0);
        w_i64(out, req->num);
        e_counter_opts(&e, &req->counter);
        break;
    case DKV_MSG_COUNTER_GET:
        e_key(&e, "key", req->key, req->key_len, 0);
        break;
    case DKV_MSG_LEASE_GRANT:
        w_i64(out, req->num);
        break;
    case DKV_MSG_LEASE_KEEPALIVE:
    case DKV_MSG_LEASE_REVOKE:
    case DKV_MSG_LEASE_INFO:
    case DKV_MSG_WATCH_CANCEL:
        w_u64(out, req->u64);
        break;
    case DKV_MSG_LOCK_ACQUIRE:
    case DKV_MSG_LOCK_RELEASE:
        e_key(&e, "key", req->key, req->key_len, 0);
        w_u64(out, req->u64);
        break;
    case DKV_MSG_TXN_COMMIT:
        if (e_count(&e, "compare count", req->ncompares, req->compares,
                    DKV_MAX_TXN_OPS, 1)) {
            for (i = 0; i < req->ncompares; i++) {
                e_key(&e, "compare key", req->compares[i].key,
                      req->compares[i].key_len, 0);
                w_u64(out, req->compares[i].mod_revision);
            }
        }
        e_ops(&e, req->ops, req->n, DKV_MAX_TXN_OPS);
        break;
    case DKV_MSG_SEARCH:
        e_query(&e, &req->query);
        e_u32size(&e, "page_size", req->search.page_size);
        e_sbytes(&e, "cursor", req->search.cursor, req->search.cursor_len);
        break;
    case DKV_MSG_WATCH:
        if (req->watch_flags & ~(unsigned)(DKV_PROTO_WATCH_PREFIX
                                           | DKV_PROTO_WATCH_SNAPSHOT)) {
            e_fail(&e, "watch flags", "has unknown bits set");
        } else if (req->key_len == 0
                   && !(req->watch_flags & DKV_PROTO_WATCH_PREFIX)) {
            e_fail(&e, "key", "is empty without the prefix flag");
        }
        e_key(&e, "key", req->key, req->key_len, 1);
        w_u8(out, req->watch_flags);
        w_u64(out, req->u64);
        break;
    default:
        break;
    }
    if (e.why == NULL && out->failed == DKV_OK) {
        /* The header's flags byte (after length and op). */
        out->data[e.start + 5] = req->flags;
    }
    return e_end(&e, "request", req->op);
}

/* --------------------------------------------------- encode: responses */

static void
e_members(enc_t *e, const dkv_response_t *res)
{
    size_t i;

    w_u32(e->out, res->leader);
    if (!e_count(e, "member count", res->nmembers, res->members,
                 DKV_PROTO_MAX_MEMBERS, 1)) {
        return;
    }
    for (i = 0; i < res->nmembers && e->why == NULL; i++) {
        const dkv_proto_member_t *m = &res->members[i];

        if (m->roles & ~(unsigned)DKV_PROTO_MEMBER_ROLES) {
            e_fail(e, "member roles", "has unknown bits set");
            return;
        }
        if (m->host == NULL || m->host[0] == '\0') {
            e_fail(e, "member host", "is empty");
            return;
        }
        w_u32(e->out, m->id);
        w_u8(e->out, m->roles);
        e_str(e, "member host", m->host, DKV_PROTO_MAX_HOST, 1);
        w_u16(e->out, m->port);
    }
}

static void
e_stats(enc_t *e, const dkv_response_t *res)
{
    size_t i;

    if (!e_count(e, "stat count", res->nstats, res->stats,
                 DKV_PROTO_MAX_STATS, 1)) {
        return;
    }
    for (i = 0; i < res->nstats && e->why == NULL; i++) {
        const dkv_proto_stat_t *st = &res->stats[i];
        size_t n = st->name ? strlen(st->name) : 0;

        if (n == 0) {
            e_fail(e, "stat name", "is empty");
            return;
        }
        if (!stat_name_ok(st->name, n)) {
            e_fail(e, "stat name", "has a byte outside [a-z0-9_]");
            return;
        }
        e_str(e, "stat name", st->name, DKV_PROTO_MAX_STAT_NAME, 1);
        w_u64(e->out, st->value);
    }
}

static void
e_response_fields(enc_t *e, const dkv_response_t *res)
{
    dkv_wbuf_t *out = e->out;
    size_t i;

    switch (res->op) {
    case DKV_MSG_HELLO:
        w_u16(out, res->version);
        e_str(e, "store", res->store, MAX_STR, 0);
        e_str(e, "instance", res->instance, MAX_STR, 0);
        w_u32(out, res->max_frame);
        w_u32(out, res->max_value);
        w_u64(out, res->revision);
        break;
    case DKV_MSG_PING:
        w_u64(out, res->revision);
        w_i64(out, res->node_time);
        e_str(e, "instance", res->instance, MAX_STR, 0);
        break;
    case DKV_MSG_REVISION:
    case DKV_MSG_TXN_COMMIT:
    case DKV_MSG_WATCH:
        w_u64(out, res->revision);
        break;
    case DKV_MSG_MEMBERS:
        e_members(e, res);
        break;
    case DKV_MSG_STATS:
        e_stats(e, res);
        break;
    case DKV_MSG_GET:
        e_item(e, &res->item);
        break;
    case DKV_MSG_PUT:
    case DKV_MSG_DELETE:
    case DKV_MSG_EXPIRE:
    case DKV_MSG_REFRESH:
        e_result(e, &res->result);
        break;
    case DKV_MSG_GET_MANY:
        if (e_count(e, "item count", res->n, res->items, DKV_PROTO_MAX_BULK,
                    1)) {
            for (i = 0; i < res->n && e->why == NULL; i++) {
                e_item(e, &res->items[i]);
            }
        }
        break;
    case DKV_MSG_PUT_MANY:
    case DKV_MSG_DELETE_MANY:
    case DKV_MSG_BATCH:
        if (e_count(e, "result count", res->n, res->results,
                    DKV_PROTO_MAX_BULK, 1)) {
            for (i = 0; i < res->n; i++) {
                e_result(e, &res->results[i]);
            }
        }
        break;
    case DKV_MSG_CLEAR:
    case DKV_MSG_COUNT:
    case DKV_MSG_LEASE_GRANT:
    case DKV_MSG_LEASE_REVOKE:
        w_u64(out, res->u64);
        break;
    case DKV_MSG_SCAN:
    case DKV_MSG_SEARCH:
        e_page(e, &res->page);
        break;
    case DKV_MSG_COUNTER_ADD:
        w_i64(out, res->num1);
        w_i64(out, res->num2);
        break;
    case DKV_MSG_COUNTER_GET:
    case DKV_MSG_LEASE_KEEPALIVE:
        w_i64(out, res->num1);
        break;
    case DKV_MSG_LEASE_INFO:
        w_u64(out, res->lease_info.id);
        w_i64(out, res->lease_info.ttl_ms);
        w_i64(out, res->lease_info.remaining_ms);
        w_i64(out, res->lease_info.expires_at);
        w_u64(out, res->lease_info.keys);
        w_u64(out, res->lease_info.locks);
        break;
    case DKV_MSG_LOCK_ACQUIRE:
        e_bool(e, res->lock.acquired);
        w_u64(out, res->lock.token);
        w_u64(out, res->lock.lease);
        break;
    case DKV_MSG_COUNTER_SET:
    case DKV_MSG_LOCK_RELEASE:
    case DKV_MSG_WATCH_CANCEL:
    case DKV_MSG_MEMBER_ADD:
        break;
    default:
        e_fail(e, "op", "is unknown (with status OK)");
    }
}

/* The status and message that start every response body (the message
 * cut to what a str holds). */
static void
e_status_message(enc_t *e, dkv_status_t status, const char *message)
{
    size_t n = message ? strlen(message) : 0;

    if (n > MAX_STR) {
        n = MAX_STR;
    }
    e_status(e, status);
    w_u16(e->out, (unsigned)n);
    dkv_wbuf_append(e->out, message, n);
}

dkv_status_t
dkv_proto_response_encode(dkv_wbuf_t *out, const dkv_response_t *res)
{
    enc_t e;

    if (res->op == DKV_MSG_PROTOCOL_ERROR) {
        return dkv_proto_error_encode(out, res->id, res->status,
                                      res->message);
    }
    if (res->op & DKV_PROTO_RESPONSE) {
        return dkv_error_set(DKV_EINVAL, "cannot encode response: op "
                             "0x%02x has the response bit", res->op);
    }
    e_begin(&e, out, (unsigned)res->op | DKV_PROTO_RESPONSE, res->id);
    e_status_message(&e, res->status, res->message);
    if (has_presence(res->op)) {
        int present = res->status == DKV_OK || res->has_result;

        e_bool(&e, present);
        if (present) {
            e_response_fields(&e, res);
        }
    }
    else if (has_fields(res->op, res->status)) {
        e_response_fields(&e, res);
    }
    return e_end(&e, "response", res->op);
}

/* ------------------------------------------------------ encode: events */

dkv_status_t
dkv_proto_events_encode(dkv_wbuf_t *out, uint64_t id,
                        const dkv_event_t *events, size_t n)
{
    return dkv_proto_events_encode_flags(out, id, 0, events, n);
}

dkv_status_t
dkv_proto_events_encode_flags(dkv_wbuf_t *out, uint64_t id, unsigned flags,
                              const dkv_event_t *events, size_t n)
{
    enc_t e;
    size_t i;

    e_begin(&e, out, DKV_MSG_EVENT, id);
    if (flags & ~(unsigned)DKV_PROTO_EVENT_SNAPSHOT_DONE) {
        e_fail(&e, "event frame flags", "has unknown bits set");
    } else if (n == 0 && !(flags & DKV_PROTO_EVENT_SNAPSHOT_DONE)) {
        e_fail(&e, "event count", "is 0 without SNAPSHOT_DONE");
    } else if (e_count(&e, "event count", n, events, UINT32_MAX, 1)) {
        for (i = 0; i < n && e.why == NULL; i++) {
            const dkv_event_t *ev = &events[i];

            if (ev->type < DKV_EVENT_PUT || ev->type > DKV_EVENT_ERROR) {
                e_fail(&e, "event type", "is unknown");
                break;
            }
            w_u8(out, (unsigned)ev->type);
            e_bool(&e, ev->snapshot);
            if (ev->type == DKV_EVENT_ERROR) {
                w_u16(out, 0);
            } else {
                e_key(&e, "event key", ev->key, ev->key_len, 0);
            }
            if (ev->type == DKV_EVENT_PUT) {
                e_bytes(&e, "event value", ev->value, ev->value_len);
            }
            w_u64(out, ev->revision);
            w_u64(out, ev->version);
            e_status(&e, ev->type == DKV_EVENT_ERROR ? ev->status : DKV_OK);
        }
    }
    if (e.why == NULL && out->failed == DKV_OK) {
        /* The header's flags byte (after length and op). */
        out->data[e.start + 5] = (unsigned char)flags;
    }
    return e_end(&e, "event", DKV_MSG_EVENT);
}

/* ------------------------------------------------------ protocol error */

dkv_status_t
dkv_proto_error_encode(dkv_wbuf_t *out, uint64_t id, dkv_status_t status,
                       const char *message)
{
    enc_t e;

    e_begin(&e, out, DKV_MSG_PROTOCOL_ERROR, id);
    e_status_message(&e, status, message);
    return e_end(&e, "frame", DKV_MSG_PROTOCOL_ERROR);
}

/* See proto.h. */
int
dkv_proto_op_reads_store(unsigned op)
{
    switch (op) {
    case DKV_MSG_GET:
    case DKV_MSG_GET_MANY:
    case DKV_MSG_SCAN:
    case DKV_MSG_COUNT:
    case DKV_MSG_COUNTER_GET:
    case DKV_MSG_LEASE_INFO:
    case DKV_MSG_SEARCH:
    case DKV_MSG_REVISION:
        return 1;
    default:
        return 0;
    }
}
