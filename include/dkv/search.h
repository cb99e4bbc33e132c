/*
 * dkv/search.h -- search by entity and indexed labels.
 *
 * A key written with an entity (dkv_put_opts_t.entity) and indexed labels
 * can be found by a query on that entity: equality, range and prefix
 * clauses on labels, combined with and/or/not, ordered by one or more
 * labels, limited, paged, and projected.
 *
 * How label values compare.  Labels are strings.  A value that is a whole
 * decimal number ("30", "-4.5", "1e3"; what strtod accepts, finite, no
 * spaces, no hex) is also a number:
 *  - EQ with a numeric value matches labels numerically equal to it
 *    ("30" matches "30.0"); with any other value, byte-equal labels.
 *  - RANGE with two numeric bounds (or one, the other NULL) matches the
 *    numeric labels inside them; with a non-numeric bound, labels
 *    between the bounds in byte order.  Bounds are inclusive.
 *  - PREFIX compares the string bytes.
 *  - ORDER BY puts numbers first, numerically, then other strings in byte
 *    order, then keys without the label; ties are broken by key.
 */
#ifndef DKV_SEARCH_H
#define DKV_SEARCH_H

#include "dkv/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dkv_clause_type {
    DKV_CLAUSE_EQ = 1,      /* label == value */
    DKV_CLAUSE_RANGE = 2,   /* low <= label <= high */
    DKV_CLAUSE_PREFIX = 3,  /* label starts with value */
    DKV_CLAUSE_AND = 4,     /* every child */
    DKV_CLAUSE_OR = 5,      /* any child */
    DKV_CLAUSE_NOT = 6      /* not the one child */
} dkv_clause_type_t;

typedef struct dkv_clause dkv_clause_t;

/* One node of a query's condition tree. */
struct dkv_clause {
    dkv_clause_type_t type;
    const char *label;                /* EQ, RANGE, PREFIX */
    const char *value;                /* EQ, PREFIX */
    const char *low;                  /* RANGE; NULL: unbounded */
    const char *high;                 /* RANGE; NULL: unbounded */
    const dkv_clause_t *children;     /* AND, OR (1..n), NOT (1) */
    size_t nchildren;
};

/* One sort key. */
typedef struct dkv_order {
    const char *label;
    int descending;
} dkv_order_t;

typedef struct dkv_query {
    /* The entity searched; required. */
    const char *entity;
    /* The condition; NULL: every key of the entity. */
    const dkv_clause_t *where;
    /* Sort keys, in order; none: key order. */
    const dkv_order_t *order;
    size_t norder;
    /* Most results over all pages; 0: no limit. */
    size_t limit;
    /* Projection: only these labels in the results, and no values. */
    const char *const *select;
    size_t nselect;
    /* 1: keys only (no value, no labels). */
    int keys_only;
} dkv_query_t;

typedef struct dkv_search_opts {
    /* Results per page; 0: 100.  At most 10000. */
    size_t page_size;
    /* The previous page's next cursor, to continue. */
    const void *cursor;
    size_t cursor_len;
} dkv_search_opts_t;

/* Runs QUERY and returns one page of matching keys in *PAGE (in POOL),
 * with values and metadata unless the query asks for keys or a
 * projection.  Each page is read from a consistent snapshot; pages
 * continue after the last result returned, so keys unchanged between
 * pages are neither skipped nor repeated.
 * Returns DKV_OK; DKV_EINVAL for a malformed query (no entity, a clause
 * without its fields, NOT without one child, a bad cursor); DKV_ECLOSED. */
DKV_API dkv_status_t dkv_search(dkv_page_t **page, dkv_client_t *client,
                                const dkv_query_t *query,
                                const dkv_search_opts_t *opts,
                                apr_pool_t *pool);

#ifdef __cplusplus
}
#endif
#endif /* DKV_SEARCH_H */
