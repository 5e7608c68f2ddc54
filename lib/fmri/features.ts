/**
 * The feature pipeline: a stimulus soundtrack -> one block of features per fMRI volume (TR), and back.
 *
 * Modes and outputs (`rate` is the model's code frames per second, info.frame_rate: 75 for encodec_24khz, 150 for
 * encodec_48khz):
 * - `mode: 'encodec', output: 'codes'` (default): EnCodec codes, int16, shape (n_trs, n_q, floor(tr * rate)).
 * - `mode: 'encodec', output: 'embeddings'`: the quantized latent vectors of those codes (what the decoder
 *   receives), float32, shape (n_trs, 128, floor(tr * rate)) (the model's latent dimension).
 * - `mode: 'encodec', output: 'latents'`: the encoder's output before quantization, same shape.
 * - `mode: 'mel'`: no model; a mel spectrogram in dB relative to the clip's maximum (see `./mel`), float32,
 *   shape (n_trs, n_mels, ceil(tr * sr / hop)) (65 frames for 1.5 s at 22.05 kHz, hop 512), of the mono mix at the
 *   mel rate whichever model is given.
 *
 * Alignment (see `./alignment`): n_trs = floor(duration / tr), capped by `maxTrs`; TR k starts at code frame
 * floor(k * tr * rate) (mel frame floor(k * tr * sr / hop)), computed exactly, so there is no drift. Two stages: each
 * stimulus file is encoded once by lib/encoding (streamed in chunks with left context, memory bounded for hour-long
 * soundtracks; `exact: true` in one pass), its frames kept in the encoding cache; the align stage here places them
 * on the run (./run-frames) and takes each TR's frames at those positions, without the model. Since
 * floor(tr * 75) <= tr * 75, consecutive windows can leave a frame between them (at TR 1.5 every second TR
 * boundary skips one frame); mel windows of ceil(...) frames overlap by up to one frame instead. Mel frames
 * past the end of the audio read -topDb (-80 dB).
 *
 * encodec_48khz: each stimulus is read as 48 kHz planar stereo (a mono file in both channels, as Meta's
 * convert_audio does; the two channels are coded jointly, one code stream), encoded segment by segment as it streams
 * (Meta's 1 s segments every 0.99 s, each normalised by its own scale; `exact` changes nothing), and the segments'
 * frames are put on a uniform 150 frames/s grid by time (lib/encoding/segment-grid.ts: grid frame n, at n / 150 s,
 * takes the frame of the latest segment started at its centre; no frame is more than half a frame, 1/300 s, from its
 * grid time). Everything above then works on that grid: 225 frames per TR of 1.5 s.
 *
 * An input shorter than one TR gives n_trs = 0: features of shape (0, n_q, frames) and no metadata rows
 * (not an error; the CLI reports it). `layout: 'flat'` gives (n_trs, n_q * frames): each TR row is the
 * (n_q, frames) block flattened codebook-major (row-major), i.e. index q * frames + t, the same memory order
 * as the 3-D layout.
 *
 * HRF (`hrf: 'glover' | 'spm'`): causal convolution along TRs with nilearn's kernel sampled at the TR. On
 * codes the values are converted to float, convolved, rounded and clipped to [0, 1023] (the older pipeline's
 * behaviour); embeddings and mel are convolved as floats.
 *
 * `featuresToAudio` puts frames back at their original positions in a timeline of exactly n_trs * tr
 * seconds; a frame no TR window covers (the gap frames above, and the tail after the last window) repeats
 * the frame before it. EnCodec codes are decoded at 24 kHz; mel features are inverted with Griffin-Lim at
 * the mel rate. Embeddings cannot be turned back into audio (the model decodes codes), nor can encodec_48khz codes
 * (its decoder needs whole segments and their scales, which TR features do not keep).
 */
import { loadAudio } from '../io/audio';
import { FRAME_RATE, HOP_LENGTH, MAX_CODEBOOKS, SAMPLE_RATE, checkBandwidth, codebooksForBandwidth } from '../codec/bandwidth';
import { checkCodeRange } from '../codec/codes';
import { Device, Encodec } from '../codec/codec';
import { withCodec as loadCodec } from '../codec/with-codec';
import {
  ceilTrTimesRate,
  checkTr,
  floorTrTimesRate,
  framesPerTr,
  samplesForTrs,
  trStartFrame,
  trStartTime,
} from './alignment';
import { HrfModel, convolveHrf, hrfKernel } from './hrf';
import {
  PlacedStimulus,
  PlayedStimulus,
  StimulusPlacement,
  VolumeTiming,
  checkRunTrs,
  checkStimuli,
  checkStimulusInRun,
  defaultRunTrs,
  isPlainFile,
  runAudio,
  planRun,
  runSamplesFor,
  volumeTiming,
} from './run-timeline';
import { FrameClock, FrameConvolver, RESAMPLE_METHODS, Resample, VolumeResampler, checkSliceTimeRef, volumeTimes } from './resample';
import { checkDelays, delayColumns, zscoreColumns } from './design';
import { MelOptions, MelSettings, melSettings, melSpectrogram, melToAudio } from '../dsp/mel';
import { ModelInfo, modelCodebooks, requireWholeFileModel } from '../model/model-file';
import { debug } from '../common/log';
import { CacheOption, encodeModel, encodingCodebooks, isEncodeModel, openCache } from '../encoding/context';
import { EncodeModel, EncodeTap, StimulusEncoding, encodeStimulus } from '../encoding/encode-stage';
import { FrameKind, StimulusFrames } from '../encoding/frame-source';
import { runFrameBlocks } from './run-frames';
import { codedError, rangeError, typeError } from '../common/errors';

export type FeatureMode = 'encodec' | 'mel';
export type FeatureOutput = 'codes' | 'embeddings' | 'latents';
export type FeatureLayout = 'tr' | 'flat';
export type HrfOption = 'none' | HrfModel;
/** What a feature array holds. */
export type FeatureKind = 'codes' | 'embeddings' | 'latents' | 'mel';

export const FEATURE_MODES: readonly FeatureMode[] = Object.freeze(['encodec', 'mel'] as FeatureMode[]);
export const FEATURE_OUTPUTS: readonly FeatureOutput[] = Object.freeze(['codes', 'embeddings', 'latents'] as FeatureOutput[]);
export const FEATURE_LAYOUTS: readonly FeatureLayout[] = Object.freeze(['tr', 'flat'] as FeatureLayout[]);
export const HRF_OPTIONS: readonly HrfOption[] = Object.freeze(['none', 'glover', 'spm'] as HrfOption[]);

/** Default TR in seconds. */
export const DEFAULT_TR = 1.5;
/** Default bandwidth of the feature pipeline, kbps (4 codebooks). */
export const DEFAULT_FEATURE_BANDWIDTH = 3;
/**
 * Audio read past the last TR when `maxTrs` stops reading early: the encoder looks a few frames ahead
 * (non-causal convolutions), so the last TR's codes equal the whole-file encoding's.
 */
export const ENCODEC_LOOKAHEAD_SECONDS = 1;

export interface ExtractOptions {
  /**
   * The model: a loaded `Encodec` (used as is, not disposed), or the path of a model file (loaded for this
   * call and disposed after it); default: `$ENCODEC_MODEL`, else the default cache path. Unused for mel.
   */
  model?: string | Encodec | EncodeModel;
  /** Repetition time in seconds (default 1.5). */
  tr?: number;
  /** EnCodec bandwidth in kbps (default 3: 4 codebooks; 2 with encodec_48khz, whose bandwidths are 3, 6, 12, 24). */
  bandwidth?: number;
  /** Keep at most this many TRs; stops reading and encoding after them (plus a 1 s look-ahead). */
  maxTrs?: number;
  /** HRF convolution along TRs (default 'none'). */
  hrf?: HrfOption;
  /** 'tr' (default): (n_trs, rows, frames); 'flat': (n_trs, rows * frames). */
  layout?: FeatureLayout;
  /** 'encodec' (default) or 'mel' (no model). */
  mode?: FeatureMode;
  /**
   * With mode 'encodec': 'codes' (default), 'embeddings' (quantized latents) or 'latents' (the encoder's output
   * before quantization; 24 kHz models of exporter 1.5+, any 48 kHz model).
   */
  output?: FeatureOutput;
  /**
   * Run time (seconds) at which the stimulus's first sample plays (default 0); negative: its first -onset seconds
   * played before the first volume. See ./run-timeline.
   */
  onset?: number;
  /** The run's number of volumes (default: floor((onset + duration) / tr)). */
  runTrs?: number;
  /** Volume k's reference time is (k + sliceTimeRef) * tr (0..1, default 0; nilearn's slice_time_ref). */
  sliceTimeRef?: number;
  /** Continuous kinds: 'window' (default: frames per TR), 'mean' or 'lanczos' (one value per row and volume). */
  resample?: Resample;
  /** FIR delays in volumes: the output becomes (n_trs, n_delays * features). */
  delays?: number[];
  /** Z-score each feature column over the run's volumes (before delays). */
  zscore?: boolean;
  /**
   * Encode each file in one pass (exactly the whole-file codes; memory grows with the length) instead of
   * the codec's default chunked encoding (lib/encoding/encode-stage.ts). Default false.
   */
  exact?: boolean;
  /** Mel settings for mode 'mel'. */
  mel?: MelOptions;
  /** Threads when the model is loaded from a path (default: all cores). */
  threads?: number;
  /** Device when the model is loaded from a path (default 'cpu'). */
  device?: Device;
  /**
   * Shown the audio and codes of the default streamed encoding (output codes or embeddings; not `exact`) as they
   * are read and computed: the audio is the run timeline ({@link extractedAudio}), e.g. for a round-trip score
   * (`extract --report`) that then needs no second reading and encoding. Not called on other paths (latents,
   * `exact`, mel).
   */
  tap?: EncodeTap;
  /**
   * The encoding cache (docs/cache.md): a folder; true or left out: the default one ($ENCODEC_CACHE, else
   * $XDG_CACHE_HOME/encodec-native/encodings); false: none (the result is the same, computed afresh). Unused for mel.
   */
  cache?: CacheOption;
}

export type { EncodeTap } from '../encoding/encode-stage';

/** One TR's row of metadata (the columns of the metadata CSV). */
export interface TrMetadata {
  tr_index: number;
  /** Seconds: k * tr. */
  start_time: number;
  /** Seconds: (k + 1) * tr. */
  end_time: number;
  /** Frames per TR in the features. */
  n_frames: number;
  /** Codebooks (0 for mel). */
  n_codebooks: number;
  /** kbps (null for mel). */
  bandwidth: number | null;
  encoding_mode: FeatureMode;
  /** The input file. */
  source: string;
  /** Run timing of the volume (see ./run-timeline); start_time / end_time equal run_time_start / run_time_end. */
  run_time_start: number;
  run_time_end: number;
  stimulus_time_start: number;
  stimulus_time_end: number;
  stimulus_fraction: number;
  stim_file: string;
  /** The volume's reference time t_k = (k + sliceTimeRef) * tr. */
  frame_time: number;
}

/** Features of one input, as `extractFeatures` returns them and `readFeatures` reads them back. */
export interface FeatureSet {
  kind: FeatureKind;
  /** Int16Array for codes, Float32Array for embeddings and mel; row-major for `shape`. */
  features: Int16Array | Float32Array;
  /** (n_trs, rows, frames) or, flat, (n_trs, rows * frames). */
  shape: number[];
  metadata: TrMetadata[];
  tr: number;
  layout: FeatureLayout;
  hrf: HrfOption;
  /** Frames per TR. */
  framesPerTr: number;
  /** Codebooks the codes (or embeddings) were made with (encodec mode). */
  nQ?: number;
  /** kbps (encodec mode). */
  bandwidth?: number;
  /** Mel settings (mel mode). */
  mel?: MelSettings;
  /** The input file (the events file for a run of several stimuli). */
  source: string;
  /** How continuous features were resampled (default 'window'). */
  resample?: Resample;
  /** FIR delays (volumes), when the features were delayed. */
  delays?: number[];
  /** Whether columns were z-scored. */
  zscore?: boolean;
  /** Run time of the first stimulus's first sample (seconds). */
  onset?: number;
  /** Volumes of the run. */
  runTrs?: number;
  sliceTimeRef?: number;
  /**
   * Models other than encodec_24khz (whose features leave both out, as before): the model's name (`encodec_48khz`) and
   * its code frames per second (150), the rate of the frames per TR.
   */
  model?: string;
  frameRate?: number;
  /** encodec mode: the model file's SHA-256, and each stimulus encoded (its file's SHA-256, whether from the cache). */
  modelSha256?: string;
  encodings?: { file: string; sha256: string; cached: boolean }[];
}

/** Features to turn back into audio: a FeatureSet, or at least its array and shape. */
export type FeatureInput = Pick<FeatureSet, 'features' | 'shape'> & Partial<Omit<FeatureSet, 'features' | 'shape'>>;

export interface FeaturesToAudioOptions {
  /** The model for codes (a loaded Encodec, or a path; default as in extractFeatures). */
  model?: string | Encodec;
  /** TR the features were extracted with (default: the features' own `tr`, else 1.5). */
  tr?: number;
  /** What the features are (default: the features' own `kind`; Int16/Int32 data -> 'codes'). */
  kind?: FeatureKind;
  /** Mel settings (default: the features' own, else the defaults). */
  mel?: MelOptions;
  threads?: number;
  device?: Device;
}

/** Audio from `featuresToAudio`. */
export interface FeatureAudio {
  samples: Float32Array;
  /** 24000 for codes, the mel sampleRate (22050 by default) for mel. */
  sampleRate: number;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], what: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw rangeError(`unknown ${what} '${String(value)}'; use one of ${allowed.join(', ')}`);
  }
  return value as T;
}

interface Settings {
  tr: number;
  bandwidth: number;
  maxTrs: number;
  hrf: HrfOption;
  layout: FeatureLayout;
  mode: FeatureMode;
  output: FeatureOutput;
  mel: MelSettings;
  onset: number;
  runTrs: number | undefined;
  sliceTimeRef: number;
  resample: Resample;
  delays: number[] | undefined;
  zscore: boolean;
}

/** Checks extraction options, throwing a TypeError/RangeError that names the bad one and the fix. */
export function checkExtractOptions(options: ExtractOptions = {}): Settings {
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  const tr = options.tr ?? DEFAULT_TR;
  checkTr(tr);
  const bandwidth = options.bandwidth ?? DEFAULT_FEATURE_BANDWIDTH;
  checkBandwidth(bandwidth);
  const maxTrs = options.maxTrs ?? Infinity;
  if (maxTrs !== Infinity && (!Number.isSafeInteger(maxTrs) || maxTrs < 1)) {
    throw rangeError(`maxTrs must be an integer >= 1 (or left out for all TRs), got ${String(maxTrs)}`);
  }
  const hrf = oneOf(options.hrf ?? 'none', HRF_OPTIONS, 'hrf');
  const layout = oneOf(options.layout ?? 'tr', FEATURE_LAYOUTS, 'layout');
  const mode = oneOf(options.mode ?? 'encodec', FEATURE_MODES, 'mode');
  const output = oneOf(options.output ?? 'codes', FEATURE_OUTPUTS, 'output');
  if (mode === 'mel' && options.output !== undefined && options.output !== 'codes') {
    throw rangeError(`output '${options.output}' needs mode 'encodec'; mode 'mel' always gives mel features`);
  }
  const model = options.model;
  if (model !== undefined && typeof model !== 'string' && !(model instanceof Encodec) && !isEncodeModel(model)) {
    throw typeError('model must be the path of a model file or a loaded Encodec');
  }
  const onset = options.onset ?? 0;
  if (typeof onset !== 'number' || !Number.isFinite(onset)) {
    throw rangeError(`onset must be a finite number of seconds (run time of the stimulus's first sample), got ${String(onset)}`);
  }
  const runTrs = checkRunTrs(options.runTrs);
  if (runTrs !== undefined && onset >= runTrs * tr) {
    throw rangeError(`onset ${onset} s is at or after the end of the run (runTrs ${runTrs} x tr ${tr} s = ${runTrs * tr} s): no stimulus plays inside the run`);
  }
  const sliceTimeRef = checkSliceTimeRef(options.sliceTimeRef ?? 0);
  const resample = oneOf(options.resample ?? 'window', RESAMPLE_METHODS, 'resample');
  const codes = mode === 'encodec' && output === 'codes';
  if (codes && resample !== 'window') {
    throw rangeError(`resample '${resample}' needs continuous features (output latents or embeddings, or mode mel): codes are categorical, so averaging or interpolating them means nothing; use resample 'window'`);
  }
  const zscore = options.zscore ?? false;
  if (typeof zscore !== 'boolean') throw typeError(`zscore must be true or false, got ${typeof zscore}`);
  if (codes && zscore) {
    throw rangeError('zscore needs continuous features (output latents or embeddings, or mode mel): codes are categorical');
  }
  const delays = options.delays === undefined ? undefined : checkDelays(options.delays);
  return { tr, bandwidth, maxTrs, hrf, layout, mode, output, mel: melSettings(options.mel), onset, runTrs, sliceTimeRef, resample, delays, zscore };
}

/**
 * The audio a run's features are made from, at `sampleRate` (planar with `channels: 2`): the run timeline
 * (./run-timeline), ended by `runTrs` and, with `maxTrs`, after maxTrs * tr seconds plus the look-ahead of `s.mode`.
 */
function timeline(placed: PlacedStimulus[], s: Settings, sampleRate: number, channels: 1 | 2, played?: PlayedStimulus[]): AsyncGenerator<Float32Array> {
  const lookahead = s.mode === 'mel' ? melSeries(s).lookahead : ENCODEC_LOOKAHEAD_SECONDS; // the series' (codecSeries: the latter)
  const runSamples = s.runTrs === undefined ? undefined : runSamplesFor(s.runTrs, s.tr, sampleRate);
  const maxSamples = s.maxTrs === Infinity ? undefined : Math.round((s.maxTrs * s.tr + lookahead) * sampleRate);
  return runAudio(placed, { sampleRate, channels, runSamples, maxSamples, played });
}

/**
 * The audio {@link extractRunFeatures} encodes for these stimuli and options (silence, each stimulus from its
 * onset, cut to its duration and to the run; see ./run-timeline), read afresh at the rate and channels asked for
 * each time it is called (the model's: 24 kHz mono, or 48 kHz planar stereo; the mel rate, mono): what
 * `extract --report` scores when the features' own stream could not be tapped. Throws as extractRunFeatures does
 * for bad options or placements.
 */
export function extractedAudio(
  stimuli: StimulusPlacement[],
  options: ExtractOptions = {},
): (sampleRate: number, channels?: 1 | 2) => AsyncGenerator<Float32Array> {
  const s = checkExtractOptions(options);
  const placed = checkStimuli(stimuli, s.tr, s.runTrs);
  return (sampleRate, channels = 1) => timeline(placed, s, sampleRate, channels);
}

/** A stream of run audio that counts its samples (per channel) and knows whether it was read to its end. */
interface CountedAudio {
  blocks: AsyncGenerator<Float32Array>;
  samples: number;
  /** True once the source was exhausted (so samples === 0 then means genuinely empty audio). */
  ended: boolean;
}

function counted(source: AsyncIterable<Float32Array>, channels = 1): CountedAudio {
  const state = { samples: 0, ended: false };
  async function* blocks(): AsyncGenerator<Float32Array> {
    for await (const block of source) {
      state.samples += block.length / channels;
      yield block;
    }
    state.ended = true;
  }
  return Object.assign(state, { blocks: blocks() });
}

/** Collects a stream of sample blocks into one array. */
async function collect(blocks: AsyncIterable<Float32Array>): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  let total = 0;
  for await (const b of blocks) {
    parts.push(b.slice());
    total += b.length;
  }
  const out = new Float32Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Runs `work` with a codec: the given one, or one loaded from a path (disposed afterwards). */
async function withCodec<T>(
  model: string | Encodec | undefined,
  load: { threads?: number; device?: Device },
  work: (codec: Encodec) => Promise<T>,
): Promise<T> {
  return loadCodec(model, load, work);
}

/**
 * Copies TR windows out of a [rows, nFrames] array into [nTrs, rows, frames]; frames past `nFrames` get `pad`.
 * `start(k)` is the first frame of TR k.
 */
function sliceWindows<T extends Int16Array | Float32Array>(
  src: ArrayLike<number>,
  rows: number,
  nFrames: number,
  nTrs: number,
  frames: number,
  start: (k: number) => number,
  out: T,
  pad = 0,
): T {
  for (let k = 0; k < nTrs; k++) {
    const s = start(k);
    for (let r = 0; r < rows; r++) {
      const dst = (k * rows + r) * frames;
      for (let t = 0; t < frames; t++) out[dst + t] = s + t < nFrames ? src[r * nFrames + s + t] : pad;
    }
  }
  return out;
}

/**
 * Copies the frames of a block of a [rows, *] series (frames [first, first + n)) into the TR windows that hold them
 * ([nTrs, rows, frames], TR k from frame start(k)); frames no window holds are skipped, window frames past the series
 * stay as `out` was made (zeros), as sliceWindows pads them.
 */
function placeInWindows(
  block: ArrayLike<number>,
  rows: number,
  first: number,
  n: number,
  nTrs: number,
  frames: number,
  start: (k: number) => number,
  out: Int16Array | Float32Array,
): void {
  for (let k = 0; k < nTrs; k++) {
    const s = start(k);
    const lo = Math.max(s, first);
    const hi = Math.min(s + frames, first + n);
    if (s >= first + n) break;
    for (let r = 0; r < rows; r++) {
      const dst = (k * rows + r) * frames - s;
      const src = r * n - first;
      for (let f = lo; f < hi; f++) out[dst + f] = block[src + f];
    }
  }
}

function metadataRows(nTrs: number, s: Settings, frames: number, nQ: number, source: string, played: PlayedStimulus[]): TrMetadata[] {
  const rows: TrMetadata[] = [];
  const times = volumeTimes(nTrs, s.tr, s.sliceTimeRef);
  for (let k = 0; k < nTrs; k++) {
    const timing: VolumeTiming = volumeTiming(k, s.tr, played);
    rows.push({
      tr_index: k,
      start_time: trStartTime(k, s.tr),
      end_time: trStartTime(k + 1, s.tr),
      n_frames: frames,
      n_codebooks: s.mode === 'mel' ? 0 : nQ,
      bandwidth: s.mode === 'mel' ? null : s.bandwidth,
      encoding_mode: s.mode,
      source,
      ...timing,
      frame_time: Math.round(times[k] * 1e6) / 1e6,
    });
  }
  return rows;
}

/** Convolves [nTrs, ...] features with the HRF; codes are rounded and clipped to [0, 1023]. */
function applyHrf<T extends Int16Array | Float32Array>(features: T, nTrs: number, hrf: HrfOption, tr: number): T {
  if (hrf === 'none' || nTrs === 0) return features;
  const convolved = convolveHrf(features, nTrs, hrfKernel(hrf, tr));
  if (features instanceof Int16Array) {
    const out = new Int16Array(convolved.length);
    for (let i = 0; i < out.length; i++) out[i] = Math.min(1023, Math.max(0, Math.round(convolved[i])));
    return out as T;
  }
  return Float32Array.from(convolved) as T;
}

/**
 * Features of one audio or video file (see the module notes for shapes, alignment and layouts), on the scanner's
 * clock when `onset` / `runTrs` are given (see ./run-timeline).
 * Throws TypeError/RangeError for bad options, AudioError for unreadable input.
 */
export async function extractFeatures(file: string, options: ExtractOptions = {}): Promise<FeatureSet> {
  if (typeof file !== 'string' || file === '') throw typeError('file must be the path of an audio or video file');
  return extractRunFeatures([{ file, onset: options.onset ?? 0 }], options, file);
}

/** Where a run's frame series goes: whole (TR windows) or block by block into a resampler. */
interface SeriesSink {
  add(data: ArrayLike<number>, firstFrame: number, nFrames: number): void;
}

/** The frame series a run's features come from: the audio it is computed from and its frames' clock and TR windows. */
interface Series {
  /** Rate and channels the audio is read at. */
  sampleRate: number;
  channels: 1 | 2;
  /** Seconds read past the last TR when `maxTrs` stops early. */
  lookahead: number;
  /** Frame j is centred at (j + offset) / rate. */
  clock: FrameClock;
  /** Values per frame (codebooks, latent dimension or mel bands). */
  rows: number;
  /** Frames per TR window, and the first frame of TR k. */
  frames: number;
  start: (k: number) => number;
  /** Codebooks of the bandwidth (for metadata; encodec mode). */
  nQ: number;
  /** Models other than encodec_24khz: its name and frame rate, recorded with the features. */
  model?: { name: string; frameRate: number };
}

/** The mel series: the mel settings' rate and hop, mono audio (the model is not used). */
function melSeries(s: Settings): Series {
  const m = s.mel;
  return {
    sampleRate: m.sampleRate,
    channels: 1,
    lookahead: m.nFft / m.sampleRate,
    clock: { rate: m.sampleRate / m.hopLength, offset: 0 },
    rows: m.nMels,
    frames: ceilTrTimesRate(s.tr, m.sampleRate, m.hopLength),
    start: (k) => floorTrTimesRate(k, s.tr, m.sampleRate, m.hopLength),
    nQ: codebooksForBandwidth(s.bandwidth),
  };
}

/**
 * A model's series: its audio rate and channels (planar stereo for encodec_48khz), its frame rate (info.frame_rate:
 * 75 frames/s for encodec_24khz; 150 for encodec_48khz, whose segment frames are put on a uniform grid first, see
 * lib/encoding/segment-grid.ts), frame j centred at (j + 0.5) / rate, and its latent dimension.
 */
function codecSeries(s: Settings, kind: FeatureKind, info: ModelInfo): Series {
  const rate = info.frame_rate;
  const nQ = info.model === 'encodec_24khz' ? codebooksForBandwidth(s.bandwidth) : modelCodebooks(info, s.bandwidth);
  return {
    sampleRate: info.sample_rate,
    channels: info.channels === 2 ? 2 : 1,
    lookahead: ENCODEC_LOOKAHEAD_SECONDS,
    clock: { rate, offset: 0.5 },
    rows: kind === 'codes' ? nQ : info.dimension,
    frames: framesPerTr(s.tr, rate),
    start: (k) => trStartFrame(k, s.tr, rate),
    nQ,
    ...(info.model === 'encodec_24khz' ? {} : { model: { name: info.model, frameRate: rate } }),
  };
}

/**
 * Features of a run holding one or more stimuli placed at their onsets (BIDS events; see ./run-timeline): as
 * {@link extractFeatures}, with `source` naming the run in the metadata. `options.onset` is ignored here: each
 * placement carries its own.
 */
export async function extractRunFeatures(stimuli: StimulusPlacement[], options: ExtractOptions = {}, source?: string): Promise<FeatureSet> {
  const s = checkExtractOptions(options);
  const placed = checkStimuli(stimuli, s.tr, s.runTrs);
  const src = source ?? placed[0].file;
  const plain = isPlainFile(placed, s.runTrs);
  const mel = s.mode === 'mel';
  const played: PlayedStimulus[] = [];
  const kind: FeatureKind = mel ? 'mel' : s.output;
  const windowed = s.resample === 'window';
  // The series (and so the audio's rate and channels, and the frame rate) is the mel settings', or the model's once
  // it is loaded.
  let series = mel ? melSeries(s) : undefined;
  const known = (): Series => series as Series;
  const maxSecondsOf = (x: Series): number | undefined => (s.maxTrs === Infinity ? undefined : s.maxTrs * s.tr + x.lookahead);
  const audio = (): CountedAudio => {
    const { sampleRate, channels } = known();
    return counted(timeline(placed, s, sampleRate, channels, played), channels);
  };
  const volumesOf = (samples: number): number => Math.min(s.maxTrs, s.runTrs ?? defaultRunTrs(samples, s.tr, known().sampleRate));

  // The frame series goes whole into TR windows, or block by block (after an HRF at the frame rate) into a resampler.
  let resampler: VolumeResampler | undefined;
  let sink: SeriesSink | undefined;
  const openSink = (x: Series): void => {
    if (windowed) return;
    const r = new VolumeResampler(s.resample as 'mean' | 'lanczos', x.rows, s.tr, x.clock, s.sliceTimeRef, Math.min(s.maxTrs, s.runTrs ?? Infinity));
    resampler = r;
    if (s.hrf === 'none') sink = r;
    else {
      const convolver = new FrameConvolver(x.rows, hrfKernel(s.hrf, 1 / x.clock.rate));
      let next = 0;
      sink = {
        add(data, firstFrame, nFrames) {
          if (firstFrame !== next) throw codedError('ENCODEC_INTERNAL', `internal error: frames ${firstFrame} arrived, ${next} expected`);
          next += nFrames;
          r.add(convolver.push(data, nFrames), firstFrame, nFrames);
        },
      };
    }
  };

  let nTrs = 0;
  let encoded: Pick<FeatureSet, 'modelSha256' | 'encodings'> = {};
  let features: Int16Array | Float32Array = kind === 'codes' ? new Int16Array(0) : new Float32Array(0);
  if (mel) {
    const m = s.mel;
    const { rows, frames, start } = known();
    openSink(known());
    const maxSeconds = maxSecondsOf(known());
    const samples = plain ? (await loadAudio(placed[0].file, { sampleRate: m.sampleRate, maxSeconds })).samples : await collect(audio().blocks);
    if (plain) played.push({ file: placed[0].file, onset: 0, start: 0, end: samples.length / m.sampleRate });
    nTrs = volumesOf(samples.length);
    if (nTrs > 0) {
      const spec = await melSpectrogram(samples, m);
      if (sink) sink.add(spec.data, 0, spec.nFrames);
      else features = sliceWindows(spec.data, rows, spec.nFrames, nTrs, frames, start, new Float32Array(nTrs * m.nMels * frames), -m.topDb);
    }
  } else {
    // encode stage: each stimulus's frames at the model's rate (cached); align stage: placed on the run, never the model
    const model = await encodeModel(options.model, options);
    const cache = await openCache(options.cache);
    const encodings: (StimulusEncoding | undefined)[] = [];
    try {
      const info = model.info;
      series = codecSeries(s, kind, info);
      const x = series;
      const maxSamples = s.maxTrs === Infinity ? undefined : Math.round((s.maxTrs * s.tr + x.lookahead) * x.sampleRate);
      const stored = kind === 'latents' ? 'latents' : 'codes';
      const runSamples = s.runTrs === undefined ? undefined : runSamplesFor(s.runTrs, s.tr, x.sampleRate);
      for (const p of placed) {
        const onset = Math.round(p.onset * x.sampleRate);
        // a stimulus the run never reaches is not read; when maxTrs stops early, only the part the run can reach is
        // read (an entry cut short is not cached)
        const reach = maxSamples === undefined ? undefined : maxSamples - onset;
        if ((reach !== undefined && reach <= 0) || (runSamples !== undefined && onset >= runSamples)) {
          encodings.push(undefined);
          continue;
        }
        const tap = plain && options.tap && stored === 'codes' && options.exact !== true ? { nQ: x.nQ, tap: options.tap } : undefined;
        const maxSeconds = reach === undefined ? undefined : reach / x.sampleRate;
        encodings.push(await encodeStimulus(cache, model, p.file, { stored, exact: options.exact, maxSeconds, tap }));
      }
      encoded = {
        modelSha256: encodings.find((e) => e)?.entry.meta.model_sha256,
        encodings: encodings.flatMap((e, i) => (e ? [{ file: placed[i].file, sha256: e.entry.meta.source_sha256, cached: e.cached }] : [])),
      };
      const plan = planRun(placed, encodings.map((e) => e?.entry.meta.samples ?? 0), { sampleRate: x.sampleRate, runSamples, maxSamples });
      played.push(...plan.played);
      nTrs = volumesOf(plan.samples);
      const codebooks = kind === 'embeddings' ? await encodingCodebooks(cache, model) : undefined;
      const sources: (StimulusFrames | undefined)[] = [];
      for (const e of encodings) sources.push(e ? await StimulusFrames.open(e.entry, { kind: kind as FrameKind, nQ: x.nQ, codebooks }) : undefined);
      const hop = x.sampleRate / x.clock.rate;
      openSink(x);
      if (!sink) features = kind === 'codes' ? new Int16Array(nTrs * x.rows * x.frames) : new Float32Array(nTrs * x.rows * x.frames);
      if (plan.pieces.length > 0 && (nTrs > 0 || sink)) {
        for await (const block of runFrameBlocks(plan, sources, hop)) {
          if (sink) sink.add(block.data, block.first, block.n);
          else placeInWindows(block.data, x.rows, block.first, block.n, nTrs, x.frames, x.start, features);
        }
      }
    } finally {
      for (const e of encodings) await e?.release();
      await cache.close();
      await model.close();
    }
  }
  if (!plain || s.runTrs !== undefined) checkStimulusInRun(played, nTrs, s.tr);

  const { rows, frames, nQ, model } = known();
  let shape: number[];
  if (resampler) {
    features = resampler.result(nTrs);
    shape = [nTrs, rows];
  } else {
    features = applyHrf(features, nTrs, s.hrf, s.tr);
    shape = s.layout === 'flat' ? [nTrs, rows * frames] : [nTrs, rows, frames];
  }
  const width = nTrs === 0 ? shape.slice(1).reduce((a, b) => a * b, 1) : features.length / nTrs;
  if (s.zscore) features = zscoreColumns(features, nTrs, width);
  if (s.delays) {
    features = delayColumns(features, nTrs, width, s.delays);
    shape = [nTrs, s.delays.length * width];
  }
  const result: FeatureSet = {
    kind,
    features,
    shape,
    metadata: metadataRows(nTrs, s, windowed ? frames : 1, nQ, src, played),
    tr: s.tr,
    layout: shape.length === 2 && (s.layout === 'flat' || !windowed || s.delays) ? 'flat' : 'tr',
    hrf: s.hrf,
    framesPerTr: windowed ? frames : 1,
    source: src,
    ...(mel ? { mel: s.mel } : { nQ, bandwidth: s.bandwidth }),
    ...(windowed ? {} : { resample: s.resample }),
    ...(s.delays ? { delays: s.delays } : {}),
    ...(s.zscore ? { zscore: true } : {}),
    onset: placed[0].onset,
    runTrs: s.runTrs,
    sliceTimeRef: s.sliceTimeRef,
    ...(model ? { model: model.name, frameRate: model.frameRate } : {}),
    ...encoded,
  };
  debug('features', () => {
    const hrf = s.hrf === 'none' ? '' : `, ${s.hrf} HRF`;
    const how = windowed ? `${frames} frames each` : `${s.resample} at t_k = (k + ${s.sliceTimeRef}) * tr`;
    return `'${src}': ${nTrs} volumes of ${s.tr} s (${how}${hrf}, onset ${placed[0].onset} s) -> ${kind} (${shape.join(', ')})`;
  });
  return result;
}

/** Resolves (n_trs, rows, frames) of features given 3-D, or flat with a known frames-per-TR. */
function featureDims(input: FeatureInput, frames: number, what: string): [number, number, number] {
  const { shape, features } = input;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw typeError('features.shape must be an array of non-negative integers');
  }
  let dims: [number, number, number];
  if (shape.length === 3) {
    if (shape[2] !== frames) {
      throw rangeError(
        `${what} features have ${shape[2]} frames per TR but the TR gives ${frames}; pass the tr they were extracted with`,
      );
    }
    dims = [shape[0], shape[1], shape[2]];
  } else if (shape.length === 2) {
    if (shape[1] % frames !== 0) {
      throw rangeError(
        `flat ${what} features have ${shape[1]} values per TR, not a multiple of the ${frames} frames per TR; pass the tr they were extracted with`,
      );
    }
    dims = [shape[0], shape[1] / frames, frames];
  } else {
    throw rangeError(`features must have shape (n_trs, rows, frames) or flat (n_trs, rows * frames), got (${shape.join(', ')})`);
  }
  if (features.length !== dims[0] * dims[1] * dims[2]) {
    throw rangeError(`features hold ${features.length} values but shape (${shape.join(', ')}) needs ${dims[0] * dims[1] * dims[2]}`);
  }
  if (dims[0] === 0) throw rangeError('features hold no TRs (the input was shorter than one TR); nothing to turn into audio');
  return dims;
}

/**
 * The inverse of sliceWindows: writes [nTrs, rows, frames] windows into a [rows, total] timeline at `start(k)`;
 * with `fillGaps`, a frame no window covers repeats the frame before it.
 */
function placeWindows<T extends Int16Array | Float32Array>(
  src: ArrayLike<number>,
  [nTrs, rows, frames]: [number, number, number],
  total: number,
  start: (k: number) => number,
  out: T,
  fillGaps: boolean,
): T {
  const covered = new Uint8Array(total);
  for (let k = 0; k < nTrs; k++) {
    const s = start(k);
    for (let t = 0; t < frames && s + t < total; t++) {
      covered[s + t] = 1;
      for (let r = 0; r < rows; r++) out[r * total + s + t] = src[(k * rows + r) * frames + t];
    }
  }
  if (fillGaps) {
    for (let j = 1; j < total; j++) {
      if (covered[j]) continue;
      for (let r = 0; r < rows; r++) out[r * total + j] = out[r * total + j - 1];
    }
  }
  return out;
}

/**
 * Audio from TR features (codes or mel; 3-D or flat), lasting exactly n_trs * tr seconds: frames go back to
 * their original positions and frames between windows repeat the frame before them (see the module notes).
 */
export async function featuresToAudio(input: FeatureInput, options: FeaturesToAudioOptions = {}): Promise<FeatureAudio> {
  if (typeof input !== 'object' || input === null || !ArrayBuffer.isView(input.features)) {
    throw typeError('features must be { features: Int16Array | Float32Array, shape } as returned by extractFeatures or readFeatures');
  }
  const tr = options.tr ?? input.tr ?? DEFAULT_TR;
  checkTr(tr);
  const integer = input.features instanceof Int16Array || input.features instanceof Int32Array;
  const kind = options.kind ?? input.kind ?? (integer ? 'codes' : undefined);
  if (kind === undefined) throw typeError("float features need kind 'mel' or 'embeddings'; pass { kind }");
  oneOf(kind, ['codes', 'embeddings', 'latents', 'mel'] as const, 'feature kind');
  if (kind === 'embeddings' || kind === 'latents') {
    throw rangeError(`${kind} cannot be turned back into audio (the model decodes codes); extract with output 'codes' to listen`);
  }
  if ((input.resample !== undefined && input.resample !== 'window') || input.delays !== undefined) {
    throw rangeError('resampled or delayed features hold no frames to turn back into audio; extract with resample window and no delays to listen');
  }
  if (kind === 'codes') {
    if (!integer) throw typeError(`codes must be integers (Int16Array or Int32Array), got ${input.features.constructor.name}`);
    if ((input.model !== undefined && input.model !== 'encodec_24khz') || (input.frameRate !== undefined && input.frameRate !== FRAME_RATE)) {
      throw rangeError(
        `these codes were extracted with ${input.model ?? `a ${input.frameRate} frames/s model`}, whose TR features cannot be turned back into ` +
          'audio: its decoder needs each 1 s segment whole with its scale, and TR features keep neither the scales nor the segment ' +
          'frames the 150 frames/s grid leaves out (docs/models-48khz.md); to listen, encode and decode the file with that model (`encode` / `decode`)',
      );
    }
    const dims = featureDims(input, framesPerTr(tr), 'codes');
    const nQ = dims[1];
    if (nQ < 1 || nQ > MAX_CODEBOOKS) throw rangeError(`codes have ${nQ} codebooks; expected 1..${MAX_CODEBOOKS} (2, 4, 8, 16 or 32)`);
    checkCodeRange(input.features, 'codes');
    const length = samplesForTrs(dims[0], tr, SAMPLE_RATE);
    const total = Math.ceil(length / HOP_LENGTH);
    const data = placeWindows(input.features, dims, total, (k) => trStartFrame(k, tr), new Int16Array(nQ * total), true);
    const samples = await withCodec(options.model, options, (codec) => {
      requireWholeFileModel(codec.info, 'turning TR features back into audio');
      return codec.decode({ data, nQ, nFrames: total });
    });
    return { samples: samples.subarray(0, length), sampleRate: SAMPLE_RATE };
  }
  if (!(input.features instanceof Float32Array)) throw typeError(`mel features must be a Float32Array, got ${input.features.constructor.name}`);
  const m = melSettings({ ...input.mel, ...options.mel });
  const frames = ceilTrTimesRate(tr, m.sampleRate, m.hopLength);
  const dims = featureDims(input, frames, 'mel');
  if (dims[1] !== m.nMels) throw rangeError(`mel features have ${dims[1]} bands but the mel settings say ${m.nMels}; pass mel: { nMels: ${dims[1]} }`);
  const length = samplesForTrs(dims[0], tr, m.sampleRate);
  const total = 1 + Math.floor(length / m.hopLength);
  const spec = new Float32Array(m.nMels * total).fill(-m.topDb);
  placeWindows(input.features, dims, total, (k) => floorTrTimesRate(k, tr, m.sampleRate, m.hopLength), spec, true);
  const samples = await melToAudio({ data: spec, nMels: m.nMels, nFrames: total }, length, m);
  return { samples, sampleRate: m.sampleRate };
}
