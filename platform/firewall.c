/*
 * firewall.c -- the parts of platform/firewall.h every backend shares:
 * port ranges and their tags, the real program runner (APR child
 * processes, one pipe for standard output and error, a time limit),
 * the list of backends per system, detection, and the helpers of
 * platform/fw-int.h.
 *
 * The runner looks the program up on PATH itself, so that "not
 * installed" is APR_ENOENT before anything runs, and runs it with the
 * caller's environment plus LC_ALL=C, so that the backends read the
 * programs' English messages.  Design: docs/internals/operations.md.
 */
#include <stdarg.h>
#include <string.h>

#include <apr_env.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "platform/fw-int.h"
#include "common/alloc.h"
#include "common/status.h"

/* Longest run of a command, in seconds. */
#define FW_RUN_LIMIT_SEC 30

/* Longest output kept from a command, in bytes (the rest is read and
 * dropped). */
#define FW_OUT_MAX (4 * 1024 * 1024)

/* Longest program line quoted in a message, in bytes. */
#define FW_LINE_MAX 160

#if defined(_WIN32)
#define FW_PATH_SEP ';'
#else
#define FW_PATH_SEP ':'
#endif

/* ------------------------------------------------------------- ranges */

/* The roles dkv tags its rules with. */
static const char *const fw_roles[] = {
    "management", "cluster", "client", "custom", NULL
};

/* The role in fw_roles equal to NAME (LEN bytes), or NULL. */
static const char *
fw_role(const char *name, size_t len)
{
    int i;

    for (i = 0; fw_roles[i] != NULL; i++) {
        if (strlen(fw_roles[i]) == len &&
            strncmp(fw_roles[i], name, len) == 0) {
            return fw_roles[i];
        }
    }
    return NULL;
}

/* See firewall.h. */
void
dkv_fw_default_ranges(apr_array_header_t *ranges)
{
    dkv_fw__append(ranges, "management", DKV_FW_MANAGEMENT_LO,
                   DKV_FW_MANAGEMENT_HI);
    dkv_fw__append(ranges, "cluster", DKV_FW_CLUSTER_LO,
                   DKV_FW_CLUSTER_HI);
    dkv_fw__append(ranges, "client", DKV_FW_CLIENT_LO, DKV_FW_CLIENT_HI);
}

/* Parses one decimal port of TEXT (LEN bytes) into *PORT.  Returns 1
 * when it is a number in 1..65535, else 0. */
static int
fw_parse_port(uint16_t *port, const char *text, size_t len)
{
    unsigned long v = 0;
    size_t i;

    if (len == 0 || len > 5) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9') {
            return 0;
        }
        v = v * 10 + (unsigned long)(text[i] - '0');
    }
    if (v < 1 || v > 65535) {
        return 0;
    }
    *port = (uint16_t)v;
    return 1;
}

/* See fw-int.h. */
int
dkv_fw__parse_ports(uint16_t *lo, uint16_t *hi, const char *text, int len)
{
    size_t n = len < 0 ? strlen(text) : (size_t)len;
    size_t i;

    for (i = 0; i < n; i++) {
        if (text[i] == '-' || text[i] == ':') {
            break;
        }
    }
    if (i == n) {
        if (!fw_parse_port(lo, text, n)) {
            return 0;
        }
        *hi = *lo;
        return 1;
    }
    if (!fw_parse_port(lo, text, i) ||
        !fw_parse_port(hi, text + i + 1, n - i - 1)) {
        return 0;
    }
    return *lo <= *hi;
}

/* See firewall.h. */
dkv_status_t
dkv_fw_parse_ranges(apr_array_header_t **ranges, const char *text,
                    apr_pool_t *pool)
{
    apr_array_header_t *out = apr_array_make(pool, 4,
                                             sizeof(dkv_fw_range_t));
    const char *p = text != NULL ? text : "";
    int items = 0;

    while (*p != '\0') {
        const char *end, *eq, *role = "custom";
        dkv_fw_range_t r;
        size_t len;

        while (*p == ',' || *p == ' ' || *p == '\t') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        for (end = p; *end != '\0' && *end != ',' && *end != ' ' &&
             *end != '\t'; end++) {
        }
        len = (size_t)(end - p);
        eq = memchr(p, '=', len);
        if (eq != NULL) {
            role = fw_role(p, (size_t)(eq - p));
            if (role == NULL) {
                return dkv_error_set(DKV_EINVAL, "bad range '%.*s': the "
                                     "role must be management, cluster, "
                                     "client or custom", (int)len, p);
            }
        }
        if (!dkv_fw__parse_ports(&r.lo, &r.hi, eq != NULL ? eq + 1 : p,
                                 (int)(end - (eq != NULL ? eq + 1 : p)))) {
            return dkv_error_set(DKV_EINVAL, "bad range '%.*s': expected "
                                 "LO-HI or PORT, ports 1-65535, LO <= HI",
                                 (int)len, p);
        }
        r.name = role;
        *(dkv_fw_range_t *)apr_array_push(out) = r;
        items++;
        p = end;
    }
    if (items == 0) {
        return dkv_error_set(DKV_EINVAL, "no port ranges given");
    }
    *ranges = out;
    return DKV_OK;
}

/* See firewall.h. */
const char *
dkv_fw_tag(const dkv_fw_range_t *r, apr_pool_t *pool)
{
    return apr_pstrcat(pool, "dkv:", r->name != NULL ? r->name : "custom",
                       NULL);
}

/* See firewall.h. */
const char *
dkv_fw_tag_role(const char *tag)
{
    if (tag == NULL || strncmp(tag, "dkv:", 4) != 0) {
        return NULL;
    }
    return fw_role(tag + 4, strlen(tag + 4));
}

/* ------------------------------------------------- helpers (fw-int.h) */

/* See fw-int.h. */
int
dkv_fw__same_range(const dkv_fw_range_t *a, const dkv_fw_range_t *b)
{
    return a->lo == b->lo && a->hi == b->hi;
}

/* See fw-int.h. */
int
dkv_fw__has_range(const apr_array_header_t *ranges, const dkv_fw_range_t *r)
{
    int i;

    for (i = 0; i < ranges->nelts; i++) {
        if (dkv_fw__same_range(&DKV_ARRAY_IDX(ranges, i, dkv_fw_range_t),
                               r)) {
            return 1;
        }
    }
    return 0;
}

/* See fw-int.h. */
int
dkv_fw__selected(const dkv_fw_range_t *rs, int n, const dkv_fw_range_t *r)
{
    int i;

    if (n == 0) {
        return 1;
    }
    for (i = 0; i < n; i++) {
        if (dkv_fw__same_range(&rs[i], r)) {
            return 1;
        }
    }
    return 0;
}

/* See fw-int.h. */
void
dkv_fw__append(apr_array_header_t *ranges, const char *role, uint16_t lo,
               uint16_t hi)
{
    dkv_fw_range_t r;

    r.lo = lo;
    r.hi = hi;
    r.name = apr_pstrdup(ranges->pool, role != NULL ? role : "custom");
    if (!dkv_fw__has_range(ranges, &r)) {
        *(dkv_fw_range_t *)apr_array_push(ranges) = r;
    }
}

/* See fw-int.h. */
const char *
dkv_fw__ports(const dkv_fw_range_t *r, char sep, apr_pool_t *pool)
{
    if (r->lo == r->hi) {
        return apr_psprintf(pool, "%u", (unsigned)r->lo);
    }
    return apr_psprintf(pool, "%u%c%u", (unsigned)r->lo, sep,
                        (unsigned)r->hi);
}

/* See fw-int.h. */
int
dkv_fw__contains(const char *text, const char *needle)
{
    size_t n = strlen(needle);
    const char *p;

    if (text == NULL) {
        return 0;
    }
    for (p = text; *p != '\0'; p++) {
        size_t i;

        for (i = 0; i < n; i++) {
            if (p[i] == '\0' || apr_tolower((unsigned char)p[i]) !=
                apr_tolower((unsigned char)needle[i])) {
                break;
            }
        }
        if (i == n) {
            return 1;
        }
    }
    return 0;
}

/* See fw-int.h. */
int
dkv_fw__denied(const char *out)
{
    static const char *const words[] = {
        "permission denied", "operation not permitted", "must be root",
        "need to be root", "must be run as root", "access is denied",
        "requires elevation", "run as administrator",
        "not authorized", "authorization failed", NULL
    };
    int i;

    for (i = 0; words[i] != NULL; i++) {
        if (dkv_fw__contains(out, words[i])) {
            return 1;
        }
    }
    return 0;
}

/* See fw-int.h. */
const char *
dkv_fw__first_line(const char *text, apr_pool_t *pool)
{
    const char *p = text != NULL ? text : "";
    size_t n;

    p += strspn(p, "\r\n \t");
    n = strcspn(p, "\r\n");
    return apr_pstrndup(pool, p, n < FW_LINE_MAX ? n : FW_LINE_MAX);
}

/* See fw-int.h. */
dkv_status_t
dkv_fw__failed(dkv_fw_ctx_t *ctx, const char *prog, int code,
               const char *out)
{
    const char *line = dkv_fw__first_line(out, ctx->pool);

    if (dkv_fw__denied(out)) {
        /* netsh is Windows' own; the others are Unix programs, also when
         * a test drives them on Windows. */
        return dkv_error_set(APR_EACCES, "%s: permission denied (%s); run "
                             "as %s", prog, line,
                             strcmp(prog, "netsh") == 0 ? "Administrator"
                             : "root");
    }
    if (*line == '\0') {
        return dkv_error_set(APR_EGENERAL, "%s failed (exit %d) without a "
                             "message", prog, code);
    }
    return dkv_error_set(APR_EGENERAL, "%s failed (exit %d): %s", prog,
                         code, line);
}

/* See fw-int.h. */
dkv_status_t
dkv_fw__runv(dkv_fw_ctx_t *ctx, char **out, int *code, const char *input,
             const char *const *argv)
{
    char *o = NULL;
    int c = -1;
    dkv_status_t rv;

    rv = ctx->exec.run(ctx->exec.baton, argv, input, &o, &c, ctx->pool);
    *out = o != NULL ? o : apr_pcalloc(ctx->pool, 1);
    *code = c;
    return rv;
}

/* See fw-int.h. */
dkv_status_t
dkv_fw__run(dkv_fw_ctx_t *ctx, char **out, int *code, const char *input,
            const char *prog, ...)
{
    apr_array_header_t *argv = apr_array_make(ctx->pool, 8,
                                              sizeof(const char *));
    const char *a;
    va_list ap;

    APR_ARRAY_PUSH(argv, const char *) = prog;
    va_start(ap, prog);
    while ((a = va_arg(ap, const char *)) != NULL) {
        APR_ARRAY_PUSH(argv, const char *) = a;
    }
    va_end(ap);
    APR_ARRAY_PUSH(argv, const char *) = NULL;
    return dkv_fw__runv(ctx, out, code, input,
                        (const char *const *)(void *)argv->elts);
}

/* ------------------------------------------------------------- runner */

/* 1 when PATH names a regular file this process may run. */
static int
fw_runnable(const char *path, apr_pool_t *pool)
{
    apr_finfo_t fi;
    apr_status_t rv;

    /* Windows has no execute bits: a file is enough there. */
    rv = apr_stat(&fi, path, APR_FINFO_TYPE | APR_FINFO_PROT, pool);
    if ((rv != APR_SUCCESS && rv != APR_INCOMPLETE) ||
        (fi.valid & APR_FINFO_TYPE) == 0 || fi.filetype != APR_REG) {
        return 0;
    }
#if defined(_WIN32)
    return 1;
#else
    return rv == APR_SUCCESS &&
           (fi.protection & (APR_FPROT_UEXECUTE | APR_FPROT_GEXECUTE |
                             APR_FPROT_WEXECUTE)) != 0;
#endif
}

/* Finds PROG: itself when it names a directory, else the first runnable
 * PATH entry (on Windows also with .exe and .com).  *FULL in POOL.
 * Returns DKV_OK, or APR_ENOENT with a message. */
static dkv_status_t
fw_which(const char **full, const char *prog, apr_pool_t *pool)
{
    static const char *const exts[] = {
#if defined(_WIN32)
        ".exe", ".com",
#endif
        "", NULL
    };
    char *path = NULL;
    const char *p;
    int i;

    if (strchr(prog, '/') != NULL || strchr(prog, '\\') != NULL) {
        if (fw_runnable(prog, pool)) {
            *full = prog;
            return DKV_OK;
        }
        return dkv_error_set(APR_ENOENT, "%s is not installed", prog);
    }
    if (apr_env_get(&path, "PATH", pool) != APR_SUCCESS || path == NULL) {
        path = apr_pstrdup(pool, "/usr/sbin:/usr/bin:/sbin:/bin");
    }
    p = path;
    while (*p != '\0') {
        const char *end = strchr(p, FW_PATH_SEP);
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);

        if (n > 0) {
            for (i = 0; exts[i] != NULL; i++) {
                const char *cand = apr_pstrcat(pool, apr_pstrndup(pool, p, n),
                                               "/", prog, exts[i], NULL);
                if (fw_runnable(cand, pool)) {
                    *full = cand;
                    return DKV_OK;
                }
            }
        }
        p += n;
        if (*p == FW_PATH_SEP) {
            p++;
        }
    }
    return dkv_error_set(APR_ENOENT, "%s is not installed (not found on "
                         "PATH)", prog);
}

/* Writes INPUT to IN and closes it; errors (the program not reading) are
 * ignored: the exit code tells. */
static void
fw_feed(apr_file_t *in, const char *input)
{
    if (in == NULL) {
        return;
    }
    if (input != NULL && *input != '\0') {
        apr_size_t n = strlen(input);
        (void)apr_file_write_full(in, input, n, NULL);
    }
    apr_file_close(in);
}

/* Reads RD until end of file or DEADLINE into *OUT (NUL-terminated, in
 * POOL).  Returns DKV_OK at end of file, DKV_ETIMEOUT at the deadline,
 * or the read's failure. */
static dkv_status_t
fw_drain(char **out, apr_file_t *rd, apr_time_t deadline, apr_pool_t *pool)
{
    apr_size_t cap = 4096, len = 0;
    char *buf = apr_palloc(pool, cap);
    char chunk[4096];

    for (;;) {
        apr_size_t n = sizeof(chunk);
        apr_interval_time_t left = deadline - apr_time_now();
        apr_status_t st;

        if (left <= 0) {
            buf[len] = '\0';
            *out = buf;
            return DKV_ETIMEOUT;
        }
        apr_file_pipe_timeout_set(rd, left);
        st = apr_file_read(rd, chunk, &n);
        if (n > 0 && len + n < FW_OUT_MAX) {
            if (len + n + 1 > cap) {
                char *bigger;

                while (len + n + 1 > cap) {
                    cap *= 2;
                }
                bigger = apr_palloc(pool, cap);
                memcpy(bigger, buf, len);
                buf = bigger;
            }
            memcpy(buf + len, chunk, n);
            len += n;
        }
        if (APR_STATUS_IS_EOF(st)) {
            break;
        }
        if (APR_STATUS_IS_TIMEUP(st) || APR_STATUS_IS_EAGAIN(st)) {
            continue;
        }
        if (st != APR_SUCCESS) {
            buf[len] = '\0';
            *out = buf;
            return st;
        }
    }
    buf[len] = '\0';
    *out = buf;
    return DKV_OK;
}

/* The real dkv_fw_exec_t's run: see firewall.h. */
static dkv_status_t
fw_system_run(void *baton, const char *const *argv, const char *input,
              char **out, int *exit_code, apr_pool_t *pool)
{
    apr_procattr_t *attr;
    apr_proc_t proc;
    apr_file_t *rd = NULL, *wr = NULL;
    apr_exit_why_e why;
    const char *full = argv[0];
    apr_time_t deadline;
    dkv_status_t rv;
    int code = -1;

    (void)baton;
    *out = apr_pcalloc(pool, 1);
    *exit_code = -1;
    rv = fw_which(&full, argv[0], pool);
    if (rv != DKV_OK) {
        return rv;
    }
    (void)apr_env_set("LC_ALL", "C", pool);
    rv = apr_file_pipe_create_ex(&rd, &wr, APR_WRITE_BLOCK, pool);
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_create(&attr, pool);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_io_set(attr, APR_FULL_BLOCK, APR_NO_PIPE,
                                 APR_NO_PIPE);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_child_out_set(attr, wr, NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_child_err_set(attr, wr, NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_cmdtype_set(attr, APR_PROGRAM_ENV);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_error_check_set(attr, 1);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_proc_create(&proc, full, argv, NULL, attr, pool);
    }
    if (wr != NULL) {
        apr_file_close(wr);
    }
    if (rv != APR_SUCCESS) {
        char msg[120];

        if (rd != NULL) {
            apr_file_close(rd);
        }
        return dkv_error_set(rv, "cannot run %s: %s", full,
                             apr_strerror(rv, msg, sizeof(msg)));
    }
    fw_feed(proc.in, input);
    deadline = apr_time_now() + apr_time_from_sec(FW_RUN_LIMIT_SEC);
    rv = fw_drain(out, rd, deadline, pool);
    apr_file_close(rd);
    if (rv == DKV_ETIMEOUT) {
        apr_proc_kill(&proc, 9);
        apr_proc_wait(&proc, &code, &why, APR_WAIT);
        return dkv_error_set(DKV_ETIMEOUT, "%s did not finish within %d s;"
                             " killed", argv[0], FW_RUN_LIMIT_SEC);
    }
    /* End of output: the program has (nearly) finished; bound the wait
     * anyway in case it closed its output and kept running. */
    for (;;) {
        apr_status_t st = apr_proc_wait(&proc, &code, &why, APR_NOWAIT);

        if (APR_STATUS_IS_CHILD_DONE(st)) {
            break;
        }
        if (!APR_STATUS_IS_CHILD_NOTDONE(st) || apr_time_now() > deadline) {
            apr_proc_kill(&proc, 9);
            apr_proc_wait(&proc, &code, &why, APR_WAIT);
            return dkv_error_set(DKV_ETIMEOUT, "%s did not exit within %d "
                                 "s; killed", argv[0], FW_RUN_LIMIT_SEC);
        }
        apr_sleep(10000);
    }
    if (why != APR_PROC_EXIT) {
        return dkv_error_set(APR_EGENERAL, "%s was killed by signal %d",
                             argv[0], code);
    }
    *exit_code = code;
    return DKV_OK;
}

/* See firewall.h. */
dkv_fw_exec_t
dkv_fw_exec_system(void)
{
    dkv_fw_exec_t e;

    e.run = fw_system_run;
    e.baton = NULL;
    return e;
}

/* ----------------------------------------------------------- backends */

/* See firewall.h. */
void
dkv_fw_ctx_init(dkv_fw_ctx_t *ctx, apr_pool_t *pool)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->exec = dkv_fw_exec_system();
    ctx->winapi = dkv_fw_winapi_system();
    ctx->pf_anchor_file = NULL;
    ctx->pool = pool;
}

/* Every backend, for dkv_fw_backend_named. */
static const dkv_fw_backend_t *const fw_all[] = {
    &dkv_fw_firewalld, &dkv_fw_ufw, &dkv_fw_nftables, &dkv_fw_iptables,
    &dkv_fw_pf, &dkv_fw_windows, &dkv_fw_netsh, NULL
};

/* This system's backends in detection order. */
static const dkv_fw_backend_t *const fw_here[] = {
#if defined(_WIN32)
    &dkv_fw_windows, &dkv_fw_netsh,
#elif defined(__linux__)
    &dkv_fw_firewalld, &dkv_fw_ufw, &dkv_fw_nftables, &dkv_fw_iptables,
#else
    &dkv_fw_pf,
#endif
    NULL
};

/* See firewall.h. */
const dkv_fw_backend_t *const *
dkv_fw_backends(void)
{
    return fw_here;
}

/* See firewall.h: names compare without regard to ASCII case. */
const dkv_fw_backend_t *
dkv_fw_backend_named(const char *name)
{
    int i;

    if (name == NULL) {
        return NULL;
    }
    for (i = 0; fw_all[i] != NULL; i++) {
        if (strlen(fw_all[i]->name) == strlen(name) &&
            dkv_fw__contains(fw_all[i]->name, name)) {
            return fw_all[i];
        }
    }
    return NULL;
}

/* See fw-int.h. */
void
dkv_fw__detect_one(dkv_fw_ctx_t *ctx, const dkv_fw_backend_t *b,
                   int *active, const char **why)
{
    dkv_status_t rv;

    *active = 0;
    *why = NULL;
    dkv_error_clear();
    rv = b->detect(ctx, active, why);
    if (rv != DKV_OK) {
        const char *msg = dkv_last_error();

        *active = 0;
        *why = apr_psprintf(ctx->pool, "cannot tell: %s",
                            *msg != '\0' ? msg
                            : dkv_strerror(rv));
    }
    if (*why == NULL) {
        *why = *active ? "active" : "not active";
    }
}

/* See firewall.h. */
dkv_status_t
dkv_fw_detect(dkv_fw_ctx_t *ctx, const dkv_fw_backend_t **found,
              const char **report)
{
    const dkv_fw_backend_t *const *b;
    const char *rep = "";
    const char *inline_rep = "";

    *found = NULL;
    for (b = dkv_fw_backends(); *b != NULL; b++) {
        int active;
        const char *why;

        dkv_fw__detect_one(ctx, *b, &active, &why);
        rep = apr_pstrcat(ctx->pool, rep, (*b)->name, ": ", why, "\n",
                          NULL);
        inline_rep = apr_pstrcat(ctx->pool, inline_rep,
                                 *inline_rep != '\0' ? "; " : "",
                                 (*b)->name, ": ", why, NULL);
        if (active) {
            *found = *b;
            break;
        }
    }
    if (report != NULL) {
        *report = rep;
    }
    if (*found == NULL) {
        return dkv_error_set(DKV_ENOTFOUND, "no active firewall found (%s)",
                             inline_rep);
    }
    return DKV_OK;
}
