/*
 * demo.c -- a guided tour of the embedded dkv store, narrated as it runs.
 *
 * It opens a store persisted in a directory, watches it, and walks through
 * the everyday operations: put and get, a key that expires, a transaction,
 * a counter; then it closes the store and opens it again to show that the
 * data survived.  The watch prints every change as it happens, marked
 * with "watch:".
 *
 * Usage: demo [--keep] [DIR]
 *   DIR   the store's directory (created if missing, reused if present).
 *         Default: a fresh directory under the system's temporary
 *         directory, removed at the end unless --keep is given.  A DIR you
 *         name is always kept.
 *
 * Every step is checked; the demo exits 1 at the first surprise, 0 at the
 * end of the tour.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_time.h>

#include <dkv.h>

#include "example.h"

/* ------------------------------------------------------------- helpers */

static void
section(const char *title)
{
    printf("\n---- %s\n", title);
}

/* ------------------------------------------------ the store's directory */

/* Makes a new, empty directory under the temporary directory. */
static const char *
make_temp_dir(apr_pool_t *pool)
{
    const char *tmp;
    int i;

    if (apr_temp_dir_get(&tmp, pool) != APR_SUCCESS) {
        tmp = ".";
    }
    for (i = 0; i < 100; i++) {
        char *dir;
        apr_status_t rv;

        rv = apr_filepath_merge(&dir, tmp,
                                apr_psprintf(pool, "dkv-demo-%" APR_TIME_T_FMT
                                             "-%d", apr_time_now(), i),
                                APR_FILEPATH_NATIVE, pool);
        if (rv == APR_SUCCESS) {
            rv = apr_dir_make(dir, APR_FPROT_OS_DEFAULT, pool);
        }
        if (rv == APR_SUCCESS) {
            return dir;
        }
        if (!APR_STATUS_IS_EEXIST(rv)) {
            check(rv, "make a temporary directory");
        }
    }
    require(0, "make a temporary directory: too many attempts");
    return NULL;
}

/* Removes DIR and everything in it. */
static apr_status_t
remove_tree(const char *dir, apr_pool_t *pool)
{
    apr_dir_t *d;
    apr_finfo_t info;
    apr_pool_t *sub;
    apr_status_t rv;

    apr_pool_create(&sub, pool);
    rv = apr_dir_open(&d, dir, sub);
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(sub);
        return rv;
    }
    while (apr_dir_read(&info, APR_FINFO_NAME | APR_FINFO_TYPE, d)
           == APR_SUCCESS) {
        char *path;

        if (strcmp(info.name, ".") == 0 || strcmp(info.name, "..") == 0) {
            continue;
        }
        apr_filepath_merge(&path, dir, info.name, APR_FILEPATH_NATIVE, sub);
        if (info.filetype == APR_DIR) {
            rv = remove_tree(path, sub);
        }
        else {
            rv = apr_file_remove(path, sub);
        }
        if (rv != APR_SUCCESS) {
            break;
        }
    }
    apr_dir_close(d);
    if (rv == APR_SUCCESS || APR_STATUS_IS_ENOENT(rv)) {
        rv = apr_dir_remove(dir, sub);
    }
    apr_pool_destroy(sub);
    return rv;
}

/* ------------------------------------------------------------ the watch */

/*
 * The watch callback runs on a library thread.  It prints each change and
 * records the last revision it saw, so that the tour can wait for the
 * watch to catch up before it moves on (and the output reads in order).
 */
typedef struct watcher {
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    uint64_t seen;            /* last revision delivered */
    unsigned events;          /* events delivered */
    unsigned deletes;         /* of which deletes */
} watcher_t;

static void
on_change(void *baton, const dkv_event_t *event)
{
    watcher_t *w = baton;

    if (event->type == DKV_EVENT_PUT) {
        printf("    watch: PUT    %.*s = %.*s (revision %llu)\n",
               (int)event->key_len, (const char *)event->key,
               (int)event->value_len,
               event->value ? (const char *)event->value : "",
               (unsigned long long)event->revision);
    }
    else if (event->type == DKV_EVENT_DELETE) {
        printf("    watch: DELETE %.*s (revision %llu)\n",
               (int)event->key_len, (const char *)event->key,
               (unsigned long long)event->revision);
    }
    else {
        printf("    watch: ended: %s\n", dkv_strerror(event->status));
    }
    fflush(stdout);

    apr_thread_mutex_lock(w->mutex);
    if (event->revision > w->seen) {
        w->seen = event->revision;
    }
    w->events++;
    if (event->type == DKV_EVENT_DELETE) {
        w->deletes++;
    }
    apr_thread_cond_broadcast(w->cond);
    apr_thread_mutex_unlock(w->mutex);
}

/* Waits (at most 2 s) until the watch has delivered REVISION. */
static void
catch_up(watcher_t *w, uint64_t revision)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(2);
    uint64_t seen;

    apr_thread_mutex_lock(w->mutex);
    while (w->seen < revision && apr_time_now() < deadline) {
        apr_thread_cond_timedwait(w->cond, w->mutex,
                                  deadline - apr_time_now());
    }
    seen = w->seen;
    apr_thread_mutex_unlock(w->mutex);
    require(seen >= revision, "the watch reports the change within 2 s");
}

/* Waits (at most 2 s) until the watch has delivered N deletes. */
static void
await_deletes(watcher_t *w, unsigned n)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(2);
    unsigned deletes;

    apr_thread_mutex_lock(w->mutex);
    while (w->deletes < n && apr_time_now() < deadline) {
        apr_thread_cond_timedwait(w->cond, w->mutex,
                                  deadline - apr_time_now());
    }
    deletes = w->deletes;
    apr_thread_mutex_unlock(w->mutex);
    require(deletes >= n, "the watch reports the delete within 2 s");
}

/* ------------------------------------------------------------ the tour */

static void
put_and_get(dkv_client_t *client, watcher_t *w, apr_pool_t *pool)
{
    const char *key = "demo:greeting";
    const char *value = "Hello from an embedded store";
    dkv_result_t res;
    dkv_item_t *item;

    section("1. put and get");
    printf("put %s = \"%s\"\n", key, value);
    check(dkv_put(&res, client, key, strlen(key), value, strlen(value),
                  NULL), "put");
    catch_up(w, res.revision);

    check(dkv_get(&item, client, key, strlen(key), NULL, pool), "get");
    require(strcmp((const char *)item->value, value) == 0,
            "get returns the value put");
    printf("get %s -> \"%s\"\n", key, (const char *)item->value);
    printf("     version %llu, created at revision %llu\n",
           (unsigned long long)item->version,
           (unsigned long long)item->create_revision);
}

static void
expiry(dkv_client_t *client, watcher_t *w, apr_pool_t *pool)
{
    const char *key = "demo:session";
    dkv_put_opts_t opts = { 0 };
    dkv_result_t res;
    dkv_item_t *item;
    dkv_status_t status;
    apr_time_t start;

    section("2. a key that expires (TTL 300 ms)");
    opts.ttl_ms = 300;
    printf("put %s = \"user=ali\" with a 300 ms TTL\n", key);
    check(dkv_put(&res, client, key, strlen(key), "user=ali", 8, &opts),
          "put with ttl");
    start = apr_time_now();
    catch_up(w, res.revision);
    check(dkv_get(&item, client, key, strlen(key), NULL, pool), "get");
    printf("get %s -> \"%s\", %lld ms left to live\n", key,
           (const char *)item->value, (long long)item->ttl_ms);

    printf("waiting for it to expire...\n");
    for (;;) {
        status = dkv_get(&item, client, key, strlen(key), NULL, pool);
        if (status == DKV_ENOTFOUND) {
            break;
        }
        check(status, "get while waiting");
        require(apr_time_now() - start < apr_time_from_sec(2),
                "the key expires within 2 s");
        apr_sleep(apr_time_from_msec(10));
    }
    printf("after %ld ms: get %s -> %s\n",
           (long)((apr_time_now() - start) / 1000), key,
           dkv_strerror(status));

    /* Readers stop seeing the key at once; the store's timer then
     * deletes it, and the watch hears of it. */
    await_deletes(w, 1);
}

static void
transaction(dkv_client_t *client, watcher_t *w, apr_pool_t *pool)
{
    dkv_txn_t *txn;
    dkv_item_t *item;
    uint64_t revision;
    long alice, bob;
    char value[32];

    section("3. a transaction: move 30 from alice to bob");
    check(dkv_put(NULL, client, "demo:alice", 10, "100", 3, NULL),
          "put alice");
    check(dkv_put(NULL, client, "demo:bob", 8, "50", 2, NULL), "put bob");
    check(dkv_revision(&revision, client), "revision");
    catch_up(w, revision);

    check(dkv_txn_begin(&txn, client, pool), "begin");
    check(dkv_txn_get(&item, txn, "demo:alice", 10, pool), "txn get alice");
    alice = strtol((const char *)item->value, NULL, 10);
    check(dkv_txn_get(&item, txn, "demo:bob", 8, pool), "txn get bob");
    bob = strtol((const char *)item->value, NULL, 10);
    printf("in the transaction: alice = %ld, bob = %ld\n", alice, bob);

    snprintf(value, sizeof value, "%ld", alice - 30);
    check(dkv_txn_put(txn, "demo:alice", 10, value, strlen(value), NULL),
          "txn put alice");
    snprintf(value, sizeof value, "%ld", bob + 30);
    check(dkv_txn_put(txn, "demo:bob", 8, value, strlen(value), NULL),
          "txn put bob");
    printf("staged alice = %ld, bob = %ld; committing (both or neither)\n",
           alice - 30, bob + 30);
    check(dkv_txn_commit(&revision, txn), "commit");
    catch_up(w, revision);
    printf("committed at revision %llu\n", (unsigned long long)revision);

    check(dkv_get(&item, client, "demo:alice", 10, NULL, pool), "get");
    require(strcmp((const char *)item->value, "70") == 0, "alice has 70");
    check(dkv_get(&item, client, "demo:bob", 8, NULL, pool), "get");
    require(strcmp((const char *)item->value, "80") == 0, "bob has 80");
}

static void
counter(dkv_client_t *client, watcher_t *w)
{
    int64_t visits = 0;
    uint64_t revision;
    int i;

    section("4. a counter");
    for (i = 0; i < 3; i++) {
        check(dkv_counter_add(NULL, &visits, client, "demo:visits", 11, 1,
                              NULL), "counter add");
        printf("a visit: demo:visits is now %lld\n", (long long)visits);
    }
    require(visits == 3, "three visits counted");
    check(dkv_revision(&revision, client), "revision");
    catch_up(w, revision);
}

/* Closes the store and opens it again: the data is on disk. */
static dkv_client_t *
reopen(dkv_client_t *client, const char *address, apr_pool_t *pool)
{
    dkv_item_t *item;
    int64_t visits;
    uint64_t count;

    section("5. close, reopen: the data persists");
    dkv_close(client);
    printf("closed the store\n");
    check(dkv_open(&client, address, NULL, pool), "reopen");
    printf("opened %s again\n", address);

    check(dkv_get(&item, client, "demo:greeting", 13, NULL, pool), "get");
    printf("get demo:greeting -> \"%s\"\n", (const char *)item->value);
    check(dkv_counter_get(&visits, client, "demo:visits", 11), "counter");
    require(visits == 3, "the counter survived");
    printf("demo:visits = %lld\n", (long long)visits);
    check(dkv_count(&count, client, NULL), "count");
    printf("%llu keys in the store\n", (unsigned long long)count);
    return client;
}

/* ---------------------------------------------------------------- main */

int
main(int argc, char **argv)
{
    const dkv_range_t demo_keys = { "demo:", 5, NULL, 0, NULL, 0 };
    dkv_watch_opts_t wopts = { 0 };
    watcher_t w = { NULL, NULL, 0, 0, 0 };
    apr_pool_t *pool;
    dkv_client_t *client;
    dkv_watch_t *watch;
    const char *dir = NULL, *address;
    int keep = 0, temporary, i;
    uint64_t cleared, revision;

    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keep") == 0) {
            keep = 1;
        }
        else if (argv[i][0] == '-' || dir) {
            fprintf(stderr, "usage: %s [--keep] [DIR]\n", argv[0]);
            return 2;
        }
        else {
            dir = argv[i];
        }
    }
    temporary = (dir == NULL);
    if (temporary) {
        dir = make_temp_dir(pool);
    }
    else if (strncmp(dir, "inproc:", 7) == 0) {
        dir += 7;    /* accept an address too */
    }
    address = apr_pstrcat(pool, "inproc:", dir, NULL);

    printf("dkv %s -- a tour of the embedded store\n", dkv_version());
    section("0. open");
    check(dkv_open(&client, address, NULL, pool), "open");
    printf("opened %s (persisted in %s)\n", address, dir);

    /* A store reused from an earlier run: clear the demo's keys. */
    check(dkv_clear(&cleared, client, &demo_keys), "clear demo:");
    if (cleared > 0) {
        printf("cleared %llu demo: keys left by an earlier run\n",
               (unsigned long long)cleared);
    }

    /* Watch every demo: key from now on. */
    apr_thread_mutex_create(&w.mutex, APR_THREAD_MUTEX_DEFAULT, pool);
    apr_thread_cond_create(&w.cond, pool);
    check(dkv_revision(&revision, client), "revision");
    w.seen = revision;
    wopts.prefix = 1;
    check(dkv_watch_start(&watch, client, "demo:", 5, &wopts, on_change, &w),
          "watch demo:");
    printf("watching every key under demo: (changes print as \"watch:\")\n");

    put_and_get(client, &w, pool);
    expiry(client, &w, pool);
    transaction(client, &w, pool);
    counter(client, &w);

    dkv_watch_stop(watch);
    printf("\nthe watch saw %u changes\n", w.events);
    /* greeting; session and its expiry; alice, bob; the transaction's
     * two writes; three counter adds. */
    require(w.events == 10, "the watch saw each of the 10 changes");

    client = reopen(client, address, pool);
    dkv_close(client);

    section("6. done");
    if (temporary && !keep) {
        check(remove_tree(dir, pool), "remove the temporary directory");
        printf("removed %s\n", dir);
    }
    else {
        printf("the store stays in %s\n", dir);
    }
    apr_pool_destroy(pool);
    return 0;
}
