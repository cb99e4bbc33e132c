/*
 * leases_locks.c -- ownership that cannot go stale.
 *
 * A lease is a lifetime its owner keeps alive with keepalives; keys bound
 * to it vanish when it ends, by expiry (the owner died) or revocation (the
 * owner left).  A lock is held on a key by a lease: while it is held,
 * writes to the key need the lock's fencing token, and the token grows
 * with every acquisition, so a stale holder can always be told apart.
 *
 * Three sections: a lease with bound keys; a lock with two contenders;
 * and leader election among three "nodes" (if_absent + lease + a watch
 * for the Delete that ends a leader's term).
 *
 * Usage: leases_locks [ADDRESS]
 *   ADDRESS is a store address ("inproc:" for a fresh temporary store, the
 *   default, or "inproc:PATH"), or a directory, read as "inproc:DIR".
 *   The store is cleared first: give it a scratch store.
 *
 * Lease lifetimes are short (300 ms) so the program runs in about a
 * second; it checks every answer and exits 1 at the first surprise.
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

/* -------------------------------------------------------------- leases */

static void
leases(dkv_client_t *client, apr_pool_t *pool)
{
    dkv_lease_info_t info;
    dkv_item_t *item;
    dkv_put_opts_t bound = { 0 };
    uint64_t lease, session, deleted;
    apr_time_t start;
    int64_t remaining;
    int i;

    printf("== a lease kept alive, then left to expire\n");

    /* A 300 ms lease, and a presence key bound to it. */
    check(dkv_lease_grant(&lease, client, 300), "lease grant");
    bound.lease = lease;
    check(dkv_put(NULL, client, "worker:1", 8, "active", 6, &bound),
          "put worker:1 bound to the lease");
    check(dkv_lease_info(&info, client, lease), "lease info");
    require(info.keys == 1 && info.ttl_ms == 300, "the lease holds one key");
    printf("lease %llu granted for 300 ms; worker:1 bound to it\n",
           (unsigned long long)lease);

    /* The worker is alive: it sends keepalives, 6 x 100 ms = 600 ms. */
    for (i = 0; i < 6; i++) {
        sleep_ms(100);
        check(dkv_lease_keepalive(&remaining, client, lease), "keepalive");
    }
    check(dkv_get(&item, client, "worker:1", 8, NULL, pool),
          "worker:1 after 600 ms of keepalives");
    printf("after 600 ms of keepalives worker:1 is still there "
           "(%lld ms left)\n", (long long)remaining);

    /* The worker "crashes": no more keepalives.  The lease expires and
     * takes worker:1 with it. */
    start = apr_time_now();
    for (;;) {
        dkv_status_t status = dkv_get(&item, client, "worker:1", 8, NULL,
                                      pool);

        if (status == DKV_ENOTFOUND) {
            break;
        }
        check(status, "get worker:1 while the lease runs out");
        require(ms_since(start) < 2000, "the lease expires within 2 s");
        sleep_ms(10);
    }
    expect(dkv_lease_keepalive(NULL, client, lease), DKV_ENOTFOUND,
           "keepalive of an expired lease");
    printf("keepalives stopped: lease gone after about %ld ms, "
           "and worker:1 with it\n", ms_since(start));

    /* Revocation ends a lease at once: an orderly goodbye. */
    printf("\n== revoking a lease\n");
    check(dkv_lease_grant(&session, client, 10000), "grant a 10 s lease");
    bound.lease = session;
    check(dkv_put(NULL, client, "cart:7", 6, "3 items", 7, &bound),
          "put cart:7");
    check(dkv_put(NULL, client, "presence:7", 10, "online", 6, &bound),
          "put presence:7");
    check(dkv_lease_revoke(&deleted, client, session), "revoke");
    require(deleted == 2, "revoking deletes the lease's 2 keys");
    expect(dkv_get(&item, client, "cart:7", 6, NULL, pool), DKV_ENOTFOUND,
           "cart:7 after the revoke");
    expect(dkv_lease_info(&info, client, session), DKV_ENOTFOUND,
           "info of a revoked lease");
    printf("revoked lease %llu: %llu bound keys deleted\n",
           (unsigned long long)session, (unsigned long long)deleted);

    /* Keys cannot be bound to a lease that does not exist. */
    expect(dkv_put(NULL, client, "orphan", 6, "x", 1, &bound),
           DKV_ENOTFOUND, "put bound to a revoked lease");
}

/* --------------------------------------------------------------- locks */

static void
locks(dkv_client_t *client, apr_pool_t *pool)
{
    const char *key = "order:1001";
    dkv_put_opts_t with_lock = { 0 };
    dkv_get_opts_t read_lock = { 0 };
    dkv_lock_t a, b, again;
    dkv_item_t *item;
    uint64_t lease_a, lease_b;

    printf("\n== a lock, its fencing token, and a second contender\n");
    check(dkv_lease_grant(&lease_a, client, 10000), "grant lease A");
    check(dkv_lease_grant(&lease_b, client, 10000), "grant lease B");

    /* Worker A takes the lock on order:1001. */
    check(dkv_lock_acquire(&a, client, key, strlen(key), lease_a),
          "A acquires");
    require(a.acquired && a.token > 0 && a.lease == lease_a,
            "A holds the lock");
    printf("A acquired the lock on %s, token %llu\n", key,
           (unsigned long long)a.token);

    /* Asking again with the same lease is harmless: same token. */
    check(dkv_lock_acquire(&again, client, key, strlen(key), lease_a),
          "A acquires again");
    require(again.token == a.token, "re-acquiring returns the same token");

    /* Worker B is refused, and told who holds the lock. */
    expect(dkv_lock_acquire(&b, client, key, strlen(key), lease_b),
           DKV_ELOCKED, "B acquires while A holds the lock");
    require(!b.acquired && b.lease == lease_a, "B learns that A holds it");
    printf("B refused: %s (held by lease %llu)\n",
           dkv_strerror(DKV_ELOCKED), (unsigned long long)b.lease);

    /* Writes to the locked key need the token. */
    expect(dkv_put(NULL, client, key, strlen(key), "paid", 4, NULL),
           DKV_ELOCKED, "put without the token");
    with_lock.lock = a.token;
    check(dkv_put(NULL, client, key, strlen(key), "paid", 4, &with_lock),
          "A writes under the lock");
    read_lock.lock = a.token;
    check(dkv_get(&item, client, key, strlen(key), &read_lock, pool),
          "A reads under the lock");
    require(strcmp((const char *)item->value, "paid") == 0,
            "A reads its write");
    printf("without the token a put gets %s; with it, %s = %s\n",
           dkv_strerror(DKV_ELOCKED), key, (const char *)item->value);

    /* A is done.  B gets the lock, with a larger token. */
    check(dkv_lock_release(client, key, strlen(key), a.token), "A releases");
    check(dkv_lock_acquire(&b, client, key, strlen(key), lease_b),
          "B acquires after the release");
    require(b.acquired && b.token > a.token,
            "each acquisition gets a larger token");
    printf("A released; B acquired with token %llu > %llu\n",
           (unsigned long long)b.token, (unsigned long long)a.token);

    /* Fencing: A, late and unaware, writes with its old token: refused. */
    expect(dkv_put(NULL, client, key, strlen(key), "refunded", 8,
                   &with_lock), DKV_ELOCKED, "A writes with a stale token");
    expect(dkv_lock_release(client, key, strlen(key), a.token), DKV_ELOCKED,
           "A releases with a stale token");
    printf("A's stale token %llu is refused: the order is safe\n",
           (unsigned long long)a.token);

    /* B's lease ends: its lock goes with it, the key is free again. */
    check(dkv_lease_revoke(NULL, client, lease_b), "revoke lease B");
    check(dkv_put(NULL, client, key, strlen(key), "shipped", 7, NULL),
          "put after B's lease ended");
    expect(dkv_lock_release(client, key, strlen(key), b.token),
           DKV_ENOTFOUND, "release after the lease ended");
    check(dkv_lease_revoke(NULL, client, lease_a), "revoke lease A");
    printf("B's lease revoked: the lock is gone, anyone may write\n");
}

/* ----------------------------------------------------- leader election */

/*
 * Three nodes want to lead.  Each holds a lease; to lead is to write the
 * election key with if_absent, bound to one's lease: only one write can
 * succeed.  The others watch the key; when its Delete arrives (the
 * leader's lease expired or was revoked) they run the election again.
 */

#define ELECTION_KEY "election/leader"

typedef struct node {
    const char *name;
    uint64_t lease;
} node_t;

/* What the followers' watch saw, shared with the main thread. */
typedef struct vacancy {
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    int deleted;
} vacancy_t;

/* Watch callback (a library thread): note that the leader is gone. */
static void
on_leader_change(void *baton, const dkv_event_t *event)
{
    vacancy_t *v = baton;

    if (event->type == DKV_EVENT_DELETE) {
        printf("  watch: %.*s deleted at revision %llu: the leader is gone\n",
               (int)event->key_len, (const char *)event->key,
               (unsigned long long)event->revision);
        apr_thread_mutex_lock(v->mutex);
        v->deleted = 1;
        apr_thread_cond_broadcast(v->cond);
        apr_thread_mutex_unlock(v->mutex);
    }
}

/* Node N stands for election: returns 1 if it won. */
static int
campaign(dkv_client_t *client, const node_t *n)
{
    dkv_put_opts_t opts = { 0 };
    dkv_status_t status;

    opts.if_absent = 1;
    opts.lease = n->lease;
    status = dkv_put(NULL, client, ELECTION_KEY, strlen(ELECTION_KEY),
                     n->name, strlen(n->name), &opts);
    if (status == DKV_ECONFLICT) {
        printf("  %s: someone leads already; following\n", n->name);
        return 0;
    }
    check(status, "campaign");
    printf("  %s: elected leader\n", n->name);
    return 1;
}

static void
election(dkv_client_t *client, apr_pool_t *pool)
{
    node_t nodes[3] = { { "node-1", 0 }, { "node-2", 0 }, { "node-3", 0 } };
    dkv_watch_opts_t wopts = { 0 };
    vacancy_t vacancy = { NULL, NULL, 0 };
    dkv_watch_t *watch;
    dkv_item_t *item;
    apr_time_t start;
    int i, leaders;

    printf("\n== leader election: if_absent + lease + watch\n");
    apr_thread_mutex_create(&vacancy.mutex, APR_THREAD_MUTEX_DEFAULT, pool);
    apr_thread_cond_create(&vacancy.cond, pool);

    /* node-1 holds a short lease (and will "crash"); the others hold
     * long ones. */
    check(dkv_lease_grant(&nodes[0].lease, client, 300), "grant node-1");
    check(dkv_lease_grant(&nodes[1].lease, client, 10000), "grant node-2");
    check(dkv_lease_grant(&nodes[2].lease, client, 10000), "grant node-3");

    /* Everyone watches the election key for the Delete that ends a
     * term (started first, so that no change can slip by unseen). */
    check(dkv_watch_start(&watch, client, ELECTION_KEY, strlen(ELECTION_KEY),
                          &wopts, on_leader_change, &vacancy),
          "watch the election key");

    leaders = 0;
    for (i = 0; i < 3; i++) {
        leaders += campaign(client, &nodes[i]);
    }
    require(leaders == 1, "exactly one node is elected");
    check(dkv_get(&item, client, ELECTION_KEY, strlen(ELECTION_KEY), NULL,
                  pool), "read the leader");
    require(strcmp((const char *)item->value, "node-1") == 0,
            "node-1, first to stand, leads");

    /* node-1 stops its keepalives (it crashed).  Within the lease's
     * 300 ms its term ends and the key is deleted. */
    printf("  node-1 crashes (no more keepalives)\n");
    start = apr_time_now();
    apr_thread_mutex_lock(vacancy.mutex);
    while (!vacancy.deleted && ms_since(start) < 2000) {
        apr_thread_cond_timedwait(vacancy.cond, vacancy.mutex,
                                  apr_time_from_msec(50));
    }
    apr_thread_mutex_unlock(vacancy.mutex);
    require(vacancy.deleted, "the followers see the leader's key deleted");
    dkv_watch_stop(watch);

    /* A new election among the survivors. */
    leaders = campaign(client, &nodes[1]) + campaign(client, &nodes[2]);
    require(leaders == 1, "exactly one survivor is elected");
    check(dkv_get(&item, client, ELECTION_KEY, strlen(ELECTION_KEY), NULL,
                  pool), "read the new leader");
    require(strcmp((const char *)item->value, "node-2") == 0,
            "node-2 leads now");
    printf("  new leader: %s, %ld ms after node-1 crashed\n",
           (const char *)item->value, ms_since(start));

    /* An orderly shutdown: the leader steps down by revoking its lease. */
    check(dkv_lease_revoke(NULL, client, nodes[1].lease), "node-2 leaves");
    check(dkv_lease_revoke(NULL, client, nodes[2].lease), "node-3 leaves");
    expect(dkv_get(&item, client, ELECTION_KEY, strlen(ELECTION_KEY), NULL,
                   pool), DKV_ENOTFOUND, "no leader after the shutdown");
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

    leases(client, pool);
    locks(client, pool);
    election(client, pool);

    dkv_close(client);
    apr_pool_destroy(pool);
    printf("\nleases_locks: all checks passed\n");
    return 0;
}
