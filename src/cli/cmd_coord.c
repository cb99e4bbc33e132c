/*
 * cmd_coord.c -- counters and leases in `dkv`: Get/Set/Increment/
 * Decrement-DkvCounter, Grant/Refresh/Revoke-DkvLease, and Test-DkvLease,
 * the lease self-test (seven short tests on temporary keys).  Lease ids
 * are dkv's uint64 ids, printed and read as decimal.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>

static int
report(cli_ctx_t *ctx, const cli_session_t *s, json_t *o, dkv_status_t rv,
       const char *what)
{
    const json_t *e = json_object_get(o, "Error");
    const char *msg = json_is_string(e)
        ? apr_pstrdup(ctx->pool, json_string_value(e))
        : cli_status_text(rv, ctx->pool);

    cli_print(ctx, o);
    if (rv != DKV_OK) {
        cli_error(ctx, "%s: %s", what, msg);
        cli_log(s->store, ctx->pool, "ERROR %s %s: %s", ctx->cmd->name,
                what, msg);
        return cli_exit_for(rv);
    }
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------ counters */

static json_t *
counter_row(const char *store, const char *key, dkv_status_t rv,
            int64_t value)
{
    json_t *o = cli_result(store);

    json_object_set_new(o, "Key", json_string(key));
    json_object_set_new(o, "Value", rv == DKV_OK ? json_integer(value)
                                                 : json_null());
    return o;
}

int
cli_cmd_get_counter(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    const char *key = cli_str(ctx, "Key", "");
    int64_t v = 0;
    dkv_status_t rv;
    json_t *o;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    rv = dkv_counter_get(&v, c, key, strlen(key));
    o = counter_row(s->store, key, rv, v);
    cli_set_outcome(o, rv);
    if (rv == DKV_ENOTFOUND) {
        json_object_set_new(o, "Error", json_string("the counter does not "
            "exist (Set-DkvCounter or Increment-DkvCounter creates it)"));
    } else if (rv == DKV_EINVAL) {
        json_object_set_new(o, "Error", json_string("the key holds a value "
                                                    "that is not a counter"));
    }
    return report(ctx, s, o, rv, key);
}

int
cli_cmd_set_counter(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    const char *key = cli_str(ctx, "Key", "");
    int64_t v = cli_int(ctx, "Value", 0);
    dkv_status_t rv;
    json_t *o;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    rv = dkv_counter_set(c, key, strlen(key), v, NULL);
    o = counter_row(s->store, key, rv, v);
    cli_set_outcome(o, rv);
    return report(ctx, s, o, rv, key);
}

static int
add_counter(cli_ctx_t *ctx, int sign)
{
    cli_session_t *s;
    dkv_client_t *c;
    const char *key = cli_str(ctx, "Key", "");
    int64_t delta = cli_int(ctx, "Delta", 1) * sign, cur = 0;
    dkv_status_t rv;
    json_t *o;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    rv = dkv_counter_add(NULL, &cur, c, key, strlen(key), delta, NULL);
    o = counter_row(s->store, key, rv, cur);
    json_object_set_new(o, "Delta", json_integer(delta));
    cli_set_outcome(o, rv);
    if (rv == DKV_ERANGE) {
        json_object_set_new(o, "Error", json_string("the counter would "
            "leave the int64 range; it is unchanged"));
    } else if (rv == DKV_EINVAL) {
        json_object_set_new(o, "Error", json_string("the key holds a value "
                                                    "that is not a counter"));
    }
    return report(ctx, s, o, rv, key);
}

int
cli_cmd_increment_counter(cli_ctx_t *ctx)
{
    return add_counter(ctx, 1);
}

int
cli_cmd_decrement_counter(cli_ctx_t *ctx)
{
    return add_counter(ctx, -1);
}

/* -------------------------------------------------------------- leases */

static json_t *
lease_id(uint64_t id, apr_pool_t *pool)
{
    return id != 0 ? json_string(apr_psprintf(pool, "%" APR_UINT64_T_FMT,
                                              (apr_uint64_t)id))
                   : json_null();
}

int
cli_cmd_grant_lease(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    int64_t ttl = cli_int(ctx, "TimeToLive", 0);
    uint64_t id = 0;
    dkv_status_t rv;
    json_t *o;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    rv = dkv_lease_grant(&id, c, ttl);
    o = json_object();
    json_object_set_new(o, "LeaseId", lease_id(rv == DKV_OK ? id : 0,
                                               ctx->pool));
    json_object_set_new(o, "TtlSeconds", json_real((double)ttl / 1000.0));
    cli_set_outcome(o, rv);
    return report(ctx, s, o, rv, "grant");
}

int
cli_cmd_refresh_lease(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    uint64_t id = (uint64_t)cli_int(ctx, "LeaseId", 0);
    int64_t remaining = 0;
    dkv_status_t rv;
    json_t *o;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    rv = dkv_lease_keepalive(&remaining, c, id);
    o = json_object();
    json_object_set_new(o, "LeaseId", lease_id(id, ctx->pool));
    cli_set_outcome(o, rv);
    if (rv == DKV_ENOTFOUND) {
        json_object_set_new(o, "Error", json_string("the lease has expired "
            "or was revoked; grant a new one with Grant-DkvLease"));
    }
    return report(ctx, s, o, rv, cli_str(ctx, "LeaseId", ""));
}

int
cli_cmd_revoke_lease(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    uint64_t id = (uint64_t)cli_int(ctx, "LeaseId", 0), deleted = 0;
    dkv_status_t rv;
    json_t *o;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    rv = dkv_lease_revoke(&deleted, c, id);
    o = json_object();
    json_object_set_new(o, "LeaseId", lease_id(id, ctx->pool));
    json_object_set_new(o, "Revoked", json_boolean(rv == DKV_OK));
    cli_set_outcome(o, rv);
    if (rv == DKV_ENOTFOUND) {
        json_object_set_new(o, "Error", json_string("the lease has expired "
                                                    "or was revoked"));
    }
    return report(ctx, s, o, rv, cli_str(ctx, "LeaseId", ""));
}

/* ------------------------------------------------------- Test-DkvLease */

#define TL_TTL_MS 1000      /* lease lifetime of the tests */

/* Sleeps MS, in slices, unless interrupted.  0: interrupted. */
static int
nap(int64_t ms)
{
    while (ms > 0 && !cli_interrupted) {
        int64_t step = ms < 50 ? ms : 50;
        apr_sleep((apr_interval_time_t)step * 1000);
        ms -= step;
    }
    return !cli_interrupted;
}

/* 1 when KEY exists. */
static int
exists(dkv_client_t *c, const char *key, apr_pool_t *pool)
{
    dkv_item_t *it;
    dkv_get_opts_t go = { 1, 0 };

    return dkv_get(&it, c, key, strlen(key), &go, pool) == DKV_OK;
}

/* Waits up to LIMIT_MS for KEY to disappear.  1 when it did. */
static int
gone_within(dkv_client_t *c, const char *key, int64_t limit_ms,
            apr_pool_t *pool)
{
    apr_time_t end = apr_time_now() + limit_ms * 1000;

    while (apr_time_now() < end && !cli_interrupted) {
        if (!exists(c, key, pool)) {
            return 1;
        }
        nap(50);
    }
    return !exists(c, key, pool);
}

typedef struct tl_state {
    cli_ctx_t *ctx;
    json_t *rows;
    int passed, failed;
} tl_state_t;

static int
tl_row(tl_state_t *st, const char *test, int ok, const char *error)
{
    json_t *o = json_object();

    json_object_set_new(o, "Test", json_string(test));
    json_object_set_new(o, "Success", json_boolean(ok));
    json_object_set_new(o, "Error", ok || error == NULL ? json_null()
                                                        : json_string(error));
    json_array_append_new(st->rows, o);
    if (ok) {
        st->passed++;
    } else {
        st->failed++;
    }
    return ok;
}

/* Grants a lease and binds KEY to it: the GrantLease tests. */
static int
tl_grant(tl_state_t *st, dkv_client_t *c, const char *name, uint64_t *id,
         const char *key)
{
    dkv_put_opts_t po;
    dkv_status_t rv = dkv_lease_grant(id, c, TL_TTL_MS);

    if (rv == DKV_OK) {
        memset(&po, 0, sizeof(po));
        po.lease = *id;
        rv = dkv_put(NULL, c, key, strlen(key), "lease-test", 10, &po);
    }
    return tl_row(st, name, rv == DKV_OK, rv == DKV_OK ? NULL
                  : cli_status_text(rv, st->ctx->pool));
}

int
cli_cmd_test_lease(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    tl_state_t st;
    uint64_t l1 = 0, l2 = 0, l3 = 0;
    const char *base, *k1, *k2, *k3;
    json_t *sum;
    int rc, ok;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    memset(&st, 0, sizeof(st));
    st.ctx = ctx;
    st.rows = json_array();
    base = apr_pstrcat(ctx->pool, "__dkv_test_lease:",
                       apr_pstrndup(ctx->pool, cli_uuid(ctx->pool), 8),
                       NULL);
    k1 = apr_pstrcat(ctx->pool, base, ":1", NULL);
    k2 = apr_pstrcat(ctx->pool, base, ":2", NULL);
    k3 = apr_pstrcat(ctx->pool, base, ":3", NULL);
    cli_catch_interrupt(1);

    /* 1-3: a key bound to a lease lives until the lease expires. */
    if (tl_grant(&st, c, "GrantLease", &l1, k1)) {
        tl_row(&st, "KeyExistsBeforeExpiry", exists(c, k1, ctx->pool),
               "the key bound to the lease is missing");
        ok = gone_within(c, k1, TL_TTL_MS * 4, ctx->pool);
        tl_row(&st, "LeaseExpiryRemovesKey", ok,
               "the key outlived its lease");
    }
    /* 4-5: keep-alive carries a lease past its TTL. */
    if (!cli_interrupted && tl_grant(&st, c, "GrantLease2", &l2, k2)) {
        int i, alive = 1;
        for (i = 0; i < 4 && alive && nap(TL_TTL_MS / 2); i++) {
            alive = dkv_lease_keepalive(NULL, c, l2) == DKV_OK;
        }
        tl_row(&st, "KeepAliveExtendsLease", alive && exists(c, k2,
                                                             ctx->pool),
               "the lease or its key ended despite keep-alives");
        (void)dkv_lease_revoke(NULL, c, l2);
    }
    /* 6-7: revoking deletes the lease's keys at once. */
    if (!cli_interrupted && tl_grant(&st, c, "GrantLease3", &l3, k3)) {
        dkv_status_t rv = dkv_lease_revoke(NULL, c, l3);
        tl_row(&st, "RevokeRemovesKey", rv == DKV_OK &&
               !exists(c, k3, ctx->pool), rv != DKV_OK
               ? cli_status_text(rv, ctx->pool)
               : "the key outlived the revoked lease");
    }
    cli_catch_interrupt(0);
    (void)dkv_delete(NULL, c, k1, strlen(k1), NULL);
    (void)dkv_delete(NULL, c, k2, strlen(k2), NULL);
    (void)dkv_delete(NULL, c, k3, strlen(k3), NULL);

    sum = json_object();
    json_object_set_new(sum, "Total", json_integer(st.passed + st.failed));
    json_object_set_new(sum, "Passed", json_integer(st.passed));
    json_object_set_new(sum, "Failed", json_integer(st.failed));
    json_object_set_new(sum, "Success", json_boolean(st.failed == 0 &&
                                                     st.passed == 7));
    if (ctx->json) {
        json_object_set_new(sum, "Tests", st.rows);
        cli_print(ctx, sum);
    } else {
        cli_print(ctx, st.rows);
        cli_print(ctx, sum);
    }
    if (st.failed != 0 || st.passed != 7) {
        cli_error(ctx, "%d of the lease tests failed or did not run",
                  7 - st.passed);
        cli_log(s->store, ctx->pool, "ERROR Test-DkvLease: %d passed",
                st.passed);
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}
