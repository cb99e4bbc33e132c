/*
 * supervise.c -- the dkv-node processes of dkv-manager: start (or adopt
 * after a manager restart), stop, restart after a crash, and the test
 * bind that tells whether a port is free.
 *
 * One node per store/instance, kept in a hash under one mutex.  Nodes we
 * started are APR children (apr_proc_create); only the supervisor thread
 * reaps them (apr_proc_wait APR_NOWAIT every 100 ms), so start and stop
 * calls wait on a condition variable for what it sees.  Nodes adopted
 * from a previous manager (DIR/node.pid names a live dkv-node of the
 * instance) are watched with dkv_plat_proc_alive and stopped by pid.
 *
 * A node that exits without being asked is restarted after a delay
 * (1 s, doubled per quick exit, at most 30 s); after 5 exits each within
 * 60 s of their start it is marked Failed (docs/admin-api.md).  The
 * mutex is never held while waiting for a process or a port.
 */
#include <stdio.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_hash.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "manager/manager.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/status.h"
#include "platform/platform.h"
#include "platform/proc.h"

#define TICK_USEC 100000           /* the supervisor's period */
#define LOG_TAIL_LINES 10

typedef struct sup_node {
    char store[MGR_NAME_MAX + 1];
    char instance[MGR_NAME_MAX + 1];
    apr_pool_t *spec_pool;         /* the spec's strings */
    mgr_node_spec_t spec;
    apr_pool_t *proc_pool;         /* the running process's attributes */
    apr_proc_t proc;               /* when OWNED */
    int owned;                     /* 1: our child; 0: adopted */
    int64_t pid;                   /* 0: no process */
    mgr_state_t state;
    int busy;                      /* a start or stop call works on it */
    int in_start;                  /* an exit now fails that start */
    int stop_requested;
    unsigned restarts;
    unsigned quick_exits;          /* consecutive exits soon after start */
    int64_t started_ms;
    int64_t restart_at_ms;         /* RESTARTING: when */
    char exit_text[128];           /* how the last process ended */
    char last_error[512];
    char log_file[1024];
    char pid_file[1024];
} sup_node_t;

struct mgr_sup {
    apr_pool_t *pool;              /* own allocator; under LOCK */
    apr_thread_mutex_t *lock;
    apr_thread_cond_t *cond;       /* broadcast when a node changes */
    apr_thread_t *thread;
    int quit;
    int quiescing;                 /* the manager stops: no waiting */
    apr_hash_t *nodes;             /* "store/instance" -> sup_node_t */
    const char *node_bin;
    int stop_timeout_sec;
    int keep_nodes;
    int restart_delay_ms;
    int restart_max_ms;
    unsigned crash_limit;
    int64_t crash_window_ms;
};

/* See manager.h. */
const char *
mgr_state_name(mgr_state_t s)
{
    switch (s) {
    case MGR_STOPPED: return "Stopped";
    case MGR_STARTING: return "Starting";
    case MGR_RUNNING: return "Running";
    case MGR_STOPPING: return "Stopping";
    case MGR_RESTARTING: return "Restarting";
    case MGR_FAILED: return "Failed";
    }
    return "Unknown";
}

static int64_t
now_ms(void)
{
    return (int64_t)(apr_time_now() / 1000);
}

/* 1 when BIND:PORT accepts a TCP connection within TIMEOUT. */
static int
port_accepts(const char *bind, uint16_t port, apr_interval_time_t timeout,
             apr_pool_t *pool)
{
    apr_pool_t *p;
    apr_sockaddr_t *sa;
    apr_socket_t *sock;
    int ok = 0;

    if (apr_pool_create(&p, pool) != APR_SUCCESS) {
        return 0;
    }
    if (apr_sockaddr_info_get(&sa, mgr_local_addr(bind), APR_UNSPEC, port, 0,
                              p) == APR_SUCCESS
        && apr_socket_create(&sock, sa->family, SOCK_STREAM, APR_PROTO_TCP,
                             p) == APR_SUCCESS) {
        ok = dkv_plat_connect(sock, sa, timeout) == APR_SUCCESS;
        apr_socket_close(sock);
    }
    apr_pool_destroy(p);
    return ok;
}

/* The last N non-empty lines of the file PATH, joined by newlines (""
 * when it cannot be read). */
static const char *
log_tail(const char *path, int n, apr_pool_t *pool)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_off_t off = 0;
    apr_size_t len = 4096;
    char *buf, *end, *start;
    int lines = 0;

    if (apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT,
                      pool) != APR_SUCCESS) {
        return "";
    }
    if (apr_file_info_get(&fi, APR_FINFO_SIZE, f) == APR_SUCCESS
        && fi.size > (apr_off_t)len) {
        off = fi.size - (apr_off_t)len;
    }
    buf = apr_palloc(pool, len + 1);
    if (apr_file_seek(f, APR_SET, &off) != APR_SUCCESS
        || apr_file_read_full(f, buf, len, &len) != APR_SUCCESS) {
        if (len == 0) {
            apr_file_close(f);
            return "";
        }
    }
    apr_file_close(f);
    buf[len] = '\0';
    end = buf + len;
    while (end > buf && (end[-1] == '\n' || end[-1] == '\r')) {
        *--end = '\0';
    }
    start = end;
    while (start > buf && lines < n) {
        start--;
        if (*start == '\n') {
            if (start + 1 < end && start[1] != '\n' && start[1] != '\r') {
                lines++;
            }
            if (lines == n) {
                start++;
                break;
            }
        }
    }
    return start;
}

/* The last line of the file PATH ("" when none). */
static const char *
log_last_line(const char *path, apr_pool_t *pool)
{
    return log_tail(path, 1, pool);
}

/* Copies SRC into *DST with every string in POOL. */
static void
spec_copy(mgr_node_spec_t *dst, const mgr_node_spec_t *src,
          apr_pool_t *pool)
{
    *dst = *src;
#define DUP(f) dst->f = src->f ? apr_pstrdup(pool, src->f) : NULL
    DUP(store);
    DUP(instance);
    DUP(dir);
    DUP(bind);
    DUP(peers);
    DUP(secret_file);
    DUP(token_file);
    DUP(admin_token);
#undef DUP
}

/* The node of STORE/INSTANCE, NULL when unknown (LOCK held). */
static sup_node_t *
find_node(mgr_sup_t *sup, const char *store, const char *instance)
{
    char key[2 * MGR_NAME_MAX + 2];

    apr_snprintf(key, sizeof(key), "%s/%s", store, instance);
    return apr_hash_get(sup->nodes, key, APR_HASH_KEY_STRING);
}

/* The node of STORE/INSTANCE, created Stopped when unknown (LOCK held). */
static sup_node_t *
get_node(mgr_sup_t *sup, const char *store, const char *instance)
{
    sup_node_t *n = find_node(sup, store, instance);
    const char *key;

    if (n != NULL) {
        return n;
    }
    n = apr_pcalloc(sup->pool, sizeof(*n));
    apr_cpystrn(n->store, store, sizeof(n->store));
    apr_cpystrn(n->instance, instance, sizeof(n->instance));
    n->state = MGR_STOPPED;
    key = apr_psprintf(sup->pool, "%s/%s", store, instance);
    apr_hash_set(sup->nodes, key, APR_HASH_KEY_STRING, n);
    return n;
}

/* Makes PATH absolute (relative to the current directory), in POOL. */
static const char *
abs_path(const char *path, apr_pool_t *pool)
{
    char *out;

    if (path == NULL
        || apr_filepath_merge(&out, NULL, path, APR_FILEPATH_NATIVE,
                              pool) != APR_SUCCESS) {
        return path;
    }
    return out;
}

/* Writes DIR/node.pid: "PID STARTMS\n". */
static void
write_pid_file(const sup_node_t *n, apr_pool_t *pool)
{
    apr_file_t *f;
    const char *text = apr_psprintf(pool, "%" APR_INT64_T_FMT " %"
                                    APR_INT64_T_FMT "\n",
                                    (apr_int64_t)n->pid,
                                    (apr_int64_t)n->started_ms);

    if (apr_file_open(&f, n->pid_file, APR_FOPEN_WRITE | APR_FOPEN_CREATE
                      | APR_FOPEN_TRUNCATE, APR_FPROT_OS_DEFAULT,
                      pool) == APR_SUCCESS) {
        apr_size_t len = strlen(text);

        (void)apr_file_write_full(f, text, len, NULL);
        apr_file_close(f);
    }
}

/* Reads DIR/node.pid: DKV_OK with *PID and *STARTED, or not. */
static dkv_status_t
read_pid_file(int64_t *pid, int64_t *started, const char *path,
              apr_pool_t *pool)
{
    apr_file_t *f;
    char buf[64];
    apr_size_t len = sizeof(buf) - 1;
    long long p = 0, s = 0;

    if (apr_file_open(&f, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT,
                      pool) != APR_SUCCESS) {
        return DKV_ENOTFOUND;
    }
    if (apr_file_read_full(f, buf, len, &len) != APR_SUCCESS && len == 0) {
        apr_file_close(f);
        return DKV_ENOTFOUND;
    }
    apr_file_close(f);
    buf[len] = '\0';
    if (sscanf(buf, "%lld %lld", &p, &s) < 1 || p <= 0) {
        return DKV_EINVAL;
    }
    *pid = p;
    *started = s;
    return DKV_OK;
}

/* Runs the node of N->spec (LOCK held): the process, its pid file.
 * Returns DKV_OK, or the failure with *ERR set (in POOL). */
static dkv_status_t
launch(mgr_sup_t *sup, sup_node_t *n, const char **err, apr_pool_t *pool)
{
    const mgr_node_spec_t *s = &n->spec;
    apr_array_header_t *args;
    apr_procattr_t *attr;
    apr_file_t *logf;
    const char *dir = abs_path(s->dir, pool), *data, *bin;
    apr_status_t rv;
    char ebuf[160];

#define ARG(v) (*(const char **)(void *)apr_array_push(args) = (v))
    if (n->proc_pool != NULL) {
        apr_pool_destroy(n->proc_pool);
        n->proc_pool = NULL;
    }
    rv = apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, pool);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(pool, "cannot create directory %s: %s", dir,
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
        return rv;
    }
    apr_cpystrn(n->log_file, apr_pstrcat(pool, dir, "/node.log", NULL),
                sizeof(n->log_file));
    apr_cpystrn(n->pid_file, apr_pstrcat(pool, dir, "/node.pid", NULL),
                sizeof(n->pid_file));
    data = apr_pstrcat(pool, dir, "/data", NULL);
    bin = sup->node_bin;

    args = apr_array_make(pool, 32, sizeof(const char *));
    ARG(bin);
    ARG("--store");
    ARG(s->store);
    ARG("--instance");
    ARG(s->instance);
    ARG("--node-id");
    ARG(apr_psprintf(pool, "%u", (unsigned)(s->node_id ? s->node_id : 1)));
    ARG("--data-dir");
    ARG(data);
    ARG("--client-port");
    ARG(apr_psprintf(pool, "%u", (unsigned)s->client_port));
    if (s->cluster_port != 0) {
        ARG("--cluster-port");
        ARG(apr_psprintf(pool, "%u", (unsigned)s->cluster_port));
    }
    if (s->bind != NULL) {
        ARG("--bind");
        ARG(s->bind);
    }
    if (s->peers != NULL) {
        ARG("--peers");
        ARG(s->peers);
    }
    if (s->secret_file != NULL) {
        ARG("--secret-file");
        ARG(abs_path(s->secret_file, pool));
    }
    if (s->token_file != NULL) {
        ARG("--token-file");
        ARG(abs_path(s->token_file, pool));
    }
    ARG("--log-file");
    ARG(n->log_file);
    if (s->heartbeat_ms != 0) {
        ARG("--heartbeat-interval");
        ARG(apr_psprintf(pool, "%u", s->heartbeat_ms));
    }
    if (s->election_ms != 0) {
        ARG("--election-timeout");
        ARG(apr_psprintf(pool, "%u", s->election_ms));
    }
    if (s->join) {
        ARG("--join");
    }
    ARG(NULL);
#undef ARG

    rv = apr_pool_create(&n->proc_pool, sup->pool);
    if (rv != APR_SUCCESS) {
        n->proc_pool = NULL;
        *err = "out of memory";
        return rv;
    }
    rv = apr_file_open(&logf, n->log_file, APR_FOPEN_WRITE | APR_FOPEN_CREATE
                       | APR_FOPEN_APPEND, APR_FPROT_OS_DEFAULT,
                       n->proc_pool);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(pool, "cannot open %s: %s", n->log_file,
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
        return rv;
    }
    rv = apr_procattr_create(&attr, n->proc_pool);
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_io_set(attr, APR_NO_FILE, APR_NO_PIPE,
                                 APR_NO_PIPE);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_child_out_set(attr, logf, NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_child_err_set(attr, logf, NULL);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_cmdtype_set(attr, strchr(bin, '/') != NULL
                                      || strchr(bin, '\\') != NULL
                                      ? APR_PROGRAM_ENV : APR_PROGRAM_PATH);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_procattr_error_check_set(attr, 1);
    }
    if (rv == APR_SUCCESS) {
        memset(&n->proc, 0, sizeof(n->proc));
        rv = apr_proc_create(&n->proc, bin,
                             (const char *const *)(void *)args->elts, NULL,
                             attr, n->proc_pool);
    }
    apr_file_close(logf);
    if (rv != APR_SUCCESS) {
        *err = apr_psprintf(pool, "cannot run %s: %s", bin,
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
        return rv;
    }
    n->owned = 1;
    n->pid = n->proc.pid;
    n->started_ms = now_ms();
    n->exit_text[0] = '\0';
    write_pid_file(n, pool);
    return DKV_OK;
}

/* Sends the stop signal to N's process (LOCK held).  By pid for our own
 * children too: on Unix that is apr_proc_kill's kill(), and the pid
 * stays theirs until reap() (under LOCK) waits for them; on Windows only
 * dkv_plat_proc_signal stops gracefully (the node's stop event), and the
 * process handle APR holds keeps the pid from being reused. */
static void
signal_node(sup_node_t *n, int graceful)
{
    if (n->pid != 0) {
        (void)dkv_plat_proc_signal(n->pid, graceful);
    }
}

/* The restart delay after QUICK consecutive quick exits. */
static int64_t
restart_delay(const mgr_sup_t *sup, unsigned quick)
{
    int64_t d = sup->restart_delay_ms;
    unsigned i;

    for (i = 1; i < quick && d < sup->restart_max_ms; i++) {
        d *= 2;
    }
    return d < sup->restart_max_ms ? d : sup->restart_max_ms;
}

/* N's process ended (LOCK held): decides what happens next. */
static void
node_exited(mgr_sup_t *sup, sup_node_t *n, apr_pool_t *pool)
{
    int64_t now = now_ms();
    int quick = now - n->started_ms < sup->crash_window_ms;
    const char *last;

    n->pid = 0;
    (void)apr_file_remove(n->pid_file, pool);
    if (n->stop_requested || n->state == MGR_STOPPING) {
        n->state = MGR_STOPPED;
        n->stop_requested = 0;
        return;
    }
    last = log_last_line(n->log_file, pool);
    if (n->in_start) {
        /* The start call reports it (with the log's tail). */
        n->state = MGR_FAILED;
        apr_snprintf(n->last_error, sizeof(n->last_error), "%s: %s",
                     n->exit_text, last);
        return;
    }
    n->quick_exits = quick ? n->quick_exits + 1 : 0;
    if (n->quick_exits >= sup->crash_limit) {
        n->state = MGR_FAILED;
        apr_snprintf(n->last_error, sizeof(n->last_error), "exited %u times"
                     " within %d s of starting; last %s: %s",
                     n->quick_exits,
                     (int)(sup->crash_window_ms / 1000), n->exit_text,
                     last);
        dkv_log(DKV_LOG_ERROR, "store %s instance %s: Failed, not restarted "
                "again: %s", n->store, n->instance, n->last_error);
        return;
    }
    n->state = MGR_RESTARTING;
    n->restart_at_ms = now + restart_delay(sup, n->quick_exits);
    apr_snprintf(n->last_error, sizeof(n->last_error), "%s: %s",
                 n->exit_text, last);
    dkv_log(DKV_LOG_WARN, "store %s instance %s: dkv-node %s; restarting "
            "in %lld ms (log: %s)", n->store, n->instance,
            n->exit_text, (long long)(n->restart_at_ms - now),
            n->log_file);
}

/* Reaps N's process if it ended (LOCK held); 1 when it did. */
static int
reap(mgr_sup_t *sup, sup_node_t *n, apr_pool_t *pool)
{
    if (n->pid == 0) {
        return 0;
    }
    if (n->owned) {
        int code = 0;
        apr_exit_why_e why = APR_PROC_EXIT;
        apr_status_t rv = apr_proc_wait(&n->proc, &code, &why, APR_NOWAIT);

        /* Unix APR waits with WUNTRACED: a stopped (SIGSTOP) node is
         * reported as APR_EGENERAL, and is still there. */
        if (rv == APR_CHILD_NOTDONE
            || (rv != APR_CHILD_DONE && dkv_plat_proc_alive(n->pid))) {
            return 0;
        }
        if (rv != APR_CHILD_DONE) {
            apr_cpystrn(n->exit_text, "ended (its status is unknown)",
                        sizeof(n->exit_text));
        }
        else if (APR_PROC_CHECK_SIGNALED(why)) {
            apr_snprintf(n->exit_text, sizeof(n->exit_text), "pid %"
                         APR_INT64_T_FMT " was killed by signal %d",
                         (apr_int64_t)n->pid, code);
        }
        else {
            apr_snprintf(n->exit_text, sizeof(n->exit_text), "pid %"
                         APR_INT64_T_FMT " exited with status %d",
                         (apr_int64_t)n->pid, code);
        }
    }
    else {
        if (dkv_plat_proc_alive(n->pid)) {
            return 0;
        }
        apr_snprintf(n->exit_text, sizeof(n->exit_text), "pid %"
                     APR_INT64_T_FMT " (adopted) ended",
                     (apr_int64_t)n->pid);
    }
    node_exited(sup, n, pool);
    return 1;
}

typedef struct probe {
    sup_node_t *node;
    int64_t pid;
    const char *bind;
    uint16_t port;
} probe_t;

/* The supervisor thread: reaps, restarts, and promotes restarted nodes
 * to Running once their client port answers. */
static void *APR_THREAD_FUNC
supervisor(apr_thread_t *thread, void *data)
{
    mgr_sup_t *sup = data;
    apr_pool_t *tick;

    (void)thread;
    if (apr_pool_create(&tick, NULL) != APR_SUCCESS) {
        return NULL;
    }
    apr_thread_mutex_lock(sup->lock);
    while (!sup->quit) {
        apr_array_header_t *probes;
        apr_hash_index_t *hi;
        int changed = 0, i;

        apr_pool_clear(tick);
        probes = apr_array_make(tick, 4, sizeof(probe_t));
        for (hi = apr_hash_first(tick, sup->nodes); hi;
             hi = apr_hash_next(hi)) {
            sup_node_t *n = apr_hash_this_val(hi);

            changed |= reap(sup, n, tick);
            if (n->state == MGR_RESTARTING && !n->busy
                && now_ms() >= n->restart_at_ms) {
                const char *err = NULL;

                if (launch(sup, n, &err, tick) == DKV_OK) {
                    n->state = MGR_STARTING;
                    n->restarts++;
                    dkv_log(DKV_LOG_INFO, "store %s instance %s: restarted "
                            "(pid %lld, restart %u)",
                            n->store, n->instance, (long long)n->pid,
                            n->restarts);
                }
                else {
                    n->state = MGR_FAILED;
                    apr_cpystrn(n->last_error, err, sizeof(n->last_error));
                    dkv_log(DKV_LOG_ERROR, "store %s instance %s: Failed, "
                            "cannot restart: %s", n->store, n->instance,
                            err);
                }
                changed = 1;
            }
            if (n->state == MGR_STARTING && !n->busy && n->pid != 0) {
                probe_t *p = apr_array_push(probes);

                p->node = n;
                p->pid = n->pid;
                p->bind = apr_pstrdup(tick, n->spec.bind);
                p->port = n->spec.client_port;
            }
        }
        if (changed) {
            apr_thread_cond_broadcast(sup->cond);
        }
        if (probes->nelts > 0) {
            apr_thread_mutex_unlock(sup->lock);
            for (i = 0; i < probes->nelts; i++) {
                probe_t *p = &DKV_ARRAY_IDX(probes, i, probe_t);

                p->port = port_accepts(p->bind, p->port, 50000, tick)
                          ? p->port : 0;
            }
            apr_thread_mutex_lock(sup->lock);
            for (i = 0; i < probes->nelts; i++) {
                probe_t *p = &DKV_ARRAY_IDX(probes, i, probe_t);

                if (p->port != 0 && p->node->pid == p->pid
                    && p->node->state == MGR_STARTING && !p->node->busy) {
                    p->node->state = MGR_RUNNING;
                    apr_thread_cond_broadcast(sup->cond);
                }
            }
        }
        if (!sup->quit) {
            apr_thread_cond_timedwait(sup->cond, sup->lock, TICK_USEC);
        }
    }
    apr_thread_mutex_unlock(sup->lock);
    apr_pool_destroy(tick);
    return NULL;
}

/* See manager.h. */
dkv_status_t
mgr_sup_create(mgr_sup_t **supp, const mgr_config_t *cfg, apr_pool_t *pool)
{
    mgr_sup_t *sup;
    apr_allocator_t *alloc;
    apr_pool_t *p;
    apr_status_t rv;
    const char *bin = cfg->node_bin;

    *supp = NULL;
    rv = apr_allocator_create(&alloc);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "supervisor: out of memory");
    }
    rv = apr_pool_create_ex(&p, pool, NULL, alloc);
    if (rv != APR_SUCCESS) {
        apr_allocator_destroy(alloc);
        return dkv_error_set(rv, "supervisor: out of memory");
    }
    apr_allocator_owner_set(alloc, p);
    sup = apr_pcalloc(p, sizeof(*sup));
    sup->pool = p;
    sup->nodes = apr_hash_make(p);
    if (bin == NULL) {
        const char *dir = dkv_plat_exe_dir(p);
        apr_finfo_t fi;

        bin = "dkv-node";
        if (dir != NULL) {
            bin = apr_pstrcat(p, dir, "/dkv-node", NULL);
            if (apr_stat(&fi, bin, APR_FINFO_TYPE, p) != APR_SUCCESS) {
                bin = apr_pstrcat(p, dir, "/dkv-node.exe", NULL);
            }
        }
    }
    else {
        bin = abs_path(bin, p);
        if (strchr(cfg->node_bin, '/') == NULL
            && strchr(cfg->node_bin, '\\') == NULL) {
            bin = apr_pstrdup(p, cfg->node_bin);   /* found in PATH */
        }
    }
    sup->node_bin = bin;
    sup->stop_timeout_sec = cfg->stop_timeout_sec > 0 ? cfg->stop_timeout_sec
                                                      : 10;
    sup->keep_nodes = cfg->keep_nodes;
    sup->restart_delay_ms = cfg->restart_delay_ms > 0 ? cfg->restart_delay_ms
                                                      : 1000;
    sup->restart_max_ms = cfg->restart_max_ms > 0 ? cfg->restart_max_ms
                                                  : 30000;
    sup->crash_limit = cfg->crash_limit > 0 ? (unsigned)cfg->crash_limit : 5;
    sup->crash_window_ms = 1000 * (int64_t)(cfg->crash_window_sec > 0
                                            ? cfg->crash_window_sec : 60);
    rv = apr_thread_mutex_create(&sup->lock, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_cond_create(&sup->cond, p);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&sup->thread, NULL, supervisor, sup, p);
    }
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(p);
        return dkv_error_set(rv, "cannot start the supervisor thread");
    }
    *supp = sup;
    return DKV_OK;
}

/* Waits (LOCK held) until N has no process or DEADLINE (ms) passes;
 * 1 when it has none. */
static int
wait_gone(mgr_sup_t *sup, sup_node_t *n, int64_t deadline)
{
    while (n->pid != 0) {
        int64_t left = deadline - now_ms();

        if (left <= 0) {
            return 0;
        }
        apr_thread_cond_timedwait(sup->cond, sup->lock,
                                  (apr_interval_time_t)(left < 100 ? left
                                                        : 100) * 1000);
    }
    return 1;
}

/* Tries to adopt the node named by N's pid file (LOCK not held, N busy).
 * 1 when adopted. */
static int
try_adopt(mgr_sup_t *sup, sup_node_t *n, apr_pool_t *pool)
{
    int64_t pid = 0, started = 0;
    const char *pid_file = apr_pstrcat(pool, abs_path(n->spec.dir, pool),
                                       "/node.pid", NULL);
    int runs;

    if (read_pid_file(&pid, &started, pid_file, pool) != DKV_OK
        || !dkv_plat_proc_alive(pid)) {
        return 0;
    }
    runs = dkv_plat_proc_runs_instance(pid, n->spec.store,
                                       n->spec.instance);
    if (runs == 0 || (runs < 0 && !port_accepts(n->spec.bind,
                                                n->spec.client_port,
                                                apr_time_from_sec(1),
                                                pool))) {
        return 0;
    }
    apr_thread_mutex_lock(sup->lock);
    n->owned = 0;
    n->pid = pid;
    n->started_ms = started > 0 ? started : now_ms();
    n->state = MGR_RUNNING;
    apr_cpystrn(n->pid_file, pid_file, sizeof(n->pid_file));
    apr_cpystrn(n->log_file, apr_pstrcat(pool, abs_path(n->spec.dir, pool),
                                         "/node.log", NULL),
                sizeof(n->log_file));
    apr_thread_mutex_unlock(sup->lock);
    return 1;
}

/* See manager.h. */
dkv_status_t
mgr_sup_start(mgr_sup_t *sup, const mgr_node_spec_t *spec, int timeout_sec,
              const char **code, const char **msg, apr_pool_t *pool)
{
    sup_node_t *n;
    const char *err = NULL, *bind;
    dkv_status_t st;
    int64_t deadline, pid;
    int up = 0;

    *code = NULL;
    *msg = NULL;
    if (spec->store == NULL || spec->instance == NULL || spec->dir == NULL
        || spec->client_port == 0) {
        *code = "BadRequest";
        *msg = "a node needs a store, an instance, a directory and a "
               "client port";
        return dkv_error_set(DKV_EINVAL, "%s", *msg);
    }
    bind = spec->bind != NULL ? spec->bind : "127.0.0.1";
    apr_thread_mutex_lock(sup->lock);
    n = get_node(sup, spec->store, spec->instance);
    if (n->busy || n->state == MGR_STOPPING) {
        apr_thread_mutex_unlock(sup->lock);
        *code = "Conflict";
        *msg = apr_psprintf(pool, "instance %s of store %s is being "
                            "started or stopped; try again", spec->instance,
                            spec->store);
        return dkv_error_set(DKV_ECONFLICT, "%s", *msg);
    }
    if (n->pid != 0) {
        apr_thread_mutex_unlock(sup->lock);
        *msg = "Already running";
        return DKV_OK;
    }
    /* Stopped, Failed, or Restarting (the restart happens now). */
    n->busy = 1;
    n->state = MGR_STOPPED;
    if (n->spec_pool != NULL) {
        apr_pool_destroy(n->spec_pool);
    }
    if (apr_pool_create(&n->spec_pool, sup->pool) != APR_SUCCESS) {
        n->spec_pool = NULL;
        n->busy = 0;
        apr_thread_mutex_unlock(sup->lock);
        *code = "Internal";
        *msg = "out of memory";
        return dkv_error_set(APR_ENOMEM, "supervisor: out of memory");
    }
    spec_copy(&n->spec, spec, n->spec_pool);
    apr_thread_mutex_unlock(sup->lock);

    if (try_adopt(sup, n, pool)) {
        apr_thread_mutex_lock(sup->lock);
        n->busy = 0;
        n->quick_exits = 0;
        n->last_error[0] = '\0';
        apr_thread_cond_broadcast(sup->cond);
        apr_thread_mutex_unlock(sup->lock);
        *msg = "Adopted";
        return DKV_OK;
    }
    st = mgr_port_check(bind, spec->client_port, "client", msg, pool);
    if (st == DKV_OK && spec->cluster_port != 0) {
        st = mgr_port_check(bind, spec->cluster_port, "cluster", msg, pool);
    }
    apr_thread_mutex_lock(sup->lock);
    if (st != DKV_OK) {
        n->busy = 0;
        apr_cpystrn(n->last_error, *msg, sizeof(n->last_error));
        apr_thread_mutex_unlock(sup->lock);
        *code = "PortInUse";
        return dkv_error_set(DKV_ECONFLICT, "%s", *msg);
    }
    st = launch(sup, n, &err, pool);
    if (st != DKV_OK) {
        n->busy = 0;
        n->state = MGR_FAILED;
        apr_cpystrn(n->last_error, err, sizeof(n->last_error));
        apr_thread_mutex_unlock(sup->lock);
        *code = "StartFailed";
        *msg = err;
        return dkv_error_set(DKV_EUNAVAILABLE, "%s", err);
    }
    n->state = MGR_STARTING;
    n->in_start = 1;
    n->quick_exits = 0;
    n->last_error[0] = '\0';
    pid = n->pid;
    apr_thread_cond_broadcast(sup->cond);
    apr_thread_mutex_unlock(sup->lock);

    deadline = now_ms() + 1000 * (int64_t)(timeout_sec > 0 ? timeout_sec
                                                           : 30);
    for (;;) {
        int gone;

        if (port_accepts(spec->bind, spec->client_port, 200000, pool)) {
            up = 1;
        }
        apr_thread_mutex_lock(sup->lock);
        gone = n->pid != pid;
        if (up || gone || now_ms() >= deadline || sup->quiescing) {
            break;                  /* with the lock */
        }
        apr_thread_cond_timedwait(sup->cond, sup->lock, 50000);
        apr_thread_mutex_unlock(sup->lock);
    }
    n->in_start = 0;
    if (!up && n->pid == pid && sup->quiescing) {
        /* Left starting: mgr_sup_destroy stops it with the others. */
        n->busy = 0;
        apr_thread_cond_broadcast(sup->cond);
        apr_thread_mutex_unlock(sup->lock);
        *code = "StartFailed";
        *msg = apr_psprintf(pool, "the manager is stopping: the start of "
                            "%s/%s was abandoned", spec->store,
                            spec->instance);
        return dkv_error_set(DKV_EUNAVAILABLE, "%s", *msg);
    }
    if (up && n->pid == pid) {
        n->state = MGR_RUNNING;
        n->busy = 0;
        apr_thread_cond_broadcast(sup->cond);
        apr_thread_mutex_unlock(sup->lock);
        *msg = "Started";
        return DKV_OK;
    }
    if (n->pid == pid) {
        /* Still no client port: kill it rather than leave it half up. */
        n->stop_requested = 1;
        n->state = MGR_STOPPING;
        signal_node(n, 0);
        /* When it is gone, node_exited cleared stop_requested; when not,
         * it stays set so that its exit is not taken for a crash. */
        (void)wait_gone(sup, n, now_ms() + 5000);
        n->state = MGR_FAILED;
        *msg = apr_psprintf(pool, "dkv-node for %s/%s did not accept "
                            "connections on client port %u within %d s; "
                            "it was killed.  The end of %s:\n%s",
                            spec->store, spec->instance,
                            (unsigned)spec->client_port, timeout_sec,
                            n->log_file, log_tail(n->log_file,
                                                  LOG_TAIL_LINES, pool));
    }
    else {
        *msg = apr_psprintf(pool, "dkv-node for %s/%s %s during start.  "
                            "The end of %s:\n%s", spec->store,
                            spec->instance, n->exit_text, n->log_file,
                            log_tail(n->log_file, LOG_TAIL_LINES, pool));
    }
    apr_cpystrn(n->last_error, *msg, sizeof(n->last_error));
    n->busy = 0;
    apr_thread_cond_broadcast(sup->cond);
    apr_thread_mutex_unlock(sup->lock);
    *code = "StartFailed";
    return dkv_error_set(DKV_EUNAVAILABLE, "%s", *msg);
}

/* See manager.h. */
void
mgr_sup_quiesce(mgr_sup_t *sup)
{
    apr_thread_mutex_lock(sup->lock);
    sup->quiescing = 1;
    apr_thread_cond_broadcast(sup->cond);
    apr_thread_mutex_unlock(sup->lock);
}

/* See manager.h. */
dkv_status_t
mgr_sup_stop(mgr_sup_t *sup, const char *store, const char *instance,
             int force, const char **msg, apr_pool_t *pool)
{
    sup_node_t *n;
    dkv_status_t st = DKV_OK;

    *msg = NULL;
    apr_thread_mutex_lock(sup->lock);
    n = find_node(sup, store, instance);
    if (n == NULL || (n->pid == 0 && n->state != MGR_RESTARTING)) {
        apr_thread_mutex_unlock(sup->lock);
        *msg = "Already stopped";
        return DKV_OK;
    }
    if (n->busy) {
        apr_thread_mutex_unlock(sup->lock);
        *msg = apr_psprintf(pool, "instance %s of store %s is being started"
                            " or stopped; try again", instance, store);
        return dkv_error_set(DKV_ECONFLICT, "%s", *msg);
    }
    if (n->pid == 0) {              /* a restart was pending */
        n->state = MGR_STOPPED;
        apr_thread_cond_broadcast(sup->cond);
        apr_thread_mutex_unlock(sup->lock);
        *msg = "Stopped";
        return DKV_OK;
    }
    n->busy = 1;
    n->stop_requested = 1;
    n->state = MGR_STOPPING;
    signal_node(n, !force);
    *msg = "Stopped";
    if (!force && !wait_gone(sup, n, now_ms() + 1000 * (int64_t)
                             sup->stop_timeout_sec)) {
        signal_node(n, 0);
        *msg = apr_psprintf(pool, "Killed after %d s",
                            sup->stop_timeout_sec);
    }
    if (!wait_gone(sup, n, now_ms() + 10000)) {
        *msg = apr_psprintf(pool, "pid %" APR_INT64_T_FMT " of %s/%s did not"
                            " exit after being killed",
                            (apr_int64_t)n->pid, store,
                            instance);
        st = dkv_error_set(DKV_EUNAVAILABLE, "%s", *msg);
    }
    else {
        n->state = MGR_STOPPED;
    }
    n->stop_requested = 0;
    n->busy = 0;
    apr_thread_cond_broadcast(sup->cond);
    apr_thread_mutex_unlock(sup->lock);
    return st;
}

/* See manager.h. */
void
mgr_sup_status(mgr_node_status_t *out, mgr_sup_t *sup, const char *store,
               const char *instance)
{
    sup_node_t *n;

    memset(out, 0, sizeof(*out));
    out->state = MGR_STOPPED;
    apr_thread_mutex_lock(sup->lock);
    n = find_node(sup, store, instance);
    if (n != NULL) {
        out->state = n->state;
        out->pid = n->pid;
        out->restarts = n->restarts;
        out->started_ms = n->started_ms;
        apr_cpystrn(out->last_error, n->last_error, sizeof(out->last_error));
        apr_cpystrn(out->log_file, n->log_file, sizeof(out->log_file));
    }
    apr_thread_mutex_unlock(sup->lock);
}

/* See manager.h. */
apr_array_header_t *
mgr_sup_running(mgr_sup_t *sup, apr_pool_t *pool)
{
    apr_array_header_t *out = apr_array_make(pool, 4,
                                             sizeof(mgr_node_spec_t));
    apr_hash_index_t *hi;

    apr_thread_mutex_lock(sup->lock);
    for (hi = apr_hash_first(NULL, sup->nodes); hi; hi = apr_hash_next(hi)) {
        sup_node_t *n = apr_hash_this_val(hi);

        if (n->state == MGR_RUNNING && n->pid != 0) {
            spec_copy(apr_array_push(out), &n->spec, pool);
        }
    }
    apr_thread_mutex_unlock(sup->lock);
    return out;
}

/* See manager.h. */
void
mgr_sup_destroy(mgr_sup_t *sup)
{
    apr_hash_index_t *hi;
    apr_status_t trv;
    int64_t deadline;
    int left, killed;

    if (sup == NULL) {
        return;
    }
    apr_thread_mutex_lock(sup->lock);
    if (!sup->keep_nodes) {
        /* Everyone gets SIGTERM at once, then the stop timeout. */
        for (hi = apr_hash_first(NULL, sup->nodes); hi;
             hi = apr_hash_next(hi)) {
            sup_node_t *n = apr_hash_this_val(hi);

            if (n->pid != 0) {
                n->stop_requested = 1;
                n->state = MGR_STOPPING;
                signal_node(n, 1);
            }
            else if (n->state == MGR_RESTARTING) {
                n->state = MGR_STOPPED;
            }
        }
        /* Then SIGKILL for the rest, and at most 10 s more. */
        deadline = now_ms() + 1000 * (int64_t)sup->stop_timeout_sec;
        for (killed = 0;;) {
            left = 0;
            for (hi = apr_hash_first(NULL, sup->nodes); hi;
                 hi = apr_hash_next(hi)) {
                sup_node_t *n = apr_hash_this_val(hi);

                left += n->pid != 0;
                if (n->pid != 0 && !killed && now_ms() >= deadline) {
                    signal_node(n, 0);
                }
            }
            if (left == 0) {
                break;
            }
            if (now_ms() >= deadline) {
                if (killed) {
                    break;
                }
                killed = 1;
                deadline = now_ms() + 10000;
            }
            apr_thread_cond_timedwait(sup->cond, sup->lock, TICK_USEC);
        }
    }
    sup->quit = 1;
    apr_thread_cond_broadcast(sup->cond);
    apr_thread_mutex_unlock(sup->lock);
    apr_thread_join(&trv, sup->thread);
    apr_pool_destroy(sup->pool);
}

/* See manager.h. */
dkv_status_t
mgr_port_check(const char *bind, uint16_t port, const char *what,
               const char **msg, apr_pool_t *pool)
{
    const char *addr = bind != NULL && bind[0] != '\0' ? bind : "0.0.0.0";
    apr_sockaddr_t *sa;
    apr_socket_t *sock = NULL;
    apr_status_t rv;
    char ebuf[160], holder[128];

    *msg = NULL;
    if (port == 0) {
        return DKV_OK;
    }
    rv = apr_sockaddr_info_get(&sa, addr, APR_UNSPEC, port, 0, pool);
    if (rv == APR_SUCCESS) {
        rv = apr_socket_create(&sock, sa->family, SOCK_STREAM,
                               APR_PROTO_TCP, pool);
    }
    if (rv == APR_SUCCESS) {
        rv = dkv_plat_listener_prepare(sock);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_bind(sock, sa);
    }
    if (sock != NULL) {
        apr_socket_close(sock);
    }
    if (rv == APR_SUCCESS) {
        return DKV_OK;
    }
    if (dkv_plat_addr_in_use(rv)) {
        dkv_plat_port_holder(port, holder, sizeof(holder));
        *msg = holder[0] != '\0'
               ? apr_psprintf(pool, "%s port %u is in use by %s", what,
                              (unsigned)port, holder)
               : apr_psprintf(pool, "%s port %u is in use (the OS does not"
                              " say by whom)", what, (unsigned)port);
    }
    else {
        *msg = apr_psprintf(pool, "%s port %u cannot be bound on %s: %s",
                            what, (unsigned)port, addr,
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
    }
    return dkv_error_set(DKV_ECONFLICT, "%s", *msg);
}
