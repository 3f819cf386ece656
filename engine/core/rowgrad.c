/* rowgrad.c -- row-sparse gradients for large (V, D) tables.
 *
 * A dense gradient of a 40,000 x 500 entity table is 80 MB to zero, add
 * and walk every step although a batch reads a few thousand rows. With
 * sparse gradients on, the table's leaf carries one (V, D) buffer, a
 * touched flag per row and the list of touched rows: ops that read rows
 * zero a row the first time they touch it and add into it, and clearing
 * costs one pass over the touched rows. */
#include "autograd.h"

#include <stdlib.h>
#include <string.h>

int nn_set_sparse_grad(nn_tensor *t, int on) {
    char s1[96];
    if (!on) {
        nn_rowgrad_free(t->rowgrad);
        t->rowgrad = NULL;
        return 0;
    }
    if (t->rowgrad) return 0;
    if (t->node || t->dtype != NN_F32 || t->ndim != 2)
        return nn_failed(1, "sparse gradients need a leaf f32 (V, D) table, got %s %s%s",
                         nn_dtype_name(t->dtype), nn_shape_str(t, s1, 96),
                         t->node ? " made by an op" : "");
    struct nn_rowgrad *rg = calloc(1, sizeof *rg);
    if (!rg) return nn_failed(0, "out of memory");
    rg->v = t->shape[0];
    rg->d = t->shape[1];
    size_t v = (size_t)(rg->v ? rg->v : 1);
    rg->buf = nn_alloc(v * (size_t)(rg->d ? rg->d : 1) * sizeof(float));
    rg->touched = calloc(v, 1);
    rg->rows = malloc(v * sizeof *rg->rows);
    if (!rg->buf || !rg->touched || !rg->rows) {
        nn_rowgrad_free(rg);
        return nn_failed(0, "out of memory for the sparse gradient of %s",
                         nn_shape_str(t, s1, 96));
    }
    t->rowgrad = rg;
    return 0;
}

void nn_rowgrad_free(struct nn_rowgrad *rg) {
    if (!rg) return;
    nn_free(rg->buf);
    free(rg->touched);
    free(rg->rows);
    free(rg);
}

int nn_has_sparse_grad(const nn_tensor *t) { return t->rowgrad != NULL; }

int64_t nn_sparse_grad_rows(const nn_tensor *t, const int64_t **rows) {
    if (!t->rowgrad) {
        if (rows) *rows = NULL;
        return 0;
    }
    if (rows) *rows = t->rowgrad->rows;
    return t->rowgrad->nrows;
}

const float *nn_sparse_grad_data(const nn_tensor *t) {
    return t->rowgrad ? t->rowgrad->buf : NULL;
}

void nn_sparse_grad_clear(nn_tensor *t) {
    struct nn_rowgrad *rg = t->rowgrad;
    if (!rg) return;
    for (int64_t k = 0; k < rg->nrows; k++) rg->touched[rg->rows[k]] = 0;
    rg->nrows = 0;
}

nn_tensor *nn_sparse_grad_dense(const nn_tensor *t) {
    struct nn_rowgrad *rg = t->rowgrad;
    if (!rg || rg->nrows == 0) return NULL;
    nn_tensor *g = nn_zeros(NN_F32, 2, t->shape);
    if (!g) return NULL;
    for (int64_t k = 0; k < rg->nrows; k++)
        memcpy(nn_f32(g) + rg->rows[k] * rg->d, rg->buf + rg->rows[k] * rg->d,
               (size_t)rg->d * sizeof(float));
    return g;
}

struct nn_rowgrad *nn_input_rowgrad(nn_node *n, int i) {
    nn_tensor *leaf = n->in[i].leaf;
    return leaf ? leaf->rowgrad : NULL;
}

void nn_rowgrad_touch(struct nn_rowgrad *rg, const int64_t *idx, int64_t n,
                      int64_t base) {
    for (int64_t k = 0; k < n; k++) {
        int64_t r = idx[k] - base;
        if (rg->touched[r]) continue;
        rg->touched[r] = 1;
        rg->rows[rg->nrows++] = r;
        memset(rg->buf + r * rg->d, 0, (size_t)rg->d * sizeof(float));
    }
}

int nn_sparse_grad_add(nn_tensor *t, int64_t n, const int64_t *rows, const float *data) {
    struct nn_rowgrad *rg = t->rowgrad;
    if (!rg) return nn_failed(1, "the tensor keeps no sparse gradient");
    for (int64_t k = 0; k < n; k++)
        if (rows[k] < 0 || rows[k] >= rg->v)
            return nn_failed(2, "row %lld is outside the table's %lld rows",
                             (long long)rows[k], (long long)rg->v);
    nn_rowgrad_touch(rg, rows, n, 0);
    for (int64_t k = 0; k < n; k++) {
        float *dst = rg->buf + rows[k] * rg->d;
        const float *src = data + k * rg->d;
        for (int64_t j = 0; j < rg->d; j++) dst[j] += src[j];
    }
    return 0;
}

void nn_sparse_grad_scale(nn_tensor *t, float s) {
    struct nn_rowgrad *rg = t->rowgrad;
    if (!rg) return;
    for (int64_t k = 0; k < rg->nrows; k++) {
        float *row = rg->buf + rg->rows[k] * rg->d;
        for (int64_t j = 0; j < rg->d; j++) row[j] *= s;
    }
}
