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

import os
import re
from collections import OrderedDict
from typing import Dict, Optional, Tuple

import torch

try:  # package-relative or script-relative import
    from . import checkpoint as ckpt
    from . import encodec48_ts as e48
except ImportError:  # pragma: no cover - when models/ is on sys.path
    import checkpoint as ckpt
    import encodec48_ts as e48

NAME = e48.NAME

_OFFICIAL: Optional["OrderedDict[str, Tuple[int, ...]]"] = None


def official_layout() -> "OrderedDict[str, Tuple[int, ...]]":
    global _OFFICIAL
    if _OFFICIAL is None:
        _OFFICIAL = ckpt.read_layout_tsv(os.path.join(ckpt.LAYOUT_DIR, "official48.tsv"))
    return _OFFICIAL


def official_to_hf_name(name: str) -> str:
    name = re.sub(r"^encoder\.model\.", "encoder.layers.", name)
    name = re.sub(r"^decoder\.model\.", "decoder.layers.", name)
    name = re.sub(r"\.(conv\.conv|convtr\.convtr)\.", ".conv.", name)
    name = re.sub(r"\.(conv|convtr)\.norm\.", ".norm.", name)
    name = re.sub(r"^quantizer\.vq\.layers\.(\d+)\._codebook\.", r"quantizer.layers.\1.codebook.", name)
    return name


def hf_layout() -> "OrderedDict[str, Tuple[int, ...]]":
    return OrderedDict((official_to_hf_name(k), v) for k, v in official_layout().items())


_HF_TO_OFFICIAL: Optional[Dict[str, str]] = None


def hf_to_official_name(name: str) -> str:
    """Exact inverse for known names (the decoder's transposed convs are told apart by the layout);
    unknown names get a best-effort rename (for error messages)."""
    global _HF_TO_OFFICIAL
    if _HF_TO_OFFICIAL is None:
        _HF_TO_OFFICIAL = {official_to_hf_name(k): k for k in official_layout()}
    if name in _HF_TO_OFFICIAL:
        return _HF_TO_OFFICIAL[name]
    n = re.sub(r"^encoder\.layers\.", "encoder.model.", name)
    n = re.sub(r"^decoder\.layers\.", "decoder.model.", n)
    n = re.sub(r"\.conv\.(weight|bias)$", r".conv.conv.\1", n)
    n = re.sub(r"\.norm\.(weight|bias)$", r".conv.norm.\1", n)
    n = re.sub(r"^quantizer\.layers\.(\d+)\.codebook\.", r"quantizer.vq.layers.\1._codebook.", n)
    return n


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
    """Names/shapes/dtypes against layout/official48.tsv; float32 tensors out. One CheckpointError lists every
    missing, unexpected, mis-shaped and mis-typed tensor, named in the checkpoint's own layout."""
    expected = official_layout()
    show = official_to_hf_name if layout == "huggingface" else (lambda n: n)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    bad_shape = []
    bad_type = []
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k, shape in expected.items():
        if k not in sd:
            continue
        t = sd[k]
        if not isinstance(t, torch.Tensor):
            bad_type.append("%s (not a tensor: %s)" % (show(k), type(t).__name__))
            continue
        if tuple(t.shape) != tuple(shape):
            bad_shape.append("%s (expected %s, got %s)" % (show(k), ckpt._fmt_shape(shape), ckpt._fmt_shape(t.shape)))
            continue
        if t.is_complex() or (not t.is_floating_point() and not k.endswith(("inited", "cluster_size"))):
            bad_type.append("%s (dtype %s, expected float32)" % (show(k), t.dtype))
            continue
        out[k] = t.detach().to("cpu", torch.float32).contiguous()
    if missing or unexpected or bad_shape or bad_type:
        parts = ["checkpoint does not match the EnCodec 48 kHz layout (%s names):" % layout]
        if missing:
            parts.append("  missing (%d): %s" % (len(missing), ", ".join(show(k) for k in missing)))
        if unexpected:
            parts.append("  unexpected (%d): %s" % (len(unexpected), ", ".join(show(k) for k in unexpected)))
        if bad_shape:
            parts.append("  wrong shape (%d): %s" % (len(bad_shape), ", ".join(bad_shape)))
        if bad_type:
            parts.append("  wrong type (%d): %s" % (len(bad_type), ", ".join(bad_type)))
        if any(k.endswith((".weight_g", ".weight_v")) for k in sd):
            parts.append("  (weight-norm tensors: the 48 kHz model has plain convolutions, each followed by a "
                         "time-group norm)")
        raise ckpt.CheckpointError("\n".join(parts))
    return out


def to_ts_state_dict(sd: Dict[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Validated official state_dict -> EncodecTS48 buffers (stacked codebooks)."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k, t in sd.items():
        if k.startswith("quantizer."):
            continue
        m = re.match(r"^(.*)\.(conv|convtr)\.(conv|convtr)\.(weight|bias)$", k)
        if m:
            out[m.group(1) + "." + m.group(4)] = t
            continue
        m = re.match(r"^(.*)\.(conv|convtr)\.norm\.(weight|bias)$", k)
        if m:
            out[m.group(1) + ".norm_" + m.group(3)] = t
            continue
        m = re.match(r"^(.*)\.lstm\.((weight|bias)_(ih|hh)_l\d+)$", k)
        if m:
            out[m.group(1) + "." + m.group(2)] = t
            continue
        raise ckpt.CheckpointError("internal error: unmapped tensor %s" % k)
    out["quantizer.embed"] = torch.stack(
        [sd["quantizer.vq.layers.%d._codebook.embed" % q] for q in range(e48.MAX_CODEBOOKS)]).contiguous()
    return out


def build_ts_model(sd_official: Dict[str, torch.Tensor]) -> "e48.EncodecTS48":
    model = e48.EncodecTS48()
    model.load_state_dict(to_ts_state_dict(sd_official), strict=True)
    return model.eval()


def load_raw(raw: Dict[str, object], path: str):
    """A file's raw state dict -> (validated official-layout float32 state_dict, source info dict)."""
    sd, layout = normalize_state_dict(raw)
    sd = validate_state_dict(sd, layout)
    return sd, {"kind": layout, "file": os.path.basename(path), "sha256": ckpt.sha256_file(path), "seed": None}


def load_state_dict_object(obj, origin: str = "state_dict"):
    """In-memory variant (same normalisation + validation)."""
    sd, layout = normalize_state_dict(ckpt.unwrap_state_dict(obj, origin))
    return validate_state_dict(sd, layout), layout


def to_layout(sd_official: Dict[str, torch.Tensor], layout: str) -> "OrderedDict[str, torch.Tensor]":
    if layout == "official":
        return OrderedDict(sd_official)
    if layout == "huggingface":
        return OrderedDict((official_to_hf_name(k), v) for k, v in sd_official.items())
    raise ValueError("unknown layout %r" % layout)
