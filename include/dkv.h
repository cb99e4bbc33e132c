/*
 * dkv.h -- the dkv client API: one header for everything.
 *
 *   dkv/common.h   version, status codes, dkv_strerror()
 *   dkv/client.h   open/close, put/get/delete, bulk, batch, clear, scan
 *   dkv/coord.h    counters, leases, locks
 *   dkv/watch.h    watches on keys and prefixes
 *   dkv/txn.h      optimistic transactions
 *   dkv/search.h   search by entity and labels
 */
#ifndef DKV_H
#define DKV_H

#include "dkv/common.h"
#include "dkv/client.h"
#include "dkv/coord.h"
#include "dkv/watch.h"
#include "dkv/txn.h"
#include "dkv/search.h"

#endif /* DKV_H */
