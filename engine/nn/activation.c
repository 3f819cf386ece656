/* activation.c -- the activations with parameters or two halves, built of
 * engine ops (whose backward passes autograd chains): PReLU, a learned
 * slope per channel, and GLU, a gate over half of a dim. The pointwise
 * activations (elu, softplus, mish, hardswish, ...) are lines of the
 * unary op table (nn_unary_ops.h). */
#include "internal.h"
#include "nn_layers.h"

/* prelu(x) = relu(x) - w relu(-x), w (1) or (C) on dim 1 of x */
nn_tensor *nn_prelu(const nn_tensor *x, const nn_tensor *w) {
    char s1[96], s2[96];
    if (x->dtype != NN_F32 || w->dtype != NN_F32)
        return nn_fail(1, "prelu expects f32 tensors, got %s and %s", nn_dtype_name(x->dtype),
                       nn_dtype_name(w->dtype));
    int64_t c = nn_numel(w);
    if (w->ndim != 1 || (c != 1 && (x->ndim < 2 || x->shape[1] != c)))
        return nn_fail(0, "prelu: weight %s must have 1 value or one per channel of %s",
                       nn_shape_str(w, s1, sizeof s1), nn_shape_str(x, s2, sizeof s2));
    int64_t shape[NN_MAX_DIMS] = {c}; /* (C, 1, ...) lines up with dim 1 */
    int nd = c == 1 ? 1 : x->ndim - 1;
    for (int i = 1; i < nd; i++) shape[i] = 1;
    nn_tensor *wv = nn_reshape((nn_tensor *)w, nd, shape);
    nn_tensor *pos = nn_unary(NN_RELU, x, 0, 0);
    nn_tensor *negx = nn_unary(NN_NEG, x, 0, 0);
    nn_tensor *neg = negx ? nn_unary(NN_RELU, negx, 0, 0) : NULL;
    nn_tensor *scaled = neg && wv ? nn_mul(neg, wv) : NULL;
    nn_tensor *y = pos && scaled ? nn_binary(NN_SUB, pos, scaled) : NULL;
    nn_release(wv), nn_release(pos), nn_release(negx), nn_release(neg), nn_release(scaled);
    return y;
}

/* glu(x, dim) = a sigmoid(b) for the halves a, b of dim (0-based) */
nn_tensor *nn_glu(const nn_tensor *x, int dim) {
    char s1[96];
    int d = nn_wrap_dim(dim, x->ndim, 2);
    if (d < 0) return NULL;
    if (x->shape[d] % 2)
        return nn_fail(1, "glu: dim %d of %s has an odd size", d + 1, nn_shape_str(x, s1, sizeof s1));
    int64_t half = x->shape[d] / 2;
    nn_tensor *a = nn_narrow((nn_tensor *)x, d, 0, half), *b = nn_narrow((nn_tensor *)x, d, half, half);
    nn_tensor *gate = b ? nn_unary(NN_SIGMOID, b, 0, 0) : NULL;
    nn_tensor *y = a && gate ? nn_mul(a, gate) : NULL;
    nn_release(a), nn_release(b), nn_release(gate);
    return y;
}
