/* test_tensor.c -- storage, views, copies, creation and the generator. */
#include <math.h>
#include <string.h>

#include "check.h"
#ifdef _OPENMP
#include <omp.h>
#endif

TEST(views_share_storage) {
    nn_tensor *a = nn_arange(NN_F32, 0, 6, 1);
    nn_tensor *v = nn_view(a, 2, (int64_t[]){2, 3});
    CHECK(v && v->storage == a->storage && v->shape[1] == 3);
    nn_set(v, (int64_t[]){1, 2}, 42);
    CHECK_NEAR(nn_f32(a)[5], 42, 0);
    nn_tensor *t = nn_transpose(v, 0, 1);
    CHECK(t && !nn_is_contiguous(t) && t->shape[0] == 3);
    CHECK(nn_view(t, 1, (int64_t[]){6}) == NULL); /* not viewable */
    CHECK(strstr(nn_last_error(), "non-contiguous") != NULL);
    nn_tensor *r = nn_reshape(t, 1, (int64_t[]){-1});
    float want[6] = {0, 3, 1, 4, 2, 42};
    CHECK(check_values(r, want, 0));
    CHECK(r->storage != a->storage);
    nn_release(a); /* views keep the storage alive */
    CHECK_NEAR(nn_get(v, (int64_t[]){0, 1}), 1, 0);
    nn_release(v);
    nn_release(t);
    nn_release(r);
}

TEST(slices_select_expand) {
    nn_tensor *a = nn_arange(NN_F32, 0, 12, 1);
    nn_tensor *m = nn_view(a, 2, (int64_t[]){3, 4});
    nn_tensor *s = nn_slice(m, 1, 0, 4, 2); /* columns 0, 2 */
    float want_s[6] = {0, 2, 4, 6, 8, 10};
    CHECK(check_values(s, want_s, 0));
    nn_tensor *row = nn_select(m, 0, 2);
    float want_r[4] = {8, 9, 10, 11};
    CHECK(row && row->ndim == 1 && check_values(row, want_r, 0));
    CHECK(nn_select(m, 0, 3) == NULL && nn_last_error_arg() == 3);
    nn_tensor *col = nn_narrow(m, 1, 1, 1);
    nn_tensor *e = nn_expand(col, 2, (int64_t[]){3, 5});
    CHECK(e && e->stride[1] == 0);
    float want_e[15] = {1, 1, 1, 1, 1, 5, 5, 5, 5, 5, 9, 9, 9, 9, 9};
    CHECK(check_values(e, want_e, 0));
    CHECK(nn_expand(m, 2, (int64_t[]){3, 5}) == NULL);
    nn_tensor *u = nn_unsqueeze(row, 0);
    CHECK(u && u->ndim == 2 && u->shape[0] == 1);
    nn_tensor *q = nn_squeeze_all(u);
    CHECK(q && q->ndim == 1);
    nn_release(a); nn_release(m); nn_release(s); nn_release(row);
    nn_release(col); nn_release(e); nn_release(u); nn_release(q);
}

TEST(permute_and_contiguous_copy) {
    nn_tensor *a = nn_arange(NN_F32, 0, 24, 1);
    nn_tensor *v = nn_view(a, 3, (int64_t[]){2, 3, 4});
    nn_tensor *p = nn_permute(v, (int[]){2, 0, 1});
    CHECK(p && p->shape[0] == 4 && p->shape[1] == 2 && p->shape[2] == 3);
    nn_tensor *c = nn_contiguous(p);
    CHECK(nn_is_contiguous(c));
    /* c[i][j][k] = v[j][k][i] = 12j + 4k + i */
    CHECK_NEAR(nn_get(c, (int64_t[]){3, 1, 2}), 12 + 8 + 3, 0);
    nn_tensor *l = nn_to_dtype(c, NN_I64);
    CHECK(l && l->dtype == NN_I64 && nn_get(l, (int64_t[]){3, 1, 2}) == 23);
    CHECK(nn_permute(v, (int[]){0, 0, 1}) == NULL);
    nn_release(a); nn_release(v); nn_release(p); nn_release(c); nn_release(l);
}

TEST(creation) {
    nn_tensor *l = nn_linspace(0, 1, 5);
    float want[5] = {0, 0.25f, 0.5f, 0.75f, 1};
    CHECK(check_values(l, want, 1e-7));
    nn_tensor *e = nn_eye(2, 3);
    float want_e[6] = {1, 0, 0, 0, 1, 0};
    CHECK(check_values(e, want_e, 0));
    nn_tensor *r = nn_arange(NN_I64, 5, 0, -2);
    float want_r[3] = {5, 3, 1};
    CHECK(r && r->dtype == NN_I64 && check_values(r, want_r, 0));
    CHECK(nn_arange(NN_F32, 0, 1, 0) == NULL);
    CHECK(nn_empty(NN_F32, 2, (int64_t[]){-1, 2}) == NULL);
    CHECK(nn_empty(NN_F32, 2, (int64_t[]){INT64_MAX / 2, 4}) == NULL);
    nn_release(l); nn_release(e); nn_release(r);
}

static double mean_of(const nn_tensor *t) {
    double s = 0;
    for (int64_t i = 0; i < nn_numel(t); i++) s += nn_f32(t)[i];
    return s / nn_numel(t);
}

TEST(rng_is_seeded_and_thread_independent) {
    nn_rng r1, r2;
    nn_rng_seed(&r1, 7);
    nn_rng_seed(&r2, 7);
    int64_t n = 200000;
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    nn_tensor *a = nn_randn(&r1, 1, &n);
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    nn_tensor *b = nn_randn(&r2, 1, &n);
    CHECK(memcmp(nn_data(a), nn_data(b), n * sizeof(float)) == 0);
    CHECK_NEAR(mean_of(a), 0, 0.01);
    double var = 0;
    for (int64_t i = 0; i < n; i++) var += nn_f32(a)[i] * nn_f32(a)[i];
    CHECK_NEAR(var / n, 1, 0.02);
    CHECK(r1.offset == (uint64_t)n);
    nn_tensor *u = nn_rand(&r1, 1, &n); /* continues: differs from a */
    CHECK(memcmp(nn_data(u), nn_data(a), 64) != 0);
    CHECK_NEAR(mean_of(u), 0.5, 0.01);
    nn_tensor *k = nn_randint(&r1, -3, 4, 1, &n);
    int64_t lo = 99, hi = -99;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = nn_i64(k)[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    CHECK(lo == -3 && hi == 3);
    nn_tensor *p = nn_full(1, &n, 0.3);
    nn_tensor *bern = nn_bernoulli(&r1, p);
    CHECK_NEAR(mean_of(bern), 0.3, 0.01);
    nn_release(a); nn_release(b); nn_release(u); nn_release(k);
    nn_release(p); nn_release(bern);
}

TEST(borrowed_buffers_are_not_freed) {
    float host[6] = {1, 2, 3, 4, 5, 6};
    nn_tensor *t = nn_from_buffer(host, NN_F32, 2, (int64_t[]){2, 3});
    nn_tensor *s = nn_sum(t, 0, NULL, 0);
    CHECK_NEAR(nn_item(s), 21, 0);
    nn_fill_(t, 0.5);
    CHECK_NEAR(host[4], 0.5, 0);
    nn_release(t);
    nn_release(s);
    CHECK_NEAR(host[0], 0.5, 0); /* still ours, still readable */
}

TEST(cache_reuses_blocks_and_lets_old_ones_go) {
    nn_empty_cache();
    void *a = nn_alloc(100000);
    CHECK(a != NULL);
    nn_free(a);
    size_t kept = nn_cached_bytes();
    CHECK(kept >= 100000);
    void *b = nn_alloc(100000); /* the same block again */
    CHECK(b == a && nn_cached_bytes() == 0);
    nn_free(b);
    void *c = nn_alloc(70000); /* a smaller request borrows the larger block */
    CHECK(c == a);
    nn_free(c);
    /* fill the cache past its floor (1 GiB) with blocks of one size: the
     * oldest are let go, so the total stays bounded */
    enum { N = 40 };
    void *big[N];
    for (int i = 0; i < N; i++) big[i] = nn_alloc((size_t)40 << 20);
    for (int i = 0; i < N; i++) nn_free(big[i]);
    CHECK(nn_cached_bytes() <= ((size_t)N * 51 << 20)); /* at most the peak in use (+ rounding) */
    void *d = nn_alloc((size_t)40 << 20);
    CHECK(d == big[N - 1]); /* the newest freed block comes back first */
    nn_free(d);
    /* a block of another size freed into a full cache: the oldest go */
    size_t before = nn_cached_bytes();
    void *e = nn_alloc((size_t)200 << 20);
    nn_free(e);
    CHECK(nn_cached_bytes() <= before);
    void *f = nn_alloc((size_t)200 << 20);
    CHECK(f == e);
    nn_free(f);
    nn_empty_cache();
    CHECK(nn_cached_bytes() == 0);
}

TEST(cache_gives_back_blocks_left_idle) {
    nn_empty_cache();
    void *huge = nn_alloc((size_t)300 << 20); /* a passing peak */
    nn_free(huge);
    CHECK(nn_cached_bytes() >= ((size_t)300 << 20));
    for (int i = 0; i < 5000; i++) nn_free(nn_alloc(1 << 20)); /* a loop that never asks for it */
    CHECK(nn_cached_bytes() < ((size_t)2 << 20)); /* only the loop's own block is kept */
    void *again = nn_alloc(1 << 20);
    nn_free(again);
    CHECK(nn_cached_bytes() >= ((size_t)1 << 20));
    nn_empty_cache();
}

TEST(dropout_masks_follow_the_documented_stream) {
    /* element 64 g + 16 k + l keeps when word k of block 16 g + l is >= p */
    float m[200];
    nn_philox_mask(7, 5, m, 200, 0.3f, 2.0f, 0);
    int kept = 0;
    for (int e = 0; e < 200; e++) {
        int g = e / 64, k = (e % 64) / 16, l = e % 16;
        uint32_t w[4];
        nn_philox(7, 5 + (uint64_t)(16 * g + l), w);
        CHECK(m[e] == (nn_u01(w[k]) >= 0.3f ? 2.0f : 0.0f));
        kept += m[e] != 0;
    }
    CHECK(kept > 110 && kept < 170);
    float x[200];
    for (int e = 0; e < 200; e++) x[e] = 3.0f;
    nn_philox_mask(7, 5, x, 200, 0.3f, 2.0f, 1);
    for (int e = 0; e < 200; e++) CHECK(x[e] == 3.0f * m[e]);
}

TEST(philox_lanes_match_one_at_a_time) {
    /* the vectorised lanes (AVX-512 or portable) against nn_philox, with
     * counters whose low word wraps inside the 16 lanes */
    const uint64_t seeds[] = {0, 7, 0xFFFFFFFFull, 0x123456789ABCDEFull};
    const uint64_t counters[] = {0, 5, 0xFFFFFFF8ull, 0x1FFFFFFFFull - 3, 0xFFFFFFFFFFFFFFF0ull};
    for (int s = 0; s < 4; s++)
        for (int c = 0; c < 5; c++) {
            uint32_t w[4][NN_PHILOX_LANES], one[4];
            nn_philox_lanes(seeds[s], counters[c], w);
            for (int l = 0; l < NN_PHILOX_LANES; l++) {
                nn_philox(seeds[s], counters[c] + (uint64_t)l, one);
                for (int k = 0; k < 4; k++) CHECK(w[k][l] == one[k]);
            }
        }
}

int main(void) {
    RUN(views_share_storage);
    RUN(philox_lanes_match_one_at_a_time);
    RUN(slices_select_expand);
    RUN(permute_and_contiguous_copy);
    RUN(creation);
    RUN(rng_is_seeded_and_thread_independent);
    RUN(borrowed_buffers_are_not_freed);
    RUN(cache_reuses_blocks_and_lets_old_ones_go);
    RUN(cache_gives_back_blocks_left_idle);
    RUN(dropout_masks_follow_the_documented_stream);
    return check_summary("engine tensor");
}
