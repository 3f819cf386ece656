/* conv_dnnl.h -- conv2d through oneDNN (conv_dnnl.c; not installed). */
#ifndef NN_CONV_DNNL_H
#define NN_CONV_DNNL_H

#include "conv_cols.h"

/* Plain layouts: x (N, C, H, W), w (O, C / groups, KH, KW), y (N, O, OH, OW).
 * 1 when done, 0 when oneDNN is not there or cannot do it (the caller
 * falls back to im2col), -1 with an error. NNLUA_CONV=im2col turns it off.
 *
 * forward: y = conv(x, w) + bias (bias may be NULL). With keep_x, *keep_x
 * receives x as reordered for oneDNN when the weight gradient takes that
 * layout too (else NULL), so backward need not reorder x again. */
int nn_dnnl_conv_forward(const nn_conv_geom *g, const float *x, const float *w, const float *bias,
                         float *y, nn_tensor **keep_x);
/* backward: dx (when not NULL) from dy and w; dw and db (when not NULL)
 * from x (or x_kept, forward's keep_x) and dy. dy is reordered once for
 * both when they take one layout. */
int nn_dnnl_conv_backward(const nn_conv_geom *g, const float *dy, const float *w, const float *x,
                          nn_tensor *x_kept, float *dx, float *dw, float *db);

#endif
