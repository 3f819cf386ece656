/* norm.c -- LayerNorm and RMSNorm over the trailing C features, fused
 * forward and backward.
 *
 * Shapes: x (R, C) viewed from (..., C) where C is the product of the
 * normalised trailing dims; w, b (C) or NULL; mean, rstd (R) saved.
 *   layer_norm: xhat = (x - mean) rstd, y = xhat w + b, rstd = 1/sqrt(var + eps)
 *   rms_norm:   xhat = x rstd,          y = xhat w,     rstd = 1/sqrt(mean(x^2) + eps)
 * Backward per row, with dxhat = g w:
 *   layer_norm: dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
 *   rms_norm:   dx = rstd (dxhat - xhat mean(dxhat xhat))
 *   dw = sum over rows of g xhat, db = sum over rows of g. */
#include "autograd.h"
#include "graph.h"
#include "nn_layers.h"
#include "rowstats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* y = (x - m) rs w + b over one row (w, b may be NULL) */
NN_DISPATCH
static void row_normalise(const float *x, float *y, int64_t c, float m, float rs, const float *w,
                          const float *b) {
    if (w && b)
        for (int64_t i = 0; i < c; i++) y[i] = (x[i] - m) * rs * w[i] + b[i];
    else if (w)
        for (int64_t i = 0; i < c; i++) y[i] = (x[i] - m) * rs * w[i];
    else
        for (int64_t i = 0; i < c; i++) y[i] = (x[i] - m) * rs + (b ? b[i] : 0.0f);
}

/* dx = rs (g w - md - (x - m) rs mdh) over one row (w may be NULL) */
NN_DISPATCH
static void row_dx(const float *g, const float *w, const float *x, float *dx, int64_t c, float m,
                   float rs, float md, float mdh) {
    for (int64_t i = 0; i < c; i++) {
        float dh = w ? g[i] * w[i] : g[i];
        dx[i] = rs * (dh - md - (x[i] - m) * rs * mdh);
    }
}

static void norm_forward_rows(const float *x, const float *w, const float *b,
                              float *y, float *mean, float *rstd, int64_t rows,
                              int64_t c, double eps, int rms) {
#pragma omp parallel for if (rows * c > NN_PAR_GRAIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float mf = rms ? 0.0f : (float)(nn_row_sum(xr, c) / (double)c);
        double v = nn_row_sqdev(xr, c, mf);
        float rs = (float)(1.0 / sqrt(v / (double)c + eps));
        row_normalise(xr, y + r * c, c, mf, rs, w, b);
        mean[r] = mf;
        rstd[r] = rs;
    }
}

/* one row's part of the column sums below */
NN_DISPATCH
static void row_into_columns(const float *g, const float *x, float m, float rs, double *ah,
                             double *ag, int64_t w) {
    for (int64_t i = 0; i < w; i++) {
        ah[i] += g[i] * (x[i] - m) * rs;
        ag[i] += g[i];
    }
}

/* acc[i] += sum over rows of g xhat, acc[c + i] += sum of g, in double
 * (row order per column), columns in blocks across the threads */
static void column_sums(const float *gv, const float *xv, const float *mean, const float *rstd,
                        int64_t rows, int64_t c, double *acc) {
    enum { BLOCK = 64 };
    int64_t blocks = (c + BLOCK - 1) / BLOCK;
#pragma omp parallel for if (rows * c > NN_PAR_GRAIN)
    for (int64_t bl = 0; bl < blocks; bl++) {
        int64_t i0 = bl * BLOCK, i1 = i0 + BLOCK < c ? i0 + BLOCK : c;
        for (int64_t r = 0; r < rows; r++)
            row_into_columns(gv + r * c + i0, xv + r * c + i0, mean[r], rstd[r], acc + i0,
                             acc + c + i0, i1 - i0);
    }
}

typedef struct { int rms; int64_t c; double eps; } norm_ctx; /* c: elements normalised together */

static int norm_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    nn_tensor *x = nn_saved(n, 0), *stats = nn_saved(n, 1);
    nn_tensor *w = n->saved[2] ? nn_saved(n, 2) : NULL;
    if (!x || !stats || (n->saved[2] && !w)) return -1;
    int rms = NN_CTX(n, norm_ctx)->rms;
    int64_t c = NN_CTX(n, norm_ctx)->c, rows = c ? nn_numel(x) / c : 0;
    nn_tensor *gc = nn_contiguous((nn_tensor *)g);
    if (!gc) return -1;
    const float *xv = nn_f32(x), *gv = nn_f32(gc), *wv = w ? nn_f32(w) : NULL;
    const float *mean = nn_f32(stats), *rstd = mean + rows;
    int rc = 0;
    if (nn_input_needs(n, 0)) {
        gin[0] = nn_empty(NN_F32, x->ndim, x->shape);
        if (!gin[0]) rc = -1;
        float *dx = rc == 0 ? nn_f32(gin[0]) : NULL;
#pragma omp parallel for if (rc == 0 && rows * c > NN_PAR_GRAIN)
        for (int64_t r = 0; r < rows; r++) {
            if (!dx) continue;
            const float *xr = xv + r * c, *gr = gv + r * c;
            double sd = 0, sdh = 0;
            nn_row_dot(gr, wv, xr, c, mean[r], &sd, &sdh);
            float md = rms ? 0.0f : (float)(sd / (double)c), mdh = (float)(sdh * rstd[r] / (double)c);
            row_dx(gr, wv, xr, dx + r * c, c, mean[r], rstd[r], md, mdh);
        }
    }
    bool need_w = n->nin > 1 && nn_input_needs(n, 1);
    bool need_b = n->nin > 2 && nn_input_needs(n, 2);
    if (rc == 0 && (need_w || need_b)) { /* column sums over rows, in double */
        double *acc = calloc(2 * (size_t)(c ? c : 1), sizeof *acc);
        if (!acc) rc = nn_failed(0, "out of memory");
        else column_sums(gv, xv, mean, rstd, rows, c, acc);
        for (int k = 0; rc == 0 && k < 2; k++) {
            if (!(k ? need_b : need_w)) continue;
            nn_tensor *t = nn_empty(NN_F32, n->in[1 + k].ndim, n->in[1 + k].shape);
            if (!t) { rc = -1; break; }
            for (int64_t i = 0; i < c; i++) nn_f32(t)[i] = (float)acc[k * c + i];
            gin[1 + k] = t;
        }
        free(acc);
    }
    nn_release(gc);
    return rc;
}

/* the same formulas from engine ops on x (mean and rstd recomputed, so
 * they carry x's history), for a create_graph backward */
static int norm_backward_graph(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    nn_tensor *x = nn_saved(n, 0), *w = n->saved[2] ? nn_saved(n, 2) : NULL;
    if (!x || (n->saved[2] && !w)) return -1;
    const norm_ctx *c = NN_CTX(n, norm_ctx);
    int64_t rows = c->c ? nn_numel(x) / c->c : 0, rc2[2] = {rows, c->c};
    nn_scope s = {0};
    nn_tensor *x2 = g_reshape(&s, x, 2, rc2), *g2 = g_reshape(&s, g, 2, rc2);
    nn_tensor *xc = c->rms ? x2 : g_sub(&s, x2, g_mean(&s, x2, 1));
    nn_tensor *var = g_mean(&s, g_mul(&s, xc, xc), 1);
    nn_tensor *rstd = g_un(&s, NN_RSQRT, g_add(&s, var, g_k(&s, c->eps)));
    nn_tensor *xhat = g_mul(&s, xc, rstd);
    nn_tensor *w1 = w ? g_reshape(&s, w, 1, &c->c) : NULL;
    nn_tensor *dh = w ? g_mul(&s, g2, w1) : g2;
    if (nn_input_needs(n, 0)) {
        nn_tensor *t = g_sub(&s, dh, g_mul(&s, xhat, g_mean(&s, g_mul(&s, dh, xhat), 1)));
        if (!c->rms) t = g_sub(&s, t, g_mean(&s, dh, 1));
        gin[0] = nn_scope_result(&s, g_reshape(&s, g_mul(&s, rstd, t), x->ndim, x->shape));
    }
    for (int k = 0; k < 2 && k + 1 < n->nin; k++) {
        if (!nn_input_needs(n, 1 + k)) continue;
        nn_tensor *col = g_sum(&s, k ? g2 : g_mul(&s, g2, xhat), 1, (int[]){0}, 0);
        gin[1 + k] = nn_scope_result(&s, g_reshape(&s, col, n->in[1 + k].ndim, n->in[1 + k].shape));
    }
    return nn_scope_end(&s);
}

NN_OP_GRAPH(layer_norm_op, "layer_norm", norm_backward, norm_backward_graph, norm_ctx);
NN_OP_GRAPH(rms_norm_op, "rms_norm", norm_backward, norm_backward_graph, norm_ctx);

static nn_tensor *norm(const nn_tensor *x, int nnorm, const nn_tensor *w,
                       const nn_tensor *b, double eps, int rms) {
    const char *name = rms ? "rms_norm" : "layer_norm";
    const nn_tensor *half_in[3] = {x, w, b};
    if (nn_any_half(3, half_in)) { /* in f32, rounded back */
        nn_tensor *f[3];
        if (nn_widen_all(3, half_in, f) < 0) return NULL;
        nn_tensor *y = norm(f[0], nnorm, f[1], f[2], eps, rms);
        nn_release_all(3, f);
        return nn_narrow_to(y, nn_half_result(3, half_in));
    }
    char s1[96], s2[96];
    if (x->dtype != NN_F32) return nn_fail(1, "%s expects an f32 input", name);
    if (nnorm < 1 || nnorm > x->ndim)
        return nn_fail(2, "%s: cannot normalise %d trailing dims of a %d-dim input",
                       name, nnorm, x->ndim);
    int64_t c = nn_shape_numel(nnorm, x->shape + x->ndim - nnorm);
    const nn_tensor *params[2] = {w, b};
    for (int i = 0; i < 2; i++)
        if (params[i] && (params[i]->dtype != NN_F32 || nn_numel(params[i]) != c))
            return nn_fail(3 + i, "%s: %s %s does not match the %lld normalised "
                           "features of %s", name, i ? "bias" : "weight",
                           nn_shape_str(params[i], s1, 96), (long long)c,
                           nn_shape_str(x, s2, 96));
    if (!(eps > 0)) return nn_fail(5, "%s: eps must be positive", name);
    /* copies made with grad mode on keep x's history for create_graph */
    nn_tensor *xc = nn_contiguous((nn_tensor *)x);
    nn_tensor *wc = w ? nn_contiguous((nn_tensor *)w) : NULL;
    int prev = nn_grad_off();
    int64_t rows = c ? nn_numel(x) / c : 0;
    nn_tensor *bc = b ? nn_contiguous((nn_tensor *)b) : NULL;
    int64_t two_rows = 2 * rows;
    nn_tensor *stats = nn_empty(NN_F32, 1, &two_rows); /* mean then rstd */
    nn_tensor *y = xc ? nn_empty(NN_F32, x->ndim, x->shape) : NULL;
    if (y && stats && (!w || wc) && (!b || bc)) {
        norm_forward_rows(nn_f32(xc), wc ? nn_f32(wc) : NULL, bc ? nn_f32(bc) : NULL,
                          nn_f32(y), nn_f32(stats), nn_f32(stats) + rows, rows, c,
                          eps, rms);
    } else {
        nn_release(y);
        y = NULL;
    }
    nn_grad_restore(prev);
    const nn_tensor *ins[3] = {x, w, b};
    nn_node *node;
    y = nn_finish_op(y, rms ? &rms_norm_op : &layer_norm_op, 3, ins, &node);
    if (node) {
        *NN_CTX(node, norm_ctx) = (norm_ctx){rms, c, eps};
        if (nn_save(node, 0, xc) < 0 || nn_save(node, 1, stats) < 0 ||
            (wc && nn_save(node, 2, wc) < 0)) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_release(xc); nn_release(wc); nn_release(bc); nn_release(stats);
    return y;
}

nn_tensor *nn_layer_norm(const nn_tensor *x, int nnorm, const nn_tensor *w,
                         const nn_tensor *b, double eps) {
    return norm(x, nnorm, w, b, eps, 0);
}

nn_tensor *nn_rms_norm(const nn_tensor *x, int nnorm, const nn_tensor *w,
                       double eps) {
    return norm(x, nnorm, w, NULL, eps, 1);
}
