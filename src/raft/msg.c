/*
 * msg.c -- the encodings of the Raft core's messages and of what the
 * caller persists (entries, hard state, snapshot metadata, membership
 * changes).  Big-endian, versioned, hostile-input safe: every count is
 * checked against the bytes that remain before anything is allocated,
 * and trailing bytes are refused.  docs/internals/raft.md lists the
 * layouts.
 */
#include <string.h>

#include <apr_errno.h>

#include "raft/raft.h"
#include "common/alloc.h"
#include "common/codec.h"
#include "common/status.h"

#define MSG_VERSION 1
#define ENTRY_VERSION 1
#define META_VERSION 1

/* Fixed part of a message: version, type, from, to, term, log_term,
 * index, commit, context, reject, reject_hint, entry count. */
#define MSG_FIXED (1 + 1 + 4 + 4 + 8 * 5 + 1 + 8 + 4)
/* Per entry in a message: term, type, length. */
#define MSG_ENTRY_FIXED (8 + 1 + 4)

/* ----------------------------------------------------------- reading */

typedef struct rd {
    const unsigned char *p;
    size_t left;
} rd_t;

static int
rd_need(rd_t *r, size_t n)
{
    return r->left >= n;
}

static uint8_t
rd_u8(rd_t *r)
{
    uint8_t v = r->p[0];
    r->p++;
    r->left--;
    return v;
}

static uint32_t
rd_u32(rd_t *r)
{
    uint32_t v = dkv_get_be32(r->p);
    r->p += 4;
    r->left -= 4;
    return v;
}

static uint64_t
rd_u64(rd_t *r)
{
    uint64_t v = dkv_get_be64(r->p);
    r->p += 8;
    r->left -= 8;
    return v;
}

/* ------------------------------------------------------------ conf */

static size_t
conf_size(const dkv_raft_conf_t *c)
{
    return 2 + 4 * (c->nvoters + c->nlearners);
}

static unsigned char *
conf_put(unsigned char *p, const dkv_raft_conf_t *c)
{
    size_t i;

    *p++ = (unsigned char)c->nvoters;
    for (i = 0; i < c->nvoters; i++) {
        dkv_put_be32(p, c->voters[i]);
        p += 4;
    }
    *p++ = (unsigned char)c->nlearners;
    for (i = 0; i < c->nlearners; i++) {
        dkv_put_be32(p, c->learners[i]);
        p += 4;
    }
    return p;
}

static int
conf_ok(const dkv_raft_conf_t *c)
{
    size_t i;

    if (c->nvoters > DKV_RAFT_MAX_MEMBERS
        || c->nlearners > DKV_RAFT_MAX_MEMBERS) {
        return 0;
    }
    for (i = 0; i < c->nvoters; i++) {
        if (c->voters[i] == 0) {
            return 0;
        }
    }
    for (i = 0; i < c->nlearners; i++) {
        if (c->learners[i] == 0) {
            return 0;
        }
    }
    return 1;
}

static int
conf_get(rd_t *r, dkv_raft_conf_t *c)
{
    size_t i, n;

    memset(c, 0, sizeof(*c));
    if (!rd_need(r, 1)) {
        return 0;
    }
    n = rd_u8(r);
    if (n > DKV_RAFT_MAX_MEMBERS || !rd_need(r, 4 * n)) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        c->voters[i] = rd_u32(r);
    }
    c->nvoters = n;
    if (!rd_need(r, 1)) {
        return 0;
    }
    n = rd_u8(r);
    if (n > DKV_RAFT_MAX_MEMBERS || !rd_need(r, 4 * n)) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        c->learners[i] = rd_u32(r);
    }
    c->nlearners = n;
    return conf_ok(c);
}

/* ---------------------------------------------------------- messages */

dkv_status_t
dkv_raft_msg_encode(unsigned char **out, size_t *len,
                    const dkv_raft_msg_t *m)
{
    size_t size = MSG_FIXED, k;
    unsigned char *buf, *p;
    int snap = m->type == DKV_RAFT_MSG_SNAPSHOT;

    *out = NULL;
    *len = 0;
    if (m->nentries > 0 && m->entries == NULL) {
        return dkv_error_set(DKV_EINVAL, "raft msg: entries missing");
    }
    if (m->nentries > UINT32_MAX) {
        return dkv_error_set(DKV_EINVAL, "raft msg: too many entries");
    }
    for (k = 0; k < m->nentries; k++) {
        const dkv_raft_entry_t *e = &m->entries[k];
        if (e->index != m->index + 1 + k || e->len > UINT32_MAX
            || (e->len > 0 && e->data == NULL)) {
            return dkv_error_set(DKV_EINVAL, "raft msg: bad entry %zu", k);
        }
        size += MSG_ENTRY_FIXED + e->len;
    }
    if (snap) {
        if (!conf_ok(&m->snapshot.conf)) {
            return dkv_error_set(DKV_EINVAL, "raft msg: bad membership");
        }
        size += 16 + conf_size(&m->snapshot.conf);
    }
    buf = dkv_malloc(size);
    if (buf == NULL) {
        return APR_ENOMEM;
    }
    p = buf;
    *p++ = MSG_VERSION;
    *p++ = m->type;
    dkv_put_be32(p, m->from);
    dkv_put_be32(p + 4, m->to);
    dkv_put_be64(p + 8, m->term);
    dkv_put_be64(p + 16, m->log_term);
    dkv_put_be64(p + 24, m->index);
    dkv_put_be64(p + 32, m->commit);
    dkv_put_be64(p + 40, m->context);
    p[48] = m->reject ? 1 : 0;
    dkv_put_be64(p + 49, m->reject_hint);
    dkv_put_be32(p + 57, (uint32_t)m->nentries);
    p += 61;
    for (k = 0; k < m->nentries; k++) {
        const dkv_raft_entry_t *e = &m->entries[k];
        dkv_put_be64(p, e->term);
        p[8] = e->type;
        dkv_put_be32(p + 9, (uint32_t)e->len);
        p += MSG_ENTRY_FIXED;
        if (e->len > 0) {
            memcpy(p, e->data, e->len);
            p += e->len;
        }
    }
    if (snap) {
        dkv_put_be64(p, m->snapshot.index);
        dkv_put_be64(p + 8, m->snapshot.term);
        p = conf_put(p + 16, &m->snapshot.conf);
    }
    *out = buf;
    *len = (size_t)(p - buf);
    return DKV_OK;
}

dkv_status_t
dkv_raft_msg_decode(dkv_raft_msg_t *m, dkv_raft_entry_t **entries_buf,
                    const unsigned char *buf, size_t len)
{
    rd_t r;
    uint32_t n, k;
    uint8_t rej;
    dkv_raft_entry_t *es = NULL;

    memset(m, 0, sizeof(*m));
    *entries_buf = NULL;
    r.p = buf;
    r.left = len;
    if (buf == NULL || !rd_need(&r, MSG_FIXED)) {
        return dkv_error_set(DKV_EINVAL, "raft msg: %zu bytes, too short",
                             len);
    }
    if (rd_u8(&r) != MSG_VERSION) {
        return dkv_error_set(DKV_EINVAL, "raft msg: unknown version");
    }
    m->type = rd_u8(&r);
    if (m->type < DKV_RAFT_MSG_PREVOTE
        || m->type > DKV_RAFT_MSG_TIMEOUT_NOW) {
        return dkv_error_set(DKV_EINVAL, "raft msg: unknown type %u",
                             (unsigned)m->type);
    }
    m->from = rd_u32(&r);
    m->to = rd_u32(&r);
    m->term = rd_u64(&r);
    m->log_term = rd_u64(&r);
    m->index = rd_u64(&r);
    m->commit = rd_u64(&r);
    m->context = rd_u64(&r);
    rej = rd_u8(&r);
    if (rej > 1) {
        return dkv_error_set(DKV_EINVAL, "raft msg: bad reject flag");
    }
    m->reject = rej;
    m->reject_hint = rd_u64(&r);
    n = rd_u32(&r);
    if (n > 0 && m->type != DKV_RAFT_MSG_APPEND) {
        return dkv_error_set(DKV_EINVAL, "raft msg: entries in a message "
                             "of type %u", (unsigned)m->type);
    }
    if (n > r.left / MSG_ENTRY_FIXED) {
        return dkv_error_set(DKV_EINVAL, "raft msg: %u entries cannot fit "
                             "in %zu bytes", (unsigned)n, r.left);
    }
    if (n > 0) {
        es = dkv_malloc((size_t)n * sizeof(*es));
        if (es == NULL) {
            return APR_ENOMEM;
        }
    }
    for (k = 0; k < n; k++) {
        dkv_raft_entry_t *e = &es[k];
        if (!rd_need(&r, MSG_ENTRY_FIXED)) {
            goto bad;
        }
        e->term = rd_u64(&r);
        e->type = rd_u8(&r);
        e->len = rd_u32(&r);
        e->index = m->index + 1 + k;
        if (e->type > DKV_RAFT_ENTRY_CONF || !rd_need(&r, e->len)) {
            goto bad;
        }
        e->data = e->len ? (unsigned char *)(uintptr_t)r.p : NULL;
        r.p += e->len;
        r.left -= e->len;
    }
    if (m->type == DKV_RAFT_MSG_SNAPSHOT) {
        if (!rd_need(&r, 16)) {
            goto bad;
        }
        m->snapshot.index = rd_u64(&r);
        m->snapshot.term = rd_u64(&r);
        if (!conf_get(&r, &m->snapshot.conf)) {
            goto bad;
        }
    }
    if (r.left != 0) {
        goto bad;
    }
    m->entries = es;
    m->nentries = n;
    *entries_buf = es;
    return DKV_OK;

bad:
    dkv_free(es);
    memset(m, 0, sizeof(*m));
    return dkv_error_set(DKV_EINVAL, "raft msg: malformed (%zu bytes)",
                         len);
}

/* ----------------------------------------------------------- entries */

dkv_status_t
dkv_raft_entry_encode(unsigned char **out, size_t *len,
                      const dkv_raft_entry_t *e)
{
    unsigned char *buf;

    *out = NULL;
    *len = 0;
    if (e->len > 0 && e->data == NULL) {
        return dkv_error_set(DKV_EINVAL, "raft entry: data missing");
    }
    buf = dkv_malloc(10 + e->len);
    if (buf == NULL) {
        return APR_ENOMEM;
    }
    buf[0] = ENTRY_VERSION;
    dkv_put_be64(buf + 1, e->term);
    buf[9] = e->type;
    if (e->len > 0) {
        memcpy(buf + 10, e->data, e->len);
    }
    *out = buf;
    *len = 10 + e->len;
    return DKV_OK;
}

dkv_status_t
dkv_raft_entry_decode(dkv_raft_entry_t *e, uint64_t index,
                      const unsigned char *buf, size_t len)
{
    memset(e, 0, sizeof(*e));
    if (buf == NULL || len < 10 || buf[0] != ENTRY_VERSION
        || buf[9] > DKV_RAFT_ENTRY_CONF) {
        return dkv_error_set(DKV_EINVAL, "raft entry %llu: malformed",
                             (unsigned long long)index);
    }
    e->index = index;
    e->term = dkv_get_be64(buf + 1);
    e->type = buf[9];
    e->len = len - 10;
    e->data = e->len ? (unsigned char *)(uintptr_t)(buf + 10) : NULL;
    return DKV_OK;
}

/* -------------------------------------------------------- hard state */

dkv_status_t
dkv_raft_hard_state_encode(unsigned char out[20],
                           const dkv_raft_hard_state_t *hs)
{
    dkv_put_be64(out, hs->term);
    dkv_put_be32(out + 8, hs->vote);
    dkv_put_be64(out + 12, hs->commit);
    return DKV_OK;
}

dkv_status_t
dkv_raft_hard_state_decode(dkv_raft_hard_state_t *hs,
                           const unsigned char *buf, size_t len)
{
    if (buf == NULL || len != 20) {
        return dkv_error_set(DKV_EINVAL, "raft hard state: %zu bytes, "
                             "want 20", len);
    }
    hs->term = dkv_get_be64(buf);
    hs->vote = dkv_get_be32(buf + 8);
    hs->commit = dkv_get_be64(buf + 12);
    return DKV_OK;
}

/* ---------------------------------------------------- snapshot meta */

dkv_status_t
dkv_raft_snapshot_meta_encode(unsigned char **out, size_t *len,
                              const dkv_raft_snapshot_meta_t *m)
{
    size_t size;
    unsigned char *buf, *p;

    *out = NULL;
    *len = 0;
    if (!conf_ok(&m->conf)) {
        return dkv_error_set(DKV_EINVAL, "raft snapshot meta: bad "
                             "membership");
    }
    size = 1 + 16 + conf_size(&m->conf);
    buf = dkv_malloc(size);
    if (buf == NULL) {
        return APR_ENOMEM;
    }
    buf[0] = META_VERSION;
    dkv_put_be64(buf + 1, m->index);
    dkv_put_be64(buf + 9, m->term);
    p = conf_put(buf + 17, &m->conf);
    *out = buf;
    *len = (size_t)(p - buf);
    return DKV_OK;
}

dkv_status_t
dkv_raft_snapshot_meta_decode(dkv_raft_snapshot_meta_t *m,
                              const unsigned char *buf, size_t len)
{
    rd_t r;

    memset(m, 0, sizeof(*m));
    r.p = buf;
    r.left = len;
    if (buf == NULL || !rd_need(&r, 17) || rd_u8(&r) != META_VERSION) {
        return dkv_error_set(DKV_EINVAL, "raft snapshot meta: malformed");
    }
    m->index = rd_u64(&r);
    m->term = rd_u64(&r);
    if (!conf_get(&r, &m->conf) || r.left != 0) {
        memset(m, 0, sizeof(*m));
        return dkv_error_set(DKV_EINVAL, "raft snapshot meta: malformed");
    }
    return DKV_OK;
}

/* ---------------------------------------------------- conf changes */

dkv_status_t
dkv_raft_conf_change_encode(unsigned char out[5],
                            const dkv_raft_conf_change_t *cc)
{
    if (cc->type < DKV_RAFT_ADD_LEARNER || cc->type > DKV_RAFT_REMOVE
        || cc->node == 0) {
        return dkv_error_set(DKV_EINVAL, "raft conf change: bad type or "
                             "node");
    }
    out[0] = cc->type;
    dkv_put_be32(out + 1, cc->node);
    return DKV_OK;
}

dkv_status_t
dkv_raft_conf_change_decode(dkv_raft_conf_change_t *cc,
                            const unsigned char *buf, size_t len)
{
    if (buf == NULL || len != 5 || buf[0] < DKV_RAFT_ADD_LEARNER
        || buf[0] > DKV_RAFT_REMOVE || dkv_get_be32(buf + 1) == 0) {
        return dkv_error_set(DKV_EINVAL, "raft conf change: malformed");
    }
    cc->type = buf[0];
    cc->node = dkv_get_be32(buf + 1);
    return DKV_OK;
}
