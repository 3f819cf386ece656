/* test_ops.c -- values of the engine's ops on hand-computed cases, on
 * broadcast and non-contiguous inputs, and their errors. */
#include <math.h>
#include <string.h>

#include "check.h"

static nn_tensor *seq(int ndim, const int64_t *shape) { /* 0, 1, 2, ... */
    nn_tensor *a = nn_arange(NN_F32, 0, (double)nn_shape_numel(ndim, shape), 1);
    nn_tensor *v = nn_view(a, ndim, shape);
    nn_release(a);
    return v;
}

TEST(binary_broadcast) {
    nn_tensor *a = seq(2, (int64_t[]){2, 3});
    nn_tensor *b = check_tensor(1, (int64_t[]){3}, (float[]){10, 20, 30});
    nn_tensor *c = nn_binary(NN_ADD, a, b);
    CHECK(check_values(c, (float[]){10, 21, 32, 13, 24, 35}, 0));
    nn_tensor *col = check_tensor(2, (int64_t[]){2, 1}, (float[]){2, 4});
    nn_tensor *d = nn_binary(NN_DIV, a, col);
    CHECK(check_values(d, (float[]){0, 0.5f, 1, 0.75f, 1, 1.25f}, 1e-7));
    nn_tensor *outer = nn_binary(NN_MUL, col, b); /* (2,1) x (3) -> (2,3) */
    CHECK(check_values(outer, (float[]){20, 40, 60, 40, 80, 120}, 0));
    nn_tensor *bad = check_tensor(1, (int64_t[]){2}, (float[]){1, 2});
    CHECK(nn_binary(NN_ADD, a, bad) == NULL && nn_last_error_arg() == 2);
    CHECK(strstr(nn_last_error(), "2x3 and 2") != NULL);
    nn_release(a); nn_release(b); nn_release(c); nn_release(col);
    nn_release(d); nn_release(outer); nn_release(bad);
}

TEST(binary_strided_and_inplace) {
    nn_tensor *a = seq(2, (int64_t[]){3, 2});
    nn_tensor *t = nn_transpose(a, 0, 1); /* [[0,2,4],[1,3,5]] */
    nn_tensor *b = seq(2, (int64_t[]){2, 3});
    nn_tensor *c = nn_binary(NN_SUB, t, b);
    CHECK(check_values(c, (float[]){0, 1, 2, -2, -1, 0}, 0));
    nn_tensor *two = nn_scalar(NN_F32, 2);
    CHECK(nn_binary_(NN_MUL, t, two) == 0); /* writes through the view */
    CHECK(check_values(a, (float[]){0, 2, 4, 6, 8, 10}, 0));
    CHECK(nn_binary_(NN_ADD, two, a) < 0); /* result shape would grow */
    nn_tensor *cmp = nn_binary(NN_GT, a, two);
    CHECK(cmp->dtype == NN_F32 && check_values(cmp, (float[]){0, 0, 1, 1, 1, 1}, 0));
    nn_release(a); nn_release(t); nn_release(b); nn_release(c);
    nn_release(two); nn_release(cmp);
}

TEST(integer_ops_stay_integral) {
    nn_tensor *a = nn_arange(NN_I64, -3, 4, 1);
    nn_tensor *three = nn_scalar(NN_I64, 3);
    nn_tensor *r = nn_binary(NN_REMAINDER, a, three); /* Lua's % */
    CHECK(r->dtype == NN_I64 && check_values(r, (float[]){0, 1, 2, 0, 1, 2, 0}, 0));
    nn_tensor *q = nn_binary(NN_DIV, a, three); /* true division: f32 */
    CHECK(q->dtype == NN_F32);
    nn_tensor *big = nn_scalar(NN_I64, (double)(1LL << 40));
    nn_tensor *one = nn_scalar(NN_I64, 1);
    nn_tensor *s = nn_binary(NN_ADD, big, one);
    CHECK(s->dtype == NN_I64 && nn_i64(s)[0] == (1LL << 40) + 1);
    nn_tensor *n = nn_unary(NN_NEG, a, 0, 0);
    CHECK(n->dtype == NN_I64 && nn_i64(n)[0] == 3);
    nn_tensor *e = nn_unary(NN_EXP, a, 0, 0);
    CHECK(e->dtype == NN_F32 && fabsf(nn_f32(e)[3] - 1) < 1e-7f);
    nn_release(a); nn_release(three); nn_release(r); nn_release(q);
    nn_release(big); nn_release(one); nn_release(s); nn_release(n); nn_release(e);
}

TEST(unary_values) {
    nn_tensor *x = check_tensor(1, (int64_t[]){4}, (float[]){-2, -0.5f, 0, 1.5f});
    struct { nn_unary_op op; float want[4]; } cases[] = {
        {NN_RELU, {0, 0, 0, 1.5f}},
        {NN_ABS, {2, 0.5f, 0, 1.5f}},
        {NN_SIGMOID, {0.11920292f, 0.37754067f, 0.5f, 0.81757448f}},
        {NN_TANH, {-0.96402758f, -0.46211716f, 0, 0.90514825f}},
        {NN_GELU, {-0.04550026f, -0.15426877f, 0, 1.39978921f}},
        {NN_GELU_TANH, {-0.04540231f, -0.15428599f, 0, 1.39957154f}},
        {NN_SILU, {-0.23840584f, -0.18877033f, 0, 1.22636172f}},
        {NN_SIGN, {-1, -1, 0, 1}},
        {NN_SQUARE, {4, 0.25f, 0, 2.25f}},
        {NN_ROUND, {-2, -0.0f, 0, 2}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        nn_tensor *y = nn_unary(cases[i].op, x, 0, 0);
        if (!check_values(y, cases[i].want, 2e-6))
            check_fail(__FILE__, __LINE__, nn_unary_names[cases[i].op]);
        nn_release(y);
    }
    nn_tensor *c = nn_unary(NN_CLAMP, x, -1, 1);
    CHECK(check_values(c, (float[]){-1, -0.5f, 0, 1}, 0));
    nn_tensor *l = nn_unary(NN_LEAKY_RELU, x, 0.1, 0);
    CHECK(check_values(l, (float[]){-0.2f, -0.05f, 0, 1.5f}, 1e-7));
    nn_release(x); nn_release(c); nn_release(l);
}

TEST(transposed_copies) {
    nn_tensor *a = seq(2, (int64_t[]){37, 45}); /* tiles with ragged edges */
    nn_tensor *t = nn_transpose(a, 0, 1);
    nn_tensor *c = nn_contiguous(t);
    int ok = 1;
    for (int64_t i = 0; i < 45; i++)
        for (int64_t j = 0; j < 37; j++)
            ok &= nn_get(c, (int64_t[]){i, j}) == (double)(j * 45 + i);
    CHECK(ok);
    nn_release(a); nn_release(t); nn_release(c);
}

TEST(large_elementwise_runs_in_parallel_correctly) {
    int64_t n = 1 << 20;
    nn_tensor *a = nn_arange(NN_F32, 0, (double)n, 1);
    nn_tensor *m = nn_view(a, 2, (int64_t[]){1024, 1024});
    nn_tensor *t = nn_transpose(m, 0, 1);
    nn_tensor *s = nn_binary(NN_ADD, m, t); /* s[i][j] = 1025 (i + j) */
    CHECK_NEAR(nn_get(s, (int64_t[]){3, 700}), 1025.0 * 703, 0);
    CHECK_NEAR(nn_get(s, (int64_t[]){1023, 1}), 1025.0 * 1024, 0);
    nn_release(a); nn_release(m); nn_release(t); nn_release(s);
}

TEST(reductions) {
    nn_tensor *x = seq(3, (int64_t[]){2, 3, 4});
    nn_reduce_args all = {.p = 2, .correction = 1};
    nn_tensor *s = nn_reduce(NN_SUM, x, &all);
    CHECK(s->ndim == 0 && nn_item(s) == 276);
    nn_reduce_args d1 = {.ndims = 1, .dims = {1}, .correction = 1, .p = 2};
    nn_tensor *s1 = nn_reduce(NN_SUM, x, &d1); /* (2, 4) */
    CHECK(check_values(s1, (float[]){12, 15, 18, 21, 48, 51, 54, 57}, 0));
    nn_reduce_args d02 = {.ndims = 2, .dims = {0, -1}, .keepdim = 1, .p = 2};
    nn_tensor *m = nn_reduce(NN_MEAN, x, &d02); /* (1, 3, 1) */
    CHECK(m->ndim == 3 && m->shape[1] == 3 && m->shape[2] == 1);
    CHECK(check_values(m, (float[]){7.5f, 11.5f, 15.5f}, 1e-6));
    nn_reduce_args last = {.ndims = 1, .dims = {-1}, .correction = 1, .p = 2};
    nn_tensor *v = nn_reduce(NN_VAR, x, &last);
    CHECK_NEAR(nn_f32(v)[0], 5.0 / 3.0, 1e-6);
    last.correction = 0;
    nn_tensor *sd = nn_reduce(NN_STD, x, &last);
    CHECK_NEAR(nn_f32(sd)[0], sqrt(1.25), 1e-6);
    nn_tensor *lse = nn_reduce(NN_LOGSUMEXP, x, &last);
    CHECK_NEAR(nn_f32(lse)[0], log(exp(0) + exp(1) + exp(2) + exp(3)), 1e-5);
    nn_tensor *nrm = nn_reduce(NN_NORM, x, &last);
    CHECK_NEAR(nn_f32(nrm)[0], sqrt(0 + 1 + 4 + 9), 1e-6);
    last.p = 1;
    nn_tensor *n1 = nn_reduce(NN_NORM, x, &last);
    CHECK_NEAR(nn_f32(n1)[1], 4 + 5 + 6 + 7, 0);
    nn_tensor *pr = nn_reduce(NN_PROD, x, &last);
    CHECK_NEAR(nn_f32(pr)[1], 4 * 5 * 6 * 7, 0);
    nn_tensor *lead = nn_sum(x, 2, (int[]){0, 1}, 0); /* column path */
    CHECK(check_values(lead, (float[]){60, 66, 72, 78}, 0));
    nn_release(lead);
    nn_reduce_args bad = {.ndims = 1, .dims = {3}};
    CHECK(nn_reduce(NN_SUM, x, &bad) == NULL);
    nn_release(x); nn_release(s); nn_release(s1); nn_release(m); nn_release(v);
    nn_release(sd); nn_release(lse); nn_release(nrm); nn_release(n1); nn_release(pr);
}

TEST(max_argmax_with_base) {
    nn_tensor *x = check_tensor(2, (int64_t[]){2, 3}, (float[]){1, 5, 5, -1, -3, -2});
    nn_tensor *v, *i;
    CHECK(nn_max_dim(x, 1, 0, 0, 1, &v, &i) == 0);
    CHECK(check_values(v, (float[]){5, -1}, 0));
    CHECK(i->dtype == NN_I64 && check_values(i, (float[]){2, 1}, 0)); /* first max, base 1 */
    nn_tensor *v2, *i2;
    CHECK(nn_max_dim(x, 0, 1, 1, 0, &v2, &i2) == 0); /* min over rows, keepdim */
    CHECK(v2->ndim == 2 && check_values(v2, (float[]){-1, -3, -2}, 0));
    CHECK(check_values(i2, (float[]){1, 1, 1}, 0));
    nn_tensor *nan = check_tensor(1, (int64_t[]){3}, (float[]){1, NAN, 2});
    nn_reduce_args a = {.p = 2};
    nn_tensor *mx = nn_reduce(NN_MAX, nan, &a);
    CHECK(isnan(nn_item(mx)));
    nn_release(x); nn_release(v); nn_release(i); nn_release(v2); nn_release(i2);
    nn_release(nan); nn_release(mx);
}

TEST(softmax_and_cumsum) {
    nn_tensor *x = check_tensor(2, (int64_t[]){2, 3},
                                (float[]){1, 2, 3, -INFINITY, 0, -INFINITY});
    nn_tensor *s = nn_softmax(x, 1);
    CHECK(check_values(s, (float[]){0.09003057f, 0.24472847f, 0.66524096f, 0, 1, 0}, 1e-7));
    nn_tensor *ls = nn_log_softmax(x, -1);
    CHECK_NEAR(nn_f32(ls)[2], log(0.66524096), 1e-6);
    nn_tensor *big = check_tensor(1, (int64_t[]){2}, (float[]){1000, 1000});
    nn_tensor *sb = nn_softmax(big, 0);
    CHECK(check_values(sb, (float[]){0.5f, 0.5f}, 1e-7)); /* no overflow */
    nn_tensor *s0 = nn_softmax(x, 0); /* along a non-last dim */
    CHECK(check_values(s0, (float[]){1, 0.88079708f, 1, 0, 0.11920292f, 0}, 1e-6));
    nn_tensor *c = nn_cumsum(s0, 0);
    CHECK(check_values(c, (float[]){1, 0.88079708f, 1, 1, 1, 1}, 1e-6));
    nn_release(x); nn_release(s); nn_release(ls); nn_release(big);
    nn_release(sb); nn_release(s0); nn_release(c);
}

/* naive reference: c = a @ b for contiguous-or-not 2-D operands */
static int matmul_matches(const nn_tensor *a, const nn_tensor *b, const nn_tensor *c) {
    int64_t n = a->shape[0], k = a->shape[1], m = b->shape[1];
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++)
                s += nn_get(a, (int64_t[]){i, p}) * nn_get(b, (int64_t[]){p, j});
            if (fabs(s - nn_get(c, (int64_t[]){i, j})) > 1e-4 * (1 + fabs(s))) return 0;
        }
    return 1;
}

TEST(matmul_layouts) {
    nn_rng r;
    nn_rng_seed(&r, 3);
    nn_tensor *a = nn_randn(&r, 2, (int64_t[]){5, 7});
    nn_tensor *b = nn_randn(&r, 2, (int64_t[]){7, 4});
    nn_tensor *c = nn_matmul(a, b);
    CHECK(c && matmul_matches(a, b, c));
    nn_tensor *bt = nn_randn(&r, 2, (int64_t[]){4, 7});
    nn_tensor *btt = nn_transpose(bt, 0, 1); /* passed as a transpose flag */
    nn_tensor *c2 = nn_matmul(a, btt);
    CHECK(c2 && matmul_matches(a, btt, c2));
    nn_tensor *at = nn_transpose(a, 0, 1), *c3 = nn_matmul(at, a); /* 7x7 */
    CHECK(c3 && matmul_matches(at, a, c3));
    nn_tensor *sl = nn_slice(a, 1, 0, 7, 2); /* stride 2 columns: copied */
    nn_tensor *b4 = nn_randn(&r, 2, (int64_t[]){4, 3});
    nn_tensor *c4 = nn_matmul(sl, b4);
    CHECK(c4 && matmul_matches(sl, b4, c4));
    CHECK(nn_matmul(a, a) == NULL && strstr(nn_last_error(), "5x7 @ 5x7"));
    nn_release(a); nn_release(b); nn_release(c); nn_release(bt); nn_release(btt);
    nn_release(c2); nn_release(at); nn_release(c3); nn_release(sl); nn_release(b4);
    nn_release(c4);
}

TEST(matmul_batches_and_vectors) {
    nn_rng r;
    nn_rng_seed(&r, 4);
    nn_tensor *a = nn_randn(&r, 3, (int64_t[]){3, 4, 5});
    nn_tensor *w = nn_randn(&r, 2, (int64_t[]){5, 2});
    nn_tensor *c = nn_matmul(a, w); /* folded into one 12x5 @ 5x2 */
    CHECK(c && c->ndim == 3 && c->shape[0] == 3 && c->shape[2] == 2);
    for (int64_t i = 0; i < 3; i++) {
        nn_tensor *ai = nn_select(a, 0, i), *ci = nn_select(c, 0, i);
        CHECK(matmul_matches(ai, w, ci));
        nn_release(ai); nn_release(ci);
    }
    nn_tensor *bb = nn_randn(&r, 4, (int64_t[]){2, 1, 5, 3});
    nn_tensor *c2 = nn_matmul(a, bb); /* (3,4,5) @ (2,1,5,3) -> (2,3,4,3) */
    CHECK(c2 && c2->ndim == 4 && c2->shape[0] == 2 && c2->shape[1] == 3);
    nn_tensor *a1 = nn_select(a, 0, 2), *b1 = nn_select(bb, 0, 1);
    nn_tensor *b11 = nn_select(b1, 0, 0), *c21 = nn_select(c2, 0, 1);
    nn_tensor *c212 = nn_select(c21, 0, 2);
    CHECK(matmul_matches(a1, b11, c212));
    nn_tensor *v = nn_randn(&r, 1, (int64_t[]){5});
    nn_tensor *mv = nn_matmul(a1, v); /* (4,5) @ (5) -> (4) */
    CHECK(mv && mv->ndim == 1 && mv->shape[0] == 4);
    nn_tensor *vv = nn_matmul(v, v);
    CHECK(vv && vv->ndim == 0);
    double dot = 0;
    for (int i = 0; i < 5; i++) dot += nn_f32(v)[i] * nn_f32(v)[i];
    CHECK_NEAR(nn_item(vv), dot, 1e-5);
    nn_release(a); nn_release(w); nn_release(c); nn_release(bb); nn_release(c2);
    nn_release(a1); nn_release(b1); nn_release(b11); nn_release(c21);
    nn_release(c212); nn_release(v); nn_release(mv); nn_release(vv);
}

TEST(gather_scatter_index) {
    nn_tensor *x = seq(2, (int64_t[]){3, 4});
    nn_tensor *ix = nn_arange(NN_I64, 0, 3, 1); /* overwritten below */
    nn_tensor *idx = nn_empty(NN_I64, 2, (int64_t[]){3, 1});
    int64_t vals[3] = {4, 1, 2}; /* base 1 */
    memcpy(nn_data(idx), vals, sizeof vals);
    nn_tensor *g = nn_gather(x, 1, idx, 1);
    CHECK(check_values(g, (float[]){3, 4, 9}, 0));
    nn_tensor *src = check_tensor(2, (int64_t[]){3, 1}, (float[]){-1, -2, -3});
    nn_tensor *s = nn_scatter(x, 1, idx, src, 0, 1);
    CHECK(check_values(s, (float[]){0, 1, 2, -1, -2, 5, 6, 7, 8, -3, 10, 11}, 0));
    vals[0] = 5;
    memcpy(nn_data(idx), vals, sizeof vals);
    CHECK(nn_gather(x, 1, idx, 1) == NULL && strstr(nn_last_error(), "out of range"));
    nn_tensor *rows = nn_arange(NN_I64, 2, -1, -2); /* {2, 0} base 0 */
    nn_tensor *sel = nn_index_select(x, 0, rows, 0);
    CHECK(check_values(sel, (float[]){8, 9, 10, 11, 0, 1, 2, 3}, 0));
    nn_tensor *selc = nn_index_select(x, 1, rows, 0);
    CHECK(check_values(selc, (float[]){2, 0, 6, 4, 10, 8}, 0));
    nn_tensor *twice = nn_full_dtype(NN_I64, 1, (int64_t[]){2}, 1);
    nn_tensor *ones = nn_full(2, (int64_t[]){2, 4}, 1);
    nn_tensor *ia = nn_index_add(x, 0, twice, ones, 2, 0); /* row 1 += 4 */
    CHECK(check_values(ia, (float[]){0, 1, 2, 3, 8, 9, 10, 11, 8, 9, 10, 11}, 0));
    nn_tensor *mask = check_tensor(1, (int64_t[]){4}, (float[]){1, 0, 0, 1});
    nn_tensor *mf = nn_masked_fill(x, mask, -INFINITY);
    CHECK(isinf(nn_get(mf, (int64_t[]){2, 3})) && nn_get(mf, (int64_t[]){2, 2}) == 10);
    nn_tensor *oh = nn_one_hot(rows, 3, 0);
    CHECK(check_values(oh, (float[]){0, 0, 1, 1, 0, 0}, 0));
    nn_tensor *tl = nn_tril(x, 0, 0), *tu = nn_tril(x, 1, 1);
    CHECK(check_values(tl, (float[]){0, 0, 0, 0, 4, 5, 0, 0, 8, 9, 10, 0}, 0));
    CHECK(check_values(tu, (float[]){0, 1, 2, 3, 0, 0, 6, 7, 0, 0, 0, 11}, 0));
    nn_release(x); nn_release(ix); nn_release(idx); nn_release(g); nn_release(src);
    nn_release(s); nn_release(rows); nn_release(sel); nn_release(selc);
    nn_release(twice); nn_release(ones); nn_release(ia); nn_release(mask);
    nn_release(mf); nn_release(oh); nn_release(tl); nn_release(tu);
}

TEST(join_and_order) {
    nn_tensor *a = seq(2, (int64_t[]){2, 2});
    nn_tensor *b = nn_full(2, (int64_t[]){2, 1}, 9);
    nn_tensor *c = nn_cat((nn_tensor *[]){a, b}, 2, 1);
    CHECK(check_values(c, (float[]){0, 1, 9, 2, 3, 9}, 0));
    CHECK(nn_cat((nn_tensor *[]){a, b}, 2, 0) == NULL);
    nn_tensor *s = nn_stack((nn_tensor *[]){a, a}, 2, 2); /* (2, 2, 2) */
    CHECK(s && s->shape[2] == 2 && check_values(s, (float[]){0, 0, 1, 1, 2, 2, 3, 3}, 0));
    nn_tensor *parts[2];
    CHECK(nn_split(c, 1, (int64_t[]){2, 1}, 2, parts) == 0);
    CHECK(parts[1]->shape[1] == 1 && nn_get(parts[1], (int64_t[]){1, 0}) == 9);
    nn_tensor *x = check_tensor(2, (int64_t[]){2, 4}, (float[]){3, 1, NAN, 2, 5, 5, -1, 0});
    nn_tensor *v, *i;
    CHECK(nn_sort(x, 1, 0, 1, &v, &i) == 0);
    CHECK(nn_get(v, (int64_t[]){0, 0}) == 1 && isnan(nn_get(v, (int64_t[]){0, 3})));
    CHECK(check_values(i, (float[]){2, 4, 1, 3, 3, 4, 1, 2}, 0)); /* stable */
    nn_tensor *tv, *ti;
    CHECK(nn_topk(x, 2, 1, 1, 0, &tv, &ti) == 0);
    CHECK(isnan(nn_get(tv, (int64_t[]){0, 0})) && nn_get(tv, (int64_t[]){0, 1}) == 3);
    CHECK(check_values(ti, (float[]){2, 0, 0, 1}, 0));
    nn_release(tv);
    nn_release(ti);
    CHECK(nn_topk(x, 5, 1, 1, 0, &tv, &ti) < 0 && !tv && !ti);
    nn_release(a); nn_release(b); nn_release(c); nn_release(s);
    nn_release(parts[0]); nn_release(parts[1]); nn_release(x); nn_release(v);
    nn_release(i);
}

TEST(where_selects) {
    nn_tensor *c = check_tensor(2, (int64_t[]){2, 1}, (float[]){1, 0});
    nn_tensor *a = check_tensor(1, (int64_t[]){3}, (float[]){1, 2, 3});
    nn_tensor *b = nn_scalar(NN_F32, -1);
    nn_tensor *w = nn_where(c, a, b);
    CHECK(check_values(w, (float[]){1, 2, 3, -1, -1, -1}, 0));
    nn_release(c); nn_release(a); nn_release(b); nn_release(w);
}

int main(void) {
    RUN(binary_broadcast);
    RUN(binary_strided_and_inplace);
    RUN(integer_ops_stay_integral);
    RUN(unary_values);
    RUN(transposed_copies);
    RUN(large_elementwise_runs_in_parallel_correctly);
    RUN(reductions);
    RUN(max_argmax_with_base);
    RUN(softmax_and_cumsum);
    RUN(matmul_layouts);
    RUN(matmul_batches_and_vectors);
    RUN(gather_scatter_index);
    RUN(join_and_order);
    RUN(where_selects);
    return check_summary("engine ops");
}
