/* alloc.c -- tensor memory: a size-class cache for large blocks.
 *
 * A training step allocates and frees the same large temporaries every
 * iteration. glibc serves blocks above its mmap threshold with fresh
 * mmap()s and returns them with munmap(), so every step would page-fault
 * its working set in again. Freed blocks of 64 KiB and more are kept here
 * by size class (4 classes per power of two, at most 25% slack) and handed
 * out again; at most NN_CACHE_MAX bytes are kept. Small blocks go straight
 * to malloc, which recycles them well. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

#define SMALL ((size_t)64 << 10)
#define NN_CACHE_MAX ((size_t)1 << 30)
#define CLASSES 256
#define PER_CLASS 64

static struct {
    pthread_mutex_t lock;
    void *blocks[CLASSES][PER_CLASS];
    int count[CLASSES];
    size_t cached;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* class index and rounded size: 2^e * (4 + q) / 4 for q in 0..3 */
static int size_class(size_t bytes, size_t *rounded) {
    int e = 63 - __builtin_clzll((unsigned long long)bytes);
    for (int q = 0; q < 4; q++) {
        size_t sz = ((size_t)1 << e) / 4 * (size_t)(4 + q);
        if (e < 2) sz = (size_t)1 << e;
        if (sz >= bytes) {
            *rounded = sz;
            return e * 4 + q;
        }
    }
    *rounded = (size_t)1 << (e + 1);
    return (e + 1) * 4;
}

/* Every block starts with a 64-byte header (keeping data 64-byte
 * aligned) that tells nn_free its class and size; class -1: not cached. */
typedef struct { int cls; size_t bytes; } header;
#define HEADER 64

/* no machine this runs on holds a 1 TiB tensor: refuse such a request
 * before the allocator (and the sanitizers) see it */
#define MAX_BLOCK ((size_t)1 << 40)

void *nn_alloc(size_t bytes) {
    if (bytes > MAX_BLOCK) return NULL;
    size_t rounded = ((bytes + 63) & ~(size_t)63) + HEADER;
    int c = -1;
    void *p = NULL;
    if (bytes >= SMALL && (c = size_class(rounded, &rounded)) < CLASSES) {
        pthread_mutex_lock(&cache.lock);
        if (cache.count[c] > 0) {
            p = cache.blocks[c][--cache.count[c]];
            cache.cached -= rounded;
        }
        pthread_mutex_unlock(&cache.lock);
    } else {
        c = -1;
    }
    if (!p && !(p = aligned_alloc(64, rounded))) return NULL;
    *(header *)p = (header){c, rounded};
    return (char *)p + HEADER;
}

void nn_free(void *ptr) {
    if (!ptr) return;
    char *p = (char *)ptr - HEADER;
    header h = *(header *)p;
    if (h.cls >= 0) {
        pthread_mutex_lock(&cache.lock);
        if (cache.count[h.cls] < PER_CLASS && cache.cached + h.bytes <= NN_CACHE_MAX) {
            cache.blocks[h.cls][cache.count[h.cls]++] = p;
            cache.cached += h.bytes;
            p = NULL;
        }
        pthread_mutex_unlock(&cache.lock);
    }
    free(p);
}

size_t nn_cached_bytes(void) {
    pthread_mutex_lock(&cache.lock);
    size_t n = cache.cached;
    pthread_mutex_unlock(&cache.lock);
    return n;
}

void nn_empty_cache(void) {
    pthread_mutex_lock(&cache.lock);
    for (int c = 0; c < CLASSES; c++)
        while (cache.count[c] > 0) free(cache.blocks[c][--cache.count[c]]);
    cache.cached = 0;
    pthread_mutex_unlock(&cache.lock);
}
