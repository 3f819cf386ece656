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
int nn_check_finite(const nn_tensor *t, const char *name, const char *what) {
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
    return t->node ? (t->node->name ? t->node->name : t->node->op->name) : NULL;
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

/* the node, its context and its gradient slots in one allocation, the
 * context aligned */
nn_node *nn_record(const nn_op *op, int n, const nn_tensor *const *ins, int nout,
                   nn_tensor *const *outs) {
    size_t align = _Alignof(max_align_t);
    size_t head = sizeof(nn_node) + (size_t)n * sizeof(nn_node_input);
    head = (head + align - 1) / align * align;
    size_t ctx = (op->ctx_size + align - 1) / align * align;
    nn_node *node = nn_zalloc(head + ctx + (size_t)nout * sizeof(nn_tensor *));
    if (!node) return nn_fail(0, "out of memory recording %s", op->name);
    node->op = op;
    if (nn_profiling) node->layer = nn_profile_current_layer();
    node->ctx = op->ctx_size ? (char *)node + head : NULL;
    node->gacc = (nn_tensor **)((char *)node + head + ctx);
    node->nout = nout;
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
            in->out = t->out_index;
            t->node->refcount++;
        } else {
            in->leaf = nn_retain((nn_tensor *)t);
        }
    }
    for (int k = 0; k < nout; k++) {
        outs[k]->node = node;
        outs[k]->out_index = k;
        outs[k]->requires_grad = 1;
    }
    node->refcount = nout;
    return node;
}

nn_tensor *nn_finish_op(nn_tensor *out, const nn_op *op, int n,
                        const nn_tensor *const *ins, nn_node **node) {
    if (node) *node = NULL;
    if (nn_check_finite(out, op->name, "in its output") < 0) {
        nn_release(out);
        return NULL;
    }
    if (!out || !nn_needs_grad(n, ins)) return out;
    nn_node *nd = nn_record(op, n, ins, 1, &out);
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

nn_tensor *nn_finish_saving2(nn_tensor *out, const nn_op *op, int n, const nn_tensor *const *ins,
                             const nn_tensor *a, const nn_tensor *b, nn_node **node) {
    out = nn_finish_op(out, op, n, ins, node);
    if (*node && (nn_save(*node, 0, a) < 0 || nn_save(*node, 1, b) < 0)) {
        nn_release(out);
        *node = NULL;
        return NULL;
    }
    return out;
}

int nn_save(nn_node *n, int slot, const nn_tensor *t) {
    if (slot < 0 || slot >= NN_NODE_SAVED || n->saved[slot])
        return nn_failed(0, "internal: %s saves slot %d twice", n->op->name, slot);
    bool own = t->node == n; /* the node's output: an alias breaks the cycle */
    nn_tensor *kept = own ? nn_detach((nn_tensor *)t) : nn_retain((nn_tensor *)t);
    if (!kept) return -1;
    if (own) {
        n->saved_out |= 1u << slot;
        kept->out_index = t->out_index;
    }
    n->saved_version[slot] = t->storage->version;
    n->saved[slot] = kept;
    return 0;
}

static _Thread_local int creating_graph;

bool nn_creating_graph(void) { return creating_graph > 0; }

void nn_set_creating_graph(int delta) { creating_graph += delta; }

nn_tensor *nn_saved(nn_node *n, int slot) {
    nn_tensor *t = n->saved[slot];
    if (!t) {
        if (n->freed)
            return nn_fail(0, "backward through %s a second time: its saved tensors "
                              "were freed (pass retain_graph=true to the first backward)",
                           n->op->name);
        return nn_fail(0, "internal: %s reads slot %d, which it did not save",
                       n->op->name, slot);
    }
    if (t->storage->version != n->saved_version[slot])
        return nn_fail(0, "a tensor saved by %s for the backward pass was "
                          "modified in place (version %llu, now %llu): use an "
                          "out-of-place op, or clone() before modifying", n->op->name,
                       (unsigned long long)n->saved_version[slot],
                       (unsigned long long)t->storage->version);
    if (creating_graph && (n->saved_out >> slot & 1)) {
        /* the output, differentiable again: a fresh alias whose history is
         * this node, held until the backward fn returns (not by the node:
         * no cycle) */
        if (!n->reattached[slot]) {
            nn_tensor *a = nn_detach(t);
            if (!a) return NULL;
            a->node = n;
            a->out_index = t->out_index;
            a->requires_grad = 1;
            n->refcount++;
            n->reattached[slot] = a;
        }
        return n->reattached[slot];
    }
    return t;
}

static void free_hooks(nn_hook **list) {
    while (*list) {
        nn_hook *h = *list;
        *list = h->next;
        if (h->release) h->release(h->ud);
        free(h);
    }
}

void nn_free_tensor_hooks(nn_tensor *t) { free_hooks(&t->hooks); }

void nn_drop_reattached(nn_node *n) {
    for (int i = 0; i < NN_NODE_SAVED; i++) {
        nn_tensor *a = n->reattached[i];
        n->reattached[i] = NULL;
        nn_release(a); /* may release n itself only if nothing else holds it */
    }
}

void nn_node_spend(nn_node *n) {
    bool held = n->hooks || n->op->release;
    for (int i = 0; i < NN_NODE_SAVED; i++) {
        if (!n->saved[i]) continue;
        nn_release(n->saved[i]);
        n->saved[i] = NULL;
        held = true;
    }
    free_hooks(&n->hooks);
    if (n->op->release && !n->freed) n->op->release(n);
    if (held) n->freed = 1;
}

/* Releases a node; its input nodes are released iteratively, not by
 * recursion, so a graph a million ops deep cannot overflow the C stack. */
void nn_node_release(nn_node *n) {
    nn_node **stack = NULL;
    size_t len = 0, cap = 0;
    while (n) {
        if (--n->refcount == 0) {
            nn_node_spend(n);
            for (int k = 0; k < n->nout; k++) nn_release(n->gacc[k]);
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

int nn_register_hook(nn_tensor *t, nn_grad_hook_fn fn, void *ud, void (*release)(void *)) {
    int rc = 0;
    if (!t->requires_grad)
        rc = nn_failed(1, "register_hook on a tensor that does not require grad");
    else if (t->node && t->node->freed)
        rc = nn_failed(1, "register_hook on a tensor whose graph a backward has "
                          "freed (pass retain_graph=true to keep it)");
    nn_hook *h = rc == 0 ? calloc(1, sizeof *h) : NULL;
    if (rc == 0 && !h) rc = nn_failed(0, "out of memory");
    if (rc < 0) {
        if (release) release(ud);
        return -1;
    }
    *h = (nn_hook){fn, ud, release, t->out_index, NULL};
    nn_hook **tail = t->node ? &t->node->hooks : &t->hooks;
    while (*tail) tail = &(*tail)->next;
    *tail = h;
    return 0;
}

/* ---- functions whose backward a host writes --------------------------------- */

typedef struct {
    nn_function_backward backward;
    void *ud;
    void (*release)(void *ud);
    char name[48];
} function_ctx;

static int function_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    (void)g;
    function_ctx *c = NN_CTX(n, function_ctx);
    if (!c->backward)
        return nn_failed(0, "backward through %s a second time (pass "
                            "retain_graph=true to the first backward)", c->name);
    return c->backward(c->ud, n->nout, n->gouts, n->nin, gin);
}

static void function_release(nn_node *n) {
    function_ctx *c = NN_CTX(n, function_ctx);
    if (c->release) c->release(c->ud);
    c->backward = NULL;
    c->release = NULL;
}

/* the host's backward records itself when it is built of engine ops */
static const nn_op function_op = {"function", function_backward, sizeof(function_ctx),
                                  function_release, function_backward};

int nn_record_function(const char *name, nn_function_backward backward, void *ud,
                       void (*release)(void *), int nin, const nn_tensor *const *ins,
                       int nout, nn_tensor *const *outs) {
    int rc = 0;
    for (int k = 0; k < nout && rc == 0; k++)
        if (outs[k]->node || outs[k]->requires_grad)
            rc = nn_failed(0, "%s: output %d already has a history", name, k + 1);
    nn_node *n = rc == 0 && nout > 0 && nn_needs_grad(nin, ins)
                     ? nn_record(&function_op, nin, ins, nout, outs) : NULL;
    if (!n) {
        if (release) release(ud);
        return rc;
    }
    function_ctx *c = NN_CTX(n, function_ctx);
    c->backward = backward;
    c->ud = ud;
    c->release = release;
    snprintf(c->name, sizeof c->name, "%s", name);
    n->name = c->name;
    return 0;
}

nn_tensor *nn_detach(nn_tensor *t) {
    return nn_make_view(t, t->ndim, t->shape, t->stride, t->offset);
}

