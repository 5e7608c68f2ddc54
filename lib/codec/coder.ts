/**
 * The seam between the Encodec facade (lib/codec/codec.ts) and how a model family codes: a {@link Coder} per kind
 * of coding, chosen once from the model's family (lib/model/family.ts): whole-file models are coded in chunks with
 * left context (lib/codec/whole-file-coder.ts), segmented ones in Meta's normalised segments
 * (lib/codec/segment-coder.ts). The option types of the public methods are lib/codec/coding-options.ts.
 */
import type { ChunkPlan } from './chunk-plan';
import type {
  DecodeManyOptions,
  DecodeOptions,
  EncodeManyOptions,
  EncodeOptions,
  EncodeStreamOptions,
  LatentsOptions,
  LatentsStreamOptions,
  ManyOptions,
} from './coding-options';
import { FRAME_RATE } from './bandwidth';
import { Codes, CodesBlock, Embeddings, LatentsBlock, checkCodes } from './codes';
import type { NativeModel } from '../addon/native';
import type { ModelInfo } from '../model/model-file';
import { rangeError, typeError } from '../common/errors';

/** A streaming decoder (see {@link Encodec.streamDecoder}). */
export interface CodesDecoder {
  push(codes: Codes): Promise<Float32Array[]>;
  end(): Promise<Float32Array[]>;
}

/** Sample blocks of a stream, as encodeStream and latentsStream take them. */
export type SampleBlocks = AsyncIterable<Float32Array> | Iterable<Float32Array>;

/** What a coder needs of the Encodec that owns it: the model's metadata and its one queue of native calls. */
export interface ModelAccess {
  readonly info: ModelInfo;
  readonly modelPath: string;
  /** The device the model runs on ('cpu', 'cuda:0', ...); throws ENCODEC_DISPOSED once disposed. */
  device(): string;
  /** Intra-op threads of the model; throws ENCODEC_DISPOSED once disposed. */
  threads(): number;
  /** The native model; throws ENCODEC_DISPOSED naming `what` once disposed. */
  live(what: string): NativeModel;
  /** Runs `work` after the calls queued before it (one computation per model at a time, in call order). */
  run<T>(what: string, work: (model: NativeModel) => Promise<T>): Promise<T>;
}

/**
 * How a family's model codes: the public methods of Encodec past the argument checks every family shares (the
 * facade makes those). Each method's arguments, errors and outputs are those documented on Encodec.
 */
export interface Coder {
  /** Default `batchSeconds` of this model's chunk plans (see lib/codec/call-policy.ts). */
  readonly batchSeconds: number;
  encode(samples: Float32Array, options: EncodeOptions): Promise<Codes>;
  encodeStreamBlocks(chunks: SampleBlocks, options: EncodeStreamOptions): AsyncGenerator<CodesBlock, void, undefined>;
  /** Joins the blocks of encodeStreamBlocks into the codes encode() gives. */
  concatStream(blocks: Codes[]): Codes;
  latents(samples: Float32Array, options: LatentsOptions): Promise<Embeddings>;
  latentsStream(chunks: SampleBlocks, options: LatentsStreamOptions): AsyncGenerator<LatentsBlock, void, undefined>;
  /** encodeBatch of a non-empty array; `many` is the facade's encodeMany, for coders that pool rounds. */
  encodeBatch(clips: Float32Array[], options: EncodeManyOptions, many: ManyRunner<Float32Array, Codes, EncodeManyOptions>): Promise<Codes[]>;
  /** How a round of encodeMany runs (`plan` and `bandwidth` checked by the facade). */
  encodeRound(options: EncodeManyOptions, plan: ChunkPlan, bandwidth: number): (clips: Float32Array[]) => Promise<Codes[]>;
  decode(codes: Codes, options: DecodeOptions): Promise<Float32Array>;
  streamDecoder(options: Omit<DecodeOptions, 'exact'>): CodesDecoder;
  /** decodeBatch of a non-empty array of checked codes; `many` is the facade's decodeMany. */
  decodeBatch(codes: Codes[], options: DecodeManyOptions, many: ManyRunner<Codes, Float32Array, DecodeManyOptions>): Promise<Float32Array[]>;
  /** How a round of decodeMany runs. */
  decodeRound(options: DecodeManyOptions, plan: ChunkPlan): (codes: Codes[]) => Promise<Float32Array[]>;
}

/** Encodec.encodeMany / decodeMany, as encodeBatch / decodeBatch run their one round through them. */
export type ManyRunner<I, O, Opts> = (items: I[], options: Opts) => AsyncGenerator<O, void, undefined>;

export function checkSamples(samples: unknown, what: string): asserts samples is Float32Array {
  if (!(samples instanceof Float32Array)) {
    const got = samples === null ? 'null' : ArrayBuffer.isView(samples) ? samples.constructor.name : typeof samples;
    throw typeError(`${what} must be a Float32Array of 24 kHz mono samples, got ${got}`);
  }
  if (samples.length === 0) throw rangeError(`${what} is empty; pass at least one sample`);
}

/** checkSamples plus finiteness, for clips pooled with others (the native check cannot name the clip). */
export function checkClip(value: unknown, index: number): Float32Array {
  checkSamples(value, `clip ${index}`);
  for (let i = 0; i < value.length; i++) {
    if (!Number.isFinite(value[i])) {
      throw rangeError(`clip ${index} holds ${value[i]} at sample ${i}; clean the audio (NaN/Infinity) before encoding`);
    }
  }
  return value;
}

export function checkBlock(value: unknown, index: number): Codes {
  checkCodes(value, `codes[${index}]`);
  return value;
}

export function checkOptions(options: unknown, example: string): void {
  if (typeof options !== 'object' || options === null) throw typeError(`options must be an object such as ${example}`);
}

/** Throws unless `chunks` is an (async) iterable (encodeStream, latentsStream). */
export function checkSampleBlocks(chunks: unknown): void {
  if (chunks === null || typeof chunks !== 'object' || (!(Symbol.asyncIterator in chunks) && !(Symbol.iterator in chunks))) {
    throw typeError('chunks must be an (async) iterable of Float32Array blocks, e.g. streamAudio(file)');
  }
}

/** Round size of encodeMany / decodeMany in seconds. */
export function roundLength(options: ManyOptions, plan: ChunkPlan): number {
  const value = options.roundSeconds ?? 4 * plan.batchWindows * (plan.chunkFrames + plan.contextFrames) / FRAME_RATE;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw rangeError(`roundSeconds must be a positive number of seconds, got ${String(value)}`);
  }
  return value;
}

/** Runs `one` on each item of a batch, one after another (a round of models that do not pool). */
export function oneByOne<I, O>(one: (item: I) => Promise<O>): (batch: I[]) => Promise<O[]> {
  return async (batch) => {
    const out: O[] = [];
    for (const item of batch) out.push(await one(item));
    return out;
  };
}
