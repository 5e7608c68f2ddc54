/**
 * Many clips at once (encodeBatch / decodeBatch, encodeMany / decodeMany): pooled span calls against one clip at
 * a time (encode(clip) / decode(codes)), on real synthesized speech cut to mixed lengths, with the seeded random
 * full-size model.
 */

import { expect } from 'chai';

import { loadAudio } from '../../lib/io/audio';
import { Encodec } from '../../lib/codec/codec';
import { Codes } from '../../lib/codec/codes';
import { NativeModel, nativeBinding } from '../../lib/addon/native';
import { cutPacks } from '../../lib/codec/pool';
import { codeAgreement, snr } from '../../lib/quality/metrics';
import { expectCodesWithinRounding, rejects } from '../helpers/assert';
import { makeSpeech24k } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

/** Clips of `seconds` each cut from `speech` at staggered offsets (lengths in samples, not whole frames). */
function cut(speech: Float32Array, seconds: number[], jitter = 17): Float32Array[] {
  return seconds.map((s, i) => {
    const start = (i * 7919) % Math.max(1, speech.length - Math.round(s * 24000) - 2 * jitter);
    return speech.slice(start, start + Math.round(s * 24000) + (i % 3) * jitter);
  });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('many clips: pooled encodeBatch / decodeBatch / encodeMany / decodeMany', function () {
  const dir = tempDir('batch');
  // short spans so that clips of a few seconds cover several spans (and steps of two spans) as long clips do
  const SMALL = { chunkSeconds: 0.5, batchSeconds: 3 };
  let codec: Encodec;
  let speech: Float32Array;

  before(async function () {
    codec = await Encodec.load(await randomModel(0), { threads: 2 });
    const wav = await makeSpeech24k(dir, 'Thousands of short utterances, every one a different length, were encoded for the dataset in one go.');
    speech = (await loadAudio(wav)).samples;
    expect(speech.length / 24000).to.be.above(5.6);
  });

  after(function () {
    codec?.dispose();
  });

  it('allows float rounding between pooled and alone codes, nothing more (the rule these tests apply)', function () {
    // 8 codebooks x 3 frames, codebook-major as Codes hold them
    const alone: Codes = { data: Int16Array.from({ length: 24 }, (_, k) => (k * 37) % 1024), nQ: 8, nFrames: 3 };
    const changed = (cells: [number, number][]): Codes => {
      const data = alone.data.slice();
      for (const [q, f] of cells) data[q * 3 + f] = (data[q * 3 + f] + 1) % 1024;
      return { ...alone, data };
    };
    expectCodesWithinRounding(alone, alone, 'identical');
    // a near-tie at codebook 6 of frame 1, the residual of codebook 7 changed with it
    expectCodesWithinRounding(changed([[6, 1], [7, 1]]), alone, 'one frame from codebook 6');
    expect(() => expectCodesWithinRounding(changed([[0, 0]]), alone, 'first codebook')).to.throw(/frame 0 from codebook 0/);
    expect(() => expectCodesWithinRounding(changed([[7, 0], [7, 2]]), alone, 'two frames')).to.throw(/2 of 3 frames differ/);
    // 300 frames: up to 3 frames may differ (1 %), each from its second codebook on
    const long: Codes = { data: Int16Array.from({ length: 8 * 300 }, (_, k) => (k * 37) % 1024), nQ: 8, nFrames: 300 };
    const longChanged = (frames: number[], q: number): Codes => {
      const data = long.data.slice();
      for (const f of frames) for (let k = q; k < 8; k++) data[k * 300 + f] = (data[k * 300 + f] + 1) % 1024;
      return { ...long, data };
    };
    expectCodesWithinRounding(longChanged([10, 150, 299], 1), long, 'three frames of 300 from codebook 1');
    expect(() => expectCodesWithinRounding(longChanged([10, 20, 150, 299], 1), long, 'four')).to.throw(/4 of 300 frames differ/);
    expect(() => expectCodesWithinRounding(longChanged([150], 0), long, 'first codebook')).to.throw(/frame 150 from codebook 0/);
    expect(() => expectCodesWithinRounding({ ...alone, nFrames: 2, data: alone.data.subarray(0, 16) }, alone, 'shorter')).to.throw(/shape/);
  });

  it('the model has pooled span methods and was warmed up at load', function () {
    expect(codec.info.pooled_span_quantum).to.equal(25);
    expect(codec.warmupMs).to.be.greaterThan(0);
  });

  it('encodes each clip of a mixed batch (0.1 s to longer than a chunk) as encode(clip) does, in input order', async function () {
    const clips = cut(speech, [0.1, 2.5, 0.5, 5.5, 1, 0.013, 4.3]);
    const batch = await codec.encodeBatch(clips, { bandwidth: 6 });
    expect(batch).to.have.length(clips.length);
    for (let i = 0; i < clips.length; i++) {
      const alone = await codec.encode(clips[i], { bandwidth: 6 });
      expect(batch[i].nFrames, `clip ${i}`).to.equal(Math.ceil(clips[i].length / 320));
      expect(batch[i].nQ).to.equal(8);
      expectCodesWithinRounding(batch[i], alone, `clip ${i}`);
    }
  });

  it('pools clips longer than several spans with short ones as encode(clip) splits them', async function () {
    const clips = cut(speech, [5.5, 0.2, 4, 0.7, 3.1]);
    const batch = await codec.encodeBatch(clips, { bandwidth: 3, ...SMALL });
    for (let i = 0; i < clips.length; i++) {
      expectCodesWithinRounding(batch[i], await codec.encode(clips[i], { bandwidth: 3, ...SMALL }), `clip ${i}`);
    }
    // whole-clip passes, one per clip, are another computation: the pooled codes are the chunked ones
    const exact = await codec.encodeBatch(clips, { bandwidth: 3, exact: true });
    expect(codeAgreement(exact[0], await codec.encode(clips[0], { bandwidth: 3, exact: true }))).to.equal(1);
  });

  it('packs windows without context (each starting at its own padding) as each window alone computes them', async function () {
    // no context: every window starts at its own reflect padding, and windows of 0.5 s pack several to a row
    const options = { chunkSeconds: 0.5, contextSeconds: 0, batchSeconds: 3 };
    const clips = cut(speech, [0.013, 0.1, 0.3, 1.7, 2.2]);
    const batch = await codec.encodeBatch(clips, { bandwidth: 6, ...options });
    const audio = await codec.decodeBatch(batch, options);
    for (let i = 0; i < clips.length; i++) {
      const alone = await codec.encode(clips[i], { bandwidth: 6, ...options });
      expectCodesWithinRounding(batch[i], alone, `clip ${i}`);
      expect(snr(await codec.decode(batch[i], options), audio[i]), `block ${i}`).to.be.above(90);
    }
  });

  it('decodes each block as decode(codes) does, within float rounding', async function () {
    const clips = cut(speech, [0.1, 3.3, 0.9, 5.2]);
    const codes = await Promise.all(clips.map((c) => codec.encode(c, { bandwidth: 6 })));
    for (const options of [{}, SMALL]) {
      const audio = await codec.decodeBatch(codes, options);
      for (let i = 0; i < codes.length; i++) {
        const alone = await codec.decode(codes[i], options);
        expect(audio[i].length).to.equal(codes[i].nFrames * 320);
        expect(snr(alone, audio[i]), `block ${i}`).to.be.above(90);
      }
    }
  });

  it('encodeMany yields codes in input order from an async source, holding a bounded number of clips', async function () {
    const clips = cut(speech, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 0);
    let pulled = 0;
    async function* source(): AsyncGenerator<Float32Array> {
      for (const clip of clips) {
        await new Promise((resolve) => setTimeout(resolve, 1));
        pulled++;
        yield clip;
      }
    }
    let yielded = 0;
    let mostAhead = 0;
    const out: Codes[] = [];
    // rounds of 3 s hold 3 one-second clips: at most two rounds read beyond what was yielded
    for await (const codes of codec.encodeMany(source(), { bandwidth: 6, roundSeconds: 3 })) {
      mostAhead = Math.max(mostAhead, pulled - yielded);
      yielded++;
      out.push(codes);
    }
    expect(out).to.have.length(clips.length);
    expect(mostAhead).to.be.within(1, 6);
    const batch = await codec.encodeBatch(clips, { bandwidth: 6 });
    out.forEach((codes, i) => expectCodesWithinRounding(codes, batch[i], `clip ${i}`));
    // the clips differ, so order matters: clip 0's codes are not clip 1's
    expect(codeAgreement(out[0], batch[1])).to.be.below(0.5);
  });

  it('decodeMany yields audio in input order', async function () {
    const codes = await codec.encodeBatch(cut(speech, [0.4, 2, 1.2]), { bandwidth: 1.5 });
    const audio = await collect(codec.decodeMany(codes.values(), { roundSeconds: 1 }));
    expect(audio.map((a) => a.length)).to.deep.equal(codes.map((c) => c.nFrames * 320));
    for (let i = 0; i < codes.length; i++) expect(snr(await codec.decode(codes[i]), audio[i])).to.be.above(90);
  });

  it('rejects bad clips naming them, after the codes of the clips before', async function () {
    const good = cut(speech, [0.5, 0.5]);
    const nan = good[1].slice();
    nan[100] = NaN;
    await rejects(codec.encodeBatch([good[0], nan]), RangeError, /clip 1 holds NaN at sample 100/);
    await rejects(codec.encodeBatch([]), TypeError, /non-empty array/);
    await rejects(codec.encodeBatch([good[0], new Float64Array(10) as unknown as Float32Array]), TypeError, /clip 1 must be a Float32Array/);
    await rejects(codec.decodeBatch([{ data: new Int16Array(3), nQ: 2, nFrames: 2 }]), RangeError, /codes\[0\]\.data has 3 values/);
    expect(() => codec.encodeMany(null as unknown as Float32Array[])).to.throw(TypeError, /iterable/);
    expect(() => codec.encodeMany(good, { roundSeconds: 0 })).to.throw(RangeError, /roundSeconds/);
    expect(() => codec.encodeMany(good, { bandwidth: 5 })).to.throw(RangeError);

    const seen: Codes[] = [];
    const stream = codec.encodeMany([good[0], good[1], 'oops' as unknown as Float32Array, good[0]], { roundSeconds: 100 });
    await rejects((async () => { for await (const c of stream) seen.push(c); })(), TypeError, /clip 2 must be a Float32Array/);
    expect(seen).to.have.length(2);
  });

  it('pooled native calls check their geometries', async function () {
    const model: NativeModel = await nativeBinding().load(await randomModel(0), { threads: 1 });
    try {
      const clip = speech.subarray(0, 24000);
      const span = { lead: 0, chunk: 300, context: 75 };
      // argument errors throw synchronously in the addon: make every call a promise
      const call = (f: () => Promise<unknown>): Promise<unknown> => (async () => f())();
      await rejects(call(() => model.encode([clip, clip], 8, { spans: [span] })), TypeError, /one per input/);
      await rejects(call(() => model.encode([clip, clip], 8, { spans: [span, { ...span, chunk: 30 }] })), RangeError, /share chunk and context/);
      await rejects(call(() => model.encode([clip], 8, { spans: [{ ...span, lead: 75 }] })), RangeError, /span 0's geometry does not fit its 75 frames/);
      await rejects(call(() => model.encode([clip], 8, { span, spans: [span] })), TypeError, /not both/);
      await rejects(call(() => model.decode([{ data: new Int16Array(8 * 75).fill(1024), nQ: 8, nFrames: 75 }], { spans: [span] })), RangeError, /outside \[0, 1023\]/);
      const [pooled] = await model.encode([clip], 8, { spans: [span] });
      const [single] = await model.encode([clip], 8, { span });
      expectCodesWithinRounding(pooled, single, 'one span, pooled vs span call');
    } finally {
      model.dispose();
    }
  });

  it('loads without warm-up on request', async function () {
    const cold = await Encodec.load(await randomModel(0), { threads: 1, warmup: false });
    try {
      expect(cold.warmupMs).to.equal(0);
    } finally {
      cold.dispose();
    }
  });
});

describe('packs of pooled calls (cutPacks)', function () {
  /** Checks that `packs` hold the jobs 0..n-1 in order, each pack consecutive; returns each pack's frames. */
  function packFrames(packs: number[][], frames: number[]): number[] {
    expect(packs.flat()).to.deep.equal(frames.map((_, i) => i));
    for (const pack of packs) expect(pack).to.deep.equal(pack.map((_, k) => pack[0] + k));
    return packs.map((pack) => pack.reduce((n, j) => n + frames[j], 0));
  }

  it('ends the lanes together: full packs by groups of lanes, the rest shared evenly, never a short pack over', function () {
    // 150 short clips (23 to 225 frames each, seeded), 2 lanes, packs of up to 7500 frames
    let x = 5;
    const frames = Array.from({ length: 150 }, () => {
      x = (x * 1103515245 + 12345) % 2147483648;
      return 23 + (x % 203);
    });
    const total = frames.reduce((n, f) => n + f, 0);
    expect(total).to.be.within(15001, 22499); // more than one group of two full packs, less than two
    const sizes = packFrames(cutPacks(frames, 7500, 2), frames);
    expect(sizes).to.have.length(4);
    expect(sizes.slice(0, 2).every((n) => n <= 7500 && n > 7500 - 226)).to.equal(true);
    // the rest, in two packs within one clip of each other
    expect(Math.abs(sizes[2] - sizes[3])).to.be.at.most(225);
    // lane loads (largest pack first, each to the lane free first) differ by at most one clip
    expect(Math.abs(sizes[0] + sizes[3] - (sizes[1] + sizes[2]))).to.be.below(2 * 226);
  });

  it('cuts a batch under one group into one pack per lane, and keeps every pack of whole jobs', function () {
    const sizes = packFrames(cutPacks([100, 100, 100, 100, 100], 7500, 2), [100, 100, 100, 100, 100]);
    expect(sizes).to.deep.equal([200, 300]);
    expect(packFrames(cutPacks([100], 7500, 2), [100])).to.deep.equal([100]);
    expect(packFrames(cutPacks([9000, 50, 50], 7500, 2), [9000, 50, 50])).to.deep.equal([9000, 100]);
    expect(packFrames(cutPacks([100, 200, 300], 7500, 1), [100, 200, 300])).to.deep.equal([600]);
    // one lane: full packs, then the rest
    expect(packFrames(cutPacks([4000, 4000, 4000], 7500, 1), [4000, 4000, 4000])).to.deep.equal([4000, 4000, 4000]);
  });
});
