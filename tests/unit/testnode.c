/*
 * testnode.c -- real dkv-node children for the tests (see testnode.h):
 * start with a port file, bounded waits, signals, the log, the RSS, and
 * the API suites' remote mode (a fresh node per "inproc:" store).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_env.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <CUnit/CUnit.h>

#include "testutil.h"
#include "testnode.h"

/* Windows has no SIGKILL; apr_proc_kill terminates whatever the number. */
#ifndef SIGKILL
#define SIGKILL 9
#endif

#define TN_START_WAIT_MS 15000
#define TN_STEP_MS 10

/* ============================================================ the path */

const char *
dkv_test_node_path(apr_pool_t *pool)
{
    char *env = NULL;
    const char *p, *slash = NULL;

    if (apr_env_get(&env, "DKV_NODE", pool) == APR_SUCCESS && env != NULL
        && *env != '\0') {
        return env;
    }
    for (p = dkv_test_argv0; *p != '\0'; p++) {
        if (*p == '/' || *p == '\\') {
            slash = p;
        }
    }
    if (slash != NULL) {
        const char *dir = apr_pstrndup(pool, dkv_test_argv0,
                                       (apr_size_t)(slash + 1
                                                    - dkv_test_argv0));
        const char *cand = apr_pstrcat(pool, dir, "../../dkv-node", NULL);

        if (dkv_test_exists(cand, pool)) {
            return cand;
        }
    }
    if (apr_env_get(&env, "top_builddir", pool) == APR_SUCCESS
        && env != NULL && *env != '\0') {
        return apr_pstrcat(pool, env, "/dkv-node", NULL);
    }
    return "dkv-node";
}

int
dkv_test_remote_mode(void)
{
    const char *m = getenv("DKV_TEST_MODE");

    return m != NULL && strcmp(m, "remote") == 0;
}

/* ======================================================== the process */

/* Reads the whole of PATH into POOL ("" when it cannot). */
static const char *
tn_slurp(const char *path, apr_pool_t *pool)
{
    apr_file_t *f;
    char buf[4096];
    const char *all = "";
    apr_size_t n;

    if (apr_file_open(&f, path, APR_READ, 0, pool) != APR_SUCCESS) {
        return "";
    }
    for (;;) {
        n = sizeof buf - 1;
        if (apr_file_read(f, buf, &n) != APR_SUCCESS || n == 0) {
            break;
        }
        buf[n] = '\0';
        all = apr_pstrcat(pool, all, buf, NULL);
    }
    apr_file_close(f);
    return all;
}

/* Pool cleanup: a node still running is killed and reaped. */
static apr_status_t
tn_cleanup(void *data)
{
    dkv_test_node_t *node = data;

    if (node->running) {
        (void)dkv_test_node_stop(node, SIGKILL, 5000);
    }
    return APR_SUCCESS;
}

int
dkv_test_node_alive(dkv_test_node_t *node)
{
    int code = 0;
    apr_exit_why_e why;

    if (!node->running) {
        return 0;
    }
    if (apr_proc_wait(&node->proc, &code, &why, APR_NOWAIT)
        == APR_CHILD_DONE) {
        node->running = 0;
        node->exit_code = code;
        node->exit_why = why;
        return 0;
    }
    return 1;
}

int
dkv_test_node_stop(dkv_test_node_t *node, int signum, int timeout_ms)
{
    int64_t deadline = (int64_t)(apr_time_now() / 1000) + timeout_ms;

    if (!node->running) {
        return 1;
    }
    (void)apr_proc_kill(&node->proc, signum);
    while ((int64_t)(apr_time_now() / 1000) < deadline) {
        if (!dkv_test_node_alive(node)) {
            return 1;
        }
        apr_sleep(TN_STEP_MS * 1000);
    }
    (void)apr_proc_kill(&node->proc, SIGKILL);
    deadline = (int64_t)(apr_time_now() / 1000) + 5000;
    while (dkv_test_node_alive(node)
           && (int64_t)(apr_time_now() / 1000) < deadline) {
        apr_sleep(TN_STEP_MS * 1000);
    }
    return 0;
}

/* Spawns NODE's process (its fields set) and waits for the port file. */
static apr_status_t
tn_spawn(dkv_test_node_t *node, const char *const *prefix)
{
    apr_pool_t *pool = node->pool;
    apr_procattr_t *attr;
    apr_file_t *out;
    const char **argv;
    size_t n = 0, i;
    apr_status_t rv;
    int64_t deadline;
    char err[256];

    (void)apr_file_remove(node->port_file, pool);
    argv = apr_pcalloc(pool, 64 * sizeof *argv);
    for (i = 0; prefix != NULL && prefix[i] != NULL && n < 16; i++) {
        argv[n++] = prefix[i];
    }
    argv[n++] = dkv_test_node_path(pool);
    argv[n++] = "--store";
    argv[n++] = node->store;
    argv[n++] = "--data-dir";
    argv[n++] = node->data_dir;
    argv[n++] = "--client-port";
    argv[n++] = "0";
    argv[n++] = "--port-file";
    argv[n++] = node->port_file;
    argv[n++] = "--log-file";
    argv[n++] = node->log_file;
    for (i = 0; node->args != NULL && node->args[i] != NULL && n < 62; i++) {
        argv[n++] = node->args[i];
    }
    argv[n] = NULL;

    rv = apr_file_open(&out, node->out_file,
                       APR_WRITE | APR_CREATE | APR_APPEND, APR_OS_DEFAULT,
                       pool);
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_create(&attr, pool);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_child_out_set(attr, out, NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_child_err_set(attr, out, NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_cmdtype_set(attr, APR_PROGRAM_PATH);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_proc_create(&node->proc, argv[0], argv, NULL, attr, pool);
    }
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "\n  cannot start %s: %s\n", argv[0],
                apr_strerror(rv, err, sizeof err));
        return rv;
    }
    apr_file_close(out);
    node->running = 1;

    deadline = (int64_t)(apr_time_now() / 1000) + TN_START_WAIT_MS;
    while ((int64_t)(apr_time_now() / 1000) < deadline) {
        const char *pf = tn_slurp(node->port_file, pool);
        char *end = NULL;
        long port;

        if (strchr(pf, '\n') != NULL) {
            port = strtol(pf, &end, 10);
            if (port > 0 && port < 65536) {
                node->port = (apr_port_t)port;
                node->address = apr_psprintf(pool, "dkv://127.0.0.1:%ld/%s",
                                             port, node->store);
                return APR_SUCCESS;
            }
        }
        if (!dkv_test_node_alive(node)) {
            break;
        }
        apr_sleep(TN_STEP_MS * 1000);
    }
    fprintf(stderr, "\n  dkv-node did not start (%s); its output:\n%s\n",
            node->running ? "no port file after 15 s" : "it exited",
            tn_slurp(node->out_file, pool));
    (void)dkv_test_node_stop(node, SIGKILL, 5000);
    return APR_EGENERAL;
}

apr_status_t
dkv_test_node_start_in(dkv_test_node_t **nodep, const char *const *prefix,
                       const char *store, const char *data_dir,
                       const char *const *args, apr_pool_t *pool)
{
    dkv_test_node_t *node = apr_pcalloc(pool, sizeof *node);
    apr_status_t rv;

    node->pool = pool;
    node->store = apr_pstrdup(pool, store);
    node->dir = dkv_test_tempdir(pool);
    node->data_dir = data_dir != NULL ? apr_pstrdup(pool, data_dir)
                     : apr_pstrcat(pool, node->dir, "/data", NULL);
    node->log_file = apr_pstrcat(pool, node->dir, "/node.log", NULL);
    node->out_file = apr_pstrcat(pool, node->dir, "/node.out", NULL);
    node->port_file = apr_pstrcat(pool, node->dir, "/port", NULL);
    node->args = args;
    /* Registered after the directory's cleanup: runs before it. */
    apr_pool_cleanup_register(pool, node, tn_cleanup,
                              apr_pool_cleanup_null);
    *nodep = node;
    rv = tn_spawn(node, prefix);
    return rv;
}

apr_status_t
dkv_test_node_start(dkv_test_node_t **node, const char *store,
                    const char *data_dir, const char *const *args,
                    apr_pool_t *pool)
{
    return dkv_test_node_start_in(node, NULL, store, data_dir, args, pool);
}

apr_status_t
dkv_test_node_restart(dkv_test_node_t *node)
{
    if (node->running) {
        (void)dkv_test_node_stop(node, SIGKILL, 5000);
    }
    node->port = 0;
    node->address = NULL;
    return tn_spawn(node, NULL);
}

long
dkv_test_node_rss_kb(const dkv_test_node_t *node)
{
    apr_pool_t *p;
    const char *s, *line;
    long kb = -1;

    apr_pool_create(&p, node->pool);
    s = tn_slurp(apr_psprintf(p, "/proc/%ld/status", (long)node->proc.pid),
                 p);
    line = strstr(s, "RssAnon:");
    if (line != NULL) {
        kb = strtol(line + 8, NULL, 10);
    }
    else if ((line = strstr(s, "VmRSS:")) != NULL) {
        kb = strtol(line + 6, NULL, 10);
    }
    apr_pool_destroy(p);
    return kb;
}

const char *
dkv_test_node_log(const dkv_test_node_t *node, apr_pool_t *pool)
{
    return tn_slurp(node->log_file, pool);
}

dkv_status_t
dkv_test_node_open(dkv_client_t **client, const dkv_test_node_t *node,
                   const char *token)
{
    dkv_open_opts_t o;

    memset(&o, 0, sizeof o);
    o.token = token;
    o.request_timeout_ms = 10000;
    return dkv_open(client, node->address, &o, NULL);
}

/* ========================================================= remote mode */

static apr_pool_t *rm_pool;
static const void *rm_owner;
static unsigned skipped;

dkv_status_t
dkv_test_remote_open(dkv_client_t **client, const dkv_open_opts_t *opts)
{
    const void *cur = CU_get_current_test();
    const char **args;
    dkv_test_node_t *node;
    dkv_open_opts_t o;
    size_t n = 0;

    *client = NULL;
    if (rm_pool == NULL) {
        apr_pool_create(&rm_pool, dkv_test_root_pool());
    }
    if (cur != rm_owner) {
        apr_pool_clear(rm_pool);        /* the last test's nodes */
        rm_owner = cur;
    }
    memset(&o, 0, sizeof o);
    if (opts != NULL) {
        o = *opts;
    }
    args = apr_pcalloc(rm_pool, 8 * sizeof *args);
    if (o.max_value != 0) {
        args[n++] = "--max-value";
        args[n++] = apr_psprintf(rm_pool, "%lu", (unsigned long)o.max_value);
    }
    if (o.map_size != 0) {
        args[n++] = "--map-size";
        args[n++] = apr_psprintf(rm_pool, "%lu", (unsigned long)o.map_size);
    }
    if (dkv_test_node_start(&node, "ApiTest", NULL, args, rm_pool)
        != APR_SUCCESS) {
        return DKV_EUNAVAILABLE;
    }
    /* The node's settings stand for the store options; only the client's
     * own options remain. */
    o.max_value = 0;
    o.map_size = 0;
    o.clock = NULL;
    o.clock_baton = NULL;
    if (o.request_timeout_ms == 0) {
        o.request_timeout_ms = 10000;
    }
    return dkv_open(client, node->address, &o, NULL);
}

void
dkv_test_skip(const char *test, const char *reason)
{
    skipped++;
    printf("SKIPPED in remote mode (%s: %s) ... ", test, reason);
}

unsigned
dkv_test_skipped(void)
{
    return skipped;
}
