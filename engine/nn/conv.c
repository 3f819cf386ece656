/* conv.c -- 2-D convolution as im2col + GEMM, with col2im backward.
 *
 * Shapes: x (N, Ci, H, W), w (Co, Ci, KH, KW), b (Co) or NULL ->
 * y (N, Co, OH, OW); K = Ci KH KW patch values, L = OH OW positions.
 * patches (N, L, K) holds one row per output position. Per image b, with
 * P = patches[b] (L, K) and G = dy[b] (Co, L):
 *   y[b] (Co, L) = w (Co, K) @ P^T + bias    (written in place: no transpose)
 *   dW (Co, K)  += G @ P                     (patches kept from the forward)
 *   dP (L, K)    = G^T @ w,  then col2im adds dP back into dx[b].
 * One sgemm per image keeps every operand in the layout it already has;
 * measured here this beats one batch-wide product plus the two transposes
 * it needs. */
#include "autograd.h"
#include "nn_layers.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t n, ci, h, w, co, kh, kw, oh, ow;
    int64_t sh, sw, ph, pw, dh, dw;
    int bf16; /* made under autocast: the products are in bf16 both ways */
} conv_geom;

/* (y, x) of patch element (c, i, j) for output (oy, ox), or -1 if padding */
static inline int64_t source(const conv_geom *g, int64_t i, int64_t j, int64_t oy,
                             int64_t ox) {
    int64_t y = oy * g->sh - g->ph + i * g->dh, x = ox * g->sw - g->pw + j * g->dw;
    return (y < 0 || y >= g->h || x < 0 || x >= g->w) ? -1 : y * g->w + x;
}

static void im2col(const conv_geom *g, const float *x, float *patches) {
    int64_t l = g->oh * g->ow, k = g->ci * g->kh * g->kw, khw = g->kh * g->kw;
#pragma omp parallel for if (g->n * l * k > NN_PAR_GRAIN)
    for (int64_t pos = 0; pos < g->n * l; pos++) {
        int64_t b = pos / l, oy = pos % l / g->ow, ox = pos % g->ow;
        const float *img = x + b * g->ci * g->h * g->w;
        float *row = patches + pos * k; /* written in order: c, then i, then j */
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t at = source(g, i, j, oy, ox), e = i * g->kw + j;
                if (at < 0)
                    for (int64_t c = 0; c < g->ci; c++) row[c * khw + e] = 0.0f;
                else
                    for (int64_t c = 0; c < g->ci; c++) row[c * khw + e] = img[c * g->h * g->w + at];
            }
    }
}

static void col2im(const conv_geom *g, const float *patches, float *dx) {
    int64_t l = g->oh * g->ow, k = g->ci * g->kh * g->kw, khw = g->kh * g->kw;
    int64_t img_size = g->ci * g->h * g->w;
#pragma omp parallel for if (g->n * l * k > NN_PAR_GRAIN)
    for (int64_t b = 0; b < g->n; b++) {
        float *img = dx + b * img_size;
        memset(img, 0, img_size * sizeof *img);
        for (int64_t p = 0; p < l; p++) {
            const float *row = patches + (b * l + p) * k;
            int64_t oy = p / g->ow, ox = p % g->ow;
            for (int64_t i = 0; i < g->kh; i++)
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t at = source(g, i, j, oy, ox), e = i * g->kw + j;
                    if (at < 0) continue;
                    for (int64_t c = 0; c < g->ci; c++)
                        img[c * g->h * g->w + at] += row[c * khw + e];
                }
        }
    }
}

enum { SAVED_W, SAVED_PATCHES }; /* slots; the context is the geometry */

static int conv_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    conv_geom g = *NN_CTX(n, conv_geom);
    bool nx = nn_input_needs(n, 0), nw = nn_input_needs(n, 1);
    nn_tensor *w = nx ? nn_saved(n, SAVED_W) : NULL;
    nn_tensor *patches = nw ? nn_saved(n, SAVED_PATCHES) : NULL;
    if ((nx && !w) || (nw && !patches)) return -1;
    int64_t l = g.oh * g.ow, k = g.ci * g.kh * g.kw;
    nn_tensor *gc = nn_contiguous((nn_tensor *)gout);
    int rc = gc ? 0 : -1;
    const float *gv = gc ? nn_f32(gc) : NULL, *pv = patches ? nn_f32(patches) : NULL;
    if (rc == 0 && nn_input_needs(n, 1)) { /* dW (Co, K) = sum over b of G P */
        gin[1] = nn_zeros(NN_F32, 4, n->in[1].shape);
        if (!gin[1]) rc = -1;
        for (int64_t b = 0; rc == 0 && b < g.n && l; b++)
            rc = nn_gemm(g.bf16, 0, 0, g.co, k, l, 1.0f, gv + b * g.co * l, l, pv + b * l * k, k,
                          1.0f, nn_f32(gin[1]), k);
    }
    if (rc == 0 && nn_input_needs(n, 0)) { /* dP (L, K) = G^T w, per image */
        nn_tensor *dp = nn_empty(NN_F32, 3, (int64_t[]){g.n, l, k});
        gin[0] = dp ? nn_empty(NN_F32, 4, n->in[0].shape) : NULL;
        if (!gin[0]) rc = -1;
        for (int64_t b = 0; rc == 0 && b < g.n && l; b++)
            rc = nn_gemm(g.bf16, 1, 0, l, k, g.co, 1.0f, gv + b * g.co * l, l, nn_f32(w), k, 0.0f,
                          nn_f32(dp) + b * l * k, k);
        if (rc == 0) col2im(&g, nn_f32(dp), nn_f32(gin[0]));
        nn_release(dp);
    }
    if (rc == 0 && n->nin > 2 && nn_input_needs(n, 2)) {
        gin[2] = nn_sum(gc, 3, (int[]){0, 2, 3}, 0);
        if (!gin[2]) rc = -1;
    }
    nn_release(gc);
    return rc;
}

NN_OP(conv_op, "conv2d", conv_backward, conv_geom);

nn_tensor *nn_conv2d(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                     const int *stride, const int *padding, const int *dilation) {
    char s1[96], s2[96];
    const nn_tensor *half_in[3] = {x, w, b};
    if (nn_any_half(3, half_in)) { /* in f32, rounded back */
        nn_tensor *f[3];
        if (nn_widen_all(3, half_in, f) < 0) return NULL;
        nn_tensor *y = nn_conv2d(f[0], f[1], f[2], stride, padding, dilation);
        nn_release_all(3, f);
        return nn_narrow_to(y, nn_half_result(3, half_in));
    }
    if (x->dtype != NN_F32 || x->ndim != 4)
        return nn_fail(1, "conv2d expects an f32 (N, C, H, W) input, got %s",
                       nn_shape_str(x, s1, 96));
    if (w->dtype != NN_F32 || w->ndim != 4 || w->shape[1] != x->shape[1])
        return nn_fail(2, "conv2d weight %s does not match input %s "
                          "(expected (out, %lld, kh, kw))", nn_shape_str(w, s1, 96),
                       nn_shape_str(x, s2, 96), (long long)x->shape[1]);
    if (b && (b->dtype != NN_F32 || b->ndim != 1 || b->shape[0] != w->shape[0]))
        return nn_fail(3, "conv2d bias %s does not match %lld output channels",
                       nn_shape_str(b, s1, 96), (long long)w->shape[0]);
    conv_geom g = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0],
                   w->shape[2], w->shape[3], 0, 0, stride[0], stride[1], padding[0],
                   padding[1], dilation[0], dilation[1], 0};
    if (g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 || g.ph < 0 || g.pw < 0)
        return nn_fail(4, "conv2d: stride and dilation must be >= 1, padding >= 0");
    int64_t span_h = g.dh * (g.kh - 1) + 1, span_w = g.dw * (g.kw - 1) + 1;
    if (g.h + 2 * g.ph < span_h || g.w + 2 * g.pw < span_w)
        return nn_fail(2, "conv2d: kernel %lldx%lld larger than the padded input %s",
                       (long long)g.kh, (long long)g.kw, nn_shape_str(x, s1, 96));
    g.oh = (g.h + 2 * g.ph - span_h) / g.sh + 1;
    g.ow = (g.w + 2 * g.pw - span_w) / g.sw + 1;
    int64_t nl = g.n * g.oh * g.ow, k = g.ci * g.kh * g.kw;
    g.bf16 = nn_autocast() == NN_BF16;
    int prev = nn_grad_off();
    nn_tensor *xc = nn_contiguous((nn_tensor *)x), *wc = nn_contiguous((nn_tensor *)w);
    int64_t l = g.oh * g.ow;
    nn_tensor *patches = nn_empty(NN_F32, 3, (int64_t[]){g.n, l, k});
    nn_tensor *y = nn_empty(NN_F32, 4, (int64_t[]){g.n, g.co, g.oh, g.ow});
    int rc = xc && wc && patches && y ? 0 : -1;
    if (rc == 0) { /* every output plane starts as its bias */
        float *yv = nn_f32(y);
        for (int64_t plane = 0; plane < g.n * g.co; plane++) {
            float add = b ? ((float *)nn_data(b))[plane % g.co * b->stride[0]] : 0.0f;
            for (int64_t p = 0; p < l; p++) yv[plane * l + p] = add;
        }
    }
    if (rc == 0 && nl) im2col(&g, nn_f32(xc), nn_f32(patches));
    for (int64_t bi = 0; rc == 0 && bi < g.n && l; bi++)
        rc = nn_gemm(g.bf16, 0, 1, g.co, l, k, 1.0f, nn_f32(wc), k, nn_f32(patches) + bi * l * k,
                      k, 1.0f, nn_f32(y) + bi * g.co * l, l);
    if (rc < 0) {
        nn_release(y);
        y = NULL;
    }
    nn_grad_restore(prev);
    const nn_tensor *ins[3] = {x, w, b};
    nn_node *node;
    y = nn_finish_op(y, &conv_op, b ? 3 : 2, ins, &node);
    if (node) { /* keeping the patches costs N L K floats and saves an im2col */
        *NN_CTX(node, conv_geom) = g;
        if ((nn_input_needs(node, 0) && nn_save(node, SAVED_W, wc) < 0) ||
            (nn_input_needs(node, 1) && nn_save(node, SAVED_PATCHES, patches) < 0)) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_release(patches);
    nn_release(xc);
    nn_release(wc);
    return y;
}

/* groups > 1: input channels and filters in `groups` equal parts, part i of
 * the output from part i of the input alone (PyTorch's groups); the parts
 * are views, so autograd runs through narrow, conv2d and cat */
nn_tensor *nn_conv2d_groups(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                            const int *stride, const int *padding, const int *dilation,
                            int64_t groups) {
    if (groups == 1) return nn_conv2d(x, w, b, stride, padding, dilation);
    char s1[96], s2[96];
    if (groups < 1 || groups > 4096) return nn_fail(0, "conv2d: groups must be in 1..4096");
    if (x->ndim != 4 || w->ndim != 4 || x->shape[1] != w->shape[1] * groups ||
        w->shape[0] % groups)
        return nn_fail(2, "conv2d with %lld groups: weight %s does not fit input %s "
                          "(expected (out, C / groups, kh, kw), out divisible by groups)",
                       (long long)groups, nn_shape_str(w, s1, 96), nn_shape_str(x, s2, 96));
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return nn_fail(3, "conv2d bias %s does not match %lld output channels",
                       nn_shape_str(b, s1, 96), (long long)w->shape[0]);
    int64_t cin = w->shape[1], cout = w->shape[0] / groups;
    nn_tensor **parts = calloc((size_t)groups, sizeof *parts);
    if (!parts) return nn_fail(0, "out of memory");
    nn_tensor *y = NULL;
    int64_t i = 0;
    for (; i < groups; i++) {
        nn_tensor *xg = nn_narrow((nn_tensor *)x, 1, i * cin, cin);
        nn_tensor *wg = xg ? nn_narrow((nn_tensor *)w, 0, i * cout, cout) : NULL;
        nn_tensor *bg = wg && b ? nn_narrow((nn_tensor *)b, 0, i * cout, cout) : NULL;
        if (wg && (bg || !b)) parts[i] = nn_conv2d(xg, wg, bg, stride, padding, dilation);
        nn_release(xg);
        nn_release(wg);
        nn_release(bg);
        if (!parts[i]) break;
    }
    if (i == groups) y = nn_cat(parts, (int)groups, 1);
    for (int64_t k = 0; k < groups; k++) nn_release(parts[k]);
    free(parts);
    return y;
}
