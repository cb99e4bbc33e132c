/*
 * watch.c -- dkv-node's watch hub (see watch.h): a list of the live
 * watches, matched against each commit's events on the writer thread.
 *
 * Delivery walks the watches once per commit and gathers each watch's
 * events into one array, encoded as few EVENT frames as the frame bounds
 * allow.  A watch's events are only sent from the writer thread, after its
 * WATCH response and backlog, so they leave in revision order; a watch
 * that is cancelled, closed or dropped is unlinked at once, so nothing
 * follows its end.  The list is linear in the number of watches, which is
 * fine for the hundreds a node serves; an index by exact key is the next
 * step if thousands of watches on distinct keys become common.
 */
#include <string.h>

#include "common/alloc.h"
#include "common/proto.h"
#include "client/exec.h"
#include "node/watch.h"

typedef struct hub_watch {
    struct hub_watch *next;
    uint64_t conn;
    uint64_t id;
    uint64_t min_rev;          /* live events below are not for it */
    int prefix;
    size_t key_len;
    unsigned char *key;        /* follows the struct */
} hub_watch_t;

struct dkv_hub {
    dkv_service_send_fn *send;
    void *baton;
    hub_watch_t *watches;
    hub_watch_t **tail;        /* where the next watch is linked */
    size_t count;
    uint64_t dropped;
};

static apr_status_t
hub_cleanup(void *data)
{
    dkv_hub_destroy(data);
    return APR_SUCCESS;
}

/* See watch.h. */
dkv_status_t
dkv_hub_create(dkv_hub_t **hub, dkv_service_send_fn *send, void *baton,
               apr_pool_t *pool)
{
    dkv_hub_t *h = apr_pcalloc(pool, sizeof(*h));

    h->send = send;
    h->baton = baton;
    h->tail = &h->watches;
    apr_pool_cleanup_register(pool, h, hub_cleanup, apr_pool_cleanup_null);
    *hub = h;
    return DKV_OK;
}

/* See watch.h. */
void
dkv_hub_destroy(dkv_hub_t *hub)
{
    hub_watch_t *w;

    if (hub == NULL) {
        return;
    }
    while ((w = hub->watches) != NULL) {
        hub->watches = w->next;
        dkv_free(w);
    }
    hub->tail = &hub->watches;
    hub->count = 0;
}

static hub_watch_t **
find(dkv_hub_t *hub, uint64_t conn, uint64_t id)
{
    hub_watch_t **pw;

    for (pw = &hub->watches; *pw != NULL; pw = &(*pw)->next) {
        if ((*pw)->conn == conn && (*pw)->id == id) {
            return pw;
        }
    }
    return NULL;
}

/* Unlinks and frees *PW. */
static void
unlink_watch(dkv_hub_t *hub, hub_watch_t **pw)
{
    hub_watch_t *w = *pw;

    *pw = w->next;
    if (hub->tail == &w->next) {
        hub->tail = pw;
    }
    hub->count--;
    dkv_free(w);
}

/* See watch.h. */
int
dkv_hub_has(const dkv_hub_t *hub, uint64_t conn, uint64_t id)
{
    const hub_watch_t *w;

    for (w = hub->watches; w != NULL; w = w->next) {
        if (w->conn == conn && w->id == id) {
            return 1;
        }
    }
    return 0;
}

/* See watch.h. */
dkv_status_t
dkv_hub_add(dkv_hub_t *hub, uint64_t conn, uint64_t id, const void *key,
            size_t key_len, int prefix, uint64_t min_rev)
{
    hub_watch_t *w = dkv_malloc(sizeof(*w) + key_len + 1);

    if (w == NULL) {
        return APR_ENOMEM;
    }
    w->next = NULL;
    w->conn = conn;
    w->id = id;
    w->min_rev = min_rev;
    w->prefix = prefix;
    w->key_len = key_len;
    w->key = (unsigned char *)(w + 1);
    if (key_len > 0) {
        memcpy(w->key, key, key_len);
    }
    w->key[key_len] = '\0';
    /* Appended: watches are served in the order they were started. */
    *hub->tail = w;
    hub->tail = &w->next;
    hub->count++;
    return DKV_OK;
}

/* Sends the error event that ends watch ID of CONN. */
static void
send_end(dkv_hub_t *hub, uint64_t conn, uint64_t id, dkv_status_t status,
         uint64_t revision)
{
    dkv_event_t ev;
    dkv_wbuf_t out;

    memset(&ev, 0, sizeof(ev));
    ev.type = DKV_EVENT_ERROR;
    ev.key = "";
    ev.revision = revision;
    ev.status = status;
    dkv_wbuf_init(&out, 0);
    if (dkv_proto_events_encode(&out, id, &ev, 1) == DKV_OK) {
        hub->send(hub->baton, conn, DKV_SERVICE_RESPONSE, id, &out);
    }
    else {
        dkv_wbuf_free(&out);
    }
}

/* See watch.h. */
void
dkv_hub_end(dkv_hub_t *hub, uint64_t conn, uint64_t id, dkv_status_t status,
            uint64_t revision)
{
    hub_watch_t **pw = find(hub, conn, id);

    if (pw != NULL) {
        unlink_watch(hub, pw);
    }
    send_end(hub, conn, id, status, revision);
}

/* See watch.h. */
int
dkv_hub_send(dkv_hub_t *hub, uint64_t conn, uint64_t id,
             const dkv_event_t *evs, size_t n, unsigned last_flags)
{
    size_t i = 0;

    while (i < n || (i == 0 && last_flags != 0)) {
        size_t j = i, bytes = 0;
        uint64_t rev = 0;
        dkv_wbuf_t out;

        /* One frame: up to DKV_HUB_FRAME_EVENTS events or about
         * DKV_HUB_FRAME_BYTES bytes (at least one event, unless there
         * are none: a frame with LAST_FLAGS only). */
        while (j < n && (j == i || (j - i < DKV_HUB_FRAME_EVENTS
                                    && bytes < DKV_HUB_FRAME_BYTES))) {
            bytes += 32 + evs[j].key_len
                     + (evs[j].value != NULL ? evs[j].value_len : 0);
            j++;
        }
        if (i < n) {
            rev = evs[i].revision;
        }
        dkv_wbuf_init(&out, 0);
        if (dkv_proto_events_encode_flags(&out, id, j == n ? last_flags
                                                           : 0,
                                          evs + i, j - i) != DKV_OK) {
            dkv_wbuf_free(&out);
            hub->dropped++;
            dkv_hub_end(hub, conn, id, DKV_EUNAVAILABLE, rev);
            return 1;
        }
        if (hub->send(hub->baton, conn, DKV_SERVICE_EVENTS, id, &out)) {
            /* Refused: the connection is over its output bound.  The
             * client resumes from the last revision it received (or, in
             * the snapshot, ends the watch). */
            hub->dropped++;
            dkv_hub_end(hub, conn, id, DKV_EUNAVAILABLE, rev);
            return 1;
        }
        i = j;
        if (j == n) {
            break;
        }
    }
    return 0;
}

/* See watch.h. */
void
dkv_hub_deliver(dkv_hub_t *hub, const dkv_event_t *evs, size_t n,
                apr_pool_t *scratch)
{
    hub_watch_t **pw;
    dkv_event_t *mine = NULL;

    if (hub->count == 0 || n == 0) {
        return;
    }
    pw = &hub->watches;
    while (*pw != NULL) {
        hub_watch_t *w = *pw;
        size_t i, k = 0;
        int dropped = 0;

        for (i = 0; i < n; i++) {
            if (evs[i].revision >= w->min_rev
                && dkv_exec_watch_matches(w->key, w->key_len, w->prefix,
                                          &evs[i])) {
                if (mine == NULL) {
                    mine = apr_palloc(scratch, n * sizeof(*mine));
                }
                mine[k++] = evs[i];
            }
        }
        if (k > 0) {
            /* dkv_hub_send unlinks W itself when it drops it. */
            dropped = dkv_hub_send(hub, w->conn, w->id, mine, k, 0);
        }
        if (!dropped) {
            pw = &w->next;
        }
    }
}

/* See watch.h. */
int
dkv_hub_cancel(dkv_hub_t *hub, uint64_t conn, uint64_t id)
{
    hub_watch_t **pw = find(hub, conn, id);

    if (pw == NULL) {
        return 0;
    }
    unlink_watch(hub, pw);
    return 1;
}

/* See watch.h. */
void
dkv_hub_conn_closed(dkv_hub_t *hub, uint64_t conn)
{
    hub_watch_t **pw = &hub->watches;

    while (*pw != NULL) {
        if ((*pw)->conn == conn) {
            unlink_watch(hub, pw);
        }
        else {
            pw = &(*pw)->next;
        }
    }
}

/* See watch.h. */
void
dkv_hub_end_all(dkv_hub_t *hub, dkv_status_t status, uint64_t revision)
{
    while (hub->watches != NULL) {
        hub_watch_t *w = hub->watches;

        dkv_hub_end(hub, w->conn, w->id, status, revision);
    }
}

/* See watch.h. */
size_t
dkv_hub_count(const dkv_hub_t *hub)
{
    return hub->count;
}

/* See watch.h. */
uint64_t
dkv_hub_dropped(const dkv_hub_t *hub)
{
    return hub->dropped;
}
