/**
 * Codes and embeddings, the data the codec produces, and their validation. A leaf module: file formats, metrics
 * and chunking use these types without importing the codec itself.
 */
import { CODEBOOK_SIZE, MAX_CODEBOOKS } from './bandwidth';
import { rangeError, typeError } from '../common/errors';

/**
 * Codes of one clip: `data[q * nFrames + t]` is the code of codebook `q` at frame `t`
 * (layout [nQ, nFrames], row-major), each in 0..1023. Whole-file models (encodec_24khz): frame `t` covers samples
 * [320 t, 320 (t + 1)). Segmented models (encodec_48khz) add `scales` and `segmentFrames` (see SegmentedCodes).
 */
export interface Codes {
  data: Int16Array | Int32Array;
  nQ: number;
  nFrames: number;
  /**
   * Segmented models only: each segment's scale (Meta's normalisation: the RMS of the segment's mono mix plus
   * 1e-8; the encoder saw the segment divided by it, the decoder's output is multiplied by it).
   */
  scales?: Float32Array;
  /**
   * Segmented models only: frames of a full segment (150 for encodec_48khz). Segment k's codes are frames
   * [k * segmentFrames, (k + 1) * segmentFrames), but for the last two segments: the last may have fewer frames,
   * and the one before it 149 when the last holds at most 160 samples (lib/codec/segments.ts,
   * segmentFrameCounts). Segment k starts at sample k * segment_stride of the audio (the model's metadata).
   */
  segmentFrames?: number;
}

/** Codes of a segmented model (encodec_48khz): one scale per segment. */
export interface SegmentedCodes extends Codes {
  scales: Float32Array;
  segmentFrames: number;
}

/** Quantized latent vectors (the sum of the chosen codebook entries): layout [dim = 128, nFrames]. */
export interface Embeddings {
  data: Float32Array;
  dim: number;
  nFrames: number;
}

/** A block of codes from a stream (Encodec.encodeStream): frames [firstFrame, firstFrame + nFrames) of the stream. */
export interface CodesBlock extends Codes {
  firstFrame: number;
}

/** A block of latents from a stream: frames [firstFrame, firstFrame + nFrames), layout [dim, nFrames]. */
export interface LatentsBlock extends Embeddings {
  firstFrame: number;
}

/** Checks a codes object's types and shape (values are range-checked natively, off the event loop). */
export function checkCodes(codes: unknown, what = 'codes'): asserts codes is Codes {
  if (typeof codes !== 'object' || codes === null || ArrayBuffer.isView(codes)) {
    throw typeError(`${what} must be an object { data: Int16Array | Int32Array, nQ, nFrames } as returned by encode()`);
  }
  const { data, nQ, nFrames } = codes as Codes;
  if (!(data instanceof Int16Array) && !(data instanceof Int32Array)) {
    const got = ArrayBuffer.isView(data) ? (data as ArrayBufferView).constructor.name : typeof data;
    throw typeError(`${what}.data must be an Int16Array or Int32Array, got ${got}`);
  }
  if (!Number.isInteger(nQ) || nQ < 1 || nQ > MAX_CODEBOOKS) {
    throw rangeError(`${what}.nQ must be an integer in [1, ${MAX_CODEBOOKS}], got ${String(nQ)}`);
  }
  if (!Number.isInteger(nFrames) || nFrames < 1) {
    throw rangeError(`${what}.nFrames must be a positive integer, got ${String(nFrames)}`);
  }
  if (data.length !== nQ * nFrames) {
    throw rangeError(
      `${what}.data has ${data.length} values but nQ x nFrames = ${nQ} x ${nFrames} = ${nQ * nFrames}; the layout is [nQ, nFrames]`,
    );
  }
  const { scales, segmentFrames } = codes as Codes;
  if (scales === undefined && segmentFrames === undefined) return;
  if (!(scales instanceof Float32Array)) {
    throw typeError(`${what}.scales must be a Float32Array (one scale per segment), got ${scales === undefined ? 'undefined' : typeof scales}`);
  }
  if (!Number.isInteger(segmentFrames) || (segmentFrames as number) < 1) {
    throw rangeError(`${what}.segmentFrames must be a positive integer (frames per segment), got ${String(segmentFrames)}`);
  }
  // n segments hold (n - 1) * segmentFrames (a short last pair) to n * segmentFrames frames
  const per = segmentFrames as number;
  const n = scales.length;
  if (n < 1 || nFrames > n * per || nFrames < Math.max(1, (n - 1) * per)) {
    throw rangeError(`${what}.scales has ${n} values but ${nFrames} frames in segments of ${per} frames do not make ${n} segments`);
  }
  for (let i = 0; i < scales.length; i++) {
    if (!Number.isFinite(scales[i])) throw rangeError(`${what}.scales[${i}] is ${scales[i]}; scales must be finite`);
  }
}

/** Codes range: each value must lie in [0, CODEBOOK_SIZE). Exposed for file readers that validate early. */
export function checkCodeRange(data: ArrayLike<number>, what = 'codes'): void {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!(v >= 0 && v < CODEBOOK_SIZE) || !Number.isInteger(v)) {
      throw rangeError(`${what} hold ${v} at index ${i}, outside [0, ${CODEBOOK_SIZE - 1}]; pass codes produced by encode()`);
    }
  }
}
