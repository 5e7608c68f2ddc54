/**
 * `.ecdc` files, as written and read by Meta's `encodec` command line (encodec/compress.py and encodec/binary.py),
 * with or without the entropy-coding language model (`"lm": true`, Meta's `encodec --lm`).
 *
 * Layout (version 0):
 * - header `!4sBI`: magic `ECDC`, version byte 0, big-endian uint32 length N of the metadata;
 * - N bytes of UTF-8 JSON, `{"m": <model>, "al": <audio samples>, "nc": <codebooks>, "lm": <bool>}`;
 * - then each segment (encodec_24khz: one segment, the whole file; encodec_48khz: 1 s segments every 0.99 s):
 *   for encodec_48khz the segment's scale as a big-endian float32, then its codes frame by frame, for each frame
 *   each codebook in order: without the LM each value packed in 10 bits, least-significant bits first, the last
 *   partial byte flushed; with the LM arithmetic-coded (lib/lm/lm.ts, native/arith_coder.h) and flushed.
 */
import * as fs from 'node:fs';

import { writeFileAtomic } from '../common/atomic';
import { CODEBOOK_SIZE, HOP_LENGTH, framesForSamples } from '../codec/bandwidth';
import { concatCodes } from '../codec/code-frames';
import { Codes, checkCodes } from '../codec/codes';
import { EncodecLm } from '../lm/lm';
import { SegmentGeometry, segmentFramesOf } from '../codec/segments';
import { DEFAULT_FAMILY, FAMILIES, isSegmentedFamily } from '../model/family';
import { typeError, rangeError } from '../common/errors';

const MAGIC = 'ECDC';
const VERSION = 0;
const BITS = 10; // log2(CODEBOOK_SIZE)

/** Meta's EncodecModel attributes that shape a file: segments (segment, overlap) and their scales (normalize). */
interface ModelGeometry {
  /** Segmented models: Meta's segments (lib/codec/segments.ts); absent: the whole file is one segment. */
  segments?: SegmentGeometry;
  /** Frames of a full segment. */
  segmentFrames?: number;
  /** Codebooks at the highest bandwidth. */
  maxCodebooks: number;
}

/** Each family's geometry (lib/model/family.ts), by the name an `.ecdc` header gives (`m`). */
const MODELS: Record<string, ModelGeometry> = Object.fromEntries(FAMILIES.map((f): [string, ModelGeometry] => [f.name, {
  ...(f.segment && {
    segments: { length: f.segment.length, stride: f.segment.stride, hop: f.hopLength, channels: f.channels },
    segmentFrames: f.segment.frames,
  }),
  maxCodebooks: f.maxCodebooks,
}]));

/** The models an `.ecdc` file can name. */
export const ECDC_MODELS: readonly string[] = Object.freeze(Object.keys(MODELS));

/** What an `.ecdc` header says. */
export interface EcdcMetadata {
  /** Model name (`m`): encodec_24khz or encodec_48khz. */
  model: string;
  /** Length of the original audio in samples (`al`); decoded audio is trimmed to it. */
  audioLength: number;
  /** Number of codebooks (`nc`). */
  numCodebooks: number;
  /** Whether the codes are entropy-coded with Meta's language model (`lm`). */
  lm: boolean;
}

/**
 * An `.ecdc` file's content. For encodec_48khz the codes of all segments follow each other (ecdcSegmentFrames
 * gives their frames: 150 each but the last two), with `scales` (one per segment) and `segmentFrames` (150).
 */
export interface EcdcFile {
  codes: Codes;
  metadata: EcdcMetadata;
}

/** An error in an `.ecdc` file's content, with a stable `code`. */
export class EcdcError extends Error {
  constructor(message: string, readonly code: 'ECDC_INVALID' | 'ECDC_TRUNCATED' | 'ECDC_DESYNC' | 'ECDC_NEEDS_LM' | 'ECDC_WRONG_MODEL') {
    super(message);
    this.name = 'EcdcError';
  }

  /** Command-line exit status: 2 when the fix is another argument (the LM or model to pass), else 1. */
  get exitCode(): number {
    return this.code === 'ECDC_NEEDS_LM' || this.code === 'ECDC_WRONG_MODEL' ? 2 : 1;
  }
}

function geometry(model: string): ModelGeometry {
  const g = MODELS[model];
  if (!g) throw rangeError(`unknown .ecdc model '${model}'; Meta's files name ${ECDC_MODELS.join(' or ')}`);
  return g;
}

/**
 * Frames of each segment of a file of `audioLength` samples (per channel), as Meta's decompress_from_file computes
 * them: ceil(min(al - offset, segment) * frame_rate / sample_rate) = ceil(min(al - offset, segment) / 320).
 */
export function ecdcSegmentFrames(model: string, audioLength: number): number[] {
  const g = geometry(model);
  return g.segments ? segmentFramesOf(audioLength, g.segments) : [framesForSamples(audioLength)];
}

/** The `.ecdc` model name the codes were made with: encodec_48khz when they carry per-segment scales. */
function modelOfCodes(codes: Codes, model?: string): string {
  // without a name: the first family that segments as the codes do (with scales: segmented)
  const name = model ?? (FAMILIES.find((f) => isSegmentedFamily(f) === (codes.scales !== undefined)) ?? DEFAULT_FAMILY).name;
  geometry(name);
  return name;
}

function checkAudioLength(audioLength: unknown): asserts audioLength is number {
  if (typeof audioLength !== 'number' || !Number.isSafeInteger(audioLength) || audioLength < 1) {
    throw rangeError(`audioLength must be a positive integer number of samples, got ${String(audioLength)}`);
  }
}

/** Splits codes into their segments (with scales), checking they are what `audioLength` samples give. */
function segmentsOf(codes: Codes, audioLength: number, model: string): { codes: Codes; scale?: number }[] {
  checkCodes(codes);
  checkAudioLength(audioLength);
  const g = geometry(model);
  const frames = ecdcSegmentFrames(model, audioLength);
  const total = frames.reduce((a, b) => a + b, 0);
  if (g.segments && (total !== codes.nFrames || codes.scales?.length !== frames.length)) {
    throw rangeError(
      `audioLength ${audioLength} makes ${frames.length} segments of ${total} frames in all, but the codes have ` +
        `${codes.scales?.length ?? 0} segments and ${codes.nFrames} frames; pass the length of the audio the codes were encoded from`,
    );
  }
  if (total !== codes.nFrames) {
    throw rangeError(
      `audioLength ${audioLength} needs ${total} frames (ceil(${audioLength} / ${HOP_LENGTH})), but the codes have ` +
        `${codes.nFrames}; pass the length of the audio the codes were encoded from`,
    );
  }
  if (codes.nQ > g.maxCodebooks) throw rangeError(`codes have ${codes.nQ} codebooks; ${model} has at most ${g.maxCodebooks}`);
  for (let i = 0; i < codes.data.length; i++) {
    const v = codes.data[i];
    if (!(v >= 0 && v < CODEBOOK_SIZE)) {
      const q = Math.floor(i / codes.nFrames);
      throw rangeError(`code ${v} (codebook ${q}, frame ${i - q * codes.nFrames}) is outside [0, ${CODEBOOK_SIZE - 1}]`);
    }
  }
  if (!g.segments) return [{ codes }];
  const { scales, segmentFrames } = codes;
  if (!(scales instanceof Float32Array) || scales.length !== frames.length) {
    throw rangeError(`${model} codes need one scale per segment (${frames.length}), got ${scales ? scales.length : 'none'}`);
  }
  if (segmentFrames !== undefined && segmentFrames !== g.segmentFrames) {
    throw rangeError(`${model} segments have ${String(g.segmentFrames)} frames, the codes say ${segmentFrames}`);
  }
  const out: { codes: Codes; scale?: number }[] = [];
  let start = 0;
  for (let k = 0; k < frames.length; k++) {
    const n = frames[k];
    const data = new Int16Array(codes.nQ * n);
    for (let q = 0; q < codes.nQ; q++) data.set(codes.data.subarray(q * codes.nFrames + start, q * codes.nFrames + start + n), q * n);
    out.push({ codes: { data, nQ: codes.nQ, nFrames: n }, scale: scales[k] });
    start += n;
  }
  return out;
}

/** Joins segments' codes (and scales) into one Codes, as the codec takes them. */
function joinSegments(model: string, segments: Codes[], scales: number[]): Codes {
  if (segments.length === 1 && !geometry(model).segments) return segments[0];
  const { data, nQ, nFrames } = concatCodes(segments);
  const codes: Codes = { data, nQ, nFrames };
  if (geometry(model).segments) {
    codes.scales = Float32Array.from(scales);
    codes.segmentFrames = geometry(model).segmentFrames;
  }
  return codes;
}

function headerBytes(model: string, audioLength: number, nc: number, lm: boolean): Buffer {
  // Python's json.dumps spacing, so files are byte-identical to Meta's.
  const json = Buffer.from(`{"m": "${model}", "al": ${audioLength}, "nc": ${nc}, "lm": ${lm ? 'true' : 'false'}}`, 'utf8');
  const header = Buffer.alloc(9);
  header.write(MAGIC, 0, 'latin1');
  header.writeUInt8(VERSION, 4);
  header.writeUInt32BE(json.length, 5);
  return Buffer.concat([header, json]);
}

function scaleBytes(scale: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatBE(scale, 0);
  return b;
}

/** 10-bit packing of one segment's codes, frame by frame (Meta's BitPacker, flushed at the end). */
function packCodes({ data, nQ, nFrames }: Codes): Buffer {
  const body = Buffer.alloc(Math.ceil((nQ * nFrames * BITS) / 8));
  let acc = 0;
  let bits = 0;
  let p = 0;
  for (let t = 0; t < nFrames; t++) {
    for (let q = 0; q < nQ; q++) {
      acc |= data[q * nFrames + t] << bits;
      bits += BITS;
      while (bits >= 8) {
        body[p++] = acc & 0xff;
        acc >>>= 8;
        bits -= 8;
      }
    }
  }
  if (bits > 0) body[p++] = acc & 0xff;
  return body.subarray(0, p);
}

/**
 * Serialises codes to `.ecdc` bytes without the LM. `audioLength` is the number of samples the codes were made
 * from (per channel); it must need exactly `codes.nFrames` frames. The model is encodec_48khz for codes with
 * per-segment scales, else encodec_24khz (or `options.model`).
 */
export function encodeEcdc(codes: Codes, audioLength: number, options: { model?: string } = {}): Buffer {
  const model = modelOfCodes(codes, options.model);
  const segments = segmentsOf(codes, audioLength, model);
  const parts = [headerBytes(model, audioLength, codes.nQ, false)];
  for (const s of segments) {
    if (s.scale !== undefined) parts.push(scaleBytes(s.scale));
    parts.push(packCodes(s.codes));
  }
  return Buffer.concat(parts);
}

/**
 * Serialises codes to `.ecdc` bytes entropy-coded with Meta's language model (`"lm": true`), byte-identical to
 * Meta's `compress(..., use_lm=True)` where the LM computes the same probabilities (same machine and torch).
 */
export async function encodeEcdcLm(codes: Codes, audioLength: number, lm: EncodecLm, options: { model?: string } = {}): Promise<Buffer> {
  const model = modelOfCodes(codes, options.model);
  const segments = segmentsOf(codes, audioLength, model);
  checkLm(lm, model, codes.nQ, 'the codes');
  const payloads = await lm.compressSegments(segments.map((s) => s.codes));
  const parts = [headerBytes(model, audioLength, codes.nQ, true)];
  segments.forEach((s, i) => {
    if (s.scale !== undefined) parts.push(scaleBytes(s.scale));
    parts.push(Buffer.from(payloads[i].buffer, payloads[i].byteOffset, payloads[i].byteLength));
  });
  return Buffer.concat(parts);
}

function checkLm(lm: EncodecLm, model: string, nc: number, origin: string): void {
  if (!(lm instanceof EncodecLm)) throw typeError('lm must be an EncodecLm (EncodecLm.load(path))');
  if (lm.codec !== model) {
    throw new EcdcError(
      `${origin} ${origin === 'the codes' ? 'are' : 'is'} for ${model}, but the LM '${lm.lmPath}' belongs to ${lm.codec}; ` +
        `pass the LM of ${model} (encodec_lm_${model.replace('encodec_', '')}.pt)`,
      'ECDC_WRONG_MODEL',
    );
  }
  if (nc > lm.info.n_q) throw new EcdcError(`${origin} has ${nc} codebooks; the LM codes at most ${lm.info.n_q}`, 'ECDC_INVALID');
}

/** Parses an `.ecdc` header: the metadata and where the segments begin. Throws an EcdcError naming the problem. */
export function parseEcdcHeader(buffer: Uint8Array, origin = '.ecdc data'): { metadata: EcdcMetadata; start: number } {
  const buf = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  if (buf.length < 9) throw new EcdcError(`${origin}: too short for an ECDC header (${buf.length} bytes; the header is 9)`, 'ECDC_TRUNCATED');
  if (buf.toString('latin1', 0, 4) !== MAGIC) {
    throw new EcdcError(`${origin}: not an ECDC file (magic ${JSON.stringify(buf.toString('latin1', 0, 4))}, expected "ECDC")`, 'ECDC_INVALID');
  }
  const version = buf.readUInt8(4);
  if (version !== VERSION) throw new EcdcError(`${origin}: ECDC version ${version} is not supported (only version 0)`, 'ECDC_INVALID');
  const metaLength = buf.readUInt32BE(5);
  if (9 + metaLength > buf.length) {
    throw new EcdcError(`${origin}: truncated: the header announces ${metaLength} bytes of metadata, ${buf.length - 9} remain`, 'ECDC_TRUNCATED');
  }
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(buf.toString('utf8', 9, 9 + metaLength)) as Record<string, unknown>;
  } catch {
    throw new EcdcError(`${origin}: the ECDC metadata is not valid JSON`, 'ECDC_INVALID');
  }
  const { m, al, nc, lm } = meta ?? {};
  if (typeof m !== 'string') throw new EcdcError(`${origin}: ECDC metadata lacks the model name "m"`, 'ECDC_INVALID');
  if (!(m in MODELS)) {
    throw new EcdcError(`${origin}: made with model '${m}'; .ecdc files of ${ECDC_MODELS.join(' and ')} are supported`, 'ECDC_INVALID');
  }
  if (lm !== true && lm !== false) throw new EcdcError(`${origin}: ECDC metadata field "lm" must be true or false`, 'ECDC_INVALID');
  if (typeof al !== 'number' || !Number.isSafeInteger(al) || al < 1) {
    throw new EcdcError(`${origin}: ECDC metadata "al" (audio length) must be a positive integer, got ${JSON.stringify(al)}`, 'ECDC_INVALID');
  }
  const maxCodebooks = MODELS[m].maxCodebooks;
  if (typeof nc !== 'number' || !Number.isInteger(nc) || nc < 1 || nc > maxCodebooks) {
    throw new EcdcError(`${origin}: ECDC metadata "nc" (codebooks) must be an integer in [1, ${maxCodebooks}] for ${m}, got ${JSON.stringify(nc)}`, 'ECDC_INVALID');
  }
  return { metadata: { model: m, audioLength: al, numCodebooks: nc, lm }, start: 9 + metaLength };
}

/** Parses `.ecdc` bytes written without the LM; throws an EcdcError naming what is wrong (an LM file included). */
export function decodeEcdc(buffer: Uint8Array, origin = '.ecdc data'): EcdcFile {
  const { metadata, start } = parseEcdcHeader(buffer, origin);
  if (metadata.lm) {
    throw new EcdcError(
      `${origin}: entropy-coded with Meta's language model ("lm": true); it needs the LM of ${metadata.model}: ` +
        'read it with readEcdc(file, { lm }) / decodeEcdcLm, or on the command line pass --lm-model FILE ' +
        '(default: beside the model; `encodec-native model fetch` gets it)',
      'ECDC_NEEDS_LM',
    );
  }
  const buf = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const { audioLength: al, numCodebooks: nc, model } = metadata;
  const g = geometry(model);
  const frames = ecdcSegmentFrames(model, al);
  const needed = frames.reduce((a, n) => a + (g.segments ? 4 : 0) + Math.ceil((n * nc * BITS) / 8), 0);
  if (!g.segments && buf.length - start < needed) {
    throw new EcdcError(
      `${origin}: truncated: ${al} samples at ${nc} codebooks need ${needed} bytes of codes, ${buf.length - start} remain`,
      'ECDC_TRUNCATED',
    );
  }
  const segments: Codes[] = [];
  const scales: number[] = [];
  let p = start;
  for (const [k, nFrames] of frames.entries()) {
    const segmentBytes = 4 + Math.ceil((nFrames * nc * BITS) / 8);
    if (g.segments && buf.length - p < segmentBytes) {
      throw new EcdcError(
        `${origin}: truncated: segment ${k} of ${frames.length} needs ${segmentBytes} bytes (scale and codes), ${buf.length - p} remain`,
        'ECDC_TRUNCATED',
      );
    }
    if (g.segments) {
      scales.push(buf.readFloatBE(p));
      p += 4;
    }
    const data = new Int16Array(nFrames * nc);
    let acc = 0;
    let bits = 0;
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
    segments.push({ data, nQ: nc, nFrames });
  }
  return { codes: joinSegments(model, segments, scales), metadata };
}

/**
 * Parses `.ecdc` bytes, LM-coded or not (`lm` is used only for `"lm": true` files). Rejects with an EcdcError:
 * code 'ECDC_DESYNC' when the coded stream cannot be decoded with this LM (it ends early, holds a value no
 * code's range covers, does not end the way Meta's encoder ends one, or is followed by extra bytes): a damaged
 * file, another LM, or an LM that computes slightly different probabilities on this machine (docs/ecdc.md).
 */
export async function decodeEcdcLm(buffer: Uint8Array, lm: EncodecLm, origin = '.ecdc data'): Promise<EcdcFile> {
  const { metadata, start } = parseEcdcHeader(buffer, origin);
  if (!metadata.lm) return decodeEcdc(buffer, origin);
  checkLm(lm, metadata.model, metadata.numCodebooks, origin);
  const g = geometry(metadata.model);
  const frames = ecdcSegmentFrames(metadata.model, metadata.audioLength);
  const body = buffer.subarray(start);
  let decoded;
  try {
    decoded = await lm.decompressSegments(body, metadata.numCodebooks, frames, g.segments ? 4 : 0);
  } catch (err) {
    if ((err as { code?: string }).code === 'ECDC_DESYNC') {
      throw new EcdcError(`${origin}: ${(err as Error).message}. ${DESYNC_HINT}`, 'ECDC_DESYNC');
    }
    throw err;
  }
  if (decoded.end !== body.length) {
    throw new EcdcError(
      `${origin}: ${body.length - decoded.end} bytes follow the last coded segment: the stream was decoded out of step. ${DESYNC_HINT}`,
      'ECDC_DESYNC',
    );
  }
  const view = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const scales = g.segments ? decoded.offsets.map((o) => view.readFloatBE(o)) : [];
  return { codes: joinSegments(metadata.model, decoded.codes, scales), metadata };
}

const DESYNC_HINT =
  'The file is damaged or truncated, or was written with another LM, or with one that computes slightly different ' +
  'probabilities (another CPU kind or a GPU: see docs/ecdc.md); nothing was decoded';

/** Writes codes to an `.ecdc` file (atomically), entropy-coded when `options.lm` is given. */
export async function writeEcdc(file: string, codes: Codes, options: { audioLength: number; lm?: EncodecLm; model?: string }): Promise<void> {
  const bytes = options.lm
    ? await encodeEcdcLm(codes, options.audioLength, options.lm, { model: options.model })
    : encodeEcdc(codes, options.audioLength, { model: options.model });
  await writeFileAtomic(file, bytes);
}

/**
 * Reads an `.ecdc` file: its codes ([nQ, nFrames]) and metadata. LM-coded files need `options.lm`, an EncodecLm
 * or a function that loads one once the header has said which codec the file belongs to.
 */
export async function readEcdc(
  file: string,
  options: { lm?: EncodecLm | ((metadata: EcdcMetadata) => Promise<EncodecLm>) } = {},
): Promise<EcdcFile> {
  const buffer = await fs.promises.readFile(file);
  const { metadata } = parseEcdcHeader(buffer, file);
  if (!metadata.lm) return decodeEcdc(buffer, file);
  if (!options.lm) return decodeEcdc(buffer, file); // throws the ECDC_NEEDS_LM error
  if (options.lm instanceof EncodecLm) return decodeEcdcLm(buffer, options.lm, file);
  const lm = await options.lm(metadata);
  try {
    return await decodeEcdcLm(buffer, lm, file);
  } finally {
    lm.dispose();
  }
}
