/*
 * log.c -- the daemons' logger (see log.h): one whole line per event,
 * ISO-8601 UTC timestamps, a file and/or stderr, a lock around each line.
 *
 * The state is process-wide because every part of a daemon logs and
 * passing a logger through every call would buy nothing: there is one log
 * per process.
 */
#include "common/log.h"

#include <stdio.h>
#include <string.h>

#include <apr_file_io.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_time.h>

/* Longest line written; longer messages are truncated (with "..."). */
#define LOG_LINE_MAX 2048

static struct {
    apr_file_t *file;
    apr_thread_mutex_t *lock;
    dkv_log_level_t level;
    char program[32];
    int open;
    int no_stderr;
} logger = { NULL, NULL, DKV_LOG_INFO, "dkv", 0, 0 };

static const char *const level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

/* See log.h. */
const char *
dkv_log_level_name(dkv_log_level_t level)
{
    if ((int)level < 0 || level > DKV_LOG_ERROR) {
        return "?";
    }
    return level_names[level];
}

/* See log.h. */
dkv_status_t
dkv_log_level_parse(dkv_log_level_t *level, const char *text)
{
    if (text == NULL) {
        return dkv_error_set(DKV_EINVAL, "no log level given");
    }
    if (!apr_strnatcasecmp(text, "debug")) {
        *level = DKV_LOG_DEBUG;
    } else if (!apr_strnatcasecmp(text, "info")) {
        *level = DKV_LOG_INFO;
    } else if (!apr_strnatcasecmp(text, "warn")
               || !apr_strnatcasecmp(text, "warning")) {
        *level = DKV_LOG_WARN;
    } else if (!apr_strnatcasecmp(text, "error")) {
        *level = DKV_LOG_ERROR;
    } else {
        return dkv_error_set(DKV_EINVAL, "unknown log level '%s' (debug, "
                             "info, warn or error)", text);
    }
    return DKV_OK;
}

/* Pool cleanup: the file goes with its pool. */
static apr_status_t
log_cleanup(void *data)
{
    (void)data;
    dkv_log_close();
    return APR_SUCCESS;
}

/* See log.h. */
dkv_status_t
dkv_log_open(const char *program, const char *path, dkv_log_level_t level,
             apr_pool_t *pool)
{
    apr_status_t rv;

    apr_cpystrn(logger.program, program ? program : "dkv",
                sizeof(logger.program));
    logger.level = level;
    logger.file = NULL;
    if (path != NULL) {
        rv = apr_file_open(&logger.file, path,
                           APR_FOPEN_WRITE | APR_FOPEN_CREATE
                           | APR_FOPEN_APPEND,
                           APR_FPROT_UREAD | APR_FPROT_UWRITE
                           | APR_FPROT_GREAD, pool);
        if (rv != APR_SUCCESS) {
            char err[120];

            logger.file = NULL;
            return dkv_error_set(rv, "cannot open log file %s: %s", path,
                                 apr_strerror(rv, err, sizeof(err)));
        }
    }
    rv = apr_thread_mutex_create(&logger.lock, APR_THREAD_MUTEX_DEFAULT,
                                 pool);
    if (rv != APR_SUCCESS) {
        logger.lock = NULL;
    }
    logger.open = 1;
    apr_pool_cleanup_register(pool, NULL, log_cleanup,
                              apr_pool_cleanup_null);
    return DKV_OK;
}

/* See log.h. */
void
dkv_log_close(void)
{
    apr_thread_mutex_t *lock = logger.lock;

    if (!logger.open) {
        return;
    }
    if (lock != NULL) {
        apr_thread_mutex_lock(lock);
    }
    if (logger.file != NULL) {
        apr_file_close(logger.file);
        logger.file = NULL;
    }
    logger.open = 0;
    logger.lock = NULL;
    if (lock != NULL) {
        apr_thread_mutex_unlock(lock);
    }
}

/* See log.h. */
void
dkv_log_set_stderr(int on)
{
    logger.no_stderr = !on;
}

/* See log.h. */
void
dkv_log_v(dkv_log_level_t level, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    apr_time_exp_t tm;
    size_t n, head;
    int rc;
    char *p;

    if (level < logger.level) {
        return;
    }
    apr_time_exp_gmt(&tm, apr_time_now());
    rc = snprintf(line, sizeof(line),
                  "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s: ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, tm.tm_usec / 1000,
                  dkv_log_level_name(level), logger.program);
    head = rc > 0 ? (size_t)rc : 0;
    if (head >= sizeof(line)) {
        head = 0;
    }
    rc = vsnprintf(line + head, sizeof(line) - head - 1, fmt, ap);
    if (rc < 0) {
        rc = 0;
    }
    n = head + (size_t)rc;
    if (n >= sizeof(line) - 1) {
        n = sizeof(line) - 2;
        memcpy(line + n - 3, "...", 3);
    }
    for (p = line + head; p < line + n; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }
    line[n++] = '\n';
    line[n] = '\0';

    if (logger.lock != NULL) {
        apr_thread_mutex_lock(logger.lock);
    }
    if (logger.file != NULL) {
        apr_size_t len = n;

        apr_file_write_full(logger.file, line, len, NULL);
    }
    if (!logger.no_stderr
        && (logger.file == NULL || level >= DKV_LOG_WARN)) {
        fwrite(line, 1, n, stderr);
        fflush(stderr);
    }
    if (logger.lock != NULL) {
        apr_thread_mutex_unlock(logger.lock);
    }
}

/* See log.h. */
void
dkv_log(dkv_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    dkv_log_v(level, fmt, ap);
    va_end(ap);
}
