/* reduce.c -- reductions over any set of dims, softmax and cumsum.
 *
 * A reduction moves the reduced dims last (a view), makes that contiguous
 * (a copy only when needed), and reduces each row of R elements into one
 * output element. Sums accumulate in double over 8 independent lanes: the
 * result does not depend on the thread count, and the loop vectorises. */
#include "internal.h"
#include "vecmath.h"

#include <math.h>
#include <string.h>

const char *const nn_reduce_names[NN_REDUCE_COUNT] = {
    "sum", "mean", "prod", "max", "min", "argmax", "argmin", "var", "std",
    "logsumexp", "norm"};
_Static_assert(sizeof nn_reduce_names / sizeof *nn_reduce_names == NN_REDUCE_COUNT,
               "reduce name table out of step with nn_reduce_op");

NN_DISPATCH
static double row_sum(const float *x, int64_t n) {
    double acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += x[i + j];
    for (; i < n; i++) acc[0] += x[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
           ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

NN_DISPATCH
static double row_sumsq_dev(const float *x, int64_t n, double mean) {
    double acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            double d = x[i + j] - mean;
            acc[j] += d * d;
        }
    for (; i < n; i++) acc[0] += (x[i] - mean) * (x[i] - mean);
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
           ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* index of the max (or min); NaN wins, ties keep the first */
static int64_t row_argext(const float *x, int64_t n, int is_min) {
    int64_t best = 0;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] != x[i]) return i;
        if (is_min ? x[i] < x[best] : x[i] > x[best]) best = i;
    }
    return best;
}

static double row_norm(const float *x, int64_t n, double p) {
    double acc = 0;
    if (p == 2) return sqrt(row_sumsq_dev(x, n, 0.0));
    if (isinf(p)) {
        acc = n ? fabs(x[0]) : 0;
        for (int64_t i = 0; i < n; i++)
            acc = p > 0 ? fmax(acc, fabs(x[i])) : fmin(acc, fabs(x[i]));
        return acc;
    }
    for (int64_t i = 0; i < n; i++) {
        if (p == 0) acc += x[i] != 0.0f;
        else if (p == 1) acc += fabs(x[i]);
        else acc += pow(fabs(x[i]), p);
    }
    return (p == 0 || p == 1) ? acc : pow(acc, 1.0 / p);
}

static double reduce_row_f32(nn_reduce_op op, const float *x, int64_t n,
                             const nn_reduce_args *a) {
    switch (op) {
    case NN_SUM: return row_sum(x, n);
    case NN_MEAN: return row_sum(x, n) / (double)n;
    case NN_PROD: {
        double p = 1;
        for (int64_t i = 0; i < n; i++) p *= x[i];
        return p;
    }
    case NN_MAX: return x[row_argext(x, n, 0)];
    case NN_MIN: return x[row_argext(x, n, 1)];
    case NN_ARGMAX: return (double)(row_argext(x, n, 0) + a->base);
    case NN_ARGMIN: return (double)(row_argext(x, n, 1) + a->base);
    case NN_VAR:
    case NN_STD: {
        double m = row_sum(x, n) / (double)n;
        double v = row_sumsq_dev(x, n, m) / (double)(n - a->correction);
        return op == NN_STD ? sqrt(v) : v;
    }
    case NN_LOGSUMEXP: {
        float m = x[row_argext(x, n, 0)];
        if (isinf(m) || m != m) return m;
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += exp((double)(x[i] - m));
        return m + log(s);
    }
    case NN_NORM: return row_norm(x, n, a->p);
    case NN_REDUCE_COUNT: break;
    }
    return 0;
}

static int64_t reduce_row_i64(nn_reduce_op op, const int64_t *x, int64_t n,
                              int64_t base) {
    int64_t r = op == NN_PROD ? 1 : 0, best = 0;
    for (int64_t i = 0; i < n; i++) {
        switch (op) {
        case NN_SUM: r += x[i]; break;
        case NN_PROD: r *= x[i]; break;
        case NN_MAX: case NN_ARGMAX: if (x[i] > x[best]) best = i; break;
        case NN_MIN: case NN_ARGMIN: if (x[i] < x[best]) best = i; break;
        default: break;
        }
    }
    if (op == NN_MAX || op == NN_MIN) return x[best];
    if (op == NN_ARGMAX || op == NN_ARGMIN) return best + base;
    return r;
}

/* Moves the dims flagged in `red` last and returns a contiguous tensor
 * whose rows are the reduced runs; *rows and *len get their counts. */
static nn_tensor *rows_of(const nn_tensor *x, const bool *red, int64_t *rows,
                          int64_t *len) {
    int perm[NN_MAX_DIMS], k = 0;
    *rows = *len = 1;
    for (int d = 0; d < x->ndim; d++)
        if (!red[d]) { perm[k++] = d; *rows *= x->shape[d]; }
    for (int d = 0; d < x->ndim; d++)
        if (red[d]) { perm[k++] = d; *len *= x->shape[d]; }
    nn_tensor *p = nn_permute((nn_tensor *)x, perm);
    if (!p) return NULL;
    nn_tensor *c = nn_contiguous(p);
    nn_release(p);
    return c;
}

static int parse_dims(const nn_tensor *x, const nn_reduce_args *a, bool *red) {
    memset(red, 0, NN_MAX_DIMS * sizeof *red);
    if (a->ndims == 0) {
        for (int d = 0; d < x->ndim; d++) red[d] = true;
        return 0;
    }
    for (int i = 0; i < a->ndims; i++) {
        int d = nn_wrap_dim(a->dims[i], x->ndim, 2);
        if (d < 0) return -1;
        if (x->ndim && red[d]) return nn_failed(2, "dim %d repeated", d);
        if (x->ndim) red[d] = true;
    }
    return 0;
}

static int out_shape(const nn_tensor *x, const bool *red, int keepdim,
                     int64_t *shape) {
    int k = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (!red[d]) shape[k++] = x->shape[d];
        else if (keepdim) shape[k++] = 1;
    }
    return k;
}

/* Sums over a block of dims [first, last] of a contiguous x that has kept
 * dims after it, read in place as (outer, R, inner): out[o][j] adds
 * x[o][r][j] over r, a column at a time in double (the bias-gradient
 * shape; a transposed copy would cost more than the sum). */
NN_DISPATCH
static void column_sums(const float *x, float *out, int64_t outer, int64_t r,
                        int64_t inner, double scale) {
    enum { BLOCK = 256 };
    int64_t blocks = (inner + BLOCK - 1) / BLOCK;
#pragma omp parallel for if (outer * r * inner > NN_PAR_GRAIN)
    for (int64_t ob = 0; ob < outer * blocks; ob++) {
        int64_t o = ob / blocks, j0 = ob % blocks * BLOCK;
        int64_t w = inner - j0 < BLOCK ? inner - j0 : BLOCK;
        double acc[BLOCK] = {0};
        const float *src = x + o * r * inner + j0;
        for (int64_t k = 0; k < r; k++)
            for (int64_t j = 0; j < w; j++) acc[j] += src[k * inner + j];
        for (int64_t j = 0; j < w; j++) out[o * inner + j0 + j] = (float)(acc[j] * scale);
    }
}

/* true when the reduced dims are one block followed by kept dims */
static bool column_shape(const nn_tensor *x, const bool *red, int64_t *outer,
                         int64_t *r, int64_t *inner) {
    int first = -1, last = -1;
    for (int d = 0; d < x->ndim; d++)
        if (red[d]) {
            if (first < 0) first = d;
            else if (last != d - 1) return false;
            last = d;
        }
    if (first < 0 || last == x->ndim - 1 || !nn_is_contiguous(x)) return false;
    *outer = *r = *inner = 1;
    for (int d = 0; d < x->ndim; d++)
        *(d < first ? outer : d <= last ? r : inner) *= x->shape[d];
    return *inner > 1;
}

nn_tensor *nn_reduce(nn_reduce_op op, const nn_tensor *x,
                     const nn_reduce_args *args) {
    nn_reduce_args a = *args;
    bool red[NN_MAX_DIMS];
    if ((unsigned)op >= NN_REDUCE_COUNT) return nn_fail(0, "unknown reduction");
    if (parse_dims(x, &a, red) < 0) return NULL;
    int64_t shape[NN_MAX_DIMS], rows, len;
    int nd = out_shape(x, red, a.keepdim, shape);
    bool int_op = op == NN_SUM || op == NN_PROD || op == NN_MAX ||
                  op == NN_MIN || op == NN_ARGMAX || op == NN_ARGMIN;
    nn_tensor *conv = NULL;
    if (x->dtype == NN_I64 && !int_op && !(x = conv = nn_to_dtype(x, NN_F32)))
        return NULL;
    int64_t outer, span, inner;
    if ((op == NN_SUM || op == NN_MEAN) && x->dtype == NN_F32 &&
        column_shape(x, red, &outer, &span, &inner)) {
        nn_tensor *out = nn_empty(NN_F32, nd, shape);
        if (out)
            column_sums(nn_f32(x), nn_f32(out), outer, span, inner,
                        op == NN_MEAN ? 1.0 / (double)span : 1.0);
        nn_release(conv);
        return out;
    }
    nn_tensor *xr = rows_of(x, red, &rows, &len);
    nn_release(conv);
    if (!xr) return NULL;
    bool needs_elems = op == NN_MAX || op == NN_MIN || op == NN_ARGMAX ||
                       op == NN_ARGMIN || op == NN_LOGSUMEXP;
    if (len == 0 && needs_elems && rows > 0) {
        nn_release(xr);
        return nn_fail(1, "%s of an empty dimension", nn_reduce_names[op]);
    }
    nn_dtype dt = (op == NN_ARGMAX || op == NN_ARGMIN || xr->dtype == NN_I64)
                      ? NN_I64 : NN_F32;
    nn_tensor *out = nn_empty(dt, nd, shape);
    if (!out) {
        nn_release(xr);
        return NULL;
    }
    if (xr->dtype == NN_I64) {
        const int64_t *src = nn_i64(xr);
        for (int64_t r = 0; r < rows; r++)
            nn_i64(out)[r] = reduce_row_i64(op, src + r * len, len, a.base);
    } else {
        const float *src = nn_f32(xr);
#pragma omp parallel for if (rows * len > NN_PAR_GRAIN && rows > 1)
        for (int64_t r = 0; r < rows; r++) {
            double v = reduce_row_f32(op, src + r * len, len, &a);
            if (dt == NN_I64) nn_i64(out)[r] = (int64_t)v;
            else nn_f32(out)[r] = (float)v;
        }
    }
    nn_release(xr);
    return out;
}

nn_tensor *nn_sum(const nn_tensor *x, int ndims, const int *dims,
                  int keepdim) {
    nn_reduce_args a = {.ndims = ndims, .keepdim = keepdim, .correction = 1};
    for (int i = 0; i < ndims && i < NN_MAX_DIMS; i++) a.dims[i] = dims[i];
    return nn_reduce(NN_SUM, x, &a);
}

int nn_max_dim(const nn_tensor *x, int dim, int keepdim, int is_min,
               int64_t base, nn_tensor **values, nn_tensor **indices) {
    nn_reduce_args a = {.ndims = 1, .dims = {dim}, .keepdim = keepdim,
                        .base = base};
    *values = *indices = NULL;
    *indices = nn_reduce(is_min ? NN_ARGMIN : NN_ARGMAX, x, &a);
    if (!*indices) return -1;
    *values = nn_reduce(is_min ? NN_MIN : NN_MAX, x, &a);
    if (!*values) {
        nn_release(*indices);
        *indices = NULL;
        return -1;
    }
    return 0;
}

/* ---- along one dim: softmax, log_softmax, cumsum -------------------------- */

typedef enum { ALONG_SOFTMAX, ALONG_LOG_SOFTMAX, ALONG_CUMSUM } along_op;

/* softmax of one contiguous row; 16 float lanes keep the sum vectorised */
NN_DISPATCH
static void softmax_row(const float *x, float *y, int64_t n, int want_log) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (m == -INFINITY) m = 0; /* a fully masked row: avoid inf - inf */
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            float e = nn_expf(x[i + j] - m);
            if (!want_log) y[i + j] = e;
            acc[j] += e;
        }
    for (; i < n; i++) {
        float e = nn_expf(x[i] - m);
        if (!want_log) y[i] = e;
        acc[0] += e;
    }
    double s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    if (!want_log) {
        float inv = (float)(1.0 / s);
        for (int64_t k = 0; k < n; k++) y[k] *= inv;
    } else {
        float lse = m + (float)log(s);
        for (int64_t k = 0; k < n; k++) y[k] = x[k] - lse;
    }
}

static void along_row(along_op op, const float *x, float *y, int64_t n) {
    if (op == ALONG_CUMSUM) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) y[i] = (float)(s += x[i]);
        return;
    }
    softmax_row(x, y, n, op == ALONG_LOG_SOFTMAX);
}

static nn_tensor *along(along_op op, const nn_tensor *x, int dim) {
    if (x->dtype != NN_F32 && op != ALONG_CUMSUM)
        return nn_fail(1, "expected an f32 tensor, got %s",
                       nn_dtype_name(x->dtype));
    if ((dim = nn_wrap_dim(dim, x->ndim, 2)) < 0) return NULL;
    nn_tensor *conv = NULL;
    if (x->dtype != NN_F32 && !(x = conv = nn_to_dtype(x, NN_F32))) return NULL;
    int last = x->ndim ? x->ndim - 1 : 0;
    nn_tensor *xt = nn_transpose((nn_tensor *)x, dim, last);
    nn_tensor *xc = xt ? nn_contiguous(xt) : NULL;
    nn_release(xt);
    nn_release(conv);
    if (!xc) return NULL;
    nn_tensor *yc = nn_empty(NN_F32, xc->ndim, xc->shape);
    if (!yc) {
        nn_release(xc);
        return NULL;
    }
    int64_t n = xc->ndim ? xc->shape[last] : 1;
    int64_t rows = n ? nn_numel(xc) / n : 0;
    const float *src = nn_f32(xc);
    float *dst = nn_f32(yc);
#pragma omp parallel for if (rows * n > NN_PAR_GRAIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) along_row(op, src + r * n, dst + r * n, n);
    nn_release(xc);
    if (dim == last) return yc;
    nn_tensor *yt = nn_transpose(yc, dim, last);
    nn_release(yc);
    nn_tensor *y = yt ? nn_contiguous(yt) : NULL;
    nn_release(yt);
    return y;
}

nn_tensor *nn_softmax(const nn_tensor *x, int dim) {
    return along(ALONG_SOFTMAX, x, dim);
}

nn_tensor *nn_log_softmax(const nn_tensor *x, int dim) {
    return along(ALONG_LOG_SOFTMAX, x, dim);
}

nn_tensor *nn_cumsum(const nn_tensor *x, int dim) {
    return along(ALONG_CUMSUM, x, dim);
}
