/**
 * Haemodynamic response functions (HRF) and their convolution with TR-sampled features, so that features
 * can be compared with the BOLD signal, which lags the stimulus by several seconds.
 *
 * The kernels are nilearn's (`glover_hrf`, `spm_hrf` from `nilearn.glm.first_level.hemodynamic_models`):
 *
 *     dt = tr / oversampling
 *     t  = linspace(0, timeLength, round(timeLength / dt))        (round half to even, like np.rint)
 *     h  = gammapdf(t; delay / disp, loc = dt, scale = disp) - ratio * gammapdf(t; under / udisp, loc = dt, scale = udisp)
 *     h /= sum(h)
 *
 * with glover: delay 6, under 12, disp 0.9, udisp 0.9, ratio 0.48; spm: delay 6, under 16, disp 1, udisp 1,
 * ratio 0.167. Note that, as in nilearn, the samples of `t` are spaced timeLength / (n - 1), which is close
 * to but not exactly dt.
 */
import { rangeError } from '../common/errors';

/** HRF models: nilearn's Glover and SPM canonical kernels. */
export type HrfModel = 'glover' | 'spm';

/** The accepted HRF model names. */
export const HRF_MODELS: readonly HrfModel[] = Object.freeze(['glover', 'spm'] as HrfModel[]);

export interface HrfKernelOptions {
  /** Length of the kernel in seconds (default 32). */
  timeLength?: number;
  /** Kernel samples per TR (default 1: one sample per TR). */
  oversampling?: number;
}

interface GammaDifference {
  delay: number;
  undershoot: number;
  dispersion: number;
  uDispersion: number;
  ratio: number;
}

const MODELS: Record<HrfModel, GammaDifference> = {
  glover: { delay: 6, undershoot: 12, dispersion: 0.9, uDispersion: 0.9, ratio: 0.48 },
  spm: { delay: 6, undershoot: 16, dispersion: 1, uDispersion: 1, ratio: 0.167 },
};

// Lanczos approximation (g = 7, n = 9), relative error below 1e-15 for positive arguments.
const LANCZOS_G = 7;
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** Natural log of the gamma function for x > 0. */
export function logGamma(x: number): number {
  if (!(x > 0)) throw rangeError(`logGamma needs x > 0, got ${x}`);
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x); // reflection
  const z = x - 1;
  let a = LANCZOS[0];
  const t = z + LANCZOS_G + 0.5;
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i] / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Gamma probability density with shape `a`, location `loc` and scale `scale` (scipy.stats.gamma.pdf). */
export function gammaPdf(x: number, a: number, loc: number, scale: number): number {
  const y = (x - loc) / scale;
  if (y < 0) return 0;
  if (y === 0) return a === 1 ? 1 / scale : a < 1 ? Infinity : 0;
  return Math.exp((a - 1) * Math.log(y) - y - logGamma(a)) / scale;
}

/** Rounds half to even, like NumPy's rint. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Throws a RangeError unless `model` names an HRF model. */
export function checkHrfModel(model: unknown, what = 'hrf'): asserts model is HrfModel {
  if (typeof model !== 'string' || !(HRF_MODELS as readonly string[]).includes(model)) {
    throw rangeError(`unknown ${what} '${String(model)}'; use one of ${HRF_MODELS.join(', ')} (or 'none' for no convolution)`);
  }
}

/**
 * The HRF kernel sampled every `tr / oversampling` seconds, normalised to sum 1 (nilearn's definition,
 * see the module notes). Element 0 is the response at lag 0.
 */
export function hrfKernel(model: HrfModel, tr: number, options: HrfKernelOptions = {}): Float64Array {
  checkHrfModel(model, 'HRF model');
  if (typeof tr !== 'number' || !Number.isFinite(tr) || tr <= 0) {
    throw rangeError(`tr must be a positive number of seconds, got ${String(tr)}`);
  }
  const timeLength = options.timeLength ?? 32;
  const oversampling = options.oversampling ?? 1;
  if (!Number.isFinite(timeLength) || timeLength <= 0) throw rangeError(`timeLength must be a positive number of seconds, got ${timeLength}`);
  if (!Number.isInteger(oversampling) || oversampling < 1) throw rangeError(`oversampling must be a positive integer, got ${oversampling}`);
  const p = MODELS[model];
  const dt = tr / oversampling;
  const n = roundHalfEven(timeLength / dt);
  if (n < 2) throw rangeError(`timeLength ${timeLength} s holds fewer than 2 samples of ${dt} s; use a longer timeLength`);
  const h = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const t = (timeLength * i) / (n - 1);
    h[i] =
      gammaPdf(t, p.delay / p.dispersion, dt, p.dispersion) -
      p.ratio * gammaPdf(t, p.undershoot / p.uDispersion, dt, p.uDispersion);
    sum += h[i];
  }
  for (let i = 0; i < n; i++) h[i] /= sum;
  return h;
}

/**
 * Causal convolution along the TR axis: `out[k, j] = sum_{m = 0..min(k, L - 1)} kernel[m] * data[k - m, j]`,
 * so the response at TR k depends only on TRs <= k (the predicted BOLD response lags the stimulus).
 * `data` is laid out [nTrs, featureSize] row-major; the output has the same layout and length.
 */
export function convolveHrf(data: ArrayLike<number>, nTrs: number, kernel: ArrayLike<number>): Float64Array {
  if (!Number.isInteger(nTrs) || nTrs < 0) throw rangeError(`nTrs must be a non-negative integer, got ${nTrs}`);
  if (nTrs === 0) {
    if (data.length !== 0) throw rangeError(`data has ${data.length} values but nTrs is 0`);
    return new Float64Array(0);
  }
  if (data.length % nTrs !== 0) {
    throw rangeError(`data has ${data.length} values, not a multiple of nTrs = ${nTrs}; the layout is [nTrs, featureSize]`);
  }
  const size = data.length / nTrs;
  const out = new Float64Array(data.length);
  for (let k = 0; k < nTrs; k++) {
    const row = k * size;
    for (let m = 0; m <= k && m < kernel.length; m++) {
      const w = kernel[m];
      if (w === 0) continue;
      const src = (k - m) * size;
      for (let j = 0; j < size; j++) out[row + j] += w * data[src + j];
    }
  }
  return out;
}
