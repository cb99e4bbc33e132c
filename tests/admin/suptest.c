/*
 * suptest.c -- dkv-manager's supervisor, node control and metrics
 * (src/manager/supervise.c, nodectl.c, metrics.c) against the real
 * dkv-node of the build tree, on loopback ports chosen at run time.
 *
 * Checks: start (Running, the port answers, pid file), "Already
 * running", MEMBERS, restart after kill -9 (new pid), metrics (totals and
 * rates; skipped while the node answers STATS with ENOTIMPL), graceful
 * stop (process gone), SIGKILL after the stop timeout, force stop, a port
 * held by this process (PortInUse naming port and pid), a node that
 * cannot start (StartFailed with its log), a crash loop (Failed after the
 * limit), and adoption by a new supervisor (keep_nodes).  Linux only.
 *
 * Finds dkv-node as $DKV_NODE or $top_builddir/dkv-node.  Exit 0 when
 * every check passed, 1 otherwise, 77 when dkv-node is not built.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "manager/manager.h"
#include "common/alloc.h"
#include "common/proto.h"
#include "common/status.h"
#include "platform/platform.h"

#define SECRET "000102030405060708090a0b0c0d0e0f" \
               "101112131415161718191a1b1c1d1e1f\n"

static int checks, failed;

#define CHECK(cond, ...) check_((cond), #cond, __LINE__, __VA_ARGS__)

static void check_(int ok, const char *expr, int line, const char *fmt,
                   ...) DKV_PRINTF(4, 5);

static void
check_(int ok, const char *expr, int line, const char *fmt, ...)
{
    va_list ap;

    checks++;
    if (ok) {
        return;
    }
    failed++;
    fprintf(stderr, "suptest:%d: FAILED %s: ", line, expr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* A free loopback TCP port (bound, closed). */
static uint16_t
free_port(apr_pool_t *pool)
{
    apr_sockaddr_t *sa;
    apr_socket_t *s;
    uint16_t port = 0;

    if (apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0, pool)
        == APR_SUCCESS
        && apr_socket_create(&s, APR_INET, SOCK_STREAM, APR_PROTO_TCP, pool)
        == APR_SUCCESS) {
        if (apr_socket_bind(s, sa) == APR_SUCCESS
            && apr_socket_addr_get(&sa, APR_LOCAL, s) == APR_SUCCESS) {
            port = sa->port;
        }
        apr_socket_close(s);
    }
    return port;
}

/* 1 when 127.0.0.1:PORT accepts a connection. */
static int
accepts(uint16_t port, apr_pool_t *pool)
{
    apr_sockaddr_t *sa;
    apr_socket_t *s;
    int ok = 0;

    if (apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, port, 0, pool)
        == APR_SUCCESS
        && apr_socket_create(&s, APR_INET, SOCK_STREAM, APR_PROTO_TCP, pool)
        == APR_SUCCESS) {
        ok = dkv_plat_connect(s, sa, apr_time_from_sec(1)) == APR_SUCCESS;
        apr_socket_close(s);
    }
    return ok;
}

/* Sends SIG to PID, never to a process group. */
static int
kill_pid(int64_t pid, int sig)
{
    return pid > 0 ? kill((pid_t)pid, sig) : -1;
}

static int
pid_gone(int64_t pid)
{
    return pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Waits up to SEC seconds for the node to be in STATE (and, when
 * NOT_PID is nonzero, with another pid).  Returns its last status. */
static mgr_node_status_t
wait_state(mgr_sup_t *sup, const char *inst, mgr_state_t state,
           int64_t not_pid, int sec)
{
    mgr_node_status_t st;
    int i;

    for (i = 0; i < sec * 20; i++) {
        mgr_sup_status(&st, sup, "suptest", inst);
        if (st.state == state && (not_pid == 0 || st.pid != not_pid)) {
            break;
        }
        apr_sleep(apr_time_from_msec(50));
    }
    return st;
}

/* A start run on a thread of its own, to be quiesced. */
typedef struct quiesce {
    mgr_sup_t *sup;
    mgr_node_spec_t spec;
    dkv_status_t rv;
    char msg[512];
} quiesce_t;

static void *APR_THREAD_FUNC
quiesce_start(apr_thread_t *t, void *baton)
{
    quiesce_t *q = baton;
    const char *code = NULL, *msg = NULL;
    apr_pool_t *p;

    (void)t;
    apr_pool_create(&p, NULL);
    q->rv = mgr_sup_start(q->sup, &q->spec, 30, &code, &msg, p);
    apr_cpystrn(q->msg, msg ? msg : "", sizeof(q->msg));
    apr_pool_destroy(p);
    return NULL;
}

static mgr_node_spec_t
make_spec(const char *root, const char *inst, uint32_t id, apr_pool_t *pool)
{
    mgr_node_spec_t s;

    memset(&s, 0, sizeof(s));
    s.store = "suptest";
    s.instance = inst;
    s.node_id = id;
    s.dir = apr_pstrcat(pool, root, "/stores/suptest/", inst, NULL);
    s.bind = "127.0.0.1";
    s.client_port = free_port(pool);
    s.cluster_port = free_port(pool);
    s.heartbeat_ms = 50;
    s.election_ms = 300;
    return s;
}

static int
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        return -1;
    }
    fputs(text, f);
    return fclose(f);
}

int
main(int argc, const char *const *argv)
{
    apr_pool_t *pool;
    mgr_config_t cfg;
    mgr_sup_t *sup = NULL;
    mgr_metrics_t *met = NULL;
    mgr_node_spec_t a, b, c, d;
    mgr_node_status_t st;
    mgr_members_t mem;
    const char *code, *msg, *node_bin, *bdir, *secret;
    char *root;
    dkv_status_t rv;
    int64_t pid, pid2;
    apr_array_header_t *stats = NULL;
    size_t i;
    int found, k;

    (void)argc;
    (void)argv;
    alarm(240);                    /* a hung test must not hang make */
    if (apr_initialize() != APR_SUCCESS
        || apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        return 1;
    }
    node_bin = getenv("DKV_NODE");
    if (node_bin == NULL || node_bin[0] == '\0') {
        bdir = getenv("top_builddir");
        node_bin = apr_pstrcat(pool, bdir ? bdir : ".", "/dkv-node", NULL);
    }
    if (access(node_bin, X_OK) != 0) {
        printf("suptest: %s not found (set DKV_NODE); skipped\n", node_bin);
        return 77;
    }
    if (dkv_plat_mkdtemp(&root, "dkv-suptest-", pool) != DKV_OK) {
        fprintf(stderr, "suptest: no temporary directory\n");
        return 1;
    }

    memset(&cfg, 0, sizeof(cfg));
    cfg.data_dir = root;
    cfg.node_bin = node_bin;
    cfg.stop_timeout_sec = 1;
    cfg.restart_delay_ms = 100;
    cfg.restart_max_ms = 400;
    cfg.crash_limit = 5;
    cfg.crash_window_sec = 60;
    rv = mgr_sup_create(&sup, &cfg, pool);
    CHECK(rv == DKV_OK, "mgr_sup_create: %s", dkv_last_error());
    if (rv != DKV_OK) {
        return 1;
    }
    CHECK(strcmp(mgr_state_name(MGR_RESTARTING), "Restarting") == 0, "%s",
          mgr_state_name(MGR_RESTARTING));

    /* ----- start: Running, the port answers, the pid file is there */
    a = make_spec(root, "node-1", 1, pool);
    a.peers = apr_psprintf(pool, "1=127.0.0.1:%u:%u",
                           (unsigned)a.cluster_port,
                           (unsigned)a.client_port);
    a.secret_file = apr_pstrcat(pool, root, "/secret-1", NULL);
    CHECK(write_file(a.secret_file, SECRET) == 0, "secret");
    rv = mgr_sup_start(sup, &a, 20, &code, &msg, pool);
    CHECK(rv == DKV_OK && strcmp(msg, "Started") == 0, "start: %s %s",
          code ? code : "", msg ? msg : "");
    mgr_sup_status(&st, sup, "suptest", "node-1");
    CHECK(st.state == MGR_RUNNING && st.pid > 0, "state %s pid %lld",
          mgr_state_name(st.state), (long long)st.pid);
    CHECK(accepts(a.client_port, pool), "port %u", a.client_port);
    CHECK(access(apr_pstrcat(pool, a.dir, "/node.pid", NULL), R_OK) == 0,
          "no pid file in %s", a.dir);
    CHECK(strstr(st.log_file, "node.log") != NULL, "log %s", st.log_file);
    pid = st.pid;
    rv = mgr_sup_start(sup, &a, 20, &code, &msg, pool);
    CHECK(rv == DKV_OK && strcmp(msg, "Already running") == 0, "again: %s",
          msg ? msg : "");
    CHECK(mgr_sup_running(sup, pool)->nelts == 1, "running count");

    /* ----- MEMBERS over the admin connection (the group of one forms
     * within a few election timeouts) */
    found = 0;
    for (k = 0; k < 50 && !found; k++) {
        rv = mgr_node_members(&mem, &a, 5000, pool);
        for (i = 0; rv == DKV_OK && i < mem.n; i++) {
            found |= mem.ids[i] == 1;
        }
        if (rv != DKV_OK || !found) {
            apr_sleep(apr_time_from_msec(100));
        }
    }
    CHECK(rv == DKV_OK, "members: %s", dkv_last_error());
    CHECK(rv != DKV_OK || mem.leader == 1, "leader %u", mem.leader);
    if (rv == DKV_OK && mem.n == 0) {
        printf("suptest: note: the node lists no members for its group "
               "of one (leader %u)\n", mem.leader);
        found = 1;
    }
    CHECK(rv != DKV_OK || found, "node 1 not among %zu members", mem.n);

    /* ----- kill -9: restarted with a new pid */
    CHECK(kill_pid(pid, SIGKILL) == 0, "kill %lld", (long long)pid);
    st = wait_state(sup, "node-1", MGR_RUNNING, pid, 20);
    CHECK(st.state == MGR_RUNNING && st.pid != pid && st.pid > 0,
          "after kill: %s pid %lld (was %lld) %s", mgr_state_name(st.state),
          (long long)st.pid, (long long)pid, st.last_error);
    CHECK(st.restarts == 1, "restarts %u", st.restarts);
    CHECK(strstr(st.last_error, "signal 9") != NULL, "last error '%s'",
          st.last_error);
    CHECK(accepts(a.client_port, pool), "port after restart");
    pid = st.pid;

    /* ----- metrics: two samples, then totals and rates */
    rv = mgr_metrics_create(&met, sup, pool);
    CHECK(rv == DKV_OK, "metrics: %s", dkv_last_error());
    rv = mgr_node_stats(&stats, &a, 5000, pool);
    if (rv == DKV_ENOTIMPL) {
        printf("suptest: note: the node answers STATS with ENOTIMPL; "
               "metrics checks skipped\n");
    }
    else {
        json_t *nodes, *n0, *rates;
        apr_array_header_t *lines = apr_array_make(pool, 64,
                                                   sizeof(const char *));
        int has_line = 0, has_type = 0, has_inf = 0, has_ms = 0;

        CHECK(rv == DKV_OK && stats->nelts > 0, "stats: %s",
              dkv_last_error());
        for (k = 0; k < 12; k++) {
            (void)mgr_node_members(&mem, &a, 2000, pool);   /* requests */
            apr_sleep(apr_time_from_msec(250));
        }
        nodes = mgr_metrics_json(met, "suptest", 5);
        if (getenv("SUPTEST_VERBOSE") != NULL) {
            char *text = json_dumps(nodes, JSON_INDENT(1));

            printf("%s\n", text ? text : "");
            free(text);
        }
        n0 = json_array_get(nodes, 0);
        CHECK(json_array_size(nodes) == 1, "%zu nodes",
              json_array_size(nodes));
        rates = json_object_get(n0, "rates");
        CHECK(json_is_object(json_object_get(n0, "totals"))
              && json_object_size(json_object_get(n0, "totals")) > 0,
              "no totals");
        CHECK(json_is_object(rates)
              && json_is_real(json_object_get(rates, "requests_total")),
              "no rates");
        CHECK(json_is_real(json_object_get(rates, "requests_total"))
              && json_real_value(json_object_get(rates, "requests_total"))
              > 0, "requests rate not positive");
        CHECK(json_object_get(rates, "items") == NULL, "gauge in rates");
        CHECK(json_is_string(json_object_get(n0, "state"))
              && strcmp(json_string_value(json_object_get(n0, "state")),
                        "Running") == 0, "state");
        json_decref(nodes);
        nodes = mgr_metrics_json(met, "otherstore", 5);
        CHECK(json_array_size(nodes) == 0, "store filter");
        json_decref(nodes);
        mgr_metrics_prometheus(met, lines, pool);
        for (k = 0; k < lines->nelts; k++) {
            const char *l = DKV_ARRAY_IDX(lines, k, const char *);

            if (getenv("SUPTEST_VERBOSE") != NULL) {
                printf("%s\n", l);
            }

            has_line |= strncmp(l, "dkv_node_requests_total{store=\""
                                "suptest\",instance=\"node-1\"} ", 52) == 0;
            has_type |= strcmp(l, "# TYPE dkv_node_requests_total "
                               "counter") == 0;
            has_inf |= strstr(l, "_bucket{") != NULL
                       && strstr(l, "le=\"+Inf\"") != NULL;
            has_ms |= strstr(l, "_bucket{") != NULL
                      && strstr(l, ",le=\"0.001\"} ") != NULL;
        }
        CHECK(has_line && has_type, "prometheus lines (%d)", lines->nelts);
        CHECK(has_inf, "no +Inf bucket");
        CHECK(has_ms, "no le=\"0.001\" bucket");
    }

    /* ----- graceful stop */
    rv = mgr_sup_stop(sup, "suptest", "node-1", 0, &msg, pool);
    CHECK(rv == DKV_OK && strcmp(msg, "Stopped") == 0, "stop: %s", msg);
    mgr_sup_status(&st, sup, "suptest", "node-1");
    CHECK(st.state == MGR_STOPPED && st.pid == 0, "state %s",
          mgr_state_name(st.state));
    CHECK(pid_gone(pid), "pid %lld still there", (long long)pid);
    CHECK(mgr_sup_running(sup, pool)->nelts == 0, "running after stop");
    rv = mgr_sup_stop(sup, "suptest", "node-1", 0, &msg, pool);
    CHECK(rv == DKV_OK && strcmp(msg, "Already stopped") == 0, "%s", msg);

    /* ----- a node that ignores SIGTERM (stopped): killed after 1 s */
    rv = mgr_sup_start(sup, &a, 20, &code, &msg, pool);
    CHECK(rv == DKV_OK, "restart: %s", msg ? msg : "");
    mgr_sup_status(&st, sup, "suptest", "node-1");
    pid = st.pid;
    kill_pid(pid, SIGSTOP);
    rv = mgr_sup_stop(sup, "suptest", "node-1", 0, &msg, pool);
    CHECK(rv == DKV_OK && strcmp(msg, "Killed after 1 s") == 0, "stop: %s",
          msg);
    CHECK(pid_gone(pid), "pid %lld still there", (long long)pid);

    /* ----- force stop */
    rv = mgr_sup_start(sup, &a, 20, &code, &msg, pool);
    CHECK(rv == DKV_OK, "restart: %s", msg ? msg : "");
    mgr_sup_status(&st, sup, "suptest", "node-1");
    pid = st.pid;
    rv = mgr_sup_stop(sup, "suptest", "node-1", 1, &msg, pool);
    CHECK(rv == DKV_OK && strcmp(msg, "Stopped") == 0, "force: %s", msg);
    CHECK(pid_gone(pid), "pid %lld still there", (long long)pid);
    mgr_sup_status(&st, sup, "suptest", "node-1");
    CHECK(st.restarts == 1 && st.state == MGR_STOPPED, "%u %s",
          st.restarts, mgr_state_name(st.state));

    /* ----- a port held by us: PortInUse naming port and pid */
    {
        apr_sockaddr_t *sa;
        apr_socket_t *s;
        char want[64];

        b = make_spec(root, "node-2", 2, pool);
        apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, b.client_port, 0,
                              pool);
        CHECK(apr_socket_create(&s, APR_INET, SOCK_STREAM, APR_PROTO_TCP,
                                pool) == APR_SUCCESS
              && apr_socket_bind(s, sa) == APR_SUCCESS
              && apr_socket_listen(s, 4) == APR_SUCCESS, "listen");
        rv = mgr_sup_start(sup, &b, 20, &code, &msg, pool);
        snprintf(want, sizeof(want), "client port %u is in use",
                 (unsigned)b.client_port);
        CHECK(rv == DKV_ECONFLICT && code != NULL
              && strcmp(code, "PortInUse") == 0, "held port: %s %s",
              code ? code : "", msg ? msg : "");
        CHECK(msg != NULL && strstr(msg, want) != NULL, "message '%s'",
              msg ? msg : "");
        snprintf(want, sizeof(want), "pid %ld (", (long)getpid());
        CHECK(msg != NULL && strstr(msg, want) != NULL, "no '%s' in '%s'",
              want, msg ? msg : "");
        rv = mgr_port_check("127.0.0.1", b.client_port, "cluster", &msg,
                            pool);
        CHECK(rv == DKV_ECONFLICT && strncmp(msg, "cluster port", 12) == 0,
              "%s", msg ? msg : "");
        apr_socket_close(s);
        rv = mgr_port_check("127.0.0.1", b.client_port, "client", &msg,
                            pool);
        CHECK(rv == DKV_OK, "free port: %s", msg ? msg : "");
        mgr_sup_status(&st, sup, "suptest", "node-2");
        CHECK(st.pid == 0 && st.state == MGR_STOPPED, "%s",
              mgr_state_name(st.state));
    }

    /* ----- a node that cannot start: StartFailed with its log */
    secret = apr_pstrcat(pool, root, "/secret", NULL);
    d = make_spec(root, "node-4", 4, pool);
    d.peers = apr_psprintf(pool, "4=127.0.0.1:%u:%u",
                           (unsigned)d.cluster_port,
                           (unsigned)d.client_port);
    d.secret_file = apr_pstrcat(pool, root, "/no-such-secret", NULL);
    rv = mgr_sup_start(sup, &d, 20, &code, &msg, pool);
    CHECK(rv == DKV_EUNAVAILABLE && code != NULL
          && strcmp(code, "StartFailed") == 0, "bad node: %s %s",
          code ? code : "", msg ? msg : "");
    CHECK(msg != NULL && strstr(msg, "exited with status 2") != NULL
          && strstr(msg, "no-such-secret") != NULL, "message '%s'",
          msg ? msg : "");
    mgr_sup_status(&st, sup, "suptest", "node-4");
    CHECK(st.state == MGR_FAILED && st.pid == 0, "%s",
          mgr_state_name(st.state));

    /* ----- crash loop: starts, then its secret goes away: Failed */
    c = make_spec(root, "node-3", 3, pool);
    c.peers = apr_psprintf(pool, "3=127.0.0.1:%u:%u",
                           (unsigned)c.cluster_port,
                           (unsigned)c.client_port);
    c.secret_file = secret;
    CHECK(write_file(secret, SECRET) == 0, "secret");
    rv = mgr_sup_start(sup, &c, 20, &code, &msg, pool);
    CHECK(rv == DKV_OK, "crash node: %s", msg ? msg : "");
    mgr_sup_status(&st, sup, "suptest", "node-3");
    pid = st.pid;
    remove(secret);
    kill_pid(pid, SIGKILL);
    st = wait_state(sup, "node-3", MGR_FAILED, 0, 30);
    CHECK(st.state == MGR_FAILED && st.pid == 0, "crash loop: %s %u",
          mgr_state_name(st.state), st.restarts);
    CHECK(st.restarts == 4, "restarts %u", st.restarts);
    CHECK(strstr(st.last_error, "exited 5 times") != NULL
          && strstr(st.last_error, "status 2") != NULL, "last error '%s'",
          st.last_error);
    apr_sleep(apr_time_from_msec(600));
    mgr_sup_status(&st, sup, "suptest", "node-3");
    CHECK(st.state == MGR_FAILED && st.restarts == 4, "no more restarts");

    /* ----- adoption: a new supervisor finds the node one with
     * keep_nodes left running */
    mgr_metrics_destroy(met);
    met = NULL;
    mgr_sup_destroy(sup);
    cfg.keep_nodes = 1;
    rv = mgr_sup_create(&sup, &cfg, pool);
    CHECK(rv == DKV_OK, "mgr_sup_create: %s", dkv_last_error());
    rv = mgr_sup_start(sup, &a, 20, &code, &msg, pool);
    CHECK(rv == DKV_OK && strcmp(msg, "Started") == 0, "start: %s",
          msg ? msg : "");
    mgr_sup_status(&st, sup, "suptest", "node-1");
    pid = st.pid;
    mgr_sup_destroy(sup);
    sup = NULL;
    CHECK(!pid_gone(pid) && accepts(a.client_port, pool), "kept node");
    cfg.keep_nodes = 0;
    rv = mgr_sup_create(&sup, &cfg, pool);
    CHECK(rv == DKV_OK, "mgr_sup_create: %s", dkv_last_error());
    rv = mgr_sup_start(sup, &a, 20, &code, &msg, pool);
    CHECK(rv == DKV_OK && strcmp(msg, "Adopted") == 0, "adopt: %s",
          msg ? msg : "");
    mgr_sup_status(&st, sup, "suptest", "node-1");
    CHECK(st.state == MGR_RUNNING && st.pid == pid, "adopted %s %lld",
          mgr_state_name(st.state), (long long)st.pid);
    rv = mgr_node_members(&mem, &a, 5000, pool);
    CHECK(rv == DKV_OK, "members of adopted: %s", dkv_last_error());
    /* It dies: the supervisor notices and restarts it as its child. */
    kill_pid(pid, SIGKILL);
    st = wait_state(sup, "node-1", MGR_RUNNING, pid, 20);
    CHECK(st.state == MGR_RUNNING && st.pid != pid, "adopted restart %s",
          mgr_state_name(st.state));
    pid2 = st.pid;

    /* ----- destroy stops every node */
    mgr_sup_destroy(sup);
    CHECK(pid_gone(pid2), "pid %lld left running", (long long)pid2);
    CHECK(!accepts(a.client_port, pool), "port still open");

    /* ----- a stopping manager does not wait out a start: the node
     * program is a script that never listens, the start's timeout is
     * 30 s, and mgr_sup_quiesce ends the wait at once. */
    {
        const char *fake = apr_pstrcat(pool, root, "/never-listens", NULL);
        quiesce_t q;
        apr_thread_t *t;
        apr_status_t trv;
        apr_time_t t0;

        CHECK(write_file(fake, "#!/bin/sh\nexec sleep 60\n") == 0
              && chmod(fake, 0700) == 0, "fake node %s", fake);
        cfg.node_bin = fake;
        rv = mgr_sup_create(&sup, &cfg, pool);
        CHECK(rv == DKV_OK, "mgr_sup_create: %s", dkv_last_error());
        memset(&q, 0, sizeof(q));
        q.sup = sup;
        q.spec = make_spec(root, "node-q", 9, pool);
        t0 = apr_time_now();
        CHECK(apr_thread_create(&t, NULL, quiesce_start, &q, pool)
              == APR_SUCCESS, "thread");
        apr_sleep(500000);
        mgr_sup_quiesce(sup);
        apr_thread_join(&trv, t);
        CHECK(apr_time_now() - t0 < apr_time_from_sec(5),
              "start waited %lld ms after quiesce",
              (long long)apr_time_as_msec(apr_time_now() - t0));
        CHECK(q.rv == DKV_EUNAVAILABLE
              && strstr(q.msg, "manager is stopping") != NULL,
              "quiesced start: %d '%s'", q.rv, q.msg);
        mgr_sup_status(&st, sup, "suptest", "node-q");
        pid = st.pid;
        mgr_sup_destroy(sup);
        CHECK(pid == 0 || pid_gone(pid), "fake node %lld left running",
              (long long)pid);
    }

    dkv_plat_rmtree(root, pool);
    printf("suptest: %d checks, %d failed\n", checks, failed);
    apr_pool_destroy(pool);
    apr_terminate();
    return failed ? 1 : 0;
}
