/*
 * mgrclient.c -- the managers' HTTP client of the AdminShell
 * (stub: being written)
 */
#include "cli/admin.h"
