/* lincheck.c -- being written. */
typedef int dkv_stub_lincheck_t;
