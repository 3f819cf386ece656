/* stft.c -- the short-time Fourier transform as torch.stft computes it
 * (onesided, return_complex=False): x of (L) or (B, L) gives
 * (..., n_fft/2 + 1, frames, 2), real and imaginary parts last.
 *
 * With center, x is padded by n_fft/2 on both sides (reflect, constant,
 * replicate or circular); frame f covers padded samples f hop .. f hop +
 * n_fft, times the window (win_length points centred in n_fft, ones when
 * absent). X_k = scale sum_j w_j x_j e^{-2 pi i jk / n_fft}, scale =
 * n_fft^-1/2 when normalized.
 *
 * Forward: two real frames share one complex FFT (a in the real part, b
 * in the imaginary: A_k = (Z_k + conj Z_{N-k}) / 2, B_k = (Z_k - conj
 * Z_{N-k}) / 2i). The op is linear in x, so its backward is its adjoint:
 * dx_j = scale w_j Re(sum_k G_k e^{+2 pi i jk/N}) = scale w_j Re FFT(conj
 * G)_j per frame, overlap-added and folded back through the padding. The
 * adjoint is an op too, whose derivative is the STFT again: both have a
 * double backward. */
#include "autograd.h"
#include "fft.h"
#include "nn_layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t n_fft, hop, len, batch, frames, pad;
    int ndim, has_window, mode;
    float scale;
} stft_ctx;

/* the input sample a padded position reads, or -1 for a constant zero */
static int64_t source_index(const stft_ctx *c, int64_t p) {
    int64_t i = p - c->pad, L = c->len;
    if (i >= 0 && i < L) return i;
    switch (c->mode) {
    case NN_PAD_REFLECT: return i < 0 ? -i : 2 * (L - 1) - i;
    case NN_PAD_REPLICATE: return i < 0 ? 0 : L - 1;
    case NN_PAD_CIRCULAR: return ((i % L) + L) % L;
    default: return -1;
    }
}

/* the window over n_fft points: win centred, zeros around it (or ones) */
static float *full_window(const stft_ctx *c, const nn_tensor *window) {
    float *w = malloc(sizeof *w * (size_t)c->n_fft);
    if (!w) return nn_fail(0, "out of memory (stft window)");
    if (!window) {
        for (int64_t j = 0; j < c->n_fft; j++) w[j] = c->scale;
        return w;
    }
    int64_t wl = window->shape[0], left = (c->n_fft - wl) / 2;
    memset(w, 0, sizeof *w * (size_t)c->n_fft);
    for (int64_t j = 0; j < wl; j++) w[left + j] = c->scale * (float)nn_get(window, &j);
    return w;
}

/* per-thread FFT buffers: input, output and the radix scratch */
typedef struct { nn_cpx *in, *out, *scratch; } fft_bufs;

static int bufs_alloc(fft_bufs *b, const nn_fft_plan *p) {
    b->in = malloc(sizeof(nn_cpx) * (size_t)(2 * p->n + p->max_radix));
    b->out = b->in ? b->in + p->n : NULL;
    b->scratch = b->in ? b->out + p->n : NULL;
    return b->in ? 0 : -1;
}

static void stft_kernel(const stft_ctx *c, const float *x, const float *w, const nn_fft_plan *p,
                        float *y, int *oom) {
    int64_t total = c->batch * c->frames, bins = c->n_fft / 2 + 1, N = c->n_fft;
#pragma omp parallel if (total * N > NN_PAR_GRAIN)
    {
        fft_bufs b;
        if (bufs_alloc(&b, p) < 0) {
#pragma omp atomic write
            *oom = 1;
        } else {
#pragma omp for schedule(static)
            for (int64_t t = 0; t < (total + 1) / 2; t++) {
                int64_t fa = 2 * t, fb = fa + 1 < total ? fa + 1 : -1;
                const float *xa = x + (fa / c->frames) * c->len, *xb = fb >= 0 ? x + (fb / c->frames) * c->len : NULL;
                int64_t pa = (fa % c->frames) * c->hop, pb = fb >= 0 ? (fb % c->frames) * c->hop : 0;
                for (int64_t j = 0; j < N; j++) {
                    int64_t ia = source_index(c, pa + j), ib = xb ? source_index(c, pb + j) : -1;
                    b.in[j].re = ia >= 0 ? w[j] * xa[ia] : 0.0f;
                    b.in[j].im = ib >= 0 ? w[j] * xb[ib] : 0.0f;
                }
                nn_fft(p, b.in, b.out, b.scratch);
                for (int64_t k = 0; k < bins; k++) {
                    nn_cpx z = b.out[k], zc = b.out[(N - k) % N];
                    float *ya = y + (((fa / c->frames) * bins + k) * c->frames + fa % c->frames) * 2;
                    ya[0] = 0.5f * (z.re + zc.re);
                    ya[1] = 0.5f * (z.im - zc.im);
                    if (fb >= 0) {
                        float *yb = y + (((fb / c->frames) * bins + k) * c->frames + fb % c->frames) * 2;
                        yb[0] = 0.5f * (z.im + zc.im);
                        yb[1] = -0.5f * (z.re - zc.re);
                    }
                }
            }
        }
        free(b.in);
    }
}

/* dx from g (..., bins, frames, 2): each frame's adjoint into a buffer in
 * parallel, then overlap-added item by item */
static void adjoint_kernel(const stft_ctx *c, const float *g, const float *w, const nn_fft_plan *p,
                           float *frames_buf, float *dx, int *oom) {
    int64_t total = c->batch * c->frames, bins = c->n_fft / 2 + 1, N = c->n_fft;
#pragma omp parallel if (total * N > NN_PAR_GRAIN)
    {
        fft_bufs b;
        if (bufs_alloc(&b, p) < 0) {
#pragma omp atomic write
            *oom = 1;
        } else {
#pragma omp for schedule(static)
            for (int64_t t = 0; t < total; t++) {
                int64_t item = t / c->frames, f = t % c->frames;
                for (int64_t k = 0; k < N; k++) {
                    const float *gk = g + ((item * bins + k) * c->frames + f) * 2;
                    b.in[k] = k < bins ? (nn_cpx){gk[0], -gk[1]} : (nn_cpx){0, 0};
                }
                nn_fft(p, b.in, b.out, b.scratch);
                float *fr = frames_buf + t * N;
                for (int64_t j = 0; j < N; j++) fr[j] = w[j] * b.out[j].re;
            }
        }
        free(b.in);
    }
    memset(dx, 0, sizeof *dx * (size_t)(c->batch * c->len));
#pragma omp parallel for if (total * N > NN_PAR_GRAIN)
    for (int64_t item = 0; item < c->batch; item++)
        for (int64_t f = 0; f < c->frames; f++) {
            const float *fr = frames_buf + (item * c->frames + f) * N;
            for (int64_t j = 0; j < N; j++) {
                int64_t i = source_index(c, f * c->hop + j);
                if (i >= 0) dx[item * c->len + i] += fr[j];
            }
        }
}

static nn_tensor *stft_apply(const nn_tensor *x, const nn_tensor *window, const stft_ctx *c);
static nn_tensor *adjoint_apply(const nn_tensor *g, const nn_tensor *window, const stft_ctx *c);

static int stft_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    const stft_ctx *c = NN_CTX(n, stft_ctx);
    nn_tensor *window = c->has_window ? nn_saved(n, 0) : NULL;
    if (c->has_window && !window) return -1;
    gin[0] = adjoint_apply(gout, window, c);
    return gin[0] ? 0 : -1;
}

static int adjoint_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    const stft_ctx *c = NN_CTX(n, stft_ctx);
    nn_tensor *window = c->has_window ? nn_saved(n, 0) : NULL;
    if (c->has_window && !window) return -1;
    gin[0] = stft_apply(gout, window, c);
    return gin[0] ? 0 : -1;
}

NN_OP_TWICE(stft_op, "stft", stft_backward, stft_ctx);
NN_OP_TWICE(stft_adjoint_op, "stft_adjoint", adjoint_backward, stft_ctx);

/* runs kernel on the contiguous input, then records op */
static nn_tensor *run(const nn_tensor *in, const nn_tensor *window, const stft_ctx *c, int forward) {
    int64_t bins = c->n_fft / 2 + 1;
    int64_t yshape[4] = {c->batch, bins, c->frames, 2}, xshape[2] = {c->batch, c->len};
    int one = c->ndim == 1;
    nn_fft_plan plan;
    if (nn_fft_plan_init(&plan, (int)c->n_fft) < 0) return NULL;
    int prev = nn_grad_off(), oom = 0;
    float *w = full_window(c, window), *frames_buf = NULL;
    nn_tensor *src = w ? nn_contiguous((nn_tensor *)in) : NULL, *out = NULL;
    if (src) out = forward ? nn_empty(NN_F32, 4 - one, yshape + one) : nn_empty(NN_F32, 2 - one, xshape + one);
    if (out && !forward) {
        frames_buf = malloc(sizeof(float) * (size_t)(c->batch * c->frames * c->n_fft));
        if (!frames_buf) oom = 1;
    }
    if (out && !oom) {
        if (forward) stft_kernel(c, nn_f32(src), w, &plan, nn_f32(out), &oom);
        else adjoint_kernel(c, nn_f32(src), w, &plan, frames_buf, nn_f32(out), &oom);
    }
    free(frames_buf);
    free(w);
    nn_fft_plan_free(&plan);
    nn_release(src);
    nn_grad_restore(prev);
    if (oom || !out) {
        nn_release(out);
        return out ? nn_fail(0, "out of memory (stft)") : NULL;
    }
    nn_node *node;
    out = nn_finish_saving(out, forward ? &stft_op : &stft_adjoint_op, 1, &in, window, &node);
    if (node) *NN_CTX(node, stft_ctx) = *c;
    return out;
}

static nn_tensor *stft_apply(const nn_tensor *x, const nn_tensor *window, const stft_ctx *c) {
    return run(x, window, c, 1);
}
static nn_tensor *adjoint_apply(const nn_tensor *g, const nn_tensor *window, const stft_ctx *c) {
    return run(g, window, c, 0);
}

nn_tensor *nn_stft(const nn_tensor *x, int64_t n_fft, int64_t hop, const nn_tensor *window,
                   int center, nn_pad_mode pad_mode, int normalized) {
    char s1[96];
    if (x->dtype != NN_F32 || x->ndim < 1 || x->ndim > 2)
        return nn_fail(1, "stft expects an f32 signal (L) or batch (B, L), got %s %s",
                       nn_dtype_name(x->dtype), nn_shape_str(x, s1, sizeof s1));
    if (n_fft < 1 || n_fft > (1 << 24)) return nn_fail(2, "stft: n_fft %lld must be in 1..2^24", (long long)n_fft);
    if (hop < 1) return nn_fail(3, "stft: hop_length %lld must be positive", (long long)hop);
    if (window && (window->dtype != NN_F32 || window->ndim != 1 || window->shape[0] < 1 ||
                   window->shape[0] > n_fft))
        return nn_fail(4, "stft: the window must be f32 (win_length) with win_length <= n_fft %lld, got %s",
                       (long long)n_fft, nn_shape_str(window, s1, sizeof s1));
    stft_ctx c = {.n_fft = n_fft, .hop = hop, .len = x->shape[x->ndim - 1],
                  .batch = x->ndim == 2 ? x->shape[0] : 1, .pad = center ? n_fft / 2 : 0,
                  .ndim = x->ndim, .has_window = window != NULL, .mode = (int)pad_mode,
                  .scale = normalized ? (float)(1.0 / sqrt((double)n_fft)) : 1.0f};
    if (c.len < 1) return nn_fail(1, "stft of an empty signal %s", nn_shape_str(x, s1, sizeof s1));
    if (center && pad_mode == NN_PAD_REFLECT && c.pad >= c.len)
        return nn_fail(1, "stft: reflect padding of %lld needs a signal longer than that, got %s",
                       (long long)c.pad, nn_shape_str(x, s1, sizeof s1));
    int64_t padded = c.len + 2 * c.pad;
    if (padded < n_fft)
        return nn_fail(1, "stft: signal %s is shorter than n_fft %lld", nn_shape_str(x, s1, sizeof s1),
                       (long long)n_fft);
    c.frames = 1 + (padded - n_fft) / hop;
    if (nn_shape_check(1, 4, (int64_t[]){c.batch, n_fft / 2 + 1, c.frames, 2}, sizeof(float)) < 0)
        return NULL;
    if ((double)c.batch * (double)c.frames * (double)n_fft > 0x1p36)
        return nn_fail(0, "out of memory (stft of %s with hop %lld)", nn_shape_str(x, s1, sizeof s1),
                       (long long)hop);
    return stft_apply(x, window, &c);
}
