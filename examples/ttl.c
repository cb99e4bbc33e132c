/*
 * ttl.c -- keys that expire on their own.  A put with ttl_ms gives a key a
 * lifetime; once it is over the key is gone for every reader at once (the
 * store's timer then deletes it and tells watchers).  dkv_refresh()
 * restarts the lifetime (sliding expiry, as for sessions); dkv_expire()
 * sets a new one, or removes it, without rewriting the value.
 *
 * Usage: ttl [ADDRESS]
 *   ADDRESS is a store address ("inproc:" for a fresh temporary store, the
 *   default, or "inproc:PATH"), or a directory, read as "inproc:DIR".
 *   The store is cleared first: give it a scratch store.
 *
 * The lifetimes here are short (a few hundred milliseconds) so that the
 * program runs in about a second; it checks every answer and exits 1 at
 * the first surprise, so it doubles as a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>

#include <dkv.h>

#include "example.h"

/* ------------------------------------------------------------- helpers */

/* Polls KEY every 10 ms until it is gone; exits if it is still there
 * after TIMEOUT_MS.  Returns the milliseconds it took. */
static long
wait_until_gone(dkv_client_t *client, const char *key, long timeout_ms,
                apr_pool_t *pool)
{
    apr_time_t start = apr_time_now();
    dkv_get_opts_t meta = { 1, 0 };    /* metadata only: no value copy */

    for (;;) {
        dkv_item_t *item;
        dkv_status_t status;

        status = dkv_get(&item, client, key, strlen(key), &meta, pool);
        if (status == DKV_ENOTFOUND) {
            return ms_since(start);
        }
        check(status, "get while waiting for expiry");
        if (ms_since(start) > timeout_ms) {
            fprintf(stderr, "FAILED: %s did not expire within %ld ms\n",
                    key, timeout_ms);
            exit(1);
        }
        sleep_ms(10);
    }
}

/* ------------------------------------------------------------ sections */

/* A key with a TTL is there, then it is not. */
static void
expiry(dkv_client_t *client, apr_pool_t *pool)
{
    const char *key = "session:1";
    const char *value = "user=ali";
    dkv_put_opts_t opts = { 0 };
    dkv_item_t *item;
    apr_time_t start;
    long waited;

    printf("== a key with a 250 ms TTL\n");
    opts.ttl_ms = 250;
    start = apr_time_now();
    check(dkv_put(NULL, client, key, strlen(key), value, strlen(value),
                  &opts), "put with ttl");

    /* Reads show the remaining lifetime and the instant of expiry. */
    check(dkv_get(&item, client, key, strlen(key), NULL, pool),
          "get before expiry");
    require(item->ttl_ms > 0 && item->ttl_ms <= 250,
            "ttl_ms is the remaining lifetime");
    require(item->expires_at > 0, "expires_at is set");
    printf("get %s -> \"%s\", %lld ms to live\n", key,
           (const char *)item->value, (long long)item->ttl_ms);

    (void)wait_until_gone(client, key, 2000, pool);
    waited = ms_since(start);
    require(waited >= 240, "the key lived its full TTL");
    printf("gone after about %ld ms: get -> %s\n", waited,
           dkv_strerror(DKV_ENOTFOUND));
}

/* dkv_refresh() restarts the TTL: a session that is used stays alive. */
static void
sliding(dkv_client_t *client, apr_pool_t *pool)
{
    const char *key = "session:2";
    dkv_put_opts_t opts = { 0 };
    dkv_result_t res;
    dkv_item_t *item;
    int i;

    printf("\n== sliding expiry with dkv_refresh (TTL 300 ms)\n");
    opts.ttl_ms = 300;
    check(dkv_put(&res, client, key, strlen(key), "user=sarah", 10, &opts),
          "put session:2");

    /* Six refreshes 100 ms apart: 600 ms in all, twice the TTL. */
    for (i = 0; i < 6; i++) {
        sleep_ms(100);
        check(dkv_refresh(NULL, client, key, strlen(key), 0), "refresh");
    }
    check(dkv_get(&item, client, key, strlen(key), NULL, pool),
          "get after 600 ms of refreshes");
    require(item->version == res.version,
            "a refresh does not rewrite the key");
    printf("alive after 600 ms thanks to 6 refreshes (version still %llu)\n",
           (unsigned long long)item->version);

    /* Stop refreshing and it expires. */
    printf("refreshes stopped; gone after about %ld ms\n",
           wait_until_gone(client, key, 2000, pool));

    /* A key without a TTL has nothing to refresh. */
    check(dkv_put(NULL, client, "forever", 7, "x", 1, NULL), "put forever");
    expect(dkv_refresh(NULL, client, "forever", 7, 0), DKV_EINVAL,
           "refresh a key without a TTL");
    expect(dkv_refresh(NULL, client, "no-such-key", 11, 0), DKV_ENOTFOUND,
           "refresh a missing key");
}

/* dkv_expire() changes the lifetime without rewriting the value. */
static void
set_expiry(dkv_client_t *client, apr_pool_t *pool)
{
    dkv_put_opts_t opts = { 0 };
    dkv_item_t *item;

    printf("\n== dkv_expire: give a lifetime, take it away\n");

    /* A permanent key gets a 200 ms lifetime... */
    check(dkv_put(NULL, client, "cache:a", 7, "alpha", 5, NULL),
          "put cache:a");
    check(dkv_expire(NULL, client, "cache:a", 7, 200, 0), "expire 200");
    printf("cache:a given 200 ms; gone after about %ld ms\n",
           wait_until_gone(client, "cache:a", 2000, pool));

    /* ...and a key with a lifetime is made permanent with 0. */
    opts.ttl_ms = 200;
    check(dkv_put(NULL, client, "cache:b", 7, "beta", 4, &opts),
          "put cache:b with ttl");
    check(dkv_expire(NULL, client, "cache:b", 7, 0, 0), "expire 0");
    sleep_ms(300);
    check(dkv_get(&item, client, "cache:b", 7, NULL, pool),
          "cache:b is still there");
    require(item->expires_at == 0 && item->ttl_ms == -1,
            "cache:b no longer expires");
    printf("cache:b made permanent: still there after 300 ms\n");

    /* A plain put replaces the metadata too: no ttl_ms, no expiry. */
    check(dkv_put(NULL, client, "cache:c", 7, "gamma", 5, &opts),
          "put cache:c with ttl");
    check(dkv_put(NULL, client, "cache:c", 7, "gamma", 5, NULL),
          "put cache:c without ttl");
    check(dkv_get(&item, client, "cache:c", 7, NULL, pool), "get cache:c");
    require(item->expires_at == 0, "a put without ttl_ms clears the TTL");
    printf("cache:c rewritten without ttl_ms: no longer expires\n");
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

    expiry(client, pool);
    sliding(client, pool);
    set_expiry(client, pool);

    dkv_close(client);
    apr_pool_destroy(pool);
    printf("\nttl: all checks passed\n");
    return 0;
}
