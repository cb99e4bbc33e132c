/*
 * test_api_kv.c -- suite api_kv: the key-value calls of the public API
 * (dkv/client.h) against an "inproc:" store: put/get/delete and every put
 * option, versions and revisions, metadata, bulk calls, batches, clear,
 * scan and count, size limits, bad input, and the status helpers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include <dkv.h>

#include "apitest.h"

static apr_pool_t *
test_pool(void)
{
    return dkv_test_pool();
}

/* A fresh temporary store with default options. */
static dkv_client_t *
open_temp(void)
{
    return at_open("inproc:", NULL);
}

/* ------------------------------------------------------------------ */

static void
test_put_get_delete(void)
{
    apr_pool_t *p = test_pool();
    dkv_client_t *c = open_temp();
    dkv_result_t r1, r2, r3;
    dkv_item_t *it = NULL;
    uint64_t rev = 99;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    AT_OK(dkv_revision(&rev, c));
    CU_ASSERT_EQUAL(rev, 0);

    memset(&r1, 0xff, sizeof r1);
    AT_OK(at_put(&r1, c, "hello", "world", NULL));
    CU_ASSERT_EQUAL(r1.status, DKV_OK);
    CU_ASSERT_EQUAL(r1.mutated, 1);
    CU_ASSERT_EQUAL(r1.is_update, 0);
    CU_ASSERT_EQUAL(r1.version, 1);
    CU_ASSERT_EQUAL(r1.revision, 1);
    CU_ASSERT_STRING_EQUAL(dkv_last_error(), "");

    AT_OK(at_get(&it, c, "hello", p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_EQUAL(it->status, DKV_OK);
    AT_BYTES(it->key, it->key_len, "hello");
    AT_BYTES(it->value, it->value_len, "world");
    CU_ASSERT_EQUAL(((const char *)it->value)[5], '\0');
    CU_ASSERT_EQUAL(it->version, 1);
    CU_ASSERT_EQUAL(it->create_revision, r1.revision);
    CU_ASSERT_EQUAL(it->mod_revision, r1.revision);
    CU_ASSERT(it->revision >= r1.revision);
    CU_ASSERT_EQUAL(it->expires_at, 0);
    CU_ASSERT_EQUAL(it->ttl_ms, -1);
    CU_ASSERT_EQUAL(it->lease, 0);
    CU_ASSERT_PTR_NULL(it->entity);
    CU_ASSERT_PTR_NULL(it->content_type);
    CU_ASSERT_EQUAL(it->nlabels, 0);
    CU_ASSERT(it->created_at > 0);

    /* Overwrite: version +1, revision +1, is_update. */
    AT_OK(at_put(&r2, c, "hello", "again", NULL));
    CU_ASSERT_EQUAL(r2.mutated, 1);
    CU_ASSERT_EQUAL(r2.is_update, 1);
    CU_ASSERT_EQUAL(r2.version, 2);
    CU_ASSERT_EQUAL(r2.revision, r1.revision + 1);
    AT_OK(at_get(&it, c, "hello", p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    AT_BYTES(it->value, it->value_len, "again");
    CU_ASSERT_EQUAL(it->version, 2);
    CU_ASSERT_EQUAL(it->create_revision, r1.revision);
    CU_ASSERT_EQUAL(it->mod_revision, r2.revision);

    /* A change to another key advances the store revision only. */
    AT_OK(at_put(NULL, c, "other", "x", NULL));
    AT_OK(dkv_revision(&rev, c));
    CU_ASSERT_EQUAL(rev, r2.revision + 1);

    /* Delete reports the version the key had. */
    AT_OK(at_del(&r3, c, "hello"));
    CU_ASSERT_EQUAL(r3.status, DKV_OK);
    CU_ASSERT_EQUAL(r3.mutated, 1);
    CU_ASSERT_EQUAL(r3.version, 2);
    CU_ASSERT_EQUAL(r3.revision, rev + 1);

    it = NULL;
    AT_STATUS(DKV_ENOTFOUND, at_get(&it, c, "hello", p));
    CU_ASSERT_PTR_NOT_NULL(it);
    if (it != NULL) {
        CU_ASSERT_EQUAL(it->status, DKV_ENOTFOUND);
        CU_ASSERT_PTR_NULL(it->value);
    }
    AT_HAS_ERROR();
    memset(&r3, 0, sizeof r3);
    AT_STATUS(DKV_ENOTFOUND, at_del(&r3, c, "hello"));
    CU_ASSERT_EQUAL(r3.mutated, 0);

    /* Recreated: version starts again at 1, a new create revision. */
    AT_OK(at_put(&r1, c, "hello", "new", NULL));
    CU_ASSERT_EQUAL(r1.version, 1);
    CU_ASSERT_EQUAL(r1.is_update, 0);
    AT_OK(at_get(&it, c, "hello", p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_EQUAL(it->create_revision, r1.revision);

    AT_OK(dkv_revision(&rev, c));
    CU_ASSERT_EQUAL(rev, r1.revision);

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_conditional(void)
{
    apr_pool_t *p = test_pool();
    dkv_client_t *c = open_temp();
    dkv_result_t r;
    dkv_put_opts_t po;
    dkv_delete_opts_t dopt;
    uint64_t rev;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);

    /* if_absent */
    memset(&po, 0, sizeof po);
    po.if_absent = 1;
    AT_OK(at_put(&r, c, "k", "v1", &po));
    CU_ASSERT_EQUAL(r.version, 1);
    AT_OK(dkv_revision(&rev, c));
    memset(&r, 0, sizeof r);
    AT_STATUS(DKV_ECONFLICT, at_put(&r, c, "k", "v2", &po));
    AT_HAS_ERROR();
    CU_ASSERT_EQUAL(r.mutated, 0);
    CU_ASSERT(at_is(c, "k", "v1", p));
    AT_OK(dkv_revision(&r.revision, c));
    CU_ASSERT_EQUAL(r.revision, rev);

    /* if_version */
    memset(&po, 0, sizeof po);
    po.if_version = 1;
    AT_OK(at_put(&r, c, "k", "v2", &po));
    CU_ASSERT_EQUAL(r.version, 2);
    AT_STATUS(DKV_ECONFLICT, at_put(&r, c, "k", "v3", &po));
    CU_ASSERT(at_is(c, "k", "v2", p));
    po.if_version = 7;
    AT_STATUS(DKV_ECONFLICT, at_put(&r, c, "k", "v3", &po));
    po.if_version = 2;
    AT_OK(at_put(&r, c, "k", "v3", &po));
    CU_ASSERT_EQUAL(r.version, 3);
    po.if_version = 1;
    AT_STATUS(DKV_ENOTFOUND, at_put(&r, c, "missing", "x", &po));
    CU_ASSERT(at_is(c, "missing", NULL, p));

    /* delete if_version */
    memset(&dopt, 0, sizeof dopt);
    dopt.if_version = 2;
    AT_STATUS(DKV_ECONFLICT, dkv_delete(&r, c, "k", 1, &dopt));
    CU_ASSERT(at_is(c, "k", "v3", p));
    dopt.if_version = 3;
    AT_OK(dkv_delete(&r, c, "k", 1, &dopt));
    CU_ASSERT_EQUAL(r.version, 3);
    CU_ASSERT(at_is(c, "k", NULL, p));

    dkv_close(c);
    apr_pool_destroy(p);
}

static const dkv_label_t *
find_label(const dkv_item_t *it, const char *name)
{
    size_t i;

    for (i = 0; i < it->nlabels; i++) {
        if (it->labels[i].name && strcmp(it->labels[i].name, name) == 0) {
            return &it->labels[i];
        }
    }
    return NULL;
}

static void
test_metadata(void)
{
    apr_pool_t *p = test_pool();
    dkv_open_opts_t oo = at_fake_clock_opts();
    dkv_client_t *c = at_open("inproc:", &oo);
    dkv_label_t labels[2] = {
        { "city", "London", 1 },
        { "debug", "not searchable", 0 }
    };
    dkv_put_opts_t po;
    dkv_get_opts_t go;
    dkv_item_t *it = NULL;
    const dkv_label_t *l;
    uint64_t lease = 0;
    int64_t created;

    AT_FAKE_CLOCK_ONLY(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    memset(&po, 0, sizeof po);
    po.ttl_ms = 5000;
    po.entity = "customer";
    po.labels = labels;
    po.nlabels = 2;
    po.content_type = "application/json";
    AT_OK(at_put(NULL, c, "cust:1", "{\"a\":1}", &po));

    AT_OK(at_get(&it, c, "cust:1", p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_EQUAL(it->created_at, AT_T0);
    CU_ASSERT_EQUAL(it->expires_at, AT_T0 + 5000);
    CU_ASSERT_EQUAL(it->ttl_ms, 5000);
    CU_ASSERT_EQUAL(it->lease, 0);
    CU_ASSERT(it->entity != NULL && strcmp(it->entity, "customer") == 0);
    CU_ASSERT(it->content_type != NULL &&
              strcmp(it->content_type, "application/json") == 0);
    CU_ASSERT_EQUAL(it->nlabels, 2);
    l = find_label(it, "city");
    CU_ASSERT(l != NULL && l->value && strcmp(l->value, "London") == 0 &&
              l->indexed == 1);
    l = find_label(it, "debug");
    CU_ASSERT(l != NULL && l->value &&
              strcmp(l->value, "not searchable") == 0 && l->indexed == 0);

    /* Remaining lifetime follows the clock; creation time does not. */
    at_clock_advance(1000);
    AT_OK(at_get(&it, c, "cust:1", p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_EQUAL(it->ttl_ms, 4000);
    CU_ASSERT_EQUAL(it->expires_at, AT_T0 + 5000);
    CU_ASSERT_EQUAL(it->created_at, AT_T0);
    created = it->created_at;

    /* meta_only: metadata, no value. */
    memset(&go, 0, sizeof go);
    go.meta_only = 1;
    it = NULL;
    AT_OK(dkv_get(&it, c, "cust:1", 6, &go, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_PTR_NULL(it->value);
    CU_ASSERT_EQUAL(it->version, 1);
    CU_ASSERT_EQUAL(it->nlabels, 2);
    CU_ASSERT(it->entity != NULL && strcmp(it->entity, "customer") == 0);
    AT_STATUS(DKV_ENOTFOUND, dkv_get(&it, c, "nope", 4, &go, p));

    /* A put replaces all metadata; the key keeps its creation time. */
    AT_OK(at_put(NULL, c, "cust:1", "plain", NULL));
    AT_OK(at_get(&it, c, "cust:1", p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_EQUAL(it->expires_at, 0);
    CU_ASSERT_EQUAL(it->ttl_ms, -1);
    CU_ASSERT_PTR_NULL(it->entity);
    CU_ASSERT_PTR_NULL(it->content_type);
    CU_ASSERT_EQUAL(it->nlabels, 0);
    CU_ASSERT_EQUAL(it->version, 2);
    CU_ASSERT_EQUAL(it->created_at, created);

    /* lease */
    AT_OK(dkv_lease_grant(&lease, c, 10000));
    memset(&po, 0, sizeof po);
    po.lease = lease;
    AT_OK(at_put(NULL, c, "leased", "x", &po));
    AT_OK(at_get(&it, c, "leased", p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_EQUAL(it->lease, lease);
    /* Rewritten without the lease: unbound. */
    AT_OK(at_put(NULL, c, "leased", "y", NULL));
    AT_OK(at_get(&it, c, "leased", p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_EQUAL(it->lease, 0);
    po.lease = lease + 12345;
    AT_STATUS(DKV_ENOTFOUND, at_put(NULL, c, "leased2", "x", &po));
    AT_HAS_ERROR();
    CU_ASSERT(at_is(c, "leased2", NULL, p));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_put_lock_option(void)
{
    apr_pool_t *p = test_pool();
    dkv_client_t *c = open_temp();
    dkv_lock_t lk;
    dkv_put_opts_t po;
    uint64_t lease;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    AT_OK(dkv_lease_grant(&lease, c, 60000));
    AT_OK(at_put(NULL, c, "res", "v0", NULL));
    memset(&lk, 0, sizeof lk);
    AT_OK(dkv_lock_acquire(&lk, c, "res", 3, lease));
    CU_ASSERT_EQUAL(lk.acquired, 1);
    AT_STATUS(DKV_ELOCKED, at_put(NULL, c, "res", "v1", NULL));
    CU_ASSERT(at_is(c, "res", "v0", p));
    memset(&po, 0, sizeof po);
    po.lock = lk.token;
    AT_OK(at_put(NULL, c, "res", "v2", &po));
    CU_ASSERT(at_is(c, "res", "v2", p));
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_bulk(void)
{
    apr_pool_t *p = test_pool();
    dkv_client_t *c = open_temp();
    char big[DKV_MAX_KEY + 1];
    dkv_kv_t kvs[4];
    dkv_result_t res[4];
    dkv_key_t keys[4];
    dkv_item_t *items = NULL;
    dkv_put_opts_t po;
    int i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    memset(big, 'k', sizeof big);
    kvs[0] = (dkv_kv_t){ "a", 1, "1", 1 };
    kvs[1] = (dkv_kv_t){ "b", 1, "2", 1 };
    kvs[2] = (dkv_kv_t){ big, sizeof big, "3", 1 };
    kvs[3] = (dkv_kv_t){ "c", 1, "", 0 };
    memset(res, 0xee, sizeof res);
    AT_OK(dkv_put_many(res, c, kvs, 4, NULL));
    CU_ASSERT_EQUAL(res[0].status, DKV_OK);
    CU_ASSERT_EQUAL(res[1].status, DKV_OK);
    CU_ASSERT_EQUAL(res[2].status, DKV_ETOOLARGE);
    CU_ASSERT_EQUAL(res[3].status, DKV_OK);
    CU_ASSERT_EQUAL(res[0].version, 1);
    CU_ASSERT_EQUAL(res[0].mutated, 1);
    CU_ASSERT_EQUAL(res[2].mutated, 0);
    CU_ASSERT(res[1].revision > res[0].revision);
    CU_ASSERT(res[3].revision > res[1].revision);

    /* Mixed success: if_absent fails only for the existing key. */
    memset(&po, 0, sizeof po);
    po.if_absent = 1;
    kvs[0] = (dkv_kv_t){ "b", 1, "X", 1 };
    kvs[1] = (dkv_kv_t){ "d", 1, "4", 1 };
    AT_OK(dkv_put_many(res, c, kvs, 2, &po));
    CU_ASSERT_EQUAL(res[0].status, DKV_ECONFLICT);
    CU_ASSERT_EQUAL(res[1].status, DKV_OK);
    CU_ASSERT_EQUAL(res[1].is_update, 0);
    CU_ASSERT(at_is(c, "b", "2", p));
    CU_ASSERT(at_is(c, "d", "4", p));

    /* get_many: in order, each with its status. */
    keys[0] = (dkv_key_t){ "d", 1 };
    keys[1] = (dkv_key_t){ "zz", 2 };
    keys[2] = (dkv_key_t){ "a", 1 };
    keys[3] = (dkv_key_t){ "c", 1 };
    AT_OK(dkv_get_many(&items, c, keys, 4, NULL, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(items);
    CU_ASSERT_EQUAL(items[0].status, DKV_OK);
    AT_BYTES(items[0].key, items[0].key_len, "d");
    AT_BYTES(items[0].value, items[0].value_len, "4");
    CU_ASSERT_EQUAL(((const char *)items[0].value)[1], '\0');
    CU_ASSERT_EQUAL(items[1].status, DKV_ENOTFOUND);
    AT_BYTES(items[1].key, items[1].key_len, "zz");
    CU_ASSERT_PTR_NULL(items[1].value);
    CU_ASSERT_EQUAL(items[2].status, DKV_OK);
    AT_BYTES(items[2].value, items[2].value_len, "1");
    CU_ASSERT_EQUAL(items[3].status, DKV_OK);
    CU_ASSERT_EQUAL(items[3].value_len, 0);

    /* delete_many */
    keys[0] = (dkv_key_t){ "a", 1 };
    keys[1] = (dkv_key_t){ "nope", 4 };
    keys[2] = (dkv_key_t){ "b", 1 };
    AT_OK(dkv_delete_many(res, c, keys, 3, NULL));
    CU_ASSERT_EQUAL(res[0].status, DKV_OK);
    CU_ASSERT_EQUAL(res[0].version, 1);
    CU_ASSERT_EQUAL(res[1].status, DKV_ENOTFOUND);
    CU_ASSERT_EQUAL(res[2].status, DKV_OK);
    CU_ASSERT(at_is(c, "a", NULL, p));
    CU_ASSERT(at_is(c, "b", NULL, p));
    CU_ASSERT(at_is(c, "d", "4", p));

    /* Results may be NULL; NULL arrays with n > 0 are refused. */
    AT_OK(dkv_put_many(NULL, c, kvs, 2, NULL));
    AT_OK(dkv_delete_many(NULL, c, keys, 3, NULL));
    AT_STATUS(DKV_EINVAL, dkv_put_many(res, c, NULL, 2, NULL));
    AT_HAS_ERROR();
    AT_STATUS(DKV_EINVAL, dkv_get_many(&items, c, NULL, 2, NULL, p));
    AT_STATUS(DKV_EINVAL, dkv_delete_many(res, c, NULL, 2, NULL));
    AT_STATUS(DKV_EINVAL, dkv_get_many(NULL, c, keys, 2, NULL, p));

    /* A larger bulk write. */
    {
        dkv_kv_t *many = apr_palloc(p, 500 * sizeof *many);
        uint64_t n = 0;
        dkv_range_t rg = at_prefix("m:");

        for (i = 0; i < 500; i++) {
            char *k = apr_psprintf(p, "m:%04d", i);

            many[i].key = k;
            many[i].key_len = strlen(k);
            many[i].value = k;
            many[i].value_len = strlen(k);
        }
        AT_OK(dkv_put_many(NULL, c, many, 500, NULL));
        AT_OK(dkv_count(&n, c, &rg));
        CU_ASSERT_EQUAL(n, 500);
    }

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_batch(void)
{
    apr_pool_t *p = test_pool();
    dkv_client_t *c = open_temp();
    dkv_put_opts_t absent;
    dkv_op_t ops[6];
    dkv_result_t res[6];
    uint64_t rev0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    AT_OK(at_put(NULL, c, "y", "old", NULL));
    AT_OK(dkv_revision(&rev0, c));
    memset(&absent, 0, sizeof absent);
    absent.if_absent = 1;
    memset(ops, 0, sizeof ops);
    ops[0] = (dkv_op_t){ DKV_OP_PUT, "x", 1, "1", 1, NULL, NULL };
    ops[1] = (dkv_op_t){ DKV_OP_PUT, "y", 1, "2", 1, NULL, NULL };
    ops[2] = (dkv_op_t){ DKV_OP_DELETE, "missing", 7, NULL, 0, NULL, NULL };
    ops[3] = (dkv_op_t){ DKV_OP_PUT, "x", 1, "3", 1, &absent, NULL };
    ops[4] = (dkv_op_t){ DKV_OP_DELETE, "y", 1, NULL, 0, NULL, NULL };
    ops[5] = (dkv_op_t){ DKV_OP_PUT, "z", 1, "5", 1, NULL, NULL };
    memset(res, 0xee, sizeof res);
    AT_OK(dkv_batch(res, c, ops, 6));
    CU_ASSERT_EQUAL(res[0].status, DKV_OK);
    CU_ASSERT_EQUAL(res[0].is_update, 0);
    CU_ASSERT_EQUAL(res[1].status, DKV_OK);
    CU_ASSERT_EQUAL(res[1].is_update, 1);
    CU_ASSERT_EQUAL(res[1].version, 2);
    CU_ASSERT_EQUAL(res[2].status, DKV_ENOTFOUND);
    CU_ASSERT_EQUAL(res[3].status, DKV_ECONFLICT);
    CU_ASSERT_EQUAL(res[4].status, DKV_OK);
    CU_ASSERT_EQUAL(res[4].version, 2);
    CU_ASSERT_EQUAL(res[5].status, DKV_OK);
    /* In order: each successful op one revision after the previous. */
    CU_ASSERT_EQUAL(res[0].revision, rev0 + 1);
    CU_ASSERT_EQUAL(res[1].revision, rev0 + 2);
    CU_ASSERT_EQUAL(res[4].revision, rev0 + 3);
    CU_ASSERT_EQUAL(res[5].revision, rev0 + 4);
    /* Not atomic: the failures undid nothing. */
    CU_ASSERT(at_is(c, "x", "1", p));
    CU_ASSERT(at_is(c, "y", NULL, p));
    CU_ASSERT(at_is(c, "z", "5", p));

    AT_OK(dkv_batch(NULL, c, ops, 1));
    AT_STATUS(DKV_EINVAL, dkv_batch(res, c, NULL, 3));
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
put_keys(dkv_client_t *c, const char *const *keys, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        AT_OK(at_put(NULL, c, keys[i], keys[i], NULL));
    }
}

static void
test_clear(void)
{
    static const char *const keys[] = {
        "a1", "a2", "b1", "b2", "b3", "c1", "d"
    };
    apr_pool_t *p = test_pool();
    dkv_client_t *c = open_temp();
    dkv_range_t rg;
    uint64_t n = 99, rev0, rev1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    put_keys(c, keys, 7);
    AT_OK(dkv_revision(&rev0, c));

    rg = at_prefix("a");
    AT_OK(dkv_clear(&n, c, &rg));
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT(at_is(c, "a1", NULL, p));
    CU_ASSERT(at_is(c, "a2", NULL, p));
    CU_ASSERT(at_is(c, "b1", "b1", p));
    AT_OK(dkv_revision(&rev1, c));
    CU_ASSERT_EQUAL(rev1, rev0 + 2);    /* one revision per key */

    /* [b2, c1): b2 and b3, not c1. */
    rg = at_span("b2", "c1");
    AT_OK(dkv_clear(&n, c, &rg));
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT(at_is(c, "b1", "b1", p));
    CU_ASSERT(at_is(c, "b2", NULL, p));
    CU_ASSERT(at_is(c, "b3", NULL, p));
    CU_ASSERT(at_is(c, "c1", "c1", p));

    /* Empty prefix match: nothing deleted. */
    rg = at_prefix("zzz");
    AT_OK(dkv_clear(&n, c, &rg));
    CU_ASSERT_EQUAL(n, 0);

    /* A start without an end: to the last key. */
    rg = at_span("c", "");
    AT_OK(dkv_clear(&n, c, &rg));
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT(at_is(c, "b1", "b1", p));

    /* Prefix and start together are refused. */
    rg = at_prefix("b");
    rg.start = "a";
    rg.start_len = 1;
    AT_STATUS(DKV_EINVAL, dkv_clear(&n, c, &rg));
    AT_HAS_ERROR();
    CU_ASSERT(at_is(c, "b1", "b1", p));

    /* Everything. */
    put_keys(c, keys, 3);
    AT_OK(dkv_clear(&n, c, NULL));
    CU_ASSERT_EQUAL(n, 3);
    AT_OK(dkv_count(&n, c, NULL));
    CU_ASSERT_EQUAL(n, 0);
    AT_OK(dkv_clear(NULL, c, NULL));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_scan(void)
{
    static const char *const keys[] = {
        "k10", "j1", "k03", "k01", "l1", "k02", "k1"
    };
    static const char *const kpre[] = { "k01", "k02", "k03", "k1", "k10" };
    apr_pool_t *p = test_pool();
    dkv_client_t *c = open_temp();
    dkv_page_t *pg = NULL;
    dkv_range_t rg;
    dkv_scan_opts_t so;
    size_t i, seen;
    int pages;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    put_keys(c, keys, 7);

    /* All, in byte order. */
    AT_OK(dkv_scan(&pg, c, NULL, NULL, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
    CU_ASSERT_EQUAL(pg->count, 7);
    CU_ASSERT_EQUAL(pg->more, 0);
    for (i = 1; i < pg->count; i++) {
        size_t a = pg->items[i - 1].key_len, b = pg->items[i].key_len;
        int cmp = memcmp(pg->items[i - 1].key, pg->items[i].key,
                         a < b ? a : b);

        CU_ASSERT(cmp < 0 || (cmp == 0 && a < b));
    }

    /* Prefix, with values and metadata. */
    rg = at_prefix("k");
    AT_OK(dkv_scan(&pg, c, &rg, NULL, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
    CU_ASSERT_EQUAL_FATAL(pg->count, 5);
    for (i = 0; i < 5; i++) {
        AT_BYTES(pg->items[i].key, pg->items[i].key_len, kpre[i]);
        AT_BYTES(pg->items[i].value, pg->items[i].value_len, kpre[i]);
        CU_ASSERT_EQUAL(((const char *)pg->items[i].value)[
                            pg->items[i].value_len], '\0');
        CU_ASSERT_EQUAL(pg->items[i].version, 1);
        CU_ASSERT_EQUAL(pg->items[i].status, DKV_OK);
    }
    CU_ASSERT(pg->revision >= 7);

    /* Range [k02, k10). */
    rg = at_span("k02", "k10");
    AT_OK(dkv_scan(&pg, c, &rg, NULL, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
    CU_ASSERT_EQUAL_FATAL(pg->count, 3);
    AT_BYTES(pg->items[0].key, pg->items[0].key_len, "k02");
    AT_BYTES(pg->items[2].key, pg->items[2].key_len, "k1");

    /* Paging with limit 2 and the next cursor. */
    rg = at_prefix("k");
    memset(&so, 0, sizeof so);
    so.limit = 2;
    seen = 0;
    for (pages = 0; pages < 10; pages++) {
        AT_OK(dkv_scan(&pg, c, &rg, &so, p));
        CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
        CU_ASSERT(pg->count <= 2);
        for (i = 0; i < pg->count && seen < 5; i++, seen++) {
            AT_BYTES(pg->items[i].key, pg->items[i].key_len, kpre[seen]);
        }
        if (!pg->more) {
            break;
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(pg->next);
        so.after = pg->next;
        so.after_len = pg->next_len;
    }
    CU_ASSERT_EQUAL(seen, 5);
    CU_ASSERT(pages >= 2 && pages < 10);

    /* keys_only */
    memset(&so, 0, sizeof so);
    so.keys_only = 1;
    AT_OK(dkv_scan(&pg, c, &rg, &so, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
    CU_ASSERT_EQUAL_FATAL(pg->count, 5);
    for (i = 0; i < 5; i++) {
        AT_BYTES(pg->items[i].key, pg->items[i].key_len, kpre[i]);
        CU_ASSERT_PTR_NULL(pg->items[i].value);
    }

    /* Nothing matches. */
    rg = at_prefix("zz");
    AT_OK(dkv_scan(&pg, c, &rg, NULL, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
    CU_ASSERT_EQUAL(pg->count, 0);
    CU_ASSERT_EQUAL(pg->more, 0);

    /* Bad input. */
    AT_STATUS(DKV_EINVAL, dkv_scan(NULL, c, NULL, NULL, p));
    memset(&so, 0, sizeof so);
    so.limit = 10001;
    AT_STATUS(DKV_EINVAL, dkv_scan(&pg, c, NULL, &so, p));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_count(void)
{
    static const char *const keys[] = { "a1", "a2", "b1", "b2", "c" };
    apr_pool_t *p = test_pool();
    dkv_open_opts_t oo = at_fake_clock_opts();
    dkv_client_t *c = at_open("inproc:", &oo);
    dkv_put_opts_t po;
    dkv_range_t rg;
    uint64_t n = 99;

    AT_FAKE_CLOCK_ONLY(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    AT_OK(dkv_count(&n, c, NULL));
    CU_ASSERT_EQUAL(n, 0);
    put_keys(c, keys, 5);
    AT_OK(dkv_count(&n, c, NULL));
    CU_ASSERT_EQUAL(n, 5);
    rg = at_prefix("a");
    AT_OK(dkv_count(&n, c, &rg));
    CU_ASSERT_EQUAL(n, 2);
    rg = at_span("a2", "c");
    AT_OK(dkv_count(&n, c, &rg));
    CU_ASSERT_EQUAL(n, 3);

    /* Expired keys are not counted. */
    memset(&po, 0, sizeof po);
    po.ttl_ms = 1000;
    AT_OK(at_put(NULL, c, "a3", "x", &po));
    rg = at_prefix("a");
    AT_OK(dkv_count(&n, c, &rg));
    CU_ASSERT_EQUAL(n, 3);
    at_clock_advance(1001);
    AT_OK(dkv_count(&n, c, &rg));
    CU_ASSERT_EQUAL(n, 2);
    AT_OK(dkv_count(&n, c, NULL));
    CU_ASSERT_EQUAL(n, 5);
    AT_STATUS(DKV_EINVAL, dkv_count(NULL, c, NULL));

    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_sizes(void)
{
    apr_pool_t *p = test_pool();
    dkv_client_t *c = open_temp();
    dkv_client_t *small;
    dkv_open_opts_t oo;
    char key[DKV_MAX_KEY + 1];
    char *val;
    dkv_item_t *it = NULL;
    dkv_result_t r;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    memset(key, 'K', sizeof key);
    AT_OK(dkv_put(&r, c, key, DKV_MAX_KEY, "v", 1, NULL));
    AT_OK(dkv_get(&it, c, key, DKV_MAX_KEY, NULL, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_EQUAL(it->key_len, DKV_MAX_KEY);
    AT_STATUS(DKV_ETOOLARGE, dkv_put(&r, c, key, DKV_MAX_KEY + 1, "v", 1,
                                     NULL));
    AT_HAS_ERROR();
    AT_STATUS(DKV_ETOOLARGE, dkv_get(&it, c, key, DKV_MAX_KEY + 1, NULL,
                                     p));
    AT_STATUS(DKV_ETOOLARGE, dkv_delete(&r, c, key, DKV_MAX_KEY + 1,
                                        NULL));
    AT_STATUS(DKV_EINVAL, dkv_put(&r, c, "x", 0, "v", 1, NULL));
    AT_HAS_ERROR();
    AT_STATUS(DKV_EINVAL, dkv_get(&it, c, "x", 0, NULL, p));
    AT_STATUS(DKV_EINVAL, dkv_delete(&r, c, "x", 0, NULL));

    /* Default value limit: 1 MiB. */
    val = apr_palloc(p, DKV_DEFAULT_MAX_VALUE + 1);
    memset(val, 'v', DKV_DEFAULT_MAX_VALUE + 1);
    AT_OK(dkv_put(&r, c, "big", 3, val, DKV_DEFAULT_MAX_VALUE, NULL));
    AT_OK(dkv_get(&it, c, "big", 3, NULL, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_EQUAL(it->value_len, DKV_DEFAULT_MAX_VALUE);
    CU_ASSERT(it->value != NULL &&
              memcmp(it->value, val, DKV_DEFAULT_MAX_VALUE) == 0 &&
              ((const char *)it->value)[DKV_DEFAULT_MAX_VALUE] == '\0');
    AT_STATUS(DKV_ETOOLARGE, dkv_put(&r, c, "big2", 4, val,
                                     DKV_DEFAULT_MAX_VALUE + 1, NULL));
    CU_ASSERT(at_is(c, "big2", NULL, p));

    /* Zero-length value. */
    AT_OK(dkv_put(&r, c, "empty", 5, "", 0, NULL));
    AT_OK(dkv_put(&r, c, "empty2", 6, NULL, 0, NULL));
    AT_OK(dkv_get(&it, c, "empty", 5, NULL, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_EQUAL(it->value_len, 0);
    CU_ASSERT(it->value != NULL && ((const char *)it->value)[0] == '\0');
    AT_OK(dkv_get(&it, c, "empty2", 6, NULL, p));

    /* Metadata limits. */
    {
        char name[DKV_MAX_LABEL_VALUE + 2];
        char ent[DKV_MAX_ENTITY + 2];
        dkv_label_t lab[DKV_MAX_LABELS + 1];
        dkv_put_opts_t po;
        int i;

        memset(ent, 'e', sizeof ent);
        ent[DKV_MAX_ENTITY] = '\0';
        memset(&po, 0, sizeof po);
        po.entity = ent;
        AT_OK(at_put(NULL, c, "m", "v", &po));
        ent[DKV_MAX_ENTITY] = 'e';
        ent[DKV_MAX_ENTITY + 1] = '\0';
        AT_STATUS(DKV_ETOOLARGE, at_put(NULL, c, "m", "v", &po));

        memset(name, 'n', sizeof name);
        name[DKV_MAX_LABEL_VALUE + 1] = '\0';     /* 257 bytes */
        memset(&po, 0, sizeof po);
        po.entity = "e";
        lab[0] = (dkv_label_t){ "l", name, 1 };
        po.labels = lab;
        po.nlabels = 1;
        AT_STATUS(DKV_ETOOLARGE, at_put(NULL, c, "m", "v", &po));
        name[DKV_MAX_LABEL_VALUE] = '\0';         /* 256 bytes */
        AT_OK(at_put(NULL, c, "m", "v", &po));
        name[DKV_MAX_LABEL_NAME + 1] = '\0';      /* 65-byte name */
        lab[0] = (dkv_label_t){ name, "v", 1 };
        AT_STATUS(DKV_ETOOLARGE, at_put(NULL, c, "m", "v", &po));

        for (i = 0; i <= DKV_MAX_LABELS; i++) {
            lab[i].name = apr_psprintf(p, "l%d", i);
            lab[i].value = "v";
            lab[i].indexed = 1;
        }
        po.nlabels = DKV_MAX_LABELS;
        AT_OK(at_put(NULL, c, "m", "v", &po));
        po.nlabels = DKV_MAX_LABELS + 1;
        AT_STATUS(DKV_ETOOLARGE, at_put(NULL, c, "m", "v", &po));

        memset(name, 'c', sizeof name);
        name[DKV_MAX_CONTENT_TYPE + 1] = '\0';
        memset(&po, 0, sizeof po);
        po.content_type = name;
        AT_STATUS(DKV_ETOOLARGE, at_put(NULL, c, "m", "v", &po));
    }
    dkv_close(c);

    /* A small configured limit. */
    memset(&oo, 0, sizeof oo);
    oo.max_value = 100;
    small = at_open("inproc:", &oo);
    CU_ASSERT_PTR_NOT_NULL_FATAL(small);
    AT_OK(dkv_put(&r, small, "v100", 4, val, 100, NULL));
    AT_STATUS(DKV_ETOOLARGE, dkv_put(&r, small, "v101", 4, val, 101, NULL));
    AT_HAS_ERROR();
    CU_ASSERT(at_is(small, "v101", NULL, p));
    dkv_close(small);

    /* Limits outside the allowed range are refused. */
    memset(&oo, 0, sizeof oo);
    oo.max_value = (size_t)DKV_LIMIT_MAX_VALUE + 1;
    small = NULL;
    AT_STATUS(DKV_EINVAL, dkv_open(&small, "inproc:", &oo, NULL));
    CU_ASSERT_PTR_NULL(small);
    if (small != NULL) {
        dkv_close(small);
    }
    apr_pool_destroy(p);
}

static void
test_binary(void)
{
    static const char k1[] = { 'a', '\0', 'b' };
    static const char k2[] = { 'a', '\0', 'c' };
    static const char v1[] = { '\0', 'x', '\0', '\xff', '\0' };
    apr_pool_t *p = test_pool();
    dkv_client_t *c = open_temp();
    dkv_item_t *it = NULL;
    dkv_page_t *pg = NULL;
    dkv_range_t rg;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    AT_OK(dkv_put(NULL, c, k1, sizeof k1, v1, sizeof v1, NULL));
    AT_OK(dkv_put(NULL, c, k2, sizeof k2, "two", 3, NULL));
    AT_OK(dkv_get(&it, c, k1, sizeof k1, NULL, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(it);
    CU_ASSERT_EQUAL(it->key_len, sizeof k1);
    CU_ASSERT(memcmp(it->key, k1, sizeof k1) == 0);
    CU_ASSERT_EQUAL_FATAL(it->value_len, sizeof v1);
    CU_ASSERT(memcmp(it->value, v1, sizeof v1) == 0);
    CU_ASSERT_EQUAL(((const char *)it->value)[sizeof v1], '\0');
    AT_OK(dkv_get(&it, c, k2, sizeof k2, NULL, p));
    AT_STATUS(DKV_ENOTFOUND, dkv_get(&it, c, "a", 1, NULL, p));

    /* A prefix with a NUL byte. */
    memset(&rg, 0, sizeof rg);
    rg.prefix = k1;
    rg.prefix_len = 2;
    AT_OK(dkv_scan(&pg, c, &rg, NULL, p));
    CU_ASSERT_PTR_NOT_NULL_FATAL(pg);
    CU_ASSERT_EQUAL(pg->count, 2);

    dkv_close(c);
    apr_pool_destroy(p);
}

/* Scan and count refuse a range with both a prefix and a start. */
static void
rg_bad_scan_count(dkv_client_t *c, apr_pool_t *p)
{
    dkv_range_t rg = at_prefix("a");
    dkv_page_t *pg = NULL;
    uint64_t n;

    rg.start = "a";
    rg.start_len = 1;
    AT_STATUS(DKV_EINVAL, dkv_scan(&pg, c, &rg, NULL, p));
    AT_STATUS(DKV_EINVAL, dkv_count(&n, c, &rg));
    rg = at_prefix("a");
    rg.prefix = NULL;           /* a length without bytes */
    AT_STATUS(DKV_EINVAL, dkv_count(&n, c, &rg));
}

static void
test_bad_input(void)
{
    apr_pool_t *p = test_pool();
    dkv_client_t *c = open_temp();
    dkv_client_t *c2 = NULL;
    dkv_item_t *it = NULL;
    dkv_result_t r;
    dkv_page_t *pg = NULL;
    uint64_t n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);

    AT_STATUS(DKV_EINVAL, dkv_put(&r, NULL, "k", 1, "v", 1, NULL));
    AT_HAS_ERROR();
    AT_STATUS(DKV_EINVAL, dkv_get(&it, NULL, "k", 1, NULL, p));
    AT_HAS_ERROR();
    AT_STATUS(DKV_EINVAL, dkv_delete(&r, NULL, "k", 1, NULL));
    AT_STATUS(DKV_EINVAL, dkv_revision(&n, NULL));
    AT_STATUS(DKV_EINVAL, dkv_count(&n, NULL, NULL));
    AT_STATUS(DKV_EINVAL, dkv_scan(&pg, NULL, NULL, NULL, p));
    AT_STATUS(DKV_EINVAL, dkv_clear(&n, NULL, NULL));
    AT_STATUS(DKV_EINVAL, dkv_expire(&r, NULL, "k", 1, 10, 0));
    AT_STATUS(DKV_EINVAL, dkv_refresh(&r, NULL, "k", 1, 0));
    AT_STATUS(DKV_EINVAL, dkv_put_many(&r, NULL, NULL, 0, NULL));
    AT_STATUS(DKV_EINVAL, dkv_batch(&r, NULL, NULL, 0));

    /* NULL key with a length. */
    AT_STATUS(DKV_EINVAL, dkv_put(&r, c, NULL, 3, "v", 1, NULL));
    AT_HAS_ERROR();
    AT_STATUS(DKV_EINVAL, dkv_get(&it, c, NULL, 3, NULL, p));
    AT_STATUS(DKV_EINVAL, dkv_delete(&r, c, NULL, 3, NULL));
    AT_STATUS(DKV_EINVAL, dkv_expire(&r, c, NULL, 3, 10, 0));
    /* NULL value with a length. */
    AT_STATUS(DKV_EINVAL, dkv_put(&r, c, "k", 1, NULL, 3, NULL));
    AT_HAS_ERROR();
    CU_ASSERT(at_is(c, "k", NULL, p));
    /* NULL out pointers. */
    AT_STATUS(DKV_EINVAL, dkv_get(NULL, c, "k", 1, NULL, p));
    AT_HAS_ERROR();
    AT_STATUS(DKV_EINVAL, dkv_revision(NULL, c));

    /* Malformed options. */
    {
        dkv_put_opts_t po;
        dkv_label_t lab[1] = { { NULL, "v", 1 } };

        memset(&po, 0, sizeof po);
        po.ttl_ms = -1;
        AT_STATUS(DKV_EINVAL, at_put(NULL, c, "k", "v", &po));
        AT_HAS_ERROR();
        memset(&po, 0, sizeof po);
        po.nlabels = 1;         /* labels NULL */
        AT_STATUS(DKV_EINVAL, at_put(NULL, c, "k", "v", &po));
        po.labels = lab;        /* a label without a name */
        AT_STATUS(DKV_EINVAL, at_put(NULL, c, "k", "v", &po));
        lab[0] = (dkv_label_t){ "n", NULL, 1 };
        AT_STATUS(DKV_EINVAL, at_put(NULL, c, "k", "v", &po));
        CU_ASSERT(at_is(c, "k", NULL, p));
        rg_bad_scan_count(c, p);
    }

    /* A success clears the last error. */
    AT_OK(at_put(NULL, c, "k", "v", NULL));
    CU_ASSERT_STRING_EQUAL(dkv_last_error(), "");

    /* dkv_open: bad arguments. */
    AT_STATUS(DKV_EINVAL, dkv_open(NULL, "inproc:", NULL, NULL));
    AT_HAS_ERROR();
    AT_STATUS(DKV_EINVAL, dkv_open(&c2, NULL, NULL, NULL));
    CU_ASSERT_PTR_NULL(c2);
    AT_STATUS(DKV_EINVAL, dkv_open(&c2, "bogus", NULL, NULL));
    CU_ASSERT_PTR_NULL(c2);
    AT_HAS_ERROR();
    AT_STATUS(DKV_EINVAL, dkv_open(&c2, "", NULL, NULL));
    CU_ASSERT_PTR_NULL(c2);

    /* The handle is still fine. */
    CU_ASSERT(at_is(c, "k", "v", p));
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_status_helpers(void)
{
    dkv_status_t s, t;
    const char *texts[DKV_END_ERROR - DKV_START_ERROR];

    for (s = DKV_START_ERROR + 1; s < DKV_END_ERROR; s++) {
        const char *m = dkv_strerror(s);

        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT(m[0] != '\0');
        texts[s - DKV_START_ERROR] = m;
        CU_ASSERT(DKV_STATUS_IS_DKV(s));
    }
    for (s = DKV_START_ERROR + 1; s < DKV_END_ERROR; s++) {
        for (t = s + 1; t < DKV_END_ERROR; t++) {
            if (strcmp(texts[s - DKV_START_ERROR],
                       texts[t - DKV_START_ERROR]) == 0) {
                fprintf(stderr, "\n  same text for %d and %d: %s\n", s, t,
                        texts[s - DKV_START_ERROR]);
                CU_FAIL("two statuses share a text");
            }
        }
    }
    CU_ASSERT_PTR_NOT_NULL(dkv_strerror(DKV_OK));
    CU_ASSERT_PTR_NOT_NULL(dkv_strerror(APR_ENOENT));
    CU_ASSERT(dkv_strerror(APR_ENOENT)[0] != '\0');
    CU_ASSERT_PTR_NOT_NULL(dkv_strerror(DKV_END_ERROR + 1000));
    CU_ASSERT_PTR_NOT_NULL(dkv_strerror(-1));
    CU_ASSERT(!DKV_STATUS_IS_DKV(DKV_OK));
    CU_ASSERT(!DKV_STATUS_IS_DKV(DKV_END_ERROR));
    CU_ASSERT(!DKV_STATUS_IS_DKV(APR_ENOENT));
    CU_ASSERT_EQUAL(DKV_START_ERROR, APR_OS_START_USERERR);

    CU_ASSERT(DKV_STATUS_IS_RETRYABLE(DKV_ECONFLICT));
    CU_ASSERT(DKV_STATUS_IS_RETRYABLE(DKV_ELOCKED));
    CU_ASSERT(DKV_STATUS_IS_RETRYABLE(DKV_EUNAVAILABLE));
    CU_ASSERT(DKV_STATUS_IS_RETRYABLE(DKV_ETRANSPORT));
    CU_ASSERT(DKV_STATUS_IS_RETRYABLE(DKV_ETIMEOUT));
    CU_ASSERT(DKV_STATUS_IS_RETRYABLE(DKV_ENOTLEADER));
    CU_ASSERT(!DKV_STATUS_IS_RETRYABLE(DKV_OK));
    CU_ASSERT(!DKV_STATUS_IS_RETRYABLE(DKV_ENOTFOUND));
    CU_ASSERT(!DKV_STATUS_IS_RETRYABLE(DKV_EINVAL));
    CU_ASSERT(!DKV_STATUS_IS_RETRYABLE(DKV_ETOOLARGE));
    CU_ASSERT(!DKV_STATUS_IS_RETRYABLE(DKV_ERANGE));
    CU_ASSERT(!DKV_STATUS_IS_RETRYABLE(DKV_ECORRUPT));
    CU_ASSERT(!DKV_STATUS_IS_RETRYABLE(DKV_ECLOSED));
    CU_ASSERT(DKV_STATUS_IS_NOTFOUND(DKV_ENOTFOUND));
    CU_ASSERT(DKV_STATUS_IS_CONFLICT(DKV_ECONFLICT));

    CU_ASSERT_PTR_NOT_NULL_FATAL(dkv_version());
    CU_ASSERT_STRING_EQUAL(dkv_version(), DKV_VERSION_STRING);
}

/* ------------------------------------------------------------------ */

static void
test_scan_large(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_temp();
    dkv_kv_t *kvs = apr_palloc(p, 1500 * sizeof *kvs);
    dkv_scan_opts_t so;
    dkv_page_t *pg = NULL;
    dkv_range_t rg = at_prefix("L");
    size_t i, total = 0;
    int pages, order_ok = 1;
    long last = -1;

    DKV_ASSERT_NOT_NULL(c);
    for (i = 0; i < 1500; i++) {
        char *k = apr_psprintf(p, "L%05lu", (unsigned long)i);

        kvs[i] = (dkv_kv_t){ k, strlen(k), "v", 1 };
    }
    AT_OK(dkv_put_many(NULL, c, kvs, 1500, NULL));
    /* The default page holds 1000. */
    AT_OK(dkv_scan(&pg, c, &rg, NULL, p));
    DKV_ASSERT_NOT_NULL(pg);
    DKV_EXPECT_UINT_EQ(pg->count, 1000);
    DKV_EXPECT_INT_EQ(pg->more, 1);

    /* Pages of 400; deleting keys already returned and keys ahead. */
    memset(&so, 0, sizeof so);
    so.limit = 400;
    for (pages = 0; pages < 20; pages++) {
        AT_OK(dkv_scan(&pg, c, &rg, &so, p));
        DKV_ASSERT_NOT_NULL(pg);
        for (i = 0; i < pg->count; i++) {
            long n = strtol((const char *)pg->items[i].key + 1, NULL, 10);

            if (n <= last) {
                order_ok = 0;
            }
            last = n;
            total++;
        }
        if (pages == 0) {
            AT_OK(at_del(NULL, c, "L00000"));   /* behind the cursor */
            AT_OK(at_del(NULL, c, "L01499"));   /* ahead of it */
        }
        if (!pg->more) {
            break;
        }
        so.after = pg->next;
        so.after_len = pg->next_len;
    }
    DKV_EXPECT_TRUE(order_ok);
    DKV_EXPECT_UINT_EQ(total, 1499);
    dkv_close(c);
    apr_pool_destroy(p);
}

/* Registers the api_kv suite. */
void
test_api_kv_register(void)
{
    CU_pSuite s = dkv_test_add_suite("api_kv", NULL, NULL);

    DKV_TEST_ADD(s, test_put_get_delete);
    DKV_TEST_ADD(s, test_conditional);
    DKV_TEST_ADD(s, test_metadata);
    DKV_TEST_ADD(s, test_put_lock_option);
    DKV_TEST_ADD(s, test_bulk);
    DKV_TEST_ADD(s, test_batch);
    DKV_TEST_ADD(s, test_clear);
    DKV_TEST_ADD(s, test_scan);
    DKV_TEST_ADD(s, test_scan_large);
    DKV_TEST_ADD(s, test_count);
    DKV_TEST_ADD(s, test_sizes);
    DKV_TEST_ADD(s, test_binary);
    DKV_TEST_ADD(s, test_bad_input);
    DKV_TEST_ADD(s, test_status_helpers);
}
