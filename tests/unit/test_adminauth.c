/*
 * test_adminauth.c -- suite `adminauth` (stub: being written).
 */
#include "testutil.h"
#include "common/adminauth.h"

void
test_adminauth_register(void)
{
}
