/**
 * The run timeline: the audio a BOLD run heard, on the scanner's clock.
 *
 * A run is `runTrs` volumes of `tr` seconds; volume k covers run time [k * tr, (k + 1) * tr). Its audio is digital
 * silence, with each stimulus placed at its onset (run time of its first sample; negative: the first -onset
 * seconds played before the first volume and are not part of the run), cut to its `duration` when given, and the
 * whole cut where the run ends. Without `runTrs` the run lasts floor((onset + duration) / tr) volumes of the last
 * stimulus, and the audio is the stimuli to the end of the last one (no silence after it): with one stimulus at
 * onset 0 the timeline is the file itself, sample for sample, so the default features are those of the file.
 *
 * Samples are placed at round(onset * rate). With `channels: 2` (the 48 kHz stereo model) the blocks are planar stereo
 * (each block's left samples, then its right ones; see lib/io/audio.ts) and positions count samples per channel.
 */
import { streamAudio } from '../io/audio';
import { checkTr, samplesForTrs, trCountForSamples } from './alignment';
import { typeError, rangeError } from '../common/errors';

/** One stimulus file on the run timeline. */
export interface StimulusPlacement {
  /** The audio or video file. */
  file: string;
  /** Run time (seconds) at which its first sample plays (default 0). */
  onset?: number;
  /** Seconds of the file that play (default: all of it); shorter than the file cuts it. */
  duration?: number;
  /** A name for error messages (e.g. "events row 3"). */
  label?: string;
}

/** A stimulus with its onset checked. */
export interface PlacedStimulus {
  file: string;
  onset: number;
  duration?: number;
  label: string;
}

/** Where a stimulus's samples landed on the run timeline (known after streaming). */
export interface PlayedStimulus {
  file: string;
  /** Onset in run time (seconds). */
  onset: number;
  /** Run time (seconds) of its first sample inside the run (>= 0). */
  start: number;
  /** Run time (seconds) just after its last sample inside the run (start when none played). */
  end: number;
}

/** Per-volume timing (columns of the metadata CSV). */
export interface VolumeTiming {
  run_time_start: number;
  run_time_end: number;
  /** Stimulus time (seconds since the stimulus's first sample) of the first stimulus sample in the window; NaN if none. */
  stimulus_time_start: number;
  stimulus_time_end: number;
  /** Fraction (0..1) of the window the stimuli fill. */
  stimulus_fraction: number;
  /** The stimulus file whose times are given ('' when none). */
  stim_file: string;
}

function finite(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw rangeError(`${what} must be a finite number of seconds, got ${String(value)}`);
  }
  return value;
}

/** Checks `runTrs` (undefined allowed): a positive integer; `what` names it in errors. */
export function checkRunTrs(runTrs: unknown, what = 'runTrs'): number | undefined {
  if (runTrs === undefined) return undefined;
  if (typeof runTrs !== 'number' || !Number.isSafeInteger(runTrs) || runTrs <= 0) {
    throw rangeError(`${what} must be a positive whole number of volumes (the run's length), got ${String(runTrs)}`);
  }
  return runTrs;
}

/**
 * Checks the stimuli of a run: finite onsets, positive durations, no two overlapping (where their durations are
 * known), and with `runTrs` at least one starting before the run ends. Returns them sorted by onset.
 */
export function checkStimuli(stimuli: StimulusPlacement[], tr: number, runTrs?: number): PlacedStimulus[] {
  checkTr(tr);
  if (!Array.isArray(stimuli) || stimuli.length === 0) throw rangeError('a run needs at least one stimulus');
  const placed = stimuli.map((s, i): PlacedStimulus => {
    const label = s.label ?? (stimuli.length === 1 ? 'the stimulus' : `stimulus ${i + 1} (${s.file})`);
    if (typeof s.file !== 'string' || s.file === '') throw typeError(`${label}: file must be the path of an audio or video file`);
    const onset = finite(s.onset ?? 0, `onset of ${label}`);
    if (s.duration !== undefined && !(finite(s.duration, `duration of ${label}`) > 0)) {
      throw rangeError(`duration of ${label} must be positive, got ${s.duration}`);
    }
    return { file: s.file, onset, duration: s.duration, label };
  });
  placed.sort((a, b) => a.onset - b.onset);
  for (let i = 1; i < placed.length; i++) {
    const prev = placed[i - 1];
    if (prev.duration === undefined || prev.onset + prev.duration > placed[i].onset + 1e-9) {
      const until = prev.duration === undefined ? 'to the end of its file (no duration)' : `until ${prev.onset + prev.duration} s`;
      throw rangeError(`${prev.label} (onset ${prev.onset} s, plays ${until}) overlaps ${placed[i].label} (onset ${placed[i].onset} s); stimuli of one run must not overlap`);
    }
  }
  if (runTrs !== undefined) {
    const runEnd = runTrs * tr;
    if (placed[0].onset >= runEnd) {
      throw rangeError(`onset ${placed[0].onset} s is at or after the end of the run (runTrs ${runTrs} x tr ${tr} s = ${runEnd} s): no stimulus plays inside the run`);
    }
  }
  const last = placed[placed.length - 1];
  if (last.duration !== undefined && last.onset + last.duration <= 0) {
    throw rangeError(`onset ${last.onset} s with duration ${last.duration} s ends before the run starts: no stimulus plays inside the run`);
  }
  return placed;
}

/** A block of silence. */
const SILENCE_BLOCK = 1 << 16;

/** Samples [from, to) of each channel of a planar block of `channels` channels (a view for one channel). */
function planarPart(block: Float32Array, channels: number, from: number, to: number): Float32Array {
  if (channels === 1) return block.subarray(from, to);
  const length = block.length / channels;
  const out = new Float32Array((to - from) * channels);
  for (let c = 0; c < channels; c++) out.set(block.subarray(c * length + from, c * length + to), c * (to - from));
  return out;
}

/**
 * The run's audio as blocks of samples at `sampleRate` (see the module notes), reading each stimulus as it is
 * reached, holding one block at a time. `played` receives where each stimulus's samples landed. With `runSamples`
 * the audio ends there (silence after the last stimulus); `maxSamples` stops earlier still (reading no further).
 * Samples counts (runSamples, maxSamples) are per channel.
 */
export async function* runAudio(
  stimuli: PlacedStimulus[],
  options: { sampleRate: number; channels?: 1 | 2; runSamples?: number; maxSamples?: number; played?: PlayedStimulus[] },
): AsyncGenerator<Float32Array, void, undefined> {
  const { sampleRate } = options;
  const channels = options.channels ?? 1;
  const end = Math.min(options.runSamples ?? Infinity, options.maxSamples ?? Infinity);
  let pos = 0;
  function* silenceTo(target: number): Generator<Float32Array> {
    while (pos < target) {
      const n = Math.min(SILENCE_BLOCK, target - pos);
      pos += n;
      yield new Float32Array(n * channels);
    }
  }
  for (const s of stimuli) {
    if (pos >= end) break;
    const onset = Math.round(s.onset * sampleRate);
    yield* silenceTo(Math.min(onset, end));
    if (pos >= end) break;
    let skip = pos - onset; // samples of the stimulus before the run (negative onset)
    // samples of the file that can play: to its duration, and to the end of the run
    const readable = Math.min(s.duration === undefined ? Infinity : Math.round(s.duration * sampleRate), end - onset);
    let left = readable - skip;
    const start = pos;
    if (left > 0) {
      const maxSeconds = readable === Infinity ? undefined : readable / sampleRate;
      for await (const block of streamAudio(s.file, { sampleRate, channels, maxSeconds })) {
        const length = block.length / channels;
        let from = 0;
        if (skip > 0) {
          from = Math.min(skip, length);
          skip -= from;
        }
        const n = Math.min(length - from, left, end - pos);
        if (n > 0) {
          pos += n;
          left -= n;
          yield n === length ? block : planarPart(block, channels, from, from + n);
        }
        if (left <= 0 || pos >= end) break;
      }
    }
    options.played?.push({ file: s.file, onset: s.onset, start: start / sampleRate, end: pos / sampleRate });
  }
  if (options.runSamples !== undefined) yield* silenceTo(end);
}

/** The part of a stimulus a run plays: `count` samples of its file from `fileStart`, at run sample `runStart`. */
export interface RunPiece {
  /** Index of the stimulus in the list given to planRun. */
  stimulus: number;
  runStart: number;
  fileStart: number;
  count: number;
}

/** The run's audio laid out from its stimuli's lengths, without reading them (see {@link planRun}). */
export interface RunPlan {
  pieces: RunPiece[];
  played: PlayedStimulus[];
  /** Samples per channel of the run audio. */
  samples: number;
}

/**
 * Where each stimulus's samples land on the run timeline, given how many samples each file decodes to at
 * `sampleRate`: exactly the layout {@link runAudio} streams (same rounding, cuts and run end), computed without
 * audio, so that frames encoded from each file alone can be placed on the run (lib/fmri/run-frames.ts).
 */
export function planRun(stimuli: PlacedStimulus[], fileSamples: number[], options: { sampleRate: number; runSamples?: number; maxSamples?: number }): RunPlan {
  const { sampleRate } = options;
  const end = Math.min(options.runSamples ?? Infinity, options.maxSamples ?? Infinity);
  const pieces: RunPiece[] = [];
  const played: PlayedStimulus[] = [];
  let pos = 0;
  for (let i = 0; i < stimuli.length; i++) {
    const s = stimuli[i];
    if (pos >= end) break;
    const onset = Math.round(s.onset * sampleRate);
    pos = Math.max(pos, Math.min(onset, end));
    if (pos >= end) break;
    const skip = pos - onset;
    const readable = Math.min(s.duration === undefined ? Infinity : Math.round(s.duration * sampleRate), end - onset);
    const start = pos;
    const count = Math.max(0, Math.min(fileSamples[i], readable) - skip, 0);
    const taken = Math.min(count, end - pos);
    if (taken > 0) {
      pieces.push({ stimulus: i, runStart: pos, fileStart: skip, count: taken });
      pos += taken;
    }
    played.push({ file: s.file, onset: s.onset, start: start / sampleRate, end: pos / sampleRate });
  }
  if (options.runSamples !== undefined) pos = Math.max(pos, end);
  return { pieces, played, samples: pos };
}

/** Whether the run is the plain default (one stimulus at onset 0, no run length): the file itself. */
export function isPlainFile(stimuli: PlacedStimulus[], runTrs: number | undefined): boolean {
  return runTrs === undefined && stimuli.length === 1 && stimuli[0].onset === 0 && stimuli[0].duration === undefined;
}

/** Samples of a run of `runTrs` volumes. */
export function runSamplesFor(runTrs: number, tr: number, sampleRate: number): number {
  return samplesForTrs(runTrs, tr, sampleRate);
}

/** Volumes of a run without `runTrs`: whole TRs in its `samples` samples (floor((onset + duration) / tr)). */
export function defaultRunTrs(samples: number, tr: number, sampleRate: number): number {
  return trCountForSamples(samples, tr, sampleRate);
}

/** Throws unless some stimulus sample lies inside the first `nTrs` volumes. */
export function checkStimulusInRun(played: PlayedStimulus[], nTrs: number, tr: number): void {
  const runEnd = nTrs * tr;
  if (!played.some((p) => p.end > p.start && p.start < runEnd)) {
    const onsets = played.map((p) => `${p.onset} s`).join(', ');
    throw rangeError(`no stimulus plays inside the run (${nTrs} volumes of ${tr} s, onset ${onsets}); check onset and runTrs`);
  }
}

const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

/** Timing of volume k (see VolumeTiming). */
export function volumeTiming(k: number, tr: number, played: PlayedStimulus[]): VolumeTiming {
  const w0 = k * tr;
  const w1 = (k + 1) * tr;
  let covered = 0;
  let first: PlayedStimulus | undefined;
  for (const p of played) {
    const a = Math.max(w0, p.start);
    const b = Math.min(w1, p.end);
    if (b > a) {
      covered += b - a;
      first ??= p;
    }
  }
  const timing: VolumeTiming = {
    run_time_start: round6(w0),
    run_time_end: round6(w1),
    stimulus_time_start: NaN,
    stimulus_time_end: NaN,
    stimulus_fraction: round6(Math.min(1, covered / tr)),
    stim_file: first?.file ?? '',
  };
  if (first) {
    timing.stimulus_time_start = round6(Math.max(w0, first.start) - first.onset);
    timing.stimulus_time_end = round6(Math.min(w1, first.end) - first.onset);
  }
  return timing;
}
