/*
 * exec.c -- the public operations' semantics on engine contexts, shared by
 * the in-process backend and dkv-node's request service (see exec.h).
 */
#include <string.h>

#include <apr_strings.h>

#include "common/status.h"
#include "client/client.h"
#include "client/exec.h"

/* Page size of a watch's snapshot scan. */
#define SNAPSHOT_PAGE 10000

/* See exec.h. */
int
dkv_exec_is_logical(dkv_status_t rv)
{
    return rv == DKV_OK || rv == DKV_ENOTFOUND || rv == DKV_ECONFLICT
           || rv == DKV_ELOCKED || rv == DKV_EINVAL || rv == DKV_ETOOLARGE
           || rv == DKV_ERANGE;
}

/* See exec.h. */
int
dkv_exec_watch_matches(const void *key, size_t key_len, int prefix,
                       const dkv_event_t *ev)
{
    if (prefix) {
        return ev->key_len >= key_len
               && (key_len == 0 || memcmp(ev->key, key, key_len) == 0);
    }
    return ev->key_len == key_len && memcmp(ev->key, key, key_len) == 0;
}

/* Records a bulk item's status; returns 1 when the context is poisoned
 * and the call must stop. */
static int
bulk_status(dkv_result_t *results, size_t i, dkv_status_t rv)
{
    if (results != NULL) {
        results[i].status = rv;
    }
    return !dkv_exec_is_logical(rv);
}

/* See exec.h. */
dkv_status_t
dkv_exec_put_many(dkv_result_t *results, dkv_eng_write_t *w,
                  const dkv_kv_t *kvs, size_t n, const dkv_put_opts_t *opts,
                  size_t max_value)
{
    size_t i;
    dkv_status_t rv;

    for (i = 0; i < n; i++) {
        rv = dkv_check_key(kvs[i].key, kvs[i].key_len, 0);
        if (rv == DKV_OK) {
            rv = dkv_check_value(kvs[i].value, kvs[i].value_len, max_value);
        }
        if (rv == DKV_OK) {
            rv = dkv_engine_put(results ? &results[i] : NULL, w, kvs[i].key,
                                kvs[i].key_len, kvs[i].value,
                                kvs[i].value_len, opts);
        }
        if (bulk_status(results, i, rv)) {
            return rv;
        }
    }
    return DKV_OK;
}

/* See exec.h. */
dkv_status_t
dkv_exec_delete_many(dkv_result_t *results, dkv_eng_write_t *w,
                     const dkv_key_t *keys, size_t n,
                     const dkv_delete_opts_t *opts)
{
    size_t i;
    dkv_status_t rv;

    for (i = 0; i < n; i++) {
        rv = dkv_check_key(keys[i].key, keys[i].key_len, 0);
        if (rv == DKV_OK) {
            rv = dkv_engine_delete(results ? &results[i] : NULL, w,
                                   keys[i].key, keys[i].key_len, opts);
        }
        if (bulk_status(results, i, rv)) {
            return rv;
        }
    }
    return DKV_OK;
}

/* See exec.h. */
dkv_status_t
dkv_exec_batch(dkv_result_t *results, dkv_eng_write_t *w,
               const dkv_op_t *ops, size_t n, size_t max_value)
{
    size_t i;
    dkv_status_t rv;

    for (i = 0; i < n; i++) {
        dkv_result_t *res = results ? &results[i] : NULL;

        rv = dkv_check_op(&ops[i], max_value);
        if (rv == DKV_OK && ops[i].type == DKV_OP_PUT) {
            rv = dkv_engine_put(res, w, ops[i].key, ops[i].key_len,
                                ops[i].value, ops[i].value_len, ops[i].put);
        }
        else if (rv == DKV_OK) {
            rv = dkv_engine_delete(res, w, ops[i].key, ops[i].key_len,
                                   ops[i].del);
        }
        if (bulk_status(results, i, rv)) {
            return rv;
        }
    }
    return DKV_OK;
}

/* See exec.h. */
dkv_status_t
dkv_exec_get_many(dkv_item_t *items, dkv_eng_read_t *r,
                  const dkv_key_t *keys, size_t n,
                  const dkv_get_opts_t *opts, apr_pool_t *pool)
{
    size_t i;
    dkv_status_t rv;

    for (i = 0; i < n; i++) {
        rv = dkv_check_key(keys[i].key, keys[i].key_len, 0);
        if (rv == DKV_OK) {
            rv = dkv_engine_get(&items[i], r, keys[i].key, keys[i].key_len,
                                opts, pool);
        }
        else {
            items[i].key = keys[i].key;
            items[i].key_len = keys[i].key_len;
            items[i].ttl_ms = -1;
        }
        items[i].status = rv;
        if (!dkv_exec_is_logical(rv)) {
            return rv;
        }
    }
    return DKV_OK;
}

/* Hands ITEM to FN as a snapshot event at revision REV. */
static dkv_status_t
snapshot_item(const dkv_item_t *item, uint64_t rev, dkv_eng_event_fn *fn,
              void *baton)
{
    dkv_event_t ev;

    memset(&ev, 0, sizeof(ev));
    ev.type = DKV_EVENT_PUT;
    ev.key = item->key;
    ev.key_len = item->key_len;
    ev.value = item->value ? item->value : "";
    ev.value_len = item->value ? item->value_len : 0;
    ev.revision = rev;
    ev.version = item->version;
    ev.snapshot = 1;
    return fn(baton, &ev);
}

/* See exec.h. */
dkv_status_t
dkv_exec_watch_backlog(dkv_eng_read_t *r, const void *key, size_t key_len,
                       int prefix, int snapshot, uint64_t start,
                       dkv_eng_event_fn *fn, void *baton, apr_pool_t *pool)
{
    uint64_t rev = dkv_engine_read_revision(r);
    dkv_range_t range;
    dkv_scan_opts_t so;
    apr_pool_t *pp;
    dkv_status_t rv;

    if (start != 0) {
        if (start > rev) {
            return DKV_OK;
        }
        rv = dkv_engine_history(r, start, key, key_len, prefix, fn, baton);
        if (rv == DKV_ECOMPACTED && dkv_last_error()[0] == '\0') {
            dkv_error_set(rv, "dkv_watch_start: revision %llu is older"
                          " than the retained history (oldest %llu)",
                          (unsigned long long)start,
                          (unsigned long long)dkv_engine_history_oldest(r));
        }
        return rv;
    }
    if (!snapshot) {
        return DKV_OK;
    }
    if (!prefix) {
        dkv_item_t item;

        memset(&item, 0, sizeof(item));
        rv = dkv_engine_get(&item, r, key, key_len, NULL, pool);
        if (rv == DKV_OK) {
            return snapshot_item(&item, rev, fn, baton);
        }
        return rv == DKV_ENOTFOUND ? DKV_OK : rv;
    }
    memset(&range, 0, sizeof(range));
    range.prefix = key;
    range.prefix_len = key_len;
    memset(&so, 0, sizeof(so));
    so.limit = SNAPSHOT_PAGE;
    rv = apr_pool_create(&pp, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    for (;;) {
        dkv_page_t *page;
        size_t i;

        rv = dkv_engine_scan(&page, r, &range, &so, pp);
        if (rv != DKV_OK) {
            break;
        }
        for (i = 0; i < page->count && rv == DKV_OK; i++) {
            rv = snapshot_item(&page->items[i], rev, fn, baton);
        }
        if (rv != DKV_OK || !page->more || page->count == 0) {
            break;
        }
        so.after = apr_pmemdup(pool, page->next,
                               page->next_len ? page->next_len : 1);
        so.after_len = page->next_len;
        apr_pool_clear(pp);
    }
    apr_pool_destroy(pp);
    return rv;
}
