/* depthwise.c -- depthwise convolution (groups = input channels) by direct
 * loops. im2col + GEMM is a poor fit here: each group's product is one
 * filter row against K = KH KW patch values, so the call overhead and the
 * patch copy dominate (measured 30x slower than PyTorch). Each output
 * plane is a sum of KH KW shifted, scaled copies of its input plane; the
 * innermost loop runs along an output row, over the columns whose source
 * is inside the image, so it vectorises for stride 1.
 * Planes are independent: forward and the input gradient go parallel over
 * (image, channel) planes, the weight gradient over filters. */
#include "autograd.h"
#include "conv_cols.h"
#include "nn_layers.h"

#include <string.h>

/* the output columns [*lo, *hi) whose source column for kernel column j
 * lies inside the image */
static void valid_cols(const nn_conv_geom *g, int64_t j, int64_t *lo, int64_t *hi) {
    int64_t off = j * g->dw - g->pw; /* source = ox * sw + off */
    int64_t a = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
    int64_t b = g->w - 1 - off < 0 ? 0 : (g->w - 1 - off) / g->sw + 1;
    *lo = a;
    *hi = b < g->ow ? b : g->ow;
}

/* out plane (OH, OW) += sum over the kernel of w[i][j] * the shifted plane x */
static void plane_forward(const nn_conv_geom *g, const float *x, const float *w, float *out) {
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t y = oy * g->sh - g->ph + i * g->dh;
            if (y < 0 || y >= g->h) continue;
            const float *row = x + y * g->w;
            float *o = out + oy * g->ow;
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t lo, hi, off = j * g->dw - g->pw;
                valid_cols(g, j, &lo, &hi);
                float k = w[i * g->kw + j];
                for (int64_t ox = lo; ox < hi; ox++) o[ox] += k * row[ox * g->sw + off];
            }
        }
}

/* dx plane += the transpose of plane_forward applied to gout */
static void plane_grad_input(const nn_conv_geom *g, const float *gout, const float *w, float *dx) {
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t y = oy * g->sh - g->ph + i * g->dh;
            if (y < 0 || y >= g->h) continue;
            float *row = dx + y * g->w;
            const float *go = gout + oy * g->ow;
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t lo, hi, off = j * g->dw - g->pw;
                valid_cols(g, j, &lo, &hi);
                float k = w[i * g->kw + j];
                for (int64_t ox = lo; ox < hi; ox++) row[ox * g->sw + off] += k * go[ox];
            }
        }
}

/* dw (KH KW) += the correlation of gout with the shifted plane x */
static void plane_grad_weight(const nn_conv_geom *g, const float *gout, const float *x, float *dw) {
    for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t y = oy * g->sh - g->ph + i * g->dh;
            if (y < 0 || y >= g->h) continue;
            const float *row = x + y * g->w, *go = gout + oy * g->ow;
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t lo, hi, off = j * g->dw - g->pw;
                valid_cols(g, j, &lo, &hi);
                float acc = 0;
                for (int64_t ox = lo; ox < hi; ox++) acc += go[ox] * row[ox * g->sw + off];
                dw[i * g->kw + j] += acc;
            }
        }
}

enum { SAVED_X, SAVED_W };

static int depthwise_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    nn_conv_geom g = *NN_CTX(n, nn_conv_geom);
    nn_tensor *x = nn_saved(n, SAVED_X), *w = nn_saved(n, SAVED_W);
    nn_tensor *gc = x && w ? nn_contiguous((nn_tensor *)gout) : NULL;
    if (!gc) return -1;
    int64_t m = g.co / g.ci, in_plane = g.h * g.w, out_plane = g.oh * g.ow, khw = g.kh * g.kw;
    const float *gv = nn_f32(gc), *xv = nn_f32(x), *wv = nn_f32(w);
    int rc = 0;
    int64_t work = g.n * g.co * out_plane * khw;
    if (nn_input_needs(n, 0)) {
        gin[0] = nn_zeros(NN_F32, 4, n->in[0].shape);
        if (!gin[0]) rc = -1;
        float *dx = rc == 0 ? nn_f32(gin[0]) : NULL;
#pragma omp parallel for if (rc == 0 && work > NN_PAR_GRAIN)
        for (int64_t p = 0; p < (rc == 0 ? g.n * g.ci : 0); p++) { /* (b, c) input planes */
            int64_t b = p / g.ci, c = p % g.ci;
            for (int64_t f = c * m; f < (c + 1) * m; f++)
                plane_grad_input(&g, gv + (b * g.co + f) * out_plane, wv + f * khw, dx + p * in_plane);
        }
    }
    if (rc == 0 && nn_input_needs(n, 1)) {
        gin[1] = nn_zeros(NN_F32, 4, n->in[1].shape);
        if (!gin[1]) rc = -1;
        float *dw = rc == 0 ? nn_f32(gin[1]) : NULL;
#pragma omp parallel for if (rc == 0 && work > NN_PAR_GRAIN)
        for (int64_t f = 0; f < (rc == 0 ? g.co : 0); f++)
            for (int64_t b = 0; b < g.n; b++)
                plane_grad_weight(&g, gv + (b * g.co + f) * out_plane,
                                  xv + (b * g.ci + f / m) * in_plane, dw + f * khw);
    }
    if (rc == 0 && n->nin > 2 && nn_input_needs(n, 2)) {
        gin[2] = nn_sum(gc, 3, (int[]){0, 2, 3}, 0);
        if (!gin[2]) rc = -1;
    }
    nn_release(gc);
    return rc;
}

NN_OP(depthwise_op, "conv2d", depthwise_backward, nn_conv_geom);

nn_tensor *nn_depthwise_conv2d_(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                                const nn_conv_geom *g) {
    int prev = nn_grad_off();
    nn_tensor *xc = nn_contiguous((nn_tensor *)x), *wc = nn_contiguous((nn_tensor *)w);
    nn_tensor *y = nn_empty(NN_F32, 4, (int64_t[]){g->n, g->co, g->oh, g->ow});
    int ok = xc && wc && y;
    int64_t m = g->co / g->ci, out_plane = g->oh * g->ow, khw = g->kh * g->kw;
    if (ok) {
        const float *xv = nn_f32(xc), *wv = nn_f32(wc);
        float *yv = nn_f32(y);
#pragma omp parallel for if (g->n * g->co * out_plane * khw > NN_PAR_GRAIN)
        for (int64_t p = 0; p < g->n * g->co; p++) { /* (b, f) output planes */
            int64_t bi = p / g->co, f = p % g->co;
            float add = b ? ((const float *)nn_data(b))[f * b->stride[0]] : 0.0f;
            float *out = yv + p * out_plane;
            for (int64_t q = 0; q < out_plane; q++) out[q] = add;
            plane_forward(g, xv + (bi * g->ci + f / m) * g->h * g->w, wv + f * khw, out);
        }
    } else {
        nn_release(y);
        y = NULL;
    }
    nn_grad_restore(prev);
    const nn_tensor *ins[3] = {x, w, b};
    nn_node *node;
    y = nn_finish_saving2(y, &depthwise_op, b ? 3 : 2, ins, xc, wc, &node); /* SAVED_X, SAVED_W */
    if (node) *NN_CTX(node, nn_conv_geom) = *g;
    nn_release(xc);
    nn_release(wc);
    return y;
}
