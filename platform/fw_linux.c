/*
 * fw_linux.c -- the Linux firewall backends (platform/firewall.h):
 * nftables, firewalld, ufw and iptables.
 *
 * Every backend runs its firewall's own program through ctx->exec, never
 * directly, and reads back what is there before it changes anything, so
 * that opening twice adds nothing and closing touches only rules that
 * carry dkv's tag (docs/internals/operations.md, "Firewall").
 *
 * nftables.  `nft -t -j list ruleset` (JSON, read with jansson; terse:
 * without the elements of sets, which can be large blocklists) gives the
 * base chains on the input hook -- of the ip, ip6 and inet families,
 * leaving out iptables-nft's compat chains ("ip filter INPUT",
 * "ip6 filter INPUT"), which belong to the iptables backend, and
 * firewalld's table, which firewalld rewrites -- and dkv's rules with
 * their handles.  nftables is in charge when one of those chains
 * filters: a drop policy, or any rule (detect also says when
 * iptables-nft's chain filters as well: dkv's rules must go there too,
 * with -Backend iptables).  dkv's rules are
 * `tcp dport LO-HI accept comment "dkv:ROLE"`, inserted at the top of
 * every such chain, removed by handle.
 *
 * firewalld.  A permanent service "dkv" holds the ports; it is added to
 * the default zone and firewalld reloaded.  firewalld keeps no comment
 * per port, so the roles live in the service's description, as
 * "dkv:management=7801-7810 dkv:cluster=7811-7860 ..."; a port the
 * description does not name reads back as "custom".
 *
 * ufw.  `ufw allow LO:HI/tcp comment dkv:ROLE`; `ufw status` lists the
 * rules with their comments; `ufw delete allow LO:HI/tcp` removes the v4
 * and v6 rules together.
 *
 * iptables.  `-I INPUT -p tcp --dport LO:HI -m comment --comment dkv:ROLE
 * -j ACCEPT` for iptables, and for ip6tables when it is there and works;
 * `-S INPUT` lists them, and a rule is deleted with its own listed spec.
 *
 * Statuses: a program's refusal for lack of privileges is APR_EACCES (run
 * as root), a firewall that does not answer (firewalld stopped, no
 * D-Bus) DKV_EUNAVAILABLE, any other failure APR_EGENERAL with the
 * program's own words; a program that is not installed is the runner's
 * APR_ENOENT.
 */
#include <stdio.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include <jansson.h>

#include "platform/firewall.h"
#include "platform/fw-int.h"
#include "common/alloc.h"
#include "common/status.h"

/* The status for ARGV having exited CODE with OUT, with dkv_error_set:
 * APR_EACCES when OUT says the program lacked privileges,
 * DKV_EUNAVAILABLE when it says the firewall (or its bus) does not
 * answer, else APR_EGENERAL naming the command and its first line. */
static dkv_status_t
fw_failed(dkv_fw_ctx_t *ctx, const char *const *argv, const char *out, int code)
{
    static const char *const down[] = {"not running",
                                       "failed to connect",
                                       "could not connect",
                                       "connection refused",
                                       "dbus_error",
                                       "org.freedesktop.dbus.error",
                                       NULL};
    const char *cmd = argv[0];
    int i;

    if (!dkv_fw__denied(out)) {
        for (i = 0; down[i] != NULL; i++) {
            if (dkv_fw__contains(out, down[i])) {
                return dkv_error_set(
                    DKV_EUNAVAILABLE, "%s: the firewall does not answer (%s)",
                    argv[0], dkv_fw__first_line(out, ctx->pool));
            }
        }
        for (i = 1; argv[i] != NULL; i++) {
            cmd = apr_pstrcat(ctx->pool, cmd, " ", argv[i], NULL);
        }
    }
    return dkv_fw__failed(ctx, cmd, code, out);
}

/* Runs ARGV through ctx->exec (dkv_fw__runv, no input) and requires
 * exit code 0.  *OUT (may be NULL when the caller does not want it)
 * receives the output, in ctx->pool.  Returns DKV_OK, the runner's
 * status, or fw_failed's. */
static dkv_status_t
fw_do(dkv_fw_ctx_t *ctx, const char *const *argv, char **out)
{
    char *o;
    int code;
    dkv_status_t st = dkv_fw__runv(ctx, &o, &code, NULL, argv);

    if (out != NULL) {
        *out = o;
    }
    if (st != DKV_OK) {
        return st;
    }
    if (code != 0) {
        return fw_failed(ctx, argv, o, code);
    }
    return DKV_OK;
}

/* Parses "LO-HI", "LO:HI" or "LO" at the start of TEXT, ended by the
 * end, a blank or "/" ("7801:7810/tcp").  Returns 1 with *LO, *HI, else
 * 0. */
static int
fw_parse_ports(const char *text, int *lo, int *hi)
{
    uint16_t l, h;

    if (!dkv_fw__parse_ports(&l, &h, text, (int)strcspn(text, "/ \t"))) {
        return 0;
    }
    *lo = l;
    *hi = h;
    return 1;
}

/* 1 when some of RANGES (N) has exactly the ports LO-HI, or N is 0. */
static int
fw_wanted(const dkv_fw_range_t *ranges, int n, int lo, int hi)
{
    dkv_fw_range_t r;

    r.name = NULL;
    r.lo = (uint16_t)lo;
    r.hi = (uint16_t)hi;
    return dkv_fw__selected(ranges, n, &r);
}

/* Appends ROLE LO-HI to OPEN (dkv_fw_range_t) unless the same ports are
 * there already. */
static void
fw_add_open(apr_array_header_t *open, const char *role, int lo, int hi)
{
    dkv_fw__append(open, role, (uint16_t)lo, (uint16_t)hi);
}

/* The lines of TEXT, split in place (TEXT is modified), as a
 * NULL-terminated array in POOL. */
static char **
fw_lines(char *text, apr_pool_t *pool)
{
    apr_array_header_t *lines = apr_array_make(pool, 16, sizeof(char *));
    char *p = text;

    while (*p != '\0') {
        char *nl = strchr(p, '\n');
        if (nl != NULL) {
            *nl = '\0';
        }
        APR_ARRAY_PUSH(lines, char *) = p;
        if (nl == NULL) {
            break;
        }
        p = nl + 1;
    }
    APR_ARRAY_PUSH(lines, char *) = NULL;
    return (char **)(void *)lines->elts;
}

/* The words of LINE (split on blanks, in place), with a pair of double
 * quotes around a word removed, as a NULL-terminated array in POOL. */
static char **
fw_words(char *line, apr_pool_t *pool)
{
    apr_array_header_t *words = apr_array_make(pool, 16, sizeof(char *));
    char *p = line;

    for (;;) {
        char *w;
        size_t n;

        while (*p != '\0' && apr_isspace((unsigned char)*p)) {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        w = p;
        while (*p != '\0' && !apr_isspace((unsigned char)*p)) {
            p++;
        }
        if (*p != '\0') {
            *p++ = '\0';
        }
        n = strlen(w);
        if (n >= 2 && w[0] == '"' && w[n - 1] == '"') {
            w[n - 1] = '\0';
            w++;
        }
        APR_ARRAY_PUSH(words, char *) = w;
    }
    APR_ARRAY_PUSH(words, char *) = NULL;
    return (char **)(void *)words->elts;
}

/* ----------------------------------------------------------- nftables */

/* A base chain on the input hook that dkv adds its rules to. */
typedef struct nft_chain_t {
    const char *family;
    const char *table;
    const char *name;
    const char *policy;
    int rules;  /* how many rules it has */
    int compat; /* 1: iptables-nft's INPUT (read, never changed) */
} nft_chain_t;

/* One of dkv's rules (its comment is a dkv tag). */
typedef struct nft_rule_t {
    const char *family;
    const char *table;
    const char *chain;
    json_int_t handle;
    const char *role;
    int lo, hi; /* 0, 0 when it has no tcp dport match */
} nft_rule_t;

/* 1 when FAMILY TABLE CHAIN belongs to another backend: iptables-nft's
 * compat input chain ("ip filter INPUT", "ip6 filter INPUT"), or
 * firewalld's own table (it rewrites the table on every reload). */
static int
nft_is_foreign(const char *family, const char *table, const char *chain)
{
    if (strcmp(table, "firewalld") == 0) {
        return 1;
    }
    return (strcmp(family, "ip") == 0 || strcmp(family, "ip6") == 0)
           && strcmp(table, "filter") == 0 && strcmp(chain, "INPUT") == 0;
}

/* The string member KEY of OBJ, or "" when missing. */
static const char *
nft_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? s : "";
}

/* Reads the tcp dport match of rule object RULE into *LO, *HI (0, 0 when
 * there is none). */
static void
nft_rule_ports(json_t *rule, int *lo, int *hi)
{
    json_t *exprs = json_object_get(rule, "expr");
    size_t i;

    *lo = *hi = 0;
    for (i = 0; i < json_array_size(exprs); i++) {
        json_t *m = json_object_get(json_array_get(exprs, i), "match");
        json_t *pl = json_object_get(json_object_get(m, "left"), "payload");
        json_t *right = json_object_get(m, "right");

        if (m == NULL || pl == NULL
            || strcmp(nft_str(pl, "protocol"), "tcp") != 0
            || strcmp(nft_str(pl, "field"), "dport") != 0) {
            continue;
        }
        if (json_is_integer(right)) {
            *lo = *hi = (int)json_integer_value(right);
        }
        else {
            json_t *rg = json_object_get(right, "range");
            if (json_array_size(rg) == 2) {
                *lo = (int)json_integer_value(json_array_get(rg, 0));
                *hi = (int)json_integer_value(json_array_get(rg, 1));
            }
        }
        return;
    }
}

/* Reads the ruleset: *CHAINS (nft_chain_t) the base input chains dkv
 * uses, and iptables-nft's INPUT chains marked compat (dkv leaves them to
 * the iptables backend, but they filter too), *RULES (nft_rule_t) dkv's
 * rules wherever they are; both in ctx->pool.  Returns DKV_OK, the
 * runner's status, fw_failed's, or APR_EGENERAL when the JSON cannot be
 * read. */
static dkv_status_t
nft_load(dkv_fw_ctx_t *ctx, apr_array_header_t **chains,
         apr_array_header_t **rules)
{
    static const char *const argv[] = {"nft", "-t", "-j", "list", "ruleset",
                                       NULL};
    apr_pool_t *pool = ctx->pool;
    json_error_t jerr;
    json_t *root, *items;
    char *out;
    const char *start;
    size_t i;
    dkv_status_t st;

    *chains = apr_array_make(pool, 4, sizeof(nft_chain_t));
    *rules = apr_array_make(pool, 8, sizeof(nft_rule_t));
    st = fw_do(ctx, argv, &out);
    if (st != DKV_OK) {
        return st;
    }
    start = strchr(out, '{');
    if (start == NULL) {
        return DKV_OK; /* an empty ruleset may print nothing */
    }
    root = json_loads(start, JSON_DISABLE_EOF_CHECK, &jerr);
    if (root == NULL) {
        return dkv_error_set(APR_EGENERAL,
                             "nft -t -j list ruleset: cannot read its JSON: %s",
                             jerr.text);
    }
    items = json_object_get(root, "nftables");
    for (i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        json_t *c = json_object_get(it, "chain");
        json_t *r = json_object_get(it, "rule");

        if (c != NULL) {
            const char *fam = nft_str(c, "family");
            nft_chain_t *ch;

            if (strcmp(nft_str(c, "hook"), "input") != 0
                || strcmp(nft_str(c, "type"), "filter") != 0
                || (strcmp(fam, "ip") != 0 && strcmp(fam, "ip6") != 0
                    && strcmp(fam, "inet") != 0)
                || strcmp(nft_str(c, "table"), "firewalld") == 0) {
                continue;
            }
            ch = apr_array_push(*chains);
            ch->compat = nft_is_foreign(fam, nft_str(c, "table"),
                                        nft_str(c, "name"));
            ch->family = apr_pstrdup(pool, fam);
            ch->table = apr_pstrdup(pool, nft_str(c, "table"));
            ch->name = apr_pstrdup(pool, nft_str(c, "name"));
            ch->policy = apr_pstrdup(pool, nft_str(c, "policy"));
            ch->rules = 0;
        }
        else if (r != NULL) {
            const char *fam = nft_str(r, "family");
            const char *tab = nft_str(r, "table");
            const char *chn = nft_str(r, "chain");
            const char *role = dkv_fw_tag_role(nft_str(r, "comment"));
            int j;

            for (j = 0; j < (*chains)->nelts; j++) {
                nft_chain_t *ch = &DKV_ARRAY_IDX(*chains, j, nft_chain_t);
                if (strcmp(ch->family, fam) == 0 && strcmp(ch->table, tab) == 0
                    && strcmp(ch->name, chn) == 0) {
                    ch->rules++;
                }
            }
            if (role != NULL) {
                nft_rule_t *nr = apr_array_push(*rules);
                nr->family = apr_pstrdup(pool, fam);
                nr->table = apr_pstrdup(pool, tab);
                nr->chain = apr_pstrdup(pool, chn);
                nr->handle = json_integer_value(json_object_get(r, "handle"));
                nr->role = apr_pstrdup(pool, role);
                nft_rule_ports(r, &nr->lo, &nr->hi);
            }
        }
    }
    json_decref(root);
    return DKV_OK;
}

/* detect: nftables is in charge when a base input chain (not
 * iptables-nft's) drops by default or has rules. */
static dkv_status_t
nft_detect(dkv_fw_ctx_t *ctx, int *active, const char **why)
{
    apr_array_header_t *chains, *rules;
    const char *seen = NULL, *compat = NULL;
    int i;
    dkv_status_t st = nft_load(ctx, &chains, &rules);

    *active = 0;
    if (st == APR_ENOENT) {
        *why = "nft is not installed";
        return DKV_OK;
    }
    if (st != DKV_OK) {
        *why = apr_pstrdup(ctx->pool, dkv_last_error());
        return DKV_OK;
    }
    for (i = 0; i < chains->nelts; i++) {
        nft_chain_t *ch = &DKV_ARRAY_IDX(chains, i, nft_chain_t);
        const char *d = apr_psprintf(
            ctx->pool, "%s %s %s (policy %s, %d rules)", ch->family, ch->table,
            ch->name, ch->policy, ch->rules);
        int filters = strcmp(ch->policy, "accept") != 0 || ch->rules > 0;

        if (ch->compat) {
            if (filters) {
                compat = compat == NULL ? d
                         : apr_pstrcat(ctx->pool, compat, ", ", d, NULL);
            }
            continue;
        }
        seen = seen == NULL ? d : apr_pstrcat(ctx->pool, seen, ", ", d, NULL);
        *active |= filters;
    }
    if (*active && compat != NULL) {
        /* Both filter, and an accept in one base chain does not pass a
         * packet that the other drops. */
        *why = apr_pstrcat(ctx->pool, "nftables filters input: ", seen,
                           "; iptables-nft filters input too: ", compat,
                           " (open there as well with -Backend iptables)",
                           NULL);
    }
    else if (*active) {
        *why = apr_pstrcat(ctx->pool, "nftables filters input: ", seen, NULL);
    }
    else if (seen != NULL) {
        *why = apr_pstrcat(
            ctx->pool, "nftables input chains accept everything: ", seen, NULL);
    }
    else {
        *why = "nftables has no input chain (besides iptables-nft's and "
               "firewalld's)";
    }
    return DKV_OK;
}

/* Notes in RULES (nft_rule_t) that CH now has dkv's rule for R, so that a
 * range given twice is inserted once. */
static void
nft_remember(apr_array_header_t *rules, const nft_chain_t *ch,
             const dkv_fw_range_t *r)
{
    nft_rule_t *nr = apr_array_push(rules);

    nr->family = ch->family;
    nr->table = ch->table;
    nr->chain = ch->name;
    nr->handle = 0;
    nr->role = r->name;
    nr->lo = r->lo;
    nr->hi = r->hi;
}

/* open: inserts a tagged accept rule for each range missing from each
 * base input chain. */
static dkv_status_t
nft_open(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    apr_array_header_t *chains, *rules;
    int i, j, k;
    dkv_status_t st = nft_load(ctx, &chains, &rules);

    if (st != DKV_OK) {
        return st;
    }
    for (i = k = 0; i < chains->nelts; i++) {
        k += !DKV_ARRAY_IDX(chains, i, nft_chain_t).compat;
    }
    if (k == 0) {
        return dkv_error_set(DKV_ENOTFOUND, "nftables has no input chain "
                             "to open ports in (besides iptables-nft's and "
                             "firewalld's)");
    }
    for (i = 0; i < chains->nelts; i++) {
        nft_chain_t *ch = &DKV_ARRAY_IDX(chains, i, nft_chain_t);

        if (ch->compat) {
            continue;
        }
        for (j = 0; j < n; j++) {
            const char *argv[13];
            int have = 0;

            for (k = 0; k < rules->nelts && !have; k++) {
                nft_rule_t *r = &DKV_ARRAY_IDX(rules, k, nft_rule_t);
                have = strcmp(r->family, ch->family) == 0
                       && strcmp(r->table, ch->table) == 0
                       && strcmp(r->chain, ch->name) == 0
                       && r->lo == ranges[j].lo && r->hi == ranges[j].hi;
            }
            if (have) {
                continue;
            }
            argv[0] = "nft";
            argv[1] = "insert";
            argv[2] = "rule";
            argv[3] = ch->family;
            argv[4] = ch->table;
            argv[5] = ch->name;
            argv[6] = "tcp";
            argv[7] = "dport";
            argv[8] = dkv_fw__ports(&ranges[j], '-', ctx->pool);
            argv[9] = "accept";
            argv[10] = "comment";
            argv[11] = apr_pstrcat(
                ctx->pool, "\"", dkv_fw_tag(&ranges[j], ctx->pool), "\"", NULL);
            argv[12] = NULL;
            st = fw_do(ctx, argv, NULL);
            if (st != DKV_OK) {
                return st;
            }
            nft_remember(rules, ch, &ranges[j]);
        }
    }
    return DKV_OK;
}

/* close: deletes dkv's rules for RANGES (all of them when N is 0) by
 * handle. */
static dkv_status_t
nft_close(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    apr_array_header_t *chains, *rules;
    int i;
    dkv_status_t st = nft_load(ctx, &chains, &rules);

    if (st != DKV_OK) {
        return st;
    }
    for (i = 0; i < rules->nelts; i++) {
        nft_rule_t *r = &DKV_ARRAY_IDX(rules, i, nft_rule_t);
        const char *argv[9];

        if (!fw_wanted(ranges, n, r->lo, r->hi)) {
            continue;
        }
        argv[0] = "nft";
        argv[1] = "delete";
        argv[2] = "rule";
        argv[3] = r->family;
        argv[4] = r->table;
        argv[5] = r->chain;
        argv[6] = "handle";
        argv[7] = apr_psprintf(ctx->pool, "%" APR_INT64_T_FMT,
                               (apr_int64_t)r->handle);
        argv[8] = NULL;
        st = fw_do(ctx, argv, NULL);
        if (st != DKV_OK) {
            return st;
        }
    }
    return DKV_OK;
}

/* list: the ranges of dkv's rules. */
static dkv_status_t
nft_list(dkv_fw_ctx_t *ctx, apr_array_header_t *open)
{
    apr_array_header_t *chains, *rules;
    int i;
    dkv_status_t st = nft_load(ctx, &chains, &rules);

    if (st != DKV_OK) {
        return st;
    }
    for (i = 0; i < rules->nelts; i++) {
        nft_rule_t *r = &DKV_ARRAY_IDX(rules, i, nft_rule_t);
        if (r->lo > 0) {
            fw_add_open(open, r->role, r->lo, r->hi);
        }
    }
    return DKV_OK;
}

const dkv_fw_backend_t dkv_fw_nftables = {"nftables", nft_detect, nft_open,
                                          nft_close, nft_list};

/* ---------------------------------------------------------- firewalld */

/* dkv's permanent service as firewalld has it. */
typedef struct fwd_state_t {
    int present;               /* the service exists */
    apr_array_header_t *ports; /* const char *, "LO-HI/tcp" ... */
    apr_array_header_t *roles; /* dkv_fw_range_t, from the description */
} fwd_state_t;

/* firewall-cmd's whole argument vector: "firewall-cmd" then ARGS
 * (NULL-terminated, without argv[0]), in ctx->pool. */
static const char *const *
fwd_argv(dkv_fw_ctx_t *ctx, const char *const *args)
{
    const char **argv;
    int n = 0, i;

    while (args[n] != NULL) {
        n++;
    }
    argv = apr_palloc(ctx->pool, sizeof(*argv) * (size_t)(n + 2));
    argv[0] = "firewall-cmd";
    for (i = 0; i <= n; i++) {
        argv[i + 1] = args[i];
    }
    return argv;
}

/* Runs firewall-cmd with ARGS; *OUT and *CODE as for dkv_fw__runv, *ARGVP (may
 * be NULL) the whole vector for fw_failed.  Returns the runner's status. */
static dkv_status_t
fwd_run(dkv_fw_ctx_t *ctx, const char *const *args, char **out, int *code,
        const char *const **argvp)
{
    const char *const *argv = fwd_argv(ctx, args);

    if (argvp != NULL) {
        *argvp = argv;
    }
    return dkv_fw__runv(ctx, out, code, NULL, argv);
}

/* Runs firewall-cmd with ARGS and requires exit 0 (fw_do). */
static dkv_status_t
fwd_do(dkv_fw_ctx_t *ctx, const char *const *args, char **out)
{
    return fw_do(ctx, fwd_argv(ctx, args), out);
}

/* Asks whether the default zone has service dkv (permanent config when
 * PERMANENT).  *YES: 1 or 0 (also when there is no such service).
 * Returns DKV_OK or a failure status. */
static dkv_status_t
fwd_query(dkv_fw_ctx_t *ctx, int permanent, int *yes)
{
    static const char *const perm[] = {"--permanent", "--query-service=dkv",
                                       NULL};
    static const char *const rt[] = {"--query-service=dkv", NULL};
    const char *const *argv;
    char *out;
    int code;
    dkv_status_t st = fwd_run(ctx, permanent ? perm : rt, &out, &code, &argv);

    if (st != DKV_OK) {
        return st;
    }
    if (code != 0 && code != 1 && !dkv_fw__contains(out, "invalid_service")) {
        return fw_failed(ctx, argv, out, code);
    }
    *yes = (code == 0);
    return DKV_OK;
}

/* Reads the permanent service dkv into *S (in ctx->pool). */
static dkv_status_t
fwd_load(dkv_fw_ctx_t *ctx, fwd_state_t *s)
{
    static const char *const ports[] = {"--permanent", "--service=dkv",
                                        "--get-ports", NULL};
    static const char *const desc[] = {"--permanent", "--service=dkv",
                                       "--get-description", NULL};
    const char *const *argv;
    char *out, **w;
    int code;
    dkv_status_t st;

    s->present = 0;
    s->ports = apr_array_make(ctx->pool, 4, sizeof(const char *));
    s->roles = apr_array_make(ctx->pool, 4, sizeof(dkv_fw_range_t));
    st = fwd_run(ctx, ports, &out, &code, &argv);
    if (st != DKV_OK) {
        return st;
    }
    if (code != 0) {
        if (dkv_fw__contains(out, "invalid_service")) {
            return DKV_OK;
        }
        return fw_failed(ctx, argv, out, code);
    }
    s->present = 1;
    for (w = fw_words(out, ctx->pool); *w != NULL; w++) {
        APR_ARRAY_PUSH(s->ports, const char *) = *w;
    }
    st = fwd_do(ctx, desc, &out);
    if (st != DKV_OK) {
        return st;
    }
    for (w = fw_words(out, ctx->pool); *w != NULL; w++) {
        char *eq = strchr(*w, '=');
        const char *role;
        int lo, hi;

        if (eq == NULL) {
            continue;
        }
        *eq = '\0';
        role = dkv_fw_tag_role(*w);
        if (role == NULL || !fw_parse_ports(eq + 1, &lo, &hi)) {
            continue;
        }
        fw_add_open(s->roles, role, lo, hi);
    }
    return DKV_OK;
}

/* The description naming the roles of S's ports, in ctx->pool. */
static const char *
fwd_description(dkv_fw_ctx_t *ctx, const fwd_state_t *s)
{
    const char *d = "";
    int i, j;

    for (i = 0; i < s->ports->nelts; i++) {
        const char *p = DKV_ARRAY_IDX(s->ports, i, const char *);
        int lo, hi;

        if (!fw_parse_ports(p, &lo, &hi)) {
            continue;
        }
        for (j = 0; j < s->roles->nelts; j++) {
            dkv_fw_range_t *r = &DKV_ARRAY_IDX(s->roles, j, dkv_fw_range_t);
            if (r->lo == lo && r->hi == hi) {
                d = apr_psprintf(ctx->pool, "%s%sdkv:%s=%s", d,
                                 d[0] != '\0' ? " " : "", r->name,
                                 dkv_fw__ports(r, '-', ctx->pool));
                break;
            }
        }
    }
    return d;
}

/* Index of port string PORT in S's ports, or -1. */
static int
fwd_find(const fwd_state_t *s, const char *port)
{
    int i;

    for (i = 0; i < s->ports->nelts; i++) {
        if (strcmp(DKV_ARRAY_IDX(s->ports, i, const char *), port) == 0) {
            return i;
        }
    }
    return -1;
}

/* detect: firewalld is in charge when `firewall-cmd --state` says
 * "running". */
static dkv_status_t
fwd_detect(dkv_fw_ctx_t *ctx, int *active, const char **why)
{
    static const char *const state[] = {"--state", NULL};
    static const char *const zone[] = {"--get-default-zone", NULL};
    char *out;
    int code;
    dkv_status_t st = fwd_run(ctx, state, &out, &code, NULL);

    *active = 0;
    if (st == APR_ENOENT) {
        *why = "firewall-cmd is not installed";
        return DKV_OK;
    }
    if (st != DKV_OK) {
        *why = apr_pstrdup(ctx->pool, dkv_last_error());
        return DKV_OK;
    }
    if (code != 0 && dkv_fw__denied(out)) {
        *why = apr_pstrcat(ctx->pool, "firewall-cmd: permission denied (",
                           dkv_fw__first_line(out, ctx->pool), "); run as root",
                           NULL);
        return DKV_OK;
    }
    if (code != 0 || strncmp(out, "running", 7) != 0) {
        *why =
            apr_pstrcat(ctx->pool, "firewalld is installed but not running (",
                        dkv_fw__first_line(out, ctx->pool), ")", NULL);
        return DKV_OK;
    }
    *active = 1;
    if (fwd_run(ctx, zone, &out, &code, NULL) == DKV_OK && code == 0) {
        *why = apr_pstrcat(ctx->pool, "firewalld is running, default zone ",
                           dkv_fw__first_line(out, ctx->pool), NULL);
    }
    else {
        *why = "firewalld is running";
    }
    return DKV_OK;
}

/* Writes S's description, and reloads firewalld when CHANGED or the
 * running config lacks the service. */
static dkv_status_t
fwd_finish(dkv_fw_ctx_t *ctx, const fwd_state_t *s, const char *old_desc,
           int changed)
{
    static const char *const reload[] = {"--reload", NULL};
    const char *desc = fwd_description(ctx, s);
    int yes = 0;
    dkv_status_t st;

    if (strcmp(desc, old_desc) != 0) {
        const char *args[4];
        args[0] = "--permanent";
        args[1] = "--service=dkv";
        args[2] = apr_pstrcat(ctx->pool, "--set-description=", desc, NULL);
        args[3] = NULL;
        st = fwd_do(ctx, args, NULL);
        if (st != DKV_OK) {
            return st;
        }
    }
    if (!changed) {
        st = fwd_query(ctx, 0, &yes);
        if (st != DKV_OK) {
            return st;
        }
        if (yes) {
            return DKV_OK;
        }
    }
    return fwd_do(ctx, reload, NULL);
}

/* open: creates the service if needed, adds the missing ports, names
 * their roles in its description, adds it to the default zone, reloads. */
static dkv_status_t
fwd_open(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    static const char *const create[] = {"--permanent", "--new-service=dkv",
                                         NULL};
    static const char *const shortname[] = {"--permanent", "--service=dkv",
                                            "--set-short=dkv", NULL};
    static const char *const add[] = {"--permanent", "--add-service=dkv", NULL};
    fwd_state_t s;
    const char *old_desc;
    int i, yes = 0, changed = 0;
    dkv_status_t st = fwd_load(ctx, &s);

    if (st != DKV_OK) {
        return st;
    }
    if (!s.present) {
        if ((st = fwd_do(ctx, create, NULL)) != DKV_OK
            || (st = fwd_do(ctx, shortname, NULL)) != DKV_OK) {
            return st;
        }
        changed = 1;
    }
    old_desc = fwd_description(ctx, &s);
    for (i = 0; i < n; i++) {
        const char *port = apr_pstrcat(
            ctx->pool, dkv_fw__ports(&ranges[i], '-', ctx->pool), "/tcp", NULL);
        const char *args[4];

        fw_add_open(s.roles, ranges[i].name, ranges[i].lo, ranges[i].hi);
        if (fwd_find(&s, port) >= 0) {
            continue;
        }
        args[0] = "--permanent";
        args[1] = "--service=dkv";
        args[2] = apr_pstrcat(ctx->pool, "--add-port=", port, NULL);
        args[3] = NULL;
        if ((st = fwd_do(ctx, args, NULL)) != DKV_OK) {
            return st;
        }
        APR_ARRAY_PUSH(s.ports, const char *) = port;
        changed = 1;
    }
    if ((st = fwd_query(ctx, 1, &yes)) != DKV_OK) {
        return st;
    }
    if (!yes) {
        if ((st = fwd_do(ctx, add, NULL)) != DKV_OK) {
            return st;
        }
        changed = 1;
    }
    return fwd_finish(ctx, &s, old_desc, changed);
}

/* close: removes the ports of RANGES from the service; with N 0, or when
 * no port is left, removes the service from the default zone and deletes
 * it; then reloads. */
static dkv_status_t
fwd_close(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    static const char *const remove[] = {"--permanent", "--remove-service=dkv",
                                         NULL};
    static const char *const del[] = {"--permanent", "--delete-service=dkv",
                                      NULL};
    static const char *const reload[] = {"--reload", NULL};
    fwd_state_t s;
    const char *old_desc;
    int i, yes = 0, changed = 0;
    dkv_status_t st = fwd_load(ctx, &s);

    if (st != DKV_OK) {
        return st;
    }
    if (!s.present) {
        return DKV_OK;
    }
    old_desc = fwd_description(ctx, &s);
    for (i = 0; i < n; i++) {
        const char *port = apr_pstrcat(
            ctx->pool, dkv_fw__ports(&ranges[i], '-', ctx->pool), "/tcp", NULL);
        const char *args[4];
        int at = fwd_find(&s, port);

        if (at < 0) {
            continue;
        }
        args[0] = "--permanent";
        args[1] = "--service=dkv";
        args[2] = apr_pstrcat(ctx->pool, "--remove-port=", port, NULL);
        args[3] = NULL;
        if ((st = fwd_do(ctx, args, NULL)) != DKV_OK) {
            return st;
        }
        DKV_ARRAY_IDX(s.ports, at, const char *) = "";
        changed = 1;
    }
    for (i = 0; i < s.ports->nelts; i++) {
        if (DKV_ARRAY_IDX(s.ports, i, const char *)[0] != '\0') {
            break;
        }
    }
    if (n > 0 && i < s.ports->nelts) {
        return changed ? fwd_finish(ctx, &s, old_desc, 1) : DKV_OK;
    }
    if ((st = fwd_query(ctx, 1, &yes)) != DKV_OK) {
        return st;
    }
    if (yes && (st = fwd_do(ctx, remove, NULL)) != DKV_OK) {
        return st;
    }
    if ((st = fwd_do(ctx, del, NULL)) != DKV_OK) {
        return st;
    }
    return fwd_do(ctx, reload, NULL);
}

/* list: the service's ports, when the running default zone has it. */
static dkv_status_t
fwd_list(dkv_fw_ctx_t *ctx, apr_array_header_t *open)
{
    fwd_state_t s;
    int i, j, yes = 0;
    dkv_status_t st = fwd_query(ctx, 0, &yes);

    if (st != DKV_OK || !yes) {
        return st;
    }
    if ((st = fwd_load(ctx, &s)) != DKV_OK) {
        return st;
    }
    for (i = 0; i < s.ports->nelts; i++) {
        const char *p = DKV_ARRAY_IDX(s.ports, i, const char *);
        const char *role = "custom";
        int lo, hi;

        if (strstr(p, "/tcp") == NULL || !fw_parse_ports(p, &lo, &hi)) {
            continue;
        }
        for (j = 0; j < s.roles->nelts; j++) {
            dkv_fw_range_t *r = &DKV_ARRAY_IDX(s.roles, j, dkv_fw_range_t);
            if (r->lo == lo && r->hi == hi) {
                role = r->name;
            }
        }
        fw_add_open(open, role, lo, hi);
    }
    return DKV_OK;
}

const dkv_fw_backend_t dkv_fw_firewalld = {"firewalld", fwd_detect, fwd_open,
                                           fwd_close, fwd_list};

/* ---------------------------------------------------------------- ufw */

/* One of dkv's ufw rules, from `ufw status`. */
typedef struct ufw_rule_t {
    const char *role;
    int lo, hi;
} ufw_rule_t;

/* 1 when W, the words of a `ufw status` rule line before its comment
 * ("7801:7810/tcp (v6) ALLOW Anywhere (v6)"), allow incoming traffic:
 * a tagged DENY, LIMIT or ALLOW OUT rule opens nothing, and `ufw delete
 * allow` would not remove it. */
static int
ufw_allows_in(char **w)
{
    int a = strcmp(w[1] != NULL ? w[1] : "", "(v6)") == 0 ? 2 : 1;

    if (w[a] == NULL || strcmp(w[a], "ALLOW") != 0) {
        return 0;
    }
    return w[a + 1] == NULL
           || (strcmp(w[a + 1], "OUT") != 0 && strcmp(w[a + 1], "FWD") != 0);
}

/* Runs `ufw status`: *ACTIVE 1 when it says "Status: active"; *RULES
 * (ufw_rule_t, may be NULL) receives dkv's rules, v4 and v6 as one. */
static dkv_status_t
ufw_load(dkv_fw_ctx_t *ctx, int *active, apr_array_header_t **rules)
{
    static const char *const argv[] = {"ufw", "status", NULL};
    char *out, **line;
    dkv_status_t st = fw_do(ctx, argv, &out);

    if (rules != NULL) {
        *rules = apr_array_make(ctx->pool, 4, sizeof(ufw_rule_t));
    }
    if (st != DKV_OK) {
        return st;
    }
    *active = strstr(out, "Status: active") != NULL;
    if (rules == NULL) {
        return DKV_OK;
    }
    for (line = fw_lines(out, ctx->pool); *line != NULL; line++) {
        char *hash = strstr(*line, "# dkv:");
        char **w;
        const char *role;
        int lo, hi, i, dup = 0;

        if (hash == NULL) {
            continue;
        }
        role = dkv_fw_tag_role(fw_words(hash + 2, ctx->pool)[0]);
        *hash = '\0';
        w = fw_words(*line, ctx->pool);
        if (role == NULL || w[0] == NULL || strstr(w[0], "/tcp") == NULL
            || !fw_parse_ports(w[0], &lo, &hi) || !ufw_allows_in(w)) {
            continue;
        }
        for (i = 0; i < (*rules)->nelts; i++) {
            ufw_rule_t *r = &DKV_ARRAY_IDX(*rules, i, ufw_rule_t);
            dup |= (r->lo == lo && r->hi == hi);
        }
        if (!dup) {
            ufw_rule_t *r = apr_array_push(*rules);
            r->role = role;
            r->lo = lo;
            r->hi = hi;
        }
    }
    return DKV_OK;
}

/* detect: ufw is in charge when `ufw status` says "Status: active". */
static dkv_status_t
ufw_detect(dkv_fw_ctx_t *ctx, int *active, const char **why)
{
    dkv_status_t st = ufw_load(ctx, active, NULL);

    if (st == APR_ENOENT) {
        *active = 0;
        *why = "ufw is not installed";
    }
    else if (st != DKV_OK) {
        *active = 0;
        *why = apr_pstrdup(ctx->pool, dkv_last_error());
    }
    else {
        *why = *active ? "ufw is active" : "ufw is installed but inactive";
    }
    return DKV_OK;
}

/* open: `ufw allow LO:HI/tcp comment dkv:ROLE` for each range not there
 * yet. */
static dkv_status_t
ufw_open(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    apr_array_header_t *rules;
    int active, i, j;
    dkv_status_t st = ufw_load(ctx, &active, &rules);

    if (st != DKV_OK) {
        return st;
    }
    for (i = 0; i < n; i++) {
        const char *argv[6];
        int have = 0;

        for (j = 0; j < rules->nelts; j++) {
            ufw_rule_t *r = &DKV_ARRAY_IDX(rules, j, ufw_rule_t);
            have |= (r->lo == ranges[i].lo && r->hi == ranges[i].hi);
        }
        if (have) {
            continue;
        }
        argv[0] = "ufw";
        argv[1] = "allow";
        argv[2] = apr_pstrcat(ctx->pool,
                              dkv_fw__ports(&ranges[i], ':', ctx->pool),
                              "/tcp", NULL);
        argv[3] = "comment";
        argv[4] = dkv_fw_tag(&ranges[i], ctx->pool);
        argv[5] = NULL;
        if ((st = fw_do(ctx, argv, NULL)) != DKV_OK) {
            return st;
        }
    }
    return DKV_OK;
}

/* close: `ufw delete allow LO:HI/tcp` for each of dkv's rules wanted. */
static dkv_status_t
ufw_close(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    apr_array_header_t *rules;
    int active, i;
    dkv_status_t st = ufw_load(ctx, &active, &rules);

    if (st != DKV_OK) {
        return st;
    }
    for (i = 0; i < rules->nelts; i++) {
        ufw_rule_t *r = &DKV_ARRAY_IDX(rules, i, ufw_rule_t);
        dkv_fw_range_t rg;
        const char *argv[5];

        if (!fw_wanted(ranges, n, r->lo, r->hi)) {
            continue;
        }
        rg.name = r->role;
        rg.lo = (uint16_t)r->lo;
        rg.hi = (uint16_t)r->hi;
        argv[0] = "ufw";
        argv[1] = "delete";
        argv[2] = "allow";
        argv[3] = apr_pstrcat(ctx->pool, dkv_fw__ports(&rg, ':', ctx->pool),
                              "/tcp", NULL);
        argv[4] = NULL;
        if ((st = fw_do(ctx, argv, NULL)) != DKV_OK) {
            return st;
        }
    }
    return DKV_OK;
}

/* list: dkv's rules in `ufw status`. */
static dkv_status_t
ufw_list(dkv_fw_ctx_t *ctx, apr_array_header_t *open)
{
    apr_array_header_t *rules;
    int active, i;
    dkv_status_t st = ufw_load(ctx, &active, &rules);

    if (st != DKV_OK) {
        return st;
    }
    for (i = 0; i < rules->nelts; i++) {
        ufw_rule_t *r = &DKV_ARRAY_IDX(rules, i, ufw_rule_t);
        fw_add_open(open, r->role, r->lo, r->hi);
    }
    return DKV_OK;
}

const dkv_fw_backend_t dkv_fw_ufw = {"ufw", ufw_detect, ufw_open, ufw_close,
                                     ufw_list};

/* ----------------------------------------------------------- iptables */

/* One of dkv's rules in a `-S INPUT` listing. */
typedef struct ipt_rule_t {
    const char *role;
    int lo, hi;
    char **spec; /* the listed words after "-A INPUT" */
} ipt_rule_t;

/* Runs `TOOL -S INPUT`.  *FILTERING: 1 when the policy drops or rejects
 * or INPUT has rules (may be NULL); *RULES (ipt_rule_t) dkv's rules. */
static dkv_status_t
ipt_load(dkv_fw_ctx_t *ctx, const char *tool, int *filtering, const char **why,
         apr_array_header_t **rules)
{
    const char *argv[4];
    char *out, **line;
    int nrules = 0;
    const char *policy = "?";
    dkv_status_t st;

    argv[0] = tool;
    argv[1] = "-S";
    argv[2] = "INPUT";
    argv[3] = NULL;
    *rules = apr_array_make(ctx->pool, 4, sizeof(ipt_rule_t));
    if ((st = fw_do(ctx, argv, &out)) != DKV_OK) {
        return st;
    }
    for (line = fw_lines(out, ctx->pool); *line != NULL; line++) {
        char **w = fw_words(*line, ctx->pool);
        const char *role = NULL;
        int i, lo = 0, hi = 0;

        if (w[0] != NULL && strcmp(w[0], "-P") == 0 && w[1] != NULL
            && w[2] != NULL) {
            policy = w[2];
        }
        if (w[0] == NULL || strcmp(w[0], "-A") != 0 || w[1] == NULL) {
            continue;
        }
        nrules++;
        for (i = 2; w[i] != NULL && w[i + 1] != NULL; i++) {
            if (strcmp(w[i], "--comment") == 0) {
                role = dkv_fw_tag_role(w[i + 1]);
            }
            else if (strcmp(w[i], "--dport") == 0) {
                fw_parse_ports(w[i + 1], &lo, &hi);
            }
        }
        if (role != NULL) {
            ipt_rule_t *r = apr_array_push(*rules);
            r->role = role;
            r->lo = lo;
            r->hi = hi;
            r->spec = w + 2;
        }
    }
    if (filtering != NULL) {
        *filtering = strcmp(policy, "DROP") == 0
                     || strcmp(policy, "REJECT") == 0 || nrules > 0;
        *why = apr_psprintf(ctx->pool, "INPUT policy %s, %d rules", policy,
                            nrules);
    }
    return DKV_OK;
}

/* detect: iptables is in charge when INPUT drops by default or has
 * rules. */
static dkv_status_t
ipt_detect(dkv_fw_ctx_t *ctx, int *active, const char **why)
{
    apr_array_header_t *rules;
    dkv_status_t st = ipt_load(ctx, "iptables", active, why, &rules);

    if (st == APR_ENOENT) {
        *active = 0;
        *why = "iptables is not installed";
    }
    else if (st != DKV_OK) {
        *active = 0;
        *why = apr_pstrdup(ctx->pool, dkv_last_error());
    }
    return DKV_OK;
}

/* Loads TOOL's INPUT rules for a change: for ip6tables, *SKIP is 1 when
 * it is missing or does not work (no IPv6), which is not an error. */
static dkv_status_t
ipt_prepare(dkv_fw_ctx_t *ctx, const char *tool, apr_array_header_t **rules,
            int *skip)
{
    dkv_status_t st = ipt_load(ctx, tool, NULL, NULL, rules);

    *skip = 0;
    if (st != DKV_OK && strcmp(tool, "ip6tables") == 0 && st != APR_EACCES) {
        *skip = 1;
        dkv_error_clear();
        return DKV_OK;
    }
    return st;
}

/* The tools open and close change: iptables, then ip6tables. */
static const char *const ipt_tools[] = {"iptables", "ip6tables", NULL};

/* open: `-I INPUT ... -j ACCEPT` for each range not there yet, in
 * iptables and ip6tables. */
static dkv_status_t
ipt_open(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    int t, i, j;

    for (t = 0; ipt_tools[t] != NULL; t++) {
        apr_array_header_t *rules;
        int skip;
        dkv_status_t st = ipt_prepare(ctx, ipt_tools[t], &rules, &skip);

        if (st != DKV_OK) {
            return st;
        }
        if (skip) {
            continue;
        }
        for (i = 0; i < n; i++) {
            const char *argv[16];
            ipt_rule_t *r;
            int have = 0;

            for (j = 0; j < rules->nelts; j++) {
                r = &DKV_ARRAY_IDX(rules, j, ipt_rule_t);
                have |= (r->lo == ranges[i].lo && r->hi == ranges[i].hi);
            }
            if (have) {
                continue;
            }
            argv[0] = ipt_tools[t];
            argv[1] = "-I";
            argv[2] = "INPUT";
            argv[3] = "-p";
            argv[4] = "tcp";
            argv[5] = "--dport";
            argv[6] = dkv_fw__ports(&ranges[i], ':', ctx->pool);
            argv[7] = "-m";
            argv[8] = "comment";
            argv[9] = "--comment";
            argv[10] = dkv_fw_tag(&ranges[i], ctx->pool);
            argv[11] = "-j";
            argv[12] = "ACCEPT";
            argv[13] = NULL;
            if ((st = fw_do(ctx, argv, NULL)) != DKV_OK) {
                return st;
            }
            /* A range given twice is inserted once. */
            r = apr_array_push(rules);
            r->role = ranges[i].name;
            r->lo = ranges[i].lo;
            r->hi = ranges[i].hi;
            r->spec = NULL;
        }
    }
    return DKV_OK;
}

/* close: `-D INPUT <the rule's listed spec>` for each of dkv's rules
 * wanted, in iptables and ip6tables. */
static dkv_status_t
ipt_close(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    int t, i;

    for (t = 0; ipt_tools[t] != NULL; t++) {
        apr_array_header_t *rules;
        int skip;
        dkv_status_t st = ipt_prepare(ctx, ipt_tools[t], &rules, &skip);

        if (st != DKV_OK) {
            return st;
        }
        if (skip) {
            continue;
        }
        for (i = 0; i < rules->nelts; i++) {
            ipt_rule_t *r = &DKV_ARRAY_IDX(rules, i, ipt_rule_t);
            apr_array_header_t *argv;
            char **w;

            if (!fw_wanted(ranges, n, r->lo, r->hi)) {
                continue;
            }
            argv = apr_array_make(ctx->pool, 16, sizeof(const char *));
            APR_ARRAY_PUSH(argv, const char *) = ipt_tools[t];
            APR_ARRAY_PUSH(argv, const char *) = "-D";
            APR_ARRAY_PUSH(argv, const char *) = "INPUT";
            for (w = r->spec; *w != NULL; w++) {
                APR_ARRAY_PUSH(argv, const char *) = *w;
            }
            APR_ARRAY_PUSH(argv, const char *) = NULL;
            st = fw_do(ctx, (const char *const *)(void *)argv->elts, NULL);
            if (st != DKV_OK) {
                return st;
            }
        }
    }
    return DKV_OK;
}

/* list: dkv's rules in iptables and ip6tables. */
static dkv_status_t
ipt_list(dkv_fw_ctx_t *ctx, apr_array_header_t *open)
{
    int t, i;

    for (t = 0; ipt_tools[t] != NULL; t++) {
        apr_array_header_t *rules;
        int skip;
        dkv_status_t st = ipt_prepare(ctx, ipt_tools[t], &rules, &skip);

        if (st != DKV_OK) {
            return st;
        }
        for (i = 0; !skip && i < rules->nelts; i++) {
            ipt_rule_t *r = &DKV_ARRAY_IDX(rules, i, ipt_rule_t);
            if (r->lo > 0) {
                fw_add_open(open, r->role, r->lo, r->hi);
            }
        }
    }
    return DKV_OK;
}

const dkv_fw_backend_t dkv_fw_iptables = {"iptables", ipt_detect, ipt_open,
                                          ipt_close, ipt_list};
