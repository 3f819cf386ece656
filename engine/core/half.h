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

#if defined(__FLT16_MAX__) && !defined(NN_SOFT_F16)
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
#else
/* Compilers without _Float16 (clang 14 on x86, the parser fuzzers' build):
 * the same conversions in integer arithmetic. */
static inline float nn_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0x1f) u = sign | 0x7f800000u | (m << 13);
    else if (e) u = sign | ((e + 112) << 23) | (m << 13);
    else {
        float f = (float)m * 0x1p-24f; /* subnormal (or zero): exact */
        memcpy(&u, &f, sizeof u);
        u |= sign;
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t nn_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu, r, rem, half;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff)); /* quiet NaN */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* from 65520 up: Inf */
    if (a >= 0x38800000u) {                                 /* normal: rebias, round */
        r = (a - 0x38000000u) >> 13, rem = a & 0x1fff, half = 0x1000;
    } else {                                                /* subnormal: units of 2^-24 */
        if (a < 0x33000000u) return sign;                   /* below 2^-25: zero */
        uint32_t m = (a & 0x7fffff) | 0x800000, shift = 126 - (a >> 23);
        r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    }
    if (rem > half || (rem == half && (r & 1))) r++; /* to nearest, ties to even */
    return (uint16_t)(sign | r);
}
#endif

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
