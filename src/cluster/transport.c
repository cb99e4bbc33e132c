/* transport.c -- being written. */
typedef int dkv_stub_transport_t;
