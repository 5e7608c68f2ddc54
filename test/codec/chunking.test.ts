/**
 * Chunked, batched and streamed encoding/decoding (lib/codec/chunking.ts through the Encodec API), against the
 * whole-file path, on real synthesized speech with the seeded random full-size model.
 */

import * as path from 'node:path';

import { expect } from 'chai';

import { loadAudio, streamAudio } from '../../lib/io/audio';
import { HOP_LENGTH } from '../../lib/codec/bandwidth';
import { chunkPlan, chunkSpans, spanEnd, spanWindows } from '../../lib/codec/chunk-plan';
import { decodeChunked, encodeChunked } from '../../lib/codec/chunking';
import { DEFAULT_CHUNK_SECONDS, DEFAULT_CONTEXT_SECONDS } from '../../lib/codec/coding-options';
import { decodeSpanByWindows, encodeSpanByWindows } from '../../lib/codec/span-runners';
import { Encodec } from '../../lib/codec/codec';
import { Codes } from '../../lib/codec/codes';
import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { codeAgreement, snr } from '../../lib/quality/metrics';
import { NativeModel, nativeBinding } from '../../lib/addon/native';
import { rejects } from '../helpers/assert';
import { makeSpeech24k } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { pythonJson } from '../helpers/python';
import { tempDir } from '../helpers/temp-dir';

/** Yields `samples` in blocks of `size` samples (as a decoder would). */
async function* blocks(samples: Float32Array, size: number): AsyncGenerator<Float32Array> {
  for (let i = 0; i < samples.length; i += size) yield samples.slice(i, i + size);
}

/** `_span_windows` of exporter/encodec_ts.py (the rule exported span methods run) on each [frames, lead, chunk, context]. */
function pythonSpanWindows(geometries: number[][]): number[][][] {
  return pythonJson<number[][][]>(
    `sys.path.insert(0, ${JSON.stringify(path.join(PACKAGE_ROOT, 'exporter'))})\n` +
      'from encodec_ts import _span_windows\nprint(json.dumps([_span_windows(*g) for g in data]))',
    geometries,
  );
}

describe('window plan', function () {
  it('gives every span the windows its span call runs (_span_windows), last window included', function () {
    const geometries: number[][] = [];
    const planned: number[][][] = [];
    const plans = [
      chunkPlan({ chunkSeconds: 0.5, batchSeconds: 7 }), // 38-frame chunks, 75 of context, 4 windows per span
      chunkPlan({ chunkSeconds: 0.1, contextSeconds: 0.05, batchSeconds: 0.5 }), // 8 + 4 frames, 4 windows
      chunkPlan({ chunkSeconds: 0.1, contextSeconds: 0, batchSeconds: 0.3 }), // no context
    ];
    for (const plan of plans) {
      const width = plan.chunkFrames + plan.contextFrames;
      for (let frames = 1; frames < 12 * width; frames += 7) {
        for (const lanes of [1, 2]) {
          for (const span of chunkSpans(frames, plan, lanes)) {
            geometries.push([spanEnd(span) - span.start, span.first - span.start, plan.chunkFrames, plan.contextFrames]);
            planned.push(span.windows.map((w) => [w.first - w.context - span.start, w.first - span.start, w.first + w.frames - span.start]));
          }
        }
      }
    }
    expect(planned).to.deep.equal(pythonSpanWindows(geometries));
  });

  it('ports _span_windows exactly (spanWindows), over a grid of span geometries', function () {
    const geometries: number[][] = [];
    for (let frames = 1; frames <= 30; frames++) {
      for (let lead = 0; lead < frames; lead += 2) {
        for (const chunk of [1, 2, 5, 9]) for (const context of [0, 1, 4, 11]) geometries.push([frames, lead, chunk, context]);
      }
    }
    const ported = geometries.map(([frames, lead, chunk, context]) => spanWindows(frames, lead, chunk, context));
    expect(ported).to.deep.equal(pythonSpanWindows(geometries));
  });
});

describe('chunked and streamed encoding', function () {
  // short chunks so that a few seconds of speech span several windows and several native batches
  const SMALL = { chunkSeconds: 0.5, batchSeconds: 3 };
  const dir = tempDir('chunking');
  let codec: Encodec;
  let wavPath: string;
  let speech: Float32Array;
  let whole: Codes;

  before(async function () {
    codec = await Encodec.load(await randomModel(0), { threads: 2, warmup: false });
    wavPath = await makeSpeech24k(dir, 'Volunteers watched a film in the scanner while its soundtrack was encoded, chunk by chunk.');
    speech = (await loadAudio(wavPath)).samples;
    expect(speech.length % HOP_LENGTH).to.not.equal(0); // the last window is a partial frame
    whole = await codec.encode(speech, { bandwidth: 6, exact: true });
  });

  after(function () {
    codec?.dispose();
  });

  it('plans windows on frame boundaries with the default context', function () {
    const plan = chunkPlan({ ...SMALL, batchSeconds: 7 }); // 4 windows per span
    expect(plan.contextFrames).to.equal(DEFAULT_CONTEXT_SECONDS * 75);
    const width = plan.chunkFrames + plan.contextFrames;
    for (const lanes of [1, 2]) {
      const spans = chunkSpans(whole.nFrames, plan, lanes);
      const windows = spans.flatMap((span) => span.windows);
      expect(windows.length).to.be.greaterThan(plan.batchWindows);
      expect(windows.reduce((n, w) => n + w.frames, 0)).to.equal(whole.nFrames);
      expect(windows[0].context).to.equal(0);
      expect(windows[windows.length - 1].frames).to.be.below(plan.chunkFrames); // a short last window
      // one width, so that a span's windows batch: the last, short window takes more context instead, from its span
      for (const w of windows.slice(0, -1)) expect(w.context + w.frames).to.equal(width);
      const last = spans[spans.length - 1];
      const alone = last.windows.length === 1;
      expect(windows[windows.length - 1].context).to.equal(alone ? plan.contextFrames : width - windows[windows.length - 1].frames);
    }
  });

  it('plans spans of batchWindows windows, the last short step shared evenly among the lanes', function () {
    const plan = chunkPlan({ chunkSeconds: 0.5, batchSeconds: 7 }); // 38-frame chunks, 4 windows of 113 frames per span
    expect(plan.batchWindows).to.equal(4);
    const frames = 75 + 10 * 38 + 20; // 11 windows: a full step of two spans, then 3 windows
    expect(chunkSpans(frames, plan).flatMap((span) => span.windows).length).to.equal(11);
    const spans = chunkSpans(frames, plan, 2);
    expect(spans.map((s) => s.windows.length)).to.deep.equal([4, 4, 2, 1]);
    let next = 0;
    for (const span of spans) {
      expect(span.first).to.equal(next); // contiguous kept frames
      expect(span.first - span.start).to.equal(span.first === 0 ? 0 : plan.contextFrames + 8); // context + warm-up
      next = span.first + span.frames;
    }
    expect(next).to.equal(frames);
    // one lane: spans of batchWindows windows, the last one shorter
    expect(chunkSpans(frames, plan).map((s) => s.windows.length)).to.deep.equal([4, 4, 3]);
  });

  it('keeps >= 99.5 % of the codes of whole-file encoding at the default context, same shape', async function () {
    const chunked = await codec.encode(speech, { bandwidth: 6, ...SMALL });
    expect(chunked.data).to.be.instanceOf(Int16Array);
    expect(codeAgreement(chunked, whole)).to.be.at.least(0.995);
    // without context the chunk starts are computed from reflect padding instead of the preceding audio
    const blind = await codec.encode(speech, { bandwidth: 6, ...SMALL, contextSeconds: 0 });
    expect(codeAgreement(blind, whole)).to.be.below(codeAgreement(chunked, whole));
  });

  it('encodes clips up to one chunk long exactly as whole-file (default options)', async function () {
    const clip = speech.subarray(0, DEFAULT_CHUNK_SECONDS * 24000 - 100);
    const exact = await codec.encode(clip, { bandwidth: 6, exact: true });
    expect(codeAgreement(await codec.encode(clip, { bandwidth: 6 }), exact)).to.equal(1);
  });

  it('keeps >= 99.5 % of the codes at default settings on speech longer than a chunk', async function () {
    expect(speech.length / 24000).to.be.above(DEFAULT_CHUNK_SECONDS);
    expect(codeAgreement(await codec.encode(speech, { bandwidth: 6 }), whole)).to.be.at.least(0.995);
  });

  it('exact: true is the whole-file pass', async function () {
    const [batch] = await codec.encodeBatch([speech], { bandwidth: 6, exact: true });
    expect(codeAgreement(whole, batch)).to.equal(1);
    const decoded = await codec.decode(whole, { exact: true });
    expect(snr((await codec.decodeBatch([whole], { exact: true }))[0], decoded)).to.equal(Infinity);
  });

  it('decodes chunked within float rounding of whole-file decoding', async function () {
    const reference = await codec.decode(whole, { exact: true });
    const chunked = await codec.decode(whole, SMALL);
    expect(chunked.length).to.equal(whole.nFrames * HOP_LENGTH);
    expect(snr(reference, chunked)).to.be.above(60);
    const blind = await codec.decode(whole, { ...SMALL, contextSeconds: 0 });
    expect(snr(reference, blind)).to.be.below(snr(reference, chunked));
  });

  it('streams to exactly the in-memory chunked codes, whatever the block sizes', async function () {
    const inMemory = await codec.encode(speech, { bandwidth: 3, ...SMALL });
    const streamed = await codec.encodeStream(blocks(speech, 7777), { bandwidth: 3, ...SMALL });
    expect(codeAgreement(streamed, inMemory)).to.equal(1);
    const fromFile = await codec.encodeStream(streamAudio(wavPath, { chunkSeconds: 0.3 }), { bandwidth: 3, ...SMALL });
    expect(codeAgreement(fromFile, inMemory)).to.equal(1);
  });

  it('yields consecutive blocks, and stops reading at maxFrames', async function () {
    const firsts: number[] = [];
    let frames = 0;
    for await (const block of codec.encodeStreamBlocks(blocks(speech, 24000), { bandwidth: 1.5, ...SMALL })) {
      firsts.push(block.firstFrame);
      expect(block.firstFrame).to.equal(frames);
      frames += block.nFrames;
    }
    expect(firsts.length).to.be.greaterThan(1);
    expect(frames).to.equal(whole.nFrames);

    const maxFrames = 100;
    let offered = 0;
    async function* counted(): AsyncGenerator<Float32Array> {
      for await (const b of blocks(speech, 4000)) {
        offered += b.length;
        yield b;
      }
    }
    const head = await codec.encodeStream(counted(), { bandwidth: 6, ...SMALL, maxFrames });
    expect(head.nFrames).to.equal(maxFrames);
    expect(offered).to.be.below(speech.length);
    const expected = await codec.encode(speech.subarray(0, maxFrames * HOP_LENGTH), { bandwidth: 6, ...SMALL });
    expect(codeAgreement(head, expected)).to.equal(1);
  });

  it('decodes a stream of code blocks to exactly the chunked decoding, a step behind the codes received', async function () {
    const plan = chunkPlan(SMALL);
    const reference = await codec.decode(whole, SMALL);
    for (const size of [37, 1, whole.nFrames]) {
      const decoder = codec.streamDecoder(SMALL);
      const parts: Float32Array[] = [];
      let received = 0;
      let decoded = 0;
      for (let f = 0; f < whole.nFrames; f += size) {
        const n = Math.min(size, whole.nFrames - f);
        const block = { data: new Int16Array(whole.nQ * n), nQ: whole.nQ, nFrames: n };
        for (let q = 0; q < whole.nQ; q++) block.data.set(whole.data.subarray(q * whole.nFrames + f, q * whole.nFrames + f + n), q * n);
        received += n;
        for (const audio of await decoder.push(block)) {
          parts.push(audio);
          decoded += audio.length / HOP_LENGTH;
        }
        block.data.fill(0); // the decoder copied what it keeps
        // at most one step (2 lanes of batchWindows chunks) and its context wait for more codes
        expect(received - decoded).to.be.at.most(2 * plan.batchWindows * plan.chunkFrames + plan.contextFrames + n);
      }
      for (const audio of await decoder.end()) parts.push(audio);
      const streamed = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
      parts.reduce((at, p) => (streamed.set(p, at), at + p.length), 0);
      expect(streamed.length).to.equal(reference.length);
      expect(streamed.every((v, i) => v === reference[i]), `blocks of ${size} frames`).to.equal(true);
    }
    expect(whole.nFrames).to.be.greaterThan(2 * (2 * plan.batchWindows * plan.chunkFrames + plan.contextFrames)); // several steps
    const empty = codec.streamDecoder();
    await rejects(empty.end(), RangeError, /code stream is empty/);
    expect(() => codec.streamDecoder({ exact: true } as never)).to.throw(TypeError, /always chunked/);
  });

  it('span calls (one native call per span, two at once) match batched windows with their context', async function () {
    expect(codec.info.span_methods).to.equal(true);
    expect(codec.info.lstm_segment_steps).to.equal(75); // exporter 1.3: the CPU LSTM in 1 s segments
    const plan = chunkPlan(SMALL);
    const spans = chunkSpans(whole.nFrames, plan);
    expect(spans.length).to.be.greaterThan(2);
    expect(spans[0].start).to.equal(0);
    expect(spans[1].first - spans[1].start).to.be.greaterThan(plan.contextFrames); // context + convolution warm-up
    expect(spans.reduce((n, s) => n + s.frames, 0)).to.equal(whole.nFrames);
    // the path models without span methods (and CUDA) take: each span's windows as one batch
    const windowed = await encodeChunked(speech, plan, encodeSpanByWindows((clips) => codec.encodeBatch(clips, { bandwidth: 6, exact: true })));
    const spanned = await codec.encode(speech, { bandwidth: 6, ...SMALL });
    expect(codeAgreement(spanned, windowed)).to.be.at.least(0.995);
    const audioWindowed = await decodeChunked(whole, plan, decodeSpanByWindows((codes) => codec.decodeBatch(codes, { exact: true })));
    expect(snr(audioWindowed, await codec.decode(whole, SMALL))).to.be.above(60);
  });

  it('native span calls check their geometry and options, and run concurrently on shares of the threads', async function () {
    const model: NativeModel = await nativeBinding().load(await randomModel(0), { threads: 2 });
    try {
      const clip = speech.subarray(0, 24000); // 75 frames
      const span = { lead: 10, chunk: 20, context: 5 };
      // argument errors throw synchronously in the addon: make every call a promise
      const call = (f: () => Promise<unknown>): Promise<unknown> => (async () => f())();
      await rejects(call(() => model.encode([clip], 8, { span: { ...span, chunk: 0 } })), RangeError, /span\.chunk must be an integer in \[1,/);
      await rejects(call(() => model.encode([clip], 8, { span: { ...span, lead: 75 } })), RangeError, /span geometry does not fit the span's 75 frames/);
      await rejects(call(() => model.encode([clip, clip], 8, { span })), RangeError, /a span call takes exactly one input/);
      await rejects(call(() => model.encode([clip], 8, { span: 3 as never })), TypeError, /options\.span must be an object/);
      await rejects(call(() => model.encode([clip], 8, { threads: -1 })), RangeError, /options\.threads must be an integer/);
      await rejects(call(() => model.decode([{ ...whole, data: whole.data.map(() => 1024) }], { span })), RangeError, /outside \[0, 1023\]/);
      const [alone] = await model.encode([clip], 8, { span });
      expect(alone.nFrames).to.equal(75 - span.lead);
      const both = await Promise.all([model.encode([clip], 8, { span, threads: 1 }), model.encode([clip], 8, { span, threads: 1 })]);
      for (const [codes] of both) expect(codeAgreement(codes, alone)).to.equal(1);
      const [audio] = await model.decode([alone], { span: { ...span, lead: 0 } });
      expect(audio.length).to.equal(alone.nFrames * HOP_LENGTH);
    } finally {
      model.dispose();
    }
  });

  it('rejects bad options with errors that name them', async function () {
    await rejects(codec.encode(speech, { chunkSeconds: 0 }), RangeError, /chunkSeconds must be between/);
    await rejects(codec.encode(speech, { chunkSeconds: 'ten' as unknown as number }), TypeError, /chunkSeconds must be a finite number/);
    await rejects(codec.encode(speech, { contextSeconds: -1 }), RangeError, /contextSeconds must be between 0/);
    await rejects(codec.encode(speech, { exact: 'yes' as unknown as boolean }), TypeError, /exact must be true or false/);
    await rejects(codec.decode(whole, { contextSeconds: NaN }), TypeError, /contextSeconds must be a finite number/);
    await rejects(codec.encodeStream(speech as unknown as AsyncIterable<Float32Array>), TypeError, /stream block 0 must be a Float32Array/);
    await rejects(codec.encodeStream(42 as unknown as AsyncIterable<Float32Array>), TypeError, /chunks must be an \(async\) iterable/);
    await rejects(codec.encodeStream(blocks(speech, 1000), { maxFrames: 0 }), RangeError, /maxFrames must be a positive integer/);
    await rejects(codec.encodeStream(blocks(speech, 1000), { exact: true } as never), TypeError, /always chunked/);
    await rejects(codec.encodeStream(blocks(new Float32Array(0), 1)), RangeError, /stream is empty/);
  });
});
