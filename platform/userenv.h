/*
 * userenv.h -- what the `dkv` command-line client needs from the user's
 * environment beyond APR: the per-user configuration directory and
 * whether a stream is a terminal.  platform/unix/userenv.c and
 * platform/win32/userenv.c implement it; only the `dkv` program links it.
 */
#ifndef DKV_PLATFORM_USERENV_H
#define DKV_PLATFORM_USERENV_H

#include <stdint.h>

#include <apr_pools.h>

#include "dkv/common.h"

/* The directory for the user's dkv files (session, client logs), in
 * POOL: $XDG_CONFIG_HOME/dkv or $HOME/.config/dkv on Unix,
 * %LOCALAPPDATA%\dkv on Windows.  Not created.  Returns DKV_OK, or
 * DKV_EINVAL when the environment names no home. */
dkv_status_t dkv_plat_user_dir(const char **dir, apr_pool_t *pool);

/* 1 when standard stream FD (0, 1 or 2) is a terminal (console). */
int dkv_plat_isatty(int fd);

/* A monotonic clock in nanoseconds (arbitrary origin), for measuring
 * short intervals such as one in-process read. */
int64_t dkv_plat_mono_ns(void);

#endif /* DKV_PLATFORM_USERENV_H */
