/**
 * The codec: a loaded EnCodec model (encodec_24khz, mono; or encodec_48khz, stereo) that encodes samples to codes
 * and decodes codes to samples. Audio of several channels is planar: one Float32Array holding channel 0's samples,
 * then channel 1's (see docs/models-48khz.md).
 *
 * All work runs off the event loop, one call at a time per model (calls queue in order), on the device
 * and thread count chosen at load time.
 */
import * as fs from 'node:fs';

import { FRAME_RATE, SAMPLE_RATE, checkBandwidth } from './bandwidth';
import { chunkPlan } from './chunk-plan';
import {
  Coder,
  CodesDecoder,
  ModelAccess,
  SampleBlocks,
  checkBlock,
  checkClip,
  checkOptions,
  checkSampleBlocks,
  roundLength,
} from './coder';
import {
  DEFAULT_BANDWIDTH,
  DecodeManyOptions,
  DecodeOptions,
  EncodeManyOptions,
  EncodeOptions,
  EncodeStreamOptions,
  LatentsOptions,
  LatentsStreamOptions,
} from './coding-options';
import { Codes, CodesBlock, Embeddings, LatentsBlock, checkCodes } from './codes';
import { parseDevice } from './device';
import { NativeModel, nativeBinding } from '../addon/native';
import { ItemSource, inRounds, isItemSource } from './rounds';
import { warnIfSlowBlas } from '../runtime/runtime';
import { SegmentCoder } from './segment-coder';
import { threadsPerJob } from './threads';
import { WholeFileCoder } from './whole-file-coder';
import { debug, elapsedSince, formatBytes } from '../common/log';
import { codedError, rangeError, typeError } from '../common/errors';
import { isSegmentedFamily, familyOf } from '../model/family';
import { ModelInfo, parseModelInfo } from '../model/model-file';

export type { Device } from './device';
import type { Device } from './device';

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
  /** How this model's family codes (the one choice by family: lib/codec/coder.ts). */
  private readonly coder: Coder;

  private constructor(model: NativeModel, modelPath: string) {
    this.model = model;
    this.modelPath = modelPath;
    this.info = parseModelInfo(model.metadata, modelPath);
    const access: ModelAccess = {
      info: this.info,
      modelPath,
      device: () => this.device,
      threads: () => this.threads,
      live: (what) => this.live(what),
      run: (what, work) => this.run(what, work),
    };
    this.coder = isSegmentedFamily(familyOf(this.info)) ? new SegmentCoder(access) : new WholeFileCoder(access);
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
   * pieces, LSTM windows) and libtorch's other lazy set-up are done before the first real call (once was not
   * enough: docs/performance.md#why-the-defaults).
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
    return this.coder.encode(samples, options);
  }

  /**
   * Encodes a stream of 24 kHz mono sample blocks (e.g. `streamAudio(file)`) holding only about one batch of
   * chunks of audio at a time; resolves with all the codes, identical to `encode()` of the concatenated
   * samples with the same options. For codes block by block, use {@link encodeStreamBlocks}.
   */
  async encodeStream(chunks: SampleBlocks, options: EncodeStreamOptions = {}): Promise<Codes> {
    const blocks: Codes[] = [];
    for await (const block of this.encodeStreamBlocks(chunks, options)) blocks.push(block);
    return this.coder.concatStream(blocks);
  }

  /**
   * Like {@link encodeStream} but yields the codes as they are computed, in order: blocks of consecutive
   * frames (`firstFrame` says where each starts), one per batch of chunks. Bad arguments reject the first
   * `next()`, as every other method rejects its promise.
   */
  async *encodeStreamBlocks(chunks: SampleBlocks, options: EncodeStreamOptions = {}): AsyncGenerator<CodesBlock, void, undefined> {
    checkSampleBlocks(chunks);
    if ((options as EncodeOptions).exact !== undefined) {
      throw typeError('encodeStream() is always chunked; drop `exact`, or load the samples and call encode(samples, { exact: true })');
    }
    yield* this.coder.encodeStreamBlocks(chunks, options);
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
    return this.coder.latents(samples, options);
  }

  /**
   * Latents of a stream of 24 kHz mono sample blocks (e.g. `streamAudio(file)`), yielded block by block as they are
   * computed (`firstFrame` says where each starts), holding about one batch of chunks of audio at a time; the
   * blocks, concatenated, equal {@link latents} of the concatenated samples. With encodec_48khz: planar stereo blocks,
   * one latents block per batch of segments (see {@link latents}).
   */
  latentsStream(chunks: SampleBlocks, options: LatentsStreamOptions = {}): AsyncGenerator<LatentsBlock, void, undefined> {
    checkSampleBlocks(chunks);
    return this.coder.latentsStream(chunks, options);
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
    return this.coder.encodeBatch(clips, options, (c, o) => this.encodeMany(c, o));
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
    const plan = chunkPlan(options, this.coder.batchSeconds);
    const round = roundLength(options, plan);
    this.live('encodeMany');
    return inRounds(clips, checkClip, (c) => c.length / SAMPLE_RATE, round, this.coder.encodeRound(options, plan, bandwidth));
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
    return this.coder.decode(codes, options);
  }

  /**
   * A streaming decoder: `push(codes)` blocks of consecutive frames (e.g. as {@link encodeStreamBlocks} yields
   * them) and get back the audio of each step of spans once its codes are held; `end()` decodes the rest. The
   * audio, concatenated, is that of `decode(codes, options)` of the concatenated codes (chunked: the same spans
   * decode the same frames), holding only about one step of codes and audio whatever the length.
   * Whole-file models only (encodec_48khz decodes its segments with `decode`).
   */
  streamDecoder(options: Omit<DecodeOptions, 'exact'> = {}): CodesDecoder {
    checkOptions(options, '{ batchSeconds: 100 }');
    if ((options as DecodeOptions).exact !== undefined) {
      throw typeError('streamDecoder() is always chunked; drop `exact`, or collect the codes and call decode(codes, { exact: true })');
    }
    return this.coder.streamDecoder(options);
  }

  /**
   * Decodes many code blocks: each block's audio is that of `decode(codes, options)` (within float rounding),
   * their windows pooled into the same native calls (see {@link encodeBatch}); `exact: true` decodes each block
   * whole, in one pass.
   */
  async decodeBatch(codes: Codes[], options: DecodeManyOptions = {}): Promise<Float32Array[]> {
    if (!Array.isArray(codes) || codes.length === 0) throw typeError('codes must be a non-empty array of codes objects');
    codes.forEach((c, i) => checkCodes(c, `codes[${i}]`));
    return this.coder.decodeBatch(codes, options, (c, o) => this.decodeMany(c, o));
  }

  /**
   * Decodes a stream of code blocks (an (async) iterable of codes), yielding each block's audio in input order;
   * the same audio and speed as {@link decodeBatch}, holding at most two rounds of `roundSeconds` of codes and
   * one round of audio (see {@link ManyOptions}).
   */
  decodeMany(codes: ItemSource<Codes>, options: DecodeManyOptions = {}): AsyncGenerator<Float32Array, void, undefined> {
    if (!isItemSource(codes)) throw typeError('codes must be an (async) iterable of codes objects');
    checkOptions(options, '{ exact: false }');
    const plan = chunkPlan(options, this.coder.batchSeconds);
    const round = roundLength(options, plan);
    this.live('decodeMany');
    return inRounds(codes, checkBlock, (c: Codes) => c.nFrames / FRAME_RATE, round, this.coder.decodeRound(options, plan));
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
