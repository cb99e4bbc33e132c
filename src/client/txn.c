/*
 * txn.c -- client-side optimistic transactions (dkv/txn.h), the same for
 * every backend.
 *
 * A transaction keeps, in a subpool of its own:
 *  - the read set: for each key read from the store, the mod_revision it
 *    had at the first read (0 when absent);
 *  - the staged operations, in order, as deep copies (keys, values and all
 *    put options, labels included);
 *  - for each staged key, which staged operation is its last, so reads
 *    see the transaction's own writes.
 * Commit hands the read set (as compares) and the operations to the
 * backend's txn_commit, which applies all or nothing.
 *
 * A read of a key the transaction has put returns an item built from the
 * staged put: its value, TTL (ttl_ms; expires_at 0), lease, entity,
 * labels and content type; revisions and created_at 0 (not known before
 * commit); version the version the key will have after commit when the
 * transaction knows it (it read the key, or deleted it first), else 0.
 */
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "common/status.h"
#include "client/client.h"

/* What the first read of a key saw. */
typedef struct txn_read {
    uint64_t mod_revision;     /* 0: absent */
    uint64_t version;          /* 0: absent */
} txn_read_t;

/* The last staged operation on a key. */
typedef struct txn_staged {
    int index;                 /* into txn->ops */
    uint64_t version;          /* version after commit; 0: unknown */
} txn_staged_t;

struct dkv_txn {
    dkv_client_t *client;
    apr_pool_t *pool;
    apr_hash_t *reads;         /* key bytes -> txn_read_t */
    apr_hash_t *staged;        /* key bytes -> txn_staged_t */
    apr_array_header_t *ops;   /* dkv_op_t, deep copies in POOL */
};

/* See client.h. */
dkv_client_t *
dkv_txn_client(const dkv_txn_t *txn)
{
    return txn->client;
}

/* See client.h. */
dkv_status_t
dkv_txn_do_begin(dkv_txn_t **txn, dkv_client_t *client, apr_pool_t *pool)
{
    apr_pool_t *p;
    dkv_txn_t *t;
    apr_status_t rv;

    rv = apr_pool_create(&p, pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "dkv_txn_begin: cannot create a pool");
    }
    t = apr_pcalloc(p, sizeof(*t));
    t->client = client;
    t->pool = p;
    t->reads = apr_hash_make(p);
    t->staged = apr_hash_make(p);
    t->ops = apr_array_make(p, 8, sizeof(dkv_op_t));
    *txn = t;
    return DKV_OK;
}

/* The staged operation at INDEX (APR array storage is aligned for any
 * type; the cast through void * says so to the compiler). */
static dkv_op_t *
staged_op(const dkv_txn_t *txn, size_t index)
{
    return (dkv_op_t *)(void *)txn->ops->elts + index;
}

/* A copy of LABELS (N of them) in POOL. */
static const dkv_label_t *
copy_labels(const dkv_label_t *labels, size_t n, apr_pool_t *pool)
{
    dkv_label_t *l;
    size_t i;

    if (n == 0) {
        return NULL;
    }
    l = apr_palloc(pool, n * sizeof(*l));
    for (i = 0; i < n; i++) {
        l[i].name = apr_pstrdup(pool, labels[i].name);
        l[i].value = apr_pstrdup(pool, labels[i].value);
        l[i].indexed = labels[i].indexed;
    }
    return l;
}

/* LEN bytes of P, NUL-terminated, in POOL. */
static void *
copy_bytes(const void *p, size_t len, apr_pool_t *pool)
{
    char *c = apr_palloc(pool, len + 1);

    if (len > 0) {
        memcpy(c, p, len);
    }
    c[len] = '\0';
    return c;
}

static dkv_status_t
check_room(const dkv_txn_t *txn)
{
    if (txn->ops->nelts >= DKV_MAX_TXN_OPS) {
        return dkv_error_set(DKV_ETOOLARGE, "a transaction holds at most"
                             " %d operations", DKV_MAX_TXN_OPS);
    }
    return DKV_OK;
}

/* The version KEY will have after one more put staged now. */
static uint64_t
next_version(dkv_txn_t *txn, const void *key, size_t key_len)
{
    const txn_staged_t *s = apr_hash_get(txn->staged, key, key_len);
    const txn_read_t *r;

    if (s != NULL) {
        const dkv_op_t *last = staged_op(txn, s->index);

        if (last->type == DKV_OP_DELETE) {
            return 1;
        }
        return s->version ? s->version + 1 : 0;
    }
    r = apr_hash_get(txn->reads, key, key_len);
    if (r != NULL) {
        return r->version + 1;
    }
    return 0;
}

/* Appends OP (already deep-copied) and makes it KEY's last. */
static void
stage(dkv_txn_t *txn, const dkv_op_t *op, uint64_t version)
{
    txn_staged_t *s;

    APR_ARRAY_PUSH(txn->ops, dkv_op_t) = *op;
    s = apr_hash_get(txn->staged, op->key, op->key_len);
    if (s == NULL) {
        s = apr_palloc(txn->pool, sizeof(*s));
        apr_hash_set(txn->staged, op->key, op->key_len, s);
    }
    s->index = txn->ops->nelts - 1;
    s->version = version;
}

/* See client.h. */
dkv_status_t
dkv_txn_do_put(dkv_txn_t *txn, const void *key, size_t key_len,
               const void *value, size_t value_len,
               const dkv_put_opts_t *opts)
{
    apr_pool_t *p = txn->pool;
    dkv_op_t op;
    uint64_t version;

    if (check_room(txn) != DKV_OK) {
        return DKV_ETOOLARGE;
    }
    version = next_version(txn, key, key_len);
    memset(&op, 0, sizeof(op));
    op.type = DKV_OP_PUT;
    op.key = copy_bytes(key, key_len, p);
    op.key_len = key_len;
    op.value = copy_bytes(value, value_len, p);
    op.value_len = value_len;
    if (opts != NULL) {
        dkv_put_opts_t *o = apr_palloc(p, sizeof(*o));

        *o = *opts;
        o->entity = opts->entity ? apr_pstrdup(p, opts->entity) : NULL;
        o->content_type = opts->content_type
                          ? apr_pstrdup(p, opts->content_type) : NULL;
        o->labels = copy_labels(opts->labels, opts->nlabels, p);
        op.put = o;
    }
    stage(txn, &op, version);
    return DKV_OK;
}

/* See client.h. */
dkv_status_t
dkv_txn_do_delete(dkv_txn_t *txn, const void *key, size_t key_len)
{
    dkv_op_t op;

    if (check_room(txn) != DKV_OK) {
        return DKV_ETOOLARGE;
    }
    memset(&op, 0, sizeof(op));
    op.type = DKV_OP_DELETE;
    op.key = copy_bytes(key, key_len, txn->pool);
    op.key_len = key_len;
    stage(txn, &op, 0);
    return DKV_OK;
}

/* Fills ITEM from the staged put OP, copying into POOL. */
static void
item_from_put(dkv_item_t *item, const dkv_op_t *op, uint64_t version,
              apr_pool_t *pool)
{
    const dkv_put_opts_t *o = op->put;

    memset(item, 0, sizeof(*item));
    item->status = DKV_OK;
    item->key = copy_bytes(op->key, op->key_len, pool);
    item->key_len = op->key_len;
    item->value = copy_bytes(op->value, op->value_len, pool);
    item->value_len = op->value_len;
    item->version = version;
    item->ttl_ms = -1;
    if (o != NULL) {
        if (o->ttl_ms > 0) {
            item->ttl_ms = o->ttl_ms;
        }
        item->lease = o->lease;
        item->entity = o->entity ? apr_pstrdup(pool, o->entity) : NULL;
        item->content_type = o->content_type
                             ? apr_pstrdup(pool, o->content_type) : NULL;
        item->labels = copy_labels(o->labels, o->nlabels, pool);
        item->nlabels = o->nlabels;
    }
}

/* See client.h. */
dkv_status_t
dkv_txn_do_get(dkv_item_t *item, dkv_txn_t *txn, const void *key,
               size_t key_len, apr_pool_t *pool)
{
    dkv_client_t *c = txn->client;
    const txn_staged_t *s = apr_hash_get(txn->staged, key, key_len);
    txn_read_t *r;
    dkv_status_t rv;

    if (s != NULL) {
        const dkv_op_t *op = staged_op(txn, s->index);

        if (op->type == DKV_OP_DELETE) {
            memset(item, 0, sizeof(*item));
            item->key = copy_bytes(key, key_len, pool);
            item->key_len = key_len;
            item->ttl_ms = -1;
            return dkv_error_set(DKV_ENOTFOUND, "dkv_txn_get: the key was"
                                 " deleted in this transaction");
        }
        item_from_put(item, op, s->version, pool);
        return DKV_OK;
    }

    if (apr_hash_get(txn->reads, key, key_len) == NULL
        && apr_hash_count(txn->reads) >= DKV_MAX_TXN_OPS) {
        /* Each key read is a compare of the commit: as many as ops. */
        memset(item, 0, sizeof(*item));
        item->key = copy_bytes(key, key_len, pool);
        item->key_len = key_len;
        item->ttl_ms = -1;
        return dkv_error_set(DKV_ETOOLARGE, "a transaction reads at most"
                             " %d distinct keys", DKV_MAX_TXN_OPS);
    }
    rv = c->ops->get(c->state, item, key, key_len, NULL, pool);
    if (rv != DKV_OK && rv != DKV_ENOTFOUND) {
        return rv;
    }
    if (apr_hash_get(txn->reads, key, key_len) == NULL) {
        r = apr_palloc(txn->pool, sizeof(*r));
        r->mod_revision = rv == DKV_OK ? item->mod_revision : 0;
        r->version = rv == DKV_OK ? item->version : 0;
        apr_hash_set(txn->reads, copy_bytes(key, key_len, txn->pool),
                     key_len, r);
    }
    return rv;
}

/* See client.h. */
dkv_status_t
dkv_txn_do_commit(uint64_t *revision, dkv_txn_t *txn)
{
    dkv_client_t *c = txn->client;
    dkv_txn_compare_t *cmp;
    apr_hash_index_t *hi;
    size_t n = 0;
    dkv_status_t rv;

    cmp = apr_palloc(txn->pool,
                     (apr_hash_count(txn->reads) + 1) * sizeof(*cmp));
    for (hi = apr_hash_first(txn->pool, txn->reads); hi != NULL;
         hi = apr_hash_next(hi)) {
        const void *k;
        apr_ssize_t klen;
        void *v;

        apr_hash_this(hi, &k, &klen, &v);
        cmp[n].key = k;
        cmp[n].key_len = (size_t)klen;
        cmp[n].mod_revision = ((const txn_read_t *)v)->mod_revision;
        n++;
    }
    if (n == 0 && txn->ops->nelts == 0) {
        rv = revision ? c->ops->revision(c->state, revision) : DKV_OK;
    }
    else {
        rv = c->ops->txn_commit(c->state, revision, cmp, n,
                                staged_op(txn, 0),
                                (size_t)txn->ops->nelts);
    }
    apr_pool_destroy(txn->pool);
    return rv;
}

/* See client.h. */
void
dkv_txn_do_rollback(dkv_txn_t *txn)
{
    apr_pool_destroy(txn->pool);
}
