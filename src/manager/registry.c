/*
 * registry.c -- dkv-manager's registry: the stores it knows and the
 * nonces of the signed requests it accepted, in an LMDB environment of
 * its own (DATA/registry), every commit synced.
 *
 * Two databases: "stores" maps a store's name to its definition as JSON
 * text (docs/internals/manager.md, "Registry"), "nonces" maps a nonce to
 * the time it was seen (8 bytes, big-endian milliseconds).  Nonces older
 * than two signing windows are dropped as new ones come in.
 */
#include <string.h>

#include <lmdb.h>

#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "common/alloc.h"
#include "common/status.h"
#include "manager/manager.h"

#define REG_MAP_SIZE ((size_t)64 * 1024 * 1024)
/* Nonces are pruned at most this often. */
#define PRUNE_EVERY_MS 10000

struct mgr_registry {
    MDB_env *env;
    MDB_dbi stores;
    MDB_dbi nonces;
    char *path;
    int64_t pruned_ms;             /* last prune (racy hint only) */
};

/* Records an LMDB failure RC of WHAT and returns its status. */
static dkv_status_t
mdb_fail(const mgr_registry_t *reg, int rc, const char *what)
{
    return dkv_error_set(dkv_status_from_mdb(rc), "registry %s: %s: %s",
                         reg->path, what, mdb_strerror(rc));
}

static apr_status_t
registry_cleanup(void *data)
{
    mgr_registry_t *reg = data;

    if (reg->env != NULL) {
        mdb_env_close(reg->env);
        reg->env = NULL;
    }
    return APR_SUCCESS;
}

dkv_status_t
mgr_registry_open(mgr_registry_t **regp, const char *dir, apr_pool_t *pool)
{
    mgr_registry_t *reg = apr_pcalloc(pool, sizeof(*reg));
    MDB_txn *txn;
    apr_status_t rv;
    char err[120];
    int rc;

    reg->path = apr_pstrcat(pool, dir, "/registry", NULL);
    rv = apr_dir_make_recursive(reg->path, APR_FPROT_UREAD | APR_FPROT_UWRITE
                                | APR_FPROT_UEXECUTE, pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot create the registry directory %s: "
                             "%s", reg->path,
                             apr_strerror(rv, err, sizeof(err)));
    }
    if ((rc = mdb_env_create(&reg->env)) != 0) {
        reg->env = NULL;
        return mdb_fail(reg, rc, "create");
    }
    apr_pool_cleanup_register(pool, reg, registry_cleanup,
                              apr_pool_cleanup_null);
    if ((rc = mdb_env_set_maxdbs(reg->env, 4)) != 0
        || (rc = mdb_env_set_mapsize(reg->env, REG_MAP_SIZE)) != 0
        || (rc = mdb_env_open(reg->env, reg->path, MDB_NOTLS, 0600)) != 0) {
        return mdb_fail(reg, rc, "open");
    }
    if ((rc = mdb_txn_begin(reg->env, NULL, 0, &txn)) != 0) {
        return mdb_fail(reg, rc, "begin");
    }
    if ((rc = mdb_dbi_open(txn, "stores", MDB_CREATE, &reg->stores)) != 0
        || (rc = mdb_dbi_open(txn, "nonces", MDB_CREATE, &reg->nonces))
           != 0) {
        mdb_txn_abort(txn);
        return mdb_fail(reg, rc, "open databases");
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        return mdb_fail(reg, rc, "commit");
    }
    *regp = reg;
    return DKV_OK;
}

void
mgr_registry_close(mgr_registry_t *reg)
{
    if (reg != NULL) {
        registry_cleanup(reg);
    }
}

/* ------------------------------------------------------- JSON forms */

static const char *
jstr(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));

    return s ? s : "";
}

static json_int_t
jint(json_t *obj, const char *key)
{
    return json_integer_value(json_object_get(obj, key));
}

/* Parses the JSON text of a store into *STORE (in POOL). */
static dkv_status_t
store_parse(mgr_store_t **storep, const mgr_registry_t *reg,
            const void *text, size_t len, apr_pool_t *pool)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr), *insts;
    mgr_store_t *s;
    size_t i;

    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return dkv_error_set(DKV_ECORRUPT, "registry %s: a store record is "
                             "not JSON: %s", reg->path, jerr.text);
    }
    s = apr_pcalloc(pool, sizeof(*s));
    apr_cpystrn(s->name, jstr(root, "name"), sizeof(s->name));
    apr_cpystrn(s->prefix, jstr(root, "prefix"), sizeof(s->prefix));
    s->created_ms = (int64_t)jint(root, "createdMs");
    s->heartbeat_ms = (unsigned)jint(root, "heartbeatMs");
    s->election_ms = (unsigned)jint(root, "electionMs");
    insts = json_object_get(root, "instances");
    s->ninstances = json_array_size(insts);
    s->instances = apr_pcalloc(pool, (s->ninstances + 1)
                               * sizeof(*s->instances));
    for (i = 0; i < s->ninstances; i++) {
        json_t *o = json_array_get(insts, i);
        mgr_instance_t *in = &s->instances[i];

        apr_cpystrn(in->name, jstr(o, "name"), sizeof(in->name));
        in->node_id = (uint32_t)jint(o, "nodeId");
        apr_cpystrn(in->host, jstr(o, "host"), sizeof(in->host));
        apr_cpystrn(in->manager, jstr(o, "manager"), sizeof(in->manager));
        in->cluster_port = (uint16_t)jint(o, "clusterPort");
        in->client_port = (uint16_t)jint(o, "clientPort");
        in->local = json_is_true(json_object_get(o, "local"));
        in->joining = json_is_true(json_object_get(o, "joining"));
        in->want_running = json_is_true(json_object_get(o, "wantRunning"));
    }
    json_decref(root);
    *storep = s;
    return DKV_OK;
}

/* The JSON text of STORE, in POOL. */
static const char *
store_text(const mgr_store_t *s, apr_pool_t *pool)
{
    json_t *root = json_object(), *insts = json_array();
    char *text;
    size_t i, n;

    json_object_set_new(root, "name", json_string(s->name));
    json_object_set_new(root, "prefix", json_string(s->prefix));
    json_object_set_new(root, "createdMs", json_integer(s->created_ms));
    json_object_set_new(root, "heartbeatMs", json_integer(s->heartbeat_ms));
    json_object_set_new(root, "electionMs", json_integer(s->election_ms));
    for (i = 0; i < s->ninstances; i++) {
        const mgr_instance_t *in = &s->instances[i];
        json_t *o = json_object();

        json_object_set_new(o, "name", json_string(in->name));
        json_object_set_new(o, "nodeId", json_integer(in->node_id));
        json_object_set_new(o, "host", json_string(in->host));
        json_object_set_new(o, "manager", json_string(in->manager));
        json_object_set_new(o, "clusterPort",
                            json_integer(in->cluster_port));
        json_object_set_new(o, "clientPort", json_integer(in->client_port));
        json_object_set_new(o, "local", json_boolean(in->local));
        json_object_set_new(o, "joining", json_boolean(in->joining));
        json_object_set_new(o, "wantRunning",
                            json_boolean(in->want_running));
        json_array_append_new(insts, o);
    }
    json_object_set_new(root, "instances", insts);
    n = json_dumpb(root, NULL, 0, JSON_COMPACT);
    text = n ? apr_palloc(pool, n + 1) : NULL;
    if (text != NULL) {
        json_dumpb(root, text, n, JSON_COMPACT);
        text[n] = '\0';
    }
    json_decref(root);
    return text;
}

/* ------------------------------------------------------------ stores */

dkv_status_t
mgr_registry_get(mgr_store_t **store, mgr_registry_t *reg, const char *name,
                 apr_pool_t *pool)
{
    MDB_val k, v;
    MDB_txn *txn;
    dkv_status_t st;
    int rc;

    *store = NULL;
    k.mv_data = (void *)name;
    k.mv_size = strlen(name);
    if ((rc = mdb_txn_begin(reg->env, NULL, MDB_RDONLY, &txn)) != 0) {
        return mdb_fail(reg, rc, "begin");
    }
    rc = mdb_get(txn, reg->stores, &k, &v);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return DKV_OK;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return mdb_fail(reg, rc, "read");
    }
    st = store_parse(store, reg, v.mv_data, v.mv_size, pool);
    mdb_txn_abort(txn);
    return st;
}

dkv_status_t
mgr_registry_list(apr_array_header_t **stores, mgr_registry_t *reg,
                  apr_pool_t *pool)
{
    apr_array_header_t *arr = apr_array_make(pool, 8, sizeof(mgr_store_t *));
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_txn *txn;
    dkv_status_t st = DKV_OK;
    int rc;

    if ((rc = mdb_txn_begin(reg->env, NULL, MDB_RDONLY, &txn)) != 0) {
        return mdb_fail(reg, rc, "begin");
    }
    if ((rc = mdb_cursor_open(txn, reg->stores, &cur)) != 0) {
        mdb_txn_abort(txn);
        return mdb_fail(reg, rc, "cursor");
    }
    /* LMDB keeps keys sorted bytewise: the list comes out by name. */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        mgr_store_t *s;

        st = store_parse(&s, reg, v.mv_data, v.mv_size, pool);
        if (st != DKV_OK) {
            break;
        }
        APR_ARRAY_PUSH(arr, mgr_store_t *) = s;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (st == DKV_OK && rc != MDB_NOTFOUND) {
        return mdb_fail(reg, rc, "list");
    }
    *stores = arr;
    return st;
}

dkv_status_t
mgr_registry_put(mgr_registry_t *reg, const mgr_store_t *store,
                 apr_pool_t *pool)
{
    const char *text = store_text(store, pool);
    MDB_val k, v;
    MDB_txn *txn;
    int rc;

    if (text == NULL) {
        return dkv_error_set(APR_ENOMEM, "registry: cannot encode store %s",
                             store->name);
    }
    k.mv_data = (void *)store->name;
    k.mv_size = strlen(store->name);
    v.mv_data = (void *)text;
    v.mv_size = strlen(text);
    if ((rc = mdb_txn_begin(reg->env, NULL, 0, &txn)) != 0) {
        return mdb_fail(reg, rc, "begin");
    }
    if ((rc = mdb_put(txn, reg->stores, &k, &v, 0)) != 0) {
        mdb_txn_abort(txn);
        return mdb_fail(reg, rc, apr_psprintf(pool, "write store %s",
                                              store->name));
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        return mdb_fail(reg, rc, "commit");
    }
    return DKV_OK;
}

/* ------------------------------------------------------------ nonces */

static void
put_be64(unsigned char out[8], int64_t v)
{
    uint64_t u = (uint64_t)v;
    int i;

    for (i = 7; i >= 0; i--) {
        out[i] = (unsigned char)(u & 0xFF);
        u >>= 8;
    }
}

static int64_t
get_be64(const unsigned char in[8])
{
    uint64_t u = 0;
    int i;

    for (i = 0; i < 8; i++) {
        u = (u << 8) | in[i];
    }
    return (int64_t)u;
}

/* Drops the nonces seen before CUTOFF_MS, within TXN. */
static int
prune_nonces(mgr_registry_t *reg, MDB_txn *txn, int64_t cutoff_ms)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_cursor_open(txn, reg->nonces, &cur)) != 0) {
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != 8 || get_be64(v.mv_data) < cutoff_ms) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0) {
                break;
            }
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

dkv_status_t
mgr_registry_nonce(mgr_registry_t *reg, const char *nonce, int64_t now_ms)
{
    unsigned char when[8];
    MDB_val k, v;
    MDB_txn *txn;
    int rc;

    k.mv_data = (void *)nonce;
    k.mv_size = strlen(nonce);
    if (k.mv_size == 0 || k.mv_size > 128) {
        return dkv_error_set(DKV_EINVAL, "bad nonce length %zu", k.mv_size);
    }
    put_be64(when, now_ms);
    v.mv_data = when;
    v.mv_size = sizeof(when);
    if ((rc = mdb_txn_begin(reg->env, NULL, 0, &txn)) != 0) {
        return mdb_fail(reg, rc, "begin");
    }
    if (now_ms - reg->pruned_ms > PRUNE_EVERY_MS) {
        rc = prune_nonces(reg, txn, now_ms - 2 * DKV_ADMIN_WINDOW_MS);
        if (rc != 0) {
            mdb_txn_abort(txn);
            return mdb_fail(reg, rc, "prune nonces");
        }
        reg->pruned_ms = now_ms;
    }
    rc = mdb_put(txn, reg->nonces, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        mdb_txn_abort(txn);
        return dkv_error_set(DKV_ECONFLICT, "replayed nonce");
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return mdb_fail(reg, rc, "write nonce");
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        return mdb_fail(reg, rc, "commit");
    }
    return DKV_OK;
}
