/**
 * Mel spectrograms (the model-free fallback features) and their inversion to audio.
 *
 * Defaults: 22.05 kHz audio, n_fft 4096 (periodic Hann window of 4096 samples), hop 512, 2048 mel bands from
 * 0 Hz to sr / 2, power spectrogram in dB relative to the clip's maximum, floored at -80 dB (`topDb`).
 * The filterbank is librosa's default: Slaney's mel scale (linear below 1 kHz, logarithmic above) with
 * Slaney area normalisation (`librosa.filters.mel(htk=False, norm='slaney')`). Frames are centred: frame j
 * covers samples around j * hop, with zero padding at both ends (librosa >= 0.10's `pad_mode='constant'`),
 * so L samples give 1 + floor(L / hop) frames. With n_fft 4096 and 2048 bands the lowest bands are narrower
 * than one FFT bin and some are empty (all zero, like librosa's "empty filters" warning); they read -80 dB.
 *
 * The STFTs run in the native addon (libtorch stft/istft, off the event loop); the filterbank and the dB
 * scale are defined here.
 */
import { nativeBinding } from '../addon/native';
import { typeError, rangeError } from '../common/errors';

export interface MelOptions {
  /** Rate the audio is analysed at, Hz (default 22050). */
  sampleRate?: number;
  /** FFT size and window length (default 4096). */
  nFft?: number;
  /** Samples between frames (default 512). */
  hopLength?: number;
  /** Mel bands (default 2048). */
  nMels?: number;
  /** Lowest band edge in Hz (default 0). */
  fMin?: number;
  /** Highest band edge in Hz (default sampleRate / 2). */
  fMax?: number;
  /** Dynamic range kept below the maximum, dB (default 80): values are in [-topDb, 0]. */
  topDb?: number;
  /** Griffin-Lim iterations when turning mel back into audio (default 32, at least 32 recommended). */
  iterations?: number;
}

/** MelOptions with every default filled in. */
export type MelSettings = Required<MelOptions>;

/** A mel spectrogram in dB relative to its maximum: data laid out [nMels, nFrames], row-major. */
export interface MelSpectrogram {
  data: Float32Array;
  nMels: number;
  nFrames: number;
}

export const MEL_DEFAULTS: Readonly<MelSettings> = Object.freeze({
  sampleRate: 22050,
  nFft: 4096,
  hopLength: 512,
  nMels: 2048,
  fMin: 0,
  fMax: 11025,
  topDb: 80,
  iterations: 32,
});

/** Power below which values count as silence (librosa's amin). */
const AMIN = 1e-10;

function positiveInteger(value: unknown, what: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw rangeError(`mel ${what} must be an integer in [1, ${max}], got ${String(value)}`);
  }
  return value;
}

/** Fills in defaults and checks mel options, throwing a RangeError that names the bad one. */
export function melSettings(options: MelOptions = {}): MelSettings {
  if (typeof options !== 'object' || options === null) throw typeError('mel options must be an object');
  const sampleRate = positiveInteger(options.sampleRate ?? MEL_DEFAULTS.sampleRate, 'sampleRate', 768000);
  const nFft = positiveInteger(options.nFft ?? MEL_DEFAULTS.nFft, 'nFft', 65536);
  if (nFft < 16) throw rangeError(`mel nFft must be at least 16, got ${nFft}`);
  const hopLength = positiveInteger(options.hopLength ?? MEL_DEFAULTS.hopLength, 'hopLength', nFft / 2);
  const nMels = positiveInteger(options.nMels ?? MEL_DEFAULTS.nMels, 'nMels', 65536);
  const fMin = options.fMin ?? 0;
  const fMax = options.fMax ?? sampleRate / 2;
  if (!(fMin >= 0 && fMax > fMin && fMax <= sampleRate / 2)) {
    throw rangeError(`mel band edges must satisfy 0 <= fMin < fMax <= sampleRate / 2 (${sampleRate / 2}), got fMin ${fMin}, fMax ${fMax}`);
  }
  const topDb = options.topDb ?? MEL_DEFAULTS.topDb;
  if (!(typeof topDb === 'number' && topDb > 0 && Number.isFinite(topDb))) throw rangeError(`mel topDb must be a positive number of dB, got ${String(topDb)}`);
  const iterations = positiveInteger(options.iterations ?? MEL_DEFAULTS.iterations, 'iterations', 10000);
  return { sampleRate, nFft, hopLength, nMels, fMin, fMax, topDb, iterations };
}

// Slaney's mel scale (librosa htk=False): linear below 1 kHz, logarithmic above.
const F_SP = 200 / 3;
const MIN_LOG_HZ = 1000;
const MIN_LOG_MEL = MIN_LOG_HZ / F_SP;
const LOG_STEP = Math.log(6.4) / 27;

/** Hz -> mel on Slaney's scale (librosa.hz_to_mel with htk=False). */
export function hzToMel(hz: number): number {
  return hz >= MIN_LOG_HZ ? MIN_LOG_MEL + Math.log(hz / MIN_LOG_HZ) / LOG_STEP : hz / F_SP;
}

/** mel -> Hz on Slaney's scale (librosa.mel_to_hz with htk=False). */
export function melToHz(mel: number): number {
  return mel >= MIN_LOG_MEL ? MIN_LOG_HZ * Math.exp(LOG_STEP * (mel - MIN_LOG_MEL)) : F_SP * mel;
}

/**
 * The mel filterbank, laid out [nMels, nFft / 2 + 1] row-major: triangles between consecutive band edges
 * spaced evenly on the mel scale, each scaled to unit area in Hz (librosa.filters.mel defaults).
 */
export function melFilterbank(options: MelOptions = {}): Float32Array {
  const s = melSettings(options);
  const bins = Math.floor(s.nFft / 2) + 1;
  const edges = new Float64Array(s.nMels + 2);
  const lo = hzToMel(s.fMin);
  const hi = hzToMel(s.fMax);
  for (let i = 0; i < edges.length; i++) edges[i] = melToHz(lo + ((hi - lo) * i) / (edges.length - 1));
  const weights = new Float32Array(s.nMels * bins);
  for (let m = 0; m < s.nMels; m++) {
    const [left, centre, right] = [edges[m], edges[m + 1], edges[m + 2]];
    const norm = 2 / (right - left);
    for (let b = 0; b < bins; b++) {
      const f = (b * s.sampleRate) / s.nFft;
      const w = Math.max(0, Math.min((f - left) / (centre - left), (right - f) / (right - centre)));
      if (w > 0) weights[m * bins + b] = w * norm;
    }
  }
  return weights;
}

const filterbanks = new Map<string, Float32Array>();

/** The filterbank for settings, cached (a 2048 x 2049 bank is 16 MB and the same for every file). */
function cachedFilterbank(s: MelSettings): Float32Array {
  const key = [s.sampleRate, s.nFft, s.nMels, s.fMin, s.fMax].join(':');
  let fb = filterbanks.get(key);
  if (!fb) {
    fb = melFilterbank(s);
    filterbanks.clear(); // keep one: settings rarely change within a process
    filterbanks.set(key, fb);
  }
  return fb;
}

/**
 * Mel spectrogram of mono samples at `sampleRate`, in dB relative to the maximum, clipped to [-topDb, 0].
 * A silent clip (no power above 1e-10) is -topDb everywhere.
 */
export async function melSpectrogram(samples: Float32Array, options: MelOptions = {}): Promise<MelSpectrogram> {
  if (!(samples instanceof Float32Array) || samples.length === 0) {
    throw typeError('samples must be a non-empty Float32Array of mono samples at the mel sampleRate');
  }
  const s = melSettings(options);
  const mel = await nativeBinding().melSpectrogram(samples, cachedFilterbank(s), s.nMels, s.nFft, s.hopLength);
  return { data: powerToDb(mel.data, s.topDb), nMels: mel.nMels, nFrames: mel.nFrames };
}

/** Power -> dB relative to the maximum, floored at -topDb (librosa.power_to_db(ref=np.max, top_db)). In place. */
export function powerToDb(power: Float32Array, topDb = MEL_DEFAULTS.topDb): Float32Array {
  let max = 0;
  for (let i = 0; i < power.length; i++) if (power[i] > max) max = power[i];
  if (max <= AMIN) return power.fill(-topDb);
  const ref = 10 * Math.log10(max);
  for (let i = 0; i < power.length; i++) {
    power[i] = Math.max(-topDb, 10 * Math.log10(Math.max(power[i], AMIN)) - ref);
  }
  return power;
}

/** dB relative to the maximum -> power relative to the maximum (1 at 0 dB). */
export function dbToPower(db: ArrayLike<number>): Float32Array {
  const out = new Float32Array(db.length);
  for (let i = 0; i < db.length; i++) out[i] = Math.pow(10, db[i] / 10);
  return out;
}

/** Peak level of reconstructed audio: dB relative to the maximum carries no absolute loudness. */
const OUTPUT_PEAK = 0.9;

/**
 * Audio of exactly `length` samples at the mel sampleRate from a dB mel spectrogram laid out [nMels, nFrames]
 * with nFrames = 1 + floor(length / hopLength): dB -> power, a non-negative least-squares estimate of the
 * linear power spectrum (the mel filterbank's pseudo-inverse constrained to >= 0), then Griffin-Lim
 * (`iterations`, momentum 0.99, seeded random initial phase). The result is scaled to a peak of 0.9.
 */
export async function melToAudio(mel: MelSpectrogram, length: number, options: MelOptions = {}): Promise<Float32Array> {
  const s = melSettings(options);
  if (!mel || !(mel.data instanceof Float32Array) || mel.nMels !== s.nMels || mel.data.length !== mel.nMels * mel.nFrames) {
    throw rangeError(`mel must be { data: Float32Array, nMels: ${s.nMels}, nFrames } with nMels x nFrames values`);
  }
  if (!Number.isSafeInteger(length) || length < 1) throw rangeError(`length must be a positive number of samples, got ${length}`);
  const bad = mel.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw rangeError(`mel holds ${mel.data[bad]} at index ${bad}; mel values must be finite dB values`);
  const power = dbToPower(mel.data);
  const audio = await nativeBinding().melToAudio(power, cachedFilterbank(s), s.nMels, s.nFft, s.hopLength, s.iterations, length);
  let peak = 0;
  for (let i = 0; i < audio.length; i++) peak = Math.max(peak, Math.abs(audio[i]));
  if (peak > 0) for (let i = 0; i < audio.length; i++) audio[i] *= OUTPUT_PEAK / peak;
  return audio;
}
