/*
 * bench-inproc.c -- how fast the embedded store is, next to the raw LMDB
 * it is built on, measured in the same run on the same disk.
 *
 * For each operation the program runs the same work twice: through dkv's
 * public API on an "inproc:PATH" store, and directly on an LMDB
 * environment opened with the same sync mode.  The ratio dkv / LMDB is
 * the price of dkv's bookkeeping (metadata, versions, change history,
 * expiry index) and of its API (copying values out, pools).
 *
 *   Put batched   dkv_put_many of BATCH keys   | one write txn of BATCH puts
 *   Put single    dkv_put, one commit each     | one write txn per put
 *   Get           dkv_get (value copied out)   | renew, mdb_get, memcpy, reset
 *   Scan          dkv_scan pages of 1000       | a read txn and cursor per
 *                 over the prefix "key:"       | page, keys+values copied
 *
 * Puts run twice: synced (each commit flushed to disk, dkv's default for
 * "inproc:PATH") and no_sync (MDB_NOSYNC on both sides).
 *
 * Usage: bench-inproc [--quick] [--keys N] [--value-size BYTES]
 *                     [--batch N] [--duration SECONDS] [--rounds N]
 * Each measurement alternates dkv and LMDB in ROUNDS rounds and reports
 * each side's best, so that background load hurts both sides alike.
 * The store files go to a fresh directory under TMPDIR (or the system's
 * temporary directory), removed at the end.  This is not a test: it
 * always exits 0 unless something fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>

#include <lmdb.h>

#include <dkv.h>

/* --------------------------------------------------------- configuration */

typedef struct config {
    unsigned long keys;      /* keys written, read and scanned */
    size_t value_size;       /* bytes per value */
    size_t batch;            /* keys per batched put */
    double duration;         /* seconds per timed loop, over all rounds */
    unsigned rounds;         /* rounds per measurement; the best counts */
} config_t;

#define SCAN_PAGE 1000
#define KEY_PREFIX "key:"

/* The run's directory, removed by cleanup() (also on failure). */
static const char *bench_dir;
static apr_pool_t *bench_pool;

static apr_status_t remove_tree(const char *dir, apr_pool_t *pool);

static void
cleanup(void)
{
    if (bench_dir) {
        remove_tree(bench_dir, bench_pool);
        bench_dir = NULL;
    }
}

static void
dkv_check(dkv_status_t status, const char *what)
{
    if (status != DKV_OK) {
        const char *detail = dkv_last_error();

        fprintf(stderr, "bench-inproc: %s: %s (%s)\n", what,
                dkv_strerror(status), detail);
        cleanup();
        exit(1);
    }
}

static void
mdb_check(int rc, const char *what)
{
    if (rc != MDB_SUCCESS) {
        fprintf(stderr, "bench-inproc: lmdb: %s: %s\n", what,
                mdb_strerror(rc));
        cleanup();
        exit(1);
    }
}

static void
usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--quick] [--keys N] [--value-size BYTES] "
            "[--batch N] [--duration SECONDS]\n"
            "  --keys N          keys to write, read and scan "
            "(default 100000)\n"
            "  --value-size B    bytes per value (default 100)\n"
            "  --batch N         keys per batched put (default 1000)\n"
            "  --duration S      seconds per timed loop (default 2)\n"
            "  --rounds N        rounds per measurement, alternating dkv "
            "and LMDB;\n"
            "                    the best of each side counts (default 5)\n"
            "  --quick           a smoke run: 2000 keys, batch 100, 0.2 s\n",
            argv0);
    exit(2);
}

static unsigned long
parse_count(const char *arg, const char *argv0)
{
    char *end;
    unsigned long n;

    if (!arg) {
        usage(argv0);
    }
    n = strtoul(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || n == 0) {
        usage(argv0);
    }
    return n;
}

static void
parse_args(config_t *cfg, int argc, char **argv)
{
    int i;

    cfg->keys = 100000;
    cfg->value_size = 100;
    cfg->batch = 1000;
    cfg->duration = 2.0;
    cfg->rounds = 5;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--quick") == 0) {
            cfg->keys = 2000;
            cfg->batch = 100;
            cfg->duration = 0.2;
        }
        else if (strcmp(a, "--keys") == 0) {
            cfg->keys = parse_count(argv[++i], argv[0]);
        }
        else if (strcmp(a, "--value-size") == 0) {
            cfg->value_size = parse_count(argv[++i], argv[0]);
        }
        else if (strcmp(a, "--rounds") == 0) {
            cfg->rounds = (unsigned)parse_count(argv[++i], argv[0]);
        }
        else if (strcmp(a, "--batch") == 0) {
            cfg->batch = parse_count(argv[++i], argv[0]);
        }
        else if (strcmp(a, "--duration") == 0) {
            char *end;

            if (!argv[i + 1]) {
                usage(argv[0]);
            }
            cfg->duration = strtod(argv[++i], &end);
            if (*end != '\0' || cfg->duration <= 0) {
                usage(argv[0]);
            }
        }
        else {
            usage(argv[0]);
        }
    }
    if (cfg->value_size > DKV_DEFAULT_MAX_VALUE) {
        fprintf(stderr, "bench-inproc: --value-size at most %u\n",
                DKV_DEFAULT_MAX_VALUE);
        exit(2);
    }
    if (cfg->rounds > cfg->keys) {
        cfg->rounds = (unsigned)cfg->keys;
    }
    if (cfg->batch > cfg->keys / cfg->rounds) {
        cfg->batch = cfg->keys / cfg->rounds;
    }
}

/* -------------------------------------------------------------- helpers */

/* Writes key number I ("key:00000042") into BUF; returns its length. */
static size_t
make_key(char *buf, size_t size, unsigned long i)
{
    return (size_t)snprintf(buf, size, KEY_PREFIX "%08lu", i);
}

/* Fills VALUE with SIZE bytes that depend on I and ROUND. */
static void
make_value(char *value, size_t size, unsigned long i, unsigned round)
{
    size_t j;

    for (j = 0; j < size; j++) {
        value[j] = (char)('a' + (i + j + round) % 26);
    }
}

/* A tiny deterministic generator for random reads. */
static unsigned long
next_random(unsigned long *state)
{
    *state = *state * 6364136223846793005UL + 1442695040888963407UL;
    return *state >> 17;
}

static double
seconds_since(apr_time_t start)
{
    apr_time_t t = apr_time_now() - start;

    return t > 0 ? (double)t / APR_USEC_PER_SEC : 1e-6;
}

static apr_status_t
remove_tree(const char *dir, apr_pool_t *pool)
{
    apr_dir_t *d;
    apr_finfo_t info;
    apr_pool_t *sub;
    apr_status_t rv;

    apr_pool_create(&sub, pool);
    rv = apr_dir_open(&d, dir, sub);
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(sub);
        return rv;
    }
    while (apr_dir_read(&info, APR_FINFO_NAME | APR_FINFO_TYPE, d)
           == APR_SUCCESS) {
        char *path;

        if (strcmp(info.name, ".") == 0 || strcmp(info.name, "..") == 0) {
            continue;
        }
        apr_filepath_merge(&path, dir, info.name, APR_FILEPATH_NATIVE, sub);
        rv = info.filetype == APR_DIR ? remove_tree(path, sub)
                                      : apr_file_remove(path, sub);
        if (rv != APR_SUCCESS) {
            break;
        }
    }
    apr_dir_close(d);
    if (rv == APR_SUCCESS || APR_STATUS_IS_ENOENT(rv)) {
        rv = apr_dir_remove(dir, sub);
    }
    apr_pool_destroy(sub);
    return rv;
}

static const char *
make_bench_dir(apr_pool_t *pool)
{
    const char *tmp;
    int i;

    if (apr_temp_dir_get(&tmp, pool) != APR_SUCCESS) {
        tmp = ".";
    }
    for (i = 0; i < 100; i++) {
        char *dir;
        apr_status_t rv;

        rv = apr_filepath_merge(&dir, tmp,
                                apr_psprintf(pool, "dkv-bench-%"
                                             APR_TIME_T_FMT "-%d",
                                             apr_time_now(), i),
                                APR_FILEPATH_NATIVE, pool);
        if (rv == APR_SUCCESS) {
            rv = apr_dir_make(dir, APR_FPROT_OS_DEFAULT, pool);
        }
        if (rv == APR_SUCCESS) {
            return dir;
        }
        if (!APR_STATUS_IS_EEXIST(rv)) {
            dkv_check(rv, "make the benchmark directory");
        }
    }
    dkv_check(APR_EEXIST, "make the benchmark directory");
    return NULL;
}

/* The map size both sides use: room for the data several times over. */
static uint64_t
map_size(const config_t *cfg)
{
    uint64_t need = (uint64_t)cfg->keys * (cfg->value_size + 512) * 8;
    uint64_t floor = 1024ULL * 1024 * 1024;

    return need > floor ? need : floor;
}

/* --------------------------------------------------------------- dkv side */

static dkv_client_t *
dkv_side_open(const config_t *cfg, const char *name, int no_sync,
              apr_pool_t *pool)
{
    dkv_open_opts_t opts = { 0 };
    dkv_client_t *client;
    char *path;

    opts.no_sync = no_sync;
    opts.map_size = map_size(cfg);
    apr_filepath_merge(&path, bench_dir, name, APR_FILEPATH_NATIVE, pool);
    dkv_check(dkv_open(&client, apr_pstrcat(pool, "inproc:", path, NULL),
                       &opts, pool), "dkv_open");
    return client;
}

/* Writes keys FIRST to END (excluded), BATCH per dkv_put_many call.
 * Returns keys/s. */
static double
dkv_put_batched(const config_t *cfg, dkv_client_t *client,
                unsigned long first, unsigned long end)
{
    dkv_kv_t *kvs = apr_pcalloc(bench_pool, cfg->batch * sizeof *kvs);
    char *keys = apr_palloc(bench_pool, cfg->batch * 32);
    char *values = apr_palloc(bench_pool, cfg->batch * cfg->value_size);
    apr_time_t start;
    unsigned long i = first;

    start = apr_time_now();
    while (i < end) {
        size_t n = 0;

        for (; n < cfg->batch && i < end; n++, i++) {
            kvs[n].key = keys + n * 32;
            kvs[n].key_len = make_key(keys + n * 32, 32, i);
            kvs[n].value = values + n * cfg->value_size;
            kvs[n].value_len = cfg->value_size;
            make_value(values + n * cfg->value_size, cfg->value_size, i, 0);
        }
        dkv_check(dkv_put_many(NULL, client, kvs, n, NULL), "dkv_put_many");
    }
    return (end - first) / seconds_since(start);
}

/* Overwrites keys one put at a time, from key *NEXT on (wrapping
 * around), for SECONDS.  Returns puts/s. */
static double
dkv_put_single(const config_t *cfg, dkv_client_t *client,
               unsigned long *next, double seconds)
{
    char key[32];
    char *value = apr_palloc(bench_pool, cfg->value_size);
    apr_time_t start, stop;
    unsigned long n = 0, i = *next;

    start = apr_time_now();
    stop = start + (apr_time_t)(seconds * APR_USEC_PER_SEC);
    do {
        size_t klen = make_key(key, sizeof key, i);

        make_value(value, cfg->value_size, i, 1);
        dkv_check(dkv_put(NULL, client, key, klen, value, cfg->value_size,
                          NULL), "dkv_put");
        i = (i + 1) % cfg->keys;
        n++;
    } while ((n & 15) != 0 || apr_time_now() < stop);
    *next = i;
    return n / seconds_since(start);
}

/* Random gets for SECONDS.  Returns gets/s. */
static double
dkv_get_random(const config_t *cfg, dkv_client_t *client, double seconds,
               unsigned long seed, apr_pool_t *pool)
{
    unsigned long rnd = seed, n = 0;
    apr_pool_t *iter;
    apr_time_t start, stop;
    char key[32];

    apr_pool_create(&iter, pool);
    start = apr_time_now();
    stop = start + (apr_time_t)(seconds * APR_USEC_PER_SEC);
    do {
        int j;

        for (j = 0; j < 64; j++, n++) {
            size_t klen = make_key(key, sizeof key,
                                   next_random(&rnd) % cfg->keys);
            dkv_item_t *item;

            dkv_check(dkv_get(&item, client, key, klen, NULL, iter),
                      "dkv_get");
            if (item->value_len != cfg->value_size) {
                dkv_check(DKV_ECORRUPT, "dkv_get: wrong value size");
            }
            apr_pool_clear(iter);
        }
    } while (apr_time_now() < stop);
    {
        double rate = n / seconds_since(start);

        apr_pool_destroy(iter);
        return rate;
    }
}

/* Scans the prefix in pages of SCAN_PAGE, over and over, for SECONDS.
 * Returns keys/s. */
static double
dkv_scan_pages(const config_t *cfg, dkv_client_t *client, double seconds,
               apr_pool_t *pool)
{
    const dkv_range_t range = { KEY_PREFIX, sizeof KEY_PREFIX - 1,
                                NULL, 0, NULL, 0 };
    dkv_scan_opts_t opts = { NULL, 0, SCAN_PAGE, 0 };
    char after[DKV_MAX_KEY];
    unsigned long n = 0;
    apr_pool_t *iter;
    apr_time_t start, stop;

    apr_pool_create(&iter, pool);
    start = apr_time_now();
    stop = start + (apr_time_t)(seconds * APR_USEC_PER_SEC);
    do {
        dkv_page_t *page;

        dkv_check(dkv_scan(&page, client, &range, &opts, iter), "dkv_scan");
        n += page->count;
        if (page->more && page->next_len <= sizeof after) {
            memcpy(after, page->next, page->next_len);
            opts.after = after;
            opts.after_len = page->next_len;
        }
        else {
            opts.after = NULL;
            opts.after_len = 0;
        }
        apr_pool_clear(iter);
    } while (apr_time_now() < stop);
    {
        double rate = n / seconds_since(start);

        apr_pool_destroy(iter);
        return rate;
    }
}

/* -------------------------------------------------------------- raw LMDB */

typedef struct raw {
    MDB_env *env;
    MDB_dbi dbi;
} raw_t;

/* Opens a plain LMDB environment in BENCH_DIR/NAME, synced unless
 * NO_SYNC, with the same map size as the dkv store. */
static void
raw_open(raw_t *raw, const config_t *cfg, const char *name, int no_sync,
         apr_pool_t *pool)
{
    MDB_txn *txn;
    char *path;

    apr_filepath_merge(&path, bench_dir, name, APR_FILEPATH_NATIVE, pool);
    dkv_check(apr_dir_make(path, APR_FPROT_OS_DEFAULT, pool), "mkdir");
    mdb_check(mdb_env_create(&raw->env), "mdb_env_create");
    mdb_check(mdb_env_set_mapsize(raw->env, (size_t)map_size(cfg)),
              "mdb_env_set_mapsize");
    mdb_check(mdb_env_open(raw->env, path,
                           MDB_NOTLS | (no_sync ? MDB_NOSYNC : 0), 0644),
              "mdb_env_open");
    mdb_check(mdb_txn_begin(raw->env, NULL, 0, &txn), "mdb_txn_begin");
    mdb_check(mdb_dbi_open(txn, NULL, 0, &raw->dbi), "mdb_dbi_open");
    mdb_check(mdb_txn_commit(txn), "mdb_txn_commit");
}

static void
raw_close(raw_t *raw)
{
    mdb_env_close(raw->env);
}

static double
raw_put_batched(const config_t *cfg, raw_t *raw, unsigned long first,
                unsigned long end)
{
    char key[32];
    char *value = apr_palloc(bench_pool, cfg->value_size);
    apr_time_t start;
    unsigned long i = first;

    start = apr_time_now();
    while (i < end) {
        MDB_txn *txn;
        size_t n;

        mdb_check(mdb_txn_begin(raw->env, NULL, 0, &txn), "mdb_txn_begin");
        for (n = 0; n < cfg->batch && i < end; n++, i++) {
            MDB_val k, v;

            k.mv_data = key;
            k.mv_size = make_key(key, sizeof key, i);
            make_value(value, cfg->value_size, i, 0);
            v.mv_data = value;
            v.mv_size = cfg->value_size;
            mdb_check(mdb_put(txn, raw->dbi, &k, &v, 0), "mdb_put");
        }
        mdb_check(mdb_txn_commit(txn), "mdb_txn_commit");
    }
    return (end - first) / seconds_since(start);
}

static double
raw_put_single(const config_t *cfg, raw_t *raw, unsigned long *next,
               double seconds)
{
    char key[32];
    char *value = apr_palloc(bench_pool, cfg->value_size);
    apr_time_t start, stop;
    unsigned long n = 0, i = *next;

    start = apr_time_now();
    stop = start + (apr_time_t)(seconds * APR_USEC_PER_SEC);
    do {
        MDB_txn *txn;
        MDB_val k, v;

        k.mv_data = key;
        k.mv_size = make_key(key, sizeof key, i);
        make_value(value, cfg->value_size, i, 1);
        v.mv_data = value;
        v.mv_size = cfg->value_size;
        mdb_check(mdb_txn_begin(raw->env, NULL, 0, &txn), "mdb_txn_begin");
        mdb_check(mdb_put(txn, raw->dbi, &k, &v, 0), "mdb_put");
        mdb_check(mdb_txn_commit(txn), "mdb_txn_commit");
        i = (i + 1) % cfg->keys;
        n++;
    } while ((n & 15) != 0 || apr_time_now() < stop);
    *next = i;
    return n / seconds_since(start);
}

static double
raw_get_random(const config_t *cfg, raw_t *raw, double seconds,
               unsigned long seed)
{
    unsigned long rnd = seed, n = 0;
    char *out = apr_palloc(bench_pool, cfg->value_size + 1);
    apr_time_t start, stop;
    MDB_txn *txn;
    char key[32];

    /* One read transaction, reset and renewed around each get. */
    mdb_check(mdb_txn_begin(raw->env, NULL, MDB_RDONLY, &txn),
              "mdb_txn_begin");
    mdb_txn_reset(txn);
    start = apr_time_now();
    stop = start + (apr_time_t)(seconds * APR_USEC_PER_SEC);
    do {
        int j;

        for (j = 0; j < 64; j++, n++) {
            MDB_val k, v;

            k.mv_data = key;
            k.mv_size = make_key(key, sizeof key,
                                 next_random(&rnd) % cfg->keys);
            mdb_check(mdb_txn_renew(txn), "mdb_txn_renew");
            mdb_check(mdb_get(txn, raw->dbi, &k, &v), "mdb_get");
            memcpy(out, v.mv_data, v.mv_size);
            out[v.mv_size] = '\0';
            mdb_txn_reset(txn);
        }
    } while (apr_time_now() < stop);
    {
        double rate = n / seconds_since(start);

        mdb_txn_abort(txn);
        return rate;
    }
}

static double
raw_scan_pages(const config_t *cfg, raw_t *raw, double seconds)
{
    const size_t plen = sizeof KEY_PREFIX - 1;
    char after[DKV_MAX_KEY];
    size_t after_len = 0;
    size_t cap = (size_t)SCAN_PAGE * (cfg->value_size + 64);
    char *copy = apr_palloc(bench_pool, cap);
    unsigned long n = 0;
    apr_time_t start, stop;
    MDB_txn *txn;
    MDB_cursor *cur;

    mdb_check(mdb_txn_begin(raw->env, NULL, MDB_RDONLY, &txn),
              "mdb_txn_begin");
    mdb_check(mdb_cursor_open(txn, raw->dbi, &cur), "mdb_cursor_open");
    mdb_txn_reset(txn);
    start = apr_time_now();
    stop = start + (apr_time_t)(seconds * APR_USEC_PER_SEC);
    do {
        MDB_val k, v;
        size_t count = 0, used = 0;
        int rc, more = 0;

        /* One page: a fresh snapshot, positioned after the last key of
         * the previous page (or at the prefix). */
        mdb_check(mdb_txn_renew(txn), "mdb_txn_renew");
        mdb_check(mdb_cursor_renew(txn, cur), "mdb_cursor_renew");
        if (after_len) {
            k.mv_data = after;
            k.mv_size = after_len;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            if (rc == MDB_SUCCESS && k.mv_size == after_len
                && memcmp(k.mv_data, after, after_len) == 0) {
                rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            }
        }
        else {
            k.mv_data = (void *)KEY_PREFIX;
            k.mv_size = plen;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        }
        while (rc == MDB_SUCCESS && k.mv_size >= plen
               && memcmp(k.mv_data, KEY_PREFIX, plen) == 0) {
            if (count == SCAN_PAGE) {
                more = 1;
                break;
            }
            if (used + k.mv_size + v.mv_size > cap) {
                used = 0;
            }
            memcpy(copy + used, k.mv_data, k.mv_size);
            memcpy(copy + used + k.mv_size, v.mv_data, v.mv_size);
            used += k.mv_size + v.mv_size;
            memcpy(after, k.mv_data, k.mv_size);
            after_len = k.mv_size;
            count++;
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
            mdb_check(rc, "mdb_cursor_get");
        }
        if (!more) {
            after_len = 0;
        }
        mdb_txn_reset(txn);
        n += count;
    } while (apr_time_now() < stop);
    {
        double rate = n / seconds_since(start);

        mdb_cursor_close(cur);
        mdb_txn_abort(txn);
        return rate;
    }
}

/* ---------------------------------------------------------------- report */

typedef struct row {
    char name[64];
    double dkv;      /* best dkv rate over the rounds */
    double raw;      /* best raw LMDB rate over the rounds */
} row_t;

/* Keeps the best rate of each side. */
static void
record(row_t *r, double dkv, double raw)
{
    if (dkv > r->dkv) {
        r->dkv = dkv;
    }
    if (raw > r->raw) {
        r->raw = raw;
    }
}

static void
print_row(const row_t *r)
{
    printf("%-34s %12.0f %12.0f %7.2fx\n", r->name, r->dkv, r->raw,
           r->raw > 0 ? r->dkv / r->raw : 0.0);
    fflush(stdout);
}

static const char *
verdict(const row_t *r, double target)
{
    return r->raw > 0 && r->dkv / r->raw >= target ? "PASS" : "BELOW";
}

/* ------------------------------------------------------------------ main */

/*
 * Every measurement runs in ROUNDS rounds that alternate dkv and raw
 * LMDB, and each side's best round counts: background load on the machine
 * then hurts both sides alike, and a disturbed round is dropped.
 */
int
main(int argc, char **argv)
{
    config_t cfg;
    apr_pool_t *pool;
    dkv_client_t *dkv_sync, *dkv_nosync;
    raw_t raw_sync, raw_nosync;
    row_t rows[6];
    unsigned long next_dkv = 0, next_raw = 0, share;
    double slice;
    unsigned r;

    parse_args(&cfg, argc, argv);
    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);
    bench_pool = pool;
    bench_dir = make_bench_dir(pool);
    memset(rows, 0, sizeof rows);
    slice = cfg.duration / cfg.rounds;
    share = cfg.keys / cfg.rounds;

    printf("dkv %s in-process benchmark vs raw LMDB\n", dkv_version());
    printf("%lu keys (\"" KEY_PREFIX "%%08d\"), %lu-byte values, batch %lu, "
           "%.1f s per timed loop, best of %u rounds\n", cfg.keys,
           (unsigned long)cfg.value_size, (unsigned long)cfg.batch,
           cfg.duration, cfg.rounds);
    printf("files under %s\n\n", bench_dir);
    printf("%-34s %12s %12s %8s\n", "operation", "dkv ops/s", "LMDB ops/s",
           "ratio");

    dkv_nosync = dkv_side_open(&cfg, "dkv-nosync", 1, pool);
    dkv_sync = dkv_side_open(&cfg, "dkv-sync", 0, pool);
    raw_open(&raw_nosync, &cfg, "lmdb-nosync", 1, pool);
    raw_open(&raw_sync, &cfg, "lmdb-sync", 0, pool);

    /* Batched puts load the data: round R inserts its share of the keys
     * (the last round the rest). */
    snprintf(rows[0].name, sizeof rows[0].name,
             "Put batched x%lu (no_sync)", (unsigned long)cfg.batch);
    snprintf(rows[1].name, sizeof rows[1].name,
             "Put batched x%lu (synced)", (unsigned long)cfg.batch);
    for (r = 0; r < cfg.rounds; r++) {
        unsigned long first = r * share;
        unsigned long end = r + 1 == cfg.rounds ? cfg.keys : first + share;

        record(&rows[0], dkv_put_batched(&cfg, dkv_nosync, first, end),
               raw_put_batched(&cfg, &raw_nosync, first, end));
        record(&rows[1], dkv_put_batched(&cfg, dkv_sync, first, end),
               raw_put_batched(&cfg, &raw_sync, first, end));
    }
    print_row(&rows[0]);
    print_row(&rows[1]);

    /* Single puts overwrite the keys in order. */
    snprintf(rows[2].name, sizeof rows[2].name, "Put single (no_sync)");
    for (r = 0; r < cfg.rounds; r++) {
        record(&rows[2], dkv_put_single(&cfg, dkv_nosync, &next_dkv, slice),
               raw_put_single(&cfg, &raw_nosync, &next_raw, slice));
    }
    print_row(&rows[2]);

    snprintf(rows[3].name, sizeof rows[3].name, "Put single (synced)");
    next_dkv = next_raw = 0;
    for (r = 0; r < cfg.rounds; r++) {
        record(&rows[3], dkv_put_single(&cfg, dkv_sync, &next_dkv, slice),
               raw_put_single(&cfg, &raw_sync, &next_raw, slice));
    }
    print_row(&rows[3]);

    snprintf(rows[4].name, sizeof rows[4].name,
             "Get (random key, value copied)");
    for (r = 0; r < cfg.rounds; r++) {
        record(&rows[4], dkv_get_random(&cfg, dkv_nosync, slice, 42 + r,
                                        pool),
               raw_get_random(&cfg, &raw_nosync, slice, 42 + r));
    }
    print_row(&rows[4]);

    snprintf(rows[5].name, sizeof rows[5].name,
             "Scan (keys/s, pages of %d)", SCAN_PAGE);
    for (r = 0; r < cfg.rounds; r++) {
        record(&rows[5], dkv_scan_pages(&cfg, dkv_nosync, slice, pool),
               raw_scan_pages(&cfg, &raw_nosync, slice));
    }
    print_row(&rows[5]);

    printf("\ntargets (informational): Get >= 0.70x raw: %.3fx %s; "
           "batched Put >= 0.50x raw: %.3fx %s (synced), %.3fx %s "
           "(no_sync)\n",
           rows[4].dkv / rows[4].raw, verdict(&rows[4], 0.7),
           rows[1].dkv / rows[1].raw, verdict(&rows[1], 0.5),
           rows[0].dkv / rows[0].raw, verdict(&rows[0], 0.5));

    dkv_close(dkv_sync);
    dkv_close(dkv_nosync);
    raw_close(&raw_sync);
    raw_close(&raw_nosync);
    cleanup();
    apr_pool_destroy(pool);
    return 0;
}
