#!/usr/bin/env python3
"""End-to-end checks of the Python export side (layouts, parity, shapes, errors, timing).

  /usr/bin/python3 test/reference/selftest.py            # full: seeds 0 and 1, both layouts, 10 s audio
  /usr/bin/python3 test/reference/selftest.py --quick    # seed 0, both layouts, 3 s audio, n_q 8
  options: --workdir DIR (keep files there), --seeds 0,1, --seconds 10

Prints progress on stderr and one JSON summary on stdout; exit 0 when every check passes.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = os.path.join(ROOT, "exporter")
PY = sys.executable
sys.path.insert(0, HERE)
sys.path.insert(0, MODELS)

import encodec_reference as ref  # noqa: E402
import checkpoint as ckpt  # noqa: E402
import safetensors_io  # noqa: E402

FAILURES = []


def log(msg):
    print("[selftest] " + msg, file=sys.stderr, flush=True)


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        log("FAIL: " + what)
    return bool(cond)


def run(args, expect_rc=None):
    t = time.time()
    p = subprocess.run([PY] + args, capture_output=True, text=True)
    dt = time.time() - t
    if expect_rc is not None and p.returncode != expect_rc:
        check(False, "%s exited %d (expected %d): %s" % (" ".join(args[:2]), p.returncode, expect_rc,
                                                         p.stderr.strip()[-2000:]))
    return p, dt


def layout_checks(work):
    res = {}
    off_tsv = ckpt.read_layout_tsv(os.path.join(MODELS, "layout", "official.tsv"))
    hf_tsv = ckpt.read_layout_tsv(os.path.join(MODELS, "layout", "huggingface.tsv"))
    gen = ckpt._generated_official_layout()
    check(list(gen.items()) == list(off_tsv.items()), "generated official layout == official.tsv (names, shapes, order)")
    check(list(ckpt.hf_layout().items()) == list(hf_tsv.items()), "official->HF renaming == huggingface.tsv")
    for sub in ("official.tsv", "huggingface.tsv"):
        shared = os.path.join(ROOT, "..", "shared", "encodec24-layout", sub)
        if os.path.exists(shared):
            with open(shared, "rb") as a, open(os.path.join(MODELS, "layout", sub), "rb") as b:
                check(a.read() == b.read(), "exporter/layout/%s is a copy of shared/encodec24-layout/%s" % (sub, sub))
    res["tensors"] = len(off_tsv)
    return res, off_tsv, hf_tsv


def file_matches_tsv(path, tsv, label):
    if path.endswith(".safetensors"):
        sd = safetensors_io.load_file(path)
    else:
        sd = torch.load(path, map_location="cpu")
    ok = check(list(sd.keys()) == list(tsv.keys()) or set(sd.keys()) == set(tsv.keys()),
               "%s: tensor names == TSV" % label)
    bad = [k for k in tsv if k in sd and (tuple(sd[k].shape) != tsv[k] or sd[k].dtype != torch.float32)]
    ok &= check(not bad, "%s: shapes/dtypes == TSV (bad: %s)" % (label, bad[:5]))
    return ok


@torch.no_grad()
def contract_checks(model_path, reference, wav):
    m = torch.jit.load(model_path, map_location="cpu").eval()
    out = {}
    codes = m.encode(wav, 8)
    check(codes.dtype == torch.int64, "encode returns int64")
    dec = {str(dt).replace("torch.", ""): m.decode(codes.to(dt)) for dt in (torch.int16, torch.int32, torch.int64)}
    check(all(torch.equal(dec["int64"], v) for v in dec.values()), "decode(int16/int32/int64) identical")
    check(dec["int64"].dtype == torch.float32, "decode returns float32")
    z = m.encode_latent(wav)
    check(tuple(z.shape) == (wav.shape[0], 128, codes.shape[-1]), "encode_latent shape [B,128,F]")
    check(torch.equal(m.quantize(z, 8), codes), "quantize(encode_latent(x)) == encode(x)")
    q = m.dequantize(codes)
    check(q.dtype == torch.float32 and tuple(q.shape) == tuple(z.shape), "dequantize shape/dtype")
    check(torch.equal(m.decode_latent(q), dec["int64"]), "decode_latent(dequantize(c)) == decode(c)")
    fwd = m(wav[:, :, :4000])
    check(torch.equal(fwd, m.decode(m.encode(wav[:, :, :4000], 32))), "forward == decode(encode(x, 32))")
    # batch: two different clips in one call == one call each
    half = min(48000, wav.shape[-1] // 2)
    w2 = torch.cat([wav[:, :, :half], wav[:, :, half:2 * half] * 0.5], 0)
    cb = m.encode(w2, 32)
    cs = torch.cat([m.encode(w2[i:i + 1], 32) for i in range(2)], 0)
    out["batch_vs_single_codes_equal_fraction"] = float((cb == cs).double().mean())
    check(out["batch_vs_single_codes_equal_fraction"] >= 0.999, "batched encode == per-item encode")
    db = m.decode(cb)
    ds = torch.cat([m.decode(cb[i:i + 1]) for i in range(2)], 0)
    out["batch_vs_single_decode_max_abs_diff"] = float((db - ds).abs().max())
    # errors
    errors = {}
    for label, fn in [
        ("n_q=0", lambda: m.encode(wav, 0)),
        ("n_q=33", lambda: m.encode(wav, 33)),
        ("wav [1,T]", lambda: m.encode(wav[0], 8)),
        ("stereo wav", lambda: m.encode(torch.zeros(1, 2, 100), 8)),
        ("empty wav", lambda: m.encode(torch.zeros(1, 1, 0), 8)),
        ("int wav", lambda: m.encode(torch.zeros(1, 1, 100, dtype=torch.int32), 8)),
        ("codes 1024", lambda: m.decode(torch.full((1, 2, 3), 1024, dtype=torch.int64))),
        ("codes -1", lambda: m.decode(torch.full((1, 2, 3), -1, dtype=torch.int32))),
        ("codes float", lambda: m.decode(torch.zeros(1, 2, 3))),
        ("codes 2d", lambda: m.decode(torch.zeros(2, 3, dtype=torch.int64))),
        ("codes 33 books", lambda: m.decode(torch.zeros(1, 33, 3, dtype=torch.int64))),
        ("latent 64 ch", lambda: m.decode_latent(torch.zeros(1, 64, 3))),
    ]:
        try:
            fn()
            check(False, "contract error not raised: " + label)
        except Exception as e:  # torch.jit.Error after torch.jit.load
            last = str(e).strip().splitlines()[-1]
            errors[label] = last
            check("encodec:" in last, "error message for %s is clear (%s)" % (label, last))
    out["error_messages"] = errors
    # odd / tiny lengths against the reference
    lengths = {}
    for T in (1, 100, 319, 320, 321, 641, 24007):
        w = wav[:, :, :T]
        if w.shape[-1] < T:
            w = torch.nn.functional.pad(w, (0, T - w.shape[-1]))
        c_ref = reference.encode(w, 32)
        c_ts = m.encode(w, 32)
        F = -(-T // 320)
        a_ts = m.decode(c_ts)
        a_ref = reference.decode(c_ref)
        same = tuple(c_ts.shape) == tuple(c_ref.shape) == (1, 32, F) and tuple(a_ts.shape) == tuple(a_ref.shape) == (1, 1, F * 320)
        frac = float((c_ts == c_ref).double().mean()) if same else 0.0
        lengths[str(T)] = {"frames": F, "shapes_ok": same, "codes_equal_fraction": frac}
        check(same and frac >= 0.999, "length %d: shapes %s, codes equal %.4f" % (T, same, frac))
    out["lengths"] = lengths
    return out


def parity(checkpoint, model, audio, n_qs):
    p, dt = run([os.path.join(HERE, "parity.py"), "--checkpoint", checkpoint, "--model", model,
                 "--audio", audio, "--n-q", ",".join(map(str, n_qs))])
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    check(p.returncode == 0 and len(rows) == len(n_qs), "parity %s vs %s: rc %d %s" % (
        os.path.basename(model), os.path.basename(checkpoint), p.returncode, p.stderr.strip()[-500:]))
    for r in rows:
        check(r.get("ok"), "parity n_q %d: codes %.5f snr %.1f" % (r["n_q"], r.get("codes_equal_fraction", -1),
                                                                     r.get("decode_snr_db", -1)))
    keep = ("n_q", "frames", "codes_equal_fraction", "decode_snr_db", "latent_snr_db", "distinct_codes_min",
            "distinct_codes_median", "distinct_codes_max", "ref_decoded_rms")
    return [{k: r.get(k) for k in keep} for r in rows], dt


def error_checks(work, sd):
    out = {}
    exp = os.path.join(MODELS, "export.py")

    def expect_fail(name, state, needles, layout="official", ext=".th"):
        path = os.path.join(work, "bad_%s%s" % (name, ext))
        st = ckpt.to_layout(state, layout)
        if ext == ".safetensors":
            safetensors_io.save_file(st, path)
        else:
            torch.save(OrderedDict(st), path)
        outp = os.path.join(work, "bad_%s.pt" % name)
        p, _ = run([exp, "--checkpoint", path, "--out", outp, "--quiet"])
        msg = p.stderr.strip()
        ok = check(p.returncode == 1, "%s: exit code 1 (got %d)" % (name, p.returncode))
        for n in needles:
            ok &= check(n in msg, "%s: error mentions %r (%s)" % (name, n, msg[:300]))
        ok &= check(not os.path.exists(outp) and not any(f.startswith(".bad_%s.pt.tmp" % name) for f in os.listdir(work)),
                    "%s: no output / temp file left" % name)
        out[name] = msg
        return ok

    bad = OrderedDict(sd)
    del bad["encoder.model.3.conv.conv.weight_g"]
    bad["encoder.model.99.conv.conv.bias"] = torch.zeros(3)
    bad["quantizer.vq.layers.5._codebook.embed"] = torch.zeros(1024, 64)
    expect_fail("combined", bad, ["missing (1): encoder.model.3.conv.conv.weight_g",
                                  "unexpected (1): encoder.model.99.conv.conv.bias",
                                  "quantizer.vq.layers.5._codebook.embed (expected 1024x128, got 1024x64)"])
    expect_fail("combined_hf", bad, ["encoder.layers.3.conv.weight_g", "encoder.layers.99.conv.bias",
                                     "quantizer.layers.5.codebook.embed (expected 1024x128, got 1024x64)"],
                layout="huggingface", ext=".safetensors")
    k48 = OrderedDict((k, v) for k, v in sd.items()
                      if not (k.startswith("quantizer.") and int(k.split(".")[3]) >= 16))
    k48["encoder.model.0.conv.conv.weight_v"] = torch.zeros(32, 2, 7)
    k48["decoder.model.15.conv.conv.weight_v"] = torch.zeros(2, 32, 7)
    k48["decoder.model.15.conv.conv.weight_g"] = torch.zeros(2, 1, 1)
    k48["decoder.model.15.conv.conv.bias"] = torch.zeros(2)
    k48["encoder.model.0.conv.norm.weight"] = torch.ones(32)
    k48["encoder.model.0.conv.norm.bias"] = torch.zeros(32)
    # time-group-norm tensors make it a 48 kHz checkpoint, checked against that layout (weight-norm names are wrong there)
    expect_fail("48khz", k48, ["does not match the EnCodec 48 kHz layout (official names)",
                               "missing (", "encoder.model.0.conv.conv.weight,", "weight-norm tensors"])
    expect_fail("48khz_hf", k48, ["EnCodec 48 kHz layout (huggingface names)", "encoder.layers.0.conv.weight,"],
                layout="huggingface", ext=".safetensors")
    stereo_only = OrderedDict(sd)
    stereo_only["encoder.model.0.conv.conv.weight_v"] = torch.zeros(32, 2, 7)
    expect_fail("stereo_input", stereo_only, ["48 kHz/stereo"])
    garbage = os.path.join(work, "garbage.th")
    with open(garbage, "wb") as f:
        f.write(b"not a checkpoint at all")
    p, _ = run([exp, "--checkpoint", garbage, "--out", os.path.join(work, "g.pt"), "--quiet"])
    check(p.returncode == 1 and "garbage.th" in p.stderr, "garbage file: exit 1 naming the file")
    p, _ = run([exp, "--checkpoint", os.path.join(work, "nope.th"), "--out", os.path.join(work, "g.pt"), "--quiet"])
    check(p.returncode == 1 and "no such file" in p.stderr, "missing file: exit 1")
    p, _ = run([exp, "--out", os.path.join(work, "g.pt")])
    check(p.returncode == 2, "usage error: exit 2")
    p, _ = run([exp, "--checkpoint", "x.th", "--random", "--out", os.path.join(work, "g.pt")])
    check(p.returncode == 2, "--checkpoint with --random: exit 2")
    return out


def loader_variants(work, sd):
    """Other shapes of input files that must load to the same tensors."""
    base = ckpt.build_ts_model(sd).state_dict()
    res = {}

    def same(path, label, **kw):
        try:
            got, info = ckpt.load_checkpoint(path, **kw)
            m = ckpt.build_ts_model(got).state_dict()
            ok = all(torch.equal(base[k], m[k]) for k in base)
            res[label] = info["kind"]
            check(ok, "loader variant %s: same folded weights" % label)
        except Exception as e:  # noqa: BLE001
            check(False, "loader variant %s: %s" % (label, e))

    # a real nn.Module state_dict (OrderedDict with _metadata) through weights_only loading
    r = ref.load_reference(sd)
    p = os.path.join(work, "v_module_state_dict.th")
    torch.save(r.state_dict(), p)
    same(p, "module_state_dict")
    p = os.path.join(work, "v_wrapped.pt")
    torch.save({"epoch": 3, "best_state": OrderedDict(sd)}, p)
    same(p, "wrapped_best_state")
    p = os.path.join(work, "pytorch_model.bin")
    torch.save(ckpt.to_layout(sd, "huggingface"), p)
    same(p, "hf_bin")
    hfdir = os.path.join(work, "hf_dir")
    os.makedirs(hfdir, exist_ok=True)
    safetensors_io.save_file(ckpt.to_layout(sd, "huggingface"), os.path.join(hfdir, "model.safetensors"))
    same(hfdir, "hf_directory")
    param = OrderedDict()
    for k, v in ckpt.to_layout(sd, "huggingface").items():
        k = k.replace(".weight_g", ".parametrizations.weight.original0").replace(".weight_v", ".parametrizations.weight.original1")
        param[k] = v
    p = os.path.join(work, "v_parametrizations.safetensors")
    safetensors_io.save_file(param, p)
    same(p, "hf_parametrizations")
    # fp16 safetensors load (values rounded, so only check that it loads and validates)
    p = os.path.join(work, "v_fp16.safetensors")
    safetensors_io.save_file({k: v.half() for k, v in ckpt.to_layout(sd, "huggingface").items()}, p)
    try:
        got, _ = ckpt.load_checkpoint(p)
        check(all(t.dtype == torch.float32 for t in got.values()), "fp16 safetensors -> float32")
        res["hf_fp16"] = "huggingface"
    except Exception as e:  # noqa: BLE001
        check(False, "fp16 safetensors: %s" % e)
    # a pickle with a non-tensor object is refused without --allow-unsafe-pickle
    p = os.path.join(work, "v_unsafe.th")
    torch.save({"state_dict": OrderedDict(sd), "cfg": argparse.Namespace(x=1)}, p)
    try:
        ckpt.load_checkpoint(p)
        check(False, "unsafe pickle refused")
    except ckpt.CheckpointError as e:
        res["unsafe_pickle_message"] = str(e)[:200]
        check("allow-unsafe-pickle" in str(e), "unsafe pickle refusal mentions --allow-unsafe-pickle")
    same(p, "unsafe_pickle_allowed", allow_unsafe_pickle=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workdir")
    ap.add_argument("--seeds", default=None)
    ap.add_argument("--seconds", type=float, default=None)
    args = ap.parse_args(argv)
    seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1")).split(",")]
    seconds = args.seconds or (3.0 if args.quick else 10.0)
    n_qs = [8] if args.quick else [2, 8, 32]
    tmp = None
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        work = args.workdir
    else:
        tmp = tempfile.TemporaryDirectory(prefix="encodec-selftest-")
        work = tmp.name
    summary = OrderedDict()
    t_all = time.time()

    log("layouts")
    summary["layout"], off_tsv, hf_tsv = layout_checks(work)

    audio = os.path.join(work, "audio.npy")
    p, _ = run([os.path.join(HERE, "make_test_audio.py"), "--out", audio, "--seconds", str(seconds + 0.123)],
               expect_rc=0)
    summary["audio"] = json.loads(p.stdout.strip().splitlines()[-1])
    wav = torch.from_numpy(np.load(audio))[None, None, :]

    exp = os.path.join(MODELS, "export.py")
    summary["seeds"] = OrderedDict()
    for seed in seeds:
        s = OrderedDict()
        off_ck = os.path.join(work, "random%d.th" % seed)
        hf_ck = os.path.join(work, "random%d.safetensors" % seed)
        m_rand = os.path.join(work, "random%d.pt" % seed)
        m_hf = os.path.join(work, "random%d_hf.pt" % seed)
        m_off = os.path.join(work, "random%d_off.pt" % seed)
        log("seed %d: export --random" % seed)
        p, dt = run([exp, "--random", "--seed", str(seed), "--out", m_rand, "--checkpoint-out", off_ck, "--quiet"],
                    expect_rc=0)
        s["export_random_seconds"] = round(dt, 2)
        s["model_bytes"] = os.path.getsize(m_rand)
        run([exp, "--random", "--seed", str(seed), "--out", os.path.join(work, "tmp.pt"), "--layout", "huggingface",
             "--checkpoint-out", hf_ck, "--quiet"], expect_rc=0)
        file_matches_tsv(off_ck, off_tsv, "seed %d official .th" % seed)
        file_matches_tsv(hf_ck, hf_tsv, "seed %d huggingface .safetensors" % seed)
        # determinism: two runs, same checkpoint bytes
        md_a = ckpt.sha256_file(off_ck)
        hf_sd = safetensors_io.load_file(hf_ck)
        off_sd = torch.load(off_ck, map_location="cpu")
        check(all(torch.equal(off_sd[k], hf_sd[ckpt.official_to_hf_name(k)]) for k in off_sd),
              "seed %d: official and HF random checkpoints hold identical tensors" % seed)
        meta_extra = {"encodec.json": ""}
        torch.jit.load(m_rand, _extra_files=meta_extra)
        meta = json.loads(meta_extra["encodec.json"])
        check(meta["source"]["kind"] == "random" and meta["source"]["seed"] == seed, "random metadata source")
        log("seed %d: export from files" % seed)
        p, dt = run([exp, "--checkpoint", off_ck, "--out", m_off, "--quiet"], expect_rc=0)
        s["export_official_file_seconds"] = round(dt, 2)
        p, dt = run([exp, "--checkpoint", hf_ck, "--out", m_hf, "--quiet", "--print-metadata"], expect_rc=0)
        s["export_hf_file_seconds"] = round(dt, 2)
        meta_hf = json.loads(p.stdout)
        check(meta_hf["source"]["kind"] == "huggingface" and meta_hf["source"]["file"] == os.path.basename(hf_ck)
              and meta_hf["source"]["sha256"] == ckpt.sha256_file(hf_ck), "HF metadata source")
        sd_a = torch.jit.load(m_rand).state_dict()
        sd_b = torch.jit.load(m_hf).state_dict()
        check(all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a), "seed %d: --random and HF-file exports identical" % seed)
        log("seed %d: parity official" % seed)
        s["parity_official"], dt = parity(off_ck, m_off, audio, n_qs)
        s["parity_official_seconds"] = round(dt, 1)
        log("seed %d: parity huggingface" % seed)
        s["parity_huggingface"], _ = parity(hf_ck, m_hf, audio, n_qs)
        log("seed %d: contract + lengths" % seed)
        reference = ref.load_reference(off_ck)
        s["contract"] = contract_checks(m_rand, reference, wav)
        if seed == seeds[0]:
            log("error paths")
            summary["errors"] = error_checks(work, off_sd)
            log("loader variants")
            summary["loader_variants"] = loader_variants(work, off_sd)
            if not args.quick:
                log("determinism (second export of seed %d)" % seed)
                os.makedirs(os.path.join(work, "again"), exist_ok=True)
                # same basename: torch.save names the zip's root folder after the file
                off_ck2 = os.path.join(work, "again", "random%d.th" % seed)
                run([exp, "--random", "--seed", str(seed), "--out", os.path.join(work, "again.pt"),
                     "--checkpoint-out", off_ck2, "--quiet"], expect_rc=0)
                check(ckpt.sha256_file(off_ck2) == md_a, "random checkpoint bytes deterministic for a seed")
                meta2 = {"encodec.json": ""}
                torch.jit.load(os.path.join(work, "again.pt"), _extra_files=meta2)
                check(json.loads(meta2["encodec.json"])["source"]["sha256"] == meta["source"]["sha256"],
                      "random metadata sha256 deterministic for a seed")
        summary["seeds"][str(seed)] = s
    summary["total_seconds"] = round(time.time() - t_all, 1)
    summary["failures"] = FAILURES
    summary["ok"] = not FAILURES
    print(json.dumps(summary, indent=1))
    if tmp is not None:
        tmp.cleanup()
    return 0 if not FAILURES else 1


if __name__ == "__main__":
    sys.exit(main())
