/*
 * cli.h -- the internals of `dkv`, the ClientShell command-line client:
 * the command table, parameter parsing, output (tables or -Json), the
 * per-user session and the commands themselves, which call the public
 * client API (include/dkv.h) only.
 *
 * Flow: main.c finds the command, args.c binds the arguments to the
 * command's parameters (names case-insensitive, positions, switches,
 * lists, hashtables, TimeSpans), the command runs with a cli_ctx_t, builds
 * jansson objects with the reference's field names and hands them to
 * output.c, which prints a table or JSON.  session.c keeps the connection
 * made by Connect-DkvStore in a per-user file and opens the store.
 */
#ifndef DKV_CLI_H
#define DKV_CLI_H

#include <signal.h>
#include <stdint.h>

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>

#include "dkv.h"

/* ----------------------------------------------------------- exit codes */

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILED 1        /* the operation failed */
#define CLI_EXIT_USAGE 2         /* bad command line */
#define CLI_EXIT_NOTCONN 3       /* no store connection */
#define CLI_EXIT_CONNECT 4       /* the store is unreachable or refused */

/* ----------------------------------------------------------- parameters */

typedef enum cli_kind {
    CLI_STR = 1,     /* a string */
    CLI_INT,         /* a decimal int64 within [min, max] */
    CLI_U64,         /* a decimal uint64 (lease ids) */
    CLI_SWITCH,      /* present or not; -Name:$false turns it off */
    CLI_LIST,        /* comma-separated list: a,b,c */
    CLI_MAP,         /* k1=v1,k2=v2 or @{k1='v1';k2='v2'} */
    CLI_SPAN         /* TimeSpan: hh:mm:ss, 30s, 5m, 1h, 500ms, seconds */
} cli_kind_t;

typedef struct cli_param {
    const char *name;       /* "Key" */
    const char *alias;      /* another accepted name, or NULL */
    cli_kind_t kind;
    int position;           /* -1: by name only */
    int mandatory;
    int64_t min, max;       /* CLI_INT range; CLI_SPAN range in ms */
    const char *defval;     /* default shown by help, or NULL */
    const char *help;       /* one line */
} cli_param_t;

/* One key=value pair of a CLI_MAP parameter. */
typedef struct cli_pair {
    const char *key;
    const char *value;
} cli_pair_t;

typedef struct cli_ctx cli_ctx_t;
typedef struct cli_cmd cli_cmd_t;

/* A command: returns a CLI_EXIT_* code. */
typedef int (cli_fn_t)(cli_ctx_t *ctx);

struct cli_cmd {
    const char *name;            /* "Get-DkvItem" */
    const char *synopsis;        /* one line */
    const cli_param_t *params;   /* ends with a NULL name */
    cli_fn_t *fn;
    int whatif;                  /* 1: takes -WhatIf (ShouldProcess) */
};

/* What a running command has: its bound arguments and the output mode. */
struct cli_ctx {
    apr_pool_t *pool;            /* cleared after the command */
    const cli_cmd_t *cmd;
    int nparams;
    const char **raw;            /* per parameter: the text, or NULL */
    int64_t *ival;               /* CLI_INT, CLI_U64 (as bits), CLI_SPAN */
    apr_array_header_t **list;   /* CLI_LIST: char *; CLI_MAP: cli_pair_t */
    int json;                    /* -Json */
    int whatif;                  /* -WhatIf */
    int interactive;             /* run from the interactive shell */
};

/* The command table (main.c). */
extern const cli_cmd_t cli_commands[];

/* Set by the SIGINT handler while a long-running command runs. */
extern volatile sig_atomic_t cli_interrupted;

/* Installs (ON 1) or removes the Ctrl+C handler that sets
 * cli_interrupted instead of ending the process. */
void cli_catch_interrupt(int on);

/* ------------------------------------------------------------ arguments */

/* Splits LINE into words (quotes group and are removed, except inside
 * @{...}, which stays one word).  Returns an array of char * in POOL. */
apr_array_header_t *cli_split_line(const char *line, apr_pool_t *pool);

/* Binds ARGV (the words after the command name) to CTX->cmd's
 * parameters, checking names, values, ranges and mandatory ones.
 * Returns CLI_EXIT_OK, or CLI_EXIT_USAGE after printing why. */
int cli_bind(cli_ctx_t *ctx, int argc, const char *const *argv);

/* Index of parameter NAME of the running command, or -1. */
int cli_param_index(const cli_ctx_t *ctx, const char *name);

/* Bound values by parameter name; the fallbacks when absent. */
int cli_has(const cli_ctx_t *ctx, const char *name);
const char *cli_str(const cli_ctx_t *ctx, const char *name,
                    const char *fallback);
int64_t cli_int(const cli_ctx_t *ctx, const char *name, int64_t fallback);
apr_array_header_t *cli_list(const cli_ctx_t *ctx, const char *name);

/* Value parsers (also used by the commands).  Return 0 on success. */
int cli_parse_i64(int64_t *out, const char *s);
int cli_parse_u64(uint64_t *out, const char *s);
int cli_parse_span(int64_t *ms, const char *s);

/* Case-insensitive ASCII comparison; 0 when equal. */
int cli_strcasecmp(const char *a, const char *b);

/* Prints "dkv: CMD: message" on stderr (printf format). */
void cli_error(const cli_ctx_t *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* --------------------------------------------------------------- output */

/* Prints OBJ (an object: a "Name : Value" list; an array of objects:
 * columns) as a table, or as JSON with -Json.  Steals the reference. */
void cli_print(const cli_ctx_t *ctx, json_t *obj);

/* Formats VAL for a table cell (True/False, {a, b}, numbers).  POOL. */
const char *cli_cell(const json_t *val, apr_pool_t *pool);

/* A byte string as JSON: a string when it is UTF-8 text, else an array
 * of byte values (PowerShell's byte[]). */
json_t *cli_json_bytes(const void *data, size_t len);

/* ISO 8601 UTC ("2026-03-08T10:15:30.123Z") and local "14:32:11.456"
 * renderings of an APR time; "hh:mm:ss" of a duration in ms. */
const char *cli_time_utc(apr_time_t t, apr_pool_t *pool);
const char *cli_time_local(apr_time_t t, apr_pool_t *pool);
const char *cli_span_text(int64_t ms, apr_pool_t *pool);

/* A new result object carrying "StoreName" first. */
json_t *cli_result(const char *store);

/* Sets "Success" and "Error" on OBJ from STATUS (DKV_OK: true, null). */
void cli_set_outcome(json_t *obj, dkv_status_t status);

/* The message for STATUS: dkv_last_error() when set, else
 * dkv_strerror(). */
const char *cli_status_text(dkv_status_t status, apr_pool_t *pool);

/* The exit code for a failed STATUS: CLI_EXIT_CONNECT for transport,
 * timeout, unavailable and unauthorized; else CLI_EXIT_FAILED. */
int cli_exit_for(dkv_status_t status);

/* -------------------------------------------------------------- session */

/* The per-user connection kept by Connect-DkvStore. */
typedef struct cli_session {
    const char *store;
    apr_array_header_t *endpoints;   /* char * */
    const char *client_id;
    const char *connected_at;        /* ISO 8601 UTC */
    int timeout_sec;
    const char *token;               /* NULL: none */
    const char *token_file;          /* NULL: none */
} cli_session_t;

/* The per-user directory (created 0700 if missing), in POOL.  Returns
 * DKV_OK or the status of the failure. */
dkv_status_t cli_config_dir(const char **dir, apr_pool_t *pool);

/* Reads the session file: *SESSION NULL when there is none.  Returns
 * DKV_OK, or an error (unreadable or damaged file, printed). */
dkv_status_t cli_session_load(cli_session_t **session, apr_pool_t *pool);

/* Writes SESSION to the session file (mode 0600, atomically). */
dkv_status_t cli_session_save(const cli_session_t *session,
                              apr_pool_t *pool);

/* Removes the session file; a missing file is not an error. */
dkv_status_t cli_session_remove(apr_pool_t *pool);

/* Path of the session file, in POOL. */
const char *cli_session_path(apr_pool_t *pool);

/* Checks ENDPOINTS (host:port, [v6]:port, or one inproc:PATH) and makes
 * the dkv_open address for STORE; an inproc path becomes absolute.
 * Returns NULL and sets *WHY when malformed. */
const char *cli_address(const char *store, apr_array_header_t *endpoints,
                        const char **why, apr_pool_t *pool);

/* Opens (or, in the shell, reuses) a client for SESSION.  *CLIENT stays
 * owned by session.c.  Returns the dkv_open status. */
dkv_status_t cli_open(dkv_client_t **client, const cli_session_t *session,
                      apr_pool_t *pool);

/* Closes the cached client, if any. */
void cli_close_cached(void);

/* Loads the session and opens its client for a command; on failure
 * prints what to do and returns the exit code (CLI_EXIT_NOTCONN when
 * there is no session).  *SESSION and *CLIENT are set on CLI_EXIT_OK. */
int cli_connect_ctx(cli_ctx_t *ctx, cli_session_t **session,
                    dkv_client_t **client);

/* The token of SESSION: its -Token, the contents of its token file, or
 * the DKV_TOKEN environment variable; NULL for none. */
const char *cli_session_token(const cli_session_t *session,
                              apr_pool_t *pool);

/* Appends a line to the client log (dkv-<Store>-<yyyyMMdd>.log in the
 * config directory); failures to log are ignored.  Returns the path. */
const char *cli_log(const char *store, apr_pool_t *pool, const char *fmt,
                    ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* A random UUID (version 4) in POOL. */
const char *cli_uuid(apr_pool_t *pool);

/* ------------------------------------------------------------- commands */

/* `dkv firewall open|close|status [-Ranges ...]` (cmd_firewall.c,
 * docs/operations.md): ARGV starts after "firewall".  Returns a CLI_EXIT_*
 * code. */
int cli_firewall_main(int argc, const char *const *argv, apr_pool_t *pool);

int cli_cmd_connect(cli_ctx_t *ctx);
int cli_cmd_disconnect(cli_ctx_t *ctx);
int cli_cmd_get_connection(cli_ctx_t *ctx);
int cli_cmd_test_connection(cli_ctx_t *ctx);

int cli_cmd_get_item(cli_ctx_t *ctx);
int cli_cmd_get_items(cli_ctx_t *ctx);
int cli_cmd_set_item(cli_ctx_t *ctx);
int cli_cmd_set_items(cli_ctx_t *ctx);
int cli_cmd_remove_item(cli_ctx_t *ctx);
int cli_cmd_remove_items(cli_ctx_t *ctx);
int cli_cmd_refresh_item(cli_ctx_t *ctx);
int cli_cmd_set_expiration(cli_ctx_t *ctx);
int cli_cmd_get_metadata(cli_ctx_t *ctx);
int cli_cmd_test_item(cli_ctx_t *ctx);

int cli_cmd_get_counter(cli_ctx_t *ctx);
int cli_cmd_set_counter(cli_ctx_t *ctx);
int cli_cmd_increment_counter(cli_ctx_t *ctx);
int cli_cmd_decrement_counter(cli_ctx_t *ctx);
int cli_cmd_grant_lease(cli_ctx_t *ctx);
int cli_cmd_refresh_lease(cli_ctx_t *ctx);
int cli_cmd_revoke_lease(cli_ctx_t *ctx);
int cli_cmd_test_lease(cli_ctx_t *ctx);

int cli_cmd_watch_key(cli_ctx_t *ctx);
int cli_cmd_watch_prefix(cli_ctx_t *ctx);

int cli_cmd_test_latency(cli_ctx_t *ctx);
int cli_cmd_test_throughput(cli_ctx_t *ctx);
int cli_cmd_benchmark(cli_ctx_t *ctx);
int cli_cmd_stress(cli_ctx_t *ctx);

#endif /* DKV_CLI_H */
