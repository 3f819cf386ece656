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
 * it needs. With groups, each group is one sgemm per image on its run of
 * the patch rows (conv_cols.h); depthwise convolutions (one input channel
 * a group) skip the patches and run direct loops (depthwise.c). */
#include "autograd.h"
#include "conv_cols.h"
#include "conv_dnnl.h"
#include "nn_layers.h"

#include <stdlib.h>
#include <string.h>

/* slots; the context is the geometry. With oneDNN the input is kept
 * instead of the patches, and beside it the copy oneDNN reordered it to
 * when the weight gradient can use that (SAVED_X_LAYOUT, may be empty). */
enum { SAVED_W, SAVED_PATCHES, SAVED_X = SAVED_PATCHES, SAVED_X_LAYOUT };

/* both gradients through oneDNN: 1 done, 0 not possible, -1 error */
static int dnnl_backward(nn_node *n, const nn_conv_geom *g, nn_tensor *gc, nn_tensor **gin) {
    bool nx = nn_input_needs(n, 0), nw = nn_input_needs(n, 1), nb = n->nin > 2 && nn_input_needs(n, 2);
    nn_tensor *w = nx ? nn_saved(n, SAVED_W) : NULL, *x = nw ? nn_saved(n, SAVED_X) : NULL;
    nn_tensor *x_kept = nw && n->saved[SAVED_X_LAYOUT] ? nn_saved(n, SAVED_X_LAYOUT) : NULL;
    if ((nx && !w) || (nw && !x) || (nw && n->saved[SAVED_X_LAYOUT] && !x_kept)) return -1;
    if (nx && !(gin[0] = nn_empty(NN_F32, 4, n->in[0].shape))) return -1;
    if (nw && !(gin[1] = nn_empty(NN_F32, 4, n->in[1].shape))) return -1;
    if (nw && nb && !(gin[2] = nn_empty(NN_F32, 1, n->in[2].shape))) return -1; /* gin has nin entries */
    int rc = nn_dnnl_conv_backward(g, nn_f32(gc), w ? nn_f32(w) : NULL, x ? nn_f32(x) : NULL, x_kept,
                                   nx ? nn_f32(gin[0]) : NULL, nw ? nn_f32(gin[1]) : NULL,
                                   nw && nb ? nn_f32(gin[2]) : NULL);
    if (rc <= 0) return rc;
    if (!nw && nb && !(gin[2] = nn_sum(gc, 3, (int[]){0, 2, 3}, 0))) return -1;
    return 1;
}

static int conv_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    nn_conv_geom g = *NN_CTX(n, nn_conv_geom);
    bool nx = nn_input_needs(n, 0), nw = nn_input_needs(n, 1);
    nn_tensor *gc = nn_contiguous((nn_tensor *)gout);
    if (!gc) return -1;
    if (g.dnnl) {
        int done = dnnl_backward(n, &g, gc, gin);
        if (done != 0) {
            nn_release(gc);
            return done < 0 ? -1 : 0;
        }
        for (int i = 0; i < n->nin; i++) { /* oneDNN declined: the im2col way */
            nn_release(gin[i]);
            gin[i] = NULL;
        }
    }
    nn_tensor *w = nx ? nn_saved(n, SAVED_W) : NULL, *patches = NULL;
    if (nw && g.dnnl) { /* the patches were not kept: make them again */
        nn_tensor *x = nn_saved(n, SAVED_X);
        patches = x ? nn_empty(NN_F32, 3, (int64_t[]){g.n, g.oh * g.ow, g.ci * g.kh * g.kw}) : NULL;
        if (patches) nn_im2col(&g, nn_f32(x), nn_f32(patches));
    } else if (nw) {
        patches = nn_retain(nn_saved(n, SAVED_PATCHES));
    }
    if ((nx && !w) || (nw && !patches)) {
        nn_release(gc);
        return -1;
    }
    int64_t l = g.oh * g.ow, k = g.ci * g.kh * g.kw, G = g.groups;
    int64_t kg = k / G, cog = g.co / G; /* per group: patch values, filters */
    int rc = 0;
    const float *gv = gc ? nn_f32(gc) : NULL, *pv = patches ? nn_f32(patches) : NULL;
    if (rc == 0 && nw) { /* dW[grp] (cog, kg) = sum over b of G[b][grp] P[b][:, grp] */
        gin[1] = nn_zeros(NN_F32, 4, n->in[1].shape);
        if (!gin[1]) rc = -1;
        for (int64_t b = 0; rc == 0 && b < g.n && l; b++)
            for (int64_t q = 0; rc == 0 && q < G; q++)
                rc = nn_gemm(g.bf16, 0, 0, cog, kg, l, 1.0f, gv + (b * g.co + q * cog) * l, l,
                             pv + b * l * k + q * kg, k, 1.0f, nn_f32(gin[1]) + q * cog * kg, kg);
    }
    if (rc == 0 && nx) { /* dP[b][:, grp] (L, kg) = G[b][grp]^T w[grp] */
        nn_tensor *dp = nn_empty(NN_F32, 3, (int64_t[]){g.n, l, k});
        gin[0] = dp ? nn_empty(NN_F32, 4, n->in[0].shape) : NULL;
        if (!gin[0]) rc = -1;
        for (int64_t b = 0; rc == 0 && b < g.n && l; b++)
            for (int64_t q = 0; rc == 0 && q < G; q++)
                rc = nn_gemm(g.bf16, 1, 0, l, kg, cog, 1.0f, gv + (b * g.co + q * cog) * l, l,
                             nn_f32(w) + q * cog * kg, kg, 0.0f, nn_f32(dp) + b * l * k + q * kg, k);
        if (rc == 0) nn_col2im(&g, nn_f32(dp), nn_f32(gin[0]));
        nn_release(dp);
    }
    if (rc == 0 && n->nin > 2 && nn_input_needs(n, 2)) {
        gin[2] = nn_sum(gc, 3, (int[]){0, 2, 3}, 0);
        if (!gin[2]) rc = -1;
    }
    nn_release(patches);
    nn_release(gc);
    return rc;
}

NN_OP(conv_op, "conv2d", conv_backward, nn_conv_geom);

/* the geometry of x (N, C, H, W) through w (O, C / groups, KH, KW), or -1 */
static int conv_geometry(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                         const int *stride, const int *padding, const int *dilation,
                         int64_t groups, nn_conv_geom *g) {
    char s1[96], s2[96];
    if (x->dtype != NN_F32 || x->ndim != 4)
        return nn_failed(1, "conv2d expects an f32 (N, C, H, W) input, got %s",
                         nn_shape_str(x, s1, 96));
    if (groups < 1 || groups > x->shape[1] || x->shape[1] % groups)
        return nn_failed(0, "conv2d: groups %lld must divide the %lld input channels",
                         (long long)groups, (long long)x->shape[1]);
    if (w->dtype != NN_F32 || w->ndim != 4 || w->shape[1] * groups != x->shape[1] ||
        w->shape[0] % groups)
        return nn_failed(2, "conv2d weight %s does not match input %s (expected (out, %lld, kh, "
                            "kw)%s)", nn_shape_str(w, s1, 96), nn_shape_str(x, s2, 96),
                         (long long)(x->shape[1] / groups),
                         groups > 1 ? ", out divisible by groups" : "");
    if (b && (b->dtype != NN_F32 || b->ndim != 1 || b->shape[0] != w->shape[0]))
        return nn_failed(3, "conv2d bias %s does not match %lld output channels",
                         nn_shape_str(b, s1, 96), (long long)w->shape[0]);
    *g = (nn_conv_geom){x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0],
                        w->shape[2], w->shape[3], 0, 0, stride[0], stride[1], padding[0],
                        padding[1], dilation[0], dilation[1], groups, 0, 0};
    if (g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1 || g->ph < 0 || g->pw < 0)
        return nn_failed(4, "conv2d: stride and dilation must be >= 1, padding >= 0");
    int64_t span_h = g->dh * (g->kh - 1) + 1, span_w = g->dw * (g->kw - 1) + 1;
    if (g->h + 2 * g->ph < span_h || g->w + 2 * g->pw < span_w)
        return nn_failed(2, "conv2d: kernel %lldx%lld larger than the padded input %s",
                         (long long)g->kh, (long long)g->kw, nn_shape_str(x, s1, 96));
    g->oh = (g->h + 2 * g->ph - span_h) / g->sh + 1;
    g->ow = (g->w + 2 * g->pw - span_w) / g->sw + 1;
    g->bf16 = nn_autocast() == NN_BF16;
    return 0;
}

nn_tensor *nn_conv2d_groups(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                            const int *stride, const int *padding, const int *dilation,
                            int64_t groups) {
    const nn_tensor *half_in[3] = {x, w, b};
    if (nn_any_half(3, half_in)) { /* in f32, rounded back */
        nn_tensor *f[3];
        if (nn_widen_all(3, half_in, f) < 0) return NULL;
        nn_tensor *y = nn_conv2d_groups(f[0], f[1], f[2], stride, padding, dilation, groups);
        nn_release_all(3, f);
        return nn_narrow_to(y, nn_half_result(3, half_in));
    }
    nn_conv_geom g;
    if (conv_geometry(x, w, b, stride, padding, dilation, groups, &g) < 0) return NULL;
    int64_t l = g.oh * g.ow, k = g.ci * g.kh * g.kw, kg = k / groups, cog = g.co / groups;
    int prev = nn_grad_off();
    nn_tensor *xc = nn_contiguous((nn_tensor *)x), *wc = nn_contiguous((nn_tensor *)w);
    nn_tensor *bc = b ? nn_contiguous((nn_tensor *)b) : NULL;
    nn_tensor *y = nn_empty(NN_F32, 4, (int64_t[]){g.n, g.co, g.oh, g.ow}), *patches = NULL;
    nn_tensor *x_kept = NULL; /* x in oneDNN's layout, for the weight gradient */
    bool keep = prev && w->requires_grad;
    int rc = xc && wc && (bc || !b) && y ? 0 : -1;
    if (rc == 0 && g.n * l * k > 0) {
        rc = nn_dnnl_conv_forward(&g, nn_f32(xc), nn_f32(wc), bc ? nn_f32(bc) : NULL, nn_f32(y),
                                  keep ? &x_kept : NULL);
        g.dnnl = rc == 1;
        rc = rc < 0 ? -1 : 0;
    }
    if (rc == 0 && !g.dnnl && groups > 1 && groups == g.ci) { /* depthwise: direct loops */
        nn_grad_restore(prev);
        nn_tensor *out = nn_depthwise_conv2d_(x, w, b, &g);
        nn_tensor *tmp[] = {xc, wc, bc, y, x_kept};
        nn_release_all(5, tmp);
        return out;
    }
    if (rc == 0 && !g.dnnl) { /* im2col + one GEMM per image and group */
        float *yv = nn_f32(y);
        for (int64_t plane = 0; plane < g.n * g.co; plane++) { /* each output plane starts as its bias */
            float add = bc ? nn_f32(bc)[plane % g.co] : 0.0f;
            for (int64_t p = 0; p < l; p++) yv[plane * l + p] = add;
        }
        patches = nn_empty(NN_F32, 3, (int64_t[]){g.n, l, k});
        if (!patches) rc = -1;
        if (rc == 0 && g.n > 0 && l > 0) nn_im2col(&g, nn_f32(xc), nn_f32(patches));
        for (int64_t bi = 0; rc == 0 && bi < g.n && l; bi++)
            for (int64_t q = 0; rc == 0 && q < groups; q++)
                rc = nn_gemm(g.bf16, 0, 1, cog, l, kg, 1.0f, nn_f32(wc) + q * cog * kg, kg,
                             nn_f32(patches) + bi * l * k + q * kg, k, 1.0f,
                             nn_f32(y) + (bi * g.co + q * cog) * l, l);
    }
    if (rc < 0) {
        nn_release(y);
        y = NULL;
    }
    nn_grad_restore(prev);
    const nn_tensor *ins[3] = {x, w, b};
    nn_node *node;
    y = nn_finish_op(y, &conv_op, b ? 3 : 2, ins, &node);
    if (node) { /* im2col keeps the patches (N L K floats, saves an im2col); oneDNN the input */
        *NN_CTX(node, nn_conv_geom) = g;
        if ((nn_input_needs(node, 0) && nn_save(node, SAVED_W, wc) < 0) ||
            (nn_input_needs(node, 1) && nn_save(node, SAVED_PATCHES, g.dnnl ? xc : patches) < 0) ||
            (nn_input_needs(node, 1) && x_kept && nn_save(node, SAVED_X_LAYOUT, x_kept) < 0)) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_tensor *tmp[] = {patches, xc, wc, bc, x_kept};
    nn_release_all(5, tmp);
    return y;
}

nn_tensor *nn_conv2d(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                     const int *stride, const int *padding, const int *dilation) {
    return nn_conv2d_groups(x, w, b, stride, padding, dilation, 1);
}

/* conv1d as a conv2d of height 1: the views are free and autograd runs
 * through them */
nn_tensor *nn_conv1d(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b, int stride,
                     int padding, int dilation, int64_t groups) {
    char s1[96], s2[96];
    if (x->ndim != 3)
        return nn_fail(1, "conv1d expects an (N, C, L) input, got %s", nn_shape_str(x, s1, 96));
    if (w->ndim != 3)
        return nn_fail(2, "conv1d weight %s must be (out, C / groups, k) for input %s",
                       nn_shape_str(w, s1, 96), nn_shape_str(x, s2, 96));
    if (groups < 1 || x->shape[1] % groups || w->shape[1] * groups != x->shape[1] ||
        w->shape[0] % groups)
        return nn_fail(2, "conv1d weight %s does not match input %s with %lld groups (expected "
                          "(out, %lld, k), out divisible by groups)", nn_shape_str(w, s1, 96),
                       nn_shape_str(x, s2, 96), (long long)groups,
                       (long long)(groups >= 1 ? x->shape[1] / groups : 0));
    if (stride < 1 || dilation < 1 || padding < 0)
        return nn_fail(4, "conv1d: stride and dilation must be >= 1, padding >= 0");
    if (x->shape[2] + 2 * padding < (int64_t)dilation * (w->shape[2] - 1) + 1)
        return nn_fail(2, "conv1d: kernel %lld (dilation %d) longer than the padded input %s",
                       (long long)w->shape[2], dilation, nn_shape_str(x, s1, 96));
    nn_tensor *x4 = nn_unsqueeze((nn_tensor *)x, 2), *w4 = nn_unsqueeze((nn_tensor *)w, 2);
    nn_tensor *y4 = x4 && w4 ? nn_conv2d_groups(x4, w4, b, (int[]){1, stride}, (int[]){0, padding},
                                                (int[]){1, dilation}, groups)
                             : NULL;
    nn_tensor *y = y4 ? nn_squeeze(y4, 2) : NULL;
    nn_release(x4);
    nn_release(w4);
    nn_release(y4);
    return y;
}
