/**
 * Planar multi-channel audio: one Float32Array holding channel 0's samples, then channel 1's, and so on (the
 * layout of a [channels, samples] tensor), as the stereo model (encodec_48khz) takes and returns it.
 */
import { typeError, rangeError } from './errors';

/** Joins per-channel arrays of equal length into one planar array. */
export function toPlanar(channels: readonly Float32Array[]): Float32Array {
  if (!Array.isArray(channels) || channels.length === 0 || !channels.every((c) => c instanceof Float32Array)) {
    throw typeError('channels must be a non-empty array of Float32Array, one per channel');
  }
  const n = channels[0].length;
  if (channels.some((c) => c.length !== n)) {
    throw rangeError(`channels must have equal lengths, got ${channels.map((c) => c.length).join(', ')}`);
  }
  const out = new Float32Array(n * channels.length);
  channels.forEach((c, i) => out.set(c, i * n));
  return out;
}

/** Views of each channel of planar audio (no copy). */
export function fromPlanar(samples: Float32Array, channels: number): Float32Array[] {
  if (!(samples instanceof Float32Array)) throw typeError('samples must be a Float32Array of planar audio');
  if (!Number.isInteger(channels) || channels < 1 || samples.length % channels !== 0) {
    throw rangeError(`${samples.length} planar samples do not split into ${String(channels)} channels of equal length`);
  }
  const n = samples.length / channels;
  return Array.from({ length: channels }, (_, c) => samples.subarray(c * n, (c + 1) * n));
}

/**
 * Joins blocks of [rows, frames] data (each row's frames contiguous, as codes and latents are laid out) along
 * frames, into `out` of rows x (their total frames).
 */
export function joinFrames<T extends Float32Array | Int16Array>(blocks: ReadonlyArray<{ data: T; nFrames: number }>, rows: number, out: T): T {
  const nFrames = out.length / rows;
  let at = 0;
  for (const b of blocks) {
    for (let r = 0; r < rows; r++) out.set(b.data.subarray(r * b.nFrames, (r + 1) * b.nFrames), r * nFrames + at);
    at += b.nFrames;
  }
  return out;
}
