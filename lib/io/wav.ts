/**
 * WAV files: reading RIFF/WAVE (PCM 8/16/24/32-bit, IEEE float 32/64, WAVE_FORMAT_EXTENSIBLE, any number of
 * channels) and writing mono or multi-channel 16-bit PCM or 32-bit float WAV, atomically.
 *
 * Reading walks the RIFF chunks: chunks other than `fmt ` and `data` (`LIST`, `fact`, `bext`, ...) are
 * skipped, odd-sized chunks are followed by their pad byte, and a `data` chunk whose size is 0 or 0xFFFFFFFF
 * (written by a program streaming to a pipe, such as ffmpeg) or larger than the file extends to the end of
 * the file. A trailing partial frame is ignored.
 *
 * Samples are converted to floats in [-1, 1]: integer PCM is divided by its full scale (8-bit, which is
 * unsigned, is centred first: `(b - 128) / 128`; 16-bit `v / 32768`; 24-bit `v / 2^23`; 32-bit `v / 2^31`),
 * the same conversion ffmpeg makes. Float files are passed through (values beyond ±1 are kept).
 *
 * RF64, RIFX (big-endian) and compressed encodings (A-law, µ-law, ADPCM, ...) are not read here; ffmpeg
 * reads those (see `loadAudio`).
 *
 * Why not an npm WAV package: `loadAudio` streams hour-long WAV files in blocks from their data offset
 * (`probeWav` + `decodeWavFrames`), while the npm WAV packages (wavefile, node-wav) decode whole buffers in memory.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';

import { writeFileAtomic } from '../common/atomic';
import { codedError, rangeError } from '../common/errors';
import { readDecoded } from './read-source';

/** How the samples of a WAV file are stored. */
export interface WavFormat {
  /** `'pcm'` (integer) or `'float'` (IEEE 754). */
  encoding: 'pcm' | 'float';
  /** True for IEEE float samples (same as `encoding === 'float'`). */
  float: boolean;
  /** Bits per sample of the container: 8, 16, 24 or 32 for PCM; 32 or 64 for float. */
  bitsPerSample: number;
  /** Bytes per frame (one sample of every channel). */
  blockAlign: number;
  /** The `fmt ` chunk's format tag: 1 (PCM), 3 (IEEE float) or 0xFFFE (WAVE_FORMAT_EXTENSIBLE). */
  formatTag: number;
  /** True for WAVE_FORMAT_EXTENSIBLE files. */
  extensible: boolean;
  /** Significant bits per sample (extensible files may declare fewer than `bitsPerSample`). */
  validBitsPerSample: number;
  /** Speaker positions bit mask of extensible files (0 when not given). */
  channelMask: number;
}

/** Layout of a WAV file, found from its headers alone. */
export interface WavInfo {
  /** Frames per second. */
  sampleRate: number;
  /** Number of channels. */
  channels: number;
  /** Sample encoding. */
  format: WavFormat;
  /** Byte offset of the first sample in the file. */
  dataOffset: number;
  /** Bytes of sample data (whole frames only). */
  dataLength: number;
  /** Number of frames (samples per channel). */
  frames: number;
  /**
   * Frames the header's data size promises, when that is more than the file holds (a file cut short: a copy or
   * download that stopped); absent otherwise, and for the unknown-length sizes streaming writers put there.
   */
  declaredFrames?: number;
  /** Length in seconds (`frames / sampleRate`). */
  duration: number;
}

/** A decoded WAV file. */
export interface WavAudio {
  /** Frames per second. */
  sampleRate: number;
  /** Number of channels (`samples.length`). */
  channels: number;
  /** One array per channel, floats nominally in [-1, 1]. */
  samples: Float32Array[];
  /** Sample encoding of the file. */
  format: WavFormat;
  /** Length in seconds. */
  duration: number;
}

/** Options for {@link encodeWav} / {@link writeWav}. */
export interface WavWriteOptions {
  /** Frames per second (a positive integer). */
  sampleRate: number;
  /** `'pcm16'` (default): 16-bit integer PCM; `'float32'`: 32-bit IEEE float. */
  format?: 'pcm16' | 'float32';
}

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_IEEE_FLOAT = 3;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** Bytes 2..15 of the KSDATAFORMAT_SUBTYPE_PCM / _IEEE_FLOAT GUIDs (the first two are the format tag). */
const GUID_TAIL = Buffer.from([0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71]);

/* ------------------------------------------------------------------------------------------------------ */
/* Header walk: a generator that asks for byte ranges, so the same code serves buffers and files.          */

type ReadRequest = { offset: number; length: number };

/** Data sizes from this up are placeholders of writers that could not seek back (sox to a pipe writes 0x7ffff000). */
const UNKNOWN_DATA_SIZE = 0x7ffff000;

function* walkWav(fileSize: number): Generator<ReadRequest, WavInfo, Buffer> {
  if (fileSize < 12) throw codedError('ENCODEC_FILE_FORMAT', 'not a WAV file (too short)');
  const riff = yield { offset: 0, length: 12 };
  const id = riff.toString('latin1', 0, 4);
  if (id === 'RF64' || id === 'RIFX') throw codedError('ENCODEC_FILE_FORMAT', `${id} WAV files are not supported here (ffmpeg reads them)`);
  if (id !== 'RIFF' || riff.toString('latin1', 8, 12) !== 'WAVE') throw codedError('ENCODEC_FILE_FORMAT', 'not a WAV file (no RIFF/WAVE header)');
  let format: WavFormat | undefined;
  let sampleRate = 0;
  let channels = 0;
  let pos = 12;
  while (pos + 8 <= fileSize) {
    const head = yield { offset: pos, length: 8 };
    const chunkId = head.toString('latin1', 0, 4);
    const size = head.readUInt32LE(4);
    const body = pos + 8;
    if (chunkId === 'fmt ') {
      if (size < 16 || body + size > fileSize) throw codedError('ENCODEC_FILE_FORMAT', `bad WAV 'fmt ' chunk (${size} bytes)`);
      ({ format, sampleRate, channels } = parseFmt(yield { offset: body, length: Math.min(size, 40) }));
    } else if (chunkId === 'data') {
      if (!format) throw codedError('ENCODEC_FILE_FORMAT', "WAV 'data' chunk comes before the 'fmt ' chunk");
      // 0, 0xffffffff and sox's / espeak-ng's 0x7ffff000 (written to a pipe) mean "to the end of the file"
      const unknownLength = size === 0 || size >= UNKNOWN_DATA_SIZE;
      const toEnd = unknownLength || body + size > fileSize;
      const bytes = toEnd ? fileSize - body : size;
      const frames = Math.floor(bytes / format.blockAlign);
      const declared = Math.floor(size / format.blockAlign);
      return {
        sampleRate,
        channels,
        format,
        dataOffset: body,
        dataLength: frames * format.blockAlign,
        frames,
        duration: frames / sampleRate,
        ...(!unknownLength && declared > frames ? { declaredFrames: declared } : {}),
      };
    }
    pos = body + size + (size & 1);
  }
  throw codedError('ENCODEC_FILE_FORMAT', format ? "WAV file has no 'data' chunk" : "WAV file has no 'fmt ' chunk");
}

function parseFmt(fmt: Buffer): { format: WavFormat; sampleRate: number; channels: number } {
  let tag = fmt.readUInt16LE(0);
  const channels = fmt.readUInt16LE(2);
  const sampleRate = fmt.readUInt32LE(4);
  const blockAlign = fmt.readUInt16LE(12);
  const bits = fmt.readUInt16LE(14);
  let validBits = bits;
  let channelMask = 0;
  const extensible = tag === WAVE_FORMAT_EXTENSIBLE;
  if (extensible) {
    if (fmt.length < 40) throw codedError('ENCODEC_FILE_FORMAT', 'bad WAVE_FORMAT_EXTENSIBLE header (fmt chunk shorter than 40 bytes)');
    validBits = fmt.readUInt16LE(18) || bits;
    channelMask = fmt.readUInt32LE(20);
    tag = fmt.readUInt16LE(24);
    if (!fmt.subarray(26, 40).equals(GUID_TAIL)) throw codedError('ENCODEC_FILE_FORMAT', 'unsupported WAVE_FORMAT_EXTENSIBLE sub-format (unknown GUID)');
  }
  const name = ({ 2: 'MS ADPCM', 6: 'A-law', 7: 'µ-law', 0x11: 'IMA ADPCM', 0x55: 'MP3' } as Record<number, string>)[tag];
  if (tag !== WAVE_FORMAT_PCM && tag !== WAVE_FORMAT_IEEE_FLOAT) {
    throw codedError('ENCODEC_FILE_FORMAT', `unsupported WAV encoding (format tag ${tag}${name ? `: ${name}` : ''}); only PCM and IEEE float are read here`);
  }
  const float = tag === WAVE_FORMAT_IEEE_FLOAT;
  const okBits = float ? [32, 64] : [8, 16, 24, 32];
  if (!okBits.includes(bits)) throw codedError('ENCODEC_FILE_FORMAT', `unsupported WAV sample size: ${bits}-bit ${float ? 'float' : 'PCM'}`);
  if (channels < 1) throw codedError('ENCODEC_FILE_FORMAT', 'bad WAV header: 0 channels');
  if (sampleRate < 1) throw codedError('ENCODEC_FILE_FORMAT', 'bad WAV header: sample rate 0');
  if (blockAlign !== channels * (bits / 8)) {
    throw codedError('ENCODEC_FILE_FORMAT', `bad WAV header: block align ${blockAlign} for ${channels} channels of ${bits} bits`);
  }
  const format: WavFormat = {
    encoding: float ? 'float' : 'pcm',
    float,
    bitsPerSample: bits,
    blockAlign,
    formatTag: extensible ? WAVE_FORMAT_EXTENSIBLE : tag,
    extensible,
    validBitsPerSample: validBits,
    channelMask,
  };
  return { format, sampleRate, channels };
}

function runWalkSync(buf: Buffer): WavInfo {
  const walk = walkWav(buf.length);
  let step = walk.next(Buffer.alloc(0));
  while (!step.done) {
    const { offset, length } = step.value;
    step = walk.next(buf.subarray(offset, offset + length));
  }
  return step.value;
}

/**
 * Reads the layout of a WAV file (rate, channels, encoding, where the samples are) from its headers,
 * without reading the samples.
 *
 * @throws Error naming the problem (`not a WAV file (no RIFF/WAVE header)`, `unsupported WAV encoding ...`),
 *   prefixed with the path; file-system errors (ENOENT, ...) unchanged
 */
export async function probeWav(file: string): Promise<WavInfo> {
  const handle = await fs.promises.open(file, 'r');
  try {
    const { size } = await handle.stat();
    const walk = walkWav(size);
    let step = walk.next(Buffer.alloc(0));
    while (!step.done) {
      const { offset, length } = step.value;
      const chunk = Buffer.alloc(length);
      const { bytesRead } = await handle.read(chunk, 0, length, offset);
      step = walk.next(chunk.subarray(0, bytesRead));
    }
    return step.value;
  } catch (err) {
    if (err instanceof Error && !(err as NodeJS.ErrnoException).code) err.message = `${file}: ${err.message}`;
    throw err;
  } finally {
    await handle.close();
  }
}

/* ------------------------------------------------------------------------------------------------------ */
/* Samples                                                                                                 */

/**
 * Converts whole frames of interleaved sample bytes to one float array per channel.
 *
 * @param bytes sample data (a whole number of frames; any trailing partial frame is ignored)
 */
export function decodeWavFrames(bytes: Uint8Array, format: WavFormat, channels: number): Float32Array[] {
  const frames = Math.floor(bytes.byteLength / format.blockAlign);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Float32Array[] = [];
  const width = format.bitsPerSample / 8;
  for (let c = 0; c < channels; c++) {
    const ch = new Float32Array(frames);
    let p = c * width;
    const step = format.blockAlign;
    if (format.float) {
      if (width === 4) for (let i = 0; i < frames; i++, p += step) ch[i] = view.getFloat32(p, true);
      else for (let i = 0; i < frames; i++, p += step) ch[i] = view.getFloat64(p, true);
    } else if (width === 1) {
      for (let i = 0; i < frames; i++, p += step) ch[i] = (bytes[p] - 128) / 128;
    } else if (width === 2) {
      for (let i = 0; i < frames; i++, p += step) ch[i] = view.getInt16(p, true) / 32768;
    } else if (width === 3) {
      for (let i = 0; i < frames; i++, p += step) {
        ch[i] = ((bytes[p] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16)) << 8 >> 8) / 8388608;
      }
    } else {
      for (let i = 0; i < frames; i++, p += step) ch[i] = view.getInt32(p, true) / 2147483648;
    }
    out.push(ch);
  }
  return out;
}

/**
 * Averages channels into one (mono) channel: `(c0 + c1 + ... ) / channels`, summed in double precision.
 * A single channel is returned as is (not copied).
 *
 * @throws RangeError if there are no channels or they differ in length
 */
export function downmix(channels: readonly Float32Array[]): Float32Array {
  if (channels.length === 0) throw rangeError('downmix: no channels');
  if (channels.length === 1) return channels[0];
  const n = channels[0].length;
  if (channels.some((c) => c.length !== n)) throw rangeError('downmix: channels differ in length');
  const out = new Float32Array(n);
  const k = channels.length;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < k; c++) sum += channels[c][i];
    out[i] = sum / k;
  }
  return out;
}

/**
 * Decodes a WAV file held in memory.
 *
 * @throws Error naming the problem (`not a WAV file ...`, `unsupported WAV encoding ...`, ...)
 */
export function decodeWav(buffer: Uint8Array): WavAudio {
  const buf = Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const info = runWalkSync(buf);
  const samples = decodeWavFrames(buf.subarray(info.dataOffset, info.dataOffset + info.dataLength), info.format, info.channels);
  return { sampleRate: info.sampleRate, channels: info.channels, samples, format: info.format, duration: info.duration };
}

/**
 * Reads a WAV file (or a buffer holding one). See the module notes for what is supported.
 *
 * @param source path of the file, or its bytes
 * @throws Error as {@link decodeWav}, prefixed with the path; file-system errors (ENOENT, ...) unchanged
 */
export async function readWav(source: string | Uint8Array): Promise<WavAudio> {
  return readDecoded(source, decodeWav);
}

/* ------------------------------------------------------------------------------------------------------ */
/* Writing                                                                                                 */

/**
 * Encodes samples as a WAV file.
 *
 * - `'pcm16'` (default): each sample `x` becomes `round(x * 32768)` clipped to [-32768, 32767], so the
 *   representable range is [-1, 1 - 2^-15]: values at or beyond ±1 clip, NaN is written as 0. Rounding is to
 *   the nearest integer (halves toward +∞). Reading the file back gives `x` within 2^-16 for `x` in that range.
 * - `'float32'`: samples are stored exactly (WAVE_FORMAT_IEEE_FLOAT, with a `fact` chunk), no clipping.
 *
 * More than 2 channels are written as WAVE_FORMAT_EXTENSIBLE (channel mask 0: positions unspecified).
 *
 * @param samples mono samples, or one array per channel (all the same length)
 * @throws RangeError for a bad sample rate, no channels, channels of different lengths, or more than 4 GiB
 */
export function encodeWav(samples: Float32Array | readonly Float32Array[], options: WavWriteOptions): Buffer {
  const chans: readonly Float32Array[] = samples instanceof Float32Array ? [samples] : samples;
  const { sampleRate } = options;
  const fmt = options.format ?? 'pcm16';
  if (fmt !== 'pcm16' && fmt !== 'float32') throw rangeError(`encodeWav: format must be 'pcm16' or 'float32', got '${fmt}'`);
  if (!Number.isInteger(sampleRate) || sampleRate < 1 || sampleRate > 0xffffffff) {
    throw rangeError(`encodeWav: sampleRate must be a positive integer, got ${sampleRate}`);
  }
  const channels = chans.length;
  if (channels < 1 || channels > 0xffff) throw rangeError(`encodeWav: need 1 to 65535 channels, got ${channels}`);
  const frames = chans[0].length;
  if (chans.some((c) => !(c instanceof Float32Array) || c.length !== frames)) {
    throw rangeError('encodeWav: channels must be Float32Arrays of the same length');
  }
  const float = fmt === 'float32';
  const width = float ? 4 : 2;
  const blockAlign = channels * width;
  const dataBytes = frames * blockAlign;
  const extensible = channels > 2;
  const fmtSize = extensible ? 40 : float ? 18 : 16;
  const factSize = float ? 12 : 0;
  const headerSize = 12 + 8 + fmtSize + factSize + 8;
  if (headerSize - 8 + dataBytes > 0xffffffff) throw rangeError('encodeWav: audio too long for a WAV file (over 4 GiB)');
  const out = Buffer.alloc(headerSize + dataBytes);
  let p = 0;
  p += out.write('RIFF', p, 'latin1');
  p = out.writeUInt32LE(headerSize - 8 + dataBytes, p);
  p += out.write('WAVE', p, 'latin1');
  p += out.write('fmt ', p, 'latin1');
  p = out.writeUInt32LE(fmtSize, p);
  p = out.writeUInt16LE(extensible ? WAVE_FORMAT_EXTENSIBLE : float ? WAVE_FORMAT_IEEE_FLOAT : WAVE_FORMAT_PCM, p);
  p = out.writeUInt16LE(channels, p);
  p = out.writeUInt32LE(sampleRate, p);
  p = out.writeUInt32LE(sampleRate * blockAlign, p);
  p = out.writeUInt16LE(blockAlign, p);
  p = out.writeUInt16LE(width * 8, p);
  if (extensible) {
    p = out.writeUInt16LE(22, p);
    p = out.writeUInt16LE(width * 8, p);
    p = out.writeUInt32LE(0, p);
    p = out.writeUInt16LE(float ? WAVE_FORMAT_IEEE_FLOAT : WAVE_FORMAT_PCM, p);
    p += GUID_TAIL.copy(out, p);
  } else if (float) {
    p = out.writeUInt16LE(0, p);
  }
  if (float) {
    p += out.write('fact', p, 'latin1');
    p = out.writeUInt32LE(4, p);
    p = out.writeUInt32LE(frames, p);
  }
  p += out.write('data', p, 'latin1');
  p = out.writeUInt32LE(dataBytes, p);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let c = 0; c < channels; c++) {
    const ch = chans[c];
    let q = p + c * width;
    if (float) {
      for (let i = 0; i < frames; i++, q += blockAlign) view.setFloat32(q, ch[i], true);
    } else {
      for (let i = 0; i < frames; i++, q += blockAlign) {
        const v = Math.round(ch[i] * 32768);
        view.setInt16(q, v >= 32767 ? 32767 : v <= -32768 ? -32768 : v || 0, true);
      }
    }
  }
  return out;
}

/**
 * Writes samples to a WAV file atomically (see {@link encodeWav} for the format): the file either appears
 * complete or not at all.
 */
export async function writeWav(
  file: string,
  samples: Float32Array | readonly Float32Array[],
  options: WavWriteOptions,
): Promise<void> {
  await writeFileAtomic(file, encodeWav(samples, options));
}
