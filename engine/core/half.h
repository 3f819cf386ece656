/* half.h -- the 16-bit float formats (not installed).
 *
 * bf16 is the top half of an f32: widening is exact, narrowing rounds to
 * nearest even, NaN stays NaN (quiet, sign kept; payloads are not
 * preserved bit for bit). f16 (IEEE binary16) converts through gcc's
 * _Float16, which rounds to nearest even and keeps subnormals, Inf and
 * NaN. Element access by dtype for the generic (slow) paths is here too. */
#ifndef NN_HALF_H
#define NN_HALF_H

#include "internal.h"

#include <string.h>

static inline float nn_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t nn_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1); /* to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

static inline float nn_f16_to_f32(uint16_t h) {
    _Float16 x;
    memcpy(&x, &h, sizeof x);
    return (float)x;
}

static inline uint16_t nn_f32_to_f16(float f) {
    _Float16 x = (_Float16)f;
    uint16_t h;
    memcpy(&h, &x, sizeof h);
    return h;
}

/* element i (in elements from base) of a buffer of dtype d, as a double */
static inline double nn_load(nn_dtype d, const void *base, int64_t i) {
    switch (d) {
    case NN_F32: return ((const float *)base)[i];
    case NN_I64: return (double)((const int64_t *)base)[i];
    case NN_BF16: return nn_bf16_to_f32(((const uint16_t *)base)[i]);
    case NN_F16: return nn_f16_to_f32(((const uint16_t *)base)[i]);
    default: return 0;
    }
}

static inline void nn_store(nn_dtype d, void *base, int64_t i, double v) {
    switch (d) {
    case NN_F32: ((float *)base)[i] = (float)v; break;
    case NN_I64: ((int64_t *)base)[i] = nn_double_to_i64(v); break;
    case NN_BF16: ((uint16_t *)base)[i] = nn_f32_to_bf16((float)v); break;
    case NN_F16: ((uint16_t *)base)[i] = nn_f32_to_f16((float)v); break;
    default: break;
    }
}

#endif
