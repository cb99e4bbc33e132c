/* replica.h -- being written. */
#ifndef DKV_NODE_REPLICA_H
#define DKV_NODE_REPLICA_H
#endif
