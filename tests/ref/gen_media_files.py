#!/usr/bin/python3
"""Small image and sound files for nnlua's readers, with the values a
reader must return.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_media_files.py
Writes tests/data/media/*.png (every PNG colour type and bit depth, palettes
with transparency, colour keys, one Adam7-interlaced file; written by the
small encoder below, so the sample values are known exactly), *.wav (PCM
8/16/24/32-bit and float 32/64, by python3-soundfile) and *.ogg (Vorbis, by
python3-soundfile/libsndfile), and tests/ref/media.json: per PNG its
(C, H, W) values in [0, 1]; per sound file its rate, shape and samples as
python3-soundfile decodes them (every 7th sample of each channel for
Vorbis, all of them for WAV).
"""
import json
import os
import random
import struct
import zlib

import numpy as np
import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "media")
os.makedirs(OUT, exist_ok=True)
rng = random.Random(7)
images, sounds = [], []


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", v) for v in samples)
    if depth == 8:
        return bytes(samples)
    bits, out = "".join(format(v, "0%db" % depth) for v in samples), bytearray()
    bits += "0" * (-len(bits) % 8)
    for i in range(0, len(bits), 8):
        out.append(int(bits[i:i + 8], 2))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(name, w, h, color, depth, pixels, plte=None, trns=None, interlace=False):
    """pixels[y][x] = tuple of samples (palette index for colour type 3)"""
    def scan(xs, ys):
        raw = b""
        for y in ys:
            samples = [s for x in xs for s in pixels[y][x]]
            raw += b"\x00" + pack_row(samples, depth)
        return raw
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            xs, ys = list(range(x0, w, dx)), list(range(y0, h, dy))
            if xs and ys:
                raw += scan(xs, ys)
    else:
        raw = scan(range(w), range(h))
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, int(interlace)))
    if plte:
        data += chunk(b"PLTE", bytes(v for rgb in plte for v in rgb))
    if trns is not None:
        data += chunk(b"tRNS", trns)
    data += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(os.path.join(OUT, name + ".png"), "wb") as f:
        f.write(data)


def image(name, color, depth, w=5, h=3, trns_key=None, palette_size=None, interlace=False):
    top = (1 << depth) - 1
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    if color == 3:
        plte = [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(palette_size)]
        alphas = [rng.randrange(256) for _ in range(palette_size - 1)]  # the last entry opaque
        pixels = [[(rng.randrange(palette_size),) for _ in range(w)] for _ in range(h)]
        write_png(name, w, h, color, depth, pixels, plte=plte, trns=bytes(alphas))
        alpha = alphas + [255]
        planes = [[[plte[p[0]][c] / 255 for p in row] for row in pixels] for c in range(3)]
        planes.append([[alpha[p[0]] / 255 for p in row] for row in pixels])
    else:
        pixels = [[tuple(rng.randrange(top + 1) for _ in range(channels)) for _ in range(w)] for _ in range(h)]
        trns = None
        if trns_key is not None:
            pixels[0][0] = trns_key  # at least one keyed pixel
            trns = b"".join(struct.pack(">H", v) for v in trns_key)
        write_png(name, w, h, color, depth, pixels, trns=trns, interlace=interlace)
        planes = [[[p[c] / top for p in row] for row in pixels] for c in range(channels)]
        if trns_key is not None:
            planes.append([[0.0 if p == trns_key else 1.0 for p in row] for row in pixels])
    images.append(dict(file=name + ".png", depth=16 if depth == 16 else 8, values=planes))


for d in (1, 2, 4, 8, 16):
    image("grey%d" % d, 0, d)
image("grey8_key", 0, 8, trns_key=(7,))
image("grey16_key", 0, 16, trns_key=(1234,))
image("grey_alpha8", 4, 8)
image("grey_alpha16", 4, 16)
image("rgb8", 2, 8)
image("rgb16", 2, 16)
image("rgb8_key", 2, 8, trns_key=(10, 20, 30))
image("rgba8", 6, 8)
image("rgba16", 6, 16)
image("palette1", 3, 1, palette_size=2)
image("palette2", 3, 2, palette_size=4)
image("palette4", 3, 4, palette_size=11)
image("palette8", 3, 8, palette_size=40)
image("rgb8_interlaced", 2, 8, w=11, h=9, interlace=True)

t = np.arange(0, 0.25, 1 / 22050)
stereo = np.stack([0.5 * np.sin(2 * np.pi * (300 + 2000 * t) * t), 0.3 * np.sin(2 * np.pi * 440 * t)], 1)
for subtype, name in (("PCM_U8", "u8"), ("PCM_16", "s16"), ("PCM_24", "s24"), ("PCM_32", "s32"),
                      ("FLOAT", "f32"), ("DOUBLE", "f64")):
    path = os.path.join(OUT, "stereo_%s.wav" % name)
    sf.write(path, stereo[:60], 8000, subtype=subtype)
    got, rate = sf.read(path, dtype="float64", always_2d=True)
    sounds.append(dict(file="stereo_%s.wav" % name, rate=rate, shape=list(got.T.shape), every=1,
                       values=got.T.tolist()))
for name, sig, rate in (("chirp_stereo", stereo, 22050), ("tone_mono", stereo[:, 1:], 16000)):
    path = os.path.join(OUT, name + ".ogg")
    sf.write(path, sig, rate, format="OGG", subtype="VORBIS")
    got, rate = sf.read(path, dtype="float32", always_2d=True)
    sounds.append(dict(file=name + ".ogg", rate=rate, shape=list(got.T.shape), every=7,
                       values=[[float("%.7g" % v) for v in ch[::7]] for ch in got.T]))

with open(os.path.join(HERE, "media.json"), "w") as f:
    json.dump(dict(images=images, sounds=sounds), f)
print("wrote", len(images), "images and", len(sounds), "sounds")
