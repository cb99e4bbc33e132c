/*
 * cmd_watch.c -- Watch-DkvKey and Watch-DkvPrefix: stream a key's or a
 * prefix's changes as rows (Event, Key, Revision, Value, Timestamp), or
 * one JSON object per line with -Json, until Ctrl+C (or the -MaxEvents /
 * -DurationSec extensions).  The library's callback thread prints; the
 * main thread waits for the end and stops the watch cleanly.
 */
#include "cli/cli.h"
#include "platform/userenv.h"

#include <stdio.h>
#include <string.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_time.h>

#define VALUE_COLS 32

typedef struct watch_state {
    int json;
    apr_uint32_t events;
    apr_uint32_t failed;        /* 1: the watch ended with an error */
    dkv_status_t error;
    int64_t max_events;         /* 0: unlimited */
} watch_state_t;

static const char *
event_name(const dkv_event_t *ev)
{
    if (ev->snapshot) {
        return "Snapshot";
    }
    if (ev->type == DKV_EVENT_DELETE) {
        return "Delete";
    }
    return ev->version <= 1 ? "Put" : "Update";
}

/* Prints one event.  Runs on the library's callback thread: no pool,
 * only the stack and jansson. */
static void
on_event(void *baton, const dkv_event_t *ev)
{
    watch_state_t *st = baton;
    apr_time_t now = apr_time_now();
    apr_time_exp_t x;
    char ts[32], val[VALUE_COLS + 4];
    json_t *o;

    if (ev->type == DKV_EVENT_ERROR) {
        st->error = ev->status;
        apr_atomic_set32(&st->failed, 1);
        return;
    }
    if (st->max_events > 0 &&
        (int64_t)apr_atomic_read32(&st->events) >= st->max_events) {
        return;
    }
    apr_time_exp_lt(&x, now);
    apr_snprintf(ts, sizeof(ts), "%02d:%02d:%02d.%03d", x.tm_hour,
                 x.tm_min, x.tm_sec, x.tm_usec / 1000);
    o = json_object();
    json_object_set_new(o, "Event", json_string(event_name(ev)));
    json_object_set_new(o, "Key", cli_json_bytes(ev->key, ev->key_len));
    json_object_set_new(o, "Revision", json_integer(
        (json_int_t)ev->revision));
    json_object_set_new(o, "Value", ev->type == DKV_EVENT_PUT
                        ? cli_json_bytes(ev->value, ev->value_len)
                        : json_null());
    json_object_set_new(o, "Timestamp", json_string(ts));
    if (st->json) {
        json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
    } else {
        const json_t *k = json_object_get(o, "Key");
        const json_t *v = json_object_get(o, "Value");
        const char *vs = json_is_string(v) ? json_string_value(v)
                         : json_is_null(v) ? "" : "(binary)";
        size_t n = strlen(vs);

        if (n > VALUE_COLS) {
            memcpy(val, vs, VALUE_COLS - 3);
            memcpy(val + VALUE_COLS - 3, "...", 4);
        } else {
            memcpy(val, vs, n + 1);
        }
        fprintf(stdout, "%-8s %-30s %10llu %-*s %s\n", event_name(ev),
                json_is_string(k) ? json_string_value(k) : "(binary)",
                (unsigned long long)ev->revision, VALUE_COLS, val, ts);
    }
    fflush(stdout);
    json_decref(o);
    apr_atomic_inc32(&st->events);
}

static int
watch(cli_ctx_t *ctx, const char *what, int prefix)
{
    cli_session_t *s;
    dkv_client_t *c;
    dkv_watch_t *w = NULL;
    dkv_watch_opts_t wo;
    watch_state_t st;
    const char *key = cli_str(ctx, what, "");
    int64_t dur = cli_int(ctx, "DurationSec", 0);
    apr_time_t end = dur > 0 ? apr_time_now() + dur * APR_USEC_PER_SEC : 0;
    dkv_status_t rv;
    int rc;

    if ((rc = cli_connect_ctx(ctx, &s, &c)) != CLI_EXIT_OK) {
        return rc;
    }
    memset(&st, 0, sizeof(st));
    st.json = ctx->json;
    st.max_events = cli_int(ctx, "MaxEvents", 0);
    memset(&wo, 0, sizeof(wo));
    wo.prefix = prefix;
    wo.include_snapshot = cli_has(ctx, "IncludeSnapshot");
    if (!ctx->json) {
        fprintf(stdout, "\n%-8s %-30s %10s %-*s %s\n%-8s %-30s %10s %-*s "
                "%s\n", "Event", "Key", "Revision", VALUE_COLS, "Value",
                "Timestamp", "-----", "---", "--------", VALUE_COLS,
                "-----", "---------");
        fflush(stdout);
    }
    cli_catch_interrupt(1);
    rv = dkv_watch_start(&w, c, key, strlen(key), &wo, on_event, &st);
    if (rv != DKV_OK) {
        cli_catch_interrupt(0);
        cli_error(ctx, "cannot watch %s: %s", key,
                  cli_status_text(rv, ctx->pool));
        return cli_exit_for(rv);
    }
    if (dkv_plat_isatty(2)) {
        fprintf(stderr, "Watching %s%s on %s; press Ctrl+C to stop.\n",
                key, prefix ? "*" : "", s->store);
    }
    cli_log(s->store, ctx->pool, "INFO watch %s%s", key, prefix ? "*" : "");
    while (!cli_interrupted && !apr_atomic_read32(&st.failed) &&
           (st.max_events == 0 ||
            (int64_t)apr_atomic_read32(&st.events) < st.max_events) &&
           (end == 0 || apr_time_now() < end)) {
        apr_sleep(20000);
    }
    dkv_watch_stop(w);
    cli_catch_interrupt(0);
    fflush(stdout);
    if (apr_atomic_read32(&st.failed)) {
        cli_error(ctx, "the watch ended: %s; run the command again to "
                  "resume", dkv_strerror(st.error));
        return cli_exit_for(st.error);
    }
    fprintf(stderr, "Watch stopped after %u event(s).\n",
            apr_atomic_read32(&st.events));
    return CLI_EXIT_OK;
}

int
cli_cmd_watch_key(cli_ctx_t *ctx)
{
    return watch(ctx, "Key", 0);
}

int
cli_cmd_watch_prefix(cli_ctx_t *ctx)
{
    return watch(ctx, "Prefix", 1);
}
