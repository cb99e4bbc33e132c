/*
 * search.c -- the engine's label index and query evaluator.
 *
 * Two LMDB databases, both MDB_DUPSORT with user keys as their data:
 *
 *   "search.entity"  ENTITY NUL                         -> user key
 *   "search.label"   ENTITY NUL NAME NUL 's' VALUE      -> user key
 *                    ENTITY NUL NAME NUL 'n' NUMBER(8)  -> user key
 *
 * Every indexed label has a string entry; one whose value is a number
 * (see dkv/search.h) also has a numeric entry, whose 8 bytes are the
 * double in an order-preserving form, so that byte order is numeric order.
 * The engine calls dkv_eng_search_index() inside the write transaction of
 * every change, so the index always matches the records.
 *
 * A query is validated and compiled, then answered in three steps:
 * candidates (user keys from the index when the condition allows it, else
 * every key of the entity), evaluation (each candidate is loaded through
 * the engine's loader and the whole condition is checked against its
 * indexed labels: the index only narrows, the record decides), and paging
 * (the matches are sorted and the page starts strictly after the cursor's
 * position).  Every page recomputes all matches: cost O(candidates) loads
 * and O(matches log matches) comparisons per page.  See
 * docs/internals/engine.md, "Search index".
 *
 * Outline: numbers and byte strings -- index maintenance -- query
 * compilation -- candidates -- evaluation -- ordering and cursors -- the
 * query.
 */
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "common/codec.h"
#include "common/status.h"
#include "engine/search.h"

#define SRCH_DB_ENTITY "search.entity"
#define SRCH_DB_LABEL "search.label"

#define SRCH_TYPE_STRING 's'
#define SRCH_TYPE_NUMBER 'n'

/* Query limits. */
#define SRCH_MAX_DEPTH 32
#define SRCH_MAX_CLAUSES 256
#define SRCH_MAX_ORDER DKV_MAX_LABELS
#define SRCH_DEFAULT_PAGE 100
#define SRCH_MAX_PAGE 10000

/* Cursor format version (first byte of every cursor). */
#define SRCH_CURSOR_V1 1

/* Kinds of a sort value, in their sort order (absolute, for ascending and
 * descending alike: numbers, then strings, then missing). */
#define SRCH_SV_NUMBER 0
#define SRCH_SV_STRING 1
#define SRCH_SV_MISSING 2

struct dkv_eng_search {
    MDB_dbi entity_dbi;
    MDB_dbi label_dbi;
    size_t max_key;             /* LMDB's key (and dup data) size limit */
};

/* ===================================================== numbers, bytes */

/* 1 when S[0..LEN) is a decimal number in strtod's syntax without
 * spaces, hex, infinity or NaN: [+-] digits [. digits] [e [+-] digits],
 * with at least one mantissa digit (".5" and "5." count). */
static int
srch_number_syntax(const char *s, size_t len)
{
    size_t i = 0, digits = 0, exp_digits = 0;

    if (i < len && (s[i] == '+' || s[i] == '-')) {
        i++;
    }
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            digits++;
        }
    }
    if (digits == 0) {
        return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
            exp_digits++;
        }
        if (exp_digits == 0) {
            return 0;
        }
    }
    return i == len;
}

/* Parses S (LEN bytes, NUL-terminated) as a label number: returns 1 and
 * sets *OUT (with -0 made 0) when it is one, else 0.  The syntax is
 * checked here, so strtod's locale can only change the decimal point:
 * under a locale whose point is not ".", the point is replaced by the
 * locale's in a copy (on the stack, or in POOL for long inputs). */
static int
srch_number(double *out, const char *s, size_t len, apr_pool_t *pool)
{
    const char *dp;
    char stackbuf[512];
    char *buf, *end;
    size_t dplen, i, j;
    double d;

    if (!srch_number_syntax(s, len)) {
        return 0;
    }
    dp = localeconv()->decimal_point;
    if (dp == NULL || (dp[0] == '.' && dp[1] == '\0')
        || memchr(s, '.', len) == NULL) {
        d = strtod(s, &end);
        if (end != s + len) {
            return 0;
        }
    }
    else {
        dplen = strlen(dp);
        if (len + dplen + 1 <= sizeof(stackbuf)) {
            buf = stackbuf;
        }
        else {
            buf = apr_palloc(pool, len + dplen + 1);
        }
        for (i = 0, j = 0; i < len; i++) {
            if (s[i] == '.') {
                memcpy(buf + j, dp, dplen);
                j += dplen;
            }
            else {
                buf[j++] = s[i];
            }
        }
        buf[j] = '\0';
        d = strtod(buf, &end);
        if (end != buf + j) {
            return 0;
        }
    }
    if (!isfinite(d)) {
        return 0;
    }
    *out = (d == 0.0) ? 0.0 : d;
    return 1;
}

/* Writes D's order-preserving 8-byte form: the IEEE bits, big-endian,
 * with every bit flipped for negatives and the sign bit set for the
 * others, so that bytewise order is numeric order. */
static void
srch_encode_number(unsigned char *p, double d)
{
    uint64_t bits;

    if (d == 0.0) {
        d = 0.0;                /* -0 sorts and compares as 0 */
    }
    memcpy(&bits, &d, sizeof(bits));
    if (bits & UINT64_C(0x8000000000000000)) {
        bits = ~bits;
    }
    else {
        bits |= UINT64_C(0x8000000000000000);
    }
    dkv_put_be64(p, bits);
}

/* ================================================== index maintenance */

/* One index entry of a key: a key in one of the two databases. */
typedef struct srch_entry {
    int db;                     /* 0: entity index, 1: label index */
    unsigned char *k;
    size_t len;
} srch_entry_t;

/* Builds "ENTITY NUL NAME NUL TYPE" followed by TAIL_LEN bytes of room;
 * *LEN receives the length without the room. */
static unsigned char *
srch_label_prefix(size_t *len, const char *entity, size_t elen,
                  const char *name, size_t nlen, int type, size_t tail_len,
                  apr_pool_t *pool)
{
    unsigned char *k = apr_palloc(pool, elen + nlen + 3 + tail_len);

    memcpy(k, entity, elen);
    k[elen] = '\0';
    memcpy(k + elen + 1, name, nlen);
    k[elen + 1 + nlen] = '\0';
    k[elen + 2 + nlen] = (unsigned char)type;
    *len = elen + nlen + 3;
    return k;
}

/* Appends to ENTRIES (an array of srch_entry_t) the index entries of a
 * key with ENTITY and LABELS.  Fails, before anything is written, when an
 * entry would exceed LMDB's key size. */
static dkv_status_t
srch_entries(apr_array_header_t *entries, const dkv_eng_search_t *s,
             const char *entity, const dkv_label_t *labels,
             size_t nlabels, apr_pool_t *pool)
{
    size_t elen, i;
    srch_entry_t *e;

    if (entity == NULL) {
        return DKV_OK;
    }
    elen = strlen(entity);
    if (elen + 1 > s->max_key) {
        return dkv_error_set(DKV_ETOOLARGE, "search: entity is %lu bytes; "
                             "the limit is %d", (unsigned long)elen,
                             DKV_MAX_ENTITY);
    }
    e = apr_array_push(entries);
    e->db = 0;
    e->len = elen + 1;
    e->k = apr_palloc(pool, e->len);
    memcpy(e->k, entity, elen + 1);

    for (i = 0; i < nlabels; i++) {
        const dkv_label_t *l = &labels[i];
        size_t nlen, vlen, plen;
        double d;

        if (!l->indexed) {
            continue;
        }
        if (l->name == NULL || l->value == NULL) {
            return dkv_error_set(DKV_EINVAL, "search: indexed label %lu "
                                 "has no name or no value",
                                 (unsigned long)i);
        }
        nlen = strlen(l->name);
        vlen = strlen(l->value);
        if (elen + nlen + 3 + vlen > s->max_key) {
            return dkv_error_set(DKV_ETOOLARGE, "search: indexed label "
                                 "\"%.64s\" is too large (name %lu, value "
                                 "%lu bytes; limits %d and %d)", l->name,
                                 (unsigned long)nlen, (unsigned long)vlen,
                                 DKV_MAX_LABEL_NAME, DKV_MAX_LABEL_VALUE);
        }
        e = apr_array_push(entries);
        e->db = 1;
        e->k = srch_label_prefix(&plen, entity, elen, l->name, nlen,
                                 SRCH_TYPE_STRING, vlen, pool);
        memcpy(e->k + plen, l->value, vlen);
        e->len = plen + vlen;

        if (srch_number(&d, l->value, vlen, pool)) {
            e = apr_array_push(entries);
            e->db = 1;
            e->k = srch_label_prefix(&plen, entity, elen, l->name, nlen,
                                     SRCH_TYPE_NUMBER, 8, pool);
            srch_encode_number(e->k + plen, d);
            e->len = plen + 8;
        }
    }
    return DKV_OK;
}

static int
srch_entry_cmp(const void *a, const void *b)
{
    const srch_entry_t *x = a, *y = b;

    if (x->db != y->db) {
        return x->db - y->db;
    }
    return dkv_bytes_cmp(x->k, x->len, y->k, y->len);
}

/* Sorts ENTRIES and removes duplicates (a label given twice). */
static void
srch_entries_sort(apr_array_header_t *entries)
{
    srch_entry_t *e = (void *)entries->elts;
    int i, n = 0;

    if (entries->nelts < 2) {
        return;
    }
    qsort(e, (size_t)entries->nelts, sizeof(*e), srch_entry_cmp);
    for (i = 0; i < entries->nelts; i++) {
        if (n == 0 || srch_entry_cmp(&e[n - 1], &e[i]) != 0) {
            e[n++] = e[i];
        }
    }
    entries->nelts = n;
}

/* 1 when two label lists are the same, in the same order. */
static int
srch_labels_equal(const dkv_label_t *a, size_t na, const dkv_label_t *b,
                  size_t nb)
{
    size_t i;

    if (na != nb) {
        return 0;
    }
    for (i = 0; i < na; i++) {
        if ((a[i].indexed != 0) != (b[i].indexed != 0)
            || a[i].name == NULL || b[i].name == NULL
            || a[i].value == NULL || b[i].value == NULL
            || strcmp(a[i].name, b[i].name) != 0
            || strcmp(a[i].value, b[i].value) != 0) {
            return 0;
        }
    }
    return 1;
}

/* Opens search's two databases (contract in search.h).  The engine's
 * environment must allow them: mdb_env_set_maxdbs counts both. */
dkv_status_t
dkv_eng_search_init(dkv_eng_search_t **search, MDB_txn *txn,
                    apr_pool_t *pool)
{
    dkv_eng_search_t *s = apr_pcalloc(pool, sizeof(*s));
    int rc;

    rc = mdb_dbi_open(txn, SRCH_DB_ENTITY, MDB_CREATE | MDB_DUPSORT,
                      &s->entity_dbi);
    if (rc == 0) {
        rc = mdb_dbi_open(txn, SRCH_DB_LABEL, MDB_CREATE | MDB_DUPSORT,
                          &s->label_dbi);
    }
    if (rc == MDB_INCOMPATIBLE) {
        return dkv_error_set(DKV_ECORRUPT, "search: the index databases "
                             "exist with other flags: %s",
                             mdb_strerror(rc));
    }
    if (rc != 0) {
        return dkv_error_set(dkv_status_from_mdb(rc), "search: cannot open "
                             "the index databases: %s", mdb_strerror(rc));
    }
    s->max_key = (size_t)mdb_env_get_maxkeysize(mdb_txn_env(txn));
    *search = s;
    return DKV_OK;
}

/* Moves KEY's index entries (contract in search.h): only the entries that
 * differ between the old and the new state are deleted or added.  Over-
 * size entries are refused before anything is written. */
dkv_status_t
dkv_eng_search_index(dkv_eng_search_t *search, MDB_txn *txn,
                     const void *key, size_t key_len,
                     const char *old_entity,
                     const dkv_label_t *old_labels, size_t old_nlabels,
                     const char *new_entity,
                     const dkv_label_t *new_labels, size_t new_nlabels,
                     apr_pool_t *scratch)
{
    apr_array_header_t *olds, *news;
    const srch_entry_t *o, *n;
    MDB_dbi dbis[2];
    MDB_val k, v;
    dkv_status_t rv;
    int i = 0, j = 0, rc;

    if (old_entity == NULL && new_entity == NULL) {
        return DKV_OK;
    }
    if (old_entity != NULL && new_entity != NULL
        && strcmp(old_entity, new_entity) == 0
        && srch_labels_equal(old_labels, old_nlabels, new_labels,
                             new_nlabels)) {
        return DKV_OK;
    }
    if (key_len == 0 || key_len > search->max_key) {
        return dkv_error_set(DKV_ETOOLARGE, "search: key of %lu bytes "
                             "cannot be indexed", (unsigned long)key_len);
    }

    olds = apr_array_make(scratch, 8, sizeof(srch_entry_t));
    news = apr_array_make(scratch, 8, sizeof(srch_entry_t));
    rv = srch_entries(olds, search, old_entity, old_labels, old_nlabels,
                      scratch);
    if (rv == DKV_OK) {
        rv = srch_entries(news, search, new_entity, new_labels, new_nlabels,
                          scratch);
    }
    if (rv != DKV_OK) {
        return rv;
    }
    srch_entries_sort(olds);
    srch_entries_sort(news);

    /* Merge the two sorted lists: delete what only the old state has, add
     * what only the new one has, leave what both have. */
    dbis[0] = search->entity_dbi;
    dbis[1] = search->label_dbi;
    o = (void *)olds->elts;
    n = (void *)news->elts;
    v.mv_data = (void *)key;
    v.mv_size = key_len;
    while (i < olds->nelts || j < news->nelts) {
        int c;

        if (i == olds->nelts) {
            c = 1;
        }
        else if (j == news->nelts) {
            c = -1;
        }
        else {
            c = srch_entry_cmp(&o[i], &n[j]);
        }
        if (c == 0) {
            i++;
            j++;
            continue;
        }
        if (c < 0) {
            k.mv_data = o[i].k;
            k.mv_size = o[i].len;
            rc = mdb_del(txn, dbis[o[i].db], &k, &v);
            i++;
            if (rc == MDB_NOTFOUND) {
                rc = 0;         /* already gone: nothing to remove */
            }
        }
        else {
            k.mv_data = n[j].k;
            k.mv_size = n[j].len;
            rc = mdb_put(txn, dbis[n[j].db], &k, &v, 0);
            j++;
            if (rc == MDB_KEYEXIST) {
                rc = 0;
            }
        }
        if (rc != 0) {
            return dkv_error_set(dkv_status_from_mdb(rc), "search: cannot "
                                 "update the index: %s", mdb_strerror(rc));
        }
    }
    return DKV_OK;
}

/* ================================================== query compilation */

/* A validated clause, with its numbers parsed once. */
typedef struct srch_node srch_node_t;
struct srch_node {
    dkv_clause_type_t type;
    int numeric;                /* EQ, RANGE: compare as numbers */
    const char *label;
    const char *value;          /* EQ, PREFIX */
    size_t value_len;
    const char *low, *high;     /* RANGE; NULL: unbounded */
    size_t low_len, high_len;
    double num, lo, hi;         /* numeric EQ value, RANGE bounds */
    srch_node_t *kids;
    size_t nkids;
};

/* What a query needs while it runs. */
typedef struct srch_query {
    const dkv_query_t *q;
    const char *entity;
    size_t entity_len;
    srch_node_t *where;         /* NULL: every key of the entity */
    size_t nclauses;
    uint32_t fingerprint;       /* binds cursors to their query */
} srch_query_t;

static const char *
srch_clause_name(dkv_clause_type_t t)
{
    switch (t) {
    case DKV_CLAUSE_EQ: return "EQ";
    case DKV_CLAUSE_RANGE: return "RANGE";
    case DKV_CLAUSE_PREFIX: return "PREFIX";
    case DKV_CLAUSE_AND: return "AND";
    case DKV_CLAUSE_OR: return "OR";
    case DKV_CLAUSE_NOT: return "NOT";
    }
    return "?";
}

static dkv_status_t
srch_compile(srch_node_t *node, srch_query_t *sq, const dkv_clause_t *c,
             int depth, apr_pool_t *pool)
{
    size_t i;
    dkv_status_t rv;

    if (depth > SRCH_MAX_DEPTH) {
        return dkv_error_set(DKV_EINVAL, "search: the condition is nested "
                             "deeper than %d", SRCH_MAX_DEPTH);
    }
    if (++sq->nclauses > SRCH_MAX_CLAUSES) {
        return dkv_error_set(DKV_EINVAL, "search: the condition has more "
                             "than %d clauses", SRCH_MAX_CLAUSES);
    }
    memset(node, 0, sizeof(*node));
    node->type = c->type;
    switch (c->type) {
    case DKV_CLAUSE_EQ:
    case DKV_CLAUSE_PREFIX:
        if (c->label == NULL || c->value == NULL) {
            return dkv_error_set(DKV_EINVAL, "search: %s clause needs a "
                                 "label and a value",
                                 srch_clause_name(c->type));
        }
        node->label = c->label;
        node->value = c->value;
        node->value_len = strlen(c->value);
        if (c->type == DKV_CLAUSE_EQ) {
            node->numeric = srch_number(&node->num, node->value,
                                        node->value_len, pool);
        }
        break;
    case DKV_CLAUSE_RANGE:
        if (c->label == NULL || (c->low == NULL && c->high == NULL)) {
            return dkv_error_set(DKV_EINVAL, "search: RANGE clause needs a "
                                 "label and at least one bound");
        }
        node->label = c->label;
        node->low = c->low;
        node->high = c->high;
        node->low_len = c->low ? strlen(c->low) : 0;
        node->high_len = c->high ? strlen(c->high) : 0;
        node->numeric = (c->low == NULL
                         || srch_number(&node->lo, c->low, node->low_len,
                                        pool))
                        && (c->high == NULL
                            || srch_number(&node->hi, c->high,
                                           node->high_len, pool));
        break;
    case DKV_CLAUSE_AND:
    case DKV_CLAUSE_OR:
    case DKV_CLAUSE_NOT:
        if (c->children == NULL || c->nchildren == 0
            || (c->type == DKV_CLAUSE_NOT && c->nchildren != 1)) {
            return dkv_error_set(DKV_EINVAL, "search: %s clause needs %s",
                                 srch_clause_name(c->type),
                                 c->type == DKV_CLAUSE_NOT
                                 ? "exactly one child"
                                 : "at least one child");
        }
        if (c->nchildren > SRCH_MAX_CLAUSES) {
            return dkv_error_set(DKV_EINVAL, "search: the condition has "
                                 "more than %d clauses", SRCH_MAX_CLAUSES);
        }
        node->nkids = c->nchildren;
        node->kids = apr_palloc(pool, c->nchildren * sizeof(srch_node_t));
        for (i = 0; i < c->nchildren; i++) {
            rv = srch_compile(&node->kids[i], sq, &c->children[i],
                              depth + 1, pool);
            if (rv != DKV_OK) {
                return rv;
            }
        }
        break;
    default:
        return dkv_error_set(DKV_EINVAL, "search: unknown clause type %d",
                             (int)c->type);
    }
    if (node->label != NULL && strlen(node->label) > DKV_MAX_LABEL_NAME) {
        return dkv_error_set(DKV_EINVAL, "search: label name \"%.64s...\" "
                             "is longer than %d bytes", node->label,
                             DKV_MAX_LABEL_NAME);
    }
    return DKV_OK;
}

/* FNV-1a, over the parts of a query that decide its results' order. */
static uint32_t
srch_fnv(uint32_t h, const void *p, size_t len)
{
    const unsigned char *b = p;
    size_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ b[i]) * 16777619u;
    }
    return h;
}

static uint32_t
srch_fnv_str(uint32_t h, const char *s)
{
    unsigned char none = 0xff;

    if (s == NULL) {
        return srch_fnv(h, &none, 1);
    }
    return srch_fnv(h, s, strlen(s) + 1);
}

static uint32_t
srch_fnv_u64(uint32_t h, uint64_t v)
{
    unsigned char b[8];

    dkv_put_be64(b, v);
    return srch_fnv(h, b, 8);
}

static uint32_t
srch_fnv_node(uint32_t h, const srch_node_t *n)
{
    size_t i;

    h = srch_fnv_u64(h, (uint64_t)n->type);
    h = srch_fnv_str(h, n->label);
    h = srch_fnv_str(h, n->value);
    h = srch_fnv_str(h, n->low);
    h = srch_fnv_str(h, n->high);
    h = srch_fnv_u64(h, n->nkids);
    for (i = 0; i < n->nkids; i++) {
        h = srch_fnv_node(h, &n->kids[i]);
    }
    return h;
}

/* Validates QUERY and OPTS and fills SQ; *PAGE_SIZE receives the page
 * size.  DKV_EINVAL with a message on any problem. */
static dkv_status_t
srch_prepare(srch_query_t *sq, size_t *page_size, const dkv_query_t *query,
             const dkv_search_opts_t *opts, apr_pool_t *pool)
{
    uint32_t h = 2166136261u;
    dkv_status_t rv;
    size_t i;

    memset(sq, 0, sizeof(*sq));
    if (query == NULL) {
        return dkv_error_set(DKV_EINVAL, "search: no query");
    }
    if (query->entity == NULL || query->entity[0] == '\0') {
        return dkv_error_set(DKV_EINVAL, "search: the query has no entity");
    }
    sq->q = query;
    sq->entity = query->entity;
    sq->entity_len = strlen(query->entity);
    if (sq->entity_len > DKV_MAX_ENTITY) {
        return dkv_error_set(DKV_EINVAL, "search: entity is %lu bytes; the "
                             "limit is %d", (unsigned long)sq->entity_len,
                             DKV_MAX_ENTITY);
    }
    if (query->where != NULL) {
        sq->where = apr_palloc(pool, sizeof(*sq->where));
        rv = srch_compile(sq->where, sq, query->where, 1, pool);
        if (rv != DKV_OK) {
            return rv;
        }
    }
    if (query->norder > 0 && query->order == NULL) {
        return dkv_error_set(DKV_EINVAL, "search: norder is %lu but order "
                             "is NULL", (unsigned long)query->norder);
    }
    if (query->norder > SRCH_MAX_ORDER) {
        return dkv_error_set(DKV_EINVAL, "search: %lu sort keys; the limit "
                             "is %d", (unsigned long)query->norder,
                             SRCH_MAX_ORDER);
    }
    for (i = 0; i < query->norder; i++) {
        if (query->order[i].label == NULL) {
            return dkv_error_set(DKV_EINVAL, "search: sort key %lu has no "
                                 "label", (unsigned long)i);
        }
    }
    if (query->nselect > 0 && query->select == NULL) {
        return dkv_error_set(DKV_EINVAL, "search: nselect is %lu but select "
                             "is NULL", (unsigned long)query->nselect);
    }
    for (i = 0; i < query->nselect; i++) {
        if (query->select[i] == NULL) {
            return dkv_error_set(DKV_EINVAL, "search: selected label %lu is "
                                 "NULL", (unsigned long)i);
        }
    }
    *page_size = SRCH_DEFAULT_PAGE;
    if (opts != NULL) {
        if (opts->page_size > SRCH_MAX_PAGE) {
            return dkv_error_set(DKV_EINVAL, "search: page size %lu; the "
                                 "limit is %d",
                                 (unsigned long)opts->page_size,
                                 SRCH_MAX_PAGE);
        }
        if (opts->page_size > 0) {
            *page_size = opts->page_size;
        }
        if (opts->cursor == NULL && opts->cursor_len > 0) {
            return dkv_error_set(DKV_EINVAL, "search: cursor_len is %lu but "
                                 "the cursor is NULL",
                                 (unsigned long)opts->cursor_len);
        }
    }

    h = srch_fnv_str(h, query->entity);
    h = srch_fnv_u64(h, query->limit);
    h = srch_fnv_u64(h, query->norder);
    for (i = 0; i < query->norder; i++) {
        h = srch_fnv_str(h, query->order[i].label);
        h = srch_fnv_u64(h, query->order[i].descending ? 1 : 0);
    }
    if (sq->where != NULL) {
        h = srch_fnv_node(h, sq->where);
    }
    sq->fingerprint = h;
    return DKV_OK;
}

/* ========================================================= candidates */

typedef struct srch_cand {
    unsigned char *key;
    size_t len;
} srch_cand_t;

/* Appends to CANDS the user keys stored under the keys K of DBI with
 * K[0..PFX_LEN) == SEEK[0..PFX_LEN) and K >= SEEK; with EXACT, only K ==
 * SEEK; with TAIL_LEN, the rest of K must be that long (numeric entries);
 * with STOP, only K's rest <= STOP. */
static dkv_status_t
srch_collect(apr_array_header_t *cands, MDB_txn *txn, MDB_dbi dbi,
             const unsigned char *seek, size_t seek_len, size_t pfx_len,
             int exact, size_t tail_len, const unsigned char *stop,
             size_t stop_len, apr_pool_t *pool)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;
    dkv_status_t rv = DKV_OK;

    rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc != 0) {
        return dkv_error_set(dkv_status_from_mdb(rc), "search: cannot open "
                             "an index cursor: %s", mdb_strerror(rc));
    }
    k.mv_data = (void *)seek;
    k.mv_size = seek_len;
    rc = mdb_cursor_get(cur, &k, &v, exact ? MDB_SET_KEY : MDB_SET_RANGE);
    while (rc == 0) {
        srch_cand_t *c;
        const unsigned char *tail;
        size_t tlen;

        if (k.mv_size < pfx_len || memcmp(k.mv_data, seek, pfx_len) != 0) {
            break;
        }
        tail = (const unsigned char *)k.mv_data + pfx_len;
        tlen = k.mv_size - pfx_len;
        if (tail_len > 0 && tlen != tail_len) {
            rv = dkv_error_set(DKV_ECORRUPT, "search: damaged index entry "
                               "(numeric value of %lu bytes)",
                               (unsigned long)tlen);
            break;
        }
        if (stop != NULL && dkv_bytes_cmp(tail, tlen, stop, stop_len) > 0) {
            break;
        }
        if (v.mv_size == 0 || v.mv_size > DKV_MAX_KEY) {
            rv = dkv_error_set(DKV_ECORRUPT, "search: damaged index entry "
                               "(user key of %lu bytes)",
                               (unsigned long)v.mv_size);
            break;
        }
        c = apr_array_push(cands);
        c->len = v.mv_size;
        c->key = apr_pmemdup(pool, v.mv_data, v.mv_size);
        rc = mdb_cursor_get(cur, &k, &v, exact ? MDB_NEXT_DUP : MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rv == DKV_OK && rc != 0 && rc != MDB_NOTFOUND) {
        rv = dkv_error_set(dkv_status_from_mdb(rc), "search: cannot read "
                           "the index: %s", mdb_strerror(rc));
    }
    return rv;
}

/* 1 when NODE's candidates can come from the label index: a label clause,
 * an AND with such a child, an OR of such children. */
static int
srch_indexable(const srch_node_t *n)
{
    size_t i;

    switch (n->type) {
    case DKV_CLAUSE_EQ:
    case DKV_CLAUSE_RANGE:
    case DKV_CLAUSE_PREFIX:
        return 1;
    case DKV_CLAUSE_AND:
        for (i = 0; i < n->nkids; i++) {
            if (srch_indexable(&n->kids[i])) {
                return 1;
            }
        }
        return 0;
    case DKV_CLAUSE_OR:
        for (i = 0; i < n->nkids; i++) {
            if (!srch_indexable(&n->kids[i])) {
                return 0;
            }
        }
        return 1;
    default:
        return 0;
    }
}

/* Rank of an AND child as a candidate source: lower is narrower. */
static int
srch_rank(const srch_node_t *n)
{
    switch (n->type) {
    case DKV_CLAUSE_EQ: return 0;
    case DKV_CLAUSE_PREFIX: return 1;
    case DKV_CLAUSE_RANGE: return 2;
    default: return srch_indexable(n) ? 3 : 4;
    }
}

/* Appends to CANDS a superset of the keys of SQ's entity that NODE (an
 * indexable node) matches, from the label index. */
static dkv_status_t
srch_candidates(apr_array_header_t *cands, const dkv_eng_search_t *s,
                MDB_txn *txn, const srch_query_t *sq, const srch_node_t *n,
                apr_pool_t *pool)
{
    unsigned char *k, hi[8];
    size_t plen, nlen, i, vlen;
    dkv_status_t rv;
    const srch_node_t *best;

    switch (n->type) {
    case DKV_CLAUSE_AND:
        best = NULL;
        for (i = 0; i < n->nkids; i++) {
            if (best == NULL || srch_rank(&n->kids[i]) < srch_rank(best)) {
                best = &n->kids[i];
            }
        }
        return srch_candidates(cands, s, txn, sq, best, pool);
    case DKV_CLAUSE_OR:
        for (i = 0; i < n->nkids; i++) {
            rv = srch_candidates(cands, s, txn, sq, &n->kids[i], pool);
            if (rv != DKV_OK) {
                return rv;
            }
        }
        return DKV_OK;
    default:
        break;
    }

    nlen = strlen(n->label);
    if (n->type == DKV_CLAUSE_EQ && n->numeric) {
        k = srch_label_prefix(&plen, sq->entity, sq->entity_len, n->label,
                              nlen, SRCH_TYPE_NUMBER, 8, pool);
        srch_encode_number(k + plen, n->num);
        return srch_collect(cands, txn, s->label_dbi, k, plen + 8, plen, 1,
                            8, NULL, 0, pool);
    }
    if (n->type == DKV_CLAUSE_RANGE && n->numeric) {
        k = srch_label_prefix(&plen, sq->entity, sq->entity_len, n->label,
                              nlen, SRCH_TYPE_NUMBER, 8, pool);
        if (n->low != NULL) {
            srch_encode_number(k + plen, n->lo);
        }
        if (n->high != NULL) {
            srch_encode_number(hi, n->hi);
        }
        return srch_collect(cands, txn, s->label_dbi, k,
                            plen + (n->low != NULL ? 8 : 0), plen, 0, 8,
                            n->high != NULL ? hi : NULL, 8, pool);
    }
    /* String forms.  No indexed value is longer than DKV_MAX_LABEL_VALUE:
     * longer EQ and PREFIX values match nothing, and a longer low bound
     * is cut for the seek (a smaller start; evaluation filters). */
    vlen = n->type == DKV_CLAUSE_RANGE ? n->low_len : n->value_len;
    if (vlen > DKV_MAX_LABEL_VALUE) {
        if (n->type != DKV_CLAUSE_RANGE) {
            return DKV_OK;
        }
        vlen = DKV_MAX_LABEL_VALUE;
    }
    k = srch_label_prefix(&plen, sq->entity, sq->entity_len, n->label, nlen,
                          SRCH_TYPE_STRING, vlen, pool);
    if (n->type == DKV_CLAUSE_RANGE) {
        if (n->low != NULL) {
            memcpy(k + plen, n->low, vlen);
        }
        return srch_collect(cands, txn, s->label_dbi, k, plen + vlen, plen,
                            0, 0, (const unsigned char *)n->high,
                            n->high_len, pool);
    }
    memcpy(k + plen, n->value, vlen);
    if (n->type == DKV_CLAUSE_EQ) {
        return srch_collect(cands, txn, s->label_dbi, k, plen + vlen, plen,
                            1, 0, NULL, 0, pool);
    }
    return srch_collect(cands, txn, s->label_dbi, k, plen + vlen,
                        plen + vlen, 0, 0, NULL, 0, pool);
}

static int
srch_cand_cmp(const void *a, const void *b)
{
    const srch_cand_t *x = a, *y = b;

    return dkv_bytes_cmp(x->key, x->len, y->key, y->len);
}

/* ========================================================= evaluation */

/* An indexed label of the candidate being evaluated. */
typedef struct srch_lab {
    const char *name;
    const char *value;
    size_t len;
    int num_state;              /* 0: not parsed, 1: number, 2: string */
    double num;
} srch_lab_t;

typedef struct srch_item {
    srch_lab_t *labs;
    size_t nlabs;
    apr_pool_t *pool;
} srch_item_t;

static int
srch_lab_number(srch_lab_t *l, apr_pool_t *pool)
{
    if (l->num_state == 0) {
        l->num_state = srch_number(&l->num, l->value, l->len, pool) ? 1 : 2;
    }
    return l->num_state == 1;
}

/* 1 when label L satisfies leaf clause N. */
static int
srch_leaf(const srch_node_t *n, srch_lab_t *l, apr_pool_t *pool)
{
    switch (n->type) {
    case DKV_CLAUSE_EQ:
        if (n->numeric) {
            return srch_lab_number(l, pool) && l->num == n->num;
        }
        return l->len == n->value_len
               && memcmp(l->value, n->value, l->len) == 0;
    case DKV_CLAUSE_PREFIX:
        return l->len >= n->value_len
               && memcmp(l->value, n->value, n->value_len) == 0;
    case DKV_CLAUSE_RANGE:
        if (n->numeric) {
            return srch_lab_number(l, pool)
                   && (n->low == NULL || l->num >= n->lo)
                   && (n->high == NULL || l->num <= n->hi);
        }
        return (n->low == NULL
                || dkv_bytes_cmp(l->value, l->len, n->low, n->low_len) >= 0)
               && (n->high == NULL
                   || dkv_bytes_cmp(l->value, l->len, n->high,
                                     n->high_len) <= 0);
    default:
        return 0;
    }
}

/* 1 when IT matches N.  A label clause holds when any indexed label of
 * that name satisfies it. */
static int
srch_eval(const srch_node_t *n, srch_item_t *it)
{
    size_t i;

    switch (n->type) {
    case DKV_CLAUSE_AND:
        for (i = 0; i < n->nkids; i++) {
            if (!srch_eval(&n->kids[i], it)) {
                return 0;
            }
        }
        return 1;
    case DKV_CLAUSE_OR:
        for (i = 0; i < n->nkids; i++) {
            if (srch_eval(&n->kids[i], it)) {
                return 1;
            }
        }
        return 0;
    case DKV_CLAUSE_NOT:
        return !srch_eval(&n->kids[0], it);
    default:
        for (i = 0; i < it->nlabs; i++) {
            if (strcmp(it->labs[i].name, n->label) == 0
                && srch_leaf(n, &it->labs[i], it->pool)) {
                return 1;
            }
        }
        return 0;
    }
}

/* ============================================== ordering and cursors */

typedef struct srch_sortval {
    int kind;                   /* SRCH_SV_* */
    double num;
    const char *str;
    size_t len;
} srch_sortval_t;

/* A match: its key and sort values.  ORDER points to the query's sort
 * keys, so that qsort's comparator can reach them. */
typedef struct srch_match {
    const dkv_order_t *order;
    size_t norder;
    const unsigned char *key;
    size_t key_len;
    srch_sortval_t *sv;
} srch_match_t;

static int
srch_match_cmp(const void *a, const void *b)
{
    const srch_match_t *x = a, *y = b;
    size_t i;

    for (i = 0; i < x->norder; i++) {
        const srch_sortval_t *p = &x->sv[i], *q = &y->sv[i];
        int c = 0;

        if (p->kind != q->kind) {
            return p->kind < q->kind ? -1 : 1;
        }
        if (p->kind == SRCH_SV_NUMBER) {
            c = p->num < q->num ? -1 : (p->num > q->num ? 1 : 0);
        }
        else if (p->kind == SRCH_SV_STRING) {
            c = dkv_bytes_cmp(p->str, p->len, q->str, q->len);
        }
        if (c != 0) {
            return x->order[i].descending ? -c : c;
        }
    }
    return dkv_bytes_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* Fills M's sort values from IT's indexed labels (the first label of
 * each name), copying strings into POOL. */
static void
srch_sort_values(srch_match_t *m, const srch_query_t *sq, srch_item_t *it,
                 apr_pool_t *pool)
{
    size_t i, j;

    m->order = sq->q->order;
    m->norder = sq->q->norder;
    m->sv = NULL;
    if (m->norder == 0) {
        return;
    }
    m->sv = apr_pcalloc(pool, m->norder * sizeof(*m->sv));
    for (i = 0; i < m->norder; i++) {
        m->sv[i].kind = SRCH_SV_MISSING;
        for (j = 0; j < it->nlabs; j++) {
            srch_lab_t *l = &it->labs[j];

            if (strcmp(l->name, sq->q->order[i].label) != 0) {
                continue;
            }
            if (srch_lab_number(l, it->pool)) {
                m->sv[i].kind = SRCH_SV_NUMBER;
                m->sv[i].num = l->num;
            }
            else {
                m->sv[i].kind = SRCH_SV_STRING;
                m->sv[i].str = apr_pmemdup(pool, l->value, l->len);
                m->sv[i].len = l->len;
            }
            break;
        }
    }
}

/*
 * Cursor, version 1 (all integers big-endian):
 *   u8  version (1)
 *   u32 query fingerprint
 *   u64 results returned so far (for the query's limit)
 *   u8  number of sort values (the query's norder)
 *   per sort value: u8 kind ('n' + 8-byte number | 's' + u32 length +
 *                   bytes | 'm')
 *   u16 key length (1..DKV_MAX_KEY), key bytes
 */
static void
srch_cursor_encode(const void **out, size_t *out_len,
                   const srch_query_t *sq, uint64_t returned,
                   const srch_match_t *m, apr_pool_t *pool)
{
    size_t len = 1 + 4 + 8 + 1 + 2 + m->key_len, i;
    unsigned char *p, *b;

    for (i = 0; i < m->norder; i++) {
        len += 1 + (m->sv[i].kind == SRCH_SV_NUMBER ? 8
                    : m->sv[i].kind == SRCH_SV_STRING ? 4 + m->sv[i].len
                    : 0);
    }
    b = p = apr_palloc(pool, len);
    *p++ = SRCH_CURSOR_V1;
    dkv_put_be32(p, sq->fingerprint);
    p += 4;
    dkv_put_be64(p, returned);
    p += 8;
    *p++ = (unsigned char)m->norder;
    for (i = 0; i < m->norder; i++) {
        const srch_sortval_t *v = &m->sv[i];

        if (v->kind == SRCH_SV_NUMBER) {
            *p++ = 'n';
            srch_encode_number(p, v->num);
            p += 8;
        }
        else if (v->kind == SRCH_SV_STRING) {
            *p++ = 's';
            dkv_put_be32(p, (uint32_t)v->len);
            p += 4;
            memcpy(p, v->str, v->len);
            p += v->len;
        }
        else {
            *p++ = 'm';
        }
    }
    *p++ = (unsigned char)(m->key_len >> 8);
    *p++ = (unsigned char)m->key_len;
    memcpy(p, m->key, m->key_len);
    *out = b;
    *out_len = len;
}

/* Inverse of srch_encode_number. */
static double
srch_decode_number(const unsigned char *p)
{
    uint64_t bits = dkv_get_be64(p);
    double d;

    if (bits & UINT64_C(0x8000000000000000)) {
        bits &= ~UINT64_C(0x8000000000000000);
    }
    else {
        bits = ~bits;
    }
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static dkv_status_t
srch_bad_cursor(const char *why)
{
    return dkv_error_set(DKV_EINVAL, "search: bad cursor (%s)", why);
}

/* Decodes cursor C (LEN bytes) of query SQ into *RETURNED and M (pointing
 * into C and POOL). */
static dkv_status_t
srch_cursor_decode(uint64_t *returned, srch_match_t *m,
                   const srch_query_t *sq, const unsigned char *c,
                   size_t len, apr_pool_t *pool)
{
    const unsigned char *end = c + len;
    size_t i, n;

    if (len < 1 + 4 + 8 + 1 || c[0] != SRCH_CURSOR_V1) {
        return srch_bad_cursor("not a search cursor of this version");
    }
    if (dkv_get_be32(c + 1) != sq->fingerprint) {
        return srch_bad_cursor("it belongs to another query");
    }
    *returned = dkv_get_be64(c + 5);
    if (c[13] != sq->q->norder) {
        return srch_bad_cursor("wrong number of sort values");
    }
    c += 14;
    m->order = sq->q->order;
    m->norder = sq->q->norder;
    m->sv = m->norder ? apr_pcalloc(pool, m->norder * sizeof(*m->sv))
                      : NULL;
    for (i = 0; i < m->norder; i++) {
        if (c >= end) {
            return srch_bad_cursor("truncated");
        }
        switch (*c++) {
        case 'n':
            if (end - c < 8) {
                return srch_bad_cursor("truncated");
            }
            m->sv[i].kind = SRCH_SV_NUMBER;
            m->sv[i].num = srch_decode_number(c);
            if (!isfinite(m->sv[i].num)) {
                return srch_bad_cursor("bad number");
            }
            c += 8;
            break;
        case 's':
            if (end - c < 4) {
                return srch_bad_cursor("truncated");
            }
            n = dkv_get_be32(c);
            c += 4;
            if ((size_t)(end - c) < n) {
                return srch_bad_cursor("truncated");
            }
            m->sv[i].kind = SRCH_SV_STRING;
            m->sv[i].str = (const char *)c;
            m->sv[i].len = n;
            c += n;
            break;
        case 'm':
            m->sv[i].kind = SRCH_SV_MISSING;
            break;
        default:
            return srch_bad_cursor("bad sort value");
        }
    }
    if (end - c < 2) {
        return srch_bad_cursor("truncated");
    }
    n = ((size_t)c[0] << 8) | c[1];
    c += 2;
    if (n == 0 || n > DKV_MAX_KEY || (size_t)(end - c) != n) {
        return srch_bad_cursor("bad key");
    }
    m->key = c;
    m->key_len = n;
    return DKV_OK;
}

/* ========================================================== the query */

/* Copies into POOL what a projection keeps of FROM: metadata and the
 * labels named in SELECT, no value. */
static void
srch_project(dkv_item_t *to, const dkv_item_t *from, const dkv_query_t *q,
             apr_pool_t *pool)
{
    dkv_label_t *labels;
    size_t i, j, n = 0;

    *to = *from;
    to->key = apr_pmemdup(pool, from->key, from->key_len);
    to->value = NULL;
    to->value_len = 0;
    to->entity = from->entity ? apr_pstrdup(pool, from->entity) : NULL;
    to->content_type = from->content_type
                       ? apr_pstrdup(pool, from->content_type) : NULL;
    to->labels = NULL;
    to->nlabels = 0;
    if (from->nlabels == 0 || from->labels == NULL) {
        return;
    }
    labels = apr_pcalloc(pool, from->nlabels * sizeof(*labels));
    for (i = 0; i < from->nlabels; i++) {
        const dkv_label_t *l = &from->labels[i];

        if (l->name == NULL) {
            continue;
        }
        for (j = 0; j < q->nselect; j++) {
            if (strcmp(l->name, q->select[j]) == 0) {
                labels[n].name = apr_pstrdup(pool, l->name);
                labels[n].value = l->value ? apr_pstrdup(pool, l->value)
                                           : NULL;
                labels[n].indexed = l->indexed;
                n++;
                break;
            }
        }
    }
    to->labels = n ? labels : NULL;
    to->nlabels = n;
}

/* Fills IT with ITEM's indexed labels (in POOL). */
static void
srch_item_view(srch_item_t *it, const dkv_item_t *item, apr_pool_t *pool)
{
    size_t i;

    it->pool = pool;
    it->nlabs = 0;
    it->labs = NULL;
    if (item->nlabels == 0 || item->labels == NULL) {
        return;
    }
    it->labs = apr_palloc(pool, item->nlabels * sizeof(*it->labs));
    for (i = 0; i < item->nlabels; i++) {
        const dkv_label_t *l = &item->labels[i];
        srch_lab_t *v;

        if (!l->indexed || l->name == NULL || l->value == NULL) {
            continue;
        }
        v = &it->labs[it->nlabs++];
        v->name = l->name;
        v->value = l->value;
        v->len = strlen(l->value);
        v->num_state = 0;
    }
}

/* Loads every candidate of SQ and appends the matches to MATCHES (keys
 * and sort values in WORK). */
static dkv_status_t
srch_matches(apr_array_header_t *matches, const dkv_eng_search_t *s,
             MDB_txn *txn, const srch_query_t *sq, dkv_eng_load_fn *load,
             void *baton, apr_pool_t *work)
{
    apr_array_header_t *cands;
    srch_cand_t *c;
    apr_pool_t *iter;
    dkv_status_t rv;
    int i, n = 0;

    cands = apr_array_make(work, 64, sizeof(srch_cand_t));
    if (sq->where != NULL && srch_indexable(sq->where)) {
        rv = srch_candidates(cands, s, txn, sq, sq->where, work);
    }
    else {
        unsigned char *k = apr_palloc(work, sq->entity_len + 1);

        memcpy(k, sq->entity, sq->entity_len + 1);
        rv = srch_collect(cands, txn, s->entity_dbi, k, sq->entity_len + 1,
                          sq->entity_len + 1, 1, 0, NULL, 0, work);
    }
    if (rv != DKV_OK) {
        return rv;
    }
    c = (void *)cands->elts;
    if (cands->nelts > 1) {
        qsort(c, (size_t)cands->nelts, sizeof(*c), srch_cand_cmp);
        for (i = 0; i < cands->nelts; i++) {
            if (n == 0 || srch_cand_cmp(&c[n - 1], &c[i]) != 0) {
                c[n++] = c[i];
            }
        }
        cands->nelts = n;
    }

    if (apr_pool_create(&iter, work) != APR_SUCCESS) {
        return dkv_error_set(APR_ENOMEM, "search: out of memory");
    }
    for (i = 0; i < cands->nelts; i++) {
        dkv_item_t item;
        srch_item_t it;
        srch_match_t *m;

        apr_pool_clear(iter);
        memset(&item, 0, sizeof(item));
        rv = load(baton, &item, c[i].key, c[i].len, iter);
        if (rv == DKV_ENOTFOUND) {
            continue;
        }
        if (rv != DKV_OK) {
            return rv;
        }
        /* The record decides: an index entry that disagrees with it
         * (another entity) is not a match. */
        if (item.entity == NULL || strcmp(item.entity, sq->entity) != 0) {
            continue;
        }
        srch_item_view(&it, &item, iter);
        if (sq->where != NULL && !srch_eval(sq->where, &it)) {
            continue;
        }
        m = apr_array_push(matches);
        m->key = c[i].key;
        m->key_len = c[i].len;
        srch_sort_values(m, sq, &it, work);
    }
    apr_pool_destroy(iter);
    return DKV_OK;
}

/* Makes the page from MATCHES (sorted): the results after the cursor's
 * position, at most PAGE_SIZE of them and no more than the limit
 * allows. */
static dkv_status_t
srch_page(dkv_page_t *page, const srch_query_t *sq,
          const srch_match_t *matches, size_t nmatches, size_t start,
          uint64_t returned, size_t page_size, dkv_eng_load_fn *load,
          void *baton, uint64_t revision, apr_pool_t *pool,
          apr_pool_t *work)
{
    const dkv_query_t *q = sq->q;
    size_t want = page_size, i;
    const srch_match_t *last = NULL;
    apr_pool_t *iter = NULL;
    dkv_status_t rv;

    if (q->limit > 0) {
        want = returned >= q->limit ? 0
               : (q->limit - returned < want ? (size_t)(q->limit - returned)
                                             : want);
    }
    if (want > nmatches - start) {
        want = nmatches - start;
    }
    page->items = want ? apr_pcalloc(pool, want * sizeof(dkv_item_t))
                       : NULL;
    if (q->nselect > 0 && !q->keys_only
        && apr_pool_create(&iter, work) != APR_SUCCESS) {
        return dkv_error_set(APR_ENOMEM, "search: out of memory");
    }
    for (i = start; i < nmatches && page->count < want; i++) {
        const srch_match_t *m = &matches[i];
        dkv_item_t *out = &page->items[page->count];

        if (q->keys_only) {
            out->status = DKV_OK;
            out->key = apr_pmemdup(pool, m->key, m->key_len);
            out->key_len = m->key_len;
            out->revision = revision;
        }
        else if (iter != NULL) {
            dkv_item_t full;

            apr_pool_clear(iter);
            memset(&full, 0, sizeof(full));
            rv = load(baton, &full, m->key, m->key_len, iter);
            if (rv == DKV_ENOTFOUND) {
                continue;
            }
            if (rv != DKV_OK) {
                return rv;
            }
            srch_project(out, &full, q, pool);
        }
        else {
            rv = load(baton, out, m->key, m->key_len, pool);
            if (rv == DKV_ENOTFOUND) {
                memset(out, 0, sizeof(*out));
                continue;
            }
            if (rv != DKV_OK) {
                return rv;
            }
        }
        out->status = DKV_OK;
        page->count++;
        last = m;
    }
    page->revision = revision;
    /* More results follow when matches remain and the limit allows. */
    page->more = last != NULL && i < nmatches
                 && (q->limit == 0 || returned + page->count < q->limit);
    if (page->more) {
        srch_cursor_encode(&page->next, &page->next_len, sq,
                           returned + page->count, last, pool);
    }
    return DKV_OK;
}

/* Answers a query (contract in search.h; semantics in dkv/search.h).
 * Every page evaluates every candidate and sorts all matches. */
dkv_status_t
dkv_eng_search_query(dkv_page_t **page, dkv_eng_search_t *search,
                     MDB_txn *txn, const dkv_query_t *query,
                     const dkv_search_opts_t *opts, dkv_eng_load_fn *load,
                     void *baton, uint64_t revision, apr_pool_t *pool)
{
    srch_query_t sq;
    srch_match_t pos;
    apr_array_header_t *matches;
    apr_pool_t *work;
    size_t page_size = SRCH_DEFAULT_PAGE, lo, hi;
    uint64_t returned = 0;
    dkv_page_t *pg;
    srch_match_t *m;
    dkv_status_t rv;

    if (page == NULL || search == NULL || txn == NULL || load == NULL
        || pool == NULL) {
        return dkv_error_set(DKV_EINVAL, "search: NULL argument");
    }
    if (apr_pool_create(&work, pool) != APR_SUCCESS) {
        return dkv_error_set(APR_ENOMEM, "search: out of memory");
    }
    rv = srch_prepare(&sq, &page_size, query, opts, work);
    if (rv == DKV_OK && opts != NULL && opts->cursor_len > 0) {
        rv = srch_cursor_decode(&returned, &pos, &sq, opts->cursor,
                                opts->cursor_len, work);
    }
    if (rv != DKV_OK) {
        apr_pool_destroy(work);
        return rv;
    }

    pg = apr_pcalloc(pool, sizeof(*pg));
    pg->revision = revision;
    if (query->limit > 0 && returned >= query->limit) {
        apr_pool_destroy(work);
        *page = pg;
        return DKV_OK;
    }

    matches = apr_array_make(work, 64, sizeof(srch_match_t));
    rv = srch_matches(matches, search, txn, &sq, load, baton, work);
    if (rv != DKV_OK) {
        apr_pool_destroy(work);
        return rv;
    }
    m = (void *)matches->elts;
    if (matches->nelts > 1) {
        qsort(m, (size_t)matches->nelts, sizeof(*m), srch_match_cmp);
    }

    /* The page starts at the first match after the cursor's position. */
    lo = 0;
    hi = (size_t)matches->nelts;
    if (opts != NULL && opts->cursor_len > 0) {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (srch_match_cmp(&m[mid], &pos) <= 0) {
                lo = mid + 1;
            }
            else {
                hi = mid;
            }
        }
    }
    rv = srch_page(pg, &sq, m, (size_t)matches->nelts, lo, returned,
                   page_size, load, baton, revision, pool, work);
    apr_pool_destroy(work);
    if (rv != DKV_OK) {
        return rv;
    }
    *page = pg;
    return DKV_OK;
}
