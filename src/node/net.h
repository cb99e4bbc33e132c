/*
 * net.h -- dkv-node's network half: the client port's listener and the
 * event loop (one thread, an APR pollset over non-blocking sockets), and
 * the hand-off of frames between that loop and the request service.
 *
 * Threads: the loop thread (the one that calls dkv_node_run) owns every
 * connection.  Service threads reach a connection only through
 * dkv_node_send(), which queues frames under the node's lock and wakes
 * the pollset; the loop moves them onto connections.  dkv_node_stop() may
 * be called from any thread.  Program-private (not installed).
 */
#ifndef DKV_NODE_NET_H
#define DKV_NODE_NET_H

#include <apr_hash.h>
#include <apr_network_io.h>
#include <apr_poll.h>
#include <apr_pools.h>
#include <apr_thread_mutex.h>

#include "common/proto.h"
#include "node/service.h"

/* A node closes a connection that has not completed HELLO in this time. */
#define DKV_NODE_HELLO_TIMEOUT apr_time_from_sec(10)
/* The largest frame accepted before HELLO completes (a HELLO's fields fit
 * in less: store, client and token are bounded by their u16 lengths). */
#define DKV_NODE_HELLO_MAX_FRAME (256u * 1024u)
/* Failed handshakes allowed per source address and window. */
#define DKV_NODE_AUTH_FAILURES 5
#define DKV_NODE_AUTH_WINDOW apr_time_from_sec(10)
/* Source addresses the failure table remembers (oldest evicted). */
#define DKV_NODE_AUTH_SLOTS 1024
/* Requests in flight per connection before it is read no more. */
#define DKV_NODE_MAX_INFLIGHT 1024
/* Time the shutdown waits for answers to be written out. */
#define DKV_NODE_FLUSH_TIMEOUT apr_time_from_sec(5)
/* Length of a token digest (crypto_generichash). */
#define DKV_NODE_TOKEN_HASH 32

typedef struct dkv_node_opts {
    const char *store;
    const char *instance;
    const char *bind;              /* address to listen on */
    apr_port_t port;               /* 0: any free port */
    size_t max_connections;
    uint32_t max_frame;            /* largest frame accepted and announced */
    uint32_t max_value;            /* announced in HELLO */
    size_t max_output;             /* per-connection output bound */
    apr_interval_time_t idle_timeout;
    apr_interval_time_t request_timeout;
    /* The access token's digest (DKV_NODE_TOKEN_HASH bytes, in
     * sodium_malloc memory owned by the caller); NULL: no token, loopback
     * clients only. */
    const unsigned char *token_hash;
    /* The node admin token's digest (dkv_admin_node_token, hashed the
     * same way; caller's sodium memory); NULL: no admin connections. */
    const unsigned char *admin_hash;
} dkv_node_opts_t;

typedef struct dkv_conn dkv_conn_t;

/* A run of output bytes: a delivery from the service waiting in the
 * node's queue, then a chunk of a connection's output list. */
typedef struct dkv_outq {
    struct dkv_outq *next;
    uint64_t conn_id;
    size_t off;                    /* bytes of BUF already sent */
    dkv_wbuf_t buf;
} dkv_outq_t;

/* A source address's recent handshake failures. */
typedef struct dkv_auth_slot {
    char ip[48];
    apr_time_t start;              /* start of the window; 0: free slot */
    unsigned failures;
} dkv_auth_slot_t;

typedef struct dkv_node {
    apr_pool_t *pool;
    dkv_node_opts_t opts;
    apr_pollset_t *pollset;
    apr_socket_t *listener;
    apr_pollfd_t listen_pfd;
    int listening;                 /* listener in the pollset */
    apr_time_t listen_resume;      /* paused (out of descriptors) until */
    char where[80];                /* "127.0.0.1:7861" */
    apr_port_t port;               /* the bound port */
    dkv_service_t *service;

    /* Shared with service threads and the stop thread: under LOCK. */
    apr_thread_mutex_t *lock;
    dkv_outq_t *q_head, *q_tail;   /* deliveries for the loop */
    int wake_pending;              /* a wakeup is on its way */
    apr_hash_t *conns;             /* id -> conn (loop writes, locked) */
    int stop_requested;
    const char *stop_reason;

    /* Loop thread only. */
    dkv_conn_t *all;               /* every open connection */
    dkv_conn_t *dead;              /* closed, freed after the poll pass */
    dkv_conn_t *touched;           /* got output this pass */
    size_t nconns;
    uint64_t next_id;
    int shutting_down;
    apr_pool_t *accept_pool;       /* the next connection's pool */
    apr_pool_t *scratch;           /* cleared after each handshake */
    apr_time_t now;
    apr_time_t last_sweep;
    dkv_auth_slot_t *auth;         /* DKV_NODE_AUTH_SLOTS entries */
    apr_time_t refusal_logged;     /* throttle for "too many" lines */
    unsigned refusals;             /* refusals not yet logged */
} dkv_node_t;

/* Creates the node (pollset, lock; no socket yet) in POOL, with a copy of
 * OPTS (whose strings and token digest must outlive the node).  Returns
 * DKV_OK or an APR status (with a message). */
dkv_status_t dkv_node_create(dkv_node_t **node, const dkv_node_opts_t *opts,
                             apr_pool_t *pool);

/* Binds and listens on the client port.  On success NODE->where and
 * NODE->port name the bound address (the real port when 0 was asked).
 * Returns DKV_OK or the APR status, with a message "cannot listen on
 * ADDR:PORT: REASON". */
dkv_status_t dkv_node_listen(dkv_node_t *node);

/* The service's send callback (service.h); BATON is the node.  Thread-
 * safe. */
int dkv_node_send(void *baton, uint64_t conn_id, dkv_service_out_t kind,
                  uint64_t watch_id, dkv_wbuf_t *frames);

/* Asks the loop to stop (graceful shutdown) for REASON (a static
 * string).  Thread-safe; may be called many times. */
void dkv_node_stop(dkv_node_t *node, const char *reason);

/* Runs the event loop with SERVICE until dkv_node_stop(), then shuts
 * down gracefully: closes the listener, stops reading requests, calls
 * dkv_service_shutdown, writes out the answers (at most
 * DKV_NODE_FLUSH_TIMEOUT), calls dkv_service_destroy, closes every
 * connection.  *REASON receives the stop reason.  Returns DKV_OK or the
 * status of a fatal loop error (the shutdown still ran). */
dkv_status_t dkv_node_run(dkv_node_t *node, dkv_service_t *service,
                          const char **reason);

/* Pollset bookkeeping used by conn.c: sets the events NODE polls CONN's
 * socket for.  Returns DKV_OK or the APR status. */
dkv_status_t dkv_node_poll_set(dkv_node_t *node, dkv_conn_t *conn,
                               apr_int16_t events);

#endif /* DKV_NODE_NET_H */
