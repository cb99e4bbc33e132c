/*
 * session.c -- the per-user connection of `dkv`: the session file written
 * by Connect-DkvStore (JSON, mode 0600, in the directory of
 * platform/userenv.h), the client log files beside it, and opening the
 * store a session names (cached for the life of the process, so the
 * interactive shell keeps one connection).
 */
#include "cli/cli.h"
#include "platform/userenv.h"
#include "common/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>

#define SESSION_FILE "session.json"

/* The cached client: opened once per address and token. */
static dkv_client_t *cached_client;
static apr_pool_t *cached_pool;
static char cached_key[2048];

/* -------------------------------------------------------------- paths */

dkv_status_t
cli_config_dir(const char **dir, apr_pool_t *pool)
{
    dkv_status_t rv = dkv_plat_user_dir(dir, pool);

    if (rv != DKV_OK) {
        return rv;
    }
    rv = apr_dir_make_recursive(*dir, APR_FPROT_UREAD | APR_FPROT_UWRITE |
                                APR_FPROT_UEXECUTE, pool);
    return rv == APR_SUCCESS || APR_STATUS_IS_EEXIST(rv) ? DKV_OK : rv;
}

const char *
cli_session_path(apr_pool_t *pool)
{
    const char *dir;

    if (dkv_plat_user_dir(&dir, pool) != DKV_OK) {
        return NULL;
    }
    return apr_pstrcat(pool, dir, "/" SESSION_FILE, NULL);
}

const char *
cli_uuid(apr_pool_t *pool)
{
    unsigned char b[16];

    if (apr_generate_random_bytes(b, sizeof(b)) != APR_SUCCESS) {
        apr_uint64_t t = (apr_uint64_t)apr_time_now();
        size_t i;
        for (i = 0; i < sizeof(b); i++) {
            b[i] = (unsigned char)((t >> ((i % 8) * 8)) ^ (i * 37));
        }
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    return apr_psprintf(pool,
        "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
        "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
        b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* ---------------------------------------------------------------- log */

const char *
cli_log(const char *store, apr_pool_t *pool, const char *fmt, ...)
{
    const char *dir, *path;
    apr_time_exp_t x;
    apr_file_t *f;
    va_list ap;
    char msg[2048];
    apr_time_t now = apr_time_now();

    if (cli_config_dir(&dir, pool) != DKV_OK) {
        return NULL;
    }
    apr_time_exp_lt(&x, now);
    path = apr_psprintf(pool, "%s/dkv-%s-%04d%02d%02d.log", dir,
                        store != NULL ? store : "none", x.tm_year + 1900,
                        x.tm_mon + 1, x.tm_mday);
    if (fmt == NULL) {
        return path;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);   /* C's: %lld works */
    va_end(ap);
    if (apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE |
                      APR_FOPEN_APPEND, APR_FPROT_UREAD | APR_FPROT_UWRITE,
                      pool) == APR_SUCCESS) {
        apr_file_printf(f, "%s %s\n", cli_time_utc(now, pool), msg);
        apr_file_close(f);
    }
    return path;
}

/* ------------------------------------------------------------ session */

dkv_status_t
cli_session_load(cli_session_t **session, apr_pool_t *pool)
{
    const char *path = cli_session_path(pool);
    apr_finfo_t fi;
    json_error_t err;
    json_t *root, *eps, *v;
    cli_session_t *s;
    size_t i;

    *session = NULL;
    if (path == NULL ||
        apr_stat(&fi, path, APR_FINFO_TYPE, pool) != APR_SUCCESS) {
        return DKV_OK;
    }
    root = json_load_file(path, 0, &err);
    if (root == NULL || !json_is_object(root)) {
        fprintf(stderr, "dkv: the session file %s is damaged (%s); run "
                "Disconnect-DkvStore, then Connect-DkvStore\n", path,
                root == NULL ? err.text : "not an object");
        json_decref(root);
        return DKV_ECORRUPT;
    }
    s = apr_pcalloc(pool, sizeof(*s));
    v = json_object_get(root, "StoreName");
    s->store = apr_pstrdup(pool, json_is_string(v) ? json_string_value(v)
                                                   : "");
    s->endpoints = apr_array_make(pool, 4, sizeof(char *));
    eps = json_object_get(root, "Endpoints");
    for (i = 0; i < json_array_size(eps); i++) {
        v = json_array_get(eps, i);
        if (json_is_string(v)) {
            APR_ARRAY_PUSH(s->endpoints, char *) =
                apr_pstrdup(pool, json_string_value(v));
        }
    }
    v = json_object_get(root, "ClientId");
    s->client_id = json_is_string(v) ? apr_pstrdup(pool,
                                                   json_string_value(v))
                                     : NULL;
    v = json_object_get(root, "ConnectedAtUtc");
    s->connected_at = json_is_string(v)
        ? apr_pstrdup(pool, json_string_value(v)) : NULL;
    v = json_object_get(root, "TimeoutSec");
    s->timeout_sec = json_is_integer(v) ? (int)json_integer_value(v) : 5;
    v = json_object_get(root, "Token");
    s->token = json_is_string(v) ? apr_pstrdup(pool, json_string_value(v))
                                 : NULL;
    v = json_object_get(root, "TokenFile");
    s->token_file = json_is_string(v)
        ? apr_pstrdup(pool, json_string_value(v)) : NULL;
    json_decref(root);
    if (s->store[0] == '\0' || s->endpoints->nelts == 0) {
        fprintf(stderr, "dkv: the session file %s names no store; run "
                "Connect-DkvStore -Force\n", path);
        return DKV_ECORRUPT;
    }
    *session = s;
    return DKV_OK;
}

dkv_status_t
cli_session_save(const cli_session_t *s, apr_pool_t *pool)
{
    const char *dir, *path, *tmp;
    json_t *root = json_object(), *eps = json_array();
    apr_file_t *f;
    char *text;
    dkv_status_t rv;
    int i;

    if ((rv = cli_config_dir(&dir, pool)) != DKV_OK) {
        json_decref(root);
        json_decref(eps);
        return rv;
    }
    path = apr_pstrcat(pool, dir, "/" SESSION_FILE, NULL);
    tmp = apr_pstrcat(pool, path, ".tmp", NULL);
    json_object_set_new(root, "StoreName", json_string(s->store));
    for (i = 0; i < s->endpoints->nelts; i++) {
        json_array_append_new(eps, json_string(
            DKV_ARRAY_IDX(s->endpoints, i, const char *)));
    }
    json_object_set_new(root, "Endpoints", eps);
    json_object_set_new(root, "ClientId", json_string(s->client_id));
    json_object_set_new(root, "ConnectedAtUtc",
                        json_string(s->connected_at));
    json_object_set_new(root, "TimeoutSec", json_integer(s->timeout_sec));
    if (s->token != NULL) {
        json_object_set_new(root, "Token", json_string(s->token));
    }
    if (s->token_file != NULL) {
        json_object_set_new(root, "TokenFile", json_string(s->token_file));
    }
    /* Serialized into a pool buffer (json_dumps' result would need the
     * C library's free). */
    {
        size_t n = json_dumpb(root, NULL, 0, JSON_INDENT(2) |
                              JSON_PRESERVE_ORDER);
        text = apr_palloc(pool, n + 2);
        json_dumpb(root, text, n, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        text[n] = '\n';
        text[n + 1] = '\0';
    }
    json_decref(root);
    apr_file_remove(tmp, pool);
    rv = apr_file_open(&f, tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE |
                       APR_FOPEN_TRUNCATE, APR_FPROT_UREAD |
                       APR_FPROT_UWRITE, pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_file_write_full(f, text, strlen(text), NULL);
    if (rv == APR_SUCCESS) {
        rv = apr_file_close(f);
    } else {
        apr_file_close(f);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_rename(tmp, path, pool);
    }
    return rv;
}

dkv_status_t
cli_session_remove(apr_pool_t *pool)
{
    const char *path = cli_session_path(pool);
    dkv_status_t rv;

    if (path == NULL) {
        return DKV_OK;
    }
    rv = apr_file_remove(path, pool);
    return (rv == APR_SUCCESS || APR_STATUS_IS_ENOENT(rv)) ? DKV_OK : rv;
}

const char *
cli_session_token(const cli_session_t *s, apr_pool_t *pool)
{
    if (s->token != NULL) {
        return s->token;
    }
    if (s->token_file != NULL) {
        apr_file_t *f;
        char buf[1024];
        apr_size_t n = sizeof(buf) - 1;

        if (apr_file_open(&f, s->token_file, APR_FOPEN_READ, 0, pool)
            == APR_SUCCESS) {
            apr_status_t rv = apr_file_read(f, buf, &n);
            apr_file_close(f);
            if (rv == APR_SUCCESS || APR_STATUS_IS_EOF(rv)) {
                while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
                                 buf[n - 1] == ' ')) {
                    n--;
                }
                return apr_pstrmemdup(pool, buf, n);
            }
        }
        return NULL;
    }
    {
        const char *env = getenv("DKV_TOKEN");
        if (env != NULL && env[0] != '\0') {
            return env;
        }
    }
    /* The token New-DkvStore saved for this store, if any. */
    {
        const char *dir;
        cli_session_t saved;

        if (s->store == NULL || strchr(s->store, '/') != NULL ||
            strchr(s->store, '\\') != NULL ||
            dkv_plat_user_dir(&dir, pool) != DKV_OK) {
            return NULL;
        }
        memset(&saved, 0, sizeof(saved));
        saved.token_file = apr_pstrcat(pool, dir, "/tokens/", s->store,
                                       ".token", NULL);
        return cli_session_token(&saved, pool);
    }
}

/* ---------------------------------------------------------- addresses */

/* 1 when EP is host:port with a port in 1..65535. */
static int
valid_endpoint(const char *ep)
{
    const char *colon;
    int64_t port;

    if (ep[0] == '[') {
        const char *close = strchr(ep, ']');
        if (close == NULL || close == ep + 1 || close[1] != ':') {
            return 0;
        }
        colon = close + 1;
    } else {
        colon = strrchr(ep, ':');
        if (colon == NULL || colon == ep || strchr(ep, ':') != colon) {
            return 0;
        }
    }
    if (strchr(ep, '/') != NULL || strchr(ep, ',') != NULL) {
        return 0;
    }
    return cli_parse_i64(&port, colon + 1) == 0 && port >= 1 &&
           port <= 65535;
}

const char *
cli_address(const char *store, apr_array_header_t *endpoints,
            const char **why, apr_pool_t *pool)
{
    const char *addr;
    int i;

    *why = NULL;
    if (store == NULL || store[0] == '\0' || strchr(store, '/') != NULL) {
        *why = "the store name must be non-empty and contain no '/'";
        return NULL;
    }
    if (endpoints == NULL || endpoints->nelts == 0) {
        *why = "no endpoints given";
        return NULL;
    }
    if (strncmp(DKV_ARRAY_IDX(endpoints, 0, const char *), "inproc:", 7)
        == 0) {
        const char *path = DKV_ARRAY_IDX(endpoints, 0, const char *) + 7;
        char *abs;

        if (endpoints->nelts > 1) {
            *why = "an inproc:PATH endpoint must be the only one";
            return NULL;
        }
        if (path[0] == '\0') {
            *why = "inproc: needs a directory (inproc:PATH); a temporary "
                   "store would not outlive the command";
            return NULL;
        }
        if (apr_filepath_merge(&abs, NULL, path, 0, pool) != APR_SUCCESS) {
            *why = "cannot make the inproc path absolute";
            return NULL;
        }
        DKV_ARRAY_IDX(endpoints, 0, const char *) =
            apr_pstrcat(pool, "inproc:", abs, NULL);
        return DKV_ARRAY_IDX(endpoints, 0, const char *);
    }
    addr = "dkv://";
    for (i = 0; i < endpoints->nelts; i++) {
        const char *ep = DKV_ARRAY_IDX(endpoints, i, const char *);
        if (!valid_endpoint(ep)) {
            *why = apr_psprintf(pool, "endpoint '%s' is not host:port "
                                "(e.g. 10.0.0.11:7101, [::1]:7101, or "
                                "inproc:PATH)", ep);
            return NULL;
        }
        addr = apr_pstrcat(pool, addr, i > 0 ? "," : "", ep, NULL);
    }
    return apr_pstrcat(pool, addr, "/", store, NULL);
}

/* ------------------------------------------------------------- opening */

void
cli_close_cached(void)
{
    if (cached_client != NULL) {
        dkv_close(cached_client);
        cached_client = NULL;
    }
    if (cached_pool != NULL) {
        apr_pool_destroy(cached_pool);
        cached_pool = NULL;
    }
    cached_key[0] = '\0';
}

dkv_status_t
cli_open(dkv_client_t **client, const cli_session_t *s, apr_pool_t *pool)
{
    dkv_open_opts_t opts;
    const char *why, *addr, *token, *key;
    apr_array_header_t *eps = apr_array_copy(pool, s->endpoints);
    dkv_status_t rv;

    addr = cli_address(s->store, eps, &why, pool);
    if (addr == NULL) {
        fprintf(stderr, "dkv: %s\n", why);
        return DKV_EINVAL;
    }
    token = cli_session_token(s, pool);
    key = apr_pstrcat(pool, addr, "\n", token != NULL ? token : "", "\n",
                      apr_itoa(pool, s->timeout_sec), NULL);
    if (cached_client != NULL && strcmp(key, cached_key) == 0) {
        *client = cached_client;
        return DKV_OK;
    }
    cli_close_cached();
    memset(&opts, 0, sizeof(opts));
    opts.token = token;
    opts.connect_timeout_ms = (unsigned)s->timeout_sec * 1000u;
    if (apr_pool_create(&cached_pool, NULL) != APR_SUCCESS) {
        return APR_ENOMEM;
    }
    rv = dkv_open(&cached_client, addr, &opts, cached_pool);
    if (rv != DKV_OK) {
        cached_client = NULL;
        apr_pool_destroy(cached_pool);
        cached_pool = NULL;
        return rv;
    }
    apr_cpystrn(cached_key, key, sizeof(cached_key));
    *client = cached_client;
    return DKV_OK;
}

int
cli_connect_ctx(cli_ctx_t *ctx, cli_session_t **session,
                dkv_client_t **client)
{
    dkv_status_t rv = cli_session_load(session, ctx->pool);

    if (rv != DKV_OK) {
        return CLI_EXIT_NOTCONN;
    }
    if (*session == NULL) {
        cli_error(ctx, "no store connection: run Connect-DkvStore "
                  "-StoreName <name> -Endpoints <host:port>");
        return CLI_EXIT_NOTCONN;
    }
    rv = cli_open(client, *session, ctx->pool);
    if (rv != DKV_OK) {
        const char *msg = cli_status_text(rv, ctx->pool);
        cli_error(ctx, "cannot open store %s: %s; check the node is "
                  "running (Test-DkvConnection), or reconnect with "
                  "Connect-DkvStore -Force", (*session)->store, msg);
        cli_log((*session)->store, ctx->pool, "ERROR open %s: %s",
                ctx->cmd->name, msg);
        return rv == DKV_EINVAL ? CLI_EXIT_FAILED : cli_exit_for(rv) ==
               CLI_EXIT_CONNECT ? CLI_EXIT_CONNECT : CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}
