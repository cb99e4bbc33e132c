/*
 * record.c -- encoding and decoding of the per-key record (record.h).
 *
 * Layout (big-endian integers):
 *
 *    0  u8   format (DKV_REC_FORMAT)
 *    1  u8   flags (0; reserved)
 *    2  u16  entity length
 *    4  u16  content-type length
 *    6  u16  label count
 *    8  u32  value length
 *   12  u32  label area length
 *   16  u64  version
 *   24  u64  create revision
 *   32  u64  mod revision
 *   40  i64  created at (ms)
 *   48  i64  expires at (ms; 0: never)
 *   56  i64  ttl (ms; the TTL last given, for refresh; 0: none)
 *   64  u64  lease (0: none)
 *   72  value, entity, content type, label area
 *
 * Each label in the area: u8 flags (bit 0: indexed), u8 name length,
 * u16 value length, name bytes, value bytes.
 */
#include <string.h>

#include "common/codec.h"
#include "common/status.h"
#include "engine/record.h"

#define LABEL_INDEXED 0x01
#define LABEL_HEAD 4

static dkv_status_t
corrupt(const char *what, size_t len)
{
    return dkv_error_set(DKV_ECORRUPT,
                         "damaged record (%zu bytes): %s",
                         len, what);
}

/* Checks the label area AREA[0..LEN-1] holds exactly N valid labels. */
static dkv_status_t
check_labels(const unsigned char *area, size_t len, size_t n,
             size_t rec_len)
{
    size_t off = 0, i;

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
    if (off != len) {
        return corrupt("label area size mismatch", rec_len);
    }
    return DKV_OK;
}

dkv_status_t
dkv_rec_decode(dkv_rec_t *rec, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t el, cl, nl, vl, ll;

    if (len < DKV_REC_HEADER) {
        return corrupt("shorter than its header", len);
    }
    if (p[0] != DKV_REC_FORMAT || p[1] != 0) {
        return corrupt("unknown format", len);
    }
    el = ((size_t)p[2] << 8) | p[3];
    cl = ((size_t)p[4] << 8) | p[5];
    nl = ((size_t)p[6] << 8) | p[7];
    vl = dkv_get_be32(p + 8);
    ll = dkv_get_be32(p + 12);
    if (el > DKV_MAX_ENTITY || cl > DKV_MAX_CONTENT_TYPE
        || nl > DKV_MAX_LABELS) {
        return corrupt("metadata length over its limit", len);
    }
    /* Each term is < 2^32, so the sum cannot overflow a 64-bit size. */
    if ((uint64_t)DKV_REC_HEADER + vl + el + cl + ll != (uint64_t)len) {
        return corrupt("lengths do not add up", len);
    }
    rec->version = dkv_get_be64(p + DKV_REC_OFF_VERSION);
    rec->create_rev = dkv_get_be64(p + DKV_REC_OFF_CREATE_REV);
    rec->mod_rev = dkv_get_be64(p + DKV_REC_OFF_MOD_REV);
    rec->created_at = (int64_t)dkv_get_be64(p + DKV_REC_OFF_CREATED_AT);
    rec->expires_at = (int64_t)dkv_get_be64(p + DKV_REC_OFF_EXPIRES_AT);
    rec->ttl_ms = (int64_t)dkv_get_be64(p + DKV_REC_OFF_TTL);
    rec->lease = dkv_get_be64(p + DKV_REC_OFF_LEASE);
    if (rec->version == 0 || rec->mod_rev < rec->create_rev
        || rec->expires_at < 0 || rec->ttl_ms < 0) {
        return corrupt("inconsistent header", len);
    }
    p += DKV_REC_HEADER;
    rec->value = p;
    rec->value_len = vl;
    p += vl;
    rec->entity = el ? (const char *)p : NULL;
    rec->entity_len = el;
    p += el;
    rec->ctype = cl ? (const char *)p : NULL;
    rec->ctype_len = cl;
    p += cl;
    if ((el && memchr(rec->entity, 0, el)) || (cl && memchr(rec->ctype, 0,
                                                            cl))) {
        return corrupt("NUL inside the entity or content type", len);
    }
    rec->labels = p;
    rec->labels_len = ll;
    rec->nlabels = nl;
    return check_labels(p, ll, nl, len);
}

size_t
dkv_rec_labels_size(const dkv_label_t *labels, size_t n)
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
    size_t ll = labels ? dkv_rec_labels_size(labels, nlabels)
                       : rec->labels_len;

    return DKV_REC_HEADER + rec->value_len + rec->entity_len
           + rec->ctype_len + ll;
}

void
dkv_rec_encode_header(unsigned char *buf, const dkv_rec_t *rec)
{
    dkv_put_be64(buf + DKV_REC_OFF_VERSION, rec->version);
    dkv_put_be64(buf + DKV_REC_OFF_CREATE_REV, rec->create_rev);
    dkv_put_be64(buf + DKV_REC_OFF_MOD_REV, rec->mod_rev);
    dkv_put_be64(buf + DKV_REC_OFF_CREATED_AT, (uint64_t)rec->created_at);
    dkv_put_be64(buf + DKV_REC_OFF_EXPIRES_AT, (uint64_t)rec->expires_at);
    dkv_put_be64(buf + DKV_REC_OFF_TTL, (uint64_t)rec->ttl_ms);
    dkv_put_be64(buf + DKV_REC_OFF_LEASE, rec->lease);
}

void
dkv_rec_encode(unsigned char *buf, const dkv_rec_t *rec,
               const dkv_label_t *labels, size_t nlabels)
{
    unsigned char *p = buf;
    size_t ll = labels ? dkv_rec_labels_size(labels, nlabels)
                       : rec->labels_len;
    size_t nl = labels ? nlabels : rec->nlabels;
    size_t i;

    p[0] = DKV_REC_FORMAT;
    p[1] = 0;
    p[2] = (unsigned char)(rec->entity_len >> 8);
    p[3] = (unsigned char)rec->entity_len;
    p[4] = (unsigned char)(rec->ctype_len >> 8);
    p[5] = (unsigned char)rec->ctype_len;
    p[6] = (unsigned char)(nl >> 8);
    p[7] = (unsigned char)nl;
    dkv_put_be32(p + 8, (uint32_t)rec->value_len);
    dkv_put_be32(p + 12, (uint32_t)ll);
    dkv_rec_encode_header(p, rec);
    p += DKV_REC_HEADER;
    if (rec->value_len) {
        memcpy(p, rec->value, rec->value_len);
        p += rec->value_len;
    }
    if (rec->entity_len) {
        memcpy(p, rec->entity, rec->entity_len);
        p += rec->entity_len;
    }
    if (rec->ctype_len) {
        memcpy(p, rec->ctype, rec->ctype_len);
        p += rec->ctype_len;
    }
    if (!labels) {
        if (ll) {
            memcpy(p, rec->labels, ll);
        }
        return;
    }
    for (i = 0; i < nlabels; i++) {
        size_t n = strlen(labels[i].name), v = strlen(labels[i].value);

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
    char *block = apr_palloc(pool, size);
    char *s = block + rec->nlabels * sizeof(dkv_label_t);

    item->status = DKV_OK;
    item->labels = rec->nlabels ? (const dkv_label_t *)block : NULL;
    item->nlabels = rec->nlabels;
    unpack_labels((dkv_label_t *)block, &s, rec);
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
