/* msg.c -- being written. */
typedef int dkv_stub_msg_t;
