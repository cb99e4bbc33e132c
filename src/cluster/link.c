/*
 * link.c -- the cluster link's handshake and framing on buffers (see
 * link.h; the byte layout is in docs/protocol.md, "Cluster links").
 *
 * Keys.  DH is the X25519 shared secret of the two ephemeral keys, TH the
 * BLAKE2b-256 hash of the initiator's hello followed by the responder's.
 * Every key is BLAKE2b-256 keyed with the store's secret over
 *     label NUL || DH || TH || store name
 * for the labels "dkv link i2r", "dkv link r2i" (the frame keys of each
 * direction), "dkv link confirm i", "dkv link confirm r" (the values each
 * side sends to prove it holds the secret).  Without the secret none of
 * them can be computed, and each depends on fresh keys and nonces from
 * both sides, so nothing recorded from another link is accepted.
 *
 * Frames.  Nonce: 16 zero bytes then the direction's counter (u64,
 * big-endian); additional data: the 4-byte header then the same counter.
 * Keys are fresh per link and per direction, so a counter never repeats
 * under one key.
 */
#include <string.h>

#include <sodium.h>

#include "cluster/link.h"
#include "common/alloc.h"
#include "common/status.h"

#define HELLO_MAGIC "DKVC"
#define ROLE_INITIATOR 1u
#define ROLE_RESPONDER 2u
#define KEY_SIZE 32u
#define NONCE_SIZE 24u

/* Offsets inside a hello. */
#define H_MAGIC 0
#define H_VERSION 4
#define H_ROLE 5
#define H_RESERVED 6
#define H_FROM 8
#define H_TO 12
#define H_STORE 16
#define H_PUBKEY 48
#define H_NONCE 80

typedef enum link_state {
    ST_START,           /* dkv_link_start not called yet */
    ST_HELLO,           /* waiting for the peer's hello */
    ST_CONFIRM,         /* waiting for the peer's confirmation */
    ST_OPEN,            /* frames may flow */
    ST_BROKEN
} link_state_t;

/* What must never leave sodium memory. */
typedef struct link_keys {
    unsigned char secret[DKV_LINK_SECRET_SIZE];
    unsigned char eph_sk[KEY_SIZE];
    unsigned char tx[KEY_SIZE];
    unsigned char rx[KEY_SIZE];
    unsigned char confirm_peer[KEY_SIZE];
} link_keys_t;

struct dkv_link {
    link_state_t state;
    dkv_status_t broken;
    int initiator;
    uint32_t self;
    uint32_t expect;
    uint32_t peer;
    uint32_t *peers;
    size_t npeers;
    char *store;
    unsigned char store_hash[32];
    unsigned char eph_pk[KEY_SIZE];
    unsigned char nonce[32];
    unsigned char hello_mine[DKV_LINK_HELLO_SIZE];
    uint64_t tx_ctr;
    uint64_t rx_ctr;
    link_keys_t *keys;
};

/* ------------------------------------------------------------ helpers */

static void
put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t
get_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16)
           | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void
put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

/* Breaks LINK with STATUS (the message was set by the caller) and wipes
 * the keys it no longer needs; returns STATUS. */
static dkv_status_t
link_break(dkv_link_t *link, dkv_status_t status)
{
    if (link->state != ST_BROKEN) {
        link->state = ST_BROKEN;
        link->broken = status;
        sodium_memzero(link->keys, sizeof(*link->keys));
    }
    return status;
}

/* The status of a call on a broken link, with its message again. */
static dkv_status_t
link_refuse(const dkv_link_t *link)
{
    return dkv_error_set(link->broken, "the cluster link is already "
                         "broken");
}

/* 1 when ID is one of LINK's configured peers. */
static int
is_peer(const dkv_link_t *link, uint32_t id)
{
    size_t i;

    for (i = 0; i < link->npeers; i++) {
        if (link->peers[i] == id) {
            return 1;
        }
    }
    return 0;
}

/* ----------------------------------------------------------- lifecycle */

/* See link.h. */
dkv_status_t
dkv_link_create(dkv_link_t **link, const dkv_link_opts_t *opts)
{
    dkv_link_t *l;
    size_t slen;

    *link = NULL;
    if (opts == NULL || opts->secret == NULL || opts->store == NULL
        || opts->self == 0 || (opts->npeers > 0 && opts->peers == NULL)) {
        return dkv_error_set(DKV_EINVAL, "cluster link: missing secret, "
                             "store name or node id");
    }
    if (sodium_init() < 0) {
        return dkv_error_set(DKV_EUNAVAILABLE, "libsodium failed to "
                             "initialize");
    }
    l = dkv_calloc(1, sizeof(*l));
    if (l == NULL) {
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    l->initiator = opts->initiator ? 1 : 0;
    l->self = opts->self;
    l->expect = opts->initiator ? opts->expect : 0;
    l->npeers = opts->npeers;
    l->peers = dkv_calloc(opts->npeers ? opts->npeers : 1,
                          sizeof(*l->peers));
    l->store = dkv_strdup(opts->store);
    l->keys = sodium_malloc(sizeof(*l->keys));
    if (l->peers == NULL || l->store == NULL || l->keys == NULL) {
        dkv_link_destroy(l);
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    if (opts->npeers > 0) {
        memcpy(l->peers, opts->peers, opts->npeers * sizeof(*l->peers));
    }
    if (l->expect != 0 && !is_peer(l, l->expect)) {
        dkv_link_destroy(l);
        return dkv_error_set(DKV_EINVAL, "cluster link: node %lu is not "
                             "a configured peer",
                             (unsigned long)opts->expect);
    }
    memcpy(l->keys->secret, opts->secret, DKV_LINK_SECRET_SIZE);
    slen = strlen(l->store);
    crypto_generichash(l->store_hash, sizeof(l->store_hash),
                       (const unsigned char *)l->store, slen, NULL, 0);
    crypto_box_keypair(l->eph_pk, l->keys->eph_sk);
    randombytes_buf(l->nonce, sizeof(l->nonce));

    memcpy(l->hello_mine + H_MAGIC, HELLO_MAGIC, 4);
    l->hello_mine[H_VERSION] = (unsigned char)DKV_LINK_VERSION;
    l->hello_mine[H_ROLE] = (unsigned char)(l->initiator ? ROLE_INITIATOR
                                                         : ROLE_RESPONDER);
    l->hello_mine[H_RESERVED] = 0;
    l->hello_mine[H_RESERVED + 1] = 0;
    put_u32(l->hello_mine + H_FROM, l->self);
    put_u32(l->hello_mine + H_TO, l->expect);
    memcpy(l->hello_mine + H_STORE, l->store_hash, 32);
    memcpy(l->hello_mine + H_PUBKEY, l->eph_pk, KEY_SIZE);
    memcpy(l->hello_mine + H_NONCE, l->nonce, 32);
    l->state = ST_START;
    *link = l;
    return DKV_OK;
}

/* See link.h. */
void
dkv_link_destroy(dkv_link_t *link)
{
    if (link == NULL) {
        return;
    }
    if (link->keys != NULL) {
        sodium_memzero(link->keys, sizeof(*link->keys));
        sodium_free(link->keys);
    }
    dkv_free(link->peers);
    dkv_free(link->store);
    sodium_memzero(link, sizeof(*link));
    dkv_free(link);
}

/* ----------------------------------------------------------- handshake */

/* Derives the key for LABEL into OUT (see the top of the file). */
static void
derive(unsigned char *out, const dkv_link_t *link, const char *label,
       const unsigned char *dh, const unsigned char *th)
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, link->keys->secret, DKV_LINK_SECRET_SIZE,
                            KEY_SIZE);
    crypto_generichash_update(&st, (const unsigned char *)label,
                              strlen(label) + 1);
    crypto_generichash_update(&st, dh, KEY_SIZE);
    crypto_generichash_update(&st, th, 32);
    crypto_generichash_update(&st, (const unsigned char *)link->store,
                              strlen(link->store));
    crypto_generichash_final(&st, out, KEY_SIZE);
    sodium_memzero(&st, sizeof(st));
}

/* Checks the peer's hello IN and, when it is acceptable, derives every
 * key; *CONFIRM_MINE receives this side's confirmation. */
static dkv_status_t
accept_hello(dkv_link_t *link, const unsigned char *in,
             unsigned char *confirm_mine)
{
    unsigned expect_role = link->initiator ? ROLE_RESPONDER
                                           : ROLE_INITIATOR;
    uint32_t from = get_u32(in + H_FROM), to = get_u32(in + H_TO);
    unsigned char dh[KEY_SIZE], th[32], k_i2r[KEY_SIZE], k_r2i[KEY_SIZE];
    unsigned char c_i[KEY_SIZE], c_r[KEY_SIZE];
    crypto_generichash_state st;

    if (memcmp(in + H_MAGIC, HELLO_MAGIC, 4) != 0) {
        return dkv_error_set(DKV_ECORRUPT, "not a dkv cluster hello (bad "
                             "magic)");
    }
    if (in[H_VERSION] != DKV_LINK_VERSION) {
        return dkv_error_set(DKV_ECORRUPT, "cluster link version %u; this "
                             "node speaks %u", (unsigned)in[H_VERSION],
                             (unsigned)DKV_LINK_VERSION);
    }
    if (in[H_ROLE] != expect_role || in[H_RESERVED] != 0
        || in[H_RESERVED + 1] != 0) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "hello with role %u where "
                             "%u was due (a reflected hello?)",
                             (unsigned)in[H_ROLE], expect_role);
    }
    if (from == link->self || !is_peer(link, from)) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "node id %lu is not a "
                             "configured peer", (unsigned long)from);
    }
    if (link->expect != 0 && from != link->expect) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "dialled node %lu but node "
                             "%lu answered", (unsigned long)link->expect,
                             (unsigned long)from);
    }
    if (to != 0 && to != link->self) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "hello for node %lu; this "
                             "is node %lu", (unsigned long)to,
                             (unsigned long)link->self);
    }
    if (sodium_memcmp(in + H_STORE, link->store_hash, 32) != 0) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "the peer belongs to "
                             "another store (not '%s')", link->store);
    }
    if (sodium_memcmp(in + H_PUBKEY, link->eph_pk, KEY_SIZE) == 0
        || sodium_memcmp(in + H_NONCE, link->nonce, 32) == 0) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "the peer's hello repeats "
                             "this side's key (a reflected hello)");
    }
    if (crypto_scalarmult(dh, link->keys->eph_sk, in + H_PUBKEY) != 0) {
        return dkv_error_set(DKV_EUNAUTHORIZED, "the peer's ephemeral key "
                             "is invalid");
    }
    crypto_generichash_init(&st, NULL, 0, sizeof(th));
    crypto_generichash_update(&st, link->initiator ? link->hello_mine : in,
                              DKV_LINK_HELLO_SIZE);
    crypto_generichash_update(&st, link->initiator ? in : link->hello_mine,
                              DKV_LINK_HELLO_SIZE);
    crypto_generichash_final(&st, th, sizeof(th));
    derive(k_i2r, link, "dkv link i2r", dh, th);
    derive(k_r2i, link, "dkv link r2i", dh, th);
    derive(c_i, link, "dkv link confirm i", dh, th);
    derive(c_r, link, "dkv link confirm r", dh, th);
    memcpy(link->keys->tx, link->initiator ? k_i2r : k_r2i, KEY_SIZE);
    memcpy(link->keys->rx, link->initiator ? k_r2i : k_i2r, KEY_SIZE);
    memcpy(link->keys->confirm_peer, link->initiator ? c_r : c_i,
           KEY_SIZE);
    memcpy(confirm_mine, link->initiator ? c_i : c_r, KEY_SIZE);
    sodium_memzero(link->keys->eph_sk, KEY_SIZE);
    sodium_memzero(dh, sizeof(dh));
    sodium_memzero(k_i2r, sizeof(k_i2r));
    sodium_memzero(k_r2i, sizeof(k_r2i));
    sodium_memzero(c_i, sizeof(c_i));
    sodium_memzero(c_r, sizeof(c_r));
    link->peer = from;
    return DKV_OK;
}

/* See link.h. */
dkv_status_t
dkv_link_start(dkv_link_t *link, unsigned char *out, size_t *out_len)
{
    *out_len = 0;
    if (link->state == ST_BROKEN) {
        return link_refuse(link);
    }
    if (link->state != ST_START) {
        return dkv_error_set(DKV_EINVAL, "cluster link already started");
    }
    if (link->initiator) {
        memcpy(out, link->hello_mine, DKV_LINK_HELLO_SIZE);
        *out_len = DKV_LINK_HELLO_SIZE;
    }
    link->state = ST_HELLO;
    return DKV_OK;
}

/* See link.h. */
size_t
dkv_link_need(const dkv_link_t *link)
{
    switch (link->state) {
    case ST_HELLO:
        return DKV_LINK_HELLO_SIZE;
    case ST_CONFIRM:
        return DKV_LINK_CONFIRM_SIZE;
    default:
        return 0;
    }
}

/* See link.h. */
dkv_status_t
dkv_link_input(dkv_link_t *link, const unsigned char *in, size_t len,
               unsigned char *out, size_t *out_len)
{
    dkv_status_t rv;

    *out_len = 0;
    if (link->state == ST_BROKEN) {
        return link_refuse(link);
    }
    if (link->state != ST_HELLO && link->state != ST_CONFIRM) {
        return dkv_error_set(DKV_EINVAL, "cluster link: no handshake "
                             "input expected now");
    }
    if (len != dkv_link_need(link)) {
        return dkv_error_set(DKV_EINVAL, "cluster link: %zu handshake "
                             "bytes given, %zu needed", len,
                             dkv_link_need(link));
    }
    if (link->state == ST_HELLO) {
        unsigned char *confirm;

        if (link->initiator) {
            confirm = out;
            *out_len = DKV_LINK_CONFIRM_SIZE;
        } else {
            memcpy(out, link->hello_mine, DKV_LINK_HELLO_SIZE);
            confirm = out + DKV_LINK_HELLO_SIZE;
            *out_len = DKV_LINK_HS_MAX;
        }
        rv = accept_hello(link, in, confirm);
        if (rv != DKV_OK) {
            *out_len = 0;
            link->peer = 0;
            return link_break(link, rv);
        }
        link->state = ST_CONFIRM;
        return DKV_OK;
    }
    if (crypto_verify_32(in, link->keys->confirm_peer) != 0) {
        rv = dkv_error_set(DKV_EUNAUTHORIZED, "node %lu's confirmation "
                           "does not match: it does not hold this "
                           "store's secret", (unsigned long)link->peer);
        return link_break(link, rv);
    }
    sodium_memzero(link->keys->confirm_peer, KEY_SIZE);
    link->state = ST_OPEN;
    return DKV_OK;
}

/* See link.h. */
int
dkv_link_established(const dkv_link_t *link)
{
    return link->state == ST_OPEN;
}

/* See link.h. */
uint32_t
dkv_link_peer(const dkv_link_t *link)
{
    return link->state == ST_BROKEN ? 0 : link->peer;
}

/* See link.h. */
dkv_status_t
dkv_link_broken(const dkv_link_t *link)
{
    return link->state == ST_BROKEN ? link->broken : DKV_OK;
}

/* -------------------------------------------------------------- frames */

/* Nonce and additional data of the frame with counter CTR and HDR. */
static void
frame_params(unsigned char *nonce, unsigned char *ad, uint64_t ctr,
             const unsigned char *hdr)
{
    memset(nonce, 0, NONCE_SIZE);
    put_u64(nonce + NONCE_SIZE - 8, ctr);
    memcpy(ad, hdr, DKV_LINK_HEADER_SIZE);
    put_u64(ad + DKV_LINK_HEADER_SIZE, ctr);
}

/* DKV_OK when LINK may carry frames. */
static dkv_status_t
check_open(const dkv_link_t *link)
{
    if (link->state == ST_BROKEN) {
        return link_refuse(link);
    }
    if (link->state != ST_OPEN) {
        return dkv_error_set(DKV_EINVAL, "cluster link: handshake not "
                             "done");
    }
    return DKV_OK;
}

/* See link.h. */
dkv_status_t
dkv_link_seal_inplace(dkv_link_t *link, unsigned char *hdr,
                      unsigned char *msg, size_t len, unsigned char *tag)
{
    unsigned char nonce[NONCE_SIZE], ad[DKV_LINK_HEADER_SIZE + 8];
    dkv_status_t rv = check_open(link);

    if (rv != DKV_OK) {
        return rv;
    }
    if (len > DKV_LINK_MAX_MSG) {
        return dkv_error_set(DKV_ETOOLARGE, "cluster message of %zu bytes; "
                             "the limit is %u", len, DKV_LINK_MAX_MSG);
    }
    if (link->tx_ctr == UINT64_MAX) {
        rv = dkv_error_set(DKV_EINVAL, "cluster link: frame counter "
                           "exhausted");
        return link_break(link, rv);
    }
    put_u32(hdr, (uint32_t)(len + DKV_LINK_TAG_SIZE));
    frame_params(nonce, ad, link->tx_ctr, hdr);
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
        msg, tag, NULL, msg, (unsigned long long)len, ad, sizeof(ad), NULL,
        nonce, link->keys->tx);
    link->tx_ctr++;
    return DKV_OK;
}

/* See link.h. */
dkv_status_t
dkv_link_seal(dkv_link_t *link, unsigned char *out,
              const unsigned char *msg, size_t len)
{
    dkv_status_t rv = check_open(link);

    if (rv != DKV_OK) {
        return rv;
    }
    if (len > DKV_LINK_MAX_MSG) {
        return dkv_error_set(DKV_ETOOLARGE, "cluster message of %zu bytes; "
                             "the limit is %u", len, DKV_LINK_MAX_MSG);
    }
    if (len > 0) {
        memmove(out + DKV_LINK_HEADER_SIZE, msg, len);
    }
    return dkv_link_seal_inplace(link, out, out + DKV_LINK_HEADER_SIZE, len,
                                 out + DKV_LINK_HEADER_SIZE + len);
}

/* See link.h. */
dkv_status_t
dkv_link_frame_len(dkv_link_t *link, size_t *body_len,
                   const unsigned char *hdr)
{
    uint32_t n = get_u32(hdr);
    dkv_status_t rv = check_open(link);

    *body_len = 0;
    if (rv != DKV_OK) {
        return rv;
    }
    if (n < DKV_LINK_TAG_SIZE
        || n > (uint32_t)DKV_LINK_MAX_MSG + DKV_LINK_TAG_SIZE) {
        rv = dkv_error_set(DKV_ECORRUPT, "cluster frame length %lu out of "
                           "bounds [%u, %u]", (unsigned long)n,
                           DKV_LINK_TAG_SIZE,
                           DKV_LINK_MAX_MSG + DKV_LINK_TAG_SIZE);
        return link_break(link, rv);
    }
    *body_len = n;
    return DKV_OK;
}

/* See link.h. */
dkv_status_t
dkv_link_open_inplace(dkv_link_t *link, size_t *msg_len,
                      const unsigned char *hdr, unsigned char *body,
                      size_t body_len)
{
    unsigned char nonce[NONCE_SIZE], ad[DKV_LINK_HEADER_SIZE + 8];
    size_t n;
    dkv_status_t rv = dkv_link_frame_len(link, &n, hdr);

    *msg_len = 0;
    if (rv != DKV_OK) {
        return rv;
    }
    if (n != body_len) {
        rv = dkv_error_set(DKV_ECORRUPT, "cluster frame of %zu bytes "
                           "where its header says %zu", body_len, n);
        return link_break(link, rv);
    }
    frame_params(nonce, ad, link->rx_ctr, hdr);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            body, NULL, body, (unsigned long long)(n - DKV_LINK_TAG_SIZE),
            body + n - DKV_LINK_TAG_SIZE, ad, sizeof(ad), nonce,
            link->keys->rx) != 0) {
        rv = dkv_error_set(DKV_ECORRUPT, "cluster frame %llu from node %lu "
                           "does not authenticate (altered, replayed, "
                           "reordered or lost frames)",
                           (unsigned long long)link->rx_ctr,
                           (unsigned long)link->peer);
        return link_break(link, rv);
    }
    link->rx_ctr++;
    *msg_len = n - DKV_LINK_TAG_SIZE;
    return DKV_OK;
}

/* See link.h. */
dkv_status_t
dkv_link_open(dkv_link_t *link, unsigned char **msg, size_t *msg_len,
              size_t *consumed, const unsigned char *buf, size_t len)
{
    size_t n;
    unsigned char *body;
    dkv_status_t rv;

    *msg = NULL;
    *msg_len = 0;
    *consumed = 0;
    rv = check_open(link);
    if (rv != DKV_OK || len < DKV_LINK_HEADER_SIZE) {
        return rv;
    }
    rv = dkv_link_frame_len(link, &n, buf);
    if (rv != DKV_OK || len - DKV_LINK_HEADER_SIZE < n) {
        return rv;
    }
    body = dkv_malloc(n);
    if (body == NULL) {
        return dkv_error_set(APR_ENOMEM, "out of memory");
    }
    memcpy(body, buf + DKV_LINK_HEADER_SIZE, n);
    rv = dkv_link_open_inplace(link, msg_len, buf, body, n);
    if (rv != DKV_OK) {
        dkv_free(body);
        return rv;
    }
    *msg = body;
    *consumed = DKV_LINK_HEADER_SIZE + n;
    return DKV_OK;
}

/* See link.h. */
dkv_status_t
dkv_link_eof(dkv_link_t *link, size_t pending)
{
    dkv_status_t rv;

    if (link->state == ST_BROKEN) {
        return link_refuse(link);
    }
    if (pending == 0 && (link->state == ST_OPEN
                         || link->state == ST_START)) {
        return DKV_OK;
    }
    if (link->state == ST_OPEN) {
        rv = dkv_error_set(DKV_ETRANSPORT, "cluster link from node %lu "
                           "ended inside a frame (%zu bytes of it "
                           "received)", (unsigned long)link->peer,
                           pending);
    } else {
        rv = dkv_error_set(DKV_ETRANSPORT, "cluster link ended during the "
                           "handshake (%zu of %zu bytes received)",
                           pending, dkv_link_need(link));
    }
    return link_break(link, rv);
}
