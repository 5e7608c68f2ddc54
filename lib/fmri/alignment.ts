/**
 * Alignment of code frames to fMRI volumes (TRs).
 *
 * TR `k` starts at frame `floor(k * tr * rate)` and holds `floor(tr * rate)` frames, `rate` being the model's frame
 * rate (75 frames/s for encodec_24khz, the default here; 150 for encodec_48khz, whose segment frames are first put on
 * a uniform 150 frames/s grid, see lib/encoding/segment-grid.ts). The products are computed exactly: a TR given as a
 * decimal number (1.5, 0.72, 2.0) is turned into the fraction its shortest decimal spelling denotes, so
 * `trStartFrame(900, 1.5)` is exactly 101250 (1350 s) and starts never drift the way an accumulated float sum (or
 * `k * tr * 75` in floating point) would.
 */
import { FRAME_RATE, SAMPLE_RATE } from '../codec/bandwidth';
import { rangeError } from '../common/errors';
import { formatNumber } from '../common/format';

/** An exact non-negative fraction. */
interface Fraction {
  num: bigint;
  den: bigint;
}

/** The exact value of a finite non-negative number's shortest decimal spelling (e.g. 1.5 -> 3/2). */
function decimalFraction(x: number): Fraction {
  const m = /^(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(x));
  if (!m) throw rangeError(`cannot represent ${x} exactly`);
  const digits = m[2] ?? '';
  const exponent = Number(m[3] ?? 0) - digits.length;
  let num = BigInt(m[1] + digits);
  let den = 1n;
  if (exponent >= 0) num *= 10n ** BigInt(exponent);
  else den = 10n ** BigInt(-exponent);
  return { num, den };
}

/** Throws a RangeError unless `tr` is a usable repetition time (at least one code frame long). */
export function checkTr(tr: unknown, what = 'tr'): asserts tr is number {
  if (typeof tr !== 'number' || !Number.isFinite(tr) || tr <= 0) {
    throw rangeError(`${what} must be a positive number of seconds (the fMRI repetition time, e.g. 1.5), got ${String(tr)}`);
  }
  if (tr * FRAME_RATE < 1) {
    throw rangeError(`${what} ${tr} s is shorter than one code frame (1/${FRAME_RATE} s = ${formatNumber(1 / FRAME_RATE)} s); use a TR of at least ${formatNumber(1 / FRAME_RATE)} s`);
  }
}

/** `floor(k * tr * rate)` computed exactly, for a rate given as `rateNum / rateDen` per second. */
export function floorTrTimesRate(k: number, tr: number, rateNum: number, rateDen = 1): number {
  if (!Number.isSafeInteger(k) || k < 0) throw rangeError(`TR index must be a non-negative integer, got ${k}`);
  const t = decimalFraction(tr);
  return Number((BigInt(k) * t.num * BigInt(rateNum)) / (t.den * BigInt(rateDen)));
}

/** `ceil(tr * rate)` computed exactly, for a rate given as `rateNum / rateDen` per second. */
export function ceilTrTimesRate(tr: number, rateNum: number, rateDen = 1): number {
  const t = decimalFraction(tr);
  const num = t.num * BigInt(rateNum);
  const den = t.den * BigInt(rateDen);
  return Number((num + den - 1n) / den);
}

/** Code frames in one TR: `floor(tr * frameRate)` (112 for 1.5 s at 75 frames/s, 225 at 150). */
export function framesPerTr(tr: number, frameRate = FRAME_RATE): number {
  checkTr(tr);
  return floorTrTimesRate(1, tr, frameRate);
}

/**
 * First code frame of TR `k`: `floor(k * tr * frameRate)`, exact (TR 900 at 1.5 s starts at frame 101250 = 1350 s at
 * 75 frames/s).
 */
export function trStartFrame(k: number, tr: number, frameRate = FRAME_RATE): number {
  checkTr(tr);
  return floorTrTimesRate(k, tr, frameRate);
}

/** Start of TR `k` in seconds (`k * tr`, rounded to the microsecond for display). */
export function trStartTime(k: number, tr: number): number {
  return Math.round(k * tr * 1e6) / 1e6;
}

/** Whole TRs in `durationSeconds` of audio: `floor(duration / tr)`, exact for decimal inputs. */
export function trCount(durationSeconds: number, tr: number): number {
  checkTr(tr);
  if (!Number.isFinite(durationSeconds) || durationSeconds < 0) {
    throw rangeError(`duration must be a non-negative number of seconds, got ${durationSeconds}`);
  }
  const d = decimalFraction(durationSeconds);
  const t = decimalFraction(tr);
  return Number((d.num * t.den) / (d.den * t.num));
}

/** Whole TRs in `samples` samples at `sampleRate` (24 kHz by default): `floor(samples / (tr * rate))`, exact. */
export function trCountForSamples(samples: number, tr: number, sampleRate = SAMPLE_RATE): number {
  checkTr(tr);
  const t = decimalFraction(tr);
  return Number((BigInt(samples) * t.den) / (t.num * BigInt(sampleRate)));
}

/** Samples in `nTrs` TRs at `sampleRate`: `round(nTrs * tr * rate)` (exact whenever that is an integer). */
export function samplesForTrs(nTrs: number, tr: number, sampleRate = SAMPLE_RATE): number {
  const t = decimalFraction(tr);
  const num = BigInt(nTrs) * t.num * BigInt(sampleRate);
  return Number((2n * num + t.den) / (2n * t.den));
}
