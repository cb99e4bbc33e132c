/*
 * adminauth.h -- the keys and signatures of the management port, shared
 * by `dkv` (which signs) and dkv-manager (which checks), and the node
 * admin token shared by dkv-manager and dkv-node.  docs/admin-api.md,
 * "Authentication", is the specification; this is its one implementation.
 *
 * Keys:
 *   - an admin's Ed25519 key pair, in the admin's dkv directory
 *     (admin.key, mode 0600), made on first use;
 *   - a manager's Ed25519 signing pair and X25519 sealing pair, in its
 *     data directory (manager.key, mode 0600), made on first start;
 *   - the manager's authorized-keys file: one admin public key a line.
 *
 * Text forms: keys and signatures are standard base64 with padding
 * (sodium_base64_VARIANT_ORIGINAL); a key id is the base64 of a public
 * key.  Secret key material lives in sodium_malloc memory and is wiped.
 *
 * Needs sodium_init() to have run (dkv_adminauth_init does it).
 * Everything here is thread-safe except where a function says it is not.
 */
#ifndef DKV_COMMON_ADMINAUTH_H
#define DKV_COMMON_ADMINAUTH_H

#include <stddef.h>
#include <stdint.h>

#include <apr_pools.h>
#include <apr_tables.h>

#include "dkv/common.h"

/* Sizes of the binary forms. */
#define DKV_ADMIN_PK_BYTES 32          /* Ed25519 public key */
#define DKV_ADMIN_SIG_BYTES 64         /* Ed25519 signature */
#define DKV_BOX_PK_BYTES 32            /* X25519 public key (sealing) */
#define DKV_STORE_SECRET_BYTES 32      /* a store's cluster secret */
#define DKV_ADMIN_NONCE_HEX 32         /* 16 random bytes, lower-case hex */
/* Signed requests are accepted this far from the manager's clock, and
 * their nonces remembered twice as long. */
#define DKV_ADMIN_WINDOW_MS (120 * 1000)

/* The HTTP headers of a signed request. */
#define DKV_ADMIN_HDR_KEY "X-Dkv-Key"
#define DKV_ADMIN_HDR_TIME "X-Dkv-Timestamp"
#define DKV_ADMIN_HDR_NONCE "X-Dkv-Nonce"
#define DKV_ADMIN_HDR_SIG "X-Dkv-Signature"

/* Initializes libsodium (idempotent; the load, verifier and seal
 * functions call it too).  DKV_OK or APR_EGENERAL. */
dkv_status_t dkv_adminauth_init(void);

/* --------------------------------------------------------- admin key */

typedef struct dkv_admin_key dkv_admin_key_t;   /* sodium_malloc'd */

/* Loads the admin key pair from DIR/admin.key, making it (and DIR, mode
 * 0700) when missing; *CREATED (may be NULL) is 1 when it was made now.
 * The key is freed by a cleanup of POOL.  Returns DKV_OK, or an error
 * with a message naming the file: DKV_ECORRUPT when it is damaged, the
 * APR status when it cannot be read or made.  A wrong mode is only
 * logged as a warning by the caller: see dkv_admin_key_mode_ok. */
dkv_status_t dkv_admin_key_load(dkv_admin_key_t **key, int *created,
                                const char *dir, apr_pool_t *pool);

/* The public key id (base64) of KEY, in POOL. */
const char *dkv_admin_key_id(const dkv_admin_key_t *key, apr_pool_t *pool);

/* The authorized-keys line for KEY: "ed25519 <id> <comment>\n". */
const char *dkv_admin_key_line(const dkv_admin_key_t *key,
                               const char *comment, apr_pool_t *pool);

/* --------------------------------------------------------- signing */

/* The string an admin signs (docs/admin-api.md): the lines
 *   dkv-admin-v1, METHOD, PATH, QUERY, MANAGER, TIMESTAMP, NONCE,
 *   lower-case hex SHA-256 of BODY
 * joined by '\n'.  PATH is the decoded path without the query; QUERY is
 * the query's arguments as "k=v" sorted by key and joined by '&' ("" for
 * none; see dkv_admin_query_canon); MANAGER is the target manager's key
 * id.  In POOL. */
const char *dkv_admin_signing_string(const char *method, const char *path,
                                     const char *query,
                                     const char *manager_id,
                                     int64_t timestamp_ms, const char *nonce,
                                     const void *body, size_t body_len,
                                     apr_pool_t *pool);

/* Canonical QUERY from NARGS key/value pairs (KEYS[i], VALUES[i]; a NULL
 * value is written as "k="): sorted by key (bytewise), joined by '&',
 * without any escaping (the API's arguments are [A-Za-z0-9._-]). */
const char *dkv_admin_query_canon(size_t nargs, const char *const *keys,
                                  const char *const *values,
                                  apr_pool_t *pool);

/* The four header values of a signed request, in POOL. */
typedef struct dkv_admin_sig_headers {
    const char *key;        /* X-Dkv-Key: the admin key id */
    const char *timestamp;  /* X-Dkv-Timestamp: ms since the epoch */
    const char *nonce;      /* X-Dkv-Nonce: 32 hex digits */
    const char *signature;  /* X-Dkv-Signature: base64 of 64 bytes */
} dkv_admin_sig_headers_t;

/* Signs a request with KEY at NOW_MS with a fresh nonce. */
dkv_status_t dkv_admin_sign(dkv_admin_sig_headers_t *out,
                            const dkv_admin_key_t *key, const char *method,
                            const char *path, const char *query,
                            const char *manager_id, int64_t now_ms,
                            const void *body, size_t body_len,
                            apr_pool_t *pool);

/* ------------------------------------------------------ verification */

typedef struct dkv_admin_verifier dkv_admin_verifier_t;

/* A verifier for the manager whose key id is MANAGER_ID, trusting the
 * keys in the authorized-keys file PATH (re-read when its modification
 * time or size changes; lines "ed25519 <id> [comment]", '#' comments and
 * blank lines ignored, a malformed line logged and skipped).  Lives in
 * POOL.  Thread-safe. */
dkv_status_t dkv_admin_verifier_create(dkv_admin_verifier_t **v,
                                       const char *manager_id,
                                       const char *path, apr_pool_t *pool);

/* Checks a request: the headers (any NULL: missing), the key is
 * authorized, the timestamp within DKV_ADMIN_WINDOW_MS of NOW_MS, the
 * nonce well-formed and not seen before within the window, and the
 * signature over the signing string.  A nonce is remembered only when
 * everything else holds.  Returns DKV_OK, or DKV_EUNAUTHORIZED with
 * dkv_error_set saying which check failed ("missing X-Dkv-Signature",
 * "malformed X-Dkv-Nonce ...", "unknown key <id>", "timestamp 95 s old
 * ...", "timestamp 95 s in the future ...", "replayed nonce", "bad
 * signature"), for the 401 body and the log line; DKV_EUNAVAILABLE
 * ("too many requests ...") when 100000 nonces are already remembered
 * within two windows; DKV_EINVAL for NULL arguments.  Messages never
 * carry secret material. */
dkv_status_t dkv_admin_verify(dkv_admin_verifier_t *v,
                              const dkv_admin_sig_headers_t *in,
                              const char *method, const char *path,
                              const char *query, int64_t now_ms,
                              const void *body, size_t body_len);

/* ------------------------------------------------------ manager keys */

typedef struct dkv_manager_keys dkv_manager_keys_t;   /* sodium_malloc'd */

/* Loads DIR/manager.key, making it (and DIR, mode 0700; the file mode
 * 0600) when missing; *CREATED (may be NULL) is 1 when it was made now.
 * Freed by a cleanup of POOL.  DKV_ECORRUPT naming the file when it is
 * damaged (its public halves must match its secret halves). */
dkv_status_t dkv_manager_keys_load(dkv_manager_keys_t **keys, int *created,
                                   const char *dir, apr_pool_t *pool);

/* The manager's signing key id and sealing public key (base64). */
const char *dkv_manager_sign_id(const dkv_manager_keys_t *keys,
                                apr_pool_t *pool);
const char *dkv_manager_box_id(const dkv_manager_keys_t *keys,
                               apr_pool_t *pool);

/* ----------------------------------------------------------- sealing */

/* Seals LEN bytes of DATA to the manager whose sealing key is BOX_ID
 * (base64): *SEALED is the base64 of crypto_box_seal's output, in POOL.
 * DKV_EINVAL for a malformed BOX_ID. */
dkv_status_t dkv_seal(const char **sealed, const char *box_id,
                      const void *data, size_t len, apr_pool_t *pool);

/* Opens SEALED (base64) with KEYS into *DATA (sodium_malloc'd, *LEN
 * bytes; free with sodium_free).  DKV_EINVAL when it is malformed or was
 * not sealed to this manager. */
dkv_status_t dkv_unseal(unsigned char **data, size_t *len,
                        const dkv_manager_keys_t *keys, const char *sealed);

/* ------------------------------------------------- node admin token */

/* The token with which a store's manager opens an admin connection to
 * its local nodes (HELLO token), derived from the store's secret:
 * lower-case hex of BLAKE2b-256 keyed with SECRET over
 * "dkv-node-admin-v1".  OUT gets 64 digits and a NUL. */
void dkv_admin_node_token(char out[65],
                          const unsigned char secret[DKV_STORE_SECRET_BYTES]);

/* --------------------------------------------------------- helpers */

/* Base64 (standard, padded) of LEN bytes, in POOL; and back: DKV_OK
 * with *LEN bytes written into OUT (at most CAP), or DKV_EINVAL. */
const char *dkv_b64(const void *data, size_t len, apr_pool_t *pool);
dkv_status_t dkv_unb64(void *out, size_t cap, size_t *len, const char *b64);

/* Writes LEN bytes of DATA to PATH atomically (temp file, sync, rename)
 * with mode 0600 (Windows: the file's default ACL).  Creates nothing
 * else.  Returns DKV_OK or the status with a message naming PATH. */
dkv_status_t dkv_write_private_file(const char *path, const void *data,
                                    size_t len, apr_pool_t *pool);

/* 1 when the private file PATH grants nothing to group or others (or
 * when that cannot be told: always on Windows, where the file has its
 * directory's default ACL), else 0: the caller logs a warning. */
int dkv_admin_key_mode_ok(const char *path, apr_pool_t *pool);

#endif /* DKV_COMMON_ADMINAUTH_H */
