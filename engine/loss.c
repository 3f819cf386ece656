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

#include <math.h>
#include <string.h>

typedef struct {
    int64_t n, c, base, ignore;
    double eps;
    int probs;
    const float *w;
} ce_args;

/* coefficients of one row into coef; returns their weight for the mean */
static double row_coefs(const ce_args *a, const void *target, int64_t r, float *coef) {
    if (a->probs) {
        const float *q = (const float *)target + r * a->c;
        for (int64_t j = 0; j < a->c; j++)
            coef[j] = (float)((a->w ? a->w[j] : 1.0) * ((1 - a->eps) * q[j] + a->eps / a->c));
        return 1.0;
    }
    int64_t t = ((const int64_t *)target)[r];
    if (t == a->ignore) {
        memset(coef, 0, a->c * sizeof *coef);
        return 0.0;
    }
    t -= a->base;
    for (int64_t j = 0; j < a->c; j++)
        coef[j] = (float)((a->w ? a->w[j] : 1.0) * (a->eps / a->c + (j == t ? 1 - a->eps : 0)));
    return a->w ? a->w[t] : 1.0;
}

static int ce_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    nn_tensor *logp = nn_saved(n, 0), *target = nn_saved(n, 1);
    nn_tensor *w = n->nsaved > 2 ? nn_saved(n, 2) : NULL;
    if (!logp || !target || (n->nsaved > 2 && !w)) return -1;
    ce_args a = {n->larg[0], n->larg[1], n->larg[2], n->larg[3], n->farg[0],
                 n->iarg[0], w ? nn_f32(w) : NULL};
    int reduction = n->iarg[1]; /* 0 none, 1 mean, 2 sum */
    double denom = n->farg[1];
    nn_tensor *gc = nn_contiguous((nn_tensor *)g);
    nn_tensor *dz = gc ? nn_empty(NN_F32, 2, (int64_t[]){a.n, a.c}) : NULL;
    float *coef = dz ? nn_alloc((size_t)(a.c ? a.c : 1) * sizeof *coef) : NULL;
    if (!coef) {
        nn_release(gc);
        nn_release(dz);
        return nn_failed(0, "out of memory");
    }
    const void *tv = a.probs ? (const void *)nn_f32(target) : (const void *)nn_i64(target);
    for (int64_t r = 0; r < a.n; r++) {
        row_coefs(&a, tv, r, coef);
        double total = 0;
        for (int64_t j = 0; j < a.c; j++) total += coef[j];
        float gr = reduction == 0 ? nn_f32(gc)[r]
                                  : (float)(nn_f32(gc)[0] / (reduction == 1 ? denom : 1.0));
        const float *lp = nn_f32(logp) + r * a.c;
        float *out = nn_f32(dz) + r * a.c;
        for (int64_t j = 0; j < a.c; j++)
            out[j] = gr * (expf(lp[j]) * (float)total - coef[j]);
    }
    nn_free(coef);
    nn_release(gc);
    gin[0] = dz;
    return 0;
}

nn_tensor *nn_cross_entropy(const nn_tensor *logits, const nn_tensor *target,
                            const nn_tensor *weight, int64_t ignore_index,
                            double label_smoothing, int reduction, int64_t base) {
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
    float *coef = nn_alloc((size_t)(c ? c : 1) * sizeof *coef);
    nn_tensor *y = NULL;
    double denom = 0;
    ce_args a = {n, c, base, ignore_index, label_smoothing, probs,
                 wc ? nn_f32(wc) : NULL};
    int ok = tc && (!weight || wc) && logp && rows && coef;
    for (int64_t r = 0; ok && r < n; r++) {
        if (!probs) {
            int64_t t = nn_i64(tc)[r];
            if (t != ignore_index && (t < base || t >= c + base)) {
                nn_fail(2, "cross_entropy: target %lld out of range [%lld, %lld]",
                        (long long)t, (long long)base, (long long)(c + base - 1));
                ok = 0;
                break;
            }
        }
        denom += row_coefs(&a, probs ? (const void *)nn_f32(tc) : (const void *)nn_i64(tc),
                           r, coef);
        double s = 0;
        const float *lp = nn_f32(logp) + r * c;
        for (int64_t j = 0; j < c; j++) s -= coef[j] * (double)lp[j];
        nn_f32(rows)[r] = (float)s;
    }
    if (ok && reduction == 0) {
        y = nn_retain(rows);
    } else if (ok) {
        double s = 0;
        for (int64_t r = 0; r < n; r++) s += nn_f32(rows)[r];
        y = nn_scalar(NN_F32, reduction == 1 ? s / denom : s); /* 0/0: NaN, as PyTorch */
    }
    nn_free(coef);
    nn_release(rows);
    nn_grad_restore(prev);
    const nn_tensor *ins[1] = {logits};
    nn_node *node;
    y = nn_finish_op(y, "cross_entropy", ce_backward, 1, ins, &node);
    if (node) {
        node->larg[0] = n;
        node->larg[1] = c;
        node->larg[2] = base;
        node->larg[3] = ignore_index;
        node->farg[0] = label_smoothing;
        node->farg[1] = denom;
        node->iarg[0] = probs;
        node->iarg[1] = reduction;
        if (nn_save(node, logp) < 0 || nn_save(node, tc) < 0 ||
            (wc && nn_save(node, wc) < 0)) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_release(logp); nn_release(tc); nn_release(wc);
    return y;
}
