/*
 * test_raft.c -- suite `raft`: the Raft core (src/raft/raft.c) driven
 * through small hand-made clusters, and its encodings (src/raft/msg.c).
 *
 * The cluster here is synchronous: each node's ready is handled in full
 * (persisted into a per-node copy of what a disk would hold, messages
 * encoded with dkv_raft_msg_encode and queued, committed entries
 * recorded), then the queued messages are decoded and stepped, unless a
 * link is cut.  Long random runs are tests/raft/raftsim's job; here every
 * test checks one behaviour step by step.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "common/alloc.h"
#include "raft/raft.h"

#define TN_MAX 6
#define TN_LOG 512
#define TN_QUEUE 4096

typedef struct tentry {
    uint64_t term;
    uint8_t type;
    size_t len;
    unsigned char data[32];
} tentry_t;

typedef struct tnode {
    dkv_raft_t *r;
    int up;
    /* what the disk holds */
    dkv_raft_hard_state_t hs;
    dkv_raft_snapshot_meta_t snap;
    tentry_t log[TN_LOG];        /* index i at log[i] */
    uint64_t last;
    uint64_t applied;
    /* what the state machine saw */
    uint64_t app_index[TN_LOG];
    size_t napp;
    int snapshots_installed;
    /* reads answered */
    dkv_raft_read_state_t reads[16];
    size_t nreads;
    uint64_t failed[16];
    size_t nfailed;
} tnode_t;

typedef struct qmsg {
    unsigned char *buf;
    size_t len;
    uint32_t from, to;
} qmsg_t;

typedef struct tnet {
    tnode_t nodes[TN_MAX + 1];   /* by id, 1..n */
    int n;
    int cut[TN_MAX + 1][TN_MAX + 1];   /* 1: messages from a to b lost */
    qmsg_t q[TN_QUEUE];
    size_t nq;
    uint32_t seed;
    unsigned test_faults;
    int no_prevote;
    int drop_type;               /* messages of this type are lost */
} tnet_t;

static uint32_t
t_random(void *baton)
{
    uint32_t *s = baton;

    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void
tn_config(tnet_t *net, dkv_raft_config_t *cfg, uint32_t id)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->id = id;
    cfg->election_ticks = 10;
    cfg->heartbeat_ticks = 1;
    cfg->max_inflight = 4;
    cfg->max_append_entries = 8;
    cfg->random = t_random;
    cfg->random_baton = &net->seed;
    cfg->test_faults = net->test_faults;
    cfg->no_prevote = net->no_prevote;
}

/* Starts (or restarts) node ID from what its disk holds. */
static void
tn_start(tnet_t *net, uint32_t id)
{
    tnode_t *nd = &net->nodes[id];
    dkv_raft_config_t cfg;
    dkv_raft_restore_t rs;
    dkv_raft_entry_t es[TN_LOG];
    uint64_t i;
    size_t k = 0;

    for (i = nd->snap.index + 1; i <= nd->last; i++) {
        es[k].index = i;
        es[k].term = nd->log[i].term;
        es[k].type = nd->log[i].type;
        es[k].len = nd->log[i].len;
        es[k].data = nd->log[i].len ? nd->log[i].data : NULL;
        k++;
    }
    memset(&rs, 0, sizeof(rs));
    rs.snapshot = &nd->snap;
    rs.hard_state = &nd->hs;
    rs.entries = es;
    rs.nentries = k;
    rs.applied = nd->applied;
    tn_config(net, &cfg, id);
    DKV_ASSERT_OK(dkv_raft_create(&nd->r, &cfg, &rs));
    nd->up = 1;
}

static void
tn_init(tnet_t *net, int voters, int n)
{
    int i, j;

    memset(net, 0, sizeof(*net));
    net->n = n;
    net->seed = 42;
    for (i = 1; i <= n; i++) {
        tnode_t *nd = &net->nodes[i];
        for (j = 1; j <= voters; j++) {
            nd->snap.conf.voters[nd->snap.conf.nvoters++] = (uint32_t)j;
        }
    }
}

static void
tn_start_all(tnet_t *net)
{
    int i;

    for (i = 1; i <= net->n; i++) {
        tn_start(net, (uint32_t)i);
    }
}

static void
tn_free(tnet_t *net)
{
    int i;
    size_t k;

    for (i = 1; i <= net->n; i++) {
        dkv_raft_destroy(net->nodes[i].r);
        net->nodes[i].r = NULL;
    }
    for (k = 0; k < net->nq; k++) {
        dkv_free(net->q[k].buf);
    }
    net->nq = 0;
}

static void
tn_crash(tnet_t *net, uint32_t id)
{
    dkv_raft_destroy(net->nodes[id].r);
    net->nodes[id].r = NULL;
    net->nodes[id].up = 0;
}

/* Handles every ready of node ID. */
static void
tn_ready(tnet_t *net, uint32_t id)
{
    tnode_t *nd = &net->nodes[id];
    dkv_raft_ready_t rd;
    size_t k;
    int guard = 0;

    while (nd->up && dkv_raft_has_ready(nd->r) && guard++ < 100) {
        dkv_raft_ready(nd->r, &rd);
        if (rd.has_hard_state) {
            nd->hs = rd.hard_state;
        }
        if (rd.truncate_from != 0 && rd.truncate_from <= nd->last) {
            nd->last = rd.truncate_from - 1;
        }
        for (k = 0; k < rd.nentries; k++) {
            const dkv_raft_entry_t *e = &rd.entries[k];
            DKV_ASSERT_TRUE(e->index == nd->last + 1);
            DKV_ASSERT_TRUE(e->index < TN_LOG && e->len <= 32);
            nd->log[e->index].term = e->term;
            nd->log[e->index].type = e->type;
            nd->log[e->index].len = e->len;
            if (e->len) {
                memcpy(nd->log[e->index].data, e->data, e->len);
            }
            nd->last = e->index;
        }
        if (rd.has_snapshot) {
            nd->snap = rd.snapshot;
            if (nd->last < rd.snapshot.index) {
                nd->last = rd.snapshot.index;
            }
            nd->applied = rd.snapshot.index;
            nd->snapshots_installed++;
        }
        for (k = 0; k < rd.nmessages; k++) {
            qmsg_t *q;
            DKV_ASSERT_TRUE(net->nq < TN_QUEUE);
            q = &net->q[net->nq++];
            DKV_ASSERT_OK(dkv_raft_msg_encode(&q->buf, &q->len,
                                              &rd.messages[k]));
            q->from = rd.messages[k].from;
            q->to = rd.messages[k].to;
        }
        for (k = 0; k < rd.ncommitted; k++) {
            DKV_ASSERT_TRUE(rd.committed[k].index == nd->applied + 1);
            nd->applied = rd.committed[k].index;
            if (nd->napp < TN_LOG) {
                nd->app_index[nd->napp++] = nd->applied;
            }
        }
        for (k = 0; k < rd.nreads && nd->nreads < 16; k++) {
            nd->reads[nd->nreads++] = rd.reads[k];
        }
        for (k = 0; k < rd.nfailed_reads && nd->nfailed < 16; k++) {
            nd->failed[nd->nfailed++] = rd.failed_reads[k];
        }
        dkv_raft_advance(nd->r, &rd);
    }
}

/* Delivers the queued messages (and what they cause) until quiet. */
static void
tn_settle(tnet_t *net)
{
    int round, i;

    for (round = 0; round < 200; round++) {
        qmsg_t batch[TN_QUEUE];
        size_t nb, k;

        for (i = 1; i <= net->n; i++) {
            tn_ready(net, (uint32_t)i);
        }
        if (net->nq == 0) {
            return;
        }
        nb = net->nq;
        memcpy(batch, net->q, nb * sizeof(*batch));
        net->nq = 0;
        for (k = 0; k < nb; k++) {
            tnode_t *to = &net->nodes[batch[k].to];
            dkv_raft_msg_t m;
            dkv_raft_entry_t *eb;

            if (batch[k].to >= 1 && batch[k].to <= (uint32_t)net->n
                && to->up && !net->cut[batch[k].from][batch[k].to]) {
                DKV_ASSERT_OK(dkv_raft_msg_decode(&m, &eb, batch[k].buf,
                                                  batch[k].len));
                if (m.type != net->drop_type) {
                    DKV_ASSERT_OK(dkv_raft_step(to->r, &m));
                }
                dkv_free(eb);
            }
            dkv_free(batch[k].buf);
        }
    }
}

static void
tn_tick(tnet_t *net, uint32_t id)
{
    if (net->nodes[id].up) {
        dkv_raft_tick(net->nodes[id].r);
    }
}

static void
tn_tick_all(tnet_t *net, int times)
{
    int t, i;

    for (t = 0; t < times; t++) {
        for (i = 1; i <= net->n; i++) {
            tn_tick(net, (uint32_t)i);
        }
        tn_settle(net);
    }
}

static dkv_raft_status_t
tn_status(tnet_t *net, uint32_t id)
{
    dkv_raft_status_t st;

    dkv_raft_status(net->nodes[id].r, &st);
    return st;
}

/* The one leader among the up nodes (0 when none or several). */
static uint32_t
tn_leader(tnet_t *net)
{
    int i;
    uint32_t lead = 0;

    for (i = 1; i <= net->n; i++) {
        if (net->nodes[i].up
            && tn_status(net, (uint32_t)i).role == DKV_RAFT_LEADER) {
            if (lead != 0) {
                return 0;
            }
            lead = (uint32_t)i;
        }
    }
    return lead;
}

/* Ticks only node ID until it leads (bounded). */
static void
tn_elect(tnet_t *net, uint32_t id)
{
    int t;

    for (t = 0; t < 100 && tn_status(net, id).role != DKV_RAFT_LEADER;
         t++) {
        tn_tick(net, id);
        tn_settle(net);
    }
    DKV_ASSERT_INT_EQ(tn_status(net, id).role, DKV_RAFT_LEADER);
}

static uint64_t
tn_propose(tnet_t *net, uint32_t id, const char *s)
{
    uint64_t idx = 0;

    DKV_ASSERT_OK(dkv_raft_propose(&idx, net->nodes[id].r, s, strlen(s)));
    tn_settle(net);
    return idx;
}

/* ------------------------------------------------------------ elections */

static void
test_single_node(void)
{
    static tnet_t net;
    uint64_t idx;

    tn_init(&net, 1, 1);
    tn_start_all(&net);
    DKV_EXPECT_STATUS(dkv_raft_propose(NULL, net.nodes[1].r, "x", 1),
                      DKV_ENOTLEADER);
    tn_tick(&net, 1);
    tn_settle(&net);
    DKV_ASSERT_INT_EQ(tn_status(&net, 1).role, DKV_RAFT_LEADER);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 1).term, 1);
    DKV_EXPECT_UINT_EQ(net.nodes[1].hs.vote, 1);
    /* the no-op is committed and applied after its ready */
    DKV_EXPECT_UINT_EQ(net.nodes[1].applied, 1);
    idx = tn_propose(&net, 1, "hello");
    DKV_EXPECT_UINT_EQ(idx, 2);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 1).commit, 2);
    DKV_EXPECT_UINT_EQ(net.nodes[1].applied, 2);
    DKV_EXPECT_MEM_EQ(net.nodes[1].log[2].data, net.nodes[1].log[2].len,
                      "hello", 5);
    /* a read index answers at once with the commit index */
    dkv_raft_read_index(net.nodes[1].r, 77);
    tn_settle(&net);
    DKV_ASSERT_UINT_EQ(net.nodes[1].nreads, 1);
    DKV_EXPECT_UINT_EQ(net.nodes[1].reads[0].context, 77);
    DKV_EXPECT_UINT_EQ(net.nodes[1].reads[0].index, 2);
    tn_free(&net);
}

static void
test_three_node_election(void)
{
    static tnet_t net;
    int i;

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    tn_tick_all(&net, 40);
    DKV_ASSERT_TRUE(tn_leader(&net) != 0);
    for (i = 1; i <= 3; i++) {
        dkv_raft_status_t st = tn_status(&net, (uint32_t)i);
        DKV_EXPECT_UINT_EQ(st.leader, tn_leader(&net));
        DKV_EXPECT_UINT_EQ(st.term, tn_status(&net, tn_leader(&net)).term);
        DKV_EXPECT_UINT_EQ(net.nodes[i].applied, 1);   /* the no-op */
    }
    tn_free(&net);
}

static void
test_replication_commit(void)
{
    static tnet_t net;
    uint64_t idx = 0;
    int i, k;
    char buf[16];

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    tn_elect(&net, 1);
    for (k = 0; k < 30; k++) {
        snprintf(buf, sizeof(buf), "v%d", k);
        DKV_ASSERT_OK(dkv_raft_propose(&idx, net.nodes[1].r, buf,
                                       strlen(buf)));
    }
    tn_settle(&net);
    tn_tick_all(&net, 2);
    DKV_EXPECT_UINT_EQ(idx, 31);
    for (i = 1; i <= 3; i++) {
        DKV_EXPECT_UINT_EQ(tn_status(&net, (uint32_t)i).commit, 31);
        DKV_EXPECT_UINT_EQ(net.nodes[i].applied, 31);
        DKV_EXPECT_MEM_EQ(net.nodes[i].log[31].data,
                          net.nodes[i].log[31].len, "v29", 3);
    }
    /* followers refuse proposals */
    DKV_EXPECT_STATUS(dkv_raft_propose(NULL, net.nodes[2].r, "x", 1),
                      DKV_ENOTLEADER);
    /* with both followers cut off nothing commits */
    net.cut[1][2] = net.cut[1][3] = 1;
    DKV_ASSERT_OK(dkv_raft_propose(&idx, net.nodes[1].r, "lost?", 5));
    tn_settle(&net);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 1).commit, 31);
    net.cut[1][2] = 0;
    /* the lost append is sent again once the follower stalls (half an
     * election timeout) */
    tn_tick_all(&net, 2);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 1).commit, 31);
    tn_tick_all(&net, 4);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 1).commit, 32);
    DKV_EXPECT_UINT_EQ(net.nodes[2].applied, 32);
    tn_free(&net);
}

/* A follower with a divergent tail is brought back in line. */
static void
test_backtracking(void)
{
    static tnet_t net;
    int k, i;
    uint32_t lead;

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    tn_elect(&net, 1);
    /* 1 appends entries only it holds */
    net.cut[1][2] = net.cut[1][3] = 1;
    for (k = 0; k < 20; k++) {
        DKV_ASSERT_OK(dkv_raft_propose(NULL, net.nodes[1].r, "old", 3));
    }
    tn_settle(&net);
    DKV_EXPECT_UINT_EQ(net.nodes[1].last, 21);
    tn_crash(&net, 1);
    /* 2 or 3 leads, commits entries of its own */
    tn_tick_all(&net, 60);
    lead = tn_leader(&net);
    DKV_ASSERT_TRUE(lead == 2 || lead == 3);
    for (k = 0; k < 5; k++) {
        tn_propose(&net, lead, "new");
    }
    DKV_EXPECT_UINT_EQ(tn_status(&net, lead).commit, 7);
    /* 1 comes back: its tail is replaced */
    net.cut[1][2] = net.cut[1][3] = 0;
    tn_start(&net, 1);
    tn_tick_all(&net, 5);
    for (i = 1; i <= 3; i++) {
        DKV_EXPECT_UINT_EQ(net.nodes[i].last, 7);
        DKV_EXPECT_UINT_EQ(net.nodes[i].applied, 7);
        DKV_EXPECT_MEM_EQ(net.nodes[i].log[7].data, net.nodes[i].log[7].len,
                          "new", 3);
    }
    DKV_EXPECT_INT_EQ(tn_status(&net, lead).role, DKV_RAFT_LEADER);
    tn_free(&net);
}

/* A partitioned node campaigns in vain (pre-vote) and does not bump the
 * term, so it does not disrupt the leader when it comes back. */
static void
test_prevote(void)
{
    static tnet_t net;
    uint64_t term;
    int i;

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    tn_elect(&net, 1);
    term = tn_status(&net, 1).term;
    for (i = 1; i <= 3; i++) {
        net.cut[3][i] = net.cut[i][3] = 1;
    }
    tn_tick_all(&net, 60);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 3).term, term);
    DKV_EXPECT_TRUE(tn_status(&net, 3).role != DKV_RAFT_LEADER);
    for (i = 1; i <= 3; i++) {
        net.cut[3][i] = net.cut[i][3] = 0;
    }
    tn_tick_all(&net, 5);
    DKV_EXPECT_INT_EQ(tn_status(&net, 1).role, DKV_RAFT_LEADER);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 1).term, term);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 3).leader, 1);
    tn_free(&net);
}

/* Without pre-vote the same partition does disrupt: the check that the
 * test above can fail. */
static void
test_no_prevote_disrupts(void)
{
    static tnet_t net;
    uint64_t term;
    int i;

    tn_init(&net, 3, 3);
    net.no_prevote = 1;
    tn_start_all(&net);
    tn_elect(&net, 1);
    term = tn_status(&net, 1).term;
    for (i = 1; i <= 3; i++) {
        net.cut[3][i] = net.cut[i][3] = 1;
    }
    tn_tick_all(&net, 60);
    DKV_EXPECT_TRUE(tn_status(&net, 3).term > term);
    tn_free(&net);
}

static void
test_check_quorum(void)
{
    static tnet_t net;
    int i;

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    tn_elect(&net, 1);
    for (i = 2; i <= 3; i++) {
        net.cut[1][i] = net.cut[i][1] = 1;
    }
    for (i = 0; i < 25; i++) {
        tn_tick(&net, 1);
        tn_settle(&net);
    }
    DKV_EXPECT_INT_EQ(tn_status(&net, 1).role, DKV_RAFT_FOLLOWER);
    tn_free(&net);
}

/* A node that heard from its leader recently ignores vote requests (the
 * lease), so a node with no leader cannot steal the term. */
static void
test_lease_ignores_votes(void)
{
    static tnet_t net;
    uint64_t term;
    dkv_raft_msg_t m;

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    tn_elect(&net, 1);
    term = tn_status(&net, 1).term;
    memset(&m, 0, sizeof(m));
    m.type = DKV_RAFT_MSG_VOTE;
    m.from = 3;
    m.to = 2;
    m.term = term + 5;
    m.index = 100;
    m.log_term = term;
    DKV_ASSERT_OK(dkv_raft_step(net.nodes[2].r, &m));
    DKV_EXPECT_UINT_EQ(tn_status(&net, 2).term, term);
    /* unless it comes from a transfer */
    m.context = 1;
    DKV_ASSERT_OK(dkv_raft_step(net.nodes[2].r, &m));
    DKV_EXPECT_UINT_EQ(tn_status(&net, 2).term, term + 5);
    tn_free(&net);
}

/* ---------------------------------------------------------------- reads */

static void
test_read_index(void)
{
    static tnet_t net;

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    tn_elect(&net, 1);
    tn_propose(&net, 1, "a");
    /* on the leader */
    dkv_raft_read_index(net.nodes[1].r, 5);
    tn_settle(&net);
    DKV_ASSERT_UINT_EQ(net.nodes[1].nreads, 1);
    DKV_EXPECT_UINT_EQ(net.nodes[1].reads[0].context, 5);
    DKV_EXPECT_UINT_EQ(net.nodes[1].reads[0].index, 2);
    /* forwarded by a follower */
    dkv_raft_read_index(net.nodes[3].r, 6);
    tn_settle(&net);
    DKV_ASSERT_UINT_EQ(net.nodes[3].nreads, 1);
    DKV_EXPECT_UINT_EQ(net.nodes[3].reads[0].context, 6);
    DKV_EXPECT_UINT_EQ(net.nodes[3].reads[0].index, 2);
    /* a leader cut off from the others cannot confirm it leads */
    net.cut[2][1] = net.cut[3][1] = 1;
    dkv_raft_read_index(net.nodes[1].r, 7);
    tn_settle(&net);
    DKV_EXPECT_UINT_EQ(net.nodes[1].nreads, 1);
    tn_tick_all(&net, 25);
    DKV_EXPECT_UINT_EQ(net.nodes[1].nreads, 1);
    DKV_ASSERT_UINT_EQ(net.nodes[1].nfailed, 1);
    DKV_EXPECT_UINT_EQ(net.nodes[1].failed[0], 7);
    /* with no leader known a read fails at once */
    tn_free(&net);
    tn_init(&net, 3, 3);
    tn_start_all(&net);
    dkv_raft_read_index(net.nodes[2].r, 9);
    tn_settle(&net);
    DKV_ASSERT_UINT_EQ(net.nodes[2].nfailed, 1);
    DKV_EXPECT_UINT_EQ(net.nodes[2].failed[0], 9);
    tn_free(&net);
}

/* ------------------------------------------------------------- transfer */

static void
test_transfer(void)
{
    static tnet_t net;
    uint64_t term;

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    tn_elect(&net, 1);
    term = tn_status(&net, 1).term;
    DKV_EXPECT_STATUS(dkv_raft_transfer(net.nodes[1].r, 1), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_raft_transfer(net.nodes[1].r, 9), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_raft_transfer(net.nodes[2].r, 3),
                      DKV_ENOTLEADER);
    /* 3 lags: the leader brings it up to date first */
    net.cut[1][3] = 1;
    tn_propose(&net, 1, "x");
    net.cut[1][3] = 0;
    DKV_ASSERT_OK(dkv_raft_transfer(net.nodes[1].r, 3));
    DKV_EXPECT_STATUS(dkv_raft_propose(NULL, net.nodes[1].r, "y", 1),
                      DKV_ENOTLEADER);
    tn_settle(&net);
    DKV_EXPECT_INT_EQ(tn_status(&net, 3).role, DKV_RAFT_LEADER);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 3).term, term + 1);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 1).leader, 3);
    /* a transfer to a node that never answers is given up */
    net.cut[3][1] = net.cut[1][3] = 1;
    DKV_ASSERT_OK(dkv_raft_transfer(net.nodes[3].r, 1));
    DKV_EXPECT_STATUS(dkv_raft_propose(NULL, net.nodes[3].r, "z", 1),
                      DKV_ENOTLEADER);
    tn_tick_all(&net, 10);
    DKV_EXPECT_INT_EQ(tn_status(&net, 3).role, DKV_RAFT_LEADER);
    DKV_EXPECT_OK(dkv_raft_propose(NULL, net.nodes[3].r, "z", 1));
    tn_free(&net);
}

/* ----------------------------------------------------------- membership */

static void
test_membership(void)
{
    static tnet_t net;
    dkv_raft_conf_change_t cc;
    uint64_t idx;
    dkv_raft_status_t st;
    int i;

    tn_init(&net, 3, 4);          /* node 4 starts outside the group */
    tn_start_all(&net);
    tn_elect(&net, 1);
    tn_propose(&net, 1, "before");
    cc.type = DKV_RAFT_PROMOTE;
    cc.node = 4;
    DKV_EXPECT_STATUS(dkv_raft_propose_conf(NULL, net.nodes[1].r, &cc),
                      DKV_EINVAL);
    cc.type = DKV_RAFT_ADD_LEARNER;
    DKV_ASSERT_OK(dkv_raft_propose_conf(&idx, net.nodes[1].r, &cc));
    /* in force once appended, one at a time */
    st = tn_status(&net, 1);
    DKV_EXPECT_UINT_EQ(st.conf.nlearners, 1);
    cc.type = DKV_RAFT_PROMOTE;
    DKV_EXPECT_STATUS(dkv_raft_propose_conf(NULL, net.nodes[1].r, &cc),
                      DKV_ECONFLICT);
    tn_settle(&net);
    tn_tick_all(&net, 3);
    DKV_EXPECT_UINT_EQ(net.nodes[4].applied, idx);
    st = tn_status(&net, 4);
    DKV_EXPECT_UINT_EQ(st.conf.nlearners, 1);
    DKV_EXPECT_UINT_EQ(st.conf.learners[0], 4);
    /* a learner does not campaign */
    for (i = 0; i < 40; i++) {
        tn_tick(&net, 4);
        tn_settle(&net);
    }
    DKV_EXPECT_INT_EQ(tn_status(&net, 4).role, DKV_RAFT_FOLLOWER);
    DKV_ASSERT_OK(dkv_raft_propose_conf(&idx, net.nodes[1].r, &cc));
    tn_settle(&net);
    tn_tick_all(&net, 2);
    st = tn_status(&net, 2);
    DKV_EXPECT_UINT_EQ(st.conf.nvoters, 4);
    DKV_EXPECT_UINT_EQ(st.conf.nlearners, 0);
    /* four voters: two cannot commit, three can */
    net.cut[1][2] = net.cut[1][3] = 1;
    tn_propose(&net, 1, "needs 4");
    DKV_EXPECT_UINT_EQ(tn_status(&net, 1).commit, idx);
    net.cut[1][2] = net.cut[1][3] = 0;
    tn_tick_all(&net, 6);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 1).commit, idx + 1);
    /* the leader removes itself and steps down once that commits */
    cc.type = DKV_RAFT_REMOVE;
    cc.node = 1;
    DKV_ASSERT_OK(dkv_raft_propose_conf(&idx, net.nodes[1].r, &cc));
    tn_settle(&net);
    tn_tick_all(&net, 2);
    DKV_EXPECT_INT_EQ(tn_status(&net, 1).role, DKV_RAFT_FOLLOWER);
    tn_tick_all(&net, 60);
    DKV_ASSERT_TRUE(tn_leader(&net) >= 2);
    st = tn_status(&net, tn_leader(&net));
    DKV_EXPECT_UINT_EQ(st.conf.nvoters, 3);
    DKV_EXPECT_TRUE(st.commit > idx);
    /* a new leader changes membership only after its first commit; the
     * last voter cannot go */
    tn_free(&net);
    tn_init(&net, 1, 1);
    tn_start_all(&net);
    tn_tick(&net, 1);
    DKV_ASSERT_INT_EQ(tn_status(&net, 1).role, DKV_RAFT_LEADER);
    cc.type = DKV_RAFT_ADD_LEARNER;
    cc.node = 2;
    DKV_EXPECT_STATUS(dkv_raft_propose_conf(NULL, net.nodes[1].r, &cc),
                      DKV_ECONFLICT);
    tn_settle(&net);
    cc.type = DKV_RAFT_REMOVE;
    cc.node = 1;
    DKV_EXPECT_STATUS(dkv_raft_propose_conf(NULL, net.nodes[1].r, &cc),
                      DKV_EINVAL);
    cc.type = DKV_RAFT_ADD_LEARNER;
    cc.node = 2;
    DKV_EXPECT_OK(dkv_raft_propose_conf(NULL, net.nodes[1].r, &cc));
    tn_free(&net);
}

/* One vote per term, and the test-only fault that breaks it (what
 * raftsim's self-check relies on). */
static void
test_one_vote_per_term(void)
{
    static tnet_t net;
    dkv_raft_msg_t m;
    int f;

    for (f = 0; f < 2; f++) {
        tn_init(&net, 3, 3);
        net.test_faults = f ? DKV_RAFT_TEST_DOUBLE_VOTE : 0;
        tn_start_all(&net);
        memset(&m, 0, sizeof(m));
        m.type = DKV_RAFT_MSG_VOTE;
        m.to = 2;
        m.term = 1;
        m.from = 1;
        DKV_ASSERT_OK(dkv_raft_step(net.nodes[2].r, &m));
        m.from = 3;
        DKV_ASSERT_OK(dkv_raft_step(net.nodes[2].r, &m));
        tn_ready(&net, 2);
        DKV_ASSERT_UINT_EQ(net.nq, 2);
        DKV_EXPECT_UINT_EQ(net.q[0].to, 1);
        DKV_EXPECT_UINT_EQ(net.q[1].to, 3);
        {
            dkv_raft_msg_t d;
            dkv_raft_entry_t *eb;
            DKV_ASSERT_OK(dkv_raft_msg_decode(&d, &eb, net.q[0].buf,
                                              net.q[0].len));
            DKV_EXPECT_INT_EQ(d.reject, 0);
            DKV_ASSERT_OK(dkv_raft_msg_decode(&d, &eb, net.q[1].buf,
                                              net.q[1].len));
            DKV_EXPECT_INT_EQ(d.reject, f ? 0 : 1);
        }
        DKV_EXPECT_UINT_EQ(net.nodes[2].hs.vote, f ? 3 : 1);
        tn_free(&net);
    }
}

/* ------------------------------------------------------------ snapshots */

static void
test_snapshot_install(void)
{
    static tnet_t net;
    int k;
    dkv_raft_snapshot_meta_t meta;
    uint64_t term;

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    tn_elect(&net, 1);
    net.cut[1][3] = 1;
    for (k = 0; k < 20; k++) {
        tn_propose(&net, 1, "s");
    }
    DKV_ASSERT_UINT_EQ(net.nodes[1].applied, 21);
    DKV_EXPECT_STATUS(dkv_raft_compact(net.nodes[1].r, 30), DKV_EINVAL);
    DKV_ASSERT_OK(dkv_raft_compact(net.nodes[1].r, 15));
    DKV_EXPECT_UINT_EQ(tn_status(&net, 1).first_index, 16);
    DKV_EXPECT_STATUS(dkv_raft_term(&term, net.nodes[1].r, 14),
                      DKV_ENOTFOUND);
    DKV_EXPECT_OK(dkv_raft_term(&term, net.nodes[1].r, 15));
    DKV_EXPECT_OK(dkv_raft_snapshot_meta(&meta, net.nodes[1].r, 18));
    DKV_EXPECT_UINT_EQ(meta.index, 18);
    DKV_EXPECT_UINT_EQ(meta.conf.nvoters, 3);
    net.cut[1][3] = 0;
    tn_tick_all(&net, 3);
    DKV_EXPECT_INT_EQ(net.nodes[3].snapshots_installed, 1);
    DKV_EXPECT_UINT_EQ(net.nodes[3].snap.index, 15);
    DKV_EXPECT_UINT_EQ(net.nodes[3].applied, 21);
    DKV_EXPECT_UINT_EQ(tn_status(&net, 3).first_index, 16);
    /* the follower goes on from the snapshot */
    tn_propose(&net, 1, "after");
    tn_tick_all(&net, 1);
    DKV_EXPECT_UINT_EQ(net.nodes[3].applied, 22);
    tn_free(&net);
}

/* A snapshot the caller could not deliver is asked for again. */
static void
test_snapshot_failed(void)
{
    static tnet_t net;
    int k;
    size_t n;

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    tn_elect(&net, 1);
    net.cut[1][3] = 1;
    for (k = 0; k < 10; k++) {
        tn_propose(&net, 1, "s");
    }
    DKV_ASSERT_OK(dkv_raft_compact(net.nodes[1].r, 11));
    net.drop_type = DKV_RAFT_MSG_SNAPSHOT;
    net.cut[1][3] = 0;
    tn_tick_all(&net, 3);        /* the snapshot is lost */
    DKV_EXPECT_INT_EQ(net.nodes[3].snapshots_installed, 0);
    net.drop_type = 0;
    tn_tick_all(&net, 3);        /* the leader still waits for it */
    DKV_EXPECT_INT_EQ(net.nodes[3].snapshots_installed, 0);
    n = net.nodes[3].napp;
    dkv_raft_snapshot_failed(net.nodes[1].r, 3);
    tn_tick_all(&net, 3);
    DKV_EXPECT_INT_EQ(net.nodes[3].snapshots_installed, 1);
    DKV_EXPECT_UINT_EQ(net.nodes[3].applied, 11);
    DKV_EXPECT_UINT_EQ(net.nodes[3].napp, n);
    tn_free(&net);
}

/* Everything restarts from its disk: state, log, membership, commit. */
static void
test_restart(void)
{
    static tnet_t net;
    int i, k;
    dkv_raft_config_t cfg;
    dkv_raft_restore_t rs;
    dkv_raft_t *bad = NULL;
    dkv_raft_hard_state_t hs;
    dkv_raft_entry_t e;

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    tn_elect(&net, 2);
    for (k = 0; k < 12; k++) {
        tn_propose(&net, 2, "r");
    }
    tn_tick_all(&net, 2);
    DKV_ASSERT_OK(dkv_raft_compact(net.nodes[2].r, 5));
    net.nodes[2].snap.index = 5;          /* the caller persists it */
    DKV_ASSERT_OK(dkv_raft_term(&net.nodes[2].snap.term,
                                net.nodes[2].r, 5));
    for (i = 1; i <= 3; i++) {
        tn_crash(&net, (uint32_t)i);
    }
    for (i = 1; i <= 3; i++) {
        tn_start(&net, (uint32_t)i);
        DKV_EXPECT_UINT_EQ(tn_status(&net, (uint32_t)i).commit, 13);
        DKV_EXPECT_UINT_EQ(tn_status(&net, (uint32_t)i).last_index, 13);
        DKV_EXPECT_UINT_EQ(tn_status(&net, (uint32_t)i).term,
                           net.nodes[2].hs.term);
    }
    DKV_EXPECT_UINT_EQ(tn_status(&net, 2).first_index, 6);
    tn_tick_all(&net, 60);
    DKV_ASSERT_TRUE(tn_leader(&net) != 0);
    tn_propose(&net, tn_leader(&net), "after");
    tn_tick_all(&net, 2);
    for (i = 1; i <= 3; i++) {
        DKV_EXPECT_UINT_EQ(net.nodes[i].applied, 15);
    }
    /* a restore that does not hold together is refused */
    tn_config(&net, &cfg, 1);
    memset(&rs, 0, sizeof(rs));
    memset(&hs, 0, sizeof(hs));
    hs.term = 1;
    hs.commit = 3;
    rs.snapshot = &net.nodes[1].snap;
    rs.hard_state = &hs;
    DKV_EXPECT_STATUS(dkv_raft_create(&bad, &cfg, &rs), DKV_EINVAL);
    memset(&e, 0, sizeof(e));
    e.index = 2;                         /* a gap after index 0 */
    e.term = 1;
    hs.commit = 0;
    rs.entries = &e;
    rs.nentries = 1;
    DKV_EXPECT_STATUS(dkv_raft_create(&bad, &cfg, &rs), DKV_EINVAL);
    DKV_EXPECT_TRUE(bad == NULL);
    tn_free(&net);
}

/* ------------------------------------------------------------ encodings */

static void
check_msg_roundtrip(const dkv_raft_msg_t *m)
{
    unsigned char *buf = NULL, *cut;
    size_t len = 0, k, i;
    dkv_raft_msg_t d;
    dkv_raft_entry_t *eb = NULL;

    DKV_ASSERT_OK(dkv_raft_msg_encode(&buf, &len, m));
    DKV_ASSERT_OK(dkv_raft_msg_decode(&d, &eb, buf, len));
    DKV_EXPECT_INT_EQ(d.type, m->type);
    DKV_EXPECT_UINT_EQ(d.from, m->from);
    DKV_EXPECT_UINT_EQ(d.to, m->to);
    DKV_EXPECT_UINT_EQ(d.term, m->term);
    DKV_EXPECT_UINT_EQ(d.log_term, m->log_term);
    DKV_EXPECT_UINT_EQ(d.index, m->index);
    DKV_EXPECT_UINT_EQ(d.commit, m->commit);
    DKV_EXPECT_UINT_EQ(d.context, m->context);
    DKV_EXPECT_INT_EQ(d.reject, m->reject);
    DKV_EXPECT_UINT_EQ(d.reject_hint, m->reject_hint);
    DKV_ASSERT_UINT_EQ(d.nentries, m->nentries);
    for (k = 0; k < d.nentries; k++) {
        DKV_EXPECT_UINT_EQ(d.entries[k].index, m->entries[k].index);
        DKV_EXPECT_UINT_EQ(d.entries[k].term, m->entries[k].term);
        DKV_EXPECT_INT_EQ(d.entries[k].type, m->entries[k].type);
        DKV_EXPECT_MEM_EQ(d.entries[k].data, d.entries[k].len,
                          m->entries[k].data, m->entries[k].len);
        /* data point into the buffer */
        DKV_EXPECT_TRUE(d.entries[k].len == 0
                        || (d.entries[k].data >= buf
                            && d.entries[k].data < buf + len));
    }
    if (m->type == DKV_RAFT_MSG_SNAPSHOT) {
        DKV_EXPECT_UINT_EQ(d.snapshot.index, m->snapshot.index);
        DKV_EXPECT_UINT_EQ(d.snapshot.term, m->snapshot.term);
        DKV_EXPECT_TRUE(memcmp(&d.snapshot.conf, &m->snapshot.conf,
                               sizeof(d.snapshot.conf)) == 0);
    }
    dkv_free(eb);
    /* every truncation and a trailing byte are refused, in exact-size
     * heap copies so a sanitizer sees over-reads */
    for (i = 0; i <= len; i++) {
        size_t n = i < len ? i : len + 1;
        cut = dkv_malloc(n ? n : 1);
        DKV_ASSERT_NOT_NULL(cut);
        memcpy(cut, buf, i < len ? i : len);
        if (i == len) {
            cut[len] = 0;
        }
        DKV_EXPECT_STATUS(dkv_raft_msg_decode(&d, &eb, cut, n), DKV_EINVAL);
        DKV_EXPECT_TRUE(eb == NULL);
        dkv_free(cut);
    }
    dkv_free(buf);
}

static void
test_msg_codec(void)
{
    dkv_raft_msg_t m;
    dkv_raft_entry_t es[3];
    unsigned char d1[] = "first", d3[] = { 1, 0, 0, 0, 4 };

    memset(&m, 0, sizeof(m));
    m.type = DKV_RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 0x80000002u;
    m.term = UINT64_C(0x0102030405060708);
    m.log_term = 6;
    m.index = 41;
    m.commit = 40;
    m.context = 99;
    m.reject_hint = 3;
    memset(es, 0, sizeof(es));
    es[0].index = 42;
    es[0].term = 6;
    es[0].len = 5;
    es[0].data = d1;
    es[1].index = 43;
    es[1].term = 7;
    es[2].index = 44;
    es[2].term = 7;
    es[2].type = DKV_RAFT_ENTRY_CONF;
    es[2].len = 5;
    es[2].data = d3;
    m.entries = es;
    m.nentries = 3;
    check_msg_roundtrip(&m);
    m.entries = NULL;
    m.nentries = 0;
    m.type = DKV_RAFT_MSG_APPEND_RESP;
    m.reject = 1;
    check_msg_roundtrip(&m);
    memset(&m, 0, sizeof(m));
    m.type = DKV_RAFT_MSG_SNAPSHOT;
    m.from = 3;
    m.to = 4;
    m.snapshot.index = 1000;
    m.snapshot.term = 9;
    m.snapshot.conf.voters[0] = 1;
    m.snapshot.conf.voters[1] = 3;
    m.snapshot.conf.nvoters = 2;
    m.snapshot.conf.learners[0] = 4;
    m.snapshot.conf.nlearners = 1;
    check_msg_roundtrip(&m);
    m.type = DKV_RAFT_MSG_TIMEOUT_NOW;
    memset(&m.snapshot, 0, sizeof(m.snapshot));
    check_msg_roundtrip(&m);
    /* entries whose indexes do not follow the message's are refused */
    m.type = DKV_RAFT_MSG_APPEND;
    m.index = 5;
    m.entries = es;
    m.nentries = 1;
    {
        unsigned char *buf = NULL;
        size_t len = 0;
        DKV_EXPECT_STATUS(dkv_raft_msg_encode(&buf, &len, &m), DKV_EINVAL);
        DKV_EXPECT_TRUE(buf == NULL);
    }
}

static void
test_msg_hostile(void)
{
    dkv_raft_msg_t m;
    dkv_raft_entry_t *eb = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;

    memset(&m, 0, sizeof(m));
    m.type = DKV_RAFT_MSG_APPEND;
    m.from = 1;
    m.to = 2;
    DKV_ASSERT_OK(dkv_raft_msg_encode(&buf, &len, &m));
    /* a huge entry count with no bytes behind it */
    buf[len - 4] = 0xff;
    buf[len - 3] = 0xff;
    buf[len - 2] = 0xff;
    buf[len - 1] = 0xff;
    DKV_EXPECT_STATUS(dkv_raft_msg_decode(&m, &eb, buf, len), DKV_EINVAL);
    DKV_EXPECT_TRUE(eb == NULL);
    /* unknown version and type, bad reject flag */
    buf[len - 4] = buf[len - 3] = buf[len - 2] = buf[len - 1] = 0;
    DKV_ASSERT_OK(dkv_raft_msg_decode(&m, &eb, buf, len));
    buf[0] = 2;
    DKV_EXPECT_STATUS(dkv_raft_msg_decode(&m, &eb, buf, len), DKV_EINVAL);
    buf[0] = 1;
    buf[1] = 12;
    DKV_EXPECT_STATUS(dkv_raft_msg_decode(&m, &eb, buf, len), DKV_EINVAL);
    buf[1] = 0;
    DKV_EXPECT_STATUS(dkv_raft_msg_decode(&m, &eb, buf, len), DKV_EINVAL);
    buf[1] = DKV_RAFT_MSG_APPEND;
    buf[50] = 2;
    DKV_EXPECT_STATUS(dkv_raft_msg_decode(&m, &eb, buf, len), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_raft_msg_decode(&m, &eb, NULL, 0), DKV_EINVAL);
    dkv_free(buf);
}

static void
test_small_codecs(void)
{
    dkv_raft_hard_state_t hs = { 7, 3, 99 }, hs2;
    unsigned char b20[20], b5[5], *buf = NULL;
    size_t len = 0;
    dkv_raft_snapshot_meta_t meta, meta2;
    dkv_raft_conf_change_t cc = { DKV_RAFT_PROMOTE, 12 }, cc2;
    dkv_raft_entry_t e, e2;
    unsigned char payload[] = "payload";

    DKV_ASSERT_OK(dkv_raft_hard_state_encode(b20, &hs));
    DKV_ASSERT_OK(dkv_raft_hard_state_decode(&hs2, b20, 20));
    DKV_EXPECT_UINT_EQ(hs2.term, 7);
    DKV_EXPECT_UINT_EQ(hs2.vote, 3);
    DKV_EXPECT_UINT_EQ(hs2.commit, 99);
    DKV_EXPECT_STATUS(dkv_raft_hard_state_decode(&hs2, b20, 19),
                      DKV_EINVAL);

    DKV_ASSERT_OK(dkv_raft_conf_change_encode(b5, &cc));
    DKV_ASSERT_OK(dkv_raft_conf_change_decode(&cc2, b5, 5));
    DKV_EXPECT_INT_EQ(cc2.type, DKV_RAFT_PROMOTE);
    DKV_EXPECT_UINT_EQ(cc2.node, 12);
    DKV_EXPECT_STATUS(dkv_raft_conf_change_decode(&cc2, b5, 4),
                      DKV_EINVAL);
    b5[0] = 4;
    DKV_EXPECT_STATUS(dkv_raft_conf_change_decode(&cc2, b5, 5),
                      DKV_EINVAL);
    cc.node = 0;
    DKV_EXPECT_STATUS(dkv_raft_conf_change_encode(b5, &cc), DKV_EINVAL);

    memset(&meta, 0, sizeof(meta));
    meta.index = 5;
    meta.term = 2;
    meta.conf.voters[0] = 1;
    meta.conf.nvoters = 1;
    meta.conf.learners[0] = 2;
    meta.conf.learners[1] = 3;
    meta.conf.nlearners = 2;
    DKV_ASSERT_OK(dkv_raft_snapshot_meta_encode(&buf, &len, &meta));
    DKV_ASSERT_OK(dkv_raft_snapshot_meta_decode(&meta2, buf, len));
    DKV_EXPECT_TRUE(memcmp(&meta, &meta2, sizeof(meta)) == 0);
    DKV_EXPECT_STATUS(dkv_raft_snapshot_meta_decode(&meta2, buf, len - 1),
                      DKV_EINVAL);
    buf[17] = 17;                  /* more voters than allowed */
    DKV_EXPECT_STATUS(dkv_raft_snapshot_meta_decode(&meta2, buf, len),
                      DKV_EINVAL);
    dkv_free(buf);

    memset(&e, 0, sizeof(e));
    e.term = 4;
    e.type = DKV_RAFT_ENTRY_CONF;
    e.len = 7;
    e.data = payload;
    DKV_ASSERT_OK(dkv_raft_entry_encode(&buf, &len, &e));
    DKV_ASSERT_OK(dkv_raft_entry_decode(&e2, 33, buf, len));
    DKV_EXPECT_UINT_EQ(e2.index, 33);
    DKV_EXPECT_UINT_EQ(e2.term, 4);
    DKV_EXPECT_INT_EQ(e2.type, DKV_RAFT_ENTRY_CONF);
    DKV_EXPECT_MEM_EQ(e2.data, e2.len, "payload", 7);
    DKV_EXPECT_STATUS(dkv_raft_entry_decode(&e2, 33, buf, 9), DKV_EINVAL);
    buf[9] = 5;
    DKV_EXPECT_STATUS(dkv_raft_entry_decode(&e2, 33, buf, len), DKV_EINVAL);
    dkv_free(buf);
}

/* Malformed messages are refused by the core too. */
static void
test_step_malformed(void)
{
    static tnet_t net;
    dkv_raft_msg_t m;
    dkv_raft_entry_t e;

    tn_init(&net, 3, 3);
    tn_start_all(&net);
    memset(&m, 0, sizeof(m));
    m.type = 99;
    m.from = 2;
    m.to = 1;
    DKV_EXPECT_STATUS(dkv_raft_step(net.nodes[1].r, &m), DKV_EINVAL);
    m.type = DKV_RAFT_MSG_APPEND;
    m.term = 1;
    m.index = 0;
    memset(&e, 0, sizeof(e));
    e.index = 5;                  /* should be 1 */
    e.term = 1;
    m.entries = &e;
    m.nentries = 1;
    DKV_EXPECT_STATUS(dkv_raft_step(net.nodes[1].r, &m), DKV_EINVAL);
    e.index = 1;
    e.term = 2;                   /* newer than the message */
    DKV_EXPECT_STATUS(dkv_raft_step(net.nodes[1].r, &m), DKV_EINVAL);
    e.term = 1;
    DKV_EXPECT_OK(dkv_raft_step(net.nodes[1].r, &m));
    DKV_EXPECT_UINT_EQ(tn_status(&net, 1).last_index, 1);
    tn_free(&net);
}

/* ------------------------------------------------------------- register */

void
test_raft_register(void)
{
    CU_pSuite s = dkv_test_add_suite("raft", NULL, NULL);

    DKV_TEST_ADD(s, test_single_node);
    DKV_TEST_ADD(s, test_three_node_election);
    DKV_TEST_ADD(s, test_replication_commit);
    DKV_TEST_ADD(s, test_backtracking);
    DKV_TEST_ADD(s, test_prevote);
    DKV_TEST_ADD(s, test_no_prevote_disrupts);
    DKV_TEST_ADD(s, test_check_quorum);
    DKV_TEST_ADD(s, test_lease_ignores_votes);
    DKV_TEST_ADD(s, test_read_index);
    DKV_TEST_ADD(s, test_transfer);
    DKV_TEST_ADD(s, test_membership);
    DKV_TEST_ADD(s, test_one_vote_per_term);
    DKV_TEST_ADD(s, test_snapshot_install);
    DKV_TEST_ADD(s, test_snapshot_failed);
    DKV_TEST_ADD(s, test_restart);
    DKV_TEST_ADD(s, test_msg_codec);
    DKV_TEST_ADD(s, test_msg_hostile);
    DKV_TEST_ADD(s, test_small_codecs);
    DKV_TEST_ADD(s, test_step_malformed);
}
