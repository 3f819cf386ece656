/* conv_cols.c -- im2col and col2im (conv_cols.h). */
#include "conv_cols.h"

#include <string.h>

#include "internal.h"

/* (y, x) of patch element (c, i, j) for output (oy, ox), or -1 if padding */
static inline int64_t source(const nn_conv_geom *g, int64_t i, int64_t j, int64_t oy,
                             int64_t ox) {
    int64_t y = oy * g->sh - g->ph + i * g->dh, x = ox * g->sw - g->pw + j * g->dw;
    return (y < 0 || y >= g->h || x < 0 || x >= g->w) ? -1 : y * g->w + x;
}

void nn_im2col(const nn_conv_geom *g, const float *x, float *patches) {
    int64_t l = g->oh * g->ow, k = g->ci * g->kh * g->kw, khw = g->kh * g->kw;
#pragma omp parallel for if (g->n * l * k > NN_PAR_GRAIN)
    for (int64_t pos = 0; pos < g->n * l; pos++) {
        int64_t b = pos / l, oy = pos % l / g->ow, ox = pos % g->ow;
        const float *img = x + b * g->ci * g->h * g->w;
        float *row = patches + pos * k; /* written in order: c, then i, then j */
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t at = source(g, i, j, oy, ox), e = i * g->kw + j;
                if (at < 0)
                    for (int64_t c = 0; c < g->ci; c++) row[c * khw + e] = 0.0f;
                else
                    for (int64_t c = 0; c < g->ci; c++) row[c * khw + e] = img[c * g->h * g->w + at];
            }
    }
}

void nn_col2im(const nn_conv_geom *g, const float *patches, float *dx) {
    int64_t l = g->oh * g->ow, k = g->ci * g->kh * g->kw, khw = g->kh * g->kw;
    int64_t img_size = g->ci * g->h * g->w;
#pragma omp parallel for if (g->n * l * k > NN_PAR_GRAIN)
    for (int64_t b = 0; b < g->n; b++) {
        float *img = dx + b * img_size;
        memset(img, 0, img_size * sizeof *img);
        for (int64_t p = 0; p < l; p++) {
            const float *row = patches + (b * l + p) * k;
            int64_t oy = p / g->ow, ox = p % g->ow;
            for (int64_t i = 0; i < g->kh; i++)
                for (int64_t j = 0; j < g->kw; j++) {
                    int64_t at = source(g, i, j, oy, ox), e = i * g->kw + j;
                    if (at < 0) continue;
                    for (int64_t c = 0; c < g->ci; c++)
                        img[c * g->h * g->w + at] += row[c * khw + e];
                }
        }
    }
}

