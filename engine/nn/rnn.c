/* rnn.c -- the recurrence of RNN (tanh, relu), LSTM and GRU over a whole
 * sequence, for one direction of one layer, with backpropagation through
 * time.
 *
 * The input side x W_ih^T + b_ih of every step is one GEMM the caller
 * makes beforehand (xw, (T, B, G H)). What is left runs here step by step:
 * one (B, H) x (H, G H) product for the hidden side, then every gate in one
 * fused pass. Gate order is PyTorch's: LSTM i, f, g, o; GRU r, z, n, with
 * n = tanh(x_n + r (h W_hn^T + b_hn)).
 *
 * Variable lengths: at time t the rows with t < length are active; the
 * others keep their state and output zero, so the final state is the one at
 * each length, and a reverse direction starts each sequence at its own last
 * step (PyTorch's packed sequences).
 *
 * Saved for backward, by time: the state each step started from, and the
 * activated gates (RNN: h; LSTM: i f g o and the new c; GRU: r z n and the
 * hidden side of n, which r multiplies). Backward runs the steps in
 * reverse, one (B, G H) x (G H, H) product each, and makes dW_hh with one
 * product over all steps at the end. */
#include "autograd.h"
#include "nn_layers.h"
#include "vecmath.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    nn_rnn_mode mode;
    int64_t t, b, h;
    int reverse;
} scan_ctx;

enum { IN_XW, IN_WHH, IN_BHH, IN_H0, IN_C0, N_IN };
enum { S_WHH, S_HPREV, S_CPREV, S_ACTS, S_LENGTHS };

static int64_t gates_of(nn_rnn_mode m) { return m == NN_LSTM ? 4 : m == NN_GRU ? 3 : 1; }
static int64_t acts_of(nn_rnn_mode m) { return m == NN_LSTM ? 5 : m == NN_GRU ? 4 : 1; }

static inline bool active(const int64_t *len, int64_t b, int64_t t) { return !len || t < len[b]; }

/* one step's gates for row b: x and q the input and hidden sides (G H),
 * h and c the state (updated), a the saved activations, y the output */
static void step_forward(nn_rnn_mode mode, int64_t H, const float *x, const float *q, float *h,
                         float *c, float *a, float *y) {
    switch (mode) {
    case NN_RNN_TANH:
    case NN_RNN_RELU:
        for (int64_t j = 0; j < H; j++) {
            float p = x[j] + q[j];
            h[j] = a[j] = mode == NN_RNN_TANH ? nn_tanhf(p) : (p > 0 ? p : 0);
        }
        break;
    case NN_LSTM:
        for (int64_t j = 0; j < H; j++) {
            float i = nn_sigmoidf(x[j] + q[j]), f = nn_sigmoidf(x[H + j] + q[H + j]);
            float g = nn_tanhf(x[2 * H + j] + q[2 * H + j]);
            float o = nn_sigmoidf(x[3 * H + j] + q[3 * H + j]);
            c[j] = f * c[j] + i * g;
            h[j] = o * nn_tanhf(c[j]);
            a[j] = i, a[H + j] = f, a[2 * H + j] = g, a[3 * H + j] = o, a[4 * H + j] = c[j];
        }
        break;
    case NN_GRU:
        for (int64_t j = 0; j < H; j++) {
            float r = nn_sigmoidf(x[j] + q[j]), z = nn_sigmoidf(x[H + j] + q[H + j]);
            float nh = q[2 * H + j], n = nn_tanhf(x[2 * H + j] + r * nh);
            h[j] = (1 - z) * n + z * h[j];
            a[j] = r, a[H + j] = z, a[2 * H + j] = n, a[3 * H + j] = nh;
        }
        break;
    }
    memcpy(y, h, (size_t)H * sizeof *y);
}

/* row b of one step backward: dh the gradient reaching h (in), a the saved
 * activations, hp and cp the state before the step; writes the gradients
 * of the input side dx and hidden side dq (G H, the same but for GRU's n),
 * *dc (in: reaching the new c; out: reaching the old), and into direct
 * the part of dh_prev that skips W_hh (GRU's z h_prev) */
static void step_backward(nn_rnn_mode mode, int64_t H, const float *dh, const float *a,
                          const float *hp, const float *cp, float *dx, float *dq, float *dc,
                          float *direct) {
    switch (mode) {
    case NN_RNN_TANH:
    case NN_RNN_RELU:
        for (int64_t j = 0; j < H; j++) {
            dx[j] = mode == NN_RNN_TANH ? dh[j] * (1 - a[j] * a[j]) : (a[j] > 0 ? dh[j] : 0);
            direct[j] = 0;
        }
        break;
    case NN_LSTM:
        for (int64_t j = 0; j < H; j++) {
            float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
            float tc = nn_tanhf(a[4 * H + j]);
            float dcj = dc[j] + dh[j] * o * (1 - tc * tc);
            dx[j] = dcj * g * i * (1 - i);
            dx[H + j] = dcj * cp[j] * f * (1 - f);
            dx[2 * H + j] = dcj * i * (1 - g * g);
            dx[3 * H + j] = dh[j] * tc * o * (1 - o);
            dc[j] = dcj * f;
            direct[j] = 0;
        }
        break;
    case NN_GRU:
        for (int64_t j = 0; j < H; j++) {
            float r = a[j], z = a[H + j], n = a[2 * H + j], nh = a[3 * H + j];
            float dn = dh[j] * (1 - z) * (1 - n * n);
            dx[j] = dq[j] = dn * nh * r * (1 - r);
            dx[H + j] = dq[H + j] = dh[j] * (hp[j] - n) * z * (1 - z);
            dx[2 * H + j] = dn;
            dq[2 * H + j] = dn * r;
            direct[j] = dh[j] * z;
        }
        break;
    }
}

static nn_tensor *contiguous_or_null(const nn_tensor *t) {
    return t ? nn_contiguous((nn_tensor *)t) : NULL;
}

static int scan_backward(nn_node *n, const nn_tensor *unused, nn_tensor **gin) {
    (void)unused;
    const scan_ctx c = *NN_CTX(n, scan_ctx);
    int64_t T = c.t, B = c.b, H = c.h, G = gates_of(c.mode) * H, A = acts_of(c.mode) * H;
    nn_tensor *whh = nn_saved(n, S_WHH), *hprev = nn_saved(n, S_HPREV);
    nn_tensor *acts = nn_saved(n, S_ACTS);
    nn_tensor *cprev = c.mode == NN_LSTM ? nn_saved(n, S_CPREV) : NULL;
    if (!whh || !hprev || !acts || (c.mode == NN_LSTM && !cprev)) return -1;
    const int64_t *len = n->saved[S_LENGTHS] ? nn_i64(n->saved[S_LENGTHS]) : NULL;
    nn_tensor *gout = contiguous_or_null(n->gouts[0]), *ghn = contiguous_or_null(n->gouts[1]);
    nn_tensor *gcn = n->nout > 2 ? contiguous_or_null(n->gouts[2]) : NULL;
    bool gru = c.mode == NN_GRU;
    nn_tensor *dx = nn_empty(NN_F32, 3, (int64_t[]){T, B, G});
    nn_tensor *dq = gru ? nn_empty(NN_F32, 3, (int64_t[]){T, B, G}) : nn_retain(dx);
    nn_tensor *dh = ghn ? nn_clone(ghn) : nn_zeros(NN_F32, 2, (int64_t[]){B, H});
    nn_tensor *dc = gcn ? nn_clone(gcn) : nn_zeros(NN_F32, 2, (int64_t[]){B, H});
    nn_tensor *next = nn_empty(NN_F32, 2, (int64_t[]){B, H});
    nn_tensor *row = nn_empty(NN_F32, 1, (int64_t[]){H});
    int rc = (!n->gouts[0] || gout) && (!n->gouts[1] || ghn) && (n->nout < 3 || !n->gouts[2] || gcn) &&
             dx && dq && dh && dc && next && row ? 0 : -1;
    for (int64_t s = T - 1; rc == 0 && s >= 0; s--) {
        int64_t t = c.reverse ? T - 1 - s : s;
        float *dxt = nn_f32(dx) + t * B * G, *dqt = nn_f32(dq) + t * B * G;
        for (int64_t b = 0; b < B; b++) {
            float *nb = nn_f32(next) + b * H;
            if (!active(len, b, t)) { /* the state passes through untouched */
                memset(dxt + b * G, 0, (size_t)G * sizeof(float));
                if (gru) memset(dqt + b * G, 0, (size_t)G * sizeof(float));
                memset(nb, 0, (size_t)H * sizeof(float));
                continue;
            }
            float *dhb = nn_f32(row);
            for (int64_t j = 0; j < H; j++)
                dhb[j] = nn_f32(dh)[b * H + j] + (gout ? nn_f32(gout)[(t * B + b) * H + j] : 0);
            int64_t at = t * B + b;
            step_backward(c.mode, H, dhb, nn_f32(acts) + at * A, nn_f32(hprev) + at * H,
                          cprev ? nn_f32(cprev) + at * H : NULL, dxt + b * G, dqt + b * G,
                          nn_f32(dc) + b * H, nb);
        }
        rc = nn_gemm(0, 0, 0, B, H, G, 1.0f, dqt, G, nn_f32(whh), H, 1.0f, nn_f32(next), H);
        for (int64_t b = 0; rc == 0 && b < B; b++)
            if (active(len, b, t))
                memcpy(nn_f32(dh) + b * H, nn_f32(next) + b * H, (size_t)H * sizeof(float));
    }
    if (rc == 0 && nn_input_needs(n, IN_WHH)) { /* dW_hh (G H, H) = sum over steps dq^T h_prev */
        gin[IN_WHH] = nn_empty(NN_F32, 2, (int64_t[]){G, H});
        rc = gin[IN_WHH] ? nn_gemm(0, 1, 0, G, H, T * B, 1.0f, nn_f32(dq), G, nn_f32(hprev), H,
                                   0.0f, nn_f32(gin[IN_WHH]), H)
                         : -1;
    }
    if (rc == 0 && nn_input_needs(n, IN_BHH)) {
        nn_tensor *flat = nn_reshape(dq, 2, (int64_t[]){T * B, G});
        gin[IN_BHH] = flat ? nn_sum(flat, 1, (int[]){0}, 0) : NULL;
        nn_release(flat);
        if (!gin[IN_BHH]) rc = -1;
    }
    if (rc == 0 && nn_input_needs(n, IN_XW)) gin[IN_XW] = nn_retain(dx);
    if (rc == 0 && nn_input_needs(n, IN_H0)) gin[IN_H0] = nn_retain(dh);
    if (rc == 0 && nn_input_needs(n, IN_C0)) gin[IN_C0] = nn_retain(dc);
    nn_tensor *tmp[] = {gout, ghn, gcn, dx, dq, dh, dc, next, row};
    nn_release_all(9, tmp);
    return rc;
}

static const nn_op scan_op = {"rnn", scan_backward, sizeof(scan_ctx), NULL, NULL};

static const char *const mode_names[] = {"rnn_tanh", "rnn_relu", "lstm", "gru"};

/* the inputs' shapes, or -1 with an error naming the argument */
static int check_inputs(nn_rnn_mode mode, const nn_tensor *const *in, const nn_tensor *lengths) {
    const char *name = mode_names[mode];
    char s1[96], s2[96];
    const nn_tensor *xw = in[IN_XW], *whh = in[IN_WHH];
    if (xw->dtype != NN_F32 || xw->ndim != 3)
        return nn_failed(1, "%s: expected the input projections as f32 (T, B, G H), got %s", name,
                         nn_shape_str(xw, s1, 96));
    int64_t T = xw->shape[0], B = xw->shape[1], G = gates_of(mode);
    if (whh->dtype != NN_F32 || whh->ndim != 2 || whh->shape[0] != G * whh->shape[1] ||
        xw->shape[2] != whh->shape[0])
        return nn_failed(2, "%s: weight_hh %s does not fit input projections %s (expected "
                            "(%lld H, H) with %lld H = the projections' last dim)",
                         name, nn_shape_str(whh, s1, 96), nn_shape_str(xw, s2, 96), (long long)G,
                         (long long)G);
    int64_t H = whh->shape[1];
    const nn_tensor *bhh = in[IN_BHH];
    if (bhh && (bhh->dtype != NN_F32 || bhh->ndim != 1 || bhh->shape[0] != G * H))
        return nn_failed(3, "%s: bias_hh %s must be (%lld)", name, nn_shape_str(bhh, s1, 96),
                         (long long)(G * H));
    for (int k = IN_H0; k <= IN_C0; k++) {
        const nn_tensor *s = in[k];
        if (s && (s->dtype != NN_F32 || s->ndim != 2 || s->shape[0] != B || s->shape[1] != H))
            return nn_failed(k + 1, "%s: initial %s state %s must be (B, H) = (%lld, %lld)", name,
                             k == IN_H0 ? "hidden" : "cell", nn_shape_str(s, s1, 96),
                             (long long)B, (long long)H);
    }
    if (in[IN_C0] && mode != NN_LSTM)
        return nn_failed(5, "%s: only an LSTM has a cell state", name);
    if (lengths) {
        if (lengths->dtype != NN_I64 || lengths->ndim != 1 || lengths->shape[0] != B)
            return nn_failed(6, "%s: lengths %s must be i64 (B) = (%lld)", name,
                             nn_shape_str(lengths, s1, 96), (long long)B);
        for (int64_t b = 0; b < B; b++) {
            double v = nn_get(lengths, (int64_t[]){b});
            if (v < 1 || v > T)
                return nn_failed(6, "%s: length %lld of sequence %lld is outside 1..%lld", name,
                                 (long long)v, (long long)(b + 1), (long long)T);
        }
    }
    return 0;
}

int nn_rnn_scan(nn_rnn_mode mode, const nn_tensor *xw, const nn_tensor *w_hh, const nn_tensor *b_hh,
                const nn_tensor *h0, const nn_tensor *c0, const nn_tensor *lengths, int reverse,
                nn_tensor **out, nn_tensor **hn, nn_tensor **cn) {
    *out = *hn = NULL;
    if (cn) *cn = NULL;
    if ((unsigned)mode > NN_GRU) return nn_failed(0, "rnn: unknown mode %d", (int)mode);
    const nn_tensor *ins[N_IN] = {xw, w_hh, b_hh, h0, c0};
    for (int k = 0; k < N_IN; k++) NN_NO_HALF(ins[k], k + 1, mode_names[mode]);
    if (check_inputs(mode, ins, lengths) < 0) return -1;
    if (mode == NN_LSTM && !cn) return nn_failed(0, "lstm: no place for the cell state");
    int64_t T = xw->shape[0], B = xw->shape[1], H = w_hh->shape[1];
    int64_t G = gates_of(mode) * H, A = acts_of(mode) * H;
    int prev = nn_grad_off();
    nn_tensor *x = nn_contiguous((nn_tensor *)xw), *whh = nn_contiguous((nn_tensor *)w_hh);
    nn_tensor *len = lengths ? nn_contiguous((nn_tensor *)lengths) : NULL;
    nn_tensor *h = h0 ? nn_clone(h0) : nn_zeros(NN_F32, 2, (int64_t[]){B, H});
    nn_tensor *c = mode != NN_LSTM ? NULL
                   : c0 ? nn_clone(c0) : nn_zeros(NN_F32, 2, (int64_t[]){B, H});
    nn_tensor *y = nn_empty(NN_F32, 3, (int64_t[]){T, B, H});
    nn_tensor *hprev = nn_empty(NN_F32, 3, (int64_t[]){T, B, H});
    nn_tensor *cprev = c ? nn_empty(NN_F32, 3, (int64_t[]){T, B, H}) : NULL;
    nn_tensor *acts = nn_empty(NN_F32, 3, (int64_t[]){T, B, A});
    nn_tensor *q = nn_empty(NN_F32, 2, (int64_t[]){B, G});
    int rc = x && whh && (len || !lengths) && h && (c || mode != NN_LSTM) && y && hprev &&
                     (cprev || !c) && acts && q ? 0 : -1;
    const int64_t *lv = len ? nn_i64(len) : NULL;
    const float *bias = NULL;
    nn_tensor *bc = rc == 0 ? contiguous_or_null(b_hh) : NULL;
    if (bc) bias = nn_f32(bc);
    else if (b_hh) rc = -1;
    for (int64_t s = 0; rc == 0 && s < T; s++) {
        int64_t t = reverse ? T - 1 - s : s;
        memcpy(nn_f32(hprev) + t * B * H, nn_f32(h), (size_t)(B * H) * sizeof(float));
        if (c) memcpy(nn_f32(cprev) + t * B * H, nn_f32(c), (size_t)(B * H) * sizeof(float));
        float *qv = nn_f32(q);
        for (int64_t b = 0; b < B; b++)
            for (int64_t j = 0; j < G; j++) qv[b * G + j] = bias ? bias[j] : 0.0f;
        rc = nn_gemm(0, 0, 1, B, G, H, 1.0f, nn_f32(h), H, nn_f32(whh), H, 1.0f, qv, G);
        for (int64_t b = 0; rc == 0 && b < B; b++) {
            int64_t at = t * B + b;
            if (!active(lv, b, t)) {
                memset(nn_f32(y) + at * H, 0, (size_t)H * sizeof(float));
                memset(nn_f32(acts) + at * A, 0, (size_t)A * sizeof(float));
                continue;
            }
            step_forward(mode, H, nn_f32(x) + at * G, qv + b * G, nn_f32(h) + b * H,
                         c ? nn_f32(c) + b * H : NULL, nn_f32(acts) + at * A, nn_f32(y) + at * H);
        }
    }
    nn_grad_restore(prev);
    nn_node *node = NULL;
    if (rc == 0 && (nn_check_finite(y, mode_names[mode], "in its output") < 0)) rc = -1;
    if (rc == 0 && nn_needs_grad(N_IN, ins)) {
        nn_tensor *outs[3] = {y, h, c};
        node = nn_record(&scan_op, N_IN, ins, c ? 3 : 2, outs);
        if (!node) rc = -1;
    }
    if (node) {
        node->name = mode_names[mode];
        *NN_CTX(node, scan_ctx) = (scan_ctx){mode, T, B, H, reverse};
        if (nn_save(node, S_WHH, whh) < 0 || nn_save(node, S_HPREV, hprev) < 0 ||
            (cprev && nn_save(node, S_CPREV, cprev) < 0) || nn_save(node, S_ACTS, acts) < 0 ||
            (len && nn_save(node, S_LENGTHS, len) < 0))
            rc = -1;
    }
    nn_tensor *tmp[] = {x, whh, len, hprev, cprev, acts, q, bc};
    nn_release_all(8, tmp);
    if (rc < 0) {
        nn_release(y);
        nn_release(h);
        nn_release(c);
        return -1;
    }
    *out = y;
    *hn = h;
    if (cn) *cn = c;
    return 0;
}
