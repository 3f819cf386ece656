/*
 * nn_ops.h -- the maths on tensors: elementwise ops with broadcasting,
 * reductions, matmul, indexing, joining and ordering; each records its
 * derivative when an input requires grad.
 *
 * A first program (error checks elided; every call that can fail on user
 * input returns NULL or -1 and leaves a message in nn_last_error()):
 *
 *     nn_rng rng;
 *     nn_rng_seed(&rng, 42);
 *     nn_tensor *x = nn_randn(&rng, 2, (int64_t[]){2, 3}); // (2, 3) normal
 *     nn_set_requires_grad(x, 1);
 *     nn_tensor *w = nn_full(1, (int64_t[]){3}, 0.5);      // (3,)
 *     nn_tensor *y = nn_mul(x, w);                         // broadcast: (2, 3)
 *     nn_tensor *s = nn_sum(y, 0, NULL, 0);                // all dims: ()
 *     nn_backward(s, NULL, 0);                             // x->grad == 0.5
 *     printf("%g %g\n", nn_item(s), nn_get(x->grad, (int64_t[]){0, 0}));
 *     nn_release(x); nn_release(w); nn_release(y); nn_release(s);
 *
 * Comparisons return f32 tensors of 0 and 1; a mask is any tensor whose
 * nonzero elements mean "true".
 */
#ifndef NN_OPS_H
#define NN_OPS_H

#include "nn_tensor.h"
#include "nn_unary_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise -------------------------------------------------------- */
#define NN_ENUM_ENTRY_(id, ...) NN_##id,
typedef enum { NN_UNARY_OPS(NN_ENUM_ENTRY_) NN_UNARY_COUNT } nn_unary_op;
typedef enum { NN_BINARY_OPS(NN_ENUM_ENTRY_) NN_BINARY_COUNT } nn_binary_op;
typedef enum { NN_REDUCE_OPS(NN_ENUM_ENTRY_) NN_REDUCE_COUNT } nn_reduce_op;

/* what a unary op's derivative reads (the tape keeps only that) */
typedef enum { NN_SAVES_NONE, NN_SAVES_IN, NN_SAVES_OUT } nn_saves;
extern const nn_saves nn_unary_saves[NN_UNARY_COUNT];
extern const char *const nn_unary_names[NN_UNARY_COUNT];
extern const char *const nn_binary_names[NN_BINARY_COUNT];

/* p0, p1: the bounds of NN_CLAMP, the slope of NN_LEAKY_RELU */
nn_tensor *nn_unary(nn_unary_op op, const nn_tensor *x, double p0, double p1);
int nn_unary_(nn_unary_op op, nn_tensor *x, double p0, double p1);
nn_tensor *nn_binary(nn_binary_op op, const nn_tensor *a, const nn_tensor *b);
int nn_binary_(nn_binary_op op, nn_tensor *a, const nn_tensor *b);
nn_tensor *nn_add(const nn_tensor *a, const nn_tensor *b);
nn_tensor *nn_mul(const nn_tensor *a, const nn_tensor *b);
/* clamp between tensor bounds (either NULL), broadcast with x */
nn_tensor *nn_clamp_tensor(const nn_tensor *x, const nn_tensor *lo, const nn_tensor *hi);
nn_tensor *nn_where(const nn_tensor *cond, const nn_tensor *a,
                    const nn_tensor *b);

/* ---- reductions --------------------------------------------------------- */
typedef struct nn_reduce_args {
    int ndims;                 /* 0: every dim */
    int dims[NN_MAX_DIMS];
    int keepdim;
    int correction;            /* var/std: 1 unbiased (default), 0 biased */
    double p;                  /* norm order: 2, 1, 0 (count), +-INFINITY, any */
    int64_t base;              /* argmax/argmin index base */
} nn_reduce_args;

extern const char *const nn_reduce_names[NN_REDUCE_COUNT];
nn_tensor *nn_reduce(nn_reduce_op op, const nn_tensor *x,
                     const nn_reduce_args *args);
nn_tensor *nn_sum(const nn_tensor *x, int ndims, const int *dims, int keepdim);
/* max/min over one dim with indices (indices counted from base) */
int nn_max_dim(const nn_tensor *x, int dim, int keepdim, int is_min,
               int64_t base, nn_tensor **values, nn_tensor **indices);
nn_tensor *nn_softmax(const nn_tensor *x, int dim);
nn_tensor *nn_log_softmax(const nn_tensor *x, int dim);
nn_tensor *nn_cumsum(const nn_tensor *x, int dim);
/* cumulative product and log(cumsum(exp(x))) along dim (scan.c), f32 */
nn_tensor *nn_cumprod(const nn_tensor *x, int dim);
nn_tensor *nn_logcumsumexp(const nn_tensor *x, int dim);

/* ---- linear algebra ----------------------------------------------------- */
/* NumPy matmul semantics: 1-D operands promoted, batch dims broadcast. */
nn_tensor *nn_matmul(const nn_tensor *a, const nn_tensor *b);

/* ---- indexing ----------------------------------------------------------- */
nn_tensor *nn_gather(const nn_tensor *x, int dim, const nn_tensor *index,
                     int64_t base);
/* out = copy of x with src scattered along dim; accumulate adds instead */
nn_tensor *nn_scatter(const nn_tensor *x, int dim, const nn_tensor *index,
                      const nn_tensor *src, int accumulate, int64_t base);
nn_tensor *nn_index_select(const nn_tensor *x, int dim,
                           const nn_tensor *index, int64_t base);
nn_tensor *nn_index_add(const nn_tensor *x, int dim, const nn_tensor *index,
                        const nn_tensor *src, double alpha, int64_t base);
nn_tensor *nn_masked_fill(const nn_tensor *x, const nn_tensor *mask,
                          double value);
int nn_masked_fill_(nn_tensor *x, const nn_tensor *mask, double value);
/* rows index (counted from base) of x moved in place to its first
 * numel(index) rows, copying only the rows that move (beam search
 * reordering its caches); later rows are left as they were */
int nn_keep_rows_(nn_tensor *x, const nn_tensor *index, int64_t base);
nn_tensor *nn_one_hot(const nn_tensor *index, int64_t classes, int64_t base);
nn_tensor *nn_tril(const nn_tensor *x, int64_t k, int upper);

/* ---- joining and splitting --------------------------------------------- */
/* Rearranging copies (rearrange.c, through remap.c: any dtype, the
 * gradient scattered back). pad: npairs (left, right) pairs, the first for
 * the last dim, then the one before (PyTorch's order); constant pads may be
 * negative (crop); reflect needs pads < the size, circular <= it. */
typedef enum { NN_PAD_CONSTANT, NN_PAD_REFLECT, NN_PAD_REPLICATE, NN_PAD_CIRCULAR } nn_pad_mode;
nn_tensor *nn_pad(const nn_tensor *x, int npairs, const int64_t *pads, nn_pad_mode mode,
                  double value);
nn_tensor *nn_flip(const nn_tensor *x, int ndims, const int *dims);
/* roll by shifts[i] along dims[i]; dims NULL: the flattened tensor, one shift */
nn_tensor *nn_roll(const nn_tensor *x, int n, const int64_t *shifts, const int *dims);
/* tile: n >= ndim repeats, leading ones adding dims */
nn_tensor *nn_repeat(const nn_tensor *x, int n, const int64_t *reps);
/* each entry along *dim (NULL: of the flattened tensor) repeated repeats[i]
 * times (repeats an i64 (size) tensor) or r times (repeats NULL) */
nn_tensor *nn_repeat_interleave(const nn_tensor *x, const nn_tensor *repeats, int64_t r,
                                const int *dim);
/* windows of `size` every `step` along dim: that dim becomes the window
 * count and a last dim of `size` is added (a copy, unlike PyTorch's view) */
nn_tensor *nn_unfold(const nn_tensor *x, int dim, int64_t size, int64_t step);
/* the gather behind them (remap.c): x's last k dims -> nt dims out_tail,
 * out plane element j from plane element map[j] (i64, -1: fill) */
nn_tensor *nn_remap(const nn_tensor *x, int k, int nt, const int64_t *out_tail, nn_tensor *map,
                    double fill, const char *name);
/* the same with a map separable by dim: out coordinate c of tail dim d
 * reads coordinate src[d][c] (-1: fill) */
nn_tensor *nn_remap_separable(const nn_tensor *x, int k, const int64_t *out_tail,
                              int64_t *const *src, double fill, const char *name);
nn_tensor *nn_cat(nn_tensor *const *ts, int n, int dim);
nn_tensor *nn_stack(nn_tensor *const *ts, int n, int dim);
/* views of consecutive pieces of `sizes[i]` along dim */
int nn_split(nn_tensor *t, int dim, const int64_t *sizes, int n,
             nn_tensor **out);
/* every slice along dim as views, out[0 .. size(dim) - 1] (the caller's
 * array); one node, whose backward stacks their gradients */
int nn_unbind(nn_tensor *t, int dim, nn_tensor **out);

/* ---- ordering ----------------------------------------------------------- */
int nn_sort(const nn_tensor *x, int dim, int descending, int64_t base,
            nn_tensor **values, nn_tensor **indices);
int nn_topk(const nn_tensor *x, int64_t k, int dim, int largest,
            int64_t base, nn_tensor **values, nn_tensor **indices);
/* 1 where an element of x equals some element of test, else 0 (f32, x's
 * shape; not differentiable) */
nn_tensor *nn_isin(const nn_tensor *x, const nn_tensor *test);
/* Sizes that depend on values (select.c). masked_select: with a mask over
 * x's leading dims (x[mask]) the selected (count, rest...) slices, else
 * the elements where a mask broadcast to x is non-zero (count), any dtype,
 * differentiable; nonzero: (count, ndim) positions from base; unique: the
 * sorted distinct values, each element's position in them (from base) and
 * their counts (inverse, counts may be NULL) */
nn_tensor *nn_masked_select(const nn_tensor *x, const nn_tensor *mask);
nn_tensor *nn_nonzero(const nn_tensor *x, int64_t base);
int nn_unique(const nn_tensor *x, int64_t base, nn_tensor **values, nn_tensor **inverse,
              nn_tensor **counts);

#ifdef __cplusplus
}
#endif

#endif
