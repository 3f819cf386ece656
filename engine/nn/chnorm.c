/* chnorm.c -- normalisation over channels: batch norm (per channel, over
 * the batch and the trailing dims, with running statistics) and group
 * norm (per sample, over groups of channels and the trailing dims;
 * instance norm is one group per channel), fused forward and backward.
 *
 * x is (N, C, S...) seen as N*C rows of S contiguous values. A "set" is
 * what one mean and variance cover, a list of rows:
 *   batch norm: set c = rows (n, c) for every n        (C sets of N rows)
 *   group norm: set (n, g) = rows (n, c) for c in g    (N*G sets of C/G rows)
 * With M values a set, xhat = (x - mean) rstd, y = xhat w[c] + b[c]; with
 * dh = g w[c], per set: dx = rstd (dh - sum(dh)/M - xhat sum(dh xhat)/M)
 * when the set's own statistics were used, dx = rstd dh when running
 * statistics were (batch norm in eval mode); dw[c] = sum g xhat, db[c] =
 * sum g over the rows of channel c. */
#include "autograd.h"
#include "nn_layers.h"
#include "rowstats.h"
#include "vecmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int group;          /* 0: batch norm, 1: group norm */
    int running;        /* the statistics were the running ones (eval) */
    int64_t n, c, s, g; /* batch, channels, values per row, groups */
} chnorm_ctx;

static int64_t nsets(const chnorm_ctx *k) { return k->group ? k->n * k->g : k->c; }
static int64_t set_rows(const chnorm_ctx *k) { return k->group ? k->c / k->g : k->n; }

/* the j-th row (n * C + c) of set i */
static int64_t set_row(const chnorm_ctx *k, int64_t i, int64_t j) {
    if (!k->group) return j * k->c + i;
    return (i / k->g) * k->c + (i % k->g) * (k->c / k->g) + j;
}

/* the set row r belongs to */
static int64_t row_set(const chnorm_ctx *k, int64_t r) {
    if (!k->group) return r % k->c;
    return (r / k->c) * k->g + (r % k->c) / (k->c / k->g);
}

/* mean and biased variance of every set, in double */
static void set_stats(const chnorm_ctx *k, const float *x, double *mean, double *var) {
    int64_t sets = nsets(k), rows = set_rows(k), s = k->s;
#pragma omp parallel for if (sets * rows * s > NN_PAR_GRAIN)
    for (int64_t i = 0; i < sets; i++) {
        double m = 0, v = 0;
        for (int64_t j = 0; j < rows; j++) m += nn_row_sum(x + set_row(k, i, j) * s, s);
        m /= (double)(rows * s);
        for (int64_t j = 0; j < rows; j++) v += nn_row_sqdev(x + set_row(k, i, j) * s, s, (float)m);
        mean[i] = m;
        var[i] = v / (double)(rows * s);
    }
}

/* the saved statistics: the sets' means, then 1 / sqrt(var + eps) */
static void fill_stats(float *st, const double *mean, const double *var, int64_t sets, double eps) {
    for (int64_t i = 0; i < sets; i++) {
        st[i] = (float)mean[i];
        st[sets + i] = (float)(1.0 / sqrt(var[i] + eps));
    }
}

/* y = x a + shift over one row */
NN_DISPATCH
static void row_affine(const float *x, float *y, int64_t n, float a, float shift) {
    for (int64_t e = 0; e < n; e++) y[e] = x[e] * a + shift;
}

/* dx = rstd (g wc - md - (x - mean) rstd mdh) over one row */
NN_DISPATCH
static void row_dx(const float *g, const float *x, float *dx, int64_t n, float wc, float mean,
                   float rstd, float md, float mdh) {
    for (int64_t e = 0; e < n; e++) dx[e] = rstd * (g[e] * wc - md - (x[e] - mean) * rstd * mdh);
}

/* y = (x - mean) rstd w + b, row by row */
static void apply(const chnorm_ctx *k, const float *x, const float *stats, const float *w,
                  const float *b, float *y) {
    int64_t rows = k->n * k->c, sets = nsets(k), s = k->s;
#pragma omp parallel for if (rows * s > NN_PAR_GRAIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t set = row_set(k, r), c = r % k->c;
        float m = stats[set], rs = stats[sets + set];
        float a = rs * (w ? w[c] : 1.0f), shift = (b ? b[c] : 0.0f) - m * a;
        row_affine(x + r * s, y + r * s, s, a, shift);
    }
}

static int chnorm_backward(nn_node *node, const nn_tensor *gout, nn_tensor **gin) {
    nn_tensor *x = nn_saved(node, 0), *st = nn_saved(node, 1);
    nn_tensor *w = node->saved[2] ? nn_saved(node, 2) : NULL;
    if (!x || !st || (node->saved[2] && !w)) return -1;
    const chnorm_ctx *k = NN_CTX(node, chnorm_ctx);
    nn_tensor *gc = nn_contiguous((nn_tensor *)gout);
    if (!gc) return -1;
    const float *xv = nn_f32(x), *gv = nn_f32(gc), *wv = w ? nn_f32(w) : NULL;
    int64_t sets = nsets(k), rows = set_rows(k), s = k->s, m = rows * s;
    const float *mean = nn_f32(st), *rstd = mean + sets;
    int need_x = nn_input_needs(node, 0);
    int need_w = node->nin > 1 && nn_input_needs(node, 1);
    int need_b = node->nin > 2 && nn_input_needs(node, 2);
    /* per channel: sum g and sum g h (h the normalised input). These are
     * the weight and bias gradients, and for batch norm (a set is a
     * channel) also the sums dx needs: one pass over g and x serves both. */
    int by_channel = need_w || need_b || (need_x && !k->group && !k->running);
    nn_tensor *sums = by_channel ? nn_empty(NN_F32, 1, (int64_t[]){2 * k->c}) : NULL;
    int rc = by_channel && !sums ? -1 : 0;
    float *cg = sums ? nn_f32(sums) : NULL, *cgh = cg ? cg + k->c : NULL;
#pragma omp parallel for if (cg && k->n * k->c * s > NN_PAR_GRAIN)
    for (int64_t c = 0; c < (cg ? k->c : 0); c++) {
        double ag = 0, agh = 0;
        for (int64_t n = 0; n < k->n; n++) {
            int64_t r = n * k->c + c, set = row_set(k, r);
            double g = 0, gx = 0;
            nn_row_dot(gv + r * s, NULL, xv + r * s, s, mean[set], &g, &gx);
            agh += gx * rstd[set];
            ag += g;
        }
        cg[c] = (float)ag;
        cgh[c] = (float)agh;
    }
    if (rc == 0 && need_x) {
        gin[0] = nn_empty(NN_F32, x->ndim, x->shape);
        float *dx = gin[0] ? nn_f32(gin[0]) : NULL;
        if (!dx) rc = -1;
#pragma omp parallel for if (dx && sets * m > NN_PAR_GRAIN)
        for (int64_t i = 0; i < sets; i++) {
            if (!dx) continue;
            double sd = 0, sdh = 0;
            if (!k->running && !k->group) { /* set i is channel i */
                double wc = wv ? wv[i] : 1.0;
                sd = wc * cg[i];
                sdh = wc * cgh[i];
            } else if (!k->running) {
                for (int64_t j = 0; j < rows; j++) {
                    int64_t r = set_row(k, i, j);
                    double wc = wv ? wv[r % k->c] : 1.0, g = 0, gx = 0;
                    nn_row_dot(gv + r * s, NULL, xv + r * s, s, mean[i], &g, &gx);
                    sd += wc * g;
                    sdh += wc * gx * rstd[i];
                }
            }
            float md = (float)(sd / (double)m), mdh = (float)(sdh / (double)m);
            for (int64_t j = 0; j < rows; j++) {
                int64_t r = set_row(k, i, j);
                row_dx(gv + r * s, xv + r * s, dx + r * s, s, wv ? wv[r % k->c] : 1.0f, mean[i],
                       rstd[i], md, mdh);
            }
        }
    }
    if (rc == 0 && need_w) {
        gin[1] = nn_empty(NN_F32, 1, &k->c);
        if (gin[1]) memcpy(nn_f32(gin[1]), cgh, sizeof(float) * (size_t)k->c);
        else rc = -1;
    }
    if (rc == 0 && need_b) {
        gin[2] = nn_empty(NN_F32, 1, &k->c);
        if (gin[2]) memcpy(nn_f32(gin[2]), cg, sizeof(float) * (size_t)k->c);
        else rc = -1;
    }
    nn_release(sums);
    nn_release(gc);
    return rc;
}

NN_OP(batch_norm_op, "batch_norm", chnorm_backward, chnorm_ctx);
NN_OP(group_norm_op, "group_norm", chnorm_backward, chnorm_ctx);

/* a (C) f32 tensor argument, or NULL; -1 when it does not fit */
static int check_channels(const nn_tensor *t, int64_t c, int arg, const char *fn,
                          const char *what, int writable) {
    char s1[96];
    if (!t) return 0;
    if (t->dtype != NN_F32 || nn_numel(t) != c || (writable && !nn_is_contiguous(t)))
        return nn_failed(arg, "%s: %s must be %sf32 with one value per channel (%lld), got %s %s",
                         fn, what, writable ? "contiguous " : "", (long long)c,
                         nn_dtype_name(t->dtype), nn_shape_str(t, s1, sizeof s1));
    return 0;
}

/* the shared forward: stats (2 * sets: mean then rstd) filled by the caller */
static nn_tensor *finish(const nn_op *op, chnorm_ctx k, const nn_tensor *x, nn_tensor *xc,
                         nn_tensor *stats, const nn_tensor *w, const nn_tensor *b) {
    nn_tensor *wc = w ? nn_contiguous((nn_tensor *)w) : NULL;
    nn_tensor *bc = b ? nn_contiguous((nn_tensor *)b) : NULL;
    int prev = nn_grad_off();
    nn_tensor *y = (!w || wc) && (!b || bc) ? nn_empty(NN_F32, x->ndim, x->shape) : NULL;
    if (y) apply(&k, nn_f32(xc), nn_f32(stats), wc ? nn_f32(wc) : NULL, bc ? nn_f32(bc) : NULL,
                 nn_f32(y));
    nn_grad_restore(prev);
    const nn_tensor *ins[3] = {x, w, b};
    nn_node *node;
    y = nn_finish_op(y, op, 3, ins, &node);
    if (node) {
        *NN_CTX(node, chnorm_ctx) = k;
        if (nn_save(node, 0, xc) < 0 || nn_save(node, 1, stats) < 0 ||
            (wc && nn_save(node, 2, wc) < 0)) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_release(wc);
    nn_release(bc);
    return y;
}

/* x's (N, C, S) and checks shared by both norms */
static int shape_of(const nn_tensor *x, const char *fn, chnorm_ctx *k) {
    char s1[96];
    if (x->dtype != NN_F32) return nn_failed(1, "%s expects an f32 input, got %s", fn, nn_dtype_name(x->dtype));
    if (x->ndim < 2)
        return nn_failed(1, "%s expects (N, C, ...), got %s", fn, nn_shape_str(x, s1, sizeof s1));
    k->n = x->shape[0];
    k->c = x->shape[1];
    k->s = nn_shape_numel(x->ndim - 2, x->shape + 2);
    return 0;
}

nn_tensor *nn_batch_norm(const nn_tensor *x, nn_tensor *running_mean, nn_tensor *running_var,
                         const nn_tensor *w, const nn_tensor *b, int training, double momentum,
                         double eps) {
    const char *fn = "batch_norm";
    char s1[96];
    chnorm_ctx k = {0, 0, 0, 0, 0, 1};
    if (shape_of(x, fn, &k) < 0) return NULL;
    if ((running_mean == NULL) != (running_var == NULL))
        return nn_fail(2, "%s: give both running_mean and running_var, or neither", fn);
    if (check_channels(running_mean, k.c, 2, fn, "running_mean", 1) < 0 ||
        check_channels(running_var, k.c, 3, fn, "running_var", 1) < 0 ||
        check_channels(w, k.c, 4, fn, "weight", 0) < 0 || check_channels(b, k.c, 5, fn, "bias", 0) < 0)
        return NULL;
    if (!(eps > 0)) return nn_fail(0, "%s: eps must be positive", fn);
    if (!training && !running_mean) training = 1; /* no statistics to use but the batch's */
    int64_t m = k.n * k.s;
    if (training && m <= 1)
        return nn_fail(1, "%s: expected more than 1 value per channel when training, got input %s",
                       fn, nn_shape_str(x, s1, sizeof s1));
    if (training && running_mean && !(momentum >= 0 && momentum <= 1))
        return nn_fail(0, "%s: momentum must be in [0, 1]", fn);
    k.running = !training;
    nn_tensor *xc = nn_contiguous((nn_tensor *)x);
    int64_t two = 2 * k.c;
    nn_tensor *stats = xc ? nn_empty(NN_F32, 1, &two) : NULL;
    double *acc = malloc(2 * (size_t)(k.c ? k.c : 1) * sizeof *acc);
    nn_tensor *y = NULL;
    if (stats && acc) {
        float *st = nn_f32(stats);
        if (training) {
            set_stats(&k, nn_f32(xc), acc, acc + k.c);
            fill_stats(st, acc, acc + k.c, k.c, eps);
            if (running_mean) { /* unbiased variance, as PyTorch keeps */
                double mom = momentum;
                float *rm = nn_f32(running_mean), *rv = nn_f32(running_var);
                for (int64_t c = 0; c < k.c; c++) {
                    rm[c] = (float)((1 - mom) * rm[c] + mom * acc[c]);
                    rv[c] = (float)((1 - mom) * rv[c] + mom * acc[k.c + c] * (double)m / (double)(m - 1));
                }
                nn_bump_version(running_mean);
                nn_bump_version(running_var);
            }
        } else {
            const float *rm = nn_f32(running_mean), *rv = nn_f32(running_var);
            for (int64_t c = 0; c < k.c; c++) acc[c] = rm[c], acc[k.c + c] = rv[c];
            fill_stats(st, acc, acc + k.c, k.c, eps);
        }
        y = finish(&batch_norm_op, k, x, xc, stats, w, b);
    } else if (!acc) {
        nn_failed(0, "out of memory");
    }
    free(acc);
    nn_release(stats);
    nn_release(xc);
    return y;
}

nn_tensor *nn_group_norm(const nn_tensor *x, int64_t groups, const nn_tensor *w, const nn_tensor *b,
                         double eps) {
    const char *fn = "group_norm";
    chnorm_ctx k = {1, 0, 0, 0, 0, groups};
    if (shape_of(x, fn, &k) < 0) return NULL;
    if (groups < 1 || k.c % groups || (k.c == 0 && groups > 1))
        return nn_fail(2, "%s: %lld groups do not divide %lld channels", fn, (long long)groups,
                       (long long)k.c);
    if (check_channels(w, k.c, 3, fn, "weight", 0) < 0 || check_channels(b, k.c, 4, fn, "bias", 0) < 0)
        return NULL;
    if (!(eps > 0)) return nn_fail(0, "%s: eps must be positive", fn);
    int64_t sets = nsets(&k), two = 2 * sets;
    nn_tensor *xc = nn_contiguous((nn_tensor *)x);
    nn_tensor *stats = xc ? nn_empty(NN_F32, 1, &two) : NULL;
    double *acc = malloc(2 * (size_t)(sets ? sets : 1) * sizeof *acc);
    nn_tensor *y = NULL;
    if (stats && acc) {
        set_stats(&k, nn_f32(xc), acc, acc + sets);
        fill_stats(nn_f32(stats), acc, acc + sets, sets, eps);
        y = finish(&group_norm_op, k, x, xc, stats, w, b);
    } else if (!acc) {
        nn_failed(0, "out of memory");
    }
    free(acc);
    nn_release(stats);
    nn_release(xc);
    return y;
}

int nn_instance_norm_stats_(const nn_tensor *x, nn_tensor *running_mean, nn_tensor *running_var,
                            double momentum) {
    const char *fn = "instance_norm";
    chnorm_ctx k = {1, 0, 0, 0, 0, 0};
    if (shape_of(x, fn, &k) < 0) return -1;
    k.g = k.c;
    if (check_channels(running_mean, k.c, 2, fn, "running_mean", 1) < 0 ||
        check_channels(running_var, k.c, 3, fn, "running_var", 1) < 0)
        return -1;
    if (!running_mean || !running_var) return nn_failed(2, "%s: running statistics expected", fn);
    if (!(momentum >= 0 && momentum <= 1)) return nn_failed(0, "%s: momentum must be in [0, 1]", fn);
    if (k.s <= 1) return nn_failed(1, "%s: expected more than 1 value per instance", fn);
    nn_tensor *xc = nn_contiguous((nn_tensor *)x);
    int64_t sets = k.n * k.c;
    double *acc = xc ? malloc(2 * (size_t)(sets ? sets : 1) * sizeof *acc) : NULL;
    if (!acc) {
        nn_release(xc);
        return xc ? nn_failed(0, "out of memory") : -1;
    }
    set_stats(&k, nn_f32(xc), acc, acc + sets);
    float *rm = nn_f32(running_mean), *rv = nn_f32(running_var);
    double unbias = (double)k.s / (double)(k.s - 1);
    for (int64_t c = 0; c < k.c && k.n > 0; c++) { /* the instances' mean, per channel */
        double m = 0, v = 0;
        for (int64_t n = 0; n < k.n; n++) {
            m += acc[n * k.c + c];
            v += acc[sets + n * k.c + c] * unbias;
        }
        rm[c] = (float)((1 - momentum) * rm[c] + momentum * m / (double)k.n);
        rv[c] = (float)((1 - momentum) * rv[c] + momentum * v / (double)k.n);
    }
    nn_bump_version(running_mean);
    nn_bump_version(running_var);
    free(acc);
    nn_release(xc);
    return 0;
}
