/* repl.c -- being written. */
typedef int dkv_stub_repl_t;
