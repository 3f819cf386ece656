/* iter.c -- broadcasting and strided iteration shared by elementwise ops.
 *
 * An op describes its operands as (shape, strides) with stride 0 on
 * broadcast dims; nn_iter merges dims that are contiguous for every operand
 * so the innermost loop is as long as possible, then walks linear ranges so
 * threads can split the work at any element. */
#include "internal.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int nn_broadcast_shape(const nn_tensor *a, const nn_tensor *b, int64_t *out) {
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int ia = a->ndim - n + i, ib = b->ndim - n + i;
        int64_t sa = ia >= 0 ? a->shape[ia] : 1;
        int64_t sb = ib >= 0 ? b->shape[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1) return -1;
        out[i] = sa == 1 ? sb : sa;
    }
    return n;
}

void nn_broadcast_strides(const nn_tensor *t, int ndim, const int64_t *shape,
                          int64_t *stride) {
    for (int i = 0; i < ndim; i++) {
        int it = t->ndim - ndim + i;
        stride[i] = (it < 0 || t->shape[it] != shape[i]) ? 0 : t->stride[it];
    }
}

void nn_iter_init(nn_iter *it, int ndim, const int64_t *shape, int nops,
                  const int64_t *const *strides) {
    it->nops = nops;
    it->ndim = 0;
    /* drop size-1 dims, then merge dim i into the previous kept one when
     * every operand steps through both as one run */
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1) continue;
        int k = it->ndim;
        if (k > 0) {
            bool merge = true;
            for (int o = 0; o < nops; o++)
                if (it->stride[o][k - 1] != strides[o][d] * shape[d])
                    merge = false;
            if (merge) {
                it->shape[k - 1] *= shape[d];
                for (int o = 0; o < nops; o++)
                    it->stride[o][k - 1] = strides[o][d];
                continue;
            }
        }
        it->shape[k] = shape[d];
        for (int o = 0; o < nops; o++) it->stride[o][k] = strides[o][d];
        it->ndim++;
    }
    if (it->ndim == 0) { /* a single element */
        it->ndim = 1;
        it->shape[0] = nn_shape_numel(ndim, shape);
        for (int o = 0; o < nops; o++) it->stride[o][0] = 0;
    }
}

void nn_iter_pair(nn_iter *it, const nn_tensor *dst, const nn_tensor *src) {
    int64_t ss[NN_MAX_DIMS];
    nn_broadcast_strides(src, dst->ndim, dst->shape, ss);
    const int64_t *strides[2] = {dst->stride, ss};
    nn_iter_init(it, dst->ndim, dst->shape, 2, strides);
}

void nn_iter_range(const nn_iter *it, int64_t begin, int64_t end,
                   nn_row_fn row, void *ctx) {
    if (begin >= end) return; /* also an empty shape: no dim to divide by */
    int nd = it->ndim, last = nd - 1;
    int64_t idx[NN_MAX_DIMS], off[NN_ITER_MAX] = {0}, inner[NN_ITER_MAX];
    int64_t rem = begin;
    for (int d = last; d >= 0; d--) {
        idx[d] = rem % it->shape[d];
        rem /= it->shape[d];
    }
    for (int o = 0; o < it->nops; o++) {
        inner[o] = it->stride[o][last];
        for (int d = 0; d < nd; d++) off[o] += idx[d] * it->stride[o][d];
    }
    int64_t pos = begin;
    while (pos < end) {
        int64_t n = it->shape[last] - idx[last];
        if (n > end - pos) n = end - pos;
        row(ctx, n, off, inner);
        pos += n;
        if (pos >= end) break;
        /* advance the multi-index by n along the innermost dim, carrying */
        idx[last] += n;
        for (int o = 0; o < it->nops; o++) off[o] += n * inner[o];
        for (int d = last; d > 0 && idx[d] == it->shape[d]; d--) {
            idx[d] = 0;
            idx[d - 1]++;
            for (int o = 0; o < it->nops; o++)
                off[o] += it->stride[o][d - 1] - it->shape[d] * it->stride[o][d];
        }
    }
}

void nn_iter_run(const nn_iter *it, nn_row_fn row, void *ctx) {
    int64_t total = nn_shape_numel(it->ndim, it->shape);
    if (total == 0) return;
#ifdef _OPENMP
    if (total >= 2 * NN_PAR_GRAIN && omp_get_max_threads() > 1) {
#pragma omp parallel
        {
            int nt = omp_get_num_threads(), id = omp_get_thread_num();
            int64_t chunk = (total + nt - 1) / nt;
            int64_t b = id * chunk, e = b + chunk < total ? b + chunk : total;
            if (b < e) nn_iter_range(it, b, e, row, ctx);
        }
        return;
    }
#endif
    nn_iter_range(it, 0, total, row, ctx);
}
