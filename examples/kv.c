/*
 * kv.c -- the key-value basics of dkv, one step at a time: put, get and
 * delete; the bulk calls; a batch of mixed operations; scanning a prefix
 * page by page; clearing; and the conditional writes (IfAbsent, IfMatch)
 * that make a compare-and-swap loop.
 *
 * Usage: kv [ADDRESS]
 *   ADDRESS is a store address ("inproc:" for a fresh temporary store, the
 *   default, or "inproc:PATH"), or a directory, read as "inproc:DIR".
 *   The store is cleared first: give it a scratch store.
 *
 * The program checks every answer it gets and exits 1 at the first
 * surprise, so it doubles as a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include <dkv.h>

#include "example.h"

/* ---------------------------------------------------- put, get, delete */

static void
basics(dkv_client_t *client, apr_pool_t *pool)
{
    const char *key = "greeting";
    const char *hello = "hello, dkv";
    const char *bye = "goodbye, dkv";
    dkv_result_t res;
    dkv_item_t *item;

    printf("== put, get, delete\n");

    /* A put creates the key at version 1... */
    check(dkv_put(&res, client, key, strlen(key), hello, strlen(hello),
                  NULL), "put greeting");
    require(res.mutated && !res.is_update && res.version == 1,
            "a new key is created at version 1");
    printf("put %s = \"%s\" (version %llu, revision %llu)\n", key, hello,
           (unsigned long long)res.version,
           (unsigned long long)res.revision);

    /* ...and reading it back gives the value and its metadata.  The value
     * lives in POOL; dkv adds a NUL after it, so text prints as is. */
    check(dkv_get(&item, client, key, strlen(key), NULL, pool),
          "get greeting");
    require(item->value_len == strlen(hello)
            && memcmp(item->value, hello, item->value_len) == 0,
            "get returns what put wrote");
    printf("get %s -> \"%s\" (version %llu)\n", key,
           (const char *)item->value, (unsigned long long)item->version);

    /* Writing again overwrites: the version counts the writes. */
    check(dkv_put(&res, client, key, strlen(key), bye, strlen(bye), NULL),
          "put greeting again");
    require(res.is_update && res.version == 2,
            "an overwrite is an update, at version 2");
    printf("put %s = \"%s\" (an update: version %llu)\n", key, bye,
           (unsigned long long)res.version);

    /* Delete it; reading it now answers DKV_ENOTFOUND, which is an
     * ordinary outcome, not a failure of the store. */
    check(dkv_delete(&res, client, key, strlen(key), NULL),
          "delete greeting");
    expect(dkv_get(&item, client, key, strlen(key), NULL, pool),
           DKV_ENOTFOUND, "get a deleted key");
    expect(dkv_delete(NULL, client, key, strlen(key), NULL),
           DKV_ENOTFOUND, "delete a missing key");
    printf("delete %s; get -> %s\n", key, dkv_strerror(DKV_ENOTFOUND));
}

/* ------------------------------------------------------------ bulk ops */

static void
bulk(dkv_client_t *client, apr_pool_t *pool)
{
    /* Three users in one request. */
    const dkv_kv_t users[] = {
        { "user:1", 6, "Ali", 3 },
        { "user:2", 6, "Sarah", 5 },
        { "user:3", 6, "Omar", 4 },
    };
    /* Read two of them and one that does not exist. */
    const dkv_key_t wanted[] = {
        { "user:1", 6 }, { "user:2", 6 }, { "user:9", 6 },
    };
    const dkv_key_t doomed[] = {
        { "user:1", 6 }, { "user:2", 6 }, { "user:3", 6 },
    };
    dkv_result_t results[3];
    dkv_item_t *items;
    size_t i;

    printf("\n== bulk: put_many, get_many, delete_many\n");

    /* The call returns DKV_OK when it ran; each key has its own status. */
    check(dkv_put_many(results, client, users, 3, NULL), "put_many");
    for (i = 0; i < 3; i++) {
        check(results[i].status, "put_many: one key");
    }
    printf("put_many: 3 users written\n");

    /* Results come in the order of the request. */
    check(dkv_get_many(&items, client, wanted, 3, NULL, pool), "get_many");
    for (i = 0; i < 3; i++) {
        if (items[i].status == DKV_OK) {
            printf("get_many: %.*s -> %s\n", (int)items[i].key_len,
                   (const char *)items[i].key,
                   (const char *)items[i].value);
        }
        else {
            printf("get_many: %.*s -> %s\n", (int)wanted[i].key_len,
                   (const char *)wanted[i].key,
                   dkv_strerror(items[i].status));
        }
    }
    require(items[0].status == DKV_OK
            && strcmp((const char *)items[0].value, "Ali") == 0,
            "get_many finds user:1");
    require(items[1].status == DKV_OK
            && strcmp((const char *)items[1].value, "Sarah") == 0,
            "get_many finds user:2");
    expect(items[2].status, DKV_ENOTFOUND, "get_many: user:9");

    check(dkv_delete_many(results, client, doomed, 3, NULL),
          "delete_many");
    for (i = 0; i < 3; i++) {
        check(results[i].status, "delete_many: one key");
    }
    printf("delete_many: 3 users deleted\n");
}

/* --------------------------------------------------------------- batch */

static void
batch(dkv_client_t *client, apr_pool_t *pool)
{
    /* Mixed operations, run in order in one request.  A batch is not a
     * transaction: the delete of a missing key fails on its own and the
     * other operations still happen. */
    const dkv_op_t ops[] = {
        { DKV_OP_PUT, "user:1", 6, "Ali", 3, NULL, NULL },
        { DKV_OP_PUT, "user:2", 6, "Sarah", 5, NULL, NULL },
        { DKV_OP_DELETE, "user:3", 6, NULL, 0, NULL, NULL },
        { DKV_OP_DELETE, "user:1", 6, NULL, 0, NULL, NULL },
    };
    dkv_result_t results[4];
    dkv_item_t *item;
    uint64_t n;

    printf("\n== batch: put, put, delete (missing), delete\n");
    check(dkv_batch(results, client, ops, 4), "batch");
    check(results[0].status, "batch: put user:1");
    check(results[1].status, "batch: put user:2");
    expect(results[2].status, DKV_ENOTFOUND, "batch: delete user:3");
    check(results[3].status, "batch: delete user:1");
    printf("results: %s, %s, %s, %s\n", dkv_strerror(results[0].status),
           dkv_strerror(results[1].status), dkv_strerror(results[2].status),
           dkv_strerror(results[3].status));

    /* In order: user:1 was written, then deleted; user:2 stays. */
    expect(dkv_get(&item, client, "user:1", 6, NULL, pool), DKV_ENOTFOUND,
           "user:1 after the batch");
    check(dkv_get(&item, client, "user:2", 6, NULL, pool),
          "user:2 after the batch");
    check(dkv_clear(&n, client, NULL), "clear everything");
    require(n == 1, "one key left to clear after the batch");
}

/* --------------------------------------------------------- scan, clear */

static void
scan_and_clear(dkv_client_t *client, apr_pool_t *pool)
{
    const dkv_range_t items = { "item:", 5, NULL, 0, NULL, 0 };
    dkv_scan_opts_t opts = { NULL, 0, 10, 0 };
    apr_pool_t *page_pool;
    uint64_t count, deleted;
    size_t seen = 0, pages = 0;
    int i;

    printf("\n== scan and clear\n");

    /* 25 items and a key outside the prefix. */
    for (i = 0; i < 25; i++) {
        char key[16], value[16];

        snprintf(key, sizeof key, "item:%02d", i);
        snprintf(value, sizeof value, "value %d", i);
        check(dkv_put(NULL, client, key, strlen(key), value, strlen(value),
                      NULL), "put item");
    }
    check(dkv_put(NULL, client, "other", 5, "x", 1, NULL), "put other");

    check(dkv_count(&count, client, &items), "count item:");
    require(count == 25, "25 keys start with item:");

    /* Pages of 10, in key order: each page says whether more follow and
     * where to continue.  A subpool per page keeps memory bounded. */
    apr_pool_create(&page_pool, pool);
    do {
        dkv_page_t *page;
        size_t j;

        check(dkv_scan(&page, client, &items, &opts, page_pool), "scan");
        for (j = 0; j < page->count; j++) {
            char want[16];

            snprintf(want, sizeof want, "item:%02d", (int)(seen + j));
            require(page->items[j].key_len == strlen(want)
                    && memcmp(page->items[j].key, want,
                              page->items[j].key_len) == 0,
                    "scan returns the keys in order");
        }
        printf("page %lu: %lu keys, from %.*s%s\n",
               (unsigned long)(pages + 1), (unsigned long)page->count,
               page->count ? (int)page->items[0].key_len : 0,
               page->count ? (const char *)page->items[0].key : "",
               page->more ? ", more follow" : ", the last");
        seen += page->count;
        pages++;
        if (!page->more) {
            break;
        }
        /* The cursor points into PAGE_POOL: copy it before clearing. */
        opts.after = apr_pmemdup(pool, page->next, page->next_len);
        opts.after_len = page->next_len;
        apr_pool_clear(page_pool);
    } while (1);
    apr_pool_destroy(page_pool);
    require(seen == 25 && pages == 3, "25 keys in 3 pages");

    /* Clear a range: item:00 <= key < item:10. */
    {
        const dkv_range_t first_ten = { NULL, 0, "item:00", 7,
                                        "item:10", 7 };

        check(dkv_clear(&deleted, client, &first_ten), "clear a range");
        require(deleted == 10, "the range held 10 keys");
        printf("clear [item:00, item:10): %llu deleted\n",
               (unsigned long long)deleted);
    }

    /* Clear the prefix, then everything. */
    check(dkv_clear(&deleted, client, &items), "clear item:");
    require(deleted == 15, "15 item: keys were left");
    printf("clear prefix item: %llu deleted\n", (unsigned long long)deleted);
    check(dkv_clear(&deleted, client, NULL), "clear all");
    require(deleted == 1, "only 'other' was left");
    check(dkv_count(&count, client, NULL), "count all");
    require(count == 0, "the store is empty");
    printf("clear all: %llu deleted; the store is empty\n",
           (unsigned long long)deleted);
}

/* --------------------------------------------------- conditional writes */

/* Adds AMOUNT to the number stored at KEY with a compare-and-swap loop:
 * read the value and its version, compute, and write only if the version
 * is still the one read (if_version).  If someone else wrote in between,
 * the put answers DKV_ECONFLICT and we start over.  MEDDLE, when set, is
 * called once between the first read and write: it plays the other
 * writer.  Returns how many attempts it took. */
static int
cas_add(dkv_client_t *client, const char *key, long amount,
        void (*meddle)(dkv_client_t *), apr_pool_t *pool)
{
    int attempt;

    for (attempt = 1; attempt <= 10; attempt++) {
        dkv_put_opts_t opts = { 0 };
        dkv_item_t *item;
        dkv_status_t status;
        char value[32];
        long balance;

        check(dkv_get(&item, client, key, strlen(key), NULL, pool),
              "cas: get");
        balance = strtol((const char *)item->value, NULL, 10);
        snprintf(value, sizeof value, "%ld", balance + amount);

        if (meddle && attempt == 1) {
            meddle(client);
        }
        opts.if_version = item->version;
        status = dkv_put(NULL, client, key, strlen(key), value,
                         strlen(value), &opts);
        if (status == DKV_OK) {
            printf("cas: attempt %d wrote %s = %s\n", attempt, key, value);
            return attempt;
        }
        expect(status, DKV_ECONFLICT, "cas: put if_version");
        printf("cas: attempt %d lost the race (%s); retrying\n", attempt,
               dkv_strerror(status));
    }
    require(0, "cas: gave up after 10 attempts");
    return 0;
}

/* The other writer of the CAS demonstration: deposits 5 behind our
 * back. */
static void
outside_deposit(dkv_client_t *client)
{
    check(dkv_put(NULL, client, "balance", 7, "105", 3, NULL),
          "outside deposit");
    printf("cas: (meanwhile someone else wrote balance = 105)\n");
}

static void
conditional(dkv_client_t *client, apr_pool_t *pool)
{
    dkv_put_opts_t if_absent = { 0 };
    dkv_delete_opts_t del = { 0 };
    dkv_result_t res;
    dkv_item_t *item;

    printf("\n== conditional writes\n");

    /* IfAbsent: the first writer creates the key, the second is refused
     * with DKV_ECONFLICT and the value stays the first one's. */
    if_absent.if_absent = 1;
    check(dkv_put(NULL, client, "job:1:owner", 11, "worker-a", 8,
                  &if_absent), "put if_absent (first)");
    expect(dkv_put(NULL, client, "job:1:owner", 11, "worker-b", 8,
                   &if_absent), DKV_ECONFLICT, "put if_absent (second)");
    check(dkv_get(&item, client, "job:1:owner", 11, NULL, pool),
          "get job:1:owner");
    require(strcmp((const char *)item->value, "worker-a") == 0,
            "the first writer keeps the key");
    printf("if_absent: worker-a claimed job:1, worker-b got %s\n",
           dkv_strerror(DKV_ECONFLICT));

    /* IfMatch: a compare-and-swap loop.  The first attempt is disturbed
     * by an outside write, so it takes two. */
    check(dkv_put(&res, client, "balance", 7, "100", 3, NULL),
          "put balance");
    require(cas_add(client, "balance", 20, outside_deposit, pool) == 2,
            "the CAS loop retried once");
    check(dkv_get(&item, client, "balance", 7, NULL, pool), "get balance");
    require(strcmp((const char *)item->value, "125") == 0,
            "no update was lost: 100 + 5 + 20 = 125");
    printf("balance = %s: no update lost\n", (const char *)item->value);

    /* A delete can be conditional too: a stale version is refused. */
    del.if_version = item->version - 1;
    expect(dkv_delete(NULL, client, "balance", 7, &del), DKV_ECONFLICT,
           "delete with a stale version");
    del.if_version = item->version;
    check(dkv_delete(NULL, client, "balance", 7, &del),
          "delete with the current version");
    printf("delete if_version: stale refused, current accepted\n");
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
    printf("opened %s (dkv %s)\n\n", address, dkv_version());

    /* Start from an empty store (a given store is reused, so clear it). */
    check(dkv_clear(NULL, client, NULL), "clear the store");

    basics(client, pool);
    bulk(client, pool);
    batch(client, pool);
    scan_and_clear(client, pool);
    conditional(client, pool);

    dkv_close(client);
    apr_pool_destroy(pool);
    printf("\nkv: all checks passed\n");
    return 0;
}
