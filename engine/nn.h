/*
 * nn.h -- the nnlua engine: tensors and their kernels, in C11, with no Lua.
 *
 * A worked example (error checks elided; every call that can fail on user
 * input returns NULL or -1 and leaves a message in nn_last_error()):
 *
 *     nn_rng rng;
 *     nn_rng_seed(&rng, 42);
 *     int64_t shape[2] = {2, 3};
 *     nn_tensor *x = nn_randn(&rng, 2, shape);        // (2, 3) normal
 *     nn_tensor *w = nn_full(1, (int64_t[]){3}, 0.5); // (3,)
 *     nn_tensor *y = nn_mul(x, w);                    // broadcast: (2, 3)
 *     nn_tensor *s = nn_sum(y, 0, NULL, 0);           // all dims: ()
 *     printf("%g\n", nn_item(s));
 *     nn_release(x); nn_release(w); nn_release(y); nn_release(s);
 *
 * Conventions
 *  - Tensors are refcounted. A function returning nn_tensor* gives the caller
 *    one reference; drop it with nn_release(). Views share storage.
 *  - Dimensions are 0-based here; negative dims count from the end.
 *  - Index tensors (i64) are counted from `base`: the Lua bindings pass 1
 *    (Lua counts from 1), C callers usually pass 0. Ops that return indices
 *    (argmax, topk, sort) add `base` to what they return.
 *  - Comparisons return f32 tensors of 0 and 1; a mask is any tensor whose
 *    nonzero elements mean "true".
 *  - BLAS is OpenBLAS loaded with dlopen after choosing its kernel set
 *    (see nn_init); threads are set with nn_set_num_threads().
 */
#ifndef NN_H
#define NN_H

#include <stddef.h>
#include <stdint.h>

#define NN_MAX_DIMS 8

typedef enum { NN_F32 = 0, NN_I64 = 1, NN_DTYPE_COUNT } nn_dtype;

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
} nn_storage;

struct nn_node;

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

/* ---- elementwise -------------------------------------------------------- */
typedef enum {
    NN_NEG, NN_ABS, NN_EXP, NN_LOG, NN_SQRT, NN_RSQRT, NN_SIN, NN_COS,
    NN_TANH, NN_SIGMOID, NN_RELU, NN_GELU, NN_SILU, NN_FLOOR, NN_CEIL,
    NN_ROUND, NN_SIGN, NN_RECIPROCAL, NN_SQUARE, NN_LOG1P, NN_EXPM1,
    NN_GELU_TANH, NN_CLAMP, NN_LEAKY_RELU, NN_UNARY_COUNT
} nn_unary_op;

typedef enum {
    NN_ADD, NN_SUB, NN_MUL, NN_DIV, NN_POW, NN_MAXIMUM, NN_MINIMUM,
    NN_REMAINDER, NN_ATAN2, NN_FLOOR_DIVIDE, NN_EQ, NN_NE, NN_LT, NN_LE, NN_GT,
    NN_GE,
    NN_BINARY_COUNT
} nn_binary_op;

extern const char *const nn_unary_names[NN_UNARY_COUNT];
extern const char *const nn_binary_names[NN_BINARY_COUNT];

/* p0, p1: the bounds of NN_CLAMP, the slope of NN_LEAKY_RELU */
nn_tensor *nn_unary(nn_unary_op op, const nn_tensor *x, double p0, double p1);
int nn_unary_(nn_unary_op op, nn_tensor *x, double p0, double p1);
nn_tensor *nn_binary(nn_binary_op op, const nn_tensor *a, const nn_tensor *b);
int nn_binary_(nn_binary_op op, nn_tensor *a, const nn_tensor *b);
nn_tensor *nn_add(const nn_tensor *a, const nn_tensor *b);
nn_tensor *nn_mul(const nn_tensor *a, const nn_tensor *b);
nn_tensor *nn_where(const nn_tensor *cond, const nn_tensor *a,
                    const nn_tensor *b);
/* the broadcast shape of a and b into out (returns ndim, -1 on mismatch) */
int nn_broadcast_shape(const nn_tensor *a, const nn_tensor *b, int64_t *out);

/* ---- reductions --------------------------------------------------------- */
typedef enum {
    NN_SUM, NN_MEAN, NN_PROD, NN_MAX, NN_MIN, NN_ARGMAX, NN_ARGMIN,
    NN_VAR, NN_STD, NN_LOGSUMEXP, NN_NORM, NN_REDUCE_COUNT
} nn_reduce_op;

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

/* ---- linear algebra ----------------------------------------------------- */
/* NumPy matmul semantics: 1-D operands promoted, batch dims broadcast. */
nn_tensor *nn_matmul(const nn_tensor *a, const nn_tensor *b);

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

/* ---- layers (fused ops with hand-written backward) ------------------------ */
/* x (..., I) @ W (O, I)^T + b (O, or NULL) -> (..., O) */
nn_tensor *nn_linear(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b);
/* normalise the last nnorm dims; w, b (their product) or NULL */
nn_tensor *nn_layer_norm(const nn_tensor *x, int nnorm, const nn_tensor *w,
                         const nn_tensor *b, double eps);
nn_tensor *nn_rms_norm(const nn_tensor *x, int nnorm, const nn_tensor *w,
                       double eps);
/* idx (...) counted from base, W (V, D) -> (..., D); rows equal to
 * padding_idx get no gradient (pass a value outside the table for none) */
nn_tensor *nn_embedding(const nn_tensor *idx, const nn_tensor *w,
                        int64_t padding_idx, int64_t base);
/* rescale the rows idx uses to p-norm <= max_norm, in place */
int nn_embedding_renorm_(nn_tensor *w, const nn_tensor *idx, double max_norm,
                         double p, int64_t base);
/* x with elements zeroed with probability p, the rest scaled by 1/(1-p) */
nn_tensor *nn_dropout(nn_rng *r, const nn_tensor *x, double p, int training);
/* logits (N, C); target (N) i64 indices or (N, C) f32 probabilities;
 * weight (C) or NULL; reduction 0 none, 1 mean, 2 sum */
nn_tensor *nn_cross_entropy(const nn_tensor *logits, const nn_tensor *target,
                            const nn_tensor *weight, int64_t ignore_index,
                            double label_smoothing, int reduction, int64_t base);

/* x (N, C, H, W), w (O, C, KH, KW), b (O) or NULL; stride, padding and
 * dilation are {h, w} pairs */
nn_tensor *nn_conv2d(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                     const int *stride, const int *padding, const int *dilation);
nn_tensor *nn_max_pool2d(const nn_tensor *x, const int *kernel, const int *stride,
                         const int *padding);
nn_tensor *nn_avg_pool2d(const nn_tensor *x, const int *kernel, const int *stride,
                         const int *padding);

/* Cross-modal fusion (fusion.c). gated_fusion: h, g (B, M, D) per-modality
 * pre-activations and gate logits, mask (B, M) f32 or NULL (0 = missing) ->
 * sum_m softmax_m(g) tanh(h_m) (B, D). mfb_pool: a, b (B, D*factor) ->
 * L2-normalised signed sqrt of the factor-group sums of a*b (B, D). */
#define NN_FUSION_MAX_MODALITIES 16
nn_tensor *nn_gated_fusion(const nn_tensor *h, const nn_tensor *g,
                           const nn_tensor *mask);
nn_tensor *nn_mfb_pool(const nn_tensor *a, const nn_tensor *b, int64_t factor);

/* Knowledge-graph embedding scores (kge.c). E (V, de) entities, R (NR, dr)
 * relations; anchor, rel (B) i64; cand (B, N) per query or (N) shared, i64;
 * indices count from base. Scores (B, N) of (anchor, rel, cand) when head
 * is 0, of (cand, rel, anchor) when head is 1. TransE and DistMult: de =
 * dr; ComplEx: de = dr = 2k ([re | im]); RotatE: de = 2k, dr = k phases
 * (radians = phase * value). Scores of true triples: cand = tails (B, 1). */
typedef enum { NN_KGE_TRANSE, NN_KGE_DISTMULT, NN_KGE_COMPLEX, NN_KGE_ROTATE } nn_kge_model;
typedef struct {
    nn_kge_model model;
    double gamma; /* TransE, RotatE: score = gamma - distance */
    int p;        /* TransE's norm: 1 or 2 */
    int head;     /* candidates replace the head */
    double phase; /* RotatE */
} nn_kge_args;
nn_tensor *nn_kge_score(const nn_tensor *E, const nn_tensor *R, const nn_tensor *anchor,
                        const nn_tensor *rel, const nn_tensor *cand,
                        const nn_kge_args *a, int64_t base);

/* Scaled dot-product attention: q (B, H, Tq, D), k (B, H, Tk, D), v (B, H,
 * Tk, Dv) -> (B, H, Tq, Dv). k and v may broadcast over B and H (size 1).
 * mask: additive f32 broadcastable to (B, H, Tq, Tk) (-inf blocks) or NULL;
 * causal: query i sees keys j <= Tk - Tq + i; scale 0 means 1/sqrt(D);
 * dropout on the weights when training. weights, when not NULL, receives
 * the (B, H, Tq, Tk) weights (before dropout); otherwise memory stays
 * linear in the sequence length. */
typedef struct {
    const nn_tensor *mask;
    int causal;
    double scale, dropout;
    int training;
    nn_rng *rng;
} nn_attention_args;
nn_tensor *nn_attention(const nn_tensor *q, const nn_tensor *k, const nn_tensor *v,
                        const nn_attention_args *a, nn_tensor **weights);

/* ---- optimizer steps (in place; PyTorch 1.13's formulas) ------------------ */
typedef struct {
    double lr, momentum, dampening, weight_decay;
    int nesterov, maximize, first_step; /* first_step: buf = d */
} nn_sgd_args;
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t step;     /* counts from 1 */
    int decoupled;    /* AdamW's weight decay */
    int maximize;
} nn_adam_args;
typedef struct {
    double lr, alpha, eps, weight_decay, momentum;
} nn_rmsprop_args;
typedef struct {
    double lr, lr_decay, weight_decay, eps;
    int64_t step;
} nn_adagrad_args;
/* buf/vmax/avg may be NULL (no momentum / no amsgrad / not centered).
 * Adam and Adagrad take g NULL for p's row-sparse gradient: only its
 * touched rows (and their state) are updated. */
int nn_sgd_step(nn_tensor *p, const nn_tensor *g, nn_tensor *buf,
                const nn_sgd_args *a);
int nn_adam_step(nn_tensor *p, const nn_tensor *g, nn_tensor *m, nn_tensor *v,
                 nn_tensor *vmax, const nn_adam_args *a);
int nn_rmsprop_step(nn_tensor *p, const nn_tensor *g, nn_tensor *sq,
                    nn_tensor *buf, nn_tensor *avg, const nn_rmsprop_args *a);
int nn_adagrad_step(nn_tensor *p, const nn_tensor *g, nn_tensor *sum,
                    const nn_adagrad_args *a);

/* ---- files replaced atomically (atomic.c) ------------------------------------ */
/* Writes n bytes to path through a unique temporary file, fsynced and
 * renamed: a crash leaves the old file or the new one. */
int nn_write_file_atomic(const char *path, const void *data, size_t n);

/* ---- checkpoints (safetensors) --------------------------------------------- */
/* Writes n named tensors (F32/I64) and string metadata atomically: a
 * temporary file, flushed and fsync'ed, renamed over path. */
int nn_safetensors_save(const char *path, int n, const char *const *names,
                        nn_tensor *const *ts, int nmeta, const char *const *meta_keys,
                        const char *const *meta_values);
typedef struct {
    int n, nmeta;
    char **names;
    nn_tensor **tensors;
    char **meta_keys, **meta_values;
} nn_safetensors;
/* Reads a file, rejecting any malformed, lying or truncated header. */
nn_safetensors *nn_safetensors_load(const char *path);
void nn_safetensors_free(nn_safetensors *st);

/* ---- batches prefetched by a background thread ------------------------------ */
typedef struct nn_prefetch nn_prefetch;
typedef struct {
    int source;  /* which tensor holds the (N, C, H, W) images */
    int flip;    /* random horizontal flips */
    int shift;   /* random shifts of up to this many pixels */
} nn_prefetch_augment;
/* rows order[i] - base of every source, batch rows at a time; aug may be
 * NULL; rng (for augmentation) advances by the number of samples */
nn_prefetch *nn_prefetch_start(nn_tensor *const *src, int nsrc, const nn_tensor *order,
                               int64_t base, int64_t batch, int drop_last, int depth,
                               const nn_prefetch_augment *aug, nn_rng *rng);
/* 1: out[0..nsrc) hold the next batch (the caller owns them); 0: done */
int nn_prefetch_next(nn_prefetch *p, nn_tensor **out);
int64_t nn_prefetch_batches(const nn_prefetch *p);
void nn_prefetch_stop(nn_prefetch *p);

/* ---- byte-level BPE tokenizer ---------------------------------------------- */
/* ids 0..255 are bytes; merge r makes id 256 + r from two earlier ids */
typedef struct nn_bpe nn_bpe;
nn_bpe *nn_bpe_train(const uint8_t *text, size_t n, int vocab_size);
nn_bpe *nn_bpe_from_merges(const int32_t *pairs, int nmerges); /* 2 per merge */
const int32_t *nn_bpe_merges(const nn_bpe *b, int *nmerges);
int nn_bpe_vocab_size(const nn_bpe *b);
/* *ids (malloc'ed, the caller frees) receives *count ids */
int nn_bpe_encode(nn_bpe *b, const uint8_t *text, size_t n, int64_t **ids, size_t *count);
int nn_bpe_decode(const nn_bpe *b, const int64_t *ids, size_t n, uint8_t **text,
                  size_t *len);
void nn_bpe_free(nn_bpe *b);

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
nn_tensor *nn_one_hot(const nn_tensor *index, int64_t classes, int64_t base);
nn_tensor *nn_tril(const nn_tensor *x, int64_t k, int upper);

/* ---- joining and splitting --------------------------------------------- */
nn_tensor *nn_cat(nn_tensor *const *ts, int n, int dim);
nn_tensor *nn_stack(nn_tensor *const *ts, int n, int dim);
/* views of consecutive pieces of `sizes[i]` along dim */
int nn_split(nn_tensor *t, int dim, const int64_t *sizes, int n,
             nn_tensor **out);

/* ---- ordering ----------------------------------------------------------- */
int nn_sort(const nn_tensor *x, int dim, int descending, int64_t base,
            nn_tensor **values, nn_tensor **indices);
int nn_topk(const nn_tensor *x, int64_t k, int dim, int largest,
            int64_t base, nn_tensor **values, nn_tensor **indices);
/* 1 where an element of x equals some element of test, else 0 (f32, x's
 * shape; not differentiable) */
nn_tensor *nn_isin(const nn_tensor *x, const nn_tensor *test);

#endif
