/*
 * conn.c -- one client connection of dkv-node, on the loop thread.
 *
 * Life of a connection: accepted (DKV_CONN_HELLO) -> HELLO checked
 * (protocol version, store, access token or loopback-only, failure rate
 * limit; a client on this machine with the node admin token is an admin
 * connection, the only kind allowed MEMBER_ADD) -> DKV_CONN_OPEN, where
 * every complete frame in the input is copied and handed to the request
 * service (pipelining) -> closed by the peer, a timeout, a protocol error
 * or the node's shutdown (DKV_CONN_CLOSING: nothing more is read; what is
 * queued is written, within a grace period, then the socket closes).
 *
 * Memory is bounded per connection: the input buffer by the largest frame
 * allowed (much smaller before HELLO), the output by --max-output (past
 * it the connection is not read: backpressure, and the service's EVENT
 * frames are refused in dkv_node_send), and requests in flight by a
 * window: it starts at WINDOW_START, grows by one per answer up to
 * DKV_NODE_MAX_INFLIGHT, and is cut to what --max-output holds at the
 * connection's recent large answer size; further complete frames wait in
 * the input buffer (which is then not read) until answers come back.  So
 * a client that does not read makes the node buffer about twice
 * --max-output when its answers are alike (WINDOW_START answers past it
 * at first), and never more than DKV_NODE_MAX_INFLIGHT answers past it.
 *
 * Sections: output, access control, handshake, input, events and
 * timeouts, lifecycle.
 */
#include "node/conn.h"

#include <string.h>

#include <sodium.h>

#define APR_WANT_IOVEC
#include <apr_want.h>
#include <apr_strings.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/status.h"

/* Input buffer size kept for small frames. */
#define IN_MIN (16u * 1024u)
/* Time a closing connection gets to take its last frames. */
#define CLOSE_GRACE apr_time_from_sec(5)
/* Requests in flight allowed on a new connection, and the smallest
 * answer size assumed. */
#define WINDOW_START 16
#define ANSWER_MIN 256
/* Buffers per sendv call, and sendv calls per flush. */
#define FLUSH_IOV 64
#define FLUSH_ROUNDS 8

static void update_events(dkv_conn_t *c);

/* Whole seconds of T, rounded up (for "retry in N s"). */
static unsigned
secs(apr_interval_time_t t)
{
    return (unsigned)((t + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC);
}

/* Whole seconds of elapsed time T (for "idle for N s"). */
static unsigned
elapsed(apr_interval_time_t t)
{
    return (unsigned)(t / APR_USEC_PER_SEC);
}

/* Copies untrusted text SRC (LEN bytes) into DST for logs: printable
 * ASCII only, at most N - 1 bytes. */
static void
clean_text(char *dst, size_t n, const char *src, size_t len)
{
    size_t i;

    for (i = 0; i < len && i + 1 < n; i++) {
        unsigned char ch = (unsigned char)src[i];

        dst[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    dst[i] = '\0';
}

/* ---------------------------------------------------------------- output */

static void
touch(dkv_conn_t *c)
{
    if (!c->touched) {
        c->touched = 1;
        c->touched_next = c->node->touched;
        c->node->touched = c;
    }
}

static void
outq_free(dkv_outq_t *item)
{
    dkv_wbuf_free(&item->buf);
    dkv_free(item);
}

/* Appends ITEM (already counted in pub_out) to C's output. */
static void
out_append(dkv_conn_t *c, dkv_outq_t *item)
{
    item->next = NULL;
    item->off = 0;
    if (c->out_tail != NULL) {
        c->out_tail->next = item;
    } else {
        c->out_head = item;
    }
    c->out_tail = item;
    if (c->out_len == 0) {
        c->out_waiting = c->node->now;
    }
    c->out_len += item->buf.len;
    touch(c);
}

static void
pub_adjust(dkv_conn_t *c, size_t add, size_t sub)
{
    apr_thread_mutex_lock(c->node->lock);
    c->pub_out += add;
    c->pub_out -= sub <= c->pub_out ? sub : c->pub_out;
    apr_thread_mutex_unlock(c->node->lock);
}

static dkv_outq_t *
outq_new(void)
{
    dkv_outq_t *item = dkv_calloc(1, sizeof(*item));

    if (item != NULL) {
        dkv_wbuf_init(&item->buf, 0);
    }
    return item;
}

/* Queues a frame the network half made itself (HELLO answers, protocol
 * errors). */
static void
send_item(dkv_conn_t *c, dkv_outq_t *item)
{
    if (item == NULL) {
        return;
    }
    if (item->buf.failed != DKV_OK || item->buf.len == 0) {
        outq_free(item);
        return;
    }
    pub_adjust(c, item->buf.len, 0);
    out_append(c, item);
}

static void
begin_closing(dkv_conn_t *c)
{
    c->state = DKV_CONN_CLOSING;
    c->close_deadline = c->node->now + CLOSE_GRACE;
    c->in_len = 0;
    c->in_need = 0;
    c->frame_started = 0;
}

/* Sends PROTOCOL_ERROR (STATUS, WHY) for frame ID and closes C once it is
 * written; logs the reason with the peer. */
static void
protocol_error(dkv_conn_t *c, uint64_t id, dkv_status_t status,
               const char *why)
{
    dkv_outq_t *item = outq_new();

    dkv_log(DKV_LOG_WARN, "closing client %s (conn %llu): protocol error: "
            "%s", c->peer, (unsigned long long)c->id, why);
    if (item != NULL) {
        (void)dkv_proto_error_encode(&item->buf, id, status, why);
    }
    send_item(c, item);
    begin_closing(c);
}

/* Sends a HELLO response with STATUS and MESSAGE (and, when OK, the
 * node's parameters). */
static void
hello_respond(dkv_conn_t *c, uint64_t id, dkv_status_t status,
              const char *message)
{
    dkv_node_t *node = c->node;
    dkv_outq_t *item = outq_new();
    dkv_response_t res;

    if (item == NULL) {
        return;
    }
    memset(&res, 0, sizeof(res));
    res.op = DKV_MSG_HELLO;
    res.id = id;
    res.status = status;
    res.message = message ? message : "";
    if (status == DKV_OK) {
        res.version = DKV_PROTO_VERSION;
        res.store = node->opts.store;
        res.instance = node->opts.instance;
        res.max_frame = node->opts.max_frame;
        res.max_value = node->opts.max_value;
        res.revision = node->service
                       ? dkv_service_revision(node->service) : 0;
    }
    (void)dkv_proto_response_encode(&item->buf, &res);
    send_item(c, item);
}

/* Refuses the handshake: answers HELLO with STATUS and MESSAGE, logs WHY
 * and closes once the answer is out. */
static void
hello_refuse(dkv_conn_t *c, uint64_t id, dkv_status_t status,
             const char *message, const char *why)
{
    dkv_log(DKV_LOG_WARN, "refused client %s%s%s%s: %s", c->peer,
            c->client[0] ? " (" : "", c->client, c->client[0] ? ")" : "",
            why ? why : message);
    hello_respond(c, id, status, message);
    begin_closing(c);
}

/* -------------------------------------------------------- access control */

/* The failure slot of IP, or NULL; with CREATE, a new one (a free slot,
 * else the oldest).  Windows that have passed are freed on the way. */
static dkv_auth_slot_t *
auth_slot(dkv_node_t *node, const char *ip, int create)
{
    dkv_auth_slot_t *free_slot = NULL, *oldest = NULL, *s;
    size_t i;

    for (i = 0; i < DKV_NODE_AUTH_SLOTS; i++) {
        s = &node->auth[i];
        if (s->start != 0 && node->now - s->start >= DKV_NODE_AUTH_WINDOW) {
            s->start = 0;
        }
        if (s->start == 0) {
            if (free_slot == NULL) {
                free_slot = s;
            }
            continue;
        }
        if (!strcmp(s->ip, ip)) {
            return s;
        }
        if (oldest == NULL || s->start < oldest->start) {
            oldest = s;
        }
    }
    if (!create) {
        return NULL;
    }
    s = free_slot ? free_slot : oldest;
    apr_cpystrn(s->ip, ip, sizeof(s->ip));
    s->start = node->now;
    s->failures = 0;
    return s;
}

/* Whether C's address is over its failure budget; *RETRY: for how long. */
static int
auth_limited(dkv_conn_t *c, apr_interval_time_t *retry)
{
    dkv_auth_slot_t *s = auth_slot(c->node, c->ip, 0);

    if (s == NULL || s->failures < DKV_NODE_AUTH_FAILURES) {
        return 0;
    }
    *retry = s->start + DKV_NODE_AUTH_WINDOW - c->node->now;
    return 1;
}

static void
auth_failed(dkv_conn_t *c)
{
    dkv_auth_slot_t *s = auth_slot(c->node, c->ip, 1);

    if (++s->failures == DKV_NODE_AUTH_FAILURES) {
        dkv_log(DKV_LOG_WARN, "rate-limiting client address %s: %u failed "
                "handshakes within %u s; refusing it until the window "
                "ends", c->ip, s->failures,
                secs(DKV_NODE_AUTH_WINDOW));
    }
}

/* Compares TOKEN with the token whose digest is HASH in constant time
 * (both hashed to the same length first, so the length leaks nothing
 * either). */
static int
token_matches(const unsigned char *hash, const void *token, size_t len)
{
    unsigned char digest[DKV_NODE_TOKEN_HASH];
    int ok;

    crypto_generichash(digest, sizeof(digest), token, len, NULL, 0);
    ok = sodium_memcmp(digest, hash, sizeof(digest)) == 0;
    sodium_memzero(digest, sizeof(digest));
    return ok;
}

/* Whether HELLO REQ of C opens an admin connection: a client on this
 * machine (loopback, or from the very address it connected to, as a
 * manager reaching a node bound to one address does) with the node
 * admin token. */
static int
is_admin_hello(const dkv_conn_t *c, const dkv_request_t *req)
{
    return c->local && c->node->opts.admin_hash != NULL
           && req->token_len > 0
           && token_matches(c->node->opts.admin_hash, req->token,
                            req->token_len);
}

/* ------------------------------------------------------------- handshake */

/* Handles the first frame F (a HELLO). */
static void
on_hello(dkv_conn_t *c, const dkv_frame_t *f)
{
    dkv_node_t *node = c->node;
    apr_pool_t *pool = node->scratch;
    apr_interval_time_t retry;
    dkv_request_t req;
    dkv_status_t st;
    char store[72];

    st = dkv_proto_request_decode(&req, f, pool);
    if (st != DKV_OK) {
        const char *msg = apr_psprintf(pool, "malformed HELLO: %s",
                                       dkv_last_error());

        hello_refuse(c, f->id, DKV_EINVAL, msg, NULL);
        goto done;
    }
    if (req.client != NULL) {
        clean_text(c->client, sizeof(c->client), req.client,
                   strlen(req.client));
    }
    if (req.magic != DKV_PROTO_MAGIC) {
        hello_refuse(c, f->id, DKV_EINVAL,
                     apr_psprintf(pool, "bad magic 0x%08x: not a dkv "
                                  "client", (unsigned)req.magic), NULL);
        goto done;
    }
    if (req.min_version > DKV_PROTO_VERSION
        || req.max_version < DKV_PROTO_VERSION) {
        hello_refuse(c, f->id, DKV_EINVAL,
                     apr_psprintf(pool, "no common protocol version: the "
                                  "client speaks %u to %u, the node %u",
                                  (unsigned)req.min_version,
                                  (unsigned)req.max_version,
                                  (unsigned)DKV_PROTO_VERSION), NULL);
        goto done;
    }
    if (node->shutting_down) {
        hello_refuse(c, f->id, DKV_EUNAVAILABLE, "node shutting down",
                     NULL);
        goto done;
    }
    /* The manager's admin connection is not held up by the failures of
     * other local clients (its token is 256 bits: no use guessing). */
    c->admin = is_admin_hello(c, &req);
    if (!c->admin && auth_limited(c, &retry)) {
        hello_refuse(c, f->id, DKV_EUNAVAILABLE,
                     apr_psprintf(pool, "too many failed attempts; retry "
                                  "in %u s", secs(retry)),
                     "too many failed attempts from this address "
                     "(rate limit)");
        goto done;
    }
    if (c->admin) {
        /* Accepted whatever the access-token rules say. */
    } else if (node->opts.token_hash == NULL) {
        if (!c->loopback) {
            hello_refuse(c, f->id, DKV_EUNAUTHORIZED,
                         "this node has no access token configured, so it "
                         "accepts loopback clients only; to allow remote "
                         "clients, start the node with --token-file FILE "
                         "and give the clients that token",
                         "not a loopback client and no access token is "
                         "configured (loopback-only mode)");
            goto done;
        }
    } else if (req.token_len == 0) {
        auth_failed(c);
        hello_refuse(c, f->id, DKV_EUNAUTHORIZED,
                     "this node requires an access token; none was given",
                     "missing access token");
        goto done;
    } else if (!token_matches(node->opts.token_hash, req.token,
                              req.token_len)) {
        auth_failed(c);
        hello_refuse(c, f->id, DKV_EUNAUTHORIZED, "wrong access token",
                     "wrong access token");
        goto done;
    }
    if (req.store == NULL || strcmp(req.store, node->opts.store) != 0) {
        clean_text(store, sizeof(store), req.store ? req.store : "",
                   req.store ? strlen(req.store) : 0);
        hello_refuse(c, f->id, DKV_EINVAL,
                     apr_psprintf(pool, "this node serves store '%s', not "
                                  "'%s'", node->opts.store, store), NULL);
        goto done;
    }
    hello_respond(c, f->id, DKV_OK, "");
    c->state = DKV_CONN_OPEN;
    c->authed = 1;
    dkv_log(DKV_LOG_DEBUG, "client %s (%s) connected as conn %llu%s",
            c->peer, c->client, (unsigned long long)c->id,
            c->admin ? " (admin connection)" : "");
done:
    if (st == DKV_OK && req.token != NULL && req.token_len > 0) {
        /* The token points into our input buffer: wipe it. */
        sodium_memzero((void *)req.token, req.token_len);
    }
    apr_pool_clear(pool);
}

/* ----------------------------------------------------------------- input */

static void
watch_add(dkv_conn_t *c, uint64_t id)
{
    size_t i;

    for (i = 0; i < c->nwatches; i++) {
        if (c->watches[i] == id) {
            return;
        }
    }
    if (c->nwatches == c->watch_cap) {
        size_t cap = c->watch_cap ? c->watch_cap * 2 : 8;
        uint64_t *w = dkv_realloc(c->watches, cap * sizeof(*w));

        if (w == NULL) {
            return;  /* only the idle timer reads this list */
        }
        c->watches = w;
        c->watch_cap = cap;
    }
    c->watches[c->nwatches++] = id;
}

static void
watch_remove(dkv_conn_t *c, uint64_t id)
{
    size_t i;

    for (i = 0; i < c->nwatches; i++) {
        if (c->watches[i] == id) {
            c->watches[i] = c->watches[--c->nwatches];
            return;
        }
    }
}

/* Answers admin request F of C, not an admin connection, with
 * DKV_EUNAUTHORIZED (the service never sees it). */
static void
refuse_admin_op(dkv_conn_t *c, const dkv_frame_t *f)
{
    dkv_outq_t *item = outq_new();
    dkv_response_t res;

    dkv_log(DKV_LOG_WARN, "refused MEMBER_ADD from client %s (conn %llu): "
            "not the node admin connection", c->peer,
            (unsigned long long)c->id);
    if (item == NULL) {
        return;
    }
    memset(&res, 0, sizeof(res));
    res.op = f->op;
    res.id = f->id;
    res.status = DKV_EUNAUTHORIZED;
    res.message = "MEMBER_ADD needs the node admin connection (loopback, "
                  "from the store's manager)";
    (void)dkv_proto_response_encode(&item->buf, &res);
    send_item(c, item);
}

/* Hands request frame F (RAW, SIZE bytes, inside C's input buffer) of
 * open connection C to the service: a dkv_malloc copy, since the input
 * buffer is reused.  Counts it in flight; closes C when out of memory. */
static void
on_request(dkv_conn_t *c, const dkv_frame_t *f, const unsigned char *raw,
           size_t size)
{
    dkv_node_t *node = c->node;
    unsigned char *copy;

    if (f->op == DKV_MSG_MEMBER_ADD && !c->admin) {
        refuse_admin_op(c, f);
        return;
    }
    /* The service answers every frame, a second HELLO too (EINVAL). */
    if (f->op == DKV_MSG_WATCH_CANCEL && f->body_len == 8) {
        /* Ended or unknown either way: only the idle timer cares. */
        watch_remove(c, dkv_get_be64(f->body));
    }
    copy = dkv_malloc(size);
    if (copy == NULL) {
        dkv_log(DKV_LOG_ERROR, "out of memory copying a %lu-byte request "
                "of client %s", (unsigned long)size, c->peer);
        dkv_conn_close(c, DKV_LOG_ERROR, "out of memory");
        return;
    }
    memcpy(copy, raw, size);
    if (c->inflight == 0) {
        c->answer_wait = node->now;
        c->stall_logged = 0;
    }
    c->inflight++;
    dkv_service_submit(node->service, c->id, copy, size);
}

/* Whether open connection C may start another request now. */
static int
may_submit(const dkv_conn_t *c)
{
    size_t max_output = c->node->opts.max_output;
    size_t cap;

    if (c->out_len > max_output || c->inflight >= c->window) {
        return 0;
    }
    cap = max_output / (c->big_answer > ANSWER_MIN ? c->big_answer
                                                    : ANSWER_MIN);
    return c->inflight < (cap > 0 ? cap : 1);
}

/* Handles every complete frame in C's input buffer (or holds them back
 * while may_submit() says no). */
static void
process_input(dkv_conn_t *c)
{
    size_t off = 0;
    int had_partial = c->in_need != 0 || c->frame_started != 0;

    c->held = 0;
    while (c->state != DKV_CONN_CLOSING && !c->dead && off < c->in_len) {
        uint32_t limit = c->node->opts.max_frame;
        dkv_frame_t f;
        size_t size = 0;
        dkv_status_t st;

        if (c->state == DKV_CONN_HELLO && limit > DKV_NODE_HELLO_MAX_FRAME) {
            limit = DKV_NODE_HELLO_MAX_FRAME;
        }
        st = dkv_proto_frame_parse(&f, &size, c->in + off, c->in_len - off,
                                   limit);
        if (st == APR_INCOMPLETE) {
            c->in_need = size;
            break;
        }
        if (st != DKV_OK) {
            const unsigned char *h = c->in + off;
            char why[120];
            uint64_t id = c->in_len - off >= DKV_PROTO_HEADER
                          ? dkv_get_be64(h + 8) : 0;

            snprintf(why, sizeof(why), "frame length %lu outside 12..%lu",
                     (unsigned long)dkv_get_be32(h), (unsigned long)limit);
            protocol_error(c, id, st, why);
            return;
        }
        c->in_need = 0;
        if (f.op & DKV_PROTO_RESPONSE) {
            char why[80];

            /* Its response op would be the same byte: unanswerable. */
            snprintf(why, sizeof(why), "op 0x%02x has the response bit set",
                     (unsigned)f.op);
            protocol_error(c, f.id, DKV_EINVAL, why);
            return;
        }
        if (c->state == DKV_CONN_OPEN && !may_submit(c)) {
            c->held = 1;
            break;
        }
        if (c->state == DKV_CONN_HELLO) {
            if (f.op != DKV_MSG_HELLO) {
                char why[80];

                snprintf(why, sizeof(why), "the first frame must be HELLO "
                         "(got op 0x%02x)", (unsigned)f.op);
                protocol_error(c, f.id, DKV_EINVAL, why);
                return;
            }
            on_hello(c, &f);
        } else {
            on_request(c, &f, c->in + off, size);
        }
        off += size;
    }
    if (c->state == DKV_CONN_CLOSING || c->dead) {
        return;
    }
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (c->in_len == 0 || c->held) {
        c->frame_started = 0;
        c->in_need = 0;
    } else if (off > 0 || !had_partial) {
        c->frame_started = c->node->now;
    }
    /* Give back a large buffer once the large frame is through. */
    if (c->in_cap > IN_MIN && c->in_len <= IN_MIN && c->in_need <= IN_MIN) {
        unsigned char *p = dkv_realloc(c->in, IN_MIN);

        if (p != NULL) {
            c->in = p;
            c->in_cap = IN_MIN;
        }
    }
}

static void
conn_read(dkv_conn_t *c)
{
    size_t want = c->in_need > IN_MIN ? c->in_need : IN_MIN;
    apr_size_t len;
    apr_status_t rv;

    if (want > c->in_cap) {
        unsigned char *p = dkv_realloc(c->in, want);

        if (p == NULL) {
            dkv_conn_close(c, DKV_LOG_ERROR, "out of memory for input");
            return;
        }
        c->in = p;
        c->in_cap = want;
    }
    len = c->in_cap - c->in_len;
    rv = apr_socket_recv(c->sock, (char *)c->in + c->in_len, &len);
    if (len > 0) {
        c->in_len += len;
        c->last_io = c->node->now;
        process_input(c);
        if (c->dead) {
            return;
        }
    }
    if (rv == APR_EOF || (rv == APR_SUCCESS && len == 0)) {
        c->eof = 1;
        if (c->state == DKV_CONN_HELLO) {
            dkv_conn_close(c, DKV_LOG_DEBUG, "closed by the client before "
                           "HELLO");
        }
        /* An open connection closes once its answers are out. */
        return;
    }
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EAGAIN(rv)) {
        char err[120];

        dkv_conn_close(c, DKV_LOG_DEBUG,
                       apr_psprintf(c->pool, "read error: %s",
                                    apr_strerror(rv, err, sizeof(err))));
    }
}

/* ----------------------------------------------------- events, timeouts */

/* Whether an EVENT frame's body holds an error event (which ends its
 * watch).  Walks the events without decoding them. */
static int
events_end_watch(const unsigned char *p, size_t len)
{
    uint32_t n, i;

    if (len < 4) {
        return 0;
    }
    n = dkv_get_be32(p);
    p += 4;
    len -= 4;
    for (i = 0; i < n; i++) {
        size_t need;
        uint8_t type;
        uint16_t klen;

        if (len < 4) {
            return 0;
        }
        type = p[0];
        if (type == 3) {
            return 1;
        }
        klen = (uint16_t)((p[2] << 8) | p[3]);
        need = 4 + (size_t)klen;
        if (len < need) {
            return 0;
        }
        if (type == 1) {
            if (len < need + 4) {
                return 0;
            }
            need += 4 + (size_t)dkv_get_be32(p + need);
        }
        need += 8 + 8 + 2;
        if (len < need) {
            return 0;
        }
        p += need;
        len -= need;
    }
    return 0;
}

/* See conn.h. */
void
dkv_conn_deliver(dkv_conn_t *c, dkv_outq_t *item)
{
    const unsigned char *p = item->buf.data;
    size_t rem = item->buf.len;
    unsigned responses = 0;

    /* Count the answers (to know what is in flight) and follow the
     * watches (for the idle timer). */
    while (rem >= DKV_PROTO_HEADER) {
        size_t flen = (size_t)dkv_get_be32(p) + 4;
        uint8_t op = p[4];
        uint64_t id = dkv_get_be64(p + 8);

        if (flen < DKV_PROTO_HEADER || flen > rem) {
            break;
        }
        if (op & DKV_PROTO_RESPONSE) {
            responses++;
            c->big_answer -= c->big_answer / 16;
            if (flen > c->big_answer) {
                c->big_answer = flen;
            }
            if (c->window < DKV_NODE_MAX_INFLIGHT) {
                c->window++;
            }
            if (op == (DKV_MSG_WATCH | DKV_PROTO_RESPONSE)
                && flen >= DKV_PROTO_HEADER + 2
                && p[DKV_PROTO_HEADER] == 0
                && p[DKV_PROTO_HEADER + 1] == 0) {
                watch_add(c, id);
            }
        } else if (op == DKV_MSG_EVENT
                   && events_end_watch(p + DKV_PROTO_HEADER,
                                       flen - DKV_PROTO_HEADER)) {
            watch_remove(c, id);
        }
        p += flen;
        rem -= flen;
    }
    if (responses > 0) {
        c->inflight -= responses < c->inflight ? responses : c->inflight;
        c->answer_wait = c->node->now;
        c->stall_logged = 0;
    }
    out_append(c, item);
}

/* Sets the poll events from C's state: read while not closing and not
 * held back (output over --max-output, resumed below half of it; frames
 * held in the input); write while output waits. */
static void
update_events(dkv_conn_t *c)
{
    dkv_node_t *node = c->node;
    apr_int16_t ev = 0;

    if (c->dead) {
        return;
    }
    if (c->state == DKV_CONN_CLOSING || c->eof || node->shutting_down) {
        c->reading = 0;
    } else {
        int over = c->reading ? c->out_len > node->opts.max_output
                              : c->out_len > node->opts.max_output / 2;
        c->reading = !over && !c->held;
    }
    if (c->reading) {
        ev |= APR_POLLIN;
    }
    if (c->out_len > 0) {
        ev |= APR_POLLOUT;
    }
    if (ev != c->events) {
        apr_status_t rv = dkv_node_poll_set(node, c, ev);

        if (rv != APR_SUCCESS) {
            char err[120];

            dkv_conn_close(c, DKV_LOG_ERROR,
                           apr_psprintf(c->pool, "pollset: %s",
                                        apr_strerror(rv, err,
                                                     sizeof(err))));
        }
    }
}

/* See conn.h. */
void
dkv_conn_flush(dkv_conn_t *c)
{
    int round;

    if (c->dead) {
        return;
    }
    if (c->held && c->state == DKV_CONN_OPEN && !c->node->shutting_down
        && may_submit(c)) {
        process_input(c);
        if (c->dead) {
            return;
        }
    }
    for (round = 0; round < FLUSH_ROUNDS && c->out_len > 0; round++) {
        struct iovec vec[FLUSH_IOV];
        dkv_outq_t *item;
        apr_size_t sent = 0, total = 0;
        apr_int32_t n = 0;
        apr_status_t rv;

        for (item = c->out_head; item != NULL && n < FLUSH_IOV;
             item = item->next) {
            vec[n].iov_base = (void *)(item->buf.data + item->off);
            vec[n].iov_len = item->buf.len - item->off;
            total += vec[n].iov_len;
            n++;
        }
        rv = apr_socket_sendv(c->sock, vec, n, &sent);
        if (sent > 0) {
            size_t left = sent;

            c->out_len -= sent;
            c->last_io = c->node->now;
            c->out_waiting = c->node->now;
            while (left > 0 && c->out_head != NULL) {
                item = c->out_head;
                if (item->buf.len - item->off > left) {
                    item->off += left;
                    break;
                }
                left -= item->buf.len - item->off;
                c->out_head = item->next;
                outq_free(item);
            }
            if (c->out_head == NULL) {
                c->out_tail = NULL;
            }
            pub_adjust(c, 0, sent);
        }
        if (rv != APR_SUCCESS) {
            char err[120];

            if (APR_STATUS_IS_EAGAIN(rv)) {
                break;
            }
            dkv_conn_close(c, DKV_LOG_DEBUG,
                           apr_psprintf(c->pool, "write error: %s",
                                        apr_strerror(rv, err,
                                                     sizeof(err))));
            return;
        }
        if (sent < total) {
            break;
        }
    }
    if (c->out_len == 0) {
        if (c->state == DKV_CONN_CLOSING) {
            dkv_conn_close(c, DKV_LOG_DEBUG, NULL);
            return;
        }
        if (c->eof && c->inflight == 0) {
            dkv_conn_close(c, DKV_LOG_DEBUG, "closed by the client");
            return;
        }
    }
    update_events(c);
}

/* See conn.h. */
void
dkv_conn_io(dkv_conn_t *c, apr_int16_t rtnevents)
{
    if ((rtnevents & (APR_POLLIN | APR_POLLHUP | APR_POLLERR))
        && c->reading) {
        conn_read(c);
        if (c->dead) {
            return;
        }
    }
    /* Answer at once (HELLO) and write whatever is pending. */
    dkv_conn_flush(c);
}

/* See conn.h. */
void
dkv_conn_sweep(dkv_conn_t *c)
{
    dkv_node_t *node = c->node;
    apr_time_t now = node->now;
    apr_interval_time_t idle = node->opts.idle_timeout;
    apr_interval_time_t req = node->opts.request_timeout;
    char why[120];

    if (c->dead) {
        return;
    }
    if (c->state == DKV_CONN_HELLO
        && now - c->created >= DKV_NODE_HELLO_TIMEOUT) {
        snprintf(why, sizeof(why), "no HELLO within %u s",
                 secs(DKV_NODE_HELLO_TIMEOUT));
        dkv_conn_close(c, DKV_LOG_INFO, why);
        return;
    }
    if (c->state == DKV_CONN_CLOSING && now >= c->close_deadline) {
        dkv_conn_close(c, DKV_LOG_DEBUG, "closing: the client did not take "
                       "its last frames in time");
        return;
    }
    if (req > 0 && c->frame_started != 0 && now - c->frame_started >= req) {
        snprintf(why, sizeof(why), "incomplete frame for %u s (request "
                 "timeout)", elapsed(now - c->frame_started));
        dkv_conn_close(c, DKV_LOG_WARN, why);
        return;
    }
    if (idle > 0 && c->out_len > 0 && now - c->out_waiting >= idle) {
        snprintf(why, sizeof(why), "the client has not read its answers "
                 "for %u s", elapsed(now - c->out_waiting));
        dkv_conn_close(c, DKV_LOG_WARN, why);
        return;
    }
    if (idle > 0 && c->state == DKV_CONN_OPEN && c->inflight == 0
        && c->nwatches == 0 && c->out_len == 0 && c->in_len == 0
        && now - c->last_io >= idle) {
        snprintf(why, sizeof(why), "idle for %u s", elapsed(now - c->last_io));
        dkv_conn_close(c, DKV_LOG_DEBUG, why);
        return;
    }
    if (req > 0 && c->inflight > 0 && !c->stall_logged
        && now - c->answer_wait >= req) {
        c->stall_logged = 1;
        dkv_log(DKV_LOG_WARN, "client %s (conn %llu): %u request(s) in "
                "flight and no answer for %u s (request timeout)", c->peer,
                (unsigned long long)c->id, c->inflight,
                elapsed(now - c->answer_wait));
    }
}

/* ------------------------------------------------------------- lifecycle */

/* Whether the peer of SOCK, whose address is PEER_IP, connected from the
 * address it connected to: only a process of this machine can (the
 * kernel routes packets to its own addresses locally). */
static int
is_own_address(apr_socket_t *sock, const char *peer_ip)
{
    apr_sockaddr_t *la;
    char ip[64];

    if (apr_socket_addr_get(&la, APR_LOCAL, sock) != APR_SUCCESS
        || la == NULL
        || apr_sockaddr_ip_getbuf(ip, sizeof(ip), la) != APR_SUCCESS) {
        return 0;
    }
    return strcmp(ip, peer_ip) == 0;
}

/* Whether SA is a loopback address: 127.0.0.0/8, ::1, ::ffff:127.x. */
static int
is_loopback(const apr_sockaddr_t *sa)
{
    const unsigned char *a = sa->ipaddr_ptr;

    if (a == NULL) {
        return 0;
    }
    if (sa->family == APR_INET && sa->ipaddr_len == 4) {
        return a[0] == 127;
    }
#if APR_HAVE_IPV6
    if (sa->family == APR_INET6 && sa->ipaddr_len == 16) {
        static const unsigned char zero[10];

        if (memcmp(a, zero, 10) != 0) {
            return 0;
        }
        if (a[10] == 0 && a[11] == 0 && a[12] == 0 && a[13] == 0
            && a[14] == 0 && a[15] == 1) {
            return 1;
        }
        return a[10] == 0xff && a[11] == 0xff && a[12] == 127;
    }
#endif
    return 0;
}

/* See conn.h. */
dkv_status_t
dkv_conn_open(dkv_node_t *node, apr_socket_t *sock, apr_pool_t *pool)
{
    apr_sockaddr_t *sa = NULL;
    dkv_conn_t *c;
    apr_status_t rv;

    c = apr_pcalloc(pool, sizeof(*c));
    c->node = node;
    c->pool = pool;
    c->sock = sock;
    c->id = ++node->next_id;
    c->state = DKV_CONN_HELLO;
    c->window = WINDOW_START;
    c->created = node->now;
    c->last_io = node->now;
    apr_socket_opt_set(sock, APR_SO_NONBLOCK, 1);
    apr_socket_timeout_set(sock, 0);
    apr_socket_opt_set(sock, APR_TCP_NODELAY, 1);
    if (apr_socket_addr_get(&sa, APR_REMOTE, sock) == APR_SUCCESS
        && sa != NULL) {
        apr_sockaddr_ip_getbuf(c->ip, sizeof(c->ip), sa);
        snprintf(c->peer, sizeof(c->peer),
                 strchr(c->ip, ':') ? "[%s]:%u" : "%s:%u", c->ip,
                 (unsigned)sa->port);
        c->loopback = is_loopback(sa);
        c->local = c->loopback || is_own_address(sock, c->ip);
    } else {
        apr_cpystrn(c->ip, "?", sizeof(c->ip));
        apr_cpystrn(c->peer, "?", sizeof(c->peer));
    }
    c->pfd.p = pool;
    c->pfd.desc_type = APR_POLL_SOCKET;
    c->pfd.desc.s = sock;
    c->pfd.client_data = c;

    apr_thread_mutex_lock(node->lock);
    apr_hash_set(node->conns, &c->id, sizeof(c->id), c);
    apr_thread_mutex_unlock(node->lock);
    c->next = node->all;
    if (node->all != NULL) {
        node->all->prev = c;
    }
    node->all = c;
    node->nconns++;
    if (node->service != NULL) {
        dkv_service_set_connections(node->service, node->nconns);
    }

    c->reading = 1;
    rv = dkv_node_poll_set(node, c, APR_POLLIN);
    if (rv != APR_SUCCESS) {
        char err[120];

        dkv_conn_close(c, DKV_LOG_ERROR,
                       apr_psprintf(pool, "pollset: %s",
                                    apr_strerror(rv, err, sizeof(err))));
        return rv;
    }
    dkv_log(DKV_LOG_DEBUG, "accepted client %s as conn %llu", c->peer,
            (unsigned long long)c->id);
    return DKV_OK;
}

/* See conn.h. */
void
dkv_conn_shutdown(dkv_conn_t *c)
{
    if (c->dead) {
        return;
    }
    if (c->state == DKV_CONN_HELLO) {
        dkv_conn_close(c, DKV_LOG_DEBUG, "node shutting down");
        return;
    }
    c->in_len = 0;
    c->in_need = 0;
    c->frame_started = 0;
    update_events(c);
}

/* See conn.h. */
int
dkv_conn_busy(const dkv_conn_t *c)
{
    return !c->dead && (c->inflight > 0 || c->nwatches > 0
                        || c->out_len > 0);
}

/* See conn.h. */
void
dkv_conn_close(dkv_conn_t *c, int level, const char *why)
{
    dkv_node_t *node = c->node;

    if (c->dead) {
        return;
    }
    if (why != NULL) {
        dkv_log((dkv_log_level_t)level, "closed client %s (conn %llu%s%s):"
                " %s", c->peer, (unsigned long long)c->id,
                c->client[0] ? ", " : "", c->client, why);
    }
    if (c->events != 0) {
        (void)dkv_node_poll_set(node, c, 0);
    }
    apr_thread_mutex_lock(node->lock);
    apr_hash_set(node->conns, &c->id, sizeof(c->id), NULL);
    apr_thread_mutex_unlock(node->lock);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        node->all = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
    node->nconns--;
    if (node->service != NULL) {
        dkv_service_set_connections(node->service, node->nconns);
    }
    if (c->authed && node->service != NULL) {
        dkv_service_conn_closed(node->service, c->id);
    }
    apr_socket_close(c->sock);
    c->dead = 1;
    c->dead_next = node->dead;
    node->dead = c;
}

/* See conn.h. */
void
dkv_conn_free(dkv_conn_t *c)
{
    dkv_outq_t *item, *next;

    for (item = c->out_head; item != NULL; item = next) {
        next = item->next;
        outq_free(item);
    }
    dkv_free(c->in);
    dkv_free(c->watches);
    apr_pool_destroy(c->pool);
}
