/* embedding_bag.c -- sums, means or maxima of bags of embedding rows
 * without materialising the (N, D) rows (PyTorch's EmbeddingBag).
 *
 * idx (N) i64 counted from base, bag b the entries offsets[b] ..
 * offsets[b + 1] - 1 (offsets counted from base too, the first = base; the
 * last bag runs to the end), W (V, D) -> (B, D). Entries equal to
 * padding_idx are left out (of the mean's count too); an empty bag is
 * zeros. Sum mode may weight each entry (per_sample_weights (N)). Max
 * keeps, per bag and column, the row that won, for backward. */
#include "autograd.h"
#include "nn_layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    nn_bag_mode mode;
    int64_t base, padding_idx, bags;
} bag_ctx;

enum { S_IDX, S_STARTS, S_W, S_PSW, S_ARGMAX };

/* start of bag b and one past its end */
static inline void bag_span(const int64_t *starts, int64_t b, int64_t bags, int64_t n, int64_t *lo,
                            int64_t *hi) {
    *lo = starts[b];
    *hi = b + 1 < bags ? starts[b + 1] : n;
}

static int bag_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    const bag_ctx *c = NN_CTX(n, bag_ctx);
    nn_tensor *idx = nn_saved(n, S_IDX), *st = nn_saved(n, S_STARTS);
    nn_tensor *w = n->saved[S_W] ? nn_saved(n, S_W) : NULL, *psw = n->saved[S_PSW] ? nn_saved(n, S_PSW) : NULL;
    nn_tensor *arg = c->mode == NN_BAG_MAX ? nn_saved(n, S_ARGMAX) : NULL;
    nn_tensor *g = idx && st ? nn_contiguous((nn_tensor *)gout) : NULL;
    if (!g || (c->mode == NN_BAG_MAX && !arg)) {
        nn_release(g);
        return -1;
    }
    int64_t d = n->in[0].shape[1], nidx = nn_numel(idx);
    const int64_t *ix = nn_i64(idx), *sv = nn_i64(st);
    const float *gv = nn_f32(g);
    int rc = 0;
    if (nn_input_needs(n, 0)) {
        nn_tensor *dw = gin[0] = nn_zeros(NN_F32, 2, n->in[0].shape);
        if (!dw) rc = -1;
        for (int64_t b = 0; rc == 0 && b < c->bags; b++) {
            int64_t lo, hi, used = 0;
            bag_span(sv, b, c->bags, nidx, &lo, &hi);
            const float *gb = gv + b * d;
            if (c->mode == NN_BAG_MAX) {
                const int64_t *a = nn_i64(arg) + b * d;
                for (int64_t j = 0; j < d; j++)
                    if (a[j] >= 0) nn_f32(dw)[a[j] * d + j] += gb[j];
                continue;
            }
            for (int64_t i = lo; i < hi; i++) used += ix[i] != c->padding_idx;
            for (int64_t i = lo; i < hi; i++) {
                if (ix[i] == c->padding_idx) continue;
                float s = c->mode == NN_BAG_MEAN ? 1.0f / (float)used : psw ? nn_f32(psw)[i] : 1.0f;
                float *row = nn_f32(dw) + (ix[i] - c->base) * d;
                for (int64_t j = 0; j < d; j++) row[j] += s * gb[j];
            }
        }
    }
    if (rc == 0 && n->nin > 1 && nn_input_needs(n, 1)) { /* d psw[i] = <g[bag of i], W[idx[i]]> */
        nn_tensor *dp = gin[1] = nn_zeros(NN_F32, 1, &nidx);
        if (!dp || !w) rc = -1;
        for (int64_t b = 0; rc == 0 && b < c->bags; b++) {
            int64_t lo, hi;
            bag_span(sv, b, c->bags, nidx, &lo, &hi);
            for (int64_t i = lo; i < hi; i++) {
                if (ix[i] == c->padding_idx) continue;
                const float *row = nn_f32(w) + (ix[i] - c->base) * d;
                double acc = 0;
                for (int64_t j = 0; j < d; j++) acc += (double)gv[b * d + j] * row[j];
                nn_f32(dp)[i] = (float)acc;
            }
        }
    }
    nn_release(g);
    return rc;
}

NN_OP(bag_op, "embedding_bag", bag_backward, bag_ctx);

nn_tensor *nn_embedding_bag(const nn_tensor *idx, const nn_tensor *offsets, const nn_tensor *w,
                            nn_bag_mode mode, const nn_tensor *per_sample_weights,
                            int64_t padding_idx, int64_t base) {
    char s1[96], s2[96];
    const nn_tensor *psw = per_sample_weights;
    if ((unsigned)mode > NN_BAG_MAX) return nn_fail(4, "embedding_bag: unknown mode %d", (int)mode);
    if (w->dtype != NN_F32 || w->ndim != 2)
        return nn_fail(3, "embedding_bag: weight %s must be f32 (V, D)", nn_shape_str(w, s1, 96));
    if (idx->dtype != NN_I64 || (offsets ? idx->ndim != 1 : idx->ndim != 2))
        return nn_fail(1, "embedding_bag: indices %s must be i64 %s", nn_shape_str(idx, s1, 96),
                       offsets ? "(N) with offsets" : "(B, L) without offsets");
    int64_t nidx = nn_numel(idx), bags = offsets ? nn_numel(offsets) : idx->shape[0];
    if (offsets && (offsets->dtype != NN_I64 || offsets->ndim != 1))
        return nn_fail(2, "embedding_bag: offsets %s must be i64 (B)", nn_shape_str(offsets, s1, 96));
    if (psw && (mode != NN_BAG_SUM || psw->dtype != NN_F32 || nn_numel(psw) != nidx ||
                psw->ndim != idx->ndim))
        return nn_fail(5, "embedding_bag: per_sample_weights %s must be f32 shaped like the indices "
                          "%s, in sum mode only", nn_shape_str(psw, s1, 96), nn_shape_str(idx, s2, 96));
    int64_t v = w->shape[0], d = w->shape[1];
    int prev = nn_grad_off();
    nn_tensor *ic = nn_contiguous((nn_tensor *)idx);
    nn_tensor *starts = nn_empty(NN_I64, 1, &bags);
    nn_tensor *oc = offsets ? nn_contiguous((nn_tensor *)offsets) : NULL;
    nn_tensor *wc = nn_contiguous((nn_tensor *)w), *pc = psw ? nn_contiguous((nn_tensor *)psw) : NULL;
    nn_tensor *y = nn_zeros(NN_F32, 2, (int64_t[]){bags, d});
    nn_tensor *arg = mode == NN_BAG_MAX ? nn_full(2, (int64_t[]){bags, d}, -1) : NULL;
    nn_tensor *arg64 = arg ? nn_to_dtype(arg, NN_I64) : NULL;
    int rc = ic && starts && (oc || !offsets) && wc && (pc || !psw) && y && (arg64 || mode != NN_BAG_MAX)
                 ? 0 : -1;
    const int64_t *ix = rc == 0 ? nn_i64(ic) : NULL;
    for (int64_t i = 0; rc == 0 && i < nidx; i++)
        if (ix[i] < base || ix[i] - base >= v)
            rc = nn_failed(1, "embedding_bag: index %lld out of range [%lld, %lld]", (long long)ix[i],
                           (long long)base, (long long)(v - 1 + base));
    for (int64_t b = 0; rc == 0 && b < bags; b++) {
        int64_t s = offsets ? nn_i64(oc)[b] - base : b * idx->shape[1];
        int64_t before = b ? nn_i64(starts)[b - 1] : 0;
        if (s < 0 || s > nidx || s < before || (b == 0 && s != 0))
            rc = nn_failed(2, "embedding_bag: offsets must start at %lld and not decrease up to %lld "
                              "(offset %lld of bag %lld)", (long long)base, (long long)(nidx + base),
                           (long long)(s + base), (long long)(b + base));
        else nn_i64(starts)[b] = s;
    }
    for (int64_t b = 0; rc == 0 && b < bags; b++) {
        int64_t lo, hi, used = 0;
        bag_span(nn_i64(starts), b, bags, nidx, &lo, &hi);
        float *out = nn_f32(y) + b * d;
        int64_t *a = arg64 ? nn_i64(arg64) + b * d : NULL;
        for (int64_t i = lo; i < hi; i++) {
            if (ix[i] == padding_idx) continue;
            int64_t r = ix[i] - base;
            const float *row = nn_f32(wc) + r * d;
            float s = pc ? nn_f32(pc)[i] : 1.0f;
            for (int64_t j = 0; j < d; j++) {
                if (mode != NN_BAG_MAX) out[j] += s * row[j];
                else if (a[j] < 0 || row[j] > out[j] || row[j] != row[j]) out[j] = row[j], a[j] = r;
            }
            used++;
        }
        if (mode == NN_BAG_MEAN && used > 1)
            for (int64_t j = 0; j < d; j++) out[j] /= (float)used;
    }
    nn_grad_restore(prev);
    if (rc < 0) {
        nn_release(y);
        y = NULL;
    }
    const nn_tensor *ins[2] = {w, psw};
    nn_node *node;
    y = nn_finish_op(y, &bag_op, 2, ins, &node);
    if (node) {
        *NN_CTX(node, bag_ctx) = (bag_ctx){mode, base, padding_idx, bags};
        if (nn_save(node, S_IDX, ic) < 0 || nn_save(node, S_STARTS, starts) < 0 ||
            (psw && nn_input_needs(node, 1) && nn_save(node, S_W, wc) < 0) ||
            (pc && nn_save(node, S_PSW, pc) < 0) || (arg64 && nn_save(node, S_ARGMAX, arg64) < 0)) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_tensor *tmp[] = {ic, starts, oc, wc, pc, arg, arg64};
    nn_release_all(7, tmp);
    return y;
}
