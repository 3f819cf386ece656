/* create.c -- tensors made from nothing: constants, ranges, identity. */
#include "internal.h"
#include "half.h"

#include <math.h>

int nn_fill_(nn_tensor *t, double v) {
    nn_tensor *s = nn_scalar(t->dtype, v);
    if (!s) return -1;
    int rc = nn_copy_(t, s);
    nn_release(s);
    return rc;
}

static void fill_contiguous(nn_tensor *t, double v) {
    int64_t n = nn_numel(t);
    if (t->dtype == NN_F32) {
        float *d = nn_f32(t), f = (float)v;
        for (int64_t i = 0; i < n; i++) d[i] = f;
    } else if (t->dtype == NN_I64) {
        int64_t *d = nn_i64(t), x = nn_double_to_i64(v);
        for (int64_t i = 0; i < n; i++) d[i] = x;
    } else { /* a 16-bit format: one pattern, repeated */
        uint16_t bits = 0;
        nn_store(t->dtype, &bits, 0, (float)v);
        uint16_t *d = nn_data(t);
        for (int64_t i = 0; i < n; i++) d[i] = bits;
    }
}

nn_tensor *nn_full_dtype(nn_dtype dtype, int ndim, const int64_t *shape,
                         double value) {
    nn_tensor *t = nn_empty(dtype, ndim, shape);
    if (t) fill_contiguous(t, value);
    return t;
}

nn_tensor *nn_full(int ndim, const int64_t *shape, double value) {
    return nn_full_dtype(NN_F32, ndim, shape, value);
}

nn_tensor *nn_zeros(nn_dtype dtype, int ndim, const int64_t *shape) {
    return nn_full_dtype(dtype, ndim, shape, 0.0);
}

nn_tensor *nn_scalar(nn_dtype dtype, double value) {
    return nn_full_dtype(dtype, 0, NULL, value);
}

nn_tensor *nn_arange(nn_dtype dtype, double start, double end, double step) {
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step))
        return nn_fail(3, "arange needs a finite nonzero step and bounds");
    double count = ceil((end - start) / step);
    if (count < 0) count = 0;
    if (count > 1e12) return nn_fail(2, "arange too large");
    int64_t n = (int64_t)count;
    nn_tensor *t = nn_empty(dtype, 1, &n);
    if (!t) return NULL;
    for (int64_t i = 0; i < n; i++) {
        double v = start + (double)i * step;
        if (dtype == NN_F32) nn_f32(t)[i] = (float)v;
        else if (dtype == NN_I64) nn_i64(t)[i] = nn_double_to_i64(v);
        else nn_store(dtype, nn_data(t), i, v); /* a 16-bit float */
    }
    return t;
}

nn_tensor *nn_linspace(double start, double end, int64_t steps) {
    if (steps < 0) return nn_fail(3, "linspace needs steps >= 0");
    nn_tensor *t = nn_empty(NN_F32, 1, &steps);
    if (!t) return NULL;
    double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0;
    /* fill from both ends so the last element is exactly `end` */
    for (int64_t i = 0; i < steps; i++)
        nn_f32(t)[i] = (float)(i < steps / 2 ? start + step * (double)i
                                             : end - step * (double)(steps - 1 - i));
    return t;
}

nn_tensor *nn_eye(int64_t n, int64_t m) {
    if (n < 0 || m < 0) return nn_fail(1, "eye needs non-negative sizes");
    int64_t shape[2] = {n, m};
    nn_tensor *t = nn_zeros(NN_F32, 2, shape);
    if (!t) return NULL;
    for (int64_t i = 0; i < n && i < m; i++) nn_f32(t)[i * m + i] = 1.0f;
    return t;
}

nn_tensor *nn_from_u8(const uint8_t *data, nn_dtype dtype, int ndim,
                      const int64_t *shape) {
    nn_tensor *t = nn_empty(dtype, ndim, shape);
    if (!t) return NULL;
    int64_t n = nn_numel(t);
    if (dtype == NN_F32)
        for (int64_t i = 0; i < n; i++) nn_f32(t)[i] = data[i];
    else if (dtype == NN_I64)
        for (int64_t i = 0; i < n; i++) nn_i64(t)[i] = data[i];
    else /* a 16-bit float: bytes are exact in both */
        for (int64_t i = 0; i < n; i++) nn_store(dtype, nn_data(t), i, data[i]);
    return t;
}

nn_tensor *nn_byte_counts(const uint8_t *data, size_t n) {
    int64_t shape = 256;
    nn_tensor *t = nn_zeros(NN_I64, 1, &shape);
    if (!t) return NULL;
    int64_t *c = nn_i64(t);
    for (size_t i = 0; i < n; i++) c[data[i]]++;
    return t;
}

nn_tensor *nn_map_bytes(const uint8_t *data, size_t n, const nn_tensor *lut) {
    if (lut->dtype != NN_I64 || lut->ndim != 1 || lut->shape[0] != 256)
        return nn_fail(2, "the lookup table must be a (256) i64 tensor");
    int64_t shape = (int64_t)n, table[256];
    for (int i = 0; i < 256; i++) table[i] = nn_double_to_i64(nn_get(lut, (int64_t[]){i}));
    nn_tensor *t = nn_empty(NN_I64, 1, &shape);
    if (!t) return NULL;
    int64_t *o = nn_i64(t);
#pragma omp parallel for if (n > 4 * NN_PAR_GRAIN)
    for (size_t i = 0; i < n; i++) o[i] = table[data[i]];
    return t;
}
