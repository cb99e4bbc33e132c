/*
 * net.c -- dkv-node's event loop: the client port's listener, one APR
 * pollset (epoll, kqueue or event ports where available) over
 * non-blocking sockets, the queue through which service threads hand
 * frames to the loop, and the graceful shutdown.
 *
 * One thread runs the loop and owns every connection (conn.c).  Service
 * threads call dkv_node_send(): it queues the frames under the node's lock
 * and wakes the pollset; the loop moves them onto their connections and
 * writes them.  The loop never blocks but in apr_pollset_poll, and wakes
 * at least once a second for the timers.
 *
 * Sections: setup, the service's callback, the loop, shutdown.
 */
#include "node/net.h"

#include <string.h>

#include <apr_strings.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/status.h"
#include "node/conn.h"
#include "platform/platform.h"

/* Timer granularity, and the poll timeout while shutting down. */
#define SWEEP_INTERVAL apr_time_from_sec(1)
#define SHUTDOWN_POLL apr_time_from_msec(50)
/* Pause of the listener when the process is out of descriptors. */
#define ACCEPT_PAUSE apr_time_from_msec(100)
/* Connections accepted per wakeup of the listener. */
#define ACCEPT_BURST 256
/* Listen backlog. */
#define BACKLOG 1024

/* ----------------------------------------------------------------- setup */

/* See net.h. */
dkv_status_t
dkv_node_create(dkv_node_t **nodep, const dkv_node_opts_t *opts,
                apr_pool_t *pool)
{
    static const apr_pollset_method_e methods[] = {
        APR_POLLSET_EPOLL, APR_POLLSET_KQUEUE, APR_POLLSET_PORT,
        APR_POLLSET_DEFAULT
    };
    dkv_node_t *node = apr_pcalloc(pool, sizeof(*node));
    apr_uint32_t size = (apr_uint32_t)opts->max_connections + 16;
    apr_status_t rv = APR_ENOTIMPL;
    size_t i;

    node->pool = pool;
    node->opts = *opts;
    node->conns = apr_hash_make(pool);
    node->auth = apr_pcalloc(pool, DKV_NODE_AUTH_SLOTS
                                   * sizeof(*node->auth));
    rv = apr_thread_mutex_create(&node->lock, APR_THREAD_MUTEX_DEFAULT,
                                 pool);
    if (rv == APR_SUCCESS) {
        rv = apr_pool_create(&node->scratch, pool);
    }
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot set up the event loop");
    }
    /* The best backend first; each without APR's silent fallback, so the
     * log tells which one runs. */
    for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        rv = apr_pollset_create_ex(&node->pollset, size, pool,
                                   APR_POLLSET_WAKEABLE
                                   | APR_POLLSET_NODEFAULT, methods[i]);
        if (rv == APR_SUCCESS) {
            break;
        }
    }
    if (rv != APR_SUCCESS) {
        rv = apr_pollset_create(&node->pollset, size, pool,
                                APR_POLLSET_WAKEABLE);
    }
    if (rv != APR_SUCCESS) {
        char err[120];

        return dkv_error_set(rv, "cannot create a pollset for %lu "
                             "connections: %s", (unsigned long)size,
                             apr_strerror(rv, err, sizeof(err)));
    }
    *nodep = node;
    return DKV_OK;
}

/* "address already in use" from APR's "Address already in use". */
static const char *
reason_text(apr_status_t rv, char *buf, size_t len)
{
    apr_strerror(rv, buf, len);
    if (buf[0] >= 'A' && buf[0] <= 'Z' && !(buf[1] >= 'A' && buf[1] <= 'Z')) {
        buf[0] = (char)(buf[0] - 'A' + 'a');
    }
    return buf;
}

/* See net.h. */
dkv_status_t
dkv_node_listen(dkv_node_t *node)
{
    const char *host = node->opts.bind;
    apr_sockaddr_t *sa = NULL, *local = NULL;
    apr_socket_t *sock = NULL;
    apr_status_t rv;
    char err[120], ip[64];

    snprintf(node->where, sizeof(node->where),
             strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
             (unsigned)node->opts.port);
    rv = apr_sockaddr_info_get(&sa, host, APR_UNSPEC, node->opts.port, 0,
                               node->pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot listen on %s: cannot resolve "
                             "'%s': %s", node->where, host,
                             reason_text(rv, err, sizeof(err)));
    }
    rv = apr_socket_create(&sock, sa->family, SOCK_STREAM, APR_PROTO_TCP,
                           node->pool);
    if (rv == APR_SUCCESS) {
        rv = dkv_plat_listener_prepare(sock);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_bind(sock, sa);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_listen(sock, BACKLOG);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_opt_set(sock, APR_SO_NONBLOCK, 1);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_timeout_set(sock, 0);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_addr_get(&local, APR_LOCAL, sock);
    }
    if (rv != APR_SUCCESS) {
        if (sock != NULL) {
            apr_socket_close(sock);
        }
        return dkv_error_set(rv, "cannot listen on %s: %s", node->where,
                             reason_text(rv, err, sizeof(err)));
    }
    node->port = local->port;
    apr_sockaddr_ip_getbuf(ip, sizeof(ip), local);
    snprintf(node->where, sizeof(node->where),
             strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip,
             (unsigned)node->port);
    node->listener = sock;
    node->listen_pfd.p = node->pool;
    node->listen_pfd.desc_type = APR_POLL_SOCKET;
    node->listen_pfd.desc.s = sock;
    node->listen_pfd.reqevents = APR_POLLIN;
    node->listen_pfd.client_data = NULL;
    rv = apr_pollset_add(node->pollset, &node->listen_pfd);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot listen on %s: pollset: %s",
                             node->where,
                             reason_text(rv, err, sizeof(err)));
    }
    node->listening = 1;
    return DKV_OK;
}

/* See net.h. */
dkv_status_t
dkv_node_poll_set(dkv_node_t *node, dkv_conn_t *conn, apr_int16_t events)
{
    apr_status_t rv = APR_SUCCESS;

    if (conn->events != 0) {
        (void)apr_pollset_remove(node->pollset, &conn->pfd);
        conn->events = 0;
    }
    if (events != 0) {
        conn->pfd.reqevents = events;
        conn->pfd.rtnevents = 0;
        rv = apr_pollset_add(node->pollset, &conn->pfd);
        if (rv == APR_SUCCESS) {
            conn->events = events;
        }
    }
    return rv;
}

/* ---------------------------------------------------- the service's side */

/* See net.h. */
int
dkv_node_send(void *baton, uint64_t conn_id, dkv_service_out_t kind,
              uint64_t watch_id, dkv_wbuf_t *frames)
{
    dkv_node_t *node = baton;
    dkv_outq_t *item;
    dkv_conn_t *conn;
    int wake = 0;

    (void)watch_id;
    if (frames->failed != DKV_OK || frames->len == 0) {
        dkv_wbuf_free(frames);
        return 0;
    }
    item = dkv_malloc(sizeof(*item));
    if (item == NULL) {
        dkv_wbuf_free(frames);
        dkv_log(DKV_LOG_ERROR, "out of memory queueing %lu bytes for conn "
                "%llu", (unsigned long)frames->len,
                (unsigned long long)conn_id);
        return kind == DKV_SERVICE_EVENTS ? 1 : 0;
    }
    apr_thread_mutex_lock(node->lock);
    conn = apr_hash_get(node->conns, &conn_id, sizeof(conn_id));
    if (conn == NULL
        || (kind == DKV_SERVICE_EVENTS
            && conn->pub_out > node->opts.max_output)) {
        apr_thread_mutex_unlock(node->lock);
        dkv_wbuf_free(frames);
        dkv_free(item);
        return conn != NULL;
    }
    item->next = NULL;
    item->conn_id = conn_id;
    item->off = 0;
    item->buf = *frames;               /* steal the bytes */
    memset(frames, 0, sizeof(*frames));
    conn->pub_out += item->buf.len;
    if (node->q_tail != NULL) {
        node->q_tail->next = item;
    } else {
        node->q_head = item;
    }
    node->q_tail = item;
    if (!node->wake_pending) {
        node->wake_pending = 1;
        wake = 1;
    }
    apr_thread_mutex_unlock(node->lock);
    if (wake) {
        apr_pollset_wakeup(node->pollset);
    }
    return 0;
}

/* See net.h. */
void
dkv_node_stop(dkv_node_t *node, const char *reason)
{
    int first;

    apr_thread_mutex_lock(node->lock);
    first = !node->stop_requested;
    if (first) {
        node->stop_requested = 1;
        node->stop_reason = reason;
    }
    apr_thread_mutex_unlock(node->lock);
    if (!first) {
        dkv_log(DKV_LOG_INFO, "%s: already stopping", reason);
    }
    apr_pollset_wakeup(node->pollset);
}

static int
stop_requested(dkv_node_t *node)
{
    int stop;

    apr_thread_mutex_lock(node->lock);
    stop = node->stop_requested;
    apr_thread_mutex_unlock(node->lock);
    return stop;
}

/* -------------------------------------------------------------- the loop */

/* Refuses an accepted socket because the node is full. */
static void
refuse_full(dkv_node_t *node, apr_socket_t *sock)
{
    dkv_wbuf_t buf;
    apr_sockaddr_t *sa = NULL;
    char ip[64] = "?";

    dkv_wbuf_init(&buf, 0);
    if (dkv_proto_error_encode(&buf, 0, DKV_EUNAVAILABLE,
                               "too many connections: try again later or "
                               "another node") == DKV_OK) {
        apr_size_t len = buf.len;

        apr_socket_opt_set(sock, APR_SO_NONBLOCK, 1);
        apr_socket_timeout_set(sock, 0);
        (void)apr_socket_send(sock, (const char *)buf.data, &len);
    }
    dkv_wbuf_free(&buf);
    if (apr_socket_addr_get(&sa, APR_REMOTE, sock) == APR_SUCCESS
        && sa != NULL) {
        apr_sockaddr_ip_getbuf(ip, sizeof(ip), sa);
    }
    node->refusals++;
    if (node->now - node->refusal_logged >= apr_time_from_sec(1)) {
        dkv_log(DKV_LOG_WARN, "refused %u connection(s) (latest from %s): "
                "too many connections (--max-connections %lu)",
                node->refusals, ip,
                (unsigned long)node->opts.max_connections);
        node->refusals = 0;
        node->refusal_logged = node->now;
    }
}

static void
accept_clients(dkv_node_t *node)
{
    int i;

    for (i = 0; i < ACCEPT_BURST; i++) {
        apr_socket_t *sock = NULL;
        apr_status_t rv;

        if (node->accept_pool == NULL
            && apr_pool_create(&node->accept_pool, node->pool)
               != APR_SUCCESS) {
            node->accept_pool = NULL;
            return;
        }
        rv = apr_socket_accept(&sock, node->listener, node->accept_pool);
        if (APR_STATUS_IS_EAGAIN(rv)) {
            return;
        }
        if (rv != APR_SUCCESS) {
            char err[120];

            apr_strerror(rv, err, sizeof(err));
            if (APR_STATUS_IS_EMFILE(rv) || APR_STATUS_IS_ENFILE(rv)) {
                /* Out of descriptors: the backlog stays readable, so stop
                 * polling it for a moment rather than spin. */
                dkv_log(DKV_LOG_WARN, "cannot accept clients: %s (pausing "
                        "the listener)", err);
                (void)apr_pollset_remove(node->pollset, &node->listen_pfd);
                node->listening = 0;
                node->listen_resume = node->now + ACCEPT_PAUSE;
            } else {
                dkv_log(DKV_LOG_DEBUG, "accept: %s", err);
            }
            return;
        }
        if (node->nconns >= node->opts.max_connections
            || node->shutting_down) {
            refuse_full(node, sock);
            apr_socket_close(sock);
            apr_pool_clear(node->accept_pool);
            continue;
        }
        (void)dkv_conn_open(node, sock, node->accept_pool);
        node->accept_pool = NULL;
    }
}

/* Moves the service's deliveries to their connections. */
static void
take_deliveries(dkv_node_t *node)
{
    dkv_outq_t *item, *next;

    apr_thread_mutex_lock(node->lock);
    item = node->q_head;
    node->q_head = node->q_tail = NULL;
    node->wake_pending = 0;
    apr_thread_mutex_unlock(node->lock);
    for (; item != NULL; item = next) {
        /* Only this thread writes the table: no lock to read it. */
        dkv_conn_t *c = apr_hash_get(node->conns, &item->conn_id,
                                     sizeof(item->conn_id));

        next = item->next;
        if (c == NULL || c->dead) {
            dkv_wbuf_free(&item->buf);
            dkv_free(item);
            continue;
        }
        dkv_conn_deliver(c, item);
    }
}

static int
queue_empty(dkv_node_t *node)
{
    int empty;

    apr_thread_mutex_lock(node->lock);
    empty = node->q_head == NULL;
    apr_thread_mutex_unlock(node->lock);
    return empty;
}

static void
flush_touched(dkv_node_t *node)
{
    while (node->touched != NULL) {
        dkv_conn_t *c = node->touched;

        node->touched = c->touched_next;
        c->touched = 0;
        c->touched_next = NULL;
        dkv_conn_flush(c);
    }
}

static void
free_dead(dkv_node_t *node)
{
    while (node->dead != NULL) {
        dkv_conn_t *c = node->dead;

        node->dead = c->dead_next;
        dkv_conn_free(c);
    }
}

/* One pass: poll (at most TIMEOUT), handle the events, deliver what the
 * service sent, write, run the timers. */
static void
loop_once(dkv_node_t *node, apr_interval_time_t timeout)
{
    const apr_pollfd_t *descs = NULL;
    apr_int32_t num = 0, i;
    apr_status_t rv;

    if (!node->listening && node->listener != NULL
        && !node->shutting_down) {
        apr_interval_time_t left = node->listen_resume - node->now;

        if (left < timeout) {
            timeout = left > 0 ? left : 0;
        }
    }
    rv = apr_pollset_poll(node->pollset, timeout, &num, &descs);
    node->now = apr_time_now();
    if (rv == APR_SUCCESS) {
        for (i = 0; i < num; i++) {
            dkv_conn_t *c = descs[i].client_data;

            if (c == NULL) {
                if (node->listening) {
                    accept_clients(node);
                }
            } else if (!c->dead) {
                dkv_conn_io(c, descs[i].rtnevents);
            }
        }
    } else if (!APR_STATUS_IS_EINTR(rv) && !APR_STATUS_IS_TIMEUP(rv)) {
        char err[120];

        dkv_log(DKV_LOG_ERROR, "pollset: %s",
                apr_strerror(rv, err, sizeof(err)));
        apr_sleep(apr_time_from_msec(10));
    }
    take_deliveries(node);
    flush_touched(node);
    free_dead(node);

    if (!node->listening && node->listener != NULL && !node->shutting_down
        && node->now >= node->listen_resume) {
        if (apr_pollset_add(node->pollset, &node->listen_pfd)
            == APR_SUCCESS) {
            node->listening = 1;
        }
    }
    if (node->now - node->last_sweep >= SWEEP_INTERVAL) {
        dkv_conn_t *c, *next;

        node->last_sweep = node->now;
        for (c = node->all; c != NULL; c = next) {
            next = c->next;
            dkv_conn_sweep(c);
        }
        free_dead(node);
    }
}

/* ------------------------------------------------------------- shutdown */

static int
any_busy(dkv_node_t *node)
{
    dkv_conn_t *c;

    for (c = node->all; c != NULL; c = c->next) {
        if (dkv_conn_busy(c)) {
            return 1;
        }
    }
    return !queue_empty(node);
}

static int
any_output(dkv_node_t *node)
{
    dkv_conn_t *c;

    for (c = node->all; c != NULL; c = c->next) {
        if (!c->dead && c->out_len > 0) {
            return 1;
        }
    }
    return !queue_empty(node);
}

/* The graceful part of dkv_node_run. */
static void
shutdown_node(dkv_node_t *node)
{
    apr_time_t deadline;
    dkv_conn_t *c, *next;
    size_t open = node->nconns, left;

    node->shutting_down = 1;
    if (node->listener != NULL) {
        if (node->listening) {
            (void)apr_pollset_remove(node->pollset, &node->listen_pfd);
            node->listening = 0;
        }
        apr_socket_close(node->listener);
        node->listener = NULL;
    }
    dkv_log(DKV_LOG_INFO, "stopping (%s): client port closed; answering "
            "the requests in flight of %lu connection(s)",
            node->stop_reason ? node->stop_reason : "stop requested",
            (unsigned long)open);
    for (c = node->all; c != NULL; c = next) {
        next = c->next;
        dkv_conn_shutdown(c);
    }
    free_dead(node);
    if (node->service != NULL) {
        dkv_service_shutdown(node->service);
    }
    deadline = node->now + DKV_NODE_FLUSH_TIMEOUT;
    while (node->now < deadline && any_busy(node)) {
        loop_once(node, SHUTDOWN_POLL);
    }
    /* Waits for every request submitted to be answered and committed,
     * even past the deadline: nothing acknowledged may be cut short. */
    if (node->service != NULL) {
        dkv_log(DKV_LOG_DEBUG, "answers written; stopping the request "
                "service");
        dkv_service_destroy(node->service);
        node->service = NULL;
        dkv_log(DKV_LOG_DEBUG, "request service stopped");
    }
    take_deliveries(node);
    flush_touched(node);
    free_dead(node);
    if (deadline < node->now + apr_time_from_sec(1)) {
        deadline = node->now + apr_time_from_sec(1);
    }
    while (node->now < deadline && any_output(node)) {
        loop_once(node, SHUTDOWN_POLL);
    }
    left = 0;
    for (c = node->all; c != NULL; c = next) {
        next = c->next;
        if (c->out_len > 0) {
            left++;
        }
        dkv_conn_close(c, DKV_LOG_DEBUG, "node stopped");
    }
    free_dead(node);
    take_deliveries(node);
    if (left > 0) {
        dkv_log(DKV_LOG_WARN, "%lu connection(s) closed with unsent output "
                "(the clients did not read within %u s)",
                (unsigned long)left,
                (unsigned)(DKV_NODE_FLUSH_TIMEOUT / APR_USEC_PER_SEC));
    }
}

/* See net.h. */
dkv_status_t
dkv_node_run(dkv_node_t *node, dkv_service_t *service, const char **reason)
{
    node->service = service;
    node->now = apr_time_now();
    node->last_sweep = node->now;
    while (!stop_requested(node)) {
        loop_once(node, SWEEP_INTERVAL);
    }
    apr_thread_mutex_lock(node->lock);
    *reason = node->stop_reason ? node->stop_reason : "stop requested";
    apr_thread_mutex_unlock(node->lock);
    shutdown_node(node);
    if (node->accept_pool != NULL) {
        apr_pool_destroy(node->accept_pool);
        node->accept_pool = NULL;
    }
    return DKV_OK;
}
