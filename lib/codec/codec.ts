/**
 * The codec: a loaded EnCodec model (encodec_24khz, mono; or encodec_48khz, stereo) that encodes samples to codes
 * and decodes codes to samples. Audio of several channels is planar: one Float32Array holding channel 0's samples,
 * then channel 1's (see docs/models-48khz.md).
 *
 * All work runs off the event loop, one call at a time per model (calls queue in order), on the device
 * and thread count chosen at load time.
 */
import * as fs from 'node:fs';

import { FRAME_RATE, SAMPLE_RATE, checkBandwidth, codebooksForBandwidth } from './bandwidth';
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
  LatentsBlock,
  SPAN_BATCH_SECONDS,
  UNSEGMENTED_SPAN_BATCH_SECONDS,
  SPAN_LANES,
  SpanRunner,
  StreamDecoder,
  StreamOptions,
  checkMaxFrames,
  chunkPlan,
  concatCodes,
  decodeChunked,
  decodeSpanByWindows,
  encodeChunked,
  encodeSpanByWindows,
  encodeStreamBlocks,
  latentsSpanByWindows,
  latentsStreamBlocks,
  concatLatents,
  retryOnOom,
} from './chunking';
import { Codes, Embeddings, SegmentedCodes, checkCodes } from './codes';
import {
  SegmentCodes,
  SegmentEncoder,
  concatSegmentedCodes,
  SegmentGeometry,
  decodeSegmented,
  encodeSegmented,
  encodeSegmentedStream,
  isSegmented,
  framesPerSegment,
  latentsSegmentedStream,
  segmentGeometryOf,
} from './segments';
import { Device, parseDevice } from './device';

export type { Device } from './device';
import { debug, elapsedSince, formatBytes } from '../common/log';
import { ModelInfo, modelCodebooks, parseModelInfo } from '../model/model-file';
import { NativeCallOptions, NativeModel, NativeSpan, nativeBinding } from './native';
import { decodePooled, encodePooled } from './pool';
import { ItemSource, inRounds, isItemSource } from './rounds';
import { warnIfSlowBlas } from './runtime';
import { threadsPerJob } from './threads';
import { codedError, rangeError, typeError } from '../common/errors';

export interface LoadOptions {
  /** 'cpu' (default), 'cuda' or 'cuda:N'. CUDA needs a CUDA build of libtorch. */
  device?: Device;
  /** Intra-op threads for this model's computations (default: the number of available cores). */
  threads?: number;
  /**
   * Run a short encode and decode at load (default true), so that the first real call does not pay oneDNN's set-up of
   * the fixed piece and window shapes and libtorch's other lazy set-up.
   */
  warmup?: boolean;
}

/** Options of {@link Encodec.encodeMany} and {@link Encodec.decodeMany}. */
export interface ManyOptions {
  /**
   * Seconds of audio (or of codes) per round: clips are read until a round holds this much, a round runs as one
   * pooled batch, and the next round is read while one runs. At most two rounds of input (each under
   * `roundSeconds` plus one clip) and one round of output are held. Default: 4 x `batchSeconds` (400 s on the CPU);
   * encodeBatch / decodeBatch, whose clips are all in memory, run them in one round.
   */
  roundSeconds?: number;
}

/** Options of {@link Encodec.encodeBatch} and {@link Encodec.encodeMany}. */
export interface EncodeManyOptions extends EncodeOptions, ManyOptions {}

/** Options of {@link Encodec.decodeBatch} and {@link Encodec.decodeMany}. */
export interface DecodeManyOptions extends DecodeOptions, ManyOptions {}

export interface EncodeOptions extends ChunkOptions {
  /**
   * Bandwidth in kbps, one of the model's `info.bandwidths`: encodec_24khz 1.5, 3, 6 (default), 12 or 24 (2, 4, 8,
   * 16 or 32 codebooks); encodec_48khz 3, 6 (default), 12 or 24 (2, 4, 8 or 16 codebooks).
   */
  bandwidth?: number;
  /** Channels of the (planar) samples; when given it must be the model's (`info.channels`). */
  channels?: number;
}

/** Options of {@link Encodec.decode}: chunked with left context (default) or whole-file (`exact: true`). */
export type DecodeOptions = ChunkOptions;

/** Options of {@link Encodec.latents}: chunking as for encode (no bandwidth: nothing is quantized). */
export type LatentsOptions = ChunkOptions;

/** Options of {@link Encodec.latentsStream}: chunking (not `exact`) and `maxFrames`. */
export interface LatentsStreamOptions extends Omit<ChunkOptions, 'exact'>, StreamOptions {}

/** Options of {@link Encodec.encodeStream}: bandwidth, chunking (not `exact`) and `maxFrames`. */
export interface EncodeStreamOptions extends Omit<EncodeOptions, 'exact'>, StreamOptions {}

const DEFAULT_BANDWIDTH = 6;
/** Segments per native call for segmented models (split between the lanes). */
const SEGMENT_BATCH = 8;

function checkSamples(samples: unknown, what: string): asserts samples is Float32Array {
  if (!(samples instanceof Float32Array)) {
    const got = samples === null ? 'null' : ArrayBuffer.isView(samples) ? samples.constructor.name : typeof samples;
    throw typeError(`${what} must be a Float32Array of 24 kHz mono samples, got ${got}`);
  }
  if (samples.length === 0) throw rangeError(`${what} is empty; pass at least one sample`);
}

/** checkSamples plus finiteness, for clips pooled with others (the native check cannot name the clip). */
function checkClip(value: unknown, index: number): Float32Array {
  checkSamples(value, `clip ${index}`);
  for (let i = 0; i < value.length; i++) {
    if (!Number.isFinite(value[i])) {
      throw rangeError(`clip ${index} holds ${value[i]} at sample ${i}; clean the audio (NaN/Infinity) before encoding`);
    }
  }
  return value;
}

function checkBlock(value: unknown, index: number): Codes {
  checkCodes(value, `codes[${index}]`);
  return value;
}

function checkOptions(options: unknown, example: string): void {
  if (typeof options !== 'object' || options === null) throw typeError(`options must be an object such as ${example}`);
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
  /** Whether span calls go through the pooled methods (exporter 1.5: several spans per call, encodeBatch pools). */
  private readonly pooled: boolean;
  /** Segment geometry of a segmented model (encodec_48khz); undefined for whole-file models (encodec_24khz). */
  private readonly segments: SegmentGeometry | undefined;

  private constructor(model: NativeModel, modelPath: string) {
    this.model = model;
    this.modelPath = modelPath;
    this.info = parseModelInfo(model.metadata, modelPath);
    this.segments = segmentGeometryOf(this.info);
    const cuda = model.device.startsWith('cuda');
    this.spanCalls = this.info.span_methods === true && !cuda;
    this.pooled = this.spanCalls && this.info.pooled_span_quantum !== undefined;
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
    let codec: Encodec;
    try {
      codec = new Encodec(model, modelPath);
    } catch (err) {
      model.dispose();
      throw err;
    }
    if (options.warmup ?? true) {
      try {
        await codec.warmUp();
      } catch (err) {
        codec.dispose();
        throw err;
      }
    }
    return codec;
  }

  /**
   * Encodes and decodes 2.2 s of noise twice, so that oneDNN's primitives for the fixed shapes (1 s convolution
   * pieces, LSTM windows) and libtorch's other lazy set-up are done before the first real call (once left the
   * first call at 1.3x a steady one, twice at 1.0x, for 0.1 s more). Measured on the 2-core machine: see
   * docs/performance.md.
   */
  private async warmUp(): Promise<void> {
    const start = performance.now();
    // the model's own rate, channels (planar) and lowest bandwidth: encodec_48khz warms up with its stereo segments
    const channels = this.info.channels ?? 1;
    const noise = new Float32Array(channels * Math.round(2.2 * (this.info.sample_rate ?? SAMPLE_RATE)));
    let seed = 1;
    for (let i = 0; i < noise.length; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      noise[i] = (seed / 2147483648 - 0.5) * 0.2;
    }
    for (let i = 0; i < 2; i++) await this.decode(await this.encode(noise, { bandwidth: Math.min(...this.info.bandwidths) }));
    this.warmupMs = performance.now() - start;
    debug('model', () => `warm-up in ${elapsedSince(start)}`);
  }

  /** Milliseconds the warm-up at load took (0 when loaded with `warmup: false`). */
  warmupMs = 0;

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
   * codes >= 99.5 % identical to whole-file encoding; see lib/codec/chunking.ts); `exact: true` encodes the whole
   * clip in one pass.
   *
   * With encodec_48khz: planar 48 kHz stereo in (channel 0's samples, then channel 1's), codes of Meta's 1 s
   * segments out, with `scales` (one per segment) and `segmentFrames` (lib/codec/segments.ts).
   */
  async encode(samples: Float32Array, options: EncodeOptions = {}): Promise<Codes> {
    if (this.segments) return this.encodeSegmentedClip(samples, options, 'samples');
    checkSamples(samples, 'samples');
    if (options.channels !== undefined && options.channels !== this.info.channels) {
      throw rangeError(`${this.info.model} codes ${this.info.channels} channel(s); got channels: ${String(options.channels)}`);
    }
    const plan = chunkPlan(options, this.batchSeconds);
    if (options.exact) {
      const [codes] = await this.encodeWhole([samples], options.bandwidth ?? DEFAULT_BANDWIDTH);
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
    return this.segments ? concatSegmentedCodes(blocks) : concatCodes(blocks);
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
    if (this.segments) {
      const segments = this.segments;
      if (options.maxFrames !== undefined) {
        throw rangeError(`maxFrames does not apply to ${this.info.model}, whose codes are per segment; stop the stream instead`);
      }
      const { nQ, batch } = this.segmentOptions(options);
      this.live('encodeStream');
      yield* encodeSegmentedStream(chunks, segments, batch, this.segmentEncoder(nQ));
      return;
    }
    const plan = chunkPlan(options, this.batchSeconds);
    const maxFrames = checkMaxFrames(options.maxFrames);
    const bandwidth = options.bandwidth ?? DEFAULT_BANDWIDTH;
    checkBandwidth(bandwidth);
    this.live('encodeStream');
    yield* encodeStreamBlocks(chunks, plan, maxFrames, this.spanEncoder(plan, bandwidth));
  }

  /**
   * The encoder's continuous output before quantization: `{ data, dim: 128, nFrames }` laid out [128, nFrames]
   * (nFrames = ceil(samples / 320)), like {@link embeddings}, which is the quantized one. Chunked with left context
   * exactly as {@link encode} (memory bounded by the chunk plan), or in one pass with `exact: true`. Needs a model
   * exported by exporter 1.5+ (method latents_span).
   *
   * With encodec_48khz: planar 48 kHz stereo in; each of Meta's 1 s segments is normalised by its own scale and
   * encoded (the latents its codes quantize), and the segments' frames are joined as the codes are (`exact` changes
   * nothing). Any exporter version (encode_latent is part of the 48 kHz model from the first).
   */
  async latents(samples: Float32Array, options: LatentsOptions = {}): Promise<Embeddings> {
    if (this.segments) {
      this.checkPlanar(samples, 'samples');
      const blocks: Embeddings[] = [];
      for await (const block of this.latentsStream([samples], options)) blocks.push(block);
      return concatLatents(blocks);
    }
    checkSamples(samples, 'samples');
    this.checkLatentsModel();
    const plan = chunkPlan(options, this.batchSeconds);
    if (options.exact) {
      const [latents] = await this.latentsBatch([samples]);
      return latents;
    }
    const blocks: Embeddings[] = [];
    for await (const block of latentsStreamBlocks([samples], plan, Infinity, this.spanLatents(plan))) blocks.push(block);
    return concatLatents(blocks);
  }

  /**
   * Latents of a stream of 24 kHz mono sample blocks (e.g. `streamAudio(file)`), yielded block by block as they are
   * computed (`firstFrame` says where each starts), holding about one batch of chunks of audio at a time; the
   * blocks, concatenated, equal {@link latents} of the concatenated samples. With encodec_48khz: planar stereo blocks,
   * one latents block per batch of segments (see {@link latents}).
   */
  latentsStream(
    chunks: AsyncIterable<Float32Array> | Iterable<Float32Array>,
    options: LatentsStreamOptions = {},
  ): AsyncGenerator<LatentsBlock, void, undefined> {
    if (chunks === null || typeof chunks !== 'object' || (!(Symbol.asyncIterator in chunks) && !(Symbol.iterator in chunks))) {
      throw typeError('chunks must be an (async) iterable of Float32Array blocks, e.g. streamAudio(file)');
    }
    if (this.segments) return this.segmentLatentsStream(chunks, options);
    this.checkLatentsModel();
    const plan = chunkPlan(options, this.batchSeconds);
    return latentsStreamBlocks(chunks, plan, checkMaxFrames(options.maxFrames), this.spanLatents(plan));
  }

  /**
   * Latents of a segmented model (encodec_48khz): each of Meta's segments normalised by its own scale, as encode does
   * before quantizing, and run through the encoder (the model's encode_latent); the segments' frames joined along
   * time as their codes are (frame f of the latents is frame f of the codes). Segments per native call as for encode.
   */
  private segmentLatentsStream(
    chunks: AsyncIterable<Float32Array> | Iterable<Float32Array>,
    options: LatentsStreamOptions,
  ): AsyncGenerator<LatentsBlock, void, undefined> {
    if (typeof options !== 'object' || options === null) throw typeError('options must be an object such as { batchSeconds: 8 }');
    if (options.maxFrames !== undefined) {
      throw rangeError(`maxFrames does not apply to ${this.info.model}, whose latents are per segment; stop the stream instead`);
    }
    const { batch } = this.segmentOptions({ ...options, bandwidth: undefined });
    this.live('latents');
    const latents = (segments: Float32Array[]): Promise<Embeddings[]> =>
      this.run('latents', async (model) => {
        const start = performance.now();
        const parts = await Promise.all(this.segmentLanes(segments).map(({ items, threads }) => model.latents(items, { threads })));
        debug('latents', () => `${segments.length} segment(s) -> latents in ${elapsedSince(start)}`);
        return parts.flat();
      });
    return latentsSegmentedStream(chunks, this.segments as SegmentGeometry, batch, latents);
  }

  private checkLatentsModel(): void {
    this.live('latents');
    if (this.info.latents_span !== true) {
      throw codedError('ENCODEC_MODEL_FILE', 
        `'${this.modelPath}' was exported by exporter ${this.info.exporter_version}, which has no latents method; ` +
          're-export it with `encodec-native model export` (or `model random`) to use latents',
      );
    }
  }

  /** Latents of several clips in one call (one pass each; equal lengths batched). */
  private async latentsBatch(clips: Float32Array[]): Promise<Embeddings[]> {
    const start = performance.now();
    const out = await this.run('latents', (model) => model.latents(clips));
    debug('latents', () => `${clips.length} clip(s) -> latents in ${elapsedSince(start)}`);
    return out;
  }

  /** How chunked latents run spans (see spanEncoder). */
  private spanLatents(plan: ChunkPlan): SpanRunner<Float32Array, Embeddings> {
    if (!this.spanCalls) return latentsSpanByWindows((clips) => this.latentsBatch(clips));
    return this.spanRunner(
      'latents',
      plan,
      async (model, input: Float32Array, options) => (await model.latents([input], options))[0],
      (input, block) => `${input.length} samples (${(input.length / SAMPLE_RATE).toFixed(2)} s) -> latents ${block.dim} x ${block.nFrames}`,
    );
  }

  /**
   * Encodes many clips of any lengths: each clip's codes are those of `encode(clip, options)` (chunked by
   * default; >= 99.9 % identical, the rest float rounding), computed with the windows of many clips pooled into
   * the same native calls (models of exporter 1.5 on the CPU), so that many short clips run about as fast as
   * one long clip of their total length. `exact: true` encodes each clip whole, in one pass (clips of equal
   * length batched together).
   */
  async encodeBatch(clips: Float32Array[], options: EncodeManyOptions = {}): Promise<Codes[]> {
    if (!Array.isArray(clips) || clips.length === 0) throw typeError('clips must be a non-empty array of Float32Array');
    if (this.segments) {
      const out: Codes[] = [];
      for (let i = 0; i < clips.length; i++) out.push(await this.encodeSegmentedClip(clips[i], options, `clip ${i}`));
      return out;
    }
    clips.forEach((clip, i) => checkSamples(clip, `clip ${i}`));
    checkOptions(options, '{ bandwidth: 6 }');
    if (options.exact) return this.encodeWhole(clips, options.bandwidth ?? DEFAULT_BANDWIDTH);
    // the clips are all in memory already: one round, so that the lanes wait for each other only once, at the end
    const roundSeconds = options.roundSeconds ?? clips.reduce((n, c) => n + c.length, 0) / SAMPLE_RATE;
    const codes: Codes[] = [];
    for await (const c of this.encodeMany(clips, { ...options, roundSeconds })) codes.push(c);
    return codes;
  }

  /**
   * Encodes a stream of clips (an (async) iterable of Float32Array, e.g. read from files one by one), yielding
   * each clip's codes in input order; the same codes and speed as {@link encodeBatch}, holding at most two
   * rounds of `roundSeconds` of audio (see {@link ManyOptions}). A bad clip ends the stream with its error
   * after the codes of the clips before it.
   */
  encodeMany(clips: ItemSource<Float32Array>, options: EncodeManyOptions = {}): AsyncGenerator<Codes, void, undefined> {
    if (!isItemSource(clips)) throw typeError('clips must be an (async) iterable of Float32Array clips');
    checkOptions(options, '{ bandwidth: 6 }');
    const bandwidth = options.bandwidth ?? DEFAULT_BANDWIDTH;
    checkBandwidth(bandwidth);
    const plan = chunkPlan(options, this.batchSeconds);
    const round = this.roundSeconds(options, plan);
    this.live('encodeMany');
    if (options.exact && !this.segments) {
      return inRounds(clips, checkClip, (c) => c.length / SAMPLE_RATE, round, (batch) => this.encodeWhole(batch, bandwidth));
    }
    const encodeOne = (clip: Float32Array): Promise<Codes> => this.encode(clip, { ...options, bandwidth });
    const run = this.pooled
      ? (batch: Float32Array[]) => this.pooledEncode(batch, plan, bandwidth)
      : async (batch: Float32Array[]) => {
        const out: Codes[] = [];
        for (const clip of batch) out.push(await encodeOne(clip));
        return out;
      };
    return inRounds(clips, checkClip, (c) => c.length / SAMPLE_RATE, round, run);
  }

  /** Round size of encodeMany / decodeMany in seconds. */
  private roundSeconds(options: ManyOptions, plan: ChunkPlan): number {
    const value = options.roundSeconds ?? 4 * plan.batchWindows * (plan.chunkFrames + plan.contextFrames) / FRAME_RATE;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw rangeError(`roundSeconds must be a positive number of seconds, got ${String(value)}`);
    }
    return value;
  }

  /** One round of pooled encoding: the spans of all clips in pooled native calls, one per lane at a time. */
  private pooledEncode(clips: Float32Array[], plan: ChunkPlan, bandwidth: number): Promise<Codes[]> {
    const nQ = codebooksForBandwidth(bandwidth);
    const threads = this.lanes();
    return this.run('encode', async (model) => {
      const start = performance.now();
      const codes = await encodePooled(clips, plan, threads.length, (inputs, spans, lane) =>
        model.encode(inputs, nQ, { spans: spans.map((s) => spanGeometry(s, plan)), threads: lane < 0 ? 0 : threads[lane] }));
      debug('encode', () => `${clips.length} clips, ${(clips.reduce((n, c) => n + c.length, 0) / SAMPLE_RATE).toFixed(2)} s at ${bandwidth} kbps, pooled, in ${elapsedSince(start)}`);
      return codes;
    });
  }

  /** Whole-clip encoding in one pass per clip (`exact`), clips of equal length batched. */
  private async encodeWhole(clips: Float32Array[], bandwidth: number): Promise<Codes[]> {
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
   *
   * With encodec_48khz: codes with their scales in, planar 48 kHz stereo out, the segments joined by Meta's
   * linear overlap-add (47520 * (segments - 1) + the last segment's samples per channel; trim to the input length).
   */
  async decode(codes: Codes, options: DecodeOptions = {}): Promise<Float32Array> {
    checkCodes(codes);
    if (this.segments || isSegmented(codes)) return this.decodeSegmentedCodes(codes, options, 'codes');
    const plan = chunkPlan(options, this.batchSeconds);
    if (options.exact) {
      const [samples] = await this.decodeWhole([codes]);
      return samples;
    }
    return decodeChunked(codes, plan, this.spanDecoder(plan));
  }

  /**
   * A streaming decoder: `push(codes)` blocks of consecutive frames (e.g. as {@link encodeStreamBlocks} yields
   * them) and get back the audio of each step of spans once its codes are held; `end()` decodes the rest. The
   * audio, concatenated, is that of `decode(codes, options)` of the concatenated codes (chunked: the same spans
   * decode the same frames), holding only about one step of codes and audio whatever the length.
   * Whole-file models only (encodec_48khz decodes its segments with `decode`).
   */
  streamDecoder(options: Omit<DecodeOptions, 'exact'> = {}): { push(codes: Codes): Promise<Float32Array[]>; end(): Promise<Float32Array[]> } {
    checkOptions(options, '{ batchSeconds: 100 }');
    if ((options as DecodeOptions).exact !== undefined) {
      throw typeError('streamDecoder() is always chunked; drop `exact`, or collect the codes and call decode(codes, { exact: true })');
    }
    if (this.segments) throw rangeError(`${this.info.model} decodes fixed segments: use decode(codes), not streamDecoder()`);
    const plan = chunkPlan(options, this.batchSeconds);
    this.live('streamDecoder');
    const decoder = new StreamDecoder(plan, this.spanDecoder(plan));
    return {
      push: async (codes) => {
        checkCodes(codes);
        if (isSegmented(codes)) throw rangeError('codes carry segment scales (encodec_48khz); decode them with decode(codes)');
        return decoder.push(codes);
      },
      end: () => decoder.end(),
    };
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
    if (!this.spanCalls) return retryOnOom(encodeSpanByWindows((clips) => this.encodeWhole(clips, bandwidth)), ENCODE_PARTS, plan);
    const nQ = codebooksForBandwidth(bandwidth);
    const runner = this.spanRunner(
      'encode',
      plan,
      async (model, input: Float32Array, options) => (await model.encode([input], nQ, this.callOptions(options)))[0],
      (input, block) => `${input.length} samples (${(input.length / SAMPLE_RATE).toFixed(2)} s) at ${bandwidth} kbps -> codes ${block.nQ} x ${block.nFrames}`,
    );
    return retryOnOom(runner, ENCODE_PARTS, plan);
  }

  /** How chunked decoding runs spans (see spanEncoder). */
  private spanDecoder(plan: ChunkPlan): SpanRunner<Codes, Float32Array> {
    if (!this.spanCalls) return retryOnOom(decodeSpanByWindows((blocks) => this.decodeWhole(blocks)), DECODE_PARTS, plan);
    const runner = this.spanRunner(
      'decode',
      plan,
      async (model, codes: Codes, options) => (await model.decode([codes], this.callOptions(options)))[0],
      (codes, samples) => `${codes.nFrames} frames -> ${samples.length} samples (${(samples.length / SAMPLE_RATE).toFixed(2)} s)`,
    );
    return retryOnOom(runner, DECODE_PARTS, plan);
  }

  /** Native span calls (`call`), a run's spans at once, each on its lane's share of the threads. */
  private spanRunner<I, O>(
    what: 'encode' | 'decode' | 'latents',
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

  /** A span call through the pooled method when the model has it (one code path for encode and encodeBatch). */
  private callOptions(options: NativeCallOptions): NativeCallOptions {
    if (!this.pooled || !options.span) return options;
    return { spans: [options.span], threads: options.threads };
  }

  /**
   * Decodes many code blocks: each block's audio is that of `decode(codes, options)` (within float rounding),
   * their windows pooled into the same native calls (see {@link encodeBatch}); `exact: true` decodes each block
   * whole, in one pass.
   */
  async decodeBatch(codes: Codes[], options: DecodeManyOptions = {}): Promise<Float32Array[]> {
    if (!Array.isArray(codes) || codes.length === 0) throw typeError('codes must be a non-empty array of codes objects');
    codes.forEach((c, i) => checkCodes(c, `codes[${i}]`));
    if (this.segments || codes.some(isSegmented)) {
      const out: Float32Array[] = [];
      for (let i = 0; i < codes.length; i++) out.push(await this.decodeSegmentedCodes(codes[i], {}, `codes[${i}]`));
      return out;
    }
    checkOptions(options, '{ exact: false }');
    if (options.exact) return this.decodeWhole(codes);
    const roundSeconds = options.roundSeconds ?? codes.reduce((n, c) => n + c.nFrames, 0) / FRAME_RATE;
    const audio: Float32Array[] = [];
    for await (const a of this.decodeMany(codes, { ...options, roundSeconds })) audio.push(a);
    return audio;
  }

  /**
   * Decodes a stream of code blocks (an (async) iterable of codes), yielding each block's audio in input order;
   * the same audio and speed as {@link decodeBatch}, holding at most two rounds of `roundSeconds` of codes and
   * one round of audio (see {@link ManyOptions}).
   */
  decodeMany(codes: ItemSource<Codes>, options: DecodeManyOptions = {}): AsyncGenerator<Float32Array, void, undefined> {
    if (!isItemSource(codes)) throw typeError('codes must be an (async) iterable of codes objects');
    checkOptions(options, '{ exact: false }');
    const plan = chunkPlan(options, this.batchSeconds);
    const round = this.roundSeconds(options, plan);
    this.live('decodeMany');
    const seconds = (c: Codes): number => c.nFrames / FRAME_RATE;
    if (options.exact && !this.segments) return inRounds(codes, checkBlock, seconds, round, (batch) => this.decodeWhole(batch));
    const run = this.pooled
      ? (batch: Codes[]) => this.pooledDecode(batch, plan)
      : async (batch: Codes[]) => {
        const out: Float32Array[] = [];
        for (const block of batch) out.push(await this.decode(block, options));
        return out;
      };
    return inRounds(codes, checkBlock, seconds, round, run);
  }

  /** One round of pooled decoding (see pooledEncode). */
  private pooledDecode(blocks: Codes[], plan: ChunkPlan): Promise<Float32Array[]> {
    const threads = this.lanes();
    return this.run('decode', async (model) => {
      const start = performance.now();
      const audio = await decodePooled(blocks, plan, threads.length, (inputs, spans, lane) =>
        model.decode(inputs, { spans: spans.map((s) => spanGeometry(s, plan)), threads: lane < 0 ? 0 : threads[lane] }));
      debug('decode', () => `${blocks.length} code blocks, ${blocks.reduce((n, b) => n + b.nFrames, 0)} frames, pooled, in ${elapsedSince(start)}`);
      return audio;
    });
  }

  /** Whole-block decoding in one pass per block (`exact`). */
  private async decodeWhole(codes: Codes[]): Promise<Float32Array[]> {
    const start = performance.now();
    const audio = await this.run('decode', (model) => model.decode(codes));
    debug('decode', () => {
      const frames = codes.reduce((n, c) => n + c.nFrames, 0);
      const samples = audio.reduce((n, a) => n + a.length, 0);
      return `${codes.length} code block(s), ${frames} frames -> ${samples} samples (${(samples / SAMPLE_RATE).toFixed(2)} s) in ${elapsedSince(start)}`;
    });
    return audio;
  }

  /**
   * The quantized latent vectors of codes (what the decoder receives), layout [128, nFrames]. For a segmented model
   * these are the latents of the normalised segments, frame by frame as the codes are (scales not applied).
   */
  async embeddings(codes: Codes): Promise<Embeddings> {
    checkCodes(codes);
    if (codes.nQ > this.info.max_codebooks) {
      throw rangeError(`codes have ${codes.nQ} codebooks; ${this.info.model} has ${this.info.max_codebooks}`);
    }
    const [latents] = await this.run('embeddings', (model) => model.dequantize([codes]));
    return latents;
  }

  /**
   * The model's codebooks, `data` laid out [count, 1024, 128]: embeddings of codes are the sums of the chosen
   * entries (lib/encoding/codebooks.ts computes them from stored codes without the model).
   */
  async codebooks(): Promise<{ data: Float32Array; count: number; bins: number; dim: number }> {
    return this.run('codebooks', (model) => model.codebooks());
  }

  // ---- segmented models (encodec_48khz): lib/codec/segments.ts -----------------------------------------------

  /** Codebooks for a bandwidth of this model, and segments per native call; rejects options that do not apply. */
  private segmentOptions(options: EncodeOptions | EncodeStreamOptions): { nQ: number; batch: number } {
    if (typeof options !== 'object' || options === null) throw typeError('options must be an object such as { bandwidth: 6 }');
    for (const key of ['chunkSeconds', 'contextSeconds'] as const) {
      if (options[key] !== undefined) {
        throw rangeError(
          `${key} does not apply to ${this.info.model}: it codes fixed ${this.info.segment} s segments, as Meta's model does (drop ${key})`,
        );
      }
    }
    const channels = (options as EncodeOptions).channels;
    if (channels !== undefined && channels !== this.info.channels) {
      throw rangeError(`${this.info.model} codes ${this.info.channels} channels; got channels: ${String(channels)}`);
    }
    const batch = options.batchSeconds === undefined ? SEGMENT_BATCH : Math.round(options.batchSeconds / (this.info.segment ?? 1));
    if (!Number.isInteger(batch) || batch < 1) {
      throw rangeError(`batchSeconds must be at least one segment (${this.info.segment} s), got ${String(options.batchSeconds)}`);
    }
    return { nQ: this.codebooksFor(options.bandwidth ?? DEFAULT_BANDWIDTH), batch };
  }

  /** Codebooks of a bandwidth of this model (its metadata's codebooks_per_bandwidth). */
  private codebooksFor(bandwidth: unknown): number {
    if (typeof bandwidth !== 'number') {
      throw typeError(`bandwidth must be a number of kbps (one of ${this.info.bandwidths.join(', ')}), got ${typeof bandwidth}`);
    }
    return modelCodebooks(this.info, bandwidth);
  }

  /** Checks planar audio of the model's channels. */
  private checkPlanar(samples: unknown, what: string): asserts samples is Float32Array {
    const channels = this.info.channels;
    if (!(samples instanceof Float32Array)) {
      const got = samples === null ? 'null' : Array.isArray(samples) ? 'an array' : ArrayBuffer.isView(samples) ? samples.constructor.name : typeof samples;
      throw typeError(
        `${what} must be one Float32Array of planar ${channels}-channel samples (channel 0's, then channel 1's), got ${got}; ` +
          'join per-channel arrays with toPlanar([left, right])',
      );
    }
    if (samples.length === 0) throw rangeError(`${what} is empty; pass at least one sample`);
    if (samples.length % channels !== 0) {
      throw rangeError(
        `${what} has ${samples.length} samples, not a multiple of ${this.info.model}'s ${channels} channels: pass planar audio ` +
          `(channel 0's samples, then channel 1's; for mono audio repeat it in both channels, as Meta's convert_audio does)`,
      );
    }
  }

  private async encodeSegmentedClip(samples: Float32Array, options: EncodeOptions, what: string): Promise<SegmentedCodes> {
    this.checkPlanar(samples, what);
    const { nQ, batch } = this.segmentOptions(options);
    const start = performance.now();
    const codes = await encodeSegmented(samples, this.segments as SegmentGeometry, batch, this.segmentEncoder(nQ));
    debug('encode', () => {
      const seconds = samples.length / this.info.channels / this.info.sample_rate;
      return `${seconds.toFixed(2)} s of ${this.info.channels}-channel audio in ${codes.scales.length} segment(s) -> codes ${codes.nQ} x ${codes.nFrames} in ${elapsedSince(start)}`;
    });
    return codes;
  }

  /** Native encoding of a batch of segments, split between the lanes (calls at once on a share of the threads). */
  private segmentEncoder(nQ: number): SegmentEncoder {
    return (segments) =>
      this.run('encode', async (model) => {
        const parts = await Promise.all(
          this.segmentLanes(segments).map(({ items, threads }) => model.encode(items, nQ, { threads })),
        );
        return parts.flat().map((c): SegmentCodes => ({ data: c.data, nQ: c.nQ, nFrames: c.nFrames, scale: c.scale as number }));
      });
  }

  /**
   * Splits a batch between lanes: on the CPU with 2+ threads, two calls at once on one share of the threads each
   * (the LSTM's small per-frame steps keep one core busy only); else one call with all threads.
   */
  private segmentLanes<T>(items: T[]): Array<{ items: T[]; threads: number }> {
    const threads = this.threads;
    const lanes = this.device === 'cpu' && threads >= 2 && items.length >= 2 ? 2 : 1;
    if (lanes === 1) return [{ items, threads: 0 }];
    const half = Math.ceil(items.length / 2);
    return [
      { items: items.slice(0, half), threads: Math.ceil(threads / 2) },
      { items: items.slice(half), threads: Math.floor(threads / 2) },
    ];
  }

  private async decodeSegmentedCodes(codes: Codes, options: DecodeOptions, what: string): Promise<Float32Array> {
    const segments = this.segments;
    if (!segments) {
      throw rangeError(
        `${what} carry segment scales: they were made by a segmented model (encodec_48khz); decode them with that model, not ${this.info.model}`,
      );
    }
    if (!isSegmented(codes)) {
      throw typeError(
        `${what} have no scales: codes of ${this.info.model} carry one scale per segment (codes.scales, codes.segmentFrames) as encode() returns them`,
      );
    }
    if (codes.segmentFrames !== framesPerSegment(segments)) {
      throw rangeError(`${what}.segmentFrames is ${codes.segmentFrames}; ${this.info.model} segments have ${framesPerSegment(segments)} frames`);
    }
    if (codes.nQ > this.info.max_codebooks) {
      throw rangeError(`${what} have ${codes.nQ} codebooks; ${this.info.model} has ${this.info.max_codebooks}`);
    }
    for (const key of ['chunkSeconds', 'contextSeconds'] as const) {
      if (options[key] !== undefined) throw rangeError(`${key} does not apply to ${this.info.model}: it decodes fixed segments`);
    }
    const batch = options.batchSeconds === undefined ? SEGMENT_BATCH : Math.max(1, Math.round(options.batchSeconds / (this.info.segment ?? 1)));
    const start = performance.now();
    const audio = await decodeSegmented(codes, segments, batch, (blocks) =>
      this.run('decode', async (model) => {
        const parts = await Promise.all(this.segmentLanes(blocks).map(({ items, threads }) => model.decode(items, { threads })));
        return parts.flat();
      }),
    );
    debug('decode', () => `${codes.scales.length} segment(s), ${codes.nFrames} frames -> ${audio.length / this.info.channels} samples per channel in ${elapsedSince(start)}`);
    return audio;
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
