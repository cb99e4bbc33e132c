/*
 * inproc.c -- the in-process backend ("inproc:PATH"): the store engine
 * embedded in the application, plus the two threads the engine does not
 * have: an expiry timer and a watch dispatcher.
 *
 * Writes.  Every public write is one engine write context and one commit
 * (a bulk or batch call is one context for all its keys).  A client write
 * mutex is held from write_begin through commit to the hand-off of the
 * commit's events to the dispatcher, so batches reach the dispatcher in
 * revision order.  Reads use engine read contexts and take no lock.
 * `now` comes from dkv_open_opts_t.clock, or the system clock.
 *
 * Expiry.  The timer thread wakes every expire_interval_ms (a condition
 * wait, so close stops it at once), asks the engine for its next expiry
 * time (a cheap read) and, when something is due, expires it in chunks of
 * EXPIRE_CHUNK per commit under the write mutex.
 *
 * Watches.  The dispatcher thread owns a FIFO of event batches copied out
 * of the engine's pool (no copy at all when no watch is registered; only
 * the events some watch wants otherwise) and delivers each event to the
 * matching watches, one callback at a time, in revision order.  A watch
 * that starts with a snapshot or a replay reads it, under the dispatcher
 * mutex, from one snapshot at revision R; that backlog is queued as a
 * batch for that watch alone, and the watch only takes live events from
 * R+1 on.  Live batches queued before it (revisions <= R) are thus
 * skipped for it and later ones delivered after its backlog: nothing is
 * missed or repeated.  Stopped watches are freed by the dispatcher
 * between batches, so a callback may stop its own watch.
 *
 * Close.  dkv_close stops the timer, then the dispatcher (events still
 * queued are dropped: no callback runs after close), closes the engine
 * and frees the watches the application did not stop.
 */
#include <string.h>

#include <apr_portable.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "common/alloc.h"
#include "common/status.h"
#include "engine/engine.h"
#include "client/client.h"
#include "client/exec.h"

/* Most items expired per commit by the timer. */
#define EXPIRE_CHUNK 1000
/* Default timer period, in ms. */
#define DEFAULT_EXPIRE_INTERVAL 50

typedef struct inproc inproc_t;

/* A batch of events in one allocation: this header, the events, then
 * their keys and values. */
typedef struct ip_batch {
    struct ip_batch *next;
    uint64_t target;           /* 0: live batch; else a backlog for the
                                * watch with this id only */
    size_t count;
    dkv_event_t *events;
} ip_batch_t;

typedef struct ip_watch {
    struct dkv_watch pub;      /* first: what the application holds */
    struct ip_watch *next;
    inproc_t *ip;
    uint64_t id;               /* unique per client, never reused */
    dkv_watch_cb_t *callback;
    void *baton;
    int prefix;
    size_t key_len;
    unsigned char *key;        /* follows the struct */
    uint64_t min_rev;          /* live events below are not for it */
    int running;               /* its callback runs now */
    int stopped;               /* dkv_watch_stop was called */
    int waiters;               /* stoppers waiting for the callback */
    int lost;                  /* events from lost_rev on could not be
                                * queued: it ends with DKV_EVENT_ERROR */
    uint64_t lost_rev;
    dkv_status_t lost_status;
    int ended;                 /* the error event was delivered */
} ip_watch_t;

struct inproc {
    dkv_client_t *client;
    apr_pool_t *pool;
    apr_pool_t *engine_pool;
    dkv_engine_t *engine;
    int64_t (*clock)(void *baton);
    void *clock_baton;
    apr_interval_time_t interval;      /* timer period, in us */
    volatile int closing;

    /* Writes. */
    apr_thread_mutex_t *wlock;
    apr_pool_t *wpool;                 /* a write context's scratch */

    /* Expiry timer. */
    apr_thread_mutex_t *tlock;
    apr_thread_cond_t *tcond;
    volatile int tstop;
    apr_thread_t *timer;

    /* Watch dispatcher (everything below under dlock). */
    apr_thread_mutex_t *dlock;
    apr_thread_cond_t *dcond;          /* work queued, or stop */
    apr_thread_cond_t *idle;           /* a callback returned */
    ip_batch_t *head, *tail;
    ip_watch_t *watches;
    size_t nwatches;                   /* registered, not stopped */
    uint64_t next_id;
    int dstop;
    int disp_started;
    apr_os_thread_t disp_id;
    apr_thread_t *disp;
};

static int64_t
ip_now(const inproc_t *ip)
{
    if (ip->clock != NULL) {
        return ip->clock(ip->clock_baton);
    }
    return (int64_t)(apr_time_now() / 1000);
}

static dkv_status_t
closed_status(void)
{
    return dkv_error_set(DKV_ECLOSED, "the client is closing");
}

/* ========================================================= event batches */

#define ALIGN_UP(n) (((n) + 15) & ~(size_t)15)

static int
watch_matches(const ip_watch_t *w, const dkv_event_t *ev)
{
    return dkv_exec_watch_matches(w->key, w->key_len, w->prefix, ev);
}

/* Copies the events of EVS selected by KEEP (NULL: all; N of them, NKEEP
 * kept) into one heap allocation.  NULL when out of memory. */
static ip_batch_t *
pack_batch(const dkv_event_t *evs, size_t n, const unsigned char *keep,
           size_t nkeep, uint64_t target)
{
    size_t i, j, size, head;
    ip_batch_t *b;
    char *data;

    head = ALIGN_UP(sizeof(ip_batch_t)) + nkeep * sizeof(dkv_event_t);
    size = head;
    for (i = 0; i < n; i++) {
        if (keep == NULL || keep[i]) {
            size += evs[i].key_len + 1 + (evs[i].value ? evs[i].value_len + 1
                                                       : 0);
        }
    }
    b = dkv_malloc(size);
    if (b == NULL) {
        return NULL;
    }
    b->next = NULL;
    b->target = target;
    b->count = nkeep;
    b->events = (dkv_event_t *)(void *)((char *)b
                                + ALIGN_UP(sizeof(ip_batch_t)));
    data = (char *)b + head;
    for (i = 0, j = 0; i < n; i++) {
        dkv_event_t *e;

        if (keep != NULL && !keep[i]) {
            continue;
        }
        e = &b->events[j++];
        *e = evs[i];
        if (evs[i].key_len > 0) {
            memcpy(data, evs[i].key, evs[i].key_len);
        }
        data[evs[i].key_len] = '\0';
        e->key = data;
        data += evs[i].key_len + 1;
        if (evs[i].value != NULL) {
            if (evs[i].value_len > 0) {
                memcpy(data, evs[i].value, evs[i].value_len);
            }
            data[evs[i].value_len] = '\0';
            e->value = data;
            data += evs[i].value_len + 1;
        }
    }
    return b;
}

/* Appends B to the queue; dlock held. */
static void
enqueue(inproc_t *ip, ip_batch_t *b)
{
    if (ip->tail != NULL) {
        ip->tail->next = b;
    }
    else {
        ip->head = b;
    }
    ip->tail = b;
    apr_thread_cond_signal(ip->dcond);
}

/* Hands a committed context's events to the dispatcher; wlock held. */
static void
hand_off(inproc_t *ip, const dkv_eng_write_t *w)
{
    const dkv_event_t *evs;
    unsigned char *keep;
    size_t n, i, nkeep = 0;
    ip_watch_t *wt;
    ip_batch_t *b;

    evs = dkv_engine_write_events(w, &n);
    if (n == 0 || evs == NULL) {
        return;
    }
    apr_thread_mutex_lock(ip->dlock);
    if (ip->nwatches == 0 || ip->dstop) {
        apr_thread_mutex_unlock(ip->dlock);
        return;
    }
    keep = apr_pcalloc(ip->wpool, n);
    for (i = 0; i < n; i++) {
        for (wt = ip->watches; wt != NULL; wt = wt->next) {
            if (!wt->stopped && !wt->ended && !wt->lost
                && evs[i].revision >= wt->min_rev
                && watch_matches(wt, &evs[i])) {
                keep[i] = 1;
                nkeep++;
                break;
            }
        }
    }
    if (nkeep > 0) {
        b = pack_batch(evs, n, keep, nkeep, 0);
        if (b != NULL) {
            enqueue(ip, b);
        }
        else {
            /* The watches that wanted these events cannot be told them:
             * end them, after what is already queued. */
            for (i = 0; i < n; i++) {
                for (wt = ip->watches; wt != NULL; wt = wt->next) {
                    if (keep[i] && !wt->stopped && !wt->lost
                        && evs[i].revision >= wt->min_rev
                        && watch_matches(wt, &evs[i])) {
                        wt->lost = 1;
                        wt->lost_rev = evs[i].revision;
                        wt->lost_status = APR_ENOMEM;
                    }
                }
            }
            apr_thread_cond_signal(ip->dcond);
        }
    }
    apr_thread_mutex_unlock(ip->dlock);
}

/* ============================================================ dispatcher */

/* Runs W's callback on EV with dlock released; dlock held on entry and
 * on return. */
static void
run_callback(inproc_t *ip, ip_watch_t *w, const dkv_event_t *ev)
{
    w->running = 1;
    apr_thread_mutex_unlock(ip->dlock);
    w->callback(w->baton, ev);
    apr_thread_mutex_lock(ip->dlock);
    w->running = 0;
    apr_thread_cond_broadcast(ip->idle);
}

/* Delivers batch B; dlock held. */
static void
deliver(inproc_t *ip, const ip_batch_t *b)
{
    size_t i;
    ip_watch_t *w;

    for (i = 0; i < b->count && !ip->dstop; i++) {
        const dkv_event_t *ev = &b->events[i];

        for (w = ip->watches; w != NULL && !ip->dstop; w = w->next) {
            if (w->stopped || w->ended) {
                continue;
            }
            if (b->target != 0) {
                if (w->id != b->target) {
                    continue;
                }
            }
            else if (ev->revision < w->min_rev || !watch_matches(w, ev)
                     || (w->lost && ev->revision >= w->lost_rev)) {
                continue;
            }
            run_callback(ip, w, ev);
        }
    }
}

/* Ends the watches whose events were lost, once what came before the
 * loss has been delivered (the queue is empty); dlock held. */
static void
end_lost(inproc_t *ip)
{
    ip_watch_t *w;

    for (w = ip->watches; w != NULL && !ip->dstop; w = w->next) {
        if (w->lost && !w->ended && !w->stopped) {
            dkv_event_t ev;

            memset(&ev, 0, sizeof(ev));
            ev.type = DKV_EVENT_ERROR;
            ev.key = w->key;
            ev.key_len = w->key_len;
            ev.revision = w->lost_rev;
            ev.status = w->lost_status;
            w->ended = 1;
            run_callback(ip, w, &ev);
        }
    }
}

/* Unlinks and frees the stopped watches; dlock held, no callback
 * running. */
static void
reap(inproc_t *ip)
{
    ip_watch_t **pw = &ip->watches, *w;

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
    inproc_t *ip = data;

    (void)thread;
    apr_thread_mutex_lock(ip->dlock);
    ip->disp_id = apr_os_thread_current();
    ip->disp_started = 1;
    for (;;) {
        ip_batch_t *b;

        reap(ip);
        if (ip->dstop) {
            break;
        }
        b = ip->head;
        if (b == NULL) {
            end_lost(ip);
            if (ip->head == NULL && !ip->dstop) {
                reap(ip);
                apr_thread_cond_wait(ip->dcond, ip->dlock);
            }
            continue;
        }
        ip->head = b->next;
        if (ip->head == NULL) {
            ip->tail = NULL;
        }
        deliver(ip, b);
        dkv_free(b);
    }
    apr_thread_mutex_unlock(ip->dlock);
    return NULL;
}

/* 1 when the caller is the dispatcher thread (inside a callback). */
static int
in_dispatcher(const inproc_t *ip)
{
    return ip->disp_started
           && apr_os_thread_equal(ip->disp_id, apr_os_thread_current());
}

/* ================================================================= timer */

/* Expires what is due, in chunks, unless closing. */
static void
expire_pass(inproc_t *ip)
{
    dkv_eng_read_t *r;
    dkv_eng_write_t *w;
    int64_t now, next;
    int more;
    dkv_status_t rv;

    now = ip_now(ip);
    if (dkv_engine_read_begin(&r, ip->engine, now) != DKV_OK) {
        return;
    }
    next = dkv_engine_next_expiry(r);
    dkv_engine_read_end(r);
    if (next == 0 || next > now) {
        return;
    }
    do {
        more = 0;
        apr_thread_mutex_lock(ip->wlock);
        if (ip->closing || ip->tstop) {
            apr_thread_mutex_unlock(ip->wlock);
            return;
        }
        rv = dkv_engine_write_begin(&w, ip->engine, ip_now(ip), ip->wpool);
        if (rv == DKV_OK) {
            rv = dkv_engine_expire_due(NULL, &more, w, EXPIRE_CHUNK);
            if (rv == DKV_OK) {
                rv = dkv_engine_write_commit(w, 0);
                if (rv == DKV_OK) {
                    hand_off(ip, w);
                }
            }
            else {
                dkv_engine_write_abort(w);
            }
        }
        apr_pool_clear(ip->wpool);
        apr_thread_mutex_unlock(ip->wlock);
    } while (rv == DKV_OK && more && !ip->tstop);
}

static void *APR_THREAD_FUNC
timer_main(apr_thread_t *thread, void *data)
{
    inproc_t *ip = data;

    (void)thread;
    apr_thread_mutex_lock(ip->tlock);
    while (!ip->tstop) {
        apr_thread_cond_timedwait(ip->tcond, ip->tlock, ip->interval);
        if (ip->tstop) {
            break;
        }
        apr_thread_mutex_unlock(ip->tlock);
        expire_pass(ip);
        /* The thread's last error is nobody's business. */
        dkv_error_clear();
        apr_thread_mutex_lock(ip->tlock);
    }
    apr_thread_mutex_unlock(ip->tlock);
    return NULL;
}

/* ========================================================= write helpers */

/* Takes the write mutex and begins a write context. */
static dkv_status_t
w_begin(inproc_t *ip, dkv_eng_write_t **w)
{
    dkv_status_t rv;

    apr_thread_mutex_lock(ip->wlock);
    if (ip->closing) {
        apr_thread_mutex_unlock(ip->wlock);
        return closed_status();
    }
    rv = dkv_engine_write_begin(w, ip->engine, ip_now(ip), ip->wpool);
    if (rv != DKV_OK) {
        apr_pool_clear(ip->wpool);
        apr_thread_mutex_unlock(ip->wlock);
    }
    return rv;
}

/* Ends the context begun by w_begin: commits it (and hands its events
 * to the dispatcher) when COMMIT, else aborts it; releases the write
 * mutex.  Returns the commit's status. */
static dkv_status_t
w_end(inproc_t *ip, dkv_eng_write_t *w, int commit)
{
    dkv_status_t rv = DKV_OK;

    if (commit) {
        rv = dkv_engine_write_commit(w, 0);
        if (rv == DKV_OK) {
            hand_off(ip, w);
        }
    }
    else {
        dkv_engine_write_abort(w);
    }
    apr_pool_clear(ip->wpool);
    apr_thread_mutex_unlock(ip->wlock);
    return rv;
}

/* The end of a one-operation write: commit on success, abort otherwise
 * (a failed operation leaves no trace to keep). */
static dkv_status_t
w_finish(inproc_t *ip, dkv_eng_write_t *w, dkv_status_t op_rv)
{
    dkv_status_t rv = w_end(ip, w, op_rv == DKV_OK);

    return op_rv != DKV_OK ? op_rv : rv;
}

static dkv_status_t
r_begin(inproc_t *ip, dkv_eng_read_t **r)
{
    if (ip->closing) {
        return closed_status();
    }
    return dkv_engine_read_begin(r, ip->engine, ip_now(ip));
}

/* ============================================================ operations */

static size_t
ip_max_value(void *state)
{
    inproc_t *ip = state;

    return dkv_engine_max_value(ip->engine);
}

static dkv_status_t
ip_revision(void *state, uint64_t *revision)
{
    inproc_t *ip = state;
    dkv_eng_read_t *r;
    dkv_status_t rv = r_begin(ip, &r);

    if (rv == DKV_OK) {
        *revision = dkv_engine_read_revision(r);
        dkv_engine_read_end(r);
    }
    return rv;
}

static dkv_status_t
ip_put(void *state, dkv_result_t *res, const void *key, size_t key_len,
       const void *value, size_t value_len, const dkv_put_opts_t *opts)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_put(res, w, key, key_len, value, value_len, opts);
    return w_finish(ip, w, rv);
}

static dkv_status_t
ip_get(void *state, dkv_item_t *item, const void *key, size_t key_len,
       const dkv_get_opts_t *opts, apr_pool_t *pool)
{
    inproc_t *ip = state;
    dkv_eng_read_t *r;
    dkv_status_t rv = r_begin(ip, &r);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_get(item, r, key, key_len, opts, pool);
    dkv_engine_read_end(r);
    return rv;
}

static dkv_status_t
ip_delete(void *state, dkv_result_t *res, const void *key, size_t key_len,
          const dkv_delete_opts_t *opts)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_delete(res, w, key, key_len, opts);
    return w_finish(ip, w, rv);
}

static dkv_status_t
ip_expire(void *state, dkv_result_t *res, const void *key, size_t key_len,
          int64_t ttl_ms, uint64_t lock)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_expire(res, w, key, key_len, ttl_ms, lock);
    return w_finish(ip, w, rv);
}

static dkv_status_t
ip_refresh(void *state, dkv_result_t *res, const void *key, size_t key_len,
           uint64_t lock)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_refresh(res, w, key, key_len, lock);
    return w_finish(ip, w, rv);
}

/* Ends a bulk write: commits unless an operation poisoned the context
 * (FATAL); returns the call's status. */
static dkv_status_t
bulk_end(inproc_t *ip, dkv_eng_write_t *w, dkv_result_t *results, size_t n,
         dkv_status_t fatal)
{
    dkv_status_t rv;

    if (fatal != DKV_OK) {
        w_end(ip, w, 0);
        rv = fatal;
    }
    else {
        rv = w_end(ip, w, 1);
    }
    if (rv != DKV_OK && results != NULL) {
        /* Nothing was applied: no result is valid. */
        memset(results, 0, n * sizeof(*results));
    }
    return rv;
}

static dkv_status_t
ip_put_many(void *state, dkv_result_t *results, const dkv_kv_t *kvs,
            size_t n, const dkv_put_opts_t *opts)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w), fatal;

    if (rv != DKV_OK) {
        return rv;
    }
    fatal = dkv_exec_put_many(results, w, kvs, n, opts,
                              dkv_engine_max_value(ip->engine));
    return bulk_end(ip, w, results, n, fatal);
}

static dkv_status_t
ip_get_many(void *state, dkv_item_t *items, const dkv_key_t *keys, size_t n,
            const dkv_get_opts_t *opts, apr_pool_t *pool)
{
    inproc_t *ip = state;
    dkv_eng_read_t *r;
    dkv_status_t rv = r_begin(ip, &r);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_exec_get_many(items, r, keys, n, opts, pool);
    dkv_engine_read_end(r);
    return rv;
}

static dkv_status_t
ip_delete_many(void *state, dkv_result_t *results, const dkv_key_t *keys,
               size_t n, const dkv_delete_opts_t *opts)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w), fatal;

    if (rv != DKV_OK) {
        return rv;
    }
    fatal = dkv_exec_delete_many(results, w, keys, n, opts);
    return bulk_end(ip, w, results, n, fatal);
}

static dkv_status_t
ip_batch(void *state, dkv_result_t *results, const dkv_op_t *ops, size_t n)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w), fatal;

    if (rv != DKV_OK) {
        return rv;
    }
    fatal = dkv_exec_batch(results, w, ops, n,
                           dkv_engine_max_value(ip->engine));
    return bulk_end(ip, w, results, n, fatal);
}

static dkv_status_t
ip_clear(void *state, uint64_t *deleted, const dkv_range_t *range)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    uint64_t count = 0;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_clear(&count, w, range);
    rv = w_finish(ip, w, rv);
    if (deleted != NULL) {
        *deleted = rv == DKV_OK ? count : 0;
    }
    return rv;
}

static dkv_status_t
ip_scan(void *state, dkv_page_t **page, const dkv_range_t *range,
        const dkv_scan_opts_t *opts, apr_pool_t *pool)
{
    inproc_t *ip = state;
    dkv_eng_read_t *r;
    dkv_status_t rv = r_begin(ip, &r);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_scan(page, r, range, opts, pool);
    dkv_engine_read_end(r);
    return rv;
}

static dkv_status_t
ip_count(void *state, uint64_t *count, const dkv_range_t *range)
{
    inproc_t *ip = state;
    dkv_eng_read_t *r;
    dkv_status_t rv = r_begin(ip, &r);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_count(count, r, range);
    dkv_engine_read_end(r);
    return rv;
}

static dkv_status_t
ip_counter_add(void *state, int64_t *previous, int64_t *current,
               const void *key, size_t key_len, int64_t delta,
               const dkv_counter_opts_t *opts)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_counter_add(previous, current, w, key, key_len, delta,
                                opts);
    return w_finish(ip, w, rv);
}

static dkv_status_t
ip_counter_get(void *state, int64_t *value, const void *key, size_t key_len)
{
    inproc_t *ip = state;
    dkv_eng_read_t *r;
    dkv_status_t rv = r_begin(ip, &r);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_counter_get(value, r, key, key_len);
    dkv_engine_read_end(r);
    return rv;
}

static dkv_status_t
ip_counter_set(void *state, const void *key, size_t key_len, int64_t value,
               const dkv_counter_opts_t *opts)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_counter_set(w, key, key_len, value, opts);
    return w_finish(ip, w, rv);
}

static dkv_status_t
ip_lease_grant(void *state, uint64_t *lease, int64_t ttl_ms)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_lease_grant(lease, w, ttl_ms);
    rv = w_finish(ip, w, rv);
    if (rv != DKV_OK) {
        *lease = 0;
    }
    return rv;
}

static dkv_status_t
ip_lease_keepalive(void *state, int64_t *remaining_ms, uint64_t lease)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_lease_keepalive(remaining_ms, w, lease);
    return w_finish(ip, w, rv);
}

static dkv_status_t
ip_lease_revoke(void *state, uint64_t *keys_deleted, uint64_t lease)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_lease_revoke(keys_deleted, w, lease);
    return w_finish(ip, w, rv);
}

static dkv_status_t
ip_lease_info(void *state, dkv_lease_info_t *info, uint64_t lease)
{
    inproc_t *ip = state;
    dkv_eng_read_t *r;
    dkv_status_t rv = r_begin(ip, &r);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_lease_info(info, r, lease);
    dkv_engine_read_end(r);
    return rv;
}

static dkv_status_t
ip_lock_acquire(void *state, dkv_lock_t *lock, const void *key,
                size_t key_len, uint64_t lease)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_lock_acquire(lock, w, key, key_len, lease);
    /* DKV_ELOCKED fills LOCK (the holder) and changes nothing. */
    return w_finish(ip, w, rv);
}

static dkv_status_t
ip_lock_release(void *state, const void *key, size_t key_len,
                uint64_t token)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_lock_release(w, key, key_len, token);
    return w_finish(ip, w, rv);
}

static dkv_status_t
ip_txn_commit(void *state, uint64_t *revision,
              const dkv_txn_compare_t *compares, size_t ncompares,
              const dkv_op_t *ops, size_t nops)
{
    inproc_t *ip = state;
    dkv_eng_write_t *w;
    dkv_eng_compare_t *cmp;
    size_t i;
    dkv_status_t rv = w_begin(ip, &w);

    if (rv != DKV_OK) {
        return rv;
    }
    cmp = apr_palloc(ip->wpool, (ncompares + 1) * sizeof(*cmp));
    for (i = 0; i < ncompares; i++) {
        cmp[i].key = compares[i].key;
        cmp[i].key_len = compares[i].key_len;
        cmp[i].mod_revision = compares[i].mod_revision;
    }
    rv = dkv_engine_txn(w, cmp, ncompares, ops, nops);
    if (rv != DKV_OK) {
        w_end(ip, w, 0);
        return rv;
    }
    rv = dkv_engine_write_commit(w, 0);
    if (rv == DKV_OK) {
        if (revision != NULL) {
            *revision = dkv_engine_write_revision(w);
        }
        hand_off(ip, w);
    }
    apr_pool_clear(ip->wpool);
    apr_thread_mutex_unlock(ip->wlock);
    return rv;
}

static dkv_status_t
ip_search(void *state, dkv_page_t **page, const dkv_query_t *query,
          const dkv_search_opts_t *opts, apr_pool_t *pool)
{
    inproc_t *ip = state;
    dkv_eng_read_t *r;
    dkv_status_t rv = r_begin(ip, &r);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_search(page, r, query, opts, pool);
    dkv_engine_read_end(r);
    return rv;
}

/* =============================================================== watches */

/* A backlog being collected: events with copies in POOL. */
typedef struct backlog {
    apr_array_header_t *events;        /* dkv_event_t */
    apr_pool_t *pool;
} backlog_t;

static void
backlog_add(backlog_t *bl, const dkv_event_t *ev)
{
    dkv_event_t *e = &APR_ARRAY_PUSH(bl->events, dkv_event_t);

    *e = *ev;
    e->key = apr_pmemdup(bl->pool, ev->key, ev->key_len ? ev->key_len : 1);
    if (ev->value != NULL) {
        e->value = apr_pmemdup(bl->pool, ev->value,
                               ev->value_len ? ev->value_len : 1);
    }
}

static dkv_status_t
history_event(void *baton, const dkv_event_t *event)
{
    backlog_add(baton, event);
    return DKV_OK;
}

/* Reads W's snapshot (or replay from START) in R into BL. */
static dkv_status_t
read_backlog(backlog_t *bl, dkv_eng_read_t *r, const ip_watch_t *w,
             int snapshot, uint64_t start)
{
    return dkv_exec_watch_backlog(r, w->key, w->key_len, w->prefix,
                                  snapshot, start, history_event, bl,
                                  bl->pool);
}

static dkv_status_t
ip_watch_start(void *state, dkv_watch_t **watch, const void *key,
               size_t key_len, const dkv_watch_opts_t *opts,
               dkv_watch_cb_t *callback, void *baton)
{
    inproc_t *ip = state;
    ip_watch_t *w;
    dkv_eng_read_t *r;
    backlog_t bl;
    ip_batch_t *b = NULL;
    uint64_t rev;
    int need_backlog = opts->include_snapshot || opts->start_revision;
    dkv_status_t rv;

    w = dkv_calloc(1, sizeof(*w) + key_len + 1);
    if (w == NULL) {
        return dkv_error_set(APR_ENOMEM, "dkv_watch_start: out of memory");
    }
    w->pub.client = ip->client;
    w->ip = ip;
    w->callback = callback;
    w->baton = baton;
    w->prefix = opts->prefix;
    w->key = (unsigned char *)(w + 1);
    w->key_len = key_len;
    if (key_len > 0) {
        memcpy(w->key, key, key_len);
    }

    memset(&bl, 0, sizeof(bl));
    if (need_backlog) {
        rv = apr_pool_create(&bl.pool, ip->pool);
        if (rv != APR_SUCCESS) {
            dkv_free(w);
            return rv;
        }
        bl.events = apr_array_make(bl.pool, 16, sizeof(dkv_event_t));
    }

    apr_thread_mutex_lock(ip->dlock);
    if (ip->closing || ip->dstop) {
        rv = closed_status();
        goto fail;
    }
    rv = r_begin(ip, &r);
    if (rv != DKV_OK) {
        goto fail;
    }
    rev = dkv_engine_read_revision(r);
    if (need_backlog) {
        rv = read_backlog(&bl, r, w, opts->include_snapshot,
                          opts->start_revision);
    }
    dkv_engine_read_end(r);
    if (rv != DKV_OK) {
        goto fail;
    }
    w->id = ++ip->next_id;
    if (need_backlog && bl.events->nelts > 0) {
        b = pack_batch((const dkv_event_t *)(void *)bl.events->elts,
                       (size_t)bl.events->nelts, NULL,
                       (size_t)bl.events->nelts, w->id);
        if (b == NULL) {
            rv = dkv_error_set(APR_ENOMEM, "dkv_watch_start: out of memory");
            goto fail;
        }
        enqueue(ip, b);
    }
    w->min_rev = rev + 1;
    if (opts->start_revision > w->min_rev) {
        w->min_rev = opts->start_revision;
    }
    /* Append: watches are served in the order they were started. */
    {
        ip_watch_t **pw = &ip->watches;

        while (*pw != NULL) {
            pw = &(*pw)->next;
        }
        *pw = w;
    }
    ip->nwatches++;
    apr_thread_mutex_unlock(ip->dlock);
    if (bl.pool != NULL) {
        apr_pool_destroy(bl.pool);
    }
    *watch = &w->pub;
    return DKV_OK;

fail:
    apr_thread_mutex_unlock(ip->dlock);
    if (bl.pool != NULL) {
        apr_pool_destroy(bl.pool);
    }
    dkv_free(w);
    return rv;
}

static void
ip_watch_stop(void *state, dkv_watch_t *watch)
{
    inproc_t *ip = state;
    ip_watch_t *w = (ip_watch_t *)watch;

    apr_thread_mutex_lock(ip->dlock);
    if (!w->stopped) {
        w->stopped = 1;
        ip->nwatches--;
    }
    if (!in_dispatcher(ip)) {
        /* Keeps the dispatcher from freeing W while we wait. */
        w->waiters++;
        while (w->running) {
            apr_thread_cond_wait(ip->idle, ip->dlock);
        }
        w->waiters--;
    }
    /* The dispatcher frees it between batches. */
    apr_thread_cond_signal(ip->dcond);
    apr_thread_mutex_unlock(ip->dlock);
}

/* ====================================================== open and close */

/* Both threads end by returning from their functions, not through
 * apr_thread_exit (which would be pthread_exit on Unix, and upsets
 * AddressSanitizer there).  apr_thread_join still waits for them and
 * releases them on every platform; on Windows it then reports
 * APR_INCOMPLETE (no exit status was set), which is not a failure, so
 * the status is ignored.  The APR thread objects live in ip->pool,
 * destroyed below. */
static void
ip_close(void *state)
{
    inproc_t *ip = state;
    apr_status_t ignored;
    ip_batch_t *b;
    ip_watch_t *w;

    ip->closing = 1;
    if (ip->timer != NULL) {
        apr_thread_mutex_lock(ip->tlock);
        ip->tstop = 1;
        apr_thread_cond_signal(ip->tcond);
        apr_thread_mutex_unlock(ip->tlock);
        apr_thread_join(&ignored, ip->timer);
        ip->timer = NULL;
    }
    if (ip->disp != NULL) {
        apr_thread_mutex_lock(ip->dlock);
        ip->dstop = 1;
        apr_thread_cond_broadcast(ip->dcond);
        apr_thread_mutex_unlock(ip->dlock);
        apr_thread_join(&ignored, ip->disp);
        ip->disp = NULL;
    }
    /* No writer is left in flight (close is not concurrent with other
     * calls); take the mutex to be sure before the engine goes. */
    apr_thread_mutex_lock(ip->wlock);
    apr_thread_mutex_unlock(ip->wlock);

    while ((b = ip->head) != NULL) {
        ip->head = b->next;
        dkv_free(b);
    }
    ip->tail = NULL;
    while ((w = ip->watches) != NULL) {
        ip->watches = w->next;
        dkv_free(w);
    }
    /* Destroying the engine's pool closes the engine. */
    apr_pool_destroy(ip->engine_pool);
    ip->engine = NULL;
    apr_pool_destroy(ip->pool);
}

/* See client.h. */
dkv_status_t
dkv_inproc_open(void **state, dkv_client_t *client, const char *dir,
                const dkv_open_opts_t *opts, apr_pool_t *pool)
{
    dkv_engine_opts_t eo;
    inproc_t *ip;
    apr_pool_t *p;
    dkv_status_t rv;

    rv = apr_pool_create(&p, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    ip = apr_pcalloc(p, sizeof(*ip));
    ip->client = client;
    ip->pool = p;
    ip->clock = opts->clock;
    ip->clock_baton = opts->clock_baton;
    ip->interval = apr_time_from_msec(opts->expire_interval_ms
                                      ? opts->expire_interval_ms
                                      : DEFAULT_EXPIRE_INTERVAL);

    memset(&eo, 0, sizeof(eo));
    eo.max_value = opts->max_value;
    eo.map_size = opts->map_size;
    eo.history_retain = opts->history_retain;
    eo.no_sync = opts->no_sync;
    rv = apr_pool_create(&ip->engine_pool, p);
    if (rv == APR_SUCCESS) {
        rv = dkv_engine_open(&ip->engine, dir, &eo, ip->engine_pool);
    }
    if (rv != DKV_OK) {
        apr_pool_destroy(p);
        return rv;
    }

    if ((rv = apr_pool_create(&ip->wpool, p)) != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&ip->wlock,
                                         APR_THREAD_MUTEX_DEFAULT, p))
           != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&ip->tlock,
                                         APR_THREAD_MUTEX_DEFAULT, p))
           != APR_SUCCESS
        || (rv = apr_thread_mutex_create(&ip->dlock,
                                         APR_THREAD_MUTEX_DEFAULT, p))
           != APR_SUCCESS
        || (rv = apr_thread_cond_create(&ip->tcond, p)) != APR_SUCCESS
        || (rv = apr_thread_cond_create(&ip->dcond, p)) != APR_SUCCESS
        || (rv = apr_thread_cond_create(&ip->idle, p)) != APR_SUCCESS) {
        apr_pool_destroy(p);
        return dkv_error_set(rv, "dkv_open: cannot create the store's"
                             " locks: %s", dkv_strerror(rv));
    }
    rv = apr_thread_create(&ip->disp, NULL, dispatcher_main, ip, p);
    if (rv != APR_SUCCESS) {
        ip->disp = NULL;
    }
    else {
        rv = apr_thread_create(&ip->timer, NULL, timer_main, ip, p);
        if (rv != APR_SUCCESS) {
            ip->timer = NULL;
        }
    }
    if (rv != APR_SUCCESS) {
        dkv_error_set(rv, "dkv_open: cannot start the store's threads: %s",
                      dkv_strerror(rv));
        ip_close(ip);
        return rv;
    }
    *state = ip;
    return DKV_OK;
}

/* See client.h. */
const dkv_backend_ops_t dkv_inproc_ops = {
    "inproc",
    ip_close,
    ip_max_value,
    ip_revision,
    ip_put,
    ip_get,
    ip_delete,
    ip_expire,
    ip_refresh,
    ip_put_many,
    ip_get_many,
    ip_delete_many,
    ip_batch,
    ip_clear,
    ip_scan,
    ip_count,
    ip_counter_add,
    ip_counter_get,
    ip_counter_set,
    ip_lease_grant,
    ip_lease_keepalive,
    ip_lease_revoke,
    ip_lease_info,
    ip_lock_acquire,
    ip_lock_release,
    ip_watch_start,
    ip_watch_stop,
    ip_txn_commit,
    ip_search
};
