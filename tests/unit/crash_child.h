/*
 * crash_child.h -- what crash_child.c and test_crash.c agree on: the
 * number of keys per round and the formats of keys and values.
 */
#ifndef DKV_CRASH_CHILD_H
#define DKV_CRASH_CHILD_H

/* Keys written per round, in one dkv_put_many() or one transaction. */
#define CRASH_ROUND_KEYS 2000

/* Key of key I of round R (long, int): "b000012:0042". */
#define CRASH_KEY_FMT "b%06ld:%04d"
/* The prefix of every key of round R (long). */
#define CRASH_PREFIX_FMT "b%06ld:"
/* Value of key I of round R: names both, padded to about 120 bytes. */
#define CRASH_VALUE_FMT "r%06ld:%04d:%0100d"

#endif /* DKV_CRASH_CHILD_H */
