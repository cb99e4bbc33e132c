/*
 * proc.c -- processes and ports (platform/proc.h), Windows
 * (stub: being written)
 */
#include "platform/proc.h"
