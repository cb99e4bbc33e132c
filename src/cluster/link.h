/*
 * link.h -- one secure channel between two nodes of a store, on buffers:
 * the mutual authenticated key exchange and the AEAD framing of the
 * cluster port (docs/protocol.md, "Cluster links").  No sockets here: the
 * transport (transport.c) moves the bytes, and the tests feed links to
 * each other directly.
 *
 * Handshake.  The initiator (the side that connected) sends its hello;
 * the responder answers with its hello and its confirmation; the
 * initiator sends its confirmation.  Each hello carries a fresh ephemeral
 * X25519 key and a random nonce; the session keys and both confirmations
 * are BLAKE2b keyed with the store's 256-bit secret over the X25519
 * shared secret and both hellos, so only holders of the secret can
 * compute them.  Each side accepts only after checking the other's
 * confirmation (constant time), the store name, and that the other's
 * node id is one of its configured peers.
 *
 * Frames.  After the handshake each message is one frame: a 4-byte
 * big-endian length, then XChaCha20-Poly1305 ciphertext and tag.  The
 * nonce and the additional data hold a per-direction counter that both
 * ends count, so a replayed, reordered, dropped or altered frame fails
 * to open.  Any failure breaks the link for good: every later call
 * returns the same status.
 *
 * A link is used by one thread at a time.  libsodium must be usable
 * (dkv_link_create calls sodium_init, which is idempotent).
 */
#ifndef DKV_CLUSTER_LINK_H
#define DKV_CLUSTER_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "dkv.h"

typedef struct dkv_link dkv_link_t;

/* Size of the store's secret. */
#define DKV_LINK_SECRET_SIZE 32u
/* Size of a hello message on the wire. */
#define DKV_LINK_HELLO_SIZE 112u
/* Size of a confirmation on the wire. */
#define DKV_LINK_CONFIRM_SIZE 32u
/* Most bytes one handshake step produces (responder: hello + confirm). */
#define DKV_LINK_HS_MAX (DKV_LINK_HELLO_SIZE + DKV_LINK_CONFIRM_SIZE)
/* Frame header (the length) and the AEAD tag after the ciphertext. */
#define DKV_LINK_HEADER_SIZE 4u
#define DKV_LINK_TAG_SIZE 16u
#define DKV_LINK_FRAME_OVERHEAD (DKV_LINK_HEADER_SIZE + DKV_LINK_TAG_SIZE)
/* Largest message a frame carries (DKV_TRANSPORT_MAX_MSG). */
#define DKV_LINK_MAX_MSG (64u * 1024u * 1024u)
/* Current version of the handshake and framing. */
#define DKV_LINK_VERSION 1u

typedef struct dkv_link_opts {
    uint32_t self;              /* this node's id (nonzero) */
    const char *store;          /* the store's name */
    const unsigned char *secret;/* DKV_LINK_SECRET_SIZE bytes; copied */
    const uint32_t *peers;      /* node ids allowed at the other end */
    size_t npeers;
    int initiator;              /* 1: this side connected; 0: accepted */
    uint32_t expect;            /* initiator: the id it dialled (0: any
                                 * of PEERS) */
} dkv_link_opts_t;

/* Makes a link in its first handshake state, drawing its ephemeral key
 * and nonce.  The secret and every derived key live in sodium_malloc
 * memory; OPTS and what it points to may be freed after the call.
 * Returns DKV_OK, DKV_EINVAL (no secret or store, self 0, expect not a
 * peer), APR_ENOMEM, or DKV_EUNAVAILABLE (libsodium failed to start). */
dkv_status_t dkv_link_create(dkv_link_t **link, const dkv_link_opts_t *opts);

/* Wipes every key of LINK and frees it.  NULL does nothing. */
void dkv_link_destroy(dkv_link_t *link);

/* ------------------------------------------------------------ handshake */

/* Starts the handshake: the initiator writes its hello into OUT (room for
 * DKV_LINK_HS_MAX bytes) and sets *OUT_LEN to DKV_LINK_HELLO_SIZE; the
 * responder writes nothing (*OUT_LEN = 0).  Call once, first.  Returns
 * DKV_OK or DKV_EINVAL (called twice). */
dkv_status_t dkv_link_start(dkv_link_t *link, unsigned char *out,
                            size_t *out_len);

/* How many bytes of the peer's the handshake needs next; 0 when it is
 * done (or broken: see dkv_link_established). */
size_t dkv_link_need(const dkv_link_t *link);

/* Feeds the handshake exactly dkv_link_need() bytes IN from the peer and
 * writes what goes back to it into OUT (room for DKV_LINK_HS_MAX bytes;
 * *OUT_LEN may be 0).  Returns DKV_OK; DKV_EUNAUTHORIZED when the peer is
 * refused (a node id that is not a configured peer, another store, a
 * wrong confirmation: it does not hold the secret, a reflected hello);
 * DKV_ECORRUPT when the bytes are not a hello of this version;
 * DKV_EINVAL when LEN is not what was needed.  dkv_last_error() names
 * the reason (never key material).  A failure breaks the link. */
dkv_status_t dkv_link_input(dkv_link_t *link, const unsigned char *in,
                            size_t len, unsigned char *out,
                            size_t *out_len);

/* 1 when the handshake completed on this side (the peer's confirmation
 * checked), else 0. */
int dkv_link_established(const dkv_link_t *link);

/* The other end's node id, known once its hello was accepted (else 0). */
uint32_t dkv_link_peer(const dkv_link_t *link);

/* -------------------------------------------------------------- frames */

/* Seals MSG (LEN bytes, at most DKV_LINK_MAX_MSG) as the next frame, IN
 * PLACE: MSG becomes the ciphertext, HDR (DKV_LINK_HEADER_SIZE bytes)
 * receives the header and TAG (DKV_LINK_TAG_SIZE bytes) the tag; the
 * frame on the wire is HDR, MSG, TAG.  Returns DKV_OK, DKV_EINVAL (not
 * established, or broken), DKV_ETOOLARGE. */
dkv_status_t dkv_link_seal_inplace(dkv_link_t *link, unsigned char *hdr,
                                   unsigned char *msg, size_t len,
                                   unsigned char *tag);

/* Seals MSG (LEN bytes) as the next frame into OUT, which has room for
 * LEN + DKV_LINK_FRAME_OVERHEAD bytes (all of them are written).  Same
 * statuses as dkv_link_seal_inplace. */
dkv_status_t dkv_link_seal(dkv_link_t *link, unsigned char *out,
                           const unsigned char *msg, size_t len);

/* Reads a frame header HDR: *BODY_LEN receives how many bytes follow it
 * (ciphertext and tag).  Returns DKV_OK, or DKV_ECORRUPT when the length
 * is below the tag size or above DKV_LINK_MAX_MSG plus the tag (breaks
 * the link), DKV_EINVAL when not established. */
dkv_status_t dkv_link_frame_len(dkv_link_t *link, size_t *body_len,
                                const unsigned char *hdr);

/* Opens the next frame IN PLACE: HDR is its header, BODY its BODY_LEN
 * bytes; on success BODY's first *MSG_LEN (= BODY_LEN - tag) bytes are the
 * message.  Returns DKV_OK, or DKV_ECORRUPT when the frame does not
 * authenticate (altered, replayed, reordered, a frame missing before it,
 * or another key), which breaks the link. */
dkv_status_t dkv_link_open_inplace(dkv_link_t *link, size_t *msg_len,
                                   const unsigned char *hdr,
                                   unsigned char *body, size_t body_len);

/* Opens the first frame of a byte stream BUF (LEN bytes received so far).
 * When BUF holds a whole frame: *MSG is a dkv_malloc'ed copy of its
 * message (the caller frees it; never NULL, even for 0 bytes), *MSG_LEN
 * its length and *CONSUMED the frame's size.  When BUF holds only part
 * of a frame: *MSG = NULL, *CONSUMED = 0, nothing changes.  Returns
 * DKV_OK, DKV_ECORRUPT as dkv_link_frame_len and dkv_link_open_inplace,
 * APR_ENOMEM. */
dkv_status_t dkv_link_open(dkv_link_t *link, unsigned char **msg,
                           size_t *msg_len, size_t *consumed,
                           const unsigned char *buf, size_t len);

/* Reports the end of the peer's stream with PENDING bytes of an
 * unfinished frame (or handshake message) received: DKV_OK when PENDING
 * is 0 and the handshake is not midway, else DKV_ETRANSPORT "stream
 * ended inside a frame" (breaks the link). */
dkv_status_t dkv_link_eof(dkv_link_t *link, size_t pending);

/* The status that broke LINK, or DKV_OK while it works. */
dkv_status_t dkv_link_broken(const dkv_link_t *link);

#endif /* DKV_CLUSTER_LINK_H */
