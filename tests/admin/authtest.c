/*
 * authtest.c -- the signed requests of the management port against a
 * running dkv-manager (docs/admin-api.md, "Authentication"): a request
 * that is unsigned, from an unknown key, with a bad signature, a tampered
 * body, a timestamp 300 s old or ahead, a malformed or missing nonce, a
 * replayed nonce, or signed for another manager is refused with 401
 * Unauthorized, and the manager logs a line naming the reason; a good one
 * passes (a seal of an unknown store answers 404).  The counter
 * dkv_manager_auth_failures_total grows by one per refusal.
 *
 *   authtest URL MANAGER_ID ADMIN_DIR OTHER_DIR LOG_FILE
 *
 * URL is the manager's base (http://127.0.0.1:PORT), MANAGER_ID its
 * signKey, ADMIN_DIR the dkv directory of an admin it trusts, OTHER_DIR
 * one for an admin it does not (made here), LOG_FILE the manager's log.
 * tests/admin/test-admin-auth.sh starts the manager and runs this.  Exit
 * 0 when every check holds.  Linux only (a test program).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <curl/curl.h>

#include "common/adminauth.h"

#define SEAL_PATH "/admin/v1/stores/NoSuchStore/seal"

static int checks, failures;

static void
check(int cond, const char *what)
{
    checks++;
    if (!cond) {
        failures++;
        printf("FAIL: %s\n", what);
    }
}

/* An HTTP answer: status and the start of the body. */
typedef struct answer {
    long code;
    char body[4096];
    size_t len;
} answer_t;

static size_t
on_body(char *data, size_t size, size_t n, void *ud)
{
    answer_t *a = ud;
    size_t len = size * n, room = sizeof a->body - 1 - a->len;

    memcpy(a->body + a->len, data, len < room ? len : room);
    a->len += len < room ? len : room;
    a->body[a->len] = '\0';
    return len;
}

/* Sends METHOD URL+PATH with BODY (may be NULL) and the headers of H
 * (NULL: none), leaving out the header named SKIP (may be NULL). */
static int
request(answer_t *a, const char *method, const char *url, const char *path,
        const char *body, const dkv_admin_sig_headers_t *h,
        const char *skip, apr_pool_t *pool)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    CURLcode rc;

    memset(a, 0, sizeof *a);
    if (c == NULL) {
        return -1;
    }
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (h != NULL) {
        const char *names[4] = { DKV_ADMIN_HDR_KEY, DKV_ADMIN_HDR_TIME,
                                 DKV_ADMIN_HDR_NONCE, DKV_ADMIN_HDR_SIG };
        const char *vals[4];
        int i;

        vals[0] = h->key;
        vals[1] = h->timestamp;
        vals[2] = h->nonce;
        vals[3] = h->signature;
        for (i = 0; i < 4; i++) {
            if (skip == NULL || strcmp(skip, names[i]) != 0) {
                hdrs = curl_slist_append(hdrs, apr_pstrcat(pool, names[i],
                                                           ": ", vals[i],
                                                           NULL));
            }
        }
    }
    curl_easy_setopt(c, CURLOPT_URL, apr_pstrcat(pool, url, path, NULL));
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->code);
    } else {
        printf("authtest: %s %s%s: %s\n", method, url, path,
               curl_easy_strerror(rc));
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

/* The size of FILE now (0 when it cannot be read). */
static long
log_size(const char *file)
{
    FILE *f = fopen(file, "rb");
    long n = 0;

    if (f != NULL) {
        if (fseek(f, 0, SEEK_END) == 0) {
            n = ftell(f);
        }
        fclose(f);
    }
    return n < 0 ? 0 : n;
}

/* Does FILE, after offset FROM, hold WORD (case-insensitive)?  Waits up
 * to 2 s for it. */
static int
log_has(const char *file, long from, const char *word)
{
    int tries;

    for (tries = 0; tries < 20; tries++) {
        FILE *f = fopen(file, "rb");
        char buf[16384];
        size_t n = 0, i, wl = strlen(word);

        if (f != NULL) {
            if (fseek(f, from, SEEK_SET) == 0) {
                n = fread(buf, 1, sizeof buf - 1, f);
            }
            fclose(f);
        }
        for (i = 0; i + wl <= n; i++) {
            size_t k = 0;

            while (k < wl && tolower((unsigned char)buf[i + k])
                   == tolower((unsigned char)word[k])) {
                k++;
            }
            if (k == wl) {
                return 1;
            }
        }
        usleep(100 * 1000);
    }
    return 0;
}

static int64_t
now_ms(void)
{
    return (int64_t)(apr_time_now() / 1000);
}

/* dkv_manager_auth_failures_total from GET /metrics, or -1. */
static long
auth_failures(const char *url, apr_pool_t *pool)
{
    static const char name[] = "dkv_manager_auth_failures_total";
    answer_t *a = apr_pcalloc(pool, sizeof *a);
    const char *p;

    if (request(a, "GET", url, "/metrics", NULL, NULL, NULL, pool) != 0
        || a->code != 200) {
        return -1;
    }
    for (p = strstr(a->body, name); p != NULL;
         p = strstr(p + 1, name)) {
        if (p == a->body || p[-1] == '\n') {
            const char *v = p + sizeof name - 1;

            while (*v == ' ' || *v == '{' || *v == '}') {
                v++;
            }
            return (long)apr_atoi64(v);
        }
    }
    return -1;
}

/* One refused request: 401, body code Unauthorized, a log line with
 * REASON. */
static void
refused(const char *what, answer_t *a, const char *logf, long from,
        const char *reason, int *nrefused)
{
    char msg[512];

    (*nrefused)++;
    snprintf(msg, sizeof msg, "%.100s: HTTP %ld, expected 401 (%.300s)", what,
             a->code, a->body);
    check(a->code == 401, msg);
    snprintf(msg, sizeof msg, "%.100s: body lacks code Unauthorized (%.300s)",
             what, a->body);
    check(strstr(a->body, "\"Unauthorized\"") != NULL, msg);
    snprintf(msg, sizeof msg, "%.100s: no log line saying '%.100s'", what,
             reason);
    check(log_has(logf, from, reason), msg);
}

int
main(int argc, char **argv)
{
    apr_pool_t *pool;
    dkv_admin_key_t *admin, *stranger;
    dkv_admin_sig_headers_t h, h2;
    answer_t a;
    const char *url, *mgr, *logf, *body, *body2, *other_mgr;
    unsigned char bytes[DKV_ADMIN_SIG_BYTES];
    size_t len;
    long fail0, fail1, from;
    int nref = 0;
    char msg[512];

    if (argc != 6) {
        fprintf(stderr, "usage: authtest URL MANAGER_ID ADMIN_DIR "
                "OTHER_DIR LOG_FILE\n");
        return 2;
    }
    url = argv[1];
    mgr = argv[2];
    logf = argv[5];
    if (apr_initialize() != APR_SUCCESS
        || apr_pool_create(&pool, NULL) != APR_SUCCESS
        || dkv_adminauth_init() != DKV_OK
        || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "authtest: cannot initialize\n");
        return 1;
    }
    if (dkv_admin_key_load(&admin, NULL, argv[3], pool) != DKV_OK
        || dkv_admin_key_load(&stranger, NULL, argv[4], pool) != DKV_OK) {
        fprintf(stderr, "authtest: cannot load the admin keys\n");
        return 1;
    }
    memset(bytes, 0x42, sizeof bytes);
    body = apr_pstrcat(pool, "{\"boxKey\":\"",
                       dkv_b64(bytes, DKV_BOX_PK_BYTES, pool), "\"}", NULL);
    body2 = apr_pstrcat(pool, "{\"boxKey\":\"",
                        dkv_b64(bytes, DKV_BOX_PK_BYTES - 1, pool), "\"}",
                        NULL);
    memset(bytes, 0x17, sizeof bytes);
    other_mgr = dkv_b64(bytes, DKV_ADMIN_PK_BYTES, pool);

    fail0 = auth_failures(url, pool);
    check(fail0 >= 0, "GET /metrics lacks dkv_manager_auth_failures_total");

    /* Reads need no signature. */
    request(&a, "GET", url, "/admin/v1/stores", NULL, NULL, NULL, pool);
    snprintf(msg, sizeof msg, "unsigned GET /admin/v1/stores: HTTP %ld",
             a.code);
    check(a.code == 200, msg);

    /* Unsigned. */
    from = log_size(logf);
    request(&a, "POST", url, SEAL_PATH, body, NULL, NULL, pool);
    refused("unsigned POST", &a, logf, from, "missing", &nref);

    /* Each header missing in turn. */
    {
        const char *names[4] = { DKV_ADMIN_HDR_KEY, DKV_ADMIN_HDR_TIME,
                                 DKV_ADMIN_HDR_NONCE, DKV_ADMIN_HDR_SIG };
        int i;

        for (i = 0; i < 4; i++) {
            dkv_admin_sign(&h, admin, "POST", SEAL_PATH, "", mgr, now_ms(),
                           body, strlen(body), pool);
            from = log_size(logf);
            request(&a, "POST", url, SEAL_PATH, body, &h, names[i], pool);
            refused(apr_pstrcat(pool, "no ", names[i], NULL), &a, logf,
                    from, names[i], &nref);
        }
    }

    /* Unknown key. */
    dkv_admin_sign(&h, stranger, "POST", SEAL_PATH, "", mgr, now_ms(), body,
                   strlen(body), pool);
    from = log_size(logf);
    request(&a, "POST", url, SEAL_PATH, body, &h, NULL, pool);
    refused("unknown key", &a, logf, from, "unknown key", &nref);
    check(log_has(logf, from, h.key), "the log does not name the unknown key");

    /* Bad signature: one bit flipped. */
    dkv_admin_sign(&h, admin, "POST", SEAL_PATH, "", mgr, now_ms(), body,
                   strlen(body), pool);
    if (dkv_unb64(bytes, sizeof bytes, &len, h.signature) == DKV_OK
        && len == DKV_ADMIN_SIG_BYTES) {
        bytes[5] ^= 0x01;
        h.signature = dkv_b64(bytes, len, pool);
    } else {
        check(0, "dkv_admin_sign made an undecodable signature");
    }
    from = log_size(logf);
    request(&a, "POST", url, SEAL_PATH, body, &h, NULL, pool);
    refused("bad signature", &a, logf, from, "bad signature", &nref);

    /* Body tampered with. */
    dkv_admin_sign(&h, admin, "POST", SEAL_PATH, "", mgr, now_ms(), body,
                   strlen(body), pool);
    from = log_size(logf);
    request(&a, "POST", url, SEAL_PATH, body2, &h, NULL, pool);
    refused("tampered body", &a, logf, from, "bad signature", &nref);

    /* Signed for another path: replayed elsewhere. */
    dkv_admin_sign(&h, admin, "POST", "/admin/v1/stores/Other/seal", "",
                   mgr, now_ms(), body, strlen(body), pool);
    from = log_size(logf);
    request(&a, "POST", url, SEAL_PATH, body, &h, NULL, pool);
    refused("other path", &a, logf, from, "bad signature", &nref);

    /* Expired and future timestamps. */
    dkv_admin_sign(&h, admin, "POST", SEAL_PATH, "", mgr,
                   now_ms() - 300 * 1000, body, strlen(body), pool);
    from = log_size(logf);
    request(&a, "POST", url, SEAL_PATH, body, &h, NULL, pool);
    refused("timestamp 300 s old", &a, logf, from, "timestamp", &nref);
    dkv_admin_sign(&h, admin, "POST", SEAL_PATH, "", mgr,
                   now_ms() + 300 * 1000, body, strlen(body), pool);
    from = log_size(logf);
    request(&a, "POST", url, SEAL_PATH, body, &h, NULL, pool);
    refused("timestamp 300 s ahead", &a, logf, from, "timestamp", &nref);

    /* Malformed nonce. */
    dkv_admin_sign(&h, admin, "POST", SEAL_PATH, "", mgr, now_ms(), body,
                   strlen(body), pool);
    h.nonce = "zz2c0000000000000000000000000000";
    from = log_size(logf);
    request(&a, "POST", url, SEAL_PATH, body, &h, NULL, pool);
    refused("malformed nonce", &a, logf, from, "nonce", &nref);

    /* Signed for another manager. */
    dkv_admin_sign(&h, admin, "POST", SEAL_PATH, "", other_mgr, now_ms(),
                   body, strlen(body), pool);
    from = log_size(logf);
    request(&a, "POST", url, SEAL_PATH, body, &h, NULL, pool);
    refused("signed for another manager", &a, logf, from, "bad signature",
            &nref);

    /* A good request passes (404: no such store), its replay does not. */
    dkv_admin_sign(&h, admin, "POST", SEAL_PATH, "", mgr, now_ms(), body,
                   strlen(body), pool);
    request(&a, "POST", url, SEAL_PATH, body, &h, NULL, pool);
    snprintf(msg, sizeof msg, "good signed seal: HTTP %ld (%.300s), expected "
             "404 NotFound", a.code, a.body);
    check(a.code == 404 && strstr(a.body, "\"NotFound\"") != NULL, msg);
    from = log_size(logf);
    request(&a, "POST", url, SEAL_PATH, body, &h, NULL, pool);
    refused("replayed request", &a, logf, from, "replayed", &nref);

    /* A signed read is checked too. */
    dkv_admin_sign(&h2, admin, "GET", "/admin/v1/stores", "", mgr, now_ms(),
                   NULL, 0, pool);
    request(&a, "GET", url, "/admin/v1/stores", NULL, &h2, NULL, pool);
    snprintf(msg, sizeof msg, "signed GET /admin/v1/stores: HTTP %ld",
             a.code);
    check(a.code == 200, msg);
    h2.signature = h.signature;
    from = log_size(logf);
    request(&a, "GET", url, "/admin/v1/stores", NULL, &h2, NULL, pool);
    refused("signed GET, bad signature", &a, logf, from, "bad signature",
            &nref);

    fail1 = auth_failures(url, pool);
    snprintf(msg, sizeof msg, "dkv_manager_auth_failures_total went from "
             "%ld to %ld, expected +%d", fail0, fail1, nref);
    check(fail0 >= 0 && fail1 - fail0 == nref, msg);

    printf("authtest: %d checks, %d failed\n", checks, failures);
    curl_global_cleanup();
    apr_pool_destroy(pool);
    apr_terminate();
    return failures == 0 ? 0 : 1;
}
