/* conv_cols.h -- the patch matrices shared by convolution and transposed
 * convolution (conv.c, conv_transpose.c; not installed).
 *
 * An image (N, C, H, W) seen through a kernel KH x KW at OH x OW
 * positions: patches (N, L, K) hold one row per position (L = OH OW), its
 * K = C KH KW values ordered by channel, then kernel row, then column, so
 * the values of a group of channels are one contiguous run of each row. */
#ifndef NN_CONV_COLS_H
#define NN_CONV_COLS_H

#include <stdint.h>

#include "nn_tensor.h"

typedef struct {
    int64_t n, ci, h, w, co, kh, kw, oh, ow;
    int64_t sh, sw, ph, pw, dh, dw;
    int64_t groups;
    int bf16; /* made under autocast: the products are in bf16 both ways */
    int dnnl; /* conv2d ran through oneDNN (conv_dnnl.c): backward does too */
} nn_conv_geom;

/* the image x (N, ci, h, w) -> patches (N, L, K) */
void nn_im2col(const nn_conv_geom *g, const float *x, float *patches);
/* the patches' values summed back into their image positions (dx zeroed
 * first) */
void nn_col2im(const nn_conv_geom *g, const float *patches, float *dx);

/* conv2d with one input channel a group (groups = C, any multiple of C
 * filters), by direct loops: x, w, b checked and g filled by conv2d */
nn_tensor *nn_depthwise_conv2d_(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                                const nn_conv_geom *g);

#endif
