/*
 * test_node_admin.c -- a real dkv-node's admin connection and STATS over
 * the client port (src/node/conn.c, main.c): a loopback client whose
 * HELLO carries the node admin token (adminauth.h) is accepted even when
 * an access token is configured; MEMBER_ADD is refused on every other
 * connection; STATS answers every authenticated one.  Raw frames on an
 * APR socket (loopback only; the node picks its port).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <apr_time.h>

#include "testutil.h"
#include "testnode.h"
#include "common/adminauth.h"
#include "common/alloc.h"
#include "common/proto.h"

#define STORE "admin-store"
#define SECRET_HEX \
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define ACCESS_TOKEN "client-access-token"

/* A raw connection. */
typedef struct rc {
    apr_socket_t *sock;
    apr_pool_t *pool;
    uint64_t next_id;
} rc_t;

static int
rc_connect(rc_t *c, apr_port_t port, apr_pool_t *pool)
{
    apr_sockaddr_t *sa;

    memset(c, 0, sizeof(*c));
    c->pool = pool;
    c->next_id = 1;
    if (apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, port, 0, pool)
        != APR_SUCCESS
        || apr_socket_create(&c->sock, APR_INET, SOCK_STREAM, APR_PROTO_TCP,
                             pool) != APR_SUCCESS) {
        return 0;
    }
    apr_socket_timeout_set(c->sock, apr_time_from_sec(10));
    return apr_socket_connect(c->sock, sa) == APR_SUCCESS;
}

static void
rc_close(rc_t *c)
{
    if (c->sock != NULL) {
        apr_socket_close(c->sock);
        c->sock = NULL;
    }
}

/* Sends REQ (its id set here) and reads frames until its answer (at most
 * 16, within the socket's timeout); decodes it into *RES.  Returns 0
 * when the connection failed or closed first. */
static int
rc_call(rc_t *c, dkv_request_t *req, dkv_response_t *res)
{
    dkv_wbuf_t w;
    apr_size_t n;
    int tries;

    req->id = c->next_id++;
    dkv_wbuf_init(&w, 0);
    DKV_ASSERT_OK(dkv_proto_request_encode(&w, req));
    n = w.len;
    if (apr_socket_send(c->sock, (const char *)w.data, &n) != APR_SUCCESS
        || n != w.len) {
        dkv_wbuf_free(&w);
        return 0;
    }
    dkv_wbuf_free(&w);
    for (tries = 0; tries < 16; tries++) {
        unsigned char hdr[4], *buf;
        apr_size_t got = 4, len;
        dkv_frame_t f;
        size_t size;

        if (apr_socket_recv(c->sock, (char *)hdr, &got) != APR_SUCCESS
            || got != 4) {
            return 0;
        }
        len = ((apr_size_t)hdr[0] << 24) | ((apr_size_t)hdr[1] << 16)
              | ((apr_size_t)hdr[2] << 8) | hdr[3];
        if (len < 12 || len > (1u << 20)) {
            return 0;
        }
        buf = apr_palloc(c->pool, len + 4);
        memcpy(buf, hdr, 4);
        for (got = 0; got < len;) {
            apr_size_t k = len - got;

            if (apr_socket_recv(c->sock, (char *)buf + 4 + got, &k)
                != APR_SUCCESS || k == 0) {
                return 0;
            }
            got += k;
        }
        DKV_ASSERT_OK(dkv_proto_frame_parse(&f, &size, buf, len + 4, 0));
        if (f.id != req->id || !(f.op & DKV_PROTO_RESPONSE)) {
            continue;
        }
        DKV_ASSERT_OK(dkv_proto_response_decode(res, &f, c->pool));
        return 1;
    }
    return 0;
}

/* HELLO with TOKEN (NULL: none).  Returns the answer's status, or -1
 * when the connection failed. */
static dkv_status_t
rc_hello(rc_t *c, const char *token)
{
    dkv_request_t req;
    dkv_response_t res;

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_HELLO;
    req.magic = DKV_PROTO_MAGIC;
    req.min_version = DKV_PROTO_VERSION;
    req.max_version = DKV_PROTO_VERSION;
    req.store = STORE;
    req.token = token;
    req.token_len = token ? strlen(token) : 0;
    req.client = "test_node_admin";
    if (!rc_call(c, &req, &res)) {
        return -1;
    }
    return res.status;
}

static dkv_status_t
rc_member_add(rc_t *c, dkv_response_t *res)
{
    dkv_request_t req;

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_MEMBER_ADD;
    req.member_id = 2;
    req.member_host = "127.0.0.1";
    req.member_cluster_port = 9;
    req.member_client_port = 10;
    if (!rc_call(c, &req, res)) {
        return -1;
    }
    return res->status;
}

/* STATS into *RES; returns its status (-1: connection failed). */
static dkv_status_t
rc_stats(rc_t *c, dkv_response_t *res)
{
    dkv_request_t req;

    memset(&req, 0, sizeof(req));
    req.op = DKV_MSG_STATS;
    if (!rc_call(c, &req, res)) {
        return -1;
    }
    return res->status;
}

static uint64_t
stat_of(const dkv_response_t *res, const char *name)
{
    size_t i;

    for (i = 0; i < res->nstats; i++) {
        if (!strcmp(res->stats[i].name, name)) {
            return res->stats[i].value;
        }
    }
    DKV_ASSERT_TRUE(!"metric missing");
    return 0;
}

static const char *
write_text(const char *dir, const char *name, const char *text,
           apr_pool_t *pool)
{
    const char *path = apr_pstrcat(pool, dir, "/", name, NULL);
    apr_file_t *f;

    DKV_ASSERT_OK(apr_file_open(&f, path, APR_WRITE | APR_CREATE
                                          | APR_TRUNCATE,
                                APR_FPROT_UREAD | APR_FPROT_UWRITE, pool));
    DKV_ASSERT_OK(apr_file_puts(text, f));
    apr_file_close(f);
    return path;
}

/* The admin token of SECRET_HEX, as dkv-manager computes it. */
static void
admin_token(char out[65])
{
    unsigned char secret[DKV_STORE_SECRET_BYTES];
    size_t i;

    for (i = 0; i < sizeof(secret); i++) {
        unsigned hi, lo;
        char c1 = SECRET_HEX[2 * i], c2 = SECRET_HEX[2 * i + 1];

        hi = (unsigned)(c1 <= '9' ? c1 - '0' : c1 - 'a' + 10);
        lo = (unsigned)(c2 <= '9' ? c2 - '0' : c2 - 'a' + 10);
        secret[i] = (unsigned char)(hi << 4 | lo);
    }
    DKV_ASSERT_OK(dkv_adminauth_init());
    dkv_admin_node_token(out, secret);
}

/* --------------------------------------------------------------- tests */

/* A node with an access token and a secret: the admin token opens an
 * admin connection; MEMBER_ADD is refused elsewhere; STATS everywhere;
 * the token never reaches the log. */
static void
test_admin_connection(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *dir = dkv_test_tempdir(p);
    const char *args[5];
    dkv_test_node_t *node;
    dkv_response_t res;
    rc_t user, admin, other;
    char token[65];
    const char *log;
    int i, limited = 0;

    admin_token(token);
    DKV_EXPECT_UINT_EQ(strlen(token), 64);
    args[0] = "--token-file";
    args[1] = write_text(dir, "token", ACCESS_TOKEN "\n", p);
    args[2] = "--secret-file";
    args[3] = write_text(dir, "secret", SECRET_HEX "\n", p);
    args[4] = NULL;
    DKV_ASSERT_OK(dkv_test_node_start(&node, STORE, NULL, args, p));

    /* A client with the access token: STATS yes, MEMBER_ADD no, and the
     * connection stays usable. */
    DKV_ASSERT_TRUE(rc_connect(&user, node->port, p));
    DKV_ASSERT_INT_EQ(rc_hello(&user, ACCESS_TOKEN), DKV_OK);
    DKV_ASSERT_INT_EQ(rc_member_add(&user, &res), DKV_EUNAUTHORIZED);
    DKV_EXPECT_STR_EQ(res.message, "MEMBER_ADD needs the node admin "
                      "connection (loopback, from the store's manager)");
    DKV_ASSERT_INT_EQ(rc_stats(&user, &res), DKV_OK);
    DKV_EXPECT_UINT_EQ(stat_of(&res, "connections"), 1);
    DKV_EXPECT_UINT_EQ(stat_of(&res, "node_id"), 1);
    /* The refused MEMBER_ADD never reached the service. */
    DKV_EXPECT_UINT_EQ(stat_of(&res, "requests_total"), 0);

    /* The admin token, though it is not the access token. */
    DKV_ASSERT_TRUE(rc_connect(&admin, node->port, p));
    DKV_ASSERT_INT_EQ(rc_hello(&admin, token), DKV_OK);
    DKV_ASSERT_INT_EQ(rc_stats(&admin, &res), DKV_OK);
    DKV_EXPECT_UINT_EQ(stat_of(&res, "connections"), 2);
    DKV_EXPECT_UINT_EQ(stat_of(&res, "requests_total"), 1);
    /* MEMBER_ADD passes the gate: the replica answers (a store of one
     * node has no group to add to). */
    DKV_EXPECT_INT_EQ(rc_member_add(&admin, &res), DKV_ENOTIMPL);
    DKV_ASSERT_INT_EQ(rc_stats(&admin, &res), DKV_OK);
    DKV_EXPECT_UINT_EQ(stat_of(&res, "requests_total"), 3);
    DKV_EXPECT_UINT_EQ(stat_of(&res, "errors_total"), 1);

    /* A token that is neither: refused as before. */
    DKV_ASSERT_TRUE(rc_connect(&other, node->port, p));
    token[0] = token[0] == 'a' ? 'b' : 'a';
    DKV_EXPECT_INT_EQ(rc_hello(&other, token), DKV_EUNAUTHORIZED);
    rc_close(&other);
    /* Local failures until the address is rate-limited: the admin
     * connection still opens. */
    for (i = 0; i < 30 && !limited; i++) {
        dkv_status_t s;

        DKV_ASSERT_TRUE(rc_connect(&other, node->port, p));
        s = rc_hello(&other, "wrong");
        rc_close(&other);
        limited = s == DKV_EUNAVAILABLE;
    }
    DKV_EXPECT_TRUE(limited);
    admin_token(token);
    DKV_ASSERT_TRUE(rc_connect(&other, node->port, p));
    DKV_EXPECT_INT_EQ(rc_hello(&other, token), DKV_OK);
    rc_close(&other);

    rc_close(&user);
    rc_close(&admin);
    DKV_EXPECT_TRUE(dkv_test_node_alive(node));
    DKV_EXPECT_TRUE(dkv_test_node_stop(node, SIGTERM, 10000));
#if !defined(_WIN32)
    /* A clean exit (Windows has no SIGTERM: apr_proc_kill terminates the
     * process with the signal number as its exit code). */
    DKV_EXPECT_INT_EQ(node->exit_code, 0);
#endif
    admin_token(token);
    log = dkv_test_node_log(node, p);
    DKV_EXPECT_TRUE(strstr(log, "refused MEMBER_ADD") != NULL);
    DKV_EXPECT_TRUE(strstr(log, token) == NULL);
    DKV_EXPECT_TRUE(strstr(log, SECRET_HEX) == NULL);
    apr_pool_destroy(p);
}

/* Without --secret-file there is no admin connection: the admin token
 * is just a wrong access token, and a loopback client without a token
 * (no access token configured) may not MEMBER_ADD. */
static void
test_no_secret(void)
{
    apr_pool_t *p = dkv_test_pool();
    const char *dir = dkv_test_tempdir(p);
    const char *args[3];
    dkv_test_node_t *node, *open_node;
    dkv_response_t res;
    rc_t c;
    char token[65];

    admin_token(token);
    args[0] = "--token-file";
    args[1] = write_text(dir, "token", ACCESS_TOKEN "\n", p);
    args[2] = NULL;
    DKV_ASSERT_OK(dkv_test_node_start(&node, STORE, NULL, args, p));
    DKV_ASSERT_TRUE(rc_connect(&c, node->port, p));
    DKV_EXPECT_INT_EQ(rc_hello(&c, token), DKV_EUNAUTHORIZED);
    rc_close(&c);

    DKV_ASSERT_OK(dkv_test_node_start(&open_node, STORE, NULL, NULL, p));
    DKV_ASSERT_TRUE(rc_connect(&c, open_node->port, p));
    DKV_ASSERT_INT_EQ(rc_hello(&c, NULL), DKV_OK);
    DKV_EXPECT_INT_EQ(rc_member_add(&c, &res), DKV_EUNAUTHORIZED);
    DKV_ASSERT_INT_EQ(rc_stats(&c, &res), DKV_OK);
    DKV_EXPECT_UINT_EQ(stat_of(&res, "requests_total"), 0);
    rc_close(&c);
    apr_pool_destroy(p);
}

void
test_node_admin_register(void)
{
    CU_pSuite s = dkv_test_add_suite("node_admin", NULL, NULL);

    DKV_TEST_ADD(s, test_admin_connection);
    DKV_TEST_ADD(s, test_no_secret);
}
