/**
 * How segmented families (encodec_48khz) code: Meta's segments of planar audio, each normalised by its own scale
 * (lib/codec/segments.ts), a batch of segments per native call split between two lanes. Chunking options do not
 * apply (the segments are the model's own); codes carry one scale per segment.
 */
import { callPolicy } from './call-policy';
import { concatLatents } from './code-frames';
import { Coder, CodesDecoder, ModelAccess, SampleBlocks, oneByOne } from './coder';
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
import { Codes, CodesBlock, Embeddings, LatentsBlock, SegmentedCodes } from './codes';
import {
  SegmentCodes,
  SegmentEncoder,
  SegmentGeometry,
  concatSegmentedCodes,
  decodeSegmented,
  encodeSegmented,
  encodeSegmentedStream,
  framesPerSegment,
  isSegmented,
  latentsSegmentedStream,
  segmentGeometryOf,
} from './segments';
import { debug, elapsedSince } from '../common/log';
import { rangeError, typeError } from '../common/errors';
import { ModelInfo, modelCodebooks } from '../model/model-file';

/** Segments per native call (split between the lanes). */
const SEGMENT_BATCH = 8;

export class SegmentCoder implements Coder {
  private readonly info: ModelInfo;
  private readonly segments: SegmentGeometry;
  /** Only the chunk plans of encodeMany / decodeMany read it (their round size); segments ignore it. */
  readonly batchSeconds: number;

  constructor(private readonly access: ModelAccess) {
    this.info = access.info;
    this.segments = segmentGeometryOf(access.info) as SegmentGeometry;
    this.batchSeconds = callPolicy(access.info, access.device()).batchSeconds;
  }

  encode(samples: Float32Array, options: EncodeOptions): Promise<SegmentedCodes> {
    return this.encodeClip(samples, options, 'samples');
  }

  async *encodeStreamBlocks(chunks: SampleBlocks, options: EncodeStreamOptions): AsyncGenerator<CodesBlock, void, undefined> {
    if (options.maxFrames !== undefined) {
      throw rangeError(`maxFrames does not apply to ${this.info.model}, whose codes are per segment; stop the stream instead`);
    }
    const { nQ, batch } = this.segmentOptions(options);
    this.access.live('encodeStream');
    yield* encodeSegmentedStream(chunks, this.segments, batch, this.segmentEncoder(nQ));
  }

  concatStream(blocks: Codes[]): Codes {
    return concatSegmentedCodes(blocks);
  }

  async latents(samples: Float32Array, options: LatentsOptions): Promise<Embeddings> {
    this.checkPlanar(samples, 'samples');
    const blocks: Embeddings[] = [];
    for await (const block of this.latentsStream([samples], options)) blocks.push(block);
    return concatLatents(blocks);
  }

  /**
   * Each of Meta's segments normalised by its own scale, as encode does before quantizing, and run through the
   * encoder (the model's encode_latent); the segments' frames joined along time as their codes are (frame f of the
   * latents is frame f of the codes). Segments per native call as for encode.
   */
  latentsStream(chunks: SampleBlocks, options: LatentsStreamOptions): AsyncGenerator<LatentsBlock, void, undefined> {
    if (typeof options !== 'object' || options === null) throw typeError('options must be an object such as { batchSeconds: 8 }');
    if (options.maxFrames !== undefined) {
      throw rangeError(`maxFrames does not apply to ${this.info.model}, whose latents are per segment; stop the stream instead`);
    }
    const { batch } = this.segmentOptions({ ...options, bandwidth: undefined });
    this.access.live('latents');
    const latents = (segments: Float32Array[]): Promise<Embeddings[]> =>
      this.access.run('latents', async (model) => {
        const start = performance.now();
        const parts = await Promise.all(this.segmentLanes(segments).map(({ items, threads }) => model.latents(items, { threads })));
        debug('latents', () => `${segments.length} segment(s) -> latents in ${elapsedSince(start)}`);
        return parts.flat();
      });
    return latentsSegmentedStream(chunks, this.segments, batch, latents);
  }

  async encodeBatch(clips: Float32Array[], options: EncodeManyOptions): Promise<Codes[]> {
    const out: Codes[] = [];
    for (let i = 0; i < clips.length; i++) out.push(await this.encodeClip(clips[i], options, `clip ${i}`));
    return out;
  }

  encodeRound(options: EncodeManyOptions, _plan: unknown, bandwidth: number): (clips: Float32Array[]) => Promise<Codes[]> {
    return oneByOne((clip: Float32Array) => this.encode(clip, { ...options, bandwidth }));
  }

  decode(codes: Codes, options: DecodeOptions): Promise<Float32Array> {
    return this.decodeCodes(codes, options, 'codes');
  }

  streamDecoder(): CodesDecoder {
    throw rangeError(`${this.info.model} decodes fixed segments: use decode(codes), not streamDecoder()`);
  }

  async decodeBatch(codes: Codes[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < codes.length; i++) out.push(await this.decodeCodes(codes[i], {}, `codes[${i}]`));
    return out;
  }

  decodeRound(options: DecodeManyOptions): (codes: Codes[]) => Promise<Float32Array[]> {
    return oneByOne((block: Codes) => this.decode(block, options));
  }

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

  private async encodeClip(samples: Float32Array, options: EncodeOptions, what: string): Promise<SegmentedCodes> {
    this.checkPlanar(samples, what);
    const { nQ, batch } = this.segmentOptions(options);
    const start = performance.now();
    const codes = await encodeSegmented(samples, this.segments, batch, this.segmentEncoder(nQ));
    debug('encode', () => {
      const seconds = samples.length / this.info.channels / this.info.sample_rate;
      return `${seconds.toFixed(2)} s of ${this.info.channels}-channel audio in ${codes.scales.length} segment(s) -> codes ${codes.nQ} x ${codes.nFrames} in ${elapsedSince(start)}`;
    });
    return codes;
  }

  /** Native encoding of a batch of segments, split between the lanes (calls at once on a share of the threads). */
  private segmentEncoder(nQ: number): SegmentEncoder {
    return (segments) =>
      this.access.run('encode', async (model) => {
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
    const threads = this.access.threads();
    const lanes = this.access.device() === 'cpu' && threads >= 2 && items.length >= 2 ? 2 : 1;
    if (lanes === 1) return [{ items, threads: 0 }];
    const half = Math.ceil(items.length / 2);
    return [
      { items: items.slice(0, half), threads: Math.ceil(threads / 2) },
      { items: items.slice(half), threads: Math.floor(threads / 2) },
    ];
  }

  private async decodeCodes(codes: Codes, options: DecodeOptions, what: string): Promise<Float32Array> {
    const segments = this.segments;
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
      this.access.run('decode', async (model) => {
        const parts = await Promise.all(this.segmentLanes(blocks).map(({ items, threads }) => model.decode(items, { threads })));
        return parts.flat();
      }),
    );
    debug('decode', () => `${codes.scales.length} segment(s), ${codes.nFrames} frames -> ${audio.length / this.info.channels} samples per channel in ${elapsedSince(start)}`);
    return audio;
  }
}
