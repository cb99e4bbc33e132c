/*
 * bench-cluster.c -- write and read throughput and latency of a replicated
 * store under a closed-loop load: C client threads, each with ONE request
 * outstanding at a time (it sends the next request when the previous one
 * is answered), 100-byte values, keys drawn at random from a fixed key
 * space, for a fixed time per measurement.  The same program drives both
 * systems the cluster benchmark compares, so both see exactly the same
 * load:
 *
 *   dkv        through the C client library: dkv_open("dkv://...") and
 *              dkv_put / dkv_get (linearizable by default)
 *   etcd       etcd v3's native gRPC API (KV/Put, KV/Range), spoken by a
 *              minimal HTTP/2 client written here: one connection per
 *              client thread, one stream at a time, no compression
 *   etcd-http  etcd's HTTP/JSON gateway (POST /v3/kv/put, /v3/kv/range)
 *              over HTTP/1.1 keep-alive, one connection per client thread
 *
 * Client threads are spread over the members: thread i talks to member
 * i mod M.  For dkv, each handle's seed list starts at its member (the
 * library connects to the first endpoint that answers); with --handles 0
 * (the default) each thread has its own handle, hence its own connection,
 * like etcd's clients here; --handles H shares H handles among the
 * threads (the library multiplexes them on one connection per handle).
 * Writes and linearizable reads sent to a follower are forwarded to the
 * leader (writes) or confirmed through it (reads) by both systems.
 *
 *   bench-cluster --system dkv|etcd|etcd-http --endpoints H:P[,H:P...]
 *                 [--store Bench] [--clients 1,16,256] [--ops put,get]
 *                 [--seconds 5] [--warmup 1] [--value 100] [--keys 10000]
 *                 [--handles 0] [--token T] [--wait 30] [--load 1]
 *
 * --ops takes put (writes), get (linearizable reads) and sget
 * (serializable reads: etcd's serializable range, dkv's serializable_reads
 * handle option); load only writes every key once.  With --load 1 (the
 * default) every key is written once before the first read, so every
 * read finds a value (and checks it); --load 0 leaves that to an earlier
 * run with --ops load.
 *
 * First it waits (--wait seconds at most) until every member takes a
 * write: the leader is elected and reachable from each member.
 *
 * Output, one line per operation and concurrency:
 *   SYSTEM OP C=<clients> ops=<ops/s> p50_ms=<ms> p99_ms=<ms> errors=<n>
 *       p90_ms=<ms> max_ms=<ms>
 * ops/s counts the requests answered inside the measured window (after
 * the warm-up); latency is from a request's send to its answer.  Exits 1
 * when a connection cannot be made or a measurement had errors.
 * Linux/POSIX only; not a test (bench/run-cluster-bench.sh runs it).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "dkv.h"

#define MAX_ENDPOINTS 16
#define MAX_CLIENTS 1024
#define MAX_SAMPLES 4000000u
#define INBUF (1u << 16)
#define RESPBUF (1u << 16)

enum { SYS_DKV, SYS_ETCD, SYS_ETCD_HTTP };
enum { OP_PUT, OP_GET, OP_SGET };

static const char *const op_names[] = { "put", "get", "sget" };
static const char *const sys_names[] = { "dkv", "etcd", "etcd-http" };

static int opt_system = -1;
static char opt_host[MAX_ENDPOINTS][64];
static int opt_port[MAX_ENDPOINTS];
static int n_endpoints;
static const char *opt_store = "Bench";
static const char *opt_clients = "1,16,256";
static const char *opt_ops = "put,get";
static double opt_seconds = 5.0;
static double opt_warmup = 1.0;
static int opt_value = 100;
static int opt_keys = 10000;
static int opt_handles;
static const char *opt_token;
static double opt_wait = 30.0;
static int opt_load = 1;

/* 0 warm-up (not counted), 1 measuring, 2 stop. */
static volatile int g_phase;

/* ================================================================ misc */

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int
send_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);

        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int
tcp_connect(int member)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)opt_port[member]);
    if (inet_pton(AF_INET, opt_host[member], &sa.sin_addr) != 1
        || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int
key_of(char *buf, size_t cap, int k)
{
    return snprintf(buf, cap, "key:%08d", k);
}

/* Appends VAL as a protobuf varint at P; returns the bytes written. */
static size_t
put_varint(unsigned char *p, uint64_t val)
{
    size_t n = 0;

    while (val >= 0x80) {
        p[n++] = (unsigned char)(val | 0x80);
        val >>= 7;
    }
    p[n++] = (unsigned char)val;
    return n;
}

/* Reads a varint at *P (before END); -1 when truncated. */
static int
get_varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
    unsigned shift = 0;

    *v = 0;
    while (*p < end && shift < 64) {
        unsigned char b = *(*p)++;

        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            return 0;
        }
        shift += 7;
    }
    return -1;
}

/* The request message: PutRequest {1: key, 2: value} or RangeRequest
 * {1: key, 7: serializable}.  Returns its length. */
static size_t
pb_request(unsigned char *out, int op, const char *key, size_t klen,
           const char *value, size_t vlen)
{
    size_t n = 0;

    out[n++] = 0x0a;
    n += put_varint(out + n, klen);
    memcpy(out + n, key, klen);
    n += klen;
    if (op == OP_PUT) {
        out[n++] = 0x12;
        n += put_varint(out + n, vlen);
        memcpy(out + n, value, vlen);
        n += vlen;
    }
    else if (op == OP_SGET) {
        out[n++] = 0x38;
        out[n++] = 0x01;
    }
    return n;
}

/* Does the RangeResponse MSG carry one KeyValue (field 2, kvs) whose
 * value (KeyValue field 5) is VLEN bytes?  1 yes, 0 no. */
static int
pb_range_found(const unsigned char *msg, size_t len, size_t vlen)
{
    const unsigned char *p = msg, *end = msg + len;

    while (p < end) {
        uint64_t tag, l;

        if (get_varint(&p, end, &tag) != 0) {
            return 0;
        }
        if ((tag & 7) == 0) {
            if (get_varint(&p, end, &l) != 0) {
                return 0;
            }
            continue;
        }
        if ((tag & 7) != 2 || get_varint(&p, end, &l) != 0
            || l > (uint64_t)(end - p)) {
            return 0;
        }
        if ((tag >> 3) == 2) {
            const unsigned char *q = p, *qe = p + l;

            while (q < qe) {
                uint64_t t2, l2;

                if (get_varint(&q, qe, &t2) != 0) {
                    return 0;
                }
                if ((t2 & 7) == 0) {
                    if (get_varint(&q, qe, &l2) != 0) {
                        return 0;
                    }
                    continue;
                }
                if ((t2 & 7) != 2 || get_varint(&q, qe, &l2) != 0
                    || l2 > (uint64_t)(qe - q)) {
                    return 0;
                }
                if ((t2 >> 3) == 5) {
                    return l2 == vlen;
                }
                q += l2;
            }
            return 0;
        }
        p += l;
    }
    return 0;
}

/* ====================================================== etcd over gRPC */

/*
 * A minimal HTTP/2 client for unary gRPC calls without TLS (h2c with
 * prior knowledge, which etcd's client port accepts).  One call at a time
 * per connection.  Request headers are encoded with HPACK literals that
 * never touch the dynamic table; response headers are not decoded: a call
 * succeeds when its DATA carries a whole gRPC message (a failing call
 * answers with trailers only).  Flow control: our receive windows are
 * opened to 1 GiB and topped up; the connection's send window is tracked
 * from the server's WINDOW_UPDATEs.
 */
typedef struct h2conn {
    int fd;
    uint32_t next_stream;
    int64_t send_window;
    uint64_t recv_unacked;
    int dead;
    unsigned char *in;
    size_t in_off, in_n;
    unsigned char *resp;
    size_t resp_n;
    char authority[80];
} h2conn_t;

static void
h2_frame_header(unsigned char *p, size_t len, unsigned type,
                unsigned flags, uint32_t sid)
{
    p[0] = (unsigned char)(len >> 16);
    p[1] = (unsigned char)(len >> 8);
    p[2] = (unsigned char)len;
    p[3] = (unsigned char)type;
    p[4] = (unsigned char)flags;
    p[5] = (unsigned char)(sid >> 24);
    p[6] = (unsigned char)(sid >> 16);
    p[7] = (unsigned char)(sid >> 8);
    p[8] = (unsigned char)sid;
}

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
           | ((uint32_t)p[2] << 8) | p[3];
}

static int
h2_window_update(h2conn_t *c, uint32_t sid, uint32_t inc)
{
    unsigned char f[13];

    h2_frame_header(f, 4, 8, 0, sid);
    put_u32(f + 9, inc & 0x7fffffffu);
    return send_all(c->fd, f, sizeof f);
}

static h2conn_t *
h2_connect(int member)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    unsigned char buf[64];
    size_t n = 0;
    h2conn_t *c = calloc(1, sizeof *c);

    if (c == NULL) {
        return NULL;
    }
    c->in = malloc(INBUF);
    c->resp = malloc(RESPBUF);
    c->fd = tcp_connect(member);
    if (c->in == NULL || c->resp == NULL || c->fd < 0) {
        goto fail;
    }
    c->next_stream = 1;
    c->send_window = 65535;
    snprintf(c->authority, sizeof c->authority, "%s:%d", opt_host[member],
             opt_port[member]);
    memcpy(buf, preface, 24);
    n = 24;
    /* SETTINGS: ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 1 GiB. */
    h2_frame_header(buf + n, 12, 4, 0, 0);
    n += 9;
    buf[n++] = 0;
    buf[n++] = 2;
    put_u32(buf + n, 0);
    n += 4;
    buf[n++] = 0;
    buf[n++] = 4;
    put_u32(buf + n, 1u << 30);
    n += 4;
    if (send_all(c->fd, buf, n) != 0
        || h2_window_update(c, 0, (1u << 30) - 65535u) != 0) {
        goto fail;
    }
    return c;
fail:
    if (c->fd >= 0) {
        close(c->fd);
    }
    free(c->in);
    free(c->resp);
    free(c);
    return NULL;
}

static void
h2_close(h2conn_t *c)
{
    if (c != NULL) {
        close(c->fd);
        free(c->in);
        free(c->resp);
        free(c);
    }
}

/* Makes the next frame whole in c->in; sets its header fields and
 * payload.  Returns 0, or -1 when the connection broke. */
static int
h2_next_frame(h2conn_t *c, unsigned *type, unsigned *flags, uint32_t *sid,
              const unsigned char **payload, size_t *len)
{
    for (;;) {
        size_t avail = c->in_n - c->in_off;

        if (avail >= 9) {
            const unsigned char *h = c->in + c->in_off;
            size_t l = ((size_t)h[0] << 16) | ((size_t)h[1] << 8) | h[2];

            if (l + 9 > INBUF) {
                return -1;
            }
            if (avail >= l + 9) {
                *len = l;
                *type = h[3];
                *flags = h[4];
                *sid = get_u32(h + 5) & 0x7fffffffu;
                *payload = h + 9;
                c->in_off += l + 9;
                return 0;
            }
        }
        if (c->in_off > 0) {
            memmove(c->in, c->in + c->in_off, avail);
            c->in_n = avail;
            c->in_off = 0;
        }
        {
            ssize_t k = recv(c->fd, c->in + c->in_n, INBUF - c->in_n, 0);

            if (k < 0 && errno == EINTR) {
                continue;
            }
            if (k <= 0) {
                return -1;
            }
            c->in_n += (size_t)k;
        }
    }
}

/* Handles one connection-level frame (SETTINGS, PING, WINDOW_UPDATE,
 * GOAWAY); returns -1 when the connection cannot go on. */
static int
h2_control(h2conn_t *c, unsigned type, unsigned flags, uint32_t sid,
           const unsigned char *p, size_t len)
{
    unsigned char f[17];

    if (type == 4 && (flags & 1) == 0) {
        h2_frame_header(f, 0, 4, 1, 0);
        return send_all(c->fd, f, 9);
    }
    if (type == 6 && (flags & 1) == 0 && len == 8) {
        h2_frame_header(f, 8, 6, 1, 0);
        memcpy(f + 9, p, 8);
        return send_all(c->fd, f, 17);
    }
    if (type == 8 && sid == 0 && len == 4) {
        c->send_window += get_u32(p) & 0x7fffffffu;
        return 0;
    }
    if (type == 7) {
        return -1;
    }
    return 0;
}

/* One unary call: PATH with the protobuf message MSG.  On success the
 * response message is in c->resp (c->resp_n bytes).  Returns 0, 1 when
 * the call failed (no message), -1 when the connection broke. */
static int
h2_call(h2conn_t *c, const char *path, const unsigned char *msg,
        size_t mlen)
{
    unsigned char out[1024];
    size_t n = 9, hstart, plen = strlen(path), alen = strlen(c->authority);
    uint32_t sid = c->next_stream;
    int ended = 0, trailers = 0;
    size_t raw = 0;

    if (c->dead || mlen + plen + alen + 128 > sizeof out) {
        return -1;
    }
    c->next_stream += 2;
    /* HEADERS: :method POST, :scheme http (static table 3 and 6);
     * :path, :authority and content-type as literals with indexed
     * names (4, 1, 31), te as a literal with a literal name. */
    hstart = n;
    out[n++] = 0x83;
    out[n++] = 0x86;
    out[n++] = 0x04;
    out[n++] = (unsigned char)plen;
    memcpy(out + n, path, plen);
    n += plen;
    out[n++] = 0x01;
    out[n++] = (unsigned char)alen;
    memcpy(out + n, c->authority, alen);
    n += alen;
    out[n++] = 0x0f;
    out[n++] = 0x10;
    out[n++] = 16;
    memcpy(out + n, "application/grpc", 16);
    n += 16;
    out[n++] = 0x00;
    out[n++] = 2;
    memcpy(out + n, "te", 2);
    n += 2;
    out[n++] = 8;
    memcpy(out + n, "trailers", 8);
    n += 8;
    h2_frame_header(out, n - hstart, 1, 0x4, sid);
    /* DATA with END_STREAM: the 5-byte gRPC prefix and the message. */
    h2_frame_header(out + n, mlen + 5, 0, 0x1, sid);
    n += 9;
    out[n++] = 0;
    put_u32(out + n, (uint32_t)mlen);
    n += 4;
    memcpy(out + n, msg, mlen);
    n += mlen;
    while (c->send_window < (int64_t)(mlen + 5)) {
        unsigned type, flags;
        uint32_t fsid;
        const unsigned char *p;
        size_t len;

        if (h2_next_frame(c, &type, &flags, &fsid, &p, &len) != 0
            || h2_control(c, type, flags, fsid, p, len) != 0) {
            c->dead = 1;
            return -1;
        }
    }
    c->send_window -= (int64_t)(mlen + 5);
    if (send_all(c->fd, out, n) != 0) {
        c->dead = 1;
        return -1;
    }
    c->resp_n = 0;
    while (!ended) {
        unsigned type, flags;
        uint32_t fsid;
        const unsigned char *p;
        size_t len;

        if (h2_next_frame(c, &type, &flags, &fsid, &p, &len) != 0) {
            c->dead = 1;
            return -1;
        }
        if (type == 0) {
            c->recv_unacked += len;
            if (fsid == sid) {
                size_t off = 0, pad = 0;

                if (flags & 0x8) {
                    pad = len > 0 ? p[0] : 0;
                    off = 1;
                }
                if (off + pad <= len && raw + len - off - pad <= RESPBUF) {
                    memcpy(c->resp + raw, p + off, len - off - pad);
                    raw += len - off - pad;
                }
                ended = (flags & 1) != 0;
            }
        }
        else if ((type == 1 || type == 9) && fsid == sid) {
            /* Trailers (or a trailers-only answer) end the call once the
             * header block is complete. */
            if (type == 1 && (flags & 1)) {
                trailers = 1;
            }
            if (trailers && (flags & 0x4)) {
                ended = 1;
            }
        }
        else if (type == 3 && fsid == sid) {
            return 1;
        }
        else if (h2_control(c, type, flags, fsid, p, len) != 0) {
            c->dead = 1;
            return -1;
        }
    }
    if (c->recv_unacked > (1u << 28)) {
        if (h2_window_update(c, 0, (uint32_t)c->recv_unacked) != 0) {
            c->dead = 1;
            return -1;
        }
        c->recv_unacked = 0;
    }
    if (raw < 5 || raw - 5 < get_u32(c->resp + 1) || c->resp[0] != 0) {
        return 1;
    }
    c->resp_n = get_u32(c->resp + 1);
    memmove(c->resp, c->resp + 5, c->resp_n);
    return 0;
}

/* ============================================= etcd over HTTP/1.1 + JSON */

typedef struct h1conn {
    int fd;
    unsigned char *in;
    size_t in_n;
    char host[80];
} h1conn_t;

static size_t
base64(char *out, const void *data, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8)
                     | p[i + 2];

        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16;

        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static h1conn_t *
h1_connect(int member)
{
    h1conn_t *c = calloc(1, sizeof *c);

    if (c == NULL) {
        return NULL;
    }
    c->in = malloc(INBUF);
    c->fd = tcp_connect(member);
    if (c->in == NULL || c->fd < 0) {
        if (c->fd >= 0) {
            close(c->fd);
        }
        free(c->in);
        free(c);
        return NULL;
    }
    snprintf(c->host, sizeof c->host, "%s:%d", opt_host[member],
             opt_port[member]);
    return c;
}

static void
h1_close(h1conn_t *c)
{
    if (c != NULL) {
        close(c->fd);
        free(c->in);
        free(c);
    }
}

/* POSTs BODY to PATH; on success *RBODY points at the answer's body
 * (RLEN bytes, NUL-terminated) inside c->in.  Returns 0, 1 for a status
 * other than 200, -1 when the connection broke. */
static int
h1_post(h1conn_t *c, const char *path, const char *body, size_t blen,
        const char **rbody, size_t *rlen)
{
    char out[2048];
    int n = snprintf(out, sizeof out, "POST %s HTTP/1.1\r\nHost: %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n", path, c->host, blen);
    size_t need = 0, hlen = 0;

    if (n < 0 || (size_t)n + blen > sizeof out) {
        return -1;
    }
    memcpy(out + n, body, blen);
    if (send_all(c->fd, out, (size_t)n + blen) != 0) {
        return -1;
    }
    c->in_n = 0;
    for (;;) {
        ssize_t k;

        if (hlen == 0 && c->in_n >= 4) {
            char *e;

            c->in[c->in_n] = '\0';
            e = strstr((char *)c->in, "\r\n\r\n");
            if (e != NULL) {
                const char *cl = strstr((char *)c->in, "Content-Length:");

                hlen = (size_t)(e - (char *)c->in) + 4;
                if (cl == NULL || cl > e) {
                    return -1;
                }
                need = hlen + (size_t)strtoul(cl + 15, NULL, 10);
                if (need >= INBUF) {
                    return -1;
                }
            }
        }
        if (hlen > 0 && c->in_n >= need) {
            break;
        }
        k = recv(c->fd, c->in + c->in_n, INBUF - 1 - c->in_n, 0);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            return -1;
        }
        c->in_n += (size_t)k;
    }
    c->in[need] = '\0';
    *rbody = (const char *)c->in + hlen;
    *rlen = need - hlen;
    return strncmp((char *)c->in, "HTTP/1.1 200", 12) == 0 ? 0 : 1;
}

/* ============================================================== workers */

typedef struct worker {
    int id;
    int op;
    dkv_client_t *dkv;
    h2conn_t *h2;
    h1conn_t *h1;
    apr_pool_t *pool;
    unsigned seed;
    uint64_t done;
    uint64_t errors;
    int broken;
    float *lat;                 /* ms, one per counted request */
    size_t nlat, caplat;
    char *value;
    char *value64;              /* base64 of value (etcd-http) */
} worker_t;

/* One request of W's operation on key K; returns 0 on success. */
static int
do_request(worker_t *w, int k)
{
    char key[32];
    int klen = key_of(key, sizeof key, k);

    if (opt_system == SYS_DKV) {
        dkv_status_t st;

        if (w->op == OP_PUT) {
            st = dkv_put(NULL, w->dkv, key, (size_t)klen, w->value,
                         (size_t)opt_value, NULL);
        }
        else {
            dkv_item_t *item = NULL;

            st = dkv_get(&item, w->dkv, key, (size_t)klen, NULL, w->pool);
            if (st == DKV_OK && item->value_len != (size_t)opt_value) {
                st = DKV_ECORRUPT;
            }
            apr_pool_clear(w->pool);
        }
        if (st != DKV_OK && w->errors < 3) {
            fprintf(stderr, "bench-cluster: dkv %s: %s\n",
                    op_names[w->op], dkv_last_error());
        }
        return st == DKV_OK ? 0 : 1;
    }
    if (opt_system == SYS_ETCD) {
        unsigned char msg[1024];
        size_t mlen = pb_request(msg, w->op, key, (size_t)klen, w->value,
                                 (size_t)opt_value);
        int rc = h2_call(w->h2, w->op == OP_PUT ? "/etcdserverpb.KV/Put"
                                                : "/etcdserverpb.KV/Range",
                         msg, mlen);

        if (rc < 0) {
            w->broken = 1;
        }
        if (rc == 0 && w->op != OP_PUT
            && !pb_range_found(w->h2->resp, w->h2->resp_n,
                               (size_t)opt_value)) {
            rc = 1;
        }
        return rc != 0;
    }
    {
        char body[1024], k64[64];
        const char *rb;
        size_t rl;
        int n, rc;

        base64(k64, key, (size_t)klen);
        if (w->op == OP_PUT) {
            n = snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}",
                         k64, w->value64);
        }
        else {
            n = snprintf(body, sizeof body, "{\"key\":\"%s\"%s}", k64,
                         w->op == OP_SGET ? ",\"serializable\":true" : "");
        }
        if (n < 0 || (size_t)n >= sizeof body) {
            return 1;
        }
        rc = h1_post(w->h1, w->op == OP_PUT ? "/v3/kv/put" : "/v3/kv/range",
                     body, (size_t)n, &rb, &rl);
        if (rc < 0) {
            w->broken = 1;
        }
        if (rc == 0 && w->op != OP_PUT && strstr(rb, "\"kvs\"") == NULL) {
            rc = 1;
        }
        return rc != 0;
    }
}

static void *
worker_main(void *data)
{
    worker_t *w = data;
    int ph;

    while ((ph = g_phase) != 2 && !w->broken) {
        int k = (int)(rand_r(&w->seed) % (unsigned)opt_keys);
        double t0 = now_ms(), dt;
        int failed = do_request(w, k);

        dt = now_ms() - t0;
        if (ph != 1 || g_phase != 1) {
            continue;
        }
        if (failed) {
            w->errors++;
            continue;
        }
        w->done++;
        if (w->nlat < w->caplat) {
            w->lat[w->nlat++] = (float)dt;
        }
    }
    return NULL;
}

/* Load: thread i writes keys i, i + n, ... once each. */
typedef struct loader {
    worker_t *w;
    int first, step;
    int failed;
} loader_t;

static void *
loader_main(void *data)
{
    loader_t *l = data;
    int k;

    for (k = l->first; k < opt_keys && !l->failed; k += l->step) {
        if (do_request(l->w, k) != 0) {
            l->failed = 1;
        }
    }
    return NULL;
}

static int
cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;

    return x < y ? -1 : x > y;
}

/* The Q quantile of the N sorted samples S (0 when there are none). */
static double
pct(const float *s, size_t n, double q)
{
    size_t i = (size_t)((double)n * q);

    if (n == 0) {
        return 0.0;
    }
    return s[i < n ? i : n - 1];
}

/* The dkv address whose seed list starts at member FIRST. */
static void
dkv_address(char *buf, size_t cap, int first)
{
    size_t n = (size_t)snprintf(buf, cap, "dkv://");
    int i;

    for (i = 0; i < n_endpoints && n < cap; i++) {
        int m = (first + i) % n_endpoints;

        n += (size_t)snprintf(buf + n, cap - n, "%s%s:%d", i ? "," : "",
                              opt_host[m], opt_port[m]);
    }
    if (n < cap) {
        snprintf(buf + n, cap - n, "/%s", opt_store);
    }
}

/* Connections (or dkv handles) for N workers, thread i on member i mod
 * M.  Returns 0, or 1 when one cannot be made. */
static int
open_workers(worker_t *wk, int n, dkv_client_t ***handles, int *nhandles)
{
    int i;

    *nhandles = 0;
    if (opt_system == SYS_DKV) {
        int h = opt_handles > 0 && opt_handles < n ? opt_handles : n;
        dkv_open_opts_t oo;

        memset(&oo, 0, sizeof oo);
        oo.token = opt_token;
        oo.request_timeout_ms = 30000;
        oo.serializable_reads = n > 0 && wk[0].op == OP_SGET;
        *handles = calloc((size_t)h, sizeof **handles);
        if (*handles == NULL) {
            return 1;
        }
        for (i = 0; i < h; i++) {
            char addr[1024];

            dkv_address(addr, sizeof addr, i % n_endpoints);
            if (dkv_open(&(*handles)[i], addr, &oo, NULL) != DKV_OK) {
                fprintf(stderr, "bench-cluster: dkv_open %s: %s\n", addr,
                        dkv_last_error());
                return 1;
            }
            (*nhandles)++;
        }
        for (i = 0; i < n; i++) {
            wk[i].dkv = (*handles)[i % h];
            if (apr_pool_create_unmanaged_ex(&wk[i].pool, NULL, NULL)
                != APR_SUCCESS) {
                return 1;
            }
        }
        return 0;
    }
    for (i = 0; i < n; i++) {
        int m = i % n_endpoints;

        if (opt_system == SYS_ETCD) {
            wk[i].h2 = h2_connect(m);
        }
        else {
            wk[i].h1 = h1_connect(m);
        }
        if (wk[i].h2 == NULL && wk[i].h1 == NULL) {
            fprintf(stderr, "bench-cluster: cannot connect to %s:%d (%s)\n",
                    opt_host[m], opt_port[m], strerror(errno));
            return 1;
        }
    }
    return 0;
}

static void
close_workers(worker_t *wk, int n, dkv_client_t **handles, int nhandles)
{
    int i;

    for (i = 0; i < n; i++) {
        h2_close(wk[i].h2);
        h1_close(wk[i].h1);
        if (wk[i].pool != NULL) {
            apr_pool_destroy(wk[i].pool);
        }
        free(wk[i].lat);
        free(wk[i].value);
        free(wk[i].value64);
    }
    for (i = 0; i < nhandles; i++) {
        dkv_close(handles[i]);
    }
    free(handles);
}

static int
init_workers(worker_t *wk, int n, int op)
{
    int i;

    memset(wk, 0, (size_t)n * sizeof *wk);
    for (i = 0; i < n; i++) {
        wk[i].id = i;
        wk[i].op = op;
        wk[i].seed = (unsigned)(i * 7919 + op * 131 + 17);
        wk[i].value = malloc((size_t)opt_value);
        wk[i].value64 = malloc((size_t)opt_value * 2 + 8);
        if (wk[i].value == NULL || wk[i].value64 == NULL) {
            return 1;
        }
        memset(wk[i].value, 'v', (size_t)opt_value);
        base64(wk[i].value64, wk[i].value, (size_t)opt_value);
    }
    return 0;
}

/* Writes every key once, with 32 threads. */
static int
load_keys(void)
{
    enum { NL = 32 };
    worker_t wk[NL];
    loader_t ld[NL];
    pthread_t th[NL];
    dkv_client_t **handles = NULL;
    int nh = 0, i, failed = 0;
    double t0 = now_ms();

    if (init_workers(wk, NL, OP_PUT) != 0
        || open_workers(wk, NL, &handles, &nh) != 0) {
        return 1;
    }
    for (i = 0; i < NL; i++) {
        ld[i].w = &wk[i];
        ld[i].first = i;
        ld[i].step = NL;
        ld[i].failed = 0;
        pthread_create(&th[i], NULL, loader_main, &ld[i]);
    }
    for (i = 0; i < NL; i++) {
        pthread_join(th[i], NULL);
        failed |= ld[i].failed;
    }
    close_workers(wk, NL, handles, nh);
    fprintf(stderr, "bench-cluster: %s: %d keys written in %.1f s\n",
            sys_names[opt_system], opt_keys, (now_ms() - t0) / 1000.0);
    return failed;
}

/* Runs OP with N closed-loop clients; prints its line. */
static int
run_op(int op, int n)
{
    worker_t *wk = calloc((size_t)n, sizeof *wk);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    dkv_client_t **handles = NULL;
    int nh = 0, i, rc = 0;
    double t0, secs;
    float *all = NULL;
    size_t nall = 0, k;
    uint64_t total = 0, errors = 0;

    if (wk == NULL || th == NULL || init_workers(wk, n, op) != 0) {
        return 1;
    }
    for (i = 0; i < n; i++) {
        wk[i].caplat = MAX_SAMPLES / (size_t)n;
        wk[i].lat = malloc(wk[i].caplat * sizeof(float));
        if (wk[i].lat == NULL) {
            return 1;
        }
    }
    if (open_workers(wk, n, &handles, &nh) != 0) {
        close_workers(wk, n, handles, nh);
        free(wk);
        free(th);
        return 1;
    }
    g_phase = 0;
    for (i = 0; i < n; i++) {
        pthread_create(&th[i], NULL, worker_main, &wk[i]);
    }
    usleep((useconds_t)(opt_warmup * 1e6));
    t0 = now_ms();
    g_phase = 1;
    usleep((useconds_t)(opt_seconds * 1e6));
    g_phase = 2;
    secs = (now_ms() - t0) / 1000.0;
    for (i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += wk[i].done;
        errors += wk[i].errors;
        nall += wk[i].nlat;
        if (wk[i].broken) {
            fprintf(stderr, "bench-cluster: %s: connection %d broke\n",
                    sys_names[opt_system], i);
            rc = 1;
        }
    }
    all = malloc((nall + 1) * sizeof *all);
    if (all != NULL) {
        nall = 0;
        for (i = 0; i < n; i++) {
            for (k = 0; k < wk[i].nlat; k++) {
                all[nall++] = wk[i].lat[k];
            }
        }
        if (nall > 0) {
            qsort(all, nall, sizeof *all, cmp_float);
        }
    }
    printf("%s %s C=%d ops=%.0f p50_ms=%.3f p99_ms=%.3f errors=%llu "
           "p90_ms=%.3f max_ms=%.3f\n", sys_names[opt_system], op_names[op],
           n, (double)total / secs, pct(all, nall, 0.50),
           pct(all, nall, 0.99), (unsigned long long)errors,
           pct(all, nall, 0.90), pct(all, nall, 1.0));
    fflush(stdout);
    free(all);
    close_workers(wk, n, handles, nh);
    free(wk);
    free(th);
    return rc || errors > 0 || total == 0;
}

/* Waits until every member accepts a write (a leader is elected and the
 * member reaches it), at most opt_wait seconds.  Returns 0 when all do. */
static int
wait_ready(void)
{
    double deadline = now_ms() + opt_wait * 1000.0;
    int m;

    for (m = 0; m < n_endpoints; m++) {
        int ok = 0;

        while (!ok && now_ms() < deadline) {
            worker_t w;

            memset(&w, 0, sizeof w);
            w.op = OP_PUT;
            w.value = (char *)"ready";
            w.value64 = (char *)"cmVhZHk=";
            if (opt_system == SYS_DKV) {
                char addr[256];
                dkv_open_opts_t oo;

                memset(&oo, 0, sizeof oo);
                oo.token = opt_token;
                oo.connect_timeout_ms = 1000;
                oo.request_timeout_ms = 5000;
                snprintf(addr, sizeof addr, "dkv://%s:%d/%s", opt_host[m],
                         opt_port[m], opt_store);
                if (dkv_open(&w.dkv, addr, &oo, NULL) == DKV_OK) {
                    ok = dkv_put(NULL, w.dkv, "bench:ready", 11, "ready", 5,
                                 NULL) == DKV_OK;
                    dkv_close(w.dkv);
                }
            }
            else if (opt_system == SYS_ETCD) {
                unsigned char msg[64];
                size_t n = pb_request(msg, OP_PUT, "bench:ready", 11,
                                      "ready", 5);

                w.h2 = h2_connect(m);
                ok = w.h2 != NULL
                     && h2_call(w.h2, "/etcdserverpb.KV/Put", msg, n) == 0;
                h2_close(w.h2);
            }
            else {
                const char *rb;
                size_t rl;
                static const char body[] =
                    "{\"key\":\"YmVuY2g6cmVhZHk=\",\"value\":\"cmVhZHk=\"}";

                w.h1 = h1_connect(m);
                ok = w.h1 != NULL
                     && h1_post(w.h1, "/v3/kv/put", body, sizeof body - 1,
                                &rb, &rl) == 0;
                h1_close(w.h1);
            }
            if (!ok) {
                usleep(200000);
            }
        }
        if (!ok) {
            fprintf(stderr, "bench-cluster: %s member %s:%d does not take "
                    "writes after %.0f s\n", sys_names[opt_system],
                    opt_host[m], opt_port[m], opt_wait);
            return 1;
        }
    }
    return 0;
}

/* ================================================================ main */

static int
parse_endpoints(const char *list)
{
    const char *p = list;

    while (*p != '\0' && n_endpoints < MAX_ENDPOINTS) {
        const char *comma = strchr(p, ','), *colon;
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *end;
        long port;

        colon = memchr(p, ':', len);
        if (colon == NULL || (size_t)(colon - p) >= sizeof opt_host[0]) {
            return -1;
        }
        memcpy(opt_host[n_endpoints], p, (size_t)(colon - p));
        opt_host[n_endpoints][colon - p] = '\0';
        port = strtol(colon + 1, &end, 10);
        if (end != p + len || port <= 0 || port > 65535) {
            return -1;
        }
        opt_port[n_endpoints++] = (int)port;
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return n_endpoints > 0 && *p == '\0' ? 0 : -1;
}

static void
usage(void)
{
    fprintf(stderr, "usage: bench-cluster --system dkv|etcd|etcd-http "
            "--endpoints H:P[,H:P...] [--store Bench] [--clients 1,16,256] "
            "[--ops put,get,sget] [--seconds 5] [--warmup 1] [--value 100] "
            "[--keys 10000] [--handles 0] [--token T] [--wait 30] "
            "[--load 1]\n");
}

/* Is NAME one of the comma-separated --ops? */
static int
has_op(const char *name)
{
    const char *p = opt_ops;
    size_t n = strlen(name);

    while ((p = strstr(p, name)) != NULL) {
        if ((p == opt_ops || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) {
            return 1;
        }
        p += n;
    }
    return 0;
}

/* Runs every concurrency of CLIENTS for OP. */
static int
run_all(int op)
{
    const char *p = opt_clients;
    int rc = 0;

    while (*p != '\0') {
        char *end;
        long n = strtol(p, &end, 10);

        if (end == p || n < 1 || n > MAX_CLIENTS) {
            usage();
            return 2;
        }
        rc |= run_op(op, (int)n);
        p = *end == ',' ? end + 1 : end;
    }
    return rc;
}

int
main(int argc, char **argv)
{
    int i, rc = 0;
    const char *endpoints = NULL, *sys = NULL;

    for (i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];

        if (strcmp(a, "--system") == 0) {
            sys = v;
        }
        else if (strcmp(a, "--endpoints") == 0) {
            endpoints = v;
        }
        else if (strcmp(a, "--store") == 0) {
            opt_store = v;
        }
        else if (strcmp(a, "--clients") == 0) {
            opt_clients = v;
        }
        else if (strcmp(a, "--ops") == 0) {
            opt_ops = v;
        }
        else if (strcmp(a, "--seconds") == 0) {
            opt_seconds = strtod(v, NULL);
        }
        else if (strcmp(a, "--warmup") == 0) {
            opt_warmup = strtod(v, NULL);
        }
        else if (strcmp(a, "--value") == 0) {
            opt_value = (int)strtol(v, NULL, 10);
        }
        else if (strcmp(a, "--keys") == 0) {
            opt_keys = (int)strtol(v, NULL, 10);
        }
        else if (strcmp(a, "--handles") == 0) {
            opt_handles = (int)strtol(v, NULL, 10);
        }
        else if (strcmp(a, "--token") == 0) {
            opt_token = v;
        }
        else if (strcmp(a, "--wait") == 0) {
            opt_wait = strtod(v, NULL);
        }
        else if (strcmp(a, "--load") == 0) {
            opt_load = (int)strtol(v, NULL, 10);
        }
        else {
            usage();
            return 2;
        }
    }
    for (opt_system = 0; sys != NULL && opt_system < 3; opt_system++) {
        if (strcmp(sys, sys_names[opt_system]) == 0) {
            break;
        }
    }
    if (i != argc || sys == NULL || opt_system == 3 || endpoints == NULL
        || parse_endpoints(endpoints) != 0 || opt_seconds <= 0
        || opt_seconds > 600 || opt_warmup < 0 || opt_warmup > 60
        || opt_value < 1 || opt_value > 512 || opt_keys < 1
        || opt_handles < 0) {
        usage();
        return 2;
    }
    if (apr_initialize() != APR_SUCCESS) {
        return 1;
    }
    if (wait_ready() != 0) {
        apr_terminate();
        return 1;
    }
    if (has_op("put")) {
        rc |= run_all(OP_PUT);
    }
    if (has_op("load") || (opt_load && (has_op("get") || has_op("sget")))) {
        if (load_keys() != 0) {
            fprintf(stderr, "bench-cluster: cannot write the keys\n");
            apr_terminate();
            return 1;
        }
    }
    if (has_op("get")) {
        rc |= run_all(OP_GET);
    }
    if (has_op("sget")) {
        rc |= run_all(OP_SGET);
    }
    apr_terminate();
    return rc;
}
