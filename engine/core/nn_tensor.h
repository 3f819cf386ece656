/*
 * nn_tensor.h -- tensors, views, creation and the autograd tape: all a C
 * host needs to hold tensors and differentiate (nn_ops.h has the maths).
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
 * Conventions
 *  - Tensors are refcounted. A function returning nn_tensor* gives the caller
 *    one reference; drop it with nn_release(). Views share storage.
 *  - Dimensions are 0-based here; negative dims count from the end.
 *  - Index tensors (i64) are counted from `base`: the Lua bindings pass 1
 *    (Lua counts from 1), C callers usually pass 0. Ops that return indices
 *    (argmax, topk, sort) add `base` to what they return.
 *  - BLAS is OpenBLAS loaded with dlopen after choosing its kernel set
 *    (see nn_init); threads are set with nn_set_num_threads().
 */
#ifndef NN_TENSOR_H
#define NN_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NN_MAX_DIMS 8

/* bf16 and f16 are storage formats: ops on them compute in f32 and round
 * the result back; only f32 tensors require gradients */
typedef enum { NN_F32 = 0, NN_I64 = 1, NN_BF16 = 2, NN_F16 = 3, NN_DTYPE_COUNT } nn_dtype;

typedef struct nn_storage {
    void *data;
    size_t bytes;
    int refcount;
    int owns;          /* 0: a host's buffer, never freed by us; 1: ours;
                          2: a file mapping (unmapped on release) */
    void *map_base;    /* owns == 2: the mapping's start and length */
    size_t map_len;
    uint64_t version;  /* bumped by every in-place write */
    int reported;      /* a binding has told its GC about these bytes */
    int inline_data;   /* small: data lives in the same block, after this */
} nn_storage;

struct nn_node;
struct nn_hook;

typedef struct nn_tensor {
    nn_dtype dtype;
    int ndim;
    int64_t shape[NN_MAX_DIMS];
    int64_t stride[NN_MAX_DIMS]; /* in elements */
    int64_t offset;              /* in elements */
    nn_storage *storage;
    int refcount;
    /* autograd */
    int requires_grad;           /* a leaf the user marked, or made from one */
    struct nn_node *node;        /* the op that made it; NULL for leaves */
    int out_index;               /* which of node's outputs this is */
    struct nn_hook *hooks;       /* leaves: gradient hooks */
    struct nn_tensor *grad;      /* leaves: the accumulated gradient */
    struct nn_rowgrad *rowgrad;  /* leaves with row-sparse gradients, or NULL */
} nn_tensor;

/* Counter-based generator (Philox4x32-10): element i of a draw depends only
 * on (seed, offset + i), so results do not depend on the thread count. */
typedef struct nn_rng {
    uint64_t seed;
    uint64_t offset;
} nn_rng;

/* ---- errors and set-up ------------------------------------------------ */
const char *nn_last_error(void);
int nn_last_error_arg(void); /* argument blamed (1-based), 0 if none */
/* sets the message (a host callback failing); returns -1 */
int nn_set_error(const char *msg);
int nn_init(void);           /* loads BLAS; idempotent; -1 on failure */
void nn_set_num_threads(int n);
int nn_get_num_threads(void);
/* Brings the calling thread's OpenMP team size in line with
 * nn_set_num_threads (cheap; tensor creation calls it). */
void nn_sync_threads(void);
const char *nn_blas_core(void);     /* OpenBLAS kernel set in use */
const char *nn_blas_choice(void);   /* how it was chosen */
const char *nn_blas_library(void);  /* the library file loaded */
const char *nn_build_flags(void);
double nn_clock(void);              /* monotonic seconds */
const char *nn_dtype_name(nn_dtype d);
int64_t nn_live_bytes(void);        /* bytes of tensor storage we own */
/* Caps live tensor storage for the whole process (0: no cap; a host
 * embedding untrusted scripts sets one); returns the previous cap. A
 * tensor that would pass it fails like an allocation that failed. */
int64_t nn_set_memory_limit(int64_t bytes);
size_t nn_cached_bytes(void);       /* freed large blocks kept for reuse */
void nn_empty_cache(void);          /* give them back to the system */
size_t nn_dtype_size(nn_dtype d);

/* Raw sgemm on row-major buffers (C = alpha*op(A)op(B) + beta*C). */
int nn_sgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
             float alpha, const float *a, int64_t lda, const float *b,
             int64_t ldb, float beta, float *c, int64_t ldc);
/* The same with A and B rounded to bf16 and products summed in f32: a
 * kernel of vdpbf16ps on CPUs with avx512_bf16 where it is faster than
 * sgemm on the rounded values (timed once; nn_bf16_native says which),
 * that sgemm elsewhere. nn_set_bf16_native(on) chooses (-1 if the CPU has
 * no avx512_bf16) and returns the previous choice. */
int nn_bf16_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                 float alpha, const float *a, int64_t lda, const float *b,
                 int64_t ldb, float beta, float *c, int64_t ldc);
int nn_bf16_native(void);
int nn_set_bf16_native(int on);
/* Autocast, per thread: with NN_BF16 set, linear, matmul and conv2d (and
 * attention where AMX is available), forward and backward, multiply in
 * bf16 with f32 sums; their inputs, results,
 * parameters and gradients stay f32. NN_F32 turns it off. Returns the
 * previous setting. */
nn_dtype nn_set_autocast(nn_dtype d);
nn_dtype nn_autocast(void);

/* ---- autograd ----------------------------------------------------------- */
/* Ops record a node when grad mode is on and an input requires grad;
 * nn_backward walks the recorded graph once in reverse topological order
 * and accumulates into .grad of the leaves. */
int nn_set_grad_enabled(int on);           /* returns the previous mode */
int nn_is_grad_enabled(void);
int nn_set_requires_grad(nn_tensor *t, int on); /* leaves only */
/* grad: NULL means 1 for a one-element root */
int nn_backward(nn_tensor *root, const nn_tensor *grad, int retain_graph);
nn_tensor *nn_detach(nn_tensor *t);        /* shares storage, no history */
const char *nn_grad_fn_name(const nn_tensor *t); /* NULL for leaves */
int nn_is_leaf(const nn_tensor *t);
/* anomaly mode: an op whose result or gradient holds NaN/Inf fails with
 * its name (slow: every result is scanned). Returns the previous mode. */
int nn_set_anomaly(int on);
/* Flags of nn_backward_ex and nn_grad. RETAIN_GRAPH keeps what the nodes
 * saved, for another backward; CREATE_GRAPH records the backward itself
 * (implies RETAIN_GRAPH), so gradients can be differentiated again. */
enum { NN_RETAIN_GRAPH = 1, NN_CREATE_GRAPH = 2 };
int nn_backward_ex(nn_tensor *root, const nn_tensor *grad, int flags);
/* The gradients of the n roots (weighted by grads[i]; NULL: 1 for a
 * one-element root) with respect to the m inputs, into gins[j] (NULL when
 * input j is not reached). No leaf's .grad is touched; only nodes on a
 * path to an input run. */
int nn_grad(int n, nn_tensor *const *roots, const nn_tensor *const *grads, int m,
            nn_tensor *const *inputs, nn_tensor **gins, int flags);

/* ---- callbacks from a host language --------------------------------------
 * The tape calls host code through these; ud is the host's and release(ud)
 * runs once when the engine drops it (the tensor or node is freed, the hook
 * removed, or a backward without retain_graph spent the node).
 *
 * A gradient hook sees the gradient of t (for a leaf, the sum of all that
 * reach it in one backward) and returns the gradient to use: g retained
 * to keep it, another tensor of g's shape to replace it, or NULL with an
 * error (nn_failed) to stop the backward. Hooks run in the order added. */
typedef nn_tensor *(*nn_grad_hook_fn)(void *ud, nn_tensor *g);
int nn_register_hook(nn_tensor *t, nn_grad_hook_fn fn, void *ud,
                     void (*release)(void *ud));
/* A function whose backward the host writes: outs (nout fresh tensors the
 * host computed from ins, with no history) become its outputs. backward
 * gets one gradient per output (NULL: none reached it) and fills gins[i]
 * (a new reference, or NULL for zero) for the inputs that require grad. */
typedef int (*nn_function_backward)(void *ud, int nout, nn_tensor *const *gouts, int nin,
                                    nn_tensor **gins);
int nn_record_function(const char *name, nn_function_backward backward, void *ud,
                       void (*release)(void *ud), int nin, const nn_tensor *const *ins,
                       int nout, nn_tensor *const *outs);
/* the sum of g over the dims where `shape` broadcast (g's shape) */
nn_tensor *nn_sum_to(const nn_tensor *g, int ndim, const int64_t *shape);

/* ---- lifetime and inspection ------------------------------------------ */
nn_tensor *nn_empty(nn_dtype dtype, int ndim, const int64_t *shape);
nn_tensor *nn_from_buffer(void *data, nn_dtype dtype, int ndim,
                          const int64_t *shape); /* borrowed, not copied */
/* a tensor over bytes [offset, ...) of a file, mapped copy-on-write: pages
 * are read when touched, so files larger than memory work; writes stay in
 * memory and never reach the file */
nn_tensor *nn_map_file(const char *path, uint64_t offset, nn_dtype dtype, int ndim,
                       const int64_t *shape);
nn_tensor *nn_retain(nn_tensor *t);
void nn_release(nn_tensor *t);
int64_t nn_numel(const nn_tensor *t);
int nn_is_contiguous(const nn_tensor *t);
void *nn_data(const nn_tensor *t); /* pointer to element 0 */
double nn_get(const nn_tensor *t, const int64_t *index);
int64_t nn_get_i64(const nn_tensor *t, const int64_t *index); /* exact for i64 */
void nn_set(nn_tensor *t, const int64_t *index, double v);
double nn_item(const nn_tensor *t);
int nn_same_shape(const nn_tensor *a, const nn_tensor *b);
/* writes "2x3" (or "scalar") into buf */
const char *nn_shape_str(const nn_tensor *t, char *buf, size_t n);

/* ---- creation ----------------------------------------------------------- */
nn_tensor *nn_zeros(nn_dtype dtype, int ndim, const int64_t *shape);
nn_tensor *nn_full(int ndim, const int64_t *shape, double value);
nn_tensor *nn_full_dtype(nn_dtype dtype, int ndim, const int64_t *shape,
                         double value);
nn_tensor *nn_scalar(nn_dtype dtype, double value); /* 0-dim */
nn_tensor *nn_arange(nn_dtype dtype, double start, double end, double step);
nn_tensor *nn_linspace(double start, double end, int64_t steps);
nn_tensor *nn_eye(int64_t n, int64_t m);
/* unsigned bytes (images, labels) widened to f32 or i64 */
nn_tensor *nn_from_u8(const uint8_t *data, nn_dtype dtype, int ndim,
                      const int64_t *shape);
/* (n) i64: lut[byte] for each byte (lut: a (256) i64 table) */
nn_tensor *nn_map_bytes(const uint8_t *data, size_t n, const nn_tensor *lut);
/* (256) i64: how often each byte value occurs */
nn_tensor *nn_byte_counts(const uint8_t *data, size_t n);
void nn_rng_seed(nn_rng *r, uint64_t seed);
nn_tensor *nn_rand(nn_rng *r, int ndim, const int64_t *shape);
nn_tensor *nn_randn(nn_rng *r, int ndim, const int64_t *shape);
nn_tensor *nn_randint(nn_rng *r, int64_t low, int64_t high, int ndim,
                      const int64_t *shape);
nn_tensor *nn_bernoulli(nn_rng *r, const nn_tensor *p);
/* uniform draws in [0,1) for n elements, consuming the same counters */
void nn_rng_uniform(nn_rng *r, float *out, int64_t n);

/* ---- views (share storage) --------------------------------------------- */
nn_tensor *nn_view(nn_tensor *t, int ndim, const int64_t *shape);
nn_tensor *nn_reshape(nn_tensor *t, int ndim, const int64_t *shape);
nn_tensor *nn_transpose(nn_tensor *t, int d0, int d1);
nn_tensor *nn_permute(nn_tensor *t, const int *dims);
nn_tensor *nn_narrow(nn_tensor *t, int dim, int64_t start, int64_t len);
nn_tensor *nn_slice(nn_tensor *t, int dim, int64_t start, int64_t stop,
                    int64_t step); /* [start, stop) by step > 0 */
nn_tensor *nn_select(nn_tensor *t, int dim, int64_t index);
nn_tensor *nn_expand(nn_tensor *t, int ndim, const int64_t *shape);
nn_tensor *nn_squeeze(nn_tensor *t, int dim);
nn_tensor *nn_squeeze_all(nn_tensor *t);
nn_tensor *nn_unsqueeze(nn_tensor *t, int dim);
nn_tensor *nn_contiguous(nn_tensor *t); /* t itself (retained) if already */
nn_tensor *nn_clone(const nn_tensor *t);
nn_tensor *nn_to_dtype(const nn_tensor *t, nn_dtype dtype);
int nn_copy_(nn_tensor *dst, const nn_tensor *src); /* src broadcasts */
int nn_fill_(nn_tensor *t, double v);
/* the broadcast shape of a and b into out (returns ndim, -1 on mismatch) */
int nn_broadcast_shape(const nn_tensor *a, const nn_tensor *b, int64_t *out);

/* ---- row-sparse gradients ------------------------------------------------
 * A leaf (V, D) table (embeddings, knowledge-graph entities) can keep its
 * gradient row-sparse: ops that read rows (embedding, kge_score) add into
 * the rows they used, other rows are never touched, and the sparse
 * optimizer steps update only those rows. The buffer is allocated once. */
int nn_set_sparse_grad(nn_tensor *t, int on);
int nn_has_sparse_grad(const nn_tensor *t);
/* rows touched since the last clear (0-based, first-touch order) */
int64_t nn_sparse_grad_rows(const nn_tensor *t, const int64_t **rows);
/* (V, D) buffer; only the touched rows hold gradient */
const float *nn_sparse_grad_data(const nn_tensor *t);
void nn_sparse_grad_clear(nn_tensor *t);
/* the gradient as a dense (V, D) tensor; NULL (no error) when no row is touched */
nn_tensor *nn_sparse_grad_dense(const nn_tensor *t);
/* adds n rows of data (n x D, row-major) into rows (0-based), touching
 * them; what the distributed exchange of sparse gradients sums with */
int nn_sparse_grad_add(nn_tensor *t, int64_t n, const int64_t *rows, const float *data);
/* multiplies the touched rows by s */
void nn_sparse_grad_scale(nn_tensor *t, float s);

/* ---- profiling ------------------------------------------------------------
 * Scopes entered and left on the calling thread, summed by (name, kind):
 * calls, wall time with and without the scopes inside, process CPU time
 * (over wall time: the threads that worked) and tensor bytes allocated.
 * The engine itself times every backward node (kind BACKWARD, named by its
 * op; with LAYER_BACKWARD around it when the node was recorded inside a
 * layer scope); a host times its ops and layers. Off: no cost but a flag. */
typedef enum {
    NN_PROFILE_OP,             /* an op called by the host */
    NN_PROFILE_LAYER,          /* a layer's forward */
    NN_PROFILE_BACKWARD,       /* one backward node, by op */
    NN_PROFILE_LAYER_BACKWARD, /* the backward nodes recorded in a layer */
} nn_profile_kind;
typedef struct {
    const char *name; /* interned: valid for the life of the process */
    nn_profile_kind kind;
    int64_t calls;
    double total, self;   /* wall seconds, with and without inner scopes */
    double outer;         /* the part of total not inside another scope */
    double cpu, self_cpu; /* process CPU seconds, likewise */
    int64_t bytes, self_bytes; /* tensor storage allocated */
} nn_profile_row;
extern int nn_profiling; /* read it with nn_profile_enter; set by start/stop */
void nn_profile_start(void); /* clears the rows and turns profiling on */
void nn_profile_stop(void);
/* 1 when the scope was entered (profiling is on): then nn_profile_leave */
int nn_profile_enter(const char *name, nn_profile_kind kind);
void nn_profile_leave(void);
/* a layer scope: nodes recorded inside it carry its name; *prev is the
 * enclosing layer, handed back to nn_profile_layer_leave */
int nn_profile_layer_enter(const char *name, const char **prev);
void nn_profile_layer_leave(int entered, const char *prev);
/* the rows so far (copies up to cap into out, which may be NULL); returns how many there are */
int nn_profile_rows(nn_profile_row *out, int cap);
int64_t nn_allocated_bytes(void); /* tensor storage allocated since start-up */

#ifdef __cplusplus
}
#endif

#endif
