/*
 * watch.h -- dkv-node's watch hub: the watches of every connection, and
 * the encoding of their events into EVENT frames.
 *
 * The hub belongs to the service's writer thread: every function below is
 * called from it only (registration between commits, delivery after each
 * commit, cancellation, connection close and shutdown are all queued to
 * it), so the hub takes no lock and a watch's events leave in revision
 * order, after its WATCH response.
 */
#ifndef DKV_NODE_WATCH_H
#define DKV_NODE_WATCH_H

#include <apr_pools.h>

#include "dkv.h"
#include "node/service.h"

/* Most events per EVENT frame, and the size after which a frame is
 * closed and the next one begun. */
#define DKV_HUB_FRAME_EVENTS 512
#define DKV_HUB_FRAME_BYTES (256u * 1024u)

typedef struct dkv_hub dkv_hub_t;

/* Creates an empty hub whose frames go through SEND/BATON.  Memory from
 * POOL (the watches themselves from dkv_malloc, freed by
 * dkv_hub_destroy). */
dkv_status_t dkv_hub_create(dkv_hub_t **hub, dkv_service_send_fn *send,
                            void *baton, apr_pool_t *pool);

/* Frees every watch (no event is sent).  NULL does nothing. */
void dkv_hub_destroy(dkv_hub_t *hub);

/* 1 when connection CONN has a live watch named ID. */
int dkv_hub_has(const dkv_hub_t *hub, uint64_t conn, uint64_t id);

/* Registers watch ID of CONN on KEY (PREFIX: every key starting with it)
 * for the live events with revision >= MIN_REV.  Returns DKV_OK or
 * APR_ENOMEM. */
dkv_status_t dkv_hub_add(dkv_hub_t *hub, uint64_t conn, uint64_t id,
                         const void *key, size_t key_len, int prefix,
                         uint64_t min_rev);

/* Sends EVS (N, in revision order) to watch ID of CONN in EVENT frames,
 * the last of them with header flags LAST_FLAGS (0, or
 * DKV_PROTO_EVENT_SNAPSHOT_DONE; with N = 0 that frame is sent empty;
 * with N = 0 and LAST_FLAGS 0 nothing is sent).  When the connection
 * refuses a frame (over its output bound), ends the watch with an
 * EUNAVAILABLE error event (a response-kind frame) and returns 1; else 0.
 * Does not need the watch to be registered. */
int dkv_hub_send(dkv_hub_t *hub, uint64_t conn, uint64_t id,
                 const dkv_event_t *evs, size_t n, unsigned last_flags);

/* Sends an error event with STATUS and REVISION to watch ID of CONN, as a
 * response-kind frame, and removes the watch if registered. */
void dkv_hub_end(dkv_hub_t *hub, uint64_t conn, uint64_t id,
                 dkv_status_t status, uint64_t revision);

/* Delivers a commit's events EVS (N, in revision order) to the matching
 * watches, batched per watch.  SCRATCH is a pool the caller clears. */
void dkv_hub_deliver(dkv_hub_t *hub, const dkv_event_t *evs, size_t n,
                     apr_pool_t *scratch);

/* Removes watch ID of CONN (nothing is sent).  Returns 1 if it existed. */
int dkv_hub_cancel(dkv_hub_t *hub, uint64_t conn, uint64_t id);

/* Removes every watch of CONN (nothing is sent). */
void dkv_hub_conn_closed(dkv_hub_t *hub, uint64_t conn);

/* Ends every watch with an error event STATUS at REVISION. */
void dkv_hub_end_all(dkv_hub_t *hub, dkv_status_t status,
                     uint64_t revision);

/* The number of live watches. */
size_t dkv_hub_count(const dkv_hub_t *hub);

/* The number of watches ended because their connection refused a frame. */
uint64_t dkv_hub_dropped(const dkv_hub_t *hub);

#endif /* DKV_NODE_WATCH_H */
