/*
 * remote.c -- the remote backend ("dkv://HOST:PORT[,HOST:PORT...]/STORE"):
 * the public API over the client protocol (docs/protocol.md) to dkv-node,
 * with the codec of src/common/proto.h.
 *
 * Connection.  A handle has at most one live TCP connection to one node,
 * shared by every thread: requests carry ids, any number of them may be in
 * flight at once (pipelining), and the answers may come back in any
 * order.  A caller encodes its request, registers a call (id -> a
 * condition variable of its own, from a free list) and writes the frame
 * under the connection's write mutex; the connection's reader thread
 * reads frames and hands each response to its call, and each EVENT frame
 * to the dispatcher.  dkv_open makes the first connection; after a
 * connection breaks, the next request reconnects (lazily), trying the
 * endpoint list.  A failed round of connections backs off (50 ms,
 * doubling to 2 s): until the next attempt is due, requests fail at once
 * with DKV_EUNAVAILABLE instead of piling up.
 *
 * Endpoints.  The list starts as the address's seed list.  Right after
 * each handshake the client sends MEMBERS without waiting for it; when
 * the answer comes (the reader takes it), the client endpoints of the
 * store's other members are added after the seeds (no duplicates, at
 * most RM_MAX_ENDPOINTS in all; never removed).  A node that does not
 * know MEMBERS answers ENOTIMPL and the list stays as it is.  dkv_open's
 * round tries the list in order; a reconnection's round starts after the
 * endpoint of the last connection and ends with it, so a client moves on
 * from a node that died instead of waiting on it first every time.
 *
 * Outcomes.  A request that gets no answer within request_timeout_ms
 * fails with DKV_ETIMEOUT; one whose connection breaks while it is in
 * flight fails with DKV_ETRANSPORT (both: the outcome is unknown).  Reads
 * (and WATCH) are retried once on a fresh connection after
 * DKV_ETRANSPORT; writes only when not one byte of them was sent.  The
 * node's statuses and messages pass through unchanged, except that an
 * answer DKV_EUNAVAILABLE -- not applied: a store between leaders, a node
 * stopping -- is retried after a pause (doubling from 20 ms to 500 ms)
 * while the request's deadline allows; DKV_ETIMEOUT (outcome unknown) is
 * never retried.  With serializable_reads, the
 * reads carry the request header flag DKV_PROTO_FLAG_SERIALIZABLE.
 *
 * Watches.  One dispatcher thread per handle runs the callbacks, one at a
 * time, in the order the frames arrived (revision order per watch).  Each
 * watch remembers the last revision it delivered; when its connection
 * breaks, or the node drops it with an EUNAVAILABLE error event (slow
 * consumer, shutdown), the dispatcher re-issues WATCH with start_revision
 * = last + 1 on the current (or a new) connection, retrying with backoff,
 * and skips any event at or below the last revision: nothing is lost or
 * repeated while the node's history retains the changes; ECOMPACTED (or
 * another refusal) ends the watch with a DKV_EVENT_ERROR event.
 *
 * Locks.  One mutex (LOCK) guards the state: connection pointer, calls,
 * watches, the event queue, the endpoint list.  Connecting is serialized
 * by CONNECT_LOCK, always taken before LOCK, never while holding it;
 * socket writes by the connection's WLOCK.  The state's pools use an
 * allocator of their own with a mutex, so threads may create subpools
 * concurrently.
 *
 * Close.  dkv_close fails the calls in flight with DKV_ECLOSED, stops the
 * dispatcher (no callback after it returns), waits for the callers still
 * inside the backend, shuts the sockets and joins the reader threads.
 */
#include <string.h>

#include <apr_allocator.h>
#include <apr_hash.h>
#include <apr_network_io.h>
#include <apr_portable.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "common/alloc.h"
#include "common/proto.h"
#include "common/status.h"
#include "client/client.h"
#include "client/remote.h"
#include "platform/platform.h"

#define RM_DEFAULT_CONNECT_MS 5000
#define RM_DEFAULT_REQUEST_MS 10000
#define RM_BACKOFF_MIN apr_time_from_msec(50)
#define RM_BACKOFF_MAX apr_time_from_msec(2000)
#define RM_MAX_ENDPOINTS 64
#define RM_MAX_STORE 255
#define RM_MAX_HOST 255
/* The reader's buffer; larger frames get one allocation each. */
#define RM_RBUF 65536
/* How long the reader sleeps in one receive before it checks for close. */
#define RM_READ_SLICE apr_time_from_msec(500)

typedef struct remote remote_t;
typedef struct rm_conn rm_conn_t;

typedef struct rm_endpoint {
    char *host;
    apr_port_t port;
} rm_endpoint_t;

/* A condition variable a waiting caller borrows. */
typedef struct rm_waiter {
    struct rm_waiter *next;
    apr_thread_cond_t *cond;
} rm_waiter_t;

struct rm_watch;

/* A request in flight (on the caller's stack, registered in calls). */
typedef struct rm_call {
    uint64_t id;
    rm_conn_t *conn;
    rm_waiter_t *waiter;
    int done;
    dkv_status_t status;       /* DKV_OK: BUF holds the response frame */
    unsigned char *buf;        /* dkv_malloc */
    size_t len;
} rm_call_t;

struct rm_conn {
    rm_conn_t *next;           /* on the dead list */
    remote_t *rm;
    apr_pool_t *pool;
    apr_socket_t *sock;
    apr_thread_mutex_t *wlock;
    apr_thread_t *reader;
    char *peer;                /* "host:port" */
    int dead;                  /* under rm->lock */
    int refs;                  /* senders using it; under rm->lock */
    char why[160];             /* why it died; under rm->lock */
    uint32_t in_limit;         /* largest frame accepted from the node */
    uint64_t members_id;       /* id of its MEMBERS request (0: none) */
};

/* An EVENT frame waiting for the dispatcher. */
typedef struct rm_evq {
    struct rm_evq *next;
    uint64_t id;
    unsigned char *buf;
    size_t len;
} rm_evq_t;

typedef struct rm_watch {
    struct dkv_watch pub;      /* first: what the application holds */
    struct rm_watch *next;
    remote_t *rm;
    dkv_watch_cb_t *callback;
    void *baton;
    int prefix;
    uint64_t wire_id;          /* id of its WATCH on the wire; 0: none */
    rm_conn_t *conn;           /* the connection it lives on */
    uint64_t last_rev;         /* last revision delivered */
    int started;               /* its first WATCH was answered OK */
    int in_snapshot;           /* its initial snapshot is still coming
                                * (until an EVENT frame with
                                * SNAPSHOT_DONE): it cannot be resumed */
    int need_resume;
    int running;
    int stopped;
    int waiters;
    int ended;
    size_t key_len;
    unsigned char *key;        /* follows the struct */
} rm_watch_t;

struct remote {
    dkv_client_t *client;
    apr_pool_t *pool;          /* own allocator, with a mutex */
    apr_pool_t *wpool;         /* waiters' conditions; under lock */
    rm_endpoint_t *eps;        /* RM_MAX_ENDPOINTS slots; under lock */
    int neps;                  /* in use: the seeds, then discovered */
    int ep_last;               /* index of the last connection's; -1 */
    apr_pool_t *eppool;        /* discovered hosts; under lock */
    int serializable;          /* serializable_reads */
    char *address;
    char *store;
    char *token;               /* dkv_malloc; wiped at close */
    size_t token_len;
    char *client_name;
    apr_interval_time_t connect_timeout;
    apr_interval_time_t request_timeout;

    apr_thread_mutex_t *lock;
    apr_thread_mutex_t *connect_lock;
    rm_conn_t *conn;           /* live connection, or NULL */
    rm_conn_t *dead;           /* broken ones, to join and free */
    apr_hash_t *calls;         /* id -> rm_call_t */
    rm_waiter_t *free_waiters;
    uint64_t next_id;
    uint32_t max_frame;
    uint32_t max_value;
    apr_time_t next_try;       /* no connection attempt before */
    apr_interval_time_t backoff;
    dkv_status_t fail_status;  /* of the last failed round */
    char fail_msg[DKV_ERROR_MAX + 1];
    int active;                /* callers inside the backend */
    apr_thread_cond_t *drained;
    int closing;

    /* Dispatcher (under lock). */
    apr_thread_cond_t *dcond;
    apr_thread_cond_t *idle;
    rm_evq_t *qhead, *qtail;
    rm_watch_t *watches;
    int dstop;
    int disp_started;
    apr_os_thread_t disp_id;
    apr_thread_t *disp;
    apr_pool_t *dpool;         /* the dispatcher's decode pool */
};

/* ===================================================== address parsing */

static dkv_status_t
bad_address(const char *address, const char *why)
{
    return dkv_error_set(DKV_EINVAL, "dkv_open: \"%.120s\": %s (expected"
                         " dkv://HOST:PORT[,HOST:PORT...]/STORE)", address,
                         why);
}

static int
host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* Parses "HOST:PORT" or "[V6]:PORT" (S, LEN bytes) into EP. */
static dkv_status_t
parse_endpoint(rm_endpoint_t *ep, const char *s, size_t len,
               const char *address, apr_pool_t *pool)
{
    const char *host, *port;
    size_t host_len, port_len, i;
    unsigned long p = 0;

    if (len == 0) {
        return bad_address(address, "an endpoint is empty");
    }
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);

        if (close == NULL) {
            return bad_address(address, "an IPv6 address lacks its ']'");
        }
        host = s + 1;
        host_len = (size_t)(close - host);
        if (host_len == 0 || memchr(host, ':', host_len) == NULL) {
            return bad_address(address, "a bracketed host is not an IPv6"
                               " address");
        }
        for (i = 0; i < host_len; i++) {
            char c = host[i];

            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
                  || (c >= 'A' && c <= 'F') || c == ':' || c == '.'
                  || c == '%')) {
                return bad_address(address, "a bracketed IPv6 address has"
                                   " a bad character");
            }
        }
        if ((size_t)(close - s) + 1 >= len || close[1] != ':') {
            return bad_address(address, "an endpoint has no :PORT");
        }
        port = close + 2;
    }
    else {
        const char *colon = memchr(s, ':', len);

        if (colon == NULL) {
            return bad_address(address, "an endpoint has no :PORT");
        }
        if (memchr(colon + 1, ':', len - (size_t)(colon + 1 - s))
            != NULL) {
            return bad_address(address, "an endpoint has two ':' (write"
                               " IPv6 addresses in brackets)");
        }
        host = s;
        host_len = (size_t)(colon - s);
        if (host_len == 0) {
            return bad_address(address, "an endpoint has no host");
        }
        for (i = 0; i < host_len; i++) {
            if (!host_char_ok(host[i])) {
                return bad_address(address, "a host name has a bad"
                                   " character");
            }
        }
        port = colon + 1;
    }
    if (host_len > RM_MAX_HOST) {
        return bad_address(address, "a host name is too long");
    }
    port_len = len - (size_t)(port - s);
    if (port_len == 0 || port_len > 5) {
        return bad_address(address, "a port is missing or too long");
    }
    for (i = 0; i < port_len; i++) {
        if (port[i] < '0' || port[i] > '9') {
            return bad_address(address, "a port is not a number");
        }
        p = p * 10 + (unsigned long)(port[i] - '0');
    }
    if (p == 0 || p > 65535) {
        return bad_address(address, "a port is outside 1..65535");
    }
    ep->host = apr_pstrmemdup(pool, host, host_len);
    ep->port = (apr_port_t)p;
    return DKV_OK;
}

/* See remote.h. */
dkv_status_t
dkv_remote_parse(dkv_remote_addr_t *out, const char *address,
                 apr_pool_t *pool)
{
    const char *rest, *slash, *s, *end;
    rm_endpoint_t *eps;
    size_t i, store_len;
    int n = 0;
    dkv_status_t rv;

    memset(out, 0, sizeof(*out));
    if (strncmp(address, "dkv://", 6) != 0) {
        return bad_address(address, "not a dkv:// address");
    }
    rest = address + 6;
    slash = strchr(rest, '/');
    if (slash == NULL) {
        return bad_address(address, "no /STORE");
    }
    store_len = strlen(slash + 1);
    if (store_len == 0) {
        return bad_address(address, "the store name is empty");
    }
    if (store_len > RM_MAX_STORE) {
        return bad_address(address, "the store name is too long");
    }
    for (i = 0; i < store_len; i++) {
        unsigned char c = (unsigned char)slash[1 + i];

        if (c < 0x20 || c == 0x7f || c == '/') {
            return bad_address(address, "the store name has a bad"
                               " character");
        }
    }
    eps = apr_pcalloc(pool, RM_MAX_ENDPOINTS * sizeof(*eps));
    s = rest;
    for (;;) {
        end = s;
        while (end < slash && *end != ',') {
            end++;
        }
        if (n == RM_MAX_ENDPOINTS) {
            return bad_address(address, "too many endpoints (at most 64)");
        }
        rv = parse_endpoint(&eps[n], s, (size_t)(end - s), address, pool);
        if (rv != DKV_OK) {
            return rv;
        }
        n++;
        if (end == slash) {
            break;
        }
        s = end + 1;
    }
    out->hosts = apr_palloc(pool, (size_t)n * sizeof(*out->hosts));
    out->ports = apr_palloc(pool, (size_t)n * sizeof(*out->ports));
    for (i = 0; i < (size_t)n; i++) {
        out->hosts[i] = eps[i].host;
        out->ports[i] = eps[i].port;
    }
    out->count = n;
    out->store = apr_pstrdup(pool, slash + 1);
    return DKV_OK;
}

/* ============================================================ waiters */

/* A waiter from the free list or a new one; lock held. */
static rm_waiter_t *
waiter_get(remote_t *rm)
{
    rm_waiter_t *w = rm->free_waiters;

    if (w != NULL) {
        rm->free_waiters = w->next;
        return w;
    }
    w = apr_pcalloc(rm->wpool, sizeof(*w));
    if (apr_thread_cond_create(&w->cond, rm->wpool) != APR_SUCCESS) {
        return NULL;
    }
    return w;
}

static void
waiter_put(remote_t *rm, rm_waiter_t *w)
{
    w->next = rm->free_waiters;
    rm->free_waiters = w;
}

/* ========================================================= socket I/O */

/* Sends LEN bytes; *SENT counts what went out. */
static apr_status_t
send_all(apr_socket_t *sock, const unsigned char *data, size_t len,
         size_t *sent)
{
    *sent = 0;
    while (*sent < len) {
        apr_size_t n = len - *sent;
        apr_status_t rv = apr_socket_send(sock, (const char *)data + *sent,
                                          &n);

        *sent += n;
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

/* Receives exactly LEN bytes (the socket's timeout applies per call). */
static apr_status_t
recv_all(apr_socket_t *sock, unsigned char *data, size_t len)
{
    size_t got = 0;

    while (got < len) {
        apr_size_t n = len - got;
        apr_status_t rv = apr_socket_recv(sock, (char *)data + got, &n);

        got += n;
        if (rv != APR_SUCCESS && !(rv == APR_EOF && got == len)) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

/* Reads one whole frame synchronously (the handshake's answer) into a
 * dkv_malloc buffer. */
static dkv_status_t
read_frame_sync(unsigned char **buf, size_t *len, apr_socket_t *sock,
                uint32_t limit)
{
    unsigned char head[DKV_PROTO_HEADER];
    dkv_frame_t f;
    size_t size = 0;
    unsigned char *b;
    dkv_status_t rv;

    rv = recv_all(sock, head, sizeof(head));
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = dkv_proto_frame_parse(&f, &size, head, sizeof(head), limit);
    if (rv != DKV_OK && rv != APR_INCOMPLETE) {
        return rv;
    }
    b = dkv_malloc(size);
    if (b == NULL) {
        return APR_ENOMEM;
    }
    memcpy(b, head, sizeof(head));
    rv = recv_all(sock, b + sizeof(head), size - sizeof(head));
    if (rv != APR_SUCCESS) {
        dkv_free(b);
        return rv;
    }
    *buf = b;
    *len = size;
    return DKV_OK;
}

/* ========================================================= connections */

static void dispatcher_wake(remote_t *rm);
static void send_cancel(remote_t *rm, rm_conn_t *conn, uint64_t id);

/* Marks CONN broken: fails its calls with DKV_ETRANSPORT, marks its
 * watches for resumption and wakes the reader; lock held. */
static void
conn_break(remote_t *rm, rm_conn_t *conn, const char *why)
{
    apr_hash_index_t *hi;
    rm_watch_t *w;

    if (conn->dead) {
        return;
    }
    conn->dead = 1;
    apr_cpystrn(conn->why, why, sizeof(conn->why));
    if (rm->conn == conn) {
        rm->conn = NULL;
    }
    for (hi = apr_hash_first(NULL, rm->calls); hi != NULL;
         hi = apr_hash_next(hi)) {
        void *v;
        rm_call_t *call;

        apr_hash_this(hi, NULL, NULL, &v);
        call = v;
        if (call->conn == conn && !call->done) {
            call->done = 1;
            call->status = DKV_ETRANSPORT;
            apr_hash_set(rm->calls, &call->id, sizeof(call->id), NULL);
            apr_thread_cond_signal(call->waiter->cond);
        }
    }
    for (w = rm->watches; w != NULL; w = w->next) {
        if (w->conn == conn) {
            w->conn = NULL;
            if (!w->stopped && !w->ended) {
                w->need_resume = 1;
            }
        }
    }
    conn->next = rm->dead;
    rm->dead = conn;
    /* Wakes the reader; the socket itself closes with the pool. */
    apr_socket_shutdown(conn->sock, APR_SHUTDOWN_READWRITE);
    dispatcher_wake(rm);
}

/* Joins and frees the dead connections nobody uses.  Called with neither
 * lock held (CONNECT_LOCK may be). */
static void
reap_conns(remote_t *rm, int all)
{
    rm_conn_t *keep = NULL, *gone = NULL, *c, *next;
    apr_status_t ignored;

    apr_thread_mutex_lock(rm->lock);
    for (c = rm->dead; c != NULL; c = next) {
        next = c->next;
        if (c->refs == 0 || all) {
            c->next = gone;
            gone = c;
        }
        else {
            c->next = keep;
            keep = c;
        }
    }
    rm->dead = keep;
    apr_thread_mutex_unlock(rm->lock);
    for (c = gone; c != NULL; c = next) {
        next = c->next;
        if (c->reader != NULL) {
            apr_thread_join(&ignored, c->reader);
        }
        apr_pool_destroy(c->pool);
    }
}

/* 1 when HOST (from a MEMBERS answer) is a name or an IP address this
 * client may connect to: the characters an address may hold, and not a
 * wildcard address. */
static int
member_host_ok(const char *host)
{
    size_t i, n = strlen(host);
    int v6 = strchr(host, ':') != NULL;

    if (n == 0 || n > RM_MAX_HOST || strcmp(host, "0.0.0.0") == 0
        || strcmp(host, "::") == 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        char c = host[i];

        if (v6 ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
                   || (c >= 'A' && c <= 'F') || c == ':' || c == '.'
                   || c == '%')
               : !host_char_ok(c)) {
            return 0;
        }
    }
    return 1;
}

/* ASCII case-insensitive equality of two host names. */
static int
same_host(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = *a, y = *b;

        if (x >= 'A' && x <= 'Z') {
            x = (char)(x - 'A' + 'a');
        }
        if (y >= 'A' && y <= 'Z') {
            y = (char)(y - 'A' + 'a');
        }
        if (x != y) {
            return 0;
        }
    }
    return *a == *b;
}

/* Adds HOST:PORT to the endpoint list unless it is there or the list is
 * full; lock held. */
static void
endpoint_add(remote_t *rm, const char *host, apr_port_t port)
{
    int i;

    for (i = 0; i < rm->neps; i++) {
        if (rm->eps[i].port == port && same_host(rm->eps[i].host, host)) {
            return;
        }
    }
    if (rm->neps == RM_MAX_ENDPOINTS) {
        return;
    }
    rm->eps[rm->neps].host = apr_pstrdup(rm->eppool, host);
    rm->eps[rm->neps].port = port;
    rm->neps++;
}

/* The answer F to CONN's MEMBERS: merges the other members'
 * client endpoints into the list.  A refusal (ENOTIMPL from a node that
 * does not know MEMBERS) or a malformed answer changes nothing. */
static void
members_answer(rm_conn_t *conn, const dkv_frame_t *f)
{
    remote_t *rm = conn->rm;
    dkv_response_t res;
    apr_pool_t *p;
    size_t i;

    if (apr_pool_create(&p, conn->pool) != APR_SUCCESS) {
        return;
    }
    if (dkv_proto_response_decode(&res, f, p) == DKV_OK
        && res.op == DKV_MSG_MEMBERS && res.status == DKV_OK) {
        apr_thread_mutex_lock(rm->lock);
        for (i = 0; i < res.nmembers; i++) {
            const dkv_proto_member_t *m = &res.members[i];

            /* The node itself: the endpoint in use already reaches it. */
            if ((m->roles & DKV_PROTO_MEMBER_SELF) || m->port == 0
                || !member_host_ok(m->host)) {
                continue;
            }
            endpoint_add(rm, m->host, (apr_port_t)m->port);
        }
        apr_thread_mutex_unlock(rm->lock);
    }
    apr_pool_destroy(p);
    dkv_error_clear();
}

/* Hands a complete frame (BUF, LEN bytes, dkv_malloc; taken) from CONN's
 * reader to its call or to the dispatcher.  Returns 0 when the frame
 * breaks the connection (PROTOCOL_ERROR, unexpected op). */
static int
route_frame(rm_conn_t *conn, unsigned char *buf, size_t len,
            const dkv_frame_t *f)
{
    remote_t *rm = conn->rm;

    if (f->op == DKV_MSG_EVENT) {
        rm_evq_t *q = dkv_malloc(sizeof(*q));

        if (q == NULL) {
            dkv_free(buf);
            return 0;
        }
        q->next = NULL;
        q->id = f->id;
        q->buf = buf;
        q->len = len;
        apr_thread_mutex_lock(rm->lock);
        if (rm->dstop) {
            apr_thread_mutex_unlock(rm->lock);
            dkv_free(buf);
            dkv_free(q);
            return 1;
        }
        if (rm->qtail != NULL) {
            rm->qtail->next = q;
        }
        else {
            rm->qhead = q;
        }
        rm->qtail = q;
        apr_thread_cond_signal(rm->dcond);
        apr_thread_mutex_unlock(rm->lock);
        return 1;
    }
    if (f->op == (DKV_MSG_MEMBERS | DKV_PROTO_RESPONSE)
        && conn->members_id != 0 && f->id == conn->members_id) {
        members_answer(conn, f);
        dkv_free(buf);
        return 1;
    }
    if ((f->op & DKV_PROTO_RESPONSE) != 0) {
        rm_call_t *call;

        apr_thread_mutex_lock(rm->lock);
        call = apr_hash_get(rm->calls, &f->id, sizeof(f->id));
        if (call != NULL && call->conn == conn && !call->done) {
            call->done = 1;
            call->status = DKV_OK;
            call->buf = buf;
            call->len = len;
            apr_hash_set(rm->calls, &call->id, sizeof(call->id), NULL);
            apr_thread_cond_signal(call->waiter->cond);
            buf = NULL;
        }
        apr_thread_mutex_unlock(rm->lock);
        /* Else a late answer to a request that timed out: dropped. */
        dkv_free(buf);
        return 1;
    }
    if (f->op == DKV_MSG_PROTOCOL_ERROR) {
        dkv_response_t res;
        apr_pool_t *p;
        char why[160];

        apr_cpystrn(why, "the node reported a protocol error",
                    sizeof(why));
        if (apr_pool_create(&p, conn->pool) == APR_SUCCESS) {
            if (dkv_proto_response_decode(&res, f, p) == DKV_OK) {
                apr_snprintf(why, sizeof(why), "protocol error: %s",
                             res.message);
            }
            apr_pool_destroy(p);
        }
        apr_thread_mutex_lock(rm->lock);
        conn_break(rm, conn, why);
        apr_thread_mutex_unlock(rm->lock);
        dkv_free(buf);
        return 0;
    }
    dkv_free(buf);
    apr_thread_mutex_lock(rm->lock);
    conn_break(rm, conn, "the node sent a frame of an unknown kind");
    apr_thread_mutex_unlock(rm->lock);
    return 0;
}

static void *APR_THREAD_FUNC
reader_main(apr_thread_t *thread, void *data)
{
    rm_conn_t *conn = data;
    remote_t *rm = conn->rm;
    unsigned char *rbuf = dkv_malloc(RM_RBUF);
    size_t have = 0;
    char why[160];
    apr_status_t rv;

    (void)thread;
    apr_cpystrn(why, "out of memory", sizeof(why));
    if (rbuf == NULL) {
        goto broken;
    }
    for (;;) {
        dkv_frame_t f;
        size_t size = 0;
        apr_size_t n;
        int dead;

        rv = dkv_proto_frame_parse(&f, &size, rbuf, have, conn->in_limit);
        if (rv == DKV_OK) {
            unsigned char *copy = dkv_malloc(size);

            if (copy == NULL) {
                goto broken;
            }
            memcpy(copy, rbuf, size);
            (void)dkv_proto_frame_parse(&f, &size, copy, size,
                                        conn->in_limit);
            memmove(rbuf, rbuf + size, have - size);
            have -= size;
            if (!route_frame(conn, copy, size, &f)) {
                break;
            }
            continue;
        }
        if (rv != APR_INCOMPLETE) {
            apr_snprintf(why, sizeof(why), "bad frame from the node: %s",
                         dkv_last_error());
            goto broken;
        }
        if (size > RM_RBUF) {
            /* A large frame: read the rest straight into its buffer. */
            unsigned char *big = dkv_malloc(size);

            if (big == NULL) {
                goto broken;
            }
            memcpy(big, rbuf, have);
            rv = APR_SUCCESS;
            while (have < size) {
                n = size - have;
                rv = apr_socket_recv(conn->sock, (char *)big + have, &n);
                have += n;
                if (rv == APR_SUCCESS
                    || (n > 0 && APR_STATUS_IS_TIMEUP(rv))) {
                    rv = APR_SUCCESS;
                    continue;
                }
                if (!APR_STATUS_IS_TIMEUP(rv)) {
                    break;
                }
                apr_thread_mutex_lock(rm->lock);
                dead = conn->dead;
                apr_thread_mutex_unlock(rm->lock);
                if (dead) {
                    break;
                }
                rv = APR_SUCCESS;
            }
            if (rv != APR_SUCCESS) {
                dkv_free(big);
                apr_snprintf(why, sizeof(why), "reading from the node: %s",
                             dkv_strerror(rv));
                goto broken;
            }
            have = 0;
            (void)dkv_proto_frame_parse(&f, &size, big, size,
                                        conn->in_limit);
            if (!route_frame(conn, big, size, &f)) {
                break;
            }
            continue;
        }
        n = RM_RBUF - have;
        rv = apr_socket_recv(conn->sock, (char *)rbuf + have, &n);
        have += n;
        if (rv == APR_SUCCESS || (n > 0 && APR_STATUS_IS_TIMEUP(rv))) {
            continue;
        }
        if (APR_STATUS_IS_TIMEUP(rv)) {
            apr_thread_mutex_lock(rm->lock);
            dead = conn->dead;
            apr_thread_mutex_unlock(rm->lock);
            if (dead) {
                break;
            }
            continue;
        }
        if (rv == APR_EOF) {
            apr_cpystrn(why, "the node closed the connection", sizeof(why));
        }
        else {
            apr_snprintf(why, sizeof(why), "reading from the node: %s",
                         dkv_strerror(rv));
        }
        goto broken;
    }
    dkv_free(rbuf);
    dkv_error_clear();
    return NULL;

broken:
    dkv_free(rbuf);
    apr_thread_mutex_lock(rm->lock);
    conn_break(rm, conn, why);
    apr_thread_mutex_unlock(rm->lock);
    dkv_error_clear();
    return NULL;
}

/* Why one endpoint failed. */
typedef struct ep_fail {
    dkv_status_t status;
    int hard;                  /* a refusal no other endpoint will undo */
    int handshake_timeout;     /* it accepted but never answered HELLO */
    char msg[DKV_ERROR_MAX + 1];
} ep_fail_t;

/* Connects to EP and runs the handshake.  On success *CONN is the new
 * connection (reader running); else FAIL says why. */
static dkv_status_t
connect_one(remote_t *rm, const rm_endpoint_t *ep, rm_conn_t **conn,
            ep_fail_t *fail)
{
    apr_pool_t *cp;
    apr_sockaddr_t *sa;
    apr_socket_t *sock = NULL;
    dkv_request_t req;
    dkv_response_t res;
    dkv_wbuf_t wb;
    dkv_frame_t f;
    unsigned char *buf = NULL;
    size_t len = 0, sent, size;
    rm_conn_t *c;
    char *peer;
    dkv_status_t rv;

    memset(fail, 0, sizeof(*fail));
    rv = apr_pool_create(&cp, rm->pool);
    if (rv != APR_SUCCESS) {
        fail->status = rv;
        apr_cpystrn(fail->msg, "out of memory", sizeof(fail->msg));
        return rv;
    }
    peer = strchr(ep->host, ':') != NULL
           ? apr_psprintf(cp, "[%s]:%u", ep->host, (unsigned)ep->port)
           : apr_psprintf(cp, "%s:%u", ep->host, (unsigned)ep->port);
    rv = apr_sockaddr_info_get(&sa, ep->host, APR_UNSPEC, ep->port, 0, cp);
    if (rv != APR_SUCCESS) {
        apr_snprintf(fail->msg, sizeof(fail->msg), "%s: cannot resolve"
                     " the host: %s", peer, dkv_strerror(rv));
        goto failed;
    }
    for (; sa != NULL; sa = sa->next) {
        rv = apr_socket_create(&sock, sa->family, SOCK_STREAM,
                               APR_PROTO_TCP, cp);
        if (rv != APR_SUCCESS) {
            sock = NULL;
            continue;
        }
        apr_socket_opt_set(sock, APR_TCP_NODELAY, 1);
        rv = dkv_plat_connect(sock, sa, rm->connect_timeout);
        if (rv == APR_SUCCESS) {
            break;
        }
        apr_socket_close(sock);
        sock = NULL;
    }
    if (sock == NULL) {
        apr_snprintf(fail->msg, sizeof(fail->msg), "%s: %s", peer,
                     APR_STATUS_IS_TIMEUP(rv) ? "connection timed out"
                                              : dkv_strerror(rv));
        goto failed;
    }

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_HELLO;
    req.magic = DKV_PROTO_MAGIC;
    req.min_version = DKV_PROTO_VERSION;
    req.max_version = DKV_PROTO_VERSION;
    req.store = rm->store;
    req.token = rm->token;
    req.token_len = rm->token_len;
    req.client = rm->client_name;
    dkv_wbuf_init(&wb, 0);
    rv = dkv_proto_request_encode(&wb, &req);
    if (rv == DKV_OK) {
        rv = send_all(sock, wb.data, wb.len, &sent);
    }
    dkv_wbuf_free(&wb);
    if (rv == DKV_OK) {
        rv = read_frame_sync(&buf, &len, sock, DKV_PROTO_DEFAULT_FRAME);
    }
    if (rv != DKV_OK) {
        fail->handshake_timeout = APR_STATUS_IS_TIMEUP(rv);
        apr_snprintf(fail->msg, sizeof(fail->msg), "%s: handshake: %s",
                     peer, fail->handshake_timeout
                     ? "no answer in time" : rv == APR_EOF
                     ? "the node closed the connection" : dkv_strerror(rv));
        goto failed;
    }
    (void)dkv_proto_frame_parse(&f, &size, buf, len, DKV_PROTO_DEFAULT_FRAME);
    rv = dkv_proto_response_decode(&res, &f, cp);
    if (rv != DKV_OK || (res.op != DKV_MSG_HELLO
                         && res.op != DKV_MSG_PROTOCOL_ERROR)) {
        apr_snprintf(fail->msg, sizeof(fail->msg), "%s: the answer to"
                     " HELLO is not a HELLO response", peer);
        rv = DKV_ETRANSPORT;
        goto failed;
    }
    if (res.op == DKV_MSG_PROTOCOL_ERROR && res.status == DKV_OK) {
        res.status = DKV_ETRANSPORT;
    }
    if (res.status != DKV_OK) {
        rv = res.status;
        fail->hard = rv == DKV_EUNAUTHORIZED || rv == DKV_EINVAL;
        apr_snprintf(fail->msg, sizeof(fail->msg), "%s refused the"
                     " connection: %s", peer,
                     res.message[0] ? res.message : dkv_strerror(rv));
        goto failed;
    }
    if (res.version != DKV_PROTO_VERSION
        || res.max_frame < DKV_PROTO_MIN_FRAME || res.store == NULL
        || strcmp(res.store, rm->store) != 0) {
        rv = DKV_EINVAL;
        fail->hard = 1;
        apr_snprintf(fail->msg, sizeof(fail->msg), "%s: the node serves"
                     " store \"%.64s\" (protocol %u), not \"%.64s\"", peer,
                     res.store ? res.store : "", (unsigned)res.version,
                     rm->store);
        goto failed;
    }
    dkv_free(buf);
    buf = NULL;

    c = apr_pcalloc(cp, sizeof(*c));
    c->rm = rm;
    c->pool = cp;
    c->sock = sock;
    c->peer = peer;
    c->in_limit = res.max_frame > DKV_PROTO_DEFAULT_FRAME
                  ? res.max_frame : DKV_PROTO_DEFAULT_FRAME;
    /* Sends may wait this long for room; the reader wakes as often. */
    apr_socket_timeout_set(sock, RM_READ_SLICE);
    rv = apr_thread_mutex_create(&c->wlock, APR_THREAD_MUTEX_DEFAULT, cp);
    if (rv == APR_SUCCESS) {
        apr_thread_mutex_lock(rm->lock);
        rm->max_frame = res.max_frame;
        rm->max_value = res.max_value;
        c->members_id = ++rm->next_id;
        apr_thread_mutex_unlock(rm->lock);
        /* MEMBERS, answered to the reader (members_answer). */
        memset(&req, 0, sizeof(req));
        req.op = DKV_MSG_MEMBERS;
        req.id = c->members_id;
        dkv_wbuf_init(&wb, 0);
        rv = dkv_proto_request_encode(&wb, &req);
        if (rv == DKV_OK) {
            rv = send_all(sock, wb.data, wb.len, &sent);
        }
        dkv_wbuf_free(&wb);
        if (rv != APR_SUCCESS) {
            apr_snprintf(fail->msg, sizeof(fail->msg), "%s: sending"
                         " MEMBERS: %s", peer, dkv_strerror(rv));
            goto failed;
        }
        rv = apr_thread_create(&c->reader, NULL, reader_main, c, cp);
    }
    if (rv != APR_SUCCESS) {
        apr_snprintf(fail->msg, sizeof(fail->msg), "cannot start the"
                     " connection's reader: %s", dkv_strerror(rv));
        goto failed;
    }
    *conn = c;
    return DKV_OK;

failed:
    dkv_free(buf);
    fail->status = rv;
    apr_pool_destroy(cp);      /* closes the socket */
    return rv;
}

/* One round over the endpoint list: in order from the first when no
 * connection was made yet, else from the one after the last connection's
 * (wrapping, that one last).  Returns DKV_OK with *CONN, or the round's
 * status with its message set (dkv_error_set). */
static dkv_status_t
connect_round(remote_t *rm, rm_conn_t **conn)
{
    ep_fail_t fail;
    char msg[DKV_ERROR_MAX + 1];
    size_t used = 0;
    int i, n, start, tried = 0, timeouts = 0;
    dkv_status_t rv = DKV_EUNAVAILABLE;

    msg[0] = '\0';
    reap_conns(rm, 0);
    apr_thread_mutex_lock(rm->lock);
    n = rm->neps;
    start = rm->ep_last + 1;
    apr_thread_mutex_unlock(rm->lock);
    for (i = 0; i < n; i++) {
        rm_endpoint_t ep;
        int at = (start + i) % n;

        if (rm->closing) {
            return dkv_error_set(DKV_ECLOSED, "the client is closing");
        }
        /* Hosts are never freed or changed: a copy of the slot will do. */
        apr_thread_mutex_lock(rm->lock);
        ep = rm->eps[at];
        apr_thread_mutex_unlock(rm->lock);
        tried++;
        if (connect_one(rm, &ep, conn, &fail) == DKV_OK) {
            apr_thread_mutex_lock(rm->lock);
            rm->ep_last = at;
            apr_thread_mutex_unlock(rm->lock);
            return DKV_OK;
        }
        if (fail.hard) {
            return dkv_error_set(fail.status, "%s", fail.msg);
        }
        timeouts += fail.handshake_timeout;
        if (used < sizeof(msg) - 1) {
            apr_snprintf(msg + used, sizeof(msg) - used, "%s%s",
                         used ? "; " : "", fail.msg);
            used = strlen(msg);
        }
    }
    if (timeouts == tried) {
        rv = DKV_ETIMEOUT;
    }
    return dkv_error_set(rv, "no endpoint of %.80s answered: %s",
                         rm->address, msg);
}

/* The live connection, with a reference taken, connecting when there is
 * none and the backoff allows. */
static dkv_status_t
get_conn(remote_t *rm, rm_conn_t **conn)
{
    rm_conn_t *c = NULL;
    dkv_status_t rv;
    apr_time_t now;

    apr_thread_mutex_lock(rm->lock);
    if (rm->closing) {
        apr_thread_mutex_unlock(rm->lock);
        return dkv_error_set(DKV_ECLOSED, "the client is closing");
    }
    if (rm->conn != NULL) {
        rm->conn->refs++;
        *conn = rm->conn;
        apr_thread_mutex_unlock(rm->lock);
        return DKV_OK;
    }
    apr_thread_mutex_unlock(rm->lock);

    apr_thread_mutex_lock(rm->connect_lock);
    apr_thread_mutex_lock(rm->lock);
    now = apr_time_now();
    if (rm->closing) {
        rv = dkv_error_set(DKV_ECLOSED, "the client is closing");
    }
    else if (rm->conn != NULL) {
        /* Another thread connected while we waited. */
        rm->conn->refs++;
        *conn = rm->conn;
        rv = DKV_OK;
    }
    else if (now < rm->next_try) {
        rv = dkv_error_set(rm->fail_status, "not connected (next attempt"
                           " in %ld ms): %s",
                           (long)apr_time_as_msec(rm->next_try - now),
                           rm->fail_msg);
    }
    else {
        apr_thread_mutex_unlock(rm->lock);
        rv = connect_round(rm, &c);
        apr_thread_mutex_lock(rm->lock);
        if (rv == DKV_OK && rm->closing) {
            rm->conn = c;
            conn_break(rm, c, "the client is closing");
            rv = dkv_error_set(DKV_ECLOSED, "the client is closing");
        }
        else if (rv == DKV_OK) {
            rm->conn = c;
            rm->backoff = 0;
            rm->next_try = 0;
            c->refs++;
            *conn = c;
        }
        else if (rv != DKV_ECLOSED) {
            if (rv != DKV_EUNAUTHORIZED && rv != DKV_EINVAL) {
                rv = DKV_EUNAVAILABLE;
            }
            rm->backoff = rm->backoff == 0 ? RM_BACKOFF_MIN
                          : rm->backoff * 2;
            if (rm->backoff > RM_BACKOFF_MAX) {
                rm->backoff = RM_BACKOFF_MAX;
            }
            rm->next_try = apr_time_now() + rm->backoff;
            rm->fail_status = rv;
            apr_cpystrn(rm->fail_msg, dkv_last_error(),
                        sizeof(rm->fail_msg));
            dkv_error_set(rv, "%s", rm->fail_msg);
        }
    }
    apr_thread_mutex_unlock(rm->lock);
    apr_thread_mutex_unlock(rm->connect_lock);
    return rv;
}

static void
put_conn(remote_t *rm, rm_conn_t *conn)
{
    apr_thread_mutex_lock(rm->lock);
    conn->refs--;
    apr_thread_mutex_unlock(rm->lock);
}

/* ============================================================ requests */

/* Enters the backend: DKV_ECLOSED once closing has begun. */
static dkv_status_t
rm_enter(remote_t *rm)
{
    apr_thread_mutex_lock(rm->lock);
    if (rm->closing) {
        apr_thread_mutex_unlock(rm->lock);
        return dkv_error_set(DKV_ECLOSED, "the client is closing");
    }
    rm->active++;
    apr_thread_mutex_unlock(rm->lock);
    return DKV_OK;
}

static void
rm_leave(remote_t *rm)
{
    apr_thread_mutex_lock(rm->lock);
    if (--rm->active == 0) {
        apr_thread_cond_broadcast(rm->drained);
    }
    apr_thread_mutex_unlock(rm->lock);
}

/* A decoded answer; release with reply_done. */
typedef struct rm_reply {
    dkv_response_t res;
    apr_pool_t *pool;          /* a subpool of the state's pool */
    unsigned char *buf;
    remote_t *entered;         /* leave this backend in reply_done */
} rm_reply_t;

static void
reply_clear(rm_reply_t *rp)
{
    if (rp->pool != NULL) {
        apr_pool_destroy(rp->pool);
        rp->pool = NULL;
    }
    dkv_free(rp->buf);
    rp->buf = NULL;
}

/* Frees RP and leaves the backend: after this, close may proceed. */
static void
reply_done(rm_reply_t *rp)
{
    reply_clear(rp);
    if (rp->entered != NULL) {
        rm_leave(rp->entered);
        rp->entered = NULL;
    }
}

/* Sends REQ once and waits for its answer until DEADLINE.  *SENT: 1 when
 * some of the request went out.  WATCH, when given, learns the request's
 * id and connection before the request leaves (its events may come
 * before the answer). */
static dkv_status_t
exchange(remote_t *rm, dkv_request_t *req, rm_reply_t *rp,
         apr_time_t deadline, int *sent, rm_watch_t *watch)
{
    rm_conn_t *conn = NULL;
    rm_call_t call;
    dkv_wbuf_t wb;
    dkv_frame_t f;
    size_t n = 0, size;
    uint32_t max_frame;
    dkv_status_t rv;

    *sent = 0;
    rv = get_conn(rm, &conn);
    if (rv != DKV_OK) {
        return rv;
    }
    memset(&call, 0, sizeof(call));
    apr_thread_mutex_lock(rm->lock);
    call.id = ++rm->next_id;
    call.conn = conn;
    call.waiter = waiter_get(rm);
    max_frame = rm->max_frame;
    if (call.waiter == NULL || conn->dead) {
        apr_thread_mutex_unlock(rm->lock);
        put_conn(rm, conn);
        return dkv_error_set(call.waiter ? DKV_ETRANSPORT : APR_ENOMEM,
                             "%s", call.waiter ? "the connection broke"
                                               : "out of memory");
    }
    apr_thread_mutex_unlock(rm->lock);

    req->id = call.id;
    dkv_wbuf_init(&wb, max_frame);
    rv = dkv_proto_request_encode(&wb, req);
    if (rv != DKV_OK) {
        dkv_wbuf_free(&wb);
        apr_thread_mutex_lock(rm->lock);
        waiter_put(rm, call.waiter);
        conn->refs--;
        apr_thread_mutex_unlock(rm->lock);
        if (rv == DKV_ETOOLARGE) {
            return dkv_error_set(rv, "the request is larger than the"
                                 " node's frame limit (%lu bytes)",
                                 (unsigned long)max_frame);
        }
        return rv;
    }

    apr_thread_mutex_lock(rm->lock);
    apr_hash_set(rm->calls, &call.id, sizeof(call.id), &call);
    if (watch != NULL) {
        watch->wire_id = call.id;
        watch->conn = conn;
        watch->need_resume = 0;
    }
    apr_thread_mutex_unlock(rm->lock);

    apr_thread_mutex_lock(conn->wlock);
    rv = send_all(conn->sock, wb.data, wb.len, &n);
    while (APR_STATUS_IS_TIMEUP(rv) && apr_time_now() < deadline) {
        /* The node is not reading: wait for room until the deadline. */
        size_t more = 0;

        rv = send_all(conn->sock, wb.data + n, wb.len - n, &more);
        n += more;
    }
    apr_thread_mutex_unlock(conn->wlock);
    dkv_wbuf_free(&wb);
    *sent = n > 0;

    apr_thread_mutex_lock(rm->lock);
    if (rv != APR_SUCCESS) {
        /* A partial frame desynchronizes the connection: break it. */
        char why[160];

        apr_snprintf(why, sizeof(why), "sending to the node: %s",
                     APR_STATUS_IS_TIMEUP(rv) ? "timed out"
                                              : dkv_strerror(rv));
        if (APR_STATUS_IS_TIMEUP(rv) && !call.done) {
            call.done = 1;
            call.status = DKV_ETIMEOUT;
            apr_hash_set(rm->calls, &call.id, sizeof(call.id), NULL);
        }
        conn_break(rm, conn, why);
    }
    while (!call.done) {
        apr_time_t now = apr_time_now();

        if (now >= deadline) {
            call.done = 1;
            call.status = DKV_ETIMEOUT;
            apr_hash_set(rm->calls, &call.id, sizeof(call.id), NULL);
            break;
        }
        apr_thread_cond_timedwait(call.waiter->cond, rm->lock,
                                  deadline - now);
    }
    apr_hash_set(rm->calls, &call.id, sizeof(call.id), NULL);
    waiter_put(rm, call.waiter);
    rv = call.status;
    if (rv == DKV_ETRANSPORT) {
        rv = dkv_error_set(rv, "the connection to %s broke (%s); the"
                           " outcome is unknown", conn->peer, conn->why);
    }
    else if (rv == DKV_ETIMEOUT) {
        rv = dkv_error_set(rv, "no answer from %s within %ld ms; the"
                           " outcome is unknown", conn->peer,
                           (long)apr_time_as_msec(rm->request_timeout));
    }
    else if (rv == DKV_ECLOSED) {
        rv = dkv_error_set(rv, "the client is closing");
    }
    apr_thread_mutex_unlock(rm->lock);
    if (rv != DKV_OK) {
        dkv_free(call.buf);
        put_conn(rm, conn);
        return rv;
    }

    rp->buf = call.buf;
    rv = apr_pool_create(&rp->pool, rm->pool);
    if (rv != APR_SUCCESS) {
        rp->pool = NULL;
        put_conn(rm, conn);
        return dkv_error_set(rv, "out of memory");
    }
    (void)dkv_proto_frame_parse(&f, &size, call.buf, call.len, UINT32_MAX);
    rv = dkv_proto_response_decode(&rp->res, &f, rp->pool);
    if (rv != DKV_OK || rp->res.op != req->op) {
        char why[DKV_ERROR_MAX + 1];

        apr_cpystrn(why, rv != DKV_OK ? dkv_last_error()
                                      : "the answer is for another"
                                        " operation", sizeof(why));
        apr_thread_mutex_lock(rm->lock);
        conn_break(rm, conn, "bad response");
        apr_thread_mutex_unlock(rm->lock);
        rv = dkv_error_set(DKV_ETRANSPORT, "bad response from %s: %s;"
                           " the outcome is unknown", conn->peer, why);
        put_conn(rm, conn);
        return rv;
    }
    put_conn(rm, conn);
    return DKV_OK;
}

/* A request the node answers DKV_EUNAVAILABLE is sent again, at most
 * this often, with pauses doubling up to the maximum. */
#define UNAVAILABLE_TRIES 12
#define UNAVAILABLE_FIRST_PAUSE apr_time_from_msec(20)
#define UNAVAILABLE_MAX_PAUSE apr_time_from_msec(500)

/* Runs REQ: one attempt, and a second on a fresh connection after
 * DKV_ETRANSPORT when RETRY (idempotent operations) or when nothing was
 * sent; an answer DKV_EUNAVAILABLE (not applied) is retried after a pause
 * until the deadline (UNAVAILABLE_TRIES at most).  On DKV_OK, RP->res
 * holds the answer and its status is returned, with the node's message.
 * Release RP with reply_done in every case. */
static dkv_status_t
request(remote_t *rm, dkv_request_t *req, rm_reply_t *rp, int retry)
{
    apr_time_t deadline = apr_time_now() + rm->request_timeout;
    apr_interval_time_t backoff = UNAVAILABLE_FIRST_PAUSE;
    int attempt, sent = 0, unavailable = 0;
    dkv_status_t rv;

    memset(rp, 0, sizeof(*rp));
    rv = rm_enter(rm);
    if (rv != DKV_OK) {
        return rv;
    }
    rp->entered = rm;
    if (rm->serializable && dkv_proto_op_reads_store(req->op)) {
        req->flags |= DKV_PROTO_FLAG_SERIALIZABLE;
    }
    for (attempt = 0; attempt < 2; attempt++) {
        reply_clear(rp);
        rv = exchange(rm, req, rp, deadline, &sent, NULL);
        if (rv == DKV_OK && rp->res.status == DKV_EUNAVAILABLE
            && unavailable < UNAVAILABLE_TRIES
            && apr_time_now() + backoff < deadline) {
            /* Not applied (a replicated store between leaders, or a node
             * stopping): safe to send again, after a pause. */
            apr_sleep(backoff);
            backoff = backoff * 2 > UNAVAILABLE_MAX_PAUSE
                      ? UNAVAILABLE_MAX_PAUSE : backoff * 2;
            unavailable++;
            attempt = -1;
            sent = 0;
            continue;
        }
        if (rv != DKV_ETRANSPORT || !(retry || !sent)
            || apr_time_now() >= deadline) {
            break;
        }
    }
    if (rv != DKV_OK) {
        return rv;
    }
    rv = rp->res.status;
    if (rv != DKV_OK) {
        if (rp->res.message[0] != '\0') {
            dkv_error_set(rv, "%s", rp->res.message);
        }
    }
    return rv;
}

static void
req_init(dkv_request_t *req, dkv_msg_t op)
{
    memset(req, 0, sizeof(*req));
    req->op = (uint8_t)op;
}

/* ============================================================== copies */

static void *
copy_bytes(const void *p, size_t len, apr_pool_t *pool)
{
    char *c = apr_palloc(pool, len + 1);

    if (len > 0) {
        memcpy(c, p, len);
    }
    c[len] = '\0';
    return c;
}

/* Deep-copies SRC (decoded, pointing into a frame) into DST in POOL. */
static void
copy_item(dkv_item_t *dst, const dkv_item_t *src, apr_pool_t *pool)
{
    size_t i;

    *dst = *src;
    dst->key = copy_bytes(src->key, src->key_len, pool);
    if (src->value != NULL) {
        dst->value = copy_bytes(src->value, src->value_len, pool);
    }
    dst->entity = src->entity ? apr_pstrdup(pool, src->entity) : NULL;
    dst->content_type = src->content_type
                        ? apr_pstrdup(pool, src->content_type) : NULL;
    if (src->nlabels > 0) {
        dkv_label_t *l = apr_palloc(pool, src->nlabels * sizeof(*l));

        for (i = 0; i < src->nlabels; i++) {
            l[i].name = apr_pstrdup(pool, src->labels[i].name);
            l[i].value = apr_pstrdup(pool, src->labels[i].value);
            l[i].indexed = src->labels[i].indexed;
        }
        dst->labels = l;
    }
    else {
        dst->labels = NULL;
    }
}

/* An item for a key that was not read (as the engine fills one). */
static void
absent_item(dkv_item_t *item, const void *key, size_t key_len,
            dkv_status_t status)
{
    memset(item, 0, sizeof(*item));
    item->status = status;
    item->key = key;
    item->key_len = key_len;
    item->ttl_ms = -1;
}

static dkv_page_t *
copy_page(const dkv_page_t *src, apr_pool_t *pool)
{
    dkv_page_t *pg = apr_pcalloc(pool, sizeof(*pg));
    size_t i;

    pg->items = apr_pcalloc(pool, (src->count ? src->count : 1)
                                  * sizeof(dkv_item_t));
    for (i = 0; i < src->count; i++) {
        copy_item(&pg->items[i], &src->items[i], pool);
    }
    pg->count = src->count;
    pg->more = src->more;
    if (src->next != NULL) {
        pg->next = copy_bytes(src->next, src->next_len, pool);
        pg->next_len = src->next_len;
    }
    pg->revision = src->revision;
    return pg;
}

/* ========================================================== operations */

static size_t
rm_max_value(void *state)
{
    remote_t *rm = state;
    size_t v;

    apr_thread_mutex_lock(rm->lock);
    v = rm->max_value;
    apr_thread_mutex_unlock(rm->lock);
    return v;
}

static dkv_status_t
rm_revision(void *state, uint64_t *revision)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_REVISION);
    rv = request(state, &req, &rp, 1);
    if (rv == DKV_OK) {
        *revision = rp.res.revision;
    }
    reply_done(&rp);
    return rv;
}

/* A single-key mutation answered with a result: the node's whenever it
 * sent one (always with OK; with a failure the operation itself had,
 * as in-process: status, mutated 0, the current revision). */
static dkv_status_t
result_call(remote_t *rm, dkv_request_t *req, dkv_result_t *res)
{
    rm_reply_t rp;
    dkv_status_t rv = request(rm, req, &rp, 0);

    if (res != NULL) {
        if (rp.pool != NULL && rp.res.has_result
            && rp.res.status == rv) {
            *res = rp.res.result;
            res->status = rv;
        }
        else {
            memset(res, 0, sizeof(*res));
            res->status = rv;
        }
    }
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_put(void *state, dkv_result_t *res, const void *key, size_t key_len,
       const void *value, size_t value_len, const dkv_put_opts_t *opts)
{
    dkv_request_t req;

    req_init(&req, DKV_MSG_PUT);
    req.key = key;
    req.key_len = key_len;
    req.value = value;
    req.value_len = value_len;
    if (opts != NULL) {
        req.put = *opts;
    }
    return result_call(state, &req, res);
}

static dkv_status_t
rm_get(void *state, dkv_item_t *item, const void *key, size_t key_len,
       const dkv_get_opts_t *opts, apr_pool_t *pool)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_GET);
    req.key = key;
    req.key_len = key_len;
    if (opts != NULL) {
        req.get = *opts;
    }
    rv = request(state, &req, &rp, 1);
    if (rp.pool != NULL && rp.res.has_result && rp.res.status == rv) {
        /* OK, or the node's item for a failed read (ENOTFOUND, ELOCKED:
         * the key and the revision read at, as in-process). */
        copy_item(item, &rp.res.item, pool);
        item->status = rv;
    }
    else {
        absent_item(item, key, key_len, rv);
    }
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_delete(void *state, dkv_result_t *res, const void *key, size_t key_len,
          const dkv_delete_opts_t *opts)
{
    dkv_request_t req;

    req_init(&req, DKV_MSG_DELETE);
    req.key = key;
    req.key_len = key_len;
    if (opts != NULL) {
        req.del = *opts;
    }
    return result_call(state, &req, res);
}

static dkv_status_t
rm_expire(void *state, dkv_result_t *res, const void *key, size_t key_len,
          int64_t ttl_ms, uint64_t lock)
{
    dkv_request_t req;

    req_init(&req, DKV_MSG_EXPIRE);
    req.key = key;
    req.key_len = key_len;
    req.num = ttl_ms;
    req.u64 = lock;
    return result_call(state, &req, res);
}

static dkv_status_t
rm_refresh(void *state, dkv_result_t *res, const void *key, size_t key_len,
           uint64_t lock)
{
    dkv_request_t req;

    req_init(&req, DKV_MSG_REFRESH);
    req.key = key;
    req.key_len = key_len;
    req.u64 = lock;
    return result_call(state, &req, res);
}

/* Copies the node's N_SENT results back to the positions MAP gives. */
static dkv_status_t
bulk_results(dkv_result_t *results, const size_t *map, size_t n_sent,
             const rm_reply_t *rp)
{
    size_t i;

    if (rp->res.n != n_sent) {
        return dkv_error_set(DKV_ETRANSPORT, "the node answered %lu results"
                             " for %lu operations",
                             (unsigned long)rp->res.n,
                             (unsigned long)n_sent);
    }
    if (results != NULL) {
        for (i = 0; i < n_sent; i++) {
            results[map[i]] = rp->res.results[i];
        }
    }
    return DKV_OK;
}

/* The bulk calls check each key (and value) here, as the in-process
 * backend does: a bad one gets its own status and is not sent. */
static dkv_status_t
rm_put_many(void *state, dkv_result_t *results, const dkv_kv_t *kvs,
            size_t n, const dkv_put_opts_t *opts)
{
    remote_t *rm = state;
    size_t i, m = 0, max_value = rm_max_value(rm);
    dkv_kv_t *send = dkv_malloc(n * sizeof(*send));
    size_t *map = dkv_malloc(n * sizeof(*map));
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    if (send == NULL || map == NULL) {
        dkv_free(send);
        dkv_free(map);
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    for (i = 0; i < n; i++) {
        rv = dkv_check_key(kvs[i].key, kvs[i].key_len, 0);
        if (rv == DKV_OK) {
            rv = dkv_check_value(kvs[i].value, kvs[i].value_len, max_value);
        }
        if (rv == DKV_OK) {
            send[m] = kvs[i];
            map[m++] = i;
        }
        else if (results != NULL) {
            results[i].status = rv;
        }
    }
    rv = DKV_OK;
    if (m > 0) {
        req_init(&req, DKV_MSG_PUT_MANY);
        req.n = m;
        req.kvs = send;
        if (opts != NULL) {
            req.put = *opts;
        }
        rv = request(rm, &req, &rp, 0);
        if (rv == DKV_OK) {
            rv = bulk_results(results, map, m, &rp);
        }
        reply_done(&rp);
    }
    dkv_free(send);
    dkv_free(map);
    if (rv != DKV_OK && results != NULL) {
        memset(results, 0, n * sizeof(*results));
    }
    return rv;
}

static dkv_status_t
rm_get_many(void *state, dkv_item_t *items, const dkv_key_t *keys, size_t n,
            const dkv_get_opts_t *opts, apr_pool_t *pool)
{
    remote_t *rm = state;
    size_t i, m = 0;
    dkv_key_t *send = dkv_malloc(n * sizeof(*send));
    size_t *map = dkv_malloc(n * sizeof(*map));
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    if (send == NULL || map == NULL) {
        dkv_free(send);
        dkv_free(map);
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    for (i = 0; i < n; i++) {
        rv = dkv_check_key(keys[i].key, keys[i].key_len, 0);
        if (rv == DKV_OK) {
            send[m] = keys[i];
            map[m++] = i;
        }
        else {
            absent_item(&items[i], keys[i].key, keys[i].key_len, rv);
        }
    }
    rv = DKV_OK;
    if (m > 0) {
        req_init(&req, DKV_MSG_GET_MANY);
        req.n = m;
        req.keys = send;
        if (opts != NULL) {
            req.get = *opts;
        }
        rv = request(rm, &req, &rp, 1);
        if (rv == DKV_OK && rp.res.n != m) {
            rv = dkv_error_set(DKV_ETRANSPORT, "the node answered %lu items"
                               " for %lu keys", (unsigned long)rp.res.n,
                               (unsigned long)m);
        }
        if (rv == DKV_OK) {
            for (i = 0; i < m; i++) {
                const dkv_item_t *it = &rp.res.items[i];

                if (it->status == DKV_OK) {
                    copy_item(&items[map[i]], it, pool);
                }
                else {
                    absent_item(&items[map[i]], keys[map[i]].key,
                                keys[map[i]].key_len, it->status);
                    items[map[i]].revision = it->revision;
                }
            }
        }
        reply_done(&rp);
    }
    dkv_free(send);
    dkv_free(map);
    return rv;
}

static dkv_status_t
rm_delete_many(void *state, dkv_result_t *results, const dkv_key_t *keys,
               size_t n, const dkv_delete_opts_t *opts)
{
    remote_t *rm = state;
    size_t i, m = 0;
    dkv_key_t *send = dkv_malloc(n * sizeof(*send));
    size_t *map = dkv_malloc(n * sizeof(*map));
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    if (send == NULL || map == NULL) {
        dkv_free(send);
        dkv_free(map);
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    for (i = 0; i < n; i++) {
        rv = dkv_check_key(keys[i].key, keys[i].key_len, 0);
        if (rv == DKV_OK) {
            send[m] = keys[i];
            map[m++] = i;
        }
        else if (results != NULL) {
            results[i].status = rv;
        }
    }
    rv = DKV_OK;
    if (m > 0) {
        req_init(&req, DKV_MSG_DELETE_MANY);
        req.n = m;
        req.keys = send;
        if (opts != NULL) {
            req.del = *opts;
        }
        rv = request(rm, &req, &rp, 0);
        if (rv == DKV_OK) {
            rv = bulk_results(results, map, m, &rp);
        }
        reply_done(&rp);
    }
    dkv_free(send);
    dkv_free(map);
    if (rv != DKV_OK && results != NULL) {
        memset(results, 0, n * sizeof(*results));
    }
    return rv;
}

static dkv_status_t
rm_batch(void *state, dkv_result_t *results, const dkv_op_t *ops, size_t n)
{
    remote_t *rm = state;
    size_t i, m = 0, max_value = rm_max_value(rm);
    dkv_op_t *send = dkv_malloc(n * sizeof(*send));
    size_t *map = dkv_malloc(n * sizeof(*map));
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    if (send == NULL || map == NULL) {
        dkv_free(send);
        dkv_free(map);
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    for (i = 0; i < n; i++) {
        rv = dkv_check_op(&ops[i], max_value);
        if (rv == DKV_OK) {
            send[m] = ops[i];
            map[m++] = i;
        }
        else if (results != NULL) {
            results[i].status = rv;
        }
    }
    rv = DKV_OK;
    if (m > 0) {
        req_init(&req, DKV_MSG_BATCH);
        req.n = m;
        req.ops = send;
        rv = request(rm, &req, &rp, 0);
        if (rv == DKV_OK) {
            rv = bulk_results(results, map, m, &rp);
        }
        reply_done(&rp);
    }
    dkv_free(send);
    dkv_free(map);
    if (rv != DKV_OK && results != NULL) {
        memset(results, 0, n * sizeof(*results));
    }
    return rv;
}

static dkv_status_t
rm_clear(void *state, uint64_t *deleted, const dkv_range_t *range)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_CLEAR);
    req.range = *range;
    rv = request(state, &req, &rp, 0);
    if (deleted != NULL) {
        *deleted = rv == DKV_OK ? rp.res.u64 : 0;
    }
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_scan(void *state, dkv_page_t **page, const dkv_range_t *range,
        const dkv_scan_opts_t *opts, apr_pool_t *pool)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_SCAN);
    req.range = *range;
    if (opts != NULL) {
        req.scan = *opts;
    }
    rv = request(state, &req, &rp, 1);
    if (rv == DKV_OK) {
        *page = copy_page(&rp.res.page, pool);
    }
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_count(void *state, uint64_t *count, const dkv_range_t *range)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_COUNT);
    req.range = *range;
    rv = request(state, &req, &rp, 1);
    if (rv == DKV_OK) {
        *count = rp.res.u64;
    }
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_counter_add(void *state, int64_t *previous, int64_t *current,
               const void *key, size_t key_len, int64_t delta,
               const dkv_counter_opts_t *opts)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_COUNTER_ADD);
    req.key = key;
    req.key_len = key_len;
    req.num = delta;
    if (opts != NULL) {
        req.counter = *opts;
    }
    rv = request(state, &req, &rp, 0);
    if (rv == DKV_OK) {
        if (previous != NULL) {
            *previous = rp.res.num1;
        }
        if (current != NULL) {
            *current = rp.res.num2;
        }
    }
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_counter_get(void *state, int64_t *value, const void *key, size_t key_len)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_COUNTER_GET);
    req.key = key;
    req.key_len = key_len;
    rv = request(state, &req, &rp, 1);
    if (rv == DKV_OK) {
        *value = rp.res.num1;
    }
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_counter_set(void *state, const void *key, size_t key_len, int64_t value,
               const dkv_counter_opts_t *opts)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_COUNTER_SET);
    req.key = key;
    req.key_len = key_len;
    req.num = value;
    if (opts != NULL) {
        req.counter = *opts;
    }
    rv = request(state, &req, &rp, 0);
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_lease_grant(void *state, uint64_t *lease, int64_t ttl_ms)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_LEASE_GRANT);
    req.num = ttl_ms;
    rv = request(state, &req, &rp, 0);
    *lease = rv == DKV_OK ? rp.res.u64 : 0;
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_lease_keepalive(void *state, int64_t *remaining_ms, uint64_t lease)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_LEASE_KEEPALIVE);
    req.u64 = lease;
    /* Restarting a lease's TTL is idempotent: safe to retry. */
    rv = request(state, &req, &rp, 1);
    if (rv == DKV_OK && remaining_ms != NULL) {
        *remaining_ms = rp.res.num1;
    }
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_lease_revoke(void *state, uint64_t *keys_deleted, uint64_t lease)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_LEASE_REVOKE);
    req.u64 = lease;
    rv = request(state, &req, &rp, 0);
    if (rv == DKV_OK && keys_deleted != NULL) {
        *keys_deleted = rp.res.u64;
    }
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_lease_info(void *state, dkv_lease_info_t *info, uint64_t lease)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_LEASE_INFO);
    req.u64 = lease;
    rv = request(state, &req, &rp, 1);
    if (rv == DKV_OK) {
        *info = rp.res.lease_info;
    }
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_lock_acquire(void *state, dkv_lock_t *lock, const void *key,
                size_t key_len, uint64_t lease)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_LOCK_ACQUIRE);
    req.key = key;
    req.key_len = key_len;
    req.u64 = lease;
    rv = request(state, &req, &rp, 0);
    if ((rv == DKV_OK || rv == DKV_ELOCKED) && rp.pool != NULL) {
        *lock = rp.res.lock;
    }
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_lock_release(void *state, const void *key, size_t key_len,
                uint64_t token)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_LOCK_RELEASE);
    req.key = key;
    req.key_len = key_len;
    req.u64 = token;
    rv = request(state, &req, &rp, 0);
    reply_done(&rp);
    return rv;
}

static dkv_status_t
rm_txn_commit(void *state, uint64_t *revision,
              const dkv_txn_compare_t *compares, size_t ncompares,
              const dkv_op_t *ops, size_t nops)
{
    dkv_proto_compare_t *cmp;
    dkv_request_t req;
    rm_reply_t rp;
    size_t i;
    dkv_status_t rv;

    cmp = dkv_malloc((ncompares + 1) * sizeof(*cmp));
    if (cmp == NULL) {
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    for (i = 0; i < ncompares; i++) {
        cmp[i].key = compares[i].key;
        cmp[i].key_len = compares[i].key_len;
        cmp[i].mod_revision = compares[i].mod_revision;
    }
    req_init(&req, DKV_MSG_TXN_COMMIT);
    req.ncompares = ncompares;
    req.compares = cmp;
    req.n = nops;
    req.ops = (dkv_op_t *)ops;
    rv = request(state, &req, &rp, 0);
    if (rv == DKV_OK && revision != NULL) {
        *revision = rp.res.revision;
    }
    reply_done(&rp);
    dkv_free(cmp);
    return rv;
}

static dkv_status_t
rm_search(void *state, dkv_page_t **page, const dkv_query_t *query,
          const dkv_search_opts_t *opts, apr_pool_t *pool)
{
    dkv_request_t req;
    rm_reply_t rp;
    dkv_status_t rv;

    req_init(&req, DKV_MSG_SEARCH);
    req.query = *query;
    if (opts != NULL) {
        req.search = *opts;
    }
    rv = request(state, &req, &rp, 1);
    if (rv == DKV_OK) {
        *page = copy_page(&rp.res.page, pool);
    }
    reply_done(&rp);
    return rv;
}

/* ============================================================= watches */

static void
dispatcher_wake(remote_t *rm)
{
    apr_thread_cond_signal(rm->dcond);
}

/* Runs W's callback on EV with the lock released; lock held on entry and
 * on return. */
static void
run_callback(remote_t *rm, rm_watch_t *w, const dkv_event_t *ev)
{
    w->running = 1;
    apr_thread_mutex_unlock(rm->lock);
    w->callback(w->baton, ev);
    dkv_error_clear();
    apr_thread_mutex_lock(rm->lock);
    w->running = 0;
    apr_thread_cond_broadcast(rm->idle);
}

/* Ends W with an error event of STATUS; lock held. */
static void
end_watch(remote_t *rm, rm_watch_t *w, dkv_status_t status)
{
    dkv_event_t ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = DKV_EVENT_ERROR;
    ev.key = w->key;
    ev.key_len = w->key_len;
    ev.revision = w->last_rev;
    ev.status = status;
    w->ended = 1;
    w->need_resume = 0;
    w->wire_id = 0;
    run_callback(rm, w, &ev);
}

/* Delivers the EVENT frame Q; lock held. */
static void
deliver_frame(remote_t *rm, rm_evq_t *q)
{
    rm_watch_t *w;
    dkv_event_t *evs = NULL;
    dkv_frame_t f;
    size_t n = 0, i, size;
    dkv_status_t rv;

    for (w = rm->watches; w != NULL; w = w->next) {
        if (w->wire_id == q->id && !w->stopped && !w->ended) {
            break;
        }
    }
    if (w == NULL) {
        return;
    }
    apr_pool_clear(rm->dpool);
    (void)dkv_proto_frame_parse(&f, &size, q->buf, q->len, UINT32_MAX);
    rv = dkv_proto_events_decode(&evs, &n, &f, rm->dpool);
    if (rv != DKV_OK) {
        if (w->in_snapshot) {
            /* The rest of the snapshot cannot be had again. */
            end_watch(rm, w, DKV_ETRANSPORT);
            return;
        }
        /* Resume from what was delivered rather than guess. */
        w->need_resume = 1;
        w->wire_id = 0;
        return;
    }
    for (i = 0; i < n && !rm->dstop; i++) {
        const dkv_event_t *ev = &evs[i];

        if (w->wire_id != q->id || w->stopped || w->ended) {
            break;
        }
        if (ev->type == DKV_EVENT_ERROR) {
            if (ev->status == DKV_EUNAVAILABLE && !w->in_snapshot) {
                /* Dropped (slow consumer, node shutting down): resume. */
                w->need_resume = 1;
                w->wire_id = 0;
            }
            else {
                /* Another reason, or dropped before the snapshot was
                 * complete (a resume would leave a gap): the end. */
                end_watch(rm, w, ev->status);
            }
            break;
        }
        if (ev->snapshot && !w->in_snapshot) {
            continue;          /* never after the snapshot's end */
        }
        if (!ev->snapshot && ev->revision <= w->last_rev) {
            continue;          /* already delivered before a resume */
        }
        if (ev->revision > w->last_rev) {
            w->last_rev = ev->revision;
        }
        run_callback(rm, w, ev);
    }
    if (i == n && (f.flags & DKV_PROTO_EVENT_SNAPSHOT_DONE)
        && w->wire_id == q->id) {
        w->in_snapshot = 0;
    }
}

/* Re-issues W's WATCH from its last revision; lock held (released
 * meanwhile).  Returns 0 when it must be tried again later. */
static int
resume_watch(remote_t *rm, rm_watch_t *w)
{
    dkv_request_t req;
    rm_reply_t rp;
    int sent;
    dkv_status_t rv;

    w->waiters++;              /* keeps W while unlocked */
    apr_thread_mutex_unlock(rm->lock);
    req_init(&req, DKV_MSG_WATCH);
    req.key = w->key;
    req.key_len = w->key_len;
    req.watch_flags = w->prefix ? DKV_PROTO_WATCH_PREFIX : 0;
    req.u64 = w->last_rev + 1;
    memset(&rp, 0, sizeof(rp));
    rv = exchange(rm, &req, &rp, apr_time_now() + rm->request_timeout,
                  &sent, w);
    if (rv == DKV_OK) {
        rv = rp.res.status;
    }
    reply_done(&rp);
    dkv_error_clear();
    apr_thread_mutex_lock(rm->lock);
    w->waiters--;
    if (rv == DKV_OK && w->stopped && w->wire_id != 0 && w->conn != NULL
        && !w->conn->dead && !rm->dstop) {
        /* Stopped while resuming: end it on the node too. */
        uint64_t id = w->wire_id;

        w->wire_id = 0;
        w->waiters++;
        send_cancel(rm, w->conn, id);
        w->waiters--;
    }
    if (w->stopped || w->ended || rm->dstop || rv == DKV_OK) {
        return 1;
    }
    w->wire_id = 0;
    if (rv == DKV_EUNAVAILABLE || rv == DKV_ETRANSPORT
        || rv == DKV_ETIMEOUT || rv == DKV_ENOTLEADER
        || rv == DKV_ECLOSED || rv == APR_ENOMEM) {
        w->need_resume = 1;
        return 0;
    }
    end_watch(rm, w, rv);
    return 1;
}

/* Frees stopped watches nobody waits on; lock held. */
static void
reap_watches(remote_t *rm)
{
    rm_watch_t **pw = &rm->watches, *w;

    while ((w = *pw) != NULL) {
        if (w->stopped && !w->running && w->waiters == 0) {
            *pw = w->next;
            dkv_free(w);
        }
        else {
            pw = &w->next;
        }
    }
}

static void *APR_THREAD_FUNC
dispatcher_main(apr_thread_t *thread, void *data)
{
    remote_t *rm = data;
    apr_interval_time_t backoff = 0;

    (void)thread;
    apr_thread_mutex_lock(rm->lock);
    rm->disp_id = apr_os_thread_current();
    rm->disp_started = 1;
    while (!rm->dstop) {
        rm_evq_t *q = rm->qhead;
        rm_watch_t *w;
        int failed = 0, pending = 0;

        reap_watches(rm);
        if (q != NULL) {
            rm->qhead = q->next;
            if (rm->qhead == NULL) {
                rm->qtail = NULL;
            }
            deliver_frame(rm, q);
            dkv_free(q->buf);
            dkv_free(q);
            continue;
        }
        for (w = rm->watches; w != NULL && !rm->dstop; w = w->next) {
            if (w->need_resume && w->started && !w->stopped && !w->ended) {
                pending = 1;
                if (w->in_snapshot) {
                    /* Lost before the snapshot was complete: resuming
                     * from its revision would leave a gap, so the watch
                     * ends; the application starts it again. */
                    end_watch(rm, w, DKV_ETRANSPORT);
                    break;
                }
                if (!resume_watch(rm, w)) {
                    failed = 1;
                    break;
                }
                break;         /* the list may have changed: rescan */
            }
        }
        if (rm->dstop) {
            break;
        }
        if (failed) {
            backoff = backoff == 0 ? RM_BACKOFF_MIN : backoff * 2;
            if (backoff > RM_BACKOFF_MAX) {
                backoff = RM_BACKOFF_MAX;
            }
            apr_thread_cond_timedwait(rm->dcond, rm->lock, backoff);
            continue;
        }
        if (pending) {
            backoff = 0;
            continue;
        }
        reap_watches(rm);
        if (rm->qhead == NULL && !rm->dstop) {
            apr_thread_cond_wait(rm->dcond, rm->lock);
        }
    }
    apr_thread_mutex_unlock(rm->lock);
    return NULL;
}

static int
in_dispatcher(const remote_t *rm)
{
    return rm->disp_started
           && apr_os_thread_equal(rm->disp_id, apr_os_thread_current());
}

/* Tells the node to end watch ID on CONN (the answer is not awaited);
 * lock held on entry, released and retaken. */
static void
send_cancel(remote_t *rm, rm_conn_t *conn, uint64_t id)
{
    dkv_request_t req;
    dkv_wbuf_t wb;
    size_t sent;

    conn->refs++;
    req_init(&req, DKV_MSG_WATCH_CANCEL);
    req.id = ++rm->next_id;
    req.u64 = id;
    apr_thread_mutex_unlock(rm->lock);
    dkv_wbuf_init(&wb, 0);
    if (dkv_proto_request_encode(&wb, &req) == DKV_OK) {
        apr_thread_mutex_lock(conn->wlock);
        (void)send_all(conn->sock, wb.data, wb.len, &sent);
        apr_thread_mutex_unlock(conn->wlock);
    }
    dkv_wbuf_free(&wb);
    dkv_error_clear();
    apr_thread_mutex_lock(rm->lock);
    conn->refs--;
}

static dkv_status_t
rm_watch_start(void *state, dkv_watch_t **watch, const void *key,
               size_t key_len, const dkv_watch_opts_t *opts,
               dkv_watch_cb_t *callback, void *baton)
{
    remote_t *rm = state;
    apr_time_t deadline = apr_time_now() + rm->request_timeout;
    rm_watch_t *w;
    dkv_request_t req;
    rm_reply_t rp;
    int attempt, sent = 0;
    dkv_status_t rv;

    w = dkv_calloc(1, sizeof(*w) + key_len + 1);
    if (w == NULL) {
        return dkv_error_set(APR_ENOMEM, "dkv_watch_start: out of memory");
    }
    w->pub.client = rm->client;
    w->rm = rm;
    w->callback = callback;
    w->baton = baton;
    w->prefix = opts->prefix;
    w->key = (unsigned char *)(w + 1);
    w->key_len = key_len;
    if (key_len > 0) {
        memcpy(w->key, key, key_len);
    }
    if (opts->start_revision > 0) {
        w->last_rev = opts->start_revision - 1;
    }
    w->in_snapshot = opts->include_snapshot != 0;
    rv = rm_enter(rm);
    if (rv != DKV_OK) {
        dkv_free(w);
        return rv;
    }
    apr_thread_mutex_lock(rm->lock);
    {
        rm_watch_t **pw = &rm->watches;

        while (*pw != NULL) {
            pw = &(*pw)->next;
        }
        *pw = w;
    }
    apr_thread_mutex_unlock(rm->lock);

    req_init(&req, DKV_MSG_WATCH);
    req.key = key;
    req.key_len = key_len;
    req.watch_flags = (opts->prefix ? DKV_PROTO_WATCH_PREFIX : 0)
                      | (opts->include_snapshot ? DKV_PROTO_WATCH_SNAPSHOT
                                                : 0);
    req.u64 = opts->start_revision;
    memset(&rp, 0, sizeof(rp));
    for (attempt = 0; attempt < 2; attempt++) {
        reply_done(&rp);
        rv = exchange(rm, &req, &rp, deadline, &sent, w);
        if (rv != DKV_ETRANSPORT || apr_time_now() >= deadline) {
            break;
        }
    }
    if (rv == DKV_OK) {
        rv = rp.res.status;
        if (rv != DKV_OK && rp.res.message[0] != '\0') {
            dkv_error_set(rv, "%s", rp.res.message);
        }
    }
    apr_thread_mutex_lock(rm->lock);
    if (rv == DKV_OK) {
        w->started = 1;
        if (opts->start_revision == 0 && w->last_rev < rp.res.revision) {
            w->last_rev = rp.res.revision;
        }
        if (w->need_resume) {
            dispatcher_wake(rm);
        }
    }
    else {
        if (w->conn != NULL && !w->conn->dead && w->wire_id != 0) {
            send_cancel(rm, w->conn, w->wire_id);
        }
        w->stopped = 1;
        w->wire_id = 0;
        dispatcher_wake(rm);
    }
    apr_thread_mutex_unlock(rm->lock);
    reply_done(&rp);
    rm_leave(rm);
    if (rv == DKV_OK) {
        *watch = &w->pub;
    }
    return rv;
}

static void
rm_watch_stop(void *state, dkv_watch_t *watch)
{
    remote_t *rm = state;
    rm_watch_t *w = (rm_watch_t *)watch;

    apr_thread_mutex_lock(rm->lock);
    if (!w->stopped) {
        w->stopped = 1;
        if (!w->ended && w->wire_id != 0 && w->conn != NULL
            && !w->conn->dead && !rm->closing) {
            uint64_t id = w->wire_id;

            w->wire_id = 0;
            w->waiters++;
            send_cancel(rm, w->conn, id);
            w->waiters--;
        }
        w->wire_id = 0;
    }
    if (!in_dispatcher(rm)) {
        w->waiters++;
        while (w->running) {
            apr_thread_cond_wait(rm->idle, rm->lock);
        }
        w->waiters--;
    }
    dispatcher_wake(rm);
    apr_thread_mutex_unlock(rm->lock);
}

/* ====================================================== open and close */

static void
rm_close(void *state)
{
    remote_t *rm = state;
    apr_hash_index_t *hi;
    apr_status_t ignored;
    rm_evq_t *q;
    rm_watch_t *w;

    apr_thread_mutex_lock(rm->lock);
    rm->closing = 1;
    for (hi = apr_hash_first(NULL, rm->calls); hi != NULL;
         hi = apr_hash_next(hi)) {
        void *v;
        rm_call_t *call;

        apr_hash_this(hi, NULL, NULL, &v);
        call = v;
        if (!call->done) {
            call->done = 1;
            call->status = DKV_ECLOSED;
            apr_hash_set(rm->calls, &call->id, sizeof(call->id), NULL);
            apr_thread_cond_signal(call->waiter->cond);
        }
    }
    rm->dstop = 1;
    apr_thread_cond_broadcast(rm->dcond);
    if (rm->conn != NULL) {
        conn_break(rm, rm->conn, "the client is closing");
    }
    apr_thread_mutex_unlock(rm->lock);

    if (rm->disp != NULL) {
        apr_thread_join(&ignored, rm->disp);
        rm->disp = NULL;
    }
    apr_thread_mutex_lock(rm->lock);
    while (rm->active > 0) {
        apr_thread_cond_wait(rm->drained, rm->lock);
    }
    /* A connection made by a caller that raced with closing. */
    if (rm->conn != NULL) {
        conn_break(rm, rm->conn, "the client is closing");
    }
    apr_thread_mutex_unlock(rm->lock);
    apr_thread_mutex_lock(rm->connect_lock);
    apr_thread_mutex_unlock(rm->connect_lock);
    reap_conns(rm, 1);

    while ((q = rm->qhead) != NULL) {
        rm->qhead = q->next;
        dkv_free(q->buf);
        dkv_free(q);
    }
    rm->qtail = NULL;
    while ((w = rm->watches) != NULL) {
        rm->watches = w->next;
        dkv_free(w);
    }
    if (rm->token != NULL) {
        volatile char *t = rm->token;
        size_t i;

        for (i = 0; i < rm->token_len; i++) {
            t[i] = 0;
        }
        dkv_free(rm->token);
        rm->token = NULL;
    }
    apr_pool_destroy(rm->pool);
}

/* "libdkv/VERSION HOSTNAME", at most DKV_PROTO_MAX_CLIENT_NAME bytes. */
static char *
client_name(apr_pool_t *pool)
{
    char host[APRMAXHOSTLEN + 1];
    char *name;

    if (apr_gethostname(host, sizeof(host), pool) != APR_SUCCESS) {
        apr_cpystrn(host, "unknown", sizeof(host));
    }
    name = apr_psprintf(pool, "libdkv/%s %s", dkv_version(), host);
    if (strlen(name) > DKV_PROTO_MAX_CLIENT_NAME) {
        name[DKV_PROTO_MAX_CLIENT_NAME] = '\0';
    }
    return name;
}

/* See remote.h. */
dkv_status_t
dkv_remote_open(void **state, dkv_client_t *client, const char *address,
                const dkv_open_opts_t *opts, apr_pool_t *pool)
{
    dkv_remote_addr_t addr;
    apr_allocator_t *alloc;
    apr_thread_mutex_t *amutex;
    apr_pool_t *p;
    remote_t *rm;
    rm_conn_t *conn = NULL;
    int i;
    dkv_status_t rv;

    if (apr_allocator_create(&alloc) != APR_SUCCESS) {
        return dkv_error_set(APR_ENOMEM, "dkv_open: out of memory");
    }
    rv = apr_pool_create_ex(&p, pool, NULL, alloc);
    if (rv != APR_SUCCESS) {
        apr_allocator_destroy(alloc);
        return dkv_error_set(rv, "dkv_open: cannot create a pool");
    }
    apr_allocator_owner_set(alloc, p);
    rv = apr_thread_mutex_create(&amutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(p);
        return dkv_error_set(rv, "dkv_open: cannot create a mutex");
    }
    apr_allocator_mutex_set(alloc, amutex);

    rv = dkv_remote_parse(&addr, address, p);
    if (rv != DKV_OK) {
        apr_pool_destroy(p);
        return rv;
    }
    rm = apr_pcalloc(p, sizeof(*rm));
    rm->client = client;
    rm->pool = p;
    rm->address = apr_pstrdup(p, address);
    rm->store = addr.store;
    rm->neps = addr.count;
    rm->ep_last = -1;
    rm->serializable = opts->serializable_reads != 0;
    rm->eps = apr_pcalloc(p, RM_MAX_ENDPOINTS * sizeof(*rm->eps));
    for (i = 0; i < addr.count; i++) {
        rm->eps[i].host = addr.hosts[i];
        rm->eps[i].port = addr.ports[i];
    }
    rm->connect_timeout = apr_time_from_msec(opts->connect_timeout_ms
                                             ? opts->connect_timeout_ms
                                             : RM_DEFAULT_CONNECT_MS);
    rm->request_timeout = apr_time_from_msec(opts->request_timeout_ms
                                             ? opts->request_timeout_ms
                                             : RM_DEFAULT_REQUEST_MS);
    rm->max_frame = DKV_PROTO_MIN_FRAME;
    rm->max_value = DKV_DEFAULT_MAX_VALUE;
    rm->client_name = client_name(p);
    rm->fail_status = DKV_EUNAVAILABLE;
    if (opts->token != NULL && opts->token[0] != '\0') {
        rm->token_len = strlen(opts->token);
        if (rm->token_len > 0xFFFF) {
            apr_pool_destroy(p);
            return dkv_error_set(DKV_EINVAL, "dkv_open: the token is too"
                                 " long");
        }
        rm->token = dkv_strdup(opts->token);
        if (rm->token == NULL) {
            apr_pool_destroy(p);
            return dkv_error_set(APR_ENOMEM, "dkv_open: out of memory");
        }
    }
    rm->calls = apr_hash_make(p);
    if ((rv = apr_pool_create(&rm->wpool, p)) != APR_SUCCESS
        || (rv = apr_pool_create(&rm->dpool, p)) != APR_SUCCESS
        || (rv = apr_pool_create(&rm->eppool, p)) != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&rm->lock,
                                         APR_THREAD_MUTEX_DEFAULT, p))
           != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&rm->connect_lock,
                                         APR_THREAD_MUTEX_DEFAULT, p))
           != APR_SUCCESS
        || (rv = apr_thread_cond_create(&rm->drained, p)) != APR_SUCCESS
        || (rv = apr_thread_cond_create(&rm->dcond, p)) != APR_SUCCESS
        || (rv = apr_thread_cond_create(&rm->idle, p)) != APR_SUCCESS) {
        dkv_free(rm->token);
        apr_pool_destroy(p);
        return dkv_error_set(rv, "dkv_open: cannot create the client's"
                             " locks: %s", dkv_strerror(rv));
    }

    /* The first connection, made here so a bad address, token or store
     * fails dkv_open itself. */
    rv = connect_round(rm, &conn);
    if (rv != DKV_OK) {
        char msg[DKV_ERROR_MAX + 1];

        apr_cpystrn(msg, dkv_last_error(), sizeof(msg));
        dkv_free(rm->token);
        rm->token = NULL;
        apr_pool_destroy(p);
        return dkv_error_set(rv, "dkv_open: %s", msg);
    }
    rm->conn = conn;
    rv = apr_thread_create(&rm->disp, NULL, dispatcher_main, rm, p);
    if (rv != APR_SUCCESS) {
        rm->disp = NULL;
        dkv_error_set(rv, "dkv_open: cannot start the watch dispatcher:"
                      " %s", dkv_strerror(rv));
        rm_close(rm);
        return rv;
    }
    *state = rm;
    return DKV_OK;
}

/* See remote.h. */
const dkv_backend_ops_t dkv_remote_ops = {
    "remote",
    rm_close,
    rm_max_value,
    rm_revision,
    rm_put,
    rm_get,
    rm_delete,
    rm_expire,
    rm_refresh,
    rm_put_many,
    rm_get_many,
    rm_delete_many,
    rm_batch,
    rm_clear,
    rm_scan,
    rm_count,
    rm_counter_add,
    rm_counter_get,
    rm_counter_set,
    rm_lease_grant,
    rm_lease_keepalive,
    rm_lease_revoke,
    rm_lease_info,
    rm_lock_acquire,
    rm_lock_release,
    rm_watch_start,
    rm_watch_stop,
    rm_txn_commit,
    rm_search
};
