/* remap.c -- one gather behind pad, flip, roll, repeat, repeat_interleave,
 * unfold and nearest-neighbour interpolation.
 *
 * x is seen as (outer, plane), the plane being its last k dims; the result
 * is (outer, out plane) with out plane element j taken from plane element
 * map[j] (or `fill` where map[j] < 0). The map is built once per call for
 * one plane, so the copy is a flat loop of any dtype, and the backward is a
 * scatter-add of the gradient through the same map (several outputs may
 * read one input: replicate padding, repeat). */
#include "autograd.h"
#include "nn_ops.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t outer, in_plane, out_plane;
} remap_ctx;

static int remap_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    const remap_ctx *c = NN_CTX(n, remap_ctx);
    nn_tensor *map = nn_saved(n, 0), *g = map ? nn_contiguous((nn_tensor *)gout) : NULL;
    nn_tensor *dx = g ? nn_zeros(NN_F32, n->in[0].ndim, n->in[0].shape) : NULL;
    if (!dx) {
        nn_release(g);
        return -1;
    }
    const int64_t *m = nn_i64(map);
    const float *gv = nn_f32(g);
    float *d = nn_f32(dx);
#pragma omp parallel for if (c->outer > 1 && c->outer * c->out_plane > NN_PAR_GRAIN)
    for (int64_t p = 0; p < c->outer; p++) /* planes apart: no races */
        for (int64_t j = 0; j < c->out_plane; j++)
            if (m[j] >= 0) d[p * c->in_plane + m[j]] += gv[p * c->out_plane + j];
    nn_release(g);
    gin[0] = dx;
    return 0;
}

nn_tensor *nn_remap(const nn_tensor *x, int k, int nt, const int64_t *out_tail, nn_tensor *map,
                    double fill, const char *name) {
    if (k < 0 || k > x->ndim || nt < 0 || x->ndim - k + nt > NN_MAX_DIMS)
        return nn_fail(0, "internal: %s remaps %d of %d dims into %d", name, k, x->ndim, nt);
    int64_t shape[NN_MAX_DIMS], outer = 1, in_plane = 1, out_plane = 1;
    int lead = x->ndim - k;
    for (int d = 0; d < lead; d++) outer *= (shape[d] = x->shape[d]);
    for (int d = lead; d < x->ndim; d++) in_plane *= x->shape[d];
    for (int d = 0; d < nt; d++) out_plane *= (shape[lead + d] = out_tail[d]);
    if (nn_numel(map) != out_plane || map->dtype != NN_I64)
        return nn_fail(0, "internal: %s map of %lld for a plane of %lld", name,
                       (long long)nn_numel(map), (long long)out_plane);
    int prev = nn_grad_off();
    nn_tensor *xc = nn_contiguous((nn_tensor *)x), *mc = nn_contiguous(map);
    nn_tensor *y = xc && mc ? nn_empty(x->dtype, lead + nt, shape) : NULL;
    nn_tensor *f = y ? nn_scalar(x->dtype, fill) : NULL;
    if (f) {
        size_t es = nn_dtype_size(x->dtype);
        const char *src = nn_data(xc), *fv = nn_data(f);
        char *dst = nn_data(y);
        const int64_t *m = nn_i64(mc);
#pragma omp parallel for if (outer * out_plane > NN_PAR_GRAIN)
        for (int64_t p = 0; p < outer; p++)
            for (int64_t j = 0; j < out_plane; j++)
                memcpy(dst + (size_t)(p * out_plane + j) * es,
                       m[j] < 0 ? fv : src + (size_t)(p * in_plane + m[j]) * es, es);
    } else {
        nn_release(y);
        y = NULL;
    }
    nn_release(f);
    nn_release(xc);
    nn_grad_restore(prev);
    static const nn_op op = {"remap", remap_backward, sizeof(remap_ctx), NULL, NULL};
    nn_node *node;
    y = nn_finish_saving(y, &op, 1, &x, mc, &node);
    if (node) {
        node->name = name;
        *NN_CTX(node, remap_ctx) = (remap_ctx){outer, in_plane, out_plane};
    }
    nn_release(mc);
    return y;
}

nn_tensor *nn_remap_separable(const nn_tensor *x, int k, const int64_t *out_tail,
                              int64_t *const *src, double fill, const char *name) {
    int lead = x->ndim - k;
    int64_t out_plane = 1, in_stride[NN_MAX_DIMS];
    for (int d = 0; d < k; d++) out_plane *= out_tail[d];
    int64_t s = 1;
    for (int d = k - 1; d >= 0; d--) {
        in_stride[d] = s;
        s *= x->shape[lead + d];
    }
    nn_tensor *map = nn_empty(NN_I64, 1, &out_plane);
    if (!map) return NULL;
    int64_t *m = nn_i64(map), coord[NN_MAX_DIMS] = {0};
    for (int64_t j = 0; j < out_plane; j++) {
        int64_t at = 0;
        for (int d = 0; d < k && at >= 0; d++)
            at = src[d][coord[d]] < 0 ? -1 : at + src[d][coord[d]] * in_stride[d];
        m[j] = at;
        for (int d = k - 1; d >= 0 && ++coord[d] == out_tail[d]; d--) coord[d] = 0;
    }
    nn_tensor *y = nn_remap(x, k, k, out_tail, map, fill, name);
    nn_release(map);
    return y;
}
