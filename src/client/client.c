/*
 * client.c -- the public functions of libdkv (dkv/client.h, coord.h,
 * watch.h, txn.h, search.h) and dkv_open().
 *
 * Each function clears the thread's last error, checks what can be
 * checked without the store (NULL handles and outputs, key sizes, option
 * sanity), then calls the handle's backend through its vtable (client.h).
 * dkv_open() parses the address, chooses the backend, and ties the
 * handle's life to a pool: dkv_close() and the destruction of the parent
 * pool both end in client_cleanup().  A process-wide registry refuses a
 * second handle on the same directory, which LMDB does not allow.
 */
#include <string.h>

#include <apr_atomic.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "platform/platform.h"
#include "common/alloc.h"
#include "common/status.h"
#include "client/client.h"
#include "client/remote.h"

/* Map size of a temporary "inproc:" store unless the caller gives one. */
#define TEMP_MAP_SIZE (64u * 1024u * 1024u)

/* Largest page of a scan or search. */
#define MAX_PAGE 10000

/* =============================================================== checks */

/* A failed call always leaves a message: the detector's, or this one;
 * a call that succeeds leaves none. */
static dkv_status_t
done(dkv_status_t rv, const char *op)
{
    if (rv == DKV_OK) {
        /* Per-key failures of bulk calls do not make the call fail. */
        dkv_error_clear();
    }
    else if (dkv_last_error()[0] == '\0') {
        dkv_error_set(rv, "%s: %s", op, dkv_strerror(rv));
    }
    return rv;
}

static dkv_status_t
check_client(const dkv_client_t *client, const char *op)
{
    if (client == NULL) {
        return dkv_error_set(DKV_EINVAL, "%s: client is NULL", op);
    }
    if (client->closed) {
        return dkv_error_set(DKV_ECLOSED, "%s: the client is closed", op);
    }
    return DKV_OK;
}

#define CHECK_CLIENT(client, op) \
    do { \
        dkv_status_t check_rv_ = check_client((client), (op)); \
        if (check_rv_ != DKV_OK) { \
            return check_rv_; \
        } \
    } while (0)

#define CHECK(expr) \
    do { \
        dkv_status_t check_rv_ = (expr); \
        if (check_rv_ != DKV_OK) { \
            return check_rv_; \
        } \
    } while (0)

#define CHECK_NULL(ptr, op, what) \
    do { \
        if ((ptr) == NULL) { \
            return dkv_error_set(DKV_EINVAL, "%s: %s is NULL", (op), \
                                 (what)); \
        } \
    } while (0)

/* See client.h. */
dkv_status_t
dkv_check_key(const void *key, size_t key_len, int allow_empty)
{
    if (key == NULL && key_len > 0) {
        return dkv_error_set(DKV_EINVAL, "key is NULL but its length is %lu",
                             (unsigned long)key_len);
    }
    if (key_len == 0 && !allow_empty) {
        return dkv_error_set(DKV_EINVAL, "key is empty");
    }
    if (key_len > DKV_MAX_KEY) {
        return dkv_error_set(DKV_ETOOLARGE,
                             "key is %lu bytes; the limit is %d",
                             (unsigned long)key_len, DKV_MAX_KEY);
    }
    return DKV_OK;
}

/* See client.h. */
dkv_status_t
dkv_check_value(const void *value, size_t value_len, size_t max_value)
{
    if (value == NULL && value_len > 0) {
        return dkv_error_set(DKV_EINVAL,
                             "value is NULL but its length is %lu",
                             (unsigned long)value_len);
    }
    if (max_value > 0 && value_len > max_value) {
        return dkv_error_set(DKV_ETOOLARGE,
                             "value is %lu bytes; the limit is %lu",
                             (unsigned long)value_len,
                             (unsigned long)max_value);
    }
    return DKV_OK;
}

/* See client.h. */
dkv_status_t
dkv_check_put_opts(const dkv_put_opts_t *opts)
{
    size_t i, len;

    if (opts == NULL) {
        return DKV_OK;
    }
    if (opts->ttl_ms < 0) {
        return dkv_error_set(DKV_EINVAL, "ttl_ms is negative (%lld)",
                             (long long)opts->ttl_ms);
    }
    if (opts->entity != NULL) {
        len = strlen(opts->entity);
        if (len > DKV_MAX_ENTITY) {
            return dkv_error_set(DKV_ETOOLARGE,
                                 "entity is %lu bytes; the limit is %d",
                                 (unsigned long)len, DKV_MAX_ENTITY);
        }
    }
    if (opts->content_type != NULL) {
        len = strlen(opts->content_type);
        if (len > DKV_MAX_CONTENT_TYPE) {
            return dkv_error_set(DKV_ETOOLARGE,
                                 "content type is %lu bytes; the limit is %d",
                                 (unsigned long)len, DKV_MAX_CONTENT_TYPE);
        }
    }
    if (opts->nlabels > 0 && opts->labels == NULL) {
        return dkv_error_set(DKV_EINVAL, "labels is NULL but nlabels is %lu",
                             (unsigned long)opts->nlabels);
    }
    if (opts->nlabels > DKV_MAX_LABELS) {
        return dkv_error_set(DKV_ETOOLARGE, "%lu labels; the limit is %d",
                             (unsigned long)opts->nlabels, DKV_MAX_LABELS);
    }
    for (i = 0; i < opts->nlabels; i++) {
        const dkv_label_t *l = &opts->labels[i];

        if (l->name == NULL || l->name[0] == '\0') {
            return dkv_error_set(DKV_EINVAL, "label %lu has no name",
                                 (unsigned long)i);
        }
        if (l->value == NULL) {
            return dkv_error_set(DKV_EINVAL, "label \"%.64s\" has no value",
                                 l->name);
        }
        len = strlen(l->name);
        if (len > DKV_MAX_LABEL_NAME) {
            return dkv_error_set(DKV_ETOOLARGE,
                                 "label name is %lu bytes; the limit is %d",
                                 (unsigned long)len, DKV_MAX_LABEL_NAME);
        }
        len = strlen(l->value);
        if (l->indexed && len > DKV_MAX_LABEL_VALUE) {
            return dkv_error_set(DKV_ETOOLARGE,
                                 "value of indexed label \"%s\" is %lu bytes;"
                                 " the limit is %d", l->name,
                                 (unsigned long)len, DKV_MAX_LABEL_VALUE);
        }
    }
    return DKV_OK;
}

/* See client.h. */
dkv_status_t
dkv_check_put(const void *key, size_t key_len, const void *value,
              size_t value_len, const dkv_put_opts_t *opts,
              size_t max_value)
{
    CHECK(dkv_check_key(key, key_len, 0));
    CHECK(dkv_check_value(value, value_len, max_value));
    return dkv_check_put_opts(opts);
}

/* See client.h. */
dkv_status_t
dkv_check_op(const dkv_op_t *op, size_t max_value)
{
    switch (op->type) {
    case DKV_OP_PUT:
        return dkv_check_put(op->key, op->key_len, op->value, op->value_len,
                             op->put, max_value);
    case DKV_OP_DELETE:
        return dkv_check_key(op->key, op->key_len, 0);
    default:
        return dkv_error_set(DKV_EINVAL, "unknown operation type %d",
                             (int)op->type);
    }
}

static dkv_status_t
check_range(const dkv_range_t *range, const char *op)
{
    if (range == NULL) {
        return DKV_OK;
    }
    if ((range->prefix == NULL && range->prefix_len > 0)
        || (range->start == NULL && range->start_len > 0)
        || (range->end == NULL && range->end_len > 0)) {
        return dkv_error_set(DKV_EINVAL, "%s: a range bound is NULL but has"
                             " a length", op);
    }
    if (range->prefix_len > 0
        && (range->start_len > 0 || range->end_len > 0)) {
        return dkv_error_set(DKV_EINVAL, "%s: a range has a prefix and"
                             " start/end; they exclude each other", op);
    }
    return DKV_OK;
}

static dkv_status_t
check_counter_opts(const dkv_counter_opts_t *opts, const char *op)
{
    if (opts == NULL) {
        return DKV_OK;
    }
    if (opts->ttl_ms < 0) {
        return dkv_error_set(DKV_EINVAL, "%s: ttl_ms is negative", op);
    }
    if (opts->has_max && opts->has_min && opts->min > opts->max) {
        return dkv_error_set(DKV_EINVAL, "%s: min %lld is above max %lld",
                             op, (long long)opts->min,
                             (long long)opts->max);
    }
    return DKV_OK;
}

static dkv_status_t
check_delete_opts(const dkv_delete_opts_t *opts)
{
    (void)opts;
    return DKV_OK;
}

/* ============================================================= registry */

/* The directories open in this process.  Tiny and rarely touched, so a
 * spin lock on an APR atomic guards it (no mutex to create first). */
typedef struct reg_entry {
    struct reg_entry *next;
    char *path;
    int has_ident;
    apr_dev_t device;
    apr_ino_t inode;
} reg_entry_t;

static reg_entry_t *registry;
static volatile apr_uint32_t registry_lock;

static void
registry_acquire(void)
{
    while (apr_atomic_cas32(&registry_lock, 1, 0) != 0) {
        apr_thread_yield();
    }
}

static void
registry_release(void)
{
    apr_atomic_set32(&registry_lock, 0);
}

/* Claims PATH for a handle; DKV_EINVAL when it is already open. */
static dkv_status_t
registry_claim(const char *path, apr_pool_t *pool)
{
    apr_finfo_t fi;
    reg_entry_t *e, *n;
    int has_ident = 0;

    apr_status_t rv = apr_stat(&fi, path, APR_FINFO_IDENT, pool);

    if (rv == APR_SUCCESS || rv == APR_INCOMPLETE) {
        has_ident = (fi.valid & APR_FINFO_IDENT) == APR_FINFO_IDENT;
    }
    n = dkv_calloc(1, sizeof(*n));
    if (n == NULL || (n->path = dkv_strdup(path)) == NULL) {
        dkv_free(n);
        return dkv_error_set(APR_ENOMEM, "dkv_open: out of memory");
    }
    n->has_ident = has_ident;
    if (has_ident) {
        n->device = fi.device;
        n->inode = fi.inode;
    }
    registry_acquire();
    for (e = registry; e != NULL; e = e->next) {
        if (strcmp(e->path, path) == 0
            || (has_ident && e->has_ident && e->device == n->device
                && e->inode == n->inode)) {
            registry_release();
            dkv_free(n->path);
            dkv_free(n);
            return dkv_error_set(DKV_EINVAL, "dkv_open: %s is already open"
                                 " in this process (share one handle)",
                                 path);
        }
    }
    n->next = registry;
    registry = n;
    registry_release();
    return DKV_OK;
}

static void
registry_drop(const char *path)
{
    reg_entry_t **pe, *e;

    registry_acquire();
    for (pe = &registry; (e = *pe) != NULL; pe = &e->next) {
        if (strcmp(e->path, path) == 0) {
            *pe = e->next;
            dkv_free(e->path);
            dkv_free(e);
            break;
        }
    }
    registry_release();
}

/* ============================================================ open/close */

/* What dkv_open remembers for the cleanup (in the client's pool). */
typedef struct client_life {
    dkv_client_t *client;
    char *dir;         /* canonical directory, registered */
    int temporary;     /* 1: remove DIR at close */
} client_life_t;

/* The pool pre-cleanup of a handle: runs before the pool's subpools (the
 * backend's, the engine's) are destroyed, whether the pool dies through
 * dkv_close() or through its parent. */
static apr_status_t
client_cleanup(void *data)
{
    client_life_t *life = data;
    dkv_client_t *c = life->client;

    c->closed = 1;
    if (c->ops != NULL && c->state != NULL) {
        c->ops->close(c->state);
        c->state = NULL;
    }
    if (life->temporary) {
        /* The engine is closed (every file and mapping of the store is
         * released: Windows cannot remove a file that is open or mapped),
         * so the removal can succeed everywhere.  Should it fail all the
         * same (a virus scanner or indexer holding a file on Windows, a
         * permission changed behind our back), the handle is still freed
         * and its path unregistered; what could not be removed stays, and
         * the failure is not swallowed: it is left in dkv_last_error() of
         * the closing thread (dkv_close clears it first, so an empty
         * message after dkv_close means the directory is gone). */
        dkv_status_t rv = dkv_plat_rmtree(life->dir, c->pool);

        if (rv != DKV_OK) {
            dkv_error_set(rv, "dkv_close: cannot remove the temporary store"
                          " %s: %s", life->dir, dkv_strerror(rv));
        }
    }
    if (life->dir != NULL) {
        registry_drop(life->dir);
    }
    return APR_SUCCESS;
}

/* Strips trailing separators (but not a root's) and makes DIR absolute,
 * so that equal directories compare equal in the registry. */
static char *
canonical_dir(const char *dir, apr_pool_t *pool)
{
    char *abs = NULL;
    size_t len;

    if (apr_filepath_merge(&abs, NULL, dir, APR_FILEPATH_TRUENAME, pool)
        != APR_SUCCESS) {
        abs = apr_pstrdup(pool, dir);
    }
    len = strlen(abs);
    while (len > 1 && (abs[len - 1] == '/' || abs[len - 1] == '\\')
           && abs[len - 2] != ':') {
        abs[--len] = '\0';
    }
    return abs;
}

/* apr_terminate under the lock apr_initialize was called under. */
static void
terminate_apr(void)
{
    dkv_plat_global_lock();
    apr_terminate();
    dkv_plat_global_unlock();
}

/* See dkv/client.h. */
dkv_status_t
dkv_open(dkv_client_t **client, const char *address,
         const dkv_open_opts_t *opts, apr_pool_t *pool)
{
    static const char op[] = "dkv_open";
    dkv_open_opts_t o;
    dkv_client_t *c;
    client_life_t *life;
    apr_pool_t *cp;
    const char *path;
    char *dir = NULL;
    int temporary, remote = 0, own_apr = 0;
    dkv_status_t rv;

    dkv_error_clear();
    CHECK_NULL(client, op, "client");
    *client = NULL;
    CHECK_NULL(address, op, "address");
    if (opts != NULL) {
        o = *opts;
    }
    else {
        memset(&o, 0, sizeof(o));
    }
    if (o.max_value > DKV_LIMIT_MAX_VALUE) {
        return dkv_error_set(DKV_EINVAL, "%s: max_value %lu is above the"
                             " limit %lu", op, (unsigned long)o.max_value,
                             (unsigned long)DKV_LIMIT_MAX_VALUE);
    }
    if (o.clock == NULL && o.clock_baton != NULL) {
        return dkv_error_set(DKV_EINVAL, "%s: clock_baton without clock",
                             op);
    }

    if (strncmp(address, "inproc:", 7) == 0) {
        path = address + 7;
        temporary = path[0] == '\0';
    }
    else if (strncmp(address, "dkv://", 6) == 0) {
        path = NULL;
        temporary = 0;
        remote = 1;
    }
    else {
        return dkv_error_set(DKV_EINVAL, "%s: \"%.200s\": unknown address"
                             " scheme (expected \"inproc:PATH\","
                             " \"inproc:\" or \"dkv://HOST:PORT/STORE\")",
                             op, address);
    }

    if (pool == NULL) {
        /* APR counts its initializations without a lock. */
        dkv_plat_global_lock();
        rv = apr_initialize();
        dkv_plat_global_unlock();
        if (rv != APR_SUCCESS) {
            return dkv_error_set(rv, "%s: apr_initialize failed: %s", op,
                                 dkv_strerror(rv));
        }
        own_apr = 1;
    }
    rv = apr_pool_create(&cp, pool);
    if (rv != APR_SUCCESS) {
        if (own_apr) {
            terminate_apr();
        }
        return dkv_error_set(rv, "%s: cannot create a pool", op);
    }
    c = apr_pcalloc(cp, sizeof(*c));
    c->pool = cp;
    c->own_apr = own_apr;

    if (remote) {
        /* No directory and no registry: the node owns the store. */
        rv = dkv_remote_open(&c->state, c, address, &o, cp);
        if (rv != DKV_OK) {
            goto fail;
        }
        c->ops = &dkv_remote_ops;
        life = apr_palloc(cp, sizeof(*life));
        life->client = c;
        life->dir = NULL;
        life->temporary = 0;
        apr_pool_pre_cleanup_register(cp, life, client_cleanup);
        *client = c;
        return DKV_OK;
    }

    if (temporary) {
        o.no_sync = 1;
        if (o.map_size == 0) {
            o.map_size = TEMP_MAP_SIZE;
        }
        rv = dkv_plat_mkdtemp(&dir, "dkv-", cp);
        if (rv != DKV_OK) {
            goto fail;
        }
    }
    else {
        rv = apr_dir_make_recursive(path, APR_OS_DEFAULT, cp);
        if (rv != APR_SUCCESS) {
            dkv_error_set(rv, "%s: cannot create directory %s: %s", op,
                          path, dkv_strerror(rv));
            goto fail;
        }
        dir = apr_pstrdup(cp, path);
    }
    dir = canonical_dir(dir, cp);
    c->dir = dir;

    rv = registry_claim(dir, cp);
    if (rv != DKV_OK) {
        goto fail;
    }
    rv = dkv_inproc_open(&c->state, c, dir, &o, cp);
    if (rv != DKV_OK) {
        if (dkv_last_error()[0] == '\0') {
            dkv_error_set(rv, "%s: cannot open the store in %s: %s", op,
                          dir, dkv_strerror(rv));
        }
        registry_drop(dir);
        goto fail;
    }
    c->ops = &dkv_inproc_ops;

    life = apr_palloc(cp, sizeof(*life));
    life->client = c;
    life->dir = dir;
    life->temporary = temporary;
    apr_pool_pre_cleanup_register(cp, life, client_cleanup);
    *client = c;
    return DKV_OK;

fail:
    if (temporary && dir != NULL) {
        (void)dkv_plat_rmtree(dir, cp);
    }
    apr_pool_destroy(cp);
    if (own_apr) {
        terminate_apr();
    }
    return rv;
}

/* See client.h. */
const char *
dkv_client_dir(const dkv_client_t *client)
{
    return client != NULL ? client->dir : NULL;
}

/* See dkv/client.h.  A temporary store whose directory cannot be removed
 * leaves the reason in dkv_last_error() (see client_cleanup). */
void
dkv_close(dkv_client_t *client)
{
    int own_apr;

    dkv_error_clear();
    if (client == NULL) {
        return;
    }
    own_apr = client->own_apr;
    apr_pool_destroy(client->pool);
    if (own_apr) {
        terminate_apr();
    }
}

/* See dkv/client.h. */
dkv_status_t
dkv_revision(uint64_t *revision, dkv_client_t *client)
{
    static const char op[] = "dkv_revision";

    dkv_error_clear();
    CHECK_NULL(revision, op, "revision");
    CHECK_CLIENT(client, op);
    return done(client->ops->revision(client->state, revision), op);
}

/* ======================================================= put/get/delete */

/* See dkv/client.h. */
dkv_status_t
dkv_put(dkv_result_t *res, dkv_client_t *client, const void *key,
        size_t key_len, const void *value, size_t value_len,
        const dkv_put_opts_t *opts)
{
    static const char op[] = "dkv_put";

    dkv_error_clear();
    if (res != NULL) {
        memset(res, 0, sizeof(*res));
    }
    CHECK_CLIENT(client, op);
    CHECK(dkv_check_put(key, key_len, value, value_len, opts,
                        client->ops->max_value(client->state)));
    return done(client->ops->put(client->state, res, key, key_len, value,
                                 value_len, opts), op);
}

/* See dkv/client.h. */
dkv_status_t
dkv_get(dkv_item_t **item, dkv_client_t *client, const void *key,
        size_t key_len, const dkv_get_opts_t *opts, apr_pool_t *pool)
{
    static const char op[] = "dkv_get";
    dkv_item_t *it;
    dkv_status_t rv;

    dkv_error_clear();
    CHECK_NULL(item, op, "item");
    *item = NULL;
    CHECK_NULL(pool, op, "pool");
    CHECK_CLIENT(client, op);
    CHECK(dkv_check_key(key, key_len, 0));
    it = apr_pcalloc(pool, sizeof(*it));
    rv = client->ops->get(client->state, it, key, key_len, opts, pool);
    it->status = rv;
    *item = it;
    return done(rv, op);
}

/* See dkv/client.h. */
dkv_status_t
dkv_delete(dkv_result_t *res, dkv_client_t *client, const void *key,
           size_t key_len, const dkv_delete_opts_t *opts)
{
    static const char op[] = "dkv_delete";

    dkv_error_clear();
    if (res != NULL) {
        memset(res, 0, sizeof(*res));
    }
    CHECK_CLIENT(client, op);
    CHECK(dkv_check_key(key, key_len, 0));
    CHECK(check_delete_opts(opts));
    return done(client->ops->del(client->state, res, key, key_len, opts),
                op);
}

/* See dkv/client.h. */
dkv_status_t
dkv_expire(dkv_result_t *res, dkv_client_t *client, const void *key,
           size_t key_len, int64_t ttl_ms, uint64_t lock)
{
    static const char op[] = "dkv_expire";

    dkv_error_clear();
    if (res != NULL) {
        memset(res, 0, sizeof(*res));
    }
    CHECK_CLIENT(client, op);
    CHECK(dkv_check_key(key, key_len, 0));
    if (ttl_ms < 0) {
        return dkv_error_set(DKV_EINVAL, "%s: ttl_ms is negative (%lld)",
                             op, (long long)ttl_ms);
    }
    return done(client->ops->expire(client->state, res, key, key_len,
                                    ttl_ms, lock), op);
}

/* See dkv/client.h. */
dkv_status_t
dkv_refresh(dkv_result_t *res, dkv_client_t *client, const void *key,
            size_t key_len, uint64_t lock)
{
    static const char op[] = "dkv_refresh";

    dkv_error_clear();
    if (res != NULL) {
        memset(res, 0, sizeof(*res));
    }
    CHECK_CLIENT(client, op);
    CHECK(dkv_check_key(key, key_len, 0));
    return done(client->ops->refresh(client->state, res, key, key_len,
                                     lock), op);
}

/* =========================================================== bulk/batch */

/* N within DKV_MAX_BULK: the same cap in every mode (the protocol's). */
static dkv_status_t
check_bulk(size_t n, const char *op)
{
    if (n > DKV_MAX_BULK) {
        return dkv_error_set(DKV_ETOOLARGE, "%s: %lu keys; the limit is %d",
                             op, (unsigned long)n, DKV_MAX_BULK);
    }
    return DKV_OK;
}

/* See dkv/client.h. */
dkv_status_t
dkv_put_many(dkv_result_t *results, dkv_client_t *client,
             const dkv_kv_t *kvs, size_t n, const dkv_put_opts_t *opts)
{
    static const char op[] = "dkv_put_many";

    dkv_error_clear();
    CHECK_CLIENT(client, op);
    if (kvs == NULL && n > 0) {
        return dkv_error_set(DKV_EINVAL, "%s: kvs is NULL", op);
    }
    CHECK(check_bulk(n, op));
    CHECK(dkv_check_put_opts(opts));
    if (n == 0) {
        return DKV_OK;
    }
    if (results != NULL) {
        memset(results, 0, n * sizeof(*results));
    }
    return done(client->ops->put_many(client->state, results, kvs, n, opts),
                op);
}

/* See dkv/client.h. */
dkv_status_t
dkv_get_many(dkv_item_t **items, dkv_client_t *client,
             const dkv_key_t *keys, size_t n, const dkv_get_opts_t *opts,
             apr_pool_t *pool)
{
    static const char op[] = "dkv_get_many";
    dkv_item_t *its;
    dkv_status_t rv;

    dkv_error_clear();
    CHECK_NULL(items, op, "items");
    *items = NULL;
    CHECK_NULL(pool, op, "pool");
    CHECK_CLIENT(client, op);
    if (keys == NULL && n > 0) {
        return dkv_error_set(DKV_EINVAL, "%s: keys is NULL", op);
    }
    CHECK(check_bulk(n, op));
    its = apr_pcalloc(pool, (n ? n : 1) * sizeof(*its));
    if (n == 0) {
        *items = its;
        return DKV_OK;
    }
    rv = client->ops->get_many(client->state, its, keys, n, opts, pool);
    if (rv == DKV_OK) {
        *items = its;
    }
    return done(rv, op);
}

/* See dkv/client.h. */
dkv_status_t
dkv_delete_many(dkv_result_t *results, dkv_client_t *client,
                const dkv_key_t *keys, size_t n,
                const dkv_delete_opts_t *opts)
{
    static const char op[] = "dkv_delete_many";

    dkv_error_clear();
    CHECK_CLIENT(client, op);
    if (keys == NULL && n > 0) {
        return dkv_error_set(DKV_EINVAL, "%s: keys is NULL", op);
    }
    CHECK(check_bulk(n, op));
    CHECK(check_delete_opts(opts));
    if (n == 0) {
        return DKV_OK;
    }
    if (results != NULL) {
        memset(results, 0, n * sizeof(*results));
    }
    return done(client->ops->delete_many(client->state, results, keys, n,
                                         opts), op);
}

/* See dkv/client.h. */
dkv_status_t
dkv_batch(dkv_result_t *results, dkv_client_t *client, const dkv_op_t *ops,
          size_t n)
{
    static const char op[] = "dkv_batch";

    dkv_error_clear();
    CHECK_CLIENT(client, op);
    if (ops == NULL && n > 0) {
        return dkv_error_set(DKV_EINVAL, "%s: ops is NULL", op);
    }
    CHECK(check_bulk(n, op));
    if (n == 0) {
        return DKV_OK;
    }
    if (results != NULL) {
        memset(results, 0, n * sizeof(*results));
    }
    return done(client->ops->batch(client->state, results, ops, n), op);
}

/* ====================================================== clear/scan/count */

static const dkv_range_t everything;

/* See dkv/client.h. */
dkv_status_t
dkv_clear(uint64_t *deleted, dkv_client_t *client, const dkv_range_t *range)
{
    static const char op[] = "dkv_clear";

    dkv_error_clear();
    if (deleted != NULL) {
        *deleted = 0;
    }
    CHECK_CLIENT(client, op);
    CHECK(check_range(range, op));
    return done(client->ops->clear(client->state, deleted,
                                   range ? range : &everything), op);
}

/* See dkv/client.h. */
dkv_status_t
dkv_scan(dkv_page_t **page, dkv_client_t *client, const dkv_range_t *range,
         const dkv_scan_opts_t *opts, apr_pool_t *pool)
{
    static const char op[] = "dkv_scan";

    dkv_error_clear();
    CHECK_NULL(page, op, "page");
    *page = NULL;
    CHECK_NULL(pool, op, "pool");
    CHECK_CLIENT(client, op);
    CHECK(check_range(range, op));
    if (opts != NULL) {
        if (opts->limit > MAX_PAGE) {
            return dkv_error_set(DKV_EINVAL, "%s: limit %lu is above %d",
                                 op, (unsigned long)opts->limit, MAX_PAGE);
        }
        if (opts->after == NULL && opts->after_len > 0) {
            return dkv_error_set(DKV_EINVAL, "%s: after is NULL but has a"
                                 " length", op);
        }
    }
    return done(client->ops->scan(client->state, page,
                                  range ? range : &everything, opts, pool),
                op);
}

/* See dkv/client.h. */
dkv_status_t
dkv_count(uint64_t *count, dkv_client_t *client, const dkv_range_t *range)
{
    static const char op[] = "dkv_count";

    dkv_error_clear();
    CHECK_NULL(count, op, "count");
    *count = 0;
    CHECK_CLIENT(client, op);
    CHECK(check_range(range, op));
    return done(client->ops->count(client->state, count,
                                   range ? range : &everything), op);
}

/* ============================================================= counters */

/* See dkv/coord.h. */
dkv_status_t
dkv_counter_add(int64_t *previous, int64_t *current, dkv_client_t *client,
                const void *key, size_t key_len, int64_t delta,
                const dkv_counter_opts_t *opts)
{
    static const char op[] = "dkv_counter_add";

    dkv_error_clear();
    CHECK_CLIENT(client, op);
    CHECK(dkv_check_key(key, key_len, 0));
    CHECK(check_counter_opts(opts, op));
    return done(client->ops->counter_add(client->state, previous, current,
                                         key, key_len, delta, opts), op);
}

/* See dkv/coord.h. */
dkv_status_t
dkv_counter_get(int64_t *value, dkv_client_t *client, const void *key,
                size_t key_len)
{
    static const char op[] = "dkv_counter_get";

    dkv_error_clear();
    CHECK_NULL(value, op, "value");
    CHECK_CLIENT(client, op);
    CHECK(dkv_check_key(key, key_len, 0));
    return done(client->ops->counter_get(client->state, value, key,
                                         key_len), op);
}

/* See dkv/coord.h. */
dkv_status_t
dkv_counter_set(dkv_client_t *client, const void *key, size_t key_len,
                int64_t value, const dkv_counter_opts_t *opts)
{
    static const char op[] = "dkv_counter_set";

    dkv_error_clear();
    CHECK_CLIENT(client, op);
    CHECK(dkv_check_key(key, key_len, 0));
    CHECK(check_counter_opts(opts, op));
    return done(client->ops->counter_set(client->state, key, key_len, value,
                                         opts), op);
}

/* =============================================================== leases */

/* See dkv/coord.h. */
dkv_status_t
dkv_lease_grant(uint64_t *lease, dkv_client_t *client, int64_t ttl_ms)
{
    static const char op[] = "dkv_lease_grant";

    dkv_error_clear();
    CHECK_NULL(lease, op, "lease");
    *lease = 0;
    CHECK_CLIENT(client, op);
    if (ttl_ms < DKV_MIN_LEASE_TTL || ttl_ms > DKV_MAX_LEASE_TTL) {
        return dkv_error_set(DKV_EINVAL, "%s: ttl_ms %lld is outside"
                             " [%d, %lld]", op, (long long)ttl_ms,
                             DKV_MIN_LEASE_TTL,
                             (long long)DKV_MAX_LEASE_TTL);
    }
    return done(client->ops->lease_grant(client->state, lease, ttl_ms), op);
}

/* See dkv/coord.h. */
dkv_status_t
dkv_lease_keepalive(int64_t *remaining_ms, dkv_client_t *client,
                    uint64_t lease)
{
    static const char op[] = "dkv_lease_keepalive";

    dkv_error_clear();
    CHECK_CLIENT(client, op);
    return done(client->ops->lease_keepalive(client->state, remaining_ms,
                                             lease), op);
}

/* See dkv/coord.h. */
dkv_status_t
dkv_lease_revoke(uint64_t *keys_deleted, dkv_client_t *client,
                 uint64_t lease)
{
    static const char op[] = "dkv_lease_revoke";

    dkv_error_clear();
    if (keys_deleted != NULL) {
        *keys_deleted = 0;
    }
    CHECK_CLIENT(client, op);
    return done(client->ops->lease_revoke(client->state, keys_deleted,
                                          lease), op);
}

/* See dkv/coord.h. */
dkv_status_t
dkv_lease_info(dkv_lease_info_t *info, dkv_client_t *client, uint64_t lease)
{
    static const char op[] = "dkv_lease_info";

    dkv_error_clear();
    CHECK_NULL(info, op, "info");
    memset(info, 0, sizeof(*info));
    CHECK_CLIENT(client, op);
    return done(client->ops->lease_info(client->state, info, lease), op);
}

/* ================================================================ locks */

/* See dkv/coord.h. */
dkv_status_t
dkv_lock_acquire(dkv_lock_t *lock, dkv_client_t *client, const void *key,
                 size_t key_len, uint64_t lease)
{
    static const char op[] = "dkv_lock_acquire";

    dkv_error_clear();
    CHECK_NULL(lock, op, "lock");
    memset(lock, 0, sizeof(*lock));
    CHECK_CLIENT(client, op);
    CHECK(dkv_check_key(key, key_len, 0));
    return done(client->ops->lock_acquire(client->state, lock, key, key_len,
                                          lease), op);
}

/* See dkv/coord.h. */
dkv_status_t
dkv_lock_release(dkv_client_t *client, const void *key, size_t key_len,
                 uint64_t token)
{
    static const char op[] = "dkv_lock_release";

    dkv_error_clear();
    CHECK_CLIENT(client, op);
    CHECK(dkv_check_key(key, key_len, 0));
    return done(client->ops->lock_release(client->state, key, key_len,
                                          token), op);
}

/* ============================================================== watches */

/* See dkv/watch.h. */
dkv_status_t
dkv_watch_start(dkv_watch_t **watch, dkv_client_t *client, const void *key,
                size_t key_len, const dkv_watch_opts_t *opts,
                dkv_watch_cb_t *callback, void *baton)
{
    static const char op[] = "dkv_watch_start";
    static const dkv_watch_opts_t defaults;

    dkv_error_clear();
    CHECK_NULL(watch, op, "watch");
    *watch = NULL;
    CHECK_NULL(callback, op, "callback");
    CHECK_CLIENT(client, op);
    if (opts == NULL) {
        opts = &defaults;
    }
    CHECK(dkv_check_key(key, key_len, opts->prefix));
    if (opts->include_snapshot && opts->start_revision != 0) {
        return dkv_error_set(DKV_EINVAL, "%s: include_snapshot and"
                             " start_revision exclude each other", op);
    }
    return done(client->ops->watch_start(client->state, watch, key, key_len,
                                         opts, callback, baton), op);
}

/* See dkv/watch.h. */
void
dkv_watch_stop(dkv_watch_t *watch)
{
    dkv_client_t *c;

    dkv_error_clear();
    if (watch == NULL) {
        return;
    }
    c = watch->client;
    c->ops->watch_stop(c->state, watch);
}

/* ========================================================= transactions */

static dkv_status_t
check_txn(const dkv_txn_t *txn, const char *op)
{
    if (txn == NULL) {
        return dkv_error_set(DKV_EINVAL, "%s: txn is NULL", op);
    }
    return check_client(dkv_txn_client(txn), op);
}

/* See dkv/txn.h. */
dkv_status_t
dkv_txn_begin(dkv_txn_t **txn, dkv_client_t *client, apr_pool_t *pool)
{
    static const char op[] = "dkv_txn_begin";

    dkv_error_clear();
    CHECK_NULL(txn, op, "txn");
    *txn = NULL;
    CHECK_CLIENT(client, op);
    return done(dkv_txn_do_begin(txn, client, pool ? pool : client->pool),
                op);
}

/* See dkv/txn.h. */
dkv_status_t
dkv_txn_get(dkv_item_t **item, dkv_txn_t *txn, const void *key,
            size_t key_len, apr_pool_t *pool)
{
    static const char op[] = "dkv_txn_get";
    dkv_item_t *it;
    dkv_status_t rv;

    dkv_error_clear();
    CHECK_NULL(item, op, "item");
    *item = NULL;
    CHECK_NULL(pool, op, "pool");
    CHECK(check_txn(txn, op));
    CHECK(dkv_check_key(key, key_len, 0));
    it = apr_pcalloc(pool, sizeof(*it));
    rv = dkv_txn_do_get(it, txn, key, key_len, pool);
    it->status = rv;
    *item = it;
    return done(rv, op);
}

/* See dkv/txn.h. */
dkv_status_t
dkv_txn_put(dkv_txn_t *txn, const void *key, size_t key_len,
            const void *value, size_t value_len, const dkv_put_opts_t *opts)
{
    static const char op[] = "dkv_txn_put";
    dkv_client_t *c;

    dkv_error_clear();
    CHECK(check_txn(txn, op));
    c = dkv_txn_client(txn);
    CHECK(dkv_check_put(key, key_len, value, value_len, opts,
                        c->ops->max_value(c->state)));
    return done(dkv_txn_do_put(txn, key, key_len, value, value_len, opts),
                op);
}

/* See dkv/txn.h. */
dkv_status_t
dkv_txn_delete(dkv_txn_t *txn, const void *key, size_t key_len)
{
    static const char op[] = "dkv_txn_delete";

    dkv_error_clear();
    CHECK(check_txn(txn, op));
    CHECK(dkv_check_key(key, key_len, 0));
    return done(dkv_txn_do_delete(txn, key, key_len), op);
}

/* See dkv/txn.h. */
dkv_status_t
dkv_txn_commit(uint64_t *revision, dkv_txn_t *txn)
{
    static const char op[] = "dkv_txn_commit";
    dkv_status_t rv;

    dkv_error_clear();
    if (revision != NULL) {
        *revision = 0;
    }
    CHECK_NULL(txn, op, "txn");
    rv = check_client(dkv_txn_client(txn), op);
    if (rv != DKV_OK) {
        dkv_txn_do_rollback(txn);
        return rv;
    }
    return done(dkv_txn_do_commit(revision, txn), op);
}

/* See dkv/txn.h. */
void
dkv_txn_rollback(dkv_txn_t *txn)
{
    dkv_error_clear();
    if (txn != NULL) {
        dkv_txn_do_rollback(txn);
    }
}

/* =============================================================== search */

/* See dkv/search.h. */
dkv_status_t
dkv_search(dkv_page_t **page, dkv_client_t *client, const dkv_query_t *query,
           const dkv_search_opts_t *opts, apr_pool_t *pool)
{
    static const char op[] = "dkv_search";

    dkv_error_clear();
    CHECK_NULL(page, op, "page");
    *page = NULL;
    CHECK_NULL(pool, op, "pool");
    CHECK_NULL(query, op, "query");
    CHECK_CLIENT(client, op);
    if (query->entity == NULL || query->entity[0] == '\0') {
        return dkv_error_set(DKV_EINVAL, "%s: the query has no entity", op);
    }
    if (opts != NULL) {
        if (opts->page_size > MAX_PAGE) {
            return dkv_error_set(DKV_EINVAL, "%s: page_size %lu is above"
                                 " %d", op, (unsigned long)opts->page_size,
                                 MAX_PAGE);
        }
        if (opts->cursor == NULL && opts->cursor_len > 0) {
            return dkv_error_set(DKV_EINVAL, "%s: cursor is NULL but has a"
                                 " length", op);
        }
    }
    return done(client->ops->search(client->state, page, query, opts, pool),
                op);
}
