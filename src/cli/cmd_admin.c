/*
 * cmd_admin.c -- the AdminShell commands of `dkv` (docs/adminshell.md):
 * Connect-DkvManager, New-DkvStore, Get-DkvStore, Start-DkvStore,
 * Stop-DkvStore, Add-DkvInstance and Get-DkvAdminKey, on the managers'
 * HTTP API (docs/admin-api.md) by way of mgrclient.c.
 * Watch-DkvStoreMetrics is in cmd_metrics.c.
 */
#include "cli/admin.h"
#include "common/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_file_info.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <sodium.h>

#define DASH "\xe2\x80\x94"      /* an em dash, UTF-8 */

/* ------------------------------------------------------------- helpers */

/* The instance and store names of the API. */
static int
name_check(cli_ctx_t *ctx, const char *param, const char *name)
{
    if (!cli_admin_name_ok(name)) {
        cli_error(ctx, "-%s: '%s' is not a valid name (1-64 characters of "
                  "A-Z a-z 0-9 . _ -, starting with a letter or digit)",
                  param, name);
        return 0;
    }
    return 1;
}

/* The store object of an answer ({"store": {...}} or the store itself). */
static json_t *
store_of(json_t *body)
{
    json_t *s = json_object_get(body, "store");

    return json_is_object(s) ? s : body;
}

/* GET /admin/v1/stores/NAME from M: the store (caller decrefs), or NULL
 * with *R's message. */
static json_t *
fetch_store(cli_http_t *r, cli_mgr_t *m, const char *name, int timeout,
            apr_pool_t *pool)
{
    json_t *s;

    if (!cli_mgr_request(r, m, NULL, "GET",
                         apr_pstrcat(pool, "/admin/v1/stores/", name, NULL),
                         NULL, NULL, timeout, pool)) {
        if (r->status == 404) {
            r->message = apr_psprintf(pool, "store %s not found on this "
                                      "manager " DASH " check the name "
                                      "(Get-DkvStore lists the stores) and "
                                      "that you are connected to the "
                                      "managers that host it", name);
        }
        json_decref(r->body);
        r->body = NULL;
        return NULL;
    }
    s = json_incref(store_of(r->body));
    json_decref(r->body);
    r->body = NULL;
    return s;
}

static const char *
jstr(const json_t *o, const char *k, const char *fallback)
{
    json_t *v = json_object_get(o, k);

    return json_is_string(v) ? json_string_value(v) : fallback;
}

static json_int_t
jint(const json_t *o, const char *k, json_int_t fallback)
{
    json_t *v = json_object_get(o, k);

    return json_is_integer(v) ? json_integer_value(v) : fallback;
}

/* The instance named NAME in the array INSTANCES, or NULL. */
static json_t *
find_instance(json_t *instances, const char *name)
{
    size_t i;

    for (i = 0; i < json_array_size(instances); i++) {
        json_t *e = json_array_get(instances, i);
        if (strcmp(jstr(e, "name", ""), name) == 0) {
            return e;
        }
    }
    return NULL;
}

/* An instance definition (the API's fields only) of INST. */
static json_t *
definition(const json_t *inst)
{
    json_t *d = json_object();
    static const char *const keys[] = {
        "name", "nodeId", "host", "manager", "clusterPort", "clientPort",
        NULL
    };
    int i;

    for (i = 0; keys[i] != NULL; i++) {
        json_t *v = json_object_get(inst, keys[i]);
        if (v != NULL) {
            json_object_set(d, keys[i], v);
        }
    }
    return d;
}

/* Where INST runs, for the operator: its manager's address when
 * connected, else its host. */
static const char *
owner_text(const apr_array_header_t *mgrs, const json_t *inst,
           apr_pool_t *pool)
{
    cli_mgr_t *m = cli_mgr_by_key(mgrs, jstr(inst, "manager", NULL));

    if (m != NULL) {
        return m->address;
    }
    return apr_psprintf(pool, "%s (manager not connected)",
                        jstr(inst, "host", "?"));
}

/* Managers, and the admin key when NEED_KEY. */
static int
setup(cli_ctx_t *ctx, apr_array_header_t **mgrs, dkv_admin_key_t **key)
{
    int rc = cli_admin_managers(ctx, mgrs);

    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (key != NULL) {
        rc = cli_admin_key(ctx, key);
    }
    return rc;
}

/* 1 when any manager of MGRS could not be reached. */
static int
any_unreachable(const apr_array_header_t *mgrs)
{
    int i;

    for (i = 0; i < mgrs->nelts; i++) {
        if (DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *)->unreachable) {
            return 1;
        }
    }
    return 0;
}

/* Prints ROWS (stolen) and returns the command's exit code. */
static int
finish(cli_ctx_t *ctx, json_t *rows, int unreachable)
{
    int rc = cli_rows_exit(rows, unreachable);

    cli_print(ctx, rows);
    return rc;
}

/* Prints a note after the table (stderr with -Json, so that stays JSON). */
static void
note(cli_ctx_t *ctx, const char *text)
{
    fprintf(ctx->json ? stderr : stdout, "%s\n", text);
    fflush(ctx->json ? stderr : stdout);
}

/* A message when two of MGRS are the same manager (same key), or NULL. */
static const char *
same_manager(const apr_array_header_t *mgrs, apr_pool_t *pool)
{
    int i, k;

    for (i = 0; i < mgrs->nelts; i++) {
        const cli_mgr_t *a = DKV_ARRAY_IDX(mgrs, i, const cli_mgr_t *);
        for (k = i + 1; a->sign_key != NULL && k < mgrs->nelts; k++) {
            const cli_mgr_t *b = DKV_ARRAY_IDX(mgrs, k, const cli_mgr_t *);
            if (b->sign_key != NULL && strcmp(a->sign_key, b->sign_key)
                == 0) {
                return apr_psprintf(pool, "%s and %s are the same manager "
                                    "(one key); list each machine's manager "
                                    "once", a->address, b->address);
            }
        }
    }
    return NULL;
}

/* ---------------------------------------------------- Connect-DkvManager */

static int
connect_job(cli_job_t *j)
{
    cli_http_t r;
    const char *ks, *kb;
    int force = *(const int *)j->arg;

    if (!cli_mgr_identity(&r, j->mgr, j->timeout_sec, j->pool)) {
        j->unreachable = r.transport;
        cli_row(j->rows, j->mgr->address, "Connect", "FAILED", r.message);
        return 0;
    }
    if (cli_known_get(&ks, &kb, j->mgr->address, j->pool) &&
        (strcmp(ks, j->mgr->sign_key) != 0 ||
         strcmp(kb, j->mgr->box_key) != 0)) {
        if (!force) {
            cli_row(j->rows, j->mgr->address, "Connect", "FAILED",
                    apr_psprintf(j->pool, "the keys of this manager "
                                 "changed since you last connected (sign "
                                 "key %s, was %s): it was reinstalled, or "
                                 "another machine answers at its address; "
                                 "if you trust it, use -Force",
                                 j->mgr->sign_key, ks));
            return 0;
        }
        cli_row(j->rows, j->mgr->address, "Connect", "SUCCESS",
                "Connected (its keys changed; accepted by -Force)");
        return 1;
    }
    cli_row(j->rows, j->mgr->address, "Connect", "SUCCESS", "Connected");
    return 1;
}

int
cli_cmd_connect_manager(cli_ctx_t *ctx)
{
    apr_array_header_t *old = NULL, *specs = cli_list(ctx, "Managers");
    apr_array_header_t *mgrs, *jobs;
    int port = (int)cli_int(ctx, "Port", CLI_MGR_PORT);
    int force = cli_has(ctx, "Force");
    json_t *rows = json_array();
    const char *same, *path;
    dkv_status_t rv;
    int i, k, all;

    if (cli_mgrs_load(&old, ctx->pool) != DKV_OK && !force) {
        json_decref(rows);
        return CLI_EXIT_FAILED;
    }
    if (old != NULL && !force) {
        const char *names = "";
        for (i = 0; i < old->nelts; i++) {
            names = apr_pstrcat(ctx->pool, names, i > 0 ? ", " : "",
                                DKV_ARRAY_IDX(old, i, cli_mgr_t *)->address,
                                NULL);
        }
        cli_error(ctx, "Already connected to %s; use -Force to replace",
                  names);
        json_decref(rows);
        return CLI_EXIT_FAILED;
    }
    mgrs = apr_array_make(ctx->pool, specs->nelts, sizeof(cli_mgr_t *));
    for (i = 0; i < specs->nelts; i++) {
        cli_mgr_t *m;
        const char *why;
        int dup = 0;

        if (cli_mgr_parse(&m, DKV_ARRAY_IDX(specs, i, const char *), port,
                          &why, ctx->pool) != 0) {
            cli_error(ctx, "-Managers: %s", why);
            json_decref(rows);
            return CLI_EXIT_USAGE;
        }
        for (k = 0; k < mgrs->nelts; k++) {
            dup |= strcmp(DKV_ARRAY_IDX(mgrs, k, cli_mgr_t *)->address,
                          m->address) == 0;
        }
        if (!dup) {
            APR_ARRAY_PUSH(mgrs, cli_mgr_t *) = m;
        }
    }
    if (cli_admin_init() != DKV_OK) {
        cli_error(ctx, "%s", cli_status_text(APR_EGENERAL, ctx->pool));
        json_decref(rows);
        return CLI_EXIT_FAILED;
    }
    jobs = cli_jobs_make(ctx, mgrs, connect_job, &force, "Connect", NULL);
    all = cli_jobs_run(ctx, jobs, rows);
    if (all && (same = same_manager(mgrs, ctx->pool)) != NULL) {
        cli_error(ctx, "%s", same);
        json_decref(rows);
        return CLI_EXIT_USAGE;
    }
    if (!all) {
        size_t r;
        /* Nothing is saved: a partial context would make New-DkvStore
         * build a partial topology without saying so. */
        for (r = 0; r < json_array_size(rows); r++) {
            json_t *row = json_array_get(rows, r);
            if (strcmp(jstr(row, "Result", ""), "SUCCESS") == 0) {
                json_object_set_new(row, "Message", json_string(
                    "Reachable (not saved: another manager failed)"));
            }
        }
        i = 0;
        for (k = 0; k < jobs->nelts; k++) {
            i |= DKV_ARRAY_IDX(jobs, k, cli_job_t *)->unreachable;
        }
        rv = finish(ctx, rows, i);
        cli_error(ctx, "the manager context was not changed: connect to "
                  "managers that all answer (fix the failed ones, or leave "
                  "them out of -Managers)");
        return rv == CLI_EXIT_OK ? CLI_EXIT_FAILED : rv;
    }
    path = cli_mgrs_path(ctx->pool);
    rv = cli_mgrs_save(mgrs, ctx->pool);
    if (rv == DKV_OK) {
        path = "the known managers file (known_managers.json)";
        rv = cli_known_put(mgrs, ctx->pool);
    }
    if (rv != DKV_OK) {
        cli_print(ctx, rows);
        cli_error(ctx, "cannot write %s: %s", path != NULL ? path
                  : "the managers file", cli_status_text(rv, ctx->pool));
        return CLI_EXIT_FAILED;
    }
    return finish(ctx, rows, 0);
}

/* ---------------------------------------------------------- New-DkvStore */

typedef struct create_arg {
    json_t *body;          /* this manager's request (owned by the job) */
} create_arg_t;

static int
create_job(cli_job_t *j)
{
    create_arg_t *a = j->arg;
    cli_http_t r;
    int ok;

    ok = cli_mgr_request(&r, j->mgr, j->key, "POST", "/admin/v1/stores",
                         NULL, a->body, j->timeout_sec, j->pool);
    json_decref(a->body);
    a->body = NULL;
    if (!ok) {
        j->unreachable = r.transport;
        cli_row(j->rows, j->mgr->address, "CreateStore", "FAILED",
                cli_http_why(&r, j->pool));
        json_decref(r.body);
        return 0;
    }
    cli_row(j->rows, j->mgr->address, "CreateStore", "SUCCESS",
            jstr(r.body, "message", "Created"));
    json_decref(r.body);
    return 1;
}

/* Writes TOKEN for STORE to <dkv dir>/tokens/STORE.token (0600).  The
 * path, or NULL (a message printed). */
static const char *
save_token(cli_ctx_t *ctx, const char *store, const char *token)
{
    const char *dir, *tdir, *path;
    dkv_status_t rv;

    if (cli_config_dir(&dir, ctx->pool) != DKV_OK) {
        cli_error(ctx, "no dkv directory for this user: the client token "
                  "was not saved");
        return NULL;
    }
    tdir = apr_pstrcat(ctx->pool, dir, "/tokens", NULL);
    rv = apr_dir_make_recursive(tdir, APR_FPROT_UREAD | APR_FPROT_UWRITE |
                                APR_FPROT_UEXECUTE, ctx->pool);
    path = apr_pstrcat(ctx->pool, tdir, "/", store, ".token", NULL);
    if (rv == APR_SUCCESS || APR_STATUS_IS_EEXIST(rv)) {
        rv = dkv_write_private_file(path, token, strlen(token), ctx->pool);
    }
    if (rv != DKV_OK) {
        cli_error(ctx, "cannot save the client token to %s: %s", path,
                  cli_status_text(rv, ctx->pool));
        return NULL;
    }
    return path;
}

int
cli_cmd_new_store(cli_ctx_t *ctx)
{
    const char *name = cli_str(ctx, "Name", "");
    const char *prefix = cli_str(ctx, "InstancePrefix", "");
    int64_t count = cli_int(ctx, "InstanceCount", 1);
    int64_t cport = cli_int(ctx, "ClustronPort", 7811);
    int64_t lport = cli_int(ctx, "ClientPort", 7861);
    apr_array_header_t *mgrs, *jobs;
    dkv_admin_key_t *key;
    unsigned char secret[DKV_STORE_SECRET_BYTES], raw[32];
    char token[65];
    json_t *rows, *instances;
    const char *dup;
    int rc, i, created = 0;
    int64_t k;

    if (!name_check(ctx, "Name", name) ||
        !name_check(ctx, "InstancePrefix", prefix)) {
        return CLI_EXIT_USAGE;
    }
    if (strlen(prefix) + 1 + 10 > 64) {
        cli_error(ctx, "-InstancePrefix: '%s' is too long (instance names "
                  "<prefix>-<n> must fit in 64 characters)", prefix);
        return CLI_EXIT_USAGE;
    }
    if (cport + count - 1 > 65535 || lport + count - 1 > 65535) {
        cli_error(ctx, "-InstanceCount %lld from -ClustronPort %lld and "
                  "-ClientPort %lld needs ports up to %lld; the highest is "
                  "65535", (long long)count, (long long)cport,
                  (long long)lport, (long long)((cport > lport ? cport
                                                 : lport) + count - 1));
        return CLI_EXIT_USAGE;
    }
    if (cport <= lport + count - 1 && lport <= cport + count - 1) {
        cli_error(ctx, "the cluster ports %lld-%lld and the client ports "
                  "%lld-%lld overlap; choose -ClustronPort and -ClientPort "
                  "further apart", (long long)cport,
                  (long long)(cport + count - 1), (long long)lport,
                  (long long)(lport + count - 1));
        return CLI_EXIT_USAGE;
    }
    if ((rc = setup(ctx, &mgrs, &key)) != CLI_EXIT_OK) {
        return rc;
    }
    rows = json_array();
    for (i = 0; i < mgrs->nelts; i++) {
        cli_mgr_t *m = DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *);
        if (m->error != NULL) {
            int j2;
            /* The topology spans every manager: create nowhere. */
            for (j2 = 0; j2 < mgrs->nelts; j2++) {
                cli_mgr_t *o = DKV_ARRAY_IDX(mgrs, j2, cli_mgr_t *);
                if (o->error != NULL) {
                    cli_mgr_failed_row(rows, o, "CreateStore");
                } else {
                    cli_row(rows, o->address, "CreateStore", "SKIPPED",
                            "not created: every manager must take part, "
                            "and another one failed");
                }
            }
            return finish(ctx, rows, any_unreachable(mgrs));
        }
    }
    if ((dup = same_manager(mgrs, ctx->pool)) != NULL) {
        cli_error(ctx, "%s", dup);
        json_decref(rows);
        return CLI_EXIT_USAGE;
    }
    /* The topology: names sequential across the managers in order, ports
     * restarting from the base on each. */
    instances = json_array();
    for (i = 0; i < mgrs->nelts; i++) {
        cli_mgr_t *m = DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *);
        for (k = 0; k < count; k++) {
            int64_t idx = (int64_t)i * count + k + 1;
            json_t *d = json_object();
            json_object_set_new(d, "name", json_string(apr_psprintf(
                ctx->pool, "%s-%" APR_INT64_T_FMT, prefix, (apr_int64_t)idx)));
            json_object_set_new(d, "nodeId", json_integer(idx));
            json_object_set_new(d, "host", json_string(m->host));
            json_object_set_new(d, "manager", json_string(m->sign_key));
            json_object_set_new(d, "clusterPort", json_integer(cport + k));
            json_object_set_new(d, "clientPort", json_integer(lport + k));
            json_array_append_new(instances, d);
        }
    }
    if ((int64_t)mgrs->nelts * count > 65535) {
        json_decref(instances);
        json_decref(rows);
        cli_error(ctx, "too many instances (node ids go up to 65535)");
        return CLI_EXIT_USAGE;
    }
    randombytes_buf(secret, sizeof(secret));
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(token, sizeof(token), raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    jobs = cli_jobs_make(ctx, mgrs, create_job, NULL, "CreateStore", key);
    rc = CLI_EXIT_OK;
    for (i = 0; i < jobs->nelts; i++) {
        cli_job_t *j = DKV_ARRAY_IDX(jobs, i, cli_job_t *);
        create_arg_t *a = apr_pcalloc(ctx->pool, sizeof(*a));
        const char *ss, *st;

        if (dkv_seal(&ss, j->mgr->box_key, secret, sizeof(secret),
                     ctx->pool) != DKV_OK ||
            dkv_seal(&st, j->mgr->box_key, token, strlen(token),
                     ctx->pool) != DKV_OK) {
            cli_error(ctx, "cannot seal the store's secrets to %s: %s",
                      j->mgr->address, cli_status_text(DKV_EINVAL,
                                                       ctx->pool));
            rc = CLI_EXIT_FAILED;
            break;
        }
        a->body = json_object();
        json_object_set_new(a->body, "name", json_string(name));
        json_object_set_new(a->body, "instancePrefix", json_string(prefix));
        json_object_set_new(a->body, "instances", json_deep_copy(instances));
        json_object_set_new(a->body, "sealedSecret", json_string(ss));
        json_object_set_new(a->body, "sealedToken", json_string(st));
        j->arg = a;
    }
    sodium_memzero(secret, sizeof(secret));
    json_decref(instances);
    if (rc != CLI_EXIT_OK) {
        sodium_memzero(token, sizeof(token));
        for (i = 0; i < jobs->nelts; i++) {
            create_arg_t *a = DKV_ARRAY_IDX(jobs, i, cli_job_t *)->arg;
            if (a != NULL) {
                json_decref(a->body);
            }
        }
        json_decref(rows);
        return rc;
    }
    cli_jobs_run(ctx, jobs, rows);
    /* The bodies of the jobs that did not run (-FailFast). */
    for (i = 0; i < jobs->nelts; i++) {
        create_arg_t *a = DKV_ARRAY_IDX(jobs, i, cli_job_t *)->arg;
        json_decref(a->body);
        a->body = NULL;
    }
    for (i = 0; i < (int)json_array_size(rows); i++) {
        created |= strcmp(jstr(json_array_get(rows, (size_t)i), "Message",
                               ""), "Created") == 0;
    }
    {
        const char *path = created ? save_token(ctx, name, token) : NULL;
        int unreachable = 0;

        sodium_memzero(token, sizeof(token));
        for (i = 0; i < jobs->nelts; i++) {
            unreachable |= DKV_ARRAY_IDX(jobs, i, cli_job_t *)->unreachable;
        }
        rc = finish(ctx, rows, unreachable);
        if (path != NULL) {
            note(ctx, apr_psprintf(ctx->pool, "The client token of %s is "
                                   "saved in %s (readable by you only); "
                                   "Connect-DkvStore -StoreName %s uses it. "
                                   "Start the store with Start-DkvStore %s.",
                                   name, path, name, name));
        }
    }
    return rc;
}

/* ---------------------------------------------------------- Get-DkvStore */

typedef struct get_arg {
    const char *name;      /* NULL: all */
} get_arg_t;

static int
get_job(cli_job_t *j)
{
    const get_arg_t *a = j->arg;
    cli_http_t r;

    if (j->mgr->error != NULL) {
        j->unreachable = j->mgr->unreachable;
        j->result = json_pack("{s:s, s:s}", "error", j->mgr->error,
                              "address", j->mgr->address);
        return 0;
    }
    if (a->name != NULL) {
        json_t *s = fetch_store(&r, j->mgr, a->name, j->timeout_sec,
                                j->pool);
        if (s == NULL) {
            j->unreachable = r.transport;
            j->result = json_pack("{s:s}", "error", r.message);
            return 0;
        }
        j->result = json_pack("{s:[o]}", "stores", s);
        return 1;
    }
    if (!cli_mgr_request(&r, j->mgr, NULL, "GET", "/admin/v1/stores", NULL,
                         NULL, j->timeout_sec, j->pool)) {
        j->unreachable = r.transport;
        j->result = json_pack("{s:s}", "error", cli_http_why(&r, j->pool));
        json_decref(r.body);
        return 0;
    }
    {
        json_t *list = json_is_array(r.body) ? r.body
                                             : json_object_get(r.body,
                                                               "stores");
        j->result = json_pack("{s:O}", "stores", json_is_array(list) ? list
                              : json_array());
        json_decref(r.body);
    }
    return 1;
}

/* The summary of store S as seen by manager M. */
static json_t *
store_object(const cli_mgr_t *m, const json_t *s)
{
    json_t *o = json_object();
    json_t *inst = json_object_get(s, "instances");
    json_int_t local = jint(s, "localInstances", -1);

    if (local < 0) {
        size_t i;
        local = 0;
        for (i = 0; i < json_array_size(inst); i++) {
            local += json_is_true(json_object_get(json_array_get(inst, i),
                                                  "local"));
        }
    }
    json_object_set_new(o, "Manager", json_string(m->address));
    json_object_set_new(o, "StoreName", json_string(jstr(s, "name", "")));
    json_object_set_new(o, "StoreStatus",
                        json_string(jstr(s, "status", "Unknown")));
    json_object_set_new(o, "InstanceCount", json_integer(local));
    json_object_set_new(o, "RunningInstances",
                        json_integer(jint(s, "runningInstances", 0)));
    json_object_set_new(o, "StoppedInstances",
                        json_integer(jint(s, "stoppedInstances", 0)));
    json_object_set_new(o, "ParticipatingNodes",
                        json_integer(jint(s, "participatingNodes", 0)));
    json_object_set_new(o, "TotalInstances",
                        json_integer((json_int_t)json_array_size(inst)));
    json_object_set(o, "Leader", json_object_get(s, "leader") != NULL
                    ? json_object_get(s, "leader") : json_null());
    return o;
}

/* The instances table of the store NAME from the answers of JOBS. */
static json_t *
instance_rows(const apr_array_header_t *mgrs, apr_array_header_t *jobs,
              json_t **any_store, apr_pool_t *pool)
{
    json_t *rows = json_array(), *first = NULL;
    size_t i;
    int k;

    for (k = 0; k < jobs->nelts && first == NULL; k++) {
        cli_job_t *j = DKV_ARRAY_IDX(jobs, k, cli_job_t *);
        json_t *s = json_array_get(json_object_get(j->result, "stores"), 0);
        if (s != NULL) {
            first = s;
        }
    }
    *any_store = first;
    for (i = 0; first != NULL &&
         i < json_array_size(json_object_get(first, "instances")); i++) {
        json_t *d = json_array_get(json_object_get(first, "instances"), i);
        const char *iname = jstr(d, "name", "");
        cli_mgr_t *owner = cli_mgr_by_key(mgrs, jstr(d, "manager", NULL));
        json_t *seen = d, *row = json_object();

        for (k = 0; owner != NULL && k < jobs->nelts; k++) {
            cli_job_t *j = DKV_ARRAY_IDX(jobs, k, cli_job_t *);
            json_t *s = json_array_get(json_object_get(j->result, "stores"),
                                       0);
            if (j->mgr == owner && s != NULL) {
                json_t *e = find_instance(json_object_get(s, "instances"),
                                          iname);
                if (e != NULL) {
                    seen = e;
                }
            }
        }
        json_object_set_new(row, "Name", json_string(iname));
        json_object_set_new(row, "Host", json_string(jstr(d, "host", "")));
        json_object_set_new(row, "ClustronPort",
                            json_integer(jint(d, "clusterPort", 0)));
        json_object_set_new(row, "ClientPort",
                            json_integer(jint(d, "clientPort", 0)));
        json_object_set_new(row, "State", json_string(
            seen != d || owner != NULL ? jstr(seen, "state", "Unknown")
                                       : "Unknown"));
        json_object_set(row, "Pid", json_object_get(seen, "pid") != NULL
                        ? json_object_get(seen, "pid") : json_null());
        json_object_set_new(row, "Manager",
                            json_string(owner_text(mgrs, d, pool)));
        json_array_append_new(rows, row);
    }
    return rows;
}

int
cli_cmd_get_store(cli_ctx_t *ctx)
{
    get_arg_t a;
    apr_array_header_t *mgrs, *jobs;
    json_t *table = json_array(), *objs = json_array();
    int rc, k, found = 0, unreachable = 0;

    a.name = cli_str(ctx, "Name", NULL);
    if (a.name != NULL && !name_check(ctx, "Name", a.name)) {
        json_decref(table);
        json_decref(objs);
        return CLI_EXIT_USAGE;
    }
    if ((rc = setup(ctx, &mgrs, NULL)) != CLI_EXIT_OK) {
        json_decref(table);
        json_decref(objs);
        return rc;
    }
    jobs = cli_jobs_make(ctx, mgrs, get_job, &a, "GetStore", NULL);
    for (k = 0; k < jobs->nelts; k++) {
        DKV_ARRAY_IDX(jobs, k, cli_job_t *)->own_errors = 1;
    }
    {
        json_t *ignored = json_array();
        cli_jobs_run(ctx, jobs, ignored);
        json_decref(ignored);
    }
    for (k = 0; k < jobs->nelts; k++) {
        cli_job_t *j = DKV_ARRAY_IDX(jobs, k, cli_job_t *);
        json_t *stores = json_object_get(j->result, "stores");
        size_t i;

        unreachable |= j->unreachable;
        if (j->result == NULL || stores == NULL) {
            const char *why = jstr(j->result, "error", cli_has(ctx,
                "FailFast") ? "not tried: an earlier manager failed "
                "(-FailFast)" : "no answer");
            json_t *row = json_object(), *o = json_object();
            json_object_set_new(row, "Manager", json_string(j->mgr->address));
            json_object_set_new(row, "StoreName", json_string(
                a.name != NULL ? a.name : ""));
            json_object_set_new(row, "Result", json_string("FAILED"));
            json_object_set_new(row, "Summary", json_string(why));
            json_array_append_new(table, row);
            json_object_set_new(o, "Manager", json_string(j->mgr->address));
            json_object_set_new(o, "StoreName", a.name != NULL
                                ? json_string(a.name) : json_null());
            json_object_set_new(o, "Error", json_string(why));
            json_array_append_new(objs, o);
            continue;
        }
        for (i = 0; i < json_array_size(stores); i++) {
            json_t *s = json_array_get(stores, i);
            json_t *o = store_object(j->mgr, s), *row = json_object();

            found++;
            json_object_set_new(row, "Manager", json_string(j->mgr->address));
            json_object_set_new(row, "StoreName",
                                json_string(jstr(s, "name", "")));
            json_object_set_new(row, "Result", json_string("OK"));
            json_object_set_new(row, "Summary", json_string(apr_psprintf(
                ctx->pool, "%s | Instances:%" APR_INT64_T_FMT " Running:%"
                APR_INT64_T_FMT " Stopped:%" APR_INT64_T_FMT,
                jstr(s, "status", "Unknown"),
                (apr_int64_t)jint(o, "InstanceCount", 0),
                (apr_int64_t)jint(o, "RunningInstances", 0),
                (apr_int64_t)jint(o, "StoppedInstances", 0))));
            json_array_append_new(table, row);
            if (a.name != NULL) {
                json_object_set(o, "Instances",
                                json_object_get(s, "instances"));
            }
            json_object_set_new(o, "Error", json_null());
            json_array_append_new(objs, o);
        }
    }
    rc = CLI_EXIT_OK;
    {
        size_t i;
        for (i = 0; i < json_array_size(table); i++) {
            if (strcmp(jstr(json_array_get(table, i), "Result", ""), "OK")
                != 0) {
                rc = unreachable ? CLI_EXIT_CONNECT : CLI_EXIT_FAILED;
            }
        }
    }
    if (ctx->json) {
        json_decref(table);
        cli_print(ctx, objs);
    } else if (json_array_size(table) == 0) {
        json_decref(table);
        json_decref(objs);
        printf("\nNo stores on the connected managers (New-DkvStore "
               "creates one).\n\n");
    } else {
        json_decref(objs);
        cli_print(ctx, table);
    }
    if (a.name != NULL && found > 0) {
        json_t *first, *inst = instance_rows(mgrs, jobs, &first, ctx->pool);
        json_int_t part = 0;
        const char *leader = NULL;
        size_t i;
        int stopped = 0;

        for (k = 0; k < jobs->nelts; k++) {
            json_t *s = json_array_get(json_object_get(
                DKV_ARRAY_IDX(jobs, k, cli_job_t *)->result, "stores"), 0);
            if (jint(s, "participatingNodes", 0) > part) {
                part = jint(s, "participatingNodes", 0);
                leader = jstr(s, "leader", NULL);
            }
        }
        for (i = 0; i < json_array_size(inst); i++) {
            stopped |= strcmp(jstr(json_array_get(inst, i), "State", ""),
                              "Running") != 0;
        }
        if (!ctx->json) {
            cli_print(ctx, json_incref(inst));
            printf("Participating nodes: %lld of %lld; leader: %s\n",
                   (long long)part, (long long)json_array_size(inst),
                   leader != NULL ? leader : "none");
            if (stopped) {
                printf("Instances not running cannot serve clients: "
                       "Start-DkvStore %s starts them.\n", a.name);
            }
            printf("\n");
        }
        json_decref(inst);
    } else if (a.name != NULL && found == 0 && !unreachable) {
        cli_error(ctx, "store %s not found on any connected manager; check "
                  "the name (Get-DkvStore lists the stores) and that you "
                  "are connected to every manager (Connect-DkvManager)",
                  a.name);
    }
    for (k = 0; k < jobs->nelts; k++) {
        json_decref(DKV_ARRAY_IDX(jobs, k, cli_job_t *)->result);
    }
    return rc;
}

/* ------------------------------------------------- Start/Stop-DkvStore */

typedef struct ctl_arg {
    const char *store;
    int start;                  /* 1: start, 0: stop */
    int force;
    apr_array_header_t *names;  /* const char *: this manager's instances */
} ctl_arg_t;

static int
ctl_job(cli_job_t *j)
{
    ctl_arg_t *a = j->arg;
    int i, all = 1;

    for (i = 0; i < a->names->nelts; i++) {
        const char *iname = DKV_ARRAY_IDX(a->names, i, const char *);
        const char *action = apr_pstrcat(j->pool, a->start ? "StartInstance:"
                                         : "StopInstance:", iname, NULL);
        const char *path = apr_pstrcat(j->pool, "/admin/v1/stores/",
                                       a->store, "/instances/", iname,
                                       a->start ? "/start" : "/stop", NULL);
        const char *query = a->start
            ? apr_psprintf(j->pool, "startTimeoutSec=%d", j->timeout_sec)
            : (a->force ? "force=true" : NULL);
        cli_http_t r;

        if (!cli_mgr_request(&r, j->mgr, j->key, "POST", path, query, NULL,
                             j->timeout_sec + 15, j->pool)) {
            j->unreachable |= r.transport;
            cli_row(j->rows, j->mgr->address, action, "FAILED",
                    cli_http_why(&r, j->pool));
            json_decref(r.body);
            all = 0;
            continue;
        }
        cli_row(j->rows, j->mgr->address, action, "SUCCESS",
                jstr(r.body, "message", a->start ? "Started" : "Stopped"));
        json_decref(r.body);
    }
    return all;
}

/* The store NAME from the first manager of MGRS that has it (caller
 * decrefs), or NULL after adding a FAILED row per manager to ROWS. */
static json_t *
discover(cli_ctx_t *ctx, apr_array_header_t *mgrs, const char *name,
         const char *action, json_t *rows)
{
    int timeout = (int)cli_int(ctx, "TimeoutSec", 30);
    apr_array_header_t *whys = apr_array_make(ctx->pool, 4, sizeof(char *));
    int i;

    for (i = 0; i < mgrs->nelts; i++) {
        cli_mgr_t *m = DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *);
        cli_http_t r;
        json_t *s;

        if (m->error != NULL) {
            APR_ARRAY_PUSH(whys, const char *) = m->error;
            continue;
        }
        s = fetch_store(&r, m, name, timeout, ctx->pool);
        if (s != NULL) {
            return s;
        }
        m->unreachable |= r.transport;
        APR_ARRAY_PUSH(whys, const char *) = r.message;
    }
    for (i = 0; i < mgrs->nelts; i++) {
        cli_row(rows, DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *)->address, action,
                "FAILED", DKV_ARRAY_IDX(whys, i, const char *));
    }
    return NULL;
}

/* After a start: waits (bounded) for every instance of STORE to be a
 * member with a leader, and says which are not. */
static void
check_joined(cli_ctx_t *ctx, apr_array_header_t *mgrs, const char *name,
             json_t *store)
{
    json_t *inst = json_object_get(store, "instances");
    int timeout = (int)cli_int(ctx, "TimeoutSec", 30);
    apr_time_t until = apr_time_now() +
        apr_time_from_sec(timeout < 15 ? timeout : 15);
    const char *missing = NULL, *leader = NULL;
    int tries;

    for (tries = 0; tries < 60; tries++) {
        int i;
        json_int_t best = -1;
        json_t *members = NULL;
        json_t *got = NULL;

        for (i = 0; i < mgrs->nelts; i++) {
            cli_mgr_t *m = DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *);
            cli_http_t r;
            json_t *s;

            if (m->error != NULL) {
                continue;
            }
            s = fetch_store(&r, m, name, timeout, ctx->pool);
            if (s != NULL && jint(s, "participatingNodes", 0) > best) {
                json_decref(got);
                got = s;
                best = jint(s, "participatingNodes", 0);
            } else {
                json_decref(s);
            }
        }
        missing = NULL;
        leader = jstr(got, "leader", NULL);
        members = json_object_get(got, "members");
        if (got != NULL) {
            size_t n;
            for (n = 0; n < json_array_size(inst); n++) {
                const char *iname = jstr(json_array_get(inst, n), "name",
                                         "");
                size_t q;
                int in = 0;
                for (q = 0; q < json_array_size(members); q++) {
                    json_t *mb = json_array_get(members, q);
                    in |= strcmp(jstr(mb, "name", ""), iname) == 0 &&
                          strcmp(jstr(mb, "role", "voter"), "voter") == 0;
                }
                if (!in) {
                    missing = apr_pstrcat(ctx->pool, missing != NULL
                                          ? missing : "", missing != NULL
                                          ? ", " : "", iname, NULL);
                }
            }
            leader = leader != NULL ? apr_pstrdup(ctx->pool, leader) : NULL;
        }
        json_decref(got);
        if (got != NULL && missing == NULL && leader != NULL) {
            return;
        }
        if (apr_time_now() >= until) {
            break;
        }
        apr_sleep(apr_time_from_msec(500));
    }
    if (missing != NULL) {
        cli_error(ctx, "not every node joined the cluster: %s %s not a "
                  "member yet%s " DASH " check that the cluster ports are "
                  "open between the machines (firewalls, security groups), "
                  "that the hosts are reachable addresses (not localhost "
                  "across machines), and that you are connected to every "
                  "manager; Get-DkvStore %s shows the state", missing,
                  strchr(missing, ',') != NULL ? "are" : "is",
                  leader == NULL ? ", and there is no leader" : "", name);
    } else if (leader == NULL) {
        cli_error(ctx, "the store's nodes run, but there is no leader yet "
                  DASH " check that the cluster ports are open between the "
                  "machines; Get-DkvStore %s shows the state", name);
    }
}

/* Start-DkvStore and Stop-DkvStore. */
static int
control(cli_ctx_t *ctx, int start)
{
    const char *name = cli_str(ctx, "Name", "");
    const char *only = cli_str(ctx, "InstanceName", NULL);
    const char *action = start ? "StartInstance" : "StopInstance";
    apr_array_header_t *mgrs, *jobs, *mine;
    dkv_admin_key_t *key;
    json_t *rows, *store, *inst;
    int rc, i, k, unreachable = 0, all;
    size_t n;

    if (!name_check(ctx, "Name", name) ||
        (only != NULL && !name_check(ctx, "InstanceName", only))) {
        return CLI_EXIT_USAGE;
    }
    if ((rc = setup(ctx, &mgrs, &key)) != CLI_EXIT_OK) {
        return rc;
    }
    rows = json_array();
    store = discover(ctx, mgrs, name, action, rows);
    if (store == NULL) {
        return finish(ctx, rows, any_unreachable(mgrs));
    }
    inst = json_object_get(store, "instances");
    if (only != NULL && find_instance(inst, only) == NULL) {
        const char *names = "";
        for (n = 0; n < json_array_size(inst); n++) {
            names = apr_pstrcat(ctx->pool, names, n > 0 ? ", " : "",
                                jstr(json_array_get(inst, n), "name", ""),
                                NULL);
        }
        cli_error(ctx, "store %s has no instance %s (its instances: %s)",
                  name, only, names);
        json_decref(store);
        json_decref(rows);
        return CLI_EXIT_FAILED;
    }
    /* Each instance goes to the manager that runs it. */
    mine = apr_array_make(ctx->pool, mgrs->nelts, sizeof(ctl_arg_t *));
    for (i = 0; i < mgrs->nelts; i++) {
        ctl_arg_t *a = apr_pcalloc(ctx->pool, sizeof(*a));
        a->store = name;
        a->start = start;
        a->force = cli_has(ctx, "Force");
        a->names = apr_array_make(ctx->pool, 4, sizeof(char *));
        APR_ARRAY_PUSH(mine, ctl_arg_t *) = a;
    }
    for (n = 0; n < json_array_size(inst); n++) {
        json_t *d = json_array_get(inst, n);
        const char *iname = jstr(d, "name", "");
        cli_mgr_t *owner = cli_mgr_by_key(mgrs, jstr(d, "manager", NULL));

        if (only != NULL && strcmp(only, iname) != 0) {
            continue;
        }
        for (i = 0; owner != NULL && i < mgrs->nelts; i++) {
            if (DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *) == owner) {
                APR_ARRAY_PUSH(DKV_ARRAY_IDX(mine, i, ctl_arg_t *)->names,
                               const char *) = apr_pstrdup(ctx->pool, iname);
            }
        }
        if (owner == NULL) {
            cli_row(rows, owner_text(mgrs, d, ctx->pool),
                    apr_pstrcat(ctx->pool, action, ":", iname, NULL),
                    "FAILED", apr_psprintf(ctx->pool, "instance %s runs on "
                    "%s, whose manager is not connected; connect to every "
                    "manager (Connect-DkvManager -Force)", iname,
                    jstr(d, "host", "?")));
        }
    }
    {
        apr_array_header_t *busy = apr_array_make(ctx->pool, mgrs->nelts,
                                                  sizeof(cli_mgr_t *));
        for (i = 0; i < mgrs->nelts; i++) {
            if (DKV_ARRAY_IDX(mine, i, ctl_arg_t *)->names->nelts > 0) {
                APR_ARRAY_PUSH(busy, cli_mgr_t *) =
                    DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *);
            }
        }
        jobs = cli_jobs_make(ctx, busy, ctl_job, NULL, action, key);
        for (k = 0; k < jobs->nelts; k++) {
            cli_job_t *j = DKV_ARRAY_IDX(jobs, k, cli_job_t *);
            for (i = 0; i < mgrs->nelts; i++) {
                if (DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *) == j->mgr) {
                    j->arg = DKV_ARRAY_IDX(mine, i, ctl_arg_t *);
                }
            }
        }
    }
    all = cli_jobs_run(ctx, jobs, rows);
    for (k = 0; k < jobs->nelts; k++) {
        unreachable |= DKV_ARRAY_IDX(jobs, k, cli_job_t *)->unreachable;
    }
    rc = finish(ctx, rows, unreachable);
    if (start && all && jobs->nelts > 0) {
        const char *eps = "";
        check_joined(ctx, mgrs, name, store);
        for (n = 0; n < json_array_size(inst); n++) {
            json_t *d = json_array_get(inst, n);
            const char *h = jstr(d, "host", "");
            int v6 = strchr(h, ':') != NULL;

            eps = apr_psprintf(ctx->pool, "%s%s%s%s%s:%" APR_INT64_T_FMT,
                               eps, n > 0 ? "," : "", v6 ? "[" : "", h,
                               v6 ? "]" : "",
                               (apr_int64_t)jint(d, "clientPort", 0));
        }
        note(ctx, apr_psprintf(ctx->pool, "Clients connect with: dkv "
                               "Connect-DkvStore -StoreName %s -Endpoints "
                               "%s", name, eps));
    }
    json_decref(store);
    return rc;
}

int
cli_cmd_start_store(cli_ctx_t *ctx)
{
    return control(ctx, 1);
}

int
cli_cmd_stop_store(cli_ctx_t *ctx)
{
    return control(ctx, 0);
}

/* ------------------------------------------------------- Add-DkvInstance */

/* Parses one -Nodes element: @{ InstanceName = 'x'; ClustronPort = 1;
 * ClientPort = 2 } or x:1:2.  Returns 0, or -1 with *WHY. */
static int
parse_node(const char **name, int64_t *cport, int64_t *lport,
           const char *text, const char **why, apr_pool_t *pool)
{
    size_t n = strlen(text);

    *name = NULL;
    *cport = *lport = 0;
    while (n > 0 && text[n - 1] == ' ') {
        n--;
    }
    while (*text == ' ') {
        text++;
        n--;
    }
    if (strncmp(text, "[InstanceDefinition]", 20) == 0) {
        text += 20;
        n -= 20;
    }
    if (n >= 3 && text[0] == '@' && text[1] == '{' && text[n - 1] == '}') {
        char *body = apr_pstrmemdup(pool, text + 2, n - 3), *p = body;

        while (p != NULL && *p != '\0') {
            char *semi = strchr(p, ';'), *eq, *k, *v;
            size_t kl, vl;

            if (semi != NULL) {
                *semi = '\0';
            }
            eq = strchr(p, '=');
            if (eq != NULL) {
                *eq = '\0';
                k = p;
                v = eq + 1;
                while (*k == ' ') { k++; }
                while (*v == ' ') { v++; }
                kl = strlen(k);
                while (kl > 0 && k[kl - 1] == ' ') { k[--kl] = '\0'; }
                vl = strlen(v);
                while (vl > 0 && v[vl - 1] == ' ') { v[--vl] = '\0'; }
                if (vl >= 2 && (v[0] == '\'' || v[0] == '"') &&
                    v[vl - 1] == v[0]) {
                    v[vl - 1] = '\0';
                    v++;
                }
                if (cli_strcasecmp(k, "InstanceName") == 0) {
                    *name = v;
                } else if (cli_strcasecmp(k, "ClustronPort") == 0) {
                    if (cli_parse_i64(cport, v) != 0) {
                        *cport = -1;
                    }
                } else if (cli_strcasecmp(k, "ClientPort") == 0) {
                    if (cli_parse_i64(lport, v) != 0) {
                        *lport = -1;
                    }
                } else {
                    *why = apr_psprintf(pool, "unknown field '%s' (an "
                                        "InstanceDefinition has "
                                        "InstanceName, ClustronPort, "
                                        "ClientPort)", k);
                    return -1;
                }
            } else if (p[strspn(p, " ")] != '\0') {
                *why = apr_psprintf(pool, "'%s' is not Field = Value", p);
                return -1;
            }
            p = semi != NULL ? semi + 1 : NULL;
        }
    } else {
        const char *c1 = strchr(text, ':');
        const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
        if (c1 == NULL || c2 == NULL ||
            cli_parse_i64(cport, apr_pstrmemdup(pool, c1 + 1,
                                                (size_t)(c2 - c1 - 1))) != 0
            || cli_parse_i64(lport, apr_pstrmemdup(pool, c2 + 1,
                                                   n - (size_t)(c2 - text)
                                                   - 1)) != 0) {
            *why = apr_psprintf(pool, "'%s' is neither @{ InstanceName = "
                                "'x'; ClustronPort = N; ClientPort = N } "
                                "nor name:clustronPort:clientPort", text);
            return -1;
        }
        *name = apr_pstrmemdup(pool, text, (size_t)(c1 - text));
    }
    if (*name == NULL || *cport == 0 || *lport == 0) {
        *why = apr_psprintf(pool, "'%s' lacks InstanceName, ClustronPort or "
                            "ClientPort", text);
        return -1;
    }
    return 0;
}

typedef struct add_arg {
    json_t *body;           /* this manager's request */
} add_arg_t;

static int
add_job(cli_job_t *j)
{
    add_arg_t *a = j->arg;
    cli_http_t r;
    const char *store = apr_pstrdup(j->pool, jstr(a->body, "store", ""));
    int ok;

    json_object_del(a->body, "store");
    ok = cli_mgr_request(&r, j->mgr, j->key, "POST",
                         apr_pstrcat(j->pool, "/admin/v1/stores/", store,
                                     "/instances", NULL), NULL, a->body,
                         j->timeout_sec, j->pool);
    json_decref(a->body);
    a->body = NULL;
    if (!ok) {
        j->unreachable = r.transport;
        cli_row(j->rows, j->mgr->address, "AddInstance", "FAILED",
                cli_http_why(&r, j->pool));
        json_decref(r.body);
        return 0;
    }
    cli_row(j->rows, j->mgr->address, "AddInstance", "SUCCESS",
            jstr(r.body, "message", "Instance added"));
    json_decref(r.body);
    return 1;
}

int
cli_cmd_add_instance(cli_ctx_t *ctx)
{
    const char *store = cli_str(ctx, "StoreName", "");
    apr_array_header_t *nodes = cli_list(ctx, "Nodes");
    apr_array_header_t *mgrs, *jobs;
    dkv_admin_key_t *key;
    cli_mgr_t *target = NULL;
    json_t *rows, *s, *existing, *added, *defs;
    const char *prefix, *seal_secret = NULL, *seal_token = NULL;
    json_int_t next = 0;
    int rc, i, all, running = 0, unreachable = 0;
    size_t n, q;

    if (!name_check(ctx, "StoreName", store)) {
        return CLI_EXIT_USAGE;
    }
    /* The new instances' names and ports, checked before anything. */
    defs = json_array();
    if (nodes != NULL) {
        if (cli_has(ctx, "InstanceName") || cli_has(ctx, "ClustronPort") ||
            cli_has(ctx, "ClientPort")) {
            cli_error(ctx, "give either -Nodes, or -InstanceName "
                      "-ClustronPort -ClientPort");
            json_decref(defs);
            return CLI_EXIT_USAGE;
        }
        for (i = 0; i < nodes->nelts; i++) {
            const char *text = DKV_ARRAY_IDX(nodes, i, const char *);
            const char *nm, *why;
            int64_t cp, lp;

            /* A hashtable split at a comma inside it: join it back. */
            while (strncmp(text, "@{", 2) == 0 && strchr(text, '}') == NULL
                   && i + 1 < nodes->nelts) {
                text = apr_pstrcat(ctx->pool, text, ",",
                                   DKV_ARRAY_IDX(nodes, ++i, const char *),
                                   NULL);
            }
            if (parse_node(&nm, &cp, &lp, text, &why, ctx->pool) != 0) {
                cli_error(ctx, "-Nodes: %s", why);
                json_decref(defs);
                return CLI_EXIT_USAGE;
            }
            json_array_append_new(defs, json_pack("{s:s, s:I, s:I}", "name",
                                                  nm, "clusterPort",
                                                  (json_int_t)cp,
                                                  "clientPort",
                                                  (json_int_t)lp));
        }
    } else {
        if (!cli_has(ctx, "InstanceName") || !cli_has(ctx, "ClustronPort") ||
            !cli_has(ctx, "ClientPort")) {
            cli_error(ctx, "give -InstanceName, -ClustronPort and "
                      "-ClientPort (or -Nodes for several)");
            json_decref(defs);
            return CLI_EXIT_USAGE;
        }
        json_array_append_new(defs, json_pack("{s:s, s:I, s:I}", "name",
            cli_str(ctx, "InstanceName", ""), "clusterPort",
            (json_int_t)cli_int(ctx, "ClustronPort", 0), "clientPort",
            (json_int_t)cli_int(ctx, "ClientPort", 0)));
    }
    for (n = 0; n < json_array_size(defs); n++) {
        json_t *d = json_array_get(defs, n);
        json_int_t cp = jint(d, "clusterPort", 0), lp = jint(d, "clientPort",
                                                              0);
        if (!name_check(ctx, "InstanceName", jstr(d, "name", ""))) {
            json_decref(defs);
            return CLI_EXIT_USAGE;
        }
        if (cp < 1 || cp > 65535 || lp < 1 || lp > 65535 || cp == lp) {
            cli_error(ctx, "instance %s: ports must be 1-65535 and differ "
                      "(ClustronPort %lld, ClientPort %lld)",
                      jstr(d, "name", ""), (long long)cp, (long long)lp);
            json_decref(defs);
            return CLI_EXIT_USAGE;
        }
        for (q = 0; q < n; q++) {
            json_t *e = json_array_get(defs, q);
            if (strcmp(jstr(e, "name", ""), jstr(d, "name", "")) == 0) {
                cli_error(ctx, "instance %s is given twice",
                          jstr(d, "name", ""));
                json_decref(defs);
                return CLI_EXIT_USAGE;
            }
        }
    }
    if ((rc = setup(ctx, &mgrs, &key)) != CLI_EXIT_OK) {
        json_decref(defs);
        return rc;
    }
    if (cli_has(ctx, "Manager")) {
        cli_mgr_t *want;
        const char *why;
        if (cli_mgr_parse(&want, cli_str(ctx, "Manager", ""),
                          (int)cli_int(ctx, "Port", CLI_MGR_PORT), &why,
                          ctx->pool) != 0) {
            cli_error(ctx, "-Manager: %s", why);
            json_decref(defs);
            return CLI_EXIT_USAGE;
        }
        for (i = 0; i < mgrs->nelts; i++) {
            cli_mgr_t *m = DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *);
            if (strcmp(m->address, want->address) == 0) {
                target = m;
            }
        }
        if (target == NULL) {
            cli_error(ctx, "-Manager %s is not one of the connected "
                      "managers", want->address);
            json_decref(defs);
            return CLI_EXIT_USAGE;
        }
    } else {
        target = DKV_ARRAY_IDX(mgrs, 0, cli_mgr_t *);
    }
    rows = json_array();
    if (target->error != NULL) {
        cli_mgr_failed_row(rows, target, "AddInstance");
        json_decref(defs);
        return finish(ctx, rows, target->unreachable);
    }
    s = discover(ctx, mgrs, store, "AddInstance", rows);
    if (s == NULL) {
        json_decref(defs);
        return finish(ctx, rows, any_unreachable(mgrs));
    }
    existing = json_array();
    for (n = 0; n < json_array_size(json_object_get(s, "instances")); n++) {
        json_t *e = json_array_get(json_object_get(s, "instances"), n);
        json_array_append_new(existing, definition(e));
        if (jint(e, "nodeId", 0) > next) {
            next = jint(e, "nodeId", 0);
        }
    }
    prefix = jstr(s, "instancePrefix", NULL);
    if (prefix == NULL && json_array_size(existing) > 0) {
        /* Not in the store object: the first name without "-<n>". */
        const char *first = jstr(json_array_get(existing, 0), "name", "");
        const char *dash = strrchr(first, '-');
        prefix = dash != NULL && dash > first
            ? apr_pstrmemdup(ctx->pool, first, (size_t)(dash - first))
            : first;
    }
    added = json_array();
    for (n = 0; n < json_array_size(defs); n++) {
        json_t *d = json_array_get(defs, n);
        const char *nm = jstr(d, "name", "");
        for (q = 0; q < json_array_size(existing); q++) {
            json_t *e = json_array_get(existing, q);
            if (strcmp(jstr(e, "name", ""), nm) == 0) {
                cli_error(ctx, "store %s already has an instance %s", store,
                          nm);
                json_decref(defs);
                json_decref(added);
                json_decref(existing);
                json_decref(s);
                json_decref(rows);
                return CLI_EXIT_FAILED;
            }
            if (strcmp(jstr(e, "manager", ""), target->sign_key) == 0) {
                json_int_t ec = jint(e, "clusterPort", 0);
                json_int_t el = jint(e, "clientPort", 0);
                json_int_t cp = jint(d, "clusterPort", 0);
                json_int_t lp = jint(d, "clientPort", 0);
                if (ec == cp || ec == lp || el == cp || el == lp) {
                    cli_error(ctx, "instance %s: its ports %lld/%lld clash "
                              "with instance %s (%lld/%lld) on %s",
                              nm, (long long)cp, (long long)lp,
                              jstr(e, "name", ""), (long long)ec,
                              (long long)el, target->address);
                    json_decref(defs);
                    json_decref(added);
                    json_decref(existing);
                    json_decref(s);
                    json_decref(rows);
                    return CLI_EXIT_FAILED;
                }
            }
        }
        json_object_set_new(d, "nodeId", json_integer(++next));
        json_object_set_new(d, "host", json_string(target->host));
        json_object_set_new(d, "manager", json_string(target->sign_key));
        json_array_append(added, d);
    }
    json_decref(defs);
    running = strcmp(jstr(s, "status", ""), "Running") == 0 ||
              strcmp(jstr(s, "status", ""), "Partial") == 0;
    /* The secrets for the target: sealed to it by a manager that has
     * them. */
    for (i = 0; i < mgrs->nelts && seal_secret == NULL; i++) {
        cli_mgr_t *m = DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *);
        json_t *req;
        cli_http_t r;
        int ok;

        if (m->error != NULL) {
            continue;
        }
        req = json_pack("{s:s}", "boxKey", target->box_key);
        ok = cli_mgr_request(&r, m, key, "POST",
                             apr_pstrcat(ctx->pool, "/admin/v1/stores/",
                                         store, "/seal", NULL), NULL, req,
                             (int)cli_int(ctx, "TimeoutSec", 30),
                             ctx->pool);
        json_decref(req);
        if (ok && json_is_string(json_object_get(r.body, "sealedSecret")) &&
            json_is_string(json_object_get(r.body, "sealedToken"))) {
            seal_secret = apr_pstrdup(ctx->pool, jstr(r.body, "sealedSecret",
                                                      ""));
            seal_token = apr_pstrdup(ctx->pool, jstr(r.body, "sealedToken",
                                                     ""));
        }
        json_decref(r.body);
    }
    jobs = cli_jobs_make(ctx, mgrs, add_job, NULL, "AddInstance", key);
    for (i = 0; i < jobs->nelts; i++) {
        cli_job_t *j = DKV_ARRAY_IDX(jobs, i, cli_job_t *);
        add_arg_t *a = apr_pcalloc(ctx->pool, sizeof(*a));
        /* Copies: the jobs may run on threads, and jansson's reference
         * counts are not atomic everywhere (MSVC). */
        a->body = json_pack("{s:s, s:o, s:o, s:s}", "store", store,
                            "instances", json_deep_copy(added), "existing",
                            json_deep_copy(existing), "instancePrefix",
                            prefix);
        if (j->mgr == target && seal_secret != NULL) {
            json_object_set_new(a->body, "sealedSecret",
                                json_string(seal_secret));
            json_object_set_new(a->body, "sealedToken",
                                json_string(seal_token));
        }
        j->arg = a;
    }
    json_decref(existing);
    all = cli_jobs_run(ctx, jobs, rows);
    for (i = 0; i < jobs->nelts; i++) {
        cli_job_t *j = DKV_ARRAY_IDX(jobs, i, cli_job_t *);
        add_arg_t *a = j->arg;

        /* The body of a job that did not run (-FailFast, or a manager
         * that could not be resolved). */
        json_decref(a->body);
        a->body = NULL;
        unreachable |= j->unreachable;
    }
    if (seal_secret == NULL) {
        cli_error(ctx, "no manager handed out the store's secrets for %s "
                  "(POST .../seal); the new instances may not start there",
                  target->address);
    }
    /* Start them where they run, if the store runs. */
    if (all && running) {
        for (n = 0; n < json_array_size(added); n++) {
            const char *nm = jstr(json_array_get(added, n), "name", "");
            const char *action = apr_pstrcat(ctx->pool, "StartInstance:", nm,
                                             NULL);
            cli_http_t r;
            int tmo = (int)cli_int(ctx, "TimeoutSec", 30);

            if (cli_mgr_request(&r, target, key, "POST",
                                apr_pstrcat(ctx->pool, "/admin/v1/stores/",
                                            store, "/instances/", nm,
                                            "/start", NULL),
                                apr_psprintf(ctx->pool, "startTimeoutSec=%d",
                                             tmo), NULL, tmo + 15,
                                ctx->pool)) {
                cli_row(rows, target->address, action, "SUCCESS",
                        jstr(r.body, "message", "Started"));
            } else {
                unreachable |= r.transport;
                cli_row(rows, target->address, action, "FAILED",
                        cli_http_why(&r, ctx->pool));
            }
            json_decref(r.body);
        }
    }
    json_decref(added);
    json_decref(s);
    rc = finish(ctx, rows, unreachable);
    if (all && !running) {
        note(ctx, apr_psprintf(ctx->pool, "The store is not running; "
                               "Start-DkvStore %s starts every instance.",
                               store));
    }
    return rc;
}

/* ------------------------------------------------------ Get-DkvAdminKey */

int
cli_cmd_admin_key(cli_ctx_t *ctx)
{
    dkv_admin_key_t *key;
    const char *dir, *user = getenv("USER"), *line;
    char host[256];
    int rc = cli_admin_key(ctx, &key);

    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (user == NULL || user[0] == '\0') {
        user = getenv("USERNAME");
    }
    if (apr_gethostname(host, sizeof(host), ctx->pool) != APR_SUCCESS) {
        apr_cpystrn(host, "localhost", sizeof(host));
    }
    line = dkv_admin_key_line(key, apr_psprintf(ctx->pool, "%s@%s",
                                                user != NULL ? user
                                                : "admin", host),
                              ctx->pool);
    if (ctx->json) {
        json_t *o = json_object();
        size_t n = strlen(line);
        if (cli_config_dir(&dir, ctx->pool) != DKV_OK) {
            dir = "?";      /* cli_admin_key found it a moment ago */
        }
        json_object_set_new(o, "KeyId", json_string(
            dkv_admin_key_id(key, ctx->pool)));
        json_object_set_new(o, "Line", json_stringn(line, n > 0 &&
                                                    line[n - 1] == '\n'
                                                    ? n - 1 : n));
        json_object_set_new(o, "KeyFile", json_string(apr_pstrcat(
            ctx->pool, dir, "/admin.key", NULL)));
        cli_print(ctx, o);
    } else {
        fputs(line, stdout);
        if (line[0] == '\0' || line[strlen(line) - 1] != '\n') {
            fputc('\n', stdout);
        }
    }
    return CLI_EXIT_OK;
}
