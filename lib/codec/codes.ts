/**
 * Codes and embeddings, the data the codec produces, and their validation. A leaf module: file formats, metrics
 * and chunking use these types without importing the codec itself.
 */
import { CODEBOOK_SIZE, MAX_CODEBOOKS } from './bandwidth';
import { typeError, rangeError } from '../common/errors';

/**
 * Codes of one clip: `data[q * nFrames + t]` is the code of codebook `q` at frame `t`
 * (layout [nQ, nFrames], row-major), each in 0..1023. Frame `t` covers samples [320 t, 320 (t + 1)).
 */
export interface Codes {
  data: Int16Array | Int32Array;
  nQ: number;
  nFrames: number;
}

/** Quantized latent vectors (the sum of the chosen codebook entries): layout [dim = 128, nFrames]. */
export interface Embeddings {
  data: Float32Array;
  dim: number;
  nFrames: number;
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
