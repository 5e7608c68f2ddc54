/**
 * The timing fields of a NIfTI-1 or NIfTI-2 header (`.nii` or `.nii.gz`): volume count (dim[4]) and repetition
 * time (pixdim[4] in the header's time unit), read from the first 540 bytes only. A small reader rather than
 * nifti-reader-js, which reads (and for .gz inflates) the whole file into memory: a BOLD run is hundreds of MB.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { rangeError } from '../common/errors';

/** What the header says about the run's timing. */
export interface NiftiTiming {
  /** 1 or 2. */
  version: 1 | 2;
  /** dim[4]: volumes (1 for a 3-D image). */
  volumes: number;
  /** pixdim[4] converted to seconds (NaN when not positive). */
  tr: number;
  /** The time unit of xyzt_units ('s', 'ms', 'us', or 'unknown', read as seconds). */
  timeUnit: 's' | 'ms' | 'us' | 'unknown';
}

const NIFTI2_HEADER = 540;

/** The first `n` bytes of a file, gunzipped when it is gzip (streamed: nothing past them is inflated). */
async function headBytes(file: string, n: number): Promise<Buffer> {
  const handle = await fs.promises.open(file, 'r');
  let magic: Buffer;
  try {
    magic = Buffer.alloc(2);
    await handle.read(magic, 0, 2, 0);
  } finally {
    await handle.close();
  }
  const gzip = magic[0] === 0x1f && magic[1] === 0x8b;
  const source = fs.createReadStream(file);
  const stream = gzip ? source.pipe(zlib.createGunzip()) : source;
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      parts.push(chunk);
      total += chunk.length;
      if (total >= n) break;
    }
  } catch (err) {
    if (total < n) throw err; // a truncated .gz after the header does not matter
  } finally {
    source.destroy();
    if (stream !== source) (stream as zlib.Gunzip).destroy();
  }
  return Buffer.concat(parts).subarray(0, n);
}

/** Reads the timing fields of a NIfTI-1/2 header. Throws a RangeError naming the file when it is not NIfTI. */
export async function readNiftiTiming(file: string): Promise<NiftiTiming> {
  let head: Buffer;
  try {
    head = await headBytes(file, NIFTI2_HEADER);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw rangeError(`cannot read the NIfTI header of '${file}' (${code ?? (err as Error).message}); pass the run's _bold.nii or _bold.nii.gz`);
  }
  const bad = (why: string): RangeError => rangeError(`'${file}' is not a NIfTI-1/2 image (${why}); pass the run's _bold.nii or _bold.nii.gz`);
  if (head.length < 348) throw bad(`only ${head.length} bytes`);
  let version: 1 | 2;
  let little: boolean;
  if (head.readInt32LE(0) === 348 || head.readInt32BE(0) === 348) {
    version = 1;
    little = head.readInt32LE(0) === 348;
    const magic = head.toString('latin1', 344, 347);
    if (magic !== 'n+1' && magic !== 'ni1') throw bad(`magic '${magic}'`);
  } else if (head.readInt32LE(0) === 540 || head.readInt32BE(0) === 540) {
    version = 2;
    little = head.readInt32LE(0) === 540;
    if (head.length < NIFTI2_HEADER) throw bad(`only ${head.length} bytes`);
    const magic = head.toString('latin1', 4, 7);
    if (magic !== 'n+2' && magic !== 'ni2') throw bad(`magic '${magic}'`);
  } else {
    throw bad('sizeof_hdr is neither 348 nor 540');
  }
  let ndim: number;
  let volumes: number;
  let pixdim4: number;
  let units: number;
  if (version === 1) {
    const i16 = (o: number): number => (little ? head.readInt16LE(o) : head.readInt16BE(o));
    ndim = i16(40);
    volumes = i16(40 + 2 * 4);
    pixdim4 = little ? head.readFloatLE(76 + 4 * 4) : head.readFloatBE(76 + 4 * 4);
    units = head.readUInt8(123);
  } else {
    const i64 = (o: number): number => Number(little ? head.readBigInt64LE(o) : head.readBigInt64BE(o));
    ndim = i64(16);
    volumes = i64(16 + 8 * 4);
    pixdim4 = little ? head.readDoubleLE(104 + 8 * 4) : head.readDoubleBE(104 + 8 * 4);
    units = little ? head.readInt32LE(500) : head.readInt32BE(500);
  }
  if (ndim < 4) volumes = 1;
  const time = units & 0x38;
  const timeUnit = time === 8 ? 's' : time === 16 ? 'ms' : time === 24 ? 'us' : 'unknown';
  const scale = timeUnit === 'ms' ? 1e-3 : timeUnit === 'us' ? 1e-6 : 1;
  // float32 pixdim (NIfTI-1): 1.5 is exact, 0.72 is not; keep the decimal the scanner meant (7 significant digits)
  const tr = pixdim4 > 0 ? Number((pixdim4 * scale).toPrecision(version === 1 ? 7 : 15)) : NaN;
  return { version, volumes, tr, timeUnit };
}
