/**
 * Native API hardening: a short fuzz run (`npm run fuzz` does >= 10 000 calls), and regression tests for the
 * crash the fuzzer found: an input ArrayBuffer detached while the addon worked on it (a segfault before inputs
 * were pinned or copied). Each runs in a child process, so a crash shows as a signal instead of killing the test runner.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { markAsUntransferable } from 'node:worker_threads';

import { expect } from 'chai';

import { FuzzReport } from '../../fuzz/fuzzer';
import { nativeBinding } from '../../lib/addon/native';
import { randomModel, randomModel48 } from '../helpers/model';
import { PACKAGE_ROOT } from '../../lib/common/package-root';

const DIST = path.join(PACKAGE_ROOT, 'dist');

function node(args: string[]): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('native API hardening', function () {
  let modelPath: string;
  let model48Path: string;

  before(async function () {
    modelPath = await randomModel(0);
    model48Path = (await randomModel48(0)).model;
  });

  it('survives 500 malformed calls, each throwing or rejecting with an Error (the LMs of both codecs, the 48 kHz model and hostile .ecdc files among them)', function () {
    const r = node([path.join(DIST, 'fuzz', 'run.js'), '--calls', '500', '--seed', '20251126', '--model', modelPath, '--model48', model48Path, '--json']);
    expect(r.signal, `the fuzzer crashed: ${r.stderr}`).to.equal(null);
    expect(r.status, r.stderr).to.equal(0);
    const report = JSON.parse(r.stdout) as FuzzReport;
    expect(report.failures).to.deep.equal([]);
    expect(report.calls).to.equal(500);
    expect(report.thrown + report.rejected + report.resolved).to.equal(500);
    expect(report.thrown).to.be.greaterThan(100);
    expect(report.rejected).to.be.greaterThan(100); // validation off the event loop (NaN samples, code ranges) ran too
    const names = Object.keys(report.cases);
    expect(names.length).to.be.at.least(25);
    const segmentedKinds = ['48k native.encode([bad stereo clip])', '48k native.decode([bad segment codes])', '48k codec.decode(bad segmented codes)'];
    for (const kind of segmentedKinds) expect(names, kind).to.include(kind);
    const lmKinds = ['lm.compress(bad blocks)', 'lm.decompress(bad arguments)', 'lm call after dispose()', 'decodeEcdcLm(hostile LM file)', 'decodeEcdc(hostile plain file)'];
    for (const kind of ['native.encode(bad nQ)', 'native.decode([bad codes])', 'codec.encode(bad bandwidth)', 'call after dispose()', 'binding.load(bad path)', ...lmKinds]) {
      expect(names, kind).to.include(kind);
    }
  });

  it('reports a call that broke the contract and exits 1 (the fuzzer can fail)', function () {
    // A "model" whose encode resolves on anything: the fuzzer must flag it. Run through its module API.
    const script = `
      const { fuzz } = require(${JSON.stringify(path.join(DIST, 'fuzz', 'fuzzer.js'))});
      const { Encodec } = require(${JSON.stringify(path.join(DIST, 'lib', 'codec', 'codec.js'))});
      Encodec.prototype.encode = async () => ({ data: new Int16Array(0), nQ: 0, nFrames: 0 });
      fuzz({ modelPath: ${JSON.stringify(modelPath)}, calls: 300, seed: 3 }).then((r) => {
        process.stdout.write(JSON.stringify(r.failures));
      });`;
    const r = node(['-e', script]);
    expect(r.status, r.stderr).to.equal(0);
    const failures = JSON.parse(r.stdout) as string[];
    expect(failures.length).to.be.greaterThan(0);
    expect(failures.join('\n')).to.match(/codec\.encode\(bad (clip|bandwidth|options)\): resolved .* instead of rejecting/);
  });

  // 10 s of samples (a buffer big enough that freeing it unmaps the memory), transferred away right after encode()
  // is called, the clone dropped and collected; and a getter on a later code block that detaches an earlier one.
  // Through lib/native.ts the addon pins input buffers (zero-copy: the transfer then copies and the caller's array
  // stays intact); loaded raw, without the pinner, it copies inputs, and the transfer detaches the caller's array.
  const detachScript = (raw: boolean): string => `
      const v8 = require('node:v8'); v8.setFlagsFromString('--expose-gc');
      const gc = require('node:vm').runInNewContext('gc');
      const binding = ${raw
        ? `require('node-gyp-build')(${JSON.stringify(path.resolve(DIST, '..'))})`
        : `require(${JSON.stringify(path.join(DIST, 'lib', 'addon', 'native.js'))}).nativeBinding()`};
      const tone = () => Float32Array.from({ length: 240000 }, (_, i) => 0.3 * Math.sin(i / 9) + 0.1 * Math.sin(i / 31));
      (async () => {
        const model = await binding.load(${JSON.stringify(modelPath)}, { threads: 2 });
        const [expected] = await model.encode([tone()], 8);
        const clip = tone();
        const pending = model.encode([clip], 8);
        structuredClone(clip.buffer, { transfer: [clip.buffer] });
        for (let i = 0; i < 10; i++) { gc(); new Float32Array(1 << 22).fill(i); }
        const [codes] = await pending;
        const same = codes.nFrames === expected.nFrames && codes.data.every((v, i) => v === expected.data[i]);

        const big = { data: Int16Array.from({ length: 32 * 7500 }, (_, i) => (i * 7) % 1024), nQ: 32, nFrames: 7500 };
        const [want] = await model.dequantize([{ ...big, data: big.data.slice() }]);
        const sneaky = { nQ: 2, nFrames: 1, get data() {
          structuredClone(big.data.buffer, { transfer: [big.data.buffer] });
          gc();
          return new Int16Array(2);
        } };
        const [got] = await model.dequantize([big, sneaky]);
        const sameLatents = got.data.length === want.data.length && got.data.every((v, i) => v === want.data[i]);
        const inputsCopied = binding.runtimeInfo().inputsCopied;
        process.stdout.write(JSON.stringify({ same, detached: clip.length === 0, sameLatents, inputsCopied }));
        model.dispose();
      })().catch((e) => { console.error(e); process.exit(1); });`;

  it('reads audio in place, pinned so a caller cannot detach it during a call (detaching was a segfault)', function () {
    const r = node(['-e', detachScript(false)]);
    expect(r.signal, 'the process crashed').to.equal(null);
    expect(r.status, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal({ same: true, detached: false, sameLatents: true, inputsCopied: false });
  });

  it('copies inputs when loaded without the pinner, so detaching during a call is still safe', function () {
    const r = node(['-e', detachScript(true)]);
    expect(r.signal, 'the process crashed').to.equal(null);
    expect(r.status, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal({ same: true, detached: true, sameLatents: true, inputsCopied: true });
  });

  it('keeps its buffer pinner once set: the same function again is fine, another one is refused', function () {
    const binding = nativeBinding();
    const pin = markAsUntransferable as (buffer: ArrayBufferLike) => void;
    expect(() => binding.setBufferPinner(pin)).not.to.throw();
    expect(() => binding.setBufferPinner(() => undefined)).to.throw(Error, /the buffer pinner is already set/);
    expect(binding.runtimeInfo().inputsCopied).to.equal(false);
  });

  it('pins the real backing store, not what a redefined `buffer` property returns', async function () {
    const { Encodec } = await import('../../lib/codec/codec');
    const codec = await Encodec.load(modelPath, { threads: 1, warmup: false });
    try {
      const clip = Float32Array.from({ length: 4800 }, (_, i) => 0.2 * Math.sin(i / 7));
      Object.defineProperty(clip, 'buffer', { value: new ArrayBuffer(8) });
      await codec.encode(clip, { bandwidth: 1.5 });
      const real = Object.getPrototypeOf(Float32Array.prototype) as object;
      const backing = Object.getOwnPropertyDescriptor(real, 'buffer')!.get!.call(clip) as ArrayBuffer;
      structuredClone(backing, { transfer: [backing] }); // pinned: copied, not moved
      expect(backing.byteLength).to.equal(4800 * 4);
    } finally {
      codec.dispose();
    }
  });
});
