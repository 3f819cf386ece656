/* attention.c -- scaled dot-product attention, fused, with its backward.
 *
 * Shapes: q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv) -> out
 * (B, H, Tq, Dv); mask additive, broadcastable to (B, H, Tq, Tk). Each
 * operand needs only a unit stride in its last dim: rows are read with
 * their own stride, so q = x:view(B, T, H, D):transpose(2, 3) costs no copy.
 * The output is laid out (B, Tq, H, Dv) in memory and returned as a
 * (B, H, Tq, Dv) view, so merging the heads back is free too.
 *
 * Memory grows linearly with the sequence: queries are processed in blocks
 * of QB rows, each against all the keys it can see (scores QB x Tk, a
 * numerically safe softmax, then the product with V). Only the row
 * log-sum-exps (B, H, Tq) are saved; backward recomputes each block's
 * probabilities. Causal: query i, at absolute position Tk - Tq + i, sees
 * keys j <= Tk - Tq + i (PyTorch's rule when Tq = Tk, aligned to the end
 * when a KV cache makes Tk > Tq); keys past the last visible one are never
 * touched. Dropout on the weights is regenerated in backward from the
 * counter-based generator's (seed, offset). */
#include "autograd.h"
#include "graph.h"
#include "attn_tiles.h"
#include "nn_layers.h"
#include "vecmath.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define QB 128

typedef struct {
    int64_t b, h, tq, tk, d, dv;
    const float *q, *k, *v;      /* element (0, 0, 0, 0) of each */
    int64_t qs[3], ks[3], vs[3]; /* strides of dims 0..2 (dim 3 is unit) */
    const float *mask;           /* additive, or NULL */
    int64_t ms[4];               /* its broadcast strides */
    int causal;
    float scale, drop;
    uint64_t seed, offset;       /* dropout stream */
    int bf16;                    /* autocast with AMX: whole heads as bf16 tile products */
} attn_geom;

static const float *row_of(const float *base, const int64_t *s, int64_t b, int64_t h,
                           int64_t t) {
    return base + b * s[0] + h * s[1] + t * s[2];
}

/* keys visible to rows < row_end */
static int64_t visible(const attn_geom *g, int64_t row_end) {
    if (!g->causal) return g->tk;
    int64_t last = g->tk - g->tq + row_end;
    return last < 0 ? 0 : (last > g->tk ? g->tk : last);
}

/* s (rows, ke) = scale q k^T + mask, with invisible keys at -inf */
static int block_scores(const attn_geom *g, int64_t b, int64_t h, int64_t r0,
                        int64_t rows, int64_t ke, float *s) {
    if (nn_sgemm(0, 1, rows, ke, g->d, g->scale, row_of(g->q, g->qs, b, h, r0), g->qs[2],
                 row_of(g->k, g->ks, b, h, 0), g->ks[2], 0.0f, s, ke) < 0)
        return -1;
#pragma omp parallel for if (rows * ke > NN_PAR_GRAIN)
    for (int64_t r = 0; r < rows; r++) {
        float *sr = s + r * ke;
        int64_t i = r0 + r;
        if (g->mask) {
            const float *m = g->mask + b * g->ms[0] + h * g->ms[1] + i * g->ms[2];
            for (int64_t j = 0; j < ke; j++) sr[j] += m[j * g->ms[3]];
        }
        if (g->causal)
            for (int64_t j = g->tk - g->tq + i + 1; j < ke; j++) sr[j] = -INFINITY;
    }
    return 0;
}

/* The one softmax row of every path: n scores in place, returning the
 * row's log-sum-exp (INFINITY when nothing is visible: weights 0) */
static inline float softmax_row(float *sr, int64_t n) {
    float m = -INFINITY;
    for (int64_t j = 0; j < n; j++) m = sr[j] > m ? sr[j] : m;
    if (m == -INFINITY) { /* nothing visible: weights 0, output 0 */
        memset(sr, 0, n * sizeof *sr);
        return INFINITY;
    }
    float sum = 0; /* a float sum vectorises; rows are at most a block of keys long */
    for (int64_t j = 0; j < n; j++) {
        sr[j] = nn_expf(sr[j] - m);
        sum += sr[j];
    }
    float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; j++) sr[j] *= inv;
    return m + logf(sum);
}

/* the same row's weights again, from its saved log-sum-exp (backward) */
static inline void probs_from_lse(float *sr, int64_t n, float lse) {
    if (isinf(lse)) {
        memset(sr, 0, n * sizeof *sr);
        return;
    }
    for (int64_t j = 0; j < n; j++) sr[j] = nn_expf(sr[j] - lse);
}

/* softmax of each row in place; lse (rows) gets each row's log-sum-exp */
static void softmax_rows(float *s, int64_t rows, int64_t ke, float *lse) {
#pragma omp parallel for if (rows * ke > NN_PAR_GRAIN)
    for (int64_t r = 0; r < rows; r++) lse[r] = softmax_row(s + r * ke, ke);
}

static void apply_dropout(const attn_geom *g, int64_t b, int64_t h, int64_t r0,
                          int64_t rows, int64_t ke, float *p) {
    if (g->drop <= 0) return;
    float scale = 1.0f / (1.0f - g->drop);
    uint64_t per_row = NN_PHILOX_MASK_BLOCKS(g->tk); /* Philox blocks a row of weights */
#pragma omp parallel for if (rows * ke > NN_PAR_GRAIN / 8 && !omp_in_parallel())
    for (int64_t r = 0; r < rows; r++) {
        /* row (b, h, i) of the weights takes its own run of Philox blocks,
         * from offset + ((b H + h) Tq + i) NN_PHILOX_MASK_BLOCKS(Tk) */
        uint64_t row = ((uint64_t)b * g->h + h) * g->tq + (uint64_t)(r0 + r);
        nn_philox_mask(g->seed, g->offset + row * per_row, p + r * ke, ke, g->drop, scale, 1);
    }
}

/* ---- small heads: one head per thread, register tiles instead of BLAS ----
 * With many heads of modest size (a GPT's 64x64 to 256x256 scores), BLAS
 * calls on each tiny product cost more than they compute; instead every
 * thread takes whole heads. Keys and values are transposed once per head
 * (D, Tk) so scores come from 4 x 16 tiles over contiguous keys
 * (attn_tiles.h). Threads own their heads' dK and dV, so nothing races. */

static inline float dot(const float *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* xt (d, tk) = rows 0..tk of x (tk, d) for head (b, h) */
static inline void transpose_rows(const float *base, const int64_t *st, int64_t b, int64_t h,
                                  int64_t tk, int64_t d, float *xt) {
    for (int64_t j = 0; j < tk; j++) {
        const float *row = row_of(base, st, b, h, j);
        for (int64_t c = 0; c < d; c++) xt[c * tk + j] = row[c];
    }
}

/* keys row i sees within the first ke */
static inline int64_t row_visible(const attn_geom *g, int64_t i, int64_t ke) {
    if (!g->causal) return ke;
    int64_t n = g->tk - g->tq + i + 1;
    return n < 0 ? 0 : (n > ke ? ke : n);
}

/* a dot product in 16 lanes, so it vectorises without reassociation flags */
static inline float dot16(const float *a, const float *b, int64_t n) {
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) acc[l] += a[i + l] * b[i + l];
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    for (int l = 0; l < 16; l++) s += acc[l];
    return s;
}

/* With fewer query rows than this (decoding a token at a time, or the beams
 * of one item reading its memory), scores come
 * from dot products with the key rows: transposing the keys would cost as
 * much as the scores themselves. */
#define FEW_QUERIES 9
static inline bool few_queries(const attn_geom *g) { return g->tq < FEW_QUERIES; }

/* s (rows, ke) = scale q kT (+ mask, causal) for one head; kt: the keys
 * transposed, or NULL with few_queries (read the key rows) */
static inline void head_scores(const attn_geom *g, int64_t b, int64_t h, int64_t r0,
                               int64_t rows, int64_t ke, const float *kt, float *s) {
    for (int64_t r = 0; r < rows; r += TILE_ROWS) { /* a tile of rows up to its last one's keys */
        int nr = rows - r < TILE_ROWS ? (int)(rows - r) : TILE_ROWS;
        if (kt)
            tile_rows(row_of(g->q, g->qs, b, h, r0 + r), g->qs[2], nr, kt, g->tk, g->d,
                      row_visible(g, r0 + r + nr - 1, ke), g->scale, s + r * ke, ke, 0);
        else
            for (int64_t t = r; t < r + nr; t++) {
                const float *q = row_of(g->q, g->qs, b, h, r0 + t);
                for (int64_t j = 0, n = row_visible(g, r0 + t, ke); j < n; j++)
                    s[t * ke + j] = g->scale * dot16(q, row_of(g->k, g->ks, b, h, j), g->d);
            }
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = r0 + r;
        float *sr = s + r * ke;
        int64_t n = row_visible(g, i, ke);
        if (g->mask) {
            const float *m = g->mask + b * g->ms[0] + h * g->ms[1] + i * g->ms[2];
            for (int64_t j = 0; j < n; j++) sr[j] += m[j * g->ms[3]];
        }
        for (int64_t j = n; j < ke; j++) sr[j] = -INFINITY;
    }
}

/* the keys a tile of rows from r (of a block starting at r0) reads: its
 * last row's */
static inline int64_t tile_keys(const attn_geom *g, int64_t r0, int64_t r, int nr, int64_t ke) {
    return row_visible(g, r0 + r + nr - 1, ke);
}

static void apply_dropout(const attn_geom *g, int64_t b, int64_t h, int64_t r0,
                          int64_t rows, int64_t ke, float *p);

/* scratch: kt (D Tk), then s (QB Tk) */
NN_DISPATCH
static void head_forward(const attn_geom *g, int64_t head, float *out, float *lse,
                         float *weights, float *scratch) {
    int64_t b = head / g->h, h = head % g->h;
    float *kt = few_queries(g) ? NULL : scratch, *s = scratch + g->d * g->tk;
    if (kt) transpose_rows(g->k, g->ks, b, h, g->tk, g->d, kt);
    for (int64_t r0 = 0; r0 < g->tq; r0 += QB) {
        int64_t rows = g->tq - r0 < QB ? g->tq - r0 : QB, ke = visible(g, r0 + rows);
        float *l = lse + head * g->tq + r0;
        head_scores(g, b, h, r0, rows, ke, kt, s);
        for (int64_t r = 0; r < rows; r++) {
            int64_t n = row_visible(g, r0 + r, ke);
            l[r] = softmax_row(s + r * ke, n);
            memset(s + r * ke + n, 0, (ke - n) * sizeof *s);
        }
        if (weights)
            for (int64_t r = 0; r < rows; r++) {
                float *w = weights + (head * g->tq + r0 + r) * g->tk;
                if (ke) memcpy(w, s + r * ke, ke * sizeof *w);
                memset(w + ke, 0, (g->tk - ke) * sizeof *w);
            }
        apply_dropout(g, b, h, r0, rows, ke, s);
        for (int64_t r = 0; r < rows; r += TILE_ROWS) { /* o = P V (P is 0 past each row's keys) */
            int nr = rows - r < TILE_ROWS ? (int)(rows - r) : TILE_ROWS;
            tile_rows(s + r * ke, ke, nr, row_of(g->v, g->vs, b, h, 0), g->vs[2],
                      tile_keys(g, r0, r, nr, ke), g->dv, 1.0f,
                      out + ((b * g->tq + r0 + r) * g->h + h) * g->dv, g->h * g->dv, 0);
        }
    }
}

/* scratch: kt (D Tk), vt (Dv Tk), p and dp (QB Tk each) */
NN_DISPATCH
static void head_backward(const attn_geom *g, int64_t head, const float *dout,
                          const float *lse, float *dq, float *dk, float *dv, float *scratch) {
    int64_t b = head / g->h, h = head % g->h;
    float *vt = scratch + g->d * g->tk, *p = vt + g->dv * g->tk;
    float *dp = p + QB * g->tk, *kt = few_queries(g) ? NULL : scratch;
    if (kt) transpose_rows(g->k, g->ks, b, h, g->tk, g->d, kt);
    transpose_rows(g->v, g->vs, b, h, g->tk, g->dv, vt);
    for (int64_t r0 = 0; r0 < g->tq; r0 += QB) {
        int64_t rows = g->tq - r0 < QB ? g->tq - r0 : QB, ke = visible(g, r0 + rows);
        if (ke == 0) continue;
        const float *l = lse + head * g->tq + r0;
        head_scores(g, b, h, r0, rows, ke, kt, p);
        for (int64_t r = 0; r < rows; r++) {
            int64_t n = row_visible(g, r0 + r, ke);
            probs_from_lse(p + r * ke, n, l[r]);
            memset(p + r * ke + n, 0, (ke - n) * sizeof *p);
        }
        memcpy(dp, p, (size_t)rows * ke * sizeof *dp);
        apply_dropout(g, b, h, r0, rows, ke, dp); /* dp: the dropped-out weights */
        const float *go = dout + ((b * g->tq + r0) * g->h + h) * g->dv;
        int64_t ldo = g->h * g->dv;
        for (int64_t j = 0; j < ke; j += TILE_ROWS) /* dV += Pd^T dO */
            tile_at_x(dp, ke, rows, j, ke - j < TILE_ROWS ? (int)(ke - j) : TILE_ROWS, go, ldo, g->dv,
                      dv + (head * g->tk + j) * g->dv, g->dv);
        for (int64_t r = 0; r < rows; r += TILE_ROWS) { /* dPd = dO vT */
            int nr = rows - r < TILE_ROWS ? (int)(rows - r) : TILE_ROWS;
            tile_rows(go + r * ldo, ldo, nr, vt, g->tk, g->dv, tile_keys(g, r0, r, nr, ke), 1.0f,
                      dp + r * ke, ke, 0);
        }
        for (int64_t r = 0; r < rows; r++) { /* nothing past a row's keys */
            int64_t n = row_visible(g, r0 + r, ke);
            memset(dp + r * ke + n, 0, (ke - n) * sizeof *dp);
        }
        apply_dropout(g, b, h, r0, rows, ke, dp);
        for (int64_t r = 0; r < rows; r++) { /* dS = P (dP - sum P dP) scale, into dp */
            float *pr = p + r * ke, *dr = dp + r * ke;
            int64_t n = row_visible(g, r0 + r, ke);
            float acc = dot(pr, dr, n);
            for (int64_t j = 0; j < n; j++) dr[j] = pr[j] * (dr[j] - acc) * g->scale;
        }
        for (int64_t r = 0; r < rows; r += TILE_ROWS) { /* dQ = dS K */
            int nr = rows - r < TILE_ROWS ? (int)(rows - r) : TILE_ROWS;
            tile_rows(dp + r * ke, ke, nr, row_of(g->k, g->ks, b, h, 0), g->ks[2],
                      tile_keys(g, r0, r, nr, ke), g->d, 1.0f, dq + (head * g->tq + r0 + r) * g->d, g->d, 1);
        }
        for (int64_t j = 0; j < ke; j += TILE_ROWS) /* dK += dS^T Q */
            tile_at_x(dp, ke, rows, j, ke - j < TILE_ROWS ? (int)(ke - j) : TILE_ROWS,
                      row_of(g->q, g->qs, b, h, r0), g->qs[2], g->d, dk + (head * g->tk + j) * g->d, g->d);
    }
}

static int small_forward(const attn_geom *g, float *out, float *lse, float *weights) {
    int failed = 0;
    size_t need = (size_t)(g->d + QB) * (size_t)(g->tk ? g->tk : 1);
#pragma omp parallel
    {
        float *scratch = nn_alloc(need * sizeof *scratch);
        if (!scratch) failed = 1;
#pragma omp for schedule(dynamic)
        for (int64_t head = 0; head < g->b * g->h; head++)
            if (scratch) head_forward(g, head, out, lse, weights, scratch);
        nn_free(scratch);
    }
    return failed ? nn_failed(0, "out of memory for attention scores") : 0;
}

static int small_backward(const attn_geom *g, const float *dout, const float *lse,
                          float *dq, float *dk, float *dv) {
    int failed = 0;
    size_t need = (size_t)(g->d + g->dv + 2 * QB) * (size_t)(g->tk ? g->tk : 1);
#pragma omp parallel
    {
        float *scratch = nn_alloc(need * sizeof *scratch);
        if (!scratch) failed = 1;
#pragma omp for schedule(dynamic)
        for (int64_t head = 0; head < g->b * g->h; head++)
            if (scratch) head_backward(g, head, dout, lse, dq, dk, dv, scratch);
        nn_free(scratch);
    }
    return failed ? nn_failed(0, "out of memory in attention backward") : 0;
}

/* whole heads per thread when there are enough of them and each is small */
static bool use_small(const attn_geom *g) {
    return g->b * g->h >= 4 && (double)g->tq * (double)g->tk * (double)(g->d + g->dv) < 2e8;
}

/* out rows (B, Tq, H, Dv) layout: row (b, i, h) at ((b Tq + i) H + h) Dv */
static float *out_row(const attn_geom *g, float *out, int64_t b, int64_t h, int64_t i) {
    return out + ((b * g->tq + i) * g->h + h) * g->dv;
}

/* ---- autocast with AMX: one whole head per thread, its five products as
 * bf16 tile products (nn_amx_gemm_1t), softmax and dropout in f32 ------- */

/* s (Tq, Tk) = scale q kT + mask, invisible keys -inf; n[i] visible keys */
static int amx_scores(const attn_geom *g, int64_t b, int64_t h, float *s) {
    if (nn_amx_gemm_1t(0, 1, g->tq, g->tk, g->d, g->scale, row_of(g->q, g->qs, b, h, 0),
                       g->qs[2], row_of(g->k, g->ks, b, h, 0), g->ks[2], 0.0f, s, g->tk) < 0)
        return -1;
    for (int64_t i = 0; i < g->tq; i++) {
        float *sr = s + i * g->tk;
        int64_t n = row_visible(g, i, g->tk);
        if (g->mask) {
            const float *m = g->mask + b * g->ms[0] + h * g->ms[1] + i * g->ms[2];
            for (int64_t j = 0; j < n; j++) sr[j] += m[j * g->ms[3]];
        }
        for (int64_t j = n; j < g->tk; j++) sr[j] = -INFINITY;
    }
    return 0;
}

static int amx_forward(const attn_geom *g, float *out, float *lse, float *weights) {
    int failed = 0;
    size_t need = (size_t)(g->tq ? g->tq : 1) * (size_t)(g->tk ? g->tk : 1);
#pragma omp parallel
    {
        float *s = nn_alloc(need * sizeof *s);
        if (!s) failed = 1;
#pragma omp for schedule(dynamic)
        for (int64_t head = 0; head < g->b * g->h; head++) {
            if (!s || failed) continue;
            int64_t b = head / g->h, h = head % g->h;
            if (amx_scores(g, b, h, s) < 0) { failed = 2; continue; }
            for (int64_t i = 0; i < g->tq; i++) {
                int64_t n = row_visible(g, i, g->tk);
                float *sr = s + i * g->tk;
                lse[head * g->tq + i] = n ? softmax_row(sr, n) : INFINITY;
                memset(sr + n, 0, (g->tk - n) * sizeof *sr);
            }
            if (weights)
                memcpy(weights + head * g->tq * g->tk, s, need * sizeof *s);
            apply_dropout(g, b, h, 0, g->tq, g->tk, s);
            if (nn_amx_gemm_1t(0, 0, g->tq, g->dv, g->tk, 1.0f, s, g->tk,
                               row_of(g->v, g->vs, b, h, 0), g->vs[2], 0.0f,
                               out_row(g, out, b, h, 0), g->h * g->dv) < 0)
                failed = 2;
        }
        nn_free(s);
    }
    return failed == 1 ? nn_failed(0, "out of memory for attention scores") : failed ? -1 : 0;
}

static int amx_backward(const attn_geom *g, const float *dout, const float *lse, float *dq,
                        float *dk, float *dv) {
    int failed = 0;
    size_t need = (size_t)(g->tq ? g->tq : 1) * (size_t)(g->tk ? g->tk : 1);
#pragma omp parallel
    {
        float *p = nn_alloc(2 * need * sizeof *p), *dp = p ? p + need : NULL;
        if (!p) failed = 1;
#pragma omp for schedule(dynamic)
        for (int64_t head = 0; head < g->b * g->h; head++) {
            if (!p || failed) continue;
            int64_t b = head / g->h, h = head % g->h;
            const float *go = dout + h * g->dv; /* row i at go + i H Dv */
            int64_t ldo = g->h * g->dv;
            if (amx_scores(g, b, h, p) < 0) { failed = 2; continue; }
            for (int64_t i = 0; i < g->tq; i++) {
                int64_t n = row_visible(g, i, g->tk);
                probs_from_lse(p + i * g->tk, n, lse[head * g->tq + i]);
                memset(p + i * g->tk + n, 0, (g->tk - n) * sizeof *p);
            }
            memcpy(dp, p, need * sizeof *dp);
            apply_dropout(g, b, h, 0, g->tq, g->tk, dp); /* the dropped-out weights */
            const float *gob = go + b * g->tq * ldo;
            int rc = nn_amx_gemm_1t(1, 0, g->tk, g->dv, g->tq, 1.0f, dp, g->tk, gob, ldo, 0.0f,
                                    dv + head * g->tk * g->dv, g->dv); /* dV = PdT dO */
            if (rc == 0) /* dPd = dO vT */
                rc = nn_amx_gemm_1t(0, 1, g->tq, g->tk, g->dv, 1.0f, gob, ldo,
                                    row_of(g->v, g->vs, b, h, 0), g->vs[2], 0.0f, dp, g->tk);
            if (rc < 0) { failed = 2; continue; }
            apply_dropout(g, b, h, 0, g->tq, g->tk, dp);
            for (int64_t i = 0; i < g->tq; i++) { /* dS = P (dP - sum(P dP)) scale */
                float *pr = p + i * g->tk, *dr = dp + i * g->tk;
                int64_t n = row_visible(g, i, g->tk);
                float acc = dot(pr, dr, n);
                for (int64_t j = 0; j < n; j++) dr[j] = pr[j] * (dr[j] - acc) * g->scale;
                memset(dr + n, 0, (g->tk - n) * sizeof *dr);
            }
            rc = nn_amx_gemm_1t(0, 0, g->tq, g->d, g->tk, 1.0f, dp, g->tk,
                                row_of(g->k, g->ks, b, h, 0), g->ks[2], 0.0f,
                                dq + head * g->tq * g->d, g->d); /* dQ = dS K */
            if (rc == 0)
                rc = nn_amx_gemm_1t(1, 0, g->tk, g->d, g->tq, 1.0f, dp, g->tk,
                                    row_of(g->q, g->qs, b, h, 0), g->qs[2], 0.0f,
                                    dk + head * g->tk * g->d, g->d); /* dK = dST Q */
            if (rc < 0) failed = 2;
        }
        nn_free(p);
    }
    return failed == 1 ? nn_failed(0, "out of memory in attention backward") : failed ? -1 : 0;
}

static int attn_forward(const attn_geom *g, float *out, float *lse, float *weights) {
    if (g->bf16) return amx_forward(g, out, lse, weights);
    if (use_small(g)) return small_forward(g, out, lse, weights);
    float *s = nn_alloc((size_t)QB * (size_t)(g->tk ? g->tk : 1) * sizeof *s);
    if (!s) return nn_failed(0, "out of memory for attention scores");
    int rc = 0;
    for (int64_t b = 0; b < g->b && rc == 0; b++)
        for (int64_t h = 0; h < g->h && rc == 0; h++)
            for (int64_t r0 = 0; r0 < g->tq && rc == 0; r0 += QB) {
                int64_t rows = g->tq - r0 < QB ? g->tq - r0 : QB, ke = visible(g, r0 + rows);
                float *l = lse + (b * g->h + h) * g->tq + r0;
                float *o = out_row(g, out, b, h, r0);
                if (ke == 0) {
                    for (int64_t r = 0; r < rows; r++) {
                        memset(out_row(g, out, b, h, r0 + r), 0, g->dv * sizeof *o);
                        l[r] = INFINITY;
                    }
                    continue;
                }
                rc = block_scores(g, b, h, r0, rows, ke, s);
                if (rc < 0) break;
                softmax_rows(s, rows, ke, l);
                if (weights) /* (B, H, Tq, Tk), before dropout */
                    for (int64_t r = 0; r < rows; r++) {
                        float *w = weights + ((b * g->h + h) * g->tq + r0 + r) * g->tk;
                        memcpy(w, s + r * ke, ke * sizeof *w);
                        memset(w + ke, 0, (g->tk - ke) * sizeof *w);
                    }
                apply_dropout(g, b, h, r0, rows, ke, s);
                rc = nn_sgemm(0, 0, rows, g->dv, ke, 1.0f, s, ke, row_of(g->v, g->vs, b, h, 0),
                              g->vs[2], 0.0f, o, g->h * g->dv);
            }
    nn_free(s);
    return rc;
}

/* dq (B, H, Tq, D), dk (B, H, Tk, D), dv (B, H, Tk, Dv), all contiguous
 * and zeroed by the caller; dout read in the output's (B, Tq, H, Dv) layout */
static int attn_backward_heads(const attn_geom *g, const float *dout, const float *lse,
                               float *dq, float *dk, float *dv) {
    if (g->bf16) return amx_backward(g, dout, lse, dq, dk, dv);
    if (use_small(g)) return small_backward(g, dout, lse, dq, dk, dv);
    size_t n = (size_t)QB * (size_t)(g->tk ? g->tk : 1);
    float *p = nn_alloc(n * sizeof *p), *dp = nn_alloc(n * sizeof *dp);
    int rc = p && dp ? 0 : nn_failed(0, "out of memory in attention backward");
    for (int64_t b = 0; b < g->b && rc == 0; b++)
        for (int64_t h = 0; h < g->h && rc == 0; h++) {
            int64_t head = b * g->h + h;
            for (int64_t r0 = 0; r0 < g->tq && rc == 0; r0 += QB) {
                int64_t rows = g->tq - r0 < QB ? g->tq - r0 : QB, ke = visible(g, r0 + rows);
                if (ke == 0) continue;
                const float *l = lse + head * g->tq + r0;
                const float *go = out_row(g, (float *)dout, b, h, r0);
                int64_t ldo = g->h * g->dv;
                if ((rc = block_scores(g, b, h, r0, rows, ke, p)) < 0) break;
#pragma omp parallel for if (rows * ke > NN_PAR_GRAIN)
                for (int64_t r = 0; r < rows; r++) /* probabilities from the saved lse */
                    probs_from_lse(p + r * ke, ke, l[r]);
                /* dV += Pd^T dO, with Pd the dropped-out weights */
                memcpy(dp, p, (size_t)rows * ke * sizeof *dp);
                apply_dropout(g, b, h, r0, rows, ke, dp);
                rc = nn_sgemm(1, 0, ke, g->dv, rows, 1.0f, dp, ke, go, ldo, 1.0f,
                              dv + head * g->tk * g->dv, g->dv);
                /* dPd = dO V^T, then through dropout to dP */
                if (rc == 0)
                    rc = nn_sgemm(0, 1, rows, ke, g->dv, 1.0f, go, ldo,
                                  row_of(g->v, g->vs, b, h, 0), g->vs[2], 0.0f, dp, ke);
                if (rc < 0) break;
                apply_dropout(g, b, h, r0, rows, ke, dp);
                /* dS = P (dP - sum_j P dP) scale, into dp */
#pragma omp parallel for if (rows * ke > NN_PAR_GRAIN)
                for (int64_t r = 0; r < rows; r++) {
                    float *pr = p + r * ke, *dr = dp + r * ke;
                    double dot = 0;
                    for (int64_t j = 0; j < ke; j++) dot += pr[j] * dr[j];
                    for (int64_t j = 0; j < ke; j++) dr[j] = pr[j] * (dr[j] - (float)dot) * g->scale;
                }
                /* dQ = dS K, dK += dS^T Q */
                rc = nn_sgemm(0, 0, rows, g->d, ke, 1.0f, dp, ke, row_of(g->k, g->ks, b, h, 0),
                              g->ks[2], 0.0f, dq + (head * g->tq + r0) * g->d, g->d);
                if (rc == 0)
                    rc = nn_sgemm(1, 0, ke, g->d, rows, 1.0f, dp, ke,
                                  row_of(g->q, g->qs, b, h, r0), g->qs[2], 1.0f,
                                  dk + head * g->tk * g->d, g->d);
            }
        }
    nn_free(p);
    nn_free(dp);
    return rc;
}

/* the geometry of q, k, v (and mask) for a saved or a fresh call */
static int geometry(attn_geom *g, const nn_tensor *q, const nn_tensor *k,
                    const nn_tensor *v, const nn_tensor *mask) {
    g->b = q->shape[0]; g->h = q->shape[1]; g->tq = q->shape[2]; g->d = q->shape[3];
    g->tk = k->shape[2]; g->dv = v->shape[3];
    g->q = nn_f32(q); g->k = nn_f32(k); g->v = nn_f32(v);
    for (int i = 0; i < 3; i++) {
        g->qs[i] = q->stride[i];
        g->ks[i] = k->stride[i];
        g->vs[i] = v->stride[i];
    }
    /* broadcast batch/head dims of k and v address the same rows */
    for (int i = 0; i < 2; i++) {
        if (k->shape[i] == 1) g->ks[i] = 0;
        if (v->shape[i] == 1) g->vs[i] = 0;
    }
    g->mask = NULL;
    if (mask) {
        int64_t full[4] = {g->b, g->h, g->tq, g->tk};
        nn_broadcast_strides(mask, 4, full, g->ms);
        g->mask = nn_f32(mask);
    }
    return 0;
}

typedef struct {
    int causal;
    float scale, drop;
    uint64_t seed, offset; /* of the dropout draws */
    int bf16;              /* made under autocast (with AMX) */
} attention_ctx;
enum { SAVED_Q, SAVED_K, SAVED_V, SAVED_LSE, SAVED_MASK }; /* slots */

static int attention_backward(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    const attention_ctx *c = NN_CTX(n, attention_ctx);
    nn_tensor *q = nn_saved(n, SAVED_Q), *k = nn_saved(n, SAVED_K), *v = nn_saved(n, SAVED_V);
    nn_tensor *lse = nn_saved(n, SAVED_LSE);
    if (!q || !k || !v || !lse) return -1;
    nn_tensor *mask = n->saved[SAVED_MASK]; /* constant: not versioned */
    attn_geom g;
    geometry(&g, q, k, v, mask);
    g.causal = c->causal;
    g.scale = c->scale;
    g.drop = c->drop;
    g.seed = c->seed;
    g.offset = c->offset;
    g.bf16 = c->bf16;
    /* dout in the output's memory order (B, Tq, H, Dv) */
    nn_tensor *gperm = nn_transpose((nn_tensor *)gout, 1, 2);
    nn_tensor *gc = gperm ? nn_contiguous(gperm) : NULL;
    nn_release(gperm);
    nn_tensor *dq = nn_zeros(NN_F32, 4, (int64_t[]){g.b, g.h, g.tq, g.d});
    nn_tensor *dk = nn_zeros(NN_F32, 4, (int64_t[]){g.b, g.h, g.tk, g.d});
    nn_tensor *dv = nn_zeros(NN_F32, 4, (int64_t[]){g.b, g.h, g.tk, g.dv});
    int rc = gc && dq && dk && dv ? attn_backward_heads(&g, nn_f32(gc), nn_f32(lse),
                                                        nn_f32(dq), nn_f32(dk), nn_f32(dv))
                                  : -1;
    nn_release(gc);
    if (rc == 0) {
        gin[0] = dq; /* broadcast k/v: the core sums the gradients down */
        gin[1] = dk;
        gin[2] = dv;
    } else {
        nn_release(dq); nn_release(dk); nn_release(dv);
    }
    return rc;
}

/* softmax(q kT scale + mask) v differentiated with engine ops (the
 * probabilities recomputed from q and k, so they carry their history),
 * for a create_graph backward */
static int attention_backward_graph(nn_node *n, const nn_tensor *gout, nn_tensor **gin) {
    const attention_ctx *c = NN_CTX(n, attention_ctx);
    if (c->drop > 0)
        return nn_failed(0, "attention with dropout has no double backward (use dropout 0 "
                            "or eval mode)");
    nn_tensor *q = nn_saved(n, SAVED_Q), *k = nn_saved(n, SAVED_K), *v = nn_saved(n, SAVED_V);
    if (!q || !k || !v) return -1;
    nn_tensor *mask = n->saved[SAVED_MASK];
    int64_t tq = q->shape[2], tk = k->shape[2];
    nn_scope s = {0};
    nn_tensor *sc = g_mulk(&s, g_matmul(&s, q, g_t(&s, k)), c->scale);
    if (mask) sc = g_add(&s, sc, mask);
    if (c->causal) { /* row i sees keys j <= i + tk - tq */
        nn_tensor *hide = g_keep(&s, nn_zeros(NN_F32, 2, (int64_t[]){tq, tk}));
        for (int64_t i = 0; hide && i < tq; i++)
            for (int64_t j = 0; j < tk; j++) nn_f32(hide)[i * tk + j] = j > i + tk - tq;
        sc = sc && hide ? g_keep(&s, nn_masked_fill(sc, hide, -INFINITY)) : g_keep(&s, NULL);
    }
    nn_tensor *p = sc ? g_keep(&s, nn_softmax(sc, -1)) : g_keep(&s, NULL);
    nn_tensor *gp = g_matmul(&s, gout, g_t(&s, v));
    nn_tensor *gps = g_sum(&s, g_mul(&s, gp, p), 1, (int[]){-1}, 1);
    nn_tensor *gs = g_mulk(&s, g_mul(&s, p, g_sub(&s, gp, gps)), c->scale);
    if (nn_input_needs(n, 0)) gin[0] = nn_scope_result(&s, g_matmul(&s, gs, k));
    if (nn_input_needs(n, 1)) gin[1] = nn_scope_result(&s, g_matmul(&s, g_t(&s, gs), q));
    if (nn_input_needs(n, 2)) gin[2] = nn_scope_result(&s, g_matmul(&s, g_t(&s, p), gout));
    return nn_scope_end(&s);
}

NN_OP_GRAPH(attention_op, "attention", attention_backward, attention_backward_graph,
            attention_ctx);

nn_tensor *nn_attention(const nn_tensor *q, const nn_tensor *k, const nn_tensor *v,
                        const nn_attention_args *a, nn_tensor **weights) {
    char s1[96], s2[96], s3[96];
    const nn_tensor *half_in[3] = {q, k, v};
    if (nn_any_half(3, half_in)) { /* in f32, rounded back */
        nn_tensor *f[3];
        if (nn_widen_all(3, half_in, f) < 0) return NULL;
        nn_tensor *y = nn_attention(f[0], f[1], f[2], a, weights);
        nn_release_all(3, f);
        return nn_narrow_to(y, nn_half_result(3, half_in));
    }
    if (weights) *weights = NULL;
    const nn_tensor *ts[3] = {q, k, v};
    for (int i = 0; i < 3; i++)
        if (ts[i]->dtype != NN_F32 || ts[i]->ndim != 4)
            return nn_fail(i + 1, "attention expects f32 (B, H, T, D) tensors, got %s %s",
                           nn_dtype_name(ts[i]->dtype), nn_shape_str(ts[i], s1, 96));
    bool ok = k->shape[3] == q->shape[3] && k->shape[2] == v->shape[2];
    for (int i = 0; i < 2; i++)
        ok = ok && (k->shape[i] == q->shape[i] || k->shape[i] == 1) &&
             (v->shape[i] == q->shape[i] || v->shape[i] == 1);
    if (!ok)
        return nn_fail(2, "attention: q %s, k %s and v %s do not fit (B, H, Tq, D), "
                          "(B, H, Tk, D), (B, H, Tk, Dv)", nn_shape_str(q, s1, 96),
                       nn_shape_str(k, s2, 96), nn_shape_str(v, s3, 96));
    if (a->mask) {
        int64_t full[4] = {q->shape[0], q->shape[1], q->shape[2], k->shape[2]};
        bool fits = a->mask->dtype == NN_F32 && a->mask->ndim <= 4;
        for (int i = 0; fits && i < a->mask->ndim; i++) {
            int64_t m = a->mask->shape[a->mask->ndim - 1 - i], f = full[3 - i];
            fits = m == f || m == 1;
        }
        if (!fits)
            return nn_fail(4, "attention: mask %s %s does not broadcast to %lldx%lldx%lldx%lld",
                           nn_dtype_name(a->mask->dtype), nn_shape_str(a->mask, s1, 96),
                           (long long)full[0], (long long)full[1], (long long)full[2],
                           (long long)full[3]);
    }
    if (!(a->dropout >= 0 && a->dropout < 1))
        return nn_fail(4, "attention dropout must be in [0, 1)");
    /* unit stride in the last dim is all the kernels need; copies made
     * with grad mode on keep the history a create_graph backward reads */
    nn_tensor *qc = q->stride[3] == 1 ? nn_retain((nn_tensor *)q) : nn_clone(q);
    nn_tensor *kc = k->stride[3] == 1 ? nn_retain((nn_tensor *)k) : nn_clone(k);
    nn_tensor *vc = v->stride[3] == 1 ? nn_retain((nn_tensor *)v) : nn_clone(v);
    int prev = nn_grad_off();
    nn_tensor *mc = a->mask ? nn_contiguous((nn_tensor *)a->mask) : NULL;
    attn_geom g;
    int rc = qc && kc && vc && (!a->mask || mc) ? 0 : -1;
    nn_tensor *out = NULL, *lse = NULL;
    if (rc == 0) {
        geometry(&g, qc, kc, vc, mc);
        g.causal = a->causal;
        g.bf16 = nn_autocast() == NN_BF16 && nn_amx_ready();
        g.scale = (float)(a->scale > 0 ? a->scale : 1.0 / sqrt((double)g.d));
        g.drop = a->training ? (float)a->dropout : 0.0f;
        g.seed = a->rng ? a->rng->seed : 0;
        g.offset = a->rng ? a->rng->offset : 0;
        if (g.drop > 0 && a->rng) a->rng->offset += (uint64_t)(g.b * g.h * g.tq) * NN_PHILOX_MASK_BLOCKS(g.tk);
        int64_t mem[4] = {g.b, g.tq, g.h, g.dv};
        nn_tensor *o = nn_empty(NN_F32, 4, mem);
        lse = nn_empty(NN_F32, 3, (int64_t[]){g.b, g.h, g.tq});
        if (weights) *weights = nn_empty(NN_F32, 4, (int64_t[]){g.b, g.h, g.tq, g.tk});
        rc = o && lse && (!weights || *weights) ? 0 : -1;
        if (rc == 0)
            rc = attn_forward(&g, nn_f32(o), nn_f32(lse), weights ? nn_f32(*weights) : NULL);
        out = o ? nn_transpose(o, 1, 2) : NULL; /* (B, H, Tq, Dv) view */
        nn_release(o);
        if (!out) rc = -1;
    }
    nn_grad_restore(prev);
    nn_node *node = NULL;
    if (rc == 0) {
        const nn_tensor *ins[3] = {q, k, v};
        out = nn_finish_op(out, &attention_op, 3, ins, &node);
        if (!out) rc = -1;
    }
    if (node) {
        *NN_CTX(node, attention_ctx) = (attention_ctx){g.causal, g.scale, g.drop, g.seed,
                                                       g.offset, g.bf16};
        if (nn_save(node, SAVED_Q, qc) < 0 || nn_save(node, SAVED_K, kc) < 0 ||
            nn_save(node, SAVED_V, vc) < 0 || nn_save(node, SAVED_LSE, lse) < 0 ||
            (mc && nn_save(node, SAVED_MASK, mc) < 0))
            rc = -1;
    }
    if (rc < 0) {
        nn_release(out);
        out = NULL;
        if (weights) {
            nn_release(*weights);
            *weights = NULL;
        }
    }
    nn_release(qc); nn_release(kc); nn_release(vc); nn_release(mc); nn_release(lse);
    return out;
}
