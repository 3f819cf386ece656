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
    /* optional: frees what the context owns (a host function's callback) */
    void (*release)(nn_node *n);
    /* the backward a create_graph backward runs, built of engine ops so
     * that it records itself (NULL: the op has no double backward) */
    nn_backward_fn backward_graph;
} nn_op;

#define NN_OP(var, name, backward, ctx_type) \
    static const nn_op var = {name, backward, sizeof(ctx_type), NULL, NULL}
#define NN_OP_NO_CTX(var, name, backward) \
    static const nn_op var = {name, backward, 0, NULL, NULL}
/* an op whose backward is already built of engine ops: it serves both */
#define NN_OP_TWICE(var, name, backward, ctx_type) \
    static const nn_op var = {name, backward, sizeof(ctx_type), NULL, backward}
#define NN_OP_TWICE_NO_CTX(var, name, backward) \
    static const nn_op var = {name, backward, 0, NULL, backward}
/* an op with a kernel backward and a second one, of engine ops */
#define NN_OP_GRAPH(var, name, backward, backward_graph, ctx_type) \
    static const nn_op var = {name, backward, sizeof(ctx_type), NULL, backward_graph}
#define NN_OP_GRAPH_NO_CTX(var, name, backward, backward_graph) \
    static const nn_op var = {name, backward, 0, NULL, backward_graph}

#define NN_NODE_SAVED 6

typedef struct nn_node_input {
    struct nn_node *node;  /* the input's op, or NULL */
    int out;               /* which of node's outputs the input is */
    nn_tensor *leaf;       /* or the leaf to accumulate into, or NULL */
    nn_dtype dtype;
    int ndim;
    int64_t shape[NN_MAX_DIMS];
} nn_node_input;

/* a gradient hook on a node's output or on a leaf (nn_register_hook) */
typedef struct nn_hook {
    nn_grad_hook_fn fn;
    void *ud;
    void (*release)(void *ud);
    int out;
    struct nn_hook *next;
} nn_hook;

struct nn_node {
    const nn_op *op;
    const char *name;              /* NULL: op->name */
    const char *layer;             /* the layer scope it was recorded in (profiling) */
    int refcount;
    int freed;                     /* spent by a backward without retain_graph */
    /* tensors the derivative reads, by slot (NULL: not saved), with their
     * versions. A node's own output is kept as a detached alias (no
     * tensor -> node -> tensor cycle; bit set in saved_out), anything
     * else as itself, so a create_graph backward can differentiate it. */
    nn_tensor *saved[NN_NODE_SAVED];
    uint64_t saved_version[NN_NODE_SAVED];
    unsigned saved_out;
    nn_tensor *reattached[NN_NODE_SAVED]; /* create_graph: outputs given history */
    void *ctx;                     /* op->ctx_size bytes, zeroed */
    nn_hook *hooks;                /* on the outputs, in registration order */
    /* during backward */
    nn_tensor **gacc;              /* one per output */
    nn_tensor *const *gouts;       /* all of them while backward runs */
    int pending, nout;
    unsigned char needed;          /* nn_grad: on a path to an input asked for */
    int nin;
    nn_node_input in[];
};

/* the typed context of a node */
#define NN_CTX(n, type) ((type *)(n)->ctx)

/* anomaly mode: -1 with an error naming the op when t holds NaN/Inf */
int nn_check_finite(const nn_tensor *t, const char *name, const char *what);
/* true when grad mode is on and one of the n inputs requires grad */
bool nn_needs_grad(int n, const nn_tensor *const *ins);
/* Saves t in slot i for the derivative (an in-place change of t before
 * backward is then an error). Save only what the derivative reads. */
int nn_save(nn_node *n, int slot, const nn_tensor *t);
/* the tensor in slot i, or NULL with an error if it was modified in place;
 * in a create_graph backward it carries its history (a node's own output
 * is reattached to the node), so a backward built of engine ops records */
nn_tensor *nn_saved(nn_node *n, int slot);
/* true while a create_graph backward runs this thread's backward fns */
bool nn_creating_graph(void);
void nn_set_creating_graph(int delta);
/* releases the aliases nn_saved made for a create_graph backward */
void nn_drop_reattached(nn_node *n);
static inline bool nn_input_needs(const nn_node *n, int i) {
    return n->in[i].node || n->in[i].leaf;
}
void nn_node_release(nn_node *n);
/* what a node holds for its backward (saved tensors, hooks, the op's
 * context): released by a backward without retain_graph */
void nn_node_spend(nn_node *n);
/* Records one node of op with nout outputs (each then holds a reference);
 * NULL with an error on failure. */
nn_node *nn_record(const nn_op *op, int nin, const nn_tensor *const *ins, int nout,
                   nn_tensor *const *outs);

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

/* the same saving a and b in slots 0 and 1 (an input and a weight) */
nn_tensor *nn_finish_saving2(nn_tensor *out, const nn_op *op, int n, const nn_tensor *const *ins,
                             const nn_tensor *a, const nn_tensor *b, nn_node **node);

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
