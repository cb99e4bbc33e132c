/*
 * main.c -- `dkv`, the ClientShell of dkv: runs one command given on the
 * command line (`dkv Set-DkvItem -Key k -Value v`), or, without
 * arguments, an interactive shell reading commands from standard input
 * (prompt "dkv> " on a terminal; piped input works the same).  Holds the
 * command table with every parameter's name, position, range and default
 * as the reference's ClientShell pages give them, and `dkv help`.
 */
#include "cli/cli.h"
#include "cli/admin.h"
#include "platform/userenv.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#define I32MAX 2147483647LL
#define I64MAX INT64_MAX
#define I64MIN INT64_MIN
#define MIB (1024LL * 1024LL)

/* --------------------------------------------------------- parameters */

#define END { NULL, NULL, 0, -1, 0, 0, 0, NULL, NULL }

static const cli_param_t p_connect[] = {
    { "StoreName", NULL, CLI_STR, 0, 1, 0, 0, NULL,
      "name of the store (e.g. OrdersStore)" },
    { "Endpoints", "Servers", CLI_LIST, 1, 1, 0, 0, NULL,
      "host:port list of the store's client endpoints, or inproc:PATH" },
    { "TimeoutSec", NULL, CLI_INT, -1, 0, 1, 120, "5",
      "connection timeout in seconds" },
    { "Token", NULL, CLI_STR, -1, 0, 0, 0, NULL,
      "the store's access token (kept in the session file, mode 0600)" },
    { "TokenFile", NULL, CLI_STR, -1, 0, 0, 0, NULL,
      "file holding the access token (read at each command)" },
    { "Force", NULL, CLI_SWITCH, -1, 0, 0, 0, NULL,
      "replace an existing connection" },
    END
};
static const cli_param_t p_none[] = { END };
static const cli_param_t p_test_connection[] = {
    { "StoreName", NULL, CLI_STR, -1, 0, 0, 0, NULL,
      "store to probe (required when not connected)" },
    { "Endpoints", "Servers", CLI_LIST, -1, 0, 0, 0, NULL,
      "endpoints to probe (required when not connected)" },
    { "TimeoutSec", NULL, CLI_INT, -1, 0, 1, 120, "5",
      "timeout in seconds" },
    END
};
static const cli_param_t p_key[] = {
    { "Key", NULL, CLI_STR, 0, 1, 0, 0, NULL, "the key" },
    END
};
static const cli_param_t p_keys[] = {
    { "Keys", NULL, CLI_LIST, 0, 1, 0, 0, NULL,
      "comma-separated keys: k1,k2,k3" },
    END
};
static const cli_param_t p_set_item[] = {
    { "Key", NULL, CLI_STR, 0, 1, 0, 0, NULL, "the key" },
    { "Value", NULL, CLI_STR, 1, 1, 0, 0, NULL, "the value (text)" },
    { "ExpireAfterSec", NULL, CLI_INT, -1, 0, 1, I32MAX, NULL,
      "time to live in seconds (excludes -LeaseId)" },
    { "LeaseId", NULL, CLI_U64, -1, 0, 0, 0, NULL,
      "bind the key to this lease (decimal id; excludes -ExpireAfterSec)" },
    END
};
static const cli_param_t p_set_items[] = {
    { "Items", NULL, CLI_MAP, 0, 1, 0, 0, NULL,
      "k1=v1,k2=v2 or @{k1='v1';k2='v2'}" },
    END
};
static const cli_param_t p_set_expiration[] = {
    { "Key", NULL, CLI_STR, 0, 1, 0, 0, NULL, "the key" },
    { "TimeToLive", NULL, CLI_SPAN, 1, 1, 0, 9000000000000000LL, NULL,
      "new lifetime: hh:mm:ss, 30s, 5m, 1h or seconds (0: never expires)" },
    END
};
static const cli_param_t p_test_item[] = {
    { "Key", NULL, CLI_STR, 0, 1, 0, 0, NULL, "the key" },
    { "Detailed", NULL, CLI_SWITCH, -1, 0, 0, 0, NULL,
      "return an object instead of True/False" },
    END
};
static const cli_param_t p_set_counter[] = {
    { "Key", NULL, CLI_STR, 0, 1, 0, 0, NULL, "the counter's key" },
    { "Value", NULL, CLI_INT, 1, 1, I64MIN, I64MAX, NULL, "the new value" },
    END
};
static const cli_param_t p_delta[] = {
    { "Key", NULL, CLI_STR, 0, 1, 0, 0, NULL, "the counter's key" },
    { "Delta", NULL, CLI_INT, 1, 0, 1, I64MAX, "1", "amount to change by" },
    END
};
static const cli_param_t p_grant_lease[] = {
    { "TimeToLive", "TtlSec", CLI_SPAN, 0, 1, DKV_MIN_LEASE_TTL,
      DKV_MAX_LEASE_TTL, NULL,
      "lease lifetime: hh:mm:ss, 30s, 5m or seconds (100ms..7 days)" },
    END
};
static const cli_param_t p_lease[] = {
    { "LeaseId", NULL, CLI_U64, 0, 1, 0, 0, NULL, "the lease id (decimal)" },
    END
};
static const cli_param_t p_watch_key[] = {
    { "Key", NULL, CLI_STR, 0, 1, 0, 0, NULL, "the key to watch" },
    { "IncludeSnapshot", NULL, CLI_SWITCH, -1, 0, 0, 0, NULL,
      "first emit the current value" },
    { "MaxEvents", NULL, CLI_INT, -1, 0, 1, I64MAX, NULL,
      "(dkv) stop after this many events" },
    { "DurationSec", NULL, CLI_INT, -1, 0, 1, 86400 * 365, NULL,
      "(dkv) stop after this many seconds" },
    END
};
static const cli_param_t p_watch_prefix[] = {
    { "Prefix", NULL, CLI_STR, 0, 1, 0, 0, NULL, "the key prefix" },
    { "IncludeSnapshot", NULL, CLI_SWITCH, -1, 0, 0, 0, NULL,
      "first emit the current matching keys" },
    { "MaxEvents", NULL, CLI_INT, -1, 0, 1, I64MAX, NULL,
      "(dkv) stop after this many events" },
    { "DurationSec", NULL, CLI_INT, -1, 0, 1, 86400 * 365, NULL,
      "(dkv) stop after this many seconds" },
    END
};
#define P_STORE { "StoreName", NULL, CLI_STR, -1, 0, 0, 0, NULL, \
      "must name the connected store (default: the connected store)" }
#define P_SIZE { "ObjectSizeBytes", NULL, CLI_INT, -1, 0, 32, MIB, "100", \
      "value size in bytes" }
static const cli_param_t p_latency[] = {
    P_STORE,
    { "Iterations", NULL, CLI_INT, -1, 1, 1, 1000000, NULL,
      "number of measured reads" },
    P_SIZE,
    END
};
static const cli_param_t p_throughput[] = {
    P_STORE,
    { "DurationSec", NULL, CLI_INT, -1, 1, 1, 3600, NULL,
      "test duration in seconds" },
    { "Concurrency", NULL, CLI_INT, -1, 1, 1, 1024, NULL,
      "concurrent workers" },
    P_SIZE,
    END
};
static const cli_param_t p_benchmark[] = {
    P_STORE,
    { "Profile", NULL, CLI_STR, -1, 1, 0, 0, NULL,
      "ReadHeavy (90% reads), WriteHeavy (90% writes) or Mixed (50/50)" },
    { "DurationSec", NULL, CLI_INT, -1, 0, 1, 3600, "60",
      "duration in seconds" },
    { "Concurrency", NULL, CLI_INT, -1, 0, 1, 1024, "16",
      "concurrent workers" },
    P_SIZE,
    END
};
static const cli_param_t p_stress[] = {
    P_STORE,
    { "DurationSec", NULL, CLI_INT, -1, 1, 1, 86400, NULL,
      "duration in seconds" },
    { "Concurrency", NULL, CLI_INT, -1, 1, 1, 2048, NULL,
      "concurrent workers" },
    P_SIZE,
    END
};

/* AdminShell: the parameters every admin command inherits. */
#define P_ADMIN \
    { "Managers", NULL, CLI_LIST, -1, 0, 0, 0, NULL, \
      "managers (host, host:port, IP, [v6]:port, http://host:port); " \
      "default: the Connect-DkvManager context" }, \
    { "Port", NULL, CLI_INT, -1, 0, 1, 65535, "7801", \
      "management port of entries that give none" }, \
    { "TimeoutSec", NULL, CLI_INT, -1, 0, 1, 3600, "30", \
      "timeout of each request to a manager, in seconds" }, \
    { "Parallel", NULL, CLI_SWITCH, -1, 0, 0, 0, NULL, \
      "work on the managers concurrently (default: one after another)" }, \
    { "FailFast", NULL, CLI_SWITCH, -1, 0, 0, 0, NULL, \
      "stop at the first failure (default: go on with the others)" }
static const cli_param_t p_connect_manager[] = {
    { "Managers", "Servers", CLI_LIST, 0, 1, 0, 0, NULL,
      "managers: host, host:port, IP, [v6]:port or http://host:port, "
      "comma-separated" },
    { "Port", NULL, CLI_INT, -1, 0, 1, 65535, "7801",
      "management port of entries that give none" },
    { "Force", NULL, CLI_SWITCH, -1, 0, 0, 0, NULL,
      "replace the existing context; accept managers whose keys changed" },
    { "TimeoutSec", NULL, CLI_INT, -1, 0, 1, 3600, "30",
      "timeout of each request, in seconds" },
    { "Parallel", NULL, CLI_SWITCH, -1, 0, 0, 0, NULL,
      "contact the managers concurrently" },
    END
};
static const cli_param_t p_new_store[] = {
    { "Name", NULL, CLI_STR, 0, 1, 0, 0, NULL,
      "name of the store (e.g. OrdersStore)" },
    { "InstancePrefix", NULL, CLI_STR, -1, 1, 0, 0, NULL,
      "instance names are <prefix>-<n> (orders-1, orders-2, ...)" },
    { "InstanceCount", NULL, CLI_INT, -1, 0, 1, 1000, "1",
      "instances per manager (machine)" },
    { "ClustronPort", NULL, CLI_INT, -1, 0, 1, 65535, "7811",
      "first cluster port on each machine (+1 per instance)" },
    { "ClientPort", NULL, CLI_INT, -1, 0, 1, 65535, "7861",
      "first client port on each machine (+1 per instance)" },
    P_ADMIN,
    END
};
static const cli_param_t p_get_store[] = {
    { "Name", "StoreName", CLI_STR, 0, 0, 0, 0, NULL,
      "one store, with its instances (default: every store)" },
    P_ADMIN,
    END
};
static const cli_param_t p_start_store[] = {
    { "Name", "StoreName", CLI_STR, 0, 1, 0, 0, NULL, "the store" },
    { "InstanceName", NULL, CLI_STR, -1, 0, 0, 0, NULL,
      "only this instance (default: all)" },
    P_ADMIN,
    END
};
static const cli_param_t p_stop_store[] = {
    { "Name", "StoreName", CLI_STR, 0, 1, 0, 0, NULL, "the store" },
    { "InstanceName", NULL, CLI_STR, -1, 0, 0, 0, NULL,
      "only this instance (default: all)" },
    { "Force", NULL, CLI_SWITCH, -1, 0, 0, 0, NULL,
      "kill at once instead of a graceful stop" },
    P_ADMIN,
    END
};
static const cli_param_t p_add_instance[] = {
    { "StoreName", "Name", CLI_STR, 0, 1, 0, 0, NULL, "the store" },
    { "InstanceName", NULL, CLI_STR, -1, 0, 0, 0, NULL,
      "the new instance (single form)" },
    { "ClustronPort", NULL, CLI_INT, -1, 0, 1, 65535, NULL,
      "its cluster port (single form)" },
    { "ClientPort", NULL, CLI_INT, -1, 0, 1, 65535, NULL,
      "its client port (single form)" },
    { "Nodes", NULL, CLI_LIST, -1, 0, 0, 0, NULL,
      "several: @{ InstanceName = 'orders-2'; ClustronPort = 7812; "
      "ClientPort = 7862 },... or name:clustronPort:clientPort,..." },
    { "Manager", NULL, CLI_STR, -1, 0, 0, 0, NULL,
      "the manager that runs them (default: the first connected)" },
    P_ADMIN,
    END
};
static const cli_param_t p_watch_metrics[] = {
    { "StoreName", "Name", CLI_STR, 0, 1, 0, 0, NULL, "the store" },
    { "RefreshSec", NULL, CLI_INT, -1, 0, 1, 60, "1",
      "seconds between refreshes" },
    { "Count", NULL, CLI_INT, -1, 0, 1, I64MAX, NULL,
      "(dkv, for scripts) stop after this many refreshes" },
    { "Managers", NULL, CLI_LIST, -1, 0, 0, 0, NULL,
      "managers (default: the Connect-DkvManager context)" },
    { "Port", NULL, CLI_INT, -1, 0, 1, 65535, "7801",
      "management port of entries that give none" },
    { "TimeoutSec", NULL, CLI_INT, -1, 0, 1, 3600, "30",
      "timeout of each metrics request, in seconds" },
    END
};

/* ------------------------------------------------------------ commands */

const cli_cmd_t cli_commands[] = {
    { "Connect-DkvStore", "connect to a store and keep the connection for "
      "this user", p_connect, cli_cmd_connect, 0 },
    { "Disconnect-DkvStore", "forget the connection (idempotent)", p_none,
      cli_cmd_disconnect, 0 },
    { "Get-DkvConnection", "show the kept connection (no network)", p_none,
      cli_cmd_get_connection, 0 },
    { "Test-DkvConnection", "probe the store (read-only)",
      p_test_connection, cli_cmd_test_connection, 0 },
    { "Get-DkvItem", "read a key", p_key, cli_cmd_get_item, 0 },
    { "Get-DkvItems", "read many keys in one request", p_keys,
      cli_cmd_get_items, 0 },
    { "Set-DkvItem", "write a key (optionally with a TTL or a lease)",
      p_set_item, cli_cmd_set_item, 1 },
    { "Set-DkvItems", "write many keys in one request", p_set_items,
      cli_cmd_set_items, 1 },
    { "Remove-DkvItem", "delete a key", p_key, cli_cmd_remove_item, 1 },
    { "Remove-DkvItems", "delete many keys in one request", p_keys,
      cli_cmd_remove_items, 1 },
    { "Refresh-DkvItem", "restart a key's TTL at its original value", p_key,
      cli_cmd_refresh_item, 0 },
    { "Set-DkvItemExpiration", "give a key a new TTL", p_set_expiration,
      cli_cmd_set_expiration, 0 },
    { "Get-DkvItemMetadata", "revision, version, TTL and labels of a key",
      p_key, cli_cmd_get_metadata, 0 },
    { "Test-DkvItem", "does a key exist", p_test_item, cli_cmd_test_item,
      0 },
    { "Get-DkvCounter", "read a counter", p_key, cli_cmd_get_counter, 0 },
    { "Set-DkvCounter", "set a counter", p_set_counter, cli_cmd_set_counter,
      0 },
    { "Increment-DkvCounter", "add to a counter atomically", p_delta,
      cli_cmd_increment_counter, 0 },
    { "Decrement-DkvCounter", "subtract from a counter atomically", p_delta,
      cli_cmd_decrement_counter, 0 },
    { "Grant-DkvLease", "create a lease", p_grant_lease,
      cli_cmd_grant_lease, 0 },
    { "Refresh-DkvLease", "keep a lease alive", p_lease,
      cli_cmd_refresh_lease, 0 },
    { "Revoke-DkvLease", "end a lease now (deletes its keys)", p_lease,
      cli_cmd_revoke_lease, 0 },
    { "Test-DkvLease", "lease self-test (7 tests, short TTLs)", p_none,
      cli_cmd_test_lease, 0 },
    { "Watch-DkvKey", "stream the changes of a key until Ctrl+C",
      p_watch_key, cli_cmd_watch_key, 0 },
    { "Watch-DkvPrefix", "stream the changes under a prefix until Ctrl+C",
      p_watch_prefix, cli_cmd_watch_prefix, 0 },
    { "Test-DkvLatency", "sequential read latency (min/avg/p95/p99/max)",
      p_latency, cli_cmd_test_latency, 0 },
    { "Test-DkvThroughput", "concurrent read/write throughput",
      p_throughput, cli_cmd_test_throughput, 0 },
    { "Benchmark-DkvStore", "workload profiles ReadHeavy/WriteHeavy/Mixed",
      p_benchmark, cli_cmd_benchmark, 0 },
    { "Stress-DkvStore", "long-running mixed load for stability",
      p_stress, cli_cmd_stress, 0 },
    { "Connect-DkvManager", "(admin) connect to the managers and keep "
      "them for this user", p_connect_manager, cli_cmd_connect_manager, 0 },
    { "New-DkvStore", "(admin) create a store on every connected manager",
      p_new_store, cli_cmd_new_store, 0 },
    { "Get-DkvStore", "(admin) status of the stores, or of one store",
      p_get_store, cli_cmd_get_store, 0 },
    { "Start-DkvStore", "(admin) start a store's instances", p_start_store,
      cli_cmd_start_store, 0 },
    { "Stop-DkvStore", "(admin) stop a store's instances", p_stop_store,
      cli_cmd_stop_store, 0 },
    { "Add-DkvInstance", "(admin) add instances to a store",
      p_add_instance, cli_cmd_add_instance, 0 },
    { "Watch-DkvStoreMetrics", "(admin) live metrics of a store's nodes "
      "until Ctrl+C", p_watch_metrics, cli_cmd_watch_metrics, 0 },
    { "Get-DkvAdminKey", "(admin) print your admin key's authorized-keys "
      "line", p_none, cli_cmd_admin_key, 0 },
    { NULL, NULL, NULL, NULL, 0 }
};

/* ---------------------------------------------------------- interrupts */

volatile sig_atomic_t cli_interrupted;

static void
on_interrupt(int sig)
{
    (void)sig;
    cli_interrupted = 1;
    signal(SIGINT, on_interrupt);
}

void
cli_catch_interrupt(int on)
{
    cli_interrupted = 0;
    signal(SIGINT, on ? on_interrupt : SIG_DFL);
}

/* ---------------------------------------------------------------- help */

static const char *
kind_text(const cli_param_t *p)
{
    switch (p->kind) {
    case CLI_STR: return "<string>";
    case CLI_INT: return "<long>";
    case CLI_U64: return "<LeaseId>";
    case CLI_SWITCH: return "";
    case CLI_LIST: return "<string[]>";
    case CLI_MAP: return "<hashtable>";
    case CLI_SPAN: return "<TimeSpan>";
    }
    return "";
}

static const cli_cmd_t *
find_command(const char *name)
{
    const cli_cmd_t *c;

    for (c = cli_commands; c->name != NULL; c++) {
        if (cli_strcasecmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

static void
help_list(void)
{
    const cli_cmd_t *c;

    printf("dkv %s -- the dkv ClientShell\n\n"
           "Usage: dkv <command> [parameters] [-Json]\n"
           "       dkv                 (interactive shell; 'exit' ends "
           "it)\n"
           "       dkv help <command>  (syntax and parameters)\n\n"
           "Commands:\n", dkv_version());
    for (c = cli_commands; c->name != NULL; c++) {
        printf("  %-22s %s\n", c->name, c->synopsis);
    }
    printf("  %-22s %s\n", "firewall",
           "open|close|status: dkv's ports in the firewall");
    printf("\nExit codes: 0 ok, 1 operation failed, 2 usage error, "
           "3 not connected,\n4 store unreachable or access refused.  "
           "See docs/clientshell.md.\n");
}

static void
help_command(const cli_cmd_t *c, apr_pool_t *pool)
{
    const cli_param_t *p;

    printf("\nNAME\n    %s -- %s\n\nSYNTAX\n    %s", c->name, c->synopsis,
           c->name);
    for (p = c->params; p->name != NULL; p++) {
        const char *k = kind_text(p);
        const char *nm = p->position >= 0
            ? apr_psprintf(pool, "[-%s]", p->name)
            : apr_psprintf(pool, "-%s", p->name);
        const char *txt = k[0] != '\0' ? apr_psprintf(pool, "%s %s", nm, k)
                                       : nm;
        printf(p->mandatory ? " %s" : " [%s]", txt);
    }
    printf("%s [-Json]\n\nPARAMETERS\n", c->whatif ? " [-WhatIf]" : "");
    for (p = c->params; p->name != NULL; p++) {
        const char *k = kind_text(p);

        printf("    -%s%s%s\n        %s\n", p->name, k[0] != '\0' ? " " : "",
               k, p->help);
        printf("        Required: %s.  Position: %s.", p->mandatory ? "yes"
               : "no", p->position >= 0 ? apr_itoa(pool, p->position)
               : "named");
        if (p->defval != NULL) {
            printf("  Default: %s.", p->defval);
        }
        if (p->kind == CLI_INT && !(p->min == I64MIN && p->max == I64MAX)) {
            printf("  Range: %lld..%lld.", (long long)p->min,
                   (long long)p->max);
        }
        if (p->alias != NULL) {
            printf("  Alias: -%s.", p->alias);
        }
        printf("\n");
    }
    if (c->whatif) {
        printf("    -WhatIf\n        show what would change, change "
               "nothing\n");
    }
    printf("    -Json\n        print JSON instead of a table\n\n");
}

/* ------------------------------------------------------------- running */

/* Runs ARGV[0] with the rest as its arguments.  Returns the exit code. */
static int
run_command(int argc, const char *const *argv, int interactive,
            apr_pool_t *pool)
{
    cli_ctx_t ctx;
    const cli_cmd_t *cmd;
    int rc;

    if (argc == 0) {
        return CLI_EXIT_OK;
    }
    if (cli_strcasecmp(argv[0], "help") == 0 ||
        cli_strcasecmp(argv[0], "--help") == 0 ||
        cli_strcasecmp(argv[0], "-?") == 0 ||
        cli_strcasecmp(argv[0], "Get-Help") == 0) {
        if (argc < 2) {
            help_list();
            return CLI_EXIT_OK;
        }
        cmd = find_command(argv[1]);
        if (cmd == NULL) {
            fprintf(stderr, "dkv: no command '%s'; run 'dkv help'\n",
                    argv[1]);
            return CLI_EXIT_USAGE;
        }
        help_command(cmd, pool);
        return CLI_EXIT_OK;
    }
    if (cli_strcasecmp(argv[0], "firewall") == 0) {
        return cli_firewall_main(argc - 1, argv + 1, pool);
    }
    if (cli_strcasecmp(argv[0], "--version") == 0 ||
        cli_strcasecmp(argv[0], "version") == 0) {
        printf("dkv %s\n", dkv_version());
        return CLI_EXIT_OK;
    }
    cmd = find_command(argv[0]);
    if (cmd == NULL) {
        fprintf(stderr, "dkv: no command '%s'; run 'dkv help' for the "
                "list\n", argv[0]);
        return CLI_EXIT_USAGE;
    }
    if (argc == 2 && (strcmp(argv[1], "-?") == 0 ||
                      cli_strcasecmp(argv[1], "-Help") == 0 ||
                      cli_strcasecmp(argv[1], "--help") == 0)) {
        help_command(cmd, pool);
        return CLI_EXIT_OK;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.pool = pool;
    ctx.cmd = cmd;
    ctx.interactive = interactive;
    rc = cli_bind(&ctx, argc - 1, argv + 1);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    rc = cmd->fn(&ctx);
    fflush(stdout);
    return rc;
}

/* The interactive shell: one command per line until exit, quit or EOF.
 * Returns the exit code of the last command (or of `exit N`). */
static int
shell(apr_pool_t *pool)
{
    char line[65536];
    int tty = dkv_plat_isatty(0);
    int rc = CLI_EXIT_OK;
    apr_pool_t *sub;

    if (apr_pool_create(&sub, pool) != APR_SUCCESS) {
        return CLI_EXIT_FAILED;
    }
    if (tty) {
        printf("dkv %s ClientShell.  'help' lists the commands, 'exit' "
               "ends.\n", dkv_version());
    }
    for (;;) {
        apr_array_header_t *words;
        const char *const *argv;
        size_t n;

        if (tty) {
            fputs("dkv> ", stdout);
            fflush(stdout);
        }
        if (fgets(line, sizeof(line), stdin) == NULL) {
            if (tty) {
                fputc('\n', stdout);
            }
            break;
        }
        n = strlen(line);
        if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
            int c;
            while ((c = fgetc(stdin)) != EOF && c != '\n') {
            }
            fprintf(stderr, "dkv: line too long (the limit is %u "
                    "bytes)\n", (unsigned)sizeof(line) - 2);
            rc = CLI_EXIT_USAGE;
            continue;
        }
        apr_pool_clear(sub);
        words = cli_split_line(line, sub);
        if (words->nelts == 0) {
            continue;
        }
        argv = (const char *const *)(void *)words->elts;
        if (cli_strcasecmp(argv[0], "exit") == 0 ||
            cli_strcasecmp(argv[0], "quit") == 0) {
            int64_t v;

            if (words->nelts > 1 && cli_parse_i64(&v, argv[1]) == 0) {
                rc = (int)v;
            }
            break;
        }
        rc = run_command(words->nelts, argv, 1, sub);
    }
    apr_pool_destroy(sub);
    return rc;
}

int
main(int argc, const char *const *argv)
{
    apr_pool_t *pool;
    int rc;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS ||
        apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        fprintf(stderr, "dkv: cannot initialize APR\n");
        return CLI_EXIT_FAILED;
    }
    if (argc < 2) {
        rc = shell(pool);
    } else {
        rc = run_command(argc - 1, argv + 1, 0, pool);
    }
    cli_close_cached();
    apr_pool_destroy(pool);
    apr_terminate();
    return rc;
}
