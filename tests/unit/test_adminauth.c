/*
 * test_adminauth.c -- suite `adminauth`: the management port's key files,
 * request signatures and their verification (every refusal), the
 * authorized-keys file and its reloading, sealing, and the node admin
 * token (src/common/adminauth.h, docs/admin-api.md "Authentication").
 */
#include <string.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include <sodium.h>

#include "testutil.h"
#include "common/adminauth.h"

#define NOW_MS ((int64_t)1795707131000)
#define WINDOW ((int64_t)DKV_ADMIN_WINDOW_MS)

/* ------------------------------------------------------------- helpers */

/* Writes TEXT to PATH in place (truncating, not replacing the file). */
static void
write_text(const char *path, const char *text, apr_pool_t *pool)
{
    apr_file_t *f;

    DKV_ASSERT_OK(apr_file_open(&f, path, APR_FOPEN_WRITE
                                | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE
                                | APR_FOPEN_BINARY, APR_FPROT_OS_DEFAULT,
                                pool));
    DKV_ASSERT_OK(apr_file_write_full(f, text, strlen(text), NULL));
    DKV_ASSERT_OK(apr_file_close(f));
}

/* Reads PATH (at most 4 KiB) as a string in POOL. */
static char *
read_text(const char *path, apr_pool_t *pool)
{
    apr_file_t *f;
    apr_size_t n = 4096;
    char *buf = apr_pcalloc(pool, n + 1);
    apr_status_t rv;

    DKV_ASSERT_OK(apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY,
                                APR_FPROT_OS_DEFAULT, pool));
    rv = apr_file_read_full(f, buf, n, &n);
    DKV_ASSERT_TRUE(rv == APR_SUCCESS || APR_STATUS_IS_EOF(rv));
    apr_file_close(f);
    buf[n] = '\0';
    return buf;
}

static int
contains(const char *haystack, const char *needle)
{
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

/* An admin, a manager and a verifier trusting the admin. */
typedef struct fixture {
    apr_pool_t *pool;
    const char *dir;
    dkv_admin_key_t *admin;
    dkv_manager_keys_t *mgr;
    const char *mgr_id;
    const char *auth_path;
    dkv_admin_verifier_t *v;
} fixture_t;

static void
fixture_make(fixture_t *fx, apr_pool_t *pool)
{
    memset(fx, 0, sizeof(*fx));
    fx->pool = pool;
    fx->dir = dkv_test_tempdir(pool);
    DKV_ASSERT_OK(dkv_admin_key_load(&fx->admin, NULL,
                                     apr_pstrcat(pool, fx->dir, "/admin",
                                                 NULL), pool));
    DKV_ASSERT_OK(dkv_manager_keys_load(&fx->mgr, NULL,
                                        apr_pstrcat(pool, fx->dir, "/mgr",
                                                    NULL), pool));
    fx->mgr_id = dkv_manager_sign_id(fx->mgr, pool);
    fx->auth_path = apr_pstrcat(pool, fx->dir, "/authorized_keys", NULL);
    write_text(fx->auth_path, dkv_admin_key_line(fx->admin, "alice@host",
                                                 pool), pool);
    DKV_ASSERT_OK(dkv_admin_verifier_create(&fx->v, fx->mgr_id,
                                            fx->auth_path, pool));
}

/* Signs the reference request of docs/admin-api.md at TS. */
static void
sign_ref(dkv_admin_sig_headers_t *h, const fixture_t *fx, int64_t ts)
{
    DKV_ASSERT_OK(dkv_admin_sign(h, fx->admin, "POST",
                                 "/admin/v1/stores/S/instances/n1/stop",
                                 "force=true", fx->mgr_id, ts, "{}", 2,
                                 fx->pool));
}

/* Verifies H against the reference request at NOW. */
static dkv_status_t
verify_ref(const fixture_t *fx, const dkv_admin_sig_headers_t *h,
           int64_t now)
{
    return dkv_admin_verify(fx->v, h, "POST",
                            "/admin/v1/stores/S/instances/n1/stop",
                            "force=true", now, "{}", 2);
}

/* Expects verification of H to fail with a message containing WHAT. */
#define EXPECT_REFUSED(fx, h, now, what) \
    do { \
        DKV_EXPECT_STATUS(verify_ref((fx), (h), (now)), \
                          DKV_EUNAUTHORIZED); \
        DKV_EXPECT_TRUE(contains(dkv_last_error(), (what))); \
    } while (0)

/* --------------------------------------------------------------- keys */

static void
admin_key_made_and_reloaded(void)
{
    apr_pool_t *pool = dkv_test_pool();
    apr_pool_t *p2;
    const char *dir = apr_pstrcat(pool, dkv_test_tempdir(pool), "/a/b",
                                  NULL);
    const char *path = apr_pstrcat(pool, dir, "/admin.key", NULL);
    dkv_admin_key_t *k1;
    dkv_admin_key_t *k2;
    int created = -1;
    const char *id;
    const char *text;
    apr_finfo_t fi;
    unsigned char pk[64];
    size_t n = 0;

    DKV_ASSERT_OK(dkv_admin_key_load(&k1, &created, dir, pool));
    DKV_EXPECT_INT_EQ(created, 1);
    id = dkv_admin_key_id(k1, pool);
    DKV_EXPECT_UINT_EQ(strlen(id), 44);
    DKV_ASSERT_OK(dkv_unb64(pk, sizeof(pk), &n, id));
    DKV_EXPECT_UINT_EQ(n, DKV_ADMIN_PK_BYTES);
    text = read_text(path, pool);
    DKV_EXPECT_TRUE(strncmp(text, "dkv-admin-key-v1 ", 17) == 0);
    DKV_EXPECT_UINT_EQ(strlen(text), 17 + 88 + 1);
    DKV_EXPECT_TRUE(text[strlen(text) - 1] == '\n');
    DKV_EXPECT_TRUE(dkv_admin_key_mode_ok(path, pool));
#if !defined(_WIN32)
    DKV_ASSERT_OK(apr_stat(&fi, path, APR_FINFO_PROT, pool));
    DKV_EXPECT_INT_EQ(fi.protection, APR_FPROT_UREAD | APR_FPROT_UWRITE);
    DKV_ASSERT_OK(apr_stat(&fi, dir, APR_FINFO_PROT, pool));
    DKV_EXPECT_INT_EQ(fi.protection, APR_FPROT_UREAD | APR_FPROT_UWRITE
                      | APR_FPROT_UEXECUTE);
#else
    (void)fi;
#endif
    DKV_EXPECT_STR_EQ(dkv_admin_key_line(k1, "bob", pool),
                      apr_pstrcat(pool, "ed25519 ", id, " bob\n", NULL));
    DKV_EXPECT_STR_EQ(dkv_admin_key_line(k1, NULL, pool),
                      apr_pstrcat(pool, "ed25519 ", id, "\n", NULL));

    /* Loaded again (another pool): the same key, file untouched. */
    DKV_ASSERT_OK(apr_pool_create(&p2, pool));
    created = -1;
    DKV_ASSERT_OK(dkv_admin_key_load(&k2, &created, dir, p2));
    DKV_EXPECT_INT_EQ(created, 0);
    DKV_EXPECT_STR_EQ(dkv_admin_key_id(k2, pool), id);
    DKV_EXPECT_STR_EQ(read_text(path, pool), text);
    apr_pool_destroy(p2);
    /* The first key still works after the second one was freed. */
    DKV_EXPECT_STR_EQ(dkv_admin_key_id(k1, pool), id);
    apr_pool_destroy(pool);
}

static void
manager_keys_made_and_reloaded(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *dir = dkv_test_tempdir(pool);
    const char *path = apr_pstrcat(pool, dir, "/manager.key", NULL);
    dkv_manager_keys_t *k1;
    dkv_manager_keys_t *k2;
    int created = -1;
    const char *text;
    char *fields;
    apr_finfo_t fi;

    DKV_ASSERT_OK(dkv_manager_keys_load(&k1, &created, dir, pool));
    DKV_EXPECT_INT_EQ(created, 1);
    text = read_text(path, pool);
    DKV_EXPECT_TRUE(strncmp(text, "dkv-manager-key-v1 ", 19) == 0);
    /* The last field is the box public key. */
    fields = apr_pstrdup(pool, text);
    fields[strlen(fields) - 1] = '\0';
    DKV_EXPECT_STR_EQ(strrchr(fields, ' ') + 1,
                      dkv_manager_box_id(k1, pool));
    DKV_EXPECT_TRUE(strcmp(dkv_manager_sign_id(k1, pool),
                           dkv_manager_box_id(k1, pool)) != 0);
#if !defined(_WIN32)
    DKV_ASSERT_OK(apr_stat(&fi, path, APR_FINFO_PROT, pool));
    DKV_EXPECT_INT_EQ(fi.protection, APR_FPROT_UREAD | APR_FPROT_UWRITE);
#else
    (void)fi;
#endif
    created = -1;
    DKV_ASSERT_OK(dkv_manager_keys_load(&k2, &created, dir, pool));
    DKV_EXPECT_INT_EQ(created, 0);
    DKV_EXPECT_STR_EQ(dkv_manager_sign_id(k2, pool),
                      dkv_manager_sign_id(k1, pool));
    DKV_EXPECT_STR_EQ(dkv_manager_box_id(k2, pool),
                      dkv_manager_box_id(k1, pool));
    DKV_EXPECT_STR_EQ(read_text(path, pool), text);
    apr_pool_destroy(pool);
}

/* Replaces character I of the base64 text after the first space in the
 * file at PATH (a valid base64 character for another). */
static void
flip_b64_char(const char *path, size_t i, apr_pool_t *pool)
{
    char *text = read_text(path, pool);
    char *b64 = strchr(text, ' ') + 1;

    b64[i] = b64[i] == 'A' ? 'B' : 'A';
    write_text(path, text, pool);
}

static void
damaged_key_files_refused(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *dir = dkv_test_tempdir(pool);
    const char *path = apr_pstrcat(pool, dir, "/admin.key", NULL);
    const char *mpath = apr_pstrcat(pool, dir, "/manager.key", NULL);
    dkv_admin_key_t *k;
    dkv_manager_keys_t *mk;
    static const char *const bad[] = {
        "",
        "garbage\n",
        "dkv-admin-key-v1\n",
        "dkv-admin-key-v1 not-base64!\n",
        "dkv-admin-key-v1 AAAA\n",
        "dkv-admin-key-v2 AAAA\n",
    };
    size_t i;
    char *good;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_text(path, bad[i], pool);
        DKV_EXPECT_STATUS(dkv_admin_key_load(&k, NULL, dir, pool),
                          DKV_ECORRUPT);
        /* The message names the file (in the platform's own spelling:
         * backslashes on Windows). */
        DKV_EXPECT_TRUE(contains(dkv_last_error(), "admin.key"));
        /* The damaged file is left alone, not replaced. */
        DKV_EXPECT_STR_EQ(read_text(path, pool), bad[i]);
    }
    /* A well-formed file whose public half (bytes 32..63) does not match
     * its seed: base64 character 60 lies in byte 45. */
    apr_file_remove(path, pool);
    DKV_ASSERT_OK(dkv_admin_key_load(&k, NULL, dir, pool));
    good = read_text(path, pool);
    flip_b64_char(path, 60, pool);
    DKV_EXPECT_STATUS(dkv_admin_key_load(&k, NULL, dir, pool),
                      DKV_ECORRUPT);
    /* The same with a changed seed. */
    write_text(path, good, pool);
    flip_b64_char(path, 3, pool);
    DKV_EXPECT_STATUS(dkv_admin_key_load(&k, NULL, dir, pool),
                      DKV_ECORRUPT);
    /* Extra text after the key. */
    write_text(path, apr_pstrcat(pool, good, "more\n", NULL), pool);
    DKV_EXPECT_STATUS(dkv_admin_key_load(&k, NULL, dir, pool),
                      DKV_ECORRUPT);
    /* Restored: loads. */
    write_text(path, good, pool);
    DKV_EXPECT_OK(dkv_admin_key_load(&k, NULL, dir, pool));

    /* Manager keys: a box public key that is not the secret key's. */
    DKV_ASSERT_OK(dkv_manager_keys_load(&mk, NULL, dir, pool));
    good = read_text(mpath, pool);
    {
        char *text = apr_pstrdup(pool, good);
        char *last = strrchr(text, ' ') + 1;

        last[5] = last[5] == 'A' ? 'B' : 'A';
        write_text(mpath, text, pool);
        DKV_EXPECT_STATUS(dkv_manager_keys_load(&mk, NULL, dir, pool),
                          DKV_ECORRUPT);
        DKV_EXPECT_TRUE(contains(dkv_last_error(), "manager.key"));
    }
    write_text(mpath, "dkv-manager-key-v1 AAAA AAAA\n", pool);
    DKV_EXPECT_STATUS(dkv_manager_keys_load(&mk, NULL, dir, pool),
                      DKV_ECORRUPT);
    /* An admin key file is not a manager key file. */
    write_text(mpath, read_text(path, pool), pool);
    DKV_EXPECT_STATUS(dkv_manager_keys_load(&mk, NULL, dir, pool),
                      DKV_ECORRUPT);
    write_text(mpath, good, pool);
    DKV_EXPECT_OK(dkv_manager_keys_load(&mk, NULL, dir, pool));
    apr_pool_destroy(pool);
}

static void
private_file_written_atomically(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *dir = dkv_test_tempdir(pool);
    const char *path = apr_pstrcat(pool, dir, "/secret", NULL);
    apr_dir_t *d;
    apr_finfo_t fi;
    int entries = 0;

    DKV_ASSERT_OK(dkv_write_private_file(path, "one", 3, pool));
    DKV_EXPECT_STR_EQ(read_text(path, pool), "one");
    DKV_ASSERT_OK(dkv_write_private_file(path, "second", 6, pool));
    DKV_EXPECT_STR_EQ(read_text(path, pool), "second");
#if !defined(_WIN32)
    DKV_ASSERT_OK(apr_file_perms_set(path, APR_FPROT_UREAD
                                     | APR_FPROT_UWRITE
                                     | APR_FPROT_GREAD));
    DKV_EXPECT_TRUE(!dkv_admin_key_mode_ok(path, pool));
    DKV_ASSERT_OK(dkv_write_private_file(path, "third", 5, pool));
    DKV_EXPECT_TRUE(dkv_admin_key_mode_ok(path, pool));
    DKV_ASSERT_OK(apr_stat(&fi, path, APR_FINFO_PROT, pool));
    DKV_EXPECT_INT_EQ(fi.protection, APR_FPROT_UREAD | APR_FPROT_UWRITE);
#endif
    /* No temporary file is left behind. */
    DKV_ASSERT_OK(apr_dir_open(&d, dir, pool));
    while (apr_dir_read(&fi, APR_FINFO_NAME, d) == APR_SUCCESS) {
        if (strcmp(fi.name, ".") != 0 && strcmp(fi.name, "..") != 0) {
            entries++;
        }
    }
    apr_dir_close(d);
    DKV_EXPECT_INT_EQ(entries, 1);
    /* A directory that does not exist: an error naming the path. */
    DKV_EXPECT_TRUE(dkv_write_private_file(apr_pstrcat(pool, dir,
                                                       "/no/such", NULL),
                                           "x", 1, pool) != DKV_OK);
    DKV_EXPECT_TRUE(contains(dkv_last_error(), "/no/such"));
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------------ signing */

static void
query_canonical_form(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *keys[] = {"force", "b", "a", "a.b", "Z"};
    const char *values[] = {"true", "2", "1", NULL, "x"};

    DKV_EXPECT_STR_EQ(dkv_admin_query_canon(0, NULL, NULL, pool), "");
    DKV_EXPECT_STR_EQ(dkv_admin_query_canon(1, keys, values, pool),
                      "force=true");
    DKV_EXPECT_STR_EQ(dkv_admin_query_canon(5, keys, values, pool),
                      "Z=x&a=1&a.b=&b=2&force=true");
    /* The order of the arguments does not matter. */
    {
        const char *k2[] = {"b", "Z", "a.b", "force", "a"};
        const char *v2[] = {"2", "x", "", "true", "1"};

        DKV_EXPECT_STR_EQ(dkv_admin_query_canon(5, k2, v2, pool),
                          "Z=x&a=1&a.b=&b=2&force=true");
    }
    apr_pool_destroy(pool);
}

static void
signing_string_format(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *s;

    s = dkv_admin_signing_string("POST", "/admin/v1/stores/S/start", "",
                                 "MGR=", 1795707131000,
                                 "00112233445566778899aabbccddeeff", NULL,
                                 0, pool);
    DKV_EXPECT_STR_EQ(s, "dkv-admin-v1\nPOST\n/admin/v1/stores/S/start\n"
                      "\nMGR=\n1795707131000\n"
                      "00112233445566778899aabbccddeeff\n"
                      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495"
                      "991b7852b855");
    s = dkv_admin_signing_string("PUT", "/p", "a=1", "M", 5, "n", "abc", 3,
                                 pool);
    DKV_EXPECT_STR_EQ(s, "dkv-admin-v1\nPUT\n/p\na=1\nM\n5\nn\n"
                      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410"
                      "ff61f20015ad");
    apr_pool_destroy(pool);
}

static void
sign_then_verify(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fixture_t fx;
    dkv_admin_sig_headers_t h;
    dkv_admin_sig_headers_t h2;
    const char *text;
    unsigned char sig[DKV_ADMIN_SIG_BYTES];
    unsigned char pk[DKV_ADMIN_PK_BYTES];
    size_t n;

    fixture_make(&fx, pool);
    sign_ref(&h, &fx, NOW_MS);
    DKV_EXPECT_STR_EQ(h.key, dkv_admin_key_id(fx.admin, pool));
    DKV_EXPECT_STR_EQ(h.timestamp, "1795707131000");
    DKV_EXPECT_UINT_EQ(strlen(h.nonce), DKV_ADMIN_NONCE_HEX);
    DKV_EXPECT_UINT_EQ(strspn(h.nonce, "0123456789abcdef"),
                       DKV_ADMIN_NONCE_HEX);
    /* The signature is a plain Ed25519 signature of the signing string
     * (checked here with libsodium directly). */
    text = dkv_admin_signing_string("POST",
                                    "/admin/v1/stores/S/instances/n1/stop",
                                    "force=true", fx.mgr_id, NOW_MS,
                                    h.nonce, "{}", 2, pool);
    DKV_ASSERT_OK(dkv_unb64(sig, sizeof(sig), &n, h.signature));
    DKV_EXPECT_UINT_EQ(n, sizeof(sig));
    DKV_ASSERT_OK(dkv_unb64(pk, sizeof(pk), &n, h.key));
    DKV_EXPECT_INT_EQ(crypto_sign_verify_detached(
                          sig, (const unsigned char *)text, strlen(text),
                          pk), 0);
    DKV_EXPECT_OK(verify_ref(&fx, &h, NOW_MS));

    /* Two signatures of the same request differ (fresh nonces). */
    sign_ref(&h2, &fx, NOW_MS);
    DKV_EXPECT_TRUE(strcmp(h.nonce, h2.nonce) != 0);
    DKV_EXPECT_OK(verify_ref(&fx, &h2, NOW_MS + 1000));

    /* No body and no query. */
    DKV_ASSERT_OK(dkv_admin_sign(&h, fx.admin, "DELETE", "/x", NULL,
                                 fx.mgr_id, NOW_MS, NULL, 0, pool));
    DKV_EXPECT_OK(dkv_admin_verify(fx.v, &h, "DELETE", "/x", "", NOW_MS,
                                   "", 0));
    apr_pool_destroy(pool);
}

static void
verify_refusals(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fixture_t fx;
    dkv_admin_sig_headers_t good;
    dkv_admin_sig_headers_t h;
    dkv_admin_key_t *stranger;
    dkv_manager_keys_t *other_mgr;
    char *s;

    fixture_make(&fx, pool);
    sign_ref(&good, &fx, NOW_MS);

    h = good;
    h.key = NULL;
    EXPECT_REFUSED(&fx, &h, NOW_MS, "missing X-Dkv-Key");
    h = good;
    h.timestamp = NULL;
    EXPECT_REFUSED(&fx, &h, NOW_MS, "missing X-Dkv-Timestamp");
    h = good;
    h.nonce = NULL;
    EXPECT_REFUSED(&fx, &h, NOW_MS, "missing X-Dkv-Nonce");
    h = good;
    h.signature = NULL;
    EXPECT_REFUSED(&fx, &h, NOW_MS, "missing X-Dkv-Signature");

    /* Malformed headers. */
    h = good;
    h.key = "not a key";
    EXPECT_REFUSED(&fx, &h, NOW_MS, "malformed X-Dkv-Key");
    h = good;
    h.key = "AAAA";
    EXPECT_REFUSED(&fx, &h, NOW_MS, "malformed X-Dkv-Key");
    h = good;
    h.signature = "AAAA";
    EXPECT_REFUSED(&fx, &h, NOW_MS, "malformed X-Dkv-Signature");
    h = good;
    h.timestamp = "12x";
    EXPECT_REFUSED(&fx, &h, NOW_MS, "malformed X-Dkv-Timestamp");
    h = good;
    h.timestamp = "-5";
    EXPECT_REFUSED(&fx, &h, NOW_MS, "malformed X-Dkv-Timestamp");
    h = good;
    h.timestamp = "";
    EXPECT_REFUSED(&fx, &h, NOW_MS, "malformed X-Dkv-Timestamp");
    h = good;
    h.nonce = "00112233";
    EXPECT_REFUSED(&fx, &h, NOW_MS, "malformed X-Dkv-Nonce");
    h = good;
    s = apr_pstrdup(pool, good.nonce);
    s[0] = 'G';
    h.nonce = s;
    EXPECT_REFUSED(&fx, &h, NOW_MS, "malformed X-Dkv-Nonce");
    h = good;
    h.nonce = "00112233445566778899AABBCCDDEEFF";
    EXPECT_REFUSED(&fx, &h, NOW_MS, "malformed X-Dkv-Nonce");

    /* A key not in the authorized-keys file, even correctly signed. */
    DKV_ASSERT_OK(dkv_admin_key_load(&stranger, NULL,
                                     apr_pstrcat(pool, fx.dir, "/stranger",
                                                 NULL), pool));
    DKV_ASSERT_OK(dkv_admin_sign(&h, stranger, "POST",
                                 "/admin/v1/stores/S/instances/n1/stop",
                                 "force=true", fx.mgr_id, NOW_MS, "{}", 2,
                                 pool));
    EXPECT_REFUSED(&fx, &h, NOW_MS, "unknown key");
    DKV_EXPECT_TRUE(contains(dkv_last_error(),
                             dkv_admin_key_id(stranger, pool)));
    /* An authorized key id with a stranger's signature. */
    h.key = good.key;
    EXPECT_REFUSED(&fx, &h, NOW_MS, "bad signature");

    /* Each part of the request changed. */
    DKV_EXPECT_STATUS(dkv_admin_verify(fx.v, &good, "POST",
                                       "/admin/v1/stores/S/instances/n1/"
                                       "stop", "force=true", NOW_MS, "{ }",
                                       3), DKV_EUNAUTHORIZED);
    DKV_EXPECT_TRUE(contains(dkv_last_error(), "bad signature"));
    DKV_EXPECT_STATUS(dkv_admin_verify(fx.v, &good, "POST",
                                       "/admin/v1/stores/S/instances/n1/"
                                       "stop", "force=true", NOW_MS, NULL,
                                       0), DKV_EUNAUTHORIZED);
    DKV_EXPECT_STATUS(dkv_admin_verify(fx.v, &good, "POST",
                                       "/admin/v1/stores/S/instances/n2/"
                                       "stop", "force=true", NOW_MS, "{}",
                                       2), DKV_EUNAUTHORIZED);
    DKV_EXPECT_TRUE(contains(dkv_last_error(), "bad signature"));
    DKV_EXPECT_STATUS(dkv_admin_verify(fx.v, &good, "POST",
                                       "/admin/v1/stores/S/instances/n1/"
                                       "stop", "", NOW_MS, "{}", 2),
                      DKV_EUNAUTHORIZED);
    DKV_EXPECT_STATUS(dkv_admin_verify(fx.v, &good, "POST",
                                       "/admin/v1/stores/S/instances/n1/"
                                       "stop", "force=false", NOW_MS, "{}",
                                       2), DKV_EUNAUTHORIZED);
    DKV_EXPECT_STATUS(dkv_admin_verify(fx.v, &good, "DELETE",
                                       "/admin/v1/stores/S/instances/n1/"
                                       "stop", "force=true", NOW_MS, "{}",
                                       2), DKV_EUNAUTHORIZED);
    DKV_EXPECT_TRUE(contains(dkv_last_error(), "bad signature"));
    /* Another timestamp than the one signed (still in the window). */
    h = good;
    h.timestamp = "1795707131001";
    EXPECT_REFUSED(&fx, &h, NOW_MS, "bad signature");
    /* Another nonce than the one signed. */
    h = good;
    h.nonce = "00112233445566778899aabbccddeeff";
    EXPECT_REFUSED(&fx, &h, NOW_MS, "bad signature");

    /* Signed for another manager: refused by this one. */
    DKV_ASSERT_OK(dkv_manager_keys_load(&other_mgr, NULL,
                                        apr_pstrcat(pool, fx.dir, "/mgr2",
                                                    NULL), pool));
    DKV_ASSERT_OK(dkv_admin_sign(&h, fx.admin, "POST",
                                 "/admin/v1/stores/S/instances/n1/stop",
                                 "force=true",
                                 dkv_manager_sign_id(other_mgr, pool),
                                 NOW_MS, "{}", 2, pool));
    EXPECT_REFUSED(&fx, &h, NOW_MS, "bad signature");

    /* None of the refusals above burnt the good request's nonce. */
    DKV_EXPECT_OK(verify_ref(&fx, &good, NOW_MS));
    /* Replayed. */
    EXPECT_REFUSED(&fx, &good, NOW_MS, "replayed nonce");
    EXPECT_REFUSED(&fx, &good, NOW_MS + 60000, "replayed nonce");
    apr_pool_destroy(pool);
}

static void
timestamp_window(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fixture_t fx;
    dkv_admin_sig_headers_t h;

    fixture_make(&fx, pool);
    /* |now - ts| <= window is accepted, one millisecond more is not. */
    sign_ref(&h, &fx, NOW_MS - WINDOW);
    DKV_EXPECT_OK(verify_ref(&fx, &h, NOW_MS));
    sign_ref(&h, &fx, NOW_MS + WINDOW);
    DKV_EXPECT_OK(verify_ref(&fx, &h, NOW_MS));
    sign_ref(&h, &fx, NOW_MS - WINDOW - 1);
    EXPECT_REFUSED(&fx, &h, NOW_MS, "s old");
    sign_ref(&h, &fx, NOW_MS + WINDOW + 1);
    EXPECT_REFUSED(&fx, &h, NOW_MS, "in the future");
    sign_ref(&h, &fx, NOW_MS - 3600 * 1000);
    EXPECT_REFUSED(&fx, &h, NOW_MS, "timestamp 3600 s old");
    sign_ref(&h, &fx, NOW_MS + 300 * 1000);
    EXPECT_REFUSED(&fx, &h, NOW_MS, "timestamp 300 s in the future");
    /* Refused for its time, the request was not remembered: it passes
     * when the clock agrees. */
    DKV_EXPECT_OK(verify_ref(&fx, &h, NOW_MS + 300 * 1000));
    apr_pool_destroy(pool);
}

static void
replay_remembered_for_the_window(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fixture_t fx;
    dkv_admin_sig_headers_t h;
    dkv_admin_sig_headers_t other;
    int64_t t;

    fixture_make(&fx, pool);
    sign_ref(&h, &fx, NOW_MS);
    DKV_EXPECT_OK(verify_ref(&fx, &h, NOW_MS));
    /* Replayed at every moment its timestamp is still acceptable, also
     * after prunes triggered by other requests. */
    for (t = NOW_MS - WINDOW; t <= NOW_MS + WINDOW; t += WINDOW / 4) {
        sign_ref(&other, &fx, t);
        DKV_EXPECT_OK(verify_ref(&fx, &other, t));
        EXPECT_REFUSED(&fx, &h, t, "replayed nonce");
    }
    /* Later, its timestamp refuses it. */
    EXPECT_REFUSED(&fx, &h, NOW_MS + 3 * WINDOW, "s old");
    apr_pool_destroy(pool);
}

/* ---------------------------------------------------- authorized keys */

static void
authorized_keys_reloaded(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fixture_t fx;
    dkv_admin_key_t *bob;
    dkv_admin_sig_headers_t h;
    const char *alice_line;
    const char *bob_line;
    int64_t now = NOW_MS;

    fixture_make(&fx, pool);
    DKV_ASSERT_OK(dkv_admin_key_load(&bob, NULL,
                                     apr_pstrcat(pool, fx.dir, "/bob",
                                                 NULL), pool));
    alice_line = dkv_admin_key_line(fx.admin, "alice@host", pool);
    bob_line = dkv_admin_key_line(bob, "bob", pool);

    DKV_ASSERT_OK(dkv_admin_sign(&h, bob, "POST", "/p", "", fx.mgr_id, now,
                                 NULL, 0, pool));
    DKV_EXPECT_STATUS(dkv_admin_verify(fx.v, &h, "POST", "/p", "", now,
                                       NULL, 0), DKV_EUNAUTHORIZED);
    DKV_EXPECT_TRUE(contains(dkv_last_error(), "unknown key"));

    /* Bob added (file edited in place): accepted without a restart. */
    write_text(fx.auth_path, apr_pstrcat(pool, alice_line, bob_line, NULL),
               pool);
    DKV_ASSERT_OK(dkv_admin_sign(&h, bob, "POST", "/p", "", fx.mgr_id, now,
                                 NULL, 0, pool));
    DKV_EXPECT_OK(dkv_admin_verify(fx.v, &h, "POST", "/p", "", now, NULL,
                                   0));
    sign_ref(&h, &fx, now);
    DKV_EXPECT_OK(verify_ref(&fx, &h, now));

    /* Alice removed, in a file of the same size (a comment as long as
     * her line): refused at once. */
    {
        char *pad = apr_pstrdup(pool, alice_line);

        memset(pad, '#', strlen(pad) - 1);
        write_text(fx.auth_path, apr_pstrcat(pool, pad, bob_line, NULL),
                   pool);
    }
    sign_ref(&h, &fx, now);
    EXPECT_REFUSED(&fx, &h, now, "unknown key");
    DKV_ASSERT_OK(dkv_admin_sign(&h, bob, "POST", "/p", "", fx.mgr_id, now,
                                 NULL, 0, pool));
    DKV_EXPECT_OK(dkv_admin_verify(fx.v, &h, "POST", "/p", "", now, NULL,
                                   0));

    /* Replaced by rename (as editors do): alice only again. */
    DKV_ASSERT_OK(dkv_write_private_file(fx.auth_path, alice_line,
                                         strlen(alice_line), pool));
    sign_ref(&h, &fx, now);
    DKV_EXPECT_OK(verify_ref(&fx, &h, now));
    DKV_ASSERT_OK(dkv_admin_sign(&h, bob, "POST", "/p", "", fx.mgr_id, now,
                                 NULL, 0, pool));
    DKV_EXPECT_STATUS(dkv_admin_verify(fx.v, &h, "POST", "/p", "", now,
                                       NULL, 0), DKV_EUNAUTHORIZED);

    /* File removed: nobody is accepted; back: accepted again. */
    DKV_ASSERT_OK(apr_file_remove(fx.auth_path, pool));
    sign_ref(&h, &fx, now);
    EXPECT_REFUSED(&fx, &h, now, "unknown key");
    write_text(fx.auth_path, alice_line, pool);
    DKV_EXPECT_OK(verify_ref(&fx, &h, now));
    apr_pool_destroy(pool);
}

static void
authorized_keys_syntax(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fixture_t fx;
    dkv_admin_key_t *keys[4];
    dkv_admin_sig_headers_t h;
    const char *text;
    int i;

    fixture_make(&fx, pool);
    for (i = 0; i < 4; i++) {
        DKV_ASSERT_OK(dkv_admin_key_load(&keys[i], NULL,
                                         apr_psprintf(pool, "%s/k%d",
                                                      fx.dir, i), pool));
    }
    /* keys[0]: comment with spaces and CRLF; keys[1]: leading blanks and
     * no comment; keys[2]: last line, no newline; keys[3]: only inside
     * comments and malformed lines. */
    text = apr_pstrcat(pool,
                       "# admins of this machine\n",
                       "\n",
                       "   \n",
                       "ssh-ed25519 ", dkv_admin_key_id(keys[3], pool),
                       " wrong type\n",
                       "ed25519\n",
                       "ed25519 not*base64 x\n",
                       "ed25519 AAAA short\n",
                       "#ed25519 ", dkv_admin_key_id(keys[3], pool), "\n",
                       "ed25519 ", dkv_admin_key_id(keys[0], pool),
                       " carol at the office\r\n",
                       "  \ted25519  ", dkv_admin_key_id(keys[1], pool),
                       "\n",
                       "ed25519 ", dkv_admin_key_id(keys[2], pool), NULL);
    write_text(fx.auth_path, text, pool);
    for (i = 0; i < 4; i++) {
        DKV_ASSERT_OK(dkv_admin_sign(&h, keys[i], "POST", "/p", "",
                                     fx.mgr_id, NOW_MS, NULL, 0, pool));
        if (i < 3) {
            DKV_EXPECT_OK(dkv_admin_verify(fx.v, &h, "POST", "/p", "",
                                           NOW_MS, NULL, 0));
        } else {
            DKV_EXPECT_STATUS(dkv_admin_verify(fx.v, &h, "POST", "/p", "",
                                               NOW_MS, NULL, 0),
                              DKV_EUNAUTHORIZED);
            DKV_EXPECT_TRUE(contains(dkv_last_error(), "unknown key"));
        }
    }
    /* The admin of the fixture is no longer listed. */
    sign_ref(&h, &fx, NOW_MS);
    EXPECT_REFUSED(&fx, &h, NOW_MS, "unknown key");
    apr_pool_destroy(pool);
}

/* Several threads verify the same requests: each is accepted once. */
typedef struct race_arg {
    fixture_t *fx;
    dkv_admin_sig_headers_t *reqs;
    int nreqs;
    int accepted;
} race_arg_t;

static void *APR_THREAD_FUNC
race_thread(apr_thread_t *thread, void *data)
{
    race_arg_t *a = data;
    int i;

    (void)thread;
    for (i = 0; i < a->nreqs; i++) {
        if (verify_ref(a->fx, &a->reqs[i], NOW_MS) == DKV_OK) {
            a->accepted++;
        }
    }
    return NULL;
}

static void
concurrent_replays_accepted_once(void)
{
    apr_pool_t *pool = dkv_test_pool();
    fixture_t fx;
    dkv_admin_sig_headers_t reqs[16];
    race_arg_t args[4];
    apr_thread_t *threads[4];
    int i;
    int total = 0;

    fixture_make(&fx, pool);
    for (i = 0; i < 16; i++) {
        sign_ref(&reqs[i], &fx, NOW_MS);
    }
    for (i = 0; i < 4; i++) {
        args[i].fx = &fx;
        args[i].reqs = reqs;
        args[i].nreqs = 16;
        args[i].accepted = 0;
        DKV_ASSERT_OK(apr_thread_create(&threads[i], NULL, race_thread,
                                        &args[i], pool));
    }
    for (i = 0; i < 4; i++) {
        DKV_ASSERT_OK(dkv_test_thread_join(NULL, threads[i]));
        total += args[i].accepted;
    }
    DKV_EXPECT_INT_EQ(total, 16);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------------ sealing */

static void
seal_and_unseal(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const char *dir = dkv_test_tempdir(pool);
    dkv_manager_keys_t *m1;
    dkv_manager_keys_t *m2;
    unsigned char secret[DKV_STORE_SECRET_BYTES];
    const char *sealed;
    const char *sealed2;
    unsigned char *out = NULL;
    size_t len = 0;
    char *bad;

    DKV_ASSERT_OK(dkv_manager_keys_load(&m1, NULL,
                                        apr_pstrcat(pool, dir, "/m1", NULL),
                                        pool));
    DKV_ASSERT_OK(dkv_manager_keys_load(&m2, NULL,
                                        apr_pstrcat(pool, dir, "/m2", NULL),
                                        pool));
    randombytes_buf(secret, sizeof(secret));
    DKV_ASSERT_OK(dkv_seal(&sealed, dkv_manager_box_id(m1, pool), secret,
                           sizeof(secret), pool));
    DKV_ASSERT_OK(dkv_unseal(&out, &len, m1, sealed));
    DKV_EXPECT_MEM_EQ(out, len, secret, sizeof(secret));
    sodium_free(out);
    /* Sealing is randomized. */
    DKV_ASSERT_OK(dkv_seal(&sealed2, dkv_manager_box_id(m1, pool), secret,
                           sizeof(secret), pool));
    DKV_EXPECT_TRUE(strcmp(sealed, sealed2) != 0);

    /* The other manager cannot open it. */
    out = NULL;
    DKV_EXPECT_STATUS(dkv_unseal(&out, &len, m2, sealed), DKV_EINVAL);
    DKV_EXPECT_TRUE(out == NULL);
    /* Damaged or malformed sealed values. */
    bad = apr_pstrdup(pool, sealed);
    bad[10] = bad[10] == 'A' ? 'B' : 'A';
    DKV_EXPECT_STATUS(dkv_unseal(&out, &len, m1, bad), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_unseal(&out, &len, m1, "not base64"),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_unseal(&out, &len, m1, ""), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_unseal(&out, &len, m1, "AAAA"), DKV_EINVAL);
    /* A malformed sealing key. */
    DKV_EXPECT_STATUS(dkv_seal(&sealed2, "AAAA", secret, sizeof(secret),
                               pool), DKV_EINVAL);
    DKV_EXPECT_TRUE(contains(dkv_last_error(), "AAAA"));
    /* Empty data round-trips too. */
    DKV_ASSERT_OK(dkv_seal(&sealed2, dkv_manager_box_id(m2, pool), "", 0,
                           pool));
    DKV_ASSERT_OK(dkv_unseal(&out, &len, m2, sealed2));
    DKV_EXPECT_UINT_EQ(len, 0);
    sodium_free(out);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------- token, base64 */

static void
node_token_derivation(void)
{
    unsigned char secret[DKV_STORE_SECRET_BYTES];
    unsigned char mac[32];
    char expect[65];
    char t1[65];
    char t2[65];
    static const char ctx[] = "dkv-node-admin-v1";

    randombytes_buf(secret, sizeof(secret));
    memset(t1, 'x', sizeof(t1));
    dkv_admin_node_token(t1, secret);
    dkv_admin_node_token(t2, secret);
    DKV_EXPECT_STR_EQ(t1, t2);
    DKV_EXPECT_UINT_EQ(strlen(t1), 64);
    DKV_EXPECT_UINT_EQ(strspn(t1, "0123456789abcdef"), 64);
    /* An independent computation: BLAKE2b-256 keyed with the secret. */
    crypto_generichash(mac, sizeof(mac), (const unsigned char *)ctx,
                       sizeof(ctx) - 1, secret, sizeof(secret));
    sodium_bin2hex(expect, sizeof(expect), mac, sizeof(mac));
    DKV_EXPECT_STR_EQ(t1, expect);
    /* Another secret, another token. */
    secret[0] ^= 1;
    dkv_admin_node_token(t2, secret);
    DKV_EXPECT_TRUE(strcmp(t1, t2) != 0);
    /* A fixed vector: the all-zero secret. */
    memset(secret, 0, sizeof(secret));
    dkv_admin_node_token(t1, secret);
    crypto_generichash(mac, sizeof(mac), (const unsigned char *)ctx,
                       sizeof(ctx) - 1, secret, sizeof(secret));
    sodium_bin2hex(expect, sizeof(expect), mac, sizeof(mac));
    DKV_EXPECT_STR_EQ(t1, expect);
}

static void
base64_helpers(void)
{
    apr_pool_t *pool = dkv_test_pool();
    unsigned char buf[8];
    size_t n = 99;

    DKV_EXPECT_STR_EQ(dkv_b64("abcd", 4, pool), "YWJjZA==");
    DKV_EXPECT_STR_EQ(dkv_b64("", 0, pool), "");
    DKV_ASSERT_OK(dkv_unb64(buf, sizeof(buf), &n, "YWJjZA=="));
    DKV_EXPECT_MEM_EQ(buf, n, "abcd", 4);
    /* Unpadded, URL-safe, too long for the buffer, trailing junk. */
    DKV_EXPECT_STATUS(dkv_unb64(buf, sizeof(buf), &n, "YWJjZA"),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_unb64(buf, sizeof(buf), &n, "-_-_"), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_unb64(buf, 2, &n, "YWJjZA=="), DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_unb64(buf, sizeof(buf), &n, "YWJjZA==x"),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_unb64(buf, sizeof(buf), &n, NULL), DKV_EINVAL);
    apr_pool_destroy(pool);
}

void
test_adminauth_register(void)
{
    CU_pSuite s = dkv_test_add_suite("adminauth", NULL, NULL);

    DKV_TEST_ADD(s, admin_key_made_and_reloaded);
    DKV_TEST_ADD(s, manager_keys_made_and_reloaded);
    DKV_TEST_ADD(s, damaged_key_files_refused);
    DKV_TEST_ADD(s, private_file_written_atomically);
    DKV_TEST_ADD(s, query_canonical_form);
    DKV_TEST_ADD(s, signing_string_format);
    DKV_TEST_ADD(s, sign_then_verify);
    DKV_TEST_ADD(s, verify_refusals);
    DKV_TEST_ADD(s, timestamp_window);
    DKV_TEST_ADD(s, replay_remembered_for_the_window);
    DKV_TEST_ADD(s, authorized_keys_reloaded);
    DKV_TEST_ADD(s, authorized_keys_syntax);
    DKV_TEST_ADD(s, concurrent_replays_accepted_once);
    DKV_TEST_ADD(s, seal_and_unseal);
    DKV_TEST_ADD(s, node_token_derivation);
    DKV_TEST_ADD(s, base64_helpers);
}
