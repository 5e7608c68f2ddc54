/**
 * The metrics of lib/quality/metrics.ts over a signal of any length in bounded memory, for `extract --report`:
 * the reference and the processed audio arrive in blocks (each stream at its own pace), and only about one
 * window of each is held (plus what one stream is ahead of the other).
 *
 * SNR and SI-SNR come from float64 sums over all samples, so they are the whole-signal values: SNR sums
 * x^2 and (x - y)^2 sample by sample in order, exactly as `snr` does (the same number); SI-SNR (zero-mean
 * signals, optimal gain) needs the sums of x, e = y - x, x^2, e^2 and x e: with E = sum x^2 - n mean(x)^2,
 * C = sum x e - n mean(x) mean(e) and N = sum e^2 - n mean(e)^2, the projection's energy is (E + C)^2 / E and
 * the rest N - C^2 / E (`siSnr`'s value up to float rounding; the rest is written from e, not y, so that it
 * does not cancel for signals that differ little).
 *
 * STOI and ESTOI (pystoi's algorithm, which removes silence relative to the loudest frame of everything it is
 * given) are computed per window: windows of `windowSeconds` (default 60 s) from the start, the remainder after
 * the last whole window one more window, or added to the last whole window when it is under half a window (so
 * no window is shorter than STOI's segments need, and every window is 0.5 to 1.5 windows long). A signal up to
 * 1.5 windows long is one window: the score is exactly `stoi` of the whole signal. Over several windows the
 * score is the mean over all their 30-frame segments (each window's sum over its segments, summed, over the
 * number of segments), leaving out windows whose loudest frame is 40 dB or more below the loudest frame of all
 * windows (pystoi would have removed every frame of them as silence). It differs from a whole-signal STOI in
 * that silence is measured from each window's loudest frame and no segment spans two windows. docs/metrics.md.
 */
import { QualityMetrics, STOI_DYNAMIC_RANGE_DB, stoiParts } from './metrics';
import { codedError, rangeError } from '../common/errors';

/** Default window of the STOI scores, seconds. */
export const DEFAULT_WINDOW_SECONDS = 60;

/** Float64 sums of a pair of signals, enough for SNR and SI-SNR of everything added. */
export class SignalSums {
  n = 0;
  private x = 0;
  private e = 0;
  private xx = 0;
  private ee = 0;
  private xe = 0;

  /** Adds equal-length samples of the reference and the processed signal. */
  add(ref: ArrayLike<number>, test: ArrayLike<number>): void {
    for (let i = 0; i < ref.length; i++) {
      const r = ref[i];
      const e = test[i] - r;
      this.x += r;
      this.e += e;
      this.xx += r * r;
      this.ee += (r - test[i]) ** 2; // `snr`'s expression, so that its sum is the same number
      this.xe += r * e;
    }
    this.n += ref.length;
  }

  /** 10 log10(sum x^2 / sum (x - y)^2), as `snr`. */
  snr(): number {
    if (this.xx === 0) throw rangeError('the reference is silent (all zeros); SNR is undefined');
    return 10 * Math.log10(this.xx / this.ee);
  }

  /** Scale-invariant SNR, as `siSnr` (see the module notes). */
  siSnr(): number {
    const meanX = this.x / this.n;
    const meanE = this.e / this.n;
    const energy = this.xx - this.x * meanX;
    if (!(energy > 0)) throw rangeError('the reference is constant (silent); SI-SNR is undefined');
    const cross = this.xe - this.x * meanE;
    const target = (energy + cross) ** 2 / energy;
    const noise = Math.max(0, this.ee - this.e * meanE - (cross * cross) / energy);
    return 10 * Math.log10(target / noise);
  }
}

/** Where the window starting at `start` ends, given `held` samples so far; undefined until that is known. */
export function windowEnd(start: number, held: number, ended: boolean, size: number): number | undefined {
  // a whole window, once at least half a window follows it (a shorter remainder joins it)
  if (2 * (held - start - size) >= size) return start + size;
  return ended && held > start ? held : undefined;
}

/** Consecutive samples received in blocks, of which the oldest can be taken off. */
class SampleQueue {
  private blocks: Float32Array[] = [];
  /** Samples of blocks[0] already taken. */
  private head = 0;
  /** Samples taken, and received. */
  taken = 0;
  received = 0;

  push(block: Float32Array): void {
    if (block.length === 0) return;
    this.blocks.push(block.slice()); // a copy: the caller may reuse its block
    this.received += block.length;
  }

  /** Takes off the next `n` samples. */
  take(n: number): Float32Array {
    const out = new Float32Array(n);
    let at = 0;
    while (at < n) {
      const b = this.blocks[0];
      const k = Math.min(n - at, b.length - this.head);
      out.set(b.subarray(this.head, this.head + k), at);
      at += k;
      this.head += k;
      if (this.head === b.length) {
        this.blocks.shift();
        this.head = 0;
      }
    }
    this.taken += n;
    return out;
  }
}

/** One window's STOI and ESTOI parts. */
interface WindowScore {
  stoi: number;
  estoi: number;
  segments: number;
  loudestDb: number;
}

export interface WindowedMetricsOptions {
  /** Seconds per STOI window (default 60); see the module notes. */
  windowSeconds?: number;
}

/**
 * SNR, SI-SNR, STOI and ESTOI of a processed signal against its reference, both streamed: `addRef` and
 * `addTest` take their next blocks in any sizes and at any pace; `finish` scores the rest. The processed signal
 * may run past the reference (decoded audio is whole frames): it is compared over the reference's length.
 */
export class WindowedMetrics {
  private readonly ref = new SampleQueue();
  private readonly test = new SampleQueue();
  private readonly sums = new SignalSums();
  private readonly windows: WindowScore[] = [];
  private readonly size: number;

  constructor(
    private readonly sampleRate: number,
    options: WindowedMetricsOptions = {},
  ) {
    const seconds = options.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 1) {
      throw rangeError(`windowSeconds must be a number of seconds >= 1, got ${String(seconds)}`);
    }
    this.size = Math.round(seconds * sampleRate);
  }

  /** Samples of the reference received. */
  get samples(): number {
    return this.ref.received;
  }

  /** Samples held now (both signals): what is not yet scored. */
  get held(): number {
    return this.ref.received - this.ref.taken + this.test.received - this.test.taken;
  }

  addRef(block: Float32Array): void {
    this.ref.push(block);
    this.scoreReady(false);
  }

  addTest(block: Float32Array): void {
    this.test.push(block);
    this.scoreReady(false);
  }

  /** Scores what is left; the metrics of everything added (STOI/ESTOI null when no window has speech enough). */
  finish(): QualityMetrics {
    if (this.test.received < this.ref.received) {
      throw codedError('ENCODEC_INTERNAL', `internal error: ${this.ref.received} reference samples but only ${this.test.received} processed`);
    }
    if (this.ref.received === 0) throw rangeError('the signals are empty; pass at least one sample');
    this.scoreReady(true);
    const loudest = this.windows.reduce((max, w) => Math.max(max, w.loudestDb), -Infinity);
    // pystoi's silence rule at the scale of windows: one whose every frame it would remove is left out
    const counted = this.windows.filter((w) => w.segments > 0 && loudest - STOI_DYNAMIC_RANGE_DB - w.loudestDb < 0);
    const segments = counted.reduce((n, w) => n + w.segments, 0);
    const combine = (key: 'stoi' | 'estoi'): number | null =>
      segments === 0 ? null : counted.reduce((sum, w) => sum + w[key], 0) / segments;
    return { snr: this.sums.snr(), siSnr: this.sums.siSnr(), stoi: combine('stoi'), estoi: combine('estoi') };
  }

  /** Scores every window whose end is known and whose samples both signals hold. */
  private scoreReady(ended: boolean): void {
    for (;;) {
      const start = this.ref.taken;
      const paired = ended ? this.ref.received : Math.min(this.ref.received, this.test.received);
      const end = windowEnd(start, paired, ended, this.size);
      if (end === undefined) return;
      const ref = this.ref.take(end - start);
      const test = this.test.take(end - start);
      this.sums.add(ref, test);
      const plain = stoiParts(ref, test, this.sampleRate);
      const extended = stoiParts(ref, test, this.sampleRate, { extended: true });
      this.windows.push({ stoi: plain.total, estoi: extended.total, segments: plain.segments, loudestDb: plain.loudestDb });
    }
  }
}
