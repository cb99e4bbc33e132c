/*
 * record.h -- the on-disk encoding of one key's record (the value of its
 * record key in LMDB's main database): a format byte, a flags byte saying
 * which optional fields are present, varints for the version, revisions,
 * creation time and value length, the optional fields (expiry, TTL, lease,
 * entity, content type, labels) and last the value.  A plain key costs
 * about 14 bytes besides its value.  Decoding checks every length against
 * the record's size and accepts only the one canonical encoding of a
 * record, so a damaged record is reported as DKV_ECORRUPT and never read
 * out of bounds.
 * The layout is described in record.c and docs/internals/engine.md.
 */
#ifndef DKV_ENGINE_RECORD_H
#define DKV_ENGINE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <apr_pools.h>

#include "dkv.h"

/* Format byte of every record written by this version (1, a fixed
 * 72-byte header, never shipped). */
#define DKV_REC_FORMAT 2
/* Size of the smallest record: format, flags and five one-byte varints. */
#define DKV_REC_MIN 7
/* Largest value of a label that is stored but not indexed. */
#define DKV_REC_MAX_PLAIN_LABEL 65535

/* A record, decoded or to encode.  Byte fields point into the encoded
 * record (or the caller's buffers); strings are not NUL-terminated. */
typedef struct dkv_rec {
    uint64_t version;
    uint64_t create_rev;
    uint64_t mod_rev;
    int64_t created_at;
    int64_t expires_at;      /* 0: never */
    int64_t ttl_ms;          /* TTL last given (for refresh); 0: none */
    uint64_t lease;          /* 0: none */
    const unsigned char *value;
    size_t value_len;
    const char *entity;      /* NULL or entity_len bytes */
    size_t entity_len;
    const char *ctype;       /* NULL or ctype_len bytes */
    size_t ctype_len;
    /* The encoded label area (see record.c) and its label count. */
    const unsigned char *labels;
    size_t labels_len;
    size_t nlabels;
} dkv_rec_t;

/* Decodes the NLEN bytes at DATA into *REC (pointing into DATA).
 * Returns DKV_OK or DKV_ECORRUPT (with dkv_error_set) when the bytes are
 * not a well-formed record. */
dkv_status_t dkv_rec_decode(dkv_rec_t *rec, const void *data, size_t len);

/* The encoded size of REC; when LABELS is not NULL, the record's label
 * area is taken from LABELS[0..NLABELS-1] instead of REC's raw area. */
size_t dkv_rec_size(const dkv_rec_t *rec, const dkv_label_t *labels,
                    size_t nlabels);

/* Encodes REC (and LABELS, as for dkv_rec_size) into BUF, which holds
 * dkv_rec_size() bytes. */
void dkv_rec_encode(unsigned char *buf, const dkv_rec_t *rec,
                    const dkv_label_t *labels, size_t nlabels);

/* Decodes REC's label area into an array of NUL-terminated copies in
 * POOL; *LABELS is NULL when there are none.  REC must come from
 * dkv_rec_decode (the area is already validated). */
void dkv_rec_labels(const dkv_label_t **labels, const dkv_rec_t *rec,
                    apr_pool_t *pool);

/* Fills ITEM from REC with one allocation in POOL: the key, the value
 * (unless WITH_VALUE is 0) followed by a NUL, the entity, content type
 * and labels as C strings.  REVISION and NOW fill item->revision and
 * item->ttl_ms.  item->status becomes DKV_OK. */
void dkv_rec_to_item(dkv_item_t *item, const dkv_rec_t *rec,
                     const void *key, size_t key_len, int with_value,
                     uint64_t revision, int64_t now, apr_pool_t *pool);

#endif /* DKV_ENGINE_RECORD_H */
