/*
 * transport.c -- the cluster port (see transport.h): a listener, one
 * reader thread per inbound link and one writer thread per peer, on APR
 * sockets and threads only, so it builds for Unix and Windows alike.
 *
 * Acceptor.  Polls the listener every ACCEPT_POLL (so it sees the stop
 * flag), accepts, and starts a reader for each connection (at most
 * MAX_INBOUND at once: beyond that a connection is closed at once).  It
 * also joins the readers that ended and frees their memory.
 *
 * Readers.  The responder's side of the handshake within
 * HANDSHAKE_TIMEOUT, then frames until the stream ends or a frame fails;
 * each message goes to the receive callback.  A new link from a peer
 * replaces the older one (its reader is told to end).  Sockets are
 * non-blocking: every wait is an apr_poll of at most IO_SLICE, after
 * which the thread checks whether it must end, so stopping does not
 * depend on how a platform treats a call blocked on a socket that
 * another thread shuts down (destroy shuts them down too, to be quick).
 * A reader closes its socket itself, under the transport's mutex.
 *
 * Writers.  Each peer's writer connects (CONNECT_TIMEOUT), runs the
 * initiator's side of the handshake, then sends its queue in order,
 * small messages sealed into one buffer per write, large ones sealed in
 * place and sent as they are.  While idle it checks every IDLE_CHECK
 * that the peer has not closed the link (the peer never sends on it, so
 * anything readable is the end).  On any failure it closes, logs (a
 * warning once per streak of failures) and reconnects after a backoff
 * of BACKOFF_MIN doubling to BACKOFF_MAX.  Messages being sent when the
 * link fails are dropped; queued ones wait for the next link.
 *
 * Memory: the transport has its own pool and allocator (with a mutex:
 * the threads make pools from it); the secret lives in sodium memory;
 * messages are dkv_malloc'ed.
 */
#include <string.h>

#include <apr_allocator.h>
#include <apr_atomic.h>
#include <apr_network_io.h>
#include <apr_poll.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include <sodium.h>

#include "platform/platform.h"
#include "cluster/link.h"
#include "cluster/transport.h"
#include "common/alloc.h"
#include "common/status.h"

#define HANDSHAKE_TIMEOUT apr_time_from_sec(5)
#define CONNECT_TIMEOUT apr_time_from_sec(1)
#define SEND_TIMEOUT apr_time_from_sec(10)
#define BACKOFF_MIN apr_time_from_msec(50)
#define BACKOFF_MAX apr_time_from_sec(1)
#define ACCEPT_POLL apr_time_from_msec(100)
#define IDLE_CHECK apr_time_from_msec(200)
#define IO_SLICE apr_time_from_msec(100)
#define REFUSAL_LOG_GAP apr_time_from_sec(1)
#define MAX_INBOUND 64
#define RBUF_SIZE (64u * 1024u)
#define WBUF_SIZE (256u * 1024u)
#define SMALL_MSG (64u * 1024u)
#define DEFAULT_QUEUE (64u * 1024u * 1024u)

#if DKV_TRANSPORT_MAX_MSG != DKV_LINK_MAX_MSG
#error "DKV_TRANSPORT_MAX_MSG and DKV_LINK_MAX_MSG differ"
#endif

typedef struct tp_msg {
    struct tp_msg *next;
    unsigned char *data;
    size_t len;
} tp_msg_t;

/* One peer: its queue and its writer.  Peers are added at creation or
 * later (dkv_transport_add_peer) and live until destroy. */
typedef struct tp_peer {
    dkv_transport_t *t;
    uint32_t id;
    char *host;                 /* dkv_malloc'ed; address under MUTEX */
    unsigned port;
    char where[96];             /* "node N (host:port)" for the log */
    apr_pool_t *pool;           /* the writer's; its subpools per link */
    apr_thread_t *thread;
    apr_thread_mutex_t *mutex;  /* guards everything below */
    apr_thread_cond_t *wake;    /* the writer: messages, stop */
    apr_thread_cond_t *room;    /* send_wait: bytes went down */
    tp_msg_t *head, *tail;
    size_t bytes;               /* queued and being sent */
    apr_socket_t *sock;         /* the link's socket while it exists */
    int connected;
    int stop;
    volatile apr_uint32_t abort;/* stop, seen by the link's I/O */
} tp_peer_t;

/* One inbound connection and its reader. */
typedef struct tp_conn {
    struct tp_conn *next;
    dkv_transport_t *t;
    apr_pool_t *pool;
    apr_socket_t *sock;         /* NULL once closed (t->mutex) */
    apr_thread_t *thread;
    uint32_t peer;              /* 0 until the handshake is done */
    int done;                   /* the reader ended (t->mutex) */
    volatile apr_uint32_t abort;/* replaced by a newer link, or stop */
    char addr[72];
} tp_conn_t;

/* One link's socket, non-blocking: reads (buffered or not) and writes
 * wait in slices of IO_SLICE, so a stop or an abort is seen promptly
 * whatever the platform does with a blocked call on a socket another
 * thread shuts down. */
typedef struct tp_io {
    dkv_transport_t *t;
    apr_socket_t *sock;
    volatile apr_uint32_t *abort;   /* nonzero: give up (may be NULL) */
    unsigned char *buf;             /* NULL: unbuffered */
    size_t cap, pos, len;
} tp_io_t;

struct dkv_transport {
    apr_pool_t *pool;
    uint32_t self;
    char *store;
    unsigned char *secret;      /* sodium memory */
    /* The peers (under MUTEX: a peer can be added while running). */
    uint32_t *peer_ids;
    tp_peer_t **peers;
    size_t npeers, cappeers;
    size_t max_queue;
    dkv_transport_recv_fn *recv;
    void *baton;
    apr_socket_t *listener;
    unsigned port;
    apr_thread_t *acceptor;
    volatile apr_uint32_t stopping;
    apr_thread_mutex_t *mutex;  /* peers, conns, stats, refusal log */
    tp_conn_t *conns;
    size_t nconns;
    apr_time_t last_refusal_log;
    unsigned long refusals_unlogged;
    dkv_transport_stats_t stats;
};

/* ------------------------------------------------------------- helpers */

/* APR's text for RV, starting lowercase as log messages do. */
static const char *
reason(apr_status_t rv, char *buf, size_t size)
{
    size_t n;

    if (DKV_STATUS_IS_DKV(rv)) {
        apr_cpystrn(buf, dkv_strerror(rv), size);
    } else {
        apr_strerror(rv, buf, size);
    }
    if (buf[0] >= 'A' && buf[0] <= 'Z'
        && !(buf[1] >= 'A' && buf[1] <= 'Z')) {
        buf[0] = (char)(buf[0] - 'A' + 'a');
    }
    /* Windows' texts end with ".  " */
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '.'
                     || buf[n - 1] == '\r' || buf[n - 1] == '\n')) {
        buf[--n] = '\0';
    }
    return buf;
}

/* 1 once dkv_transport_destroy began. */
static int
stopping(dkv_transport_t *t)
{
    return apr_atomic_read32(&t->stopping) != 0;
}

/* Adds N to one of T's counters. */
static void
stat_add(dkv_transport_t *t, uint64_t *counter, uint64_t n)
{
    apr_thread_mutex_lock(t->mutex);
    *counter += n;
    apr_thread_mutex_unlock(t->mutex);
}

/* Frees a list of queued messages. */
static void
free_list(tp_msg_t *m)
{
    while (m != NULL) {
        tp_msg_t *next = m->next;

        dkv_free(m->data);
        dkv_free(m);
        m = next;
    }
}

/* 1 when IO should give up: the transport stops or the link was told
 * to end. */
static int
io_aborted(tp_io_t *io)
{
    return apr_atomic_read32(&io->t->stopping) != 0
           || (io->abort != NULL && apr_atomic_read32(io->abort) != 0);
}

/* Waits until IO's socket is ready for EVENTS (APR_POLLIN, APR_POLLOUT)
 * or DEADLINE passes (APR_TIMEUP) or IO is aborted (APR_ECONNABORTED). */
static apr_status_t
io_wait(tp_io_t *io, apr_int16_t events, apr_time_t deadline)
{
    apr_pollfd_t pfd;

    memset(&pfd, 0, sizeof(pfd));
    pfd.desc_type = APR_POLL_SOCKET;
    pfd.desc.s = io->sock;
    pfd.reqevents = events;
    for (;;) {
        apr_interval_time_t slice = IO_SLICE;
        apr_int32_t n = 0;
        apr_status_t rv;

        if (io_aborted(io)) {
            return APR_ECONNABORTED;
        }
        if (deadline != 0) {
            apr_time_t left = deadline - apr_time_now();

            if (left <= 0) {
                return APR_TIMEUP;
            }
            if (left < slice) {
                slice = left;
            }
        }
        rv = apr_poll(&pfd, 1, &n, slice);
        if (rv == APR_SUCCESS && n > 0) {
            return APR_SUCCESS;
        }
        if (rv != APR_SUCCESS && !APR_STATUS_IS_TIMEUP(rv)
            && !APR_STATUS_IS_EINTR(rv)) {
            return rv;
        }
    }
}

/* Sends all LEN bytes of BUF on IO.  DEADLINE 0: fail only when the
 * peer takes nothing for SEND_TIMEOUT. */
static apr_status_t
send_all(tp_io_t *io, const unsigned char *buf, size_t len,
         apr_time_t deadline)
{
    while (len > 0) {
        apr_size_t n = len;
        apr_status_t rv = apr_socket_send(io->sock, (const char *)buf, &n);

        if (n == 0 && APR_STATUS_IS_EAGAIN(rv)) {
            rv = io_wait(io, APR_POLLOUT, deadline != 0
                         ? deadline : apr_time_now() + SEND_TIMEOUT);
            if (rv != APR_SUCCESS) {
                return rv;
            }
            continue;
        }
        if (rv != APR_SUCCESS && n == 0) {
            return rv;
        }
        buf += n;
        len -= n;
    }
    return APR_SUCCESS;
}

/* Reads exactly N bytes into DST; *GOT counts those read (less on
 * failure).  DEADLINE nonzero bounds the whole read (APR_TIMEUP).  A
 * clean end of the stream is APR_EOF. */
static apr_status_t
rd_exact(tp_io_t *io, unsigned char *dst, size_t n, size_t *got,
         apr_time_t deadline)
{
    *got = 0;
    while (*got < n) {
        apr_status_t rv;
        apr_size_t k;

        if (io->pos < io->len) {
            size_t take = io->len - io->pos;

            if (take > n - *got) {
                take = n - *got;
            }
            memcpy(dst + *got, io->buf + io->pos, take);
            io->pos += take;
            *got += take;
            continue;
        }
        if (io->buf == NULL || n - *got >= io->cap) {
            k = n - *got;
            rv = apr_socket_recv(io->sock, (char *)dst + *got, &k);
            *got += k;
        } else {
            k = io->cap;
            rv = apr_socket_recv(io->sock, (char *)io->buf, &k);
            io->pos = 0;
            io->len = k;
        }
        if (k == 0 && APR_STATUS_IS_EAGAIN(rv)) {
            rv = io_wait(io, APR_POLLIN, deadline);
            if (rv != APR_SUCCESS) {
                return rv;
            }
            continue;
        }
        if (rv != APR_SUCCESS && k == 0) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

/* Runs LINK's handshake over RD's socket until DEADLINE.  On a failure of
 * the link the message is dkv_last_error's; on a socket failure it is
 * set here.  *PENDING receives the bytes of an unfinished step. */
static dkv_status_t
handshake(dkv_link_t *link, tp_io_t *io, apr_time_t deadline)
{
    unsigned char in[DKV_LINK_HS_MAX], out[DKV_LINK_HS_MAX];
    size_t out_len = 0, got = 0, need;
    apr_status_t rv;
    char err[120];

    rv = dkv_link_start(link, out, &out_len);
    while (rv == DKV_OK) {
        if (out_len > 0) {
            rv = send_all(io, out, out_len, deadline);
            if (rv != APR_SUCCESS) {
                return dkv_error_set(rv, "handshake: send: %s",
                                     reason(rv, err, sizeof(err)));
            }
        }
        need = dkv_link_need(link);
        if (need == 0) {
            break;
        }
        rv = rd_exact(io, in, need, &got, deadline);
        if (rv == APR_EOF) {
            return dkv_link_eof(link, got);
        }
        if (APR_STATUS_IS_TIMEUP(rv)) {
            return dkv_error_set(DKV_ETIMEOUT, "handshake not done within "
                                 "%d s", (int)apr_time_sec(
                                     HANDSHAKE_TIMEOUT));
        }
        if (rv != APR_SUCCESS) {
            return dkv_error_set(rv, "handshake: receive: %s",
                                 reason(rv, err, sizeof(err)));
        }
        rv = dkv_link_input(link, in, need, out, &out_len);
    }
    if (rv == DKV_OK && !dkv_link_established(link)) {
        rv = dkv_error_set(DKV_EINVAL, "handshake ended unfinished");
    }
    return rv;
}

/* A link for T with the given role. */
static dkv_status_t
new_link(dkv_link_t **link, dkv_transport_t *t, int initiator,
         uint32_t expect)
{
    dkv_link_opts_t o;
    dkv_status_t rv;

    memset(&o, 0, sizeof(o));
    o.self = t->self;
    o.store = t->store;
    o.secret = t->secret;
    o.initiator = initiator;
    o.expect = expect;
    /* The link copies the peer ids: a peer added later is allowed on
     * the links made after it. */
    apr_thread_mutex_lock(t->mutex);
    o.peers = t->peer_ids;
    o.npeers = t->npeers;
    rv = dkv_link_create(link, &o);
    apr_thread_mutex_unlock(t->mutex);
    return rv;
}

/* ------------------------------------------------------------- readers */

/* Logs a refused inbound connection: a warning, at most one a
 * REFUSAL_LOG_GAP (the rest at debug level, counted in the next one), so
 * a flood of bad connections cannot flood the log. */
static void
log_refusal(dkv_transport_t *t, const char *addr, const char *why)
{
    apr_time_t now = apr_time_now();
    unsigned long skipped = 0;
    int warn = 0;

    apr_thread_mutex_lock(t->mutex);
    if (now - t->last_refusal_log >= REFUSAL_LOG_GAP) {
        t->last_refusal_log = now;
        skipped = t->refusals_unlogged;
        t->refusals_unlogged = 0;
        warn = 1;
    } else {
        t->refusals_unlogged++;
    }
    apr_thread_mutex_unlock(t->mutex);
    if (warn && skipped > 0) {
        dkv_log(DKV_LOG_WARN, "cluster port: refused %s: %s (and %lu "
                "more refusals since the last warning)", addr, why,
                skipped);
    } else {
        dkv_log(warn ? DKV_LOG_WARN : DKV_LOG_DEBUG, "cluster port: "
                "refused %s: %s", addr, why);
    }
}

/* Closes C's socket (once). */
static void
conn_close(tp_conn_t *c)
{
    apr_thread_mutex_lock(c->t->mutex);
    if (c->sock != NULL) {
        apr_socket_close(c->sock);
        c->sock = NULL;
    }
    apr_thread_mutex_unlock(c->t->mutex);
}

/* Registers C as the link from PEER, shutting down an older one. */
static void
conn_register(tp_conn_t *c, uint32_t peer)
{
    dkv_transport_t *t = c->t;
    tp_conn_t *o;

    apr_thread_mutex_lock(t->mutex);
    for (o = t->conns; o != NULL; o = o->next) {
        if (o != c && o->peer == peer && o->sock != NULL && !o->done) {
            apr_atomic_set32(&o->abort, 1);
            apr_socket_shutdown(o->sock, APR_SHUTDOWN_READWRITE);
        }
    }
    c->peer = peer;
    t->stats.inbound_up++;
    apr_thread_mutex_unlock(t->mutex);
}

/* Reads frames from an established inbound link until it ends. */
static void
read_frames(tp_conn_t *c, dkv_link_t *link, tp_io_t *io)
{
    dkv_transport_t *t = c->t;
    unsigned char hdr[DKV_LINK_HEADER_SIZE];
    char err[120];

    for (;;) {
        unsigned char *body;
        size_t got = 0, body_len = 0, msg_len = 0;
        apr_status_t rv = rd_exact(io, hdr, sizeof(hdr), &got, 0);

        if (rv == APR_SUCCESS) {
            rv = dkv_link_frame_len(link, &body_len, hdr);
            if (rv != DKV_OK) {
                break;
            }
            body = dkv_malloc(body_len);
            if (body == NULL) {
                rv = dkv_error_set(APR_ENOMEM, "out of memory for a "
                                   "frame of %zu bytes", body_len);
                break;
            }
            rv = rd_exact(io, body, body_len, &got, 0);
            got += sizeof(hdr);
            if (rv == APR_SUCCESS) {
                rv = dkv_link_open_inplace(link, &msg_len, hdr, body,
                                           body_len);
            }
            if (rv != APR_SUCCESS) {
                dkv_free(body);
            } else {
                stat_add(t, &t->stats.received, 1);
                t->recv(t->baton, c->peer, body, msg_len);
                continue;
            }
        }
        if (rv == APR_EOF) {
            rv = dkv_link_eof(link, got);
            if (rv == DKV_OK) {
                dkv_log(DKV_LOG_INFO, "cluster link from node %lu (%s) "
                        "closed by the peer", (unsigned long)c->peer,
                        c->addr);
                return;
            }
        } else if (!DKV_STATUS_IS_DKV(rv)) {
            if (stopping(t)) {
                return;
            }
            if (apr_atomic_read32(&c->abort) != 0) {
                dkv_log(DKV_LOG_INFO, "cluster link from node %lu (%s) "
                        "replaced by a newer one", (unsigned long)c->peer,
                        c->addr);
                return;
            }
            dkv_log(DKV_LOG_INFO, "cluster link from node %lu (%s) down: "
                    "%s", (unsigned long)c->peer, c->addr,
                    reason(rv, err, sizeof(err)));
            return;
        }
        break;
    }
    stat_add(t, &t->stats.bad_frames, 1);
    dkv_log(DKV_LOG_WARN, "cluster link from node %lu (%s) dropped: %s",
            (unsigned long)c->peer, c->addr, dkv_last_error());
}

/* An inbound connection's thread: the responder's handshake, then
 * frames to the receive callback until the link ends. */
static void *APR_THREAD_FUNC
reader_main(apr_thread_t *thread, void *data)
{
    tp_conn_t *c = data;
    dkv_transport_t *t = c->t;
    dkv_link_t *link = NULL;
    tp_io_t io;
    dkv_status_t rv;

    (void)thread;
    memset(&io, 0, sizeof(io));
    io.t = t;
    io.sock = c->sock;
    io.abort = &c->abort;
    io.cap = RBUF_SIZE;
    io.buf = dkv_malloc(io.cap);
    rv = io.buf == NULL ? dkv_error_set(APR_ENOMEM, "out of memory")
                        : new_link(&link, t, 0, 0);
    if (rv == DKV_OK) {
        rv = handshake(link, &io, apr_time_now() + HANDSHAKE_TIMEOUT);
    }
    if (rv != DKV_OK) {
        if (!stopping(t)) {
            stat_add(t, &t->stats.refused, 1);
            log_refusal(t, c->addr, dkv_last_error());
        }
    } else {
        conn_register(c, dkv_link_peer(link));
        dkv_log(DKV_LOG_INFO, "cluster link from node %lu (%s) up",
                (unsigned long)c->peer, c->addr);
        read_frames(c, link, &io);
    }
    dkv_link_destroy(link);
    dkv_free(io.buf);
    conn_close(c);
    apr_thread_mutex_lock(t->mutex);
    c->done = 1;
    apr_thread_mutex_unlock(t->mutex);
    return NULL;
}

/* ------------------------------------------------------------ acceptor */

/* Joins the readers that ended and frees them; ALL: every reader (at
 * destroy, after their sockets were shut down). */
static void
reap(dkv_transport_t *t, int all)
{
    tp_conn_t **pp = &t->conns;

    for (;;) {
        tp_conn_t *c;
        apr_status_t ignored;

        apr_thread_mutex_lock(t->mutex);
        while (*pp != NULL && !(*pp)->done && !all) {
            pp = &(*pp)->next;
        }
        c = *pp;
        if (c != NULL) {
            *pp = c->next;
            t->nconns--;
        }
        apr_thread_mutex_unlock(t->mutex);
        if (c == NULL) {
            return;
        }
        apr_thread_join(&ignored, c->thread);
        apr_pool_destroy(c->pool);
    }
}

/* Starts a reader for the accepted SOCK (in POOL, which it takes). */
static void
start_reader(dkv_transport_t *t, apr_socket_t *sock, apr_pool_t *pool)
{
    apr_sockaddr_t *sa = NULL;
    char ip[64] = "?";
    tp_conn_t *c = apr_pcalloc(pool, sizeof(*c));
    apr_status_t rv;
    char err[120];

    c->t = t;
    c->pool = pool;
    c->sock = sock;
    if (apr_socket_addr_get(&sa, APR_REMOTE, sock) == APR_SUCCESS) {
        apr_sockaddr_ip_getbuf(ip, sizeof(ip), sa);
    }
    apr_snprintf(c->addr, sizeof(c->addr), strchr(ip, ':') ? "[%s]:%u"
                                                          : "%s:%u", ip,
                 sa != NULL ? (unsigned)sa->port : 0u);
    apr_thread_mutex_lock(t->mutex);
    if (t->nconns >= MAX_INBOUND) {
        apr_thread_mutex_unlock(t->mutex);
        log_refusal(t, c->addr, "too many inbound cluster connections");
        apr_pool_destroy(pool);
        return;
    }
    apr_socket_opt_set(sock, APR_TCP_NODELAY, 1);
    rv = apr_thread_create(&c->thread, NULL, reader_main, c, pool);
    if (rv == APR_SUCCESS) {
        c->next = t->conns;
        t->conns = c;
        t->nconns++;
    }
    apr_thread_mutex_unlock(t->mutex);
    if (rv != APR_SUCCESS) {
        dkv_log(DKV_LOG_ERROR, "cluster port: cannot start a reader for "
                "%s: %s", c->addr, reason(rv, err, sizeof(err)));
        apr_pool_destroy(pool);
    }
}

/* The listener's thread: accepts, starts readers, reaps ended ones. */
static void *APR_THREAD_FUNC
acceptor_main(apr_thread_t *thread, void *data)
{
    dkv_transport_t *t = data;
    apr_pollfd_t pfd;

    (void)thread;
    memset(&pfd, 0, sizeof(pfd));
    pfd.p = t->pool;
    pfd.desc_type = APR_POLL_SOCKET;
    pfd.desc.s = t->listener;
    pfd.reqevents = APR_POLLIN;
    while (!stopping(t)) {
        apr_int32_t n = 0;
        apr_status_t rv = apr_poll(&pfd, 1, &n, ACCEPT_POLL);

        reap(t, 0);
        if (rv != APR_SUCCESS || n == 0 || stopping(t)) {
            continue;
        }
        for (;;) {
            apr_pool_t *cp = NULL;
            apr_socket_t *sock = NULL;

            if (apr_pool_create(&cp, t->pool) != APR_SUCCESS) {
                break;
            }
            rv = apr_socket_accept(&sock, t->listener, cp);
            if (rv != APR_SUCCESS) {
                apr_pool_destroy(cp);
                break;
            }
            /* Non-blocking: the reader waits in apr_poll. */
            apr_socket_opt_set(sock, APR_SO_NONBLOCK, 1);
            apr_socket_timeout_set(sock, 0);
            start_reader(t, sock, cp);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------- writers */

/* Waits TIMEOUT unless P is stopped first (new messages do not cut the
 * wait short: they would turn the backoff into a busy loop). */
static void
peer_backoff(tp_peer_t *p, apr_interval_time_t timeout)
{
    apr_time_t end = apr_time_now() + timeout;

    apr_thread_mutex_lock(p->mutex);
    while (!p->stop) {
        apr_time_t left = end - apr_time_now();

        if (left <= 0) {
            break;
        }
        apr_thread_cond_timedwait(p->wake, p->mutex, left);
    }
    apr_thread_mutex_unlock(p->mutex);
}

/* Connects P's link (to each address of its host in turn, until one
 * answers) and runs the handshake; *SOCK and *LINK are the result (in
 * POOL).  Failure: the message is set. */
static dkv_status_t
peer_connect(tp_peer_t *p, tp_io_t *io, dkv_link_t **link,
             apr_pool_t *pool)
{
    apr_sockaddr_t *sa = NULL;
    apr_socket_t *s = NULL;
    apr_status_t rv;
    char err[120];
    const char *host;
    unsigned port;

    memset(io, 0, sizeof(*io));
    io->t = p->t;
    io->abort = &p->abort;
    *link = NULL;
    apr_thread_mutex_lock(p->mutex);
    host = apr_pstrdup(pool, p->host);
    port = p->port;
    apr_atomic_set32(&p->abort, p->stop);
    apr_thread_mutex_unlock(p->mutex);
    rv = apr_sockaddr_info_get(&sa, host, APR_UNSPEC, (apr_port_t)port, 0,
                               pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot resolve '%s': %s", host,
                             reason(rv, err, sizeof(err)));
    }
    for (;;) {
        rv = apr_socket_create(&s, sa->family, SOCK_STREAM, APR_PROTO_TCP,
                               pool);
        if (rv != APR_SUCCESS) {
            return dkv_error_set(rv, "socket: %s",
                                 reason(rv, err, sizeof(err)));
        }
        apr_thread_mutex_lock(p->mutex);
        if (p->stop) {
            apr_thread_mutex_unlock(p->mutex);
            apr_socket_close(s);
            return dkv_error_set(DKV_ECLOSED, "transport stopping");
        }
        if (strcmp(host, p->host) != 0 || port != p->port) {
            apr_thread_mutex_unlock(p->mutex);
            apr_socket_close(s);
            return dkv_error_set(DKV_ETRANSPORT, "its address changed");
        }
        p->sock = s;
        apr_thread_mutex_unlock(p->mutex);
        apr_socket_opt_set(s, APR_TCP_NODELAY, 1);
        rv = dkv_plat_connect(s, sa, CONNECT_TIMEOUT);
        if (rv == APR_SUCCESS || sa->next == NULL) {
            break;
        }
        /* The host's next address: "localhost" is ::1 first in Debian's
         * /etc/hosts, while the peer may listen on IPv4 only. */
        apr_thread_mutex_lock(p->mutex);
        p->sock = NULL;
        apr_thread_mutex_unlock(p->mutex);
        apr_socket_close(s);
        sa = sa->next;
    }
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "connect: %s",
                             reason(rv, err, sizeof(err)));
    }
    rv = apr_socket_opt_set(s, APR_SO_NONBLOCK, 1);
    if (rv == APR_SUCCESS) {
        rv = apr_socket_timeout_set(s, 0);
    }
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "socket: %s", reason(rv, err, sizeof(err)));
    }
    rv = new_link(link, p->t, 1, p->id);
    if (rv != DKV_OK) {
        return rv;
    }
    io->sock = s;
    rv = handshake(*link, io, apr_time_now() + HANDSHAKE_TIMEOUT);
    if (rv != DKV_OK) {
        if (DKV_STATUS_IS_DKV(rv) && rv != DKV_ETIMEOUT
            && rv != DKV_ETRANSPORT) {
            stat_add(p->t, &p->t->stats.out_refused, 1);
        }
        return rv;
    }
    return DKV_OK;
}

/* 1 when the peer closed SOCK (it never sends after the handshake, so
 * anything to read is the end, or a protocol violation). */
static int
peer_closed(apr_socket_t *sock, apr_pool_t *pool)
{
    apr_pollfd_t pfd;
    apr_int32_t n = 0;

    memset(&pfd, 0, sizeof(pfd));
    pfd.p = pool;
    pfd.desc_type = APR_POLL_SOCKET;
    pfd.desc.s = sock;
    pfd.reqevents = APR_POLLIN;
    return apr_poll(&pfd, 1, &n, 0) == APR_SUCCESS && n > 0;
}

/* Seals and sends the messages of BATCH on SOCK in order; frees them.
 * Returns APR_SUCCESS or the failure (the rest of BATCH is dropped);
 * *SENT counts the messages written, *BYTES their queue bytes. */
static apr_status_t
send_batch(tp_io_t *io, dkv_link_t *link, unsigned char *wbuf,
           tp_msg_t *batch, size_t *sent, size_t *bytes)
{
    size_t wlen = 0;
    apr_status_t rv = APR_SUCCESS;
    tp_msg_t *m;

    *sent = 0;
    for (m = batch; m != NULL && rv == APR_SUCCESS; m = m->next) {
        if (m->len <= SMALL_MSG) {
            unsigned char *f;

            if (wlen + m->len + DKV_LINK_FRAME_OVERHEAD > WBUF_SIZE) {
                rv = send_all(io, wbuf, wlen, 0);
                wlen = 0;
                if (rv != APR_SUCCESS) {
                    break;
                }
            }
            f = wbuf + wlen;
            memcpy(f + DKV_LINK_HEADER_SIZE, m->data, m->len);
            rv = dkv_link_seal_inplace(link, f, f + DKV_LINK_HEADER_SIZE,
                                       m->len, f + DKV_LINK_HEADER_SIZE
                                                   + m->len);
            wlen += m->len + DKV_LINK_FRAME_OVERHEAD;
        } else {
            unsigned char hdr[DKV_LINK_HEADER_SIZE];
            unsigned char tag[DKV_LINK_TAG_SIZE];

            if (wlen > 0) {
                rv = send_all(io, wbuf, wlen, 0);
                wlen = 0;
                if (rv != APR_SUCCESS) {
                    break;
                }
            }
            rv = dkv_link_seal_inplace(link, hdr, m->data, m->len, tag);
            if (rv == APR_SUCCESS) {
                rv = send_all(io, hdr, sizeof(hdr), 0);
            }
            if (rv == APR_SUCCESS) {
                rv = send_all(io, m->data, m->len, 0);
            }
            if (rv == APR_SUCCESS) {
                rv = send_all(io, tag, sizeof(tag), 0);
            }
        }
        if (rv == APR_SUCCESS) {
            (*sent)++;
        }
    }
    if (rv == APR_SUCCESS && wlen > 0) {
        rv = send_all(io, wbuf, wlen, 0);
    }
    if (rv != APR_SUCCESS) {
        *sent = 0;      /* a buffered part may not have left */
    }
    *bytes = 0;
    for (m = batch; m != NULL; m = m->next) {
        *bytes += m->len;
    }
    free_list(batch);
    return rv;
}

/* Carries P's queue over an established link until it fails or the
 * transport stops.  Returns the failure (DKV_OK when stopping). */
static apr_status_t
peer_pump(tp_peer_t *p, tp_io_t *io, dkv_link_t *link,
          unsigned char *wbuf, apr_pool_t *pool)
{
    dkv_transport_t *t = p->t;
    char err[120];

    for (;;) {
        tp_msg_t *batch;
        size_t sent = 0, bytes = 0;
        apr_status_t rv;

        apr_thread_mutex_lock(p->mutex);
        while (p->head == NULL && !p->stop) {
            apr_status_t w = apr_thread_cond_timedwait(p->wake, p->mutex,
                                                       IDLE_CHECK);

            if (APR_STATUS_IS_TIMEUP(w) && p->head == NULL && !p->stop) {
                apr_thread_mutex_unlock(p->mutex);
                if (peer_closed(io->sock, pool)) {
                    return dkv_error_set(DKV_ETRANSPORT, "closed by the "
                                         "peer");
                }
                apr_thread_mutex_lock(p->mutex);
            }
        }
        if (p->stop) {
            apr_thread_mutex_unlock(p->mutex);
            return DKV_OK;
        }
        batch = p->head;
        p->head = p->tail = NULL;
        apr_thread_mutex_unlock(p->mutex);

        rv = send_batch(io, link, wbuf, batch, &sent, &bytes);
        apr_thread_mutex_lock(p->mutex);
        p->bytes -= bytes;
        apr_thread_cond_broadcast(p->room);
        apr_thread_mutex_unlock(p->mutex);
        apr_thread_mutex_lock(t->mutex);
        t->stats.sent += sent;
        apr_thread_mutex_unlock(t->mutex);
        if (rv != APR_SUCCESS) {
            if (DKV_STATUS_IS_DKV(rv)) {
                return rv;
            }
            return dkv_error_set(rv, "send: %s",
                                 reason(rv, err, sizeof(err)));
        }
    }
}

/* A peer's writer: connects, sends its queue, reconnects with backoff
 * after failures, until the transport stops. */
static void *APR_THREAD_FUNC
writer_main(apr_thread_t *thread, void *data)
{
    tp_peer_t *p = data;
    dkv_transport_t *t = p->t;
    apr_interval_time_t backoff = BACKOFF_MIN;
    unsigned long failures = 0;
    unsigned char *wbuf = dkv_malloc(WBUF_SIZE);

    (void)thread;
    if (wbuf == NULL) {
        dkv_log(DKV_LOG_ERROR, "cluster link to %s: out of memory",
                p->where);
        return NULL;
    }
    for (;;) {
        apr_pool_t *cp = NULL;
        tp_io_t io;
        dkv_link_t *link = NULL;
        dkv_status_t rv;
        int stop;
        char where[sizeof(p->where)];

        apr_thread_mutex_lock(p->mutex);
        stop = p->stop;
        memcpy(where, p->where, sizeof(where));
        apr_thread_mutex_unlock(p->mutex);
        if (stop || apr_pool_create(&cp, p->pool) != APR_SUCCESS) {
            break;
        }
        rv = peer_connect(p, &io, &link, cp);
        if (rv == DKV_OK) {
            apr_thread_mutex_lock(p->mutex);
            p->connected = 1;
            apr_thread_mutex_unlock(p->mutex);
            stat_add(t, &t->stats.links_up, 1);
            if (failures > 0) {
                dkv_log(DKV_LOG_INFO, "cluster link to %s up (after %lu "
                        "failed attempts)", where, failures);
            } else {
                dkv_log(DKV_LOG_INFO, "cluster link to %s up", where);
            }
            failures = 0;
            backoff = BACKOFF_MIN;
            rv = peer_pump(p, &io, link, wbuf, cp);
            apr_thread_mutex_lock(p->mutex);
            p->connected = 0;
            apr_thread_mutex_unlock(p->mutex);
            if (rv != DKV_OK && !stopping(t)) {
                dkv_log(DKV_LOG_INFO, "cluster link to %s down: %s",
                        where, dkv_last_error());
            }
        } else if (!stopping(t)) {
            failures++;
            dkv_log(failures == 1 ? DKV_LOG_WARN : DKV_LOG_DEBUG,
                    "cluster link to %s: %s%s", where, dkv_last_error(),
                    failures == 1 ? " (retrying)" : "");
        }
        apr_thread_mutex_lock(p->mutex);
        p->sock = NULL;
        apr_thread_mutex_unlock(p->mutex);
        dkv_link_destroy(link);
        apr_pool_destroy(cp);   /* closes the socket */
        peer_backoff(p, backoff);
        if (rv != DKV_OK) {
            backoff = backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : backoff * 2;
        }
    }
    dkv_free(wbuf);
    return NULL;
}

/* ----------------------------------------------------------- lifecycle */

/* Binds T's listener on BIND:PORT. */
static dkv_status_t
listen_on(dkv_transport_t *t, const char *bind, unsigned port)
{
    apr_sockaddr_t *sa = NULL, *local = NULL;
    apr_socket_t *s = NULL;
    apr_status_t rv;
    char err[120];
    char where[96];

    apr_snprintf(where, sizeof(where), strchr(bind, ':') ? "[%s]:%u"
                                                         : "%s:%u",
                 bind, port);
    rv = apr_sockaddr_info_get(&sa, bind, APR_UNSPEC, (apr_port_t)port, 0,
                               t->pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot listen on cluster port %s: cannot "
                             "resolve '%s': %s", where, bind,
                             reason(rv, err, sizeof(err)));
    }
    rv = apr_socket_create(&s, sa->family, SOCK_STREAM, APR_PROTO_TCP,
                           t->pool);
    if (rv == APR_SUCCESS) {
        rv = dkv_plat_listener_prepare(s);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_bind(s, sa);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_listen(s, 64);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_opt_set(s, APR_SO_NONBLOCK, 1);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_timeout_set(s, 0);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_addr_get(&local, APR_LOCAL, s);
    }
    if (rv != APR_SUCCESS) {
        if (s != NULL) {
            apr_socket_close(s);
        }
        return dkv_error_set(rv, "cannot listen on cluster port %s: %s",
                             where, reason(rv, err, sizeof(err)));
    }
    t->listener = s;
    t->port = local->port;
    return DKV_OK;
}

/* Makes T's pool: its own allocator, with a mutex, since the transport's
 * threads make and destroy pools in it concurrently. */
static apr_status_t
make_pool(apr_pool_t **out, apr_pool_t *parent)
{
    apr_allocator_t *al = NULL;
    apr_thread_mutex_t *mx = NULL;
    apr_pool_t *p = NULL;
    apr_status_t rv = apr_allocator_create(&al);

    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_pool_create_ex(&p, parent, NULL, al);
    if (rv != APR_SUCCESS) {
        apr_allocator_destroy(al);
        return rv;
    }
    apr_allocator_owner_set(al, p);
    rv = apr_thread_mutex_create(&mx, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(p);
        return rv;
    }
    apr_allocator_mutex_set(al, mx);
    *out = p;
    return APR_SUCCESS;
}

/* Stops and frees everything T started; T's fields tell what exists. */
static void
shutdown_all(dkv_transport_t *t)
{
    apr_status_t ignored;
    size_t i, npeers;
    tp_conn_t *c;

    /* Under the mutex: no peer is added from now on. */
    apr_thread_mutex_lock(t->mutex);
    apr_atomic_set32(&t->stopping, 1);
    apr_thread_mutex_unlock(t->mutex);
    if (t->acceptor != NULL) {
        apr_thread_join(&ignored, t->acceptor);
        t->acceptor = NULL;
    }
    if (t->listener != NULL) {
        apr_socket_close(t->listener);
        t->listener = NULL;
    }
    apr_thread_mutex_lock(t->mutex);
    npeers = t->npeers;
    apr_thread_mutex_unlock(t->mutex);
    for (i = 0; i < npeers; i++) {
        tp_peer_t *p = t->peers[i];

        apr_thread_mutex_lock(p->mutex);
        p->stop = 1;
        apr_atomic_set32(&p->abort, 1);
        if (p->sock != NULL) {
            apr_socket_shutdown(p->sock, APR_SHUTDOWN_READWRITE);
        }
        apr_thread_cond_broadcast(p->wake);
        apr_thread_cond_broadcast(p->room);
        apr_thread_mutex_unlock(p->mutex);
    }
    apr_thread_mutex_lock(t->mutex);
    for (c = t->conns; c != NULL; c = c->next) {
        apr_atomic_set32(&c->abort, 1);
        if (c->sock != NULL) {
            apr_socket_shutdown(c->sock, APR_SHUTDOWN_READWRITE);
        }
    }
    apr_thread_mutex_unlock(t->mutex);
    for (i = 0; i < npeers; i++) {
        tp_peer_t *p = t->peers[i];

        if (p->thread != NULL) {
            apr_thread_join(&ignored, p->thread);
            p->thread = NULL;
        }
        free_list(p->head);
        p->head = p->tail = NULL;
    }
    reap(t, 1);
}

/* Sets P's address to HOST:PORT (P's mutex held, or P not running). */
static dkv_status_t
peer_address(tp_peer_t *p, const char *host, unsigned port)
{
    char *h = dkv_strdup(host);

    if (h == NULL) {
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    dkv_free(p->host);
    p->host = h;
    p->port = port;
    apr_snprintf(p->where, sizeof(p->where),
                 strchr(host, ':') ? "node %lu ([%s]:%u)" : "node %lu (%s:%u)",
                 (unsigned long)p->id, host, port);
    return DKV_OK;
}

/* Frees P (its writer ended or never started). */
static void
peer_free(tp_peer_t *p)
{
    if (p == NULL) {
        return;
    }
    free_list(p->head);
    dkv_free(p->host);
    if (p->pool != NULL) {
        apr_pool_destroy(p->pool);
    }
    dkv_free(p);
}

/* Adds peer SRC to T and starts its writer (T's mutex held). */
static dkv_status_t
peer_add_locked(dkv_transport_t *t, const dkv_transport_peer_t *src)
{
    tp_peer_t *p;
    apr_status_t rv;
    char err[120];

    if (t->npeers == t->cappeers) {
        size_t cap = t->cappeers ? t->cappeers * 2 : 8;
        tp_peer_t **pa = dkv_realloc(t->peers, cap * sizeof(*pa));
        uint32_t *ids;

        if (pa == NULL) {
            return dkv_error_set(APR_ENOMEM, "out of memory");
        }
        t->peers = pa;
        ids = dkv_realloc(t->peer_ids, cap * sizeof(*ids));
        if (ids == NULL) {
            return dkv_error_set(APR_ENOMEM, "out of memory");
        }
        t->peer_ids = ids;
        t->cappeers = cap;
    }
    p = dkv_calloc(1, sizeof(*p));
    if (p == NULL) {
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    p->t = t;
    p->id = src->id;
    if (peer_address(p, src->host, src->port) != DKV_OK) {
        dkv_free(p);
        return APR_ENOMEM;
    }
    rv = apr_pool_create(&p->pool, t->pool);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&p->mutex, APR_THREAD_MUTEX_DEFAULT,
                                     p->pool);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_cond_create(&p->wake, p->pool);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_cond_create(&p->room, p->pool);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&p->thread, NULL, writer_main, p, p->pool);
    }
    if (rv != APR_SUCCESS) {
        p->thread = NULL;
        peer_free(p);
        return dkv_error_set(rv, "transport: cannot start the link to "
                             "node %lu: %s", (unsigned long)src->id,
                             reason(rv, err, sizeof(err)));
    }
    t->peers[t->npeers] = p;
    t->peer_ids[t->npeers] = p->id;
    t->npeers++;
    return DKV_OK;
}

/* 1 when SRC names a usable peer address. */
static int
peer_valid(const dkv_transport_peer_t *src)
{
    return src->id != 0 && src->host != NULL && src->host[0] != '\0'
           && strlen(src->host) < 256 && src->port != 0
           && src->port <= 65535;
}

/* See transport.h. */
dkv_status_t
dkv_transport_create(dkv_transport_t **transport,
                     const dkv_transport_opts_t *opts,
                     dkv_transport_recv_fn *recv, void *baton,
                     apr_pool_t *pool)
{
    dkv_transport_t *t;
    apr_pool_t *tp = NULL;
    apr_status_t rv;
    size_t i, k;
    char err[120];

    *transport = NULL;
    if (opts == NULL || recv == NULL || opts->secret == NULL
        || opts->store == NULL || opts->self == 0
        || (opts->npeers > 0 && opts->peers == NULL)) {
        return dkv_error_set(DKV_EINVAL, "transport: missing secret, store "
                             "name, node id or receive function");
    }
    for (i = 0; i < opts->npeers; i++) {
        const dkv_transport_peer_t *src = &opts->peers[i];

        for (k = 0; k < i; k++) {
            if (opts->peers[k].id == src->id) {
                break;
            }
        }
        if (src->id != opts->self && (!peer_valid(src) || k < i)) {
            return dkv_error_set(DKV_EINVAL, "transport: peer %zu: bad or "
                                 "repeated id, or no host or port", i);
        }
    }
    if (sodium_init() < 0) {
        return dkv_error_set(DKV_EUNAVAILABLE, "libsodium failed to "
                             "initialize");
    }
    rv = make_pool(&tp, pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "transport: %s",
                             reason(rv, err, sizeof(err)));
    }
    t = apr_pcalloc(tp, sizeof(*t));
    t->pool = tp;
    t->self = opts->self;
    t->store = apr_pstrdup(tp, opts->store);
    t->max_queue = opts->max_queue_bytes ? opts->max_queue_bytes
                                         : DEFAULT_QUEUE;
    t->recv = recv;
    t->baton = baton;
    t->secret = sodium_malloc(DKV_LINK_SECRET_SIZE);
    if (t->secret == NULL) {
        apr_pool_destroy(tp);
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    memcpy(t->secret, opts->secret, DKV_LINK_SECRET_SIZE);

    rv = apr_thread_mutex_create(&t->mutex, APR_THREAD_MUTEX_DEFAULT, tp);
    if (rv == APR_SUCCESS) {
        rv = listen_on(t, opts->bind ? opts->bind : "127.0.0.1",
                       opts->port);
        if (rv != APR_SUCCESS) {
            sodium_free(t->secret);
            apr_pool_destroy(tp);
            return rv;
        }
    }
    else {
        sodium_free(t->secret);
        apr_pool_destroy(tp);
        return dkv_error_set(rv, "transport: %s",
                             reason(rv, err, sizeof(err)));
    }
    apr_thread_mutex_lock(t->mutex);
    for (i = 0; rv == APR_SUCCESS && i < opts->npeers; i++) {
        if (opts->peers[i].id != opts->self) {
            rv = peer_add_locked(t, &opts->peers[i]);
        }
    }
    apr_thread_mutex_unlock(t->mutex);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&t->acceptor, NULL, acceptor_main, t, tp);
        if (rv != APR_SUCCESS) {
            dkv_error_set(rv, "transport: cannot start: %s",
                          reason(rv, err, sizeof(err)));
        }
    }
    if (rv != APR_SUCCESS) {
        dkv_transport_destroy(t);
        return rv;
    }
    dkv_log(DKV_LOG_DEBUG, "cluster port %u: node %lu of store '%s', %zu "
            "peers", t->port, (unsigned long)t->self, t->store, t->npeers);
    *transport = t;
    return DKV_OK;
}

/* See transport.h. */
unsigned
dkv_transport_port(const dkv_transport_t *transport)
{
    return transport->port;
}

/* T's peer ID, or NULL. */
static tp_peer_t *
find_peer(dkv_transport_t *t, uint32_t id)
{
    tp_peer_t *p = NULL;
    size_t i;

    apr_thread_mutex_lock(t->mutex);
    for (i = 0; i < t->npeers; i++) {
        if (t->peers[i]->id == id) {
            p = t->peers[i];
            break;
        }
    }
    apr_thread_mutex_unlock(t->mutex);
    return p;
}

/* See transport.h. */
dkv_status_t
dkv_transport_add_peer(dkv_transport_t *transport, uint32_t id,
                       const char *host, unsigned port)
{
    dkv_transport_t *t = transport;
    dkv_transport_peer_t src;
    tp_peer_t *p = NULL;
    dkv_status_t rv = DKV_OK;
    size_t i;

    src.id = id;
    src.host = host;
    src.port = port;
    if (id == t->self) {
        return DKV_OK;
    }
    if (!peer_valid(&src)) {
        return dkv_error_set(DKV_EINVAL, "transport: peer %lu: bad id, host "
                             "or port", (unsigned long)id);
    }
    apr_thread_mutex_lock(t->mutex);
    if (stopping(t)) {
        apr_thread_mutex_unlock(t->mutex);
        return dkv_error_set(DKV_ECLOSED, "the transport is stopping");
    }
    for (i = 0; i < t->npeers; i++) {
        if (t->peers[i]->id == id) {
            p = t->peers[i];
            break;
        }
    }
    if (p == NULL) {
        rv = peer_add_locked(t, &src);
        apr_thread_mutex_unlock(t->mutex);
        if (rv == DKV_OK) {
            dkv_log(DKV_LOG_INFO, "cluster port: peer node %lu added "
                    "(%s:%u)", (unsigned long)id, host, port);
        }
        return rv;
    }
    apr_thread_mutex_lock(p->mutex);
    if (strcmp(p->host, host) != 0 || p->port != port) {
        rv = peer_address(p, host, port);
        if (rv == DKV_OK && p->sock != NULL) {
            /* The link (or the attempt) at the old address ends; the
             * writer reconnects at the new one. */
            apr_atomic_set32(&p->abort, 1);
            apr_socket_shutdown(p->sock, APR_SHUTDOWN_READWRITE);
        }
        if (rv == DKV_OK) {
            dkv_log(DKV_LOG_INFO, "cluster port: %s: new address", p->where);
        }
    }
    apr_thread_mutex_unlock(p->mutex);
    apr_thread_mutex_unlock(t->mutex);
    return rv;
}

/* Queues MSG on P when it fits (P's mutex held); 1 when queued. */
static int
enqueue(tp_peer_t *p, tp_msg_t *m)
{
    size_t max = p->t->max_queue;

    if (p->bytes > 0 && (m->len > max || p->bytes > max - m->len)) {
        return 0;
    }
    p->bytes += m->len;
    if (p->tail != NULL) {
        p->tail->next = m;
    } else {
        p->head = m;
    }
    p->tail = m;
    apr_thread_cond_signal(p->wake);
    return 1;
}

/* See transport.h.  TIMEOUT_MS < 0: do not wait (dkv_transport_send). */
static dkv_status_t
send_msg(dkv_transport_t *t, uint32_t to, unsigned char *msg, size_t len,
         long timeout_ms)
{
    tp_peer_t *p = find_peer(t, to);
    tp_msg_t *m;
    dkv_status_t rv = DKV_OK;
    apr_time_t deadline;

    if (p == NULL) {
        dkv_free(msg);
        return dkv_error_set(DKV_ENOTFOUND, "node %lu is not a peer",
                             (unsigned long)to);
    }
    if (len > DKV_TRANSPORT_MAX_MSG) {
        dkv_free(msg);
        return dkv_error_set(DKV_ETOOLARGE, "cluster message of %zu bytes; "
                             "the limit is %u", len, DKV_TRANSPORT_MAX_MSG);
    }
    m = dkv_malloc(sizeof(*m));
    if (m == NULL) {
        dkv_free(msg);
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    m->next = NULL;
    m->data = msg;
    m->len = len;
    deadline = apr_time_now() + apr_time_from_msec(timeout_ms > 0
                                                   ? timeout_ms : 0);
    apr_thread_mutex_lock(p->mutex);
    for (;;) {
        apr_time_t left;

        if (p->stop) {
            rv = dkv_error_set(DKV_ECLOSED, "the transport is stopping");
            break;
        }
        if (enqueue(p, m)) {
            m = NULL;
            break;
        }
        left = deadline - apr_time_now();
        if (timeout_ms < 0) {
            rv = dkv_error_set(DKV_EFULL, "the queue to %s is full (%zu "
                               "bytes)", p->where, p->bytes);
            break;
        }
        if (left <= 0) {
            rv = dkv_error_set(DKV_ETIMEOUT, "no room in the queue to %s "
                               "within %ld ms", p->where, timeout_ms);
            break;
        }
        apr_thread_cond_timedwait(p->room, p->mutex, left);
    }
    apr_thread_mutex_unlock(p->mutex);
    if (m != NULL) {
        dkv_free(m->data);
        dkv_free(m);
        stat_add(t, &t->stats.dropped, 1);
    }
    return rv;
}

/* See transport.h. */
dkv_status_t
dkv_transport_send(dkv_transport_t *transport, uint32_t to,
                   unsigned char *msg, size_t len)
{
    return send_msg(transport, to, msg, len, -1);
}

/* See transport.h. */
dkv_status_t
dkv_transport_send_wait(dkv_transport_t *transport, uint32_t to,
                        unsigned char *msg, size_t len, unsigned timeout_ms)
{
    return send_msg(transport, to, msg, len, (long)timeout_ms);
}

/* See transport.h. */
int
dkv_transport_connected(dkv_transport_t *transport, uint32_t to)
{
    tp_peer_t *p = find_peer(transport, to);
    int up;

    if (p == NULL) {
        return 0;
    }
    apr_thread_mutex_lock(p->mutex);
    up = p->connected;
    apr_thread_mutex_unlock(p->mutex);
    return up;
}

/* See transport.h. */
void
dkv_transport_stats(dkv_transport_t *transport,
                    dkv_transport_stats_t *stats)
{
    apr_thread_mutex_lock(transport->mutex);
    *stats = transport->stats;
    apr_thread_mutex_unlock(transport->mutex);
}

/* See transport.h. */
void
dkv_transport_destroy(dkv_transport_t *transport)
{
    apr_pool_t *pool;
    size_t i;

    if (transport == NULL) {
        return;
    }
    shutdown_all(transport);
    for (i = 0; i < transport->npeers; i++) {
        peer_free(transport->peers[i]);
    }
    dkv_free(transport->peers);
    dkv_free(transport->peer_ids);
    sodium_memzero(transport->secret, DKV_LINK_SECRET_SIZE);
    sodium_free(transport->secret);
    pool = transport->pool;
    apr_pool_destroy(pool);
}
