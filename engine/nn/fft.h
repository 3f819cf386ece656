/* fft.h -- a small mixed-radix complex FFT for the STFT (not installed).
 *
 * Our own rather than FFTW: FFTW is GPL (linking it would change what a
 * host may do with nnlua), and the transforms an STFT needs are short (a
 * few hundred to a few thousand points) and many, so a plan is cheap to
 * build and one transform per frame runs in the caller's parallel loop. */
#ifndef NN_FFT_H
#define NN_FFT_H

typedef struct { float re, im; } nn_cpx;

typedef struct {
    int n;
    int nfactors;
    int factors[32];    /* radices, 4s first, then 2, 3, 5, ..., product n */
    nn_cpx *twiddle;    /* exp(-2 pi i j / n), j < n */
    int max_radix;
} nn_fft_plan;

/* 0, or -1 with an error (out of memory, n < 1) */
int nn_fft_plan_init(nn_fft_plan *p, int n);
void nn_fft_plan_free(nn_fft_plan *p);
/* out = DFT of in (n points each; the arrays do not overlap). scratch
 * holds max_radix values. */
void nn_fft(const nn_fft_plan *p, const nn_cpx *in, nn_cpx *out, nn_cpx *scratch);

#endif
