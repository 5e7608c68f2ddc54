"""What every export shares (export.py for the codecs, export_lm.py for the LMs): the command line's common options,
the metadata envelope, the atomic writes and the run that reports success or one error."""

import argparse
import datetime
import hashlib
import json
import os
import sys
import time
from collections import OrderedDict
from typing import Callable, Dict

import torch

try:  # package-relative or script-relative import
    from . import checkpoint as ckpt
    from . import safetensors_io
except ImportError:  # pragma: no cover - when exporter/ is on sys.path
    import checkpoint as ckpt
    import safetensors_io

FORMAT = "encodec-native-model"
FORMAT_VERSION = 1
EXTRA_FILE = "encodec.json"


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """write(tmp) into a temporary file beside `path`, then renamed over it: a failed or interrupted write never
    leaves a partial file."""
    out_dir = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(out_dir):
        raise ckpt.CheckpointError("output directory does not exist: %s" % out_dir)
    tmp = os.path.join(out_dir, ".%s.tmp-%d" % (os.path.basename(path), os.getpid()))
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_model(scripted, out_path: str, metadata: dict) -> None:
    """The TorchScript file with its metadata as the extra file encodec.json."""
    extra = {EXTRA_FILE: json.dumps(metadata, indent=2)}
    write_atomic(out_path, lambda tmp: torch.jit.save(scripted, tmp, _extra_files=extra))


def save_state_dict(sd: Dict[str, torch.Tensor], path: str) -> None:
    """A checkpoint: .safetensors, or torch.save of an OrderedDict (.th/.pt/.bin, Meta's and Hugging Face's)."""
    if path.endswith(".safetensors"):
        data = safetensors_io.save_bytes(sd, {"format": "pt"})

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                f.write(data)
        write_atomic(path, write)
    else:
        write_atomic(path, lambda tmp: torch.save(OrderedDict(sd), tmp))


def random_source(sd: Dict[str, torch.Tensor], seed: int) -> dict:
    """The metadata's source of seeded random weights: the SHA-256 of the state_dict serialised to memory."""
    raw = ckpt.serialize_state_dict(sd)
    return {"kind": "random", "file": None, "sha256": hashlib.sha256(raw).hexdigest(), "seed": seed}


def metadata(body: dict, source: dict, exporter_version: str, capabilities: dict) -> dict:
    """The encodec.json of an export: format, the model's description (`body`), its source, the exporter's version,
    what the module offers (`capabilities`), torch's version and the time of export, in that order."""
    out = {"format": FORMAT, "format_version": FORMAT_VERSION}
    out.update(body)
    out["source"] = {k: source.get(k) for k in ("kind", "file", "sha256", "seed")}
    out["exporter_version"] = exporter_version
    out.update(capabilities)
    out["torch_version"] = torch.__version__
    out["created"] = (datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
                      .isoformat().replace("+00:00", "Z"))
    return out


def parser(prog: str, description: str, checkpoint_help: str, out_metavar: str,
           checkpoint_out_help: str) -> argparse.ArgumentParser:
    """The options every exporter has; the caller adds its own."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="FILE", help=checkpoint_help)
    src.add_argument("--random", action="store_true", help="seeded random weights (for tests)")
    ap.add_argument("--out", metavar=out_metavar, required=True, help="output TorchScript file (written atomically)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    ap.add_argument("--checkpoint-out", metavar="FILE", help=checkpoint_out_help)
    ap.add_argument("--print-metadata", action="store_true", help="print the embedded JSON to stdout")
    ap.add_argument("--allow-unsafe-pickle", action="store_true",
                    help="load .th/.bin with full pickle (only for trusted files; default is weights_only)")
    ap.add_argument("--skip-sanity-check", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    return ap


def check_common(ap: argparse.ArgumentParser, args) -> None:
    if args.checkpoint_out and not args.random:
        ap.error("--checkpoint-out requires --random")
    if args.random and args.seed < 0:
        ap.error("--seed must be >= 0")


def run(prog: str, args, export: Callable[[object], dict], describe: Callable[[dict], str]) -> int:
    """export(args) -> metadata, reported: exit status 0, or 1 with one message on stderr."""
    t0 = time.time()
    try:
        meta = export(args)
    except ckpt.CheckpointError as e:
        print("%s: error: %s" % (prog, e), file=sys.stderr)
        return 1
    except (OSError, RuntimeError, ValueError) as e:
        print("%s: error: %s: %s" % (prog, type(e).__name__, e), file=sys.stderr)
        return 1
    if args.print_metadata:
        print(json.dumps(meta, indent=2))
    if not args.quiet:
        print("%s: wrote %s (%.1f MB, %s, %.1f s)" % (
            prog, args.out, os.path.getsize(args.out) / 1e6, describe(meta), time.time() - t0), file=sys.stderr)
    return 0
