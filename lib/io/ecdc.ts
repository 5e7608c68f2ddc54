/**
 * `.ecdc` files, as written and read by Meta's `encodec` command line (encodec/compress.py), in the variant
 * without the entropy-coding language model (`"lm": false`).
 *
 * Layout (version 0):
 * - header `!4sBI`: magic `ECDC`, version byte 0, big-endian uint32 length N of the metadata;
 * - N bytes of UTF-8 JSON, `{"m": "encodec_24khz", "al": <audio samples>, "nc": <codebooks>, "lm": false}`;
 * - for the 24 kHz model (one segment, no scale): the codes frame by frame, for each frame each codebook in
 *   order, each value packed in 10 bits, least-significant bits first; the last partial byte is flushed.
 */
import * as fs from 'node:fs';

import { CODEBOOK_SIZE, HOP_LENGTH, MAX_CODEBOOKS, framesForSamples } from '../codec/bandwidth';
import { writeFileAtomic } from '../common/atomic';
import { Codes, checkCodes } from '../codec/codes';
import { codedError, rangeError } from '../common/errors';

const MAGIC = 'ECDC';
const VERSION = 0;
const BITS = 10; // log2(CODEBOOK_SIZE)
const MODEL_NAME = 'encodec_24khz';

/** What an `.ecdc` header says. */
export interface EcdcMetadata {
  /** Model name (`m`); only `encodec_24khz` is supported. */
  model: string;
  /** Length of the original audio in samples (`al`); decoded audio is trimmed to it. */
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
 * Serialises codes to `.ecdc` bytes. `audioLength` is the number of samples the codes were made from;
 * it must need exactly `codes.nFrames` frames (ceil(audioLength / 320)).
 */
export function encodeEcdc(codes: Codes, audioLength: number): Buffer {
  checkCodes(codes);
  if (!Number.isSafeInteger(audioLength) || audioLength < 1) {
    throw rangeError(`audioLength must be a positive integer number of samples, got ${String(audioLength)}`);
  }
  if (framesForSamples(audioLength) !== codes.nFrames) {
    throw rangeError(
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
        throw rangeError(`code ${v} (codebook ${q}, frame ${t}) is outside [0, ${CODEBOOK_SIZE - 1}]`);
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

/** Parses `.ecdc` bytes; throws an Error naming what is wrong (magic, version, metadata, truncation). */
export function decodeEcdc(buffer: Uint8Array, origin = '.ecdc data'): EcdcFile {
  const buf = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (buf.length < 9) throw codedError('ENCODEC_FILE_FORMAT', `${origin}: too short for an ECDC header (${buf.length} bytes; the header is 9)`);
  if (buf.toString('latin1', 0, 4) !== MAGIC) {
    throw codedError('ENCODEC_FILE_FORMAT', `${origin}: not an ECDC file (magic ${JSON.stringify(buf.toString('latin1', 0, 4))}, expected "ECDC")`);
  }
  const version = buf.readUInt8(4);
  if (version !== VERSION) throw codedError('ENCODEC_FILE_FORMAT', `${origin}: ECDC version ${version} is not supported (only version 0)`);
  const metaLength = buf.readUInt32BE(5);
  if (9 + metaLength > buf.length) {
    throw codedError('ENCODEC_FILE_FORMAT', `${origin}: truncated: the header announces ${metaLength} bytes of metadata, ${buf.length - 9} remain`);
  }
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(buf.toString('utf8', 9, 9 + metaLength)) as Record<string, unknown>;
  } catch {
    throw codedError('ENCODEC_FILE_FORMAT', `${origin}: the ECDC metadata is not valid JSON`);
  }
  const { m, al, nc, lm } = meta;
  if (typeof m !== 'string') throw codedError('ENCODEC_FILE_FORMAT', `${origin}: ECDC metadata lacks the model name "m"`);
  if (m !== MODEL_NAME) {
    throw codedError('ENCODEC_FILE_FORMAT', `${origin}: made with model '${m}'; encodec-native supports ${MODEL_NAME} only (24 kHz mono)`);
  }
  if (lm === true) {
    throw codedError('ENCODEC_FILE_FORMAT', 
      `${origin}: entropy-coded with Meta's language model ("lm": true), which encodec-native does not implement; ` +
        "recompress it without the language model (Meta's `encodec` command: pass --lm only when the reader has it; " +
        'or `encodec-native compress`)',
    );
  }
  if (lm !== false) throw codedError('ENCODEC_FILE_FORMAT', `${origin}: ECDC metadata field "lm" must be true or false`);
  if (typeof al !== 'number' || !Number.isSafeInteger(al) || al < 1) {
    throw codedError('ENCODEC_FILE_FORMAT', `${origin}: ECDC metadata "al" (audio length) must be a positive integer, got ${JSON.stringify(al)}`);
  }
  if (typeof nc !== 'number' || !Number.isInteger(nc) || nc < 1 || nc > MAX_CODEBOOKS) {
    throw codedError('ENCODEC_FILE_FORMAT', `${origin}: ECDC metadata "nc" (codebooks) must be an integer in [1, ${MAX_CODEBOOKS}], got ${JSON.stringify(nc)}`);
  }

  const nFrames = framesForSamples(al);
  const count = nFrames * nc;
  const needed = Math.ceil((count * BITS) / 8);
  const start = 9 + metaLength;
  if (buf.length - start < needed) {
    throw codedError('ENCODEC_FILE_FORMAT', 
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
