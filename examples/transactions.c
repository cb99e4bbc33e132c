/*
 * transactions.c -- all or nothing: optimistic transactions.
 *
 * A transaction reads through to the store and stages its writes; commit
 * applies them all at once, or none of them with DKV_ECONFLICT when a key
 * it read changed in the meantime.  So the pattern is a loop: begin, read,
 * decide, write, commit; on a conflict, start over with fresh reads.
 *
 * Usage: transactions [ADDRESS]
 *   ADDRESS is a store address ("inproc:" for a fresh temporary store, the
 *   default, or "inproc:PATH"), or a directory, read as "inproc:DIR".
 *   The store is cleared first: give it a scratch store.
 *
 * The program checks every answer and exits 1 at the first surprise, so
 * it doubles as a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include <dkv.h>

#include "example.h"

/* ------------------------------------------------------------- helpers */

/* Writes the number N at KEY, outside any transaction. */
static void
put_number(dkv_client_t *client, const char *key, long n)
{
    char value[32];

    snprintf(value, sizeof value, "%ld", n);
    check(dkv_put(NULL, client, key, strlen(key), value, strlen(value),
                  NULL), key);
}

/* Reads the number at KEY, outside any transaction. */
static long
get_number(dkv_client_t *client, const char *key, apr_pool_t *pool)
{
    dkv_item_t *item;

    check(dkv_get(&item, client, key, strlen(key), NULL, pool), key);
    return strtol((const char *)item->value, NULL, 10);
}

/* ---------------------------------------------------- the transfer */

/* Called, when set, between the transaction's reads and its commit: it
 * plays a concurrent writer. */
typedef void (meddler_t)(dkv_client_t *client, int attempt);

/*
 * Moves AMOUNT from account FROM to account TO, atomically, with
 * optimistic retries.  Returns the number of attempts it took, or 0 when
 * FROM has too little money (nothing is written then).
 */
static int
transfer(dkv_client_t *client, const char *from, const char *to,
         long amount, meddler_t *meddle, apr_pool_t *pool)
{
    int attempt;

    for (attempt = 1; attempt <= 5; attempt++) {
        dkv_txn_t *txn;
        dkv_item_t *a, *b;
        dkv_status_t status;
        char value[32];
        long balance_from, balance_to;
        uint64_t revision;

        check(dkv_txn_begin(&txn, client, pool), "txn begin");

        /* Reads are remembered: if these keys change before the commit,
         * the commit fails. */
        check(dkv_txn_get(&a, txn, from, strlen(from), pool), "txn get from");
        check(dkv_txn_get(&b, txn, to, strlen(to), pool), "txn get to");
        balance_from = strtol((const char *)a->value, NULL, 10);
        balance_to = strtol((const char *)b->value, NULL, 10);

        if (balance_from < amount) {
            /* Nothing to do: discard the transaction. */
            dkv_txn_rollback(txn);
            printf("transfer %ld %s -> %s: insufficient funds (%ld)\n",
                   amount, from, to, balance_from);
            return 0;
        }

        /* Staged writes: invisible to others until the commit. */
        snprintf(value, sizeof value, "%ld", balance_from - amount);
        check(dkv_txn_put(txn, from, strlen(from), value, strlen(value),
                          NULL), "txn put from");
        snprintf(value, sizeof value, "%ld", balance_to + amount);
        check(dkv_txn_put(txn, to, strlen(to), value, strlen(value), NULL),
              "txn put to");

        if (meddle) {
            meddle(client, attempt);
        }

        /* Commit frees the transaction whatever the outcome. */
        status = dkv_txn_commit(&revision, txn);
        if (status == DKV_OK) {
            printf("transfer %ld %s -> %s: committed at revision %llu "
                   "(attempt %d)\n", amount, from, to,
                   (unsigned long long)revision, attempt);
            return attempt;
        }
        expect(status, DKV_ECONFLICT, "txn commit");
        printf("transfer %ld %s -> %s: %s on attempt %d, retrying\n",
               amount, from, to, dkv_strerror(status), attempt);
    }
    require(0, "transfer: gave up after 5 attempts");
    return 0;
}

/* The concurrent writer: on the first attempt only, pays 10 into alice's
 * account between the transaction's reads and its commit. */
static void
salary(dkv_client_t *client, int attempt)
{
    dkv_item_t *item;
    apr_pool_t *pool;

    if (attempt != 1) {
        return;
    }
    apr_pool_create(&pool, NULL);
    check(dkv_get(&item, client, "account:alice", 13, NULL, pool),
          "salary: read");
    put_number(client, "account:alice",
               strtol((const char *)item->value, NULL, 10) + 10);
    printf("  (meanwhile, outside the transaction: alice += 10)\n");
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------------ sections */

static void
commit(dkv_client_t *client, apr_pool_t *pool)
{
    printf("== commit\n");
    put_number(client, "account:alice", 100);
    put_number(client, "account:bob", 50);

    require(transfer(client, "account:alice", "account:bob", 30, NULL,
                     pool) == 1, "a quiet transfer commits at once");
    require(get_number(client, "account:alice", pool) == 70
            && get_number(client, "account:bob", pool) == 80,
            "alice 70, bob 80 after the transfer");
    printf("alice = 70, bob = 80\n");

    /* A refused transfer writes nothing. */
    require(transfer(client, "account:bob", "account:alice", 500, NULL,
                     pool) == 0, "bob cannot send 500");
}

static void
rollback(dkv_client_t *client, apr_pool_t *pool)
{
    dkv_txn_t *txn;
    dkv_item_t *item;

    printf("\n== rollback, and reading one's own writes\n");
    check(dkv_txn_begin(&txn, client, pool), "txn begin");
    check(dkv_txn_put(txn, "account:bob", 11, "1000000", 7, NULL),
          "txn put");
    check(dkv_txn_delete(txn, "account:alice", 13), "txn delete");

    /* Inside, the transaction sees its own staged writes... */
    check(dkv_txn_get(&item, txn, "account:bob", 11, pool), "txn get bob");
    require(strcmp((const char *)item->value, "1000000") == 0,
            "the transaction reads its own put");
    expect(dkv_txn_get(&item, txn, "account:alice", 13, pool),
           DKV_ENOTFOUND, "the transaction reads its own delete");

    /* ...outside, nobody does. */
    require(get_number(client, "account:bob", pool) == 80,
            "staged writes are invisible outside");
    printf("inside: bob = 1000000 and alice deleted; outside: bob = 80\n");

    dkv_txn_rollback(txn);
    require(get_number(client, "account:bob", pool) == 80
            && get_number(client, "account:alice", pool) == 70,
            "a rollback applies nothing");
    printf("rolled back: alice = 70, bob = 80\n");
}

static void
conflict(dkv_client_t *client, apr_pool_t *pool)
{
    printf("\n== conflict: an outside write between read and commit\n");

    /* The first attempt reads alice = 70, then someone pays her salary:
     * committing 70 - 20 = 50 would lose those 10.  The commit is
     * refused; the second attempt reads 80 and commits 60. */
    require(transfer(client, "account:alice", "account:bob", 20, salary,
                     pool) == 2, "the transfer retries once");
    require(get_number(client, "account:alice", pool) == 60
            && get_number(client, "account:bob", pool) == 100,
            "alice 70 + 10 - 20 = 60, bob 80 + 20 = 100");
    printf("alice = 60, bob = 100: nothing lost\n");
}

/* ---------------------------------------------------------------- main */

int
main(int argc, char **argv)
{
    apr_pool_t *pool;
    dkv_client_t *client;
    const char *address;

    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);
    address = store_address(argc, argv, pool);

    check(dkv_open(&client, address, NULL, pool), "open");
    printf("opened %s\n\n", address);

    /* Start from an empty store (a given store is reused, so clear it). */
    check(dkv_clear(NULL, client, NULL), "clear the store");

    commit(client, pool);
    rollback(client, pool);
    conflict(client, pool);

    dkv_close(client);
    apr_pool_destroy(pool);
    printf("\ntransactions: all checks passed\n");
    return 0;
}
