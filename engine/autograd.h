/* autograd.h -- the recorded graph, shared by the op files (not installed).
 *
 * A node is the op that made a tensor: its backward function, the inputs
 * it came from (another node, or a leaf to accumulate into), the tensors
 * it saved (detached aliases, so no tensor -> node -> tensor cycle) with
 * their versions, and small arguments. An op computes its result with grad
 * mode off, then records one node if any input requires grad. */
#ifndef NN_AUTOGRAD_H
#define NN_AUTOGRAD_H

#include "internal.h"

typedef struct nn_node nn_node;

/* Fills gin[i] (shape of input i, or broadcastable to it: the core sums it
 * down) for each input i with nn_input_needs(n, i); leaves others NULL. */
typedef int (*nn_backward_fn)(nn_node *n, const nn_tensor *gout,
                              nn_tensor **gin);

#define NN_NODE_SAVED 6

typedef struct nn_node_input {
    struct nn_node *node;  /* the input's op, or NULL */
    nn_tensor *leaf;       /* or the leaf to accumulate into, or NULL */
    nn_dtype dtype;
    int ndim;
    int64_t shape[NN_MAX_DIMS];
} nn_node_input;

struct nn_node {
    const char *name;
    nn_backward_fn backward;
    int refcount;
    int freed;                     /* saved tensors released by backward */
    int nsaved;
    nn_tensor *saved[NN_NODE_SAVED];
    uint64_t saved_version[NN_NODE_SAVED];
    int iarg[NN_MAX_DIMS + 4];
    int64_t larg[NN_MAX_DIMS];
    double farg[4];
    /* during backward */
    nn_tensor *gacc;
    int pending;
    int nin;
    nn_node_input in[];
};

/* true when grad mode is on and one of the n inputs requires grad */
bool nn_needs_grad(int n, const nn_tensor *const *ins);
/* Makes out the result of a new node over ins; NULL on failure (out is
 * left untouched and the caller releases it). */
nn_node *nn_record(nn_tensor *out, const char *name, nn_backward_fn fn,
                   int n, const nn_tensor *const *ins);
int nn_save(nn_node *n, const nn_tensor *t);
/* a saved tensor, or NULL with an error if it was modified in place */
nn_tensor *nn_saved(nn_node *n, int i);
static inline bool nn_input_needs(const nn_node *n, int i) {
    return n->in[i].node || n->in[i].leaf;
}
void nn_node_release(nn_node *n);

/* Grad mode off for the span of an op's own computation. */
static inline int nn_grad_off(void) { return nn_set_grad_enabled(0); }
static inline void nn_grad_restore(int prev) { nn_set_grad_enabled(prev); }

/* Records a node for out if needed; on failure releases out, returns NULL. */
nn_tensor *nn_finish_op(nn_tensor *out, const char *name, nn_backward_fn fn,
                        int n, const nn_tensor *const *ins, nn_node **node);
/* nn_finish_op for an op whose backward needs one tensor it keeps (an index,
 * a mask; NULL for none) and sets iarg[0] = dim, larg[0] = base,
 * iarg[1] = flag, farg[0] = scale on its node. */
nn_tensor *nn_finish_keeping(nn_tensor *out, const char *name,
                             nn_backward_fn fn, int n,
                             const nn_tensor *const *ins,
                             const nn_tensor *keep, int dim, int64_t base,
                             int flag, double scale);

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
