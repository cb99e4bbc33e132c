/*
 * fw_windows.c -- placeholder, being written (platform/see header).
 */
#include "platform/platform.h"

typedef int dkv_placeholder_t;
