/* mel.c -- triangular mel filter banks as torchaudio.functional.
 * melscale_fbanks (and librosa) define them: n_freqs STFT bins at
 * 0..sample_rate/2 (integer half, as torchaudio), n_mels + 2 points evenly
 * spaced in mels between f_min and f_max, triangle m rising from point m
 * to m + 1 and falling to m + 2; Slaney norm divides triangle m by half its
 * width in Hz. HTK mels: 2595 log10(1 + f/700). Slaney mels: f / (200/3)
 * below 1 kHz, 15 + 27 ln(f/1000)/ln 6.4 above. */
#include "internal.h"
#include "nn_layers.h"

#include <math.h>
#include <stdlib.h>

static double hz_to_mel(double f, int htk) {
    if (htk) return 2595.0 * log10(1.0 + f / 700.0);
    double sp = 200.0 / 3, min_log_mel = 1000.0 / sp, logstep = log(6.4) / 27.0;
    return f >= 1000.0 ? min_log_mel + log(f / 1000.0) / logstep : f / sp;
}

static double mel_to_hz(double m, int htk) {
    if (htk) return 700.0 * (pow(10.0, m / 2595.0) - 1.0);
    double sp = 200.0 / 3, min_log_mel = 1000.0 / sp, logstep = log(6.4) / 27.0;
    return m >= min_log_mel ? 1000.0 * exp(logstep * (m - min_log_mel)) : sp * m;
}

nn_tensor *nn_mel_filterbank(int64_t n_freqs, double f_min, double f_max, int64_t n_mels,
                             int64_t sample_rate, int slaney_norm, int htk) {
    if (n_freqs < 2 || n_freqs > (1 << 24)) return nn_fail(1, "mel_filterbank: n_freqs %lld must be in 2..2^24", (long long)n_freqs);
    if (n_mels < 1 || n_mels > 4096) return nn_fail(4, "mel_filterbank: n_mels %lld must be in 1..4096", (long long)n_mels);
    if (sample_rate < 1) return nn_fail(5, "mel_filterbank: sample_rate %lld must be positive", (long long)sample_rate);
    if (!(f_min >= 0 && f_min < f_max && f_max <= 1e7))
        return nn_fail(2, "mel_filterbank: need 0 <= f_min < f_max, got %g and %g", f_min, f_max);
    double *pts = malloc(sizeof *pts * (size_t)(n_mels + 2));
    nn_tensor *fb = pts ? nn_empty(NN_F32, 2, (int64_t[]){n_freqs, n_mels}) : NULL;
    if (!fb) {
        free(pts);
        return pts ? NULL : nn_fail(0, "out of memory");
    }
    double m0 = hz_to_mel(f_min, htk), m1 = hz_to_mel(f_max, htk);
    for (int64_t i = 0; i < n_mels + 2; i++)
        pts[i] = mel_to_hz(m0 + (m1 - m0) * (double)i / (double)(n_mels + 1), htk);
    float *o = nn_f32(fb);
    double top = (double)(sample_rate / 2);
    for (int64_t k = 0; k < n_freqs; k++) {
        double f = top * (double)k / (double)(n_freqs - 1);
        for (int64_t m = 0; m < n_mels; m++) {
            double down = (f - pts[m]) / (pts[m + 1] - pts[m]);
            double up = (pts[m + 2] - f) / (pts[m + 2] - pts[m + 1]);
            double v = down < up ? down : up;
            if (v < 0) v = 0;
            if (slaney_norm) v *= 2.0 / (pts[m + 2] - pts[m]);
            o[k * n_mels + m] = (float)v;
        }
    }
    free(pts);
    return fb;
}
