/**
 * A value as bytes and back, exactly: JSON for the structure, with typed arrays stored as raw bytes after it and
 * the numbers JSON cannot hold (NaN, +-Infinity, -0) and `undefined` properties tagged, so the value read back
 * is the one written, bit for bit (a plain JSON round trip would turn NaN into null and drop undefined keys).
 *
 * Layout: the 8 bytes `ENCBJSN1`, the header's length (uint32 little-endian), the header (UTF-8 JSON), then the
 * typed arrays' bytes in the order the header names them.
 */
import { codedError } from './errors';

const MAGIC = Buffer.from('ENCBJSN1', 'latin1');

const TYPED = {
  Float32Array,
  Float64Array,
  Int8Array,
  Int16Array,
  Int32Array,
  Uint8Array,
  Uint16Array,
  Uint32Array,
  BigInt64Array,
} as const;
type TypedName = keyof typeof TYPED;

function isTag(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 1 && Object.keys(value)[0].startsWith('$');
}

/** The bytes of `value` (plain objects, arrays, strings, numbers, booleans, null, undefined, typed arrays). */
export function encodeBinaryJson(value: unknown): Buffer[] {
  const blobs: Buffer[] = [];
  const walk = (v: unknown): unknown => {
    if (v === undefined) return { $undefined: true };
    if (typeof v === 'number') {
      if (Number.isNaN(v)) return { $number: 'NaN' };
      if (!Number.isFinite(v)) return { $number: v > 0 ? 'Infinity' : '-Infinity' };
      if (Object.is(v, -0)) return { $number: '-0' };
      return v;
    }
    if (ArrayBuffer.isView(v)) {
      const name = v.constructor.name as TypedName;
      if (!(name in TYPED)) throw codedError('ENCODEC_INTERNAL', `cannot store a ${name}`);
      blobs.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
      return { $typed: [name, v.byteLength] };
    }
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v === 'object' && v !== null) {
      if (Object.getPrototypeOf(v) !== Object.prototype) throw codedError('ENCODEC_INTERNAL', `cannot store a ${(v as object).constructor.name}`);
      if (isTag(v)) throw codedError('ENCODEC_INTERNAL', `cannot store an object whose only key starts with '$' (${Object.keys(v)[0]})`);
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    }
    if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v;
    throw codedError('ENCODEC_INTERNAL', `cannot store a ${typeof v}`);
  };
  const header = Buffer.from(JSON.stringify(walk(value)), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(header.length);
  return [MAGIC, length, header, ...blobs];
}

/** The value `encodeBinaryJson` stored in `bytes`; `label` names the source in errors. */
export function decodeBinaryJson(bytes: Buffer, label: string): unknown {
  if (bytes.length < 12 || !bytes.subarray(0, 8).equals(MAGIC)) throw codedError('ENCODEC_FILE_FORMAT', `${label} is not a file this tool wrote (no ${MAGIC.toString('latin1')} header)`);
  const headerEnd = 12 + bytes.readUInt32LE(8);
  if (headerEnd > bytes.length) throw codedError('ENCODEC_FILE_FORMAT', `${label} is truncated`);
  let at = headerEnd;
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v !== 'object' || v === null) return v;
    if (isTag(v)) {
      if ('$undefined' in v) return undefined;
      if ('$number' in v) return v.$number === '-0' ? -0 : Number(v.$number);
      if ('$typed' in v) {
        const [name, byteLength] = v.$typed as [TypedName, number];
        const Type = TYPED[name];
        if (!Type || at + byteLength > bytes.length) throw codedError('ENCODEC_FILE_FORMAT', `${label} is truncated or damaged`);
        // copied into a fresh buffer: the typed array's alignment then always fits
        const copy = new Uint8Array(byteLength);
        copy.set(bytes.subarray(at, at + byteLength));
        at += byteLength;
        return new Type(copy.buffer);
      }
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = walk(x);
    return out;
  };
  const value = walk(JSON.parse(bytes.subarray(12, headerEnd).toString('utf8')));
  if (at !== bytes.length) throw codedError('ENCODEC_FILE_FORMAT', `${label} has ${bytes.length - at} bytes more than its header names`);
  return value;
}
