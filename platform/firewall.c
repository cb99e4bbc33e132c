/*
 * firewall.c -- placeholder, being written (platform/firewall.h).
 */
#include "platform/platform.h"

typedef int dkv_placeholder_t;
