/*
 * config.h -- the daemons' settings: command-line flags and a config file
 * of `name = value` lines, described once by a table of options.
 *
 * Every option has one name, used both as the flag (--max-value 2M or
 * --max-value=2M) and as the config file's key (max-value = 2M).  A file
 * line is `name = value`, `#` starts a comment (at the start of a line or
 * after blanks), blank lines are ignored, and a value may be quoted with
 * "..." to keep blanks or '#'.  Flags win over the file: the caller
 * parses the file first and the flags after.  Used by dkv-node now and
 * dkv-manager later.
 */
#ifndef DKV_COMMON_CONFIG_H
#define DKV_COMMON_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include <apr_pools.h>

#include "dkv/common.h"

typedef enum dkv_config_type {
    DKV_CONF_STRING = 1,  /* const char ** (copied into the pool) */
    DKV_CONF_UINT = 2,    /* uint64_t *: decimal, within [min, max] */
    DKV_CONF_SIZE = 3,    /* uint64_t *: bytes, suffix K/M/G/T (x1024)
                           * or KiB/MiB/GiB/TiB, within [min, max] */
    DKV_CONF_FLAG = 4     /* int *: a flag takes no value and sets 1; in
                           * the file: true/false, yes/no, on/off, 1/0 */
} dkv_config_type_t;

typedef struct dkv_config_opt {
    const char *name;         /* without the dashes; NULL ends the table */
    dkv_config_type_t type;
    void *target;             /* where the value goes (see the types) */
    uint64_t min, max;        /* UINT and SIZE bounds (max 0: none) */
    const char *arg;          /* the value's name in --help ("N", "DIR") */
    const char *help;         /* one or more sentences for --help */
    int cli_only;             /* 1: not accepted in the config file */
    int set;                  /* set by the parsers when a value was given */
} dkv_config_opt_t;

/* Parses ARGC/ARGV (ARGV[0] is the program and is skipped) against the
 * table OPTS, storing each value in its target and marking the option
 * set.  Strings are copied into POOL.  Returns DKV_OK, or DKV_EINVAL with
 * dkv_error_set saying what is wrong (unknown option, missing or bad
 * value, stray argument). */
dkv_status_t dkv_config_parse_args(dkv_config_opt_t *opts, int argc,
                                   const char *const *argv,
                                   apr_pool_t *pool);

/* Finds the value of flag NAME in ARGV without parsing the rest (for
 * --config, which must be read before the flags are applied).  Returns
 * the value (a pointer into ARGV), or NULL when absent or valueless. */
const char *dkv_config_find_arg(const char *name, int argc,
                                const char *const *argv);

/* Reads config file PATH against OPTS.  Unknown names, bad values and
 * malformed lines are errors naming the file and line.  Returns DKV_OK,
 * DKV_EINVAL, or the APR status of reading the file (with a message). */
dkv_status_t dkv_config_parse_file(dkv_config_opt_t *opts, const char *path,
                                   apr_pool_t *pool);

/* The same, but a name OPTS lacks is skipped, not an error: for reading
 * a few settings of another program's file (`dkv firewall -Config`
 * takes the port ranges from dkv-manager's). */
dkv_status_t dkv_config_parse_file_some(dkv_config_opt_t *opts,
                                        const char *path, apr_pool_t *pool);

/* Writes the options' help to OUT, one block per option. */
void dkv_config_print_help(const dkv_config_opt_t *opts, FILE *out);

/* Parses a size ("1048576", "64K", "1M", "2GiB") into *VALUE.  Returns
 * DKV_OK or DKV_EINVAL. */
dkv_status_t dkv_config_parse_size(uint64_t *value, const char *text);

/* Writes PORT as a decimal number and a newline to PATH, atomically (a
 * temporary file renamed over it), for a server's --port-file.  Returns
 * DKV_OK or the APR status with a message naming PATH. */
dkv_status_t dkv_config_write_port_file(const char *path, unsigned port,
                                        apr_pool_t *pool);

/* A daemon's start-up failure: MSG goes to the log (its file, when one
 * is set) and once, plainly, to stderr as "PROG: MSG".  Returns 1, the
 * daemons' exit status for "cannot start". */
int dkv_config_fail(const char *prog, const char *msg);

/* A settings problem: "PROG: MSG" and a pointer to --help on stderr.
 * Returns 2, the daemons' exit status for bad settings. */
int dkv_config_bad_settings(const char *prog, const char *msg);

#endif /* DKV_COMMON_CONFIG_H */
