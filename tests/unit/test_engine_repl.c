/* test_engine_repl.c -- being written. */
#include "testutil.h"

void test_engine_repl_register(void);

void
test_engine_repl_register(void)
{
}
