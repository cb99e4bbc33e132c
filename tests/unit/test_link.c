/*
 * test_link.c -- suite `link`: the cluster links (src/cluster/link.c, on
 * buffers) and the transport that carries them over TCP
 * (src/cluster/transport.c), docs/protocol.md "Cluster links".
 *
 * The link cases pump the handshake between two link objects by hand,
 * then seal and open frames: the round trip of many sizes, and every way
 * a link must refuse: another secret, another store, an unknown node id,
 * a reflected or replayed hello, an altered, replayed, reordered or
 * dropped frame, a stream cut inside a frame.
 *
 * The transport cases run real transports on loopback (ports chosen by
 * the system): ordered delivery between three nodes from several sender
 * threads, a node with the wrong secret refused on both sides, a peer
 * that restarts on the same port, a prompt destroy with a peer down, and
 * a raw TCP client sending garbage and forged frames to a cluster port
 * while the good links keep working.  Every wait is bounded.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_network_io.h>
#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include <sodium.h>

#include "testutil.h"
#include "common/alloc.h"
#include "cluster/link.h"
#include "cluster/transport.h"

static const unsigned char secret_a[DKV_LINK_SECRET_SIZE] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32
};
static const unsigned char secret_b[DKV_LINK_SECRET_SIZE] = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 33
};
static const uint32_t all_ids[] = { 1, 2, 3 };

/* --------------------------------------------------------- link helpers */

/* A link for node SELF of STORE with SECRET, allowing nodes 1..3. */
static dkv_link_t *
mklink(uint32_t self, int initiator, uint32_t expect, const char *store,
       const unsigned char *secret)
{
    dkv_link_opts_t o;
    dkv_link_t *l = NULL;

    memset(&o, 0, sizeof(o));
    o.self = self;
    o.store = store;
    o.secret = secret;
    o.peers = all_ids;
    o.npeers = 3;
    o.initiator = initiator;
    o.expect = expect;
    DKV_ASSERT_OK(dkv_link_create(&l, &o));
    DKV_ASSERT_NOT_NULL(l);
    return l;
}

/* Runs the handshake between initiator I and responder R as the
 * transport does (the initiator sends its confirmation before checking
 * the responder's).  *SI and *SR receive each side's first failure (or
 * DKV_OK); a side whose peer stopped sees the end of the stream. */
static void
pump(dkv_link_t *i, dkv_link_t *r, dkv_status_t *si, dkv_status_t *sr)
{
    unsigned char hello_i[DKV_LINK_HS_MAX], reply[DKV_LINK_HS_MAX];
    unsigned char confirm_i[DKV_LINK_HS_MAX], none[DKV_LINK_HS_MAX];
    size_t n_hello = 0, n_reply = 0, n_confirm = 0, n_none = 0;

    DKV_ASSERT_OK(dkv_link_start(i, hello_i, &n_hello));
    DKV_ASSERT_UINT_EQ(n_hello, DKV_LINK_HELLO_SIZE);
    DKV_ASSERT_OK(dkv_link_start(r, none, &n_none));
    DKV_ASSERT_UINT_EQ(n_none, 0);
    DKV_ASSERT_UINT_EQ(dkv_link_need(r), DKV_LINK_HELLO_SIZE);
    *sr = dkv_link_input(r, hello_i, n_hello, reply, &n_reply);
    if (*sr != DKV_OK) {
        *si = dkv_link_eof(i, 0);
        return;
    }
    DKV_ASSERT_UINT_EQ(n_reply, DKV_LINK_HS_MAX);
    DKV_ASSERT_UINT_EQ(dkv_link_need(i), DKV_LINK_HELLO_SIZE);
    *si = dkv_link_input(i, reply, DKV_LINK_HELLO_SIZE, confirm_i,
                         &n_confirm);
    if (*si != DKV_OK) {
        *sr = dkv_link_eof(r, 0);
        return;
    }
    DKV_ASSERT_UINT_EQ(n_confirm, DKV_LINK_CONFIRM_SIZE);
    DKV_ASSERT_UINT_EQ(dkv_link_need(i), DKV_LINK_CONFIRM_SIZE);
    *si = dkv_link_input(i, reply + DKV_LINK_HELLO_SIZE,
                         DKV_LINK_CONFIRM_SIZE, none, &n_none);
    DKV_ASSERT_UINT_EQ(n_none, 0);
    *sr = dkv_link_input(r, confirm_i, n_confirm, none, &n_none);
    DKV_ASSERT_UINT_EQ(n_none, 0);
}

/* An established pair: node 1 dialled node 2. */
static void
mkpair(dkv_link_t **i, dkv_link_t **r)
{
    dkv_status_t si, sr;

    *i = mklink(1, 1, 2, "store", secret_a);
    *r = mklink(2, 0, 0, "store", secret_a);
    pump(*i, *r, &si, &sr);
    DKV_ASSERT_OK(si);
    DKV_ASSERT_OK(sr);
}

/* A sealed frame of MSG (LEN bytes) in a new heap block. */
static unsigned char *
seal(dkv_link_t *l, const unsigned char *msg, size_t len)
{
    unsigned char *f = dkv_malloc(len + DKV_LINK_FRAME_OVERHEAD);

    DKV_ASSERT_NOT_NULL(f);
    DKV_ASSERT_OK(dkv_link_seal(l, f, msg, len));
    return f;
}

/* Fills BUF with a pattern of SEED. */
static void
pattern(unsigned char *buf, size_t len, unsigned seed)
{
    size_t k;

    for (k = 0; k < len; k++) {
        buf[k] = (unsigned char)((k * 31u + seed * 7u) ^ (k >> 8));
    }
}

/* ----------------------------------------------------------- link cases */

/* The same secret: the handshake succeeds, both sides know each other,
 * and frames of every size round-trip both ways, also several in one
 * stream buffer and each cut short. */
static void
link_handshake_and_round_trip(void)
{
    static const size_t sizes[] = {
        0, 1, 15, 16, 17, 100, 4096, 65535, 65536, 1u << 20
    };
    dkv_link_t *i, *r;
    size_t k, big = 1u << 20;
    unsigned char *src = dkv_malloc(big), *stream;
    size_t stream_len = 0, off;

    DKV_ASSERT_NOT_NULL(src);
    mkpair(&i, &r);
    DKV_EXPECT_TRUE(dkv_link_established(i));
    DKV_EXPECT_TRUE(dkv_link_established(r));
    DKV_EXPECT_UINT_EQ(dkv_link_peer(i), 2);
    DKV_EXPECT_UINT_EQ(dkv_link_peer(r), 1);
    DKV_EXPECT_UINT_EQ(dkv_link_need(i), 0);

    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        dkv_link_t *from = (k % 2) ? r : i, *to = (k % 2) ? i : r;
        unsigned char *f, *msg = NULL;
        size_t n = sizes[k], msg_len = 0, used = 0, cut;

        pattern(src, n, (unsigned)k);
        f = seal(from, src, n);
        /* The ciphertext is not the plaintext. */
        if (n >= 16) {
            DKV_EXPECT_TRUE(memcmp(f + DKV_LINK_HEADER_SIZE, src, 16) != 0);
        }
        /* Every prefix is "not yet". */
        for (cut = 0; cut < n + DKV_LINK_FRAME_OVERHEAD;
             cut += cut < 40 ? 1 : 4093) {
            DKV_ASSERT_OK(dkv_link_open(to, &msg, &msg_len, &used, f, cut));
            DKV_ASSERT_NULL(msg);
            DKV_ASSERT_UINT_EQ(used, 0);
        }
        DKV_ASSERT_OK(dkv_link_open(to, &msg, &msg_len, &used, f,
                                    n + DKV_LINK_FRAME_OVERHEAD));
        DKV_ASSERT_NOT_NULL(msg);
        DKV_EXPECT_UINT_EQ(used, n + DKV_LINK_FRAME_OVERHEAD);
        DKV_EXPECT_MEM_EQ(msg, msg_len, src, n);
        dkv_free(msg);
        dkv_free(f);
    }

    /* Three frames back to back in one buffer, in place. */
    stream = dkv_malloc(3 * (100 + DKV_LINK_FRAME_OVERHEAD));
    DKV_ASSERT_NOT_NULL(stream);
    for (k = 0; k < 3; k++) {
        unsigned char *p = stream + stream_len;

        pattern(p + DKV_LINK_HEADER_SIZE, 100, 50 + (unsigned)k);
        DKV_ASSERT_OK(dkv_link_seal_inplace(i, p, p + DKV_LINK_HEADER_SIZE,
                                            100, p + DKV_LINK_HEADER_SIZE
                                                     + 100));
        stream_len += 100 + DKV_LINK_FRAME_OVERHEAD;
    }
    for (k = 0, off = 0; k < 3; k++) {
        unsigned char *msg = NULL;
        size_t msg_len = 0, used = 0;

        DKV_ASSERT_OK(dkv_link_open(r, &msg, &msg_len, &used, stream + off,
                                    stream_len - off));
        DKV_ASSERT_NOT_NULL(msg);
        pattern(src, 100, 50 + (unsigned)k);
        DKV_EXPECT_MEM_EQ(msg, msg_len, src, 100);
        dkv_free(msg);
        off += used;
    }
    DKV_EXPECT_UINT_EQ(off, stream_len);
    DKV_EXPECT_OK(dkv_link_eof(r, 0));
    dkv_free(stream);
    dkv_free(src);
    dkv_link_destroy(i);
    dkv_link_destroy(r);
    dkv_link_destroy(NULL);
}

/* A node with another secret cannot join: both sides refuse, and no
 * frame can be sealed or opened. */
static void
link_wrong_secret(void)
{
    dkv_link_t *i = mklink(1, 1, 2, "store", secret_a);
    dkv_link_t *r = mklink(2, 0, 0, "store", secret_b);
    dkv_status_t si, sr;
    unsigned char f[DKV_LINK_FRAME_OVERHEAD + 4];

    pump(i, r, &si, &sr);
    DKV_EXPECT_STATUS(si, DKV_EUNAUTHORIZED);
    DKV_EXPECT_STATUS(sr, DKV_EUNAUTHORIZED);
    DKV_EXPECT_TRUE(!dkv_link_established(i));
    DKV_EXPECT_TRUE(!dkv_link_established(r));
    DKV_EXPECT_STATUS(dkv_link_broken(i), DKV_EUNAUTHORIZED);
    DKV_EXPECT_STATUS(dkv_link_seal(i, f, (const unsigned char *)"abcd",
                                    4), DKV_EUNAUTHORIZED);
    dkv_link_destroy(i);
    dkv_link_destroy(r);

    /* The other way round too. */
    i = mklink(3, 1, 1, "store", secret_b);
    r = mklink(1, 0, 0, "store", secret_a);
    pump(i, r, &si, &sr);
    DKV_EXPECT_STATUS(si, DKV_EUNAUTHORIZED);
    DKV_EXPECT_STATUS(sr, DKV_EUNAUTHORIZED);
    dkv_link_destroy(i);
    dkv_link_destroy(r);
}

/* Another store's node is refused, even with the same secret. */
static void
link_wrong_store(void)
{
    dkv_link_t *i = mklink(1, 1, 2, "store", secret_a);
    dkv_link_t *r = mklink(2, 0, 0, "other", secret_a);
    dkv_status_t si, sr;

    pump(i, r, &si, &sr);
    DKV_EXPECT_STATUS(sr, DKV_EUNAUTHORIZED);
    DKV_EXPECT_TRUE(si != DKV_OK);
    DKV_EXPECT_TRUE(!dkv_link_established(i));
    dkv_link_destroy(i);
    dkv_link_destroy(r);
}

/* A node id that is not a configured peer is refused by the responder;
 * an initiator refuses an answer from another node than it dialled. */
static void
link_unknown_peer(void)
{
    dkv_link_opts_t o;
    dkv_link_t *i, *r = NULL;
    dkv_status_t si, sr;
    static const uint32_t only2[] = { 2 };

    i = mklink(3, 1, 1, "store", secret_a);
    memset(&o, 0, sizeof(o));
    o.self = 1;
    o.store = "store";
    o.secret = secret_a;
    o.peers = only2;
    o.npeers = 1;
    DKV_ASSERT_OK(dkv_link_create(&r, &o));
    pump(i, r, &si, &sr);
    DKV_EXPECT_STATUS(sr, DKV_EUNAUTHORIZED);
    DKV_EXPECT_TRUE(si != DKV_OK);
    DKV_EXPECT_UINT_EQ(dkv_link_peer(r), 0);
    dkv_link_destroy(i);
    dkv_link_destroy(r);

    /* Node 1 dials node 2, but node 3 answers: node 3 refuses a hello
     * addressed to node 2, and node 1 refuses node 3's answer. */
    i = mklink(1, 1, 2, "store", secret_a);
    r = mklink(3, 0, 0, "store", secret_a);
    pump(i, r, &si, &sr);
    DKV_EXPECT_STATUS(sr, DKV_EUNAUTHORIZED);
    DKV_EXPECT_TRUE(si != DKV_OK);
    dkv_link_destroy(i);
    dkv_link_destroy(r);
    {
        unsigned char h[DKV_LINK_HS_MAX], rep[DKV_LINK_HS_MAX];
        unsigned char o2[DKV_LINK_HS_MAX];
        size_t nh = 0, nr = 0, no = 0;
        dkv_link_t *i3 = mklink(1, 1, 3, "store", secret_a);

        i = mklink(1, 1, 2, "store", secret_a);
        r = mklink(3, 0, 0, "store", secret_a);
        DKV_ASSERT_OK(dkv_link_start(i3, h, &nh));
        DKV_ASSERT_OK(dkv_link_start(r, o2, &no));
        DKV_ASSERT_OK(dkv_link_input(r, h, nh, rep, &nr));
        DKV_ASSERT_OK(dkv_link_start(i, h, &nh));
        DKV_EXPECT_STATUS(dkv_link_input(i, rep, DKV_LINK_HELLO_SIZE, o2,
                                         &no), DKV_EUNAUTHORIZED);
        DKV_EXPECT_TRUE(strstr(dkv_last_error(), "answered") != NULL);
        dkv_link_destroy(i3);
        dkv_link_destroy(i);
        dkv_link_destroy(r);
    }

    /* A node claiming this node's own id. */
    i = mklink(2, 1, 0, "store", secret_a);
    r = mklink(2, 0, 0, "store", secret_a);
    pump(i, r, &si, &sr);
    DKV_EXPECT_STATUS(sr, DKV_EUNAUTHORIZED);
    dkv_link_destroy(i);
    dkv_link_destroy(r);

    /* Dialling a node that is not a peer is a caller error. */
    memset(&o, 0, sizeof(o));
    o.self = 1;
    o.store = "store";
    o.secret = secret_a;
    o.peers = only2;
    o.npeers = 1;
    o.initiator = 1;
    o.expect = 3;
    r = NULL;
    DKV_EXPECT_STATUS(dkv_link_create(&r, &o), DKV_EINVAL);
    DKV_EXPECT_TRUE(r == NULL);
    o.secret = NULL;
    DKV_EXPECT_STATUS(dkv_link_create(&r, &o), DKV_EINVAL);
}

/* A hello sent back to its sender, and a whole recorded initiator side
 * replayed to a new responder, are refused. */
static void
link_reflected_and_replayed_hello(void)
{
    dkv_link_t *i, *r;
    unsigned char hello[DKV_LINK_HS_MAX], out[DKV_LINK_HS_MAX];
    unsigned char reply[DKV_LINK_HS_MAX], confirm[DKV_LINK_HS_MAX];
    size_t n = 0, n_out = 0, n_reply = 0, n_confirm = 0;

    /* Reflection: the initiator gets its own hello back. */
    i = mklink(1, 1, 0, "store", secret_a);
    DKV_ASSERT_OK(dkv_link_start(i, hello, &n));
    DKV_EXPECT_STATUS(dkv_link_input(i, hello, n, out, &n_out),
                      DKV_EUNAUTHORIZED);
    DKV_EXPECT_UINT_EQ(n_out, 0);
    dkv_link_destroy(i);

    /* Record a good session's initiator messages... */
    i = mklink(1, 1, 2, "store", secret_a);
    r = mklink(2, 0, 0, "store", secret_a);
    DKV_ASSERT_OK(dkv_link_start(i, hello, &n));
    DKV_ASSERT_OK(dkv_link_start(r, out, &n_out));
    DKV_ASSERT_OK(dkv_link_input(r, hello, n, reply, &n_reply));
    DKV_ASSERT_OK(dkv_link_input(i, reply, DKV_LINK_HELLO_SIZE, confirm,
                                 &n_confirm));
    DKV_ASSERT_OK(dkv_link_input(i, reply + DKV_LINK_HELLO_SIZE,
                                 DKV_LINK_CONFIRM_SIZE, out, &n_out));
    DKV_ASSERT_OK(dkv_link_input(r, confirm, n_confirm, out, &n_out));
    dkv_link_destroy(r);
    dkv_link_destroy(i);

    /* ...and replay them to a new responder: its fresh key changes every
     * derived value, so the old confirmation does not match. */
    r = mklink(2, 0, 0, "store", secret_a);
    DKV_ASSERT_OK(dkv_link_start(r, out, &n_out));
    DKV_ASSERT_OK(dkv_link_input(r, hello, n, reply, &n_reply));
    DKV_EXPECT_STATUS(dkv_link_input(r, confirm, n_confirm, out, &n_out),
                      DKV_EUNAUTHORIZED);
    DKV_EXPECT_TRUE(!dkv_link_established(r));
    dkv_link_destroy(r);
}

/* Hellos that are not hellos: bad magic, another version, bad length. */
static void
link_malformed_hello(void)
{
    dkv_link_t *i = mklink(1, 1, 2, "store", secret_a), *r;
    unsigned char hello[DKV_LINK_HS_MAX], bad[DKV_LINK_HS_MAX];
    unsigned char out[DKV_LINK_HS_MAX];
    size_t n = 0, n_out = 0;

    DKV_ASSERT_OK(dkv_link_start(i, hello, &n));
    DKV_EXPECT_STATUS(dkv_link_start(i, hello, &n_out), DKV_EINVAL);

    r = mklink(2, 0, 0, "store", secret_a);
    DKV_ASSERT_OK(dkv_link_start(r, out, &n_out));
    DKV_EXPECT_STATUS(dkv_link_input(r, hello, n - 1, out, &n_out),
                      DKV_EINVAL);
    memcpy(bad, hello, n);
    bad[0] = 'X';
    DKV_EXPECT_STATUS(dkv_link_input(r, bad, n, out, &n_out),
                      DKV_ECORRUPT);
    /* Broken for good, even for the genuine hello. */
    DKV_EXPECT_STATUS(dkv_link_input(r, hello, n, out, &n_out),
                      DKV_ECORRUPT);
    dkv_link_destroy(r);

    r = mklink(2, 0, 0, "store", secret_a);
    DKV_ASSERT_OK(dkv_link_start(r, out, &n_out));
    memcpy(bad, hello, n);
    bad[4] = 9;
    DKV_EXPECT_STATUS(dkv_link_input(r, bad, n, out, &n_out),
                      DKV_ECORRUPT);
    dkv_link_destroy(r);

    /* An all-zero (low order) ephemeral key. */
    r = mklink(2, 0, 0, "store", secret_a);
    DKV_ASSERT_OK(dkv_link_start(r, out, &n_out));
    memcpy(bad, hello, n);
    memset(bad + 48, 0, 32);
    DKV_EXPECT_STATUS(dkv_link_input(r, bad, n, out, &n_out),
                      DKV_EUNAUTHORIZED);
    dkv_link_destroy(r);

    /* Frames before the handshake. */
    r = mklink(2, 0, 0, "store", secret_a);
    DKV_EXPECT_STATUS(dkv_link_seal(r, out, hello, 4), DKV_EINVAL);
    /* The stream ends midway through the handshake. */
    DKV_ASSERT_OK(dkv_link_start(r, out, &n_out));
    DKV_EXPECT_STATUS(dkv_link_eof(r, 10), DKV_ETRANSPORT);
    dkv_link_destroy(r);
    dkv_link_destroy(i);
}

/* Any altered byte (header, ciphertext, tag) fails and breaks the link. */
static void
link_tampered_frame(void)
{
    static const size_t where[] = { 2, 3, 4, 20, 40, 63, 64 + 19 };
    size_t k;

    for (k = 0; k < sizeof(where) / sizeof(where[0]); k++) {
        dkv_link_t *i, *r;
        unsigned char msg[64], *f, *out = NULL;
        size_t out_len = 0, used = 0;
        dkv_status_t rv;

        mkpair(&i, &r);
        pattern(msg, sizeof(msg), 3);
        f = seal(i, msg, sizeof(msg));
        f[where[k]] ^= 0x01;
        rv = dkv_link_open(r, &out, &out_len, &used, f,
                           sizeof(msg) + DKV_LINK_FRAME_OVERHEAD);
        if (where[k] < DKV_LINK_HEADER_SIZE && rv == DKV_OK) {
            /* A longer length only waits for more: then the stream's
             * end reports the frame cut short. */
            DKV_EXPECT_UINT_EQ(used, 0);
            rv = dkv_link_eof(r, sizeof(msg) + DKV_LINK_FRAME_OVERHEAD);
            DKV_EXPECT_STATUS(rv, DKV_ETRANSPORT);
        } else {
            DKV_EXPECT_STATUS(rv, DKV_ECORRUPT);
            DKV_EXPECT_TRUE(out == NULL);
        }
        /* Broken: the next (genuine) frame is refused too. */
        dkv_free(f);
        f = seal(i, msg, sizeof(msg));
        DKV_EXPECT_TRUE(dkv_link_open(r, &out, &out_len, &used, f,
                                      sizeof(msg)
                                          + DKV_LINK_FRAME_OVERHEAD)
                        != DKV_OK);
        dkv_free(f);
        dkv_link_destroy(i);
        dkv_link_destroy(r);
    }
}

/* A frame opened twice, frames out of order, a frame dropped, a frame
 * from another link (same secret, other session): all fail. */
static void
link_replay_reorder_drop(void)
{
    dkv_link_t *i, *r, *i2, *r2;
    unsigned char m1[10], m2[10], *f1, *f2, *f3, *out = NULL;
    size_t n = 10 + DKV_LINK_FRAME_OVERHEAD, out_len = 0, used = 0;

    pattern(m1, 10, 1);
    pattern(m2, 10, 2);

    /* Replay. */
    mkpair(&i, &r);
    f1 = seal(i, m1, 10);
    DKV_ASSERT_OK(dkv_link_open(r, &out, &out_len, &used, f1, n));
    dkv_free(out);
    DKV_EXPECT_STATUS(dkv_link_open(r, &out, &out_len, &used, f1, n),
                      DKV_ECORRUPT);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "authenticate") != NULL);
    dkv_free(f1);
    dkv_link_destroy(i);
    dkv_link_destroy(r);

    /* Reorder. */
    mkpair(&i, &r);
    f1 = seal(i, m1, 10);
    f2 = seal(i, m2, 10);
    DKV_EXPECT_STATUS(dkv_link_open(r, &out, &out_len, &used, f2, n),
                      DKV_ECORRUPT);
    DKV_EXPECT_TRUE(dkv_link_open(r, &out, &out_len, &used, f1, n)
                    != DKV_OK);
    dkv_free(f1);
    dkv_free(f2);
    dkv_link_destroy(i);
    dkv_link_destroy(r);

    /* Drop: frames 1 and 3 arrive, 2 is lost. */
    mkpair(&i, &r);
    f1 = seal(i, m1, 10);
    f2 = seal(i, m2, 10);
    f3 = seal(i, m1, 10);
    DKV_ASSERT_OK(dkv_link_open(r, &out, &out_len, &used, f1, n));
    dkv_free(out);
    DKV_EXPECT_STATUS(dkv_link_open(r, &out, &out_len, &used, f3, n),
                      DKV_ECORRUPT);
    dkv_free(f1);
    dkv_free(f2);
    dkv_free(f3);

    /* A frame of another session, and a frame sent back to its sender
     * (the reverse direction's key). */
    mkpair(&i2, &r2);
    f1 = seal(i2, m1, 10);
    DKV_EXPECT_STATUS(dkv_link_open(r, &out, &out_len, &used, f1, n),
                      DKV_ECORRUPT);
    DKV_EXPECT_STATUS(dkv_link_open(i2, &out, &out_len, &used, f1, n),
                      DKV_ECORRUPT);
    dkv_free(f1);
    dkv_link_destroy(i);
    dkv_link_destroy(r);
    dkv_link_destroy(i2);
    dkv_link_destroy(r2);
}

/* A stream cut inside a frame is reported as such; lengths out of
 * bounds are refused before any body is read. */
static void
link_truncated_and_bounds(void)
{
    dkv_link_t *i, *r;
    unsigned char m[300], *f, *out = NULL, hdr[4];
    size_t n = sizeof(m) + DKV_LINK_FRAME_OVERHEAD, out_len = 0, used = 0;
    size_t body = 0;

    mkpair(&i, &r);
    pattern(m, sizeof(m), 9);
    f = seal(i, m, sizeof(m));
    DKV_ASSERT_OK(dkv_link_open(r, &out, &out_len, &used, f, n - 1));
    DKV_EXPECT_UINT_EQ(used, 0);
    DKV_EXPECT_STATUS(dkv_link_eof(r, n - 1), DKV_ETRANSPORT);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "inside a frame") != NULL);
    DKV_EXPECT_TRUE(dkv_link_open(r, &out, &out_len, &used, f, n)
                    != DKV_OK);
    dkv_free(f);
    dkv_link_destroy(i);
    dkv_link_destroy(r);

    /* Lengths: below the tag, above the limit. */
    mkpair(&i, &r);
    hdr[0] = 0;
    hdr[1] = 0;
    hdr[2] = 0;
    hdr[3] = 15;
    DKV_EXPECT_STATUS(dkv_link_frame_len(r, &body, hdr), DKV_ECORRUPT);
    dkv_link_destroy(r);
    dkv_link_destroy(i);
    mkpair(&i, &r);
    hdr[0] = 0x04;
    hdr[1] = 0;
    hdr[2] = 0;
    hdr[3] = 0x11;
    DKV_EXPECT_STATUS(dkv_link_frame_len(r, &body, hdr), DKV_ECORRUPT);
    dkv_link_destroy(r);
    dkv_link_destroy(i);
    mkpair(&i, &r);
    hdr[3] = 0x10;
    DKV_EXPECT_OK(dkv_link_frame_len(r, &body, hdr));
    DKV_EXPECT_UINT_EQ(body, DKV_LINK_MAX_MSG + DKV_LINK_TAG_SIZE);
    DKV_EXPECT_STATUS(dkv_link_seal(i, NULL, m, DKV_LINK_MAX_MSG + 1),
                      DKV_ETOOLARGE);
    dkv_link_destroy(r);
    dkv_link_destroy(i);
}

/* ---------------------------------------------------- transport helpers */

/* What one node received: counts per sender, order checks. */
typedef struct sink {
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;
    uint32_t self;
    size_t count;               /* messages received */
    size_t from[4];             /* per sending node */
    uint32_t next[4][4];        /* next sequence per (node, thread) */
    unsigned order_errors;      /* out of order or bad content */
} sink_t;

/* Test messages: u8 sender thread, u32 sequence (big-endian), then a
 * pattern of the sequence. */
static unsigned char *
mkmsg(unsigned thread_no, uint32_t seq, size_t len)
{
    unsigned char *m = dkv_malloc(len < 5 ? 5 : len);

    DKV_ASSERT_NOT_NULL(m);
    if (len < 5) {
        len = 5;
    }
    m[0] = (unsigned char)thread_no;
    m[1] = (unsigned char)(seq >> 24);
    m[2] = (unsigned char)(seq >> 16);
    m[3] = (unsigned char)(seq >> 8);
    m[4] = (unsigned char)seq;
    pattern(m + 5, len - 5, seq);
    return m;
}

static void
sink_recv(void *baton, uint32_t from, unsigned char *msg, size_t len)
{
    sink_t *s = baton;
    unsigned char *want = NULL;
    int ok = len >= 5 && from >= 1 && from <= 3 && msg[0] < 4;

    if (ok && len > 5) {
        want = dkv_malloc(len - 5);
        if (want != NULL) {
            uint32_t seq = ((uint32_t)msg[1] << 24) | ((uint32_t)msg[2] << 16)
                           | ((uint32_t)msg[3] << 8) | msg[4];

            pattern(want, len - 5, seq);
            ok = memcmp(want, msg + 5, len - 5) == 0;
            dkv_free(want);
        }
    }
    apr_thread_mutex_lock(s->mutex);
    if (ok) {
        uint32_t seq = ((uint32_t)msg[1] << 24) | ((uint32_t)msg[2] << 16)
                       | ((uint32_t)msg[3] << 8) | msg[4];

        if (seq != s->next[from][msg[0]]) {
            s->order_errors++;
        }
        s->next[from][msg[0]] = seq + 1;
        s->from[from]++;
    } else {
        s->order_errors++;
    }
    s->count++;
    apr_thread_cond_broadcast(s->cond);
    apr_thread_mutex_unlock(s->mutex);
    dkv_free(msg);
}

static void
sink_init(sink_t *s, uint32_t self, apr_pool_t *pool)
{
    memset(s, 0, sizeof(*s));
    s->self = self;
    DKV_ASSERT_OK(apr_thread_mutex_create(&s->mutex,
                                          APR_THREAD_MUTEX_DEFAULT, pool));
    DKV_ASSERT_OK(apr_thread_cond_create(&s->cond, pool));
}

/* Waits up to MS milliseconds until S received N messages from node FROM
 * (FROM 0: from anyone).  1 when it did. */
static int
sink_wait(sink_t *s, uint32_t from, size_t n, unsigned ms)
{
    apr_time_t end = apr_time_now() + apr_time_from_msec(ms);
    int ok;

    apr_thread_mutex_lock(s->mutex);
    for (;;) {
        apr_time_t left = end - apr_time_now();

        ok = (from ? s->from[from] : s->count) >= n;
        if (ok || left <= 0) {
            break;
        }
        apr_thread_cond_timedwait(s->cond, s->mutex, left);
    }
    apr_thread_mutex_unlock(s->mutex);
    return ok;
}

static size_t
sink_from(sink_t *s, uint32_t from)
{
    size_t n;

    apr_thread_mutex_lock(s->mutex);
    n = s->from[from];
    apr_thread_mutex_unlock(s->mutex);
    return n;
}

/* A loopback port free right now (bound, read and closed). */
static unsigned
free_port(apr_pool_t *pool)
{
    apr_sockaddr_t *sa = NULL, *local = NULL;
    apr_socket_t *s = NULL;
    unsigned port;

    DKV_ASSERT_OK(apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0,
                                        pool));
    DKV_ASSERT_OK(apr_socket_create(&s, APR_INET, SOCK_STREAM,
                                    APR_PROTO_TCP, pool));
    DKV_ASSERT_OK(apr_socket_bind(s, sa));
    DKV_ASSERT_OK(apr_socket_addr_get(&local, APR_LOCAL, s));
    port = local->port;
    apr_socket_close(s);
    return port;
}

/* A transport for node SELF listening on PORTS[SELF] with peers 1..3
 * (those of PORTS nonzero). */
static dkv_status_t
mknode(dkv_transport_t **t, uint32_t self, const unsigned *ports,
       const unsigned char *secret, const char *store, size_t max_queue,
       sink_t *sink, apr_pool_t *pool)
{
    dkv_transport_peer_t peers[3];
    dkv_transport_opts_t o;
    size_t n = 0;
    uint32_t id;

    for (id = 1; id <= 3; id++) {
        if (ports[id] != 0) {
            peers[n].id = id;
            peers[n].host = "127.0.0.1";
            peers[n].port = ports[id];
            n++;
        }
    }
    memset(&o, 0, sizeof(o));
    o.self = self;
    o.store = store;
    o.port = ports[self];
    o.secret = secret;
    o.peers = peers;
    o.npeers = n;
    o.max_queue_bytes = max_queue;
    return dkv_transport_create(t, &o, sink_recv, sink, pool);
}

static void
ignore_sigpipe(void)
{
#ifdef SIGPIPE
    /* A write to a link the peer closed must fail, not kill the runner
     * (dkv-node ignores SIGPIPE the same way). */
    signal(SIGPIPE, SIG_IGN);
#endif
}

/* Waits up to MS milliseconds until T's link to TO is up. */
static int
wait_connected(dkv_transport_t *t, uint32_t to, unsigned ms)
{
    apr_time_t end = apr_time_now() + apr_time_from_msec(ms);

    while (!dkv_transport_connected(t, to)) {
        if (apr_time_now() > end) {
            return 0;
        }
        apr_sleep(apr_time_from_msec(5));
    }
    return 1;
}

/* Sending threads of the ordering test. */
typedef struct sender {
    dkv_transport_t *t;
    unsigned thread_no;
    uint32_t to[2];
    unsigned count;
    unsigned failures;
} sender_t;

static void *APR_THREAD_FUNC
sender_main(apr_thread_t *thread, void *data)
{
    sender_t *s = data;
    unsigned k, j;

    (void)thread;
    for (k = 0; k < s->count; k++) {
        /* Mostly small, now and then a large one (the in-place path). */
        size_t len = (k % 97 == 0) ? 100000 + k : 5 + (k * 37) % 3000;

        for (j = 0; j < 2; j++) {
            if (s->to[j] != 0
                && dkv_transport_send_wait(s->t, s->to[j],
                                           mkmsg(s->thread_no, k, len),
                                           len, 3000) != DKV_OK) {
                s->failures++;
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------ transport cases */

/* Three nodes; node 1 sends from three threads and node 2 from one, to
 * both others: everything arrives, in order per sending thread, intact. */
static void
transport_three_nodes_in_order(void)
{
    apr_pool_t *pool = dkv_test_pool();
    unsigned ports[4] = { 0, 0, 0, 0 };
    dkv_transport_t *t[4] = { NULL, NULL, NULL, NULL };
    sink_t sinks[4];
    sender_t snd[4];
    apr_thread_t *thr[4];
    unsigned per = 400, k;
    dkv_transport_stats_t st;
    uint32_t id;

    ignore_sigpipe();
    for (id = 1; id <= 3; id++) {
        ports[id] = free_port(pool);
        sink_init(&sinks[id], id, pool);
    }
    for (id = 1; id <= 3; id++) {
        DKV_ASSERT_OK(mknode(&t[id], id, ports, secret_a, "store", 0,
                             &sinks[id], pool));
        DKV_EXPECT_UINT_EQ(dkv_transport_port(t[id]), ports[id]);
    }
    memset(snd, 0, sizeof(snd));
    for (k = 0; k < 4; k++) {
        snd[k].t = k < 3 ? t[1] : t[2];
        snd[k].thread_no = k;
        snd[k].to[0] = k < 3 ? 2 : 1;
        snd[k].to[1] = 3;
        snd[k].count = per;
        DKV_ASSERT_OK(apr_thread_create(&thr[k], NULL, sender_main, &snd[k],
                                        pool));
    }
    for (k = 0; k < 4; k++) {
        DKV_ASSERT_OK(dkv_test_thread_join(NULL, thr[k]));
        DKV_EXPECT_UINT_EQ(snd[k].failures, 0);
    }
    DKV_EXPECT_TRUE(sink_wait(&sinks[2], 1, 3 * per, 5000));
    DKV_EXPECT_TRUE(sink_wait(&sinks[3], 1, 3 * per, 5000));
    DKV_EXPECT_TRUE(sink_wait(&sinks[3], 2, per, 5000));
    DKV_EXPECT_TRUE(sink_wait(&sinks[1], 2, per, 5000));
    DKV_EXPECT_UINT_EQ(sink_from(&sinks[2], 1), 3 * per);
    DKV_EXPECT_UINT_EQ(sink_from(&sinks[3], 1), 3 * per);
    DKV_EXPECT_UINT_EQ(sink_from(&sinks[3], 2), per);
    DKV_EXPECT_UINT_EQ(sink_from(&sinks[1], 2), per);
    for (id = 1; id <= 3; id++) {
        DKV_EXPECT_UINT_EQ(sinks[id].order_errors, 0);
    }
    DKV_EXPECT_TRUE(dkv_transport_connected(t[1], 2));
    DKV_EXPECT_TRUE(!dkv_transport_connected(t[1], 1));
    DKV_EXPECT_STATUS(dkv_transport_send(t[1], 7, mkmsg(0, 0, 5), 5),
                      DKV_ENOTFOUND);
    dkv_transport_stats(t[1], &st);
    DKV_EXPECT_UINT_EQ(st.sent, 6 * per);
    DKV_EXPECT_UINT_EQ(st.refused, 0);
    DKV_EXPECT_UINT_EQ(st.bad_frames, 0);
    DKV_EXPECT_UINT_EQ(st.received, per);
    for (id = 1; id <= 3; id++) {
        dkv_transport_destroy(t[id]);
    }
    dkv_transport_destroy(NULL);
    apr_pool_destroy(pool);
}

/* Node 3 has another secret: nothing it sends is delivered, nothing is
 * delivered to it, both sides count the refusal; nodes 1 and 2 talk. */
static void
transport_wrong_secret(void)
{
    apr_pool_t *pool = dkv_test_pool();
    unsigned ports[4] = { 0, 0, 0, 0 };
    dkv_transport_t *t[4] = { NULL, NULL, NULL, NULL };
    sink_t sinks[4];
    dkv_transport_stats_t s1, s3;
    apr_time_t end;
    uint32_t id, k;

    ignore_sigpipe();
    for (id = 1; id <= 3; id++) {
        ports[id] = free_port(pool);
        sink_init(&sinks[id], id, pool);
    }
    for (id = 1; id <= 3; id++) {
        DKV_ASSERT_OK(mknode(&t[id], id, ports,
                             id == 3 ? secret_b : secret_a, "store", 0,
                             &sinks[id], pool));
    }
    for (k = 0; k < 5; k++) {
        DKV_EXPECT_OK(dkv_transport_send(t[3], 1, mkmsg(0, k, 50), 50));
        DKV_EXPECT_OK(dkv_transport_send(t[1], 3, mkmsg(0, k, 50), 50));
        DKV_EXPECT_OK(dkv_transport_send(t[2], 1, mkmsg(0, k, 50), 50));
    }
    DKV_EXPECT_TRUE(sink_wait(&sinks[1], 2, 5, 2000));
    /* Both directions of both links fail: wait for the counters. */
    end = apr_time_now() + apr_time_from_msec(2500);
    do {
        apr_sleep(apr_time_from_msec(10));
        dkv_transport_stats(t[1], &s1);
        dkv_transport_stats(t[3], &s3);
    } while ((s1.refused == 0 || s1.out_refused == 0 || s3.refused == 0
              || s3.out_refused == 0) && apr_time_now() < end);
    DKV_EXPECT_TRUE(s1.refused > 0);        /* node 3 dialled node 1 */
    DKV_EXPECT_TRUE(s3.out_refused > 0);
    DKV_EXPECT_TRUE(s3.refused > 0);        /* node 1 dialled node 3 */
    DKV_EXPECT_TRUE(s1.out_refused > 0);
    DKV_EXPECT_TRUE(!dkv_transport_connected(t[3], 1));
    DKV_EXPECT_TRUE(!dkv_transport_connected(t[1], 3));
    DKV_EXPECT_UINT_EQ(sink_from(&sinks[1], 3), 0);
    DKV_EXPECT_UINT_EQ(sinks[3].count, 0);
    DKV_EXPECT_UINT_EQ(s3.sent, 0);
    DKV_EXPECT_UINT_EQ(s3.links_up, 0);
    for (id = 1; id <= 3; id++) {
        DKV_EXPECT_UINT_EQ(sinks[id].order_errors, 0);
        dkv_transport_destroy(t[id]);
    }
    apr_pool_destroy(pool);
}

/* Node 2 restarts on the same port: node 1 reconnects and messages flow
 * again both ways, in order. */
static void
transport_peer_restart(void)
{
    apr_pool_t *pool = dkv_test_pool();
    unsigned ports[4] = { 0, 0, 0, 0 };
    dkv_transport_t *t1 = NULL, *t2 = NULL;
    sink_t s1, s2, s2b;
    apr_time_t end;
    uint32_t seq = 0, k;
    int tries;
    dkv_status_t rv;

    ignore_sigpipe();
    ports[1] = free_port(pool);
    ports[2] = free_port(pool);
    sink_init(&s1, 1, pool);
    sink_init(&s2, 2, pool);
    sink_init(&s2b, 2, pool);
    DKV_ASSERT_OK(mknode(&t1, 1, ports, secret_a, "store", 0, &s1, pool));
    DKV_ASSERT_OK(mknode(&t2, 2, ports, secret_a, "store", 0, &s2, pool));
    for (k = 0; k < 10; k++) {
        DKV_EXPECT_OK(dkv_transport_send(t1, 2, mkmsg(0, seq++, 20), 20));
    }
    DKV_EXPECT_TRUE(sink_wait(&s2, 1, 10, 2000));
    DKV_EXPECT_TRUE(wait_connected(t1, 2, 2000));

    dkv_transport_destroy(t2);
    t2 = NULL;
    /* The same port again (a port in TIME_WAIT may need a moment). */
    for (tries = 0; tries < 50; tries++) {
        rv = mknode(&t2, 2, ports, secret_a, "store", 0, &s2b, pool);
        if (rv == DKV_OK) {
            break;
        }
        apr_sleep(apr_time_from_msec(20));
    }
    DKV_ASSERT_OK(rv);
    /* Messages sent while the old link dies may be lost (at most once):
     * keep sending until they arrive, then all later ones arrive in
     * order. */
    end = apr_time_now() + apr_time_from_sec(3);
    while (sink_from(&s2b, 1) == 0 && apr_time_now() < end) {
        DKV_EXPECT_OK(dkv_transport_send(t1, 2, mkmsg(1, seq++, 20), 20));
        apr_sleep(apr_time_from_msec(20));
    }
    DKV_ASSERT_TRUE(sink_from(&s2b, 1) > 0);
    {
        size_t before = sink_from(&s2b, 1);

        for (k = 0; k < 50; k++) {
            DKV_EXPECT_OK(dkv_transport_send(t1, 2, mkmsg(1, seq++, 300),
                                             300));
            DKV_EXPECT_OK(dkv_transport_send(t2, 1, mkmsg(0, k, 300), 300));
        }
        DKV_EXPECT_TRUE(sink_wait(&s2b, 1, before + 50, 2000));
        DKV_EXPECT_TRUE(sink_wait(&s1, 2, 50, 2000));
    }
    /* The restarted node's first message may be any of the stream; the
     * sink counts a jump as an order error only after its first one. */
    DKV_EXPECT_TRUE(s2b.order_errors <= 1);
    DKV_EXPECT_UINT_EQ(s1.order_errors, 0);
    DKV_EXPECT_UINT_EQ(s2.order_errors, 0);
    dkv_transport_destroy(t1);
    dkv_transport_destroy(t2);
    apr_pool_destroy(pool);
}

/* Destroy is prompt with peers down, with a peer that accepts but never
 * answers the handshake, and with a silent client on the cluster port;
 * the queue bound refuses or times out sends. */
static void
transport_prompt_destroy_and_queue_bound(void)
{
    apr_pool_t *pool = dkv_test_pool();
    unsigned ports[4] = { 0, 0, 0, 0 };
    dkv_transport_t *t = NULL;
    sink_t s;
    apr_sockaddr_t *sa = NULL;
    apr_socket_t *mute = NULL, *client = NULL;
    apr_time_t start;
    dkv_transport_stats_t st;

    ignore_sigpipe();
    sink_init(&s, 1, pool);
    ports[1] = free_port(pool);
    ports[2] = free_port(pool);     /* nobody listens there */
    /* Node 3: a socket that listens and never accepts nor answers. */
    DKV_ASSERT_OK(apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0,
                                        pool));
    DKV_ASSERT_OK(apr_socket_create(&mute, APR_INET, SOCK_STREAM,
                                    APR_PROTO_TCP, pool));
    DKV_ASSERT_OK(apr_socket_bind(mute, sa));
    DKV_ASSERT_OK(apr_socket_listen(mute, 8));
    {
        apr_sockaddr_t *local = NULL;

        DKV_ASSERT_OK(apr_socket_addr_get(&local, APR_LOCAL, mute));
        ports[3] = local->port;
    }
    DKV_ASSERT_OK(mknode(&t, 1, ports, secret_a, "store", 1000, &s, pool));

    /* The bound: 1000 bytes per peer; a message alone larger than the
     * bound goes into an empty queue. */
    DKV_EXPECT_OK(dkv_transport_send(t, 2, mkmsg(0, 0, 600), 600));
    DKV_EXPECT_STATUS(dkv_transport_send(t, 2, mkmsg(0, 1, 600), 600),
                      DKV_EFULL);
    DKV_EXPECT_OK(dkv_transport_send(t, 2, mkmsg(0, 1, 400), 400));
    start = apr_time_now();
    DKV_EXPECT_STATUS(dkv_transport_send_wait(t, 2, mkmsg(0, 2, 10), 10,
                                              100), DKV_ETIMEOUT);
    DKV_EXPECT_TRUE(apr_time_now() - start >= apr_time_from_msec(90));
    DKV_EXPECT_TRUE(apr_time_now() - start < apr_time_from_sec(2));
    DKV_EXPECT_OK(dkv_transport_send(t, 3, mkmsg(0, 0, 5000), 5000));
    DKV_EXPECT_STATUS(dkv_transport_send(t, 3, mkmsg(0, 1, 5), 5),
                      DKV_EFULL);
    dkv_transport_stats(t, &st);
    DKV_EXPECT_UINT_EQ(st.dropped, 3);

    /* A silent client on the cluster port holds a reader in its
     * handshake. */
    DKV_ASSERT_OK(apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET,
                                        (apr_port_t)ports[1], 0, pool));
    DKV_ASSERT_OK(apr_socket_create(&client, APR_INET, SOCK_STREAM,
                                    APR_PROTO_TCP, pool));
    DKV_ASSERT_OK(apr_socket_connect(client, sa));
    apr_sleep(apr_time_from_msec(300));     /* connects, retries, waits */
    DKV_EXPECT_TRUE(!dkv_transport_connected(t, 2));
    DKV_EXPECT_TRUE(!dkv_transport_connected(t, 3));

    start = apr_time_now();
    dkv_transport_destroy(t);
    DKV_EXPECT_TRUE(apr_time_now() - start < apr_time_from_msec(1500));
    apr_socket_close(client);
    apr_socket_close(mute);
    DKV_EXPECT_UINT_EQ(s.count, 0);
    apr_pool_destroy(pool);
}

/* Reads from SOCK until the peer closes it (1) or MS milliseconds pass
 * (0). */
static int
raw_wait_closed(apr_socket_t *sock, unsigned ms)
{
    apr_time_t end = apr_time_now() + apr_time_from_msec(ms);
    char buf[256];

    apr_socket_timeout_set(sock, apr_time_from_msec(50));
    while (apr_time_now() < end) {
        apr_size_t n = sizeof(buf);
        apr_status_t rv = apr_socket_recv(sock, buf, &n);

        if (rv != APR_SUCCESS && !APR_STATUS_IS_TIMEUP(rv)
            && !APR_STATUS_IS_EAGAIN(rv)) {
            return 1;
        }
    }
    return 0;
}

/* A raw client connected to PORT. */
static apr_socket_t *
raw_connect(unsigned port, apr_pool_t *pool)
{
    apr_sockaddr_t *sa = NULL;
    apr_socket_t *s = NULL;

    DKV_ASSERT_OK(apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET,
                                        (apr_port_t)port, 0, pool));
    DKV_ASSERT_OK(apr_socket_create(&s, APR_INET, SOCK_STREAM,
                                    APR_PROTO_TCP, pool));
    DKV_ASSERT_OK(apr_socket_timeout_set(s, apr_time_from_sec(2)));
    DKV_ASSERT_OK(apr_socket_connect(s, sa));
    return s;
}

static void
raw_send(apr_socket_t *s, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        apr_size_t n = len;

        DKV_ASSERT_OK(apr_socket_send(s, (const char *)buf, &n));
        buf += n;
        len -= n;
    }
}

static void
raw_recv(apr_socket_t *s, unsigned char *buf, size_t len)
{
    while (len > 0) {
        apr_size_t n = len;

        DKV_ASSERT_OK(apr_socket_recv(s, (char *)buf, &n));
        buf += n;
        len -= n;
    }
}

/* A raw client completes the handshake as node 3 (it has the secret)
 * with the link code over a socket. */
static dkv_link_t *
raw_handshake(apr_socket_t *s)
{
    dkv_link_t *l = mklink(3, 1, 1, "store", secret_a);
    unsigned char out[DKV_LINK_HS_MAX], in[DKV_LINK_HS_MAX];
    size_t n = 0;

    DKV_ASSERT_OK(dkv_link_start(l, out, &n));
    while (n > 0 || dkv_link_need(l) > 0) {
        size_t need;

        raw_send(s, out, n);
        n = 0;
        need = dkv_link_need(l);
        if (need == 0) {
            break;
        }
        raw_recv(s, in, need);
        DKV_ASSERT_OK(dkv_link_input(l, in, need, out, &n));
    }
    DKV_ASSERT_TRUE(dkv_link_established(l));
    return l;
}

/* Garbage, a forged length and a tampered frame on the cluster port: each
 * such client is dropped, and the good link from node 2 keeps working. */
static void
transport_garbage_dropped(void)
{
    apr_pool_t *pool = dkv_test_pool();
    unsigned ports[4] = { 0, 0, 0, 0 };
    dkv_transport_t *t1 = NULL, *t2 = NULL;
    sink_t s1, s2;
    apr_socket_t *raw;
    dkv_link_t *l;
    unsigned char junk[200], f[64 + DKV_LINK_FRAME_OVERHEAD];
    unsigned char *m;
    dkv_transport_stats_t st;
    uint32_t seq = 0, k;

    ignore_sigpipe();
    ports[1] = free_port(pool);
    ports[2] = free_port(pool);
    ports[3] = free_port(pool);     /* node 3: the raw clients */
    sink_init(&s1, 1, pool);
    sink_init(&s2, 2, pool);
    DKV_ASSERT_OK(mknode(&t1, 1, ports, secret_a, "store", 0, &s1, pool));
    DKV_ASSERT_OK(mknode(&t2, 2, ports, secret_a, "store", 0, &s2, pool));
    for (k = 0; k < 5; k++) {
        DKV_EXPECT_OK(dkv_transport_send(t2, 1, mkmsg(0, seq++, 40), 40));
    }
    DKV_ASSERT_TRUE(sink_wait(&s1, 2, 5, 2000));

    /* Garbage instead of a hello. */
    raw = raw_connect(ports[1], pool);
    pattern(junk, sizeof(junk), 77);
    raw_send(raw, junk, sizeof(junk));
    DKV_EXPECT_TRUE(raw_wait_closed(raw, 2000));
    apr_socket_close(raw);

    /* A good handshake, one good frame, then a tampered one. */
    raw = raw_connect(ports[1], pool);
    l = raw_handshake(raw);
    m = mkmsg(0, 0, 64);
    DKV_ASSERT_OK(dkv_link_seal(l, f, m, 64));
    raw_send(raw, f, sizeof(f));
    DKV_EXPECT_TRUE(sink_wait(&s1, 3, 1, 2000));
    DKV_ASSERT_OK(dkv_link_seal(l, f, m, 64));
    f[30] ^= 0x40;
    raw_send(raw, f, sizeof(f));
    DKV_EXPECT_TRUE(raw_wait_closed(raw, 2000));
    apr_socket_close(raw);
    dkv_link_destroy(l);

    /* A good handshake, then the first frame replayed. */
    raw = raw_connect(ports[1], pool);
    l = raw_handshake(raw);
    DKV_ASSERT_OK(dkv_link_seal(l, f, m, 64));
    raw_send(raw, f, sizeof(f));
    raw_send(raw, f, sizeof(f));
    DKV_EXPECT_TRUE(raw_wait_closed(raw, 2000));
    apr_socket_close(raw);
    dkv_link_destroy(l);

    /* A good handshake, then a length far over the bound. */
    raw = raw_connect(ports[1], pool);
    l = raw_handshake(raw);
    memset(junk, 0xff, 4);
    raw_send(raw, junk, 4);
    DKV_EXPECT_TRUE(raw_wait_closed(raw, 2000));
    apr_socket_close(raw);
    dkv_link_destroy(l);
    dkv_free(m);

    /* Node 2's link was never disturbed. */
    for (k = 0; k < 20; k++) {
        DKV_EXPECT_OK(dkv_transport_send(t2, 1, mkmsg(0, seq++, 40), 40));
    }
    DKV_EXPECT_TRUE(sink_wait(&s1, 2, 25, 2000));
    DKV_EXPECT_UINT_EQ(sink_from(&s1, 3), 2);
    DKV_EXPECT_UINT_EQ(s1.order_errors, 1);     /* node 3's repeat seq 0 */
    dkv_transport_stats(t1, &st);
    DKV_EXPECT_UINT_EQ(st.refused, 1);
    DKV_EXPECT_UINT_EQ(st.bad_frames, 3);
    dkv_transport_stats(t2, &st);
    DKV_EXPECT_UINT_EQ(st.links_up, 1);
    dkv_transport_destroy(t1);
    dkv_transport_destroy(t2);
    apr_pool_destroy(pool);
}

/* Nodes 1 and 2 start without node 3, which knows them both: node 1
 * refuses node 3's links and cannot send to it.  Node 1 then learns of
 * node 3 at a wrong address (the message waits in the queue), then at
 * the right one (the link comes up, the message is delivered); adding
 * it again changes nothing; node 3's own link to node 1 comes up. */
static void
transport_add_peer(void)
{
    apr_pool_t *pool = dkv_test_pool();
    unsigned ports[4] = { 0, 0, 0, 0 }, ports12[4] = { 0, 0, 0, 0 };
    unsigned wrong;
    dkv_transport_t *t[4] = { NULL, NULL, NULL, NULL };
    sink_t sinks[4];
    dkv_transport_stats_t st, st2;
    apr_time_t end;
    uint32_t id, seq = 0;

    ignore_sigpipe();
    for (id = 1; id <= 3; id++) {
        ports[id] = free_port(pool);
        sink_init(&sinks[id], id, pool);
    }
    wrong = free_port(pool);
    ports12[1] = ports[1];
    ports12[2] = ports[2];
    DKV_ASSERT_OK(mknode(&t[1], 1, ports12, secret_a, "store", 0,
                         &sinks[1], pool));
    DKV_ASSERT_OK(mknode(&t[2], 2, ports12, secret_a, "store", 0,
                         &sinks[2], pool));
    DKV_ASSERT_OK(mknode(&t[3], 3, ports, secret_a, "store", 0,
                         &sinks[3], pool));

    /* Before: node 3 is nobody to node 1. */
    DKV_EXPECT_STATUS(dkv_transport_send(t[1], 3, mkmsg(0, 0, 10), 10),
                      DKV_ENOTFOUND);
    DKV_EXPECT_OK(dkv_transport_send(t[3], 1, mkmsg(1, seq++, 10), 10));
    end = apr_time_now() + apr_time_from_sec(3);
    do {
        apr_sleep(apr_time_from_msec(10));
        dkv_transport_stats(t[1], &st);
    } while (st.refused == 0 && apr_time_now() < end);
    DKV_EXPECT_TRUE(st.refused > 0);
    DKV_EXPECT_UINT_EQ(sink_from(&sinks[1], 3), 0);

    /* Bad input; this node itself is not a peer to add. */
    DKV_EXPECT_STATUS(dkv_transport_add_peer(t[1], 3, "127.0.0.1", 0),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_transport_add_peer(t[1], 3, "", ports[3]),
                      DKV_EINVAL);
    DKV_EXPECT_STATUS(dkv_transport_add_peer(t[1], 0, "127.0.0.1",
                                             ports[3]), DKV_EINVAL);
    DKV_EXPECT_OK(dkv_transport_add_peer(t[1], 1, "127.0.0.1", ports[1]));
    DKV_EXPECT_STATUS(dkv_transport_send(t[1], 1, mkmsg(0, 0, 10), 10),
                      DKV_ENOTFOUND);

    /* A wrong address first: the message waits. */
    DKV_EXPECT_OK(dkv_transport_add_peer(t[1], 3, "127.0.0.1", wrong));
    DKV_EXPECT_OK(dkv_transport_send(t[1], 3, mkmsg(0, 0, 10), 10));
    apr_sleep(apr_time_from_msec(300));
    DKV_EXPECT_TRUE(!dkv_transport_connected(t[1], 3));
    DKV_EXPECT_UINT_EQ(sink_from(&sinks[3], 1), 0);

    /* The right one: the link comes up and the message arrives. */
    DKV_EXPECT_OK(dkv_transport_add_peer(t[1], 3, "127.0.0.1", ports[3]));
    DKV_EXPECT_TRUE(wait_connected(t[1], 3, 4000));
    DKV_EXPECT_TRUE(sink_wait(&sinks[3], 1, 1, 3000));
    DKV_EXPECT_UINT_EQ(sinks[3].order_errors, 0);

    /* Again at the same address: nothing changes. */
    dkv_transport_stats(t[1], &st);
    DKV_EXPECT_OK(dkv_transport_add_peer(t[1], 3, "127.0.0.1", ports[3]));
    DKV_EXPECT_OK(dkv_transport_send(t[1], 3, mkmsg(0, 1, 10), 10));
    DKV_EXPECT_TRUE(sink_wait(&sinks[3], 1, 2, 3000));
    dkv_transport_stats(t[1], &st2);
    DKV_EXPECT_UINT_EQ(st2.links_up, st.links_up);
    DKV_EXPECT_TRUE(dkv_transport_connected(t[1], 3));

    /* Node 3's link to node 1 is accepted now (it retries with
     * backoff; what it sent meanwhile may be lost: at most once). */
    end = apr_time_now() + apr_time_from_sec(4);
    while (sink_from(&sinks[1], 3) == 0 && apr_time_now() < end) {
        DKV_EXPECT_OK(dkv_transport_send(t[3], 1, mkmsg(1, seq++, 10), 10));
        apr_sleep(apr_time_from_msec(50));
    }
    DKV_EXPECT_TRUE(sink_from(&sinks[1], 3) > 0);
    /* Node 2 still does not know node 3. */
    DKV_EXPECT_STATUS(dkv_transport_send(t[2], 3, mkmsg(0, 0, 10), 10),
                      DKV_ENOTFOUND);
    for (id = 1; id <= 3; id++) {
        dkv_transport_destroy(t[id]);
    }
    DKV_EXPECT_UINT_EQ(sinks[2].order_errors, 0);
    apr_pool_destroy(pool);
}

/* ------------------------------------------------------------- register */

static void
register_transport(CU_pSuite s)
{
    DKV_TEST_ADD(s, transport_three_nodes_in_order);
    DKV_TEST_ADD(s, transport_wrong_secret);
    DKV_TEST_ADD(s, transport_peer_restart);
    DKV_TEST_ADD(s, transport_prompt_destroy_and_queue_bound);
    DKV_TEST_ADD(s, transport_garbage_dropped);
    DKV_TEST_ADD(s, transport_add_peer);
}

void
test_link_register(void)
{
    CU_pSuite s = dkv_test_add_suite("link", NULL, NULL);

    DKV_TEST_ADD(s, link_handshake_and_round_trip);
    DKV_TEST_ADD(s, link_wrong_secret);
    DKV_TEST_ADD(s, link_wrong_store);
    DKV_TEST_ADD(s, link_unknown_peer);
    DKV_TEST_ADD(s, link_reflected_and_replayed_hello);
    DKV_TEST_ADD(s, link_malformed_hello);
    DKV_TEST_ADD(s, link_tampered_frame);
    DKV_TEST_ADD(s, link_replay_reorder_drop);
    DKV_TEST_ADD(s, link_truncated_and_bounds);
    register_transport(s);
}
