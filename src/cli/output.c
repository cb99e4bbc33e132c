/*
 * output.c -- how `dkv` prints results: PowerShell-like tables by default
 * ("Name : Value" lists for one object, columns for several), JSON with
 * -Json; plus the shared renderings of times, byte values and statuses.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>

#define JSON_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER | \
                    JSON_REAL_PRECISION(10))

/* ------------------------------------------------------------- values */

/* Renders a real without trailing zeros, at most 4 decimals. */
static const char *
real_text(double v, apr_pool_t *pool)
{
    char *s = apr_psprintf(pool, "%.4f", v);
    size_t n = strlen(s);

    while (n > 0 && s[n - 1] == '0') {
        s[--n] = '\0';
    }
    if (n > 0 && s[n - 1] == '.') {
        s[--n] = '\0';
    }
    return s;
}

const char *
cli_cell(const json_t *val, apr_pool_t *pool)
{
    size_t i;
    const char *out;

    if (val == NULL) {
        return "";
    }
    switch (json_typeof(val)) {
    case JSON_STRING:
        return json_string_value(val);
    case JSON_INTEGER:
        return apr_psprintf(pool, "%" APR_INT64_T_FMT,
                            (apr_int64_t)json_integer_value(val));
    case JSON_REAL:
        return real_text(json_real_value(val), pool);
    case JSON_TRUE:
        return "True";
    case JSON_FALSE:
        return "False";
    case JSON_NULL:
        return "";
    case JSON_ARRAY:
        out = "{";
        for (i = 0; i < json_array_size(val); i++) {
            if (i == 16) {
                out = apr_pstrcat(pool, out, ", ...", NULL);
                break;
            }
            out = apr_pstrcat(pool, out, i > 0 ? ", " : "",
                              cli_cell(json_array_get(val, i), pool), NULL);
        }
        return apr_pstrcat(pool, out, "}", NULL);
    case JSON_OBJECT: {
        const char *k;
        json_t *v;
        int first = 1;

        out = "{";
        json_object_foreach((json_t *)val, k, v) {
            out = apr_pstrcat(pool, out, first ? "" : "; ", k, "=",
                              cli_cell(v, pool), NULL);
            first = 0;
        }
        return apr_pstrcat(pool, out, "}", NULL);
    }
    }
    return "";
}

json_t *
cli_json_bytes(const void *data, size_t len)
{
    json_t *arr;
    size_t i;

    if (data == NULL) {
        return json_null();
    }
    if (memchr(data, '\0', len) == NULL) {
        json_t *s = json_stringn((const char *)data, len);
        if (s != NULL) {
            return s;   /* valid UTF-8 */
        }
    }
    arr = json_array();
    for (i = 0; i < len; i++) {
        json_array_append_new(arr,
            json_integer(((const unsigned char *)data)[i]));
    }
    return arr;
}

const char *
cli_time_utc(apr_time_t t, apr_pool_t *pool)
{
    apr_time_exp_t x;

    apr_time_exp_gmt(&x, t);
    return apr_psprintf(pool, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                        x.tm_year + 1900, x.tm_mon + 1, x.tm_mday,
                        x.tm_hour, x.tm_min, x.tm_sec, x.tm_usec / 1000);
}

const char *
cli_time_local(apr_time_t t, apr_pool_t *pool)
{
    apr_time_exp_t x;

    apr_time_exp_lt(&x, t);
    return apr_psprintf(pool, "%02d:%02d:%02d.%03d", x.tm_hour, x.tm_min,
                        x.tm_sec, x.tm_usec / 1000);
}

const char *
cli_span_text(int64_t ms, apr_pool_t *pool)
{
    int64_t s = ms / 1000, frac = ms % 1000;
    int64_t d = s / 86400;
    const char *head = d > 0 ? apr_psprintf(pool, "%" APR_INT64_T_FMT ".",
                                            (apr_int64_t)d)
                             : "";
    const char *tail = frac > 0 ? apr_psprintf(pool, ".%03d",
                                               (int)frac) : "";

    s %= 86400;
    return apr_psprintf(pool, "%s%02d:%02d:%02d%s", head, (int)(s / 3600),
                        (int)(s / 60 % 60), (int)(s % 60), tail);
}

json_t *
cli_result(const char *store)
{
    json_t *o = json_object();

    json_object_set_new(o, "StoreName",
                        store != NULL ? json_string(store) : json_null());
    return o;
}

const char *
cli_status_text(dkv_status_t status, apr_pool_t *pool)
{
    const char *detail = dkv_last_error();

    if (detail != NULL && detail[0] != '\0') {
        return apr_pstrdup(pool, detail);
    }
    return dkv_strerror(status);
}

void
cli_set_outcome(json_t *obj, dkv_status_t status)
{
    json_object_set_new(obj, "Success", json_boolean(status == DKV_OK));
    if (status == DKV_OK) {
        json_object_set_new(obj, "Error", json_null());
    } else {
        const char *d = dkv_last_error();
        json_object_set_new(obj, "Error", json_string(
            (d != NULL && d[0] != '\0') ? d : dkv_strerror(status)));
    }
}

int
cli_exit_for(dkv_status_t status)
{
    switch (status) {
    case DKV_OK:
        return CLI_EXIT_OK;
    case DKV_ETRANSPORT:
    case DKV_ETIMEOUT:
    case DKV_EUNAVAILABLE:
    case DKV_EUNAUTHORIZED:
        return CLI_EXIT_CONNECT;
    default:
        return CLI_EXIT_FAILED;
    }
}

/* -------------------------------------------------------------- tables */

static void
print_list(const json_t *obj, apr_pool_t *pool)
{
    const char *k;
    json_t *v;
    size_t w = 0;

    json_object_foreach((json_t *)obj, k, v) {
        if (strlen(k) > w) {
            w = strlen(k);
        }
    }
    fputc('\n', stdout);
    json_object_foreach((json_t *)obj, k, v) {
        fprintf(stdout, "%-*s : %s\n", (int)w, k, cli_cell(v, pool));
    }
    fputc('\n', stdout);
}

static void
print_columns(const json_t *arr, apr_pool_t *pool)
{
    const json_t *first = json_array_get(arr, 0);
    size_t ncol = json_object_size(first), i, c;
    const char **names = apr_pcalloc(pool, sizeof(char *) * (ncol + 1));
    size_t *width = apr_pcalloc(pool, sizeof(size_t) * (ncol + 1));
    const char *k;
    json_t *v;

    c = 0;
    json_object_foreach((json_t *)first, k, v) {
        names[c] = k;
        width[c] = strlen(k);
        c++;
    }
    for (i = 0; i < json_array_size(arr); i++) {
        for (c = 0; c < ncol; c++) {
            size_t n = strlen(cli_cell(json_object_get(
                json_array_get(arr, i), names[c]), pool));
            if (n > width[c]) {
                width[c] = n;
            }
        }
    }
    fputc('\n', stdout);
    for (c = 0; c < ncol; c++) {
        fprintf(stdout, "%-*s%s", c + 1 < ncol ? (int)width[c] : 0,
                names[c], c + 1 < ncol ? " " : "\n");
    }
    for (c = 0; c < ncol; c++) {
        size_t j;
        for (j = 0; j < strlen(names[c]); j++) {
            fputc('-', stdout);
        }
        if (c + 1 < ncol) {
            for (; j <= width[c]; j++) {
                fputc(' ', stdout);
            }
        }
    }
    fputc('\n', stdout);
    for (i = 0; i < json_array_size(arr); i++) {
        for (c = 0; c < ncol; c++) {
            const char *cell = cli_cell(json_object_get(
                json_array_get(arr, i), names[c]), pool);
            fprintf(stdout, "%-*s%s", c + 1 < ncol ? (int)width[c] : 0,
                    cell, c + 1 < ncol ? " " : "\n");
        }
    }
    fputc('\n', stdout);
}

void
cli_print(const cli_ctx_t *ctx, json_t *obj)
{
    if (obj == NULL) {
        return;
    }
    if (ctx->json) {
        json_dumpf(obj, stdout, JSON_FLAGS | JSON_ENCODE_ANY);
        fputc('\n', stdout);
    } else if (json_is_object(obj)) {
        print_list(obj, ctx->pool);
    } else if (json_is_array(obj) && json_array_size(obj) > 0 &&
               json_is_object(json_array_get(obj, 0))) {
        print_columns(obj, ctx->pool);
    } else {
        fprintf(stdout, "%s\n", cli_cell(obj, ctx->pool));
    }
    fflush(stdout);
    json_decref(obj);
}
