/* image.c -- PNG files to (C, H, W) f32 tensors through libpng.
 *
 * Every PNG colour type and depth is read: palettes become RGB (RGBA when
 * the file has a tRNS chunk), 1/2/4-bit grey becomes 8-bit, a tRNS colour
 * key becomes an alpha channel, and samples are divided by 255 or 65535
 * (raw values: no gamma correction). C is 1 (grey), 2 (grey, alpha), 3
 * (RGB) or 4 (RGBA); or, from nn_image_read_png_rgb, always RGB with the
 * alpha composited over a background while the rows are converted: done
 * with tensor ops on the 4-channel floats, one 10562x16000 RGBA picture
 * made the caption set's build peak at 15 GB (8.9 GB now). The Lua side
 * converts the other channel choices.
 *
 * libpng reports errors by longjmp: the error callback records libpng's
 * message, and everything the jump could leak lives in a struct that is
 * freed after it. */
#include "internal.h"
#include "nn_io.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SIDE 16384

typedef struct {
    FILE *f;
    png_structp png;
    png_infop info;
    png_bytep data;
    png_bytepp rows;
    nn_tensor *out;
    const float *background; /* RGB to composite alpha over, or NULL: the file's channels */
    char message[200];
} reader;

static void on_error(png_structp png, png_const_charp msg) {
    reader *r = png_get_error_ptr(png);
    snprintf(r->message, sizeof r->message, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* warnings (an unknown chunk, an sRGB profile) are not errors */
}

static void reader_free(reader *r) {
    if (r->png) png_destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL);
    if (r->f) fclose(r->f);
    free(r->rows);
    free(r->data);
}

static float sample(const png_byte *s, int bytes) {
    return bytes == 1 ? (float)s[0] * (1.0f / 255.0f) : (float)((s[0] << 8) | s[1]) * (1.0f / 65535.0f);
}

/* v over the background: v a + bg (1 - a), rounded after each operation
 * as the tensor ops of nn.image.read's other paths round (volatile: no
 * fused multiply-add), so both give the same bits */
static float over(float v, float a, float bg) {
    volatile float front = v * a, back = bg * (1.0f - a);
    return front + back;
}

/* The part that may jump: fills r->out or leaves a message. */
static int decode(reader *r, int *bit_depth) {
    if (setjmp(png_jmpbuf(r->png))) return -1;
    png_set_user_limits(r->png, MAX_SIDE, MAX_SIDE);
    png_init_io(r->png, r->f);
    png_set_sig_bytes(r->png, 8);
    png_read_info(r->png, r->info);
    int color = png_get_color_type(r->png, r->info), depth = png_get_bit_depth(r->png, r->info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(r->png);
    if (png_get_valid(r->png, r->info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(r->png);
    png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);
    png_uint_32 w = png_get_image_width(r->png, r->info), h = png_get_image_height(r->png, r->info);
    int c = png_get_channels(r->png, r->info);
    *bit_depth = png_get_bit_depth(r->png, r->info);
    size_t rowbytes = png_get_rowbytes(r->png, r->info);
    if (c < 1 || c > 4 || (*bit_depth != 8 && *bit_depth != 16) ||
        rowbytes != (size_t)w * (size_t)c * (size_t)(*bit_depth / 8)) {
        snprintf(r->message, sizeof r->message, "unsupported PNG layout (%d channels of %d bits)", c,
                 *bit_depth);
        return -1;
    }
    r->data = malloc(rowbytes * h);
    r->rows = malloc(sizeof *r->rows * h);
    int out_c = r->background ? 3 : c;
    r->out = r->data && r->rows ? nn_empty(NN_F32, 3, (int64_t[]){out_c, h, w}) : NULL;
    if (!r->out) {
        snprintf(r->message, sizeof r->message, "out of memory (%ux%u image)", (unsigned)w, (unsigned)h);
        return -1;
    }
    for (png_uint_32 y = 0; y < h; y++) r->rows[y] = r->data + y * rowbytes;
    png_read_image(r->png, r->rows);
    png_read_end(r->png, NULL);
    float *o = nn_f32(r->out);
    size_t plane = (size_t)w * h;
    int bytes = *bit_depth / 8;
    for (size_t i = 0; i < plane; i++) {
        const png_byte *px = r->data + i * (size_t)c * (size_t)bytes;
        if (!r->background) {
            for (int k = 0; k < c; k++) o[(size_t)k * plane + i] = sample(px + k * bytes, bytes);
            continue;
        }
        int colours = c <= 2 ? 1 : 3, has_alpha = c == 2 || c == 4;
        float a = has_alpha ? sample(px + colours * bytes, bytes) : 1.0f;
        for (int k = 0; k < 3; k++) {
            float v = sample(px + (colours == 1 ? 0 : k) * bytes, bytes);
            o[(size_t)k * plane + i] = has_alpha ? over(v, a, r->background[k]) : v;
        }
    }
    return 0;
}

static nn_tensor *read_png(const char *path, const float *background, int *bit_depth) {
    reader r;
    memset(&r, 0, sizeof r);
    r.background = background;
    int depth = 0;
    unsigned char sig[8];
    r.f = fopen(path, "rb");
    if (!r.f) return nn_fail(1, "cannot open '%s'", path);
    if (fread(sig, 1, 8, r.f) != 8 || png_sig_cmp(sig, 0, 8)) {
        reader_free(&r);
        return nn_fail(1, "'%s' is not a PNG file (bad signature)", path);
    }
    r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, on_error, on_warning);
    r.info = r.png ? png_create_info_struct(r.png) : NULL;
    if (!r.info) {
        reader_free(&r);
        return nn_fail(0, "out of memory (libpng)");
    }
    if (decode(&r, &depth) < 0) {
        nn_release(r.out);
        reader_free(&r);
        return nn_fail(1, "cannot read PNG '%s': %s", path, r.message);
    }
    reader_free(&r);
    if (bit_depth) *bit_depth = depth;
    return r.out;
}

nn_tensor *nn_image_read_png(const char *path, int *bit_depth) { return read_png(path, NULL, bit_depth); }

nn_tensor *nn_image_read_png_rgb(const char *path, const float background[3], int *bit_depth) {
    if (!background) return nn_fail(2, "a background colour is required");
    return read_png(path, background, bit_depth);
}

/* ---- writing ----------------------------------------------------------------- */

typedef struct {
    unsigned char *data;
    size_t len, cap;
    int oom;
    char message[200];
} sink;

static void sink_write(png_structp png, png_bytep data, png_size_t n) {
    sink *s = png_get_io_ptr(png);
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 65536;
        while (cap < s->len + n) cap *= 2;
        unsigned char *d = realloc(s->data, cap);
        if (!d) {
            s->oom = 1;
            png_error(png, "out of memory");
        }
        s->data = d, s->cap = cap;
    }
    memcpy(s->data + s->len, data, n);
    s->len += n;
}

static void sink_flush(png_structp png) { (void)png; }

static void on_write_error(png_structp png, png_const_charp msg) {
    sink *s = png_get_error_ptr(png);
    snprintf(s->message, sizeof s->message, "%s", msg);
    png_longjmp(png, 1);
}

/* rows of 8-bit samples from the (C, H, W) image in [0, 1] (clamped) */
static int encode(png_structp png, png_infop info, sink *s, const float *v, int c, png_uint_32 h,
                  png_uint_32 w, png_bytep row) {
    static const int types[] = {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                PNG_COLOR_TYPE_RGB_ALPHA};
    if (setjmp(png_jmpbuf(png))) return -1;
    png_set_write_fn(png, s, sink_write, sink_flush);
    png_set_IHDR(png, info, w, h, 8, types[c - 1], PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t plane = (size_t)w * h;
    for (png_uint_32 y = 0; y < h; y++) {
        for (png_uint_32 x = 0; x < w; x++)
            for (int k = 0; k < c; k++) {
                float f = v[(size_t)k * plane + (size_t)y * w + x] * 255.0f + 0.5f;
                row[((size_t)x * (size_t)c) + (size_t)k] = (png_byte)(f < 0 ? 0 : f > 255 ? 255 : f);
            }
        png_write_row(png, row);
    }
    png_write_end(png, info);
    return 0;
}

int nn_image_write_png(const char *path, const nn_tensor *img) {
    char s1[96];
    if (img->dtype != NN_F32 || img->ndim != 3 || img->shape[0] < 1 || img->shape[0] > 4 ||
        img->shape[1] < 1 || img->shape[2] < 1 || img->shape[1] > MAX_SIDE || img->shape[2] > MAX_SIDE)
        return nn_failed(2, "write_png expects an f32 (C, H, W) image with C in 1..4 and sides in 1..%d, got %s",
                         MAX_SIDE, nn_shape_str(img, s1, sizeof s1));
    nn_tensor *x = nn_contiguous((nn_tensor *)img);
    if (!x) return -1;
    int c = (int)img->shape[0];
    png_uint_32 h = (png_uint_32)img->shape[1], w = (png_uint_32)img->shape[2];
    sink s;
    memset(&s, 0, sizeof s);
    png_bytep row = malloc((size_t)w * (size_t)c);
    png_structp png = row ? png_create_write_struct(PNG_LIBPNG_VER_STRING, &s, on_write_error, on_warning) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = info ? encode(png, info, &s, nn_f32(x), c, h, w, row) : -1;
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    free(row);
    nn_release(x);
    if (rc < 0) {
        free(s.data);
        return nn_failed(0, "write_png '%s': %s", path, s.message[0] ? s.message : "out of memory");
    }
    rc = nn_write_file_atomic(path, s.data, s.len);
    free(s.data);
    return rc;
}
