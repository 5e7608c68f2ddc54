/**
 * Real test media, synthesized on the spot in a directory of the caller's choosing: speech from espeak-ng,
 * movies muxed by ffmpeg (stereo 44.1 kHz AAC with a generated video track), WAV files at 24 kHz, and a few
 * numeric helpers for comparing signals. Needs `espeak-ng`, `ffmpeg` and `sox` on PATH.
 */
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { readWav, writeWav } from '../../lib/io/wav';

/** Rate espeak-ng writes (Hz). */
export const ESPEAK_RATE = 22050;

/** Runs a program; resolves with its stdout (as a Buffer), rejects with its stderr. */
export function run(cmd: string, args: string[], options: { maxBuffer?: number } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'buffer', maxBuffer: options.maxBuffer ?? 1 << 30 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr.toString().trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** Runs ffmpeg quietly (`-y -v error` prepended). */
export function ffmpeg(args: string[]): Promise<Buffer> {
  return run('ffmpeg', ['-nostdin', '-y', '-v', 'error', ...args]);
}

/** Runs sox. */
export function sox(args: string[]): Promise<Buffer> {
  return run('sox', args);
}

/** Decodes any file to interleaved float32 samples with ffmpeg (extra output options before `-f f32le -`). */
export async function ffmpegFloats(file: string, outputArgs: string[] = []): Promise<Float32Array> {
  const bytes = await ffmpeg(['-i', file, ...outputArgs, '-f', 'f32le', '-']);
  const out = new Float32Array(bytes.length / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

function tag(...parts: unknown[]): string {
  return crypto.createHash('sha1').update(JSON.stringify(parts)).digest('hex').slice(0, 10);
}

/**
 * Speaks `text` with espeak-ng into a 22.05 kHz mono 16-bit WAV in `dir` and returns its path (the same file
 * for the same arguments). With `seconds`, the speech is cut or padded with silence to exactly
 * `round(seconds * 22050)` samples.
 */
export async function makeSpeech(dir: string, text: string, seconds?: number): Promise<string> {
  const file = path.join(dir, `speech-${tag(text, seconds)}.wav`);
  if (fs.existsSync(file)) return file;
  const raw = path.join(dir, `speech-${tag(text, seconds)}.raw.wav`);
  await run('espeak-ng', ['-w', raw, text]);
  if (seconds === undefined) {
    fs.renameSync(raw, file);
  } else {
    const { samples, sampleRate } = await readWav(raw);
    const out = new Float32Array(Math.round(seconds * sampleRate));
    out.set(samples[0].subarray(0, out.length));
    await writeWav(file, out, { sampleRate, format: 'pcm16' });
    fs.rmSync(raw);
  }
  return file;
}

/** Speech resampled (by sox) to a 24 kHz mono 16-bit WAV; returns its path. */
export async function makeSpeech24k(dir: string, text: string, seconds?: number): Promise<string> {
  const src = await makeSpeech(dir, text, seconds);
  const file = src.replace(/\.wav$/, '-24k.wav');
  if (!fs.existsSync(file)) await sox([src, '-r', '24000', '-b', '16', file]);
  return file;
}

/** Writes float samples (one array per channel) as a 24 kHz WAV in `dir`; returns its path. */
export async function makeWav24k(dir: string, name: string, channels: Float32Array[], format: 'pcm16' | 'float32' = 'pcm16'): Promise<string> {
  const file = path.join(dir, name);
  await writeWav(file, channels, { sampleRate: 24000, format });
  return file;
}

/** A movie made by {@link makeMovie}. */
export interface Movie {
  /** The .mp4 file. */
  path: string;
  /** The mono 22.05 kHz speech WAV its audio was made from. */
  speech: string;
  /** Length of the speech (and so of the audio stream) in seconds. */
  seconds: number;
  /** Length of the video track in seconds. */
  videoSeconds: number;
  /** The right channel is the speech times this (the left is the speech). */
  rightGain: number;
}

/**
 * Muxes speech into a movie: an `.mp4` with an H.264 video track (ffmpeg's `testsrc`, 160x120, 25 fps) and a
 * STEREO 44.1 kHz AAC audio track whose left channel is the speech and whose right channel is the speech
 * times `rightGain` (default 0.25), so a mono downmix that averages channels gives `(1 + rightGain) / 2`
 * times the speech. The video lasts `videoSeconds` (default: the speech's length + 1 s, so it outlasts the
 * audio).
 */
export async function makeMovie(
  dir: string,
  options: { text?: string; seconds?: number; rightGain?: number; videoSeconds?: number } = {},
): Promise<Movie> {
  const text = options.text ?? 'The quick brown fox jumps over the lazy dog. A movie soundtrack in stereo.';
  const rightGain = options.rightGain ?? 0.25;
  const speech = await makeSpeech(dir, text, options.seconds);
  const { duration: seconds } = await readWav(speech);
  const videoSeconds = options.videoSeconds ?? Math.ceil(seconds) + 1;
  const file = path.join(dir, `movie-${tag(text, options.seconds, rightGain, videoSeconds)}.mp4`);
  if (!fs.existsSync(file)) {
    await ffmpeg([
      '-f', 'lavfi', '-i', `testsrc=size=160x120:rate=25:duration=${videoSeconds}`,
      '-i', speech,
      '-filter_complex', `[1:a]aresample=44100,pan=stereo|c0=c0|c1=${rightGain}*c0[a]`,
      '-map', '0:v', '-map', '[a]',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-b:a', '128k', '-ar', '44100', '-ac', '2',
      file,
    ]);
  }
  return { path: file, speech, seconds, videoSeconds, rightGain };
}

/** A video-only `.mp4` (no audio stream) of `seconds` seconds; returns its path. */
export async function makeVideoOnly(dir: string, seconds = 1): Promise<string> {
  const file = path.join(dir, `video-only-${seconds}.mp4`);
  if (!fs.existsSync(file)) {
    await ffmpeg(['-f', 'lavfi', '-i', `testsrc=size=160x120:rate=25:duration=${seconds}`, '-c:v', 'libx264', '-preset', 'ultrafast', file]);
  }
  return file;
}

/** A sine tone: `seconds` of `freq` Hz at `rate`, amplitude `amp`. */
export function tone(seconds: number, freq: number, rate = 24000, amp = 0.5): Float32Array {
  const out = new Float32Array(Math.round(seconds * rate));
  for (let i = 0; i < out.length; i++) out[i] = amp * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

/** Root mean square of a signal. */
export function rms(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s / Math.max(1, x.length));
}

/** Normalized cross-correlation of the first `n` samples of two signals at lag 0 (1 = same shape). */
export function correlation(a: ArrayLike<number>, b: ArrayLike<number>, n = Math.min(a.length, b.length)): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/** Largest absolute difference between two equally long signals. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`lengths differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Deinterleaves `channels`-channel interleaved samples. */
export function deinterleave(x: Float32Array, channels: number): Float32Array[] {
  const n = Math.floor(x.length / channels);
  return Array.from({ length: channels }, (_, c) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = x[i * channels + c];
    return out;
  });
}

/**
 * Index of the first sample where two signals differ (NaN equals NaN, -0 differs from 0), -1 if they are
 * the same, or the shorter length if one is a prefix of the other. Much faster than chai's deep.equal.
 */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (!Object.is(a[i], b[i])) return i;
  return a.length === b.length ? -1 : n;
}

/** A readable failure message for {@link firstDifference}. */
export function describeDifference(a: ArrayLike<number>, b: ArrayLike<number>): string {
  const i = firstDifference(a, b);
  return i < 0 ? 'same' : `lengths ${a.length}/${b.length}, first difference at ${i}: ${a[i]} vs ${b[i]}`;
}

/**
 * A 48 kHz stereo 16-bit WAV of `seconds` (cut or padded with silence): two different espeak-ng voices, one per
 * channel (the left also carries a little of the right), resampled by sox. Returns its path.
 */
export async function makeStereo48k(dir: string, seconds: number): Promise<string> {
  const file = path.join(dir, `stereo48k-${tag(seconds)}.wav`);
  if (fs.existsSync(file)) return file;
  const left = await makeSpeech(dir, 'The quick brown fox jumps over the lazy dog. A film soundtrack in stereo.', seconds);
  const rightRaw = path.join(dir, `stereo48k-right-${tag(seconds)}.raw.wav`);
  await run('espeak-ng', ['-v', 'en-us', '-p', '75', '-s', '190', '-w', rightRaw, 'Pack my box with five dozen liquor jugs, said the second voice.']);
  const { samples, sampleRate } = await readWav(rightRaw);
  const right = new Float32Array(Math.round(seconds * sampleRate));
  right.set(samples[0].subarray(0, right.length));
  const rightFile = path.join(dir, `stereo48k-right-${tag(seconds)}.wav`);
  await writeWav(rightFile, right, { sampleRate, format: 'pcm16' });
  fs.rmSync(rightRaw);
  const mixedLeft = path.join(dir, `stereo48k-left-${tag(seconds)}.wav`);
  await sox(['-m', '-v', '1', left, '-v', '0.2', rightFile, mixedLeft]);
  await sox(['-M', mixedLeft, rightFile, '-r', '48000', '-b', '16', file]);
  return file;
}
