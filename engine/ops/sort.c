/* sort.c -- sort and topk along a dim (stable merge sort of indices; NaN
 * sorts as the largest value, as in PyTorch), and isin. */
#include "autograd.h"
#include "nn_ops.h"

#include <stdlib.h>
#include <string.h>

static inline bool before(float a, float b, int desc) {
    if (a != a) return desc && b == b;  /* NaN largest */
    if (b != b) return !desc;
    return desc ? a > b : a < b;
}

static void merge_sort(const float *v, int64_t *idx, int64_t *tmp, int64_t n,
                       int desc) {
    if (n < 2) return;
    int64_t h = n / 2;
    merge_sort(v, idx, tmp, h, desc);
    merge_sort(v, idx + h, tmp, n - h, desc);
    int64_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = before(v[idx[j]], v[idx[i]], desc) ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/* the first k of a row's stable order without sorting it all (k small):
 * one pass keeping the best k so far in order; an element enters before the
 * first kept one it precedes, so equal values keep their index order */
static void select_k(const float *v, int64_t n, int64_t k, int desc, int64_t *best) {
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (m == k && !before(v[i], v[best[k - 1]], desc)) continue;
        int64_t j = m < k ? m++ : k - 1;
        while (j > 0 && before(v[i], v[best[j - 1]], desc)) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = i;
    }
}

/* sorted values/indices of each row along dim, keeping the first k */
static int sort_k(const nn_tensor *x, int dim, int64_t k, int desc,
                  int64_t base, nn_tensor **values, nn_tensor **indices) {
    *values = *indices = NULL;
    if (x->dtype != NN_F32) return nn_failed(1, "sort expects an f32 tensor");
    if ((dim = nn_wrap_dim(dim, x->ndim, 2)) < 0) return -1;
    int last = x->ndim ? x->ndim - 1 : 0;
    int64_t n = x->ndim ? x->shape[dim] : 1;
    if (k < 0 || k > n)
        return nn_failed(2, "k = %lld out of range for a dim of size %lld",
                         (long long)k, (long long)n);
    nn_tensor *xt = nn_transpose((nn_tensor *)x, dim, last);
    nn_tensor *xc = xt ? nn_contiguous(xt) : NULL;
    nn_release(xt);
    if (!xc) return -1;
    int64_t shape[NN_MAX_DIMS];
    memcpy(shape, xc->shape, sizeof shape);
    if (xc->ndim) shape[last] = k;
    nn_tensor *v = nn_empty(NN_F32, xc->ndim, shape);
    nn_tensor *ix = nn_empty(NN_I64, xc->ndim, shape);
    int64_t *work = malloc(2 * (size_t)(n ? n : 1) * sizeof *work);
    int rc = (v && ix && work) ? 0 : nn_failed(0, "out of memory");
    int64_t rows = n ? nn_numel(xc) / n : 0;
    for (int64_t r = 0; rc == 0 && r < rows; r++) {
        const float *row = nn_f32(xc) + r * n;
        if (k >= 1 && k <= 64 && 16 * k < n) {
            select_k(row, n, k, desc, work);
        } else {
            for (int64_t i = 0; i < n; i++) work[i] = i;
            merge_sort(row, work, work + n, n, desc);
        }
        for (int64_t i = 0; i < k; i++) {
            nn_f32(v)[r * k + i] = row[work[i]];
            nn_i64(ix)[r * k + i] = work[i] + base;
        }
    }
    free(work);
    nn_release(xc);
    if (rc == 0 && dim != last) { /* move the dim back where it was */
        nn_tensor *vt = nn_transpose(v, dim, last), *it = nn_transpose(ix, dim, last);
        nn_release(v);
        nn_release(ix);
        v = vt ? nn_contiguous(vt) : NULL;
        ix = it ? nn_contiguous(it) : NULL;
        nn_release(vt);
        nn_release(it);
        if (!v || !ix) rc = -1;
    }
    if (rc < 0) {
        nn_release(v);
        nn_release(ix);
        return -1;
    }
    *values = v;
    *indices = ix;
    return 0;
}

/* values came from positions `indices`: send g back there */
typedef struct { int dim; int64_t base; } sort_ctx; /* slot 0: the indices */

static int sort_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const sort_ctx *c = NN_CTX(n, sort_ctx);
    nn_tensor *idx = nn_saved(n, 0);
    nn_tensor *z = idx ? nn_zeros(NN_F32, n->in[0].ndim, n->in[0].shape) : NULL;
    if (z) gin[0] = nn_scatter(z, c->dim, idx, g, 0, c->base);
    nn_release(z);
    return gin[0] ? 0 : -1;
}

NN_OP_TWICE(sort_op, "sort", sort_backward, sort_ctx);
NN_OP_TWICE(topk_op, "topk", sort_backward, sort_ctx);

static int sort_recorded(const nn_tensor *x, int dim, int64_t k, int desc,
                         int64_t base, nn_tensor **values, nn_tensor **indices,
                         const nn_op *op) {
    int prev = nn_grad_off();
    int rc = sort_k(x, dim, k, desc, base, values, indices);
    nn_grad_restore(prev);
    if (rc < 0) return -1;
    nn_node *node;
    *values = nn_finish_saving(*values, op, 1, &x, *indices, &node);
    if (node) *NN_CTX(node, sort_ctx) = (sort_ctx){nn_wrap_dim(dim, x->ndim, 2), base};
    if (!*values) {
        nn_release(*indices);
        *indices = NULL;
        return -1;
    }
    return 0;
}

int nn_sort(const nn_tensor *x, int dim, int descending, int64_t base,
            nn_tensor **values, nn_tensor **indices) {
    NN_NO_HALF(x, 1, "sort");
    int d = nn_wrap_dim(dim, x->ndim, 2);
    if (d < 0) return -1;
    return sort_recorded(x, dim, x->ndim ? x->shape[d] : 1, descending, base,
                         values, indices, &sort_op);
}

int nn_topk(const nn_tensor *x, int64_t k, int dim, int largest,
            int64_t base, nn_tensor **values, nn_tensor **indices) {
    NN_NO_HALF(x, 1, "topk");
    return sort_recorded(x, dim, k, largest, base, values, indices, &topk_op);
}

/* ---- isin: membership by binary search in a sorted copy of the test set */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_f32(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* branch-free binary search (a conditional move per level: random keys
 * would mispredict every branch): p ends on the last key <= v, if any */
static bool found_i64(const int64_t *keys, int64_t n, int64_t v) {
    if (n == 0) return false;
    const int64_t *p = keys;
    for (; n > 1; n -= n / 2) p = p[n / 2] <= v ? p + n / 2 : p;
    return *p == v;
}

static bool found_f32(const float *keys, int64_t n, float v) {
    if (n == 0) return false;
    const float *p = keys;
    for (; n > 1; n -= n / 2) p = p[n / 2] <= v ? p + n / 2 : p;
    return *p == v;
}

/* i64 against i64 compares exactly (keys beyond 2^53 stay distinct);
 * anything else compares as f32. NaN is never in the set. */
nn_tensor *nn_isin(const nn_tensor *x, const nn_tensor *test) {
    NN_NO_HALF_PTR(x, 1, "isin");
    NN_NO_HALF_PTR(test, 2, "isin");
    bool ints = x->dtype == NN_I64 && test->dtype == NN_I64;
    nn_dtype dt = ints ? NN_I64 : NN_F32;
    int prev = nn_grad_off();
    nn_tensor *xk = x->dtype == dt ? nn_contiguous((nn_tensor *)x) : nn_to_dtype(x, dt);
    nn_tensor *keys = nn_to_dtype(test, dt); /* a copy, sorted in place */
    nn_tensor *y = xk && keys ? nn_empty(NN_F32, x->ndim, x->shape) : NULL;
    if (y) {
        int64_t n = nn_numel(keys), m = nn_numel(xk);
        float *out = nn_f32(y);
        if (ints) {
            int64_t *k = nn_i64(keys);
            const int64_t *v = nn_i64(xk);
            qsort(k, (size_t)n, sizeof *k, cmp_i64);
#pragma omp parallel for if (m > NN_PAR_GRAIN / 16)
            for (int64_t i = 0; i < m; i++) out[i] = found_i64(k, n, v[i]);
        } else {
            float *k = nn_f32(keys);
            const float *v = nn_f32(xk);
            int64_t kept = 0; /* NaN would break the order */
            for (int64_t i = 0; i < n; i++)
                if (k[i] == k[i]) k[kept++] = k[i];
            qsort(k, (size_t)kept, sizeof *k, cmp_f32);
#pragma omp parallel for if (m > NN_PAR_GRAIN / 16)
            for (int64_t i = 0; i < m; i++) out[i] = found_f32(k, kept, v[i]);
        }
    }
    nn_release(xk);
    nn_release(keys);
    nn_grad_restore(prev);
    return y;
}
