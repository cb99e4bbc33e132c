/*
 * config.c -- flags and `name = value` config files against one option
 * table (see config.h).
 */
#include "common/config.h"

#include <ctype.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include "common/log.h"
#include "common/status.h"

/* Longest config file line. */
#define CONF_LINE_MAX 4096

static dkv_config_opt_t *
find_opt(dkv_config_opt_t *opts, const char *name, size_t len)
{
    for (; opts->name != NULL; opts++) {
        if (strlen(opts->name) == len && !strncmp(opts->name, name, len)) {
            return opts;
        }
    }
    return NULL;
}

/* Parses a non-negative decimal number, all of TEXT. */
static int
parse_u64(uint64_t *value, const char *text, const char **end)
{
    uint64_t v = 0;
    const char *p = text;

    if (!isdigit((unsigned char)*p)) {
        return -1;
    }
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');

        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *value = v;
    *end = p;
    return 0;
}

/* See config.h. */
dkv_status_t
dkv_config_parse_size(uint64_t *value, const char *text)
{
    static const char units[] = "KMGT";
    const char *end, *u;
    uint64_t v;
    int shift = 0;

    if (text == NULL || parse_u64(&v, text, &end)) {
        return dkv_error_set(DKV_EINVAL, "'%s' is not a size",
                             text ? text : "");
    }
    if (*end != '\0') {
        u = strchr(units, toupper((unsigned char)*end));
        if (u == NULL) {
            return dkv_error_set(DKV_EINVAL, "'%s' is not a size (use a "
                                 "number with K, M, G or T)", text);
        }
        shift = 10 * (int)(u - units + 1);
        end++;
        if (*end == 'i' || *end == 'I') {
            end++;
            if (*end != 'B' && *end != 'b') {
                return dkv_error_set(DKV_EINVAL, "'%s' is not a size",
                                     text);
            }
        }
        if (*end == 'B' || *end == 'b') {
            end++;
        }
        if (*end != '\0') {
            return dkv_error_set(DKV_EINVAL, "'%s' is not a size", text);
        }
        if (v > (UINT64_MAX >> shift)) {
            return dkv_error_set(DKV_EINVAL, "size '%s' is too large", text);
        }
        v <<= shift;
    }
    *value = v;
    return DKV_OK;
}

static dkv_status_t
parse_bool(int *value, const char *text)
{
    static const char *const yes[] = { "1", "true", "yes", "on" };
    static const char *const no[] = { "0", "false", "no", "off" };
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!apr_strnatcasecmp(text, yes[i])) {
            *value = 1;
            return DKV_OK;
        }
        if (!apr_strnatcasecmp(text, no[i])) {
            *value = 0;
            return DKV_OK;
        }
    }
    return dkv_error_set(DKV_EINVAL, "'%s' is not a boolean (true or "
                         "false)", text);
}

/* Stores TEXT in OPT's target, checking its type and bounds; WHERE names
 * the source for messages ("--name" or "file:line: name"). */
static dkv_status_t
set_value(dkv_config_opt_t *opt, const char *text, const char *where,
          apr_pool_t *pool)
{
    dkv_status_t st;
    uint64_t v = 0;
    const char *end;

    switch (opt->type) {
    case DKV_CONF_STRING:
        *(const char **)opt->target = apr_pstrdup(pool, text);
        break;
    case DKV_CONF_FLAG:
        st = parse_bool((int *)opt->target, text);
        if (st != DKV_OK) {
            return dkv_error_set(st, "%s: %s", where, dkv_last_error());
        }
        break;
    case DKV_CONF_UINT:
    case DKV_CONF_SIZE:
        if (opt->type == DKV_CONF_UINT) {
            if (parse_u64(&v, text, &end) || *end != '\0') {
                return dkv_error_set(DKV_EINVAL, "%s: '%s' is not a "
                                     "non-negative number", where, text);
            }
        } else {
            st = dkv_config_parse_size(&v, text);
            if (st != DKV_OK) {
                return dkv_error_set(st, "%s: %s", where, dkv_last_error());
            }
        }
        if (v < opt->min || (opt->max != 0 && v > opt->max)) {
            if (opt->max != 0) {
                return dkv_error_set(DKV_EINVAL, "%s: %s is out of range "
                                     "(%llu to %llu)", where, text,
                                     (unsigned long long)opt->min,
                                     (unsigned long long)opt->max);
            }
            return dkv_error_set(DKV_EINVAL, "%s: %s is below the minimum "
                                 "%llu", where, text,
                                 (unsigned long long)opt->min);
        }
        *(uint64_t *)opt->target = v;
        break;
    default:
        return dkv_error_set(DKV_EINVAL, "%s: bad option table", where);
    }
    opt->set = 1;
    return DKV_OK;
}

/* See config.h. */
dkv_status_t
dkv_config_parse_args(dkv_config_opt_t *opts, int argc,
                      const char *const *argv, apr_pool_t *pool)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *name, *eq, *value = NULL;
        dkv_config_opt_t *opt;
        const char *where;
        size_t len;
        dkv_status_t st;

        if (arg[0] != '-' || arg[1] != '-' || arg[2] == '\0') {
            return dkv_error_set(DKV_EINVAL, "unexpected argument '%s' "
                                 "(options start with --)", arg);
        }
        name = arg + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        opt = find_opt(opts, name, len);
        if (opt == NULL) {
            return dkv_error_set(DKV_EINVAL, "unknown option --%.*s",
                                 (int)len, name);
        }
        where = apr_psprintf(pool, "--%s", opt->name);
        if (opt->type == DKV_CONF_FLAG) {
            if (eq != NULL) {
                value = eq + 1;
            } else {
                *(int *)opt->target = 1;
                opt->set = 1;
                continue;
            }
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return dkv_error_set(DKV_EINVAL, "%s needs a value (%s)", where,
                                 opt->arg ? opt->arg : "VALUE");
        }
        st = set_value(opt, value, where, pool);
        if (st != DKV_OK) {
            return st;
        }
    }
    return DKV_OK;
}

/* See config.h. */
const char *
dkv_config_find_arg(const char *name, int argc, const char *const *argv)
{
    size_t len = strlen(name);
    int i;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];

        if (strncmp(arg, "--", 2) || strncmp(arg + 2, name, len)) {
            continue;
        }
        if (arg[2 + len] == '=') {
            return arg + 3 + len;
        }
        if (arg[2 + len] == '\0') {
            return i + 1 < argc ? argv[i + 1] : NULL;
        }
    }
    return NULL;
}

static char *
trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'
                     || e[-1] == '\n')) {
        *--e = '\0';
    }
    return s;
}

/* One config file line (without its newline); a name OPTS lacks is an
 * error, or skipped when SKIP_UNKNOWN. */
static dkv_status_t
parse_line(dkv_config_opt_t *opts, char *line, const char *path,
           unsigned lineno, int skip_unknown, apr_pool_t *pool)
{
    dkv_config_opt_t *opt;
    char *name, *value, *eq, *p;
    const char *where;

    line = trim(line);
    if (*line == '\0' || *line == '#') {
        return DKV_OK;
    }
    eq = strchr(line, '=');
    if (eq == NULL) {
        return dkv_error_set(DKV_EINVAL, "%s:%u: expected 'name = value'",
                             path, lineno);
    }
    *eq = '\0';
    name = trim(line);
    value = trim(eq + 1);
    if (*value == '"') {
        p = strchr(value + 1, '"');
        if (p == NULL
            || (*trim(p + 1) != '\0' && *trim(p + 1) != '#')) {
            return dkv_error_set(DKV_EINVAL, "%s:%u: unterminated or "
                                 "trailing text after quoted value", path,
                                 lineno);
        }
        *p = '\0';
        value++;
    } else {
        /* A comment after the value must follow a blank. */
        for (p = value; *p; p++) {
            if (*p == '#' && p > value && (p[-1] == ' ' || p[-1] == '\t')) {
                *p = '\0';
                value = trim(value);
                break;
            }
        }
    }
    opt = find_opt(opts, name, strlen(name));
    if ((opt == NULL || opt->cli_only) && skip_unknown) {
        return DKV_OK;
    }
    if (opt == NULL || opt->cli_only) {
        return dkv_error_set(DKV_EINVAL, "%s:%u: unknown setting '%s'",
                             path, lineno, name);
    }
    where = apr_psprintf(pool, "%s:%u: %s", path, lineno, opt->name);
    if (*value == '\0' && opt->type != DKV_CONF_STRING) {
        return dkv_error_set(DKV_EINVAL, "%s: no value", where);
    }
    return set_value(opt, value, where, pool);
}

/* Reads config file PATH against OPTS (dkv_config_parse_file, or
 * dkv_config_parse_file_some when SKIP_UNKNOWN). */
static dkv_status_t
parse_file(dkv_config_opt_t *opts, const char *path, int skip_unknown,
           apr_pool_t *pool)
{
    apr_file_t *file;
    apr_status_t rv;
    char line[CONF_LINE_MAX];
    unsigned lineno = 0;
    dkv_status_t st = DKV_OK;

    rv = apr_file_open(&file, path, APR_FOPEN_READ | APR_FOPEN_BUFFERED,
                       APR_FPROT_OS_DEFAULT, pool);
    if (rv != APR_SUCCESS) {
        char err[120];

        return dkv_error_set(rv, "cannot read config file %s: %s", path,
                             apr_strerror(rv, err, sizeof(err)));
    }
    for (;;) {
        size_t len;

        rv = apr_file_gets(line, sizeof(line), file);
        if (rv == APR_EOF) {
            break;
        }
        if (rv != APR_SUCCESS) {
            char err[120];

            st = dkv_error_set(rv, "cannot read config file %s: %s", path,
                               apr_strerror(rv, err, sizeof(err)));
            break;
        }
        lineno++;
        len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            st = dkv_error_set(DKV_EINVAL, "%s:%u: line too long", path,
                               lineno);
            break;
        }
        st = parse_line(opts, line, path, lineno, skip_unknown, pool);
        if (st != DKV_OK) {
            break;
        }
    }
    apr_file_close(file);
    return st;
}

/* See config.h. */
dkv_status_t
dkv_config_parse_file(dkv_config_opt_t *opts, const char *path,
                      apr_pool_t *pool)
{
    return parse_file(opts, path, 0, pool);
}

/* See config.h. */
dkv_status_t
dkv_config_parse_file_some(dkv_config_opt_t *opts, const char *path,
                           apr_pool_t *pool)
{
    return parse_file(opts, path, 1, pool);
}

/* See config.h. */
void
dkv_config_print_help(const dkv_config_opt_t *opts, FILE *out)
{
    for (; opts->name != NULL; opts++) {
        const char *h = opts->help ? opts->help : "";
        char head[64];

        if (opts->type == DKV_CONF_FLAG) {
            snprintf(head, sizeof(head), "  --%s", opts->name);
        } else {
            snprintf(head, sizeof(head), "  --%s %s", opts->name,
                     opts->arg ? opts->arg : "VALUE");
        }
        fprintf(out, "%s\n", head);
        /* Wrap the help text at 76 columns, indented by 6. */
        while (*h) {
            const char *sp = h, *brk = NULL;

            while (*sp && sp - h <= 70) {
                if (*sp == ' ') {
                    brk = sp;
                }
                sp++;
            }
            if (*sp == '\0') {
                brk = sp;
            } else if (brk == NULL) {
                brk = sp;
            }
            {
                const char *end = brk;

                while (end > h && end[-1] == ' ') {
                    end--;
                }
                fprintf(out, "      %.*s\n", (int)(end - h), h);
            }
            h = brk;
            while (*h == ' ') {
                h++;
            }
        }
    }
}

/* See config.h. */
dkv_status_t
dkv_config_write_port_file(const char *path, unsigned port,
                           apr_pool_t *pool)
{
    const char *tmp = apr_pstrcat(pool, path, ".tmp", NULL);
    const char *text = apr_psprintf(pool, "%u\n", port);
    apr_file_t *file;
    apr_status_t rv;
    char err[120];

    rv = apr_file_open(&file, tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE
                       | APR_FOPEN_TRUNCATE, APR_FPROT_OS_DEFAULT, pool);
    if (rv == APR_SUCCESS) {
        rv = apr_file_write_full(file, text, strlen(text), NULL);
        apr_file_close(file);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_rename(tmp, path, pool);
    }
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot write port file %s: %s", path,
                             apr_strerror(rv, err, sizeof(err)));
    }
    return DKV_OK;
}

/* See config.h. */
int
dkv_config_fail(const char *prog, const char *msg)
{
    dkv_log_set_stderr(0);
    dkv_log(DKV_LOG_ERROR, "%s", msg);
    dkv_log_set_stderr(1);
    fprintf(stderr, "%s: %s\n", prog, msg);
    return 1;
}

/* See config.h. */
int
dkv_config_bad_settings(const char *prog, const char *msg)
{
    fprintf(stderr, "%s: %s\nTry '%s --help'.\n", prog, msg, prog);
    return 2;
}
