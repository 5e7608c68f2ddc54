/**
 * LM-compressed `.ecdc` files (`"lm": true`): the addon's arithmetic coding with Meta's entropy-coding LM,
 * checked byte by byte against an independent eager restatement of Meta's compress/decompress
 * (test/reference/ecdc_lm_reference.py with the LM of test/reference/lm_reference.py), seeded random weights.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { BANDWIDTHS } from '../../lib/codec/bandwidth';
import { Encodec } from '../../lib/codec/codec';
import { Codes } from '../../lib/codec/codes';
import { EncodecLm } from '../../lib/lm/lm';
import { EcdcError, decodeEcdc, decodeEcdcLm, ecdcSegmentFrames, encodeEcdcLm, parseEcdcHeader, readEcdc, writeEcdc } from '../../lib/io/ecdc';
import { readNpy, writeNpy } from '../../lib/io/npy';
import { cli } from '../helpers/cli';
import { makeSpeech24k } from '../helpers/media';
import { randomLm, randomModel, randomModel48 } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';
import { loadAudio } from '../../lib/io/audio';

const REFERENCE = path.resolve(__dirname, '..', '..', '..', 'test', 'reference', 'ecdc_reference.py');

interface SegmentStats {
  bytes: number;
  ideal_bits: number;
}

function reference(args: string[]): string {
  const r = spawnSync('/usr/bin/python3', [REFERENCE, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

/**
 * Runs several reference commands (each the `args` of {@link reference}, with ECDC_REFERENCE_THREADS = `threads`
 * where given) in one Python process, in order (ecdc_reference.py batch: torch imported and each LM read once);
 * returns what each printed.
 */
function referenceBatch(jobs: { args: string[]; threads?: number }[]): string[] {
  const r = spawnSync('/usr/bin/python3', [REFERENCE, 'batch'], { input: JSON.stringify(jobs), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(r.stderr);
  const outputs = JSON.parse(r.stdout) as string[];
  expect(outputs).to.have.length(jobs.length);
  return outputs;
}

/** Segments of codes (and scales) as the reference reads them: SEG_DIR/codes_i.npy, scales.npy. */
async function writeSegments(dir: string, segments: Codes[], scales?: number[]): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < segments.length; i++) {
    await writeNpy(path.join(dir, `codes_${i}.npy`), segments[i].data, [segments[i].nQ, segments[i].nFrames]);
  }
  if (scales) await writeNpy(path.join(dir, 'scales.npy'), Float32Array.from(scales), [scales.length]);
}

/** Codes from a seeded LCG: uniform over 0..1023, with both extremes present. */
function randomCodes(nQ: number, nFrames: number, seed: number): Codes {
  const data = new Int16Array(nQ * nFrames);
  let x = seed;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = (x >>> 8) % 1024;
  }
  data[0] = 1023;
  data[data.length - 1] = 0;
  return { data, nQ, nFrames };
}

function join(segments: Codes[]): Codes {
  const nQ = segments[0].nQ;
  const nFrames = segments.reduce((a, s) => a + s.nFrames, 0);
  const data = new Int16Array(nQ * nFrames);
  let start = 0;
  for (const s of segments) {
    for (let q = 0; q < nQ; q++) data.set(s.data.subarray(q * s.nFrames, (q + 1) * s.nFrames), q * nFrames + start);
    start += s.nFrames;
  }
  return { data, nQ, nFrames };
}

/** The coded payload: what follows the header. */
function payload(bytes: Uint8Array): Buffer {
  const { start } = parseEcdcHeader(bytes);
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, bytes.byteLength - start);
}

async function expectEcdcError(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  let error: unknown;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  expect(error, `expected ${code}`).to.be.instanceOf(Error);
  expect((error as EcdcError).code, (error as Error).message).to.equal(code);
  expect((error as Error).message).to.match(pattern);
}

describe('LM-compressed .ecdc files', function () {
  this.timeout(900000);
  const dir = tempDir('ecdc-lm');
  let lm24: { lm: string; checkpoint: string };
  let lm48: { lm: string; checkpoint: string };
  let lm: EncodecLm;

  before(async function () {
    [lm24, lm48] = await Promise.all([randomLm('encodec_24khz', 0), randomLm('encodec_48khz', 1)]);
    lm = await EncodecLm.load(lm24.lm);
  });
  after(() => lm?.dispose());

  it("writes files byte-identical to Meta's compress(use_lm=True) at every bandwidth, as tight as arithmetic coding allows, that decode to the same codes", async function () {
    const codec = await Encodec.load(await randomModel(0), { warmup: false });
    try {
      const speech = await makeSpeech24k(dir, 'the quick brown fox', 0.5);
      const { samples } = await loadAudio(speech, { sampleRate: 24000 });
      const coded: Codes[] = [];
      for (const bandwidth of BANDWIDTHS) {
        const codes = await codec.encode(samples, { bandwidth });
        coded.push(codes);
        await writeEcdc(path.join(dir, `ours-${bandwidth}.ecdc`), codes, { audioLength: samples.length, lm });
        await writeSegments(path.join(dir, `seg-${bandwidth}`), [codes]);
      }
      // the reference writes every bandwidth's file in one process
      const written = referenceBatch(BANDWIDTHS.map((bandwidth) => ({
        args: ['write-lm', 'encodec_24khz', String(samples.length), path.join(dir, `seg-${bandwidth}`), lm24.checkpoint, path.join(dir, `theirs-${bandwidth}.ecdc`)],
      })));
      for (const [i, bandwidth] of BANDWIDTHS.entries()) {
        const codes = coded[i];
        const ours = path.join(dir, `ours-${bandwidth}.ecdc`);
        const theirs = path.join(dir, `theirs-${bandwidth}.ecdc`);
        const [stats] = JSON.parse(written[i]) as SegmentStats[];
        const a = fs.readFileSync(ours);
        const b = fs.readFileSync(theirs);
        expect(a.equals(b), `${bandwidth} kbps: ${a.length} vs ${b.length} bytes`).to.equal(true);
        expect(a.subarray(9, 9 + a.readUInt32BE(5)).toString()).to.equal(
          `{"m": "encodec_24khz", "al": ${samples.length}, "nc": ${codes.nQ}, "lm": true}`,
        );
        // payload within 2 bytes per frame (plus the final flush) of the ideal size under the quantized CDFs
        expect(stats.bytes).to.equal(payload(a).length);
        expect(stats.bytes * 8).to.be.at.least(stats.ideal_bits);
        expect(stats.bytes).to.be.at.most(stats.ideal_bits / 8 + 2 * codes.nFrames + 8);
        const back = await readEcdc(ours, { lm });
        expect(back.metadata).to.deep.equal({ model: 'encodec_24khz', audioLength: samples.length, numCodebooks: codes.nQ, lm: true });
        expect(Array.from(back.codes.data)).to.deep.equal(Array.from(codes.data));
      }
    } finally {
      codec.dispose();
    }
  });

  it("reads files Meta's decompress reads, and Meta's reader reads ours (both directions, odd sizes, past the LM's 262-frame context)", async function () {
    // 300 frames: the LM's window fills (262 past frames) and slides, where the C++ step's key/value cache must
    // still give the eager model's bits
    const cases = [[2, 1, 100], [4, 37, 37 * 320 - 7], [32, 9, 9 * 320], [8, 300, 300 * 320]] as const;
    const name = (nQ: number, nFrames: number, what: string): string => path.join(dir, `rand-${what}-${nQ}-${nFrames}`);
    // ours written first, then the reference writes its files and reads ours, all in one process
    for (const [nQ, nFrames, audioLength] of cases) {
      const codes = randomCodes(nQ, nFrames, nQ * 100 + nFrames);
      await writeSegments(name(nQ, nFrames, 'seg'), [codes]);
      await writeEcdc(`${name(nQ, nFrames, 'ours')}.ecdc`, codes, { audioLength, lm });
    }
    const printed = referenceBatch(cases.flatMap(([nQ, nFrames, audioLength]) => [
      { args: ['write-lm', 'encodec_24khz', String(audioLength), name(nQ, nFrames, 'seg'), lm24.checkpoint, `${name(nQ, nFrames, 'theirs')}.ecdc`] },
      { args: ['read-lm', `${name(nQ, nFrames, 'ours')}.ecdc`, lm24.checkpoint, name(nQ, nFrames, 'read')] },
    ]));
    for (const [i, [nQ, nFrames, audioLength]] of cases.entries()) {
      const codes = randomCodes(nQ, nFrames, nQ * 100 + nFrames);
      const theirs = `${name(nQ, nFrames, 'theirs')}.ecdc`;
      const read = await readEcdc(theirs, { lm });
      expect(Array.from(read.codes.data), `${nQ}x${nFrames}`).to.deep.equal(Array.from(codes.data));

      const ours = `${name(nQ, nFrames, 'ours')}.ecdc`;
      expect(fs.readFileSync(ours).equals(fs.readFileSync(theirs))).to.equal(true);
      const outDir = name(nQ, nFrames, 'read');
      const meta = JSON.parse(printed[2 * i + 1]) as Record<string, unknown>;
      expect(meta).to.deep.equal({ m: 'encodec_24khz', al: audioLength, nc: nQ, lm: true });
      const decoded = await readNpy(path.join(outDir, 'codes_0.npy'));
      expect(Array.from(decoded.data as Int16Array)).to.deep.equal(Array.from(codes.data));
    }
    // these bytes came from the C++ step (native/lm_step.cc), not from the TorchScript fallback, and compression ran
    // the LM on blocks of frames (native/lm_block.cc)
    expect(lm.fastStep).to.equal(true);
    expect(lm.blockStep).to.equal(true);
  });

  /**
   * Runs `work` on the 24 kHz LM loaded with `jobs` segments at once, the environment variable `env` (if any) set
   * to 1 meanwhile: the native step reads it when the LM's first call builds the step.
   */
  async function withLm24<T>(jobs: number, env: string | undefined, work: (lm24k: EncodecLm) => Promise<T>): Promise<T> {
    const lm24k = await EncodecLm.load(lm24.lm, { jobs });
    if (env) process.env[env] = '1';
    try {
      return await work(lm24k);
    } finally {
      if (env) delete process.env[env];
      lm24k.dispose();
    }
  }

  it('compresses blocks of frames on 1, 2 or 3 threads with the bytes of the frame-by-frame step (many blocks, past the window)', async function () {
    // 600 frames: nine full blocks of 64 and a partial one, the window full from frame 262 on
    const codes = randomCodes(8, 600, 8600);
    const expected = await withLm24(1, 'ENCODEC_NATIVE_LM_FRAMEWISE', async (framewise) => {
      const [coded] = await framewise.compressSegments([codes]);
      expect(framewise.fastStep).to.equal(true);
      expect(framewise.blockStep).to.equal(false);
      return coded;
    });
    for (const jobs of [1, 2, 3]) {
      await withLm24(jobs, undefined, async (blocks) => {
        const [ours] = await blocks.compressSegments([codes]);
        expect(blocks.blockStep, `${jobs} threads`).to.equal(true);
        expect(Buffer.from(ours).equals(Buffer.from(expected)), `${jobs} threads`).to.equal(true);
        const back = await blocks.decompressSegments(ours, 8, [600]);
        expect(Array.from(back.codes[0].data)).to.deep.equal(Array.from(codes.data));
      });
    }
  });

  it("computes past frames' key/value variants with its own sums, with the bytes BLAS's products give (both ways, past the window)", async function () {
    // 600 frames: every variant of the 263-row window, in blocks (compression) and frame by frame (decompression)
    const codes = randomCodes(8, 600, 8601);
    const expected = await withLm24(1, 'ENCODEC_NATIVE_LM_BLAS_VARIANTS', async (blas) => {
      const [coded] = await blas.compressSegments([codes]);
      const back = await blas.decompressSegments(coded, 8, [600]);
      expect(Array.from(back.codes[0].data)).to.deep.equal(Array.from(codes.data));
      expect(blas.fastStep).to.equal(true);
      expect(blas.kvSums).to.equal(false);
      return coded;
    });
    await withLm24(1, undefined, async (sums) => {
      const [ours] = await sums.compressSegments([codes]);
      expect(sums.kvSums).to.equal(true);
      expect(sums.blockStep).to.equal(true);
      expect(Buffer.from(ours).equals(Buffer.from(expected))).to.equal(true);
      const back = await sums.decompressSegments(expected, 8, [600]);
      expect(Array.from(back.codes[0].data)).to.deep.equal(Array.from(codes.data));
    });
  });

  it('decodes each frame on two threads with the codes one thread decodes (past the window, BLAS variants, 48 kHz segments)', async function () {
    // 600 frames of 24 kHz codes, coded once; decoded with one thread per frame, then with the frame's products,
    // attention and heads shared with a helper thread (native/lm_pair.h), with the sums and with BLAS's variants
    const codes = randomCodes(8, 600, 8602);
    const coded = await withLm24(1, undefined, async (one) => {
      const [c] = await one.compressSegments([codes]);
      const back = await one.decompressSegments(c, 8, [600]);
      expect(Array.from(back.codes[0].data)).to.deep.equal(Array.from(codes.data));
      expect(one.pairedDecode, 'one thread').to.equal(false);
      return c;
    });
    for (const env of [undefined, 'ENCODEC_NATIVE_LM_BLAS_VARIANTS', 'ENCODEC_NATIVE_LM_NO_PAIR']) {
      await withLm24(2, env, async (two) => {
        const back = await two.decompressSegments(coded, 8, [600]);
        expect(Array.from(back.codes[0].data), env).to.deep.equal(Array.from(codes.data));
        expect(two.fastStep, env).to.equal(true);
        // the helper ran parts of the frames (not the caller alone), except where the pair is turned off
        expect(two.pairedDecode, env).to.equal(env !== 'ENCODEC_NATIVE_LM_NO_PAIR');
      });
    }
    // 48 kHz, 16 codebooks: three segments, the LM restarted at each
    const blocks = [0, 1, 2].map((i) => randomCodes(16, 150 - 20 * i, 8603 + i));
    const lm48one = await EncodecLm.load(lm48.lm, { jobs: 1 });
    const lm48two = await EncodecLm.load(lm48.lm, { jobs: 2 });
    try {
      const payloads = await lm48one.compressSegments(blocks);
      const data = Buffer.concat(payloads.map((p) => Buffer.from(p)));
      const frames = blocks.map((b) => b.nFrames);
      const [one, two] = [await lm48one.decompressSegments(data, 16, frames), await lm48two.decompressSegments(data, 16, frames)];
      expect(two.end).to.equal(one.end);
      for (let i = 0; i < blocks.length; i++) {
        expect(Array.from(one.codes[i].data), `segment ${i}`).to.deep.equal(Array.from(blocks[i].data));
        expect(Array.from(two.codes[i].data), `segment ${i}`).to.deep.equal(Array.from(blocks[i].data));
      }
      expect([lm48one.pairedDecode, lm48two.pairedDecode]).to.deep.equal([false, true]);
    } finally {
      lm48one.dispose();
      lm48two.dispose();
    }
  });

  it('codes 48 kHz files segment by segment, each with its scale first, byte-identical to the reference', async function () {
    const lm48k = await EncodecLm.load(lm48.lm);
    try {
      const audioLength = 47520 + 1000; // two segments, the second one short
      const frames = ecdcSegmentFrames('encodec_48khz', audioLength);
      expect(frames).to.deep.equal([150, 4]);
      // Meta's segments: the second-to-last is short when the last holds under 480 samples
      expect(ecdcSegmentFrames('encodec_48khz', 47520 * 2 + 1)).to.deep.equal([150, 149, 1]);
      // every bandwidth of the model: 3 / 6 / 12 / 24 kbps -> 2 / 4 / 8 / 16 codebooks
      const nQs = [2, 4, 8, 16];
      const scales = [0.125, 1.5e-8 + 1e-8];
      const segmentsOf = (nQ: number): Codes[] => frames.map((n, i) => randomCodes(nQ, n, 7 * nQ + i));
      for (const nQ of nQs) await writeSegments(path.join(dir, `seg48-${nQ}`), segmentsOf(nQ), scales);
      // the reference writes the four files in one process
      const written = referenceBatch(nQs.map((nQ) => ({
        args: ['write-lm', 'encodec_48khz', String(audioLength), path.join(dir, `seg48-${nQ}`), lm48.checkpoint, path.join(dir, `theirs48-${nQ}.ecdc`)],
      })));
      for (const [n, nQ] of nQs.entries()) {
        const codes = { ...join(segmentsOf(nQ)), scales: Float32Array.from(scales), segmentFrames: 150 };
        const theirs = path.join(dir, `theirs48-${nQ}.ecdc`);
        const stats = JSON.parse(written[n]) as SegmentStats[];
        const ours = await encodeEcdcLm(codes, audioLength, lm48k);
        expect(ours.equals(fs.readFileSync(theirs)), `${nQ} codebooks`).to.equal(true);
        // scale (big-endian float32) before each segment's payload
        const start = parseEcdcHeader(ours).start;
        expect(ours.readFloatBE(start)).to.equal(Math.fround(scales[0]));
        expect(ours.readFloatBE(start + 4 + stats[0].bytes)).to.equal(Math.fround(scales[1]));
        stats.forEach((s, i) => expect(s.bytes, `segment ${i}`).to.be.at.most(s.ideal_bits / 8 + 2 * frames[i] + 8));
        const back = await decodeEcdcLm(ours, lm48k);
        expect(Array.from(back.codes.data)).to.deep.equal(Array.from(codes.data));
        expect(Array.from((back.codes as typeof codes).scales)).to.deep.equal(scales.map((s) => Math.fround(s)));
        expect((back.codes as typeof codes).segmentFrames).to.equal(150);
      }
      expect(lm48k.fastStep).to.equal(true);
    } finally {
      lm48k.dispose();
    }
  });

  it('codes the segments of a 48 kHz file on 1, 2 or 4 threads at once with the same bytes, the reference\'s', async function () {
    const audioLength = 47520 * 4 + 3000; // five segments, the last one short
    const frames = ecdcSegmentFrames('encodec_48khz', audioLength);
    expect(frames).to.deep.equal([150, 150, 150, 150, 10]);
    const segments = frames.map((n, i) => randomCodes(4, n, 31 + i));
    const scales = frames.map((_, i) => 0.01 * (i + 1));
    const codes = { ...join(segments), scales: Float32Array.from(scales), segmentFrames: 150 };
    const segDir = path.join(dir, 'jobs48');
    await writeSegments(segDir, segments, scales);
    const theirs = path.join(dir, 'jobs48-theirs.ecdc');
    reference(['write-lm', 'encodec_48khz', String(audioLength), segDir, lm48.checkpoint, theirs]);
    const expected = fs.readFileSync(theirs);
    for (const jobs of [1, 2, 4]) {
      const lmJobs = await EncodecLm.load(lm48.lm, { jobs });
      try {
        expect(lmJobs.jobs).to.equal(jobs);
        const ours = await encodeEcdcLm(codes, audioLength, lmJobs);
        expect(ours.equals(expected), `${jobs} segments at once`).to.equal(true);
        const back = await decodeEcdcLm(ours, lmJobs);
        expect(Array.from(back.codes.data), `${jobs} segments at once`).to.deep.equal(Array.from(codes.data));
        expect(lmJobs.fastStep).to.equal(true);
      } finally {
        lmJobs.dispose();
      }
    }
    for (const jobs of [0, 1.5, 1025]) {
      let error: unknown;
      await EncodecLm.load(lm48.lm, { jobs }).catch((err: unknown) => (error = err));
      expect(error, `jobs ${jobs}`).to.be.instanceOf(RangeError);
      expect((error as Error).message).to.match(/jobs must be an integer in \[1, 1024\]/);
    }
  });

  it('codes what the 48 kHz model encodes (stereo, segments with scales) end to end, byte-identical to the reference', async function () {
    const codec = await Encodec.load((await randomModel48(0)).model, { warmup: false });
    const lm48k = await EncodecLm.load(lm48.lm);
    try {
      const n = 52000; // two segments: 150 and 14 frames
      const stereo = new Float32Array(2 * n);
      let x = 17;
      for (let i = 0; i < n; i++) {
        x = (x * 1103515245 + 12345) >>> 0;
        const noise = (x / 2 ** 32 - 0.5) * 0.05;
        stereo[i] = 0.3 * Math.sin((2 * Math.PI * 440 * i) / 48000) + noise;
        stereo[n + i] = 0.2 * Math.sin((2 * Math.PI * 660 * i) / 48000) - noise;
      }
      const codes = (await codec.encode(stereo, { bandwidth: 6 })) as Codes & { scales: Float32Array };
      const frames = ecdcSegmentFrames('encodec_48khz', n);
      expect(frames).to.deep.equal([150, 14]);
      const file = path.join(dir, 'stereo.ecdc');
      await writeEcdc(file, codes, { audioLength: n, lm: lm48k });
      const segDir = path.join(dir, 'stereo-seg');
      const segments = frames.map((f, k) => {
        const start = k * 150;
        const data = new Int16Array(codes.nQ * f);
        for (let q = 0; q < codes.nQ; q++) data.set(codes.data.subarray(q * codes.nFrames + start, q * codes.nFrames + start + f), q * f);
        return { data, nQ: codes.nQ, nFrames: f };
      });
      await writeSegments(segDir, segments, Array.from(codes.scales));
      const theirs = path.join(dir, 'stereo-theirs.ecdc');
      reference(['write-lm', 'encodec_48khz', String(n), segDir, lm48.checkpoint, theirs]);
      expect(fs.readFileSync(file).equals(fs.readFileSync(theirs))).to.equal(true);
      const back = await readEcdc(file, { lm: lm48k });
      expect(Array.from(back.codes.data)).to.deep.equal(Array.from(codes.data));
      expect(Array.from(back.codes.scales as Float32Array)).to.deep.equal(Array.from(codes.scales));
      const plain = await codec.decode(codes);
      const viaLm = await codec.decode(back.codes);
      expect(Buffer.from(viaLm.buffer).equals(Buffer.from(plain.buffer))).to.equal(true);
    } finally {
      codec.dispose();
      lm48k.dispose();
    }
  });

  it("runs the LM's steps on the threads it is given, like torch.set_num_threads in Meta's code", async function () {
    const codes = randomCodes(4, 30, 11);
    const segDir = path.join(dir, 'threads');
    await writeSegments(segDir, [codes]);
    const lm2 = await EncodecLm.load(lm24.lm, { threads: 2 });
    try {
      // the reference with torch.set_num_threads(1), then (2), in one process
      const theirsFor = (threads: number): string => path.join(dir, `threads-${threads}.ecdc`);
      referenceBatch([1, 2].map((threads) => ({ args: ['write-lm', 'encodec_24khz', String(30 * 320), segDir, lm24.checkpoint, theirsFor(threads)], threads })));
      for (const [threads, model] of [[1, lm], [2, lm2]] as const) {
        const theirs = theirsFor(threads);
        const ours = await encodeEcdcLm(codes, 30 * 320, model);
        expect(ours.equals(fs.readFileSync(theirs)), `${threads} threads`).to.equal(true);
        expect(Array.from((await decodeEcdcLm(ours, model)).codes.data)).to.deep.equal(Array.from(codes.data));
      }
      // 1 thread: the C++ step; 2 threads: the TorchScript module (OpenBLAS splits the products between threads)
      expect([lm.fastStep, lm2.fastStep]).to.deep.equal([true, false]);
    } finally {
      lm2.dispose();
    }
  });

  it('fails with ECDC_DESYNC on truncated, corrupt or over-long streams, never returning wrong codes', async function () {
    const codes = randomCodes(8, 40, 5);
    const good = await encodeEcdcLm(codes, 40 * 320, lm);
    await expectEcdcError(decodeEcdcLm(good.subarray(0, good.length - 1), lm), 'ECDC_DESYNC', /ended before all codes were decoded/);
    await expectEcdcError(decodeEcdcLm(good.subarray(0, good.length - 100), lm), 'ECDC_DESYNC', /ended before/);
    await expectEcdcError(decodeEcdcLm(Buffer.concat([good, Buffer.from([0])]), lm), 'ECDC_DESYNC', /1 bytes follow the last coded segment/);
    const start = parseEcdcHeader(good).start;
    let flips = 0;
    for (let i = start; i < good.length; i += 13) {
      const bad = Buffer.from(good);
      bad[i] ^= 0x10;
      await expectEcdcError(decodeEcdcLm(bad, lm), 'ECDC_DESYNC', /another LM|damaged/);
      flips++;
    }
    expect(flips).to.be.greaterThan(15);
    // random bytes after a valid header: rejected, never a crash (the coder's ranges stay in bounds)
    let x = 99;
    for (let n = 0; n < 15; n++) {
      const junk = Buffer.alloc(1 + n * 26);
      for (let i = 0; i < junk.length; i++) {
        x = (x * 1103515245 + 12345) >>> 0;
        junk[i] = x >>> 24;
      }
      await expectEcdcError(decodeEcdcLm(Buffer.concat([good.subarray(0, start), junk]), lm), 'ECDC_DESYNC', /cannot decode|bytes follow/);
    }
    // another LM of the same codec: the probabilities differ, the stream cannot be followed
    const other = await EncodecLm.load((await randomLm('encodec_24khz', 3)).lm);
    try {
      await expectEcdcError(decodeEcdcLm(good, other), 'ECDC_DESYNC', /cannot decode the LM-coded stream/);
    } finally {
      other.dispose();
    }
  });

  it('names the fix when the LM is missing or belongs to the other codec, or a model file is used as the other kind', async function () {
    const codes = randomCodes(4, 10, 9);
    const file = path.join(dir, 'needs-lm.ecdc');
    await writeEcdc(file, codes, { audioLength: 3200, lm });
    await expectEcdcError(readEcdc(file), 'ECDC_NEEDS_LM', /"lm": true.*needs the LM of encodec_24khz.*--lm-model/);
    expect(() => decodeEcdc(fs.readFileSync(file))).to.throw(/needs the LM/);
    const lm48k = await EncodecLm.load(lm48.lm);
    try {
      await expectEcdcError(readEcdc(file, { lm: lm48k }), 'ECDC_WRONG_MODEL', /encodec_24khz.*belongs to encodec_48khz/);
      await expectEcdcError(encodeEcdcLm(codes, 3200, lm48k), 'ECDC_WRONG_MODEL', /pass the LM of encodec_24khz/);
    } finally {
      lm48k.dispose();
    }
    let error: Error | undefined;
    try {
      await Encodec.load(lm24.lm);
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/entropy-coding LM.*not a codec model/);
    error = undefined;
    try {
      await EncodecLm.load(await randomModel(0));
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/codec model, not an entropy-coding LM/);
  });
});

describe('compress --lm / decompress commands', function () {
  this.timeout(900000);
  const dir = tempDir('ecdc-lm-cli');
  let model: string;
  let lm24: string;
  let lm48: string;
  let speechWav: string;

  before(async function () {
    const [codec, l24, l48] = await Promise.all([randomModel(0), randomLm('encodec_24khz', 0), randomLm('encodec_48khz', 1)]);
    // the LM's default place: beside the model, named for the codec
    model = path.join(dir, 'model.pt');
    fs.symlinkSync(codec, model);
    lm24 = path.join(dir, 'encodec_lm_24khz.pt');
    fs.symlinkSync(l24.lm, lm24);
    lm48 = l48.lm;
    speechWav = await makeSpeech24k(dir, 'entropy coded', 0.5);
  });

  it('compress --lm writes what the library writes; decompress, decode and reconstruct find the LM beside the model', async function () {
    const out = path.join(dir, 'speech.ecdc');
    const r = cli(['compress', speechWav, '--model', model, '--lm', '--bandwidth', '3', '--out', out], { ENCODEC_LM_MODEL: undefined });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/LM-coded/);
    const codec = await Encodec.load(model, { warmup: false });
    const lm = await EncodecLm.load(lm24);
    try {
      const { samples } = await loadAudio(speechWav, { sampleRate: 24000 });
      const codes = await codec.encode(samples, { bandwidth: 3 });
      expect(fs.readFileSync(out).equals(await encodeEcdcLm(codes, samples.length, lm))).to.equal(true);
    } finally {
      codec.dispose();
      lm.dispose();
    }
    const plain = path.join(dir, 'plain.ecdc');
    expect(cli(['compress', speechWav, '--model', model, '--bandwidth', '3', '--out', plain]).status).to.equal(0);
    const fromLm = path.join(dir, 'from-lm.wav');
    const fromPlain = path.join(dir, 'from-plain.wav');
    const d = cli(['decompress', out, '--model', model, '--out', fromLm], { ENCODEC_LM_MODEL: undefined });
    expect(d.status, d.stderr).to.equal(0);
    expect(cli(['decompress', plain, '--model', model, '--out', fromPlain]).status).to.equal(0);
    expect(fs.readFileSync(fromLm).equals(fs.readFileSync(fromPlain))).to.equal(true);
    const viaDecode = path.join(dir, 'via-decode.wav');
    expect(cli(['decode', out, '--model', model, '--lm-model', lm24, '--out', viaDecode]).status).to.equal(0);
    expect(fs.readFileSync(viaDecode).equals(fs.readFileSync(fromPlain))).to.equal(true);
    const rec = path.join(dir, 'rec.wav');
    const rr = cli(['reconstruct', out, '--model', model, '--out', rec], { ENCODEC_LM_MODEL: undefined });
    expect(rr.status, rr.stderr).to.equal(0);
    expect(rr.stderr).to.match(/LM-coded/);
  });

  it('fails cleanly, writing nothing: no LM, the LM of the other codec, an LM as the model, a 48 kHz file, a damaged stream', async function () {
    const out = path.join(dir, 'speech.ecdc');
    const never = path.join(dir, 'never.wav');
    const lonely = path.join(dir, 'lonely');
    fs.mkdirSync(lonely);
    const lonelyModel = path.join(lonely, 'model.pt');
    fs.symlinkSync(fs.realpathSync(model), lonelyModel);
    const noLm = cli(['decompress', out, '--model', lonelyModel, '--out', never], { ENCODEC_LM_MODEL: undefined });
    expect(noLm.status).to.equal(1);
    expect(noLm.stderr).to.match(/no LM file at '.*lonely\/encodec_lm_24khz\.pt'.*model fetch/);
    const wrongLm = cli(['decompress', out, '--model', model, '--lm-model', lm48, '--out', never]);
    expect(wrongLm.status).to.equal(2);
    expect(wrongLm.stderr).to.match(/belongs to encodec_48khz/);
    const compressWrong = cli(['compress', speechWav, '--model', model, '--lm', '--lm-model', lm48, '--out', path.join(dir, 'never.ecdc')]);
    expect(compressWrong.status).to.equal(2);
    const lmAsModel = cli(['decompress', out, '--model', lm24, '--out', never]);
    expect(lmAsModel.status).to.equal(1);
    expect(lmAsModel.stderr).to.match(/entropy-coding LM.*not a codec model/);
    const noFlag = cli(['compress', speechWav, '--model', model, '--lm-model', lm24, '--out', path.join(dir, 'never.ecdc')]);
    expect(noFlag.status).to.equal(2);
    expect(noFlag.stderr).to.match(/--lm-model and --lm-threads are used with --lm/);
    const jobsNoFlag = cli(['compress', speechWav, '--model', model, '--lm-jobs', '2', '--out', path.join(dir, 'never.ecdc')]);
    expect(jobsNoFlag.status).to.equal(2);
    expect(jobsNoFlag.stderr).to.match(/--lm-jobs is used with --lm/);
    // a 48 kHz file (written from codes and scales) with the 24 kHz model
    const file48 = path.join(dir, 'file48.ecdc');
    await writeEcdc(file48, { ...randomCodes(4, 149, 1), scales: Float32Array.from([0.5]), segmentFrames: 150 } as Codes, { audioLength: 47520 });
    const wrongModel = cli(['decompress', file48, '--model', model, '--out', never]);
    expect(wrongModel.status).to.equal(2);
    expect(wrongModel.stderr).to.match(/made with encodec_48khz.*is encodec_24khz/);
    const damaged = path.join(dir, 'damaged.ecdc');
    const bytes = fs.readFileSync(out);
    fs.writeFileSync(damaged, bytes.subarray(0, bytes.length - 3));
    const bad = cli(['decompress', damaged, '--model', model, '--out', never]);
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.match(/cannot decode the LM-coded stream.*nothing was decoded/);
    expect(fs.existsSync(never)).to.equal(false);
    expect(fs.existsSync(path.join(dir, 'never.ecdc'))).to.equal(false);
  });
});
