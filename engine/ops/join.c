/* join.c -- cat, stack, split and unbind. */
#include "autograd.h"
#include "nn_ops.h"

#include <stdlib.h>
#include <string.h>

static nn_tensor *cat(nn_tensor *const *ts, int n, int dim) {
    char s1[96], s2[96];
    if (n < 1) return nn_fail(1, "cat needs at least one tensor");
    const nn_tensor *t0 = ts[0];
    if (t0->ndim == 0) return nn_fail(1, "cat of 0-dim tensors: use stack");
    if ((dim = nn_wrap_dim(dim, t0->ndim, 2)) < 0) return NULL;
    int64_t shape[NN_MAX_DIMS];
    memcpy(shape, t0->shape, sizeof shape);
    shape[dim] = 0;
    for (int i = 0; i < n; i++) {
        const nn_tensor *t = ts[i];
        bool ok = t->ndim == t0->ndim && t->dtype == t0->dtype;
        for (int d = 0; ok && d < t0->ndim; d++)
            if (d != dim && t->shape[d] != t0->shape[d]) ok = false;
        if (!ok)
            return nn_fail(1, "cat: tensor %d (%s %s) does not match tensor 1 "
                              "(%s %s) outside dim %d", i + 1,
                           nn_dtype_name(t->dtype), nn_shape_str(t, s1, 96),
                           nn_dtype_name(t0->dtype), nn_shape_str(t0, s2, 96),
                           dim + 1);
        shape[dim] += t->shape[dim];
    }
    nn_tensor *out = nn_empty(t0->dtype, t0->ndim, shape);
    int64_t at = 0;
    for (int i = 0; out && i < n; i++) {
        nn_tensor *part = nn_narrow(out, dim, at, ts[i]->shape[dim]);
        int rc = part ? nn_copy_(part, ts[i]) : -1;
        nn_release(part);
        if (rc < 0) {
            nn_release(out);
            return NULL;
        }
        at += ts[i]->shape[dim];
    }
    return out;
}

static nn_tensor *stack(nn_tensor *const *ts, int n, int dim) {
    char s1[96], s2[96];
    if (n < 1) return nn_fail(1, "stack needs at least one tensor");
    if (dim < 0) dim += ts[0]->ndim + 1;
    if (dim < 0 || dim > ts[0]->ndim) return nn_fail(2, "stack: dim out of range");
    for (int i = 1; i < n; i++)
        if (!nn_same_shape(ts[i], ts[0]))
            return nn_fail(1, "stack: tensor %d is %s, tensor 1 is %s", i + 1,
                           nn_shape_str(ts[i], s1, 96), nn_shape_str(ts[0], s2, 96));
    nn_tensor *views[n];
    int made = 0;
    nn_tensor *out = NULL;
    for (; made < n; made++)
        if (!(views[made] = nn_unsqueeze(ts[made], dim))) break;
    if (made == n) out = cat(views, n, dim);
    for (int i = 0; i < made; i++) nn_release(views[i]);
    return out;
}

int nn_split(nn_tensor *t, int dim, const int64_t *sizes, int n,
             nn_tensor **out) {
    if ((dim = nn_wrap_dim(dim, t->ndim, 2)) < 0) return -1;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 0) return nn_failed(3, "split sizes must be >= 0");
        total += sizes[i];
    }
    if (total != t->shape[dim])
        return nn_failed(3, "split sizes sum to %lld, dim %d has size %lld",
                         (long long)total, dim + 1, (long long)t->shape[dim]);
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (!(out[i] = nn_narrow(t, dim, at, sizes[i]))) {
            while (i--) nn_release(out[i]);
            return -1;
        }
        at += sizes[i];
    }
    return 0;
}

/* ---- autograd: input i gets its own slice of g ------------------------------ */

typedef struct { int dim, stacked; } join_ctx;

static int join_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const join_ctx *c = NN_CTX(n, join_ctx);
    int dim = c->dim;
    int64_t at = 0;
    for (int i = 0; i < n->nin; i++) {
        int64_t size = c->stacked ? 1 : n->in[i].shape[dim];
        if (nn_input_needs(n, i)) {
            gin[i] = c->stacked ? nn_select((nn_tensor *)g, dim, at)
                                : nn_narrow((nn_tensor *)g, dim, at, size);
            if (!gin[i]) return -1;
        }
        at += size;
    }
    return 0;
}

NN_OP_TWICE(cat_op, "cat", join_backward, join_ctx);
NN_OP_TWICE(stack_op, "stack", join_backward, join_ctx);

static nn_tensor *joined(nn_tensor *y, nn_tensor *const *ts, int n, int dim,
                         int stacked) {
    nn_node *node;
    y = nn_finish_op(y, stacked ? &stack_op : &cat_op, n, (const nn_tensor *const *)ts, &node);
    if (node)
        *NN_CTX(node, join_ctx) = (join_ctx){
            stacked ? (dim < 0 ? dim + ts[0]->ndim + 1 : dim) : nn_wrap_dim(dim, ts[0]->ndim, 2),
            stacked};
    return y;
}

nn_tensor *nn_cat(nn_tensor *const *ts, int n, int dim) {
    int prev = nn_grad_off();
    nn_tensor *y = cat(ts, n, dim);
    nn_grad_restore(prev);
    return joined(y, ts, n, dim, 0);
}

nn_tensor *nn_stack(nn_tensor *const *ts, int n, int dim) {
    int prev = nn_grad_off();
    nn_tensor *y = stack(ts, n, dim);
    nn_grad_restore(prev);
    return joined(y, ts, n, dim, 1);
}

/* ---- unbind: every slice along dim, one node ------------------------------
 * Its backward stacks the slices' gradients (zeros for those without) in
 * one pass, where a select per slice would each write into zeros of the
 * whole input and the core would then add them up. */
typedef struct { int dim; } unbind_ctx;

static int unbind_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    (void)g;
    int dim = NN_CTX(n, unbind_ctx)->dim, k = n->nout, rc = 0;
    nn_tensor **parts = calloc((size_t)k, sizeof *parts);
    nn_tensor *zero = NULL;
    if (!parts) return nn_failed(0, "out of memory in unbind's backward");
    for (int i = 0; i < k && rc == 0; i++) {
        if (n->gouts[i]) {
            parts[i] = n->gouts[i];
            continue;
        }
        if (!zero) {
            int64_t shape[NN_MAX_DIMS];
            int nd = 0;
            for (int d = 0; d < n->in[0].ndim; d++)
                if (d != dim) shape[nd++] = n->in[0].shape[d];
            if (!(zero = nn_zeros(NN_F32, nd, shape))) rc = -1;
        }
        parts[i] = zero;
    }
    if (rc == 0 && !(gin[0] = nn_stack(parts, k, dim))) rc = -1;
    nn_release(zero);
    free(parts);
    return rc;
}

NN_OP_TWICE(unbind_op, "unbind", unbind_backward, unbind_ctx);

int nn_unbind(nn_tensor *t, int dim, nn_tensor **out) {
    if (t->ndim == 0) return nn_failed(1, "cannot unbind a 0-dim tensor");
    if ((dim = nn_wrap_dim(dim, t->ndim, 2)) < 0) return -1;
    int64_t k = t->shape[dim];
    int prev = nn_grad_off(), rc = 0;
    for (int64_t i = 0; i < k; i++)
        if (!(out[i] = nn_select(t, dim, i))) {
            while (i--) nn_release(out[i]);
            rc = -1;
            break;
        }
    nn_grad_restore(prev);
    if (rc == 0 && k > 0 && nn_needs_grad(1, (const nn_tensor *const *)&t)) {
        nn_node *node = nn_record(&unbind_op, 1, (const nn_tensor *const *)&t, (int)k, out);
        if (!node) {
            for (int64_t i = 0; i < k; i++) nn_release(out[i]);
            return -1;
        }
        NN_CTX(node, unbind_ctx)->dim = dim;
    }
    return rc;
}
