/**
 * How chunked coding calls the model, by what the model file offers (its exporter version's metadata) and the
 * device: whether a span of windows goes as one native span call or as a batch of windows, whether span calls
 * pool several spans, and the default audio per call. The one place that knows the exporter versions: files
 * exported by every earlier version (1.0 to the current) keep loading and coding with the defaults they were
 * measured with. (No test exports an old version; test/codec/chunking.test.ts runs the window-batch path, which
 * CUDA and exporters before 1.2 use, against the span path.)
 */
import type { ModelInfo } from '../model/model-file';

/**
 * Default audio per native call (all windows of a batch with their context): 8 windows of 5 s. Models exported
 * by exporter 1.1+ (metadata `cpu_batching: "lstm"`) run a CPU batch's convolutions window by window, which
 * keeps each window's activations in cache, and only the LSTM over the whole batch, whose per-step
 * matrix-vector products become matrix products reading the 8 MB of LSTM weights once for all windows.
 * Measured on the 2-core machine: see docs/performance.md.
 */
export const DEFAULT_BATCH_SECONDS = 40;
/**
 * Default for models with span methods on the CPU: 20 windows (100 s) per span call (exporter 1.3+, whose LSTM
 * runs in 1 s segments). A span's convolutions run in short pieces whatever its length, so a longer span only
 * batches more LSTM windows per step, and each step reads the LSTM's 4 MB of weights once for all of them; longer
 * spans hold more memory, and 100 s keeps a 2-hour stream under 1 GB (docs/performance.md#why-the-defaults).
 */
export const SPAN_BATCH_SECONDS = 100;
/**
 * Default for span models of exporter 1.2, whose LSTM computes the input projections of all of a span's steps
 * at once (49 MB per layer for 16 windows): 80 s, faster than 40 s and still under 1 GB where 160 s was not
 * (docs/performance.md#why-the-defaults).
 */
export const UNSEGMENTED_SPAN_BATCH_SECONDS = 80;
/**
 * Default for older exports, whose batches run every layer on the whole batch: one 5 s window per call (larger
 * batches' activations cost more than the LSTM saves: docs/performance.md#why-the-defaults).
 */
export const LEGACY_BATCH_SECONDS = 5;
/**
 * Default audio per native call on CUDA (12 windows of 5 s): the GPU needs many windows at once, and longer calls
 * decoded slower and held more memory on an H200 (docs/performance.md#why-the-defaults, docs/cuda-check-h200.json).
 */
export const CUDA_BATCH_SECONDS = 60;

/**
 * Span calls run at once by models with span methods on the CPU, each on a share of the model's threads (see
 * laneThreads). Two: measured on 2 cores; each lane holds one span of audio.
 */
export const SPAN_LANES = 2;

/** How a model's chunked coding calls it. */
export interface CallPolicy {
  /** Default `batchSeconds`: audio per native call. */
  batchSeconds: number;
  /**
   * Whether chunked coding runs a whole span per native call (exporter 1.2+ on the CPU): the convolutions then
   * run once over the span instead of once per window with its context. CUDA keeps the batched windows measured
   * on the H200 (span calls run their pieces one after another; not measured there).
   */
  spanCalls: boolean;
  /** Whether span calls go through the pooled methods (exporter 1.5: several spans per call, encodeBatch pools). */
  pooled: boolean;
}

/**
 * The call policy of a model on a device: on CUDA many windows per call (the GPU needs the parallel work); on the
 * CPU long spans for span calls (exporter 1.2+; longer from 1.3, whose LSTM holds less), several windows where the
 * model batches just its LSTM (1.1), else one.
 */
export function callPolicy(info: ModelInfo, device: string): CallPolicy {
  const cuda = device.startsWith('cuda');
  const spanCalls = info.span_methods === true && !cuda;
  const pooled = spanCalls && info.pooled_span_quantum !== undefined;
  const batchSeconds = cuda
    ? CUDA_BATCH_SECONDS
    : spanCalls
      ? (info.lstm_segment_steps !== undefined ? SPAN_BATCH_SECONDS : UNSEGMENTED_SPAN_BATCH_SECONDS)
      : info.cpu_batching === 'lstm'
        ? DEFAULT_BATCH_SECONDS
        : LEGACY_BATCH_SECONDS;
  return { batchSeconds, spanCalls, pooled };
}

/**
 * Threads of each lane: span calls run at once, each on a share of the threads, as the LSTM's per-frame steps are
 * too small for two threads, so one span's LSTM leaves a core idle that another span's work fills
 * (docs/performance.md#why-the-defaults). `[0]`: one lane on all the model's threads.
 */
export function laneThreads(policy: CallPolicy, threads: number): number[] {
  const lanes = policy.spanCalls ? Math.min(SPAN_LANES, Math.max(threads, 1)) : 1;
  if (lanes === 1) return [0]; // 0: all the model's threads (also for a lone span: see the runners)
  return Array.from({ length: lanes }, (_, i) => Math.floor(threads / lanes) + (i < threads % lanes ? 1 : 0));
}
