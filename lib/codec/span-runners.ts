/**
 * How spans reach the model: the runner types the chunked paths call (a model's span methods, or a span's windows
 * as one batch for models without them and CUDA), how a span's input and output split into parts, and the retry
 * rule of out of memory that runs a span call again in halves.
 */
import { FRAME_RATE, HOP_LENGTH } from './bandwidth';
import { ChunkPlan, ChunkSpan, spanEnd, spanOf } from './chunk-plan';
import { concatCodes, copyFrames, sliceFrames } from './code-frames';
import type { Codes, Embeddings } from './codes';
import { debug } from '../common/log';
import { codedError, hasCode } from '../common/errors';

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

/** The audio of each of a span's windows (context included, clipped to the input), cut from the span's input. */
function windowClips(input: Float32Array, span: ChunkSpan): Float32Array[] {
  const offset = span.start * HOP_LENGTH;
  return span.windows.map((w) => {
    const start = (w.first - w.context) * HOP_LENGTH;
    const end = Math.min((w.first + w.frames) * HOP_LENGTH, offset + input.length);
    return input.subarray(start - offset, end - offset);
  });
}

/** Encodes a span as its windows with their context, batched (models without span methods, and CUDA). */
export function encodeSpanByWindows(encodeBatch: BatchRunner<Float32Array, Codes>): SpanRunner<Float32Array, Codes> {
  const one = async (input: Float32Array, span: ChunkSpan): Promise<Codes> => {
    const blocks = await encodeBatch(windowClips(input, span));
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
    const blocks = await latentsBatch(windowClips(input, span));
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
