/* conv_dnnl.h -- conv2d through oneDNN (conv_dnnl.c; not installed). */
#ifndef NN_CONV_DNNL_H
#define NN_CONV_DNNL_H

#include "conv_cols.h"

typedef enum { NN_DNNL_FORWARD, NN_DNNL_BACKWARD_DATA, NN_DNNL_BACKWARD_WEIGHTS } nn_dnnl_kind;

/* Plain layouts: x (N, C, H, W), w (O, C / groups, KH, KW), y (N, O, OH, OW).
 *   forward:          in0 = x, in1 = w, bias (O) or NULL -> out = y
 *   backward data:    in0 = dy, in1 = w -> out = dx
 *   backward weights: in0 = x, in1 = dy -> out = dw, out_bias = db (or NULL)
 * 1 when done, 0 when oneDNN is not there or cannot do it (fall back),
 * -1 with an error. NNLUA_CONV=im2col turns it off. */
int nn_dnnl_conv(nn_dnnl_kind kind, const nn_conv_geom *g, const float *in0, const float *in1,
                 const float *bias, float *out, float *out_bias);

#endif
