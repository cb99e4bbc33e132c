/*
 * cmd_conn.c -- the connection commands of `dkv`: Connect-DkvStore,
 * Disconnect-DkvStore, Get-DkvConnection, Test-DkvConnection.  The
 * connection is the session file of session.c; every other command opens
 * the store it names.
 */
#include "cli/cli.h"
#include "common/alloc.h"

#include <stdio.h>
#include <string.h>

#include <apr_file_info.h>
#include <apr_strings.h>
#include <apr_time.h>

static json_t *
endpoint_array(apr_array_header_t *eps)
{
    json_t *a = json_array();
    int i;

    for (i = 0; eps != NULL && i < eps->nelts; i++) {
        json_array_append_new(a, json_string(DKV_ARRAY_IDX(eps, i,
                                                           const char *)));
    }
    return a;
}

int
cli_cmd_connect(cli_ctx_t *ctx)
{
    cli_session_t *old = NULL, *s;
    const char *store = cli_str(ctx, "StoreName", NULL);
    apr_array_header_t *eps = cli_list(ctx, "Endpoints");
    const char *why, *addr, *logfile;
    dkv_client_t *client;
    dkv_status_t rv;
    uint64_t rev;
    json_t *o;

    if (cli_session_load(&old, ctx->pool) != DKV_OK) {
        old = NULL;   /* damaged: replaced below */
    }
    if (old != NULL && !cli_has(ctx, "Force")) {
        cli_error(ctx, "already connected to store %s; use -Force to "
                  "replace the connection, or Disconnect-DkvStore first",
                  old->store);
        return CLI_EXIT_FAILED;
    }
    if (cli_has(ctx, "Token") && cli_has(ctx, "TokenFile")) {
        cli_error(ctx, "-Token and -TokenFile exclude each other");
        return CLI_EXIT_USAGE;
    }
    addr = cli_address(store, eps, &why, ctx->pool);
    if (addr == NULL) {
        cli_error(ctx, "%s", why);
        return CLI_EXIT_USAGE;
    }
    s = apr_pcalloc(ctx->pool, sizeof(*s));
    s->store = store;
    s->endpoints = eps;   /* inproc path made absolute by cli_address */
    s->client_id = cli_uuid(ctx->pool);
    s->connected_at = cli_time_utc(apr_time_now(), ctx->pool);
    s->timeout_sec = (int)cli_int(ctx, "TimeoutSec", 5);
    s->token = cli_str(ctx, "Token", NULL);
    if (cli_has(ctx, "TokenFile")) {
        char *abs;
        if (apr_filepath_merge(&abs, NULL, cli_str(ctx, "TokenFile", ""), 0,
                               ctx->pool) != APR_SUCCESS) {
            cli_error(ctx, "bad -TokenFile path");
            return CLI_EXIT_USAGE;
        }
        s->token_file = abs;
    }
    cli_close_cached();
    rv = cli_open(&client, s, ctx->pool);
    if (rv == DKV_OK) {
        rv = dkv_revision(&rev, client);
    }
    logfile = cli_log(store, ctx->pool, NULL);
    o = cli_result(store);
    json_object_set_new(o, "Endpoints", endpoint_array(eps));
    json_object_set_new(o, "ConnectedAtUtc", rv == DKV_OK
                        ? json_string(s->connected_at) : json_null());
    json_object_set_new(o, "LogFile", logfile != NULL ? json_string(logfile)
                                                      : json_null());
    if (rv != DKV_OK) {
        const char *msg = cli_status_text(rv, ctx->pool);
        cli_set_outcome(o, rv);
        cli_log(store, ctx->pool, "ERROR connect %s: %s", addr, msg);
        cli_print(ctx, o);
        cli_error(ctx, "cannot connect to %s: %s; is the store started "
                  "(Start-DkvStore %s; Get-DkvStore %s shows its "
                  "instances)?  Is each endpoint the node's reachable "
                  "<host>:<clientPort>, open in that machine's firewall "
                  "(client ports 7861-7899 by default)?  A store made by "
                  "New-DkvStore needs its token (saved for you, or "
                  "-Token)", store, msg, store, store);
        cli_close_cached();
        return cli_exit_for(rv) == CLI_EXIT_OK ? CLI_EXIT_FAILED
                                               : cli_exit_for(rv);
    }
    rv = cli_session_save(s, ctx->pool);
    if (rv != DKV_OK) {
        char buf[256];
        cli_set_outcome(o, rv);
        cli_print(ctx, o);
        cli_error(ctx, "cannot write the session file %s: %s",
                  cli_session_path(ctx->pool),
                  apr_strerror(rv, buf, sizeof(buf)));
        return CLI_EXIT_FAILED;
    }
    cli_log(store, ctx->pool, "INFO connect %s client %s (revision %llu)",
            addr, s->client_id, (unsigned long long)rev);
    cli_set_outcome(o, DKV_OK);
    cli_print(ctx, o);
    return CLI_EXIT_OK;
}

int
cli_cmd_disconnect(cli_ctx_t *ctx)
{
    cli_session_t *s = NULL;
    dkv_status_t rv;
    json_t *o;

    if (cli_session_load(&s, ctx->pool) != DKV_OK) {
        s = NULL;
    }
    cli_close_cached();
    rv = cli_session_remove(ctx->pool);
    o = cli_result(s != NULL ? s->store : NULL);
    json_object_set_new(o, "WasConnected", json_boolean(s != NULL));
    json_object_set_new(o, "DisconnectedAt",
                        json_string(cli_time_utc(apr_time_now(),
                                                 ctx->pool)));
    cli_set_outcome(o, rv);
    if (s != NULL) {
        cli_log(s->store, ctx->pool, "INFO disconnect client %s",
                s->client_id != NULL ? s->client_id : "-");
    }
    cli_print(ctx, o);
    return rv == DKV_OK ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

int
cli_cmd_get_connection(cli_ctx_t *ctx)
{
    cli_session_t *s = NULL;
    dkv_status_t rv = cli_session_load(&s, ctx->pool);
    json_t *o = json_object();

    json_object_set_new(o, "IsConnected", json_boolean(s != NULL));
    json_object_set_new(o, "StoreName", s != NULL ? json_string(s->store)
                                                  : json_null());
    json_object_set_new(o, "Endpoints", s != NULL
                        ? endpoint_array(s->endpoints) : json_array());
    json_object_set_new(o, "ClientId", s != NULL && s->client_id != NULL
                        ? json_string(s->client_id) : json_null());
    json_object_set_new(o, "ConnectedAtUtc", s != NULL &&
                        s->connected_at != NULL
                        ? json_string(s->connected_at) : json_null());
    cli_set_outcome(o, rv);
    cli_print(ctx, o);
    return rv == DKV_OK ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

/* Opens ADDRESS once and reads its revision: DKV_OK when it answers. */
static dkv_status_t
probe(const char *address, const char *token, int timeout_sec,
      apr_pool_t *pool)
{
    dkv_open_opts_t opts;
    dkv_client_t *c;
    apr_pool_t *sub;
    uint64_t rev;
    dkv_status_t rv;

    memset(&opts, 0, sizeof(opts));
    opts.token = token;
    opts.connect_timeout_ms = (unsigned)timeout_sec * 1000u;
    opts.request_timeout_ms = (unsigned)timeout_sec * 1000u;
    if (apr_pool_create(&sub, pool) != APR_SUCCESS) {
        return APR_ENOMEM;
    }
    rv = dkv_open(&c, address, &opts, sub);
    if (rv == DKV_OK) {
        rv = dkv_revision(&rev, c);
        dkv_close(c);
    }
    apr_pool_destroy(sub);
    return rv;
}

int
cli_cmd_test_connection(cli_ctx_t *ctx)
{
    cli_session_t *s = NULL, tmp;
    apr_time_t t0 = apr_time_now();
    dkv_status_t rv = DKV_OK, first = DKV_OK;
    const char *why, *token;
    int timeout, i, reachable = 0;
    json_t *o;

    if (cli_session_load(&s, ctx->pool) != DKV_OK) {
        s = NULL;
    }
    if (cli_has(ctx, "StoreName") || cli_has(ctx, "Endpoints")) {
        if (!cli_has(ctx, "StoreName") || !cli_has(ctx, "Endpoints")) {
            if (s == NULL) {
                cli_error(ctx, "not connected: give both -StoreName and "
                          "-Endpoints, or run Connect-DkvStore first");
                return CLI_EXIT_USAGE;
            }
        }
        memset(&tmp, 0, sizeof(tmp));
        tmp.store = cli_str(ctx, "StoreName", s != NULL ? s->store : NULL);
        tmp.endpoints = cli_list(ctx, "Endpoints");
        if (tmp.endpoints == NULL) {
            tmp.endpoints = s->endpoints;
        }
        tmp.token = s != NULL ? s->token : NULL;
        tmp.token_file = s != NULL ? s->token_file : NULL;
        s = &tmp;
    }
    if (s == NULL) {
        cli_error(ctx, "no store connection: run Connect-DkvStore "
                  "-StoreName <name> -Endpoints <host:port>, or give "
                  "-StoreName and -Endpoints");
        return CLI_EXIT_NOTCONN;
    }
    timeout = (int)cli_int(ctx, "TimeoutSec", 5);
    token = cli_session_token(s, ctx->pool);
    {
        apr_array_header_t *eps = apr_array_copy(ctx->pool, s->endpoints);
        if (cli_address(s->store, eps, &why, ctx->pool) == NULL) {
            cli_error(ctx, "%s", why);
            return CLI_EXIT_USAGE;
        }
        /* Each endpoint on its own: how many of the servers answer. */
        for (i = 0; i < eps->nelts; i++) {
            const char *ep = DKV_ARRAY_IDX(eps, i, const char *);
            if (strncmp(ep, "inproc:", 7) == 0) {
                /* One handle per path per process: use the cached one. */
                dkv_client_t *c;
                uint64_t rev;
                cli_session_t one = *s;
                one.endpoints = eps;
                one.timeout_sec = timeout;
                rv = cli_open(&c, &one, ctx->pool);
                if (rv == DKV_OK) {
                    rv = dkv_revision(&rev, c);
                }
            } else {
                rv = probe(apr_pstrcat(ctx->pool, "dkv://", ep, "/",
                                       s->store, NULL),
                           token, timeout, ctx->pool);
            }
            if (rv == DKV_OK) {
                reachable++;
            } else if (first == DKV_OK) {
                first = rv;
            }
        }
    }
    o = cli_result(s->store);
    json_object_set_new(o, "Connected", json_boolean(reachable > 0));
    json_object_set_new(o, "ServerCount", json_integer(reachable));
    json_object_set_new(o, "DurationMs", json_integer(
        (json_int_t)((apr_time_now() - t0) / 1000)));
    json_object_set_new(o, "TimestampUtc",
                        json_string(cli_time_utc(apr_time_now(),
                                                 ctx->pool)));
    json_object_set_new(o, "Error", first == DKV_OK ? json_null()
                        : json_string(cli_status_text(first, ctx->pool)));
    cli_print(ctx, o);
    if (reachable == 0) {
        cli_log(s->store, ctx->pool, "ERROR test-connection: %s",
                cli_status_text(first, ctx->pool));
        return CLI_EXIT_CONNECT;
    }
    return CLI_EXIT_OK;
}
