/*
 * bench-node.c -- GET and PUT throughput and latency of one dkv-node on
 * loopback, measured the way redis-benchmark measures redis: C
 * connections, each with a window of P requests in flight (P = 1: no
 * pipelining), 100-byte values, for a fixed time per operation.  Speaks
 * the client protocol (docs/protocol.md) on raw sockets, so the figures
 * are the node's, not one client library's threads.  Not a test:
 * bench/run-node-bench.sh starts the node (durable: synced commits with
 * group commit, its default) and redis-server, runs both, prints the
 * table.  `make bench` builds it.
 *
 *   bench-node --port N [--host 127.0.0.1] [--store S] [--clients 50]
 *              [--pipeline 1] [--seconds 3] [--value 100] [--keys 10000]
 *              [--ops put,get]
 *
 * Output: one line per operation,
 *   dkv OP P=<pipeline> ops=<ops/s> p50_ms=<ms> p99_ms=<ms>
 * where a request's latency is from its send to its response (with a
 * window of P, a request waits behind the ones sent with it, as in
 * redis-benchmark).  Linux/POSIX only.  Exits 1 on a failed request.
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


#define MAX_PIPE 256
#define MAX_SAMPLES 400000

static const char *opt_host = "127.0.0.1";
static int opt_port;
static const char *opt_store = "Bench";
static int opt_clients = 50;
static int opt_pipe = 1;
static double opt_seconds = 3.0;
static int opt_value = 100;
static int opt_keys = 10000;
static const char *opt_ops = "put,get";

typedef struct wbuf {
    unsigned char *b;
    size_t n, cap;
} wbuf_t;

typedef struct worker {
    int id;
    int fd;
    int op;                     /* 0x10 GET, 0x11 PUT */
    volatile int *stop;
    uint64_t done;
    int failed;
    double *lat;                /* ms, one per sampled request */
    size_t nlat, caplat;
    unsigned seed;
} worker_t;

/* ================================================================ wire */

static void
w_u8(wbuf_t *w, unsigned v)
{
    if (w->n < w->cap) {
        w->b[w->n++] = (unsigned char)v;
    }
}

static void
w_u16(wbuf_t *w, unsigned v)
{
    w_u8(w, (v >> 8) & 0xff);
    w_u8(w, v & 0xff);
}

static void
w_u32(wbuf_t *w, uint32_t v)
{
    w_u16(w, (v >> 16) & 0xffff);
    w_u16(w, v & 0xffff);
}

static void
w_u64(wbuf_t *w, uint64_t v)
{
    w_u32(w, (uint32_t)(v >> 32));
    w_u32(w, (uint32_t)v);
}

static void
w_bytes16(wbuf_t *w, const void *p, size_t n)
{
    const unsigned char *c = p;
    size_t i;

    w_u16(w, (unsigned)n);
    for (i = 0; i < n; i++) {
        w_u8(w, c[i]);
    }
}

static size_t
frame_begin(wbuf_t *w, unsigned op, uint64_t id)
{
    size_t at = w->n;

    w_u32(w, 0);
    w_u8(w, op);
    w_u8(w, 0);
    w_u16(w, 0);
    w_u64(w, id);
    return at;
}

static void
frame_end(wbuf_t *w, size_t at)
{
    uint32_t len = (uint32_t)(w->n - at - 4);

    w->b[at] = (unsigned char)(len >> 24);
    w->b[at + 1] = (unsigned char)(len >> 16);
    w->b[at + 2] = (unsigned char)(len >> 8);
    w->b[at + 3] = (unsigned char)len;
}

static int
send_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);

        if (k <= 0) {
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int
recv_all(int fd, void *p, size_t n)
{
    char *c = p;

    while (n > 0) {
        ssize_t k = recv(fd, c, n, 0);

        if (k <= 0) {
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads one frame; returns its response status, -1 on a broken stream. */
static int
read_response(int fd, unsigned char *buf, size_t cap)
{
    unsigned char h[16];
    uint32_t len;

    if (recv_all(fd, h, 16) != 0) {
        return -1;
    }
    len = ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16)
          | ((uint32_t)h[2] << 8) | h[3];
    if (len < 14 || len - 12 > cap || recv_all(fd, buf, len - 12) != 0) {
        return -1;
    }
    return (buf[0] << 8) | buf[1];
}

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int
connect_node(void)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    unsigned char buf[4096];
    unsigned char hb[512];
    wbuf_t w;
    size_t at;

    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)opt_port);
    if (inet_pton(AF_INET, opt_host, &sa.sin_addr) != 1
        || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    w.b = hb;
    w.n = 0;
    w.cap = sizeof hb;
    at = frame_begin(&w, 0x01, 0);
    w_u32(&w, 0x444B5601u);
    w_u16(&w, 1);
    w_u16(&w, 1);
    w_bytes16(&w, opt_store, strlen(opt_store));
    w_u16(&w, 0);
    w_bytes16(&w, "bench-node", 10);
    frame_end(&w, at);
    if (send_all(fd, w.b, w.n) != 0 || read_response(fd, buf, sizeof buf)
                                            != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Appends a GET or PUT of a random key to W. */
static void
add_request(wbuf_t *w, int op, uint64_t id, unsigned *seed,
            const char *value)
{
    char key[32];
    int n = snprintf(key, sizeof key, "key:%08d",
                     (int)(rand_r(seed) % (unsigned)opt_keys));
    size_t at = frame_begin(w, (unsigned)op, id);
    int i;

    w_bytes16(w, key, (size_t)n);
    if (op == 0x11) {
        w_u32(w, (uint32_t)opt_value);
        for (i = 0; i < opt_value; i++) {
            w_u8(w, (unsigned char)value[i]);
        }
        w_u8(w, 0);                     /* put_opts: flags */
        w_u64(w, 0);                    /* ttl */
        w_u64(w, 0);                    /* lease */
        w_u64(w, 0);                    /* if_version */
        w_u64(w, 0);                    /* lock */
        w_u16(w, 0xFFFF);               /* entity: absent */
        w_u16(w, 0xFFFF);               /* content_type: absent */
        w_u16(w, 0);                    /* labels */
    }
    else {
        w_u8(w, 0);                     /* get_opts: meta_only */
        w_u64(w, 0);                    /* lock */
    }
    frame_end(w, at);
}

static void *
worker_main(void *data)
{
    worker_t *wk = data;
    unsigned char *out = malloc((size_t)opt_pipe * (256u + opt_value));
    unsigned char *in = malloc(1 << 16);
    char *value = malloc((size_t)opt_value);
    wbuf_t w;
    uint64_t id = 1;
    int i;

    if (out == NULL || in == NULL || value == NULL) {
        wk->failed = 1;
        goto done;
    }
    memset(value, 'v', (size_t)opt_value);
    w.b = out;
    w.cap = (size_t)opt_pipe * (256u + opt_value);
    while (!*wk->stop) {
        double t0, dt;

        w.n = 0;
        for (i = 0; i < opt_pipe; i++) {
            add_request(&w, wk->op, id++, &wk->seed, value);
        }
        t0 = now_ms();
        if (send_all(wk->fd, w.b, w.n) != 0) {
            wk->failed = 1;
            break;
        }
        for (i = 0; i < opt_pipe; i++) {
            int st = read_response(wk->fd, in, 1 << 16);

            if (st != 0 && !(st == 1 && wk->op == 0x10)) {
                fprintf(stderr, "bench-node: request failed: status %d\n",
                        st);
                wk->failed = 1;
                goto done;
            }
        }
        dt = now_ms() - t0;
        wk->done += (uint64_t)opt_pipe;
        if (wk->nlat < wk->caplat) {
            wk->lat[wk->nlat++] = dt;
        }
    }
done:
    free(out);
    free(in);
    free(value);
    return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Runs OP (0x10 or 0x11) for opt_seconds on opt_clients connections. */
static int
run_op(int op, const char *name)
{
    worker_t *wk = calloc((size_t)opt_clients, sizeof *wk);
    pthread_t *th = calloc((size_t)opt_clients, sizeof *th);
    volatile int stop = 0;
    double t0, secs, *all;
    size_t nall = 0, k;
    uint64_t total = 0;
    int i, failed = 0;

    if (wk == NULL || th == NULL) {
        return 1;
    }
    for (i = 0; i < opt_clients; i++) {
        wk[i].id = i;
        wk[i].op = op;
        wk[i].stop = &stop;
        wk[i].seed = (unsigned)(i * 7919 + op);
        wk[i].caplat = MAX_SAMPLES / (size_t)opt_clients;
        wk[i].lat = malloc(wk[i].caplat * sizeof(double));
        wk[i].fd = connect_node();
        if (wk[i].fd < 0 || wk[i].lat == NULL) {
            fprintf(stderr, "bench-node: cannot connect to %s:%d (%s)\n",
                    opt_host, opt_port, strerror(errno));
            return 1;
        }
    }
    t0 = now_ms();
    for (i = 0; i < opt_clients; i++) {
        pthread_create(&th[i], NULL, worker_main, &wk[i]);
    }
    usleep((useconds_t)(opt_seconds * 1e6));
    stop = 1;
    for (i = 0; i < opt_clients; i++) {
        pthread_join(th[i], NULL);
    }
    secs = (now_ms() - t0) / 1000.0;
    all = malloc(MAX_SAMPLES * sizeof(double));
    for (i = 0; i < opt_clients; i++) {
        total += wk[i].done;
        failed |= wk[i].failed;
        for (k = 0; k < wk[i].nlat && all != NULL; k++) {
            all[nall++] = wk[i].lat[k];
        }
        close(wk[i].fd);
        free(wk[i].lat);
    }
    if (all != NULL && nall > 0) {
        qsort(all, nall, sizeof *all, cmp_double);
        printf("dkv %s P=%d ops=%.0f p50_ms=%.3f p99_ms=%.3f\n", name,
               opt_pipe, (double)total / secs, all[nall / 2],
               all[(size_t)((double)nall * 0.99)]);
    }
    free(all);
    free(wk);
    free(th);
    return failed;
}

/* Writes every key once (so GETs find values), 64 per pipelined batch. */
static int
populate(void)
{
    int fd = connect_node(), i, j;
    unsigned char *out = malloc(64u * (256u + opt_value));
    unsigned char in[4096];
    char *value = malloc((size_t)opt_value);
    wbuf_t w;
    uint64_t id = 1;
    int rc = 0;

    if (fd < 0 || out == NULL || value == NULL) {
        return 1;
    }
    memset(value, 'v', (size_t)opt_value);
    w.b = out;
    w.cap = 64u * (256u + opt_value);
    for (i = 0; i < opt_keys && rc == 0; i += 64) {
        int n = opt_keys - i < 64 ? opt_keys - i : 64;

        w.n = 0;
        for (j = 0; j < n; j++) {
            char key[32];
            int kl = snprintf(key, sizeof key, "key:%08d", i + j);
            size_t at = frame_begin(&w, 0x11, id++);
            int b;

            w_bytes16(&w, key, (size_t)kl);
            w_u32(&w, (uint32_t)opt_value);
            for (b = 0; b < opt_value; b++) {
                w_u8(&w, (unsigned char)value[b]);
            }
            w_u8(&w, 0);
            w_u64(&w, 0);
            w_u64(&w, 0);
            w_u64(&w, 0);
            w_u64(&w, 0);
            w_u16(&w, 0xFFFF);
            w_u16(&w, 0xFFFF);
            w_u16(&w, 0);
            frame_end(&w, at);
        }
        if (send_all(fd, w.b, w.n) != 0) {
            rc = 1;
        }
        for (j = 0; j < n && rc == 0; j++) {
            if (read_response(fd, in, sizeof in) != 0) {
                rc = 1;
            }
        }
    }
    close(fd);
    free(out);
    free(value);
    return rc;
}

static void
usage(void)
{
    fprintf(stderr, "usage: bench-node --port N [--host H] [--store S] "
            "[--clients 50] [--pipeline 1] [--seconds 3] [--value 100] "
            "[--keys 10000] [--ops put,get]\n");
}

int
main(int argc, char **argv)
{
    int i, rc = 0;

    for (i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];

        if (strcmp(a, "--port") == 0) {
            opt_port = (int)strtol(v, NULL, 10);
        }
        else if (strcmp(a, "--host") == 0) {
            opt_host = v;
        }
        else if (strcmp(a, "--store") == 0) {
            opt_store = v;
        }
        else if (strcmp(a, "--clients") == 0) {
            opt_clients = (int)strtol(v, NULL, 10);
        }
        else if (strcmp(a, "--pipeline") == 0) {
            opt_pipe = (int)strtol(v, NULL, 10);
        }
        else if (strcmp(a, "--seconds") == 0) {
            opt_seconds = strtod(v, NULL);
        }
        else if (strcmp(a, "--value") == 0) {
            opt_value = (int)strtol(v, NULL, 10);
        }
        else if (strcmp(a, "--keys") == 0) {
            opt_keys = (int)strtol(v, NULL, 10);
        }
        else if (strcmp(a, "--ops") == 0) {
            opt_ops = v;
        }
        else {
            usage();
            return 2;
        }
    }
    if (i != argc || opt_port <= 0 || opt_port > 65535 || opt_clients < 1
        || opt_clients > 1000 || opt_pipe < 1 || opt_pipe > MAX_PIPE
        || opt_seconds <= 0 || opt_seconds > 600 || opt_value < 1
        || opt_value > 60000 || opt_keys < 1) {
        usage();
        return 2;
    }
    if (populate() != 0) {
        fprintf(stderr, "bench-node: cannot write the keys\n");
        return 1;
    }
    if (strstr(opt_ops, "put") != NULL) {
        rc |= run_op(0x11, "PUT");
    }
    if (strstr(opt_ops, "get") != NULL) {
        rc |= run_op(0x10, "GET");
    }
    return rc;
}
