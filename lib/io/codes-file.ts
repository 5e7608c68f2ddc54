/**
 * Codes on disk: NumPy `.npy` arrays of shape [n_q, n_frames] with an integer dtype (int16 when written here).
 * Codes of a segmented model (encodec_48khz) also need their per-segment scales: those go beside the codes in
 * `NAME.scales.npy` (float32, one per segment), read back when present.
 */
import * as fs from 'node:fs';

import { MAX_CODEBOOKS } from '../codec/bandwidth';
import { Codes, checkCodeRange } from '../codec/codes';
import { FAMILIES, Segmenting, isSegmentedFamily } from '../model/family';
import { readNpy, writeNpy } from './npy';
import { rangeError, typeError } from '../common/errors';

/**
 * Frames of a full segment of codes read with scales: those of the segmented family (encodec_48khz, 1 s at 150
 * frames/s). A second segmented family would need its name stored beside the codes to tell them apart.
 */
const SEGMENT_FRAMES = (FAMILIES.find(isSegmentedFamily)?.segment as Segmenting).frames;

/** The file beside `file` (codes .npy) that holds segment scales: `NAME.scales.npy`. */
export function scalesPathFor(file: string): string {
  return file.replace(/(\.npy)?$/i, '.scales.npy');
}

/** Writes codes as an int16 `.npy` of shape [nQ, nFrames] (atomically), and their scales beside them if any. */
export async function writeCodesNpy(file: string, codes: Codes): Promise<void> {
  const data = codes.data instanceof Int16Array ? codes.data : Int16Array.from(codes.data);
  if (codes.scales) await writeNpy(scalesPathFor(file), codes.scales, [codes.scales.length]);
  await writeNpy(file, data, [codes.nQ, codes.nFrames]);
}

/**
 * Reads codes from a `.npy` file: an integer array of shape [n_q, n_frames] (or [1, n_q, n_frames]),
 * values in 0..1023. Throws a TypeError/RangeError that says what was expected.
 */
export async function readCodesNpy(file: string): Promise<Codes> {
  const { data, dtype, shape } = await readNpy(file);
  const dims = shape.length === 3 && shape[0] === 1 ? shape.slice(1) : shape;
  if (dims.length !== 2) {
    throw rangeError(
      `${file}: codes must have shape (n_q, n_frames), got (${shape.join(', ')}); ` +
        'for TR-aligned features use `encodec-native reconstruct`',
    );
  }
  const [nQ, nFrames] = dims;
  if (nQ < 1 || nQ > MAX_CODEBOOKS || nFrames < 1) {
    throw rangeError(`${file}: shape (${shape.join(', ')}) is not (n_q <= ${MAX_CODEBOOKS}, n_frames >= 1)`);
  }
  let values: Int16Array | Int32Array;
  if (data instanceof Int16Array || data instanceof Int32Array) {
    values = data;
  } else if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    values = new Int32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < 0n || v > 1023n) throw rangeError(`${file}: code ${v} at index ${i} is outside [0, 1023]`);
      values[i] = Number(v);
    }
  } else if (data instanceof Uint8Array || data instanceof Int8Array || data instanceof Uint16Array || data instanceof Uint32Array) {
    values = Int32Array.from(data);
  } else {
    throw typeError(`${file}: codes must have an integer dtype (int16, int32 or int64), got '${dtype}'`);
  }
  checkCodeRange(values, `${file}: codes`);
  const scalesFile = scalesPathFor(file);
  if (!fs.existsSync(scalesFile)) return { data: values, nQ, nFrames };
  const scales = await readNpy(scalesFile);
  if (!(scales.data instanceof Float32Array) || scales.shape.length !== 1) {
    throw typeError(`${scalesFile}: segment scales must be a float32 array of shape (segments,), got ${scales.dtype} (${scales.shape.join(', ')})`);
  }
  return { data: values, nQ, nFrames, scales: scales.data, segmentFrames: SEGMENT_FRAMES };
}
