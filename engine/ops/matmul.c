/* matmul.c -- NumPy-style matmul on cblas_sgemm.
 *
 * Shapes: a (..., N, K) @ b (..., K, M) -> (..., N, M); batch dims
 * broadcast; a 1-D operand is promoted to a matrix and the added dim
 * dropped from the result. Transposed operands (a:t(), k:transpose(-2,-1))
 * reach sgemm as a transpose flag, never as a copy. When b has no batch
 * dims and a's batch dims are laid out as consecutive rows, the whole
 * product is one sgemm with N*batch rows (the Linear layer case). */
#include "autograd.h"
#include "nn_ops.h"

#include <string.h>

typedef struct {
    const nn_tensor *t;
    nn_tensor *copy;    /* set when t's layout had to be made contiguous */
    int trans;
    int64_t ld;
} operand;

/* How sgemm can read the (rows, cols) matrix at the end of t. */
static int gemm_layout(operand *op, int64_t rows, int64_t cols) {
    const nn_tensor *t = op->t;
    int64_t rs = t->stride[t->ndim - 2], cs = t->stride[t->ndim - 1];
    if (rows == 1) rs = cols; /* a single row: its stride is irrelevant */
    if (cols == 1) cs = 1;
    if (cs == 1 && rs >= (cols > 1 ? cols : 1)) {
        op->trans = 0;
        op->ld = rs;
        return 0;
    }
    if (rs == 1 && cs >= (rows > 1 ? rows : 1)) {
        op->trans = 1;
        op->ld = cs;
        return 0;
    }
    nn_tensor *c = nn_clone(t);
    if (!c) return -1;
    op->t = op->copy = c;
    op->trans = 0;
    op->ld = cols > 1 ? cols : 1;
    return 0;
}

/* true when a's batch dims step by exactly rows*ld, so batch*rows rows
 * can be handed to sgemm as one matrix */
static bool batch_is_rows(const nn_tensor *a, int64_t rows, int64_t ld) {
    int64_t expect = rows * ld;
    for (int d = a->ndim - 3; d >= 0; d--) {
        if (a->shape[d] == 1) continue;
        if (a->stride[d] != expect) return false;
        expect *= a->shape[d];
    }
    return true;
}

static nn_tensor *matmul2(const nn_tensor *a, const nn_tensor *b,
                          int drop_n, int drop_m) {
    int64_t n = a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
    int64_t m = b->shape[b->ndim - 1];
    if (b->shape[b->ndim - 2] != k) {
        char sa[96], sb[96];
        return nn_fail(2, "size mismatch: %s @ %s", nn_shape_str(a, sa, 96),
                       nn_shape_str(b, sb, 96));
    }
    /* broadcast the batch dims */
    int nba = a->ndim - 2, nbb = b->ndim - 2;
    int nb = nba > nbb ? nba : nbb;
    int64_t shape[NN_MAX_DIMS + 2];
    for (int i = 0; i < nb; i++) {
        int ia = nba - nb + i, ib = nbb - nb + i;
        int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char s1[96], s2[96];
            return nn_fail(2, "batch dims do not broadcast: %s @ %s",
                           nn_shape_str(a, s1, 96), nn_shape_str(b, s2, 96));
        }
        shape[i] = sa == 1 ? sb : sa;
    }
    if (nb + 2 > NN_MAX_DIMS) return nn_fail(1, "too many dims");
    shape[nb] = n;
    shape[nb + 1] = m;
    nn_tensor *out = k ? nn_empty(NN_F32, nb + 2, shape)
                       : nn_zeros(NN_F32, nb + 2, shape);
    if (!out) return NULL;
    int64_t batch = nn_shape_numel(nb, shape);
    int bf16 = nn_autocast() == NN_BF16;
    operand oa = {a, NULL, 0, 0}, ob = {b, NULL, 0, 0};
    int rc = 0;
    if (n && m && k && batch) {
        if (gemm_layout(&oa, n, k) < 0 || gemm_layout(&ob, k, m) < 0) {
            rc = -1;
        } else if (nbb == 0 && !oa.trans && batch_is_rows(oa.t, n, oa.ld)) {
            rc = nn_gemm(bf16, 0, ob.trans, batch * n, m, k, 1.0f, nn_f32(oa.t),
                          oa.ld, nn_f32(ob.t), ob.ld, 0.0f, nn_f32(out), m);
        } else {
            /* one sgemm per batch element; offsets from broadcast strides */
            int64_t sa[NN_MAX_DIMS] = {0}, sb[NN_MAX_DIMS] = {0};
            for (int i = 0; i < nb; i++) {
                int ia = nba - nb + i, ib = nbb - nb + i;
                if (ia >= 0 && oa.t->shape[ia] == shape[i]) sa[i] = oa.t->stride[ia];
                if (ib >= 0 && ob.t->shape[ib] == shape[i]) sb[i] = ob.t->stride[ib];
            }
            for (int64_t bi = 0; bi < batch && rc == 0; bi++) {
                int64_t rem = bi, offa = 0, offb = 0;
                for (int d = nb - 1; d >= 0; d--) {
                    int64_t idx = rem % shape[d];
                    rem /= shape[d];
                    offa += idx * sa[d];
                    offb += idx * sb[d];
                }
                rc = nn_gemm(bf16, oa.trans, ob.trans, n, m, k, 1.0f,
                              nn_f32(oa.t) + offa, oa.ld, nn_f32(ob.t) + offb,
                              ob.ld, 0.0f, nn_f32(out) + bi * n * m, m);
            }
        }
    }
    nn_release(oa.copy);
    nn_release(ob.copy);
    if (rc < 0) {
        nn_release(out);
        return NULL;
    }
    if (drop_n || drop_m) { /* remove the dims added for 1-D operands */
        int64_t s2[NN_MAX_DIMS];
        int nd = 0;
        for (int i = 0; i < nb; i++) s2[nd++] = shape[i];
        if (!drop_n) s2[nd++] = n;
        if (!drop_m) s2[nd++] = m;
        nn_tensor *v = nn_view(out, nd, s2);
        nn_release(out);
        return v;
    }
    return out;
}

static nn_tensor *matmul(const nn_tensor *a, const nn_tensor *b) {
    if (a->dtype != NN_F32 || b->dtype != NN_F32)
        return nn_fail(a->dtype != NN_F32 ? 1 : 2,
                       "matmul expects f32 tensors, got %s and %s",
                       nn_dtype_name(a->dtype), nn_dtype_name(b->dtype));
    if (a->ndim == 0 || b->ndim == 0)
        return nn_fail(a->ndim == 0 ? 1 : 2,
                       "matmul needs tensors with at least one dim");
    nn_tensor *va = NULL, *vb = NULL;
    int drop_n = a->ndim == 1, drop_m = b->ndim == 1;
    if (drop_n) a = va = nn_unsqueeze((nn_tensor *)a, 0);
    if (drop_m) b = vb = nn_unsqueeze((nn_tensor *)b, 1);
    nn_tensor *out = (a && b) ? matmul2(a, b, drop_n, drop_m) : NULL;
    nn_release(va);
    nn_release(vb);
    return out;
}

/* ga = g @ b^T and gb = a^T @ g, on matrices (1-D operands get their dim
 * back first, and lose it after); batch dims are summed by the core. */
enum { SAVED_A, SAVED_B }; /* a for gb, b for ga: each only when needed */

static int matmul_grads(nn_node *n, const nn_tensor *g, nn_tensor **gin);
typedef struct { nn_dtype autocast; } matmul_ctx; /* the forward's: backward uses it too */

static int matmul_backward(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    nn_dtype prev = nn_set_autocast(NN_CTX(n, matmul_ctx)->autocast);
    int rc = matmul_grads(n, g, gin);
    nn_set_autocast(prev);
    return rc;
}

static int matmul_grads(nn_node *n, const nn_tensor *g, nn_tensor **gin) {
    bool na = nn_input_needs(n, 0), nb = nn_input_needs(n, 1);
    nn_tensor *a = nb ? nn_saved(n, SAVED_A) : NULL, *b = na ? nn_saved(n, SAVED_B) : NULL;
    if ((nb && !a) || (na && !b)) return -1;
    int va = n->in[0].ndim == 1, vb = n->in[1].ndim == 1;
    nn_tensor *a2 = !a ? NULL : va ? nn_unsqueeze(a, 0) : nn_retain(a);
    nn_tensor *b2 = !b ? NULL : vb ? nn_unsqueeze(b, 1) : nn_retain(b);
    nn_tensor *g1 = va ? nn_unsqueeze((nn_tensor *)g, g->ndim - (vb ? 0 : 1))
                       : nn_retain((nn_tensor *)g);
    nn_tensor *g2 = g1 && vb ? nn_unsqueeze(g1, g1->ndim) : nn_retain(g1);
    int rc = (a2 || !a) && (b2 || !b) && g2 ? 0 : -1;
    if (rc == 0 && nn_input_needs(n, 0)) {
        nn_tensor *bt = nn_transpose(b2, -1, -2);
        nn_tensor *ga = bt ? nn_matmul(g2, bt) : NULL; /* records: twice */
        gin[0] = ga && va ? nn_squeeze(ga, -2) : nn_retain(ga);
        nn_release(bt);
        nn_release(ga);
        if (!gin[0]) rc = -1;
    }
    if (rc == 0 && nn_input_needs(n, 1) && a2->ndim > 2 && n->in[1].ndim == 2) {
        /* a (..., N, K) against one matrix b: gb = a^T g over all the rows
         * at once, one (K, M) GEMM instead of a batch of them summed */
        int64_t k = a2->shape[a2->ndim - 1], m = g2->shape[g2->ndim - 1];
        nn_tensor *ar = nn_reshape(a2, 2, (int64_t[]){-1, k});
        nn_tensor *gr = ar ? nn_reshape(g2, 2, (int64_t[]){-1, m}) : NULL;
        nn_tensor *at = gr ? nn_transpose(ar, 0, 1) : NULL;
        nn_tensor *gb = at ? nn_matmul(at, gr) : NULL;
        gin[1] = gb && vb ? nn_squeeze(gb, -1) : nn_retain(gb);
        nn_release(ar); nn_release(gr); nn_release(at); nn_release(gb);
        if (!gin[1]) rc = -1;
    } else if (rc == 0 && nn_input_needs(n, 1)) {
        nn_tensor *at = nn_transpose(a2, -1, -2);
        nn_tensor *gb = at ? nn_matmul(at, g2) : NULL;
        gin[1] = gb && vb ? nn_squeeze(gb, -1) : nn_retain(gb);
        nn_release(at);
        nn_release(gb);
        if (!gin[1]) rc = -1;
    }
    nn_release(a2); nn_release(b2); nn_release(g1); nn_release(g2);
    return rc;
}

NN_OP_TWICE(matmul_op, "matmul", matmul_backward, matmul_ctx);

nn_tensor *nn_matmul(const nn_tensor *a, const nn_tensor *b) {
    if (nn_is_half(a->dtype) || nn_is_half(b->dtype)) { /* in f32, rounded back */
        const nn_tensor *ab[2] = {a, b};
        nn_tensor *af = nn_widen(a), *bf = af ? nn_widen(b) : NULL;
        nn_tensor *y = bf ? nn_matmul(af, bf) : NULL;
        nn_release(af);
        nn_release(bf);
        return nn_narrow_to(y, nn_half_result(2, ab));
    }
    int prev = nn_grad_off();
    nn_tensor *y = matmul(a, b);
    nn_grad_restore(prev);
    const nn_tensor *ins[2] = {a, b};
    nn_node *node;
    y = nn_finish_op(y, &matmul_op, 2, ins, &node);
    if (node) NN_CTX(node, matmul_ctx)->autocast = nn_autocast();
    if (node && ((nn_input_needs(node, 1) && nn_save(node, SAVED_A, a) < 0) ||
                 (nn_input_needs(node, 0) && nn_save(node, SAVED_B, b) < 0))) {
        nn_release(y);
        return NULL;
    }
    return y;
}
