/* pool.c -- 2-D max and average pooling with their backward.
 *
 * Shapes: x (N, C, H, W) -> y (N, C, OH, OW), each output the max (or the
 * mean) of a KH x KW window; padding counts as -inf for max and as zeros
 * included in the divisor for average (PyTorch's defaults). Max saves the
 * winning position of each output so backward routes g there. ceil_mode
 * rounds the output size up, keeping only windows that start inside the
 * input or its left padding; a window past the right padding divides by the
 * part of it inside the padded input, as PyTorch's average does. */
#include "autograd.h"
#include "nn_layers.h"
#include "vecmath.h"

#include <math.h>
#include <string.h>

typedef struct { int64_t planes, h, w, oh, ow, kh, kw, sh, sw, ph, pw; } pool_geom;

/* the divisor of window (oy, ox): its size within the padded input */
static inline float window_size(const pool_geom *g, int64_t oy, int64_t ox) {
    int64_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw;
    int64_t y1 = y0 + g->kh < g->h + g->ph ? y0 + g->kh : g->h + g->ph;
    int64_t x1 = x0 + g->kw < g->w + g->pw ? x0 + g->kw : g->w + g->pw;
    return (float)((y1 - y0) * (x1 - x0));
}

/* one output of a window clipped to the input; max records where */
static inline float window(const pool_geom *g, const float *plane, int64_t oy,
                           int64_t ox, int is_max, int64_t *where) {
    int64_t y0 = oy * g->sh - g->ph, x0 = ox * g->sw - g->pw;
    int64_t y1 = y0 + g->kh < g->h ? y0 + g->kh : g->h;
    int64_t x1 = x0 + g->kw < g->w ? x0 + g->kw : g->w;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    float best = -INFINITY, sum = 0.0f;
    int64_t at = y0 * g->w + x0, nan_at = -1;
    if (!is_max) {
        for (int64_t y = y0; y < y1; y++)
            for (int64_t x = x0; x < x1; x++) sum += plane[y * g->w + x];
        return sum / window_size(g, oy, ox);
    }
    for (int64_t y = y0; y < y1; y++) /* branch-free: selects, not jumps */
        for (int64_t x = x0; x < x1; x++) {
            float v = plane[y * g->w + x];
            int64_t i = y * g->w + x;
            int gt = v > best;
            best = gt ? v : best;
            at = gt ? i : at;
            nan_at = (v != v && nan_at < 0) ? i : nan_at;
        }
    *where = nan_at >= 0 ? nan_at : at; /* NaN wins, as in PyTorch */
    return nan_at >= 0 ? plane[nan_at] : best;
}

/* 2x2 windows at stride 2 inside the input (the usual max pool): one row
 * of outputs from input rows r0 and r1 = r0 + w; arg from the plane
 * offset at. The same choice as window(): the first NaN, else the first
 * largest in scan order; without window()'s clipping per output. */
NN_DISPATCH
static void max2x2_row(const float *r0, const float *r1, int64_t ow, int64_t w, int64_t at,
                       float *y, int64_t *arg) {
    for (int64_t ox = 0; ox < ow; ox++) {
        float a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
        float best = a;
        int64_t k = 0;
        k = b > best ? 1 : k, best = b > best ? b : best;
        k = c > best ? w : k, best = c > best ? c : best;
        k = d > best ? w + 1 : k, best = d > best ? d : best;
        int64_t nk = d != d ? w + 1 : -1; /* the first NaN: scan back to front */
        nk = c != c ? w : nk;
        nk = b != b ? 1 : nk;
        nk = a != a ? 0 : nk;
        y[ox] = nk >= 0 ? (nk == 0 ? a : nk == 1 ? b : nk == w ? c : d) : best;
        arg[ox] = at + 2 * ox + (nk >= 0 ? nk : k);
    }
}

static int is_2x2(const pool_geom *g) {
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 &&
           2 * g->oh <= g->h && 2 * g->ow <= g->w;
}

static void pool_forward(const pool_geom *g, const float *x, float *y,
                         int64_t *arg, int is_max) {
    if (is_max && is_2x2(g)) {
#pragma omp parallel for if (g->planes * g->h * g->w > NN_PAR_GRAIN)
        for (int64_t p = 0; p < g->planes; p++)
            for (int64_t oy = 0; oy < g->oh; oy++) {
                const float *r0 = x + (p * g->h + 2 * oy) * g->w;
                int64_t o = (p * g->oh + oy) * g->ow;
                max2x2_row(r0, r0 + g->w, g->ow, g->w, 2 * oy * g->w, y + o, arg + o);
            }
        return;
    }
#pragma omp parallel for if (g->planes * g->h * g->w > NN_PAR_GRAIN)
    for (int64_t p = 0; p < g->planes; p++) {
        const float *plane = x + p * g->h * g->w;
        int64_t o = p * g->oh * g->ow, unused;
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++, o++)
                y[o] = window(g, plane, oy, ox, is_max, is_max ? &arg[o] : &unused);
    }
}

typedef struct { pool_geom g; int is_max; } pool_ctx; /* max: slot 0 the winners */

static int pool_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    pool_geom g = NN_CTX(n, pool_ctx)->g;
    int is_max = NN_CTX(n, pool_ctx)->is_max;
    nn_tensor *arg = is_max ? nn_saved(n, 0) : NULL;
    if (is_max && !arg) return -1;
    nn_tensor *gc = nn_contiguous((nn_tensor *)gout);
    nn_tensor *dx = gc ? nn_zeros(NN_F32, n->in[0].ndim, n->in[0].shape) : NULL;
    if (!dx) {
        nn_release(gc);
        return -1;
    }
    const float *gv = nn_f32(gc);
    float *d = nn_f32(dx);
#pragma omp parallel for if (g.planes * g.oh * g.ow > NN_PAR_GRAIN / 8)
    for (int64_t p = 0; p < g.planes; p++) { /* one plane per thread: no races */
        float *plane = d + p * g.h * g.w;
        for (int64_t oy = 0; oy < g.oh; oy++)
            for (int64_t ox = 0; ox < g.ow; ox++) {
                int64_t o = (p * g.oh + oy) * g.ow + ox;
                if (is_max) {
                    int64_t at = nn_i64(arg)[o];
                    if (at >= 0) plane[at] += gv[o];
                    continue;
                }
                float inv = 1.0f / window_size(&g, oy, ox);
                for (int64_t i = 0; i < g.kh; i++) {
                    int64_t y0 = oy * g.sh - g.ph + i;
                    if (y0 < 0 || y0 >= g.h) continue;
                    for (int64_t j = 0; j < g.kw; j++) {
                        int64_t x0 = ox * g.sw - g.pw + j;
                        if (x0 >= 0 && x0 < g.w) plane[y0 * g.w + x0] += gv[o] * inv;
                    }
                }
            }
    }
    nn_release(gc);
    gin[0] = dx;
    return 0;
}

NN_OP(max_pool_op, "max_pool2d", pool_backward, pool_ctx);
NN_OP(avg_pool_op, "avg_pool2d", pool_backward, pool_ctx);

/* n + 2 p - k over s, rounded down (or up, keeping windows that start
 * inside the input or its left padding), plus one */
static int64_t pooled_size(int64_t n, int64_t k, int64_t s, int64_t p, int ceil_mode) {
    int64_t span = n + 2 * p - k, out = (ceil_mode ? span + s - 1 : span) / s + 1;
    if (ceil_mode && (out - 1) * s >= n + p) out--;
    return out;
}

static nn_tensor *pool2d(const nn_tensor *x, const int *kernel, const int *stride,
                         const int *padding, int ceil_mode, int is_max, nn_tensor **indices,
                         int64_t base) {
    const char *name = is_max ? "max_pool2d" : "avg_pool2d";
    char s1[96];
    if (x->dtype != NN_F32 || x->ndim != 4)
        return nn_fail(1, "%s expects an f32 (N, C, H, W) input, got %s", name,
                       nn_shape_str(x, s1, 96));
    pool_geom g = {x->shape[0] * x->shape[1], x->shape[2], x->shape[3], 0, 0,
                   kernel[0], kernel[1], stride[0], stride[1], padding[0], padding[1]};
    if (g.kh < 1 || g.kw < 1 || g.sh < 1 || g.sw < 1 || g.ph < 0 || g.pw < 0 ||
        2 * g.ph > g.kh || 2 * g.pw > g.kw)
        return nn_fail(2, "%s: kernel and stride must be >= 1 and padding at most "
                          "half the kernel", name);
    if (g.h + 2 * g.ph < g.kh || g.w + 2 * g.pw < g.kw)
        return nn_fail(2, "%s: window larger than the input %s", name, nn_shape_str(x, s1, 96));
    g.oh = pooled_size(g.h, g.kh, g.sh, g.ph, ceil_mode);
    g.ow = pooled_size(g.w, g.kw, g.sw, g.pw, ceil_mode);
    int prev = nn_grad_off();
    nn_tensor *xc = nn_contiguous((nn_tensor *)x);
    int64_t shape[4] = {x->shape[0], x->shape[1], g.oh, g.ow};
    nn_tensor *y = nn_empty(NN_F32, 4, shape);
    nn_tensor *arg = is_max ? nn_empty(NN_I64, 4, shape) : NULL;
    if (xc && y && (!is_max || arg)) {
        pool_forward(&g, nn_f32(xc), nn_f32(y), arg ? nn_i64(arg) : NULL, is_max);
    } else {
        nn_release(y);
        y = NULL;
    }
    nn_release(xc);
    nn_grad_restore(prev);
    nn_node *node;
    y = nn_finish_op(y, is_max ? &max_pool_op : &avg_pool_op, 1, &x, &node);
    if (node) {
        *NN_CTX(node, pool_ctx) = (pool_ctx){g, is_max};
        if (is_max && nn_save(node, 0, arg) < 0) {
            nn_release(y);
            y = NULL;
        }
    }
    if (y && indices) { /* the winners' positions in their planes, from base */
        nn_tensor *b = nn_scalar(NN_I64, (double)base);
        *indices = b ? nn_add(arg, b) : NULL;
        nn_release(b);
        if (!*indices) {
            nn_release(y);
            y = NULL;
        }
    }
    nn_release(arg);
    return y;
}

nn_tensor *nn_max_pool2d(const nn_tensor *x, const int *kernel, const int *stride,
                         const int *padding) {
    return nn_max_pool2d_ex(x, kernel, stride, padding, 0, NULL, 0);
}

nn_tensor *nn_max_pool2d_ex(const nn_tensor *x, const int *kernel, const int *stride,
                            const int *padding, int ceil_mode, nn_tensor **indices, int64_t base) {
    if (indices) *indices = NULL;
    NN_NO_HALF_PTR(x, 1, "max_pool2d");
    return pool2d(x, kernel, stride, padding, ceil_mode, 1, indices, base);
}

nn_tensor *nn_avg_pool2d(const nn_tensor *x, const int *kernel, const int *stride,
                         const int *padding) {
    return nn_avg_pool2d_ex(x, kernel, stride, padding, 0);
}

nn_tensor *nn_avg_pool2d_ex(const nn_tensor *x, const int *kernel, const int *stride,
                            const int *padding, int ceil_mode) {
    NN_NO_HALF_PTR(x, 1, "avg_pool2d");
    return pool2d(x, kernel, stride, padding, ceil_mode, 0, NULL, 0);
}
