/**
 * Continuous frame series (latents, embeddings, mel) resampled at the volumes' reference times.
 *
 * Frame j of a series at `rate` frames per second is centred at τ_j = (j + offset) / rate in run time (EnCodec:
 * rate 75, offset 0.5, i.e. (j + 0.5) * 320 / 24000; mel: rate sr / hop, offset 0, librosa's centred frames).
 * Volume k's reference time is t_k = (k + sliceTimeRef) * tr (nilearn's `slice_time_ref`).
 *
 * - `mean`: the mean of the frames whose centres fall in the volume's acquisition window [k * tr, (k + 1) * tr)
 *   (the window does not move with sliceTimeRef; a window holding no frame gives 0).
 * - `lanczos`: value_k = Σ_j L(t_k − τ_j) x_j with L(d) = a sin(π d f) sin(π d f / a) / (π d f)², L(0) = 1, L = 0 for
 *   |d f| > a, a = 3, f = 1 / tr: the Huth lab's `lanczosinterp2D` (deep-fMRI-dataset), unnormalised, so a
 *   constant series of value c gives about c * tr * rate.
 *
 * Both accumulate block by block as the series streams in (float64 sums), holding only the (n_trs, rows) result.
 * `FrameConvolver` applies an HRF at the frame rate first (nilearn's `compute_regressor` with oversampling):
 * causal convolution with the kernel sampled every 1 / rate seconds, by FFT overlap-save (fft.js).
 */
import FFT = require('fft.js');
import { rangeError } from '../common/errors';

/** How continuous features become one value per volume: today's TR windows, or one of the resamplers above. */
export type Resample = 'window' | 'mean' | 'lanczos';
export const RESAMPLE_METHODS: readonly Resample[] = Object.freeze(['window', 'mean', 'lanczos'] as Resample[]);

/** Lanczos window (lobes) of the `lanczos` resampler. */
export const LANCZOS_LOBES = 3;

/** The time axis of a frame series: τ_j = (j + offset) / rate. */
export interface FrameClock {
  rate: number;
  offset: number;
}

/** Checks sliceTimeRef: a number in [0, 1]; `what` names it in errors. */
export function checkSliceTimeRef(value: unknown, what = 'sliceTimeRef'): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw rangeError(`${what} must be a number from 0 to 1 (the fraction of the TR at which a volume is sampled; fMRIPrep's StartTime / TR), got ${String(value)}`);
  }
  return value;
}

/** Reference times t_k = (k + sliceTimeRef) * tr of `nTrs` volumes. */
export function volumeTimes(nTrs: number, tr: number, sliceTimeRef = 0): Float64Array {
  const t = new Float64Array(nTrs);
  for (let k = 0; k < nTrs; k++) t[k] = (k + sliceTimeRef) * tr;
  return t;
}

/** The Lanczos kernel L(d) for cutoff frequency f and `a` lobes (see the module notes). */
export function lanczos(d: number, f: number, a = LANCZOS_LOBES): number {
  const x = d * f;
  if (x === 0) return 1;
  if (Math.abs(x) > a) return 0;
  const px = Math.PI * x;
  return (a * Math.sin(px) * Math.sin(px / a)) / (px * px);
}

/**
 * Accumulates a streamed [rows, frames] series into per-volume values (see the module notes). The number of volumes
 * may be unknown while the series streams (a run whose length is its stimulus's): the sums grow as frames reach
 * later volumes, up to `maxTrs`, and `result(nTrs)` keeps the first nTrs.
 */
export class VolumeResampler {
  private sums = new Float64Array(0);
  private counts = new Float64Array(0);
  private capacity = 0;
  readonly sliceTimeRef: number;

  constructor(
    readonly method: 'mean' | 'lanczos',
    readonly rows: number,
    readonly tr: number,
    readonly clock: FrameClock,
    sliceTimeRef = 0,
    readonly maxTrs = Infinity,
  ) {
    this.sliceTimeRef = checkSliceTimeRef(sliceTimeRef);
  }

  private grow(k: number): void {
    if (k < this.capacity) return;
    const capacity = Math.max(k + 1, this.capacity * 2, 64);
    const sums = new Float64Array(capacity * this.rows);
    sums.set(this.sums);
    const counts = new Float64Array(capacity);
    counts.set(this.counts);
    this.sums = sums;
    this.counts = counts;
    this.capacity = capacity;
  }

  /** Adds frames [firstFrame, firstFrame + nFrames) given as `data` laid out [rows, nFrames]. */
  add(data: ArrayLike<number>, firstFrame: number, nFrames: number): void {
    const { rows, tr, maxTrs } = this;
    const { rate, offset } = this.clock;
    // Each frame's volumes and weights first; then row by row, frame by frame (reading `data` in order), so every
    // volume's sum still adds its frames in frame order.
    const first = new Int32Array(nFrames);
    const count = new Int32Array(nFrames);
    const span = this.method === 'mean' ? 1 : 2 * LANCZOS_LOBES + 3;
    const weights = new Float64Array(nFrames * span);
    let top = -1;
    const f = 1 / tr;
    const reach = LANCZOS_LOBES * tr;
    for (let i = 0; i < nFrames; i++) {
      const tau = (firstFrame + i + offset) / rate;
      if (this.method === 'mean') {
        const k = Math.floor(tau / tr);
        if (k < 0 || k >= maxTrs) continue;
        first[i] = k;
        count[i] = 1;
        weights[i] = 1;
        this.grow(k);
        this.counts[k]++;
        top = Math.max(top, k);
        continue;
      }
      // volumes whose t_k = (k + sliceTimeRef) * tr lies within `reach` of tau, those of non-zero weight kept
      const last = Math.min(maxTrs - 1, Math.floor((tau + reach) / tr - this.sliceTimeRef) + 1);
      const lo = Math.max(0, Math.ceil((tau - reach) / tr - this.sliceTimeRef) - 1);
      let n = 0;
      for (let k = lo; k <= last; k++) {
        const w = lanczos((k + this.sliceTimeRef) * tr - tau, f);
        if (n === 0 && w === 0) continue;
        if (n === 0) first[i] = k;
        weights[i * span + (k - first[i])] = w;
        if (w !== 0) n = k - first[i] + 1;
      }
      count[i] = n;
      if (n > 0) top = Math.max(top, first[i] + n - 1);
    }
    if (top < 0) return;
    this.grow(top);
    const sums = this.sums;
    for (let r = 0; r < rows; r++) {
      const row = r * nFrames;
      for (let i = 0; i < nFrames; i++) {
        const n = count[i];
        if (n === 0) continue;
        const x = data[row + i];
        const at = first[i] * rows + r;
        const w = i * span;
        for (let j = 0; j < n; j++) {
          const wj = weights[w + j];
          if (wj !== 0) sums[at + j * rows] += wj * x;
        }
      }
    }
  }

  /** The (nTrs, rows) values of the first `nTrs` volumes, float32 row-major. */
  result(nTrs: number): Float32Array {
    this.grow(nTrs - 1);
    const out = new Float32Array(nTrs * this.rows);
    for (let k = 0; k < nTrs; k++) {
      const scale = this.method === 'mean' ? (this.counts[k] ? 1 / this.counts[k] : 0) : 1;
      for (let r = 0; r < this.rows; r++) out[k * this.rows + r] = this.sums[k * this.rows + r] * scale;
    }
    return out;
  }
}

/**
 * Causal convolution of a streamed [rows, frames] series with a kernel (y_j = Σ_m h_m x_{j−m}, zeros before the
 * first frame), block by block by FFT overlap-save: each `push` returns the convolved frames of its block.
 */
export class FrameConvolver {
  private readonly fft: InstanceType<typeof FFT>;
  private readonly size: number;
  private readonly step: number;
  private readonly kernel: number[];
  private readonly history: Float64Array[];
  private readonly input: Float64Array;
  private readonly spectrum: number[];
  private readonly output: number[];

  constructor(readonly rows: number, kernel: ArrayLike<number>) {
    const taps = kernel.length;
    let size = 1024;
    while (size < 2 * taps) size *= 2;
    this.size = size;
    this.step = size - taps + 1;
    this.fft = new FFT(size);
    const padded = new Float64Array(size);
    padded.set(Array.from(kernel));
    this.kernel = this.fft.createComplexArray() as number[];
    this.fft.realTransform(this.kernel, padded);
    this.fft.completeSpectrum(this.kernel);
    this.history = Array.from({ length: rows }, () => new Float64Array(taps - 1));
    this.input = new Float64Array(size);
    this.spectrum = this.fft.createComplexArray() as number[];
    this.output = this.fft.createComplexArray() as number[];
  }

  /** Convolves the next `nFrames` frames (data laid out [rows, nFrames]); returns them convolved, same layout. */
  push(data: ArrayLike<number>, nFrames: number): Float64Array {
    const out = new Float64Array(this.rows * nFrames);
    const keep = this.size - this.step; // taps - 1
    for (let r = 0; r < this.rows; r++) {
      const history = this.history[r];
      for (let at = 0; at < nFrames; at += this.step) {
        const n = Math.min(this.step, nFrames - at);
        this.input.fill(0);
        this.input.set(history, 0);
        for (let i = 0; i < n; i++) this.input[keep + i] = data[r * nFrames + at + i];
        this.fft.realTransform(this.spectrum, this.input);
        this.fft.completeSpectrum(this.spectrum);
        const s = this.spectrum;
        const h = this.kernel;
        for (let i = 0; i < this.size; i++) {
          const re = s[2 * i] * h[2 * i] - s[2 * i + 1] * h[2 * i + 1];
          const im = s[2 * i] * h[2 * i + 1] + s[2 * i + 1] * h[2 * i];
          s[2 * i] = re;
          s[2 * i + 1] = im;
        }
        this.fft.inverseTransform(this.output, s);
        for (let i = 0; i < n; i++) out[r * nFrames + at + i] = this.output[2 * (keep + i)];
        // the last taps - 1 inputs become the next history
        const tail = this.input.subarray(n, n + keep);
        history.set(tail);
      }
    }
    return out;
  }
}
