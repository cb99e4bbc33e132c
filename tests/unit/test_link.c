/* test_link.c -- being written. */
#include "testutil.h"

void test_link_register(void);

void
test_link_register(void)
{
}
