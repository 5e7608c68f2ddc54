/**
 * NumPy `.npy` arrays: reading (format versions 1.0, 2.0 and 3.0) and writing (1.0, or 2.0 when the header
 * is too long for 1.0), in memory or atomically to files.
 *
 * Supported dtypes: `|i1 |u1 <i2 <u2 <i4 <u4 <i8 <u8 <f4 <f8`, their big-endian (`>`) variants on read
 * (converted to little-endian, and reported with `<`), and `|b1` (bool, read as a `Uint8Array` of 0/1).
 * 64-bit integers come back as `BigInt64Array` / `BigUint64Array`; {@link toInt32Array} and
 * {@link toNumberArray} convert them with range checks.
 *
 * Arrays stored in Fortran order (`fortran_order: True`) are read and transposed, so `data` is always in C
 * (row-major) order for the reported `shape`.
 *
 * Why not an npm package: no .npy reader/writer on npm is a widely used, maintained one (npyjs and the like
 * have a few thousand users), and the format is a short text header plus raw little-endian bytes; writes must
 * also go through writeFileAtomic.
 *
 * @packageDocumentation
 */
import * as os from 'node:os';

import { writeFileAtomic } from '../common/atomic';
import { codedError, rangeError, typeError } from '../common/errors';
import { readDecoded } from './read-source';

/** Typed arrays that map to a NumPy dtype. */
export type NpyData =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** An array read from a `.npy` file. */
export interface NpyArray {
  /** The values in C (row-major) order, in native (little-endian) byte order. */
  data: NpyData;
  /** NumPy dtype string, little-endian form: `'<f4'`, `'<i2'`, `'|u1'`, `'|b1'`, ... */
  dtype: string;
  /** Dimensions; `[]` for a 0-d (scalar) array. */
  shape: number[];
}

interface DtypeInfo {
  size: number;
  make: (buffer: ArrayBuffer) => NpyData;
}

/** dtype (without byte-order character) -> element size and typed-array constructor. */
const DTYPES: Record<string, DtypeInfo> = {
  i1: { size: 1, make: (b) => new Int8Array(b) },
  u1: { size: 1, make: (b) => new Uint8Array(b) },
  b1: { size: 1, make: (b) => new Uint8Array(b) },
  i2: { size: 2, make: (b) => new Int16Array(b) },
  u2: { size: 2, make: (b) => new Uint16Array(b) },
  i4: { size: 4, make: (b) => new Int32Array(b) },
  u4: { size: 4, make: (b) => new Uint32Array(b) },
  i8: { size: 8, make: (b) => new BigInt64Array(b) },
  u8: { size: 8, make: (b) => new BigUint64Array(b) },
  f4: { size: 4, make: (b) => new Float32Array(b) },
  f8: { size: 8, make: (b) => new Float64Array(b) },
};

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const HOST_LE = os.endianness() === 'LE';

/** The dtype string `writeNpy` / `encodeNpy` store for a typed array (`'<f4'` for a Float32Array, ...). */
export function dtypeOf(data: NpyData): string {
  if (data instanceof Int8Array) return '|i1';
  if (data instanceof Uint8Array) return '|u1'; // includes Buffer
  if (data instanceof Int16Array) return '<i2';
  if (data instanceof Uint16Array) return '<u2';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof Uint32Array) return '<u4';
  if (data instanceof BigInt64Array) return '<i8';
  if (data instanceof BigUint64Array) return '<u8';
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  throw typeError(`cannot store ${Object.prototype.toString.call(data)} in a .npy file (use a typed array)`);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Header: a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }       */

type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

/** Parses the subset of Python literal syntax that .npy headers use. */
function parsePyLiteral(text: string): PyValue {
  let i = 0;
  const fail = (what: string): never => {
    throw codedError('ENCODEC_FILE_FORMAT', `not a valid .npy header (${what} at offset ${i}): ${JSON.stringify(text.trim())}`);
  };
  const skip = (): void => {
    while (i < text.length && /\s/.test(text[i])) i++;
  };
  const value = (): PyValue => {
    skip();
    const c = text[i];
    if (c === '{') {
      i++;
      const out: { [key: string]: PyValue } = {};
      for (;;) {
        skip();
        if (text[i] === '}') return i++, out;
        const key = value();
        if (typeof key !== 'string') fail('non-string key');
        skip();
        if (text[i++] !== ':') fail("expected ':'");
        out[key as string] = value();
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') fail("expected ',' or '}'");
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      i++;
      const out: PyValue[] = [];
      for (;;) {
        skip();
        if (text[i] === close) return i++, out;
        out.push(value());
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail(`expected ',' or '${close}'`);
      }
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0) fail('unterminated string');
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const m = /^(?:True|False|None|[-+]?\d+L?)/.exec(text.slice(i));
    if (!m) return fail('unexpected character');
    i += m[0].length;
    if (m[0] === 'True') return true;
    if (m[0] === 'False') return false;
    if (m[0] === 'None') return null;
    return Number(m[0].replace(/L$/, '')); // Python 2 wrote long integers as 3L
  };
  const result = value();
  skip();
  if (i !== text.length) fail('trailing characters');
  return result;
}

function formatShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

function checkShape(shape: readonly unknown[], where: string): number {
  let count = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw rangeError(`${where}: shape (${shape.join(', ')}) must hold non-negative integers`);
    }
    count *= d;
  }
  if (!Number.isSafeInteger(count)) throw rangeError(`${where}: shape (${shape.join(', ')}) is too large`);
  return count;
}

/* ------------------------------------------------------------------------------------------------------ */
/* Reading                                                                                                 */

function byteSwap(bytes: Uint8Array, size: number): void {
  for (let off = 0; off < bytes.length; off += size) {
    for (let a = off, b = off + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

/** Reorders a Fortran-order (column-major) array into C order. */
function fortranToC(src: Uint8Array, shape: number[], size: number): Uint8Array {
  const n = shape.length;
  if (n < 2) return src;
  const count = src.length / size;
  const out = new Uint8Array(src.length);
  // Element with C index (i0..i{n-1}) sits at Fortran offset sum(i_k * fstride_k), fstride_0 = 1.
  const fstride = new Array<number>(n);
  fstride[0] = 1;
  for (let k = 1; k < n; k++) fstride[k] = fstride[k - 1] * shape[k - 1];
  const idx = new Array<number>(n).fill(0);
  let foff = 0;
  for (let c = 0; c < count; c++) {
    out.set(src.subarray(foff * size, foff * size + size), c * size);
    // Advance the C index (last dimension fastest), keeping the Fortran offset in step.
    for (let k = n - 1; k >= 0; k--) {
      idx[k]++;
      foff += fstride[k];
      if (idx[k] < shape[k]) break;
      foff -= fstride[k] * shape[k];
      idx[k] = 0;
    }
  }
  return out;
}

/**
 * Decodes a `.npy` file held in memory. The returned data is a copy (aligned, native byte order, C order).
 *
 * @throws Error naming the problem: `not a .npy file (bad magic)`, `unsupported dtype '<c8'`,
 *   `header says shape (2, 3) = 6 values but the file holds 5`, ...
 */
export function decodeNpy(buffer: Uint8Array): NpyArray {
  const buf = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw codedError('ENCODEC_FILE_FORMAT', 'not a .npy file (bad magic)');
  const major = buf[6];
  const minor = buf[7];
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw codedError('ENCODEC_FILE_FORMAT', 'truncated .npy file (incomplete header)');
    headerLen = buf.readUInt32LE(8);
    headerStart = 12;
  } else {
    throw codedError('ENCODEC_FILE_FORMAT', `unsupported .npy format version ${major}.${minor} (1.0, 2.0 and 3.0 are supported)`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > buf.length) throw codedError('ENCODEC_FILE_FORMAT', `truncated .npy file (header of ${headerLen} bytes is incomplete)`);
  const headerText = buf.toString(major === 3 ? 'utf8' : 'latin1', headerStart, dataStart);
  const header = parsePyLiteral(headerText);
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw codedError('ENCODEC_FILE_FORMAT', `not a valid .npy header (not a dict): ${JSON.stringify(headerText.trim())}`);
  }
  const { descr, fortran_order: fortran, shape } = header;
  if (descr === undefined) throw codedError('ENCODEC_FILE_FORMAT', "not a valid .npy header ('descr' missing)");
  if (typeof descr !== 'string') {
    throw codedError('ENCODEC_FILE_FORMAT', `unsupported dtype ${JSON.stringify(descr)} (structured arrays are not supported)`);
  }
  if (typeof fortran !== 'boolean') throw codedError('ENCODEC_FILE_FORMAT', "not a valid .npy header ('fortran_order' missing)");
  if (!Array.isArray(shape)) throw codedError('ENCODEC_FILE_FORMAT', "not a valid .npy header ('shape' missing)");
  const dims = shape as number[];
  const count = checkShape(dims, '.npy header');

  const m = /^([<>|=])([a-z]\d+)$/.exec(descr);
  const info = m ? DTYPES[m[2]] : undefined;
  if (!m || !info || (info.size > 1 && m[1] === '|')) throw codedError('ENCODEC_FILE_FORMAT', `unsupported dtype '${descr}'`);
  const bigEndian = m[1] === '>' || (m[1] === '=' && !HOST_LE);
  const dtype = `${info.size === 1 ? '|' : '<'}${m[2]}`;

  const available = buf.length - dataStart;
  if (available !== count * info.size) {
    const whole = Math.floor(available / info.size);
    const extra = available % info.size;
    throw codedError('ENCODEC_FILE_FORMAT', 
      `header says shape ${formatShape(dims)} = ${count} values but the file holds ${whole}` +
        (extra ? ` (and ${extra} stray bytes)` : ''),
    );
  }
  let bytes: Uint8Array = new Uint8Array(available);
  bytes.set(buf.subarray(dataStart));
  if (info.size > 1 && bigEndian === HOST_LE) byteSwap(bytes, info.size);
  if (fortran) bytes = fortranToC(bytes, dims, info.size);
  const data = info.make(bytes.buffer as ArrayBuffer);
  if (m[2] === 'b1') {
    for (let k = 0; k < data.length; k++) if ((data as Uint8Array)[k] > 1) (data as Uint8Array)[k] = 1;
  }
  return { data, dtype, shape: dims.slice() };
}

/**
 * Reads a `.npy` array from a file (or from a buffer holding one).
 *
 * @param source path of the file, or its bytes
 * @throws Error as {@link decodeNpy}, prefixed with the path; file-system errors (ENOENT, ...) unchanged
 */
export async function readNpy(source: string | Uint8Array): Promise<NpyArray> {
  return readDecoded(source, decodeNpy);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Writing                                                                                                 */

/**
 * Encodes a typed array as a `.npy` file (format 1.0, or 2.0 if the header exceeds 65535 bytes), C order,
 * little-endian, dtype from the array type ({@link dtypeOf}). The header is padded so the data starts at a
 * multiple of 64 bytes, as NumPy does.
 *
 * @param data values in C (row-major) order
 * @param shape dimensions; their product must equal `data.length` (`[]` for a single value)
 * @throws RangeError if the shape does not match the data
 */
export function encodeNpy(data: NpyData, shape: readonly number[]): Buffer {
  const dtype = dtypeOf(data);
  const count = checkShape(shape, 'encodeNpy');
  if (count !== data.length) {
    throw rangeError(`encodeNpy: shape ${formatShape(shape)} = ${count} values but the data holds ${data.length}`);
  }
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${formatShape(shape)}, }`;
  let major = 1;
  let prefix = 10;
  let total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  if (total - prefix > 0xffff) {
    major = 2;
    prefix = 12;
    total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  }
  const header = Buffer.alloc(total, 0x20);
  MAGIC.copy(header, 0);
  header[6] = major;
  header[7] = 0;
  if (major === 1) header.writeUInt16LE(total - prefix, 8);
  else header.writeUInt32LE(total - prefix, 8);
  header.write(dict, prefix, 'latin1');
  header[total - 1] = 0x0a;
  const body = Buffer.alloc(data.byteLength);
  body.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  const size = data.BYTES_PER_ELEMENT;
  if (!HOST_LE && size > 1) byteSwap(body, size);
  return Buffer.concat([header, body]);
}

/**
 * Writes a typed array to a `.npy` file atomically (see {@link encodeNpy} for the format): the file either
 * appears complete or not at all.
 */
export async function writeNpy(file: string, data: NpyData, shape: readonly number[]): Promise<void> {
  await writeFileAtomic(file, encodeNpy(data, shape));
}

/* ------------------------------------------------------------------------------------------------------ */
/* Conversions                                                                                             */

/**
 * Converts integer data of any dtype (including 64-bit `BigInt64Array` / `BigUint64Array`, and floats that
 * hold whole numbers) to an `Int32Array`. An `Int32Array` is returned as is (not copied).
 *
 * @param what names the data in error messages
 * @throws RangeError naming the first value that is not an integer in [-2^31, 2^31 - 1], and its index
 */
export function toInt32Array(data: NpyData, what = 'value'): Int32Array {
  if (data instanceof Int32Array) return data;
  const out = new Int32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    const n = typeof v === 'bigint' ? (v >= -2147483648n && v <= 2147483647n ? Number(v) : NaN) : v;
    if (!Number.isInteger(n) || n < -2147483648 || n > 2147483647) {
      throw rangeError(`${what} ${v} at index ${i} does not fit in a 32-bit integer`);
    }
    out[i] = n;
  }
  return out;
}

/**
 * Converts data of any dtype to a `Float64Array` of numbers. 64-bit integers must lie within
 * ±(2^53 - 1) ({@link Number.MAX_SAFE_INTEGER}) so that they convert exactly.
 *
 * @param what names the data in error messages
 * @throws RangeError naming the first 64-bit value beyond ±(2^53 - 1), and its index
 */
export function toNumberArray(data: NpyData, what = 'value'): Float64Array {
  const out = new Float64Array(data.length);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v > max || v < -max) throw rangeError(`${what} ${v} at index ${i} is beyond ±(2^53 - 1) and cannot be a number exactly`);
      out[i] = Number(v);
    }
    return out;
  }
  out.set(data);
  return out;
}
