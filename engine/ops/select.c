/* select.c -- ops whose result size depends on the values: masked_select
 * (x[mask]), nonzero and unique. masked_select is a remap (remap.c), so it
 * is differentiable and copies any dtype. */
#include "autograd.h"
#include "nn_ops.h"

#include <stdlib.h>
#include <string.h>

/* the mask's entries as 0/1 bytes (any dtype, contiguous), or NULL */
static uint8_t *truth(const nn_tensor *m, int64_t *count) {
    nn_tensor *f = nn_to_dtype(m, NN_F32), *c = f ? nn_contiguous(f) : NULL;
    int64_t n = nn_numel(m);
    uint8_t *t = c ? malloc((size_t)(n ? n : 1)) : NULL;
    if (c && !t) nn_failed(0, "out of memory");
    *count = 0;
    for (int64_t i = 0; t && i < n; i++) *count += (t[i] = nn_f32(c)[i] != 0);
    nn_release(f);
    nn_release(c);
    return t;
}

nn_tensor *nn_masked_select(const nn_tensor *x, const nn_tensor *mask) {
    char s1[96], s2[96];
    int k = mask->ndim, leading = k <= x->ndim;
    for (int d = 0; leading && d < k; d++) leading = mask->shape[d] == x->shape[d];
    nn_tensor *m = NULL;
    if (leading) { /* x[mask]: the mask covers x's first k dims */
        m = nn_retain((nn_tensor *)mask);
    } else {
        int64_t shape[NN_MAX_DIMS];
        if (nn_broadcast_shape(x, mask, shape) < 0 || memcmp(shape, x->shape, sizeof *shape * (size_t)x->ndim))
            return nn_fail(2, "masked_select: mask %s neither covers the leading dims of nor "
                              "broadcasts to %s", nn_shape_str(mask, s1, 96), nn_shape_str(x, s2, 96));
        m = nn_expand((nn_tensor *)mask, x->ndim, x->shape);
        k = x->ndim;
    }
    if (!m) return NULL;
    int64_t count, lead = nn_numel(m), rest = 1, tail[NN_MAX_DIMS];
    uint8_t *t = truth(m, &count);
    nn_release(m);
    if (!t) return NULL;
    for (int d = k; d < x->ndim; d++) rest *= (tail[1 + d - k] = x->shape[d]);
    tail[0] = count;
    nn_tensor *map = nn_empty(NN_I64, 1, (int64_t[]){count * rest});
    nn_tensor *y = NULL;
    if (map) {
        int64_t *mv = nn_i64(map), j = 0;
        for (int64_t p = 0; p < lead; p++)
            for (int64_t r = 0; t[p] && r < rest; r++) mv[j++] = p * rest + r;
        y = nn_remap(x, x->ndim, 1 + x->ndim - k, tail, map, 0, "masked_select");
    }
    free(t);
    nn_release(map);
    return y;
}

nn_tensor *nn_nonzero(const nn_tensor *x, int64_t base) {
    int64_t count;
    uint8_t *t = truth(x, &count);
    if (!t) return NULL;
    nn_tensor *y = nn_empty(NN_I64, 2, (int64_t[]){count, x->ndim});
    if (y) {
        int64_t *v = nn_i64(y), coord[NN_MAX_DIMS] = {0}, n = nn_numel(x);
        for (int64_t i = 0; i < n; i++) {
            if (t[i])
                for (int d = 0; d < x->ndim; d++) *v++ = coord[d] + base;
            for (int d = x->ndim - 1; d >= 0 && ++coord[d] == x->shape[d]; d--) coord[d] = 0;
        }
    }
    free(t);
    return y;
}

/* ---- unique ---------------------------------------------------------------- */
typedef struct {
    double f;
    int64_t i, at; /* the value (f32 as double, i64 exactly) and its position */
} entry;

static int by_f32(const void *a, const void *b) { /* NaN after everything */
    const entry *x = a, *y = b;
    int nx = x->f != x->f, ny = y->f != y->f;
    if (nx != ny) return nx - ny;
    if (!nx && x->f != y->f) return x->f < y->f ? -1 : 1;
    return (x->at > y->at) - (x->at < y->at);
}

static int by_i64(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->i != y->i) return x->i < y->i ? -1 : 1;
    return (x->at > y->at) - (x->at < y->at);
}

int nn_unique(const nn_tensor *x, int64_t base, nn_tensor **values, nn_tensor **inverse,
              nn_tensor **counts) {
    *values = NULL;
    if (inverse) *inverse = NULL;
    if (counts) *counts = NULL;
    if (x->dtype != NN_F32 && x->dtype != NN_I64)
        return nn_failed(1, "unique: %s tensors are not supported (f32 or i64)", nn_dtype_name(x->dtype));
    int is_int = x->dtype == NN_I64;
    nn_tensor *c = nn_contiguous((nn_tensor *)x);
    int64_t n = nn_numel(x), u = 0;
    entry *e = c ? malloc(sizeof *e * (size_t)(n ? n : 1)) : NULL;
    if (!e) {
        nn_release(c);
        return c ? nn_failed(0, "out of memory") : -1;
    }
    for (int64_t i = 0; i < n; i++)
        e[i] = is_int ? (entry){0, nn_i64(c)[i], i} : (entry){nn_f32(c)[i], 0, i};
    qsort(e, (size_t)n, sizeof *e, is_int ? by_i64 : by_f32);
    for (int64_t i = 0; i < n; i++)
        u += i == 0 || (is_int ? e[i].i != e[i - 1].i : !(e[i].f == e[i - 1].f));
    *values = nn_empty(x->dtype, 1, &u);
    if (inverse) *inverse = nn_empty(NN_I64, x->ndim, x->shape);
    if (counts) *counts = nn_zeros(NN_I64, 1, &u);
    int rc = *values && (!inverse || *inverse) && (!counts || *counts) ? 0 : -1;
    for (int64_t i = 0, k = -1; rc == 0 && i < n; i++) {
        if (i == 0 || (is_int ? e[i].i != e[i - 1].i : !(e[i].f == e[i - 1].f))) {
            k++;
            if (is_int) nn_i64(*values)[k] = e[i].i;
            else nn_f32(*values)[k] = (float)e[i].f;
        }
        if (inverse) nn_i64(*inverse)[e[i].at] = k + base;
        if (counts) nn_i64(*counts)[k]++;
    }
    free(e);
    nn_release(c);
    if (rc < 0) {
        nn_release(*values);
        if (inverse) nn_release(*inverse);
        if (counts) nn_release(*counts);
        *values = NULL;
    }
    return rc;
}
