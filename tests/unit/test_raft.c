/* test_raft.c -- being written. */
#include "testutil.h"

void test_raft_register(void);

void
test_raft_register(void)
{
}
