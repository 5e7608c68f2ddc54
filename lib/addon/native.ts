/**
 * Loading of the compiled addon (a prebuild from `prebuilds/`, or `build/Release` after compiling).
 * Loaded lazily so that file utilities and `model info` work where libtorch is absent.
 */
import * as path from 'node:path';
import { markAsUntransferable } from 'node:worker_threads';

import { PACKAGE_ROOT } from '../common/package-root';
import { codedError } from '../common/errors';

/** A block of codes as the addon exchanges them: data laid out [nQ, nFrames], row-major. */
export interface NativeCodes {
  data: Int16Array | Int32Array;
  nQ: number;
  nFrames: number;
  /** Segmented models (encodec_48khz): the segment's scale, returned by encode and required by decode. */
  scale?: number;
}

/** Quantized latent vectors: data laid out [dim, nFrames], row-major. */
export interface NativeLatents {
  data: Float32Array;
  dim: number;
  nFrames: number;
}

/**
 * Geometry of a span call, in frames: the first `lead` frames are context only; the rest run through the LSTM in
 * windows of `chunk` frames with `context` frames in front (exporter/encodec_ts.py, encode_span / decode_span).
 */
export interface NativeSpan {
  lead: number;
  chunk: number;
  context: number;
}

/**
 * Options of one native encode/decode call. `threads`: intra-op threads for it (at most the model's; 0 or absent:
 * all). Calls whose threads fit in the model's together run at once; others wait.
 */
export interface NativeCallOptions {
  span?: NativeSpan;
  /** One geometry per input: the inputs are spans run in one pooled call (exporter 1.5, encode_spans / decode_spans). */
  spans?: NativeSpan[];
  threads?: number;
}

/** The addon's model object (see native/model.cc). */
export interface NativeModel {
  readonly metadata: string;
  readonly device: string;
  readonly threads: number;
  readonly disposed: boolean;
  /** With `options.span`, `clips` is one span of a chunked encoding (models with span methods; lib/codec/chunking.ts). */
  encode(clips: Float32Array[], nQ: number, options?: NativeCallOptions): Promise<NativeCodes[]>;
  /** With `options.span`, `codes` is one span of a chunked decoding. */
  decode(codes: NativeCodes[], options?: NativeCallOptions): Promise<Float32Array[]>;
  dequantize(codes: NativeCodes[]): Promise<NativeLatents[]>;
  /** The residual VQ's codebooks, data laid out [count, bins, dim]. */
  codebooks(): Promise<{ data: Float32Array; count: number; bins: number; dim: number }>;
  /** The encoder's output before quantization; with `options.span`, one span (exporter/encodec_ts.py latents_span). */
  latents(clips: Float32Array[], options?: NativeCallOptions): Promise<NativeLatents[]>;
  dispose(): void;
}

/** Segments decoded by the LM (native/lm_session.h): codes per segment, where each began, where the last ended. */
export interface NativeLmDecoded {
  codes: NativeCodes[];
  offsets: number[];
  end: number;
}

/** The addon's entropy-coding LM object (see native/lm_model.cc). */
export interface NativeLm {
  readonly metadata: string;
  readonly nQ: number;
  readonly threads: number;
  /** Segments compress() codes at once, each on a thread of its own (with 1 intra-op thread; the bytes do not depend on it). */
  readonly jobs: number;
  /** Whether the calls so far ran the C++ step (native/lm_step.h), none of them the TorchScript one. */
  readonly fastStep: boolean;
  /** Whether compress so far ran every segment's LM on blocks of frames at once (native/lm_block.h). */
  readonly blockStep: boolean;
  /** Whether the C++ step computes the key/value variants of past frames without BLAS (native/lm_kv_plan.h, KvPlan). */
  readonly kvSums: boolean;
  readonly pairedDecode: boolean;
  readonly disposed: boolean;
  /** Arithmetic-codes each block as one segment (fresh LM state and coder); one payload per block. */
  compress(blocks: NativeCodes[]): Promise<Uint8Array[]>;
  /**
   * Decodes consecutive segments from `data`: each is `prefixBytes` bytes (left to the caller) then the coded
   * stream of `frames[i]` frames of `nQ` codes. Rejects with an Error whose `code` is 'ECDC_DESYNC' when the
   * stream cannot be decoded with this LM.
   */
  decompress(data: Uint8Array, nQ: number, frames: number[], prefixBytes: number): Promise<NativeLmDecoded>;
  dispose(): void;
}

/** What the addon reports about the libtorch it runs on. */
export interface RuntimeInfo {
  torchVersion: string;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  defaultThreads: number;
  parallelInfo: string;
  buildConfig: string;
  outputsCopied: boolean;
  /** Whether inputs are copied (the buffer pinner is not set) rather than read in place. */
  inputsCopied: boolean;
  /** Models freed on a JavaScript thread (0: every model was freed off the event loop, as it should be). */
  modelsFreedOnJsThread: number;
  /**
   * The addon's own threads that have run native work so far: added only while every one is busy (one per call
   * running at once, at most the core count), not one per libuv pool thread.
   */
  callThreads: number;
}

/** A power mel spectrogram as the addon returns it: data laid out [nMels, nFrames], row-major. */
export interface NativeMel {
  data: Float32Array;
  nMels: number;
  nFrames: number;
}

export interface NativeBinding {
  load(modelPath: string, options?: { device?: string; threads?: number }): Promise<NativeModel>;
  /** Loads an entropy-coding LM file (exporter/export_lm.py); `threads`: intra-op threads of its steps (default 1). */
  loadLm(lmPath: string, options?: { threads?: number; jobs?: number }): Promise<NativeLm>;
  /**
   * Power mel spectrogram (filterbank [nMels, nFft / 2 + 1] times |STFT|^2; see native/spectral.h), computed
   * `blockFrames` frames at a time (default 4096; the result does not depend on it).
   */
  melSpectrogram(
    samples: Float32Array,
    filterbank: Float32Array,
    nMels: number,
    nFft: number,
    hopLength: number,
    blockFrames?: number,
  ): Promise<NativeMel>;
  /** Audio of `length` samples from a power mel spectrogram [nMels, 1 + length / hopLength] (Griffin-Lim). */
  melToAudio(
    mel: Float32Array,
    filterbank: Float32Array,
    nMels: number,
    nFft: number,
    hopLength: number,
    iterations: number,
    length: number,
  ): Promise<Float32Array>;
  runtimeInfo(): RuntimeInfo;
  /**
   * Gives the addon the function that pins ArrayBuffers against detaching (worker_threads.markAsUntransferable),
   * so audio can be read in place while work runs off the event loop. Without it, inputs are copied.
   */
  setBufferPinner(pin: (buffer: ArrayBufferLike) => void): void;
}


let binding: NativeBinding | undefined;

/** The addon, loaded on first use. Throws an Error that says how to fix a missing build or libtorch. */
export function nativeBinding(): NativeBinding {
  if (binding) return binding;
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const load = require('node-gyp-build') as (dir: string) => NativeBinding;
    binding = load(PACKAGE_ROOT);
    // Zero-copy inputs: a buffer handed to the model is pinned (a later transfer copies instead of detaching it),
    // so no JavaScript can free memory the model is reading.
    binding.setBufferPinner(markAsUntransferable as (buffer: ArrayBufferLike) => void);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    const hint = /lib(torch|c10)/.test(reason)
      ? 'libtorch is not installed where the addon expects it: on Debian/Ubuntu run `apt-get install libtorch-dev libopenblas0-openmp`'
      : 'build it with `npm rebuild encodec-native` (needs cmake, a C++ compiler and libtorch; with npm 12 or later ' +
        'first `npm install-scripts approve encodec-native`: npm skips the install scripts you have not approved; ' +
        'see docs/building.md)';
    throw codedError('ENCODEC_ADDON', `encodec-native's native addon could not be loaded (${reason.split('\n')[0]}); ${hint}`);
  }
  return binding;
}
