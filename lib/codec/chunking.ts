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
 * products. The rule is `_span_windows` in exporter/encodec_ts.py ({@link spanWindows}; docs/performance.md).
 *
 * Windows are grouped into spans of `batchWindows` windows in a fixed order, one native call each (a model with
 * span methods gets the span's audio with its context and convolution warm-up and runs the windows itself;
 * otherwise the span's windows go as one batch), `lanes` spans at a time; the last, short group shares its
 * windows evenly among the lanes. The in-memory and the streaming paths make the same calls on the same
 * samples and return identical codes.
 */
import { FRAME_RATE, HOP_LENGTH } from './bandwidth';
import { DEFAULT_BATCH_SECONDS } from './call-policy';
import type { Codes, Embeddings } from './codes';
import { debug } from '../common/log';
import { codedError, hasCode, rangeError, typeError } from '../common/errors';
import { SampleWindow } from '../common/sample-window';
import { joinFrames } from '../common/planar';

/** Chunking options of encode() and decode(). */
export interface ChunkOptions {
  /** Whole-file computation in one pass (memory grows with length; exactly the reference's result). */
  exact?: boolean;
  /** Seconds of audio (or codes) per chunk, rounded to whole frames (default 4). */
  chunkSeconds?: number;
  /** Seconds of preceding audio (or codes) run in front of each chunk, rounded up to whole frames (default 1). */
  contextSeconds?: number;
  /**
   * Seconds of audio (windows with their context) per span, i.e. per native call: bounds the audio held at once
   * (default on the CPU, two spans in flight: 100 for exporter 1.3+, 80 for 1.2; 40, 8 windows, for exporter
   * 1.1; 5, one window, before; 60 on CUDA).
   */
  batchSeconds?: number;
}

/**
 * Default chunk length: 4 s chunks (5 s windows with their context) keep every layer's activations in cache and out
 * of the page-fault path, which outweighs the 25 % of context recomputed (docs/performance.md#why-the-defaults).
 */
export const DEFAULT_CHUNK_SECONDS = 4;
/**
 * Default left context: 0.5 s already kept every code of whole-file encoding on real speech (random weights), and
 * 1 s leaves a margin for trained weights whose LSTM remembers longer (docs/performance.md#why-the-defaults).
 */
export const DEFAULT_CONTEXT_SECONDS = 1;
/** Chunk geometry in frames. */
export interface ChunkPlan {
  chunkFrames: number;
  contextFrames: number;
  /** Windows per native call. */
  batchWindows: number;
}

/** One window: frames [first, first + frames) are kept; the model also sees `context` frames before them. */
export interface ChunkWindow {
  first: number;
  frames: number;
  context: number;
}

function checkSeconds(value: unknown, name: string, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw typeError(`${name} must be a finite number of seconds, got ${typeof value === 'number' ? value : typeof value}`);
  }
  if (value < min || value > 3600) {
    throw rangeError(`${name} must be between ${min} and 3600 seconds, got ${value}`);
  }
  return value;
}

/** Validates the chunking options and turns them into frames. Throws TypeError/RangeError naming the option. */
export function chunkPlan(options: ChunkOptions = {}, defaultBatchSeconds = DEFAULT_BATCH_SECONDS): ChunkPlan {
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  if (options.exact !== undefined && typeof options.exact !== 'boolean') {
    throw typeError(`exact must be true or false, got ${typeof options.exact}`);
  }
  const chunkSeconds = checkSeconds(options.chunkSeconds ?? DEFAULT_CHUNK_SECONDS, 'chunkSeconds', 1 / FRAME_RATE);
  const contextSeconds = checkSeconds(options.contextSeconds ?? DEFAULT_CONTEXT_SECONDS, 'contextSeconds', 0);
  const chunkFrames = Math.max(1, Math.round(chunkSeconds * FRAME_RATE));
  const contextFrames = Math.ceil(contextSeconds * FRAME_RATE - 1e-9);
  const batchSeconds = checkSeconds(options.batchSeconds ?? defaultBatchSeconds, 'batchSeconds', 0);
  const windowSeconds = (chunkFrames + contextFrames) / FRAME_RATE;
  const batchWindows = Math.max(1, Math.floor(batchSeconds / windowSeconds + 1e-9));
  return { chunkFrames, contextFrames, batchWindows };
}

/**
 * First frame kept by window `k`. The first window has no preceding audio, so it keeps `chunkFrames +
 * contextFrames` frames (as `_span_windows` does for a span at the clip's start).
 */
function windowFirst(k: number, plan: ChunkPlan): number {
  return k === 0 ? 0 : plan.contextFrames + k * plan.chunkFrames;
}

/** Number of windows covering `totalFrames` frames. */
function windowCount(totalFrames: number, plan: ChunkPlan): number {
  let k = 0;
  while (windowFirst(k, plan) < totalFrames) k++;
  return k;
}

/**
 * The windows of a span of `frames` frames whose first `lead` frames are context only, as [input start, first
 * kept frame, end) in span frames: a port of `_span_windows` in exporter/encodec_ts.py, which the span methods of
 * every exported model (exporter 1.2+) run and which is therefore the rule; the window-by-window runners (CUDA,
 * exporters before 1.2) run the windows it gives, so both paths run the same windows. The kept frames are cut
 * into chunks of `chunk` frames (the clip's first window keeps `chunk + context`); each window's input is the
 * `chunk + context` frames that end where it ends (the last, short window takes more context instead of being
 * shorter), but never starts before `lead - context` (the span's frames before that only warm up its
 * convolutions). test/codec/chunking.test.ts checks the port against the Python function.
 */
export function spanWindows(frames: number, lead: number, chunk: number, context: number): [number, number, number][] {
  const width = chunk + context;
  const clean = Math.max(0, lead - context);
  const windows: [number, number, number][] = [];
  let kept = lead;
  let end = Math.min(Math.max(lead + chunk, width), frames);
  for (;;) {
    windows.push([Math.max(clean, end - width), kept, end]);
    if (end >= frames) break;
    kept = end;
    end = Math.min(end + chunk, frames);
  }
  return windows;
}

/**
 * Frames in front of a span's context that only warm up the convolutions: more than the encoder's convolution
 * stack sees (798 samples, under 3 frames) and the decoder's 7-tap input convolution (6 frames), so at every
 * frame a span's windows read, its convolutions compute what one pass over the whole file computes.
 */
export const CONV_WARMUP_FRAMES = 8;

/** One native call: a group of `batchWindows` consecutive windows, as one contiguous span of input. */
export interface ChunkSpan {
  /** First frame of the span's input (context and convolution warm-up included). */
  start: number;
  /** First kept frame: frames [start, first) are context only. */
  first: number;
  /** Kept frames: [first, first + frames). */
  frames: number;
  /** The span's windows (frames of the whole clip), those its span call runs ({@link spanWindows}), for runners that run windows. */
  windows: ChunkWindow[];
}

/** The span keeping frames [first, end) (window boundaries), with its context and convolution warm-up in front. */
function spanOf(first: number, end: number, plan: ChunkPlan): ChunkSpan {
  const start = first === 0 ? 0 : Math.max(0, first - plan.contextFrames - CONV_WARMUP_FRAMES);
  const windows = spanWindows(end - start, first - start, plan.chunkFrames, plan.contextFrames).map(
    ([input, kept, stop]) => ({ first: start + kept, frames: stop - kept, context: kept - input }),
  );
  return { start, first, frames: end - first, windows };
}

/**
 * The spans of step `step`, one SpanRunner.run call of `lanes` spans: `batchWindows` windows each, except in a
 * step cut short by the end of the clip, whose windows are shared evenly among the lanes so that they finish
 * together (instead of one full span and a short one, with a lane idle for the difference).
 */
function stepSpans(step: number, totalFrames: number, plan: ChunkPlan, lanes: number): ChunkSpan[] {
  const perStep = lanes * plan.batchWindows;
  const from = step * perStep;
  const to = Math.min(from + perStep, windowCount(totalFrames, plan));
  const perSpan = to - from < perStep ? Math.ceil((to - from) / lanes) : plan.batchWindows;
  const spans: ChunkSpan[] = [];
  for (let k = from; k < to; k += perSpan) {
    spans.push(spanOf(windowFirst(k, plan), Math.min(windowFirst(Math.min(k + perSpan, to), plan), totalFrames), plan));
  }
  return spans;
}

/** The steps (groups of at most `lanes` spans run at once, see {@link stepSpans}) covering `totalFrames` frames. */
export function chunkSteps(totalFrames: number, plan: ChunkPlan, lanes: number): ChunkSpan[][] {
  const steps: ChunkSpan[][] = [];
  for (let step = 0; windowFirst(step * lanes * plan.batchWindows, plan) < totalFrames; step++) {
    steps.push(stepSpans(step, totalFrames, plan, lanes));
  }
  return steps;
}

/** The spans (native calls) covering `totalFrames` frames, for a runner of `lanes` lanes. */
export function chunkSpans(totalFrames: number, plan: ChunkPlan, lanes = 1): ChunkSpan[] {
  return chunkSteps(totalFrames, plan, lanes).flat();
}

/** Runs the model on several clips (or code blocks) at once: Encodec.encodeBatch / decodeBatch bound to options. */
export type BatchRunner<I, O> = (inputs: I[]) => Promise<O[]>;

/**
 * Runs the model on spans: each input holds its span's frames from `span.start` (audio samples or codes); resolves
 * with the output of each span's kept frames. Models with span methods (exporter 1.2+) take a span per native
 * call, `lanes` spans at once on a share of the threads each; others run a span's windows as one batch
 * ({@link encodeSpanByWindows}, {@link decodeSpanByWindows}).
 */
export interface SpanRunner<I, O> {
  /** Spans run at once: the most `run` is given. */
  lanes: number;
  run(inputs: I[], spans: ChunkSpan[]): Promise<O[]>;
}

/**
 * How a runner's input splits into the inputs of parts of its span, and how the parts' outputs join: what
 * {@link inHalvesOnOom} needs to run a span in halves.
 */
export interface SpanParts<I, O> {
  /** The input of `part` (a span of some of `span`'s windows) cut from `input`, the input of `span`. */
  slice(input: I, span: ChunkSpan, part: ChunkSpan): I;
  /** The output of consecutive parts, joined. */
  join(outputs: O[]): O;
}

/** Encoding: audio in (samples from the span's start), codes out. */
export const ENCODE_PARTS: SpanParts<Float32Array, Codes> = {
  slice: (input, span, part) => input.subarray((part.start - span.start) * HOP_LENGTH, (spanEnd(part) - span.start) * HOP_LENGTH),
  join: (outputs) => concatCodes(outputs),
};

/** Decoding: codes in (frames from the span's start), audio out. */
export const DECODE_PARTS: SpanParts<Codes, Float32Array> = {
  slice: (input, span, part) => sliceFrames(input, part.start - span.start, spanEnd(part) - part.start),
  join: (outputs) => {
    const out = new Float32Array(outputs.reduce((n, o) => n + o.length, 0));
    let at = 0;
    for (const o of outputs) {
      out.set(o, at);
      at += o.length;
    }
    return out;
  },
};

/** A call on spans: each input holds its span's frames from `span.start`; resolves with each span's output. */
export type SpansCall<I, O> = (inputs: I[], spans: ChunkSpan[]) => Promise<O[]>;

/**
 * The retry rule of out of memory (code ENCODEC_OOM), for every chunked path (span calls of `encode()`, pooled
 * packs of encodeBatch and the like): `call`, which when it runs out of memory runs what it held again in halves,
 * each half again in halves if it fails too. Several spans (a pack of one native call, or the lanes' spans running
 * at once: either way the memory of all of them is in flight) go as two groups of spans; one span as two spans of
 * half its windows each; out of memory with one span of one window fails with ENCODEC_OOM naming `batchSeconds`.
 * The windows and their inputs are the same, so the output is too (except a short last window left alone in a
 * half, which then has only `contextFrames` of context: see spanWindows).
 */
export function inHalvesOnOom<I, O>(call: SpansCall<I, O>, parts: SpanParts<I, O>, plan: ChunkPlan): SpansCall<I, O> {
  const run = async (inputs: I[], spans: ChunkSpan[]): Promise<O[]> => {
    try {
      return await call(inputs, spans);
    } catch (err) {
      if (!hasCode(err, 'ENCODEC_OOM')) throw err;
      if (spans.length > 1) {
        const half = Math.ceil(spans.length / 2);
        debug('memory', () => `out of memory coding ${spans.length} spans: retrying as ${half} + ${spans.length - half} spans`);
        const first = await run(inputs.slice(0, half), spans.slice(0, half));
        return first.concat(await run(inputs.slice(half), spans.slice(half)));
      }
      const [input] = inputs;
      const [span] = spans;
      if (span.windows.length === 1) throw outOfMemory(err, plan);
      const half = Math.ceil(span.windows.length / 2);
      debug('memory', () => `out of memory coding frames ${span.first}..${spanEnd(span)}: retrying as ${half} + ${span.windows.length - half} windows`);
      const middle = span.windows[half].first;
      const outputs: O[] = [];
      for (const part of [spanOf(span.first, middle, plan), spanOf(middle, spanEnd(span), plan)]) {
        outputs.push(...await run([parts.slice(input, span, part)], [part]));
      }
      return [parts.join(outputs)];
    }
  };
  return run;
}

/** `runner` with the retry rule of out of memory ({@link inHalvesOnOom}). */
export function retryOnOom<I, O>(runner: SpanRunner<I, O>, parts: SpanParts<I, O>, plan: ChunkPlan): SpanRunner<I, O> {
  return { lanes: runner.lanes, run: inHalvesOnOom((inputs, spans) => runner.run(inputs, spans), parts, plan) };
}

function outOfMemory(err: unknown, plan: ChunkPlan): Error {
  const seconds = (plan.chunkFrames + plan.contextFrames) / FRAME_RATE;
  return codedError(
    'ENCODEC_OOM',
    `out of memory with one chunk per call (the spans of batchSeconds were retried in halves down to one ${seconds} s ` +
      `window): lower chunkSeconds or batchSeconds, run fewer jobs at once, or free memory (${(err as Error).message})`,
    { cause: err },
  );
}

/** Copies `frames` frames of every codebook row of `src` from frame `from` into `dst` (row length `dstFrames`) at `at`. */
export function copyFrames(src: Codes, from: number, frames: number, dst: Int16Array | Int32Array, dstFrames: number, at: number): void {
  for (let q = 0; q < src.nQ; q++) {
    const row = src.data.subarray(q * src.nFrames + from, q * src.nFrames + from + frames);
    dst.set(row, q * dstFrames + at);
  }
}

/** Frames [from, from + frames) of codes, as a new block of the same integer type. */
export function sliceFrames(codes: Codes, from: number, frames: number): Codes {
  const data = new (codes.data instanceof Int32Array ? Int32Array : Int16Array)(codes.nQ * frames);
  copyFrames(codes, from, frames, data, frames, 0);
  return { data, nQ: codes.nQ, nFrames: frames };
}

/** Samples [start, end) of the window's audio (context included), clipped to the clip's length. */
function windowSamples(window: ChunkWindow, totalSamples: number): [number, number] {
  const start = (window.first - window.context) * HOP_LENGTH;
  const end = Math.min((window.first + window.frames) * HOP_LENGTH, totalSamples);
  return [start, end];
}

/** Encodes a span as its windows with their context, batched (models without span methods, and CUDA). */
export function encodeSpanByWindows(encodeBatch: BatchRunner<Float32Array, Codes>): SpanRunner<Float32Array, Codes> {
  const one = async (input: Float32Array, span: ChunkSpan): Promise<Codes> => {
    const offset = span.start * HOP_LENGTH;
    const clips = span.windows.map((w) => {
      const [start, end] = windowSamples(w, offset + input.length);
      return input.subarray(start - offset, end - offset);
    });
    const blocks = await encodeBatch(clips);
    const data = new Int16Array(blocks[0].nQ * span.frames);
    span.windows.forEach((w, j) => copyFrames(blocks[j], w.context, w.frames, data, span.frames, w.first - span.first));
    return { data, nQ: blocks[0].nQ, nFrames: span.frames };
  };
  return { lanes: 1, run: async (inputs, spans) => [await one(inputs[0], spans[0])] };
}

/**
 * Latents (the encoder's output before quantization) of a span as its windows with their context, batched (models
 * without span calls, i.e. CUDA).
 */
export function latentsSpanByWindows(latentsBatch: BatchRunner<Float32Array, Embeddings>): SpanRunner<Float32Array, Embeddings> {
  const one = async (input: Float32Array, span: ChunkSpan): Promise<Embeddings> => {
    const offset = span.start * HOP_LENGTH;
    const clips = span.windows.map((w) => {
      const [start, end] = windowSamples(w, offset + input.length);
      return input.subarray(start - offset, end - offset);
    });
    const blocks = await latentsBatch(clips);
    const dim = blocks[0].dim;
    const data = new Float32Array(dim * span.frames);
    span.windows.forEach((w, j) => {
      const b = blocks[j];
      for (let r = 0; r < dim; r++) {
        data.set(b.data.subarray(r * b.nFrames + w.context, r * b.nFrames + w.context + w.frames), r * span.frames + w.first - span.first);
      }
    });
    return { data, dim, nFrames: span.frames };
  };
  return { lanes: 1, run: async (inputs, spans) => [await one(inputs[0], spans[0])] };
}

/** Decodes a span as its windows with their context, batched (models without span methods, and CUDA). */
export function decodeSpanByWindows(decodeBatch: BatchRunner<Codes, Float32Array>): SpanRunner<Codes, Float32Array> {
  const one = async (codes: Codes, span: ChunkSpan): Promise<Float32Array> => {
    const inputs = span.windows.map((w) => sliceFrames(codes, w.first - w.context - span.start, w.context + w.frames));
    const audio = await decodeBatch(inputs);
    const out = new Float32Array(span.frames * HOP_LENGTH);
    span.windows.forEach((w, j) => out.set(audio[j].subarray(w.context * HOP_LENGTH), (w.first - span.first) * HOP_LENGTH));
    return out;
  };
  return { lanes: 1, run: async (inputs, spans) => [await one(inputs[0], spans[0])] };
}

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

/** End (exclusive) of a span's kept frames. */
export function spanEnd(span: ChunkSpan): number {
  return span.first + span.frames;
}

/** A block of codes from {@link encodeStreamBlocks}: frames [firstFrame, firstFrame + nFrames) of the stream. */
export interface CodesBlock extends Codes {
  firstFrame: number;
}

/** Options of streaming encoding. */
export interface StreamOptions {
  /** Stop after this many frames (reads only `maxFrames * 320` samples; the codes equal the first frames of the whole). */
  maxFrames?: number;
}

/** Validates `maxFrames` (undefined = no limit). */
export function checkMaxFrames(maxFrames: unknown): number {
  if (maxFrames === undefined) return Infinity;
  if (typeof maxFrames !== 'number' || !Number.isInteger(maxFrames) || maxFrames < 1) {
    throw rangeError(`maxFrames must be a positive integer number of frames (75 per second), got ${String(maxFrames)}`);
  }
  return maxFrames;
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

/** A block of latents from a stream: frames [firstFrame, firstFrame + nFrames), layout [dim, nFrames]. */
export interface LatentsBlock extends Embeddings {
  firstFrame: number;
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

/** Concatenates latents blocks along time (layout [dim, nFrames]). */
export function concatLatents(blocks: Embeddings[]): Embeddings {
  if (blocks.length === 0) throw rangeError('no latents to concatenate');
  const dim = blocks[0].dim;
  const nFrames = blocks.reduce((n, b) => n + b.nFrames, 0);
  return { data: joinFrames(blocks, dim, new Float32Array(dim * nFrames)), dim, nFrames };
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

/** Concatenates code blocks along time into one Codes. */
export function concatCodes(blocks: Codes[]): Codes {
  if (blocks.length === 0) throw rangeError('no codes to concatenate');
  const nQ = blocks[0].nQ;
  const nFrames = blocks.reduce((n, b) => n + b.nFrames, 0);
  const data = new Int16Array(nQ * nFrames);
  let at = 0;
  for (const b of blocks) {
    copyFrames(b, 0, b.nFrames, data, nFrames, at);
    at += b.nFrames;
  }
  return { data, nQ, nFrames };
}
