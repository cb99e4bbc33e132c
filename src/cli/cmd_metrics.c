/*
 * cmd_metrics.c -- Watch-DkvStoreMetrics: polls GET /admin/v1/metrics of
 * every manager each -RefreshSec and redraws a table of the store's nodes
 * (one column per node, "host/instance"): Get, Put, Remove as "rate/s
 * (total)", Count (items), the p99 latency from the nodes' histograms and
 * the Raft term, leader and commit index.  Redraws in place on a
 * terminal, prints one table (or one JSON object) per refresh otherwise;
 * Ctrl+C or the hidden -Count N ends it.
 */
#include "cli/admin.h"
#include "common/alloc.h"
#include "platform/userenv.h"

#include <stdio.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>

/* The histogram's bounds in µs (docs/admin-api.md, "Node metrics"). */
static const int64_t bounds[] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000,
    1000000
};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

/* N with thousands separators: 2,341. */
static const char *
grouped(int64_t n, apr_pool_t *pool)
{
    char digits[32], out[48];
    int len, i, o = 0;
    int neg = n < 0;

    len = apr_snprintf(digits, sizeof(digits), "%" APR_INT64_T_FMT,
                       (apr_int64_t)(neg ? -n : n));
    if (neg) {
        out[o++] = '-';
    }
    for (i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0) {
            out[o++] = ',';
        }
        out[o++] = digits[i];
    }
    out[o] = '\0';
    return apr_pstrdup(pool, out);
}

static int64_t
total(const json_t *node, const char *name)
{
    json_t *v = json_object_get(json_object_get(node, "totals"), name);

    if (json_is_integer(v)) {
        return (int64_t)json_integer_value(v);
    }
    return json_is_real(v) ? (int64_t)json_real_value(v) : 0;
}

/* "2,341/s (134,223)", or "- (134,223)" without a rate. */
static const char *
rate_cell(const json_t *node, const char *name, apr_pool_t *pool)
{
    json_t *r = json_object_get(json_object_get(node, "rates"), name);
    const char *t = grouped(total(node, name), pool);

    if (json_is_number(r)) {
        double v = json_number_value(r);
        return apr_psprintf(pool, "%s/s (%s)",
                            grouped((int64_t)(v + 0.5), pool), t);
    }
    return apr_psprintf(pool, "- (%s)", t);
}

/* The cumulative histogram of NODE's totals: COUNTS[i] requests within
 * bounds[i], COUNTS[NBOUNDS] all.  Accepts per-bucket counts too. */
static void
histogram(int64_t counts[NBOUNDS + 1], const json_t *node)
{
    size_t i;
    int cumulative = 1;
    int64_t sum = 0;

    for (i = 0; i <= NBOUNDS; i++) {
        char name[64];
        if (i < NBOUNDS) {
            apr_snprintf(name, sizeof(name), "request_latency_us_le_%"
                         APR_INT64_T_FMT, (apr_int64_t)bounds[i]);
        } else {
            apr_cpystrn(name, "request_latency_us_le_inf", sizeof(name));
        }
        counts[i] = total(node, name);
        if (i > 0 && counts[i] < counts[i - 1]) {
            cumulative = 0;
        }
    }
    if (!cumulative) {
        for (i = 0; i <= NBOUNDS; i++) {
            sum += counts[i];
            counts[i] = sum;
        }
    }
}

/* The p99 of NODE, from the change since PREV (its previous sample) when
 * there is one with new requests, else since the node started. */
static const char *
p99_cell(const json_t *node, const json_t *prev, int64_t *p99_us,
         apr_pool_t *pool)
{
    int64_t now[NBOUNDS + 1], before[NBOUNDS + 1];
    size_t i;

    *p99_us = -1;
    histogram(now, node);
    if (prev != NULL) {
        histogram(before, prev);
        if (now[NBOUNDS] > before[NBOUNDS]) {
            for (i = 0; i <= NBOUNDS; i++) {
                now[i] -= before[i];
            }
        }
    }
    if (now[NBOUNDS] <= 0) {
        return "-";
    }
    for (i = 0; i < NBOUNDS; i++) {
        if ((double)now[i] >= 0.99 * (double)now[NBOUNDS]) {
            *p99_us = bounds[i];
            if (bounds[i] >= 1000) {
                return apr_psprintf(pool, "<= %" APR_INT64_T_FMT " ms",
                                    (apr_int64_t)(bounds[i] / 1000));
            }
            return apr_psprintf(pool, "<= %" APR_INT64_T_FMT " us",
                                (apr_int64_t)bounds[i]);
        }
    }
    return "> 1000 ms";
}

/* One polled node. */
typedef struct seen {
    const char *label;       /* host/instance */
    const cli_mgr_t *mgr;
    json_t *node;            /* the metrics object (borrowed) */
} seen_t;

static json_t *
metric_row(const char *category, const char *metric)
{
    json_t *r = json_object();

    json_object_set_new(r, "Category", json_string(category));
    json_object_set_new(r, "Metric", json_string(metric));
    return r;
}

/* Draws one refresh.  Returns the number of nodes shown. */
static int
draw(cli_ctx_t *ctx, const char *store, apr_array_header_t *nodes,
     json_t *errors, json_t *prev, int tty, apr_pool_t *pool)
{
    static const char *const ops[][2] = {
        { "Get", "gets_total" }, { "Put", "puts_total" },
        { "Remove", "removes_total" }
    };
    static const char *const raft[][2] = {
        { "Term", "raft_term" }, { "Leader", "raft_leader" },
        { "Commit", "raft_commit_index" }
    };
    const char *updated;
    apr_time_exp_t x;
    json_t *rows = json_array();
    json_t *rget[3], *rcount, *rlat, *rraft[3];
    int i, k;

    apr_time_exp_lt(&x, apr_time_now());
    updated = apr_psprintf(pool, "%02d:%02d:%02d", x.tm_hour, x.tm_min,
                           x.tm_sec);
    if (ctx->json) {
        json_t *o = json_object(), *arr = json_array();
        json_object_set_new(o, "StoreName", json_string(store));
        json_object_set_new(o, "Updated", json_string(updated));
        for (i = 0; i < nodes->nelts; i++) {
            seen_t *s = &DKV_ARRAY_IDX(nodes, i, seen_t);
            json_t *n = json_object();
            int64_t p99;
            json_object_set_new(n, "Node", json_string(s->label));
            json_object_set_new(n, "Manager", json_string(s->mgr->address));
            json_object_set(n, "Instance", json_object_get(s->node,
                                                           "instance"));
            for (k = 0; k < 3; k++) {
                json_t *r = json_object_get(json_object_get(s->node,
                                                            "rates"),
                                            ops[k][1]);
                json_object_set_new(n, ops[k][0], json_pack(
                    "{s:O, s:I}", "Rate", r != NULL ? r : json_null(),
                    "Total", (json_int_t)total(s->node, ops[k][1])));
            }
            json_object_set_new(n, "Count", json_integer(
                total(s->node, "items")));
            p99_cell(s->node, json_object_get(prev, s->label), &p99, pool);
            json_object_set_new(n, "LatencyP99Us", p99 >= 0
                                ? json_integer(p99) : json_null());
            for (k = 0; k < 3; k++) {
                json_object_set_new(n, apr_pstrcat(pool, "Raft", raft[k][0],
                                                   NULL),
                                    json_integer(total(s->node,
                                                       raft[k][1])));
            }
            json_array_append_new(arr, n);
        }
        json_object_set_new(o, "Nodes", arr);
        json_object_set(o, "Errors", errors);
        cli_print(ctx, o);
        json_decref(rows);
        return nodes->nelts;
    }
    if (tty) {
        fputs("\x1b[H\x1b[2J", stdout);
    }
    printf("Store: %s Updated: %s\n", store, updated);
    if (nodes->nelts > 0) {
        for (k = 0; k < 3; k++) {
            rget[k] = metric_row("DKV", ops[k][0]);
            json_array_append_new(rows, rget[k]);
        }
        rcount = metric_row("DKV", "Count");
        json_array_append_new(rows, rcount);
        rlat = metric_row("Latency", "p99");
        json_array_append_new(rows, rlat);
        for (k = 0; k < 3; k++) {
            rraft[k] = metric_row("Raft", raft[k][0]);
            json_array_append_new(rows, rraft[k]);
        }
        for (i = 0; i < nodes->nelts; i++) {
            seen_t *s = &DKV_ARRAY_IDX(nodes, i, seen_t);
            int64_t p99;
            for (k = 0; k < 3; k++) {
                json_object_set_new(rget[k], s->label, json_string(
                    rate_cell(s->node, ops[k][1], pool)));
            }
            json_object_set_new(rcount, s->label, json_string(apr_psprintf(
                pool, "- (%s)", grouped(total(s->node, "items"), pool))));
            json_object_set_new(rlat, s->label, json_string(p99_cell(
                s->node, json_object_get(prev, s->label), &p99, pool)));
            for (k = 0; k < 3; k++) {
                json_object_set_new(rraft[k], s->label, json_string(
                    grouped(total(s->node, raft[k][1]), pool)));
            }
        }
        cli_print(ctx, rows);
    } else {
        json_decref(rows);
        printf("\nNo metrics for store %s: it is not running on the "
               "connected managers (Start-DkvStore %s), or none of its "
               "nodes is local to them.\n\n", store, store);
    }
    if (json_array_size(errors) > 0) {
        cli_print(ctx, json_incref(errors));
    }
    fflush(stdout);
    return nodes->nelts;
}

int
cli_cmd_watch_metrics(cli_ctx_t *ctx)
{
    const char *store = cli_str(ctx, "StoreName", "");
    int refresh = (int)cli_int(ctx, "RefreshSec", 1);
    int64_t count = cli_int(ctx, "Count", 0), done = 0;
    int timeout = (int)cli_int(ctx, "TimeoutSec", 30);
    int tty = dkv_plat_isatty(1) && !ctx->json;
    apr_array_header_t *mgrs;
    json_t *prev = json_object();
    apr_pool_t *iter;
    int rc, last = CLI_EXIT_OK;

    if (!cli_admin_name_ok(store)) {
        cli_error(ctx, "-StoreName: '%s' is not a valid store name", store);
        json_decref(prev);
        return CLI_EXIT_USAGE;
    }
    if ((rc = cli_admin_managers(ctx, &mgrs)) != CLI_EXIT_OK) {
        json_decref(prev);
        return rc;
    }
    if (apr_pool_create(&iter, ctx->pool) != APR_SUCCESS) {
        json_decref(prev);
        return CLI_EXIT_FAILED;
    }
    cli_catch_interrupt(1);
    while (!cli_interrupted) {
        apr_array_header_t *nodes = apr_array_make(iter, 8, sizeof(seen_t));
        json_t *errors = json_array(), *answers = json_array();
        json_t *next = json_object();
        int i, unreachable = 0;
        apr_time_t t0 = apr_time_now();

        for (i = 0; i < mgrs->nelts && !cli_interrupted; i++) {
            cli_mgr_t *m = DKV_ARRAY_IDX(mgrs, i, cli_mgr_t *);
            cli_http_t r;
            json_t *list;
            size_t k;

            if (m->error != NULL && !m->unreachable) {
                /* Not a manager, or not the one you connected to (its
                 * keys changed): not asked.  One that did not answer at
                 * the start is asked again each refresh. */
                cli_mgr_failed_row(errors, m, "Metrics");
                continue;
            }
            if (!cli_mgr_request(&r, m, NULL, "GET", "/admin/v1/metrics",
                                 apr_pstrcat(iter, "store=", store,
                                             "&windowSec=5", NULL), NULL,
                                 timeout, iter)) {
                unreachable |= r.transport;
                cli_row(errors, m->address, "Metrics", "FAILED",
                        cli_http_why(&r, iter));
                json_decref(r.body);
                continue;
            }
            list = json_object_get(r.body, "nodes");
            for (k = 0; k < json_array_size(list); k++) {
                json_t *n = json_array_get(list, k);
                json_t *st = json_object_get(n, "store");
                seen_t *s;
                if (json_is_string(st) &&
                    strcmp(json_string_value(st), store) != 0) {
                    continue;
                }
                s = apr_array_push(nodes);
                s->mgr = m;
                s->node = n;
                s->label = apr_psprintf(iter, "%s/%s", m->host,
                                        json_is_string(json_object_get(
                                            n, "instance"))
                                        ? json_string_value(json_object_get(
                                              n, "instance")) : "?");
            }
            json_array_append_new(answers, r.body);
        }
        if (cli_interrupted) {
            json_decref(errors);
            json_decref(answers);
            json_decref(next);
            break;
        }
        if (draw(ctx, store, nodes, errors, prev, tty, iter) == 0) {
            last = unreachable ? CLI_EXIT_CONNECT : CLI_EXIT_FAILED;
        } else {
            last = json_array_size(errors) > 0
                ? (unreachable ? CLI_EXIT_CONNECT : CLI_EXIT_FAILED)
                : CLI_EXIT_OK;
        }
        for (i = 0; i < nodes->nelts; i++) {
            seen_t *s = &DKV_ARRAY_IDX(nodes, i, seen_t);
            json_object_set(next, s->label, s->node);
        }
        json_decref(prev);
        prev = next;
        json_decref(errors);
        json_decref(answers);
        apr_pool_clear(iter);
        if (count > 0 && ++done >= count) {
            break;
        }
        while (!cli_interrupted &&
               apr_time_now() - t0 < apr_time_from_sec(refresh)) {
            apr_sleep(apr_time_from_msec(50));
        }
    }
    cli_catch_interrupt(0);
    json_decref(prev);
    return last;
}
