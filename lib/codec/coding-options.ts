/**
 * The options of Encodec's coding methods (encode, decode, latents and their batch, many and stream forms) and their
 * defaults, the public types apart from what reads them: the chunk plan (lib/codec/chunk-plan.ts) and the coders
 * (lib/codec/coder.ts).
 */

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

/** Options of streaming encoding. */
export interface StreamOptions {
  /** Stop after this many frames (reads only `maxFrames * 320` samples; the codes equal the first frames of the whole). */
  maxFrames?: number;
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

/** Options of {@link Encodec.encode}: bandwidth and channels, and chunking (encodec_24khz). */
export interface EncodeOptions extends ChunkOptions {
  /**
   * Bandwidth in kbps, one of the model's `info.bandwidths`: encodec_24khz 1.5, 3, 6 (default), 12 or 24 (2, 4, 8,
   * 16 or 32 codebooks); encodec_48khz 3, 6 (default), 12 or 24 (2, 4, 8 or 16 codebooks).
   */
  bandwidth?: number;
  /** Channels of the (planar) samples; when given it must be the model's (`info.channels`). */
  channels?: number;
}

/** Options of {@link Encodec.encodeBatch} and {@link Encodec.encodeMany}. */
export interface EncodeManyOptions extends EncodeOptions, ManyOptions {}

/** Options of {@link Encodec.decodeBatch} and {@link Encodec.decodeMany}. */
export interface DecodeManyOptions extends DecodeOptions, ManyOptions {}

/** Options of {@link Encodec.decode}: chunked with left context (default) or whole-file (`exact: true`). */
export type DecodeOptions = ChunkOptions;

/** Options of {@link Encodec.latents}: chunking as for encode (no bandwidth: nothing is quantized). */
export type LatentsOptions = ChunkOptions;

/** Options of {@link Encodec.latentsStream}: chunking (not `exact`) and `maxFrames`. */
export interface LatentsStreamOptions extends Omit<ChunkOptions, 'exact'>, StreamOptions {}

/** Options of {@link Encodec.encodeStream}: bandwidth, chunking (not `exact`) and `maxFrames`. */
export interface EncodeStreamOptions extends Omit<EncodeOptions, 'exact'>, StreamOptions {}

/** Bandwidth (kbps) when `bandwidth` is not given: 8 codebooks for encodec_24khz, 4 for encodec_48khz. */
export const DEFAULT_BANDWIDTH = 6;
