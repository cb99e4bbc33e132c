/*
 * counters.c -- atomic counters: add, get, set; bounds; and a fixed-window
 * rate limiter made of one counter with a maximum and a TTL.
 *
 * A counter is an ordinary key holding a decimal number ("42"): it can be
 * read with dkv_get, watched, scanned, and given a lifetime.  The counter
 * calls change it atomically, so many threads or processes can count
 * without a lock.
 *
 * Usage: counters [ADDRESS]
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
#include <apr_time.h>

#include <dkv.h>

#include "example.h"

/* ---------------------------------------------------- add, get and set */

static void
basics(dkv_client_t *client, apr_pool_t *pool)
{
    const char *key = "counter:orders";
    int64_t previous, current, value;
    dkv_item_t *item;

    printf("== add, get, set\n");

    /* The first add creates the counter at 0, then adds. */
    check(dkv_counter_add(&previous, &current, client, key, strlen(key), 1,
                          NULL), "add 1");
    require(previous == 0 && current == 1, "a new counter starts at 0");
    printf("add 1  -> %lld (was %lld)\n", (long long)current,
           (long long)previous);

    check(dkv_counter_add(&previous, &current, client, key, strlen(key), 5,
                          NULL), "add 5");
    require(previous == 1 && current == 6, "1 + 5 = 6");
    printf("add 5  -> %lld (was %lld)\n", (long long)current,
           (long long)previous);

    /* A negative delta subtracts. */
    check(dkv_counter_add(&previous, &current, client, key, strlen(key), -2,
                          NULL), "add -2");
    require(current == 4, "6 - 2 = 4");
    printf("add -2 -> %lld\n", (long long)current);

    check(dkv_counter_get(&value, client, key, strlen(key)), "get");
    require(value == 4, "get reads 4");

    check(dkv_counter_set(client, key, strlen(key), 100, NULL), "set 100");
    check(dkv_counter_get(&value, client, key, strlen(key)), "get");
    require(value == 100, "set wrote 100");
    printf("set 100, get -> %lld\n", (long long)value);

    /* It is an ordinary key: its value is the number, in decimal. */
    check(dkv_get(&item, client, key, strlen(key), NULL, pool), "dkv_get");
    require(strcmp((const char *)item->value, "100") == 0,
            "the counter's value is the text \"100\"");
    printf("dkv_get %s -> \"%s\"\n", key, (const char *)item->value);

    /* A missing counter reads as DKV_ENOTFOUND; a key holding something
     * else is not a counter. */
    expect(dkv_counter_get(&value, client, "counter:none", 12),
           DKV_ENOTFOUND, "get a missing counter");
    check(dkv_put(NULL, client, "name", 4, "alice", 5, NULL), "put name");
    expect(dkv_counter_add(NULL, NULL, client, "name", 4, 1, NULL),
           DKV_EINVAL, "add to a key that is not a counter");
    printf("add to \"name\" (= \"alice\") -> %s\n", dkv_strerror(DKV_EINVAL));
}

/* -------------------------------------------------------------- bounds */

static void
bounds(dkv_client_t *client)
{
    const char *key = "seats:flight-42";
    dkv_counter_opts_t opts = { 0 };
    int64_t current, value;

    printf("\n== bounds: 10 seats, never overbooked, never negative\n");
    opts.has_max = 1;
    opts.max = 10;
    opts.has_min = 1;
    opts.min = 0;

    check(dkv_counter_set(client, key, strlen(key), 9, &opts), "set 9");
    check(dkv_counter_add(NULL, &current, client, key, strlen(key), 1,
                          &opts), "book the 10th seat");
    require(current == 10, "10 seats booked");

    /* One more would pass the maximum: refused, and nothing changes. */
    expect(dkv_counter_add(NULL, &current, client, key, strlen(key), 1,
                           &opts), DKV_ERANGE, "book an 11th seat");
    check(dkv_counter_get(&value, client, key, strlen(key)), "get");
    require(value == 10, "a refused add leaves the counter unchanged");
    printf("book #11 -> %s; still %lld booked\n", dkv_strerror(DKV_ERANGE),
           (long long)value);

    /* Same at the bottom, and for set. */
    expect(dkv_counter_add(NULL, NULL, client, key, strlen(key), -11,
                           &opts), DKV_ERANGE, "cancel 11 of 10");
    expect(dkv_counter_set(client, key, strlen(key), 11, &opts), DKV_ERANGE,
           "set above the maximum");
    check(dkv_counter_get(&value, client, key, strlen(key)), "get");
    require(value == 10, "still 10");
    printf("cancel 11 -> %s; set 11 -> %s\n", dkv_strerror(DKV_ERANGE),
           dkv_strerror(DKV_ERANGE));
}

/* -------------------------------------------------------- rate limiter */

/*
 * A fixed-window rate limiter: at most LIMIT requests per WINDOW_MS for
 * one user.  One counter per user, created with a TTL of one window and a
 * maximum of LIMIT.  Each request adds 1: when the add would pass the
 * maximum it fails with DKV_ERANGE, which means "too many requests".  The
 * TTL applies only when the add creates the counter, so the window does
 * not slide: when it expires, the next request starts a fresh one.
 */

#define LIMIT 5
#define WINDOW_MS 300

/* Returns 1 if USER may make a request now, 0 if over the limit. */
static int
allow_request(dkv_client_t *client, const char *user, int64_t *count)
{
    dkv_counter_opts_t opts = { 0 };
    dkv_status_t status;
    char key[64];

    snprintf(key, sizeof key, "rate:%s", user);
    opts.has_max = 1;
    opts.max = LIMIT;
    opts.ttl_ms = WINDOW_MS;
    status = dkv_counter_add(NULL, count, client, key, strlen(key), 1,
                             &opts);
    if (status == DKV_ERANGE) {
        return 0;
    }
    check(status, "rate limiter: add");
    return 1;
}

static void
rate_limiter(dkv_client_t *client)
{
    apr_time_t start;
    int64_t count = 0;
    int i, allowed = 0;

    printf("\n== a rate limiter: %d requests per %d ms window\n", LIMIT,
           WINDOW_MS);

    /* Eight requests in a burst: five pass, three are refused. */
    for (i = 1; i <= 8; i++) {
        int ok = allow_request(client, "user42", &count);

        printf("request %d: %s\n", i, ok ? "allowed" : "429 Too Many");
        allowed += ok;
    }
    require(allowed == LIMIT, "exactly LIMIT requests pass in a window");

    /* Wait for the window to end: the counter expires. */
    start = apr_time_now();
    for (;;) {
        int64_t value;
        dkv_status_t status = dkv_counter_get(&value, client, "rate:user42",
                                              11);

        if (status == DKV_ENOTFOUND) {
            break;
        }
        check(status, "rate limiter: get");
        require(apr_time_now() - start < apr_time_from_sec(2),
                "the window ends within 2 s");
        apr_sleep(apr_time_from_msec(10));
    }
    printf("(the window ended after about %ld ms)\n",
           (long)((apr_time_now() - start) / 1000));

    /* A new window: requests pass again, counted from 1. */
    require(allow_request(client, "user42", &count) && count == 1,
            "a new window starts from 1");
    printf("request 9: allowed (first of a new window)\n");
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

    basics(client, pool);
    bounds(client);
    rate_limiter(client);

    dkv_close(client);
    apr_pool_destroy(pool);
    printf("\ncounters: all checks passed\n");
    return 0;
}
