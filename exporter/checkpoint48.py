"""Detect, normalise, validate and convert EnCodec 48 kHz checkpoints.

Accepted inputs (read by checkpoint.read_checkpoint_file, which also unwraps and strips ``module.``):
  * Meta's ``encodec_48khz-7e698e3e.th`` (plain state_dict: ``encoder.model.N.conv.conv.weight`` / ``.bias``
    and the time-group norm's ``encoder.model.N.conv.norm.weight`` / ``.bias``; ``.convtr.convtr.`` /
    ``.convtr.norm.`` for the decoder's transposed convolutions; no weight norm)
  * Hugging Face ``facebook/encodec_48khz`` ``model.safetensors`` / ``pytorch_model.bin``: transformers'
    ``EncodecConv1d`` / ``EncodecConvTranspose1d`` hold ``conv`` (the convolution) and ``norm``
    (``nn.GroupNorm(1, C)`` when ``norm_type == "time_group_norm"``), so ``encoder.layers.N.conv.weight`` and
    ``encoder.layers.N.norm.weight``; codebooks ``quantizer.layers.N.codebook.*``.

Internal naming is Meta's official layout (``layout/official48.tsv``, 224 tensors). ``to_ts_state_dict`` turns
it into the buffers of :class:`encodec48_ts.EncodecTS48`.
"""

import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

try:  # package-relative or script-relative import
    from . import checkpoint as ckpt
    from . import encodec48_ts as e48
except ImportError:  # pragma: no cover - when exporter/ is on sys.path
    import checkpoint as ckpt
    import encodec48_ts as e48

NAME = e48.NAME

# the decoder's transposed convs and the plain convs share HF's names: the layout tells them apart
NAMES = ckpt.LayoutNames(
    "official48.tsv",
    ((r"\.(conv\.conv|convtr\.convtr)\.", ".conv."), (r"\.(conv|convtr)\.norm\.", ".norm.")),
    ((r"\.conv\.(weight|bias)$", r".conv.conv.\1"), (r"\.norm\.(weight|bias)$", r".conv.norm.\1")),
)
official_to_hf_name = NAMES.official_to_hf
official_layout = NAMES.official
hf_layout = NAMES.hf
hf_to_official_name = NAMES.hf_to_official
to_layout = NAMES.to_layout


def is_48k(sd: Dict[str, object]) -> bool:
    """Whether a raw state dict (either layout) is the 48 kHz model: time-group-norm tensors, or plain
    (not weight-normed) convolution weights with a stereo input."""
    for k in sd:
        if re.match(r"^(encoder|decoder)\.(model|layers)\..*\bnorm\.(weight|bias)$", k):
            return True
    for k in ("encoder.model.0.conv.conv.weight", "encoder.layers.0.conv.weight"):
        t = sd.get(k)
        if isinstance(t, torch.Tensor) and t.dim() == 3 and t.shape[1] == 2:
            return True
    return False


def normalize_state_dict(sd: Dict[str, object]) -> Tuple["OrderedDict[str, object]", str]:
    """Rename to the official layout. Returns (state_dict, detected layout)."""
    layout = ckpt.detect_layout(sd)
    out: "OrderedDict[str, object]" = OrderedDict()
    for k, v in sd.items():
        name = hf_to_official_name(k) if layout == "huggingface" else k
        if name in out:
            raise ckpt.CheckpointError("tensor %r appears twice after renaming (from %r)" % (name, k))
        out[name] = v
    return out, layout


def validate_state_dict(sd: Dict[str, object], layout: str = "official") -> "OrderedDict[str, torch.Tensor]":
    """Names/shapes/dtypes against layout/official48.tsv (checkpoint.validate_against_layout); float32 tensors out,
    problems named in the checkpoint's own layout."""

    def hint(unexpected: List[str]) -> List[str]:
        if any(k.endswith((".weight_g", ".weight_v")) for k in sd):
            return ["  (weight-norm tensors: the 48 kHz model has plain convolutions, each followed by a "
                    "time-group norm)"]
        return []

    return ckpt.validate_against_layout(sd, official_layout(), "EnCodec 48 kHz layout (%s names)" % layout,
                                        NAMES.shown(layout), hint)


def _conv(k: str, t: torch.Tensor, sd: Dict[str, torch.Tensor], out: Dict[str, torch.Tensor]) -> bool:
    """A convolution's weight/bias and its time-group norm's, used as stored."""
    m = re.match(r"^(.*)\.(conv|convtr)\.(conv|convtr)\.(weight|bias)$", k)
    if m:
        out[m.group(1) + "." + m.group(4)] = t
        return True
    m = re.match(r"^(.*)\.(conv|convtr)\.norm\.(weight|bias)$", k)
    if m:
        out[m.group(1) + ".norm_" + m.group(3)] = t
        return True
    return False


def to_ts_state_dict(sd: Dict[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Validated official state_dict -> EncodecTS48 buffers (stacked codebooks)."""
    return ckpt.to_buffers(sd, e48.MAX_CODEBOOKS, _conv)


def build_ts_model(sd_official: Dict[str, torch.Tensor]) -> "e48.EncodecTS48":
    model = e48.EncodecTS48()
    model.load_state_dict(to_ts_state_dict(sd_official), strict=True)
    return model.eval()


def load_raw(raw: Dict[str, object], path: str):
    """A file's raw state dict -> (validated official-layout float32 state_dict, source info dict)."""
    sd, layout = normalize_state_dict(raw)
    return validate_state_dict(sd, layout), ckpt.file_source(layout, path)


def load_state_dict_object(obj, origin: str = "state_dict"):
    """In-memory variant (same normalisation + validation)."""
    sd, layout = normalize_state_dict(ckpt.unwrap_state_dict(obj, origin))
    return validate_state_dict(sd, layout), layout
