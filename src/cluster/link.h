/* link.h -- being written. */
#ifndef DKV_CLUSTER_LINK_H
#define DKV_CLUSTER_LINK_H
#endif
