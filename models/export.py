#!/usr/bin/env python3
"""Export EnCodec (24 kHz mono or 48 kHz stereo) to one TorchScript file for encodec-native.

  /usr/bin/python3 models/export.py --checkpoint encodec_24khz-d7cc33bc.th --out encodec24.pt
  /usr/bin/python3 models/export.py --checkpoint encodec_48khz-7e698e3e.th --out encodec48.pt
  /usr/bin/python3 models/export.py --checkpoint model.safetensors --out encodec24.pt   # Hugging Face
  /usr/bin/python3 models/export.py --random --seed 0 --out random0.pt [--checkpoint-out random0.th]
  /usr/bin/python3 models/export.py --random --name encodec_48khz --seed 0 --out random48.pt
  /usr/bin/python3 models/export.py --lm --checkpoint encodec_lm_24khz-1608e3c0.th --out encodec_lm_24khz.pt

The model (encodec_24khz or encodec_48khz) is detected from the checkpoint's tensors. LM checkpoints (Meta's
entropy-coding language models) are recognised and exported by export_lm.py; ``--lm`` hands every other option to
it (e.g. ``--lm --random --codec encodec_24khz --seed 0``).

The output embeds ``encodec.json`` (torch.jit extra file) with the model metadata. Exit codes:
0 ok, 1 error (message on stderr), 2 usage error.
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
import checkpoint48 as ck48  # noqa: E402
import encodec48_ts as e48  # noqa: E402
import encodec_ts as ets  # noqa: E402

EXPORTER_VERSION = "1.7.0"
FORMAT = "encodec-native-model"
FORMAT_VERSION = 1
EXTRA_FILE = "encodec.json"
MODEL_NAMES = ("encodec_24khz", e48.NAME)


def _bw_key(b: float) -> str:
    return ("%g" % b)


def build_metadata(source: dict) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": "encodec_24khz",
        "sample_rate": ets.SAMPLE_RATE,
        "channels": ets.CHANNELS,
        "frame_rate": ets.FRAME_RATE,
        "hop_length": ets.HOP_LENGTH,
        "bandwidths": [1.5, 3, 6, 12, 24],
        "codebooks_per_bandwidth": {_bw_key(b): ets.n_q_for_bandwidth(b) for b in ets.BANDWIDTHS},
        "max_codebooks": ets.MAX_CODEBOOKS,
        "codebook_size": ets.CODEBOOK_SIZE,
        "dimension": ets.DIMENSION,
        "source": {
            "kind": source.get("kind"),
            "file": source.get("file"),
            "sha256": source.get("sha256"),
            "seed": source.get("seed"),
        },
        "exporter_version": EXPORTER_VERSION,
        # a CPU batch runs the convolutions clip by clip and the LSTM over the whole batch (encodec_ts.py), so
        # batching chunked windows pays off; older exports batch every layer and prefer one window per call
        "cpu_batching": "lstm",
        # encode_span / decode_span: chunked coding of a whole span per call, convolutions run once over it
        "span_methods": True,
        # the CPU LSTM runs in segments of this many steps (exporter 1.3): a span call holds less, so spans can be longer
        "lstm_segment_steps": ets.LSTM_SEGMENT_STEPS,
        # encode_spans / decode_spans (exporter 1.6): several spans per call, of one clip or many, their LSTM
        # windows padded to multiples of this many frames and pooled (1.7: packed end to end into full rows)
        "pooled_span_quantum": ets.WINDOW_QUANTUM,
        # latents_span: the encoder's output before quantization of a span (exporter 1.5), for codec.latents()
        "latents_span": True,
        "torch_version": torch.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        .isoformat().replace("+00:00", "Z"),
    }


def build_metadata48(source: dict) -> dict:
    """Metadata of an encodec_48khz export: the 24 kHz keys plus the segment geometry (Meta's segment = 1 s,
    overlap = 1 %) and the normalisation that makes the codes carry one scale per segment."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": e48.NAME,
        "sample_rate": e48.SAMPLE_RATE,
        "channels": e48.CHANNELS,
        "frame_rate": e48.FRAME_RATE,
        "hop_length": e48.HOP_LENGTH,
        "bandwidths": [3, 6, 12, 24],
        "codebooks_per_bandwidth": {_bw_key(b): e48.n_q_for_bandwidth(b) for b in e48.BANDWIDTHS},
        "max_codebooks": e48.MAX_CODEBOOKS,
        "codebook_size": e48.CODEBOOK_SIZE,
        "dimension": e48.DIMENSION,
        "segment": e48.SEGMENT_SECONDS,
        "overlap": e48.OVERLAP,
        "segment_samples": e48.SEGMENT_SAMPLES,
        "segment_stride": e48.SEGMENT_STRIDE,
        "normalize": True,
        "source": {
            "kind": source.get("kind"),
            "file": source.get("file"),
            "sha256": source.get("sha256"),
            "seed": source.get("seed"),
        },
        "exporter_version": EXPORTER_VERSION,
        # encode_segments / decode_segments: one segment per batch row, codes with their scales
        "segment_methods": True,
        "cpu_batching": "lstm",
        "torch_version": torch.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        .isoformat().replace("+00:00", "Z"),
    }


@torch.no_grad()
def sanity_check48(scripted) -> None:
    gen = torch.Generator().manual_seed(1234)
    wav = (torch.rand(2, e48.CHANNELS, e48.SEGMENT_SAMPLES, generator=gen) * 2 - 1) * 0.1
    codes, scales = scripted.encode_segments(wav, e48.MAX_CODEBOOKS)
    frames = e48.SEGMENT_FRAMES
    if tuple(codes.shape) != (2, e48.MAX_CODEBOOKS, frames) or codes.dtype != torch.int64:
        raise RuntimeError("sanity check: encode_segments returned %s %s" % (tuple(codes.shape), codes.dtype))
    if tuple(scales.shape) != (2,) or scales.dtype != torch.float32:
        raise RuntimeError("sanity check: encode_segments returned scales %s %s" % (tuple(scales.shape), scales.dtype))
    out = scripted.decode_segments(codes.to(torch.int16), scales)
    if tuple(out.shape) != (2, e48.CHANNELS, frames * e48.HOP_LENGTH) or out.dtype != torch.float32:
        raise RuntimeError("sanity check: decode_segments returned %s %s" % (tuple(out.shape), out.dtype))
    if not bool(torch.isfinite(out).all()):
        raise RuntimeError("sanity check: decoded audio is not finite")


def load_any_checkpoint(path: str, allow_unsafe_pickle: bool):
    """File -> (model name, validated official-layout state_dict, source info), the model told by its tensors."""
    path = ckpt.resolve_checkpoint_path(path)
    raw = ckpt.read_checkpoint_file(path, allow_unsafe_pickle)
    if ck48.is_48k(raw):
        sd, source = ck48.load_raw(raw, path)
        return e48.NAME, sd, source
    sd, source = ckpt.load_raw(raw, path)
    return "encodec_24khz", sd, source


def export48(args) -> dict:
    if args.random:
        import random_checkpoint48 as rc48
        sd_random = rc48.make_random_state_dict(args.seed)
        raw = ckpt.serialize_state_dict(sd_random)
        sd, _layout = ck48.load_state_dict_object(sd_random, "random state_dict")
        source = {"kind": "random", "file": None, "sha256": hashlib.sha256(raw).hexdigest(), "seed": args.seed}
        if args.checkpoint_out:
            rc48.save_checkpoint(sd_random, args.checkpoint_out, args.layout)
    else:
        sd, source = args.loaded
    scripted = torch.jit.script(ck48.build_ts_model(sd).prepare())
    if not args.skip_sanity_check:
        sanity_check48(scripted)
    metadata = build_metadata48(source)
    save_atomic(scripted, args.out, metadata)
    return metadata


def script_model(sd_official) -> torch.jit.ScriptModule:
    model = ckpt.build_ts_model(sd_official)
    return torch.jit.script(model.prepare())


@torch.no_grad()
def sanity_check(scripted) -> None:
    gen = torch.Generator().manual_seed(1234)
    wav = (torch.rand(1, 1, ets.SAMPLE_RATE, generator=gen) * 2 - 1) * 0.1
    codes = scripted.encode(wav, ets.MAX_CODEBOOKS)
    frames = -(-ets.SAMPLE_RATE // ets.HOP_LENGTH)
    if tuple(codes.shape) != (1, ets.MAX_CODEBOOKS, frames) or codes.dtype != torch.int64:
        raise RuntimeError("sanity check: encode returned %s %s" % (tuple(codes.shape), codes.dtype))
    out = scripted.decode(codes.to(torch.int16))
    if tuple(out.shape) != (1, 1, frames * ets.HOP_LENGTH) or out.dtype != torch.float32:
        raise RuntimeError("sanity check: decode returned %s %s" % (tuple(out.shape), out.dtype))
    if not bool(torch.isfinite(out).all()):
        raise RuntimeError("sanity check: decoded audio is not finite")


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


def read_metadata(model_path: str) -> dict:
    extra = {EXTRA_FILE: ""}
    torch.jit.load(model_path, map_location="cpu", _extra_files=extra)
    return json.loads(extra[EXTRA_FILE])


def export(args) -> dict:
    args.loaded = None
    if not args.random:
        name, sd, source = load_any_checkpoint(args.checkpoint, args.allow_unsafe_pickle)
        if args.name is not None and args.name != name:
            raise ckpt.CheckpointError("%s holds an %s checkpoint, not %s (drop --name: the model is detected "
                                       "from the checkpoint)" % (args.checkpoint, name, args.name))
        args.name = name
        args.loaded = (sd, source)
    if args.name == e48.NAME:
        return export48(args)
    if args.random:
        import random_checkpoint as rc
        sd_random = rc.make_random_state_dict(args.seed)
        raw = ckpt.serialize_state_dict(sd_random)
        # same loading path as a file: normalise + validate + fold
        sd, _layout = ckpt.load_state_dict_object(sd_random, "random state_dict")
        source = {"kind": "random", "file": None, "sha256": hashlib.sha256(raw).hexdigest(), "seed": args.seed}
        if args.checkpoint_out:
            rc.save_checkpoint(sd_random, args.checkpoint_out, args.layout)
    else:
        sd, source = args.loaded
    scripted = script_model(sd)
    if not args.skip_sanity_check:
        sanity_check(scripted)
    metadata = build_metadata(source)
    save_atomic(scripted, args.out, metadata)
    return metadata


def _is_torchscript(path: str) -> bool:
    """Whether `path` is a TorchScript archive (code/ entries): torch.load would run it via torch.jit.load."""
    import zipfile
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in "/" + n or n.endswith("constants.pkl") for n in z.namelist())


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--lm" in argv:
        import export_lm
        return export_lm.main([a for a in argv if a != "--lm"])
    ap = argparse.ArgumentParser(
        prog="export.py",
        description="Export EnCodec 24 kHz or 48 kHz (official .th, Hugging Face safetensors/bin, or seeded "
                    "random weights) to a TorchScript file for encodec-native.")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="FILE", help="encodec_24khz / encodec_48khz .th/.pt, HF model.safetensors "
                     "or pytorch_model.bin (the model is detected)")
    src.add_argument("--random", action="store_true", help="seeded random weights (for tests)")
    ap.add_argument("--out", metavar="MODEL.pt", required=True, help="output TorchScript file (written atomically)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    ap.add_argument("--name", choices=MODEL_NAMES, default=None,
                    help="with --random: which model (default encodec_24khz); with --checkpoint: the model it must hold")
    ap.add_argument("--checkpoint-out", metavar="FILE", help="with --random: also save the random checkpoint "
                    "(.th/.pt/.bin via torch.save, or .safetensors)")
    ap.add_argument("--layout", choices=["official", "huggingface"], default="official",
                    help="tensor names for --checkpoint-out (default official)")
    ap.add_argument("--print-metadata", action="store_true", help="print the embedded JSON to stdout")
    ap.add_argument("--allow-unsafe-pickle", action="store_true",
                    help="load .th/.bin with full pickle (only for trusted files; default is weights_only)")
    ap.add_argument("--skip-sanity-check", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    ap.add_argument("--lm", action="store_true", help="export an entropy-coding LM (options of export_lm.py; "
                    "LM checkpoints are also recognised without it)")
    args = ap.parse_args(argv)
    if args.checkpoint and _is_torchscript(args.checkpoint):
        print("export.py: error: %s is already a model file (a TorchScript archive), not a checkpoint: use it "
              "directly, or export from the checkpoint it came from" % args.checkpoint, file=sys.stderr)
        return 1
    if args.checkpoint:
        import lm_checkpoint
        if lm_checkpoint.is_lm_checkpoint_file(args.checkpoint, args.allow_unsafe_pickle):
            import export_lm
            rest = ["--checkpoint", args.checkpoint, "--out", args.out]
            for flag in ("print_metadata", "allow_unsafe_pickle", "skip_sanity_check", "quiet"):
                if getattr(args, flag):
                    rest.append("--" + flag.replace("_", "-"))
            return export_lm.main(rest)
    if args.checkpoint_out and not args.random:
        ap.error("--checkpoint-out requires --random")
    if args.random and args.seed < 0:
        ap.error("--seed must be >= 0")
    if args.random and args.name is None:
        args.name = "encodec_24khz"
    t0 = time.time()
    try:
        metadata = export(args)
    except ckpt.CheckpointError as e:
        print("export.py: error: %s" % e, file=sys.stderr)
        return 1
    except (OSError, RuntimeError, ValueError) as e:
        print("export.py: error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    if args.print_metadata:
        print(json.dumps(metadata, indent=2))
    if not args.quiet:
        print("export.py: wrote %s (%.1f MB, %s, %.1f s)" % (
            args.out, os.path.getsize(args.out) / 1e6, metadata["source"]["kind"], time.time() - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
