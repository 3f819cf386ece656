/* alloc.c -- tensor memory: a size-class cache for large blocks.
 *
 * A training step allocates and frees the same large temporaries every
 * iteration. glibc serves blocks above its mmap threshold with fresh
 * mmap()s and returns them with munmap(), so every step would page-fault
 * its working set in again. Freed blocks of 64 KiB and more are kept here
 * by size class (4 classes per power of two, at most 25% slack) and handed
 * out again (a request may take a block up to 2x its size). The cache keeps
 * at most the larger of 1 GiB and the peak of large blocks in use at once,
 * so a training step whose temporaries vary in shape (batches of
 * sentences) finds its whole working set here after the first steps, and
 * the process holds at most about twice that peak. A block that waits
 * through IDLE_FREES releases of large blocks without being handed out again
 * is given back: after a passing peak (decoding one huge picture while
 * loading data) the training loop that follows would never reuse those
 * blocks, and they would stay resident. Small blocks go straight to malloc,
 * which recycles them well. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#define SMALL ((size_t)64 << 10)
#define NN_CACHE_MIN ((size_t)1 << 30)
#define BORROW 3
#define CLASSES 256
#define PER_CLASS 64
#define IDLE_FREES 4096 /* a training step releases a few hundred large blocks */
#define IDLE_SWEEP 64   /* look for idle blocks once per this many releases */

static struct {
    pthread_mutex_t lock;
    void *blocks[CLASSES][PER_CLASS];
    int count[CLASSES];
    size_t cached, in_use, peak; /* large blocks: kept here, handed out, most handed out */
    uint64_t clock;              /* counts frees, to find the block cached longest ago */
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

/* The 32 bytes before the data tell nn_free the block's class and size.
 * Blocks of SMALL bytes and more start 64 bytes before their data (which
 * stays 64-byte aligned): class >= 0 is cached, LARGE not. Smaller blocks
 * come from plain malloc with the header in front (16-byte aligned data):
 * aligned_alloc takes glibc's slow memalign path, and one-element tensors
 * are the common case for scalars. */
typedef struct { int cls; size_t bytes; uint64_t freed; } header; /* freed: when it was cached */
#define HEADER 64
#define SMALL_HEADER 32
#define LARGE (-1)
#define SMALL_BLOCK (-2)
_Static_assert(sizeof(header) <= SMALL_HEADER, "the header fits before the data");

static header *header_of(void *data) { return (header *)((char *)data - SMALL_HEADER); }
static header *block_header(void *block) { return header_of((char *)block + HEADER); }

/* no machine this runs on holds a 1 TiB tensor: refuse such a request
 * before the allocator (and the sanitizers) see it */
#define MAX_BLOCK ((size_t)1 << 40)

void *nn_alloc(size_t bytes) {
    if (bytes > MAX_BLOCK) return NULL;
    if (bytes < SMALL) {
        char *q = malloc(bytes + SMALL_HEADER);
        if (!q) return NULL;
        *(header *)q = (header){SMALL_BLOCK, bytes, 0};
        return q + SMALL_HEADER;
    }
    size_t rounded = ((bytes + 63) & ~(size_t)63) + HEADER;
    int c = -1;
    void *p = NULL;
    if ((c = size_class(rounded, &rounded)) < CLASSES) {
        pthread_mutex_lock(&cache.lock);
        /* this class, or one of the next BORROW (at most 2x the size: shapes
         * that vary from step to step, as batches of sentences do, then
         * still find blocks); the header keeps the block's own class */
        for (int k = c; k <= c + BORROW && k < CLASSES && !p; k++)
            if (cache.count[k] > 0) {
                p = cache.blocks[k][--cache.count[k]];
                c = k;
                rounded = block_header(p)->bytes;
                cache.cached -= rounded;
            }
        cache.in_use += rounded;
        if (cache.in_use > cache.peak) cache.peak = cache.in_use;
        pthread_mutex_unlock(&cache.lock);
    } else {
        c = LARGE;
    }
    if (!p && !(p = aligned_alloc(64, rounded))) {
        if (c >= 0) {
            pthread_mutex_lock(&cache.lock);
            cache.in_use -= rounded;
            pthread_mutex_unlock(&cache.lock);
        }
        return NULL;
    }
    *header_of((char *)p + HEADER) = (header){c, rounded, 0};
    return (char *)p + HEADER;
}

/* frees the cached block that waited longest (the bottom of its class's
 * stack: classes hand out their newest first); under the lock; 0 if none */
static int evict_oldest(void) {
    int best = -1;
    uint64_t when = UINT64_MAX;
    for (int c = 0; c < CLASSES; c++)
        if (cache.count[c] > 0 && block_header(cache.blocks[c][0])->freed < when) {
            when = block_header(cache.blocks[c][0])->freed;
            best = c;
        }
    if (best < 0) return 0;
    void *p = cache.blocks[best][0];
    memmove(&cache.blocks[best][0], &cache.blocks[best][1],
            (size_t)(--cache.count[best]) * sizeof(void *));
    cache.cached -= block_header(p)->bytes;
    free(p);
    return 1;
}

/* gives back every cached block freed more than IDLE_FREES releases ago
 * (the bottoms of the class stacks are their oldest); under the lock */
static void release_idle(void) {
    for (int c = 0; c < CLASSES; c++) {
        int n = 0;
        while (n < cache.count[c] && block_header(cache.blocks[c][n])->freed + IDLE_FREES < cache.clock) {
            cache.cached -= block_header(cache.blocks[c][n])->bytes;
            free(cache.blocks[c][n++]);
        }
        if (n) {
            cache.count[c] -= n;
            memmove(&cache.blocks[c][0], &cache.blocks[c][n], (size_t)cache.count[c] * sizeof(void *));
        }
    }
}

void nn_free(void *ptr) {
    if (!ptr) return;
    header h = *header_of(ptr);
    if (h.cls == SMALL_BLOCK) {
        free((char *)ptr - SMALL_HEADER);
        return;
    }
    char *p = (char *)ptr - HEADER;
    if (h.cls >= 0) {
        pthread_mutex_lock(&cache.lock);
        cache.in_use -= h.bytes;
        size_t cap = cache.peak > NN_CACHE_MIN ? cache.peak : NN_CACHE_MIN;
        /* room for it: let go of the blocks cached longest ago (shapes the
         * program no longer uses), never of the ones it just freed */
        while (cache.cached + h.bytes > cap && evict_oldest()) {}
        if (cache.count[h.cls] < PER_CLASS && cache.cached + h.bytes <= cap) {
            block_header(p)->freed = ++cache.clock;
            cache.blocks[h.cls][cache.count[h.cls]++] = p;
            cache.cached += h.bytes;
            p = NULL;
        }
        if (cache.clock % IDLE_SWEEP == 0) release_idle();
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
#ifdef __GLIBC__
    /* blocks glibc placed in its heap (its mmap threshold grows after
     * frees) stay resident after free(); hand the free pages back too */
    malloc_trim(0);
#endif
}
