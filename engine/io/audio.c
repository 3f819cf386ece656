/* audio.c -- sound files to (C, N) f32 tensors: Ogg Vorbis through
 * libvorbisfile, WAV (PCM 8/16/24/32-bit, float 32/64, extensible) read
 * here. Samples are in [-1, 1) as torchaudio.load gives them (integer
 * PCM divided by 2^(bits-1); 8-bit is unsigned around 128).
 *
 * Strict about damage: a Vorbis stream with a hole, a bad link, or a last
 * page that is cut short or lacks the end-of-stream flag is an error, and
 * so is a WAV whose data chunk runs past the end of the file. */
#include "internal.h"
#include "nn_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vorbis/vorbisfile.h>

#define MAX_FILE ((long)1 << 31)

/* ---- Ogg Vorbis ------------------------------------------------------------- */

static const char *ov_message(long rc) {
    switch (rc) {
    case OV_EREAD: return "read error";
    case OV_ENOTVORBIS: return "not Vorbis data";
    case OV_EVERSION: return "unsupported Vorbis version";
    case OV_EBADHEADER: return "bad Vorbis header";
    case OV_HOLE: return "corrupt or missing data (a hole in the stream)";
    case OV_EBADLINK: return "corrupt link in the stream";
    default: return "corrupt Vorbis stream";
    }
}

/* The last Ogg page must end exactly at the end of the file and carry the
 * end-of-stream flag; otherwise the file was cut short (the decoder itself
 * just stops early). Pages are at most 27 + 255 + 255 * 255 bytes. */
static int ogg_complete(FILE *f) {
    enum { MAX_PAGE = 27 + 255 + 255 * 255 };
    if (fseek(f, 0, SEEK_END) != 0) return 0;
    long size = ftell(f), from = size > MAX_PAGE ? size - MAX_PAGE : 0;
    unsigned char *b = malloc(MAX_PAGE);
    if (!b || fseek(f, from, SEEK_SET) != 0) return free(b), 0;
    long n = (long)fread(b, 1, (size_t)(size - from), f);
    int ok = 0;
    for (long p = n - 27; p >= 0 && !ok; p--) {
        if (memcmp(b + p, "OggS", 4) || b[p + 4] != 0) continue;
        long segs = b[p + 26], len = 27 + segs;
        if (p + len > n) continue;
        for (long s = 0; s < segs; s++) len += b[p + 27 + s];
        if (p + len == n) ok = (b[p + 5] & 4) ? 1 : -1;
    }
    free(b);
    return ok == 1;
}

static nn_tensor *read_vorbis(const char *path, int64_t *rate) {
    OggVorbis_File vf;
    int rc = ov_fopen(path, &vf);
    if (rc < 0) return nn_fail(1, "cannot read Ogg Vorbis '%s': %s", path, ov_message(rc));
    vorbis_info *vi = ov_info(&vf, -1);
    int channels = vi ? vi->channels : 0;
    long sr = vi ? vi->rate : 0;
    float *buf = NULL;
    size_t len = 0, cap = 0;
    const char *err = channels < 1 || channels > 255 || sr < 1 ? "bad channel count or rate" : NULL;
    while (!err) {
        float **pcm;
        int link;
        long got = ov_read_float(&vf, &pcm, 4096, &link);
        if (got == 0) break;
        if (got < 0) {
            err = ov_message(got);
            break;
        }
        vorbis_info *li = ov_info(&vf, link);
        if (!li || li->channels != channels || li->rate != sr) {
            err = "chained streams with different channel counts or rates";
            break;
        }
        if (len + (size_t)got > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            while (ncap < len + (size_t)got) ncap *= 2;
            float *nb = realloc(buf, sizeof *buf * ncap * (size_t)channels);
            if (!nb) {
                err = "out of memory";
                break;
            }
            buf = nb, cap = ncap;
        }
        for (long i = 0; i < got; i++)
            for (int c = 0; c < channels; c++) buf[(len + (size_t)i) * (size_t)channels + (size_t)c] = pcm[c][i];
        len += (size_t)got;
    }
    if (!err && !ogg_complete((FILE *)vf.datasource))
        err = "the file is cut short (its last page is incomplete or is not the end of the stream)";
    ov_clear(&vf); /* closes the file */
    nn_tensor *out = NULL;
    if (!err && !(out = nn_empty(NN_F32, 2, (int64_t[]){channels, (int64_t)len}))) err = "out of memory";
    if (err) {
        free(buf);
        return nn_fail(1, "cannot read Ogg Vorbis '%s': %s", path, err);
    }
    float *o = nn_f32(out);
    for (size_t i = 0; i < len; i++)
        for (int c = 0; c < channels; c++) o[(size_t)c * len + i] = buf[i * (size_t)channels + (size_t)c];
    free(buf);
    *rate = sr;
    return out;
}

/* ---- WAV -------------------------------------------------------------------- */

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static float wav_sample(const unsigned char *s, int bits, int is_float) {
    if (is_float) {
        if (bits == 32) {
            float v;
            memcpy(&v, s, 4);
            return v;
        }
        double d;
        memcpy(&d, s, 8);
        return (float)d;
    }
    switch (bits) {
    case 8: return ((float)s[0] - 128.0f) / 128.0f;
    case 16: return (float)(int16_t)le16(s) / 32768.0f;
    case 24: return (float)((int32_t)(le32((const unsigned char[]){0, s[0], s[1], s[2]})) >> 8) / 8388608.0f;
    default: return (float)((double)(int32_t)le32(s) / 2147483648.0);
    }
}

static nn_tensor *wav_decode(const unsigned char *b, long n, int64_t *rate, const char **err) {
    int fmt_seen = 0, channels = 0, bits = 0, is_float = 0, align = 0;
    long sr = 0;
    for (long p = 12; p + 8 <= n;) {
        uint32_t size = le32(b + p + 4);
        const unsigned char *d = b + p + 8;
        long avail = n - p - 8;
        if (!memcmp(b + p, "fmt ", 4)) {
            if (size < 16 || (long)size > avail) return *err = "bad fmt chunk", NULL;
            int tag = le16(d);
            if (tag == 0xFFFE && size >= 26) tag = le16(d + 24); /* WAVE_FORMAT_EXTENSIBLE */
            channels = le16(d + 2), sr = (long)le32(d + 4), align = le16(d + 12), bits = le16(d + 14);
            if (tag != 1 && tag != 3) return *err = "only PCM and IEEE float WAV data are read", NULL;
            is_float = tag == 3;
            if (channels < 1 || sr < 1 || !(is_float ? bits == 32 || bits == 64
                                                    : bits == 8 || bits == 16 || bits == 24 || bits == 32) ||
                align != channels * bits / 8)
                return *err = "unsupported WAV format (channels, rate, bits or block size)", NULL;
            fmt_seen = 1;
        } else if (!memcmp(b + p, "data", 4)) {
            if (!fmt_seen) return *err = "data chunk before the fmt chunk", NULL;
            long bytes = size == 0xFFFFFFFFu ? avail : (long)size; /* streamed: to the end */
            if (bytes > avail) return *err = "the file is cut short (its data chunk runs past the end)", NULL;
            int64_t frames = bytes / align;
            nn_tensor *out = nn_empty(NN_F32, 2, (int64_t[]){channels, frames});
            if (!out) return *err = "out of memory", NULL;
            float *o = nn_f32(out);
            for (int64_t i = 0; i < frames; i++)
                for (int c = 0; c < channels; c++)
                    o[c * frames + i] = wav_sample(d + i * align + c * (bits / 8), bits, is_float);
            *rate = sr;
            return out;
        }
        p += 8 + (long)size + (size & 1);
    }
    return *err = fmt_seen ? "no data chunk" : "no fmt chunk", NULL;
}

static nn_tensor *read_wav(FILE *f, const char *path, int64_t *rate) {
    const char *err = NULL;
    nn_tensor *out = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    unsigned char *b = n > 0 && n < MAX_FILE ? malloc((size_t)n) : NULL;
    if (!b) err = n < 0 || n >= MAX_FILE ? "cannot size the file (or it is over 2 GiB)" : "out of memory";
    else if (fseek(f, 0, SEEK_SET) != 0 || fread(b, 1, (size_t)n, f) != (size_t)n) err = "read error";
    else out = wav_decode(b, n, rate, &err);
    free(b);
    if (!out) return nn_fail(1, "cannot read WAV '%s': %s", path, err);
    return out;
}

nn_tensor *nn_audio_read(const char *path, int64_t *rate) {
    FILE *f = fopen(path, "rb");
    if (!f) return nn_fail(1, "cannot open '%s'", path);
    unsigned char head[12];
    size_t got = fread(head, 1, sizeof head, f);
    nn_tensor *out;
    if (got >= 4 && !memcmp(head, "OggS", 4)) {
        fclose(f);
        return read_vorbis(path, rate);
    }
    if (got == 12 && !memcmp(head, "RIFF", 4) && !memcmp(head + 8, "WAVE", 4)) out = read_wav(f, path, rate);
    else out = nn_fail(1, "'%s' is neither Ogg Vorbis nor WAV (unknown header)", path);
    fclose(f);
    return out;
}
