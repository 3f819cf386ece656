/* optim.c -- optimizer update kernels, in place on contiguous f32 buffers.
 * Each follows PyTorch 1.13's formulas operation for operation, so runs
 * can be compared step by step. The Lua side (lua/nnlua/optim.lua) keeps
 * the state tensors, hyperparameters and step counts. */
#include "autograd.h"
#include "nn_layers.h"
#include "vecmath.h"

#include <math.h>

static int check(const nn_tensor *const *ts, int n) {
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        if (ts[i]->dtype != NN_F32 || !nn_is_contiguous(ts[i]) ||
            nn_numel(ts[i]) != nn_numel(ts[0]))
            return nn_failed(i + 1, "optimizer buffers must be contiguous f32 "
                                    "tensors shaped like the parameter");
    }
    return 0;
}

static void bump(nn_tensor *const *ts, int n) {
    for (int i = 0; i < n; i++)
        if (ts[i]) nn_bump_version(ts[i]);
}

NN_DISPATCH
int nn_sgd_step(nn_tensor *p, const nn_tensor *g, nn_tensor *buf,
                const nn_sgd_args *a) {
    const nn_tensor *ts[3] = {p, g, buf};
    if (check(ts, 3) < 0) return -1;
    float *pv = nn_f32(p), *bv = buf ? nn_f32(buf) : NULL;
    const float *gv = nn_f32(g);
    float lr = (float)a->lr, wd = (float)a->weight_decay, mom = (float)a->momentum;
    float damp = (float)a->dampening;
    int64_t n = nn_numel(p);
#pragma omp parallel for if (n > NN_PAR_GRAIN)
    for (int64_t i = 0; i < n; i++) {
        float d = gv[i] + wd * pv[i];
        if (a->maximize) d = -gv[i] + wd * pv[i];
        if (bv) {
            bv[i] = a->first_step ? d : mom * bv[i] + (1.0f - damp) * d;
            d = a->nesterov ? d + mom * bv[i] : bv[i];
        }
        pv[i] -= lr * d;
    }
    bump((nn_tensor *const[]){p, buf}, 2);
    return 0;
}

/* The elements an update visits: all n of a dense gradient, or the
 * touched rows of p's row-sparse gradient (g NULL: lazy, as SparseAdam). */
typedef struct {
    const int64_t *rows; /* NULL: dense */
    int64_t count, d;    /* rows (or 1) and elements per row (or n) */
    const float *g;
} span;

static int make_span(nn_tensor *p, const nn_tensor *g, span *s) {
    if (g) {
        *s = (span){NULL, 1, nn_numel(p), nn_f32(g)};
        return 0;
    }
    if (!nn_has_sparse_grad(p))
        return nn_failed(2, "no gradient given and the parameter has no sparse gradient");
    if (p->grad)
        return nn_failed(1, "the parameter has a dense gradient beside its sparse one (an "
                            "op without sparse support used it); turn sparse gradients off");
    s->count = nn_sparse_grad_rows(p, &s->rows);
    s->d = p->shape[1];
    s->g = nn_sparse_grad_data(p);
    return 0;
}

static inline int64_t span_start(const span *s, int64_t k) {
    return s->rows ? s->rows[k] * s->d : 0;
}

/* A span cut into pieces of at most PIECE contiguous elements: piece q
 * starts at element *at and has *len elements. The kernels run one piece
 * at a time in a plain loop the compiler vectorises. */
enum { PIECE = 4096 };
static inline int64_t span_pieces(const span *s) { return s->count * ((s->d + PIECE - 1) / PIECE); }
static inline void span_piece(const span *s, int64_t q, int64_t *at, int64_t *len) {
    int64_t per = (s->d + PIECE - 1) / PIECE, k = q / per, j = q % per * PIECE;
    *at = span_start(s, k) + j;
    *len = s->d - j < PIECE ? s->d - j : PIECE;
}

typedef struct {
    float b1, b2, eps, lr, wd, step_size, bc2_sqrt;
    int maximize, decoupled;
} adam_k;

NN_DISPATCH
static void adam_piece(float *pv, const float *gv, float *mv, float *vv, float *xv, int64_t n,
                       const adam_k *a) {
    float b1 = a->b1, b2 = a->b2, eps = a->eps, decay = 1.0f - a->lr * a->wd, wd = a->wd;
    float step_size = a->step_size, bc2_sqrt = a->bc2_sqrt, sign = a->maximize ? -1.0f : 1.0f;
    if (a->decoupled) /* AdamW */
        for (int64_t i = 0; i < n; i++) pv[i] *= decay;
    for (int64_t i = 0; i < n; i++) {
        float gi = sign * gv[i];
        if (!a->decoupled) gi += wd * pv[i]; /* Adam's L2 */
        mv[i] = b1 * mv[i] + (1.0f - b1) * gi;
        vv[i] = b2 * vv[i] + (1.0f - b2) * gi * gi;
        float vi = vv[i];
        if (xv) vi = xv[i] = xv[i] > vi ? xv[i] : vi;
        pv[i] -= step_size * mv[i] / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

int nn_adam_step(nn_tensor *p, const nn_tensor *g, nn_tensor *m, nn_tensor *v,
                 nn_tensor *vmax, const nn_adam_args *a) {
    const nn_tensor *ts[5] = {p, g, m, v, vmax};
    span sp;
    if (check(ts, 5) < 0 || make_span(p, g, &sp) < 0) return -1;
    if (a->step < 1) return nn_failed(0, "adam step counts from 1");
    float *pv = nn_f32(p), *mv = nn_f32(m), *vv = nn_f32(v);
    float *xv = vmax ? nn_f32(vmax) : NULL;
    const float *gv = sp.g;
    float b1 = (float)a->beta1, b2 = (float)a->beta2, eps = (float)a->eps;
    float lr = (float)a->lr, wd = (float)a->weight_decay;
    double bc1 = 1.0 - pow(a->beta1, (double)a->step);
    double bc2 = 1.0 - pow(a->beta2, (double)a->step);
    float step_size = (float)(a->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    adam_k k = {b1, b2, eps, lr, wd, step_size, bc2_sqrt, a->maximize, a->decoupled};
    int64_t pieces = span_pieces(&sp);
#pragma omp parallel for if (sp.count * sp.d > NN_PAR_GRAIN)
    for (int64_t q = 0; q < pieces; q++) {
        int64_t at, len;
        span_piece(&sp, q, &at, &len);
        adam_piece(pv + at, gv + at, mv + at, vv + at, xv ? xv + at : NULL, len, &k);
    }
    bump((nn_tensor *const[]){p, m, v, vmax}, 4);
    return 0;
}

NN_DISPATCH
int nn_rmsprop_step(nn_tensor *p, const nn_tensor *g, nn_tensor *sq,
                    nn_tensor *buf, nn_tensor *avg, const nn_rmsprop_args *a) {
    const nn_tensor *ts[5] = {p, g, sq, buf, avg};
    if (check(ts, 5) < 0) return -1;
    float *pv = nn_f32(p), *sv = nn_f32(sq);
    float *bv = buf ? nn_f32(buf) : NULL, *av = avg ? nn_f32(avg) : NULL;
    const float *gv = nn_f32(g);
    float alpha = (float)a->alpha, eps = (float)a->eps, lr = (float)a->lr;
    float wd = (float)a->weight_decay, mom = (float)a->momentum;
    int64_t n = nn_numel(p);
#pragma omp parallel for if (n > NN_PAR_GRAIN)
    for (int64_t i = 0; i < n; i++) {
        float gi = gv[i] + wd * pv[i];
        sv[i] = alpha * sv[i] + (1.0f - alpha) * gi * gi;
        float avgi = sv[i];
        if (av) {
            av[i] = alpha * av[i] + (1.0f - alpha) * gi;
            avgi = sv[i] - av[i] * av[i];
        }
        float denom = sqrtf(avgi) + eps;
        if (bv) {
            bv[i] = mom * bv[i] + gi / denom;
            pv[i] -= lr * bv[i];
        } else {
            pv[i] -= lr * gi / denom;
        }
    }
    bump((nn_tensor *const[]){p, sq, buf, avg}, 4);
    return 0;
}

NN_DISPATCH
static void adagrad_piece(float *pv, const float *gv, float *sv, int64_t n, float clr, float wd,
                          float eps) {
    for (int64_t i = 0; i < n; i++) {
        float gi = gv[i] + wd * pv[i];
        sv[i] += gi * gi;
        pv[i] -= clr * gi / (sqrtf(sv[i]) + eps);
    }
}

int nn_adagrad_step(nn_tensor *p, const nn_tensor *g, nn_tensor *sum,
                    const nn_adagrad_args *a) {
    const nn_tensor *ts[3] = {p, g, sum};
    span sp;
    if (check(ts, 3) < 0 || make_span(p, g, &sp) < 0) return -1;
    float *pv = nn_f32(p), *sv = nn_f32(sum);
    const float *gv = sp.g;
    float clr = (float)(a->lr / (1.0 + (double)(a->step - 1) * a->lr_decay));
    float wd = (float)a->weight_decay, eps = (float)a->eps;
    int64_t pieces = span_pieces(&sp);
#pragma omp parallel for if (sp.count * sp.d > NN_PAR_GRAIN)
    for (int64_t q = 0; q < pieces; q++) {
        int64_t at, len;
        span_piece(&sp, q, &at, &len);
        adagrad_piece(pv + at, gv + at, sv + at, len, clr, wd, eps);
    }
    bump((nn_tensor *const[]){p, sum}, 2);
    return 0;
}
