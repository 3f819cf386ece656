/* reduce.c -- reductions over any set of dims, softmax and cumsum.
 *
 * A reduction moves the reduced dims last (a view), makes that contiguous
 * (a copy only when needed), and reduces each row of R elements into one
 * output element. Sums accumulate in double over 8 independent lanes: the
 * result does not depend on the thread count, and the loop vectorises. */
#include "autograd.h"
#include "nn_ops.h"
#include "vecmath.h"

#include <math.h>
#include <string.h>

#define NAME_(id, name) #name,
const char *const nn_reduce_names[NN_REDUCE_COUNT] = {NN_REDUCE_OPS(NAME_)};

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
        case NN_SUM: r = (int64_t)((uint64_t)r + (uint64_t)x[i]); break; /* wraps */
        case NN_PROD: r = (int64_t)((uint64_t)r * (uint64_t)x[i]); break;
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

static nn_tensor *reduce(nn_reduce_op op, const nn_tensor *x,
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
            if (dt == NN_I64) nn_i64(out)[r] = nn_double_to_i64(v);
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

static int maxdim_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin);

typedef struct { int dim, keepdim; int64_t base; } maxdim_ctx; /* slot 0: the indices */
static int maxdim_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin);
NN_OP_TWICE(max_dim_op, "max", maxdim_backward, maxdim_ctx);
NN_OP_TWICE(min_dim_op, "min", maxdim_backward, maxdim_ctx);

int nn_max_dim(const nn_tensor *x, int dim, int keepdim, int is_min,
               int64_t base, nn_tensor **values, nn_tensor **indices) {
    NN_NO_HALF(x, 1, is_min ? "min" : "max");
    nn_reduce_args a = {.ndims = 1, .dims = {dim}, .keepdim = keepdim,
                        .base = base};
    *values = *indices = NULL;
    int prev = nn_grad_off();
    *indices = reduce(is_min ? NN_ARGMIN : NN_ARGMAX, x, &a);
    *values = *indices ? reduce(is_min ? NN_MIN : NN_MAX, x, &a) : NULL;
    nn_grad_restore(prev);
    nn_node *node;
    *values = nn_finish_saving(*values, is_min ? &min_dim_op : &max_dim_op, 1, &x, *indices,
                               &node);
    if (node)
        *NN_CTX(node, maxdim_ctx) = (maxdim_ctx){nn_wrap_dim(dim, x->ndim, 2), keepdim, base};
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
    float lanes[16], m = -INFINITY; /* the max in 16 lanes too: one chain would not vectorise */
    for (int j = 0; j < 16; j++) lanes[j] = -INFINITY;
    int64_t i0 = 0;
    for (; i0 + 16 <= n; i0 += 16)
        for (int j = 0; j < 16; j++) lanes[j] = x[i0 + j] > lanes[j] ? x[i0 + j] : lanes[j];
    for (; i0 < n; i0++) m = x[i0] > m ? x[i0] : m;
    for (int j = 0; j < 16; j++) m = lanes[j] > m ? lanes[j] : m;
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

/* ---- autograd -------------------------------------------------------------
 * Gradients are built from engine ops in the input's shape: a reduced
 * gradient gets its reduced dims back (size 1) and broadcasts against x. */

typedef struct {
    nn_reduce_op op;
    int nred, dims[NN_MAX_DIMS]; /* the reduced dims, ascending */
    int keepdim, correction;
    double p;
} reduce_ctx;
enum { SAVED_X, SAVED_Y }; /* slots */

/* what each reduction's derivative reads */
static bool reads_x(nn_reduce_op op) { return op != NN_SUM && op != NN_MEAN; }
static bool reads_y(nn_reduce_op op) { return reads_x(op) && op != NN_VAR && op != NN_PROD; }

/* g with the reduced dims of node n restored as size-1 dims */
static nn_tensor *keep_dims(nn_node *n, const nn_tensor *g) {
    const reduce_ctx *c = NN_CTX(n, reduce_ctx);
    if (c->keepdim) return nn_retain((nn_tensor *)g); /* keepdim already */
    nn_tensor *t = nn_retain((nn_tensor *)g);
    for (int i = 0; i < c->nred && t; i++) { /* ascending dims */
        nn_tensor *u = nn_unsqueeze(t, c->dims[i]);
        nn_release(t);
        t = u;
    }
    return t;
}

/* prod: d/dx_i is the product of the other elements of x_i's row, found
 * with prefix and suffix products so zeros need no special case */
static nn_tensor *prod_others(nn_node *n, const nn_tensor *x) {
    bool red[NN_MAX_DIMS] = {false};
    int perm[NN_MAX_DIMS], inv[NN_MAX_DIMS], k = 0;
    const reduce_ctx *c = NN_CTX(n, reduce_ctx);
    for (int i = 0; i < c->nred; i++) red[c->dims[i]] = true;
    for (int d = 0; d < x->ndim; d++) if (!red[d]) perm[k++] = d;
    for (int d = 0; d < x->ndim; d++) if (red[d]) perm[k++] = d;
    for (int i = 0; i < x->ndim; i++) inv[perm[i]] = i;
    int64_t rows, len;
    nn_tensor *xr = rows_of(x, red, &rows, &len);
    nn_tensor *o = xr ? nn_empty(NN_F32, xr->ndim, xr->shape) : NULL;
    if (o) {
        const float *v = nn_f32(xr);
        float *w = nn_f32(o);
        for (int64_t r = 0; r < rows; r++) {
            double pre = 1;
            for (int64_t i = 0; i < len; i++) {
                w[r * len + i] = (float)pre;
                pre *= v[r * len + i];
            }
            double suf = 1;
            for (int64_t i = len - 1; i >= 0; i--) {
                w[r * len + i] = (float)(w[r * len + i] * suf);
                suf *= v[r * len + i];
            }
        }
    }
    nn_release(xr);
    if (!o) return NULL;
    nn_tensor *back = nn_permute(o, inv);
    nn_release(o);
    return back;
}

static int reduce_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const reduce_ctx *c = NN_CTX(n, reduce_ctx);
    nn_reduce_op op = c->op;
    const nn_node_input *in = &n->in[0];
    nn_tensor *x = reads_x(op) ? nn_saved(n, SAVED_X) : NULL;
    nn_tensor *y = reads_y(op) ? nn_saved(n, SAVED_Y) : NULL;
    if ((reads_x(op) && !x) || (reads_y(op) && !y)) return -1;
    nn_tensor *gk = keep_dims(n, g), *yk = y ? keep_dims(n, y) : NULL;
    nn_tensor *t[6] = {NULL};
    nn_tensor *r = NULL;
    double count = 1;
    nn_reduce_args m = {.ndims = c->nred, .keepdim = 1};
    for (int i = 0; i < c->nred; i++) {
        count *= (double)in->shape[c->dims[i]];
        m.dims[i] = c->dims[i];
    }
    if (!gk || (y && !yk)) goto done;
    switch (op) {
    case NN_SUM:
    case NN_MEAN:
        if (op == NN_MEAN && (t[0] = nn_scalar(NN_F32, 1.0 / count)))
            t[1] = nn_mul(gk, t[0]);
        else
            t[1] = nn_retain(gk);
        if (t[1]) r = nn_expand(t[1], in->ndim, in->shape);
        break;
    case NN_VAR:
    case NN_STD: { /* 2 (x - mean) / (N - c), and / (2 std) for std */
        double k = (op == NN_VAR ? 2.0 : 1.0) / (count - c->correction);
        if ((t[0] = nn_reduce(NN_MEAN, x, &m)) && (t[1] = nn_binary(NN_SUB, x, t[0])) &&
            (t[2] = nn_scalar(NN_F32, k)) && (t[3] = nn_mul(t[1], t[2])) &&
            (t[4] = op == NN_VAR ? nn_retain(gk) : nn_binary(NN_DIV, gk, yk)))
            r = nn_mul(t[3], t[4]);
        break;
    }
    case NN_LOGSUMEXP:
        if ((t[0] = nn_binary(NN_SUB, x, yk)) && (t[1] = nn_unary(NN_EXP, t[0], 0, 0)))
            r = nn_mul(gk, t[1]);
        break;
    case NN_MAX:
    case NN_MIN: { /* ties share the gradient evenly */
        if ((t[0] = nn_binary(NN_EQ, x, yk)) && (t[1] = nn_reduce(NN_SUM, t[0], &m)) &&
            (t[2] = nn_binary(NN_DIV, gk, t[1])))
            r = nn_mul(t[0], t[2]);
        break;
    }
    case NN_NORM: {
        double p = c->p;
        nn_tensor *zero = t[5] = nn_scalar(NN_F32, 0);
        if (!zero || !(t[0] = nn_unary(NN_SIGN, x, 0, 0))) break;
        if (p == 0) {
            r = nn_zeros(NN_F32, x->ndim, x->shape);
        } else if (p == 1) {
            r = nn_mul(gk, t[0]);
        } else if (isinf(p)) { /* the extreme |x| share it, with x's sign */
            nn_tensor *ax = nn_unary(NN_ABS, x, 0, 0);
            if (ax && (t[1] = nn_binary(NN_EQ, ax, yk)) && (t[2] = nn_reduce(NN_SUM, t[1], &m)) &&
                (t[3] = nn_mul(t[1], t[0])) && (t[4] = nn_binary(NN_DIV, gk, t[2])))
                r = nn_mul(t[3], t[4]);
            nn_release(ax);
        } else { /* g sign(x) |x|^(p-1) / y^(p-1), 0 where y == 0 */
            nn_tensor *ax = nn_unary(NN_ABS, x, 0, 0), *pm1 = nn_scalar(NN_F32, p - 1);
            nn_tensor *num = ax && pm1 ? nn_binary(NN_POW, ax, pm1) : NULL;
            nn_tensor *den = pm1 ? nn_binary(NN_POW, yk, pm1) : NULL;
            nn_tensor *yz = nn_binary(NN_EQ, yk, zero);
            nn_tensor *q = num && den ? nn_binary(NN_DIV, num, den) : NULL;
            nn_tensor *qs = q && yz ? nn_where(yz, zero, q) : NULL;
            if (qs && (t[1] = nn_mul(qs, t[0]))) r = nn_mul(gk, t[1]);
            nn_release(ax); nn_release(pm1); nn_release(num); nn_release(den);
            nn_release(yz); nn_release(q); nn_release(qs);
        }
        break;
    }
    case NN_PROD:
        if ((t[0] = prod_others(n, x))) r = nn_mul(gk, t[0]);
        break;
    default:
        break;
    }
done:
    for (int i = 0; i < 6; i++) nn_release(t[i]);
    nn_release(gk);
    nn_release(yk);
    gin[0] = r;
    return r ? 0 : -1;
}

/* the backward is built of engine ops (prod's products aside) */
#define REDUCE_OP_(id, name) {#name, reduce_backward, sizeof(reduce_ctx), NULL, \
                              NN_##id == NN_PROD ? NULL : reduce_backward},
static const nn_op reduce_ops[NN_REDUCE_COUNT] = {NN_REDUCE_OPS(REDUCE_OP_)};

nn_tensor *nn_reduce(nn_reduce_op op, const nn_tensor *x,
                     const nn_reduce_args *args) {
    if (nn_is_half(x->dtype)) { /* in f32, rounded back */
        nn_tensor *xf = nn_widen(x), *y = xf ? nn_reduce(op, xf, args) : NULL;
        nn_release(xf);
        return nn_narrow_to(y, x->dtype);
    }
    int prev = nn_grad_off();
    nn_tensor *y = reduce(op, x, args);
    nn_grad_restore(prev);
    if (!y || y->dtype != NN_F32) return y; /* argmax, integers: flat */
    nn_node *node;
    y = nn_finish_op(y, &reduce_ops[op], 1, &x, &node);
    if (!node) return y;
    bool red[NN_MAX_DIMS];
    parse_dims(x, args, red);
    reduce_ctx *c = NN_CTX(node, reduce_ctx);
    *c = (reduce_ctx){.op = op, .keepdim = args->keepdim, .correction = args->correction,
                      .p = args->p};
    for (int d = 0; d < x->ndim; d++)
        if (red[d]) c->dims[c->nred++] = d;
    if ((reads_x(op) && nn_save(node, SAVED_X, x) < 0) ||
        (reads_y(op) && nn_save(node, SAVED_Y, y) < 0)) {
        nn_release(y);
        return NULL;
    }
    return y;
}

static int maxdim_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const maxdim_ctx *c = NN_CTX(n, maxdim_ctx);
    nn_tensor *idx = nn_saved(n, 0);
    if (!idx) return -1;
    int dim = c->dim;
    nn_tensor *gk = c->keepdim ? nn_retain((nn_tensor *)g) : nn_unsqueeze((nn_tensor *)g, dim);
    nn_tensor *ik = c->keepdim ? nn_retain(idx) : nn_unsqueeze(idx, dim);
    nn_tensor *z = nn_zeros(NN_F32, n->in[0].ndim, n->in[0].shape);
    if (gk && ik && z) gin[0] = nn_scatter(z, dim, ik, gk, 0, c->base);
    nn_release(gk);
    nn_release(ik);
    nn_release(z);
    return gin[0] ? 0 : -1;
}

/* softmax: y (g - sum(g y)); log_softmax: g - e^y sum(g); cumsum: the
 * reversed cumulative sum, sum(g) - cumsum(g) + g */
typedef struct { along_op op; int dim; } along_ctx; /* slot 0: y (softmaxes) */

static int along_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    along_op op = NN_CTX(n, along_ctx)->op;
    int dim = NN_CTX(n, along_ctx)->dim;
    nn_tensor *y = op != ALONG_CUMSUM ? nn_saved(n, 0) : NULL;
    if (op != ALONG_CUMSUM && !y) return -1;
    nn_tensor *t[3] = {NULL}, *r = NULL;
    nn_tensor *gy = op == ALONG_SOFTMAX ? nn_mul(g, y) : nn_retain((nn_tensor *)g);
    nn_tensor *s = gy ? nn_sum(gy, 1, &dim, 1) : NULL;
    if (s) {
        if (op == ALONG_SOFTMAX) {
            if ((t[0] = nn_binary(NN_SUB, g, s))) r = nn_mul(y, t[0]);
        } else if (op == ALONG_LOG_SOFTMAX) {
            if ((t[0] = nn_unary(NN_EXP, y, 0, 0)) && (t[1] = nn_mul(t[0], s)))
                r = nn_binary(NN_SUB, g, t[1]);
        } else if ((t[0] = nn_cumsum(g, dim)) && (t[1] = nn_binary(NN_SUB, s, t[0]))) {
            r = nn_add(t[1], g);
        }
    }
    for (int i = 0; i < 3; i++) nn_release(t[i]);
    nn_release(gy);
    nn_release(s);
    gin[0] = r;
    return r ? 0 : -1;
}

NN_OP_TWICE(softmax_op, "softmax", along_backward, along_ctx);
NN_OP_TWICE(log_softmax_op, "log_softmax", along_backward, along_ctx);
NN_OP_TWICE(cumsum_op, "cumsum", along_backward, along_ctx);

static nn_tensor *along_op_recorded(along_op op, const nn_tensor *x, int dim,
                                    const nn_op *def) {
    if (nn_is_half(x->dtype)) { /* in f32, rounded back */
        nn_tensor *xf = nn_widen(x), *y = xf ? along_op_recorded(op, xf, dim, def) : NULL;
        nn_release(xf);
        return nn_narrow_to(y, x->dtype);
    }
    int prev = nn_grad_off();
    nn_tensor *y = along(op, x, dim);
    nn_grad_restore(prev);
    nn_node *node;
    y = nn_finish_op(y, def, 1, &x, &node);
    if (node) {
        *NN_CTX(node, along_ctx) = (along_ctx){op, nn_wrap_dim(dim, x->ndim, 2)};
        if (op != ALONG_CUMSUM && nn_save(node, 0, y) < 0) {
            nn_release(y);
            return NULL;
        }
    }
    return y;
}

nn_tensor *nn_softmax(const nn_tensor *x, int dim) {
    return along_op_recorded(ALONG_SOFTMAX, x, dim, &softmax_op);
}

nn_tensor *nn_log_softmax(const nn_tensor *x, int dim) {
    return along_op_recorded(ALONG_LOG_SOFTMAX, x, dim, &log_softmax_op);
}

nn_tensor *nn_cumsum(const nn_tensor *x, int dim) {
    return along_op_recorded(ALONG_CUMSUM, x, dim, &cumsum_op);
}
