/*
 * proto.h -- the client protocol's codec: frames, requests, responses and
 * watch events, as docs/protocol.md specifies them.
 *
 * Both ends use it: dkv-node decodes requests and encodes responses and
 * events; the remote client encodes requests and decodes the rest.  Every
 * decoder treats its input as hostile: it checks every length against the
 * frame, every count and size against the protocol's limits, and returns
 * DKV_EINVAL (with dkv_error_set) rather than read past the end, allocate
 * without bound or recurse without bound.
 *
 * Decoded messages are "fat" structs: one struct for every request (and
 * one for every response), with the fields the operation uses filled and
 * the rest zero.  Text fields are copied into the decode pool with a NUL
 * terminator; key, value, token and cursor bytes point INTO the frame's
 * body, so the frame's buffer must outlive the decoded message.  Empty
 * short byte fields (sbytes: token, cursor, after, next, range bounds)
 * decode as NULL with length 0; a value decodes as a non-NULL pointer
 * even when empty.  One exception: an item's value (GET, GET_MANY, SCAN
 * and SEARCH responses) is copied into the pool followed by a NUL byte,
 * as dkv_item_t promises.
 *
 * Encoders check the same limits (DKV_EINVAL when one is broken) and
 * append a frame whole or not at all: a frame that fails is rolled back
 * out of the buffer.
 */
#ifndef DKV_COMMON_PROTO_H
#define DKV_COMMON_PROTO_H

#include <apr_pools.h>

#include "dkv.h"

#define DKV_PROTO_VERSION 1
#define DKV_PROTO_MAGIC 0x444B5601u
/* Bytes before a frame's body: length (4), op, flags, reserved (2), id. */
#define DKV_PROTO_HEADER 16
/* Request header flags (the flags byte of a request frame; a node ignores
 * the bits it does not know).  SERIALIZABLE: a read (GET, GET_MANY, SCAN,
 * COUNT, COUNTER_GET, LEASE_INFO, SEARCH) is served from the answering
 * node's local state, without the linearizable read-index round; other
 * ops ignore it. */
#define DKV_PROTO_FLAG_SERIALIZABLE 0x01
#define DKV_PROTO_REQUEST_FLAGS DKV_PROTO_FLAG_SERIALIZABLE

/* 1 for the ops that read the store's data (GET, GET_MANY, SCAN, COUNT,
 * COUNTER_GET, LEASE_INFO, SEARCH, REVISION): linearizable by default,
 * served locally with DKV_PROTO_FLAG_SERIALIZABLE. */
int dkv_proto_op_reads_store(unsigned op);
/* The smallest max_frame a node may announce, and the default one. */
#define DKV_PROTO_MIN_FRAME (1024u * 1024u)
#define DKV_PROTO_DEFAULT_FRAME (64u * 1024u * 1024u)
/* Decoding limits (docs/protocol.md).  The bulk cap is the public one
 * (dkv/client.h), which both backends apply. */
#define DKV_PROTO_MAX_BULK DKV_MAX_BULK
#define DKV_PROTO_MAX_CLAUSES 256
#define DKV_PROTO_MAX_DEPTH 32
#define DKV_PROTO_MAX_ORDER 32
#define DKV_PROTO_MAX_SELECT 32
#define DKV_PROTO_MAX_PAGE 10000
#define DKV_PROTO_MAX_CLIENT_NAME 128
/* MEMBERS: members in one answer, and a member's host name (1..255). */
#define DKV_PROTO_MAX_MEMBERS 256
#define DKV_PROTO_MAX_HOST 255
/* STATS: metrics in one answer, and a metric name's length (1..64). */
#define DKV_PROTO_MAX_STATS 512
#define DKV_PROTO_MAX_STAT_NAME 64
/* Response ops have this bit set. */
#define DKV_PROTO_RESPONSE 0x80

typedef enum dkv_msg {
    DKV_MSG_HELLO = 0x01,
    DKV_MSG_PING = 0x02,
    DKV_MSG_REVISION = 0x03,
    DKV_MSG_MEMBERS = 0x04,
    DKV_MSG_STATS = 0x05,        /* the node's metrics (any client) */
    DKV_MSG_MEMBER_ADD = 0x06,   /* admin: add a member to the group */
    DKV_MSG_GET = 0x10,
    DKV_MSG_PUT = 0x11,
    DKV_MSG_DELETE = 0x12,
    DKV_MSG_EXPIRE = 0x13,
    DKV_MSG_REFRESH = 0x14,
    DKV_MSG_GET_MANY = 0x15,
    DKV_MSG_PUT_MANY = 0x16,
    DKV_MSG_DELETE_MANY = 0x17,
    DKV_MSG_BATCH = 0x18,
    DKV_MSG_CLEAR = 0x19,
    DKV_MSG_SCAN = 0x1A,
    DKV_MSG_COUNT = 0x1B,
    DKV_MSG_COUNTER_ADD = 0x20,
    DKV_MSG_COUNTER_GET = 0x21,
    DKV_MSG_COUNTER_SET = 0x22,
    DKV_MSG_LEASE_GRANT = 0x23,
    DKV_MSG_LEASE_KEEPALIVE = 0x24,
    DKV_MSG_LEASE_REVOKE = 0x25,
    DKV_MSG_LEASE_INFO = 0x26,
    DKV_MSG_LOCK_ACQUIRE = 0x27,
    DKV_MSG_LOCK_RELEASE = 0x28,
    DKV_MSG_TXN_COMMIT = 0x30,
    DKV_MSG_SEARCH = 0x31,
    DKV_MSG_WATCH = 0x38,
    DKV_MSG_WATCH_CANCEL = 0x39,
    DKV_MSG_EVENT = 0x40,
    DKV_MSG_PROTOCOL_ERROR = 0x7F
} dkv_msg_t;

/* WATCH flags. */
#define DKV_PROTO_WATCH_PREFIX 0x01
#define DKV_PROTO_WATCH_SNAPSHOT 0x02

/* EVENT frame header flags: set on the frame that ends the initial
 * snapshot of an include_snapshot watch (the frame may then hold no
 * events: the snapshot was empty, or ended with the previous frame). */
#define DKV_PROTO_EVENT_SNAPSHOT_DONE 0x01

/* ---------------------------------------------------------------- frames */

typedef struct dkv_frame {
    uint8_t op;
    uint8_t flags;
    uint64_t id;
    const unsigned char *body;
    size_t body_len;
} dkv_frame_t;

/* Parses the frame at the start of BUF (LEN bytes available).  Returns
 * DKV_OK with *FRAME filled (pointing into BUF) and *SIZE = the frame's
 * total size; APR_INCOMPLETE when more bytes are needed (*SIZE = the total
 * size when the length field is complete, else 0); DKV_EINVAL or
 * DKV_ETOOLARGE when the length field is below 12 or above MAX_FRAME (the
 * connection cannot be resynchronized: close it).  MAX_FRAME 0 means
 * DKV_PROTO_DEFAULT_FRAME.  The header's flags are returned, its reserved
 * field is ignored. */
dkv_status_t dkv_proto_frame_parse(dkv_frame_t *frame, size_t *size,
                                   const void *buf, size_t len,
                                   uint32_t max_frame);

/* A growable output buffer.  Appends never fail individually: on
 * allocation failure (APR_ENOMEM) or when LIMIT would be passed
 * (DKV_ETOOLARGE), FAILED is set and later appends do nothing; check it
 * once at the end.  The encoders below roll a failed frame back, so the
 * buffer always holds whole frames: a caller may reset FAILED to DKV_OK
 * and append something smaller (an error response).  Memory comes from
 * dkv_realloc and is freed by dkv_wbuf_free.  Not thread-safe. */
typedef struct dkv_wbuf {
    unsigned char *data;
    size_t len;
    size_t cap;
    size_t limit;       /* 0: no limit */
    dkv_status_t failed;
} dkv_wbuf_t;

void dkv_wbuf_init(dkv_wbuf_t *buf, size_t limit);
void dkv_wbuf_free(dkv_wbuf_t *buf);
/* Drops the first N bytes (what was sent). */
void dkv_wbuf_consume(dkv_wbuf_t *buf, size_t n);
/* Appends N bytes of DATA (raw; for tests and framing helpers). */
void dkv_wbuf_append(dkv_wbuf_t *buf, const void *data, size_t n);

/* ---------------------------------------------------------------- values */

/* Maps a status to its wire code and back (docs/protocol.md, "status"):
 * DKV_OK <-> 0, dkv's codes DKV_START_ERROR + n <-> n (1..16); any other
 * status goes out as 0xFFFF, and 0xFFFF (or any code this version does not
 * know) comes back as DKV_EUNAVAILABLE. */
uint16_t dkv_proto_status_to_wire(dkv_status_t status);
dkv_status_t dkv_proto_status_from_wire(uint16_t code);

/* A TXN_COMMIT read-set entry. */
typedef struct dkv_proto_compare {
    const void *key;
    size_t key_len;
    uint64_t mod_revision;
} dkv_proto_compare_t;

/* A MEMBERS entry: one member of the store's group.  ROLES has the
 * DKV_PROTO_MEMBER_* bits; HOST is a name or an IP address (IPv6 without
 * brackets), 1..DKV_PROTO_MAX_HOST bytes; PORT is its client port (0:
 * it has none a client can use). */
#define DKV_PROTO_MEMBER_VOTER 0x01
#define DKV_PROTO_MEMBER_LEARNER 0x02
#define DKV_PROTO_MEMBER_SELF 0x04     /* the node that answered */
#define DKV_PROTO_MEMBER_ROLES 0x07

typedef struct dkv_proto_member {
    uint32_t id;
    unsigned roles;
    const char *host;
    uint16_t port;
} dkv_proto_member_t;

/* A STATS entry: one metric of the answering node (docs/protocol.md,
 * "STATS" lists the names).  NAME is 1..DKV_PROTO_MAX_STAT_NAME bytes of
 * [a-z0-9_]. */
typedef struct dkv_proto_stat {
    const char *name;
    uint64_t value;
} dkv_proto_stat_t;

/* -------------------------------------------------------------- requests */

typedef struct dkv_request {
    uint8_t op;
    uint64_t id;
    /* Header flags (DKV_PROTO_FLAG_*): the encoder writes them (other
     * bits are DKV_EINVAL); the decoder returns the frame's known bits
     * and drops the others. */
    uint8_t flags;

    /* HELLO */
    uint32_t magic;
    uint16_t min_version;
    uint16_t max_version;
    const char *store;
    const void *token;
    size_t token_len;
    const char *client;

    /* Single-key operations; WATCH (key may be empty with a prefix). */
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    dkv_put_opts_t put;          /* PUT, PUT_MANY */
    dkv_get_opts_t get;          /* GET, GET_MANY */
    dkv_delete_opts_t del;       /* DELETE, DELETE_MANY */
    dkv_counter_opts_t counter;  /* COUNTER_ADD, COUNTER_SET */
    /* EXPIRE ttl_ms; COUNTER_ADD delta; COUNTER_SET value;
     * LEASE_GRANT ttl_ms. */
    int64_t num;
    /* EXPIRE, REFRESH lock; LEASE_* lease; LOCK_ACQUIRE lease;
     * LOCK_RELEASE token; WATCH start_revision; WATCH_CANCEL watch id. */
    uint64_t u64;

    /* Bulk: GET_MANY and DELETE_MANY keys; PUT_MANY kvs; BATCH and
     * TXN_COMMIT ops (their option structs in the decode pool). */
    size_t n;
    dkv_key_t *keys;
    dkv_kv_t *kvs;
    dkv_op_t *ops;
    size_t ncompares;
    dkv_proto_compare_t *compares;

    /* CLEAR, SCAN, COUNT */
    dkv_range_t range;
    dkv_scan_opts_t scan;

    /* SEARCH (the clause tree in the decode pool) */
    dkv_query_t query;
    dkv_search_opts_t search;

    /* WATCH */
    unsigned watch_flags;

    /* MEMBER_ADD: the new member (id nonzero, host 1..255 bytes, its
     * cluster port nonzero, its client port). */
    uint32_t member_id;
    const char *member_host;
    uint16_t member_cluster_port;
    uint16_t member_client_port;
} dkv_request_t;

/* Decodes request FRAME into *REQ (zeroed first; op and id are set even
 * on failure, for the error response).  Option structs of BATCH and
 * TXN_COMMIT ops, labels, clauses and arrays live in POOL.  Returns
 * DKV_OK; DKV_EINVAL for a malformed body (message says where);
 * DKV_ENOTIMPL for an op that is not a request. */
dkv_status_t dkv_proto_request_decode(dkv_request_t *req,
                                      const dkv_frame_t *frame,
                                      apr_pool_t *pool);

/* Appends REQ as a complete frame to OUT.  Returns DKV_OK; DKV_EINVAL
 * when REQ breaks a protocol limit; OUT->failed's status when the buffer
 * failed (DKV_ETOOLARGE past its limit). */
dkv_status_t dkv_proto_request_encode(dkv_wbuf_t *out,
                                      const dkv_request_t *req);

/* ------------------------------------------------------------- responses */

typedef struct dkv_response {
    uint8_t op;                 /* the request's op (without 0x80) */
    uint64_t id;
    dkv_status_t status;
    const char *message;        /* never NULL after decode */

    /* HELLO */
    uint16_t version;
    const char *store;
    const char *instance;       /* HELLO, PING */
    uint32_t max_frame;
    uint32_t max_value;
    uint64_t revision;          /* HELLO, PING, REVISION, TXN_COMMIT,
                                 * WATCH */
    int64_t node_time;          /* PING */

    dkv_item_t item;            /* GET */
    dkv_result_t result;        /* PUT, DELETE, EXPIRE, REFRESH */
    /* GET, PUT, DELETE, EXPIRE, REFRESH: 1 when ITEM or RESULT is
     * present.  They always are with status OK; with another status only
     * when the operation ran and that status is its own outcome (the
     * node then sets it; see docs/protocol.md, "Responses"). */
    int has_result;
    size_t n;                   /* GET_MANY items; PUT_MANY, DELETE_MANY,
                                 * BATCH results */
    dkv_item_t *items;
    dkv_result_t *results;
    dkv_page_t page;            /* SCAN, SEARCH */
    /* CLEAR deleted; COUNT count; LEASE_GRANT lease; LEASE_REVOKE
     * keys_deleted. */
    uint64_t u64;
    /* COUNTER_ADD previous and current; COUNTER_GET value (num1);
     * LEASE_KEEPALIVE remaining_ms (num1). */
    int64_t num1;
    int64_t num2;
    dkv_lease_info_t lease_info;
    dkv_lock_t lock;            /* LOCK_ACQUIRE (OK and DKV_ELOCKED) */
    /* MEMBERS: the leader's id (0: unknown) and the members (in the
     * decode pool; hosts copied there too). */
    uint32_t leader;
    size_t nmembers;
    dkv_proto_member_t *members;
    /* STATS: the metrics (in the decode pool; names copied there). */
    size_t nstats;
    dkv_proto_stat_t *stats;
} dkv_response_t;

/* Decodes response FRAME (op with bit 7 set) into *RES.  A PROTOCOL_ERROR
 * frame (op 0x7F) decodes here too: RES->op = DKV_MSG_PROTOCOL_ERROR with
 * its status and message.  Responses to GET, PUT, DELETE, EXPIRE and
 * REFRESH carry a presence bool, then their item or result when it is 1
 * (RES->has_result; it must be 1 with status OK).  Any other response
 * with a status other than OK (and ELOCKED for LOCK_ACQUIRE) has no
 * result fields, whatever its op (a node answers unknown ops with
 * ENOTIMPL).  Returns DKV_OK (RES->status is the operation's status);
 * DKV_EINVAL when malformed (also for an unknown op with status OK). */
dkv_status_t dkv_proto_response_decode(dkv_response_t *res,
                                       const dkv_frame_t *frame,
                                       apr_pool_t *pool);

/* Appends RES as a complete response frame to OUT (result fields only
 * when RES->status is DKV_OK, or DKV_ELOCKED for LOCK_ACQUIRE; for GET,
 * PUT, DELETE, EXPIRE and REFRESH the presence bool, 1 when the status is
 * OK or RES->has_result is set, then the item or result).  RES->op
 * is the request's op, which may be unknown when the status is not OK;
 * DKV_MSG_PROTOCOL_ERROR encodes as dkv_proto_error_encode() does.  A
 * NULL message is empty; a longer one than 65535 bytes is cut.  Item
 * values go out when non-NULL.  Returns as dkv_proto_request_encode(). */
dkv_status_t dkv_proto_response_encode(dkv_wbuf_t *out,
                                       const dkv_response_t *res);

/* ---------------------------------------------------------------- events */

/* Appends an EVENT frame for watch ID with N events (N >= 1). */
dkv_status_t dkv_proto_events_encode(dkv_wbuf_t *out, uint64_t id,
                                     const dkv_event_t *events, size_t n);

/* The same with header FLAGS (DKV_PROTO_EVENT_SNAPSHOT_DONE or 0); N may
 * be 0 when FLAGS has DKV_PROTO_EVENT_SNAPSHOT_DONE.  Other bits are
 * DKV_EINVAL. */
dkv_status_t dkv_proto_events_encode_flags(dkv_wbuf_t *out, uint64_t id,
                                           unsigned flags,
                                           const dkv_event_t *events,
                                           size_t n);

/* Decodes an EVENT frame: *EVENTS (in POOL) and *N; keys and values point
 * into the frame (event values are not NUL-terminated).  The frame's
 * flags are FRAME->flags (bit DKV_PROTO_EVENT_SNAPSHOT_DONE; other bits
 * are ignored); N is 0 only in a frame with that bit.  Returns DKV_OK or
 * DKV_EINVAL (not an EVENT frame, or malformed). */
dkv_status_t dkv_proto_events_decode(dkv_event_t **events, size_t *n,
                                     const dkv_frame_t *frame,
                                     apr_pool_t *pool);

/* Appends a PROTOCOL_ERROR frame (decode it with
 * dkv_proto_response_decode). */
dkv_status_t dkv_proto_error_encode(dkv_wbuf_t *out, uint64_t id,
                                    dkv_status_t status,
                                    const char *message);

#endif /* DKV_COMMON_PROTO_H */
