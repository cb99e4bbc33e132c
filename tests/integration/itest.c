/*
 * itest.c -- integration tests of dkv-node: real node processes on
 * loopback (ports picked by the node, fresh data directories, see
 * tests/unit/testnode.h), driven by the C client and by raw sockets that
 * speak (or break) docs/protocol.md.  A CUnit program of its own, run by
 * `make check` under a timeout (tests/integration/run-itest.sh).
 *
 *   itest                  run every test
 *   itest TEST             run one test
 *   itest --probe ADDRESS [TOKEN]
 *                          open ADDRESS, print the status and message,
 *                          exit 0 when it opened (used from inside a
 *                          network namespace by the netns test)
 *
 * Covered: 1,000 concurrent connections (HELLO and PING on each); a
 * client that stops reading while its watch produces events (bounded RSS,
 * the watch dropped with EUNAVAILABLE, other clients served); malformed
 * and oversized frames; wrong and missing tokens (refused, logged, rate
 * limited); a non-loopback client refused in protected mode (network
 * namespaces; skipped when not root); kill -9 during writes from several
 * threads, then every acknowledged write present after a restart; SIGTERM
 * (exit 0, log line, data intact); a failed bind.
 *
 * Linux only (raw POSIX sockets, /proc, signals, ip netns): not built for
 * Windows.  Every loop is bounded in count and time.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <CUnit/Basic.h>
#include <apr_env.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "testutil.h"
#include "testnode.h"

#define STORE "ITest"

/* ======================================================== raw protocol */

typedef struct wb {
    unsigned char b[4096];
    size_t n;
} wb_t;

static void
wb_u8(wb_t *w, unsigned v)
{
    if (w->n < sizeof w->b) {
        w->b[w->n++] = (unsigned char)v;
    }
}

static void
wb_u16(wb_t *w, unsigned v)
{
    wb_u8(w, (v >> 8) & 0xff);
    wb_u8(w, v & 0xff);
}

static void
wb_u32(wb_t *w, uint32_t v)
{
    wb_u16(w, (v >> 16) & 0xffff);
    wb_u16(w, v & 0xffff);
}

static void
wb_u64(wb_t *w, uint64_t v)
{
    wb_u32(w, (uint32_t)(v >> 32));
    wb_u32(w, (uint32_t)v);
}

static void
wb_str(wb_t *w, const char *s)
{
    size_t i, n = strlen(s);

    wb_u16(w, (unsigned)n);
    for (i = 0; i < n; i++) {
        wb_u8(w, (unsigned char)s[i]);
    }
}

/* Starts a frame of OP and ID (its length patched by frame_end). */
static void
frame_begin(wb_t *w, unsigned op, uint64_t id)
{
    w->n = 0;
    wb_u32(w, 0);
    wb_u8(w, op);
    wb_u8(w, 0);
    wb_u16(w, 0);
    wb_u64(w, id);
}

static void
frame_end(wb_t *w)
{
    uint32_t len = (uint32_t)(w->n - 4);

    w->b[0] = (unsigned char)(len >> 24);
    w->b[1] = (unsigned char)(len >> 16);
    w->b[2] = (unsigned char)(len >> 8);
    w->b[3] = (unsigned char)len;
}

static void
hello_frame(wb_t *w, const char *token)
{
    frame_begin(w, 0x01, 1);
    wb_u32(w, 0x444B5601u);
    wb_u16(w, 1);
    wb_u16(w, 1);
    wb_str(w, STORE);
    wb_str(w, token != NULL ? token : "");
    wb_str(w, "itest");
    frame_end(w);
}

/* A blocking loopback connection to PORT with 10 s timeouts; -1 on
 * failure. */
static int
raw_connect(apr_port_t port)
{
    struct sockaddr_in sa;
    struct timeval tv;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0) {
        return -1;
    }
    tv.tv_sec = 10;
    tv.tv_usec = 0;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
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

static uint32_t
rd32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16)
           | ((uint32_t)p[2] << 8) | p[3];
}

/* Reads one frame (at most CAP body bytes kept): *OP, the status of a
 * response (first u16 of the body).  Returns the body length, or -1 when
 * the connection closed or failed. */
static long
read_frame(int fd, unsigned *op, unsigned *status, unsigned char *body,
           size_t cap)
{
    unsigned char h[16];
    uint32_t len;
    size_t left, k;
    unsigned char junk[4096];

    if (recv_all(fd, h, 16) != 0) {
        return -1;
    }
    len = rd32(h);
    if (len < 12 || len > (64u << 20)) {
        return -1;
    }
    *op = h[4];
    left = len - 12;
    k = left < cap ? left : cap;
    if (k > 0 && recv_all(fd, body, k) != 0) {
        return -1;
    }
    for (left -= k; left > 0; left -= k) {
        k = left < sizeof junk ? left : sizeof junk;
        if (recv_all(fd, junk, k) != 0) {
            return -1;
        }
    }
    *status = (len - 12 >= 2 && cap >= 2)
              ? ((unsigned)body[0] << 8 | body[1]) : 0;
    return (long)(len - 12);
}

/* 1 when the peer closed FD (EOF within 10 s, frames before it read). */
static int
closed_by_peer(int fd)
{
    unsigned char b[4096];
    int i;

    for (i = 0; i < 1000; i++) {
        ssize_t k = recv(fd, b, sizeof b, 0);

        if (k == 0) {
            return 1;
        }
        if (k < 0) {
            return errno == ECONNRESET;
        }
    }
    return 0;
}

/* HELLO then PING on a new connection; 1 when both answered OK. */
static int
hello_ping(apr_port_t port)
{
    wb_t w;
    unsigned op = 0, st = 1;
    unsigned char body[512];
    int fd = raw_connect(port), ok = 0;

    if (fd < 0) {
        return 0;
    }
    hello_frame(&w, NULL);
    if (send_all(fd, w.b, w.n) == 0
        && read_frame(fd, &op, &st, body, sizeof body) >= 0 && op == 0x81
        && st == 0) {
        frame_begin(&w, 0x02, 2);
        frame_end(&w);
        ok = send_all(fd, w.b, w.n) == 0
             && read_frame(fd, &op, &st, body, sizeof body) >= 0
             && op == 0x82 && st == 0;
    }
    close(fd);
    return ok;
}

/* ============================================================= helpers */

static dkv_test_node_t *
start_node(const char *data_dir, const char *const *args, apr_pool_t *p)
{
    dkv_test_node_t *n = NULL;

    if (dkv_test_node_start(&n, STORE, data_dir, args, p) != APR_SUCCESS) {
        return NULL;
    }
    return n;
}

/* Raises the soft RLIMIT_NOFILE to at least WANT (up to the hard limit);
 * returns the soft limit now. */
static long
raise_nofile(long want)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return -1;
    }
    if ((long)rl.rlim_cur < want) {
        rl.rlim_cur = (rl.rlim_max == RLIM_INFINITY
                       || (long)rl.rlim_max >= want)
                      ? (rlim_t)want : rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (long)rl.rlim_cur;
}

/* Runs shell command CMD, returns its output (stdout and stderr) in P
 * and its exit status in *CODE (-1: could not run). */
static const char *
run_cmd(const char *cmd, int *code, apr_pool_t *p)
{
    FILE *f = popen(apr_pstrcat(p, cmd, " 2>&1", NULL), "r");
    char buf[1024];
    const char *all = "";
    int st, lines = 0;

    *code = -1;
    if (f == NULL) {
        return "";
    }
    while (lines++ < 10000 && fgets(buf, sizeof buf, f) != NULL) {
        all = apr_pstrcat(p, all, buf, NULL);
    }
    st = pclose(f);
    if (st != -1 && WIFEXITED(st)) {
        *code = WEXITSTATUS(st);
    }
    return all;
}

/* =============================================================== tests */

/* 1,000 connections at once, each completing HELLO and a PING. */
static void
t_thousand_connections(void)
{
    apr_pool_t *p = dkv_test_pool();
    enum { N = 1000 };
    static int fds[N];
    dkv_test_node_t *node;
    long lim = raise_nofile(N + 200);
    int i, ok_hello = 0, ok_ping = 0;
    wb_t w;

    if (lim < N + 100) {
        printf("SKIPPED (RLIMIT_NOFILE is %ld, below %d) ... ", lim, N + 100);
        apr_pool_destroy(p);
        return;
    }
    node = start_node(NULL, NULL, p);
    DKV_ASSERT_NOT_NULL(node);
    for (i = 0; i < N; i++) {
        fds[i] = raw_connect(node->port);
        if (fds[i] >= 0) {
            hello_frame(&w, NULL);
            (void)send_all(fds[i], w.b, w.n);
        }
    }
    for (i = 0; i < N; i++) {
        unsigned op = 0, st = 1;
        unsigned char body[256];

        if (fds[i] >= 0 && read_frame(fds[i], &op, &st, body, sizeof body)
                               >= 0 && op == 0x81 && st == 0) {
            ok_hello++;
            frame_begin(&w, 0x02, 7);
            frame_end(&w);
            (void)send_all(fds[i], w.b, w.n);
        }
    }
    for (i = 0; i < N; i++) {
        unsigned op = 0, st = 1;
        unsigned char body[256];

        if (fds[i] >= 0 && read_frame(fds[i], &op, &st, body, sizeof body)
                               >= 0 && op == 0x82 && st == 0) {
            ok_ping++;
        }
    }
    DKV_EXPECT_INT_EQ(ok_hello, N);
    DKV_EXPECT_INT_EQ(ok_ping, N);
    DKV_EXPECT_TRUE(hello_ping(node->port));    /* one more is served */
    for (i = 0; i < N; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    DKV_EXPECT_TRUE(dkv_test_node_alive(node));
    apr_pool_destroy(p);
}

/* Malformed and oversized frames: the node answers PROTOCOL_ERROR or
 * closes, logs, stays up and serves others. */
static void
t_malformed_frames(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_test_node_t *node = start_node(NULL, NULL, p);
    long rss0, rss1;
    int fd, i;
    wb_t w;
    unsigned char garbage[256];
    const char *log;

    DKV_ASSERT_NOT_NULL(node);
    rss0 = dkv_test_node_rss_kb(node);

    /* 1. A length below the header's 12 bytes. */
    fd = raw_connect(node->port);
    DKV_ASSERT_TRUE(fd >= 0);
    w.n = 0;
    wb_u32(&w, 3);
    wb_u32(&w, 0);
    (void)send_all(fd, w.b, w.n);
    DKV_EXPECT_TRUE(closed_by_peer(fd));
    close(fd);

    /* 2. A huge length (4 GiB - 1): never allocated, refused. */
    fd = raw_connect(node->port);
    DKV_ASSERT_TRUE(fd >= 0);
    w.n = 0;
    wb_u32(&w, 0xFFFFFFFFu);
    wb_u32(&w, 0x01000000u);
    wb_u64(&w, 1);
    (void)send_all(fd, w.b, w.n);
    DKV_EXPECT_TRUE(closed_by_peer(fd));
    close(fd);

    /* 3. Above max_frame (65 MiB) after a good HELLO. */
    fd = raw_connect(node->port);
    DKV_ASSERT_TRUE(fd >= 0);
    hello_frame(&w, NULL);
    (void)send_all(fd, w.b, w.n);
    w.n = 0;
    wb_u32(&w, 65u << 20);
    wb_u8(&w, 0x11);
    wb_u8(&w, 0);
    wb_u16(&w, 0);
    wb_u64(&w, 9);
    (void)send_all(fd, w.b, w.n);
    DKV_EXPECT_TRUE(closed_by_peer(fd));
    close(fd);

    /* 4. Garbage after HELLO. */
    fd = raw_connect(node->port);
    DKV_ASSERT_TRUE(fd >= 0);
    hello_frame(&w, NULL);
    (void)send_all(fd, w.b, w.n);
    for (i = 0; i < (int)sizeof garbage; i++) {
        garbage[i] = (unsigned char)(i * 151 + 7);
    }
    garbage[0] = 0xFF;                  /* a length far beyond max_frame */
    (void)send_all(fd, garbage, sizeof garbage);
    DKV_EXPECT_TRUE(closed_by_peer(fd));
    close(fd);

    /* 5. A first frame that is not HELLO. */
    fd = raw_connect(node->port);
    DKV_ASSERT_TRUE(fd >= 0);
    frame_begin(&w, 0x02, 5);
    frame_end(&w);
    (void)send_all(fd, w.b, w.n);
    {
        unsigned op = 0, st = 0;
        unsigned char body[512];

        DKV_EXPECT_TRUE(read_frame(fd, &op, &st, body, sizeof body) >= 0);
        DKV_EXPECT_INT_EQ(op, 0x7F);
    }
    DKV_EXPECT_TRUE(closed_by_peer(fd));
    close(fd);

    /* 6. A client frame with the response bit set. */
    fd = raw_connect(node->port);
    DKV_ASSERT_TRUE(fd >= 0);
    hello_frame(&w, NULL);
    (void)send_all(fd, w.b, w.n);
    frame_begin(&w, 0x82, 6);
    frame_end(&w);
    (void)send_all(fd, w.b, w.n);
    DKV_EXPECT_TRUE(closed_by_peer(fd));
    close(fd);

    /* 7. A malformed body (PUT with a truncated key): EINVAL, and the
     * connection stays usable. */
    fd = raw_connect(node->port);
    DKV_ASSERT_TRUE(fd >= 0);
    hello_frame(&w, NULL);
    (void)send_all(fd, w.b, w.n);
    {
        unsigned op = 0, st = 0;
        unsigned char body[512];

        DKV_EXPECT_TRUE(read_frame(fd, &op, &st, body, sizeof body) >= 0);
        frame_begin(&w, 0x11, 8);
        wb_u16(&w, 40);
        wb_u8(&w, 'k');
        frame_end(&w);
        (void)send_all(fd, w.b, w.n);
        DKV_EXPECT_TRUE(read_frame(fd, &op, &st, body, sizeof body) >= 0);
        DKV_EXPECT_INT_EQ(op, 0x91);
        DKV_EXPECT_INT_EQ(st, 3);       /* EINVAL */
        frame_begin(&w, 0x02, 9);
        frame_end(&w);
        (void)send_all(fd, w.b, w.n);
        DKV_EXPECT_TRUE(read_frame(fd, &op, &st, body, sizeof body) >= 0);
        DKV_EXPECT_INT_EQ(op, 0x82);
    }
    close(fd);

    DKV_EXPECT_TRUE(dkv_test_node_alive(node));
    DKV_EXPECT_TRUE(hello_ping(node->port));
    rss1 = dkv_test_node_rss_kb(node);
    if (rss0 > 0 && rss1 > 0) {
        DKV_EXPECT_TRUE(rss1 < rss0 + 32 * 1024);
    }
    /* "logs": each refusal above is logged with its reason (the startup
     * line alone would make a bare non-empty check pass). */
    log = dkv_test_node_log(node, p);
    DKV_EXPECT_TRUE(strstr(log, "protocol error") != NULL);
    if (strstr(log, "protocol error") == NULL) {
        fprintf(stderr, "\n  node log: %.2000s\n", log);
    }
    apr_pool_destroy(p);
}

/* Wrong and missing tokens: EUNAUTHORIZED, logged; repeated failures are
 * rate-limited (EUNAVAILABLE); the right token works. */
static void
t_tokens(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *dir = dkv_test_tempdir(p);
    const char *tf = apr_pstrcat(p, dir, "/token", NULL);
    const char *args[] = { "--token-file", tf, NULL };
    dkv_test_node_t *node;
    dkv_client_t *c = NULL;
    apr_file_t *f;
    dkv_status_t s;
    int i, limited = 0, unauth = 0;
    const char *log;

    DKV_ASSERT_OK(apr_file_open(&f, tf, APR_WRITE | APR_CREATE,
                                APR_FPROT_UREAD | APR_FPROT_UWRITE, p));
    DKV_ASSERT_OK(apr_file_puts("s3cret-token\n", f));
    apr_file_close(f);
    node = start_node(NULL, args, p);
    DKV_ASSERT_NOT_NULL(node);

    DKV_EXPECT_STATUS(dkv_test_node_open(&c, node, "s3cret-token"), DKV_OK);
    dkv_close(c);
    c = NULL;
    DKV_EXPECT_STATUS(dkv_test_node_open(&c, node, NULL), DKV_EUNAUTHORIZED);
    DKV_EXPECT_TRUE(c == NULL);
    DKV_EXPECT_STATUS(dkv_test_node_open(&c, node, "wrong"),
                      DKV_EUNAUTHORIZED);
    for (i = 0; i < 30 && !limited; i++) {
        s = dkv_test_node_open(&c, node, "wrong");
        if (s == DKV_EUNAVAILABLE) {
            limited = 1;
        }
        else if (s == DKV_EUNAUTHORIZED) {
            unauth++;
        }
        else {
            DKV_EXPECT_STATUS(s, DKV_EUNAUTHORIZED);
            dkv_close(c);
            c = NULL;
        }
    }
    if (!limited) {
        fprintf(stderr, "\n  no rate limit after %d wrong tokens\n", unauth);
    }
    DKV_EXPECT_TRUE(limited);
    /* The refusals are logged with their reasons: a bare "token" would
     * match the startup line ("access token required") alone. */
    log = dkv_test_node_log(node, p);
    DKV_EXPECT_TRUE(strstr(log, "refused client") != NULL);
    DKV_EXPECT_TRUE(strstr(log, "missing access token") != NULL);
    DKV_EXPECT_TRUE(strstr(log, "wrong access token") != NULL);
    if (strstr(log, "missing access token") == NULL
        || strstr(log, "wrong access token") == NULL) {
        fprintf(stderr, "\n  node log: %.2000s\n", log);
    }
    DKV_EXPECT_TRUE(dkv_test_node_alive(node));
    apr_pool_destroy(p);
}

/* A client that stops reading while its watch gets many events: the
 * node's RSS stays bounded, the watch ends with EUNAVAILABLE, and other
 * clients are served meanwhile. */
static void
t_slow_reader(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *args[] = { "--max-output", "1M", NULL };
    dkv_test_node_t *node;
    dkv_client_t *c = NULL;
    enum { VAL = 4096, BATCH = 64, ROUNDS = 120 };  /* 30 MiB of events */
    static char val[VAL];
    dkv_kv_t kvs[BATCH];
    char keys[BATCH][16];
    long rss0, rss, rss_max = 0;
    int fd, r, i, dropped = 0, frames = 0;
    unsigned op = 0, st = 0;
    wb_t w;
    unsigned char *body;
    char *asan = NULL;

    /* Under AddressSanitizer the node keeps freed blocks in a quarantine
     * (256 MiB by default) that counts as its anonymous memory: a small
     * quarantine keeps the bound below about the node, not the tool. */
    (void)apr_env_get(&asan, "ASAN_OPTIONS", p);
    (void)apr_env_set("ASAN_OPTIONS",
                      apr_pstrcat(p, asan ? asan : "", asan ? ":" : "",
                                  "quarantine_size_mb=4", NULL), p);
    node = start_node(NULL, args, p);
    if (asan != NULL) {
        (void)apr_env_set("ASAN_OPTIONS", asan, p);
    }
    else {
        (void)apr_env_delete("ASAN_OPTIONS", p);
    }
    DKV_ASSERT_NOT_NULL(node);
    rss0 = dkv_test_node_rss_kb(node);
    fd = raw_connect(node->port);
    DKV_ASSERT_TRUE(fd >= 0);
    hello_frame(&w, NULL);
    (void)send_all(fd, w.b, w.n);
    body = apr_palloc(p, 1 << 20);
    DKV_ASSERT_TRUE(read_frame(fd, &op, &st, body, 1 << 20) >= 0);
    frame_begin(&w, 0x38, 77);          /* WATCH prefix "s:" */
    wb_str(&w, "s:");
    wb_u8(&w, 1);
    wb_u64(&w, 0);
    frame_end(&w);
    (void)send_all(fd, w.b, w.n);
    DKV_ASSERT_TRUE(read_frame(fd, &op, &st, body, 1 << 20) >= 0);
    DKV_EXPECT_INT_EQ(op, 0xB8);
    DKV_EXPECT_INT_EQ(st, 0);
    /* From here on the watcher reads nothing. */

    DKV_ASSERT_OK(dkv_test_node_open(&c, node, NULL));
    memset(val, 'x', sizeof val);
    for (r = 0; r < ROUNDS; r++) {
        dkv_item_t *it = NULL;
        apr_pool_t *sp;

        for (i = 0; i < BATCH; i++) {
            snprintf(keys[i], sizeof keys[i], "s:%d", i);
            kvs[i].key = keys[i];
            kvs[i].key_len = strlen(keys[i]);
            kvs[i].value = val;
            kvs[i].value_len = VAL;
        }
        DKV_ASSERT_OK(dkv_put_many(NULL, c, kvs, BATCH, NULL));
        apr_pool_create(&sp, p);
        DKV_EXPECT_OK(dkv_get(&it, c, "s:1", 3, NULL, sp));   /* served */
        apr_pool_destroy(sp);
        rss = dkv_test_node_rss_kb(node);
        rss_max = rss > rss_max ? rss : rss_max;
    }
    /* 30 MiB of events went to a connection that reads nothing: the node
     * must not have buffered them (1 MiB output bound, plus slack). */
    printf("(rss %ld -> max %ld KiB) ", rss0, rss_max);
    if (rss0 > 0) {
        DKV_EXPECT_TRUE(rss_max < rss0 + 24 * 1024);
    }
    DKV_EXPECT_TRUE(hello_ping(node->port));

    /* Now read: events, then an error event EUNAVAILABLE ends the watch. */
    for (i = 0; i < 100000 && !dropped; i++) {
        long len = read_frame(fd, &op, &st, body, 1 << 20);
        size_t off = 4;
        uint32_t n, k;

        if (len < 0) {
            break;
        }
        frames++;
        if (op != 0x40 || len < 4) {
            continue;
        }
        n = rd32(body);
        for (k = 0; k < n && off + 4 <= (size_t)len; k++) {
            unsigned type = body[off];
            size_t kl;

            off += 2;
            kl = ((size_t)body[off] << 8) | body[off + 1];
            off += 2 + kl;
            if (type == 1) {
                off += 4 + rd32(body + off);
            }
            off += 16;
            if (type == 3 && off + 2 <= (size_t)len) {
                unsigned es = ((unsigned)body[off] << 8) | body[off + 1];

                DKV_EXPECT_INT_EQ(es, 4);       /* EUNAVAILABLE */
                dropped = 1;
            }
            off += 2;
        }
    }
    if (!dropped) {
        fprintf(stderr, "\n  no error event after %d frames\n", frames);
    }
    DKV_EXPECT_TRUE(dropped);
    close(fd);
    dkv_close(c);
    DKV_EXPECT_TRUE(dkv_test_node_alive(node));
    apr_pool_destroy(p);
}

/* ----------------------------------------------- kill -9 during writes */

typedef struct writer {
    dkv_client_t *c;
    int id;
    volatile long acked;        /* highest n acknowledged, -1: none */
    dkv_status_t last;
} writer_t;

static void *APR_THREAD_FUNC
writer_main(apr_thread_t *t, void *data)
{
    writer_t *wr = data;
    int64_t deadline = (int64_t)(apr_time_now() / 1000) + 20000;
    long n;

    (void)t;
    for (n = 0; n < 1000000; n++) {
        char k[32], v[32];
        dkv_status_t s;

        if ((int64_t)(apr_time_now() / 1000) > deadline) {
            break;
        }
        snprintf(k, sizeof k, "w%d:%07ld", wr->id, n);
        snprintf(v, sizeof v, "v%ld", n);
        s = dkv_put(NULL, wr->c, k, strlen(k), v, strlen(v), NULL);
        if (s != DKV_OK) {
            wr->last = s;
            break;
        }
        wr->acked = n;
    }
    return NULL;
}

static void
t_kill9_acked_writes(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_test_node_t *node = start_node(NULL, NULL, p);
    enum { W = 4 };
    writer_t wr[W];
    apr_thread_t *th[W];
    dkv_client_t *c = NULL;
    int i, missing = 0;
    long n, total = 0;

    DKV_ASSERT_NOT_NULL(node);
    for (i = 0; i < W; i++) {
        memset(&wr[i], 0, sizeof wr[i]);
        wr[i].id = i;
        wr[i].acked = -1;
        DKV_ASSERT_OK(dkv_test_node_open(&wr[i].c, node, NULL));
        DKV_ASSERT_OK(apr_thread_create(&th[i], NULL, writer_main, &wr[i],
                                        p));
    }
    apr_sleep(apr_time_from_msec(800));
    DKV_EXPECT_TRUE(dkv_test_node_stop(node, SIGKILL, 5000));
    for (i = 0; i < W; i++) {
        (void)dkv_test_thread_join(NULL, th[i]);
        dkv_close(wr[i].c);
        total += wr[i].acked + 1;
    }
    printf("(%ld acknowledged) ", total);
    DKV_EXPECT_TRUE(total > 0);
    DKV_ASSERT_OK(dkv_test_node_restart(node));
    DKV_ASSERT_OK(dkv_test_node_open(&c, node, NULL));
    for (i = 0; i < W; i++) {
        for (n = 0; n <= wr[i].acked; n++) {
            char k[32], v[32];
            dkv_item_t *it = NULL;
            apr_pool_t *sp;

            snprintf(k, sizeof k, "w%d:%07ld", i, n);
            snprintf(v, sizeof v, "v%ld", n);
            apr_pool_create(&sp, p);
            if (dkv_get(&it, c, k, strlen(k), NULL, sp) != DKV_OK
                || it->value_len != strlen(v)
                || memcmp(it->value, v, it->value_len) != 0) {
                if (missing++ < 5) {
                    fprintf(stderr, "\n  acknowledged %s lost", k);
                }
            }
            apr_pool_destroy(sp);
        }
    }
    DKV_EXPECT_INT_EQ(missing, 0);
    dkv_close(c);
    apr_pool_destroy(p);
}

/* SIGTERM: exit 0, a stop line in the log, data intact after restart. */
static void
t_sigterm(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_test_node_t *node = start_node(NULL, NULL, p);
    dkv_client_t *c = NULL;
    dkv_item_t *it = NULL;
    const char *log;
    int i;

    DKV_ASSERT_NOT_NULL(node);
    DKV_ASSERT_OK(dkv_test_node_open(&c, node, NULL));
    for (i = 0; i < 100; i++) {
        char k[16];

        snprintf(k, sizeof k, "t:%d", i);
        DKV_EXPECT_OK(dkv_put(NULL, c, k, strlen(k), "v", 1, NULL));
    }
    dkv_close(c);
    DKV_EXPECT_TRUE(dkv_test_node_stop(node, SIGTERM, 10000));
    DKV_EXPECT_INT_EQ(node->exit_why, APR_PROC_EXIT);
    DKV_EXPECT_INT_EQ(node->exit_code, 0);
    log = dkv_test_node_log(node, p);
    DKV_EXPECT_TRUE(strstr(log, "stop") != NULL);
    DKV_ASSERT_OK(dkv_test_node_restart(node));
    DKV_ASSERT_OK(dkv_test_node_open(&c, node, NULL));
    for (i = 0; i < 100; i++) {
        char k[16];

        snprintf(k, sizeof k, "t:%d", i);
        DKV_EXPECT_OK(dkv_get(&it, c, k, strlen(k), NULL, p));
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

/* A port in use: exit non-zero with a message naming the port. */
static void
t_bind_fails(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *dir = dkv_test_tempdir(p);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), code = 0;
    const char *out, *cmd;
    char port[16];

    DKV_ASSERT_TRUE(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    DKV_ASSERT_TRUE(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    DKV_ASSERT_TRUE(listen(fd, 4) == 0);
    DKV_ASSERT_TRUE(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    snprintf(port, sizeof port, "%u", (unsigned)ntohs(sa.sin_port));
    cmd = apr_psprintf(p, "timeout 20 '%s' --store %s --data-dir '%s/d' "
                       "--client-port %s", dkv_test_node_path(p), STORE, dir,
                       port);
    out = run_cmd(cmd, &code, p);
    DKV_EXPECT_TRUE(code != 0 && code != 124);
    DKV_EXPECT_TRUE(strstr(out, port) != NULL);
    if (strstr(out, port) == NULL) {
        fprintf(stderr, "\n  output: %s\n", out);
    }
    close(fd);
    apr_pool_destroy(p);
}

/* -------------------------------------------------- network namespaces */

static char ns_a[32], ns_b[32];
static int ns_made;

static void
ns_delete(void)
{
    apr_pool_t *p;
    int code;

    if (!ns_made) {
        return;
    }
    apr_pool_create(&p, NULL);
    (void)run_cmd(apr_psprintf(p, "ip netns del %s", ns_a), &code, p);
    (void)run_cmd(apr_psprintf(p, "ip netns del %s", ns_b), &code, p);
    apr_pool_destroy(p);
    ns_made = 0;
}

static apr_status_t
ns_cleanup(void *data)
{
    (void)data;
    ns_delete();
    return APR_SUCCESS;
}

/* A client in another namespace than the node's, on a veth pair: refused
 * without a token (protected mode, with the reason), accepted with one. */
static void
t_netns_protected_mode(void)
{
    apr_pool_t *p = dkv_test_pool();
    unsigned x = (unsigned)getpid() % 200 + 20;
    const char *ip_a, *ip_b, *self, *cmd, *out, *tf;
    const char *prefix[5];
    const char *args[5];
    dkv_test_node_t *node = NULL;
    apr_file_t *f;
    int code = 0;
    char va[16], vb[16];

    if (geteuid() != 0) {
        printf("SKIPPED (not root: cannot make network namespaces) ... ");
        apr_pool_destroy(p);
        return;
    }
    (void)run_cmd("ip netns list", &code, p);
    if (code != 0) {
        printf("SKIPPED (`ip netns` is not available) ... ");
        apr_pool_destroy(p);
        return;
    }
    snprintf(ns_a, sizeof ns_a, "dkvit%ua", (unsigned)getpid());
    snprintf(ns_b, sizeof ns_b, "dkvit%ub", (unsigned)getpid());
    snprintf(va, sizeof va, "dkv%ua", (unsigned)getpid() % 100000);
    snprintf(vb, sizeof vb, "dkv%ub", (unsigned)getpid() % 100000);
    ip_a = apr_psprintf(p, "10.231.%u.1", x);
    ip_b = apr_psprintf(p, "10.231.%u.2", x);
    ns_made = 1;
    apr_pool_cleanup_register(p, NULL, ns_cleanup, apr_pool_cleanup_null);
    cmd = apr_psprintf(p,
                       "set -e; ip netns add %s; ip netns add %s; "
                       "ip link add %s type veth peer name %s; "
                       "ip link set %s netns %s; ip link set %s netns %s; "
                       "ip -n %s addr add %s/24 dev %s; "
                       "ip -n %s addr add %s/24 dev %s; "
                       "ip -n %s link set %s up; ip -n %s link set %s up; "
                       "ip -n %s link set lo up; ip -n %s link set lo up",
                       ns_a, ns_b, va, vb, va, ns_a, vb, ns_b,
                       ns_a, ip_a, va, ns_b, ip_b, vb,
                       ns_a, va, ns_b, vb, ns_a, ns_b);
    out = run_cmd(cmd, &code, p);
    if (code != 0) {
        printf("SKIPPED (cannot set up namespaces: %s) ... ", out);
        apr_pool_destroy(p);
        return;
    }
    prefix[0] = "ip";
    prefix[1] = "netns";
    prefix[2] = "exec";
    prefix[3] = ns_a;
    prefix[4] = NULL;
    args[0] = "--bind";
    args[1] = ip_a;
    args[2] = NULL;
    DKV_ASSERT_OK(dkv_test_node_start_in(&node, prefix, STORE, NULL, args,
                                         p));
    self = apr_pstrdup(p, dkv_test_argv0);
    cmd = apr_psprintf(p, "timeout 30 ip netns exec %s '%s' --probe "
                       "dkv://%s:%u/%s", ns_b, self, ip_a,
                       (unsigned)node->port, STORE);
    out = run_cmd(cmd, &code, p);
    DKV_EXPECT_TRUE(code == 1);
    DKV_EXPECT_TRUE(strstr(out, "DKV_EUNAUTHORIZED") != NULL);
    DKV_EXPECT_TRUE(strstr(out, "token") != NULL);
    printf("(refused: %.200s) ", out);
    DKV_EXPECT_TRUE(strstr(dkv_test_node_log(node, p), ip_b) != NULL);
    DKV_EXPECT_TRUE(dkv_test_node_stop(node, SIGTERM, 10000));

    /* With a token configured, the same client is accepted. */
    tf = apr_pstrcat(p, node->dir, "/token", NULL);
    DKV_ASSERT_OK(apr_file_open(&f, tf, APR_WRITE | APR_CREATE,
                                APR_FPROT_UREAD | APR_FPROT_UWRITE, p));
    DKV_ASSERT_OK(apr_file_puts("ns-token\n", f));
    apr_file_close(f);
    args[2] = "--token-file";
    args[3] = tf;
    args[4] = NULL;
    DKV_ASSERT_OK(dkv_test_node_start_in(&node, prefix, STORE, NULL, args,
                                         p));
    cmd = apr_psprintf(p, "timeout 30 ip netns exec %s '%s' --probe "
                       "dkv://%s:%u/%s ns-token", ns_b, self, ip_a,
                       (unsigned)node->port, STORE);
    out = run_cmd(cmd, &code, p);
    DKV_EXPECT_INT_EQ(code, 0);
    if (code != 0) {
        fprintf(stderr, "\n  probe with token: %s\n", out);
    }
    DKV_EXPECT_TRUE(dkv_test_node_stop(node, SIGTERM, 10000));
    apr_pool_destroy(p);                /* deletes the namespaces */
}

/* --probe ADDRESS [TOKEN]: open, PUT and GET once, print the outcome. */
static int
probe(const char *address, const char *token)
{
    dkv_client_t *c = NULL;
    dkv_open_opts_t o;
    dkv_status_t s;

    memset(&o, 0, sizeof o);
    o.token = token;
    o.connect_timeout_ms = 5000;
    o.request_timeout_ms = 5000;
    s = dkv_open(&c, address, &o, NULL);
    if (s == DKV_OK) {
        s = dkv_put(NULL, c, "probe", 5, "v", 1, NULL);
    }
    printf("%s: %s\n", dkv_test_status_name(s), dkv_last_error());
    dkv_close(c);
    return s == DKV_OK ? 0 : 1;
}

/* ================================================================ main */

int
main(int argc, char **argv)
{
    CU_pSuite s;
    unsigned failed;

    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (argc > 0 && argv[0] != NULL) {
        dkv_test_argv0 = argv[0];
    }
    (void)dkv_test_root_pool();
    if (argc >= 3 && strcmp(argv[1], "--probe") == 0) {
        return probe(argv[2], argc > 3 ? argv[3] : NULL);
    }
    if (CU_initialize_registry() != CUE_SUCCESS) {
        return 2;
    }
    s = dkv_test_add_suite("node", NULL, NULL);
    DKV_TEST_ADD(s, t_bind_fails);
    DKV_TEST_ADD(s, t_sigterm);
    DKV_TEST_ADD(s, t_malformed_frames);
    DKV_TEST_ADD(s, t_tokens);
    DKV_TEST_ADD(s, t_thousand_connections);
    DKV_TEST_ADD(s, t_slow_reader);
    DKV_TEST_ADD(s, t_kill9_acked_writes);
    DKV_TEST_ADD(s, t_netns_protected_mode);
    if (argc > 1) {
        CU_pTest t;

        for (t = s->pTest; t != NULL; t = t->pNext) {
            CU_set_test_active(t, strcmp(t->pName, argv[1]) == 0
                                  ? CU_TRUE : CU_FALSE);
        }
        CU_set_fail_on_inactive(CU_FALSE);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    (void)CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed()
             + CU_get_number_of_suites_failed()
             + (CU_get_number_of_failures() != 0 ? 1u : 0u);
    printf("\n");
    CU_cleanup_registry();
    ns_delete();
    dkv_test_shutdown();
    return failed == 0 ? 0 : 1;
}
