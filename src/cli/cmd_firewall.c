/*
 * cmd_firewall.c -- placeholder for `dkv firewall`, being written.
 */
#include "cli/cli.h"

int
cli_firewall_main(int argc, const char *const *argv, apr_pool_t *pool)
{
    (void)argc;
    (void)argv;
    (void)pool;
    return CLI_EXIT_USAGE;
}
