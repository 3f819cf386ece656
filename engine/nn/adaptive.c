/* adaptive.c -- adaptive average and max pooling over the last two dims:
 * output cell (i, j) of an (OH, OW) grid covers input rows
 * [floor(i H / OH), ceil((i + 1) H / OH)) and the columns likewise, so any
 * input size maps onto the requested grid (windows may overlap by one when
 * the sizes do not divide), as PyTorch defines them. Max pooling keeps the
 * argmax of each cell (an index into its H x W plane) for backward. */
#include "autograd.h"
#include "nn_layers.h"

#include <string.h>

typedef struct {
    int64_t planes, h, w, oh, ow;
    int is_max;
} adaptive_ctx;

static inline int64_t win_lo(int64_t i, int64_t n, int64_t o) { return i * n / o; }
static inline int64_t win_hi(int64_t i, int64_t n, int64_t o) { return ((i + 1) * n + o - 1) / o; }

static void adaptive_forward(const adaptive_ctx *k, const float *x, float *y, int64_t *arg) {
#pragma omp parallel for if (k->planes * k->h * k->w > NN_PAR_GRAIN)
    for (int64_t p = 0; p < k->planes; p++) {
        const float *plane = x + p * k->h * k->w;
        for (int64_t i = 0; i < k->oh; i++)
            for (int64_t j = 0; j < k->ow; j++) {
                int64_t y0 = win_lo(i, k->h, k->oh), y1 = win_hi(i, k->h, k->oh);
                int64_t x0 = win_lo(j, k->w, k->ow), x1 = win_hi(j, k->w, k->ow);
                int64_t o = (p * k->oh + i) * k->ow + j, best = y0 * k->w + x0;
                double sum = 0;
                for (int64_t a = y0; a < y1; a++)
                    for (int64_t b = x0; b < x1; b++) {
                        float v = plane[a * k->w + b];
                        sum += v;
                        /* NaN wins, as in PyTorch */
                        if (v > plane[best] || (v != v && plane[best] == plane[best])) best = a * k->w + b;
                    }
                if (k->is_max) {
                    y[o] = plane[best];
                    arg[o] = best;
                } else {
                    y[o] = (float)(sum / (double)((y1 - y0) * (x1 - x0)));
                }
            }
    }
}

static int adaptive_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    const adaptive_ctx *k = NN_CTX(n, adaptive_ctx);
    nn_tensor *arg = k->is_max ? nn_saved(n, 0) : NULL;
    if (k->is_max && !arg) return -1;
    nn_tensor *gc = nn_contiguous((nn_tensor *)gout);
    if (!gc) return -1;
    gin[0] = nn_zeros(NN_F32, n->in[0].ndim, n->in[0].shape);
    if (!gin[0]) {
        nn_release(gc);
        return -1;
    }
    const float *g = nn_f32(gc);
    float *dx = nn_f32(gin[0]);
#pragma omp parallel for if (k->planes * k->h * k->w > NN_PAR_GRAIN)
    for (int64_t p = 0; p < k->planes; p++) { /* each plane's cells write only that plane */
        float *plane = dx + p * k->h * k->w;
        for (int64_t i = 0; i < k->oh; i++)
            for (int64_t j = 0; j < k->ow; j++) {
                int64_t o = (p * k->oh + i) * k->ow + j;
                if (k->is_max) {
                    plane[nn_i64(arg)[o]] += g[o];
                    continue;
                }
                int64_t y0 = win_lo(i, k->h, k->oh), y1 = win_hi(i, k->h, k->oh);
                int64_t x0 = win_lo(j, k->w, k->ow), x1 = win_hi(j, k->w, k->ow);
                float share = g[o] / (float)((y1 - y0) * (x1 - x0));
                for (int64_t a = y0; a < y1; a++)
                    for (int64_t b = x0; b < x1; b++) plane[a * k->w + b] += share;
            }
    }
    nn_release(gc);
    return 0;
}

NN_OP(adaptive_avg_op, "adaptive_avg_pool2d", adaptive_backward, adaptive_ctx);
NN_OP(adaptive_max_op, "adaptive_max_pool2d", adaptive_backward, adaptive_ctx);

static nn_tensor *adaptive(const nn_tensor *x, const int64_t *out, int is_max, nn_tensor **indices,
                           int64_t base) {
    const char *fn = is_max ? "adaptive_max_pool2d" : "adaptive_avg_pool2d";
    char s1[96];
    if (x->dtype != NN_F32) return nn_fail(1, "%s expects an f32 input, got %s", fn, nn_dtype_name(x->dtype));
    if (x->ndim < 3)
        return nn_fail(1, "%s expects (N, C, H, W) or (C, H, W), got %s", fn, nn_shape_str(x, s1, sizeof s1));
    if (out[0] < 1 || out[1] < 1)
        return nn_fail(2, "%s: output size (%lld, %lld) must be positive", fn, (long long)out[0],
                       (long long)out[1]);
    adaptive_ctx k = {0, x->shape[x->ndim - 2], x->shape[x->ndim - 1], out[0], out[1], is_max};
    if (k.h == 0 || k.w == 0)
        return nn_fail(1, "%s: cannot pool an empty %s plane", fn, nn_shape_str(x, s1, sizeof s1));
    k.planes = nn_shape_numel(x->ndim - 2, x->shape);
    int64_t shape[NN_MAX_DIMS];
    memcpy(shape, x->shape, (size_t)x->ndim * sizeof *shape);
    shape[x->ndim - 2] = k.oh;
    shape[x->ndim - 1] = k.ow;
    nn_tensor *xc = nn_contiguous((nn_tensor *)x);
    int prev = nn_grad_off();
    nn_tensor *y = xc ? nn_empty(NN_F32, x->ndim, shape) : NULL;
    nn_tensor *arg = y && is_max ? nn_empty(NN_I64, x->ndim, shape) : NULL;
    if (y && (!is_max || arg)) {
        adaptive_forward(&k, nn_f32(xc), nn_f32(y), arg ? nn_i64(arg) : NULL);
    } else {
        nn_release(y);
        y = NULL;
    }
    nn_grad_restore(prev);
    const nn_tensor *ins[1] = {x};
    nn_node *node;
    y = nn_finish_op(y, is_max ? &adaptive_max_op : &adaptive_avg_op, 1, ins, &node);
    if (node) {
        *NN_CTX(node, adaptive_ctx) = k;
        if (arg && nn_save(node, 0, arg) < 0) {
            nn_release(y);
            y = NULL;
        }
    }
    if (y && indices) { /* a copy: backward keeps reading the saved ones */
        nn_tensor *copy = nn_clone(arg);
        if (!copy) {
            nn_release(y);
            y = NULL;
        } else {
            int64_t total = nn_numel(copy);
            for (int64_t i = 0; i < total; i++) nn_i64(copy)[i] += base;
            *indices = copy;
        }
    }
    nn_release(arg);
    nn_release(xc);
    return y;
}

nn_tensor *nn_adaptive_avg_pool2d(const nn_tensor *x, const int64_t *out) {
    return adaptive(x, out, 0, NULL, 0);
}

nn_tensor *nn_adaptive_max_pool2d(const nn_tensor *x, const int64_t *out, nn_tensor **indices,
                                  int64_t base) {
    if (indices) *indices = NULL;
    return adaptive(x, out, 1, indices, base);
}
