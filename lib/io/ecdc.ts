/**
 * `.ecdc` files, as written and read by Meta's `encodec` command line (encodec/compress.py), in the variant
 * without the entropy-coding language model (`"lm": false`).
 *
 * Layout (version 0):
 * - header `!4sBI`: magic `ECDC`, version byte 0, big-endian uint32 length N of the metadata;
 * - N bytes of UTF-8 JSON, `{"m": "encodec_24khz", "al": <audio samples>, "nc": <codebooks>, "lm": false}`;
 * - for the 24 kHz model (one segment, no scale): the codes frame by frame, for each frame each codebook in
 *   order, each value packed in 10 bits, least-significant bits first; the last partial byte is flushed.
 * - for the 48 kHz model (`encodec_48khz`: segments of 48000 samples every 47520, `al` counting samples per
 *   channel): for each segment, its scale as a big-endian float32 (`!f`), then its codes packed as above
 *   (`ceil(segment samples / 320)` frames) and flushed to a whole byte, as Meta's compress_to_file writes them.
 */
import * as fs from 'node:fs';

import { CODEBOOK_SIZE, HOP_LENGTH, MAX_CODEBOOKS, framesForSamples } from '../codec/bandwidth';
import { writeFileAtomic } from '../common/atomic';
import { Codes, checkCodes } from '../codec/codes';
import { SegmentGeometry, framesForSegmentedSamples, segmentCount, segmentFrames, segmentFramesOf } from '../codec/segments';

const MAGIC = 'ECDC';
const VERSION = 0;
const BITS = 10; // log2(CODEBOOK_SIZE)
const MODEL_NAME = 'encodec_24khz';
const MODEL_48K = 'encodec_48khz';
/** Meta's encodec_48khz: segment = 1 s, overlap = 1 % at 48 kHz (the model's metadata says the same). */
const GEOMETRY_48K: SegmentGeometry = { length: 48000, stride: 47520, hop: HOP_LENGTH, channels: 2 };
const MAX_CODEBOOKS_48K = 16;

/** What an `.ecdc` header says. */
export interface EcdcMetadata {
  /** Model name (`m`): `encodec_24khz` or `encodec_48khz`. */
  model: string;
  /** Length of the original audio in samples per channel (`al`); decoded audio is trimmed to it. */
  audioLength: number;
  /** Number of codebooks (`nc`). */
  numCodebooks: number;
  /** Whether the codes are entropy-coded with Meta's language model (`lm`); only false is supported. */
  lm: boolean;
}

/** An `.ecdc` file's content. */
export interface EcdcFile {
  codes: Codes;
  metadata: EcdcMetadata;
}

/**
 * Serialises codes to `.ecdc` bytes. `audioLength` is the number of samples (per channel) the codes were made from;
 * it must need exactly `codes.nFrames` frames (ceil(audioLength / 320), or for codes with segment scales, those of
 * Meta's segments of encodec_48khz).
 */
export function encodeEcdc(codes: Codes, audioLength: number): Buffer {
  checkCodes(codes);
  if (!Number.isSafeInteger(audioLength) || audioLength < 1) {
    throw new RangeError(`audioLength must be a positive integer number of samples, got ${String(audioLength)}`);
  }
  if (codes.scales !== undefined) return encodeSegmentedEcdc(codes, audioLength);
  if (framesForSamples(audioLength) !== codes.nFrames) {
    throw new RangeError(
      `audioLength ${audioLength} needs ${framesForSamples(audioLength)} frames (ceil(${audioLength} / ${HOP_LENGTH})), ` +
        `but the codes have ${codes.nFrames}; pass the length of the audio the codes were encoded from`,
    );
  }
  // Python's json.dumps spacing, so files are byte-identical to Meta's.
  const json = Buffer.from(`{"m": "${MODEL_NAME}", "al": ${audioLength}, "nc": ${codes.nQ}, "lm": false}`, 'utf8');
  const header = Buffer.alloc(9);
  header.write(MAGIC, 0, 'latin1');
  header.writeUInt8(VERSION, 4);
  header.writeUInt32BE(json.length, 5);

  const { data, nQ, nFrames } = codes;
  const body = Buffer.alloc(Math.ceil((nQ * nFrames * BITS) / 8));
  let acc = 0;
  let bits = 0;
  let p = 0;
  for (let t = 0; t < nFrames; t++) {
    for (let q = 0; q < nQ; q++) {
      const v = data[q * nFrames + t];
      if (!(v >= 0 && v < CODEBOOK_SIZE)) {
        throw new RangeError(`code ${v} (codebook ${q}, frame ${t}) is outside [0, ${CODEBOOK_SIZE - 1}]`);
      }
      acc |= v << bits;
      bits += BITS;
      while (bits >= 8) {
        body[p++] = acc & 0xff;
        acc >>>= 8;
        bits -= 8;
      }
    }
  }
  if (bits > 0) body[p++] = acc & 0xff;
  return Buffer.concat([header, json, body.subarray(0, p)]);
}

/** Header bytes: magic, version, metadata length, metadata JSON (Python's json.dumps spacing, as Meta's). */
function ecdcHeader(model: string, audioLength: number, nQ: number): Buffer {
  const json = Buffer.from(`{"m": "${model}", "al": ${audioLength}, "nc": ${nQ}, "lm": false}`, 'utf8');
  const header = Buffer.alloc(9);
  header.write(MAGIC, 0, 'latin1');
  header.writeUInt8(VERSION, 4);
  header.writeUInt32BE(json.length, 5);
  return Buffer.concat([header, json]);
}

/** encodec_48khz: per segment its scale (big-endian float32) and its codes, packed and flushed to a byte. */
function encodeSegmentedEcdc(codes: Codes, audioLength: number): Buffer {
  const g = GEOMETRY_48K;
  const scales = codes.scales as Float32Array;
  const per = segmentFrames(g);
  if (codes.segmentFrames !== per || codes.nQ > MAX_CODEBOOKS_48K) {
    throw new RangeError(`codes with segment scales must be ${MODEL_48K}'s (segments of ${per} frames, at most ${MAX_CODEBOOKS_48K} codebooks)`);
  }
  if (framesForSegmentedSamples(audioLength, g) !== codes.nFrames || segmentCount(audioLength, g) !== scales.length) {
    throw new RangeError(
      `audioLength ${audioLength} makes ${segmentCount(audioLength, g)} segments of ${framesForSegmentedSamples(audioLength, g)} frames in all, ` +
        `but the codes have ${scales.length} segments and ${codes.nFrames} frames; pass the length of the audio the codes were encoded from`,
    );
  }
  const { data, nQ, nFrames } = codes;
  const parts: Buffer[] = [ecdcHeader(MODEL_48K, audioLength, nQ)];
  let first = 0;
  for (const [k, frames] of segmentFramesOf(audioLength, g).entries()) {
    const scale = Buffer.alloc(4);
    scale.writeFloatBE(scales[k], 0);
    parts.push(scale);
    const body = Buffer.alloc(Math.ceil((nQ * frames * BITS) / 8));
    let acc = 0;
    let bits = 0;
    let p = 0;
    for (let t = first; t < first + frames; t++) {
      for (let q = 0; q < nQ; q++) {
        const v = data[q * nFrames + t];
        if (!(v >= 0 && v < CODEBOOK_SIZE)) {
          throw new RangeError(`code ${v} (codebook ${q}, frame ${t}) is outside [0, ${CODEBOOK_SIZE - 1}]`);
        }
        acc |= v << bits;
        bits += BITS;
        while (bits >= 8) {
          body[p++] = acc & 0xff;
          acc >>>= 8;
          bits -= 8;
        }
      }
    }
    if (bits > 0) body[p++] = acc & 0xff;
    parts.push(body.subarray(0, p));
    first += frames;
  }
  return Buffer.concat(parts);
}

/** Reads encodec_48khz's segments (scale, packed codes) after the header. */
function decodeSegmentedEcdc(buf: Buffer, start: number, al: number, nc: number, origin: string): Codes {
  const g = GEOMETRY_48K;
  const per = segmentFrames(g);
  const segments = segmentCount(al, g);
  const nFrames = framesForSegmentedSamples(al, g);
  const data = new Int16Array(nc * nFrames);
  const scales = new Float32Array(segments);
  let p = start;
  let first = 0;
  for (let k = 0; k < segments; k++) {
    const frames = Math.ceil((Math.min(al - k * g.stride, g.length) * 150) / 48000); // Meta's frame_length
    const needed = 4 + Math.ceil((frames * nc * BITS) / 8);
    if (buf.length - p < needed) {
      throw new Error(`${origin}: truncated: segment ${k} of ${segments} needs ${needed} bytes (scale and codes), ${buf.length - p} remain`);
    }
    scales[k] = buf.readFloatBE(p);
    p += 4;
    let acc = 0;
    let bits = 0;
    for (let t = first; t < first + frames; t++) {
      for (let q = 0; q < nc; q++) {
        while (bits < BITS) {
          acc |= buf[p++] << bits;
          bits += 8;
        }
        data[q * nFrames + t] = acc & (CODEBOOK_SIZE - 1);
        acc >>>= BITS;
        bits -= BITS;
      }
    }
    first += frames;
  }
  return { data, nQ: nc, nFrames, scales, segmentFrames: per };
}

/** Parses `.ecdc` bytes; throws an Error naming what is wrong (magic, version, metadata, truncation). */
export function decodeEcdc(buffer: Uint8Array, origin = '.ecdc data'): EcdcFile {
  const buf = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (buf.length < 9) throw new Error(`${origin}: too short for an ECDC header (${buf.length} bytes; the header is 9)`);
  if (buf.toString('latin1', 0, 4) !== MAGIC) {
    throw new Error(`${origin}: not an ECDC file (magic ${JSON.stringify(buf.toString('latin1', 0, 4))}, expected "ECDC")`);
  }
  const version = buf.readUInt8(4);
  if (version !== VERSION) throw new Error(`${origin}: ECDC version ${version} is not supported (only version 0)`);
  const metaLength = buf.readUInt32BE(5);
  if (9 + metaLength > buf.length) {
    throw new Error(`${origin}: truncated: the header announces ${metaLength} bytes of metadata, ${buf.length - 9} remain`);
  }
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(buf.toString('utf8', 9, 9 + metaLength)) as Record<string, unknown>;
  } catch {
    throw new Error(`${origin}: the ECDC metadata is not valid JSON`);
  }
  const { m, al, nc, lm } = meta;
  if (typeof m !== 'string') throw new Error(`${origin}: ECDC metadata lacks the model name "m"`);
  if (m !== MODEL_NAME && m !== MODEL_48K) {
    throw new Error(`${origin}: made with model '${m}'; encodec-native supports ${MODEL_NAME} (24 kHz mono) and ${MODEL_48K} (48 kHz stereo)`);
  }
  if (lm === true) {
    throw new Error(
      `${origin}: entropy-coded with Meta's language model ("lm": true), which encodec-native does not implement; ` +
        "recompress it without the language model (Meta's `encodec` command: pass --lm only when the reader has it; " +
        'or `encodec-native compress`)',
    );
  }
  if (lm !== false) throw new Error(`${origin}: ECDC metadata field "lm" must be true or false`);
  if (typeof al !== 'number' || !Number.isSafeInteger(al) || al < 1) {
    throw new Error(`${origin}: ECDC metadata "al" (audio length) must be a positive integer, got ${JSON.stringify(al)}`);
  }
  const maxCodebooks = m === MODEL_48K ? MAX_CODEBOOKS_48K : MAX_CODEBOOKS;
  if (typeof nc !== 'number' || !Number.isInteger(nc) || nc < 1 || nc > maxCodebooks) {
    throw new Error(`${origin}: ECDC metadata "nc" (codebooks) must be an integer in [1, ${maxCodebooks}], got ${JSON.stringify(nc)}`);
  }
  if (m === MODEL_48K) {
    const codes = decodeSegmentedEcdc(buf, 9 + metaLength, al, nc, origin);
    return { codes, metadata: { model: m, audioLength: al, numCodebooks: nc, lm: false } };
  }

  const nFrames = framesForSamples(al);
  const count = nFrames * nc;
  const needed = Math.ceil((count * BITS) / 8);
  const start = 9 + metaLength;
  if (buf.length - start < needed) {
    throw new Error(
      `${origin}: truncated: ${al} samples at ${nc} codebooks need ${needed} bytes of codes, ${buf.length - start} remain`,
    );
  }
  const data = new Int16Array(count);
  let acc = 0;
  let bits = 0;
  let p = start;
  for (let t = 0; t < nFrames; t++) {
    for (let q = 0; q < nc; q++) {
      while (bits < BITS) {
        acc |= buf[p++] << bits;
        bits += 8;
      }
      data[q * nFrames + t] = acc & (CODEBOOK_SIZE - 1);
      acc >>>= BITS;
      bits -= BITS;
    }
  }
  return { codes: { data, nQ: nc, nFrames }, metadata: { model: m, audioLength: al, numCodebooks: nc, lm: false } };
}

/** Writes codes to an `.ecdc` file (atomically). */
export async function writeEcdc(file: string, codes: Codes, options: { audioLength: number }): Promise<void> {
  await writeFileAtomic(file, encodeEcdc(codes, options.audioLength));
}

/** Reads an `.ecdc` file: its codes ([nQ, nFrames]) and metadata. */
export async function readEcdc(file: string): Promise<EcdcFile> {
  return decodeEcdc(await fs.promises.readFile(file), file);
}
