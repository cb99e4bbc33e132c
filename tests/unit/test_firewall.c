/*
 * test_firewall.c -- suite `firewall`: the firewall core of
 * platform/firewall.h on any system: port ranges and tags, the real
 * runner (a shell program, where there is one), detection order and
 * report, and the pf, windows (COM) and netsh backends driven through
 * a recording runner and a recording COM seam, which check the exact
 * commands, standard input and rules for open (twice), list, close,
 * detect, a refusal for lack of privileges and a missing program.
 *
 * The recording runner follows a script: each step is the argv it
 * expects (words joined with '|'), the standard input it expects (NULL:
 * none), and what to answer (a runner status, the output, the exit
 * code).  A command out of script fails the test with both texts.
 */
#include <string.h>

#include <apr_file_io.h>
#include <apr_strings.h>

#include "testutil.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/status.h"
#include "platform/fw-int.h"

/* --------------------------------------------------- recording runner */

/* One expected command and its answer. */
typedef struct rec_step {
    const char *argv;       /* "pfctl|-a|dkv|-s|rules" */
    const char *input;      /* expected standard input; NULL: none */
    dkv_status_t rv;        /* the runner's status (APR_ENOENT: absent) */
    const char *out;
    int code;
} rec_step_t;

/* A script and where it is. */
typedef struct rec {
    const rec_step_t *steps;
    int n;
    int next;
    int lenient;            /* 1: no script; ENOENT except ufw, logged */
    const char *log;        /* lenient: the programs run, '|' each */
    apr_pool_t *pool;
} rec_t;

/* The recording dkv_fw_exec_t's run: checks ARGV and INPUT against the
 * next step and answers it. */
static dkv_status_t
rec_run(void *baton, const char *const *argv, const char *input,
        char **out, int *exit_code, apr_pool_t *pool)
{
    rec_t *r = baton;
    const char *got = argv[0];
    const rec_step_t *s;
    int i;

    for (i = 1; argv[i] != NULL; i++) {
        got = apr_pstrcat(pool, got, "|", argv[i], NULL);
    }
    *out = apr_pstrdup(pool, "");
    *exit_code = -1;
    if (r->lenient) {
        r->log = apr_pstrcat(r->pool, r->log, argv[0], ";", NULL);
        if (strcmp(argv[0], "ufw") == 0 && r->lenient == 2) {
            *out = apr_pstrdup(pool, "Status: active\n");
            *exit_code = 0;
            return DKV_OK;
        }
        return dkv_error_set(APR_ENOENT, "%s is not installed", argv[0]);
    }
    if (r->next >= r->n) {
        DKV_EXPECT_STR_EQ(got, "(no more commands)");
        return APR_EGENERAL;
    }
    s = &r->steps[r->next++];
    DKV_EXPECT_STR_EQ(got, s->argv);
    DKV_EXPECT_STR_EQ(input, s->input);
    if (s->rv != DKV_OK) {
        return dkv_error_set(s->rv, "%s is not installed", argv[0]);
    }
    *out = apr_pstrdup(pool, s->out != NULL ? s->out : "");
    *exit_code = s->code;
    return DKV_OK;
}

/* Makes CTX run STEPS (N) through R; the COM seam is the system's (the
 * windows tests set ctx->winapi themselves). */
static void
rec_ctx(dkv_fw_ctx_t *ctx, rec_t *r, const rec_step_t *steps, int n,
        apr_pool_t *pool)
{
    memset(r, 0, sizeof(*r));
    r->steps = steps;
    r->n = n;
    r->log = "";
    r->pool = pool;
    dkv_fw_ctx_init(ctx, pool);
    ctx->exec.run = rec_run;
    ctx->exec.baton = r;
}

/* Every step of R's script ran. */
#define REC_DONE(r) DKV_EXPECT_INT_EQ((r)->next, (r)->n)

#define NSTEPS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The ranges of array A as a C array. */
#define RS(a) ((const dkv_fw_range_t *)(void *)(a)->elts)

/* The ranges of LIST as "role=lo-hi,..." in POOL. */
static const char *
ranges_text(const apr_array_header_t *list, apr_pool_t *pool)
{
    const char *s = "";
    int i;

    for (i = 0; i < list->nelts; i++) {
        const dkv_fw_range_t *r = &DKV_ARRAY_IDX(list, i, dkv_fw_range_t);

        s = apr_psprintf(pool, "%s%s%s=%u-%u", s, i > 0 ? "," : "",
                         r->name, (unsigned)r->lo, (unsigned)r->hi);
    }
    return s;
}

/* The parsed TEXT, which must be valid. */
static apr_array_header_t *
ranges(const char *text, apr_pool_t *pool)
{
    apr_array_header_t *a = NULL;

    DKV_ASSERT_OK(dkv_fw_parse_ranges(&a, text, pool));
    return a;
}

/* ------------------------------------------------------------- ranges */

static void
ranges_parse_good(void)
{
    apr_pool_t *pool = dkv_test_pool();
    apr_array_header_t *a;

    a = ranges("7801-7810,cluster=7811-7860,9000", pool);
    DKV_EXPECT_STR_EQ(ranges_text(a, pool),
                      "custom=7801-7810,cluster=7811-7860,custom=9000-9000");
    a = ranges("  management=1-2   client=65535,\tcustom=3-3 ,", pool);
    DKV_EXPECT_STR_EQ(ranges_text(a, pool),
                      "management=1-2,client=65535-65535,custom=3-3");
    a = apr_array_make(pool, 3, sizeof(dkv_fw_range_t));
    dkv_fw_default_ranges(a);
    DKV_EXPECT_STR_EQ(ranges_text(a, pool), "management=7801-7810,"
                      "cluster=7811-7860,client=7861-7899");
    apr_pool_destroy(pool);
}

static void
ranges_parse_bad(void)
{
    static const char *const bad[][2] = {
        { "0", "'0'" }, { "65536", "'65536'" }, { "5-3", "'5-3'" },
        { "a-b", "'a-b'" }, { "1-2-3", "'1-2-3'" }, { "=5", "'=5'" },
        { "bogus=1-2", "role must be" }, { "cluster=", "'cluster='" },
        { "7801-7810,x", "'x'" }, { "-5", "'-5'" }, { "123456", "'123456'" },
        { "", "no port ranges" }, { " , ", "no port ranges" }
    };
    apr_pool_t *pool = dkv_test_pool();
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        apr_array_header_t *a = NULL;

        dkv_error_clear();
        DKV_EXPECT_STATUS(dkv_fw_parse_ranges(&a, bad[i][0], pool),
                          DKV_EINVAL);
        DKV_EXPECT_TRUE(a == NULL);
        if (strstr(dkv_last_error(), bad[i][1]) == NULL) {
            DKV_EXPECT_STR_EQ(dkv_last_error(), bad[i][1]);
        }
    }
    DKV_EXPECT_STATUS(dkv_fw_parse_ranges(&((apr_array_header_t *){0}),
                                          NULL, pool), DKV_EINVAL);
    apr_pool_destroy(pool);
}

static void
tags_and_roles(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_fw_range_t r = { "client", 1, 2 };
    uint16_t lo = 0, hi = 0;

    DKV_EXPECT_STR_EQ(dkv_fw_tag(&r, pool), "dkv:client");
    r.name = "custom";
    DKV_EXPECT_STR_EQ(dkv_fw_tag(&r, pool), "dkv:custom");
    DKV_EXPECT_STR_EQ(dkv_fw_tag_role("dkv:management"), "management");
    DKV_EXPECT_STR_EQ(dkv_fw_tag_role("dkv:cluster"), "cluster");
    DKV_EXPECT_STR_EQ(dkv_fw_tag_role("dkv:client"), "client");
    DKV_EXPECT_STR_EQ(dkv_fw_tag_role("dkv:custom"), "custom");
    DKV_EXPECT_TRUE(dkv_fw_tag_role("dkv:other") == NULL);
    DKV_EXPECT_TRUE(dkv_fw_tag_role("dkv:") == NULL);
    DKV_EXPECT_TRUE(dkv_fw_tag_role("cluster") == NULL);
    DKV_EXPECT_TRUE(dkv_fw_tag_role("DKV:cluster") == NULL);
    DKV_EXPECT_TRUE(dkv_fw_tag_role(NULL) == NULL);
    DKV_EXPECT_TRUE(dkv_fw__parse_ports(&lo, &hi, "10:20", -1));
    DKV_EXPECT_INT_EQ(lo, 10);
    DKV_EXPECT_INT_EQ(hi, 20);
    DKV_EXPECT_TRUE(dkv_fw__parse_ports(&lo, &hi, "7801-7810xyz", 9));
    DKV_EXPECT_INT_EQ(hi, 7810);
    DKV_EXPECT_TRUE(!dkv_fw__parse_ports(&lo, &hi, "20:10", -1));
    DKV_EXPECT_STR_EQ(dkv_fw__ports(&r, ':', pool), "1:2");
    r.hi = 1;
    DKV_EXPECT_STR_EQ(dkv_fw__ports(&r, '-', pool), "1");
    apr_pool_destroy(pool);
}

/* `dkv firewall -Config` reads dkv-manager's file with the manager's
 * reader, skipping the settings it does not want
 * (dkv_config_parse_file_some); the strict reader refuses them. */
static void
config_ranges_from_manager_file(void)
{
    static const char text[] =
        "# the manager's settings\n"
        "data-dir = /var/lib/dkv\n"
        "management-range = \"21001-21010\"\n"
        "cluster-range = 21011-21060    # the nodes\n";
    apr_pool_t *pool = dkv_test_pool();
    const char *path = apr_pstrcat(pool, dkv_test_tempdir(pool),
                                   "/manager.conf", NULL);
    const char *vals[2] = { NULL, NULL };
    dkv_config_opt_t opts[] = {
        { "management-range", DKV_CONF_STRING, &vals[0], 0, 0, NULL, NULL,
          0, 0 },
        { "cluster-range", DKV_CONF_STRING, &vals[1], 0, 0, NULL, NULL, 0,
          0 },
        { NULL, 0, NULL, 0, 0, NULL, NULL, 0, 0 }
    };
    apr_file_t *f;

    DKV_ASSERT_OK(apr_file_open(&f, path, APR_FOPEN_CREATE | APR_FOPEN_WRITE
                                | APR_FOPEN_TRUNCATE, APR_FPROT_OS_DEFAULT,
                                pool));
    DKV_ASSERT_OK(apr_file_write_full(f, text, strlen(text), NULL));
    apr_file_close(f);
    DKV_EXPECT_OK(dkv_config_parse_file_some(opts, path, pool));
    DKV_EXPECT_STR_EQ(vals[0], "21001-21010");
    DKV_EXPECT_STR_EQ(vals[1], "21011-21060");
    DKV_EXPECT_STATUS(dkv_config_parse_file(opts, path, pool), DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "unknown setting 'data-dir'")
                    != NULL);
    DKV_EXPECT_TRUE(APR_STATUS_IS_ENOENT(dkv_config_parse_file_some(
        opts, apr_pstrcat(pool, path, ".none", NULL), pool)));
    apr_pool_destroy(pool);
}

static void
helpers_failed_and_denied(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_fw_ctx_t ctx;

    dkv_fw_ctx_init(&ctx, pool);
    DKV_EXPECT_STATUS(dkv_fw__failed(&ctx, "nft", 1,
                                     "\nnetlink: Error: cannot open: "
                                     "Operation not permitted\n"),
                      APR_EACCES);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "run as") != NULL);
    DKV_EXPECT_STATUS(dkv_fw__failed(&ctx, "ufw", 1,
                                     "ERROR: You need to be root to run "
                                     "this script\n"), APR_EACCES);
    DKV_EXPECT_STATUS(dkv_fw__failed(&ctx, "netsh", 1,
                                     "The requested operation requires "
                                     "elevation (Run as administrator).\r\n"),
                      APR_EACCES);
    DKV_EXPECT_STATUS(dkv_fw__failed(&ctx, "netsh", 5, "Access is denied."),
                      APR_EACCES);
    DKV_EXPECT_STATUS(dkv_fw__failed(&ctx, "iptables", 2,
                                     "\n  iptables v1.8: bad rule\nmore\n"),
                      APR_EGENERAL);
    DKV_EXPECT_STR_EQ(dkv_last_error(),
                      "iptables failed (exit 2): iptables v1.8: bad rule");
    DKV_EXPECT_STATUS(dkv_fw__failed(&ctx, "x", 3, ""), APR_EGENERAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "exit 3") != NULL);
    DKV_EXPECT_TRUE(dkv_fw__contains("Status: ENABLED", "status: enabled"));
    DKV_EXPECT_TRUE(!dkv_fw__contains("Status", "Status: Enabled"));
    apr_pool_destroy(pool);
}

static void
backends_by_name(void)
{
    const dkv_fw_backend_t *const *b = dkv_fw_backends();
    static const char *const names[] = {
        "nftables", "firewalld", "ufw", "iptables", "pf", "windows", "netsh"
    };
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const dkv_fw_backend_t *x = dkv_fw_backend_named(names[i]);

        DKV_ASSERT_NOT_NULL(x);
        DKV_EXPECT_STR_EQ(x->name, names[i]);
    }
    DKV_EXPECT_TRUE(dkv_fw_backend_named("NetSh") == &dkv_fw_netsh);
    DKV_EXPECT_TRUE(dkv_fw_backend_named("PF") == &dkv_fw_pf);
    DKV_EXPECT_TRUE(dkv_fw_backend_named("p") == NULL);
    DKV_EXPECT_TRUE(dkv_fw_backend_named("pfx") == NULL);
    DKV_EXPECT_TRUE(dkv_fw_backend_named(NULL) == NULL);
    DKV_ASSERT_NOT_NULL(b[0]);
#if defined(_WIN32)
    DKV_EXPECT_TRUE(b[0] == &dkv_fw_windows && b[1] == &dkv_fw_netsh &&
                    b[2] == NULL);
#elif defined(__linux__)
    DKV_EXPECT_TRUE(b[0] == &dkv_fw_firewalld && b[1] == &dkv_fw_ufw &&
                    b[2] == &dkv_fw_nftables && b[3] == &dkv_fw_iptables &&
                    b[4] == NULL);
#else
    DKV_EXPECT_TRUE(b[0] == &dkv_fw_pf && b[1] == NULL);
#endif
}

/* ---------------------------------------------------------- detection */

/* A COM seam's available() on a system without the COM firewall. */
static dkv_status_t
no_com(void *baton)
{
    (void)baton;
    return dkv_error_set(APR_ENOTIMPL, "the Windows firewall API exists "
                         "only on Windows");
}

static void
detect_nothing_active(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const dkv_fw_backend_t *const *b;
    const dkv_fw_backend_t *found = &dkv_fw_pf;
    const char *report = NULL, *expect = "";
    dkv_fw_ctx_t ctx;
    rec_t r;

    rec_ctx(&ctx, &r, NULL, 0, pool);
    r.lenient = 1;
    ctx.winapi.available = no_com;
    DKV_EXPECT_STATUS(dkv_fw_detect(&ctx, &found, &report), DKV_ENOTFOUND);
    DKV_EXPECT_TRUE(found == NULL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "no active firewall") != NULL);
    DKV_ASSERT_NOT_NULL(report);
    /* One line per backend, in order, each naming what it found. */
    for (b = dkv_fw_backends(); *b != NULL; b++) {
        const char *line = strstr(report, apr_pstrcat(pool, (*b)->name,
                                                      ": ", NULL));

        DKV_EXPECT_TRUE(line != NULL);
        DKV_EXPECT_TRUE(strstr(dkv_last_error(), (*b)->name) != NULL);
        expect = apr_pstrcat(pool, expect, (*b)->name, ": ", NULL);
    }
    DKV_EXPECT_TRUE(strstr(report, "not installed") != NULL ||
                    strstr(report, "only on Windows") != NULL);
#if defined(_WIN32)
    DKV_EXPECT_STR_EQ(r.log, "netsh;");
    DKV_EXPECT_STR_EQ(report, "windows: the Windows firewall API exists "
                      "only on Windows\nnetsh: netsh is not installed\n");
#elif defined(__linux__)
    DKV_EXPECT_STR_EQ(r.log, "firewall-cmd;ufw;nft;iptables;");
    DKV_EXPECT_STR_EQ(report, "firewalld: firewall-cmd is not installed\n"
                      "ufw: ufw is not installed\n"
                      "nftables: nft is not installed\n"
                      "iptables: iptables is not installed\n");
#endif
    (void)expect;
    apr_pool_destroy(pool);
}

#if defined(__linux__)
/* ufw active: detection stops there, after firewalld, before nftables. */
static void
detect_stops_at_first_active(void)
{
    apr_pool_t *pool = dkv_test_pool();
    const dkv_fw_backend_t *found = NULL;
    const char *report = NULL;
    dkv_fw_ctx_t ctx;
    rec_t r;

    rec_ctx(&ctx, &r, NULL, 0, pool);
    r.lenient = 2;
    DKV_EXPECT_OK(dkv_fw_detect(&ctx, &found, &report));
    DKV_EXPECT_TRUE(found == &dkv_fw_ufw);
    DKV_EXPECT_STR_EQ(report, "firewalld: firewall-cmd is not installed\n"
                      "ufw: ufw is active\n");
    DKV_EXPECT_TRUE(strstr(r.log, "nft") == NULL);
    DKV_EXPECT_TRUE(strstr(r.log, "iptables") == NULL);
    apr_pool_destroy(pool);
}
#endif

/* ----------------------------------------------------------------- pf */

#define PF_INFO_ON "Status: Enabled for 0 days 00:01:02           Debug: " \
    "Urgent\n\nState Table                          Total             Rate\n"
#define PF_INFO_OFF "Status: Disabled for 0 days 00:00:10          Debug: " \
    "Urgent\n"

/* What `pfctl -a dkv -s rules` prints for the management and client
 * ranges (pf adds "from any", "flags S/SA"), one single port, and a rule
 * someone else put in the anchor. */
#define PF_RULES_TWO \
    "pass in quick proto tcp from any to any port 7801:7810 flags S/SA " \
    "keep state label \"dkv:management\"\n" \
    "pass in quick proto tcp from any to any port = 9000 flags S/SA " \
    "keep state label \"dkv:custom\"\n" \
    "pass in quick proto udp from any to any port = 53 keep state\n"

#define PF_LOAD_TWO \
    "pass in quick proto tcp to any port 7801:7810 keep state label " \
    "\"dkv:management\"\n" \
    "pass in quick proto tcp to any port 9000 keep state label " \
    "\"dkv:custom\"\n"

/* The contents of the file PATH, or "(missing)". */
static const char *
file_text(const char *path, apr_pool_t *pool)
{
    apr_file_t *f;
    char buf[4096];
    apr_size_t n = sizeof(buf) - 1;

    if (apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, pool)
        != APR_SUCCESS) {
        return "(missing)";
    }
    (void)apr_file_read_full(f, buf, n, &n);
    apr_file_close(f);
    buf[n] = '\0';
    return apr_pstrdup(pool, buf);
}

/* 1 when the anchor file at PATH holds exactly RULES after its
 * comment lines. */
static int
pf_file_rules(const char *path, const char *rules, apr_pool_t *pool)
{
    const char *t = file_text(path, pool);

    while (*t == '#') {
        t = strchr(t, '\n');
        if (t == NULL) {
            return *rules == '\0';
        }
        t++;
    }
    if (strcmp(t, rules) != 0) {
        DKV_EXPECT_STR_EQ(t, rules);
        return 0;
    }
    return 1;
}

static void
pf_detect_cases(void)
{
    static const rec_step_t on_anchor[] = {
        { "pfctl|-s|info", NULL, DKV_OK, PF_INFO_ON, 0 },
        { "pfctl|-s|rules", NULL, DKV_OK,
          "block drop in all\nanchor \"dkv\" all\n", 0 }
    };
    static const rec_step_t on_no_anchor[] = {
        { "pfctl|-s|info", NULL, DKV_OK, PF_INFO_ON, 0 },
        { "pfctl|-s|rules", NULL, DKV_OK, "block drop in all\n", 0 }
    };
    static const rec_step_t off[] = {
        { "pfctl|-s|info", NULL, DKV_OK, PF_INFO_OFF, 0 }
    };
    static const rec_step_t absent[] = {
        { "pfctl|-s|info", NULL, APR_ENOENT, NULL, 0 }
    };
    static const rec_step_t denied[] = {
        { "pfctl|-s|info", NULL, DKV_OK,
          "pfctl: /dev/pf: Permission denied\n", 1 }
    };
    apr_pool_t *pool = dkv_test_pool();
    dkv_fw_ctx_t ctx;
    rec_t r;
    int active = -1;
    const char *why = NULL;

    rec_ctx(&ctx, &r, on_anchor, NSTEPS(on_anchor), pool);
    DKV_EXPECT_OK(dkv_fw_pf.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 1);
    DKV_EXPECT_STR_EQ(why, "pf is enabled");
    REC_DONE(&r);

    rec_ctx(&ctx, &r, on_no_anchor, NSTEPS(on_no_anchor), pool);
    ctx.pf_anchor_file = "/x/pf.dkv";
    DKV_EXPECT_OK(dkv_fw_pf.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 1);
    DKV_EXPECT_TRUE(strstr(why, "no anchor \"dkv\"") != NULL);
    DKV_EXPECT_TRUE(strstr(why, "load anchor \"dkv\" from \"/x/pf.dkv\"")
                    != NULL);
    REC_DONE(&r);

    rec_ctx(&ctx, &r, off, NSTEPS(off), pool);
    DKV_EXPECT_OK(dkv_fw_pf.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_STR_EQ(why, "pf is installed but disabled");
    REC_DONE(&r);

    rec_ctx(&ctx, &r, absent, NSTEPS(absent), pool);
    DKV_EXPECT_OK(dkv_fw_pf.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_STR_EQ(why, "pfctl is not installed");
    REC_DONE(&r);

    rec_ctx(&ctx, &r, denied, NSTEPS(denied), pool);
    DKV_EXPECT_OK(dkv_fw_pf.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_TRUE(strstr(why, "run as root") != NULL);
    REC_DONE(&r);
    apr_pool_destroy(pool);
}

static void
pf_open_list_close(void)
{
    static const rec_step_t open1[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK, "", 0 },
        { "pfctl|-a|dkv|-f|-", PF_LOAD_TWO, DKV_OK, "", 0 }
    };
    /* Opening again: everything is there, nothing is loaded. */
    static const rec_step_t open2[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK, PF_RULES_TWO, 0 }
    };
    /* Opening one more: the anchor is rewritten with all three. */
    static const rec_step_t open3[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK, PF_RULES_TWO, 0 },
        { "pfctl|-a|dkv|-f|-", PF_LOAD_TWO
          "pass in quick proto tcp to any port 7811:7860 keep state label "
          "\"dkv:cluster\"\n", DKV_OK, "", 0 }
    };
    static const rec_step_t close1[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK, PF_RULES_TWO, 0 },
        { "pfctl|-a|dkv|-f|-", "pass in quick proto tcp to any port 9000 "
          "keep state label \"dkv:custom\"\n", DKV_OK, "", 0 }
    };
    static const rec_step_t close_all[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK, PF_RULES_TWO, 0 },
        { "pfctl|-a|dkv|-F|rules", NULL, DKV_OK, "rules cleared\n", 0 }
    };
    static const rec_step_t close_none[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK,
          "pass in quick proto udp from any to any port = 53 keep state\n",
          0 }
    };
    apr_pool_t *pool = dkv_test_pool();
    const char *dir = dkv_test_tempdir(pool);
    const char *file = apr_pstrcat(pool, dir, "/anchors/dkv", NULL);
    apr_array_header_t *want = ranges("management=7801-7810,9000", pool);
    apr_array_header_t *more = ranges("cluster=7811-7860", pool);
    apr_array_header_t *one = ranges("7801-7810", pool);
    apr_array_header_t *got;
    const dkv_fw_range_t *w = RS(want);
    dkv_fw_ctx_t ctx;
    rec_t r;

    rec_ctx(&ctx, &r, open1, NSTEPS(open1), pool);
    ctx.pf_anchor_file = file;
    DKV_EXPECT_OK(dkv_fw_pf.open(&ctx, w, want->nelts));
    REC_DONE(&r);
    DKV_EXPECT_TRUE(pf_file_rules(file, PF_LOAD_TWO, pool));
    DKV_EXPECT_TRUE(strstr(file_text(file, pool), "load anchor \"dkv\" "
                           "from") != NULL);

    rec_ctx(&ctx, &r, open2, NSTEPS(open2), pool);
    ctx.pf_anchor_file = file;
    DKV_EXPECT_OK(dkv_fw_pf.open(&ctx, w, want->nelts));
    REC_DONE(&r);

    rec_ctx(&ctx, &r, open2, NSTEPS(open2), pool);
    got = apr_array_make(pool, 4, sizeof(dkv_fw_range_t));
    DKV_EXPECT_OK(dkv_fw_pf.list(&ctx, got));
    DKV_EXPECT_STR_EQ(ranges_text(got, pool),
                      "management=7801-7810,custom=9000-9000");
    REC_DONE(&r);

    rec_ctx(&ctx, &r, open3, NSTEPS(open3), pool);
    ctx.pf_anchor_file = file;
    DKV_EXPECT_OK(dkv_fw_pf.open(&ctx, RS(more),
                                 more->nelts));
    REC_DONE(&r);
    DKV_EXPECT_TRUE(pf_file_rules(file, open3[1].input, pool));

    rec_ctx(&ctx, &r, close1, NSTEPS(close1), pool);
    ctx.pf_anchor_file = file;
    DKV_EXPECT_OK(dkv_fw_pf.close(&ctx, RS(one),
                                  one->nelts));
    REC_DONE(&r);
    DKV_EXPECT_TRUE(pf_file_rules(file, close1[1].input, pool));

    rec_ctx(&ctx, &r, close_all, NSTEPS(close_all), pool);
    ctx.pf_anchor_file = file;
    DKV_EXPECT_OK(dkv_fw_pf.close(&ctx, NULL, 0));
    REC_DONE(&r);
    DKV_EXPECT_TRUE(pf_file_rules(file, "", pool));

    /* Nothing of dkv's: nothing is loaded; others' rules are left. */
    rec_ctx(&ctx, &r, close_none, NSTEPS(close_none), pool);
    ctx.pf_anchor_file = file;
    DKV_EXPECT_OK(dkv_fw_pf.close(&ctx, NULL, 0));
    REC_DONE(&r);
    apr_pool_destroy(pool);
}

static void
pf_denied_and_absent(void)
{
    static const rec_step_t denied[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK,
          "pfctl: /dev/pf: Permission denied\n", 1 }
    };
    static const rec_step_t load_denied[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK, "", 0 },
        { "pfctl|-a|dkv|-f|-", "pass in quick proto tcp to any port "
          "7801:7810 keep state label \"dkv:custom\"\n", DKV_OK,
          "pfctl: DIOCADDRULE: Operation not permitted\n", 1 }
    };
    static const rec_step_t absent[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, APR_ENOENT, NULL, 0 }
    };
    static const rec_step_t syntax[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK, "", 0 },
        { "pfctl|-a|dkv|-f|-", "pass in quick proto tcp to any port "
          "7801:7810 keep state label \"dkv:custom\"\n", DKV_OK,
          "stdin:1: syntax error\npfctl: Syntax error in config file\n", 1 }
    };
    apr_pool_t *pool = dkv_test_pool();
    const char *file = apr_pstrcat(pool, dkv_test_tempdir(pool), "/dkv",
                                   NULL);
    apr_array_header_t *one = ranges("7801-7810", pool);
    const dkv_fw_range_t *o = RS(one);
    dkv_fw_ctx_t ctx;
    rec_t r;

    rec_ctx(&ctx, &r, denied, NSTEPS(denied), pool);
    DKV_EXPECT_STATUS(dkv_fw_pf.open(&ctx, o, 1), APR_EACCES);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "run as root") != NULL);
    REC_DONE(&r);

    rec_ctx(&ctx, &r, load_denied, NSTEPS(load_denied), pool);
    ctx.pf_anchor_file = file;
    DKV_EXPECT_STATUS(dkv_fw_pf.open(&ctx, o, 1), APR_EACCES);
    REC_DONE(&r);
    /* A refused load leaves the anchor file alone. */
    DKV_EXPECT_STR_EQ(file_text(file, pool), "(missing)");

    rec_ctx(&ctx, &r, absent, NSTEPS(absent), pool);
    DKV_EXPECT_STATUS(dkv_fw_pf.close(&ctx, NULL, 0), APR_ENOENT);
    REC_DONE(&r);

    rec_ctx(&ctx, &r, syntax, NSTEPS(syntax), pool);
    ctx.pf_anchor_file = file;
    DKV_EXPECT_STATUS(dkv_fw_pf.open(&ctx, o, 1), APR_EGENERAL);
    DKV_EXPECT_STR_EQ(dkv_last_error(), "pfctl failed (exit 1): stdin:1: "
                      "syntax error");
    REC_DONE(&r);
    apr_pool_destroy(pool);
}

/* An anchor that does not exist yet (pf.conf does not name it, nothing
 * was loaded) is refused by pfctl with EINVAL: it reads as empty, so the
 * first open loads it; other failures of the listing stay failures. */
static void
pf_anchor_not_there_yet(void)
{
    static const rec_step_t first_open[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK,
          "pfctl: DIOCGETRULES: Invalid argument\n", 1 },
        { "pfctl|-a|dkv|-f|-", "pass in quick proto tcp to any port "
          "7801:7810 keep state label \"dkv:custom\"\n", DKV_OK, "", 0 }
    };
    static const rec_step_t close_none[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK,
          "pfctl: DIOCGETRULES: Invalid argument\n", 1 }
    };
    static const rec_step_t no_pf[] = {
        { "pfctl|-a|dkv|-s|rules", NULL, DKV_OK,
          "pfctl: /dev/pf: No such file or directory\n", 1 }
    };
    apr_pool_t *pool = dkv_test_pool();
    const char *file = apr_pstrcat(pool, dkv_test_tempdir(pool), "/dkv",
                                   NULL);
    apr_array_header_t *one = ranges("7801-7810", pool);
    apr_array_header_t *got = apr_array_make(pool, 4,
                                             sizeof(dkv_fw_range_t));
    dkv_fw_ctx_t ctx;
    rec_t r;

    rec_ctx(&ctx, &r, first_open, NSTEPS(first_open), pool);
    ctx.pf_anchor_file = file;
    DKV_EXPECT_OK(dkv_fw_pf.open(&ctx, RS(one), one->nelts));
    REC_DONE(&r);
    DKV_EXPECT_TRUE(pf_file_rules(file, first_open[1].input, pool));

    rec_ctx(&ctx, &r, close_none, NSTEPS(close_none), pool);
    DKV_EXPECT_OK(dkv_fw_pf.close(&ctx, NULL, 0));
    REC_DONE(&r);

    rec_ctx(&ctx, &r, no_pf, NSTEPS(no_pf), pool);
    DKV_EXPECT_STATUS(dkv_fw_pf.list(&ctx, got), APR_EGENERAL);
    DKV_EXPECT_INT_EQ(got->nelts, 0);
    REC_DONE(&r);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------- windows (COM seam) */

/* A recording COM seam: a list of rules, a log of calls, and answers. */
typedef struct wrec {
    apr_array_header_t *rules;  /* dkv_fw_winrule_t, as "the firewall" */
    const char *log;
    dkv_status_t available;
    dkv_status_t fail_add;      /* returned by add when not DKV_OK */
    apr_pool_t *pool;
} wrec_t;

/* See dkv_fw_winapi_t. */
static dkv_status_t
wrec_available(void *baton)
{
    wrec_t *w = baton;

    if (w->available != DKV_OK) {
        return dkv_error_set(w->available, "the firewall service is not "
                             "running");
    }
    return DKV_OK;
}

/* See dkv_fw_winapi_t: logs "add NAME|DESC|GROUP|PORTS;" and keeps it. */
static dkv_status_t
wrec_add(void *baton, const dkv_fw_winrule_t *rule)
{
    wrec_t *w = baton;
    dkv_fw_winrule_t *k;

    w->log = apr_pstrcat(w->pool, w->log, "add ", rule->name, "|",
                         rule->description, "|", rule->group, "|",
                         rule->local_ports, ";", NULL);
    if (w->fail_add != DKV_OK) {
        return dkv_error_set(w->fail_add, "Access is denied; run as "
                             "Administrator");
    }
    k = apr_array_push(w->rules);
    k->name = apr_pstrdup(w->pool, rule->name);
    k->description = apr_pstrdup(w->pool, rule->description);
    k->group = apr_pstrdup(w->pool, rule->group);
    k->local_ports = apr_pstrdup(w->pool, rule->local_ports);
    return DKV_OK;
}

/* See dkv_fw_winapi_t: logs "remove NAME;" and drops every such rule. */
static dkv_status_t
wrec_remove(void *baton, const char *name)
{
    wrec_t *w = baton;
    apr_array_header_t *keep = apr_array_make(w->pool, 8,
                                              sizeof(dkv_fw_winrule_t));
    int i;

    w->log = apr_pstrcat(w->pool, w->log, "remove ", name, ";", NULL);
    for (i = 0; i < w->rules->nelts; i++) {
        dkv_fw_winrule_t *k = &DKV_ARRAY_IDX(w->rules, i, dkv_fw_winrule_t);

        if (strcmp(k->name, name) != 0) {
            *(dkv_fw_winrule_t *)apr_array_push(keep) = *k;
        }
    }
    w->rules = keep;
    return DKV_OK;
}

/* See dkv_fw_winapi_t: logs "list GROUP;". */
static dkv_status_t
wrec_list(void *baton, const char *group, apr_array_header_t *rules,
          apr_pool_t *pool)
{
    wrec_t *w = baton;
    int i;

    (void)pool;
    w->log = apr_pstrcat(w->pool, w->log, "list ", group, ";", NULL);
    for (i = 0; i < w->rules->nelts; i++) {
        dkv_fw_winrule_t *k = &DKV_ARRAY_IDX(w->rules, i, dkv_fw_winrule_t);

        if (strcmp(k->group, group) == 0) {
            *(dkv_fw_winrule_t *)apr_array_push(rules) = *k;
        }
    }
    return DKV_OK;
}

/* Makes CTX use the recording seam W (and a runner that accepts
 * nothing: the COM backend runs no program). */
static void
wrec_ctx(dkv_fw_ctx_t *ctx, wrec_t *w, rec_t *r, apr_pool_t *pool)
{
    rec_ctx(ctx, r, NULL, 0, pool);
    memset(w, 0, sizeof(*w));
    w->rules = apr_array_make(pool, 8, sizeof(dkv_fw_winrule_t));
    w->log = "";
    w->pool = pool;
    ctx->winapi.available = wrec_available;
    ctx->winapi.add = wrec_add;
    ctx->winapi.remove = wrec_remove;
    ctx->winapi.list = wrec_list;
    ctx->winapi.baton = w;
}

/* Takes the log of W, emptying it. */
static const char *
wrec_take(wrec_t *w)
{
    const char *l = w->log;

    w->log = "";
    return l;
}

static void
windows_open_list_close(void)
{
    apr_pool_t *pool = dkv_test_pool();
    apr_array_header_t *want = ranges("management=7801-7810,"
                                      "cluster=7811-7860,9000,9100-9101",
                                      pool);
    apr_array_header_t *custom1 = ranges("9000", pool);
    apr_array_header_t *got;
    dkv_fw_winrule_t *other;
    dkv_fw_ctx_t ctx;
    wrec_t w;
    rec_t r;
    int active = -1;
    const char *why = NULL;

    wrec_ctx(&ctx, &w, &r, pool);
    DKV_EXPECT_OK(dkv_fw_windows.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 1);
    /* Someone else's rule in another group stays untouched. */
    other = apr_array_push(w.rules);
    other->name = "Remote Desktop";
    other->description = "dkv:custom";
    other->group = "Remote Desktop";
    other->local_ports = "3389";

    DKV_EXPECT_OK(dkv_fw_windows.open(&ctx,
                                      RS(want),
                                      want->nelts));
    DKV_EXPECT_STR_EQ(wrec_take(&w), "list dkv;"
                      "add dkv management ports|dkv:management|dkv|"
                      "7801-7810;"
                      "add dkv cluster ports|dkv:cluster|dkv|7811-7860;"
                      "add dkv custom ports|dkv:custom|dkv|9000;"
                      "add dkv custom ports|dkv:custom|dkv|9100-9101;");
    /* Opening again adds nothing. */
    DKV_EXPECT_OK(dkv_fw_windows.open(&ctx,
                                      RS(want),
                                      want->nelts));
    DKV_EXPECT_STR_EQ(wrec_take(&w), "list dkv;");
    got = apr_array_make(pool, 4, sizeof(dkv_fw_range_t));
    DKV_EXPECT_OK(dkv_fw_windows.list(&ctx, got));
    DKV_EXPECT_STR_EQ(ranges_text(got, pool), "management=7801-7810,"
                      "cluster=7811-7860,custom=9000-9000,"
                      "custom=9100-9101");
    wrec_take(&w);
    /* Closing one custom range removes the shared name and puts the
     * other custom range back. */
    DKV_EXPECT_OK(dkv_fw_windows.close(&ctx,
                                       RS(custom1),
                                       1));
    DKV_EXPECT_STR_EQ(wrec_take(&w), "list dkv;remove dkv custom ports;"
                      "add dkv custom ports|dkv:custom|dkv|9100-9101;");
    /* Closing all removes every dkv name once, and nothing else. */
    DKV_EXPECT_OK(dkv_fw_windows.close(&ctx, NULL, 0));
    DKV_EXPECT_STR_EQ(wrec_take(&w), "list dkv;"
                      "remove dkv management ports;"
                      "remove dkv cluster ports;"
                      "remove dkv custom ports;");
    DKV_EXPECT_INT_EQ(w.rules->nelts, 1);
    DKV_EXPECT_OK(dkv_fw_windows.close(&ctx, NULL, 0));
    DKV_EXPECT_STR_EQ(wrec_take(&w), "list dkv;");
    REC_DONE(&r);
    apr_pool_destroy(pool);
}

static void
windows_unavailable_and_denied(void)
{
    apr_pool_t *pool = dkv_test_pool();
    apr_array_header_t *one = ranges("client=7861-7899", pool);
    dkv_fw_ctx_t ctx;
    wrec_t w;
    rec_t r;
    int active = -1;
    const char *why = NULL;

    wrec_ctx(&ctx, &w, &r, pool);
    w.available = APR_ENOTIMPL;
    DKV_EXPECT_OK(dkv_fw_windows.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_STR_EQ(why, "the firewall service is not running");
    w.available = DKV_OK;
    w.fail_add = APR_EACCES;
    DKV_EXPECT_STATUS(dkv_fw_windows.open(&ctx,
                                          RS(one),
                                          1), APR_EACCES);
    DKV_EXPECT_STR_EQ(wrec_take(&w), "list dkv;add dkv client ports|"
                      "dkv:client|dkv|7861-7899;");
    /* The system's seam off Windows says where the API exists. */
#if !defined(_WIN32)
    dkv_fw_ctx_init(&ctx, pool);
    DKV_EXPECT_OK(dkv_fw_windows.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_TRUE(strstr(why, "only on Windows") != NULL);
#endif
    apr_pool_destroy(pool);
}

/* -------------------------------------------------------------- netsh */

#define NETSH_SHOW "netsh|advfirewall|firewall|show|rule|name=all"
#define NETSH_ADD "netsh|advfirewall|firewall|add|rule|"
#define NETSH_RULE_TAIL "|dir=in|action=allow|protocol=TCP|"

/* `netsh advfirewall firewall show rule name=all` with one rule of
 * someone else's and dkv's management and custom 9000 rules. */
#define NETSH_LISTING \
    "\r\nRule Name:                            Remote Desktop\r\n" \
    "----------------------------------------------------------------------" \
    "\r\nEnabled:                              Yes\r\n" \
    "Direction:                            In\r\n" \
    "LocalPort:                            3389\r\n\r\n" \
    "Rule Name:                            dkv management ports\r\n" \
    "----------------------------------------------------------------------" \
    "\r\nEnabled:                              Yes\r\n" \
    "Protocol:                             TCP\r\n" \
    "LocalPort:                            7801-7810\r\n" \
    "RemotePort:                           Any\r\n\r\n" \
    "Rule Name:                            dkv custom ports\r\n" \
    "----------------------------------------------------------------------" \
    "\r\nLocalPort:                            9000\r\n\r\nOk.\r\n\r\n"

static void
netsh_detect_cases(void)
{
    static const rec_step_t on[] = {
        { "netsh|advfirewall|show|currentprofile|state", NULL, DKV_OK,
          "\r\nDomain Profile Settings:\r\n------------------------------"
          "\r\nState                                 ON\r\n\r\nOk.\r\n", 0 }
    };
    static const rec_step_t off[] = {
        { "netsh|advfirewall|show|currentprofile|state", NULL, DKV_OK,
          "\r\nPrivate Profile Settings:\r\n"
          "State                                 OFF\r\n\r\nOk.\r\n", 0 }
    };
    static const rec_step_t absent[] = {
        { "netsh|advfirewall|show|currentprofile|state", NULL, APR_ENOENT,
          NULL, 0 }
    };
    static const rec_step_t broken[] = {
        { "netsh|advfirewall|show|currentprofile|state", NULL, DKV_OK,
          "The following command was not found: advfirewall show.\r\n", 1 }
    };
    apr_pool_t *pool = dkv_test_pool();
    dkv_fw_ctx_t ctx;
    rec_t r;
    int active = -1;
    const char *why = NULL;

    rec_ctx(&ctx, &r, on, NSTEPS(on), pool);
    DKV_EXPECT_OK(dkv_fw_netsh.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 1);
    REC_DONE(&r);
    rec_ctx(&ctx, &r, off, NSTEPS(off), pool);
    DKV_EXPECT_OK(dkv_fw_netsh.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_TRUE(strstr(why, "off") != NULL);
    REC_DONE(&r);
    rec_ctx(&ctx, &r, absent, NSTEPS(absent), pool);
    DKV_EXPECT_OK(dkv_fw_netsh.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_STR_EQ(why, "netsh is not installed");
    REC_DONE(&r);
    rec_ctx(&ctx, &r, broken, NSTEPS(broken), pool);
    DKV_EXPECT_OK(dkv_fw_netsh.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_TRUE(strstr(why, "was not found") != NULL);
    REC_DONE(&r);
    apr_pool_destroy(pool);
}

static void
netsh_open_list_close(void)
{
    static const rec_step_t open1[] = {
        { NETSH_SHOW, NULL, DKV_OK, "\r\nNo rules match the specified "
          "criteria.\r\n\r\n", 1 },
        { NETSH_ADD "name=dkv management ports" NETSH_RULE_TAIL
          "localport=7801-7810|description=dkv:management", NULL, DKV_OK,
          "Ok.\r\n\r\n", 0 },
        { NETSH_ADD "name=dkv custom ports" NETSH_RULE_TAIL
          "localport=9000|description=dkv:custom", NULL, DKV_OK,
          "Ok.\r\n\r\n", 0 }
    };
    static const rec_step_t open2[] = {
        { NETSH_SHOW, NULL, DKV_OK, NETSH_LISTING, 0 }
    };
    static const rec_step_t close1[] = {
        { NETSH_SHOW, NULL, DKV_OK, NETSH_LISTING, 0 },
        { "netsh|advfirewall|firewall|delete|rule|name=dkv custom ports",
          NULL, DKV_OK, "\r\nDeleted 1 rule(s).\r\nOk.\r\n\r\n", 0 }
    };
    static const rec_step_t close_all[] = {
        { NETSH_SHOW, NULL, DKV_OK, NETSH_LISTING, 0 },
        { "netsh|advfirewall|firewall|delete|rule|name=dkv management ports",
          NULL, DKV_OK, "\r\nDeleted 1 rule(s).\r\nOk.\r\n\r\n", 0 },
        { "netsh|advfirewall|firewall|delete|rule|name=dkv custom ports",
          NULL, DKV_OK, "\r\nDeleted 1 rule(s).\r\nOk.\r\n\r\n", 0 }
    };
    static const rec_step_t denied[] = {
        { NETSH_SHOW, NULL, DKV_OK, "\r\nNo rules match the specified "
          "criteria.\r\n\r\n", 1 },
        { NETSH_ADD "name=dkv client ports" NETSH_RULE_TAIL
          "localport=7861-7899|description=dkv:client", NULL, DKV_OK,
          "The requested operation requires elevation (Run as "
          "administrator).\r\n\r\n", 1 }
    };
    apr_pool_t *pool = dkv_test_pool();
    apr_array_header_t *want = ranges("management=7801-7810,9000", pool);
    apr_array_header_t *client = ranges("client=7861-7899", pool);
    apr_array_header_t *c9000 = ranges("9000", pool);
    apr_array_header_t *got;
    dkv_fw_ctx_t ctx;
    rec_t r;

    rec_ctx(&ctx, &r, open1, NSTEPS(open1), pool);
    DKV_EXPECT_OK(dkv_fw_netsh.open(&ctx, RS(want),
                                    want->nelts));
    REC_DONE(&r);
    rec_ctx(&ctx, &r, open2, NSTEPS(open2), pool);
    DKV_EXPECT_OK(dkv_fw_netsh.open(&ctx, RS(want),
                                    want->nelts));
    REC_DONE(&r);
    rec_ctx(&ctx, &r, open2, NSTEPS(open2), pool);
    got = apr_array_make(pool, 4, sizeof(dkv_fw_range_t));
    DKV_EXPECT_OK(dkv_fw_netsh.list(&ctx, got));
    DKV_EXPECT_STR_EQ(ranges_text(got, pool),
                      "management=7801-7810,custom=9000-9000");
    REC_DONE(&r);
    rec_ctx(&ctx, &r, close1, NSTEPS(close1), pool);
    DKV_EXPECT_OK(dkv_fw_netsh.close(&ctx,
                                     RS(c9000), 1));
    REC_DONE(&r);
    rec_ctx(&ctx, &r, close_all, NSTEPS(close_all), pool);
    DKV_EXPECT_OK(dkv_fw_netsh.close(&ctx, NULL, 0));
    REC_DONE(&r);
    rec_ctx(&ctx, &r, denied, NSTEPS(denied), pool);
    DKV_EXPECT_STATUS(dkv_fw_netsh.open(&ctx,
                                        RS(client),
                                        1), APR_EACCES);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "Administrator") != NULL ||
                    strstr(dkv_last_error(), "root") != NULL);
    REC_DONE(&r);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------ the real runner */

#if !defined(_WIN32)
static void
system_runner_runs_programs(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_fw_exec_t e = dkv_fw_exec_system();
    const char *echo[] = { "sh", "-c", "cat; echo err >&2; exit 3", NULL };
    const char *absent[] = { "dkv-no-such-program-here", NULL };
    const char *path[] = { "/nonexistent/dir/prog", NULL };
    char *out = NULL;
    int code = 0;

    if (dkv_test_exists("/bin/sh", pool) == 0) {
        apr_pool_destroy(pool);
        return;
    }
    DKV_EXPECT_OK(e.run(e.baton, echo, "from stdin\n", &out, &code, pool));
    DKV_EXPECT_STR_EQ(out, "from stdin\nerr\n");
    DKV_EXPECT_INT_EQ(code, 3);
    DKV_EXPECT_OK(e.run(e.baton, echo, NULL, &out, &code, pool));
    DKV_EXPECT_STR_EQ(out, "err\n");
    DKV_EXPECT_STATUS(e.run(e.baton, absent, NULL, &out, &code, pool),
                      APR_ENOENT);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "not installed") != NULL);
    DKV_EXPECT_STATUS(e.run(e.baton, path, NULL, &out, &code, pool),
                      APR_ENOENT);
    apr_pool_destroy(pool);
}
#else
static void
system_runner_runs_programs(void)
{
    apr_pool_t *pool = dkv_test_pool();
    dkv_fw_exec_t e = dkv_fw_exec_system();
    const char *exit3[] = { "cmd", "/c", "echo hello& exit 3", NULL };
    const char *absent[] = { "dkv-no-such-program-here", NULL };
    char *out = NULL;
    int code = 0;

    DKV_EXPECT_OK(e.run(e.baton, exit3, NULL, &out, &code, pool));
    DKV_EXPECT_INT_EQ(code, 3);
    DKV_EXPECT_TRUE(strstr(out, "hello") != NULL);
    DKV_EXPECT_STATUS(e.run(e.baton, absent, NULL, &out, &code, pool),
                      APR_ENOENT);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "not installed") != NULL);
    apr_pool_destroy(pool);
}
#endif

/* See testutil.h. */
void
test_firewall_register(void)
{
    CU_pSuite s = dkv_test_add_suite("firewall", NULL, NULL);

    DKV_TEST_ADD(s, ranges_parse_good);
    DKV_TEST_ADD(s, ranges_parse_bad);
    DKV_TEST_ADD(s, tags_and_roles);
    DKV_TEST_ADD(s, config_ranges_from_manager_file);
    DKV_TEST_ADD(s, helpers_failed_and_denied);
    DKV_TEST_ADD(s, backends_by_name);
    DKV_TEST_ADD(s, detect_nothing_active);
#if defined(__linux__)
    DKV_TEST_ADD(s, detect_stops_at_first_active);
#endif
    DKV_TEST_ADD(s, pf_detect_cases);
    DKV_TEST_ADD(s, pf_open_list_close);
    DKV_TEST_ADD(s, pf_denied_and_absent);
    DKV_TEST_ADD(s, pf_anchor_not_there_yet);
    DKV_TEST_ADD(s, windows_open_list_close);
    DKV_TEST_ADD(s, windows_unavailable_and_denied);
    DKV_TEST_ADD(s, netsh_detect_cases);
    DKV_TEST_ADD(s, netsh_open_list_close);
    DKV_TEST_ADD(s, system_runner_runs_programs);
}
