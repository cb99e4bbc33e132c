/*
 * suites.h -- the list of unit-test files, one DKV_SUITE(name) line each.
 * No include guard: the includer defines DKV_SUITE (an X-macro list).
 *
 * A line DKV_SUITE(foo) means tests/unit/test_foo.c defines
 * `void test_foo_register(void)`, which adds its CUnit suites.  The
 * runner (runner.c) calls the registrars in this order.  To add a file:
 * append a line here and add the .c to tests_unit_runner_SOURCES in
 * Makefile.am (and to win32/dkv-tests.vcxproj).
 */
DKV_SUITE(testutil)
DKV_SUITE(common)
DKV_SUITE(client)
DKV_SUITE(engine)
DKV_SUITE(search)
DKV_SUITE(api_kv)
DKV_SUITE(api_ttl)
DKV_SUITE(api_coord)
DKV_SUITE(api_watch)
DKV_SUITE(api_txn)
DKV_SUITE(api_search)
DKV_SUITE(api_persist)
DKV_SUITE(api_realtime)
DKV_SUITE(crash)
DKV_SUITE(proto)
DKV_SUITE(service)
DKV_SUITE(remote)
DKV_SUITE(engine_repl)
DKV_SUITE(raft)
DKV_SUITE(link)
DKV_SUITE(lincheck)
DKV_SUITE(adminauth)
DKV_SUITE(node_admin)
DKV_SUITE(firewall)
DKV_SUITE(fw_linux)
