/*
 * main.c -- dkv-manager, one per machine: reads its settings (flags and
 * an optional config file), loads its keys (making them on first start,
 * and the authorized-keys file trusting the user it runs as), opens the
 * registry, starts the supervisor and the metrics sampler, restarts the
 * nodes that were running, serves the admin API (docs/admin-api.md)
 * until SIGTERM/SIGINT, then stops the nodes (unless --keep-nodes).
 *
 * Under a service manager it reports readiness once the management port
 * listens and when it starts stopping (platform/service.h: systemd's
 * notify protocol, the Windows SCM); on Windows it also installs and
 * removes itself as the service dkv-manager and runs under the SCM's
 * dispatcher when started with --service.
 *
 * Exit status: 0 after a graceful stop, 1 when the manager cannot start,
 * 2 for bad settings.  docs/manager.md is the operator's page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_env.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_thread_cond.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "dkv.h"
#include "common/adminauth.h"
#include "common/config.h"
#include "common/log.h"
#include "common/status.h"
#include "manager/server.h"
#include "platform/platform.h"
#include "platform/service.h"
#include "platform/userenv.h"

#define PROG "dkv-manager"

typedef struct settings {
    const char *config;
    const char *data_dir;
    const char *bind;
    uint64_t port;
    const char *mgmt_range;
    const char *cluster_range;
    const char *client_range;
    const char *node_bin;
    const char *authorized_keys;
    const char *log_file;
    const char *log_level;
    const char *port_file;
    uint64_t stop_timeout;
    int keep_nodes;
    int install_service;
    int uninstall_service;
    int help;
    int version;
} settings_t;

static settings_t set = {
    NULL, NULL, "0.0.0.0", 7801, "7801-7810", "7811-7860", "7861-7899",
    NULL, NULL, NULL, "info", NULL, 10, 0, 0, 0, 0, 0
};

static dkv_config_opt_t options[] = {
    { "config", DKV_CONF_STRING, &set.config, 0, 0, "FILE",
      "Read settings from FILE: lines of 'name = value' with the names of "
      "these flags, '#' comments.  Flags win over the file.", 1, 0 },
    { "data-dir", DKV_CONF_STRING, &set.data_dir, 0, 0, "DIR",
      "The manager's directory: registry, keys, the stores' secrets and "
      "the nodes' data (required; created if missing).", 0, 0 },
    { "port", DKV_CONF_UINT, &set.port, 0, 65535, "N",
      "The management port (default 7801), inside --management-range.  "
      "0 picks a free port: it is printed, logged and written to "
      "--port-file.", 0, 0 },
    { "bind", DKV_CONF_STRING, &set.bind, 0, 0, "ADDR",
      "Address the management port listens on (default 0.0.0.0; '::' "
      "listens on IPv6 and IPv4).", 0, 0 },
    { "management-range", DKV_CONF_STRING, &set.mgmt_range, 0, 0, "LO-HI",
      "The machine's management ports (default 7801-7810).", 0, 0 },
    { "cluster-range", DKV_CONF_STRING, &set.cluster_range, 0, 0, "LO-HI",
      "Ports the nodes' cluster ports may use (default 7811-7860).", 0,
      0 },
    { "client-range", DKV_CONF_STRING, &set.client_range, 0, 0, "LO-HI",
      "Ports the nodes' client ports may use (default 7861-7899).", 0, 0 },
    { "node-bin", DKV_CONF_STRING, &set.node_bin, 0, 0, "FILE",
      "The dkv-node program to run (default: the one beside this "
      "program, else dkv-node from PATH).", 0, 0 },
    { "authorized-keys", DKV_CONF_STRING, &set.authorized_keys, 0, 0,
      "FILE", "The admins' public keys, one 'ed25519 KEY COMMENT' a line "
      "(default DATA-DIR/authorized_keys; made on first start trusting "
      "the key of the user the manager runs as).", 0, 0 },
    { "log-file", DKV_CONF_STRING, &set.log_file, 0, 0, "FILE",
      "Append the log to FILE (warnings and errors also go to stderr).  "
      "Default: stderr only.", 0, 0 },
    { "log-level", DKV_CONF_STRING, &set.log_level, 0, 0, "LEVEL",
      "debug, info (default), warn or error.", 0, 0 },
    { "port-file", DKV_CONF_STRING, &set.port_file, 0, 0, "FILE",
      "Write the bound management port (a decimal number and a newline) "
      "to FILE once the manager serves.", 0, 0 },
    { "stop-timeout", DKV_CONF_UINT, &set.stop_timeout, 1, 3600, "SEC",
      "How long a node may take to stop gracefully before it is killed "
      "(default 10).", 0, 0 },
    { "keep-nodes", DKV_CONF_FLAG, &set.keep_nodes, 0, 0, NULL,
      "Leave the nodes running when the manager stops; the next start "
      "adopts them.", 0, 0 },
    { "install-service", DKV_CONF_FLAG, &set.install_service, 0, 0, NULL,
      "Windows only: register the service " PROG " (automatic start, "
      "LocalSystem) to run this program with the other settings given "
      "here (paths made absolute; give --config FILE), then exit.", 1, 0 },
    { "uninstall-service", DKV_CONF_FLAG, &set.uninstall_service, 0, 0,
      NULL, "Windows only: stop and delete the service " PROG ", then "
      "exit.  Elsewhere systemd, rc.d or launchd runs the manager.", 1,
      0 },
    { "help", DKV_CONF_FLAG, &set.help, 0, 0, NULL,
      "Show this help and exit.", 1, 0 },
    { "version", DKV_CONF_FLAG, &set.version, 0, 0, NULL,
      "Show the version and exit.", 1, 0 },
    { NULL, 0, NULL, 0, 0, NULL, NULL, 0, 0 }
};

/* The wait for a stop request. */
typedef struct stopper {
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    int stop;
    const char *reason;
} stopper_t;

static void
usage(FILE *out)
{
    fprintf(out, "Usage: " PROG " --data-dir DIR [OPTION...]\n"
            "Manages this machine's dkv stores: the admin API on the "
            "management port\n(docs/admin-api.md), the registry, the "
            "dkv-node processes and their\nmetrics.  Stops gracefully on "
            "SIGTERM or SIGINT.\n\nOptions:\n");
    dkv_config_print_help(options, out);
    fprintf(out, "\nExit status: 0 after a graceful stop, 1 when the "
            "manager cannot start,\n2 for bad settings.\n");
}

/* Parses "LO-HI" of FLAG into *R; NULL or what is wrong. */
static const char *
parse_range(mgr_range_t *r, const char *flag, const char *text,
            apr_pool_t *pool)
{
    char *end;
    unsigned long lo, hi;

    lo = strtoul(text, &end, 10);
    if (end == text || *end != '-') {
        return apr_psprintf(pool, "--%s '%s': LO-HI expected (like "
                            "7811-7860)", flag, text);
    }
    text = end + 1;
    hi = strtoul(text, &end, 10);
    if (end == text || *end != '\0' || lo == 0 || hi > 65535 || lo > hi) {
        return apr_psprintf(pool, "--%s: LO-HI with 1 <= LO <= HI <= 65535 "
                            "expected", flag);
    }
    r->lo = (uint16_t)lo;
    r->hi = (uint16_t)hi;
    return NULL;
}

static int
ranges_overlap(const mgr_range_t *a, const mgr_range_t *b)
{
    return a->lo <= b->hi && b->lo <= a->hi;
}

static int
is_file(const char *path, apr_pool_t *pool)
{
    apr_finfo_t fi;

    return apr_stat(&fi, path, APR_FINFO_TYPE, pool) == APR_SUCCESS
           && fi.filetype == APR_REG;
}

/* The dkv-node beside ARGV0 (when ARGV0 names a directory), else
 * "dkv-node" (found in PATH by the supervisor). */
static const char *
default_node_bin(const char *argv0, apr_pool_t *pool)
{
    const char *slash = strrchr(argv0, '/'), *bs = strrchr(argv0, '\\');
    const char *exe = strstr(argv0, ".exe") ? ".exe" : "";
    const char *cand;

    if (bs != NULL && (slash == NULL || bs > slash)) {
        slash = bs;
    }
    if (slash != NULL) {
        cand = apr_pstrcat(pool, apr_pstrndup(pool, argv0,
                                              (apr_size_t)(slash - argv0
                                                           + 1)),
                           "dkv-node", exe, NULL);
        if (is_file(cand, pool)) {
            char *abs = NULL;

            if (apr_filepath_merge(&abs, NULL, cand, APR_FILEPATH_NATIVE,
                                   pool) == APR_SUCCESS) {
                return abs;
            }
            return cand;
        }
    }
    return apr_pstrcat(pool, "dkv-node", exe, NULL);
}


/* Makes the authorized-keys file PATH trusting the admin key of the user
 * the manager runs as (made now if that user has none). */
static dkv_status_t
make_authorized_keys(const char *path, apr_pool_t *pool)
{
    dkv_admin_key_t *key;
    const char *dir, *line;
    int created = 0;
    dkv_status_t st;

    st = dkv_plat_user_dir(&dir, pool);
    if (st != DKV_OK) {
        return dkv_error_set(st, "%s does not exist, and the user's dkv "
                             "directory is unknown (no HOME): create it "
                             "with the admins' keys", path);
    }
    st = dkv_admin_key_load(&key, &created, dir, pool);
    if (st != DKV_OK) {
        return st;
    }
    line = dkv_admin_key_line(key, "created-by-dkv-manager", pool);
    st = dkv_write_private_file(path, line, strlen(line), pool);
    if (st != DKV_OK) {
        return st;
    }
    dkv_log(DKV_LOG_INFO, "created %s trusting the admin key %s of this "
            "user (%s/admin.key%s); append more admins' lines to it", path,
            dkv_admin_key_id(key, pool), dir,
            created ? ", made now" : "");
    return DKV_OK;
}

static void
on_stop(void *baton, const char *reason)
{
    stopper_t *s = baton;

    apr_thread_mutex_lock(s->mutex);
    if (!s->stop) {
        s->stop = 1;
        s->reason = reason;
    }
    apr_thread_cond_broadcast(s->cond);
    apr_thread_mutex_unlock(s->mutex);
}

/* The status line for the service manager: "serving on port N, M
 * stores", with ", K nodes running" when NODES is set; in POOL. */
static const char *
serving_status(mgr_server_t *srv, int nodes, apr_pool_t *pool)
{
    apr_array_header_t *stores;
    int nstores = -1, nrunning;
    const char *text;

    if (mgr_registry_list(&stores, srv->reg, pool) == DKV_OK) {
        nstores = stores->nelts;
    }
    text = apr_psprintf(pool, "serving on port %u", (unsigned)srv->bound_port);
    if (nstores >= 0) {
        text = apr_psprintf(pool, "%s, %d store%s", text, nstores,
                            nstores == 1 ? "" : "s");
    }
    if (nodes) {
        nrunning = mgr_sup_running(srv->sup, pool)->nelts;
        text = apr_psprintf(pool, "%s, %d node%s running", text, nrunning,
                            nrunning == 1 ? "" : "s");
    }
    return text;
}

/* Restarts the nodes that were running (SRV's registry says which), then
 * tells the service manager how many run. */
static void *APR_THREAD_FUNC
resume_thread(apr_thread_t *t, void *data)
{
    mgr_server_t *srv = data;
    apr_pool_t *pool;

    if (apr_pool_create(&pool, NULL) == APR_SUCCESS) {
        mgr_api_resume(srv, pool);
        if (!apr_atomic_read32(&srv->stopping)) {
            dkv_plat_service_status(serving_status(srv, 1, pool));
        }
        apr_pool_destroy(pool);
    }
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* Checks and completes the settings into CFG; NULL or the problem. */
static const char *
check_settings(mgr_config_t *cfg, const char *argv0, apr_pool_t *pool)
{
    const char *bad;

    memset(cfg, 0, sizeof(*cfg));
    if (set.data_dir == NULL || set.data_dir[0] == '\0') {
        return "--data-dir DIR is required";
    }
    if ((bad = parse_range(&cfg->mgmt_range, "management-range",
                           set.mgmt_range, pool)) != NULL
        || (bad = parse_range(&cfg->cluster_range, "cluster-range",
                              set.cluster_range, pool)) != NULL
        || (bad = parse_range(&cfg->client_range, "client-range",
                              set.client_range, pool)) != NULL) {
        return bad;
    }
    if (ranges_overlap(&cfg->cluster_range, &cfg->client_range)
        || ranges_overlap(&cfg->mgmt_range, &cfg->cluster_range)
        || ranges_overlap(&cfg->mgmt_range, &cfg->client_range)) {
        return "the management, cluster and client ranges overlap";
    }
    if (set.port != 0 && (set.port < cfg->mgmt_range.lo
                          || set.port > cfg->mgmt_range.hi)) {
        return apr_psprintf(pool, "--port %u is outside the management "
                            "range %u-%u (see --management-range)",
                            (unsigned)set.port,
                            (unsigned)cfg->mgmt_range.lo,
                            (unsigned)cfg->mgmt_range.hi);
    }
    if (apr_filepath_merge((char **)&cfg->data_dir, NULL, set.data_dir,
                           APR_FILEPATH_NATIVE, pool) != APR_SUCCESS) {
        cfg->data_dir = set.data_dir;
    }
    cfg->bind = set.bind;
    cfg->port = (uint16_t)set.port;
    cfg->node_bin = set.node_bin ? set.node_bin
                                 : default_node_bin(argv0, pool);
    cfg->authorized_keys = set.authorized_keys
                               ? set.authorized_keys
                               : apr_pstrcat(pool, cfg->data_dir,
                                             "/authorized_keys", NULL);
    cfg->log_file = set.log_file;
    cfg->stop_timeout_sec = (int)set.stop_timeout;
    cfg->keep_nodes = set.keep_nodes;
    return NULL;
}

/* Flags whose values are paths: made absolute on the service's command
 * line, since a Windows service starts in the system directory. */
static const char *const path_flags[] = {
    "config", "data-dir", "authorized-keys", "log-file", "port-file",
    "node-bin", NULL
};

/* Whether ARGV holds the flag "--NAME" itself (no value). */
static int
arg_given(const char *name, int argc, const char *const *argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i] + 2, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ARG quoted for a Windows command line, by the rules the C runtime and
 * CommandLineToArgvW undo: in quotes when it is empty or holds blanks or
 * quotes, with quotes escaped and the backslashes before them doubled.
 * Returns ARG itself or a copy in POOL. */
static const char *
quote_arg(const char *arg, apr_pool_t *pool)
{
    apr_array_header_t *b;
    const char *p;
    size_t slashes = 0, k;

    if (arg[0] != '\0' && strpbrk(arg, " \t\n\v\"") == NULL) {
        return arg;
    }
    b = apr_array_make(pool, (int)strlen(arg) * 2 + 3, 1);
#define PUT(c) (*(char *)apr_array_push(b) = (c))
    PUT('"');
    for (p = arg;; p++) {
        if (*p == '\\') {
            slashes++;
            continue;
        }
        if (*p == '"' || *p == '\0') {
            for (k = 0; k < 2 * slashes; k++) {
                PUT('\\');
            }
            if (*p == '\0') {
                break;
            }
            PUT('\\');
        } else {
            for (k = 0; k < slashes; k++) {
                PUT('\\');
            }
        }
        PUT(*p);
        slashes = 0;
    }
    PUT('"');
    PUT('\0');
#undef PUT
    return b->elts;
}

/* The command-line tail the service runs with: ARGV's settings without
 * --install-service, the values of path_flags made absolute (node-bin
 * only when it names a path, not a program to find in PATH), every
 * argument quoted.  In POOL. */
static const char *
service_args(int argc, const char *const *argv, apr_pool_t *pool)
{
    apr_array_header_t *out;
    int i, k;

    out = apr_array_make(pool, argc + 1, sizeof(const char *));
#define PUSH(v) (*(const char **)apr_array_push(out) = (v))
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq, *value = NULL, *flag = NULL;
        char *abs;
        size_t len;

        if (strcmp(arg, "--install-service") == 0) {
            continue;
        }
        if (strncmp(arg, "--", 2) == 0) {
            eq = strchr(arg + 2, '=');
            len = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
            for (k = 0; path_flags[k] != NULL; k++) {
                if (strlen(path_flags[k]) == len
                    && strncmp(arg + 2, path_flags[k], len) == 0) {
                    flag = path_flags[k];
                }
            }
            if (flag != NULL) {
                value = eq != NULL ? eq + 1 : i + 1 < argc ? argv[++i]
                                                           : NULL;
            }
        }
        if (flag == NULL || value == NULL) {
            PUSH(quote_arg(arg, pool));
            continue;
        }
        if ((strcmp(flag, "node-bin") != 0 || strchr(value, '/') != NULL
             || strchr(value, '\\') != NULL)
            && apr_filepath_merge(&abs, NULL, value, APR_FILEPATH_NATIVE,
                                  pool) == APR_SUCCESS) {
            value = abs;
        }
        PUSH(apr_pstrcat(pool, "--", flag, NULL));
        PUSH(quote_arg(value, pool));
    }
#undef PUSH
    return apr_array_pstrcat(pool, out, ' ');
}

/* --install-service: registers the Windows service with ARGV's settings.
 * Returns the exit status: 0 done, 2 not on this system (Unix), 1 the
 * service manager refused. */
static int
install_service(int argc, const char *const *argv, apr_pool_t *pool)
{
    const char *args = service_args(argc, argv, pool);
    dkv_status_t st;

    st = dkv_plat_service_install(PROG, "dkv manager", "Manages this "
                                  "machine's dkv stores and their "
                                  "dkv-node processes (admin API on the "
                                  "management port).", args, NULL);
    if (st != DKV_OK) {
        fprintf(stderr, PROG ": %s\n", dkv_last_error());
        return st == APR_ENOTIMPL ? 2 : 1;
    }
    printf(PROG ": installed the service " PROG ", running with: --service "
           "%s\n", args);
    return 0;
}

/* --uninstall-service.  Returns the exit status as install_service. */
static int
uninstall_service(void)
{
    dkv_status_t st = dkv_plat_service_uninstall(PROG);

    if (st != DKV_OK) {
        fprintf(stderr, PROG ": %s\n", dkv_last_error());
        return st == APR_ENOTIMPL ? 2 : 1;
    }
    printf(PROG ": removed the service " PROG "\n");
    return 0;
}

/* The manager itself, with APR initialized: run by main, or as the
 * body of the Windows service by the SCM's dispatcher (ARGV without
 * "--service").  Returns the exit status. */
static int
manager_main(int argc, const char *const *argv)
{
    apr_pool_t *pool;
    dkv_log_level_t level = DKV_LOG_INFO;
    mgr_server_t *srv;
    stopper_t stopper;
    apr_thread_t *resumer = NULL;
    apr_pool_t *scratch;
    const char *problem, *cfgfile, *status;
    char last_status[160] = "";
    apr_status_t rv, trv;
    dkv_status_t st;
    char err[120];
    int created = 0;

    if (apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    srv = apr_pcalloc(pool, sizeof(*srv));
    srv->pool = pool;

    /* ----- --uninstall-service needs no settings (the file may be gone) */
    if (arg_given("uninstall-service", argc, argv)) {
        return uninstall_service();
    }

    /* ----- settings: the config file first, then the flags over it */
    cfgfile = dkv_config_find_arg("config", argc, argv);
    if (cfgfile != NULL && dkv_config_find_arg("help", argc, argv) == NULL) {
        st = dkv_config_parse_file(options, cfgfile, pool);
        if (st != DKV_OK) {
            return dkv_config_bad_settings(PROG, dkv_last_error());
        }
    }
    st = dkv_config_parse_args(options, argc, argv, pool);
    if (st != DKV_OK) {
        return dkv_config_bad_settings(PROG, dkv_last_error());
    }
    if (set.help) {
        usage(stdout);
        return 0;
    }
    if (set.version) {
        printf(PROG " %s\n", dkv_version());
        return 0;
    }
    problem = check_settings(&srv->cfg, argv[0], pool);
    if (problem != NULL) {
        return dkv_config_bad_settings(PROG, problem);
    }
    if (set.install_service) {
        return install_service(argc, argv, pool);
    }
    /* The service manager's address (systemd's NOTIFY_SOCKET) is read by
     * the first report and kept; the nodes, which inherit the
     * environment, must not report in the manager's name. */
    dkv_plat_service_status("starting");
    apr_env_delete("NOTIFY_SOCKET", pool);
    if (dkv_log_level_parse(&level, set.log_level) != DKV_OK) {
        return dkv_config_bad_settings(PROG, dkv_last_error());
    }
    if (dkv_log_open(PROG, set.log_file, level, pool) != DKV_OK) {
        return dkv_config_bad_settings(PROG, dkv_last_error());
    }

    /* ----- stop requests (before any thread, for the signal mask) */
    memset(&stopper, 0, sizeof(stopper));
    if (apr_thread_mutex_create(&stopper.mutex, APR_THREAD_MUTEX_DEFAULT,
                                pool) != APR_SUCCESS
        || apr_thread_cond_create(&stopper.cond, pool) != APR_SUCCESS
        || apr_thread_mutex_create(&srv->lock, APR_THREAD_MUTEX_DEFAULT,
                                   pool) != APR_SUCCESS) {
        return dkv_config_fail(PROG, "cannot create a mutex");
    }
    if (dkv_plat_stop_signals(on_stop, &stopper) != DKV_OK) {
        return dkv_config_fail(PROG, dkv_last_error());
    }

    /* ----- data directory and keys */
    rv = apr_dir_make_recursive(srv->cfg.data_dir, APR_FPROT_UREAD
                                | APR_FPROT_UWRITE | APR_FPROT_UEXECUTE,
                                pool);
    if (rv != APR_SUCCESS) {
        return dkv_config_fail(PROG, apr_psprintf(
            pool, "cannot create the data directory %s: %s",
            srv->cfg.data_dir, apr_strerror(rv, err, sizeof(err))));
    }
    if (dkv_adminauth_init() != DKV_OK) {
        return dkv_config_fail(PROG, "libsodium failed to initialize");
    }
    if (dkv_manager_keys_load(&srv->keys, &created, srv->cfg.data_dir, pool)
        != DKV_OK) {
        return dkv_config_fail(PROG, dkv_last_error());
    }
    srv->sign_id = dkv_manager_sign_id(srv->keys, pool);
    srv->box_id = dkv_manager_box_id(srv->keys, pool);
    if (created) {
        dkv_log(DKV_LOG_INFO, "made the manager's keys in %s/manager.key: "
                "signing key %s", srv->cfg.data_dir, srv->sign_id);
    }
    if (!is_file(srv->cfg.authorized_keys, pool)
        && make_authorized_keys(srv->cfg.authorized_keys, pool) != DKV_OK) {
        return dkv_config_fail(PROG, dkv_last_error());
    }
    if (dkv_admin_verifier_create(&srv->verifier, srv->sign_id,
                                  srv->cfg.authorized_keys, pool)
        != DKV_OK) {
        return dkv_config_fail(PROG, dkv_last_error());
    }

    /* ----- registry, supervisor, sampler */
    if (mgr_registry_open(&srv->reg, srv->cfg.data_dir, pool) != DKV_OK) {
        return dkv_config_fail(PROG, dkv_last_error());
    }
    if (mgr_sup_create(&srv->sup, &srv->cfg, pool) != DKV_OK) {
        return dkv_config_fail(PROG, dkv_last_error());
    }
    if (mgr_metrics_create(&srv->metrics, srv->sup, pool) != DKV_OK) {
        dkv_log(DKV_LOG_WARN, "metrics sampler not started: %s",
                dkv_last_error());
        srv->metrics = NULL;
    }
    srv->started_ms = apr_time_as_msec(apr_time_now());

    /* ----- serving */
    if (mgr_http_start(srv, pool) != DKV_OK) {
        const char *msg = apr_pstrdup(pool, dkv_last_error());

        if (srv->metrics != NULL) {
            mgr_metrics_destroy(srv->metrics);
        }
        mgr_sup_destroy(srv->sup);
        mgr_registry_close(srv->reg);
        return dkv_config_fail(PROG, msg);
    }
    if (set.port_file != NULL
        && dkv_config_write_port_file(set.port_file, srv->bound_port,
                                      pool) != DKV_OK) {
        dkv_log(DKV_LOG_ERROR, "%s", dkv_last_error());
    }
    /* Ready once the management port listens (sent before the nodes
     * come back, so that their later status line is the last word). */
    dkv_plat_service_ready(serving_status(srv, 0, pool));
    /* The nodes that were running come back in the background, so the
     * port answers at once. */
    trv = apr_thread_create(&resumer, NULL, resume_thread, srv, pool);
    if (trv != APR_SUCCESS) {
        resumer = NULL;
        dkv_log(DKV_LOG_ERROR, "cannot start the thread that restarts the "
                "nodes: %s", apr_strerror(trv, err, sizeof(err)));
    }
    dkv_log(DKV_LOG_INFO, PROG " %s listening on %s (key %s); data dir %s, "
            "management range %u-%u, cluster range %u-%u, client range "
            "%u-%u, node program %s, authorized keys %s", dkv_version(),
            srv->where, srv->sign_id, srv->cfg.data_dir,
            (unsigned)srv->cfg.mgmt_range.lo,
            (unsigned)srv->cfg.mgmt_range.hi,
            (unsigned)srv->cfg.cluster_range.lo,
            (unsigned)srv->cfg.cluster_range.hi,
            (unsigned)srv->cfg.client_range.lo,
            (unsigned)srv->cfg.client_range.hi, srv->cfg.node_bin,
            srv->cfg.authorized_keys);
    printf(PROG " listening on %s (key %s)\n", srv->where, srv->sign_id);
    fflush(stdout);

    /* Waits for a stop request, refreshing the service manager's status
     * line every 5 s when the stores or running nodes changed. */
    if (apr_pool_create(&scratch, pool) != APR_SUCCESS) {
        scratch = NULL;
    }
    apr_thread_mutex_lock(stopper.mutex);
    while (!stopper.stop) {
        apr_thread_cond_timedwait(stopper.cond, stopper.mutex,
                                  apr_time_from_sec(5));
        if (stopper.stop || scratch == NULL) {
            continue;
        }
        apr_thread_mutex_unlock(stopper.mutex);
        apr_pool_clear(scratch);
        status = serving_status(srv, 1, scratch);
        if (strcmp(status, last_status) != 0) {
            dkv_plat_service_status(status);
            apr_cpystrn(last_status, status, sizeof(last_status));
        }
        apr_thread_mutex_lock(stopper.mutex);
    }
    apr_thread_mutex_unlock(stopper.mutex);

    /* ----- stopping (the flag first: resume_thread then sends no
     * "serving" status after ours; the wait hint covers the nodes' stop
     * timeout, the 10 s after their kill, and 5 s for the rest) */
    apr_atomic_set32(&srv->stopping, 1);
    dkv_plat_service_stopping((unsigned)set.stop_timeout * 1000 + 15000);
    dkv_plat_service_status(srv->cfg.keep_nodes
                            ? "stopping, leaving the nodes running"
                            : "stopping the nodes");
    dkv_log(DKV_LOG_INFO, "stopping (%s)%s", stopper.reason,
            srv->cfg.keep_nodes ? ": leaving the nodes running"
                                : ": stopping the nodes");
    mgr_sup_quiesce(srv->sup);
    mgr_http_stop(srv);
    if (resumer != NULL) {
        apr_thread_join(&trv, resumer);
    }
    if (srv->metrics != NULL) {
        mgr_metrics_destroy(srv->metrics);
    }
    mgr_sup_destroy(srv->sup);
    mgr_registry_close(srv->reg);
    dkv_log(DKV_LOG_INFO, "stopped");
    dkv_log_close();
    return 0;
}

/* Initializes APR once (on Windows it rebuilds ARGV from the process's
 * command line, which under the SCM still holds "--service"), then runs
 * the manager under the Windows service dispatcher when started as a
 * service, else directly. */
int
main(int argc, const char *const *argv)
{
    int rc;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        fprintf(stderr, PROG ": cannot initialize APR\n");
        return 1;
    }
    atexit(apr_terminate);
    rc = dkv_plat_service_dispatch(PROG, manager_main, argc, argv);
    return rc >= 0 ? rc : manager_main(argc, argv);
}
