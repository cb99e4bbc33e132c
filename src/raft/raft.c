/* raft.c -- being written. */
typedef int dkv_stub_raft_t;
