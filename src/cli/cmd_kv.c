/*
 * cmd_kv.c -- the key-value commands of `dkv`: Get-DkvItem(s),
 * Set-DkvItem(s), Remove-DkvItem(s), Refresh-DkvItem,
 * Set-DkvItemExpiration, Get-DkvItemMetadata, Test-DkvItem.  A missing key
 * is not an error for reads and removes (Exists / Deleted = False).
 */
#include "cli/cli.h"
#include "common/alloc.h"

#include <stdio.h>
#include <string.h>

/* Remaining TTL in whole seconds (rounded up), or null without one. */
static json_t *
ttl_sec(const dkv_item_t *it)
{
    if (it == NULL || it->ttl_ms < 0 || it->expires_at == 0) {
        return json_null();
    }
    return json_integer((json_int_t)((it->ttl_ms + 999) / 1000));
}

/* Sets "Revision" and "Version" on O: the given numbers when KNOWN, else
 * null (a missing key, a failed write). */
static void
set_rev_ver(json_t *o, int known, uint64_t revision, uint64_t version)
{
    json_object_set_new(o, "Revision", known
                        ? json_integer((json_int_t)revision) : json_null());
    json_object_set_new(o, "Version", known
                        ? json_integer((json_int_t)version) : json_null());
}

/* The row of Get-DkvItem(s). */
static json_t *
item_row(const char *store, const char *key, const dkv_item_t *it,
         dkv_status_t rv)
{
    json_t *o = cli_result(store);
    int exists = rv == DKV_OK;

    json_object_set_new(o, "Key", json_string(key));
    json_object_set_new(o, "Exists", json_boolean(exists));
    json_object_set_new(o, "Value", exists
                        ? cli_json_bytes(it->value, it->value_len)
                        : json_null());
    set_rev_ver(o, exists, exists ? it->mod_revision : 0,
                exists ? it->version : 0);
    json_object_set_new(o, "TtlSec", exists ? ttl_sec(it) : json_null());
    cli_set_outcome(o, rv == DKV_ENOTFOUND ? DKV_OK : rv);
    return o;
}

/* Finishes a command with one result object: prints it, logs and
 * reports a failure. */
static int
finish(cli_ctx_t *ctx, const cli_session_t *s, json_t *o, dkv_status_t rv,
       const char *key)
{
    cli_print(ctx, o);
    if (rv != DKV_OK) {
        const char *msg = cli_status_text(rv, ctx->pool);
        cli_error(ctx, "%s%s%s", key != NULL ? key : "",
                  key != NULL ? ": " : "", msg);
        cli_log(s->store, ctx->pool, "ERROR %s %s: %s", ctx->cmd->name,
                key != NULL ? key : "-", msg);
        return cli_exit_for(rv);
    }
    return CLI_EXIT_OK;
}

int
cli_cmd_get_item(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    dkv_item_t *it = NULL;
    const char *key = cli_str(ctx, "Key", "");
    dkv_status_t rv;
    int rc = cli_connect_ctx(ctx, &s, &c);

    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    rv = dkv_get(&it, c, key, strlen(key), NULL, ctx->pool);
    return finish(ctx, s, item_row(s->store, key, it, rv),
                  rv == DKV_ENOTFOUND ? DKV_OK : rv, key);
}

int
cli_cmd_get_items(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    apr_array_header_t *keys = cli_list(ctx, "Keys");
    dkv_key_t *k = apr_pcalloc(ctx->pool, sizeof(*k) * keys->nelts);
    dkv_item_t *items = NULL;
    json_t *arr;
    dkv_status_t rv;
    int i, rc = cli_connect_ctx(ctx, &s, &c), failed = 0;

    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    for (i = 0; i < keys->nelts; i++) {
        k[i].key = DKV_ARRAY_IDX(keys, i, const char *);
        k[i].key_len = strlen(k[i].key);
    }
    rv = dkv_get_many(&items, c, k, (size_t)keys->nelts, NULL, ctx->pool);
    if (rv != DKV_OK) {
        return finish(ctx, s, NULL, rv, NULL);
    }
    arr = json_array();
    for (i = 0; i < keys->nelts; i++) {
        dkv_status_t st = items[i].status;
        failed |= st != DKV_OK && st != DKV_ENOTFOUND;
        json_array_append_new(arr, item_row(s->store, k[i].key, &items[i],
                                            st));
    }
    cli_print(ctx, arr);
    return failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* -WhatIf: says what the command would do to KEY, and nothing else. */
static void
whatif(const cli_ctx_t *ctx, const char *key)
{
    printf("What if: Performing the operation \"%s\" on target "
           "\"Key: %s\".\n", ctx->cmd->name, key);
}

int
cli_cmd_set_item(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    dkv_put_opts_t po;
    dkv_result_t res;
    const char *key = cli_str(ctx, "Key", "");
    const char *val = cli_str(ctx, "Value", "");
    dkv_status_t rv;
    json_t *o;
    int rc;

    if (cli_has(ctx, "ExpireAfterSec") && cli_has(ctx, "LeaseId")) {
        cli_error(ctx, "-ExpireAfterSec and -LeaseId are mutually "
                  "exclusive: a key bound to a lease lives as long as the "
                  "lease");
        return CLI_EXIT_USAGE;
    }
    if (ctx->whatif) {
        whatif(ctx, key);
        return CLI_EXIT_OK;
    }
    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    memset(&po, 0, sizeof(po));
    memset(&res, 0, sizeof(res));
    po.ttl_ms = cli_int(ctx, "ExpireAfterSec", 0) * 1000;
    po.lease = (uint64_t)cli_int(ctx, "LeaseId", 0);
    rv = dkv_put(&res, c, key, strlen(key), val, strlen(val), &po);
    o = cli_result(s->store);
    json_object_set_new(o, "Key", json_string(key));
    json_object_set_new(o, "IsUpdate", json_boolean(res.is_update));
    json_object_set_new(o, "Revision", json_integer(
        (json_int_t)res.revision));
    json_object_set_new(o, "Version", json_integer((json_int_t)res.version));
    json_object_set_new(o, "TimeToLiveSec", cli_has(ctx, "ExpireAfterSec")
                        ? json_integer(cli_int(ctx, "ExpireAfterSec", 0))
                        : json_null());
    json_object_set_new(o, "LeaseId", cli_has(ctx, "LeaseId")
                        ? json_string(cli_str(ctx, "LeaseId", ""))
                        : json_null());
    cli_set_outcome(o, rv);
    if (rv == DKV_ENOTFOUND && po.lease != 0) {
        json_object_set_new(o, "Error", json_string(
            "the lease does not exist or has expired"));
    }
    return finish(ctx, s, o, rv, key);
}

int
cli_cmd_set_items(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    apr_array_header_t *items = cli_list(ctx, "Items");
    dkv_kv_t *kv = apr_pcalloc(ctx->pool, sizeof(*kv) * items->nelts);
    dkv_result_t *res = apr_pcalloc(ctx->pool, sizeof(*res) * items->nelts);
    dkv_status_t rv;
    json_t *arr;
    int i, rc, failed = 0;

    if (ctx->whatif) {
        for (i = 0; i < items->nelts; i++) {
            whatif(ctx, DKV_ARRAY_IDX(items, i, cli_pair_t).key);
        }
        return CLI_EXIT_OK;
    }
    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    for (i = 0; i < items->nelts; i++) {
        cli_pair_t *p = &DKV_ARRAY_IDX(items, i, cli_pair_t);
        kv[i].key = p->key;
        kv[i].key_len = strlen(p->key);
        kv[i].value = p->value;
        kv[i].value_len = strlen(p->value);
    }
    rv = dkv_put_many(res, c, kv, (size_t)items->nelts, NULL);
    if (rv != DKV_OK) {
        return finish(ctx, s, NULL, rv, NULL);
    }
    arr = json_array();
    for (i = 0; i < items->nelts; i++) {
        json_t *o = cli_result(s->store);
        json_object_set_new(o, "Key", json_string(kv[i].key));
        json_object_set_new(o, "IsUpdate", json_boolean(res[i].is_update));
        json_object_set_new(o, "Revision",
                            json_integer((json_int_t)res[i].revision));
        json_object_set_new(o, "Version",
                            json_integer((json_int_t)res[i].version));
        cli_set_outcome(o, res[i].status);
        failed |= res[i].status != DKV_OK;
        json_array_append_new(arr, o);
    }
    cli_print(ctx, arr);
    return failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

/* The row of Remove-DkvItem(s): a missing key is Deleted = False. */
static json_t *
remove_row(const char *store, const char *key, const dkv_result_t *res,
           dkv_status_t rv, uint64_t current_rev)
{
    json_t *o = cli_result(store);
    int deleted = rv == DKV_OK && res->mutated;

    json_object_set_new(o, "Key", json_string(key));
    json_object_set_new(o, "Deleted", json_boolean(deleted));
    json_object_set_new(o, "Revision", json_integer((json_int_t)(
        rv == DKV_OK ? res->revision : current_rev)));
    json_object_set_new(o, "Version", json_integer((json_int_t)(
        rv == DKV_OK ? res->version : 0)));
    cli_set_outcome(o, rv == DKV_ENOTFOUND ? DKV_OK : rv);
    return o;
}

int
cli_cmd_remove_item(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    dkv_result_t res;
    const char *key = cli_str(ctx, "Key", "");
    uint64_t rev = 0;
    dkv_status_t rv;
    int rc;

    if (ctx->whatif) {
        whatif(ctx, key);
        return CLI_EXIT_OK;
    }
    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    memset(&res, 0, sizeof(res));
    rv = dkv_delete(&res, c, key, strlen(key), NULL);
    if (rv == DKV_ENOTFOUND && dkv_revision(&rev, c) != DKV_OK) {
        rev = 0;
    }
    return finish(ctx, s, remove_row(s->store, key, &res, rv, rev),
                  rv == DKV_ENOTFOUND ? DKV_OK : rv, key);
}

int
cli_cmd_remove_items(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    apr_array_header_t *keys = cli_list(ctx, "Keys");
    dkv_key_t *k = apr_pcalloc(ctx->pool, sizeof(*k) * keys->nelts);
    dkv_result_t *res = apr_pcalloc(ctx->pool, sizeof(*res) * keys->nelts);
    uint64_t rev = 0;
    dkv_status_t rv;
    json_t *arr;
    int i, rc, failed = 0;

    if (ctx->whatif) {
        for (i = 0; i < keys->nelts; i++) {
            whatif(ctx, DKV_ARRAY_IDX(keys, i, const char *));
        }
        return CLI_EXIT_OK;
    }
    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    for (i = 0; i < keys->nelts; i++) {
        k[i].key = DKV_ARRAY_IDX(keys, i, const char *);
        k[i].key_len = strlen(k[i].key);
    }
    rv = dkv_delete_many(res, c, k, (size_t)keys->nelts, NULL);
    if (rv != DKV_OK) {
        return finish(ctx, s, NULL, rv, NULL);
    }
    if (dkv_revision(&rev, c) != DKV_OK) {
        rev = 0;
    }
    arr = json_array();
    for (i = 0; i < keys->nelts; i++) {
        failed |= res[i].status != DKV_OK && res[i].status != DKV_ENOTFOUND;
        json_array_append_new(arr, remove_row(s->store, k[i].key, &res[i],
                                              res[i].status, rev));
    }
    cli_print(ctx, arr);
    return failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int
cli_cmd_refresh_item(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    dkv_result_t res;
    dkv_item_t *it = NULL;
    dkv_get_opts_t go = { 1, 0 };
    const char *key = cli_str(ctx, "Key", "");
    dkv_status_t rv;
    json_t *o;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    memset(&res, 0, sizeof(res));
    rv = dkv_refresh(&res, c, key, strlen(key), 0);
    o = cli_result(s->store);
    json_object_set_new(o, "Key", json_string(key));
    json_object_set_new(o, "Refreshed", json_boolean(rv == DKV_OK));
    if (rv == DKV_OK &&
        dkv_get(&it, c, key, strlen(key), &go, ctx->pool) == DKV_OK &&
        it->ttl_ms >= 0) {
        /* Just restarted: the remaining time is the original TTL. */
        json_object_set_new(o, "TimeToLive", json_string(cli_span_text(
            (it->ttl_ms + 500) / 1000 * 1000, ctx->pool)));
    } else {
        json_object_set_new(o, "TimeToLive", json_null());
    }
    set_rev_ver(o, rv == DKV_OK, res.revision, res.version);
    cli_set_outcome(o, rv);
    if (rv == DKV_ENOTFOUND) {
        json_object_set_new(o, "Error", json_string("the key does not "
                                                    "exist"));
    } else if (rv == DKV_EINVAL) {
        json_object_set_new(o, "Error", json_string("the key has no TTL "
            "(set one with Set-DkvItemExpiration)"));
    }
    if (rv != DKV_OK) {
        /* As finish(), with the more helpful Error set above; O owns MSG,
         * so print it last. */
        const char *msg = json_string_value(json_object_get(o, "Error"));
        cli_error(ctx, "%s: %s", key, msg);
        cli_log(s->store, ctx->pool, "ERROR %s %s: %s", ctx->cmd->name, key,
                msg);
        cli_print(ctx, o);
        return cli_exit_for(rv);
    }
    return finish(ctx, s, o, rv, key);
}

int
cli_cmd_set_expiration(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    dkv_result_t res;
    const char *key = cli_str(ctx, "Key", "");
    int64_t ttl = cli_int(ctx, "TimeToLive", 0);
    dkv_status_t rv;
    json_t *o;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    memset(&res, 0, sizeof(res));
    rv = dkv_expire(&res, c, key, strlen(key), ttl, 0);
    o = cli_result(s->store);
    json_object_set_new(o, "Key", json_string(key));
    json_object_set_new(o, "TimeToLive", ttl > 0
                        ? json_string(cli_span_text(ttl, ctx->pool))
                        : json_null());
    json_object_set_new(o, "IsUpdate", json_boolean(rv == DKV_OK));
    set_rev_ver(o, rv == DKV_OK, res.revision, res.version);
    cli_set_outcome(o, rv);
    if (rv == DKV_ENOTFOUND) {
        json_object_set_new(o, "Error", json_string("the key does not "
                                                    "exist"));
    }
    return finish(ctx, s, o, rv, key);
}

int
cli_cmd_get_metadata(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    dkv_item_t *it = NULL;
    dkv_get_opts_t go = { 1, 0 };
    const char *key = cli_str(ctx, "Key", "");
    dkv_status_t rv;
    json_t *o, *meta = json_object();
    int rc, exists;
    size_t i;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        json_decref(meta);
        return rc;
    }
    rv = dkv_get(&it, c, key, strlen(key), &go, ctx->pool);
    exists = rv == DKV_OK;
    o = cli_result(s->store);
    json_object_set_new(o, "Key", json_string(key));
    json_object_set_new(o, "Exists", json_boolean(exists));
    set_rev_ver(o, exists, exists ? it->mod_revision : 0,
                exists ? it->version : 0);
    json_object_set_new(o, "TimeToLive", exists ? ttl_sec(it)
                                                : json_null());
    if (exists) {
        for (i = 0; i < it->nlabels; i++) {
            json_object_set_new(meta, it->labels[i].name,
                                json_string(it->labels[i].value));
        }
    }
    json_object_set_new(o, "Metadata", meta);
    if (rv == DKV_ENOTFOUND) {
        rv = DKV_OK;
    }
    cli_set_outcome(o, rv);
    return finish(ctx, s, o, rv, key);
}

int
cli_cmd_test_item(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    dkv_item_t *it = NULL;
    dkv_get_opts_t go = { 1, 0 };
    const char *key = cli_str(ctx, "Key", "");
    dkv_status_t rv;
    json_t *o;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    rv = dkv_get(&it, c, key, strlen(key), &go, ctx->pool);
    if (!cli_has(ctx, "Detailed")) {
        if (rv != DKV_OK && rv != DKV_ENOTFOUND) {
            return finish(ctx, s, NULL, rv, key);
        }
        cli_print(ctx, json_boolean(rv == DKV_OK));
        return CLI_EXIT_OK;
    }
    o = cli_result(s->store);
    json_object_set_new(o, "Key", json_string(key));
    json_object_set_new(o, "Exists", json_boolean(rv == DKV_OK));
    if (rv == DKV_ENOTFOUND) {
        rv = DKV_OK;
    }
    cli_set_outcome(o, rv);
    return finish(ctx, s, o, rv, key);
}
