/*
 * manager.h -- the internals of dkv-manager, shared by its files.
 *
 *   main.c       flags, keys, start and stop of the whole
 *   http.c       libmicrohttpd server: routing, signatures, JSON errors
 *   api.c        the endpoints of docs/admin-api.md
 *   registry.c   the LMDB registry: stores, instances, nonces
 *   supervise.c  the dkv-node processes: start, stop, restart, adopt
 *   nodectl.c    talking to a local node on its client port (STATS,
 *                MEMBERS, MEMBER_ADD) with the node admin token
 *   metrics.c    sampling the nodes, rates, JSON and Prometheus output
 *
 * Threads: libmicrohttpd's (requests), the supervisor's (reaping and
 * restarts), the sampler's (metrics).  Each module locks its own state;
 * the registry is LMDB (its own transactions).
 */
#ifndef DKV_MANAGER_H
#define DKV_MANAGER_H

#include <stdint.h>

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>

#include "dkv/common.h"
#include "common/adminauth.h"

#define MGR_NAME_MAX 64
#define MGR_HOST_MAX 255

/* ------------------------------------------------------------ settings */

typedef struct mgr_range {
    uint16_t lo, hi;
} mgr_range_t;

typedef struct mgr_config {
    const char *data_dir;          /* registry, keys, stores/ */
    const char *bind;              /* listen address (default 0.0.0.0) */
    uint16_t port;                 /* management port (default 7801) */
    mgr_range_t mgmt_range;        /* default 7801-7810 */
    mgr_range_t cluster_range;     /* default 7811-7860 */
    mgr_range_t client_range;      /* default 7861-7899 */
    const char *node_bin;          /* dkv-node to run (default: beside us) */
    const char *authorized_keys;   /* default DATA_DIR/authorized_keys */
    const char *log_file;          /* NULL: stderr */
    int stop_timeout_sec;          /* graceful stop before kill (10) */
    int keep_nodes;                /* 1: leave nodes running on exit */
    /* Restart policy of the supervisor (0: the default; tests set them):
     * first restart delay (1000 ms, doubled per quick exit up to
     * restart_max_ms, 30000), and Failed after crash_limit (5) exits
     * each within crash_window_sec (60) of their start. */
    int restart_delay_ms;
    int restart_max_ms;
    int crash_limit;
    int crash_window_sec;
} mgr_config_t;

/* ------------------------------------------------------------ registry */

typedef struct mgr_instance {
    char name[MGR_NAME_MAX + 1];
    uint32_t node_id;
    char host[MGR_HOST_MAX + 1];
    char manager[64];              /* key id of the manager running it */
    uint16_t cluster_port;
    uint16_t client_port;
    int local;                     /* manager == ours */
    int joining;                   /* added to a running group: --join */
    int want_running;              /* persisted desired state (local) */
} mgr_instance_t;

typedef struct mgr_store {
    char name[MGR_NAME_MAX + 1];
    char prefix[MGR_NAME_MAX + 1];
    int64_t created_ms;
    unsigned heartbeat_ms;         /* 100 */
    unsigned election_ms;          /* 1000 */
    size_t ninstances;
    mgr_instance_t *instances;     /* in the pool it was read into */
} mgr_store_t;

typedef struct mgr_registry mgr_registry_t;

/* Opens (creating) the registry at DIR/registry (an LMDB environment). */
dkv_status_t mgr_registry_open(mgr_registry_t **reg, const char *dir,
                               apr_pool_t *pool);
void mgr_registry_close(mgr_registry_t *reg);
/* *STORE NULL (and DKV_OK) when there is no such store. */
dkv_status_t mgr_registry_get(mgr_store_t **store, mgr_registry_t *reg,
                              const char *name, apr_pool_t *pool);
/* Every store, sorted by name: an array of mgr_store_t *. */
dkv_status_t mgr_registry_list(apr_array_header_t **stores,
                               mgr_registry_t *reg, apr_pool_t *pool);
/* Writes STORE (creating or replacing it) in one synced transaction. */
dkv_status_t mgr_registry_put(mgr_registry_t *reg, const mgr_store_t *store,
                              apr_pool_t *pool);
/* Records NONCE (seen at NOW_MS) unless it is there: DKV_OK when new,
 * DKV_ECONFLICT when replayed.  Drops nonces older than 2 windows. */
dkv_status_t mgr_registry_nonce(mgr_registry_t *reg, const char *nonce,
                                int64_t now_ms);

/* ---------------------------------------------------------- supervisor */

/* What a node runs with (everything it needs, in the caller's pool). */
typedef struct mgr_node_spec {
    const char *store;
    const char *instance;
    uint32_t node_id;
    const char *dir;               /* DATA/stores/STORE/INSTANCE */
    const char *bind;              /* the node's listen address */
    uint16_t cluster_port;
    uint16_t client_port;
    const char *peers;             /* --peers text; NULL: a group of one */
    const char *secret_file;
    const char *token_file;
    const char *admin_token;       /* hex, dkv_admin_node_token */
    unsigned heartbeat_ms;
    unsigned election_ms;
    int join;
} mgr_node_spec_t;

typedef enum mgr_state {
    MGR_STOPPED = 0,
    MGR_STARTING,
    MGR_RUNNING,
    MGR_STOPPING,
    MGR_RESTARTING,
    MGR_FAILED
} mgr_state_t;

const char *mgr_state_name(mgr_state_t s);   /* "Running", ... */

typedef struct mgr_node_status {
    mgr_state_t state;
    int64_t pid;                   /* 0: none */
    unsigned restarts;
    int64_t started_ms;            /* 0: never */
    char last_error[512];          /* "" when none */
    char log_file[1024];
} mgr_node_status_t;

typedef struct mgr_sup mgr_sup_t;

dkv_status_t mgr_sup_create(mgr_sup_t **sup, const mgr_config_t *cfg,
                            apr_pool_t *pool);
/* Starts (or adopts, when its pid file names a live node of this
 * instance) the node of SPEC and waits until its client port accepts
 * connections or TIMEOUT_SEC passes.  Returns DKV_OK (*MSG "Started",
 * "Already running", "Adopted"), or an error with *CODE and *MSG (the
 * operator's message): DKV_ECONFLICT + "PortInUse" when a port is held,
 * DKV_ECONFLICT + "Conflict" while another start or stop of the node is
 * in progress, DKV_EUNAVAILABLE + "StartFailed" with the log's last
 * lines, DKV_EINVAL + "BadRequest" for an incomplete SPEC. */
dkv_status_t mgr_sup_start(mgr_sup_t *sup, const mgr_node_spec_t *spec,
                           int timeout_sec, const char **code,
                           const char **msg, apr_pool_t *pool);
/* Stops the node (graceful, then killed after the stop timeout; FORCE:
 * killed at once) and waits for it.  DKV_OK with *MSG "Stopped",
 * "Already stopped" or "Killed after 10 s"; DKV_ECONFLICT while a start
 * or stop of it is in progress; DKV_EUNAVAILABLE when it outlived the
 * kill.  *MSG says which. */
dkv_status_t mgr_sup_stop(mgr_sup_t *sup, const char *store,
                          const char *instance, int force, const char **msg,
                          apr_pool_t *pool);
void mgr_sup_status(mgr_node_status_t *out, mgr_sup_t *sup,
                    const char *store, const char *instance);
/* The running nodes: an array of mgr_node_spec_t (copies, in POOL). */
apr_array_header_t *mgr_sup_running(mgr_sup_t *sup, apr_pool_t *pool);
/* The manager is stopping: starts in progress stop waiting for their
 * nodes (they answer StartFailed at once; the nodes are stopped by
 * mgr_sup_destroy with the others), so the HTTP server can stop without
 * waiting out a start's timeout. */
void mgr_sup_quiesce(mgr_sup_t *sup);
/* Stops every node (unless the config keeps them) and the thread. */
void mgr_sup_destroy(mgr_sup_t *sup);

/* Port PORT free for a listener on BIND?  DKV_OK, or DKV_ECONFLICT
 * with *MSG like "cluster port 7811 is in use by pid 42 (dkv-node)"
 * (WHAT is "cluster" or "client"). */
dkv_status_t mgr_port_check(const char *bind, uint16_t port,
                            const char *what, const char **msg,
                            apr_pool_t *pool);

/* ------------------------------------------------------------- nodectl */

/* The address to reach a node listening on BIND from this machine:
 * loopback for the wildcards, "localhost" and when unset (the admin
 * connection must come from this machine), else BIND itself. */
const char *mgr_local_addr(const char *bind);

/* One request to a local node on 127.0.0.1 (or BIND) : CLIENT_PORT with
 * the admin token, within TIMEOUT_MS.  Return the node's status. */
typedef struct mgr_members {
    uint32_t leader;               /* 0: none known */
    size_t n;
    uint32_t ids[256];
    unsigned roles[256];           /* DKV_PROTO_MEMBER_* */
} mgr_members_t;

dkv_status_t mgr_node_members(mgr_members_t *out, const mgr_node_spec_t *n,
                              int timeout_ms, apr_pool_t *pool);
dkv_status_t mgr_node_member_add(const mgr_node_spec_t *n, uint32_t id,
                                 const char *host, uint16_t cluster_port,
                                 uint16_t client_port, int timeout_ms,
                                 const char **msg, apr_pool_t *pool);
/* The node's metrics: an array of dkv_proto_stat_t (names in POOL). */
dkv_status_t mgr_node_stats(apr_array_header_t **stats,
                            const mgr_node_spec_t *n, int timeout_ms,
                            apr_pool_t *pool);

/* ------------------------------------------------------------- metrics */

typedef struct mgr_metrics mgr_metrics_t;

/* Starts the sampler: every second, STATS of every node SUP runs. */
dkv_status_t mgr_metrics_create(mgr_metrics_t **m, mgr_sup_t *sup,
                                apr_pool_t *pool);
void mgr_metrics_destroy(mgr_metrics_t *m);
/* The "nodes" array of GET /admin/v1/metrics (STORE NULL: all). */
json_t *mgr_metrics_json(mgr_metrics_t *m, const char *store,
                         int window_sec);
/* The nodes' part of GET /metrics, appended to OUT (in POOL). */
void mgr_metrics_prometheus(mgr_metrics_t *m, apr_array_header_t *lines,
                            apr_pool_t *pool);

#endif /* DKV_MANAGER_H */
