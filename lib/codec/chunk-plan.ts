/**
 * The geometry of chunked coding: the chunking options turned into frames (a {@link ChunkPlan}), the windows that
 * cover a clip (`_span_windows` in exporter/encodec_ts.py, ported as {@link spanWindows}), and their grouping into
 * spans (one native call each) and steps (the spans the lanes run at once). How chunks with left context work and
 * why: lib/codec/chunking.ts.
 */
import { FRAME_RATE } from './bandwidth';
import { DEFAULT_BATCH_SECONDS } from './call-policy';
import { ChunkOptions, DEFAULT_CHUNK_SECONDS, DEFAULT_CONTEXT_SECONDS } from './coding-options';
import { rangeError, typeError } from '../common/errors';

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

/** Validates `maxFrames` (undefined = no limit). */
export function checkMaxFrames(maxFrames: unknown): number {
  if (maxFrames === undefined) return Infinity;
  if (typeof maxFrames !== 'number' || !Number.isInteger(maxFrames) || maxFrames < 1) {
    throw rangeError(`maxFrames must be a positive integer number of frames (75 per second), got ${String(maxFrames)}`);
  }
  return maxFrames;
}

/**
 * First frame kept by window `k`. The first window has no preceding audio, so it keeps `chunkFrames +
 * contextFrames` frames (as `_span_windows` does for a span at the clip's start).
 */
export function windowFirst(k: number, plan: ChunkPlan): number {
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
export function spanOf(first: number, end: number, plan: ChunkPlan): ChunkSpan {
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
export function stepSpans(step: number, totalFrames: number, plan: ChunkPlan, lanes: number): ChunkSpan[] {
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

/** End (exclusive) of a span's kept frames. */
export function spanEnd(span: ChunkSpan): number {
  return span.first + span.frames;
}
