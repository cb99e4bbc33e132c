/*
 * raft.h -- dkv's Raft core: a pure, deterministic state machine.
 *
 * Messages and ticks go in; messages to send, entries and hard state to
 * persist, a snapshot to install, entries to apply and read indexes come
 * out (dkv_raft_ready).  The core does no I/O, reads no clock, starts no
 * thread and draws randomness only from the callback its caller gives
 * it, so the same inputs give the same outputs: a simulation replays a
 * run from its seed.  docs/internals/raft.md describes the design.
 *
 * Features: leader election with pre-vote and check-quorum; log
 * replication with batching and pipelining (a window of appends in
 * flight per follower); commit by majority (only entries of the current
 * term are committed by counting, as in the paper); snapshots and log
 * compaction; single-server membership changes (add a learner, promote
 * it to voter once caught up, remove a member), applied when the change
 * entry is appended, one at a time; leadership transfer; ReadIndex.
 *
 * The log lives in memory from the last compaction on (the caller also
 * persists it, and gives it back to dkv_raft_create after a restart).
 *
 * Not thread-safe: one thread drives a core.
 */
#ifndef DKV_RAFT_H
#define DKV_RAFT_H

#include <stddef.h>
#include <stdint.h>

#include "dkv.h"

typedef struct dkv_raft dkv_raft_t;

typedef enum dkv_raft_role {
    DKV_RAFT_FOLLOWER = 0,
    DKV_RAFT_PRECANDIDATE = 1,
    DKV_RAFT_CANDIDATE = 2,
    DKV_RAFT_LEADER = 3
} dkv_raft_role_t;

/* ------------------------------------------------------------- entries */

typedef enum dkv_raft_entry_type {
    DKV_RAFT_ENTRY_NORMAL = 0,   /* the caller's data (empty: a no-op) */
    DKV_RAFT_ENTRY_CONF = 1      /* a membership change (dkv_raft_conf_change_t
                                  * encoded by dkv_raft_conf_change_encode) */
} dkv_raft_entry_type_t;

typedef struct dkv_raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type;                /* dkv_raft_entry_type_t */
    size_t len;
    unsigned char *data;         /* LEN bytes (NULL when LEN is 0) */
} dkv_raft_entry_t;

/* Membership: voters and learners, by node id (ids are nonzero). */
#define DKV_RAFT_MAX_MEMBERS 16
typedef struct dkv_raft_conf {
    uint32_t voters[DKV_RAFT_MAX_MEMBERS];
    size_t nvoters;
    uint32_t learners[DKV_RAFT_MAX_MEMBERS];
    size_t nlearners;
} dkv_raft_conf_t;

typedef enum dkv_raft_change_type {
    DKV_RAFT_ADD_LEARNER = 1,
    DKV_RAFT_PROMOTE = 2,        /* learner -> voter */
    DKV_RAFT_REMOVE = 3
} dkv_raft_change_type_t;

typedef struct dkv_raft_conf_change {
    uint8_t type;                /* dkv_raft_change_type_t */
    uint32_t node;
} dkv_raft_conf_change_t;

/* The persistent state besides the log. */
typedef struct dkv_raft_hard_state {
    uint64_t term;
    uint32_t vote;               /* 0: none */
    uint64_t commit;
} dkv_raft_hard_state_t;

/* What a snapshot stands for: the state after applying INDEX (of TERM)
 * with membership CONF. */
typedef struct dkv_raft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    dkv_raft_conf_t conf;
} dkv_raft_snapshot_meta_t;

/* ------------------------------------------------------------ messages */

typedef enum dkv_raft_msg_type {
    DKV_RAFT_MSG_PREVOTE = 1,
    DKV_RAFT_MSG_PREVOTE_RESP = 2,
    DKV_RAFT_MSG_VOTE = 3,
    DKV_RAFT_MSG_VOTE_RESP = 4,
    DKV_RAFT_MSG_APPEND = 5,          /* also the heartbeat (no entries) */
    DKV_RAFT_MSG_APPEND_RESP = 6,
    DKV_RAFT_MSG_SNAPSHOT = 7,        /* install SNAPSHOT (data sent aside) */
    DKV_RAFT_MSG_SNAPSHOT_RESP = 8,   /* optional; an APPEND_RESP works too */
    DKV_RAFT_MSG_READ_INDEX = 9,      /* follower -> leader, CONTEXT */
    DKV_RAFT_MSG_READ_INDEX_RESP = 10,/* leader -> follower: INDEX, CONTEXT,
                                       * REJECT when it cannot serve */
    DKV_RAFT_MSG_TIMEOUT_NOW = 11     /* transfer: campaign at once */
} dkv_raft_msg_type_t;

typedef struct dkv_raft_msg {
    uint8_t type;
    uint32_t from, to;
    uint64_t term;
    uint64_t log_term;           /* APPEND: term of INDEX; votes: last term */
    uint64_t index;              /* APPEND: prev index; votes: last index;
                                  * responses: match / hint; reads: index */
    uint64_t commit;             /* APPEND: leader's commit */
    uint64_t context;            /* READ_INDEX(_RESP) and heartbeats: the
                                  * read round they belong to; VOTE: 1
                                  * when from a leadership transfer */
    int reject;
    uint64_t reject_hint;        /* APPEND_RESP reject: the follower's last
                                  * index (or a better guess) */
    dkv_raft_entry_t *entries;   /* APPEND */
    size_t nentries;
    dkv_raft_snapshot_meta_t snapshot;   /* SNAPSHOT */
} dkv_raft_msg_t;

/* ---------------------------------------------------------------- ready */

/* What the caller must do, in this order: persist HARD_STATE (when
 * HAS_HARD_STATE), delete persisted entries with index >= TRUNCATE_FROM
 * (when nonzero) then persist ENTRIES; install SNAPSHOT (when
 * HAS_SNAPSHOT) -- all of that durably, in one transaction if it can --
 * then send MESSAGES, apply COMMITTED in order, and report READS; then
 * call dkv_raft_advance.  Everything in it is valid until then.
 *
 * A leader's messages may be sent before its own entries are durable
 * (the paper's section 10.2.1); a follower's responses are only correct
 * after its entries and hard state are durable, and the core orders its
 * messages so that sending them all after persisting is right.
 *
 * Installing SNAPSHOT replaces the log: TRUNCATE_FROM then covers every
 * persisted entry, and the snapshot becomes the compaction point.
 * Inputs (step, tick, propose...) between dkv_raft_ready and
 * dkv_raft_advance are allowed; what the ready points to stays valid.
 * Call dkv_raft_ready once per advance. */
typedef struct dkv_raft_read_state {
    uint64_t context;            /* as given to dkv_raft_read_index */
    uint64_t index;              /* serve the read once applied >= index */
} dkv_raft_read_state_t;

typedef struct dkv_raft_ready {
    int has_hard_state;
    dkv_raft_hard_state_t hard_state;
    uint64_t truncate_from;
    const dkv_raft_entry_t *entries;      /* to persist */
    size_t nentries;
    int has_snapshot;
    dkv_raft_snapshot_meta_t snapshot;    /* to install (data: the caller's) */
    const dkv_raft_msg_t *messages;       /* to send */
    size_t nmessages;
    const dkv_raft_entry_t *committed;    /* to apply */
    size_t ncommitted;
    const dkv_raft_read_state_t *reads;   /* read indexes now known */
    size_t nreads;
    const uint64_t *failed_reads;         /* contexts that cannot be served
                                           * (leadership lost): retry later */
    size_t nfailed_reads;
    /* Soft state, for the caller's information. */
    dkv_raft_role_t role;
    uint32_t leader;             /* 0: unknown */
    uint64_t term;
} dkv_raft_ready_t;

/* ----------------------------------------------------------- lifecycle */

typedef struct dkv_raft_config {
    uint32_t id;                 /* this node, nonzero */
    unsigned election_ticks;     /* base election timeout; 0: 10 */
    unsigned heartbeat_ticks;    /* 0: 1; must be < election_ticks */
    size_t max_append_entries;   /* entries per APPEND; 0: 256 */
    size_t max_append_bytes;     /* bytes of entry data per APPEND; 0: 1 MiB */
    size_t max_inflight;         /* APPENDs in flight per follower; 0: 64 */
    int no_prevote;              /* 1: no pre-vote phase */
    int no_check_quorum;         /* 1: no check-quorum */
    /* Ticks a leader waits for a follower to answer a SNAPSHOT before it
     * asks again (the caller should call dkv_raft_snapshot_failed as soon
     * as it knows a transfer failed; this covers a follower that crashed
     * before persisting what it received); 0: 20 election timeouts. */
    unsigned snapshot_timeout_ticks;
    /* Randomness (election timeouts): a uniformly distributed 32-bit
     * number per call. */
    uint32_t (*random)(void *baton);
    void *random_baton;
    /* TEST ONLY: deliberate bugs (DKV_RAFT_TEST_*) so the simulation
     * can show that its invariant checks catch a broken core.  Always 0
     * outside tests. */
    unsigned test_faults;
} dkv_raft_config_t;

/* test_faults bits (tests only): grant every VOTE, even a second one in
 * a term; commit entries of older terms by counting replicas. */
#define DKV_RAFT_TEST_DOUBLE_VOTE      0x1u
#define DKV_RAFT_TEST_COMMIT_OLD_TERMS 0x2u

/* What a (re)starting node had persisted: the last snapshot or
 * compaction point (index 0 and the initial membership for a new
 * group), the hard state, and the entries after SNAPSHOT->index in
 * order.  The entries are copied.  APPLIED is the index the state
 * machine has applied (>= SNAPSHOT->index; committed entries after it
 * come out of dkv_raft_ready again). */
typedef struct dkv_raft_restore {
    const dkv_raft_snapshot_meta_t *snapshot;
    const dkv_raft_hard_state_t *hard_state;   /* NULL: all zero */
    const dkv_raft_entry_t *entries;
    size_t nentries;
    uint64_t applied;
} dkv_raft_restore_t;

/* Creates a core.  Returns DKV_OK, DKV_EINVAL (bad config, or a
 * restore that does not hold together: gaps, commit beyond the log),
 * APR_ENOMEM.  Running out of memory later, inside the core, aborts the
 * process: a core cannot continue half-updated. */
dkv_status_t dkv_raft_create(dkv_raft_t **raft,
                             const dkv_raft_config_t *config,
                             const dkv_raft_restore_t *restore);

/* Frees RAFT and everything it holds.  NULL does nothing. */
void dkv_raft_destroy(dkv_raft_t *raft);

/* --------------------------------------------------------------- inputs */

/* One unit of logical time. */
void dkv_raft_tick(dkv_raft_t *raft);

/* A message from a peer (copied as needed).  Messages for another node,
 * from unknown terms or stale ones are handled as Raft says (mostly
 * ignored).  Returns DKV_OK or DKV_EINVAL (malformed). */
dkv_status_t dkv_raft_step(dkv_raft_t *raft, const dkv_raft_msg_t *msg);

/* Appends DATA (copied) as a normal entry.  *INDEX (may be NULL) gets
 * its index.  Returns DKV_OK, or DKV_ENOTLEADER (not the leader, or a
 * leadership transfer is under way). */
dkv_status_t dkv_raft_propose(uint64_t *index, dkv_raft_t *raft,
                              const void *data, size_t len);

/* Proposes a membership change.  DKV_ENOTLEADER; DKV_ECONFLICT when a
 * change is still uncommitted or the leader has not yet committed an
 * entry of its own term (retry later); DKV_EINVAL when it makes no sense
 * (adding a member, promoting a non-learner, removing the last voter,
 * more than DKV_RAFT_MAX_MEMBERS). */
dkv_status_t dkv_raft_propose_conf(uint64_t *index, dkv_raft_t *raft,
                                   const dkv_raft_conf_change_t *change);

/* Asks for a read index for the read round CONTEXT (any value the
 * caller chooses, unique among rounds in flight).  The answer comes in a
 * later ready's READS (or FAILED_READS).  A follower forwards it to the
 * leader; with no leader known it fails at once (FAILED_READS). */
void dkv_raft_read_index(dkv_raft_t *raft, uint64_t context);

/* Starts a leadership transfer to TO (the leader only): DKV_OK,
 * DKV_ENOTLEADER, DKV_EINVAL (not a voter, or itself). */
dkv_status_t dkv_raft_transfer(dkv_raft_t *raft, uint32_t to);

/* The caller has a snapshot of its state machine at applied index INDEX
 * (<= applied, and persisted): entries up to INDEX may be dropped from
 * memory, and the core will ask for a snapshot (a DKV_RAFT_MSG_SNAPSHOT
 * message, carrying the compaction point's metadata; the caller may
 * send a newer state, rewriting the metadata with
 * dkv_raft_snapshot_meta) for a follower that needs them.  An INDEX at
 * or below the compaction point does nothing.  Returns DKV_OK or
 * DKV_EINVAL. */
dkv_status_t dkv_raft_compact(dkv_raft_t *raft, uint64_t index);

/* The caller failed to deliver the snapshot to TO: the core goes back
 * to probing that follower (and will ask again). */
void dkv_raft_snapshot_failed(dkv_raft_t *raft, uint32_t to);

/* --------------------------------------------------------------- outputs */

/* 1 when a ready has something to do. */
int dkv_raft_has_ready(const dkv_raft_t *raft);

/* Fills *READY with what is to be done (see dkv_raft_ready_t). */
void dkv_raft_ready(dkv_raft_t *raft, dkv_raft_ready_t *ready);

/* The caller did everything READY asked (persisted, sent, applied). */
void dkv_raft_advance(dkv_raft_t *raft, const dkv_raft_ready_t *ready);

/* ---------------------------------------------------------------- state */

typedef struct dkv_raft_status {
    uint32_t id;
    dkv_raft_role_t role;
    uint32_t leader;
    uint64_t term;
    uint64_t commit;
    uint64_t applied;
    uint64_t first_index;        /* first entry in memory */
    uint64_t last_index;
    dkv_raft_conf_t conf;        /* the latest membership (appended) */
} dkv_raft_status_t;

void dkv_raft_status(const dkv_raft_t *raft, dkv_raft_status_t *status);

/* The leader's knowledge of how far the log of member ID (a voter or
 * learner other than the leader) matches its own: *MATCH.  Returns
 * DKV_OK, DKV_ENOTLEADER on another node, DKV_ENOTFOUND for a
 * non-member. */
dkv_status_t dkv_raft_match(uint64_t *match, const dkv_raft_t *raft,
                            uint32_t id);

/* The term of entry INDEX: known for the compaction point and every
 * entry in memory.  Returns DKV_OK or DKV_ENOTFOUND. */
dkv_status_t dkv_raft_term(uint64_t *term, const dkv_raft_t *raft,
                           uint64_t index);

/* The snapshot metadata for the state machine at applied index INDEX
 * (compaction point <= INDEX <= commit): its term and the membership
 * in force at INDEX.  Returns DKV_OK or DKV_ENOTFOUND (also while a
 * received snapshot waits in a ready: call it right after an advance). */
dkv_status_t dkv_raft_snapshot_meta(dkv_raft_snapshot_meta_t *meta,
                                    const dkv_raft_t *raft, uint64_t index);

const char *dkv_raft_role_name(dkv_raft_role_t role);

/* ------------------------------------------------------------ encodings
 * (src/raft/msg.c): big-endian, versioned, hostile-input safe.  Encoders
 * return a dkv_malloc'ed buffer (*OUT, *LEN) the caller frees with
 * dkv_free; decoders check every count against the bytes present. */

dkv_status_t dkv_raft_msg_encode(unsigned char **out, size_t *len,
                                 const dkv_raft_msg_t *msg);
/* Decodes BUF into *MSG; entry data point into BUF (which must outlive
 * MSG); *ENTRIES_BUF receives a dkv_malloc'ed array for MSG->entries
 * (NULL when none) that the caller frees. */
dkv_status_t dkv_raft_msg_decode(dkv_raft_msg_t *msg,
                                 dkv_raft_entry_t **entries_buf,
                                 const unsigned char *buf, size_t len);

/* An entry as the caller persists it: term, type, data. */
dkv_status_t dkv_raft_entry_encode(unsigned char **out, size_t *len,
                                   const dkv_raft_entry_t *entry);
/* INDEX is the persisted key; data point into BUF. */
dkv_status_t dkv_raft_entry_decode(dkv_raft_entry_t *entry, uint64_t index,
                                   const unsigned char *buf, size_t len);

dkv_status_t dkv_raft_hard_state_encode(unsigned char out[20],
                                        const dkv_raft_hard_state_t *hs);
dkv_status_t dkv_raft_hard_state_decode(dkv_raft_hard_state_t *hs,
                                        const unsigned char *buf,
                                        size_t len);
dkv_status_t dkv_raft_snapshot_meta_encode(unsigned char **out, size_t *len,
                                           const dkv_raft_snapshot_meta_t *m);
dkv_status_t dkv_raft_snapshot_meta_decode(dkv_raft_snapshot_meta_t *m,
                                           const unsigned char *buf,
                                           size_t len);
dkv_status_t dkv_raft_conf_change_encode(unsigned char out[5],
                                         const dkv_raft_conf_change_t *cc);
dkv_status_t dkv_raft_conf_change_decode(dkv_raft_conf_change_t *cc,
                                         const unsigned char *buf,
                                         size_t len);

#endif /* DKV_RAFT_H */
