/* vecmath.h -- float maths written so loops calling it vectorise.
 *
 * libm's expf is a scalar call, so a loop over expf runs one element at a
 * time. nn_expf is Cephes' expf: x = n ln2 + r with |r| <= ln2/2, a degree-6
 * polynomial for e^r and 2^n built in the exponent bits; relative error
 * about 2 ulp over the float range, no branches, so GCC vectorises it.
 * Results saturate to 0 below -104 and to +inf above 88.7 as expf does. */
#ifndef NN_VECMATH_H
#define NN_VECMATH_H

#include <stdint.h>
#include <string.h>

/* Compile hot loops for AVX-512, AVX2 and plain x86-64; the loader picks
 * the best the CPU has (GCC function multiversioning, an ifunc). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(NN_NO_DISPATCH)
#define NN_DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NN_DISPATCH
#endif

/* 16 float lanes as one value (GCC/clang vector extension): a loop over
 * them compiles to one zmm, two ymm or four xmm per step in each clone,
 * where a float[16] accumulator array came out as shuffles. */
typedef float nn_v16 __attribute__((vector_size(64)));
typedef uint32_t nn_u32x16 __attribute__((vector_size(64)));
/* (macros: a function passing these by value would change the ABI
 * between clones) */
#define NN_V16_LOAD(p) __extension__({ nn_v16 v_; memcpy(&v_, (p), sizeof v_); v_; })
/* the lanes of *v added in double, lane 0 first */
static inline double nn_v16_sum(const nn_v16 *v) {
    double t = 0;
    for (int l = 0; l < 16; l++) t += (*v)[l];
    return t;
}

static inline float nn_expf(float x) {
    const float hi = 88.72283905206835f, lo = -103.97207708f;
    float xc = x < lo ? lo : x;
    xc = xc > hi ? hi : xc;
    xc = x != x ? 0.0f : xc; /* NaN: no undefined int conversion below */
    /* round to nearest with the 1.5 * 2^23 trick (no libm call) */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^n in two halves so n down to -150 stays representable */
    int32_t ni = (int32_t)n, n1 = ni >> 1, n2 = ni - n1;
    int32_t b1 = (n1 + 127) << 23, b2 = (n2 + 127) << 23;
    float s1, s2;
    memcpy(&s1, &b1, 4);
    memcpy(&s2, &b2, 4);
    float y = p * s1 * s2;
    y = x > hi ? __builtin_inff() : y;
    y = x < lo ? 0.0f : y;
    return x != x ? x : y;
}

static inline float nn_sigmoidf(float x) { return 1.0f / (1.0f + nn_expf(-x)); }

/* erf by Abramowitz and Stegun 7.1.26: |error| < 1.5e-7, branch-free */
static inline float nn_erff(float x) {
    float a = x < 0.0f ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f +
              t * (-1.453152027f + t * 1.061405429f))));
    float y = 1.0f - p * nn_expf(-a * a);
    return x < 0.0f ? -y : y;
}

/* tanh through exp, branch-free; |error| ~1e-7 absolute near 0 */
static inline float nn_tanhf(float x) {
    float c = x > 9.0f ? 9.0f : (x < -9.0f ? -9.0f : x);
    return 1.0f - 2.0f / (nn_expf(2.0f * c) + 1.0f);
}

#endif
