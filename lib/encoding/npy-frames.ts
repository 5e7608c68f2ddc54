/**
 * Time-major frame arrays in `.npy` files, written as they are computed and read back a block of frames at a time,
 * so that neither side holds a whole soundtrack's frames (a 2-hour movie's latents are about 280 MB).
 *
 * The file is a plain NumPy `.npy` (format 1.0, C order) of shape [nFrames, rows]: `numpy.load` reads it. The writer
 * reserves a fixed-size header, appends frames, and rewrites the header with the final shape when it closes.
 */
import * as fs from 'node:fs';

import { codedError } from '../common/errors';

export type FrameArray = Int16Array | Float32Array;
export type FrameDtype = 'int16' | 'float32';

/** Header bytes: enough for any shape of two dimensions, a multiple of 64 as NumPy aligns it. */
const HEADER_BYTES = 128;
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);

function descr(dtype: FrameDtype): string {
  return dtype === 'int16' ? '<i2' : '<f4';
}

function header(dtype: FrameDtype, nFrames: number, rows: number): Buffer {
  const dict = `{'descr': '${descr(dtype)}', 'fortran_order': False, 'shape': (${nFrames}, ${rows}), }`;
  const out = Buffer.alloc(HEADER_BYTES, 0x20);
  MAGIC.copy(out, 0);
  out.writeUInt16LE(HEADER_BYTES - 10, 8);
  out.write(dict, 10, 'latin1');
  out[HEADER_BYTES - 1] = 0x0a;
  return out;
}

export function bytesPerValue(dtype: FrameDtype): number {
  return dtype === 'int16' ? 2 : 4;
}

/** Appends [n, rows] time-major frames to a new `.npy` file; `close()` writes the final shape and syncs. */
export class NpyFrameWriter {
  private frames = 0;

  private constructor(
    private readonly handle: fs.promises.FileHandle,
    readonly dtype: FrameDtype,
    readonly rows: number,
  ) {}

  static async create(file: string, dtype: FrameDtype, rows: number): Promise<NpyFrameWriter> {
    const handle = await fs.promises.open(file, 'wx');
    await handle.write(header(dtype, 0, rows), 0, HEADER_BYTES, 0);
    return new NpyFrameWriter(handle, dtype, rows);
  }

  get nFrames(): number {
    return this.frames;
  }

  /** Appends frames given time-major ([n, rows]). */
  async append(data: FrameArray): Promise<void> {
    if (data.length % this.rows !== 0) throw codedError('ENCODEC_INTERNAL', `internal error: ${data.length} values are not whole frames of ${this.rows}`);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.byteLength - done, HEADER_BYTES + this.frames * this.rows * bytesPerValue(this.dtype) + done);
      done += bytesWritten;
    }
    this.frames += data.length / this.rows;
  }

  /** Appends frames given row-major ([rows, n]), as the codec's blocks are laid out. */
  async appendRows(data: ArrayLike<number>, n: number): Promise<void> {
    const out = this.dtype === 'int16' ? new Int16Array(n * this.rows) : new Float32Array(n * this.rows);
    for (let r = 0; r < this.rows; r++) for (let t = 0; t < n; t++) out[t * this.rows + r] = data[r * n + t];
    await this.append(out);
  }

  async close(): Promise<void> {
    try {
      await this.handle.write(header(this.dtype, this.frames, this.rows), 0, HEADER_BYTES, 0);
      await this.handle.sync();
    } finally {
      await this.handle.close();
    }
  }

  /** Closes without finishing (the caller removes the file). */
  async abandon(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

/** Shape and dtype of a frames `.npy` written by NpyFrameWriter (or any 2-D C-order int16/float32 `.npy`). */
export interface NpyFrameHeader {
  dtype: FrameDtype;
  nFrames: number;
  rows: number;
  /** Byte offset of the data. */
  offset: number;
}

/** Reads the header of a frames `.npy`, checking that the file holds exactly the data it declares. */
export async function readFrameHeader(file: string): Promise<NpyFrameHeader> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(Math.min(size, 4096));
    await handle.read(head, 0, head.length, 0);
    if (head.length < 10 || !head.subarray(0, 6).equals(MAGIC.subarray(0, 6)) || head[6] !== 1) {
      throw codedError('ENCODEC_FILE_FORMAT', `${file}: not a frames .npy file (bad magic)`);
    }
    const length = head.readUInt16LE(8);
    const text = head.subarray(10, 10 + length).toString('latin1');
    const m = /'descr':\s*'(<i2|<f4)',\s*'fortran_order':\s*False,\s*'shape':\s*\((\d+),\s*(\d+)\)/.exec(text);
    if (!m) throw codedError('ENCODEC_FILE_FORMAT', `${file}: not a 2-D int16/float32 C-order .npy file`);
    const dtype: FrameDtype = m[1] === '<i2' ? 'int16' : 'float32';
    const nFrames = Number(m[2]);
    const rows = Number(m[3]);
    const offset = 10 + length;
    const expected = offset + nFrames * rows * bytesPerValue(dtype);
    if (size !== expected) {
      throw codedError('ENCODEC_FILE_FORMAT', `${file}: holds ${size} bytes but its header (${nFrames} x ${rows} ${dtype}) needs ${expected}: truncated or overwritten`);
    }
    return { dtype, nFrames, rows, offset };
  } finally {
    await handle.close();
  }
}

/** Reads frames [from, to) of a frames `.npy` as a time-major array ([to - from, rows]). */
export async function readFrameBlock(file: string, h: NpyFrameHeader, from: number, to: number): Promise<FrameArray> {
  const n = Math.max(0, Math.min(to, h.nFrames) - from);
  const out = h.dtype === 'int16' ? new Int16Array(n * h.rows) : new Float32Array(n * h.rows);
  if (n === 0) return out;
  const handle = await fs.promises.open(file, 'r');
  try {
    const bytes = new Uint8Array(out.buffer);
    let done = 0;
    const start = h.offset + from * h.rows * bytesPerValue(h.dtype);
    while (done < bytes.byteLength) {
      const { bytesRead } = await handle.read(bytes, done, bytes.byteLength - done, start + done);
      if (bytesRead === 0) throw codedError('ENCODEC_FILE_FORMAT', `${file}: ended early (truncated)`);
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return out;
}
