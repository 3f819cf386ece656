/* autograd.h -- the recorded graph, shared by the op files (not installed).
 *
 * A node is one application of an op (nn_op: name, backward, context
 * size): the inputs it came from (another node, or a leaf to accumulate
 * into), the tensors its derivative reads (nothing for add, the inputs for
 * mul, the output for relu) and its typed context (dims, flags, scales).
 * An op computes its result with grad mode off, then records one node if
 * any input requires grad. */
#ifndef NN_AUTOGRAD_H
#define NN_AUTOGRAD_H

#include "internal.h"

typedef struct nn_node nn_node;

/* Fills gin[i] (shape of input i, or broadcastable to it: the core sums it
 * down) for each input i with nn_input_needs(n, i); leaves others NULL. */
typedef int (*nn_backward_fn)(nn_node *n, const nn_tensor *gout,
                              nn_tensor **gin);

/* An op, described once: its name (grad_fn, error messages), its backward
 * and the size of the typed context each of its nodes carries. */
typedef struct nn_op {
    const char *name;
    nn_backward_fn backward;
    size_t ctx_size;
} nn_op;

#define NN_OP(var, name, backward, ctx_type) \
    static const nn_op var = {name, backward, sizeof(ctx_type)}
#define NN_OP_NO_CTX(var, name, backward) static const nn_op var = {name, backward, 0}

#define NN_NODE_SAVED 6

typedef struct nn_node_input {
    struct nn_node *node;  /* the input's op, or NULL */
    nn_tensor *leaf;       /* or the leaf to accumulate into, or NULL */
    nn_dtype dtype;
    int ndim;
    int64_t shape[NN_MAX_DIMS];
} nn_node_input;

struct nn_node {
    const nn_op *op;
    int refcount;
    int freed;                     /* saved tensors released by backward */
    /* tensors the derivative reads, by slot (NULL: not saved), as detached
     * aliases (no tensor -> node -> tensor cycle) with their versions */
    nn_tensor *saved[NN_NODE_SAVED];
    uint64_t saved_version[NN_NODE_SAVED];
    void *ctx;                     /* op->ctx_size bytes, zeroed */
    /* during backward */
    nn_tensor *gacc;
    int pending;
    int nin;
    nn_node_input in[];
};

/* the typed context of a node */
#define NN_CTX(n, type) ((type *)(n)->ctx)

/* true when grad mode is on and one of the n inputs requires grad */
bool nn_needs_grad(int n, const nn_tensor *const *ins);
/* Saves t in slot i for the derivative (an in-place change of t before
 * backward is then an error). Save only what the derivative reads. */
int nn_save(nn_node *n, int slot, const nn_tensor *t);
/* the tensor in slot i, or NULL with an error if it was modified in place */
nn_tensor *nn_saved(nn_node *n, int slot);
static inline bool nn_input_needs(const nn_node *n, int i) {
    return n->in[i].node || n->in[i].leaf;
}
void nn_node_release(nn_node *n);

/* Grad mode off for the span of an op's own computation. */
static inline int nn_grad_off(void) { return nn_set_grad_enabled(0); }
static inline void nn_grad_restore(int prev) { nn_set_grad_enabled(prev); }

/* Records a node of op for out when an input requires grad (*node: it, or
 * NULL); on failure releases out and returns NULL. */
nn_tensor *nn_finish_op(nn_tensor *out, const nn_op *op, int n,
                        const nn_tensor *const *ins, nn_node **node);
/* nn_finish_op that also saves keep (an index, a mask; NULL for none) in
 * slot 0; the caller fills the context through *node. */
nn_tensor *nn_finish_saving(nn_tensor *out, const nn_op *op, int n,
                            const nn_tensor *const *ins, const nn_tensor *keep,
                            nn_node **node);

/* Row-sparse gradient accumulation (rowgrad.c). */
struct nn_rowgrad {
    float *buf;        /* (V, D); a row is valid once touched */
    uint8_t *touched;  /* (V) */
    int64_t *rows;     /* touched rows, first-touch order */
    int64_t nrows, v, d;
};
/* input i's leaf keeps row-sparse gradients: its accumulator, else NULL */
struct nn_rowgrad *nn_input_rowgrad(nn_node *n, int i);
/* marks the rows idx[k] - base (k < n) touched, zeroing new ones; serial */
void nn_rowgrad_touch(struct nn_rowgrad *rg, const int64_t *idx, int64_t n,
                      int64_t base);
void nn_rowgrad_free(struct nn_rowgrad *rg);

#endif
