/* lincheck.h -- being written. */
#ifndef DKV_LINCHECK_H
#define DKV_LINCHECK_H
#endif
