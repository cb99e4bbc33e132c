/*
 * service-int.h -- what the request service shows its tests (and the
 * node's status output) beyond service.h: counters of its work.
 */
#ifndef DKV_NODE_SERVICE_INT_H
#define DKV_NODE_SERVICE_INT_H

#include "node/service.h"

typedef struct dkv_service_stats {
    uint64_t commits;       /* write contexts committed (syncs) */
    uint64_t writes;        /* write requests answered after a commit */
    uint64_t largest;       /* most write requests in one commit */
    uint64_t reads;         /* read requests answered */
    uint64_t watches;       /* live watches */
    uint64_t dropped;       /* watches ended for a slow consumer */
    uint64_t expired;       /* keys removed by TTL and lease expiry */
} dkv_service_stats_t;

/* Fills *STATS with SERVICE's counters so far.  Thread-safe. */
void dkv_service_stats(dkv_service_stats_t *stats, dkv_service_t *service);

#endif /* DKV_NODE_SERVICE_INT_H */
