/*
 * fw_windows.c -- the Windows Defender Firewall backends
 * (platform/firewall.h): "windows" through the COM API (the seam
 * dkv_fw_winapi_t; platform/win32/fwcom.c is the real one) and "netsh"
 * through `netsh advfirewall`, for systems where COM is unavailable.
 *
 * Both make one inbound allow rule per range, TCP, every profile, named
 * "dkv ROLE ports"; the COM rules are also in the group "dkv" with the
 * tag ("dkv:ROLE") as description.  Rules are removed by name, so when
 * two ranges share a name (two custom ranges) and only one is closed,
 * the other is added back.
 *
 * netsh reads back with `netsh advfirewall firewall show rule name=all`:
 * blocks of "Rule Name:" and "LocalPort:" lines, of which only the
 * "dkv ... ports" names count.  netsh is in charge when
 * `netsh advfirewall show currentprofile state` says "ON".
 */
#include <string.h>

#include <apr_strings.h>

#include "platform/fw-int.h"
#include "common/alloc.h"
#include "common/status.h"

/* The group of dkv's COM rules. */
#define WIN_GROUP "dkv"

/* The name of R's rule, "dkv ROLE ports", in POOL. */
static const char *
win_rule_name(const dkv_fw_range_t *r, apr_pool_t *pool)
{
    return apr_pstrcat(pool, "dkv ", r->name != NULL ? r->name : "custom",
                       " ports", NULL);
}

/* The role in rule name NAME ("dkv cluster ports" -> "cluster"), or NULL
 * when NAME is not one of dkv's. */
static const char *
win_name_role(const char *name, apr_pool_t *pool)
{
    size_t n = strlen(name);
    const char *tag;

    if (n < strlen("dkv  ports") || strncmp(name, "dkv ", 4) != 0 ||
        strcmp(name + n - strlen(" ports"), " ports") != 0) {
        return NULL;
    }
    tag = apr_pstrcat(pool, "dkv:",
                      apr_pstrndup(pool, name + 4, n - 4 - strlen(" ports")),
                      NULL);
    return dkv_fw_tag_role(tag);
}

/* Sets *RM to the names of the rules in NOW (dkv_fw_range_t) that
 * closing RANGES (N; 0: all) removes, and *READD to the ranges of NOW
 * that share such a name but stay open. */
static void
win_plan_close(apr_array_header_t **rm, apr_array_header_t **readd,
               const apr_array_header_t *now, const dkv_fw_range_t *ranges,
               int n, apr_pool_t *pool)
{
    int i, j;

    *rm = apr_array_make(pool, 4, sizeof(const char *));
    *readd = apr_array_make(pool, 4, sizeof(dkv_fw_range_t));
    for (i = 0; i < now->nelts; i++) {
        const dkv_fw_range_t *r = &DKV_ARRAY_IDX(now, i, dkv_fw_range_t);
        const char *name = win_rule_name(r, pool);
        int dup = 0;

        if (!dkv_fw__selected(ranges, n, r)) {
            continue;
        }
        for (j = 0; j < (*rm)->nelts; j++) {
            if (strcmp(DKV_ARRAY_IDX(*rm, j, const char *), name) == 0) {
                dup = 1;
            }
        }
        if (!dup) {
            APR_ARRAY_PUSH(*rm, const char *) = name;
        }
    }
    for (i = 0; i < now->nelts; i++) {
        const dkv_fw_range_t *r = &DKV_ARRAY_IDX(now, i, dkv_fw_range_t);
        const char *name = win_rule_name(r, pool);

        if (dkv_fw__selected(ranges, n, r)) {
            continue;
        }
        for (j = 0; j < (*rm)->nelts; j++) {
            if (strcmp(DKV_ARRAY_IDX(*rm, j, const char *), name) == 0) {
                *(dkv_fw_range_t *)apr_array_push(*readd) = *r;
                break;
            }
        }
    }
}

/* ------------------------------------------------------------ windows */

/* See firewall.h: active when the COM firewall answers. */
static dkv_status_t
win_detect(dkv_fw_ctx_t *ctx, int *active, const char **why)
{
    dkv_status_t rv;

    dkv_error_clear();
    rv = ctx->winapi.available(ctx->winapi.baton);
    if (rv == DKV_OK) {
        *active = 1;
        *why = "Windows Defender Firewall answers (COM INetFwPolicy2)";
        return DKV_OK;
    }
    *active = 0;
    *why = apr_pstrdup(ctx->pool, *dkv_last_error() != '\0'
                       ? dkv_last_error() : dkv_strerror(rv));
    return DKV_OK;
}

/* Appends dkv's COM rules to OPEN: every rule of the group with a dkv
 * name or tag and valid ports. */
static dkv_status_t
win_list(dkv_fw_ctx_t *ctx, apr_array_header_t *open)
{
    apr_array_header_t *rules = apr_array_make(ctx->pool, 8,
                                               sizeof(dkv_fw_winrule_t));
    dkv_status_t rv;
    int i;

    rv = ctx->winapi.list(ctx->winapi.baton, WIN_GROUP, rules, ctx->pool);
    if (rv != DKV_OK) {
        return rv;
    }
    for (i = 0; i < rules->nelts; i++) {
        const dkv_fw_winrule_t *w = &DKV_ARRAY_IDX(rules, i,
                                                   dkv_fw_winrule_t);
        const char *role = NULL;
        uint16_t lo, hi;

        if (w->name == NULL || w->local_ports == NULL) {
            continue;
        }
        if (w->description != NULL) {
            role = dkv_fw_tag_role(w->description);
        }
        if (role == NULL) {
            role = win_name_role(w->name, ctx->pool);
        }
        if (role == NULL ||
            !dkv_fw__parse_ports(&lo, &hi, w->local_ports, -1)) {
            continue;
        }
        dkv_fw__append(open, role, lo, hi);
    }
    return DKV_OK;
}

/* Adds the COM rule for R. */
static dkv_status_t
win_add(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *r)
{
    dkv_fw_winrule_t w;

    w.name = win_rule_name(r, ctx->pool);
    w.description = dkv_fw_tag(r, ctx->pool);
    w.group = WIN_GROUP;
    w.local_ports = dkv_fw__ports(r, '-', ctx->pool);
    return ctx->winapi.add(ctx->winapi.baton, &w);
}

/* See firewall.h. */
static dkv_status_t
win_open(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    apr_array_header_t *now = apr_array_make(ctx->pool, 8,
                                             sizeof(dkv_fw_range_t));
    dkv_status_t rv;
    int i;

    rv = win_list(ctx, now);
    for (i = 0; rv == DKV_OK && i < n; i++) {
        if (!dkv_fw__has_range(now, &ranges[i])) {
            rv = win_add(ctx, &ranges[i]);
            if (rv == DKV_OK) {
                dkv_fw__append(now, ranges[i].name, ranges[i].lo,
                               ranges[i].hi);
            }
        }
    }
    return rv;
}

/* See firewall.h. */
static dkv_status_t
win_close(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    apr_array_header_t *now = apr_array_make(ctx->pool, 8,
                                             sizeof(dkv_fw_range_t));
    apr_array_header_t *rm, *readd;
    dkv_status_t rv;
    int i;

    rv = win_list(ctx, now);
    if (rv != DKV_OK) {
        return rv;
    }
    win_plan_close(&rm, &readd, now, ranges, n, ctx->pool);
    for (i = 0; rv == DKV_OK && i < rm->nelts; i++) {
        rv = ctx->winapi.remove(ctx->winapi.baton,
                                DKV_ARRAY_IDX(rm, i, const char *));
    }
    for (i = 0; rv == DKV_OK && i < readd->nelts; i++) {
        rv = win_add(ctx, &DKV_ARRAY_IDX(readd, i, dkv_fw_range_t));
    }
    return rv;
}

const dkv_fw_backend_t dkv_fw_windows = {
    "windows", win_detect, win_open, win_close, win_list
};

/* -------------------------------------------------------------- netsh */

/* Maps a run of netsh to a status: DKV_OK when it ran and exited 0. */
static dkv_status_t
netsh_check(dkv_fw_ctx_t *ctx, dkv_status_t rv, int code, const char *out)
{
    if (rv != DKV_OK) {
        return rv;
    }
    if (code != 0 || dkv_fw__denied(out)) {
        return dkv_fw__failed(ctx, "netsh", code, out);
    }
    return DKV_OK;
}

/* See firewall.h: active when the current profile's state is ON. */
static dkv_status_t
netsh_detect(dkv_fw_ctx_t *ctx, int *active, const char **why)
{
    char *out, *line, *last = NULL;
    int code;
    dkv_status_t rv;

    *active = 0;
    rv = dkv_fw__run(ctx, &out, &code, NULL, "netsh", "advfirewall", "show",
                     "currentprofile", "state", NULL);
    if (APR_STATUS_IS_ENOENT(rv)) {
        *why = "netsh is not installed";
        return DKV_OK;
    }
    if (rv != DKV_OK) {
        return rv;
    }
    if (code != 0) {
        (void)dkv_fw__failed(ctx, "netsh", code, out);
        *why = apr_pstrdup(ctx->pool, dkv_last_error());
        return DKV_OK;
    }
    for (line = apr_strtok(out, "\r\n", &last); line != NULL;
         line = apr_strtok(NULL, "\r\n", &last)) {
        char *word, *wlast = NULL;

        if (strncmp(line, "State", 5) != 0) {
            continue;
        }
        (void)apr_strtok(line, " \t", &wlast);
        word = apr_strtok(NULL, " \t", &wlast);
        if (word != NULL && strcmp(word, "ON") == 0) {
            *active = 1;
            *why = "the Windows firewall is on for the current profile";
        }
        else {
            *why = "the Windows firewall is off for the current profile";
        }
        return DKV_OK;
    }
    *why = apr_psprintf(ctx->pool, "netsh did not say the firewall's state"
                        " (%s)", *dkv_fw__first_line(out, ctx->pool) != '\0'
                        ? dkv_fw__first_line(out, ctx->pool) : "no output");
    return DKV_OK;
}

/* The value of a netsh "Key:   value" LINE when it starts with KEY
 * (followed by ':'), in POOL; else NULL. */
static const char *
netsh_value(const char *line, const char *key, apr_pool_t *pool)
{
    size_t n = strlen(key);
    const char *v, *end;

    if (strncmp(line, key, n) != 0 || line[n] != ':') {
        return NULL;
    }
    for (v = line + n + 1; *v == ' ' || *v == '\t'; v++) {
    }
    end = v + strlen(v);
    while (end > v && (end[-1] == ' ' || end[-1] == '\t' ||
                       end[-1] == '\r')) {
        end--;
    }
    return apr_pstrndup(pool, v, (apr_size_t)(end - v));
}

/* Appends the ranges of netsh's dkv rules to OPEN. */
static dkv_status_t
netsh_list(dkv_fw_ctx_t *ctx, apr_array_header_t *open)
{
    char *out, *line, *last = NULL;
    const char *role = NULL;
    int code;
    dkv_status_t rv;

    rv = dkv_fw__run(ctx, &out, &code, NULL, "netsh", "advfirewall",
                     "firewall", "show", "rule", "name=all", NULL);
    if (rv == DKV_OK && dkv_fw__contains(out, "No rules match")) {
        return DKV_OK;
    }
    rv = netsh_check(ctx, rv, code, out);
    if (rv != DKV_OK) {
        return rv;
    }
    for (line = apr_strtok(out, "\n", &last); line != NULL;
         line = apr_strtok(NULL, "\n", &last)) {
        const char *v;
        uint16_t lo, hi;

        if ((v = netsh_value(line, "Rule Name", ctx->pool)) != NULL) {
            role = win_name_role(v, ctx->pool);
        }
        else if (role != NULL &&
                 (v = netsh_value(line, "LocalPort", ctx->pool)) != NULL) {
            if (dkv_fw__parse_ports(&lo, &hi, v, -1)) {
                dkv_fw__append(open, role, lo, hi);
            }
            role = NULL;
        }
    }
    return DKV_OK;
}

/* Adds netsh's rule for R. */
static dkv_status_t
netsh_add(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *r)
{
    apr_pool_t *p = ctx->pool;
    char *out;
    int code;
    dkv_status_t rv;

    rv = dkv_fw__run(ctx, &out, &code, NULL, "netsh", "advfirewall",
                     "firewall", "add", "rule",
                     apr_pstrcat(p, "name=", win_rule_name(r, p), NULL),
                     "dir=in", "action=allow", "protocol=TCP",
                     apr_pstrcat(p, "localport=", dkv_fw__ports(r, '-', p),
                                 NULL),
                     apr_pstrcat(p, "description=", dkv_fw_tag(r, p), NULL),
                     NULL);
    return netsh_check(ctx, rv, code, out);
}

/* See firewall.h. */
static dkv_status_t
netsh_open(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    apr_array_header_t *now = apr_array_make(ctx->pool, 8,
                                             sizeof(dkv_fw_range_t));
    dkv_status_t rv;
    int i;

    rv = netsh_list(ctx, now);
    for (i = 0; rv == DKV_OK && i < n; i++) {
        if (!dkv_fw__has_range(now, &ranges[i])) {
            rv = netsh_add(ctx, &ranges[i]);
            if (rv == DKV_OK) {
                dkv_fw__append(now, ranges[i].name, ranges[i].lo,
                               ranges[i].hi);
            }
        }
    }
    return rv;
}

/* See firewall.h. */
static dkv_status_t
netsh_close(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    apr_array_header_t *now = apr_array_make(ctx->pool, 8,
                                             sizeof(dkv_fw_range_t));
    apr_array_header_t *rm, *readd;
    dkv_status_t rv;
    int i;

    rv = netsh_list(ctx, now);
    if (rv != DKV_OK) {
        return rv;
    }
    win_plan_close(&rm, &readd, now, ranges, n, ctx->pool);
    for (i = 0; rv == DKV_OK && i < rm->nelts; i++) {
        char *out;
        int code;

        rv = dkv_fw__run(ctx, &out, &code, NULL, "netsh", "advfirewall",
                         "firewall", "delete", "rule",
                         apr_pstrcat(ctx->pool, "name=",
                                     DKV_ARRAY_IDX(rm, i, const char *),
                                     NULL), NULL);
        rv = netsh_check(ctx, rv, code, out);
    }
    for (i = 0; rv == DKV_OK && i < readd->nelts; i++) {
        rv = netsh_add(ctx, &DKV_ARRAY_IDX(readd, i, dkv_fw_range_t));
    }
    return rv;
}

const dkv_fw_backend_t dkv_fw_netsh = {
    "netsh", netsh_detect, netsh_open, netsh_close, netsh_list
};
