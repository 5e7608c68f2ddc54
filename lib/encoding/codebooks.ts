/**
 * Embeddings from stored codes without running the model: the quantized latent of a frame is the sum of the
 * chosen codebook vectors, codebook 0 first, as the model's dequantize computes it (float32 additions in the same
 * order, so the values are bit for bit the model's). The codebooks of a model file are kept in the cache beside its
 * entries (`codebooks/<model SHA-256>.npy`, [codebooks * 1024, dimension] float32, with its SHA-256 in a `.json`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { writeFileAtomic } from '../common/atomic';
import { codedError } from '../common/errors';
import { sha256OfFile } from './file-hash';
import { NpyFrameWriter, readFrameBlock, readFrameHeader } from './npy-frames';

/** Frames per tile of {@link dequantize}. */
const TILE = 64;

/** A model's codebooks: data laid out [count, bins, dim]. */
export interface Codebooks {
  data: Float32Array;
  count: number;
  bins: number;
  dim: number;
}

/**
 * Embeddings of codes laid out [rows, n] (codes of `nQ` <= rows codebooks are the first nQ rows): [dim, n].
 * `out` receives them when given.
 */
export function dequantize(codes: ArrayLike<number>, rows: number, n: number, nQ: number, books: Codebooks, out = new Float32Array(books.dim * n)): Float32Array {
  if (nQ > books.count || nQ > rows) throw codedError('ENCODEC_INTERNAL', `internal error: ${nQ} codebooks asked of ${Math.min(books.count, rows)}`);
  const { dim, bins, data } = books;
  // frames are summed time-major in tiles, then written out row by row (writing [dim, n] frame by frame would touch
  // `dim` cache lines per frame)
  const tile = new Float32Array(TILE * dim);
  for (let t0 = 0; t0 < n; t0 += TILE) {
    const width = Math.min(TILE, n - t0);
    for (let i = 0; i < width; i++) {
      const t = t0 + i;
      const at = i * dim;
      for (let q = 0; q < nQ; q++) {
        const code = codes[q * n + t];
        if (!(code >= 0 && code < bins)) throw codedError('ENCODEC_FILE_FORMAT', `code ${code} out of range 0..${bins - 1} (codebook ${q}, frame ${t})`);
        const base = (q * bins + code) * dim;
        // Float32Array stores round each sum to float32, as the model's float32 additions do
        if (q === 0) tile.set(data.subarray(base, base + dim), at);
        else addRow(tile, at, data, base, dim);
      }
    }
    for (let d = 0; d < dim; d++) {
      const row = d * n + t0;
      for (let i = 0, from = d; i < width; i++, from += dim) out[row + i] = tile[from];
    }
  }
  return out;
}

/** tile[at + d] += data[base + d] for d < dim, in float32; unrolled by four (V8 runs it up to twice as fast). */
function addRow(tile: Float32Array, at: number, data: Float32Array, base: number, dim: number): void {
  const whole = dim - (dim % 4);
  let d = 0;
  for (; d < whole; d += 4) {
    tile[at + d] += data[base + d];
    tile[at + d + 1] += data[base + d + 1];
    tile[at + d + 2] += data[base + d + 2];
    tile[at + d + 3] += data[base + d + 3];
  }
  for (; d < dim; d++) tile[at + d] += data[base + d];
}

function files(dir: string, modelSha256: string): { npy: string; json: string } {
  return { npy: path.join(dir, `${modelSha256}.npy`), json: path.join(dir, `${modelSha256}.json`) };
}

/** The codebooks kept for a model in `dir`, or undefined when none (or invalid ones, which are removed). */
export async function readCodebooks(dir: string, modelSha256: string): Promise<Codebooks | undefined> {
  const f = files(dir, modelSha256);
  try {
    const meta = JSON.parse(await fs.promises.readFile(f.json, 'utf8')) as { sha256: string; count: number; bins: number; dim: number };
    if ((await sha256OfFile(f.npy)) !== meta.sha256) throw new Error('checksum');
    const h = await readFrameHeader(f.npy);
    if (h.dtype !== 'float32' || h.nFrames !== meta.count * meta.bins || h.rows !== meta.dim) throw new Error('shape');
    return { data: (await readFrameBlock(f.npy, h, 0, h.nFrames)) as Float32Array, count: meta.count, bins: meta.bins, dim: meta.dim };
  } catch {
    await Promise.all([f.npy, f.json].map((p) => fs.promises.rm(p, { force: true })));
    return undefined;
  }
}

/** Keeps a model's codebooks in `dir` (atomic; the `.json` written last marks them complete). */
export async function writeCodebooks(dir: string, modelSha256: string, books: Codebooks): Promise<void> {
  const f = files(dir, modelSha256);
  await fs.promises.mkdir(dir, { recursive: true });
  const temp = `${f.npy}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.partial`;
  const writer = await NpyFrameWriter.create(temp, 'float32', books.dim);
  try {
    await writer.append(books.data);
    await writer.close();
    await fs.promises.rename(temp, f.npy);
  } catch (err) {
    await writer.abandon();
    await fs.promises.rm(temp, { force: true });
    throw err;
  }
  const meta = { sha256: await sha256OfFile(f.npy), count: books.count, bins: books.bins, dim: books.dim };
  await writeFileAtomic(f.json, Buffer.from(JSON.stringify(meta)));
}
