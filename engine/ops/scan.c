/* scan.c -- cumulative products and log-sum-exps along a dim.
 *
 * Both run over rows of a contiguous copy: the row through element (o, i)
 * along dim has stride `inner`. Backward, per row:
 *   cumprod: before the row's first zero z, dx_i = sum_{j>=i} g_j y_j / x_i;
 *     at z, the products skipping x_z, accumulated directly; after z, 0.
 *   logcumsumexp: dx_j = exp(x_j - y_j) R_j with R_j = g_j +
 *     exp(y_j - y_{j+1}) R_{j+1}: every exponent is <= 0 (y is
 *     nondecreasing), so nothing overflows. */
#include "autograd.h"
#include "nn_ops.h"

#include <math.h>

typedef struct {
    int dim, logsumexp;
    int64_t outer, n, inner;
} scan_ctx;

static void row_cumprod(const float *x, float *y, int64_t n, int64_t s) {
    double p = 1;
    for (int64_t i = 0; i < n; i++) y[i * s] = (float)(p *= x[i * s]);
}

static void row_logcumsumexp(const float *x, float *y, int64_t n, int64_t s) {
    double m = -INFINITY, acc = 0; /* sum exp(x - m) */
    for (int64_t i = 0; i < n; i++) {
        double v = x[i * s];
        if (v > m) {
            acc = acc * exp(m - v) + 1;
            m = v;
        } else if (v > -INFINITY) {
            acc += exp(v - m);
        }
        y[i * s] = m == -INFINITY ? -INFINITY : (float)(m + log(acc));
        if (v != v) y[i * s] = NAN;
    }
}

static void row_cumprod_grad(const float *x, const float *y, const float *g, float *dx, int64_t n,
                             int64_t s) {
    int64_t z = n;
    for (int64_t i = 0; i < n && z == n; i++)
        if (x[i * s] == 0) z = i;
    double tail = 0; /* sum over j >= i of g_j y_j, for i < z */
    for (int64_t j = n - 1; j >= 0; j--) {
        if (j < z) tail += (double)g[j * s] * y[j * s];
        dx[j * s] = j < z ? (float)(tail / x[j * s]) : 0.0f;
    }
    if (z < n) { /* the first zero: products of everything else up to j */
        double p = z > 0 ? y[(z - 1) * s] : 1, acc = 0;
        for (int64_t j = z; j < n; j++) {
            if (j > z) p *= x[j * s];
            acc += g[j * s] * p;
        }
        dx[z * s] = (float)acc;
    }
}

static void row_logcumsumexp_grad(const float *x, const float *y, const float *g, float *dx,
                                  int64_t n, int64_t s) {
    double r = 0;
    for (int64_t j = n - 1; j >= 0; j--) {
        double yj = y[j * s];
        if (j < n - 1) {
            double next = y[(j + 1) * s];
            r *= yj == next ? 1.0 : exp(yj - next);
        }
        r += g[j * s];
        dx[j * s] = x[j * s] == -INFINITY ? 0.0f : (float)(exp(x[j * s] - yj) * r);
    }
}

enum { SAVED_X, SAVED_Y };

static int scan_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    const scan_ctx *c = NN_CTX(n, scan_ctx);
    nn_tensor *x = nn_saved(n, SAVED_X), *y = nn_saved(n, SAVED_Y);
    nn_tensor *g = x && y ? nn_contiguous((nn_tensor *)gout) : NULL;
    nn_tensor *dx = g ? nn_empty(NN_F32, n->in[0].ndim, n->in[0].shape) : NULL;
    if (!dx) {
        nn_release(g);
        return -1;
    }
    const float *xv = nn_f32(x), *yv = nn_f32(y), *gv = nn_f32(g);
    float *d = nn_f32(dx);
#pragma omp parallel for if (c->outer * c->inner * c->n > NN_PAR_GRAIN)
    for (int64_t r = 0; r < c->outer * c->inner; r++) {
        int64_t at = r / c->inner * c->n * c->inner + r % c->inner;
        if (c->logsumexp) row_logcumsumexp_grad(xv + at, yv + at, gv + at, d + at, c->n, c->inner);
        else row_cumprod_grad(xv + at, yv + at, gv + at, d + at, c->n, c->inner);
    }
    nn_release(g);
    gin[0] = dx;
    return 0;
}

NN_OP(cumprod_op, "cumprod", scan_backward, scan_ctx);
NN_OP(logcumsumexp_op, "logcumsumexp", scan_backward, scan_ctx);

static nn_tensor *scan(const nn_tensor *x, int dim, int logsumexp) {
    const char *name = logsumexp ? "logcumsumexp" : "cumprod";
    if (x->dtype != NN_F32) return nn_fail(1, "%s: %s tensors are not supported (f32 only)", name, nn_dtype_name(x->dtype));
    int nd = x->ndim ? x->ndim : 1;
    if ((dim = nn_wrap_dim(dim, nd, 2)) < 0) return NULL;
    scan_ctx c = {dim, logsumexp, 1, x->ndim ? x->shape[dim] : 1, 1};
    for (int d = 0; d < x->ndim; d++) {
        if (d < dim) c.outer *= x->shape[d];
        if (d > dim) c.inner *= x->shape[d];
    }
    int prev = nn_grad_off();
    nn_tensor *xc = nn_contiguous((nn_tensor *)x);
    nn_tensor *y = xc ? nn_empty(NN_F32, x->ndim, x->shape) : NULL;
    if (y) {
        const float *xv = nn_f32(xc);
        float *yv = nn_f32(y);
#pragma omp parallel for if (c.outer * c.inner * c.n > NN_PAR_GRAIN)
        for (int64_t r = 0; r < c.outer * c.inner; r++) {
            int64_t at = r / c.inner * c.n * c.inner + r % c.inner;
            if (logsumexp) row_logcumsumexp(xv + at, yv + at, c.n, c.inner);
            else row_cumprod(xv + at, yv + at, c.n, c.inner);
        }
    }
    nn_grad_restore(prev);
    nn_node *node;
    y = nn_finish_op(y, logsumexp ? &logcumsumexp_op : &cumprod_op, 1, &x, &node);
    if (node) {
        *NN_CTX(node, scan_ctx) = c;
        if (nn_save(node, SAVED_X, xc) < 0 || nn_save(node, SAVED_Y, y) < 0) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_release(xc);
    return y;
}

nn_tensor *nn_cumprod(const nn_tensor *x, int dim) { return scan(x, dim, 0); }
nn_tensor *nn_logcumsumexp(const nn_tensor *x, int dim) { return scan(x, dim, 1); }
