/*
 * metrics.c -- dkv-manager's metrics of its nodes: a sampler thread asks
 * every running node for STATS once a second and keeps the last 300
 * samples of each (five minutes), from which GET /admin/v1/metrics gets
 * totals and rates and GET /metrics its Prometheus text.
 *
 * Per node (keyed store/instance): the metric names of its samples and a
 * ring of (time, values).  A node whose names change (another dkv-node
 * version) starts a new ring; a node not sampled for five minutes is
 * dropped.  One mutex guards the table; the sampler never holds it while
 * it talks to a node.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "manager/manager.h"
#include "common/alloc.h"
#include "common/proto.h"
#include "common/status.h"

#define RING 300                   /* samples kept: 5 minutes */
#define PERIOD_MS 1000
#define KEEP_GONE_MS (5 * 60 * 1000)
#define PROM_FRESH_MS 10000        /* /metrics shows nodes sampled since */
#define STATS_TIMEOUT_MS 1000
#define LAT_PREFIX "request_latency_us_le_"
#define U64 "%" APR_UINT64_T_FMT      /* apr_psprintf has no %llu */

typedef struct mnode {
    char store[MGR_NAME_MAX + 1];
    char instance[MGR_NAME_MAX + 1];
    uint32_t node_id;
    apr_pool_t *pool;              /* names and the ring */
    size_t nnames;
    const char **names;
    int64_t *times;                /* RING */
    uint64_t *values;              /* RING x nnames */
    size_t head;                   /* the next slot */
    size_t count;                  /* samples held */
    int64_t last_ms;
} mnode_t;

struct mgr_metrics {
    apr_pool_t *pool;              /* own allocator; under LOCK */
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *cond;
    apr_thread_t *thread;
    volatile apr_uint32_t quit;    /* set under LOCK, read without too */
    mgr_sup_t *sup;
    apr_hash_t *nodes;             /* "store/instance" -> mnode_t */
};

static int64_t
now_ms(void)
{
    return (int64_t)(apr_time_now() / 1000);
}

/* 1 when the node's names are those of STATS. */
static int
same_names(const mnode_t *n, const apr_array_header_t *stats)
{
    int i;

    if (n->pool == NULL || n->nnames != (size_t)stats->nelts) {
        return 0;
    }
    for (i = 0; i < stats->nelts; i++) {
        if (strcmp(n->names[i],
                   DKV_ARRAY_IDX(stats, i, dkv_proto_stat_t).name) != 0) {
            return 0;
        }
    }
    return 1;
}

/* Adds a sample of SPEC's node (LOCK held). */
static void
record(mgr_metrics_t *m, const mgr_node_spec_t *spec,
       const apr_array_header_t *stats, int64_t when)
{
    char key[2 * MGR_NAME_MAX + 2];
    mnode_t *n;
    uint64_t *row;
    int i;

    /* The key is copied into M's pool only for a new node: this runs
     * every second for every node. */
    apr_snprintf(key, sizeof(key), "%s/%s", spec->store, spec->instance);
    n = apr_hash_get(m->nodes, key, APR_HASH_KEY_STRING);
    if (n == NULL) {
        n = apr_pcalloc(m->pool, sizeof(*n));
        apr_cpystrn(n->store, spec->store, sizeof(n->store));
        apr_cpystrn(n->instance, spec->instance, sizeof(n->instance));
        apr_hash_set(m->nodes, apr_pstrdup(m->pool, key),
                     APR_HASH_KEY_STRING, n);
    }
    n->node_id = spec->node_id;
    if (!same_names(n, stats)) {
        if (n->pool != NULL) {
            apr_pool_destroy(n->pool);
        }
        if (apr_pool_create(&n->pool, m->pool) != APR_SUCCESS) {
            n->pool = NULL;
            n->nnames = 0;
            n->count = 0;
            return;
        }
        n->nnames = (size_t)stats->nelts;
        n->names = apr_pcalloc(n->pool, (n->nnames + 1) * sizeof(char *));
        for (i = 0; i < stats->nelts; i++) {
            n->names[i] = apr_pstrdup(n->pool, DKV_ARRAY_IDX(
                                          stats, i, dkv_proto_stat_t).name);
        }
        n->times = apr_pcalloc(n->pool, RING * sizeof(int64_t));
        n->values = apr_pcalloc(n->pool, RING * (n->nnames + 1)
                                * sizeof(uint64_t));
        n->head = 0;
        n->count = 0;
    }
    row = n->values + n->head * n->nnames;
    for (i = 0; i < stats->nelts; i++) {
        row[i] = DKV_ARRAY_IDX(stats, i, dkv_proto_stat_t).value;
    }
    n->times[n->head] = when;
    n->head = (n->head + 1) % RING;
    if (n->count < RING) {
        n->count++;
    }
    n->last_ms = when;
}

/* Drops the nodes not sampled for five minutes (LOCK held). */
static void
drop_gone(mgr_metrics_t *m, int64_t now)
{
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, m->nodes); hi; hi = apr_hash_next(hi)) {
        const void *key;
        void *val;
        mnode_t *n;

        apr_hash_this(hi, &key, NULL, &val);
        n = val;
        if (now - n->last_ms > KEEP_GONE_MS) {
            if (n->pool != NULL) {
                apr_pool_destroy(n->pool);
                n->pool = NULL;
            }
            apr_hash_set(m->nodes, key, APR_HASH_KEY_STRING, NULL);
        }
    }
}

/* The sampler thread. */
static void *APR_THREAD_FUNC
sampler(apr_thread_t *thread, void *data)
{
    mgr_metrics_t *m = data;
    apr_pool_t *tick;
    int64_t next = now_ms();

    (void)thread;
    if (apr_pool_create(&tick, NULL) != APR_SUCCESS) {
        return NULL;
    }
    apr_thread_mutex_lock(m->lock);
    while (!m->quit) {
        apr_array_header_t *running;
        int i;

        if (now_ms() < next) {
            apr_thread_cond_timedwait(m->cond, m->lock,
                                      (apr_interval_time_t)
                                      (next - now_ms()) * 1000);
            continue;
        }
        next += PERIOD_MS;
        if (next < now_ms()) {
            next = now_ms() + PERIOD_MS;      /* fell behind: skip */
        }
        apr_thread_mutex_unlock(m->lock);
        apr_pool_clear(tick);
        running = mgr_sup_running(m->sup, tick);
        for (i = 0; i < running->nelts && !apr_atomic_read32(&m->quit);
             i++) {
            const mgr_node_spec_t *spec = &DKV_ARRAY_IDX(running, i,
                                                         mgr_node_spec_t);
            apr_array_header_t *stats;

            if (mgr_node_stats(&stats, spec, STATS_TIMEOUT_MS, tick)
                == DKV_OK) {
                apr_thread_mutex_lock(m->lock);
                record(m, spec, stats, now_ms());
                apr_thread_mutex_unlock(m->lock);
            }
        }
        apr_thread_mutex_lock(m->lock);
        drop_gone(m, now_ms());
    }
    apr_thread_mutex_unlock(m->lock);
    apr_pool_destroy(tick);
    return NULL;
}

/* See manager.h. */
dkv_status_t
mgr_metrics_create(mgr_metrics_t **mp, mgr_sup_t *sup, apr_pool_t *pool)
{
    mgr_metrics_t *m;
    apr_allocator_t *alloc;
    apr_pool_t *p;
    apr_status_t rv;

    *mp = NULL;
    rv = apr_allocator_create(&alloc);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "metrics: out of memory");
    }
    rv = apr_pool_create_ex(&p, pool, NULL, alloc);
    if (rv != APR_SUCCESS) {
        apr_allocator_destroy(alloc);
        return dkv_error_set(rv, "metrics: out of memory");
    }
    apr_allocator_owner_set(alloc, p);
    m = apr_pcalloc(p, sizeof(*m));
    m->pool = p;
    m->sup = sup;
    m->nodes = apr_hash_make(p);
    rv = apr_thread_mutex_create(&m->lock, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_cond_create(&m->cond, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&m->thread, NULL, sampler, m, p);
    }
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(p);
        return dkv_error_set(rv, "cannot start the metrics sampler");
    }
    *mp = m;
    return DKV_OK;
}

/* See manager.h. */
void
mgr_metrics_destroy(mgr_metrics_t *m)
{
    apr_status_t trv;

    if (m == NULL) {
        return;
    }
    apr_thread_mutex_lock(m->lock);
    apr_atomic_set32(&m->quit, 1);
    apr_thread_cond_broadcast(m->cond);
    apr_thread_mutex_unlock(m->lock);
    apr_thread_join(&trv, m->thread);
    apr_pool_destroy(m->pool);
}

static int
cmp_nodes(const void *a, const void *b)
{
    const mnode_t *x = *(const mnode_t *const *)a;
    const mnode_t *y = *(const mnode_t *const *)b;
    int c = strcmp(x->store, y->store);

    return c != 0 ? c : strcmp(x->instance, y->instance);
}

/* The nodes (LOCK held), sorted by store and instance, in POOL; only
 * those of STORE when not NULL and those sampled since SINCE. */
static apr_array_header_t *
sorted_nodes(mgr_metrics_t *m, const char *store, int64_t since,
             apr_pool_t *pool)
{
    apr_array_header_t *out = apr_array_make(pool, 8, sizeof(mnode_t *));
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, m->nodes); hi; hi = apr_hash_next(hi)) {
        void *val;
        mnode_t *n;

        apr_hash_this(hi, NULL, NULL, &val);
        n = val;
        if (n->count > 0 && n->last_ms >= since
            && (store == NULL || strcmp(store, n->store) == 0)) {
            *(mnode_t **)(void *)apr_array_push(out) = n;
        }
    }
    if (out->nelts > 1) {
        qsort(out->elts, (size_t)out->nelts, sizeof(mnode_t *), cmp_nodes);
    }
    return out;
}

/* The slot of the I-th oldest sample of N. */
static size_t
slot(const mnode_t *n, size_t i)
{
    return (n->head + RING - n->count + i) % RING;
}

static int
is_counter(const char *name)
{
    size_t len = strlen(name);

    return len > 6 && strcmp(name + len - 6, "_total") == 0;
}

/* See manager.h. */
json_t *
mgr_metrics_json(mgr_metrics_t *m, const char *store, int window_sec)
{
    json_t *arr = json_array();
    apr_pool_t *p;
    apr_array_header_t *nodes;
    int64_t now = now_ms(), from;
    int i;

    if (arr == NULL || apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return arr;
    }
    if (window_sec < 1) {
        window_sec = 1;
    }
    if (window_sec > RING) {
        window_sec = RING;
    }
    /* Half a period of slack, so a window of N s holds N + 1 samples. */
    from = now - 1000 * (int64_t)window_sec - PERIOD_MS / 2;
    apr_thread_mutex_lock(m->lock);
    nodes = sorted_nodes(m, store, 0, p);
    for (i = 0; i < nodes->nelts; i++) {
        const mnode_t *n = DKV_ARRAY_IDX(nodes, i, mnode_t *);
        const uint64_t *last = n->values + slot(n, n->count - 1) * n->nnames;
        json_t *o = json_object(), *totals = json_object();
        mgr_node_status_t status;
        size_t k, first = n->count;

        mgr_sup_status(&status, m->sup, n->store, n->instance);
        json_object_set_new(o, "store", json_string(n->store));
        json_object_set_new(o, "instance", json_string(n->instance));
        json_object_set_new(o, "nodeId", json_integer(n->node_id));
        json_object_set_new(o, "state",
                            json_string(mgr_state_name(status.state)));
        for (k = 0; k < n->nnames; k++) {
            json_object_set_new(totals, n->names[k],
                                json_integer((json_int_t)last[k]));
        }
        json_object_set_new(o, "totals", totals);
        for (k = 0; k < n->count; k++) {
            if (n->times[slot(n, k)] >= from) {
                first = k;
                break;
            }
        }
        if (first + 1 < n->count) {
            json_t *rates = json_object();
            double secs = (double)(n->times[slot(n, n->count - 1)]
                                   - n->times[slot(n, first)]) / 1000.0;
            size_t c;

            for (c = 0; c < n->nnames; c++) {
                uint64_t sum = 0;

                if (!is_counter(n->names[c])) {
                    continue;
                }
                for (k = first + 1; k < n->count; k++) {
                    uint64_t a = n->values[slot(n, k - 1) * n->nnames + c];
                    uint64_t b = n->values[slot(n, k) * n->nnames + c];

                    sum += b >= a ? b - a : b;      /* a restart resets */
                }
                json_object_set_new(rates, n->names[c],
                                    json_real(secs > 0 ? (double)sum / secs
                                                       : 0.0));
            }
            json_object_set_new(o, "rates", rates);
        }
        json_array_append_new(arr, o);
    }
    apr_thread_mutex_unlock(m->lock);
    apr_pool_destroy(p);
    return arr;
}

/* The help text of metric NAME. */
static const char *
help_of(const char *name)
{
    static const char *const known[][2] = {
        { "gets_total", "Keys read (single and bulk)." },
        { "puts_total", "Keys written (single and bulk)." },
        { "removes_total", "Keys deleted (single and bulk)." },
        { "requests_total", "Requests answered." },
        { "errors_total", "Requests answered with an error." },
        { "items", "Live keys." },
        { "connections", "Open client connections." },
        { "watches", "Live watches." },
        { "raft_term", "The node's Raft term." },
        { "raft_leader", "The leader's node id (0: none known)." },
        { "raft_commit_index", "The Raft commit index." },
        { "raft_applied_index", "The Raft applied index." },
        { "raft_proposals_total", "Entries proposed as leader." },
        { "fsyncs_total", "LMDB commits that synced." },
        { "fsync_us_total", "Microseconds spent in synced commits." },
        { "node_id", "The node's id in its group." },
        { "uptime_ms", "Milliseconds since the node started." }
    };
    size_t i;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(known[i][0], name) == 0) {
            return known[i][1];
        }
    }
    return "dkv-node metric.";
}

#define LINE(...) (*(const char **)(void *)apr_array_push(lines) \
                   = apr_psprintf(pool, __VA_ARGS__))

/* The indexes of N's latency bucket metrics (size_t), in POOL. */
static apr_array_header_t *
buckets(const mnode_t *n, apr_pool_t *pool)
{
    apr_array_header_t *b = apr_array_make(pool, 16, sizeof(size_t));
    size_t k;

    for (k = 0; k < n->nnames; k++) {
        if (strncmp(n->names[k], LAT_PREFIX, sizeof(LAT_PREFIX) - 1) == 0) {
            size_t *e = apr_array_push(b);

            *e = k;
        }
    }
    return b;
}

/* Bound in microseconds of latency metric NAME; -1 for "inf". */
static double
bound_of(const char *name)
{
    const char *b = name + sizeof(LAT_PREFIX) - 1;

    return strcmp(b, "inf") == 0 ? -1.0 : strtod(b, NULL);
}

/* US microseconds as seconds in decimal ("0.0001", "0.25", "1"). */
static const char *
seconds(double us, apr_pool_t *pool)
{
    apr_uint64_t u = (apr_uint64_t)us;
    char frac[8];
    int i;

    apr_snprintf(frac, sizeof(frac), "%06u", (unsigned)(u % 1000000));
    for (i = 5; i >= 0 && frac[i] == '0'; i--) {
        frac[i] = '\0';
    }
    return frac[0] != '\0'
           ? apr_psprintf(pool, "%" APR_UINT64_T_FMT ".%s", u / 1000000, frac)
           : apr_psprintf(pool, "%" APR_UINT64_T_FMT, u / 1000000);
}

static int
cmp_bounds(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    if (x < 0) {
        x = 1e300;
    }
    if (y < 0) {
        y = 1e300;
    }
    return x < y ? -1 : x > y;
}

/* See manager.h: each element of LINES is one line (const char *, in
 * POOL, without its newline). */
void
mgr_metrics_prometheus(mgr_metrics_t *m, apr_array_header_t *lines,
                       apr_pool_t *pool)
{
    apr_array_header_t *nodes, *families;
    apr_hash_t *seen = apr_hash_make(pool);
    int i, j, hist = 0;

    apr_thread_mutex_lock(m->lock);
    nodes = sorted_nodes(m, NULL, now_ms() - PROM_FRESH_MS, pool);
    families = apr_array_make(pool, 32, sizeof(const char *));
    for (i = 0; i < nodes->nelts; i++) {
        const mnode_t *n = DKV_ARRAY_IDX(nodes, i, mnode_t *);
        size_t k;

        for (k = 0; k < n->nnames; k++) {
            const char *name = n->names[k];

            if (strncmp(name, LAT_PREFIX, sizeof(LAT_PREFIX) - 1) == 0
                || strcmp(name, "request_latency_us_sum") == 0) {
                hist = 1;
                continue;
            }
            if (apr_hash_get(seen, name, APR_HASH_KEY_STRING) == NULL) {
                name = apr_pstrdup(pool, name);
                apr_hash_set(seen, name, APR_HASH_KEY_STRING, name);
                *(const char **)(void *)apr_array_push(families) = name;
            }
        }
    }
    for (j = 0; j < families->nelts; j++) {
        const char *name = DKV_ARRAY_IDX(families, j, const char *);

        LINE("# HELP dkv_node_%s %s", name, help_of(name));
        LINE("# TYPE dkv_node_%s %s", name,
             is_counter(name) ? "counter" : "gauge");
        for (i = 0; i < nodes->nelts; i++) {
            const mnode_t *n = DKV_ARRAY_IDX(nodes, i, mnode_t *);
            const uint64_t *last = n->values
                                   + slot(n, n->count - 1) * n->nnames;
            size_t k;

            for (k = 0; k < n->nnames; k++) {
                if (strcmp(n->names[k], name) == 0) {
                    LINE("dkv_node_%s{store=\"%s\",instance=\"%s\"} " U64,
                         name, n->store, n->instance,
                         (apr_uint64_t)last[k]);
                    break;
                }
            }
        }
    }
    if (hist) {
        LINE("# HELP dkv_node_request_latency_seconds Time to answer "
             "requests.");
        LINE("# TYPE dkv_node_request_latency_seconds histogram");
    }
    for (i = 0; hist && i < nodes->nelts; i++) {
        const mnode_t *n = DKV_ARRAY_IDX(nodes, i, mnode_t *);
        const uint64_t *last = n->values + slot(n, n->count - 1) * n->nnames;
        apr_array_header_t *b = buckets(n, pool);
        double *bounds;
        size_t *idx, k, x;
        uint64_t count = 0, sum_us = 0;
        int have_inf = 0;
        const char *labels = apr_psprintf(pool, "store=\"%s\",instance="
                                          "\"%s\"", n->store, n->instance);

        if (b->nelts == 0) {
            continue;
        }
        /* Sort the bounds, carrying their name indexes along. */
        bounds = apr_palloc(pool, (size_t)b->nelts * 2 * sizeof(double));
        idx = (size_t *)(void *)b->elts;
        for (k = 0; k < (size_t)b->nelts; k++) {
            bounds[2 * k] = bound_of(n->names[idx[k]]);
            bounds[2 * k + 1] = (double)idx[k];
        }
        qsort(bounds, (size_t)b->nelts, 2 * sizeof(double), cmp_bounds);
        for (k = 0; k < (size_t)b->nelts; k++) {
            x = (size_t)bounds[2 * k + 1];
            if (bounds[2 * k] < 0) {
                have_inf = 1;
                count = last[x];
                LINE("dkv_node_request_latency_seconds_bucket{%s,le="
                     "\"+Inf\"} " U64, labels, (apr_uint64_t)last[x]);
            }
            else {
                LINE("dkv_node_request_latency_seconds_bucket{%s,le="
                     "\"%s\"} " U64, labels, seconds(bounds[2 * k], pool),
                     (apr_uint64_t)last[x]);
            }
        }
        for (k = 0; k < n->nnames; k++) {
            if (strcmp(n->names[k], "request_latency_us_sum") == 0) {
                sum_us = last[k];
            }
        }
        if (!have_inf) {
            LINE("dkv_node_request_latency_seconds_bucket{%s,le=\"+Inf\"} "
                 U64, labels, (apr_uint64_t)count);
        }
        LINE("dkv_node_request_latency_seconds_sum{%s} %.6f", labels,
             (double)sum_us / 1e6);
        LINE("dkv_node_request_latency_seconds_count{%s} " U64, labels,
             (apr_uint64_t)count);
    }
    apr_thread_mutex_unlock(m->lock);
}
