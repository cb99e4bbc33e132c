/*
 * nodectl.c -- dkv-manager talking to one of its nodes over the node's
 * client port (docs/protocol.md): a blocking connection from loopback,
 * HELLO with the node admin token (dkv_admin_node_token), then one of
 * MEMBERS, STATS or MEMBER_ADD.  Every call is bounded by its timeout
 * and opens and closes its own connection.
 */
#include <string.h>

#include <apr_network_io.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "manager/manager.h"
#include "common/proto.h"
#include "common/status.h"
#include "platform/platform.h"

typedef struct conn {
    apr_socket_t *sock;
    apr_time_t deadline;
    const mgr_node_spec_t *spec;
    const char *peer;              /* "store/instance on port N" */
} conn_t;

/* See manager.h. */
const char *
mgr_local_addr(const char *bind)
{
    if (bind == NULL || bind[0] == '\0' || strcmp(bind, "0.0.0.0") == 0
        || strcmp(bind, "localhost") == 0) {
        return "127.0.0.1";
    }
    if (strcmp(bind, "::") == 0 || strcmp(bind, "[::]") == 0) {
        return "::1";
    }
    return bind;
}

/* Time left before C's deadline (at least 1 ms); 0 when it passed. */
static apr_interval_time_t
time_left(const conn_t *c)
{
    apr_time_t now = apr_time_now();

    return now >= c->deadline ? 0 : c->deadline - now;
}

/* Sends the request REQ on C. */
static dkv_status_t
send_request(conn_t *c, const dkv_request_t *req)
{
    dkv_wbuf_t wb;
    dkv_status_t st;
    size_t off = 0;

    dkv_wbuf_init(&wb, 0);
    st = dkv_proto_request_encode(&wb, req);
    if (st != DKV_OK) {
        /* A copy: dkv_error_set cannot format its own buffer into it. */
        char why[DKV_ERROR_MAX + 1];

        apr_cpystrn(why, dkv_last_error(), sizeof(why));
        dkv_wbuf_free(&wb);
        return dkv_error_set(st, "%s: cannot encode the request: %s",
                             c->peer, why);
    }
    while (st == DKV_OK && off < wb.len) {
        apr_size_t n = wb.len - off;
        apr_interval_time_t left = time_left(c);

        if (left == 0) {
            st = dkv_error_set(DKV_ETIMEOUT, "%s: timed out sending",
                               c->peer);
            break;
        }
        apr_socket_timeout_set(c->sock, left);
        st = apr_socket_send(c->sock, (const char *)wb.data + off, &n);
        off += n;
        if (st != APR_SUCCESS) {
            char e[120];

            st = dkv_error_set(APR_STATUS_IS_TIMEUP(st) ? DKV_ETIMEOUT
                               : DKV_ETRANSPORT, "%s: send: %s", c->peer,
                               apr_strerror(st, e, sizeof(e)));
        }
    }
    dkv_wbuf_free(&wb);
    return st;
}

/* Reads one response frame from C and decodes it into *RES (in POOL);
 * checks it answers OP.  The frame's buffer comes from POOL. */
static dkv_status_t
read_response(dkv_response_t *res, conn_t *c, uint8_t op, apr_pool_t *pool)
{
    size_t cap = 64 * 1024, len = 0, size = 0;
    unsigned char *buf = apr_palloc(pool, cap);
    dkv_frame_t f;
    dkv_status_t st;
    char e[120];

    for (;;) {
        apr_size_t n;
        apr_interval_time_t left;

        st = dkv_proto_frame_parse(&f, &size, buf, len, 0);
        if (st == DKV_OK) {
            break;
        }
        if (st != APR_INCOMPLETE) {
            return dkv_error_set(DKV_ETRANSPORT, "%s: bad frame from the "
                                 "node", c->peer);
        }
        if (size > cap) {
            unsigned char *bigger = apr_palloc(pool, size);

            memcpy(bigger, buf, len);
            buf = bigger;
            cap = size;
        }
        if (len == cap) {
            unsigned char *bigger = apr_palloc(pool, cap * 2);

            memcpy(bigger, buf, len);
            buf = bigger;
            cap *= 2;
        }
        left = time_left(c);
        if (left == 0) {
            return dkv_error_set(DKV_ETIMEOUT, "%s: no answer in time",
                                 c->peer);
        }
        apr_socket_timeout_set(c->sock, left);
        n = cap - len;
        st = apr_socket_recv(c->sock, (char *)buf + len, &n);
        len += n;
        if (st == APR_EOF || (st == APR_SUCCESS && n == 0)) {
            return dkv_error_set(DKV_ETRANSPORT, "%s: the node closed the "
                                 "connection", c->peer);
        }
        if (st != APR_SUCCESS && n == 0) {
            return dkv_error_set(APR_STATUS_IS_TIMEUP(st) ? DKV_ETIMEOUT
                                 : DKV_ETRANSPORT, "%s: %s", c->peer,
                                 APR_STATUS_IS_TIMEUP(st)
                                 ? "no answer in time"
                                 : apr_strerror(st, e, sizeof(e)));
        }
    }
    st = dkv_proto_response_decode(res, &f, pool);
    if (st != DKV_OK) {
        /* A copy: dkv_error_set cannot format its own buffer into it. */
        char why[DKV_ERROR_MAX + 1];

        apr_cpystrn(why, dkv_last_error(), sizeof(why));
        return dkv_error_set(DKV_ETRANSPORT, "%s: malformed answer: %s",
                             c->peer, why);
    }
    if (res->op == DKV_MSG_PROTOCOL_ERROR) {
        return dkv_error_set(res->status != DKV_OK ? res->status
                             : DKV_ETRANSPORT, "%s: protocol error: %s",
                             c->peer, res->message);
    }
    if (res->op != op) {
        return dkv_error_set(DKV_ETRANSPORT, "%s: answer to op 0x%02x where "
                             "0x%02x was asked", c->peer, (unsigned)res->op,
                             (unsigned)op);
    }
    return DKV_OK;
}

/* Connects to the node of SPEC and says HELLO with the admin token. */
static dkv_status_t
open_conn(conn_t *c, const mgr_node_spec_t *spec, int timeout_ms,
          apr_pool_t *pool)
{
    apr_sockaddr_t *sa;
    dkv_request_t req;
    dkv_response_t res;
    apr_status_t rv;
    dkv_status_t st;
    const char *addr = mgr_local_addr(spec->bind);
    char e[120];

    memset(c, 0, sizeof(*c));
    c->spec = spec;
    c->deadline = apr_time_now()
                  + apr_time_from_msec(timeout_ms > 0 ? timeout_ms : 5000);
    c->peer = apr_psprintf(pool, "node %s/%s (%s port %u)",
                           spec->store ? spec->store : "?",
                           spec->instance ? spec->instance : "?", addr,
                           (unsigned)spec->client_port);
    if (spec->store == NULL || spec->client_port == 0) {
        return dkv_error_set(DKV_EINVAL, "%s: no store or client port",
                             c->peer);
    }
    rv = apr_sockaddr_info_get(&sa, addr, APR_UNSPEC, spec->client_port, 0,
                               pool);
    if (rv == APR_SUCCESS) {
        rv = apr_socket_create(&c->sock, sa->family, SOCK_STREAM,
                               APR_PROTO_TCP, pool);
    }
    if (rv == APR_SUCCESS) {
        apr_socket_opt_set(c->sock, APR_TCP_NODELAY, 1);
        rv = dkv_plat_connect(c->sock, sa, time_left(c));
    }
    if (rv != APR_SUCCESS) {
        if (c->sock != NULL) {
            apr_socket_close(c->sock);
            c->sock = NULL;
        }
        return dkv_error_set(DKV_EUNAVAILABLE, "%s: cannot connect: %s",
                             c->peer, APR_STATUS_IS_TIMEUP(rv)
                             ? "timed out" : apr_strerror(rv, e, sizeof(e)));
    }
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_HELLO;
    req.id = 1;
    req.magic = DKV_PROTO_MAGIC;
    req.min_version = DKV_PROTO_VERSION;
    req.max_version = DKV_PROTO_VERSION;
    req.store = spec->store;
    if (spec->admin_token != NULL && spec->admin_token[0] != '\0') {
        req.token = spec->admin_token;
        req.token_len = strlen(spec->admin_token);
    }
    req.client = "dkv-manager";
    st = send_request(c, &req);
    if (st == DKV_OK) {
        st = read_response(&res, c, DKV_MSG_HELLO, pool);
    }
    if (st == DKV_OK && res.status != DKV_OK) {
        st = dkv_error_set(res.status, "%s refused the manager: %s", c->peer,
                           res.message[0] ? res.message
                                          : dkv_strerror(res.status));
    }
    if (st == DKV_OK && (res.store == NULL
                         || strcmp(res.store, spec->store) != 0)) {
        st = dkv_error_set(DKV_ECONFLICT, "%s serves store \"%s\", not "
                           "\"%s\"", c->peer, res.store ? res.store : "",
                           spec->store);
    }
    if (st != DKV_OK) {
        apr_socket_close(c->sock);
        c->sock = NULL;
    }
    return st;
}

/* Sends REQ (after HELLO) and reads its answer into *RES. */
static dkv_status_t
call(dkv_response_t *res, const mgr_node_spec_t *spec, dkv_request_t *req,
     int timeout_ms, apr_pool_t *pool)
{
    conn_t c;
    dkv_status_t st = open_conn(&c, spec, timeout_ms, pool);

    if (st != DKV_OK) {
        return st;
    }
    req->id = 2;
    st = send_request(&c, req);
    if (st == DKV_OK) {
        st = read_response(res, &c, req->op, pool);
    }
    apr_socket_close(c.sock);
    if (st == DKV_OK && res->status != DKV_OK) {
        st = dkv_error_set(res->status, "%s: %s", c.peer,
                           res->message[0] ? res->message
                                           : dkv_strerror(res->status));
    }
    return st;
}

/* See manager.h. */
dkv_status_t
mgr_node_members(mgr_members_t *out, const mgr_node_spec_t *n,
                 int timeout_ms, apr_pool_t *pool)
{
    dkv_request_t req;
    dkv_response_t res;
    dkv_status_t st;
    size_t i;

    memset(out, 0, sizeof(*out));
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_MEMBERS;
    st = call(&res, n, &req, timeout_ms, pool);
    if (st != DKV_OK) {
        return st;
    }
    out->leader = res.leader;
    for (i = 0; i < res.nmembers && i < 256; i++) {
        out->ids[i] = res.members[i].id;
        out->roles[i] = res.members[i].roles;
    }
    out->n = i;
    return DKV_OK;
}

/* See manager.h. */
dkv_status_t
mgr_node_member_add(const mgr_node_spec_t *n, uint32_t id, const char *host,
                    uint16_t cluster_port, uint16_t client_port,
                    int timeout_ms, const char **msg, apr_pool_t *pool)
{
    dkv_request_t req;
    dkv_response_t res;
    dkv_status_t st;

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_MEMBER_ADD;
    req.member_id = id;
    req.member_host = host;
    req.member_cluster_port = cluster_port;
    req.member_client_port = client_port;
    st = call(&res, n, &req, timeout_ms, pool);
    if (st != DKV_OK) {
        *msg = apr_psprintf(pool, "adding node %u (%s:%u) failed: %s",
                            (unsigned)id, host ? host : "",
                            (unsigned)cluster_port, dkv_last_error());
        return st;
    }
    *msg = res.message[0] ? apr_pstrdup(pool, res.message)
                          : apr_psprintf(pool, "node %u added",
                                         (unsigned)id);
    return DKV_OK;
}

/* See manager.h. */
dkv_status_t
mgr_node_stats(apr_array_header_t **stats, const mgr_node_spec_t *n,
               int timeout_ms, apr_pool_t *pool)
{
    dkv_request_t req;
    dkv_response_t res;
    dkv_status_t st;
    size_t i;

    *stats = NULL;
    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_STATS;
    st = call(&res, n, &req, timeout_ms, pool);
    if (st != DKV_OK) {
        return st;
    }
    *stats = apr_array_make(pool, (int)(res.nstats ? res.nstats : 1),
                            sizeof(dkv_proto_stat_t));
    for (i = 0; i < res.nstats; i++) {
        *(dkv_proto_stat_t *)apr_array_push(*stats) = res.stats[i];
    }
    return DKV_OK;
}
