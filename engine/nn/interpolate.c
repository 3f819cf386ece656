/* interpolate.c -- resizing (N, C, H, W) images: nearest (a remap, so any
 * dtype) and bilinear, with PyTorch's coordinate rules.
 *
 * Output pixel d reads source coordinate s along each axis: nearest s =
 * min(floor(d * scale), n - 1); bilinear s = (d + 0.5) scale - 0.5 clipped
 * at 0 (align_corners: s = d (n - 1) / (out - 1)), blending the two pixels
 * around s. scale = n / out, or 1 / scale_factor when the caller gives one
 * (as PyTorch does when asked by scale_factor). */
#include "autograd.h"
#include "nn_layers.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    int64_t lo, hi; /* the two source pixels */
    float w_lo, w_hi;
} tap;

/* the taps of every output coordinate along one axis of n -> out */
static void axis_taps(int64_t n, int64_t out, double scale_factor, int align_corners, tap *t) {
    double scale = scale_factor > 0 ? 1.0 / scale_factor : (double)n / (double)out;
    for (int64_t d = 0; d < out; d++) {
        double s = align_corners ? (out > 1 ? (double)d * (double)(n - 1) / (double)(out - 1) : 0)
                                 : ((double)d + 0.5) * scale - 0.5;
        if (s < 0) s = 0;
        int64_t lo = (int64_t)s;
        if (lo > n - 1) lo = n - 1;
        int64_t hi = lo < n - 1 ? lo + 1 : lo;
        float f = (float)(s - (double)lo);
        t[d] = (tap){lo, hi, 1.0f - f, f};
    }
}

typedef struct {
    int64_t planes, h, w, oh, ow;
    double sh, sw; /* scale factors, or 0 */
    int align_corners;
} bilinear_ctx;

static int bilinear_taps(const bilinear_ctx *c, tap **ty, tap **tx) {
    *ty = malloc(sizeof **ty * (size_t)(c->oh + c->ow));
    if (!*ty) return nn_failed(0, "out of memory");
    *tx = *ty + c->oh;
    axis_taps(c->h, c->oh, c->sh, c->align_corners, *ty);
    axis_taps(c->w, c->ow, c->sw, c->align_corners, *tx);
    return 0;
}

static int bilinear_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    const bilinear_ctx *c = NN_CTX(n, bilinear_ctx);
    tap *ty, *tx;
    nn_tensor *g = nn_contiguous((nn_tensor *)gout);
    nn_tensor *dx = g ? nn_zeros(NN_F32, 4, n->in[0].shape) : NULL;
    if (!dx || bilinear_taps(c, &ty, &tx) < 0) {
        nn_release(g);
        nn_release(dx);
        return -1;
    }
    const float *gv = nn_f32(g);
    float *d = nn_f32(dx);
#pragma omp parallel for if (c->planes * c->oh * c->ow > NN_PAR_GRAIN)
    for (int64_t p = 0; p < c->planes; p++) {
        float *plane = d + p * c->h * c->w;
        const float *go = gv + p * c->oh * c->ow;
        for (int64_t oy = 0; oy < c->oh; oy++) {
            tap a = ty[oy];
            for (int64_t ox = 0; ox < c->ow; ox++) {
                tap b = tx[ox];
                float v = go[oy * c->ow + ox];
                plane[a.lo * c->w + b.lo] += v * a.w_lo * b.w_lo;
                plane[a.lo * c->w + b.hi] += v * a.w_lo * b.w_hi;
                plane[a.hi * c->w + b.lo] += v * a.w_hi * b.w_lo;
                plane[a.hi * c->w + b.hi] += v * a.w_hi * b.w_hi;
            }
        }
    }
    free(ty);
    nn_release(g);
    gin[0] = dx;
    return 0;
}

NN_OP(bilinear_op, "upsample_bilinear2d", bilinear_backward, bilinear_ctx);

static nn_tensor *bilinear(const nn_tensor *x, const bilinear_ctx *c) {
    tap *ty, *tx;
    if (bilinear_taps(c, &ty, &tx) < 0) return NULL;
    int prev = nn_grad_off();
    nn_tensor *xc = nn_contiguous((nn_tensor *)x);
    nn_tensor *y = xc ? nn_empty(NN_F32, 4, (int64_t[]){x->shape[0], x->shape[1], c->oh, c->ow}) : NULL;
    if (y) {
        const float *xv = nn_f32(xc);
        float *yv = nn_f32(y);
#pragma omp parallel for if (c->planes * c->oh * c->ow > NN_PAR_GRAIN)
        for (int64_t p = 0; p < c->planes; p++) {
            const float *plane = xv + p * c->h * c->w;
            float *out = yv + p * c->oh * c->ow;
            for (int64_t oy = 0; oy < c->oh; oy++) {
                tap a = ty[oy];
                const float *r0 = plane + a.lo * c->w, *r1 = plane + a.hi * c->w;
                for (int64_t ox = 0; ox < c->ow; ox++) {
                    tap b = tx[ox];
                    out[oy * c->ow + ox] = a.w_lo * (b.w_lo * r0[b.lo] + b.w_hi * r0[b.hi]) +
                                           a.w_hi * (b.w_lo * r1[b.lo] + b.w_hi * r1[b.hi]);
                }
            }
        }
    }
    free(ty);
    nn_release(xc);
    nn_grad_restore(prev);
    nn_node *node;
    y = nn_finish_op(y, &bilinear_op, 1, &x, &node);
    if (node) *NN_CTX(node, bilinear_ctx) = *c;
    return y;
}

nn_tensor *nn_interpolate(const nn_tensor *x, const int64_t *size, const double *scale_factor,
                          nn_interp_mode mode, int align_corners) {
    char s1[96];
    if (x->ndim != 4 || (mode == NN_INTERP_BILINEAR && x->dtype != NN_F32))
        return nn_fail(1, "interpolate expects %s (N, C, H, W) input, got %s",
                       mode == NN_INTERP_BILINEAR ? "an f32" : "an", nn_shape_str(x, s1, 96));
    if (size[0] < 1 || size[1] < 1)
        return nn_fail(2, "interpolate: output size %lldx%lld must be positive",
                       (long long)size[0], (long long)size[1]);
    if (nn_shape_check(2, 4, (int64_t[]){x->shape[0], x->shape[1], size[0], size[1]}, sizeof(float)) < 0)
        return NULL;
    if (size[0] > (1 << 30) || size[1] > (1 << 30) ||
        (double)x->shape[0] * (double)x->shape[1] * (double)size[0] * (double)size[1] > 0x1p38)
        return nn_fail(0, "out of memory (interpolate to %lldx%lld)", (long long)size[0],
                       (long long)size[1]);
    if (x->shape[2] < 1 || x->shape[3] < 1)
        return nn_fail(1, "interpolate of an empty image %s", nn_shape_str(x, s1, 96));
    double sh = scale_factor ? scale_factor[0] : 0, sw = scale_factor ? scale_factor[1] : 0;
    if (mode == NN_INTERP_BILINEAR) {
        bilinear_ctx c = {x->shape[0] * x->shape[1], x->shape[2], x->shape[3], size[0], size[1],
                          align_corners ? 0 : sh, align_corners ? 0 : sw, align_corners};
        return bilinear(x, &c);
    }
    if (align_corners) return nn_fail(4, "interpolate: align_corners is for bilinear only");
    int64_t *src[2], n[2] = {x->shape[2], x->shape[3]};
    src[0] = malloc(sizeof(int64_t) * (size_t)(size[0] + size[1]));
    if (!src[0]) return nn_fail(0, "out of memory");
    src[1] = src[0] + size[0];
    for (int a = 0; a < 2; a++) {
        double f = a ? sw : sh, scale = f > 0 ? 1.0 / f : (double)n[a] / (double)size[a];
        for (int64_t d = 0; d < size[a]; d++) {
            int64_t s = (int64_t)floor((double)d * scale);
            src[a][d] = s < n[a] - 1 ? s : n[a] - 1;
        }
    }
    nn_tensor *y = nn_remap_separable(x, 2, size, src, 0, "upsample_nearest2d");
    free(src[0]);
    return y;
}
