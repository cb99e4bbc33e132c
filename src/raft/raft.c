/*
 * raft.c -- dkv's Raft core: elections (pre-vote, check-quorum, leader
 * lease), replication (probe / replicate / snapshot progress per peer,
 * an inflight window, fast backtracking), commit, compaction and
 * snapshots, single-server membership changes, leadership transfer and
 * ReadIndex.  A pure state machine: docs/internals/raft.md.
 *
 * Outline: helpers (memory, log, membership) -> messages and progress ->
 * role changes -> step per role -> inputs -> ready/advance -> state.
 *
 * Memory: the log owns copies of entry data.  Whatever a ready handed
 * out stays valid until dkv_raft_advance: messages move to a handed-out
 * buffer at dkv_raft_ready, and entry data the log drops in between goes
 * to a graveyard freed at advance.  Running out of memory inside the
 * core aborts the process (the core cannot continue consistently);
 * dkv_raft_create and the proposal functions return APR_ENOMEM instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_errno.h>

#include "raft/raft.h"
#include "common/alloc.h"
#include "common/status.h"

/* ------------------------------------------------------------ constants */

enum { PR_PROBE = 0, PR_REPLICATE = 1, PR_SNAPSHOT = 2 };

/* VOTE context: the campaign comes from a leadership transfer. */
#define CTX_TRANSFER 1

/* Reads (pending and forwarded) fail after this many election timeouts. */
#define READ_TIMEOUT_ELECTIONS 2

#define NPR (2 * DKV_RAFT_MAX_MEMBERS)

/* ---------------------------------------------------------------- types */

typedef struct progress {
    uint32_t id;
    uint64_t match, next;
    int state;
    int probe_sent;              /* PROBE: an append is out, wait */
    int recent_active;           /* heard from since the last check */
    uint64_t pending_snapshot;   /* SNAPSHOT: the index asked for */
    uint64_t *inflight;          /* REPLICATE: ring of last indexes sent */
    size_t infl_start, infl_count;
    uint64_t read_ack;           /* highest read round acknowledged */
    int vote;                    /* 0 none, 1 granted, 2 rejected */
    unsigned stall;              /* REPLICATE: ticks without progress */
    unsigned snap_elapsed;       /* SNAPSHOT: ticks waiting */
    uint64_t sent_commit;        /* the highest commit index an append
                                  * let it apply */
} progress_t;

typedef struct read_req {
    uint64_t context;
    uint64_t index;
    uint64_t round;              /* 0: waiting for a commit in this term */
    uint32_t from;               /* 0: local */
    unsigned age;
} read_req_t;

typedef struct fwd_read {
    uint64_t context;
    unsigned age;
} fwd_read_t;

typedef struct grave {
    void *data;
    uint64_t gen;                /* free at the advance of this ready */
} grave_t;

struct dkv_raft {
    dkv_raft_config_t cfg;
    uint32_t id;

    /* persistent */
    uint64_t term;
    uint32_t vote;
    uint64_t commit;

    /* log: snap is the compaction point; log[k].index == snap.index+1+k */
    dkv_raft_snapshot_meta_t snap;
    dkv_raft_entry_t *log;
    size_t nlog, caplog;
    uint64_t stable;             /* last index the caller persisted */
    uint64_t applied;            /* last index the caller applied */

    dkv_raft_conf_t conf;        /* latest appended membership */
    uint64_t conf_index;         /* its entry (or the compaction point) */

    /* volatile */
    dkv_raft_role_t role;
    uint32_t leader;
    unsigned election_elapsed, heartbeat_elapsed, randomized_timeout;
    progress_t prs[NPR];
    size_t npr;
    uint32_t transfer_target;
    unsigned transfer_elapsed;
    int campaign_transfer;       /* this candidacy comes from TIMEOUT_NOW */

    /* reads */
    read_req_t *reads;
    size_t nreads, capreads;
    uint64_t read_round;
    fwd_read_t *fwd;
    size_t nfwd, capfwd;

    /* outputs being gathered */
    dkv_raft_msg_t *msgs;
    size_t nmsgs, capmsgs;
    dkv_raft_read_state_t *out_reads;
    size_t nout_reads, capout_reads;
    uint64_t *out_failed;
    size_t nout_failed, capout_failed;
    uint64_t truncate_from;
    int has_snapshot;
    dkv_raft_snapshot_meta_t pending_snap;
    dkv_raft_hard_state_t prev_hs;

    /* handed out by dkv_raft_ready, released by dkv_raft_advance */
    int ready_out;
    dkv_raft_msg_t *h_msgs;
    size_t h_nmsgs, h_capmsgs;
    dkv_raft_read_state_t *h_reads;
    size_t h_capreads;
    uint64_t *h_failed;
    size_t h_capfailed;
    dkv_raft_entry_t *h_entries;
    size_t h_capentries;
    dkv_raft_entry_t *h_committed;
    size_t h_capcommitted;
    uint64_t h_last;             /* entries handed up to */
    uint64_t h_applied;          /* committed handed up to */
    dkv_raft_hard_state_t h_hs;
    int h_snapshot;
    uint64_t h_snapshot_index;
    grave_t *grave;
    size_t ngrave, capgrave;
    uint64_t ready_gen;          /* dkv_raft_ready calls so far */
};

/* --------------------------------------------------------------- memory */

static void
oom(void)
{
    fputs("dkv raft: out of memory\n", stderr);
    abort();
}

/* Makes room for NEED elements of SIZE in *ARR (capacity *CAP). */
static void
reserve(void *arrp, size_t *cap, size_t need, size_t size)
{
    void **arr = (void **)arrp;
    size_t ncap;
    void *p;

    if (need <= *cap) {
        return;
    }
    ncap = *cap ? *cap * 2 : 8;
    while (ncap < need) {
        ncap *= 2;
    }
    p = dkv_realloc(*arr, ncap * size);
    if (p == NULL) {
        oom();
    }
    *arr = p;
    *cap = ncap;
}

/* Frees entry data, or defers it while messages may point at it: those
 * gathered now go out with the next ready, so the data may go at that
 * ready's advance. */
static void
drop_data(dkv_raft_t *r, void *data)
{
    if (data == NULL) {
        return;
    }
    if (!r->ready_out && r->nmsgs == 0) {
        dkv_free(data);
        return;
    }
    reserve(&r->grave, &r->capgrave, r->ngrave + 1, sizeof(*r->grave));
    r->grave[r->ngrave].data = data;
    r->grave[r->ngrave].gen = r->ready_gen + 1;
    r->ngrave++;
}

/* Frees the deferred data no message handed out can still point at. */
static void
free_grave(dkv_raft_t *r, int all)
{
    size_t i, keep = 0;

    for (i = 0; i < r->ngrave; i++) {
        if (all || r->grave[i].gen <= r->ready_gen) {
            dkv_free(r->grave[i].data);
        } else {
            r->grave[keep++] = r->grave[i];
        }
    }
    r->ngrave = keep;
}

static unsigned char *
copy_data(const void *data, size_t len)
{
    unsigned char *p;

    if (len == 0) {
        return NULL;
    }
    p = dkv_malloc(len);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, data, len);
    return p;
}

/* ------------------------------------------------------------------ log */

static uint64_t
last_index(const dkv_raft_t *r)
{
    return r->snap.index + r->nlog;
}

static uint64_t
last_term(const dkv_raft_t *r)
{
    return r->nlog ? r->log[r->nlog - 1].term : r->snap.term;
}

static const dkv_raft_entry_t *
entry_at(const dkv_raft_t *r, uint64_t index)
{
    if (index <= r->snap.index || index > last_index(r)) {
        return NULL;
    }
    return &r->log[index - r->snap.index - 1];
}

/* The term of INDEX, or 0 with *FOUND 0 when it is not known. */
static uint64_t
term_at(const dkv_raft_t *r, uint64_t index, int *found)
{
    const dkv_raft_entry_t *e;

    *found = 1;
    if (index == r->snap.index) {
        return r->snap.term;
    }
    e = entry_at(r, index);
    if (e == NULL) {
        *found = 0;
        return 0;
    }
    return e->term;
}

static int
match_term(const dkv_raft_t *r, uint64_t index, uint64_t term)
{
    int found;
    uint64_t t = term_at(r, index, &found);

    return found && t == term;
}

/* The largest index <= INDEX whose term is <= TERM (fast backtracking);
 * below the compaction point, where terms are unknown, it stops at
 * once (the index just below it when the compaction point's own term is
 * too new). */
static uint64_t
find_conflict_by_term(const dkv_raft_t *r, uint64_t index, uint64_t term)
{
    int found;

    if (index > last_index(r)) {
        index = last_index(r);
    }
    while (index > 0) {
        uint64_t t = term_at(r, index, &found);
        if (!found || t <= term) {
            break;
        }
        index--;
    }
    return index;
}

/* Deletes entries >= FROM (FROM > compaction point). */
static void
log_truncate(dkv_raft_t *r, uint64_t from)
{
    uint64_t last = last_index(r);
    uint64_t i;

    if (from > last) {
        return;
    }
    for (i = from; i <= last; i++) {
        drop_data(r, r->log[i - r->snap.index - 1].data);
    }
    r->nlog = (size_t)(from - r->snap.index - 1);
    if (from <= r->stable || (r->ready_out && from <= r->h_last)) {
        if (r->truncate_from == 0 || from < r->truncate_from) {
            r->truncate_from = from;
        }
    }
    if (r->stable >= from) {
        r->stable = from - 1;
    }
    if (r->h_last >= from) {
        r->h_last = from - 1;
    }
}

/* Appends a copy of E (its index must be last + 1).  0 or APR_ENOMEM. */
static dkv_status_t
log_append(dkv_raft_t *r, const dkv_raft_entry_t *e)
{
    dkv_raft_entry_t *d;
    unsigned char *data = copy_data(e->data, e->len);

    if (e->len > 0 && data == NULL) {
        return APR_ENOMEM;
    }
    reserve(&r->log, &r->caplog, r->nlog + 1, sizeof(*r->log));
    d = &r->log[r->nlog++];
    d->term = e->term;
    d->index = last_index(r);
    d->type = e->type;
    d->len = e->len;
    d->data = data;
    return DKV_OK;
}

/* ----------------------------------------------------------- membership */

static int
conf_find(const uint32_t *ids, size_t n, uint32_t id)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (ids[i] == id) {
            return (int)i;
        }
    }
    return -1;
}

static int
is_voter(const dkv_raft_conf_t *c, uint32_t id)
{
    return conf_find(c->voters, c->nvoters, id) >= 0;
}

static int
is_learner(const dkv_raft_conf_t *c, uint32_t id)
{
    return conf_find(c->learners, c->nlearners, id) >= 0;
}

static void
ids_remove(uint32_t *ids, size_t *n, uint32_t id)
{
    int i = conf_find(ids, *n, id);

    if (i >= 0) {
        memmove(&ids[i], &ids[i + 1], (*n - (size_t)i - 1) * sizeof(*ids));
        (*n)--;
    }
}

/* Checks CC against C: DKV_OK or DKV_EINVAL. */
static dkv_status_t
conf_check(const dkv_raft_conf_t *c, const dkv_raft_conf_change_t *cc)
{
    uint32_t n = cc->node;

    if (n == 0) {
        return DKV_EINVAL;
    }
    switch (cc->type) {
    case DKV_RAFT_ADD_LEARNER:
        if (is_voter(c, n) || is_learner(c, n)
            || c->nlearners >= DKV_RAFT_MAX_MEMBERS) {
            return DKV_EINVAL;
        }
        return DKV_OK;
    case DKV_RAFT_PROMOTE:
        if (!is_learner(c, n) || c->nvoters >= DKV_RAFT_MAX_MEMBERS) {
            return DKV_EINVAL;
        }
        return DKV_OK;
    case DKV_RAFT_REMOVE:
        if (is_learner(c, n)) {
            return DKV_OK;
        }
        if (!is_voter(c, n) || c->nvoters <= 1) {
            return DKV_EINVAL;
        }
        return DKV_OK;
    default:
        return DKV_EINVAL;
    }
}

/* Applies the change in entry E to C (nonsense changes do nothing). */
static void
conf_apply_entry(dkv_raft_conf_t *c, const dkv_raft_entry_t *e)
{
    dkv_raft_conf_change_t cc;

    if (e->type != DKV_RAFT_ENTRY_CONF
        || dkv_raft_conf_change_decode(&cc, e->data, e->len) != DKV_OK
        || conf_check(c, &cc) != DKV_OK) {
        return;
    }
    switch (cc.type) {
    case DKV_RAFT_ADD_LEARNER:
        c->learners[c->nlearners++] = cc.node;
        break;
    case DKV_RAFT_PROMOTE:
        ids_remove(c->learners, &c->nlearners, cc.node);
        c->voters[c->nvoters++] = cc.node;
        break;
    default:
        ids_remove(c->learners, &c->nlearners, cc.node);
        ids_remove(c->voters, &c->nvoters, cc.node);
        break;
    }
}

/* The membership in force at INDEX (compaction point <= INDEX <= last). */
static void
conf_at(const dkv_raft_t *r, uint64_t index, dkv_raft_conf_t *c)
{
    uint64_t i;

    *c = r->snap.conf;
    for (i = r->snap.index + 1; i <= index && i <= last_index(r); i++) {
        conf_apply_entry(c, entry_at(r, i));
    }
}

static size_t
quorum(const dkv_raft_t *r)
{
    return r->conf.nvoters / 2 + 1;
}

static progress_t *
pr_find(dkv_raft_t *r, uint32_t id)
{
    size_t i;

    for (i = 0; i < r->npr; i++) {
        if (r->prs[i].id == id) {
            return &r->prs[i];
        }
    }
    return NULL;
}

static void
pr_reset(dkv_raft_t *r, progress_t *pr)
{
    pr->match = 0;
    pr->next = last_index(r) + 1;
    pr->state = PR_PROBE;
    pr->probe_sent = 0;
    pr->recent_active = 1;
    pr->pending_snapshot = 0;
    pr->infl_start = pr->infl_count = 0;
    pr->read_ack = 0;
    pr->vote = 0;
    pr->stall = 0;
    pr->sent_commit = 0;
}

/* Makes the progress table hold exactly the members of r->conf. */
static void
sync_progress(dkv_raft_t *r)
{
    size_t i, j;
    uint32_t ids[NPR];
    size_t nids = 0;

    for (i = 0; i < r->conf.nvoters; i++) {
        ids[nids++] = r->conf.voters[i];
    }
    for (i = 0; i < r->conf.nlearners; i++) {
        ids[nids++] = r->conf.learners[i];
    }
    for (i = 0; i < r->npr;) {
        if (conf_find(ids, nids, r->prs[i].id) < 0) {
            dkv_free(r->prs[i].inflight);
            r->prs[i] = r->prs[--r->npr];
        } else {
            i++;
        }
    }
    for (j = 0; j < nids; j++) {
        progress_t *pr;

        if (pr_find(r, ids[j]) != NULL) {
            continue;
        }
        pr = &r->prs[r->npr++];
        memset(pr, 0, sizeof(*pr));
        pr->id = ids[j];
        pr->inflight = dkv_malloc(r->cfg.max_inflight * sizeof(uint64_t));
        if (pr->inflight == NULL) {
            oom();
        }
        pr_reset(r, pr);
    }
}

/* ------------------------------------------------------------- messages */

static dkv_raft_msg_t *
new_msg(dkv_raft_t *r, uint8_t type, uint32_t to)
{
    dkv_raft_msg_t *m;

    reserve(&r->msgs, &r->capmsgs, r->nmsgs + 1, sizeof(*r->msgs));
    m = &r->msgs[r->nmsgs++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    return m;
}

static void
free_msgs(dkv_raft_msg_t *msgs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        dkv_free(msgs[i].entries);
    }
}

static void
out_read(dkv_raft_t *r, uint64_t context, uint64_t index)
{
    reserve(&r->out_reads, &r->capout_reads, r->nout_reads + 1,
            sizeof(*r->out_reads));
    r->out_reads[r->nout_reads].context = context;
    r->out_reads[r->nout_reads].index = index;
    r->nout_reads++;
}

static void
out_failed(dkv_raft_t *r, uint64_t context)
{
    reserve(&r->out_failed, &r->capout_failed, r->nout_failed + 1,
            sizeof(*r->out_failed));
    r->out_failed[r->nout_failed++] = context;
}

/* ------------------------------------------------------------- progress */

static int
infl_full(const dkv_raft_t *r, const progress_t *pr)
{
    return pr->infl_count >= r->cfg.max_inflight;
}

static void
infl_add(dkv_raft_t *r, progress_t *pr, uint64_t index)
{
    size_t n = r->cfg.max_inflight;

    pr->inflight[(pr->infl_start + pr->infl_count) % n] = index;
    pr->infl_count++;
}

static void
infl_free_to(dkv_raft_t *r, progress_t *pr, uint64_t index)
{
    size_t n = r->cfg.max_inflight;

    while (pr->infl_count > 0 && pr->inflight[pr->infl_start] <= index) {
        pr->infl_start = (pr->infl_start + 1) % n;
        pr->infl_count--;
    }
}

static void
pr_become_probe(dkv_raft_t *r, progress_t *pr)
{
    if (pr->state == PR_SNAPSHOT) {
        uint64_t ps = pr->pending_snapshot;
        pr->next = (pr->match > ps ? pr->match : ps) + 1;
    } else {
        pr->next = pr->match + 1;
    }
    if (pr->next > last_index(r) + 1) {
        pr->next = last_index(r) + 1;
    }
    pr->state = PR_PROBE;
    pr->probe_sent = 0;
    pr->pending_snapshot = 0;
    pr->infl_start = pr->infl_count = 0;
}

static void
pr_become_replicate(progress_t *pr)
{
    pr->state = PR_REPLICATE;
    pr->next = pr->match + 1;
    pr->probe_sent = 0;
    pr->infl_start = pr->infl_count = 0;
}

/* Notes that an append to PR ending at index UPTO carries the commit
 * index: the follower may apply up to the smaller of the two. */
static void
note_commit_sent(dkv_raft_t *r, progress_t *pr, uint64_t upto)
{
    uint64_t c = r->commit < upto ? r->commit : upto;

    if (c > pr->sent_commit) {
        pr->sent_commit = c;
    }
}

/* Sends the compaction point to PR (the caller streams the data). */
static void
send_snapshot(dkv_raft_t *r, progress_t *pr)
{
    dkv_raft_msg_t *m = new_msg(r, DKV_RAFT_MSG_SNAPSHOT, pr->id);

    m->snapshot = r->snap;
    m->index = r->snap.index;
    m->log_term = r->snap.term;
    m->commit = r->commit;
    pr->state = PR_SNAPSHOT;
    pr->snap_elapsed = 0;
    pr->pending_snapshot = r->snap.index;
    pr->probe_sent = 0;
    pr->infl_start = pr->infl_count = 0;
}

/* Sends PR the entries from its next index (and none when ALLOW_EMPTY is
 * 0 and there are none).  Returns 1 when a message went out. */
static int
send_append(dkv_raft_t *r, progress_t *pr, int allow_empty)
{
    uint64_t prev, last = last_index(r), i, bytes = 0;
    size_t n = 0;
    dkv_raft_msg_t *m;
    int found;
    uint64_t prev_term;

    if (pr->id == r->id || pr->state == PR_SNAPSHOT
        || (pr->state == PR_PROBE && pr->probe_sent)
        || (pr->state == PR_REPLICATE && infl_full(r, pr))) {
        return 0;
    }
    if (pr->next > last + 1) {
        pr->next = last + 1;
    }
    prev = pr->next - 1;
    prev_term = term_at(r, prev, &found);
    if (!found) {
        send_snapshot(r, pr);
        return 1;
    }
    for (i = pr->next; i <= last && n < r->cfg.max_append_entries; i++) {
        size_t len = entry_at(r, i)->len;
        if (n > 0 && bytes + len > r->cfg.max_append_bytes) {
            break;
        }
        bytes += len;
        n++;
    }
    if (n == 0 && !allow_empty) {
        return 0;
    }
    m = new_msg(r, DKV_RAFT_MSG_APPEND, pr->id);
    m->index = prev;
    m->log_term = prev_term;
    m->commit = r->commit;
    note_commit_sent(r, pr, prev + n);
    if (n > 0) {
        m->entries = dkv_malloc(n * sizeof(*m->entries));
        if (m->entries == NULL) {
            oom();
        }
        memcpy(m->entries, entry_at(r, pr->next), n * sizeof(*m->entries));
        m->nentries = n;
    }
    if (pr->state == PR_REPLICATE) {
        if (n > 0) {
            pr->next = prev + n + 1;
            infl_add(r, pr, prev + n);
        }
    } else {
        pr->probe_sent = 1;
    }
    return 1;
}

/* A heartbeat: an empty APPEND at the follower's known match, carrying
 * the newest read round and the commit. */
static void
send_heartbeat(dkv_raft_t *r, progress_t *pr)
{
    dkv_raft_msg_t *m;
    uint64_t prev = pr->match;
    int found;

    if (pr->id == r->id) {
        return;
    }
    if (prev < r->snap.index) {
        prev = r->snap.index;
    }
    if (prev > last_index(r)) {
        prev = last_index(r);
    }
    m = new_msg(r, DKV_RAFT_MSG_APPEND, pr->id);
    m->index = prev;
    m->log_term = term_at(r, prev, &found);
    m->commit = r->commit;
    m->context = r->read_round;
    note_commit_sent(r, pr, prev);
}

static void
bcast_heartbeat(dkv_raft_t *r)
{
    size_t i;

    for (i = 0; i < r->npr; i++) {
        send_heartbeat(r, &r->prs[i]);
    }
}

/* Sends new entries to every peer; with COMMIT_NEWS, a heartbeat to
 * those that get nothing (to carry the new commit index). */
static void
bcast_append(dkv_raft_t *r, int commit_news)
{
    size_t i;

    for (i = 0; i < r->npr; i++) {
        progress_t *pr = &r->prs[i];
        if (pr->id == r->id) {
            continue;
        }
        if (!send_append(r, pr, 0) && commit_news) {
            send_heartbeat(r, pr);
        }
    }
}

/* --------------------------------------------------------------- reads */

static void
answer_read(dkv_raft_t *r, const read_req_t *rq)
{
    if (rq->from == 0) {
        out_read(r, rq->context, rq->index);
    } else {
        dkv_raft_msg_t *m = new_msg(r, DKV_RAFT_MSG_READ_INDEX_RESP,
                                    rq->from);
        m->index = rq->index;
        m->context = rq->context;
    }
}

static void
fail_read(dkv_raft_t *r, uint64_t context, uint32_t from)
{
    if (from == 0) {
        out_failed(r, context);
    } else {
        dkv_raft_msg_t *m = new_msg(r, DKV_RAFT_MSG_READ_INDEX_RESP, from);
        m->context = context;
        m->reject = 1;
    }
}

static void
fail_leader_reads(dkv_raft_t *r)
{
    size_t i;

    for (i = 0; i < r->nreads; i++) {
        fail_read(r, r->reads[i].context, r->reads[i].from);
    }
    r->nreads = 0;
}

static void
fail_forwarded_reads(dkv_raft_t *r)
{
    size_t i;

    for (i = 0; i < r->nfwd; i++) {
        out_failed(r, r->fwd[i].context);
    }
    r->nfwd = 0;
}

static int
committed_in_term(const dkv_raft_t *r)
{
    int found;

    return term_at(r, r->commit, &found) == r->term && found;
}

/* Answers the reads whose round a quorum of voters acknowledged. */
static void
check_reads(dkv_raft_t *r)
{
    size_t i, k, done = 0;

    for (i = 0; i < r->nreads; i++) {
        read_req_t *rq = &r->reads[i];
        size_t acks = 0;

        if (rq->round == 0) {
            break;
        }
        for (k = 0; k < r->conf.nvoters; k++) {
            uint32_t v = r->conf.voters[k];
            progress_t *pr = pr_find(r, v);
            if (v == r->id || (pr != NULL && pr->read_ack >= rq->round)) {
                acks++;
            }
        }
        if (acks < quorum(r)) {
            break;
        }
        done = i + 1;
    }
    for (i = 0; i < done; i++) {
        answer_read(r, &r->reads[i]);
    }
    memmove(r->reads, r->reads + done,
            (r->nreads - done) * sizeof(*r->reads));
    r->nreads -= done;
}

/* Gives the waiting reads the commit index and a round, and asks. */
static void
activate_reads(dkv_raft_t *r)
{
    size_t i;
    int any = 0;

    if (r->role != DKV_RAFT_LEADER || !committed_in_term(r)) {
        return;
    }
    for (i = 0; i < r->nreads; i++) {
        if (r->reads[i].round == 0) {
            if (!any) {
                r->read_round++;
                any = 1;
            }
            r->reads[i].round = r->read_round;
            r->reads[i].index = r->commit;
        }
    }
    if (any) {
        bcast_heartbeat(r);
        check_reads(r);
    }
}

static void
leader_read(dkv_raft_t *r, uint64_t context, uint32_t from)
{
    read_req_t *rq;

    reserve(&r->reads, &r->capreads, r->nreads + 1, sizeof(*r->reads));
    rq = &r->reads[r->nreads++];
    memset(rq, 0, sizeof(*rq));
    rq->context = context;
    rq->from = from;
    activate_reads(r);
}

/* --------------------------------------------------------- role changes */

static void
reset_election_timer(dkv_raft_t *r)
{
    unsigned e = r->cfg.election_ticks;

    r->election_elapsed = 0;
    r->randomized_timeout = e + (unsigned)(r->cfg.random(
        r->cfg.random_baton) % e);
}

static void
set_leader(dkv_raft_t *r, uint32_t leader)
{
    if (leader != r->leader) {
        fail_forwarded_reads(r);
    }
    r->leader = leader;
}

static void
become_follower(dkv_raft_t *r, uint64_t term, uint32_t leader)
{
    if (r->role == DKV_RAFT_LEADER) {
        fail_leader_reads(r);
    }
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
    }
    r->role = DKV_RAFT_FOLLOWER;
    set_leader(r, leader);
    r->transfer_target = 0;
    r->campaign_transfer = 0;
    r->heartbeat_elapsed = 0;
    reset_election_timer(r);
}

static void
maybe_commit_and_after(dkv_raft_t *r);

static void
become_leader(dkv_raft_t *r)
{
    size_t i;
    dkv_raft_entry_t noop;

    r->role = DKV_RAFT_LEADER;
    set_leader(r, r->id);
    r->transfer_target = 0;
    r->campaign_transfer = 0;
    r->heartbeat_elapsed = 0;
    r->election_elapsed = 0;
    for (i = 0; i < r->npr; i++) {
        pr_reset(r, &r->prs[i]);
    }
    memset(&noop, 0, sizeof(noop));
    noop.term = r->term;
    noop.index = last_index(r) + 1;
    noop.type = DKV_RAFT_ENTRY_NORMAL;
    if (log_append(r, &noop) != DKV_OK) {
        oom();
    }
    bcast_append(r, 0);
    maybe_commit_and_after(r);
}

static size_t
tally(const dkv_raft_t *r, int which)
{
    size_t i, n = 0;

    for (i = 0; i < r->npr; i++) {
        if (r->prs[i].vote == which && is_voter(&r->conf, r->prs[i].id)) {
            n++;
        }
    }
    return n;
}

static void
campaign(dkv_raft_t *r, int pre, int transfer)
{
    size_t i;
    progress_t *self;
    uint64_t vterm;

    if (r->role == DKV_RAFT_LEADER) {
        fail_leader_reads(r);
    }
    for (i = 0; i < r->npr; i++) {
        r->prs[i].vote = 0;
    }
    if (pre) {
        r->role = DKV_RAFT_PRECANDIDATE;
        vterm = r->term + 1;
    } else {
        r->role = DKV_RAFT_CANDIDATE;
        r->term++;
        r->vote = r->id;
        vterm = r->term;
    }
    set_leader(r, 0);
    r->campaign_transfer = transfer;
    r->transfer_target = 0;
    reset_election_timer(r);
    self = pr_find(r, r->id);
    if (self != NULL) {
        self->vote = 1;
    }
    if (tally(r, 1) >= quorum(r)) {
        if (pre) {
            campaign(r, 0, transfer);
        } else {
            become_leader(r);
        }
        return;
    }
    for (i = 0; i < r->conf.nvoters; i++) {
        uint32_t v = r->conf.voters[i];
        dkv_raft_msg_t *m;

        if (v == r->id) {
            continue;
        }
        m = new_msg(r, pre ? DKV_RAFT_MSG_PREVOTE : DKV_RAFT_MSG_VOTE, v);
        m->term = vterm;
        m->index = last_index(r);
        m->log_term = last_term(r);
        m->context = transfer ? CTX_TRANSFER : 0;
    }
}

/* May this node campaign?  A voter of its latest membership may; so
 * may a node that an uncommitted change removed (the thesis, 4.2.2): it
 * may still be needed to commit that change, and it campaigns under
 * the latest membership without counting its own vote. */
static int
promotable(const dkv_raft_t *r)
{
    dkv_raft_conf_t c;

    if (is_voter(&r->conf, r->id)) {
        return 1;
    }
    if (r->conf_index <= r->commit) {
        return 0;
    }
    conf_at(r, r->commit, &c);
    return is_voter(&c, r->id);
}

/* ------------------------------------------------------------- commit */

/* Commits by counting (current-term entries only), then what follows a
 * commit on a leader: a removed leader steps down, reads wait for it. */
static void
maybe_commit_and_after(dkv_raft_t *r)
{
    uint64_t matches[DKV_RAFT_MAX_MEMBERS];
    size_t i, j, n = 0;
    uint64_t c;
    int found;

    if (r->role != DKV_RAFT_LEADER || r->conf.nvoters == 0) {
        return;
    }
    for (i = 0; i < r->conf.nvoters; i++) {
        uint32_t v = r->conf.voters[i];
        progress_t *pr = pr_find(r, v);
        matches[n++] = v == r->id ? r->stable : pr ? pr->match : 0;
    }
    for (i = 1; i < n; i++) {      /* insertion sort, descending */
        uint64_t x = matches[i];
        for (j = i; j > 0 && matches[j - 1] < x; j--) {
            matches[j] = matches[j - 1];
        }
        matches[j] = x;
    }
    c = matches[quorum(r) - 1];
    if (c > r->commit
        && ((r->cfg.test_faults & DKV_RAFT_TEST_COMMIT_OLD_TERMS)
            || term_at(r, c, &found) == r->term)) {
        r->commit = c;
        if (!is_voter(&r->conf, r->id) && r->commit >= r->conf_index) {
            become_follower(r, r->term, 0);
            return;
        }
        activate_reads(r);
        bcast_append(r, 1);
    }
}

/* ---------------------------------------------------------- follower */

static void
handle_append(dkv_raft_t *r, const dkv_raft_msg_t *m)
{
    dkv_raft_msg_t *resp;
    uint64_t last_new;
    size_t k;

    if (m->index < r->commit) {
        resp = new_msg(r, DKV_RAFT_MSG_APPEND_RESP, m->from);
        resp->index = r->commit;
        resp->context = m->context;
        return;
    }
    if (!match_term(r, m->index, m->log_term)) {
        uint64_t hint = m->index < last_index(r) ? m->index : last_index(r);
        int found;

        hint = find_conflict_by_term(r, hint, m->log_term);
        resp = new_msg(r, DKV_RAFT_MSG_APPEND_RESP, m->from);
        resp->index = m->index;
        resp->reject = 1;
        resp->reject_hint = hint;
        resp->log_term = term_at(r, hint, &found);
        resp->context = m->context;
        return;
    }
    for (k = 0; k < m->nentries; k++) {
        const dkv_raft_entry_t *e = &m->entries[k];
        int found;

        if (e->index <= last_index(r)) {
            if (term_at(r, e->index, &found) == e->term) {
                continue;
            }
            log_truncate(r, e->index);
            conf_at(r, last_index(r), &r->conf);
            r->conf_index = 0;
        }
        if (log_append(r, e) != DKV_OK) {
            oom();
        }
        if (e->type == DKV_RAFT_ENTRY_CONF) {
            conf_apply_entry(&r->conf, e);
            r->conf_index = e->index;
        }
    }
    if (r->conf_index == 0) {
        /* after a truncation: find the latest change again */
        uint64_t i;
        r->conf_index = r->snap.index;
        for (i = last_index(r); i > r->snap.index; i--) {
            if (entry_at(r, i)->type == DKV_RAFT_ENTRY_CONF) {
                r->conf_index = i;
                break;
            }
        }
    }
    sync_progress(r);
    last_new = m->index + m->nentries;
    if (m->commit > r->commit) {
        uint64_t c = m->commit < last_new ? m->commit : last_new;
        if (c > r->commit) {
            r->commit = c;
        }
    }
    resp = new_msg(r, DKV_RAFT_MSG_APPEND_RESP, m->from);
    resp->index = last_new;
    resp->context = m->context;
}

static void
handle_snapshot(dkv_raft_t *r, const dkv_raft_msg_t *m)
{
    const dkv_raft_snapshot_meta_t *s = &m->snapshot;
    dkv_raft_msg_t *resp;

    if (s->index <= r->commit) {
        resp = new_msg(r, DKV_RAFT_MSG_APPEND_RESP, m->from);
        resp->index = r->commit;
        return;
    }
    if (match_term(r, s->index, s->term)) {
        /* we have the entry: the log already holds the state */
        r->commit = s->index;
        resp = new_msg(r, DKV_RAFT_MSG_APPEND_RESP, m->from);
        resp->index = s->index;
        return;
    }
    log_truncate(r, r->snap.index + 1);
    if (r->truncate_from == 0) {
        r->truncate_from = r->snap.index + 1;
    }
    r->snap = *s;
    r->conf = s->conf;
    r->conf_index = s->index;
    r->commit = s->index;
    if (r->stable < s->index) {
        r->stable = s->index;
    }
    r->has_snapshot = 1;
    r->pending_snap = *s;
    sync_progress(r);
    resp = new_msg(r, DKV_RAFT_MSG_APPEND_RESP, m->from);
    resp->index = s->index;
}

static void
handle_vote(dkv_raft_t *r, const dkv_raft_msg_t *m)
{
    int pre = m->type == DKV_RAFT_MSG_PREVOTE;
    int can, uptodate;
    dkv_raft_msg_t *resp;

    can = r->vote == m->from || (r->vote == 0 && r->leader == 0)
          || (pre && m->term > r->term);
    if (!pre && (r->cfg.test_faults & DKV_RAFT_TEST_DOUBLE_VOTE)) {
        can = 1;
    }
    uptodate = m->log_term > last_term(r)
               || (m->log_term == last_term(r) && m->index >= last_index(r));
    resp = new_msg(r, pre ? DKV_RAFT_MSG_PREVOTE_RESP
                          : DKV_RAFT_MSG_VOTE_RESP, m->from);
    if (can && uptodate) {
        resp->term = m->term;
        if (!pre) {
            r->vote = m->from;
            r->election_elapsed = 0;
        }
    } else {
        resp->reject = 1;
    }
}

/* ---------------------------------------------------------- per role */

static void
step_leader(dkv_raft_t *r, const dkv_raft_msg_t *m)
{
    progress_t *pr = pr_find(r, m->from);
    uint64_t idx;

    if (m->type == DKV_RAFT_MSG_READ_INDEX) {
        leader_read(r, m->context, m->from);
        return;
    }
    if (pr == NULL || (m->type != DKV_RAFT_MSG_APPEND_RESP
                       && m->type != DKV_RAFT_MSG_SNAPSHOT_RESP)) {
        return;
    }
    pr->recent_active = 1;
    if (m->context > pr->read_ack) {
        pr->read_ack = m->context;
        check_reads(r);
    }
    if (m->reject) {
        if (m->type == DKV_RAFT_MSG_SNAPSHOT_RESP) {
            if (pr->state == PR_SNAPSHOT) {
                pr->pending_snapshot = 0;
                pr_become_probe(r, pr);
            }
        } else if (pr->state == PR_REPLICATE) {
            if (m->index > pr->match) {
                pr_become_probe(r, pr);
            }
        } else if (pr->state == PR_PROBE && m->index == pr->next - 1) {
            idx = m->reject_hint;
            if (m->log_term > 0) {
                idx = find_conflict_by_term(r, idx, m->log_term);
            }
            if (idx + 1 < pr->next) {
                pr->next = idx + 1;
            }
            if (pr->next < pr->match + 1) {
                pr->next = pr->match + 1;
            }
            pr->probe_sent = 0;
        }
        send_append(r, pr, 1);
        return;
    }
    idx = m->index;
    if (idx > last_index(r)) {
        idx = last_index(r);     /* a stale answer from a longer log */
    }
    if (idx > pr->match) {
        pr->match = idx;
        pr->stall = 0;
        if (pr->next < idx + 1) {
            pr->next = idx + 1;
        }
        if (pr->state == PR_PROBE) {
            pr_become_replicate(pr);
        } else if (pr->state == PR_SNAPSHOT
                   && pr->match >= pr->pending_snapshot) {
            /* It installed the snapshot (or a later one); the log may
             * have been compacted past it since: probe, and a new
             * snapshot goes out when its next entry is gone. */
            int caught_up = pr->match >= r->snap.index;

            pr_become_probe(r, pr);
            if (caught_up) {
                pr_become_replicate(pr);
            }
        } else if (pr->state == PR_REPLICATE) {
            infl_free_to(r, pr, idx);
        }
        maybe_commit_and_after(r);
        if (r->role != DKV_RAFT_LEADER) {
            return;
        }
    } else if (pr->state == PR_PROBE) {
        /* a heartbeat's answer: probe again (an empty append finds where
         * the logs part) */
        pr->probe_sent = 0;
        send_append(r, pr, pr->match < last_index(r));
    } else if (pr->state == PR_SNAPSHOT
               && pr->match >= pr->pending_snapshot) {
        pr_become_probe(r, pr);
    }
    while (send_append(r, pr, 0)) {
        if (pr->state != PR_REPLICATE) {
            break;
        }
    }
    /* Its ack may come after the commit moved (another follower's ack
     * was first): without news it would learn the commit only at the
     * next heartbeat, and a client of that follower would wait a tick. */
    if (pr->state == PR_REPLICATE
        && pr->sent_commit < (r->commit < pr->match ? r->commit
                                                    : pr->match)) {
        send_heartbeat(r, pr);
    }
    if (pr->id == r->transfer_target && pr->match == last_index(r)) {
        new_msg(r, DKV_RAFT_MSG_TIMEOUT_NOW, pr->id);
    }
}

static void
step_candidate(dkv_raft_t *r, const dkv_raft_msg_t *m)
{
    int pre = r->role == DKV_RAFT_PRECANDIDATE;
    progress_t *pr;

    switch (m->type) {
    case DKV_RAFT_MSG_APPEND:
        become_follower(r, m->term, m->from);
        handle_append(r, m);
        return;
    case DKV_RAFT_MSG_SNAPSHOT:
        become_follower(r, m->term, m->from);
        handle_snapshot(r, m);
        return;
    case DKV_RAFT_MSG_READ_INDEX:
        fail_read(r, m->context, m->from);
        return;
    case DKV_RAFT_MSG_PREVOTE_RESP:
    case DKV_RAFT_MSG_VOTE_RESP:
        if ((m->type == DKV_RAFT_MSG_PREVOTE_RESP) != pre) {
            return;
        }
        if (pre && !m->reject && m->term != r->term + 1) {
            return;
        }
        pr = pr_find(r, m->from);
        if (pr == NULL || pr->vote != 0) {
            return;
        }
        pr->vote = m->reject ? 2 : 1;
        if (tally(r, 1) >= quorum(r)) {
            if (pre) {
                campaign(r, 0, r->campaign_transfer);
            } else {
                become_leader(r);
            }
        } else if (tally(r, 2) >= quorum(r)) {
            become_follower(r, r->term, 0);
        }
        return;
    default:
        return;
    }
}

static void
step_follower(dkv_raft_t *r, const dkv_raft_msg_t *m)
{
    size_t i;

    switch (m->type) {
    case DKV_RAFT_MSG_APPEND:
        r->election_elapsed = 0;
        set_leader(r, m->from);
        handle_append(r, m);
        return;
    case DKV_RAFT_MSG_SNAPSHOT:
        r->election_elapsed = 0;
        set_leader(r, m->from);
        handle_snapshot(r, m);
        return;
    case DKV_RAFT_MSG_TIMEOUT_NOW:
        if (promotable(r)) {
            campaign(r, 0, 1);
        }
        return;
    case DKV_RAFT_MSG_READ_INDEX:
        fail_read(r, m->context, m->from);
        return;
    case DKV_RAFT_MSG_READ_INDEX_RESP:
        for (i = 0; i < r->nfwd; i++) {
            if (r->fwd[i].context == m->context) {
                if (m->reject) {
                    out_failed(r, m->context);
                } else {
                    out_read(r, m->context, m->index);
                }
                r->fwd[i] = r->fwd[--r->nfwd];
                break;
            }
        }
        return;
    default:
        return;
    }
}

/* --------------------------------------------------------------- step */

static int
valid_msg(const dkv_raft_msg_t *m)
{
    size_t k;

    if (m->type < DKV_RAFT_MSG_PREVOTE || m->type > DKV_RAFT_MSG_TIMEOUT_NOW
        || m->from == 0 || (m->nentries > 0 && m->entries == NULL)) {
        return 0;
    }
    if (m->type != DKV_RAFT_MSG_APPEND && m->nentries > 0) {
        return 0;
    }
    for (k = 0; k < m->nentries; k++) {
        const dkv_raft_entry_t *e = &m->entries[k];
        if (e->index != m->index + 1 + k || e->term > m->term
            || (k > 0 && e->term < m->entries[k - 1].term)
            || (k == 0 && e->term < m->log_term)
            || e->type > DKV_RAFT_ENTRY_CONF
            || (e->len > 0 && e->data == NULL)) {
            return 0;
        }
    }
    if (m->type == DKV_RAFT_MSG_SNAPSHOT
        && (m->snapshot.conf.nvoters > DKV_RAFT_MAX_MEMBERS
            || m->snapshot.conf.nlearners > DKV_RAFT_MAX_MEMBERS)) {
        return 0;
    }
    return 1;
}

dkv_status_t
dkv_raft_step(dkv_raft_t *r, const dkv_raft_msg_t *m)
{
    int is_vote;

    if (r == NULL || m == NULL || !valid_msg(m)) {
        return dkv_error_set(DKV_EINVAL, "raft: malformed message");
    }
    if (m->to != r->id || m->from == r->id) {
        return DKV_OK;
    }
    is_vote = m->type == DKV_RAFT_MSG_PREVOTE || m->type == DKV_RAFT_MSG_VOTE;
    if (m->term > r->term) {
        if (is_vote) {
            int force = m->type == DKV_RAFT_MSG_VOTE
                        && m->context == CTX_TRANSFER;
            int in_lease = !r->cfg.no_check_quorum && r->leader != 0
                           && r->election_elapsed < r->cfg.election_ticks;
            if (!force && in_lease) {
                return DKV_OK;
            }
        }
        if (m->type == DKV_RAFT_MSG_PREVOTE
            || (m->type == DKV_RAFT_MSG_PREVOTE_RESP && !m->reject)) {
            /* a pre-vote does not change terms */
        } else if (m->type == DKV_RAFT_MSG_APPEND
                   || m->type == DKV_RAFT_MSG_SNAPSHOT) {
            become_follower(r, m->term, m->from);
        } else {
            become_follower(r, m->term, 0);
        }
    } else if (m->term < r->term) {
        if (m->type == DKV_RAFT_MSG_APPEND
            && (!r->cfg.no_check_quorum || !r->cfg.no_prevote)) {
            /* tell a stale leader about the new term */
            new_msg(r, DKV_RAFT_MSG_APPEND_RESP, m->from);
        } else if (m->type == DKV_RAFT_MSG_PREVOTE) {
            dkv_raft_msg_t *resp = new_msg(r, DKV_RAFT_MSG_PREVOTE_RESP,
                                           m->from);
            resp->reject = 1;
        }
        return DKV_OK;
    }
    if (is_vote) {
        handle_vote(r, m);
        return DKV_OK;
    }
    switch (r->role) {
    case DKV_RAFT_LEADER:
        step_leader(r, m);
        break;
    case DKV_RAFT_CANDIDATE:
    case DKV_RAFT_PRECANDIDATE:
        step_candidate(r, m);
        break;
    default:
        step_follower(r, m);
        break;
    }
    return DKV_OK;
}

/* -------------------------------------------------------------- inputs */

static void
age_reads(dkv_raft_t *r)
{
    unsigned limit = READ_TIMEOUT_ELECTIONS * r->cfg.election_ticks;
    size_t i;

    for (i = 0; i < r->nfwd;) {
        if (++r->fwd[i].age > limit) {
            out_failed(r, r->fwd[i].context);
            r->fwd[i] = r->fwd[--r->nfwd];
        } else {
            i++;
        }
    }
    /* leader reads are answered in order: fail from the oldest */
    while (r->nreads > 0 && r->reads[0].age + 1 > limit) {
        fail_read(r, r->reads[0].context, r->reads[0].from);
        memmove(r->reads, r->reads + 1, (r->nreads - 1) * sizeof(*r->reads));
        r->nreads--;
    }
    for (i = 0; i < r->nreads; i++) {
        r->reads[i].age++;
    }
}

static unsigned
stall_ticks(const dkv_raft_t *r)
{
    unsigned t = r->cfg.election_ticks / 2;

    return t < 2 ? 2 : t;
}

static void
tick_leader(dkv_raft_t *r)
{
    size_t i;

    r->election_elapsed++;
    if (r->transfer_target != 0
        && ++r->transfer_elapsed >= r->cfg.election_ticks) {
        r->transfer_target = 0;
    }
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        if (!r->cfg.no_check_quorum) {
            size_t active = 0;
            for (i = 0; i < r->npr; i++) {
                progress_t *pr = &r->prs[i];
                if (is_voter(&r->conf, pr->id)
                    && (pr->id == r->id || pr->recent_active)) {
                    active++;
                }
                pr->recent_active = 0;
            }
            if (active < quorum(r)) {
                become_follower(r, r->term, 0);
                return;
            }
        }
    }
    for (i = 0; i < r->npr; i++) {
        /* appends in flight that bring no answer for half an election
         * timeout were lost: probe again from the known match */
        progress_t *pr = &r->prs[i];
        if (pr->state == PR_SNAPSHOT
            && ++pr->snap_elapsed >= r->cfg.snapshot_timeout_ticks) {
            pr->pending_snapshot = 0;
            pr_become_probe(r, pr);
        }
        if (pr->id == r->id || pr->state != PR_REPLICATE
            || pr->match >= last_index(r)) {
            pr->stall = 0;
        } else if (++pr->stall >= stall_ticks(r)) {
            pr->stall = 0;
            pr_become_probe(r, pr);
            send_append(r, pr, 1);
        }
    }
    if (++r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        for (i = 0; i < r->npr; i++) {
            if (r->prs[i].state == PR_PROBE) {
                r->prs[i].probe_sent = 0;
            }
        }
        bcast_heartbeat(r);
    }
}

void
dkv_raft_tick(dkv_raft_t *r)
{
    age_reads(r);
    if (r->role == DKV_RAFT_LEADER) {
        tick_leader(r);
        return;
    }
    r->election_elapsed++;
    if (!promotable(r)) {
        return;
    }
    if (r->conf.nvoters == 1 && r->conf.voters[0] == r->id
        && r->role == DKV_RAFT_FOLLOWER) {
        campaign(r, 0, 0);       /* a group of one: at once */
        return;
    }
    if (r->election_elapsed >= r->randomized_timeout) {
        campaign(r, !r->cfg.no_prevote, 0);
    }
}

static dkv_status_t
propose_entry(uint64_t *index, dkv_raft_t *r, uint8_t type,
              const void *data, size_t len)
{
    dkv_raft_entry_t e;
    dkv_status_t rv;

    if (r->role != DKV_RAFT_LEADER || r->transfer_target != 0) {
        return dkv_error_set(DKV_ENOTLEADER, "raft: node %u is not the "
                             "leader (leader: %u)", (unsigned)r->id,
                             (unsigned)r->leader);
    }
    e.term = r->term;
    e.index = last_index(r) + 1;
    e.type = type;
    e.len = len;
    e.data = (unsigned char *)(uintptr_t)data;
    rv = log_append(r, &e);
    if (rv != DKV_OK) {
        return dkv_error_set(rv, "raft: out of memory for a proposal");
    }
    if (index != NULL) {
        *index = e.index;
    }
    if (type == DKV_RAFT_ENTRY_CONF) {
        conf_apply_entry(&r->conf, &e);
        r->conf_index = e.index;
        sync_progress(r);
    }
    bcast_append(r, 0);
    maybe_commit_and_after(r);
    return DKV_OK;
}

dkv_status_t
dkv_raft_propose(uint64_t *index, dkv_raft_t *r, const void *data,
                 size_t len)
{
    if (len > 0 && data == NULL) {
        return dkv_error_set(DKV_EINVAL, "raft: NULL data");
    }
    return propose_entry(index, r, DKV_RAFT_ENTRY_NORMAL, data, len);
}

dkv_status_t
dkv_raft_propose_conf(uint64_t *index, dkv_raft_t *r,
                      const dkv_raft_conf_change_t *change)
{
    unsigned char buf[5];

    if (r->role != DKV_RAFT_LEADER || r->transfer_target != 0) {
        return dkv_error_set(DKV_ENOTLEADER, "raft: node %u is not the "
                             "leader", (unsigned)r->id);
    }
    if (r->conf_index > r->commit) {
        return dkv_error_set(DKV_ECONFLICT, "raft: membership change at "
                             "%llu not committed yet",
                             (unsigned long long)r->conf_index);
    }
    if (!committed_in_term(r)) {
        /* a change proposed before the new leader's first commit can
         * form a majority disjoint from an older uncommitted change's
         * (the single-server change bug, raft-dev 2015) */
        return dkv_error_set(DKV_ECONFLICT, "raft: no entry of term %llu "
                             "committed yet", (unsigned long long)r->term);
    }
    if (conf_check(&r->conf, change) != DKV_OK) {
        return dkv_error_set(DKV_EINVAL, "raft: membership change (type "
                             "%u, node %u) does not apply",
                             (unsigned)change->type,
                             (unsigned)change->node);
    }
    if (dkv_raft_conf_change_encode(buf, change) != DKV_OK) {
        return DKV_EINVAL;
    }
    return propose_entry(index, r, DKV_RAFT_ENTRY_CONF, buf, sizeof(buf));
}

void
dkv_raft_read_index(dkv_raft_t *r, uint64_t context)
{
    fwd_read_t *f;

    if (r->role == DKV_RAFT_LEADER) {
        leader_read(r, context, 0);
        return;
    }
    if (r->role != DKV_RAFT_FOLLOWER || r->leader == 0) {
        out_failed(r, context);
        return;
    }
    reserve(&r->fwd, &r->capfwd, r->nfwd + 1, sizeof(*r->fwd));
    f = &r->fwd[r->nfwd++];
    f->context = context;
    f->age = 0;
    new_msg(r, DKV_RAFT_MSG_READ_INDEX, r->leader)->context = context;
}

dkv_status_t
dkv_raft_transfer(dkv_raft_t *r, uint32_t to)
{
    progress_t *pr;

    if (r->role != DKV_RAFT_LEADER) {
        return dkv_error_set(DKV_ENOTLEADER, "raft: not the leader");
    }
    if (to == r->id || !is_voter(&r->conf, to)
        || (pr = pr_find(r, to)) == NULL) {
        return dkv_error_set(DKV_EINVAL, "raft: cannot transfer "
                             "leadership to %u", (unsigned)to);
    }
    if (r->transfer_target == to) {
        return DKV_OK;
    }
    r->transfer_target = to;
    r->transfer_elapsed = 0;
    if (pr->match == last_index(r)) {
        new_msg(r, DKV_RAFT_MSG_TIMEOUT_NOW, to);
    } else {
        send_append(r, pr, 1);
    }
    return DKV_OK;
}

dkv_status_t
dkv_raft_compact(dkv_raft_t *r, uint64_t index)
{
    dkv_raft_snapshot_meta_t meta;
    uint64_t i;
    size_t drop;

    if (index <= r->snap.index) {
        return DKV_OK;
    }
    if (index > r->applied || index > r->stable) {
        return dkv_error_set(DKV_EINVAL, "raft: cannot compact to %llu "
                             "(applied %llu)", (unsigned long long)index,
                             (unsigned long long)r->applied);
    }
    if (dkv_raft_snapshot_meta(&meta, r, index) != DKV_OK) {
        return DKV_EINVAL;
    }
    for (i = r->snap.index + 1; i <= index; i++) {
        drop_data(r, entry_at(r, i)->data);
    }
    drop = (size_t)(index - r->snap.index);
    memmove(r->log, r->log + drop, (r->nlog - drop) * sizeof(*r->log));
    r->nlog -= drop;
    r->snap = meta;
    return DKV_OK;
}

void
dkv_raft_snapshot_failed(dkv_raft_t *r, uint32_t to)
{
    progress_t *pr;

    if (r->role != DKV_RAFT_LEADER || (pr = pr_find(r, to)) == NULL
        || pr->state != PR_SNAPSHOT) {
        return;
    }
    pr->pending_snapshot = 0;
    pr_become_probe(r, pr);
}

/* ------------------------------------------------------------- lifecycle */

dkv_status_t
dkv_raft_create(dkv_raft_t **rp, const dkv_raft_config_t *config,
                const dkv_raft_restore_t *restore)
{
    dkv_raft_t *r;
    size_t k;
    dkv_status_t rv;

    *rp = NULL;
    if (config == NULL || restore == NULL || restore->snapshot == NULL
        || config->id == 0 || config->random == NULL
        || restore->snapshot->conf.nvoters > DKV_RAFT_MAX_MEMBERS
        || restore->snapshot->conf.nlearners > DKV_RAFT_MAX_MEMBERS
        || (restore->nentries > 0 && restore->entries == NULL)) {
        return dkv_error_set(DKV_EINVAL, "raft: bad configuration");
    }
    r = dkv_calloc(1, sizeof(*r));
    if (r == NULL) {
        return APR_ENOMEM;
    }
    r->cfg = *config;
    if (r->cfg.election_ticks == 0) {
        r->cfg.election_ticks = 10;
    }
    if (r->cfg.heartbeat_ticks == 0) {
        r->cfg.heartbeat_ticks = 1;
    }
    if (r->cfg.max_append_entries == 0) {
        r->cfg.max_append_entries = 256;
    }
    if (r->cfg.max_append_bytes == 0) {
        r->cfg.max_append_bytes = 1024 * 1024;
    }
    if (r->cfg.max_inflight == 0) {
        r->cfg.max_inflight = 64;
    }
    if (r->cfg.snapshot_timeout_ticks == 0) {
        r->cfg.snapshot_timeout_ticks = 20 * r->cfg.election_ticks;
    }
    if (r->cfg.heartbeat_ticks >= r->cfg.election_ticks) {
        dkv_free(r);
        return dkv_error_set(DKV_EINVAL, "raft: heartbeat_ticks must be "
                             "below election_ticks");
    }
    r->id = config->id;
    r->snap = *restore->snapshot;
    for (k = 0; k < restore->nentries; k++) {
        const dkv_raft_entry_t *e = &restore->entries[k];
        if (e->index != last_index(r) + 1 || e->term < last_term(r)
            || e->type > DKV_RAFT_ENTRY_CONF) {
            dkv_raft_destroy(r);
            return dkv_error_set(DKV_EINVAL, "raft: restored log has a gap "
                                 "or a bad entry at %llu",
                                 (unsigned long long)e->index);
        }
        rv = log_append(r, e);
        if (rv != DKV_OK) {
            dkv_raft_destroy(r);
            return rv;
        }
    }
    if (restore->hard_state != NULL) {
        r->term = restore->hard_state->term;
        r->vote = restore->hard_state->vote;
        r->commit = restore->hard_state->commit;
    }
    if (r->commit < r->snap.index) {
        r->commit = r->snap.index;
    }
    if (r->commit > last_index(r) || restore->applied < r->snap.index
        || restore->applied > r->commit || last_term(r) > r->term) {
        dkv_status_t bad = dkv_error_set(DKV_EINVAL, "raft: restored "
                                         "state does not hold together "
                                         "(commit %llu, last %llu, applied "
                                         "%llu)",
                                         (unsigned long long)r->commit,
                                         (unsigned long long)last_index(r),
                                         (unsigned long long)
                                         restore->applied);

        dkv_raft_destroy(r);
        return bad;
    }
    r->applied = restore->applied;
    r->stable = last_index(r);
    conf_at(r, last_index(r), &r->conf);
    r->conf_index = r->snap.index;
    for (k = 0; k < r->nlog; k++) {
        if (r->log[k].type == DKV_RAFT_ENTRY_CONF) {
            r->conf_index = r->log[k].index;
        }
    }
    r->prev_hs.term = r->term;
    r->prev_hs.vote = r->vote;
    r->prev_hs.commit = r->commit;
    r->role = DKV_RAFT_FOLLOWER;
    sync_progress(r);
    reset_election_timer(r);
    *rp = r;
    return DKV_OK;
}

void
dkv_raft_destroy(dkv_raft_t *r)
{
    size_t i;

    if (r == NULL) {
        return;
    }
    for (i = 0; i < r->nlog; i++) {
        dkv_free(r->log[i].data);
    }
    dkv_free(r->log);
    for (i = 0; i < r->npr; i++) {
        dkv_free(r->prs[i].inflight);
    }
    free_msgs(r->msgs, r->nmsgs);
    dkv_free(r->msgs);
    free_msgs(r->h_msgs, r->h_nmsgs);
    dkv_free(r->h_msgs);
    free_grave(r, 1);
    dkv_free(r->grave);
    dkv_free(r->reads);
    dkv_free(r->fwd);
    dkv_free(r->out_reads);
    dkv_free(r->out_failed);
    dkv_free(r->h_reads);
    dkv_free(r->h_failed);
    dkv_free(r->h_entries);
    dkv_free(r->h_committed);
    dkv_free(r);
}

/* --------------------------------------------------------- ready cycle */

static uint64_t
apply_base(const dkv_raft_t *r)
{
    uint64_t base = r->applied;

    if (r->has_snapshot && r->pending_snap.index > base) {
        base = r->pending_snap.index;
    }
    return base;
}

static uint64_t
apply_to(const dkv_raft_t *r)
{
    return r->commit < last_index(r) ? r->commit : last_index(r);
}

int
dkv_raft_has_ready(const dkv_raft_t *r)
{
    return r->nmsgs > 0 || r->nout_reads > 0 || r->nout_failed > 0
           || r->has_snapshot || r->truncate_from != 0
           || last_index(r) > r->stable
           || apply_to(r) > apply_base(r)
           || r->term != r->prev_hs.term || r->vote != r->prev_hs.vote
           || r->commit != r->prev_hs.commit;
}

void
dkv_raft_ready(dkv_raft_t *r, dkv_raft_ready_t *rd)
{
    uint64_t from, to, n;
    void *tmp;
    size_t tcap;

    memset(rd, 0, sizeof(*rd));
    r->ready_out = 1;
    r->ready_gen++;
    rd->hard_state.term = r->term;
    rd->hard_state.vote = r->vote;
    rd->hard_state.commit = r->commit;
    rd->has_hard_state = r->term != r->prev_hs.term
                         || r->vote != r->prev_hs.vote
                         || r->commit != r->prev_hs.commit;
    r->h_hs = rd->hard_state;

    rd->truncate_from = r->truncate_from;
    r->truncate_from = 0;

    n = last_index(r) > r->stable ? last_index(r) - r->stable : 0;
    reserve(&r->h_entries, &r->h_capentries, (size_t)n + 1,
            sizeof(*r->h_entries));
    if (n > 0) {
        memcpy(r->h_entries, entry_at(r, r->stable + 1),
               (size_t)n * sizeof(*r->h_entries));
    }
    rd->entries = r->h_entries;
    rd->nentries = (size_t)n;
    r->h_last = last_index(r);

    rd->has_snapshot = r->has_snapshot;
    rd->snapshot = r->pending_snap;
    r->h_snapshot = r->has_snapshot;
    r->h_snapshot_index = r->pending_snap.index;

    from = apply_base(r) + 1;
    to = apply_to(r);
    n = to >= from ? to - from + 1 : 0;
    reserve(&r->h_committed, &r->h_capcommitted, (size_t)n + 1,
            sizeof(*r->h_committed));
    if (n > 0) {
        memcpy(r->h_committed, entry_at(r, from),
               (size_t)n * sizeof(*r->h_committed));
    }
    rd->committed = r->h_committed;
    rd->ncommitted = (size_t)n;
    r->h_applied = n > 0 ? to : from - 1;
    r->has_snapshot = 0;

    /* swap the gathering buffers with the handed-out ones */
    tmp = r->h_msgs; r->h_msgs = r->msgs; r->msgs = tmp;
    tcap = r->h_capmsgs; r->h_capmsgs = r->capmsgs; r->capmsgs = tcap;
    r->h_nmsgs = r->nmsgs;
    r->nmsgs = 0;
    rd->messages = r->h_msgs;
    rd->nmessages = r->h_nmsgs;

    tmp = r->h_reads; r->h_reads = r->out_reads; r->out_reads = tmp;
    tcap = r->h_capreads; r->h_capreads = r->capout_reads;
    r->capout_reads = tcap;
    rd->reads = r->h_reads;
    rd->nreads = r->nout_reads;
    r->nout_reads = 0;

    tmp = r->h_failed; r->h_failed = r->out_failed; r->out_failed = tmp;
    tcap = r->h_capfailed; r->h_capfailed = r->capout_failed;
    r->capout_failed = tcap;
    rd->failed_reads = r->h_failed;
    rd->nfailed_reads = r->nout_failed;
    r->nout_failed = 0;

    rd->role = r->role;
    rd->leader = r->leader;
    rd->term = r->term;
}

void
dkv_raft_advance(dkv_raft_t *r, const dkv_raft_ready_t *rd)
{
    uint64_t was_stable;

    (void)rd;
    if (!r->ready_out) {
        return;
    }
    r->ready_out = 0;
    r->prev_hs = r->h_hs;
    was_stable = r->stable;
    if (r->h_last > r->stable) {
        r->stable = r->h_last;
    }
    if (r->h_snapshot && r->h_snapshot_index > r->applied) {
        r->applied = r->h_snapshot_index;
    }
    if (r->h_applied > r->applied) {
        r->applied = r->h_applied;
    }
    r->h_snapshot = 0;
    free_msgs(r->h_msgs, r->h_nmsgs);
    r->h_nmsgs = 0;
    free_grave(r, 0);
    if (r->role == DKV_RAFT_LEADER && was_stable != r->stable) {
        maybe_commit_and_after(r);
    }
}

/* --------------------------------------------------------------- state */

void
dkv_raft_status(const dkv_raft_t *r, dkv_raft_status_t *st)
{
    st->id = r->id;
    st->role = r->role;
    st->leader = r->leader;
    st->term = r->term;
    st->commit = r->commit;
    st->applied = r->applied;
    st->first_index = r->snap.index + 1;
    st->last_index = last_index(r);
    st->conf = r->conf;
}

dkv_status_t
dkv_raft_match(uint64_t *match, const dkv_raft_t *r, uint32_t id)
{
    size_t i;

    if (r->role != DKV_RAFT_LEADER) {
        return DKV_ENOTLEADER;
    }
    for (i = 0; i < r->npr; i++) {
        if (r->prs[i].id == id) {
            *match = r->prs[i].match;
            return DKV_OK;
        }
    }
    return DKV_ENOTFOUND;
}

dkv_status_t
dkv_raft_term(uint64_t *term, const dkv_raft_t *r, uint64_t index)
{
    int found;
    uint64_t t = term_at(r, index, &found);

    if (!found) {
        return DKV_ENOTFOUND;
    }
    *term = t;
    return DKV_OK;
}

dkv_status_t
dkv_raft_snapshot_meta(dkv_raft_snapshot_meta_t *meta, const dkv_raft_t *r,
                       uint64_t index)
{
    int found;

    if (index < r->snap.index || index > r->commit) {
        return DKV_ENOTFOUND;
    }
    meta->index = index;
    meta->term = term_at(r, index, &found);
    if (!found) {
        return DKV_ENOTFOUND;
    }
    conf_at(r, index, &meta->conf);
    return DKV_OK;
}

const char *
dkv_raft_role_name(dkv_raft_role_t role)
{
    switch (role) {
    case DKV_RAFT_FOLLOWER:
        return "follower";
    case DKV_RAFT_PRECANDIDATE:
        return "pre-candidate";
    case DKV_RAFT_CANDIDATE:
        return "candidate";
    case DKV_RAFT_LEADER:
        return "leader";
    default:
        return "unknown";
    }
}
