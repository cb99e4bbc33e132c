/*
 * watch.c -- reacting to changes instead of polling for them.
 *
 * A watch delivers one event per change of a key (or of every key under a
 * prefix) to a callback, on a thread of the library, in revision order.
 * It can begin with a snapshot of the current values, or replay the
 * changes from a past revision, without missing or repeating a change
 * between the two.  Expiry is a change too: TTL and lease expiry produce
 * Delete events.
 *
 * Usage: watch [ADDRESS]
 *   ADDRESS is a store address ("inproc:" for a fresh temporary store, the
 *   default, or "inproc:PATH"), or a directory, read as "inproc:DIR".
 *   The store is cleared first: give it a scratch store.
 *
 * The program checks every event it receives and exits 1 at the first
 * surprise, so it doubles as a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_time.h>

#include <dkv.h>

#include "example.h"

/* ------------------------------------------------------------- helpers */

static void
put_text(dkv_client_t *client, const char *key, const char *value,
         const dkv_put_opts_t *opts)
{
    check(dkv_put(NULL, client, key, strlen(key), value, strlen(value),
                  opts), key);
}

/* ------------------------------------------------------ the event log */

/*
 * The callback runs on a library thread and everything the event points
 * to is valid only during the call, so it copies what it needs into a
 * log guarded by a mutex; the main thread waits on a condition variable
 * until the events it expects have arrived.
 */

#define MAX_EVENTS 32

typedef struct seen {
    dkv_event_type_t type;
    char key[48];
    char value[48];
    uint64_t revision;
    int snapshot;
} seen_t;

typedef struct event_log {
    const char *name;
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    seen_t events[MAX_EVENTS];
    size_t count;
} event_log_t;

/* Copies LEN bytes of SRC into DST (of SIZE bytes) as a C string. */
static void
copy_text(char *dst, size_t size, const void *src, size_t len)
{
    if (len >= size) {
        len = size - 1;
    }
    if (len > 0) {
        memcpy(dst, src, len);
    }
    dst[len] = '\0';
}

/* The watch callback: print the event and append it to the log. */
static void
on_event(void *baton, const dkv_event_t *event)
{
    event_log_t *log = baton;
    seen_t *s;

    printf("  [%s] %s%s %.*s%s%.*s (revision %llu)\n", log->name,
           event->type == DKV_EVENT_PUT ? "PUT"
           : event->type == DKV_EVENT_DELETE ? "DELETE" : "ERROR",
           event->snapshot ? " (snapshot)" : "",
           (int)event->key_len, event->key ? (const char *)event->key : "",
           event->type == DKV_EVENT_PUT ? " = " : "",
           event->type == DKV_EVENT_PUT ? (int)event->value_len : 0,
           event->value ? (const char *)event->value : "",
           (unsigned long long)event->revision);

    apr_thread_mutex_lock(log->mutex);
    if (log->count < MAX_EVENTS) {
        s = &log->events[log->count];
        s->type = event->type;
        copy_text(s->key, sizeof s->key, event->key, event->key_len);
        copy_text(s->value, sizeof s->value, event->value,
                  event->value ? event->value_len : 0);
        s->revision = event->revision;
        s->snapshot = event->snapshot;
    }
    log->count++;
    apr_thread_cond_broadcast(log->cond);
    apr_thread_mutex_unlock(log->mutex);
}

static event_log_t *
event_log_make(const char *name, apr_pool_t *pool)
{
    event_log_t *log = apr_pcalloc(pool, sizeof *log);

    log->name = name;
    apr_thread_mutex_create(&log->mutex, APR_THREAD_MUTEX_DEFAULT, pool);
    apr_thread_cond_create(&log->cond, pool);
    return log;
}

/* Waits until LOG holds N events, at most 2 s; exits on a timeout. */
static void
wait_for(event_log_t *log, size_t n)
{
    apr_time_t deadline = apr_time_now() + apr_time_from_sec(2);
    size_t count;

    apr_thread_mutex_lock(log->mutex);
    while (log->count < n && apr_time_now() < deadline) {
        apr_thread_cond_timedwait(log->cond, log->mutex,
                                  deadline - apr_time_now());
    }
    count = log->count;
    apr_thread_mutex_unlock(log->mutex);
    if (count < n) {
        fprintf(stderr, "FAILED: [%s] %lu events after 2 s, expected %lu\n",
                log->name, (unsigned long)count, (unsigned long)n);
        exit(1);
    }
}

/* Checks that event I of LOG is TYPE on KEY (with VALUE for a put). */
static void
require_event(event_log_t *log, size_t i, dkv_event_type_t type,
              const char *key, const char *value, int snapshot)
{
    const seen_t *s = &log->events[i];

    if (s->type != type || strcmp(s->key, key) != 0
        || (value && strcmp(s->value, value) != 0)
        || s->snapshot != snapshot) {
        fprintf(stderr, "FAILED: [%s] event %lu is %d %s=%s%s, expected "
                "%d %s=%s%s\n", log->name, (unsigned long)i, (int)s->type,
                s->key, s->value, s->snapshot ? " (snapshot)" : "",
                (int)type, key, value ? value : "", snapshot
                ? " (snapshot)" : "");
        exit(1);
    }
    if (i > 0 && !s->snapshot && s->revision <= log->events[i - 1].revision) {
        fprintf(stderr, "FAILED: [%s] event %lu: revisions must grow\n",
                log->name, (unsigned long)i);
        exit(1);
    }
}

/* ---------------------------------------------------- watching one key */

static void
key_watch(dkv_client_t *client, apr_pool_t *pool)
{
    event_log_t *log = event_log_make("config:mode", pool);
    dkv_watch_opts_t opts = { 0 };
    dkv_watch_t *watch;

    printf("== watching one key, starting with a snapshot\n");
    put_text(client, "config:mode", "blue", NULL);

    /* The snapshot delivers the current value first, marked as such. */
    opts.include_snapshot = 1;
    check(dkv_watch_start(&watch, client, "config:mode", 11, &opts,
                          on_event, log), "watch config:mode");

    put_text(client, "config:mode", "green", NULL);
    put_text(client, "config:mode2", "ignored", NULL);  /* another key */
    check(dkv_delete(NULL, client, "config:mode", 11, NULL),
          "delete config:mode");
    put_text(client, "config:mode", "red", NULL);

    wait_for(log, 4);
    dkv_watch_stop(watch);    /* no callback runs once this returns */
    require(log->count == 4, "4 events: snapshot, put, delete, put");
    require_event(log, 0, DKV_EVENT_PUT, "config:mode", "blue", 1);
    require_event(log, 1, DKV_EVENT_PUT, "config:mode", "green", 0);
    require_event(log, 2, DKV_EVENT_DELETE, "config:mode", NULL, 0);
    require_event(log, 3, DKV_EVENT_PUT, "config:mode", "red", 0);
}

/* --------------------------------------------------- watching a prefix */

static void
prefix_watch(dkv_client_t *client, apr_pool_t *pool)
{
    event_log_t *log = event_log_make("orders:", pool);
    dkv_watch_opts_t opts = { 0 };
    dkv_put_opts_t short_lived = { 0 };
    dkv_watch_t *watch;

    printf("\n== watching a prefix; expiry is an event too\n");
    opts.prefix = 1;
    check(dkv_watch_start(&watch, client, "orders:", 7, &opts, on_event,
                          log), "watch orders:");

    put_text(client, "orders:1", "new", NULL);
    put_text(client, "customers:1", "Ali", NULL);    /* not an order */
    put_text(client, "orders:2", "new", NULL);
    put_text(client, "orders:1", "paid", NULL);
    check(dkv_delete(NULL, client, "orders:2", 8, NULL), "delete orders:2");

    /* A key with a 200 ms TTL: the store deletes it, and says so. */
    short_lived.ttl_ms = 200;
    put_text(client, "orders:3", "pending", &short_lived);

    wait_for(log, 6);
    dkv_watch_stop(watch);
    require(log->count == 6, "6 events, none for customers:1");
    require_event(log, 0, DKV_EVENT_PUT, "orders:1", "new", 0);
    require_event(log, 1, DKV_EVENT_PUT, "orders:2", "new", 0);
    require_event(log, 2, DKV_EVENT_PUT, "orders:1", "paid", 0);
    require_event(log, 3, DKV_EVENT_DELETE, "orders:2", NULL, 0);
    require_event(log, 4, DKV_EVENT_PUT, "orders:3", "pending", 0);
    require_event(log, 5, DKV_EVENT_DELETE, "orders:3", NULL, 0);
}

/* ------------------------------------------------ replaying the history */

static void
replay(dkv_client_t *client, apr_pool_t *pool)
{
    event_log_t *log = event_log_make("audit: replay", pool);
    dkv_watch_opts_t opts = { 0 };
    dkv_watch_t *watch;
    uint64_t before;

    printf("\n== replaying changes from a past revision\n");

    /* Remember where we are, then make three changes nobody watches. */
    check(dkv_revision(&before, client), "revision");
    put_text(client, "audit:1", "login", NULL);
    put_text(client, "audit:2", "upload", NULL);
    check(dkv_delete(NULL, client, "audit:1", 7, NULL), "delete audit:1");
    printf("three changes after revision %llu, then a watch from %llu:\n",
           (unsigned long long)before, (unsigned long long)(before + 1));

    /* A watch from the next revision on replays them (a consumer that
     * was away catches up), then continues with live changes. */
    opts.prefix = 1;
    opts.start_revision = before + 1;
    check(dkv_watch_start(&watch, client, "audit:", 6, &opts, on_event,
                          log), "watch audit: from a revision");
    wait_for(log, 3);
    put_text(client, "audit:3", "logout", NULL);
    wait_for(log, 4);
    dkv_watch_stop(watch);

    require(log->count == 4, "3 replayed events and 1 live one");
    require(log->events[0].revision == before + 1,
            "the replay starts at the revision asked for");
    require_event(log, 0, DKV_EVENT_PUT, "audit:1", "login", 0);
    require_event(log, 1, DKV_EVENT_PUT, "audit:2", "upload", 0);
    require_event(log, 2, DKV_EVENT_DELETE, "audit:1", NULL, 0);
    require_event(log, 3, DKV_EVENT_PUT, "audit:3", "logout", 0);
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

    key_watch(client, pool);
    prefix_watch(client, pool);
    replay(client, pool);

    dkv_close(client);
    apr_pool_destroy(pool);
    printf("\nwatch: all checks passed\n");
    return 0;
}
