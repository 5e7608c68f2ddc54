#!/usr/bin/env python3
"""Export Meta's EnCodec entropy-coding LM to one TorchScript file for encodec-native (`compress --lm`).

  /usr/bin/python3 exporter/export_lm.py --checkpoint encodec_lm_24khz-1608e3c0.th --out encodec_lm_24khz.pt
  /usr/bin/python3 exporter/export_lm.py --checkpoint encodec_lm_48khz-7add9fc3.th --out encodec_lm_48khz.pt
  /usr/bin/python3 exporter/export_lm.py --random --codec encodec_24khz --seed 0 --out lm0.pt [--checkpoint-out lm0.th]

The codec an LM belongs to is detected from the checkpoint (32 codebooks: encodec_24khz, 16: encodec_48khz).
The output embeds ``encodec.json`` (kind "lm"). Exit codes: 0 ok, 1 error (message on stderr), 2 usage error.
`exporter/export.py` hands LM checkpoints (and `--lm`) over to this script.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint as ckpt  # noqa: E402
import export_common as common  # noqa: E402
import lm_checkpoint as lmc  # noqa: E402
import lm_ts  # noqa: E402

EXPORTER_VERSION = "1.0.0"


def build_metadata(codec: str, source: dict) -> dict:
    spec = lm_ts.CODECS[codec]
    return common.metadata({
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
    }, source, EXPORTER_VERSION, {})


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


def export(args) -> dict:
    if args.random:
        codec = args.codec
        sd = lmc.make_random_lm_state_dict(args.seed, codec)
        source = common.random_source(sd, args.seed)
        sd, codec = lmc.load_lm_state_dict_object(sd, "random LM state_dict")  # the file path's checks
        if args.checkpoint_out:
            common.save_state_dict(sd, args.checkpoint_out)  # Meta's format: torch.save of the state_dict
    else:
        sd, codec, source = lmc.load_lm_checkpoint(args.checkpoint, allow_unsafe_pickle=args.allow_unsafe_pickle)
        if args.codec and args.codec != codec:
            raise ckpt.CheckpointError("%s is the LM of %s, not of %s" % (args.checkpoint, codec, args.codec))
    scripted = torch.jit.script(lmc.build_lm(sd, codec))
    if not args.skip_sanity_check:
        sanity_check(scripted, codec)
    metadata = build_metadata(codec, source)
    common.save_model(scripted, args.out, metadata)
    return metadata


def main(argv=None) -> int:
    ap = common.parser(
        "export_lm.py",
        "Export Meta's EnCodec entropy-coding language model (encodec_lm_24khz / encodec_lm_48khz .th, or seeded "
        "random weights) to a TorchScript file for encodec-native.",
        "encodec_lm_24khz-1608e3c0.th or encodec_lm_48khz-7add9fc3.th", "LM.pt",
        "with --random: also save the random checkpoint (Meta's layout, torch.save)")
    ap.add_argument("--codec", choices=sorted(lm_ts.CODECS), help="the codec of the LM: required with --random; "
                    "with --checkpoint, checked against the file")
    args = ap.parse_args(argv)
    common.check_common(ap, args)
    if args.random and not args.codec:
        ap.error("--random requires --codec encodec_24khz or encodec_48khz")
    return common.run("export_lm.py", args, export,
                      lambda metadata: "%s LM of %s" % (metadata["source"]["kind"], metadata["codec"]))


if __name__ == "__main__":
    sys.exit(main())
