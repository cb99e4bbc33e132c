/*
 * test_search.c -- unit tests of the label index and query evaluator
 * (src/engine/search.c), without the rest of the engine.
 *
 * Each test opens a private LMDB environment in a fresh directory, lets
 * search.c create its databases, and keeps a tiny item table of its own:
 * writes go through dkv_eng_search_index() (old and new labels, as the
 * engine passes them) and queries load items from the table through the
 * loader callback.  Results are compared as comma-joined key lists.
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include <apr_strings.h>
#include <lmdb.h>

#include "testutil.h"
#include "engine/search.h"

/* ------------------------------------------------------------- fixture */

#define TS_MAX_ITEMS 64
#define TS_MAX_LABELS 8

typedef struct ts_item {
    const char *key;
    const char *value;
    const char *entity;
    dkv_label_t labels[TS_MAX_LABELS];
    size_t nlabels;
    int expired;                /* in the index, but the loader hides it */
} ts_item_t;

typedef struct ts_store {
    apr_pool_t *pool;
    MDB_env *env;
    dkv_eng_search_t *search;
    ts_item_t items[TS_MAX_ITEMS];
    size_t nitems;
    unsigned loads;
} ts_store_t;

static ts_store_t *
ts_open(apr_pool_t *pool)
{
    ts_store_t *ts = apr_pcalloc(pool, sizeof(*ts));
    const char *dir = dkv_test_tempdir(pool);
    MDB_txn *txn;

    ts->pool = pool;
    DKV_ASSERT_INT_EQ(mdb_env_create(&ts->env), 0);
    DKV_ASSERT_INT_EQ(mdb_env_set_maxdbs(ts->env, 4), 0);
    DKV_ASSERT_INT_EQ(mdb_env_set_mapsize(ts->env, 32u << 20), 0);
    DKV_ASSERT_INT_EQ(mdb_env_open(ts->env, dir, MDB_NOSYNC, 0600), 0);
    DKV_ASSERT_INT_EQ(mdb_txn_begin(ts->env, NULL, 0, &txn), 0);
    DKV_ASSERT_OK(dkv_eng_search_init(&ts->search, txn, pool));
    DKV_ASSERT_INT_EQ(mdb_txn_commit(txn), 0);
    return ts;
}

static void
ts_close(ts_store_t *ts)
{
    mdb_env_close(ts->env);
    apr_pool_destroy(ts->pool);
}

static ts_item_t *
ts_find(ts_store_t *ts, const char *key)
{
    size_t i;

    for (i = 0; i < ts->nitems; i++) {
        if (strcmp(ts->items[i].key, key) == 0) {
            return &ts->items[i];
        }
    }
    return NULL;
}

/* Moves KEY's index entries from OLD (NULL: none) to NEW (NULL: none) in
 * one write transaction. */
static dkv_status_t
ts_index(ts_store_t *ts, const char *key, const ts_item_t *old,
         const ts_item_t *new_item)
{
    MDB_txn *txn;
    apr_pool_t *scratch;
    dkv_status_t rv;

    DKV_ASSERT_INT_EQ(mdb_txn_begin(ts->env, NULL, 0, &txn), 0);
    DKV_ASSERT_INT_EQ(apr_pool_create(&scratch, ts->pool), APR_SUCCESS);
    rv = dkv_eng_search_index(ts->search, txn, key, strlen(key),
                              old ? old->entity : NULL,
                              old ? old->labels : NULL,
                              old ? old->nlabels : 0,
                              new_item ? new_item->entity : NULL,
                              new_item ? new_item->labels : NULL,
                              new_item ? new_item->nlabels : 0, scratch);
    apr_pool_destroy(scratch);
    if (rv == DKV_OK) {
        DKV_ASSERT_INT_EQ(mdb_txn_commit(txn), 0);
    }
    else {
        mdb_txn_abort(txn);
    }
    return rv;
}

/* Writes KEY with ENTITY (may be NULL) and labels given as a string
 * "name=value,name=value"; a name starting with '~' is not indexed, and
 * a ';' in a value stands for a ','. */
static void
ts_put(ts_store_t *ts, const char *key, const char *entity,
       const char *labels)
{
    ts_item_t next, *cur = ts_find(ts, key);
    char *spec, *p, *last, *semi;

    memset(&next, 0, sizeof(next));
    next.key = apr_pstrdup(ts->pool, key);
    next.value = apr_psprintf(ts->pool, "value of %s", key);
    next.entity = entity ? apr_pstrdup(ts->pool, entity) : NULL;
    spec = apr_pstrdup(ts->pool, labels ? labels : "");
    for (p = apr_strtok(spec, ",", &last); p != NULL;
         p = apr_strtok(NULL, ",", &last)) {
        char *eq = strchr(p, '=');
        dkv_label_t *l = &next.labels[next.nlabels++];

        DKV_ASSERT_NOT_NULL(eq);
        DKV_ASSERT_TRUE(next.nlabels <= TS_MAX_LABELS);
        *eq = '\0';
        for (semi = eq + 1; (semi = strchr(semi, ';')) != NULL; ) {
            *semi = ',';
        }
        l->indexed = p[0] != '~';
        l->name = p[0] == '~' ? p + 1 : p;
        l->value = eq + 1;
    }
    DKV_ASSERT_OK(ts_index(ts, key, cur, &next));
    if (cur == NULL) {
        DKV_ASSERT_TRUE(ts->nitems < TS_MAX_ITEMS);
        cur = &ts->items[ts->nitems++];
    }
    *cur = next;
}

static void
ts_del(ts_store_t *ts, const char *key)
{
    ts_item_t *cur = ts_find(ts, key);

    DKV_ASSERT_NOT_NULL(cur);
    DKV_ASSERT_OK(ts_index(ts, key, cur, NULL));
    *cur = ts->items[--ts->nitems];
}

/* The loader: copies the table's item into POOL, as the engine does. */
static dkv_status_t
ts_load(void *baton, dkv_item_t *item, const void *key, size_t key_len,
        apr_pool_t *pool)
{
    ts_store_t *ts = baton;
    const ts_item_t *it;
    dkv_label_t *labels;
    char *k = apr_pstrmemdup(pool, key, key_len);
    size_t i;

    ts->loads++;
    it = ts_find(ts, k);
    if (it == NULL || it->expired) {
        return DKV_ENOTFOUND;
    }
    memset(item, 0, sizeof(*item));
    item->status = DKV_OK;
    item->key = k;
    item->key_len = key_len;
    item->value = apr_pstrdup(pool, it->value);
    item->value_len = strlen(it->value);
    item->version = 1;
    item->entity = it->entity ? apr_pstrdup(pool, it->entity) : NULL;
    item->content_type = "text/plain";
    labels = apr_pcalloc(pool, (it->nlabels + 1) * sizeof(*labels));
    for (i = 0; i < it->nlabels; i++) {
        labels[i].name = apr_pstrdup(pool, it->labels[i].name);
        labels[i].value = apr_pstrdup(pool, it->labels[i].value);
        labels[i].indexed = it->labels[i].indexed;
    }
    item->labels = labels;
    item->nlabels = it->nlabels;
    return DKV_OK;
}

/* Runs one page of QUERY. */
static dkv_status_t
ts_page(dkv_page_t **page, ts_store_t *ts, const dkv_query_t *query,
        const dkv_search_opts_t *opts, apr_pool_t *pool)
{
    MDB_txn *txn;
    dkv_status_t rv;

    DKV_ASSERT_INT_EQ(mdb_txn_begin(ts->env, NULL, MDB_RDONLY, &txn), 0);
    rv = dkv_eng_search_query(page, ts->search, txn, query, opts, ts_load,
                              ts, 77, pool);
    mdb_txn_abort(txn);
    return rv;
}

/* Runs QUERY to the end with pages of PAGE_SIZE (0: default) and returns
 * the keys, comma-joined; NULL (and a failed assertion) on an error or a
 * key returned twice. */
static const char *
ts_query(ts_store_t *ts, const dkv_query_t *query, size_t page_size)
{
    apr_pool_t *pool;
    dkv_search_opts_t opts;
    dkv_page_t *page;
    const char *out = "";
    const char *res;
    size_t i, pages = 0;

    DKV_ASSERT_INT_EQ(apr_pool_create(&pool, ts->pool), APR_SUCCESS);
    memset(&opts, 0, sizeof(opts));
    opts.page_size = page_size;
    for (;;) {
        dkv_status_t rv = ts_page(&page, ts, query, &opts, pool);

        DKV_EXPECT_OK(rv);
        if (rv != DKV_OK) {
            apr_pool_destroy(pool);
            return NULL;
        }
        DKV_EXPECT_UINT_EQ(page->revision, 77);
        DKV_EXPECT_TRUE(page_size == 0 || page->count <= page_size);
        for (i = 0; i < page->count; i++) {
            const dkv_item_t *it = &page->items[i];
            char *k = apr_pstrmemdup(pool, it->key, it->key_len);
            char *probe = apr_pstrcat(pool, ",", out, ",", NULL);

            DKV_EXPECT_INT_EQ(it->status, DKV_OK);
            DKV_EXPECT_TRUE(strstr(probe, apr_pstrcat(pool, ",", k, ",",
                                                      NULL)) == NULL);
            out = apr_pstrcat(pool, out, *out ? "," : "", k, NULL);
        }
        if (!page->more) {
            DKV_EXPECT_TRUE(page->next == NULL && page->next_len == 0);
            break;
        }
        DKV_ASSERT_TRUE(page->count > 0);
        DKV_ASSERT_TRUE(page->next != NULL && page->next_len > 0);
        DKV_ASSERT_TRUE(++pages < 1000);
        opts.cursor = page->next;
        opts.cursor_len = page->next_len;
    }
    res = apr_pstrdup(ts->pool, out);
    apr_pool_destroy(pool);
    return res;
}

/* QUERY's keys, checked against EXPECTED with pages of every size from 1
 * to one more than the number of results, and with the default size. */
#define TS_EXPECT(ts, query, expected) \
    ts_expect((ts), (query), (expected), __LINE__)

static void
ts_expect(ts_store_t *ts, const dkv_query_t *query, const char *expected,
          unsigned line)
{
    const char *got = ts_query(ts, query, 0);
    size_t n = 1, ps;
    const char *p;

    if (got == NULL || strcmp(got, expected) != 0) {
        fprintf(stderr, "\n  line %u: got [%s], expected [%s]\n", line,
                got ? got : "(error)", expected);
    }
    DKV_EXPECT_STR_EQ(got, expected);
    for (p = expected; *p; p++) {
        n += *p == ',';
    }
    for (ps = 1; ps <= n + 1; ps++) {
        got = ts_query(ts, query, ps);
        if (got == NULL || strcmp(got, expected) != 0) {
            fprintf(stderr, "\n  line %u, page size %lu: got [%s], "
                    "expected [%s]\n", line, (unsigned long)ps,
                    got ? got : "(error)", expected);
        }
        DKV_EXPECT_STR_EQ(got, expected);
    }
}

/* Number of entries in one of search.c's databases. */
static size_t
ts_db_entries(ts_store_t *ts, const char *name)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st;

    DKV_ASSERT_INT_EQ(mdb_txn_begin(ts->env, NULL, MDB_RDONLY, &txn), 0);
    DKV_ASSERT_INT_EQ(mdb_dbi_open(txn, name, 0, &dbi), 0);
    DKV_ASSERT_INT_EQ(mdb_stat(txn, dbi, &st), 0);
    mdb_txn_abort(txn);
    return st.ms_entries;
}

/* The customers every query test starts from. */
static ts_store_t *
ts_customers(void)
{
    ts_store_t *ts = ts_open(dkv_test_pool());

    ts_put(ts, "c1", "customer",
           "city=London,age=30,email=user1@example.com");
    ts_put(ts, "c2", "customer",
           "city=Berlin,age=32,email=user2@example.com");
    ts_put(ts, "c3", "customer", "city=London,age=30.5");
    ts_put(ts, "c4", "customer", "city=Lahore,age=100");
    ts_put(ts, "c5", "customer", "city=Paris,age=3");
    ts_put(ts, "c6", "customer", "city=London,age=abc");
    ts_put(ts, "c7", "customer", "city=Berlin");
    ts_put(ts, "c8", "customer", "city=Berlin,age=28,~tag=vip");
    ts_put(ts, "c9", "customer", "city=Oslo,age=-4.5");
    ts_put(ts, "o1", "order", "city=London,age=30");
    ts_put(ts, "n1", NULL, "city=London,age=30");
    return ts;
}

/* Clause builders. */
static dkv_clause_t
eq(const char *label, const char *value)
{
    dkv_clause_t c;

    memset(&c, 0, sizeof(c));
    c.type = DKV_CLAUSE_EQ;
    c.label = label;
    c.value = value;
    return c;
}

static dkv_clause_t
range(const char *label, const char *low, const char *high)
{
    dkv_clause_t c;

    memset(&c, 0, sizeof(c));
    c.type = DKV_CLAUSE_RANGE;
    c.label = label;
    c.low = low;
    c.high = high;
    return c;
}

static dkv_clause_t
prefix(const char *label, const char *value)
{
    dkv_clause_t c = eq(label, value);

    c.type = DKV_CLAUSE_PREFIX;
    return c;
}

static dkv_clause_t
group(dkv_clause_type_t type, const dkv_clause_t *kids, size_t n)
{
    dkv_clause_t c;

    memset(&c, 0, sizeof(c));
    c.type = type;
    c.children = kids;
    c.nchildren = n;
    return c;
}

/* A query on "customer" with condition WHERE (may be NULL). */
static dkv_query_t
q_where(const dkv_clause_t *where)
{
    dkv_query_t q;

    memset(&q, 0, sizeof(q));
    q.entity = "customer";
    q.where = where;
    return q;
}

/* --------------------------------------------------------------- tests */

static void
all_keys_of_entity(void)
{
    ts_store_t *ts = ts_customers();
    dkv_query_t q = q_where(NULL);

    TS_EXPECT(ts, &q, "c1,c2,c3,c4,c5,c6,c7,c8,c9");
    q.entity = "order";
    TS_EXPECT(ts, &q, "o1");
    q.entity = "nothing";
    TS_EXPECT(ts, &q, "");
    ts_close(ts);
}

static void
eq_string_and_numeric(void)
{
    ts_store_t *ts = ts_customers();
    dkv_clause_t c = eq("city", "London");
    dkv_query_t q = q_where(&c);

    TS_EXPECT(ts, &q, "c1,c3,c6");
    c = eq("city", "london");
    TS_EXPECT(ts, &q, "");
    c = eq("age", "30");
    TS_EXPECT(ts, &q, "c1");
    c = eq("age", "30.0");          /* numerically equal */
    TS_EXPECT(ts, &q, "c1");
    c = eq("age", "3e1");
    TS_EXPECT(ts, &q, "c1");
    c = eq("age", "+30.000");
    TS_EXPECT(ts, &q, "c1");
    c = eq("age", "30.5");
    TS_EXPECT(ts, &q, "c3");
    c = eq("age", "abc");
    TS_EXPECT(ts, &q, "c6");
    c = eq("age", " 30");           /* not a number: bytes */
    TS_EXPECT(ts, &q, "");
    c = eq("nolabel", "x");
    TS_EXPECT(ts, &q, "");
    ts_close(ts);
}

static void
range_numeric(void)
{
    ts_store_t *ts = ts_customers();
    dkv_clause_t c = range("age", "28", "32");
    dkv_query_t q = q_where(&c);

    /* 28, 30, 30.5, 32 -- not 100, 3, "abc", -4.5 */
    TS_EXPECT(ts, &q, "c1,c2,c3,c8");
    c = range("age", "30", "30");
    TS_EXPECT(ts, &q, "c1");
    c = range("age", "31", NULL);
    TS_EXPECT(ts, &q, "c2,c4");
    c = range("age", NULL, "3");
    TS_EXPECT(ts, &q, "c5,c9");
    c = range("age", "-5", "-4.5");
    TS_EXPECT(ts, &q, "c9");
    c = range("age", "-1e308", "1e308");
    TS_EXPECT(ts, &q, "c1,c2,c3,c4,c5,c8,c9");
    c = range("age", "40", "20");   /* empty */
    TS_EXPECT(ts, &q, "");
    ts_close(ts);
}

static void
range_string(void)
{
    ts_store_t *ts = ts_customers();
    dkv_clause_t c = range("city", "Berlin", "Lahore");
    dkv_query_t q = q_where(&c);

    TS_EXPECT(ts, &q, "c2,c4,c7,c8");
    c = range("city", "M", NULL);
    TS_EXPECT(ts, &q, "c5,c9");
    c = range("city", NULL, "Lahore");
    TS_EXPECT(ts, &q, "c2,c4,c7,c8");
    c = range("city", "L", "Lz");
    TS_EXPECT(ts, &q, "c1,c3,c4,c6");
    /* A non-numeric bound: the whole range compares bytes, so "3" and
     * "30" are inside ["28", "abc"] but "100" and "-4.5" are not. */
    c = range("age", "28", "abc");
    TS_EXPECT(ts, &q, "c1,c2,c3,c5,c6,c8");
    c = range("age", "a", NULL);
    TS_EXPECT(ts, &q, "c6");
    ts_close(ts);
}

static void
prefix_clause(void)
{
    ts_store_t *ts = ts_customers();
    dkv_clause_t c = prefix("email", "user1");
    dkv_query_t q = q_where(&c);

    TS_EXPECT(ts, &q, "c1");
    c = prefix("email", "user");
    TS_EXPECT(ts, &q, "c1,c2");
    c = prefix("city", "L");
    TS_EXPECT(ts, &q, "c1,c3,c4,c6");
    c = prefix("city", "");
    TS_EXPECT(ts, &q, "c1,c2,c3,c4,c5,c6,c7,c8,c9");
    c = prefix("age", "3");         /* bytes, not numbers */
    TS_EXPECT(ts, &q, "c1,c2,c3,c5");
    c = prefix("city", "Londonx");
    TS_EXPECT(ts, &q, "");
    ts_close(ts);
}

static void
and_or_not(void)
{
    ts_store_t *ts = ts_customers();
    dkv_clause_t kids[3], c;
    dkv_query_t q = q_where(&c);

    kids[0] = eq("city", "Berlin");
    kids[1] = range("age", "28", "32");
    c = group(DKV_CLAUSE_AND, kids, 2);
    TS_EXPECT(ts, &q, "c2,c8");

    kids[0] = eq("city", "Paris");
    kids[1] = eq("age", "100");
    c = group(DKV_CLAUSE_OR, kids, 2);
    TS_EXPECT(ts, &q, "c4,c5");

    kids[0] = eq("city", "London");
    c = group(DKV_CLAUSE_NOT, kids, 1);
    TS_EXPECT(ts, &q, "c2,c4,c5,c7,c8,c9");

    /* NOT also matches keys without the label. */
    kids[0] = range("age", NULL, "1000");
    c = group(DKV_CLAUSE_NOT, kids, 1);
    TS_EXPECT(ts, &q, "c6,c7");

    /* A single child. */
    kids[0] = eq("city", "Oslo");
    c = group(DKV_CLAUSE_AND, kids, 1);
    TS_EXPECT(ts, &q, "c9");
    c = group(DKV_CLAUSE_OR, kids, 1);
    TS_EXPECT(ts, &q, "c9");

    /* OR with the same key from several children: once. */
    kids[0] = eq("city", "London");
    kids[1] = range("age", "30", "31");
    kids[2] = prefix("email", "user");
    c = group(DKV_CLAUSE_OR, kids, 3);
    TS_EXPECT(ts, &q, "c1,c2,c3,c6");
    ts_close(ts);
}

static void
nesting(void)
{
    ts_store_t *ts = ts_customers();
    dkv_clause_t top[2], inner[2], notkid, orkids[2], c;
    dkv_query_t q = q_where(&c);

    /* age in 20..65 and not city = Lahore (the reference's example) */
    notkid = eq("city", "Lahore");
    top[0] = range("age", "20", "65");
    top[1] = group(DKV_CLAUSE_NOT, &notkid, 1);
    c = group(DKV_CLAUSE_AND, top, 2);
    TS_EXPECT(ts, &q, "c1,c2,c3,c8");

    /* (city = London and age >= 30.5) or (city = Berlin and not age) */
    inner[0] = eq("city", "London");
    inner[1] = range("age", "30.5", NULL);
    orkids[0] = group(DKV_CLAUSE_AND, inner, 2);
    top[0] = eq("city", "Berlin");
    notkid = prefix("age", "");
    top[1] = group(DKV_CLAUSE_NOT, &notkid, 1);
    orkids[1] = group(DKV_CLAUSE_AND, top, 2);
    c = group(DKV_CLAUSE_OR, orkids, 2);
    TS_EXPECT(ts, &q, "c3,c7");

    /* OR with a non-indexable child: every key of the entity is a
     * candidate; same answer. */
    orkids[0] = eq("city", "Paris");
    notkid = prefix("city", "");
    orkids[1] = group(DKV_CLAUSE_NOT, &notkid, 1);
    c = group(DKV_CLAUSE_OR, orkids, 2);
    TS_EXPECT(ts, &q, "c5");

    /* not not */
    notkid = eq("city", "Oslo");
    inner[0] = group(DKV_CLAUSE_NOT, &notkid, 1);
    c = group(DKV_CLAUSE_NOT, inner, 1);
    TS_EXPECT(ts, &q, "c9");
    ts_close(ts);
}

static void
order_by(void)
{
    ts_store_t *ts = ts_customers();
    dkv_order_t order[2];
    dkv_query_t q = q_where(NULL);

    q.order = order;
    q.norder = 1;
    order[0].label = "age";
    order[0].descending = 0;
    /* numbers, then strings, then missing; ties by key */
    TS_EXPECT(ts, &q, "c9,c5,c8,c1,c3,c2,c4,c6,c7");
    order[0].descending = 1;
    /* numbers first still, largest first; missing last */
    TS_EXPECT(ts, &q, "c4,c2,c3,c1,c8,c5,c9,c6,c7");

    order[0].label = "city";
    order[0].descending = 0;
    order[1].label = "age";
    order[1].descending = 1;
    q.norder = 2;
    TS_EXPECT(ts, &q, "c2,c8,c7,c4,c3,c1,c6,c9,c5");
    order[0].descending = 1;
    order[1].descending = 0;
    TS_EXPECT(ts, &q, "c5,c9,c1,c3,c6,c4,c8,c2,c7");

    /* Equal numbers with different text tie; then the key decides. */
    ts_put(ts, "c0", "customer", "city=Rome,age=30.0");
    q.norder = 1;
    order[0].label = "age";
    order[0].descending = 0;
    TS_EXPECT(ts, &q, "c9,c5,c8,c0,c1,c3,c2,c4,c6,c7");

    /* A label nobody has: key order. */
    order[0].label = "none";
    TS_EXPECT(ts, &q, "c0,c1,c2,c3,c4,c5,c6,c7,c8,c9");
    ts_close(ts);
}

static void
limit_and_paging(void)
{
    ts_store_t *ts = ts_customers();
    dkv_order_t order = { "age", 1 };
    dkv_clause_t c = range("age", "0", NULL);
    dkv_query_t q = q_where(&c);
    apr_pool_t *pool = dkv_test_pool();
    dkv_search_opts_t opts;
    dkv_page_t *page;

    q.limit = 3;
    TS_EXPECT(ts, &q, "c1,c2,c3");
    q.order = &order;
    q.norder = 1;
    TS_EXPECT(ts, &q, "c4,c2,c3");
    q.limit = 100;
    TS_EXPECT(ts, &q, "c4,c2,c3,c1,c8,c5");

    /* The last page of a limit says no more. */
    q.limit = 2;
    memset(&opts, 0, sizeof(opts));
    opts.page_size = 2;
    DKV_ASSERT_OK(ts_page(&page, ts, &q, &opts, pool));
    DKV_EXPECT_UINT_EQ(page->count, 2);
    DKV_EXPECT_INT_EQ(page->more, 0);
    opts.page_size = 1;
    DKV_ASSERT_OK(ts_page(&page, ts, &q, &opts, pool));
    DKV_EXPECT_UINT_EQ(page->count, 1);
    DKV_EXPECT_INT_EQ(page->more, 1);
    opts.cursor = page->next;
    opts.cursor_len = page->next_len;
    DKV_ASSERT_OK(ts_page(&page, ts, &q, &opts, pool));
    DKV_EXPECT_UINT_EQ(page->count, 1);
    DKV_EXPECT_MEM_EQ(page->items[0].key, page->items[0].key_len, "c2", 2);
    DKV_EXPECT_INT_EQ(page->more, 0);

    /* Exactly a page of results: no further page. */
    q.limit = 0;
    q.norder = 0;
    c = eq("city", "London");
    opts.cursor = NULL;
    opts.cursor_len = 0;
    opts.page_size = 3;
    DKV_ASSERT_OK(ts_page(&page, ts, &q, &opts, pool));
    DKV_EXPECT_UINT_EQ(page->count, 3);
    DKV_EXPECT_INT_EQ(page->more, 0);
    apr_pool_destroy(pool);
    ts_close(ts);
}

/* Changes between pages: keys unchanged are neither skipped nor
 * repeated, whatever happens around the cursor. */
static void
paging_across_changes(void)
{
    ts_store_t *ts = ts_customers();
    dkv_order_t order = { "age", 0 };
    dkv_query_t q = q_where(NULL);
    apr_pool_t *pool = dkv_test_pool();
    dkv_search_opts_t opts;
    dkv_page_t *page;
    const char *rest = "";
    size_t i;

    q.order = &order;
    q.norder = 1;
    /* full order: c9,c5,c8,c1,c3,c2,c4,c6,c7 */
    memset(&opts, 0, sizeof(opts));
    opts.page_size = 4;
    DKV_ASSERT_OK(ts_page(&page, ts, &q, &opts, pool));
    DKV_ASSERT_UINT_EQ(page->count, 4);
    DKV_EXPECT_MEM_EQ(page->items[3].key, page->items[3].key_len, "c1", 2);

    /* Remove a returned key, add keys before and after the cursor, remove
     * the last key returned itself. */
    ts_del(ts, "c5");
    ts_del(ts, "c1");
    ts_put(ts, "a0", "customer", "age=1");
    ts_put(ts, "z0", "customer", "age=30.25");
    opts.cursor = page->next;
    opts.cursor_len = page->next_len;
    opts.page_size = 100;
    DKV_ASSERT_OK(ts_page(&page, ts, &q, &opts, pool));
    for (i = 0; i < page->count; i++) {
        rest = apr_pstrcat(pool, rest, i ? "," : "",
                           apr_pstrmemdup(pool, page->items[i].key,
                                          page->items[i].key_len), NULL);
    }
    DKV_EXPECT_STR_EQ(rest, "z0,c3,c2,c4,c6,c7");
    apr_pool_destroy(pool);
    ts_close(ts);
}

static void
projection_and_keys_only(void)
{
    ts_store_t *ts = ts_customers();
    const char *sel[] = { "email", "tag", "nosuch" };
    dkv_clause_t c = eq("city", "Berlin");
    dkv_query_t q = q_where(&c);
    apr_pool_t *pool = dkv_test_pool();
    dkv_page_t *page;
    const dkv_item_t *it;

    /* Full items. */
    DKV_ASSERT_OK(ts_page(&page, ts, &q, NULL, pool));
    DKV_ASSERT_UINT_EQ(page->count, 3);
    it = &page->items[2];
    DKV_EXPECT_MEM_EQ(it->key, it->key_len, "c8", 2);
    DKV_EXPECT_MEM_EQ(it->value, it->value_len, "value of c8", 11);
    DKV_EXPECT_STR_EQ(it->entity, "customer");
    DKV_EXPECT_UINT_EQ(it->nlabels, 3);
    DKV_EXPECT_INT_EQ(page->more, 0);

    /* Projection: only the selected labels (indexed or not), no value. */
    q.select = sel;
    q.nselect = 3;
    DKV_ASSERT_OK(ts_page(&page, ts, &q, NULL, pool));
    DKV_ASSERT_UINT_EQ(page->count, 3);
    it = &page->items[0];
    DKV_EXPECT_MEM_EQ(it->key, it->key_len, "c2", 2);
    DKV_EXPECT_TRUE(it->value == NULL && it->value_len == 0);
    DKV_EXPECT_STR_EQ(it->entity, "customer");
    DKV_EXPECT_STR_EQ(it->content_type, "text/plain");
    DKV_EXPECT_UINT_EQ(it->version, 1);
    DKV_ASSERT_UINT_EQ(it->nlabels, 1);
    DKV_EXPECT_STR_EQ(it->labels[0].name, "email");
    DKV_EXPECT_STR_EQ(it->labels[0].value, "user2@example.com");
    it = &page->items[1];
    DKV_EXPECT_UINT_EQ(it->nlabels, 0);
    it = &page->items[2];
    DKV_ASSERT_UINT_EQ(it->nlabels, 1);
    DKV_EXPECT_STR_EQ(it->labels[0].name, "tag");
    DKV_EXPECT_INT_EQ(it->labels[0].indexed, 0);

    /* Keys only wins over a projection. */
    q.keys_only = 1;
    ts->loads = 0;
    DKV_ASSERT_OK(ts_page(&page, ts, &q, NULL, pool));
    DKV_ASSERT_UINT_EQ(page->count, 3);
    DKV_EXPECT_UINT_EQ(ts->loads, 3);   /* evaluation only, no reload */
    for (it = page->items; it < page->items + 3; it++) {
        DKV_EXPECT_INT_EQ(it->status, DKV_OK);
        DKV_EXPECT_UINT_EQ(it->key_len, 2);
        DKV_EXPECT_TRUE(it->value == NULL);
        DKV_EXPECT_TRUE(it->labels == NULL);
        DKV_EXPECT_UINT_EQ(it->nlabels, 0);
        DKV_EXPECT_TRUE(it->entity == NULL);
    }
    apr_pool_destroy(pool);
    ts_close(ts);
}

static void
reindex_on_change(void)
{
    ts_store_t *ts = ts_customers();
    dkv_clause_t c = eq("age", "30");
    dkv_query_t q = q_where(&c);

    ts_put(ts, "c1", "customer", "city=London,age=40");
    TS_EXPECT(ts, &q, "");
    c = eq("age", "40");
    TS_EXPECT(ts, &q, "c1");
    c = prefix("email", "user");
    TS_EXPECT(ts, &q, "c2");

    /* Same labels again: nothing changes. */
    ts_put(ts, "c1", "customer", "city=London,age=40");
    c = eq("age", "40");
    TS_EXPECT(ts, &q, "c1");

    /* A label turned non-indexed stops matching. */
    ts_put(ts, "c1", "customer", "city=London,~age=40");
    TS_EXPECT(ts, &q, "");

    /* Another entity: gone from this one, found in the other. */
    ts_put(ts, "c2", "order", "city=Berlin,age=32");
    c = eq("city", "Berlin");
    TS_EXPECT(ts, &q, "c7,c8");
    q.entity = "order";
    TS_EXPECT(ts, &q, "c2");
    q.where = NULL;
    TS_EXPECT(ts, &q, "c2,o1");

    /* No entity any more: not searchable. */
    ts_put(ts, "c2", NULL, "city=Berlin,age=32");
    TS_EXPECT(ts, &q, "o1");

    /* A label given twice: both values indexed, both removed. */
    ts_put(ts, "d1", "customer", "tag=a,tag=b,tag=30,tag=30.0");
    q.entity = "customer";
    q.where = &c;
    c = eq("tag", "b");
    TS_EXPECT(ts, &q, "d1");
    c = eq("tag", "30");
    TS_EXPECT(ts, &q, "d1");
    ts_put(ts, "d1", "customer", "tag=a");
    c = eq("tag", "b");
    TS_EXPECT(ts, &q, "");
    c = eq("tag", "30");
    TS_EXPECT(ts, &q, "");
    c = eq("tag", "a");
    TS_EXPECT(ts, &q, "d1");
    ts_close(ts);
}

static void
removal_leaves_nothing(void)
{
    ts_store_t *ts = ts_customers();
    dkv_clause_t c = eq("city", "London");
    dkv_query_t q = q_where(&c);
    const char *keys[] = { "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8",
                           "c9", "o1", "n1" };
    size_t i;

    DKV_EXPECT_UINT_EQ(ts_db_entries(ts, "search.entity"), 10);
    ts_del(ts, "c3");
    TS_EXPECT(ts, &q, "c1,c6");
    q.where = NULL;
    TS_EXPECT(ts, &q, "c1,c2,c4,c5,c6,c7,c8,c9");
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (ts_find(ts, keys[i]) != NULL) {
            ts_del(ts, keys[i]);
        }
    }
    TS_EXPECT(ts, &q, "");
    DKV_EXPECT_UINT_EQ(ts_db_entries(ts, "search.entity"), 0);
    DKV_EXPECT_UINT_EQ(ts_db_entries(ts, "search.label"), 0);
    ts_close(ts);
}

static void
non_indexed_labels_ignored(void)
{
    ts_store_t *ts = ts_customers();
    dkv_clause_t c = eq("tag", "vip"), k;
    dkv_query_t q = q_where(&c);
    dkv_order_t order = { "tag", 0 };

    TS_EXPECT(ts, &q, "");
    c = prefix("tag", "");
    TS_EXPECT(ts, &q, "");
    k = eq("tag", "vip");
    c = group(DKV_CLAUSE_NOT, &k, 1);
    TS_EXPECT(ts, &q, "c1,c2,c3,c4,c5,c6,c7,c8,c9");
    q.where = NULL;
    q.order = &order;
    q.norder = 1;
    TS_EXPECT(ts, &q, "c1,c2,c3,c4,c5,c6,c7,c8,c9");
    ts_close(ts);
}

static void
absent_items_skipped(void)
{
    ts_store_t *ts = ts_customers();
    dkv_clause_t c = eq("city", "London");
    dkv_query_t q = q_where(&c);

    ts_find(ts, "c3")->expired = 1;
    TS_EXPECT(ts, &q, "c1,c6");
    q.where = NULL;
    TS_EXPECT(ts, &q, "c1,c2,c4,c5,c6,c7,c8,c9");
    ts_close(ts);
}

static void
numbers(void)
{
    ts_store_t *ts = ts_open(dkv_test_pool());
    dkv_clause_t c = range("n", "-1e308", "1e308");
    dkv_query_t q = q_where(&c);
    dkv_order_t order = { "n", 0 };

    ts_put(ts, "a", "customer", "n=1e3");
    ts_put(ts, "b", "customer", "n=.5");
    ts_put(ts, "c", "customer", "n=5.");
    ts_put(ts, "d", "customer", "n=+5");
    ts_put(ts, "e", "customer", "n= 5");
    ts_put(ts, "f", "customer", "n=0x10");
    ts_put(ts, "g", "customer", "n=inf");
    ts_put(ts, "h", "customer", "n=nan");
    ts_put(ts, "i", "customer", "n=1e400");
    ts_put(ts, "j", "customer", "n=1e");
    ts_put(ts, "k", "customer", "n=-0");
    ts_put(ts, "l", "customer", "n=0");
    ts_put(ts, "m", "customer", "n=-1E-2");
    ts_put(ts, "n", "customer", "n=.");
    ts_put(ts, "o", "customer", "n=5 ");
    ts_put(ts, "p", "customer", "n=-");
    ts_put(ts, "q", "customer", "n=");
    TS_EXPECT(ts, &q, "a,b,c,d,k,l,m");
    c = eq("n", "0");
    TS_EXPECT(ts, &q, "k,l");
    c = eq("n", "-0.0");
    TS_EXPECT(ts, &q, "k,l");
    c = eq("n", "5");
    TS_EXPECT(ts, &q, "c,d");
    c = eq("n", "1000");
    TS_EXPECT(ts, &q, "a");
    c = eq("n", "inf");
    TS_EXPECT(ts, &q, "g");
    c = eq("n", "");
    TS_EXPECT(ts, &q, "q");
    c = range("n", "-0.01", "0");
    TS_EXPECT(ts, &q, "k,l,m");
    q.where = NULL;
    q.order = &order;
    q.norder = 1;
    TS_EXPECT(ts, &q, "m,k,l,b,c,d,a,q,e,p,n,f,j,i,o,g,h");
    ts_close(ts);
}

/* Numbers do not depend on the C library's locale: under a locale whose
 * decimal point is ",", "30.5" is still thirty and a half and "30,5" is
 * not a number.  Skipped (with a note) when no such locale is installed. */
static void
numbers_under_locale(void)
{
    static const char *const names[] = {
        "de_DE.UTF-8", "de_DE.utf8", "de_DE", "fr_FR.UTF-8", "fr_FR.utf8",
        "German_Germany.1252", NULL
    };
    ts_store_t *ts;
    dkv_clause_t c = range("age", "30.25", "30.75");
    dkv_query_t q = q_where(&c);
    size_t i;

    for (i = 0; names[i] != NULL; i++) {
        if (setlocale(LC_NUMERIC, names[i]) != NULL
            && strcmp(localeconv()->decimal_point, ",") == 0) {
            break;
        }
    }
    if (names[i] == NULL) {
        setlocale(LC_NUMERIC, "C");
        fprintf(stderr, "(skipped: no locale with a decimal comma) ");
        return;
    }
    ts = ts_customers();
    ts_put(ts, "d1", "customer", "age=30;5");     /* "30,5": a string */
    TS_EXPECT(ts, &q, "c3");
    c = eq("age", "30,5");
    TS_EXPECT(ts, &q, "d1");
    c = eq("age", "30.50");
    TS_EXPECT(ts, &q, "c3");
    c = range("age", "-4.6", "-4.4");
    TS_EXPECT(ts, &q, "c9");
    setlocale(LC_NUMERIC, "C");
    ts_close(ts);
}

static void
validation(void)
{
    ts_store_t *ts = ts_customers();
    apr_pool_t *pool = dkv_test_pool();
    dkv_clause_t c, kids[2], deep[40];
    dkv_query_t q = q_where(&c);
    dkv_order_t order = { NULL, 0 };
    const char *sel[] = { NULL };
    dkv_search_opts_t opts;
    dkv_page_t *page = NULL;
    char longname[DKV_MAX_LABEL_NAME + 2];
    size_t i;

    memset(&opts, 0, sizeof(opts));
#define BAD(q_, o_) DKV_EXPECT_STATUS(ts_page(&page, ts, (q_), (o_), pool), \
                                      DKV_EINVAL)
    BAD(NULL, NULL);
    q.entity = NULL;
    c = eq("city", "x");
    BAD(&q, NULL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "entity") != NULL);
    q.entity = "";
    BAD(&q, NULL);
    q.entity = "customer";

    c = eq("city", NULL);
    BAD(&q, NULL);
    c = eq(NULL, "x");
    BAD(&q, NULL);
    c = prefix("city", NULL);
    BAD(&q, NULL);
    c = range("age", NULL, NULL);
    BAD(&q, NULL);
    c = range(NULL, "1", "2");
    BAD(&q, NULL);
    c = group(DKV_CLAUSE_AND, NULL, 0);
    BAD(&q, NULL);
    c = group(DKV_CLAUSE_OR, kids, 0);
    BAD(&q, NULL);
    kids[0] = eq("city", "x");
    kids[1] = eq("city", "y");
    c = group(DKV_CLAUSE_NOT, kids, 2);
    BAD(&q, NULL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "NOT") != NULL);
    c = group(DKV_CLAUSE_NOT, NULL, 1);
    BAD(&q, NULL);
    kids[1] = eq("city", NULL);     /* a bad grandchild */
    c = group(DKV_CLAUSE_OR, kids, 2);
    BAD(&q, NULL);
    memset(&c, 0, sizeof(c));
    c.type = (dkv_clause_type_t)42;
    BAD(&q, NULL);
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    c = eq(longname, "x");
    BAD(&q, NULL);

    /* Depth: 32 levels are fine, 40 are not. */
    for (i = 0; i < 39; i++) {
        deep[i] = group(DKV_CLAUSE_NOT, &deep[i + 1], 1);
    }
    deep[39] = eq("city", "London");
    q.where = &deep[39 - 31];
    DKV_EXPECT_OK(ts_page(&page, ts, &q, NULL, pool));
    q.where = &deep[0];
    BAD(&q, NULL);
    q.where = NULL;

    q.norder = 1;
    BAD(&q, NULL);                  /* order NULL */
    q.order = &order;
    BAD(&q, NULL);                  /* label NULL */
    q.norder = 0;
    q.nselect = 1;
    BAD(&q, NULL);                  /* select NULL */
    q.select = sel;
    BAD(&q, NULL);                  /* name NULL */
    q.nselect = 0;

    opts.page_size = 10001;
    BAD(&q, &opts);
    opts.page_size = 10000;
    DKV_EXPECT_OK(ts_page(&page, ts, &q, &opts, pool));
    ts_close(ts);
    apr_pool_destroy(pool);
#undef BAD
}

static void
bad_cursors(void)
{
    ts_store_t *ts = ts_customers();
    apr_pool_t *pool = dkv_test_pool();
    dkv_clause_t c = range("age", "0", NULL);
    dkv_query_t q = q_where(&c), other;
    dkv_order_t order = { "age", 0 };
    dkv_search_opts_t opts;
    dkv_page_t *page;
    unsigned char buf[600];
    size_t len;

    q.order = &order;
    q.norder = 1;
    memset(&opts, 0, sizeof(opts));
    opts.page_size = 2;
    DKV_ASSERT_OK(ts_page(&page, ts, &q, &opts, pool));
    DKV_ASSERT_TRUE(page->more);
    len = page->next_len;
    DKV_ASSERT_TRUE(len <= sizeof(buf));
    memcpy(buf, page->next, len);
    opts.cursor = buf;

    /* Every truncation is refused. */
    for (opts.cursor_len = 1; opts.cursor_len < len; opts.cursor_len++) {
        DKV_EXPECT_STATUS(ts_page(&page, ts, &q, &opts, pool), DKV_EINVAL);
    }
    opts.cursor_len = len + 1;
    buf[len] = 0;
    DKV_EXPECT_STATUS(ts_page(&page, ts, &q, &opts, pool), DKV_EINVAL);
    opts.cursor_len = len;
    DKV_EXPECT_OK(ts_page(&page, ts, &q, &opts, pool));

    /* Another version, another query. */
    buf[0] ^= 0x80;
    DKV_EXPECT_STATUS(ts_page(&page, ts, &q, &opts, pool), DKV_EINVAL);
    buf[0] ^= 0x80;
    other = q;
    order.descending = 1;
    DKV_EXPECT_STATUS(ts_page(&page, ts, &other, &opts, pool), DKV_EINVAL);
    order.descending = 0;
    c = range("age", "1", NULL);
    DKV_EXPECT_STATUS(ts_page(&page, ts, &q, &opts, pool), DKV_EINVAL);
    DKV_EXPECT_TRUE(strstr(dkv_last_error(), "cursor") != NULL);
    c = range("age", "0", NULL);

    /* Garbage of every length: refused or accepted, never a crash. */
    for (len = 0; len < sizeof(buf); len++) {
        buf[len] = (unsigned char)(len * 37 + 11);
    }
    for (opts.cursor_len = 1; opts.cursor_len < 64; opts.cursor_len++) {
        DKV_EXPECT_STATUS(ts_page(&page, ts, &q, &opts, pool), DKV_EINVAL);
    }
    opts.cursor = NULL;
    opts.cursor_len = 3;
    DKV_EXPECT_STATUS(ts_page(&page, ts, &q, &opts, pool), DKV_EINVAL);
    apr_pool_destroy(pool);
    ts_close(ts);
}

/* Damaged index entries are reported, not trusted. */
static void
corrupt_index(void)
{
    ts_store_t *ts = ts_customers();
    apr_pool_t *pool = dkv_test_pool();
    dkv_clause_t c = range("age", "0", NULL);
    dkv_query_t q = q_where(&c);
    dkv_page_t *page;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k, v;
    static const char bad_num[] = "customer\0age\0n\x90\x02\x03";
    static const char ent[] = "customer";
    char longkey[DKV_MAX_KEY + 5];

    DKV_ASSERT_INT_EQ(mdb_txn_begin(ts->env, NULL, 0, &txn), 0);
    DKV_ASSERT_INT_EQ(mdb_dbi_open(txn, "search.label", 0, &dbi), 0);
    k.mv_data = (void *)bad_num;
    k.mv_size = sizeof(bad_num) - 1;
    v.mv_data = (void *)"zz";
    v.mv_size = 2;
    DKV_ASSERT_INT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    DKV_ASSERT_INT_EQ(mdb_txn_commit(txn), 0);
    DKV_EXPECT_STATUS(ts_page(&page, ts, &q, NULL, pool), DKV_ECORRUPT);
    /* String clauses do not read the numeric entries. */
    c = eq("city", "London");
    DKV_EXPECT_OK(ts_page(&page, ts, &q, NULL, pool));

    memset(longkey, 'k', sizeof(longkey));
    DKV_ASSERT_INT_EQ(mdb_txn_begin(ts->env, NULL, 0, &txn), 0);
    DKV_ASSERT_INT_EQ(mdb_dbi_open(txn, "search.entity", 0, &dbi), 0);
    k.mv_data = (void *)ent;
    k.mv_size = sizeof(ent);
    v.mv_data = longkey;
    v.mv_size = sizeof(longkey);
    DKV_ASSERT_INT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
    DKV_ASSERT_INT_EQ(mdb_txn_commit(txn), 0);
    q.where = NULL;
    DKV_EXPECT_STATUS(ts_page(&page, ts, &q, NULL, pool), DKV_ECORRUPT);
    apr_pool_destroy(pool);
    ts_close(ts);
}

/* Index entries of an over-long label are refused before anything is
 * written; long query values simply match nothing. */
static void
sizes(void)
{
    ts_store_t *ts = ts_customers();
    char big[600];
    dkv_label_t l;
    ts_item_t item;
    dkv_clause_t c;
    dkv_query_t q = q_where(&c);

    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memset(&item, 0, sizeof(item));
    item.entity = "customer";
    l.name = "city";
    l.value = big;
    l.indexed = 1;
    item.labels[0] = l;
    item.nlabels = 1;
    DKV_EXPECT_STATUS(ts_index(ts, "big", NULL, &item), DKV_ETOOLARGE);
    DKV_EXPECT_UINT_EQ(ts_db_entries(ts, "search.entity"), 10);

    /* 256 bytes: the indexed-value limit, fine. */
    big[DKV_MAX_LABEL_VALUE] = '\0';
    ts_put(ts, "big", "customer", apr_pstrcat(ts->pool, "city=", big,
                                               NULL));
    c = eq("city", big);
    TS_EXPECT(ts, &q, "big");
    c = prefix("city", "vvv");
    TS_EXPECT(ts, &q, "big");
    big[DKV_MAX_LABEL_VALUE] = 'v';
    big[DKV_MAX_LABEL_VALUE + 50] = '\0';
    c = eq("city", big);
    TS_EXPECT(ts, &q, "");
    c = prefix("city", big);
    TS_EXPECT(ts, &q, "");
    c = range("city", big, NULL);   /* "vvv..." (306) > "vvv..." (256) */
    TS_EXPECT(ts, &q, "");
    c = range("city", "Paris", big);
    TS_EXPECT(ts, &q, "big,c5");
    ts_close(ts);
}

/* Sort keys in a random-ish data set: every page size gives the same
 * order, which is sorted. */
static void
paging_many(void)
{
    ts_store_t *ts = ts_open(dkv_test_pool());
    dkv_order_t order[2] = { { "g", 0 }, { "v", 1 } };
    dkv_query_t q = q_where(NULL);
    const char *all;
    char key[16], labels[64];
    unsigned i, x = 12345;

    for (i = 0; i < 40; i++) {
        x = x * 1103515245u + 12345u;
        apr_snprintf(key, sizeof(key), "k%02u", i);
        if (i % 7 == 3) {
            apr_snprintf(labels, sizeof(labels), "v=%u", (x >> 8) % 5);
        }
        else if (i % 5 == 1) {
            apr_snprintf(labels, sizeof(labels), "g=x%u,v=s%u",
                         (x >> 4) % 2, (x >> 8) % 4);
        }
        else {
            apr_snprintf(labels, sizeof(labels), "g=%u,v=%d.5",
                         (x >> 4) % 3, (int)((x >> 8) % 9) - 4);
        }
        ts_put(ts, key, "customer", labels);
    }
    q.order = order;
    q.norder = 2;
    all = ts_query(ts, &q, 0);
    DKV_ASSERT_NOT_NULL(all);
    TS_EXPECT(ts, &q, all);
    q.limit = 17;
    TS_EXPECT(ts, &q, apr_pstrndup(ts->pool, all, 17 * 4 - 1));
    ts_close(ts);
}

void
test_search_register(void)
{
    CU_pSuite s = dkv_test_add_suite("search", NULL, NULL);

    DKV_TEST_ADD(s, all_keys_of_entity);
    DKV_TEST_ADD(s, eq_string_and_numeric);
    DKV_TEST_ADD(s, range_numeric);
    DKV_TEST_ADD(s, range_string);
    DKV_TEST_ADD(s, prefix_clause);
    DKV_TEST_ADD(s, and_or_not);
    DKV_TEST_ADD(s, nesting);
    DKV_TEST_ADD(s, order_by);
    DKV_TEST_ADD(s, limit_and_paging);
    DKV_TEST_ADD(s, paging_across_changes);
    DKV_TEST_ADD(s, projection_and_keys_only);
    DKV_TEST_ADD(s, reindex_on_change);
    DKV_TEST_ADD(s, removal_leaves_nothing);
    DKV_TEST_ADD(s, non_indexed_labels_ignored);
    DKV_TEST_ADD(s, absent_items_skipped);
    DKV_TEST_ADD(s, numbers);
    DKV_TEST_ADD(s, numbers_under_locale);
    DKV_TEST_ADD(s, validation);
    DKV_TEST_ADD(s, bad_cursors);
    DKV_TEST_ADD(s, corrupt_index);
    DKV_TEST_ADD(s, sizes);
    DKV_TEST_ADD(s, paging_many);
}
