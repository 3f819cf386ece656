/* resample.c -- band-limited resampling as torchaudio.functional.resample
 * computes it (sinc_interp_hann): rates reduced by their gcd to orig and
 * new; output phase p of block i is sum_t K[p][t] xpad[i orig + t], with
 * K[p][t] = s sinc(pi b (t - w)/orig - pi b p/new) cos^2(...)/..., b =
 * min(orig, new) rolloff, w = ceil(width orig / b) taps each side and
 * xpad x with w zeros before and w + orig after; ceil(new L / orig)
 * samples kept. Linear in x: the backward scatters through K. */
#include "autograd.h"
#include "nn_layers.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    int64_t orig, new_, taps, width, len, out_len, rows;
    int lowpass;
    double rolloff;
} resample_ctx;

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        int64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* K as (new, taps) floats, computed in double */
static float *sinc_kernel(const resample_ctx *c) {
    float *k = malloc(sizeof *k * (size_t)(c->new_ * c->taps));
    if (!k) return nn_fail(0, "out of memory (resample kernel)");
    double base = (double)(c->orig < c->new_ ? c->orig : c->new_) * c->rolloff, lw = c->lowpass;
    for (int64_t p = 0; p < c->new_; p++)
        for (int64_t j = 0; j < c->taps; j++) {
            double t = (-(double)p / (double)c->new_ + (double)(j - c->width) / (double)c->orig) * base;
            if (t < -lw) t = -lw;
            if (t > lw) t = lw;
            double win = cos(t * M_PI / lw / 2), x = t * M_PI;
            k[p * c->taps + j] = (float)((x == 0 ? 1.0 : sin(x) / x) * win * win * base / (double)c->orig);
        }
    return k;
}

static int resample_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    const resample_ctx *c = NN_CTX(n, resample_ctx);
    float *k = sinc_kernel(c);
    nn_tensor *g = k ? nn_contiguous((nn_tensor *)gout) : NULL;
    nn_tensor *dx = g ? nn_zeros(NN_F32, n->in[0].ndim, n->in[0].shape) : NULL;
    if (dx) {
        const float *gv = nn_f32(g);
        float *d = nn_f32(dx);
#pragma omp parallel for if (c->rows * c->out_len * c->taps > NN_PAR_GRAIN)
        for (int64_t r = 0; r < c->rows; r++)
            for (int64_t o = 0; o < c->out_len; o++) {
                int64_t i = o / c->new_, p = o % c->new_, start = i * c->orig - c->width;
                float v = gv[r * c->out_len + o];
                const float *kp = k + p * c->taps;
                for (int64_t j = 0; j < c->taps; j++) {
                    int64_t s = start + j;
                    if (s >= 0 && s < c->len) d[r * c->len + s] += v * kp[j];
                }
            }
    }
    free(k);
    nn_release(g);
    gin[0] = dx;
    return dx ? 0 : -1;
}

NN_OP(resample_op, "resample", resample_backward, resample_ctx);

nn_tensor *nn_resample(const nn_tensor *x, int64_t orig_freq, int64_t new_freq, int lowpass_width,
                       double rolloff) {
    char s1[96];
    if (x->dtype != NN_F32 || x->ndim < 1)
        return nn_fail(1, "resample expects an f32 signal (..., L), got %s %s", nn_dtype_name(x->dtype),
                       nn_shape_str(x, s1, sizeof s1));
    if (orig_freq < 1 || new_freq < 1 || orig_freq > (1 << 24) || new_freq > (1 << 24))
        return nn_fail(2, "resample: rates %lld and %lld must be in 1..2^24", (long long)orig_freq,
                       (long long)new_freq);
    if (lowpass_width < 1 || lowpass_width > 1024)
        return nn_fail(4, "resample: lowpass_filter_width %d must be in 1..1024", lowpass_width);
    if (!(rolloff > 0 && rolloff <= 1)) return nn_fail(5, "resample: rolloff %g must be in (0, 1]", rolloff);
    if (orig_freq == new_freq) return nn_contiguous((nn_tensor *)x); /* as torchaudio: unchanged */
    int64_t g = gcd64(orig_freq, new_freq);
    resample_ctx c = {.orig = orig_freq / g, .new_ = new_freq / g, .len = x->shape[x->ndim - 1],
                      .lowpass = lowpass_width, .rolloff = rolloff};
    double base = (double)(c.orig < c.new_ ? c.orig : c.new_) * rolloff;
    c.width = (int64_t)ceil((double)lowpass_width * (double)c.orig / base);
    c.taps = 2 * c.width + c.orig;
    c.out_len = (int64_t)ceil((double)c.new_ * (double)c.len / (double)c.orig);
    c.rows = c.len ? nn_numel(x) / c.len : 0;
    if ((double)c.new_ * (double)c.taps > 0x1p28)
        return nn_fail(2, "resample: %lld -> %lld Hz reduces to %lld -> %lld, whose kernel is too large",
                       (long long)orig_freq, (long long)new_freq, (long long)c.orig, (long long)c.new_);
    int64_t shape[NN_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[x->ndim - 1] = c.out_len;
    if (nn_shape_check(1, x->ndim, shape, sizeof(float)) < 0) return NULL;
    float *k = sinc_kernel(&c);
    int prev = nn_grad_off();
    nn_tensor *xc = k ? nn_contiguous((nn_tensor *)x) : NULL;
    nn_tensor *y = xc ? nn_empty(NN_F32, x->ndim, shape) : NULL;
    if (y) {
        const float *xv = nn_f32(xc);
        float *yv = nn_f32(y);
#pragma omp parallel for if (c.rows * c.out_len * c.taps > NN_PAR_GRAIN)
        for (int64_t r = 0; r < c.rows; r++)
            for (int64_t o = 0; o < c.out_len; o++) {
                int64_t i = o / c.new_, p = o % c.new_, start = i * c.orig - c.width;
                const float *kp = k + p * c.taps, *row = xv + r * c.len;
                int64_t j0 = start < 0 ? -start : 0, j1 = c.len - start < c.taps ? c.len - start : c.taps;
                float s = 0;
                for (int64_t j = j0; j < j1; j++) s += kp[j] * row[start + j];
                yv[r * c.out_len + o] = s;
            }
    }
    free(k);
    nn_release(xc);
    nn_grad_restore(prev);
    nn_node *node;
    y = nn_finish_op(y, &resample_op, 1, &x, &node);
    if (node) *NN_CTX(node, resample_ctx) = c;
    return y;
}
