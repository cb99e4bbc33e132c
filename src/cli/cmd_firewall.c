/*
 * cmd_firewall.c -- `dkv firewall open|close|status`: opens dkv's port
 * ranges in the firewall in charge, closes them, or says which firewall
 * is in charge and what dkv has open there (platform/firewall.h,
 * docs/internals/operations.md "Firewall").
 *
 * Unlike the store commands this one takes no connection: it works on
 * this machine's firewall, through the backends, and is run by the
 * packages' scripts and dkv-firewall.service (with -IfActive, so that a
 * machine without an active firewall is not an error).  Flag names are
 * case-insensitive, with one or two dashes.  Exit codes: 0 done, 1 the
 * firewall refused or failed, 2 usage, 3 no active firewall (or the
 * forced backend is not active), 4 not enough privileges.
 */
#include "cli/cli.h"
#include "platform/fw-int.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <apr_strings.h>

/* The exit codes of `dkv firewall`. */
#define FW_EXIT_OK 0
#define FW_EXIT_FAILED 1
#define FW_EXIT_USAGE 2
#define FW_EXIT_NONE 3
#define FW_EXIT_PRIV 4

/* What the command line asked for. */
typedef struct fw_args {
    const char *verb;       /* "open", "close", "status" */
    const char *ranges;     /* -Ranges, or NULL */
    const char *config;     /* -Config, or NULL */
    const char *backend;    /* -Backend, or NULL */
    int if_active;          /* -IfActive */
    int json;               /* -Json */
} fw_args_t;

/* One backend's answer to detect. */
typedef struct fw_found {
    const dkv_fw_backend_t *b;
    int active;
    const char *why;
} fw_found_t;

/* Prints the usage on OUT. */
static void
fw_usage(FILE *out)
{
    fprintf(out,
            "Usage: dkv firewall open   [-Ranges LIST] [-Config FILE] "
            "[-Backend NAME]\n"
            "                           [-IfActive] [-Json]\n"
            "       dkv firewall close  [-Ranges LIST] [-Config FILE] "
            "[-Backend NAME]\n"
            "                           [-IfActive] [-Json]\n"
            "       dkv firewall status [-Backend NAME] [-Json]\n\n"
            "Opens dkv's TCP port ranges in this machine's firewall, "
            "closes them, or\n"
            "shows which firewall is in charge and what dkv has open "
            "there.\n\n"
            "  -Ranges LIST   e.g. 7801-7810,cluster=7811-7860,9000 "
            "(roles: management,\n"
            "                 cluster, client, custom; default custom)\n"
            "  -Config FILE   take the ranges from dkv-manager's config "
            "(management-range,\n"
            "                 cluster-range, client-range)\n"
            "                 default: 7801-7810, 7811-7860, 7861-7899; "
            "close without\n"
            "                 -Ranges or -Config removes all of dkv's "
            "rules\n"
            "  -Backend NAME  nftables, firewalld, ufw, iptables, pf, "
            "windows, netsh\n"
            "                 (default: the first active one)\n"
            "  -IfActive      no active firewall is not an error (exit "
            "0)\n"
            "  -Json          print one JSON object\n\n"
            "Exit codes: 0 done, 1 the firewall refused or failed, 2 "
            "usage,\n"
            "3 no active firewall, 4 not enough privileges (run as root "
            "or Administrator).\n");
}

/* Prints "dkv: firewall: MESSAGE" on stderr. */
static void
fw_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static void
fw_error(const char *fmt, ...)
{
    va_list ap;

    fputs("dkv: firewall: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* The message of the last failure with status RV. */
static const char *
fw_message(dkv_status_t rv)
{
    const char *m = dkv_last_error();

    return *m != '\0' ? m : dkv_strerror(rv);
}

/* The exit code for a backend's failure RV. */
static int
fw_exit_for(dkv_status_t rv)
{
    if (APR_STATUS_IS_EACCES(rv)) {
        return FW_EXIT_PRIV;
    }
    return FW_EXIT_FAILED;
}

/* Parses ARGV into *A.  Returns -1 to go on, else the exit code (the
 * usage was printed). */
static int
fw_parse_args(fw_args_t *a, int argc, const char *const *argv)
{
    int i;

    memset(a, 0, sizeof(*a));
    for (i = 0; i < argc; i++) {
        const char *w = argv[i];
        const char **value = NULL;

        if (w[0] != '-' && w[0] != '/') {
            if (a->verb != NULL) {
                fw_error("unexpected argument '%s'", w);
                return FW_EXIT_USAGE;
            }
            if (cli_strcasecmp(w, "open") == 0) {
                a->verb = "open";
            }
            else if (cli_strcasecmp(w, "close") == 0) {
                a->verb = "close";
            }
            else if (cli_strcasecmp(w, "status") == 0) {
                a->verb = "status";
            }
            else if (cli_strcasecmp(w, "help") == 0) {
                fw_usage(stdout);
                return FW_EXIT_OK;
            }
            else {
                fw_error("unknown action '%s' (open, close or status)", w);
                fw_usage(stderr);
                return FW_EXIT_USAGE;
            }
            continue;
        }
        w += (w[0] == '-' && w[1] == '-') ? 2 : 1;
        if (strcmp(w, "?") == 0 || cli_strcasecmp(w, "h") == 0 ||
            cli_strcasecmp(w, "help") == 0) {
            fw_usage(stdout);
            return FW_EXIT_OK;
        }
        if (cli_strcasecmp(w, "Ranges") == 0) {
            value = &a->ranges;
        }
        else if (cli_strcasecmp(w, "Config") == 0) {
            value = &a->config;
        }
        else if (cli_strcasecmp(w, "Backend") == 0) {
            value = &a->backend;
        }
        else if (cli_strcasecmp(w, "IfActive") == 0) {
            a->if_active = 1;
        }
        else if (cli_strcasecmp(w, "Json") == 0) {
            a->json = 1;
        }
        else {
            fw_error("unknown parameter '%s'", argv[i]);
            fw_usage(stderr);
            return FW_EXIT_USAGE;
        }
        if (value != NULL) {
            if (i + 1 >= argc) {
                fw_error("%s needs a value", argv[i]);
                return FW_EXIT_USAGE;
            }
            *value = argv[++i];
        }
    }
    if (a->verb == NULL) {
        fw_usage(argc == 0 ? stdout : stderr);
        return argc == 0 ? FW_EXIT_OK : FW_EXIT_USAGE;
    }
    if (strcmp(a->verb, "status") == 0 &&
        (a->ranges != NULL || a->config != NULL || a->if_active)) {
        fw_error("status takes only -Backend and -Json");
        return FW_EXIT_USAGE;
    }
    if (a->ranges != NULL && a->config != NULL) {
        fw_error("give -Ranges or -Config, not both");
        return FW_EXIT_USAGE;
    }
    return -1;
}

/* Reads the ranges of dkv-manager's config file PATH (management-range,
 * cluster-range, client-range; the defaults for those it does not set)
 * into *RANGES, with the manager's own reader (src/common/config.c).
 * A missing file gives the defaults, with a note on stderr.  Returns
 * DKV_OK, or a failure with its message. */
static dkv_status_t
fw_config_ranges(apr_array_header_t **ranges, const char *path,
                 apr_pool_t *pool)
{
    static const char *const roles[] = { "management", "cluster",
                                         "client" };
    static const uint16_t defs[][2] = {
        { DKV_FW_MANAGEMENT_LO, DKV_FW_MANAGEMENT_HI },
        { DKV_FW_CLUSTER_LO, DKV_FW_CLUSTER_HI },
        { DKV_FW_CLIENT_LO, DKV_FW_CLIENT_HI }
    };
    const char *vals[3] = { NULL, NULL, NULL };
    dkv_config_opt_t opts[] = {
        { "management-range", DKV_CONF_STRING, &vals[0], 0, 0, NULL, NULL,
          0, 0 },
        { "cluster-range", DKV_CONF_STRING, &vals[1], 0, 0, NULL, NULL, 0,
          0 },
        { "client-range", DKV_CONF_STRING, &vals[2], 0, 0, NULL, NULL, 0,
          0 },
        { NULL, 0, NULL, 0, 0, NULL, NULL, 0, 0 }
    };
    dkv_status_t rv;
    int i;

    *ranges = apr_array_make(pool, 3, sizeof(dkv_fw_range_t));
    rv = dkv_config_parse_file_some(opts, path, pool);
    if (APR_STATUS_IS_ENOENT(rv)) {
        fprintf(stderr, "dkv: firewall: %s does not exist; using the "
                "default ranges\n", path);
        dkv_fw_default_ranges(*ranges);
        return DKV_OK;
    }
    if (rv != DKV_OK) {
        return rv;
    }
    for (i = 0; i < 3; i++) {
        uint16_t lo = defs[i][0], hi = defs[i][1];

        if (vals[i] != NULL &&
            (!dkv_fw__parse_ports(&lo, &hi, vals[i], -1) ||
             strchr(vals[i], ':') != NULL)) {
            return dkv_error_set(DKV_EINVAL, "%s: bad %s '%s' (expected "
                                 "LO-HI)", path, opts[i].name, vals[i]);
        }
        dkv_fw__append(*ranges, roles[i], lo, hi);
    }
    return DKV_OK;
}

/* Runs B's detect into *F (dkv_fw__detect_one: a failure of detect
 * becomes its reason). */
static void
fw_detect_one(fw_found_t *f, dkv_fw_ctx_t *ctx, const dkv_fw_backend_t *b)
{
    f->b = b;
    dkv_fw__detect_one(ctx, b, &f->active, &f->why);
}

/* Detects every backend to consider (FORCED alone, or this system's in
 * order) into the array *ALL of fw_found_t; *CHARGE is the first active
 * one, or NULL. */
static void
fw_detect_all(apr_array_header_t **all, const fw_found_t **charge,
              dkv_fw_ctx_t *ctx, const dkv_fw_backend_t *forced,
              int stop_at_active)
{
    const dkv_fw_backend_t *const *b;
    int i;

    *all = apr_array_make(ctx->pool, 8, sizeof(fw_found_t));
    *charge = NULL;
    if (forced != NULL) {
        fw_detect_one((fw_found_t *)apr_array_push(*all), ctx, forced);
    }
    else {
        for (b = dkv_fw_backends(); *b != NULL; b++) {
            fw_found_t *f = apr_array_push(*all);

            fw_detect_one(f, ctx, *b);
            if (f->active && stop_at_active) {
                break;
            }
        }
    }
    for (i = 0; i < (*all)->nelts; i++) {
        const fw_found_t *f = &DKV_ARRAY_IDX(*all, i, fw_found_t);

        if (f->active) {
            *charge = f;
            break;
        }
    }
}

/* 1 when one of ALL's reasons is a lack of privileges. */
static int
fw_any_denied(const apr_array_header_t *all)
{
    int i;

    for (i = 0; i < all->nelts; i++) {
        if (dkv_fw__denied(DKV_ARRAY_IDX(all, i, fw_found_t).why)) {
            return 1;
        }
    }
    return 0;
}

/* The detection findings as JSON: [{Name, Active, Found}]. */
static json_t *
fw_found_json(const apr_array_header_t *all)
{
    json_t *arr = json_array();
    int i;

    for (i = 0; i < all->nelts; i++) {
        const fw_found_t *f = &DKV_ARRAY_IDX(all, i, fw_found_t);
        json_t *o = json_object();

        json_object_set_new(o, "Name", json_string(f->b->name));
        json_object_set_new(o, "Active", json_boolean(f->active));
        json_object_set_new(o, "Found", json_string(f->why));
        json_array_append_new(arr, o);
    }
    return arr;
}

/* The findings as one line, "name: why; name: why", in POOL. */
static const char *
fw_found_line(const apr_array_header_t *all, apr_pool_t *pool)
{
    const char *s = "";
    int i;

    for (i = 0; i < all->nelts; i++) {
        const fw_found_t *f = &DKV_ARRAY_IDX(all, i, fw_found_t);

        s = apr_pstrcat(pool, s, i > 0 ? "; " : "", f->b->name, ": ",
                        f->why, NULL);
    }
    return s;
}

/* Where backend NAME puts dkv's rules, for the output lines. */
static const char *
fw_where(const char *name)
{
    static const char *const where[][2] = {
        { "nftables", "the input base chains" },
        { "firewalld", "service dkv in the default zone" },
        { "ufw", "ufw's user rules" },
        { "iptables", "chain INPUT (iptables, ip6tables)" },
        { "pf", "anchor dkv" },
        { "windows", "inbound rules, group dkv" },
        { "netsh", "inbound rules" },
        { NULL, NULL }
    };
    int i;

    for (i = 0; where[i][0] != NULL; i++) {
        if (strcmp(where[i][0], name) == 0) {
            return where[i][1];
        }
    }
    return "its rules";
}

/* A range as JSON: {Role, Ports, Lo, Hi} plus Result when not NULL. */
static json_t *
fw_range_json(const dkv_fw_range_t *r, const char *result, apr_pool_t *pool)
{
    json_t *o = json_object();

    json_object_set_new(o, "Role", json_string(r->name));
    json_object_set_new(o, "Ports", json_string(dkv_fw__ports(r, '-',
                                                              pool)));
    json_object_set_new(o, "Lo", json_integer(r->lo));
    json_object_set_new(o, "Hi", json_integer(r->hi));
    if (result != NULL) {
        json_object_set_new(o, "Result", json_string(result));
    }
    return o;
}

/* Prints OBJ as one JSON line and drops it. */
static void
fw_print_json(json_t *obj)
{
    json_dumpf(obj, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fputc('\n', stdout);
    json_decref(obj);
}

/* `dkv firewall status`. */
static int
fw_status(const fw_args_t *a, dkv_fw_ctx_t *ctx,
          const dkv_fw_backend_t *forced)
{
    apr_array_header_t *all, *open;
    const fw_found_t *charge;
    dkv_status_t rv = DKV_OK;
    const char *err = NULL;
    int i, code = FW_EXIT_OK;

    fw_detect_all(&all, &charge, ctx, forced, 0);
    open = apr_array_make(ctx->pool, 8, sizeof(dkv_fw_range_t));
    if (charge != NULL) {
        dkv_error_clear();
        rv = charge->b->list(ctx, open);
        if (rv != DKV_OK) {
            err = apr_pstrdup(ctx->pool, fw_message(rv));
            code = fw_exit_for(rv);
        }
    }
    else {
        code = fw_any_denied(all) ? FW_EXIT_PRIV : FW_EXIT_NONE;
    }
    if (a->json) {
        json_t *o = json_object(), *arr = json_array();

        json_object_set_new(o, "Backend", charge != NULL
                            ? json_string(charge->b->name) : json_null());
        json_object_set_new(o, "Backends", fw_found_json(all));
        for (i = 0; i < open->nelts; i++) {
            json_array_append_new(arr, fw_range_json(
                &DKV_ARRAY_IDX(open, i, dkv_fw_range_t), NULL, ctx->pool));
        }
        json_object_set_new(o, "Open", arr);
        json_object_set_new(o, "Error", err != NULL ? json_string(err)
                            : json_null());
        fw_print_json(o);
        return code;
    }
    printf("firewall in charge: %s\n", charge != NULL ? charge->b->name
           : "none");
    for (i = 0; i < all->nelts; i++) {
        const fw_found_t *f = &DKV_ARRAY_IDX(all, i, fw_found_t);

        printf("  %-10s %s\n", f->b->name, f->why);
    }
    if (charge != NULL && err == NULL) {
        printf("dkv's open ranges in %s (%s):%s\n", charge->b->name,
               fw_where(charge->b->name), open->nelts == 0 ? " none" : "");
        for (i = 0; i < open->nelts; i++) {
            const dkv_fw_range_t *r = &DKV_ARRAY_IDX(open, i,
                                                     dkv_fw_range_t);

            printf("  %-10s %s (tcp)\n", r->name,
                   dkv_fw__ports(r, '-', ctx->pool));
        }
    }
    if (err != NULL) {
        fw_error("cannot list dkv's rules in %s: %s", charge->b->name, err);
    }
    return code;
}

/* `dkv firewall open` and `close` on backend B with RANGES (NULL for
 * close: all of dkv's rules). */
static int
fw_change(const fw_args_t *a, dkv_fw_ctx_t *ctx, const dkv_fw_backend_t *b,
          const apr_array_header_t *ranges)
{
    int opening = strcmp(a->verb, "open") == 0;
    const dkv_fw_range_t *rs = ranges != NULL
        ? (const dkv_fw_range_t *)(void *)ranges->elts : NULL;
    int n = ranges != NULL ? ranges->nelts : 0;
    apr_array_header_t *before, *after, *done;
    json_t *jr = json_array();
    const char *err = NULL;
    dkv_status_t rv;
    int i, code = FW_EXIT_OK;

    before = apr_array_make(ctx->pool, 8, sizeof(dkv_fw_range_t));
    after = apr_array_make(ctx->pool, 8, sizeof(dkv_fw_range_t));
    dkv_error_clear();
    rv = b->list(ctx, before);
    if (rv == DKV_OK) {
        dkv_error_clear();
        rv = opening ? b->open(ctx, rs, n) : b->close(ctx, rs, n);
    }
    if (rv == DKV_OK) {
        dkv_error_clear();
        rv = b->list(ctx, after);
    }
    if (rv != DKV_OK) {
        err = apr_pstrdup(ctx->pool, fw_message(rv));
        code = fw_exit_for(rv);
    }
    /* The ranges to report: those asked for, or (closing everything)
     * those dkv had open. */
    done = apr_array_make(ctx->pool, 8, sizeof(dkv_fw_range_t));
    for (i = 0; i < n; i++) {
        dkv_fw_range_t *d = apr_array_push(done);
        int j;

        *d = rs[i];
        for (j = 0; !opening && j < before->nelts; j++) {
            if (dkv_fw__same_range(&DKV_ARRAY_IDX(before, j, dkv_fw_range_t),
                                   d)) {
                d->name = DKV_ARRAY_IDX(before, j, dkv_fw_range_t).name;
            }
        }
    }
    if (n == 0) {
        for (i = 0; i < before->nelts; i++) {
            *(dkv_fw_range_t *)apr_array_push(done) =
                DKV_ARRAY_IDX(before, i, dkv_fw_range_t);
        }
    }
    /* Every range is reported (the first one found wrong is the error),
     * unless the backend itself failed. */
    for (i = 0; rv == DKV_OK && i < done->nelts; i++) {
        const dkv_fw_range_t *r = &DKV_ARRAY_IDX(done, i, dkv_fw_range_t);
        int was = dkv_fw__has_range(before, r);
        int is = dkv_fw__has_range(after, r);
        const char *ports = dkv_fw__ports(r, '-', ctx->pool);
        const char *result;

        if (opening) {
            result = !is ? "not open" : was ? "already open" : "opened";
        }
        else {
            result = is ? "still open" : was ? "closed" : "was not open";
        }
        json_array_append_new(jr, fw_range_json(r, result, ctx->pool));
        if (!a->json) {
            if (strcmp(result, "opened") == 0 ||
                strcmp(result, "closed") == 0) {
                printf("%s %s %s (tcp) in %s: %s\n", result, r->name, ports,
                       b->name, fw_where(b->name));
            }
            else {
                printf("%s %s (tcp) %s in %s\n", r->name, ports, result,
                       b->name);
            }
        }
        if (err == NULL && ((opening && !is) || (!opening && is))) {
            err = apr_psprintf(ctx->pool, "%s accepted the change, but "
                               "%s %s is %s afterwards", b->name, r->name,
                               ports, opening ? "not open" : "still open");
            code = FW_EXIT_FAILED;
        }
    }
    if (err == NULL && done->nelts == 0 && !a->json) {
        printf("no dkv rules in %s\n", b->name);
    }
    if (a->json) {
        json_t *o = json_object();

        json_object_set_new(o, "Action", json_string(a->verb));
        json_object_set_new(o, "Backend", json_string(b->name));
        json_object_set_new(o, "Ranges", jr);
        json_object_set_new(o, "Success", json_boolean(err == NULL));
        json_object_set_new(o, "Error", err != NULL ? json_string(err)
                            : json_null());
        fw_print_json(o);
    }
    else {
        json_decref(jr);
    }
    if (err != NULL) {
        fw_error("%s in %s failed: %s", a->verb, b->name, err);
    }
    return code;
}

/* Says that no firewall is active (or the forced one is not), and
 * returns the exit code: 0 with -IfActive, 4 when a backend could not
 * tell for lack of privileges, else 3. */
static int
fw_none(const fw_args_t *a, dkv_fw_ctx_t *ctx, const apr_array_header_t *all,
        const dkv_fw_backend_t *forced)
{
    int denied = fw_any_denied(all);
    int code = denied ? FW_EXIT_PRIV : a->if_active ? FW_EXIT_OK
                                                    : FW_EXIT_NONE;
    const char *what = forced != NULL
        ? apr_psprintf(ctx->pool, "%s is not active", forced->name)
        : "no active firewall";
    const char *line = fw_found_line(all, ctx->pool);

    if (a->json) {
        json_t *o = json_object();

        json_object_set_new(o, "Action", json_string(a->verb));
        json_object_set_new(o, "Backend", json_null());
        json_object_set_new(o, "Backends", fw_found_json(all));
        json_object_set_new(o, "Ranges", json_array());
        json_object_set_new(o, "Success", json_boolean(code == 0));
        json_object_set_new(o, "Error", json_string(what));
        fw_print_json(o);
    }
    if (code == FW_EXIT_OK) {
        if (!a->json) {
            printf("%s; nothing to %s (%s)\n", what, a->verb, line);
        }
    }
    else if (denied) {
        fw_error("%s; some firewalls could not be asked for lack of "
                 "privileges: run as root or Administrator (%s)", what,
                 line);
    }
    else {
        fw_error("%s (%s)", what, line);
    }
    return code;
}

/* See cli.h. */
int
cli_firewall_main(int argc, const char *const *argv, apr_pool_t *pool)
{
    fw_args_t a;
    dkv_fw_ctx_t ctx;
    const dkv_fw_backend_t *forced = NULL;
    apr_array_header_t *ranges = NULL, *all;
    const fw_found_t *charge;
    dkv_status_t rv;
    int code;

    code = fw_parse_args(&a, argc, argv);
    if (code >= 0) {
        return code;
    }
    dkv_fw_ctx_init(&ctx, pool);
    if (a.backend != NULL) {
        forced = dkv_fw_backend_named(a.backend);
        if (forced == NULL) {
            fw_error("unknown backend '%s' (nftables, firewalld, ufw, "
                     "iptables, pf, windows, netsh)", a.backend);
            return FW_EXIT_USAGE;
        }
    }
    if (strcmp(a.verb, "status") == 0) {
        return fw_status(&a, &ctx, forced);
    }
    if (a.ranges != NULL) {
        apr_array_header_t *given;
        int i;

        rv = dkv_fw_parse_ranges(&given, a.ranges, pool);
        if (rv != DKV_OK) {
            fw_error("%s", fw_message(rv));
            return FW_EXIT_USAGE;
        }
        /* The same ports twice are one range (the first role given). */
        ranges = apr_array_make(pool, given->nelts, sizeof(dkv_fw_range_t));
        for (i = 0; i < given->nelts; i++) {
            const dkv_fw_range_t *r = &DKV_ARRAY_IDX(given, i,
                                                     dkv_fw_range_t);

            dkv_fw__append(ranges, r->name, r->lo, r->hi);
        }
    }
    else if (a.config != NULL) {
        rv = fw_config_ranges(&ranges, a.config, pool);
        if (rv != DKV_OK) {
            fw_error("%s", fw_message(rv));
            return FW_EXIT_FAILED;
        }
    }
    else if (strcmp(a.verb, "open") == 0) {
        ranges = apr_array_make(pool, 3, sizeof(dkv_fw_range_t));
        dkv_fw_default_ranges(ranges);
    }
    fw_detect_all(&all, &charge, &ctx, forced, 1);
    if (charge == NULL) {
        return fw_none(&a, &ctx, all, forced);
    }
    return fw_change(&a, &ctx, charge->b, ranges);
}
