/**
 * Chunked encoding and decoding with left context, batched along the batch dimension, and streaming.
 *
 * EnCodec 24 kHz is causal: a code frame depends only on the audio before its end, and decoded audio only on
 * the codes up to its frame. Encoding a long clip therefore splits into chunks of `chunkFrames` frames, each
 * run with `contextFrames` frames of the preceding audio in front (whose outputs are dropped). The
 * convolutions see the same samples as in whole-file encoding; only the LSTM state at the start of the context
 * differs (zero instead of the state the whole file would have built), and it is forgotten within the context.
 * Windows start and end on frame boundaries (multiples of 320 samples), where the convolutions add no
 * padding, so the split itself changes nothing; the last window ends where the audio ends, as in the
 * whole-file pass. Every window spans `chunkFrames + contextFrames` frames where it can, so windows of one
 * length go through the model as one batch, which turns the LSTM's per-frame matrix-vector steps into matrix
 * products. The rule is `_span_windows` in exporter/encodec_ts.py (spanWindows; docs/performance.md).
 *
 * Windows are grouped into spans of `batchWindows` windows in a fixed order, one native call each (a model with
 * span methods gets the span's audio with its context and convolution warm-up and runs the windows itself;
 * otherwise the span's windows go as one batch), `lanes` spans at a time; the last, short group shares its
 * windows evenly among the lanes. The in-memory and the streaming paths make the same calls on the same
 * samples and return identical codes.
 *
 * This file runs the spans, in memory and streaming; their geometry is lib/codec/chunk-plan.ts, how they reach the
 * model (and the retry in halves on out of memory) lib/codec/span-runners.ts.
 */
import { FRAME_RATE, HOP_LENGTH } from './bandwidth';
import { CONV_WARMUP_FRAMES, ChunkPlan, ChunkSpan, chunkSteps, spanEnd, stepSpans, windowFirst } from './chunk-plan';
import { copyFrames, sliceFrames } from './code-frames';
import type { Codes, CodesBlock, Embeddings, LatentsBlock } from './codes';
import type { SpanRunner } from './span-runners';
import { debug } from '../common/log';
import { codedError, rangeError, typeError } from '../common/errors';
import { SampleWindow } from '../common/sample-window';

/** Chunked encoding of an in-memory clip: same frame count and (up to the context's effect) codes as whole-file. */
export async function encodeChunked(samples: Float32Array, plan: ChunkPlan, encoder: SpanRunner<Float32Array, Codes>): Promise<Codes> {
  const totalFrames = Math.ceil(samples.length / HOP_LENGTH);
  let data: Int16Array | undefined;
  for (const group of chunkSteps(totalFrames, plan, encoder.lanes)) {
    const inputs = group.map((span) => samples.subarray(span.start * HOP_LENGTH, Math.min((span.first + span.frames) * HOP_LENGTH, samples.length)));
    const blocks = await encoder.run(inputs, group);
    data ??= new Int16Array(blocks[0].nQ * totalFrames);
    group.forEach((span, k) => copyFrames(blocks[k], 0, span.frames, data as Int16Array, totalFrames, span.first));
    debug('encode', () => `frames ${group[0].first}..${spanEnd(group[group.length - 1])} of ${totalFrames} (${group.length} span(s))`);
  }
  if (!data) throw codedError('ENCODEC_INTERNAL', 'internal error: no chunk was encoded');
  return { data, nQ: data.length / totalFrames, nFrames: totalFrames };
}

/** Chunked decoding: each window decodes its codes with `context` frames of preceding codes, context audio dropped. */
export async function decodeChunked(codes: Codes, plan: ChunkPlan, decoder: SpanRunner<Codes, Float32Array>): Promise<Float32Array> {
  const out = new Float32Array(codes.nFrames * HOP_LENGTH);
  for (const group of chunkSteps(codes.nFrames, plan, decoder.lanes)) {
    const audio = await decoder.run(group.map((span) => sliceFrames(codes, span.start, spanEnd(span) - span.start)), group);
    group.forEach((span, k) => out.set(audio[k], span.first * HOP_LENGTH));
  }
  return out;
}

/**
 * Streaming chunked encoding: reads blocks of 24 kHz mono samples (any sizes, e.g. from `streamAudio(file)`)
 * and yields codes block by block, one span at a time, holding only the audio of the spans in flight (the
 * runner's `lanes` spans of `batchSeconds`) plus one block. The blocks, concatenated, equal `encodeChunked` on the
 * concatenated samples with the same plan.
 */
export async function* encodeStreamBlocks(
  chunks: AsyncIterable<Float32Array> | Iterable<Float32Array>,
  plan: ChunkPlan,
  maxFrames: number,
  encoder: SpanRunner<Float32Array, Codes>,
): AsyncGenerator<CodesBlock, void, undefined> {
  for await (const { output, span } of streamSpans(chunks, plan, maxFrames, encoder)) {
    yield { data: output.data, nQ: output.nQ, nFrames: span.frames, firstFrame: span.first };
  }
}

/** Streaming latents (the encoder's output before quantization), windowed exactly as {@link encodeStreamBlocks}. */
export async function* latentsStreamBlocks(
  chunks: AsyncIterable<Float32Array> | Iterable<Float32Array>,
  plan: ChunkPlan,
  maxFrames: number,
  runner: SpanRunner<Float32Array, Embeddings>,
): AsyncGenerator<LatentsBlock, void, undefined> {
  for await (const { output, span } of streamSpans(chunks, plan, maxFrames, runner)) {
    yield { data: output.data, dim: output.dim, nFrames: span.frames, firstFrame: span.first };
  }
}

/**
 * The span machinery of streaming: runs `runner` on each span of the stream as soon as its audio is held, yielding
 * each span's output in order.
 */
async function* streamSpans<O>(
  chunks: AsyncIterable<Float32Array> | Iterable<Float32Array>,
  plan: ChunkPlan,
  maxFrames: number,
  encoder: SpanRunner<Float32Array, O>,
): AsyncGenerator<{ output: O; span: ChunkSpan }, void, undefined> {
  const held = new SampleWindow();
  const maxSamples = maxFrames * HOP_LENGTH;
  const perStep = encoder.lanes * plan.batchWindows; // windows per run call: `lanes` spans
  let step = 0; // index of the next run call
  let nextFrame = 0; // first frame it encodes
  let index = 0;
  // frame where the next step's spans end (once the stream is that long)
  const stepEnd = (): number => windowFirst((step + 1) * perStep, plan);

  // Encodes the next step's spans over the stream's first `available` samples: one code block per span.
  const encodeStep = async (available: number): Promise<{ output: O; span: ChunkSpan }[]> => {
    const spans = stepSpans(step, Math.ceil(available / HOP_LENGTH), plan, encoder.lanes);
    const inputs = spans.map((span) => held.slice(span.start * HOP_LENGTH, Math.min(spanEnd(span) * HOP_LENGTH, available)));
    const outputs = await encoder.run(inputs, spans);
    const blocks = spans.map((span, k) => ({ output: outputs[k], span }));
    debug('encode', () => `stream: frames ${nextFrame}..${spanEnd(spans[spans.length - 1])} in ${spans.length} span(s) (${(available / HOP_LENGTH / FRAME_RATE).toFixed(2)} s read so far)`);
    nextFrame = spanEnd(spans[spans.length - 1]);
    step++;
    held.dropBefore(Math.max(0, nextFrame - plan.contextFrames - CONV_WARMUP_FRAMES) * HOP_LENGTH);
    return blocks;
  };

  for await (const chunk of chunks) {
    if (!(chunk instanceof Float32Array)) {
      throw typeError(`stream block ${index} must be a Float32Array of 24 kHz mono samples, got ${chunk === null ? 'null' : typeof chunk}`);
    }
    index++;
    held.append(chunk.subarray(0, Math.max(0, maxSamples - held.end)));
    // a full step is ready once its last window's audio is held (frame-aligned windows need nothing after it)
    while (held.end >= stepEnd() * HOP_LENGTH) yield* await encodeStep(stepEnd() * HOP_LENGTH);
    if (held.end >= maxSamples) break;
  }
  const total = held.end;
  if (total === 0 && nextFrame === 0) throw rangeError('the audio stream is empty; pass at least one sample');
  while (nextFrame * HOP_LENGTH < total) yield* await encodeStep(total);
}

/**
 * Streaming chunked decoding, the counterpart of {@link encodeStreamBlocks}: takes blocks of consecutive code
 * frames (any sizes, e.g. as encodeStreamBlocks yields them) and decodes each step of spans as soon as its codes
 * are held, holding only the codes from the context of the next span on. The same spans decode the same frames
 * as {@link decodeChunked} on the concatenated codes (a step is cut short only by the end of the codes, which
 * only {@link end} knows), so the audio, concatenated, is the same.
 */
export class StreamDecoder {
  /** Blocks of consecutive frames held, the first starting at `heldFrom`. */
  private held: Codes[] = [];
  private heldFrom = 0;
  /** Frames received. */
  private received = 0;
  private step = 0;
  /** First frame the next step decodes. */
  private nextFrame = 0;
  private ended = false;

  constructor(
    private readonly plan: ChunkPlan,
    private readonly decoder: SpanRunner<Codes, Float32Array>,
  ) {}

  /** Adds the next block of codes; resolves with the audio of the steps it completes (320 samples a frame). */
  async push(block: Codes): Promise<Float32Array[]> {
    if (this.ended) throw codedError('ENCODEC_INTERNAL', 'internal error: codes pushed after the end of the stream');
    if (this.held.length > 0 && block.nQ !== this.held[0].nQ) {
      throw rangeError(`code block has ${block.nQ} codebooks, the blocks before it ${this.held[0].nQ}; a stream has one bandwidth`);
    }
    // a copy: the caller may reuse its block, and the decoder keeps it until no later span reads it
    this.held.push(sliceFrames(block, 0, block.nFrames));
    this.received += block.nFrames;
    const audio: Float32Array[] = [];
    // a full step is decoded once its last window's codes are held (decoding is causal: nothing after them is read)
    while (this.received >= this.stepEnd()) audio.push(...(await this.decodeStep(this.stepEnd())));
    return audio;
  }

  /** Decodes the codes left (the last, short step); resolves with their audio. */
  async end(): Promise<Float32Array[]> {
    this.ended = true;
    if (this.received === 0) throw rangeError('the code stream is empty; pass at least one frame');
    const audio: Float32Array[] = [];
    while (this.nextFrame < this.received) audio.push(...(await this.decodeStep(this.received)));
    return audio;
  }

  /** Frame where the next full step's spans end. */
  private stepEnd(): number {
    return windowFirst((this.step + 1) * this.decoder.lanes * this.plan.batchWindows, this.plan);
  }

  /** Decodes the next step's spans over the first `available` frames. */
  private async decodeStep(available: number): Promise<Float32Array[]> {
    const spans = stepSpans(this.step, available, this.plan, this.decoder.lanes);
    const audio = await this.decoder.run(spans.map((span) => this.frames(span.start, spanEnd(span))), spans);
    spans.forEach((span, k) => {
      if (audio[k].length !== span.frames * HOP_LENGTH) {
        throw codedError('ENCODEC_INTERNAL', `internal error: span of ${span.frames} frames decoded to ${audio[k].length} samples`);
      }
    });
    debug('decode', () => `stream: frames ${this.nextFrame}..${spanEnd(spans[spans.length - 1])} in ${spans.length} span(s)`);
    this.nextFrame = spanEnd(spans[spans.length - 1]);
    this.step++;
    this.dropBefore(Math.max(0, this.nextFrame - this.plan.contextFrames - CONV_WARMUP_FRAMES));
    return audio;
  }

  /** Frames [from, to) of the stream, from the blocks held. */
  private frames(from: number, to: number): Codes {
    const nQ = this.held[0].nQ;
    const data = new Int16Array(nQ * (to - from));
    let at = this.heldFrom;
    for (const b of this.held) {
      const lo = Math.max(from, at);
      const hi = Math.min(to, at + b.nFrames);
      if (lo < hi) copyFrames(b, lo - at, hi - lo, data, to - from, lo - from);
      at += b.nFrames;
    }
    return { data, nQ, nFrames: to - from };
  }

  /** Forgets the blocks that end before frame `frame`. */
  private dropBefore(frame: number): void {
    while (this.held.length > 0 && this.heldFrom + this.held[0].nFrames <= frame) {
      this.heldFrom += this.held[0].nFrames;
      this.held.shift();
    }
  }
}
