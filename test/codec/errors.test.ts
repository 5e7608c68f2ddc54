/**
 * Errors of the codec and the addon carry stable codes (docs/errors.md), out of memory in a chunked or pooled
 * call is retried in halves down to one chunk, and the addon's thread and release defects stay fixed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { expect } from 'chai';

import { Encodec } from '../../lib/codec/codec';
import type { Codes } from '../../lib/codec/codes';
import { nativeBinding } from '../../lib/addon/native';
import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { expectCodesWithinRounding } from '../helpers/assert';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

/** The rejection of `promise` (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

/** Runs `script` (CommonJS, `INDEX` = the built package root) in a fresh node with `env`; returns its stdout JSON. */
function runScript(script: string, env: Record<string, string> = {}): unknown {
  return runScriptWithStderr(script, env).json;
}

function runScriptWithStderr(script: string, env: Record<string, string> = {}): { json: unknown; stderr: string } {
  const index = JSON.stringify(path.join(PACKAGE_ROOT, 'dist', 'lib', 'index.js'));
  const full = `const INDEX = ${index};\n(async () => {\n${script}\n})().catch((e) => { console.error(e); process.exit(3); });`;
  const r = spawnSync(process.execPath, ['-e', full], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 28 });
  expect(r.status, r.stderr).to.equal(0);
  return { json: JSON.parse(r.stdout), stderr: r.stderr };
}

/** A deterministic noisy signal of `seconds` (random-weight models code noise as well as speech). */
const SIGNAL = `(seconds) => {
  const s = new Float32Array(24000 * seconds);
  let x = 1;
  for (let i = 0; i < s.length; i++) { x = (x * 16807) % 2147483647; s[i] = (x / 2147483647 - 0.5) * 0.3 * Math.sin(i / 500); }
  return s;
}`;

describe('errors and their codes (codec and addon)', function () {
  let modelPath: string;
  let codec: Encodec;
  const dir = tempDir('encodec-errors');

  before(async function () {
    modelPath = await randomModel(0);
    codec = await Encodec.load(modelPath, { threads: 1, warmup: false });
  });
  after(() => codec?.dispose());

  it('sets ENCODEC_BAD_INPUT on bad arguments, in lib/ and natively, keeping TypeError/RangeError', async function () {
    const notSamples = await rejection(codec.encode([1, 2] as unknown as Float32Array));
    expect(notSamples).to.be.instanceOf(TypeError).and.include({ code: 'ENCODEC_BAD_INPUT' });
    const model = await nativeBinding().load(modelPath, { threads: 1 });
    try {
      const bad = await rejection(Promise.resolve().then(() => model.encode([new Float32Array(10)], 99)));
      expect(bad).to.be.instanceOf(RangeError).and.include({ code: 'ENCODEC_BAD_INPUT' });
      const nan = await rejection(model.encode([new Float32Array([NaN])], 2));
      expect(nan).to.be.instanceOf(RangeError).and.include({ code: 'ENCODEC_BAD_INPUT' });
      const codes = await rejection(model.decode([{ data: new Int16Array([5000]), nQ: 1, nFrames: 1 }]));
      expect(codes).to.be.instanceOf(RangeError).and.include({ code: 'ENCODEC_BAD_INPUT' });
      const device = await rejection(Promise.resolve().then(() => nativeBinding().load(modelPath, { device: 'gpu' })));
      expect(device).to.be.instanceOf(TypeError).and.include({ code: 'ENCODEC_BAD_INPUT' });
    } finally {
      model.dispose();
    }
  });

  it('sets ENCODEC_MODEL_FILE for a missing or foreign model file', async function () {
    const missing = await rejection(nativeBinding().load(path.join(dir, 'missing.pt')));
    expect(missing.code).to.equal('ENCODEC_MODEL_FILE');
    const text = path.join(dir, 'text.pt');
    fs.writeFileSync(text, 'not a model');
    expect((await rejection(Encodec.load(text))).code).to.equal('ENCODEC_MODEL_FILE');
  });

  it('sets ENCODEC_CUDA_UNAVAILABLE when CUDA is asked for and absent', async function () {
    // where CUDA is present the error cannot happen; the CUDA path itself is checked by scripts/gpu-check.sh
    if (nativeBinding().runtimeInfo().cudaAvailable) this.skip();
    const err = await rejection(Encodec.load(modelPath, { device: 'cuda' }));
    expect(err.code).to.equal('ENCODEC_CUDA_UNAVAILABLE');
  });

  it('sets ENCODEC_DISPOSED after dispose(), natively and in lib/', async function () {
    const c = await Encodec.load(modelPath, { threads: 1, warmup: false });
    const model = await nativeBinding().load(modelPath, { threads: 1 });
    c.dispose();
    model.dispose();
    expect((await rejection(c.encode(new Float32Array(320)))).code).to.equal('ENCODEC_DISPOSED');
    expect((await rejection(Promise.resolve().then(() => model.encode([new Float32Array(320)], 2)))).code).to.equal('ENCODEC_DISPOSED');
  });

  it('encodeStreamBlocks rejects bad arguments instead of throwing synchronously', async function () {
    let iterator: AsyncGenerator<unknown> | undefined;
    expect(() => (iterator = codec.encodeStreamBlocks(42 as unknown as Iterable<Float32Array>))).to.not.throw();
    const err = await rejection((iterator as AsyncGenerator<unknown>).next());
    expect(err).to.be.instanceOf(TypeError).and.include({ code: 'ENCODEC_BAD_INPUT' });
    const exact = codec.encodeStreamBlocks([new Float32Array(320)], { exact: true } as never);
    expect((await rejection(exact.next())).code).to.equal('ENCODEC_BAD_INPUT');
  });

  it('gives a model loaded with threads 0 libtorch\'s default, not the count another model left on the pool thread', function () {
    // One pool thread: the first model's calls set it to 1 thread; the second model (threads 0) must not run on 1.
    const out = runScript(`
      const { nativeBinding } = require(${JSON.stringify(path.join(PACKAGE_ROOT, 'dist', 'lib', 'addon', 'native.js'))});
      const binding = nativeBinding();
      const one = await binding.load(${JSON.stringify(modelPath)}, { threads: 1 });
      await one.encode([new Float32Array(3200)], 2);
      const inherited = await binding.load(${JSON.stringify(modelPath)});
      await inherited.encode([new Float32Array(3200)], 2);
      process.stdout.write(JSON.stringify({ threads: inherited.threads, defaultThreads: binding.runtimeInfo().defaultThreads }));
      one.dispose();
      inherited.dispose();`, { UV_THREADPOOL_SIZE: '1', OMP_NUM_THREADS: '3' }) as { threads: number; defaultThreads: number };
    expect(out.threads).to.equal(3); // OMP_NUM_THREADS, libtorch's default
  });

  it('runs native work on its own threads: one per call running at once, whatever UV_THREADPOOL_SIZE', function () {
    // each thread that has run a model keeps tens of MB of heap: 8 pool threads must not become 8 such threads
    const out = runScript(`
      const { nativeBinding } = require(${JSON.stringify(path.join(PACKAGE_ROOT, 'dist', 'lib', 'addon', 'native.js'))});
      const binding = nativeBinding();
      const model = await binding.load(${JSON.stringify(modelPath)}, { threads: 1 });
      const clip = new Float32Array(3200).map((_, i) => Math.sin(i / 7));
      const reference = (await model.encode([clip], 2))[0].data.join();
      for (let i = 0; i < 10; i++) await model.encode([clip], 2);
      const sequential = binding.runtimeInfo().callThreads;
      for (let i = 0; i < 5; i++) await Promise.all([model.encode([clip], 2), model.encode([clip], 2)]);
      const pairs = binding.runtimeInfo().callThreads;
      const many = await Promise.all(Array.from({ length: 12 }, () => model.encode([clip], 2)));
      // a span that does not fit its clip: found on the call thread (session.cc), after the arguments were read
      const oneSecond = new Float32Array(24000);
      const failing = await (async () => model.encode([oneSecond], 2, { spans: [{ lead: 75, chunk: 300, context: 75 }] }))()
        .then(() => 'resolved', (e) => e.constructor.name + ' ' + e.code + ': ' + e.message);
      process.stdout.write(JSON.stringify({ sequential, pairs, most: binding.runtimeInfo().callThreads, failing,
        same: many.every(([codes]) => codes.data.join() === reference) }));
      model.dispose();`, { UV_THREADPOOL_SIZE: '8' }) as { sequential: number; pairs: number; most: number; failing: string; same: boolean };
    expect(out.sequential).to.equal(1);
    expect(out.pairs).to.equal(2);
    // twelve calls at once all finish, on at most one thread per core (at least 2)
    expect(out.most).to.be.within(2, Math.max(2, os.availableParallelism()));
    expect(out.same).to.equal(true);
    // an error thrown on a call thread reaches the caller as its coded error, and the thread goes on
    expect(out.failing).to.match(/^RangeError ENCODEC_BAD_INPUT: .*span 0's geometry does not fit its 75 frames/);
  });

  it('frees models off the JavaScript thread, at dispose() and at garbage collection', function () {
    const out = runScript(`
      const { nativeBinding } = require(${JSON.stringify(path.join(PACKAGE_ROOT, 'dist', 'lib', 'addon', 'native.js'))});
      const binding = nativeBinding();
      const a = await binding.load(${JSON.stringify(modelPath)}, { threads: 1 });
      await a.encode([new Float32Array(3200)], 2);
      a.dispose(); // no call holds it: the last reference drops here, on the main thread
      let b = await binding.load(${JSON.stringify(modelPath)}, { threads: 1 });
      b = undefined;
      for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setTimeout(r, 50)); }
      process.stdout.write(JSON.stringify({ onJsThread: binding.runtimeInfo().modelsFreedOnJsThread }));`, { NODE_OPTIONS: '--expose-gc' }) as { onJsThread: number };
    expect(out.onJsThread).to.equal(0);
  });

  describe('out of memory', function () {
    // ENCODEC_NATIVE_TEST_MAX_BLOCK_MB makes the addon's CPU allocator refuse blocks above that size while a model
    // call runs. With 8 MiB, spans of 15 windows need a larger block and fail, spans of 8 windows fit; 1 MiB
    // does not fit one window. 30 s on one thread (one lane) in 2 s chunks is one span of 15 windows (the same
    // spans and halves as 60 s in 4 s chunks, in half the work).
    const LIMIT_MB = '8';
    const OPTIONS = '{ batchSeconds: 50, chunkSeconds: 2, contextSeconds: 0.5 }';
    const script = (options: string): string => `
      const { Encodec } = require(INDEX);
      const signal = (${SIGNAL})(30);
      // no warm-up: under the block limit it would fail at load, before the call this test is about
      const codec = await Encodec.load(${JSON.stringify(modelPath)}, { threads: 1, warmup: false });
      const result = {};
      try {
        const codes = await codec.encode(signal, ${options});
        result.codes = Array.from(codes.data);
        const audio = await codec.decode(codes, ${options});
        result.audio = Array.from(audio.subarray(0, 48000));
      } catch (e) {
        result.error = { code: e.code, message: e.message };
      }
      codec.dispose();
      process.stdout.write(JSON.stringify(result));`;

    it('retries the span in halves down to one chunk: the same codes, the same audio up to float rounding', function () {
      const free = runScript(script(OPTIONS)) as { codes: number[]; audio: number[]; error?: unknown };
      expect(free.error).to.equal(undefined);
      const run = runScriptWithStderr(script(OPTIONS), { ENCODEC_NATIVE_TEST_MAX_BLOCK_MB: LIMIT_MB, DEBUG: 'encodec-native' });
      const pressed = run.json as typeof free;
      expect(pressed.error).to.equal(undefined);
      expect(run.stderr).to.match(/out of memory coding frames 0\.\.\d+: retrying as 8 \+ 7 windows/);
      expect(pressed.codes).to.deep.equal(free.codes);
      // decoding in smaller batches changes the float rounding of the batched LSTM, nothing more
      expect(pressed.audio.length).to.equal(free.audio.length);
      const worst = pressed.audio.reduce((m, v, i) => Math.max(m, Math.abs(v - free.audio[i])), 0);
      expect(worst).to.be.below(1e-5);
    });

    it('fails with ENCODEC_OOM naming batchSeconds when one chunk does not fit', function () {
      const out = runScript(script(OPTIONS), { ENCODEC_NATIVE_TEST_MAX_BLOCK_MB: '1' }) as {
        error?: { code: string; message: string };
      };
      expect(out.error?.code).to.equal('ENCODEC_OOM');
      expect(out.error?.message).to.match(/batchSeconds/);
    });

    // Pooled calls (encodeBatch / decodeBatch, encodeMany / decodeMany) run a pack of spans of several clips in one
    // native call. Six 10 s clips in 2 s chunks make spans of 3 and 2 windows, six to a lane; with 100 s spans a
    // pack takes 25 windows' worth of frames, so all six: their 15 LSTM windows need a block over 8 MiB, packs of
    // three spans fit (encoding and decoding alike).
    const POOLED_OPTIONS = '{ batchSeconds: 100, chunkSeconds: 2, contextSeconds: 0.5 }';
    const pooledScript = (): string => `
      const { Encodec } = require(INDEX);
      const signal = (${SIGNAL})(60);
      const clips = [0, 1, 2, 3, 4, 5].map((i) => signal.subarray(i * 240000, (i + 1) * 240000 - i * 97));
      const codec = await Encodec.load(${JSON.stringify(modelPath)}, { threads: 2, warmup: false });
      const result = {};
      try {
        const batch = await codec.encodeBatch(clips, ${POOLED_OPTIONS});
        result.codes = batch.map((c) => Array.from(c.data));
        // one clip's spans fit without halving: encode(clip) is the reference under the same limit
        const alone = [];
        for (const clip of clips) alone.push(await codec.encode(clip, ${POOLED_OPTIONS}));
        result.alone = alone.map((c) => Array.from(c.data));
        const audio = await codec.decodeBatch(alone, ${POOLED_OPTIONS});
        let worst = 0;
        for (let i = 0; i < alone.length; i++) {
          const one = await codec.decode(alone[i], ${POOLED_OPTIONS});
          for (let j = 0; j < one.length; j++) worst = Math.max(worst, Math.abs(one[j] - audio[i][j]));
        }
        result.worstAudio = worst;
      } catch (e) {
        result.error = { code: e.code, message: e.message };
      }
      codec.dispose();
      process.stdout.write(JSON.stringify(result));`;

    it('retries a pooled pack in halves: each clip coded as encode(clip) / decode(codes) code it', function () {
      const run = runScriptWithStderr(pooledScript(), { ENCODEC_NATIVE_TEST_MAX_BLOCK_MB: LIMIT_MB, DEBUG: 'encodec-native' });
      const out = run.json as { codes: number[][]; alone: number[][]; worstAudio: number; error?: unknown };
      expect(out.error).to.equal(undefined);
      // the full pack ran out of memory (not merely fitted)
      expect(run.stderr).to.match(/out of memory coding \d+ spans: retrying as \d+ \+ \d+ spans/);
      expect(out.codes).to.have.length(6);
      const block = (data: number[]): Codes => ({ data: Int16Array.from(data), nQ: 8, nFrames: data.length / 8 });
      out.codes.forEach((codes, i) => expectCodesWithinRounding(block(codes), block(out.alone[i]), `clip ${i}`));
      expect(out.worstAudio).to.be.below(1e-5);
    });

    it('fails a pooled call with ENCODEC_OOM naming batchSeconds when one chunk does not fit', function () {
      const out = runScript(pooledScript(), { ENCODEC_NATIVE_TEST_MAX_BLOCK_MB: '1' }) as {
        error?: { code: string; message: string };
      };
      expect(out.error?.code).to.equal('ENCODEC_OOM');
      expect(out.error?.message).to.match(/batchSeconds/);
    });
  });
});
