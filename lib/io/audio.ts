/**
 * Loading audio as mono float samples at a chosen rate (24 kHz by default), from any file ffmpeg can decode; or,
 * with `channels: 2` (for the 48 kHz stereo model), as planar stereo: one Float32Array holding the left channel's
 * samples, then the right's. A mono file then gives its samples in both channels (as Meta's `convert_audio` does);
 * a stereo file its two channels; a file of more channels ffmpeg's standard stereo downmix (unit gain).
 *
 * - WAV files (PCM or float, see `./wav`) whose rate is the target rate are read directly, without ffmpeg;
 *   their channels are averaged.
 * - Everything else (WAV at another rate, FLAC, MP3, M4A/AAC, Ogg, MP4/MKV/MOV video, ...) is decoded by an
 *   `ffmpeg` process (`-vn -map 0:a:0 -ac 1 -rematrix_maxval 1 -ar RATE -f f32le`): the first audio stream,
 *   downmixed, resampled with ffmpeg's default resampler. ffmpeg is found through the `FFMPEG_PATH`
 *   environment variable, else on `PATH`.
 *
 * Downmix: mono is kept; stereo becomes exactly `(L + R) / 2` on both paths (bit-identical for the same
 * samples). With more than 2 channels the paths differ: a WAV read directly is the plain average of all
 * channels, while ffmpeg uses its standard matrix for the layout (front and centre weighted over surrounds,
 * LFE dropped), normalized to unit gain. (ffmpeg's plain `-ac 1` would give `(L + R) / sqrt(2)` for float
 * output, 3 dB louder than the average; `-rematrix_maxval 1` is what makes it the average.)
 *
 * `maxSeconds` keeps at most `round(maxSeconds * sampleRate)` samples and stops reading (or stops ffmpeg)
 * there, so the start of a long file costs only that much.
 *
 * Errors are {@link AudioError}s with `code` ENCODEC_MEDIA and a `reason`: the file-system code (`'ENOENT'`, `'EISDIR'`, ...) when the
 * file cannot be opened, `'ENOFFMPEG'` when ffmpeg is needed but not found, `'ENOAUDIO'` for a file with no
 * audio stream, `'EDECODE'` when ffmpeg fails (the message holds the first line of what it printed), `'ETRUNCATED'`
 * for a WAV file whose header promises more samples than the file holds (read directly or through ffmpeg).
 *
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { debug, elapsedSince, isDebugEnabled } from '../common/log';
import { decodeWavFrames, downmix, probeWav, WavInfo } from './wav';
import { rangeError } from '../common/errors';
import { formatNumber } from '../common/format';

/** Options for {@link loadAudio}. */
export interface LoadAudioOptions {
  /** Output rate in Hz (default 24000). */
  sampleRate?: number;
  /** Output channels: 1 (default, the channels averaged) or 2 (planar stereo; see the module notes). */
  channels?: 1 | 2;
  /** Read at most this many seconds from the start (default: all). */
  maxSeconds?: number;
  /** Aborts the read (and kills ffmpeg); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Options for {@link streamAudio}. */
export interface StreamAudioOptions extends LoadAudioOptions {
  /** Samples (per channel) per block, as seconds (default 10): `round(chunkSeconds * sampleRate)` samples. */
  chunkSeconds?: number;
  /** Samples per channel per block (overrides `chunkSeconds`); stereo blocks are planar. */
  chunkSamples?: number;
}

/** Audio loaded by {@link loadAudio}. */
export interface LoadedAudio {
  /** Samples at `sampleRate`, nominally in [-1, 1]: mono, or planar stereo with `channels: 2` (left, then right). */
  samples: Float32Array;
  /** Channels of `samples` (the requested channels). */
  channels: number;
  /** Rate of `samples` (the requested rate). */
  sampleRate: number;
  /** Length in seconds (`samples.length / channels / sampleRate`). */
  duration: number;
  /** Rate of the file's audio, when known (always for WAV; from ffprobe otherwise). */
  sourceSampleRate?: number;
  /** Channels of the file's audio, when known (always for WAV; from ffprobe otherwise). */
  sourceChannels?: number;
  /** What decoded the file: `'wav'` (read directly) or `'ffmpeg'`. */
  decoder: 'wav' | 'ffmpeg';
}

/** What {@link probeAudio} finds out about a file's first audio stream. */
export interface AudioProbe {
  /** Seconds of audio (of the stream if the container says, else of the whole file), if known. */
  duration?: number;
  /** Rate of the audio stream in Hz. */
  sampleRate: number;
  /** Channels of the audio stream. */
  channels: number;
  /** Codec name as ffmpeg spells it (`'aac'`, `'mp3'`, `'pcm_s16le'`, ...). */
  codec: string;
}

/** Error codes of {@link AudioError} besides file-system codes such as `'ENOENT'`. */
export type AudioErrorCode = 'ENOFFMPEG' | 'ENOAUDIO' | 'EDECODE' | 'ETRUNCATED' | string;

/** An audio file could not be read: `code` is ENCODEC_MEDIA, `reason` says why (see the module notes). */
export class AudioError extends Error {
  readonly code = 'ENCODEC_MEDIA';
  /** `'ENOFFMPEG'`, `'ENOAUDIO'`, `'EDECODE'`, `'ETRUNCATED'`, or a file-system code (`'ENOENT'`, ...). */
  readonly reason: AudioErrorCode;
  /** The file being read. */
  readonly path: string;

  constructor(message: string, reason: AudioErrorCode, file: string) {
    super(message);
    this.name = 'AudioError';
    this.reason = reason;
    this.path = file;
  }
}

/** The ffmpeg executable used: `$FFMPEG_PATH`, else `ffmpeg` (looked up on `PATH`). */
export function ffmpegPath(): string {
  return process.env.FFMPEG_PATH || 'ffmpeg';
}

/**
 * The ffprobe executable used: `$FFPROBE_PATH`; else, when `$FFMPEG_PATH` is set, the `ffprobe` beside it;
 * else `ffprobe` on `PATH`.
 */
export function ffprobePath(): string {
  if (process.env.FFPROBE_PATH) return process.env.FFPROBE_PATH;
  const ff = process.env.FFMPEG_PATH;
  if (ff && path.basename(ff).includes('ffmpeg')) return path.join(path.dirname(ff), path.basename(ff).replace('ffmpeg', 'ffprobe'));
  return 'ffprobe';
}

/* ------------------------------------------------------------------------------------------------------ */

interface Settings {
  sampleRate: number;
  /** Output channels (1 or 2); chunks of 2 channels are interleaved until the caller makes them planar. */
  channels: number;
  /** Most samples to produce (Infinity: all). */
  limit: number;
  signal?: AbortSignal;
}

function settings(opts: LoadAudioOptions): Settings {
  const sampleRate = opts.sampleRate ?? 24000;
  if (!Number.isInteger(sampleRate) || sampleRate < 1) throw rangeError(`sampleRate must be a positive integer, got ${sampleRate}`);
  const max = opts.maxSeconds;
  if (max !== undefined && !(typeof max === 'number' && max >= 0)) {
    throw rangeError(`maxSeconds must be a number >= 0, got ${max}`);
  }
  const limit = max === undefined || max === Infinity ? Infinity : Math.round(max * sampleRate);
  const channels = opts.channels ?? 1;
  if (channels !== 1 && channels !== 2) throw rangeError(`channels must be 1 or 2, got ${String(channels)}`);
  return { sampleRate, channels, limit, signal: opts.signal };
}

function khz(rate: number): string {
  return `${+(rate / 1000).toFixed(3)} kHz`;
}

/** Checks the file can be opened; file-system errors become AudioErrors that name the path. */
export async function checkReadable(file: string): Promise<void> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(file, 'r');
    if ((await handle.stat()).isDirectory()) {
      throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    throw new AudioError(`cannot read audio file '${file}': ${why} (${e.code ?? 'error'})`, e.code ?? 'EIO', file);
  } finally {
    await handle?.close();
  }
}

/** Reads the WAV layout if `file` is a WAV file this module reads directly; undefined otherwise. */
async function wavLayout(file: string): Promise<WavInfo | undefined> {
  try {
    return await probeWav(file);
  } catch {
    return undefined; // not RIFF/WAVE, or an encoding only ffmpeg reads
  }
}

/** Mono float chunks (of any size) from a WAV file read directly. */
async function* wavChunks(file: string, info: WavInfo, s: Settings): AsyncGenerator<Float32Array> {
  const frames = Math.min(info.frames, s.limit);
  if (frames <= 0) return;
  const { blockAlign } = info.format;
  const end = info.dataOffset + frames * blockAlign;
  const stream = fs.createReadStream(file, { start: info.dataOffset, end: end - 1, highWaterMark: 1 << 16 });
  let carry: Buffer = Buffer.alloc(0);
  try {
    for await (const piece of stream as AsyncIterable<Buffer>) {
      s.signal?.throwIfAborted();
      const bytes = carry.length ? Buffer.concat([carry, piece]) : piece;
      const whole = bytes.length - (bytes.length % blockAlign);
      carry = Buffer.from(bytes.subarray(whole));
      if (whole) {
        const frames = decodeWavFrames(bytes.subarray(0, whole), info.format, info.channels);
        yield s.channels === 1 ? downmix(frames) : interleave(frames.length === 1 ? [frames[0], frames[0]] : frames);
      }
    }
    s.signal?.throwIfAborted();
  } finally {
    stream.destroy();
  }
}

/** Interleaves equal-length channels: [c0[0], c1[0], c0[1], c1[1], ...]. */
function interleave(channels: Float32Array[]): Float32Array {
  const n = channels[0].length;
  const k = channels.length;
  const out = new Float32Array(n * k);
  for (let c = 0; c < k; c++) {
    const ch = channels[c];
    for (let i = 0; i < n; i++) out[i * k + c] = ch[i];
  }
  return out;
}

/** Planar copy of interleaved frames of `channels` channels. */
function deinterleave(frames: Float32Array, channels: number): Float32Array {
  if (channels === 1) return frames;
  const n = frames.length / channels;
  const out = new Float32Array(frames.length);
  for (let c = 0; c < channels; c++) {
    for (let i = 0; i < n; i++) out[c * n + i] = frames[i * channels + c];
  }
  return out;
}

/** Mono float chunks (interleaved stereo for 2 channels; of any size) decoded by ffmpeg. */
async function* ffmpegChunks(file: string, s: Settings, wav: WavInfo | undefined): AsyncGenerator<Float32Array> {
  if (s.limit <= 0) return;
  const exe = ffmpegPath();
  const args = ['-nostdin', '-v', 'error', '-i', `file:${path.resolve(file)}`, '-vn', '-map', '0:a:0'];
  // ffmpeg's -ac 2 upmixes mono at -3 dB; a mono source is decoded as mono and repeated in both channels instead
  let duplicate = false;
  if (s.channels === 2) {
    const sourceChannels = wav?.channels ?? (await probeAudio(file).catch(() => undefined))?.channels;
    duplicate = sourceChannels === 1;
  }
  // -ac 1 alone mixes stereo as (L + R) / sqrt(2) for float output; rematrix_maxval 1 normalizes the
  // downmix matrix to unit gain, which makes stereo exactly (L + R) / 2.
  args.push('-ac', String(duplicate ? 1 : s.channels), '-rematrix_maxval', '1', '-ar', String(s.sampleRate));
  if (s.limit !== Infinity) args.push('-t', String((s.limit + 1) / s.sampleRate));
  args.push('-f', 'f32le', '-');
  const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < 65536) stderr += d;
  });
  let killed = false;
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) {
      killed = true;
      child.kill('SIGKILL');
    }
  };
  const exited = new Promise<{ code: number | null; signal?: NodeJS.Signals | null; spawnError?: NodeJS.ErrnoException }>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) => resolve({ code: null, spawnError: err }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const onAbort = (): void => kill();
  s.signal?.addEventListener('abort', onAbort, { once: true });
  let produced = 0; // frames
  let carry: Buffer = Buffer.alloc(0);
  const frameBytes = 4 * (duplicate ? 1 : s.channels);
  try {
    s.signal?.throwIfAborted();
    for await (const piece of child.stdout as AsyncIterable<Buffer>) {
      const bytes = carry.length ? Buffer.concat([carry, piece]) : piece;
      const whole = Math.min(bytes.length - (bytes.length % frameBytes), (s.limit - produced) * frameBytes);
      carry = Buffer.from(bytes.subarray(whole));
      if (whole) {
        const out = new Float32Array(whole / 4);
        new Uint8Array(out.buffer).set(bytes.subarray(0, whole));
        produced += whole / frameBytes;
        yield duplicate ? interleave([out, out]) : out;
      }
      if (produced >= s.limit) break;
    }
    if (produced >= s.limit) return;
    const { code, signal, spawnError } = await exited;
    s.signal?.throwIfAborted();
    if (spawnError) throw ffmpegMissing(file, exe, spawnError, s.sampleRate, wav);
    if (code !== 0 && !killed) {
      const first =
        stderr.split('\n').map((l) => l.trim()).find((l) => l) ??
        (signal ? `ffmpeg was killed by ${signal}` : `ffmpeg exited with code ${code}`);
      if (/matches no streams|does not contain any stream|Output file .* does not contain/i.test(stderr)) {
        throw new AudioError(`no audio stream in ${file}`, 'ENOAUDIO', file);
      }
      throw new AudioError(`cannot decode ${file}: ${cleanLine(first, file)}`, 'EDECODE', file);
    }
  } finally {
    s.signal?.removeEventListener('abort', onAbort);
    kill();
    child.stdout.destroy();
    await exited;
  }
}

/**
 * An ffmpeg message line without the `file:` prefix we add, without `@ 0x55...` object addresses, and without
 * the `FILE: ` ffmpeg puts first (the message names the file already).
 */
function cleanLine(line: string, file?: string): string {
  const text = line.replace(/file:(?=\/)/g, '').replace(/ @ 0x[0-9a-f]+\]/g, ']');
  return file !== undefined && text.startsWith(`${file}: `) ? text.slice(file.length + 2) : text;
}

function ffmpegMissing(file: string, exe: string, err: NodeJS.ErrnoException, rate: number, wav: WavInfo | undefined): Error {
  if (err.code !== 'ENOENT' && err.code !== 'EACCES') {
    return new AudioError(`cannot run ffmpeg (${exe}) to read ${file}: ${err.message}`, 'ENOFFMPEG', file);
  }
  const ext = path.extname(file).toLowerCase();
  const what = wav
    ? `to read ${khz(wav.sampleRate)} WAV files (resampling to ${khz(rate)})`
    : ext
      ? `to read ${ext} files`
      : 'to read this file';
  const where = process.env.FFMPEG_PATH
    ? ` (FFMPEG_PATH=${process.env.FFMPEG_PATH}: ${err.code === 'EACCES' ? 'not executable' : 'not found'})`
    : '';
  return new AudioError(
    `ffmpeg is needed ${what}; install it (apt-get install ffmpeg) or convert to ${khz(rate)} WAV${where}`,
    'ENOFFMPEG',
    file,
  );
}

interface Source {
  chunks: AsyncGenerator<Float32Array>;
  wav?: WavInfo;
}

async function openSource(file: string, s: Settings): Promise<Source> {
  s.signal?.throwIfAborted();
  await checkReadable(file);
  const wav = await wavLayout(file);
  // Neither reader notices on its own: both read to the end of the file and the clip comes out short.
  if (wav?.declaredFrames !== undefined) {
    const seconds = (frames: number): string => `${formatNumber(frames / wav.sampleRate, 2)} s`;
    throw new AudioError(
      `${file} is cut short: its WAV header promises ${seconds(wav.declaredFrames)} but the file holds ` +
        `${seconds(wav.frames)} (a copy or download that stopped?). Copy it again, or keep what is there with ` +
        '`ffmpeg -i FILE -c copy FIXED.wav`',
      'ETRUNCATED',
      file,
    );
  }
  // read directly at the target rate; for stereo output only mono and stereo files (others take ffmpeg's downmix)
  if (wav && wav.sampleRate === s.sampleRate && (s.channels === 1 || wav.channels <= 2)) return { chunks: wavChunks(file, wav, s), wav };
  return { chunks: ffmpegChunks(file, s, wav), wav };
}

/* ------------------------------------------------------------------------------------------------------ */

/**
 * Loads the audio of a file as mono float samples at `sampleRate` (default 24000 Hz). See the module notes
 * for which files need ffmpeg.
 *
 * @throws AudioError (`reason` `'ENOENT'`, `'ENOFFMPEG'`, `'ENOAUDIO'`, `'EDECODE'`, ...); RangeError for bad options
 */
export async function loadAudio(file: string, options: LoadAudioOptions = {}): Promise<LoadedAudio> {
  const s = settings(options);
  const loadStart = performance.now();
  const source = await openSource(file, s);
  const probe =
    source.wav?.sampleRate === s.sampleRate || s.limit <= 0 ? undefined : probeAudio(file).catch(() => undefined);
  const parts: Float32Array[] = [];
  let total = 0;
  for await (const part of source.chunks) {
    parts.push(part);
    total += part.length;
  }
  const samples = parts.length === 1 ? parts[0] : new Float32Array(total);
  if (parts.length !== 1) {
    let at = 0;
    for (const part of parts) {
      samples.set(part, at);
      at += part.length;
    }
  }
  const info = source.wav ?? (await probe);
  logDecoded(file, source, s, info, samples.length / s.channels, loadStart, 'in one piece');
  return {
    samples: deinterleave(samples, s.channels),
    channels: s.channels,
    sampleRate: s.sampleRate,
    duration: samples.length / s.channels / s.sampleRate,
    sourceSampleRate: info?.sampleRate,
    sourceChannels: info?.channels,
    decoder: source.wav?.sampleRate === s.sampleRate && (s.channels === 1 || source.wav.channels <= 2) ? 'wav' : 'ffmpeg',
  };
}

/** Logs (debug) how a file's audio was read: decoder, resampling, length, time. */
function logDecoded(
  file: string,
  source: { wav?: { sampleRate: number } },
  s: { sampleRate: number; channels: number },
  info: { sampleRate: number; channels: number } | undefined,
  samples: number,
  start: number,
  how: string,
): void {
  debug('audio', () => {
    const from = info ? `${khz(info.sampleRate)}, ${info.channels} ch` : 'unknown rate';
    const decoder = source.wav?.sampleRate === s.sampleRate ? 'read WAV directly' : 'decoded with ffmpeg';
    const to = s.channels === 2 ? 'stereo' : 'mono';
    const resampled = info && info.sampleRate !== s.sampleRate ? `resampled ${from} -> ${khz(s.sampleRate)} ${to}` : `${from} -> ${to}`;
    const secs = (samples / s.sampleRate).toFixed(2);
    return `${decoder} '${file}' ${how}: ${resampled}, ${samples} samples (${secs} s) in ${elapsedSince(start)}`;
  });
}

/**
 * Reads the audio of a file as consecutive blocks of mono samples at `sampleRate`, without holding the whole
 * file: every block has `chunkSamples` samples (default: 10 s worth) except the last, which is shorter (not
 * padded). Concatenated, the blocks equal what {@link loadAudio} returns.
 *
 * Reading is paced by the consumer: while a block is being processed, ffmpeg (or the file read) is paused by
 * backpressure. Leaving the loop early (`break`, an exception) stops ffmpeg.
 *
 * @throws AudioError as {@link loadAudio}, from the first iteration
 */
export async function* streamAudio(file: string, options: StreamAudioOptions = {}): AsyncGenerator<Float32Array, void, undefined> {
  const s = settings(options);
  const size = options.chunkSamples ?? Math.round((options.chunkSeconds ?? 10) * s.sampleRate);
  if (!Number.isInteger(size) || size < 1) throw rangeError(`block size must be at least 1 sample, got ${size}`);
  const start = performance.now();
  const source = await openSource(file, s);
  const probe = source.wav || !isDebugEnabled() ? undefined : probeAudio(file).catch(() => undefined); // for the log only
  const k = s.channels;
  const blockValues = size * k; // interleaved values per block
  let block = new Float32Array(blockValues);
  let fill = 0;
  let total = 0;
  for await (const part of source.chunks) {
    total += part.length / k;
    let at = 0;
    while (at < part.length) {
      const n = Math.min(blockValues - fill, part.length - at);
      block.set(part.subarray(at, at + n), fill);
      fill += n;
      at += n;
      if (fill === blockValues) {
        yield deinterleave(block, k);
        block = new Float32Array(blockValues);
        fill = 0;
      }
    }
  }
  if (fill > 0) yield deinterleave(block.subarray(0, fill), k);
  logDecoded(file, source, s, source.wav ?? (await probe), total, start, 'streamed');
}

/**
 * Describes a file's first audio stream: rate, channels, codec and duration. WAV files this package reads
 * directly are described from their header; anything else with `ffprobe` (see {@link ffprobePath}).
 *
 * @throws AudioError (`reason` `'ENOENT'`, `'ENOFFMPEG'` when ffprobe is missing, `'ENOAUDIO'`, `'EDECODE'`)
 */
export async function probeAudio(file: string): Promise<AudioProbe> {
  await checkReadable(file);
  const wav = await wavLayout(file);
  if (wav) {
    const f = wav.format;
    const codec = f.float ? `pcm_f${f.bitsPerSample}le` : f.bitsPerSample === 8 ? 'pcm_u8' : `pcm_s${f.bitsPerSample}le`;
    return { duration: wav.duration, sampleRate: wav.sampleRate, channels: wav.channels, codec };
  }
  const exe = ffprobePath();
  const args = ['-v', 'error', '-select_streams', 'a:0', '-show_entries', 'stream=codec_name,sample_rate,channels,duration:format=duration', '-of', 'json', `file:${path.resolve(file)}`];
  const { code, stdout, stderr, error } = await new Promise<{ code: number | null; stdout: string; stderr: string; error?: NodeJS.ErrnoException }>(
    (resolve) => {
      const child = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.once('error', (e: NodeJS.ErrnoException) => resolve({ code: null, stdout: out, stderr: err, error: e }));
      child.once('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
    },
  );
  if (error) {
    throw new AudioError(`ffprobe is needed to describe ${file}; install ffmpeg (apt-get install ffmpeg) (${exe}: ${error.code})`, 'ENOFFMPEG', file);
  }
  if (code !== 0) {
    const first = stderr.split('\n').map((l) => l.trim()).find((l) => l) ?? `ffprobe exited with code ${code}`;
    throw new AudioError(`cannot decode ${file}: ${cleanLine(first, file)}`, 'EDECODE', file);
  }
  const json = JSON.parse(stdout) as { streams?: Array<Record<string, string | number>>; format?: { duration?: string } };
  const stream = json.streams?.[0];
  if (!stream) throw new AudioError(`no audio stream in ${file}`, 'ENOAUDIO', file);
  const num = (v: unknown): number | undefined => (v === undefined || v === 'N/A' || !Number.isFinite(Number(v)) ? undefined : Number(v));
  return {
    duration: num(stream.duration) ?? num(json.format?.duration),
    sampleRate: num(stream.sample_rate) ?? 0,
    channels: num(stream.channels) ?? 0,
    codec: String(stream.codec_name ?? 'unknown'),
  };
}
