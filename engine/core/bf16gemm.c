/* bf16gemm.c -- C = alpha op(A) op(B) + beta C with A and B rounded to bf16
 * and products summed in f32: the matrix products of nn.autocast('bf16').
 *
 * Debian's OpenBLAS 0.3.21 has no sbgemm, and oneDNN 2.6's C API offers
 * bf16 products only through primitives built per shape; this kernel is
 * small enough to own. On a CPU with avx512_bf16 (found at run time) a
 * 12x32 register tile of f32 sums is fed by vdpbf16ps, which multiplies
 * pairs of bf16 along k: B is packed as (k, k+1) pairs per column, A as
 * the same pairs per row, broadcast. Elsewhere A and B are rounded to bf16
 * the same way and multiplied by sgemm, so results agree to f32 summation
 * order. Packing reads any strides, so transposed operands cost nothing
 * extra.
 *
 * Having the instruction does not make it fast: on the AMX Xeon this was
 * measured on, vdpbf16ps retires one per two cycles against two f32 FMAs
 * per cycle (a loop of independent ones: 1.0 against 4.3 per ns on one
 * core), so that kernel runs at half sgemm's FLOP rate, while the AMX
 * tiles (below) run at ~2.5x it. The first product times nnlua's kernel
 * (AMX where present) against sgemm on rounded operands once on a small
 * problem and keeps the faster (NNLUA_BF16_KERNEL=native or =amx, =avx512 (the
 * vdpbf16ps kernel even where AMX is) or =sgemm decides instead). */
#include "half.h"

#include <stdlib.h>
#include <string.h>

enum { MR = 12, NR = 32, KC = 384 };

/* element (i, j) of op(X) for a row-major X with leading dimension ld */
static inline float at(const float *x, int64_t ld, int trans, int64_t i, int64_t j) {
    return trans ? x[j * ld + i] : x[i * ld + j];
}

#if defined(__x86_64__) && defined(__GNUC__) && __GNUC__ >= 10
#include <immintrin.h>
#define HAVE_DPBF16 1
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

/* 16 (k, k+1) pairs from rows r0 (k) and r1 (k+1, or NULL: zeros), over
 * the lanes of mask m: lane c = (bf16 r0[c], bf16 r1[c]) */
BF16_TARGET static inline __m512i pairs_across(const float *r0, const float *r1, __mmask16 m) {
    __m512 lo = _mm512_maskz_loadu_ps(m, r0);
    __m512 hi = r1 ? _mm512_maskz_loadu_ps(m, r1) : _mm512_setzero_ps();
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* lo in 0..15, hi in 16..31 */
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                         24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                         16, 0);
    return _mm512_permutexvar_epi16(idx, both);
}

/* up to 16 pairs from a run of kc consecutive floats (pairs already adjacent) */
BF16_TARGET static inline __m512i pairs_along(const float *r, int64_t count) {
    __mmask16 m0 = count >= 16 ? 0xffff : (__mmask16)((1u << count) - 1);
    int64_t rest = count - 16;
    __mmask16 m1 = rest >= 16 ? 0xffff : rest <= 0 ? 0 : (__mmask16)((1u << rest) - 1);
    __m512 a = _mm512_maskz_loadu_ps(m0, r), b = _mm512_maskz_loadu_ps(m1, r + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(b, a);
}

/* a panel of w lanes (rows of op(A), or columns of op(B)) for k in [k0,
 * k0+kc): dst[p * w + lane]. x is op(X) row-major with leading dim ld;
 * lanes_along_k: consecutive k of one lane are adjacent in memory */
BF16_TARGET static void pack_panel(uint32_t *dst, int w, const float *x, int64_t ld,
                                   int lanes_along_k, int64_t lanes, int64_t l0, int64_t k0,
                                   int64_t kc) {
    int64_t kp = (kc + 1) / 2, valid = lanes - l0 < w ? lanes - l0 : w;
    if (lanes_along_k) { /* lane l's k run is contiguous: convert it, spread it */
        uint32_t tmp[16];
        for (int c = 0; c < w; c++) {
            const float *row = c < valid ? x + (l0 + c) * ld + k0 : NULL;
            for (int64_t p = 0; p < kp; p += 16) {
                int64_t n = 2 * (kp - p) < 32 ? kc - 2 * p : 32;
                __m512i v = row ? pairs_along(row + 2 * p, n) : _mm512_setzero_si512();
                _mm512_storeu_si512(tmp, v);
                int64_t q = kp - p < 16 ? kp - p : 16;
                for (int64_t i = 0; i < q; i++) dst[(p + i) * w + c] = tmp[i];
            }
        }
        return;
    }
    /* lanes contiguous: rows k and k+1 interleave into w lanes at once */
    for (int64_t p = 0; p < kp; p++) {
        const float *r0 = x + (k0 + 2 * p) * ld + l0;
        const float *r1 = 2 * p + 1 < kc ? r0 + ld : NULL;
        for (int c = 0; c < w; c += 16) {
            int64_t left = valid - c;
            __mmask16 m = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            int lanes_here = w - c < 16 ? w - c : 16;
            __m512i v = pairs_across(r0 + c, r1 ? r1 + c : NULL, m);
            _mm512_mask_storeu_epi32(dst + p * w + c, (__mmask16)((1u << lanes_here) - 1), v);
        }
    }
}

/* one MR x NR tile: C[:mr, :nr] = alpha sum + (first ? beta C : C) */
BF16_TARGET
static void tile(const uint32_t *pa, const uint32_t *pb, int64_t kp, float *c, int64_t ldc,
                 int mr, int nr, float alpha, float beta, int first) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(pb + p * NR);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(pb + p * NR + 16);
        const uint32_t *ap = pa + p * MR;
#pragma GCC unroll 12
        for (int r = 0; r < MR; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)ap[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], av, b1);
        }
    }
    __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(first ? beta : 1.0f);
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        __m512 s0 = _mm512_mul_ps(acc[r][0], va), s1 = _mm512_mul_ps(acc[r][1], va);
        if (!first || beta != 0) {
            s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, cr), vb, s0);
            s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, cr + 16), vb, s1);
        }
        _mm512_mask_storeu_ps(cr, m0, s0);
        _mm512_mask_storeu_ps(cr + 16, m1, s1);
    }
}

static int has_dpbf16(void) {
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
    }
    return known;
}

/* ---- AMX ---------------------------------------------------------------------
 * Where the CPU has AMX (and Linux grants the tile state), TDPBF16PS
 * multiplies a 16x32 bf16 tile by a 32x16 one into 16x16 f32 sums: each
 * 32x32 block of C is four such tiles, fed by two A tiles (16 rows x 32 k)
 * and two B tiles (16 k pairs x 16 columns, the pair layout above). A is
 * packed as [32-row block][32-k chunk][row][16 pairs], B as [32-column
 * block][k pair][32 columns]; k is padded with zeros to a multiple of 32. */
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_TARGET \
    __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))

static int amx_state = -1;

static int amx_available(void) {
    int ok = __atomic_load_n(&amx_state, __ATOMIC_ACQUIRE);
    if (ok >= 0) return ok;
    unsigned a, b, c, d;
    ok = __get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1); /* OSXSAVE */
    ok = ok && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 22 & 1) && (d >> 24 & 1);
    if (ok) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        ok = (lo >> 17 & 3) == 3; /* the OS saves the tile state */
    }
    /* ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA: once per process */
    if (ok) ok = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
    __atomic_store_n(&amx_state, ok, __ATOMIC_RELEASE);
    return ok;
}

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

/* rows [i0, i0+32) of op(A), all of k, as [chunk][row][16 pairs] */
BF16_TARGET static void pack_a_amx(uint32_t *dst, const float *a, int64_t lda, int ta,
                                   int64_t m, int64_t i0, int64_t k, int64_t nch) {
    int64_t valid = m - i0 < 32 ? m - i0 : 32;
    if (!ta) { /* a row's k run is contiguous */
        for (int64_t c = 0; c < nch; c++)
            for (int r = 0; r < 32; r++) {
                int64_t left = k - 32 * c;
                __m512i v = r < valid && left > 0
                                ? pairs_along(a + (i0 + r) * lda + 32 * c, left < 32 ? left : 32)
                                : _mm512_setzero_si512();
                _mm512_storeu_si512(dst + (c * 32 + r) * 16, v);
            }
        return;
    }
    uint32_t tmp[32];
    for (int64_t c = 0; c < nch; c++)
        for (int q = 0; q < 16; q++) {
            int64_t kk = 32 * c + 2 * q;
            for (int h = 0; h < 2; h++) {
                int64_t left = valid - 16 * h;
                __mmask16 msk = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
                if (kk >= k) msk = 0;
                const float *r0 = a + (kk < k ? kk : 0) * lda + i0 + 16 * h;
                __m512i v = pairs_across(r0, kk + 1 < k ? r0 + lda : NULL, msk);
                _mm512_storeu_si512(tmp + 16 * h, v);
            }
            for (int r = 0; r < 32; r++) dst[(c * 32 + r) * 16 + q] = tmp[r];
        }
}

/* one 32x32 block of sums into out (row stride ld floats); acc: start
 * from out's values instead of zeros */
AMX_TARGET static void amx_block(const uint32_t *pa, const uint32_t *pb, int64_t nch, float *out,
                                 int64_t ld, int acc) {
    size_t stride = (size_t)ld * sizeof(float);
    if (acc) {
        _tile_loadd(0, out, stride);
        _tile_loadd(1, out + 16, stride);
        _tile_loadd(2, out + 16 * ld, stride);
        _tile_loadd(3, out + 16 * ld + 16, stride);
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    for (int64_t c = 0; c < nch; c++) {
        const uint32_t *ac = pa + c * 32 * 16, *bc = pb + c * 16 * 32;
        _tile_loadd(4, ac, 64);
        _tile_loadd(5, ac + 16 * 16, 64);
        _tile_loadd(6, bc, 128);
        _tile_loadd(7, bc + 16, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out, stride);
    _tile_stored(1, out + 16, stride);
    _tile_stored(2, out + 16 * ld, stride);
    _tile_stored(3, out + 16 * ld + 16, stride);
}

/* eight 16-row, 64-byte tiles; a static object, as the intrinsic's asm
 * does not tell gcc it reads the memory (a local's stores were dropped) */
static const tile_config amx_tiles = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

AMX_TARGET static void amx_config(void) { _tile_loadconfig(&amx_tiles); }

AMX_TARGET static void amx_done(void) { _tile_release(); }

/* threads: 0 runs in the calling thread alone (inside a parallel loop) */
static int amx_run(int threads, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                   float *c, int64_t ldc) {
    int64_t mb = (m + 31) / 32, nb = (n + 31) / 32, nch = (k + 31) / 32, kp = (k + 1) / 2;
    uint32_t *pa = nn_alloc((size_t)(mb * nch * 32 * 16) * sizeof *pa);
    uint32_t *pb = nn_alloc((size_t)(nb * nch * 16 * 32) * sizeof *pb);
    if (!pa || !pb) {
        nn_free(pa);
        nn_free(pb);
        return nn_failed(0, "out of memory");
    }
#pragma omp parallel if (threads)
    {
#pragma omp for schedule(static) nowait
        for (int64_t t = 0; t < mb; t++)
            pack_a_amx(pa + t * nch * 32 * 16, a, lda, ta, m, t * 32, k, nch);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < nb; t++) {
            uint32_t *dst = pb + t * nch * 16 * 32;
            pack_panel(dst, 32, b, ldb, tb, n, t * 32, 0, k);
            memset(dst + kp * 32, 0, (size_t)(nch * 16 - kp) * 32 * sizeof *dst);
        }
        amx_config();
        float out[32 * 32];
#pragma omp for schedule(static)
        for (int64_t t = 0; t < mb * nb; t++) {
            int64_t jb = t / mb, ib = t % mb, i0 = ib * 32, j0 = jb * 32;
            int64_t rows = m - i0 < 32 ? m - i0 : 32, cols = n - j0 < 32 ? n - j0 : 32;
            const uint32_t *ap = pa + ib * nch * 32 * 16, *bp = pb + jb * nch * 16 * 32;
            if (rows == 32 && cols == 32 && alpha == 1 && (beta == 0 || beta == 1)) {
                /* a whole block: the tiles read and write C itself */
                amx_block(ap, bp, nch, c + i0 * ldc + j0, ldc, beta == 1);
                continue;
            }
            amx_block(ap, bp, nch, out, 32, 0);
            for (int64_t i = 0; i < rows; i++) {
                float *cr = c + (i0 + i) * ldc + j0;
                const float *o = out + i * 32;
                if (beta == 0)
                    for (int64_t j = 0; j < cols; j++) cr[j] = alpha * o[j];
                else
                    for (int64_t j = 0; j < cols; j++) cr[j] = alpha * o[j] + beta * cr[j];
            }
        }
        amx_done();
    }
    nn_free(pa);
    nn_free(pb);
    return 0;
}

static int amx_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc) {
    return amx_run(1, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
#else
static int has_dpbf16(void) { return 0; }
static int amx_available(void) { return 0; }
#endif

static int no_amx; /* NNLUA_BF16_KERNEL=avx512: vdpbf16ps even where AMX is */

int nn_amx_ready(void) { return nn_bf16_native() && !no_amx && amx_available(); }

int nn_amx_gemm_1t(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                   float *c, int64_t ldc) {
#ifdef HAVE_DPBF16
    if (m <= 0 || n <= 0) return 0;
    return amx_run(0, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#else
    (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda;
    (void)b, (void)ldb, (void)beta, (void)c, (void)ldc;
    return nn_failed(0, "internal: no AMX in this build");
#endif
}

static int fallback(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc);
static int native(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                  float *c, int64_t ldc);

typedef int (*gemm_fn)(int, int, int64_t, int64_t, int64_t, float, const float *, int64_t,
                       const float *, int64_t, float, float *, int64_t);

/* nnlua's own kernel for this CPU: AMX tiles, or vdpbf16ps */
static gemm_fn native_kernel(void) {
#ifdef HAVE_DPBF16
    if (!no_amx && amx_available()) return amx_gemm;
#endif
    return native;
}

/* 1: nnlua's kernel, 0: sgemm on rounded operands; decided once */
static int use_native = -1;

static void choose_kernel(void) {
    const char *force = getenv("NNLUA_BF16_KERNEL");
    no_amx = force && !strcmp(force, "avx512");
    if (!has_dpbf16() || (force && !strcmp(force, "sgemm"))) {
        __atomic_store_n(&use_native, 0, __ATOMIC_RELEASE);
        return;
    }
    if (force && (!strcmp(force, "native") || !strcmp(force, "amx") || no_amx)) {
        __atomic_store_n(&use_native, 1, __ATOMIC_RELEASE);
        return;
    }
    enum { S = 256 };
    float *x = nn_alloc(3 * S * S * sizeof *x);
    if (!x) {
        __atomic_store_n(&use_native, 1, __ATOMIC_RELEASE);
        return;
    }
    for (int i = 0; i < 2 * S * S; i++) x[i] = (float)(i % 7) * 0.25f;
    double best[2] = {1e9, 1e9};
    for (int rep = 0; rep < 3; rep++)
        for (int way = 0; way < 2; way++) {
            double t0 = nn_clock();
            (way ? native_kernel() : fallback)(0, 0, S, S, S, 1.0f, x, S, x + S * S, S, 0.0f,
                                               x + 2 * S * S, S);
            double t = nn_clock() - t0;
            if (t < best[way]) best[way] = t;
        }
    nn_free(x);
    __atomic_store_n(&use_native, best[1] < best[0], __ATOMIC_RELEASE);
}

int nn_bf16_native(void) {
    if (__atomic_load_n(&use_native, __ATOMIC_ACQUIRE) < 0) choose_kernel();
    return __atomic_load_n(&use_native, __ATOMIC_ACQUIRE);
}

int nn_set_bf16_native(int on) {
    int prev = nn_bf16_native();
    if (on && !has_dpbf16()) return nn_failed(1, "this CPU has no avx512_bf16");
    __atomic_store_n(&use_native, on != 0, __ATOMIC_RELEASE);
    return prev;
}

/* the rounding of the fallback: op(X) as bf16 values in an f32 buffer */
static float *rounded(const float *x, int64_t ld, int trans, int64_t rows, int64_t cols) {
    size_t count = (size_t)(rows * cols) + 1;
    float *o = nn_alloc(count * sizeof *o); /* reused blocks: this runs per product */
    if (!o) return NULL;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            o[i * cols + j] = nn_bf16_to_f32(nn_f32_to_bf16(at(x, ld, trans, i, j)));
    return o;
}

static int fallback(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                    const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                    float *c, int64_t ldc) {
    float *ar = rounded(a, lda, ta, m, k), *br = rounded(b, ldb, tb, k, n);
    int rc = ar && br ? nn_sgemm(0, 0, m, n, k, alpha, ar, k, br, n, beta, c, ldc)
                      : nn_failed(0, "out of memory");
    nn_free(ar);
    nn_free(br);
    return rc;
}

int nn_bf16_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                 float *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return 0;
    if (k <= 0) return nn_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return (nn_bf16_native() ? native_kernel() : fallback)(ta, tb, m, n, k, alpha, a, lda, b,
                                                           ldb, beta, c, ldc);
}

static int native(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                  float *c, int64_t ldc) {
#ifdef HAVE_DPBF16
    int64_t mt = (m + MR - 1) / MR, nt = (n + NR - 1) / NR, kpmax = (KC + 1) / 2;
    uint32_t *pa = nn_alloc((size_t)(mt * MR * kpmax) * sizeof *pa);
    uint32_t *pb = nn_alloc((size_t)(nt * NR * kpmax) * sizeof *pb);
    if (!pa || !pb) {
        nn_free(pa);
        nn_free(pb);
        return nn_failed(0, "out of memory");
    }
    for (int64_t k0 = 0; k0 < k; k0 += KC) {
        int64_t kc = k - k0 < KC ? k - k0 : KC, kp = (kc + 1) / 2;
        int first = k0 == 0;
#pragma omp parallel
        {
#pragma omp for schedule(static) nowait
            for (int64_t t = 0; t < mt; t++) /* op(A)[i][k]: k adjacent unless ta */
                pack_panel(pa + t * MR * kp, MR, a, lda, !ta, m, t * MR, k0, kc);
#pragma omp for schedule(static)
            for (int64_t t = 0; t < nt; t++) /* op(B)[k][j]: j adjacent unless tb */
                pack_panel(pb + t * NR * kp, NR, b, ldb, tb, n, t * NR, k0, kc);
            /* tiles in column-panel order: a thread's B panel stays in cache */
#pragma omp for schedule(static)
            for (int64_t t = 0; t < mt * nt; t++) {
                int64_t jt = t / mt, it = t % mt;
                int64_t i0 = it * MR, j0 = jt * NR;
                int mr = m - i0 < MR ? (int)(m - i0) : MR, nr = n - j0 < NR ? (int)(n - j0) : NR;
                tile(pa + it * MR * kp, pb + jt * NR * kp, kp, c + i0 * ldc + j0, ldc, mr, nr,
                     alpha, beta, first);
            }
        }
    }
    nn_free(pa);
    nn_free(pb);
    return 0;
#else
    return fallback(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
#endif
}

static _Thread_local nn_dtype autocast = NN_F32;

nn_dtype nn_set_autocast(nn_dtype d) {
    nn_dtype prev = autocast;
    autocast = d == NN_BF16 ? NN_BF16 : NN_F32;
    return prev;
}

nn_dtype nn_autocast(void) { return autocast; }

int nn_gemm(int bf16, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
            const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
            int64_t ldc) {
    return (bf16 ? nn_bf16_gemm : nn_sgemm)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c,
                                             ldc);
}
