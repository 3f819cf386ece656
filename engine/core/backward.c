/* backward.c -- the backward walk: nn_backward and nn_grad.
 *
 * From the roots, collect the reachable nodes, count for each how many
 * edges will bring it a gradient, then run nodes whose count reached zero
 * (a reverse topological order), each once with the sum of its output
 * gradients, after its gradient hooks. Leaves accumulate into .grad; a
 * leaf with hooks, or one nn_grad asked for, first gathers every gradient
 * that reaches it. nn_grad runs only nodes on a path to an input it was
 * asked for and touches no .grad. Unless retain_graph, a node that ran is
 * spent (its saved tensors, hooks and host callback released). With
 * create_graph, grad mode stays on and each op runs its backward_graph,
 * built of engine ops, so the gradients have a history of their own. */
#include "autograd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* g summed over the dims where shape is 1 (or absent), accumulating in
 * double: the rows of contiguous g are added into their output row, or
 * summed into their output element when the last dim is reduced */
static nn_tensor *sum_to(const nn_tensor *g, int ndim, const int64_t *shape) {
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

/* sum_to's derivative broadcasts the gradient back; expand records */
static int sum_to_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    gin[0] = nn_expand((nn_tensor *)g, n->in[0].ndim, n->in[0].shape);
    return gin[0] ? 0 : -1;
}
NN_OP_TWICE_NO_CTX(sum_to_op, "sum_to", sum_to_backward);

nn_tensor *nn_sum_to(const nn_tensor *g, int ndim, const int64_t *shape) {
    int prev = nn_grad_off();
    nn_tensor *out = sum_to(g, ndim, shape);
    nn_grad_restore(prev);
    nn_node *node;
    return nn_finish_op(out, &sum_to_op, 1, &g, &node);
}

/* a + b of same-shaped gradients, recorded: a create_graph backward sums
 * a node's incoming gradients with it */
static int grad_sum_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    for (int i = 0; i < 2; i++)
        if (nn_input_needs(n, i)) gin[i] = nn_retain((nn_tensor *)g);
    return 0;
}
NN_OP_TWICE_NO_CTX(grad_sum_op, "grad_sum", grad_sum_backward);

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

static nn_tensor *grad_sum(const nn_tensor *a, const nn_tensor *b) {
    int prev = nn_grad_off();
    nn_tensor *out = nn_clone(a);
    if (out && add_into(out, b) < 0) {
        nn_release(out);
        out = NULL;
    }
    nn_grad_restore(prev);
    const nn_tensor *ins[2] = {a, b};
    nn_node *node;
    return nn_finish_op(out, &grad_sum_op, 2, ins, &node);
}

/* ---- the walk ----------------------------------------------------------- */

typedef struct { nn_node **v; size_t n, cap; } node_list;

/* a leaf whose gradients are gathered before use */
typedef struct {
    nn_tensor *leaf, *g;
    int pending;   /* edges still to bring it a gradient */
    int input;     /* nn_grad: which input it is, else -1 */
} staged_leaf;

enum { NEEDED = 1, TARGET = 2 }; /* nn_node.needed bits */

typedef struct {
    int flags;
    bool asked;                  /* nn_grad: results go to gins, not .grad */
    int m;
    nn_tensor *const *inputs;
    nn_tensor **gins;
    staged_leaf *st;
    size_t nst, capst;
    node_list all, ready;
} walk;

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

static int input_of(const walk *w, const nn_tensor *leaf) {
    for (int j = 0; j < w->m; j++)
        if (w->inputs[j] == leaf) return j;
    return -1;
}

static staged_leaf *find_staged(walk *w, const nn_tensor *leaf) {
    for (size_t i = 0; i < w->nst; i++)
        if (w->st[i].leaf == leaf) return &w->st[i];
    return NULL;
}

/* counts one more edge into leaf when its gradients must be gathered */
static int stage_edge(walk *w, nn_tensor *leaf) {
    staged_leaf *s = find_staged(w, leaf);
    if (!s) {
        int input = w->asked ? input_of(w, leaf) : -1;
        if (w->asked ? input < 0 : !leaf->hooks) return 0;
        if (w->nst == w->capst) {
            size_t cap = w->capst ? 2 * w->capst : 16;
            staged_leaf *v = realloc(w->st, cap * sizeof *v);
            if (!v) return nn_failed(0, "out of memory in backward");
            w->st = v;
            w->capst = cap;
        }
        s = &w->st[w->nst++];
        *s = (staged_leaf){leaf, NULL, 0, input};
    }
    s->pending++;
    return 0;
}

/* Every node reachable from the roots, children before parents (an
 * iterative post-order walk), with pending = edges into it. */
static int collect(walk *w, int n, nn_tensor *const *roots) {
    typedef struct { nn_node *node; int next; } frame;
    frame *stack = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (int r = 0; r < n && rc == 0; r++) {
        nn_node *root = roots[r]->node;
        if (!root) {
            rc = stage_edge(w, roots[r]);
            continue;
        }
        if (root->pending < 0) continue;
        root->pending = -1; /* visited, while collecting */
        if (len == cap) {
            cap = cap ? 2 * cap : 64;
            frame *v = realloc(stack, cap * sizeof *v);
            if (!v) { rc = nn_failed(0, "out of memory in backward"); break; }
            stack = v;
        }
        stack[len++] = (frame){root, 0};
        while (rc == 0 && len) {
            frame *f = &stack[len - 1];
            if (f->next == f->node->nin) {
                rc = push(&w->all, f->node);
                len--;
                continue;
            }
            nn_node *c = f->node->in[f->next++].node;
            if (!c || c->pending < 0) continue;
            c->pending = -1;
            if (len == cap) {
                cap = 2 * cap;
                frame *v = realloc(stack, cap * sizeof *v);
                if (!v) { rc = nn_failed(0, "out of memory in backward"); break; }
                stack = v;
            }
            stack[len++] = (frame){c, 0};
        }
    }
    free(stack);
    for (size_t i = 0; i < w->all.n; i++) w->all.v[i]->pending = 0;
    for (size_t i = 0; i < w->all.n && rc == 0; i++) {
        nn_node *nd = w->all.v[i];
        nd->needed = 0;
        for (int k = 0; k < nd->nin && rc == 0; k++) {
            if (nd->in[k].node) nd->in[k].node->pending++;
            else if (nd->in[k].leaf) rc = stage_edge(w, nd->in[k].leaf);
        }
    }
    if (rc < 0 || !w->asked) return rc;
    /* nn_grad: a node is needed when a path from it reaches an input */
    for (int j = 0; j < w->m; j++)
        if (w->inputs[j]->node) w->inputs[j]->node->needed |= TARGET;
    for (size_t i = 0; i < w->all.n; i++) { /* children come first */
        nn_node *nd = w->all.v[i];
        for (int k = 0; k < nd->nin && !(nd->needed & NEEDED); k++) {
            nn_node *c = nd->in[k].node;
            if ((c && c->needed) || (nd->in[k].leaf && input_of(w, nd->in[k].leaf) >= 0))
                nd->needed |= NEEDED;
        }
    }
    return 0;
}

/* the gradient after the hooks in list for output `out` (a new reference) */
static nn_tensor *apply_hooks(nn_hook *list, int out, nn_tensor *g) {
    nn_retain(g);
    for (nn_hook *h = list; h && g; h = h->next) {
        if (h->out != out) continue;
        nn_tensor *r = h->fn(h->ud, g);
        if (r && !nn_same_shape(r, g)) {
            char a[96], b[96];
            nn_failed(0, "a gradient hook returned a %s gradient for a %s tensor",
                      nn_shape_str(r, a, 96), nn_shape_str(g, b, 96));
            nn_release(r);
            r = NULL;
        }
        nn_release(g);
        g = r;
    }
    return g;
}

/* whether t's memory is t's alone (no other reference, no view) */
static bool exclusive(const nn_tensor *t) {
    return t->refcount == 1 && t->storage->refcount == 1 && t->storage->owns == 1 &&
           t->dtype == NN_F32 && nn_is_contiguous(t) && !t->node;
}

/* Sums incoming gradients: in place into the first one (copied once if it
 * is shared), or recorded when the backward builds a graph. */
static int accumulate(nn_tensor **acc, nn_tensor *g, int flags) {
    if (!*acc) {
        *acc = nn_retain(g);
        return 0;
    }
    if (flags & NN_CREATE_GRAPH) {
        nn_tensor *s = grad_sum(*acc, g);
        if (!s) return -1;
        nn_release(*acc);
        *acc = s;
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

static int accumulate_leaf(nn_tensor *leaf, nn_tensor *g, int flags) {
    if (leaf->grad && (!nn_same_shape(leaf->grad, g) || leaf->grad->dtype != NN_F32))
        return nn_failed(0, "a leaf's .grad no longer has the leaf's shape");
    if (!leaf->grad) { /* a fresh tensor, or g's history under create_graph */
        leaf->grad = flags & NN_CREATE_GRAPH ? nn_retain(g) : nn_clone(g);
        return leaf->grad ? 0 : -1;
    }
    if ((flags & NN_CREATE_GRAPH) || !nn_is_contiguous(leaf->grad) || leaf->grad->node) {
        nn_tensor *s = flags & NN_CREATE_GRAPH ? grad_sum(leaf->grad, g) : nn_clone(leaf->grad);
        if (!s) return -1;
        nn_release(leaf->grad);
        leaf->grad = s;
        if (flags & NN_CREATE_GRAPH) return 0;
    }
    return add_into(leaf->grad, g);
}

/* a staged leaf has all its gradients: hooks, then .grad or the result */
static int finish_leaf(walk *w, staged_leaf *s) {
    nn_tensor *g = s->g;
    s->g = NULL;
    if (!g) return 0;
    nn_tensor *h = apply_hooks(s->leaf->hooks, 0, g);
    nn_release(g);
    if (!h) return -1;
    int rc = 0;
    if (s->input >= 0) w->gins[s->input] = h;
    else rc = accumulate_leaf(s->leaf, h, w->flags), nn_release(h);
    return rc;
}

/* g (may be NULL: no gradient) reaches leaf */
static int deliver_leaf(walk *w, nn_tensor *leaf, nn_tensor *g) {
    staged_leaf *s = find_staged(w, leaf);
    if (!s) return g && !w->asked ? accumulate_leaf(leaf, g, w->flags) : 0;
    int rc = g ? accumulate(&s->g, g, w->flags) : 0;
    if (--s->pending == 0 && rc == 0) rc = finish_leaf(w, s);
    return rc;
}

/* g reaches input i of n, which is ready once all its edges brought theirs */
static int deliver(walk *w, nn_node *n, int i, nn_tensor *g) {
    nn_node_input *in = &n->in[i];
    int rc = 0;
    if (in->leaf) return deliver_leaf(w, in->leaf, g);
    if (!in->node) return 0;
    if (g) rc = accumulate(&in->node->gacc[in->out], g, w->flags);
    if (--in->node->pending == 0 && rc == 0) rc = push(&w->ready, in->node);
    return rc;
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

static const char *node_name(const nn_node *n) { return n->name ? n->name : n->op->name; }

/* the op's backward on the gradients gout; fills gin */
static int call_backward(walk *w, nn_node *n, nn_tensor *const *gout, nn_tensor **gin) {
    if (n->freed)
        return nn_failed(0, "backward through %s a second time: its saved "
                            "tensors were freed (pass retain_graph=true to the "
                            "first backward)", node_name(n));
    nn_backward_fn fn = n->op->backward;
    if (w->flags & NN_CREATE_GRAPH) {
        fn = n->op->backward_graph;
        if (!fn)
            return nn_failed(0, "%s has no double backward: create_graph cannot "
                                "differentiate through it", node_name(n));
    }
    n->gouts = gout;
    int grad = nn_set_grad_enabled((w->flags & NN_CREATE_GRAPH) != 0);
    if (w->flags & NN_CREATE_GRAPH) nn_set_creating_graph(1);
    int rc = fn(n, gout[0], gin);
    if (w->flags & NN_CREATE_GRAPH) nn_set_creating_graph(-1);
    nn_set_grad_enabled(grad);
    n->gouts = NULL;
    nn_drop_reattached(n);
    return rc;
}

static int run_node(walk *w, nn_node *n) {
    nn_tensor *gout[n->nout], *gin[n->nin];
    memset(gin, 0, sizeof gin);
    bool any = false;
    int rc = 0;
    for (int k = 0; k < n->nout; k++) {
        gout[k] = n->gacc[k];
        n->gacc[k] = NULL;
        if (gout[k] && rc == 0 && n->hooks) {
            nn_tensor *h = apply_hooks(n->hooks, k, gout[k]);
            nn_release(gout[k]);
            gout[k] = h;
            if (!h) rc = -1;
        }
        any |= gout[k] != NULL;
    }
    if (rc == 0 && (n->needed & TARGET))
        for (int j = 0; j < w->m; j++)
            if (w->inputs[j]->node == n && gout[w->inputs[j]->out_index])
                w->gins[j] = nn_retain(gout[w->inputs[j]->out_index]);
    bool run = any && rc == 0 && (!w->asked || (n->needed & NEEDED));
    if (run) {
        int layer = n->layer && nn_profile_enter(n->layer, NN_PROFILE_LAYER_BACKWARD);
        int op = nn_profile_enter(node_name(n), NN_PROFILE_BACKWARD);
        rc = call_backward(w, n, gout, gin);
        if (op) nn_profile_leave();
        if (layer) nn_profile_leave();
    }
    for (int k = 0; k < n->nout; k++) nn_release(gout[k]);
    /* not on a path to an input (nor are its inputs): left as it was, as
     * PyTorch leaves the nodes autograd.grad did not run */
    if (w->asked && !(n->needed & NEEDED)) return rc;
    for (int i = 0; i < n->nin; i++) {
        if (rc == 0 && nn_check_finite(gin[i], node_name(n), "in a gradient") < 0) rc = -1;
        nn_tensor *g = gin[i] && rc == 0 ? fit_grad(n, i, gin[i]) : NULL;
        if (gin[i] && rc == 0 && !g) rc = -1;
        if (rc == 0) rc = deliver(w, n, i, g);
        nn_release(g);
        nn_release(gin[i]);
    }
    if (!(w->flags & NN_RETAIN_GRAPH) && run) nn_node_spend(n);
    return rc;
}

static void walk_free(walk *w) {
    for (size_t i = 0; i < w->all.n; i++) { /* clean up after an error */
        nn_node *n = w->all.v[i];
        for (int k = 0; k < n->nout; k++) {
            nn_release(n->gacc[k]);
            n->gacc[k] = NULL;
        }
        n->pending = 0;
        n->needed = 0;
    }
    for (size_t i = 0; i < w->nst; i++) nn_release(w->st[i].g);
    free(w->st);
    free(w->all.v);
    free(w->ready.v);
}

/* the gradient a root starts with: grad, or 1 for a one-element root */
static nn_tensor *root_grad(const nn_tensor *root, const nn_tensor *grad, int arg) {
    if (grad) {
        if (!nn_same_shape(grad, root)) {
            char a[96], b[96];
            return nn_fail(arg, "gradient of shape %s for a %s tensor",
                           nn_shape_str(grad, a, 96), nn_shape_str(root, b, 96));
        }
        return grad->dtype == NN_F32 ? nn_retain((nn_tensor *)grad)
                                     : nn_to_dtype(grad, NN_F32);
    }
    if (nn_numel(root) != 1) {
        char a[96];
        return nn_fail(1, "backward without a gradient needs a one-element "
                          "tensor, not %s: pass the gradient", nn_shape_str(root, a, 96));
    }
    return nn_full(root->ndim, root->shape, 1.0);
}

static int run_walk(walk *w, int n, nn_tensor *const *roots, const nn_tensor *const *grads) {
    if (w->flags & NN_CREATE_GRAPH) w->flags |= NN_RETAIN_GRAPH;
    for (int r = 0; r < n; r++)
        if (!roots[r]->requires_grad)
            return nn_failed(1, "backward of a tensor that does not require grad "
                                "(no input of its ops requires grad)");
    nn_tensor *g0[n];
    int rc = 0;
    for (int r = 0; r < n; r++) {
        g0[r] = rc == 0 ? root_grad(roots[r], grads ? grads[r] : NULL, 2) : NULL;
        if (!g0[r]) rc = -1;
    }
    bool held = rc == 0;
    for (int r = 0; r < n && held; r++) /* held for the walk, whatever hooks free */
        if (roots[r]->node) roots[r]->node->refcount++;
    int prev = nn_is_grad_enabled();
    if (rc == 0) rc = collect(w, n, roots);
    for (int r = 0; r < n && rc == 0; r++) {
        nn_node *nd = roots[r]->node;
        if (!nd) {
            rc = deliver_leaf(w, roots[r], g0[r]);
            continue;
        }
        rc = accumulate(&nd->gacc[roots[r]->out_index], g0[r], w->flags);
    }
    for (size_t i = 0; i < w->all.n && rc == 0; i++)
        if (w->all.v[i]->pending == 0) rc = push(&w->ready, w->all.v[i]);
    while (rc == 0 && w->ready.n) rc = run_node(w, w->ready.v[--w->ready.n]);
    for (size_t i = 0; i < w->nst && rc == 0; i++) /* hooked leaves a skipped node fed */
        if (w->st[i].g) rc = finish_leaf(w, &w->st[i]);
    nn_set_grad_enabled(prev);
    walk_free(w);
    for (int r = 0; r < n; r++) nn_release(g0[r]);
    for (int r = 0; r < n && held; r++)
        if (roots[r]->node) nn_node_release(roots[r]->node);
    return rc;
}

int nn_backward_ex(nn_tensor *root, const nn_tensor *grad, int flags) {
    walk w = {.flags = flags};
    return run_walk(&w, 1, &root, &grad);
}

int nn_backward(nn_tensor *root, const nn_tensor *grad, int retain_graph) {
    return nn_backward_ex(root, grad, retain_graph ? NN_RETAIN_GRAPH : 0);
}

int nn_grad(int n, nn_tensor *const *roots, const nn_tensor *const *grads, int m,
            nn_tensor *const *inputs, nn_tensor **gins, int flags) {
    for (int j = 0; j < m; j++) {
        gins[j] = NULL;
        if (!inputs[j]->requires_grad)
            return nn_failed(0, "grad: input %d does not require grad", j + 1);
    }
    walk w = {.flags = flags, .asked = true, .m = m, .inputs = inputs, .gins = gins};
    int rc = run_walk(&w, n, roots, grads);
    if (rc < 0)
        for (int j = 0; j < m; j++) {
            nn_release(gins[j]);
            gins[j] = NULL;
        }
    return rc;
}
