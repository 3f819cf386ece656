/* embedding.c -- table lookups and dropout.
 *
 * embedding: idx (...) i64 counted from base, W (V, D) -> (..., D). The
 * gradient is built by adding rows of g into zeros: only the rows used
 * are touched, and the padding row (if any) never receives gradient.
 * dropout: y = x m, m = (u >= p) / (1 - p) with u uniform from the
 * generator; the mask is saved by the mul's node. */
#include "autograd.h"
#include "nn_layers.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct { int64_t base, padding_idx; } embedding_ctx; /* slot 0: the indices */

static int embedding_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    nn_tensor *idx = nn_saved(n, 0);
    if (!idx) return -1;
    int64_t v = n->in[1].shape[0], d = n->in[1].shape[1];
    const embedding_ctx *c = NN_CTX(n, embedding_ctx);
    int64_t count = nn_numel(idx), base = c->base, pad = c->padding_idx;
    nn_tensor *gc = nn_contiguous((nn_tensor *)g);
    struct nn_rowgrad *rg = nn_input_rowgrad(n, 1);
    nn_tensor *dw = gc && !rg ? nn_zeros(NN_F32, 2, (int64_t[]){v, d}) : NULL;
    if (gc && rg) { /* row-sparse: add into the rows used only */
        const int64_t *ix = nn_i64(idx);
        const float *gv = nn_f32(gc);
        for (int64_t i = 0; i < count; i++) {
            if (ix[i] == pad) continue;
            nn_rowgrad_touch(rg, ix + i, 1, base);
            float *row = rg->buf + (ix[i] - base) * d;
            for (int64_t j = 0; j < d; j++) row[j] += gv[i * d + j];
        }
        nn_release(gc);
        return 0;
    }
    if (dw) {
        const int64_t *ix = nn_i64(idx);
        const float *gv = nn_f32(gc);
        float *w = nn_f32(dw);
        for (int64_t i = 0; i < count; i++) { /* serial: rows repeat */
            if (ix[i] == pad) continue;
            float *row = w + (ix[i] - base) * d;
            const float *src = gv + i * d;
            for (int64_t j = 0; j < d; j++) row[j] += src[j];
        }
    }
    nn_release(gc);
    gin[1] = dw;
    return dw ? 0 : -1;
}

NN_OP(embedding_op, "embedding", embedding_backward, embedding_ctx);

nn_tensor *nn_embedding(const nn_tensor *idx, const nn_tensor *w,
                        int64_t padding_idx, int64_t base) {
    char s1[96];
    const nn_tensor *half_in[1] = {w};
    if (nn_any_half(1, half_in)) { /* in f32, rounded back */
        nn_tensor *f[1];
        if (nn_widen_all(1, half_in, f) < 0) return NULL;
        nn_tensor *y = nn_embedding(idx, f[0], padding_idx, base);
        nn_release_all(1, f);
        return nn_narrow_to(y, nn_half_result(1, half_in));
    }
    if (w->dtype != NN_F32 || w->ndim != 2)
        return nn_fail(2, "embedding weight must be an f32 (V, D) tensor, got %s %s",
                       nn_dtype_name(w->dtype), nn_shape_str(w, s1, 96));
    if (idx->ndim >= NN_MAX_DIMS) return nn_fail(1, "too many dims");
    int prev = nn_grad_off();
    nn_tensor *ic = nn_contiguous((nn_tensor *)idx);
    nn_tensor *flat = ic ? nn_view(ic, 1, (int64_t[]){nn_numel(ic)}) : NULL;
    nn_tensor *rows = flat ? nn_index_select(w, 0, flat, base) : NULL;
    int64_t shape[NN_MAX_DIMS];
    memcpy(shape, idx->shape, idx->ndim * sizeof *shape);
    shape[idx->ndim] = w->shape[1];
    nn_tensor *y = rows ? nn_view(rows, idx->ndim + 1, shape) : NULL;
    nn_release(flat);
    nn_release(rows);
    nn_grad_restore(prev);
    if (!y && nn_last_error_arg() == 3) { /* index_select blames its index */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", nn_last_error());
        nn_fail(1, "%s", msg);
    }
    const nn_tensor *ins[2] = {idx, w};
    nn_node *node;
    y = nn_finish_saving(y, &embedding_op, 2, ins, ic, &node);
    if (node) *NN_CTX(node, embedding_ctx) = (embedding_ctx){base, padding_idx};
    nn_release(ic);
    return y;
}

int nn_embedding_renorm_(nn_tensor *w, const nn_tensor *idx, double max_norm,
                         double p, int64_t base) {
    if (w->dtype != NN_F32 || w->ndim != 2 || !nn_is_contiguous(w))
        return nn_failed(1, "max_norm needs a contiguous f32 (V, D) weight");
    nn_tensor *ic = nn_contiguous((nn_tensor *)idx);
    if (!ic) return -1;
    int64_t v = w->shape[0], d = w->shape[1], n = nn_numel(ic);
    const int64_t *ix = nn_i64(ic);
    for (int64_t i = 0; i < n; i++)
        if (ix[i] < base || ix[i] >= v + base) {
            nn_release(ic);
            return nn_failed(2, "index %lld out of range [%lld, %lld]",
                             (long long)ix[i], (long long)base, (long long)(v + base - 1));
        }
    for (int64_t i = 0; i < n; i++) {
        float *row = nn_f32(w) + (ix[i] - base) * d;
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += pow(fabs(row[j]), p);
        double norm = pow(s, 1.0 / p);
        if (norm > max_norm) {
            float scale = (float)(max_norm / (norm + 1e-7)); /* as PyTorch */
            for (int64_t j = 0; j < d; j++) row[j] *= scale;
        }
    }
    nn_bump_version(w);
    nn_release(ic);
    return 0;
}

nn_tensor *nn_dropout(nn_rng *r, const nn_tensor *x, double p, int training) {
    if (!(p >= 0 && p <= 1)) return nn_fail(2, "dropout probability must be in [0, 1]");
    if (nn_is_half(x->dtype) && training && p > 0) { /* in f32, rounded back */
        nn_tensor *xf = nn_widen(x), *y = xf ? nn_dropout(r, xf, p, training) : NULL;
        nn_release(xf);
        return nn_narrow_to(y, x->dtype);
    }
    if (x->dtype != NN_F32 && !nn_is_half(x->dtype))
        return nn_fail(1, "dropout expects a floating input");
    if (!training || p == 0) return nn_retain((nn_tensor *)x);
    int prev = nn_grad_off();
    nn_tensor *mask = nn_empty(NN_F32, x->ndim, x->shape);
    if (mask) {
        float *m = nn_f32(mask), keep = p < 1 ? (float)(1.0 / (1.0 - p)) : 0.0f;
        int64_t n = nn_numel(mask), chunk = 4096; /* a multiple of 64: whole groups */
        uint64_t seed = r->seed, base = r->offset;
#pragma omp parallel for if (n > NN_PAR_GRAIN) schedule(static)
        for (int64_t c = 0; c < (n + chunk - 1) / chunk; c++) {
            int64_t e0 = c * chunk, len = n - e0 < chunk ? n - e0 : chunk;
            nn_philox_mask(seed, base + NN_PHILOX_MASK_BLOCKS(e0), m + e0, len, (float)p, keep, 0);
        }
        r->offset += NN_PHILOX_MASK_BLOCKS(n);
    }
    nn_grad_restore(prev);
    nn_tensor *y = mask ? nn_mul(x, mask) : NULL; /* recorded: saves the mask */
    nn_release(mask);
    return y;
}
