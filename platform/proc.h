/*
 * proc.h -- what dkv-manager needs from the OS about processes and ports
 * beyond APR (stub: being written).
 */
#ifndef DKV_PLATFORM_PROC_H
#define DKV_PLATFORM_PROC_H
#include "platform/platform.h"
#endif /* DKV_PLATFORM_PROC_H */
