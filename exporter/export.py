#!/usr/bin/env python3
"""Export EnCodec (24 kHz mono or 48 kHz stereo) to one TorchScript file for encodec-native.

  /usr/bin/python3 exporter/export.py --checkpoint encodec_24khz-d7cc33bc.th --out encodec24.pt
  /usr/bin/python3 exporter/export.py --checkpoint encodec_48khz-7e698e3e.th --out encodec48.pt
  /usr/bin/python3 exporter/export.py --checkpoint model.safetensors --out encodec24.pt   # Hugging Face
  /usr/bin/python3 exporter/export.py --random --seed 0 --out random0.pt [--checkpoint-out random0.th]
  /usr/bin/python3 exporter/export.py --random --name encodec_48khz --seed 0 --out random48.pt
  /usr/bin/python3 exporter/export.py --lm --checkpoint encodec_lm_24khz-1608e3c0.th --out encodec_lm_24khz.pt

The model (encodec_24khz or encodec_48khz) is detected from the checkpoint's tensors. LM checkpoints (Meta's
entropy-coding language models) are recognised and exported by export_lm.py; ``--lm`` hands every other option to
it (e.g. ``--lm --random --codec encodec_24khz --seed 0``).

The output embeds ``encodec.json`` (torch.jit extra file) with the model metadata. Exit codes:
0 ok, 1 error (message on stderr), 2 usage error.
"""

import importlib
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint as ckpt  # noqa: E402
import checkpoint48 as ck48  # noqa: E402
import encodec48_ts as e48  # noqa: E402
import encodec_ts as ets  # noqa: E402
import export_common as common  # noqa: E402

EXPORTER_VERSION = "1.8.0"


class FamilyExport:
    """How one model family is exported: its description, what its module offers, its checkpoint module
    (load_raw, load_state_dict_object, build_ts_model, to_layout) and its random checkpoint module
    (make_random_state_dict), imported when --random needs it."""

    def __init__(self, family: ets.Family, capabilities: dict, checkpoints, random_module: str):
        self.family = family
        self.capabilities = capabilities
        self.checkpoints = checkpoints
        self.random_module = random_module


FAMILIES = {
    ets.NAME: FamilyExport(ets.ENCODEC_24KHZ, ets.CAPABILITIES, ckpt, "random_checkpoint"),
    e48.NAME: FamilyExport(e48.ENCODEC_48KHZ, e48.CAPABILITIES, ck48, "random_checkpoint48"),
}
MODEL_NAMES = tuple(FAMILIES)


def build_metadata(family: ets.Family, capabilities: dict, source: dict) -> dict:
    """The family's description, plus for a segmented family the segment geometry (Meta's segment and overlap)
    and the normalisation that makes the codes carry one scale per segment."""
    body = {
        "model": family.name,
        "sample_rate": family.sample_rate,
        "channels": family.channels,
        "frame_rate": family.frame_rate,
        "hop_length": family.hop_length,
        "bandwidths": [int(b) if b == int(b) else b for b in family.bandwidths],
        "codebooks_per_bandwidth": {"%g" % b: family.n_q_for_bandwidth(b) for b in family.bandwidths},
        "max_codebooks": family.max_codebooks,
        "codebook_size": family.codebook_size,
        "dimension": family.dimension,
    }
    if family.segment_seconds is not None:
        body.update({
            "segment": family.segment_seconds,
            "overlap": family.overlap,
            "segment_samples": family.segment_samples,
            "segment_stride": family.segment_stride,
            "normalize": True,
        })
    return common.metadata(body, source, EXPORTER_VERSION, capabilities)


@torch.no_grad()
def sanity_check(scripted, family: ets.Family) -> None:
    """1 s of noise through the scripted module with every codebook: codes and audio of the right shapes and types,
    and finite audio. A segmented family codes two segments (encode_segments / decode_segments)."""
    gen = torch.Generator().manual_seed(1234)
    segmented = family.segment_seconds is not None
    batch = 2 if segmented else 1
    wav = (torch.rand(batch, family.channels, family.sample_rate, generator=gen) * 2 - 1) * 0.1
    frames = -(-family.sample_rate // family.hop_length)
    encode, decode = ("encode_segments", "decode_segments") if segmented else ("encode", "decode")
    if segmented:
        codes, scales = scripted.encode_segments(wav, family.max_codebooks)
        if tuple(scales.shape) != (batch,) or scales.dtype != torch.float32:
            raise RuntimeError("sanity check: encode_segments returned scales %s %s" % (tuple(scales.shape),
                                                                                      scales.dtype))
    else:
        codes = scripted.encode(wav, family.max_codebooks)
    if tuple(codes.shape) != (batch, family.max_codebooks, frames) or codes.dtype != torch.int64:
        raise RuntimeError("sanity check: %s returned %s %s" % (encode, tuple(codes.shape), codes.dtype))
    if segmented:
        out = scripted.decode_segments(codes.to(torch.int16), scales)
    else:
        out = scripted.decode(codes.to(torch.int16))
    if tuple(out.shape) != (batch, family.channels, frames * family.hop_length) or out.dtype != torch.float32:
        raise RuntimeError("sanity check: %s returned %s %s" % (decode, tuple(out.shape), out.dtype))
    if not bool(torch.isfinite(out).all()):
        raise RuntimeError("sanity check: decoded audio is not finite")


def load_any_checkpoint(path: str, allow_unsafe_pickle: bool):
    """File -> (model name, validated official-layout state_dict, source info), the model told by its tensors."""
    path = ckpt.resolve_checkpoint_path(path)
    raw = ckpt.read_checkpoint_file(path, allow_unsafe_pickle)
    name = e48.NAME if ck48.is_48k(raw) else ets.NAME
    sd, source = FAMILIES[name].checkpoints.load_raw(raw, path)
    return name, sd, source


def export(args) -> dict:
    if args.random:
        spec = FAMILIES[args.name]
        # the calibration prints nothing for tens of seconds: say so first, so that it does not look stuck
        print("export.py: calibrating seeded random weights (%s, seed %d) on synthetic audio, on one thread "
              "so that a seed always gives the same bytes: up to half a minute" % (args.name, args.seed),
              file=sys.stderr, flush=True)
        random_checkpoint = importlib.import_module(spec.random_module)
        sd_random = random_checkpoint.make_random_state_dict(args.seed)
        # same loading path as a file: normalise + validate (+ fold)
        sd, _layout = spec.checkpoints.load_state_dict_object(sd_random, "random state_dict")
        source = common.random_source(sd_random, args.seed)
        if args.checkpoint_out:
            common.save_state_dict(spec.checkpoints.to_layout(sd_random, args.layout), args.checkpoint_out)
    else:
        name, sd, source = load_any_checkpoint(args.checkpoint, args.allow_unsafe_pickle)
        if args.name is not None and args.name != name:
            raise ckpt.CheckpointError("%s holds an %s checkpoint, not %s (drop --name: the model is detected "
                                       "from the checkpoint)" % (args.checkpoint, name, args.name))
        spec = FAMILIES[name]
    scripted = torch.jit.script(spec.checkpoints.build_ts_model(sd).prepare())
    if not args.skip_sanity_check:
        sanity_check(scripted, spec.family)
    metadata = build_metadata(spec.family, spec.capabilities, source)
    common.save_model(scripted, args.out, metadata)
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
    ap = common.parser(
        "export.py",
        "Export EnCodec 24 kHz or 48 kHz (official .th, Hugging Face safetensors/bin, or seeded random weights) to "
        "a TorchScript file for encodec-native.",
        "encodec_24khz / encodec_48khz .th/.pt, HF model.safetensors or pytorch_model.bin (the model is detected)",
        "MODEL.pt",
        "with --random: also save the random checkpoint (.th/.pt/.bin via torch.save, or .safetensors)")
    ap.add_argument("--name", choices=MODEL_NAMES, default=None,
                    help="with --random: which model (default encodec_24khz); with --checkpoint: the model it must hold")
    ap.add_argument("--layout", choices=["official", "huggingface"], default="official",
                    help="tensor names for --checkpoint-out (default official)")
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
    common.check_common(ap, args)
    if args.random and args.name is None:
        args.name = ets.NAME
    return common.run("export.py", args, export, lambda metadata: metadata["source"]["kind"])


if __name__ == "__main__":
    sys.exit(main())
