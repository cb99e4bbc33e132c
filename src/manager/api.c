/*
 * api.c -- the endpoints of dkv-manager's admin API (docs/admin-api.md):
 * stores and instances in the registry, their secrets on disk, the
 * supervisor's view of the local nodes and the group as one of them sees
 * it.  http.c has routed the request and checked its signature.
 *
 * Changes to the registry are read-modify-write under SRV->lock; the
 * slow parts (test binds aside: starting a node, MEMBER_ADD, MEMBERS) run
 * outside it, so one slow start does not hold up the other requests.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/status.h"
#include "manager/server.h"

#define TOKEN_MAX 4096
#define START_TIMEOUT_DEFAULT 30
#define NODECTL_TIMEOUT_MS 2000

/* ------------------------------------------------------------ helpers */

/* 1 when NAME is 1-64 of [A-Za-z0-9._-] starting with a letter or
 * digit. */
static int
valid_name(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n > MGR_NAME_MAX) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                    || (c >= '0' && c <= '9');

        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
            return 0;
        }
    }
    return 1;
}

static const char *
iso_time(int64_t ms, apr_pool_t *pool)
{
    apr_time_exp_t t;

    apr_time_exp_gmt(&t, (apr_time_t)ms * 1000);
    return apr_psprintf(pool, "%04d-%02d-%02dT%02d:%02d:%02dZ",
                        t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                        t.tm_hour, t.tm_min, t.tm_sec);
}

static int64_t
now_ms(void)
{
    return apr_time_as_msec(apr_time_now());
}

/* 1 when HOST is an IPv4 or IPv6 literal. */
static int
is_ip_literal(const char *host)
{
    int dots = 0, digits = 0;
    const char *p;

    if (strchr(host, ':') != NULL) {
        return 1;                  /* no name has a colon */
    }
    for (p = host; *p; p++) {
        if (*p == '.') {
            if (digits == 0) {
                return 0;
            }
            dots++;
            digits = 0;
        } else if (*p >= '0' && *p <= '9' && digits < 3) {
            digits++;
        } else {
            return 0;
        }
    }
    return dots == 3 && digits > 0;
}

/* The address a local instance's node listens on. */
static const char *
node_bind(const char *host)
{
    if (is_ip_literal(host)) {
        return host;
    }
    if (apr_strnatcasecmp(host, "localhost") == 0) {
        return "127.0.0.1";
    }
    return "0.0.0.0";
}

static const char *
store_dir(const mgr_server_t *srv, const char *store, apr_pool_t *pool)
{
    return apr_pstrcat(pool, srv->cfg.data_dir, "/stores/", store, NULL);
}

static const char *
secret_path(const mgr_server_t *srv, const char *store, apr_pool_t *pool)
{
    return apr_pstrcat(pool, store_dir(srv, store, pool), "/secret", NULL);
}

static const char *
token_path(const mgr_server_t *srv, const char *store, apr_pool_t *pool)
{
    return apr_pstrcat(pool, store_dir(srv, store, pool), "/token", NULL);
}

static int
file_exists(const char *path, apr_pool_t *pool)
{
    apr_finfo_t fi;

    return apr_stat(&fi, path, APR_FINFO_TYPE, pool) == APR_SUCCESS
           && fi.filetype == APR_REG;
}

/* Reads the store's secret (64 hex digits) into SECRET (32 bytes). */
static dkv_status_t
read_secret(unsigned char *secret, const mgr_server_t *srv,
            const char *store, apr_pool_t *pool)
{
    const char *path = secret_path(srv, store, pool);
    char buf[80];
    apr_size_t len = sizeof(buf) - 1;
    apr_file_t *f;
    apr_status_t rv;
    size_t bin = 0;
    char err[120];

    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, pool);
    if (rv == APR_SUCCESS) {
        rv = apr_file_read_full(f, buf, len, &len);
        apr_file_close(f);
        if (rv == APR_EOF) {
            rv = APR_SUCCESS;
        }
    }
    if (rv != APR_SUCCESS) {
        sodium_memzero(buf, sizeof(buf));
        return dkv_error_set(rv, "cannot read the secret of store %s (%s): "
                             "%s", store, path,
                             apr_strerror(rv, err, sizeof(err)));
    }
    if (len < 64 || sodium_hex2bin(secret, DKV_STORE_SECRET_BYTES, buf, 64,
                                   NULL, &bin, NULL) != 0
        || bin != DKV_STORE_SECRET_BYTES) {
        sodium_memzero(buf, sizeof(buf));
        return dkv_error_set(DKV_ECORRUPT, "the secret file %s of store %s "
                             "is damaged (64 hex digits expected)", path,
                             store);
    }
    sodium_memzero(buf, sizeof(buf));
    return DKV_OK;
}

/* Reads the store's token file into *DATA (sodium_malloc'd). */
static dkv_status_t
read_token(unsigned char **data, size_t *len, const mgr_server_t *srv,
           const char *store, apr_pool_t *pool)
{
    const char *path = token_path(srv, store, pool);
    apr_size_t got = TOKEN_MAX + 1;
    apr_file_t *f;
    apr_status_t rv;
    char err[120];

    *data = sodium_malloc(TOKEN_MAX + 1);
    if (*data == NULL) {
        return dkv_error_set(APR_ENOMEM, "out of secure memory");
    }
    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, pool);
    if (rv == APR_SUCCESS) {
        rv = apr_file_read_full(f, *data, got, &got);
        apr_file_close(f);
        if (rv == APR_EOF) {
            rv = APR_SUCCESS;
        }
    }
    if (rv != APR_SUCCESS || got == 0 || got > TOKEN_MAX) {
        sodium_free(*data);
        *data = NULL;
        if (rv == APR_SUCCESS) {
            return dkv_error_set(DKV_ECORRUPT, "the token file %s of store "
                                 "%s is empty or too long", path, store);
        }
        return dkv_error_set(rv, "cannot read the token of store %s (%s): "
                             "%s", store, path,
                             apr_strerror(rv, err, sizeof(err)));
    }
    *len = got;
    return DKV_OK;
}

/* Sets each instance's local flag from its manager key id. */
static void
mark_local(mgr_store_t *s, const mgr_server_t *srv)
{
    size_t i;

    for (i = 0; i < s->ninstances; i++) {
        s->instances[i].local = strcmp(s->instances[i].manager,
                                       srv->sign_id) == 0;
    }
}

static mgr_instance_t *
find_instance(mgr_store_t *s, const char *name)
{
    size_t i;

    for (i = 0; i < s->ninstances; i++) {
        if (strcmp(s->instances[i].name, name) == 0) {
            return &s->instances[i];
        }
    }
    return NULL;
}

/* Reads the request's JSON object body; NULL with RESP set (400). */
static json_t *
read_body(mgr_resp_t *resp, const mgr_req_t *req)
{
    json_error_t jerr;
    json_t *root;

    if (req->body_len == 0) {
        mgr_resp_error(resp, req, 400, "BadRequest", "the request has no "
                       "body: a JSON object is expected");
        return NULL;
    }
    root = json_loadb(req->body, req->body_len, 0, &jerr);
    if (root == NULL) {
        mgr_resp_error(resp, req, 400, "BadRequest",
                       apr_psprintf(req->pool, "malformed JSON at line %d, "
                                    "column %d: %s", jerr.line, jerr.column,
                                    jerr.text));
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        mgr_resp_error(resp, req, 400, "BadRequest", "the body must be a "
                       "JSON object");
        return NULL;
    }
    return root;
}

/* Reads an integer field KEY of O in [LO, HI]; returns NULL or what is
 * wrong. */
static const char *
get_uint(json_int_t *out, json_t *o, const char *key, json_int_t lo,
         json_int_t hi, const char *what, apr_pool_t *pool)
{
    json_t *v = json_object_get(o, key);

    if (v == NULL) {
        return apr_psprintf(pool, "%s: \"%s\" is missing", what, key);
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo
        || json_integer_value(v) > hi) {
        return apr_psprintf(pool, "%s: \"%s\" must be an integer from %"
                            JSON_INTEGER_FORMAT " to %" JSON_INTEGER_FORMAT,
                            what, key, lo, hi);
    }
    *out = json_integer_value(v);
    return NULL;
}

/* Parses an instance definition O into IN; returns NULL or what is
 * wrong. */
static const char *
parse_def(mgr_instance_t *in, json_t *o, size_t idx, const char *list,
          apr_pool_t *pool)
{
    const char *what = apr_psprintf(pool, "%s[%u]", list, (unsigned)idx), *name,
               *host, *mgr, *bad;
    json_int_t v;

    memset(in, 0, sizeof(*in));
    if (!json_is_object(o)) {
        return apr_psprintf(pool, "%s must be an object", what);
    }
    name = json_string_value(json_object_get(o, "name"));
    if (name == NULL) {
        return apr_psprintf(pool, "%s: \"name\" (a string) is missing",
                            what);
    }
    if (!valid_name(name)) {
        return apr_psprintf(pool, "%s: bad instance name '%s' (1-64 of "
                            "A-Z a-z 0-9 . _ -, starting with a letter or "
                            "digit)", what, name);
    }
    what = apr_psprintf(pool, "instance %s", name);
    if ((bad = get_uint(&v, o, "nodeId", 1, 65535, what, pool)) != NULL) {
        return bad;
    }
    in->node_id = (uint32_t)v;
    host = json_string_value(json_object_get(o, "host"));
    if (host == NULL || host[0] == '\0' || strlen(host) > MGR_HOST_MAX
        || strpbrk(host, " /[]\t\r\n,=") != NULL) {
        return apr_psprintf(pool, "%s: \"host\" must be a host name or an "
                            "IP address", what);
    }
    mgr = json_string_value(json_object_get(o, "manager"));
    if (mgr == NULL || mgr[0] == '\0' || strlen(mgr) >= sizeof(in->manager)) {
        return apr_psprintf(pool, "%s: \"manager\" must be a manager's key "
                            "id (GET /admin/v1/identity signKey)", what);
    }
    if ((bad = get_uint(&v, o, "clusterPort", 1, 65535, what, pool))
        != NULL) {
        return bad;
    }
    in->cluster_port = (uint16_t)v;
    if ((bad = get_uint(&v, o, "clientPort", 1, 65535, what, pool))
        != NULL) {
        return bad;
    }
    in->client_port = (uint16_t)v;
    apr_cpystrn(in->name, name, sizeof(in->name));
    apr_cpystrn(in->host, host, sizeof(in->host));
    apr_cpystrn(in->manager, mgr, sizeof(in->manager));
    return NULL;
}

/* Parses the array KEY of ROOT into *OUT (*N entries, in POOL). */
static const char *
parse_defs(mgr_instance_t **out, size_t *n, json_t *root, const char *key,
           int required, apr_pool_t *pool)
{
    json_t *arr = json_object_get(root, key);
    size_t i;

    *out = NULL;
    *n = 0;
    if (arr == NULL && !required) {
        return NULL;
    }
    if (!json_is_array(arr) || (required && json_array_size(arr) == 0)) {
        return apr_psprintf(pool, "\"%s\" must be a non-empty array of "
                            "instance definitions", key);
    }
    *out = apr_pcalloc(pool, (json_array_size(arr) + 1) * sizeof(**out));
    for (i = 0; i < json_array_size(arr); i++) {
        const char *bad = parse_def(&(*out)[i], json_array_get(arr, i), i,
                                    key, pool);

        if (bad != NULL) {
            return bad;
        }
    }
    *n = json_array_size(arr);
    return NULL;
}

/* Checks that the instances of S have unique names, ids and ports (per
 * host); returns NULL or what is wrong. */
static const char *
check_unique(const mgr_store_t *s, apr_pool_t *pool)
{
    size_t i, j;

    for (i = 0; i < s->ninstances; i++) {
        const mgr_instance_t *a = &s->instances[i];

        if (a->cluster_port == a->client_port) {
            return apr_psprintf(pool, "instance %s: cluster and client port "
                                "are both %u", a->name,
                                (unsigned)a->client_port);
        }
        for (j = i + 1; j < s->ninstances; j++) {
            const mgr_instance_t *b = &s->instances[j];

            if (strcmp(a->name, b->name) == 0) {
                return apr_psprintf(pool, "instance name %s appears twice",
                                    a->name);
            }
            if (a->node_id == b->node_id) {
                return apr_psprintf(pool, "instances %s and %s have the same "
                                    "nodeId %u", a->name, b->name,
                                    (unsigned)a->node_id);
            }
            if (apr_strnatcasecmp(a->host, b->host) == 0
                && (a->cluster_port == b->cluster_port
                    || a->cluster_port == b->client_port
                    || a->client_port == b->cluster_port
                    || a->client_port == b->client_port)) {
                return apr_psprintf(pool, "instances %s and %s share a port "
                                    "on host %s", a->name, b->name,
                                    a->host);
            }
        }
    }
    return NULL;
}

/* 1 when two definitions are the same. */
static int
same_def(const mgr_instance_t *a, const mgr_instance_t *b)
{
    return strcmp(a->name, b->name) == 0 && a->node_id == b->node_id
           && strcmp(a->host, b->host) == 0
           && strcmp(a->manager, b->manager) == 0
           && a->cluster_port == b->cluster_port
           && a->client_port == b->client_port;
}

/* Checks a local instance's ports: inside the ranges, not assigned to
 * another instance of any store in STORES (skipping store SELF's own
 * instance of the same name), free now.  Returns 0 (fine) or the HTTP
 * status, with *CODE and *MSG. */
static unsigned
check_ports(const char **code, const char **msg, mgr_server_t *srv,
            const char *self, const mgr_instance_t *in,
            apr_array_header_t *stores, apr_pool_t *pool)
{
    const mgr_range_t *cr = &srv->cfg.cluster_range;
    const mgr_range_t *lr = &srv->cfg.client_range;
    uint16_t ports[2];
    const char *whats[2] = { "cluster", "client" };
    int k;
    size_t i, j;

    ports[0] = in->cluster_port;
    ports[1] = in->client_port;
    if (in->cluster_port < cr->lo || in->cluster_port > cr->hi) {
        *code = "PortOutOfRange";
        *msg = apr_psprintf(pool, "cluster port %u of instance %s is outside "
                            "this manager's cluster range %u-%u",
                            (unsigned)in->cluster_port, in->name,
                            (unsigned)cr->lo, (unsigned)cr->hi);
        return 409;
    }
    if (in->client_port < lr->lo || in->client_port > lr->hi) {
        *code = "PortOutOfRange";
        *msg = apr_psprintf(pool, "client port %u of instance %s is outside "
                            "this manager's client range %u-%u",
                            (unsigned)in->client_port, in->name,
                            (unsigned)lr->lo, (unsigned)lr->hi);
        return 409;
    }
    for (i = 0; stores != NULL && i < (size_t)stores->nelts; i++) {
        const mgr_store_t *s = DKV_ARRAY_IDX(stores, i, mgr_store_t *);

        for (j = 0; j < s->ninstances; j++) {
            const mgr_instance_t *o = &s->instances[j];

            if (strcmp(o->manager, srv->sign_id) != 0
                || (strcmp(s->name, self) == 0
                    && strcmp(o->name, in->name) == 0)) {
                continue;
            }
            for (k = 0; k < 2; k++) {
                if (ports[k] == o->cluster_port
                    || ports[k] == o->client_port) {
                    *code = "Conflict";
                    *msg = apr_psprintf(pool, "%s port %u of instance %s is "
                                        "already assigned to instance %s of "
                                        "store %s on this manager", whats[k],
                                        (unsigned)ports[k], in->name,
                                        o->name, s->name);
                    return 409;
                }
            }
        }
    }
    for (k = 0; k < 2; k++) {
        const char *why = NULL;

        if (mgr_port_check(node_bind(in->host), ports[k], whats[k], &why,
                           pool) != DKV_OK) {
            *code = "PortInUse";
            *msg = apr_psprintf(pool, "%s (instance %s)",
                                why ? why : apr_psprintf(pool, "%s port %u "
                                                         "is in use",
                                                         whats[k],
                                                         (unsigned)ports[k]),
                                in->name);
            return 409;
        }
    }
    return 0;
}

/* Unseals SEALED_SECRET and SEALED_TOKEN and writes them to the store's
 * directory.  Returns 0 or the HTTP status with *MSG. */
static unsigned
store_secrets(const char **code, const char **msg, mgr_server_t *srv,
              const char *store, const char *sealed_secret,
              const char *sealed_token, apr_pool_t *pool)
{
    unsigned char *secret = NULL, *token = NULL;
    size_t slen = 0, tlen = 0;
    char *hex;
    const char *dir = store_dir(srv, store, pool);
    apr_status_t rv;
    dkv_status_t st;
    char err[120];

    *code = "BadRequest";
    if (dkv_unseal(&secret, &slen, srv->keys, sealed_secret) != DKV_OK) {
        *msg = "sealedSecret does not open with this manager's key (was it "
               "sealed to this manager's boxKey?)";
        return 400;
    }
    if (slen != DKV_STORE_SECRET_BYTES) {
        sodium_free(secret);
        *msg = apr_psprintf(pool, "sealedSecret holds %u bytes: a store's "
                            "secret has %d", (unsigned)slen,
                            DKV_STORE_SECRET_BYTES);
        return 400;
    }
    if (dkv_unseal(&token, &tlen, srv->keys, sealed_token) != DKV_OK) {
        sodium_free(secret);
        *msg = "sealedToken does not open with this manager's key (was it "
               "sealed to this manager's boxKey?)";
        return 400;
    }
    if (tlen == 0 || tlen > TOKEN_MAX) {
        sodium_free(secret);
        sodium_free(token);
        *msg = apr_psprintf(pool, "sealedToken holds %u bytes (1 to %d "
                            "expected)", (unsigned)tlen, TOKEN_MAX);
        return 400;
    }
    *code = "Internal";
    rv = apr_dir_make_recursive(dir, APR_FPROT_UREAD | APR_FPROT_UWRITE
                                | APR_FPROT_UEXECUTE, pool);
    if (rv != APR_SUCCESS) {
        sodium_free(secret);
        sodium_free(token);
        *msg = apr_psprintf(pool, "cannot create %s: %s", dir,
                            apr_strerror(rv, err, sizeof(err)));
        return 500;
    }
    hex = sodium_malloc(2 * DKV_STORE_SECRET_BYTES + 2);
    if (hex == NULL) {
        sodium_free(secret);
        sodium_free(token);
        *msg = "out of secure memory";
        return 500;
    }
    sodium_bin2hex(hex, 2 * DKV_STORE_SECRET_BYTES + 1, secret, slen);
    hex[2 * DKV_STORE_SECRET_BYTES] = '\n';
    st = dkv_write_private_file(secret_path(srv, store, pool), hex,
                                2 * DKV_STORE_SECRET_BYTES + 1, pool);
    if (st == DKV_OK) {
        st = dkv_write_private_file(token_path(srv, store, pool), token,
                                    tlen, pool);
    }
    sodium_free(hex);
    sodium_free(secret);
    sodium_free(token);
    if (st != DKV_OK) {
        *msg = apr_pstrdup(pool, dkv_last_error());
        return 500;
    }
    return 0;
}

/* --------------------------------------------------------- JSON forms */

static json_t *
instance_json(mgr_server_t *srv, const mgr_store_t *s,
              const mgr_instance_t *in, mgr_node_status_t *ns,
              apr_pool_t *pool)
{
    json_t *o = json_object();

    json_object_set_new(o, "name", json_string(in->name));
    json_object_set_new(o, "nodeId", json_integer(in->node_id));
    json_object_set_new(o, "host", json_string(in->host));
    json_object_set_new(o, "manager", json_string(in->manager));
    json_object_set_new(o, "clusterPort", json_integer(in->cluster_port));
    json_object_set_new(o, "clientPort", json_integer(in->client_port));
    json_object_set_new(o, "local", json_boolean(in->local));
    if (in->local) {
        mgr_sup_status(ns, srv->sup, s->name, in->name);
        json_object_set_new(o, "state",
                            json_string(mgr_state_name(ns->state)));
        json_object_set_new(o, "pid", ns->pid ? json_integer(ns->pid)
                                              : json_null());
        json_object_set_new(o, "restarts", json_integer(ns->restarts));
        json_object_set_new(o, "startedAt",
                            ns->started_ms ? json_string(iso_time(
                                                 ns->started_ms, pool))
                                           : json_null());
        json_object_set_new(o, "lastError",
                            ns->last_error[0] ? json_string(ns->last_error)
                                              : json_null());
        json_object_set_new(o, "logFile",
                            ns->log_file[0] ? json_string(ns->log_file)
                            : json_string(apr_pstrcat(pool,
                                  store_dir(srv, s->name, pool), "/",
                                  in->name, "/node.log", NULL)));
    } else {
        memset(ns, 0, sizeof(*ns));
        json_object_set_new(o, "state", json_string("Remote"));
        json_object_set_new(o, "restarts", json_integer(0));
        json_object_set_new(o, "lastError", json_null());
    }
    json_object_set_new(o, "joining", json_boolean(in->joining));
    return o;
}

/* The store object; WITH_MEMBERS: ask a running local node for the
 * group. */
static json_t *
store_json(mgr_server_t *srv, const mgr_store_t *s, int with_members,
           apr_pool_t *pool)
{
    json_t *o = json_object(), *insts = json_array(), *members = json_array();
    unsigned nlocal = 0, nrunning = 0, nstopped = 0, voters = 0;
    const char *status, *leader = NULL;
    size_t i, j;

    for (i = 0; i < s->ninstances; i++) {
        mgr_node_status_t ns;

        json_array_append_new(insts, instance_json(srv, s, &s->instances[i],
                                                   &ns, pool));
        if (s->instances[i].local) {
            nlocal++;
            if (ns.state == MGR_RUNNING) {
                nrunning++;
            } else if (ns.state == MGR_STOPPED || ns.state == MGR_FAILED) {
                nstopped++;
            }
        }
    }
    if (nlocal == 0) {
        status = "NoInstances";
    } else if (nrunning == nlocal) {
        status = "Running";
    } else if (nrunning == 0) {
        status = "Stopped";
    } else {
        status = "Partial";
    }
    if (with_members && nrunning > 0) {
        apr_array_header_t *run = mgr_sup_running(srv->sup, pool);

        for (i = 0; run != NULL && i < (size_t)run->nelts; i++) {
            const mgr_node_spec_t *n = &DKV_ARRAY_IDX(run, i,
                                                      mgr_node_spec_t);
            mgr_members_t m;

            if (strcmp(n->store, s->name) != 0) {
                continue;
            }
            memset(&m, 0, sizeof(m));
            if (mgr_node_members(&m, n, NODECTL_TIMEOUT_MS, pool) != DKV_OK) {
                dkv_log(DKV_LOG_DEBUG, "MEMBERS of store %s instance %s: %s",
                        s->name, n->instance, dkv_last_error());
                continue;
            }
            for (j = 0; j < m.n && j < 256; j++) {
                json_t *mo = json_object();
                const char *name = NULL, *role = "voter";
                size_t k;

                for (k = 0; k < s->ninstances; k++) {
                    if (s->instances[k].node_id == m.ids[j]) {
                        name = s->instances[k].name;
                    }
                }
                if (m.roles[j] & DKV_PROTO_MEMBER_LEARNER) {
                    role = "learner";
                } else {
                    voters++;
                }
                if (m.ids[j] == m.leader && m.leader != 0) {
                    leader = name ? name
                                  : apr_psprintf(pool, "node %u",
                                                 (unsigned)m.leader);
                }
                json_object_set_new(mo, "nodeId", json_integer(m.ids[j]));
                json_object_set_new(mo, "name", name ? json_string(name)
                                                     : json_null());
                json_object_set_new(mo, "role", json_string(role));
                json_array_append_new(members, mo);
            }
            break;
        }
    }
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "createdAt",
                        json_string(iso_time(s->created_ms, pool)));
    json_object_set_new(o, "instancePrefix", json_string(s->prefix));
    json_object_set_new(o, "instances", insts);
    json_object_set_new(o, "localInstances", json_integer(nlocal));
    json_object_set_new(o, "runningInstances", json_integer(nrunning));
    json_object_set_new(o, "stoppedInstances", json_integer(nstopped));
    json_object_set_new(o, "participatingNodes", json_integer(voters));
    json_object_set_new(o, "leader", leader ? json_string(leader)
                                            : json_null());
    json_object_set_new(o, "members", members);
    {
        json_t *set = json_object();

        json_object_set_new(set, "heartbeatMs",
                            json_integer(s->heartbeat_ms));
        json_object_set_new(set, "electionTimeoutMs",
                            json_integer(s->election_ms));
        json_object_set_new(o, "settings", set);
    }
    return o;
}

/* Looks store NAME up; NULL with RESP set (400, 404 or 500). */
static mgr_store_t *
load_store(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
           const char *name)
{
    mgr_store_t *s = NULL;

    if (!valid_name(name)) {
        mgr_resp_error(resp, req, 400, "BadRequest",
                       apr_psprintf(req->pool, "bad store name '%s'", name));
        return NULL;
    }
    if (mgr_registry_get(&s, srv->reg, name, req->pool) != DKV_OK) {
        mgr_resp_error(resp, req, 500, "Internal", dkv_last_error());
        return NULL;
    }
    if (s == NULL) {
        mgr_resp_error(resp, req, 404, "NotFound",
                       apr_psprintf(req->pool, "no store %s on this manager",
                                    name));
        return NULL;
    }
    mark_local(s, srv);
    return s;
}

/* Builds the spec of local instance IN of S. */
static dkv_status_t
build_spec(mgr_node_spec_t *spec, mgr_server_t *srv, const mgr_store_t *s,
           const mgr_instance_t *in, apr_pool_t *pool)
{
    unsigned char *secret;
    char tok[65];
    apr_array_header_t *peers = apr_array_make(pool, 8, sizeof(char *));
    size_t i;
    dkv_status_t st;

    secret = sodium_malloc(DKV_STORE_SECRET_BYTES);
    if (secret == NULL) {
        return dkv_error_set(APR_ENOMEM, "out of secure memory");
    }
    st = read_secret(secret, srv, s->name, pool);
    if (st != DKV_OK) {
        sodium_free(secret);
        return st;
    }
    dkv_admin_node_token(tok, secret);
    sodium_free(secret);
    for (i = 0; i < s->ninstances; i++) {
        const mgr_instance_t *o = &s->instances[i];

        APR_ARRAY_PUSH(peers, char *) =
            apr_psprintf(pool, strchr(o->host, ':') ? "%u=[%s]:%u:%u"
                                                    : "%u=%s:%u:%u",
                         (unsigned)o->node_id, o->host,
                         (unsigned)o->cluster_port,
                         (unsigned)o->client_port);
    }
    memset(spec, 0, sizeof(*spec));
    spec->store = apr_pstrdup(pool, s->name);
    spec->instance = apr_pstrdup(pool, in->name);
    spec->node_id = in->node_id;
    spec->dir = apr_pstrcat(pool, store_dir(srv, s->name, pool), "/",
                            in->name, NULL);
    spec->bind = apr_pstrdup(pool, node_bind(in->host));
    spec->cluster_port = in->cluster_port;
    spec->client_port = in->client_port;
    spec->peers = apr_array_pstrcat(pool, peers, ',');
    spec->secret_file = secret_path(srv, s->name, pool);
    spec->token_file = token_path(srv, s->name, pool);
    spec->admin_token = apr_pstrdup(pool, tok);
    sodium_memzero(tok, sizeof(tok));
    spec->heartbeat_ms = s->heartbeat_ms ? s->heartbeat_ms : 100;
    spec->election_ms = s->election_ms ? s->election_ms : 1000;
    spec->join = in->joining;
    return DKV_OK;
}

/* ------------------------------------------------------------ reads */

void
mgr_api_identity(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req)
{
    json_t *o = json_object(), *r;

    json_object_set_new(o, "signKey", json_string(srv->sign_id));
    json_object_set_new(o, "boxKey", json_string(srv->box_id));
    json_object_set_new(o, "version", json_string(dkv_version()));
    json_object_set_new(o, "managementPort", json_integer(srv->bound_port));
    r = json_object();
    json_object_set_new(r, "lo", json_integer(srv->cfg.cluster_range.lo));
    json_object_set_new(r, "hi", json_integer(srv->cfg.cluster_range.hi));
    json_object_set_new(o, "clusterRange", r);
    r = json_object();
    json_object_set_new(r, "lo", json_integer(srv->cfg.client_range.lo));
    json_object_set_new(r, "hi", json_integer(srv->cfg.client_range.hi));
    json_object_set_new(o, "clientRange", r);
    mgr_resp_json(resp, 200, o, req);
}

void
mgr_api_list(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req)
{
    apr_array_header_t *stores;
    json_t *arr, *o;
    int i;

    if (mgr_registry_list(&stores, srv->reg, req->pool) != DKV_OK) {
        mgr_resp_error(resp, req, 500, "Internal", dkv_last_error());
        return;
    }
    arr = json_array();
    for (i = 0; i < stores->nelts; i++) {
        mgr_store_t *s = DKV_ARRAY_IDX(stores, i, mgr_store_t *);

        mark_local(s, srv);
        json_array_append_new(arr, store_json(srv, s, 1, req->pool));
    }
    o = json_object();
    json_object_set_new(o, "stores", arr);
    mgr_resp_json(resp, 200, o, req);
}

void
mgr_api_get(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
            const char *store)
{
    mgr_store_t *s = load_store(resp, srv, req, store);

    if (s != NULL) {
        mgr_resp_json(resp, 200, store_json(srv, s, 1, req->pool), req);
    }
}

/* ------------------------------------------------------------ create */

/* 1 when store A and B have the same instances (in any order) and
 * settings. */
static int
same_store(const mgr_store_t *a, const mgr_store_t *b)
{
    size_t i, j;

    if (a->ninstances != b->ninstances || a->heartbeat_ms != b->heartbeat_ms
        || a->election_ms != b->election_ms) {
        return 0;
    }
    for (i = 0; i < a->ninstances; i++) {
        int found = 0;

        for (j = 0; j < b->ninstances && !found; j++) {
            found = same_def(&a->instances[i], &b->instances[j]);
        }
        if (!found) {
            return 0;
        }
    }
    return 1;
}

/* Reads "settings" into S; NULL or what is wrong. */
static const char *
parse_settings(mgr_store_t *s, json_t *root, apr_pool_t *pool)
{
    json_t *set = json_object_get(root, "settings");
    json_int_t v;
    const char *bad;

    s->heartbeat_ms = 100;
    s->election_ms = 1000;
    if (set == NULL || json_is_null(set)) {
        return NULL;
    }
    if (!json_is_object(set)) {
        return "\"settings\" must be an object";
    }
    if (json_object_get(set, "heartbeatMs") != NULL) {
        if ((bad = get_uint(&v, set, "heartbeatMs", 1, 60000, "settings",
                            pool)) != NULL) {
            return bad;
        }
        s->heartbeat_ms = (unsigned)v;
    }
    if (json_object_get(set, "electionTimeoutMs") != NULL) {
        if ((bad = get_uint(&v, set, "electionTimeoutMs", 2, 600000,
                            "settings", pool)) != NULL) {
            return bad;
        }
        s->election_ms = (unsigned)v;
    }
    if (s->election_ms < 2 * s->heartbeat_ms) {
        return "settings: electionTimeoutMs must be at least two "
               "heartbeatMs";
    }
    return NULL;
}

/* Reads the optional "instancePrefix" into S; NULL or what is wrong. */
static const char *
parse_prefix(mgr_store_t *s, json_t *root)
{
    json_t *p = json_object_get(root, "instancePrefix");

    if (p == NULL || json_is_null(p)) {
        return NULL;
    }
    if (!json_is_string(p) || (json_string_length(p) > 0
                               && !valid_name(json_string_value(p)))) {
        return "\"instancePrefix\" must be a name (1-64 of A-Z a-z 0-9 . _ "
               "-)";
    }
    apr_cpystrn(s->prefix, json_string_value(p), sizeof(s->prefix));
    return NULL;
}

/* Checks every new local instance of S (NEW_FROM: the index of the
 * first one to check).  Returns 0 or the HTTP status with RESP set. */
static unsigned
check_new_local(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
                const mgr_store_t *s, size_t new_from)
{
    apr_array_header_t *stores;
    const char *code = NULL, *msg = NULL;
    unsigned http;
    size_t i;

    if (mgr_registry_list(&stores, srv->reg, req->pool) != DKV_OK) {
        mgr_resp_error(resp, req, 500, "Internal", dkv_last_error());
        return 500;
    }
    for (i = new_from; i < s->ninstances; i++) {
        if (!s->instances[i].local) {
            continue;
        }
        http = check_ports(&code, &msg, srv, s->name, &s->instances[i],
                           stores, req->pool);
        if (http != 0) {
            mgr_resp_error(resp, req, http, code, msg);
            return http;
        }
    }
    return 0;
}

void
mgr_api_create(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req)
{
    json_t *root = read_body(resp, req), *out;
    mgr_store_t *s, *old = NULL;
    const char *name, *bad, *ssec, *stok, *code, *msg;
    size_t i, nlocal = 0;
    unsigned http;

    if (root == NULL) {
        return;
    }
    s = apr_pcalloc(req->pool, sizeof(*s));
    name = json_string_value(json_object_get(root, "name"));
    if (name == NULL || !valid_name(name)) {
        bad = name == NULL ? "\"name\" (the store's name, a string) is "
                             "missing"
                           : apr_psprintf(req->pool, "bad store name '%s' "
                                          "(1-64 of A-Z a-z 0-9 . _ -, "
                                          "starting with a letter or digit)",
                                          name);
    } else {
        apr_cpystrn(s->name, name, sizeof(s->name));
        bad = parse_prefix(s, root);
    }
    if (bad == NULL) {
        bad = parse_defs(&s->instances, &s->ninstances, root, "instances", 1,
                         req->pool);
    }
    if (bad == NULL) {
        bad = parse_settings(s, root, req->pool);
    }
    if (bad == NULL) {
        bad = check_unique(s, req->pool);
    }
    ssec = json_string_value(json_object_get(root, "sealedSecret"));
    stok = json_string_value(json_object_get(root, "sealedToken"));
    ssec = ssec ? apr_pstrdup(req->pool, ssec) : NULL;
    stok = stok ? apr_pstrdup(req->pool, stok) : NULL;
    json_decref(root);
    if (bad != NULL) {
        mgr_resp_error(resp, req, 400, "BadRequest", bad);
        return;
    }
    mark_local(s, srv);
    for (i = 0; i < s->ninstances; i++) {
        nlocal += s->instances[i].local;
    }
    if (nlocal > 0 && (ssec == NULL || stok == NULL)) {
        mgr_resp_error(resp, req, 400, "BadRequest",
                       apr_psprintf(req->pool, "store %s has %u instance(s) "
                                    "on this manager: \"sealedSecret\" and "
                                    "\"sealedToken\" are required", s->name,
                                    (unsigned)nlocal));
        return;
    }

    apr_thread_mutex_lock(srv->lock);
    if (mgr_registry_get(&old, srv->reg, s->name, req->pool) != DKV_OK) {
        apr_thread_mutex_unlock(srv->lock);
        mgr_resp_error(resp, req, 500, "Internal", dkv_last_error());
        return;
    }
    if (old != NULL) {
        apr_thread_mutex_unlock(srv->lock);
        mark_local(old, srv);
        if (!same_store(old, s)) {
            mgr_resp_error(resp, req, 409, "Conflict",
                           apr_psprintf(req->pool, "store %s already exists "
                                        "on this manager with another "
                                        "definition (%u instances)",
                                        s->name,
                                        (unsigned)old->ninstances));
            return;
        }
        out = json_object();
        json_object_set_new(out, "store", store_json(srv, old, 0,
                                                     req->pool));
        json_object_set_new(out, "message", json_string("Already exists"));
        mgr_resp_json(resp, 200, out, req);
        return;
    }
    if (check_new_local(resp, srv, req, s, 0) != 0) {
        apr_thread_mutex_unlock(srv->lock);
        return;
    }
    if (nlocal > 0) {
        http = store_secrets(&code, &msg, srv, s->name, ssec, stok,
                             req->pool);
        if (http != 0) {
            apr_thread_mutex_unlock(srv->lock);
            mgr_resp_error(resp, req, http, code, msg);
            return;
        }
    }
    s->created_ms = now_ms();
    if (mgr_registry_put(srv->reg, s, req->pool) != DKV_OK) {
        apr_thread_mutex_unlock(srv->lock);
        mgr_resp_error(resp, req, 500, "Internal", dkv_last_error());
        return;
    }
    apr_thread_mutex_unlock(srv->lock);
    dkv_log(DKV_LOG_INFO, "created store %s (%zu instances, %zu local) for "
            "%s", s->name, s->ninstances, nlocal, req->peer);
    out = json_object();
    json_object_set_new(out, "store", store_json(srv, s, 0, req->pool));
    json_object_set_new(out, "message", json_string("Created"));
    mgr_resp_json(resp, 201, out, req);
}

/* ------------------------------------------------------ add instances */

/* Merges DEFS (N) into S (grown in POOL); MARK_JOINING for new ones.
 * Returns NULL or the conflict; *ADDED counts the instances added. */
static const char *
merge_defs(mgr_store_t *s, const mgr_instance_t *defs, size_t n,
           int joining, size_t *added, apr_pool_t *pool)
{
    mgr_instance_t *grown;
    size_t i;

    grown = apr_pcalloc(pool, (s->ninstances + n + 1) * sizeof(*grown));
    if (s->ninstances > 0) {
        memcpy(grown, s->instances, s->ninstances * sizeof(*grown));
    }
    s->instances = grown;
    for (i = 0; i < n; i++) {
        mgr_instance_t *have = find_instance(s, defs[i].name);

        if (have != NULL) {
            if (!same_def(have, &defs[i])) {
                return apr_psprintf(pool, "instance %s of store %s exists "
                                    "with another definition (node %u, "
                                    "%s:%u:%u)", have->name, s->name,
                                    (unsigned)have->node_id, have->host,
                                    (unsigned)have->cluster_port,
                                    (unsigned)have->client_port);
            }
            continue;
        }
        s->instances[s->ninstances] = defs[i];
        s->instances[s->ninstances].joining = joining;
        s->ninstances++;
        (*added)++;
    }
    return NULL;
}

void
mgr_api_add(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
            const char *store)
{
    json_t *root, *out;
    mgr_store_t *s = NULL, probe;
    mgr_instance_t *defs = NULL, *existing = NULL;
    size_t ndefs = 0, nexisting = 0, added = 0, before, i, nlocal = 0;
    const char *bad = NULL, *ssec, *stok, *code, *msg;
    apr_array_header_t *run;
    int joined = 0, any_new_local = 0, fresh = 0;
    unsigned http;

    if (!valid_name(store)) {
        mgr_resp_error(resp, req, 400, "BadRequest",
                       apr_psprintf(req->pool, "bad store name '%s'", store));
        return;
    }
    if ((root = read_body(resp, req)) == NULL) {
        return;
    }
    memset(&probe, 0, sizeof(probe));
    bad = parse_defs(&defs, &ndefs, root, "instances", 1, req->pool);
    if (bad == NULL) {
        bad = parse_defs(&existing, &nexisting, root, "existing", 0,
                         req->pool);
    }
    if (bad == NULL) {
        bad = parse_prefix(&probe, root);
    }
    ssec = json_string_value(json_object_get(root, "sealedSecret"));
    stok = json_string_value(json_object_get(root, "sealedToken"));
    ssec = ssec ? apr_pstrdup(req->pool, ssec) : NULL;
    stok = stok ? apr_pstrdup(req->pool, stok) : NULL;
    json_decref(root);
    if (bad != NULL) {
        mgr_resp_error(resp, req, 400, "BadRequest", bad);
        return;
    }

    apr_thread_mutex_lock(srv->lock);
    if (mgr_registry_get(&s, srv->reg, store, req->pool) != DKV_OK) {
        apr_thread_mutex_unlock(srv->lock);
        mgr_resp_error(resp, req, 500, "Internal", dkv_last_error());
        return;
    }
    if (s == NULL) {
        if (nexisting == 0) {
            apr_thread_mutex_unlock(srv->lock);
            mgr_resp_error(resp, req, 404, "NotFound",
                           apr_psprintf(req->pool, "no store %s on this "
                                        "manager, and the request has no "
                                        "\"existing\" instances to register "
                                        "it with", store));
            return;
        }
        fresh = 1;
        s = apr_pcalloc(req->pool, sizeof(*s));
        apr_cpystrn(s->name, store, sizeof(s->name));
        apr_cpystrn(s->prefix, probe.prefix, sizeof(s->prefix));
        s->heartbeat_ms = 100;
        s->election_ms = 1000;
        s->created_ms = now_ms();
    }
    before = s->ninstances;
    bad = merge_defs(s, existing, nexisting, 0, &added, req->pool);
    if (bad == NULL) {
        bad = merge_defs(s, defs, ndefs, 1, &added, req->pool);
    }
    if (bad == NULL) {
        bad = check_unique(s, req->pool);
        if (bad != NULL) {
            apr_thread_mutex_unlock(srv->lock);
            mgr_resp_error(resp, req, 400, "BadRequest", bad);
            return;
        }
    } else {
        apr_thread_mutex_unlock(srv->lock);
        mgr_resp_error(resp, req, 409, "Conflict", bad);
        return;
    }
    mark_local(s, srv);
    for (i = 0; i < s->ninstances; i++) {
        nlocal += s->instances[i].local;
        any_new_local |= i >= before && s->instances[i].local;
    }
    if (check_new_local(resp, srv, req, s, before) != 0) {
        apr_thread_mutex_unlock(srv->lock);
        return;
    }
    if (nlocal > 0 && !file_exists(secret_path(srv, store, req->pool),
                                   req->pool)) {
        if (ssec == NULL || stok == NULL) {
            apr_thread_mutex_unlock(srv->lock);
            mgr_resp_error(resp, req, 400, "BadRequest",
                           apr_psprintf(req->pool, "this manager does not "
                                        "hold the secrets of store %s yet: "
                                        "send \"sealedSecret\" and "
                                        "\"sealedToken\" (from /seal on a "
                                        "manager that has them)", store));
            return;
        }
        http = store_secrets(&code, &msg, srv, store, ssec, stok, req->pool);
        if (http != 0) {
            apr_thread_mutex_unlock(srv->lock);
            mgr_resp_error(resp, req, http, code, msg);
            return;
        }
    }
    if ((added > 0 || fresh)
        && mgr_registry_put(srv->reg, s, req->pool) != DKV_OK) {
        apr_thread_mutex_unlock(srv->lock);
        mgr_resp_error(resp, req, 500, "Internal", dkv_last_error());
        return;
    }
    apr_thread_mutex_unlock(srv->lock);
    dkv_log(DKV_LOG_INFO, "store %s: %zu instance(s) added%s for %s",
            store, added, any_new_local ? " (some local)" : "", req->peer);

    /* Ask the running local nodes to add each new instance. */
    run = mgr_sup_running(srv->sup, req->pool);
    for (i = 0; i < ndefs; i++) {
        const mgr_instance_t *in = &defs[i];
        size_t k;
        int ok = 0;

        for (k = 0; run != NULL && k < (size_t)run->nelts && !ok; k++) {
            const mgr_node_spec_t *n = &DKV_ARRAY_IDX(run, k,
                                                      mgr_node_spec_t);
            const char *why = NULL;

            if (strcmp(n->store, store) != 0) {
                continue;
            }
            if (mgr_node_member_add(n, in->node_id, in->host,
                                    in->cluster_port, in->client_port,
                                    NODECTL_TIMEOUT_MS * 5, &why, req->pool)
                == DKV_OK) {
                ok = 1;
                dkv_log(DKV_LOG_INFO, "store %s: instance %s (node %u) "
                        "added to the group through instance %s", store,
                        in->name, (unsigned)in->node_id, n->instance);
            } else {
                dkv_log(DKV_LOG_WARN, "store %s: MEMBER_ADD of instance %s "
                        "through instance %s failed: %s", store, in->name,
                        n->instance, why ? why : dkv_last_error());
            }
        }
        joined = (i == 0 ? ok : joined && ok);
    }
    out = json_object();
    json_object_set_new(out, "store", store_json(srv, s, 0, req->pool));
    json_object_set_new(out, "message", json_string("Instance added"));
    json_object_set_new(out, "joined", json_boolean(joined));
    mgr_resp_json(resp, 200, out, req);
}

/* --------------------------------------------------------------- seal */

void
mgr_api_seal(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
             const char *store)
{
    mgr_store_t *s = load_store(resp, srv, req, store);
    unsigned char *secret, *token = NULL;
    size_t tlen = 0;
    const char *box, *sealed_secret = NULL, *sealed_token = NULL;
    json_t *root, *out;
    dkv_status_t st;

    if (s == NULL || (root = read_body(resp, req)) == NULL) {
        return;
    }
    box = json_string_value(json_object_get(root, "boxKey"));
    box = box ? apr_pstrdup(req->pool, box) : NULL;
    json_decref(root);
    if (box == NULL) {
        mgr_resp_error(resp, req, 400, "BadRequest", "\"boxKey\" (the other "
                       "manager's sealing key, base64) is missing");
        return;
    }
    if (!file_exists(secret_path(srv, store, req->pool), req->pool)) {
        mgr_resp_error(resp, req, 404, "NotFound",
                       apr_psprintf(req->pool, "this manager holds no "
                                    "secrets of store %s (it runs none of "
                                    "its instances); ask a manager that "
                                    "does", store));
        return;
    }
    secret = sodium_malloc(DKV_STORE_SECRET_BYTES);
    if (secret == NULL) {
        mgr_resp_error(resp, req, 500, "Internal", "out of secure memory");
        return;
    }
    st = read_secret(secret, srv, store, req->pool);
    if (st == DKV_OK) {
        st = read_token(&token, &tlen, srv, store, req->pool);
    }
    if (st != DKV_OK) {
        sodium_free(secret);
        mgr_resp_error(resp, req, 500, "Internal", dkv_last_error());
        return;
    }
    st = dkv_seal(&sealed_secret, box, secret, DKV_STORE_SECRET_BYTES,
                  req->pool);
    if (st == DKV_OK) {
        st = dkv_seal(&sealed_token, box, token, tlen, req->pool);
    }
    sodium_free(secret);
    sodium_free(token);
    if (st != DKV_OK) {
        mgr_resp_error(resp, req, 400, "BadRequest",
                       apr_psprintf(req->pool, "\"boxKey\" is not a sealing "
                                    "key (32 bytes, base64): %s",
                                    dkv_last_error()));
        return;
    }
    dkv_log(DKV_LOG_INFO, "store %s: secrets sealed to box key %s for %s",
            store, box, req->peer);
    out = json_object();
    json_object_set_new(out, "sealedSecret", json_string(sealed_secret));
    json_object_set_new(out, "sealedToken", json_string(sealed_token));
    mgr_resp_json(resp, 200, out, req);
}

/* -------------------------------------------------------- start, stop */

/* Finds local instance NAME of S; NULL with RESP set (404, 409). */
static mgr_instance_t *
local_instance(mgr_resp_t *resp, const mgr_req_t *req, mgr_store_t *s,
               const char *name)
{
    mgr_instance_t *in = find_instance(s, name);

    if (in == NULL) {
        mgr_resp_error(resp, req, 404, "NotFound",
                       apr_psprintf(req->pool, "store %s has no instance %s",
                                    s->name, name));
        return NULL;
    }
    if (!in->local) {
        mgr_resp_error(resp, req, 409, "Conflict",
                       apr_psprintf(req->pool, "instance %s runs on %s, "
                                    "managed by %s", in->name, in->host,
                                    in->manager));
        return NULL;
    }
    return in;
}

/* Sets the desired state of instance NAME of store STORE, under the
 * lock.  DKV_OK or the registry's status. */
static dkv_status_t
set_want(mgr_server_t *srv, const char *store, const char *name, int want,
         apr_pool_t *pool)
{
    mgr_store_t *s = NULL;
    mgr_instance_t *in;
    dkv_status_t st;

    apr_thread_mutex_lock(srv->lock);
    st = mgr_registry_get(&s, srv->reg, store, pool);
    if (st == DKV_OK && s != NULL && (in = find_instance(s, name)) != NULL
        && in->want_running != want) {
        in->want_running = want;
        st = mgr_registry_put(srv->reg, s, pool);
    }
    apr_thread_mutex_unlock(srv->lock);
    return st;
}

static json_t *
answer_instance(mgr_server_t *srv, const mgr_store_t *s,
                const mgr_instance_t *in, const char *message,
                apr_pool_t *pool)
{
    json_t *out = json_object();
    mgr_node_status_t ns;

    json_object_set_new(out, "instance", instance_json(srv, s, in, &ns,
                                                       pool));
    json_object_set_new(out, "message", json_string(message));
    return out;
}

void
mgr_api_start(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
              const char *store, const char *instance)
{
    mgr_store_t *s = load_store(resp, srv, req, store);
    mgr_instance_t *in;
    mgr_node_spec_t spec;
    const char *arg, *code = NULL, *msg = NULL;
    long timeout = START_TIMEOUT_DEFAULT;
    dkv_status_t st;

    if (s == NULL || (in = local_instance(resp, req, s, instance)) == NULL) {
        return;
    }
    arg = apr_table_get(req->args, "startTimeoutSec");
    if (arg != NULL) {
        char *end;

        timeout = strtol(arg, &end, 10);
        if (end == arg || *end != '\0' || timeout < 1 || timeout > 600) {
            mgr_resp_error(resp, req, 400, "BadRequest",
                           apr_psprintf(req->pool, "startTimeoutSec '%s' "
                                        "must be 1 to 600", arg));
            return;
        }
    }
    if (build_spec(&spec, srv, s, in, req->pool) != DKV_OK) {
        mgr_resp_error(resp, req, 500, "Internal", dkv_last_error());
        return;
    }
    if (set_want(srv, store, instance, 1, req->pool) != DKV_OK) {
        mgr_resp_error(resp, req, 500, "Internal", dkv_last_error());
        return;
    }
    in->want_running = 1;
    st = mgr_sup_start(srv->sup, &spec, (int)timeout, &code, &msg,
                       req->pool);
    if (st != DKV_OK) {
        unsigned http = 503;

        if (code == NULL) {
            code = st == DKV_ECONFLICT ? "Conflict" : "StartFailed";
        }
        if (strcmp(code, "PortInUse") == 0 || strcmp(code, "Conflict") == 0
            || strcmp(code, "PortOutOfRange") == 0) {
            http = 409;
        } else if (strcmp(code, "BadRequest") == 0) {
            http = 400;
        } else if (strcmp(code, "Internal") == 0) {
            http = 500;
        }
        mgr_resp_error(resp, req, http, code,
                       apr_psprintf(req->pool, "instance %s of store %s: %s",
                                    instance, store,
                                    msg ? msg : dkv_last_error()));
        return;
    }
    dkv_log(DKV_LOG_INFO, "store %s instance %s: %s (for %s)", store,
            instance, msg ? msg : "Started", req->peer);
    mgr_resp_json(resp, 200, answer_instance(srv, s, in,
                                             msg ? msg : "Started",
                                             req->pool), req);
}

void
mgr_api_stop(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
             const char *store, const char *instance)
{
    mgr_store_t *s = load_store(resp, srv, req, store);
    mgr_instance_t *in;
    const char *force = apr_table_get(req->args, "force"), *msg = NULL;
    dkv_status_t st;
    int f = 0;

    if (s == NULL || (in = local_instance(resp, req, s, instance)) == NULL) {
        return;
    }
    if (force != NULL) {
        if (strcmp(force, "true") == 0 || strcmp(force, "1") == 0) {
            f = 1;
        } else if (strcmp(force, "false") != 0 && strcmp(force, "0") != 0) {
            mgr_resp_error(resp, req, 400, "BadRequest",
                           apr_psprintf(req->pool, "force='%s': true or "
                                        "false expected", force));
            return;
        }
    }
    if (set_want(srv, store, instance, 0, req->pool) != DKV_OK) {
        mgr_resp_error(resp, req, 500, "Internal", dkv_last_error());
        return;
    }
    in->want_running = 0;
    st = mgr_sup_stop(srv->sup, store, instance, f, &msg, req->pool);
    if (st != DKV_OK) {
        /* DKV_ECONFLICT: a start or stop of it is in progress. */
        mgr_resp_error(resp, req, st == DKV_ECONFLICT ? 409 : 500,
                       st == DKV_ECONFLICT ? "Conflict" : "Internal",
                       apr_psprintf(req->pool, "instance %s of store %s did "
                                    "not stop: %s", instance, store,
                                    msg ? msg : dkv_last_error()));
        return;
    }
    dkv_log(DKV_LOG_INFO, "store %s instance %s: %s (for %s)", store,
            instance, msg ? msg : "Stopped", req->peer);
    mgr_resp_json(resp, 200, answer_instance(srv, s, in,
                                             msg ? msg : "Stopped",
                                             req->pool), req);
}

/* ------------------------------------------------------------ metrics */

void
mgr_api_metrics(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req)
{
    const char *w = apr_table_get(req->args, "windowSec");
    const char *store = apr_table_get(req->args, "store");
    long window = 5;
    json_t *out, *nodes;

    if (w != NULL) {
        char *end;

        window = strtol(w, &end, 10);
        if (end == w || *end != '\0' || window < 1 || window > 300) {
            mgr_resp_error(resp, req, 400, "BadRequest",
                           apr_psprintf(req->pool, "windowSec '%s' must be "
                                        "1 to 300", w));
            return;
        }
    }
    if (store != NULL && load_store(resp, srv, req, store) == NULL) {
        return;
    }
    nodes = srv->metrics ? mgr_metrics_json(srv->metrics, store, (int)window)
                         : NULL;
    out = json_object();
    json_object_set_new(out, "manager", json_string(srv->where));
    json_object_set_new(out, "time", json_string(iso_time(now_ms(),
                                                          req->pool)));
    json_object_set_new(out, "windowSec", json_integer(window));
    json_object_set_new(out, "nodes", nodes ? nodes : json_array());
    mgr_resp_json(resp, 200, out, req);
}

/* ------------------------------------------------------------ resume */

void
mgr_api_resume(mgr_server_t *srv, apr_pool_t *pool)
{
    apr_array_header_t *stores;
    apr_pool_t *iter;
    int i;
    size_t j;

    if (mgr_registry_list(&stores, srv->reg, pool) != DKV_OK) {
        dkv_log(DKV_LOG_ERROR, "cannot read the registry to restart the "
                "nodes: %s", dkv_last_error());
        return;
    }
    if (apr_pool_create(&iter, pool) != APR_SUCCESS) {
        dkv_log(DKV_LOG_ERROR, "out of memory: the nodes are not restarted");
        return;
    }
    for (i = 0; i < stores->nelts; i++) {
        mgr_store_t *s = DKV_ARRAY_IDX(stores, i, mgr_store_t *);

        mark_local(s, srv);
        for (j = 0; j < s->ninstances; j++) {
            const mgr_instance_t *in = &s->instances[j];
            const char *code = NULL, *msg = NULL;
            mgr_node_spec_t spec;

            if (apr_atomic_read32(&srv->stopping)) {
                apr_pool_destroy(iter);
                return;
            }
            if (!in->local || !in->want_running) {
                continue;
            }
            apr_pool_clear(iter);
            if (build_spec(&spec, srv, s, in, iter) != DKV_OK) {
                dkv_log(DKV_LOG_ERROR, "store %s instance %s not restarted: "
                        "%s", s->name, in->name, dkv_last_error());
                continue;
            }
            if (mgr_sup_start(srv->sup, &spec, START_TIMEOUT_DEFAULT, &code,
                              &msg, iter) != DKV_OK) {
                dkv_log(DKV_LOG_ERROR, "store %s instance %s did not "
                        "restart: %s%s%s", s->name, in->name,
                        code ? code : "", code ? ": " : "",
                        msg ? msg : dkv_last_error());
            } else {
                dkv_log(DKV_LOG_INFO, "store %s instance %s: %s", s->name,
                        in->name, msg ? msg : "Started");
            }
        }
    }
    apr_pool_destroy(iter);
}
