/*
 * remote.h -- the remote backend ("dkv://HOST:PORT[,...]/STORE"), private
 * to src/client: its vtable, its open function and the address parser
 * (exposed for the unit tests).  See remote.c and docs/internals/client.md.
 */
#ifndef DKV_CLIENT_REMOTE_H
#define DKV_CLIENT_REMOTE_H

#include <apr_network_io.h>
#include <apr_pools.h>

#include "client/client.h"

/* A parsed "dkv://" address. */
typedef struct dkv_remote_addr {
    int count;              /* endpoints, in seed-list order (>= 1) */
    char **hosts;           /* names, IPv4, or IPv6 without brackets */
    apr_port_t *ports;
    char *store;
} dkv_remote_addr_t;

/* Parses ADDRESS ("dkv://HOST:PORT[,HOST:PORT...]/STORE"; HOST a name, an
 * IPv4 address or a bracketed IPv6 address; at most 64 endpoints; STORE
 * 1..255 bytes without '/' or control characters) into *OUT, in POOL.
 * Returns DKV_OK, or DKV_EINVAL with a message naming the problem. */
dkv_status_t dkv_remote_parse(dkv_remote_addr_t *out, const char *address,
                              apr_pool_t *pool);

/* Opens the remote backend for CLIENT: parses ADDRESS, connects to the
 * first endpoint of the seed list that completes the handshake, and
 * starts the watch dispatcher.  *STATE receives the backend's state,
 * allocated from a subpool of POOL (with an allocator of its own).
 * Returns DKV_OK; DKV_EINVAL (address, or a node serving another store);
 * DKV_EUNAVAILABLE (no endpoint answered); DKV_ETIMEOUT (every endpoint
 * accepted but none answered the handshake in time); DKV_EUNAUTHORIZED
 * (token refused; the node's message in dkv_last_error()). */
extern const dkv_backend_ops_t dkv_remote_ops;
dkv_status_t dkv_remote_open(void **state, dkv_client_t *client,
                             const char *address,
                             const dkv_open_opts_t *opts, apr_pool_t *pool);

#endif /* DKV_CLIENT_REMOTE_H */
