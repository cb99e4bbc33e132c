/*
 * testnode.h -- real dkv-node processes for tests: start one on loopback
 * with a fresh data directory and a port the node picks (--client-port 0
 * --port-file), wait for it (bounded), stop it with a signal, read its
 * log and its memory use.  Used by the unit runner's remote mode (the API
 * suites against a node, DKV_TEST_MODE=remote) and by the integration
 * tests (tests/integration/).
 *
 * A node is owned by the pool it was started in: destroying or clearing
 * that pool kills it (SIGKILL) if it still runs, before its temporary
 * directory is removed, so a failed test leaves no process behind.
 */
#ifndef DKV_TESTNODE_H
#define DKV_TESTNODE_H

#include <apr_pools.h>
#include <apr_network_io.h>
#include <apr_thread_proc.h>

#include <dkv.h>

/* One dkv-node child. */
typedef struct dkv_test_node {
    apr_pool_t *pool;           /* the pool it was started in */
    apr_proc_t proc;
    int running;                /* 1 until stopped, killed or reaped */
    int exit_code;              /* after dkv_test_node_stop: the code */
    apr_exit_why_e exit_why;
    const char *store;          /* the store it serves */
    const char *dir;            /* its own temporary directory */
    const char *data_dir;       /* --data-dir */
    const char *log_file;       /* --log-file */
    const char *out_file;       /* its stdout and stderr */
    const char *port_file;      /* --port-file */
    const char *const *args;    /* the extra flags, NULL-terminated */
    apr_port_t port;            /* the bound client port */
    const char *address;        /* "dkv://127.0.0.1:PORT/STORE" */
} dkv_test_node_t;

/* The dkv-node program: $DKV_NODE when set, else "dkv-node" two
 * directories above the runner (tests/unit/runner -> ./dkv-node), else
 * from $top_builddir.  Allocated in POOL. */
const char *dkv_test_node_path(apr_pool_t *pool);

/* 1 when the unit runner runs the API suites against nodes
 * ($DKV_TEST_MODE is "remote"). */
int dkv_test_remote_mode(void);

/* Starts a dkv-node serving STORE from DATA_DIR (NULL: a new directory
 * inside the node's temporary directory) with the extra flags ARGS (NULL
 * or NULL-terminated, e.g. "--token-file", F), on 127.0.0.1 unless ARGS
 * has --bind, and waits at most 15 s until it wrote its port file.
 * *NODE is allocated in POOL, which owns the process (see above).
 * Returns APR_SUCCESS, or an error after printing why (the node's output
 * included) to stderr. */
apr_status_t dkv_test_node_start(dkv_test_node_t **node, const char *store,
                                 const char *data_dir,
                                 const char *const *args, apr_pool_t *pool);

/* Same, but runs the node through PREFIX (a NULL-terminated argv run
 * before dkv-node, e.g. { "ip", "netns", "exec", NS, NULL }). */
apr_status_t dkv_test_node_start_in(dkv_test_node_t **node,
                                    const char *const *prefix,
                                    const char *store, const char *data_dir,
                                    const char *const *args,
                                    apr_pool_t *pool);

/* Restarts a stopped or killed NODE on the same data directory and flags
 * (a new port).  Returns as dkv_test_node_start. */
apr_status_t dkv_test_node_restart(dkv_test_node_t *node);

/* Sends SIGNUM (e.g. SIGTERM, SIGKILL) and waits at most TIMEOUT_MS for
 * the node to exit; kills it with SIGKILL after that.  Sets exit_code and
 * exit_why.  Returns 1 when it exited within the time. */
int dkv_test_node_stop(dkv_test_node_t *node, int signum, int timeout_ms);

/* 1 while the node's process runs (reaps it otherwise). */
int dkv_test_node_alive(dkv_test_node_t *node);

/* The node's resident anonymous memory in KiB (RssAnon of
 * /proc/PID/status: its heap and buffers, not the pages of the store's
 * memory-mapped file; VmRSS on older kernels), or -1 where that is not
 * available. */
long dkv_test_node_rss_kb(const dkv_test_node_t *node);

/* The whole log file of NODE (empty when none), in POOL. */
const char *dkv_test_node_log(const dkv_test_node_t *node, apr_pool_t *pool);

/* Opens the node's store with a default request timeout of 10 s and the
 * token TOKEN (may be NULL).  *CLIENT lives in its own pool; dkv_close()
 * it.  Returns dkv_open's status. */
dkv_status_t dkv_test_node_open(dkv_client_t **client,
                                const dkv_test_node_t *node,
                                const char *token);

/* The API suites' remote mode: opens a client of a node made for the
 * current test, standing in for an "inproc:" store of the same options
 * (max_value and map_size become node flags; the clock cannot be driven
 * on a node and is ignored: tests that need it skip themselves through
 * AT_FAKE_CLOCK_ONLY).  Each call starts a new node with an empty store;
 * the nodes of a test are stopped when the next test opens one, or at
 * dkv_test_shutdown().  Returns dkv_open's status (or DKV_EUNAVAILABLE
 * when no node could start). */
dkv_status_t dkv_test_remote_open(dkv_client_t **client,
                                  const dkv_open_opts_t *opts);

/* Records and prints that the current test skipped itself for REASON
 * (remote mode).  The runner prints the count at the end. */
void dkv_test_skip(const char *test, const char *reason);

/* The number of dkv_test_skip() calls so far. */
unsigned dkv_test_skipped(void);

#endif /* DKV_TESTNODE_H */
