/**
 * Frame ranges of codes and latents (layout [rows, nFrames]): copying, slicing and joining them along time, as the
 * chunked, pooled and segmented paths assemble their outputs.
 */
import type { Codes, Embeddings } from './codes';
import { rangeError } from '../common/errors';
import { joinFrames } from '../common/planar';

/** Copies `frames` frames of every codebook row of `src` from frame `from` into `dst` (row length `dstFrames`) at `at`. */
export function copyFrames(src: Codes, from: number, frames: number, dst: Int16Array | Int32Array, dstFrames: number, at: number): void {
  for (let q = 0; q < src.nQ; q++) {
    const row = src.data.subarray(q * src.nFrames + from, q * src.nFrames + from + frames);
    dst.set(row, q * dstFrames + at);
  }
}

/** Frames [from, from + frames) of codes, as a new block of the same integer type. */
export function sliceFrames(codes: Codes, from: number, frames: number): Codes {
  const data = new (codes.data instanceof Int32Array ? Int32Array : Int16Array)(codes.nQ * frames);
  copyFrames(codes, from, frames, data, frames, 0);
  return { data, nQ: codes.nQ, nFrames: frames };
}

/** Concatenates code blocks along time into one Codes. */
export function concatCodes(blocks: Codes[]): Codes {
  if (blocks.length === 0) throw rangeError('no codes to concatenate');
  const nQ = blocks[0].nQ;
  const nFrames = blocks.reduce((n, b) => n + b.nFrames, 0);
  const data = new Int16Array(nQ * nFrames);
  let at = 0;
  for (const b of blocks) {
    copyFrames(b, 0, b.nFrames, data, nFrames, at);
    at += b.nFrames;
  }
  return { data, nQ, nFrames };
}

/** Concatenates latents blocks along time (layout [dim, nFrames]). */
export function concatLatents(blocks: Embeddings[]): Embeddings {
  if (blocks.length === 0) throw rangeError('no latents to concatenate');
  const dim = blocks[0].dim;
  const nFrames = blocks.reduce((n, b) => n + b.nFrames, 0);
  return { data: joinFrames(blocks, dim, new Float32Array(dim * nFrames)), dim, nFrames };
}
