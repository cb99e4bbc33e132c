/*
 * alloc.c -- the malloc wrappers declared in alloc.h: the single place in
 * dkv that calls malloc, calloc, realloc and free directly.
 */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/* See alloc.h. */
void *
dkv_malloc(size_t size)
{
    return malloc(size ? size : 1);
}

/* See alloc.h. */
void *
dkv_calloc(size_t n, size_t size)
{
    if (n == 0 || size == 0) {
        return calloc(1, 1);
    }
    if (n > (size_t)-1 / size) {
        return NULL;
    }
    return calloc(n, size);
}

/* See alloc.h. */
void *
dkv_realloc(void *ptr, size_t size)
{
    return realloc(ptr, size ? size : 1);
}

/* See alloc.h. */
void
dkv_free(void *ptr)
{
    free(ptr);
}

/* See alloc.h. */
char *
dkv_strdup(const char *s)
{
    size_t len;
    char *copy;

    if (s == NULL) {
        return NULL;
    }
    len = strlen(s);
    copy = dkv_malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, s, len + 1);
    }
    return copy;
}
