/*
 * nn_layers.h -- neural-network layers as fused kernels with hand-written
 * backward (linear, conv, norms, embedding, losses, attention, fusion,
 * knowledge-graph scores) and the optimizer steps.
 *
 * A first program (error checks elided; every call that can fail on user
 * input returns NULL or -1 and leaves a message in nn_last_error()):
 *
 *     nn_rng rng;
 *     nn_rng_seed(&rng, 42);
 *     nn_tensor *x = nn_randn(&rng, 2, (int64_t[]){2, 3}); // (2, 3) normal
 *     nn_set_requires_grad(x, 1);
 *     nn_tensor *w = nn_full(1, (int64_t[]){3}, 0.5);      // (3,)
 *     nn_tensor *y = nn_mul(x, w);                         // broadcast: (2, 3)
 *     nn_tensor *s = nn_sum(y, 0, NULL, 0);                // all dims: ()
 *     nn_backward(s, NULL, 0);                             // x->grad == 0.5
 *     printf("%g %g\n", nn_item(s), nn_get(x->grad, (int64_t[]){0, 0}));
 *     nn_release(x); nn_release(w); nn_release(y); nn_release(s);
 *
 * A layer call: y = nn_linear(x, w, b) with x (..., I), w (O, I), b (O).
 */
#ifndef NN_LAYERS_H
#define NN_LAYERS_H

#include "nn_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- layers (fused ops with hand-written backward) ------------------------ */
/* x (..., I) @ W (O, I)^T + b (O, or NULL) -> (..., O) */
nn_tensor *nn_linear(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b);
/* normalise the last nnorm dims; w, b (their product) or NULL */
nn_tensor *nn_layer_norm(const nn_tensor *x, int nnorm, const nn_tensor *w,
                         const nn_tensor *b, double eps);
nn_tensor *nn_rms_norm(const nn_tensor *x, int nnorm, const nn_tensor *w,
                       double eps);
/* x (N, C, ...) normalised per channel over N and the trailing dims.
 * training (or no running statistics given): with the batch's statistics,
 * updating running_mean and running_var (C, contiguous, or both NULL) in
 * place as (1 - momentum) r + momentum s with the unbiased variance; else
 * with the running statistics. w, b (C) or NULL. */
nn_tensor *nn_batch_norm(const nn_tensor *x, nn_tensor *running_mean, nn_tensor *running_var,
                         const nn_tensor *w, const nn_tensor *b, int training, double momentum,
                         double eps);
/* x (N, C, ...) normalised per sample over each of `groups` groups of
 * channels and the trailing dims (groups = C: instance norm); w, b (C) */
nn_tensor *nn_group_norm(const nn_tensor *x, int64_t groups, const nn_tensor *w,
                         const nn_tensor *b, double eps);
/* instance norm's running statistics: the mean over the batch of each
 * instance's mean and unbiased variance, folded in with momentum */
int nn_instance_norm_stats_(const nn_tensor *x, nn_tensor *running_mean, nn_tensor *running_var,
                            double momentum);
/* x (..., H, W) pooled onto an out[0] x out[1] grid of windows
 * [floor(i H / OH), ceil((i + 1) H / OH)); indices (optional): each max's
 * position in its H x W plane, counted from base */
nn_tensor *nn_adaptive_avg_pool2d(const nn_tensor *x, const int64_t *out);
nn_tensor *nn_adaptive_max_pool2d(const nn_tensor *x, const int64_t *out, nn_tensor **indices,
                                  int64_t base);
/* relu(x) - w relu(-x), w (1) or (C) for dim 1 of x */
nn_tensor *nn_prelu(const nn_tensor *x, const nn_tensor *w);
/* a sigmoid(b) for the two halves a, b of dim (0-based, negative from the end) */
nn_tensor *nn_glu(const nn_tensor *x, int dim);
/* idx (...) counted from base, W (V, D) -> (..., D); rows equal to
 * padding_idx get no gradient (pass a value outside the table for none) */
nn_tensor *nn_embedding(const nn_tensor *idx, const nn_tensor *w,
                        int64_t padding_idx, int64_t base);
/* bags of rows of w (V, D) reduced to (B, D): idx (N) i64 with offsets
 * (B) i64 (bag b starts at offsets[b]; both count from base, the first
 * offset is base), or idx (B, L) and offsets NULL; entries equal to
 * padding_idx are skipped; per_sample_weights (shaped like idx, sum mode)
 * or NULL */
typedef enum { NN_BAG_SUM, NN_BAG_MEAN, NN_BAG_MAX } nn_bag_mode;
nn_tensor *nn_embedding_bag(const nn_tensor *idx, const nn_tensor *offsets, const nn_tensor *w,
                            nn_bag_mode mode, const nn_tensor *per_sample_weights,
                            int64_t padding_idx, int64_t base);
/* rescale the rows idx uses to p-norm <= max_norm, in place */
int nn_embedding_renorm_(nn_tensor *w, const nn_tensor *idx, double max_norm,
                         double p, int64_t base);
/* x with elements zeroed with probability p, the rest scaled by 1/(1-p) */
nn_tensor *nn_dropout(nn_rng *r, const nn_tensor *x, double p, int training);
/* logits (N, C); target (N) i64 indices or (N, C) f32 probabilities;
 * weight (C) or NULL; reduction 0 none, 1 mean, 2 sum */
nn_tensor *nn_cross_entropy(const nn_tensor *logits, const nn_tensor *target,
                            const nn_tensor *weight, int64_t ignore_index,
                            double label_smoothing, int reduction, int64_t base);

/* x (N, C, H, W), w (O, C, KH, KW), b (O) or NULL; stride, padding and
 * dilation are {h, w} pairs */
nn_tensor *nn_conv2d(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                     const int *stride, const int *padding, const int *dilation);
/* the same with input and output channels in `groups` independent parts:
 * w (O, C / groups, KH, KW), O divisible by groups (1: nn_conv2d) */
nn_tensor *nn_conv2d_groups(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                            const int *stride, const int *padding, const int *dilation,
                            int64_t groups);
/* x (N, C, L), w (O, C / groups, K), b (O) or NULL -> (N, O, OL) */
nn_tensor *nn_conv1d(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b, int stride,
                     int padding, int dilation, int64_t groups);
/* the transpose of conv2d: x (N, C, H, W), w (C, O / groups, KH, KW), b
 * (O) or NULL -> (N, O, OH, OW), OH = (H - 1) stride - 2 padding +
 * dilation (KH - 1) + output_padding + 1 (pairs {h, w}) */
nn_tensor *nn_conv_transpose2d(const nn_tensor *x, const nn_tensor *w, const nn_tensor *b,
                               const int *stride, const int *padding, const int *output_padding,
                               const int *dilation, int64_t groups);
/* x (N, C, H, W) resized to size {OH, OW}; scale_factor {h, w} (or NULL)
 * sets the coordinate scale as PyTorch's scale_factor does */
typedef enum { NN_INTERP_NEAREST, NN_INTERP_BILINEAR } nn_interp_mode;
nn_tensor *nn_interpolate(const nn_tensor *x, const int64_t *size, const double *scale_factor,
                          nn_interp_mode mode, int align_corners);
/* what conv2d was built to run on: "onednn" (Debian's libdnnl; the
 * environment's NNLUA_CONV=im2col turns it off at run time) or "im2col" */
const char *nn_conv_backend(void);
nn_tensor *nn_max_pool2d(const nn_tensor *x, const int *kernel, const int *stride,
                         const int *padding);
nn_tensor *nn_avg_pool2d(const nn_tensor *x, const int *kernel, const int *stride,
                         const int *padding);
/* the same with ceil_mode (output sizes rounded up) and, for max, the
 * winners' positions in their H x W planes counted from base (indices may
 * be NULL) */
nn_tensor *nn_max_pool2d_ex(const nn_tensor *x, const int *kernel, const int *stride,
                            const int *padding, int ceil_mode, nn_tensor **indices, int64_t base);
nn_tensor *nn_avg_pool2d_ex(const nn_tensor *x, const int *kernel, const int *stride,
                            const int *padding, int ceil_mode);

/* The recurrence of one direction of one RNN layer (rnn.c). xw (T, B, G H):
 * the input side x W_ih^T + b_ih of every step, G = 1 (RNN), 4 (LSTM: i f
 * g o) or 3 (GRU: r z n); w_hh (G H, H); b_hh (G H), h0 and c0 (B, H; c0
 * LSTM only) or NULL (zeros); lengths (B) i64 in 1..T or NULL (all T);
 * reverse: from each sequence's last step to its first. *out (T, B, H),
 * zero past each length; *hn and *cn (LSTM; else cn may be NULL): the
 * state at each length. 0, or -1 with an error. */
typedef enum { NN_RNN_TANH, NN_RNN_RELU, NN_LSTM, NN_GRU } nn_rnn_mode;
int nn_rnn_scan(nn_rnn_mode mode, const nn_tensor *xw, const nn_tensor *w_hh, const nn_tensor *b_hh,
                const nn_tensor *h0, const nn_tensor *c0, const nn_tensor *lengths, int reverse,
                nn_tensor **out, nn_tensor **hn, nn_tensor **cn);

/* Cross-modal fusion (fusion.c). gated_fusion: h, g (B, M, D) per-modality
 * pre-activations and gate logits, mask (B, M) f32 or NULL (0 = missing) ->
 * sum_m softmax_m(g) tanh(h_m) (B, D). mfb_pool: a, b (B, D*factor) ->
 * L2-normalised signed sqrt of the factor-group sums of a*b (B, D). */
#define NN_FUSION_MAX_MODALITIES 16
nn_tensor *nn_gated_fusion(const nn_tensor *h, const nn_tensor *g,
                           const nn_tensor *mask);
nn_tensor *nn_mfb_pool(const nn_tensor *a, const nn_tensor *b, int64_t factor);

/* Knowledge-graph embedding scores (kge.c). E (V, de) entities, R (NR, dr)
 * relations; anchor, rel (B) i64; cand (B, N) per query or (N) shared, i64;
 * indices count from base. Scores (B, N) of (anchor, rel, cand) when head
 * is 0, of (cand, rel, anchor) when head is 1. TransE and DistMult: de =
 * dr; ComplEx: de = dr = 2k ([re | im]); RotatE: de = 2k, dr = k phases
 * (radians = phase * value). Scores of true triples: cand = tails (B, 1). */
typedef enum { NN_KGE_TRANSE, NN_KGE_DISTMULT, NN_KGE_COMPLEX, NN_KGE_ROTATE } nn_kge_model;
typedef struct {
    nn_kge_model model;
    double gamma; /* TransE, RotatE: score = gamma - distance */
    int p;        /* TransE's norm: 1 or 2 */
    int head;     /* candidates replace the head */
    double phase; /* RotatE */
} nn_kge_args;
nn_tensor *nn_kge_score(const nn_tensor *E, const nn_tensor *R, const nn_tensor *anchor,
                        const nn_tensor *rel, const nn_tensor *cand,
                        const nn_kge_args *a, int64_t base);

/* Scaled dot-product attention: q (B, H, Tq, D), k (B, H, Tk, D), v (B, H,
 * Tk, Dv) -> (B, H, Tq, Dv). k and v may broadcast over B and H (size 1).
 * mask: additive f32 broadcastable to (B, H, Tq, Tk) (-inf blocks) or NULL;
 * causal: query i sees keys j <= Tk - Tq + i; scale 0 means 1/sqrt(D);
 * dropout on the weights when training. weights, when not NULL, receives
 * the (B, H, Tq, Tk) weights (before dropout); otherwise memory stays
 * linear in the sequence length. */
typedef struct {
    const nn_tensor *mask;
    int causal;
    double scale, dropout;
    int training;
    nn_rng *rng;
} nn_attention_args;
nn_tensor *nn_attention(const nn_tensor *q, const nn_tensor *k, const nn_tensor *v,
                        const nn_attention_args *a, nn_tensor **weights);

/* ---- optimizer steps (in place; PyTorch 1.13's formulas) ------------------ */
typedef struct {
    double lr, momentum, dampening, weight_decay;
    int nesterov, maximize, first_step; /* first_step: buf = d */
} nn_sgd_args;
typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t step;     /* counts from 1 */
    int decoupled;    /* AdamW's weight decay */
    int maximize;
} nn_adam_args;
typedef struct {
    double lr, alpha, eps, weight_decay, momentum;
} nn_rmsprop_args;
typedef struct {
    double lr, lr_decay, weight_decay, eps;
    int64_t step;
} nn_adagrad_args;
/* buf/vmax/avg may be NULL (no momentum / no amsgrad / not centered).
 * Adam and Adagrad take g NULL for p's row-sparse gradient: only its
 * touched rows (and their state) are updated. */
int nn_sgd_step(nn_tensor *p, const nn_tensor *g, nn_tensor *buf,
                const nn_sgd_args *a);
int nn_adam_step(nn_tensor *p, const nn_tensor *g, nn_tensor *m, nn_tensor *v,
                 nn_tensor *vmax, const nn_adam_args *a);
int nn_rmsprop_step(nn_tensor *p, const nn_tensor *g, nn_tensor *sq,
                    nn_tensor *buf, nn_tensor *avg, const nn_rmsprop_args *a);
int nn_adagrad_step(nn_tensor *p, const nn_tensor *g, nn_tensor *sum,
                    const nn_adagrad_args *a);

/* ---- audio signals (stft.c, resample.c, mel.c) ------------------------------ */
/* torch.stft(onesided, return_complex=False): x (L) or (B, L) f32 ->
 * (..., n_fft/2 + 1, frames, 2), real and imaginary last. window: f32
 * (win_length <= n_fft), centred in n_fft, or NULL for ones; center pads
 * n_fft/2 each side with pad_mode; normalized scales by n_fft^-1/2.
 * Differentiable in x, twice. */
nn_tensor *nn_stft(const nn_tensor *x, int64_t n_fft, int64_t hop, const nn_tensor *window,
                   int center, nn_pad_mode pad_mode, int normalized);
/* torchaudio.functional.resample (sinc_interp_hann) along the last dim;
 * differentiable in x */
nn_tensor *nn_resample(const nn_tensor *x, int64_t orig_freq, int64_t new_freq, int lowpass_width,
                       double rolloff);
/* torchaudio.functional.melscale_fbanks: (n_freqs, n_mels); htk or Slaney
 * mels, Slaney area norm or none */
nn_tensor *nn_mel_filterbank(int64_t n_freqs, double f_min, double f_max, int64_t n_mels,
                             int64_t sample_rate, int slaney_norm, int htk);

#ifdef __cplusplus
}
#endif

#endif
