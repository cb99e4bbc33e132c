/*
 * main.c -- dkv-node, the server of one store instance: reads its settings
 * (flags and an optional config file), opens its log, its client port and
 * its store (the engine on LMDB), starts the request service and runs the
 * event loop until SIGTERM/SIGINT (or the Windows console equivalents),
 * then shuts down gracefully.
 *
 * Exit status: 0 after a graceful stop, 1 when the node cannot start (port
 * in use, store unusable), 2 for bad settings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "dkv.h"
#include "common/adminauth.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/status.h"
#include "engine/engine.h"
#include "node/net.h"
#include "node/service.h"
#include "platform/platform.h"

#define PROG "dkv-node"
/* Longest access token accepted from --token-file. */
#define TOKEN_MAX 4096
#define MIB (1024u * 1024u)

typedef struct settings {
    const char *config;
    const char *store;
    const char *instance;
    const char *data_dir;
    const char *bind;
    const char *log_file;
    const char *log_level;
    const char *token_file;
    const char *port_file;
    uint64_t client_port;
    uint64_t cluster_port;
    uint64_t max_connections;
    uint64_t max_value;
    uint64_t map_size;
    uint64_t max_frame;
    uint64_t max_output;
    uint64_t idle_timeout;
    uint64_t request_timeout;
    uint64_t readers;
    int no_sync;
    int join;
    int help;
    int version;
    uint64_t node_id;
    const char *peers;
    const char *secret_file;
    uint64_t heartbeat;
    uint64_t election;
    uint64_t snapshot_entries;
} settings_t;

enum {
    OPT_CLIENT_PORT = 5,    /* index in the table below */
    OPT_CLUSTER_PORT = 6,
    OPT_MAX_FRAME = 13
};

static settings_t set = {
    NULL, NULL, NULL, NULL, "127.0.0.1", NULL, "info", NULL, NULL,
    0, 0, 4096, 1 * MIB, 0, 0, 8 * MIB, 300, 30, 0, 0, 0, 0
};

static dkv_config_opt_t options[] = {
    { "config", DKV_CONF_STRING, &set.config, 0, 0, "FILE",
      "Read settings from FILE: lines of 'name = value' with the names of "
      "these flags, '#' comments.  Flags win over the file.", 1, 0 },
    { "store", DKV_CONF_STRING, &set.store, 0, 0, "NAME",
      "The store this node serves (required).", 0, 0 },
    { "instance", DKV_CONF_STRING, &set.instance, 0, 0, "NAME",
      "This instance's name (default: STORE-NODEID).", 0, 0 },
    { "data-dir", DKV_CONF_STRING, &set.data_dir, 0, 0, "DIR",
      "Directory of the store's data (required; created if missing).", 0,
      0 },
    { "bind", DKV_CONF_STRING, &set.bind, 0, 0, "ADDR",
      "Address the client port listens on (default 127.0.0.1).", 0, 0 },
    { "client-port", DKV_CONF_UINT, &set.client_port, 0, 65535, "N",
      "The client port (required).  0 picks a free port: it is printed "
      "on stdout, logged, and written to --port-file.", 0, 0 },
    { "cluster-port", DKV_CONF_UINT, &set.cluster_port, 1, 65535, "N",
      "The cluster port replication listens on (default: this node's "
      "entry in --peers).", 0, 0 },
    { "port-file", DKV_CONF_STRING, &set.port_file, 0, 0, "FILE",
      "Write the bound client port (a decimal number and a newline) to "
      "FILE once the node serves.", 0, 0 },
    { "log-file", DKV_CONF_STRING, &set.log_file, 0, 0, "FILE",
      "Append the log to FILE (warnings and errors also go to stderr).  "
      "Default: stderr only.", 0, 0 },
    { "log-level", DKV_CONF_STRING, &set.log_level, 0, 0, "LEVEL",
      "debug, info (default), warn or error.", 0, 0 },
    { "token-file", DKV_CONF_STRING, &set.token_file, 0, 0, "FILE",
      "The store's access token (the file's content, without its trailing "
      "newline; at most 4096 bytes).  Clients must present it in HELLO.  "
      "Without a token the node accepts loopback clients only.", 0, 0 },
    { "max-connections", DKV_CONF_UINT, &set.max_connections, 1, 1000000,
      "N", "Most client connections at once (default 4096); more are "
      "refused.", 0, 0 },
    { "max-value", DKV_CONF_SIZE, &set.max_value, 1, 1024u * MIB, "SIZE",
      "The store's largest value (default 1M).", 0, 0 },
    { "max-frame", DKV_CONF_SIZE, &set.max_frame, DKV_PROTO_MIN_FRAME,
      1024u * MIB, "SIZE", "Largest protocol frame accepted (default 64M, "
      "at least max-value + 1M).", 0, 0 },
    { "max-output", DKV_CONF_SIZE, &set.max_output, 64u * 1024u,
      4096u * MIB, "SIZE", "Output buffered per connection before the node "
      "stops reading its requests and drops its watches (default 8M).",
      0, 0 },
    { "map-size", DKV_CONF_SIZE, &set.map_size, 0, 0, "SIZE",
      "LMDB map size: the store's largest size on disk (default 1G).", 0,
      0 },
    { "idle-timeout", DKV_CONF_UINT, &set.idle_timeout, 0, 0, "SEC",
      "Close connections idle this long: no request in flight, no watch, "
      "nothing read or written (default 300; 0: never).  Also closes a "
      "connection whose client has not read its answers for this long.",
      0, 0 },
    { "request-timeout", DKV_CONF_UINT, &set.request_timeout, 0, 0, "SEC",
      "Close a connection that started a frame and did not finish it in "
      "this time, and log requests unanswered this long (default 30; 0: "
      "never).  The node never answers for the store: clients time out "
      "on their own.", 0, 0 },
    { "readers", DKV_CONF_UINT, &set.readers, 0, 256, "N",
      "Reader threads of the request service (default: one per CPU).", 0,
      0 },
    { "no-sync", DKV_CONF_FLAG, &set.no_sync, 0, 0, NULL,
      "UNSAFE: do not sync commits to disk.  Faster, but a crash of the "
      "machine (not only of the node) can lose acknowledged writes.", 0,
      0 },
    { "node-id", DKV_CONF_UINT, &set.node_id, 1, 0x7FFFFFFF, "N",
      "This node's id in the store's group (default 1).", 0, 0 },
    { "peers", DKV_CONF_STRING, &set.peers, 0, 0, "LIST",
      "Every member of the store's group, this node included: "
      "ID=HOST:CLUSTERPORT:CLIENTPORT,...  (IPv6 hosts in brackets).  "
      "Default: none, a store of one node.", 0, 0 },
    { "secret-file", DKV_CONF_STRING, &set.secret_file, 0, 0, "FILE",
      "The store's 256-bit secret, 64 hex digits (required with "
      "--peers): nodes prove they hold it on every cluster link, and the "
      "store's manager derives from it the token of its admin connection "
      "(loopback only).", 0, 0 },
    { "heartbeat-interval", DKV_CONF_UINT, &set.heartbeat, 1, 60000, "MS",
      "The Raft tick: heartbeats go out this often (default 100).", 0,
      0 },
    { "election-timeout", DKV_CONF_UINT, &set.election, 2, 600000, "MS",
      "Base election timeout, randomized in [T, 2T); at least two "
      "heartbeat intervals (default 1000).", 0, 0 },
    { "snapshot-entries", DKV_CONF_UINT, &set.snapshot_entries, 1, 0, "N",
      "Compact the Raft log after this many applied entries (default "
      "10000).", 0, 0 },
    { "join", DKV_CONF_FLAG, &set.join, 0, 0, NULL,
      "Join a running group: start empty, outside the membership, and "
      "wait for the leader to add this node (MEMBER_ADD; Add-DkvInstance "
      "does it).  Without it a new node's first start makes the group "
      "of --peers.", 0, 0 },
    { "help", DKV_CONF_FLAG, &set.help, 0, 0, NULL,
      "Show this help and exit.", 1, 0 },
    { "version", DKV_CONF_FLAG, &set.version, 0, 0, NULL,
      "Show the version and exit.", 1, 0 },
    { NULL, 0, NULL, 0, 0, NULL, NULL, 0, 0 }
};

static void
usage(FILE *out)
{
    fprintf(out, "Usage: " PROG " --store NAME --data-dir DIR "
            "--client-port N [OPTION...]\n"
            "Serves one instance of a dkv store to clients (the dkv client "
            "protocol,\ndocs/protocol.md).  Stops gracefully on SIGTERM or "
            "SIGINT.\n\nOptions:\n");
    dkv_config_print_help(options, out);
    fprintf(out, "\nExit status: 0 after a graceful stop, 1 when the node "
            "cannot start,\n2 for bad settings.\n");
}

/* Parses --peers: ID=HOST:CLUSTERPORT:CLIENTPORT,... into *MEMBERS.
 * Returns NULL or what is wrong. */
static const char *
parse_peers(dkv_service_member_t **members, size_t *n, const char *list,
            apr_pool_t *pool)
{
    char *copy = apr_pstrdup(pool, list), *item, *last = NULL;
    dkv_service_member_t *m;
    size_t cap = 1, i;
    const char *c;

    for (c = list; *c; c++) {
        cap += *c == ',';
    }
    m = apr_pcalloc(pool, cap * sizeof(*m));
    *n = 0;
    for (item = apr_strtok(copy, ",", &last); item != NULL;
         item = apr_strtok(NULL, ",", &last)) {
        char *eq = strchr(item, '='), *host, *ports, *end, *colon;
        unsigned long id, cport, lport;

        while (*item == ' ') {
            item++;
        }
        if (eq == NULL) {
            return apr_psprintf(pool, "--peers: '%s' is not "
                                "ID=HOST:CLUSTERPORT:CLIENTPORT", item);
        }
        *eq = '\0';
        id = strtoul(item, &end, 10);
        if (end == item || *end != '\0' || id == 0 || id > 0x7FFFFFFFul) {
            return apr_psprintf(pool, "--peers: bad node id '%s'", item);
        }
        host = eq + 1;
        if (*host == '[') {
            char *close = strchr(host, ']');

            if (close == NULL || close[1] != ':') {
                return apr_psprintf(pool, "--peers: bad host in '%s'", host);
            }
            *close = '\0';
            host++;
            ports = close + 2;
        }
        else {
            colon = strchr(host, ':');
            if (colon == NULL) {
                return apr_psprintf(pool, "--peers: no ports for node %lu",
                                    id);
            }
            *colon = '\0';
            ports = colon + 1;
        }
        cport = strtoul(ports, &end, 10);
        if (end == ports || *end != ':' || cport == 0 || cport > 65535) {
            return apr_psprintf(pool, "--peers: bad cluster port for node "
                                "%lu", id);
        }
        ports = end + 1;
        lport = strtoul(ports, &end, 10);
        if (end == ports || *end != '\0' || lport > 65535) {
            return apr_psprintf(pool, "--peers: bad client port for node "
                                "%lu", id);
        }
        if (*host == '\0') {
            return apr_psprintf(pool, "--peers: empty host for node %lu",
                                id);
        }
        for (i = 0; i < *n; i++) {
            if (m[i].id == id) {
                return apr_psprintf(pool, "--peers: node %lu appears twice",
                                    id);
            }
        }
        m[*n].id = (uint32_t)id;
        m[*n].host = host;
        m[*n].cluster_port = (unsigned)cport;
        m[*n].client_port = (unsigned)lport;
        (*n)++;
    }
    if (*n == 0) {
        return "--peers: no members";
    }
    *members = m;
    return NULL;
}

/* Reads the store's secret (64 hex digits) into sodium memory. */
static dkv_status_t
load_secret(unsigned char **secret, const char *path, apr_pool_t *pool)
{
    char buf[200];
    apr_file_t *f;
    apr_size_t got = sizeof(buf) - 1, len;
    const char *end;
    size_t bin = 0;
    char *p;
    apr_status_t rv;

    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(DKV_EINVAL, "--secret-file %s: %s", path,
                             dkv_strerror(rv));
    }
    rv = apr_file_read(f, buf, &got);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        return dkv_error_set(DKV_EINVAL, "--secret-file %s: %s", path,
                             dkv_strerror(rv));
    }
    buf[got] = '\0';
    p = buf;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
        p++;
    }
    len = strlen(p);
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'
                       || p[len - 1] == '\r' || p[len - 1] == '\n')) {
        len--;
    }
    *secret = sodium_malloc(32);
    if (*secret == NULL) {
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    if (len != 64 || sodium_hex2bin(*secret, 32, p, len, NULL, &bin, &end)
                         != 0 || bin != 32) {
        sodium_memzero(buf, sizeof(buf));
        sodium_free(*secret);
        *secret = NULL;
        return dkv_error_set(DKV_EINVAL, "--secret-file %s: the secret must "
                             "be 64 hex digits (256 bits)", path);
    }
    sodium_memzero(buf, sizeof(buf));
    sodium_mprotect_readonly(*secret);
    return DKV_OK;
}

/* The digest of the node admin token that SECRET gives (adminauth.h), in
 * sodium memory (*DIGEST, free with sodium_free), hashed as an access
 * token is.  The token itself is wiped. */
static dkv_status_t
admin_token_hash(unsigned char **digest, const unsigned char *secret)
{
    char token[65];
    dkv_status_t rv = dkv_adminauth_init();

    if (rv != DKV_OK) {
        return dkv_error_set(rv, "cannot initialize libsodium for the node "
                             "admin token");
    }
    *digest = sodium_malloc(DKV_NODE_TOKEN_HASH);
    if (*digest == NULL) {
        return dkv_error_set(APR_ENOMEM, "out of secure memory");
    }
    dkv_admin_node_token(token, secret);
    crypto_generichash(*digest, DKV_NODE_TOKEN_HASH,
                       (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_memzero(token, sizeof(token));
    sodium_mprotect_readonly(*digest);
    return DKV_OK;
}

/* Reads the token file into a digest in sodium memory (*DIGEST, free with
 * sodium_free).  The token itself is wiped. */
static dkv_status_t
load_token(unsigned char **digest, const char *path, apr_pool_t *pool)
{
    apr_file_t *file;
    apr_status_t rv;
    /* Room for the token and its line ending ("\r\n"), plus one byte
     * to notice a longer file. */
    apr_size_t cap = TOKEN_MAX + 3, len = cap;
    unsigned char *buf;
    char err[120];

    rv = apr_file_open(&file, path, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT,
                       pool);
    if (rv != APR_SUCCESS) {
        return dkv_error_set(rv, "cannot read token file %s: %s", path,
                             apr_strerror(rv, err, sizeof(err)));
    }
    buf = sodium_malloc(cap);
    if (buf == NULL) {
        apr_file_close(file);
        return dkv_error_set(APR_ENOMEM, "out of secure memory");
    }
    rv = apr_file_read_full(file, buf, len, &len);
    apr_file_close(file);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        sodium_free(buf);
        return dkv_error_set(rv, "cannot read token file %s: %s", path,
                             apr_strerror(rv, err, sizeof(err)));
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        len--;
    }
    if (len > TOKEN_MAX) {
        sodium_free(buf);
        return dkv_error_set(DKV_EINVAL, "the token in %s is longer than %u "
                             "bytes", path, TOKEN_MAX);
    }
    if (len == 0) {
        sodium_free(buf);
        return dkv_error_set(DKV_EINVAL, "token file %s is empty", path);
    }
    *digest = sodium_malloc(DKV_NODE_TOKEN_HASH);
    if (*digest == NULL) {
        sodium_free(buf);
        return dkv_error_set(APR_ENOMEM, "out of secure memory");
    }
    crypto_generichash(*digest, DKV_NODE_TOKEN_HASH, buf, len, NULL, 0);
    sodium_memzero(buf, cap);
    sodium_free(buf);
    sodium_mprotect_readonly(*digest);
    return DKV_OK;
}


static void
on_stop(void *baton, const char *reason)
{
    dkv_node_stop(baton, reason);
}

/* Checks and completes the settings; returns NULL or the problem. */
static const char *
check_settings(apr_pool_t *pool)
{
    if (set.store == NULL || set.store[0] == '\0') {
        return "--store NAME is required";
    }
    if (strlen(set.store) > 255) {
        return "--store: the name is longer than 255 bytes";
    }
    if (set.data_dir == NULL || set.data_dir[0] == '\0') {
        return "--data-dir DIR is required";
    }
    if (!options[OPT_CLIENT_PORT].set) {
        return "--client-port N is required (0: any free port)";
    }
    if (set.instance == NULL || set.instance[0] == '\0') {
        set.instance = apr_psprintf(pool, "%s-%u", set.store,
                                    (unsigned)(set.node_id ? set.node_id
                                                           : 1));
    }
    if (!options[OPT_MAX_FRAME].set) {
        set.max_frame = DKV_PROTO_DEFAULT_FRAME;
        if (set.max_frame < set.max_value + MIB) {
            set.max_frame = set.max_value + MIB;
        }
    } else if (set.max_frame < set.max_value + MIB) {
        /* apr_psprintf has no %llu: C99 snprintf does. */
        static char msg[160];

        snprintf(msg, sizeof(msg), "--max-frame %llu is too small: it must "
                 "be at least max-value + 1M (%llu)",
                 (unsigned long long)set.max_frame,
                 (unsigned long long)(set.max_value + MIB));
        return msg;
    }
    if (set.heartbeat == 0) {
        set.heartbeat = 100;
    }
    if (set.election == 0) {
        set.election = 1000;
    }
    if (set.election < 2 * set.heartbeat) {
        return "--election-timeout must be at least two "
               "--heartbeat-interval";
    }
    if (set.peers != NULL && set.secret_file == NULL) {
        return "--peers needs --secret-file (the store's secret)";
    }
    if (set.idle_timeout > 10u * 365 * 86400
        || set.request_timeout > 10u * 365 * 86400) {
        return "timeouts are limited to 10 years";
    }
    return NULL;
}

int
main(int argc, const char *const *argv)
{
    apr_pool_t *pool, *engine_pool, *service_pool;
    dkv_log_level_t level = DKV_LOG_INFO;
    unsigned char *token_hash = NULL, *secret = NULL, *admin_hash = NULL;
    dkv_service_member_t *members = NULL;
    size_t nmembers = 0;
    dkv_engine_opts_t eopts;
    dkv_service_opts_t sopts;
    dkv_node_opts_t nopts;
    dkv_engine_t *engine = NULL;
    dkv_service_t *service = NULL;
    dkv_node_t *node = NULL;
    const char *problem, *reason = "stop requested", *cfg;
    uint64_t fd_limit = 0;
    dkv_status_t st;
    char cluster[64];
    apr_status_t rv;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) {
        fprintf(stderr, PROG ": cannot initialize APR\n");
        return 1;
    }
    atexit(apr_terminate);
    if (apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }

    /* ----- settings: the config file first, then the flags over it */
    cfg = dkv_config_find_arg("config", argc, argv);
    if (cfg != NULL && dkv_config_find_arg("help", argc, argv) == NULL) {
        st = dkv_config_parse_file(options, cfg, pool);
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
        printf(PROG " %s (dkv protocol %d)\n", dkv_version(),
               DKV_PROTO_VERSION);
        return 0;
    }
    problem = check_settings(pool);
    if (problem != NULL) {
        return dkv_config_bad_settings(PROG, problem);
    }
    if (dkv_log_level_parse(&level, set.log_level) != DKV_OK) {
        return dkv_config_bad_settings(PROG, dkv_last_error());
    }
    if (sodium_init() < 0) {
        fprintf(stderr, PROG ": libsodium failed to initialize\n");
        return 1;
    }
    if (set.token_file != NULL
        && load_token(&token_hash, set.token_file, pool) != DKV_OK) {
        return dkv_config_bad_settings(PROG, dkv_last_error());
    }
    if (set.peers != NULL) {
        problem = parse_peers(&members, &nmembers, set.peers, pool);
        if (problem != NULL) {
            return dkv_config_bad_settings(PROG, problem);
        }
    }
    if (set.secret_file != NULL) {
        /* The secret also gives the node admin token (the manager's
         * admin connection). */
        if (load_secret(&secret, set.secret_file, pool) != DKV_OK) {
            return dkv_config_bad_settings(PROG, dkv_last_error());
        }
        if (admin_token_hash(&admin_hash, secret) != DKV_OK) {
            return dkv_config_fail(PROG, dkv_last_error());
        }
    }
    if (dkv_log_open(PROG, set.log_file, level, pool) != DKV_OK) {
        return dkv_config_bad_settings(PROG, dkv_last_error());
    }

    /* ----- the client port (before any thread, for the signal mask) */
    memset(&nopts, 0, sizeof(nopts));
    nopts.store = set.store;
    nopts.instance = set.instance;
    nopts.bind = set.bind;
    nopts.port = (apr_port_t)set.client_port;
    nopts.max_connections = (size_t)set.max_connections;
    nopts.max_frame = (uint32_t)set.max_frame;
    nopts.max_value = (uint32_t)set.max_value;
    nopts.max_output = (size_t)set.max_output;
    nopts.idle_timeout = apr_time_from_sec(set.idle_timeout);
    nopts.request_timeout = apr_time_from_sec(set.request_timeout);
    nopts.token_hash = token_hash;
    nopts.admin_hash = admin_hash;
    if (dkv_plat_raise_fd_limit(&fd_limit) != DKV_OK) {
        dkv_log(DKV_LOG_WARN, "%s", dkv_last_error());
    }
    if (fd_limit != 0 && fd_limit < set.max_connections + 64) {
        dkv_log(DKV_LOG_WARN, "the descriptor limit (%llu) is below "
                "--max-connections %llu + 64: connections past it will be "
                "refused by the system", (unsigned long long)fd_limit,
                (unsigned long long)set.max_connections);
    }
    if (dkv_node_create(&node, &nopts, pool) != DKV_OK
        || dkv_plat_stop_signals(on_stop, node) != DKV_OK
        || dkv_node_listen(node) != DKV_OK) {
        return dkv_config_fail(PROG, dkv_last_error());
    }

    /* ----- the store */
    rv = apr_dir_make_recursive(set.data_dir, APR_FPROT_OS_DEFAULT, pool);
    if (rv != APR_SUCCESS) {
        char err[120];

        return dkv_config_fail(PROG, apr_psprintf(
            pool, "cannot create data directory %s: %s", set.data_dir,
            apr_strerror(rv, err, sizeof(err))));
    }
    memset(&eopts, 0, sizeof(eopts));
    eopts.max_value = (size_t)set.max_value;
    eopts.map_size = set.map_size;
    eopts.no_sync = set.no_sync;
    apr_pool_create(&engine_pool, NULL);
    st = dkv_engine_open(&engine, set.data_dir, &eopts, engine_pool);
    if (st != DKV_OK) {
        return dkv_config_fail(PROG, apr_psprintf(
            pool, "cannot open store '%s' in %s: %s (%s)", set.store,
            set.data_dir, dkv_strerror(st), dkv_last_error()));
    }
    memset(&sopts, 0, sizeof(sopts));
    sopts.readers = (unsigned)set.readers;
    sopts.instance = set.instance;
    sopts.node_id = (uint32_t)(set.node_id ? set.node_id : 1);
    sopts.members = members;
    sopts.nmembers = nmembers;
    sopts.secret = secret;
    sopts.store = set.store;
    sopts.cluster_bind = set.bind;
    sopts.cluster_port = (unsigned)set.cluster_port;
    sopts.tick_ms = (unsigned)set.heartbeat;
    sopts.election_ticks = (unsigned)((set.election + set.heartbeat - 1)
                                      / set.heartbeat);
    sopts.snapshot_entries = set.snapshot_entries;
    sopts.join = set.join;
    sopts.data_dir = set.data_dir;
    sopts.request_timeout_ms = (unsigned)(set.request_timeout
                                          ? set.request_timeout * 1000
                                          : 30000);
    apr_pool_create(&service_pool, NULL);
    st = dkv_service_create(&service, engine, &sopts, dkv_node_send, node,
                            service_pool);
    if (st != DKV_OK) {
        const char *msg = apr_psprintf(pool, "cannot start the request "
                                       "service: %s (%s)", dkv_strerror(st),
                                       dkv_last_error());

        dkv_engine_close(engine);
        return dkv_config_fail(PROG, msg);
    }

    /* ----- serving */
    if (set.port_file != NULL
        && dkv_config_write_port_file(set.port_file, node->port,
                                      pool) != DKV_OK) {
        dkv_log(DKV_LOG_ERROR, "%s", dkv_last_error());
    }
    if (nmembers > 1) {
        snprintf(cluster, sizeof(cluster), "%llu (node %u of %u)",
                 (unsigned long long)set.cluster_port,
                 (unsigned)sopts.node_id, (unsigned)nmembers);
        if (!options[OPT_CLUSTER_PORT].set) {
            size_t i;

            for (i = 0; i < nmembers; i++) {
                if (members[i].id == sopts.node_id) {
                    snprintf(cluster, sizeof(cluster), "%u (node %u of %u)",
                             members[i].cluster_port,
                             (unsigned)sopts.node_id, (unsigned)nmembers);
                }
            }
        }
    } else {
        apr_cpystrn(cluster, "none (a store of one node)", sizeof(cluster));
    }
    dkv_log(DKV_LOG_INFO, "started " PROG " %s: store %s, instance %s, "
            "client port %s, cluster port %s, data dir %s, pollset %s, "
            "max connections %llu, descriptor limit %llu, access %s, "
            "sync %s", dkv_version(), set.store, set.instance, node->where,
            cluster, set.data_dir, apr_pollset_method_name(node->pollset),
            (unsigned long long)set.max_connections,
            (unsigned long long)fd_limit,
            token_hash ? "token required" : "no token: loopback clients "
            "only", set.no_sync ? "OFF (--no-sync)" : "on");
    if (set.no_sync) {
        dkv_log(DKV_LOG_WARN, "--no-sync: commits are not synced to disk; "
                "a machine crash can lose acknowledged writes");
    }
    printf(PROG ": listening on %s\n", node->where);
    fflush(stdout);

    (void)dkv_node_run(node, service, &reason);

    /* dkv_node_run destroyed the service; the engine closes last. */
    dkv_engine_close(engine);
    apr_pool_destroy(engine_pool);
    apr_pool_destroy(service_pool);
    dkv_log(DKV_LOG_INFO, "stopped (%s): store %s, instance %s closed "
            "cleanly", reason, set.store, set.instance);
    dkv_log_close();
    if (token_hash != NULL) {
        sodium_free(token_hash);
    }
    if (admin_hash != NULL) {
        sodium_free(admin_hash);
    }
    if (secret != NULL) {
        sodium_free(secret);
    }
    return 0;
}
