/*
 * service.c -- dkv-node's request service (see service.h): decodes request
 * frames, runs them on the engine and hands back encoded responses and
 * watch events.  The ordering of writes -- the Raft loop that proposes,
 * persists, applies and answers them -- is replica.c's; the two share
 * service-int.h.
 *
 * Queues.  dkv_service_submit only classifies a frame by its op and
 * header flags and queues it: reads that may be served at once (every
 * read in a group of one; serializable reads; PING, MEMBERS, and unknown
 * ops, answered ENOTIMPL) on the read queue; everything else -- writes,
 * linearizable reads of a replicated store, watch controls -- on the
 * replica's queue.  Queue items are recycled through a free list.
 *
 * Readers.  opts->readers threads (default: one per processor) each take
 * up to READ_BATCH requests at a time, decode them into a pool of their
 * own (cleared after each request), run each on a fresh engine read
 * context (an LMDB read transaction: it never waits for the writer or its
 * sync) and send the answers, the consecutive answers of one connection
 * in one buffer.  The replica hands them linearizable reads once their
 * read index is applied.
 *
 * Writes.  dkv_svc_run_write runs one write request in the replica's
 * engine write context, with the semantics and statuses of the
 * in-process backend (the bulk calls go through the same client/exec.c
 * helpers); a logical failure leaves no trace.
 *
 * Watches.  WATCH, WATCH_CANCEL, connection closes and the shutdown mark
 * are handled by the replica thread between its commits (dkv_svc_control),
 * so a read snapshot taken then is exactly the last commit (revision R).
 * The WATCH response carries R, the backlog (snapshot or replay) follows,
 * read from that snapshot, and the watch joins the hub for the live
 * events from R+1 on: nothing is missed or repeated, and every event of a
 * watch leaves the replica thread in revision order after its response.
 * A big prefix snapshot holds the replica up while it is read; it is sent
 * a frame at a time.
 *
 * Metrics (STATS).  Every answer to a client's request is counted when
 * dkv_svc_out_add queues it, on whichever thread answers: requests,
 * errors (a status other than OK), the keys read, written and deleted
 * (noted by dkv_svc_decode: a GET_MANY of 10 keys counts 10 gets, BATCH
 * and TXN_COMMIT ops by kind), and the time from dkv_service_submit to
 * then in a latency histogram.  The counters are split in shards, picked
 * by connection id, each under a lock of its own: no lock is shared by
 * every request.  STATS itself is a read: a reader sums the shards and
 * adds the gauges (connections, watches, live keys, the replica's
 * numbers).
 *
 * Shutdown.  dkv_service_shutdown marks the service (requests submitted
 * from then on are answered EUNAVAILABLE without running) and queues a
 * mark behind the requests already queued; when the replica reaches it,
 * every watch ends with an EUNAVAILABLE error event.  dkv_service_destroy
 * lets the replica drain its queue, joins it, then the readers.
 */
#include <string.h>

#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "platform/platform.h"
#include "common/alloc.h"
#include "common/status.h"
#include "client/client.h"
#include "client/exec.h"
#include "node/service-int.h"
#include "node/watch.h"

#define DEFAULT_EXPIRE_INTERVAL 50
#define DEFAULT_MAX_BATCH 1024
/* Reads a reader takes off the queue at once. */
#define READ_BATCH 32
/* Most items expired in one write context. */
#define EXPIRE_CHUNK 1000
/* Free queue items kept for reuse. */
#define FREE_MAX 4096
/* Shards of the STATS counters. */
#define METRIC_SHARDS 16

/* The request latency histogram's bounds, µs (docs/admin-api.md, "Node
 * metrics"); a last bucket holds the rest. */
static const uint64_t lat_bounds[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    1000000
};
#define NBOUNDS (sizeof(lat_bounds) / sizeof(lat_bounds[0]))
/* Their metrics: the requests answered within each bound (cumulative). */
static const char *const lat_names[NBOUNDS] = {
    "request_latency_us_le_100", "request_latency_us_le_250",
    "request_latency_us_le_500", "request_latency_us_le_1000",
    "request_latency_us_le_2500", "request_latency_us_le_5000",
    "request_latency_us_le_10000", "request_latency_us_le_25000",
    "request_latency_us_le_50000", "request_latency_us_le_100000",
    "request_latency_us_le_250000", "request_latency_us_le_1000000"
};

/* One shard of the STATS counters. */
typedef struct svc_shard {
    apr_thread_mutex_t *lock;
    uint64_t requests;
    uint64_t errors;
    uint64_t gets, puts, removes;
    uint64_t lat_sum;              /* µs */
    uint64_t lat[NBOUNDS + 1];     /* per bucket (not cumulative) */
    char pad[64];                  /* keeps shards off one cache line */
} svc_shard_t;

struct dkv_svc_metrics {
    svc_shard_t shards[METRIC_SHARDS];
    apr_time_t started;
    uint64_t connections;          /* under the service's slock */
};

int64_t
dkv_svc_now(const dkv_service_t *svc)
{
    if (svc->clock != NULL) {
        return svc->clock(svc->clock_baton);
    }
    return (int64_t)(apr_time_now() / 1000);
}

/* =================================================================== items */

dkv_svc_item_t *
dkv_svc_item_get(dkv_service_t *svc)
{
    dkv_svc_item_t *it;

    apr_thread_mutex_lock(svc->flock);
    it = svc->free_items;
    if (it != NULL) {
        svc->free_items = it->next;
        svc->nfree--;
    }
    apr_thread_mutex_unlock(svc->flock);
    if (it == NULL) {
        it = dkv_malloc(sizeof(*it));
    }
    if (it != NULL) {
        memset(it, 0, sizeof(*it));
    }
    return it;
}

/* Frees IT's frame and recycles IT. */
void
dkv_svc_item_put(dkv_service_t *svc, dkv_svc_item_t *it)
{
    dkv_free(it->frame);
    it->frame = NULL;
    apr_thread_mutex_lock(svc->flock);
    if (svc->nfree < FREE_MAX) {
        it->next = svc->free_items;
        svc->free_items = it;
        svc->nfree++;
        it = NULL;
    }
    apr_thread_mutex_unlock(svc->flock);
    dkv_free(it);
}

void
dkv_svc_queue_push(dkv_svc_queue_t *q, dkv_svc_item_t *it)
{
    it->next = NULL;
    apr_thread_mutex_lock(q->lock);
    if (q->tail != NULL) {
        q->tail->next = it;
    }
    else {
        q->head = it;
    }
    q->tail = it;
    apr_thread_cond_signal(q->cond);
    apr_thread_mutex_unlock(q->lock);
}

/* Detaches up to MAX items from Q's head; Q locked.  Returns the list. */
dkv_svc_item_t *
dkv_svc_queue_take(dkv_svc_queue_t *q, size_t max)
{
    dkv_svc_item_t *first = q->head, *last = q->head;
    size_t n = 1;

    if (first == NULL) {
        return NULL;
    }
    while (n < max && last->next != NULL) {
        last = last->next;
        n++;
    }
    q->head = last->next;
    if (q->head == NULL) {
        q->tail = NULL;
    }
    last->next = NULL;
    return first;
}

static int
is_read_op(uint8_t op)
{
    if (dkv_proto_op_reads_store(op) || op == DKV_MSG_PING
        || op == DKV_MSG_MEMBERS || op == DKV_MSG_STATS) {
        return 1;
    }
    switch (op) {
    case DKV_MSG_PUT:
    case DKV_MSG_DELETE:
    case DKV_MSG_EXPIRE:
    case DKV_MSG_REFRESH:
    case DKV_MSG_PUT_MANY:
    case DKV_MSG_DELETE_MANY:
    case DKV_MSG_BATCH:
    case DKV_MSG_CLEAR:
    case DKV_MSG_COUNTER_ADD:
    case DKV_MSG_COUNTER_SET:
    case DKV_MSG_LEASE_GRANT:
    case DKV_MSG_LEASE_KEEPALIVE:
    case DKV_MSG_LEASE_REVOKE:
    case DKV_MSG_LOCK_ACQUIRE:
    case DKV_MSG_LOCK_RELEASE:
    case DKV_MSG_TXN_COMMIT:
    case DKV_MSG_WATCH:
    case DKV_MSG_WATCH_CANCEL:
    case DKV_MSG_MEMBER_ADD:       /* answered by the replica */
        return 0;
    default:
        /* Unknown: a reader answers ENOTIMPL (or EINVAL for HELLO). */
        return 1;
    }
}

/* ============================================================== metrics */

/* Notes in IT the keys REQ reads, writes and deletes. */
static void
count_keys(dkv_svc_item_t *it, const dkv_request_t *req)
{
    size_t i;

    switch (req->op) {
    case DKV_MSG_GET:
        it->gets = 1;
        break;
    case DKV_MSG_GET_MANY:
        it->gets = (uint32_t)req->n;
        break;
    case DKV_MSG_PUT:
        it->puts = 1;
        break;
    case DKV_MSG_PUT_MANY:
        it->puts = (uint32_t)req->n;
        break;
    case DKV_MSG_DELETE:
        it->removes = 1;
        break;
    case DKV_MSG_DELETE_MANY:
        it->removes = (uint32_t)req->n;
        break;
    case DKV_MSG_BATCH:
    case DKV_MSG_TXN_COMMIT:
        for (i = 0; i < req->n; i++) {
            if (req->ops[i].type == DKV_OP_PUT) {
                it->puts++;
            }
            else if (req->ops[i].type == DKV_OP_DELETE) {
                it->removes++;
            }
        }
        break;
    default:
        break;
    }
}

/* See service-int.h. */
void
dkv_svc_note_keys(dkv_svc_item_t *it, apr_pool_t *pool)
{
    dkv_frame_t fr;
    dkv_request_t req;
    size_t size;

    if (it->received == 0 || it->gets + it->puts + it->removes > 0
        || it->len <= 4) {
        return;
    }
    /* The replica thread forwards every write of a follower: decode
     * only the ops whose key count is in their body. */
    switch (it->frame[4]) {
    case DKV_MSG_PUT:
        it->puts = 1;
        return;
    case DKV_MSG_DELETE:
        it->removes = 1;
        return;
    case DKV_MSG_PUT_MANY:
    case DKV_MSG_DELETE_MANY:
    case DKV_MSG_BATCH:
    case DKV_MSG_TXN_COMMIT:
        break;
    default:
        return;                        /* no keys counted */
    }
    if (dkv_proto_frame_parse(&fr, &size, it->frame, it->len,
                              0xFFFFFFFFu) != DKV_OK
        || dkv_proto_request_decode(&req, &fr, pool) != DKV_OK) {
        return;
    }
    count_keys(it, &req);
}

/* See service-int.h. */
void
dkv_svc_metrics_count(dkv_service_t *svc, const dkv_svc_item_t *it)
{
    apr_time_t now = apr_time_now();
    uint64_t us = now > it->received ? (uint64_t)(now - it->received) : 0;
    svc_shard_t *sh;
    size_t b = 0;

    while (b < NBOUNDS && us > lat_bounds[b]) {
        b++;
    }
    sh = &svc->metrics->shards[it->conn % METRIC_SHARDS];
    apr_thread_mutex_lock(sh->lock);
    sh->requests++;
    if (it->res.status != DKV_OK) {
        sh->errors++;
    }
    sh->gets += it->gets;
    sh->puts += it->puts;
    sh->removes += it->removes;
    sh->lat[b]++;
    sh->lat_sum += us;
    apr_thread_mutex_unlock(sh->lock);
}

static dkv_status_t
metrics_create(dkv_service_t *svc)
{
    struct dkv_svc_metrics *m = apr_pcalloc(svc->pool, sizeof(*m));
    dkv_status_t rv = APR_SUCCESS;
    size_t i;

    for (i = 0; i < METRIC_SHARDS && rv == APR_SUCCESS; i++) {
        rv = apr_thread_mutex_create(&m->shards[i].lock,
                                     APR_THREAD_MUTEX_DEFAULT, svc->pool);
    }
    m->started = apr_time_now();
    svc->metrics = m;
    return rv;
}

/* Appends metric NAME = VALUE to RES->stats (room made by the caller). */
static void
stat_add(dkv_response_t *res, const char *name, uint64_t value)
{
    res->stats[res->nstats].name = name;
    res->stats[res->nstats].value = value;
    res->nstats++;
}

/* The metrics kept in one pass, for the room STATS needs. */
#define NSTATS (NBOUNDS + 1 + 21)

/* Fills RES with the STATS answer (names in docs/admin-api.md, "Node
 * metrics"), the live keys from read context R; in POOL. */
static dkv_status_t
stats_fill(dkv_response_t *res, dkv_service_t *svc, dkv_eng_read_t *r,
           apr_pool_t *pool)
{
    struct dkv_svc_metrics *m = svc->metrics;
    svc_shard_t sum;
    dkv_replica_stats_t rs;
    uint64_t items = 0, connections, watches, cum;
    size_t i, b;
    dkv_status_t rv;

    rv = dkv_engine_count(&items, r, NULL);
    if (rv != DKV_OK) {
        return rv;
    }
    memset(&sum, 0, sizeof(sum));
    for (i = 0; i < METRIC_SHARDS; i++) {
        svc_shard_t *sh = &m->shards[i];

        apr_thread_mutex_lock(sh->lock);
        sum.requests += sh->requests;
        sum.errors += sh->errors;
        sum.gets += sh->gets;
        sum.puts += sh->puts;
        sum.removes += sh->removes;
        sum.lat_sum += sh->lat_sum;
        for (b = 0; b <= NBOUNDS; b++) {
            sum.lat[b] += sh->lat[b];
        }
        apr_thread_mutex_unlock(sh->lock);
    }
    apr_thread_mutex_lock(svc->slock);
    connections = m->connections;
    watches = svc->stats.watches;
    apr_thread_mutex_unlock(svc->slock);
    dkv_replica_stats(&rs, svc);

    res->stats = apr_pcalloc(pool, NSTATS * sizeof(*res->stats));
    stat_add(res, "gets_total", sum.gets);
    stat_add(res, "puts_total", sum.puts);
    stat_add(res, "removes_total", sum.removes);
    stat_add(res, "requests_total", sum.requests);
    stat_add(res, "errors_total", sum.errors);
    stat_add(res, "items", items);
    stat_add(res, "connections", connections);
    stat_add(res, "watches", watches);
    for (b = 0, cum = 0; b < NBOUNDS; b++) {
        cum += sum.lat[b];
        stat_add(res, lat_names[b], cum);
    }
    stat_add(res, "request_latency_us_le_inf", cum + sum.lat[NBOUNDS]);
    stat_add(res, "request_latency_us_sum", sum.lat_sum);
    stat_add(res, "raft_term", rs.term);
    stat_add(res, "raft_leader", rs.leader);
    stat_add(res, "raft_commit_index", rs.commit);
    stat_add(res, "raft_applied_index", rs.applied);
    stat_add(res, "raft_proposals_total", rs.proposals);
    stat_add(res, "fsyncs_total", rs.fsyncs);
    stat_add(res, "fsync_us_total", rs.fsync_us);
    stat_add(res, "node_id", rs.node_id);
    stat_add(res, "uptime_ms",
             (uint64_t)(apr_time_now() - m->started) / 1000);
    return DKV_OK;
}

/* ============================================================== answers */

/* Sets IT's answer to status RV with the thread's last error as its
 * message (copied into POOL). */
void
dkv_svc_set_status(dkv_svc_item_t *it, dkv_status_t rv, apr_pool_t *pool)
{
    it->res.status = rv;
    it->res.message = rv == DKV_OK ? ""
                                   : apr_pstrdup(pool, dkv_last_error());
}

/* Decodes IT's frame into *REQ (in POOL) and prepares its answer.
 * Returns DKV_OK, or the status already set as its answer. */
dkv_status_t
dkv_svc_decode(dkv_request_t *req, dkv_svc_item_t *it, apr_pool_t *pool)
{
    dkv_frame_t fr;
    size_t size;
    dkv_status_t rv;

    memset(&it->res, 0, sizeof(it->res));
    it->res.message = "";
    it->gets = it->puts = it->removes = 0;
    dkv_error_clear();
    rv = dkv_proto_frame_parse(&fr, &size, it->frame, it->len, 0xFFFFFFFFu);
    if (rv != DKV_OK || size != it->len) {
        /* The network half only submits whole frames; be safe anyway. */
        it->res.op = it->len > 4 ? it->frame[4] & 0x7F : 0;
        it->res.id = 0;
        if (it->len >= DKV_PROTO_HEADER) {
            size_t i;

            for (i = 8; i < DKV_PROTO_HEADER; i++) {
                it->res.id = (it->res.id << 8) | it->frame[i];
            }
        }
        dkv_error_set(DKV_EINVAL, "malformed request: bad frame");
        dkv_svc_set_status(it, DKV_EINVAL, pool);
        return DKV_EINVAL;
    }
    it->res.op = fr.op & 0x7F;
    it->res.id = fr.id;
    if (fr.op == DKV_MSG_HELLO) {
        dkv_error_set(DKV_EINVAL, "HELLO is only allowed once, first");
        dkv_svc_set_status(it, DKV_EINVAL, pool);
        return DKV_EINVAL;
    }
    rv = dkv_proto_request_decode(req, &fr, pool);
    if (rv != DKV_OK) {
        if (dkv_last_error()[0] == '\0') {
            dkv_error_set(rv, "%s", rv == DKV_ENOTIMPL
                          ? "unknown operation" : "malformed request");
        }
        dkv_svc_set_status(it, rv, pool);
        return rv;
    }
    if (it->refused) {
        dkv_error_set(DKV_EUNAVAILABLE, "node shutting down");
        dkv_svc_set_status(it, DKV_EUNAVAILABLE, pool);
        return DKV_EUNAVAILABLE;
    }
    count_keys(it, req);
    return DKV_OK;
}


void
dkv_svc_out_flush(dkv_service_t *svc, dkv_svc_out_t *out)
{
    if (out->used && out->buf.len > 0) {
        svc->send(svc->baton, out->conn, DKV_SERVICE_RESPONSE, 0, &out->buf);
    }
    else if (out->used) {
        dkv_wbuf_free(&out->buf);
    }
    out->used = 0;
}

/* Appends IT's answer to OUT (flushing OUT first when it holds another
 * connection's answers). */
void
dkv_svc_out_add(dkv_service_t *svc, dkv_svc_out_t *out, dkv_svc_item_t *it)
{
    size_t mark;

    if (out->used && out->conn != it->conn) {
        dkv_svc_out_flush(svc, out);
    }
    if (!out->used) {
        dkv_wbuf_init(&out->buf, 0);
        out->conn = it->conn;
        out->used = 1;
    }
    if (it->received != 0 && svc->metrics != NULL) {
        dkv_svc_metrics_count(svc, it);
    }
    mark = out->buf.len;
    if (dkv_proto_response_encode(&out->buf, &it->res) != DKV_OK) {
        /* Too big or out of memory: answer with the failure instead. */
        dkv_response_t err;
        dkv_status_t why = out->buf.failed != DKV_OK ? out->buf.failed
                                                     : DKV_ETOOLARGE;

        out->buf.len = mark;
        out->buf.failed = DKV_OK;
        memset(&err, 0, sizeof(err));
        err.op = it->res.op;
        err.id = it->res.id;
        err.status = why;
        err.message = "the node could not encode the response";
        if (dkv_proto_response_encode(&out->buf, &err) != DKV_OK) {
            out->buf.len = mark;
            out->buf.failed = DKV_OK;
        }
    }
}

/* ================================================================ reads */

static dkv_status_t
run_read(dkv_service_t *svc, const dkv_request_t *req, dkv_response_t *res,
         apr_pool_t *pool)
{
    dkv_eng_read_t *r;
    dkv_page_t *page = NULL;
    int64_t now = dkv_svc_now(svc);
    dkv_status_t rv;

    rv = dkv_engine_read_begin(&r, svc->engine, now);
    if (rv != DKV_OK) {
        return rv;
    }
    switch (req->op) {
    case DKV_MSG_PING:
        res->revision = dkv_engine_read_revision(r);
        res->node_time = now;
        res->instance = svc->instance;
        break;
    case DKV_MSG_REVISION:
        res->revision = dkv_engine_read_revision(r);
        break;
    case DKV_MSG_MEMBERS:
        dkv_replica_members(res, svc, pool);
        break;
    case DKV_MSG_STATS:
        rv = stats_fill(res, svc, r, pool);
        break;
    case DKV_MSG_GET:
        rv = dkv_check_key(req->key, req->key_len, 0);
        if (rv == DKV_OK) {
            /* The engine fills the item whatever its status. */
            rv = dkv_engine_get(&res->item, r, req->key, req->key_len,
                                &req->get, pool);
            res->has_result = 1;
        }
        res->item.status = rv;
        break;
    case DKV_MSG_GET_MANY:
        res->n = req->n;
        res->items = apr_pcalloc(pool, (req->n + 1) * sizeof(dkv_item_t));
        rv = dkv_exec_get_many(res->items, r, req->keys, req->n, &req->get,
                               pool);
        break;
    case DKV_MSG_SCAN:
        rv = dkv_engine_scan(&page, r, &req->range, &req->scan, pool);
        break;
    case DKV_MSG_COUNT:
        rv = dkv_engine_count(&res->u64, r, &req->range);
        break;
    case DKV_MSG_COUNTER_GET:
        rv = dkv_check_key(req->key, req->key_len, 0);
        if (rv == DKV_OK) {
            rv = dkv_engine_counter_get(&res->num1, r, req->key,
                                        req->key_len);
        }
        break;
    case DKV_MSG_LEASE_INFO:
        rv = dkv_engine_lease_info(&res->lease_info, r, req->u64);
        break;
    case DKV_MSG_SEARCH:
        rv = dkv_engine_search(&page, r, &req->query, &req->search, pool);
        break;
    default:
        rv = dkv_error_set(DKV_ENOTIMPL, "operation 0x%02x is not served",
                           (unsigned)req->op);
        break;
    }
    if (rv == DKV_OK && page != NULL) {
        res->page = *page;
    }
    dkv_engine_read_end(r);
    return rv;
}

static void *APR_THREAD_FUNC
reader_main(apr_thread_t *thread, void *data)
{
    dkv_svc_reader_t *rd = data;
    dkv_service_t *svc = rd->svc;
    dkv_svc_out_t out;

    (void)thread;
    memset(&out, 0, sizeof(out));
    for (;;) {
        dkv_svc_item_t *list, *it;
        uint64_t n = 0;

        apr_thread_mutex_lock(svc->rq.lock);
        while (svc->rq.head == NULL && !svc->rq.stop) {
            apr_thread_cond_wait(svc->rq.cond, svc->rq.lock);
        }
        list = dkv_svc_queue_take(&svc->rq, READ_BATCH);
        apr_thread_mutex_unlock(svc->rq.lock);
        if (list == NULL) {
            break;
        }
        while ((it = list) != NULL) {
            dkv_request_t req;

            list = it->next;
            if (dkv_svc_decode(&req, it, rd->pool) == DKV_OK) {
                dkv_status_t rv;

                dkv_error_clear();
                rv = run_read(svc, &req, &it->res, rd->pool);
                dkv_svc_set_status(it, rv, rd->pool);
            }
            dkv_svc_out_add(svc, &out, it);
            dkv_svc_item_put(svc, it);
            apr_pool_clear(rd->pool);
            n++;
        }
        dkv_svc_out_flush(svc, &out);
        apr_thread_mutex_lock(svc->slock);
        svc->stats.reads += n;
        apr_thread_mutex_unlock(svc->slock);
    }
    dkv_error_clear();
    return NULL;
}

/* =============================================================== writes */

/* Runs write request REQ in context W; fills RES's result fields. */
dkv_status_t
dkv_svc_run_write(dkv_service_t *svc, dkv_eng_write_t *w,
                  const dkv_request_t *req, dkv_response_t *res,
                  size_t max_value, apr_pool_t *pool)
{
    dkv_status_t rv;
    size_t i;

    (void)svc;

    switch (req->op) {
    case DKV_MSG_PUT:
        rv = dkv_check_put(req->key, req->key_len, req->value,
                           req->value_len, &req->put, max_value);
        if (rv == DKV_OK) {
            /* The engine fills the result whatever its status. */
            rv = dkv_engine_put(&res->result, w, req->key, req->key_len,
                                req->value, req->value_len, &req->put);
            res->has_result = 1;
        }
        return rv;
    case DKV_MSG_DELETE:
        rv = dkv_check_key(req->key, req->key_len, 0);
        if (rv == DKV_OK) {
            rv = dkv_engine_delete(&res->result, w, req->key, req->key_len,
                                   &req->del);
            res->has_result = 1;
        }
        return rv;
    case DKV_MSG_EXPIRE:
        rv = dkv_check_key(req->key, req->key_len, 0);
        if (rv == DKV_OK && req->num < 0) {
            rv = dkv_error_set(DKV_EINVAL, "dkv_expire: ttl_ms is negative"
                               " (%lld)", (long long)req->num);
        }
        if (rv == DKV_OK) {
            rv = dkv_engine_expire(&res->result, w, req->key, req->key_len,
                                   req->num, req->u64);
            res->has_result = 1;
        }
        return rv;
    case DKV_MSG_REFRESH:
        rv = dkv_check_key(req->key, req->key_len, 0);
        if (rv == DKV_OK) {
            rv = dkv_engine_refresh(&res->result, w, req->key, req->key_len,
                                    req->u64);
            res->has_result = 1;
        }
        return rv;
    case DKV_MSG_PUT_MANY:
        rv = dkv_check_put_opts(&req->put);
        res->n = req->n;
        res->results = apr_pcalloc(pool, (req->n + 1)
                                         * sizeof(dkv_result_t));
        if (rv == DKV_OK) {
            rv = dkv_exec_put_many(res->results, w, req->kvs, req->n,
                                   &req->put, max_value);
        }
        return rv;
    case DKV_MSG_DELETE_MANY:
        res->n = req->n;
        res->results = apr_pcalloc(pool, (req->n + 1)
                                         * sizeof(dkv_result_t));
        return dkv_exec_delete_many(res->results, w, req->keys, req->n,
                                    &req->del);
    case DKV_MSG_BATCH:
        res->n = req->n;
        res->results = apr_pcalloc(pool, (req->n + 1)
                                         * sizeof(dkv_result_t));
        return dkv_exec_batch(res->results, w, req->ops, req->n,
                              max_value);
    case DKV_MSG_CLEAR:
        return dkv_engine_clear(&res->u64, w, &req->range);
    case DKV_MSG_COUNTER_ADD:
        rv = dkv_check_key(req->key, req->key_len, 0);
        if (rv == DKV_OK) {
            rv = dkv_engine_counter_add(&res->num1, &res->num2, w, req->key,
                                        req->key_len, req->num,
                                        &req->counter);
        }
        return rv;
    case DKV_MSG_COUNTER_SET:
        rv = dkv_check_key(req->key, req->key_len, 0);
        if (rv == DKV_OK) {
            rv = dkv_engine_counter_set(w, req->key, req->key_len, req->num,
                                        &req->counter);
        }
        return rv;
    case DKV_MSG_LEASE_GRANT:
        return dkv_engine_lease_grant(&res->u64, w, req->num);
    case DKV_MSG_LEASE_KEEPALIVE:
        return dkv_engine_lease_keepalive(&res->num1, w, req->u64);
    case DKV_MSG_LEASE_REVOKE:
        return dkv_engine_lease_revoke(&res->u64, w, req->u64);
    case DKV_MSG_LOCK_ACQUIRE:
        rv = dkv_check_key(req->key, req->key_len, 0);
        if (rv == DKV_OK) {
            rv = dkv_engine_lock_acquire(&res->lock, w, req->key,
                                         req->key_len, req->u64);
        }
        return rv;
    case DKV_MSG_LOCK_RELEASE:
        rv = dkv_check_key(req->key, req->key_len, 0);
        if (rv == DKV_OK) {
            rv = dkv_engine_lock_release(w, req->key, req->key_len,
                                         req->u64);
        }
        return rv;
    case DKV_MSG_TXN_COMMIT: {
        dkv_eng_compare_t *cmp = apr_palloc(pool, (req->ncompares + 1)
                                                  * sizeof(*cmp));

        for (i = 0; i < req->ncompares; i++) {
            cmp[i].key = req->compares[i].key;
            cmp[i].key_len = req->compares[i].key_len;
            cmp[i].mod_revision = req->compares[i].mod_revision;
        }
        rv = dkv_engine_txn(w, cmp, req->ncompares, req->ops, req->n);
        if (rv == DKV_OK) {
            res->revision = dkv_engine_write_revision(w);
        }
        return rv;
    }
    default:
        return dkv_error_set(DKV_ENOTIMPL, "operation 0x%02x is not served",
                             (unsigned)req->op);
    }
}

/* A watch's backlog on its way out, a frame at a time. */
typedef struct backlog {
    dkv_service_t *svc;
    uint64_t conn;
    uint64_t id;
    dkv_event_t evs[DKV_HUB_FRAME_EVENTS];
    size_t n;
    size_t bytes;
    int dropped;
} backlog_t;

/* Sends the events gathered in BL; FLAGS are the EVENT header flags of
 * the last frame (DKV_PROTO_EVENT_SNAPSHOT_DONE: sent even without
 * events). */
static void
backlog_send(backlog_t *bl, unsigned flags)
{
    if ((bl->n > 0 || flags != 0) && !bl->dropped) {
        bl->dropped = dkv_hub_send(bl->svc->hub, bl->conn, bl->id, bl->evs,
                                   bl->n, flags);
    }
    bl->n = 0;
    bl->bytes = 0;
    apr_pool_clear(bl->svc->bpool);
}

static dkv_status_t
backlog_event(void *baton, const dkv_event_t *ev)
{
    backlog_t *bl = baton;
    dkv_event_t *e = &bl->evs[bl->n++];
    apr_pool_t *p = bl->svc->bpool;

    *e = *ev;
    e->key = apr_pmemdup(p, ev->key, ev->key_len ? ev->key_len : 1);
    if (ev->value != NULL) {
        e->value = apr_pmemdup(p, ev->value,
                               ev->value_len ? ev->value_len : 1);
    }
    bl->bytes += ev->key_len + (ev->value ? ev->value_len : 0) + 32;
    if (bl->n == DKV_HUB_FRAME_EVENTS || bl->bytes >= DKV_HUB_FRAME_BYTES) {
        backlog_send(bl, 0);
        if (bl->dropped) {
            return DKV_ECLOSED;        /* stops the replay */
        }
    }
    return DKV_OK;
}

/* Sends IT's answer now. */
static void
answer_now(dkv_service_t *svc, dkv_svc_item_t *it)
{
    dkv_svc_out_t out;

    memset(&out, 0, sizeof(out));
    dkv_svc_out_add(svc, &out, it);
    dkv_svc_out_flush(svc, &out);
}

/* WATCH: answered with the revision R of the last commit, then the
 * backlog from R's snapshot, then live events from R+1 on. */
static void
start_watch(dkv_service_t *svc, dkv_svc_item_t *it, const dkv_request_t *req,
            apr_pool_t *pool)
{
    int prefix = (req->watch_flags & DKV_PROTO_WATCH_PREFIX) != 0;
    int snapshot = (req->watch_flags & DKV_PROTO_WATCH_SNAPSHOT) != 0;
    uint64_t start = req->u64, rev, min_rev;
    dkv_eng_read_t *r;
    backlog_t *bl;
    dkv_status_t rv;

    dkv_error_clear();
    rv = dkv_check_key(req->key, req->key_len, prefix);
    if (rv == DKV_OK && snapshot && start != 0) {
        rv = dkv_error_set(DKV_EINVAL, "dkv_watch_start: include_snapshot"
                           " and start_revision exclude each other");
    }
    if (rv == DKV_OK && dkv_hub_has(svc->hub, it->conn, it->res.id)) {
        rv = dkv_error_set(DKV_EINVAL, "watch id %llu is already in use on"
                           " this connection",
                           (unsigned long long)it->res.id);
    }
    if (rv == DKV_OK) {
        rv = dkv_engine_read_begin(&r, svc->engine, dkv_svc_now(svc));
    }
    if (rv != DKV_OK) {
        dkv_svc_set_status(it, rv, pool);
        answer_now(svc, it);
        return;
    }
    rev = dkv_engine_read_revision(r);
    if (start != 0 && start <= rev
        && start < dkv_engine_history_oldest(r)) {
        rv = dkv_error_set(DKV_ECOMPACTED, "dkv_watch_start: revision %llu"
                           " is older than the retained history (oldest"
                           " %llu)", (unsigned long long)start,
                           (unsigned long long)dkv_engine_history_oldest(r));
        dkv_engine_read_end(r);
        dkv_svc_set_status(it, rv, pool);
        answer_now(svc, it);
        return;
    }
    it->res.revision = rev;
    dkv_svc_set_status(it, DKV_OK, pool);
    answer_now(svc, it);

    bl = apr_pcalloc(pool, sizeof(*bl));
    bl->svc = svc;
    bl->conn = it->conn;
    bl->id = it->res.id;
    if (snapshot || start != 0) {
        rv = dkv_exec_watch_backlog(r, req->key, req->key_len, prefix,
                                    snapshot, start, backlog_event, bl,
                                    pool);
        if (rv == DKV_OK) {
            /* The last snapshot frame says so (SNAPSHOT_DONE), an empty
             * one when the snapshot was: a client that loses the
             * connection before it knows the snapshot is incomplete. */
            backlog_send(bl, snapshot ? DKV_PROTO_EVENT_SNAPSHOT_DONE : 0);
        }
        apr_pool_clear(svc->bpool);
    }
    dkv_engine_read_end(r);
    if (bl->dropped) {
        return;
    }
    if (rv != DKV_OK) {
        dkv_hub_end(svc->hub, it->conn, it->res.id, rv, rev);
        return;
    }
    min_rev = rev + 1;
    if (start > min_rev) {
        min_rev = start;
    }
    rv = dkv_hub_add(svc->hub, it->conn, it->res.id, req->key,
                     req->key_len, prefix, min_rev);
    if (rv != DKV_OK) {
        dkv_hub_end(svc->hub, it->conn, it->res.id, rv, rev);
    }
}

/* WATCH, WATCH_CANCEL, a close or the shutdown mark, between commits. */
void
dkv_svc_control(dkv_service_t *svc, dkv_svc_item_t *it, apr_pool_t *pool)
{
    dkv_request_t req;

    switch (it->kind) {
    case DKV_SVC_CLOSED:
        dkv_hub_conn_closed(svc->hub, it->conn);
        break;
    case DKV_SVC_SHUTDOWN:
        dkv_hub_end_all(svc->hub, DKV_EUNAVAILABLE,
                        dkv_service_revision(svc));
        break;
    case DKV_SVC_REQUEST:
        if (dkv_svc_decode(&req, it, pool) != DKV_OK) {
            answer_now(svc, it);
        }
        else if (req.op == DKV_MSG_WATCH_CANCEL) {
            dkv_hub_cancel(svc->hub, it->conn, req.u64);
            dkv_svc_set_status(it, DKV_OK, pool);
            answer_now(svc, it);
        }
        else {
            start_watch(svc, it, &req, pool);
        }
        break;
    }
    dkv_svc_item_put(svc, it);
    apr_thread_mutex_lock(svc->slock);
    svc->stats.watches = dkv_hub_count(svc->hub);
    svc->stats.dropped = dkv_hub_dropped(svc->hub);
    apr_thread_mutex_unlock(svc->slock);
    apr_pool_clear(pool);
}

int
dkv_svc_is_control(const dkv_svc_item_t *it)
{
    uint8_t op;

    if (it->kind != DKV_SVC_REQUEST) {
        return 1;
    }
    op = it->len > 4 ? it->frame[4] : 0;
    return op == DKV_MSG_WATCH || op == DKV_MSG_WATCH_CANCEL;
}

int
dkv_svc_is_lin_read(const dkv_service_t *svc, const dkv_svc_item_t *it)
{
    return !svc->local_reads && it->kind == DKV_SVC_REQUEST && it->len > 5
           && dkv_proto_op_reads_store(it->frame[4])
           && (it->frame[5] & DKV_PROTO_FLAG_SERIALIZABLE) == 0;
}

/* ============================================================ interface */

/* See service.h. */
void
dkv_service_submit(dkv_service_t *service, uint64_t conn_id,
                   unsigned char *frame, size_t len)
{
    dkv_svc_item_t *it = dkv_svc_item_get(service);
    uint8_t op;

    if (it == NULL) {
        /* Out of memory: the request cannot even be queued. */
        dkv_free(frame);
        return;
    }
    it->kind = DKV_SVC_REQUEST;
    it->conn = conn_id;
    it->frame = frame;
    it->len = len;
    it->received = apr_time_now();
    op = len > 4 ? frame[4] : 0;
    if (is_read_op(op) && !dkv_svc_is_lin_read(service, it)) {
        /* The flag is read under the queue lock shutdown takes. */
        apr_thread_mutex_lock(service->rq.lock);
        it->refused = service->shutting;
        apr_thread_mutex_unlock(service->rq.lock);
        dkv_svc_queue_push(&service->rq, it);
    }
    else {
        apr_thread_mutex_lock(service->wq.lock);
        it->refused = service->shutting;
        apr_thread_mutex_unlock(service->wq.lock);
        dkv_svc_queue_push(&service->wq, it);
    }
}

/* Queues a control item of KIND for the writer. */
static void
queue_control(dkv_service_t *svc, dkv_svc_kind_t kind, uint64_t conn)
{
    dkv_svc_item_t *it = dkv_svc_item_get(svc);

    if (it == NULL) {
        return;
    }
    it->kind = kind;
    it->conn = conn;
    dkv_svc_queue_push(&svc->wq, it);
}

/* See service.h. */
void
dkv_service_conn_closed(dkv_service_t *service, uint64_t conn_id)
{
    queue_control(service, DKV_SVC_CLOSED, conn_id);
}

/* See service.h. */
void
dkv_service_set_connections(dkv_service_t *service, uint64_t n)
{
    apr_thread_mutex_lock(service->slock);
    service->metrics->connections = n;
    apr_thread_mutex_unlock(service->slock);
}

/* See service.h. */
uint64_t
dkv_service_revision(dkv_service_t *service)
{
    uint64_t rev;

    apr_thread_mutex_lock(service->slock);
    rev = service->revision;
    apr_thread_mutex_unlock(service->slock);
    return rev;
}

/* See service-int.h. */
void
dkv_service_stats(dkv_service_stats_t *stats, dkv_service_t *service)
{
    apr_thread_mutex_lock(service->slock);
    *stats = service->stats;
    apr_thread_mutex_unlock(service->slock);
}

/* See service.h. */
void
dkv_service_shutdown(dkv_service_t *service)
{
    int first;

    apr_thread_mutex_lock(service->rq.lock);
    apr_thread_mutex_lock(service->wq.lock);
    first = !service->shutting;
    service->shutting = 1;
    apr_thread_mutex_unlock(service->wq.lock);
    apr_thread_mutex_unlock(service->rq.lock);
    if (first) {
        queue_control(service, DKV_SVC_SHUTDOWN, 0);
    }
}

static void
queue_stop(dkv_svc_queue_t *q)
{
    apr_thread_mutex_lock(q->lock);
    q->stop = 1;
    apr_thread_cond_broadcast(q->cond);
    apr_thread_mutex_unlock(q->lock);
}

/* See service.h.  The threads return from their functions (no
 * apr_thread_exit), so apr_thread_join's status is not meaningful on
 * Windows and is ignored, as in inproc.c. */
void
dkv_service_destroy(dkv_service_t *service)
{
    apr_status_t ignored;
    unsigned i;
    dkv_svc_item_t *it;

    if (service == NULL) {
        return;
    }
    dkv_service_shutdown(service);
    /* The replica first: it may still hand reads to the readers. */
    queue_stop(&service->wq);
    if (service->writer != NULL) {
        apr_thread_join(&ignored, service->writer);
    }
    dkv_replica_stop(service);
    queue_stop(&service->rq);
    for (i = 0; i < service->nreaders; i++) {
        if (service->readers[i].thread != NULL) {
            apr_thread_join(&ignored, service->readers[i].thread);
        }
    }
    /* Left only when a thread failed to start. */
    while ((it = service->wq.head) != NULL) {
        service->wq.head = it->next;
        dkv_free(it->frame);
        dkv_free(it);
    }
    while ((it = service->rq.head) != NULL) {
        service->rq.head = it->next;
        dkv_free(it->frame);
        dkv_free(it);
    }
    while ((it = service->free_items) != NULL) {
        service->free_items = it->next;
        dkv_free(it);
    }
    apr_pool_destroy(service->pool);
}

static dkv_status_t
queue_init(dkv_svc_queue_t *q, apr_pool_t *pool)
{
    dkv_status_t rv;

    rv = apr_thread_mutex_create(&q->lock, APR_THREAD_MUTEX_DEFAULT, pool);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_cond_create(&q->cond, pool);
    }
    return rv;
}

/* See service.h. */
dkv_status_t
dkv_service_create(dkv_service_t **service, dkv_engine_t *engine,
                   const dkv_service_opts_t *opts,
                   dkv_service_send_fn *send, void *baton, apr_pool_t *pool)
{
    static const dkv_service_opts_t defaults;
    dkv_service_t *svc;
    dkv_eng_read_t *r;
    apr_pool_t *p;
    unsigned i;
    dkv_status_t rv;

    if (opts == NULL) {
        opts = &defaults;
    }
    rv = apr_pool_create(&p, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    svc = apr_pcalloc(p, sizeof(*svc));
    svc->pool = p;
    svc->engine = engine;
    svc->max_value = dkv_engine_max_value(engine);
    svc->send = send;
    svc->baton = baton;
    svc->instance = apr_pstrdup(p, opts->instance ? opts->instance : "");
    svc->clock = opts->clock;
    svc->clock_baton = opts->clock_baton;
    svc->interval = opts->expire_interval_ms ? opts->expire_interval_ms
                                             : DEFAULT_EXPIRE_INTERVAL;
    svc->max_batch = opts->max_batch ? opts->max_batch : DEFAULT_MAX_BATCH;
    svc->nreaders = opts->readers ? opts->readers : dkv_plat_cpus();
    if (svc->nreaders < 1) {
        svc->nreaders = 1;
    }

    if ((rv = queue_init(&svc->rq, p)) != APR_SUCCESS
        || (rv = queue_init(&svc->wq, p)) != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&svc->flock,
                                         APR_THREAD_MUTEX_DEFAULT, p))
           != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&svc->slock,
                                         APR_THREAD_MUTEX_DEFAULT, p))
           != APR_SUCCESS
        || (rv = apr_pool_create(&svc->bpool, p)) != APR_SUCCESS
        || (rv = metrics_create(svc)) != APR_SUCCESS
        || (rv = dkv_hub_create(&svc->hub, send, baton, p)) != DKV_OK) {
        apr_pool_destroy(p);
        return dkv_error_set(rv, "service: cannot create its locks: %s",
                             dkv_strerror(rv));
    }
    rv = dkv_engine_read_begin(&r, engine, dkv_svc_now(svc));
    if (rv != DKV_OK) {
        apr_pool_destroy(p);
        return rv;
    }
    svc->revision = dkv_engine_read_revision(r);
    dkv_engine_read_end(r);

    svc->readers = apr_pcalloc(p, svc->nreaders * sizeof(dkv_svc_reader_t));
    for (i = 0; i < svc->nreaders; i++) {
        svc->readers[i].svc = svc;
        rv = apr_pool_create(&svc->readers[i].pool, p);
        if (rv != APR_SUCCESS) {
            break;
        }
    }
    if (rv == APR_SUCCESS) {
        rv = dkv_replica_start(svc, opts, p);
        if (rv != DKV_OK) {
            /* The message is the replica's. */
            dkv_service_destroy(svc);
            return rv;
        }
    }
    for (i = 0; rv == APR_SUCCESS && i < svc->nreaders; i++) {
        rv = apr_thread_create(&svc->readers[i].thread, NULL, reader_main,
                               &svc->readers[i], p);
        if (rv != APR_SUCCESS) {
            svc->readers[i].thread = NULL;
        }
    }
    if (rv != APR_SUCCESS) {
        dkv_error_set(rv, "service: cannot start its threads: %s",
                      dkv_strerror(rv));
        dkv_service_destroy(svc);
        return rv;
    }
    *service = svc;
    return DKV_OK;
}
