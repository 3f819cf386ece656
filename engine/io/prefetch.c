/* prefetch.c -- batches assembled by a background thread while the current
 * one trains.
 *
 * The worker copies the rows of each batch (in a given order) out of the
 * source tensors into fresh tensors and, for image batches, can augment
 * them: a random horizontal flip and a random shift by up to `shift`
 * pixels (zeros come in). Randomness is Philox keyed by (seed, offset +
 * position in the epoch), so batches are the same whether or not they
 * were prefetched. Up to `depth` batches wait in a ring; the worker sleeps
 * when it is full. depth 0 starts no thread: next() builds each batch on
 * demand, with the same work and results (the baseline to compare with). The worker only reads the sources (the caller keeps
 * them alive and unchanged) and only creates tensors it hands over. */
#include "internal.h"
#include "nn_io.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SOURCES 8
#define MAX_DEPTH 8

struct nn_prefetch {
    nn_tensor *src[MAX_SOURCES];
    int nsrc;
    int64_t *order, count, batch, nbatches, base;
    int flip, shift, augment_src;       /* augment src[augment_src] (N, C, H, W) */
    uint64_t seed, offset;
    nn_tensor *ring[MAX_DEPTH][MAX_SOURCES];
    int depth, head, tail, filled;     /* ring positions and occupancy */
    int64_t produced;
    int stop, failed, started;
    char error[256];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
};

static void augment_image(const nn_prefetch *p, float *img, int64_t c, int64_t h, int64_t w,
                          uint64_t counter, float *tmp) {
    uint32_t r[4];
    nn_philox(p->seed, counter, r);
    int flip = p->flip && (r[0] & 1);
    int dy = p->shift ? (int)(r[1] % (uint32_t)(2 * p->shift + 1)) - p->shift : 0;
    int dx = p->shift ? (int)(r[2] % (uint32_t)(2 * p->shift + 1)) - p->shift : 0;
    if (!flip && !dy && !dx) return;
    for (int64_t ch = 0; ch < c; ch++) {
        float *plane = img + ch * h * w;
        memcpy(tmp, plane, (size_t)(h * w) * sizeof *tmp);
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                int64_t sy = y - dy, sx0 = x - dx, sx = flip ? w - 1 - sx0 : sx0;
                plane[y * w + x] = (sy >= 0 && sy < h && sx0 >= 0 && sx0 < w) ? tmp[sy * w + sx] : 0.0f;
            }
    }
}

/* builds batch b into out[]; 0 or -1 with p->error set */
static int build(nn_prefetch *p, int64_t b, nn_tensor **out) {
    int64_t start = b * p->batch, len = p->count - start < p->batch ? p->count - start : p->batch;
    float *tmp = NULL;
    for (int s = 0; s < p->nsrc; s++) {
        const nn_tensor *src = p->src[s];
        int64_t shape[NN_MAX_DIMS];
        memcpy(shape, src->shape, sizeof shape);
        shape[0] = len;
        out[s] = nn_empty(src->dtype, src->ndim, shape);
        if (!out[s]) goto fail;
        size_t row = (size_t)nn_row_numel(src) *
                     nn_dtype_size(src->dtype);
        for (int64_t i = 0; i < len; i++)
            memcpy((char *)nn_data(out[s]) + i * row,
                   (const char *)nn_data(src) + (p->order[start + i] - p->base) * row, row);
        if (s == p->augment_src && (p->flip || p->shift)) {
            int64_t c = src->shape[1], h = src->shape[2], w = src->shape[3];
            if (!tmp && !(tmp = malloc((size_t)(h * w) * sizeof *tmp))) goto fail;
            for (int64_t i = 0; i < len; i++)
                augment_image(p, (float *)nn_data(out[s]) + i * c * h * w, c, h, w,
                              p->offset + (uint64_t)(start + i), tmp);
        }
    }
    free(tmp);
    return 0;
fail:
    free(tmp);
    for (int s = 0; s < p->nsrc; s++) { nn_release(out[s]); out[s] = NULL; }
    snprintf(p->error, sizeof p->error, "prefetch: %s", nn_last_error());
    return -1;
}

static void *worker(void *arg) {
    nn_prefetch *p = arg;
    for (int64_t b = 0; b < p->nbatches; b++) {
        nn_tensor *out[MAX_SOURCES] = {0};
        int rc = build(p, b, out);
        pthread_mutex_lock(&p->lock);
        while (!p->stop && p->filled == p->depth) pthread_cond_wait(&p->changed, &p->lock);
        if (p->stop || rc < 0) {
            if (rc < 0) p->failed = 1;
            pthread_cond_broadcast(&p->changed);
            pthread_mutex_unlock(&p->lock);
            for (int s = 0; s < p->nsrc; s++) nn_release(out[s]);
            return NULL;
        }
        memcpy(p->ring[p->tail], out, sizeof out);
        p->tail = (p->tail + 1) % p->depth;
        p->filled++;
        p->produced++;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

nn_prefetch *nn_prefetch_start(nn_tensor *const *src, int nsrc, const nn_tensor *order,
                               int64_t base, int64_t batch, int drop_last, int depth,
                               const nn_prefetch_augment *aug, nn_rng *rng) {
    if (nsrc < 1 || nsrc > MAX_SOURCES) return nn_fail(1, "prefetch takes 1 to %d tensors", MAX_SOURCES);
    if (batch < 1) return nn_fail(4, "batch size must be >= 1");
    if (depth < 0 || depth > MAX_DEPTH) return nn_fail(6, "prefetch depth must be 0..%d", MAX_DEPTH);
    int64_t n = src[0]->ndim ? src[0]->shape[0] : 0;
    for (int s = 0; s < nsrc; s++)
        if (!src[s]->ndim || src[s]->shape[0] != n || !nn_is_contiguous(src[s]))
            return nn_fail(1, "prefetch: tensor %d must be contiguous with %lld rows", s + 1,
                           (long long)n);
    if (order->dtype != NN_I64 || order->ndim != 1)
        return nn_fail(2, "prefetch: the order must be a 1-D i64 tensor");
    nn_prefetch *p = calloc(1, sizeof *p);
    if (!p) return nn_fail(0, "out of memory");
    p->count = order->shape[0];
    p->order = malloc((size_t)(p->count ? p->count : 1) * sizeof *p->order);
    if (!p->order) { free(p); return nn_fail(0, "out of memory"); }
    for (int64_t i = 0; i < p->count; i++) {
        int64_t v = nn_double_to_i64(nn_get(order, &i));
        if (v < base || v >= n + base) {
            free(p->order);
            free(p);
            return nn_fail(2, "prefetch: index %lld out of range [%lld, %lld]", (long long)v,
                           (long long)base, (long long)(n + base - 1));
        }
        p->order[i] = v;
    }
    for (int s = 0; s < nsrc; s++) p->src[s] = nn_retain(src[s]);
    p->nsrc = nsrc;
    p->base = base;
    p->batch = batch;
    p->nbatches = drop_last ? p->count / batch : (p->count + batch - 1) / batch;
    p->depth = depth;
    p->augment_src = -1;
    if (aug && (aug->flip || aug->shift)) {
        int s = aug->source;
        if (s < 0 || s >= nsrc || src[s]->ndim != 4 || src[s]->dtype != NN_F32) {
            nn_prefetch_stop(p);
            return nn_fail(7, "prefetch: augmentation needs an f32 (N, C, H, W) tensor");
        }
        p->augment_src = s;
        p->flip = aug->flip;
        p->shift = aug->shift;
        p->seed = rng->seed;
        p->offset = rng->offset;
        rng->offset += (uint64_t)p->count;
    }
    if (depth == 0) return p; /* on demand: no thread */
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    if (pthread_create(&p->thread, NULL, worker, p) != 0) {
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->changed);
        for (int s = 0; s < nsrc; s++) nn_release(p->src[s]);
        free(p->order);
        free(p);
        return nn_fail(0, "prefetch: cannot start a thread");
    }
    p->started = 1;
    return p;
}

int nn_prefetch_next(nn_prefetch *p, nn_tensor **out) {
    if (p->depth == 0) { /* on demand, in the caller's thread */
        if (p->produced == p->nbatches) return 0;
        if (build(p, p->produced, out) < 0) return nn_failed(0, "%s", p->error);
        p->produced++;
        return 1;
    }
    pthread_mutex_lock(&p->lock);
    while (!p->filled && !p->failed && p->produced < p->nbatches)
        pthread_cond_wait(&p->changed, &p->lock);
    int rc;
    if (p->filled) {
        memcpy(out, p->ring[p->head], (size_t)p->nsrc * sizeof *out);
        memset(p->ring[p->head], 0, sizeof p->ring[p->head]);
        p->head = (p->head + 1) % p->depth;
        p->filled--;
        pthread_cond_broadcast(&p->changed);
        rc = 1;
    } else if (p->failed) {
        rc = nn_failed(0, "%s", p->error);
    } else {
        rc = 0; /* every batch delivered */
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int64_t nn_prefetch_batches(const nn_prefetch *p) { return p->nbatches; }

void nn_prefetch_stop(nn_prefetch *p) {
    if (!p) return;
    if (p->started) {
        pthread_mutex_lock(&p->lock);
        p->stop = 1;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->changed);
    }
    for (int i = 0; i < MAX_DEPTH; i++)
        for (int s = 0; s < MAX_SOURCES; s++) nn_release(p->ring[i][s]);
    for (int s = 0; s < p->nsrc; s++) nn_release(p->src[s]);
    free(p->order);
    free(p);
}
