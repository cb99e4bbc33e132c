/*
 * alloc.h -- dkv's heap allocator wrappers, the only place the C library's
 * malloc family is called (scripts/checksrc.sh enforces it).
 *
 * Most memory lives in APR pools; these are for objects whose lifetime no
 * pool matches (watches, event batches queued between threads).  In the
 * library they return NULL on exhaustion and the caller reports APR_ENOMEM;
 * daemons may wrap them to abort instead.
 */
#ifndef DKV_COMMON_ALLOC_H
#define DKV_COMMON_ALLOC_H

#include <stddef.h>

/* As malloc(3): SIZE bytes, uninitialized, or NULL.  SIZE 0 gives a
 * unique pointer (never NULL unless out of memory). */
void *dkv_malloc(size_t size);

/* As calloc(3): N * SIZE zeroed bytes, or NULL (also on overflow). */
void *dkv_calloc(size_t n, size_t size);

/* As realloc(3): on failure PTR is untouched and NULL returned. */
void *dkv_realloc(void *ptr, size_t size);

/* Frees what the functions above returned.  NULL does nothing. */
void dkv_free(void *ptr);

/* A heap copy of S (free with dkv_free), or NULL when out of memory or
 * when S is NULL. */
char *dkv_strdup(const char *s);

/* APR_ARRAY_IDX without the alignment warning: an APR array's elements
 * come from a pool, aligned for any type, but its elts is a char *, so the
 * cast goes through void * to say so to -Wcast-align. */
#define DKV_ARRAY_IDX(ary, i, type) (((type *)(void *)(ary)->elts)[i])

#endif /* DKV_COMMON_ALLOC_H */
