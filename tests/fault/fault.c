/*
 * fault.c -- fault tests of replicated stores: 3 and 5 real dkv-node
 * processes (a Raft group, docs/internals/replication.md) on loopback or
 * in network namespaces, under a steady load of writes and linearizable
 * reads from several client threads, while nodes are killed, stopped,
 * partitioned and restarted.  Every client operation is recorded (invoke
 * and completion time, outcome ok / fail / unknown) and the history is
 * checked for linearizability (tests/lincheck/lincheck.h) after each
 * scenario.  docs/internals/fault-tests.md describes the scenarios.
 *
 *   fault [--scenario NAME] [--nodes N] [--seconds S]
 *         [--election-timeout MS] [--heartbeat MS] [--clients N]
 *         [--snapshot-entries N] [--history-dir DIR] [--netns-prefix P]
 *         [--budget S] [--stop-elections N] [--keep] [--list]
 *         [--verbose] [--node-debug]
 *
 * Output: one line per scenario (counts, leader changes, time to a new
 * leader, PASS/FAIL/SKIP), then "fault: N scenarios, M passed".  Exit 0
 * when every scenario that ran passed, 77 when none could run.
 *
 * Linux only (fork/exec, signals, prctl, setns, ip netns): not built for
 * Windows.  Every loop is bounded in count and time; nodes die with this
 * program (PR_SET_PDEATHSIG) and the temporary directory is removed.
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include <dkv.h>

#include "common/adminauth.h"
#include "common/alloc.h"
#include "common/proto.h"
#include "common/status.h"
#include "lincheck/lincheck.h"

#define STORE "FaultStore"
#define TOKEN "fault-test-token-0123456789abcdef"
#define MAX_NODES 7
#define MAX_CLIENTS 16
#define NKEYS 20
#define PATHLEN 512
#define START_WAIT_MS 15000
#define STOP_WAIT_MS 5000       /* a graceful stop, SIGTERM to exit */

/* ========================================================== settings */

typedef struct settings {
    const char *only;           /* --scenario, or NULL: all */
    int nodes;                  /* --nodes, 0: each scenario's own */
    double seconds;             /* --seconds of load per scenario */
    int election_ms;            /* --election-timeout */
    int heartbeat_ms;           /* --heartbeat */
    int clients;                /* --clients */
    int snapshot_entries;       /* --snapshot-entries */
    const char *history_dir;    /* --history-dir */
    const char *netns_prefix;   /* --netns-prefix */
    int keep;                   /* --keep: leave the temporary dir */
    int budget_s;               /* --budget: no scenario starts after */
    int stop_elections;         /* --stop-elections: SIGSTOP length */
    int verbose;
    int node_debug;             /* --node-debug: nodes log at debug */
    const char *node_path;      /* $DKV_NODE */
    int replicated;             /* the node knows --peers */
} settings_t;

static settings_t S = {
    NULL, 0, 6.0, 500, 50, 4, 200, NULL, NULL, 0, 330, 3, 0, 0, NULL, 0
};

static char tmp_root[PATHLEN];  /* the run's temporary directory */

static void vlog(const char *fmt, ...) DKV_PRINTF(1, 2);
static int sh(const char *fmt, ...) DKV_PRINTF(1, 2);
static int pathf(char *buf, size_t size, const char *fmt, ...)
    DKV_PRINTF(3, 4);

/* ============================================================== time */

/* Monotonic microseconds. */
static int64_t
mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Wall clock in ms since the epoch (to compare with node log lines). */
static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(int ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        continue;
    }
}

static void
vlog(const char *fmt, ...)
{
    va_list ap;

    if (!S.verbose) {
        return;
    }
    va_start(ap, fmt);
    fprintf(stderr, "fault: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* ============================================================ helpers */

/* Runs the shell command built from FMT; returns its exit status (-1 when
 * it could not run).  Quiet unless --verbose. */
static int
sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    int rc;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    vlog("$ %s", cmd);
    if (!S.verbose) {
        size_t n = strlen(cmd);

        snprintf(cmd + n, sizeof cmd - n, " >/dev/null 2>&1");
    }
    rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc)) {
        return -1;
    }
    return WEXITSTATUS(rc);
}

/* snprintf for paths: returns -1 when BUF was too small. */
static int
pathf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL) {
        return -1;
    }
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

/* A free TCP port on 127.0.0.1 not used earlier in this run and not 78xx
 * (the ports the project's examples use). */
static int
free_port(void)
{
    static int used[256];
    static int nused;
    int tries, i;

    for (tries = 0; tries < 200; tries++) {
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        int fd = socket(AF_INET, SOCK_STREAM, 0), port, dup = 0;

        if (fd < 0) {
            return -1;
        }
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0
            || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
            close(fd);
            continue;
        }
        close(fd);
        port = ntohs(a.sin_port);
        for (i = 0; i < nused; i++) {
            dup |= used[i] == port;
        }
        if (dup || port / 100 == 78) {
            continue;
        }
        if (nused < (int)(sizeof used / sizeof used[0])) {
            used[nused++] = port;
        }
        return port;
    }
    return -1;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : 0;
}

static void
rm_tree(const char *path)
{
    (void)nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ============================================================ cluster */

typedef struct fnode {
    int id;
    int client_port;
    int cluster_port;
    char host[64];              /* address in --peers and for clients */
    char ns[64];                /* network namespace, "" for none */
    char dir[PATHLEN];
    char data_dir[PATHLEN];
    char log_file[PATHLEN];
    char out_file[PATHLEN];
    char port_file[PATHLEN];
    volatile pid_t pid;         /* 0 when not running */
    int paused;                 /* SIGSTOPped */
    int starts;
    int joins;                  /* added to the running store: --join,
                                 * not started with the others */
} fnode_t;

typedef struct cluster {
    int n;
    fnode_t nodes[MAX_NODES];
    char dir[PATHLEN];
    char secret_file[PATHLEN];
    char token_file[PATHLEN];
    char peers[2048];
    char first_peers[2048];     /* the first membership, when nodes join
                                 * later ("": all of PEERS) */
    char seeds[2048];           /* "h:p,h:p,..." */
    int election_ms;
    int heartbeat_ms;
    int snapshot_entries;
    int netns;                  /* nodes in namespaces (partitions) */
    char ns_client[64];         /* the clients' namespace */
    char net[32];               /* "10.231.X" */
    int orig_ns_fd;             /* this process's namespace, to return */
} cluster_t;

/* Every node started, for the signal handler. */
static cluster_t *live_cluster;

static void
on_fatal_signal(int sig)
{
    int i;

    if (live_cluster != NULL) {
        for (i = 0; i < live_cluster->n; i++) {
            if (live_cluster->nodes[i].pid > 0) {
                kill(live_cluster->nodes[i].pid, SIGKILL);
            }
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static fnode_t *
node_by_id(cluster_t *c, int id)
{
    int i;

    for (i = 0; i < c->n; i++) {
        if (c->nodes[i].id == id) {
            return &c->nodes[i];
        }
    }
    return NULL;
}

/* Reaps NODE if it exited; 1 while it runs. */
static int
node_alive(fnode_t *node)
{
    int st;

    if (node->pid <= 0) {
        return 0;
    }
    if (waitpid(node->pid, &st, WNOHANG) == node->pid) {
        vlog("node %d exited (status 0x%x)", node->id, st);
        node->pid = 0;
        return 0;
    }
    return 1;
}

/* Sends SIG to NODE and waits at most TIMEOUT_MS for it to exit, then
 * kills it.  Returns the exit status as waitpid gives it, -1 when it had
 * to be killed. */
static int
node_stop(fnode_t *node, int sig, int timeout_ms)
{
    int64_t end = mono_us() + (int64_t)timeout_ms * 1000;
    int st = 0;
    pid_t pid = node->pid;

    if (pid <= 0) {
        return 0;
    }
    if (node->paused) {
        kill(pid, SIGCONT);
        node->paused = 0;
    }
    kill(pid, sig);
    while (mono_us() < end) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            node->pid = 0;
            return st;
        }
        sleep_ms(5);
    }
    kill(pid, SIGKILL);
    (void)waitpid(pid, &st, 0);
    node->pid = 0;
    return -1;
}

/* Starts NODE (its files set) and waits until it wrote its port file. */
static int
node_start(cluster_t *c, fnode_t *node)
{
    const char *argv[64];
    char id[16], cport[16], et[16], hb[16], se[16];
    int n = 0, i;
    pid_t pid;
    int64_t end;

    (void)remove(node->port_file);
    snprintf(id, sizeof id, "%d", node->id);
    snprintf(cport, sizeof cport, "%d", node->client_port);
    snprintf(et, sizeof et, "%d", c->election_ms);
    snprintf(hb, sizeof hb, "%d", c->heartbeat_ms);
    snprintf(se, sizeof se, "%d", c->snapshot_entries);
    if (node->ns[0] != '\0') {
        argv[n++] = "ip";
        argv[n++] = "netns";
        argv[n++] = "exec";
        argv[n++] = node->ns;
    }
    argv[n++] = S.node_path;
    argv[n++] = "--store";
    argv[n++] = STORE;
    argv[n++] = "--data-dir";
    argv[n++] = node->data_dir;
    argv[n++] = "--bind";
    argv[n++] = node->host;
    argv[n++] = "--client-port";
    argv[n++] = cport;
    argv[n++] = "--port-file";
    argv[n++] = node->port_file;
    argv[n++] = "--log-file";
    argv[n++] = node->log_file;
    argv[n++] = "--token-file";
    argv[n++] = c->token_file;
    argv[n++] = "--readers";
    argv[n++] = "2";
    if (S.node_debug) {
        argv[n++] = "--log-level";
        argv[n++] = "debug";
    }
    if (S.replicated) {
        argv[n++] = "--node-id";
        argv[n++] = id;
        argv[n++] = "--peers";
        /* A store's first start makes its first membership; later
         * starts get every node, as the manager gives them. */
        argv[n++] = node->starts == 0 && !node->joins && c->first_peers[0]
                    ? c->first_peers : c->peers;
        if (node->joins) {
            argv[n++] = "--join";
        }
        argv[n++] = "--secret-file";
        argv[n++] = c->secret_file;
        argv[n++] = "--election-timeout";
        argv[n++] = et;
        argv[n++] = "--heartbeat-interval";
        argv[n++] = hb;
        argv[n++] = "--snapshot-entries";
        argv[n++] = se;
    }
    argv[n] = NULL;

    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "fault: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open(node->out_file, O_WRONLY | O_CREAT | O_APPEND, 0644);

        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        for (i = 3; i < 1024; i++) {
            close(i);
        }
        /* a core dump lands beside the node's files */
        if (chdir(node->dir) != 0) {
            _exit(126);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    node->pid = pid;
    node->paused = 0;
    node->starts++;
    end = mono_us() + (int64_t)START_WAIT_MS * 1000;
    while (mono_us() < end) {
        if (access(node->port_file, F_OK) == 0) {
            vlog("node %d started, pid %d, %s:%d", node->id, (int)pid,
                 node->host, node->client_port);
            return 0;
        }
        if (!node_alive(node)) {
            break;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "fault: node %d did not start (see %s)\n", node->id,
            node->out_file);
    node_stop(node, SIGKILL, 1000);
    return -1;
}

static void
node_pause(fnode_t *node)
{
    if (node->pid > 0 && !node->paused) {
        kill(node->pid, SIGSTOP);
        node->paused = 1;
    }
}

static void
node_resume(fnode_t *node)
{
    if (node->pid > 0 && node->paused) {
        kill(node->pid, SIGCONT);
        node->paused = 0;
    }
}

/* Makes the namespaces of a partitionable cluster: one per node and one
 * for the clients holding the bridge the nodes' veths join. */
static int
netns_setup(cluster_t *c)
{
    const char *pre = S.netns_prefix;
    int i, tag = (int)(getpid() % 10000);
    char path[PATHLEN];

    snprintf(c->net, sizeof c->net, "10.231.%d", 200 + (int)(getpid() % 50));
    snprintf(c->ns_client, sizeof c->ns_client, "%sc", pre);
    if (sh("ip netns add %s && ip -n %s link set lo up && "
           "ip -n %s link add fbr%d type bridge && "
           "ip -n %s addr add %s.254/24 dev fbr%d && "
           "ip -n %s link set fbr%d up", c->ns_client, c->ns_client,
           c->ns_client, tag, c->ns_client, c->net, tag, c->ns_client,
           tag) != 0) {
        return -1;
    }
    for (i = 0; i < c->n; i++) {
        fnode_t *nd = &c->nodes[i];

        snprintf(nd->ns, sizeof nd->ns, "%sn%d", pre, nd->id);
        snprintf(nd->host, sizeof nd->host, "%s.%d", c->net, nd->id);
        if (sh("ip netns add %s && ip -n %s link set lo up && "
               "ip -n %s link add fa%dx%d type veth peer name fb%dx%d "
               "netns %s && ip -n %s link set fa%dx%d master fbr%d up && "
               "ip -n %s addr add %s/24 dev fb%dx%d && "
               "ip -n %s link set fb%dx%d up",
               nd->ns, nd->ns, c->ns_client, tag, nd->id, tag, nd->id,
               nd->ns, c->ns_client, tag, nd->id, tag, nd->ns, nd->host,
               tag, nd->id, nd->ns, tag, nd->id) != 0) {
            return -1;
        }
    }
    c->orig_ns_fd = open("/proc/self/ns/net", O_RDONLY);
    snprintf(path, sizeof path, "/var/run/netns/%s", c->ns_client);
    i = open(path, O_RDONLY);
    if (c->orig_ns_fd < 0 || i < 0 || setns(i, CLONE_NEWNET) != 0) {
        fprintf(stderr, "fault: setns %s: %s\n", path, strerror(errno));
        if (i >= 0) {
            close(i);
        }
        return -1;
    }
    close(i);
    return 0;
}

static void
netns_teardown(cluster_t *c)
{
    int i;

    if (c->orig_ns_fd >= 0) {
        if (setns(c->orig_ns_fd, CLONE_NEWNET) != 0) {
            fprintf(stderr, "fault: setns back: %s\n", strerror(errno));
        }
        close(c->orig_ns_fd);
        c->orig_ns_fd = -1;
    }
    for (i = 0; i < c->n; i++) {
        if (c->nodes[i].ns[0] != '\0') {
            (void)sh("ip netns del %s", c->nodes[i].ns);
        }
    }
    if (c->ns_client[0] != '\0') {
        (void)sh("ip netns del %s", c->ns_client);
    }
}

/* Cuts (CUT 1) or heals (0) the links between node ID and every other
 * node, both ways, with blackhole routes inside the namespaces.  The
 * clients' namespace still reaches every node. */
static int
netns_isolate(cluster_t *c, int id, int cut)
{
    fnode_t *a = node_by_id(c, id);
    int i, rc = 0;

    for (i = 0; i < c->n; i++) {
        fnode_t *b = &c->nodes[i];

        if (b->id == id) {
            continue;
        }
        rc |= sh("ip -n %s route %s blackhole %s/32", a->ns,
                 cut ? "add" : "del", b->host);
        rc |= sh("ip -n %s route %s blackhole %s/32", b->ns,
                 cut ? "add" : "del", a->host);
    }
    return rc;
}

/* Lays out N nodes under a new directory of tmp_root (ports, files,
 * peers), without starting them. */
static int
cluster_init(cluster_t *c, const char *name, int n, int netns)
{
    char secret[80], buf[256];
    int i;
    size_t off = 0, soff = 0;

    memset(c, 0, sizeof *c);
    c->n = n;
    c->orig_ns_fd = -1;
    c->netns = netns;
    c->election_ms = S.election_ms;
    c->heartbeat_ms = S.heartbeat_ms;
    c->snapshot_entries = S.snapshot_entries;
    pathf(c->dir, sizeof c->dir, "%s/%s", tmp_root, name);
    if (mkdir(c->dir, 0755) != 0 && errno != EEXIST) {
        return -1;
    }
    for (i = 0; i < 64; i++) {
        secret[i] = "0123456789abcdef"[(unsigned)rand() % 16];
    }
    secret[64] = '\n';
    secret[65] = '\0';
    pathf(c->secret_file, sizeof c->secret_file, "%s/secret", c->dir);
    pathf(c->token_file, sizeof c->token_file, "%s/token", c->dir);
    if (write_file(c->secret_file, secret) != 0
        || write_file(c->token_file, TOKEN "\n") != 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        fnode_t *nd = &c->nodes[i];

        nd->id = i + 1;
        snprintf(nd->host, sizeof nd->host, "127.0.0.1");
        nd->client_port = free_port();
        nd->cluster_port = free_port();
        if (nd->client_port < 0 || nd->cluster_port < 0) {
            return -1;
        }
        pathf(nd->dir, sizeof nd->dir, "%s/n%d", c->dir, nd->id);
        pathf(nd->data_dir, sizeof nd->data_dir, "%s/data", nd->dir);
        pathf(nd->log_file, sizeof nd->log_file, "%s/node.log", nd->dir);
        pathf(nd->out_file, sizeof nd->out_file, "%s/node.out", nd->dir);
        pathf(nd->port_file, sizeof nd->port_file, "%s/port", nd->dir);
        if (mkdir(nd->dir, 0755) != 0) {
            return -1;
        }
    }
    if (netns && netns_setup(c) != 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        fnode_t *nd = &c->nodes[i];

        snprintf(buf, sizeof buf, "%s%d=%s:%d:%d", i ? "," : "", nd->id,
                 nd->host, nd->cluster_port, nd->client_port);
        off += (size_t)snprintf(c->peers + off, sizeof c->peers - off, "%s",
                                buf);
        snprintf(buf, sizeof buf, "%s%s:%d", i ? "," : "", nd->host,
                 nd->client_port);
        soff += (size_t)snprintf(c->seeds + soff, sizeof c->seeds - soff,
                                 "%s", buf);
    }
    live_cluster = c;
    return 0;
}

static int
cluster_start(cluster_t *c)
{
    int i;

    for (i = 0; i < c->n; i++) {
        if (c->nodes[i].pid <= 0 && !c->nodes[i].joins
            && node_start(c, &c->nodes[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Makes the nodes after the first K of C join later (--join): the
 * store's first membership is nodes 1..K. */
static void
cluster_defer(cluster_t *c, int k)
{
    size_t off = 0;
    int i;

    for (i = 0; i < c->n; i++) {
        fnode_t *nd = &c->nodes[i];

        if (i >= k) {
            nd->joins = 1;
            continue;
        }
        off += (size_t)snprintf(c->first_peers + off,
                                sizeof c->first_peers - off, "%s%d=%s:%d:%d",
                                i ? "," : "", nd->id, nd->host,
                                nd->cluster_port, nd->client_port);
    }
}

static void
cluster_destroy(cluster_t *c)
{
    int i;

    for (i = 0; i < c->n; i++) {
        node_stop(&c->nodes[i], SIGKILL, 3000);
    }
    if (c->netns) {
        netns_teardown(c);
    }
    live_cluster = NULL;
}

/* The address of a client of C whose seed list starts at node FIRST (an
 * id) and lists the others after it; SKIP (an id, 0 none) is left out. */
static const char *
cluster_address(cluster_t *c, int first, int skip, apr_pool_t *pool)
{
    const char *addr = "";
    int i, k;

    for (k = 0; k < c->n; k++) {
        fnode_t *nd;

        i = (first - 1 + k) % c->n;
        nd = &c->nodes[i];
        if (nd->id == skip) {
            continue;
        }
        addr = apr_psprintf(pool, "%s%s%s:%d", addr, *addr ? "," : "",
                            nd->host, nd->client_port);
    }
    return apr_psprintf(pool, "dkv://%s/%s", addr, STORE);
}

/* ========================================================= node logs */

/* Parses "2025-01-31T12:00:00.123Z" at the start of LINE: ms since the
 * epoch, or -1. */
static int64_t
log_time(const char *line)
{
    struct tm tm;
    int ms = 0;

    memset(&tm, 0, sizeof tm);
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3d", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
        return -1;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* What the logs say about leadership: the newest "became leader" line of
 * every node. */
typedef struct leadership {
    int leader;                 /* node id with the highest term, 0 none */
    uint64_t term;
    int elections;              /* "became leader" lines, all nodes */
    int64_t first_after;        /* earliest such line at or after AFTER */
    int first_after_id;
} leadership_t;

/* Reads the logs of C's nodes.  Only nodes that run and are not paused
 * count as the leader.  AFTER: wall ms for first_after (0: none). */
static void
leadership_read(leadership_t *l, cluster_t *c, int64_t after)
{
    char line[1024];
    int i;

    memset(l, 0, sizeof *l);
    l->first_after = -1;
    for (i = 0; i < c->n; i++) {
        fnode_t *nd = &c->nodes[i];
        FILE *f = fopen(nd->log_file, "r");

        if (f == NULL) {
            continue;
        }
        while (fgets(line, sizeof line, f) != NULL) {
            const char *p = strstr(line, "became leader");
            const char *t;
            uint64_t term = 0;
            int64_t at;

            if (p == NULL) {
                continue;
            }
            t = strstr(p, "term");
            if (t != NULL) {
                t += 4;
                while (*t == ' ' || *t == '=' || *t == ':') {
                    t++;
                }
                term = strtoull(t, NULL, 10);
            }
            l->elections++;
            at = log_time(line);
            if (after > 0 && at >= after
                && (l->first_after < 0 || at < l->first_after)) {
                l->first_after = at;
                l->first_after_id = nd->id;
            }
            if (nd->pid > 0 && !nd->paused && term >= l->term) {
                l->term = term;
                l->leader = nd->id;
            }
        }
        fclose(f);
    }
}

/* 1 when NODE's log has a line containing TEXT stamped at or after
 * AFTER (wall ms), waiting at most TIMEOUT_MS for it. */
static int
wait_log(fnode_t *node, const char *text, int64_t after, int timeout_ms)
{
    int64_t end = mono_us() + (int64_t)timeout_ms * 1000;
    char line[1024];
    int found = 0;

    do {
        FILE *f = fopen(node->log_file, "r");

        while (f != NULL && !found && fgets(line, sizeof line, f) != NULL) {
            found = strstr(line, text) != NULL && log_time(line) >= after;
        }
        if (f != NULL) {
            fclose(f);
        }
        if (!found) {
            sleep_ms(20);
        }
    } while (!found && mono_us() < end);
    return found;
}

/* The time (wall ms) of the first line of NODE's log containing TEXT
 * stamped at or after AFTER, or -1. */
static int64_t
log_find(fnode_t *node, const char *text, int64_t after)
{
    char line[1024];
    int64_t at = -1;
    FILE *f = fopen(node->log_file, "r");

    while (f != NULL && at < 0 && fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, text) != NULL && log_time(line) >= after) {
            at = log_time(line);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return at;
}

/* Waits at most TIMEOUT_MS for a leader among the running nodes (other
 * than NOT, 0: any); returns its id or 0. */
static int
wait_leader(cluster_t *c, int not, int timeout_ms)
{
    int64_t end = mono_us() + (int64_t)timeout_ms * 1000;
    leadership_t l;

    if (!S.replicated) {
        return c->nodes[0].pid > 0 ? 1 : 0;
    }
    do {
        leadership_read(&l, c, 0);
        if (l.leader != 0 && l.leader != not) {
            return l.leader;
        }
        sleep_ms(20);
    } while (mono_us() < end);
    return 0;
}

/* ============================================================ history */

enum { OP_WRITE = 1, OP_READ = 2 };
enum { OUT_OK = 0, OUT_FAIL = 1, OUT_UNKNOWN = 2 };

typedef struct fop {
    int client;
    int kind;
    int key;
    int found;                  /* reads: the key existed */
    int outcome;
    dkv_status_t status;
    int64_t invoke_us;
    int64_t complete_us;
    char value[32];             /* written, or read when found */
} fop_t;

typedef struct history {
    pthread_mutex_t lock;
    fop_t *ops;
    size_t n;
    size_t cap;
    int64_t start_us;
    int64_t last_ok_write_us;   /* completion of the newest OK write */
    unsigned unexpected;        /* statuses no operation should answer */
    dkv_status_t first_unexpected;
} history_t;

static void
history_init(history_t *h)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->lock, NULL);
    h->start_us = mono_us();
}

static void
history_free(history_t *h)
{
    dkv_free(h->ops);
    pthread_mutex_destroy(&h->lock);
}

static void
history_add(history_t *h, const fop_t *op)
{
    pthread_mutex_lock(&h->lock);
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 4096;
        fop_t *ops = dkv_realloc(h->ops, cap * sizeof *ops);

        if (ops == NULL) {
            pthread_mutex_unlock(&h->lock);
            return;
        }
        h->ops = ops;
        h->cap = cap;
    }
    h->ops[h->n++] = *op;
    if (op->kind == OP_WRITE && op->outcome == OUT_OK
        && op->complete_us > h->last_ok_write_us) {
        h->last_ok_write_us = op->complete_us;
    }
    pthread_mutex_unlock(&h->lock);
}

/* The outcome of status ST for an operation of KIND (the rules of
 * docs/internals/replication.md): EUNAVAILABLE was never applied; a
 * timeout or a lost connection leaves a write's outcome unknown. */
static int
classify(history_t *h, int kind, dkv_status_t st)
{
    if (st == DKV_OK || (kind == OP_READ && st == DKV_ENOTFOUND)) {
        return OUT_OK;
    }
    if (st == DKV_ETIMEOUT || st == DKV_ETRANSPORT || st == DKV_ECLOSED) {
        return kind == OP_WRITE ? OUT_UNKNOWN : OUT_FAIL;
    }
    if (st != DKV_EUNAVAILABLE && st != DKV_ENOTLEADER) {
        pthread_mutex_lock(&h->lock);
        if (h->unexpected++ == 0) {
            h->first_unexpected = st;
        }
        pthread_mutex_unlock(&h->lock);
    }
    return OUT_FAIL;
}

static void
key_name(char *buf, size_t size, int key)
{
    snprintf(buf, size, "k%02d", key);
}

/* One recorded operation through CLIENT: a write of VALUE (non-NULL) or a
 * read of KEY.  Returns the status. */
static dkv_status_t
do_op(history_t *h, dkv_client_t *client, int id, int key,
      const char *value, fop_t *out, apr_pool_t *pool)
{
    fop_t op;
    char k[16];
    dkv_status_t st;

    memset(&op, 0, sizeof op);
    op.client = id;
    op.key = key;
    key_name(k, sizeof k, key);
    op.invoke_us = mono_us();
    if (value != NULL) {
        op.kind = OP_WRITE;
        snprintf(op.value, sizeof op.value, "%s", value);
        st = dkv_put(NULL, client, k, strlen(k), value, strlen(value), NULL);
    } else {
        dkv_item_t *item = NULL;

        op.kind = OP_READ;
        st = dkv_get(&item, client, k, strlen(k), NULL, pool);
        if (st == DKV_OK && item != NULL) {
            op.found = 1;
            snprintf(op.value, sizeof op.value, "%.*s",
                     (int)(item->value_len < 31 ? item->value_len : 31),
                     (const char *)item->value);
        }
    }
    op.complete_us = mono_us();
    op.status = st;
    op.outcome = classify(h, op.kind, st);
    history_add(h, &op);
    if (out != NULL) {
        *out = op;
    }
    return st;
}

typedef struct counts {
    size_t ok;
    size_t fail;
    size_t unknown;
    size_t writes_ok;
    size_t reads_ok;
} counts_t;

static void
history_counts(counts_t *k, const history_t *h)
{
    size_t i;

    memset(k, 0, sizeof *k);
    for (i = 0; i < h->n; i++) {
        const fop_t *op = &h->ops[i];

        if (op->outcome == OUT_OK) {
            k->ok++;
            k->writes_ok += op->kind == OP_WRITE;
            k->reads_ok += op->kind == OP_READ;
        } else if (op->outcome == OUT_FAIL) {
            k->fail++;
        } else {
            k->unknown++;
        }
    }
}

/* =============================================================== load */

typedef struct load load_t;

typedef struct loader {
    load_t *load;
    int id;
    pthread_t thread;
    int started;
} loader_t;

struct load {
    cluster_t *c;
    history_t *h;
    volatile int stop;
    int64_t deadline_us;        /* hard bound */
    loader_t th[MAX_CLIENTS];
    int nthreads;
};

/* Opens a client of ADDRESS in POOL (never with a NULL pool: dkv_open
 * then initializes and terminates APR per handle, and APR's counter of
 * initializations is not safe across threads). */
static dkv_status_t
open_client_opts(dkv_client_t **client, const char *address,
                 int timeout_ms, int serializable, apr_pool_t *pool)
{
    dkv_open_opts_t o;

    memset(&o, 0, sizeof o);
    o.serializable_reads = serializable;
    o.token = TOKEN;
    o.connect_timeout_ms = 1000;
    o.request_timeout_ms = (unsigned)timeout_ms;
    return dkv_open(client, address, &o, pool);
}

static dkv_status_t
open_client(dkv_client_t **client, const char *address, int timeout_ms,
            apr_pool_t *pool)
{
    return open_client_opts(client, address, timeout_ms, 0, pool);
}

/* A client thread: random writes (unique values) and reads over NKEYS
 * keys until told to stop, with a short pause between operations. */
static void *
loader_main(void *arg)
{
    loader_t *t = arg;
    load_t *l = t->load;
    apr_pool_t *pool, *addr_pool;
    dkv_client_t *client = NULL;
    unsigned seed = (unsigned)(t->id * 7919 + getpid());
    unsigned counter = 0;
    const char *addr;
    int ops = 0;

    if (apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        return NULL;
    }
    apr_pool_create(&addr_pool, NULL);
    addr = cluster_address(l->c, 1 + t->id % l->c->n, 0, addr_pool);
    while (!l->stop && mono_us() < l->deadline_us && ops < 1000000) {
        char value[32];
        int key = (int)(rand_r(&seed) % NKEYS);

        if (client == NULL) {
            if (open_client(&client, addr, 4 * l->c->election_ms + 500,
                            addr_pool) != DKV_OK) {
                client = NULL;
                sleep_ms(50);
                continue;
            }
        }
        if (rand_r(&seed) % 2 == 0) {
            snprintf(value, sizeof value, "c%d-%u", t->id, ++counter);
            (void)do_op(l->h, client, t->id, key, value, NULL, pool);
        } else {
            (void)do_op(l->h, client, t->id, key, NULL, NULL, pool);
        }
        apr_pool_clear(pool);
        ops++;
        sleep_ms(1 + (int)(rand_r(&seed) % 3));
    }
    if (client != NULL) {
        dkv_close(client);
    }
    apr_pool_destroy(addr_pool);
    apr_pool_destroy(pool);
    return NULL;
}

static void
load_start(load_t *l, cluster_t *c, history_t *h, int threads)
{
    int i;

    memset(l, 0, sizeof *l);
    l->c = c;
    l->h = h;
    l->deadline_us = mono_us() + (int64_t)(S.seconds * 4 + 60) * 1000000;
    l->nthreads = threads > MAX_CLIENTS ? MAX_CLIENTS : threads;
    for (i = 0; i < l->nthreads; i++) {
        l->th[i].load = l;
        l->th[i].id = i + 1;
        l->th[i].started = pthread_create(&l->th[i].thread, NULL,
                                          loader_main, &l->th[i]) == 0;
    }
}

static void
load_stop(load_t *l)
{
    int i;

    l->stop = 1;
    for (i = 0; i < l->nthreads; i++) {
        if (l->th[i].started) {
            pthread_join(l->th[i].thread, NULL);
            l->th[i].started = 0;
        }
    }
}

/* Waits at most TIMEOUT_MS for an OK write completed after SINCE_US
 * (monotonic); returns when it happened (us) or -1. */
static int64_t
wait_ok_write(history_t *h, int64_t since_us, int timeout_ms)
{
    int64_t end = mono_us() + (int64_t)timeout_ms * 1000;
    size_t i;

    do {
        int64_t best = -1;
        fop_t first;

        pthread_mutex_lock(&h->lock);
        for (i = h->n; i > 0; i--) {
            const fop_t *op = &h->ops[i - 1];

            if (op->kind == OP_WRITE && op->outcome == OUT_OK
                && op->invoke_us >= since_us
                && (best < 0 || op->complete_us < best)) {
                best = op->complete_us;
                first = *op;
            }
        }
        pthread_mutex_unlock(&h->lock);
        if (best >= 0) {
            vlog("first OK write invoked after %lld us: client %d k%02d "
                 "= %s, invoked %lld, completed %lld (history time)",
                 (long long)(since_us - h->start_us), first.client,
                 first.key, first.value,
                 (long long)(first.invoke_us - h->start_us),
                 (long long)(first.complete_us - h->start_us));
            return best;
        }
        sleep_ms(10);
    } while (mono_us() < end);
    return -1;
}

/* ========================================================== checking */

/* Reads every key once through a fresh client of the healed cluster and
 * records the reads (client 0) so the checker sees the final state.
 * Returns 0 when every key was read. */
static int
final_reads(cluster_t *c, history_t *h)
{
    apr_pool_t *pool;
    dkv_client_t *client = NULL;
    int key, done = 0, tries;
    int64_t end = mono_us() + (int64_t)(10 * c->election_ms + 8000) * 1000;

    apr_pool_create(&pool, NULL);
    while (client == NULL && mono_us() < end) {
        int leader = wait_leader(c, 0, 1000);

        if (open_client(&client, cluster_address(c, leader ? leader : 1, 0,
                                                 pool), 5000, pool)
            != DKV_OK) {
            client = NULL;
            sleep_ms(100);
        }
    }
    for (key = 0; client != NULL && key < NKEYS; key++) {
        for (tries = 0; tries < 50 && mono_us() < end; tries++) {
            dkv_status_t st = do_op(h, client, 0, key, NULL, NULL, pool);

            if (st == DKV_OK || st == DKV_ENOTFOUND) {
                done++;
                break;
            }
            sleep_ms(100);
        }
    }
    if (client != NULL) {
        dkv_close(client);
    }
    apr_pool_destroy(pool);
    return done == NKEYS ? 0 : -1;
}

static int
cmp_invoke(const void *a, const void *b)
{
    const fop_t *x = a, *y = b;

    return x->invoke_us < y->invoke_us ? -1 : x->invoke_us > y->invoke_us;
}

/* Copies the recorded operations into a lincheck history (in invoke
 * order).  INJECT (an index into H->ops, or -1) has its read value
 * replaced by STALE.  Returns NULL when out of memory. */
static lincheck_history_t *
to_lincheck(history_t *h, long inject, const char *stale)
{
    lincheck_history_t *lh = lincheck_history_create();
    size_t i;

    if (lh == NULL) {
        return NULL;
    }
    for (i = 0; i < h->n; i++) {
        const fop_t *op = &h->ops[i];
        const char *out = op->found ? op->value : NULL;
        char k[16];
        size_t id;

        key_name(k, sizeof k, op->key);
        if ((long)i == inject) {
            out = stale;
        }
        if (op->kind == OP_WRITE) {
            id = lincheck_invoke(lh, (unsigned)op->client, LINCHECK_WRITE, k,
                                 strlen(k), op->value, strlen(op->value),
                                 op->invoke_us - h->start_us);
        } else {
            id = lincheck_invoke(lh, (unsigned)op->client, LINCHECK_READ, k,
                                 strlen(k), NULL, 0,
                                 op->invoke_us - h->start_us);
        }
        lincheck_complete(lh, id, op->outcome == OUT_OK ? LINCHECK_OK
                          : op->outcome == OUT_FAIL ? LINCHECK_FAIL
                          : LINCHECK_UNKNOWN, out, out ? strlen(out) : 0,
                          op->complete_us - h->start_us);
    }
    return lh;
}

/* Writes LH to DIR/NAME.jsonl when --history-dir was given. */
static void
save_history(lincheck_history_t *lh, const char *name)
{
    char path[PATHLEN];
    FILE *f;

    if (S.history_dir == NULL) {
        return;
    }
    (void)mkdir(S.history_dir, 0755);
    snprintf(path, sizeof path, "%s/%s.jsonl", S.history_dir, name);
    f = fopen(path, "w");
    if (f == NULL || lincheck_write_jsonl(lh, f) != 0) {
        fprintf(stderr, "fault: cannot write %s\n", path);
    }
    if (f != NULL) {
        fclose(f);
    }
}

/* Checks H (sorted by invoke time first).  Returns the verdict and puts
 * the checker's message in MSG. */
static int
check_history(history_t *h, const char *name, char *msg, size_t size)
{
    lincheck_history_t *lh;
    lincheck_report_t rep;
    int v;

    qsort(h->ops, h->n, sizeof *h->ops, cmp_invoke);
    lh = to_lincheck(h, -1, NULL);
    if (lh == NULL) {
        snprintf(msg, size, "out of memory");
        return LINCHECK_ERROR;
    }
    save_history(lh, name);
    v = lincheck_check(lh, &rep, 60000);
    snprintf(msg, size, "%s", rep.message);
    vlog("%s: checker: verdict %d, %zu ops, %zu checked, %llu steps", name,
         v, rep.ops, rep.ops_checked, (unsigned long long)rep.steps);
    lincheck_history_destroy(lh);
    return v;
}


/* ============================================================ admin */

/* Reads one frame from FD into BUF (CAP bytes); its size, or -1. */
static long
admin_read(int fd, unsigned char *buf, size_t cap)
{
    size_t got = 0, want = 4;

    while (got < want) {
        ssize_t r = recv(fd, buf + got, want - got, 0);

        if (r <= 0) {
            return -1;
        }
        got += (size_t)r;
        if (got == 4 && want == 4) {
            want = 4 + (((size_t)buf[0] << 24) | ((size_t)buf[1] << 16)
                        | ((size_t)buf[2] << 8) | buf[3]);
            if (want > cap) {
                return -1;
            }
        }
    }
    return (long)got;
}

/* Sends REQ on FD and decodes its answer into *RES (in POOL). */
static dkv_status_t
admin_call(int fd, const dkv_request_t *req, dkv_response_t *res,
           apr_pool_t *pool)
{
    static unsigned char in[1 << 20];
    dkv_wbuf_t out;
    dkv_frame_t fr;
    size_t size, off = 0;
    long n;

    dkv_wbuf_init(&out, 0);
    if (dkv_proto_request_encode(&out, req) != DKV_OK) {
        dkv_wbuf_free(&out);
        return DKV_EINVAL;
    }
    while (off < out.len) {
        ssize_t w = send(fd, out.data + off, out.len - off, MSG_NOSIGNAL);

        if (w <= 0) {
            dkv_wbuf_free(&out);
            return DKV_ETRANSPORT;
        }
        off += (size_t)w;
    }
    dkv_wbuf_free(&out);
    n = admin_read(fd, in, sizeof in);
    if (n < 0 || dkv_proto_frame_parse(&fr, &size, in, (size_t)n,
                                       sizeof in) != DKV_OK
        || dkv_proto_response_decode(res, &fr, pool) != DKV_OK) {
        return DKV_ETRANSPORT;
    }
    return res->status;
}

/* Opens the node admin connection (the manager's: loopback, HELLO with
 * the token the store's secret gives) to node ND of C: a socket, or -1. */
static int
admin_open(cluster_t *c, fnode_t *nd, apr_pool_t *pool)
{
    unsigned char secret[32];
    char hex[80], token[65];
    struct sockaddr_in sa;
    struct timeval tv;
    dkv_request_t req;
    dkv_response_t res;
    FILE *f;
    int fd, i;

    f = fopen(c->secret_file, "r");
    if (f == NULL || fgets(hex, sizeof hex, f) == NULL) {
        if (f != NULL) {
            fclose(f);
        }
        return -1;
    }
    fclose(f);
    for (i = 0; i < 32; i++) {
        unsigned v;

        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            return -1;
        }
        secret[i] = (unsigned char)v;
    }
    if (dkv_adminauth_init() != DKV_OK) {
        return -1;
    }
    dkv_admin_node_token(token, secret);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    tv.tv_sec = 10;
    tv.tv_usec = 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)nd->client_port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    memset(&req, 0, sizeof req);
    req.op = DKV_MSG_HELLO;
    req.id = 1;
    req.magic = DKV_PROTO_MAGIC;
    req.min_version = DKV_PROTO_VERSION;
    req.max_version = DKV_PROTO_VERSION;
    req.store = STORE;
    req.token = token;
    req.token_len = strlen(token);
    req.client = "fault-admin";
    if (admin_call(fd, &req, &res, pool) != DKV_OK) {
        vlog("admin HELLO to node %d: %s", nd->id,
             res.message ? res.message : "no answer");
        close(fd);
        return -1;
    }
    return fd;
}

/* MEMBERS of node ND: its voters and learners (-1 when it cannot
 * answer). */
static int
admin_members(cluster_t *c, fnode_t *nd, int *voters, int *learners,
              uint32_t *leader)
{
    apr_pool_t *pool;
    dkv_request_t req;
    dkv_response_t res;
    int fd, rc = -1;
    size_t i;

    *voters = *learners = 0;
    apr_pool_create(&pool, NULL);
    fd = admin_open(c, nd, pool);
    if (fd >= 0) {
        memset(&req, 0, sizeof req);
        req.op = DKV_MSG_MEMBERS;
        req.id = 2;
        if (admin_call(fd, &req, &res, pool) == DKV_OK) {
            for (i = 0; i < res.nmembers; i++) {
                *voters += (res.members[i].roles
                            & DKV_PROTO_MEMBER_VOTER) != 0;
                *learners += (res.members[i].roles
                              & DKV_PROTO_MEMBER_LEARNER) != 0;
            }
            *leader = res.leader;
            rc = 0;
        }
        close(fd);
    }
    apr_pool_destroy(pool);
    return rc;
}

/* ========================================================= scenarios */

typedef struct result {
    int pass;                   /* 1 PASS, 0 FAIL, -1 SKIP */
    char why[1024];
    int leader_changes;
    long leader_ms;             /* kill to new leader (logs), -1 none */
    long write_ms;              /* kill to first OK write, -1 none */
    long catchup_ms;            /* restart to snapshot installed */
    counts_t counts;
} result_t;

static void fail(result_t *r, const char *fmt, ...) DKV_PRINTF(2, 3);

/* Marks R failed; the first reason stays first, later ones are added. */
static void
fail(result_t *r, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    if (r->pass == 0) {
        /* keep the first reason, add the others briefly */
        n = strlen(r->why);
        if (n + 4 < sizeof r->why) {
            snprintf(r->why + n, sizeof r->why - n, "; ");
            va_start(ap, fmt);
            vsnprintf(r->why + n + 2, sizeof r->why - n - 2, fmt, ap);
            va_end(ap);
        }
        return;
    }
    r->pass = 0;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
}

typedef struct scenario scenario_t;

/* What a scenario's body gets: the running cluster, the load and its
 * history. */
typedef struct ctx {
    const scenario_t *sc;
    cluster_t *c;
    history_t *h;
    load_t *load;
    result_t *r;
    char name[64];
    int64_t phase_ms;           /* a third of the load time */
} ctx_t;

struct scenario {
    const char *name;
    int nodes;
    int netns;                  /* needs namespaces (root) */
    void (*run)(ctx_t *x);
    int variant;
};

/* Kills (SIG) node ID at a measured moment and waits for the majority to
 * elect another leader and commit a client write.  Fills leader_ms and
 * write_ms and checks them against two election timeouts. */
static void
measure_failover(ctx_t *x, int old, int64_t t_wall, int64_t t_mono)
{
    leadership_t l;
    int64_t end = mono_us() + (int64_t)(10 * x->c->election_ms + 3000)
        * 1000;
    int64_t w;
    long limit = 2L * x->c->election_ms + 2L * x->c->heartbeat_ms + 100;

    do {
        leadership_read(&l, x->c, t_wall);
        if (l.leader != 0 && l.leader != old && l.first_after >= 0) {
            break;
        }
        sleep_ms(10);
    } while (mono_us() < end);
    if (l.leader == 0 || l.leader == old || l.first_after < 0) {
        fail(x->r, "no new leader within %d ms of the fault",
             10 * x->c->election_ms + 3000);
        return;
    }
    x->r->leader_ms = (long)(l.first_after - t_wall);
    w = wait_ok_write(x->h, t_mono, 10 * x->c->election_ms + 3000);
    x->r->write_ms = w < 0 ? -1 : (long)((w - t_mono) / 1000);
    if (w < 0) {
        fail(x->r, "no write acknowledged after the fault");
    }
    if (x->r->leader_ms > limit) {
        fail(x->r, "new leader %d after %ld ms (limit %ld: two election "
             "timeouts)", l.leader, x->r->leader_ms, limit);
    }
    vlog("%s: new leader %d after %ld ms, first write after %ld ms",
         x->name, l.leader, x->r->leader_ms, x->r->write_ms);
}

/* 1. kill -9 the leader; restart it later as a follower. */
static void
sc_kill_leader(ctx_t *x)
{
    int leader = wait_leader(x->c, 0, 5000);
    int64_t tw, tm;

    sleep_ms((int)x->phase_ms);
    leader = wait_leader(x->c, 0, 5000);
    if (leader == 0) {
        fail(x->r, "no leader before the kill");
        return;
    }
    tw = wall_ms();
    tm = mono_us();
    vlog("%s: kill -9 leader %d", x->name, leader);
    node_stop(node_by_id(x->c, leader), SIGKILL, 5000);
    if (S.replicated) {
        measure_failover(x, leader, tw, tm);
    } else if (node_start(x->c, node_by_id(x->c, leader)) != 0) {
        fail(x->r, "node %d did not restart", leader);
    }
    sleep_ms((int)x->phase_ms);
    if (x->c->nodes[leader - 1].pid <= 0
        && node_start(x->c, node_by_id(x->c, leader)) != 0) {
        fail(x->r, "node %d did not restart", leader);
    }
    sleep_ms((int)x->phase_ms);
}

/* 2. SIGSTOP the leader (variant 0) or a follower (1) for three election
 * timeouts (--stop-elections), then SIGCONT it. */
static void
sc_stop_node(ctx_t *x)
{
    int leader, victim;
    int64_t tw, tm;
    size_t before;

    sleep_ms((int)x->phase_ms);
    leader = wait_leader(x->c, 0, 5000);
    if (leader == 0) {
        fail(x->r, "no leader before the stop");
        return;
    }
    victim = x->sc->variant == 0 ? leader : leader % x->c->n + 1;
    tw = wall_ms();
    tm = mono_us();
    vlog("%s: SIGSTOP node %d (leader %d)", x->name, victim, leader);
    node_pause(node_by_id(x->c, victim));
    if (victim == leader && S.replicated) {
        measure_failover(x, leader, tw, tm);
    }
    sleep_ms(S.stop_elections * x->c->election_ms);
    before = x->h->n;
    if (wait_ok_write(x->h, tm, 5000) < 0) {
        fail(x->r, "no write acknowledged while node %d was stopped",
             victim);
    }
    node_resume(node_by_id(x->c, victim));
    vlog("%s: SIGCONT node %d (%zu ops so far)", x->name, victim, before);
    tm = mono_us();
    sleep_ms((int)x->phase_ms);
    if (wait_ok_write(x->h, tm, 5000) < 0) {
        fail(x->r, "no write acknowledged after node %d resumed", victim);
    }
    if (!node_alive(node_by_id(x->c, victim))) {
        fail(x->r, "node %d exited after SIGCONT", victim);
    }
}

/* Reads every key through a client whose only seed is node ID, with
 * SERIALIZABLE reads (served from that node's own copy) or linearizable
 * ones; KEYS gets "value" or "" per key.  Returns 0 when all were read. */
static int
read_all_from(cluster_t *c, int id, int serializable, char keys[NKEYS][32])
{
    apr_pool_t *pool;
    dkv_client_t *client = NULL;
    fnode_t *nd = node_by_id(c, id);
    int k, n = 0;

    memset(keys, 0, NKEYS * sizeof keys[0]);
    apr_pool_create(&pool, NULL);
    if (open_client_opts(&client, apr_psprintf(pool, "dkv://%s:%d/%s",
                                               nd->host, nd->client_port,
                                               STORE), 5000, serializable,
                         pool)
        != DKV_OK) {
        apr_pool_destroy(pool);
        return -1;
    }
    for (k = 0; k < NKEYS; k++) {
        dkv_item_t *item = NULL;
        char key[16];
        dkv_status_t st;

        key_name(key, sizeof key, k);
        st = dkv_get(&item, client, key, strlen(key), NULL, pool);
        keys[k][0] = '\0';
        if (st == DKV_OK) {
            snprintf(keys[k], 32, "%.*s", (int)item->value_len,
                     (const char *)item->value);
        }
        n += st == DKV_OK || st == DKV_ENOTFOUND;
    }
    dkv_close(client);
    apr_pool_destroy(pool);
    return n == NKEYS ? 0 : -1;
}

/* 3. A follower stopped (SIGTERM) while more than --snapshot-entries
 * entries are committed, started again: it catches up from a snapshot and
 * then serves the same values as the leader. */
static void
sc_snapshot_catchup(ctx_t *x)
{
    int leader, victim, i, seq = 0, tries;
    apr_pool_t *pool;
    dkv_client_t *client = NULL;
    char a[NKEYS][32], b[NKEYS][32];
    int64_t end, restarted = 0, installed;
    int agreed = 0;

    sleep_ms((int)x->phase_ms / 2);
    leader = wait_leader(x->c, 0, 5000);
    if (leader == 0) {
        fail(x->r, "no leader");
        return;
    }
    victim = S.replicated ? leader % x->c->n + 1 : 0;
    if (victim != 0) {
        node_stop(node_by_id(x->c, victim), SIGTERM, 5000);
    }
    /* one sequential writer: one entry per write, so more than
     * --snapshot-entries entries however the load batches */
    apr_pool_create(&pool, NULL);
    if (open_client(&client, cluster_address(x->c, leader, victim, pool),
                    5000, pool) != DKV_OK) {
        fail(x->r, "cannot open a client");
        apr_pool_destroy(pool);
        return;
    }
    end = mono_us() + 60000000;
    for (i = 0; i < 3 * x->c->snapshot_entries && mono_us() < end; i++) {
        char v[32];

        snprintf(v, sizeof v, "s-%d", ++seq);
        if (do_op(x->h, client, 90, i % NKEYS, v, NULL, pool) != DKV_OK) {
            sleep_ms(10);
        }
    }
    dkv_close(client);
    apr_pool_destroy(pool);
    vlog("%s: %d sequential writes with node %d down", x->name, seq,
         victim);
    restarted = wall_ms();
    if (victim != 0 && node_start(x->c, node_by_id(x->c, victim)) != 0) {
        fail(x->r, "node %d did not restart", victim);
        return;
    }
    sleep_ms((int)x->phase_ms);
    load_stop(x->load);
    if (victim == 0) {
        return;
    }
    /* quiet now: the two nodes must agree within ten election timeouts
     * and 3 s (bounded); the time from the restart is reported */
    leader = wait_leader(x->c, 0, 5000);
    end = mono_us() + (int64_t)(10 * x->c->election_ms + 3000) * 1000;
    for (tries = 0; tries < 500 && mono_us() < end; tries++) {
        int ra = read_all_from(x->c, leader, 0, a);
        int rb = read_all_from(x->c, victim, 1, b);

        if (ra == 0 && rb == 0 && memcmp(a, b, sizeof a) == 0) {
            agreed = 1;
            break;
        }
        if (tries % 10 == 0) {
            int k;

            for (k = 0; k < NKEYS && strcmp(a[k], b[k]) == 0; k++) {
                continue;
            }
            vlog("%s: try %d: reads leader %d, node %d; k%02d: \"%s\" vs "
                 "\"%s\"", x->name, tries, ra, rb, k % NKEYS, a[k % NKEYS],
                 b[k % NKEYS]);
        }
        sleep_ms(50);
    }
    /* it could only catch up from a snapshot: the log was compacted */
    installed = log_find(node_by_id(x->c, victim), "installed a snapshot",
                         restarted);
    if (installed < 0) {
        fail(x->r, "restarted node %d did not log \"installed a snapshot\"",
             victim);
    } else {
        x->r->catchup_ms = (long)(installed - restarted);
    }
    if (!agreed) {
        int k, diff = -1, ra = read_all_from(x->c, leader, 0, a);
        int rb = read_all_from(x->c, victim, 1, b);

        for (k = 0; k < NKEYS && ra == 0 && rb == 0; k++) {
            if (strcmp(a[k], b[k]) != 0) {
                diff = k;
                break;
            }
        }
        if (diff < 0) {
            fail(x->r, "restarted node %d served the leader's values only "
                 "after %d ms (the bound)", victim,
                 10 * x->c->election_ms + 3000);
        } else {
            fail(x->r, "restarted node %d does not serve the leader's "
                 "values within %d ms (k%02d: leader \"%s\", node %d "
                 "\"%s\")", victim, 10 * x->c->election_ms + 3000, diff,
                 a[diff], victim, b[diff]);
        }
    }
}

/* 4. Cut the leader off from every other node (the clients still reach
 * it): it must stop acknowledging writes, the majority elects a leader
 * and commits; then heal. */
static void
sc_partition(ctx_t *x)
{
    int leader, newl, i, acked = 0, tried = 0;
    int64_t tw, tm, end;
    apr_pool_t *pool;
    dkv_client_t *client = NULL;
    fnode_t *old;

    sleep_ms((int)x->phase_ms);
    leader = wait_leader(x->c, 0, 5000);
    if (leader == 0) {
        fail(x->r, "no leader before the partition");
        return;
    }
    old = node_by_id(x->c, leader);
    vlog("%s: partition leader %d", x->name, leader);
    if (netns_isolate(x->c, leader, 1) != 0) {
        fail(x->r, "cannot add the partition's routes");
    }
    /* measured from the moment the cut is complete */
    tw = wall_ms();
    tm = mono_us();
    vlog("%s: cut complete at %lld us (history time)", x->name,
         (long long)(tm - x->h->start_us));
    measure_failover(x, leader, tw, tm);
    newl = wait_leader(x->c, leader, 1000);
    /* writes sent to the old leader alone: none may be acknowledged */
    apr_pool_create(&pool, NULL);
    if (open_client(&client, apr_psprintf(pool, "dkv://%s:%d/%s", old->host,
                                          old->client_port, STORE),
                    x->c->election_ms * 2, pool) == DKV_OK) {
        end = mono_us() + (int64_t)x->phase_ms * 1000;
        for (i = 0; i < 20 && mono_us() < end; i++) {
            char v[32];
            fop_t op;

            snprintf(v, sizeof v, "m-%d", i);
            if (do_op(x->h, client, 80, i % NKEYS, v, &op, pool) == DKV_OK) {
                acked++;
            }
            tried++;
        }
        dkv_close(client);
    }
    apr_pool_destroy(pool);
    if (acked > 0) {
        fail(x->r, "old leader %d acknowledged %d of %d writes while cut "
             "off", leader, acked, tried);
    }
    vlog("%s: %d writes to the old leader, %d acknowledged; new leader %d",
         x->name, tried, acked, newl);
    tm = mono_us();
    sleep_ms((int)x->phase_ms / 2);
    if (wait_ok_write(x->h, tm, 5000) < 0) {
        fail(x->r, "the majority committed nothing");
    }
    /* check-quorum: the old leader steps down by itself (bounded) */
    if (!wait_log(old, "stepped down", tw, 4 * x->c->election_ms)) {
        fail(x->r, "old leader %d did not log \"stepped down\" while cut "
             "off", leader);
    }
    if (netns_isolate(x->c, leader, 0) != 0) {
        fail(x->r, "cannot remove the partition's routes");
    }
    sleep_ms((int)x->phase_ms / 2);
}

/* 5. Stop every node (SIGTERM: variant 0, kill -9: 1) and start them
 * again: everything acknowledged is there (the final reads). */
static void
sc_restart_all(ctx_t *x)
{
    int i, k, sig = x->sc->variant == 0 ? SIGTERM : SIGKILL;
    int leader;
    int64_t tm, t0;

    sleep_ms((int)x->phase_ms);
    /* the followers first, the leader last: it loses its quorum with
     * writes in flight and must still stop promptly */
    leader = wait_leader(x->c, 0, 5000);
    for (k = 0; k < x->c->n; k++) {
        fnode_t *nd;
        int st;

        i = (leader + k) % x->c->n;
        nd = &x->c->nodes[i];
        t0 = mono_us();
        st = node_stop(nd, sig, STOP_WAIT_MS);
        if (sig == SIGTERM && (st == -1 || !WIFEXITED(st)
                               || WEXITSTATUS(st) != 0)) {
            fail(x->r, "node %d%s did not exit 0 within 5 s of SIGTERM "
                 "(status 0x%x)", nd->id,
                 nd->id == leader ? " (the leader, stopped last)" : "", st);
        }
        vlog("%s: node %d stopped in %lld ms", x->name, nd->id,
             (long long)((mono_us() - t0) / 1000));
    }
    vlog("%s: all nodes stopped", x->name);
    sleep_ms(200);
    tm = mono_us();
    if (cluster_start(x->c) != 0) {
        fail(x->r, "the nodes did not start again");
        return;
    }
    if (wait_leader(x->c, 0, 20 * x->c->election_ms) == 0) {
        fail(x->r, "no leader after the restart");
    }
    if (wait_ok_write(x->h, tm, 10000) < 0) {
        fail(x->r, "no write acknowledged after the restart");
    }
    sleep_ms((int)x->phase_ms);
}

/* No fault; afterwards (see run_scenario) one read is made stale. */
static void
sc_plain(ctx_t *x)
{
    sleep_ms((int)(3 * x->phase_ms));
}

/* Finds a read R of key K that returned the value of write W2 (OK), where
 * an earlier OK write W1 of K completed before W2 was invoked and W2
 * completed before R was invoked: reporting W1's value for R is a stale
 * read no order can explain.  Returns R's index, STALE set, or -1. */
static long
find_stale_candidate(const history_t *h, const char **stale)
{
    size_t r, i, j;

    for (r = h->n; r > 0; r--) {
        const fop_t *rd = &h->ops[r - 1];

        if (rd->kind != OP_READ || rd->outcome != OUT_OK || !rd->found) {
            continue;
        }
        for (i = 0; i < h->n; i++) {
            const fop_t *w2 = &h->ops[i];

            if (w2->kind != OP_WRITE || w2->outcome != OUT_OK
                || w2->key != rd->key || strcmp(w2->value, rd->value) != 0
                || w2->complete_us >= rd->invoke_us) {
                continue;
            }
            for (j = 0; j < h->n; j++) {
                const fop_t *w1 = &h->ops[j];

                if (w1->kind == OP_WRITE && w1->outcome == OUT_OK
                    && w1->key == rd->key
                    && w1->complete_us < w2->invoke_us) {
                    *stale = w1->value;
                    return (long)(r - 1);
                }
            }
        }
    }
    return -1;
}

/* The stale-read scenario's second half: the checker must reject the
 * recorded (linearizable) history with one read made stale. */
static void
check_injected(ctx_t *x)
{
    const char *stale = NULL;
    long at = find_stale_candidate(x->h, &stale);
    lincheck_history_t *lh;
    lincheck_report_t rep;
    int v;

    if (at < 0) {
        fail(x->r, "no read to make stale");
        return;
    }
    lh = to_lincheck(x->h, at, stale);
    if (lh == NULL) {
        fail(x->r, "out of memory");
        return;
    }
    v = lincheck_check(lh, &rep, 60000);
    vlog("%s: injected stale read of k%02d (\"%s\" instead of \"%s\"): "
         "verdict %d: %s", x->name, x->h->ops[at].key, stale,
         x->h->ops[at].value, v, rep.message);
    if (v != LINCHECK_VIOLATION) {
        fail(x->r, "the checker accepted a history with a stale read "
             "(verdict %d)", v);
    }
    {
        char name[80];

        snprintf(name, sizeof name, "%s-injected", x->name);
        save_history(lh, name);
    }
    lincheck_history_destroy(lh);
}

/* 6. Time across a leader change: a lease (with a key) and a key with a
 * TTL, granted just before the leader is killed with SIGKILL.  Through
 * the new leader they must live their whole time (a leader change never
 * cuts them short: expiry times are replicated state, and a new leader
 * waits an election timeout before it expires anything), and be gone
 * soon after (within two election timeouts more); a second lease kept
 * alive through the new leader outlives the first and reports a
 * remaining time no longer than its TTL. */
static void
sc_lease_failover(ctx_t *x)
{
    int leader, i;
    int64_t ttl = 4 * (int64_t)x->c->election_ms, t0, t1, end, now;
    uint64_t lease = 0, kept = 0;
    int64_t remaining = -1;
    apr_pool_t *pool;
    dkv_client_t *client = NULL;
    dkv_put_opts_t po;
    dkv_status_t st;

    sleep_ms((int)x->phase_ms);
    leader = wait_leader(x->c, 0, 5000);
    if (leader == 0) {
        fail(x->r, "no leader before the kill");
        return;
    }
    apr_pool_create(&pool, NULL);
    /* Through the others only: the leader is about to die. */
    if (open_client(&client, cluster_address(x->c, 1, leader, pool), 5000,
                    pool) != DKV_OK) {
        fail(x->r, "cannot open a client: %s", dkv_last_error());
        apr_pool_destroy(pool);
        return;
    }
    t0 = mono_us();
    st = dkv_lease_grant(&lease, client, ttl);
    if (st == DKV_OK) {
        st = dkv_lease_grant(&kept, client, ttl);
    }
    memset(&po, 0, sizeof po);
    po.lease = lease;
    if (st == DKV_OK) {
        st = dkv_put(NULL, client, "lease:k", 7, "v", 1, &po);
    }
    po.lease = kept;
    if (st == DKV_OK) {
        st = dkv_put(NULL, client, "kept:k", 6, "v", 1, &po);
    }
    memset(&po, 0, sizeof po);
    po.ttl_ms = ttl;
    if (st == DKV_OK) {
        st = dkv_put(NULL, client, "ttl:k", 5, "v", 1, &po);
    }
    t1 = mono_us();
    if (st != DKV_OK) {
        fail(x->r, "lease setup: %s", dkv_last_error());
        goto done;
    }
    vlog("%s: leases %llu, %llu (ttl %lld ms); kill -9 leader %d",
         x->name, (unsigned long long)lease, (unsigned long long)kept,
         (long long)ttl, leader);
    node_stop(node_by_id(x->c, leader), SIGKILL, 5000);

    /* Alive until t1 + ttl - margin (every grant and put was invoked
     * after t0 and took effect before t1); the kept lease is renewed
     * through the new leader on the way. */
    end = t1 + (ttl - 300) * 1000;
    for (i = 0; i < 1000 && (now = mono_us()) < end; i++) {
        dkv_item_t *it = NULL;

        if (remaining < 0 && now > t1 + ttl * 500) {
            st = dkv_lease_keepalive(&remaining, client, kept);
            if (st != DKV_OK) {
                fail(x->r, "keepalive through the new leader: %s",
                     dkv_last_error());
                goto done;
            }
            if (remaining <= 0 || remaining > ttl) {
                fail(x->r, "keepalive: remaining %lld ms (ttl %lld)",
                     (long long)remaining, (long long)ttl);
            }
        }
        st = dkv_get(&it, client, "lease:k", 7, NULL, pool);
        if (st == DKV_OK) {
            st = dkv_get(&it, client, "ttl:k", 5, NULL, pool);
        }
        if (st == DKV_ENOTFOUND && mono_us() < end) {
            fail(x->r, "a key expired %lld ms after its grant, before its "
                 "ttl of %lld ms: cut short by the leader change",
                 (long long)((mono_us() - t0) / 1000), (long long)ttl);
            goto done;
        }
        sleep_ms(50);
    }
    /* Gone by t0 + ttl + two election timeouts + margin. */
    end = t0 + (ttl + 2 * (int64_t)x->c->election_ms + 1500) * 1000;
    for (i = 0; i < 1000; i++) {
        dkv_item_t *it = NULL;
        dkv_status_t a = dkv_get(&it, client, "lease:k", 7, NULL, pool);
        dkv_status_t b = dkv_get(&it, client, "ttl:k", 5, NULL, pool);

        if (a == DKV_ENOTFOUND && b == DKV_ENOTFOUND) {
            vlog("%s: both expired %lld ms after the grant", x->name,
                 (long long)((mono_us() - t0) / 1000));
            break;
        }
        if (mono_us() >= end) {
            fail(x->r, "keys still there %lld ms after a grant of %lld ms",
                 (long long)((mono_us() - t0) / 1000), (long long)ttl);
            goto done;
        }
        sleep_ms(50);
    }
    {
        dkv_item_t *it = NULL;

        /* Renewed at about t1 + ttl/2: still alive now. */
        if (dkv_get(&it, client, "kept:k", 6, NULL, pool) != DKV_OK) {
            fail(x->r, "the key of the renewed lease is gone: %s",
                 dkv_last_error());
        }
    }
done:
    dkv_close(client);
    apr_pool_destroy(pool);
    if (x->c->nodes[leader - 1].pid <= 0
        && node_start(x->c, node_by_id(x->c, leader)) != 0) {
        fail(x->r, "node %d did not restart", leader);
    }
    sleep_ms((int)x->phase_ms);
}

/* 7. Watches on every node see the same events with the same
 * revisions: a prefix watch through each node while writes and deletes
 * go through all of them, with the leader killed half-way (the watch of
 * the killed node's client resumes on another node from its last
 * revision, which only works because revisions are the same
 * everywhere).  Every watch must deliver exactly the same sequence. */
#define WATCH_OPS 120
#define WATCH_MAX (2 * WATCH_OPS)

typedef struct wrec {
    pthread_mutex_t lock;
    int n;
    int bad;                     /* an error event, or too many */
    uint64_t rev[WATCH_MAX];
    char key[WATCH_MAX][12];
    int type[WATCH_MAX];
} wrec_t;

static void
watch_record(void *baton, const dkv_event_t *ev)
{
    wrec_t *w = baton;

    pthread_mutex_lock(&w->lock);
    if (ev->type == DKV_EVENT_ERROR || w->n == WATCH_MAX) {
        w->bad = 1;
    } else {
        w->rev[w->n] = ev->revision;
        w->type[w->n] = (int)ev->type;
        snprintf(w->key[w->n], sizeof w->key[0], "%.*s",
                 (int)ev->key_len, (const char *)ev->key);
        w->n++;
    }
    pthread_mutex_unlock(&w->lock);
}

static void
sc_watch_all(ctx_t *x)
{
    enum { NW = 3 };
    static wrec_t rec[NW];
    dkv_client_t *cl[NW] = { NULL, NULL, NULL };
    dkv_watch_t *wt[NW] = { NULL, NULL, NULL };
    dkv_watch_opts_t wo;
    apr_pool_t *pool;
    int i, k, leader, expect = 0, tries;
    char key[16];

    apr_pool_create(&pool, NULL);
    memset(&wo, 0, sizeof wo);
    wo.prefix = 1;
    leader = wait_leader(x->c, 0, 5000);
    for (i = 0; i < NW; i++) {
        fnode_t *nd = &x->c->nodes[i];

        memset(&rec[i], 0, sizeof rec[i]);
        pthread_mutex_init(&rec[i].lock, NULL);
        if (open_client(&cl[i], apr_psprintf(pool, "dkv://%s:%d/%s",
                                             nd->host, nd->client_port,
                                             STORE), 5000, pool) != DKV_OK
            || dkv_watch_start(&wt[i], cl[i], "w:", 2, &wo, watch_record,
                               &rec[i]) != DKV_OK) {
            fail(x->r, "watch through node %d: %s", nd->id,
                 dkv_last_error());
            goto done;
        }
    }
    for (k = 0; k < WATCH_OPS; k++) {
        /* Writes avoid the killed node's client (a write in flight on a
         * dying connection has an unknown outcome); its watch stays. */
        dkv_client_t *c = cl[k >= WATCH_OPS / 2 && k % NW == leader - 1
                             ? (k + 1) % NW : k % NW];
        dkv_status_t st;

        if (k == WATCH_OPS / 2) {
            vlog("%s: kill -9 leader %d", x->name, leader);
            node_stop(node_by_id(x->c, leader), SIGKILL, 5000);
        }
        snprintf(key, sizeof key, "w:%03d", k % 40);
        /* A write refused for a while (no leader) is resent by the
         * client; one whose outcome is unknown ends the scenario. */
        if (k % 5 == 4) {
            st = dkv_delete(NULL, c, key, strlen(key), NULL);
        } else {
            st = dkv_put(NULL, c, key, strlen(key), "v", 1, NULL);
        }
        if (st == DKV_OK) {
            expect++;
        } else if (st != DKV_ENOTFOUND) {
            fail(x->r, "write %d: %s", k, dkv_last_error());
            goto done;
        }
    }
    /* Every watch gets every event, then they must agree. */
    for (tries = 0; tries < 200; tries++) {
        int ready = 0;

        for (i = 0; i < NW; i++) {
            pthread_mutex_lock(&rec[i].lock);
            ready += rec[i].n >= expect;
            pthread_mutex_unlock(&rec[i].lock);
        }
        if (ready == NW) {
            break;
        }
        sleep_ms(50);
    }
    for (i = 0; i < NW; i++) {
        pthread_mutex_lock(&rec[i].lock);
    }
    for (i = 0; i < NW && x->r->why[0] == '\0'; i++) {
        if (rec[i].bad || rec[i].n != expect) {
            fail(x->r, "the watch through node %d delivered %d events "
                 "(%d writes took effect)%s", i + 1, rec[i].n, expect,
                 rec[i].bad ? ", and an error" : "");
            break;
        }
        for (k = 0; k < expect; k++) {
            if (rec[i].rev[k] != rec[0].rev[k]
                || rec[i].type[k] != rec[0].type[k]
                || strcmp(rec[i].key[k], rec[0].key[k]) != 0
                || (k > 0 && rec[i].rev[k] <= rec[i].rev[k - 1])) {
                fail(x->r, "watch event %d differs: node 1 %s@%llu, node "
                     "%d %s@%llu", k, rec[0].key[k],
                     (unsigned long long)rec[0].rev[k], i + 1,
                     rec[i].key[k], (unsigned long long)rec[i].rev[k]);
                break;
            }
        }
    }
    for (i = 0; i < NW; i++) {
        pthread_mutex_unlock(&rec[i].lock);
    }
    vlog("%s: %d events, the same on every node's watch", x->name,
         expect);
done:
    for (i = 0; i < NW; i++) {
        dkv_watch_stop(wt[i]);
        dkv_close(cl[i]);
    }
    apr_pool_destroy(pool);
    if (leader > 0 && x->c->nodes[leader - 1].pid <= 0
        && node_start(x->c, node_by_id(x->c, leader)) != 0) {
        fail(x->r, "node %d did not restart", leader);
    }
    sleep_ms((int)x->phase_ms);
}


/* Bytes in the line of LOG (after AFTER) that says a snapshot was sent
 * to node ID: "... sent to node ID (N bytes)"; -1 when none. */
static long long
snapshot_bytes(fnode_t *nd, int id, int64_t after)
{
    char line[1024], pat[64];
    long long bytes = -1;
    FILE *f = fopen(nd->log_file, "r");

    if (f == NULL) {
        return -1;
    }
    snprintf(pat, sizeof pat, "sent to node %d (", id);
    while (fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, pat);

        if (p != NULL && log_time(line) >= after) {
            bytes = strtoll(p + strlen(pat), NULL, 10);
        }
    }
    fclose(f);
    return bytes;
}

/* 10. A store of N-1 nodes under load grows: node N starts with --join
 * (and --peers of all N), a follower gets MEMBER_ADD over its admin
 * connection (forwarded to the leader); node N must catch up and be a
 * voter within a bound, serve the acknowledged writes (linearizable
 * reads through it, in the history), then the old leader is killed and
 * the store goes on with node N in every majority. */
static void
sc_add_member(ctx_t *x)
{
    cluster_t *c = x->c;
    fnode_t *nd = &c->nodes[c->n - 1];
    int leader, follower, fd, voters = 0, learners = 0, k, tries;
    int64_t t0, t_added = -1, t_voter = -1, end;
    uint32_t seen_leader = 0;
    long long bytes;
    apr_pool_t *pool;
    dkv_client_t *client = NULL;
    dkv_request_t req;
    dkv_response_t res;
    dkv_status_t st = DKV_ETRANSPORT;

    sleep_ms((int)x->phase_ms / 2);
    leader = wait_leader(c, 0, 5000);
    if (leader == 0) {
        fail(x->r, "no leader before the new node");
        return;
    }
    follower = leader % (c->n - 1) + 1;
    t0 = wall_ms();
    if (node_start(c, nd) != 0) {
        fail(x->r, "node %d (--join) did not start", nd->id);
        return;
    }
    apr_pool_create(&pool, NULL);
    end = mono_us() + 15000000;
    for (tries = 0; tries < 20 && mono_us() < end; tries++) {
        fd = admin_open(c, node_by_id(c, follower), pool);
        if (fd < 0) {
            sleep_ms(200);
            continue;
        }
        memset(&req, 0, sizeof req);
        req.op = DKV_MSG_MEMBER_ADD;
        req.id = 7;
        req.member_id = (uint32_t)nd->id;
        req.member_host = nd->host;
        req.member_cluster_port = (uint16_t)nd->cluster_port;
        req.member_client_port = (uint16_t)nd->client_port;
        st = admin_call(fd, &req, &res, pool);
        close(fd);
        vlog("%s: MEMBER_ADD %d to follower %d: %s %s", x->name, nd->id,
             follower, dkv_strerror(st), st == DKV_OK ? "" : res.message);
        if (st == DKV_OK) {
            t_added = wall_ms();
            break;
        }
        sleep_ms(200);
    }
    apr_pool_destroy(pool);
    if (st != DKV_OK) {
        fail(x->r, "MEMBER_ADD through follower %d failed: %s", follower,
             dkv_strerror(st));
        return;
    }
    /* a voter within ten election timeouts and 5 s */
    end = mono_us() + (int64_t)(10 * c->election_ms + 5000) * 1000;
    for (tries = 0; tries < 1000 && mono_us() < end; tries++) {
        if (admin_members(c, nd, &voters, &learners, &seen_leader) == 0
            && voters == c->n && learners == 0) {
            t_voter = wall_ms();
            break;
        }
        sleep_ms(20);
    }
    if (t_voter < 0) {
        fail(x->r, "node %d shows %d voters and %d learners, not %d "
             "voters, %d ms after it was added", nd->id, voters, learners,
             c->n, 10 * c->election_ms + 5000);
        return;
    }
    x->r->catchup_ms = (long)(t_voter - t0);
    bytes = snapshot_bytes(node_by_id(c, leader), nd->id, t0);
    vlog("%s: node %d added %lld ms after its start, a voter after %lld "
         "ms; snapshot %lld bytes", x->name, nd->id,
         (long long)(t_added - t0), (long long)(t_voter - t0), bytes);
    if (log_find(nd, "installed a snapshot", t0) < 0) {
        fail(x->r, "node %d did not catch up from a snapshot", nd->id);
    }

    /* Linearizable reads through node N alone, in the history: they see
     * every write acknowledged before them. */
    apr_pool_create(&pool, NULL);
    if (open_client(&client, apr_psprintf(pool, "dkv://%s:%d/%s", nd->host,
                                          nd->client_port, STORE), 5000,
                    pool) != DKV_OK) {
        fail(x->r, "cannot open a client of node %d", nd->id);
        apr_pool_destroy(pool);
        return;
    }
    for (k = 0; k < NKEYS; k++) {
        st = do_op(x->h, client, 95, k, NULL, NULL, pool);
        if (st != DKV_OK && st != DKV_ENOTFOUND) {
            fail(x->r, "read of k%02d through node %d: %s", k, nd->id,
                 dkv_strerror(st));
            break;
        }
    }
    dkv_close(client);
    apr_pool_destroy(pool);

    /* The old leader dies: with N voters, every majority of the others
     * includes node N. */
    leader = wait_leader(c, 0, 5000);
    if (leader == 0 || leader == nd->id) {
        vlog("%s: leader is %d; killing node 1 instead", x->name, leader);
        leader = leader == 1 ? 2 : 1;
    }
    {
        int64_t tw = wall_ms(), tm = mono_us();

        vlog("%s: kill -9 leader %d", x->name, leader);
        node_stop(node_by_id(c, leader), SIGKILL, 5000);
        measure_failover(x, leader, tw, tm);
    }
    sleep_ms((int)x->phase_ms);
    if (!node_alive(nd)) {
        fail(x->r, "node %d exited", nd->id);
    }
}

static const scenario_t scenarios[] = {
    { "kill-leader", 3, 0, sc_kill_leader, 0 },
    { "restart-all-term", 3, 0, sc_restart_all, 0 },
    { "restart-all-kill", 3, 0, sc_restart_all, 1 },
    { "stop-leader", 3, 0, sc_stop_node, 0 },
    { "stop-follower", 3, 0, sc_stop_node, 1 },
    { "snapshot-catchup", 3, 0, sc_snapshot_catchup, 0 },
    { "partition-leader", 3, 1, sc_partition, 0 },
    { "kill-leader", 5, 0, sc_kill_leader, 0 },
    { "partition-leader", 5, 1, sc_partition, 0 },
    { "stale-read", 3, 0, sc_plain, 0 },
    { "lease-failover", 3, 0, sc_lease_failover, 0 },
    { "watch-all-nodes", 3, 0, sc_watch_all, 0 },
    { "add-member", 4, 0, sc_add_member, 0 }
};

#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

/* Runs one scenario: cluster up, load, the fault, heal, final reads,
 * checker. */
static void
run_scenario(const scenario_t *sc, int nodes, result_t *r)
{
    cluster_t c;
    history_t h;
    load_t load;
    ctx_t x;
    leadership_t l;
    char msg[1024];
    int v, i;

    memset(r, 0, sizeof *r);
    r->pass = 1;
    r->leader_ms = -1;
    r->write_ms = -1;
    r->catchup_ms = -1;
    memset(&x, 0, sizeof x);
    snprintf(x.name, sizeof x.name, "%s-%d", sc->name, nodes);
    if (!S.replicated) {
        nodes = 1;
    }
    if (sc->netns && (geteuid() != 0 || sh("ip netns list") != 0)) {
        r->pass = -1;
        snprintf(r->why, sizeof r->why, "needs root and `ip netns`");
        return;
    }
    if (sc->netns && !S.replicated) {
        r->pass = -1;
        snprintf(r->why, sizeof r->why, "needs replication");
        return;
    }
    if (cluster_init(&c, x.name, nodes, sc->netns) != 0) {
        fail(r, "cannot set up the cluster (%s)", strerror(errno));
        cluster_destroy(&c);
        return;
    }
    history_init(&h);
    if (sc->run == sc_add_member) {
        if (!S.replicated) {
            r->pass = -1;
            snprintf(r->why, sizeof r->why, "needs replication");
            goto done;
        }
        cluster_defer(&c, nodes - 1);
    }
    if (cluster_start(&c) != 0) {
        fail(r, "the nodes did not start");
        goto done;
    }
    if (wait_leader(&c, 0, 20 * c.election_ms + 5000) == 0) {
        fail(r, "no leader elected at start");
        goto done;
    }
    x.sc = sc;
    x.c = &c;
    x.h = &h;
    x.load = &load;
    x.r = r;
    x.phase_ms = (int64_t)(S.seconds * 1000 / 3);
    load_start(&load, &c, &h, S.clients);
    sc->run(&x);
    load_stop(&load);
    /* heal: every node running and resumed; a node that should run but
     * exited on its own fails the scenario */
    for (i = 0; i < c.n; i++) {
        node_resume(&c.nodes[i]);
        if (c.nodes[i].pid > 0 && !node_alive(&c.nodes[i])) {
            fail(r, "node %d exited on its own during the scenario (see "
                 "%s)", c.nodes[i].id, c.nodes[i].out_file);
        }
        if (c.nodes[i].pid <= 0) {
            if (node_start(&c, &c.nodes[i]) != 0) {
                fail(r, "node %d did not start again", c.nodes[i].id);
            }
        }
    }
    if (wait_leader(&c, 0, 20 * c.election_ms + 5000) == 0) {
        fail(r, "no leader after healing");
    }
    if (final_reads(&c, &h) != 0) {
        fail(r, "the final reads failed");
    }
    if (h.unexpected > 0) {
        fail(r, "%u unexpected statuses, the first %d (%s)", h.unexpected,
             (int)h.first_unexpected, dkv_strerror(h.first_unexpected));
    }
    v = check_history(&h, x.name, msg, sizeof msg);
    if (v != LINCHECK_OK) {
        fail(r, "checker verdict %d: %s", v, msg);
    }
    if (sc->run == sc_plain && v == LINCHECK_OK) {
        check_injected(&x);
    }
    leadership_read(&l, &c, 0);
    r->leader_changes = l.elections > 0 ? l.elections - 1 : 0;
    for (i = 0; i < c.n; i++) {
        if (!node_alive(&c.nodes[i])) {
            fail(r, "node %d exited (see %s)", c.nodes[i].id,
                 c.nodes[i].out_file);
        }
    }
done:
    history_counts(&r->counts, &h);
    if (r->pass != 1) {
        fprintf(stderr, "fault: %s: node files kept in %s\n", x.name, c.dir);
        S.keep = 1;
    }
    cluster_destroy(&c);
    history_free(&h);
}

/* ============================================================== main */

static void
usage(FILE *f)
{
    size_t i;

    fprintf(f, "usage: fault [--scenario NAME] [--nodes N] [--seconds S]\n"
            "             [--election-timeout MS] [--heartbeat MS]\n"
            "             [--clients N] [--snapshot-entries N]\n"
            "             [--history-dir DIR] [--netns-prefix P] [--keep]\n"
            "             [--budget S] [--stop-elections N]\n"
            "             [--list] [--verbose] [--node-debug]\nscenarios:");
    for (i = 0; i < NSCENARIOS; i++) {
        fprintf(f, " %s/%d", scenarios[i].name, scenarios[i].nodes);
    }
    fprintf(f, "\n");
}

/* 1 when the dkv-node program knows --peers (replication is built). */
static int
node_replicates(void)
{
    char cmd[PATHLEN + 64];
    char line[512];
    FILE *p;
    int found = 0;

    snprintf(cmd, sizeof cmd, "'%s' --help 2>&1", S.node_path);
    p = popen(cmd, "r");
    if (p == NULL) {
        return 0;
    }
    while (fgets(line, sizeof line, p) != NULL) {
        found |= strstr(line, "--peers") != NULL;
    }
    pclose(p);
    return found;
}

static int
parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* With --nodes N: 1 when SC runs, either because it is a scenario of N
 * nodes or, when its name has none of N, because it is the first entry
 * of its name (run with N nodes). */
static int
wanted_nodes(const scenario_t *sc)
{
    size_t i;

    if (sc->nodes == S.nodes) {
        return 1;
    }
    for (i = 0; i < NSCENARIOS; i++) {
        if (strcmp(scenarios[i].name, sc->name) == 0
            && scenarios[i].nodes == S.nodes) {
            return 0;
        }
    }
    for (i = 0; i < NSCENARIOS; i++) {
        if (strcmp(scenarios[i].name, sc->name) == 0) {
            return &scenarios[i] == sc;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static char prefix[64];
    size_t i;
    int a, ran = 0, passed = 0, skipped = 0;
    const char *tmp = getenv("TMPDIR");
    int64_t run_start = mono_us();

    for (a = 1; a < argc; a++) {
        const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        int bad = 0;

        if (strcmp(o, "--list") == 0 || strcmp(o, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(o, "--keep") == 0) {
            S.keep = 1;
            continue;
        } else if (strcmp(o, "--verbose") == 0) {
            S.verbose = 1;
            continue;
        } else if (strcmp(o, "--node-debug") == 0) {
            S.node_debug = 1;
            continue;
        } else if (v == NULL) {
            bad = 1;
        } else if (strcmp(o, "--scenario") == 0) {
            S.only = v;
        } else if (strcmp(o, "--nodes") == 0) {
            bad = parse_int(v, 1, MAX_NODES, &S.nodes);
        } else if (strcmp(o, "--seconds") == 0) {
            S.seconds = strtod(v, NULL);
            bad = !(S.seconds >= 0.5 && S.seconds <= 3600);
        } else if (strcmp(o, "--election-timeout") == 0) {
            bad = parse_int(v, 20, 60000, &S.election_ms);
        } else if (strcmp(o, "--heartbeat") == 0) {
            bad = parse_int(v, 5, 10000, &S.heartbeat_ms);
        } else if (strcmp(o, "--clients") == 0) {
            bad = parse_int(v, 1, MAX_CLIENTS, &S.clients);
        } else if (strcmp(o, "--snapshot-entries") == 0) {
            bad = parse_int(v, 10, 1000000, &S.snapshot_entries);
        } else if (strcmp(o, "--stop-elections") == 0) {
            bad = parse_int(v, 1, 100, &S.stop_elections);
        } else if (strcmp(o, "--budget") == 0) {
            bad = parse_int(v, 1, 86400, &S.budget_s);
        } else if (strcmp(o, "--history-dir") == 0) {
            S.history_dir = v;
        } else if (strcmp(o, "--netns-prefix") == 0) {
            S.netns_prefix = v;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "fault: bad option %s %s\n", o, v ? v : "");
            usage(stderr);
            return 2;
        }
        a++;
    }
    if (S.netns_prefix == NULL) {
        snprintf(prefix, sizeof prefix, "dkvf%d", (int)(getpid() % 100000));
        S.netns_prefix = prefix;
    }
    S.node_path = getenv("DKV_NODE");
    if (S.node_path == NULL || *S.node_path == '\0') {
        S.node_path = "./dkv-node";
    }
    if (access(S.node_path, X_OK) != 0) {
        printf("SKIP: %s not found (set DKV_NODE)\n", S.node_path);
        return 77;
    }
    {
        static char abs_path[PATHLEN];

        if (realpath(S.node_path, abs_path) != NULL) {
            S.node_path = abs_path;
        }
    }
    S.replicated = node_replicates();
    if (!S.replicated) {
        printf("fault: %s has no --peers: replication not built; running "
               "the scenarios on single nodes\n", S.node_path);
    }
    if (apr_initialize() != APR_SUCCESS) {
        return 1;
    }
    signal(SIGTERM, on_fatal_signal);
    signal(SIGINT, on_fatal_signal);
    signal(SIGHUP, on_fatal_signal);
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)(getpid() ^ time(NULL)));
    snprintf(tmp_root, sizeof tmp_root, "%s/dkv-fault-XXXXXX",
             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(tmp_root) == NULL) {
        fprintf(stderr, "fault: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    for (i = 0; i < NSCENARIOS; i++) {
        const scenario_t *sc = &scenarios[i];
        int nodes = S.nodes ? S.nodes : sc->nodes;
        result_t r;
        int64_t t0;

        if (S.only != NULL && strcmp(S.only, sc->name) != 0) {
            continue;
        }
        if (S.nodes && !wanted_nodes(sc)) {
            continue;
        }
        t0 = mono_us();
        if (t0 - run_start > (int64_t)S.budget_s * 1000000) {
            printf("fault: %-18s %d nodes: FAIL: not run (the run's time "
                   "budget, --budget %d s, is spent)\n", sc->name, nodes,
                   S.budget_s);
            ran++;
            continue;
        }
        run_scenario(sc, nodes, &r);
        if (r.pass < 0) {
            printf("fault: %-18s %d nodes: SKIP (%s)\n", sc->name, nodes,
                   r.why);
            skipped++;
            continue;
        }
        ran++;
        passed += r.pass == 1;
        printf("fault: %-18s %d nodes: ops ok %zu (w %zu r %zu) fail %zu "
               "unknown %zu, leader changes %d, new leader %ld ms, "
               "first write %ld ms", sc->name, S.replicated ? nodes : 1,
               r.counts.ok, r.counts.writes_ok, r.counts.reads_ok,
               r.counts.fail, r.counts.unknown, r.leader_changes,
               r.leader_ms, r.write_ms);
        if (r.catchup_ms >= 0) {
            printf(", snapshot installed %ld ms after restart",
                   r.catchup_ms);
        }
        printf(", %.1f s: %s%s%s\n", (double)(mono_us() - t0) / 1e6,
               r.pass ? "PASS" : "FAIL", r.pass ? "" : ": ",
               r.pass ? "" : r.why);
        fflush(stdout);
    }
    if (skipped) {
        printf("fault: %d scenarios, %d passed, %d skipped\n", ran, passed,
               skipped);
    } else {
        printf("fault: %d scenarios, %d passed\n", ran, passed);
    }
    if (!S.keep) {
        rm_tree(tmp_root);
    } else {
        printf("fault: files kept in %s\n", tmp_root);
    }
    apr_terminate();
    if (ran == 0) {
        return 77;
    }
    return passed == ran ? 0 : 1;
}
