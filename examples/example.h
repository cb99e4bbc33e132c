/*
 * example.h -- the few helpers every example shares: stop with a clear
 * message when a call fails, and take the store address from the command
 * line.  Examples are programs for people to read, so the helpers are
 * small and live here once rather than in each file.
 */
#ifndef DKV_EXAMPLE_H
#define DKV_EXAMPLE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <apr_time.h>

#include <dkv.h>

/* Exits when STATUS is not DKV_OK, saying which call failed and why:
 * dkv_strerror() names the status, dkv_last_error() gives the detail. */
static inline void
check(dkv_status_t status, const char *what)
{
    if (status != DKV_OK) {
        const char *detail = dkv_last_error();

        fprintf(stderr, "FAILED: %s: %s (%s)\n", what,
                dkv_strerror(status), detail);
        exit(1);
    }
}

/* Exits unless STATUS is the EXPECTED one. */
static inline void
expect(dkv_status_t status, dkv_status_t expected, const char *what)
{
    if (status != expected) {
        const char *detail = dkv_last_error();

        fprintf(stderr, "FAILED: %s: expected \"%s\", got \"%s\" (%s)\n",
                what, dkv_strerror(expected), dkv_strerror(status), detail);
        exit(1);
    }
}

/* Exits unless CONDITION holds. */
static inline void
require(int condition, const char *what)
{
    if (!condition) {
        fprintf(stderr, "FAILED: %s\n", what);
        exit(1);
    }
}

/* The store address from the command line, "inproc:" by default. */
static inline const char *
store_address(int argc, char **argv, apr_pool_t *pool)
{
    if (argc < 2) {
        return "inproc:";
    }
    if (strncmp(argv[1], "inproc:", 7) == 0 || strstr(argv[1], "://")) {
        return argv[1];
    }
    return apr_pstrcat(pool, "inproc:", argv[1], NULL);
}

/* Milliseconds elapsed since START. */
static inline long
ms_since(apr_time_t start)
{
    return (long)((apr_time_now() - start) / 1000);
}

static inline void
sleep_ms(long ms)
{
    apr_sleep((apr_interval_time_t)ms * 1000);
}

#endif /* DKV_EXAMPLE_H */
