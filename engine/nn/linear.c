/* linear.c -- y = x W^T + b, the Linear layer, as one fused op.
 *
 * Shapes: x (..., I), W (O, I), b (O) or NULL -> y (..., O); R is the
 * number of rows of x (the product of its leading dims). The bias is
 * written first and sgemm adds x W^T on top (beta = 1); W is read
 * transposed through the flag. Backward: dx = g W, dW = g^T x, db = the
 * column sums of g -- three BLAS-shaped steps, no transposed copies. */
#include "autograd.h"
#include "graph.h"
#include "nn_layers.h"

#include <string.h>

enum { SAVED_X, SAVED_W }; /* x for dW, w for dx: each only when needed */
typedef struct { int bf16; } linear_ctx; /* made under autocast: backward in bf16 too */

static int linear_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    bool nx = nn_input_needs(n, 0), nw = nn_input_needs(n, 1);
    nn_tensor *x = nw ? nn_saved(n, SAVED_X) : NULL, *w = nx ? nn_saved(n, SAVED_W) : NULL;
    if ((nw && !x) || (nx && !w)) return -1;
    const nn_node_input *xi = &n->in[0], *wi = &n->in[1];
    int bf16 = NN_CTX(n, linear_ctx)->bf16;
    int64_t out = wi->shape[0], in = wi->shape[1], rows = 1;
    for (int d = 0; d < xi->ndim - 1; d++) rows *= xi->shape[d];
    nn_tensor *gc = nn_contiguous((nn_tensor *)g);
    if (!gc) return -1;
    int rc = 0;
    if (nn_input_needs(n, 0)) { /* (R, O) @ (O, I) */
        gin[0] = nn_empty(NN_F32, xi->ndim, xi->shape);
        rc = gin[0] ? nn_gemm(bf16, 0, 0, rows, in, out, 1.0f, nn_f32(gc), out,
                               nn_f32(w), in, 0.0f, nn_f32(gin[0]), in) : -1;
    }
    if (rc == 0 && nn_input_needs(n, 1)) { /* (O, R) @ (R, I) */
        gin[1] = nn_empty(NN_F32, 2, wi->shape);
        rc = gin[1] ? nn_gemm(bf16, 1, 0, out, in, rows, 1.0f, nn_f32(gc), out,
                               nn_f32(x), in, 0.0f, nn_f32(gin[1]), in) : -1;
    }
    if (rc == 0 && n->nin > 2 && nn_input_needs(n, 2)) {
        int dims[NN_MAX_DIMS];
        for (int d = 0; d < gc->ndim - 1; d++) dims[d] = d;
        gin[2] = gc->ndim > 1 ? nn_sum(gc, gc->ndim - 1, dims, 0) : nn_retain(gc);
        if (!gin[2]) rc = -1;
    }
    if (rc == 0 && rows == 0) { /* sgemm was skipped: make zeros explicit */
        for (int i = 0; i < 2; i++)
            if (gin[i]) nn_fill_(gin[i], 0);
    }
    nn_release(gc);
    return rc;
}

/* the same three products from engine ops, for a create_graph backward */
static int linear_backward_graph(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    bool nx = nn_input_needs(n, 0), nw = nn_input_needs(n, 1);
    bool nb = n->nin > 2 && nn_input_needs(n, 2);
    nn_tensor *x = nw ? nn_saved(n, SAVED_X) : NULL, *w = nx ? nn_saved(n, SAVED_W) : NULL;
    if ((nw && !x) || (nx && !w)) return -1;
    const nn_node_input *xi = &n->in[0], *wi = &n->in[1];
    int64_t rows = 1;
    for (int d = 0; d < xi->ndim - 1; d++) rows *= xi->shape[d];
    nn_scope s = {0};
    nn_tensor *g2 = g_reshape(&s, g, 2, (int64_t[]){rows, wi->shape[0]});
    if (nx) gin[0] = nn_scope_result(&s, g_reshape(&s, g_matmul(&s, g2, w), xi->ndim, xi->shape));
    if (nw)
        gin[1] = nn_scope_result(&s, g_matmul(&s, g_t(&s, g2),
                                              g_reshape(&s, x, 2, (int64_t[]){rows, wi->shape[1]})));
    if (nb) gin[2] = nn_scope_result(&s, g_sum(&s, g2, 1, (int[]){0}, 0));
    return nn_scope_end(&s);
}

NN_OP_GRAPH(linear_op, "linear", linear_backward, linear_backward_graph, linear_ctx);

nn_tensor *nn_linear(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b) {
    char s1[96], s2[96];
    const nn_tensor *half_in[3] = {x, w, b};
    if (nn_any_half(3, half_in)) { /* in f32, rounded back */
        nn_tensor *f[3];
        if (nn_widen_all(3, half_in, f) < 0) return NULL;
        nn_tensor *y = nn_linear(f[0], f[1], f[2]);
        nn_release_all(3, f);
        return nn_narrow_to(y, nn_half_result(3, half_in));
    }
    if (x->dtype != NN_F32 || w->dtype != NN_F32 || (b && b->dtype != NN_F32))
        return nn_fail(1, "linear expects f32 tensors");
    if (w->ndim != 2) return nn_fail(2, "weight must be 2-D (out, in), got %s",
                                     nn_shape_str(w, s1, 96));
    int64_t out = w->shape[0], in = w->shape[1];
    if (x->ndim < 1 || x->shape[x->ndim - 1] != in)
        return nn_fail(1, "input %s does not end in %lld features (weight %s)",
                       nn_shape_str(x, s1, 96), (long long)in, nn_shape_str(w, s2, 96));
    if (b && (b->ndim != 1 || b->shape[0] != out))
        return nn_fail(3, "bias %s does not match %lld outputs",
                       nn_shape_str(b, s1, 96), (long long)out);
    /* copies made with grad mode on keep the history create_graph reads */
    nn_tensor *xc = nn_contiguous((nn_tensor *)x), *wc = nn_contiguous((nn_tensor *)w);
    int prev = nn_grad_off(), bf16 = nn_autocast() == NN_BF16;
    int64_t shape[NN_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->ndim - 1] = out;
    nn_tensor *y = xc && wc ? nn_empty(NN_F32, x->ndim, shape) : NULL;
    int64_t rows = y ? nn_numel(x) / (in ? in : 1) : 0;
    int rc = y ? 0 : -1;
    if (rc == 0) { /* every row starts as the bias, or as zeros */
        nn_tensor *rows_view = nn_view(y, 2, (int64_t[]){rows, out});
        rc = !rows_view ? -1
             : b ? nn_copy_(rows_view, b)
             : (rows && out && in) ? 0 /* sgemm overwrites: beta 0 */
             : nn_fill_(rows_view, 0);
        nn_release(rows_view);
    }
    if (rc == 0 && rows && out && in)
        rc = nn_gemm(bf16, 0, 1, rows, out, in, 1.0f, nn_f32(xc), in, nn_f32(wc), in,
                      b ? 1.0f : 0.0f, nn_f32(y), out);
    if (rc < 0) {
        nn_release(y);
        y = NULL;
    }
    nn_grad_restore(prev);
    const nn_tensor *ins[3] = {x, w, b};
    nn_node *node;
    y = nn_finish_op(y, &linear_op, b ? 3 : 2, ins, &node);
    if (node) NN_CTX(node, linear_ctx)->bf16 = bf16;
    if (node && ((nn_input_needs(node, 1) && nn_save(node, SAVED_X, xc) < 0) ||
                 (nn_input_needs(node, 0) && nn_save(node, SAVED_W, wc) < 0))) {
        nn_release(y);
        y = NULL;
    }
    nn_release(xc);
    nn_release(wc);
    return y;
}
