#!/usr/bin/env python3
"""Make deterministic 24 kHz float32 test audio (.npy, shape [T]).

  /usr/bin/python3 test/reference/make_test_audio.py --out audio.npy [--seconds 10] [--seed 0]
      [--kind mix|speech|synthetic] [--wav audio.wav]

mix (default): espeak-ng speech (if espeak-ng is installed; 22050 Hz resampled to 24 kHz) followed by
synthetic tones / chirp / noise / silence. Without espeak-ng it falls back to synthetic only and says so
on stderr. Prints a JSON line {"out", "samples", "seconds", "speech": bool} on stdout.
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

SR = 24000
TEXT = ("The quick brown fox jumps over the lazy dog. Neural audio codecs compress speech and music "
        "at very low bit rates. Is it three hundred and forty two, or seven? Yes, indeed!")


def _read_wav16(path):
    with open(path, "rb") as f:
        data = f.read()
    pos, sr, ch, samples = 12, None, 1, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            _, ch, sr, _, _, _ = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            samples = body
        pos += 8 + size + (size & 1)
    a = np.frombuffer(samples, "<i2").astype(np.float64) / 32768.0
    return a.reshape(-1, ch).mean(axis=1), sr


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited FFT resampling (whole signal)."""
    if sr_in == sr_out:
        return x
    n_out = int(round(len(x) * sr_out / sr_in))
    spec = np.fft.rfft(x)
    n_bins = n_out // 2 + 1
    out_spec = np.zeros(n_bins, dtype=complex)
    m = min(n_bins, len(spec))
    out_spec[:m] = spec[:m]
    return np.fft.irfft(out_spec, n_out) * (n_out / len(x))


def speech(seconds_hint: float):
    exe = shutil.which("espeak-ng")
    if not exe:
        return None
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "s.wav")
        try:
            subprocess.run([exe, "-w", p, TEXT], check=True, capture_output=True, timeout=60)
        except (subprocess.SubprocessError, OSError):
            return None
        x, sr = _read_wav16(p)
    return resample(x, sr, SR)


def synthetic(rng, n: int) -> np.ndarray:
    t = np.arange(n) / SR
    seg = n // 5
    parts = []
    f0 = rng.uniform(150, 900)
    parts.append(0.3 * np.sin(2 * np.pi * f0 * t[:seg]))
    f1 = rng.uniform(4000, 10000)
    tt = t[:seg]
    parts.append(0.2 * np.sin(2 * np.pi * (60 * tt + (f1 - 60) / (2 * tt[-1]) * tt ** 2)))
    parts.append(0.1 * rng.standard_normal(seg))
    harm = sum(np.sin(2 * np.pi * h * 120 * tt) / h for h in range(1, 25))
    parts.append(0.15 * harm * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * tt)))
    parts.append(1e-3 * rng.standard_normal(n - 4 * seg))
    return np.concatenate(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kind", choices=["mix", "speech", "synthetic"], default="mix")
    ap.add_argument("--wav", help="also write a 24 kHz PCM16 WAV copy")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    n = int(round(args.seconds * SR))
    x = None
    have_speech = False
    if args.kind in ("mix", "speech"):
        sp = speech(args.seconds)
        if sp is None:
            print("make_test_audio.py: espeak-ng not available, using synthetic audio", file=sys.stderr)
        else:
            have_speech = True
            sp = 0.5 * sp / (np.abs(sp).max() + 1e-9)
            if args.kind == "speech":
                reps = int(np.ceil(n / len(sp)))
                x = np.tile(sp, reps)[:n]
            else:
                sp = sp[: int(n * 0.6)]
                x = np.concatenate([sp, synthetic(rng, n - len(sp))])
    if x is None:
        x = synthetic(rng, n)
    x = np.clip(x, -1, 1).astype(np.float32)
    np.save(args.out, x)
    if args.wav:
        pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
        hdr = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " + struct.pack(
            "<IHHIIHH", 16, 1, 1, SR, SR * 2, 2, 16) + b"data" + struct.pack("<I", len(pcm))
        with open(args.wav, "wb") as f:
            f.write(hdr + pcm)
    print(json.dumps({"out": args.out, "samples": int(len(x)), "seconds": len(x) / SR, "speech": have_speech}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
