/*
 * version.c -- the library's version at run time (dkv/common.h).
 */
#include "dkv/common.h"

/* See dkv/common.h. */
const char *
dkv_version(void)
{
    return DKV_VERSION_STRING;
}
