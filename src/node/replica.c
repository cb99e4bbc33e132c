/* replica.c -- being written. */
typedef int dkv_stub_replica_t;
