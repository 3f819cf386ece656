/* fusion.c -- the two cross-modal fusion operators that are more than a
 * projection: the gated multimodal unit and MFB bilinear pooling, fused
 * forward and backward (the projections before them are nn_linear).
 *
 * gated_fusion: h, g (B, M, D) per-modality pre-activations and gate
 * logits, mask (B, M) or NULL (zero = modality missing for that sample):
 *   z = softmax over the present m of g,  y = sum_m z_m tanh(h_m)  (B, D)
 *   dh_m = dy z_m (1 - t_m^2),  dg_m = z_m (dy t_m - sum_k z_k dy t_k)
 * A sample with no modality present gets y = 0 and no gradient.
 *
 * mfb_pool: a, b (B, D k) -> y (B, D):
 *   s_j = sum over the j-th group of k of a b,  p = sign(s) sqrt(|s| + 1e-8),
 *   y = p / (|p| + 1e-12)
 *   dp = dy / n' - p (p . dy) / (n'^2 |p|)  with n' = |p| + 1e-12,
 *   ds = dp / (2 sqrt(|s| + 1e-8)) (0 where s = 0), da = ds b, db = ds a. */
#include "autograd.h"
#include "nn_layers.h"

#include <math.h>
#include <stdlib.h>

#define MFB_SQRT_EPS 1e-8f
#define MFB_NORM_EPS 1e-12

/* z (M) for one (b, d): softmax over present modalities; false if none */
static bool gate_weights(const float *g, const float *mask, int64_t m,
                         int64_t d, float *z) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < m; i++)
        if (!mask || mask[i] != 0.0f) mx = fmaxf(mx, g[i * d]);
    if (mx == -INFINITY) return false;
    float sum = 0;
    for (int64_t i = 0; i < m; i++) {
        z[i] = (!mask || mask[i] != 0.0f) ? expf(g[i * d] - mx) : 0.0f;
        sum += z[i];
    }
    for (int64_t i = 0; i < m; i++) z[i] /= sum;
    return true;
}

static int gated_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    nn_tensor *h = nn_saved(n, 0), *g = nn_saved(n, 1);
    nn_tensor *mask = n->saved[2] ? nn_saved(n, 2) : NULL;
    if (!h || !g || (n->saved[2] && !mask)) return -1;
    nn_tensor *dy = nn_contiguous((nn_tensor *)gout);
    nn_tensor *dh = nn_empty(NN_F32, 3, h->shape), *dg = nn_empty(NN_F32, 3, h->shape);
    int rc = dy && dh && dg ? 0 : -1;
    int64_t bsz = h->shape[0], m = h->shape[1], d = h->shape[2];
    const float *hv = nn_f32(h), *gv = nn_f32(g), *mv = mask ? nn_f32(mask) : NULL;
    float *dhv = rc == 0 ? nn_f32(dh) : NULL, *dgv = rc == 0 ? nn_f32(dg) : NULL;
#pragma omp parallel for if (rc == 0 && bsz * m * d > NN_PAR_GRAIN)
    for (int64_t b = 0; b < bsz; b++) {
        if (rc != 0) continue;
        float z[NN_FUSION_MAX_MODALITIES], t[NN_FUSION_MAX_MODALITIES];
        const float *mb = mv ? mv + b * m : NULL, *dyb = nn_f32(dy) + b * d;
        for (int64_t j = 0; j < d; j++) {
            int64_t o = b * m * d + j;
            if (!gate_weights(gv + o, mb, m, d, z)) {
                for (int64_t i = 0; i < m; i++) dhv[o + i * d] = dgv[o + i * d] = 0;
                continue;
            }
            float dot = 0;
            for (int64_t i = 0; i < m; i++) {
                t[i] = tanhf(hv[o + i * d]);
                dot += z[i] * dyb[j] * t[i];
            }
            for (int64_t i = 0; i < m; i++) {
                dhv[o + i * d] = dyb[j] * z[i] * (1 - t[i] * t[i]);
                dgv[o + i * d] = z[i] * (dyb[j] * t[i] - dot);
            }
        }
    }
    nn_release(dy);
    if (rc == 0 && nn_input_needs(n, 0)) gin[0] = dh; else nn_release(dh);
    if (rc == 0 && nn_input_needs(n, 1)) gin[1] = dg; else nn_release(dg);
    return rc;
}

NN_OP_NO_CTX(gated_op, "gated_fusion", gated_backward);

nn_tensor *nn_gated_fusion(const nn_tensor *h, const nn_tensor *g,
                           const nn_tensor *mask) {
    NN_NO_HALF_PTR(h, 1, "gated_fusion");
    NN_NO_HALF_PTR(g, 2, "gated_fusion");
    char s1[96], s2[96];
    if (h->dtype != NN_F32 || g->dtype != NN_F32 || (mask && mask->dtype != NN_F32))
        return nn_fail(1, "gated_fusion expects f32 tensors");
    if (h->ndim != 3 || !nn_same_shape(h, g))
        return nn_fail(2, "gated_fusion: projections %s and gate logits %s must "
                       "both be (B, M, D)", nn_shape_str(h, s1, 96), nn_shape_str(g, s2, 96));
    if (h->shape[1] < 1 || h->shape[1] > NN_FUSION_MAX_MODALITIES)
        return nn_fail(2, "gated_fusion: %lld modalities (1 to %d supported)",
                       (long long)h->shape[1], NN_FUSION_MAX_MODALITIES);
    if (mask && (mask->ndim != 2 || mask->shape[0] != h->shape[0] ||
                 mask->shape[1] != h->shape[1]))
        return nn_fail(3, "gated_fusion: mask %s does not match (B, M) = (%lld, %lld)",
                       nn_shape_str(mask, s1, 96), (long long)h->shape[0],
                       (long long)h->shape[1]);
    int prev = nn_grad_off();
    nn_tensor *hc = nn_contiguous((nn_tensor *)h), *gc = nn_contiguous((nn_tensor *)g);
    nn_tensor *mc = mask ? nn_contiguous((nn_tensor *)mask) : NULL;
    int64_t bsz = h->shape[0], m = h->shape[1], d = h->shape[2];
    int64_t shape[2] = {bsz, d};
    nn_tensor *y = hc && gc && (!mask || mc) ? nn_empty(NN_F32, 2, shape) : NULL;
    if (y) {
        const float *hv = nn_f32(hc), *gv = nn_f32(gc), *mv = mc ? nn_f32(mc) : NULL;
        float *yv = nn_f32(y);
#pragma omp parallel for if (bsz * m * d > NN_PAR_GRAIN)
        for (int64_t b = 0; b < bsz; b++) {
            float z[NN_FUSION_MAX_MODALITIES];
            for (int64_t j = 0; j < d; j++) {
                int64_t o = b * m * d + j;
                float acc = 0;
                if (gate_weights(gv + o, mv ? mv + b * m : NULL, m, d, z))
                    for (int64_t i = 0; i < m; i++) acc += z[i] * tanhf(hv[o + i * d]);
                yv[b * d + j] = acc;
            }
        }
    }
    nn_grad_restore(prev);
    const nn_tensor *ins[2] = {h, g};
    nn_node *node;
    y = nn_finish_op(y, &gated_op, 2, ins, &node);
    if (node && (nn_save(node, 0, hc) < 0 || nn_save(node, 1, gc) < 0 ||
                 (mc && nn_save(node, 2, mc) < 0))) {
        nn_release(y);
        y = NULL;
    }
    nn_release(hc); nn_release(gc); nn_release(mc);
    return y;
}

/* s (B, D) group sums of a b */
static void mfb_sums(const float *a, const float *b, float *s, int64_t rows,
                     int64_t d, int64_t k) {
#pragma omp parallel for if (rows * d * k > NN_PAR_GRAIN)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < d; j++) {
            const float *ar = a + (r * d + j) * k, *br = b + (r * d + j) * k;
            float acc = 0;
            for (int64_t i = 0; i < k; i++) acc += ar[i] * br[i];
            s[r * d + j] = acc;
        }
}

static float signed_sqrt(float s) {
    float r = sqrtf(fabsf(s) + MFB_SQRT_EPS);
    return s > 0 ? r : s < 0 ? -r : 0.0f;
}

typedef struct { int64_t factor; } mfb_ctx;

static int mfb_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    nn_tensor *a = nn_saved(n, 0), *b = nn_saved(n, 1);
    if (!a || !b) return -1;
    int64_t rows = a->shape[0], k = NN_CTX(n, mfb_ctx)->factor, d = a->shape[1] / k;
    int64_t sshape[2] = {rows, d};
    nn_tensor *dy = nn_contiguous((nn_tensor *)gout), *s = nn_empty(NN_F32, 2, sshape);
    nn_tensor *da = nn_empty(NN_F32, 2, a->shape), *db = nn_empty(NN_F32, 2, a->shape);
    int rc = dy && s && da && db ? 0 : -1;
    if (rc == 0) {
        const float *av = nn_f32(a), *bv = nn_f32(b), *dyv = nn_f32(dy);
        float *sv = nn_f32(s);
        mfb_sums(av, bv, sv, rows, d, k);
        float *dav = nn_f32(da), *dbv = nn_f32(db);
#pragma omp parallel for if (rows * d * k > NN_PAR_GRAIN)
        for (int64_t r = 0; r < rows; r++) {
            float *sr = sv + r * d;
            const float *dyr = dyv + r * d;
            double nrm = 0, pdy = 0;
            for (int64_t j = 0; j < d; j++) {
                float p = signed_sqrt(sr[j]);
                nrm += (double)p * p;
                pdy += (double)p * dyr[j];
            }
            nrm = sqrt(nrm);
            double np = nrm + MFB_NORM_EPS;
            double c = nrm > 0 ? pdy / (np * np * nrm) : 0;
            for (int64_t j = 0; j < d; j++) { /* s becomes ds */
                float p = signed_sqrt(sr[j]);
                float dp = (float)(dyr[j] / np - p * c);
                sr[j] = sr[j] != 0 ? dp * 0.5f / sqrtf(fabsf(sr[j]) + MFB_SQRT_EPS) : 0.0f;
            }
            for (int64_t j = 0; j < d; j++)
                for (int64_t i = 0; i < k; i++) {
                    int64_t o = (r * d + j) * k + i;
                    dav[o] = sr[j] * bv[o];
                    dbv[o] = sr[j] * av[o];
                }
        }
    }
    nn_release(dy); nn_release(s);
    if (rc == 0 && nn_input_needs(n, 0)) gin[0] = da; else nn_release(da);
    if (rc == 0 && nn_input_needs(n, 1)) gin[1] = db; else nn_release(db);
    return rc;
}

NN_OP(mfb_op, "mfb_pool", mfb_backward, mfb_ctx);

nn_tensor *nn_mfb_pool(const nn_tensor *a, const nn_tensor *b, int64_t factor) {
    NN_NO_HALF_PTR(a, 1, "mfb_pool");
    NN_NO_HALF_PTR(b, 2, "mfb_pool");
    char s1[96], s2[96];
    if (a->dtype != NN_F32 || b->dtype != NN_F32)
        return nn_fail(1, "mfb_pool expects f32 tensors");
    if (a->ndim != 2 || !nn_same_shape(a, b))
        return nn_fail(2, "mfb_pool: %s and %s must be equal (B, D*factor) matrices",
                       nn_shape_str(a, s1, 96), nn_shape_str(b, s2, 96));
    if (factor < 1 || a->shape[1] % factor != 0)
        return nn_fail(3, "mfb_pool: factor %lld does not divide the width %lld",
                       (long long)factor, (long long)a->shape[1]);
    int prev = nn_grad_off();
    nn_tensor *ac = nn_contiguous((nn_tensor *)a), *bc = nn_contiguous((nn_tensor *)b);
    int64_t rows = a->shape[0], d = a->shape[1] / factor, shape[2] = {rows, d};
    nn_tensor *y = ac && bc ? nn_empty(NN_F32, 2, shape) : NULL;
    if (y) {
        float *yv = nn_f32(y);
        mfb_sums(nn_f32(ac), nn_f32(bc), yv, rows, d, factor);
#pragma omp parallel for if (rows * d > NN_PAR_GRAIN)
        for (int64_t r = 0; r < rows; r++) {
            float *yr = yv + r * d;
            double nrm = 0;
            for (int64_t j = 0; j < d; j++) {
                yr[j] = signed_sqrt(yr[j]);
                nrm += (double)yr[j] * yr[j];
            }
            float inv = (float)(1.0 / (sqrt(nrm) + MFB_NORM_EPS));
            for (int64_t j = 0; j < d; j++) yr[j] *= inv;
        }
    }
    nn_grad_restore(prev);
    const nn_tensor *ins[2] = {a, b};
    nn_node *node;
    y = nn_finish_op(y, &mfb_op, 2, ins, &node);
    if (node) {
        NN_CTX(node, mfb_ctx)->factor = factor;
        if (nn_save(node, 0, ac) < 0 || nn_save(node, 1, bc) < 0) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_release(ac); nn_release(bc);
    return y;
}
