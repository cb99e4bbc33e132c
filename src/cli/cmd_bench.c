/*
 * cmd_bench.c -- the performance commands of `dkv`: Test-DkvLatency
 * (sequential reads, percentiles), and Test-DkvThroughput,
 * Benchmark-DkvStore and Stress-DkvStore, which share one load engine: N
 * worker threads on the one (thread-safe) client handle, each reading and
 * writing its own temporary keys in a given read ratio, with live
 * progress on stderr once a second.  Ctrl+C ends the run early; the
 * summary still prints.  Temporary keys are removed afterwards.
 */
#include "cli/cli.h"
#include "platform/userenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#define KEYS_PER_WORKER 4
#define LATENCY_KEYS 1000
#define LATENCY_WARMUP 100

/* Checks -StoreName against the connected store. */
static int
check_store(cli_ctx_t *ctx, const cli_session_t *s)
{
    const char *want = cli_str(ctx, "StoreName", NULL);

    if (want != NULL && strcmp(want, s->store) != 0) {
        cli_error(ctx, "-StoreName %s is not the connected store (%s); run "
                  "Connect-DkvStore -StoreName %s -Force first", want,
                  s->store, want);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* A value of SIZE bytes of printable filler, in POOL. */
static char *
filler(size_t size, apr_pool_t *pool)
{
    char *v = apr_palloc(pool, size + 1);
    size_t i;

    for (i = 0; i < size; i++) {
        v[i] = (char)('a' + i % 26);
    }
    v[size] = '\0';
    return v;
}

/* Removes the keys under PREFIX. */
static void
cleanup(dkv_client_t *c, const char *prefix)
{
    dkv_range_t r;

    memset(&r, 0, sizeof(r));
    r.prefix = prefix;
    r.prefix_len = strlen(prefix);
    (void)dkv_clear(NULL, c, &r);
}

/* ------------------------------------------------------------- latency */

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int
cli_cmd_test_latency(cli_ctx_t *ctx)
{
    cli_session_t *s;
    dkv_client_t *c;
    int64_t iters = cli_int(ctx, "Iterations", 1);
    int64_t size = cli_int(ctx, "ObjectSizeBytes", 100);
    int64_t nkeys = iters < LATENCY_KEYS ? iters : LATENCY_KEYS, i, done;
    const char *prefix;
    char *val;
    double *ms, sum = 0;
    apr_pool_t *iter;
    dkv_status_t rv = DKV_OK;
    json_t *o;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK ||
        (rc = check_store(ctx, s)) != CLI_EXIT_OK) {
        return rc;
    }
    prefix = apr_pstrcat(ctx->pool, "__dkv_bench:",
                         apr_pstrndup(ctx->pool, cli_uuid(ctx->pool), 8),
                         ":", NULL);
    val = filler((size_t)size, ctx->pool);
    ms = apr_palloc(ctx->pool, sizeof(double) * (size_t)iters);
    apr_pool_create(&iter, ctx->pool);
    cli_catch_interrupt(1);
    for (i = 0; i < nkeys && rv == DKV_OK && !cli_interrupted; i++) {
        const char *k = apr_psprintf(iter, "%s%" APR_INT64_T_FMT, prefix,
                                     (apr_int64_t)i);
        rv = dkv_put(NULL, c, k, strlen(k), val, (size_t)size, NULL);
        apr_pool_clear(iter);
    }
    if (rv != DKV_OK) {
        cli_catch_interrupt(0);
        cli_error(ctx, "cannot write the test objects: %s",
                  cli_status_text(rv, ctx->pool));
        cleanup(c, prefix);
        return cli_exit_for(rv);
    }
    for (i = 0; i < LATENCY_WARMUP && !cli_interrupted; i++) {
        dkv_item_t *it;
        const char *k = apr_psprintf(iter, "%s%" APR_INT64_T_FMT, prefix,
                                     (apr_int64_t)(i % nkeys));
        (void)dkv_get(&it, c, k, strlen(k), NULL, iter);
        apr_pool_clear(iter);
    }
    for (done = 0; done < iters && !cli_interrupted; done++) {
        dkv_item_t *it;
        char k[600];
        int64_t t0;

        apr_snprintf(k, sizeof(k), "%s%" APR_INT64_T_FMT, prefix,
                     (apr_int64_t)(done % nkeys));
        t0 = dkv_plat_mono_ns();
        rv = dkv_get(&it, c, k, strlen(k), NULL, iter);
        ms[done] = (double)(dkv_plat_mono_ns() - t0) / 1e6;
        apr_pool_clear(iter);
        if (rv != DKV_OK) {
            break;
        }
        sum += ms[done];
    }
    cli_catch_interrupt(0);
    cleanup(c, prefix);
    if (rv != DKV_OK) {
        cli_error(ctx, "a read failed: %s", cli_status_text(rv, ctx->pool));
        return cli_exit_for(rv);
    }
    qsort(ms, (size_t)done, sizeof(double), cmp_double);
    o = cli_result(s->store);
    json_object_set_new(o, "Iterations", json_integer(done));
    json_object_set_new(o, "ObjectSizeBytes", json_integer(size));
#define PCT(p) (done > 0 ? ms[(size_t)((double)(done - 1) * (p) + 0.5)] : 0)
    json_object_set_new(o, "MinMs", json_real(done > 0 ? ms[0] : 0));
    json_object_set_new(o, "AvgMs", json_real(done > 0 ? sum / done : 0));
    json_object_set_new(o, "P95Ms", json_real(PCT(0.95)));
    json_object_set_new(o, "P99Ms", json_real(PCT(0.99)));
    json_object_set_new(o, "MaxMs", json_real(done > 0 ? ms[done - 1] : 0));
#undef PCT
    cli_print(ctx, o);
    return CLI_EXIT_OK;
}

/* ---------------------------------------------------------- load engine */

typedef struct load {
    dkv_client_t *client;
    const char *prefix;
    const char *value;
    size_t size;
    int read_pct;                 /* 0..100 */
    volatile apr_uint32_t go;     /* 1: measure; 2: stop */
    apr_uint32_t ready;
    apr_uint32_t ops_lo;          /* successful operations (atomic) */
    apr_uint32_t fails;
    apr_uint64_t ops;             /* summed at the end */
    dkv_status_t last_error;      /* under no lock: a hint only */
} load_t;

typedef struct worker {
    load_t *load;
    int id;
    uint64_t ops, fails;
    apr_uint32_t rng;
} worker_t;

static apr_uint32_t
next_rand(apr_uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void *APR_THREAD_FUNC
worker_main(apr_thread_t *t, void *arg)
{
    worker_t *w = arg;
    load_t *ld = w->load;
    char keys[KEYS_PER_WORKER][96];
    apr_pool_t *p;
    int i;

    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        apr_atomic_inc32(&ld->ready);
        apr_thread_exit(t, APR_ENOMEM);
        return NULL;
    }
    for (i = 0; i < KEYS_PER_WORKER; i++) {
        apr_snprintf(keys[i], sizeof(keys[i]), "%s%d:%d", ld->prefix,
                     w->id, i);
        (void)dkv_put(NULL, ld->client, keys[i], strlen(keys[i]),
                      ld->value, ld->size, NULL);
    }
    apr_atomic_inc32(&ld->ready);
    while (apr_atomic_read32(&ld->go) == 0) {
        apr_sleep(1000);
    }
    while (apr_atomic_read32(&ld->go) == 1) {
        apr_uint32_t r = next_rand(&w->rng);
        const char *k = keys[r % KEYS_PER_WORKER];
        dkv_status_t rv;

        if ((int)((r >> 8) % 100) < ld->read_pct) {
            dkv_item_t *it;
            rv = dkv_get(&it, ld->client, k, strlen(k), NULL, p);
            if (rv == DKV_ENOTFOUND) {
                rv = DKV_OK;
            }
        } else {
            rv = dkv_put(NULL, ld->client, k, strlen(k), ld->value,
                         ld->size, NULL);
        }
        apr_pool_clear(p);
        if (rv == DKV_OK) {
            w->ops++;
            apr_atomic_inc32(&ld->ops_lo);
        } else {
            w->fails++;
            apr_atomic_inc32(&ld->fails);
            ld->last_error = rv;
        }
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

typedef struct load_result {
    uint64_t ops, fails;
    double seconds;
    dkv_status_t last_error;
} load_result_t;

/* Runs the load for DURATION seconds (or until Ctrl+C) with CONCURRENCY
 * workers.  Returns CLI_EXIT_OK or a failure already reported. */
static int
run_load(load_result_t *out, cli_ctx_t *ctx, dkv_client_t *c,
         const char *label, int64_t duration, int64_t concurrency,
         int64_t size, int read_pct)
{
    load_t ld;
    worker_t *w = apr_pcalloc(ctx->pool, sizeof(*w) * (size_t)concurrency);
    apr_thread_t **th = apr_pcalloc(ctx->pool,
                                    sizeof(*th) * (size_t)concurrency);
    int tty = dkv_plat_isatty(2);
    apr_time_t start, end, last;
    int64_t i, started = 0;
    apr_threadattr_t *attr;

    memset(&ld, 0, sizeof(ld));
    memset(out, 0, sizeof(*out));
    ld.client = c;
    ld.prefix = apr_pstrcat(ctx->pool, "__dkv_bench:",
                            apr_pstrndup(ctx->pool, cli_uuid(ctx->pool), 8),
                            ":", NULL);
    ld.size = (size_t)size;
    ld.value = filler(ld.size, ctx->pool);
    ld.read_pct = read_pct;
    apr_threadattr_create(&attr, ctx->pool);
    apr_threadattr_stacksize_set(attr, 256 * 1024);
    cli_catch_interrupt(1);
    for (i = 0; i < concurrency; i++) {
        w[i].load = &ld;
        w[i].id = (int)i;
        w[i].rng = (apr_uint32_t)(2463534242u + (apr_uint32_t)i * 7919u);
        if (apr_thread_create(&th[i], attr, worker_main, &w[i], ctx->pool)
            != APR_SUCCESS) {
            cli_error(ctx, "cannot start worker %lld; continuing with %lld",
                      (long long)i, (long long)i);
            break;
        }
        started++;
    }
    while ((int64_t)apr_atomic_read32(&ld.ready) < started &&
           !cli_interrupted) {
        apr_sleep(5000);
    }
    start = last = apr_time_now();
    end = start + duration * APR_USEC_PER_SEC;
    apr_atomic_set32(&ld.go, 1);
    while (!cli_interrupted && apr_time_now() < end) {
        apr_time_t now;
        apr_sleep(50000);
        now = apr_time_now();
        if (now - last >= APR_USEC_PER_SEC) {
            double el = (double)(now - start) / APR_USEC_PER_SEC;
            apr_uint32_t ops = apr_atomic_read32(&ld.ops_lo);
            fprintf(stderr, "%s%s: %5.0fs/%llds  ops %u  ops/s %.0f  "
                    "failures %u%s", tty ? "\r" : "", label, el,
                    (long long)duration, ops, el > 0 ? ops / el : 0.0,
                    apr_atomic_read32(&ld.fails), tty ? "  " : "\n");
            fflush(stderr);
            last = now;
        }
    }
    apr_atomic_set32(&ld.go, 2);
    for (i = 0; i < started; i++) {
        apr_status_t trv;
        apr_thread_join(&trv, th[i]);
        out->ops += w[i].ops;
        out->fails += w[i].fails;
    }
    out->seconds = (double)(apr_time_now() - start) / APR_USEC_PER_SEC;
    out->last_error = ld.last_error;
    if (tty) {
        fputc('\n', stderr);
    }
    if (cli_interrupted) {
        fprintf(stderr, "%s: interrupted after %.1fs\n", label,
                out->seconds);
    }
    cli_catch_interrupt(0);
    cleanup(c, ld.prefix);
    return CLI_EXIT_OK;
}

static int
load_command(cli_ctx_t *ctx, int read_pct, const char *profile)
{
    cli_session_t *s;
    dkv_client_t *c;
    int stress = ctx->cmd->fn == cli_cmd_stress;
    int64_t dur = cli_int(ctx, "DurationSec", 60);
    int64_t conc = cli_int(ctx, "Concurrency", 16);
    int64_t size = cli_int(ctx, "ObjectSizeBytes", 100);
    load_result_t r;
    json_t *o;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK ||
        (rc = check_store(ctx, s)) != CLI_EXIT_OK) {
        return rc;
    }
    cli_log(s->store, ctx->pool, "INFO %s %llds x%lld", ctx->cmd->name,
            (long long)dur, (long long)conc);
    rc = run_load(&r, ctx, c, ctx->cmd->name, dur, conc, size, read_pct);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    o = cli_result(s->store);
    if (profile != NULL) {
        json_object_set_new(o, "Profile", json_string(profile));
    }
    if (stress) {
        uint64_t total = r.ops + r.fails;
        json_object_set_new(o, "DurationSec", json_integer(dur));
        json_object_set_new(o, "Concurrency", json_integer(conc));
        json_object_set_new(o, "ObjectSizeBytes", json_integer(size));
        json_object_set_new(o, "TotalOperations",
                            json_integer((json_int_t)total));
        json_object_set_new(o, "Failures", json_integer((json_int_t)r.fails));
        json_object_set_new(o, "ErrorRatePct", json_real(total > 0
            ? 100.0 * (double)r.fails / (double)total : 0.0));
        json_object_set_new(o, "LastError", r.fails > 0
                            ? json_string(dkv_strerror(r.last_error))
                            : json_null());
    } else {
        json_object_set_new(o, "DurationSecRequested", json_integer(dur));
        json_object_set_new(o, "DurationSecActual",
                            json_real((double)(int64_t)(r.seconds * 100 +
                                                        0.5) / 100));
        json_object_set_new(o, "Concurrency", json_integer(conc));
        json_object_set_new(o, "ObjectSizeBytes", json_integer(size));
        json_object_set_new(o, "TotalOperations",
                            json_integer((json_int_t)r.ops));
        json_object_set_new(o, "OpsPerSecond", json_real(r.seconds > 0
            ? (double)(int64_t)((double)r.ops / r.seconds * 100 + 0.5) / 100
            : 0.0));
        json_object_set_new(o, "Failures", json_integer((json_int_t)r.fails));
    }
    cli_print(ctx, o);
    return CLI_EXIT_OK;
}

int
cli_cmd_test_throughput(cli_ctx_t *ctx)
{
    return load_command(ctx, 50, NULL);
}

int
cli_cmd_benchmark(cli_ctx_t *ctx)
{
    const char *p = cli_str(ctx, "Profile", "");

    if (cli_strcasecmp(p, "ReadHeavy") == 0) {
        return load_command(ctx, 90, "ReadHeavy");
    }
    if (cli_strcasecmp(p, "WriteHeavy") == 0) {
        return load_command(ctx, 10, "WriteHeavy");
    }
    if (cli_strcasecmp(p, "Mixed") == 0) {
        return load_command(ctx, 50, "Mixed");
    }
    cli_error(ctx, "-Profile must be ReadHeavy, WriteHeavy or Mixed, not "
              "'%s'", p);
    return CLI_EXIT_USAGE;
}

int
cli_cmd_stress(cli_ctx_t *ctx)
{
    return load_command(ctx, 50, NULL);
}
