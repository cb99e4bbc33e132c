/*
 * cmd_admin.c -- the AdminShell commands
 * (stub: being written)
 */
#include "cli/admin.h"
