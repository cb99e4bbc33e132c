/*
 * lincheck.c -- the linearizability checker of lincheck.h: recording a
 * history, deciding it key by key, writing it as JSON lines.
 *
 * Recording.  Keys and values are interned into one table of byte strings
 * (id 0 is "absent"), so an operation is a small fixed record and the
 * search compares values as integers.  One APR mutex guards the history.
 *
 * Pruning, per key, before any search.  Failed operations and reads that
 * did not answer are dropped.  A write (or cas) whose outcome is unknown
 * is treated by what the others saw of it:
 *   - nobody read (or cas-expected) its value: dropped.  Whatever it did
 *     was overwritten before anyone looked, so any linearization with it
 *     stays one without it;
 *   - its value was read by a completed operation and no other write (nor
 *     the initial value) could have produced that value: it certainly
 *     took effect, before the earliest such read completed, so it becomes
 *     an ordinary operation with that completion time;
 *   - otherwise it stays uncertain: it may be placed anywhere after its
 *     invoke, or nowhere (its completion time is "infinity", and the
 *     search succeeds once every certain operation is placed).
 * With unique written values (what the fault tests do), nothing is left
 * uncertain.  A completed read of a value no write could have produced is
 * reported at once.
 *
 * Search (Wing & Gong, with the memoization of Lowe and of Porcupine).
 * The key's call and return events are sorted by time (calls first at
 * equal times: such operations count as concurrent) into a doubly linked
 * list.  An operation may be placed next when its call comes before the
 * first return still in the list; placing it unlinks both its events.
 * Reaching a return means the search must back up.  Every (set of placed
 * operations, register value) reached is remembered (a bitset and a
 * value, hashed incrementally with one random word per operation), and a
 * configuration seen before is not explored again: the same set and value
 * always have the same future.  Reads are never branched on: a read that
 * may be placed now and returns the current value is placed at once
 * (moving a read that sees the current value to the front of any
 * completion keeps it valid), and when that configuration fails, so does
 * the one before it.  What remains to branch on is the order of
 * concurrent writes, which the reads constrain, and two more rules cut
 * that down without losing any linearization:
 *   - all values nobody reads are one value, "dead" (the search cannot
 *     tell them apart), and a write of a dead value is never a choice of
 *     its own: the dead writes that may be placed are all placed just
 *     before the next plain write (or, as a last resort, alone);
 *   - the register never leaves a value that a read still to be placed
 *     needs when nothing left to place can write that value again (with
 *     unique values: a stale read fails at once, not after a long search).
 * tests/unit/test_lincheck.c compares the verdicts with a brute-force
 * search over many small random histories.
 *
 * The search is bounded by a deadline and by the memory of its table;
 * running out of either gives LINCHECK_TIMEOUT, never a wrong verdict.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_pools.h>
#include <apr_thread_mutex.h>
#include <apr_time.h>

#include "common/alloc.h"
#include "tests/lincheck/lincheck.h"

/* Internal kind and outcome beside the public ones. */
#define LC_INIT 4               /* kind: the key's initial value */
#define LC_PENDING 3            /* outcome: not completed */

/* The register value standing for every value nobody read: the search
 * cannot tell them apart, so they share one id (never a string's). */
#define LC_DEAD UINT32_MAX

/* A completion time later than every real one. */
#define LC_INF INT64_MAX

/* The largest memory one key's table of seen configurations may use. */
#define LC_CACHE_MAX_BYTES ((size_t)512 << 20)

/* Steps between two looks at the clock; and the steps every key gets
 * even after the deadline passed (so simple keys are still decided). */
#define LC_CLOCK_EVERY 1024u
#define LC_LATE_STEPS 20000u

/* ------------------------------------------------------------- history */

typedef struct lc_op {
    uint32_t key;               /* string id of the key */
    uint32_t in;                /* value written (write, cas, init) */
    uint32_t expect;            /* cas: the value expected */
    uint32_t out;               /* read: the value read */
    unsigned client;
    uint8_t kind;               /* lincheck_kind_t or LC_INIT */
    uint8_t outcome;            /* lincheck_outcome_t or LC_PENDING */
    int64_t t_call;
    int64_t t_ret;
} lc_op_t;

typedef struct lc_str {
    size_t off;                 /* in bytes[] */
    size_t len;
    uint64_t hash;
} lc_str_t;

struct lincheck_history {
    apr_pool_t *pool;           /* holds only the mutex */
    apr_thread_mutex_t *lock;
    lc_op_t *ops;
    size_t nops, cap_ops;
    size_t ninit;               /* LC_INIT records among ops */
    char *bytes;                /* interned strings, back to back */
    size_t nbytes, cap_bytes;
    lc_str_t *strs;             /* strs[0] unused: id 0 is absent */
    size_t nstrs, cap_strs;
    uint32_t *table;            /* open addressing over ids, 0: empty */
    size_t table_cap;           /* power of two */
    int broken;                 /* a recording failed */
};

/* Grows the array *P of *CAP elements of SIZE bytes to hold NEED. */
static int
lc_grow(void **p, size_t *cap, size_t need, size_t size)
{
    size_t ncap = *cap ? *cap : 16;
    void *np;

    if (need <= *cap)
        return 0;
    while (ncap < need) {
        if (ncap > ((size_t)-1) / 2 / size)
            return -1;
        ncap *= 2;
    }
    np = dkv_realloc(*p, ncap * size);
    if (!np)
        return -1;
    *p = np;
    *cap = ncap;
    return 0;
}

static uint64_t
lc_hash_bytes(const void *data, size_t len)
{
    const unsigned char *b = data;
    uint64_t x = 14695981039346656037ULL;
    size_t i;

    for (i = 0; i < len; i++) {
        x ^= b[i];
        x *= 1099511628211ULL;
    }
    return x ^ (x >> 29);
}

/* Puts every id of h->strs into a table of CAP slots. */
static int
lc_table_rebuild(lincheck_history_t *h, size_t cap)
{
    uint32_t *t = dkv_calloc(cap, sizeof(*t));
    size_t i;

    if (!t)
        return -1;
    for (i = 1; i < h->nstrs; i++) {
        size_t j = (size_t)h->strs[i].hash & (cap - 1);

        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = (uint32_t)i;
    }
    dkv_free(h->table);
    h->table = t;
    h->table_cap = cap;
    return 0;
}

/* The id of the string DATA (NULL: 0, absent), added if new; UINT32_MAX
 * when out of memory.  Called with the lock held. */
static uint32_t
lc_intern(lincheck_history_t *h, const void *data, size_t len)
{
    uint64_t hash;
    size_t j;
    lc_str_t *s;

    if (!data)
        return 0;
    if ((h->nstrs + 1) * 2 > h->table_cap
        && lc_table_rebuild(h, h->table_cap ? h->table_cap * 2 : 64) != 0)
        return UINT32_MAX;
    hash = lc_hash_bytes(data, len);
    j = (size_t)hash & (h->table_cap - 1);
    while (h->table[j]) {
        s = &h->strs[h->table[j]];
        if (s->hash == hash && s->len == len
            && memcmp(h->bytes + s->off, data, len) == 0)
            return h->table[j];
        j = (j + 1) & (h->table_cap - 1);
    }
    if (h->nstrs >= UINT32_MAX - 1
        || lc_grow((void **)&h->strs, &h->cap_strs, h->nstrs + 1,
                   sizeof(*h->strs)) != 0
        || lc_grow((void **)&h->bytes, &h->cap_bytes, h->nbytes + len + 1,
                   1) != 0)
        return UINT32_MAX;
    if (len)
        memcpy(h->bytes + h->nbytes, data, len);
    s = &h->strs[h->nstrs];
    s->off = h->nbytes;
    s->len = len;
    s->hash = hash;
    h->nbytes += len;
    h->table[j] = (uint32_t)h->nstrs;
    return (uint32_t)h->nstrs++;
}

lincheck_history_t *
lincheck_history_create(void)
{
    lincheck_history_t *h = dkv_calloc(1, sizeof(*h));

    if (!h)
        return NULL;
    if (apr_pool_create(&h->pool, NULL) != APR_SUCCESS) {
        dkv_free(h);
        return NULL;
    }
    if (apr_thread_mutex_create(&h->lock, APR_THREAD_MUTEX_DEFAULT,
                                h->pool) != APR_SUCCESS) {
        apr_pool_destroy(h->pool);
        dkv_free(h);
        return NULL;
    }
    h->nstrs = 1;               /* id 0: absent */
    if (lc_grow((void **)&h->strs, &h->cap_strs, 1, sizeof(*h->strs))
        != 0) {
        lincheck_history_destroy(h);
        return NULL;
    }
    memset(h->strs, 0, sizeof(*h->strs));
    return h;
}

void
lincheck_history_destroy(lincheck_history_t *h)
{
    if (!h)
        return;
    dkv_free(h->ops);
    dkv_free(h->bytes);
    dkv_free(h->strs);
    dkv_free(h->table);
    apr_pool_destroy(h->pool);
    dkv_free(h);
}

/* Appends OP; returns its id or LINCHECK_NO_OP.  Lock held. */
static size_t
lc_append(lincheck_history_t *h, const lc_op_t *op)
{
    if (lc_grow((void **)&h->ops, &h->cap_ops, h->nops + 1,
                sizeof(*h->ops)) != 0) {
        h->broken = 1;
        return LINCHECK_NO_OP;
    }
    h->ops[h->nops] = *op;
    return h->nops++;
}

int
lincheck_history_init(lincheck_history_t *h, const void *key,
                      size_t key_len, const void *value, size_t value_len)
{
    lc_op_t op;
    size_t id = LINCHECK_NO_OP;

    if (!h)
        return -1;
    memset(&op, 0, sizeof(op));
    op.kind = LC_INIT;
    op.outcome = LINCHECK_OK;
    apr_thread_mutex_lock(h->lock);
    op.key = lc_intern(h, key ? key : "", key ? key_len : 0);
    op.in = lc_intern(h, value, value_len);
    if (op.key == UINT32_MAX || op.in == UINT32_MAX)
        h->broken = 1;
    else
        id = lc_append(h, &op);
    if (id != LINCHECK_NO_OP)
        h->ninit++;
    apr_thread_mutex_unlock(h->lock);
    return id == LINCHECK_NO_OP ? -1 : 0;
}

/* Records an invocation; EXPECT is used for a cas only. */
static size_t
lc_invoke(lincheck_history_t *h, unsigned client, lincheck_kind_t kind,
          const void *key, size_t key_len, const void *expect,
          size_t expect_len, const void *value, size_t value_len,
          int64_t t_us)
{
    lc_op_t op;
    size_t id = LINCHECK_NO_OP;

    if (!h)
        return LINCHECK_NO_OP;
    memset(&op, 0, sizeof(op));
    op.client = client;
    op.kind = (uint8_t)kind;
    op.outcome = LC_PENDING;
    op.t_call = t_us;
    op.t_ret = LC_INF;
    apr_thread_mutex_lock(h->lock);
    if (kind != LINCHECK_WRITE && kind != LINCHECK_READ
        && kind != LINCHECK_CAS) {
        h->broken = 1;
        goto done;
    }
    op.key = lc_intern(h, key ? key : "", key ? key_len : 0);
    if (kind != LINCHECK_READ)
        op.in = lc_intern(h, value, value_len);
    if (kind == LINCHECK_CAS)
        op.expect = lc_intern(h, expect, expect_len);
    if (op.key == UINT32_MAX || op.in == UINT32_MAX
        || op.expect == UINT32_MAX) {
        h->broken = 1;
        goto done;
    }
    id = lc_append(h, &op);
done:
    apr_thread_mutex_unlock(h->lock);
    return id;
}

size_t
lincheck_invoke(lincheck_history_t *h, unsigned client,
                lincheck_kind_t kind, const void *key, size_t key_len,
                const void *value, size_t value_len, int64_t t_us)
{
    return lc_invoke(h, client, kind, key, key_len, NULL, 0, value,
                     value_len, t_us);
}

size_t
lincheck_invoke_cas(lincheck_history_t *h, unsigned client,
                    const void *key, size_t key_len, const void *expect,
                    size_t expect_len, const void *value, size_t value_len,
                    int64_t t_us)
{
    return lc_invoke(h, client, LINCHECK_CAS, key, key_len, expect,
                     expect_len, value, value_len, t_us);
}

void
lincheck_complete(lincheck_history_t *h, size_t op,
                  lincheck_outcome_t outcome, const void *out_value,
                  size_t out_len, int64_t t_us)
{
    lc_op_t *o;

    if (!h || op == LINCHECK_NO_OP)
        return;
    apr_thread_mutex_lock(h->lock);
    if (op >= h->nops || h->ops[op].kind == LC_INIT
        || (outcome != LINCHECK_OK && outcome != LINCHECK_FAIL
            && outcome != LINCHECK_UNKNOWN)) {
        h->broken = 1;
        goto done;
    }
    o = &h->ops[op];
    o->outcome = (uint8_t)outcome;
    o->t_ret = t_us < o->t_call ? o->t_call : t_us;
    o->out = 0;
    if (o->kind == LINCHECK_READ && outcome == LINCHECK_OK) {
        o->out = lc_intern(h, out_value, out_len);
        if (o->out == UINT32_MAX) {
            o->out = 0;
            h->broken = 1;
        }
    }
done:
    apr_thread_mutex_unlock(h->lock);
}

size_t
lincheck_history_count(lincheck_history_t *h)
{
    size_t n;

    if (!h)
        return 0;
    apr_thread_mutex_lock(h->lock);
    n = h->nops - h->ninit;
    apr_thread_mutex_unlock(h->lock);
    return n;
}

/* ---------------------------------------------------------- formatting */

const char *
lincheck_format_value(char *buf, size_t size, const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b = data;
    size_t o = 0, i;

    if (!size)
        return buf;
    if (!data || size < 8) {
        snprintf(buf, size, "%s", data ? "" : "absent");
        return buf;
    }
    /* the text stops at size - 5, leaving room for "..." or the closing
     * quote, and the NUL */
    buf[o++] = '"';
    for (i = 0; i < len; i++) {
        unsigned ch = b[i];

        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            if (o + 1 > size - 5)
                break;
            buf[o++] = (char)ch;
        } else if (ch == '"' || ch == '\\') {
            if (o + 2 > size - 5)
                break;
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else {
            if (o + 4 > size - 5)
                break;
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[ch >> 4];
            buf[o++] = hex[ch & 15];
        }
    }
    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    } else {
        buf[o++] = '"';
    }
    buf[o] = '\0';
    return buf;
}

/* The printable form of string id ID of H. */
static const char *
lc_fmt(char *buf, size_t size, const lincheck_history_t *h, uint32_t id)
{
    if (!id)
        return lincheck_format_value(buf, size, NULL, 0);
    if (id == LC_DEAD) {
        snprintf(buf, size, "a value nobody read");
        return buf;
    }
    return lincheck_format_value(buf, size, h->bytes + h->strs[id].off,
                                 h->strs[id].len);
}

/* Describes operation I of H in BUF ("#12 client 3: write "x" ..."). */
static const char *
lc_describe(char *buf, size_t size, const lincheck_history_t *h, size_t i)
{
    const lc_op_t *o = &h->ops[i];
    static const char *const outcomes[] = { "ok", "fail", "unknown",
                                            "pending" };
    char v1[64], v2[64], t[48];

    if (o->t_ret == LC_INF)
        snprintf(t, sizeof(t), "never");
    else
        snprintf(t, sizeof(t), "%lld", (long long)o->t_ret);
    switch (o->kind) {
    case LINCHECK_WRITE:
        snprintf(buf, size, "#%lu client %u: write %s, invoked %lld, "
                 "completed %s (%s)", (unsigned long)i, o->client,
                 lc_fmt(v1, sizeof(v1), h, o->in), (long long)o->t_call, t,
                 outcomes[o->outcome]);
        break;
    case LINCHECK_READ:
        snprintf(buf, size, "#%lu client %u: read -> %s, invoked %lld, "
                 "completed %s (%s)", (unsigned long)i, o->client,
                 o->outcome == LINCHECK_OK ? lc_fmt(v1, sizeof(v1), h, o->out)
                 : "?", (long long)o->t_call, t, outcomes[o->outcome]);
        break;
    case LINCHECK_CAS:
        snprintf(buf, size, "#%lu client %u: cas %s -> %s, invoked %lld, "
                 "completed %s (%s)", (unsigned long)i, o->client,
                 lc_fmt(v1, sizeof(v1), h, o->expect),
                 lc_fmt(v2, sizeof(v2), h, o->in), (long long)o->t_call, t,
                 outcomes[o->outcome]);
        break;
    default:
        snprintf(buf, size, "initial value %s",
                 lc_fmt(v1, sizeof(v1), h, o->in));
        break;
    }
    return buf;
}

/* ------------------------------------------------------------ checking */

/* One operation the search must or may place. */
typedef struct lc_sop {
    size_t op;                  /* index in h->ops */
    uint8_t kind;
    uint8_t certain;            /* must be placed */
    uint32_t in, expect, out;
    int64_t t_call, t_ret;
    uint64_t zob;               /* its word of the configuration hash */
} lc_sop_t;

/* A call or return event (list node 1..2m; node 0 is the head). */
typedef struct lc_event {
    int64_t t;
    uint32_t sop;
    uint8_t is_ret;
} lc_event_t;

/* One placement on the search stack. */
typedef struct lc_frame {
    uint32_t node;              /* the call node placed */
    uint32_t state;             /* the register before it */
    uint8_t forced;             /* a read placed without choice */
} lc_frame_t;

/* Per-value counts for the pruning (indexed by string id). */
typedef struct lc_vstat {
    uint32_t writers;           /* ops (and the init) that may write it */
    uint32_t seen;              /* completed reads / ok cas expecting it */
    uint32_t maybe_seen;        /* unknown cas expecting it */
    int64_t first_seen;         /* earliest completion among `seen` */
    uint32_t to_write;          /* search: ops not placed that write it */
    uint32_t to_see;            /* search: reads (and certain cas) not
                                 * placed that need the register to hold
                                 * it */
} lc_vstat_t;

/* Everything one check run needs, reused from key to key. */
typedef struct lc_check {
    lincheck_history_t *h;
    apr_time_t deadline;        /* 0: none */
    int late;                   /* the deadline has passed */
    lc_vstat_t *vs;             /* h->nstrs entries, all zero between keys */
    lc_sop_t *sops;
    size_t cap_sops;
    lc_event_t *evs;
    size_t cap_evs;
    uint32_t *next, *prev, *match;
    size_t cap_next, cap_prev, cap_match;
    lc_frame_t *stack;
    size_t cap_stack;
    uint64_t *bits;
    size_t cap_bits;
    /* the table of seen configurations */
    uint64_t *cache;            /* entries of (2 + words) words */
    size_t cache_len, cache_cap;        /* in words */
    uint32_t *slots;            /* entry number + 1, 0: empty */
    size_t nslots, nentries;
    /* the search's position */
    uint32_t tail;              /* the list's end node */
    size_t words;               /* of the bitset */
    uint64_t hash;              /* of the placed set (xor of zob) */
    size_t sp;                  /* frames on the stack */
    size_t placed;              /* certain operations placed */
    uint32_t *absorb;           /* scratch for lc_place */
    size_t cap_absorb;
    /* the result of the key being checked */
    uint64_t steps;
    char message[768];          /* fits in a report with the key */
} lc_check_t;

static uint64_t
lc_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int
lc_event_cmp(const void *a, const void *b)
{
    const lc_event_t *x = a, *y = b;

    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->is_ret != y->is_ret)
        return x->is_ret ? 1 : -1;
    return x->sop < y->sop ? -1 : x->sop > y->sop;
}

/* Adds the configuration (BITS of WORDS words, STATE) with hash HASH to
 * the table.  Returns 1 when it is new, 0 when seen before, -1 when the
 * table is full (memory). */
static int
lc_cache_put(lc_check_t *c, uint64_t hash, uint32_t state,
             const uint64_t *bits, size_t words)
{
    size_t esize = 2 + words, j;
    uint64_t *e;

    if ((c->nentries + 1) * 2 > c->nslots) {
        size_t ncap = c->nslots ? c->nslots * 2 : 1024, k;
        uint32_t *ns;

        if (ncap > UINT32_MAX)
            return -1;
        ns = dkv_calloc(ncap, sizeof(*ns));
        if (!ns)
            return -1;
        for (k = 0; k < c->nentries; k++) {
            j = (size_t)c->cache[k * esize] & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = (uint32_t)(k + 1);
        }
        dkv_free(c->slots);
        c->slots = ns;
        c->nslots = ncap;
    }
    j = (size_t)hash & (c->nslots - 1);
    while (c->slots[j]) {
        e = c->cache + (size_t)(c->slots[j] - 1) * esize;
        if (e[0] == hash && e[1] == state
            && memcmp(e + 2, bits, words * sizeof(*bits)) == 0)
            return 0;
        j = (j + 1) & (c->nslots - 1);
    }
    if ((c->cache_len + esize) * sizeof(uint64_t) > LC_CACHE_MAX_BYTES
        || lc_grow((void **)&c->cache, &c->cache_cap, c->cache_len + esize,
                   sizeof(uint64_t)) != 0)
        return -1;
    e = c->cache + c->cache_len;
    e[0] = hash;
    e[1] = state;
    memcpy(e + 2, bits, words * sizeof(*bits));
    c->cache_len += esize;
    c->slots[j] = (uint32_t)++c->nentries;
    return 1;
}

/* Unlinks list node N. */
static void
lc_unlink(lc_check_t *c, uint32_t n)
{
    c->next[c->prev[n]] = c->next[n];
    c->prev[c->next[n]] = c->prev[n];
}

/* Puts back node N (undoing lc_unlink, in reverse order). */
static void
lc_relink(lc_check_t *c, uint32_t n)
{
    c->next[c->prev[n]] = n;
    c->prev[c->next[n]] = n;
}

/* Counts a search step; returns 1 when the key's budget is spent: LIMIT
 * steps when nonzero, else the deadline (which then marks c->late). */
static int
lc_tick(lc_check_t *c, uint64_t limit)
{
    if (++c->steps % LC_CLOCK_EVERY)
        return 0;
    if (limit)
        return c->steps >= limit;
    if (c->deadline && apr_time_now() > c->deadline) {
        c->late = 1;
        return 1;
    }
    return 0;
}

/* Adds DELTA to the search counts of the values S writes and needs. */
static void
lc_count(lc_check_t *c, const lc_sop_t *s, int delta)
{
    if (s->kind == LINCHECK_READ) {
        c->vs[s->out].to_see += (uint32_t)delta;
        return;
    }
    if (s->in != LC_DEAD)
        c->vs[s->in].to_write += (uint32_t)delta;
    if (s->kind == LINCHECK_CAS && s->certain)
        c->vs[s->expect].to_see += (uint32_t)delta;
}

/* 1 when the register may not leave value STATE: some operation still
 * to place needs it, and nothing left to place can write it again. */
static int
lc_needed(const lc_check_t *c, uint32_t state)
{
    return state != LC_DEAD && c->vs[state].to_see
           && !c->vs[state].to_write;
}

/* Places, as one step of the search from register value STATE: the
 * operation at call node FIRST (0: none) and, when FIRST is a plain
 * write or none, just before it every dead write that may be placed now
 * (a write nobody read: it only matters that a write overwrites it at
 * once, and writing it off before FIRST, whose effect does not depend
 * on the value before, leaves the most freedom).  NEWSTATE is the value
 * afterwards.  The first frame pushed is a choice when FORCED is 0, the
 * others are forced.  Returns 1 when placed (a new configuration), 0 when the
 * configuration was seen before or there is nothing to place (nothing
 * changed), -1 when out of memory. */
static int
lc_place(lc_check_t *c, uint32_t first, uint32_t state, uint32_t newstate,
         int forced)
{
    size_t n = 0, i;
    uint32_t node;
    int rv;

    if (first)
        c->absorb[n++] = first;
    if (first
        && c->sops[c->evs[first - 1].sop].kind != LINCHECK_WRITE)
        node = c->tail;                 /* a cas: no absorbing */
    else
        node = c->next[0];
    for (; node != c->tail && !c->evs[node - 1].is_ret;
         node = c->next[node]) {
        const lc_sop_t *s = &c->sops[c->evs[node - 1].sop];

        if (node != first && s->kind == LINCHECK_WRITE && s->in == LC_DEAD)
            c->absorb[n++] = node;
    }
    if (!n)
        return 0;
    for (i = 0; i < n; i++) {
        uint32_t k = c->evs[c->absorb[i] - 1].sop;

        c->bits[k / 64] ^= (uint64_t)1 << (k % 64);
        c->hash ^= c->sops[k].zob;
        lc_count(c, &c->sops[k], -1);
    }
    /* leaving a value some read still needs, for good, cannot work */
    rv = newstate != state && lc_needed(c, state) ? 0
         : lc_cache_put(c, c->hash ^ lc_mix(newstate), newstate, c->bits,
                        c->words);
    if (rv <= 0) {
        for (i = 0; i < n; i++) {
            uint32_t k = c->evs[c->absorb[i] - 1].sop;

            c->bits[k / 64] ^= (uint64_t)1 << (k % 64);
            c->hash ^= c->sops[k].zob;
            lc_count(c, &c->sops[k], 1);
        }
        return rv;
    }
    for (i = 0; i < n; i++) {
        node = c->absorb[i];
        c->stack[c->sp].node = node;
        c->stack[c->sp].state = state;
        c->stack[c->sp].forced = (uint8_t)(i ? 1 : forced);
        c->sp++;
        lc_unlink(c, node);
        lc_unlink(c, c->match[node]);
        c->placed += c->sops[c->evs[node - 1].sop].certain;
    }
    return 1;
}

/* Verdict of the search over the M operations in c->sops, NCERTAIN of
 * which must be placed, starting from register value INIT.  The counts
 * to_write and to_see are set (lc_search). */
static int
lc_search_run(lc_check_t *c, size_t m, size_t ncertain, uint32_t init)
{
    const lincheck_history_t *h = c->h;
    size_t nodes = 2 * m + 2, i, best = 0;
    uint32_t node, state = init, best_block = 0, best_state = init;
    int best_needed = 0;
    size_t best_writer = LINCHECK_NO_OP;
    uint64_t limit = 0;
    int rv;
    char d[256], v1[64], w[96];

    c->words = (m + 63) / 64;
    if (lc_grow((void **)&c->evs, &c->cap_evs, 2 * m, sizeof(*c->evs))
        || lc_grow((void **)&c->next, &c->cap_next, nodes, 4)
        || lc_grow((void **)&c->prev, &c->cap_prev, nodes, 4)
        || lc_grow((void **)&c->match, &c->cap_match, nodes, 4)
        || lc_grow((void **)&c->absorb, &c->cap_absorb, m + 1, 4)
        || lc_grow((void **)&c->stack, &c->cap_stack, m + 1,
                   sizeof(*c->stack))
        || lc_grow((void **)&c->bits, &c->cap_bits, c->words + 1,
                   sizeof(*c->bits))) {
        snprintf(c->message, sizeof(c->message), "out of memory");
        return LINCHECK_TIMEOUT;
    }
    for (i = 0; i < m; i++) {
        c->evs[2 * i].t = c->sops[i].t_call;
        c->evs[2 * i].sop = (uint32_t)i;
        c->evs[2 * i].is_ret = 0;
        c->evs[2 * i + 1].t = c->sops[i].t_ret;
        c->evs[2 * i + 1].sop = (uint32_t)i;
        c->evs[2 * i + 1].is_ret = 1;
        c->sops[i].zob = lc_mix(i * 0x2545f4914f6cdd1dULL + 77);
    }
    qsort(c->evs, 2 * m, sizeof(*c->evs), lc_event_cmp);
    /* node k (1..2m) is c->evs[k - 1]; 0 the head, 2m+1 the tail.  Each
     * op's return node (kept in prev[] for the moment), then each call
     * node's matching return node. */
    c->tail = (uint32_t)(2 * m + 1);
    for (i = 0; i < 2 * m; i++)
        if (c->evs[i].is_ret)
            c->prev[c->evs[i].sop] = (uint32_t)(i + 1);
    for (i = 0; i < 2 * m; i++)
        if (!c->evs[i].is_ret)
            c->match[i + 1] = c->prev[c->evs[i].sop];
    for (i = 0; i < nodes; i++) {
        c->next[i] = (uint32_t)(i + 1 < nodes ? i + 1 : 0);
        c->prev[i] = (uint32_t)(i ? i - 1 : 0);
    }
    memset(c->bits, 0, c->words * sizeof(*c->bits));
    c->hash = 0;
    c->sp = 0;
    c->placed = 0;
    c->cache_len = 0;
    c->nentries = 0;
    if (c->slots)
        memset(c->slots, 0, c->nslots * sizeof(*c->slots));
    if (lc_cache_put(c, lc_mix(state), state, c->bits, c->words) < 0)
        goto out_of_memory;
    if (c->late)
        limit = LC_LATE_STEPS;

#define LC_SOP(n) (&c->sops[c->evs[(n) - 1].sop])
#define LC_IS_RET(n) ((n) == c->tail || c->evs[(n) - 1].is_ret)

    for (;;) {
        /* A new configuration: place every read that sees the value. */
        if (c->placed == ncertain)
            return LINCHECK_OK;
        for (node = c->next[0]; !LC_IS_RET(node); node = c->next[node]) {
            lc_sop_t *s = LC_SOP(node);
            uint32_t k = c->evs[node - 1].sop;

            if (s->kind != LINCHECK_READ || s->out != state)
                continue;
            if (lc_tick(c, limit))
                goto timeout;
            c->bits[k / 64] |= (uint64_t)1 << (k % 64);
            c->hash ^= s->zob;
            rv = lc_cache_put(c, c->hash ^ lc_mix(state), state, c->bits,
                              c->words);
            if (rv <= 0) {
                c->bits[k / 64] &= ~((uint64_t)1 << (k % 64));
                c->hash ^= s->zob;
                if (rv < 0)
                    goto out_of_memory;
                goto backtrack;
            }
            c->stack[c->sp].node = node;
            c->stack[c->sp].state = state;
            c->stack[c->sp].forced = 1;
            c->sp++;
            lc_unlink(c, node);
            lc_unlink(c, c->match[node]);
            lc_count(c, s, -1);
            if (++c->placed == ncertain)
                return LINCHECK_OK;
            node = c->prev[node];       /* live: go on from there */
        }
        node = c->next[0];
    scan:
        /* Try each write or cas that may come next, in call order. */
        for (; !LC_IS_RET(node); node = c->next[node]) {
            lc_sop_t *s = LC_SOP(node);

            if (s->kind == LINCHECK_READ
                || (s->kind == LINCHECK_WRITE && s->in == LC_DEAD)
                || (s->kind == LINCHECK_CAS && s->expect != state))
                continue;
            if (lc_tick(c, limit))
                goto timeout;
            rv = lc_place(c, node, state, s->in, 0);
            if (rv < 0)
                goto out_of_memory;
            if (rv > 0) {
                state = s->in;
                break;
            }
        }
        if (!LC_IS_RET(node))
            continue;
        /* Last choice: only write off the dead writes (the register then
         * holds a value nobody reads, until the next write). */
        if (lc_tick(c, limit))
            goto timeout;
        rv = lc_place(c, 0, state, LC_DEAD, 1);
        if (rv < 0)
            goto out_of_memory;
        if (rv > 0) {
            state = LC_DEAD;
            continue;
        }
        /* Stuck: an operation's return came before it could be placed. */
        if ((c->placed > best || !best_block) && node != c->tail) {
            best = c->placed;
            best_block = node;
            best_state = state;
            best_needed = lc_needed(c, state);
            best_writer = LINCHECK_NO_OP;
            for (i = c->sp; i-- > 0;) {
                const lc_sop_t *s = LC_SOP(c->stack[i].node);

                if (s->kind != LINCHECK_READ && s->in == state) {
                    best_writer = s->op;
                    break;
                }
            }
        }
    backtrack:
        for (;;) {
            lc_frame_t *f;
            lc_sop_t *s;
            uint32_t k;

            if (!c->sp)
                goto violation;
            f = &c->stack[--c->sp];
            k = c->evs[f->node - 1].sop;
            s = &c->sops[k];
            lc_relink(c, c->match[f->node]);
            lc_relink(c, f->node);
            c->bits[k / 64] &= ~((uint64_t)1 << (k % 64));
            c->hash ^= s->zob;
            state = f->state;
            c->placed -= s->certain;
            lc_count(c, s, 1);
            if (!f->forced) {
                node = c->next[f->node];
                goto scan;
            }
        }
    }

violation:
    if (!best_block) {
        snprintf(c->message, sizeof(c->message),
                 "no order of the operations fits");
        return LINCHECK_VIOLATION;
    }
    lc_describe(d, sizeof(d), h, LC_SOP(best_block)->op);
    if (best_writer == LINCHECK_NO_OP)
        snprintf(w, sizeof(w), "%s (the initial value)",
                 lc_fmt(v1, sizeof(v1), h, init));
    else
        snprintf(w, sizeof(w), "%s (written by #%lu)",
                 lc_fmt(v1, sizeof(v1), h, h->ops[best_writer].in),
                 (unsigned long)best_writer);
    if (best_needed) {
        /* the last invoked read of that value: the likely stale one */
        size_t r = m;
        char d2[256];

        for (i = 0; i < m; i++)
            if (c->sops[i].kind == LINCHECK_READ
                && c->sops[i].out == best_state
                && (r == m || c->sops[i].t_call > c->sops[r].t_call))
                r = i;
        if (r < m) {
            snprintf(c->message, sizeof(c->message),
                     "not linearizable: the register holds %s, which "
                     "nothing can write again, and this read still needs "
                     "it: %s; but this operation must take effect before "
                     "then: %s (%lu of %lu operations ordered)", w,
                     lc_describe(d2, sizeof(d2), h, c->sops[r].op), d,
                     (unsigned long)best, (unsigned long)ncertain);
            return LINCHECK_VIOLATION;
        }
    }
    snprintf(c->message, sizeof(c->message),
             "not linearizable: at best %lu of the %lu operations that "
             "must take effect can be ordered; then the register holds %s "
             "and this operation cannot be placed before it returned: %s",
             (unsigned long)best, (unsigned long)ncertain, w, d);
    return LINCHECK_VIOLATION;

timeout:
    snprintf(c->message, sizeof(c->message),
             "undecided: the search ran out of time after %llu steps "
             "(%lu configurations, %lu of %lu operations placed at best)",
             (unsigned long long)c->steps, (unsigned long)c->nentries,
             (unsigned long)best, (unsigned long)ncertain);
    return LINCHECK_TIMEOUT;

out_of_memory:
    snprintf(c->message, sizeof(c->message),
             "undecided: the search ran out of memory after %llu steps "
             "(%lu configurations)", (unsigned long long)c->steps,
             (unsigned long)c->nentries);
    return LINCHECK_TIMEOUT;

#undef LC_SOP
#undef LC_IS_RET
}

/* lc_search_run() with the search counts of the values set, and cleared
 * again afterwards. */
static int
lc_search(lc_check_t *c, size_t m, size_t ncertain, uint32_t init)
{
    size_t i;
    int v;

    for (i = 0; i < m; i++)
        lc_count(c, &c->sops[i], 1);
    v = lc_search_run(c, m, ncertain, init);
    for (i = 0; i < m; i++) {
        const lc_sop_t *s = &c->sops[i];

        c->vs[s->out].to_see = 0;
        c->vs[s->expect].to_see = 0;
        if (s->in != LC_DEAD)
            c->vs[s->in].to_write = 0;
    }
    return v;
}

/* Checks the N operations IDX[] of one key (in recording order).
 * Returns the verdict, c->message saying why, c->steps the work done;
 * *CHECKED gets the number of operations given to the search. */
static int
lc_check_key(lc_check_t *c, const size_t *idx, size_t n, size_t *checked)
{
    lincheck_history_t *h = c->h;
    size_t i, m = 0, ncertain = 0;
    uint32_t init = 0;
    int verdict = LINCHECK_OK;
    char d[256];

    c->message[0] = '\0';
    c->steps = 0;
    *checked = 0;
    for (i = 0; i < n; i++)
        if (h->ops[idx[i]].kind == LC_INIT)
            init = h->ops[idx[i]].in;
    /* count writers and observers of each value */
    c->vs[init].writers++;
    for (i = 0; i < n; i++) {
        const lc_op_t *o = &h->ops[idx[i]];
        lc_vstat_t *v;

        if (o->kind == LINCHECK_WRITE || o->kind == LINCHECK_CAS) {
            if (o->outcome != LINCHECK_FAIL)
                c->vs[o->in].writers++;
        }
        if ((o->kind == LINCHECK_READ && o->outcome == LINCHECK_OK)
            || (o->kind == LINCHECK_CAS && o->outcome == LINCHECK_OK)) {
            v = &c->vs[o->kind == LINCHECK_READ ? o->out : o->expect];
            if (!v->seen || o->t_ret < v->first_seen)
                v->first_seen = o->t_ret;
            v->seen++;
        } else if (o->kind == LINCHECK_CAS && o->outcome != LINCHECK_FAIL) {
            c->vs[o->expect].maybe_seen++;
        }
    }
    /* a value seen that nothing wrote */
    for (i = 0; i < n && verdict == LINCHECK_OK; i++) {
        const lc_op_t *o = &h->ops[idx[i]];

        if (o->outcome != LINCHECK_OK)
            continue;
        if ((o->kind == LINCHECK_READ && !c->vs[o->out].writers)
            || (o->kind == LINCHECK_CAS && !c->vs[o->expect].writers)) {
            snprintf(c->message, sizeof(c->message),
                     "not linearizable: this operation saw a value that "
                     "no write (and not the initial value) could have "
                     "produced: %s",
                     lc_describe(d, sizeof(d), h, idx[i]));
            verdict = LINCHECK_VIOLATION;
        }
    }
    /* the operations the search must (or may) place */
    if (verdict == LINCHECK_OK
        && lc_grow((void **)&c->sops, &c->cap_sops, n + 1,
                   sizeof(*c->sops)) != 0) {
        snprintf(c->message, sizeof(c->message), "out of memory");
        verdict = LINCHECK_TIMEOUT;
    }
    for (i = 0; i < n && verdict == LINCHECK_OK; i++) {
        const lc_op_t *o = &h->ops[idx[i]];
        const lc_vstat_t *v = &c->vs[o->in];
        lc_sop_t *s = &c->sops[m];

        if (o->kind == LC_INIT || o->outcome == LINCHECK_FAIL
            || (o->kind == LINCHECK_READ && o->outcome != LINCHECK_OK))
            continue;
        memset(s, 0, sizeof(*s));
        s->op = idx[i];
        s->kind = o->kind;
        s->in = o->in;
        s->expect = o->expect;
        s->out = o->out;
        s->t_call = o->t_call;
        s->t_ret = o->t_ret < o->t_call ? o->t_call : o->t_ret;
        s->certain = 1;
        if (o->kind != LINCHECK_READ && !v->seen && !v->maybe_seen)
            s->in = LC_DEAD;
        if (o->kind != LINCHECK_READ && o->outcome != LINCHECK_OK) {
            if (!v->seen && !v->maybe_seen)
                continue;               /* nobody saw it: drop */
            if (v->seen && v->writers == 1) {
                s->t_ret = v->first_seen < s->t_call ? s->t_call
                           : v->first_seen;
            } else {
                s->t_ret = LC_INF;
                s->certain = 0;
            }
        }
        ncertain += s->certain;
        m++;
    }
    /* clear the value counts for the next key */
    c->vs[init].writers = 0;
    for (i = 0; i < n; i++) {
        const lc_op_t *o = &h->ops[idx[i]];

        memset(&c->vs[o->in], 0, sizeof(*c->vs));
        memset(&c->vs[o->out], 0, sizeof(*c->vs));
        memset(&c->vs[o->expect], 0, sizeof(*c->vs));
    }
    *checked = m;
    if (verdict != LINCHECK_OK || !ncertain)
        return verdict;
    if (m >= UINT32_MAX / 2 - 2) {
        snprintf(c->message, sizeof(c->message), "too many operations");
        return LINCHECK_TIMEOUT;
    }
    return lc_search(c, m, ncertain, init);
}

/* An operation's place in the check order: by key (in order of first
 * appearance), then by index. */
typedef struct lc_order {
    uint32_t rank;
    size_t op;
} lc_order_t;

static int
lc_order_cmp(const void *a, const void *b)
{
    const lc_order_t *x = a, *y = b;

    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

static void
lc_check_free(lc_check_t *c)
{
    dkv_free(c->vs);
    dkv_free(c->sops);
    dkv_free(c->evs);
    dkv_free(c->next);
    dkv_free(c->prev);
    dkv_free(c->match);
    dkv_free(c->stack);
    dkv_free(c->bits);
    dkv_free(c->cache);
    dkv_free(c->slots);
    dkv_free(c->absorb);
}

int
lincheck_check_keys(lincheck_history_t *h, lincheck_report_t *report,
                    unsigned timeout_ms, lincheck_key_fn *fn, void *baton)
{
    lincheck_report_t dummy;
    lc_check_t c;
    size_t *idx = NULL, i, j, start;
    uint32_t *rank = NULL, nkeys = 0;
    int verdict = LINCHECK_OK;
    lc_order_t *order = NULL;
    char ktext[sizeof(report->key)];

    if (!report)
        report = &dummy;
    memset(report, 0, sizeof(*report));
    memset(&c, 0, sizeof(c));
    if (!h) {
        snprintf(report->message, sizeof(report->message), "no history");
        return report->verdict = LINCHECK_ERROR;
    }
    apr_thread_mutex_lock(h->lock);
    report->ops = h->nops - h->ninit;
    if (h->broken) {
        snprintf(report->message, sizeof(report->message),
                 "the history is unusable: a recording failed (out of "
                 "memory, a bad kind or outcome, or an unknown op id)");
        verdict = LINCHECK_ERROR;
        goto done;
    }
    c.h = h;
    c.deadline = timeout_ms ? apr_time_now()
                 + (apr_time_t)timeout_ms * 1000 : 0;
    c.vs = dkv_calloc(h->nstrs, sizeof(*c.vs));
    rank = dkv_calloc(h->nstrs, sizeof(*rank));
    idx = dkv_malloc((h->nops + 1) * sizeof(*idx));
    order = dkv_malloc((h->nops + 1) * sizeof(*order));
    if (!c.vs || !rank || !idx || !order) {
        snprintf(report->message, sizeof(report->message), "out of memory");
        verdict = LINCHECK_ERROR;
        goto done;
    }
    for (i = 0; i < h->nops; i++) {
        if (!rank[h->ops[i].key])
            rank[h->ops[i].key] = ++nkeys;
        order[i].rank = rank[h->ops[i].key];
        order[i].op = i;
    }
    qsort(order, h->nops, sizeof(*order), lc_order_cmp);
    for (i = 0; i < h->nops; i++)
        idx[i] = order[i].op;
    report->keys = nkeys;
    for (start = 0; start < h->nops; start = i) {
        lincheck_key_result_t r;
        const lc_str_t *k = &h->strs[h->ops[idx[start]].key];
        size_t checked;
        int v;

        for (i = start; i < h->nops
             && h->ops[idx[i]].key == h->ops[idx[start]].key; i++)
            ;
        v = lc_check_key(&c, idx + start, i - start, &checked);
        report->ops_checked += checked;
        report->steps += c.steps;
        lincheck_format_value(ktext, sizeof(ktext), h->bytes + k->off,
                              k->len);
        if (v == LINCHECK_VIOLATION) {
            report->keys_violated++;
            if (verdict != LINCHECK_VIOLATION) {
                snprintf(report->key, sizeof(report->key), "%s", ktext);
                snprintf(report->message, sizeof(report->message),
                         "key %s: %s", ktext, c.message);
            }
            verdict = LINCHECK_VIOLATION;
        } else if (v == LINCHECK_TIMEOUT) {
            report->keys_timeout++;
            if (verdict == LINCHECK_OK) {
                snprintf(report->key, sizeof(report->key), "%s", ktext);
                snprintf(report->message, sizeof(report->message),
                         "key %s: %s", ktext, c.message);
                verdict = LINCHECK_TIMEOUT;
            }
        }
        if (fn) {
            r.key = h->bytes + k->off;
            r.key_len = k->len;
            r.key_text = ktext;
            r.verdict = v;
            r.ops = i - start;
            for (j = start; j < i; j++)
                r.ops -= h->ops[idx[j]].kind == LC_INIT;
            r.ops_checked = checked;
            r.steps = c.steps;
            r.message = c.message;
            fn(baton, &r);
        }
    }
    if (verdict == LINCHECK_OK)
        snprintf(report->message, sizeof(report->message),
                 "linearizable: %lu operations on %lu keys",
                 (unsigned long)report->ops, (unsigned long)report->keys);
done:
    apr_thread_mutex_unlock(h->lock);
    lc_check_free(&c);
    dkv_free(rank);
    dkv_free(idx);
    dkv_free(order);
    return report->verdict = verdict;
}

int
lincheck_check(lincheck_history_t *h, lincheck_report_t *report,
               unsigned timeout_ms)
{
    return lincheck_check_keys(h, report, timeout_ms, NULL, NULL);
}

/* -------------------------------------------------------------- output */

/* Writes ,"NAME":string (or ,"NAME_hex":"..." for bytes that are not
 * printable ASCII, or ,"NAME":null for absent). */
static void
lc_json_str(FILE *f, const lincheck_history_t *h, const char *name,
            uint32_t id)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *b;
    size_t len, i;
    int plain = 1;

    if (!id) {
        fprintf(f, ",\"%s\":null", name);
        return;
    }
    b = (const unsigned char *)h->bytes + h->strs[id].off;
    len = h->strs[id].len;
    for (i = 0; i < len; i++)
        if (b[i] < 0x20 || b[i] >= 0x7f)
            plain = 0;
    fprintf(f, plain ? ",\"%s\":\"" : ",\"%s_hex\":\"", name);
    for (i = 0; i < len; i++) {
        if (!plain) {
            fputc(hex[b[i] >> 4], f);
            fputc(hex[b[i] & 15], f);
        } else {
            if (b[i] == '"' || b[i] == '\\')
                fputc('\\', f);
            fputc(b[i], f);
        }
    }
    fputc('"', f);
}

int
lincheck_write_jsonl(lincheck_history_t *h, FILE *f)
{
    static const char *const kinds[] = { "?", "write", "read", "cas",
                                         "init" };
    static const char *const outcomes[] = { "ok", "fail", "unknown",
                                            "unknown" };
    size_t i, pass;

    if (!h || !f)
        return -1;
    apr_thread_mutex_lock(h->lock);
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < h->nops; i++) {
            const lc_op_t *o = &h->ops[i];

            if ((o->kind == LC_INIT) != (pass == 0))
                continue;
            if (o->kind == LC_INIT) {
                fputs("{\"op\":\"init\"", f);
                lc_json_str(f, h, "key", o->key);
                lc_json_str(f, h, "value", o->in);
                fputs("}\n", f);
                continue;
            }
            fprintf(f, "{\"client\":%u,\"op\":\"%s\"", o->client,
                    kinds[o->kind]);
            lc_json_str(f, h, "key", o->key);
            if (o->kind == LINCHECK_CAS)
                lc_json_str(f, h, "expect", o->expect);
            lc_json_str(f, h, "value",
                        o->kind == LINCHECK_READ ? o->out : o->in);
            fprintf(f, ",\"invoke\":%lld", (long long)o->t_call);
            if (o->outcome == LC_PENDING)
                fputs(",\"complete\":null", f);
            else
                fprintf(f, ",\"complete\":%lld", (long long)o->t_ret);
            fprintf(f, ",\"outcome\":\"%s\"}\n", outcomes[o->outcome]);
        }
    }
    apr_thread_mutex_unlock(h->lock);
    return ferror(f) ? -1 : 0;
}
