/* internal.h -- helpers shared by the engine's source files; not installed. */
#ifndef NN_INTERNAL_H
#define NN_INTERNAL_H

#include "nn_tensor.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

/* Leave a message (and the argument to blame, 0 for none); returns NULL so
 * a failing constructor can `return nn_fail(...)`. */
void *nn_fail(int arg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same, for functions returning a status. */
int nn_failed(int arg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A float to i64 as Rust's `as` does (C leaves it undefined): toward
 * zero, saturating at the ends of the range, NaN to 0. */
static inline int64_t nn_double_to_i64(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775808.0) return INT64_MAX;
    if (v < -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

/* Normalise a possibly negative dim; -1 (and an error) when out of range. */
int nn_wrap_dim(int dim, int ndim, int arg);

/* A file being replaced atomically (atomic.c): open, write, then commit
 * or abort; every failure leaves the old file as it was. */
typedef struct {
    FILE *f;
    char *tmp, *path;
} nn_atomic_file;
int nn_atomic_open(nn_atomic_file *a, const char *path);
int nn_atomic_write(nn_atomic_file *a, const void *data, size_t n);
int nn_atomic_commit(nn_atomic_file *a); /* also frees a */
void nn_atomic_abort(nn_atomic_file *a);

/* Allocation of tensor memory: 64-byte aligned, NULL on failure. */
void *nn_alloc(size_t bytes);
void nn_free(void *p);

/* Ops on bf16/f16 compute in f32 (views.c): nn_widen gives t as f32 (t
 * itself, retained, when it is not a 16-bit float); nn_narrow_to rounds an
 * f32 result y to dtype d (y unchanged unless d is a 16-bit float),
 * releasing y. The result dtype of a binary op: 16-bit when every operand
 * is that format or a 0-dim tensor (a number), as in PyTorch. */
nn_tensor *nn_widen(const nn_tensor *t);
nn_tensor *nn_narrow_to(nn_tensor *y, nn_dtype d);
static inline bool nn_is_half(nn_dtype d) { return d == NN_BF16 || d == NN_F16; }
nn_dtype nn_half_result(int n, const nn_tensor *const *ts);
/* ops that have no 16-bit path refuse those tensors by name (returns -1) */
int nn_half_refused(int arg, const char *op);
#define NN_NO_HALF(t, arg, op) \
    do { if ((t) && nn_is_half((t)->dtype)) return nn_half_refused(arg, op); } while (0)
#define NN_NO_HALF_PTR(t, arg, op) \
    do { if ((t) && nn_is_half((t)->dtype)) return nn_half_refused(arg, op), (void *)0; } while (0)
bool nn_any_half(int n, const nn_tensor *const *ts);
/* out[i] = nn_widen(in[i]) (NULL stays NULL); -1 with all released on failure */
int nn_widen_all(int n, const nn_tensor *const *in, nn_tensor **out);
void nn_release_all(int n, nn_tensor **ts);

/* sgemm, or nn_bf16_gemm when bf16 (an op's autocast setting) */
int nn_gemm(int bf16, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
            const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
            int64_t ldc);

/* AMX products in the calling thread alone, for kernels that run one task
 * per thread (attention's heads); only when nn_amx_ready() */
int nn_amx_ready(void);
int nn_amx_gemm_1t(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
                   const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                   float *c, int64_t ldc);

/* frees a leaf's gradient hooks (autograd.c) */
void nn_free_tensor_hooks(nn_tensor *t);

/* A new tensor sharing t's storage with the given geometry. */
nn_tensor *nn_make_view(nn_tensor *t, int ndim, const int64_t *shape,
                        const int64_t *stride, int64_t offset);

static inline float *nn_f32(const nn_tensor *t) {
    return (float *)t->storage->data + t->offset;
}
static inline int64_t *nn_i64(const nn_tensor *t) {
    return (int64_t *)t->storage->data + t->offset;
}
static inline void nn_bump_version(nn_tensor *t) { t->storage->version++; }

/* An in-place write into t must not reach one element through several
 * indices (an expanded view: stride 0 on a dim longer than 1), as in
 * PyTorch; -1 with the error on argument arg otherwise. */
static inline int nn_check_writable(const nn_tensor *t, int arg) {
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] > 1 && t->stride[d] == 0)
            return nn_failed(arg, "in-place write into a tensor whose elements share memory "
                                  "(an expanded view): clone() it first");
    return 0;
}

/* Strided iteration over up to six operands sharing one shape (broadcast
 * operands carry stride 0). Dims are coalesced where memory allows. */
#define NN_ITER_MAX 6
typedef struct nn_iter {
    int ndim;
    int nops;
    int64_t shape[NN_MAX_DIMS];
    int64_t stride[NN_ITER_MAX][NN_MAX_DIMS];
} nn_iter;

/* Operand strides of t broadcast to (ndim, shape); t must broadcast. */
void nn_broadcast_strides(const nn_tensor *t, int ndim, const int64_t *shape,
                          int64_t *stride);
void nn_iter_init(nn_iter *it, int ndim, const int64_t *shape, int nops,
                  const int64_t *const *strides);
/* The iteration of dst (operand 0) with src broadcast to it (operand 1). */
void nn_iter_pair(nn_iter *it, const nn_tensor *dst, const nn_tensor *src);
/* Calls row(ctx, n, offsets, inner_strides) for each run of the innermost
 * dim inside the linear range [begin, end). */
typedef void (*nn_row_fn)(void *ctx, int64_t n, const int64_t *off,
                          const int64_t *inner);
void nn_iter_range(const nn_iter *it, int64_t begin, int64_t end,
                   nn_row_fn row, void *ctx);
/* nn_iter_range over [0, total), split across threads when worth it. */
void nn_iter_run(const nn_iter *it, nn_row_fn row, void *ctx);

/* Elements per thread below which a loop stays serial. */
#define NN_PAR_GRAIN 32768

int64_t nn_shape_numel(int ndim, const int64_t *shape);
/* 0, or -1 with the error set (blaming arg): see tensor.c */
int nn_shape_check(int arg, int ndim, const int64_t *shape, size_t elem);
/* Elements in one slice t[i] along dim 0 (the product of the other sizes;
 * not numel / shape[0], which divides by zero for an empty tensor). */
int64_t nn_row_numel(const nn_tensor *t);
void nn_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);

/* Philox4x32-10 block for (seed, counter). */
static inline float nn_u01(uint32_t u) { /* [0, 1) with 24 random bits */
    return (float)(u >> 8) * (1.0f / 16777216.0f);
}
void nn_philox(uint64_t seed, uint64_t counter, uint32_t out[4]);
/* The four words of the blocks of counters counter .. counter + 15,
 * computed together (vectorised): w[k][l] = nn_philox(counter + l)[k]. */
#define NN_PHILOX_LANES 16
void nn_philox_lanes(uint64_t seed, uint64_t counter, uint32_t w[4][NN_PHILOX_LANES]);
/* Dropout keep-masks at four elements a Philox block, in groups of 64
 * elements on 16 blocks: element 64 g + 16 k + l (0-based) keeps when word k
 * of block `block + 16 g + l`, as a uniform, is >= p (so each group is four
 * contiguous runs of 16 and vectorises). With multiply, x[e] *= scale or 0;
 * else x[e] = scale or 0. Serial: callers split the work at multiples of 64
 * elements (and NN_PHILOX_MASK_BLOCKS(n) blocks). */
#define NN_PHILOX_MASK_BLOCKS(n) ((((uint64_t)(n) + 63) / 64) * 16)
void nn_philox_mask(uint64_t seed, uint64_t block, float *x, int64_t n, float p, float scale,
                    int multiply);

/* profile.c: the innermost layer scope on this thread (NULL: none) */
const char *nn_profile_current_layer(void);

/* calloc through malloc's per-thread cache: glibc's calloc skips it and
 * takes the slow path, which for the small structs made per op (tensors,
 * storages, nodes) cost more than the op itself */
static inline void *nn_zalloc(size_t bytes) {
    void *p = malloc(bytes);
    __asm__("" : "+r"(p)); /* or the compiler turns malloc + memset into calloc */
    if (p) memset(p, 0, bytes);
    return p;
}

#endif
