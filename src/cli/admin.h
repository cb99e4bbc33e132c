/*
 * admin.h -- the AdminShell internals of `dkv`: the managers (parsing
 * their addresses, the managers session file kept by Connect-DkvManager,
 * the known keys kept for trust on first use), the HTTP client that talks
 * to them (libcurl; signed requests, docs/admin-api.md), running one job
 * per manager (sequentially or on one thread each), the result rows
 * (Manager / Action / Result / Message) and the commands.
 *
 * Exit codes of the admin commands: CLI_EXIT_OK only when every row
 * succeeded; CLI_EXIT_USAGE for a bad command line; CLI_EXIT_NOTCONN when
 * no managers are connected; CLI_EXIT_CONNECT when a manager could not be
 * reached; CLI_EXIT_FAILED otherwise (a refused admin key included).
 */
#ifndef DKV_CLI_ADMIN_H
#define DKV_CLI_ADMIN_H

#include "cli/cli.h"
#include "common/adminauth.h"

/* The management port when a manager address gives none. */
#define CLI_MGR_PORT 7801

/* One manager as the admin addresses it. */
typedef struct cli_mgr {
    const char *address;    /* "host:port" or "[v6]:port": shown, keyed */
    const char *host;       /* the host as given (no brackets) */
    int port;
    const char *url;        /* "http://host:port" */
    const char *sign_key;   /* its key id (identity signKey); NULL: unknown */
    const char *box_key;    /* its sealing key (identity boxKey) */
    const char *error;      /* set when it could not be resolved */
    int unreachable;        /* error is a transport failure */
    void *curl;             /* its libcurl easy handle (mgrclient.c) */
} cli_mgr_t;

/* The outcome of one HTTP request to a manager. */
typedef struct cli_http {
    long status;            /* HTTP status; 0: no answer */
    json_t *body;           /* the JSON answer (caller decrefs), or NULL */
    const char *code;       /* error.code of a failure answer, or NULL */
    const char *message;    /* error.message, or what went wrong; NULL: ok */
    int transport;          /* 1: the manager did not answer */
} cli_http_t;

/* ------------------------------------------------------------ managers */

/* Parses SPEC (host, host:port, IP, [v6]:port, bare v6, http://host:port
 * with an optional trailing '/') into *MGR, with PORT when SPEC gives
 * none.  Refuses unspecified addresses (0.0.0.0, ::, ::0).  Returns 0, or
 * -1 with *WHY (in POOL) saying what is wrong. */
int cli_mgr_parse(cli_mgr_t **mgr, const char *spec, int port,
                  const char **why, apr_pool_t *pool);

/* Initializes libcurl and libsodium once (main thread, before any job).
 * Returns DKV_OK or APR_EGENERAL. */
dkv_status_t cli_admin_init(void);

/* Sends METHOD PATH[?QUERY] with BODY (NULL: none; not stolen) to MGR,
 * signed with KEY when KEY is not NULL (MGR->sign_key must be known),
 * waiting at most TIMEOUT_SEC.  Fills *OUT: a 2xx answer has status and
 * body; anything else has message (for the operator: names the manager
 * and the likely cause) and, for error answers, code, and the body when
 * it was JSON: the caller decrefs OUT->body either way.  Returns 1 for a
 * 2xx answer, else 0.  Thread-safe for different managers. */
int cli_mgr_request(cli_http_t *out, cli_mgr_t *mgr,
                    const dkv_admin_key_t *key, const char *method,
                    const char *path, const char *query, json_t *body,
                    int timeout_sec, apr_pool_t *pool);

/* GET /admin/v1/identity: sets MGR->sign_key and box_key (in POOL).
 * Returns 1, or 0 with *OUT's message; *OUT has no body either way. */
int cli_mgr_identity(cli_http_t *out, cli_mgr_t *mgr, int timeout_sec,
                     apr_pool_t *pool);

/* Frees MGR's libcurl handle (idempotent). */
void cli_mgr_close(cli_mgr_t *mgr);

/* Reads the managers session file: *MGRS (cli_mgr_t *) NULL when none.
 * Returns DKV_OK, or an error (damaged file, message printed). */
dkv_status_t cli_mgrs_load(apr_array_header_t **mgrs, apr_pool_t *pool);

/* Writes MGRS (with their keys) as the managers session file (mode 0600,
 * atomically).  Returns DKV_OK or the failure. */
dkv_status_t cli_mgrs_save(const apr_array_header_t *mgrs,
                           apr_pool_t *pool);

/* Path of the managers session file, in POOL. */
const char *cli_mgrs_path(apr_pool_t *pool);

/* Trust on first use: the keys recorded for ADDRESS in the known
 * managers file, or 0 when it has none.  *SIGN and *BOX in POOL. */
int cli_known_get(const char **sign, const char **box, const char *address,
                  apr_pool_t *pool);

/* Records MGRS' keys in the known managers file (mode 0600). */
dkv_status_t cli_known_put(const apr_array_header_t *mgrs,
                           apr_pool_t *pool);

/* The managers of an admin command: parsed from -Managers (each one's
 * identity fetched now; one that fails keeps MGR->error) or loaded from
 * the session.  On failure prints why and returns the exit code
 * (CLI_EXIT_NOTCONN when there are none, CLI_EXIT_USAGE for a bad
 * address). */
int cli_admin_managers(cli_ctx_t *ctx, apr_array_header_t **mgrs);

/* Loads (making it on first use, saying so on stderr) the admin's key.
 * Prints why and returns CLI_EXIT_FAILED when that fails. */
int cli_admin_key(cli_ctx_t *ctx, dkv_admin_key_t **key);

/* The manager among MGRS whose key id is SIGN_KEY, or NULL. */
cli_mgr_t *cli_mgr_by_key(const apr_array_header_t *mgrs,
                          const char *sign_key);

/* ---------------------------------------------------------------- jobs */

typedef struct cli_job cli_job_t;

/* A job's work against its manager; adds rows with cli_row; returns 1
 * when everything it did succeeded. */
typedef int (cli_job_fn)(cli_job_t *job);

struct cli_job {
    cli_mgr_t *mgr;
    void *arg;                  /* the command's (read-only in jobs) */
    const char *action;         /* for SKIPPED rows */
    const dkv_admin_key_t *key;
    int timeout_sec;
    apr_pool_t *pool;           /* the job's own */
    json_t *rows;               /* its rows (array) */
    int ok;                     /* the fn's answer */
    int unreachable;            /* a transport failure happened */
    int own_errors;             /* 1: fn runs for an unresolved manager */
    json_t *result;             /* the fn's answer for the command, or NULL */
    cli_job_fn *fn;
};

/* Makes one job per manager of MGRS, each with its own pool. */
apr_array_header_t *cli_jobs_make(cli_ctx_t *ctx,
                                  const apr_array_header_t *mgrs,
                                  cli_job_fn *fn, void *arg,
                                  const char *action,
                                  const dkv_admin_key_t *key);

/* Runs JOBS (cli_job_t *): in order, or with -Parallel one thread each;
 * with -FailFast the jobs after a failed one are skipped (a SKIPPED row
 * each).  Appends every job's rows, in order, to ROWS.  Returns 1 when
 * all succeeded. */
int cli_jobs_run(cli_ctx_t *ctx, apr_array_header_t *jobs, json_t *rows);

/* Appends a Manager / Action / Result / Message row to ROWS. */
void cli_row(json_t *rows, const char *manager, const char *action,
             const char *result, const char *message);

/* The exit code for the rows of a command: OK when every Result is
 * SUCCESS, CONNECT when UNREACHABLE is set, else FAILED. */
int cli_rows_exit(const json_t *rows, int unreachable);

/* A message for a failed answer: the manager's message, plus the hint
 * of the troubleshooting page for its code; in POOL. */
const char *cli_http_why(const cli_http_t *r, apr_pool_t *pool);

/* The rows of a manager that could not be resolved (MGR->error). */
void cli_mgr_failed_row(json_t *rows, const cli_mgr_t *mgr,
                        const char *action);

/* 1 when NAME is a valid store or instance name (1-64 characters of
 * [A-Za-z0-9._-], starting with a letter or digit). */
int cli_admin_name_ok(const char *name);

/* ------------------------------------------------------------- commands */

int cli_cmd_connect_manager(cli_ctx_t *ctx);
int cli_cmd_new_store(cli_ctx_t *ctx);
int cli_cmd_get_store(cli_ctx_t *ctx);
int cli_cmd_start_store(cli_ctx_t *ctx);
int cli_cmd_stop_store(cli_ctx_t *ctx);
int cli_cmd_add_instance(cli_ctx_t *ctx);
int cli_cmd_watch_metrics(cli_ctx_t *ctx);
int cli_cmd_admin_key(cli_ctx_t *ctx);

#endif /* DKV_CLI_ADMIN_H */
