#!/usr/bin/env python3
"""EnCodec 48 kHz: reference outputs of the eager implementation (test/reference/encodec48_reference.py), and
optionally their comparison with an exported TorchScript model.

  # reference dumps for the Node tests, one set per bandwidth (kbps), JSON summary lines on stdout
  /usr/bin/python3 test/reference/parity48.py --checkpoint random48.th --audio stereo48k.wav \
      --bandwidths 3,6,12,24 --dump-dir DIR
  # Python-side parity of an exported model (one JSON line per bandwidth; exit 1 when one is not ok)
  /usr/bin/python3 test/reference/parity48.py --checkpoint random48.th --model random48.pt --audio a.wav

Audio: a 48 kHz stereo WAV (PCM16/PCM24/PCM32/float32) or .npy float [2, T].
Dumps, per bandwidth BW (e.g. 3, 6, 12, 24): `codes_bw<BW>.npy` int64 [n_q, sum of the segments' frames] (Meta's
list of per-segment codes joined along time), `scales_bw<BW>.npy` float32 [segments], `audio_bw<BW>.npy`
float32 [2, T] (the reference decode of the reference codes, trimmed to T, planar).
The codes for n_q codebooks are the first n_q of a 16-codebook encoding (the residual quantizer is sequential:
Meta's encode with n_q layers stops there), so the encoder runs once.
With --model: codes_equal_fraction (the model's encode_segments on the same segments), scales_equal,
decode_snr_db (the model's decode_segments of the reference codes, joined by the reference's overlap-add).
"""

import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import encodec48_reference as ref  # noqa: E402

SNR_CAP = 999.0


def read_wav_stereo(path: str) -> np.ndarray:
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SystemExit("parity48.py: %s is not a RIFF/WAVE file" % path)
    pos, fmt, samples = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
            if fmt[0] == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's tag
                fmt = (struct.unpack("<H", body[24:26])[0],) + fmt[1:]
        elif cid == b"data":
            samples = body
        pos += 8 + size + (size & 1)
    if fmt is None or samples is None:
        raise SystemExit("parity48.py: %s: missing fmt or data chunk" % path)
    tag, ch, sr, _, _, bits = fmt
    if sr != 48000 or ch != 2:
        raise SystemExit("parity48.py: %s is %d Hz with %d channel(s); need 48000 Hz stereo" % (path, sr, ch))
    if tag == 3 and bits == 32:
        a = np.frombuffer(samples, "<f4").astype(np.float32)
    elif bits == 16:
        a = np.frombuffer(samples, "<i2") / 32768.0
    elif bits == 24:
        b = np.frombuffer(samples, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        a = np.where(v >= 1 << 23, v - (1 << 24), v) / 8388608.0
    elif bits == 32:
        a = np.frombuffer(samples, "<i4") / 2147483648.0
    else:
        raise SystemExit("parity48.py: %s: unsupported WAV encoding (tag %d, %d bits)" % (path, tag, bits))
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32).reshape(-1, 2).T)


def read_audio(path: str) -> torch.Tensor:
    """-> float32 [1, 2, T]."""
    a = np.load(path).astype(np.float32) if path.endswith(".npy") else read_wav_stereo(path)
    if a.ndim != 2 or a.shape[0] != 2:
        raise SystemExit("parity48.py: audio must be [2, T], got %r" % (a.shape,))
    return torch.from_numpy(np.ascontiguousarray(a))[None]


def snr_db(ref_sig: torch.Tensor, test: torch.Tensor) -> float:
    err = float((ref_sig.double() - test.double()).pow(2).sum())
    sig = float(ref_sig.double().pow(2).sum())
    if err == 0:
        return SNR_CAP
    return min(SNR_CAP, 10 * math.log10(max(sig, 1e-30) / err))


def bw_key(bw: float) -> str:
    return "%g" % bw


@torch.no_grad()
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--audio", required=True)
    ap.add_argument("--model", help="exported TorchScript model to compare")
    ap.add_argument("--bandwidths", default="3,6,12,24")
    ap.add_argument("--dump-dir", help="write the reference codes/scales/audio here")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--no-decode", action="store_true",
                    help="codes and scales only: no decoding (no audio dump, ref_decode_s and ref_rms null)")
    args = ap.parse_args(argv)
    if args.no_decode and args.model:
        ap.error("--model compares decoded audio: drop --no-decode")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = ref.load_reference(args.checkpoint)
    wav = read_audio(args.audio)
    length = wav.shape[-1]
    bandwidths = [float(b) for b in args.bandwidths.split(",")]
    t0 = time.time()
    full = model.encode(wav, 16)  # [(codes [1, 16, F], scale [1, 1]), ...]
    encode_s = time.time() - t0
    scripted = torch.jit.load(args.model, map_location="cpu") if args.model else None
    if args.dump_dir:
        os.makedirs(args.dump_dir, exist_ok=True)
    all_ok = True
    for bw in bandwidths:
        n_q = model.n_q_for_bandwidth(bw)
        frames = [(c[:, :n_q], s) for c, s in full]
        audio = decode_s = None
        if not args.no_decode:
            t0 = time.time()
            audio = model.decode(frames)[:, :, :length]
            decode_s = time.time() - t0
        codes = torch.cat([c[0] for c, _ in frames], dim=1)  # [n_q, total frames]
        scales = torch.cat([s.view(-1) for _, s in frames])
        line = {"bandwidth": bw, "n_q": n_q, "samples": length, "segments": len(frames),
                "segment_frames": [int(c.shape[-1]) for c, _ in frames], "frames": int(codes.shape[1]),
                "ref_encode_s": round(encode_s, 3),
                "ref_decode_s": None if audio is None else round(decode_s, 3),
                "ref_rms": None if audio is None else float(audio.pow(2).mean().sqrt())}
        if args.dump_dir:
            np.save(os.path.join(args.dump_dir, "codes_bw%s.npy" % bw_key(bw)), codes.numpy().astype(np.int64))
            np.save(os.path.join(args.dump_dir, "scales_bw%s.npy" % bw_key(bw)), scales.numpy().astype(np.float32))
            if audio is not None:
                np.save(os.path.join(args.dump_dir, "audio_bw%s.npy" % bw_key(bw)),
                        np.ascontiguousarray(audio[0].numpy().astype(np.float32)))
        if scripted is not None:
            stride = model.segment_stride
            same = total = 0
            scales_equal = True
            outs = []
            for k, (c, s) in enumerate(frames):
                seg = wav[:, :, k * stride:k * stride + model.segment_length]
                c2, s2 = scripted.encode_segments(seg, n_q)
                same += int((c2 == c).sum())
                total += c.numel()
                scales_equal &= bool(torch.equal(s2, s.view(-1)))
                outs.append(scripted.decode_segments(c.to(torch.int16), s.view(-1)))
            got = ref._linear_overlap_add(outs, stride)[:, :, :length]
            line.update({"codes_equal_fraction": same / total, "scales_equal": scales_equal,
                         "decode_snr_db": snr_db(audio, got)})
            line["ok"] = line["codes_equal_fraction"] >= 0.999 and line["decode_snr_db"] >= 60
            all_ok &= line["ok"]
        print(json.dumps(line), flush=True)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
