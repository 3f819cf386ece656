/*
 * nn_unary_ops.h -- the unary ops, one line each (an X-macro table, as in
 * Lua's lopnames.h): X(ID, name, forward, derivative, saves).
 *
 * forward is f(x) in f32 and derivative f'(x) written with x, y = f(x) and
 * the op's parameters p0, p1 (clamp's bounds, leaky_relu's slope); saves
 * is what the derivative reads and the tape keeps: IN (x), OUT (y) or
 * NONE. The enum nn_unary_op, the names, the f32 kernels, the
 * backward, the Lua methods (t:exp(), t:exp_()) and the gradient checks
 * are all generated from this table: a new op is one line plus its value
 * test. The expressions are only expanded inside engine/ops/elementwise.c.
 */
#ifndef NN_UNARY_OPS_H
#define NN_UNARY_OPS_H

#ifdef __cplusplus
extern "C" { /* macros only: the guard keeps the rule of the headers */
#endif

#define NN_UNARY_OPS(X)                                                          \
    X(NEG, neg, -x, -1.0f, NONE)                                                 \
    X(ABS, abs, fabsf(x), (float)((x > 0.0f) - (x < 0.0f)), IN)                   \
    X(EXP, exp, nn_expf(x), y, OUT)                                                \
    X(LOG, log, logf(x), 1.0f / x, IN)                                            \
    X(SQRT, sqrt, sqrtf(x), 0.5f / y, OUT)                                         \
    X(RSQRT, rsqrt, 1.0f / sqrtf(x), -0.5f * y * y * y, OUT)                       \
    X(SIN, sin, sinf(x), cosf(x), IN)                                             \
    X(COS, cos, cosf(x), -sinf(x), IN)                                            \
    X(TANH, tanh, tanhf(x), 1.0f - y * y, OUT)                                     \
    X(SIGMOID, sigmoid, nn_sigmoidf(x), y * (1.0f - y), OUT)                       \
    X(RELU, relu, x > 0.0f ? x : 0.0f, y > 0.0f ? 1.0f : 0.0f, OUT)                \
    X(GELU, gelu, gelu(x), gelu_deriv(x), IN)                                     \
    X(SILU, silu, x * nn_sigmoidf(x), silu_deriv(x), IN)                          \
    X(FLOOR, floor, floorf(x), 0.0f, NONE)                                       \
    X(CEIL, ceil, ceilf(x), 0.0f, NONE)                                          \
    X(ROUND, round, nearbyintf(x), 0.0f, NONE) /* half to even, as PyTorch */    \
    X(SIGN, sign, (float)((x > 0.0f) - (x < 0.0f)), 0.0f, NONE)                  \
    X(RECIPROCAL, reciprocal, 1.0f / x, -y * y, OUT)                               \
    X(SQUARE, square, x * x, 2.0f * x, IN)                                        \
    X(LOG1P, log1p, log1pf(x), 1.0f / (1.0f + x), IN)                             \
    X(EXPM1, expm1, expm1f(x), y + 1.0f, OUT)                                      \
    X(GELU_TANH, gelu_tanh, gelu_tanh(x), gelu_tanh_deriv(x), IN)                 \
    X(CLAMP, clamp, x < p0 ? p0 : (x > p1 ? p1 : x),                             \
      (x >= p0 && x <= p1) ? 1.0f : 0.0f, IN)                                     \
    X(LEAKY_RELU, leaky_relu, x > 0.0f ? x : x * p0, x > 0.0f ? 1.0f : p0, IN)      \
    X(ELU, elu, x > 0.0f ? x : p0 * expm1f(x), x > 0.0f ? 1.0f : p0 * nn_expf(x), IN)    \
    /* softplus: p0 beta, p1 threshold (linear above it), as PyTorch */      \
    X(SOFTPLUS, softplus, x * p0 > p1 ? x : log1pf(nn_expf(x * p0)) / p0,          \
      x * p0 > p1 ? 1.0f : nn_sigmoidf(x * p0), IN)                                \
    X(MISH, mish, mish(x), mish_deriv(x), IN)                                     \
    X(HARDSWISH, hardswish, x <= -3.0f ? 0.0f : (x >= 3.0f ? x : x * (x + 3.0f) / 6.0f), \
      hardswish_deriv(x), IN)                                                     \
    X(HARDSIGMOID, hardsigmoid, x <= -3.0f ? 0.0f : (x >= 3.0f ? 1.0f : x / 6.0f + 0.5f), \
      (x > -3.0f && x < 3.0f) ? 1.0f / 6.0f : 0.0f, IN)                           \
    /* the derivatives of gelu, silu, gelu_tanh, elu, softplus, mish and  \
     * hardswish, as ops: their double backward multiplies by these */    \
    X(GELU_DERIV, gelu_deriv, gelu_deriv(x), gelu_deriv2(x), IN)                \
    X(SILU_DERIV, silu_deriv, silu_deriv(x), silu_deriv2(x), IN)                \
    X(GELU_TANH_DERIV, gelu_tanh_deriv, gelu_tanh_deriv(x), gelu_tanh_deriv2(x), IN) \
    X(ELU_DERIV, elu_deriv, x > 0.0f ? 1.0f : p0 * nn_expf(x), x > 0.0f ? 0.0f : p0 * nn_expf(x), IN) \
    X(SOFTPLUS_DERIV, softplus_deriv, x * p0 > p1 ? 1.0f : nn_sigmoidf(x * p0),     \
      x * p0 > p1 ? 0.0f : p0 * nn_sigmoidf(x * p0) * (1.0f - nn_sigmoidf(x * p0)), IN) \
    X(MISH_DERIV, mish_deriv, mish_deriv(x), mish_deriv2(x), IN)                  \
    X(HARDSWISH_DERIV, hardswish_deriv, hardswish_deriv(x),                       \
      (x > -3.0f && x < 3.0f) ? 1.0f / 3.0f : 0.0f, IN)

/* The binary ops, broadcasting: X(ID, name, forward, d/da, d/db, da reads,
 * db reads) with x = a, y = b, o = the output (f32); what each derivative
 * reads (NONE, A, B, AB or ABO) is what the tape keeps for the inputs that
 * need gradients. The backward kernel computes g d/da and g d/db in the
 * broadcast shape and the core sums them down. Comparisons (eq .. ge) are
 * flat and record nothing. */
#define NN_BINARY_OPS(X)                                                                \
    X(ADD, add, x + y, 1.0f, 1.0f, NONE, NONE)                                          \
    X(SUB, sub, x - y, 1.0f, -1.0f, NONE, NONE)                                         \
    X(MUL, mul, x * y, y, x, B, A)                                                      \
    X(DIV, div, x / y, 1.0f / y, -x / (y * y), B, AB)                                   \
    X(POW, pow, powf(x, y), y * powf(x, y - 1.0f), x == 0.0f ? 0.0f : o * logf(x), AB,  \
      ABO)                                                                              \
    X(MAXIMUM, maximum, (x != x || x > y) ? x : y, /* ties split the gradient */        \
      x > y ? 1.0f : (x == y ? 0.5f : 0.0f), y > x ? 1.0f : (x == y ? 0.5f : 0.0f), AB, \
      AB)                                                                               \
    X(MINIMUM, minimum, (x != x || x < y) ? x : y,                                      \
      x < y ? 1.0f : (x == y ? 0.5f : 0.0f), y < x ? 1.0f : (x == y ? 0.5f : 0.0f), AB, \
      AB)                                                                               \
    X(REMAINDER, remainder, remainder_f32(x, y), 1.0f, -floorf(x / y), NONE, AB)        \
    X(ATAN2, atan2, atan2f(x, y), y / (x * x + y * y), -x / (x * x + y * y), AB, AB)    \
    X(FLOOR_DIVIDE, floor_divide, floorf(x / y), 0.0f, 0.0f, NONE, NONE)                \
    X(EQ, eq, x == y, 0.0f, 0.0f, NONE, NONE)                                           \
    X(NE, ne, x != y, 0.0f, 0.0f, NONE, NONE)                                           \
    X(LT, lt, x < y, 0.0f, 0.0f, NONE, NONE)                                            \
    X(LE, le, x <= y, 0.0f, 0.0f, NONE, NONE)                                           \
    X(GT, gt, x > y, 0.0f, 0.0f, NONE, NONE)                                            \
    X(GE, ge, x >= y, 0.0f, 0.0f, NONE, NONE)

/* the reductions: X(ID, name); their derivatives, which broadcast the
 * gradient back over the reduced dims, are in reduce.c */

#define NN_REDUCE_OPS(X)                                                         \
    X(SUM, sum) X(MEAN, mean) X(PROD, prod) X(MAX, max) X(MIN, min)              \
    X(ARGMAX, argmax) X(ARGMIN, argmin) X(VAR, var) X(STD, std)                  \
    X(LOGSUMEXP, logsumexp) X(NORM, norm)

#ifdef __cplusplus
}
#endif

#endif
