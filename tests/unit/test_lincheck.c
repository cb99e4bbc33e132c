/* test_lincheck.c -- being written. */
#include "testutil.h"

void test_lincheck_register(void);

void
test_lincheck_register(void)
{
}
