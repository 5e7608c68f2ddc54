/**
 * Objective quality of a processed signal against its reference: SNR, scale-invariant SNR, STOI and extended
 * STOI, for judging how much a codec round trip (encode -> decode) costs.
 *
 * STOI (Taal et al. 2011) and ESTOI (Jensen & Taal 2016) follow the reference implementation pystoi step for
 * step, so that scores agree with published numbers: resampling to 10 kHz, removal of frames 40 dB below the
 * loudest clean frame (by overlap-add of the kept Hann-windowed frames), a 256-sample / 512-point STFT with hop
 * 128, 15 one-third-octave bands from 150 Hz, 30-frame (384 ms) segments, and -15 dB clipping (STOI) or
 * row/column normalisation (ESTOI).
 *
 * The FFT is fft.js. The resampler is pystoi's `resample_oct` (MATLAB/Octave `resample`'s Kaiser-windowed
 * sinc, applied as scipy's `resample_poly` does). Why not an npm resampler: STOI depends on that exact
 * anti-aliasing filter, no npm resampler lets one supply a filter, and a different filter (libsamplerate,
 * ffmpeg's swr) shifts scores by more than the tolerance, so the filter design and its polyphase application
 * are written out here.
 */
import FFT = require('fft.js');

import type { Codes } from '../codec/codes';
import { hasCode, rangeError, typeError } from '../common/errors';

/** SNR, SI-SNR (dB) and STOI, ESTOI (0..1, higher is more intelligible) of a test signal against a reference. */
export interface QualityMetrics {
  /** 10 log10(|ref|^2 / |ref - test|^2); Infinity when identical. */
  snr: number;
  /** Scale-invariant SNR (zero-mean signals, optimal gain on the reference); Infinity when proportional. */
  siSnr: number;
  /** STOI, or null when the clip has under 30 non-silent frames (about 0.4 s of speech) to score. */
  stoi: number | null;
  /** Extended STOI, or null as for stoi. */
  estoi: number | null;
}

export interface StoiOptions {
  /** Extended STOI (Jensen & Taal 2016) instead of STOI (default false). */
  extended?: boolean;
}

type Signal = ArrayLike<number>;

const EPS = 2.220446049250313e-16; // numpy's float64 eps, as pystoi uses
const STOI_RATE = 10000;
const FRAME = 256;
const NFFT = 512;
const HOP = FRAME / 2;
const BANDS = 15;
const MIN_FREQ = 150;
const SEGMENT = 30; // frames per intermediate intelligibility segment (384 ms)
const BETA_DB = -15; // lower signal-to-distortion bound of the clipping
/** Frames this far (dB) below the loudest clean frame count as silence. */
export const STOI_DYNAMIC_RANGE_DB = 40;

function checkPair(ref: Signal, test: Signal): void {
  for (const [name, s] of [['ref', ref], ['test', test]] as const) {
    const numeric = ArrayBuffer.isView(s) && !(s instanceof DataView) && !(s instanceof BigInt64Array) && !(s instanceof BigUint64Array);
    if (!numeric && !Array.isArray(s)) {
      throw typeError(`${name} must be a Float32Array, Float64Array or number[] of samples`);
    }
  }
  if (ref.length !== test.length) {
    throw rangeError(
      `ref has ${ref.length} samples but test has ${test.length}; metrics compare equal lengths, so trim both ` +
        'to the shorter one (computeMetrics() does that for you)',
    );
  }
  if (ref.length === 0) throw rangeError('the signals are empty; pass at least one sample');
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(ref[i]) || !Number.isFinite(test[i])) {
      throw rangeError(`${Number.isFinite(ref[i]) ? 'test' : 'ref'} holds ${Number.isFinite(ref[i]) ? test[i] : ref[i]} at index ${i}; clean the audio first`);
    }
  }
}

/**
 * Fraction (0..1) of identical codes in two code blocks of the same shape, e.g. chunked against whole-file
 * encoding, or CUDA against CPU. Throws RangeError when the shapes differ.
 */
export function codeAgreement(a: Codes, b: Codes): number {
  if (a.nQ !== b.nQ || a.nFrames !== b.nFrames) {
    throw rangeError(`code blocks differ in shape: [${a.nQ}, ${a.nFrames}] vs [${b.nQ}, ${b.nFrames}]`);
  }
  let same = 0;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] === b.data[i]) same++;
  return same / a.data.length;
}

/** Signal-to-noise ratio in dB: 10 log10(sum ref^2 / sum (ref - test)^2). Equal lengths required. */
export function snr(ref: Signal, test: Signal): number {
  checkPair(ref, test);
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < ref.length; i++) {
    signal += ref[i] * ref[i];
    noise += (ref[i] - test[i]) ** 2;
  }
  if (signal === 0) throw rangeError('the reference is silent (all zeros); SNR is undefined');
  return 10 * Math.log10(signal / noise);
}

/**
 * Scale-invariant SNR in dB (Le Roux et al. 2019, "SDR - half-baked or well done?"): both signals made zero-mean,
 * the target is the projection of test onto ref, the noise what remains. A gain on test does not change it.
 */
export function siSnr(ref: Signal, test: Signal): number {
  checkPair(ref, test);
  const n = ref.length;
  let meanRef = 0;
  let meanTest = 0;
  for (let i = 0; i < n; i++) {
    meanRef += ref[i];
    meanTest += test[i];
  }
  meanRef /= n;
  meanTest /= n;
  let dot = 0;
  let refEnergy = 0;
  for (let i = 0; i < n; i++) {
    dot += (ref[i] - meanRef) * (test[i] - meanTest);
    refEnergy += (ref[i] - meanRef) ** 2;
  }
  if (refEnergy === 0) throw rangeError('the reference is constant (silent); SI-SNR is undefined');
  const scale = dot / refEnergy;
  let target = 0;
  let noise = 0;
  for (let i = 0; i < n; i++) {
    const t = scale * (ref[i] - meanRef);
    target += t * t;
    noise += (test[i] - meanTest - t) ** 2;
  }
  return 10 * Math.log10(target / noise);
}

/* ---- resampling: pystoi's resample_oct ---------------------------------------------------------------- */

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (power series; converges fast for Kaiser betas). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 500; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

/** Octave's `resample` anti-aliasing filter for ratio p/q (pystoi `_resample_window_oct`), normalised to sum 1. */
function octaveResampleFilter(p: number, q: number): Float64Array {
  const stopband = 1 / (2 * Math.max(p, q));
  const rollOff = stopband / 10;
  const rejectionDb = 60; // -20 * log10(1e-3)
  const half = Math.ceil((rejectionDb - 8) / (28.714 * rollOff));
  const beta =
    rejectionDb > 50 ? 0.1102 * (rejectionDb - 8.7) : rejectionDb >= 21 ? 0.5842 * (rejectionDb - 21) ** 0.4 + 0.07886 * (rejectionDb - 21) : 0;
  const length = 2 * half + 1;
  const h = new Float64Array(length);
  const i0Beta = besselI0(beta);
  let sum = 0;
  for (let n = 0; n < length; n++) {
    const t = n - half;
    const x = 2 * stopband * t;
    const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    const r = (n - half) / half;
    const kaiser = besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / i0Beta;
    h[n] = kaiser * 2 * p * stopband * sinc;
    sum += h[n];
  }
  for (let n = 0; n < length; n++) h[n] /= sum;
  return h;
}

/**
 * Resamples by `to / from` as pystoi's resample_oct does (scipy resample_poly with the Octave filter): zero-phase,
 * output length ceil(n * p / q), zeros assumed outside the signal.
 */
export function resampleOctave(x: Signal, from: number, to: number): Float64Array {
  const g = gcd(to, from);
  const p = to / g;
  const q = from / g;
  if (p === 1 && q === 1) return Float64Array.from(x);
  const h = octaveResampleFilter(p, q);
  const half = (h.length - 1) / 2;
  // scipy: h *= up; pre-pad so output 0 sits on the filter centre, then drop n_pre_remove outputs.
  const prePad = q - (half % q);
  const preRemove = Math.floor((half + prePad) / q);
  const nOut = Math.ceil((x.length * p) / q);
  const y = new Float64Array(nOut);
  for (let k = 0; k < nOut; k++) {
    // y[k] = sum_n x[n] * h[c - p n] with c the position of output k on the upsampled, padded filter.
    const c = (k + preRemove) * q - prePad;
    const nHigh = Math.min(x.length - 1, Math.floor(c / p));
    const nLow = Math.max(0, Math.ceil((c - (h.length - 1)) / p));
    let acc = 0;
    for (let n = nLow; n <= nHigh; n++) acc += x[n] * h[c - p * n];
    y[k] = acc * p;
  }
  return y;
}

/* ---- STOI ----------------------------------------------------------------------------------------------- */

/** MATLAB's hanning(n): scipy's hanning(n + 2) without its zero end points. */
function hanning(n: number): Float64Array {
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * (i + 1)) / (n + 1));
  return w;
}

const WINDOW = hanning(FRAME);

/** One-third-octave band matrix as pystoi's thirdoct: band b sums FFT bins [low_b, high_b). */
function thirdOctaveBands(): Array<[number, number]> {
  const bins = NFFT / 2 + 1;
  const nearest = (freq: number): number => {
    let best = 0;
    for (let i = 1; i < bins; i++) {
      if (((i * STOI_RATE) / NFFT - freq) ** 2 < ((best * STOI_RATE) / NFFT - freq) ** 2) best = i;
    }
    return best;
  };
  const bands: Array<[number, number]> = [];
  for (let k = 0; k < BANDS; k++) {
    bands.push([nearest(MIN_FREQ * 2 ** ((2 * k - 1) / 6)), nearest(MIN_FREQ * 2 ** ((2 * k + 1) / 6))]);
  }
  return bands;
}

const BAND_BINS = thirdOctaveBands();

/**
 * Drops frames of x quieter than the loudest by STOI_DYNAMIC_RANGE_DB, and the same frames of y; overlap-adds the rest.
 * Also returns the loudest frame's level (dB; -Infinity without a whole frame).
 */
function removeSilentFrames(x: Float64Array, y: Float64Array): [Float64Array, Float64Array, number] {
  const starts: number[] = [];
  for (let i = 0; i < x.length - FRAME; i += HOP) starts.push(i);
  const energies = starts.map((s) => {
    let e = 0;
    for (let j = 0; j < FRAME; j++) e += (WINDOW[j] * x[s + j]) ** 2;
    return 20 * Math.log10(Math.sqrt(e) + EPS);
  });
  const loudest = Math.max(...energies);
  const kept = starts.filter((_, i) => loudest - STOI_DYNAMIC_RANGE_DB - energies[i] < 0);
  if (kept.length === 0) return [new Float64Array(0), new Float64Array(0), loudest];
  const length = (kept.length - 1) * HOP + FRAME;
  const xs = new Float64Array(length);
  const ys = new Float64Array(length);
  kept.forEach((s, f) => {
    for (let j = 0; j < FRAME; j++) {
      xs[f * HOP + j] += WINDOW[j] * x[s + j];
      ys[f * HOP + j] += WINDOW[j] * y[s + j];
    }
  });
  return [xs, ys, loudest];
}

/** One-third-octave band magnitudes, [frame][band], of Hann-windowed 256-sample frames (hop 128, 512-point FFT). */
function bandEnvelopes(x: Float64Array): Float64Array[] {
  const fft = new FFT(NFFT);
  const input = new Array<number>(NFFT).fill(0);
  const spectrum = fft.createComplexArray() as number[];
  const power = new Float64Array(NFFT / 2 + 1);
  const frames: Float64Array[] = [];
  for (let s = 0; s < x.length - FRAME; s += HOP) {
    for (let j = 0; j < FRAME; j++) input[j] = WINDOW[j] * x[s + j];
    fft.realTransform(spectrum, input);
    for (let k = 0; k <= NFFT / 2; k++) power[k] = spectrum[2 * k] ** 2 + spectrum[2 * k + 1] ** 2;
    const bands = new Float64Array(BANDS);
    BAND_BINS.forEach(([lo, hi], b) => {
      let sum = 0;
      for (let k = lo; k < hi; k++) sum += power[k];
      bands[b] = Math.sqrt(sum);
    });
    frames.push(bands);
  }
  return frames;
}

/** Subtracts the mean of v and scales it to unit norm (+ EPS in the norm, as pystoi). */
function centreAndNormalise(v: Float64Array): void {
  let mean = 0;
  for (const value of v) mean += value;
  mean /= v.length;
  let norm = 0;
  for (let i = 0; i < v.length; i++) {
    v[i] -= mean;
    norm += v[i] * v[i];
  }
  norm = Math.sqrt(norm) + EPS;
  for (let i = 0; i < v.length; i++) v[i] /= norm;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Thrown (a RangeError, code ENCODEC_NO_SPEECH) when a clip has too little non-silent audio to score. */
function tooShort(frames: number): RangeError {
  return rangeError(
    `only ${frames} non-silent STFT frames after removing silence; STOI needs at least ${SEGMENT} ` +
      '(about 0.4 s of speech): pass a longer clip',
    'ENCODEC_NO_SPEECH',
  );
}

/** What {@link stoiParts} returns: the score is `total / segments`. */
export interface StoiParts {
  /** Sum of the intermediate intelligibility of the 30-frame segments. */
  total: number;
  /** 30-frame segments scored (0 with under 30 non-silent frames). */
  segments: number;
  /** Non-silent STFT frames. */
  frames: number;
  /** Level (dB) of the reference's loudest 256-sample frame at 10 kHz, the one silence is measured from. */
  loudestDb: number;
}

/**
 * The parts of STOI (or ESTOI) that scores over several windows combine (lib/quality/windowed-metrics.ts): the
 * sum over segments and their number, as {@link stoi} computes them (it returns total / segments).
 */
export function stoiParts(ref: Signal, test: Signal, sampleRate: number, options: StoiOptions = {}): StoiParts {
  checkPair(ref, test);
  if (!Number.isSafeInteger(sampleRate) || sampleRate < 1000 || sampleRate > 768000) {
    throw rangeError(`sampleRate must be an integer rate in Hz in [1000, 768000], got ${String(sampleRate)}`);
  }
  const [x, y, loudestDb] = removeSilentFrames(resampleOctave(ref, sampleRate, STOI_RATE), resampleOctave(test, sampleRate, STOI_RATE));
  const xBands = bandEnvelopes(x);
  const yBands = bandEnvelopes(y);
  if (xBands.length < SEGMENT) return { total: 0, segments: 0, frames: xBands.length, loudestDb };
  const segments = xBands.length - SEGMENT + 1;
  const clip = 1 + 10 ** (-BETA_DB / 20);
  let total = 0;
  // Band rows of one segment: row[b][t] for t in the segment.
  const rows = (frames: Float64Array[], m: number): Float64Array[] =>
    Array.from({ length: BANDS }, (_, b) => Float64Array.from({ length: SEGMENT }, (_, t) => frames[m + t][b]));
  for (let m = 0; m < segments; m++) {
    const xs = rows(xBands, m);
    const ys = rows(yBands, m);
    if (options.extended) {
      // Row (band) then column (frame) mean-and-norm normalisation; the score is the mean column correlation.
      xs.forEach(centreAndNormalise);
      ys.forEach(centreAndNormalise);
      for (let t = 0; t < SEGMENT; t++) {
        const xc = Float64Array.from(xs, (row) => row[t]);
        const yc = Float64Array.from(ys, (row) => row[t]);
        centreAndNormalise(xc);
        centreAndNormalise(yc);
        total += dot(xc, yc) / SEGMENT;
      }
    } else {
      for (let b = 0; b < BANDS; b++) {
        const xr = xs[b];
        const yr = ys[b];
        const gain = Math.sqrt(dot(xr, xr)) / (Math.sqrt(dot(yr, yr)) + EPS);
        for (let t = 0; t < SEGMENT; t++) yr[t] = Math.min(yr[t] * gain, xr[t] * clip);
        centreAndNormalise(xr);
        centreAndNormalise(yr);
        total += dot(xr, yr) / BANDS;
      }
    }
  }
  return { total, segments, frames: xBands.length, loudestDb };
}

/**
 * STOI (or ESTOI with `{ extended: true }`) of `test` against the clean `ref`, both at `sampleRate` Hz and of
 * equal length, exactly as pystoi computes it. Returns a score in about [0, 1] (ESTOI can go below 0).
 *
 * @throws RangeError for unequal lengths, non-finite samples, or too little non-silent speech (< 30 frames)
 */
export function stoi(ref: Signal, test: Signal, sampleRate: number, options: StoiOptions = {}): number {
  const parts = stoiParts(ref, test, sampleRate, options);
  if (parts.segments === 0) throw tooShort(parts.frames);
  return parts.total / parts.segments;
}

/**
 * SNR, SI-SNR, STOI and ESTOI of `test` against `ref` at `sampleRate`. Signals of different lengths (a decoded
 * clip is padded to whole frames) are compared over the first min(length) samples. STOI/ESTOI are null for
 * clips with too little speech to score.
 */
export function computeMetrics(ref: Signal, test: Signal, sampleRate: number): QualityMetrics {
  const n = Math.min(ref.length, test.length);
  const r = ArrayBuffer.isView(ref) ? (ref as Float32Array).subarray(0, n) : Array.from(ref).slice(0, n);
  const t = ArrayBuffer.isView(test) ? (test as Float32Array).subarray(0, n) : Array.from(test).slice(0, n);
  const intelligibility = (extended: boolean): number | null => {
    try {
      return stoi(r, t, sampleRate, { extended });
    } catch (err) {
      if (hasCode(err, 'ENCODEC_NO_SPEECH')) return null;
      throw err;
    }
  };
  return { snr: snr(r, t), siSnr: siSnr(r, t), stoi: intelligibility(false), estoi: intelligibility(true) };
}
