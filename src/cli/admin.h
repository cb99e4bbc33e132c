/*
 * admin.h -- the AdminShell internals of `dkv` (stub: being written).
 */
#ifndef DKV_CLI_ADMIN_H
#define DKV_CLI_ADMIN_H
#include "cli/cli.h"
#endif /* DKV_CLI_ADMIN_H */
