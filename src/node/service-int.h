/*
 * service-int.h -- what the request service's two files share, and what
 * it shows its tests beyond service.h.
 *
 * service.c decodes, executes and answers requests (the reader threads,
 * the watch controls); replica.c orders the writes (the replica thread:
 * the Raft loop that proposes, persists, applies and answers them).
 * Both work on struct dkv_service below.
 */
#ifndef DKV_NODE_SERVICE_INT_H
#define DKV_NODE_SERVICE_INT_H

#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>

#include "node/service.h"
#include "node/watch.h"

typedef struct dkv_service_stats {
    uint64_t commits;       /* write contexts committed (syncs) */
    uint64_t writes;        /* write requests answered after a commit */
    uint64_t largest;       /* most write requests in one commit */
    uint64_t reads;         /* read requests answered */
    uint64_t watches;       /* live watches */
    uint64_t dropped;       /* watches ended for a slow consumer */
    uint64_t expired;       /* keys removed by TTL and lease expiry */
} dkv_service_stats_t;

/* Fills *STATS with SERVICE's counters so far.  Thread-safe. */
void dkv_service_stats(dkv_service_stats_t *stats, dkv_service_t *service);

/* ------------------------------------------------------------ internals */

typedef enum dkv_svc_kind {
    DKV_SVC_REQUEST,
    DKV_SVC_CLOSED,            /* dkv_service_conn_closed */
    DKV_SVC_SHUTDOWN           /* the shutdown mark */
} dkv_svc_kind_t;

/* A queued request (or control) and its answer. */
typedef struct dkv_svc_item {
    struct dkv_svc_item *next;
    dkv_svc_kind_t kind;
    int refused;               /* submitted after shutdown began */
    uint64_t conn;
    unsigned char *frame;
    size_t len;
    dkv_response_t res;        /* the answer, filled by a worker */
    /* STATS: when dkv_service_submit took it (apr_time_now; 0: not a
     * client's request), and the keys it reads, writes and deletes (set
     * by dkv_svc_decode); counted when its answer is queued. */
    int64_t received;
    uint32_t gets, puts, removes;
} dkv_svc_item_t;

typedef struct dkv_svc_queue {
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *cond;
    dkv_svc_item_t *head, *tail;
    int stop;
} dkv_svc_queue_t;

typedef struct dkv_svc_reader {
    dkv_service_t *svc;
    apr_pool_t *pool;
    apr_thread_t *thread;
} dkv_svc_reader_t;

typedef struct dkv_replica dkv_replica_t;

struct dkv_service {
    apr_pool_t *pool;
    dkv_engine_t *engine;
    size_t max_value;
    dkv_service_send_fn *send;
    void *baton;
    const char *instance;
    int64_t (*clock)(void *baton);
    void *clock_baton;
    int64_t interval;          /* expiry period, ms */
    size_t max_batch;

    dkv_svc_queue_t rq;        /* reads ready to run */
    dkv_svc_queue_t wq;        /* to the replica: writes, linearizable
                                * reads, watches, closes, shutdown; peer
                                * messages come in beside them */
    volatile int shutting;

    /* Free items (under flock). */
    apr_thread_mutex_t *flock;
    dkv_svc_item_t *free_items;
    size_t nfree;

    unsigned nreaders;
    dkv_svc_reader_t *readers;
    apr_thread_t *writer;      /* the replica thread */
    dkv_replica_t *replica;
    int local_reads;           /* every read may be served at once (a
                                * group of one) */

    apr_pool_t *bpool;         /* a watch backlog's frame scratch */
    dkv_hub_t *hub;

    /* Counters and the revision (under slock). */
    apr_thread_mutex_t *slock;
    dkv_service_stats_t stats;
    uint64_t revision;

    /* STATS counters (service.c: sharded, each shard under its lock). */
    struct dkv_svc_metrics *metrics;
};

/* The service's clock, ms since the epoch. */
int64_t dkv_svc_now(const dkv_service_t *svc);

dkv_svc_item_t *dkv_svc_item_get(dkv_service_t *svc);
/* Frees IT's frame and recycles IT. */
void dkv_svc_item_put(dkv_service_t *svc, dkv_svc_item_t *it);
void dkv_svc_queue_push(dkv_svc_queue_t *q, dkv_svc_item_t *it);
/* Detaches up to MAX items from Q's head; Q locked. */
dkv_svc_item_t *dkv_svc_queue_take(dkv_svc_queue_t *q, size_t max);

/* Sets IT's answer to RV with the thread's last error as message. */
void dkv_svc_set_status(dkv_svc_item_t *it, dkv_status_t rv,
                        apr_pool_t *pool);
/* Decodes IT's frame into *REQ and prepares its answer; returns DKV_OK
 * or the status already set as its answer. */
dkv_status_t dkv_svc_decode(dkv_request_t *req, dkv_svc_item_t *it,
                            apr_pool_t *pool);
/* Notes the keys client request IT reads, writes and deletes for the
 * metrics, when nothing decoded it yet (a write a follower forwards);
 * POOL is scratch.  Leaves IT's answer as it was. */
void dkv_svc_note_keys(dkv_svc_item_t *it, apr_pool_t *pool);
/* Counts client request IT (its keys, IT->res.status, its latency) in
 * the node's metrics as its answer is being sent.  dkv_svc_out_add does
 * it; a path that answers otherwise calls it. */
void dkv_svc_metrics_count(dkv_service_t *svc, const dkv_svc_item_t *it);
/* Runs write REQ in context W, filling RES (MAX_VALUE: the entry's). */
dkv_status_t dkv_svc_run_write(dkv_service_t *svc, dkv_eng_write_t *w,
                               const dkv_request_t *req, dkv_response_t *res,
                               size_t max_value, apr_pool_t *pool);

/* Answers being gathered, one connection's at a time. */
typedef struct dkv_svc_out {
    dkv_wbuf_t buf;
    uint64_t conn;
    int used;
} dkv_svc_out_t;

void dkv_svc_out_add(dkv_service_t *svc, dkv_svc_out_t *out,
                     dkv_svc_item_t *it);
void dkv_svc_out_flush(dkv_service_t *svc, dkv_svc_out_t *out);

/* 1 when IT is handled between commits (WATCH, WATCH_CANCEL, a close or
 * the shutdown mark). */
int dkv_svc_is_control(const dkv_svc_item_t *it);
/* 1 when IT is a read that needs a read index first. */
int dkv_svc_is_lin_read(const dkv_service_t *svc, const dkv_svc_item_t *it);
/* Handles control IT (and recycles it), with POOL as scratch. */
void dkv_svc_control(dkv_service_t *svc, dkv_svc_item_t *it,
                     apr_pool_t *pool);

/* ------------------------------------------------------------- replica */

/* Starts the replica for SVC (the Raft group of OPTS; a group of one
 * without members): its core, its transport, and the replica thread,
 * which takes SVC->wq.  Returns DKV_OK or a status with a message. */
dkv_status_t dkv_replica_start(dkv_service_t *svc,
                               const dkv_service_opts_t *opts,
                               apr_pool_t *pool);

/* Fills RES with the group's members and leader (MEMBERS), in POOL. */
void dkv_replica_members(dkv_response_t *res, dkv_service_t *svc,
                         apr_pool_t *pool);

/* The replica's Raft and disk numbers for STATS. */
typedef struct dkv_replica_stats {
    uint32_t node_id;
    uint32_t leader;             /* 0: none known */
    uint64_t term;
    uint64_t commit;             /* commit index */
    uint64_t applied;            /* applied index */
    uint64_t proposals;          /* entries proposed as leader */
    uint64_t fsyncs;             /* synced LMDB commits */
    uint64_t fsync_us;           /* time spent in them */
} dkv_replica_stats_t;

/* Fills *OUT.  Thread-safe (any thread). */
void dkv_replica_stats(dkv_replica_stats_t *out, dkv_service_t *svc);

/* MEMBER_ADD requests are queued on SVC->wq like writes (service.c
 * routes them there; conn.c has already checked the connection is an
 * admin one) and answered by the replica thread: it makes the new member
 * known to the transport and, on the leader, adds it as a learner and
 * promotes it once caught up (a follower forwards the request to the
 * leader).  The answer is DKV_OK once the learner's entry is committed
 * (or the node already is a member), DKV_EUNAVAILABLE with no leader,
 * DKV_ETIMEOUT past the request timeout, DKV_ENOTIMPL on a node without
 * --peers. */

/* Stops the transport (after the replica thread ended) and frees. */
void dkv_replica_stop(dkv_service_t *svc);

#endif /* DKV_NODE_SERVICE_INT_H */
