#!/usr/bin/env python3
"""Seeded random-weight EnCodec 24 kHz checkpoint (same names/shapes as the real one).

    /usr/bin/python3 exporter/random_checkpoint.py --seed 0 --layout official --out random0.th
    /usr/bin/python3 exporter/random_checkpoint.py --seed 0 --layout huggingface --out random0.safetensors

How the weights are made (deterministic for a given seed on a given machine):
  1. PyTorch default init (conv: U(+-1/sqrt(fan_in)) for v and bias; LSTM: U(+-1/sqrt(512))),
     then weight_norm so weight_g = ||weight_v|| (norm over all dims but 0), like the real file.
  2. Data-dependent init (Salimans & Kingma, single pass): on seeded synthetic audio each conv's
     g and bias are adjusted so every output channel is centred with std 1 (decoder output: std 0.1),
     keeping every activation in a sane range and the decoded level around -20 dBFS.
  3. Data-driven residual codebooks: the random encoder is run on varied synthetic audio (noise
     colours, tones, chirps, harmonic "voices", clicks, bursts, silence, at many levels); layer q's
     1024 entries are (shrunk) samples of the actual residual latents left by layers 0..q-1,
     with leave-one-out residuals so deep layers stay meaningful (see build_codebooks). inited = 1, cluster_size = number of
     calibration frames assigned (min 1), embed_avg = embed * cluster_size.
"""

import argparse
import math
import os
import sys
from collections import OrderedDict
from typing import Dict, List

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint as ckpt  # noqa: E402
import encodec_ts as ets  # noqa: E402
import export_common as common  # noqa: E402

SR = ets.SAMPLE_RATE


# --------------------------------------------------------------------------------------------
# Synthetic audio
# --------------------------------------------------------------------------------------------

def _colored_noise(rng, n, exponent):
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / SR)
    f[0] = f[1]
    spec = spec / (f ** (exponent / 2.0))
    x = np.fft.irfft(spec, n)
    return x / (np.std(x) + 1e-12)


def synth_clip(rng, n: int, kind: str) -> np.ndarray:
    t = np.arange(n) / SR
    if kind == "white":
        x = rng.standard_normal(n)
    elif kind == "pink":
        x = _colored_noise(rng, n, 1.0)
    elif kind == "brown":
        x = _colored_noise(rng, n, 2.0)
    elif kind == "tone":
        f = math.exp(rng.uniform(math.log(40), math.log(8000)))
        x = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    elif kind == "chirp":
        f0, f1 = math.exp(rng.uniform(math.log(30), math.log(500))), math.exp(rng.uniform(math.log(1000), math.log(11000)))
        if rng.uniform() < 0.5:
            f0, f1 = f1, f0
        k = (f1 / f0) ** (1.0 / t[-1])
        x = np.sin(2 * np.pi * f0 * (k ** t - 1) / math.log(k))
    elif kind == "voice":  # harmonic complex, vibrato, formant-ish spectral tilt, syllabic AM
        f0 = rng.uniform(80, 300) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(3, 7) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SR
        formants = rng.uniform(300, 3500, size=3)
        x = np.zeros(n)
        for h in range(1, 40):
            fh = h * f0.mean()
            if fh > SR / 2 - 500:
                break
            amp = sum(1.0 / (1 + ((fh - fm) / 150.0) ** 2) for fm in formants) / h ** 0.5
            x += amp * np.sin(h * phase + rng.uniform(0, 2 * np.pi))
        env = np.clip(np.sin(2 * np.pi * rng.uniform(2, 6) * t + rng.uniform(0, 6.28)), 0, None) ** 0.7
        x = x * env + 0.05 * rng.standard_normal(n) * env
    elif kind == "clicks":
        x = np.zeros(n)
        period = int(rng.uniform(0.002, 0.05) * SR)
        x[:: max(period, 1)] = 1.0
        x = np.convolve(x, np.exp(-np.arange(64) / rng.uniform(2, 20)), mode="same")
    elif kind == "bursts":  # fricative-like high-passed noise bursts
        x = np.diff(rng.standard_normal(n + 1))
        env = (np.sin(2 * np.pi * rng.uniform(1, 5) * t) > rng.uniform(-0.3, 0.6)).astype(np.float64)
        x = x * np.convolve(env, np.ones(240) / 240, mode="same")
    elif kind == "am_tone":
        f = math.exp(rng.uniform(math.log(100), math.log(4000)))
        x = np.sin(2 * np.pi * f * t) * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 20) * t))
    elif kind == "silence":
        x = 1e-4 * rng.standard_normal(n)
    else:
        raise ValueError(kind)
    x = x / (np.sqrt(np.mean(x ** 2)) + 1e-12)
    level_db = rng.uniform(-45, -6)
    return (x * 10 ** (level_db / 20)).astype(np.float32)


KINDS = ["white", "pink", "brown", "tone", "chirp", "voice", "voice", "clicks", "bursts", "am_tone", "silence"]


def synth_batch(seed: int, n_clips: int, seconds: float) -> torch.Tensor:
    """[n_clips, 1, T] float32 of varied synthetic audio; mixtures of two kinds for half of them."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    clips = []
    for i in range(n_clips):
        kind = KINDS[i % len(KINDS)]
        x = synth_clip(rng, n, kind)
        if i % 2 == 1:
            x = x + synth_clip(rng, n, KINDS[int(rng.integers(len(KINDS)))])
        clips.append(np.clip(x, -1, 1))
    return torch.from_numpy(np.stack(clips)[:, None, :])


# --------------------------------------------------------------------------------------------
# Random state dict
# --------------------------------------------------------------------------------------------

def _uniform(gen, shape, bound):
    return (torch.rand(shape, generator=gen, dtype=torch.float32) * 2 - 1) * bound


def default_init_state_dict(seed: int) -> "OrderedDict[str, torch.Tensor]":
    gen = torch.Generator().manual_seed(seed)
    layout = ckpt.official_layout()
    sd: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for name, shape in layout.items():
        if name.endswith(".weight_v"):
            fan_in = shape[1] * shape[2]  # PyTorch's fan_in for Conv1d [o,i,k] and ConvTranspose1d [i,o,k]
            sd[name] = _uniform(gen, shape, 1.0 / math.sqrt(fan_in))
        elif ".lstm." in name:
            sd[name] = _uniform(gen, shape, 1.0 / math.sqrt(ets.DIMENSION * 4))  # hidden 512
        elif name.startswith("quantizer."):
            sd[name] = torch.zeros(shape)
        else:
            sd[name] = None  # bias / weight_g: filled below
    for name, shape in layout.items():
        if name.endswith(".bias") and sd[name] is None:
            v = sd[name[: -len("bias")] + "weight_v"]
            fan_in = v.shape[1] * v.shape[2]
            sd[name] = _uniform(gen, shape, 1.0 / math.sqrt(fan_in))
        elif name.endswith(".weight_g"):
            v = sd[name[: -len("weight_g")] + "weight_v"]
            sd[name] = torch.norm_except_dim(v, 2, 0).contiguous()
    return sd


def _conv_official_prefix(model: "ets.EncodecTS", mod_name: str, mod) -> str:
    return mod_name + (".convtr.convtr." if isinstance(mod, ets.SConvTranspose1d) else ".conv.conv.")


@torch.no_grad()
def _data_dependent_init(model, sd, part: str, x: torch.Tensor, last_target: float) -> None:
    """Single forward pass through model.<part> (Salimans & Kingma style weight-norm data init).

    Each Conv1d output channel is centred and scaled to std 1 (g_c *= s_c, b_c = s_c (b_c - mean_c));
    ConvTranspose1d (whose g is per *input* channel) gets one scalar scale plus per-channel centring.
    The last conv of the part is scaled to ``last_target`` instead of 1.
    """
    convs = [(n, m) for n, m in model.named_modules()
             if n.startswith(part + ".") and isinstance(m, (ets.SConv1d, ets.SConvTranspose1d))]
    last_name = convs[-1][0]
    handles = []

    def make_hook(name):
        def hook(mod, inp, out):
            target = last_target if name == last_name else 1.0
            mean = out.mean(dim=(0, 2))
            pre = _conv_official_prefix(model, name, mod)
            if isinstance(mod, ets.SConv1d):
                std = out.std(dim=(0, 2))
                s = target / torch.clamp(std, min=float(std.mean()) * 1e-2 + 1e-8)
                mod.weight.mul_(s.view(-1, 1, 1))
                sd[pre + "weight_g"] = sd[pre + "weight_g"] * s.view(-1, 1, 1)
            else:
                s = torch.full_like(mean, target / max(float(out.std()), 1e-8))
                mod.weight.mul_(float(s[0]))
                sd[pre + "weight_g"] = sd[pre + "weight_g"] * float(s[0])
            new_bias = (mod.bias - mean) * s
            mod.bias.copy_(new_bias)
            sd[pre + "bias"] = (sd[pre + "bias"] - mean) * s
            return (out - mean.view(1, -1, 1)) * s.view(1, -1, 1)
        return hook

    for n, m in convs:
        handles.append(m.register_forward_hook(make_hook(n)))
    try:
        getattr(model, part)(x)
    finally:
        for h in handles:
            h.remove()


def _nearest(x: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
    e = embed.t()
    dist = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ e + e.pow(2).sum(0, keepdim=True))
    return dist.max(dim=-1).indices


def _sample_separated(pool: torch.Tensor, K: int, gen: torch.Generator, min_dist: float) -> torch.Tensor:
    """K row indices of ``pool`` in random order, greedily skipping rows closer than ``min_dist`` to
    an accepted one (calibration audio has near-identical frames: tones, clicks, near-silence; as
    entries they would be near-ties, and then the float rounding of the host, e.g. its thread
    count, decides between them). Falls back to unseparated rows if the pool runs out."""
    order = torch.randperm(pool.shape[0], generator=gen)
    accepted: List[int] = []
    rejected: List[int] = []
    chosen = pool.new_zeros((0, pool.shape[1]))
    for start in range(0, order.shape[0], 256):
        if len(accepted) >= K:
            break
        cand = order[start:start + 256]
        x = pool[cand]
        ok = torch.ones(cand.shape[0], dtype=torch.bool)
        if chosen.shape[0]:
            ok &= torch.cdist(x, chosen).min(dim=1).values > min_dist
        close = (torch.cdist(x, x) <= min_dist).numpy()
        ok_np = ok.numpy()
        taken: List[int] = []
        for j in range(cand.shape[0]):
            if len(accepted) + len(taken) >= K:
                break
            if ok_np[j] and not close[j, taken].any():
                taken.append(j)
            else:
                rejected.append(int(cand[j]))
        accepted.extend(int(cand[j]) for j in taken)
        if taken:
            chosen = torch.cat([chosen, x[taken]])
    if len(accepted) < K:
        accepted.extend(rejected[: K - len(accepted)])
    return torch.tensor(accepted[:K], dtype=torch.long)


@torch.no_grad()
def build_codebooks(latents: torch.Tensor, seed: int,
                    shrink_grid=(0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0),
                    min_sep: float = 0.05, n_books: int = ets.MAX_CODEBOOKS) -> List[Dict[str, torch.Tensor]]:
    """latents [N, 128] -> per-layer {embed, cluster_size}, built from actual residual latents.

    Layer q's 1024 entries are alpha * (1024 residual frames sampled from the pool that layers
    0..q-1 left, at least ``min_sep`` x RMS residual norm apart). With only a few thousand calibration frames for 1024 entries, plain
    k-means (or plain sampling) fits its own frames almost exactly, their residuals collapse after
    a few layers and the deep codebooks come out ~0 (every real input then maps to one deep code).
    So residuals are computed leave-one-out (a frame never uses the entry that was sampled from
    it), which keeps the pool's residuals "honest", like those of unseen audio; alpha (one per
    layer) is the shrinkage from ``shrink_grid`` that minimises that honest residual energy
    (what k-means averaging would do with enough data).
    """
    gen = torch.Generator().manual_seed(seed + 7919)
    K = ets.CODEBOOK_SIZE
    N = latents.shape[0]
    if N <= K:
        raise ValueError("need more than %d calibration frames, got %d" % (K, N))
    residual = latents.clone()
    books = []
    for _q in range(n_books):
        src = _sample_separated(residual, K, gen, min_sep * float(residual.pow(2).sum(1).mean().sqrt()))
        raw = residual[src].clone()
        best = None
        for alpha in shrink_grid:
            embed = raw * alpha
            e = embed.t()
            dist = -(residual.pow(2).sum(1, keepdim=True) - 2 * residual @ e + e.pow(2).sum(0, keepdim=True))
            dist[src, torch.arange(K)] = float("-inf")  # leave-one-out
            idx = dist.max(dim=-1).indices
            new = residual - torch.nn.functional.embedding(idx, embed)
            err = float(new.pow(2).mean())
            if best is None or err < best[0]:
                best = (err, embed, idx, new)
        _, embed, idx, new = best
        counts = torch.bincount(idx, minlength=K).to(torch.float32).clamp_min(1.0)
        books.append({"embed": embed.contiguous(), "cluster_size": counts})
        residual = new
    return books


@torch.no_grad()
def set_codebooks(sd: Dict[str, torch.Tensor], books: List[Dict[str, torch.Tensor]]) -> None:
    """The checkpoint's tensors of each codebook of build_codebooks (inited, cluster_size, embed, embed_avg)."""
    for q, b in enumerate(books):
        p = "quantizer.vq.layers.%d._codebook." % q
        sd[p + "inited"] = torch.ones(1)
        sd[p + "cluster_size"] = b["cluster_size"]
        sd[p + "embed"] = b["embed"]
        sd[p + "embed_avg"] = b["embed"] * b["cluster_size"].unsqueeze(1)


def make_random_state_dict(seed: int, calib_clips: int = 22, calib_seconds: float = 2.0,
                           verbose: bool = False) -> "OrderedDict[str, torch.Tensor]":
    """Official-layout float32 state_dict with seeded random weights (see module docstring).

    Runs single-threaded: float rounding of convolutions/matmuls depends on the thread count,
    and the codebooks are made of actual latents, so this keeps the bytes identical for a seed.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _make_random_state_dict(seed, calib_clips, calib_seconds, verbose)
    finally:
        torch.set_num_threads(threads)


def _make_random_state_dict(seed: int, calib_clips: int, calib_seconds: float,
                            verbose: bool) -> "OrderedDict[str, torch.Tensor]":
    sd = default_init_state_dict(seed)
    # 1. encoder data-dependent init on a small calibration batch
    model = ckpt.build_ts_model(sd)
    calib = synth_batch(seed * 1000 + 1, 12, 1.0)
    _data_dependent_init(model, sd, "encoder", calib, 1.0)
    # 2. codebooks from residual latents of varied synthetic audio
    model = ckpt.build_ts_model(sd)
    audio = synth_batch(seed * 1000 + 2, calib_clips, calib_seconds)
    lat = []
    for i in range(0, audio.shape[0], 8):
        z = model.encoder(audio[i:i + 8])  # [b, 128, F]
        lat.append(z.transpose(1, 2).reshape(-1, ets.DIMENSION))
    latents = torch.cat(lat)
    if verbose:
        print("codebooks from %d latent frames" % latents.shape[0], file=sys.stderr)
    set_codebooks(sd, build_codebooks(latents, seed))
    # 3. decoder data-dependent init on quantized latents of the calibration batch
    model = ckpt.build_ts_model(sd)
    zq = model.dequantize(model.encode(calib, ets.MAX_CODEBOOKS))
    _data_dependent_init(model, sd, "decoder", zq, 0.1)
    out = OrderedDict((k, sd[k].detach().to(torch.float32).contiguous()) for k in ckpt.official_layout())
    return out


def save_checkpoint(sd_official: Dict[str, torch.Tensor], path: str, layout: str = "official") -> None:
    """Write .th/.pt/.bin (torch.save of an OrderedDict) or .safetensors in `layout`'s names, atomically."""
    common.save_state_dict(ckpt.to_layout(sd_official, layout), path)


def main(argv=None, doc: str = __doc__, make=make_random_state_dict, save=save_checkpoint) -> int:
    """The command line of a family's random checkpoint module: make(seed) written by save(sd, path, layout)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layout", choices=["official", "huggingface"], default="official")
    ap.add_argument("--out", required=True, help=".th/.pt/.bin (torch.save) or .safetensors")
    args = ap.parse_args(argv)
    if args.layout == "official" and args.out.endswith(".safetensors"):
        print("note: writing official names into a .safetensors file", file=sys.stderr)
    save(make(args.seed), args.out, args.layout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
