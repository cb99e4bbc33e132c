/*
 * codec.h -- fixed-width integer encodings shared by the engine's on-disk
 * format and (later) the wire protocol.
 *
 * Big-endian encodings sort bytewise in numeric order, which is what LMDB
 * keys need; the signed forms flip the sign bit so that negative numbers
 * sort before positive ones.  All functions are inline and alignment-free.
 */
#ifndef DKV_COMMON_CODEC_H
#define DKV_COMMON_CODEC_H

#include <stdint.h>

static inline void
dkv_put_be64(unsigned char *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static inline uint64_t
dkv_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline void
dkv_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline uint32_t
dkv_get_be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16)
           | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Signed 64-bit, order-preserving: INT64_MIN encodes as 00..00. */
static inline void
dkv_put_be64s(unsigned char *p, int64_t v)
{
    dkv_put_be64(p, (uint64_t)v ^ UINT64_C(0x8000000000000000));
}

static inline int64_t
dkv_get_be64s(const unsigned char *p)
{
    return (int64_t)(dkv_get_be64(p) ^ UINT64_C(0x8000000000000000));
}

#endif /* DKV_COMMON_CODEC_H */
