/*
 * adminauth.c -- the management port's keys, signatures and sealing, and
 * the node admin token (adminauth.h; docs/admin-api.md, "Authentication").
 *
 * Key files are one text line each, written atomically (temporary file in
 * the same directory, sync, rename) with mode 0600:
 *   admin.key    "dkv-admin-key-v1 <b64 Ed25519 secret key (64 bytes)>"
 *   manager.key  "dkv-manager-key-v1 <b64 Ed25519 secret key (64)>
 *                 <b64 X25519 secret key (32)> <b64 X25519 public key>"
 * A file that does not parse, or whose public halves do not match their
 * secret halves, is refused as DKV_ECORRUPT naming the file.  Secret
 * keys, and the file text that carries them, live in sodium_malloc
 * memory only and are wiped when freed.
 *
 * The verifier keeps the authorized keys (re-read when the file's
 * identity, size or modification time changes) and the nonces seen in
 * the last two windows (at most NONCE_MAX of them), under one mutex.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include <sodium.h>

#include "common/adminauth.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/status.h"

#define ADMIN_KEY_FILE "admin.key"
#define MANAGER_KEY_FILE "manager.key"
#define ADMIN_KEY_TAG "dkv-admin-key-v1"
#define MANAGER_KEY_TAG "dkv-manager-key-v1"
#define SIGNING_TAG "dkv-admin-v1"
#define NODE_TOKEN_CONTEXT "dkv-node-admin-v1"
#define B64 sodium_base64_VARIANT_ORIGINAL
/* Longest key file accepted (the real ones are under 300 bytes). */
#define KEY_FILE_MAX 1024
/* Longest authorized-keys file read. */
#define AUTH_FILE_MAX (4 * 1024 * 1024)
/* Most nonces remembered; more signed requests within two windows are
 * refused ("too many requests"). */
#define NONCE_MAX 100000
#define NONCE_BYTES 16
/* An authorized-keys file modified this recently is re-read at each
 * request (see refresh_keys). */
#define RACY_USEC (2 * APR_USEC_PER_SEC)

struct dkv_admin_key {
    unsigned char sk[crypto_sign_SECRETKEYBYTES];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
};

struct dkv_manager_keys {
    unsigned char sign_sk[crypto_sign_SECRETKEYBYTES];
    unsigned char sign_pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char box_sk[crypto_box_SECRETKEYBYTES];
    unsigned char box_pk[crypto_box_PUBLICKEYBYTES];
};

/* A remembered nonce (dkv_malloc'd; the hash key is BYTES). */
typedef struct nonce_entry {
    unsigned char bytes[NONCE_BYTES];
    int64_t seen_ms;
} nonce_entry_t;

struct dkv_admin_verifier {
    apr_pool_t *pool;
    apr_thread_mutex_t *mutex;
    const char *path;
    unsigned char manager_pk[DKV_ADMIN_PK_BYTES];
    const char *manager_id;
    /* The authorized keys: 32-byte public key -> itself, in keys_pool. */
    apr_pool_t *keys_pool;
    apr_hash_t *keys;
    int loaded;             /* the file's identity below is valid */
    int present;            /* the file existed at the last look */
    apr_time_t mtime;
    apr_off_t size;
    apr_ino_t inode;
    apr_time_t ctime;
    int racy;               /* changed just before it was read: re-read */
    /* Nonces: NONCE_BYTES -> nonce_entry_t *. */
    apr_hash_t *nonces;
    int64_t last_prune_ms;
};

#if DKV_ADMIN_PK_BYTES != crypto_sign_PUBLICKEYBYTES \
    || DKV_ADMIN_SIG_BYTES != crypto_sign_BYTES \
    || DKV_BOX_PK_BYTES != crypto_box_PUBLICKEYBYTES
#error "adminauth.h sizes differ from libsodium's"
#endif

/* ============================================================== basics */

dkv_status_t
dkv_adminauth_init(void)
{
    if (sodium_init() < 0) {
        return dkv_error_set(APR_EGENERAL, "cannot initialize libsodium");
    }
    return DKV_OK;
}

const char *
dkv_b64(const void *data, size_t len, apr_pool_t *pool)
{
    size_t cap = sodium_base64_encoded_len(len, B64);
    char *out = apr_palloc(pool, cap);

    sodium_bin2base64(out, cap, data, len, B64);
    return out;
}

dkv_status_t
dkv_unb64(void *out, size_t cap, size_t *len, const char *b64)
{
    const char *end = NULL;
    size_t n = 0;
    size_t b64_len;

    if (b64 == NULL) {
        return dkv_error_set(DKV_EINVAL, "missing base64 text");
    }
    b64_len = strlen(b64);
    if (b64_len == 0
        || sodium_base642bin(out, cap, b64, b64_len, NULL, &n, &end,
                             B64) != 0
        || end != b64 + b64_len) {
        return dkv_error_set(DKV_EINVAL, "malformed base64 (or longer "
                             "than %zu bytes)", cap);
    }
    if (len != NULL) {
        *len = n;
    }
    return DKV_OK;
}

/* Decodes B64 into exactly N bytes at OUT: 1, or 0 when it is anything
 * else.  Leaves no error message. */
static int
unb64_exact(unsigned char *out, size_t n, const char *b64, size_t b64_len)
{
    const char *end = NULL;
    size_t got = 0;

    return b64_len > 0
        && sodium_base642bin(out, n, b64, b64_len, NULL, &got, &end,
                             B64) == 0
        && end == b64 + b64_len && got == n;
}

static const char *
hex(const void *data, size_t len, apr_pool_t *pool)
{
    char *out = apr_palloc(pool, len * 2 + 1);

    sodium_bin2hex(out, len * 2 + 1, data, len);
    return out;
}

static const char *
errtext(apr_status_t rv, char *buf, size_t size)
{
    return apr_strerror(rv, buf, (apr_size_t)size);
}

/* ======================================================= private files */

dkv_status_t
dkv_write_private_file(const char *path, const void *data, size_t len,
                       apr_pool_t *pool)
{
    unsigned char rnd[8];
    const char *tmp;
    apr_file_t *file = NULL;
    apr_status_t rv;
    char err[120];

    randombytes_buf(rnd, sizeof(rnd));
    tmp = apr_pstrcat(pool, path, ".tmp-", hex(rnd, sizeof(rnd), pool),
                      NULL);
    rv = apr_file_open(&file, tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE
                       | APR_FOPEN_EXCL | APR_FOPEN_BINARY,
                       APR_FPROT_UREAD | APR_FPROT_UWRITE, pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot create %s: %s", tmp,
                             errtext(rv, err, sizeof(err)));
    }
    rv = apr_file_write_full(file, data, len, NULL);
    if (rv == APR_SUCCESS) {
        rv = apr_file_sync(file);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_close(file);
    } else {
        apr_file_close(file);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_rename(tmp, path, pool);
    }
    if (rv != APR_SUCCESS) {
        apr_file_remove(tmp, pool);
        return dkv_error_set(rv, "cannot write %s: %s", path,
                             errtext(rv, err, sizeof(err)));
    }
    return DKV_OK;
}

int
dkv_admin_key_mode_ok(const char *path, apr_pool_t *pool)
{
#if defined(_WIN32)
    /* Windows: the file has its directory's default ACL; APR's mode bits
     * say nothing about it. */
    (void)path;
    (void)pool;
    return 1;
#else
    apr_finfo_t fi;
    apr_status_t rv = apr_stat(&fi, path, APR_FINFO_PROT, pool);

    if ((rv != APR_SUCCESS && rv != APR_INCOMPLETE)
        || !(fi.valid & APR_FINFO_PROT)) {
        return 1;
    }
    return (fi.protection & (APR_FPROT_GREAD | APR_FPROT_GWRITE
                             | APR_FPROT_GEXECUTE | APR_FPROT_WREAD
                             | APR_FPROT_WWRITE | APR_FPROT_WEXECUTE)) == 0;
#endif
}

/* Reads the key file PATH (at most KEY_FILE_MAX bytes) into *TEXT, a
 * NUL-terminated sodium_malloc buffer the caller frees.  APR_ENOENT
 * (without a message) when it does not exist. */
static dkv_status_t
read_key_file(char **text, const char *path, apr_pool_t *pool)
{
    apr_file_t *file;
    apr_size_t n = KEY_FILE_MAX + 1;
    apr_status_t rv;
    char *buf;
    char err[120];

    rv = apr_file_open(&file, path, APR_FOPEN_READ | APR_FOPEN_BINARY,
                       APR_FPROT_OS_DEFAULT, pool);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return rv;
    }
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot open key file %s: %s", path,
                             errtext(rv, err, sizeof(err)));
    }
    buf = sodium_malloc(KEY_FILE_MAX + 2);
    if (buf == NULL) {
        apr_file_close(file);
        return dkv_error_set(APR_ENOMEM, "out of secure memory");
    }
    rv = apr_file_read_full(file, buf, n, &n);
    apr_file_close(file);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv)) {
        sodium_free(buf);
        return dkv_error_set(rv, "cannot read key file %s: %s", path,
                             errtext(rv, err, sizeof(err)));
    }
    if (n > KEY_FILE_MAX) {
        sodium_free(buf);
        return dkv_error_set(DKV_ECORRUPT, "key file %s is damaged (over "
                             "%d bytes)", path, KEY_FILE_MAX);
    }
    buf[n] = '\0';
    *text = buf;
    return DKV_OK;
}

/* Splits TEXT (modified in place) at spaces into at most MAX fields,
 * ignoring one trailing newline ("\n" or "\r\n"): the number of fields,
 * or MAX + 1 when there are more or the text is otherwise irregular
 * (tabs, doubled spaces, text after the newline). */
static size_t
split_fields(char **fields, size_t max, char *text)
{
    size_t n = 0;
    size_t len = strlen(text);
    char *p = text;

    if (len > 0 && text[len - 1] == '\n') {
        text[--len] = '\0';
        if (len > 0 && text[len - 1] == '\r') {
            text[--len] = '\0';
        }
    }
    while (*p != '\0') {
        char *start = p;

        while (*p != '\0' && *p != ' ') {
            if (*p == '\n' || *p == '\r' || *p == '\t') {
                return max + 1;
            }
            p++;
        }
        if (p == start || n == max) {
            return max + 1;
        }
        fields[n++] = start;
        if (*p == ' ') {
            *p++ = '\0';
            if (*p == '\0') {
                return max + 1;
            }
        }
    }
    return n;
}

/* Frees a sodium_malloc'd key struct (a pool cleanup). */
static apr_status_t
free_secret(void *data)
{
    sodium_free(data);
    return APR_SUCCESS;
}

static const char *
key_path(const char *dir, const char *name, apr_pool_t *pool)
{
    char *path = NULL;

    if (apr_filepath_merge(&path, dir, name, APR_FILEPATH_NATIVE, pool)
        != APR_SUCCESS) {
        return apr_pstrcat(pool, dir, "/", name, NULL);
    }
    return path;
}

static dkv_status_t
make_dir(const char *dir, apr_pool_t *pool)
{
    apr_status_t rv;
    char err[120];

    rv = apr_dir_make_recursive(dir, APR_FPROT_UREAD | APR_FPROT_UWRITE
                                | APR_FPROT_UEXECUTE, pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot make directory %s: %s", dir,
                             errtext(rv, err, sizeof(err)));
    }
    return DKV_OK;
}

/* Writes the NUL-terminated sodium_malloc'd text TEXT to PATH, then wipes
 * and frees it. */
static dkv_status_t
write_secret_text(const char *path, char *text, apr_pool_t *pool)
{
    dkv_status_t rv = dkv_write_private_file(path, text, strlen(text),
                                             pool);

    sodium_free(text);
    return rv;
}

/* Appends " " and the base64 of LEN bytes of DATA to the text in BUF
 * (CAP bytes, sodium_malloc'd). */
static void
append_b64(char *buf, size_t cap, const unsigned char *data, size_t len)
{
    size_t used = strlen(buf);

    buf[used++] = ' ';
    sodium_bin2base64(buf + used, cap - used, data, len, B64);
}

/* Appends a newline to the text in BUF (CAP bytes). */
static void
append_nl(char *buf, size_t cap)
{
    size_t used = strlen(buf);

    if (used + 1 < cap) {
        buf[used] = '\n';
        buf[used + 1] = '\0';
    }
}

/* ============================================================ admin key */

/* Parses the text of an admin key file into KEY. */
static int
parse_admin_key(dkv_admin_key_t *key, char *text)
{
    char *fields[3];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char seed_pk[crypto_sign_PUBLICKEYBYTES];
    int ok;

    if (split_fields(fields, 2, text) != 2
        || strcmp(fields[0], ADMIN_KEY_TAG) != 0
        || !unb64_exact(key->sk, sizeof(key->sk), fields[1],
                        strlen(fields[1]))) {
        return 0;
    }
    /* The public half stored in the secret key must be the seed's. */
    crypto_sign_ed25519_sk_to_pk(pk, key->sk);
    {
        unsigned char *sk2 = sodium_malloc(crypto_sign_SECRETKEYBYTES);

        if (sk2 == NULL) {
            return 0;
        }
        crypto_sign_seed_keypair(seed_pk, sk2, key->sk);
        ok = sodium_memcmp(seed_pk, pk, sizeof(pk)) == 0
            && sodium_memcmp(sk2, key->sk, crypto_sign_SECRETKEYBYTES)
               == 0;
        sodium_free(sk2);
    }
    memcpy(key->pk, pk, sizeof(pk));
    return ok;
}

/* Makes a new key pair and its key file's text into *TEXT (sodium_malloc'd
 * and NUL-terminated; the caller frees it). */
typedef dkv_status_t (key_maker_fn)(char **text);

/* A new admin key: "dkv-admin-key-v1 <base64 secret key>\n". */
static dkv_status_t
make_admin_text(char **text)
{
    size_t cap = sizeof(ADMIN_KEY_TAG) + 2
        + sodium_base64_encoded_len(crypto_sign_SECRETKEYBYTES, B64);
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char *sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    char *out = sodium_malloc(cap);

    if (sk == NULL || out == NULL) {
        sodium_free(sk);
        sodium_free(out);
        return dkv_error_set(APR_ENOMEM, "out of secure memory");
    }
    crypto_sign_keypair(pk, sk);
    memcpy(out, ADMIN_KEY_TAG, sizeof(ADMIN_KEY_TAG));
    append_b64(out, cap, sk, crypto_sign_SECRETKEYBYTES);
    append_nl(out, cap);
    sodium_free(sk);
    *text = out;
    return DKV_OK;
}

/* New manager keys: the tag, then the signing secret key, the sealing
 * secret key and the sealing public key in base64. */
static dkv_status_t
make_manager_text(char **text)
{
    size_t cap = sizeof(MANAGER_KEY_TAG) + 4
        + sodium_base64_encoded_len(crypto_sign_SECRETKEYBYTES, B64)
        + 2 * sodium_base64_encoded_len(crypto_box_SECRETKEYBYTES, B64);
    dkv_manager_keys_t *fresh = sodium_malloc(sizeof(*fresh));
    char *out = sodium_malloc(cap);

    if (fresh == NULL || out == NULL) {
        sodium_free(fresh);
        sodium_free(out);
        return dkv_error_set(APR_ENOMEM, "out of secure memory");
    }
    crypto_sign_keypair(fresh->sign_pk, fresh->sign_sk);
    crypto_box_keypair(fresh->box_pk, fresh->box_sk);
    memcpy(out, MANAGER_KEY_TAG, sizeof(MANAGER_KEY_TAG));
    append_b64(out, cap, fresh->sign_sk, sizeof(fresh->sign_sk));
    append_b64(out, cap, fresh->box_sk, sizeof(fresh->box_sk));
    append_b64(out, cap, fresh->box_pk, sizeof(fresh->box_pk));
    append_nl(out, cap);
    sodium_free(fresh);
    *text = out;
    return DKV_OK;
}

/* Reads key file PATH (in DIR) into *TEXT (sodium_malloc'd), making it
 * first with MAKE when it does not exist (*MADE 1 then). */
static dkv_status_t
key_file_text(char **text, int *made, const char *dir, const char *path,
              key_maker_fn *make, apr_pool_t *pool)
{
    dkv_status_t rv = read_key_file(text, path, pool);
    char *out;

    *made = 0;
    if (APR_STATUS_IS_ENOENT(rv)) {
        if ((rv = make_dir(dir, pool)) != DKV_OK
            || (rv = make(&out)) != DKV_OK
            || (rv = write_secret_text(path, out, pool)) != DKV_OK) {
            return rv;
        }
        *made = 1;
        /* Read back what is there now (another process may have made
         * the file at the same time: then both use the surviving key). */
        rv = read_key_file(text, path, pool);
        if (APR_STATUS_IS_ENOENT(rv)) {
            return dkv_error_set(rv, "key file %s vanished", path);
        }
    }
    return rv;
}

dkv_status_t
dkv_admin_key_load(dkv_admin_key_t **key, int *created, const char *dir,
                   apr_pool_t *pool)
{
    const char *path;
    dkv_admin_key_t *k;
    char *text = NULL;
    dkv_status_t rv;
    int made = 0;

    if (created != NULL) {
        *created = 0;
    }
    if (key == NULL || dir == NULL || *dir == '\0') {
        return dkv_error_set(DKV_EINVAL, "no directory for the admin key");
    }
    if ((rv = dkv_adminauth_init()) != DKV_OK) {
        return rv;
    }
    path = key_path(dir, ADMIN_KEY_FILE, pool);
    if ((rv = key_file_text(&text, &made, dir, path, make_admin_text,
                            pool)) != DKV_OK) {
        return rv;
    }
    k = sodium_malloc(sizeof(*k));
    if (k == NULL) {
        sodium_free(text);
        return dkv_error_set(APR_ENOMEM, "out of secure memory");
    }
    if (!parse_admin_key(k, text)) {
        sodium_free(text);
        sodium_free(k);
        return dkv_error_set(DKV_ECORRUPT, "admin key file %s is damaged "
                             "(expected one line \"%s <base64 of 64 "
                             "bytes>\")", path, ADMIN_KEY_TAG);
    }
    sodium_free(text);
    sodium_mprotect_readonly(k);
    apr_pool_cleanup_register(pool, k, free_secret, apr_pool_cleanup_null);
    *key = k;
    if (created != NULL) {
        *created = made;
    }
    return DKV_OK;
}

const char *
dkv_admin_key_id(const dkv_admin_key_t *key, apr_pool_t *pool)
{
    return dkv_b64(key->pk, sizeof(key->pk), pool);
}

const char *
dkv_admin_key_line(const dkv_admin_key_t *key, const char *comment,
                   apr_pool_t *pool)
{
    if (comment == NULL || *comment == '\0') {
        return apr_pstrcat(pool, "ed25519 ", dkv_admin_key_id(key, pool),
                           "\n", NULL);
    }
    return apr_pstrcat(pool, "ed25519 ", dkv_admin_key_id(key, pool), " ",
                       comment, "\n", NULL);
}

/* ============================================================== signing */

typedef struct query_arg {
    const char *key;
    const char *value;
} query_arg_t;

static int
query_arg_cmp(const void *a, const void *b)
{
    const query_arg_t *x = a;
    const query_arg_t *y = b;
    int c = strcmp(x->key, y->key);

    return c != 0 ? c : strcmp(x->value, y->value);
}

const char *
dkv_admin_query_canon(size_t nargs, const char *const *keys,
                      const char *const *values, apr_pool_t *pool)
{
    query_arg_t *args;
    size_t total = 1;
    size_t i;
    char *out;
    char *p;

    if (nargs == 0) {
        return "";
    }
    args = apr_palloc(pool, nargs * sizeof(*args));
    for (i = 0; i < nargs; i++) {
        args[i].key = keys[i] != NULL ? keys[i] : "";
        args[i].value = values != NULL && values[i] != NULL ? values[i]
                                                            : "";
        total += strlen(args[i].key) + strlen(args[i].value) + 2;
    }
    qsort(args, nargs, sizeof(*args), query_arg_cmp);
    out = apr_palloc(pool, total);
    p = out;
    for (i = 0; i < nargs; i++) {
        size_t kl = strlen(args[i].key);
        size_t vl = strlen(args[i].value);

        if (i > 0) {
            *p++ = '&';
        }
        memcpy(p, args[i].key, kl);
        p += kl;
        *p++ = '=';
        memcpy(p, args[i].value, vl);
        p += vl;
    }
    *p = '\0';
    return out;
}

const char *
dkv_admin_signing_string(const char *method, const char *path,
                         const char *query, const char *manager_id,
                         int64_t timestamp_ms, const char *nonce,
                         const void *body, size_t body_len,
                         apr_pool_t *pool)
{
    unsigned char digest[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(digest, body != NULL ? body : (const void *)"",
                       body != NULL ? body_len : 0);
    return apr_psprintf(pool, "%s\n%s\n%s\n%s\n%s\n%" APR_INT64_T_FMT
                        "\n%s\n%s", SIGNING_TAG, method != NULL ? method
                        : "", path != NULL ? path : "",
                        query != NULL ? query : "",
                        manager_id != NULL ? manager_id : "",
                        (apr_int64_t)timestamp_ms,
                        nonce != NULL ? nonce : "",
                        hex(digest, sizeof(digest), pool));
}

dkv_status_t
dkv_admin_sign(dkv_admin_sig_headers_t *out, const dkv_admin_key_t *key,
               const char *method, const char *path, const char *query,
               const char *manager_id, int64_t now_ms, const void *body,
               size_t body_len, apr_pool_t *pool)
{
    unsigned char rnd[NONCE_BYTES];
    unsigned char sig[crypto_sign_BYTES];
    const char *nonce;
    const char *text;

    if (out == NULL || key == NULL || method == NULL || path == NULL
        || manager_id == NULL) {
        return dkv_error_set(DKV_EINVAL, "cannot sign: missing argument");
    }
    randombytes_buf(rnd, sizeof(rnd));
    nonce = hex(rnd, sizeof(rnd), pool);
    text = dkv_admin_signing_string(method, path, query, manager_id, now_ms,
                                    nonce, body, body_len, pool);
    crypto_sign_detached(sig, NULL, (const unsigned char *)text,
                         strlen(text), key->sk);
    out->key = dkv_admin_key_id(key, pool);
    out->timestamp = apr_psprintf(pool, "%" APR_INT64_T_FMT,
                                  (apr_int64_t)now_ms);
    out->nonce = nonce;
    out->signature = dkv_b64(sig, sizeof(sig), pool);
    return DKV_OK;
}

/* ========================================================= verification */

static apr_status_t
verifier_cleanup(void *data)
{
    dkv_admin_verifier_t *v = data;
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, v->nonces); hi != NULL;
         hi = apr_hash_next(hi)) {
        dkv_free(apr_hash_this_val(hi));
    }
    /* The table itself goes with the pool (no apr_hash_clear: it would
     * read the freed keys). */
    return APR_SUCCESS;
}

dkv_status_t
dkv_admin_verifier_create(dkv_admin_verifier_t **v, const char *manager_id,
                          const char *path, apr_pool_t *pool)
{
    dkv_admin_verifier_t *ver;
    apr_status_t rv;
    char err[120];

    if (v == NULL || manager_id == NULL || path == NULL) {
        return dkv_error_set(DKV_EINVAL, "verifier: missing argument");
    }
    if ((rv = dkv_adminauth_init()) != DKV_OK) {
        return rv;
    }
    ver = apr_pcalloc(pool, sizeof(*ver));
    if (!unb64_exact(ver->manager_pk, sizeof(ver->manager_pk), manager_id,
                     strlen(manager_id))) {
        return dkv_error_set(DKV_EINVAL, "malformed manager key id %s",
                             manager_id);
    }
    rv = apr_thread_mutex_create(&ver->mutex, APR_THREAD_MUTEX_DEFAULT,
                                 pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot make a mutex: %s",
                             errtext(rv, err, sizeof(err)));
    }
    rv = apr_pool_create(&ver->keys_pool, pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot make a pool");
    }
    ver->pool = pool;
    ver->path = apr_pstrdup(pool, path);
    ver->manager_id = apr_pstrdup(pool, manager_id);
    ver->keys = apr_hash_make(ver->keys_pool);
    ver->nonces = apr_hash_make(pool);
    apr_pool_cleanup_register(pool, ver, verifier_cleanup,
                              apr_pool_cleanup_null);
    *v = ver;
    return DKV_OK;
}

/* Parses the authorized-keys TEXT (LEN bytes, modified) into V->keys. */
static void
parse_authorized(dkv_admin_verifier_t *v, char *text, apr_size_t len,
                 int quiet)
{
    char *p = text;
    char *end = text + len;
    unsigned lineno = 0;

    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line = p;
        char *q;
        char *kstart;
        size_t klen;
        unsigned char *pk;

        if (nl == NULL) {
            nl = end;
        }
        *nl = '\0';
        p = nl + 1;
        lineno++;
        if (nl > line && nl[-1] == '\r') {
            nl[-1] = '\0';
        }
        while (*line == ' ' || *line == '\t') {
            line++;
        }
        if (*line == '\0' || *line == '#') {
            continue;
        }
        q = line;
        while (*q != '\0' && *q != ' ' && *q != '\t') {
            q++;
        }
        kstart = q;
        while (*kstart == ' ' || *kstart == '\t') {
            kstart++;
        }
        klen = 0;
        while (kstart[klen] != '\0' && kstart[klen] != ' '
               && kstart[klen] != '\t') {
            klen++;
        }
        pk = apr_palloc(v->keys_pool, DKV_ADMIN_PK_BYTES);
        if ((size_t)(q - line) != 7 || strncmp(line, "ed25519", 7) != 0
            || !unb64_exact(pk, DKV_ADMIN_PK_BYTES, kstart, klen)) {
            if (!quiet) {
                dkv_log(DKV_LOG_WARN, "authorized-keys file %s line %u is "
                        "not \"ed25519 <base64 key> [comment]\": skipped",
                        v->path, lineno);
            }
            continue;
        }
        apr_hash_set(v->keys, pk, DKV_ADMIN_PK_BYTES, pk);
    }
}

/* Re-reads the authorized-keys file when it changed.  Under the mutex. */
static void
refresh_keys(dkv_admin_verifier_t *v)
{
    apr_finfo_t fi;
    apr_file_t *file;
    apr_status_t rv;
    apr_size_t n;
    char *text;
    int same;
    char err[120];

    rv = apr_stat(&fi, v->path, APR_FINFO_MTIME | APR_FINFO_SIZE
                  | APR_FINFO_INODE | APR_FINFO_CTIME, v->keys_pool);
    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
        if (!v->loaded || v->present) {
            dkv_log(DKV_LOG_WARN, "authorized-keys file %s: %s: no admin "
                    "key is accepted", v->path,
                    errtext(rv, err, sizeof(err)));
            apr_pool_clear(v->keys_pool);
            v->keys = apr_hash_make(v->keys_pool);
        }
        v->loaded = 1;
        v->present = 0;
        return;
    }
    if (!(fi.valid & APR_FINFO_INODE)) {
        fi.inode = 0;
    }
    if (!(fi.valid & APR_FINFO_CTIME)) {
        fi.ctime = 0;
    }
    same = v->loaded && v->present && fi.mtime == v->mtime
           && fi.size == v->size && fi.inode == v->inode
           && fi.ctime == v->ctime;
    if (same && !v->racy) {
        return;
    }
    apr_pool_clear(v->keys_pool);
    v->keys = apr_hash_make(v->keys_pool);
    v->loaded = 1;
    v->present = 1;
    v->mtime = fi.mtime;
    v->size = fi.size;
    v->inode = fi.inode;
    v->ctime = fi.ctime;
    /* File times are coarse (a clock tick, or a second): an edit of the
     * same size in the same tick as the last one would go unseen, so a
     * file changed in the last RACY_USEC is read again next time. */
    v->racy = apr_time_now() - fi.mtime < RACY_USEC
              || apr_time_now() - fi.ctime < RACY_USEC;
    if (fi.size > AUTH_FILE_MAX) {
        dkv_log(DKV_LOG_WARN, "authorized-keys file %s is over %d bytes: "
                "no admin key is accepted", v->path, AUTH_FILE_MAX);
        return;
    }
    rv = apr_file_open(&file, v->path, APR_FOPEN_READ | APR_FOPEN_BINARY,
                       APR_FPROT_OS_DEFAULT, v->keys_pool);
    if (rv != APR_SUCCESS) {
        dkv_log(DKV_LOG_WARN, "cannot open authorized-keys file %s: %s",
                v->path, errtext(rv, err, sizeof(err)));
        return;
    }
    n = (apr_size_t)fi.size;
    text = apr_palloc(v->keys_pool, n + 1);
    rv = apr_file_read_full(file, text, n, &n);
    apr_file_close(file);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv)) {
        dkv_log(DKV_LOG_WARN, "cannot read authorized-keys file %s: %s",
                v->path, errtext(rv, err, sizeof(err)));
        return;
    }
    text[n] = '\0';
    parse_authorized(v, text, n, same);
}

/* Drops nonces seen more than two windows before NOW_MS.  Under the
 * mutex. */
static void
prune_nonces(dkv_admin_verifier_t *v, int64_t now_ms)
{
    apr_hash_index_t *hi;

    for (hi = apr_hash_first(NULL, v->nonces); hi != NULL;
         hi = apr_hash_next(hi)) {
        nonce_entry_t *e = apr_hash_this_val(hi);

        if (now_ms - e->seen_ms > 2 * (int64_t)DKV_ADMIN_WINDOW_MS
            || e->seen_ms - now_ms > 2 * (int64_t)DKV_ADMIN_WINDOW_MS) {
            apr_hash_set(v->nonces, e->bytes, NONCE_BYTES, NULL);
            dkv_free(e);
        }
    }
    v->last_prune_ms = now_ms;
}

/* Parses 32 lower-case hex digits into NONCE_BYTES bytes. */
static int
parse_nonce(unsigned char *out, const char *text)
{
    size_t i;

    if (strlen(text) != DKV_ADMIN_NONCE_HEX) {
        return 0;
    }
    for (i = 0; i < DKV_ADMIN_NONCE_HEX; i++) {
        char c = text[i];
        int d;

        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else {
            return 0;
        }
        if (i % 2 == 0) {
            out[i / 2] = (unsigned char)(d << 4);
        } else {
            out[i / 2] = (unsigned char)(out[i / 2] | d);
        }
    }
    return 1;
}

/* Parses 1 to 18 decimal digits. */
static int
parse_timestamp(int64_t *out, const char *text)
{
    int64_t v = 0;
    size_t i;

    if (*text == '\0' || strlen(text) > 18) {
        return 0;
    }
    for (i = 0; text[i] != '\0'; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return 0;
        }
        v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return 1;
}

dkv_status_t
dkv_admin_verify(dkv_admin_verifier_t *v, const dkv_admin_sig_headers_t *in,
                 const char *method, const char *path, const char *query,
                 int64_t now_ms, const void *body, size_t body_len)
{
    unsigned char pk[DKV_ADMIN_PK_BYTES];
    unsigned char sig[DKV_ADMIN_SIG_BYTES];
    unsigned char nonce[NONCE_BYTES];
    unsigned char digest[crypto_hash_sha256_BYTES];
    char digest_hex[crypto_hash_sha256_BYTES * 2 + 1];
    char ts_text[24];
    int64_t ts;
    int64_t skew;
    int known;
    nonce_entry_t *e;

    if (v == NULL || in == NULL || method == NULL || path == NULL) {
        return dkv_error_set(DKV_EINVAL, "verify: missing argument");
    }
    if (in->key == NULL) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "missing "
                             DKV_ADMIN_HDR_KEY);
    }
    if (in->timestamp == NULL) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "missing "
                             DKV_ADMIN_HDR_TIME);
    }
    if (in->nonce == NULL) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "missing "
                             DKV_ADMIN_HDR_NONCE);
    }
    if (in->signature == NULL) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "missing "
                             DKV_ADMIN_HDR_SIG);
    }
    if (!unb64_exact(pk, sizeof(pk), in->key, strlen(in->key))) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "malformed "
                             DKV_ADMIN_HDR_KEY);
    }
    if (!unb64_exact(sig, sizeof(sig), in->signature,
                     strlen(in->signature))) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "malformed "
                             DKV_ADMIN_HDR_SIG);
    }
    if (!parse_timestamp(&ts, in->timestamp)) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "malformed "
                             DKV_ADMIN_HDR_TIME);
    }
    if (!parse_nonce(nonce, in->nonce)) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "malformed "
                             DKV_ADMIN_HDR_NONCE " (not 32 lower-case hex "
                             "digits)");
    }

    apr_thread_mutex_lock(v->mutex);
    refresh_keys(v);
    known = apr_hash_get(v->keys, pk, sizeof(pk)) != NULL;
    apr_thread_mutex_unlock(v->mutex);
    if (!known) {
        /* The id is re-encoded from the bytes: never more than 44
         * characters of whatever the client sent. */
        char id[sodium_base64_ENCODED_LEN(DKV_ADMIN_PK_BYTES, B64)];

        sodium_bin2base64(id, sizeof(id), pk, sizeof(pk), B64);
        return dkv_error_set(DKV_EUNAUTHORIZED, "unknown key %s", id);
    }

    skew = now_ms - ts;
    if (skew > (int64_t)DKV_ADMIN_WINDOW_MS) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "timestamp %lld s old (the "
                             "limit is %d s)", (long long)(skew / 1000),
                             DKV_ADMIN_WINDOW_MS / 1000);
    }
    if (-skew > (int64_t)DKV_ADMIN_WINDOW_MS) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "timestamp %lld s in the "
                             "future (the limit is %d s)",
                             (long long)(-skew / 1000),
                             DKV_ADMIN_WINDOW_MS / 1000);
    }

    /* The signing string (dkv_admin_signing_string's text), built on
     * the heap: the verifier has no pool of its own per request. */
    crypto_hash_sha256(digest, body != NULL ? body : (const void *)"",
                       body != NULL ? body_len : 0);
    sodium_bin2hex(digest_hex, sizeof(digest_hex), digest, sizeof(digest));
    apr_snprintf(ts_text, sizeof(ts_text), "%" APR_INT64_T_FMT,
                 (apr_int64_t)ts);
    {
        const char *parts[8];
        size_t lens[8];
        size_t total = 0;
        size_t i;
        unsigned char *text;
        unsigned char *p;
        int bad;

        parts[0] = SIGNING_TAG;
        parts[1] = method;
        parts[2] = path;
        parts[3] = query != NULL ? query : "";
        parts[4] = v->manager_id;
        parts[5] = ts_text;
        parts[6] = in->nonce;
        parts[7] = digest_hex;
        for (i = 0; i < 8; i++) {
            lens[i] = strlen(parts[i]);
            total += lens[i] + 1;
        }
        text = dkv_malloc(total);
        if (text == NULL) {
            return dkv_error_set(APR_ENOMEM, "out of memory");
        }
        p = text;
        for (i = 0; i < 8; i++) {
            if (i > 0) {
                *p++ = '\n';
            }
            memcpy(p, parts[i], lens[i]);
            p += lens[i];
        }
        bad = crypto_sign_verify_detached(sig, text, (size_t)(p - text),
                                          pk) != 0;
        dkv_free(text);
        if (bad) {
            return dkv_error_set(DKV_EUNAUTHORIZED, "bad signature");
        }
    }

    apr_thread_mutex_lock(v->mutex);
    if (apr_hash_get(v->nonces, nonce, sizeof(nonce)) != NULL) {
        apr_thread_mutex_unlock(v->mutex);
        return dkv_error_set(DKV_EUNAUTHORIZED, "replayed nonce");
    }
    if (apr_hash_count(v->nonces) >= NONCE_MAX
        || now_ms - v->last_prune_ms > DKV_ADMIN_WINDOW_MS / 2
        || now_ms < v->last_prune_ms) {
        prune_nonces(v, now_ms);
    }
    if (apr_hash_count(v->nonces) >= NONCE_MAX) {
        apr_thread_mutex_unlock(v->mutex);
        return dkv_error_set(DKV_EUNAVAILABLE, "too many requests: %d "
                             "signed requests within %d s", NONCE_MAX,
                             2 * DKV_ADMIN_WINDOW_MS / 1000);
    }
    e = dkv_malloc(sizeof(*e));
    if (e == NULL) {
        apr_thread_mutex_unlock(v->mutex);
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    memcpy(e->bytes, nonce, sizeof(nonce));
    e->seen_ms = now_ms;
    apr_hash_set(v->nonces, e->bytes, NONCE_BYTES, e);
    apr_thread_mutex_unlock(v->mutex);
    return DKV_OK;
}

/* ========================================================= manager keys */

/* Parses the text of a manager key file into KEYS. */
static int
parse_manager_keys(dkv_manager_keys_t *keys, char *text)
{
    char *fields[5];
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    unsigned char box_pk[crypto_box_PUBLICKEYBYTES];
    unsigned char *sk2;
    int ok;

    if (split_fields(fields, 4, text) != 4
        || strcmp(fields[0], MANAGER_KEY_TAG) != 0
        || !unb64_exact(keys->sign_sk, sizeof(keys->sign_sk), fields[1],
                        strlen(fields[1]))
        || !unb64_exact(keys->box_sk, sizeof(keys->box_sk), fields[2],
                        strlen(fields[2]))
        || !unb64_exact(keys->box_pk, sizeof(keys->box_pk), fields[3],
                        strlen(fields[3]))) {
        return 0;
    }
    sk2 = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    if (sk2 == NULL) {
        return 0;
    }
    crypto_sign_ed25519_sk_to_pk(keys->sign_pk, keys->sign_sk);
    crypto_sign_seed_keypair(pk, sk2, keys->sign_sk);
    ok = sodium_memcmp(pk, keys->sign_pk, sizeof(pk)) == 0
        && sodium_memcmp(sk2, keys->sign_sk, crypto_sign_SECRETKEYBYTES)
           == 0
        && crypto_scalarmult_base(box_pk, keys->box_sk) == 0
        && sodium_memcmp(box_pk, keys->box_pk, sizeof(box_pk)) == 0;
    sodium_free(sk2);
    return ok;
}

dkv_status_t
dkv_manager_keys_load(dkv_manager_keys_t **keys, int *created,
                      const char *dir, apr_pool_t *pool)
{
    const char *path;
    dkv_manager_keys_t *k;
    char *text = NULL;
    dkv_status_t rv;
    int made = 0;

    if (created != NULL) {
        *created = 0;
    }
    if (keys == NULL || dir == NULL || *dir == '\0') {
        return dkv_error_set(DKV_EINVAL, "no directory for the manager "
                             "keys");
    }
    if ((rv = dkv_adminauth_init()) != DKV_OK) {
        return rv;
    }
    path = key_path(dir, MANAGER_KEY_FILE, pool);
    if ((rv = key_file_text(&text, &made, dir, path, make_manager_text,
                            pool)) != DKV_OK) {
        return rv;
    }
    k = sodium_malloc(sizeof(*k));
    if (k == NULL) {
        sodium_free(text);
        return dkv_error_set(APR_ENOMEM, "out of secure memory");
    }
    if (!parse_manager_keys(k, text)) {
        sodium_free(text);
        sodium_free(k);
        return dkv_error_set(DKV_ECORRUPT, "manager key file %s is damaged "
                             "(expected one line \"%s <signing key> <box "
                             "secret key> <box public key>\")", path,
                             MANAGER_KEY_TAG);
    }
    sodium_free(text);
    sodium_mprotect_readonly(k);
    apr_pool_cleanup_register(pool, k, free_secret, apr_pool_cleanup_null);
    *keys = k;
    if (created != NULL) {
        *created = made;
    }
    return DKV_OK;
}

const char *
dkv_manager_sign_id(const dkv_manager_keys_t *keys, apr_pool_t *pool)
{
    return dkv_b64(keys->sign_pk, sizeof(keys->sign_pk), pool);
}

const char *
dkv_manager_box_id(const dkv_manager_keys_t *keys, apr_pool_t *pool)
{
    return dkv_b64(keys->box_pk, sizeof(keys->box_pk), pool);
}

/* ============================================================== sealing */

dkv_status_t
dkv_seal(const char **sealed, const char *box_id, const void *data,
         size_t len, apr_pool_t *pool)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    unsigned char *out;
    dkv_status_t rv;

    if (sealed == NULL || (data == NULL && len > 0)) {
        return dkv_error_set(DKV_EINVAL, "seal: missing argument");
    }
    if ((rv = dkv_adminauth_init()) != DKV_OK) {
        return rv;
    }
    if (box_id == NULL
        || !unb64_exact(pk, sizeof(pk), box_id, strlen(box_id))) {
        return dkv_error_set(DKV_EINVAL, "malformed sealing key (boxKey) "
                             "%s", box_id != NULL ? box_id : "(none)");
    }
    out = dkv_malloc(len + crypto_box_SEALBYTES);
    if (out == NULL) {
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    if (crypto_box_seal(out, data != NULL ? data : (const void *)"", len,
                        pk) != 0) {
        dkv_free(out);
        return dkv_error_set(DKV_EINVAL, "cannot seal to key %s", box_id);
    }
    *sealed = dkv_b64(out, len + crypto_box_SEALBYTES, pool);
    dkv_free(out);
    return DKV_OK;
}

dkv_status_t
dkv_unseal(unsigned char **data, size_t *len,
           const dkv_manager_keys_t *keys, const char *sealed)
{
    unsigned char *raw;
    unsigned char *out;
    size_t cap;
    size_t n = 0;
    const char *end = NULL;
    size_t slen;

    if (data == NULL || len == NULL || keys == NULL || sealed == NULL) {
        return dkv_error_set(DKV_EINVAL, "unseal: missing argument");
    }
    slen = strlen(sealed);
    cap = slen / 4 * 3 + 3;
    raw = dkv_malloc(cap);
    if (raw == NULL) {
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    if (slen == 0
        || sodium_base642bin(raw, cap, sealed, slen, NULL, &n, &end,
                             B64) != 0
        || end != sealed + slen || n < crypto_box_SEALBYTES) {
        dkv_free(raw);
        return dkv_error_set(DKV_EINVAL, "malformed sealed value (not the "
                             "base64 of a sealed box)");
    }
    /* At least one byte, so an empty secret still has an address. */
    out = sodium_malloc(n - crypto_box_SEALBYTES + 1);
    if (out == NULL) {
        dkv_free(raw);
        return dkv_error_set(APR_ENOMEM, "out of secure memory");
    }
    if (crypto_box_seal_open(out, raw, n, keys->box_pk, keys->box_sk)
        != 0) {
        dkv_free(raw);
        sodium_free(out);
        return dkv_error_set(DKV_EINVAL, "sealed value was not sealed to "
                             "this manager's key, or is damaged");
    }
    dkv_free(raw);
    *data = out;
    *len = n - crypto_box_SEALBYTES;
    return DKV_OK;
}

/* ===================================================== node admin token */

void
dkv_admin_node_token(char out[65],
                     const unsigned char secret[DKV_STORE_SECRET_BYTES])
{
    unsigned char mac[32];

    crypto_generichash(mac, sizeof(mac),
                       (const unsigned char *)NODE_TOKEN_CONTEXT,
                       sizeof(NODE_TOKEN_CONTEXT) - 1, secret,
                       DKV_STORE_SECRET_BYTES);
    sodium_bin2hex(out, 65, mac, sizeof(mac));
    sodium_memzero(mac, sizeof(mac));
}
