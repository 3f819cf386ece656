/* rearrange.c -- pad, flip, roll, repeat, repeat_interleave and unfold, each
 * a map from output to input positions handed to nn_remap (remap.c), which
 * copies any dtype and scatters gradients back. */
#include "autograd.h"
#include "nn_ops.h"

#include <stdlib.h>
#include <string.h>

/* per-dim source tables: k arrays of out_tail[d] entries in one block */
static int64_t **tables(int k, const int64_t *out_tail) {
    if (nn_shape_check(2, k, out_tail, sizeof(float)) < 0) return NULL; /* a size that fits */
    size_t total = 0;
    for (int d = 0; d < k; d++) total += (size_t)out_tail[d];
    if (total > ((size_t)1 << 36)) return nn_fail(0, "out of memory"); /* the result would not fit either */
    int64_t **t = malloc(sizeof *t * (size_t)(k ? k : 1) + sizeof **t * (total ? total : 1));
    if (!t) return nn_fail(0, "out of memory");
    int64_t *at = (int64_t *)(t + (k ? k : 1));
    for (int d = 0; d < k; d++) {
        t[d] = at;
        at += out_tail[d];
    }
    return t;
}

static int64_t wrap(int64_t i, int64_t n) { return ((i % n) + n) % n; }

nn_tensor *nn_pad(const nn_tensor *x, int npairs, const int64_t *pads, nn_pad_mode mode,
                  double value) {
    static const char *const names[] = {"pad", "reflection_pad", "replication_pad", "circular_pad"};
    char s1[96];
    if (npairs < 1 || npairs > x->ndim)
        return nn_fail(2, "pad: %d pairs of pads for a %d-dim tensor", npairs, x->ndim);
    if ((unsigned)mode > NN_PAD_CIRCULAR) return nn_fail(3, "pad: unknown mode %d", (int)mode);
    int k = npairs, lead = x->ndim - k;
    int64_t out[NN_MAX_DIMS];
    for (int d = 0; d < k; d++) { /* pads run from the last dim backwards */
        int64_t n = x->shape[lead + d], lo = pads[2 * (k - 1 - d)], hi = pads[2 * (k - 1 - d) + 1];
        out[d] = n + lo + hi;
        if (mode != NN_PAD_CONSTANT && (lo < 0 || hi < 0))
            return nn_fail(2, "%s: pads must be >= 0, got %lld and %lld", names[mode],
                           (long long)lo, (long long)hi);
        if (out[d] < 0)
            return nn_fail(2, "pad: pads %lld and %lld leave dim %d of %s negative", (long long)lo,
                           (long long)hi, lead + d + 1, nn_shape_str(x, s1, 96));
        if ((mode == NN_PAD_REFLECT && (lo >= n || hi >= n)) ||
            (mode != NN_PAD_CONSTANT && n == 0) || (mode == NN_PAD_CIRCULAR && (lo > n || hi > n)))
            return nn_fail(2, "%s: pads %lld and %lld too large for dim %d of size %lld of %s",
                           names[mode], (long long)lo, (long long)hi, lead + d + 1, (long long)n,
                           nn_shape_str(x, s1, 96));
    }
    int64_t **src = tables(k, out);
    if (!src) return NULL;
    for (int d = 0; d < k; d++) {
        int64_t n = x->shape[lead + d], lo = pads[2 * (k - 1 - d)];
        for (int64_t c = 0; c < out[d]; c++) {
            int64_t i = c - lo;
            switch (mode) {
            case NN_PAD_CONSTANT: src[d][c] = i >= 0 && i < n ? i : -1; break;
            case NN_PAD_REFLECT: src[d][c] = i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i; break;
            case NN_PAD_REPLICATE: src[d][c] = i < 0 ? 0 : i >= n ? n - 1 : i; break;
            case NN_PAD_CIRCULAR: src[d][c] = wrap(i, n); break;
            }
        }
    }
    nn_tensor *y = nn_remap_separable(x, k, out, src, value, names[mode]);
    free(src);
    return y;
}

/* identity tables for the dims from `from` to the end */
static int64_t **identity_tables(const nn_tensor *x, int from, int64_t *out) {
    int k = x->ndim - from;
    for (int d = 0; d < k; d++) out[d] = x->shape[from + d];
    int64_t **src = tables(k, out);
    for (int d = 0; src && d < k; d++)
        for (int64_t c = 0; c < out[d]; c++) src[d][c] = c;
    return src;
}

nn_tensor *nn_flip(const nn_tensor *x, int ndims, const int *dims) {
    int from = x->ndim, dd[NN_MAX_DIMS];
    if (x->ndim == 0) return nn_clone(x); /* one element: nothing moves */
    for (int i = 0; i < ndims; i++) {
        if ((dd[i] = nn_wrap_dim(dims[i], x->ndim, 2)) < 0) return NULL;
        from = dd[i] < from ? dd[i] : from;
    }
    if (ndims == 0) return nn_clone(x);
    int64_t out[NN_MAX_DIMS], **src = identity_tables(x, from, out);
    if (!src) return NULL;
    unsigned done = 0;
    for (int i = 0; i < ndims; i++) {
        int d = dd[i] - from;
        if (done & (1u << d)) {
            free(src);
            return nn_fail(2, "flip: dim %d given twice", dims[i] + 1);
        }
        done |= 1u << d;
        for (int64_t c = 0; c < out[d]; c++) src[d][c] = out[d] - 1 - c;
    }
    nn_tensor *y = nn_remap_separable(x, x->ndim - from, out, src, 0, "flip");
    free(src);
    return y;
}

nn_tensor *nn_roll(const nn_tensor *x, int n, const int64_t *shifts, const int *dims) {
    if (!dims) { /* over the flattened tensor, as PyTorch */
        if (n != 1) return nn_fail(2, "roll without dims takes one shift");
        int64_t numel = nn_numel(x);
        nn_tensor *flat = nn_reshape((nn_tensor *)x, 1, &numel);
        nn_tensor *r = flat ? nn_roll(flat, 1, shifts, (int[]){0}) : NULL;
        nn_tensor *y = r ? nn_reshape(r, x->ndim, x->shape) : NULL;
        nn_release(flat);
        nn_release(r);
        return y;
    }
    int from = x->ndim, dd[NN_MAX_DIMS];
    if (x->ndim == 0) return nn_clone(x);
    if (n < 1 || n > x->ndim) return nn_fail(2, "roll: %d shifts for a %d-dim tensor", n, x->ndim);
    for (int i = 0; i < n; i++) {
        if ((dd[i] = nn_wrap_dim(dims[i], x->ndim, 3)) < 0) return NULL;
        from = dd[i] < from ? dd[i] : from;
    }
    int64_t out[NN_MAX_DIMS], **src = identity_tables(x, from, out);
    if (!src) return NULL;
    for (int i = 0; i < n; i++) {
        int d = dd[i] - from;
        int64_t size = out[d];
        for (int64_t c = 0; size && c < size; c++) src[d][c] = wrap(src[d][c] - shifts[i] % size, size);
    }
    nn_tensor *y = nn_remap_separable(x, x->ndim - from, out, src, 0, "roll");
    free(src);
    return y;
}

nn_tensor *nn_repeat(const nn_tensor *x, int n, const int64_t *reps) {
    if (n < x->ndim || n > NN_MAX_DIMS)
        return nn_fail(2, "repeat: %d repeats for a %d-dim tensor (need at least one a dim)", n,
                       x->ndim);
    int64_t shape[NN_MAX_DIMS], out[NN_MAX_DIMS];
    for (int d = 0; d < n; d++) {
        shape[d] = d < n - x->ndim ? 1 : x->shape[d - (n - x->ndim)];
        if (reps[d] < 0) return nn_fail(2, "repeat: repeats must be >= 0, got %lld", (long long)reps[d]);
        out[d] = shape[d] * reps[d];
    }
    nn_tensor *v = nn_reshape((nn_tensor *)x, n, shape);
    int64_t **src = v ? tables(n, out) : NULL;
    nn_tensor *y = NULL;
    if (src) {
        for (int d = 0; d < n; d++)
            for (int64_t c = 0; c < out[d]; c++) src[d][c] = c % shape[d];
        y = nn_remap_separable(v, n, out, src, 0, "repeat");
    }
    free(src);
    nn_release(v);
    return y;
}

nn_tensor *nn_repeat_interleave(const nn_tensor *x, const nn_tensor *repeats, int64_t r,
                                const int *along) {
    char s1[96];
    if (!along || x->ndim == 0) { /* over the flattened tensor */
        int64_t numel = nn_numel(x);
        nn_tensor *flat = nn_reshape((nn_tensor *)x, 1, &numel);
        nn_tensor *y = flat ? nn_repeat_interleave(flat, repeats, r, (int[]){0}) : NULL;
        nn_release(flat);
        return y;
    }
    int dim = nn_wrap_dim(*along, x->ndim, 4);
    if (dim < 0) return NULL;
    int64_t n = x->shape[dim], total = 0;
    nn_tensor *rc = NULL;
    if (repeats) {
        if (repeats->dtype != NN_I64 || repeats->ndim != 1 || repeats->shape[0] != n)
            return nn_fail(2, "repeat_interleave: repeats %s must be i64 (%lld), one per entry of "
                              "dim %d", nn_shape_str(repeats, s1, 96), (long long)n, dim + 1);
        if (!(rc = nn_contiguous((nn_tensor *)repeats))) return NULL;
    } else if (r < 0) {
        return nn_fail(2, "repeat_interleave: repeats must be >= 0, got %lld", (long long)r);
    }
    const int64_t *rv = rc ? nn_i64(rc) : NULL;
    for (int64_t i = 0; i < n; i++) {
        int64_t ri = rv ? rv[i] : r;
        if (ri < 0) {
            nn_release(rc);
            return nn_fail(2, "repeat_interleave: repeats must be >= 0, got %lld", (long long)ri);
        }
        if (ri > INT64_MAX - total) { /* the output's length would overflow */
            nn_release(rc);
            return nn_fail(2, "repeat_interleave: the repeats add up to more than %lld entries",
                           (long long)INT64_MAX);
        }
        total += ri;
    }
    int64_t out[NN_MAX_DIMS];
    for (int d = 0; d < x->ndim - dim; d++) out[d] = d ? x->shape[dim + d] : total;
    int64_t **src = tables(x->ndim - dim, out);
    nn_tensor *y = NULL;
    if (src) {
        for (int d = 1; d < x->ndim - dim; d++)
            for (int64_t c = 0; c < out[d]; c++) src[d][c] = c;
        for (int64_t i = 0, c = 0; i < n; i++)
            for (int64_t j = 0; j < (rv ? rv[i] : r); j++) src[0][c++] = i;
        y = nn_remap_separable(x, x->ndim - dim, out, src, 0, "repeat_interleave");
    }
    free(src);
    nn_release(rc);
    return y;
}

nn_tensor *nn_unfold(const nn_tensor *x, int dim, int64_t size, int64_t step) {
    char s1[96];
    if (x->ndim == 0) return nn_fail(1, "unfold of a 0-dim tensor");
    if ((dim = nn_wrap_dim(dim, x->ndim, 2)) < 0) return NULL;
    int64_t n = x->shape[dim];
    if (size < 0 || size > n || step < 1)
        return nn_fail(3, "unfold: size %lld (dim %d of %s) and step %lld: need 0 <= size <= %lld, "
                          "step >= 1", (long long)size, dim + 1, nn_shape_str(x, s1, 96),
                       (long long)step, (long long)n);
    int k = x->ndim - dim;
    int64_t tail[NN_MAX_DIMS], in_stride[NN_MAX_DIMS], plane = 1;
    for (int d = k - 1; d >= 0; d--) {
        in_stride[d] = plane;
        plane *= x->shape[dim + d];
    }
    for (int d = 0; d < k; d++) tail[d] = x->shape[dim + d];
    tail[0] = (n - size) / step + 1;
    tail[k] = size;
    int64_t out_plane = 1;
    for (int d = 0; d <= k; d++) out_plane *= tail[d];
    nn_tensor *map = nn_empty(NN_I64, 1, &out_plane);
    if (!map) return NULL;
    int64_t *m = nn_i64(map), coord[NN_MAX_DIMS + 1] = {0};
    for (int64_t j = 0; j < out_plane; j++) { /* coord: window, the other dims, offset */
        int64_t at = (coord[0] * step + coord[k]) * in_stride[0];
        for (int d = 1; d < k; d++) at += coord[d] * in_stride[d];
        m[j] = at;
        for (int d = k; d >= 0 && ++coord[d] == tail[d]; d--) coord[d] = 0;
    }
    nn_tensor *y = nn_remap(x, k, k + 1, tail, map, 0, "unfold");
    nn_release(map);
    return y;
}
