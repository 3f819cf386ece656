/* loss.c -- cross-entropy from logits, fused with its backward.
 *
 * Shapes: logits (N, C); target (N) i64 class indices counted from base, or
 * (N, C) f32 probabilities; weight (C) or NULL. Each row's loss is
 * -sum_c coef_c log p_c with p = softmax(logits):
 *   indices:       coef_c = w_c ((1 - eps) [c == t] + eps / C)
 *   probabilities: coef_c = w_c ((1 - eps) q_c + eps / C)
 * Rows whose target is ignore_index have coef = 0. The mean divides by
 * the summed weights of the kept targets (indices) or by N (probs), as
 * PyTorch does. Gradient: dz_j = g_row (p_j sum_c coef_c - coef_j). */
#include "autograd.h"
#include "graph.h"
#include "nn_layers.h"
#include "vecmath.h"

#include <math.h>
#include <string.h>

typedef struct {
    int64_t n, c, base, ignore;
    float eps;
    int probs;
    const float *w;
} ce_args;

/* row r's target class counted from 0; -1 for an ignored row, and for
 * probability targets (whose coefficients come from q) */
static int64_t row_target(const ce_args *a, const void *target, int64_t r) {
    if (a->probs) return -1;
    int64_t t = ((const int64_t *)target)[r];
    return t == a->ignore ? -1 : t - a->base;
}

/* the row's weight in the mean: 1 per probability row, w_t per kept index */
static double row_weight(const ce_args *a, int64_t t) {
    if (a->probs) return 1.0;
    return t < 0 ? 0.0 : a->w ? a->w[t] : 1.0;
}

/* coefficient j of a row: q is the row's probabilities (or NULL), t its
 * class (or -1); an ignored index row has all zeros */
static inline float coef_at(const ce_args *a, const float *q, int64_t t, int64_t j) {
    float w = a->w ? a->w[j] : 1.0f, smooth = a->eps / (float)a->c;
    if (q) return w * ((1 - a->eps) * q[j] + smooth);
    return t < 0 ? 0.0f : w * (smooth + (j == t ? 1 - a->eps : 0.0f));
}

/* sum_j w_j x_j (w NULL: all ones) in 16 float lanes */
static double weighted_sum(const float *w, const float *x, int64_t n) {
    float acc[16] = {0};
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; l++) acc[l] += (w ? w[j + l] : 1.0f) * x[j + l];
    double s = 0;
    for (; j < n; j++) s += (double)(w ? w[j] : 1.0f) * x[j];
    for (int l = 0; l < 16; l++) s += acc[l];
    return s;
}

/* -sum_j coef_j logp_j of one row; an index target with smoothing is
 * -((1 - eps) w_t lp_t + eps / C sum_j w_j lp_j) */
static double row_loss(const ce_args *a, const float *q, int64_t t, const float *lp) {
    if (!q && t < 0) return 0.0;
    if (!q && a->eps == 0) return -(double)coef_at(a, q, t, t) * lp[t];
    if (!q) {
        float wt = a->w ? a->w[t] : 1.0f;
        return -((1 - a->eps) * wt * (double)lp[t] + a->eps / (double)a->c * weighted_sum(a->w, lp, a->c));
    }
    double s = 0;
    for (int64_t j = 0; j < a->c; j++) s -= coef_at(a, q, t, j) * (double)lp[j];
    return s;
}

/* dz_j = gr (p_j sum_c coef_c - coef_j) for one row */
NN_DISPATCH
static void row_grad(const ce_args *a, const float *q, int64_t t, const float *lp, float gr,
                     float *out) {
    if (!q && a->eps != 0) { /* coef_j = w_j eps / C, plus (1 - eps) w_t at t */
        if (t < 0) {
            memset(out, 0, (size_t)a->c * sizeof *out);
            return;
        }
        float smooth = a->eps / (float)a->c, wt = a->w ? a->w[t] : 1.0f;
        float total = (float)((1 - a->eps) * wt + smooth * (a->w ? weighted_sum(NULL, a->w, a->c) : (double)a->c));
        for (int64_t j = 0; j < a->c; j++)
            out[j] = gr * (nn_expf(lp[j]) * total - smooth * (a->w ? a->w[j] : 1.0f));
        out[t] -= gr * (1 - a->eps) * wt;
        return;
    }
    double total = 0;
    if (!q && a->eps == 0)
        total = t < 0 ? 0.0 : coef_at(a, q, t, t);
    else
        for (int64_t j = 0; j < a->c; j++) total += coef_at(a, q, t, j);
    float ft = (float)total;
    for (int64_t j = 0; j < a->c; j++) out[j] = gr * nn_expf(lp[j]) * ft;
    if (!q && a->eps == 0) {
        if (t >= 0) out[t] -= gr * coef_at(a, q, t, t);
        return;
    }
    for (int64_t j = 0; j < a->c; j++) out[j] -= gr * coef_at(a, q, t, j);
}

typedef struct {
    ce_args a;        /* w: NULL here, the weights are saved */
    int reduction;    /* 0 none, 1 mean, 2 sum */
    double denom;
} ce_ctx;
/* slots; the logits themselves (no copy) only for a create_graph backward */
enum { SAVED_LOGP, SAVED_TARGET, SAVED_WEIGHT, SAVED_LOGITS };

static int ce_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const ce_ctx *c = NN_CTX(n, ce_ctx);
    nn_tensor *logp = nn_saved(n, SAVED_LOGP), *target = nn_saved(n, SAVED_TARGET);
    nn_tensor *w = n->saved[SAVED_WEIGHT] ? nn_saved(n, SAVED_WEIGHT) : NULL;
    if (!logp || !target || (n->saved[SAVED_WEIGHT] && !w)) return -1;
    ce_args a = c->a;
    a.w = w ? nn_f32(w) : NULL;
    int reduction = c->reduction;
    double denom = c->denom;
    nn_tensor *gc = nn_contiguous((nn_tensor *)g);
    nn_tensor *dz = gc ? nn_empty(NN_F32, 2, (int64_t[]){a.n, a.c}) : NULL;
    if (!dz) {
        nn_release(gc);
        return -1;
    }
    const void *tv = a.probs ? (const void *)nn_f32(target) : (const void *)nn_i64(target);
    const float *gv = nn_f32(gc), *lpv = nn_f32(logp);
    float *dv = nn_f32(dz);
#pragma omp parallel for if (a.n * a.c > NN_PAR_GRAIN && a.n > 1)
    for (int64_t r = 0; r < a.n; r++) {
        float gr = reduction == 0 ? gv[r] : (float)(gv[0] / (reduction == 1 ? denom : 1.0));
        const float *q = a.probs ? (const float *)tv + r * a.c : NULL;
        row_grad(&a, q, row_target(&a, tv, r), lpv + r * a.c, gr, dv + r * a.c);
    }
    nn_release(gc);
    gin[0] = dz;
    return 0;
}

/* g_row (softmax(z) sum_c coef_c - coef) from engine ops on the logits z,
 * the coefficients (targets, weights, smoothing) being constants */
static int ce_backward_graph(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const ce_ctx *c = NN_CTX(n, ce_ctx);
    nn_tensor *z = nn_saved(n, SAVED_LOGITS), *target = nn_saved(n, SAVED_TARGET);
    nn_tensor *w = n->saved[SAVED_WEIGHT] ? nn_saved(n, SAVED_WEIGHT) : NULL;
    if (!z || !target || (n->saved[SAVED_WEIGHT] && !w)) return -1;
    ce_args a = c->a;
    a.w = w ? nn_f32(w) : NULL;
    nn_scope s = {0};
    nn_tensor *coef = g_keep(&s, nn_empty(NN_F32, 2, (int64_t[]){a.n, a.c}));
    nn_tensor *total = g_keep(&s, nn_empty(NN_F32, 2, (int64_t[]){a.n, 1}));
    if (coef && total) {
        const void *tv = a.probs ? (const void *)nn_f32(target) : (const void *)nn_i64(target);
        for (int64_t r = 0; r < a.n; r++) {
            const float *q = a.probs ? (const float *)tv + r * a.c : NULL;
            int64_t t = row_target(&a, tv, r);
            double sum = 0;
            for (int64_t j = 0; j < a.c; j++) sum += nn_f32(coef)[r * a.c + j] = coef_at(&a, q, t, j);
            nn_f32(total)[r] = (float)sum;
        }
    }
    nn_tensor *p = z ? g_keep(&s, nn_softmax(z, 1)) : NULL;
    nn_tensor *d = g_sub(&s, g_mul(&s, p, total), coef);
    nn_tensor *gr = c->reduction == 0 ? g_keep(&s, nn_unsqueeze((nn_tensor *)g, 1))
                    : c->reduction == 1 ? g_mulk(&s, g, 1.0 / c->denom) : (nn_tensor *)g;
    gin[0] = nn_scope_result(&s, g_mul(&s, d, gr));
    return nn_scope_end(&s);
}

NN_OP_GRAPH(ce_op, "cross_entropy", ce_backward, ce_backward_graph, ce_ctx);

nn_tensor *nn_cross_entropy(const nn_tensor *logits, const nn_tensor *target,
                            const nn_tensor *weight, int64_t ignore_index,
                            double label_smoothing, int reduction, int64_t base) {
    if (nn_is_half(logits->dtype)) { /* in f32 (the loss stays f32) */
        nn_tensor *lf = nn_widen(logits);
        nn_tensor *y = lf ? nn_cross_entropy(lf, target, weight, ignore_index,
                                             label_smoothing, reduction, base) : NULL;
        nn_release(lf);
        return y;
    }
    char s1[96], s2[96];
    if (logits->dtype != NN_F32 || logits->ndim != 2)
        return nn_fail(1, "cross_entropy expects f32 logits of shape (N, C), got %s %s",
                       nn_dtype_name(logits->dtype), nn_shape_str(logits, s1, 96));
    int64_t n = logits->shape[0], c = logits->shape[1];
    int probs = target->dtype == NN_F32;
    if (probs ? !nn_same_shape(target, logits)
              : (target->ndim != 1 || target->shape[0] != n))
        return nn_fail(2, "cross_entropy: target %s %s does not match logits %s "
                          "(expected i64 (N) class indices or f32 (N, C) probabilities)",
                       nn_dtype_name(target->dtype), nn_shape_str(target, s1, 96),
                       nn_shape_str(logits, s2, 96));
    if (weight && (weight->dtype != NN_F32 || weight->ndim != 1 || weight->shape[0] != c))
        return nn_fail(3, "cross_entropy: weight %s must have %lld entries",
                       nn_shape_str(weight, s1, 96), (long long)c);
    if (!(label_smoothing >= 0 && label_smoothing <= 1))
        return nn_fail(5, "label_smoothing must be in [0, 1]");
    if (reduction < 0 || reduction > 2) return nn_fail(6, "unknown reduction");
    int prev = nn_grad_off();
    nn_tensor *tc = nn_contiguous((nn_tensor *)target);
    nn_tensor *wc = weight ? nn_contiguous((nn_tensor *)weight) : NULL;
    nn_tensor *logp = nn_log_softmax(logits, 1);
    nn_tensor *rows = nn_empty(NN_F32, 1, &n);
    nn_tensor *y = NULL;
    double denom = 0;
    ce_args a = {n, c, base, ignore_index, (float)label_smoothing, probs,
                 wc ? nn_f32(wc) : NULL};
    int ok = tc && (!weight || wc) && logp && rows;
    for (int64_t r = 0; ok && !probs && r < n; r++) {
        int64_t t = nn_i64(tc)[r];
        if (t != ignore_index && (t < base || t >= c + base)) {
            nn_fail(2, "cross_entropy: target %lld out of range [%lld, %lld]", (long long)t,
                    (long long)base, (long long)(c + base - 1));
            ok = 0;
        }
    }
    if (ok) {
        const void *tv = probs ? (const void *)nn_f32(tc) : (const void *)nn_i64(tc);
        const float *lpv = nn_f32(logp);
        float *rv = nn_f32(rows);
#pragma omp parallel for reduction(+ : denom) if (n * c > NN_PAR_GRAIN && n > 1)
        for (int64_t r = 0; r < n; r++) {
            int64_t t = row_target(&a, tv, r);
            denom += row_weight(&a, t);
            rv[r] = (float)row_loss(&a, probs ? (const float *)tv + r * c : NULL, t,
                                    lpv + r * c);
        }
    }
    if (ok && reduction == 0) {
        y = nn_retain(rows);
    } else if (ok) {
        double s = 0;
        for (int64_t r = 0; r < n; r++) s += nn_f32(rows)[r];
        y = nn_scalar(NN_F32, reduction == 1 ? s / denom : s); /* 0/0: NaN, as PyTorch */
    }
    nn_release(rows);
    nn_grad_restore(prev);
    const nn_tensor *ins[1] = {logits};
    nn_node *node;
    y = nn_finish_op(y, &ce_op, 1, ins, &node);
    if (node) {
        *NN_CTX(node, ce_ctx) = (ce_ctx){{n, c, base, ignore_index, (float)label_smoothing,
                                          probs, NULL}, reduction, denom};
        if (nn_save(node, SAVED_LOGP, logp) < 0 || nn_save(node, SAVED_TARGET, tc) < 0 ||
            (wc && nn_save(node, SAVED_WEIGHT, wc) < 0) ||
            nn_save(node, SAVED_LOGITS, logits) < 0) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_release(logp); nn_release(tc); nn_release(wc);
    return y;
}
