/*
 * server.h -- what dkv-manager's main.c, http.c and api.c share: the
 * server's state, one HTTP request and its answer.  The other modules'
 * interfaces are in manager.h (docs/internals/manager.md).
 */
#ifndef DKV_MANAGER_SERVER_H
#define DKV_MANAGER_SERVER_H

#include <apr_atomic.h>
#include <apr_tables.h>
#include <apr_thread_mutex.h>

#include "manager/manager.h"

/* Largest request body; more is answered 413. */
#define MGR_BODY_MAX (1024u * 1024u)

typedef struct mgr_http mgr_http_t;

/* The running manager: built by main.c, read by the request threads. */
typedef struct mgr_server {
    mgr_config_t cfg;
    apr_pool_t *pool;
    mgr_registry_t *reg;
    mgr_sup_t *sup;
    mgr_metrics_t *metrics;
    dkv_manager_keys_t *keys;
    const char *sign_id;           /* our signing key id (base64) */
    const char *box_id;            /* our sealing key (base64) */
    dkv_admin_verifier_t *verifier;
    int64_t started_ms;
    apr_thread_mutex_t *lock;      /* registry read-modify-write */
    volatile apr_uint32_t requests;       /* apr_atomic counters */
    volatile apr_uint32_t auth_failures;
    volatile apr_uint32_t stopping;       /* 1: shutting down */
    uint16_t bound_port;           /* the port actually bound */
    const char *where;             /* "HOST:PORT" of the listener */
    mgr_http_t *http;
} mgr_server_t;

/* One request, as http.c hands it to an endpoint. */
typedef struct mgr_req {
    const char *method;
    const char *path;              /* decoded, without the query */
    const char *peer;              /* client address, for log lines */
    apr_table_t *args;             /* query arguments */
    const char *body;              /* NUL-terminated copy */
    size_t body_len;
    apr_pool_t *pool;              /* lives until the answer is sent */
} mgr_req_t;

/* The answer an endpoint fills in. */
typedef struct mgr_resp {
    unsigned status;
    const char *type;              /* Content-Type */
    const char *body;
    size_t len;
} mgr_resp_t;

/* ---------------------------------------------------------- http.c */

/* Starts listening on CFG's bind and port (0: a free one) and serving
 * requests on libmicrohttpd's threads.  Sets SRV->bound_port and
 * SRV->where.  Returns DKV_OK, or DKV_EUNAVAILABLE with a message naming
 * the address (port in use, bad address). */
dkv_status_t mgr_http_start(mgr_server_t *srv, apr_pool_t *pool);

/* Stops listening and waits for the requests in progress.  NULL-safe. */
void mgr_http_stop(mgr_server_t *srv);

/* Sets RESP to STATUS with the JSON text of ROOT (a reference it takes),
 * in REQ's pool. */
void mgr_resp_json(mgr_resp_t *resp, unsigned status, json_t *root,
                   const mgr_req_t *req);

/* Sets RESP to the error body {"error":{"code","message"}} with STATUS,
 * and logs the refusal with the method, path and peer (warning for 4xx,
 * error for 5xx). */
void mgr_resp_error(mgr_resp_t *resp, const mgr_req_t *req, unsigned status,
                    const char *code, const char *message);

/* The JSON text of ROOT (compact), NUL-terminated, in POOL; NULL when
 * it cannot be encoded. */
const char *mgr_json_text(json_t *root, size_t *len, apr_pool_t *pool);

/* ----------------------------------------------------------- api.c */

/* The endpoints of docs/admin-api.md; http.c has routed, checked the
 * method and the signature.  STORE and INSTANCE are the path's parts. */
void mgr_api_identity(mgr_resp_t *resp, mgr_server_t *srv,
                      const mgr_req_t *req);
void mgr_api_list(mgr_resp_t *resp, mgr_server_t *srv,
                  const mgr_req_t *req);
void mgr_api_get(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
                 const char *store);
void mgr_api_create(mgr_resp_t *resp, mgr_server_t *srv,
                    const mgr_req_t *req);
void mgr_api_add(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
                 const char *store);
void mgr_api_seal(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
                  const char *store);
void mgr_api_start(mgr_resp_t *resp, mgr_server_t *srv,
                   const mgr_req_t *req, const char *store,
                   const char *instance);
void mgr_api_stop(mgr_resp_t *resp, mgr_server_t *srv, const mgr_req_t *req,
                  const char *store, const char *instance);
void mgr_api_metrics(mgr_resp_t *resp, mgr_server_t *srv,
                     const mgr_req_t *req);

/* Starts (or adopts) every local instance whose desired state is
 * running, one after the other; gives up early when SRV->stopping is
 * set.  Failures are logged.  Called on a thread of main.c's. */
void mgr_api_resume(mgr_server_t *srv, apr_pool_t *pool);

#endif /* DKV_MANAGER_SERVER_H */
