/*
 * test_fw_linux.c -- the Linux firewall backends (platform/fw_linux.c)
 * against a recorder: each test scripts the commands a backend must run,
 * in order, with the output and exit code each one answers, so the exact
 * commands, the reading of each firewall's listings (nft's JSON,
 * iptables -S, ufw status, firewall-cmd) and the statuses are checked
 * without a firewall.  tests/firewall/test-firewall-netns.sh runs the
 * same backends for real.
 */
#include <stdio.h>
#include <string.h>

#include <apr_strings.h>

#include "testutil.h"
#include "common/alloc.h"
#include "common/status.h"
#include "platform/firewall.h"

/* ------------------------------------------------------------ recorder */

/* Exit code that makes the recorder answer "not installed". */
#define NOT_INSTALLED (-1000)

/* One expected command (argv joined by single spaces) and its answer. */
typedef struct step_t {
    const char *cmd;
    int code;
    const char *out;
} step_t;

typedef struct rec_t {
    const step_t *steps;
    int n;
    int at;               /* steps run so far */
    const char *mismatch; /* the first unexpected command, or NULL */
    apr_pool_t *pool;
} rec_t;

/* The recorder's dkv_fw_exec_t.run: checks ARGV against the next step
 * and answers with it. */
static dkv_status_t
rec_run(void *baton, const char *const *argv, const char *input, char **out,
        int *exit_code, apr_pool_t *pool)
{
    rec_t *r = baton;
    const char *cmd = argv[0];
    int i;

    (void)input;
    for (i = 1; argv[i] != NULL; i++) {
        cmd = apr_pstrcat(r->pool, cmd, " ", argv[i], NULL);
    }
    if (r->at >= r->n || strcmp(r->steps[r->at].cmd, cmd) != 0) {
        if (r->mismatch == NULL) {
            r->mismatch = apr_psprintf(
                r->pool,
                "step %d: ran [%s], "
                "expected [%s]",
                r->at, cmd, r->at < r->n ? r->steps[r->at].cmd : "nothing");
        }
        *out = apr_pstrdup(pool, "unexpected command");
        *exit_code = 99;
        return DKV_OK;
    }
    if (r->steps[r->at].code == NOT_INSTALLED) {
        r->at++;
        *out = apr_pstrdup(pool, "");
        *exit_code = -1;
        return dkv_error_set(APR_ENOENT, "%s is not installed", argv[0]);
    }
    *out = apr_pstrdup(pool, r->steps[r->at].out);
    *exit_code = r->steps[r->at].code;
    r->at++;
    return DKV_OK;
}

/* A context whose runner is REC, scripted with the N STEPS. */
static void
rec_init(dkv_fw_ctx_t *ctx, rec_t *rec, const step_t *steps, int n,
         apr_pool_t *pool)
{
    memset(ctx, 0, sizeof(*ctx));
    memset(rec, 0, sizeof(*rec));
    rec->steps = steps;
    rec->n = n;
    rec->pool = pool;
    ctx->exec.run = rec_run;
    ctx->exec.baton = rec;
    ctx->pool = pool;
}

/* Checks that every scripted step ran and nothing else did. */
static void
rec_check(const rec_t *rec)
{
    if (rec->mismatch != NULL) {
        fprintf(stderr, "\n  recorder: %s\n", rec->mismatch);
    }
    DKV_EXPECT_TRUE(rec->mismatch == NULL);
    DKV_EXPECT_INT_EQ(rec->at, rec->n);
}

#define NSTEPS(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const dkv_fw_range_t two[] = {{"management", 7801, 7810},
                                     {"cluster", 7811, 7860}};

/* Finds ports LO-HI in OPEN; returns its role or NULL. */
static const char *
open_role(const apr_array_header_t *open, int lo, int hi)
{
    int i;

    for (i = 0; i < open->nelts; i++) {
        const dkv_fw_range_t *r = &DKV_ARRAY_IDX(open, i, dkv_fw_range_t);
        if (r->lo == lo && r->hi == hi) {
            return r->name;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ nftables */

/* A ruleset: inet filter input (drop) with dkv's management rule and an
 * untagged one, iptables-nft's ip filter INPUT, firewalld's table, and an
 * ip6 chain with policy accept and no rules. */
static const char nft_json[] =
    "{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\"}},"
    "{\"table\": {\"family\": \"inet\", \"name\": \"filter\"}},"
    "{\"chain\": {\"family\": \"inet\", \"table\": \"filter\","
    " \"name\": \"input\", \"handle\": 1, \"type\": \"filter\","
    " \"hook\": \"input\", \"prio\": 0, \"policy\": \"drop\"}},"
    "{\"chain\": {\"family\": \"ip\", \"table\": \"filter\","
    " \"name\": \"INPUT\", \"handle\": 1, \"type\": \"filter\","
    " \"hook\": \"input\", \"prio\": 0, \"policy\": \"drop\"}},"
    "{\"chain\": {\"family\": \"inet\", \"table\": \"firewalld\","
    " \"name\": \"filter_INPUT\", \"handle\": 1, \"type\": \"filter\","
    " \"hook\": \"input\", \"prio\": 10, \"policy\": \"accept\"}},"
    "{\"chain\": {\"family\": \"ip6\", \"table\": \"mine\","
    " \"name\": \"in\", \"handle\": 1, \"type\": \"filter\","
    " \"hook\": \"input\", \"prio\": 0, \"policy\": \"accept\"}},"
    "{\"chain\": {\"family\": \"inet\", \"table\": \"filter\","
    " \"name\": \"output\", \"handle\": 2, \"type\": \"filter\","
    " \"hook\": \"output\", \"prio\": 0, \"policy\": \"accept\"}},"
    "{\"rule\": {\"family\": \"inet\", \"table\": \"filter\","
    " \"chain\": \"input\", \"handle\": 7, \"comment\": \"dkv:management\","
    " \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\":"
    " {\"protocol\": \"tcp\", \"field\": \"dport\"}}, \"right\":"
    " {\"range\": [7801, 7810]}}}, {\"accept\": null}]}},"
    "{\"rule\": {\"family\": \"inet\", \"table\": \"filter\","
    " \"chain\": \"input\", \"handle\": 8, \"comment\": \"mine\","
    " \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\":"
    " {\"protocol\": \"tcp\", \"field\": \"dport\"}}, \"right\": 22}},"
    " {\"accept\": null}]}},"
    "{\"rule\": {\"family\": \"ip6\", \"table\": \"mine\","
    " \"chain\": \"in\", \"handle\": 4, \"comment\": \"dkv:custom\","
    " \"expr\": [{\"match\": {\"op\": \"==\", \"left\": {\"payload\":"
    " {\"protocol\": \"tcp\", \"field\": \"dport\"}}, \"right\": 9000}},"
    " {\"accept\": null}]}}"
    "]}\n";

/* open inserts only what is missing, in every input base chain that is
 * not iptables-nft's or firewalld's; list reads dkv's rules back. */
static void
test_nft_open_list(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const step_t steps[] = {
        {"nft -t -j list ruleset", 0, nft_json},
        {"nft insert rule inet filter input tcp dport 7811-7860 accept "
         "comment \"dkv:cluster\"",
         0, ""},
        {"nft insert rule ip6 mine in tcp dport 7801-7810 accept "
         "comment \"dkv:management\"",
         0, ""},
        {"nft insert rule ip6 mine in tcp dport 7811-7860 accept "
         "comment \"dkv:cluster\"",
         0, ""},
        {"nft -t -j list ruleset", 0, nft_json},
    };
    dkv_fw_ctx_t ctx;
    rec_t rec;
    apr_array_header_t *open = apr_array_make(pool, 4, sizeof(dkv_fw_range_t));

    rec_init(&ctx, &rec, steps, NSTEPS(steps), pool);
    DKV_EXPECT_OK(dkv_fw_nftables.open(&ctx, two, 2));
    DKV_EXPECT_OK(dkv_fw_nftables.list(&ctx, open));
    rec_check(&rec);
    DKV_EXPECT_INT_EQ(open->nelts, 2);
    DKV_EXPECT_STR_EQ(open_role(open, 7801, 7810), "management");
    DKV_EXPECT_STR_EQ(open_role(open, 9000, 9000), "custom");
    apr_pool_destroy(pool);
}

/* close removes dkv's rules by handle, never the untagged one. */
static void
test_nft_close(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const step_t steps[] = {
        {"nft -t -j list ruleset", 0, nft_json},
        {"nft delete rule inet filter input handle 7", 0, ""},
        {"nft delete rule ip6 mine in handle 4", 0, ""},
        {"nft -t -j list ruleset", 0, nft_json},
        {"nft delete rule ip6 mine in handle 4", 0, ""},
        {"nft -t -j list ruleset", 0, nft_json},
    };
    static const dkv_fw_range_t custom[] = {{"custom", 9000, 9000}};
    static const dkv_fw_range_t other[] = {{"custom", 9001, 9001}};
    dkv_fw_ctx_t ctx;
    rec_t rec;

    rec_init(&ctx, &rec, steps, NSTEPS(steps), pool);
    DKV_EXPECT_OK(dkv_fw_nftables.close(&ctx, NULL, 0));
    DKV_EXPECT_OK(dkv_fw_nftables.close(&ctx, custom, 1));
    DKV_EXPECT_OK(dkv_fw_nftables.close(&ctx, other, 1));
    rec_check(&rec);
    apr_pool_destroy(pool);
}

/* detect: filtering chains make it active; iptables-nft's chain alone
 * does not; not installed and not root are reasons, not errors; open
 * without privileges is APR_EACCES. */
static void
test_nft_detect(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const step_t steps[] = {
        {"nft -t -j list ruleset", 0, nft_json},
        {"nft -t -j list ruleset", 0,
         "{\"nftables\": [{\"chain\": {\"family\": \"ip\", \"table\":"
         " \"filter\", \"name\": \"INPUT\", \"type\": \"filter\","
         " \"hook\": \"input\", \"policy\": \"drop\"}}]}"},
        {"nft -t -j list ruleset", 0, ""},
        {"nft -t -j list ruleset", NOT_INSTALLED, ""},
        {"nft -t -j list ruleset", 1,
         "Operation not permitted (you must be root)\n"},
        {"nft -t -j list ruleset", 1,
         "Operation not permitted (you must be root)\n"},
    };
    dkv_fw_ctx_t ctx;
    rec_t rec;
    int active = -1;
    const char *why = NULL;

    rec_init(&ctx, &rec, steps, NSTEPS(steps), pool);
    DKV_EXPECT_OK(dkv_fw_nftables.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 1);
    DKV_EXPECT_TRUE(strstr(why, "inet filter input (policy drop") != NULL);
    /* iptables-nft's INPUT drops too: detect says to open it as well. */
    DKV_EXPECT_TRUE(strstr(why, "iptables-nft filters input too: ip filter "
                           "INPUT (policy drop, 0 rules) (open there as "
                           "well with -Backend iptables)") != NULL);
    DKV_EXPECT_TRUE(strstr(why, "firewalld") == NULL);
    DKV_EXPECT_OK(dkv_fw_nftables.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_STR_EQ(why, "nftables has no input chain (besides "
                      "iptables-nft's and firewalld's)");
    DKV_EXPECT_OK(dkv_fw_nftables.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_OK(dkv_fw_nftables.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_STR_EQ(why, "nft is not installed");
    DKV_EXPECT_OK(dkv_fw_nftables.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_TRUE(strstr(why, "root") != NULL);
    DKV_EXPECT_STATUS(dkv_fw_nftables.open(&ctx, two, 2), APR_EACCES);
    rec_check(&rec);
    apr_pool_destroy(pool);
}

/* A range given twice is inserted once in each chain (an open that read
 * the ruleset once must remember what it inserted). */
static void
test_nft_open_twice_given(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const char one_chain[] =
        "{\"nftables\": [{\"chain\": {\"family\": \"inet\", \"table\":"
        " \"filter\", \"name\": \"input\", \"type\": \"filter\","
        " \"hook\": \"input\", \"policy\": \"drop\"}}]}";
    static const step_t steps[] = {
        {"nft -t -j list ruleset", 0, one_chain},
        {"nft insert rule inet filter input tcp dport 9000 accept "
         "comment \"dkv:custom\"",
         0, ""},
    };
    static const dkv_fw_range_t twice[] = {{"custom", 9000, 9000},
                                           {"client", 9000, 9000}};
    dkv_fw_ctx_t ctx;
    rec_t rec;

    rec_init(&ctx, &rec, steps, NSTEPS(steps), pool);
    DKV_EXPECT_OK(dkv_fw_nftables.open(&ctx, twice, 2));
    rec_check(&rec);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------------ iptables */

static const char ipt_rules[] =
    "-P INPUT DROP\n"
    "-A INPUT -p tcp -m tcp --dport 7801:7810 -m comment --comment "
    "\"dkv:management\" -j ACCEPT\n"
    "-A INPUT -p tcp -m tcp --dport 9000 -m comment --comment dkv:custom "
    "-j ACCEPT\n"
    "-A INPUT -p tcp -m tcp --dport 7811:7860 -j ACCEPT\n"
    "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n";

/* open adds only the missing range, in iptables and ip6tables (skipped
 * when not installed); close deletes with the listed spec; list reads
 * the tags. */
static void
test_ipt(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const step_t steps[] = {
        {"iptables -S INPUT", 0, ipt_rules},
        {"iptables -I INPUT -p tcp --dport 7811:7860 -m comment "
         "--comment dkv:cluster -j ACCEPT",
         0, ""},
        {"ip6tables -S INPUT", 0, "-P INPUT ACCEPT\n"},
        {"ip6tables -I INPUT -p tcp --dport 7801:7810 -m comment "
         "--comment dkv:management -j ACCEPT",
         0, ""},
        {"ip6tables -I INPUT -p tcp --dport 7811:7860 -m comment "
         "--comment dkv:cluster -j ACCEPT",
         0, ""},
        {"iptables -S INPUT", 0, ipt_rules},
        {"iptables -D INPUT -p tcp -m tcp --dport 7801:7810 -m comment "
         "--comment dkv:management -j ACCEPT",
         0, ""},
        {"iptables -D INPUT -p tcp -m tcp --dport 9000 -m comment "
         "--comment dkv:custom -j ACCEPT",
         0, ""},
        {"ip6tables -S INPUT", NOT_INSTALLED, ""},
        {"iptables -S INPUT", 0, ipt_rules},
        {"ip6tables -S INPUT", 1,
         "can't initialize ip6tables table "
         "`filter': Table does not exist\n"},
        {"iptables -S INPUT", 0, ipt_rules},
    };
    dkv_fw_ctx_t ctx;
    rec_t rec;
    int active = -1;
    const char *why = NULL;
    apr_array_header_t *open = apr_array_make(pool, 4, sizeof(dkv_fw_range_t));

    rec_init(&ctx, &rec, steps, NSTEPS(steps), pool);
    DKV_EXPECT_OK(dkv_fw_iptables.open(&ctx, two, 2));
    DKV_EXPECT_OK(dkv_fw_iptables.close(&ctx, NULL, 0));
    DKV_EXPECT_OK(dkv_fw_iptables.list(&ctx, open));
    DKV_EXPECT_OK(dkv_fw_iptables.detect(&ctx, &active, &why));
    rec_check(&rec);
    DKV_EXPECT_INT_EQ(open->nelts, 2);
    DKV_EXPECT_STR_EQ(open_role(open, 7801, 7810), "management");
    DKV_EXPECT_STR_EQ(open_role(open, 9000, 9000), "custom");
    DKV_EXPECT_TRUE(open_role(open, 7811, 7860) == NULL);
    DKV_EXPECT_INT_EQ(active, 1);
    apr_pool_destroy(pool);
}

/* A range given twice is inserted once, in iptables and in ip6tables. */
static void
test_ipt_open_twice_given(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const step_t steps[] = {
        {"iptables -S INPUT", 0, "-P INPUT DROP\n"},
        {"iptables -I INPUT -p tcp --dport 9000 -m comment "
         "--comment dkv:custom -j ACCEPT",
         0, ""},
        {"ip6tables -S INPUT", 0, "-P INPUT DROP\n"},
        {"ip6tables -I INPUT -p tcp --dport 9000 -m comment "
         "--comment dkv:custom -j ACCEPT",
         0, ""},
    };
    static const dkv_fw_range_t twice[] = {{"custom", 9000, 9000},
                                           {"custom", 9000, 9000}};
    dkv_fw_ctx_t ctx;
    rec_t rec;

    rec_init(&ctx, &rec, steps, NSTEPS(steps), pool);
    DKV_EXPECT_OK(dkv_fw_iptables.open(&ctx, twice, 2));
    rec_check(&rec);
    apr_pool_destroy(pool);
}

/* ----------------------------------------------------------------- ufw */

static const char ufw_status[] =
    "Status: active\n\n"
    "To                         Action      From\n"
    "--                         ------      ----\n"
    "7801:7810/tcp              ALLOW       Anywhere          "
    "# dkv:management\n"
    "22/tcp                     ALLOW       Anywhere\n"
    "9000/tcp                   ALLOW       Anywhere          # dkv:custom\n"
    "7801:7810/tcp (v6)         ALLOW       Anywhere (v6)     "
    "# dkv:management\n"
    "22/tcp (v6)                ALLOW       Anywhere (v6)\n";

/* open skips what is there, close deletes only dkv's, detect reads the
 * status line. */
static void
test_ufw(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const step_t steps[] = {
        {"ufw status", 0, ufw_status},
        {"ufw allow 7811:7860/tcp comment dkv:cluster", 0,
         "Rule added\nRule added (v6)\n"},
        {"ufw status", 0, ufw_status},
        {"ufw delete allow 7801:7810/tcp", 0, "Rule deleted\n"},
        {"ufw delete allow 9000/tcp", 0, "Rule deleted\n"},
        {"ufw status", 0, "Status: inactive\n"},
        {"ufw status", 1, "ERROR: You need to be root to run this script\n"},
    };
    dkv_fw_ctx_t ctx;
    rec_t rec;
    int active = -1;
    const char *why = NULL;

    rec_init(&ctx, &rec, steps, NSTEPS(steps), pool);
    DKV_EXPECT_OK(dkv_fw_ufw.open(&ctx, two, 2));
    DKV_EXPECT_OK(dkv_fw_ufw.close(&ctx, NULL, 0));
    DKV_EXPECT_OK(dkv_fw_ufw.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    DKV_EXPECT_STATUS(dkv_fw_ufw.close(&ctx, NULL, 0), APR_EACCES);
    rec_check(&rec);
    apr_pool_destroy(pool);
}

/* A tagged rule that does not allow incoming traffic (DENY, ALLOW OUT,
 * LIMIT) is not open: list leaves it out, open adds the allow, and close
 * does not try `ufw delete allow` on it. */
static void
test_ufw_only_allow_in(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const char status[] =
        "Status: active\n\n"
        "To                         Action      From\n"
        "--                         ------      ----\n"
        "7801:7810/tcp              DENY        Anywhere          "
        "# dkv:management\n"
        "7811:7860/tcp              ALLOW OUT   Anywhere          "
        "# dkv:cluster\n"
        "9000/tcp                   LIMIT       Anywhere          "
        "# dkv:custom\n"
        "7861:7899/tcp (v6)         ALLOW       Anywhere (v6)     "
        "# dkv:client\n"
        "7801:7810/tcp (v6)         DENY        Anywhere (v6)     "
        "# dkv:management\n";
    static const step_t steps[] = {
        {"ufw status", 0, status},
        {"ufw status", 0, status},
        {"ufw allow 7801:7810/tcp comment dkv:management", 0,
         "Rule updated\nRule updated (v6)\n"},
        {"ufw status", 0, status},
        {"ufw delete allow 7861:7899/tcp", 0, "Rule deleted (v6)\n"},
    };
    dkv_fw_ctx_t ctx;
    rec_t rec;
    apr_array_header_t *open = apr_array_make(pool, 4, sizeof(dkv_fw_range_t));

    rec_init(&ctx, &rec, steps, NSTEPS(steps), pool);
    DKV_EXPECT_OK(dkv_fw_ufw.list(&ctx, open));
    DKV_EXPECT_INT_EQ(open->nelts, 1);
    DKV_EXPECT_STR_EQ(open_role(open, 7861, 7899), "client");
    DKV_EXPECT_OK(dkv_fw_ufw.open(&ctx, two, 1));
    DKV_EXPECT_OK(dkv_fw_ufw.close(&ctx, NULL, 0));
    rec_check(&rec);
    apr_pool_destroy(pool);
}

/* ----------------------------------------------------------- firewalld */

/* A first open creates the service, names the roles in its description,
 * adds it to the zone and reloads; list maps the ports back to roles. */
static void
test_firewalld_open_list(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const step_t steps[] = {
        {"firewall-cmd --permanent --service=dkv --get-ports", 101,
         "Error: INVALID_SERVICE: dkv\n"},
        {"firewall-cmd --permanent --new-service=dkv", 0, "success\n"},
        {"firewall-cmd --permanent --service=dkv --set-short=dkv", 0,
         "success\n"},
        {"firewall-cmd --permanent --service=dkv "
         "--add-port=7801-7810/tcp",
         0, "success\n"},
        {"firewall-cmd --permanent --service=dkv "
         "--add-port=7811-7860/tcp",
         0, "success\n"},
        {"firewall-cmd --permanent --query-service=dkv", 1, "no\n"},
        {"firewall-cmd --permanent --add-service=dkv", 0, "success\n"},
        {"firewall-cmd --permanent --service=dkv --set-description="
         "dkv:management=7801-7810 dkv:cluster=7811-7860",
         0, "success\n"},
        {"firewall-cmd --reload", 0, "success\n"},
        {"firewall-cmd --query-service=dkv", 0, "yes\n"},
        {"firewall-cmd --permanent --service=dkv --get-ports", 0,
         "7801-7810/tcp 7811-7860/tcp 9000/tcp\n"},
        {"firewall-cmd --permanent --service=dkv --get-description", 0,
         "dkv:management=7801-7810 dkv:cluster=7811-7860\n"},
    };
    dkv_fw_ctx_t ctx;
    rec_t rec;
    apr_array_header_t *open = apr_array_make(pool, 4, sizeof(dkv_fw_range_t));

    rec_init(&ctx, &rec, steps, NSTEPS(steps), pool);
    DKV_EXPECT_OK(dkv_fw_firewalld.open(&ctx, two, 2));
    DKV_EXPECT_OK(dkv_fw_firewalld.list(&ctx, open));
    rec_check(&rec);
    DKV_EXPECT_INT_EQ(open->nelts, 3);
    DKV_EXPECT_STR_EQ(open_role(open, 7811, 7860), "cluster");
    DKV_EXPECT_STR_EQ(open_role(open, 9000, 9000), "custom");
    apr_pool_destroy(pool);
}

/* A second open changes nothing and does not reload; closing some ports
 * keeps the service; closing all deletes it; a stopped firewalld is
 * DKV_EUNAVAILABLE. */
static void
test_firewalld_idempotent_close(void)
{
    apr_pool_t *pool = dkv_test_pool();
    static const step_t steps[] = {
        {"firewall-cmd --permanent --service=dkv --get-ports", 0,
         "7801-7810/tcp 7811-7860/tcp\n"},
        {"firewall-cmd --permanent --service=dkv --get-description", 0,
         "dkv:management=7801-7810 dkv:cluster=7811-7860\n"},
        {"firewall-cmd --permanent --query-service=dkv", 0, "yes\n"},
        {"firewall-cmd --query-service=dkv", 0, "yes\n"},
        /* close cluster only */
        {"firewall-cmd --permanent --service=dkv --get-ports", 0,
         "7801-7810/tcp 7811-7860/tcp\n"},
        {"firewall-cmd --permanent --service=dkv --get-description", 0,
         "dkv:management=7801-7810 dkv:cluster=7811-7860\n"},
        {"firewall-cmd --permanent --service=dkv "
         "--remove-port=7811-7860/tcp",
         0, "success\n"},
        {"firewall-cmd --permanent --service=dkv --set-description="
         "dkv:management=7801-7810",
         0, "success\n"},
        {"firewall-cmd --reload", 0, "success\n"},
        /* close all */
        {"firewall-cmd --permanent --service=dkv --get-ports", 0,
         "7801-7810/tcp\n"},
        {"firewall-cmd --permanent --service=dkv --get-description", 0,
         "dkv:management=7801-7810\n"},
        {"firewall-cmd --permanent --query-service=dkv", 0, "yes\n"},
        {"firewall-cmd --permanent --remove-service=dkv", 0, "success\n"},
        {"firewall-cmd --permanent --delete-service=dkv", 0, "success\n"},
        {"firewall-cmd --reload", 0, "success\n"},
        /* nothing left: close again is quiet */
        {"firewall-cmd --permanent --service=dkv --get-ports", 101,
         "Error: INVALID_SERVICE: dkv\n"},
        /* stopped */
        {"firewall-cmd --permanent --service=dkv --get-ports", 252,
         "FirewallD is not running\n"},
        {"firewall-cmd --state", 252, "not running\n"},
    };
    static const dkv_fw_range_t cluster[] = {{"cluster", 7811, 7860}};
    dkv_fw_ctx_t ctx;
    rec_t rec;
    int active = -1;
    const char *why = NULL;

    rec_init(&ctx, &rec, steps, NSTEPS(steps), pool);
    DKV_EXPECT_OK(dkv_fw_firewalld.open(&ctx, two, 2));
    DKV_EXPECT_OK(dkv_fw_firewalld.close(&ctx, cluster, 1));
    DKV_EXPECT_OK(dkv_fw_firewalld.close(&ctx, NULL, 0));
    DKV_EXPECT_OK(dkv_fw_firewalld.close(&ctx, NULL, 0));
    DKV_EXPECT_STATUS(dkv_fw_firewalld.open(&ctx, two, 2), DKV_EUNAVAILABLE);
    DKV_EXPECT_OK(dkv_fw_firewalld.detect(&ctx, &active, &why));
    DKV_EXPECT_INT_EQ(active, 0);
    rec_check(&rec);
    apr_pool_destroy(pool);
}

void
test_fw_linux_register(void)
{
    CU_pSuite s = dkv_test_add_suite("fw_linux", NULL, NULL);

    DKV_TEST_ADD(s, test_nft_open_list);
    DKV_TEST_ADD(s, test_nft_close);
    DKV_TEST_ADD(s, test_nft_detect);
    DKV_TEST_ADD(s, test_nft_open_twice_given);
    DKV_TEST_ADD(s, test_ipt);
    DKV_TEST_ADD(s, test_ipt_open_twice_given);
    DKV_TEST_ADD(s, test_ufw);
    DKV_TEST_ADD(s, test_ufw_only_allow_in);
    DKV_TEST_ADD(s, test_firewalld_open_list);
    DKV_TEST_ADD(s, test_firewalld_idempotent_close);
}
