/**
 * The default family's (encodec_24khz) rates, bandwidths and codebook counts, from its description
 * (lib/model/family.ts): the whole-file coding path and the features pipeline work in these units.
 *
 * Each codebook has 1024 entries (10 bits) and the model emits 75 frames per second, so one codebook
 * costs 750 bit/s and a bandwidth of `b` kbps uses `b * 1000 / 750` codebooks.
 */
import { DEFAULT_FAMILY } from '../model/family';
import { typeError, rangeError } from '../common/errors';

/** Audio samples per second the model works at. */
export const SAMPLE_RATE = DEFAULT_FAMILY.sampleRate;
/** Samples per code frame (the encoder's total stride, 8 * 5 * 4 * 2). */
export const HOP_LENGTH = DEFAULT_FAMILY.hopLength;
/** Code frames per second of audio. */
export const FRAME_RATE = SAMPLE_RATE / HOP_LENGTH;
/** Entries per codebook: codes are integers in [0, CODEBOOK_SIZE). */
export const CODEBOOK_SIZE = 1024;
/** Codebooks of the full model (24 kbps). */
export const MAX_CODEBOOKS = DEFAULT_FAMILY.maxCodebooks;
/** Dimension of the latent vectors the quantizer works on. */
export const LATENT_DIM = 128;

/** Supported bandwidths in kbps. */
export const BANDWIDTHS: readonly number[] = Object.freeze([...DEFAULT_FAMILY.bandwidths]);

/** Number of codebooks for a bandwidth: 1.5 -> 2, 3 -> 4, 6 -> 8, 12 -> 16, 24 -> 32. */
export function codebooksForBandwidth(bandwidth: number): number {
  checkBandwidth(bandwidth);
  return Math.round((bandwidth * 1000) / 750);
}

/** Bandwidth in kbps that a number of codebooks corresponds to (2 -> 1.5, ..., 32 -> 24). */
export function bandwidthForCodebooks(nQ: number): number {
  return (nQ * 750) / 1000;
}

/** Throws a TypeError/RangeError naming the problem unless `bandwidth` is supported. */
export function checkBandwidth(bandwidth: unknown): asserts bandwidth is number {
  if (typeof bandwidth !== 'number') {
    throw typeError(`bandwidth must be a number of kbps (one of ${BANDWIDTHS.join(', ')}), got ${typeof bandwidth}`);
  }
  if (!BANDWIDTHS.includes(bandwidth)) {
    throw rangeError(`unsupported bandwidth ${bandwidth} kbps; use one of ${BANDWIDTHS.join(', ')}`);
  }
}

/** Parses a bandwidth given as text (CLI), e.g. "3", "1.5", "6kbps". */
export function parseBandwidth(text: string): number {
  const cleaned = String(text).trim().replace(/\s*kbps$/i, '');
  const value = cleaned === '' ? NaN : Number(cleaned);
  if (!Number.isFinite(value)) {
    throw rangeError(`bandwidth '${text}' is not a number; use one of ${BANDWIDTHS.join(', ')} (kbps)`);
  }
  checkBandwidth(value);
  return value;
}

/** Frames the encoder produces for `samples` samples (whole-file encoding): ceil(samples / 320). */
export function framesForSamples(samples: number): number {
  return Math.ceil(samples / HOP_LENGTH);
}
