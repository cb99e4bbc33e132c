/*
 * adminauth.c -- admin keys, signatures, sealing (adminauth.h)
 * (stub: being written)
 */
#include "common/adminauth.h"
