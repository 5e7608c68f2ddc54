"""Load, normalise, validate and fold EnCodec 24 kHz checkpoints.

Accepted inputs
  * Meta's official ``encodec_24khz-*.th`` (plain state_dict, keys ``encoder.model.N.conv.conv.weight_g`` ...)
  * Hugging Face ``facebook/encodec_24khz`` ``model.safetensors`` / ``pytorch_model.bin``
    (keys ``encoder.layers.N.conv.weight_g`` ..., or the newer
    ``conv.parametrizations.weight.original0/original1`` names for g/v)
  * a dict wrapping the state_dict under ``state_dict`` / ``model`` / ``best_state``.

Internal naming is Meta's official layout. ``fold_weight_norm`` turns it into the plain
tensors of :class:`encodec_ts.EncodecTS` (weight = g * v / ||v||, norm over all dims but 0).
"""

import hashlib
import io
import os
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

try:  # package-relative or script-relative import
    from . import encodec_ts as ets
    from . import safetensors_io
except ImportError:  # pragma: no cover - when exporter/ is on sys.path
    import encodec_ts as ets
    import safetensors_io

LAYOUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layout")

# checkpoint48.is_48k routes real 48 kHz checkpoints (time-group norms, plain convolutions) before this module's
# validation; what still looks stereo here has weight-norm tensors, which neither model's checkpoint mixes with it
STEREO_48K_MESSAGE = ("this looks like a 48 kHz/stereo EnCodec checkpoint but has weight-norm (24 kHz-style) "
                      "tensors; neither the encodec_24khz nor the encodec_48khz layout")


class CheckpointError(ValueError):
    """Raised for any unusable checkpoint; the message is meant for end users."""


# --------------------------------------------------------------------------------------------
# Expected layout
# --------------------------------------------------------------------------------------------

def _generated_official_layout() -> "OrderedDict[str, Tuple[int, ...]]":
    """Every official tensor name -> shape, generated from the architecture (TSV order)."""
    model = ets.EncodecTS()
    out: "OrderedDict[str, Tuple[int, ...]]" = OrderedDict()

    def add_module(prefix: str, mod) -> None:
        if isinstance(mod, ets.SConv1d):
            o, i, k = mod.weight.shape
            out[prefix + ".conv.conv.bias"] = (o,)
            out[prefix + ".conv.conv.weight_g"] = (o, 1, 1)
            out[prefix + ".conv.conv.weight_v"] = (o, i, k)
        elif isinstance(mod, ets.SConvTranspose1d):
            i, o, k = mod.weight.shape
            out[prefix + ".convtr.convtr.bias"] = (o,)
            out[prefix + ".convtr.convtr.weight_g"] = (i, 1, 1)
            out[prefix + ".convtr.convtr.weight_v"] = (i, o, k)
        elif isinstance(mod, ets.SLSTM):
            h = mod.hidden_size
            for layer in range(ets.LSTM_LAYERS):
                out["%s.lstm.weight_ih_l%d" % (prefix, layer)] = (4 * h, h)
                out["%s.lstm.weight_hh_l%d" % (prefix, layer)] = (4 * h, h)
                out["%s.lstm.bias_ih_l%d" % (prefix, layer)] = (4 * h,)
                out["%s.lstm.bias_hh_l%d" % (prefix, layer)] = (4 * h,)
        elif isinstance(mod, ets.ResnetBlock):
            for idx, sub in enumerate(mod.block):
                add_module("%s.block.%d" % (prefix, idx), sub)
            add_module(prefix + ".shortcut", mod.shortcut)

    for idx, mod in enumerate(model.encoder.model):
        add_module("encoder.model.%d" % idx, mod)
    for q in range(ets.MAX_CODEBOOKS):
        p = "quantizer.vq.layers.%d._codebook." % q
        out[p + "inited"] = (1,)
        out[p + "cluster_size"] = (ets.CODEBOOK_SIZE,)
        out[p + "embed"] = (ets.CODEBOOK_SIZE, ets.DIMENSION)
        out[p + "embed_avg"] = (ets.CODEBOOK_SIZE, ets.DIMENSION)
    for idx, mod in enumerate(model.decoder.model):
        add_module("decoder.model.%d" % idx, mod)
    return out


def read_layout_tsv(path: str) -> "OrderedDict[str, Tuple[int, ...]]":
    out: "OrderedDict[str, Tuple[int, ...]]" = OrderedDict()
    with open(path, "r", encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in lines[1:]:
        if not line.strip():
            continue
        name, shape, _dtype = line.split("\t")
        out[name] = tuple(int(s) for s in shape.split("x"))
    return out


Renames = Sequence[Tuple[str, str]]

# where Meta's and Hugging Face's names differ in every family: the module lists (renamed before a family's own
# rules) and the codebooks (after them)
_MODULES_TO_HF: Renames = ((r"^encoder\.model\.", "encoder.layers."), (r"^decoder\.model\.", "decoder.layers."))
_CODEBOOKS_TO_HF: Renames = ((r"^quantizer\.vq\.layers\.(\d+)\._codebook\.", r"quantizer.layers.\1.codebook."),)
_MODULES_FROM_HF: Renames = ((r"^encoder\.layers\.", "encoder.model."), (r"^decoder\.layers\.", "decoder.model."))
_CODEBOOKS_FROM_HF: Renames = ((r"^quantizer\.layers\.(\d+)\.codebook\.", r"quantizer.vq.layers.\1._codebook."),)


def renaming(rules: Renames) -> Callable[[str], str]:
    """A name map: the regex substitutions (pattern, replacement) of `rules`, in order."""
    def rename(name: str) -> str:
        for pattern, replacement in rules:
            name = re.sub(pattern, replacement, name)
        return name
    return rename


class LayoutNames:
    """A family's tensor names: its official layout (Meta's names and shapes, layout/<tsv>), the renaming to Hugging
    Face's names, and its inverse: exact for the layout's names (HF's names can merge two official ones, told apart
    by the layout), best-effort by `hf_fallback` for others (for error messages). `to_hf` and `from_hf` are the
    family's own renames (its convolutions' tensors), run between the module lists' and the codebooks'."""

    def __init__(self, tsv: str, to_hf: Renames, from_hf: Renames,
                 generate: Optional[Callable[[], "OrderedDict[str, Tuple[int, ...]]"]] = None):
        self.tsv = os.path.join(LAYOUT_DIR, tsv)
        self.official_to_hf = renaming(tuple(_MODULES_TO_HF) + tuple(to_hf) + tuple(_CODEBOOKS_TO_HF))
        self.hf_fallback = renaming(tuple(_MODULES_FROM_HF) + tuple(from_hf) + tuple(_CODEBOOKS_FROM_HF))
        self.generate = generate
        self._official: Optional["OrderedDict[str, Tuple[int, ...]]"] = None
        self._hf_to_official: Optional[Dict[str, str]] = None

    def official(self) -> "OrderedDict[str, Tuple[int, ...]]":
        """The official layout: the TSV, or where it is missing and the family can, generated from the modules."""
        if self._official is None:
            use_tsv = os.path.exists(self.tsv) or self.generate is None
            self._official = read_layout_tsv(self.tsv) if use_tsv else self.generate()
        return self._official

    def hf(self) -> "OrderedDict[str, Tuple[int, ...]]":
        return OrderedDict((self.official_to_hf(k), v) for k, v in self.official().items())

    def hf_to_official(self, name: str) -> str:
        if self._hf_to_official is None:
            self._hf_to_official = {self.official_to_hf(k): k for k in self.official()}
        if name in self._hf_to_official:
            return self._hf_to_official[name]
        return self.hf_fallback(name)

    def shown(self, layout: str) -> Callable[[str], str]:
        """How an official name is shown to the user of a checkpoint in `layout`."""
        return self.official_to_hf if layout == "huggingface" else (lambda n: n)

    def to_layout(self, sd_official: Dict[str, torch.Tensor], layout: str) -> "OrderedDict[str, torch.Tensor]":
        if layout not in ("official", "huggingface"):
            raise ValueError("unknown layout %r" % layout)
        show = self.shown(layout)
        return OrderedDict((show(k), v) for k, v in sd_official.items())


# HF names both kinds of convolution `.conv.`: no rule undoes that, the layout tells them apart (hf_to_official)
NAMES = LayoutNames("official.tsv", ((r"\.conv\.conv\.", ".conv."), (r"\.convtr\.convtr\.", ".conv.")), (),
                    _generated_official_layout)
official_to_hf_name = NAMES.official_to_hf
official_layout = NAMES.official
hf_layout = NAMES.hf
hf_to_official_name = NAMES.hf_to_official
to_layout = NAMES.to_layout


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------

def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_source(kind: str, path: str) -> dict:
    """The metadata's source of a checkpoint file (`kind`: its layout)."""
    return {"kind": kind, "file": os.path.basename(path), "sha256": sha256_file(path), "seed": None}


def _torch_load(path: str, allow_unsafe_pickle: bool):
    if allow_unsafe_pickle:
        return torch.load(path, map_location="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch without weights_only
        return torch.load(path, map_location="cpu")
    except Exception as e:
        msg = str(e)
        if "weights_only" in msg or "Unsupported" in msg or "Weights only" in msg or "global" in msg.lower():
            raise CheckpointError(
                "%s: the pickle contains objects other than tensors/containers, refused for safety (only if you "
                "trust this file: python3 exporter/export.py --allow-unsafe-pickle --checkpoint FILE --out MODEL.pt): %s"
                % (path, msg.splitlines()[0]))
        raise


def resolve_checkpoint_path(path: str) -> str:
    """A file, or a Hugging Face model directory holding model.safetensors / pytorch_model.bin."""
    if not os.path.exists(path):
        raise CheckpointError("%s: no such file" % path)
    if os.path.isdir(path):
        for cand in ("model.safetensors", "pytorch_model.bin"):
            if os.path.isfile(os.path.join(path, cand)):
                return os.path.join(path, cand)
        raise CheckpointError("%s: is a directory without model.safetensors or pytorch_model.bin" % path)
    return path


def read_checkpoint_file(path: str, allow_unsafe_pickle: bool = False) -> Dict[str, object]:
    """Read a checkpoint file into a flat {name: tensor} mapping (not yet normalised)."""
    path = resolve_checkpoint_path(path)
    with open(path, "rb") as f:
        head = f.read(16)
    is_zip_or_pickle = head[:2] == b"PK" or head[:1] == b"\x80"
    if path.endswith(".safetensors") or not is_zip_or_pickle and len(head) >= 9 and head[8:9] == b"{":
        try:
            return dict(safetensors_io.load_file(path))
        except safetensors_io.SafetensorsError as e:
            raise CheckpointError("%s: %s" % (path, e))
    try:
        obj = _torch_load(path, allow_unsafe_pickle)
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError("%s: cannot be read as a PyTorch checkpoint (%s: %s)"
                              % (path, type(e).__name__, str(e).splitlines()[0] if str(e) else ""))
    return unwrap_state_dict(obj, path)


def unwrap_state_dict(obj, origin: str = "checkpoint") -> Dict[str, object]:
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise CheckpointError("%s: expected a state_dict (a dict of tensors), got %s" % (origin, type(obj).__name__))
    if obj and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model", "best_state", "model_state_dict", "module"):
            if isinstance(obj.get(key), dict):
                return unwrap_state_dict(obj[key], origin)
        raise CheckpointError("%s: no tensors found (top-level keys: %s)" % (origin, ", ".join(map(str, list(obj)[:10]))))
    sd = dict(obj)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


# --------------------------------------------------------------------------------------------
# Normalisation + validation
# --------------------------------------------------------------------------------------------

def detect_layout(sd: Dict[str, object]) -> str:
    official = sum(1 for k in sd if k.startswith(("encoder.model.", "decoder.model.", "quantizer.vq.")))
    hf = sum(1 for k in sd if k.startswith(("encoder.layers.", "decoder.layers.", "quantizer.layers.")))
    if official and hf:
        raise CheckpointError("checkpoint mixes the official (encoder.model.*) and Hugging Face "
                              "(encoder.layers.*) layouts (%d vs %d tensors)" % (official, hf))
    if official:
        return "official"
    if hf:
        return "huggingface"
    sample = ", ".join(sorted(sd)[:5])
    raise CheckpointError("not an EnCodec checkpoint: no encoder.model.* / encoder.layers.* tensors "
                          "(first keys: %s)" % (sample or "<empty>"))


def _looks_48k(sd: Dict[str, object]) -> Optional[str]:
    """Return a reason string if the (official-named) state dict is the 48 kHz / stereo model."""
    reasons = []
    for k in sd:
        if re.search(r"\.(conv|convtr)\.norm\.(weight|bias)$", k) or re.search(r"^(en|de)coder\.model\.\d+\.norm\.", k):
            reasons.append("time-group-norm tensors (%s)" % k)
            break
    v = sd.get("encoder.model.0.conv.conv.weight_v")
    if isinstance(v, torch.Tensor) and v.dim() == 3 and v.shape[1] == 2:
        reasons.append("encoder input has 2 channels")
    last = [k for k in sd if re.match(r"^decoder\.model\.\d+\.conv\.conv\.weight_v$", k)]
    if last:
        last.sort(key=lambda k: int(k.split(".")[2]))
        t = sd[last[-1]]
        if isinstance(t, torch.Tensor) and t.dim() == 3 and t.shape[0] == 2:
            reasons.append("decoder output has 2 channels")
    return "; ".join(reasons) if reasons else None


def normalize_state_dict(sd: Dict[str, object]) -> Tuple["OrderedDict[str, object]", str]:
    """Rename to the official layout. Returns (state_dict, detected_layout)."""
    layout = detect_layout(sd)
    out: "OrderedDict[str, object]" = OrderedDict()
    for k, v in sd.items():
        name = k
        if layout == "huggingface":
            name = re.sub(r"\.parametrizations\.weight\.original0$", ".weight_g", name)
            name = re.sub(r"\.parametrizations\.weight\.original1$", ".weight_v", name)
            name = hf_to_official_name(name)
        else:
            name = re.sub(r"\.parametrizations\.weight\.original0$", ".weight_g", name)
            name = re.sub(r"\.parametrizations\.weight\.original1$", ".weight_v", name)
        if name in out:
            raise CheckpointError("tensor %r appears twice after renaming (from %r)" % (name, k))
        out[name] = v
    return out, layout


def _fmt_shape(s) -> str:
    return "x".join(str(int(d)) for d in s) if len(s) else "scalar"


def _some(names, limit: int = 12) -> str:
    """The first `limit` names, and how many more: a wrong file can hold thousands of tensors."""
    names = list(names)
    more = len(names) - limit
    return ", ".join(names[:limit]) + (", ... and %d more" % more if more > 0 else "")


def validate_against_layout(sd: Dict[str, object], layout: "OrderedDict[str, Tuple[int, ...]]", label: str,
                            show: Callable[[str], str] = lambda name: name,
                            hint: Callable[[List[str]], List[str]] = lambda unexpected: []
                            ) -> "OrderedDict[str, torch.Tensor]":
    """Check names/shapes/dtypes of `sd` against `layout` (name -> shape); returns float32 tensors in layout order.

    Raises one CheckpointError, "checkpoint does not match the <label>:", listing every missing, unexpected,
    mis-shaped and mis-typed tensor, each named by show(name) (the checkpoint's own naming), then the lines that
    hint(unexpected names) adds. Tensors must be floating point except the codebooks' inited/cluster_size counts.
    """
    missing = [k for k in layout if k not in sd]
    unexpected = [k for k in sd if k not in layout]
    bad_shape = []
    bad_type = []
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k, shape in layout.items():
        if k not in sd:
            continue
        t = sd[k]
        if not isinstance(t, torch.Tensor):
            bad_type.append("%s (not a tensor: %s)" % (show(k), type(t).__name__))
            continue
        if tuple(t.shape) != tuple(shape):
            bad_shape.append("%s (expected %s, got %s)" % (show(k), _fmt_shape(shape), _fmt_shape(t.shape)))
            continue
        if t.is_complex() or (not t.is_floating_point() and not k.endswith(("inited", "cluster_size"))):
            bad_type.append("%s (dtype %s, expected float32)" % (show(k), t.dtype))
            continue
        out[k] = t.detach().to("cpu", torch.float32).contiguous()
    if missing or unexpected or bad_shape or bad_type:
        parts = ["checkpoint does not match the %s:" % label]
        if missing:
            parts.append("  missing (%d): %s" % (len(missing), _some(show(k) for k in missing)))
        if unexpected:
            parts.append("  unexpected (%d): %s" % (len(unexpected), _some(show(k) for k in unexpected)))
        if bad_shape:
            parts.append("  wrong shape (%d): %s" % (len(bad_shape), _some(bad_shape)))
        if bad_type:
            parts.append("  wrong type (%d): %s" % (len(bad_type), _some(bad_type)))
        parts.extend(hint(unexpected))
        raise CheckpointError("\n".join(parts))
    return out


def validate_state_dict(sd: Dict[str, object], layout: str = "official") -> "OrderedDict[str, torch.Tensor]":
    """Check names/shapes/dtypes against the expected layout (validate_against_layout); returns float32 tensors.
    Names in the message use the checkpoint's own layout."""
    reason = _looks_48k(sd)
    if reason:
        raise CheckpointError("%s (%s)" % (STEREO_48K_MESSAGE, reason))

    def hint(unexpected: List[str]) -> List[str]:
        n_q_present = len({m.group(1) for k in sd for m in [re.match(r"^quantizer\.vq\.layers\.(\d+)\.", k)] if m})
        if n_q_present and n_q_present != ets.MAX_CODEBOOKS and not unexpected:
            return ["  (found %d codebooks, the 24 kHz model has %d)" % (n_q_present, ets.MAX_CODEBOOKS)]
        return []

    return validate_against_layout(sd, official_layout(), "EnCodec 24 kHz layout (%s names)" % layout,
                                   NAMES.shown(layout), hint)


# --------------------------------------------------------------------------------------------
# Weight-norm folding
# --------------------------------------------------------------------------------------------

def to_buffers(sd: Dict[str, torch.Tensor], n_codebooks: int,
               convs: Callable[[str, torch.Tensor, Dict[str, torch.Tensor], Dict[str, torch.Tensor]], bool]
               ) -> "OrderedDict[str, torch.Tensor]":
    """Validated official state_dict -> the buffers of a family's TorchScript model: convs(name, tensor, sd, out)
    maps a family's convolution tensors (returns whether it took `name`), the LSTMs keep their names less `.lstm`,
    the codebooks are stacked into quantizer.embed."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for k, t in sd.items():
        if k.startswith("quantizer.") or convs(k, t, sd, out):
            continue
        m = re.match(r"^(.*)\.lstm\.((weight|bias)_(ih|hh)_l\d+)$", k)
        if m:
            out[m.group(1) + "." + m.group(2)] = t
            continue
        raise CheckpointError("internal error: unmapped tensor %s" % k)
    out["quantizer.embed"] = torch.stack(
        [sd["quantizer.vq.layers.%d._codebook.embed" % q] for q in range(n_codebooks)]).contiguous()
    return out


def _fold_conv(k: str, t: torch.Tensor, sd: Dict[str, torch.Tensor], out: Dict[str, torch.Tensor]) -> bool:
    """weight = g * v / ||v|| with the norm over all dims but 0 (PyTorch weight_norm(dim=0)); this is exactly
    torch._weight_norm(v, g, 0), the function the weight_norm hook calls, so folded weights are bit-identical to
    what the eager reference computes at every forward."""
    m = re.match(r"^(.*)\.(conv\.conv|convtr\.convtr)\.(bias|weight_g|weight_v)$", k)
    if not m:
        return False
    base, _, kind = m.groups()
    if kind == "bias":
        out[base + ".bias"] = t
    elif kind == "weight_g":
        v = sd[base + "." + m.group(2) + ".weight_v"]
        with torch.no_grad():
            out[base + ".weight"] = torch._weight_norm(v, t, 0).contiguous()
    return True


def fold_weight_norm(sd: Dict[str, torch.Tensor]) -> "OrderedDict[str, torch.Tensor]":
    """Validated official state_dict -> EncodecTS state_dict (plain weights, stacked codebooks)."""
    return to_buffers(sd, ets.MAX_CODEBOOKS, _fold_conv)


def build_ts_model(sd_official: Dict[str, torch.Tensor]) -> "ets.EncodecTS":
    model = ets.EncodecTS()
    model.load_state_dict(fold_weight_norm(sd_official), strict=True)
    return model.eval()


def load_checkpoint(path: str, allow_unsafe_pickle: bool = False):
    """File -> (validated official-layout float32 state_dict, source info dict)."""
    path = resolve_checkpoint_path(path)
    return load_raw(read_checkpoint_file(path, allow_unsafe_pickle), path)


def load_raw(raw: Dict[str, object], path: str):
    """A file's raw state dict (read_checkpoint_file) -> (validated state_dict, source info dict)."""
    sd, layout = normalize_state_dict(raw)
    return validate_state_dict(sd, layout), file_source(layout, path)


def load_state_dict_object(obj, origin: str = "state_dict"):
    """In-memory variant of load_checkpoint (same normalisation + validation)."""
    sd, layout = normalize_state_dict(unwrap_state_dict(obj, origin))
    return validate_state_dict(sd, layout), layout


def serialize_state_dict(sd: Dict[str, torch.Tensor]) -> bytes:
    buf = io.BytesIO()
    torch.save(OrderedDict(sd), buf)
    return buf.getvalue()
