#!/usr/bin/env python3
"""Export Meta's EnCodec entropy-coding LM to one TorchScript file for encodec-native (`compress --lm`).

  /usr/bin/python3 models/export_lm.py --checkpoint encodec_lm_24khz-1608e3c0.th --out encodec_lm_24khz.pt
  /usr/bin/python3 models/export_lm.py --checkpoint encodec_lm_48khz-7add9fc3.th --out encodec_lm_48khz.pt
  /usr/bin/python3 models/export_lm.py --random --codec encodec_24khz --seed 0 --out lm0.pt [--checkpoint-out lm0.th]

The codec an LM belongs to is detected from the checkpoint (32 codebooks: encodec_24khz, 16: encodec_48khz).
The output embeds ``encodec.json`` (kind "lm"). Exit codes: 0 ok, 1 error (message on stderr), 2 usage error.
`models/export.py` hands LM checkpoints (and `--lm`) over to this script.
"""

import argparse
import datetime
import hashlib
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint as ckpt  # noqa: E402
import lm_checkpoint as lmc  # noqa: E402
import lm_ts  # noqa: E402

EXPORTER_VERSION = "1.0.0"
FORMAT = "encodec-native-model"
FORMAT_VERSION = 1
EXTRA_FILE = "encodec.json"


def build_metadata(codec: str, source: dict) -> dict:
    spec = lm_ts.CODECS[codec]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "lm",
        "model": spec["lm_model"],
        "codec": codec,
        "sample_rate": spec["sample_rate"],
        "frame_rate": spec["frame_rate"],
        "n_q": spec["n_q"],
        "card": lm_ts.CARD,
        "dim": lm_ts.DIM,
        "num_layers": lm_ts.NUM_LAYERS,
        "num_heads": lm_ts.NUM_HEADS,
        "past_context": lm_ts.past_context_for(spec["frame_rate"]),
        "source": {
            "kind": source.get("kind"),
            "file": source.get("file"),
            "sha256": source.get("sha256"),
            "seed": source.get("seed"),
        },
        "exporter_version": EXPORTER_VERSION,
        "torch_version": torch.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        .isoformat().replace("+00:00", "Z"),
    }


@torch.no_grad()
def sanity_check(scripted, codec: str) -> None:
    n_q = lm_ts.CODECS[codec]["n_q"]
    gen = torch.Generator().manual_seed(1234)
    states = None
    offset = 0
    indices = torch.zeros(1, n_q, 1, dtype=torch.long)
    for _ in range(3):
        probas, states, offset = scripted.step(indices, states, offset)
        if tuple(probas.shape) != (1, lm_ts.CARD, n_q, 1) or probas.dtype != torch.float32:
            raise RuntimeError("sanity check: step returned %s %s" % (tuple(probas.shape), probas.dtype))
        if not bool(torch.isfinite(probas).all()) or abs(float(probas[0, :, 0, 0].sum()) - 1.0) > 1e-4:
            raise RuntimeError("sanity check: the probabilities are not finite or do not sum to 1")
        indices = 1 + torch.randint(0, lm_ts.CARD, (1, n_q, 1), generator=gen)
    if offset != 3:
        raise RuntimeError("sanity check: offset %d after 3 steps" % offset)


def save_atomic(scripted, out_path: str, metadata: dict) -> None:
    out_dir = os.path.dirname(os.path.abspath(out_path))
    if not os.path.isdir(out_dir):
        raise ckpt.CheckpointError("output directory does not exist: %s" % out_dir)
    tmp = os.path.join(out_dir, ".%s.tmp-%d" % (os.path.basename(out_path), os.getpid()))
    try:
        torch.jit.save(scripted, tmp, _extra_files={EXTRA_FILE: json.dumps(metadata, indent=2)})
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export(args) -> dict:
    if args.random:
        codec = args.codec
        sd = lmc.make_random_lm_state_dict(args.seed, codec)
        raw = ckpt.serialize_state_dict(sd)
        sd, codec = lmc.load_lm_state_dict_object(sd, "random LM state_dict")  # the file path's checks
        source = {"kind": "random", "file": None, "sha256": hashlib.sha256(raw).hexdigest(), "seed": args.seed}
        if args.checkpoint_out:
            save_checkpoint(sd, args.checkpoint_out)
    else:
        sd, codec, source = lmc.load_lm_checkpoint(args.checkpoint, allow_unsafe_pickle=args.allow_unsafe_pickle)
        if args.codec and args.codec != codec:
            raise ckpt.CheckpointError("%s is the LM of %s, not of %s" % (args.checkpoint, codec, args.codec))
    scripted = torch.jit.script(lmc.build_lm(sd, codec))
    if not args.skip_sanity_check:
        sanity_check(scripted, codec)
    metadata = build_metadata(codec, source)
    save_atomic(scripted, args.out, metadata)
    return metadata


def save_checkpoint(sd, path: str) -> None:
    """Meta's format: torch.save of the plain state_dict (written atomically)."""
    out_dir = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(out_dir, ".%s.tmp-%d" % (os.path.basename(path), os.getpid()))
    try:
        torch.save(sd, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="export_lm.py",
        description="Export Meta's EnCodec entropy-coding language model (encodec_lm_24khz / encodec_lm_48khz "
                    ".th, or seeded random weights) to a TorchScript file for encodec-native.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="FILE", help="encodec_lm_24khz-1608e3c0.th or encodec_lm_48khz-7add9fc3.th")
    src.add_argument("--random", action="store_true", help="seeded random weights (for tests)")
    ap.add_argument("--out", metavar="LM.pt", required=True, help="output TorchScript file (written atomically)")
    ap.add_argument("--codec", choices=sorted(lm_ts.CODECS), help="the codec of the LM: required with --random; "
                    "with --checkpoint, checked against the file")
    ap.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    ap.add_argument("--checkpoint-out", metavar="FILE", help="with --random: also save the random checkpoint "
                    "(Meta's layout, torch.save)")
    ap.add_argument("--print-metadata", action="store_true", help="print the embedded JSON to stdout")
    ap.add_argument("--allow-unsafe-pickle", action="store_true",
                    help="load the .th with full pickle (only for trusted files; default is weights_only)")
    ap.add_argument("--skip-sanity-check", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    args = ap.parse_args(argv)
    if args.checkpoint_out and not args.random:
        ap.error("--checkpoint-out requires --random")
    if args.random and not args.codec:
        ap.error("--random requires --codec encodec_24khz or encodec_48khz")
    if args.random and args.seed < 0:
        ap.error("--seed must be >= 0")
    t0 = time.time()
    try:
        metadata = export(args)
    except ckpt.CheckpointError as e:
        print("export_lm.py: error: %s" % e, file=sys.stderr)
        return 1
    except (OSError, RuntimeError, ValueError) as e:
        print("export_lm.py: error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    if args.print_metadata:
        print(json.dumps(metadata, indent=2))
    if not args.quiet:
        print("export_lm.py: wrote %s (%.1f MB, %s LM of %s, %.1f s)" % (
            args.out, os.path.getsize(args.out) / 1e6, metadata["source"]["kind"], metadata["codec"],
            time.time() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
