/*
 * service.h -- dkv-node's request service: executes the client protocol's
 * requests against the engine, off the network thread.
 *
 * The node has two halves.  The network half (net.c, conn.c, main.c) owns
 * the sockets: it accepts, reads frames, runs the HELLO handshake and
 * access checks, and writes what it is given, with backpressure.  The
 * service (service.c, watch.c) owns the engine: it decodes each request
 * frame, runs reads on a pool of reader threads (LMDB readers never wait
 * for the writer), runs writes on one writer thread that applies every
 * queued write in one engine write context and one sync (group commit),
 * drives TTL and lease expiry, keeps the watches, and hands encoded
 * response and event frames back through a callback.
 *
 * Connections are named by a 64-bit id the network half never reuses.
 */
#ifndef DKV_NODE_SERVICE_H
#define DKV_NODE_SERVICE_H

#include <apr_pools.h>

#include "dkv.h"
#include "common/proto.h"
#include "engine/engine.h"

typedef struct dkv_service dkv_service_t;

/* What the service sends back to a connection. */
typedef enum dkv_service_out {
    DKV_SERVICE_RESPONSE = 1,   /* a response frame: always delivered */
    DKV_SERVICE_EVENTS = 2      /* an EVENT frame of watch WATCH_ID */
} dkv_service_out_t;

/* Called from service threads with frames for connection CONN_ID.  The
 * callee takes FRAMES' bytes (it must dkv_wbuf_free them, or steal its
 * data) and wakes the network thread.  For DKV_SERVICE_EVENTS it returns
 * 1 when it refused the frame because the connection's output is over its
 * bound (the service then ends that watch with an EUNAVAILABLE error
 * event, delivered as a response-kind frame so it is never refused), else
 * 0.  It returns 0 as well when the connection is gone (frames dropped).
 * Must not call back into the service. */
typedef int (dkv_service_send_fn)(void *baton, uint64_t conn_id,
                                  dkv_service_out_t kind, uint64_t watch_id,
                                  dkv_wbuf_t *frames);

/* A member of the store's Raft group (docs/internals/replication.md). */
typedef struct dkv_service_member {
    uint32_t id;                  /* nonzero */
    const char *host;             /* its address (for peers and clients) */
    unsigned cluster_port;
    unsigned client_port;
} dkv_service_member_t;

typedef struct dkv_service_opts {
    unsigned readers;             /* reader threads; 0: number of CPUs */
    unsigned expire_interval_ms;  /* 0: 50 */
    size_t max_batch;             /* most writes per commit; 0: 1024 */
    const char *instance;         /* for PING */
    /* The clock, ms since the epoch; NULL: the system clock. */
    int64_t (*clock)(void *baton);
    void *clock_baton;

    /* Replication.  Without members the store is a group of one (this
     * node, id 1 unless NODE_ID says otherwise), with no cluster port. */
    uint32_t node_id;             /* 0: 1 */
    const dkv_service_member_t *members;  /* every member, self included */
    size_t nmembers;
    const unsigned char *secret;  /* 32 bytes; required with members */
    const char *store;            /* the store's name (cluster links) */
    const char *cluster_bind;     /* NULL: 127.0.0.1 */
    unsigned cluster_port;        /* 0: this node's entry in MEMBERS */
    unsigned tick_ms;             /* Raft tick (heartbeat); 0: 100 */
    unsigned election_ticks;      /* election timeout in ticks; 0: 10 */
    uint64_t snapshot_entries;    /* compact after this many; 0: 10000 */
    const char *data_dir;         /* where a received snapshot is kept */
    unsigned request_timeout_ms;  /* a proposal's outcome unknown after
                                   * this; 0: 30000 */
    int join;                     /* 1: a new node starts outside the
                                   * membership and waits to be added */
} dkv_service_opts_t;

/* Starts the service on ENGINE (opened by the caller, closed by the
 * caller after dkv_service_destroy).  Threads start here.  Returns DKV_OK
 * or an APR status (thread creation). */
dkv_status_t dkv_service_create(dkv_service_t **service,
                                dkv_engine_t *engine,
                                const dkv_service_opts_t *opts,
                                dkv_service_send_fn *send, void *baton,
                                apr_pool_t *pool);

/* Queues one complete request FRAME (the whole frame, header included,
 * LEN bytes, allocated with dkv_malloc) from authenticated connection
 * CONN_ID.  The service owns FRAME from now on.  Never blocks on I/O;
 * the answer comes through the send callback, possibly from another
 * thread and in any order relative to other requests. */
void dkv_service_submit(dkv_service_t *service, uint64_t conn_id,
                        unsigned char *frame, size_t len);

/* Tells the service CONN_ID is closed: its watches end (no events sent)
 * and answers still due to it are dropped by the send callback. */
void dkv_service_conn_closed(dkv_service_t *service, uint64_t conn_id);

/* Sets the number of open client connections STATS reports (the network
 * half calls it whenever the number changes).  Thread-safe. */
void dkv_service_set_connections(dkv_service_t *service, uint64_t n);

/* The store's current revision (for the HELLO response). */
uint64_t dkv_service_revision(dkv_service_t *service);

/* Begins shutdown: requests queued so far are answered; later ones get
 * EUNAVAILABLE ("node shutting down"); every watch ends with an
 * EUNAVAILABLE error event.  Returns at once. */
void dkv_service_shutdown(dkv_service_t *service);

/* Waits until everything submitted before dkv_service_shutdown was
 * answered and committed, then stops the threads.  After it returns no
 * callback runs.  NULL does nothing. */
void dkv_service_destroy(dkv_service_t *service);

#endif /* DKV_NODE_SERVICE_H */
