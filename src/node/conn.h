/*
 * conn.h -- one client connection of dkv-node: its state machine (HELLO,
 * open, closing), input framing, the handshake and access control, output
 * queue and backpressure, and timeouts.  Every function here runs on the
 * loop thread (see net.h).  Program-private.
 */
#ifndef DKV_NODE_CONN_H
#define DKV_NODE_CONN_H

#include "node/net.h"

typedef enum dkv_conn_state {
    DKV_CONN_HELLO = 1,    /* waiting for HELLO */
    DKV_CONN_OPEN = 2,     /* authenticated: requests go to the service */
    DKV_CONN_CLOSING = 3   /* reading stopped; close once output is out */
} dkv_conn_state_t;

struct dkv_conn {
    dkv_conn_t *prev, *next;       /* node->all */
    dkv_conn_t *dead_next;         /* node->dead */
    dkv_conn_t *touched_next;      /* node->touched */
    int touched;
    int dead;
    dkv_node_t *node;
    uint64_t id;
    apr_pool_t *pool;              /* the socket and this struct */
    apr_socket_t *sock;
    apr_pollfd_t pfd;
    apr_int16_t events;            /* what the pollset watches now */
    dkv_conn_state_t state;
    int authed;                    /* HELLO succeeded (service knows it) */
    int eof;                       /* the peer closed its side */
    int reading;                   /* backpressure state */
    char peer[64];                 /* "ip:port" for logs */
    char ip[48];
    int loopback;
    int local;                  /* loopback, or from the address it
                                 * reached: a client on this machine */
    int admin;                     /* HELLO gave the node admin token */
    char client[DKV_PROTO_MAX_CLIENT_NAME + 1];

    unsigned char *in;             /* input (dkv_malloc) */
    size_t in_len, in_cap;
    size_t in_need;                /* size of the partial frame, if known */

    dkv_outq_t *out_head, *out_tail;
    size_t out_len;                /* unsent bytes in the output list */
    size_t pub_out;                /* unsent bytes including deliveries
                                    * still queued (under node->lock) */

    unsigned inflight;             /* requests submitted, not answered */
    unsigned window;               /* requests allowed in flight now */
    size_t big_answer;             /* recent large answer size (decays) */
    int held;                      /* complete frames wait in the input
                                    * until answers come back */
    uint64_t *watches;             /* active watch ids */
    size_t nwatches, watch_cap;

    apr_time_t created;
    apr_time_t last_io;            /* last byte read or written */
    apr_time_t frame_started;      /* a partial frame waits since */
    apr_time_t out_waiting;        /* output pending, no progress since */
    apr_time_t answer_wait;        /* requests pending, no answer since */
    int stall_logged;
    apr_time_t close_deadline;     /* CLOSING: give up flushing then */
};

/* Takes over accepted socket SOCK (allocated in POOL, a pool this
 * connection now owns) and registers it.  Returns DKV_OK or an APR
 * status (SOCK and POOL are then released). */
dkv_status_t dkv_conn_open(dkv_node_t *node, apr_socket_t *sock,
                           apr_pool_t *pool);

/* Handles poll events RTNEVENTS on CONN. */
void dkv_conn_io(dkv_conn_t *conn, apr_int16_t rtnevents);

/* Moves delivery ITEM (from the service) to CONN's output. */
void dkv_conn_deliver(dkv_conn_t *conn, dkv_outq_t *item);

/* Writes what it can of CONN's output and recomputes its poll events;
 * closes it when it is done (CLOSING, or the peer's EOF with nothing in
 * flight). */
void dkv_conn_flush(dkv_conn_t *conn);

/* Applies the timeouts at NODE->now (HELLO, partial frame, idle, stalled
 * output, closing). */
void dkv_conn_sweep(dkv_conn_t *conn);

/* Shutdown began: stops reading CONN (and closes it if it never completed
 * HELLO). */
void dkv_conn_shutdown(dkv_conn_t *conn);

/* Whether CONN still waits for answers or watch ends, or has output. */
int dkv_conn_busy(const dkv_conn_t *conn);

/* Closes CONN now: logs WHY at LEVEL (unless WHY is NULL), unregisters
 * it, tells the service, and queues it for freeing. */
void dkv_conn_close(dkv_conn_t *conn, int level, const char *why);

/* Frees CONN's memory (after the poll pass that closed it). */
void dkv_conn_free(dkv_conn_t *conn);

#endif /* DKV_NODE_CONN_H */
