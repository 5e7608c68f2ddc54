#!/usr/bin/env python3
"""Seeded random-weight EnCodec 48 kHz checkpoint (the names/shapes of encodec_48khz-7e698e3e.th).

    /usr/bin/python3 exporter/random_checkpoint48.py --seed 0 --layout official --out random48.th
    /usr/bin/python3 exporter/random_checkpoint48.py --seed 0 --layout huggingface --out random48.safetensors

How the weights are made (deterministic for a given seed on a given machine; single-threaded):
  1. PyTorch's default init for the convolutions (weight and bias U(+-1/sqrt(fan_in))) and the LSTMs
     (U(+-1/sqrt(512))). Every conv is followed by a GroupNorm(1, C), which keeps activations in range by
     itself (no data-dependent init as for the weight-normed 24 kHz model); its affine weight is drawn from
     1 +- 0.2 and its bias from +-0.1 (+-0.01 for the decoder's output layer, whose bias is a DC offset).
  2. Data-driven residual codebooks (random_checkpoint.build_codebooks, 16 layers) from the latents of varied
     synthetic stereo audio cut into 1 s segments and normalised per segment, as the model encodes it.
"""

import math
import os
import sys
from collections import OrderedDict
from typing import Dict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint48 as ck48  # noqa: E402
import encodec48_ts as e48  # noqa: E402
import export_common as common  # noqa: E402
import random_checkpoint as rc  # noqa: E402


def _uniform(gen, shape, bound):
    return (torch.rand(shape, generator=gen, dtype=torch.float32) * 2 - 1) * bound


def default_init_state_dict(seed: int) -> "OrderedDict[str, torch.Tensor]":
    gen = torch.Generator().manual_seed(seed)
    layout = ck48.official_layout()
    last_norm = [k for k in layout if k.startswith("decoder.") and ".norm." in k][-1].rsplit(".", 1)[0]
    sd: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    fan_in: Dict[str, int] = {}
    for name, shape in layout.items():
        if name.endswith((".conv.conv.weight", ".convtr.convtr.weight")):
            fan_in[name.rsplit(".", 1)[0]] = shape[1] * shape[2]  # PyTorch's fan_in for [o,i,k] and [i,o,k]
    for name, shape in layout.items():
        base = name.rsplit(".", 1)[0]
        if ".lstm." in name:
            sd[name] = _uniform(gen, shape, 1.0 / math.sqrt(e48.DIMENSION * 4))  # hidden 512
        elif name.startswith("quantizer."):
            sd[name] = torch.zeros(shape)
        elif base in fan_in:
            sd[name] = _uniform(gen, shape, 1.0 / math.sqrt(fan_in[base]))
        elif name.endswith(".norm.weight"):
            sd[name] = 1.0 + _uniform(gen, shape, 0.2)
        elif name.endswith(".norm.bias"):
            sd[name] = _uniform(gen, shape, 0.01 if base == last_norm else 0.1)
        else:
            raise RuntimeError("internal error: no init for %s" % name)
    return sd


def synth_stereo(seed: int, n_clips: int, seconds: float) -> torch.Tensor:
    """[n_clips, 2, T] of varied synthetic audio: each channel its own clip plus some of the other's (correlated
    stereo, as most recordings), sometimes one channel nearly silent."""
    mono = rc.synth_batch(seed, 2 * n_clips, seconds)[:, 0]  # [2n, T]
    rng = np.random.default_rng(seed + 17)
    clips = []
    for i in range(n_clips):
        a, b = mono[2 * i], mono[2 * i + 1]
        mix = float(rng.uniform(0.0, 1.0))
        left, right = a + mix * b, b + mix * a
        if i % 7 == 3:
            right = right * 1e-3
        clips.append(torch.stack([left, right]).clamp(-1, 1))
    return torch.stack(clips)


@torch.no_grad()
def make_random_state_dict(seed: int, calib_clips: int = 22, verbose: bool = False) -> "OrderedDict[str, torch.Tensor]":
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sd = default_init_state_dict(seed)
        model = ck48.build_ts_model(sd)
        audio = synth_stereo(seed * 1000 + 2, calib_clips, e48.SEGMENT_SECONDS)
        lat = []
        for i in range(0, audio.shape[0], 8):
            x, _scale = model._normalise(audio[i:i + 8])
            z = model.encoder(x)  # [b, 128, F]
            lat.append(z.transpose(1, 2).reshape(-1, e48.DIMENSION))
        latents = torch.cat(lat)
        if verbose:
            print("codebooks from %d latent frames" % latents.shape[0], file=sys.stderr)
        rc.set_codebooks(sd, rc.build_codebooks(latents, seed, n_books=e48.MAX_CODEBOOKS))
        return OrderedDict((k, sd[k].detach().to(torch.float32).contiguous()) for k in ck48.official_layout())
    finally:
        torch.set_num_threads(threads)


def save_checkpoint(sd_official: Dict[str, torch.Tensor], path: str, layout: str = "official") -> None:
    """Write .th/.pt/.bin (torch.save of an OrderedDict) or .safetensors in `layout`'s names, atomically."""
    common.save_state_dict(ck48.to_layout(sd_official, layout), path)


def main(argv=None) -> int:
    return rc.main(argv, __doc__, make_random_state_dict, save_checkpoint)


if __name__ == "__main__":
    sys.exit(main())
