/*
 * mgrclient.c -- the managers' side of the AdminShell: manager addresses,
 * the managers session file and the known keys (trust on first use), the
 * HTTP client (libcurl easy interface, one handle per manager, requests
 * signed as docs/admin-api.md says), jobs run per manager (in order, or
 * one APR thread each with -Parallel) and the result rows.
 */
#include "cli/admin.h"
#include "common/alloc.h"
#include "common/status.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_file_info.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <apr_time.h>
#include <curl/curl.h>

#define MGRS_FILE "managers.json"
#define KNOWN_FILE "known_managers.json"
#define MAX_ANSWER (16 * 1024 * 1024)
#define DASH "\xe2\x80\x94"      /* an em dash, UTF-8 */

/* ----------------------------------------------------------- addresses */

void
cli_mgr_close(cli_mgr_t *mgr)
{
    if (mgr->curl != NULL) {
        curl_easy_cleanup((CURL *)mgr->curl);
        mgr->curl = NULL;
    }
}

static apr_status_t
close_cleanup(void *data)
{
    cli_mgr_close(data);
    return APR_SUCCESS;
}


/* 1 when HOST is an unspecified address: only zeros, dots and colons. */
static int
unspecified(const char *host)
{
    const char *p;
    int zeros = 0;

    for (p = host; *p != '\0'; p++) {
        if (*p == '0') {
            zeros++;
        } else if (*p != '.' && *p != ':') {
            return 0;
        }
    }
    return zeros > 0 || strchr(host, ':') != NULL;
}

int
cli_mgr_parse(cli_mgr_t **mgr, const char *spec, int port,
              const char **why, apr_pool_t *pool)
{
    cli_mgr_t *m;
    char *s = apr_pstrdup(pool, spec), *host, *ps = NULL;
    size_t n;
    int64_t p = port;

    *mgr = NULL;
    if (cli_strcasecmp(apr_pstrndup(pool, s, 8), "https://") == 0) {
        *why = apr_psprintf(pool, "'%s': the manager speaks plain HTTP; "
                            "give http://host:port or host:port", spec);
        return -1;
    }
    if (cli_strcasecmp(apr_pstrndup(pool, s, 7), "http://") == 0) {
        s += 7;
    }
    n = strlen(s);
    while (n > 0 && s[n - 1] == '/') {
        s[--n] = '\0';
    }
    if (n == 0 || strchr(s, '/') != NULL || strchr(s, '@') != NULL ||
        strchr(s, ' ') != NULL) {
        *why = apr_psprintf(pool, "'%s' is not a manager address (host, "
                            "host:port, IP, [v6]:port or http://host:port)",
                            spec);
        return -1;
    }
    if (s[0] == '[') {
        char *close = strchr(s, ']');
        if (close == NULL || close == s + 1 ||
            (close[1] != '\0' && close[1] != ':')) {
            *why = apr_psprintf(pool, "'%s': an IPv6 address goes in "
                                "brackets: [v6] or [v6]:port", spec);
            return -1;
        }
        *close = '\0';
        host = s + 1;
        if (close[1] == ':') {
            ps = close + 2;
        }
    } else if (strchr(s, ':') != NULL && strchr(s, ':') == strrchr(s, ':')) {
        host = s;
        ps = strchr(s, ':');
        *ps++ = '\0';
    } else {
        host = s;   /* a name, an IPv4 address or a bare IPv6 address */
    }
    if (host[0] == '\0') {
        *why = apr_psprintf(pool, "'%s' has no host", spec);
        return -1;
    }
    if (ps != NULL && (cli_parse_i64(&p, ps) != 0 || p < 1 || p > 65535)) {
        *why = apr_psprintf(pool, "'%s': the port must be a number from 1 "
                            "to 65535", spec);
        return -1;
    }
    if (unspecified(host)) {
        *why = apr_psprintf(pool, "%s is an unspecified bind address, not a "
                            "manager; give the manager's reachable address",
                            host);
        return -1;
    }
    m = apr_pcalloc(pool, sizeof(*m));
    m->host = host;
    m->port = (int)p;
    if (strchr(host, ':') != NULL) {
        m->address = apr_psprintf(pool, "[%s]:%d", host, m->port);
    } else {
        m->address = apr_psprintf(pool, "%s:%d", host, m->port);
    }
    m->url = apr_pstrcat(pool, "http://", m->address, NULL);
    apr_pool_cleanup_register(pool, m, close_cleanup, apr_pool_cleanup_null);
    *mgr = m;
    return 0;
}

cli_mgr_t *
cli_mgr_by_key(const apr_array_header_t *mgrs, const char *sign_key)
{
    int i;

    for (i = 0; sign_key != NULL && i < mgrs->nelts; i++) {
        cli_mgr_t *m = DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *);
        if (m->sign_key != NULL && strcmp(m->sign_key, sign_key) == 0) {
            return m;
        }
    }
    return NULL;
}

int
cli_admin_name_ok(const char *name)
{
    size_t i, n = strlen(name);

    if (n < 1 || n > 64) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        char c = name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- HTTP */

dkv_status_t
cli_admin_init(void)
{
    static int done;

    if (done) {
        return DKV_OK;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return dkv_error_set(APR_EGENERAL, "cannot initialize libcurl");
    }
    if (dkv_adminauth_init() != DKV_OK) {
        return APR_EGENERAL;
    }
    json_object_seed(0);
    done = 1;
    return DKV_OK;
}

/* The answer being received. */
typedef struct answer {
    char *data;
    size_t len, cap;
    apr_pool_t *pool;
    int too_big;
} answer_t;

static size_t
on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    answer_t *a = userdata;
    size_t n = size * nmemb;

    if (a->len + n + 1 > MAX_ANSWER) {
        a->too_big = 1;
        return 0;
    }
    if (a->len + n + 1 > a->cap) {
        size_t cap = a->cap > 0 ? a->cap : 4096;
        char *d;
        while (cap < a->len + n + 1) {
            cap *= 2;
        }
        d = apr_palloc(a->pool, cap);
        if (a->len > 0) {
            memcpy(d, a->data, a->len);
        }
        a->data = d;
        a->cap = cap;
    }
    memcpy(a->data + a->len, ptr, n);
    a->len += n;
    a->data[a->len] = '\0';
    return n;
}

/* The operator's message for a transport failure RC of MGR. */
static const char *
transport_text(const cli_mgr_t *mgr, CURLcode rc, long oserr,
               const char *detail, int timeout_sec, apr_pool_t *pool)
{
    const char *hint = apr_psprintf(pool, "is dkv-manager running there, "
                                    "and is the management port %d open in "
                                    "its firewall?", mgr->port);

    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        /* 10061: WSAECONNREFUSED (Windows) */
        if (oserr == ECONNREFUSED || oserr == 10061 || oserr == 0) {
            return apr_psprintf(pool, "cannot reach the manager at %s: "
                                "connection refused " DASH " %s",
                                mgr->address, hint);
        }
        return apr_psprintf(pool, "cannot reach the manager at %s: %s "
                            DASH " %s", mgr->address, detail, hint);
    case CURLE_OPERATION_TIMEDOUT:
        return apr_psprintf(pool, "the manager at %s did not answer within "
                            "%d s " DASH " %s (a firewall that drops packets "
                            "looks like this)", mgr->address, timeout_sec,
                            hint);
    case CURLE_COULDNT_RESOLVE_HOST:
        return apr_psprintf(pool, "cannot resolve the host name %s of the "
                            "manager " DASH " check the spelling, or give "
                            "the manager's IP address", mgr->host);
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        return apr_psprintf(pool, "the connection to %s broke (%s) " DASH
                            " is that a dkv-manager, and the management "
                            "port?", mgr->address, detail);
    default:
        return apr_psprintf(pool, "cannot talk to the manager at %s: %s",
                            mgr->address, detail);
    }
}

int
cli_mgr_request(cli_http_t *out, cli_mgr_t *mgr,
                const dkv_admin_key_t *key, const char *method,
                const char *path, const char *query, json_t *body,
                int timeout_sec, apr_pool_t *pool)
{
    CURL *c;
    CURLcode rc;
    struct curl_slist *hdrs = NULL;
    char errbuf[CURL_ERROR_SIZE];
    const char *text = NULL;
    size_t text_len = 0;
    const char *url;
    answer_t a;
    long oserr = 0;
    json_error_t jerr;

    memset(out, 0, sizeof(*out));
    memset(&a, 0, sizeof(a));
    a.pool = pool;
    if (mgr->curl == NULL) {
        mgr->curl = curl_easy_init();
        if (mgr->curl == NULL) {
            out->message = "cannot create a libcurl handle";
            out->transport = 1;
            return 0;
        }
    }
    c = (CURL *)mgr->curl;
    curl_easy_reset(c);
    if (body != NULL) {
        size_t n = json_dumpb(body, NULL, 0, JSON_COMPACT);
        char *buf = apr_palloc(pool, n + 1);
        json_dumpb(body, buf, n, JSON_COMPACT);
        buf[n] = '\0';
        text = buf;
        text_len = n;
    } else if (strcmp(method, "POST") == 0) {
        text = "";
    }
    if (key != NULL) {
        dkv_admin_sig_headers_t h;
        if (mgr->sign_key == NULL) {
            out->message = apr_psprintf(pool, "the key of the manager at %s "
                                        "is unknown", mgr->address);
            return 0;
        }
        if (dkv_admin_sign(&h, key, method, path, query != NULL ? query
                           : "", mgr->sign_key,
                           (int64_t)(apr_time_now() / 1000), text,
                           text_len, pool) != DKV_OK) {
            const char *d = dkv_last_error();
            out->message = apr_psprintf(pool, "cannot sign the request: %s",
                                        d != NULL ? d : "signing failed");
            return 0;
        }
        hdrs = curl_slist_append(hdrs, apr_pstrcat(pool, DKV_ADMIN_HDR_KEY
                                                   ": ", h.key, NULL));
        hdrs = curl_slist_append(hdrs, apr_pstrcat(pool, DKV_ADMIN_HDR_TIME
                                                   ": ", h.timestamp, NULL));
        hdrs = curl_slist_append(hdrs, apr_pstrcat(pool, DKV_ADMIN_HDR_NONCE
                                                   ": ", h.nonce, NULL));
        hdrs = curl_slist_append(hdrs, apr_pstrcat(pool, DKV_ADMIN_HDR_SIG
                                                   ": ", h.signature, NULL));
    }
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    if (text != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    url = apr_pstrcat(pool, mgr->url, path, query != NULL && query[0] != '\0'
                      ? "?" : "", query != NULL ? query : "", NULL);
    errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_sec * 1000L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)timeout_sec * 1000L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "dkv-adminshell");
    if (text != NULL) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)text_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    }
    rc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    /* The handle outlives this frame (it is kept for the next request
     * and cleaned up with the pool): it must not keep pointers to it. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    if (rc != CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
        out->transport = 1;
        out->message = a.too_big
            ? apr_psprintf(pool, "the answer of %s is over %d MiB",
                           mgr->address, MAX_ANSWER / (1024 * 1024))
            : transport_text(mgr, rc, oserr, errbuf[0] != '\0'
                             ? apr_pstrdup(pool, errbuf)
                             : curl_easy_strerror(rc), timeout_sec, pool);
        return 0;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = a.len > 0 ? json_loadb(a.data, a.len, 0, &jerr) : NULL;
    if (out->status >= 200 && out->status < 300) {
        if (out->body == NULL || !json_is_object(out->body)) {
            json_decref(out->body);
            out->body = NULL;
            out->message = apr_psprintf(pool, "%s answered HTTP %ld but not "
                                        "with a JSON object " DASH " is that "
                                        "a dkv-manager, and its management "
                                        "port?", mgr->address, out->status);
            out->status = 0;
            return 0;
        }
        return 1;
    }
    {
        json_t *e = json_object_get(out->body, "error");
        json_t *code = json_object_get(e, "code");
        json_t *msg = json_object_get(e, "message");
        out->code = json_is_string(code)
            ? apr_pstrdup(pool, json_string_value(code)) : NULL;
        if (json_is_string(msg)) {
            out->message = apr_pstrdup(pool, json_string_value(msg));
        } else {
            out->message = apr_psprintf(pool, "%s answered HTTP %ld without "
                                        "a dkv error " DASH " is that a "
                                        "dkv-manager, and its management "
                                        "port?", mgr->address, out->status);
        }
    }
    return 0;
}

const char *
cli_http_why(const cli_http_t *r, apr_pool_t *pool)
{
    const char *m = r->message != NULL ? r->message : "failed";

    if (r->code == NULL) {
        return m;
    }
    if (strcmp(r->code, "Unauthorized") == 0) {
        return apr_psprintf(pool, "%s " DASH " the manager does not accept "
                            "your admin key: add the line of "
                            "Get-DkvAdminKey to its authorized-keys file",
                            m);
    }
    if (strcmp(r->code, "PortInUse") == 0 ||
        strcmp(r->code, "PortOutOfRange") == 0) {
        return apr_psprintf(pool, "%s " DASH " choose unused ports "
                            "(-ClustronPort, -ClientPort) inside the "
                            "manager's ranges, or a smaller -InstanceCount",
                            m);
    }
    if (strcmp(r->code, "StartFailed") == 0) {
        return apr_psprintf(pool, "%s " DASH " see the node's log on that "
                            "machine", m);
    }
    return m;
}

int
cli_mgr_identity(cli_http_t *out, cli_mgr_t *mgr, int timeout_sec,
                 apr_pool_t *pool)
{
    unsigned char raw[64];
    size_t n;
    json_t *s, *b;

    if (!cli_mgr_request(out, mgr, NULL, "GET", "/admin/v1/identity", NULL,
                         NULL, timeout_sec, pool)) {
        json_decref(out->body);
        out->body = NULL;
        return 0;
    }
    s = json_object_get(out->body, "signKey");
    b = json_object_get(out->body, "boxKey");
    if (!json_is_string(s) || !json_is_string(b) ||
        dkv_unb64(raw, sizeof(raw), &n, json_string_value(s)) != DKV_OK ||
        n != DKV_ADMIN_PK_BYTES ||
        dkv_unb64(raw, sizeof(raw), &n, json_string_value(b)) != DKV_OK ||
        n != DKV_BOX_PK_BYTES) {
        out->message = apr_psprintf(pool, "%s answered /admin/v1/identity "
                                    "without valid signKey and boxKey " DASH
                                    " is that a dkv-manager?", mgr->address);
        json_decref(out->body);
        out->body = NULL;
        return 0;
    }
    mgr->sign_key = apr_pstrdup(pool, json_string_value(s));
    mgr->box_key = apr_pstrdup(pool, json_string_value(b));
    json_decref(out->body);
    out->body = NULL;
    return 1;
}

/* -------------------------------------------------------------- files */

/* Path of FILE in the user's dkv directory (made if missing), or NULL. */
static const char *
dir_file(const char *file, apr_pool_t *pool)
{
    const char *dir;

    if (cli_config_dir(&dir, pool) != DKV_OK) {
        return NULL;
    }
    return apr_pstrcat(pool, dir, "/", file, NULL);
}

const char *
cli_mgrs_path(apr_pool_t *pool)
{
    return dir_file(MGRS_FILE, pool);
}

/* Writes ROOT (stolen) to PATH, mode 0600, atomically. */
static dkv_status_t
write_json(const char *path, json_t *root, apr_pool_t *pool)
{
    size_t n = json_dumpb(root, NULL, 0, JSON_INDENT(2) |
                          JSON_PRESERVE_ORDER);
    char *text = apr_palloc(pool, n + 1);

    json_dumpb(root, text, n, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    text[n] = '\n';
    json_decref(root);
    return dkv_write_private_file(path, text, n + 1, pool);
}

/* Loads PATH as a JSON object: *ROOT NULL when the file does not exist. */
static dkv_status_t
read_json(json_t **root, const char *path, apr_pool_t *pool)
{
    apr_finfo_t fi;
    json_error_t err;

    *root = NULL;
    if (path == NULL || apr_stat(&fi, path, APR_FINFO_TYPE, pool)
        != APR_SUCCESS) {
        return DKV_OK;
    }
    *root = json_load_file(path, 0, &err);
    if (*root == NULL || !json_is_object(*root)) {
        fprintf(stderr, "dkv: the file %s is damaged (%s); remove it, or "
                "run Connect-DkvManager -Force\n", path,
                *root == NULL ? err.text : "not an object");
        json_decref(*root);
        *root = NULL;
        return DKV_ECORRUPT;
    }
    return DKV_OK;
}

dkv_status_t
cli_mgrs_load(apr_array_header_t **mgrs, apr_pool_t *pool)
{
    const char *path = cli_mgrs_path(pool);
    json_t *root, *arr;
    dkv_status_t rv = read_json(&root, path, pool);
    size_t i;

    *mgrs = NULL;
    if (rv != DKV_OK || root == NULL) {
        return rv;
    }
    arr = json_object_get(root, "Managers");
    *mgrs = apr_array_make(pool, 4, sizeof(cli_mgr_t *));
    for (i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        json_t *a = json_object_get(e, "Address");
        json_t *s = json_object_get(e, "SignKey");
        json_t *b = json_object_get(e, "BoxKey");
        cli_mgr_t *m;
        const char *why;

        if (!json_is_string(a) || !json_is_string(s) || !json_is_string(b)
            || cli_mgr_parse(&m, json_string_value(a), CLI_MGR_PORT, &why,
                             pool) != 0) {
            fprintf(stderr, "dkv: the managers file %s has a bad entry; "
                    "run Connect-DkvManager -Force\n", path);
            json_decref(root);
            *mgrs = NULL;
            return DKV_ECORRUPT;
        }
        m->sign_key = apr_pstrdup(pool, json_string_value(s));
        m->box_key = apr_pstrdup(pool, json_string_value(b));
        APR_ARRAY_PUSH(*mgrs, cli_mgr_t *) = m;
    }
    json_decref(root);
    if ((*mgrs)->nelts == 0) {
        *mgrs = NULL;
    }
    return DKV_OK;
}

dkv_status_t
cli_mgrs_save(const apr_array_header_t *mgrs, apr_pool_t *pool)
{
    const char *path = cli_mgrs_path(pool);
    json_t *root = json_object(), *arr = json_array();
    int i;

    if (path == NULL) {
        json_decref(root);
        json_decref(arr);
        return dkv_error_set(DKV_EINVAL, "no user directory (set HOME)");
    }
    for (i = 0; i < mgrs->nelts; i++) {
        const cli_mgr_t *m = DKV_ARRAY_IDX(mgrs, i, const cli_mgr_t *);
        json_t *e = json_object();
        json_object_set_new(e, "Address", json_string(m->address));
        json_object_set_new(e, "SignKey", json_string(m->sign_key));
        json_object_set_new(e, "BoxKey", json_string(m->box_key));
        json_array_append_new(arr, e);
    }
    json_object_set_new(root, "Managers", arr);
    json_object_set_new(root, "ConnectedAtUtc",
                        json_string(cli_time_utc(apr_time_now(), pool)));
    return write_json(path, root, pool);
}

int
cli_known_get(const char **sign, const char **box, const char *address,
              apr_pool_t *pool)
{
    json_t *root, *e, *s, *b;
    int found = 0;

    if (read_json(&root, dir_file(KNOWN_FILE, pool), pool) != DKV_OK ||
        root == NULL) {
        return 0;
    }
    e = json_object_get(root, address);
    s = json_object_get(e, "SignKey");
    b = json_object_get(e, "BoxKey");
    if (json_is_string(s) && json_is_string(b)) {
        *sign = apr_pstrdup(pool, json_string_value(s));
        *box = apr_pstrdup(pool, json_string_value(b));
        found = 1;
    }
    json_decref(root);
    return found;
}

dkv_status_t
cli_known_put(const apr_array_header_t *mgrs, apr_pool_t *pool)
{
    const char *path = dir_file(KNOWN_FILE, pool);
    json_t *root;
    int i;

    if (path == NULL) {
        return DKV_EINVAL;
    }
    if (read_json(&root, path, pool) != DKV_OK || root == NULL) {
        root = json_object();
    }
    for (i = 0; i < mgrs->nelts; i++) {
        const cli_mgr_t *m = DKV_ARRAY_IDX(mgrs, i, const cli_mgr_t *);
        json_t *e = json_object();
        json_object_set_new(e, "SignKey", json_string(m->sign_key));
        json_object_set_new(e, "BoxKey", json_string(m->box_key));
        json_object_set_new(e, "SeenAtUtc",
                            json_string(cli_time_utc(apr_time_now(), pool)));
        json_object_set_new(root, m->address, e);
    }
    return write_json(path, root, pool);
}

/* ------------------------------------------------------- command setup */

int
cli_admin_managers(cli_ctx_t *ctx, apr_array_header_t **mgrs)
{
    apr_array_header_t *specs = cli_list(ctx, "Managers");
    int port = (int)cli_int(ctx, "Port", CLI_MGR_PORT);
    int timeout = (int)cli_int(ctx, "TimeoutSec", 30);
    int i, j;

    *mgrs = NULL;
    if (cli_admin_init() != DKV_OK) {
        cli_error(ctx, "%s", cli_status_text(APR_EGENERAL, ctx->pool));
        return CLI_EXIT_FAILED;
    }
    if (specs == NULL) {
        if (cli_mgrs_load(mgrs, ctx->pool) != DKV_OK) {
            return CLI_EXIT_FAILED;
        }
        if (*mgrs == NULL) {
            cli_error(ctx, "No managers connected. Use Connect-DkvManager "
                      "or specify -Managers.");
            return CLI_EXIT_NOTCONN;
        }
    } else {
        *mgrs = apr_array_make(ctx->pool, specs->nelts,
                               sizeof(cli_mgr_t *));
        for (i = 0; i < specs->nelts; i++) {
            cli_mgr_t *m;
            const char *why;
            int dup = 0;

            if (cli_mgr_parse(&m, DKV_ARRAY_IDX(specs, i, const char *),
                              port, &why, ctx->pool) != 0) {
                cli_error(ctx, "-Managers: %s", why);
                return CLI_EXIT_USAGE;
            }
            for (j = 0; j < (*mgrs)->nelts; j++) {
                dup |= strcmp(DKV_ARRAY_IDX(*mgrs, j, cli_mgr_t *)->address,
                              m->address) == 0;
            }
            if (!dup) {
                APR_ARRAY_PUSH(*mgrs, cli_mgr_t *) = m;
            }
        }
        /* Their keys, now (a known address must still have its keys). */
        for (i = 0; i < (*mgrs)->nelts; i++) {
            cli_mgr_t *m = DKV_ARRAY_IDX(*mgrs, i, cli_mgr_t *);
            const char *ks, *kb;
            cli_http_t r;

            if (!cli_mgr_identity(&r, m, timeout, ctx->pool)) {
                m->error = r.message;
                m->unreachable = r.transport;
                json_decref(r.body);
                continue;
            }
            if (cli_known_get(&ks, &kb, m->address, ctx->pool) &&
                (strcmp(ks, m->sign_key) != 0 ||
                 strcmp(kb, m->box_key) != 0)) {
                m->error = apr_psprintf(ctx->pool, "the keys of the manager "
                    "at %s changed since you connected to it (it was "
                    "reinstalled, or another machine answers at that "
                    "address); if you trust it, run Connect-DkvManager "
                    "-Managers %s -Force", m->address, m->address);
                m->sign_key = NULL;
            }
        }
    }
    return CLI_EXIT_OK;
}

int
cli_admin_key(cli_ctx_t *ctx, dkv_admin_key_t **key)
{
    const char *dir;
    dkv_status_t rv;
    int created = 0;

    if (cli_admin_init() != DKV_OK) {
        cli_error(ctx, "%s", cli_status_text(APR_EGENERAL, ctx->pool));
        return CLI_EXIT_FAILED;
    }
    rv = cli_config_dir(&dir, ctx->pool);
    if (rv != DKV_OK) {
        cli_error(ctx, "no dkv directory for this user (set HOME or "
                  "XDG_CONFIG_HOME)");
        return CLI_EXIT_FAILED;
    }
    rv = dkv_admin_key_load(key, &created, dir, ctx->pool);
    if (rv != DKV_OK) {
        cli_error(ctx, "cannot load your admin key: %s",
                  cli_status_text(rv, ctx->pool));
        return CLI_EXIT_FAILED;
    }
    if (created) {
        fprintf(stderr, "dkv: made your admin key pair %s/admin.key; "
                "managers trust it once its line (dkv Get-DkvAdminKey) is "
                "in their authorized-keys file\n", dir);
    }
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------------- rows */

void
cli_row(json_t *rows, const char *manager, const char *action,
        const char *result, const char *message)
{
    json_t *r = json_object();

    json_object_set_new(r, "Manager", json_string(manager));
    json_object_set_new(r, "Action", json_string(action));
    json_object_set_new(r, "Result", json_string(result));
    if (message != NULL && strchr(message, '\n') != NULL) {
        /* One line per row: the lines of a node's log joined by " | ". */
        size_t n = strlen(message), i, o = 0;
        char *flat = dkv_malloc(n * 3 + 1);

        for (i = 0; flat != NULL && i < n; i++) {
            if (message[i] == '\n') {
                if (i + 1 < n) {
                    memcpy(flat + o, " | ", 3);
                    o += 3;
                }
            } else if (message[i] != '\r') {
                flat[o++] = message[i];
            }
        }
        if (flat != NULL) {
            flat[o] = '\0';
        }
        json_object_set_new(r, "Message", json_string(flat != NULL ? flat
                                                      : message));
        dkv_free(flat);
    } else {
        json_object_set_new(r, "Message", message != NULL
                            ? json_string(message) : json_null());
    }
    json_array_append_new(rows, r);
}

void
cli_mgr_failed_row(json_t *rows, const cli_mgr_t *mgr, const char *action)
{
    cli_row(rows, mgr->address, action, "FAILED", mgr->error);
}

int
cli_rows_exit(const json_t *rows, int unreachable)
{
    size_t i;

    for (i = 0; i < json_array_size(rows); i++) {
        json_t *r = json_object_get(json_array_get(rows, i), "Result");
        if (!json_is_string(r) ||
            strcmp(json_string_value(r), "SUCCESS") != 0) {
            return unreachable ? CLI_EXIT_CONNECT : CLI_EXIT_FAILED;
        }
    }
    return unreachable ? CLI_EXIT_CONNECT : CLI_EXIT_OK;
}

/* ---------------------------------------------------------------- jobs */

apr_array_header_t *
cli_jobs_make(cli_ctx_t *ctx, const apr_array_header_t *mgrs,
              cli_job_fn *fn, void *arg, const char *action,
              const dkv_admin_key_t *key)
{
    apr_array_header_t *jobs = apr_array_make(ctx->pool, mgrs->nelts,
                                              sizeof(cli_job_t *));
    int i;

    for (i = 0; i < mgrs->nelts; i++) {
        cli_job_t *j = apr_pcalloc(ctx->pool, sizeof(*j));
        j->mgr = DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *);
        j->arg = arg;
        j->action = action;
        j->key = key;
        j->timeout_sec = (int)cli_int(ctx, "TimeoutSec", 30);
        j->fn = fn;
        j->rows = json_array();
        /* Its libcurl handle, made here on the main thread:
         * curl_easy_init touches libcurl's global state. */
        if (j->mgr->curl == NULL) {
            j->mgr->curl = curl_easy_init();
        }
        if (apr_pool_create(&j->pool, ctx->pool) != APR_SUCCESS) {
            j->pool = ctx->pool;
        }
        APR_ARRAY_PUSH(jobs, cli_job_t *) = j;
    }
    return jobs;
}

/* Runs one job: a manager that could not be resolved fails at once. */
static void
run_one(cli_job_t *j)
{
    if (j->mgr->error != NULL && !j->own_errors) {
        cli_mgr_failed_row(j->rows, j->mgr, j->action);
        j->unreachable = j->mgr->unreachable;
        j->ok = 0;
        return;
    }
    j->ok = j->fn(j);
}

static void *APR_THREAD_FUNC
job_thread(apr_thread_t *t, void *data)
{
    run_one(data);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

int
cli_jobs_run(cli_ctx_t *ctx, apr_array_header_t *jobs, json_t *rows)
{
    int parallel = cli_has(ctx, "Parallel") && jobs->nelts > 1;
    int failfast = cli_has(ctx, "FailFast");
    int i, all = 1, stop = 0;
    apr_thread_t **th = apr_pcalloc(ctx->pool, sizeof(*th) *
                                    (size_t)(jobs->nelts + 1));

    for (i = 0; i < jobs->nelts; i++) {
        cli_job_t *j = DKV_ARRAY_IDX(jobs, i, cli_job_t *);

        if (stop) {
            cli_row(j->rows, j->mgr->address, j->action, "SKIPPED",
                    "not tried: an earlier manager failed (-FailFast)");
            j->ok = 0;
            continue;
        }
        if (parallel && apr_thread_create(&th[i], NULL, job_thread, j,
                                          ctx->pool) == APR_SUCCESS) {
            continue;
        }
        th[i] = NULL;
        run_one(j);
        if (!j->ok && failfast) {
            stop = 1;
        }
    }
    for (i = 0; i < jobs->nelts; i++) {
        cli_job_t *j = DKV_ARRAY_IDX(jobs, i, cli_job_t *);
        apr_status_t trv;
        size_t k;

        if (th[i] != NULL) {
            apr_thread_join(&trv, th[i]);
        }
        for (k = 0; k < json_array_size(j->rows); k++) {
            json_array_append(rows, json_array_get(j->rows, k));
        }
        json_decref(j->rows);
        j->rows = NULL;
        all &= j->ok;
    }
    return all;
}
