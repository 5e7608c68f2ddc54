/**
 * The codec API (lib/codec.ts over the native addon), on real synthesized speech with a seeded
 * random-weight model of the full EnCodec 24 kHz architecture.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

import { expect } from 'chai';

import { loadAudio } from '../../lib/io/audio';
import { BANDWIDTHS, codebooksForBandwidth } from '../../lib/codec/bandwidth';
import { Encodec } from '../../lib/codec/codec';
import { Codes } from '../../lib/codec/codes';
import { nativeBinding } from '../../lib/addon/native';
import { rejects } from '../helpers/assert';
import { makeSpeech } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';
import { PACKAGE_ROOT } from '../../lib/common/package-root';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function same(a: Codes, b: Codes): void {
  expect(a.nQ).to.equal(b.nQ);
  expect(a.nFrames).to.equal(b.nFrames);
  expect(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(
    Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength))).to.equal(true);
}

describe('Encodec (codec API)', function () {
  const dir = tempDir('codec');
  let modelPath: string;
  let codec: Encodec;
  let speech: Float32Array;

  before(async function () {
    modelPath = await randomModel(0);
    codec = await Encodec.load(modelPath, { threads: 2, warmup: false });
    const wav = await makeSpeech(dir, 'The quick brown fox jumps over the lazy dog. Neural audio codecs compress speech.');
    speech = (await loadAudio(wav, { sampleRate: 24000 })).samples;
  });

  after(function () {
    codec?.dispose();
  });

  it('exposes the model metadata as info', function () {
    expect(codec.info.model).to.equal('encodec_24khz');
    expect(codec.info.sample_rate).to.equal(24000);
    expect(codec.info.frame_rate).to.equal(75);
    expect(codec.info.bandwidths).to.deep.equal([1.5, 3, 6, 12, 24]);
    expect(codec.info.source.kind).to.equal('random');
    expect(codec.info.source.seed).to.equal(0);
    expect(codec.device).to.equal('cpu');
    expect(codec.threads).to.equal(2);
  });

  it('maps bandwidths to 2/4/8/16/32 codebooks with codes of shape [nQ, ceil(T/320)] in 0..1023', async function () {
    const expected: Record<number, number> = { 1.5: 2, 3: 4, 6: 8, 12: 16, 24: 32 };
    for (const bandwidth of BANDWIDTHS) {
      const codes = await codec.encode(speech, { bandwidth });
      expect(codebooksForBandwidth(bandwidth)).to.equal(expected[bandwidth]);
      expect(codes.nQ, `${bandwidth} kbps`).to.equal(expected[bandwidth]);
      expect(codes.nFrames).to.equal(Math.ceil(speech.length / 320));
      expect(codes.data).to.be.instanceOf(Int16Array);
      expect(codes.data.length).to.equal(codes.nQ * codes.nFrames);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of codes.data) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      expect(lo).to.be.at.least(0);
      expect(hi).to.be.at.most(1023);
    }
  });

  it('uses many distinct codes per codebook on speech (data-driven random codebooks)', async function () {
    const codes = await codec.encode(speech, { bandwidth: 6 });
    for (let q = 0; q < codes.nQ; q++) {
      const row = codes.data.subarray(q * codes.nFrames, (q + 1) * codes.nFrames);
      expect(new Set(row).size, `codebook ${q}`).to.be.greaterThan(20);
    }
  });

  it('lower bandwidths are prefixes of higher ones (residual quantization)', async function () {
    const low = await codec.encode(speech, { bandwidth: 3 });
    const high = await codec.encode(speech, { bandwidth: 24 });
    expect(Array.from(high.data.subarray(0, low.data.length))).to.deep.equal(Array.from(low.data));
  });

  it('decodes to nFrames * 320 finite samples, deterministically; more codebooks change the output', async function () {
    const decode = async (bandwidth: number): Promise<Float32Array> => {
      const codes = await codec.encode(speech, { bandwidth });
      const audio = await codec.decode(codes);
      expect(audio).to.be.instanceOf(Float32Array);
      expect(audio.length).to.equal(codes.nFrames * 320);
      expect(audio.every((v) => Number.isFinite(v))).to.equal(true);
      return audio;
    };
    // Random weights do not reconstruct speech (the parity tests compare against the reference instead);
    // what must hold here is determinism and that each extra codebook adds a residual term.
    const a = await decode(1.5);
    const b = await decode(1.5);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).to.equal(true);
    const c = await decode(24);
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - c[i]));
    expect(diff).to.be.greaterThan(1e-4);
  });

  it('encodes batches exactly as one clip at a time, any mix of lengths', async function () {
    const a = speech.slice(0, 24000 * 2);
    const b = speech.slice(5000, 5000 + 24000 * 3 + 17);
    const c = speech.slice(100, 100 + 24000 * 2);
    const batch = await codec.encodeBatch([a, b, c], { bandwidth: 6 });
    expect(batch).to.have.length(3);
    same(batch[0], await codec.encode(a, { bandwidth: 6 }));
    same(batch[1], await codec.encode(b, { bandwidth: 6 }));
    same(batch[2], await codec.encode(c, { bandwidth: 6 }));
    const decoded = await codec.decodeBatch(batch);
    expect(decoded.map((d) => d.length)).to.deep.equal(batch.map((x) => x.nFrames * 320));
    const single = await codec.decode(batch[1]);
    let maxDiff = 0;
    for (let i = 0; i < single.length; i++) maxDiff = Math.max(maxDiff, Math.abs(single[i] - decoded[1][i]));
    expect(maxDiff).to.be.lessThan(1e-4);
  });

  it('accepts subarray views (no copy needed) and gives the same codes as a copy', async function () {
    const offset = 12345;
    const view = speech.subarray(offset, offset + 48000);
    expect(view.byteOffset).to.equal(offset * 4);
    same(await codec.encode(view, { bandwidth: 3 }), await codec.encode(view.slice(), { bandwidth: 3 }));
  });

  it('accepts Int32Array codes as well as Int16Array', async function () {
    const codes = await codec.encode(speech.subarray(0, 24000), { bandwidth: 6 });
    const wide = { ...codes, data: Int32Array.from(codes.data) };
    const a = await codec.decode(codes);
    const b = await codec.decode(wide);
    expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).to.equal(true);
  });

  it('keeps the input alive while encoding even if the caller drops it', async function () {
    const expected = await codec.encode(speech.slice(0, 72000), { bandwidth: 6 });
    const pending = codec.encode(speech.slice(0, 72000), { bandwidth: 6 }); // only the worker holds it
    for (let i = 0; i < 5; i++) {
      gc();
      new Float32Array(1 << 20).fill(1); // churn the heap
    }
    same(await pending, expected);
  });

  it('returns embeddings (quantized latents) of shape [128, nFrames]', async function () {
    const codes = await codec.encode(speech.subarray(0, 24000), { bandwidth: 6 });
    const emb = await codec.embeddings(codes);
    expect(emb.dim).to.equal(128);
    expect(emb.nFrames).to.equal(codes.nFrames);
    expect(emb.data).to.be.instanceOf(Float32Array);
    expect(emb.data.length).to.equal(128 * codes.nFrames);
    expect(emb.data.some((v) => v !== 0)).to.equal(true);
  });

  it('runs off the event loop: timers keep firing while a long encode runs', async function () {
    // audio long enough for one encode to take about a second on this machine, however fast it codes
    const probe = new Float32Array(24000 * 20);
    for (let i = 0; i < probe.length; i++) probe[i] = speech[i % speech.length];
    let started = process.hrtime.bigint();
    await codec.encode(probe, { bandwidth: 6 });
    const probeMs = Number(process.hrtime.bigint() - started) / 1e6;
    const long = new Float32Array(probe.length * Math.min(30, Math.max(2, Math.ceil(1000 / probeMs))));
    for (let at = 0; at < long.length; at += probe.length) long.set(probe, at);
    const histogram = monitorEventLoopDelay({ resolution: 10 });
    histogram.enable();
    started = process.hrtime.bigint();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    await codec.encode(long, { bandwidth: 6 });
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    clearInterval(timer);
    histogram.disable();
    const maxLagMs = histogram.max / 1e6;
    // The encode takes far longer than a tick; on the loop it would stall the loop for all of it.
    expect(elapsedMs).to.be.greaterThan(300);
    expect(maxLagMs, `max loop delay ${maxLagMs.toFixed(0)} ms during a ${elapsedMs.toFixed(0)} ms encode`).to.be.lessThan(
      Math.max(250, elapsedMs / 4),
    );
    expect(ticks).to.be.greaterThan(elapsedMs / 10 / 4);
  });

  describe('outputs', function () {
    it('copies outputs instead of wrapping tensor memory when external buffers are not allowed', async function () {
      // Electron's sandbox forbids external ArrayBuffers; ENCODEC_NATIVE_COPY_OUTPUTS=1 takes that path here.
      const script = `
        const { Encodec, runtimeInfo } = require(${JSON.stringify(path.join(PACKAGE_ROOT, 'dist', 'lib', 'index.js'))});
        (async () => {
          const codec = await Encodec.load(${JSON.stringify(modelPath)}, { threads: 1, warmup: false });
          const s = new Float32Array(24000); for (let i = 0; i < s.length; i++) s[i] = Math.sin(i / 7) * 0.3;
          const codes = await codec.encode(s, { bandwidth: 6 });
          const audio = await codec.decode(codes);
          process.stdout.write(JSON.stringify({ copied: runtimeInfo().outputsCopied, codes: Array.from(codes.data), audio: Array.from(audio.subarray(0, 64)) }));
          codec.dispose();
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const run = (copy: boolean) => {
        const r = spawnSync(process.execPath, ['-e', script], {
          env: { ...process.env, ENCODEC_NATIVE_COPY_OUTPUTS: copy ? '1' : '' },
          encoding: 'utf8',
        });
        expect(r.status, r.stderr).to.equal(0);
        return JSON.parse(r.stdout) as { copied: boolean; codes: number[]; audio: number[] };
      };
      const copied = run(true);
      const external = run(false);
      expect(copied.copied).to.equal(true);
      expect(external.copied).to.equal(false);
      expect(copied.codes).to.deep.equal(external.codes);
      expect(copied.audio).to.deep.equal(external.audio);
    });
  });

  describe('bad input', function () {
    it('rejects samples that are not a Float32Array with a TypeError', async function () {
      await rejects(codec.encode(new Float64Array(100) as unknown as Float32Array), TypeError, /Float32Array.*Float64Array/);
      await rejects(codec.encode([0, 0.1] as unknown as Float32Array), TypeError, /Float32Array/);
      await rejects(codec.encode(null as unknown as Float32Array), TypeError, /Float32Array/);
    });

    it('rejects empty and NaN/Infinity samples with a RangeError', async function () {
      await rejects(codec.encode(new Float32Array(0)), RangeError, /empty/);
      const nan = new Float32Array(1000);
      nan[500] = NaN;
      await rejects(codec.encode(nan), RangeError, /NaN or Infinity/);
      const inf = new Float32Array(1000);
      inf[3] = -Infinity;
      await rejects(codec.encode(inf), RangeError, /NaN or Infinity/);
    });

    it('rejects unsupported bandwidths naming the supported ones', async function () {
      const s = new Float32Array(1000);
      for (const bad of [5, 0, -1, 1e9, NaN, 2.9]) {
        await rejects(codec.encode(s, { bandwidth: bad }), RangeError, /unsupported bandwidth.*1\.5, 3, 6, 12, 24/);
      }
      await rejects(codec.encode(s, { bandwidth: '6' as unknown as number }), TypeError, /bandwidth must be a number/);
    });

    it('rejects codes outside 0..1023, with a wrong shape or a wrong dtype', async function () {
      const codes = await codec.encode(speech.subarray(0, 4800), { bandwidth: 3 });
      const high = Int16Array.from(codes.data);
      high[7] = 1024;
      await rejects(codec.decode({ ...codes, data: high }), RangeError, /outside \[0, 1023\]/);
      const low = Int32Array.from(codes.data);
      low[0] = -1;
      await rejects(codec.decode({ ...codes, data: low }), RangeError, /outside \[0, 1023\]/);
      await rejects(codec.decode({ ...codes, nFrames: codes.nFrames + 1 }), RangeError, /nQ x nFrames/);
      await rejects(codec.decode({ ...codes, nQ: 33 }), RangeError, /nQ/);
      await rejects(codec.decode({ ...codes, data: Float32Array.from(codes.data) as unknown as Int16Array }), TypeError, /Int16Array or Int32Array/);
      await rejects(codec.decode(codes.data as unknown as Codes), TypeError, /codes must be an object/);
    });

    it('validates natively too (the addon is safe to call directly)', async function () {
      const native = await nativeBinding().load(modelPath, { threads: 1 });
      try {
        expect(() => native.encode([new Float64Array(10) as unknown as Float32Array], 8)).to.throw(TypeError, /Float32Array/);
        expect(() => native.encode([new Float32Array(10)], 0)).to.throw(RangeError, /nQ/);
        expect(() => native.encode([new Float32Array(10)], 33)).to.throw(RangeError, /nQ/);
        expect(() => native.encode('x' as unknown as Float32Array[], 8)).to.throw(TypeError, /array/);
        expect(() => native.decode([{ data: new Int16Array(3), nQ: 2, nFrames: 2 }])).to.throw(RangeError, /nQ x nFrames/);
        const ab = new ArrayBuffer(4000);
        const detached = new Float32Array(ab);
        structuredClone(ab, { transfer: [ab] });
        expect(() => native.encode([detached], 8)).to.throw(/detached|empty/);
      } finally {
        native.dispose();
      }
    });

    it('reports a missing, corrupt or foreign model file clearly', async function () {
      await rejects(Encodec.load(path.join(dir, 'nope.pt')), Error, /cannot open model file .*nope\.pt/);
      const notZip = path.join(dir, 'garbage.pt');
      fs.writeFileSync(notZip, 'this is not a model');
      await rejects(Encodec.load(notZip), Error, /not a TorchScript model file/);
      const truncated = path.join(dir, 'truncated.pt');
      const bytes = fs.readFileSync(modelPath);
      fs.writeFileSync(truncated, bytes.subarray(0, bytes.length >> 1));
      await rejects(Encodec.load(truncated), Error, /corrupt or truncated/);
      const foreign = path.join(dir, 'linear.pt');
      const py = spawnSync('/usr/bin/python3', ['-c',
        `import torch; torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), ${JSON.stringify(foreign)})`]);
      expect(py.status, String(py.stderr)).to.equal(0);
      await rejects(Encodec.load(foreign), Error, /not an encodec-native EnCodec model/);
    });

    it('reports a CUDA request on a CPU-only libtorch clearly, and bad devices and threads', async function () {
      if (nativeBinding().runtimeInfo().cudaAvailable) {
        await rejects(Encodec.load(modelPath, { device: 'cuda:99' }), RangeError, /only \d+ CUDA device/);
      } else {
        await rejects(Encodec.load(modelPath, { device: 'cuda' }), Error, /no CUDA support/);
        await rejects(Encodec.load(modelPath, { device: 'cuda:1' }), Error, /no CUDA support/);
      }
      await rejects(Encodec.load(modelPath, { device: 'gpu' as 'cpu' }), TypeError, /'cpu', 'cuda' or 'cuda:N'/);
      await rejects(Encodec.load(modelPath, { threads: 0 }), RangeError, /threads/);
    });

    it('rejects every call after dispose() with an Error, not a crash', async function () {
      const c = await Encodec.load(modelPath, { threads: 1, warmup: false });
      const inFlight = c.encode(speech.subarray(0, 24000), { bandwidth: 6 });
      c.dispose();
      expect(c.disposed).to.equal(true);
      expect((await inFlight).nQ).to.equal(8); // queued before dispose: finishes
      await rejects(c.encode(speech.subarray(0, 24000)), Error, /disposed/);
      await rejects(c.decode({ data: new Int16Array(2), nQ: 2, nFrames: 1 }), Error, /disposed/);
      expect(() => c.device).to.throw(Error, /disposed/);
      c.dispose(); // twice is harmless
    });

    it('frees the model on dispose(): the process gives back most of the weights\' memory', function () {
      // In a fresh process, so the test runner's own heap does not blur the numbers. Two models hold about
      // 2 x 76 MB of weights (plus buffers from one encode each); dispose() must hand back at least half of that.
      // The addon's cache of tensor buffers (native/allocator.cc) is emptied when a model is freed, so RSS shows what
      // dispose() released.
      const script = `
        const { Encodec } = require(${JSON.stringify(path.join(PACKAGE_ROOT, 'dist', 'lib', 'codec', 'codec.js'))});
        const rss = () => process.memoryUsage().rss;
        (async () => {
          const models = [];
          for (let i = 0; i < 2; i++) models.push(await Encodec.load(${JSON.stringify(modelPath)}, { threads: 1, warmup: false }));
          const s = new Float32Array(24000).fill(0.1);
          for (const m of models) await m.decode(await m.encode(s));
          const loaded = rss();
          for (const m of models) m.dispose();
          // dispose() releases once queued calls have settled, on the addon's release thread: wait for it (5 s at most)
          const weights = 2 * require('node:fs').statSync(${JSON.stringify(modelPath)}).size;
          for (let t = 0; t < 50 && loaded - rss() <= weights / 2; t++) await new Promise((r) => setTimeout(r, 100));
          process.stdout.write(JSON.stringify({ loaded, disposed: rss(), flags: models.map((m) => m.disposed) }));
        })().catch((e) => { console.error(e); process.exit(1); });`;
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const { loaded, disposed, flags } = JSON.parse(r.stdout) as { loaded: number; disposed: number; flags: boolean[] };
      expect(flags).to.deep.equal([true, true]);
      const weights = 2 * fs.statSync(modelPath).size;
      expect(loaded - disposed, `RSS ${(loaded / 1e6).toFixed(0)} MB -> ${(disposed / 1e6).toFixed(0)} MB`).to.be.greaterThan(weights / 2);
    });
  });
});
