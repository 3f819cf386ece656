/* kge.c -- knowledge-graph embedding scores, fused forward and backward.
 *
 * Every model scores a query (anchor entity a, relation r) against
 * candidate entities e. A query vector q(a, r) is formed once, then each
 * candidate costs one pass over its row; nothing of shape (B, N, D) exists.
 *   TransE    q = a + r (tails) or a - r (heads)      s = gamma - |q - e|_p
 *   DistMult  q = a * r                                s = q . e
 *   ComplEx   q = a r (tails) or conj(a) r, conjugated (heads)   s = q . e
 *             (complex vectors stored [re | im]; s = Re<a, r, conj(t)>)
 *   RotatE    r = exp(i phase * R), q = a r (tails) or a conj(r) (heads)
 *             s = gamma - sum_j |q_j - e_j|          (complex moduli)
 * Candidates are per query (B, N) or shared by the batch (N). Backward:
 * dq from every candidate (parallel over queries), candidate rows from
 * every query (each thread owns the rows r with r % threads == its id, so
 * rows repeated across queries never race), then anchors and relations.
 * Gradients go to dense (V, D) tensors, or into the rows used when the
 * table keeps row-sparse gradients (rowgrad.c). */
#include "autograd.h"
#include "nn_layers.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define TILE 64 /* candidate rows per block when candidates are shared */

typedef struct {
    nn_kge_model model;
    int p, head;
    float gamma, phase;
    int64_t de, dr;
} kge;

/* q from the anchor row a and relation row r */
static void query(const kge *k, const float *a, const float *r, float *q) {
    int64_t d = k->de, h = d / 2;
    switch (k->model) {
    case NN_KGE_TRANSE:
        for (int64_t j = 0; j < d; j++) q[j] = k->head ? a[j] - r[j] : a[j] + r[j];
        break;
    case NN_KGE_DISTMULT:
        for (int64_t j = 0; j < d; j++) q[j] = a[j] * r[j];
        break;
    case NN_KGE_COMPLEX:
        for (int64_t j = 0; j < h; j++) {
            float ar = a[j], ai = a[h + j], rr = r[j], ri = r[h + j];
            q[j] = k->head ? rr * ar + ri * ai : ar * rr - ai * ri;
            q[h + j] = k->head ? rr * ai - ri * ar : ar * ri + ai * rr;
        }
        break;
    case NN_KGE_ROTATE:
        for (int64_t j = 0; j < h; j++) {
            float c = cosf(r[j] * k->phase), s = sinf(r[j] * k->phase);
            if (k->head) s = -s;
            q[j] = a[j] * c - a[h + j] * s;
            q[h + j] = a[j] * s + a[h + j] * c;
        }
        break;
    }
}

/* dq -> added into da and dr */
static void query_backward(const kge *k, const float *a, const float *r,
                           const float *dq, float *da, float *dr) {
    int64_t d = k->de, h = d / 2;
    switch (k->model) {
    case NN_KGE_TRANSE:
        for (int64_t j = 0; j < d; j++) {
            da[j] += dq[j];
            dr[j] += k->head ? -dq[j] : dq[j];
        }
        break;
    case NN_KGE_DISTMULT:
        for (int64_t j = 0; j < d; j++) {
            da[j] += dq[j] * r[j];
            dr[j] += dq[j] * a[j];
        }
        break;
    case NN_KGE_COMPLEX:
        for (int64_t j = 0; j < h; j++) {
            float ar = a[j], ai = a[h + j], rr = r[j], ri = r[h + j];
            float gr = dq[j], gi = dq[h + j];
            if (k->head) {
                da[j] += gr * rr - gi * ri;
                da[h + j] += gr * ri + gi * rr;
                dr[j] += gr * ar + gi * ai;
                dr[h + j] += gr * ai - gi * ar;
            } else {
                da[j] += gr * rr + gi * ri;
                da[h + j] += -gr * ri + gi * rr;
                dr[j] += gr * ar + gi * ai;
                dr[h + j] += -gr * ai + gi * ar;
            }
        }
        break;
    case NN_KGE_ROTATE:
        for (int64_t j = 0; j < h; j++) {
            float c = cosf(r[j] * k->phase), s = sinf(r[j] * k->phase);
            if (k->head) s = -s;
            float ar = a[j], ai = a[h + j], gr = dq[j], gi = dq[h + j];
            float qr = ar * c - ai * s, qi = ar * s + ai * c;
            da[j] += gr * c + gi * s;
            da[h + j] += -gr * s + gi * c;
            /* dq/dtheta = (-qi, qr) for a r; conj(r) flips the sign */
            float dtheta = -gr * qi + gi * qr;
            dr[j] += (k->head ? -dtheta : dtheta) * k->phase;
        }
        break;
    }
}

/* the (B, D) queries of a batch: anchor rows av with relation rows rv */
static void queries(const kge *k, const float *ev, const float *rtab, const int64_t *av,
                    const int64_t *rv, int64_t bsz, int64_t base, float *qv) {
#pragma omp parallel for if (bsz * k->de > NN_PAR_GRAIN)
    for (int64_t b = 0; b < bsz; b++)
        query(k, ev + (av[b] - base) * k->de, rtab + (rv[b] - base) * k->dr, qv + b * k->de);
}

static float score(const kge *k, const float *q, const float *e) {
    int64_t d = k->de, h = d / 2;
    float acc = 0;
    switch (k->model) {
    case NN_KGE_TRANSE:
        if (k->p == 1) {
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < d; j++) acc += fabsf(q[j] - e[j]);
            return k->gamma - acc;
        }
#pragma omp simd reduction(+ : acc)
        for (int64_t j = 0; j < d; j++) acc += (q[j] - e[j]) * (q[j] - e[j]);
        return k->gamma - sqrtf(acc);
    case NN_KGE_DISTMULT:
    case NN_KGE_COMPLEX:
#pragma omp simd reduction(+ : acc)
        for (int64_t j = 0; j < d; j++) acc += q[j] * e[j];
        return acc;
    case NN_KGE_ROTATE:
#pragma omp simd reduction(+ : acc)
        for (int64_t j = 0; j < h; j++) {
            float x = q[j] - e[j], y = q[h + j] - e[h + j];
            acc += sqrtf(x * x + y * y);
        }
        return k->gamma - acc;
    }
    return 0;
}

/* adds g ds/dq into dq and, when de is not NULL, g ds/de into de (for the
 * distance models ds/de = -ds/dq), in one pass over the pair */
static void pair_grad(const kge *k, const float *q, const float *e, float g, float *dq,
                      float *de) {
    int64_t d = k->de, h = d / 2;
    switch (k->model) {
    case NN_KGE_TRANSE:
        if (k->p == 1) {
            for (int64_t j = 0; j < d; j++) {
                float x = q[j] - e[j], gx = g * (float)((x > 0) - (x < 0));
                dq[j] -= gx;
                if (de) de[j] += gx;
            }
        } else {
            float acc = 0;
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < d; j++) acc += (q[j] - e[j]) * (q[j] - e[j]);
            if (acc > 0) {
                float inv = g / sqrtf(acc);
                for (int64_t j = 0; j < d; j++) {
                    float gx = inv * (q[j] - e[j]);
                    dq[j] -= gx;
                    if (de) de[j] += gx;
                }
            }
        }
        break;
    case NN_KGE_DISTMULT:
    case NN_KGE_COMPLEX:
        for (int64_t j = 0; j < d; j++) {
            dq[j] += g * e[j];
            if (de) de[j] += g * q[j];
        }
        break;
    case NN_KGE_ROTATE:
        for (int64_t j = 0; j < h; j++) {
            float x = q[j] - e[j], y = q[h + j] - e[h + j];
            float m = sqrtf(x * x + y * y), inv = m > 0 ? g / m : 0.0f;
            dq[j] -= inv * x;
            dq[h + j] -= inv * y;
            if (de) {
                de[j] += inv * x;
                de[h + j] += inv * y;
            }
        }
        break;
    }
}

/* DistMult and ComplEx against candidates shared by the batch are one
 * GEMM: scores = Q C^T, and backward dQ = G C, dC = G^T Q */
static bool use_gemm(const kge *k, int shared, int64_t ncand) {
    return shared && (k->model == NN_KGE_DISTMULT || k->model == NN_KGE_COMPLEX) &&
           ncand >= TILE;
}

/* true when the candidates are E's first N rows in order (all entities) */
static bool all_in_order(const int64_t *cv, int64_t ncand, int64_t base) {
    for (int64_t c = 0; c < ncand; c++)
        if (cv[c] - base != c) return false;
    return true;
}

/* the candidate rows of E as a contiguous (N, D) matrix; NULL with *rows
 * = E itself when they are all entities in order, so no copy is made */
static nn_tensor *gather_rows(const float *ev, const int64_t *cv, int64_t ncand, int64_t de,
                              int64_t base, const float **out_rows) {
    *out_rows = ev;
    if (all_in_order(cv, ncand, base)) return NULL;
    int64_t shape[2] = {ncand, de};
    nn_tensor *rows = nn_empty(NN_F32, 2, shape);
    *out_rows = rows ? nn_f32(rows) : NULL;
    if (!rows) return NULL;
    float *out = nn_f32(rows);
#pragma omp parallel for if (ncand * de > NN_PAR_GRAIN)
    for (int64_t c = 0; c < ncand; c++)
        memcpy(out + c * de, ev + (cv[c] - base) * de, (size_t)de * sizeof(float));
    return rows;
}

/* dC = G^T Q, added into the candidates' rows of the entity gradient:
 * straight into it (beta = 1) when the candidates are all entities */
static int gemm_candidate_grad(const float *g, const float *qv, const int64_t *cv, int64_t bsz,
                               int64_t ncand, int64_t de, int64_t base, float *ebuf) {
    if (all_in_order(cv, ncand, base))
        return nn_sgemm(1, 0, ncand, de, bsz, 1.0f, g, ncand, qv, de, 1.0f, ebuf, de);
    int64_t shape[2] = {ncand, de};
    nn_tensor *drows = nn_empty(NN_F32, 2, shape);
    if (!drows || nn_sgemm(1, 0, ncand, de, bsz, 1.0f, g, ncand, qv, de, 0.0f, nn_f32(drows),
                           de) < 0) {
        nn_release(drows);
        return -1;
    }
    const float *dv = nn_f32(drows);
#pragma omp parallel if (ncand * de > NN_PAR_GRAIN)
    { /* a candidate may repeat: each thread owns the rows r % threads == id */
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int64_t c = 0; c < ncand; c++) {
            int64_t row = cv[c] - base;
            if (row % nt != t) continue;
            float *dst = ebuf + row * de;
            for (int64_t j = 0; j < de; j++) dst[j] += dv[c * de + j];
        }
    }
    nn_release(drows);
    return 0;
}

/* the candidate of query b, column n */
static inline int64_t cand_at(const int64_t *cand, int shared, int64_t ncand,
                              int64_t b, int64_t n) {
    return shared ? cand[n] : cand[b * ncand + n];
}

/* the general backward, one pass over the (query, candidate) pairs: each
 * thread takes the pairs whose candidate row it owns (row % threads), so
 * the entity gradient needs no locks, and adds dq into a private copy
 * (thread 0 into dq itself) summed at the end. Without an entity gradient
 * the threads split the queries instead. */
static int backward_loops(const kge *k, const float *g, const float *qv, float *dqv,
                          const float *ev, const int64_t *cv, int shared, int64_t bsz,
                          int64_t ncand, int64_t base, float *ebuf) {
    bool par = bsz * ncand * k->de > NN_PAR_GRAIN;
    if (!ebuf) {
#pragma omp parallel for if (par)
        for (int64_t b = 0; b < bsz; b++)
            for (int64_t c = 0; c < ncand; c++) {
                float gb = g[b * ncand + c];
                if (gb != 0)
                    pair_grad(k, qv + b * k->de,
                              ev + (cand_at(cv, shared, ncand, b, c) - base) * k->de, gb,
                              dqv + b * k->de, NULL);
            }
        return 0;
    }
    int threads = par ? omp_get_max_threads() : 1;
    size_t per = (size_t)(bsz * k->de);
    float *priv = threads > 1 ? calloc((threads - 1) * per, sizeof(float)) : NULL;
    if (threads > 1 && !priv) return nn_failed(0, "out of memory");
#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *dq = t == 0 ? dqv : priv + (t - 1) * per;
        for (int64_t b = 0; b < bsz; b++)
            for (int64_t c = 0; c < ncand; c++) {
                int64_t row = cand_at(cv, shared, ncand, b, c) - base;
                float gb = g[b * ncand + c];
                if (row % nt != t || gb == 0) continue;
                pair_grad(k, qv + b * k->de, ev + row * k->de, gb, dq + b * k->de,
                          ebuf + row * k->de);
            }
    }
    if (priv) {
#pragma omp parallel for if (per > NN_PAR_GRAIN)
        for (size_t j = 0; j < per; j++)
            for (int t = 1; t < threads; t++) dqv[j] += priv[(t - 1) * per + j];
        free(priv);
    }
    return 0;
}

typedef struct { nn_kge_args args; int64_t base; } kge_ctx;

static int kge_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    nn_tensor *E = nn_saved(n, 0), *R = nn_saved(n, 1), *anchor = nn_saved(n, 2);
    nn_tensor *rel = nn_saved(n, 3), *cand = nn_saved(n, 4);
    if (!E || !R || !anchor || !rel || !cand) return -1;
    const kge_ctx *c = NN_CTX(n, kge_ctx);
    kge k = {c->args.model, c->args.p, c->args.head, (float)c->args.gamma,
             (float)c->args.phase, E->shape[1], R->shape[1]};
    int64_t base = c->base, bsz = anchor->shape[0], shared = cand->ndim == 1;
    int64_t ncand = cand->shape[cand->ndim - 1];
    const int64_t *av = nn_i64(anchor), *rv = nn_i64(rel), *cv = nn_i64(cand);
    const float *ev = nn_f32(E), *rtab = nn_f32(R);
    nn_tensor *gc = nn_contiguous((nn_tensor *)gout);
    int64_t qshape[2] = {bsz, k.de};
    nn_tensor *q = nn_empty(NN_F32, 2, qshape), *dq = nn_zeros(NN_F32, 2, qshape);
    struct nn_rowgrad *rge = nn_input_rowgrad(n, 0), *rgr = nn_input_rowgrad(n, 1);
    nn_tensor *gE = NULL, *gR = NULL;
    bool need_e = nn_input_needs(n, 0), need_r = nn_input_needs(n, 1);
    if (need_e && !rge) gE = nn_zeros(NN_F32, 2, E->shape);
    if (need_r && !rgr) gR = nn_zeros(NN_F32, 2, R->shape);
    int rc = gc && q && dq && (!need_e || rge || gE) && (!need_r || rgr || gR) ? 0 : -1;
    if (rc == 0) {
        const float *g = nn_f32(gc);
        float *qv = nn_f32(q), *dqv = nn_f32(dq);
        float *ebuf = rge ? rge->buf : gE ? nn_f32(gE) : NULL;
        float *rbuf = rgr ? rgr->buf : gR ? nn_f32(gR) : NULL;
        if (rge) {
            nn_rowgrad_touch(rge, cv, nn_numel(cand), base);
            nn_rowgrad_touch(rge, av, bsz, base);
        }
        queries(&k, ev, rtab, av, rv, bsz, base, qv);
        if (use_gemm(&k, shared, ncand)) {
            const float *cm = NULL;
            nn_tensor *rows = gather_rows(ev, cv, ncand, k.de, base, &cm);
            if (!cm || nn_sgemm(0, 0, bsz, k.de, ncand, 1.0f, g, ncand, cm, k.de, 0.0f, dqv,
                                k.de) < 0)
                rc = -1;
            nn_release(rows);
            if (rc == 0 && ebuf)
                rc = gemm_candidate_grad(g, qv, cv, bsz, ncand, k.de, base, ebuf);
        } else {
            rc = backward_loops(&k, g, qv, dqv, ev, cv, shared, bsz, ncand, base, ebuf);
        }
        if (rgr) nn_rowgrad_touch(rgr, rv, bsz, base);
        float *scratch = calloc((size_t)(k.de + k.dr), sizeof(float));
        if (!scratch) rc = nn_failed(0, "out of memory");
        for (int64_t b = 0; rc == 0 && b < bsz; b++) { /* anchors, relations */
            int64_t ar = av[b] - base, rr = rv[b] - base;
            float *da = ebuf ? ebuf + ar * k.de : scratch;
            float *dr = rbuf ? rbuf + rr * k.dr : scratch + k.de;
            query_backward(&k, ev + ar * k.de, rtab + rr * k.dr, dqv + b * k.de, da, dr);
        }
        free(scratch);
    }
    nn_release(gc); nn_release(q); nn_release(dq);
    if (rc == 0) {
        gin[0] = gE;
        gin[1] = gR;
    } else {
        nn_release(gE);
        nn_release(gR);
    }
    return rc;
}

/* checks an index tensor: i64, the given dims, values in [base, limit + base) */
static int check_index(const nn_tensor *t, int arg, const char *what, int64_t limit,
                       int64_t base) {
    char s1[96];
    if (t->dtype != NN_I64)
        return nn_failed(arg, "kge_score: %s must be an i64 tensor, got %s", what,
                         nn_dtype_name(t->dtype));
    nn_tensor *c = nn_contiguous((nn_tensor *)t);
    if (!c) return -1;
    const int64_t *v = nn_i64(c);
    int64_t n = nn_numel(c);
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++)
        if (v[i] < base || v[i] >= limit + base)
            rc = nn_failed(arg, "kge_score: %s %s holds %lld, outside [%lld, %lld]", what,
                           nn_shape_str(t, s1, 96), (long long)v[i], (long long)base,
                           (long long)(limit + base - 1));
    nn_release(c);
    return rc;
}

static const char *model_name(nn_kge_model m) {
    static const char *names[] = {"TransE", "DistMult", "ComplEx", "RotatE"};
    return (unsigned)m < 4 ? names[m] : "?";
}

NN_OP(kge_op, "kge_score", kge_backward, kge_ctx);

nn_tensor *nn_kge_score(const nn_tensor *E, const nn_tensor *R, const nn_tensor *anchor,
                        const nn_tensor *rel, const nn_tensor *cand,
                        const nn_kge_args *a, int64_t base) {
    NN_NO_HALF_PTR(E, 1, "kge_score");
    NN_NO_HALF_PTR(R, 2, "kge_score");
    NN_NO_HALF_PTR(anchor, 3, "kge_score");
    char s1[96], s2[96];
    if ((unsigned)a->model > NN_KGE_ROTATE) return nn_fail(7, "kge_score: unknown model");
    const char *name = model_name(a->model);
    if (E->dtype != NN_F32 || E->ndim != 2 || R->dtype != NN_F32 || R->ndim != 2)
        return nn_fail(1, "kge_score: entity %s and relation %s tables must be f32 matrices",
                       nn_shape_str(E, s1, 96), nn_shape_str(R, s2, 96));
    int64_t de = E->shape[1], dr = R->shape[1];
    bool complex = a->model == NN_KGE_COMPLEX || a->model == NN_KGE_ROTATE;
    int64_t want_dr = a->model == NN_KGE_ROTATE ? de / 2 : de;
    if ((complex && de % 2) || dr != want_dr || de == 0)
        return nn_fail(2, "kge_score: %s needs entity width %s and relation width %s, got "
                       "entities %s and relations %s", name, complex ? "2k" : "d",
                       a->model == NN_KGE_ROTATE ? "k" : complex ? "2k" : "d",
                       nn_shape_str(E, s1, 96), nn_shape_str(R, s2, 96));
    if (a->model == NN_KGE_TRANSE && a->p != 1 && a->p != 2)
        return nn_fail(7, "kge_score: TransE's p must be 1 or 2, got %d", a->p);
    if (anchor->ndim != 1 || rel->ndim != 1 || rel->shape[0] != anchor->shape[0])
        return nn_fail(4, "kge_score: anchors %s and relations %s must be (B) vectors",
                       nn_shape_str(anchor, s1, 96), nn_shape_str(rel, s2, 96));
    int64_t bsz = anchor->shape[0];
    if (!((cand->ndim == 2 && cand->shape[0] == bsz) || cand->ndim == 1))
        return nn_fail(5, "kge_score: candidates %s must be (B, N) with B = %lld, or (N)",
                       nn_shape_str(cand, s1, 96), (long long)bsz);
    if (check_index(anchor, 3, "anchors", E->shape[0], base) < 0 ||
        check_index(rel, 4, "relations", R->shape[0], base) < 0 ||
        check_index(cand, 5, "candidates", E->shape[0], base) < 0)
        return NULL;
    int prev = nn_grad_off();
    nn_tensor *ec = nn_contiguous((nn_tensor *)E), *rc = nn_contiguous((nn_tensor *)R);
    nn_tensor *ac = nn_contiguous((nn_tensor *)anchor), *lc = nn_contiguous((nn_tensor *)rel);
    nn_tensor *cc = nn_contiguous((nn_tensor *)cand);
    int shared = cand->ndim == 1;
    int64_t ncand = cand->shape[cand->ndim - 1], oshape[2] = {bsz, ncand};
    int64_t qshape[2] = {bsz, de};
    nn_tensor *q = ec && rc && ac && lc && cc ? nn_empty(NN_F32, 2, qshape) : NULL;
    nn_tensor *y = q ? nn_empty(NN_F32, 2, oshape) : NULL;
    kge k = {a->model, a->p, a->head, (float)a->gamma, (float)a->phase, de, dr};
    if (y) {
        const float *ev = nn_f32(ec), *rv = nn_f32(rc);
        const int64_t *av = nn_i64(ac), *lv = nn_i64(lc), *cv = nn_i64(cc);
        float *qv = nn_f32(q), *yv = nn_f32(y);
        queries(&k, ev, rv, av, lv, bsz, base, qv);
        if (use_gemm(&k, shared, ncand)) { /* one GEMM against the candidate rows */
            const float *cm = NULL;
            nn_tensor *rows = gather_rows(ev, cv, ncand, de, base, &cm);
            if (!cm || nn_sgemm(0, 1, bsz, ncand, de, 1.0f, qv, de, cm, de, 0.0f, yv,
                                ncand) < 0) {
                nn_release(y);
                y = NULL;
            }
            nn_release(rows);
        } else if (shared) { /* blocks of candidates against every query */
            int64_t tiles = (ncand + TILE - 1) / TILE;
#pragma omp parallel for if (bsz * ncand * de > NN_PAR_GRAIN)
            for (int64_t t = 0; t < tiles; t++)
                for (int64_t b = 0; b < bsz; b++)
                    for (int64_t c = t * TILE; c < ncand && c < (t + 1) * TILE; c++)
                        yv[b * ncand + c] = score(&k, qv + b * de, ev + (cv[c] - base) * de);
        } else {
#pragma omp parallel for if (bsz * ncand * de > NN_PAR_GRAIN)
            for (int64_t b = 0; b < bsz; b++)
                for (int64_t c = 0; c < ncand; c++)
                    yv[b * ncand + c] = score(&k, qv + b * de, ev + (cv[b * ncand + c] - base) * de);
        }
    }
    nn_release(q);
    nn_grad_restore(prev);
    const nn_tensor *ins[2] = {E, R};
    nn_node *node;
    y = nn_finish_op(y, &kge_op, 2, ins, &node);
    if (node) {
        *NN_CTX(node, kge_ctx) = (kge_ctx){*a, base};
        if (nn_save(node, 0, ec) < 0 || nn_save(node, 1, rc) < 0 || nn_save(node, 2, ac) < 0 ||
            nn_save(node, 3, lc) < 0 || nn_save(node, 4, cc) < 0) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_release(ec); nn_release(rc); nn_release(ac); nn_release(lc); nn_release(cc);
    return y;
}
