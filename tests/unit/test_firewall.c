/*
 * test_firewall.c -- placeholder for the firewall backends' tests.
 */
#include "testutil.h"

void
test_firewall_register(void)
{
}
