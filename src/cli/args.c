/*
 * args.c -- PowerShell-style argument binding for `dkv`: -Name value
 * (names and unique prefixes, case-insensitive, -Name:value too),
 * switches, positional parameters, comma lists, hashtables and TimeSpans,
 * with ranges checked before a command runs.  Also the interactive
 * shell's word splitter.
 */
#include "cli/cli.h"
#include "common/alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

/* ------------------------------------------------------------- helpers */

static int
lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

int
cli_strcasecmp(const char *a, const char *b)
{
    while (*a != '\0' && lower((unsigned char)*a) == lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return lower((unsigned char)*a) - lower((unsigned char)*b);
}

/* 1 when PREFIX (length N) starts NAME, case-insensitively. */
static int
prefix_of(const char *prefix, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (name[i] == '\0' ||
            lower((unsigned char)prefix[i]) != lower((unsigned char)name[i])) {
            return 0;
        }
    }
    return 1;
}

void
cli_error(const cli_ctx_t *ctx, const char *fmt, ...)
{
    va_list ap;

    fputs("dkv: ", stderr);
    if (ctx != NULL && ctx->cmd != NULL) {
        fprintf(stderr, "%s: ", ctx->cmd->name);
    }
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* S without surrounding whitespace and one pair of matching quotes. */
static char *
unquote(const char *s, apr_pool_t *pool)
{
    size_t n;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    if (n >= 2 && (s[0] == '\'' || s[0] == '"') && s[n - 1] == s[0]) {
        return apr_pstrmemdup(pool, s + 1, n - 2);
    }
    return apr_pstrmemdup(pool, s, n);
}

/* Splits S at SEP outside quotes into unquoted pieces (char *). */
static apr_array_header_t *
split(const char *s, char sep, apr_pool_t *pool)
{
    apr_array_header_t *out = apr_array_make(pool, 8, sizeof(char *));
    const char *start = s;
    char quote = 0;

    for (;; s++) {
        if (quote != 0) {
            if (*s == quote) {
                quote = 0;
            } else if (*s == '\0') {
                quote = 0;
                s--;
            }
            continue;
        }
        if (*s == '\'' || *s == '"') {
            quote = *s;
        } else if (*s == sep || *s == '\0') {
            char *piece = unquote(apr_pstrmemdup(pool, start,
                                                 (size_t)(s - start)), pool);
            if (piece[0] != '\0' || *s == sep) {
                APR_ARRAY_PUSH(out, char *) = piece;
            }
            if (*s == '\0') {
                break;
            }
            start = s + 1;
        }
    }
    return out;
}

/* ------------------------------------------------------- value parsers */

int
cli_parse_i64(int64_t *out, const char *s)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int
cli_parse_u64(uint64_t *out, const char *s)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int
cli_parse_span(int64_t *ms, const char *s)
{
    char *end;
    double v, mult = 1000.0;
    const char *p;
    int colons = 0;

    if (s == NULL || *s == '\0' || *s == '-') {
        return -1;
    }
    for (p = s; *p != '\0'; p++) {
        colons += (*p == ':');
    }
    if (colons > 0) {
        /* [d.]hh:mm:ss[.fff] or mm:ss */
        long long part[3] = { 0, 0, 0 };
        long long days = 0;
        double secs;
        int i, n = colons + 1;
        const char *dot = strchr(s, '.');
        const char *colon = strchr(s, ':');

        if (colons > 2) {
            return -1;
        }
        if (dot != NULL && dot < colon) {
            errno = 0;
            days = strtoll(s, &end, 10);
            if (errno != 0 || end != dot || days < 0) {
                return -1;
            }
            s = dot + 1;
        }
        for (i = 0; i < n - 1; i++) {
            errno = 0;
            part[i] = strtoll(s, &end, 10);
            if (errno != 0 || *end != ':' || part[i] < 0 || end == s) {
                return -1;
            }
            s = end + 1;
        }
        errno = 0;
        secs = strtod(s, &end);
        if (errno != 0 || *end != '\0' || secs < 0 || end == s) {
            return -1;
        }
        if (n == 3) {
            v = (double)days * 86400.0 + (double)part[0] * 3600.0 +
                (double)part[1] * 60.0 + secs;
        } else {
            v = (double)part[0] * 60.0 + secs;
        }
        if (v > 9.2e15) {
            return -1;
        }
        *ms = (int64_t)(v * 1000.0 + 0.5);
        return 0;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || v < 0) {
        return -1;
    }
    if (*end == '\0' || cli_strcasecmp(end, "s") == 0 ||
        cli_strcasecmp(end, "sec") == 0) {
        mult = 1000.0;
    } else if (cli_strcasecmp(end, "ms") == 0) {
        mult = 1.0;
    } else if (cli_strcasecmp(end, "m") == 0 ||
               cli_strcasecmp(end, "min") == 0) {
        mult = 60000.0;
    } else if (cli_strcasecmp(end, "h") == 0) {
        mult = 3600000.0;
    } else if (cli_strcasecmp(end, "d") == 0) {
        mult = 86400000.0;
    } else {
        return -1;
    }
    if (v * mult > 9.2e15) {
        return -1;
    }
    *ms = (int64_t)(v * mult + 0.5);
    return 0;
}

/* ------------------------------------------------------------ splitting */

apr_array_header_t *
cli_split_line(const char *line, apr_pool_t *pool)
{
    apr_array_header_t *words = apr_array_make(pool, 8, sizeof(char *));
    size_t cap = strlen(line) + 1, n;
    char *buf = apr_palloc(pool, cap);
    const char *s = line;

    for (;;) {
        int have = 0, braces = 0;
        char quote = 0;

        while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
            s++;
        }
        if (*s == '\0' || *s == '#') {
            break;
        }
        n = 0;
        for (; *s != '\0'; s++) {
            if (quote != 0) {
                if (*s == quote) {
                    quote = 0;
                    if (braces > 0) {
                        buf[n++] = *s;
                    }
                } else {
                    buf[n++] = *s;
                }
                continue;
            }
            if (braces == 0 && (*s == ' ' || *s == '\t' || *s == '\r' ||
                                *s == '\n')) {
                break;
            }
            if (*s == '\'' || *s == '"') {
                quote = *s;
                have = 1;
                if (braces > 0) {
                    buf[n++] = *s;
                }
                continue;
            }
            if (*s == '@' && s[1] == '{') {
                braces++;
                buf[n++] = *s++;
            } else if (*s == '}' && braces > 0) {
                braces--;
            }
            buf[n++] = *s;
        }
        if (n > 0 || have) {
            APR_ARRAY_PUSH(words, char *) = apr_pstrmemdup(pool, buf, n);
        }
    }
    return words;
}

/* ------------------------------------------------------------- binding */

int
cli_param_index(const cli_ctx_t *ctx, const char *name)
{
    int i;

    for (i = 0; i < ctx->nparams; i++) {
        const cli_param_t *p = &ctx->cmd->params[i];
        if (cli_strcasecmp(p->name, name) == 0 ||
            (p->alias != NULL && cli_strcasecmp(p->alias, name) == 0)) {
            return i;
        }
    }
    return -1;
}

/* The parameter named by WORD (without its dash, length N): exact name or
 * alias first, else a unique prefix.  -1: none; -2: ambiguous; -3: the
 * common -Json; -4: -WhatIf; -5: -Confirm (accepted, ignored). */
static int
find_param(const cli_ctx_t *ctx, const char *word, size_t n)
{
    int i, found = -1, count = 0;
    char *w = apr_pstrmemdup(ctx->pool, word, n);

    if (cli_strcasecmp(w, "Json") == 0) {
        return -3;
    }
    if (ctx->cmd->whatif && cli_strcasecmp(w, "WhatIf") == 0) {
        return -4;
    }
    if (ctx->cmd->whatif && cli_strcasecmp(w, "Confirm") == 0) {
        return -5;
    }
    i = cli_param_index(ctx, w);
    if (i >= 0) {
        return i;
    }
    for (i = 0; i < ctx->nparams; i++) {
        const cli_param_t *p = &ctx->cmd->params[i];
        if (prefix_of(word, n, p->name) ||
            (p->alias != NULL && prefix_of(word, n, p->alias))) {
            found = i;
            count++;
        }
    }
    if (count > 1) {
        return -2;
    }
    return found;
}

/* Parses and checks the value of parameter I. */
static int
take_value(cli_ctx_t *ctx, int i, const char *value)
{
    const cli_param_t *p = &ctx->cmd->params[i];
    apr_array_header_t *pieces;
    int64_t v;
    uint64_t u;
    int j;

    if (ctx->raw[i] != NULL) {
        cli_error(ctx, "parameter -%s given twice", p->name);
        return CLI_EXIT_USAGE;
    }
    ctx->raw[i] = value;
    switch (p->kind) {
    case CLI_STR:
        break;
    case CLI_INT:
        if (cli_parse_i64(&v, value) != 0) {
            cli_error(ctx, "-%s: '%s' is not an integer", p->name, value);
            return CLI_EXIT_USAGE;
        }
        if (v < p->min || v > p->max) {
            cli_error(ctx, "-%s: %s is outside the range %lld..%lld",
                      p->name, value, (long long)p->min, (long long)p->max);
            return CLI_EXIT_USAGE;
        }
        ctx->ival[i] = v;
        break;
    case CLI_U64:
        if (cli_parse_u64(&u, value) != 0 || u == 0) {
            cli_error(ctx, "-%s: '%s' is not a lease id (a decimal number "
                      "from 1 to 18446744073709551615)", p->name, value);
            return CLI_EXIT_USAGE;
        }
        ctx->ival[i] = (int64_t)u;
        break;
    case CLI_SPAN:
        if (cli_parse_span(&v, value) != 0) {
            cli_error(ctx, "-%s: '%s' is not a time span (use hh:mm:ss, "
                      "30s, 5m, 1h, 500ms or a number of seconds)",
                      p->name, value);
            return CLI_EXIT_USAGE;
        }
        if (v < p->min || v > p->max) {
            cli_error(ctx, "-%s: %s is outside the range %s..%s", p->name,
                      value, cli_span_text(p->min, ctx->pool),
                      cli_span_text(p->max, ctx->pool));
            return CLI_EXIT_USAGE;
        }
        ctx->ival[i] = v;
        break;
    case CLI_LIST:
        ctx->list[i] = apr_array_make(ctx->pool, 8, sizeof(char *));
        pieces = split(value, ',', ctx->pool);
        for (j = 0; j < pieces->nelts; j++) {
            char *s = DKV_ARRAY_IDX(pieces, j, char *);
            if (s[0] == '\0') {
                cli_error(ctx, "-%s: empty element in '%s'", p->name, value);
                return CLI_EXIT_USAGE;
            }
            APR_ARRAY_PUSH(ctx->list[i], char *) = s;
        }
        if (ctx->list[i]->nelts == 0) {
            cli_error(ctx, "-%s: the list is empty", p->name);
            return CLI_EXIT_USAGE;
        }
        break;
    case CLI_MAP: {
        size_t n = strlen(value);
        char sep = ',';

        if (n >= 3 && value[0] == '@' && value[1] == '{' &&
            value[n - 1] == '}') {
            value = apr_pstrmemdup(ctx->pool, value + 2, n - 3);
            sep = ';';
        }
        ctx->list[i] = apr_array_make(ctx->pool, 8, sizeof(cli_pair_t));
        pieces = split(value, sep, ctx->pool);
        for (j = 0; j < pieces->nelts; j++) {
            char *s = DKV_ARRAY_IDX(pieces, j, char *);
            char *eq = strchr(s, '=');
            cli_pair_t *pair;

            if (s[0] == '\0' && sep == ';') {
                continue;
            }
            if (eq == NULL) {
                cli_error(ctx, "-%s: '%s' is not key=value", p->name, s);
                return CLI_EXIT_USAGE;
            }
            *eq = '\0';
            pair = apr_array_push(ctx->list[i]);
            pair->key = unquote(s, ctx->pool);
            pair->value = unquote(eq + 1, ctx->pool);
            if (pair->key[0] == '\0') {
                cli_error(ctx, "-%s: empty key in '%s'", p->name, value);
                return CLI_EXIT_USAGE;
            }
        }
        if (ctx->list[i]->nelts == 0) {
            cli_error(ctx, "-%s: no items given", p->name);
            return CLI_EXIT_USAGE;
        }
        break;
    }
    case CLI_SWITCH:
        break;
    }
    return CLI_EXIT_OK;
}

/* The value of a switch given as -Name:VALUE. */
static int
switch_value(const char *v)
{
    return !(cli_strcasecmp(v, "$false") == 0 ||
             cli_strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0);
}

int
cli_bind(cli_ctx_t *ctx, int argc, const char *const *argv)
{
    const cli_param_t *params = ctx->cmd->params;
    int a, i, rc;

    for (ctx->nparams = 0; params[ctx->nparams].name != NULL;
         ctx->nparams++) {
    }
    ctx->raw = apr_pcalloc(ctx->pool, sizeof(char *) * (ctx->nparams + 1));
    ctx->ival = apr_pcalloc(ctx->pool, sizeof(int64_t) * (ctx->nparams + 1));
    ctx->list = apr_pcalloc(ctx->pool,
                            sizeof(*ctx->list) * (ctx->nparams + 1));

    for (a = 0; a < argc; a++) {
        const char *w = argv[a];
        const char *inline_val = NULL;
        size_t n;

        if (w[0] == '-' && ((w[1] >= 'A' && w[1] <= 'Z') ||
                            (w[1] >= 'a' && w[1] <= 'z'))) {
            const char *colon = strchr(w, ':');
            n = colon != NULL ? (size_t)(colon - w - 1) : strlen(w + 1);
            if (colon != NULL) {
                inline_val = colon + 1;
            }
            i = find_param(ctx, w + 1, n);
            if (i == -3 || i == -4 || i == -5) {
                int on = inline_val == NULL || switch_value(inline_val);
                if (i == -3) {
                    ctx->json = on;
                } else if (i == -4) {
                    ctx->whatif = on;
                }
                continue;
            }
            if (i == -2) {
                cli_error(ctx, "parameter '%s' is ambiguous; run 'dkv help "
                          "%s'", w, ctx->cmd->name);
                return CLI_EXIT_USAGE;
            }
            if (i < 0) {
                cli_error(ctx, "no parameter '%s'; run 'dkv help %s'", w,
                          ctx->cmd->name);
                return CLI_EXIT_USAGE;
            }
            if (params[i].kind == CLI_SWITCH) {
                if (inline_val == NULL || switch_value(inline_val)) {
                    if ((rc = take_value(ctx, i, "1")) != 0) {
                        return rc;
                    }
                }
                continue;
            }
            if (inline_val == NULL) {
                if (a + 1 >= argc) {
                    cli_error(ctx, "parameter -%s needs a value",
                              params[i].name);
                    return CLI_EXIT_USAGE;
                }
                inline_val = argv[++a];
            }
            /* "a, b" split by the shell: a trailing comma continues. */
            while ((params[i].kind == CLI_LIST || params[i].kind == CLI_MAP)
                   && inline_val[0] != '\0'
                   && inline_val[strlen(inline_val) - 1] == ','
                   && a + 1 < argc) {
                inline_val = apr_pstrcat(ctx->pool, inline_val, argv[++a],
                                         NULL);
            }
            if ((rc = take_value(ctx, i, inline_val)) != 0) {
                return rc;
            }
            continue;
        }
        /* Positional: the lowest free position. */
        {
            int best = -1;
            for (i = 0; i < ctx->nparams; i++) {
                if (params[i].position >= 0 && ctx->raw[i] == NULL &&
                    (best < 0 || params[i].position < params[best].position)) {
                    best = i;
                }
            }
            if (best < 0) {
                cli_error(ctx, "unexpected argument '%s'; run 'dkv help %s'",
                          w, ctx->cmd->name);
                return CLI_EXIT_USAGE;
            }
            while ((params[best].kind == CLI_LIST ||
                    params[best].kind == CLI_MAP)
                   && w[0] != '\0' && w[strlen(w) - 1] == ','
                   && a + 1 < argc) {
                w = apr_pstrcat(ctx->pool, w, argv[++a], NULL);
            }
            if ((rc = take_value(ctx, best, w)) != 0) {
                return rc;
            }
        }
    }
    for (i = 0; i < ctx->nparams; i++) {
        if (params[i].mandatory && ctx->raw[i] == NULL) {
            cli_error(ctx, "missing mandatory parameter -%s; run 'dkv help "
                      "%s'", params[i].name, ctx->cmd->name);
            return CLI_EXIT_USAGE;
        }
    }
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------- getters */

int
cli_has(const cli_ctx_t *ctx, const char *name)
{
    int i = cli_param_index(ctx, name);
    return i >= 0 && ctx->raw[i] != NULL;
}

const char *
cli_str(const cli_ctx_t *ctx, const char *name, const char *fallback)
{
    int i = cli_param_index(ctx, name);
    return (i >= 0 && ctx->raw[i] != NULL) ? ctx->raw[i] : fallback;
}

int64_t
cli_int(const cli_ctx_t *ctx, const char *name, int64_t fallback)
{
    int i = cli_param_index(ctx, name);
    return (i >= 0 && ctx->raw[i] != NULL) ? ctx->ival[i] : fallback;
}

apr_array_header_t *
cli_list(const cli_ctx_t *ctx, const char *name)
{
    int i = cli_param_index(ctx, name);
    return (i >= 0 && ctx->raw[i] != NULL) ? ctx->list[i] : NULL;
}
