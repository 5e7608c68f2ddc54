#!/usr/bin/env python3
"""Build (or reuse) the fixtures the Node tests compare the addon against.

  /usr/bin/python3 test/reference/prepare_fixtures.py --dir test/.cache/encodec [--seed 0] [--seconds 3]
      [--n-q 2,8,32] [--force]

Writes into --dir, then prints the manifest (also saved as manifest.json) on stdout:
  model.pt               exported TorchScript (random weights, --seed)
  checkpoint.th          the same random weights as an official-layout checkpoint
  checkpoint.safetensors the same in the Hugging Face layout
  audio.npy              float32 [T] 24 kHz test audio (speech via espeak-ng when available)
  audio.wav              the same audio as PCM16 WAV (quantized, so not bit-identical to audio.npy)
  ref_latent.npy         float32 [1,128,F] reference encoder output
  ref_codes_nqN.npy      int64 [1,N,F] reference whole-file codes for each N in --n-q
  ref_audio_nqN.npy      float32 [1,1,F*320] reference decode of those codes
  ref_embeddings_nqN.npy float32 [1,128,F] reference dequantize of those codes
Reuses an existing directory when its manifest matches (seed, seconds, n_q, hash of exporter/*.py and
test/reference/*.py); --force rebuilds. Typical cost: ~15 s (export) + a few seconds per n_q.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = sys.executable


def source_hash() -> str:
    h = hashlib.sha256()
    for d in (os.path.join(ROOT, "exporter"), HERE):
        for name in sorted(os.listdir(d)):
            if name.endswith(".py"):
                with open(os.path.join(d, name), "rb") as f:
                    h.update(name.encode() + b"\0" + f.read())
    return h.hexdigest()[:16]


def sh(args):
    p = subprocess.run([PY] + args, capture_output=True, text=True)
    if p.returncode != 0:
        sys.stderr.write(p.stderr)
        raise SystemExit("prepare_fixtures.py: failed: %s" % " ".join(args))
    return p.stdout


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--n-q", default="2,8,32")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    n_qs = [int(x) for x in args.n_q.split(",")]
    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    key = {"seed": args.seed, "seconds": args.seconds, "n_q": n_qs, "source_hash": source_hash()}
    man_path = os.path.join(d, "manifest.json")
    if not args.force and os.path.exists(man_path):
        with open(man_path) as f:
            man = json.load(f)
        if man.get("key") == key and all(os.path.exists(os.path.join(d, v)) for v in man["files"].values()):
            print(json.dumps(man, indent=1))
            return 0
    t0 = time.time()
    files = {}
    p = lambda name: os.path.join(d, name)  # noqa: E731
    sh([os.path.join(ROOT, "exporter", "export.py"), "--random", "--seed", str(args.seed), "--out", p("model.pt"),
        "--checkpoint-out", p("checkpoint.th"), "--quiet"])
    sys.path.insert(0, os.path.join(ROOT, "exporter"))
    import checkpoint as ckpt  # noqa: E402
    import random_checkpoint as rc  # noqa: E402
    sd, _info = ckpt.load_checkpoint(p("checkpoint.th"))
    rc.save_checkpoint(sd, p("checkpoint.safetensors"), "huggingface")
    files.update(model="model.pt", checkpoint_official="checkpoint.th", checkpoint_huggingface="checkpoint.safetensors")
    audio_info = json.loads(sh([os.path.join(HERE, "make_test_audio.py"), "--out", p("audio.npy"), "--wav",
                                p("audio.wav"), "--seconds", str(args.seconds), "--seed", str(args.seed)]))
    files.update(audio="audio.npy", audio_wav="audio.wav")
    for i, n in enumerate(n_qs):
        extra = ["--dump-latent", p("ref_latent.npy")] if i == 0 else []
        sh([os.path.join(HERE, "parity.py"), "--checkpoint", p("checkpoint.th"), "--audio", p("audio.npy"),
            "--n-q", str(n), "--dump-codes", p("ref_codes_nq%d.npy" % n), "--dump-audio", p("ref_audio_nq%d.npy" % n),
            "--dump-embeddings", p("ref_embeddings_nq%d.npy" % n)] + extra)
        files["ref_codes_nq%d" % n] = "ref_codes_nq%d.npy" % n
        files["ref_audio_nq%d" % n] = "ref_audio_nq%d.npy" % n
        files["ref_embeddings_nq%d" % n] = "ref_embeddings_nq%d.npy" % n
    files["ref_latent"] = "ref_latent.npy"
    frames = -(-audio_info["samples"] // 320)
    man = {"key": key, "dir": d, "files": files, "samples": audio_info["samples"], "frames": frames,
           "speech": audio_info["speech"], "sample_rate": 24000, "build_seconds": round(time.time() - t0, 1)}
    with open(man_path, "w") as f:
        json.dump(man, f, indent=1)
    print(json.dumps(man, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
