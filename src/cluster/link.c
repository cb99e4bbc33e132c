/* link.c -- being written. */
typedef int dkv_stub_link_t;
