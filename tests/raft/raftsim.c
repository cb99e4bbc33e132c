/*
 * raftsim.c -- the Raft core (src/raft) under deterministic simulation.
 *
 * Each seed runs 3 or 5 cores (odd seeds 3, even seeds 5) in one thread
 * over a simulated network with random delay, loss, duplication,
 * reordering, partitions and one-way link failures, with crashes and
 * restarts (also in the middle of handling a ready), client proposals,
 * compaction, snapshot transfers, membership changes, leadership
 * transfers and read indexes.  Everything is drawn from one PRNG seeded
 * by the seed number, which is also the cores' randomness, so a seed
 * replays exactly: `raftsim --seed S --verbose`.
 *
 * After every step the checker verifies: at most one leader per term;
 * log matching over what the nodes persisted (same index and term, same
 * entry and same previous term, hence the same prefix); leader
 * completeness (an entry applied anywhere is in the log of every leader
 * elected in a later term); state machine safety (every node applies
 * the same entry at an index, and a snapshot carries the state every
 * node had at its index); linearizable read indexes (at least the
 * commit index any node had when the read was asked).  At the end the
 * network heals and every node restarts: a new proposal must then be
 * applied by every member within a bounded time.
 *
 * Before the seeds, a self-check runs the same harness on a core built
 * to grant two votes in a term (config.test_faults) and must see the
 * checker catch it, so a checker that cannot fail is noticed.
 *
 * Usage: raftsim [--seeds N] [--seed S] [--time-limit SEC] [--verbose]
 *        [--broken | --broken-commit]   (run the seeds with the double-
 *        vote or the commit-old-terms fault: they must fail)
 * Default: as many seeds as fit in DKV_RAFTSIM_SECONDS (60) up to 5000.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/raft.h"
#include "common/alloc.h"
#include "common/status.h"

#define MAXN 5
#define RUN_TIME 5000            /* time units of faults per seed */
#define TICK_UNITS 10            /* time units per tick */
#define HEAL_TIME 4000           /* time units allowed to recover */
#define MAX_RX 8

/* ------------------------------------------------------------- PRNG */

typedef struct prng {
    uint64_t s;
} prng_t;

static uint64_t
prng_next(prng_t *p)
{
    uint64_t z = (p->s += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint32_t
prng_below(prng_t *p, uint32_t n)
{
    return n ? (uint32_t)(prng_next(p) % n) : 0;
}

/* 1 with probability PERMILLE / 1000. */
static int
prng_chance(prng_t *p, uint32_t permille)
{
    return prng_below(p, 1000) < permille;
}

static uint32_t
core_random(void *baton)
{
    return (uint32_t)(prng_next(baton) >> 32);
}

static uint64_t
mix64(uint64_t z)
{
    z = (z ^ (z >> 33)) * UINT64_C(0xff51afd7ed558ccd);
    z = (z ^ (z >> 33)) * UINT64_C(0xc4ceb9fe1a85ec53);
    return z ^ (z >> 33);
}

static uint64_t
hash_bytes(const unsigned char *p, size_t n, uint8_t type)
{
    uint64_t h = UINT64_C(1469598103934665603) ^ type;
    size_t i;

    for (i = 0; i < n; i++) {
        h = (h ^ p[i]) * UINT64_C(1099511628211);
    }
    return mix64(h ^ n);
}

/* ------------------------------------------------------------- state */

typedef struct dentry {          /* a persisted entry */
    uint64_t term;
    uint8_t type;
    size_t len;
    unsigned char *data;
} dentry_t;

typedef struct rx_snap {
    uint64_t index, state;
} rx_snap_t;

typedef struct node {
    dkv_raft_t *r;
    int up;
    unsigned incarnation;
    uint64_t down_until;
    unsigned tick_phase;
    /* the disk */
    dkv_raft_hard_state_t hs;
    dkv_raft_snapshot_meta_t snap;
    uint64_t snap_state;
    dentry_t *log;               /* log[i] for snap.index < i <= last */
    size_t caplog;
    uint64_t last;
    uint64_t applied, state;     /* the state machine, on disk too */
    /* snapshot data received with SNAPSHOT messages */
    rx_snap_t rx[MAX_RX];
    size_t nrx;
} node_t;

typedef struct flight {
    uint64_t at, seq;
    uint32_t from, to;
    unsigned from_inc;
    unsigned char *buf;
    size_t len;
    int is_snap;
    uint64_t snap_index, snap_state;
} flight_t;

typedef struct lm_rec {          /* log matching: one (index, term) */
    uint64_t term, hash, prev_term;
} lm_rec_t;

typedef struct lm_slot {
    lm_rec_t *recs;
    size_t n, cap;
} lm_slot_t;

typedef struct app_rec {         /* state machine safety: one index */
    int set;
    uint64_t term, hash, state;
    uint64_t known_term;         /* max term anywhere when first applied */
} app_rec_t;

typedef struct read_rec {
    uint64_t context, min_index;
    uint32_t node;
    unsigned incarnation;
} read_rec_t;

typedef struct sim {
    uint64_t seed;
    int verbose;
    unsigned faults;
    prng_t rng;
    int n;
    node_t nodes[MAXN + 1];
    uint64_t now;
    /* network */
    flight_t *fl;
    size_t nfl, capfl;
    uint64_t seq;
    unsigned loss, dup, max_delay;      /* permille, permille, units */
    int part[MAXN + 1];                 /* partition group per node */
    uint64_t part_until;
    int oneway[MAXN + 1][MAXN + 1];     /* 1: a -> b dropped */
    uint64_t oneway_until;
    int no_prevote, no_check_quorum;
    /* checker */
    uint32_t *term_leader;
    size_t cap_tl;
    lm_slot_t *lm;
    size_t cap_lm;
    app_rec_t *app;
    size_t cap_app;
    uint64_t max_term, max_commit;
    read_rec_t *reads;
    size_t nreads, capreads;
    uint64_t next_value, next_context;
    char failure[512];
    /* statistics */
    unsigned long elections, crashes, snapshots, confs, transfers, nreads_ok;
} sim_t;

static void *
xrealloc(void *p, size_t size)
{
    void *q = dkv_realloc(p, size);

    if (q == NULL) {
        fputs("raftsim: out of memory\n", stderr);
        exit(2);
    }
    return q;
}

/* Grows *ARR (elements of SIZE, capacity *CAP) to hold index NEED-1,
 * zeroing the new part. */
static void
grow(void *arrp, size_t *cap, size_t need, size_t size)
{
    void **arr = (void **)arrp;
    size_t ncap = *cap ? *cap : 16;

    if (need <= *cap) {
        return;
    }
    while (ncap < need) {
        ncap *= 2;
    }
    *arr = xrealloc(*arr, ncap * size);
    memset((char *)*arr + *cap * size, 0, (ncap - *cap) * size);
    *cap = ncap;
}

static void vlog(sim_t *s, const char *fmt, ...) DKV_PRINTF(2, 3);
static void fail(sim_t *s, const char *fmt, ...) DKV_PRINTF(2, 3);

static void
vlog(sim_t *s, const char *fmt, ...)
{
    va_list ap;

    if (!s->verbose) {
        return;
    }
    printf("[%6llu] ", (unsigned long long)s->now);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void
fail(sim_t *s, const char *fmt, ...)
{
    va_list ap;

    if (s->failure[0] != '\0') {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s->failure, sizeof(s->failure), fmt, ap);
    va_end(ap);
    vlog(s, "FAILURE: %s", s->failure);
}

/* --------------------------------------------------------- the checker */

static void
check_leader(sim_t *s, uint32_t id, uint64_t term)
{
    node_t *nd = &s->nodes[id];
    size_t i;

    grow(&s->term_leader, &s->cap_tl, (size_t)term + 1, sizeof(uint32_t));
    if (s->term_leader[term] == id) {
        return;
    }
    if (s->term_leader[term] != 0) {
        fail(s, "election safety: nodes %u and %u both lead term %llu",
             (unsigned)s->term_leader[term], (unsigned)id,
             (unsigned long long)term);
        return;
    }
    s->term_leader[term] = id;
    s->elections++;
    vlog(s, "node %u leads term %llu", (unsigned)id,
         (unsigned long long)term);
    /* leader completeness */
    for (i = 1; i < s->cap_app; i++) {
        uint64_t t;
        dkv_raft_status_t st;

        if (!s->app[i].set || s->app[i].known_term >= term) {
            continue;
        }
        dkv_raft_status(nd->r, &st);
        if (i < st.first_index - 1) {
            continue;                /* compacted: behind its snapshot */
        }
        if (dkv_raft_term(&t, nd->r, i) != DKV_OK || t != s->app[i].term) {
            fail(s, "leader completeness: leader %u of term %llu lacks "
                 "committed entry %lu (term %llu)", (unsigned)id,
                 (unsigned long long)term, (unsigned long)i,
                 (unsigned long long)s->app[i].term);
            return;
        }
    }
}

static void
check_log_entry(sim_t *s, uint32_t id, uint64_t index, uint64_t term,
                uint64_t hash, uint64_t prev_term)
{
    lm_slot_t *sl;
    size_t k;

    grow(&s->lm, &s->cap_lm, (size_t)index + 1, sizeof(*s->lm));
    sl = &s->lm[index];
    for (k = 0; k < sl->n; k++) {
        if (sl->recs[k].term == term) {
            if (sl->recs[k].hash != hash
                || sl->recs[k].prev_term != prev_term) {
                fail(s, "log matching: node %u persisted entry %llu term "
                     "%llu unlike another node's (%s differs)",
                     (unsigned)id, (unsigned long long)index,
                     (unsigned long long)term,
                     sl->recs[k].hash != hash ? "data" : "previous term");
            }
            return;
        }
    }
    grow(&sl->recs, &sl->cap, sl->n + 1, sizeof(*sl->recs));
    sl->recs[sl->n].term = term;
    sl->recs[sl->n].hash = hash;
    sl->recs[sl->n].prev_term = prev_term;
    sl->n++;
}

static void
check_apply(sim_t *s, uint32_t id, uint64_t index, uint64_t term,
            uint64_t hash, uint64_t state)
{
    app_rec_t *a;

    grow(&s->app, &s->cap_app, (size_t)index + 1, sizeof(*s->app));
    a = &s->app[index];
    if (!a->set) {
        a->set = 1;
        a->term = term;
        a->hash = hash;
        a->state = state;
        a->known_term = s->max_term;
        return;
    }
    if (a->term != term || a->hash != hash || a->state != state) {
        fail(s, "state machine safety: node %u applied a different entry "
             "(or state) at index %llu", (unsigned)id,
             (unsigned long long)index);
    }
}

static void
observe(sim_t *s)
{
    int i;

    for (i = 1; i <= s->n; i++) {
        node_t *nd = &s->nodes[i];
        dkv_raft_status_t st;

        if (!nd->up) {
            continue;
        }
        dkv_raft_status(nd->r, &st);
        if (st.term > s->max_term) {
            s->max_term = st.term;
        }
        if (st.commit > s->max_commit) {
            s->max_commit = st.commit;
        }
        if (st.role == DKV_RAFT_LEADER) {
            check_leader(s, (uint32_t)i, st.term);
        }
    }
}

/* ------------------------------------------------------------- nodes */

static void
node_config(sim_t *s, dkv_raft_config_t *cfg, uint32_t id)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->id = id;
    cfg->election_ticks = 10;
    cfg->heartbeat_ticks = 1;
    cfg->max_append_entries = 8;
    cfg->max_append_bytes = 160;
    cfg->max_inflight = 4;
    cfg->snapshot_timeout_ticks = 40;
    cfg->no_prevote = s->no_prevote;
    cfg->no_check_quorum = s->no_check_quorum;
    cfg->random = core_random;
    cfg->random_baton = &s->rng;
    cfg->test_faults = s->faults;
}

static void
node_start(sim_t *s, uint32_t id)
{
    node_t *nd = &s->nodes[id];
    dkv_raft_config_t cfg;
    dkv_raft_restore_t rs;
    dkv_raft_entry_t *es;
    uint64_t i;
    size_t k = 0;
    dkv_status_t rv;

    es = xrealloc(NULL, (size_t)(nd->last - nd->snap.index + 1)
                        * sizeof(*es));
    for (i = nd->snap.index + 1; i <= nd->last; i++) {
        es[k].index = i;
        es[k].term = nd->log[i].term;
        es[k].type = nd->log[i].type;
        es[k].len = nd->log[i].len;
        es[k].data = nd->log[i].data;
        k++;
    }
    memset(&rs, 0, sizeof(rs));
    rs.snapshot = &nd->snap;
    rs.hard_state = &nd->hs;
    rs.entries = es;
    rs.nentries = k;
    rs.applied = nd->applied;
    node_config(s, &cfg, id);
    rv = dkv_raft_create(&nd->r, &cfg, &rs);
    dkv_free(es);
    if (rv != DKV_OK) {
        fail(s, "node %u: restore from its disk refused (%s)",
             (unsigned)id, dkv_last_error());
        return;
    }
    nd->up = 1;
    nd->incarnation++;
    nd->nrx = 0;
    nd->tick_phase = prng_below(&s->rng, TICK_UNITS);
}

static void
node_crash(sim_t *s, uint32_t id, const char *why)
{
    node_t *nd = &s->nodes[id];

    dkv_raft_destroy(nd->r);
    nd->r = NULL;
    nd->up = 0;
    nd->down_until = s->now + 50 + prng_below(&s->rng, 500);
    s->crashes++;
    vlog(s, "node %u crashes (%s)", (unsigned)id, why);
}

static void
disk_truncate(node_t *nd, uint64_t from)
{
    uint64_t i;

    for (i = from; i <= nd->last; i++) {
        dkv_free(nd->log[i].data);
        nd->log[i].data = NULL;
    }
    if (from <= nd->last) {
        nd->last = from - 1;
    }
}

/* Drops entries up to INDEX (compaction or a snapshot). */
static void
disk_drop_prefix(node_t *nd, uint64_t index)
{
    uint64_t i;

    for (i = nd->snap.index + 1; i <= index && i <= nd->last; i++) {
        dkv_free(nd->log[i].data);
        nd->log[i].data = NULL;
    }
}

static void
node_free_disk(node_t *nd)
{
    disk_truncate(nd, nd->snap.index + 1);
    dkv_free(nd->log);
    nd->log = NULL;
    nd->caplog = 0;
}

/* -------------------------------------------------------------- network */

static int
link_up(sim_t *s, uint32_t from, uint32_t to)
{
    return s->part[from] == s->part[to] && !s->oneway[from][to];
}

static void
send_msg(sim_t *s, node_t *from, const dkv_raft_msg_t *m0)
{
    dkv_raft_msg_t m = *m0;
    flight_t *f;
    dkv_status_t rv;

    grow(&s->fl, &s->capfl, s->nfl + 1, sizeof(*s->fl));
    f = &s->fl[s->nfl];
    memset(f, 0, sizeof(*f));
    if (m.type == DKV_RAFT_MSG_SNAPSHOT) {
        /* as the node's replica does: the snapshot is the state machine
         * now, with the core's metadata for its applied index */
        if (dkv_raft_snapshot_meta(&m.snapshot, from->r, from->applied)
            != DKV_OK) {
            fail(s, "node %u: no snapshot metadata for its applied index "
                 "%llu", (unsigned)m.from,
                 (unsigned long long)from->applied);
            return;
        }
        m.index = m.snapshot.index;
        m.log_term = m.snapshot.term;
        f->is_snap = 1;
        f->snap_index = from->applied;
        f->snap_state = from->state;
        s->snapshots++;
    }
    rv = dkv_raft_msg_encode(&f->buf, &f->len, &m);
    if (rv != DKV_OK) {
        fail(s, "encoding a message failed: %s", dkv_last_error());
        return;
    }
    f->from = m.from;
    f->to = m.to;
    f->from_inc = from->incarnation;
    f->seq = s->seq++;
    f->at = s->now + 1 + prng_below(&s->rng, s->max_delay);
    s->nfl++;
    if (prng_chance(&s->rng, s->dup)) {
        flight_t *g;
        grow(&s->fl, &s->capfl, s->nfl + 1, sizeof(*s->fl));
        f = &s->fl[s->nfl - 1];
        g = &s->fl[s->nfl];
        *g = *f;
        g->buf = xrealloc(NULL, f->len);
        memcpy(g->buf, f->buf, f->len);
        g->seq = s->seq++;
        g->at = s->now + 1 + prng_below(&s->rng, 3 * s->max_delay);
        s->nfl++;
    }
}

static void
snapshot_lost(sim_t *s, const flight_t *f)
{
    node_t *from = &s->nodes[f->from];

    if (f->is_snap && from->up && from->incarnation == f->from_inc) {
        dkv_raft_snapshot_failed(from->r, f->to);
    }
}

static void
deliver(sim_t *s, flight_t *f)
{
    node_t *to = &s->nodes[f->to];
    dkv_raft_msg_t m;
    dkv_raft_entry_t *eb = NULL;

    if (!to->up || !link_up(s, f->from, f->to)
        || prng_chance(&s->rng, s->loss)) {
        snapshot_lost(s, f);
        return;
    }
    if (dkv_raft_msg_decode(&m, &eb, f->buf, f->len) != DKV_OK) {
        fail(s, "decoding a message failed: %s", dkv_last_error());
        return;
    }
    if (f->is_snap) {
        if (to->nrx == MAX_RX) {
            memmove(to->rx, to->rx + 1, (MAX_RX - 1) * sizeof(*to->rx));
            to->nrx--;
        }
        to->rx[to->nrx].index = f->snap_index;
        to->rx[to->nrx].state = f->snap_state;
        to->nrx++;
    }
    if (s->verbose > 1) {
        vlog(s, "  %u -> %u type %u term %llu index %llu log_term %llu "
             "commit %llu n %lu reject %d hint %llu", (unsigned)m.from,
             (unsigned)m.to, (unsigned)m.type, (unsigned long long)m.term,
             (unsigned long long)m.index, (unsigned long long)m.log_term,
             (unsigned long long)m.commit, (unsigned long)m.nentries,
             m.reject,
             (unsigned long long)m.reject_hint);
    }
    if (dkv_raft_step(to->r, &m) != DKV_OK) {
        fail(s, "node %u refused a well-formed message: %s",
             (unsigned)f->to, dkv_last_error());
    }
    dkv_free(eb);
}

/* Delivers every message due now, in (time, sequence) order. */
static void
deliver_due(sim_t *s)
{
    for (;;) {
        size_t i, best = s->nfl;
        flight_t f;

        for (i = 0; i < s->nfl; i++) {
            if (s->fl[i].at <= s->now
                && (best == s->nfl || s->fl[i].seq < s->fl[best].seq)) {
                best = i;
            }
        }
        if (best == s->nfl || s->failure[0]) {
            return;
        }
        f = s->fl[best];
        s->fl[best] = s->fl[--s->nfl];
        deliver(s, &f);
        dkv_free(f.buf);
    }
}

/* ------------------------------------------------------------- readies */

static uint64_t
entry_hash(const dkv_raft_entry_t *e)
{
    return hash_bytes(e->data, e->len, e->type);
}

/* Persists what READY asks of node ID.  Returns 0 on a checker failure. */
static int
persist(sim_t *s, uint32_t id, const dkv_raft_ready_t *rd)
{
    node_t *nd = &s->nodes[id];
    size_t k;

    if (rd->has_hard_state) {
        nd->hs = rd->hard_state;
    }
    if (rd->truncate_from != 0) {
        disk_truncate(nd, rd->truncate_from);
    }
    if (rd->has_snapshot) {
        size_t j;
        int found = 0;

        for (j = nd->nrx; j-- > 0;) {
            if (nd->rx[j].index == rd->snapshot.index) {
                found = 1;
                break;
            }
        }
        if (!found) {
            fail(s, "node %u: the core installs snapshot %llu it was not "
                 "sent", (unsigned)id,
                 (unsigned long long)rd->snapshot.index);
            return 0;
        }
        disk_truncate(nd, nd->snap.index + 1);
        nd->snap = rd->snapshot;
        nd->snap_state = nd->rx[j].state;
        nd->last = rd->snapshot.index;
        nd->applied = rd->snapshot.index;
        nd->state = nd->rx[j].state;
        if (nd->applied >= s->cap_app || !s->app[nd->applied].set
            || s->app[nd->applied].term != rd->snapshot.term
            || s->app[nd->applied].state != nd->state) {
            fail(s, "state machine safety: node %u installed a snapshot at "
                 "%llu whose state differs", (unsigned)id,
                 (unsigned long long)nd->applied);
        }
        vlog(s, "node %u installs snapshot %llu", (unsigned)id,
             (unsigned long long)nd->applied);
    }
    for (k = 0; k < rd->nentries; k++) {
        const dkv_raft_entry_t *e = &rd->entries[k];
        uint64_t prev_term;
        dentry_t *d;

        if (e->index != nd->last + 1 || e->index <= nd->snap.index) {
            fail(s, "node %u: persisting entry %llu after %llu leaves a "
                 "gap", (unsigned)id, (unsigned long long)e->index,
                 (unsigned long long)nd->last);
            return 0;
        }
        prev_term = e->index - 1 == nd->snap.index
                    ? nd->snap.term : nd->log[e->index - 1].term;
        check_log_entry(s, id, e->index, e->term, entry_hash(e), prev_term);
        grow(&nd->log, &nd->caplog, (size_t)e->index + 1, sizeof(*nd->log));
        d = &nd->log[e->index];
        d->term = e->term;
        d->type = e->type;
        d->len = e->len;
        d->data = NULL;
        if (e->len > 0) {
            d->data = xrealloc(NULL, e->len);
            memcpy(d->data, e->data, e->len);
        }
        nd->last = e->index;
    }
    for (k = 0; k < rd->ncommitted; k++) {
        const dkv_raft_entry_t *e = &rd->committed[k];
        uint64_t h = entry_hash(e);

        if (e->index != nd->applied + 1) {
            fail(s, "node %u: committed entry %llu after applied %llu",
                 (unsigned)id, (unsigned long long)e->index,
                 (unsigned long long)nd->applied);
            return 0;
        }
        nd->state = mix64(nd->state ^ mix64(e->index * 31 + e->term) ^ h);
        nd->applied = e->index;
        check_apply(s, id, e->index, e->term, h, nd->state);
    }
    /* the hard state's commit must be covered by the persisted log */
    if (nd->hs.commit > nd->last) {
        fail(s, "node %u: persisted commit %llu beyond its log (%llu)",
             (unsigned)id, (unsigned long long)nd->hs.commit,
             (unsigned long long)nd->last);
        return 0;
    }
    return s->failure[0] == '\0';
}

static void
check_reads(sim_t *s, uint32_t id, const dkv_raft_ready_t *rd)
{
    size_t k, j;

    for (k = 0; k < rd->nreads; k++) {
        for (j = 0; j < s->nreads; j++) {
            if (s->reads[j].context == rd->reads[k].context) {
                break;
            }
        }
        if (j == s->nreads || s->reads[j].node != id) {
            fail(s, "node %u: answer for unknown read %llu", (unsigned)id,
                 (unsigned long long)rd->reads[k].context);
            return;
        }
        if (rd->reads[k].index < s->reads[j].min_index) {
            fail(s, "linearizable reads: read %llu on node %u got index "
                 "%llu, but %llu was committed when it was asked",
                 (unsigned long long)rd->reads[k].context, (unsigned)id,
                 (unsigned long long)rd->reads[k].index,
                 (unsigned long long)s->reads[j].min_index);
            return;
        }
        s->nreads_ok++;
        s->reads[j] = s->reads[--s->nreads];
    }
    for (k = 0; k < rd->nfailed_reads; k++) {
        for (j = 0; j < s->nreads; j++) {
            if (s->reads[j].context == rd->failed_reads[k]) {
                s->reads[j] = s->reads[--s->nreads];
                break;
            }
        }
    }
}

/* Handles node ID's readies; CRASHY allows crashes part way. */
static void
handle_readies(sim_t *s, uint32_t id, int crashy)
{
    node_t *nd = &s->nodes[id];
    int guard;

    for (guard = 0; guard < 20 && nd->up && dkv_raft_has_ready(nd->r)
                    && !s->failure[0]; guard++) {
        dkv_raft_ready_t rd;
        int point = -1;
        size_t k;

        dkv_raft_ready(nd->r, &rd);
        if (crashy && prng_chance(&s->rng, 2)) {
            point = (int)prng_below(&s->rng, 3);
        }
        if (point == 0) {
            node_crash(s, id, "before persisting a ready");
            return;
        }
        if (!persist(s, id, &rd)) {
            return;
        }
        if (point == 1) {
            node_crash(s, id, "after persisting, before sending");
            return;
        }
        for (k = 0; k < rd.nmessages; k++) {
            send_msg(s, nd, &rd.messages[k]);
        }
        check_reads(s, id, &rd);
        if (point == 2) {
            node_crash(s, id, "before advance");
            return;
        }
        dkv_raft_advance(nd->r, &rd);
    }
}

/* ------------------------------------------------------------ actions */

static uint32_t
find_leader(sim_t *s)
{
    int i;
    uint32_t best = 0;
    uint64_t best_term = 0;

    for (i = 1; i <= s->n; i++) {
        dkv_raft_status_t st;
        if (!s->nodes[i].up) {
            continue;
        }
        dkv_raft_status(s->nodes[i].r, &st);
        if (st.role == DKV_RAFT_LEADER && st.term >= best_term) {
            best = (uint32_t)i;
            best_term = st.term;
        }
    }
    return best;
}

static uint32_t
random_up(sim_t *s)
{
    uint32_t id = 1 + prng_below(&s->rng, (uint32_t)s->n);

    return s->nodes[id].up ? id : 0;
}

static int
propose_value(sim_t *s, uint32_t id, uint64_t *index)
{
    unsigned char buf[48];
    size_t len = 8 + prng_below(&s->rng, 40), i;
    uint64_t v = ++s->next_value;

    for (i = 0; i < 8; i++) {
        buf[i] = (unsigned char)(v >> (8 * i));
    }
    for (; i < len; i++) {
        buf[i] = (unsigned char)prng_below(&s->rng, 256);
    }
    return dkv_raft_propose(index, s->nodes[id].r, buf, len) == DKV_OK;
}

static void
conf_change(sim_t *s, uint32_t lead)
{
    dkv_raft_status_t st;
    dkv_raft_conf_change_t cc;
    uint32_t id = 1 + prng_below(&s->rng, (uint32_t)s->n);
    size_t i;
    int voter = 0, learner = 0;

    dkv_raft_status(s->nodes[lead].r, &st);
    for (i = 0; i < st.conf.nvoters; i++) {
        voter |= st.conf.voters[i] == id;
    }
    for (i = 0; i < st.conf.nlearners; i++) {
        learner |= st.conf.learners[i] == id;
    }
    cc.node = id;
    if (learner) {
        cc.type = prng_chance(&s->rng, 800) ? DKV_RAFT_PROMOTE
                                            : DKV_RAFT_REMOVE;
    } else if (voter) {
        if (st.conf.nvoters <= 2) {
            return;
        }
        cc.type = DKV_RAFT_REMOVE;
    } else {
        cc.type = DKV_RAFT_ADD_LEARNER;
    }
    if (dkv_raft_propose_conf(NULL, s->nodes[lead].r, &cc) == DKV_OK) {
        s->confs++;
        vlog(s, "leader %u proposes %s %u", (unsigned)lead,
             cc.type == DKV_RAFT_ADD_LEARNER ? "add learner"
             : cc.type == DKV_RAFT_PROMOTE ? "promote" : "remove",
             (unsigned)id);
    }
}

static void
ask_read(sim_t *s, uint32_t id)
{
    read_rec_t *rr;

    grow(&s->reads, &s->capreads, s->nreads + 1, sizeof(*s->reads));
    rr = &s->reads[s->nreads++];
    rr->context = ++s->next_context;
    rr->min_index = s->max_commit;
    rr->node = id;
    rr->incarnation = s->nodes[id].incarnation;
    dkv_raft_read_index(s->nodes[id].r, rr->context);
}

static void
compact(sim_t *s, uint32_t id)
{
    node_t *nd = &s->nodes[id];
    dkv_raft_snapshot_meta_t meta;
    uint64_t index = nd->applied;

    /* as a replica does: right after an advance (a snapshot received
     * since may have moved the core past the state machine) */
    if (index <= nd->snap.index || index > nd->last
        || dkv_raft_has_ready(nd->r)) {
        return;
    }
    if (dkv_raft_snapshot_meta(&meta, nd->r, index) != DKV_OK) {
        dkv_raft_status_t st;
        dkv_raft_status(nd->r, &st);
        fail(s, "node %u: no snapshot metadata at applied %llu (core: "
             "first %llu, commit %llu, applied %llu)",
             (unsigned)id, (unsigned long long)index,
             (unsigned long long)st.first_index,
             (unsigned long long)st.commit,
             (unsigned long long)st.applied);
        return;
    }
    if (dkv_raft_compact(nd->r, index) != DKV_OK) {
        fail(s, "node %u: compaction to applied %llu refused: %s",
             (unsigned)id, (unsigned long long)index, dkv_last_error());
        return;
    }
    disk_drop_prefix(nd, index);
    nd->snap = meta;
    nd->snap_state = nd->state;
}

static void
new_partition(sim_t *s)
{
    int i;

    for (i = 1; i <= s->n; i++) {
        s->part[i] = (int)prng_below(&s->rng, 2 + prng_below(&s->rng, 2));
    }
    s->part_until = s->now + 100 + prng_below(&s->rng, 800);
    vlog(s, "partition %d%d%d%d%d", s->part[1], s->part[2], s->part[3],
         s->part[4], s->part[5]);
}

static void
heal(sim_t *s)
{
    memset(s->part, 0, sizeof(s->part));
    memset(s->oneway, 0, sizeof(s->oneway));
}

static void
random_events(sim_t *s)
{
    uint32_t id, lead;
    int i;

    if (s->part_until != 0 && s->now >= s->part_until) {
        memset(s->part, 0, sizeof(s->part));
        s->part_until = 0;
        vlog(s, "partition healed");
    } else if (s->part_until == 0 && prng_chance(&s->rng, 3)) {
        new_partition(s);
    }
    if (s->oneway_until != 0 && s->now >= s->oneway_until) {
        memset(s->oneway, 0, sizeof(s->oneway));
        s->oneway_until = 0;
    } else if (s->oneway_until == 0 && prng_chance(&s->rng, 2)) {
        uint32_t a = 1 + prng_below(&s->rng, (uint32_t)s->n);
        uint32_t b = 1 + prng_below(&s->rng, (uint32_t)s->n);
        s->oneway[a][b] = 1;
        s->oneway_until = s->now + 100 + prng_below(&s->rng, 600);
        vlog(s, "link %u -> %u drops", (unsigned)a, (unsigned)b);
    }
    for (i = 1; i <= s->n; i++) {
        node_t *nd = &s->nodes[i];
        if (!nd->up && s->now >= nd->down_until) {
            node_start(s, (uint32_t)i);
            vlog(s, "node %d restarts (applied %llu)", i,
                 (unsigned long long)nd->applied);
        } else if (nd->up && prng_chance(&s->rng, 1)) {
            node_crash(s, (uint32_t)i, "at random");
        }
    }
    lead = find_leader(s);
    if (lead != 0 && prng_chance(&s->rng, 100)) {
        /* a client with backpressure: not while 40 entries wait */
        dkv_raft_status_t st;
        int n = 1 + (int)prng_below(&s->rng, 3);

        dkv_raft_status(s->nodes[lead].r, &st);
        while (n-- > 0 && st.last_index - st.commit < 40) {
            propose_value(s, lead, NULL);
        }
    }
    /* a removed node that missed its removal disrupts a group with
     * neither pre-vote nor check-quorum (the thesis, 4.2.3): those runs
     * keep their membership */
    if (lead != 0 && prng_chance(&s->rng, 4)
        && !(s->no_prevote && s->no_check_quorum)) {
        conf_change(s, lead);
    }
    if (lead != 0 && prng_chance(&s->rng, 3)) {
        uint32_t to = 1 + prng_below(&s->rng, (uint32_t)s->n);
        if (dkv_raft_transfer(s->nodes[lead].r, to) == DKV_OK) {
            s->transfers++;
            vlog(s, "leader %u transfers to %u", (unsigned)lead,
                 (unsigned)to);
        }
    }
    if (prng_chance(&s->rng, 40) && (id = random_up(s)) != 0) {
        ask_read(s, id);
    }
    if (prng_chance(&s->rng, 10) && (id = random_up(s)) != 0) {
        compact(s, id);
    }
}

/* One time unit: deliveries, ticks, readies, checks. */
static void
step(sim_t *s, int faults)
{
    int i;

    s->now++;
    deliver_due(s);
    for (i = 1; i <= s->n && !s->failure[0]; i++) {
        node_t *nd = &s->nodes[i];
        if (nd->up && s->now % TICK_UNITS == nd->tick_phase) {
            dkv_raft_tick(nd->r);
        }
    }
    if (faults && !s->failure[0]) {
        random_events(s);
    }
    for (i = 1; i <= s->n && !s->failure[0]; i++) {
        handle_readies(s, (uint32_t)i, faults);
    }
    if (!s->failure[0]) {
        observe(s);
    }
}

/* ---------------------------------------------------------------- runs */

static void
sim_free(sim_t *s)
{
    int i;
    size_t k;

    for (i = 1; i <= s->n; i++) {
        dkv_raft_destroy(s->nodes[i].r);
        node_free_disk(&s->nodes[i]);
    }
    for (k = 0; k < s->nfl; k++) {
        dkv_free(s->fl[k].buf);
    }
    dkv_free(s->fl);
    for (k = 0; k < s->cap_lm; k++) {
        dkv_free(s->lm[k].recs);
    }
    dkv_free(s->lm);
    dkv_free(s->app);
    dkv_free(s->term_leader);
    dkv_free(s->reads);
}

static void
dump_nodes(sim_t *s)
{
    int i;

    for (i = 1; i <= s->n && s->verbose; i++) {
        dkv_raft_status_t st;
        if (!s->nodes[i].up) {
            vlog(s, "  node %d down", i);
            continue;
        }
        dkv_raft_status(s->nodes[i].r, &st);
        vlog(s, "  node %d %s term %llu leader %u commit %llu applied %llu "
             "log %llu..%llu voters %lu (%u %u ...) learners %lu", i,
             dkv_raft_role_name(st.role), (unsigned long long)st.term,
             (unsigned)st.leader, (unsigned long long)st.commit,
             (unsigned long long)st.applied,
             (unsigned long long)st.first_index,
             (unsigned long long)st.last_index,
             (unsigned long)st.conf.nvoters, (unsigned)st.conf.voters[0],
             (unsigned)st.conf.voters[1], (unsigned long)st.conf.nlearners);
    }
}

/* After healing: a new proposal must be applied by every member.  A
 * proposal a deposed leader never committed is made again. */
static void
check_progress(sim_t *s)
{
    uint64_t deadline = s->now + HEAL_TIME, index = 0, asked = 0;
    uint32_t lead = 0;
    int i;

    heal(s);
    s->loss = 0;
    s->dup = 0;
    for (i = 1; i <= s->n; i++) {
        if (!s->nodes[i].up) {
            node_start(s, (uint32_t)i);
        }
    }
    vlog(s, "network healed, every node up");
    while (s->now < deadline && !s->failure[0]) {
        dkv_raft_status_t st;
        int all = 1;
        size_t k;

        step(s, 0);
        if (index == 0 || s->now - asked > 100 * TICK_UNITS) {
            lead = find_leader(s);
            if (lead != 0 && propose_value(s, lead, &index)) {
                asked = s->now;
                vlog(s, "final proposal at %llu on leader %u",
                     (unsigned long long)index, (unsigned)lead);
                dump_nodes(s);
            }
            continue;
        }
        dkv_raft_status(s->nodes[lead].r, &st);
        for (k = 0; k < st.conf.nvoters + st.conf.nlearners; k++) {
            uint32_t m = k < st.conf.nvoters ? st.conf.voters[k]
                         : st.conf.learners[k - st.conf.nvoters];
            if (m < 1 || m > (uint32_t)s->n || s->nodes[m].applied < index) {
                all = 0;
            }
        }
        if (all) {
            return;
        }
    }
    if (!s->failure[0]) {
        dump_nodes(s);
        fail(s, "liveness: after healing, the proposal at %llu was not "
             "applied by every member within %d time units",
             (unsigned long long)index, HEAL_TIME);
    }
}

static int
run_seed(uint64_t seed, int verbose, unsigned faults, char *why,
         size_t whylen, sim_t *stats)
{
    static sim_t s;
    int i;
    uint64_t end;

    memset(&s, 0, sizeof(s));
    s.seed = seed;
    s.verbose = verbose;
    s.faults = faults;
    s.rng.s = seed * UINT64_C(0x2545f4914f6cdd1d) + 1;
    s.n = seed % 2 ? 3 : 5;
    s.loss = (unsigned[]){ 0, 10, 50, 150 }[prng_below(&s.rng, 4)];
    s.dup = prng_chance(&s.rng, 500) ? 20 : 0;
    s.max_delay = (unsigned[]){ 2, 10, 30 }[prng_below(&s.rng, 3)];
    s.no_prevote = prng_chance(&s.rng, 125);
    s.no_check_quorum = prng_chance(&s.rng, 125);
    for (i = 1; i <= s.n; i++) {
        node_t *nd = &s.nodes[i];
        int j;
        for (j = 1; j <= s.n; j++) {
            nd->snap.conf.voters[nd->snap.conf.nvoters++] = (uint32_t)j;
        }
    }
    vlog(&s, "seed %llu: %d nodes, loss %u/1000, dup %u/1000, delay <= %u,"
         " prevote %s, check-quorum %s", (unsigned long long)seed, s.n,
         s.loss, s.dup, s.max_delay, s.no_prevote ? "off" : "on",
         s.no_check_quorum ? "off" : "on");
    for (i = 1; i <= s.n && !s.failure[0]; i++) {
        node_start(&s, (uint32_t)i);
    }
    end = RUN_TIME;
    while (s.now < end && !s.failure[0]) {
        step(&s, 1);
    }
    if (!s.failure[0]) {
        check_progress(&s);
    }
    if (stats != NULL) {
        stats->elections += s.elections;
        stats->crashes += s.crashes;
        stats->snapshots += s.snapshots;
        stats->confs += s.confs;
        stats->transfers += s.transfers;
        stats->nreads_ok += s.nreads_ok;
    }
    if (s.failure[0]) {
        snprintf(why, whylen, "%s", s.failure);
    }
    sim_free(&s);
    return s.failure[0] ? 1 : 0;
}

/* ---------------------------------------------------------------- main */

static void
usage(void)
{
    puts("usage: raftsim [--seeds N] [--seed S] [--time-limit SEC] "
         "[--verbose] [--broken|--broken-commit]\n"
         "  --seeds N       run seeds 1..N (default: up to 5000, as many "
         "as fit\n"
         "                  in the time limit)\n"
         "  --seed S        run seed S only (replay a failure)\n"
         "  --time-limit T  seconds for the seeds (default: "
         "$DKV_RAFTSIM_SECONDS or 60)\n"
         "  --verbose       print what happens\n"
         "  --broken        run with a core that grants two votes a term "
         "(must fail)\n"
         "  --broken-commit run with a core that commits older terms' "
         "entries by\n"
         "                  counting (must fail)");
}

static int
parse_u64(const char *s, uint64_t *v)
{
    char *end;
    unsigned long long x;

    if (s == NULL || *s == '\0') {
        return 0;
    }
    x = strtoull(s, &end, 10);
    if (*end != '\0') {
        return 0;
    }
    *v = (uint64_t)x;
    return 1;
}

/* The harness must be able to fail: a core that grants two votes in a
 * term has to be caught within a bounded number of seeds. */
static int
self_check(void)
{
    char why[512];
    uint64_t seed;

    for (seed = 1; seed <= 400; seed++) {
        if (run_seed(seed, 0, DKV_RAFT_TEST_DOUBLE_VOTE, why, sizeof(why),
                     NULL)) {
            if (strstr(why, "liveness") != NULL) {
                continue;
            }
            printf("raftsim: self-check: the double-vote fault is caught "
                   "by seed %llu (%s)\n", (unsigned long long)seed, why);
            return 1;
        }
    }
    printf("raftsim: self-check FAILED: a core granting two votes a term "
           "passed 400 seeds; the checker cannot fail\n");
    return 0;
}

int
main(int argc, char **argv)
{
    uint64_t nseeds = 5000, one = 0, limit = 60, seed, ran = 0;
    int verbose = 0, broken = 0, have_one = 0, i;
    unsigned faults;
    const char *env = getenv("DKV_RAFTSIM_SECONDS");
    time_t start;
    char why[512];
    sim_t stats;

    if (env != NULL && !parse_u64(env, &limit)) {
        fprintf(stderr, "raftsim: bad DKV_RAFTSIM_SECONDS\n");
        return 2;
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--seeds") == 0 && parse_u64(v, &nseeds)) {
            i++;
        } else if (strcmp(a, "--seed") == 0 && parse_u64(v, &one)) {
            have_one = 1;
            i++;
        } else if (strcmp(a, "--time-limit") == 0 && parse_u64(v, &limit)) {
            i++;
        } else if (strcmp(a, "--verbose") == 0) {
            verbose++;
        } else if (strcmp(a, "--broken") == 0) {
            broken = 1;
        } else if (strcmp(a, "--broken-commit") == 0) {
            broken = 2;
        } else if (strcmp(a, "--help") == 0) {
            usage();
            return 0;
        } else {
            usage();
            return 2;
        }
    }
    faults = broken == 1 ? DKV_RAFT_TEST_DOUBLE_VOTE
             : broken == 2 ? DKV_RAFT_TEST_COMMIT_OLD_TERMS : 0;
    if (have_one) {
        if (run_seed(one, verbose, faults, why, sizeof(why), NULL)) {
            printf("raftsim: seed %llu FAILED: %s\n",
                   (unsigned long long)one, why);
            return 1;
        }
        printf("raftsim: seed %llu passed (%d nodes)\n",
               (unsigned long long)one, one % 2 ? 3 : 5);
        return 0;
    }
    start = time(NULL);
    if (!broken && !self_check()) {
        return 1;
    }
    memset(&stats, 0, sizeof(stats));
    for (seed = 1; seed <= nseeds; seed++) {
        if (limit > 0 && (uint64_t)(time(NULL) - start) >= limit) {
            break;
        }
        if (run_seed(seed, verbose, faults, why, sizeof(why), &stats)) {
            printf("raftsim: seed %llu FAILED: %s\n"
                   "raftsim: replay with: raftsim --seed %llu --verbose%s\n"
                   "raftsim: %llu seeds passed before it\n",
                   (unsigned long long)seed, why, (unsigned long long)seed,
                   broken == 1 ? " --broken" : broken == 2
                   ? " --broken-commit" : "", (unsigned long long)ran);
            return 1;
        }
        ran++;
    }
    printf("raftsim: %llu seeds passed (3 and 5 nodes), 0 failed "
           "(%lu elections, %lu crashes, %lu snapshots sent, %lu membership "
           "changes, %lu transfers, %lu read indexes checked)\n",
           (unsigned long long)ran, stats.elections, stats.crashes,
           stats.snapshots, stats.confs, stats.transfers, stats.nreads_ok);
    return ran > 0 ? 0 : 1;
}
