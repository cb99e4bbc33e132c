/*
 * transport.h -- the cluster port: authenticated, encrypted message links
 * between the nodes of one store (docs/protocol.md, "Cluster links").
 *
 * Each node listens on its cluster port and keeps one outbound link to
 * every peer; a message to peer P goes on this node's link to P, and
 * messages from P arrive on P's link to this node.  A link starts with a
 * mutual authenticated key exchange (src/cluster/link.h) proving that
 * both ends hold the store's secret, then carries AEAD frames with
 * counters; any bad frame drops the link (logged) and the sender
 * reconnects with backoff.  Messages are opaque bytes to the transport,
 * delivered in order per link, at most once; they can be lost when a
 * link drops or a peer's queue is full (Raft retransmits).
 *
 * Threads: one acceptor, one reader per inbound link, one writer per
 * peer.  The receive callback runs on reader threads.  Events go to the
 * process log (common/log.h).
 */
#ifndef DKV_CLUSTER_TRANSPORT_H
#define DKV_CLUSTER_TRANSPORT_H

#include <apr_pools.h>

#include "dkv.h"
#include "common/log.h"

typedef struct dkv_transport dkv_transport_t;

/* Largest message (snapshot chunks are smaller). */
#define DKV_TRANSPORT_MAX_MSG (64u * 1024u * 1024u)

typedef struct dkv_transport_peer {
    uint32_t id;
    const char *host;           /* IPv4/IPv6 literal or name */
    unsigned port;              /* its cluster port */
} dkv_transport_peer_t;

typedef struct dkv_transport_opts {
    uint32_t self;              /* this node's id */
    const char *store;          /* the store's name (bound into the keys) */
    const char *bind;           /* listen address; NULL: 127.0.0.1 */
    unsigned port;              /* listen port; 0: any (see _port()) */
    const unsigned char *secret;/* 32 bytes; copied into sodium_malloc */
    const dkv_transport_peer_t *peers;  /* the others (self skipped) */
    size_t npeers;
    size_t max_queue_bytes;     /* per peer; 0: 64 MiB */
} dkv_transport_opts_t;

/* Called on a reader thread for each message from peer FROM; the callee
 * owns MSG (dkv_malloc'ed, dkv_free it).  Must not block long. */
typedef void (dkv_transport_recv_fn)(void *baton, uint32_t from,
                                     unsigned char *msg, size_t len);

/* Binds the cluster port and starts the threads.  Returns DKV_OK or an
 * APR status (the bind), with dkv_last_error naming address and cause. */
dkv_status_t dkv_transport_create(dkv_transport_t **transport,
                                  const dkv_transport_opts_t *opts,
                                  dkv_transport_recv_fn *recv, void *baton,
                                  apr_pool_t *pool);

/* Adds peer ID at HOST:PORT (copied), or gives peer ID that new
 * address (its link at the old one ends; the writer reconnects at the
 * new one): a store can grow while it runs.  Adding a peer that exists
 * at that address, or this node itself, does nothing.  Links made from
 * now on accept ID at the other end.  Any thread, not concurrently with
 * destroy.  Returns DKV_OK, DKV_EINVAL (bad id, host or port),
 * DKV_ECLOSED (stopping), APR_ENOMEM or a thread creation failure. */
dkv_status_t dkv_transport_add_peer(dkv_transport_t *transport, uint32_t id,
                                    const char *host, unsigned port);

/* The bound port. */
unsigned dkv_transport_port(const dkv_transport_t *transport);

/* Queues MSG (dkv_malloc'ed; the transport owns it from now on) for
 * peer TO.  Never blocks: returns DKV_OK, DKV_EFULL (queue over its
 * bound: dropped), DKV_ENOTFOUND (unknown peer: dropped). */
dkv_status_t dkv_transport_send(dkv_transport_t *transport, uint32_t to,
                                unsigned char *msg, size_t len);

/* As dkv_transport_send, but waits up to TIMEOUT_MS for room in the
 * queue (for snapshot chunks).  DKV_ETIMEOUT when there was none. */
dkv_status_t dkv_transport_send_wait(dkv_transport_t *transport,
                                     uint32_t to, unsigned char *msg,
                                     size_t len, unsigned timeout_ms);

/* 1 when the outbound link to TO is up (handshake done). */
int dkv_transport_connected(dkv_transport_t *transport, uint32_t to);

/* Stops the threads, closes every link and wipes the keys.  No callback
 * runs after it returns.  NULL does nothing. */
void dkv_transport_destroy(dkv_transport_t *transport);

/* Counters of a transport's events since its creation (the tests
 * read them). */
typedef struct dkv_transport_stats {
    uint64_t links_up;          /* outbound handshakes completed */
    uint64_t inbound_up;        /* inbound handshakes accepted */
    uint64_t refused;           /* inbound connections refused in the
                                 * handshake (secret, store, peer id,
                                 * garbage, timeout) */
    uint64_t out_refused;       /* outbound handshakes this side refused
                                 * (the peer failed to authenticate) */
    uint64_t bad_frames;        /* inbound links dropped for a frame that
                                 * failed (forged, replayed, truncated) */
    uint64_t sent;              /* messages written to a link */
    uint64_t received;          /* messages delivered to the callback */
    uint64_t dropped;           /* messages refused by send (full queue,
                                 * timeout, stopping) */
} dkv_transport_stats_t;

/* Copies TRANSPORT's counters into *STATS.  Thread-safe. */
void dkv_transport_stats(dkv_transport_t *transport,
                         dkv_transport_stats_t *stats);

#endif /* DKV_CLUSTER_TRANSPORT_H */
