/* elementwise.c -- unary and binary maths with NumPy broadcasting.
 *
 * Every op runs through nn_iter: the output and the (broadcast) inputs are
 * walked in rows; each row picks a loop for its stride pattern so the
 * common contiguous case vectorises. i64 inputs stay i64 for the ops that
 * keep integers integral (add, sub, mul, remainder, min/max, pow, neg, abs,
 * sign, square); everything else computes in f32. */
#include "autograd.h"
#include "graph.h"
#include "nn_ops.h"
#include "vecmath.h"

#include <math.h>
#include <string.h>

#define NAME_(id, name, ...) #name,
const char *const nn_unary_names[NN_UNARY_COUNT] = {NN_UNARY_OPS(NAME_)};
const char *const nn_binary_names[NN_BINARY_COUNT] = {NN_BINARY_OPS(NAME_)};
#define SAVES_(id, name, f, d, saves) NN_SAVES_##saves,
const nn_saves nn_unary_saves[NN_UNARY_COUNT] = {NN_UNARY_OPS(SAVES_)};

/* ---- scalar definitions -------------------------------------------------- */

static inline float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + nn_tanhf(k * (x + 0.044715f * x * x * x)));
}

static inline float gelu(float x) {
    return 0.5f * x * (1.0f + nn_erff(x * 0.7071067811865476f));
}

static inline float gelu_deriv(float x) {
    float cdf = 0.5f * (1.0f + nn_erff(x * 0.7071067811865476f));
    return cdf + x * 0.3989422804014327f * nn_expf(-0.5f * x * x);
}

static inline float silu_deriv(float x) {
    float s = nn_sigmoidf(x);
    return s * (1.0f + x * (1.0f - s));
}

static inline float gelu_tanh_deriv(float x) {
    const float k = 0.7978845608028654f, c = 0.044715f;
    float inner = k * (x + c * x * x * x), t = nn_tanhf(inner);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * c * x * x);
}

/* the second derivatives, for the *_deriv ops' own derivative */
static inline float gelu_deriv2(float x) { /* phi(x) (2 - x^2) */
    return 0.3989422804014327f * nn_expf(-0.5f * x * x) * (2.0f - x * x);
}

static inline float silu_deriv2(float x) {
    float s = nn_sigmoidf(x), ds = s * (1.0f - s);
    return ds * (2.0f + x * (1.0f - 2.0f * s));
}

static inline float gelu_tanh_deriv2(float x) {
    const float k = 0.7978845608028654f, c = 0.044715f;
    float t = nn_tanhf(k * (x + c * x * x * x));
    float du = k * (1.0f + 3.0f * c * x * x), d2u = 6.0f * k * c * x;
    return (1.0f - t * t) * (du - x * t * du * du + 0.5f * x * d2u);
}

/* f(x) for one element, from the table */
/* mish(x) = x tanh(softplus(x)); with s = sigmoid(x), t = tanh(softplus(x)):
 * mish' = t + x (1 - t^2) s, mish'' = (1 - t^2) s (2 + x (1 - s - 2 t s)) */
static inline float softplus1(float x) { return x > 20.0f ? x : log1pf(nn_expf(x)); }
static inline float mish(float x) { return x * nn_tanhf(softplus1(x)); }
static inline float mish_deriv(float x) {
    float t = nn_tanhf(softplus1(x)), s = nn_sigmoidf(x);
    return t + x * (1.0f - t * t) * s;
}
static inline float mish_deriv2(float x) {
    float t = nn_tanhf(softplus1(x)), s = nn_sigmoidf(x);
    return (1.0f - t * t) * s * (2.0f + x * (1.0f - s - 2.0f * t * s));
}

/* hardswish(x) = x relu6(x + 3) / 6 */
static inline float hardswish_deriv(float x) {
    return x < -3.0f ? 0.0f : (x > 3.0f ? 1.0f : (2.0f * x + 3.0f) / 6.0f);
}

static inline float unary_f32(nn_unary_op op, float x, float p0, float p1) {
    (void)p0, (void)p1;
#define FORWARD_(id, name, f, ...) case NN_##id: return (f);
    switch (op) {
    NN_UNARY_OPS(FORWARD_)
    case NN_UNARY_COUNT: break;
    }
    return x;
}

/* i64 arithmetic wraps modulo 2^64, as Lua's integers do (done in
 * unsigned arithmetic: signed overflow is undefined in C) */
static inline int64_t wrap_add(int64_t x, int64_t y) { return (int64_t)((uint64_t)x + (uint64_t)y); }
static inline int64_t wrap_sub(int64_t x, int64_t y) { return (int64_t)((uint64_t)x - (uint64_t)y); }
static inline int64_t wrap_mul(int64_t x, int64_t y) { return (int64_t)((uint64_t)x * (uint64_t)y); }

static inline int64_t unary_i64(nn_unary_op op, int64_t x, double p0,
                                double p1) {
    switch (op) {
    case NN_NEG: return wrap_sub(0, x);
    case NN_ABS: return x < 0 ? wrap_sub(0, x) : x;
    case NN_SIGN: return (x > 0) - (x < 0);
    case NN_SQUARE: return wrap_mul(x, x);
    case NN_RELU: return x > 0 ? x : 0;
    case NN_CLAMP: return x < p0 ? nn_double_to_i64(p0) : (x > p1 ? nn_double_to_i64(p1) : x);
    default: return x; /* floor, ceil, round: integers already */
    }
}

static bool unary_keeps_i64(nn_unary_op op) {
    switch (op) {
    case NN_NEG: case NN_ABS: case NN_SIGN: case NN_SQUARE: case NN_RELU:
    case NN_CLAMP: case NN_FLOOR: case NN_CEIL: case NN_ROUND:
        return true;
    default:
        return false;
    }
}

static inline float remainder_f32(float x, float y) {
    float r = fmodf(x, y);
    return (r != 0.0f && ((r < 0.0f) != (y < 0.0f))) ? r + y : r;
}

/* x op y for one f32 element, from the table */
static inline float binary_f32(nn_binary_op op, float x, float y) {
#define BFORWARD_(id, name, f, ...) case NN_##id: return (float)(f);
    switch (op) {
    NN_BINARY_OPS(BFORWARD_)
    case NN_BINARY_COUNT: break;
    }
    return 0.0f;
}

static inline int64_t ipow(int64_t x, int64_t y) {
    int64_t r = 1;
    if (y < 0) return x == 1 ? 1 : (x == -1 ? (y & 1 ? -1 : 1) : 0);
    while (y) {
        if (y & 1) r = wrap_mul(r, x);
        x = wrap_mul(x, x);
        y >>= 1;
    }
    return r;
}

/* What an i64 row may report (ew_ctx.fault): the row still fills its
 * output, the caller discards it and raises. */
enum { FAULT_NONE, FAULT_DIV_ZERO, FAULT_DIV_OVERFLOW };

static inline void fault(int *where, int what) {
    __atomic_store_n(where, what, __ATOMIC_RELAXED);
}

/* i64 op i64; comparisons give 0/1 (stored by the caller as f32). Division
 * or remainder by zero, and INT64_MIN // -1, are faults. */
static inline int64_t binary_i64(nn_binary_op op, int64_t x, int64_t y, int *bad) {
    switch (op) {
    case NN_ADD: return wrap_add(x, y);
    case NN_SUB: return wrap_sub(x, y);
    case NN_MUL: return wrap_mul(x, y);
    case NN_POW: return ipow(x, y);
    case NN_MAXIMUM: return x > y ? x : y;
    case NN_MINIMUM: return x < y ? x : y;
    case NN_REMAINDER: {
        if (y == 0) return fault(bad, FAULT_DIV_ZERO), 0;
        if (y == -1) return 0; /* INT64_MIN % -1 traps on x86 */
        int64_t r = x % y;
        return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
    }
    case NN_FLOOR_DIVIDE: {
        if (y == 0) return fault(bad, FAULT_DIV_ZERO), 0;
        if (y == -1 && x == INT64_MIN) return fault(bad, FAULT_DIV_OVERFLOW), 0;
        int64_t q = x / y;
        return (x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q;
    }
    case NN_EQ: return x == y;
    case NN_NE: return x != y;
    case NN_LT: return x < y;
    case NN_LE: return x <= y;
    case NN_GT: return x > y;
    case NN_GE: return x >= y;
    default: return 0;
    }
}

static bool is_comparison(nn_binary_op op) { return op >= NN_EQ; }

/* ---- rows ---------------------------------------------------------------- */

typedef struct {
    int op;
    float p0, p1;
    nn_tensor *out;
    const nn_tensor *a, *b;
    int fault; /* FAULT_*, set by i64 rows */
} ew_ctx;

/* one loop per stride pattern: all unit, second operand broadcast, general;
 * T is the operands' C type */
#define LOOP2(T, EXPR)                                                       \
    do {                                                                     \
        if (so == 1 && sa == 1 && sb == 1)                                   \
            for (int64_t i = 0; i < n; i++) {                                \
                T x = a[i], y = b[i];                                        \
                o[i] = (EXPR);                                               \
            }                                                                \
        else if (so == 1 && sa == 1 && sb == 0) {                            \
            T y = b[0];                                                      \
            for (int64_t i = 0; i < n; i++) {                                \
                T x = a[i];                                                  \
                o[i] = (EXPR);                                               \
            }                                                                \
        } else                                                               \
            for (int64_t i = 0; i < n; i++) {                                \
                T x = a[i * sa], y = b[i * sb];                              \
                o[i * so] = (EXPR);                                          \
            }                                                                \
    } while (0)

NN_DISPATCH
static void binary_row_f32(void *vctx, int64_t n, const int64_t *off,
                           const int64_t *inner) {
    ew_ctx *c = vctx;
    float *o = nn_f32(c->out) + off[0];
    const float *a = nn_f32(c->a) + off[1];
    const float *b = nn_f32(c->b) + off[2];
    int64_t so = inner[0], sa = inner[1], sb = inner[2];
    switch ((nn_binary_op)c->op) {
    case NN_ADD: LOOP2(float, x + y); break;
    case NN_SUB: LOOP2(float, x - y); break;
    case NN_MUL: LOOP2(float, x * y); break;
    case NN_DIV: LOOP2(float, x / y); break;
    default: {
        nn_binary_op op = (nn_binary_op)c->op;
        LOOP2(float, binary_f32(op, x, y));
    }
    }
}

NN_DISPATCH
static void binary_row_i64(void *vctx, int64_t n, const int64_t *off,
                           const int64_t *inner) {
    ew_ctx *c = vctx;
    const int64_t *a = nn_i64(c->a) + off[1];
    const int64_t *b = nn_i64(c->b) + off[2];
    int64_t so = inner[0], sa = inner[1], sb = inner[2];
    nn_binary_op op = (nn_binary_op)c->op;
    if (c->out->dtype == NN_F32) { /* comparisons */
        float *o = nn_f32(c->out) + off[0];
        LOOP2(int64_t, (float)binary_i64(op, x, y, &c->fault));
        return;
    }
    int64_t *o = nn_i64(c->out) + off[0];
    switch (op) {
    case NN_ADD: LOOP2(int64_t, wrap_add(x, y)); break;
    case NN_SUB: LOOP2(int64_t, wrap_sub(x, y)); break;
    case NN_MUL: LOOP2(int64_t, wrap_mul(x, y)); break;
    default: LOOP2(int64_t, binary_i64(op, x, y, &c->fault)); break;
    }
}

#define LOOP1(EXPR)                                                          \
    do {                                                                     \
        for (int64_t i = 0; i < n; i++) {                                    \
            float x = a[i];                                                  \
            o[i] = (EXPR);                                                   \
        }                                                                    \
    } while (0)

/* contiguous f32 rows: one loop per op (from the table) so each vectorises */
NN_DISPATCH
static void unary_contiguous(nn_unary_op op, int64_t n, const float *a,
                             float *o, float p0, float p1) {
#define CONTIGUOUS_(id, name, f, ...) case NN_##id: LOOP1(f); break;
    switch (op) {
    NN_UNARY_OPS(CONTIGUOUS_)
    case NN_UNARY_COUNT: break;
    }
}

static void unary_row(void *vctx, int64_t n, const int64_t *off,
                      const int64_t *inner) {
    ew_ctx *c = vctx;
    int64_t so = inner[0], sa = inner[1];
    nn_unary_op op = (nn_unary_op)c->op;
    if (c->a->dtype == NN_I64) {
        int64_t *o = nn_i64(c->out) + off[0];
        const int64_t *a = nn_i64(c->a) + off[1];
        for (int64_t i = 0; i < n; i++)
            o[i * so] = unary_i64(op, a[i * sa], c->p0, c->p1);
        return;
    }
    float *o = nn_f32(c->out) + off[0];
    const float *a = nn_f32(c->a) + off[1];
    if (so == 1 && sa == 1) {
        unary_contiguous(op, n, a, o, c->p0, c->p1);
        return;
    }
    for (int64_t i = 0; i < n; i++) o[i * so] = unary_f32(op, a[i * sa], c->p0, c->p1);
}

/* ---- drivers ------------------------------------------------------------- */

/* 0 when t reads as out's elements in order, 1 when it is one element
 * (read for all), -1 otherwise: the small-tensor paths below skip the
 * iterator (its set-up costs more than a few elements' work) */
static int flat_stride(const nn_tensor *t, const nn_tensor *out) {
    if (nn_numel(t) == 1) return 1;
    if (t->ndim != out->ndim || memcmp(t->shape, out->shape, t->ndim * sizeof *t->shape))
        return -1;
    return nn_is_contiguous(t) ? 0 : -1;
}

static bool small_and_flat(const ew_ctx *c, int *flat_a, int *flat_b) {
    if (nn_numel(c->out) > NN_PAR_GRAIN || !nn_is_contiguous(c->out)) return false;
    *flat_a = flat_stride(c->a, c->out);
    *flat_b = c->b ? flat_stride(c->b, c->out) : 0;
    return *flat_a >= 0 && *flat_b >= 0;
}

static void run2(nn_row_fn row, ew_ctx *c) {
    int fa, fb;
    if (small_and_flat(c, &fa, &fb)) {
        row(c, nn_numel(c->out), (int64_t[]){0, 0}, (int64_t[]){1, fa ? 0 : 1});
        return;
    }
    nn_iter it;
    nn_iter_pair(&it, c->out, c->a);
    nn_iter_run(&it, row, c);
}

static void run3(nn_row_fn row, ew_ctx *c) {
    int fa, fb;
    if (small_and_flat(c, &fa, &fb)) {
        row(c, nn_numel(c->out), (int64_t[]){0, 0, 0}, (int64_t[]){1, fa ? 0 : 1, fb ? 0 : 1});
        return;
    }
    const nn_tensor *out = c->out;
    int64_t sa[NN_MAX_DIMS], sb[NN_MAX_DIMS];
    nn_broadcast_strides(c->a, out->ndim, out->shape, sa);
    nn_broadcast_strides(c->b, out->ndim, out->shape, sb);
    const int64_t *strides[3] = {out->stride, sa, sb};
    nn_iter it;
    nn_iter_init(&it, out->ndim, out->shape, 3, strides);
    nn_iter_run(&it, row, c);
}

static int unary_into(nn_unary_op op, nn_tensor *out, const nn_tensor *x,
                      double p0, double p1) {
    nn_tensor *tmp = NULL;
    if (x->dtype == NN_I64 && out->dtype == NN_F32) {
        if (!(tmp = nn_to_dtype(x, NN_F32))) return -1;
        x = tmp;
    }
    ew_ctx c = {op, (float)p0, (float)p1, out, x, NULL, FAULT_NONE};
    run2(unary_row, &c);
    nn_release(tmp);
    return 0;
}

static nn_tensor *unary(nn_unary_op op, const nn_tensor *x, double p0,
                        double p1) {
    if ((unsigned)op >= NN_UNARY_COUNT) return nn_fail(0, "unknown unary op");
    nn_dtype dt = (x->dtype == NN_I64 && unary_keeps_i64(op)) ? NN_I64 : NN_F32;
    nn_tensor *out = nn_empty(dt, x->ndim, x->shape);
    if (!out) return NULL;
    if (dt == NN_I64) {
        ew_ctx c = {op, (float)p0, (float)p1, out, x, NULL, FAULT_NONE};
        run2(unary_row, &c);
        return out;
    }
    if (unary_into(op, out, x, p0, p1) < 0) {
        nn_release(out);
        return NULL;
    }
    return out;
}

static int refuse_inplace(const nn_tensor *x, const char *what) {
    if (nn_check_writable(x, 1) < 0) return -1;
    if (nn_is_grad_enabled() && x->requires_grad)
        return nn_failed(1, "in-place %s on a tensor that requires grad: use "
                            "the out-of-place form (or nn.no_grad)", what);
    return 0;
}

int nn_unary_(nn_unary_op op, nn_tensor *x, double p0, double p1) {
    if (refuse_inplace(x, nn_unary_names[op]) < 0) return -1;
    if (nn_is_half(x->dtype)) { /* in f32, rounded back into x */
        nn_tensor *y = nn_unary(op, x, p0, p1);
        int rc = y ? nn_copy_(x, y) : -1;
        nn_release(y);
        return rc;
    }
    if (x->dtype == NN_I64 && !unary_keeps_i64(op))
        return nn_failed(1, "%s_ of an i64 tensor would not stay i64",
                         nn_unary_names[op]);
    ew_ctx c = {op, (float)p0, (float)p1, x, x, NULL, FAULT_NONE};
    run2(unary_row, &c);
    nn_bump_version(x);
    return 0;
}

static nn_dtype binary_dtype(nn_binary_op op, nn_dtype a, nn_dtype b) {
    if (is_comparison(op)) return NN_F32;
    if (a == NN_I64 && b == NN_I64 && op != NN_DIV && op != NN_ATAN2)
        return NN_I64;
    return NN_F32;
}

/* compute a op b into out, converting i64 operands to f32 when needed */
static int binary_into(nn_binary_op op, nn_tensor *out, const nn_tensor *a,
                       const nn_tensor *b) {
    nn_tensor *ta = NULL, *tb = NULL;
    bool int_path = a->dtype == NN_I64 && b->dtype == NN_I64 &&
                    (out->dtype == NN_I64 || is_comparison(op));
    if (!int_path) {
        if (a->dtype == NN_I64 && !(a = ta = nn_to_dtype(a, NN_F32))) return -1;
        if (b->dtype == NN_I64 && !(b = tb = nn_to_dtype(b, NN_F32))) {
            nn_release(ta);
            return -1;
        }
    }
    ew_ctx c = {op, 0, 0, out, a, b, FAULT_NONE};
    run3(int_path ? binary_row_i64 : binary_row_f32, &c);
    nn_release(ta);
    nn_release(tb);
    if (c.fault == FAULT_DIV_ZERO)
        return nn_failed(2, "%s: integer division by zero", nn_binary_names[op]);
    if (c.fault == FAULT_DIV_OVERFLOW)
        return nn_failed(2, "%s: INT64_MIN // -1 overflows i64", nn_binary_names[op]);
    return 0;
}

static int broadcast_or_fail(const nn_tensor *a, const nn_tensor *b,
                             int64_t *shape, const char *what) {
    int nd = nn_broadcast_shape(a, b, shape);
    if (nd < 0) {
        char sa[96], sb[96];
        return nn_failed(2, "%s: shapes %s and %s do not broadcast", what,
                         nn_shape_str(a, sa, sizeof sa),
                         nn_shape_str(b, sb, sizeof sb));
    }
    return nd;
}

static nn_tensor *binary(nn_binary_op op, const nn_tensor *a, const nn_tensor *b) {
    int64_t shape[NN_MAX_DIMS];
    int nd = broadcast_or_fail(a, b, shape, nn_binary_names[op]);
    if (nd < 0) return NULL;
    nn_tensor *out = nn_empty(binary_dtype(op, a->dtype, b->dtype), nd, shape);
    if (out && binary_into(op, out, a, b) < 0) {
        nn_release(out);
        return NULL;
    }
    return out;
}

int nn_binary_(nn_binary_op op, nn_tensor *a, const nn_tensor *b) {
    if (refuse_inplace(a, nn_binary_names[op]) < 0) return -1;
    if (nn_is_half(a->dtype) || nn_is_half(b->dtype)) { /* in f32, rounded into a */
        int64_t shape[NN_MAX_DIMS];
        int nd = broadcast_or_fail(a, b, shape, nn_binary_names[op]);
        if (nd < 0) return -1;
        if (nd != a->ndim || memcmp(shape, a->shape, nd * sizeof *shape))
            return nn_failed(2, "in-place %s: result shape would differ", nn_binary_names[op]);
        if (a->dtype == NN_I64) return nn_failed(1, "in-place %s of an i64 tensor with a "
                                                    "16-bit float", nn_binary_names[op]);
        nn_tensor *y = nn_binary(op, a, b);
        int rc = y ? nn_copy_(a, y) : -1;
        nn_release(y);
        return rc;
    }
    int64_t shape[NN_MAX_DIMS];
    int nd = broadcast_or_fail(a, b, shape, nn_binary_names[op]);
    if (nd < 0) return -1;
    if (nd != a->ndim || memcmp(shape, a->shape, nd * sizeof *shape)) {
        char sa[96], sb[96];
        return nn_failed(2, "in-place %s: result shape would differ from the "
                         "%s tensor (other is %s)", nn_binary_names[op],
                         nn_shape_str(a, sa, sizeof sa),
                         nn_shape_str(b, sb, sizeof sb));
    }
    if (a->dtype != binary_dtype(op, a->dtype, b->dtype))
        return nn_failed(2, "in-place %s would change the dtype of an %s "
                         "tensor", nn_binary_names[op], nn_dtype_name(a->dtype));
    if (a->dtype == NN_I64 && (op == NN_FLOOR_DIVIDE || op == NN_REMAINDER)) {
        /* may fault halfway: compute aside so a is unchanged on error */
        nn_tensor *tmp = binary(op, a, b);
        int rc = tmp ? nn_copy_(a, tmp) : -1;
        nn_release(tmp);
        if (rc < 0) return -1;
    } else if (binary_into(op, a, a, b) < 0) {
        return -1;
    }
    nn_bump_version(a);
    return 0;
}

nn_tensor *nn_add(const nn_tensor *a, const nn_tensor *b) {
    return nn_binary(NN_ADD, a, b);
}

nn_tensor *nn_mul(const nn_tensor *a, const nn_tensor *b) {
    return nn_binary(NN_MUL, a, b);
}

/* ---- where --------------------------------------------------------------- */

static void where_row(void *vctx, int64_t n, const int64_t *off,
                      const int64_t *inner) {
    const nn_tensor *const *t = vctx; /* out, cond, a, b: all f32 */
    float *o = nn_f32(t[0]) + off[0];
    const float *c = nn_f32(t[1]) + off[1];
    const float *a = nn_f32(t[2]) + off[2];
    const float *b = nn_f32(t[3]) + off[3];
    for (int64_t i = 0; i < n; i++)
        o[i * inner[0]] = c[i * inner[1]] != 0.0f ? a[i * inner[2]] : b[i * inner[3]];
}

static nn_tensor *where(const nn_tensor *cond, const nn_tensor *a,
                        const nn_tensor *b) {
    int64_t s1[NN_MAX_DIMS], shape[NN_MAX_DIMS];
    int n1 = broadcast_or_fail(a, b, s1, "where");
    if (n1 < 0) return NULL;
    nn_tensor *ab = nn_empty(NN_F32, n1, s1); /* shape carrier only */
    if (!ab) return NULL;
    int nd = broadcast_or_fail(cond, ab, shape, "where");
    nn_release(ab);
    if (nd < 0) return NULL;
    const nn_tensor *in[3] = {cond, a, b};
    nn_tensor *conv[3] = {NULL, NULL, NULL};
    nn_tensor *out = nn_empty(NN_F32, nd, shape);
    for (int i = 0; out && i < 3; i++)
        if (in[i]->dtype != NN_F32 && !(in[i] = conv[i] = nn_to_dtype(in[i], NN_F32))) {
            nn_release(out);
            out = NULL;
        }
    if (out) {
        int64_t st[4][NN_MAX_DIMS];
        memcpy(st[0], out->stride, sizeof st[0]);
        for (int i = 0; i < 3; i++) nn_broadcast_strides(in[i], nd, shape, st[i + 1]);
        const int64_t *strides[4] = {st[0], st[1], st[2], st[3]};
        nn_iter it;
        nn_iter_init(&it, nd, shape, 4, strides);
        const nn_tensor *ctx[4] = {out, in[0], in[1], in[2]};
        nn_iter_run(&it, where_row, (void *)ctx);
    }
    for (int i = 0; i < 3; i++) nn_release(conv[i]);
    return out;
}

/* ---- autograd -------------------------------------------------------------
 * Shapes: x, y (the result) and g share one shape for unary ops; binary
 * gradients come out in the broadcast shape and the core sums them down. */

/* g f'(x) over contiguous rows, one loop per op from the table; x or y
 * may point at the other when the op did not save it (its derivative
 * does not read it) */
NN_DISPATCH
static void unary_grad_rows(nn_unary_op op, int64_t n, const float *xs, const float *ys,
                            const float *g, float *o, float p0, float p1) {
    (void)p0, (void)p1;
#define GRAD_(id, name, f, d, ...)                                            \
    case NN_##id:                                                             \
        for (int64_t i = 0; i < n; i++) {                                     \
            float x = xs[i], y = ys[i];                                       \
            (void)x, (void)y;                                                 \
            o[i] = g[i] * (d);                                                \
        }                                                                     \
        break;
    switch (op) {
    NN_UNARY_OPS(GRAD_)
    case NN_UNARY_COUNT: break;
    }
}

typedef struct { nn_unary_op op; float p0, p1; } unary_ctx;
enum { SAVED_X, SAVED_Y }; /* slots */

static int unary_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const unary_ctx *c = NN_CTX(n, unary_ctx);
    nn_saves saves = nn_unary_saves[c->op];
    nn_tensor *s = saves == NN_SAVES_NONE ? NULL
                   : nn_saved(n, saves == NN_SAVES_IN ? SAVED_X : SAVED_Y);
    if (saves != NN_SAVES_NONE && !s) return -1;
    nn_tensor *sc = s ? nn_contiguous(s) : NULL, *gc = nn_contiguous((nn_tensor *)g);
    nn_tensor *gx = nn_empty(NN_F32, n->in[0].ndim, n->in[0].shape);
    int rc = -1;
    if ((sc || !s) && gc && gx) {
        const float *gv = nn_f32(gc), *sv = sc ? nn_f32(sc) : gv;
        float *o = nn_f32(gx);
        int64_t count = nn_numel(gx), chunk = 16384;
#pragma omp parallel for if (count > NN_PAR_GRAIN)
        for (int64_t start = 0; start < count; start += chunk) {
            int64_t len = count - start < chunk ? count - start : chunk;
            unary_grad_rows(c->op, len, sv + start, sv + start, gv + start, o + start,
                            c->p0, c->p1);
        }
        gin[0] = gx;
        gx = NULL;
        rc = 0;
    }
    nn_release(sc); nn_release(gc); nn_release(gx);
    return rc;
}

/* g f'(x) from engine ops, for a create_graph backward */
static int unary_backward_graph(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    const unary_ctx *c = NN_CTX(n, unary_ctx);
    nn_saves saves = nn_unary_saves[c->op];
    nn_tensor *x = saves == NN_SAVES_IN ? nn_saved(n, SAVED_X) : NULL;
    nn_tensor *y = saves == NN_SAVES_OUT ? nn_saved(n, SAVED_Y) : NULL;
    if (saves != NN_SAVES_NONE && !x && !y) return -1;
    nn_scope s = {0};
    nn_tensor *d = NULL; /* f'(x) */
    int prev;
    switch (c->op) {
    case NN_NEG: d = g_k(&s, -1); break;
    case NN_EXP: d = y; break;
    case NN_LOG: d = g_un(&s, NN_RECIPROCAL, x); break;
    case NN_SQRT: d = g_div(&s, g_k(&s, 0.5), y); break;
    case NN_RSQRT: d = g_mulk(&s, g_mul(&s, y, g_mul(&s, y, y)), -0.5); break;
    case NN_SIN: d = g_un(&s, NN_COS, x); break;
    case NN_COS: d = g_mulk(&s, g_un(&s, NN_SIN, x), -1); break;
    case NN_TANH: d = g_sub(&s, g_k(&s, 1), g_mul(&s, y, y)); break;
    case NN_SIGMOID: d = g_mul(&s, y, g_sub(&s, g_k(&s, 1), y)); break;
    case NN_GELU: d = g_un(&s, NN_GELU_DERIV, x); break;
    case NN_SILU: d = g_un(&s, NN_SILU_DERIV, x); break;
    case NN_GELU_TANH: d = g_un(&s, NN_GELU_TANH_DERIV, x); break;
    case NN_ELU: d = g_unp(&s, NN_ELU_DERIV, x, c->p0, 0); break;
    case NN_SOFTPLUS: d = g_unp(&s, NN_SOFTPLUS_DERIV, x, c->p0, c->p1); break;
    case NN_MISH: d = g_un(&s, NN_MISH_DERIV, x); break;
    case NN_HARDSWISH: d = g_un(&s, NN_HARDSWISH_DERIV, x); break;
    case NN_RECIPROCAL: d = g_mulk(&s, g_mul(&s, y, y), -1); break;
    case NN_SQUARE: d = g_mulk(&s, x, 2); break;
    case NN_LOG1P: d = g_un(&s, NN_RECIPROCAL, g_add(&s, x, g_k(&s, 1))); break;
    case NN_EXPM1: d = g_add(&s, y, g_k(&s, 1)); break;
    case NN_FLOOR: case NN_CEIL: case NN_ROUND: case NN_SIGN: /* zero */
        return 0;
    case NN_ABS: case NN_RELU: case NN_CLAMP: case NN_LEAKY_RELU: case NN_HARDSIGMOID:
    case NN_HARDSWISH_DERIV:
        d = NULL;
        break;
    default:
        return nn_failed(0, "%s has no double backward", n->op->name);
    }
    if (!d) { /* piecewise: f'(x) is a constant mask, computed without history */
        prev = nn_grad_off();
        nn_tensor *src = x ? x : y, *m = nn_empty(NN_F32, src->ndim, src->shape);
        nn_tensor *gs = m ? nn_contiguous(src) : NULL;
        nn_tensor *ones = gs ? nn_full(src->ndim, src->shape, 1.0) : NULL;
        if (ones) {
            const float *sv = nn_f32(gs);
            unary_grad_rows(c->op, nn_numel(m), sv, sv, nn_f32(ones), nn_f32(m), c->p0, c->p1);
        }
        nn_grad_restore(prev);
        nn_release(gs);
        d = g_keep(&s, ones ? m : (nn_release(m), NULL));
        nn_release(ones);
    }
    gin[0] = nn_scope_result(&s, g_mul(&s, g, d));
    return nn_scope_end(&s);
}

#define UNARY_OP_(id, name, ...) {#name, unary_backward, sizeof(unary_ctx), NULL, \
                                  unary_backward_graph},
static const nn_op unary_ops[NN_UNARY_COUNT] = {NN_UNARY_OPS(UNARY_OP_)};

nn_tensor *nn_unary(nn_unary_op op, const nn_tensor *x, double p0, double p1) {
    if (nn_is_half(x->dtype)) { /* in f32, rounded back */
        nn_tensor *xf = nn_widen(x), *y = xf ? nn_unary(op, xf, p0, p1) : NULL;
        nn_release(xf);
        return nn_narrow_to(y, x->dtype);
    }
    if ((unsigned)op >= NN_UNARY_COUNT) return nn_fail(0, "unknown unary op");
    int prev = nn_grad_off();
    nn_tensor *y = unary(op, x, p0, p1);
    nn_grad_restore(prev);
    nn_node *node;
    y = nn_finish_op(y, &unary_ops[op], 1, &x, &node);
    if (node) {
        *NN_CTX(node, unary_ctx) = (unary_ctx){op, (float)p0, (float)p1};
        nn_saves saves = nn_unary_saves[op];
        if ((saves == NN_SAVES_IN && nn_save(node, SAVED_X, x) < 0) ||
            (saves == NN_SAVES_OUT && nn_save(node, SAVED_Y, y) < 0)) {
            nn_release(y);
            return NULL;
        }
    }
    return y;
}

/* a op b's gradients in the broadcast shape, from engine ops */
typedef struct { nn_binary_op op; } binary_ctx;
enum { SAVED_A, SAVED_B, SAVED_OUT }; /* slots */
enum { READS_NONE = 0, READS_A = 1, READS_B = 2, READS_AB = 3, READS_ABO = 7 };
#define READS_(id, name, f, da, db, ra, rb) {READS_##ra, READS_##rb},
static const unsigned char binary_reads[NN_BINARY_COUNT][2] = {NN_BINARY_OPS(READS_)};

/* what the tape keeps (READS_ bits) for the inputs that need gradients */
static int binary_keeps(nn_binary_op op, bool na, bool nb) {
    return (na ? binary_reads[op][0] : 0) | (nb ? binary_reads[op][1] : 0);
}

typedef struct {
    nn_binary_op op;
    int side;              /* 0: g d/da, 1: g d/db */
    nn_tensor *out;        /* the gradient, in the broadcast shape */
    const float *g, *a, *b, *o;
} bgrad_ctx;

/* one row of g times a derivative from the table; the operands an op does
 * not read point at g (valid memory, never used) */
NN_DISPATCH
static void binary_grad_row(void *vctx, int64_t n, const int64_t *off, const int64_t *inner) {
    bgrad_ctx *c = vctx;
    float *d = nn_f32(c->out) + off[0];
    const float *g = c->g + off[1], *a = c->a + off[2], *b = c->b + off[3], *oo = c->o + off[4];
    int64_t sd = inner[0], sg = inner[1], sa = inner[2], sb = inner[3], so = inner[4];
/* one loop per stride pattern (all unit; b or a a broadcast scalar; any),
 * so the common cases vectorise */
#define GLOOP(EXPR)                                                                        \
    do {                                                                                   \
        if (sd == 1 && sg == 1 && so <= 1 && sa == 1 && sb == 1)                           \
            for (int64_t i = 0; i < n; i++) {                                              \
                float x = a[i], y = b[i], o = oo[i * so];                                  \
                (void)x, (void)y, (void)o;                                                 \
                d[i] = g[i] * (EXPR);                                                      \
            }                                                                              \
        else if (sd == 1 && sg == 1 && so <= 1 && sa == 1 && sb == 0) {                    \
            const float y = b[0];                                                          \
            for (int64_t i = 0; i < n; i++) {                                              \
                float x = a[i], o = oo[i * so];                                            \
                (void)x, (void)y, (void)o;                                                 \
                d[i] = g[i] * (EXPR);                                                      \
            }                                                                              \
        } else if (sd == 1 && sg == 1 && so <= 1 && sa == 0 && sb == 1) {                  \
            const float x = a[0];                                                          \
            for (int64_t i = 0; i < n; i++) {                                              \
                float y = b[i], o = oo[i * so];                                            \
                (void)x, (void)y, (void)o;                                                 \
                d[i] = g[i] * (EXPR);                                                      \
            }                                                                              \
        } else                                                                             \
            for (int64_t i = 0; i < n; i++) {                                              \
                float x = a[i * sa], y = b[i * sb], o = oo[i * so];                        \
                (void)x, (void)y, (void)o;                                                 \
                d[i * sd] = g[i * sg] * (EXPR);                                            \
            }                                                                              \
    } while (0)
#define BGRAD_(id, name, f, da, db, ...)                                                   \
    case NN_##id:                                                                          \
        if (c->side) GLOOP(db);                                                            \
        else GLOOP(da);                                                                    \
        break;
    switch (c->op) {
    NN_BINARY_OPS(BGRAD_)
    case NN_BINARY_COUNT: break;
    }
}

/* the operands the derivatives of the inputs that need them read */
static int binary_saved(nn_node *n, nn_binary_op op, const bool *need, nn_tensor **a,
                        nn_tensor **b, nn_tensor **o) {
    int keeps = binary_keeps(op, need[0], need[1]);
    *a = keeps & READS_A ? nn_saved(n, SAVED_A) : NULL;
    *b = keeps & READS_B ? nn_saved(n, SAVED_B) : NULL;
    *o = keeps & 4 ? nn_saved(n, SAVED_OUT) : NULL;
    return (keeps & READS_A && !*a) || (keeps & READS_B && !*b) || (keeps & 4 && !*o) ? -1 : 0;
}

/* g d/da and g d/db in the broadcast shape (g's), from the saved tensors */
static int binary_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    nn_binary_op op = NN_CTX(n, binary_ctx)->op;
    bool need[2] = {nn_input_needs(n, 0), nn_input_needs(n, 1)};
    if (op == NN_ADD || (op == NN_SUB && !need[1])) { /* g itself (the core sums broadcasts) */
        for (int side = 0; side < 2; side++)
            if (need[side]) gin[side] = nn_retain((nn_tensor *)g);
        return 0;
    }
    nn_tensor *a, *b, *o;
    if (binary_saved(n, op, need, &a, &b, &o) < 0) return -1;
    nn_tensor *conv[2] = {NULL, NULL}; /* an i64 operand (a mask, a count) read as f32 */
    if (a && a->dtype != NN_F32 && !(a = conv[0] = nn_to_dtype(a, NN_F32))) return -1;
    if (b && b->dtype != NN_F32 && !(b = conv[1] = nn_to_dtype(b, NN_F32))) {
        nn_release(conv[0]);
        return -1;
    }
    int rc = 0, nd = g->ndim;
    int64_t st[5][NN_MAX_DIMS];
    const nn_tensor *src[4] = {g, a ? a : g, b ? b : g, o ? o : g};
    for (int i = 0; i < 4; i++) nn_broadcast_strides(src[i], nd, g->shape, st[i + 1]);
    for (int side = 0; side < 2 && rc == 0; side++) {
        if (!need[side]) continue;
        if (!(gin[side] = nn_empty(NN_F32, nd, g->shape))) {
            rc = -1;
            break;
        }
        memcpy(st[0], gin[side]->stride, sizeof st[0]);
        const int64_t *strides[5] = {st[0], st[1], st[2], st[3], st[4]};
        bgrad_ctx c = {op, side, gin[side], nn_f32(src[0]), nn_f32(src[1]), nn_f32(src[2]),
                       nn_f32(src[3])};
        nn_iter it;
        nn_iter_init(&it, nd, g->shape, 5, strides);
        nn_iter_run(&it, binary_grad_row, &c);
    }
    nn_release(conv[0]);
    nn_release(conv[1]);
    return rc;
}

/* g da and g db from engine ops, for a create_graph backward; the
 * piecewise ops' derivatives are constant masks */
static int binary_backward_graph(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    nn_binary_op op = NN_CTX(n, binary_ctx)->op;
    bool need[2] = {nn_input_needs(n, 0), nn_input_needs(n, 1)};
    nn_tensor *a, *b, *o;
    if (binary_saved(n, op, need, &a, &b, &o) < 0) return -1;
    nn_scope s = {0};
    nn_tensor *d[2] = {NULL, NULL};
    switch (op) {
    case NN_ADD: d[0] = g_k(&s, 1); d[1] = g_k(&s, 1); break;
    case NN_SUB: d[0] = g_k(&s, 1); d[1] = g_k(&s, -1); break;
    case NN_MUL: d[0] = b; d[1] = a; break;
    case NN_DIV:
        d[0] = need[0] ? g_un(&s, NN_RECIPROCAL, b) : NULL;
        d[1] = need[1] ? g_mulk(&s, g_div(&s, g_div(&s, a, b), b), -1) : NULL;
        break;
    case NN_POW:
        d[0] = need[0] ? g_mul(&s, b, g_bin(&s, NN_POW, a, g_sub(&s, b, g_k(&s, 1)))) : NULL;
        if (need[1]) { /* o log(a), 0 where a == 0 */
            nn_tensor *z = g_k(&s, 0), *az = g_bin(&s, NN_EQ, a, z);
            nn_tensor *one = g_k(&s, 1), *safe = az ? g_keep(&s, nn_where(az, one, a)) : NULL;
            nn_tensor *l = g_un(&s, NN_LOG, safe);
            d[1] = az && l ? g_keep(&s, nn_where(az, z, g_mul(&s, o, l))) : g_keep(&s, NULL);
        }
        break;
    case NN_ATAN2: {
        nn_tensor *r = g_add(&s, g_mul(&s, a, a), g_mul(&s, b, b));
        d[0] = g_div(&s, b, r);
        d[1] = g_mulk(&s, g_div(&s, a, r), -1);
        break;
    }
    case NN_REMAINDER:
        d[0] = g_k(&s, 1);
        if (need[1]) {
            int prev = nn_grad_off();
            nn_tensor *q = nn_binary(NN_DIV, a, b), *f = q ? nn_unary(NN_FLOOR, q, 0, 0) : NULL;
            nn_release(q);
            nn_grad_restore(prev);
            d[1] = g_mulk(&s, g_keep(&s, f), -1);
        }
        break;
    case NN_MAXIMUM: case NN_MINIMUM: { /* 1 where the side wins, 1/2 on ties */
        int prev = nn_grad_off(); /* masks without history */
        for (int side = 0; side < 2; side++) {
            if (!need[side]) continue;
            const nn_tensor *x = side ? b : a, *y = side ? a : b;
            nn_tensor *win = nn_binary(op == NN_MAXIMUM ? NN_GT : NN_LT, x, y);
            nn_tensor *tie = nn_binary(NN_EQ, x, y), *half = nn_scalar(NN_F32, 0.5);
            nn_tensor *ht = tie && half ? nn_mul(tie, half) : NULL;
            d[side] = g_keep(&s, win && ht ? nn_add(win, ht) : NULL);
            nn_release(win); nn_release(tie); nn_release(half); nn_release(ht);
        }
        nn_grad_restore(prev);
        break;
    }
    case NN_FLOOR_DIVIDE: return 0;
    default:
        return nn_failed(0, "%s has no double backward", n->op->name);
    }
    for (int side = 0; side < 2; side++)
        if (need[side]) gin[side] = nn_scope_result(&s, g_mul(&s, g, d[side]));
    return nn_scope_end(&s);
}

#define BINARY_OP_(id, name, ...) {#name, binary_backward, sizeof(binary_ctx), NULL, \
                                   binary_backward_graph},
static const nn_op binary_ops[NN_BINARY_COUNT] = {NN_BINARY_OPS(BINARY_OP_)};

nn_tensor *nn_binary(nn_binary_op op, const nn_tensor *a, const nn_tensor *b) {
    if (nn_is_half(a->dtype) || nn_is_half(b->dtype)) { /* in f32, rounded back */
        const nn_tensor *ab[2] = {a, b};
        nn_tensor *af = nn_widen(a), *bf = af ? nn_widen(b) : NULL;
        nn_tensor *y = bf ? nn_binary(op, af, bf) : NULL;
        nn_release(af);
        nn_release(bf);
        return is_comparison(op) ? y : nn_narrow_to(y, nn_half_result(2, ab));
    }
    if ((unsigned)op >= NN_BINARY_COUNT) return nn_fail(0, "unknown binary op");
    int prev = nn_grad_off();
    nn_tensor *y = binary(op, a, b);
    nn_grad_restore(prev);
    if (is_comparison(op) || !y || y->dtype != NN_F32) return y; /* flat */
    const nn_tensor *ins[2] = {a, b};
    nn_node *node;
    y = nn_finish_op(y, &binary_ops[op], 2, ins, &node);
    if (!node) return y;
    NN_CTX(node, binary_ctx)->op = op;
    int keeps = binary_keeps(op, nn_input_needs(node, 0), nn_input_needs(node, 1));
    if ((keeps & READS_A && nn_save(node, SAVED_A, a) < 0) ||
        (keeps & READS_B && nn_save(node, SAVED_B, b) < 0) ||
        (keeps & 4 && nn_save(node, SAVED_OUT, y) < 0)) {
        nn_release(y);
        return NULL;
    }
    return y;
}

static int where_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    nn_tensor *c = nn_saved(n, 0);
    nn_tensor *zero = nn_scalar(NN_F32, 0);
    if (!c || !zero) {
        nn_release(zero);
        return -1;
    }
    int rc = 0;
    if (nn_input_needs(n, 1) && !(gin[1] = nn_where(c, g, zero))) rc = -1;
    if (nn_input_needs(n, 2) && !(gin[2] = nn_where(c, zero, g))) rc = -1;
    nn_release(zero);
    return rc;
}

NN_OP_TWICE_NO_CTX(where_op, "where", where_backward);

nn_tensor *nn_where(const nn_tensor *cond, const nn_tensor *a,
                    const nn_tensor *b) {
    if (nn_is_half(a->dtype) || nn_is_half(b->dtype)) { /* in f32, rounded back */
        const nn_tensor *ab[2] = {a, b};
        nn_tensor *af = nn_widen(a), *bf = af ? nn_widen(b) : NULL;
        nn_tensor *y = bf ? nn_where(cond, af, bf) : NULL;
        nn_release(af);
        nn_release(bf);
        return nn_narrow_to(y, nn_half_result(2, ab));
    }
    int prev = nn_grad_off();
    nn_tensor *y = where(cond, a, b);
    nn_grad_restore(prev);
    const nn_tensor *ins[3] = {cond, a, b};
    nn_node *node;
    return nn_finish_saving(y, &where_op, 3, ins, cond, &node);
}

/* clamp with tensor bounds (lo, hi broadcast with x, either NULL): the
 * gradient goes to x where lo <= x <= hi and to the bound it is clamped to
 * elsewhere, as PyTorch's */
nn_tensor *nn_clamp_tensor(const nn_tensor *x, const nn_tensor *lo, const nn_tensor *hi) {
    nn_tensor *y = nn_retain((nn_tensor *)x);
    const nn_tensor *bound[2] = {lo, hi};
    for (int k = 0; k < 2 && y; k++) {
        if (!bound[k]) continue;
        nn_tensor *past = nn_binary(k ? NN_GT : NN_LT, y, bound[k]);
        nn_tensor *next = past ? nn_where(past, bound[k], y) : NULL;
        nn_release(past);
        nn_release(y);
        y = next;
    }
    return y;
}
