/* index.c -- ops driven by index tensors or masks: gather, scatter,
 * index_select, index_add, masked_fill, one_hot, and the triangles.
 * Index tensors are i64 counted from `base` (see nn.h); every index is
 * range-checked before anything is written. */
#include "autograd.h"
#include "nn_ops.h"

#include <string.h>

static int check_index(const nn_tensor *index, int64_t size, int64_t base,
                       int arg) {
    if (index->dtype != NN_I64)
        return nn_failed(arg, "index must be an i64 tensor, got %s",
                         nn_dtype_name(index->dtype));
    nn_tensor *c = nn_contiguous((nn_tensor *)index);
    if (!c) return -1;
    const int64_t *v = nn_i64(c);
    int64_t n = nn_numel(c);
    for (int64_t i = 0; i < n; i++)
        if (v[i] < base || v[i] - base >= size) { /* size + base may overflow */
            long long bad = (long long)v[i];
            nn_release(c);
            return nn_failed(arg, "index %lld out of range [%lld, %lld]", bad,
                             (long long)base, (long long)(size - 1 + base));
        }
    nn_release(c);
    return 0;
}

static const char *shp(const nn_tensor *t, char *buf) {
    return nn_shape_str(t, buf, 96);
}

/* ---- gather / scatter: one index per element of `index` ----------------- */

typedef struct {
    float *dst;           /* operand 0 (gather: out; scatter: out, dim stride 0) */
    const float *src;     /* operand 1 (gather: x, dim stride 0; scatter: src) */
    const int64_t *index; /* operand 2 */
    int64_t dim_stride, base;
    int scatter, accumulate;
} gs_ctx;

static void gs_row(void *vctx, int64_t n, const int64_t *off,
                   const int64_t *inner) {
    gs_ctx *c = vctx;
    float *dst = c->dst + off[0];
    const float *src = c->src + off[1];
    const int64_t *ix = c->index + off[2];
    for (int64_t i = 0; i < n; i++) {
        int64_t jump = (ix[i * inner[2]] - c->base) * c->dim_stride;
        if (!c->scatter)
            dst[i * inner[0]] = src[i * inner[1] + jump];
        else if (c->accumulate)
            dst[i * inner[0] + jump] += src[i * inner[1]];
        else
            dst[i * inner[0] + jump] = src[i * inner[1]];
    }
}

static int check_gs_shapes(const nn_tensor *x, int dim, const nn_tensor *index,
                           const nn_tensor *src, const char *what) {
    char s1[96], s2[96];
    if (index->ndim != x->ndim)
        return nn_failed(3, "%s: index has %d dims, input has %d", what,
                         index->ndim, x->ndim);
    if (src && src->ndim != x->ndim)
        return nn_failed(4, "%s: src has %d dims, input has %d", what,
                         src->ndim, x->ndim);
    for (int d = 0; d < x->ndim; d++) {
        if (d != dim && index->shape[d] > x->shape[d])
            return nn_failed(3, "%s: index %s exceeds input %s outside dim %d",
                             what, shp(index, s1), shp(x, s2), dim + 1);
        if (src && index->shape[d] > src->shape[d])
            return nn_failed(4, "%s: index %s exceeds src %s", what,
                             shp(index, s1), shp(src, s2));
    }
    return 0;
}

/* walk `index` with operand 0/1 strides given; dim stride taken from t */
static void gs_walk(gs_ctx *c, const nn_tensor *index, const int64_t *s0,
                    const int64_t *s1) {
    const int64_t *strides[3] = {s0, s1, index->stride};
    nn_iter it;
    nn_iter_init(&it, index->ndim, index->shape, 3, strides);
    nn_iter_range(&it, 0, nn_numel(index), gs_row, c);
}

static nn_tensor *gather(const nn_tensor *x, int dim, const nn_tensor *index,
                         int64_t base) {
    if (x->dtype != NN_F32) return nn_fail(1, "gather expects an f32 input");
    if ((dim = nn_wrap_dim(dim, x->ndim, 2)) < 0) return NULL;
    if (check_gs_shapes(x, dim, index, NULL, "gather") < 0 ||
        check_index(index, x->ndim ? x->shape[dim] : 1, base, 3) < 0)
        return NULL;
    nn_tensor *out = nn_empty(NN_F32, index->ndim, index->shape);
    if (!out) return NULL;
    int64_t xs[NN_MAX_DIMS];
    memcpy(xs, x->stride, sizeof xs);
    if (x->ndim) xs[dim] = 0;
    gs_ctx c = {nn_f32(out), nn_f32(x), nn_i64(index),
                x->ndim ? x->stride[dim] : 0, base, 0, 0};
    gs_walk(&c, index, out->stride, xs);
    return out;
}

static nn_tensor *scatter(const nn_tensor *x, int dim, const nn_tensor *index,
                          const nn_tensor *src, int accumulate, int64_t base) {
    if (x->dtype != NN_F32 || src->dtype != NN_F32)
        return nn_fail(x->dtype != NN_F32 ? 1 : 4, "scatter expects f32 tensors");
    if ((dim = nn_wrap_dim(dim, x->ndim, 2)) < 0) return NULL;
    if (check_gs_shapes(x, dim, index, src, "scatter") < 0 ||
        check_index(index, x->ndim ? x->shape[dim] : 1, base, 3) < 0)
        return NULL;
    nn_tensor *out = nn_clone(x);
    if (!out) return NULL;
    int64_t os[NN_MAX_DIMS];
    memcpy(os, out->stride, sizeof os);
    if (out->ndim) os[dim] = 0;
    gs_ctx c = {nn_f32(out), nn_f32(src), nn_i64(index),
                out->ndim ? out->stride[dim] : 0, base, 1, accumulate};
    gs_walk(&c, index, os, src->stride);
    return out;
}

/* ---- index_select / index_add: whole slices along dim ------------------- */

static int check_index_1d(const nn_tensor *x, int dim, const nn_tensor *index,
                          int64_t base) {
    if (index->ndim > 1)
        return nn_failed(3, "index must be 1-D (got %d dims)", index->ndim);
    return check_index(index, x->shape[dim], base, 3);
}

/* copy (or add alpha times) slice `from` of src into slice `to` of dst */
static int slice_op(nn_tensor *dst, int64_t to, const nn_tensor *src,
                    int64_t from, int dim, double alpha, int add) {
    nn_tensor *d = nn_select(dst, dim, to);
    nn_tensor *s = nn_select((nn_tensor *)src, dim, from);
    int rc = -1;
    if (d && s) {
        if (!add) {
            rc = nn_copy_(d, s);
        } else {
            nn_tensor *a = nn_scalar(NN_F32, alpha);
            nn_tensor *sa = a ? nn_mul(s, a) : NULL;
            rc = sa ? nn_binary_(NN_ADD, d, sa) : -1;
            nn_release(a);
            nn_release(sa);
        }
    }
    nn_release(d);
    nn_release(s);
    return rc;
}

static nn_tensor *index_select(const nn_tensor *x, int dim,
                               const nn_tensor *index, int64_t base) {
    if (x->ndim == 0) return nn_fail(1, "index_select of a 0-dim tensor");
    if ((dim = nn_wrap_dim(dim, x->ndim, 2)) < 0) return NULL;
    if (check_index_1d(x, dim, index, base) < 0) return NULL;
    int64_t shape[NN_MAX_DIMS], n = nn_numel(index);
    memcpy(shape, x->shape, sizeof shape);
    shape[dim] = n;
    nn_tensor *out = nn_empty(x->dtype, x->ndim, shape);
    nn_tensor *ic = out ? nn_contiguous((nn_tensor *)index) : NULL;
    if (!ic) {
        nn_release(out);
        return NULL;
    }
    const int64_t *ix = nn_i64(ic);
    if (dim == 0 && nn_is_contiguous(x)) { /* rows: the embedding case */
        size_t row = (size_t)nn_row_numel(x) * nn_dtype_size(x->dtype);
#pragma omp parallel for if (n * row > 4 * NN_PAR_GRAIN)
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)nn_data(out) + i * row,
                   (const char *)nn_data(x) + (ix[i] - base) * row, row);
    } else {
        for (int64_t i = 0; i < n; i++)
            if (slice_op(out, i, x, ix[i] - base, dim, 1, 0) < 0) {
                nn_release(out);
                out = NULL;
                break;
            }
    }
    nn_release(ic);
    return out;
}

static nn_tensor *index_add(const nn_tensor *x, int dim, const nn_tensor *index,
                            const nn_tensor *src, double alpha, int64_t base) {
    char s1[96], s2[96];
    if (x->ndim == 0) return nn_fail(1, "index_add of a 0-dim tensor");
    if (x->dtype != NN_F32 || src->dtype != NN_F32)
        return nn_fail(x->dtype != NN_F32 ? 1 : 4, "index_add expects f32 tensors");
    if ((dim = nn_wrap_dim(dim, x->ndim, 2)) < 0) return NULL;
    if (check_index_1d(x, dim, index, base) < 0) return NULL;
    int64_t n = nn_numel(index);
    bool ok = src->ndim == x->ndim && src->shape[dim] == n;
    for (int d = 0; ok && d < x->ndim; d++)
        if (d != dim && src->shape[d] != x->shape[d]) ok = false;
    if (!ok)
        return nn_fail(4, "index_add: src %s does not match input %s with "
                          "%lld indices along dim %d", shp(src, s1), shp(x, s2),
                       (long long)n, dim + 1);
    nn_tensor *out = nn_clone(x);
    nn_tensor *ic = out ? nn_contiguous((nn_tensor *)index) : NULL;
    if (!ic) {
        nn_release(out);
        return NULL;
    }
    const int64_t *ix = nn_i64(ic);
    nn_tensor *sc = nn_contiguous((nn_tensor *)src);
    if (!sc) {
        nn_release(out);
        out = NULL;
    } else if (dim == 0) { /* rows, serial: indices may repeat */
        int64_t row = nn_row_numel(x);
        float *o = nn_f32(out), a = (float)alpha;
        const float *s = nn_f32(sc);
        for (int64_t i = 0; i < n; i++) {
            float *dst = o + (ix[i] - base) * row;
            const float *from = s + i * row;
            for (int64_t j = 0; j < row; j++) dst[j] += a * from[j];
        }
    } else {
        for (int64_t i = 0; i < n; i++)
            if (slice_op(out, ix[i] - base, sc, i, dim, alpha, 1) < 0) {
                nn_release(out);
                out = NULL;
                break;
            }
    }
    nn_release(sc);
    nn_release(ic);
    return out;
}

/* ---- masks ------------------------------------------------------------- */

typedef struct { nn_tensor *x; const nn_tensor *mask; double value; } mf_ctx;

static void mf_row(void *vctx, int64_t n, const int64_t *off,
                   const int64_t *inner) {
    mf_ctx *c = vctx;
    bool f = c->mask->dtype == NN_F32;
    const float *mf = f ? nn_f32(c->mask) + off[1] : NULL;
    const int64_t *mi = f ? NULL : nn_i64(c->mask) + off[1];
    for (int64_t i = 0; i < n; i++) {
        bool on = f ? mf[i * inner[1]] != 0.0f : mi[i * inner[1]] != 0;
        if (!on) continue;
        if (c->x->dtype == NN_F32) nn_f32(c->x)[off[0] + i * inner[0]] = (float)c->value;
        else nn_i64(c->x)[off[0] + i * inner[0]] = nn_double_to_i64(c->value);
    }
}

int nn_masked_fill_(nn_tensor *x, const nn_tensor *mask, double value) {
    NN_NO_HALF(x, 1, "masked_fill_");
    NN_NO_HALF(mask, 2, "masked_fill_");
    char s1[96], s2[96];
    if (nn_check_writable(x, 1) < 0) return -1;
    if (nn_is_grad_enabled() && x->requires_grad)
        return nn_failed(1, "in-place masked_fill on a tensor that requires "
                            "grad: use masked_fill");
    int64_t shape[NN_MAX_DIMS];
    int nd = nn_broadcast_shape(x, mask, shape);
    if (nd != x->ndim || memcmp(shape, x->shape, nd * sizeof *shape))
        return nn_failed(2, "mask %s does not broadcast to the input %s",
                         shp(mask, s1), shp(x, s2));
    nn_iter it;
    nn_iter_pair(&it, x, mask);
    mf_ctx c = {x, mask, value};
    nn_iter_run(&it, mf_row, &c);
    nn_bump_version(x);
    return 0;
}

static nn_tensor *masked_fill(const nn_tensor *x, const nn_tensor *mask,
                              double value) {
    nn_tensor *out = nn_clone(x);
    if (out && nn_masked_fill_(out, mask, value) < 0) {
        nn_release(out);
        return NULL;
    }
    return out;
}

nn_tensor *nn_one_hot(const nn_tensor *index, int64_t classes, int64_t base) {
    NN_NO_HALF_PTR(index, 1, "one_hot");
    if (classes <= 0) return nn_fail(2, "one_hot needs classes > 0");
    if (index->ndim >= NN_MAX_DIMS) return nn_fail(1, "too many dims");
    if (check_index(index, classes, base, 1) < 0) return NULL;
    int64_t shape[NN_MAX_DIMS];
    memcpy(shape, index->shape, index->ndim * sizeof *shape);
    shape[index->ndim] = classes;
    nn_tensor *out = nn_zeros(NN_F32, index->ndim + 1, shape);
    nn_tensor *ic = out ? nn_contiguous((nn_tensor *)index) : NULL;
    if (!ic) {
        nn_release(out);
        return NULL;
    }
    int64_t n = nn_numel(ic);
    for (int64_t i = 0; i < n; i++)
        nn_f32(out)[i * classes + nn_i64(ic)[i] - base] = 1.0f;
    nn_release(ic);
    return out;
}

static nn_tensor *tril(const nn_tensor *x, int64_t k, int upper) {
    if (x->ndim < 2) return nn_fail(1, "%s needs at least 2 dims",
                                    upper ? "triu" : "tril");
    nn_tensor *out = nn_contiguous((nn_tensor *)x);
    if (out == x) { /* contiguous input comes back shared: copy it */
        nn_release(out);
        out = nn_clone(x);
    }
    if (!out) return NULL;
    int64_t r = x->shape[x->ndim - 2], c = x->shape[x->ndim - 1];
    int64_t mats = (r * c != 0) ? nn_numel(x) / (r * c) : 0;
    size_t es = nn_dtype_size(x->dtype);
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < c; j++)
                if (upper ? j - i < k : j - i > k)
                    memset((char *)nn_data(out) + ((m * r + i) * c + j) * es, 0, es);
    return out;
}

/* ---- autograd ---------------------------------------------------------------
 * Saved slot 0: the index or mask. */
typedef struct { int dim; int64_t base; } index_ctx;          /* gather, index_select */
typedef struct { int dim, accumulate; int64_t base; } scatter_ctx;
typedef struct { int dim; int64_t base; double alpha; } index_add_ctx;
typedef struct { int64_t k; int upper; } tril_ctx;

static nn_tensor *zeros_of(const nn_node *n, int i) {
    return nn_zeros(NN_F32, n->in[i].ndim, n->in[i].shape);
}

static int gather_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const index_ctx *c = NN_CTX(n, index_ctx);
    nn_tensor *idx = nn_saved(n, 0), *z = idx ? zeros_of(n, 0) : NULL;
    if (z) gin[0] = nn_scatter(z, c->dim, idx, g, 1, c->base); /* records: twice */
    nn_release(z);
    return gin[0] ? 0 : -1;
}

/* x's gradient skips the positions scatter overwrote; src's is g read
 * back at them (zero where src was not used) */
static int scatter_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const scatter_ctx *c = NN_CTX(n, scatter_ctx);
    nn_tensor *idx = nn_saved(n, 0);
    if (!idx) return -1;
    int dim = c->dim, rc = 0;
    if (nn_input_needs(n, 0)) {
        nn_tensor *z = c->accumulate ? NULL : nn_zeros(NN_F32, idx->ndim, idx->shape);
        gin[0] = c->accumulate ? nn_retain((nn_tensor *)g)
                               : z ? scatter(g, dim, idx, z, 0, c->base) : NULL;
        nn_release(z);
        if (!gin[0]) rc = -1;
    }
    if (rc == 0 && nn_input_needs(n, 3)) {
        nn_tensor *part = gather(g, dim, idx, c->base);
        nn_tensor *z = part ? zeros_of(n, 3) : NULL, *v = z ? nn_retain(z) : NULL;
        for (int d = 0; v && d < idx->ndim; d++) {
            nn_tensor *w = nn_narrow(v, d, 0, idx->shape[d]);
            nn_release(v);
            v = w;
        }
        if (v && nn_copy_(v, part) == 0) gin[3] = nn_retain(z);
        nn_release(part); nn_release(z); nn_release(v);
        if (!gin[3]) rc = -1;
    }
    return rc;
}

static int index_select_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const index_ctx *c = NN_CTX(n, index_ctx);
    nn_tensor *idx = nn_saved(n, 0), *z = idx ? zeros_of(n, 0) : NULL;
    if (z) gin[0] = nn_index_add(z, c->dim, idx, g, 1, c->base);
    nn_release(z);
    return gin[0] ? 0 : -1;
}

static int index_add_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const index_add_ctx *c = NN_CTX(n, index_add_ctx);
    nn_tensor *idx = nn_saved(n, 0);
    if (!idx) return -1;
    if (nn_input_needs(n, 0)) gin[0] = nn_retain((nn_tensor *)g);
    if (nn_input_needs(n, 3)) {
        nn_tensor *sel = nn_index_select(g, c->dim, idx, c->base);
        nn_tensor *a = sel ? nn_scalar(NN_F32, c->alpha) : NULL;
        gin[3] = a ? nn_mul(sel, a) : NULL;
        nn_release(sel);
        nn_release(a);
        if (!gin[3]) return -1;
    }
    return 0;
}

static int masked_fill_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    nn_tensor *mask = nn_saved(n, 0);
    gin[0] = mask ? nn_masked_fill(g, mask, 0) : NULL;
    return gin[0] ? 0 : -1;
}

static int tril_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const tril_ctx *c = NN_CTX(n, tril_ctx);
    gin[0] = nn_tril(g, c->k, c->upper);
    return gin[0] ? 0 : -1;
}

NN_OP_TWICE(gather_op, "gather", gather_backward, index_ctx);
NN_OP(scatter_op, "scatter", scatter_backward, scatter_ctx);
NN_OP(scatter_add_op, "scatter_add", scatter_backward, scatter_ctx);
NN_OP_TWICE(index_select_op, "index_select", index_select_backward, index_ctx);
NN_OP_TWICE(index_add_op, "index_add", index_add_backward, index_add_ctx);
NN_OP_TWICE_NO_CTX(masked_fill_op, "masked_fill", masked_fill_backward);
NN_OP_TWICE(tril_op, "tril", tril_backward, tril_ctx);
NN_OP_TWICE(triu_op, "triu", tril_backward, tril_ctx);

nn_tensor *nn_gather(const nn_tensor *x, int dim, const nn_tensor *index,
                     int64_t base) {
    NN_NO_HALF_PTR(x, 1, "gather");
    NN_NO_HALF_PTR(index, 3, "gather");
    int prev = nn_grad_off();
    nn_tensor *y = gather(x, dim, index, base);
    nn_grad_restore(prev);
    nn_node *node;
    y = nn_finish_saving(y, &gather_op, 1, &x, index, &node);
    if (node) *NN_CTX(node, index_ctx) = (index_ctx){nn_wrap_dim(dim, x->ndim, 2), base};
    return y;
}

nn_tensor *nn_scatter(const nn_tensor *x, int dim, const nn_tensor *index,
                      const nn_tensor *src, int accumulate, int64_t base) {
    NN_NO_HALF_PTR(x, 1, "scatter");
    NN_NO_HALF_PTR(index, 3, "scatter");
    NN_NO_HALF_PTR(src, 4, "scatter");
    int prev = nn_grad_off();
    nn_tensor *y = scatter(x, dim, index, src, accumulate, base);
    nn_grad_restore(prev);
    const nn_tensor *ins[4] = {x, NULL, NULL, src};
    nn_node *node;
    y = nn_finish_saving(y, accumulate ? &scatter_add_op : &scatter_op, 4, ins, index, &node);
    if (node)
        *NN_CTX(node, scatter_ctx) = (scatter_ctx){nn_wrap_dim(dim, x->ndim, 2), accumulate, base};
    return y;
}

nn_tensor *nn_index_select(const nn_tensor *x, int dim, const nn_tensor *index,
                           int64_t base) {
    NN_NO_HALF_PTR(x, 1, "index_select");
    NN_NO_HALF_PTR(index, 3, "index_select");
    int prev = nn_grad_off();
    nn_tensor *y = index_select(x, dim, index, base);
    nn_grad_restore(prev);
    nn_node *node;
    y = nn_finish_saving(y, &index_select_op, 1, &x, index, &node);
    if (node) *NN_CTX(node, index_ctx) = (index_ctx){nn_wrap_dim(dim, x->ndim, 2), base};
    return y;
}

/* Rows index (m of them, counted from base) of x moved in place to rows
 * 0..m-1: row r gets what row index[r] held. Only rows that move are
 * copied; a row whose source comes before it (and may be overwritten
 * already) is read from a copy of those sources made first, the others
 * straight from x in increasing order (their sources are not yet written). */
int nn_keep_rows_(nn_tensor *x, const nn_tensor *index, int64_t base) {
    char s1[96];
    NN_NO_HALF(x, 1, "keep_rows_");
    if (nn_check_writable(x, 1) < 0) return -1;
    if (x->ndim == 0) return nn_failed(1, "keep_rows_ needs a tensor with rows");
    if (nn_is_grad_enabled() && x->requires_grad)
        return nn_failed(1, "keep_rows_ on a tensor that requires grad");
    if (index->dtype != NN_I64 || index->ndim != 1)
        return nn_failed(2, "index must be a 1-D i64 tensor, got %s %s",
                         nn_dtype_name(index->dtype), shp(index, s1));
    int64_t rows = x->shape[0], m = index->shape[0];
    if (m > rows)
        return nn_failed(2, "%lld rows asked of a tensor with %lld", (long long)m, (long long)rows);
    nn_tensor *ic = nn_contiguous((nn_tensor *)index);
    if (!ic) return -1;
    const int64_t *ix = nn_i64(ic);
    int64_t early = 0;
    for (int64_t r = 0; r < m; r++) {
        if (ix[r] < base || ix[r] >= rows + base) {
            nn_release(ic);
            return nn_failed(2, "index %lld out of range [%lld, %lld]", (long long)ix[r],
                             (long long)base, (long long)(rows + base - 1));
        }
        early += ix[r] - base < r;
    }
    int prev = nn_grad_off(), rc = 0;
    nn_tensor *copies = NULL;
    if (early) { /* the sources that come before their rows, copied first */
        nn_tensor *src = nn_empty(NN_I64, 1, &early);
        if (src) {
            int64_t k = 0;
            for (int64_t r = 0; r < m; r++)
                if (ix[r] - base < r) nn_i64(src)[k++] = ix[r];
            copies = nn_index_select(x, 0, src, base);
        }
        nn_release(src);
        if (!copies) rc = -1;
    }
    for (int64_t r = 0, k = 0; r < m && rc == 0; r++) {
        int64_t from = ix[r] - base;
        if (from == r) continue;
        nn_tensor *dst = nn_select(x, 0, r);
        nn_tensor *src = from < r ? nn_select(copies, 0, k++) : nn_select(x, 0, from);
        rc = dst && src ? nn_copy_(dst, src) : -1;
        nn_release(dst);
        nn_release(src);
    }
    nn_grad_restore(prev);
    nn_release(copies);
    nn_release(ic);
    if (rc == 0) nn_bump_version(x);
    return rc;
}

nn_tensor *nn_index_add(const nn_tensor *x, int dim, const nn_tensor *index,
                        const nn_tensor *src, double alpha, int64_t base) {
    NN_NO_HALF_PTR(x, 1, "index_add");
    NN_NO_HALF_PTR(index, 3, "index_add");
    NN_NO_HALF_PTR(src, 4, "index_add");
    int prev = nn_grad_off();
    nn_tensor *y = index_add(x, dim, index, src, alpha, base);
    nn_grad_restore(prev);
    const nn_tensor *ins[4] = {x, NULL, NULL, src};
    nn_node *node;
    y = nn_finish_saving(y, &index_add_op, 4, ins, index, &node);
    if (node)
        *NN_CTX(node, index_add_ctx) = (index_add_ctx){nn_wrap_dim(dim, x->ndim, 2), base, alpha};
    return y;
}

nn_tensor *nn_masked_fill(const nn_tensor *x, const nn_tensor *mask,
                          double value) {
    NN_NO_HALF_PTR(x, 1, "masked_fill");
    NN_NO_HALF_PTR(mask, 2, "masked_fill");
    int prev = nn_grad_off();
    nn_tensor *y = masked_fill(x, mask, value);
    nn_grad_restore(prev);
    nn_node *node;
    return nn_finish_saving(y, &masked_fill_op, 1, &x, mask, &node);
}

nn_tensor *nn_tril(const nn_tensor *x, int64_t k, int upper) {
    NN_NO_HALF_PTR(x, 1, upper ? "triu" : "tril");
    int prev = nn_grad_off();
    nn_tensor *y = tril(x, k, upper);
    nn_grad_restore(prev);
    nn_node *node;
    y = nn_finish_op(y, upper ? &triu_op : &tril_op, 1, &x, &node);
    if (node) *NN_CTX(node, tril_ctx) = (tril_ctx){k, upper};
    return y;
}
