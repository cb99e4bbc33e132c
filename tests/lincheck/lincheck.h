/*
 * lincheck.h -- a linearizability checker for histories of per-key
 * registers, used by the fault tests of replicated stores
 * (tests/fault/fault.c), by the unit suite `lincheck` and by the program
 * tests/lincheck/lincheck (docs/internals/histories.md).
 *
 * A history is the list of operations clients ran against a store, each
 * with the time it was invoked and the time its answer came back (both in
 * microseconds on one clock).  Every key is an independent register:
 *
 *   write(v)          sets the register to v (v may be "absent": a delete)
 *   read() -> v       returns the register's value (or absent)
 *   cas(e, v)         if the register holds e, sets it to v
 *
 * Each operation ends with an outcome:
 *
 *   LINCHECK_OK       it took effect (a cas: the compare held and it
 *                     swapped), once, somewhere between invoke and complete;
 *                     a read returned the value given at completion
 *   LINCHECK_FAIL     it certainly did not take effect (a read: ignored;
 *                     a cas whose compare failed is reported as FAIL too)
 *   LINCHECK_UNKNOWN  a write or cas that may or may not have taken effect,
 *                     at any time after its invoke (a timeout, a lost
 *                     connection); an unknown read is ignored
 *
 * An operation never completed counts as UNKNOWN (pending).  Each
 * register starts absent unless lincheck_history_init() says otherwise.
 *
 * The history is linearizable when there is one order of all the
 * operations that took effect which respects real time (an operation that
 * completed before another was invoked comes first) and in which every
 * read returns the latest value written.  lincheck_check() decides this
 * key by key (a history is linearizable iff each key's is) with a
 * Wing-Gong style search; see lincheck.c for how it stays fast.
 *
 * Recording is thread-safe: any number of client threads may call
 * lincheck_invoke() and lincheck_complete() on one history at once.  The
 * history uses an APR mutex: apr_initialize() must have been called
 * before lincheck_history_create().
 *
 * Typical use (error handling shortened):
 *
 *     lincheck_history_t *h = lincheck_history_create();
 *     ...in each client thread:
 *     size_t op = lincheck_invoke(h, client, LINCHECK_WRITE, key, klen,
 *                                 val, vlen, now_us());
 *     status = put(key, val);
 *     lincheck_complete(h, op, status == OK ? LINCHECK_OK
 *                              : maybe_applied ? LINCHECK_UNKNOWN
 *                              : LINCHECK_FAIL, NULL, 0, now_us());
 *     ...after all threads ended:
 *     lincheck_report_t rep;
 *     if (lincheck_check(h, &rep, 60000) != LINCHECK_OK)
 *         fprintf(stderr, "%s\n", rep.message);
 *     lincheck_write_jsonl(h, file);
 *     lincheck_history_destroy(h);
 *
 * Values should be unique per write (say "client-seq"): the checker is
 * exact either way, but unique values let it settle unknown writes
 * quickly (lincheck.c).
 */
#ifndef DKV_LINCHECK_H
#define DKV_LINCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- types */

typedef struct lincheck_history lincheck_history_t;

/* What an operation does. */
typedef enum lincheck_kind {
    LINCHECK_WRITE = 1,         /* write(value); value NULL: delete */
    LINCHECK_READ = 2,          /* read() -> out_value */
    LINCHECK_CAS = 3            /* cas(expect, value) */
} lincheck_kind_t;

/* How an operation ended (see the top of this file).  LINCHECK_OK is 0
 * and is also the verdict "linearizable" of lincheck_check(), so both
 * read naturally. */
typedef enum lincheck_outcome {
    LINCHECK_OK = 0,
    LINCHECK_FAIL = 1,
    LINCHECK_UNKNOWN = 2
} lincheck_outcome_t;

/* Verdicts of lincheck_check() (its return value and report->verdict):
 * LINCHECK_OK (0): every key is linearizable, so `if (lincheck_check())`
 * means "something is wrong or undecided"; or one of these. */
#define LINCHECK_LINEARIZABLE LINCHECK_OK
#define LINCHECK_VIOLATION 1     /* some key is not linearizable */
#define LINCHECK_TIMEOUT 2       /* no violation found, but some key's
                                  * search ran out of time or memory */
#define LINCHECK_ERROR 3         /* recording failed (out of memory) or
                                  * bad arguments: the history is unusable */

/* The op id lincheck_invoke() returns when it could not record; passing
 * it to lincheck_complete() does nothing. */
#define LINCHECK_NO_OP ((size_t)-1)

/* What lincheck_check() found, over all keys. */
typedef struct lincheck_report {
    int verdict;                /* as returned */
    size_t keys;                /* keys in the history */
    size_t keys_violated;       /* keys found not linearizable */
    size_t keys_timeout;        /* keys whose search gave up */
    size_t ops;                 /* operations recorded (all keys) */
    size_t ops_checked;         /* operations the search had to place
                                 * (failed ops, ignored reads and unknown
                                 * writes nobody observed are left out) */
    uint64_t steps;             /* search steps taken, all keys */
    char key[128];              /* the first violated (else timed-out) key,
                                 * printable, "" when none */
    char message[1024];         /* one paragraph explaining the verdict */
} lincheck_report_t;

/* One key's verdict, given to the callback of lincheck_check_keys().
 * KEY and MESSAGE live until the callback returns. */
typedef struct lincheck_key_result {
    const void *key;            /* the key's bytes */
    size_t key_len;
    const char *key_text;       /* printable form of the key */
    int verdict;                /* LINCHECK_OK, _VIOLATION or _TIMEOUT */
    size_t ops;                 /* operations on this key */
    size_t ops_checked;         /* of which the search had to place */
    uint64_t steps;             /* search steps taken */
    const char *message;        /* "" when linearizable, else why */
} lincheck_key_result_t;

typedef void lincheck_key_fn(void *baton, const lincheck_key_result_t *r);

/* ------------------------------------------------------------ recording */

/* Makes an empty history (all memory on the heap).  Returns NULL when out
 * of memory.  APR must be initialized. */
lincheck_history_t *lincheck_history_create(void);

/* Frees H and everything recorded in it.  NULL does nothing.  No other
 * thread may be using H. */
void lincheck_history_destroy(lincheck_history_t *h);

/* Sets the value KEY holds before any operation (VALUE NULL: absent, the
 * default).  The last call for a key wins.  Thread-safe.  Returns 0, or
 * -1 when out of memory (then lincheck_check() reports LINCHECK_ERROR). */
int lincheck_history_init(lincheck_history_t *h, const void *key,
                          size_t key_len, const void *value,
                          size_t value_len);

/* Records that CLIENT invoked an operation of KIND on KEY at time T_US
 * (microseconds, any origin, the same clock for the whole history).
 * VALUE is what a write or cas writes (NULL: absent, i.e. a delete; a
 * zero-length non-NULL value is the empty string); ignored for a read.
 * For a cas use lincheck_invoke_cas().  The bytes are copied.
 * Thread-safe.  Returns the operation's id, for lincheck_complete(), or
 * LINCHECK_NO_OP when out of memory or KIND is bad (lincheck_check()
 * then reports LINCHECK_ERROR). */
size_t lincheck_invoke(lincheck_history_t *h, unsigned client,
                       lincheck_kind_t kind, const void *key,
                       size_t key_len, const void *value, size_t value_len,
                       int64_t t_us);

/* As lincheck_invoke() for cas(EXPECT, VALUE): EXPECT NULL expects the
 * key absent (create-if-absent), VALUE NULL deletes. */
size_t lincheck_invoke_cas(lincheck_history_t *h, unsigned client,
                           const void *key, size_t key_len,
                           const void *expect, size_t expect_len,
                           const void *value, size_t value_len,
                           int64_t t_us);

/* Records that operation OP ended with OUTCOME at time T_US.  For a read
 * with outcome LINCHECK_OK, OUT_VALUE is the value read (NULL: absent);
 * otherwise it is ignored.  A completion time before the invoke time is
 * taken as the invoke time.  Completing an op twice keeps the last call.
 * Thread-safe.  OP LINCHECK_NO_OP, or an id H never gave, does nothing
 * (the latter marks H broken: LINCHECK_ERROR). */
void lincheck_complete(lincheck_history_t *h, size_t op,
                       lincheck_outcome_t outcome, const void *out_value,
                       size_t out_len, int64_t t_us);

/* The number of operations recorded in H (init values not counted). */
size_t lincheck_history_count(lincheck_history_t *h);

/* ------------------------------------------------------------- checking */

/* Decides whether H is linearizable.  Fills REPORT (may be NULL) and
 * returns LINCHECK_OK (linearizable), LINCHECK_VIOLATION (REPORT names the
 * first bad key and explains: how far the search got, the register's
 * value there and the operation that could not be placed),
 * LINCHECK_TIMEOUT (the search, over all keys, took more than TIMEOUT_MS
 * milliseconds, 0 for no limit, or ran out of memory on some key and no
 * other key was violated) or LINCHECK_ERROR.  Every key is checked even
 * after a violation (time allowing).  H is not changed; recording must
 * have ended (the check takes H's lock for its whole run). */
int lincheck_check(lincheck_history_t *h, lincheck_report_t *report,
                   unsigned timeout_ms);

/* As lincheck_check(), and calls FN(BATON, result) once for each key
 * (in order of first appearance) as soon as that key is decided.  FN may
 * be NULL. */
int lincheck_check_keys(lincheck_history_t *h, lincheck_report_t *report,
                        unsigned timeout_ms, lincheck_key_fn *fn,
                        void *baton);

/* ---------------------------------------------------------------- output */

/* Writes H to F as JSON lines, one object per operation in the order they
 * were invoked (init values first), in the format of
 * docs/internals/histories.md.  Thread-safe.  Returns 0, or -1 on a write
 * error (see ferror(F)). */
int lincheck_write_jsonl(lincheck_history_t *h, FILE *f);

/* Writes a printable form of the bytes DATA (NULL: "absent") into BUF of
 * SIZE bytes (always NUL-terminated, cut with "..." when too long):
 * printable ASCII as is, other bytes as \xNN, quoted.  Returns BUF. */
const char *lincheck_format_value(char *buf, size_t size, const void *data,
                                  size_t len);

#endif /* DKV_LINCHECK_H */
