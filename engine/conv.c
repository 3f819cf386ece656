/* conv.c -- 2-D convolution as im2col + one sgemm, with col2im backward.
 *
 * Shapes: x (N, Ci, H, W), w (Co, Ci, KH, KW), b (Co) or NULL ->
 * y (N, Co, OH, OW); K = Ci KH KW patch values, L = OH OW positions.
 * cols (K, N L) holds every patch of the batch as a column, so the whole
 * batch is one product: (Co, K) @ (K, N L) -> (Co, N L), then permuted to
 * (N, Co, L) with the bias added. Backward: dW = gT colsT, dcols = wT gT,
 * and col2im adds dcols back into dx plane by plane (no write races). */
#include "autograd.h"

#include <string.h>

typedef struct {
    int64_t n, ci, h, w, co, kh, kw, oh, ow;
    int64_t sh, sw, ph, pw, dh, dw;
} conv_geom;

static void im2col(const conv_geom *g, const float *x, float *cols) {
    int64_t l = g->oh * g->ow, nl = g->n * l, k = g->ci * g->kh * g->kw;
#pragma omp parallel for if (k * nl > NN_PAR_GRAIN)
    for (int64_t row = 0; row < k; row++) {
        int64_t c = row / (g->kh * g->kw), i = row / g->kw % g->kh, j = row % g->kw;
        float *dst = cols + row * nl;
        for (int64_t b = 0; b < g->n; b++) {
            const float *plane = x + (b * g->ci + c) * g->h * g->w;
            for (int64_t oy = 0; oy < g->oh; oy++) {
                int64_t y = oy * g->sh - g->ph + i * g->dh;
                float *d = dst + b * l + oy * g->ow;
                if (y < 0 || y >= g->h) {
                    memset(d, 0, g->ow * sizeof *d);
                    continue;
                }
                for (int64_t ox = 0; ox < g->ow; ox++) {
                    int64_t xx = ox * g->sw - g->pw + j * g->dw;
                    d[ox] = (xx >= 0 && xx < g->w) ? plane[y * g->w + xx] : 0.0f;
                }
            }
        }
    }
}

static void col2im(const conv_geom *g, const float *cols, float *dx) {
    int64_t l = g->oh * g->ow, nl = g->n * l;
#pragma omp parallel for if (g->n * g->ci * g->h * g->w > NN_PAR_GRAIN)
    for (int64_t plane_id = 0; plane_id < g->n * g->ci; plane_id++) {
        int64_t b = plane_id / g->ci, c = plane_id % g->ci;
        float *plane = dx + plane_id * g->h * g->w;
        memset(plane, 0, g->h * g->w * sizeof *plane);
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                const float *src = cols + ((c * g->kh + i) * g->kw + j) * nl + b * l;
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t y = oy * g->sh - g->ph + i * g->dh;
                    if (y < 0 || y >= g->h) continue;
                    for (int64_t ox = 0; ox < g->ow; ox++) {
                        int64_t xx = ox * g->sw - g->pw + j * g->dw;
                        if (xx >= 0 && xx < g->w) plane[y * g->w + xx] += src[oy * g->ow + ox];
                    }
                }
            }
    }
}

static void geom_from_node(const nn_node *n, conv_geom *g) {
    memcpy(g, n->larg, sizeof(int64_t) * 8);
    g->oh = n->iarg[0]; g->ow = n->iarg[1];
    g->sh = n->iarg[2]; g->sw = n->iarg[3]; g->ph = n->iarg[4];
    g->pw = n->iarg[5]; g->dh = n->iarg[6]; g->dw = n->iarg[7];
}

static int conv_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    conv_geom g;
    geom_from_node(n, &g);
    nn_tensor *x = nn_saved(n, 0), *w = nn_saved(n, 1);
    if (!x || !w) return -1;
    int64_t l = g.oh * g.ow, nl = g.n * l, k = g.ci * g.kh * g.kw;
    /* gT (Co, N L) from g (N, Co, L) */
    nn_tensor *gt = nn_empty(NN_F32, 2, (int64_t[]){g.co, nl});
    nn_tensor *gc = nn_contiguous((nn_tensor *)gout);
    int rc = gt && gc ? 0 : -1;
    if (rc == 0) {
        const float *src = nn_f32(gc);
        float *dst = nn_f32(gt);
#pragma omp parallel for if (g.co * nl > NN_PAR_GRAIN)
        for (int64_t co = 0; co < g.co; co++)
            for (int64_t b = 0; b < g.n; b++)
                memcpy(dst + co * nl + b * l, src + (b * g.co + co) * l, l * sizeof *dst);
    }
    if (rc == 0 && nn_input_needs(n, 1)) { /* dW (Co, K) = gT (Co, NL) @ cols^T */
        nn_tensor *cols = nn_empty(NN_F32, 2, (int64_t[]){k, nl});
        gin[1] = cols ? nn_empty(NN_F32, 4, n->in[1].shape) : NULL;
        if (gin[1]) {
            im2col(&g, nn_f32(x), nn_f32(cols));
            rc = nl ? nn_sgemm(0, 1, g.co, k, nl, 1.0f, nn_f32(gt), nl, nn_f32(cols), nl,
                               0.0f, nn_f32(gin[1]), k)
                    : nn_fill_(gin[1], 0);
        } else {
            rc = -1;
        }
        nn_release(cols);
    }
    if (rc == 0 && nn_input_needs(n, 0)) { /* dcols (K, NL) = W^T @ gT */
        nn_tensor *dcols = nn_empty(NN_F32, 2, (int64_t[]){k, nl});
        gin[0] = dcols ? nn_empty(NN_F32, 4, x->shape) : NULL;
        if (gin[0] && nl)
            rc = nn_sgemm(1, 0, k, nl, g.co, 1.0f, nn_f32(w), k, nn_f32(gt), nl, 0.0f,
                          nn_f32(dcols), nl);
        if (!gin[0]) rc = -1;
        if (rc == 0) col2im(&g, nn_f32(dcols), nn_f32(gin[0]));
        nn_release(dcols);
    }
    if (rc == 0 && n->nin > 2 && nn_input_needs(n, 2)) {
        gin[2] = nn_sum(gt, 1, (int[]){1}, 0);
        if (!gin[2]) rc = -1;
    }
    nn_release(gt);
    nn_release(gc);
    return rc;
}

nn_tensor *nn_conv2d(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                     const int *stride, const int *padding, const int *dilation) {
    char s1[96], s2[96];
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
                   padding[1], dilation[0], dilation[1]};
    if (g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 || g.ph < 0 || g.pw < 0)
        return nn_fail(4, "conv2d: stride and dilation must be >= 1, padding >= 0");
    int64_t span_h = g.dh * (g.kh - 1) + 1, span_w = g.dw * (g.kw - 1) + 1;
    if (g.h + 2 * g.ph < span_h || g.w + 2 * g.pw < span_w)
        return nn_fail(2, "conv2d: kernel %lldx%lld larger than the padded input %s",
                       (long long)g.kh, (long long)g.kw, nn_shape_str(x, s1, 96));
    g.oh = (g.h + 2 * g.ph - span_h) / g.sh + 1;
    g.ow = (g.w + 2 * g.pw - span_w) / g.sw + 1;
    int64_t l = g.oh * g.ow, nl = g.n * l, k = g.ci * g.kh * g.kw;
    int prev = nn_grad_off();
    nn_tensor *xc = nn_contiguous((nn_tensor *)x), *wc = nn_contiguous((nn_tensor *)w);
    nn_tensor *cols = nn_empty(NN_F32, 2, (int64_t[]){k, nl});
    nn_tensor *tmp = nn_empty(NN_F32, 2, (int64_t[]){g.co, nl});
    nn_tensor *y = nn_empty(NN_F32, 4, (int64_t[]){g.n, g.co, g.oh, g.ow});
    int rc = xc && wc && cols && tmp && y ? 0 : -1;
    if (rc == 0 && nl) {
        im2col(&g, nn_f32(xc), nn_f32(cols));
        rc = nn_sgemm(0, 0, g.co, nl, k, 1.0f, nn_f32(wc), k, nn_f32(cols), nl, 0.0f,
                      nn_f32(tmp), nl);
    }
    if (rc == 0) {
        const float *t = nn_f32(tmp), *bv = b ? nn_f32(b) : NULL;
        float *out = nn_f32(y);
        int64_t bs = b ? b->stride[0] : 0;
#pragma omp parallel for if (nl * g.co > NN_PAR_GRAIN)
        for (int64_t plane = 0; plane < g.n * g.co; plane++) {
            int64_t bi = plane / g.co, co = plane % g.co;
            float bias = bv ? bv[co * bs] : 0.0f;
            const float *src = t + co * nl + bi * l;
            for (int64_t i = 0; i < l; i++) out[plane * l + i] = src[i] + bias;
        }
    }
    nn_release(cols);
    nn_release(tmp);
    if (rc < 0) {
        nn_release(y);
        y = NULL;
    }
    nn_grad_restore(prev);
    const nn_tensor *ins[3] = {x, w, b};
    nn_node *node;
    y = nn_finish_op(y, "conv2d", conv_backward, b ? 3 : 2, ins, &node);
    if (node) {
        memcpy(node->larg, &g, sizeof(int64_t) * 8);
        int64_t rest[8] = {g.oh, g.ow, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
        for (int i = 0; i < 8; i++) node->iarg[i] = (int)rest[i];
        if (nn_save(node, xc) < 0 || nn_save(node, wc) < 0) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_release(xc);
    nn_release(wc);
    return y;
}
