/* autograd.c -- recording, and the backward walk.
 *
 * backward(root): collect the nodes reachable from root, count for each
 * how many consumers will send it a gradient, then process nodes whose
 * count reached zero (a reverse topological order), calling each node's
 * backward once with the sum of its output gradients. Leaves accumulate
 * into .grad. Unless retain_graph, saved tensors are released as soon as
 * their node ran, and running it again is an error. */
#include "autograd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local int grad_disabled;
static _Thread_local int anomaly;

int nn_set_anomaly(int on) {
    int prev = anomaly;
    anomaly = on != 0;
    return prev;
}

/* In anomaly mode every op's result (and every gradient) is checked; the
 * first non-finite value names the op that made it. */
static int finite_or_fail(const nn_tensor *t, const char *name, const char *what) {
    if (!anomaly || !t || t->dtype != NN_F32) return 0;
    anomaly = 0; /* the copy below is an op too: do not check it */
    nn_tensor *c = nn_contiguous((nn_tensor *)t);
    anomaly = 1;
    if (!c) return -1;
    const float *v = nn_data(c);
    int64_t n = nn_numel(c), bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (!isfinite(v[i])) bad = i;
    float x = bad >= 0 ? v[bad] : 0;
    nn_release(c);
    if (bad < 0) return 0;
    return nn_failed(0, "anomaly: %s produced %s %s (element %lld)", name,
                     x != x ? "NaN" : "Inf", what, (long long)bad + 1);
}

int nn_set_grad_enabled(int on) {
    int prev = !grad_disabled;
    grad_disabled = !on;
    return prev;
}

int nn_is_grad_enabled(void) { return !grad_disabled; }

int nn_is_leaf(const nn_tensor *t) { return t->node == NULL; }

const char *nn_grad_fn_name(const nn_tensor *t) {
    return t->node ? t->node->op->name : NULL;
}

int nn_set_requires_grad(nn_tensor *t, int on) {
    if (t->node)
        return nn_failed(1, "requires_grad can only be changed on leaf tensors "
                            "(this one was made by %s): use detach()", t->node->op->name);
    if (on && t->dtype != NN_F32)
        return nn_failed(1, "only f32 tensors can require gradients");
    t->requires_grad = on != 0;
    return 0;
}

bool nn_needs_grad(int n, const nn_tensor *const *ins) {
    if (grad_disabled) return false;
    for (int i = 0; i < n; i++)
        if (ins[i] && ins[i]->requires_grad) return true;
    return false;
}

/* the node and its context in one allocation, the context aligned */
static nn_node *record(nn_tensor *out, const nn_op *op, int n, const nn_tensor *const *ins) {
    size_t head = sizeof(nn_node) + (size_t)n * sizeof(nn_node_input);
    size_t align = _Alignof(max_align_t);
    head = (head + align - 1) / align * align;
    nn_node *node = calloc(1, head + op->ctx_size);
    if (!node) return nn_fail(0, "out of memory recording %s", op->name);
    node->op = op;
    node->ctx = op->ctx_size ? (char *)node + head : NULL;
    node->refcount = 1;
    node->nin = n;
    for (int i = 0; i < n; i++) {
        const nn_tensor *t = ins[i];
        nn_node_input *in = &node->in[i];
        if (!t) continue;
        in->dtype = t->dtype;
        in->ndim = t->ndim;
        memcpy(in->shape, t->shape, sizeof in->shape);
        if (!t->requires_grad) continue;
        if (t->node) {
            in->node = t->node;
            t->node->refcount++;
        } else {
            in->leaf = nn_retain((nn_tensor *)t);
        }
    }
    out->node = node;
    out->requires_grad = 1;
    return node;
}

nn_tensor *nn_finish_op(nn_tensor *out, const nn_op *op, int n,
                        const nn_tensor *const *ins, nn_node **node) {
    if (node) *node = NULL;
    if (finite_or_fail(out, op->name, "in its output") < 0) {
        nn_release(out);
        return NULL;
    }
    if (!out || !nn_needs_grad(n, ins)) return out;
    nn_node *nd = record(out, op, n, ins);
    if (!nd) {
        nn_release(out);
        return NULL;
    }
    if (node) *node = nd;
    return out;
}

nn_tensor *nn_finish_saving(nn_tensor *out, const nn_op *op, int n,
                            const nn_tensor *const *ins, const nn_tensor *keep,
                            nn_node **node) {
    out = nn_finish_op(out, op, n, ins, node);
    if (*node && keep && nn_save(*node, 0, keep) < 0) {
        nn_release(out);
        *node = NULL;
        return NULL;
    }
    return out;
}

int nn_save(nn_node *n, int slot, const nn_tensor *t) {
    if (slot < 0 || slot >= NN_NODE_SAVED || n->saved[slot])
        return nn_failed(0, "internal: %s saves slot %d twice", n->op->name, slot);
    nn_tensor *alias = nn_detach((nn_tensor *)t);
    if (!alias) return -1;
    n->saved_version[slot] = t->storage->version;
    n->saved[slot] = alias;
    return 0;
}

nn_tensor *nn_saved(nn_node *n, int slot) {
    nn_tensor *t = n->saved[slot];
    if (!t) return nn_fail(0, "internal: %s reads slot %d, which it did not save",
                           n->op->name, slot);
    if (t->storage->version != n->saved_version[slot])
        return nn_fail(0, "a tensor saved by %s for the backward pass was "
                          "modified in place (version %llu, now %llu): use an "
                          "out-of-place op, or clone() before modifying", n->op->name,
                       (unsigned long long)n->saved_version[slot],
                       (unsigned long long)t->storage->version);
    return t;
}

static void free_saved(nn_node *n) {
    for (int i = 0; i < NN_NODE_SAVED; i++) {
        if (!n->saved[i]) continue;
        nn_release(n->saved[i]);
        n->saved[i] = NULL;
        n->freed = 1;
    }
}

/* Releases a node; its input nodes are released iteratively, not by
 * recursion, so a graph a million ops deep cannot overflow the C stack. */
void nn_node_release(nn_node *n) {
    nn_node **stack = NULL;
    size_t len = 0, cap = 0;
    while (n) {
        if (--n->refcount == 0) {
            free_saved(n);
            nn_release(n->gacc);
            for (int i = 0; i < n->nin; i++) {
                nn_release(n->in[i].leaf);
                nn_node *child = n->in[i].node;
                if (!child) continue;
                if (len == cap) {
                    cap = cap ? 2 * cap : 64;
                    nn_node **grown = realloc(stack, cap * sizeof *stack);
                    if (!grown) { child->refcount--; continue; } /* leaks, never crashes */
                    stack = grown;
                }
                stack[len++] = child;
            }
            free(n);
        }
        n = len ? stack[--len] : NULL;
    }
    free(stack);
}

nn_tensor *nn_detach(nn_tensor *t) {
    return nn_make_view(t, t->ndim, t->shape, t->stride, t->offset);
}

/* g summed over the dims where shape is 1 (or absent), accumulating in
 * double: the rows of contiguous g are added into their output row, or
 * summed into their output element when the last dim is reduced */
nn_tensor *nn_sum_to(const nn_tensor *g, int ndim, const int64_t *shape) {
    int lead = g->ndim - ndim;
    if (lead < 0 || g->dtype != NN_F32) return nn_fail(0, "gradient has fewer dims than its input");
    int64_t ostride[NN_MAX_DIMS], stride = 1;
    for (int d = g->ndim - 1; d >= 0; d--) {
        int64_t want = d < lead ? 1 : shape[d - lead];
        if (want != g->shape[d] && want != 1)
            return nn_fail(0, "internal: a gradient does not broadcast to its input");
        ostride[d] = want == 1 ? 0 : stride;
        stride *= want;
    }
    nn_tensor *gc = nn_contiguous((nn_tensor *)g);
    nn_tensor *out = gc ? nn_empty(NN_F32, ndim, shape) : NULL;
    double *acc = out ? calloc((size_t)nn_numel(out) + 1, sizeof *acc) : NULL;
    if (!acc) {
        nn_release(gc);
        nn_release(out);
        return out ? nn_fail(0, "out of memory") : NULL;
    }
    int last = g->ndim - 1;
    int64_t len = g->ndim ? g->shape[last] : 1, rows = len ? nn_numel(gc) / len : 0;
    int64_t idx[NN_MAX_DIMS] = {0}, off = 0;
    const float *src = nn_data(gc);
    bool reduce_last = g->ndim == 0 || ostride[last] == 0;
    for (int64_t r = 0; r < rows; r++, src += len) {
        if (reduce_last) {
            double s = 0;
            for (int64_t j = 0; j < len; j++) s += src[j];
            acc[off] += s;
        } else {
            for (int64_t j = 0; j < len; j++) acc[off + j] += src[j];
        }
        for (int d = last - 1; d >= 0; d--) { /* next row's output offset */
            off += ostride[d];
            if (++idx[d] < g->shape[d]) break;
            off -= ostride[d] * idx[d];
            idx[d] = 0;
        }
    }
    float *o = nn_data(out);
    for (int64_t i = 0; i < nn_numel(out); i++) o[i] = (float)acc[i];
    free(acc);
    nn_release(gc);
    return out;
}

/* ---- the backward walk ---------------------------------------------------- */

typedef struct { nn_node **v; size_t n, cap; } node_list;

static int push(node_list *l, nn_node *x) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        nn_node **v = realloc(l->v, cap * sizeof *v);
        if (!v) return nn_failed(0, "out of memory in backward");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = x;
    return 0;
}

/* every node reachable from root, with pending = number of edges into it */
static int collect(nn_node *root, node_list *all) {
    node_list stack = {0};
    int rc = push(&stack, root);
    root->pending = -1; /* visited marker while collecting */
    if (rc == 0) rc = push(all, root);
    while (rc == 0 && stack.n) {
        nn_node *n = stack.v[--stack.n];
        for (int i = 0; i < n->nin && rc == 0; i++) {
            nn_node *c = n->in[i].node;
            if (!c) continue;
            if (c->pending == 0) { /* first visit */
                c->pending = -1;
                rc = push(&stack, c);
                if (rc == 0) rc = push(all, c);
            }
        }
    }
    free(stack.v);
    for (size_t i = 0; i < all->n; i++) all->v[i]->pending = 0;
    for (size_t i = 0; i < all->n; i++)
        for (int k = 0; k < all->v[i]->nin; k++)
            if (all->v[i]->in[k].node) all->v[i]->in[k].node->pending++;
    return rc;
}

/* a += g for same-shaped f32 tensors, a contiguous */
static int add_into(nn_tensor *a, const nn_tensor *g) {
    nn_tensor *gc = nn_contiguous((nn_tensor *)g);
    if (!gc) return -1;
    float *o = nn_data(a);
    const float *x = nn_data(gc);
    int64_t n = nn_numel(a);
#pragma omp parallel for simd if (n > NN_PAR_GRAIN)
    for (int64_t i = 0; i < n; i++) o[i] += x[i];
    nn_release(gc);
    nn_bump_version(a);
    return 0;
}

/* whether t's memory is t's alone (no other reference, no view) */
static bool exclusive(const nn_tensor *t) {
    return t->refcount == 1 && t->storage->refcount == 1 && t->storage->owns == 1 &&
           t->dtype == NN_F32 && nn_is_contiguous(t);
}

/* Sums a node's incoming gradients in place: the first one is kept as
 * given, and copied once only if it is shared when the second arrives. */
static int accumulate(nn_tensor **acc, nn_tensor *g) {
    if (!*acc) {
        *acc = nn_retain(g);
        return 0;
    }
    if (!exclusive(*acc)) {
        nn_tensor *c = nn_clone(*acc);
        if (!c) return -1;
        nn_release(*acc);
        *acc = c;
    }
    return add_into(*acc, g);
}

static int accumulate_leaf(nn_tensor *leaf, nn_tensor *g) {
    if (!leaf->grad) {
        leaf->grad = nn_clone(g); /* always a fresh, contiguous tensor */
        return leaf->grad ? 0 : -1;
    }
    if (!nn_same_shape(leaf->grad, g) || leaf->grad->dtype != NN_F32)
        return nn_failed(0, "a leaf's .grad no longer has the leaf's shape");
    if (!nn_is_contiguous(leaf->grad)) { /* a view assigned to .grad */
        nn_tensor *c = nn_clone(leaf->grad);
        if (!c) return -1;
        nn_release(leaf->grad);
        leaf->grad = c;
    }
    return add_into(leaf->grad, g);
}

/* gin[i] shaped like input i: sum broadcast dims away, check the rest */
static nn_tensor *fit_grad(nn_node *n, int i, nn_tensor *g) {
    nn_node_input *in = &n->in[i];
    if (g->ndim == in->ndim && !memcmp(g->shape, in->shape, in->ndim * sizeof *in->shape))
        return nn_retain(g);
    nn_tensor *s = nn_sum_to(g, in->ndim, in->shape);
    if (s && (s->ndim != in->ndim ||
              memcmp(s->shape, in->shape, in->ndim * sizeof *in->shape))) {
        nn_release(s);
        return nn_fail(0, "internal: %s produced a gradient of the wrong shape", n->op->name);
    }
    return s;
}

static int run_node(nn_node *n, node_list *ready, int retain) {
    if (n->freed)
        return nn_failed(0, "backward through %s a second time: its saved "
                            "tensors were freed (pass retain_graph=true to the "
                            "first backward)", n->op->name);
    nn_tensor *gin[n->nin];
    memset(gin, 0, sizeof gin);
    nn_tensor *gout = n->gacc;
    n->gacc = NULL;
    int rc = n->op->backward(n, gout, gin);
    nn_release(gout);
    for (int i = 0; i < n->nin; i++) {
        nn_node_input *in = &n->in[i];
        if (rc == 0 && finite_or_fail(gin[i], n->op->name, "in a gradient") < 0) rc = -1;
        nn_tensor *g = gin[i] && rc == 0 ? fit_grad(n, i, gin[i]) : NULL;
        if (gin[i] && rc == 0 && !g) rc = -1;
        if (g && in->node) rc = accumulate(&in->node->gacc, g);
        else if (g && in->leaf) rc = accumulate_leaf(in->leaf, g);
        nn_release(g);
        nn_release(gin[i]);
        if (in->node && --in->node->pending == 0 && rc == 0)
            rc = push(ready, in->node);
    }
    if (!retain) free_saved(n);
    return rc;
}

int nn_backward(nn_tensor *root, const nn_tensor *grad, int retain_graph) {
    if (!root->requires_grad)
        return nn_failed(1, "backward of a tensor that does not require grad "
                            "(no input of its ops requires grad)");
    nn_tensor *g;
    if (grad) {
        if (!nn_same_shape(grad, root)) {
            char a[96], b[96];
            return nn_failed(2, "gradient of shape %s for a %s tensor",
                             nn_shape_str(grad, a, 96), nn_shape_str(root, b, 96));
        }
        g = nn_to_dtype(grad, NN_F32);
    } else {
        if (nn_numel(root) != 1) {
            char a[96];
            return nn_failed(1, "backward without a gradient needs a one-element "
                                "tensor, not %s: pass the gradient",
                             nn_shape_str(root, a, 96));
        }
        g = nn_full(root->ndim, root->shape, 1.0);
    }
    if (!g) return -1;
    int prev = nn_grad_off();
    int rc;
    if (!root->node) { /* a leaf: its gradient is g */
        rc = accumulate_leaf(root, g);
        nn_release(g);
        nn_grad_restore(prev);
        return rc;
    }
    node_list all = {0}, ready = {0};
    rc = collect(root->node, &all);
    root->node->gacc = g;
    if (rc == 0) rc = push(&ready, root->node);
    while (rc == 0 && ready.n) rc = run_node(ready.v[--ready.n], &ready, retain_graph);
    for (size_t i = 0; i < all.n; i++) { /* clean up after an error */
        nn_release(all.v[i]->gacc);
        all.v[i]->gacc = NULL;
        all.v[i]->pending = 0;
    }
    free(all.v);
    free(ready.v);
    nn_grad_restore(prev);
    return rc;
}
