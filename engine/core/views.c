/* views.c -- tensors that share storage, and copies between layouts. */
#include "autograd.h"
#include "half.h"

#include <string.h>

static const char *shp(const nn_tensor *t, char *buf) {
    return nn_shape_str(t, buf, 96);
}

/* ---- autograd for views -----------------------------------------------
 * view/squeeze/unsqueeze: the gradient reshaped back; permute: permuted
 * back; slice/select: written into zeros of the input's shape; expand:
 * nothing to do here (the core sums broadcast dims). */

static int reshape_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    gin[0] = nn_reshape((nn_tensor *)g, n->in[0].ndim, n->in[0].shape);
    return gin[0] ? 0 : -1;
}

typedef struct { int dims[NN_MAX_DIMS]; } permute_ctx;
typedef struct { int dim, select; int64_t start, stop, step; } slice_ctx; /* select: start */

static int permute_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    int inv[NN_MAX_DIMS];
    for (int i = 0; i < n->in[0].ndim; i++) inv[NN_CTX(n, permute_ctx)->dims[i]] = i;
    gin[0] = nn_permute((nn_tensor *)g, inv);
    return gin[0] ? 0 : -1;
}

static int slice_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const slice_ctx *c = NN_CTX(n, slice_ctx);
    nn_tensor *z = nn_zeros(NN_F32, n->in[0].ndim, n->in[0].shape);
    nn_tensor *part = !z ? NULL
                      : c->select ? nn_select(z, c->dim, c->start)
                                  : nn_slice(z, c->dim, c->start, c->stop, c->step);
    int rc = part ? nn_copy_(part, g) : -1;
    nn_release(part);
    if (rc < 0) {
        nn_release(z);
        return -1;
    }
    gin[0] = z;
    return 0;
}

static int identity_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    (void)n;
    gin[0] = nn_retain((nn_tensor *)g);
    return 0;
}

NN_OP_TWICE_NO_CTX(view_op, "view", reshape_backward);
NN_OP_TWICE_NO_CTX(reshape_op, "reshape", reshape_backward);
NN_OP_TWICE_NO_CTX(squeeze_op, "squeeze", reshape_backward);
NN_OP_TWICE_NO_CTX(unsqueeze_op, "unsqueeze", reshape_backward);
NN_OP_TWICE(permute_op, "permute", permute_backward, permute_ctx);
/* slice's backward as a recorded op, for create_graph: g placed into
 * zeros, whose own backward slices the gradient again */
static int unslice_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const slice_ctx *c = NN_CTX(n, slice_ctx);
    gin[0] = c->select ? nn_select((nn_tensor *)g, c->dim, c->start)
                       : nn_slice((nn_tensor *)g, c->dim, c->start, c->stop, c->step);
    return gin[0] ? 0 : -1;
}
NN_OP_TWICE(unslice_op, "slice_backward", unslice_backward, slice_ctx);

static int slice_backward_graph(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    int prev = nn_grad_off();
    int rc = slice_backward(n, g, gin);
    nn_grad_restore(prev);
    if (rc < 0) return rc;
    nn_node *node;
    gin[0] = nn_finish_op(gin[0], &unslice_op, 1, &g, &node);
    if (node) *NN_CTX(node, slice_ctx) = *NN_CTX(n, slice_ctx);
    return gin[0] ? 0 : -1;
}

NN_OP_GRAPH(slice_op, "slice", slice_backward, slice_backward_graph, slice_ctx);
NN_OP_GRAPH(select_op, "select", slice_backward, slice_backward_graph, slice_ctx);
NN_OP_TWICE_NO_CTX(expand_op, "expand", identity_backward);
NN_OP_TWICE_NO_CTX(clone_op, "clone", identity_backward);

static nn_tensor *record_view(nn_tensor *out, const nn_tensor *in, const nn_op *op,
                              nn_node **node) {
    return nn_finish_op(out, op, 1, &in, node);
}

/* Strides for viewing t as `shape` without a copy, or -1 when impossible:
 * walk both shapes from the right in chunks of old dims that are contiguous
 * with each other; every chunk must be covered exactly by new dims. */
static int view_strides(const nn_tensor *t, int ndim, const int64_t *shape,
                        int64_t *stride) {
    if (nn_numel(t) == 0 || t->ndim == 0) {
        nn_contiguous_strides(ndim, shape, stride);
        return 0;
    }
    int vd = ndim - 1;
    int64_t base = t->stride[t->ndim - 1], tnumel = 1, vnumel = 1;
    for (int td = t->ndim - 1; td >= 0; td--) {
        tnumel *= t->shape[td];
        if (td == 0 || (t->shape[td - 1] != 1 &&
                        t->stride[td - 1] != tnumel * base)) {
            while (vd >= 0 && (vnumel < tnumel || shape[vd] == 1)) {
                stride[vd] = vnumel * base;
                vnumel *= shape[vd];
                vd--;
            }
            if (vnumel != tnumel) return -1;
            if (td > 0) {
                base = t->stride[td - 1];
                tnumel = vnumel = 1;
            }
        }
    }
    return vd == -1 ? 0 : -1;
}

static int resolve_shape(const nn_tensor *t, int ndim, const int64_t *in,
                         int64_t *out) {
    int infer = -1;
    int64_t known = 1, numel = nn_numel(t);
    if (ndim > NN_MAX_DIMS)
        return nn_failed(2, "at most %d dims", NN_MAX_DIMS);
    for (int i = 0; i < ndim; i++) {
        out[i] = in[i];
        if (in[i] == -1) {
            if (infer >= 0) return nn_failed(2, "only one size may be -1");
            infer = i;
        } else if (in[i] < 0) {
            return nn_failed(2, "invalid size %lld", (long long)in[i]);
        }
    }
    int64_t sizes[NN_MAX_DIMS]; /* the known sizes, 1 for the inferred one */
    for (int i = 0; i < ndim; i++) sizes[i] = i == infer ? 1 : in[i];
    if (nn_shape_check(2, ndim, sizes, nn_dtype_size(t->dtype)) < 0) return -1;
    known = nn_shape_numel(ndim, sizes);
    if (infer >= 0) {
        if (known == 0 || numel % known)
            goto mismatch;
        out[infer] = numel / known;
    } else if (known != numel) {
        goto mismatch;
    }
    return 0;
mismatch: {
        char a[96];
        return nn_failed(2, "shape of %lld elements cannot hold a %s tensor",
                         (long long)known, shp(t, a));
    }
}

nn_tensor *nn_view(nn_tensor *t, int ndim, const int64_t *shape) {
    int64_t s[NN_MAX_DIMS], st[NN_MAX_DIMS];
    if (resolve_shape(t, ndim, shape, s) < 0) return NULL;
    if (view_strides(t, ndim, s, st) < 0)
        return nn_fail(1, "view of a non-contiguous tensor: use reshape or "
                          "contiguous first");
    return record_view(nn_make_view(t, ndim, s, st, t->offset), t, &view_op, NULL);
}

nn_tensor *nn_reshape(nn_tensor *t, int ndim, const int64_t *shape) {
    int64_t s[NN_MAX_DIMS], st[NN_MAX_DIMS];
    if (resolve_shape(t, ndim, shape, s) < 0) return NULL;
    if (view_strides(t, ndim, s, st) == 0)
        return record_view(nn_make_view(t, ndim, s, st, t->offset), t, &reshape_op, NULL);
    nn_tensor *c = nn_clone(t);
    if (!c) return NULL;
    nn_tensor *v = nn_view(c, ndim, s);
    nn_release(c);
    return v;
}

nn_tensor *nn_permute(nn_tensor *t, const int *dims) {
    int64_t shape[NN_MAX_DIMS], stride[NN_MAX_DIMS];
    int seen[NN_MAX_DIMS] = {0};
    for (int i = 0; i < t->ndim; i++) {
        int d = nn_wrap_dim(dims[i], t->ndim, 2);
        if (d < 0) return NULL;
        if (seen[d]++) return nn_fail(2, "repeated dim %d in permutation", d);
        shape[i] = t->shape[d];
        stride[i] = t->stride[d];
    }
    nn_node *node;
    nn_tensor *out = record_view(nn_make_view(t, t->ndim, shape, stride, t->offset),
                                 t, &permute_op, &node);
    if (node)
        for (int i = 0; i < t->ndim; i++)
            NN_CTX(node, permute_ctx)->dims[i] = nn_wrap_dim(dims[i], t->ndim, 2);
    return out;
}

nn_tensor *nn_transpose(nn_tensor *t, int d0, int d1) {
    if (t->ndim < 2 && (d0 == d1 || t->ndim == 0))
        return nn_make_view(t, t->ndim, t->shape, t->stride, t->offset);
    d0 = nn_wrap_dim(d0, t->ndim, 2);
    d1 = nn_wrap_dim(d1, t->ndim, 3);
    if (d0 < 0 || d1 < 0) return NULL;
    int dims[NN_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) dims[i] = i;
    dims[d0] = d1;
    dims[d1] = d0;
    return nn_permute(t, dims);
}

nn_tensor *nn_slice(nn_tensor *t, int dim, int64_t start, int64_t stop,
                    int64_t step) {
    if ((dim = nn_wrap_dim(dim, t->ndim, 2)) < 0) return NULL;
    if (t->ndim == 0) return nn_fail(1, "cannot slice a 0-dim tensor");
    int64_t size = t->shape[dim];
    if (step <= 0) return nn_fail(5, "slice step must be positive");
    if (start < 0 || start > size || stop < start || stop > size)
        return nn_fail(3, "slice [%lld, %lld) out of range for size %lld",
                       (long long)start, (long long)stop, (long long)size);
    int64_t shape[NN_MAX_DIMS], stride[NN_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(stride, t->stride, sizeof stride);
    shape[dim] = stop > start ? (stop - start - 1) / step + 1 : 0; /* no overflow */
    if (shape[dim] > 1) stride[dim] *= step; /* step < size then */
    nn_node *node;
    nn_tensor *out = record_view(nn_make_view(t, t->ndim, shape, stride,
                                              t->offset + start * t->stride[dim]),
                                 t, &slice_op, &node);
    if (node) *NN_CTX(node, slice_ctx) = (slice_ctx){dim, 0, start, stop, step};
    return out;
}

nn_tensor *nn_narrow(nn_tensor *t, int dim, int64_t start, int64_t len) {
    if (len < 0) return nn_fail(4, "negative length %lld", (long long)len);
    if (start > INT64_MAX - len)
        return nn_fail(4, "narrow from %lld for %lld overflows", (long long)start,
                       (long long)len);
    return nn_slice(t, dim, start, start + len, 1);
}

nn_tensor *nn_select(nn_tensor *t, int dim, int64_t index) {
    if (t->ndim == 0) return nn_fail(1, "cannot select from a 0-dim tensor");
    if ((dim = nn_wrap_dim(dim, t->ndim, 2)) < 0) return NULL;
    if (index < 0 || index >= t->shape[dim])
        return nn_fail(3, "index %lld out of range for dim of size %lld",
                       (long long)index, (long long)t->shape[dim]);
    int64_t shape[NN_MAX_DIMS], stride[NN_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == dim) continue;
        shape[k] = t->shape[i];
        stride[k++] = t->stride[i];
    }
    nn_node *node;
    nn_tensor *out = record_view(nn_make_view(t, k, shape, stride,
                                              t->offset + index * t->stride[dim]),
                                 t, &select_op, &node);
    if (node) *NN_CTX(node, slice_ctx) = (slice_ctx){dim, 1, index, 0, 0};
    return out;
}

nn_tensor *nn_expand(nn_tensor *t, int ndim, const int64_t *shape) {
    if (ndim < t->ndim || ndim > NN_MAX_DIMS)
        return nn_fail(2, "expand to %d dims from %d", ndim, t->ndim);
    int64_t sh[NN_MAX_DIMS], st[NN_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        int it = t->ndim - ndim + i;
        int64_t have = it >= 0 ? t->shape[it] : 1;
        sh[i] = shape[i] == -1 ? have : shape[i];
        if (it >= 0 && have == sh[i]) {
            st[i] = t->stride[it];
        } else if (have == 1 && sh[i] >= 0) {
            st[i] = 0;
        } else {
            char a[96];
            return nn_fail(2, "cannot expand size %lld to %lld in dim %d "
                              "(tensor %s)", (long long)have,
                           (long long)sh[i], i + 1, shp(t, a));
        }
    }
    return record_view(nn_make_view(t, ndim, sh, st, t->offset), t, &expand_op, NULL);
}

static nn_tensor *squeeze(nn_tensor *t, int dim, int all) {
    int64_t sh[NN_MAX_DIMS], st[NN_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 1 && (all || i == dim)) continue;
        sh[k] = t->shape[i];
        st[k++] = t->stride[i];
    }
    return record_view(nn_make_view(t, k, sh, st, t->offset), t, &squeeze_op, NULL);
}

nn_tensor *nn_squeeze(nn_tensor *t, int dim) {
    if ((dim = nn_wrap_dim(dim, t->ndim, 2)) < 0) return NULL;
    return squeeze(t, dim, 0);
}

nn_tensor *nn_squeeze_all(nn_tensor *t) { return squeeze(t, -1, 1); }

nn_tensor *nn_unsqueeze(nn_tensor *t, int dim) {
    if (t->ndim >= NN_MAX_DIMS) return nn_fail(1, "too many dims");
    if (dim < 0) dim += t->ndim + 1;
    if (dim < 0 || dim > t->ndim)
        return nn_fail(2, "dimension out of range for unsqueeze");
    int64_t sh[NN_MAX_DIMS], st[NN_MAX_DIMS];
    for (int i = 0, k = 0; i <= t->ndim; i++) {
        if (i == dim) {
            sh[i] = 1;
            st[i] = k < t->ndim ? t->stride[k] * t->shape[k] : 1;
        } else {
            sh[i] = t->shape[k];
            st[i] = t->stride[k++];
        }
    }
    return record_view(nn_make_view(t, t->ndim + 1, sh, st, t->offset), t, &unsqueeze_op, NULL);
}

/* ---- copies ------------------------------------------------------------ */

typedef struct { nn_tensor *dst; const nn_tensor *src; } copy_ctx;

static void copy_row(void *vctx, int64_t n, const int64_t *off,
                     const int64_t *inner) {
    copy_ctx *c = vctx;
    char *dbase = nn_data(c->dst), *sbase = nn_data(c->src);
    int64_t sd = inner[0], ss = inner[1];
    if (c->dst->dtype == NN_F32 && c->src->dtype == NN_F32) {
        float *d = (float *)dbase + off[0];
        const float *s = (const float *)sbase + off[1];
        if (sd == 1 && ss == 1) memcpy(d, s, n * sizeof *d);
        else for (int64_t i = 0; i < n; i++) d[i * sd] = s[i * ss];
    } else if (c->dst->dtype == NN_I64 && c->src->dtype == NN_I64) {
        int64_t *d = (int64_t *)dbase + off[0];
        const int64_t *s = (const int64_t *)sbase + off[1];
        for (int64_t i = 0; i < n; i++) d[i * sd] = s[i * ss];
    } else if (c->dst->dtype == c->src->dtype) { /* 16-bit: the bits */
        uint16_t *d = (uint16_t *)dbase + off[0];
        const uint16_t *s = (const uint16_t *)sbase + off[1];
        for (int64_t i = 0; i < n; i++) d[i * sd] = s[i * ss];
    } else if (c->dst->dtype == NN_F32 && nn_is_half(c->src->dtype)) {
        float *d = (float *)dbase + off[0];
        const uint16_t *s = (const uint16_t *)sbase + off[1];
        if (c->src->dtype == NN_BF16)
            for (int64_t i = 0; i < n; i++) d[i * sd] = nn_bf16_to_f32(s[i * ss]);
        else
            for (int64_t i = 0; i < n; i++) d[i * sd] = nn_f16_to_f32(s[i * ss]);
    } else if (nn_is_half(c->dst->dtype) && c->src->dtype == NN_F32) {
        uint16_t *d = (uint16_t *)dbase + off[0];
        const float *s = (const float *)sbase + off[1];
        if (c->dst->dtype == NN_BF16)
            for (int64_t i = 0; i < n; i++) d[i * sd] = nn_f32_to_bf16(s[i * ss]);
        else
            for (int64_t i = 0; i < n; i++) d[i * sd] = nn_f32_to_f16(s[i * ss]);
    } else if (c->dst->dtype == NN_I64) { /* through double: exact for f32 and 16-bit */
        int64_t *d = (int64_t *)dbase + off[0];
        for (int64_t i = 0; i < n; i++)
            d[i * sd] = nn_double_to_i64(nn_load(c->src->dtype, sbase, off[1] + i * ss));
    } else { /* from i64 or another 16-bit format: rounded once, via f32 for halves */
        for (int64_t i = 0; i < n; i++) {
            double v = nn_load(c->src->dtype, sbase, off[1] + i * ss);
            if (nn_is_half(c->dst->dtype) && c->src->dtype == NN_I64) v = (float)v;
            nn_store(c->dst->dtype, dbase, off[0] + i * sd, v);
        }
    }
}

/* dst (rows, cols) with unit column stride from src read with unit row
 * stride: copy in 32x32 tiles so neither side strides through memory */
static void copy_transposed(float *d, int64_t ds, const float *s, int64_t ss,
                            int64_t rows, int64_t cols) {
    enum { T = 32 };
    int64_t tiles_r = (rows + T - 1) / T, tiles_c = (cols + T - 1) / T;
#pragma omp parallel for if (rows * cols > NN_PAR_GRAIN)
    for (int64_t t = 0; t < tiles_r * tiles_c; t++) {
        int64_t r0 = t / tiles_c * T, c0 = t % tiles_c * T;
        int64_t r1 = r0 + T < rows ? r0 + T : rows, c1 = c0 + T < cols ? c0 + T : cols;
        for (int64_t c = c0; c < c1; c++)
            for (int64_t r = r0; r < r1; r++) d[r * ds + c] = s[r + c * ss];
    }
}

int nn_copy_(nn_tensor *dst, const nn_tensor *src) {
    if (nn_check_writable(dst, 1) < 0) return -1;
    if (nn_is_grad_enabled() && dst->requires_grad)
        return nn_failed(1, "in-place copy into a tensor that requires grad "
                            "(use nn.no_grad to initialise parameters)");
    for (int i = 0; i < src->ndim; i++) {
        int id = dst->ndim - src->ndim + i;
        if (id < 0 ? src->shape[i] != 1
                   : (src->shape[i] != 1 && src->shape[i] != dst->shape[id])) {
            char a[96], b[96];
            return nn_failed(2, "cannot copy a %s tensor into a %s tensor",
                             shp(src, a), shp(dst, b));
        }
    }
    nn_iter it;
    nn_iter_pair(&it, dst, src);
    if (it.ndim == 2 && dst->dtype == NN_F32 && src->dtype == NN_F32 &&
        it.stride[0][1] == 1 && it.stride[1][0] == 1 && it.stride[1][1] != 1 &&
        it.shape[0] >= 8 && it.shape[1] >= 8) {
        copy_transposed(nn_f32(dst), it.stride[0][0], nn_f32(src), it.stride[1][1],
                        it.shape[0], it.shape[1]);
    } else {
        copy_ctx c = {dst, src};
        nn_iter_run(&it, copy_row, &c);
    }
    nn_bump_version(dst);
    return 0;
}

nn_tensor *nn_clone(const nn_tensor *t) {
    return nn_to_dtype(t, t->dtype);
}

nn_tensor *nn_contiguous(nn_tensor *t) {
    if (nn_is_contiguous(t)) return nn_retain(t);
    return nn_clone(t);
}

nn_tensor *nn_widen(const nn_tensor *t) {
    return nn_is_half(t->dtype) ? nn_to_dtype(t, NN_F32) : nn_retain((nn_tensor *)t);
}

nn_tensor *nn_narrow_to(nn_tensor *y, nn_dtype d) {
    if (!y || !nn_is_half(d) || y->dtype != NN_F32) return y;
    nn_tensor *r = nn_to_dtype(y, d);
    nn_release(y);
    return r;
}

int nn_half_refused(int arg, const char *op) {
    return nn_failed(arg, "%s has no bf16/f16 form: convert with :to('f32') first", op);
}

bool nn_any_half(int n, const nn_tensor *const *ts) {
    for (int i = 0; i < n; i++)
        if (ts[i] && nn_is_half(ts[i]->dtype)) return true;
    return false;
}

int nn_widen_all(int n, const nn_tensor *const *in, nn_tensor **out) {
    for (int i = 0; i < n; i++) {
        out[i] = in[i] ? nn_widen(in[i]) : NULL;
        if (in[i] && !out[i]) {
            nn_release_all(i, out);
            return -1;
        }
    }
    return 0;
}

void nn_release_all(int n, nn_tensor **ts) {
    for (int i = 0; i < n; i++) nn_release(ts[i]);
}

nn_dtype nn_half_result(int n, const nn_tensor *const *ts) {
    nn_dtype d = NN_F32;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        if (nn_is_half(ts[i]->dtype)) {
            if (d != NN_F32 && d != ts[i]->dtype) return NN_F32; /* bf16 with f16 */
            d = ts[i]->dtype;
        } else if (ts[i]->ndim > 0) {
            return NN_F32;
        }
    }
    return d;
}

nn_tensor *nn_to_dtype(const nn_tensor *t, nn_dtype dtype) {
    nn_tensor *c = nn_empty(dtype, t->ndim, t->shape);
    if (c && nn_copy_(c, t) < 0) {
        nn_release(c);
        return NULL;
    }
    if (!c || dtype != NN_F32) return c;
    return record_view(c, t, &clone_op, NULL);
}
