/*
 * http.c -- dkv-manager's HTTP server (libmicrohttpd): reads a request
 * and its body (at most 1 MiB), routes it to its endpoint in api.c,
 * checks the signature of every request that changes something (and of
 * a read that carries one), and turns the endpoint's answer, or any
 * refusal, into the JSON of docs/admin-api.md.
 *
 * Threads: libmicrohttpd's polling thread accepts, and each connection
 * gets a thread of its own; everything here is per request, apart from
 * the server's counters (atomics).
 */
#include <stdio.h>
#include <string.h>

#include <microhttpd.h>

#include <apr_atomic.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/status.h"
#include "manager/server.h"

#if MHD_VERSION >= 0x00097002
typedef enum MHD_Result mhd_result_t;
#else
typedef int mhd_result_t;
#endif

/* Most path segments a route has (admin/v1/stores/S/instances/I/start). */
#define MAX_SEGS 8

struct mgr_http {
    struct MHD_Daemon *daemon;
};

/* One request in progress (MHD's *con_cls). */
typedef struct req_ctx {
    apr_pool_t *pool;
    char *body;                    /* dkv_realloc'd */
    size_t len, cap;
    int too_large;
} req_ctx_t;

/* ------------------------------------------------------------ answers */

const char *
mgr_json_text(json_t *root, size_t *len, apr_pool_t *pool)
{
    size_t n = json_dumpb(root, NULL, 0, JSON_COMPACT);
    char *text;

    if (n == 0) {
        return NULL;
    }
    text = apr_palloc(pool, n + 2);
    json_dumpb(root, text, n, JSON_COMPACT);
    text[n] = '\n';
    text[n + 1] = '\0';
    if (len != NULL) {
        *len = n + 1;
    }
    return text;
}

void
mgr_resp_json(mgr_resp_t *resp, unsigned status, json_t *root,
              const mgr_req_t *req)
{
    resp->status = status;
    resp->type = "application/json";
    resp->body = mgr_json_text(root, &resp->len, req->pool);
    json_decref(root);
    if (resp->body == NULL) {
        resp->status = 500;
        resp->body = "{\"error\":{\"code\":\"Internal\",\"message\":"
                     "\"cannot encode the answer\"}}\n";
        resp->len = strlen(resp->body);
    }
}

void
mgr_resp_error(mgr_resp_t *resp, const mgr_req_t *req, unsigned status,
               const char *code, const char *message)
{
    json_t *err = json_object(), *root = json_object();

    dkv_log(status >= 500 ? DKV_LOG_ERROR : DKV_LOG_WARN,
            "%s %s from %s: %u %s: %s", req->method, req->path, req->peer,
            status, code, message);
    json_object_set_new(err, "code", json_string(code));
    json_object_set_new(err, "message", json_string(message));
    json_object_set_new(root, "error", err);
    mgr_resp_json(resp, status, root, req);
}

/* ------------------------------------------------------------ helpers */

/* The client's address as text ("10.0.0.5", "::1"), in POOL. */
static const char *
peer_text(struct MHD_Connection *conn, apr_pool_t *pool)
{
    const union MHD_ConnectionInfo *ci;
    const struct sockaddr *addr;
    apr_sockaddr_t *sa;
    char buf[128];
    int family;

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL) {
        return "unknown";
    }
    addr = ci->client_addr;
    family = addr->sa_family;
    /* APR formats addresses portably: make it a wildcard address of the
     * family and copy the client's in. */
    if ((family != APR_INET
#if APR_HAVE_IPV6
         && family != APR_INET6
#endif
        ) || apr_sockaddr_info_get(&sa, NULL, family, 0, 0, pool)
                 != APR_SUCCESS) {
        return "unknown";
    }
    memcpy(&sa->sa, addr, (size_t)sa->salen);
    if (apr_sockaddr_ip_getbuf(buf, sizeof(buf), sa) != APR_SUCCESS) {
        return "unknown";
    }
    return apr_pstrdup(pool, buf);
}

/* Collects the query arguments into a table and the canonical query. */
typedef struct args_baton {
    apr_table_t *table;
    apr_array_header_t *keys, *values;
} args_baton_t;

static mhd_result_t
collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
            const char *value)
{
    args_baton_t *b = cls;

    (void)kind;
    apr_table_add(b->table, key, value ? value : "");
    APR_ARRAY_PUSH(b->keys, const char *) = key;
    APR_ARRAY_PUSH(b->values, const char *) = value;
    return MHD_YES;
}

/* ------------------------------------------------------------ routing */

typedef enum route {
    R_NONE = 0, R_HEALTH, R_METRICS, R_IDENTITY, R_STORES, R_STORE,
    R_INSTANCES, R_SEAL, R_START, R_STOP, R_ADMIN_METRICS
} route_t;

/* The route of PATH (R_NONE: unknown) and the methods it allows. */
static route_t
find_route(const char **store, const char **instance, const char **allow,
           const char *path, apr_pool_t *pool)
{
    char *copy = apr_pstrdup(pool, path), *segs[MAX_SEGS], *p;
    int n = 0;

    /* Split on '/', refusing empty segments. */
    if (copy[0] != '/') {
        return R_NONE;
    }
    p = copy + 1;
    if (*p != '\0') {
        for (;;) {
            char *slash = strchr(p, '/');

            if (n == MAX_SEGS || *p == '/' || *p == '\0') {
                return R_NONE;
            }
            segs[n++] = p;
            if (slash == NULL) {
                break;
            }
            *slash = '\0';
            p = slash + 1;
            if (*p == '\0') {
                break;             /* one trailing slash is tolerated */
            }
        }
    }
    *allow = "GET";
    if (n == 1 && strcmp(segs[0], "health") == 0) {
        return R_HEALTH;
    }
    if (n == 1 && strcmp(segs[0], "metrics") == 0) {
        return R_METRICS;
    }
    if (n < 3 || strcmp(segs[0], "admin") != 0
        || strcmp(segs[1], "v1") != 0) {
        return R_NONE;
    }
    if (n == 3 && strcmp(segs[2], "identity") == 0) {
        return R_IDENTITY;
    }
    if (n == 3 && strcmp(segs[2], "metrics") == 0) {
        return R_ADMIN_METRICS;
    }
    if (strcmp(segs[2], "stores") != 0) {
        return R_NONE;
    }
    if (n == 3) {
        *allow = "GET, POST";
        return R_STORES;
    }
    *store = segs[3];
    if (n == 4) {
        return R_STORE;
    }
    *allow = "POST";
    if (n == 5 && strcmp(segs[4], "instances") == 0) {
        return R_INSTANCES;
    }
    if (n == 5 && strcmp(segs[4], "seal") == 0) {
        return R_SEAL;
    }
    if (n == 7 && strcmp(segs[4], "instances") == 0) {
        *instance = segs[5];
        if (strcmp(segs[6], "start") == 0) {
            return R_START;
        }
        if (strcmp(segs[6], "stop") == 0) {
            return R_STOP;
        }
    }
    return R_NONE;
}

/* ------------------------------------------------------------ handlers */

static void
do_health(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req)
{
    json_t *root = json_object();
    int64_t now = apr_time_as_msec(apr_time_now());

    json_object_set_new(root, "status", json_string("ok"));
    json_object_set_new(root, "version", json_string(dkv_version()));
    json_object_set_new(root, "uptimeSec",
                        json_integer((now - srv->started_ms) / 1000));
    mgr_resp_json(resp, 200, root, req);
}

static void
do_metrics(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req)
{
    apr_array_header_t *lines = apr_array_make(req->pool, 64,
                                               sizeof(const char *));
    apr_array_header_t *stores = NULL;
    unsigned counts[MGR_FAILED + 1];
    char *text;
    size_t i, j, total = 0;
    int s;

    memset(counts, 0, sizeof(counts));
    if (mgr_registry_list(&stores, srv->reg, req->pool) != DKV_OK) {
        stores = apr_array_make(req->pool, 1, sizeof(mgr_store_t *));
    }
    APR_ARRAY_PUSH(lines, const char *) =
        "# TYPE dkv_manager_stores gauge";
    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(req->pool, "dkv_manager_stores %d", stores->nelts);
    APR_ARRAY_PUSH(lines, const char *) =
        "# TYPE dkv_manager_restarts_total counter";
    for (i = 0; i < (size_t)stores->nelts; i++) {
        const mgr_store_t *st = DKV_ARRAY_IDX(stores, i, mgr_store_t *);

        for (j = 0; j < st->ninstances; j++) {
            const mgr_instance_t *in = &st->instances[j];
            mgr_node_status_t ns;

            if (strcmp(in->manager, srv->sign_id) != 0) {
                continue;
            }
            mgr_sup_status(&ns, srv->sup, st->name, in->name);
            if ((int)ns.state >= 0 && ns.state <= MGR_FAILED) {
                counts[ns.state]++;
            }
            APR_ARRAY_PUSH(lines, const char *) =
                apr_psprintf(req->pool, "dkv_manager_restarts_total{store="
                             "\"%s\",instance=\"%s\"} %u", st->name,
                             in->name, ns.restarts);
        }
    }
    APR_ARRAY_PUSH(lines, const char *) =
        "# TYPE dkv_manager_instances gauge";
    for (s = 0; s <= MGR_FAILED; s++) {
        APR_ARRAY_PUSH(lines, const char *) =
            apr_psprintf(req->pool, "dkv_manager_instances{state=\"%s\"} %u",
                         mgr_state_name((mgr_state_t)s), counts[s]);
    }
    APR_ARRAY_PUSH(lines, const char *) =
        "# TYPE dkv_manager_auth_failures_total counter";
    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(req->pool, "dkv_manager_auth_failures_total %u",
                     apr_atomic_read32(&srv->auth_failures));
    APR_ARRAY_PUSH(lines, const char *) =
        "# TYPE dkv_manager_http_requests_total counter";
    APR_ARRAY_PUSH(lines, const char *) =
        apr_psprintf(req->pool, "dkv_manager_http_requests_total %u",
                     apr_atomic_read32(&srv->requests));
    if (srv->metrics != NULL) {
        mgr_metrics_prometheus(srv->metrics, lines, req->pool);
    }
    for (i = 0; i < (size_t)lines->nelts; i++) {
        total += strlen(DKV_ARRAY_IDX(lines, i, const char *)) + 1;
    }
    text = apr_palloc(req->pool, total + 1);
    total = 0;
    for (i = 0; i < (size_t)lines->nelts; i++) {
        const char *l = DKV_ARRAY_IDX(lines, i, const char *);
        size_t n = strlen(l);

        memcpy(text + total, l, n);
        total += n;
        if (n == 0 || l[n - 1] != '\n') {
            text[total++] = '\n';
        }
    }
    text[total] = '\0';
    resp->status = 200;
    resp->type = "text/plain; version=0.0.4; charset=utf-8";
    resp->body = text;
    resp->len = total;
}

/* Checks the request's signature (and, in the registry, that its nonce
 * is new across restarts).  Returns 1 when it holds; 0 with RESP set. */
static int
check_signature(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
                struct MHD_Connection *conn, const char *query)
{
    dkv_admin_sig_headers_t h;
    int64_t now = apr_time_as_msec(apr_time_now());
    dkv_status_t st;

    h.key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                        DKV_ADMIN_HDR_KEY);
    h.timestamp = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                              DKV_ADMIN_HDR_TIME);
    h.nonce = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                          DKV_ADMIN_HDR_NONCE);
    h.signature = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                              DKV_ADMIN_HDR_SIG);
    st = dkv_admin_verify(srv->verifier, &h, req->method, req->path, query,
                          now, req->body, req->body_len);
    if (st == DKV_OK) {
        st = mgr_registry_nonce(srv->reg, h.nonce, now);
        if (st != DKV_OK && st != DKV_ECONFLICT) {
            mgr_resp_error(resp, req, 500, "Internal",
                           apr_psprintf(req->pool, "cannot record the "
                                        "request's nonce: %s",
                                        dkv_last_error()));
            return 0;
        }
        if (st == DKV_ECONFLICT) {
            dkv_error_set(DKV_EUNAUTHORIZED, "replayed nonce %s", h.nonce);
            st = DKV_EUNAUTHORIZED;
        }
    }
    if (st != DKV_OK) {
        const char *why = dkv_last_error();
        int named = h.key == NULL || strstr(why, h.key) != NULL;

        apr_atomic_inc32(&srv->auth_failures);
        mgr_resp_error(resp, req, 401, "Unauthorized",
                       apr_psprintf(req->pool, "not authorized: %s%s%s",
                                    why[0] ? why : "signature check failed",
                                    named ? "" : "; key ",
                                    named ? "" : h.key));
        return 0;
    }
    return 1;
}

/* Runs the request to its answer in RESP. */
static void
handle(mgr_resp_t *resp, mgr_server_t *srv, mgr_req_t *req,
       struct MHD_Connection *conn)
{
    const char *store = NULL, *instance = NULL, *allow = "GET", *query;
    args_baton_t args;
    route_t r;
    int is_get = strcmp(req->method, "GET") == 0
                 || strcmp(req->method, "HEAD") == 0;
    int is_post = strcmp(req->method, "POST") == 0;

    args.table = req->args;
    args.keys = apr_array_make(req->pool, 4, sizeof(const char *));
    args.values = apr_array_make(req->pool, 4, sizeof(const char *));
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg,
                              &args);
    query = dkv_admin_query_canon(
        (size_t)args.keys->nelts,
        (const char *const *)(void *)args.keys->elts,
        (const char *const *)(void *)args.values->elts, req->pool);

    r = find_route(&store, &instance, &allow, req->path, req->pool);
    if (r == R_NONE) {
        mgr_resp_error(resp, req, 404, "NotFound",
                       apr_psprintf(req->pool, "no such path: %s (the API "
                                    "is under /admin/v1/)", req->path));
        return;
    }
    if (!((is_get && strstr(allow, "GET") != NULL)
          || (is_post && strstr(allow, "POST") != NULL))) {
        mgr_resp_error(resp, req, 405, "MethodNotAllowed",
                       apr_psprintf(req->pool, "%s is not allowed on %s "
                                    "(allowed: %s)", req->method, req->path,
                                    allow));
        return;
    }
    if (is_post
        || MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       DKV_ADMIN_HDR_SIG) != NULL
        || MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       DKV_ADMIN_HDR_KEY) != NULL) {
        if (!check_signature(resp, srv, req, conn, query)) {
            return;
        }
    }
    switch (r) {
    case R_HEALTH:
        do_health(resp, srv, req);
        break;
    case R_METRICS:
        do_metrics(resp, srv, req);
        break;
    case R_IDENTITY:
        mgr_api_identity(resp, srv, req);
        break;
    case R_STORES:
        if (is_post) {
            mgr_api_create(resp, srv, req);
        } else {
            mgr_api_list(resp, srv, req);
        }
        break;
    case R_STORE:
        mgr_api_get(resp, srv, req, store);
        break;
    case R_INSTANCES:
        mgr_api_add(resp, srv, req, store);
        break;
    case R_SEAL:
        mgr_api_seal(resp, srv, req, store);
        break;
    case R_START:
        mgr_api_start(resp, srv, req, store, instance);
        break;
    case R_STOP:
        mgr_api_stop(resp, srv, req, store, instance);
        break;
    case R_ADMIN_METRICS:
        mgr_api_metrics(resp, srv, req);
        break;
    default:
        break;
    }
}

/* Queues RESP on CONN. */
static mhd_result_t
send_resp(struct MHD_Connection *conn, const mgr_resp_t *resp,
          const char *allow)
{
    struct MHD_Response *r;
    mhd_result_t ret;

    r = MHD_create_response_from_buffer(resp->len, (void *)resp->body,
                                        MHD_RESPMEM_MUST_COPY);
    if (r == NULL) {
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", resp->type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (resp->status == 405 && allow != NULL) {
        MHD_add_response_header(r, "Allow", allow);
    }
    ret = MHD_queue_response(conn, resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static mhd_result_t
on_request(void *cls, struct MHD_Connection *conn, const char *url,
           const char *method, const char *version, const char *upload,
           size_t *upload_size, void **con_cls)
{
    mgr_server_t *srv = cls;
    req_ctx_t *ctx = *con_cls;
    mgr_req_t req;
    mgr_resp_t resp;
    const char *allow = NULL, *s = NULL, *in = NULL;

    (void)version;
    if (ctx == NULL) {
        apr_pool_t *pool;
        const char *clen;

        if (apr_pool_create(&pool, NULL) != APR_SUCCESS) {
            return MHD_NO;
        }
        ctx = apr_pcalloc(pool, sizeof(*ctx));
        ctx->pool = pool;
        *con_cls = ctx;
        clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                           "Content-Length");
        if (clen != NULL && apr_atoi64(clen) > (apr_int64_t)MGR_BODY_MAX) {
            ctx->too_large = 1;
        }
        if (!ctx->too_large) {
            return MHD_YES;
        }
        /* Refused before its body is read: fall through to answer. */
    } else if (*upload_size != 0) {
        if (!ctx->too_large) {
            if (ctx->len + *upload_size > MGR_BODY_MAX) {
                ctx->too_large = 1;
            } else {
                if (ctx->len + *upload_size + 1 > ctx->cap) {
                    size_t cap = ctx->cap ? ctx->cap : 4096;
                    char *nb;

                    while (cap < ctx->len + *upload_size + 1) {
                        cap *= 2;
                    }
                    nb = dkv_realloc(ctx->body, cap);
                    if (nb == NULL) {
                        return MHD_NO;
                    }
                    ctx->body = nb;
                    ctx->cap = cap;
                }
                memcpy(ctx->body + ctx->len, upload, *upload_size);
                ctx->len += *upload_size;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }

    apr_atomic_inc32(&srv->requests);
    memset(&req, 0, sizeof(req));
    memset(&resp, 0, sizeof(resp));
    req.pool = ctx->pool;
    req.method = method;
    req.path = url;
    req.peer = peer_text(conn, ctx->pool);
    req.args = apr_table_make(ctx->pool, 4);
    req.body = ctx->body ? ctx->body : "";
    if (ctx->body != NULL) {
        ctx->body[ctx->len] = '\0';
    }
    req.body_len = ctx->len;
    if (ctx->too_large) {
        mgr_resp_error(&resp, &req, 413, "TooLarge",
                       apr_psprintf(ctx->pool, "the request body is over %u "
                                    "bytes", MGR_BODY_MAX));
    } else {
        handle(&resp, srv, &req, conn);
    }
    if (resp.status == 405) {
        find_route(&s, &in, &allow, url, ctx->pool);
    }
    return send_resp(conn, &resp, allow);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    req_ctx_t *ctx = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (ctx != NULL) {
        dkv_free(ctx->body);
        apr_pool_destroy(ctx->pool);
        *con_cls = NULL;
    }
}

static void DKV_PRINTF(2, 0)
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    dkv_log_v(DKV_LOG_WARN, fmt, ap);
}

/* ------------------------------------------------------- start, stop */

dkv_status_t
mgr_http_start(mgr_server_t *srv, apr_pool_t *pool)
{
    const mgr_config_t *cfg = &srv->cfg;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD
                         | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    apr_sockaddr_t *sa;
    apr_status_t rv;
    uint16_t port = cfg->port;
    char err[120];
    mgr_http_t *h = apr_pcalloc(pool, sizeof(*h));

    rv = apr_sockaddr_info_get(&sa, cfg->bind, APR_UNSPEC, cfg->port, 0,
                               pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(DKV_EINVAL, "--bind %s: not an address of "
                             "this machine (%s)", cfg->bind,
                             apr_strerror(rv, err, sizeof(err)));
    }
#if APR_HAVE_IPV6
    if (sa->family == APR_INET6) {
        flags |= strcmp(cfg->bind, "::") == 0 ? MHD_USE_DUAL_STACK
                                              : MHD_USE_IPv6;
    }
#endif
    h->daemon = MHD_start_daemon(
        flags, cfg->port, NULL, NULL, on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa->sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)srv,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)256,
        MHD_OPTION_END);
    if (h->daemon == NULL) {
        const char *why = NULL;

        if (cfg->port != 0
            && mgr_port_check(cfg->bind, cfg->port, "management", &why,
                              pool) == DKV_OK) {
            why = NULL;
        }
        return dkv_error_set(DKV_EUNAVAILABLE, "cannot listen on %s port "
                             "%u: %s", cfg->bind, (unsigned)cfg->port,
                             why ? why : "the address is in use or not "
                             "this machine's");
    }
#if MHD_VERSION >= 0x00096200
    {
        const union MHD_DaemonInfo *di;

        di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
        if (di != NULL && di->port != 0) {
            port = di->port;
        }
    }
#endif
    srv->http = h;
    srv->bound_port = port;
    if (strchr(cfg->bind, ':') != NULL) {
        srv->where = apr_psprintf(pool, "[%s]:%u", cfg->bind,
                                  (unsigned)port);
    } else {
        srv->where = apr_psprintf(pool, "%s:%u", cfg->bind, (unsigned)port);
    }
    return DKV_OK;
}

void
mgr_http_stop(mgr_server_t *srv)
{
    if (srv != NULL && srv->http != NULL && srv->http->daemon != NULL) {
        MHD_stop_daemon(srv->http->daemon);
        srv->http->daemon = NULL;
    }
}
