/*
 * lincheck-main.c -- tests/lincheck/lincheck, the checker as a program:
 * reads histories in the JSON-lines format of docs/internals/histories.md
 * (what lincheck_write_jsonl() and the fault tests write), checks each
 * file with lincheck.c and prints a verdict per key and per file.
 *
 *   tests/lincheck/lincheck [-q] [-t MS] FILE...     ("-" is stdin)
 *
 * Exit status: 0 every file linearizable, 1 some file is not, 2 bad
 * input or usage, 3 undecided (the search ran out of time or memory).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <jansson.h>

#include "common/alloc.h"
#include "tests/lincheck/lincheck.h"

/* A byte string taken from the JSON object: NAME (a string: its UTF-8
 * bytes; null or missing: absent) or NAME_hex (hex digits). */
typedef struct bytes {
    char *data;                 /* NULL: absent */
    size_t len;
    char buf[256];              /* holds short hex-decoded values */
} bytes_t;

static int
hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Fills *OUT from OBJ's field NAME or NAME_hex.  Returns 0, or -1 with
 * ERR set.  *HEAP receives memory to free (long hex values). */
static int
get_bytes(bytes_t *out, char **heap, json_t *obj, const char *name,
          const char **err)
{
    char hexname[32];
    json_t *v = json_object_get(obj, name), *hx;

    snprintf(hexname, sizeof(hexname), "%s_hex", name);
    hx = json_object_get(obj, hexname);
    out->data = NULL;
    out->len = 0;
    if (hx && !json_is_null(hx)) {
        const char *s;
        size_t n, i;

        if (!json_is_string(hx) || (v && !json_is_null(v))) {
            *err = "bad hex value (or both a value and a hex value)";
            return -1;
        }
        s = json_string_value(hx);
        n = json_string_length(hx);
        if (n % 2) {
            *err = "odd number of hex digits";
            return -1;
        }
        out->data = out->buf;
        if (n / 2 > sizeof(out->buf)) {
            *heap = dkv_malloc(n / 2);
            if (!*heap) {
                *err = "out of memory";
                return -1;
            }
            out->data = *heap;
        }
        for (i = 0; i < n; i += 2) {
            int hi = hexval((unsigned char)s[i]);
            int lo = hexval((unsigned char)s[i + 1]);

            if (hi < 0 || lo < 0) {
                *err = "bad hex digit";
                return -1;
            }
            out->data[i / 2] = (char)(hi * 16 + lo);
        }
        out->len = n / 2;
        return 0;
    }
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v)) {
        *err = "a value must be a string or null";
        return -1;
    }
    out->data = (char *)json_string_value(v);
    out->len = json_string_length(v);
    return 0;
}

/* Reads an integer time field; NULL or missing gives *SET 0. */
static int
get_time(int64_t *t, int *set, json_t *obj, const char *name)
{
    json_t *v = json_object_get(obj, name);

    *set = 0;
    *t = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return -1;
    *t = (int64_t)json_integer_value(v);
    *set = 1;
    return 0;
}

/* Records one JSON line into H.  Returns 0 or -1 with *ERR set. */
static int
parse_line(lincheck_history_t *h, const char *line, size_t len,
           const char **err)
{
    json_error_t jerr;
    json_t *obj = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    json_t *jc;
    const char *op, *outcome;
    bytes_t key, value, expect;
    char *heap[3] = { NULL, NULL, NULL };
    int64_t t0, t1;
    int has0, has1, rv = -1;
    lincheck_kind_t kind;
    lincheck_outcome_t oc;
    size_t id;

    if (!obj || !json_is_object(obj)) {
        *err = obj ? "not a JSON object" : "not JSON";
        goto out;
    }
    op = json_string_value(json_object_get(obj, "op"));
    if (!op) {
        *err = "missing \"op\"";
        goto out;
    }
    if (get_bytes(&key, &heap[0], obj, "key", err) != 0
        || get_bytes(&value, &heap[1], obj, "value", err) != 0
        || get_bytes(&expect, &heap[2], obj, "expect", err) != 0)
        goto out;
    if (!key.data) {
        *err = "missing \"key\"";
        goto out;
    }
    if (strcmp(op, "init") == 0) {
        if (lincheck_history_init(h, key.data, key.len, value.data,
                                  value.len) != 0) {
            *err = "out of memory";
            goto out;
        }
        rv = 0;
        goto out;
    }
    if (strcmp(op, "write") == 0) {
        kind = LINCHECK_WRITE;
    } else if (strcmp(op, "read") == 0) {
        kind = LINCHECK_READ;
    } else if (strcmp(op, "cas") == 0) {
        kind = LINCHECK_CAS;
    } else {
        *err = "\"op\" must be init, write, read or cas";
        goto out;
    }
    outcome = json_string_value(json_object_get(obj, "outcome"));
    if (!outcome) {
        *err = "missing \"outcome\"";
        goto out;
    }
    if (strcmp(outcome, "ok") == 0) {
        oc = LINCHECK_OK;
    } else if (strcmp(outcome, "fail") == 0) {
        oc = LINCHECK_FAIL;
    } else if (strcmp(outcome, "unknown") == 0) {
        oc = LINCHECK_UNKNOWN;
    } else {
        *err = "\"outcome\" must be ok, fail or unknown";
        goto out;
    }
    if (get_time(&t0, &has0, obj, "invoke") != 0 || !has0
        || get_time(&t1, &has1, obj, "complete") != 0) {
        *err = "\"invoke\" (and \"complete\") must be integers";
        goto out;
    }
    if (!has1 && oc != LINCHECK_UNKNOWN) {
        *err = "an ok or failed operation needs \"complete\"";
        goto out;
    }
    if (has1 && t1 < t0) {
        *err = "\"complete\" is before \"invoke\"";
        goto out;
    }
    jc = json_object_get(obj, "client");
    if (jc && !json_is_integer(jc)) {
        *err = "\"client\" must be an integer";
        goto out;
    }
    if (kind == LINCHECK_CAS)
        id = lincheck_invoke_cas(h, jc ? (unsigned)json_integer_value(jc)
                                 : 0, key.data, key.len, expect.data,
                                 expect.len, value.data, value.len, t0);
    else
        id = lincheck_invoke(h, jc ? (unsigned)json_integer_value(jc) : 0,
                             kind, key.data, key.len, value.data,
                             value.len, t0);
    if (id == LINCHECK_NO_OP) {
        *err = "out of memory";
        goto out;
    }
    if (has1)
        lincheck_complete(h, id, oc, value.data, value.len, t1);
    rv = 0;
out:
    dkv_free(heap[0]);
    dkv_free(heap[1]);
    dkv_free(heap[2]);
    json_decref(obj);
    return rv;
}

/* Reads the JSON lines of F (named NAME) into H.  Blank lines are
 * skipped.  Returns 0, or -1 after printing where it went wrong. */
static int
read_history(lincheck_history_t *h, FILE *f, const char *name)
{
    char *line = NULL;
    size_t cap = 0, len = 0;
    unsigned long lineno = 0;
    int ch, rv = 0, done = 0;

    while (!done && !rv) {
        len = 0;
        for (;;) {
            ch = getc(f);
            if (ch == EOF) {
                done = 1;
                break;
            }
            if (ch == '\n')
                break;
            if (len + 1 >= cap) {
                size_t ncap = cap ? cap * 2 : 256;
                char *nl = dkv_realloc(line, ncap);

                if (!nl) {
                    fprintf(stderr, "lincheck: out of memory\n");
                    dkv_free(line);
                    return -1;
                }
                line = nl;
                cap = ncap;
            }
            line[len++] = (char)ch;
        }
        lineno++;
        if (len && line[len - 1] == '\r')
            len--;
        {
            size_t i;
            const char *err = NULL;

            for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t');
                 i++)
                ;
            if (i == len)
                continue;
            if (parse_line(h, line, len, &err) != 0) {
                fprintf(stderr, "lincheck: %s:%lu: %s\n", name, lineno,
                        err);
                rv = -1;
            }
        }
    }
    if (!rv && ferror(f)) {
        fprintf(stderr, "lincheck: %s: read error: %s\n", name,
                strerror(errno));
        rv = -1;
    }
    dkv_free(line);
    return rv;
}

typedef struct print_ctx {
    const char *name;
    int quiet;
} print_ctx_t;

static void
print_key(void *baton, const lincheck_key_result_t *r)
{
    const print_ctx_t *p = baton;
    static const char *const verdicts[] = { "linearizable",
                                            "NOT LINEARIZABLE",
                                            "undecided" };

    if (p->quiet && r->verdict == LINCHECK_OK)
        return;
    printf("%s: key %s: %s (%lu ops, %lu checked, %llu steps)%s%s\n",
           p->name, r->key_text, verdicts[r->verdict],
           (unsigned long)r->ops, (unsigned long)r->ops_checked,
           (unsigned long long)r->steps, r->message[0] ? ": " : "",
           r->message);
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: lincheck [-q] [-t MS] FILE...\n"
            "  Checks each history file (JSON lines, see\n"
            "  docs/internals/histories.md; \"-\" reads stdin) for\n"
            "  linearizability, key by key.\n"
            "  -q     print only keys that are not linearizable\n"
            "  -t MS  give up on a file after MS milliseconds (default\n"
            "         60000, 0: no limit)\n"
            "  exit: 0 linearizable, 1 not, 2 bad input, 3 undecided\n");
}

int
main(int argc, char **argv)
{
    unsigned long timeout = 60000;
    int i, quiet = 0, worst = 0, files = 0;

    if (apr_initialize() != APR_SUCCESS) {
        fprintf(stderr, "lincheck: apr_initialize failed\n");
        return 2;
    }
    atexit(apr_terminate);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-q") == 0) {
            quiet = 1;
        } else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            char *end;

            errno = 0;
            timeout = strtoul(argv[++i], &end, 10);
            if (errno || *end || end == argv[i] || timeout > 86400000UL) {
                usage();
                return 2;
            }
        } else if (strcmp(argv[i], "-h") == 0
                   || strcmp(argv[i], "--help") == 0) {
            usage();
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            usage();
            return 2;
        } else {
            break;
        }
    }
    if (i >= argc) {
        usage();
        return 2;
    }
    for (; i < argc; i++) {
        const char *name = argv[i];
        FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "rb");
        lincheck_history_t *h;
        lincheck_report_t rep;
        print_ctx_t pc;
        int v, rv;

        files++;
        if (!f) {
            fprintf(stderr, "lincheck: %s: %s\n", name, strerror(errno));
            worst = 2;
            continue;
        }
        h = lincheck_history_create();
        if (!h) {
            fprintf(stderr, "lincheck: out of memory\n");
            return 2;
        }
        rv = read_history(h, f, name);
        if (f != stdin)
            fclose(f);
        if (rv != 0) {
            lincheck_history_destroy(h);
            worst = 2;
            continue;
        }
        pc.name = name;
        pc.quiet = quiet;
        v = lincheck_check_keys(h, &rep, (unsigned)timeout, print_key, &pc);
        printf("%s: %s: %lu operations on %lu keys (%lu checked, %llu "
               "steps)\n", name,
               v == LINCHECK_OK ? "linearizable"
               : v == LINCHECK_VIOLATION ? "NOT LINEARIZABLE"
               : v == LINCHECK_TIMEOUT ? "undecided" : "error",
               (unsigned long)rep.ops, (unsigned long)rep.keys,
               (unsigned long)rep.ops_checked,
               (unsigned long long)rep.steps);
        if (v == LINCHECK_ERROR) {
            fprintf(stderr, "lincheck: %s: %s\n", name, rep.message);
            worst = 2;
        } else if (v == LINCHECK_VIOLATION && worst != 2) {
            worst = 1;
        } else if (v == LINCHECK_TIMEOUT && worst == 0) {
            worst = 3;
        }
        lincheck_history_destroy(h);
    }
    (void)files;
    return worst;
}
