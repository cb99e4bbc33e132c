/*
 * fw_pf.c -- the pf backend (FreeBSD, macOS; platform/firewall.h).
 *
 * dkv's rules live in their own anchor, "dkv", one rule per range:
 *
 *     pass in quick proto tcp to any port LO:HI keep state label "dkv:ROLE"
 *
 * Opening and closing rewrite the whole anchor -- the rules dkv has
 * there now, plus or minus the ranges asked for -- load it with
 * `pfctl -a dkv -f -` (the rules on standard input) and keep the same
 * text in the anchor file (ctx->pf_anchor_file, /etc/pf.anchors/dkv),
 * which pf.conf loads at boot with `load anchor "dkv" from ...`.  An
 * empty anchor is flushed with `pfctl -a dkv -F rules`.  The rules now
 * open are read back with `pfctl -a dkv -s rules`, by their labels (an
 * anchor that does not exist yet, which pfctl refuses with "Invalid
 * argument", reads as empty).
 *
 * pf is in charge when `pfctl -s info` says "Status: Enabled"; detection
 * also says when the main ruleset (`pfctl -s rules`) has no
 * `anchor "dkv"`, since then the anchor's rules are never evaluated.
 */
#include <string.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include "platform/fw-int.h"
#include "common/alloc.h"
#include "common/status.h"

/* The anchor and its default file. */
#define PF_ANCHOR "dkv"
#define PF_ANCHOR_FILE "/etc/pf.anchors/dkv"

/* The anchor file of CTX. */
static const char *
pf_file(const dkv_fw_ctx_t *ctx)
{
    return ctx->pf_anchor_file != NULL ? ctx->pf_anchor_file
                                       : PF_ANCHOR_FILE;
}

/* Maps a run of pfctl (RV from the runner, CODE, OUT) to a status:
 * DKV_OK when it ran and exited 0. */
static dkv_status_t
pf_check(dkv_fw_ctx_t *ctx, dkv_status_t rv, int code, const char *out)
{
    if (rv != DKV_OK) {
        return rv;
    }
    if (code != 0) {
        return dkv_fw__failed(ctx, "pfctl", code, out);
    }
    return DKV_OK;
}

/* See firewall.h. */
static dkv_status_t
pf_detect(dkv_fw_ctx_t *ctx, int *active, const char **why)
{
    char *out;
    int code;
    dkv_status_t rv;

    *active = 0;
    rv = dkv_fw__run(ctx, &out, &code, NULL, "pfctl", "-s", "info", NULL);
    if (APR_STATUS_IS_ENOENT(rv)) {
        *why = "pfctl is not installed";
        return DKV_OK;
    }
    if (rv != DKV_OK) {
        return rv;
    }
    if (code != 0) {
        rv = dkv_fw__failed(ctx, "pfctl", code, out);
        *why = apr_pstrdup(ctx->pool, dkv_last_error());
        (void)rv;
        return DKV_OK;
    }
    if (dkv_fw__contains(out, "Status: Disabled")) {
        *why = "pf is installed but disabled";
        return DKV_OK;
    }
    if (!dkv_fw__contains(out, "Status: Enabled")) {
        *why = apr_psprintf(ctx->pool, "pfctl -s info says neither enabled"
                            " nor disabled: %s",
                            dkv_fw__first_line(out, ctx->pool));
        return DKV_OK;
    }
    *active = 1;
    rv = dkv_fw__run(ctx, &out, &code, NULL, "pfctl", "-s", "rules", NULL);
    if (rv == DKV_OK && code == 0 &&
        !dkv_fw__contains(out, "anchor \"" PF_ANCHOR "\"")) {
        *why = apr_psprintf(ctx->pool, "pf is enabled, but the main ruleset"
                            " has no anchor \"" PF_ANCHOR "\": add "
                            "'anchor \"" PF_ANCHOR "\"' and 'load anchor \""
                            PF_ANCHOR "\" from \"%s\"' to pf.conf",
                            pf_file(ctx));
    }
    else {
        *why = "pf is enabled";
    }
    return DKV_OK;
}

/* Parses one line of `pfctl -s rules` into R when it is one of dkv's
 * (a label "dkv:ROLE" and a port or port range).  Returns 1 when it is. */
static int
pf_parse_rule(dkv_fw_range_t *r, const char *line, apr_pool_t *pool)
{
    const char *lab = strstr(line, "label \"dkv:");
    const char *p, *q, *role;
    char *tag;
    size_t n;

    if (lab == NULL) {
        return 0;
    }
    lab += strlen("label \"");
    q = strchr(lab, '"');
    if (q == NULL) {
        return 0;
    }
    tag = apr_pstrndup(pool, lab, (apr_size_t)(q - lab));
    role = dkv_fw_tag_role(tag);
    if (role == NULL) {
        return 0;
    }
    p = strstr(line, " port ");
    if (p == NULL) {
        return 0;
    }
    p += strlen(" port ");
    if (p[0] == '=' && p[1] == ' ') {
        p += 2;
    }
    n = strcspn(p, " \t\r\n");
    if (!dkv_fw__parse_ports(&r->lo, &r->hi, p, (int)n)) {
        return 0;
    }
    r->name = role;
    return 1;
}

/* Appends dkv's rules in the anchor to OPEN (dkv_fw_range_t). */
static dkv_status_t
pf_list(dkv_fw_ctx_t *ctx, apr_array_header_t *open)
{
    char *out, *line, *last = NULL;
    int code;
    dkv_status_t rv;

    rv = dkv_fw__run(ctx, &out, &code, NULL, "pfctl", "-a", PF_ANCHOR,
                     "-s", "rules", NULL);
    /* An anchor that does not exist yet (pf.conf does not name it and
     * nothing was loaded into it) is refused with EINVAL: it holds no
     * rules, and `pfctl -a dkv -f -` will make it. */
    if (rv == DKV_OK && code != 0 && !dkv_fw__denied(out) &&
        (dkv_fw__contains(out, "Invalid argument") ||
         (dkv_fw__contains(out, "anchor") &&
          dkv_fw__contains(out, "not found")))) {
        return DKV_OK;
    }
    rv = pf_check(ctx, rv, code, out);
    if (rv != DKV_OK) {
        return rv;
    }
    for (line = apr_strtok(out, "\n", &last); line != NULL;
         line = apr_strtok(NULL, "\n", &last)) {
        dkv_fw_range_t r;

        if (pf_parse_rule(&r, line, ctx->pool)) {
            dkv_fw__append(open, r.name, r.lo, r.hi);
        }
    }
    return DKV_OK;
}

/* The anchor's text for RULES (dkv_fw_range_t), in ctx->pool. */
static const char *
pf_anchor_text(dkv_fw_ctx_t *ctx, const apr_array_header_t *rules)
{
    const char *text = "";
    int i;

    for (i = 0; i < rules->nelts; i++) {
        const dkv_fw_range_t *r = &DKV_ARRAY_IDX(rules, i, dkv_fw_range_t);

        text = apr_pstrcat(ctx->pool, text, "pass in quick proto tcp to any "
                           "port ", dkv_fw__ports(r, ':', ctx->pool),
                           " keep state label \"", dkv_fw_tag(r, ctx->pool),
                           "\"\n", NULL);
    }
    return text;
}

/* Writes TEXT (the anchor's rules) to the anchor file, through a
 * temporary file renamed over it.  Returns DKV_OK or the failure. */
static dkv_status_t
pf_write_file(dkv_fw_ctx_t *ctx, const char *text)
{
    const char *path = pf_file(ctx);
    const char *tmp = apr_pstrcat(ctx->pool, path, ".tmp", NULL);
    const char *slash = strrchr(path, '/');
    const char *body;
    apr_file_t *f;
    apr_status_t rv;
    char msg[120];

    if (slash != NULL && slash != path) {
        (void)apr_dir_make_recursive(
            apr_pstrndup(ctx->pool, path, (apr_size_t)(slash - path)),
            APR_FPROT_OS_DEFAULT, ctx->pool);
    }
    body = apr_pstrcat(ctx->pool,
                       "# dkv's pf rules, written by `dkv firewall`; "
                       "pf.conf loads them with\n"
                       "#   anchor \"" PF_ANCHOR "\"\n"
                       "#   load anchor \"" PF_ANCHOR "\" from \"", path,
                       "\"\n", text, NULL);
    rv = apr_file_open(&f, tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE |
                       APR_FOPEN_TRUNCATE, APR_FPROT_OS_DEFAULT, ctx->pool);
    if (rv == APR_SUCCESS) {
        rv = apr_file_write_full(f, body, strlen(body), NULL);
        if (rv == APR_SUCCESS) {
            rv = apr_file_close(f);
        }
        else {
            apr_file_close(f);
        }
    }
    if (rv == APR_SUCCESS) {
        rv = apr_file_rename(tmp, path, ctx->pool);
    }
    if (rv != APR_SUCCESS) {
        (void)apr_file_remove(tmp, ctx->pool);
        return dkv_error_set(rv, "cannot write the pf anchor file %s: %s%s",
                             path, apr_strerror(rv, msg, sizeof(msg)),
                             APR_STATUS_IS_EACCES(rv) ? "; run as root"
                             : "");
    }
    return DKV_OK;
}

/* Makes the anchor hold exactly RULES: loads them (or flushes the
 * anchor when there are none), then writes the anchor file. */
static dkv_status_t
pf_load(dkv_fw_ctx_t *ctx, const apr_array_header_t *rules)
{
    const char *text = pf_anchor_text(ctx, rules);
    char *out;
    int code;
    dkv_status_t rv;

    if (rules->nelts == 0) {
        rv = dkv_fw__run(ctx, &out, &code, NULL, "pfctl", "-a", PF_ANCHOR,
                         "-F", "rules", NULL);
    }
    else {
        rv = dkv_fw__run(ctx, &out, &code, text, "pfctl", "-a", PF_ANCHOR,
                         "-f", "-", NULL);
    }
    rv = pf_check(ctx, rv, code, out);
    if (rv != DKV_OK) {
        return rv;
    }
    return pf_write_file(ctx, text);
}

/* See firewall.h. */
static dkv_status_t
pf_open(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    apr_array_header_t *rules = apr_array_make(ctx->pool, 8,
                                               sizeof(dkv_fw_range_t));
    int i, added = 0;
    dkv_status_t rv;

    rv = pf_list(ctx, rules);
    if (rv != DKV_OK) {
        return rv;
    }
    for (i = 0; i < n; i++) {
        if (!dkv_fw__has_range(rules, &ranges[i])) {
            dkv_fw__append(rules, ranges[i].name, ranges[i].lo,
                           ranges[i].hi);
            added++;
        }
    }
    if (added == 0) {
        return DKV_OK;
    }
    return pf_load(ctx, rules);
}

/* See firewall.h. */
static dkv_status_t
pf_close(dkv_fw_ctx_t *ctx, const dkv_fw_range_t *ranges, int n)
{
    apr_array_header_t *now = apr_array_make(ctx->pool, 8,
                                             sizeof(dkv_fw_range_t));
    apr_array_header_t *keep = apr_array_make(ctx->pool, 8,
                                              sizeof(dkv_fw_range_t));
    int i;
    dkv_status_t rv;

    rv = pf_list(ctx, now);
    if (rv != DKV_OK) {
        return rv;
    }
    for (i = 0; i < now->nelts; i++) {
        const dkv_fw_range_t *r = &DKV_ARRAY_IDX(now, i, dkv_fw_range_t);

        if (!dkv_fw__selected(ranges, n, r)) {
            *(dkv_fw_range_t *)apr_array_push(keep) = *r;
        }
    }
    if (keep->nelts == now->nelts) {
        return DKV_OK;
    }
    return pf_load(ctx, keep);
}

const dkv_fw_backend_t dkv_fw_pf = {
    "pf", pf_detect, pf_open, pf_close, pf_list
};
