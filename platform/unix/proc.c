/*
 * proc.c -- processes and ports (platform/proc.h), Unix
 * (stub: being written)
 */
#include "platform/proc.h"
