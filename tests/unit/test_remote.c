/*
 * test_remote.c -- suite `remote`: the remote backend (src/client/remote.c)
 * against a tiny fake node: a thread with an APR socket on loopback (port
 * chosen by the system) that speaks the client protocol through the codec
 * of src/common/proto.h.  It serves one connection at a time and knows
 * REVISION, PUT, GET, WATCH and WATCH_CANCEL, keeps the history of its
 * puts, and can be told to stay silent, refuse the handshake, drop the
 * connection, drop the watch (EUNAVAILABLE error event) or refuse old
 * revisions (ECOMPACTED).
 *
 * Covered: address parsing, timeouts (a node that never answers, a node
 * that never completes the handshake), refused connections, a seed list
 * whose first endpoints are dead, refusals in the handshake, ETOOLARGE
 * before sending, reconnect after the node drops the connection, watch
 * resume after a reconnect and after a "watch dropped" event without loss
 * or duplicates, ECOMPACTED on resume, close with a request in flight,
 * and many threads on one handle.  Replication: discovery through
 * MEMBERS and failover to a discovered node, a reconnection moving on to
 * the next endpoint, the serializable flag on reads only, and writes
 * answered EUNAVAILABLE or ETIMEOUT returned once, never retried.
 */
#include <string.h>

#include <apr_network_io.h>
#include <apr_poll.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "testutil.h"
#include "testnode.h"
#include "common/proto.h"
#include "common/status.h"
#include "client/remote.h"

/* ============================================================ fake node */

#define FS_HIST 4096
#define FS_STORE "Store"

enum {
    FS_NORMAL = 0,
    FS_SILENT,          /* answers HELLO, then nothing */
    FS_REFUSE,          /* refuses HELLO with EUNAUTHORIZED */
    FS_MUTE             /* accepts, never answers HELLO */
};

typedef struct fs_ev {
    char key[64];
    size_t key_len;
    char value[64];
    size_t value_len;
    uint64_t rev;
} fs_ev_t;

typedef struct fsrv {
    apr_pool_t *pool;
    apr_socket_t *lsock;
    apr_port_t port;
    apr_thread_t *thread;
    apr_thread_mutex_t *lock;
    volatile int stop;
    int mode;
    const char *store;
    uint32_t max_frame;
    uint32_t max_value;
    /* Under lock. */
    fs_ev_t *hist;
    size_t nhist;
    uint64_t rev;
    int watching;
    uint64_t watch_id;
    char wkey[64];
    size_t wkey_len;
    int wprefix;
    uint64_t w_sent;            /* last revision pushed to the watch */
    uint64_t compacted_below;   /* WATCH from below this: ECOMPACTED */
    int overlap;                /* replay one revision too many */
    int drop_now;               /* close the connection */
    int drop_watch;             /* end the watch with EUNAVAILABLE */
    int snap_events;            /* a snapshot WATCH gets this many */
    int snap_cut;               /* ... and the connection closes before
                                 * SNAPSHOT_DONE */
    int connections;
    int watch_requests;
    uint64_t last_start;
    /* MEMBERS: with NPEERS > 0 the node answers it, listing itself and
     * the fake nodes on PEERS (plus entries a client must skip);
     * otherwise ENOTIMPL, like a node that does not know the op. */
    apr_port_t peers[4];
    int npeers;
    int members_requests;
    dkv_status_t put_status;    /* nonzero: PUT answered so, not run */
    int ops[256];               /* requests seen, per op */
    unsigned flags[256];        /* header flags of the last one, per op */
} fsrv_t;

static apr_status_t fs_send(apr_socket_t *s, dkv_wbuf_t *wb);

/* Sends the snapshot of a WATCH with include_snapshot: SNAP_EVENTS Put
 * events at revision REV in one frame, then SNAPSHOT_DONE (an empty
 * frame) unless SNAP_CUT.  Returns 0 to close the connection. */
static int
fs_snapshot(fsrv_t *fs, apr_socket_t *s, uint64_t id, uint64_t rev)
{
    dkv_event_t evs[16];
    char keys[16][8];
    dkv_wbuf_t wb;
    int i, n = fs->snap_events < 16 ? fs->snap_events : 16;

    memset(evs, 0, sizeof(evs));
    for (i = 0; i < n; i++) {
        apr_snprintf(keys[i], sizeof(keys[i]), "s/%d", i);
        evs[i].type = DKV_EVENT_PUT;
        evs[i].key = keys[i];
        evs[i].key_len = strlen(keys[i]);
        evs[i].value = "v";
        evs[i].value_len = 1;
        evs[i].revision = rev;
        evs[i].version = 1;
        evs[i].snapshot = 1;
    }
    if (n > 0) {
        dkv_wbuf_init(&wb, 0);
        if (dkv_proto_events_encode(&wb, id, evs, (size_t)n) != DKV_OK) {
            dkv_wbuf_free(&wb);
            return 0;
        }
        (void)fs_send(s, &wb);
    }
    if (fs->snap_cut) {
        /* Give the client time to take the events, then hang up. */
        apr_sleep(apr_time_from_msec(50));
        return 0;
    }
    dkv_wbuf_init(&wb, 0);
    if (dkv_proto_events_encode_flags(&wb, id,
                                      DKV_PROTO_EVENT_SNAPSHOT_DONE, NULL,
                                      0) != DKV_OK) {
        dkv_wbuf_free(&wb);
        return 0;
    }
    return fs_send(s, &wb) == APR_SUCCESS;
}

static apr_status_t
fs_send(apr_socket_t *s, dkv_wbuf_t *wb)
{
    size_t off = 0;
    apr_status_t rv = APR_SUCCESS;
    int spins = 0;

    while (off < wb->len && spins++ < 1000) {
        apr_size_t n = wb->len - off;

        rv = apr_socket_send(s, (const char *)wb->data + off, &n);
        off += n;
        if (rv != APR_SUCCESS && !APR_STATUS_IS_TIMEUP(rv)) {
            break;
        }
        rv = APR_SUCCESS;
    }
    dkv_wbuf_free(wb);
    return rv;
}

static apr_status_t
fs_respond(apr_socket_t *s, dkv_response_t *res)
{
    dkv_wbuf_t wb;

    dkv_wbuf_init(&wb, 0);
    if (dkv_proto_response_encode(&wb, res) != DKV_OK) {
        dkv_wbuf_free(&wb);
        return APR_EGENERAL;
    }
    return fs_send(s, &wb);
}

static int
fs_matches(const fsrv_t *fs, const fs_ev_t *e)
{
    if (fs->wprefix) {
        return e->key_len >= fs->wkey_len
               && memcmp(e->key, fs->wkey, fs->wkey_len) == 0;
    }
    return e->key_len == fs->wkey_len
           && memcmp(e->key, fs->wkey, fs->wkey_len) == 0;
}

/* Appends a put to the history; lock held. */
static uint64_t
fs_put_locked(fsrv_t *fs, const void *key, size_t key_len,
              const void *value, size_t value_len)
{
    fs_ev_t *e;

    if (fs->nhist == FS_HIST || key_len > sizeof(e->key)
        || value_len > sizeof(e->value)) {
        return 0;
    }
    e = &fs->hist[fs->nhist++];
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
    memcpy(e->value, value, value_len);
    e->value_len = value_len;
    e->rev = ++fs->rev;
    return e->rev;
}

/* A write made "by another client" while the test's client is away. */
static void
fs_put(fsrv_t *fs, const char *key, const char *value)
{
    apr_thread_mutex_lock(fs->lock);
    fs_put_locked(fs, key, strlen(key), value, strlen(value));
    apr_thread_mutex_unlock(fs->lock);
}

static void
fs_set(fsrv_t *fs, int *field, int value)
{
    apr_thread_mutex_lock(fs->lock);
    *field = value;
    apr_thread_mutex_unlock(fs->lock);
}

static int
fs_get(fsrv_t *fs, const int *field)
{
    int v;

    apr_thread_mutex_lock(fs->lock);
    v = *field;
    apr_thread_mutex_unlock(fs->lock);
    return v;
}

/* Pushes the history the watch has not seen; lock held. */
static void
fs_push_events(fsrv_t *fs, apr_socket_t *s)
{
    size_t i;

    if (!fs->watching) {
        return;
    }
    for (i = 0; i < fs->nhist; i++) {
        fs_ev_t *e = &fs->hist[i];

        if (e->rev > fs->w_sent && fs_matches(fs, e)) {
            dkv_event_t ev;
            dkv_wbuf_t wb;

            memset(&ev, 0, sizeof(ev));
            ev.type = DKV_EVENT_PUT;
            ev.key = e->key;
            ev.key_len = e->key_len;
            ev.value = e->value;
            ev.value_len = e->value_len;
            ev.revision = e->rev;
            ev.version = 1;
            dkv_wbuf_init(&wb, 0);
            if (dkv_proto_events_encode(&wb, fs->watch_id, &ev, 1)
                == DKV_OK) {
                (void)fs_send(s, &wb);
            }
            else {
                dkv_wbuf_free(&wb);
            }
        }
    }
    if (fs->rev > fs->w_sent) {
        fs->w_sent = fs->rev;
    }
}

/* Answers one request; returns 0 to close the connection. */
static int
fs_handle(fsrv_t *fs, apr_socket_t *s, const dkv_frame_t *f,
          apr_pool_t *pool)
{
    dkv_request_t req;
    dkv_response_t res;
    size_t i;

    if (dkv_proto_request_decode(&req, f, pool) != DKV_OK) {
        return 0;
    }
    memset(&res, 0, sizeof(res));
    res.op = req.op;
    res.id = req.id;
    res.message = "";
    if (req.op == DKV_MSG_HELLO) {
        if (fs->mode == FS_MUTE) {
            return 1;
        }
        if (fs->mode == FS_REFUSE) {
            res.status = DKV_EUNAUTHORIZED;
            res.message = "access token refused (fake node)";
            (void)fs_respond(s, &res);
            return 0;
        }
        res.version = DKV_PROTO_VERSION;
        res.store = fs->store;
        res.instance = "fake";
        res.max_frame = fs->max_frame;
        res.max_value = fs->max_value;
        apr_thread_mutex_lock(fs->lock);
        res.revision = fs->rev;
        apr_thread_mutex_unlock(fs->lock);
        return fs_respond(s, &res) == APR_SUCCESS;
    }
    if (fs->mode == FS_SILENT) {
        return 1;
    }
    apr_thread_mutex_lock(fs->lock);
    fs->ops[req.op]++;
    fs->flags[req.op] = req.flags;
    switch (req.op) {
    case DKV_MSG_REVISION:
        res.revision = fs->rev;
        break;
    case DKV_MSG_MEMBERS:
        fs->members_requests++;
        if (fs->npeers == 0) {
            res.status = DKV_ENOTIMPL;
            res.message = "not in the fake node";
            break;
        }
        {
            dkv_proto_member_t *m = apr_pcalloc(pool, 8 * sizeof(*m));
            int k = 0;

            m[k].id = 1;
            m[k].roles = DKV_PROTO_MEMBER_VOTER | DKV_PROTO_MEMBER_SELF;
            m[k].host = "127.0.0.1";
            m[k++].port = fs->port;
            /* Entries a client must not use. */
            m[k].id = 7;
            m[k].host = "127.0.0.1";
            m[k++].port = 0;
            m[k].id = 8;
            m[k].host = "0.0.0.0";
            m[k++].port = fs->port;
            m[k].id = 9;
            m[k].host = "bad host!";
            m[k++].port = fs->port;
            for (i = 0; i < (size_t)fs->npeers; i++) {
                m[k].id = (uint32_t)(2 + i);
                m[k].roles = DKV_PROTO_MEMBER_VOTER;
                m[k].host = "127.0.0.1";
                m[k++].port = fs->peers[i];
            }
            res.leader = 1;
            res.members = m;
            res.nmembers = (size_t)k;
        }
        break;
    case DKV_MSG_PUT:
        if (fs->put_status != DKV_OK) {
            res.status = fs->put_status;
            res.message = "no leader (fake node)";
            break;
        }
        res.result.mutated = 1;
        res.result.version = 1;
        res.result.revision = fs_put_locked(fs, req.key, req.key_len,
                                            req.value, req.value_len);
        if (res.result.revision == 0) {
            res.status = DKV_ETOOLARGE;
            res.message = "fake node is full";
            /* A failure's result: status, nothing changed, the
             * current revision. */
            res.has_result = 1;
            memset(&res.result, 0, sizeof(res.result));
            res.result.status = DKV_ETOOLARGE;
            res.result.revision = fs->rev;
        }
        break;
    case DKV_MSG_GET:
        res.status = DKV_ENOTFOUND;
        res.message = "get: key not found";
        /* The node's item for a missing key (as the engine fills it). */
        res.has_result = 1;
        res.item.status = DKV_ENOTFOUND;
        res.item.key = req.key;
        res.item.key_len = req.key_len;
        res.item.revision = fs->rev;
        res.item.ttl_ms = -1;
        for (i = fs->nhist; i > 0; i--) {
            fs_ev_t *e = &fs->hist[i - 1];

            if (e->key_len == req.key_len
                && memcmp(e->key, req.key, req.key_len) == 0) {
                res.status = DKV_OK;
                res.message = "";
                res.item.key = e->key;
                res.item.key_len = e->key_len;
                res.item.value = e->value;
                res.item.value_len = e->value_len;
                res.item.version = 1;
                res.item.mod_revision = e->rev;
                res.item.create_revision = e->rev;
                res.item.revision = fs->rev;
                res.item.ttl_ms = -1;
                break;
            }
        }
        break;
    case DKV_MSG_WATCH:
        fs->watch_requests++;
        fs->last_start = req.u64;
        if (req.u64 != 0 && req.u64 < fs->compacted_below) {
            res.status = DKV_ECOMPACTED;
            res.message = "revision is compacted (fake node)";
            break;
        }
        res.revision = fs->rev;
        fs->watching = 1;
        fs->watch_id = req.id;
        memcpy(fs->wkey, req.key, req.key_len);
        fs->wkey_len = req.key_len;
        fs->wprefix = (req.watch_flags & DKV_PROTO_WATCH_PREFIX) != 0;
        fs->w_sent = req.u64 != 0 ? req.u64 - 1 : fs->rev;
        if (req.u64 != 0 && fs->overlap && fs->w_sent > 0) {
            fs->w_sent--;
        }
        break;
    case DKV_MSG_WATCH_CANCEL:
        if (fs->watch_id == req.u64) {
            fs->watching = 0;
        }
        break;
    default:
        res.status = DKV_ENOTIMPL;
        res.message = "not in the fake node";
        break;
    }
    apr_thread_mutex_unlock(fs->lock);
    if (fs_respond(s, &res) != APR_SUCCESS) {
        return 0;
    }
    if (req.op == DKV_MSG_WATCH && res.status == DKV_OK
        && (req.watch_flags & DKV_PROTO_WATCH_SNAPSHOT)) {
        int keep;

        apr_thread_mutex_lock(fs->lock);
        keep = fs_snapshot(fs, s, req.id, res.revision);
        if (!keep) {
            fs->watching = 0;
        }
        apr_thread_mutex_unlock(fs->lock);
        return keep;
    }
    return 1;
}

/* Serves one connection until it closes, a drop, or stop. */
static void
fs_serve(fsrv_t *fs, apr_socket_t *s, apr_pool_t *pool)
{
    static unsigned char buf[4 * 1024 * 1024];
    size_t have = 0;
    apr_pool_t *rp;

    apr_socket_timeout_set(s, apr_time_from_msec(10));
    apr_pool_create(&rp, pool);
    while (!fs->stop) {
        dkv_frame_t f;
        size_t size;
        apr_size_t n;
        apr_status_t rv;

        apr_thread_mutex_lock(fs->lock);
        if (fs->drop_now) {
            fs->drop_now = 0;
            fs->watching = 0;
            apr_thread_mutex_unlock(fs->lock);
            return;
        }
        if (fs->drop_watch && fs->watching) {
            dkv_event_t ev;
            dkv_wbuf_t wb;

            memset(&ev, 0, sizeof(ev));
            ev.type = DKV_EVENT_ERROR;
            ev.status = DKV_EUNAVAILABLE;
            dkv_wbuf_init(&wb, 0);
            if (dkv_proto_events_encode(&wb, fs->watch_id, &ev, 1)
                == DKV_OK) {
                (void)fs_send(s, &wb);
            }
            else {
                dkv_wbuf_free(&wb);
            }
            fs->watching = 0;
            fs->drop_watch = 0;
        }
        fs_push_events(fs, s);
        apr_thread_mutex_unlock(fs->lock);

        rv = dkv_proto_frame_parse(&f, &size, buf, have, sizeof(buf));
        if (rv == DKV_OK) {
            int keep = fs_handle(fs, s, &f, rp);

            apr_pool_clear(rp);
            memmove(buf, buf + size, have - size);
            have -= size;
            if (!keep) {
                return;
            }
            continue;
        }
        if (rv != APR_INCOMPLETE) {
            return;
        }
        n = sizeof(buf) - have;
        rv = apr_socket_recv(s, (char *)buf + have, &n);
        have += n;
        if (rv != APR_SUCCESS && !APR_STATUS_IS_TIMEUP(rv)) {
            return;
        }
    }
}

static void *APR_THREAD_FUNC
fs_main(apr_thread_t *thread, void *data)
{
    fsrv_t *fs = data;
    apr_pool_t *cp;

    (void)thread;
    apr_pool_create(&cp, fs->pool);
    while (!fs->stop) {
        apr_socket_t *s;
        apr_pollfd_t pfd;
        apr_int32_t nready = 0;

        /* Waits for a connection in slices, so fs_stop is seen: APR's
         * win32 accept ignores the socket timeout and would block until
         * the next connection, which never comes. */
        memset(&pfd, 0, sizeof(pfd));
        pfd.p = cp;
        pfd.desc_type = APR_POLL_SOCKET;
        pfd.reqevents = APR_POLLIN;
        pfd.desc.s = fs->lsock;
        if (apr_poll(&pfd, 1, &nready, apr_time_from_msec(20))
            != APR_SUCCESS || nready == 0) {
            continue;
        }
        if (apr_socket_accept(&s, fs->lsock, cp) != APR_SUCCESS) {
            apr_sleep(apr_time_from_msec(5));
            continue;
        }
        apr_thread_mutex_lock(fs->lock);
        fs->connections++;
        apr_thread_mutex_unlock(fs->lock);
        fs_serve(fs, s, cp);
        apr_socket_close(s);
        apr_pool_clear(cp);
    }
    dkv_error_clear();
    return NULL;
}

/* A listening socket on 127.0.0.1, port chosen by the system. */
static apr_socket_t *
listen_any(apr_port_t *port, apr_pool_t *pool)
{
    apr_sockaddr_t *sa, *bound;
    apr_socket_t *s;

    DKV_ASSERT_OK(apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0,
                                        pool));
    DKV_ASSERT_OK(apr_socket_create(&s, APR_INET, SOCK_STREAM,
                                    APR_PROTO_TCP, pool));
    apr_socket_opt_set(s, APR_SO_REUSEADDR, 1);
    DKV_ASSERT_OK(apr_socket_bind(s, sa));
    DKV_ASSERT_OK(apr_socket_listen(s, 16));
    DKV_ASSERT_OK(apr_socket_addr_get(&bound, APR_LOCAL, s));
    *port = bound->port;
    return s;
}

/* A port nothing listens on (bound, then closed). */
static apr_port_t
dead_port(apr_pool_t *pool)
{
    apr_port_t port;
    apr_socket_t *s = listen_any(&port, pool);

    apr_socket_close(s);
    return port;
}

static fsrv_t *
fs_start(int mode, apr_pool_t *pool)
{
    fsrv_t *fs = apr_pcalloc(pool, sizeof(*fs));

    fs->pool = pool;
    fs->mode = mode;
    fs->store = FS_STORE;
    fs->max_frame = DKV_PROTO_MIN_FRAME;
    fs->max_value = 2 * 1024 * 1024;
    fs->hist = apr_pcalloc(pool, FS_HIST * sizeof(*fs->hist));
    DKV_ASSERT_OK(apr_thread_mutex_create(&fs->lock,
                                          APR_THREAD_MUTEX_DEFAULT, pool));
    fs->lsock = listen_any(&fs->port, pool);
    apr_socket_timeout_set(fs->lsock, apr_time_from_msec(20));
    DKV_ASSERT_OK(apr_thread_create(&fs->thread, NULL, fs_main, fs, pool));
    return fs;
}

static void
fs_stop(fsrv_t *fs)
{
    apr_status_t ignored;

    fs->stop = 1;
    apr_thread_join(&ignored, fs->thread);
    apr_socket_close(fs->lsock);
}

static const char *
fs_address(const fsrv_t *fs, apr_pool_t *pool)
{
    return apr_psprintf(pool, "dkv://127.0.0.1:%u/%s", (unsigned)fs->port,
                        FS_STORE);
}

static dkv_open_opts_t
quick_opts(void)
{
    dkv_open_opts_t o;

    memset(&o, 0, sizeof(o));
    o.connect_timeout_ms = 1000;
    o.request_timeout_ms = 2000;
    return o;
}

/* ============================================================ collector */

typedef struct coll {
    apr_thread_mutex_t *lock;
    uint64_t revs[256];
    int n;
    int errors;
    dkv_status_t error_status;
    int dups;
} coll_t;

static void
coll_cb(void *baton, const dkv_event_t *ev)
{
    coll_t *c = baton;

    apr_thread_mutex_lock(c->lock);
    if (ev->type == DKV_EVENT_ERROR) {
        c->errors++;
        c->error_status = ev->status;
    }
    else if (c->n < 256) {
        if (c->n > 0 && ev->revision <= c->revs[c->n - 1]) {
            c->dups++;
        }
        c->revs[c->n++] = ev->revision;
    }
    apr_thread_mutex_unlock(c->lock);
}

/* Waits (at most 5 s) until C has N events; returns how many it has. */
static int
coll_wait(coll_t *c, int n)
{
    int i, have = 0;

    for (i = 0; i < 500; i++) {
        apr_thread_mutex_lock(c->lock);
        have = c->n;
        apr_thread_mutex_unlock(c->lock);
        if (have >= n) {
            break;
        }
        apr_sleep(apr_time_from_msec(10));
    }
    return have;
}

static int
coll_wait_error(coll_t *c)
{
    int i, e = 0;

    for (i = 0; i < 500 && e == 0; i++) {
        apr_thread_mutex_lock(c->lock);
        e = c->errors;
        apr_thread_mutex_unlock(c->lock);
        if (e == 0) {
            apr_sleep(apr_time_from_msec(10));
        }
    }
    return e;
}

static void
put_str(dkv_client_t *c, const char *key, const char *value)
{
    DKV_ASSERT_OK(dkv_put(NULL, c, key, strlen(key), value, strlen(value),
                          NULL));
}

/* ================================================================ tests */

static void
parses_addresses(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_remote_addr_t a;

    DKV_ASSERT_OK(dkv_remote_parse(&a, "dkv://localhost:7000/Store", pool));
    DKV_EXPECT_INT_EQ(a.count, 1);
    DKV_EXPECT_STR_EQ(a.hosts[0], "localhost");
    DKV_EXPECT_INT_EQ(a.ports[0], 7000);
    DKV_EXPECT_STR_EQ(a.store, "Store");

    DKV_ASSERT_OK(dkv_remote_parse(&a, "dkv://10.0.0.1:1,[::1]:65535,"
                                   "node-2.example.com:9/My Store", pool));
    DKV_EXPECT_INT_EQ(a.count, 3);
    DKV_EXPECT_STR_EQ(a.hosts[0], "10.0.0.1");
    DKV_EXPECT_INT_EQ(a.ports[0], 1);
    DKV_EXPECT_STR_EQ(a.hosts[1], "::1");
    DKV_EXPECT_INT_EQ(a.ports[1], 65535);
    DKV_EXPECT_STR_EQ(a.hosts[2], "node-2.example.com");
    DKV_EXPECT_STR_EQ(a.store, "My Store");

    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://h:1", pool), DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "STORE") != NULL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://h:1/", pool), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://h/S", pool), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://:1/S", pool), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://h:0/S", pool), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://h:65536/S", pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://h:12a/S", pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://::1:80/S", pool),
                      DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "bracket") != NULL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://[::1/S", pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://[::1]/S", pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://[host]:1/S", pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://h:1,,h:2/S", pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://h:1,/S", pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://h_@x:1/S", pool),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_remote_parse(&a, "dkv://h:1/a/b", pool),
                      DKV_EINVAL);
    apr_pool_destroy(pool);
}

static void
open_rejects_bad_address(void)
{
    dkv_client_t *c = (dkv_client_t *)&c;

    DKV_EXPECT_STATUS(dkv_open(&c, "dkv://127.0.0.1/Store", NULL, NULL),
                      DKV_EINVAL);
    DKV_EXPECT_TRUE(c == NULL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "dkv://HOST:PORT") != NULL);
}

static void
refused_is_unavailable(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    const char *addr = apr_psprintf(pool, "dkv://127.0.0.1:%u/%s",
                                    (unsigned)dead_port(pool), FS_STORE);

    DKV_EXPECT_STATUS(dkv_open(&c, addr, &o, pool), DKV_EUNAVAILABLE);
    DKV_EXPECT_TRUE(c == NULL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "127.0.0.1") != NULL);
    apr_pool_destroy(pool);
}

static void
seed_list_skips_dead_endpoints(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    uint64_t rev = 99;
    const char *addr = apr_psprintf(pool, "dkv://127.0.0.1:%u,localhost:%u,"
                                    "127.0.0.1:%u/%s",
                                    (unsigned)dead_port(pool),
                                    (unsigned)dead_port(pool),
                                    (unsigned)fs->port, FS_STORE);

    DKV_ASSERT_OK(dkv_open(&c, addr, &o, pool));
    DKV_EXPECT_OK(dkv_revision(&rev, c));
    DKV_EXPECT_UINT_EQ(rev, 0);
    dkv_close(c);
    fs_stop(fs);
    apr_pool_destroy(pool);
}

/* An endpoint that never answers the SYN must fail within the connect
 * timeout on every platform (win32 APR's own connect ignores it).  A
 * listener whose accept queue is full stands in for it: the kernel drops
 * further SYNs (Windows may refuse them instead, which fails faster). */
static void
connect_timeout_bounds_silent_endpoint(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    apr_sockaddr_t *sa;
    apr_socket_t *l, *fill;
    apr_port_t port;
    apr_time_t t0;
    dkv_status_t rv;
    int i;

    l = listen_any(&port, pool);
    DKV_ASSERT_OK(apr_socket_listen(l, 0));
    DKV_ASSERT_OK(apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, port,
                                        0, pool));
    for (i = 0; i < 8; i++) {
        DKV_ASSERT_OK(apr_socket_create(&fill, APR_INET, SOCK_STREAM,
                                        APR_PROTO_TCP, pool));
        apr_socket_timeout_set(fill, 0);
        (void)apr_socket_connect(fill, sa);
    }
    apr_sleep(apr_time_from_msec(200));
    o.connect_timeout_ms = 300;
    t0 = apr_time_now();
    rv = dkv_open(&c, apr_psprintf(pool, "dkv://127.0.0.1:%u/%s",
                                   (unsigned)port, FS_STORE), &o, pool);
    DKV_EXPECT_TRUE(rv == DKV_EUNAVAILABLE || rv == DKV_ETIMEOUT);
    DKV_EXPECT_TRUE(c == NULL);
    DKV_EXPECT_TRUE(apr_time_now() - t0 < apr_time_from_sec(3));
    apr_pool_destroy(pool);
}

static void
handshake_refusals(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_REFUSE, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;

    o.token = "wrong";
    DKV_EXPECT_STATUS(dkv_open(&c, fs_address(fs, pool), &o, pool),
                      DKV_EUNAUTHORIZED);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "access token refused")
                    != NULL);
    DKV_EXPECT_TRUE(c == NULL);
    fs_stop(fs);

    /* A node serving another store. */
    fs = fs_start(FS_NORMAL, pool);
    fs->store = "Other";
    DKV_EXPECT_STATUS(dkv_open(&c, fs_address(fs, pool), &o, pool),
                      DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "Other") != NULL);
    fs_stop(fs);
    apr_pool_destroy(pool);
}

static void
timeouts(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_SILENT, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    dkv_item_t *item;
    apr_time_t t0;

    o.request_timeout_ms = 200;
    DKV_ASSERT_OK(dkv_open(&c, fs_address(fs, pool), &o, pool));
    t0 = apr_time_now();
    DKV_EXPECT_STATUS(dkv_put(NULL, c, "k", 1, "v", 1, NULL), DKV_ETIMEOUT);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "outcome is unknown") != NULL);
    DKV_EXPECT_STATUS(dkv_get(&item, c, "k", 1, NULL, pool), DKV_ETIMEOUT);
    DKV_EXPECT_TRUE(apr_time_now() - t0 < apr_time_from_sec(3));
    dkv_close(c);
    fs_stop(fs);

    /* Accepts, never answers the handshake. */
    fs = fs_start(FS_MUTE, pool);
    o.connect_timeout_ms = 200;
    t0 = apr_time_now();
    DKV_EXPECT_STATUS(dkv_open(&c, fs_address(fs, pool), &o, pool),
                      DKV_ETIMEOUT);
    DKV_EXPECT_TRUE(apr_time_now() - t0 < apr_time_from_sec(3));
    fs_stop(fs);
    apr_pool_destroy(pool);
}

static void
requests_and_limits(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    dkv_result_t res;
    dkv_item_t *item;
    size_t big_len = DKV_PROTO_MIN_FRAME + 1000;
    char *big = apr_pcalloc(pool, big_len);

    DKV_ASSERT_OK(dkv_open(&c, fs_address(fs, pool), &o, pool));
    DKV_EXPECT_OK(dkv_put(&res, c, "a", 1, "one", 3, NULL));
    DKV_EXPECT_UINT_EQ(res.revision, 1);
    DKV_EXPECT_INT_EQ(res.mutated, 1);
    DKV_EXPECT_OK(dkv_get(&item, c, "a", 1, NULL, pool));
    DKV_EXPECT_MEM_EQ(item->value, item->value_len, "one", 3);
    DKV_EXPECT_TRUE(((const char *)item->value)[3] == '\0');
    DKV_EXPECT_UINT_EQ(item->mod_revision, 1);
    DKV_EXPECT_STATUS(dkv_get(&item, c, "b", 1, NULL, pool), DKV_ENOTFOUND);
    DKV_EXPECT_STR_EQ(dkv_last_error(), "get: key not found");
    DKV_EXPECT_INT_EQ(item->status, DKV_ENOTFOUND);
    DKV_EXPECT_INT_EQ(item->ttl_ms, -1);
    /* Node-side status and message pass through. */
    DKV_EXPECT_STATUS(dkv_counter_set(c, "n", 1, 5, NULL), DKV_ENOTIMPL);
    DKV_EXPECT_STR_EQ(dkv_last_error(), "not in the fake node");
    /* Under the node's value limit (2 MiB) but over its frame (1 MiB). */
    DKV_EXPECT_STATUS(dkv_put(NULL, c, "big", 3, big, big_len, NULL),
                      DKV_ETOOLARGE);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "frame") != NULL);
    DKV_EXPECT_OK(dkv_put(NULL, c, "a", 1, "two", 3, NULL));
    dkv_close(c);
    fs_stop(fs);
    apr_pool_destroy(pool);
}

static void
reconnects_after_drop(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    dkv_item_t *item;
    uint64_t rev = 0;
    int i;

    DKV_ASSERT_OK(dkv_open(&c, fs_address(fs, pool), &o, pool));
    put_str(c, "a", "1");
    for (i = 0; i < 3; i++) {
        fs_set(fs, &fs->drop_now, 1);
        apr_sleep(apr_time_from_msec(100));
        /* Reads retry once on a fresh connection. */
        DKV_EXPECT_OK(dkv_get(&item, c, "a", 1, NULL, pool));
        DKV_EXPECT_OK(dkv_revision(&rev, c));
        DKV_EXPECT_UINT_EQ(rev, 1);
    }
    DKV_EXPECT_INT_EQ(fs_get(fs, &fs->connections), 4);
    dkv_close(c);

    /* The node goes away: requests fail with EUNAVAILABLE. */
    DKV_ASSERT_OK(dkv_open(&c, fs_address(fs, pool), &o, pool));
    fs_stop(fs);
    apr_sleep(apr_time_from_msec(50));
    for (i = 0; i < 3; i++) {
        dkv_status_t rv = dkv_put(NULL, c, "x", 1, "y", 1, NULL);

        DKV_EXPECT_TRUE(rv == DKV_EUNAVAILABLE || rv == DKV_ETRANSPORT);
    }
    DKV_EXPECT_STATUS(dkv_revision(&rev, c), DKV_EUNAVAILABLE);
    dkv_close(c);
    apr_pool_destroy(pool);
}

static void
watch_resumes_after_reconnect(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_watch_opts_t wo;
    dkv_client_t *c = NULL;
    dkv_watch_t *w;
    coll_t coll;
    int i;

    memset(&coll, 0, sizeof(coll));
    DKV_ASSERT_OK(apr_thread_mutex_create(&coll.lock,
                                          APR_THREAD_MUTEX_DEFAULT, pool));
    memset(&wo, 0, sizeof(wo));
    wo.prefix = 1;
    DKV_ASSERT_OK(dkv_open(&c, fs_address(fs, pool), &o, pool));
    DKV_ASSERT_OK(dkv_watch_start(&w, c, "k", 1, &wo, coll_cb, &coll));
    put_str(c, "k1", "a");
    put_str(c, "x1", "ignored");
    put_str(c, "k2", "b");
    DKV_EXPECT_INT_EQ(coll_wait(&coll, 2), 2);

    /* The connection drops; others write meanwhile; the node replays
     * one revision too many on resume: no loss, no duplicate. */
    fs_set(fs, &fs->overlap, 1);
    apr_thread_mutex_lock(fs->lock);
    fs->drop_now = 1;
    apr_thread_mutex_unlock(fs->lock);
    apr_sleep(apr_time_from_msec(30));
    fs_put(fs, "k3", "c");
    fs_put(fs, "k4", "d");
    DKV_EXPECT_INT_EQ(coll_wait(&coll, 4), 4);
    put_str(c, "k5", "e");
    DKV_EXPECT_INT_EQ(coll_wait(&coll, 5), 5);

    /* The node drops the watch (slow consumer): resumed on the same
     * connection. */
    fs_set(fs, &fs->drop_watch, 1);
    for (i = 0; i < 100 && fs_get(fs, &fs->watch_requests) < 3; i++) {
        apr_sleep(apr_time_from_msec(10));
    }
    fs_put(fs, "k6", "f");
    DKV_EXPECT_INT_EQ(coll_wait(&coll, 6), 6);
    DKV_EXPECT_INT_EQ(fs_get(fs, &fs->watch_requests), 3);
    DKV_EXPECT_INT_EQ(fs_get(fs, &fs->connections), 2);

    apr_thread_mutex_lock(coll.lock);
    DKV_EXPECT_INT_EQ(coll.n, 6);
    DKV_EXPECT_INT_EQ(coll.dups, 0);
    DKV_EXPECT_INT_EQ(coll.errors, 0);
    DKV_EXPECT_UINT_EQ(coll.revs[0], 1);
    DKV_EXPECT_UINT_EQ(coll.revs[1], 3);
    DKV_EXPECT_UINT_EQ(coll.revs[2], 4);
    DKV_EXPECT_UINT_EQ(coll.revs[3], 5);
    DKV_EXPECT_UINT_EQ(coll.revs[4], 6);
    DKV_EXPECT_UINT_EQ(coll.revs[5], 7);
    apr_thread_mutex_unlock(coll.lock);

    /* Compacted history on resume ends the watch with an error event. */
    fs_set(fs, &fs->overlap, 0);
    apr_thread_mutex_lock(fs->lock);
    fs->compacted_below = 100;
    fs->drop_now = 1;
    apr_thread_mutex_unlock(fs->lock);
    DKV_EXPECT_INT_EQ(coll_wait_error(&coll), 1);
    DKV_EXPECT_INT_EQ(coll.error_status, DKV_ECOMPACTED);
    dkv_watch_stop(w);

    /* A watch refused at start. */
    wo.start_revision = 2;
    DKV_EXPECT_STATUS(dkv_watch_start(&w, c, "k", 1, &wo, coll_cb, &coll),
                      DKV_ECOMPACTED);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "compacted") != NULL);
    dkv_close(c);
    fs_stop(fs);
    apr_pool_destroy(pool);
}

/* A callback that stops its own watch after the first event. */
typedef struct self_stop {
    dkv_watch_t *w;
    int calls;
} self_stop_t;

static void
self_stop_cb(void *baton, const dkv_event_t *ev)
{
    self_stop_t *s = baton;

    (void)ev;
    s->calls++;
    dkv_watch_stop(s->w);
}

static void
watch_stop_semantics(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    self_stop_t ss;
    coll_t coll;
    dkv_watch_t *w2;
    int i;

    memset(&ss, 0, sizeof(ss));
    memset(&coll, 0, sizeof(coll));
    DKV_ASSERT_OK(apr_thread_mutex_create(&coll.lock,
                                          APR_THREAD_MUTEX_DEFAULT, pool));
    DKV_ASSERT_OK(dkv_open(&c, fs_address(fs, pool), &o, pool));
    DKV_ASSERT_OK(dkv_watch_start(&ss.w, c, "s", 1, NULL, self_stop_cb,
                                  &ss));
    put_str(c, "s", "1");
    for (i = 0; i < 200 && ss.calls == 0; i++) {
        apr_sleep(apr_time_from_msec(10));
    }
    put_str(c, "s", "2");
    apr_sleep(apr_time_from_msec(100));
    DKV_EXPECT_INT_EQ(ss.calls, 1);
    /* A watch left running is stopped by close. */
    DKV_ASSERT_OK(dkv_watch_start(&w2, c, "t", 1, NULL, coll_cb, &coll));
    put_str(c, "t", "1");
    DKV_EXPECT_INT_EQ(coll_wait(&coll, 1), 1);
    dkv_close(c);
    fs_stop(fs);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------ close in flight */

typedef struct inflight {
    dkv_client_t *c;
    dkv_status_t rv;
} inflight_t;

static void *APR_THREAD_FUNC
inflight_main(apr_thread_t *thread, void *data)
{
    inflight_t *f = data;

    (void)thread;
    f->rv = dkv_put(NULL, f->c, "k", 1, "v", 1, NULL);
    return NULL;
}

static void
close_fails_inflight(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_SILENT, pool);
    dkv_open_opts_t o = quick_opts();
    apr_thread_t *t;
    apr_status_t ignored;
    inflight_t f;
    apr_time_t t0;

    o.request_timeout_ms = 5000;
    memset(&f, 0, sizeof(f));
    DKV_ASSERT_OK(dkv_open(&f.c, fs_address(fs, pool), &o, pool));
    DKV_ASSERT_OK(apr_thread_create(&t, NULL, inflight_main, &f, pool));
    apr_sleep(apr_time_from_msec(100));
    t0 = apr_time_now();
    dkv_close(f.c);
    apr_thread_join(&ignored, t);
    DKV_EXPECT_INT_EQ(f.rv, DKV_ECLOSED);
    DKV_EXPECT_TRUE(apr_time_now() - t0 < apr_time_from_sec(2));
    fs_stop(fs);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------------ threads */

#define NTHREADS 8
#define NOPS 200

typedef struct worker {
    dkv_client_t *c;
    int index;
    int failures;
} worker_t;

static void *APR_THREAD_FUNC
worker_main(apr_thread_t *thread, void *data)
{
    worker_t *wk = data;
    apr_pool_t *p;
    int i;

    (void)thread;
    apr_pool_create(&p, NULL);
    for (i = 0; i < NOPS; i++) {
        char key[32], val[32];
        dkv_item_t *item;

        apr_snprintf(key, sizeof(key), "t%d-%d", wk->index, i);
        apr_snprintf(val, sizeof(val), "v%d", i);
        if (dkv_put(NULL, wk->c, key, strlen(key), val, strlen(val), NULL)
            != DKV_OK) {
            wk->failures++;
            continue;
        }
        if (dkv_get(&item, wk->c, key, strlen(key), NULL, p) != DKV_OK
            || item->value_len != strlen(val)
            || memcmp(item->value, val, item->value_len) != 0) {
            wk->failures++;
        }
        apr_pool_clear(p);
    }
    apr_pool_destroy(p);
    return NULL;
}

static void
many_threads_one_handle(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    apr_thread_t *t[NTHREADS];
    worker_t wk[NTHREADS];
    apr_status_t ignored;
    uint64_t rev = 0;
    int i;

    o.request_timeout_ms = 10000;
    DKV_ASSERT_OK(dkv_open(&c, fs_address(fs, pool), &o, pool));
    for (i = 0; i < NTHREADS; i++) {
        wk[i].c = c;
        wk[i].index = i;
        wk[i].failures = 0;
        DKV_ASSERT_OK(apr_thread_create(&t[i], NULL, worker_main, &wk[i],
                                        pool));
    }
    for (i = 0; i < NTHREADS; i++) {
        apr_thread_join(&ignored, t[i]);
        DKV_EXPECT_INT_EQ(wk[i].failures, 0);
    }
    DKV_EXPECT_OK(dkv_revision(&rev, c));
    DKV_EXPECT_UINT_EQ(rev, NTHREADS * NOPS);
    DKV_EXPECT_INT_EQ(fs_get(fs, &fs->connections), 1);
    dkv_close(c);
    fs_stop(fs);
    apr_pool_destroy(pool);
}

/* A connection lost while the initial snapshot is arriving ends the
 * watch with DKV_ETRANSPORT (no silent resume from after the snapshot);
 * one lost after SNAPSHOT_DONE resumes as usual. */
static void
watch_snapshot_cut(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_watch_opts_t wo;
    dkv_client_t *c = NULL;
    dkv_watch_t *w = NULL;
    coll_t col;
    int i;

    memset(&col, 0, sizeof(col));
    DKV_ASSERT_OK(apr_thread_mutex_create(&col.lock,
                                          APR_THREAD_MUTEX_DEFAULT, pool));
    DKV_ASSERT_OK(dkv_open(&c, fs_address(fs, pool), &o, pool));
    fs_set(fs, &fs->snap_events, 3);
    fs_set(fs, &fs->snap_cut, 1);
    memset(&wo, 0, sizeof(wo));
    wo.prefix = 1;
    wo.include_snapshot = 1;
    DKV_ASSERT_OK(dkv_watch_start(&w, c, "s/", 2, &wo, coll_cb, &col));
    DKV_ASSERT_INT_EQ(coll_wait_error(&col), 1);
    apr_thread_mutex_lock(col.lock);
    DKV_EXPECT_STATUS(col.error_status, DKV_ETRANSPORT);
    DKV_EXPECT_INT_EQ(col.n, 3);
    apr_thread_mutex_unlock(col.lock);
    /* Not resumed behind the application's back. */
    apr_sleep(apr_time_from_msec(200));
    DKV_EXPECT_INT_EQ(fs_get(fs, &fs->watch_requests), 1);
    dkv_watch_stop(w);

    /* Complete snapshot, then a drop: resumed, nothing lost. */
    memset(col.revs, 0, sizeof(col.revs));
    col.n = 0;
    col.errors = 0;
    fs_set(fs, &fs->snap_cut, 0);
    DKV_ASSERT_OK(dkv_watch_start(&w, c, "s/", 2, &wo, coll_cb, &col));
    DKV_EXPECT_INT_EQ(coll_wait(&col, 3), 3);
    for (i = 0; i < 100; i++) {
        /* Let the client read SNAPSHOT_DONE before the drop. */
        apr_sleep(apr_time_from_msec(2));
    }
    fs_set(fs, &fs->drop_now, 1);
    fs_put(fs, "s/new", "x");
    DKV_EXPECT_INT_EQ(coll_wait(&col, 4), 4);
    /* "Nothing lost" and nothing repeated: the resume neither replays
     * the snapshot (all 3 of its events share one revision) nor delivers
     * an event twice; the new write comes after the snapshot. */
    apr_sleep(apr_time_from_msec(100));
    apr_thread_mutex_lock(col.lock);
    DKV_EXPECT_INT_EQ(col.errors, 0);
    DKV_EXPECT_INT_EQ(col.n, 4);
    if (col.n >= 4) {
        DKV_EXPECT_TRUE(col.revs[3] > col.revs[2]);
    }
    apr_thread_mutex_unlock(col.lock);
    DKV_EXPECT_TRUE(fs_get(fs, &fs->watch_requests) >= 3);
    dkv_watch_stop(w);
    dkv_close(c);
    fs_stop(fs);
    apr_pool_destroy(pool);
}

/* Failed single-key calls keep the node's result and item. */
static void
failure_results_from_node(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    dkv_item_t *it = NULL;
    dkv_result_t r;
    int i;

    DKV_ASSERT_OK(dkv_open(&c, fs_address(fs, pool), &o, pool));
    put_str(c, "a", "1");
    put_str(c, "b", "2");
    DKV_EXPECT_STATUS(dkv_get(&it, c, "zz", 2, NULL, pool), DKV_ENOTFOUND);
    DKV_ASSERT_NOT_NULL(it);
    DKV_EXPECT_STATUS(it->status, DKV_ENOTFOUND);
    DKV_EXPECT_MEM_EQ(it->key, it->key_len, "zz", 2);
    DKV_EXPECT_UINT_EQ(it->revision, 2);
    DKV_EXPECT_INT_EQ(it->ttl_ms, -1);
    /* Fill the fake node's history: its PUT then fails with a result. */
    apr_thread_mutex_lock(fs->lock);
    for (i = (int)fs->nhist; i < FS_HIST; i++) {
        fs_put_locked(fs, "f", 1, "v", 1);
    }
    apr_thread_mutex_unlock(fs->lock);
    memset(&r, 0xAB, sizeof(r));
    DKV_EXPECT_STATUS(dkv_put(&r, c, "k", 1, "v", 1, NULL), DKV_ETOOLARGE);
    DKV_EXPECT_STATUS(r.status, DKV_ETOOLARGE);
    DKV_EXPECT_INT_EQ(r.mutated, 0);
    DKV_EXPECT_UINT_EQ(r.revision, FS_HIST);
    dkv_close(c);
    fs_stop(fs);
    apr_pool_destroy(pool);
}

static void
same_result(const dkv_result_t *a, const dkv_result_t *b, const char *what)
{
    if (a->status != b->status || a->mutated != b->mutated
        || a->is_update != b->is_update || a->version != b->version
        || a->revision != b->revision) {
        printf("\n  %s: inproc {%d %d %d %llu %llu} remote {%d %d %d %llu"
               " %llu}\n", what, a->status, a->mutated, a->is_update,
               (unsigned long long)a->version,
               (unsigned long long)a->revision, b->status, b->mutated,
               b->is_update, (unsigned long long)b->version,
               (unsigned long long)b->revision);
        CU_FAIL("results differ between inproc and remote");
    }
}

static void
same_item(const dkv_item_t *a, const dkv_item_t *b, const char *what)
{
    int same = a->status == b->status && a->key_len == b->key_len
               && memcmp(a->key, b->key, a->key_len) == 0
               && (a->value == NULL) == (b->value == NULL)
               && a->value_len == b->value_len
               && a->version == b->version
               && a->create_revision == b->create_revision
               && a->mod_revision == b->mod_revision
               && a->revision == b->revision
               && a->expires_at == b->expires_at
               && a->ttl_ms == b->ttl_ms && a->lease == b->lease
               && a->nlabels == b->nlabels;

    if (!same) {
        printf("\n  %s: inproc {%d rev %llu ttl %lld} remote {%d rev %llu"
               " ttl %lld}\n", what, a->status,
               (unsigned long long)a->revision, (long long)a->ttl_ms,
               b->status, (unsigned long long)b->revision,
               (long long)b->ttl_ms);
        CU_FAIL("items differ between inproc and remote");
    }
}

/* The same failing calls in both modes (a real dkv-node for remote)
 * give the same statuses and the same result and item fields. */
static void
parity_with_inproc(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_test_node_t *node = NULL;
    dkv_client_t *cl[2] = { NULL, NULL };
    dkv_result_t res[2], many[2][3];
    dkv_item_t *it[2], *its[2];
    dkv_status_t rv[2];
    char big[DKV_MAX_KEY + 1];
    dkv_kv_t kvs[3];
    dkv_key_t keys[3];
    dkv_op_t ops[3];
    dkv_kv_t *huge;
    dkv_get_opts_t go;
    int m, i;

    if (dkv_test_node_start(&node, "Store", NULL, NULL, pool)
        != APR_SUCCESS) {
        CU_FAIL("no dkv-node");
        apr_pool_destroy(pool);
        return;
    }
    DKV_ASSERT_OK(dkv_open(&cl[0], "inproc:", NULL, pool));
    DKV_ASSERT_OK(dkv_test_node_open(&cl[1], node, NULL));
    memset(big, 'k', sizeof(big));
    for (m = 0; m < 2; m++) {
        dkv_client_t *c = cl[m];
        dkv_put_opts_t po;

        DKV_ASSERT_OK(dkv_put(NULL, c, "a", 1, "1", 1, NULL));
        DKV_ASSERT_OK(dkv_put(NULL, c, "b", 1, "2", 1, NULL));
        memset(&po, 0, sizeof(po));
        po.if_absent = 1;
        rv[m] = dkv_put(&res[m], c, "a", 1, "x", 1, &po);
    }
    DKV_EXPECT_STATUS(rv[0], DKV_ECONFLICT);
    DKV_EXPECT_STATUS(rv[1], rv[0]);
    same_result(&res[0], &res[1], "put if_absent");
    DKV_EXPECT_UINT_EQ(res[0].revision, 2);

    for (m = 0; m < 2; m++) {
        rv[m] = dkv_delete(&res[m], cl[m], "nope", 4, NULL);
    }
    DKV_EXPECT_STATUS(rv[1], rv[0]);
    same_result(&res[0], &res[1], "delete missing");
    for (m = 0; m < 2; m++) {
        rv[m] = dkv_expire(&res[m], cl[m], "nope", 4, 1000, 0);
    }
    DKV_EXPECT_STATUS(rv[1], rv[0]);
    same_result(&res[0], &res[1], "expire missing");
    for (m = 0; m < 2; m++) {
        rv[m] = dkv_refresh(&res[m], cl[m], "a", 1, 0);
    }
    DKV_EXPECT_STATUS(rv[0], DKV_EINVAL);
    DKV_EXPECT_STATUS(rv[1], rv[0]);
    same_result(&res[0], &res[1], "refresh without ttl");
    for (m = 0; m < 2; m++) {
        rv[m] = dkv_get(&it[m], cl[m], "nope", 4, NULL, pool);
    }
    DKV_EXPECT_STATUS(rv[1], rv[0]);
    same_item(it[0], it[1], "get missing");
    memset(&go, 0, sizeof(go));
    go.lock = 4242;
    for (m = 0; m < 2; m++) {
        rv[m] = dkv_get(&it[m], cl[m], "a", 1, &go, pool);
    }
    DKV_EXPECT_STATUS(rv[0], DKV_ELOCKED);
    DKV_EXPECT_STATUS(rv[1], rv[0]);
    same_item(it[0], it[1], "get under a lock not held");

    /* Bulk calls: an oversized key is that item's ETOOLARGE. */
    kvs[0].key = "c";
    kvs[0].key_len = 1;
    kvs[1].key = big;
    kvs[1].key_len = sizeof(big);
    kvs[2].key = "d";
    kvs[2].key_len = 1;
    for (i = 0; i < 3; i++) {
        kvs[i].value = "v";
        kvs[i].value_len = 1;
        keys[i].key = kvs[i].key;
        keys[i].key_len = kvs[i].key_len;
        memset(&ops[i], 0, sizeof(ops[i]));
        ops[i].type = i == 2 ? DKV_OP_DELETE : DKV_OP_PUT;
        ops[i].key = kvs[i].key;
        ops[i].key_len = kvs[i].key_len;
        ops[i].value = "w";
        ops[i].value_len = 1;
    }
    for (m = 0; m < 2; m++) {
        rv[m] = dkv_put_many(many[m], cl[m], kvs, 3, NULL);
    }
    DKV_EXPECT_OK(rv[0]);
    DKV_EXPECT_STATUS(rv[1], rv[0]);
    DKV_EXPECT_STATUS(many[0][1].status, DKV_ETOOLARGE);
    for (i = 0; i < 3; i++) {
        same_result(&many[0][i], &many[1][i], "put_many");
    }
    for (m = 0; m < 2; m++) {
        rv[m] = dkv_get_many(&its[m], cl[m], keys, 3, NULL, pool);
    }
    DKV_EXPECT_OK(rv[0]);
    DKV_EXPECT_STATUS(rv[1], rv[0]);
    for (i = 0; i < 3 && rv[0] == DKV_OK && rv[1] == DKV_OK; i++) {
        same_item(&its[0][i], &its[1][i], "get_many");
    }
    for (m = 0; m < 2; m++) {
        rv[m] = dkv_batch(many[m], cl[m], ops, 3);
    }
    DKV_EXPECT_OK(rv[0]);
    DKV_EXPECT_STATUS(rv[1], rv[0]);
    for (i = 0; i < 3; i++) {
        same_result(&many[0][i], &many[1][i], "batch");
    }
    for (m = 0; m < 2; m++) {
        rv[m] = dkv_delete_many(many[m], cl[m], keys, 3, NULL);
    }
    DKV_EXPECT_OK(rv[0]);
    DKV_EXPECT_STATUS(rv[1], rv[0]);
    for (i = 0; i < 3; i++) {
        same_result(&many[0][i], &many[1][i], "delete_many");
    }

    /* The bulk cap, in both modes. */
    huge = apr_pcalloc(pool, (DKV_MAX_BULK + 1) * sizeof(*huge));
    for (i = 0; i <= DKV_MAX_BULK; i++) {
        huge[i].key = "h";
        huge[i].key_len = 1;
        huge[i].value = "";
    }
    for (m = 0; m < 2; m++) {
        DKV_EXPECT_STATUS(dkv_put_many(NULL, cl[m], huge, DKV_MAX_BULK + 1,
                                       NULL), DKV_ETOOLARGE);
        DKV_EXPECT_STATUS(dkv_get_many(&its[m], cl[m], (dkv_key_t *)huge,
                                       DKV_MAX_BULK + 1, NULL, pool),
                          DKV_ETOOLARGE);
    }
    for (m = 0; m < 2; m++) {
        dkv_close(cl[m]);
    }
    dkv_test_node_stop(node, 15, 5000);
    apr_pool_destroy(pool);
}

/* ========================================================= replication */

/* Waits (at most 5 s) until *FIELD of FS reaches N; returns it. */
static int
fs_wait(fsrv_t *fs, const int *field, int n)
{
    int i, v = 0;

    for (i = 0; i < 500; i++) {
        v = fs_get(fs, field);
        if (v >= n) {
            break;
        }
        apr_sleep(apr_time_from_msec(10));
    }
    return v;
}

/* A client given one node learns the others through MEMBERS and, when
 * that node dies, carries on with one of them. */
static void
discovers_members_and_fails_over(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *b = fs_start(FS_NORMAL, pool);
    fsrv_t *a = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    dkv_item_t *item;
    uint64_t rev = 0;

    /* B is at revision 3, A at 1: answers say who served them. */
    fs_put(b, "b1", "x");
    fs_put(b, "b2", "x");
    fs_put(b, "only-b", "here");
    apr_thread_mutex_lock(a->lock);
    a->peers[0] = b->port;
    a->npeers = 1;
    apr_thread_mutex_unlock(a->lock);

    DKV_ASSERT_OK(dkv_open(&c, fs_address(a, pool), &o, pool));
    /* MEMBERS goes out with the handshake, unasked. */
    DKV_EXPECT_INT_EQ(fs_wait(a, &a->members_requests, 1), 1);
    put_str(c, "k", "v");
    DKV_EXPECT_OK(dkv_revision(&rev, c));
    DKV_EXPECT_UINT_EQ(rev, 1);
    DKV_EXPECT_INT_EQ(fs_get(b, &b->connections), 0);

    /* A dies: the client moves to B, which only MEMBERS named. */
    fs_stop(a);
    apr_sleep(apr_time_from_msec(50));
    DKV_EXPECT_OK(dkv_revision(&rev, c));
    DKV_EXPECT_UINT_EQ(rev, 3);
    DKV_EXPECT_OK(dkv_get(&item, c, "only-b", 6, NULL, pool));
    DKV_EXPECT_MEM_EQ(item->value, item->value_len, "here", 4);
    DKV_EXPECT_INT_EQ(fs_get(b, &b->connections), 1);
    /* B does not know MEMBERS (ENOTIMPL): the client carries on. */
    DKV_EXPECT_INT_EQ(fs_get(b, &b->members_requests), 1);
    put_str(c, "k2", "v2");
    DKV_EXPECT_OK(dkv_revision(&rev, c));
    DKV_EXPECT_UINT_EQ(rev, 4);
    dkv_close(c);
    fs_stop(b);
    apr_pool_destroy(pool);
}

/* Without MEMBERS (ENOTIMPL) the list stays the seed list: a node the
 * client was not told about is never tried. */
static void
no_members_no_discovery(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *b = fs_start(FS_NORMAL, pool);
    fsrv_t *a = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    uint64_t rev = 0;

    DKV_ASSERT_OK(dkv_open(&c, fs_address(a, pool), &o, pool));
    DKV_EXPECT_OK(dkv_revision(&rev, c));
    DKV_EXPECT_INT_EQ(fs_get(a, &a->members_requests), 1);
    fs_stop(a);
    apr_sleep(apr_time_from_msec(50));
    DKV_EXPECT_STATUS(dkv_revision(&rev, c), DKV_EUNAVAILABLE);
    DKV_EXPECT_INT_EQ(fs_get(b, &b->connections), 0);
    dkv_close(c);
    fs_stop(b);
    apr_pool_destroy(pool);
}

/* A reconnection starts with the endpoint after the last connection's:
 * a client whose connection to A drops goes to B, then back to A. */
static void
reconnect_moves_to_next_endpoint(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *a = fs_start(FS_NORMAL, pool);
    fsrv_t *b = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    uint64_t rev = 0;
    const char *addr = apr_psprintf(pool, "dkv://127.0.0.1:%u,127.0.0.1:%u"
                                    "/%s", (unsigned)a->port,
                                    (unsigned)b->port, FS_STORE);

    fs_put(b, "b", "1");
    DKV_ASSERT_OK(dkv_open(&c, addr, &o, pool));
    DKV_EXPECT_OK(dkv_revision(&rev, c));
    DKV_EXPECT_UINT_EQ(rev, 0);
    fs_set(a, &a->drop_now, 1);
    apr_sleep(apr_time_from_msec(100));
    DKV_EXPECT_OK(dkv_revision(&rev, c));
    DKV_EXPECT_UINT_EQ(rev, 1);
    DKV_EXPECT_INT_EQ(fs_get(b, &b->connections), 1);
    fs_set(b, &b->drop_now, 1);
    apr_sleep(apr_time_from_msec(100));
    DKV_EXPECT_OK(dkv_revision(&rev, c));
    DKV_EXPECT_UINT_EQ(rev, 0);
    DKV_EXPECT_INT_EQ(fs_get(a, &a->connections), 2);
    dkv_close(c);
    fs_stop(a);
    fs_stop(b);
    apr_pool_destroy(pool);
}

/* serializable_reads sets the header flag on reads, never on writes. */
static void
serializable_flag_on_reads(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    dkv_item_t *item;
    dkv_key_t k = { "k", 1 };
    uint64_t n;
    int64_t v;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        o.serializable_reads = pass;
        DKV_ASSERT_OK(dkv_open(&c, fs_address(fs, pool), &o, pool));
        put_str(c, "k", "v");
        DKV_EXPECT_OK(dkv_get(&item, c, "k", 1, NULL, pool));
        /* The fake node answers these ENOTIMPL: only the flags count. */
        (void)dkv_get_many(&item, c, &k, 1, NULL, pool);
        (void)dkv_count(&n, c, NULL);
        (void)dkv_counter_get(&v, c, "k", 1);
        apr_thread_mutex_lock(fs->lock);
        DKV_EXPECT_UINT_EQ(fs->flags[DKV_MSG_GET],
                           pass ? DKV_PROTO_FLAG_SERIALIZABLE : 0);
        DKV_EXPECT_UINT_EQ(fs->flags[DKV_MSG_GET_MANY],
                           pass ? DKV_PROTO_FLAG_SERIALIZABLE : 0);
        DKV_EXPECT_UINT_EQ(fs->flags[DKV_MSG_COUNT],
                           pass ? DKV_PROTO_FLAG_SERIALIZABLE : 0);
        DKV_EXPECT_UINT_EQ(fs->flags[DKV_MSG_COUNTER_GET],
                           pass ? DKV_PROTO_FLAG_SERIALIZABLE : 0);
        DKV_EXPECT_UINT_EQ(fs->flags[DKV_MSG_PUT], 0);
        DKV_EXPECT_UINT_EQ(fs->flags[DKV_MSG_MEMBERS], 0);
        DKV_EXPECT_UINT_EQ(fs->flags[DKV_MSG_HELLO], 0);
        DKV_EXPECT_INT_EQ(fs->ops[DKV_MSG_GET], pass + 1);
        apr_thread_mutex_unlock(fs->lock);
        dkv_close(c);
        c = NULL;
    }
    fs_stop(fs);
    apr_pool_destroy(pool);
}

/* A write the node answers ETIMEOUT (outcome unknown) comes back as
 * is, sent once; one it answers EUNAVAILABLE (not applied) is sent again
 * after pauses, a bounded number of times, then comes back as is. */
static void
write_outcomes_not_retried(void)
{
    static const dkv_status_t st[] = { DKV_EUNAVAILABLE, DKV_ETIMEOUT };
    apr_pool_t *pool = dkv_test_pool();
    fsrv_t *fs = fs_start(FS_NORMAL, pool);
    dkv_open_opts_t o = quick_opts();
    dkv_client_t *c = NULL;
    dkv_result_t res;
    int i, before, sent;

    DKV_ASSERT_OK(dkv_open(&c, fs_address(fs, pool), &o, pool));
    for (i = 0; i < 2; i++) {
        before = fs_get(fs, &fs->ops[DKV_MSG_PUT]);
        fs_set(fs, &fs->put_status, st[i]);
        DKV_EXPECT_STATUS(dkv_put(&res, c, "k", 1, "v", 1, NULL), st[i]);
        DKV_EXPECT_STATUS(res.status, st[i]);
        DKV_EXPECT_INT_EQ(res.mutated, 0);
        DKV_EXPECT_TRUE(strstr(dkv_last_error(), "no leader") != NULL);
        sent = fs_get(fs, &fs->ops[DKV_MSG_PUT]) - before;
        if (st[i] == DKV_ETIMEOUT) {
            DKV_EXPECT_INT_EQ(sent, 1);
        }
        else {
            DKV_EXPECT_TRUE(sent > 1 && sent <= 13);
        }
    }
    fs_set(fs, &fs->put_status, DKV_OK);
    put_str(c, "k", "v");
    DKV_EXPECT_INT_EQ(fs_get(fs, &fs->connections), 1);
    dkv_close(c);
    fs_stop(fs);
    apr_pool_destroy(pool);
}

/* See testutil.h. */
void
test_remote_register(void)
{
    CU_pSuite s = dkv_test_add_suite("remote", NULL, NULL);

    DKV_TEST_ADD(s, parses_addresses);
    DKV_TEST_ADD(s, open_rejects_bad_address);
    DKV_TEST_ADD(s, refused_is_unavailable);
    DKV_TEST_ADD(s, seed_list_skips_dead_endpoints);
    DKV_TEST_ADD(s, connect_timeout_bounds_silent_endpoint);
    DKV_TEST_ADD(s, handshake_refusals);
    DKV_TEST_ADD(s, timeouts);
    DKV_TEST_ADD(s, requests_and_limits);
    DKV_TEST_ADD(s, reconnects_after_drop);
    DKV_TEST_ADD(s, watch_resumes_after_reconnect);
    DKV_TEST_ADD(s, watch_stop_semantics);
    DKV_TEST_ADD(s, close_fails_inflight);
    DKV_TEST_ADD(s, many_threads_one_handle);
    DKV_TEST_ADD(s, watch_snapshot_cut);
    DKV_TEST_ADD(s, failure_results_from_node);
    DKV_TEST_ADD(s, parity_with_inproc);
    DKV_TEST_ADD(s, discovers_members_and_fails_over);
    DKV_TEST_ADD(s, no_members_no_discovery);
    DKV_TEST_ADD(s, reconnect_moves_to_next_endpoint);
    DKV_TEST_ADD(s, serializable_flag_on_reads);
    DKV_TEST_ADD(s, write_outcomes_not_retried);
}
