/*
 * log.h -- the daemons' logger (dkv-node now, dkv-manager later): one line
 * per event, "2025-01-31T12:00:00.123Z LEVEL program: message", to a
 * log file and/or stderr.
 *
 * There is one logger per process, set up once by dkv_log_open() before
 * threads start; dkv_log() may then be called from any thread (each line
 * is written whole, under a lock).  Callers never pass secrets (tokens,
 * keys) to it.
 */
#ifndef DKV_COMMON_LOG_H
#define DKV_COMMON_LOG_H

#include <stdarg.h>

#include <apr_pools.h>

#include "dkv/common.h"
#include "common/status.h"

typedef enum dkv_log_level {
    DKV_LOG_DEBUG = 0,
    DKV_LOG_INFO = 1,
    DKV_LOG_WARN = 2,
    DKV_LOG_ERROR = 3
} dkv_log_level_t;

/* Sets up the process's logger for PROGRAM (a name for each line).  PATH
 * NULL: lines of LEVEL and above go to stderr.  PATH given: they are
 * appended to PATH (created 0640 if missing), and lines of DKV_LOG_WARN
 * and above are copied to stderr too.  The logger lives in POOL (a cleanup
 * closes it).  Returns DKV_OK or the status of opening PATH (with
 * dkv_error_set naming it).  Not thread-safe: call it before threads. */
dkv_status_t dkv_log_open(const char *program, const char *path,
                          dkv_log_level_t level, apr_pool_t *pool);

/* Closes the logger early (before its pool's cleanup); later dkv_log()
 * calls write to stderr only. */
void dkv_log_close(void);

/* Writes one line at LEVEL (dropped below the logger's level).  FMT is C99
 * printf; a trailing newline is added, and newlines inside the message
 * become spaces so each event stays on one line.  Thread-safe.  Before
 * dkv_log_open(), or after dkv_log_close(), lines go to stderr. */
void dkv_log(dkv_log_level_t level, const char *fmt, ...) DKV_PRINTF(2, 3);

/* As dkv_log() with a va_list. */
void dkv_log_v(dkv_log_level_t level, const char *fmt, va_list ap)
    DKV_PRINTF(2, 0);

/* Turns the stderr copy of log lines on (the default) or off, for a
 * program that prints a message of its own on stderr (a start-up failure)
 * and logs it to the file only. */
void dkv_log_set_stderr(int on);

/* Parses "debug", "info", "warn"/"warning" or "error" (any case) into
 * *LEVEL.  Returns DKV_OK or DKV_EINVAL. */
dkv_status_t dkv_log_level_parse(dkv_log_level_t *level, const char *text);

/* The name of LEVEL in log lines ("DEBUG", "INFO", "WARN", "ERROR"). */
const char *dkv_log_level_name(dkv_log_level_t level);

#endif /* DKV_COMMON_LOG_H */
