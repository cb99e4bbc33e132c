/*
 * http.c -- dkv-manager module
 * (stub: being written)
 */
#include "manager/manager.h"
