/*
 * fuzz_proto.c -- fuzz target for the client protocol's decoders
 * (src/common/proto.c), which read bytes from the network.
 *
 * The input is a byte stream as a connection would read it: frames are
 * parsed from it one after the other (up to 64 of them), and each frame
 * goes through every decoder -- request, response (PROTOCOL_ERROR
 * included) and events.  What a decoder accepts must encode again, and
 * the re-encoded frame must decode and re-encode to the same bytes (a
 * differential check of decoder against encoder).  Any failure of that
 * check aborts, which the fuzzer reports as a crash; so do the
 * sanitizers' findings.
 *
 * Built two ways (Makefile.am): with --enable-fuzz as a libFuzzer target
 * (scripts/run.sh test, stage fuzz); otherwise with DKV_FUZZ_MAIN as a
 * plain program that replays files -- the arguments (files or
 * directories), or by default $top_srcdir/tests/fuzz/corpus/proto --
 * which `make check` runs over the seed corpus.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include "common/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static apr_pool_t *root_pool;

/* Reports a broken invariant and aborts (a "crash" to the fuzzer). */
static void
fail(const char *what, const dkv_frame_t *f)
{
    fprintf(stderr, "fuzz_proto: %s (op 0x%02x, body %lu bytes): %s\n",
            what, (unsigned)f->op, (unsigned long)f->body_len,
            dkv_last_error());
    abort();
}

/* Parses the one frame W holds; aborts unless it is exactly one. */
static void
reparse(dkv_frame_t *g, const dkv_wbuf_t *w, const dkv_frame_t *f)
{
    size_t size = 0;

    if (dkv_proto_frame_parse(g, &size, w->data, w->len, UINT32_MAX)
        != DKV_OK || size != w->len) {
        fail("re-encoded frame does not parse", f);
    }
}

static void
same_bytes(const dkv_wbuf_t *a, const dkv_wbuf_t *b, const dkv_frame_t *f)
{
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0) {
        fail("decode(encode(x)) does not encode to the same bytes", f);
    }
}

static void
check_request(const dkv_frame_t *f, apr_pool_t *pool)
{
    dkv_request_t a, b;
    dkv_wbuf_t w1, w2;
    dkv_frame_t g;

    if (dkv_proto_request_decode(&a, f, pool) != DKV_OK) {
        return;
    }
    dkv_wbuf_init(&w1, 0);
    dkv_wbuf_init(&w2, 0);
    if (dkv_proto_request_encode(&w1, &a) != DKV_OK) {
        fail("decoded request does not encode", f);
    }
    reparse(&g, &w1, f);
    if (g.op != f->op || g.id != f->id) {
        fail("re-encoded request changed op or id", f);
    }
    if (dkv_proto_request_decode(&b, &g, pool) != DKV_OK) {
        fail("re-encoded request does not decode", f);
    }
    if (dkv_proto_request_encode(&w2, &b) != DKV_OK) {
        fail("decoded request does not encode (second pass)", f);
    }
    same_bytes(&w1, &w2, f);
    dkv_wbuf_free(&w1);
    dkv_wbuf_free(&w2);
}

static void
check_response(const dkv_frame_t *f, apr_pool_t *pool)
{
    dkv_response_t a, b;
    dkv_wbuf_t w1, w2;
    dkv_frame_t g;

    if (dkv_proto_response_decode(&a, f, pool) != DKV_OK) {
        return;
    }
    if (a.message == NULL) {
        fail("decoded response has a NULL message", f);
    }
    dkv_wbuf_init(&w1, 0);
    dkv_wbuf_init(&w2, 0);
    if (dkv_proto_response_encode(&w1, &a) != DKV_OK) {
        fail("decoded response does not encode", f);
    }
    reparse(&g, &w1, f);
    if (g.op != f->op || g.id != f->id) {
        fail("re-encoded response changed op or id", f);
    }
    if (dkv_proto_response_decode(&b, &g, pool) != DKV_OK) {
        fail("re-encoded response does not decode", f);
    }
    if (dkv_proto_response_encode(&w2, &b) != DKV_OK) {
        fail("decoded response does not encode (second pass)", f);
    }
    same_bytes(&w1, &w2, f);
    dkv_wbuf_free(&w1);
    dkv_wbuf_free(&w2);
}

static void
check_events(const dkv_frame_t *f, apr_pool_t *pool)
{
    dkv_event_t *a, *b;
    size_t na, nb;
    dkv_wbuf_t w1, w2;
    dkv_frame_t g;

    if (dkv_proto_events_decode(&a, &na, f, pool) != DKV_OK) {
        return;
    }
    dkv_wbuf_init(&w1, 0);
    dkv_wbuf_init(&w2, 0);
    if (dkv_proto_events_encode_flags(&w1, f->id, f->flags
                                      & DKV_PROTO_EVENT_SNAPSHOT_DONE,
                                      a, na) != DKV_OK) {
        fail("decoded events do not encode", f);
    }
    reparse(&g, &w1, f);
    if (dkv_proto_events_decode(&b, &nb, &g, pool) != DKV_OK || nb != na) {
        fail("re-encoded events do not decode", f);
    }
    if (dkv_proto_events_encode_flags(&w2, g.id, g.flags, b, nb)
        != DKV_OK) {
        fail("decoded events do not encode (second pass)", f);
    }
    same_bytes(&w1, &w2, f);
    dkv_wbuf_free(&w1);
    dkv_wbuf_free(&w2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool;
    int frames;

    if (root_pool == NULL) {
        if (apr_initialize() != APR_SUCCESS
            || apr_pool_create(&root_pool, NULL) != APR_SUCCESS) {
            abort();
        }
    }
    if (apr_pool_create(&pool, root_pool) != APR_SUCCESS) {
        abort();
    }
    for (frames = 0; frames < 64; frames++) {
        dkv_frame_t f;
        size_t used = 0;
        dkv_status_t s;

        /* A small max_frame so that length checks are reachable. */
        s = dkv_proto_frame_parse(&f, &used, data, size, 1u << 20);
        if (s != DKV_OK) {
            break;
        }
        check_request(&f, pool);
        check_response(&f, pool);
        check_events(&f, pool);
        apr_pool_clear(pool);
        data += used;
        size -= used;
    }
    apr_pool_destroy(pool);
    return 0;
}

/* ------------------------------------------------------- replay program */

#ifdef DKV_FUZZ_MAIN

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>

/* Runs the target on the file PATH; returns 1 when it was read. */
static int
replay_file(const char *path, apr_pool_t *pool)
{
    apr_file_t *fp;
    apr_finfo_t fi;
    char *buf;
    apr_size_t n;

    if (apr_file_open(&fp, path, APR_READ | APR_BINARY, 0, pool)
        != APR_SUCCESS
        || apr_file_info_get(&fi, APR_FINFO_SIZE, fp) != APR_SUCCESS) {
        fprintf(stderr, "fuzz_proto: cannot read %s\n", path);
        return 0;
    }
    n = (apr_size_t)fi.size;
    buf = apr_palloc(pool, n ? n : 1);
    if (n && apr_file_read_full(fp, buf, n, &n) != APR_SUCCESS) {
        fprintf(stderr, "fuzz_proto: cannot read %s\n", path);
        return 0;
    }
    apr_file_close(fp);
    LLVMFuzzerTestOneInput((const uint8_t *)buf, n);
    return 1;
}

/* Runs every regular file of directory DIR (or DIR itself, a file);
 * returns how many, or -1 when DIR cannot be opened. */
static int
replay_path(const char *dir, apr_pool_t *pool)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    int count = 0;

    if (apr_stat(&fi, dir, APR_FINFO_TYPE, pool) != APR_SUCCESS) {
        return -1;
    }
    if (fi.filetype != APR_DIR) {
        return replay_file(dir, pool) ? 1 : -1;
    }
    if (apr_dir_open(&d, dir, pool) != APR_SUCCESS) {
        return -1;
    }
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d)
           == APR_SUCCESS) {
        if (fi.filetype == APR_REG) {
            const char *p = apr_pstrcat(pool, dir, "/", fi.name, NULL);

            if (!replay_file(p, pool)) {
                apr_dir_close(d);
                return -1;
            }
            count++;
        }
    }
    apr_dir_close(d);
    return count;
}

int
main(int argc, char **argv)
{
    apr_pool_t *pool;
    const char *top;
    int i, n, total = 0;

    if (apr_initialize() != APR_SUCCESS
        || apr_pool_create(&pool, NULL) != APR_SUCCESS) {
        return 1;
    }
    if (argc < 2) {
        /* `make check`: the seed corpus.  Exit 77 (skipped) when the
         * source tree is out of reach (a cross-build's emulator). */
        top = getenv("top_srcdir");
        n = replay_path(apr_pstrcat(pool, top ? top : ".",
                                    "/tests/fuzz/corpus/proto", NULL),
                        pool);
        if (n <= 0) {
            fprintf(stderr, "fuzz_proto: no seed corpus found; skipped\n");
            return 77;
        }
        total = n;
    }
    for (i = 1; i < argc; i++) {
        n = replay_path(argv[i], pool);
        if (n < 0) {
            fprintf(stderr, "fuzz_proto: cannot read %s\n", argv[i]);
            return 1;
        }
        total += n;
    }
    printf("fuzz_proto: %d inputs replayed, no failure\n", total);
    apr_pool_destroy(pool);
    apr_terminate();
    return 0;
}

#endif /* DKV_FUZZ_MAIN */
