/*
 * record.c -- encoding and decoding of the per-key record (record.h).
 *
 * Layout (a varint is unsigned LEB128, at most 10 bytes, canonical: no
 * needless trailing zero groups; zigzag maps signed to unsigned):
 *
 *   u8      format (DKV_REC_FORMAT)
 *   u8      flags: which optional fields follow (REC_F_*)
 *   varint  version (>= 1)
 *   varint  mod revision
 *   varint  mod revision - create revision
 *   varint  created at (ms), zigzag
 *   varint  value length
 *   then, each only when its flag is set, in this order:
 *   varint  expires at - created at (ms), zigzag (expires at > 0)
 *   varint  ttl (ms; the TTL last given, for refresh; > 0)
 *   varint  lease (> 0)
 *   u8      entity length (1..64), entity bytes
 *   u8      content-type length (1..128), content-type bytes
 *   u8      label count (1..32), the label area
 *   and last the value.
 *
 * Each label in the area: u8 flags (bit 0: indexed), u8 name length,
 * u16 value length (big-endian), name bytes, value bytes.
 *
 * The value length is stored, not derived from the record's size (one
 * byte below 128 bytes of value), so that the parts must add up to the
 * size exactly and every truncation is refused.
 *
 * A flag is set exactly when its field is nonzero (non-empty), and
 * decoding refuses anything else, so a record has one encoding: a
 * damaged record either fails to decode or decodes to a record whose
 * encoding is exactly the damaged bytes.
 */
#include <string.h>

#include "common/status.h"
#include "engine/record.h"

/* Flags byte: the optional fields present. */
#define REC_F_EXPIRES 0x01
#define REC_F_TTL 0x02
#define REC_F_LEASE 0x04
#define REC_F_ENTITY 0x08
#define REC_F_CTYPE 0x10
#define REC_F_LABELS 0x20
#define REC_F_ALL 0x3f

#define LABEL_INDEXED 0x01
#define LABEL_HEAD 4

/* ============================================================ varints */

static size_t
varint_size(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static unsigned char *
varint_put(unsigned char *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

/* Reads a varint of two bytes or more (the first has its top bit set)
 * from Q, of which N bytes may be read, into *V; returns its length, or
 * 0 when it runs past N, is longer than 64 bits or is not canonical (a
 * last byte of 0). */
static size_t
varint_get_long(uint64_t *v, const unsigned char *q, size_t n)
{
    uint64_t r = q[0] & 0x7f;
    size_t i;

    if (n > 10) {
        n = 10;
    }
    for (i = 1; i < n; i++) {
        uint64_t b = q[i];

        r |= (b & 0x7f) << (7 * i);
        if (b < 0x80) {
            if (b == 0 || (i == 9 && b > 1)) {
                return 0;
            }
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

/* Reads a canonical varint from *P (before END) into *V and advances *P.
 * Returns 0 when it runs past END, is longer than 64 bits or has a
 * needless trailing zero group.  The one-byte case (versions, small
 * lengths) stays inline. */
static inline int
varint_get(uint64_t *v, const unsigned char **p, const unsigned char *end)
{
    const unsigned char *q = *p;
    size_t n;

    if (q < end && *q < 0x80) {
        *v = *q;
        *p = q + 1;
        return 1;
    }
    if (q == end || (n = varint_get_long(v, q, (size_t)(end - q))) == 0) {
        return 0;
    }
    *p = q + n;
    return 1;
}

static uint64_t
zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (v < 0 ? UINT64_MAX : 0);
}

static int64_t
unzigzag(uint64_t v)
{
    return (int64_t)((v >> 1) ^ (0 - (v & 1)));
}

/* expires_at - created_at, modulo 2^64 (so any pair round-trips). */
static uint64_t
exp_delta(const dkv_rec_t *rec)
{
    return zigzag((int64_t)((uint64_t)rec->expires_at
                            - (uint64_t)rec->created_at));
}

/* ============================================================ decoding */

static dkv_status_t
corrupt(const char *what, size_t len)
{
    return dkv_error_set(DKV_ECORRUPT,
                         "damaged record (%zu bytes): %s",
                         len, what);
}

/* Checks that the bytes from AREA on (before END) begin with N valid
 * labels; *AREA_LEN becomes their size. */
static dkv_status_t
check_labels(size_t *area_len, const unsigned char *area,
             const unsigned char *end, size_t n, size_t rec_len)
{
    size_t len = (size_t)(end - area), off = 0, i;

    for (i = 0; i < n; i++) {
        size_t nl, vl;

        if (len - off < LABEL_HEAD) {
            return corrupt("label header past the end", rec_len);
        }
        if (area[off] & ~LABEL_INDEXED) {
            return corrupt("unknown label flags", rec_len);
        }
        nl = area[off + 1];
        vl = ((size_t)area[off + 2] << 8) | area[off + 3];
        off += LABEL_HEAD;
        if (nl == 0 || nl > DKV_MAX_LABEL_NAME || len - off < nl + vl) {
            return corrupt("bad label length", rec_len);
        }
        if (memchr(area + off, 0, nl + vl) != NULL) {
            return corrupt("NUL inside a label", rec_len);
        }
        off += nl + vl;
    }
    *area_len = off;
    return DKV_OK;
}

/* Reads an optional text field (u8 length, bytes) of at most LIMIT
 * bytes at *P into *S and *SLEN. */
static int
get_text(const char **s, size_t *slen, const unsigned char **p,
         const unsigned char *end, size_t limit)
{
    const unsigned char *q = *p;
    size_t n;

    if (q == end) {
        return 0;
    }
    n = *q++;
    if (n == 0 || n > limit || (size_t)(end - q) < n
        || memchr(q, 0, n) != NULL) {
        return 0;
    }
    *s = (const char *)q;
    *slen = n;
    *p = q + n;
    return 1;
}

dkv_status_t
dkv_rec_decode(dkv_rec_t *rec, const void *data, size_t len)
{
    const unsigned char *p = data, *end = p + len;
    uint64_t version, mod, delta, created, vl;
    unsigned flags;

    if (len < DKV_REC_MIN) {
        return corrupt("shorter than its header", len);
    }
    if (p[0] != DKV_REC_FORMAT) {
        return corrupt("unknown format", len);
    }
    flags = p[1];
    if (flags & ~REC_F_ALL) {
        return corrupt("unknown flags", len);
    }
    p += 2;
    if (!varint_get(&version, &p, end) || !varint_get(&mod, &p, end)
        || !varint_get(&delta, &p, end) || !varint_get(&created, &p, end)
        || !varint_get(&vl, &p, end)) {
        return corrupt("bad header", len);
    }
    if (version == 0 || delta > mod) {
        return corrupt("inconsistent header", len);
    }
    rec->version = version;
    rec->mod_rev = mod;
    rec->create_rev = mod - delta;
    rec->created_at = unzigzag(created);
    rec->expires_at = 0;
    rec->ttl_ms = 0;
    rec->lease = 0;
    rec->entity = NULL;
    rec->entity_len = 0;
    rec->ctype = NULL;
    rec->ctype_len = 0;
    rec->labels = NULL;
    rec->labels_len = 0;
    rec->nlabels = 0;
    if (flags) {
        uint64_t v;

        if (flags & REC_F_EXPIRES) {
            if (!varint_get(&v, &p, end)) {
                return corrupt("bad expiry", len);
            }
            rec->expires_at = (int64_t)((uint64_t)rec->created_at
                                        + (uint64_t)unzigzag(v));
            if (rec->expires_at <= 0) {
                return corrupt("bad expiry", len);
            }
        }
        if (flags & REC_F_TTL) {
            if (!varint_get(&v, &p, end) || v == 0 || v > INT64_MAX) {
                return corrupt("bad ttl", len);
            }
            rec->ttl_ms = (int64_t)v;
        }
        if (flags & REC_F_LEASE) {
            if (!varint_get(&v, &p, end) || v == 0) {
                return corrupt("bad lease", len);
            }
            rec->lease = v;
        }
        if ((flags & REC_F_ENTITY)
            && !get_text(&rec->entity, &rec->entity_len, &p, end,
                         DKV_MAX_ENTITY)) {
            return corrupt("bad entity", len);
        }
        if ((flags & REC_F_CTYPE)
            && !get_text(&rec->ctype, &rec->ctype_len, &p, end,
                         DKV_MAX_CONTENT_TYPE)) {
            return corrupt("bad content type", len);
        }
        if (flags & REC_F_LABELS) {
            dkv_status_t s;

            if (p == end || *p == 0 || *p > DKV_MAX_LABELS) {
                return corrupt("bad label count", len);
            }
            rec->nlabels = *p++;
            rec->labels = p;
            s = check_labels(&rec->labels_len, p, end, rec->nlabels, len);
            if (s != DKV_OK) {
                return s;
            }
            p += rec->labels_len;
        }
    }
    if ((uint64_t)(end - p) != vl) {
        return corrupt("lengths do not add up", len);
    }
    rec->value = p;
    rec->value_len = (size_t)vl;
    return DKV_OK;
}

/* ============================================================ encoding */

/* Size in bytes of the label area encoding LABELS[0..N-1]. */
static size_t
labels_size(const dkv_label_t *labels, size_t n)
{
    size_t size = 0, i;

    for (i = 0; i < n; i++) {
        size += LABEL_HEAD + strlen(labels[i].name)
                + strlen(labels[i].value);
    }
    return size;
}

size_t
dkv_rec_size(const dkv_rec_t *rec, const dkv_label_t *labels,
             size_t nlabels)
{
    size_t nl = labels ? nlabels : rec->nlabels;
    size_t size = 2 + varint_size(rec->version) + varint_size(rec->mod_rev)
                  + varint_size(rec->mod_rev - rec->create_rev)
                  + varint_size(zigzag(rec->created_at))
                  + varint_size(rec->value_len) + rec->value_len;

    if (rec->expires_at) {
        size += varint_size(exp_delta(rec));
    }
    if (rec->ttl_ms) {
        size += varint_size((uint64_t)rec->ttl_ms);
    }
    if (rec->lease) {
        size += varint_size(rec->lease);
    }
    if (rec->entity_len) {
        size += 1 + rec->entity_len;
    }
    if (rec->ctype_len) {
        size += 1 + rec->ctype_len;
    }
    if (nl) {
        size += 1 + (labels ? labels_size(labels, nlabels)
                            : rec->labels_len);
    }
    return size;
}

void
dkv_rec_encode(unsigned char *buf, const dkv_rec_t *rec,
               const dkv_label_t *labels, size_t nlabels)
{
    unsigned char *p = buf;
    size_t nl = labels ? nlabels : rec->nlabels;
    unsigned flags = (rec->expires_at ? REC_F_EXPIRES : 0)
                     | (rec->ttl_ms ? REC_F_TTL : 0)
                     | (rec->lease ? REC_F_LEASE : 0)
                     | (rec->entity_len ? REC_F_ENTITY : 0)
                     | (rec->ctype_len ? REC_F_CTYPE : 0)
                     | (nl ? REC_F_LABELS : 0);
    size_t i;

    *p++ = DKV_REC_FORMAT;
    *p++ = (unsigned char)flags;
    p = varint_put(p, rec->version);
    p = varint_put(p, rec->mod_rev);
    p = varint_put(p, rec->mod_rev - rec->create_rev);
    p = varint_put(p, zigzag(rec->created_at));
    p = varint_put(p, rec->value_len);
    if (rec->expires_at) {
        p = varint_put(p, exp_delta(rec));
    }
    if (rec->ttl_ms) {
        p = varint_put(p, (uint64_t)rec->ttl_ms);
    }
    if (rec->lease) {
        p = varint_put(p, rec->lease);
    }
    if (rec->entity_len) {
        *p++ = (unsigned char)rec->entity_len;
        memcpy(p, rec->entity, rec->entity_len);
        p += rec->entity_len;
    }
    if (rec->ctype_len) {
        *p++ = (unsigned char)rec->ctype_len;
        memcpy(p, rec->ctype, rec->ctype_len);
        p += rec->ctype_len;
    }
    if (nl) {
        *p++ = (unsigned char)nl;
    }
    if (!labels) {
        if (rec->labels_len) {
            memcpy(p, rec->labels, rec->labels_len);
            p += rec->labels_len;
        }
    } else {
        for (i = 0; i < nlabels; i++) {
            size_t n = strlen(labels[i].name);
            size_t v = strlen(labels[i].value);

            p[0] = labels[i].indexed ? LABEL_INDEXED : 0;
            p[1] = (unsigned char)n;
            p[2] = (unsigned char)(v >> 8);
            p[3] = (unsigned char)v;
            p += LABEL_HEAD;
            memcpy(p, labels[i].name, n);
            p += n;
            memcpy(p, labels[i].value, v);
            p += v;
        }
    }
    if (rec->value_len) {
        memcpy(p, rec->value, rec->value_len);
    }
}
/* Writes REC's labels into LABELS, their strings from *STR on. */
static void
unpack_labels(dkv_label_t *labels, char **str, const dkv_rec_t *rec)
{
    const unsigned char *a = rec->labels;
    char *s = *str;
    size_t i;

    for (i = 0; i < rec->nlabels; i++) {
        size_t nl = a[1], vl = ((size_t)a[2] << 8) | a[3];

        labels[i].indexed = (a[0] & LABEL_INDEXED) != 0;
        a += LABEL_HEAD;
        memcpy(s, a, nl);
        s[nl] = '\0';
        labels[i].name = s;
        s += nl + 1;
        a += nl;
        memcpy(s, a, vl);
        s[vl] = '\0';
        labels[i].value = s;
        s += vl + 1;
        a += vl;
    }
    *str = s;
}

void
dkv_rec_labels(const dkv_label_t **labels, const dkv_rec_t *rec,
               apr_pool_t *pool)
{
    dkv_label_t *out;
    char *s;

    if (rec->nlabels == 0) {
        *labels = NULL;
        return;
    }
    out = apr_palloc(pool, rec->nlabels * sizeof(*out) + rec->labels_len);
    s = (char *)(out + rec->nlabels);
    unpack_labels(out, &s, rec);
    *labels = out;
}

void
dkv_rec_to_item(dkv_item_t *item, const dkv_rec_t *rec,
                const void *key, size_t key_len, int with_value,
                uint64_t revision, int64_t now, apr_pool_t *pool)
{
    size_t vl = with_value ? rec->value_len + 1 : 0;
    /* Labels first (aligned), then the bytes: each label string has a
     * NUL in place of its 4-byte head, so labels_len covers them. */
    size_t size = rec->nlabels * sizeof(dkv_label_t) + rec->labels_len
                  + key_len + 1 + vl + rec->entity_len + 1
                  + rec->ctype_len + 1;
    /* apr_palloc memory is aligned for any type. */
    void *block = apr_palloc(pool, size);
    dkv_label_t *labels = block;
    char *s = (char *)(labels + rec->nlabels);

    item->status = DKV_OK;
    item->labels = rec->nlabels ? labels : NULL;
    item->nlabels = rec->nlabels;
    if (rec->nlabels) {
        unpack_labels(labels, &s, rec);
    }
    memcpy(s, key, key_len);
    s[key_len] = '\0';
    item->key = s;
    item->key_len = key_len;
    s += key_len + 1;
    if (with_value) {
        if (rec->value_len) {
            memcpy(s, rec->value, rec->value_len);
        }
        s[rec->value_len] = '\0';
        item->value = s;
        item->value_len = rec->value_len;
        s += vl;
    } else {
        item->value = NULL;
        item->value_len = 0;
    }
    if (rec->entity_len) {
        memcpy(s, rec->entity, rec->entity_len);
        s[rec->entity_len] = '\0';
        item->entity = s;
        s += rec->entity_len + 1;
    } else {
        item->entity = NULL;
    }
    if (rec->ctype_len) {
        memcpy(s, rec->ctype, rec->ctype_len);
        s[rec->ctype_len] = '\0';
        item->content_type = s;
    } else {
        item->content_type = NULL;
    }
    item->version = rec->version;
    item->create_revision = rec->create_rev;
    item->mod_revision = rec->mod_rev;
    item->revision = revision;
    item->created_at = rec->created_at;
    item->expires_at = rec->expires_at;
    item->ttl_ms = rec->expires_at ? (rec->expires_at > now
                                      ? rec->expires_at - now : 0)
                                   : -1;
    item->lease = rec->lease;
}
