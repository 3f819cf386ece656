/* attn_tiles.h -- the small products of one attention head, in register
 * tiles of 4 rows x 16 columns.
 *
 * A head's products are too small for a BLAS call to pay off (measured
 * here: per-head sgemm was 2-4x slower than loops), but a loop that
 * updates a whole row of scores per term reloads and stores that row for
 * every term. These tiles keep 4 x 16 sums in registers (GCC holds
 * acc[4][16] in four vector registers under NN_DISPATCH) and stream the
 * shared operand once per 4 rows. Tails (fewer rows, a last partial block
 * of columns) take the same loops with variable bounds. Strides are in
 * floats; every operand's rows have unit stride. */
#ifndef NN_ATTN_TILES_H
#define NN_ATTN_TILES_H

#include <stdint.h>
#include <string.h>

#define TILE_ROWS 4
#define TILE_COLS 16

/* c (nr x n) = alpha a b, or += with accumulate: a has nr <= 4 rows of
 * `inner` values (stride lda), b is inner rows of n (stride ldb) */
static inline void tile_rows(const float *a, int64_t lda, int nr, const float *b, int64_t ldb,
                             int64_t inner, int64_t n, float alpha, float *c, int64_t ldc,
                             int accumulate) {
    for (int64_t j0 = 0; j0 < n; j0 += TILE_COLS) {
        int64_t w = n - j0 < TILE_COLS ? n - j0 : TILE_COLS;
        float acc[TILE_ROWS][TILE_COLS];
        memset(acc, 0, sizeof acc);
        if (nr == TILE_ROWS && w == TILE_COLS) {
            const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
            for (int64_t k = 0; k < inner; k++) {
                const float *br = b + k * ldb + j0;
                float x0 = a0[k], x1 = a1[k], x2 = a2[k], x3 = a3[k];
                for (int l = 0; l < TILE_COLS; l++) {
                    acc[0][l] += x0 * br[l];
                    acc[1][l] += x1 * br[l];
                    acc[2][l] += x2 * br[l];
                    acc[3][l] += x3 * br[l];
                }
            }
        } else {
            for (int64_t k = 0; k < inner; k++) {
                const float *br = b + k * ldb + j0;
                for (int r = 0; r < nr; r++) {
                    float x = a[r * lda + k];
                    for (int64_t l = 0; l < w; l++) acc[r][l] += x * br[l];
                }
            }
        }
        for (int r = 0; r < nr; r++)
            for (int64_t l = 0; l < w; l++) {
                float *o = &c[r * ldc + j0 + l];
                *o = accumulate ? *o + alpha * acc[r][l] : alpha * acc[r][l];
            }
    }
}

/* c (nj x m) += a[:, j0 .. j0 + nj)^T x: a is rows x (stride lda) with nj
 * <= 4 of its columns taken, x is rows of m (stride ldx) */
static inline void tile_at_x(const float *a, int64_t lda, int64_t rows, int64_t j0, int nj,
                             const float *x, int64_t ldx, int64_t m, float *c, int64_t ldc) {
    for (int64_t c0 = 0; c0 < m; c0 += TILE_COLS) {
        int64_t w = m - c0 < TILE_COLS ? m - c0 : TILE_COLS;
        float acc[TILE_ROWS][TILE_COLS];
        memset(acc, 0, sizeof acc);
        if (nj == TILE_ROWS && w == TILE_COLS) {
            for (int64_t r = 0; r < rows; r++) {
                const float *xr = x + r * ldx + c0, *ar = a + r * lda + j0;
                float y0 = ar[0], y1 = ar[1], y2 = ar[2], y3 = ar[3];
                for (int l = 0; l < TILE_COLS; l++) {
                    acc[0][l] += y0 * xr[l];
                    acc[1][l] += y1 * xr[l];
                    acc[2][l] += y2 * xr[l];
                    acc[3][l] += y3 * xr[l];
                }
            }
        } else {
            for (int64_t r = 0; r < rows; r++) {
                const float *xr = x + r * ldx + c0, *ar = a + r * lda + j0;
                for (int jj = 0; jj < nj; jj++)
                    for (int64_t l = 0; l < w; l++) acc[jj][l] += ar[jj] * xr[l];
            }
        }
        for (int jj = 0; jj < nj; jj++)
            for (int64_t l = 0; l < w; l++) c[jj * ldc + c0 + l] += acc[jj][l];
    }
}

#endif
