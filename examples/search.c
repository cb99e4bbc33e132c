/*
 * search.c -- finding keys by what they are, not by their names.
 *
 * A key written with an entity ("customer") and indexed labels (city,
 * age, email) can be found by a query on that entity: equality, range and
 * prefix clauses on labels, combined with and/or/not, ordered by labels,
 * limited, paged, and projected onto a few labels.  Label values are
 * strings; those that are numbers ("30") also compare as numbers.
 *
 * Usage: search [ADDRESS]
 *   ADDRESS is a store address ("inproc:" for a fresh temporary store, the
 *   default, or "inproc:PATH"), or a directory, read as "inproc:DIR".
 *   The store is cleared first: give it a scratch store.
 *
 * Every query's answer is checked against the one expected; the program
 * exits 1 at the first surprise, so it doubles as a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>

#include <dkv.h>

#include "example.h"

/* ------------------------------------------------------------ the data */

typedef struct customer {
    const char *key, *name, *city, *age, *email;
} customer_t;

static const customer_t customers[] = {
    { "cust:01", "Ali",   "London", "30", "user1@example.com" },
    { "cust:02", "Sarah", "Berlin", "32", "user2@example.com" },
    { "cust:03", "Omar",  "Lahore", "28", "user3@example.com" },
    { "cust:04", "Mia",   "Paris",  "41", "user4@example.com" },
    { "cust:05", "Jon",   "London", "25", "user5@example.com" },
    { "cust:06", "Eva",   "Berlin", "29", "user6@example.com" },
    { "cust:07", "Noor",  "Lahore", "35", "user7@example.com" },
    { "cust:08", "Liam",  "London", "67", "user8@example.com" },
    { "cust:09", "Zoe",   "Paris",  "19", "user9@example.com" },
    { "cust:10", "Hana",  "Berlin", "31", "user10@example.com" },
};
#define NCUSTOMERS (sizeof customers / sizeof customers[0])

static void
load(dkv_client_t *client)
{
    size_t i;

    for (i = 0; i < NCUSTOMERS; i++) {
        const customer_t *c = &customers[i];
        /* Three indexed labels, and a note that is stored, not indexed. */
        dkv_label_t labels[4];
        dkv_put_opts_t opts = { 0 };

        labels[0].name = "city";
        labels[0].value = c->city;
        labels[0].indexed = 1;
        labels[1].name = "age";
        labels[1].value = c->age;
        labels[1].indexed = 1;
        labels[2].name = "email";
        labels[2].value = c->email;
        labels[2].indexed = 1;
        labels[3].name = "note";
        labels[3].value = "imported";
        labels[3].indexed = 0;

        opts.entity = "customer";
        opts.labels = labels;
        opts.nlabels = 4;
        opts.content_type = "text/plain";
        check(dkv_put(NULL, client, c->key, strlen(c->key), c->name,
                      strlen(c->name), &opts), "put customer");
    }

    /* Keys of another entity, or of none, never match a customer query,
     * even with the same labels. */
    {
        dkv_label_t city = { "city", "London", 1 };
        dkv_put_opts_t opts = { 0 };

        opts.entity = "order";
        opts.labels = &city;
        opts.nlabels = 1;
        check(dkv_put(NULL, client, "order:1", 7, "tea", 3, &opts),
              "put order");
        check(dkv_put(NULL, client, "cust:99", 7, "plain key", 9, NULL),
              "put a key without entity");
    }
    printf("loaded %lu customers, an order and a plain key\n\n",
           (unsigned long)NCUSTOMERS);
}

/* ------------------------------------------------------------- queries */

/*
 * Runs QUERY to the end, PAGE_SIZE results per page (0: the default),
 * and checks that the keys come back exactly as EXPECTED (a
 * space-separated list of customer numbers, "01 05 08", in order).
 * Prints the keys found.  Returns the number of pages read.
 */
static int
run(dkv_client_t *client, const char *title, const dkv_query_t *query,
    size_t page_size, const char *expected, apr_pool_t *pool)
{
    dkv_search_opts_t opts = { 0 };
    apr_pool_t *page_pool;
    char got[256] = "";
    size_t used = 0;
    int pages = 0;

    apr_pool_create(&page_pool, pool);
    opts.page_size = page_size;
    for (;;) {
        dkv_page_t *page;
        size_t i;

        check(dkv_search(&page, client, query, &opts, page_pool), title);
        pages++;
        for (i = 0; i < page->count; i++) {
            const dkv_item_t *item = &page->items[i];

            /* "cust:05" -> "05" */
            require(item->key_len == 7 && used + 4 < sizeof got,
                    "a customer key");
            if (used > 0) {
                got[used++] = ' ';
            }
            memcpy(got + used, (const char *)item->key + 5, 2);
            used += 2;
            got[used] = '\0';
        }
        if (!page->more) {
            break;
        }
        /* The cursor lives in PAGE_POOL: keep a copy before clearing. */
        opts.cursor = apr_pmemdup(pool, page->next, page->next_len);
        opts.cursor_len = page->next_len;
        apr_pool_clear(page_pool);
    }
    apr_pool_destroy(page_pool);

    printf("%-44s -> %s\n", title, got);
    if (strcmp(got, expected) != 0) {
        fprintf(stderr, "FAILED: %s: got \"%s\", expected \"%s\"\n", title,
                got, expected);
        exit(1);
    }
    return pages;
}

/* Shorthands for clauses, to keep the queries readable. */
static dkv_clause_t
eq(const char *label, const char *value)
{
    dkv_clause_t c = { DKV_CLAUSE_EQ, NULL, NULL, NULL, NULL, NULL, 0 };

    c.label = label;
    c.value = value;
    return c;
}

static dkv_clause_t
range(const char *label, const char *low, const char *high)
{
    dkv_clause_t c = { DKV_CLAUSE_RANGE, NULL, NULL, NULL, NULL, NULL, 0 };

    c.label = label;
    c.low = low;
    c.high = high;
    return c;
}

static dkv_clause_t
prefix(const char *label, const char *value)
{
    dkv_clause_t c = { DKV_CLAUSE_PREFIX, NULL, NULL, NULL, NULL, NULL, 0 };

    c.label = label;
    c.value = value;
    return c;
}

static dkv_clause_t
combine(dkv_clause_type_t type, const dkv_clause_t *children, size_t n)
{
    dkv_clause_t c = { DKV_CLAUSE_AND, NULL, NULL, NULL, NULL, NULL, 0 };

    c.type = type;
    c.children = children;
    c.nchildren = n;
    return c;
}

static void
filters(dkv_client_t *client, apr_pool_t *pool)
{
    dkv_query_t q = { 0 };
    dkv_clause_t where, kids[2], not_lahore;

    printf("== filters\n");
    q.entity = "customer";

    /* Everything of the entity, in key order. */
    run(client, "all customers", &q, 0,
        "01 02 03 04 05 06 07 08 09 10", pool);

    where = eq("city", "London");
    q.where = &where;
    run(client, "city = London", &q, 0, "01 05 08", pool);

    /* Ages are numbers: the range compares them numerically. */
    where = range("age", "28", "32");
    run(client, "28 <= age <= 32", &q, 0, "01 02 03 06 10", pool);

    where = range("age", "60", NULL);
    run(client, "age >= 60", &q, 0, "08", pool);

    where = prefix("email", "user1");
    run(client, "email starts with user1", &q, 0, "01 10", pool);

    kids[0] = eq("city", "Berlin");
    kids[1] = eq("age", "32");
    where = combine(DKV_CLAUSE_AND, kids, 2);
    run(client, "city = Berlin AND age = 32", &q, 0, "02", pool);

    kids[0] = eq("city", "London");
    kids[1] = eq("city", "Paris");
    where = combine(DKV_CLAUSE_OR, kids, 2);
    run(client, "city = London OR city = Paris", &q, 0, "01 04 05 08 09",
        pool);

    kids[0] = eq("city", "Lahore");
    where = combine(DKV_CLAUSE_NOT, kids, 1);
    run(client, "NOT city = Lahore", &q, 0, "01 02 04 05 06 08 09 10", pool);

    /* Nested: 20 <= age <= 65 AND NOT city = Lahore. */
    not_lahore = combine(DKV_CLAUSE_NOT, kids, 1);
    {
        dkv_clause_t both[2];

        both[0] = range("age", "20", "65");
        both[1] = not_lahore;
        where = combine(DKV_CLAUSE_AND, both, 2);
        run(client, "20 <= age <= 65 AND NOT city = Lahore", &q, 0,
            "01 02 04 05 06 10", pool);
    }

    /* Labels that are not indexed cannot be searched. */
    where = eq("note", "imported");
    run(client, "note = imported (not indexed)", &q, 0, "", pool);
}

static void
ordering_and_paging(dkv_client_t *client, apr_pool_t *pool)
{
    dkv_query_t q = { 0 };
    dkv_order_t by_age_desc = { "age", 1 };
    dkv_order_t by_city_age[2] = { { "city", 0 }, { "age", 0 } };
    int pages;

    printf("\n== order, limit, paging\n");
    q.entity = "customer";

    /* The five oldest: numbers sort numerically ("67" > "41" > "35"). */
    q.order = &by_age_desc;
    q.norder = 1;
    q.limit = 5;
    run(client, "order by age desc, limit 5", &q, 0, "08 04 07 02 10",
        pool);

    /* Two sort keys: by city, then by age within a city. */
    q.order = by_city_age;
    q.norder = 2;
    q.limit = 0;
    run(client, "order by city, age", &q, 0,
        "06 10 02 03 07 05 01 08 09 04", pool);

    /* Pages of 3: the cursor continues where the last page ended.  The
     * limit counts over all pages. */
    q.order = NULL;
    q.norder = 0;
    pages = run(client, "all customers, pages of 3", &q, 3,
                "01 02 03 04 05 06 07 08 09 10", pool);
    require(pages == 4, "10 results in pages of 3 make 4 pages");
    q.limit = 7;
    pages = run(client, "limit 7, pages of 3", &q, 3,
                "01 02 03 04 05 06 07", pool);
    require(pages == 3, "7 results in pages of 3 make 3 pages");
}

static void
projection(dkv_client_t *client, apr_pool_t *pool)
{
    const char *select[] = { "email" };
    dkv_clause_t where = eq("city", "Paris");
    dkv_query_t q = { 0 };
    dkv_page_t *page;
    size_t i;

    printf("\n== projection and result shapes\n");
    q.entity = "customer";
    q.where = &where;

    /* Full entries: value, entity, every label (indexed or not). */
    check(dkv_search(&page, client, &q, NULL, pool), "search entries");
    require(page->count == 2, "two customers in Paris");
    require(strcmp((const char *)page->items[0].value, "Mia") == 0
            && page->items[0].nlabels == 4
            && strcmp(page->items[0].entity, "customer") == 0,
            "full entries carry the value, entity and labels");
    for (i = 0; i < page->count; i++) {
        printf("entry %.*s = %s (%lu labels)\n",
               (int)page->items[i].key_len,
               (const char *)page->items[i].key,
               (const char *)page->items[i].value,
               (unsigned long)page->items[i].nlabels);
    }

    /* A projection: only the selected labels, and no values. */
    q.select = select;
    q.nselect = 1;
    check(dkv_search(&page, client, &q, NULL, pool), "search projected");
    require(page->count == 2, "two customers in Paris");
    for (i = 0; i < page->count; i++) {
        const dkv_item_t *item = &page->items[i];

        require(item->value == NULL && item->nlabels == 1
                && strcmp(item->labels[0].name, "email") == 0,
                "a projection carries the selected label only");
        printf("select email: %.*s -> %s\n", (int)item->key_len,
               (const char *)item->key, item->labels[0].value);
    }

    /* Keys only. */
    q.select = NULL;
    q.nselect = 0;
    q.keys_only = 1;
    check(dkv_search(&page, client, &q, NULL, pool), "search keys");
    require(page->count == 2 && page->items[0].value == NULL
            && page->items[0].nlabels == 0, "keys only: no value, no labels");
    printf("keys only: %.*s, %.*s\n", (int)page->items[0].key_len,
           (const char *)page->items[0].key, (int)page->items[1].key_len,
           (const char *)page->items[1].key);

    /* The index follows the data: Mia moves to London. */
    {
        dkv_label_t labels[3] = {
            { "city", "London", 1 },
            { "age", "41", 1 },
            { "email", "user4@example.com", 1 },
        };
        dkv_put_opts_t opts = { 0 };
        dkv_query_t all_paris = { 0 };

        opts.entity = "customer";
        opts.labels = labels;
        opts.nlabels = 3;
        check(dkv_put(NULL, client, "cust:04", 7, "Mia", 3, &opts),
              "Mia moves");
        check(dkv_delete(NULL, client, "cust:09", 7, NULL), "Zoe leaves");
        all_paris.entity = "customer";
        all_paris.where = &where;
        run(client, "city = Paris, after two changes", &all_paris, 0, "",
            pool);
    }
}

/* ---------------------------------------------------------------- main */

int
main(int argc, char **argv)
{
    apr_pool_t *pool;
    dkv_client_t *client;
    const char *address;

    apr_initialize();
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);
    address = store_address(argc, argv, pool);

    check(dkv_open(&client, address, NULL, pool), "open");
    printf("opened %s\n\n", address);

    /* Start from an empty store (a given store is reused, so clear it). */
    check(dkv_clear(NULL, client, NULL), "clear the store");

    load(client);
    filters(client, pool);
    ordering_and_paging(client, pool);
    projection(client, pool);

    dkv_close(client);
    apr_pool_destroy(pool);
    printf("\nsearch: all checks passed\n");
    return 0;
}
