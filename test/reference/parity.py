#!/usr/bin/env python3
"""Compare an exported TorchScript model with the eager reference, and/or dump reference outputs.

  # parity: one JSON line per n_q on stdout
  /usr/bin/python3 test/reference/parity.py --checkpoint ck.th --model model.pt --audio speech.npy --n-q 2,8,32

  # oracle dumps for the Node tests (numpy .npy files; no --model needed)
  /usr/bin/python3 test/reference/parity.py --checkpoint ck.th --audio speech.npy --n-q 8 \
      --dump-codes codes.npy --dump-audio decoded.npy [--dump-latent z.npy] [--dump-embeddings q.npy]

Audio: .npy (float, shape [T], [B,T] or [B,1,T]), .wav (PCM16/PCM32/float32, mono; must be 24 kHz) or
raw little-endian float32 (.f32/.raw). Dumps: codes int64 [B,n_q,F]; audio float32 [B,1,F*320];
latent/embeddings float32 [B,128,F]. The decoded audio is the reference decode of the reference codes.

JSON fields: n_q, batch, samples, frames, codes_shape_equal, codes_equal_fraction (exported vs reference,
whole-file encode), decode_snr_db (both decoders fed the SAME reference codes; capped at 999 when
bit-identical), decode_max_abs_diff, latent_snr_db, dequantize_max_abs_diff, decode_shape_equal,
ref_decoded_rms, distinct_codes_min/median/max (over the n_q codebooks, reference codes), ok.
Exit code 1 when any ok is false (thresholds: codes >= 0.999, decode SNR >= 60 dB).
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import encodec_reference as ref  # noqa: E402

SNR_CAP = 999.0


def read_audio(path: str) -> torch.Tensor:
    """-> float32 [B, 1, T]."""
    if path.endswith(".npy"):
        a = np.load(path)
    elif path.endswith(".wav"):
        a = read_wav(path)
    else:
        a = np.fromfile(path, dtype="<f4")
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        a = a[None, None, :]
    elif a.ndim == 2:
        a = a[:, None, :]
    elif a.ndim != 3 or a.shape[1] != 1:
        raise SystemExit("parity.py: audio must be [T], [B,T] or [B,1,T], got %r" % (a.shape,))
    return torch.from_numpy(np.ascontiguousarray(a))


def read_wav(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SystemExit("parity.py: %s is not a RIFF/WAVE file" % path)
    pos, fmt, samples = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            samples = body
        pos += 8 + size + (size & 1)
    if fmt is None or samples is None:
        raise SystemExit("parity.py: %s: missing fmt or data chunk" % path)
    tag, ch, sr, _, _, bits = fmt
    if sr != 24000:
        raise SystemExit("parity.py: %s is %d Hz; resample to 24000 Hz first" % (path, sr))
    if tag == 3 and bits == 32:
        a = np.frombuffer(samples, "<f4")
    elif bits == 16:
        a = np.frombuffer(samples, "<i2") / 32768.0
    elif bits == 32:
        a = np.frombuffer(samples, "<i4") / 2147483648.0
    else:
        raise SystemExit("parity.py: %s: unsupported WAV format (tag %d, %d bits)" % (path, tag, bits))
    return a.reshape(-1, ch).mean(axis=1)


def snr_db(reference: torch.Tensor, other: torch.Tensor) -> float:
    ref64, oth64 = reference.double(), other.double()
    err = float((ref64 - oth64).pow(2).sum())
    sig = float(ref64.pow(2).sum())
    if err == 0.0:
        return SNR_CAP
    if sig == 0.0:
        return -SNR_CAP
    return min(SNR_CAP, 10 * math.log10(sig / err))


def distinct_stats(codes: torch.Tensor):
    counts = sorted(len(torch.unique(codes[:, q])) for q in range(codes.shape[1]))
    return counts[0], counts[len(counts) // 2], counts[-1]


@torch.no_grad()
def compare(reference, scripted, wav: torch.Tensor, n_q: int) -> dict:
    codes_ref = reference.encode(wav, n_q)
    audio_ref = reference.decode(codes_ref)
    B, _, T = wav.shape
    res = {"n_q": n_q, "batch": B, "samples": T, "frames": int(codes_ref.shape[-1])}
    dmin, dmed, dmax = distinct_stats(codes_ref)
    res.update(distinct_codes_min=dmin, distinct_codes_median=dmed, distinct_codes_max=dmax,
               ref_decoded_rms=float(audio_ref.double().pow(2).mean().sqrt()))
    if scripted is None:
        return res
    codes_ts = scripted.encode(wav, n_q)
    res["codes_dtype"] = str(codes_ts.dtype).replace("torch.", "")
    res["codes_shape_equal"] = tuple(codes_ts.shape) == tuple(codes_ref.shape)
    res["codes_equal_fraction"] = (float((codes_ts == codes_ref).double().mean())
                                   if res["codes_shape_equal"] else 0.0)
    audio_ts = scripted.decode(codes_ref)
    res["decode_shape_equal"] = tuple(audio_ts.shape) == tuple(audio_ref.shape)
    if res["decode_shape_equal"]:
        res["decode_snr_db"] = snr_db(audio_ref, audio_ts)
        res["decode_max_abs_diff"] = float((audio_ref - audio_ts).abs().max())
    else:
        res["decode_snr_db"] = -SNR_CAP
    z_ref = reference.encode_latent(wav)
    z_ts = scripted.encode_latent(wav)
    res["latent_snr_db"] = snr_db(z_ref, z_ts) if z_ref.shape == z_ts.shape else -SNR_CAP
    q_ref = reference.dequantize(codes_ref)
    q_ts = scripted.dequantize(codes_ref)
    res["dequantize_max_abs_diff"] = float((q_ref - q_ts).abs().max()) if q_ref.shape == q_ts.shape else None
    res["ok"] = bool(res["codes_shape_equal"] and res["decode_shape_equal"]
                     and res["codes_equal_fraction"] >= 0.999 and res["decode_snr_db"] >= 60.0)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="EnCodec exported-model parity / reference dumps")
    ap.add_argument("--checkpoint", required=True, help="checkpoint for the reference (official or HF layout)")
    ap.add_argument("--model", help="exported TorchScript MODEL.pt to compare (optional)")
    ap.add_argument("--audio", required=True, help=".npy / .wav (24 kHz) / raw float32")
    ap.add_argument("--n-q", default="32", help="comma-separated codebook counts (default 32)")
    ap.add_argument("--dump-codes", metavar="FILE.npy")
    ap.add_argument("--dump-audio", metavar="FILE.npy")
    ap.add_argument("--dump-latent", metavar="FILE.npy")
    ap.add_argument("--dump-embeddings", metavar="FILE.npy")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = default)")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        n_qs = [int(s) for s in args.n_q.split(",") if s.strip()]
    except ValueError:
        ap.error("--n-q must be comma-separated integers")
    if not n_qs or any(n < 1 or n > 32 for n in n_qs):
        ap.error("--n-q values must be in 1..32")
    dumping = args.dump_codes or args.dump_audio or args.dump_embeddings
    if dumping and len(n_qs) != 1:
        ap.error("--dump-codes/--dump-audio/--dump-embeddings need exactly one --n-q value")

    wav = read_audio(args.audio)
    reference = ref.load_reference(args.checkpoint)
    scripted = torch.jit.load(args.model, map_location="cpu").eval() if args.model else None

    with torch.no_grad():
        if args.dump_latent:
            np.save(args.dump_latent, reference.encode_latent(wav).numpy().astype(np.float32))
        if dumping:
            codes = reference.encode(wav, n_qs[0])
            if args.dump_codes:
                np.save(args.dump_codes, codes.numpy().astype(np.int64))
            if args.dump_audio:
                np.save(args.dump_audio, reference.decode(codes).numpy().astype(np.float32))
            if args.dump_embeddings:
                np.save(args.dump_embeddings, reference.dequantize(codes).numpy().astype(np.float32))

    all_ok = True
    for n_q in n_qs:
        res = compare(reference, scripted, wav, n_q)
        all_ok = all_ok and res.get("ok", True)
        print(json.dumps(res), flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
