/* random.c -- Philox4x32-10 counter-based generator and random tensors.
 *
 * Element i of a draw uses the block philox(seed, offset + i); the generator
 * then advances offset by the element count. The result depends only on
 * (seed, offset), never on how many threads computed it, and (seed, offset)
 * is all the state a checkpoint needs. */
#include "internal.h"
#include "vecmath.h"

#include <math.h>
#include <string.h>

/* Philox4x32's multipliers and Weyl key increments (Salmon et al. 2011) */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void nn_philox(uint64_t seed, uint64_t counter, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32);
    uint32_t c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void nn_rng_seed(nn_rng *r, uint64_t seed) {
    r->seed = seed;
    r->offset = 0;
}


typedef enum { DRAW_UNIFORM, DRAW_NORMAL, DRAW_INT, DRAW_BERNOULLI } draw_kind;

#define LANES NN_PHILOX_LANES

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && LANES == 16
#include <immintrin.h>
#define HAVE_PHILOX_AVX512 1
/* The 16 lanes in 32-bit words with AVX-512 intrinsics: the compiler's
 * vectorisation of the portable loop below multiplies with vpmullq (64 x
 * 64 bits, 3 uops) where vpmuludq (32 x 32 -> 64) is what Philox needs;
 * products of the even and the odd lanes are split back into low and high
 * words. The same words as nn_philox, element for element. */
__attribute__((target("avx512f"))) static void philox16_avx512(uint64_t seed, uint64_t counter,
                                                               uint32_t w[4][LANES]) {
    uint32_t lo[LANES], hi[LANES];
    for (int l = 0; l < LANES; l++) {
        lo[l] = (uint32_t)(counter + (uint64_t)l);
        hi[l] = (uint32_t)((counter + (uint64_t)l) >> 32);
    }
    __m512i c0 = _mm512_loadu_si512(lo), c1 = _mm512_loadu_si512(hi);
    __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
    const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    const __mmask16 odd = 0xAAAA;
    for (int r = 0; r < 10; r++) {
        __m512i e0 = _mm512_mul_epu32(c0, m0), o0 = _mm512_mul_epu32(_mm512_srli_epi64(c0, 32), m0);
        __m512i e1 = _mm512_mul_epu32(c2, m1), o1 = _mm512_mul_epu32(_mm512_srli_epi64(c2, 32), m1);
        __m512i lo0 = _mm512_mask_blend_epi32(odd, e0, _mm512_slli_epi64(o0, 32));
        __m512i hi0 = _mm512_mask_blend_epi32(odd, _mm512_srli_epi64(e0, 32), o0);
        __m512i lo1 = _mm512_mask_blend_epi32(odd, e1, _mm512_slli_epi64(o1, 32));
        __m512i hi1 = _mm512_mask_blend_epi32(odd, _mm512_srli_epi64(e1, 32), o1);
        __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
        __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
        c1 = lo1;
        c3 = lo0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    _mm512_storeu_si512(w[0], c0);
    _mm512_storeu_si512(w[1], c1);
    _mm512_storeu_si512(w[2], c2);
    _mm512_storeu_si512(w[3], c3);
}
#endif

/* nn_philox of LANES consecutive counters, lane by lane so the rounds
 * vectorise (element-wise the same words as nn_philox); AVX-512 CPUs take
 * philox16_avx512 */
static inline void philox16(uint64_t seed, uint64_t counter, uint32_t w[4][LANES]) {
#ifdef HAVE_PHILOX_AVX512
    if (__builtin_cpu_supports("avx512f")) {
        philox16_avx512(seed, counter, w);
        return;
    }
#endif
    /* 64-bit lanes holding 32-bit words: the products are then one
     * 32x32->64 multiply per lane (vpmuludq) */
    uint64_t c0[LANES], c1[LANES], c2[LANES], c3[LANES];
    for (int l = 0; l < LANES; l++) {
        c0[l] = (uint32_t)(counter + (uint64_t)l);
        c1[l] = (uint32_t)((counter + (uint64_t)l) >> 32);
        c2[l] = c3[l] = 0;
    }
    uint64_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        for (int l = 0; l < LANES; l++) {
            uint64_t p0 = PHILOX_M0 * (c0[l] & 0xFFFFFFFFu);
            uint64_t p1 = PHILOX_M1 * (c2[l] & 0xFFFFFFFFu);
            uint64_t n0 = (p1 >> 32) ^ c1[l] ^ k0, n2 = (p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = p1 & 0xFFFFFFFFu;
            c3[l] = p0 & 0xFFFFFFFFu;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 = (k0 + PHILOX_W0) & 0xFFFFFFFFu;
        k1 = (k1 + PHILOX_W1) & 0xFFFFFFFFu;
    }
    for (int l = 0; l < LANES; l++) {
        w[0][l] = (uint32_t)c0[l];
        w[1][l] = (uint32_t)c1[l];
        w[2][l] = (uint32_t)c2[l];
        w[3][l] = (uint32_t)c3[l];
    }
}

NN_DISPATCH
void nn_philox_lanes(uint64_t seed, uint64_t counter, uint32_t w[4][LANES]) {
    philox16(seed, counter, w);
}

NN_DISPATCH
void nn_philox_mask(uint64_t seed, uint64_t block, float *x, int64_t n, float p, float scale,
                    int multiply) {
    /* compare the top 24 bits as integers: nn_u01(w) >= p exactly */
    uint32_t cut = (uint32_t)ceilf(p * 16777216.0f), sb;
    memcpy(&sb, &scale, sizeof sb);
    const nn_u32x16 cutv = (nn_u32x16){0} + cut, scale_bits = (nn_u32x16){0} + sb;
    for (int64_t e0 = 0; e0 < n; e0 += 4 * LANES, block += LANES) {
        uint32_t w[4][LANES];
        philox16(seed, block, w);
        float *xe = x + e0;
        if (n - e0 >= 4 * LANES && LANES == 16) { /* whole groups: word k of lane l is element 16 k + l */
            for (int k = 0; k < 4; k++) { /* as vectors: keep = scale's bits where the word passes */
                nn_u32x16 wk, kb;
                memcpy(&wk, w[k], sizeof wk);
                kb = (nn_u32x16)((wk >> 8) >= cutv) & scale_bits;
                nn_v16 keep;
                memcpy(&keep, &kb, sizeof keep);
                if (multiply) keep *= NN_V16_LOAD(xe + k * LANES);
                memcpy(xe + k * LANES, &keep, sizeof keep);
            }
        } else {
            for (int64_t e = 0; e < n - e0; e++) {
                float keep = (w[e / LANES][e % LANES] >> 8) >= cut ? scale : 0.0f;
                xe[e] = multiply ? xe[e] * keep : keep;
            }
        }
    }
}

static void draw(nn_rng *r, draw_kind kind, void *out, int64_t n,
                 int64_t low, uint64_t range, const float *p) {
    uint64_t seed = r->seed, base = r->offset;
    int64_t blocks = (n + LANES - 1) / LANES;
#pragma omp parallel for if (n > NN_PAR_GRAIN) schedule(static)
    for (int64_t b = 0; b < blocks; b++) {
        uint32_t w[4][LANES], *w0 = w[0], *w1 = w[1];
        nn_philox_lanes(seed, base + (uint64_t)(b * LANES), w);
        for (int64_t l = 0, i = b * LANES; l < LANES && i < n; l++, i++) {
            switch (kind) {
            case DRAW_UNIFORM: ((float *)out)[i] = nn_u01(w0[l]); break;
            case DRAW_NORMAL: {
                float u1 = nn_u01(w0[l]) + 1.0f / 16777216.0f; /* (0, 1]: log(u1) finite */
                ((float *)out)[i] =
                    sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * nn_u01(w1[l]));
                break;
            }
            case DRAW_INT: {
                uint64_t v = ((uint64_t)w1[l] << 32) | w0[l];
                ((int64_t *)out)[i] = (int64_t)((uint64_t)low + v % range); /* no overflow */
                break;
            }
            case DRAW_BERNOULLI: ((float *)out)[i] = nn_u01(w0[l]) < p[i]; break;
            }
        }
    }
    r->offset += (uint64_t)n;
}

void nn_rng_uniform(nn_rng *r, float *out, int64_t n) {
    draw(r, DRAW_UNIFORM, out, n, 0, 0, NULL);
}

nn_tensor *nn_rand(nn_rng *r, int ndim, const int64_t *shape) {
    nn_tensor *t = nn_empty(NN_F32, ndim, shape);
    if (t) draw(r, DRAW_UNIFORM, nn_f32(t), nn_numel(t), 0, 0, NULL);
    return t;
}

nn_tensor *nn_randn(nn_rng *r, int ndim, const int64_t *shape) {
    nn_tensor *t = nn_empty(NN_F32, ndim, shape);
    if (t) draw(r, DRAW_NORMAL, nn_f32(t), nn_numel(t), 0, 0, NULL);
    return t;
}

nn_tensor *nn_randint(nn_rng *r, int64_t low, int64_t high, int ndim,
                      const int64_t *shape) {
    if (high <= low)
        return nn_fail(2, "randint needs low < high (got %lld, %lld)",
                       (long long)low, (long long)high);
    nn_tensor *t = nn_empty(NN_I64, ndim, shape);
    if (t)
        draw(r, DRAW_INT, nn_i64(t), nn_numel(t), low,
             (uint64_t)high - (uint64_t)low, NULL);
    return t;
}

nn_tensor *nn_bernoulli(nn_rng *r, const nn_tensor *p) {
    NN_NO_HALF_PTR(p, 2, "bernoulli");
    if (p->dtype != NN_F32)
        return nn_fail(1, "bernoulli expects f32 probabilities, got %s",
                       nn_dtype_name(p->dtype));
    nn_tensor *pc = nn_clone(p);
    if (!pc) return NULL;
    /* draw in place over the copy of p: each element reads its own p first */
    float *d = nn_f32(pc);
    int64_t n = nn_numel(pc);
    for (int64_t i = 0; i < n; i++)
        if (!(d[i] >= 0.0f && d[i] <= 1.0f)) {
            nn_release(pc);
            return nn_fail(1, "bernoulli probabilities must lie in [0, 1]");
        }
    draw(r, DRAW_BERNOULLI, d, n, 0, 0, d);
    return pc;
}
