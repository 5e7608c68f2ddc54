#!/usr/bin/env python3
"""CUDA / newer-torch checks for an exported model (run on a machine with a GPU).

  python3 scripts/gpu_check.py [--model MODEL.pt | --seed 0] [--audio audio.npy]
        [--code-only OLD_EXPORT.pt]

--model: an exported file; otherwise one is exported here with --random --seed (the local torch).
--code-only: a file exported elsewhere (e.g. by torch 1.13, weights may be zero): its serialized code is
  loaded here, its buffers are overwritten with --model's, and its outputs must equal --model's
  (checks that the TorchScript code written by the exporting torch runs in this torch).
CUDA runs twice: torch defaults, then the settings recommended for the addon (TF32 off for cuDNN and
cuBLAS, cudnn.deterministic, benchmark off, TensorExpr fuser off).
Checks: module.to('cuda') after CPU load and map_location='cuda' both work; CUDA vs CPU codes agreement
and decode SNR; concurrent calls from several threads on one module give the serial results; timings.
Prints one JSON object.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def snr(a, b):
    a, b = a.double().cpu(), b.double().cpu()
    e = float((a - b).pow(2).sum())
    return 999.0 if e == 0 else min(999.0, 10 * math.log10(float(a.pow(2).sum()) / e))


def timed(fn, reps=3, cuda=False):
    fn()
    if cuda:
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        t = time.time()
        fn()
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.time() - t)
    return round(best, 4)


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--audio")
    ap.add_argument("--code-only")
    args = ap.parse_args()
    res = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    tmp = tempfile.mkdtemp()
    model_path = args.model
    if not model_path:
        model_path = os.path.join(tmp, "m.pt")
        t = time.time()
        subprocess.run([sys.executable, os.path.join(ROOT, "exporter", "export.py"), "--random", "--seed",
                        str(args.seed), "--out", model_path, "--quiet"], check=True)
        res["export_seconds_here"] = round(time.time() - t, 2)
    if args.audio:
        wav = torch.from_numpy(np.load(args.audio).astype(np.float32)).view(1, 1, -1)
    else:
        g = torch.Generator().manual_seed(0)
        t = torch.arange(240000) / 24000.0
        wav = (0.2 * torch.sin(2 * math.pi * 220 * t) + 0.05 * torch.randn(240000, generator=g)).view(1, 1, -1)
    res["audio_seconds"] = wav.shape[-1] / 24000.0

    cpu = torch.jit.load(model_path, map_location="cpu").eval()
    codes_cpu = cpu.encode(wav, 32)
    audio_cpu = cpu.decode(codes_cpu)
    res["cpu_threads"] = torch.get_num_threads()
    res["cpu_encode_s"] = timed(lambda: cpu.encode(wav, 32), 2)
    res["cpu_decode_s"] = timed(lambda: cpu.decode(codes_cpu), 2)

    if args.code_only:
        old = torch.jit.load(args.code_only, map_location="cpu").eval()
        src = dict(cpu.named_buffers())
        for name, buf in old.named_buffers():
            buf.copy_(src[name])
        res["code_only_codes_equal"] = bool(torch.equal(old.encode(wav, 32), codes_cpu))
        res["code_only_decode_snr_db"] = snr(audio_cpu, old.decode(codes_cpu))

    direct = None
    if torch.cuda.is_available():
        import warnings
        for strict in (False, True):
            torch.backends.cudnn.allow_tf32 = not strict
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.deterministic = strict
            torch.backends.cudnn.benchmark = False
            # the TensorExpr fuser kicks in after the profiling runs and changes results bitwise
            torch._C._jit_set_texpr_fuser_enabled(not strict)
            r = res["cuda_recommended" if strict else "cuda_defaults"] = {}
            moved = torch.jit.load(model_path, map_location="cpu").eval()
            moved.to("cuda")
            direct = torch.jit.load(model_path, map_location="cuda").eval()
            wg = wav.cuda()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for label, m in (("to_cuda", moved), ("map_location_cuda", direct)):
                    c = m.encode(wg, 32)
                    r[label + "_codes_device"] = str(c.device)
                    r[label + "_codes_equal_fraction_vs_cpu"] = float((c.cpu() == codes_cpu).double().mean())
                    a = m.decode(codes_cpu.cuda())
                    r[label + "_decode_snr_db_vs_cpu"] = snr(audio_cpu, a)
                    r[label + "_decode_int16_equal"] = bool(torch.equal(a, m.decode(codes_cpu.to(torch.int16).cuda())))
                    r[label + "_encode_repeat_equal"] = bool(torch.equal(c, m.encode(wg, 32)))
            r["warnings"] = sorted({str(w.message)[:120] for w in caught})
            if args.code_only:
                old.to("cuda")
                r["code_only_cuda_decode_snr_db_vs_cpu"] = snr(audio_cpu, old.decode(codes_cpu.cuda()))
                old.to("cpu")
            r["encode_s"] = timed(lambda: direct.encode(wg, 32), 3, cuda=True)
            r["decode_s"] = timed(lambda: direct.decode(codes_cpu.cuda()), 3, cuda=True)
            wb = wg.repeat(8, 1, 1)
            r["encode_batch8_s"] = timed(lambda: direct.encode(wb, 32), 2, cuda=True)
            w60 = wg.repeat(1, 1, 6)
            r["encode_60s_s"] = timed(lambda: direct.encode(w60, 32), 2, cuda=True)
            c60 = direct.encode(w60, 32)
            r["decode_60s_s"] = timed(lambda: direct.decode(c60), 2, cuda=True)
        try:
            direct.decode(torch.full((1, 2, 3), 5000, dtype=torch.int64, device="cuda"))
            res["cuda_bad_codes_error"] = None
        except Exception as e:
            res["cuda_bad_codes_error"] = str(e).strip().splitlines()[-1]
        res["cuda_ok_after_error"] = bool(torch.equal(direct.encode(wg, 8), direct.encode(wg, 8)))

    # thread safety: 4 threads calling the same module concurrently
    for label, m, dev in [("cpu", cpu, "cpu")] + ([("cuda", direct, "cuda")] if torch.cuda.is_available() else []):
        clips = [wav[:, :, i * 24000:(i + 2) * 24000].to(dev) for i in range(4)]
        serial = [m.encode(c, 32).cpu() for c in clips]
        out = [None] * 4

        def work(i):
            with torch.no_grad():
                for _ in range(3):
                    out[i] = m.encode(clips[i], 32).cpu()

        ths = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        res["threads_%s_equal_serial" % label] = all(torch.equal(a, b) for a, b in zip(serial, out))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
