/*
 * replica.c -- the replica thread of dkv-node: it orders the store's
 * writes through the Raft group (docs/internals/replication.md).
 *
 * One thread drives the Raft core (src/raft) and is the only writer of
 * the engine.  Each pass it takes what the service queued (writes,
 * linearizable reads, watch controls, closes, the shutdown mark) and what
 * peers sent (through the transport's callback, into an inbox beside the
 * service's write queue), ticks the core on the real clock, turns the
 * pass's writes into ONE proposal (on the leader) or one PROPOSE message
 * to the leader (on a follower), asks ONE read index for the pass's
 * reads, then takes the core's ready and, in ONE engine write context,
 * persists the hard state and the log, applies every committed entry and
 * stores the applied index: one sync.  Then it sends the core's
 * messages, answers the requests of entries this node proposed, delivers
 * the events to the watch hub and hands the reads whose index is applied
 * to the reader threads.
 *
 * Everything here runs on the replica thread except dkv_replica_members
 * (reader threads: under the service's slock), the transport's receive
 * callback (into the inbox, under the write queue's lock) and the
 * snapshot sender threads (which only read the engine and send).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "common/alloc.h"
#include "common/codec.h"
#include "common/log.h"
#include "common/status.h"
#include "client/exec.h"
#include "cluster/transport.h"
#include "node/service-int.h"
#include "raft/raft.h"

/* Node messages on the cluster links (replication.md). */
#define NMSG_RAFT 1
#define NMSG_PROPOSE 2
#define NMSG_REFUSED 3
#define NMSG_SNAP_CHUNK 4
#define NMSG_SNAP_END 5
#define NMSG_RESULT 6
/* Inbox notes of this process (never on the wire): a snapshot sender
 * finished (u8 ok, u32 peer). */
#define NOTE_SNAP_SENT 0x81

/* Entry kinds. */
#define ENTRY_REQUESTS 1
#define ENTRY_EXPIRE 2
#define ENTRY_MEMBER 4           /* a member's address (in the log) */
#define ENTRY_MEMBER_REQ 5       /* a forwarded MEMBER_ADD (PROPOSE only,
                                  * never in the log) */
#define ENTRY_HEADER 29          /* kind, origin, seq, now, max, count */

/* The member table's encoding (meta "members", SNAP_END). */
#define TABLE_VERSION 1
#define MEMBERS_META "members"

#define EXPIRE_CHUNK 1000
#define SNAP_CHUNK_BYTES (1024u * 1024u)
#define SNAP_SEND_TIMEOUT_MS 10000
/* Most readies of the core in one transaction. */
#define MAX_CHAIN 64
/* Compact the log once this many bytes of entries were applied. */
#define COMPACT_BYTES (8u * 1024u * 1024u)
/* How long shutdown waits for proposals in flight. */
#define STOP_WAIT_MS 2000

/* A proposal of this node waiting for its entry to be applied. */
typedef struct prop {
    struct prop *next;
    uint64_t seq;
    uint64_t index;              /* the index it got as leader; 0: sent */
    uint64_t term;               /* the term it was proposed in: the
                                  * leader appends it in that term or
                                  * refuses it */
    int64_t deadline;            /* real ms: outcome unknown after it */
    int expire;                  /* an expiry proposal (no items) */
    dkv_svc_item_t *items;       /* in entry order */
} prop_t;

/* Linearizable reads waiting for their read index, then for it to be
 * applied. */
typedef struct rwait {
    struct rwait *next;
    uint64_t ctx;
    uint64_t index;
    int known;                   /* INDEX is the read index */
    int retry;                   /* ask again (the last ask failed) */
    int64_t deadline;
    dkv_svc_item_t *items;
} rwait_t;

/* A MEMBER_ADD the leader carries out: the address entry, then the
 * learner's conf entry; answered once both are applied. */
typedef struct madd {
    struct madd *next;
    uint32_t origin;             /* the node whose client asked */
    uint64_t seq;                /* its proposal (ORIGIN not this node) */
    dkv_svc_item_t *item;        /* the request (ORIGIN this node) */
    unsigned char *frame;        /* a copy of the request (ORIGIN another
                                  * node: its answer is built from it) */
    size_t len;
    dkv_service_member_t m;      /* HOST dkv_malloc'ed */
    uint64_t term;               /* the term it began in */
    uint64_t addr_index;         /* the address entry; 0: none needed */
    uint64_t conf_index;         /* the learner's entry; 0: none needed */
    int addr_done, conf_done;    /* proposed, or found unneeded */
    int64_t deadline;            /* real ms */
} madd_t;

/* A message from a peer (FROM nonzero) or a note (FROM 0). */
typedef struct inmsg {
    struct inmsg *next;
    uint32_t from;
    unsigned char *buf;
    size_t len;
} inmsg_t;

/* A RESULT message being built, and the peer it goes to. */
typedef struct result {
    dkv_wbuf_t buf;
    uint32_t to;
} result_t;

/* A snapshot on its way to one peer (its own thread). */
typedef struct snapsend {
    struct snapsend *next;
    dkv_replica_t *rep;
    uint32_t to;
    uint64_t id;
    dkv_eng_read_t *read;
    dkv_raft_msg_t msg;
    unsigned char *table;        /* the member table, for SNAP_END */
    size_t table_len;
    apr_thread_t *thread;
    /* The chunk being filled. */
    unsigned char *chunk;
    size_t used;
    uint64_t offset;
    int failed;
} snapsend_t;

struct dkv_replica {
    dkv_service_t *svc;
    apr_pool_t *pool;
    apr_pool_t *apool;           /* one pass's decode and engine scratch */
    apr_pool_t *cpool;           /* a watch control's scratch */
    dkv_raft_t *raft;
    dkv_transport_t *tp;
    uint32_t self;
    int group;                   /* several nodes (a transport) */
    /* The member table: every known member's address (--peers, the
     * persisted table, member entries, snapshots).  Changed by the
     * replica thread only, under svc->slock; hosts dkv_malloc'ed. */
    dkv_service_member_t *members;
    size_t nmembers, capmembers;
    dkv_raft_conf_t conf;        /* the membership (under svc->slock) */
    madd_t *madds;               /* MEMBER_ADDs under way (leader) */
    int64_t learner_since;       /* real ms a learner was first seen */
    int64_t tick_ms;
    int64_t election_ms;
    uint64_t snapshot_entries;
    int64_t request_timeout;
    const char *snap_path;

    /* The inbox (under svc->wq.lock). */
    inmsg_t *in_head, *in_tail;

    /* The loop's own state. */
    uint64_t next_seq;
    uint64_t next_ctx;
    prop_t *props;
    rwait_t *rwaits;
    dkv_svc_item_t *held, **held_tail;   /* writes waiting for a leader */
    int64_t held_deadline;
    dkv_svc_item_t *done, **done_tail;   /* answered by this pass */
    result_t *results;           /* RESULT messages of this pass */
    size_t nresults, capresults;
    uint64_t applied;
    uint64_t compacted;
    uint64_t compact_to;         /* log entries to delete in the next pass */
    uint64_t applied_bytes;      /* entry bytes applied since compaction */
    int64_t store_now;           /* time of the last applied entry */
    int64_t next_tick;
    dkv_raft_role_t role;
    uint32_t leader;             /* also read by members (under slock) */
    uint64_t term;
    int64_t leader_since;        /* real ms */
    int expire_inflight;
    int64_t next_check;          /* store ms: look for due expiries */
    uint64_t rng[2];             /* the core's randomness */

    /* A snapshot being received. */
    apr_file_t *snap_file;
    uint64_t snap_id;
    uint64_t snap_got;
    int snap_ready;              /* the file is complete */
    unsigned char *snap_table;   /* its member table (dkv_malloc'ed) */
    size_t snap_table_len;

    snapsend_t *sending;
    uint64_t next_snap_id;
    int stopping;
    int64_t shut_deadline;       /* real ms: shutdown's wait ends */

    /* The numbers of dkv_replica_stats (under svc->slock). */
    dkv_replica_stats_t st;
};

static int64_t
real_ms(void)
{
    return (int64_t)(apr_time_now() / 1000);
}

/* The core's randomness: xorshift128+ seeded from the system. */
static uint32_t
rep_random(void *baton)
{
    dkv_replica_t *rep = baton;
    uint64_t s1 = rep->rng[0];
    const uint64_t s0 = rep->rng[1];

    rep->rng[0] = s0;
    s1 ^= s1 << 23;
    rep->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return (uint32_t)((rep->rng[1] + s0) >> 32);
}

/* Stops the process: a committed entry could not be applied here, and
 * going on would make this replica diverge from the others. */
static void
fatal(const char *what, dkv_status_t rv)
{
    dkv_log(DKV_LOG_ERROR, "replica: %s: %s (%s); stopping so this node "
            "does not diverge from the store -- it resumes from its log "
            "when restarted after the cause is fixed", what,
            dkv_last_error()[0] ? dkv_last_error() : "no detail",
            dkv_strerror(rv));
    exit(1);
}

/* ======================================================== member table */

static void
put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static uint16_t
get_be16(const unsigned char *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

/* The index of member ID in the table, or -1. */
static long
table_find(const dkv_replica_t *rep, uint32_t id)
{
    size_t i;

    for (i = 0; i < rep->nmembers; i++) {
        if (rep->members[i].id == id) {
            return (long)i;
        }
    }
    return -1;
}

/* Sets member ID's address in the table (under slock).  Returns 1 when
 * the table changed, 0 when it had that address, -1 out of memory. */
static int
table_set(dkv_replica_t *rep, uint32_t id, const char *host,
          unsigned cluster_port, unsigned client_port)
{
    long at = table_find(rep, id);
    dkv_service_member_t *m;
    char *h;

    if (at >= 0) {
        m = &rep->members[at];
        if (strcmp(m->host, host) == 0 && m->cluster_port == cluster_port
            && m->client_port == client_port) {
            return 0;
        }
    }
    else if (rep->nmembers == rep->capmembers) {
        size_t cap = rep->capmembers ? rep->capmembers * 2 : 8;
        dkv_service_member_t *a;

        /* Under the lock: a reader may be copying the table. */
        apr_thread_mutex_lock(rep->svc->slock);
        a = dkv_realloc(rep->members, cap * sizeof(*a));
        if (a != NULL) {
            rep->members = a;
            rep->capmembers = cap;
        }
        apr_thread_mutex_unlock(rep->svc->slock);
        if (a == NULL) {
            return -1;
        }
    }
    if ((h = dkv_strdup(host)) == NULL) {
        return -1;
    }
    apr_thread_mutex_lock(rep->svc->slock);
    if (at < 0) {
        m = &rep->members[rep->nmembers++];
        m->host = NULL;
    }
    else {
        m = &rep->members[at];
    }
    m->id = id;
    dkv_free((char *)(uintptr_t)m->host);
    m->host = h;
    m->cluster_port = cluster_port;
    m->client_port = client_port;
    apr_thread_mutex_unlock(rep->svc->slock);
    return 1;
}

/* The table, encoded (dkv_malloc'ed *OUT): u8 version, u32 count, then
 * per member u32 id, u16 cluster port, u16 client port, u16 host length,
 * the host. */
static dkv_status_t
table_encode(unsigned char **out, size_t *len, const dkv_replica_t *rep)
{
    size_t i, size = 5;
    unsigned char *buf, *p;

    for (i = 0; i < rep->nmembers; i++) {
        size += 10 + strlen(rep->members[i].host);
    }
    if ((buf = dkv_malloc(size)) == NULL) {
        return APR_ENOMEM;
    }
    buf[0] = TABLE_VERSION;
    dkv_put_be32(buf + 1, (uint32_t)rep->nmembers);
    p = buf + 5;
    for (i = 0; i < rep->nmembers; i++) {
        const dkv_service_member_t *m = &rep->members[i];
        size_t hl = strlen(m->host);

        dkv_put_be32(p, m->id);
        put_be16(p + 4, (uint16_t)m->cluster_port);
        put_be16(p + 6, (uint16_t)m->client_port);
        put_be16(p + 8, (uint16_t)hl);
        memcpy(p + 10, m->host, hl);
        p += 10 + hl;
    }
    *out = buf;
    *len = size;
    return DKV_OK;
}

/* Reads one member address at P (u32 id, u16 cluster port, u16 client
 * port, u16 host length, host) into *M with the host in HOST; the size
 * read, or 0 when malformed. */
static size_t
member_parse(dkv_service_member_t *m, char host[256],
             const unsigned char *p, size_t len)
{
    size_t hl;

    if (len < 10) {
        return 0;
    }
    hl = get_be16(p + 8);
    if (hl == 0 || hl > 255 || len - 10 < hl) {
        return 0;
    }
    m->id = dkv_get_be32(p);
    m->cluster_port = get_be16(p + 4);
    m->client_port = get_be16(p + 6);
    memcpy(host, p + 10, hl);
    host[hl] = '\0';
    m->host = host;
    if (m->id == 0 || m->cluster_port == 0 || memchr(host, '\0', hl)) {
        return 0;
    }
    return 10 + hl;
}

/* Gives the transport peer M's address (not this node's). */
static void
peer_learn(dkv_replica_t *rep, const dkv_service_member_t *m)
{
    if (rep->tp != NULL && m->id != rep->self
        && dkv_transport_add_peer(rep->tp, m->id, m->host, m->cluster_port)
           != DKV_OK) {
        dkv_log(DKV_LOG_WARN, "replica: cannot reach node %u at %s:%u: %s",
                (unsigned)m->id, m->host, m->cluster_port, dkv_last_error());
    }
}

/* Merges the encoded table DATA into the table (its addresses win) and
 * tells the transport; a malformed DATA changes nothing (it is checked
 * whole first).  Returns the members changed, or -1 when DATA is
 * malformed or memory ran out. */
static long
table_merge(dkv_replica_t *rep, const unsigned char *data, size_t len)
{
    uint32_t n, i;
    size_t off;
    long changed = 0;
    int pass;

    if (len < 5 || data[0] != TABLE_VERSION) {
        return -1;
    }
    n = dkv_get_be32(data + 1);
    for (pass = 0; pass < 2; pass++) {
        for (i = 0, off = 5; i < n; i++) {
            dkv_service_member_t m;
            char host[256];
            size_t used = member_parse(&m, host, data + off, len - off);
            int r;

            if (used == 0) {
                return -1;
            }
            off += used;
            if (pass == 0) {
                continue;
            }
            r = table_set(rep, m.id, m.host, m.cluster_port, m.client_port);
            if (r < 0) {
                return -1;
            }
            if (r > 0) {
                changed++;
                peer_learn(rep, &m);
            }
        }
        if (off != len) {
            return -1;
        }
    }
    return changed;
}

/* Stores the table in W (meta MEMBERS_META); a failure stops the node. */
static void
table_persist(dkv_replica_t *rep, dkv_eng_write_t *w)
{
    unsigned char *enc = NULL;
    size_t len = 0;
    dkv_status_t rv = table_encode(&enc, &len, rep);

    if (rv == DKV_OK) {
        rv = dkv_engine_meta_put(w, MEMBERS_META, enc, len);
    }
    dkv_free(enc);
    if (rv != DKV_OK) {
        fatal("cannot store the member table", rv);
    }
}

/* 1 when ID is in CONF as a voter (2: as a learner), else 0. */
static int
conf_role(const dkv_raft_conf_t *conf, uint32_t id)
{
    size_t i;

    for (i = 0; i < conf->nvoters; i++) {
        if (conf->voters[i] == id) {
            return 1;
        }
    }
    for (i = 0; i < conf->nlearners; i++) {
        if (conf->learners[i] == id) {
            return 2;
        }
    }
    return 0;
}

/* ================================================================ inbox */

static void
inbox_push(dkv_replica_t *rep, uint32_t from, unsigned char *buf,
           size_t len)
{
    dkv_service_t *svc = rep->svc;
    inmsg_t *m = dkv_malloc(sizeof(*m));

    if (m == NULL) {
        dkv_free(buf);
        return;
    }
    m->next = NULL;
    m->from = from;
    m->buf = buf;
    m->len = len;
    apr_thread_mutex_lock(svc->wq.lock);
    if (rep->in_tail != NULL) {
        rep->in_tail->next = m;
    }
    else {
        rep->in_head = m;
    }
    rep->in_tail = m;
    apr_thread_cond_signal(svc->wq.cond);
    apr_thread_mutex_unlock(svc->wq.lock);
}

/* The transport's callback (a reader thread). */
static void
on_message(void *baton, uint32_t from, unsigned char *msg, size_t len)
{
    if (from == 0 || len == 0) {
        dkv_free(msg);
        return;
    }
    inbox_push(baton, from, msg, len);
}

/* ============================================================== sending */

/* Sends node message TYPE + BODY to peer TO (copies BODY). */
static void
send_node(dkv_replica_t *rep, uint32_t to, unsigned type,
          const unsigned char *body, size_t len)
{
    unsigned char *buf;

    if (rep->tp == NULL) {
        return;
    }
    buf = dkv_malloc(len + 1);
    if (buf == NULL) {
        return;
    }
    buf[0] = (unsigned char)type;
    if (len > 0) {
        memcpy(buf + 1, body, len);
    }
    (void)dkv_transport_send(rep->tp, to, buf, len + 1);
}

/* ============================================================ answering */

static void
done_add(dkv_replica_t *rep, dkv_svc_item_t *it)
{
    it->next = NULL;
    *rep->done_tail = it;
    rep->done_tail = &it->next;
}

/* Answers every item of LIST with RV and MSG. */
static void
fail_items(dkv_replica_t *rep, dkv_svc_item_t *list, dkv_status_t rv,
           const char *msg)
{
    dkv_svc_item_t *it;
    dkv_request_t req;

    while ((it = list) != NULL) {
        list = it->next;
        if (dkv_svc_decode(&req, it, rep->apool) == DKV_OK) {
            dkv_error_set(rv, "%s", msg);
            dkv_svc_set_status(it, rv, rep->apool);
        }
        done_add(rep, it);
    }
}

/* Sends every answer of this pass, one buffer per run of answers to
 * the same connection, and recycles the items. */
static void
answer_done(dkv_replica_t *rep)
{
    dkv_svc_out_t out;
    dkv_svc_item_t *it;
    uint64_t n = 0;

    /* Counted before any answer leaves. */
    for (it = rep->done; it != NULL; it = it->next) {
        n++;
    }
    if (n > 0) {
        apr_thread_mutex_lock(rep->svc->slock);
        rep->svc->stats.writes += n;
        apr_thread_mutex_unlock(rep->svc->slock);
    }
    memset(&out, 0, sizeof(out));
    while ((it = rep->done) != NULL) {
        rep->done = it->next;
        dkv_svc_out_add(rep->svc, &out, it);
        dkv_svc_item_put(rep->svc, it);
    }
    rep->done_tail = &rep->done;
    dkv_svc_out_flush(rep->svc, &out);
}

/* ============================================================ proposals */

/* Builds an entry of KIND with the frames of ITEMS (may be NULL). */
static unsigned char *
entry_build(size_t *len, dkv_replica_t *rep, unsigned kind, uint64_t seq,
            dkv_svc_item_t *items)
{
    dkv_svc_item_t *it;
    size_t size = ENTRY_HEADER, n = 0;
    unsigned char *buf, *p;

    for (it = items; it != NULL; it = it->next) {
        size += 4 + it->len;
        n++;
    }
    buf = dkv_malloc(size);
    if (buf == NULL) {
        return NULL;
    }
    buf[0] = (unsigned char)kind;
    dkv_put_be32(buf + 1, rep->self);
    dkv_put_be64(buf + 5, seq);
    dkv_put_be64s(buf + 13, dkv_svc_now(rep->svc));
    dkv_put_be32(buf + 21, (uint32_t)rep->svc->max_value);
    dkv_put_be32(buf + 25, (uint32_t)n);
    p = buf + ENTRY_HEADER;
    for (it = items; it != NULL; it = it->next) {
        dkv_put_be32(p, (uint32_t)it->len);
        memcpy(p + 4, it->frame, it->len);
        p += 4 + it->len;
    }
    *len = size;
    return buf;
}

static prop_t *
prop_new(dkv_replica_t *rep, dkv_svc_item_t *items)
{
    prop_t *pr = dkv_calloc(1, sizeof(*pr));

    if (pr == NULL) {
        return NULL;
    }
    pr->seq = ++rep->next_seq;
    pr->term = rep->term;
    pr->items = items;
    pr->deadline = real_ms() + rep->request_timeout;
    pr->next = rep->props;
    rep->props = pr;
    return pr;
}

/* Unlinks and frees PR (its items are the caller's). */
static void
prop_free(dkv_replica_t *rep, prop_t *pr)
{
    prop_t **pp;

    for (pp = &rep->props; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == pr) {
            *pp = pr->next;
            break;
        }
    }
    if (pr->expire) {
        rep->expire_inflight = 0;
    }
    dkv_free(pr);
}

static prop_t *
prop_find(dkv_replica_t *rep, uint64_t seq)
{
    prop_t *pr;

    for (pr = rep->props; pr != NULL; pr = pr->next) {
        if (pr->seq == seq) {
            return pr;
        }
    }
    return NULL;
}

/* Fails proposal PR (definitely not applied when RV is EUNAVAILABLE). */
static void
prop_fail(dkv_replica_t *rep, prop_t *pr, dkv_status_t rv,
          const char *msg)
{
    fail_items(rep, pr->items, rv, msg);
    pr->items = NULL;
    prop_free(rep, pr);
}

/* Proposes entry DATA in the core (this node leads) and counts it. */
static dkv_status_t
rep_propose(uint64_t *index, dkv_replica_t *rep, const void *data,
            size_t len)
{
    dkv_status_t rv = dkv_raft_propose(index, rep->raft, data, len);

    if (rv == DKV_OK) {
        apr_thread_mutex_lock(rep->svc->slock);
        rep->st.proposals++;
        apr_thread_mutex_unlock(rep->svc->slock);
    }
    return rv;
}

/* Proposes (leader) or forwards (follower) the writes ITEMS as one
 * entry; with no leader they are held. */
static void
propose_items(dkv_replica_t *rep, dkv_svc_item_t *items)
{
    unsigned char *data;
    size_t len = 0;
    prop_t *pr;
    dkv_svc_item_t *last;

    if (items == NULL) {
        return;
    }
    if (rep->leader == 0 || (rep->leader != rep->self && rep->tp == NULL)) {
        if (rep->held == NULL) {
            rep->held_deadline = real_ms() + 3 * rep->election_ms;
        }
        *rep->held_tail = items;
        for (last = items; last->next != NULL; last = last->next) {
        }
        rep->held_tail = &last->next;
        return;
    }
    if (rep->leader != rep->self) {
        /* Answered from the leader's RESULT without being decoded here:
         * note their keys for this node's metrics now. */
        for (last = items; last != NULL; last = last->next) {
            dkv_svc_note_keys(last, rep->apool);
        }
    }
    pr = prop_new(rep, items);
    data = pr ? entry_build(&len, rep, ENTRY_REQUESTS, pr->seq, items)
              : NULL;
    if (data == NULL) {
        if (pr != NULL) {
            pr->items = NULL;
            prop_free(rep, pr);
        }
        fail_items(rep, items, APR_ENOMEM, "out of memory");
        return;
    }
    if (rep->leader == rep->self) {
        if (rep_propose(&pr->index, rep, data, len) != DKV_OK) {
            prop_fail(rep, pr, DKV_EUNAVAILABLE, "the node lost its "
                      "leadership; the write was not applied (retry)");
        }
    }
    else {
        unsigned char *msg = dkv_malloc(8 + len);

        if (msg != NULL) {
            dkv_put_be64(msg, pr->term);
            memcpy(msg + 8, data, len);
            send_node(rep, rep->leader, NMSG_PROPOSE, msg, 8 + len);
            dkv_free(msg);
        }
    }
    dkv_free(data);
}

static dkv_status_t madd_remote(dkv_replica_t *rep, uint32_t from,
                                const unsigned char *data, size_t len);

/* A PROPOSE from peer FROM (the term it was sent in, then the entry):
 * proposed as is when this node leads in that very term, else refused.
 * So an entry forwarded in term T is appended in T or never, and its
 * origin knows it is lost once it applies an entry of a later term. */
static void
on_propose(dkv_replica_t *rep, uint32_t from, const unsigned char *msg,
           size_t mlen)
{
    const unsigned char *data = msg + 8;
    size_t len = mlen - 8;
    unsigned char seq[8];

    if (mlen < 8 + ENTRY_HEADER
        || (data[0] != ENTRY_REQUESTS && data[0] != ENTRY_MEMBER_REQ)
        || dkv_get_be32(data + 1) != from) {
        dkv_log(DKV_LOG_WARN, "replica: malformed proposal from node %u",
                (unsigned)from);
        return;
    }
    if (dkv_get_be64(msg) == rep->term && rep->leader == rep->self) {
        if (data[0] == ENTRY_MEMBER_REQ) {
            if (madd_remote(rep, from, data, len) == DKV_OK) {
                return;
            }
        }
        else if (rep_propose(NULL, rep, data, len) == DKV_OK) {
            return;
        }
    }
    memcpy(seq, data + 5, 8);
    send_node(rep, from, NMSG_REFUSED, seq, 8);
}

/* The leader proposes expiry when something is due (one at a time, and
 * not in a new leader's first election timeout: a lease is never cut
 * short by a leader change). */
static void
maybe_expire(dkv_replica_t *rep)
{
    dkv_service_t *svc = rep->svc;
    int64_t now = dkv_svc_now(svc), next;
    dkv_eng_read_t *r;
    unsigned char *data;
    size_t len;
    prop_t *pr;

    if (rep->leader != rep->self || rep->expire_inflight || svc->shutting
        || now < rep->next_check) {
        return;
    }
    if (rep->group && real_ms() < rep->leader_since + rep->election_ms) {
        return;
    }
    rep->next_check = now + svc->interval;
    if (dkv_engine_read_begin(&r, svc->engine, now) != DKV_OK) {
        return;
    }
    next = dkv_engine_next_expiry(r);
    dkv_engine_read_end(r);
    if (next == 0) {
        return;
    }
    if (next > now) {
        if (next < rep->next_check) {
            rep->next_check = next;
        }
        return;
    }
    pr = prop_new(rep, NULL);
    data = pr ? entry_build(&len, rep, ENTRY_EXPIRE, pr->seq, NULL) : NULL;
    if (data == NULL) {
        if (pr != NULL) {
            prop_free(rep, pr);
        }
        return;
    }
    pr->expire = 1;
    rep->expire_inflight = 1;
    if (rep_propose(&pr->index, rep, data, len) != DKV_OK) {
        prop_free(rep, pr);
    }
    dkv_free(data);
}

/* ================================================================ apply */

/* The leader answers another node's entry for it (RESULT: u64 seq, u32
 * count, then the response frames): that node can answer its clients
 * as soon as the leader applied, without waiting to learn the commit and
 * apply the entry itself.  The answers are the ones it would compute:
 * apply is deterministic.  Returns the buffer to add the frames to. */
static dkv_wbuf_t *
result_begin(dkv_replica_t *rep, uint32_t to, uint64_t seq, uint32_t count)
{
    unsigned char hdr[13];
    dkv_wbuf_t *b;

    if (rep->nresults == rep->capresults) {
        size_t cap = rep->capresults ? rep->capresults * 2 : 16;
        result_t *r = dkv_realloc(rep->results, cap * sizeof(*r));

        if (r == NULL) {
            return NULL;
        }
        rep->results = r;
        rep->capresults = cap;
    }
    rep->results[rep->nresults].to = to;
    b = &rep->results[rep->nresults++].buf;
    dkv_wbuf_init(b, 0);
    hdr[0] = NMSG_RESULT;
    dkv_put_be64(hdr + 1, seq);
    dkv_put_be32(hdr + 9, count);
    dkv_wbuf_append(b, hdr, sizeof(hdr));
    return b;
}

/* Forgets the RESULT being built (the origin answers from its apply). */
static void
result_drop(dkv_replica_t *rep)
{
    dkv_wbuf_free(&rep->results[--rep->nresults].buf);
}

/* Sends the pass's RESULT messages (after its commit). */
static void
results_send(dkv_replica_t *rep)
{
    size_t i;

    for (i = 0; i < rep->nresults; i++) {
        dkv_wbuf_t *b = &rep->results[i].buf;

        if (rep->tp != NULL && b->failed == DKV_OK) {
            (void)dkv_transport_send(rep->tp, rep->results[i].to, b->data,
                                     b->len);
            b->data = NULL;
        }
        dkv_wbuf_free(b);
    }
    rep->nresults = 0;
}

/* A RESULT from the leader: this node's clients get their answers now
 * (when the proposal is still waiting and the answers match it). */
static void
on_result(dkv_replica_t *rep, const unsigned char *p, size_t len)
{
    dkv_service_t *svc = rep->svc;
    prop_t *pr;
    dkv_svc_item_t *it;
    const unsigned char *q, *end = p + len;
    uint32_t count, n = 0;

    if (len < 12) {
        return;
    }
    pr = prop_find(rep, dkv_get_be64(p));
    count = dkv_get_be32(p + 8);
    if (pr == NULL || pr->expire) {
        return;
    }
    /* Check every frame first: all or nothing. */
    for (q = p + 12, it = pr->items; it != NULL; it = it->next, n++) {
        dkv_frame_t fr;
        size_t size;

        if (dkv_proto_frame_parse(&fr, &size, q, (size_t)(end - q),
                                  0xFFFFFFFFu) != DKV_OK) {
            return;
        }
        q += size;
    }
    if (n != count || q != end) {
        return;
    }
    apr_thread_mutex_lock(svc->slock);
    svc->stats.writes += n;
    apr_thread_mutex_unlock(svc->slock);
    for (q = p + 12; (it = pr->items) != NULL;) {
        dkv_frame_t fr;
        dkv_wbuf_t out;
        size_t size;

        (void)dkv_proto_frame_parse(&fr, &size, q, (size_t)(end - q),
                                    0xFFFFFFFFu);
        if (it->received != 0 && svc->metrics != NULL) {
            /* The response's status is the body's first u16. */
            it->res.status = fr.body_len < 2 ? DKV_EUNAVAILABLE
                : dkv_proto_status_from_wire(
                      (uint16_t)(fr.body[0] << 8 | fr.body[1]));
            dkv_svc_metrics_count(svc, it);
        }
        dkv_wbuf_init(&out, 0);
        dkv_wbuf_append(&out, q, size);
        q += size;
        pr->items = it->next;
        if (out.failed == DKV_OK) {
            svc->send(svc->baton, it->conn, DKV_SERVICE_RESPONSE, 0, &out);
        }
        else {
            dkv_wbuf_free(&out);
        }
        dkv_svc_item_put(svc, it);
    }
    prop_free(rep, pr);
}

static void apply_member(dkv_replica_t *rep, dkv_eng_write_t *w,
                         uint64_t index, const unsigned char *p,
                         const unsigned char *end);

/* Applies committed entry E in W. */
static void
apply_entry(dkv_replica_t *rep, dkv_eng_write_t *w,
            const dkv_raft_entry_t *e)
{
    dkv_service_t *svc = rep->svc;
    const unsigned char *p = e->data, *end = e->data;
    unsigned kind;
    uint32_t origin, count, i;
    uint64_t seq;
    int64_t now;
    size_t max_value;
    prop_t *pr = NULL, *other, *next;
    dkv_svc_item_t *it;
    dkv_status_t rv;

    if (e->type != DKV_RAFT_ENTRY_NORMAL || e->len == 0) {
        goto others;
    }
    end = p + e->len;
    if (e->len < ENTRY_HEADER) {
        dkv_log(DKV_LOG_ERROR, "replica: entry %llu is malformed; skipped",
                (unsigned long long)e->index);
        goto others;
    }
    kind = p[0];
    origin = dkv_get_be32(p + 1);
    seq = dkv_get_be64(p + 5);
    now = dkv_get_be64s(p + 13);
    max_value = dkv_get_be32(p + 21);
    count = dkv_get_be32(p + 25);
    p += ENTRY_HEADER;
    if (now < rep->store_now) {
        now = rep->store_now;
    }
    rep->store_now = now;
    dkv_engine_write_set_now(w, now);
    if (origin == rep->self) {
        pr = prop_find(rep, seq);
    }
    if (kind == ENTRY_EXPIRE) {
        uint64_t expired = 0;
        int more = 0;

        rv = dkv_engine_expire_due(&expired, &more, w, EXPIRE_CHUNK);
        if (!dkv_exec_is_logical(rv)) {
            fatal("cannot apply an expiry", rv);
        }
        if (more) {
            rep->next_check = 0;
        }
        apr_thread_mutex_lock(svc->slock);
        svc->stats.expired += expired;
        apr_thread_mutex_unlock(svc->slock);
    }
    else if (kind == ENTRY_MEMBER) {
        apply_member(rep, w, e->index, p, end);
    }
    else if (kind == ENTRY_REQUESTS) {
        dkv_svc_item_t *mine = pr != NULL ? pr->items : NULL;
        dkv_wbuf_t *result = NULL;

        if (origin != rep->self && origin != 0
            && rep->role == DKV_RAFT_LEADER) {
            result = result_begin(rep, origin, seq, count);
        }

        apr_thread_mutex_lock(svc->slock);
        if (count > svc->stats.largest) {
            svc->stats.largest = count;
        }
        apr_thread_mutex_unlock(svc->slock);

        for (i = 0; i < count; i++) {
            dkv_svc_item_t tmp;
            dkv_request_t req;
            uint32_t flen;

            if (end - p < 4 || (size_t)(end - p - 4) < dkv_get_be32(p)) {
                dkv_log(DKV_LOG_ERROR, "replica: entry %llu is truncated",
                        (unsigned long long)e->index);
                break;
            }
            flen = dkv_get_be32(p);
            if (mine != NULL) {
                it = mine;
                mine = mine->next;
            }
            else {
                memset(&tmp, 0, sizeof(tmp));
                tmp.kind = DKV_SVC_REQUEST;
                tmp.frame = (unsigned char *)(uintptr_t)(p + 4);
                tmp.len = flen;
                it = &tmp;
            }
            p += 4 + flen;
            if (dkv_svc_decode(&req, it, rep->apool) != DKV_OK) {
                if (result != NULL
                    && dkv_proto_response_encode(result, &it->res)
                       != DKV_OK) {
                    result_drop(rep);
                    result = NULL;
                }
                continue;
            }
            dkv_error_clear();
            rv = dkv_svc_run_write(svc, w, &req, &it->res, max_value,
                                   rep->apool);
            if (!dkv_exec_is_logical(rv)) {
                fatal("cannot apply a committed write", rv);
            }
            dkv_svc_set_status(it, rv, rep->apool);
            if (result != NULL
                && dkv_proto_response_encode(result, &it->res) != DKV_OK) {
                result_drop(rep);
                result = NULL;
            }
        }
        if (result != NULL && i != count) {
            result_drop(rep);
        }
    }
    if (pr != NULL) {
        dkv_svc_item_t *list = pr->items;

        pr->items = NULL;
        while ((it = list) != NULL) {
            list = it->next;
            done_add(rep, it);
        }
        prop_free(rep, pr);
    }
others:
    /* A proposal that got this index but is not this entry was
     * overwritten; one made in an earlier term than this entry's was
     * appended in its own term or never, and every entry of that term
     * that commits comes before this one: neither ever commits. */
    for (other = rep->props; other != NULL; other = next) {
        next = other->next;
        if (other->index == e->index || other->term < e->term) {
            prop_fail(rep, other, DKV_EUNAVAILABLE, "the store's leader "
                      "changed before the write was committed; it was not "
                      "applied (retry)");
        }
    }
}

/* ================================================================ disk */

/* Commits W (with APPLIED as its applied index) and counts the commit
 * and the time it took (the sync) for dkv_replica_stats. */
static dkv_status_t
commit_timed(dkv_replica_t *rep, dkv_eng_write_t *w, uint64_t applied)
{
    apr_time_t t0 = apr_time_now();
    dkv_status_t rv = dkv_engine_write_commit(w, applied);
    apr_time_t t1 = apr_time_now();

    apr_thread_mutex_lock(rep->svc->slock);
    rep->st.fsyncs++;
    rep->st.fsync_us += t1 > t0 ? (uint64_t)(t1 - t0) : 0;
    apr_thread_mutex_unlock(rep->svc->slock);
    return rv;
}

/* =========================================================== membership */

/* Answers this node's request IT with RV (MSG its message). */
static void
item_answer(dkv_replica_t *rep, dkv_svc_item_t *it, dkv_status_t rv,
            const char *msg)
{
    dkv_request_t req;

    if (dkv_svc_decode(&req, it, rep->apool) == DKV_OK) {
        if (rv != DKV_OK) {
            dkv_error_set(rv, "%s", msg);
        }
        else {
            dkv_error_clear();
        }
        dkv_svc_set_status(it, rv, rep->apool);
    }
    done_add(rep, it);
}

static void
madd_free(dkv_replica_t *rep, madd_t *j)
{
    madd_t **pp;

    for (pp = &rep->madds; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            break;
        }
    }
    dkv_free((char *)(uintptr_t)j->m.host);
    dkv_free(j->frame);
    dkv_free(j);
}

/* Answers MEMBER_ADD J with RV (MSG its message) and forgets it: this
 * node's client at once, another node's through a RESULT. */
static void
madd_answer(dkv_replica_t *rep, madd_t *j, dkv_status_t rv,
            const char *msg)
{
    if (j->item != NULL) {
        item_answer(rep, j->item, rv, msg);
        j->item = NULL;
    }
    else if (j->frame != NULL) {
        dkv_svc_item_t tmp;
        dkv_request_t req;
        dkv_wbuf_t *b;

        memset(&tmp, 0, sizeof(tmp));
        tmp.kind = DKV_SVC_REQUEST;
        tmp.frame = j->frame;
        tmp.len = j->len;
        if (dkv_svc_decode(&req, &tmp, rep->apool) == DKV_OK) {
            if (rv != DKV_OK) {
                dkv_error_set(rv, "%s", msg);
            }
            else {
                dkv_error_clear();
            }
            dkv_svc_set_status(&tmp, rv, rep->apool);
        }
        b = result_begin(rep, j->origin, j->seq, 1);
        if (b != NULL && dkv_proto_response_encode(b, &tmp.res) != DKV_OK) {
            result_drop(rep);
        }
        results_send(rep);
    }
    madd_free(rep, j);
}

/* A MEMBER_ADD to carry out here (the leader): REQ from node ORIGIN,
 * this node's request IT, or another node's FRAME (LEN bytes, copied)
 * of its proposal SEQ. */
static madd_t *
madd_new(dkv_replica_t *rep, uint32_t origin, uint64_t seq,
         dkv_svc_item_t *it, const unsigned char *frame, size_t len)
{
    madd_t *j = dkv_calloc(1, sizeof(*j)), **pp;

    if (j == NULL) {
        return NULL;
    }
    if (frame != NULL) {
        j->frame = dkv_malloc(len);
        if (j->frame == NULL) {
            dkv_free(j);
            return NULL;
        }
        memcpy(j->frame, frame, len);
        j->len = len;
    }
    j->origin = origin;
    j->seq = seq;
    j->item = it;
    j->term = rep->term;
    j->deadline = real_ms() + rep->request_timeout;
    for (pp = &rep->madds; *pp != NULL; pp = &(*pp)->next) {
    }
    *pp = j;
    return j;
}

/* Takes the new member's address from REQ; 0 when it is unusable. */
static int
madd_member(madd_t *j, const dkv_request_t *req)
{
    if (req->member_id == 0 || req->member_host == NULL
        || req->member_host[0] == '\0' || strlen(req->member_host) > 255
        || req->member_cluster_port == 0) {
        return 0;
    }
    j->m.id = req->member_id;
    j->m.host = dkv_strdup(req->member_host);
    j->m.cluster_port = req->member_cluster_port;
    j->m.client_port = req->member_client_port;
    return j->m.host != NULL;
}

/* A MEMBER_ADD forwarded by node FROM (entry DATA of kind
 * ENTRY_MEMBER_REQ with its client's frame): carried out here.  Returns
 * DKV_OK, or a failure (the proposal is refused). */
static dkv_status_t
madd_remote(dkv_replica_t *rep, uint32_t from, const unsigned char *data,
            size_t len)
{
    dkv_svc_item_t tmp;
    dkv_request_t req;
    size_t flen;
    madd_t *j;

    if (len < ENTRY_HEADER + 4 || dkv_get_be32(data + 25) != 1) {
        return DKV_EINVAL;
    }
    flen = dkv_get_be32(data + ENTRY_HEADER);
    if (flen != len - ENTRY_HEADER - 4) {
        return DKV_EINVAL;
    }
    j = madd_new(rep, from, dkv_get_be64(data + 5), NULL,
                 data + ENTRY_HEADER + 4, flen);
    if (j == NULL) {
        return APR_ENOMEM;
    }
    memset(&tmp, 0, sizeof(tmp));
    tmp.kind = DKV_SVC_REQUEST;
    tmp.frame = j->frame;
    tmp.len = j->len;
    if (dkv_svc_decode(&req, &tmp, rep->apool) != DKV_OK
        || req.op != DKV_MSG_MEMBER_ADD || !madd_member(j, &req)) {
        madd_answer(rep, j, DKV_EINVAL, "malformed MEMBER_ADD");
    }
    return DKV_OK;
}

/* A MEMBER_ADD request of this node's client: carried out here on the
 * leader, forwarded to it on a follower. */
static void
member_item(dkv_replica_t *rep, dkv_svc_item_t *it)
{
    dkv_request_t req;
    unsigned char *data, *msg;
    size_t len = 0;
    prop_t *pr;
    madd_t *j;

    if (!rep->group) {
        item_answer(rep, it, DKV_ENOTIMPL, "this store was started without "
                    "--peers (a store of one node cannot grow)");
        return;
    }
    if (dkv_svc_decode(&req, it, rep->apool) != DKV_OK) {
        done_add(rep, it);             /* its answer is the failure */
        return;
    }
    if (rep->leader == 0 || rep->stopping) {
        item_answer(rep, it, DKV_EUNAVAILABLE, "the store has no leader "
                    "now; the member was not added (retry)");
        return;
    }
    if (rep->leader == rep->self) {
        j = madd_new(rep, rep->self, 0, it, NULL, 0);
        if (j == NULL) {
            item_answer(rep, it, APR_ENOMEM, "out of memory");
        }
        else if (!madd_member(j, &req)) {
            madd_answer(rep, j, DKV_EINVAL, "MEMBER_ADD needs the member's "
                        "id, host and cluster port");
        }
        return;
    }
    pr = prop_new(rep, it);
    data = pr ? entry_build(&len, rep, ENTRY_MEMBER_REQ, pr->seq, it)
              : NULL;
    msg = data ? dkv_malloc(8 + len) : NULL;
    if (msg == NULL) {
        if (pr != NULL) {
            pr->items = NULL;
            prop_free(rep, pr);
        }
        dkv_free(data);
        item_answer(rep, it, APR_ENOMEM, "out of memory");
        return;
    }
    dkv_put_be64(msg, pr->term);
    memcpy(msg + 8, data, len);
    send_node(rep, rep->leader, NMSG_PROPOSE, msg, 8 + len);
    dkv_free(msg);
    dkv_free(data);
}

/* The entry that records M's address (kind ENTRY_MEMBER, origin 0: no
 * node's proposal waits for it). */
static unsigned char *
member_entry(size_t *len, dkv_replica_t *rep, const dkv_service_member_t *m)
{
    size_t hl = strlen(m->host);
    unsigned char *buf = dkv_malloc(ENTRY_HEADER + 10 + hl), *p;

    if (buf == NULL) {
        return NULL;
    }
    buf[0] = ENTRY_MEMBER;
    dkv_put_be32(buf + 1, 0);
    dkv_put_be64(buf + 5, 0);
    dkv_put_be64s(buf + 13, dkv_svc_now(rep->svc));
    dkv_put_be32(buf + 21, (uint32_t)rep->svc->max_value);
    dkv_put_be32(buf + 25, 0);
    p = buf + ENTRY_HEADER;
    dkv_put_be32(p, m->id);
    put_be16(p + 4, (uint16_t)m->cluster_port);
    put_be16(p + 6, (uint16_t)m->client_port);
    put_be16(p + 8, (uint16_t)hl);
    memcpy(p + 10, m->host, hl);
    *len = ENTRY_HEADER + 10 + hl;
    return buf;
}

/* Applies member entry P..END: the address goes into the table (stored
 * in W) and to the transport. */
static void
apply_member(dkv_replica_t *rep, dkv_eng_write_t *w, uint64_t index,
             const unsigned char *p, const unsigned char *end)
{
    dkv_service_member_t m;
    char host[256];
    int r;

    if (member_parse(&m, host, p, (size_t)(end - p)) == 0) {
        dkv_log(DKV_LOG_ERROR, "replica: member entry %llu is malformed; "
                "skipped", (unsigned long long)index);
        return;
    }
    r = table_set(rep, m.id, m.host, m.cluster_port, m.client_port);
    if (r < 0) {
        fatal("cannot record a member's address", APR_ENOMEM);
    }
    if (r > 0) {
        table_persist(rep, w);
        peer_learn(rep, &m);
        dkv_log(DKV_LOG_INFO, "replica: node %u is at %s (cluster port %u, "
                "client port %u)", (unsigned)m.id, m.host, m.cluster_port,
                m.client_port);
    }
}

/* A node that joins starts with no membership and learns it from a
 * snapshot: the group's first membership is in no entry.  So while a
 * node may have to catch up, the leader's log must not begin at index 1
 * (it would send entries from there instead of a snapshot). */
static void
ensure_compacted(dkv_replica_t *rep)
{
    if (rep->compact_to == 0 && rep->applied > 0
        && dkv_raft_compact(rep->raft, rep->applied) == DKV_OK) {
        rep->compact_to = rep->applied;
        rep->applied_bytes = 0;
    }
}

/* Moves the MEMBER_ADDs under way along (the leader): the address entry,
 * then the learner's entry (again next pass while another change is
 * uncommitted), and the answer once both are applied. */
static void
madds_step(dkv_replica_t *rep, int64_t now)
{
    dkv_raft_status_t st;
    madd_t *j, *next;

    if (rep->madds == NULL) {
        return;
    }
    dkv_raft_status(rep->raft, &st);
    for (j = rep->madds; j != NULL; j = next) {
        next = j->next;
        if (st.role != DKV_RAFT_LEADER || st.term != j->term) {
            madd_answer(rep, j, DKV_EUNAVAILABLE, "the store's leader "
                        "changed while the member was being added (retry: "
                        "adding a member again is harmless)");
            continue;
        }
        if (now >= j->deadline || rep->stopping) {
            madd_answer(rep, j, rep->stopping ? DKV_EUNAVAILABLE
                        : DKV_ETIMEOUT, rep->stopping ? "node shutting "
                        "down; the member may not be added (retry)"
                        : "the member was not added in time: the outcome "
                          "is unknown (adding it again is harmless)");
            continue;
        }
        if (!j->addr_done) {
            long at = table_find(rep, j->m.id);
            unsigned char *data = NULL;
            size_t len = 0;

            /* Replicated unless every replica has it already: the
             * leader's own table may hold it from its --peers alone. */
            if (at < 0 || conf_role(&st.conf, j->m.id) == 0
                || strcmp(rep->members[at].host, j->m.host) != 0
                || rep->members[at].cluster_port != j->m.cluster_port
                || rep->members[at].client_port != j->m.client_port) {
                data = member_entry(&len, rep, &j->m);
                if (data == NULL
                    || rep_propose(&j->addr_index, rep, data, len)
                       != DKV_OK) {
                    dkv_free(data);
                    madd_answer(rep, j, DKV_EUNAVAILABLE, "the leader "
                                "cannot propose the member's address now "
                                "(retry)");
                    continue;
                }
                dkv_free(data);
                peer_learn(rep, &j->m);      /* reached from now on */
            }
            j->addr_done = 1;
        }
        if (!j->conf_done) {
            if (conf_role(&st.conf, j->m.id) == 0) {
                dkv_raft_conf_change_t cc;
                dkv_status_t rv;

                ensure_compacted(rep);
                cc.type = DKV_RAFT_ADD_LEARNER;
                cc.node = j->m.id;
                rv = dkv_raft_propose_conf(&j->conf_index, rep->raft, &cc);
                if (rv == DKV_ECONFLICT) {
                    continue;                /* another change first */
                }
                if (rv != DKV_OK) {
                    madd_answer(rep, j, rv == DKV_EINVAL ? DKV_EINVAL
                                : DKV_EUNAVAILABLE, rv == DKV_EINVAL
                                ? "the store cannot hold more members"
                                : "the leader cannot add the member now "
                                  "(retry)");
                    continue;
                }
                dkv_log(DKV_LOG_INFO, "replica: adding node %u (%s:%u) as "
                        "a learner at index %llu", (unsigned)j->m.id,
                        j->m.host, j->m.cluster_port,
                        (unsigned long long)j->conf_index);
                dkv_raft_status(rep->raft, &st);
            }
            j->conf_done = 1;
        }
        if (rep->applied >= j->addr_index && rep->applied >= j->conf_index) {
            madd_answer(rep, j, DKV_OK, "");
        }
    }
}

/* The leader promotes a learner to voter once it caught up: its log
 * matches up to the leader's commit index (one change at a time; a
 * conflict is tried again next pass). */
static void
promote_step(dkv_replica_t *rep)
{
    dkv_raft_status_t st;
    size_t i;

    if (rep->leader != rep->self) {
        rep->learner_since = 0;
        return;
    }
    dkv_raft_status(rep->raft, &st);
    if (st.role != DKV_RAFT_LEADER || st.conf.nlearners == 0) {
        rep->learner_since = 0;
        return;
    }
    ensure_compacted(rep);
    if (rep->learner_since == 0) {
        rep->learner_since = real_ms();
    }
    for (i = 0; i < st.conf.nlearners; i++) {
        uint32_t id = st.conf.learners[i];
        dkv_raft_conf_change_t cc;
        uint64_t match = 0;

        if (dkv_raft_match(&match, rep->raft, id) != DKV_OK || match == 0
            || match < st.commit) {
            continue;
        }
        cc.type = DKV_RAFT_PROMOTE;
        cc.node = id;
        if (dkv_raft_propose_conf(NULL, rep->raft, &cc) == DKV_OK) {
            dkv_log(DKV_LOG_INFO, "replica: node %u caught up (index %llu):"
                    " promoting it to voter (%lld ms after it was seen as "
                    "a learner here)", (unsigned)id,
                    (unsigned long long)match,
                    (long long)(real_ms() - rep->learner_since));
            rep->learner_since = 0;
        }
        break;
    }
}

/* ============================================================ snapshots */

static void do_ready(dkv_replica_t *rep);

static dkv_status_t
snap_flush(snapsend_t *ss)
{
    dkv_status_t rv;
    unsigned char *buf = ss->chunk;

    if (ss->used <= 17) {
        return DKV_OK;
    }
    buf[0] = NMSG_SNAP_CHUNK;
    dkv_put_be64(buf + 1, ss->id);
    dkv_put_be64(buf + 9, ss->offset);
    ss->offset += ss->used - 17;
    rv = dkv_transport_send_wait(ss->rep->tp, ss->to, buf, ss->used,
                                 SNAP_SEND_TIMEOUT_MS);
    ss->chunk = dkv_malloc(17 + SNAP_CHUNK_BYTES + 8);
    ss->used = 17;
    if (ss->chunk == NULL) {
        return APR_ENOMEM;
    }
    return rv;
}

static dkv_status_t
snap_record(void *baton, const void *rec, size_t len)
{
    snapsend_t *ss = baton;
    dkv_status_t rv;

    if (ss->used + 4 + len > 17 + SNAP_CHUNK_BYTES && ss->used > 17) {
        if ((rv = snap_flush(ss)) != DKV_OK) {
            return rv;
        }
    }
    if (4 + len > SNAP_CHUNK_BYTES) {
        unsigned char *big = dkv_realloc(ss->chunk, 17 + 4 + len + 8);

        if (big == NULL) {
            return APR_ENOMEM;
        }
        ss->chunk = big;
    }
    dkv_put_be32(ss->chunk + ss->used, (uint32_t)len);
    memcpy(ss->chunk + ss->used + 4, rec, len);
    ss->used += 4 + len;
    return DKV_OK;
}

static void *APR_THREAD_FUNC
snap_main(apr_thread_t *thread, void *data)
{
    snapsend_t *ss = data;
    dkv_replica_t *rep = ss->rep;
    unsigned char *enc = NULL, *note;
    size_t len = 0;
    dkv_status_t rv;

    (void)thread;
    ss->chunk = dkv_malloc(17 + SNAP_CHUNK_BYTES + 8);
    ss->used = 17;
    rv = ss->chunk ? dkv_engine_dump(ss->read, snap_record, ss) : APR_ENOMEM;
    if (rv == DKV_OK) {
        rv = snap_flush(ss);
    }
    dkv_engine_read_end(ss->read);
    ss->read = NULL;
    if (rv == DKV_OK) {
        rv = dkv_raft_msg_encode(&enc, &len, &ss->msg);
    }
    if (rv == DKV_OK) {
        size_t tl = ss->table_len;
        unsigned char *end = dkv_malloc(21 + tl + len);

        if (end == NULL) {
            rv = APR_ENOMEM;
        }
        else {
            end[0] = NMSG_SNAP_END;
            dkv_put_be64(end + 1, ss->id);
            dkv_put_be64(end + 9, ss->offset);
            dkv_put_be32(end + 17, (uint32_t)tl);
            if (tl > 0) {
                memcpy(end + 21, ss->table, tl);
            }
            memcpy(end + 21 + tl, enc, len);
            rv = dkv_transport_send_wait(rep->tp, ss->to, end,
                                         21 + tl + len,
                                         SNAP_SEND_TIMEOUT_MS);
        }
    }
    dkv_free(enc);
    dkv_free(ss->table);
    ss->table = NULL;
    dkv_free(ss->chunk);
    ss->chunk = NULL;
    if (rv != DKV_OK) {
        dkv_log(DKV_LOG_WARN, "replica: snapshot to node %u failed: %s",
                (unsigned)ss->to, dkv_strerror(rv));
    }
    else {
        dkv_log(DKV_LOG_INFO, "replica: snapshot at index %llu sent to node "
                "%u (%llu bytes)", (unsigned long long)ss->msg.snapshot.index,
                (unsigned)ss->to, (unsigned long long)ss->offset);
    }
    ss->failed = rv != DKV_OK;
    note = dkv_malloc(5);
    if (note != NULL) {
        note[0] = NOTE_SNAP_SENT;
        dkv_put_be32(note + 1, ss->to);
        inbox_push(rep, 0, note, 5);
    }
    return NULL;
}

/* The core asks for a snapshot for MSG->to: the state as applied now. */
static void
snap_start(dkv_replica_t *rep, const dkv_raft_msg_t *msg)
{
    snapsend_t *ss;
    dkv_status_t rv;

    for (ss = rep->sending; ss != NULL; ss = ss->next) {
        if (ss->to == msg->to) {
            return;                    /* one at a time per peer */
        }
    }
    if (rep->tp == NULL) {
        return;
    }
    ss = dkv_calloc(1, sizeof(*ss));
    if (ss == NULL) {
        dkv_raft_snapshot_failed(rep->raft, msg->to);
        return;
    }
    ss->rep = rep;
    ss->to = msg->to;
    ss->id = ++rep->next_snap_id;
    ss->msg = *msg;
    ss->msg.entries = NULL;
    ss->msg.nentries = 0;
    /* The member table goes with it: the addresses of the members the
     * snapshot's membership names (and any other known). */
    rv = table_encode(&ss->table, &ss->table_len, rep);
    if (rv == DKV_OK) {
        rv = dkv_engine_read_begin(&ss->read, rep->svc->engine,
                                   dkv_svc_now(rep->svc));
    }
    if (rv == DKV_OK) {
        uint64_t at = dkv_engine_applied_index(ss->read);

        rv = dkv_raft_snapshot_meta(&ss->msg.snapshot, rep->raft, at);
        if (rv != DKV_OK) {
            dkv_engine_read_end(ss->read);
        }
    }
    if (rv == DKV_OK) {
        rv = apr_thread_create(&ss->thread, NULL, snap_main, ss, rep->pool);
        if (rv != APR_SUCCESS) {
            dkv_engine_read_end(ss->read);
        }
    }
    if (rv != DKV_OK) {
        dkv_free(ss->table);
        dkv_free(ss);
        dkv_raft_snapshot_failed(rep->raft, msg->to);
        return;
    }
    ss->next = rep->sending;
    rep->sending = ss;
}

/* A sender finished: join it; tell the core when it failed. */
static void
snap_sent(dkv_replica_t *rep, uint32_t to)
{
    snapsend_t **pp, *ss;
    apr_status_t ignored;

    for (pp = &rep->sending; (ss = *pp) != NULL; pp = &ss->next) {
        if (ss->to == to) {
            *pp = ss->next;
            apr_thread_join(&ignored, ss->thread);
            if (ss->failed) {
                dkv_raft_snapshot_failed(rep->raft, to);
            }
            dkv_free(ss);
            return;
        }
    }
}

/* A chunk of a snapshot from a peer. */
static void
snap_chunk(dkv_replica_t *rep, const unsigned char *p, size_t len)
{
    uint64_t id, off;
    apr_size_t n;

    if (len < 16) {
        return;
    }
    id = dkv_get_be64(p);
    off = dkv_get_be64(p + 8);
    if (off == 0) {
        if (rep->snap_file != NULL) {
            apr_file_close(rep->snap_file);
        }
        rep->snap_file = NULL;
        rep->snap_ready = 0;
        if (apr_file_open(&rep->snap_file, rep->snap_path,
                          APR_FOPEN_CREATE | APR_FOPEN_WRITE
                          | APR_FOPEN_TRUNCATE | APR_FOPEN_BINARY,
                          APR_FPROT_UREAD | APR_FPROT_UWRITE, rep->pool)
            != APR_SUCCESS) {
            dkv_log(DKV_LOG_ERROR, "replica: cannot create %s",
                    rep->snap_path);
            rep->snap_file = NULL;
            return;
        }
        rep->snap_id = id;
        rep->snap_got = 0;
    }
    if (rep->snap_file == NULL || id != rep->snap_id
        || off != rep->snap_got) {
        return;                        /* a broken stream: wait for a new one */
    }
    n = len - 16;
    if (apr_file_write_full(rep->snap_file, p + 16, n, NULL)
        != APR_SUCCESS) {
        apr_file_close(rep->snap_file);
        rep->snap_file = NULL;
        return;
    }
    rep->snap_got += n;
}

/* The end of a snapshot from a peer: its message goes to the core. */
static void
snap_end(dkv_replica_t *rep, const unsigned char *p, size_t len)
{
    dkv_raft_msg_t msg;
    dkv_raft_entry_t *ents = NULL;
    size_t tl;

    if (len < 20 || rep->snap_file == NULL
        || dkv_get_be64(p) != rep->snap_id
        || dkv_get_be64(p + 8) != rep->snap_got) {
        return;
    }
    tl = dkv_get_be32(p + 16);
    if (tl > len - 20) {
        return;
    }
    dkv_free(rep->snap_table);
    rep->snap_table = NULL;
    rep->snap_table_len = 0;
    if (tl > 0) {
        /* Without it the state would come without the addresses of the
         * members it names: not installed (the sender tries again). */
        if ((rep->snap_table = dkv_malloc(tl)) == NULL) {
            dkv_log(DKV_LOG_ERROR, "replica: out of memory for a "
                    "snapshot's member table");
            return;
        }
        memcpy(rep->snap_table, p + 20, tl);
        rep->snap_table_len = tl;
    }
    if (apr_file_flush(rep->snap_file) != APR_SUCCESS
        || apr_file_sync(rep->snap_file) != APR_SUCCESS) {
        return;
    }
    apr_file_close(rep->snap_file);
    rep->snap_file = NULL;
    rep->snap_ready = 1;
    if (dkv_raft_msg_decode(&msg, &ents, p + 20 + tl, len - 20 - tl)
            == DKV_OK
        && msg.type == DKV_RAFT_MSG_SNAPSHOT) {
        (void)dkv_raft_step(rep->raft, &msg);
        /* Installed now, if the core takes it: the next stream would
         * write over the file. */
        if (dkv_raft_has_ready(rep->raft)) {
            do_ready(rep);
        }
    }
    dkv_free(ents);
    rep->snap_ready = 0;
    dkv_free(rep->snap_table);
    rep->snap_table = NULL;
    rep->snap_table_len = 0;
}

/* Installs the received snapshot META: the state is replaced, the log
 * emptied, in one transaction. */
static void
snap_install(dkv_replica_t *rep, const dkv_raft_snapshot_meta_t *meta)
{
    dkv_service_t *svc = rep->svc;
    dkv_eng_write_t *w;
    apr_file_t *f;
    unsigned char hdr[4], *rec = NULL, *enc = NULL;
    size_t cap = 0, elen = 0;
    dkv_status_t rv;

    if (!rep->snap_ready) {
        fatal("the core accepted a snapshot that is not here", DKV_EINVAL);
    }
    rv = apr_file_open(&f, rep->snap_path, APR_FOPEN_READ | APR_FOPEN_BINARY
                       | APR_FOPEN_BUFFERED, 0, rep->apool);
    if (rv != APR_SUCCESS) {
        fatal("cannot open the received snapshot", rv);
    }
    rv = dkv_engine_write_begin(&w, svc->engine, rep->store_now,
                                rep->apool);
    if (rv == DKV_OK) {
        rv = dkv_engine_load_begin(w);
    }
    while (rv == DKV_OK) {
        apr_size_t n = 4;
        uint32_t len;

        if (apr_file_read_full(f, hdr, 4, &n) != APR_SUCCESS) {
            break;                     /* the end */
        }
        len = dkv_get_be32(hdr);
        if (len > cap) {
            unsigned char *b = dkv_realloc(rec, len);

            if (b == NULL) {
                rv = APR_ENOMEM;
                break;
            }
            rec = b;
            cap = len;
        }
        if (apr_file_read_full(f, rec, len, &n) != APR_SUCCESS) {
            rv = dkv_error_set(DKV_ECORRUPT, "the received snapshot is "
                               "truncated");
            break;
        }
        rv = dkv_engine_load_record(w, rec, len);
    }
    dkv_free(rec);
    apr_file_close(f);
    if (rv == DKV_OK) {
        rv = dkv_engine_log_truncate(w, 1);
    }
    if (rv == DKV_OK && rep->snap_table != NULL) {
        /* The sender's member table: the addresses its membership
         * names, stored with the state. */
        if (table_merge(rep, rep->snap_table, rep->snap_table_len) < 0) {
            dkv_log(DKV_LOG_WARN, "replica: the snapshot's member table "
                    "is malformed; ignored");
        }
        table_persist(rep, w);
    }
    if (rv == DKV_OK) {
        rv = dkv_raft_snapshot_meta_encode(&enc, &elen, meta);
    }
    if (rv == DKV_OK) {
        rv = dkv_engine_meta_put(w, "raft.snap", enc, elen);
    }
    dkv_free(enc);
    if (rv == DKV_OK) {
        rv = commit_timed(rep, w, meta->index);
    }
    else {
        dkv_engine_write_abort(w);
    }
    if (rv != DKV_OK) {
        fatal("cannot install the received snapshot", rv);
    }
    apr_file_remove(rep->snap_path, rep->apool);
    rep->snap_ready = 0;
    rep->applied = meta->index;
    rep->compacted = meta->index;
    /* Watches here missed the entries the snapshot stands for: they end
     * and their clients resume from history. */
    dkv_hub_end_all(svc->hub, DKV_EUNAVAILABLE, dkv_service_revision(svc));
    dkv_log(DKV_LOG_INFO, "replica: installed a snapshot at index %llu "
            "(term %llu)", (unsigned long long)meta->index,
            (unsigned long long)meta->term);
}

/* ================================================================ ready */

/* Publishes the core's numbers for dkv_replica_stats. */
static void
stats_publish(dkv_replica_t *rep)
{
    dkv_raft_status_t st;

    dkv_raft_status(rep->raft, &st);
    apr_thread_mutex_lock(rep->svc->slock);
    rep->st.node_id = rep->self;
    rep->st.leader = st.leader;
    rep->st.term = st.term;
    rep->st.commit = st.commit;
    rep->st.applied = rep->applied;
    rep->conf = st.conf;
    apr_thread_mutex_unlock(rep->svc->slock);
}

static void
note_role(dkv_replica_t *rep, const dkv_raft_ready_t *rd)
{
    if (rd->leader == rep->leader && rd->role == rep->role
        && rd->term == rep->term) {
        return;
    }
    if (rd->role == DKV_RAFT_LEADER && rep->role != DKV_RAFT_LEADER) {
        rep->leader_since = real_ms();
        rep->next_check = 0;
        /* A store of one node leads at every start: not news. */
        dkv_log(rep->group ? DKV_LOG_INFO : DKV_LOG_DEBUG,
                "replica: became leader (term %llu)",
                (unsigned long long)rd->term);
    }
    else if (rd->leader != rep->leader) {
        if (rep->leader == rep->self) {
            dkv_log(DKV_LOG_INFO, "replica: stepped down (term %llu)",
                    (unsigned long long)rd->term);
        }
        if (rd->leader != 0) {
            dkv_log(DKV_LOG_INFO, "replica: node %u leads (term %llu)",
                    (unsigned)rd->leader, (unsigned long long)rd->term);
        }
    }
    rep->role = rd->role;
    rep->term = rd->term;
    apr_thread_mutex_lock(rep->svc->slock);
    rep->leader = rd->leader;
    apr_thread_mutex_unlock(rep->svc->slock);
}

static rwait_t *
rwait_find(dkv_replica_t *rep, uint64_t ctx)
{
    rwait_t *rw;

    for (rw = rep->rwaits; rw != NULL; rw = rw->next) {
        if (rw->ctx == ctx) {
            return rw;
        }
    }
    return NULL;
}

/* A message of the pass, encoded, sent after the commit. */
typedef struct outmsg {
    struct outmsg *next;
    uint32_t to;
    unsigned char *buf;          /* a node message (NMSG_RAFT + body) */
    size_t len;
    int snapshot;                /* ask for a snapshot instead: MSG */
    int early;                   /* a leader's append: sent at once */
    dkv_raft_msg_t msg;
} outmsg_t;

/* Persists what READY asks in W and applies its committed entries;
 * its messages and read indexes are kept for after the commit (OUT).
 * Returns the last index applied (0: none). */
static uint64_t
ready_into(dkv_replica_t *rep, dkv_eng_write_t *w, const dkv_raft_ready_t *rd,
           outmsg_t ***out_tail)
{
    uint64_t applied_to = 0;
    size_t i;
    dkv_status_t rv = DKV_OK;

    if (rd->has_hard_state) {
        unsigned char hs[20];

        dkv_raft_hard_state_encode(hs, &rd->hard_state);
        rv = dkv_engine_meta_put(w, "raft.hard", hs, sizeof(hs));
    }
    if (rv == DKV_OK && rd->truncate_from != 0) {
        rv = dkv_engine_log_truncate(w, rd->truncate_from);
    }
    for (i = 0; rv == DKV_OK && i < rd->nentries; i++) {
        unsigned char *enc;
        size_t len;

        rv = dkv_raft_entry_encode(&enc, &len, &rd->entries[i]);
        if (rv == DKV_OK) {
            rv = dkv_engine_log_put(w, rd->entries[i].index, enc, len);
            dkv_free(enc);
        }
    }
    if (rv != DKV_OK) {
        fatal("cannot persist the log", rv);
    }
    for (i = 0; i < rd->ncommitted; i++) {
        if (rd->committed[i].index <= rep->applied) {
            continue;
        }
        apply_entry(rep, w, &rd->committed[i]);
        rep->applied_bytes += rd->committed[i].len;
        applied_to = rd->committed[i].index;
        rep->applied = applied_to;
    }
    for (i = 0; i < rd->nmessages; i++) {
        const dkv_raft_msg_t *m = &rd->messages[i];
        outmsg_t *om = dkv_calloc(1, sizeof(*om));
        unsigned char *enc = NULL;
        size_t len = 0;

        if (om == NULL) {
            continue;                  /* lost, like on the network */
        }
        om->to = m->to;
        om->early = rd->role == DKV_RAFT_LEADER
                    && m->type == DKV_RAFT_MSG_APPEND;
        if (m->type == DKV_RAFT_MSG_SNAPSHOT) {
            om->snapshot = 1;
            om->msg = *m;
            om->msg.entries = NULL;
            om->msg.nentries = 0;
        }
        else if (dkv_raft_msg_encode(&enc, &len, m) == DKV_OK) {
            om->buf = dkv_malloc(len + 1);
            if (om->buf != NULL) {
                om->buf[0] = NMSG_RAFT;
                memcpy(om->buf + 1, enc, len);
                om->len = len + 1;
            }
            dkv_free(enc);
        }
        if (om->early && om->buf != NULL && rep->tp != NULL) {
            /* A leader's appends may leave before its own copy of the
             * entries is durable (it counts itself only once it is):
             * the followers' syncs overlap the leader's. */
            (void)dkv_transport_send(rep->tp, om->to, om->buf, om->len);
            dkv_free(om);
            continue;
        }
        **out_tail = om;
        *out_tail = &om->next;
    }
    for (i = 0; i < rd->nreads; i++) {
        rwait_t *rw = rwait_find(rep, rd->reads[i].context);

        if (rw != NULL) {
            rw->index = rd->reads[i].index;
            rw->known = 1;
        }
    }
    for (i = 0; i < rd->nfailed_reads; i++) {
        rwait_t *rw = rwait_find(rep, rd->failed_reads[i]);

        if (rw != NULL && !rw->known) {
            rw->retry = 1;
        }
    }
    return applied_to;
}

/* The core's readies, done: as many as it has (up to MAX_CHAIN), in ONE
 * engine write transaction (one sync).  Nothing leaves the process before the
 * commit -- messages, answers, events -- so telling the core it advanced
 * before the commit is safe: should the commit fail, the process stops
 * and nobody saw the difference.  A group of one thus persists and
 * applies an entry in one transaction. */
static void
do_ready(dkv_replica_t *rep)
{
    dkv_service_t *svc = rep->svc;
    dkv_raft_ready_t rd;
    dkv_eng_write_t *w;
    const dkv_event_t *evs = NULL;
    size_t nevs = 0;
    uint64_t applied_to = 0, last;
    outmsg_t *out = NULL, **out_tail = &out, *om;
    int n;
    dkv_status_t rv;

    dkv_raft_ready(rep->raft, &rd);
    if (rd.has_snapshot) {
        snap_install(rep, &rd.snapshot);
    }
    rv = dkv_engine_write_begin(&w, svc->engine, rep->store_now,
                                rep->apool);
    if (rv != DKV_OK) {
        fatal("cannot begin a write", rv);
    }
    if (rep->compact_to > rep->compacted) {
        dkv_raft_snapshot_meta_t meta;
        unsigned char *enc = NULL;
        size_t len = 0;

        if (dkv_raft_snapshot_meta(&meta, rep->raft, rep->compact_to)
                == DKV_OK
            && dkv_raft_snapshot_meta_encode(&enc, &len, &meta) == DKV_OK) {
            rv = dkv_engine_meta_put(w, "raft.snap", enc, len);
            if (rv == DKV_OK) {
                rv = dkv_engine_log_compact(w, rep->compact_to);
            }
            if (rv != DKV_OK) {
                fatal("cannot compact the log", rv);
            }
            rep->compacted = rep->compact_to;
        }
        dkv_free(enc);
    }
    for (n = 0;; n++) {
        last = ready_into(rep, w, &rd, &out_tail);
        if (last != 0) {
            applied_to = last;
        }
        note_role(rep, &rd);
        dkv_raft_advance(rep->raft, &rd);
        if (n == MAX_CHAIN - 1 || !dkv_raft_has_ready(rep->raft)) {
            break;
        }
        dkv_raft_ready(rep->raft, &rd);
        if (rd.has_snapshot) {
            /* A snapshot load needs a transaction of its own: commit
             * what is done, install it, go on in a new one. */
            rv = commit_timed(rep, w, applied_to);
            if (rv != DKV_OK) {
                fatal("cannot commit", rv);
            }
            snap_install(rep, &rd.snapshot);
            applied_to = 0;
            rv = dkv_engine_write_begin(&w, svc->engine, rep->store_now,
                                        rep->apool);
            if (rv != DKV_OK) {
                fatal("cannot begin a write", rv);
            }
        }
    }
    if (rep->group) {
        /* The entries answered are committed: on a majority's disks,
         * whatever becomes of this transaction (should it fail, the node
         * stops and applies them again from its log).  So the answers
         * need not wait for its sync.  Reads here are served after it:
         * linearizable ones wait for their index in a later pass, and
         * the readers' snapshots are of committed transactions.  Not in
         * a group of one, whose only copy of the entries is this very
         * transaction. */
        results_send(rep);
        answer_done(rep);
    }
    dkv_error_clear();
    rv = commit_timed(rep, w, applied_to);
    if (rv != DKV_OK) {
        fatal("cannot commit", rv);
    }
    evs = dkv_engine_write_events(w, &nevs);
    apr_thread_mutex_lock(svc->slock);
    svc->stats.commits++;
    svc->revision = dkv_engine_write_revision(w);
    apr_thread_mutex_unlock(svc->slock);

    while ((om = out) != NULL) {
        out = om->next;
        if (om->snapshot) {
            snap_start(rep, &om->msg);
        }
        else if (om->buf != NULL && rep->tp != NULL) {
            (void)dkv_transport_send(rep->tp, om->to, om->buf, om->len);
            om->buf = NULL;
        }
        dkv_free(om->buf);
        dkv_free(om);
    }
    results_send(rep);
    answer_done(rep);
    if (nevs > 0 && evs != NULL) {
        dkv_hub_deliver(svc->hub, evs, nevs, rep->apool);
        apr_thread_mutex_lock(svc->slock);
        svc->stats.watches = dkv_hub_count(svc->hub);
        svc->stats.dropped = dkv_hub_dropped(svc->hub);
        apr_thread_mutex_unlock(svc->slock);
    }
    apr_pool_clear(rep->apool);

    /* The core keeps its log in memory from the last compaction on:
     * compact after snapshot_entries entries or COMPACT_BYTES bytes. */
    if ((rep->applied >= rep->compacted + rep->snapshot_entries
         || rep->applied_bytes >= COMPACT_BYTES)
        && rep->applied > rep->compact_to) {
        if (dkv_raft_compact(rep->raft, rep->applied) == DKV_OK) {
            rep->compact_to = rep->applied;
            rep->applied_bytes = 0;
        }
    }
    stats_publish(rep);
}

/* Hands the reads whose index is applied to the readers; fails those
 * past their deadline; asks again for those whose ask failed. */
static void
release_reads(dkv_replica_t *rep, int64_t now)
{
    rwait_t **pp = &rep->rwaits, *rw;
    dkv_svc_item_t *it;

    while ((rw = *pp) != NULL) {
        if (rw->known && rw->index <= rep->applied) {
            while ((it = rw->items) != NULL) {
                rw->items = it->next;
                dkv_svc_queue_push(&rep->svc->rq, it);
            }
        }
        else if (now >= rw->deadline || rep->stopping
                 || (rep->shut_deadline != 0 && now >= rep->shut_deadline)) {
            fail_items(rep, rw->items, DKV_EUNAVAILABLE,
                       "no leader confirmed the read in time (retry)");
            rw->items = NULL;
        }
        else {
            if (rw->retry && rep->leader != 0) {
                rw->retry = 0;
                dkv_raft_read_index(rep->raft, rw->ctx);
            }
            pp = &rw->next;
            continue;
        }
        *pp = rw->next;
        dkv_free(rw);
    }
}

/* Fails what waited too long: held writes (never proposed), proposals
 * (outcome unknown). */
static void
check_deadlines(dkv_replica_t *rep, int64_t now)
{
    prop_t *pr, *next;

    if (rep->held != NULL
        && (now >= rep->held_deadline || rep->stopping
            || (rep->shut_deadline != 0 && now >= rep->shut_deadline))) {
        dkv_svc_item_t *list = rep->held;

        rep->held = NULL;
        rep->held_tail = &rep->held;
        fail_items(rep, list, DKV_EUNAVAILABLE, "the store has no leader; "
                   "the write was not applied (retry)");
    }
    /* A stopping node gives what is in flight STOP_WAIT_MS to settle
     * (with a quorum it does), not the whole request timeout. */
    if (rep->svc->shutting && rep->shut_deadline == 0) {
        rep->shut_deadline = now + STOP_WAIT_MS;
    }
    for (pr = rep->props; pr != NULL; pr = next) {
        next = pr->next;
        if (now >= pr->deadline
            || (rep->shut_deadline != 0 && now >= rep->shut_deadline)) {
            prop_fail(rep, pr, DKV_ETIMEOUT, "no answer from the store's "
                      "leader in time: the outcome of the write is "
                      "unknown");
        }
    }
}

/* ================================================================= loop */

static void
on_node_message(dkv_replica_t *rep, inmsg_t *m)
{
    const unsigned char *p = m->buf + 1;
    size_t len = m->len - 1;

    if (m->from == 0) {
        if (m->buf[0] == NOTE_SNAP_SENT && m->len >= 5) {
            snap_sent(rep, dkv_get_be32(m->buf + 1));
        }
        return;
    }
    switch (m->buf[0]) {
    case NMSG_RAFT: {
        dkv_raft_msg_t msg;
        dkv_raft_entry_t *ents = NULL;

        if (dkv_raft_msg_decode(&msg, &ents, p, len) == DKV_OK
            && msg.from == m->from) {
            (void)dkv_raft_step(rep->raft, &msg);
        }
        else {
            dkv_log(DKV_LOG_WARN, "replica: bad message from node %u",
                    (unsigned)m->from);
        }
        dkv_free(ents);
        break;
    }
    case NMSG_PROPOSE:
        on_propose(rep, m->from, p, len);
        break;
    case NMSG_REFUSED:
        if (len >= 8) {
            prop_t *pr = prop_find(rep, dkv_get_be64(p));

            if (pr != NULL && pr->index == 0) {
                prop_fail(rep, pr, DKV_EUNAVAILABLE, "the node asked was "
                          "not the leader; the write was not applied "
                          "(retry)");
            }
        }
        break;
    case NMSG_SNAP_CHUNK:
        snap_chunk(rep, p, len);
        break;
    case NMSG_SNAP_END:
        snap_end(rep, p, len);
        break;
    case NMSG_RESULT:
        on_result(rep, p, len);
        break;
    default:
        break;
    }
}

static void *APR_THREAD_FUNC
replica_main(apr_thread_t *thread, void *data)
{
    dkv_replica_t *rep = data;
    dkv_service_t *svc = rep->svc;

    (void)thread;
    rep->next_tick = real_ms();
    for (;;) {
        dkv_svc_item_t *list, *it, *writes = NULL, **wtail = &writes;
        dkv_svc_item_t *reads = NULL, **rtail = &reads;
        inmsg_t *msgs;
        int64_t now = real_ms();
        int n;

        apr_thread_mutex_lock(svc->wq.lock);
        while (svc->wq.head == NULL && rep->in_head == NULL
               && !svc->wq.stop && now < rep->next_tick
               && !dkv_raft_has_ready(rep->raft)) {
            int64_t wait = rep->next_tick - now;

            if (wait > svc->interval) {
                wait = svc->interval;
            }
            apr_thread_cond_timedwait(svc->wq.cond, svc->wq.lock,
                                      apr_time_from_msec(wait));
            now = real_ms();
            if (rep->leader == rep->self && !svc->shutting
                && dkv_svc_now(svc) >= rep->next_check) {
                break;
            }
        }
        list = dkv_svc_queue_take(&svc->wq, svc->max_batch);
        msgs = rep->in_head;
        rep->in_head = rep->in_tail = NULL;
        if (svc->wq.stop && !rep->stopping) {
            rep->stopping = 1;
        }
        apr_thread_mutex_unlock(svc->wq.lock);

        /* Time, then the peers. */
        for (n = 0; now >= rep->next_tick && n < 10; n++) {
            dkv_raft_tick(rep->raft);
            rep->next_tick += rep->tick_ms;
        }
        if (now >= rep->next_tick) {
            rep->next_tick = now + rep->tick_ms;
        }
        while (msgs != NULL) {
            inmsg_t *m = msgs;

            msgs = m->next;
            if (m->len > 0) {
                on_node_message(rep, m);
            }
            dkv_free(m->buf);
            dkv_free(m);
        }

        /* The service's items. */
        while ((it = list) != NULL) {
            list = it->next;
            it->next = NULL;
            if (dkv_svc_is_control(it)) {
                dkv_svc_control(svc, it, rep->cpool);
            }
            else if (it->refused) {
                dkv_request_t req;

                (void)dkv_svc_decode(&req, it, rep->apool);
                done_add(rep, it);
            }
            else if (it->len > 4 && it->frame[4] == DKV_MSG_MEMBER_ADD) {
                member_item(rep, it);
            }
            else if (dkv_svc_is_lin_read(svc, it)) {
                *rtail = it;
                rtail = &it->next;
            }
            else {
                *wtail = it;
                wtail = &it->next;
            }
        }
        if (rep->held != NULL && rep->leader != 0) {
            dkv_svc_item_t *held = rep->held;

            rep->held = NULL;
            rep->held_tail = &rep->held;
            propose_items(rep, held);
        }
        propose_items(rep, writes);
        if (reads != NULL) {
            rwait_t *rw = dkv_calloc(1, sizeof(*rw));

            if (rw == NULL) {
                fail_items(rep, reads, APR_ENOMEM, "out of memory");
            }
            else {
                rw->ctx = ++rep->next_ctx;
                rw->items = reads;
                rw->deadline = now + rep->request_timeout;
                rw->next = rep->rwaits;
                rep->rwaits = rw;
                if (rep->leader != 0) {
                    dkv_raft_read_index(rep->raft, rw->ctx);
                }
                else {
                    rw->retry = 1;
                }
            }
        }
        maybe_expire(rep);

        if (dkv_raft_has_ready(rep->raft)) {
            do_ready(rep);
        }
        madds_step(rep, now);
        promote_step(rep);
        release_reads(rep, now);
        check_deadlines(rep, now);
        answer_done(rep);
        apr_pool_clear(rep->apool);

        if (rep->stopping) {
            int idle;

            apr_thread_mutex_lock(svc->wq.lock);
            idle = svc->wq.head == NULL;
            apr_thread_mutex_unlock(svc->wq.lock);
            if (idle && rep->held == NULL && rep->rwaits == NULL
                && rep->props == NULL && rep->madds == NULL) {
                break;
            }
        }
    }
    dkv_error_clear();
    return NULL;
}

/* ============================================================ lifecycle */

typedef struct restore_ctx {
    dkv_raft_entry_t *entries;
    size_t n, cap;
    dkv_status_t rv;
} restore_ctx_t;

static dkv_status_t
restore_entry(void *baton, uint64_t index, const void *data, size_t len)
{
    restore_ctx_t *rc = baton;
    dkv_status_t rv;

    if (rc->n == rc->cap) {
        size_t cap = rc->cap ? rc->cap * 2 : 256;
        dkv_raft_entry_t *e = dkv_realloc(rc->entries, cap * sizeof(*e));

        if (e == NULL) {
            return APR_ENOMEM;
        }
        rc->entries = e;
        rc->cap = cap;
    }
    rv = dkv_raft_entry_decode(&rc->entries[rc->n], index, data, len);
    if (rv != DKV_OK) {
        return dkv_error_set(DKV_ECORRUPT, "log entry %llu is malformed",
                             (unsigned long long)index);
    }
    rc->n++;
    return DKV_OK;
}

/* Stores the group's first membership META (index 0) before anything
 * else: from now on membership comes from what this node holds, never
 * again from --peers (which may list members not added yet). */
static dkv_status_t
store_first_conf(dkv_replica_t *rep, const dkv_raft_snapshot_meta_t *meta)
{
    dkv_eng_write_t *w;
    unsigned char *enc = NULL;
    size_t len = 0;
    dkv_status_t rv;

    rv = dkv_raft_snapshot_meta_encode(&enc, &len, meta);
    if (rv != DKV_OK) {
        return rv;
    }
    rv = dkv_engine_write_begin(&w, rep->svc->engine,
                                dkv_svc_now(rep->svc), rep->apool);
    if (rv == DKV_OK) {
        rv = dkv_engine_meta_put(w, "raft.snap", enc, len);
        if (rv == DKV_OK) {
            table_persist(rep, w);
            rv = dkv_engine_write_commit(w, 0);
        }
        else {
            dkv_engine_write_abort(w);
        }
    }
    dkv_free(enc);
    apr_pool_clear(rep->apool);
    return rv;
}

/* Creates the core from what the engine holds; OPTS give the first
 * membership of a new group and addresses. */
static dkv_status_t
core_open(dkv_replica_t *rep, unsigned election_ticks,
          const dkv_service_opts_t *opts)
{
    dkv_service_t *svc = rep->svc;
    dkv_raft_config_t cfg;
    dkv_raft_restore_t rs;
    dkv_raft_snapshot_meta_t snap;
    dkv_raft_hard_state_t hs;
    restore_ctx_t rc;
    dkv_eng_read_t *r;
    const void *data;
    size_t len, i;
    dkv_status_t rv;
    int first = 0, has_hard = 0;

    memset(&snap, 0, sizeof(snap));
    memset(&hs, 0, sizeof(hs));
    memset(&rc, 0, sizeof(rc));
    rv = dkv_engine_read_begin(&r, svc->engine, dkv_svc_now(svc));
    if (rv != DKV_OK) {
        return rv;
    }
    rep->applied = dkv_engine_applied_index(r);
    /* The addresses: the persisted table, then --peers over it. */
    if (dkv_engine_meta_get(&data, &len, r, MEMBERS_META) == DKV_OK
        && table_merge(rep, data, len) < 0) {
        dkv_log(DKV_LOG_WARN, "replica: the stored member table is "
                "malformed; using --peers alone");
    }
    for (i = 0; i < opts->nmembers; i++) {
        const dkv_service_member_t *m = &opts->members[i];

        if (table_set(rep, m->id, m->host, m->cluster_port,
                      m->client_port) < 0) {
            rv = APR_ENOMEM;
        }
    }
    if (rv == DKV_OK
        && dkv_engine_meta_get(&data, &len, r, "raft.snap") == DKV_OK) {
        rv = dkv_raft_snapshot_meta_decode(&snap, data, len);
    }
    else if (rv == DKV_OK) {
        /* A new group: --peers are its first members; a node that joins
         * a running group starts with none (it must not campaign: the
         * leader brings it in). */
        first = 1;
        for (i = 0; i < opts->nmembers && !opts->join; i++) {
            snap.conf.voters[snap.conf.nvoters++] = opts->members[i].id;
        }
        if (opts->nmembers == 0) {
            snap.conf.voters[snap.conf.nvoters++] = rep->self;
        }
    }
    if (rv == DKV_OK
        && dkv_engine_meta_get(&data, &len, r, "raft.hard") == DKV_OK) {
        rv = dkv_raft_hard_state_decode(&hs, data, len);
        has_hard = 1;
    }
    if (rv == DKV_OK) {
        rv = dkv_engine_log_scan(r, snap.index + 1, restore_entry, &rc);
    }
    if (rv == DKV_OK && first && rep->group && rc.n == 0 && !has_hard) {
        dkv_engine_read_end(r);
        r = NULL;
        rv = store_first_conf(rep, &snap);
    }
    if (rv == DKV_OK) {
        memset(&cfg, 0, sizeof(cfg));
        cfg.id = rep->self;
        cfg.election_ticks = election_ticks;
        cfg.heartbeat_ticks = 1;
        cfg.random = rep_random;
        cfg.random_baton = rep;
        memset(&rs, 0, sizeof(rs));
        rs.snapshot = &snap;
        rs.hard_state = &hs;
        rs.entries = rc.entries;
        rs.nentries = rc.n;
        rs.applied = rep->applied < snap.index ? snap.index : rep->applied;
        rv = dkv_raft_create(&rep->raft, &cfg, &rs);
        if (rv != DKV_OK && dkv_last_error()[0] == '\0') {
            dkv_error_set(rv, "the persisted Raft state does not hold "
                          "together");
        }
    }
    rep->compacted = snap.index;
    rep->compact_to = snap.index;
    dkv_free(rc.entries);
    if (r != NULL) {
        dkv_engine_read_end(r);
    }
    if (rv == DKV_OK && rep->applied < snap.index) {
        rep->applied = snap.index;
    }
    return rv;
}

/* See service-int.h. */
dkv_status_t
dkv_replica_start(dkv_service_t *svc, const dkv_service_opts_t *opts,
                  apr_pool_t *pool)
{
    dkv_replica_t *rep = apr_pcalloc(pool, sizeof(*rep));
    unsigned election_ticks;
    size_t i;
    dkv_status_t rv;

    rep->svc = svc;
    rep->pool = pool;
    rv = apr_pool_create(&rep->apool, pool);
    if (rv == APR_SUCCESS) {
        rv = apr_pool_create(&rep->cpool, pool);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rep->self = opts->node_id ? opts->node_id : 1;
    rep->tick_ms = opts->tick_ms ? opts->tick_ms : 100;
    election_ticks = opts->election_ticks ? opts->election_ticks : 10;
    rep->election_ms = rep->tick_ms * election_ticks;
    rep->snapshot_entries = opts->snapshot_entries ? opts->snapshot_entries
                                                   : 10000;
    rep->request_timeout = opts->request_timeout_ms
                           ? opts->request_timeout_ms : 30000;
    rep->held_tail = &rep->held;
    rep->done_tail = &rep->done;
    rep->snap_path = apr_pstrcat(pool, opts->data_dir ? opts->data_dir : ".",
                                 "/snapshot.recv", NULL);
    if (sodium_init() < 0) {
        return dkv_error_set(DKV_EINVAL, "replica: libsodium cannot start");
    }
    randombytes_buf(rep->rng, sizeof(rep->rng));
    rep->rng[0] |= 1;

    if (opts->nmembers > 0) {
        int found = 0;

        for (i = 0; i < opts->nmembers; i++) {
            found |= opts->members[i].id == rep->self;
        }
        if (!found) {
            return dkv_error_set(DKV_EINVAL, "node id %u is not among the "
                                 "members", (unsigned)rep->self);
        }
    }
    if (opts->join && opts->nmembers <= 1) {
        return dkv_error_set(DKV_EINVAL, "--join needs --peers: this node "
                             "and the members of the store it joins");
    }
    rep->group = opts->nmembers > 1;
    svc->local_reads = !rep->group;
    svc->replica = rep;
    rv = core_open(rep, election_ticks, opts);
    if (rv != DKV_OK) {
        return rv;
    }
    stats_publish(rep);
    if (rep->group) {
        dkv_transport_opts_t to;
        dkv_transport_peer_t *peers;
        size_t np = 0;

        if (opts->secret == NULL) {
            return dkv_error_set(DKV_EINVAL, "a store of several nodes needs "
                                 "its secret");
        }
        peers = apr_pcalloc(pool, rep->nmembers * sizeof(*peers));
        memset(&to, 0, sizeof(to));
        for (i = 0; i < rep->nmembers; i++) {
            if (rep->members[i].id == rep->self) {
                to.port = opts->cluster_port ? opts->cluster_port
                                             : rep->members[i].cluster_port;
                continue;
            }
            peers[np].id = rep->members[i].id;
            peers[np].host = rep->members[i].host;
            peers[np].port = rep->members[i].cluster_port;
            np++;
        }
        to.self = rep->self;
        to.store = opts->store ? opts->store : "";
        to.bind = opts->cluster_bind;
        to.secret = opts->secret;
        to.peers = peers;
        to.npeers = np;
        rv = dkv_transport_create(&rep->tp, &to, on_message, rep, pool);
        if (rv != DKV_OK) {
            dkv_raft_destroy(rep->raft);
            rep->raft = NULL;
            return rv;
        }
    }
    rv = apr_thread_create(&svc->writer, NULL, replica_main, rep, pool);
    if (rv != APR_SUCCESS) {
        svc->writer = NULL;
        return dkv_error_set(rv, "service: cannot start its threads: %s",
                             dkv_strerror(rv));
    }
    return DKV_OK;
}

/* See service-int.h. */
void
dkv_replica_stop(dkv_service_t *svc)
{
    dkv_replica_t *rep = svc->replica;
    inmsg_t *m;
    size_t i;

    if (rep == NULL) {
        return;
    }
    while (rep->sending != NULL) {
        snap_sent(rep, rep->sending->to);
    }
    dkv_transport_destroy(rep->tp);
    rep->tp = NULL;
    while ((m = rep->in_head) != NULL) {
        rep->in_head = m->next;
        dkv_free(m->buf);
        dkv_free(m);
    }
    rep->in_tail = NULL;
    if (rep->snap_file != NULL) {
        apr_file_close(rep->snap_file);
        rep->snap_file = NULL;
    }
    dkv_raft_destroy(rep->raft);
    rep->raft = NULL;
    dkv_free(rep->results);
    rep->results = NULL;
    while (rep->madds != NULL) {
        madd_free(rep, rep->madds);
    }
    dkv_free(rep->snap_table);
    rep->snap_table = NULL;
    apr_thread_mutex_lock(svc->slock);
    svc->replica = NULL;
    apr_thread_mutex_unlock(svc->slock);
    for (i = 0; i < rep->nmembers; i++) {
        dkv_free((char *)(uintptr_t)rep->members[i].host);
    }
    dkv_free(rep->members);
    rep->members = NULL;
    rep->nmembers = rep->capmembers = 0;
}

/* See service-int.h. */
void
dkv_replica_members(dkv_response_t *res, dkv_service_t *svc,
                    apr_pool_t *pool)
{
    dkv_replica_t *rep;
    const dkv_raft_conf_t *c;
    size_t i, n;

    apr_thread_mutex_lock(svc->slock);
    rep = svc->replica;
    if (rep == NULL) {
        apr_thread_mutex_unlock(svc->slock);
        return;
    }
    res->leader = rep->leader;
    c = &rep->conf;
    if (!rep->group) {
        /* A group of one: itself, when --peers gave its address. */
        long at = table_find(rep, rep->self);

        if (at >= 0) {
            dkv_proto_member_t *m = apr_pcalloc(pool, sizeof(*m));

            m->id = rep->self;
            m->roles = DKV_PROTO_MEMBER_VOTER | DKV_PROTO_MEMBER_SELF;
            m->host = apr_pstrdup(pool, rep->members[at].host);
            m->port = (uint16_t)rep->members[at].client_port;
            res->members = m;
            res->nmembers = 1;
            res->leader = rep->self;
        }
        apr_thread_mutex_unlock(svc->slock);
        return;
    }
    if (c->nvoters + c->nlearners == 0) {
        apr_thread_mutex_unlock(svc->slock);
        return;
    }
    res->members = apr_pcalloc(pool, (c->nvoters + c->nlearners)
                                     * sizeof(*res->members));
    for (i = n = 0; i < c->nvoters + c->nlearners; i++) {
        int voter = i < c->nvoters;
        uint32_t id = voter ? c->voters[i] : c->learners[i - c->nvoters];
        long at = table_find(rep, id);
        dkv_proto_member_t *m;

        if (at < 0) {
            continue;                  /* no address known (yet) */
        }
        m = &res->members[n++];
        m->id = id;
        m->roles = voter ? DKV_PROTO_MEMBER_VOTER : DKV_PROTO_MEMBER_LEARNER;
        if (id == rep->self) {
            m->roles |= DKV_PROTO_MEMBER_SELF;
        }
        m->host = apr_pstrdup(pool, rep->members[at].host);
        m->port = (uint16_t)rep->members[at].client_port;
    }
    res->nmembers = n;
    apr_thread_mutex_unlock(svc->slock);
}

/* See service-int.h. */
void
dkv_replica_stats(dkv_replica_stats_t *out, dkv_service_t *svc)
{
    memset(out, 0, sizeof(*out));
    apr_thread_mutex_lock(svc->slock);
    if (svc->replica != NULL) {
        *out = svc->replica->st;
    }
    apr_thread_mutex_unlock(svc->slock);
}
