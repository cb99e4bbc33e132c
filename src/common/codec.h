/*
 * codec.h -- fixed-width integer encodings shared by the engine's on-disk
 * format and (later) the wire protocol, and the bytewise order they (and
 * LMDB's keys) sort in.
 *
 * Big-endian encodings sort bytewise in numeric order, which is what LMDB
 * keys need; the signed forms flip the sign bit so that negative numbers
 * sort before positive ones.  All functions are inline and alignment-free.
 */
#ifndef DKV_COMMON_CODEC_H
#define DKV_COMMON_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Written byte by byte with shifts, which compilers recognize: each
 * function becomes one (unaligned) load or store and a byte swap. */
static inline void
dkv_put_be64(unsigned char *p, uint64_t v)
{
    p[0] = (unsigned char)(v >> 56);
    p[1] = (unsigned char)(v >> 48);
    p[2] = (unsigned char)(v >> 40);
    p[3] = (unsigned char)(v >> 32);
    p[4] = (unsigned char)(v >> 24);
    p[5] = (unsigned char)(v >> 16);
    p[6] = (unsigned char)(v >> 8);
    p[7] = (unsigned char)v;
}

static inline uint64_t
dkv_get_be64(const unsigned char *p)
{
    return ((uint64_t)p[0] << 56) | ((uint64_t)p[1] << 48)
           | ((uint64_t)p[2] << 40) | ((uint64_t)p[3] << 32)
           | ((uint64_t)p[4] << 24) | ((uint64_t)p[5] << 16)
           | ((uint64_t)p[6] << 8) | (uint64_t)p[7];
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

/* memcmp order of byte strings of different lengths (LMDB's default key
 * order): <0, 0 or >0 as A sorts before, equal to or after B. */
static inline int
dkv_bytes_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

#endif /* DKV_COMMON_CODEC_H */
