/* fft.c -- mixed-radix decimation-in-time FFT (see fft.h for why).
 *
 * A transform of n = radix * m points takes the DFTs of the radix
 * interleaved subsequences (recursively), then combines them: for each k < m
 * the values y_r = W_n^{rk} Y_r[k] give X[k + q m] = sum_r y_r W_radix^{rq}.
 * The sub-DFTs land in out[r m .. r m + m), exactly the positions the
 * combination writes, so it runs in place through radix values of scratch.
 * Radices 4 and 2 have their own butterflies; others use the O(radix^2) sum
 * (a large prime n is correct but slow). */
#include "fft.h"
#include "internal.h"

#include <math.h>
#include <stdlib.h>

int nn_fft_plan_init(nn_fft_plan *p, int n) {
    p->twiddle = NULL;
    if (n < 1) return nn_failed(1, "FFT size %d must be positive", n);
    p->n = n;
    p->nfactors = 0;
    p->max_radix = 1;
    int rest = n;
    while (rest % 4 == 0 && rest > 1) p->factors[p->nfactors++] = 4, rest /= 4;
    for (int f = 2; rest > 1; f = f == 2 ? 3 : f + 2) {
        if ((int64_t)f * f > rest) f = rest; /* rest is prime */
        while (rest % f == 0) p->factors[p->nfactors++] = f, rest /= f;
    }
    if (p->nfactors == 0) p->factors[p->nfactors++] = 1; /* n == 1 */
    for (int i = 0; i < p->nfactors; i++)
        if (p->factors[i] > p->max_radix) p->max_radix = p->factors[i];
    p->twiddle = malloc(sizeof *p->twiddle * (size_t)n);
    if (!p->twiddle) return nn_failed(0, "out of memory (FFT of %d points)", n);
    for (int j = 0; j < n; j++) {
        double a = -2.0 * M_PI * (double)j / (double)n;
        p->twiddle[j] = (nn_cpx){(float)cos(a), (float)sin(a)};
    }
    return 0;
}

void nn_fft_plan_free(nn_fft_plan *p) {
    free(p->twiddle);
    p->twiddle = NULL;
}

static inline nn_cpx cmul(nn_cpx a, nn_cpx b) {
    return (nn_cpx){a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}
static inline nn_cpx cadd(nn_cpx a, nn_cpx b) { return (nn_cpx){a.re + b.re, a.im + b.im}; }
static inline nn_cpx csub(nn_cpx a, nn_cpx b) { return (nn_cpx){a.re - b.re, a.im - b.im}; }
/* a * -i and a * i */
static inline nn_cpx cmul_mi(nn_cpx a) { return (nn_cpx){a.im, -a.re}; }
static inline nn_cpx cmul_i(nn_cpx a) { return (nn_cpx){-a.im, a.re}; }

/* out[0..n) = DFT of in[0], in[stride], ..., in[(n-1) stride] */
static void fft_rec(const nn_fft_plan *p, nn_cpx *out, const nn_cpx *in, int64_t stride,
                    const int *f, int n, nn_cpx *y) {
    int radix = f[0], m = n / radix;
    if (m == 1) {
        for (int r = 0; r < radix; r++) out[r] = in[r * stride];
    } else {
        for (int r = 0; r < radix; r++)
            fft_rec(p, out + r * m, in + r * stride, stride * radix, f + 1, m, y);
    }
    const nn_cpx *tw = p->twiddle;
    int64_t step = p->n / n, wstep = p->n / radix;
    for (int k = 0; k < m; k++) {
        y[0] = out[k];
        for (int r = 1; r < radix; r++) y[r] = cmul(out[r * m + k], tw[(int64_t)r * k * step]);
        if (radix == 2) {
            out[k] = cadd(y[0], y[1]);
            out[k + m] = csub(y[0], y[1]);
        } else if (radix == 4) {
            nn_cpx t0 = cadd(y[0], y[2]), t1 = csub(y[0], y[2]);
            nn_cpx t2 = cadd(y[1], y[3]), t3 = csub(y[1], y[3]);
            out[k] = cadd(t0, t2);
            out[k + 2 * m] = csub(t0, t2);
            out[k + m] = cadd(t1, cmul_mi(t3));
            out[k + 3 * m] = cadd(t1, cmul_i(t3));
        } else {
            for (int q = 0; q < radix; q++) {
                nn_cpx s = y[0];
                for (int r = 1; r < radix; r++)
                    s = cadd(s, cmul(y[r], tw[(int64_t)((r * q) % radix) * wstep]));
                out[k + q * m] = s;
            }
        }
    }
}

void nn_fft(const nn_fft_plan *p, const nn_cpx *in, nn_cpx *out, nn_cpx *scratch) {
    if (p->n == 1) {
        out[0] = in[0];
        return;
    }
    fft_rec(p, out, in, 1, p->factors, p->n, scratch);
}
