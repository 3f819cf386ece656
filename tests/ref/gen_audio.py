#!/usr/bin/python3
"""Reference values for nnlua's audio features, from PyTorch 1.13 and
torchaudio 0.13 (Debian python3-torch, python3-torchaudio).

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_audio.py
Writes tests/ref/audio.json, read by tests/audio_spec.lua: per case the
nnlua options, the input, the output and the gradient of sum(output * proj).
"""
import json
import os

import torch
import torchaudio.functional as AF
import torchaudio.transforms as AT
from refvalues import t

torch.manual_seed(0)
stft, resample, mel, melspec, db = [], [], [], [], []


def grad_case(x, y):
    proj = torch.randn_like(y)
    (y * proj).sum().backward()
    return dict(x=t(x), output=t(y), proj=t(proj), grad=t(x.grad))


def stft_case(name, shape, n_fft, hop=None, win_length=None, window=None, center=True, pad_mode="reflect",
              normalized=False):
    x = torch.randn(*shape, requires_grad=True)
    w = {"hann": torch.hann_window, "hamming": torch.hamming_window}[window](win_length or n_fft) if window else None
    y = torch.stft(x, n_fft, hop_length=hop, win_length=win_length, window=w, center=center, pad_mode=pad_mode,
                   normalized=normalized, return_complex=False)
    opts = dict(n_fft=n_fft, center=center, pad_mode=pad_mode, normalized=normalized)
    if hop: opts["hop_length"] = hop
    if win_length: opts["win_length"] = win_length
    case = dict(name=name, options=opts, window=t(w) if w is not None else None)
    case.update(grad_case(x, y))
    stft.append(case)


stft_case("pow2_hann", (2, 160), 64, 16, window="hann")
stft_case("n400_mixed_radix", (600,), 400, 200, window="hann")
stft_case("prime_7_ones", (2, 40), 7, 2)
stft_case("n96_hamming_short_window", (1, 200), 96, 24, win_length=60, window="hamming")
stft_case("ones_short_window", (150,), 32, 8, win_length=20)
stft_case("no_center", (2, 130), 32, 10, window="hann", center=False)
stft_case("constant_pad_normalized", (1, 100), 50, 7, window="hann", pad_mode="constant", normalized=True)
stft_case("replicate_pad", (90,), 24, 5, window="hann", pad_mode="replicate")
stft_case("circular_pad", (2, 90), 24, 6, window="hann", pad_mode="circular")
stft_case("default_hop", (1, 200), 64, window="hann")


def resample_case(name, shape, orig, new, width=6, rolloff=0.99):
    x = torch.randn(*shape, requires_grad=True)
    y = AF.resample(x, orig, new, lowpass_filter_width=width, rolloff=rolloff)
    case = dict(name=name, orig=orig, new=new, options=dict(lowpass_filter_width=width, rolloff=rolloff))
    case.update(grad_case(x, y))
    resample.append(case)


resample_case("down_2x", (2, 400), 16000, 8000)
resample_case("44100_to_16000", (1, 882), 44100, 16000)
resample_case("up_8000_to_11025", (3, 160), 8000, 11025, width=4, rolloff=0.9)
resample_case("up_3x_1d", (57,), 1, 3)

for scale in ("htk", "slaney"):
    for norm in (None, "slaney"):
        fb = AF.melscale_fbanks(65, 0.0, 8000.0, 16, 16000, norm=norm, mel_scale=scale)
        mel.append(dict(name="%s_%s" % (scale, norm), args=[65, 0.0, 8000.0, 16, 16000],
                        options=dict(mel_scale=scale, norm=norm or "none"), output=t(fb)))
fb = AF.melscale_fbanks(129, 50.0, 7000.0, 24, 22050, mel_scale="slaney")
mel.append(dict(name="fmin_fmax_22050", args=[129, 50.0, 7000.0, 24, 22050], options=dict(mel_scale="slaney"),
                output=t(fb)))


def melspec_case(name, shape, **kw):
    x = torch.randn(*shape, requires_grad=True)
    m = AT.MelSpectrogram(**kw)
    y = m(x)
    case = dict(name=name, options=kw)
    case.update(grad_case(x, y))
    melspec.append(case)


melspec_case("defaults_16k", (1, 1200), sample_rate=16000, n_mels=32)
melspec_case("slaney_512", (1, 1000), sample_rate=22050, n_fft=512, hop_length=128, n_mels=40, f_min=30.0,
             f_max=9000.0, norm="slaney", mel_scale="slaney", power=1.0)

for name, shape, kw in (("power_top_db", (2, 3, 8, 9), dict(multiplier=10.0, amin=1e-10, db_multiplier=0.0,
                                                            top_db=20.0)),
                        ("amplitude_ref", (4, 6), dict(multiplier=20.0, amin=1e-5, db_multiplier=0.5, top_db=None))):
    x = (torch.rand(*shape) ** 4 * 3).requires_grad_(True)
    y = AF.amplitude_to_DB(x, **kw)
    case = dict(name=name, options=dict(multiplier=kw["multiplier"], amin=kw["amin"],
                                        ref=10 ** kw["db_multiplier"], top_db=kw["top_db"]))
    case.update(grad_case(x, y))
    db.append(case)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "audio.json")
with open(out, "w") as f:
    json.dump(dict(stft=stft, resample=resample, mel=mel, melspec=melspec, amplitude_to_db=db), f)
print("wrote", out)
