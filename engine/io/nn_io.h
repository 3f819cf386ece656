/*
 * nn_io.h -- files and data: atomic writes, safetensors checkpoints,
 * a background batch prefetcher and the byte-level BPE tokenizer.
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
 * Saving it: nn_safetensors_save("x.safetensors", 1, (const char *[]){"x"},
 * &x, 0, NULL, NULL) writes the file atomically.
 */
#ifndef NN_IO_H
#define NN_IO_H

#include "nn_layers.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- files replaced atomically (atomic.c) ------------------------------------ */
/* Writes n bytes to path through a unique temporary file, fsynced and
 * renamed: a crash leaves the old file or the new one. */
int nn_write_file_atomic(const char *path, const void *data, size_t n);

/* ---- checkpoints (safetensors) --------------------------------------------- */
/* Writes n named tensors (F32/I64) and string metadata atomically: a
 * temporary file, flushed and fsync'ed, renamed over path. */
int nn_safetensors_save(const char *path, int n, const char *const *names,
                        nn_tensor *const *ts, int nmeta, const char *const *meta_keys,
                        const char *const *meta_values);
typedef struct {
    int n, nmeta;
    char **names;
    nn_tensor **tensors;
    char **meta_keys, **meta_values;
} nn_safetensors;
/* Reads a file, rejecting any malformed, lying or truncated header. */
nn_safetensors *nn_safetensors_load(const char *path);
void nn_safetensors_free(nn_safetensors *st);

/* ---- batches prefetched by a background thread ------------------------------ */
typedef struct nn_prefetch nn_prefetch;
typedef struct {
    int source;  /* which tensor holds the (N, C, H, W) images */
    int flip;    /* random horizontal flips */
    int shift;   /* random shifts of up to this many pixels */
} nn_prefetch_augment;
/* rows order[i] - base of every source, batch rows at a time; aug may be
 * NULL; rng (for augmentation) advances by the number of samples */
nn_prefetch *nn_prefetch_start(nn_tensor *const *src, int nsrc, const nn_tensor *order,
                               int64_t base, int64_t batch, int drop_last, int depth,
                               const nn_prefetch_augment *aug, nn_rng *rng);
/* 1: out[0..nsrc) hold the next batch (the caller owns them); 0: done */
int nn_prefetch_next(nn_prefetch *p, nn_tensor **out);
int64_t nn_prefetch_batches(const nn_prefetch *p);
void nn_prefetch_stop(nn_prefetch *p);

/* ---- byte-level BPE tokenizer ---------------------------------------------- */
/* ids 0..255 are bytes; merge r makes id 256 + r from two earlier ids */
typedef struct nn_bpe nn_bpe;
nn_bpe *nn_bpe_train(const uint8_t *text, size_t n, int vocab_size);
nn_bpe *nn_bpe_from_merges(const int32_t *pairs, int nmerges); /* 2 per merge */
const int32_t *nn_bpe_merges(const nn_bpe *b, int *nmerges);
int nn_bpe_vocab_size(const nn_bpe *b);
/* *ids (malloc'ed, the caller frees) receives *count ids */
int nn_bpe_encode(nn_bpe *b, const uint8_t *text, size_t n, int64_t **ids, size_t *count);
int nn_bpe_decode(const nn_bpe *b, const int64_t *ids, size_t n, uint8_t **text,
                  size_t *len);
void nn_bpe_free(nn_bpe *b);

/* ---- images and sound (image.c, audio.c) ------------------------------------ */
/* A PNG of any colour type and depth as (C, H, W) f32 in [0, 1]: C = 1
 * grey, 2 grey + alpha, 3 RGB, 4 RGBA (palettes expanded, tRNS as alpha);
 * *bit_depth (may be NULL) gets 8 or 16. Corrupt or cut files fail. */
nn_tensor *nn_image_read_png(const char *path, int *bit_depth);
/* The same as (3, H, W) RGB: grey is repeated, alpha composited over
 * background[3] (v a + bg (1 - a)). */
nn_tensor *nn_image_read_png_rgb(const char *path, const float background[3], int *bit_depth);
/* Writes a (C, H, W) f32 image in [0, 1] (clamped; C = 1..4 as above) as
 * an 8-bit PNG, atomically. */
int nn_image_write_png(const char *path, const nn_tensor *img);
/* Ogg Vorbis or WAV as (channels, samples) f32 in [-1, 1]; *rate in Hz */
nn_tensor *nn_audio_read(const char *path, int64_t *rate);

#ifdef __cplusplus
}
#endif

#endif
