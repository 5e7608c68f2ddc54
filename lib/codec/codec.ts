/**
 * The codec: a loaded EnCodec 24 kHz model that encodes samples to codes and decodes codes to samples.
 *
 * All work runs off the event loop, one call at a time per model (calls queue in order), on the device
 * and thread count chosen at load time.
 */
import * as fs from 'node:fs';

import { SAMPLE_RATE, checkBandwidth, codebooksForBandwidth } from './bandwidth';
import {
  ChunkOptions,
  CUDA_BATCH_SECONDS,
  DEFAULT_BATCH_SECONDS,
  LEGACY_BATCH_SECONDS,
  ChunkPlan,
  ChunkSpan,
  CodesBlock,
  DECODE_PARTS,
  ENCODE_PARTS,
  SPAN_BATCH_SECONDS,
  UNSEGMENTED_SPAN_BATCH_SECONDS,
  SPAN_LANES,
  SpanRunner,
  StreamOptions,
  checkMaxFrames,
  chunkPlan,
  concatCodes,
  decodeChunked,
  decodeSpanByWindows,
  encodeChunked,
  encodeSpanByWindows,
  encodeStreamBlocks,
  retryOnOom,
} from './chunking';
import { Codes, Embeddings, checkCodes } from './codes';
import { Device, parseDevice } from './device';

export type { Device } from './device';
import { debug, elapsedSince, formatBytes } from '../common/log';
import { ModelInfo, parseModelInfo } from '../model/model-file';
import { NativeCallOptions, NativeModel, NativeSpan, nativeBinding } from './native';
import { warnIfSlowBlas } from './runtime';
import { threadsPerJob } from './threads';
import { codedError, rangeError, typeError } from '../common/errors';

export interface LoadOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. CUDA needs a CUDA build of libtorch. */
  device?: Device;
  /** Intra-op threads for this model's computations (default: the number of available cores). */
  threads?: number;
}

export interface EncodeOptions extends ChunkOptions {
  /** Bandwidth in kbps: 1.5, 3, 6 (default), 12 or 24, i.e. 2, 4, 8, 16 or 32 codebooks. */
  bandwidth?: number;
}

/** Options of {@link Encodec.decode}: chunked with left context (default) or whole-file (`exact: true`). */
export type DecodeOptions = ChunkOptions;

/** Options of {@link Encodec.encodeStream}: bandwidth, chunking (not `exact`) and `maxFrames`. */
export interface EncodeStreamOptions extends Omit<EncodeOptions, 'exact'>, StreamOptions {}

const DEFAULT_BANDWIDTH = 6;

function checkSamples(samples: unknown, what: string): asserts samples is Float32Array {
  if (!(samples instanceof Float32Array)) {
    const got = samples === null ? 'null' : ArrayBuffer.isView(samples) ? samples.constructor.name : typeof samples;
    throw typeError(`${what} must be a Float32Array of 24 kHz mono samples, got ${got}`);
  }
  if (samples.length === 0) throw rangeError(`${what} is empty; pass at least one sample`);
}

/** Size of a file for log lines ('? B' when it cannot be read). */
function fileSize(file: string): string {
  try {
    return formatBytes(fs.statSync(file).size);
  } catch {
    return '? B';
  }
}


export class Encodec {
  /** The model file's metadata (sample rate, bandwidths, source checkpoint, exporter version, ...). */
  readonly info: ModelInfo;
  /** The file the model was loaded from. */
  readonly modelPath: string;
  private model: NativeModel | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Default `batchSeconds`: on CUDA many windows per call (the GPU needs the parallel work); on the CPU long spans
   * for span calls (exporter 1.2+; longer from 1.3, whose LSTM holds less), several windows where the model
   * batches just its LSTM (1.1), else one.
   */
  private readonly batchSeconds: number;
  /**
   * Whether chunked coding runs a whole span per native call (exporter 1.2+ on the CPU): the convolutions then
   * run once over the span instead of once per window with its context. CUDA keeps the batched windows measured
   * on the H200 (span calls run their pieces one after another; not measured there).
   */
  private readonly spanCalls: boolean;

  private constructor(model: NativeModel, modelPath: string) {
    this.model = model;
    this.modelPath = modelPath;
    this.info = parseModelInfo(model.metadata, modelPath);
    const cuda = model.device.startsWith('cuda');
    this.spanCalls = this.info.span_methods === true && !cuda;
    this.batchSeconds = cuda
      ? CUDA_BATCH_SECONDS
      : this.spanCalls
        ? (this.info.lstm_segment_steps !== undefined ? SPAN_BATCH_SECONDS : UNSEGMENTED_SPAN_BATCH_SECONDS)
        : this.info.cpu_batching === 'lstm'
        ? DEFAULT_BATCH_SECONDS
        : LEGACY_BATCH_SECONDS;
  }

  /** Loads a model file exported by `encodec-native model export` (or `model random`). */
  static async load(modelPath: string, options: LoadOptions = {}): Promise<Encodec> {
    if (typeof modelPath !== 'string' || modelPath === '') {
      throw typeError('modelPath must be the path of a model file (.pt) exported by `encodec-native model export`');
    }
    if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
    const device = parseDevice(options.device ?? 'cpu');
    const threads = options.threads ?? threadsPerJob(1);
    if (!Number.isInteger(threads) || threads < 1 || threads > 1024) {
      throw rangeError(`threads must be an integer in [1, 1024], got ${String(threads)}`);
    }
    const loadStart = performance.now();
    const model = await nativeBinding().load(modelPath, { device, threads });
    if (device === 'cpu') warnIfSlowBlas();
    debug('model', () => `loaded '${modelPath}' (${fileSize(modelPath)}) on ${device}, ${threads} threads in ${elapsedSince(loadStart)}`);
    try {
      return new Encodec(model, modelPath);
    } catch (err) {
      model.dispose();
      throw err;
    }
  }

  /** The device the model runs on ('cpu', 'cuda:0', ...). */
  get device(): string {
    return this.live('device').device;
  }

  /** Intra-op threads used for this model's computations. */
  get threads(): number {
    return this.live('threads').threads;
  }

  /** Whether dispose() was called. */
  get disposed(): boolean {
    return this.model === undefined;
  }

  /**
   * Encodes 24 kHz mono samples to codes of shape [nQ, ceil(samples / 320)]. By default in chunks of
   * `chunkSeconds` with `contextSeconds` of left context, batched (fast, memory bounded by the chunk size,
   * codes >= 99.5 % identical to whole-file encoding; see lib/chunking.ts); `exact: true` encodes the whole
   * clip in one pass.
   */
  async encode(samples: Float32Array, options: EncodeOptions = {}): Promise<Codes> {
    checkSamples(samples, 'samples');
    const plan = chunkPlan(options, this.batchSeconds);
    if (options.exact) {
      const [codes] = await this.encodeBatch([samples], { bandwidth: options.bandwidth });
      return codes;
    }
    return encodeChunked(samples, plan, this.spanEncoder(plan, options.bandwidth ?? DEFAULT_BANDWIDTH));
  }

  /**
   * Encodes a stream of 24 kHz mono sample blocks (e.g. `streamAudio(file)`) holding only about one batch of
   * chunks of audio at a time; resolves with all the codes, identical to `encode()` of the concatenated
   * samples with the same options. For codes block by block, use {@link encodeStreamBlocks}.
   */
  async encodeStream(
    chunks: AsyncIterable<Float32Array> | Iterable<Float32Array>,
    options: EncodeStreamOptions = {},
  ): Promise<Codes> {
    const blocks: Codes[] = [];
    for await (const block of this.encodeStreamBlocks(chunks, options)) blocks.push(block);
    return concatCodes(blocks);
  }

  /**
   * Like {@link encodeStream} but yields the codes as they are computed, in order: blocks of consecutive
   * frames (`firstFrame` says where each starts), one per batch of chunks. Bad arguments reject the first
   * `next()`, as every other method rejects its promise.
   */
  async *encodeStreamBlocks(
    chunks: AsyncIterable<Float32Array> | Iterable<Float32Array>,
    options: EncodeStreamOptions = {},
  ): AsyncGenerator<CodesBlock, void, undefined> {
    if (chunks === null || typeof chunks !== 'object' || (!(Symbol.asyncIterator in chunks) && !(Symbol.iterator in chunks))) {
      throw typeError('chunks must be an (async) iterable of Float32Array blocks, e.g. streamAudio(file)');
    }
    if ((options as EncodeOptions).exact !== undefined) {
      throw typeError('encodeStream() is always chunked; drop `exact`, or load the samples and call encode(samples, { exact: true })');
    }
    const plan = chunkPlan(options, this.batchSeconds);
    const maxFrames = checkMaxFrames(options.maxFrames);
    const bandwidth = options.bandwidth ?? DEFAULT_BANDWIDTH;
    checkBandwidth(bandwidth);
    this.live('encodeStream');
    yield* encodeStreamBlocks(chunks, plan, maxFrames, this.spanEncoder(plan, bandwidth));
  }

  /** Encodes several clips in one call; clips of equal length are batched through the model together. */
  async encodeBatch(clips: Float32Array[], options: EncodeOptions = {}): Promise<Codes[]> {
    if (!Array.isArray(clips) || clips.length === 0) throw typeError('clips must be a non-empty array of Float32Array');
    clips.forEach((clip, i) => checkSamples(clip, `clip ${i}`));
    if (typeof options !== 'object' || options === null) throw typeError('options must be an object such as { bandwidth: 6 }');
    const bandwidth = options.bandwidth ?? DEFAULT_BANDWIDTH;
    checkBandwidth(bandwidth);
    const nQ = codebooksForBandwidth(bandwidth);
    const start = performance.now();
    const codes = await this.run('encode', (model) => model.encode(clips, nQ));
    debug('encode', () => {
      const samples = clips.reduce((n, c) => n + c.length, 0);
      const shapes = codes.length === 1 ? `${codes[0].nQ} x ${codes[0].nFrames}` : `${codes.length} clips`;
      return `${samples} samples (${(samples / SAMPLE_RATE).toFixed(2)} s) at ${bandwidth} kbps -> codes ${shapes} in ${elapsedSince(start)}`;
    });
    return codes;
  }

  /**
   * Decodes codes to 24 kHz mono samples: nFrames * 320 samples. By default in chunks with left context,
   * batched (within float rounding of whole-file decoding); `exact: true` decodes in one pass.
   */
  async decode(codes: Codes, options: DecodeOptions = {}): Promise<Float32Array> {
    checkCodes(codes);
    const plan = chunkPlan(options, this.batchSeconds);
    if (options.exact) {
      const [samples] = await this.decodeBatch([codes]);
      return samples;
    }
    return decodeChunked(codes, plan, this.spanDecoder(plan));
  }

  /**
   * Span calls run at once, each on a share of the threads: the LSTM's per-frame steps are too small for two
   * threads, so one span's LSTM leaves a core idle that another span's work fills. Measured on 2 cores (120 s of
   * speech, 6 kbps): two one-thread calls at once encode 30x real time where one two-thread call at a time
   * encodes 22x (decode 32x vs 23x).
   */
  private lanes(): number[] {
    const threads = this.threads;
    const lanes = this.spanCalls ? Math.min(SPAN_LANES, Math.max(threads, 1)) : 1;
    if (lanes === 1) return [0]; // 0: all the model's threads (also for a lone span: see the runners)
    return Array.from({ length: lanes }, (_, i) => Math.floor(threads / lanes) + (i < threads % lanes ? 1 : 0));
  }

  /** How chunked encoding runs spans: native span calls, or each span's windows as a batch (see spanCalls). */
  private spanEncoder(plan: ChunkPlan, bandwidth: number): SpanRunner<Float32Array, Codes> {
    checkBandwidth(bandwidth);
    if (!this.spanCalls) return retryOnOom(encodeSpanByWindows((clips) => this.encodeBatch(clips, { bandwidth })), ENCODE_PARTS, plan);
    const nQ = codebooksForBandwidth(bandwidth);
    const runner = this.spanRunner(
      'encode',
      plan,
      async (model, input: Float32Array, options) => (await model.encode([input], nQ, options))[0],
      (input, block) => `${input.length} samples (${(input.length / SAMPLE_RATE).toFixed(2)} s) at ${bandwidth} kbps -> codes ${block.nQ} x ${block.nFrames}`,
    );
    return retryOnOom(runner, ENCODE_PARTS, plan);
  }

  /** How chunked decoding runs spans (see spanEncoder). */
  private spanDecoder(plan: ChunkPlan): SpanRunner<Codes, Float32Array> {
    if (!this.spanCalls) return retryOnOom(decodeSpanByWindows((blocks) => this.decodeBatch(blocks)), DECODE_PARTS, plan);
    const runner = this.spanRunner(
      'decode',
      plan,
      async (model, codes: Codes, options) => (await model.decode([codes], options))[0],
      (codes, samples) => `${codes.nFrames} frames -> ${samples.length} samples (${(samples.length / SAMPLE_RATE).toFixed(2)} s)`,
    );
    return retryOnOom(runner, DECODE_PARTS, plan);
  }

  /** Native span calls (`call`), a run's spans at once, each on its lane's share of the threads. */
  private spanRunner<I, O>(
    what: 'encode' | 'decode',
    plan: ChunkPlan,
    call: (model: NativeModel, input: I, options: NativeCallOptions) => Promise<O>,
    describe: (input: I, output: O) => string,
  ): SpanRunner<I, O> {
    const threads = this.lanes();
    return {
      lanes: threads.length,
      run: (inputs, spans) => this.run(what, async (model) => {
        const start = performance.now();
        const settled = await Promise.allSettled(inputs.map(async (input, k) => {
          // a lone span (the runners' last step may hold one) takes all the threads
          const output = await call(model, input, { span: spanGeometry(spans[k], plan), threads: inputs.length > 1 ? threads[k] : 0 });
          debug(what, () => `${describe(input, output)} in ${elapsedSince(start)}`);
          return output;
        }));
        // every span has finished (a retry after one lane's failure must not run beside the other lane)
        const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failed) throw failed.reason;
        return settled.map((s) => (s as PromiseFulfilledResult<O>).value);
      }),
    };
  }

  /** Decodes several code blocks in one call. */
  async decodeBatch(codes: Codes[]): Promise<Float32Array[]> {
    if (!Array.isArray(codes) || codes.length === 0) throw typeError('codes must be a non-empty array of codes objects');
    codes.forEach((c, i) => checkCodes(c, `codes[${i}]`));
    const start = performance.now();
    const audio = await this.run('decode', (model) => model.decode(codes));
    debug('decode', () => {
      const frames = codes.reduce((n, c) => n + c.nFrames, 0);
      const samples = audio.reduce((n, a) => n + a.length, 0);
      return `${codes.length} code block(s), ${frames} frames -> ${samples} samples (${(samples / SAMPLE_RATE).toFixed(2)} s) in ${elapsedSince(start)}`;
    });
    return audio;
  }

  /** The quantized latent vectors of codes (what the decoder receives), layout [128, nFrames]. */
  async embeddings(codes: Codes): Promise<Embeddings> {
    checkCodes(codes);
    const [latents] = await this.run('embeddings', (model) => model.dequantize([codes]));
    return latents;
  }

  /**
   * Frees the model. Calls already queued still finish; later calls reject with an Error.
   * The memory is released once no call is using it.
   */
  dispose(): void {
    const model = this.model;
    this.model = undefined;
    if (model) void this.queue.then(() => model.dispose(), () => model.dispose());
  }

  private live(what: string): NativeModel {
    if (!this.model) throw codedError('ENCODEC_DISPOSED', `cannot use ${what}: the model was disposed; load it again with Encodec.load()`);
    return this.model;
  }

  // Serialises calls: one computation per model at a time, in call order.
  private run<T>(what: string, work: (model: NativeModel) => Promise<T>): Promise<T> {
    const model = this.live(what);
    const result = this.queue.then(() => work(model));
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/** The native span geometry of a span of `plan`. */
function spanGeometry(span: ChunkSpan, plan: ChunkPlan): NativeSpan {
  return { lead: span.first - span.start, chunk: plan.chunkFrames, context: plan.contextFrames };
}
