/* conv_transpose.c -- 2-D transposed convolution (the gradient of conv2d
 * with respect to its input, as a layer): GEMM then col2im, with im2col
 * in backward.
 *
 * Shapes: x (N, Ci, H, W), w (Ci, Co / groups, KH, KW), b (Co) or NULL ->
 * y (N, Co, OH, OW), OH = (H - 1) sh - 2 ph + dh (KH - 1) + oph + 1. The
 * patch geometry (conv_cols.h) is conv2d's with the roles swapped: the
 * image is y, the positions are x's L = H W. Per image b and group q, with
 * cig = Ci / groups input and kg = (Co / groups) KH KW patch values:
 *   cols[b][:, q] (L, kg) = x[b][q]^T (L, cig) @ w[q] (cig, kg), then
 *   col2im sums the columns into y[b];
 *   backward: P = im2col(dy), dx[b][q] (cig, L) = w[q] @ P[b][:, q]^T and
 *   dw[q] (cig, kg) += x[b][q] @ P[b][:, q]. */
#include "autograd.h"
#include "conv_cols.h"
#include "nn_layers.h"

#include <stdlib.h>

enum { SAVED_X, SAVED_W };

typedef struct {
    nn_conv_geom g; /* the patches of y */
    int64_t ci;     /* x's channels */
} tconv_ctx;

static int tconv_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    tconv_ctx c = *NN_CTX(n, tconv_ctx);
    const nn_conv_geom *g = &c.g;
    nn_tensor *x = nn_saved(n, SAVED_X), *w = nn_saved(n, SAVED_W);
    nn_tensor *gc = x && w ? nn_contiguous((nn_tensor *)gout) : NULL;
    if (!gc) return -1;
    int64_t l = g->oh * g->ow, k = g->ci * g->kh * g->kw, G = g->groups;
    int64_t kg = k / G, cig = c.ci / G;
    nn_tensor *p = nn_empty(NN_F32, 3, (int64_t[]){g->n, l, k});
    int rc = p ? 0 : -1;
    if (rc == 0) nn_im2col(g, nn_f32(gc), nn_f32(p));
    const float *pv = p ? nn_f32(p) : NULL, *xv = nn_f32(x), *wv = nn_f32(w);
    if (rc == 0 && nn_input_needs(n, 0)) {
        gin[0] = nn_empty(NN_F32, 4, n->in[0].shape);
        if (!gin[0]) rc = -1;
        for (int64_t b = 0; rc == 0 && b < g->n; b++)
            for (int64_t q = 0; rc == 0 && q < G; q++)
                rc = nn_gemm(g->bf16, 0, 1, cig, l, kg, 1.0f, wv + q * cig * kg, kg,
                             pv + b * l * k + q * kg, k, 0.0f,
                             nn_f32(gin[0]) + (b * c.ci + q * cig) * l, l);
    }
    if (rc == 0 && nn_input_needs(n, 1)) {
        gin[1] = nn_zeros(NN_F32, 4, n->in[1].shape);
        if (!gin[1]) rc = -1;
        for (int64_t b = 0; rc == 0 && b < g->n; b++)
            for (int64_t q = 0; rc == 0 && q < G; q++)
                rc = nn_gemm(g->bf16, 0, 0, cig, kg, l, 1.0f, xv + (b * c.ci + q * cig) * l, l,
                             pv + b * l * k + q * kg, k, 1.0f, nn_f32(gin[1]) + q * cig * kg, kg);
    }
    if (rc == 0 && n->nin > 2 && nn_input_needs(n, 2)) {
        gin[2] = nn_sum(gc, 3, (int[]){0, 2, 3}, 0);
        if (!gin[2]) rc = -1;
    }
    nn_release(p);
    nn_release(gc);
    return rc;
}

NN_OP(tconv_op, "conv_transpose2d", tconv_backward, tconv_ctx);

nn_tensor *nn_conv_transpose2d(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                               const int *stride, const int *padding, const int *output_padding,
                               const int *dilation, int64_t groups) {
    char s1[96], s2[96];
    const nn_tensor *half_in[3] = {x, w, b};
    if (nn_any_half(3, half_in)) {
        nn_tensor *f[3];
        if (nn_widen_all(3, half_in, f) < 0) return NULL;
        nn_tensor *y = nn_conv_transpose2d(f[0], f[1], f[2], stride, padding, output_padding,
                                           dilation, groups);
        nn_release_all(3, f);
        return nn_narrow_to(y, nn_half_result(3, half_in));
    }
    if (x->dtype != NN_F32 || x->ndim != 4)
        return nn_fail(1, "conv_transpose2d expects an f32 (N, C, H, W) input, got %s",
                       nn_shape_str(x, s1, 96));
    if (groups < 1 || x->shape[1] % groups)
        return nn_fail(0, "conv_transpose2d: groups %lld must divide the %lld input channels",
                       (long long)groups, (long long)x->shape[1]);
    if (w->dtype != NN_F32 || w->ndim != 4 || w->shape[0] != x->shape[1])
        return nn_fail(2, "conv_transpose2d weight %s does not match input %s (expected (%lld, "
                          "out / groups, kh, kw))", nn_shape_str(w, s1, 96),
                       nn_shape_str(x, s2, 96), (long long)x->shape[1]);
    int64_t co = w->shape[1] * groups;
    if (b && (b->dtype != NN_F32 || b->ndim != 1 || b->shape[0] != co))
        return nn_fail(3, "conv_transpose2d bias %s does not match %lld output channels",
                       nn_shape_str(b, s1, 96), (long long)co);
    for (int d = 0; d < 2; d++) {
        if (stride[d] < 1 || dilation[d] < 1 || padding[d] < 0 || output_padding[d] < 0)
            return nn_fail(4, "conv_transpose2d: stride and dilation must be >= 1, padding and "
                              "output_padding >= 0");
        if (output_padding[d] >= stride[d] && output_padding[d] >= dilation[d])
            return nn_fail(4, "conv_transpose2d: output_padding %d must be smaller than the "
                              "stride %d or the dilation %d", output_padding[d], stride[d],
                           dilation[d]);
    }
    int64_t h = x->shape[2], wd = x->shape[3], kh = w->shape[2], kw = w->shape[3];
    int64_t oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1;
    int64_t ow = (wd - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1;
    if (oh < 1 || ow < 1)
        return nn_fail(4, "conv_transpose2d: padding leaves an empty %lldx%lld output for input %s",
                       (long long)oh, (long long)ow, nn_shape_str(x, s1, 96));
    tconv_ctx c = {{x->shape[0], co, oh, ow, x->shape[1], kh, kw, h, wd, stride[0], stride[1],
                    padding[0], padding[1], dilation[0], dilation[1], groups,
                    nn_autocast() == NN_BF16, 0},
                   x->shape[1]};
    const nn_conv_geom *g = &c.g;
    int64_t l = h * wd, k = co * kh * kw, kg = k / groups, cig = c.ci / groups;
    int prev = nn_grad_off();
    nn_tensor *xc = nn_contiguous((nn_tensor *)x), *wc = nn_contiguous((nn_tensor *)w);
    nn_tensor *cols = nn_empty(NN_F32, 3, (int64_t[]){g->n, l, k});
    nn_tensor *y = nn_empty(NN_F32, 4, (int64_t[]){g->n, co, oh, ow});
    int rc = xc && wc && cols && y ? 0 : -1;
    for (int64_t bi = 0; rc == 0 && bi < g->n; bi++)
        for (int64_t q = 0; rc == 0 && q < groups; q++)
            rc = nn_gemm(g->bf16, 1, 0, l, kg, cig, 1.0f, nn_f32(xc) + (bi * c.ci + q * cig) * l, l,
                         nn_f32(wc) + q * cig * kg, kg, 0.0f, nn_f32(cols) + bi * l * k + q * kg, k);
    if (rc == 0) {
        nn_col2im(g, nn_f32(cols), nn_f32(y));
        if (b) {
            float *yv = nn_f32(y);
            for (int64_t plane = 0; plane < g->n * co; plane++) {
                float add = ((const float *)nn_data(b))[plane % co * b->stride[0]];
                for (int64_t p = 0; p < oh * ow; p++) yv[plane * oh * ow + p] += add;
            }
        }
    } else {
        nn_release(y);
        y = NULL;
    }
    nn_grad_restore(prev);
    const nn_tensor *ins[3] = {x, w, b};
    nn_node *node;
    y = nn_finish_saving2(y, &tconv_op, b ? 3 : 2, ins, xc, wc, &node); /* SAVED_X, SAVED_W */
    if (node) *NN_CTX(node, tconv_ctx) = c;
    nn_release(cols);
    nn_release(xc);
    nn_release(wc);
    return y;
}
