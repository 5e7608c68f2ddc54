#!/usr/bin/env python3
"""Times the eager 48 kHz reference encoding stereo audio the way Meta's code runs it (EncodecModel.encode on the
whole [1, 2, T] tensor: its 1 s segments one after another, batch 1), for `npm run bench`.

  /usr/bin/python3 bench/bench48.py --checkpoint random48.th --audio planar.f32 --threads 2 --bandwidth 6 \
      [--dump-codes codes.npy]

Audio: raw little-endian float32, planar (the left channel's samples, then the right's). Prints one JSON line:
seconds (wall time of model.encode), segments, frames, threads.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test", "reference"))
import encodec48_reference as ref  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--audio", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bandwidth", type=float, default=6)
    ap.add_argument("--dump-codes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = ref.load_reference(args.checkpoint)
    planar = np.fromfile(args.audio, dtype="<f4")
    wav = torch.from_numpy(planar.reshape(2, -1).copy())[None]
    n_q = model.n_q_for_bandwidth(args.bandwidth)
    with torch.no_grad():
        model.encode(wav[:, :, :48000], n_q)  # warm-up, as the addon's first call is excluded too
        start = time.time()
        frames = model.encode(wav, n_q)
        seconds = time.time() - start
    codes = torch.cat([c[0] for c, _ in frames], dim=1)
    if args.dump_codes:
        np.save(args.dump_codes, codes.numpy().astype(np.int16))
    print(json.dumps({"seconds": seconds, "segments": len(frames), "frames": int(codes.shape[1]),
                      "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
