/* rowstats.h -- sums over one contiguous row of floats for the
 * normalisation layers (chnorm.c, norm.c; not installed).
 *
 * Row sums in 16 independent float lanes (vectorised without
 * reassociating), then added up in double: a lone double accumulator was
 * a latency-bound chain (BatchNorm was 28% of a ResNet step). sum of v;
 * sum of (v - m)^2; sum of g w and of g w (v - m) (w per element, or
 * NULL for 1). Unused ones are fine in a file that includes this. */
#ifndef NN_ROWSTATS_H
#define NN_ROWSTATS_H

#include <stdint.h>

#include "vecmath.h"

NN_DISPATCH __attribute__((unused))
static double nn_row_sum(const float *v, int64_t n) {
    nn_v16 acc = {0};
    int64_t e = 0;
    for (; e + 16 <= n; e += 16) acc += NN_V16_LOAD(v + e);
    double t = 0;
    for (; e < n; e++) t += v[e];
    return t + nn_v16_sum(&acc);
}

NN_DISPATCH __attribute__((unused))
static double nn_row_sqdev(const float *v, int64_t n, float m) {
    nn_v16 acc = {0};
    int64_t e = 0;
    for (; e + 16 <= n; e += 16) {
        nn_v16 d = NN_V16_LOAD(v + e) - m;
        acc += d * d;
    }
    double t = 0;
    for (; e < n; e++) t += (double)(v[e] - m) * (v[e] - m);
    return t + nn_v16_sum(&acc);
}

NN_DISPATCH __attribute__((unused))
static void nn_row_dot(const float *g, const float *w, const float *v, int64_t n, float m, double *sg,
                       double *sgv) {
    nn_v16 a = {0}, b = {0};
    int64_t e = 0;
    for (; e + 16 <= n; e += 16) {
        nn_v16 gv = NN_V16_LOAD(g + e);
        if (w) gv *= NN_V16_LOAD(w + e);
        a += gv;
        b += gv * (NN_V16_LOAD(v + e) - m);
    }
    double ta = 0, tb = 0;
    for (; e < n; e++) {
        float gw = w ? g[e] * w[e] : g[e];
        ta += gw;
        tb += (double)gw * (v[e] - m);
    }
    *sg += ta + nn_v16_sum(&a);
    *sgv += tb + nn_v16_sum(&b);
}

#endif
