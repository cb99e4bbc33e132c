/*
 * test_api_search.c -- suite api_search: search by entity and indexed
 * labels through the public API (dkv/search.h): EQ, numeric and string
 * RANGE, PREFIX, AND/OR/NOT, ORDER BY, limit, paging, projection,
 * keys-only, non-indexed labels, index upkeep on rewrite, delete and
 * expiry, and malformed queries.
 */
#include <string.h>

#include "apitest.h"

typedef struct cust {
    const char *key;
    const char *city;
    const char *age;        /* NULL: no age label */
    const char *email;
} cust_t;

static const cust_t custs[] = {
    { "cust:1", "London", "30", "user1@example.com" },
    { "cust:2", "Berlin", "32", "user2@example.com" },
    { "cust:3", "London", "100", "user10@example.com" },
    { "cust:4", "Lahore", "28", "alice@example.com" },
    { "cust:5", "Berlin", "9", "user5@example.com" },
    { "cust:6", "Paris", "10", "bob@example.com" },
    { "cust:7", "Oslo", NULL, "user7@example.com" },
};
#define NCUST (sizeof custs / sizeof custs[0])

static dkv_status_t
put_cust(dkv_client_t *c, const cust_t *x, const char *entity,
         int64_t ttl)
{
    dkv_label_t labels[4];
    dkv_put_opts_t po;
    size_t n = 0;

    labels[n++] = (dkv_label_t){ "city", x->city, 1 };
    labels[n++] = (dkv_label_t){ "email", x->email, 1 };
    if (x->age != NULL) {
        labels[n++] = (dkv_label_t){ "age", x->age, 1 };
    }
    labels[n++] = (dkv_label_t){ "secret", "s1", 0 };
    memset(&po, 0, sizeof po);
    po.entity = entity;
    po.labels = labels;
    po.nlabels = n;
    po.ttl_ms = ttl;
    return at_put(NULL, c, x->key, x->key, &po);
}

/* A store on the fake clock holding the customers and one order. */
static dkv_client_t *
open_data(void)
{
    dkv_open_opts_t oo = at_fake_clock_opts();
    dkv_client_t *c = at_open("inproc:", &oo);
    cust_t order = { "order:1", "London", "30", "user1@example.com" };
    size_t i;

    if (c == NULL) {
        return NULL;
    }
    for (i = 0; i < NCUST; i++) {
        AT_OK(put_cust(c, &custs[i], "customer", 0));
    }
    AT_OK(put_cust(c, &order, "order", 0));
    AT_OK(at_put(NULL, c, "plain", "no entity", NULL));
    return c;
}

/* Runs Q through every page (PAGE_SIZE per page) and returns the keys
 * joined by ","; "ERR" when a call failed, "DUP" marks a repeated key. */
static const char *
run(dkv_client_t *c, const dkv_query_t *q, size_t page_size, apr_pool_t *p)
{
    dkv_search_opts_t so;
    dkv_page_t *pg = NULL;
    const char *out = "";
    int pages;

    memset(&so, 0, sizeof so);
    so.page_size = page_size;
    for (pages = 0; pages < 100; pages++) {
        dkv_status_t s = dkv_search(&pg, c, q, &so, p);
        size_t i;

        AT_OK(s);
        if (s != DKV_OK || pg == NULL) {
            return "ERR";
        }
        if (page_size) {
            DKV_EXPECT_TRUE(pg->count <= page_size);
        }
        for (i = 0; i < pg->count; i++) {
            const char *k = apr_pstrmemdup(p, pg->items[i].key,
                                           pg->items[i].key_len);
            const char *pat = apr_pstrcat(p, ",", out, ",", NULL);

            if (strstr(pat, apr_pstrcat(p, ",", k, ",", NULL)) != NULL) {
                out = apr_pstrcat(p, out, *out ? "," : "", "DUP", NULL);
            }
            out = apr_pstrcat(p, out, *out ? "," : "", k, NULL);
        }
        if (!pg->more) {
            break;
        }
        DKV_EXPECT_TRUE(pg->next != NULL && pg->next_len > 0);
        so.cursor = pg->next;
        so.cursor_len = pg->next_len;
    }
    return out;
}

static dkv_query_t
query(const dkv_clause_t *where)
{
    dkv_query_t q;

    memset(&q, 0, sizeof q);
    q.entity = "customer";
    q.where = where;
    return q;
}

static dkv_clause_t
eq(const char *label, const char *value)
{
    dkv_clause_t cl;

    memset(&cl, 0, sizeof cl);
    cl.type = DKV_CLAUSE_EQ;
    cl.label = label;
    cl.value = value;
    return cl;
}

static dkv_clause_t
range(const char *label, const char *low, const char *high)
{
    dkv_clause_t cl;

    memset(&cl, 0, sizeof cl);
    cl.type = DKV_CLAUSE_RANGE;
    cl.label = label;
    cl.low = low;
    cl.high = high;
    return cl;
}

static dkv_clause_t
node(dkv_clause_type_t type, const dkv_clause_t *children, size_t n)
{
    dkv_clause_t cl;

    memset(&cl, 0, sizeof cl);
    cl.type = type;
    cl.children = children;
    cl.nchildren = n;
    return cl;
}

/* ------------------------------------------------------------------ */

static void
test_clauses(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_data();
    dkv_clause_t cl, kids[2], inner[1];
    dkv_query_t q;

    DKV_ASSERT_NOT_NULL(c);
    q = query(NULL);
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p),
                      "cust:1,cust:2,cust:3,cust:4,cust:5,cust:6,cust:7");
    q.entity = "order";
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "order:1");
    q.entity = "nothing";
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "");

    cl = eq("city", "London");
    q = query(&cl);
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:1,cust:3");
    cl = eq("age", "30");
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:1");
    cl = eq("age", "30.0");
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:1");
    cl = eq("city", "london");
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "");
    cl = eq("nolabel", "x");
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "");

    /* Numeric ranges, inclusive. */
    cl = range("age", "28", "32");
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:1,cust:2,cust:4");
    cl = range("age", "9", "10");
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:5,cust:6");
    cl = range("age", "31", NULL);
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:2,cust:3");
    cl = range("age", NULL, "9.5");
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:5");
    /* String ranges, byte order. */
    cl = range("city", "Berlin", "Lahore");
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:2,cust:4,cust:5");
    cl = range("city", "M", NULL);
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:6,cust:7");

    /* Prefix. */
    memset(&cl, 0, sizeof cl);
    cl.type = DKV_CLAUSE_PREFIX;
    cl.label = "email";
    cl.value = "user1";
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:1,cust:3");
    cl.value = "b";
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:6");

    /* And, or, not. */
    kids[0] = eq("city", "Berlin");
    kids[1] = eq("age", "32");
    cl = node(DKV_CLAUSE_AND, kids, 2);
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:2");
    kids[0] = eq("city", "Lahore");
    kids[1] = eq("city", "Paris");
    cl = node(DKV_CLAUSE_OR, kids, 2);
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:4,cust:6");
    cl = node(DKV_CLAUSE_OR, kids, 1);
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:4");
    inner[0] = eq("city", "London");
    cl = node(DKV_CLAUSE_NOT, inner, 1);
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p),
                      "cust:2,cust:4,cust:5,cust:6,cust:7");
    inner[0] = eq("city", "Lahore");
    kids[0] = range("age", "20", "65");
    kids[1] = node(DKV_CLAUSE_NOT, inner, 1);
    cl = node(DKV_CLAUSE_AND, kids, 2);
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:1,cust:2");

    /* Non-indexed labels are not searchable... */
    cl = eq("secret", "s1");
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "");
    /* ...but are returned with the key. */
    {
        dkv_item_t *it = NULL;
        size_t i;
        int found = 0;

        AT_OK(at_get(&it, c, "cust:1", p));
        DKV_ASSERT_NOT_NULL(it);
        for (i = 0; i < it->nlabels; i++) {
            if (strcmp(it->labels[i].name, "secret") == 0) {
                found = 1;
                DKV_EXPECT_STR_EQ(it->labels[i].value, "s1");
                DKV_EXPECT_INT_EQ(it->labels[i].indexed, 0);
            }
        }
        DKV_EXPECT_TRUE(found);
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_order_limit_paging(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_data();
    dkv_order_t ord[2];
    dkv_clause_t cl, inner[1];
    dkv_query_t q;
    size_t ps;

    DKV_ASSERT_NOT_NULL(c);
    q = query(NULL);
    ord[0] = (dkv_order_t){ "age", 0 };
    q.order = ord;
    q.norder = 1;
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p),
                      "cust:5,cust:6,cust:4,cust:1,cust:2,cust:3,cust:7");
    inner[0] = eq("city", "Oslo");
    cl = node(DKV_CLAUSE_NOT, inner, 1);
    q.where = &cl;
    ord[0].descending = 1;
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p),
                      "cust:3,cust:2,cust:1,cust:4,cust:6,cust:5");
    q.where = NULL;

    /* Several fields. */
    ord[0] = (dkv_order_t){ "city", 0 };
    ord[1] = (dkv_order_t){ "age", 0 };
    q.norder = 2;
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p),
                      "cust:5,cust:2,cust:4,cust:1,cust:3,cust:7,cust:6");
    ord[1].descending = 1;
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p),
                      "cust:2,cust:5,cust:4,cust:3,cust:1,cust:7,cust:6");
    ord[0].descending = 1;
    ord[1].descending = 0;
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p),
                      "cust:6,cust:7,cust:1,cust:3,cust:4,cust:5,cust:2");

    /* Limit. */
    ord[0] = (dkv_order_t){ "age", 0 };
    q.norder = 1;
    q.limit = 3;
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:5,cust:6,cust:4");

    /* Paging: every page size gives the same results, no dups/skips. */
    for (ps = 1; ps <= 8; ps++) {
        q.limit = 0;
        DKV_EXPECT_STR_EQ(run(c, &q, ps, p),
                          "cust:5,cust:6,cust:4,cust:1,cust:2,cust:3,"
                          "cust:7");
        q.limit = 5;
        DKV_EXPECT_STR_EQ(run(c, &q, ps, p),
                          "cust:5,cust:6,cust:4,cust:1,cust:2");
        q.norder = 0;
        q.limit = 0;
        DKV_EXPECT_STR_EQ(run(c, &q, ps, p),
                          "cust:1,cust:2,cust:3,cust:4,cust:5,cust:6,"
                          "cust:7");
        q.norder = 1;
    }

    /* A page in the middle, then a key unchanged between pages. */
    {
        dkv_search_opts_t so;
        dkv_page_t *pg = NULL;
        dkv_query_t q2 = query(NULL);

        memset(&so, 0, sizeof so);
        so.page_size = 3;
        AT_OK(dkv_search(&pg, c, &q2, &so, p));
        DKV_ASSERT_NOT_NULL(pg);
        DKV_EXPECT_UINT_EQ(pg->count, 3);
        DKV_EXPECT_INT_EQ(pg->more, 1);
        DKV_EXPECT_TRUE(pg->revision > 0);
        /* Deleting a key already returned changes nothing after it. */
        AT_OK(at_del(NULL, c, "cust:2"));
        so.cursor = pg->next;
        so.cursor_len = pg->next_len;
        AT_OK(dkv_search(&pg, c, &q2, &so, p));
        DKV_ASSERT_NOT_NULL(pg);
        DKV_EXPECT_UINT_EQ(pg->count, 3);
        if (pg->count >= 1) {
            AT_BYTES(pg->items[0].key, pg->items[0].key_len, "cust:4");
        }
        /* A bad cursor. */
        so.cursor = "\xff\xfe garbage";
        so.cursor_len = 10;
        AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q2, &so, p));
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_shapes(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_data();
    const char *sel[1] = { "email" };
    dkv_clause_t cl = eq("city", "London");
    dkv_query_t q = query(&cl);
    dkv_page_t *pg = NULL;
    size_t i;

    DKV_ASSERT_NOT_NULL(c);
    /* Full items: value and metadata. */
    AT_OK(dkv_search(&pg, c, &q, NULL, p));
    DKV_ASSERT_NOT_NULL(pg);
    DKV_ASSERT_INT_EQ(pg->count, 2);
    AT_BYTES(pg->items[0].value, pg->items[0].value_len, "cust:1");
    DKV_EXPECT_STR_EQ(pg->items[0].entity, "customer");
    DKV_EXPECT_TRUE(pg->items[0].nlabels >= 3);
    DKV_EXPECT_UINT_EQ(pg->items[0].version, 1);
    DKV_EXPECT_INT_EQ(pg->items[0].status, DKV_OK);

    /* Projection: only the selected labels, no value. */
    q.select = sel;
    q.nselect = 1;
    AT_OK(dkv_search(&pg, c, &q, NULL, p));
    DKV_ASSERT_NOT_NULL(pg);
    DKV_ASSERT_INT_EQ(pg->count, 2);
    for (i = 0; i < 2; i++) {
        DKV_EXPECT_TRUE(pg->items[i].value == NULL);
        DKV_EXPECT_UINT_EQ(pg->items[i].nlabels, 1);
        if (pg->items[i].nlabels == 1) {
            DKV_EXPECT_STR_EQ(pg->items[i].labels[0].name, "email");
        }
    }
    if (pg->items[1].nlabels == 1) {
        DKV_EXPECT_STR_EQ(pg->items[1].labels[0].value,
                          "user10@example.com");
    }

    /* Keys only. */
    q.select = NULL;
    q.nselect = 0;
    q.keys_only = 1;
    AT_OK(dkv_search(&pg, c, &q, NULL, p));
    DKV_ASSERT_NOT_NULL(pg);
    DKV_ASSERT_INT_EQ(pg->count, 2);
    for (i = 0; i < 2; i++) {
        DKV_EXPECT_TRUE(pg->items[i].value == NULL);
        DKV_EXPECT_UINT_EQ(pg->items[i].nlabels, 0);
    }
    AT_BYTES(pg->items[1].key, pg->items[1].key_len, "cust:3");
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_index_upkeep(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_data();
    cust_t moved = { "cust:1", "Paris", "30", "user1@example.com" };
    cust_t temp = { "cust:t", "London", "50", "t@example.com" };
    dkv_clause_t cl = eq("city", "London");
    dkv_query_t q = query(&cl);

    AT_FAKE_CLOCK_ONLY(c);
    DKV_ASSERT_NOT_NULL(c);
    /* A rewrite with other labels moves the key in the index. */
    AT_OK(put_cust(c, &moved, "customer", 0));
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:3");
    cl = eq("city", "Paris");
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:1,cust:6");
    /* A rewrite without entity or labels leaves the index. */
    AT_OK(at_put(NULL, c, "cust:6", "plain", NULL));
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:1");
    /* Another entity. */
    AT_OK(put_cust(c, &moved, "order", 0));
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "");
    q.entity = "order";
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:1");
    q.entity = "customer";

    /* Deleted keys leave the index. */
    cl = eq("city", "London");
    AT_OK(at_del(NULL, c, "cust:3"));
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "");

    /* Expired keys are not returned. */
    AT_OK(put_cust(c, &temp, "customer", 100));
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "cust:t");
    at_clock_advance(101);
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "");
    /* Range with the numeric age too. */
    cl = range("age", "40", "60");
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "");

    /* dkv_clear empties the index too. */
    AT_OK(dkv_clear(NULL, c, NULL));
    q.where = NULL;
    DKV_EXPECT_STR_EQ(run(c, &q, 0, p), "");
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_bad_queries(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_data();
    dkv_clause_t cl, kids[2];
    dkv_query_t q;
    dkv_page_t *pg = NULL;
    dkv_search_opts_t so;

    DKV_ASSERT_NOT_NULL(c);
    q = query(NULL);
    q.entity = NULL;
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, NULL, p));
    AT_HAS_ERROR();
    q.entity = "";
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, NULL, p));

    kids[0] = eq("city", "London");
    kids[1] = eq("city", "Paris");
    cl = node(DKV_CLAUSE_NOT, kids, 2);
    q = query(&cl);
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, NULL, p));
    AT_HAS_ERROR();
    cl = node(DKV_CLAUSE_NOT, NULL, 0);
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, NULL, p));
    cl = node(DKV_CLAUSE_AND, NULL, 0);
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, NULL, p));
    cl = eq(NULL, "London");
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, NULL, p));
    cl = eq("city", NULL);
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, NULL, p));
    cl = range(NULL, "1", "2");
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, NULL, p));
    memset(&cl, 0, sizeof cl);
    cl.type = DKV_CLAUSE_PREFIX;
    cl.label = "email";
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, NULL, p));
    cl.type = (dkv_clause_type_t)99;
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, NULL, p));
    /* A bad clause nested inside a good one. */
    kids[0] = eq("city", "London");
    kids[1] = eq(NULL, NULL);
    cl = node(DKV_CLAUSE_OR, kids, 2);
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, NULL, p));

    q = query(NULL);
    AT_STATUS(DKV_EINVAL, dkv_search(NULL, c, &q, NULL, p));
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, NULL, NULL, p));
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, NULL, &q, NULL, p));
    memset(&so, 0, sizeof so);
    so.page_size = 10001;
    AT_STATUS(DKV_EINVAL, dkv_search(&pg, c, &q, &so, p));
    dkv_close(c);
    apr_pool_destroy(p);
}

static void
test_paging_stability(void)
{
    apr_pool_t *p = dkv_test_pool();
    dkv_client_t *c = open_data();
    cust_t moved = { "cust:4", "Lahore", "5", "alice@example.com" };
    cust_t added = { "cust:0", "Rome", "1", "new@example.com" };
    dkv_order_t ord[1] = { { "city", 0 } };
    dkv_search_opts_t so;
    dkv_page_t *pg = NULL;
    dkv_query_t q = query(NULL);
    const char *seen = ",";
    int pages, dups = 0;
    static const char *const unchanged[] = {
        "cust:1", "cust:2", "cust:3", "cust:5", "cust:6", "cust:7"
    };
    size_t i;

    DKV_ASSERT_NOT_NULL(c);
    /* Ties (two in Berlin, two in London) are broken by key. */
    q.order = ord;
    q.norder = 1;
    DKV_EXPECT_STR_EQ(run(c, &q, 1, p),
                      "cust:2,cust:5,cust:4,cust:1,cust:3,cust:7,cust:6");

    /* Changes between pages: keys left unchanged come exactly once. */
    ord[0] = (dkv_order_t){ "age", 0 };
    memset(&so, 0, sizeof so);
    so.page_size = 2;
    for (pages = 0; pages < 20; pages++) {
        AT_OK(dkv_search(&pg, c, &q, &so, p));
        DKV_ASSERT_NOT_NULL(pg);
        for (i = 0; i < pg->count; i++) {
            const char *k = apr_pstrmemdup(p, pg->items[i].key,
                                           pg->items[i].key_len);

            if (strstr(seen, apr_pstrcat(p, ",", k, ",", NULL))) {
                dups++;
            }
            seen = apr_pstrcat(p, seen, k, ",", NULL);
        }
        if (pages == 0) {
            /* Move one key before the cursor, add one before it. */
            AT_OK(put_cust(c, &moved, "customer", 0));
            AT_OK(put_cust(c, &added, "customer", 0));
        }
        if (!pg->more) {
            break;
        }
        so.cursor = pg->next;
        so.cursor_len = pg->next_len;
    }
    DKV_EXPECT_INT_EQ(dups, 0);
    for (i = 0; i < sizeof unchanged / sizeof unchanged[0]; i++) {
        DKV_EXPECT_TRUE(strstr(seen, apr_pstrcat(p, ",", unchanged[i], ",",
                                                 NULL)) != NULL);
    }
    dkv_close(c);
    apr_pool_destroy(p);
}

/* Registers the api_search suite. */
void
test_api_search_register(void)
{
    CU_pSuite s = dkv_test_add_suite("api_search", NULL, NULL);

    DKV_TEST_ADD(s, test_clauses);
    DKV_TEST_ADD(s, test_order_limit_paging);
    DKV_TEST_ADD(s, test_shapes);
    DKV_TEST_ADD(s, test_index_upkeep);
    DKV_TEST_ADD(s, test_bad_queries);
    DKV_TEST_ADD(s, test_paging_stability);
}
