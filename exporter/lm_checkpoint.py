"""Load, detect and validate Meta's EnCodec LM checkpoints; seeded random-weight LMs for tests.

Meta's LM checkpoints are plain state_dicts of ``encodec.model.LMModel``:
``encodec_lm_24khz-1608e3c0.th`` (n_q = 32, for encodec_24khz) and ``encodec_lm_48khz-7add9fc3.th``
(n_q = 16, for encodec_48khz). Every tensor name/shape is listed in ``layout/lm24.tsv`` / ``layout/lm48.tsv``.
Which codec an LM belongs to is read from its number of embedding tables (``emb.K.weight``).
"""

import os
import re
from collections import OrderedDict
from typing import Dict, List, Tuple

import torch

try:  # package-relative or script-relative import
    from . import checkpoint as ckpt
    from . import lm_ts
except ImportError:  # pragma: no cover - when exporter/ is on sys.path
    import checkpoint as ckpt
    import lm_ts

LAYOUT_FILES = {"encodec_24khz": "lm24.tsv", "encodec_48khz": "lm48.tsv"}
LM_PREFIXES = ("transformer.", "emb.", "linears.")


def lm_layout(codec: str) -> "OrderedDict[str, Tuple[int, ...]]":
    return ckpt.read_layout_tsv(os.path.join(ckpt.LAYOUT_DIR, LAYOUT_FILES[codec]))


def looks_like_lm(sd: Dict[str, object]) -> bool:
    """True when most tensors have the LM's names (transformer.*, emb.*, linears.*)."""
    hits = sum(1 for k in sd if k.startswith(LM_PREFIXES))
    return hits > 0 and hits * 2 >= len(sd)


def _n_embeddings(sd: Dict[str, object]) -> int:
    return len({m.group(1) for k in sd for m in [re.match(r"^emb\.(\d+)\.weight$", k)] if m})


def detect_codec(sd: Dict[str, object]) -> str:
    """The codec an LM state_dict belongs to, from its embedding count (32: 24 kHz, 16: 48 kHz)."""
    codec = lm_ts.codec_for_n_q(_n_embeddings(sd))
    # a broken file is checked against the 24 kHz layout, so the error lists what is wrong with it
    return codec if codec is not None else "encodec_24khz"


def validate_lm_state_dict(sd: Dict[str, object], codec: str) -> "OrderedDict[str, torch.Tensor]":
    """Check names/shapes/dtypes against the LM layout of `codec` (checkpoint.validate_against_layout); returns
    float32 tensors in layout order."""
    spec = lm_ts.CODECS[codec]

    def hint(unexpected: List[str]) -> List[str]:
        n_emb = _n_embeddings(sd)
        if n_emb and lm_ts.codec_for_n_q(n_emb) is None:
            return ["  (found %d embedding tables; Meta's LMs have 32 (24 kHz) or 16 (48 kHz))" % n_emb]
        return []

    return ckpt.validate_against_layout(
        sd, lm_layout(codec), "EnCodec LM layout for %s (n_q = %d, %s)" % (codec, spec["n_q"], spec["checkpoint"]),
        hint=hint)


def load_lm_state_dict_object(obj, origin: str = "state_dict") -> Tuple["OrderedDict[str, torch.Tensor]", str]:
    """Unwrap, detect and validate an in-memory LM state_dict. Returns (state_dict, codec)."""
    sd = ckpt.unwrap_state_dict(obj, origin)
    if not looks_like_lm(sd):
        sample = ", ".join(sorted(sd)[:5])
        raise ckpt.CheckpointError(
            "%s: not an EnCodec LM checkpoint: no transformer.* / emb.* / linears.* tensors (first keys: %s)%s"
            % (origin, sample or "<empty>",
               "; this looks like a codec checkpoint: export it with exporter/export.py"
               if any(k.startswith(("encoder.", "decoder.", "quantizer.")) for k in sd) else ""))
    codec = detect_codec(sd)
    return validate_lm_state_dict(sd, codec), codec


def load_lm_checkpoint(path: str, allow_unsafe_pickle: bool = False):
    """File -> (validated float32 state_dict, codec name, source info dict)."""
    path = ckpt.resolve_checkpoint_path(path)
    raw = ckpt.read_checkpoint_file(path, allow_unsafe_pickle)
    sd, codec = load_lm_state_dict_object(raw, path)
    return sd, codec, ckpt.file_source("official", path)


def is_lm_checkpoint_file(path: str, allow_unsafe_pickle: bool = False) -> bool:
    """Whether `path` reads as a state_dict with the LM's names (False for anything unreadable)."""
    try:
        return looks_like_lm(ckpt.read_checkpoint_file(path, allow_unsafe_pickle))
    except Exception:  # noqa: BLE001 - the codec path reports unreadable files
        return False


def build_lm(sd: Dict[str, torch.Tensor], codec: str) -> "lm_ts.EncodecLM":
    model = lm_ts.build(codec)
    model.load_state_dict(sd, strict=True)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


# Scale of the random output heads: logits with a standard deviation of about LOGIT_STD, so the random LM's
# distributions are peaked (top probabilities of 0.05-0.5, tails far below the coder's 1e-8 round-off) and the
# tests exercise wide and minimal CDF ranges alike.
LOGIT_STD = 3.0


def make_random_lm_state_dict(seed: int, codec: str) -> "OrderedDict[str, torch.Tensor]":
    """Seeded random weights with exactly the names/shapes of Meta's LM checkpoint for `codec`.

    Drawn in layout order from one torch.Generator (deterministic for a seed on a given machine).
    """
    gen = torch.Generator().manual_seed(int(seed))
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for name, shape in lm_layout(codec).items():
        z = torch.randn(shape, generator=gen, dtype=torch.float32)
        if re.search(r"norm(_in|1|2)\.weight$", name):
            t = 1.0 + 0.1 * z
        elif re.search(r"norm(_in|1|2)\.bias$", name):
            t = 0.1 * z
        elif name.startswith("emb."):
            t = z
        elif name.startswith("linears.") and name.endswith(".weight"):
            t = z * (LOGIT_STD / shape[1] ** 0.5)
        elif name.startswith("linears.") and name.endswith(".bias"):
            t = z
        elif len(shape) == 2:  # attention / feed-forward matrices [out, in]
            t = z / shape[1] ** 0.5
        else:  # their biases
            t = 0.02 * z
        out[name] = t.contiguous()
    return out
