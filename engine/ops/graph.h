/* graph.h -- helpers for the backward_graph functions (not installed).
 *
 * A create_graph backward builds each gradient from engine ops, which
 * record themselves, so the gradient can be differentiated again. The
 * helpers keep every intermediate in a scope released at the end and pass
 * a failure (NULL) along a chain, so a formula reads as one expression:
 *     nn_scope s = {0};
 *     gin[0] = nn_scope_result(&s, g_mul(&s, g, g_un(&s, NN_COS, x)));
 *     return nn_scope_end(&s);            // -1 if any step failed */
#ifndef NN_GRAPH_H
#define NN_GRAPH_H

#include "autograd.h"
#include "nn_ops.h"

#define NN_SCOPE_MAX 32

typedef struct {
    nn_tensor *t[NN_SCOPE_MAX];
    int n, failed;
} nn_scope;

/* keeps t (NULL marks the scope failed) */
static inline nn_tensor *g_keep(nn_scope *s, nn_tensor *t) {
    if (t && s->n < NN_SCOPE_MAX) return s->t[s->n++] = t;
    if (t) nn_release(t);
    if (!s->failed && t) nn_failed(0, "internal: a backward formula is too long");
    s->failed = 1;
    return NULL;
}

/* a new reference to t for gin[] (NULL if the scope failed) */
static inline nn_tensor *nn_scope_result(nn_scope *s, nn_tensor *t) {
    return s->failed || !t ? (s->failed = 1, NULL) : nn_retain(t);
}

static inline int nn_scope_end(nn_scope *s) {
    for (int i = 0; i < s->n; i++) nn_release(s->t[i]);
    s->n = 0;
    return s->failed ? -1 : 0;
}

static inline nn_tensor *g_bin(nn_scope *s, nn_binary_op op, const nn_tensor *a,
                               const nn_tensor *b) {
    return a && b ? g_keep(s, nn_binary(op, a, b)) : g_keep(s, NULL);
}
static inline nn_tensor *g_un(nn_scope *s, nn_unary_op op, const nn_tensor *a) {
    return a ? g_keep(s, nn_unary(op, a, 0, 0)) : g_keep(s, NULL);
}
/* the same for an op with parameters (elu's alpha, softplus's beta) */
static inline nn_tensor *g_unp(nn_scope *s, nn_unary_op op, const nn_tensor *a, double p0, double p1) {
    return a ? g_keep(s, nn_unary(op, a, p0, p1)) : g_keep(s, NULL);
}
static inline nn_tensor *g_k(nn_scope *s, double v) { return g_keep(s, nn_scalar(NN_F32, v)); }
static inline nn_tensor *g_mul(nn_scope *s, const nn_tensor *a, const nn_tensor *b) {
    return g_bin(s, NN_MUL, a, b);
}
static inline nn_tensor *g_add(nn_scope *s, const nn_tensor *a, const nn_tensor *b) {
    return g_bin(s, NN_ADD, a, b);
}
static inline nn_tensor *g_sub(nn_scope *s, const nn_tensor *a, const nn_tensor *b) {
    return g_bin(s, NN_SUB, a, b);
}
static inline nn_tensor *g_div(nn_scope *s, const nn_tensor *a, const nn_tensor *b) {
    return g_bin(s, NN_DIV, a, b);
}
static inline nn_tensor *g_mulk(nn_scope *s, const nn_tensor *a, double k) {
    return g_mul(s, a, g_k(s, k));
}
static inline nn_tensor *g_matmul(nn_scope *s, const nn_tensor *a, const nn_tensor *b) {
    return a && b ? g_keep(s, nn_matmul(a, b)) : g_keep(s, NULL);
}
static inline nn_tensor *g_t(nn_scope *s, const nn_tensor *a) { /* the last two dims swapped */
    return a ? g_keep(s, nn_transpose((nn_tensor *)a, -1, -2)) : g_keep(s, NULL);
}
static inline nn_tensor *g_sum(nn_scope *s, const nn_tensor *a, int ndims, const int *dims,
                               int keepdim) {
    return a ? g_keep(s, nn_sum(a, ndims, dims, keepdim)) : g_keep(s, NULL);
}
static inline nn_tensor *g_reshape(nn_scope *s, const nn_tensor *a, int ndim,
                                   const int64_t *shape) {
    return a ? g_keep(s, nn_reshape((nn_tensor *)a, ndim, shape)) : g_keep(s, NULL);
}

/* the mean over one dim, kept */
static inline nn_tensor *g_mean(nn_scope *s, const nn_tensor *a, int dim) {
    nn_reduce_args m = {.ndims = 1, .dims = {dim}, .keepdim = 1};
    return a ? g_keep(s, nn_reduce(NN_MEAN, a, &m)) : g_keep(s, NULL);
}

#endif
