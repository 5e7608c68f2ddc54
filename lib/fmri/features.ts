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
 * Options and their check: ./extract-options; the FeatureSet made here: ./feature-set; back to audio:
 * ./features-audio.
 */
import { loadAudio } from '../io/audio';
import { codebooksForBandwidth } from '../codec/bandwidth';
import { ceilTrTimesRate, floorTrTimesRate, framesPerTr, trStartFrame, trStartTime } from './alignment';
import { convolveHrf, hrfKernel } from './hrf';
import {
  PlacedStimulus,
  PlayedStimulus,
  StimulusPlacement,
  VolumeTiming,
  checkStimuli,
  checkStimulusInRun,
  defaultRunTrs,
  isPlainFile,
  runAudio,
  planRun,
  runSamplesFor,
  volumeTiming,
} from './run-timeline';
import { FrameClock, FrameConvolver, VolumeResampler, volumeTimes } from './resample';
import { delayColumns, zscoreColumns } from './design';
import { melSpectrogram } from '../dsp/mel';
import { ModelInfo, modelCodebooks } from '../model/model-file';
import { DEFAULT_FAMILY, familyOf } from '../model/family';
import { debug } from '../common/log';
import { encodeModel, encodingCodebooks, openCache } from '../encoding/context';
import { StimulusEncoding, encodeStimulus } from '../encoding/encode-stage';
import { FrameKind, StimulusFrames } from '../encoding/frame-source';
import { runFrameBlocks } from './run-frames';
import { codedError, typeError } from '../common/errors';
import { ExtractOptions, ExtractSettings, checkExtractOptions } from './extract-options';
import { FeatureKind, FeatureSet, HrfOption, TrMetadata } from './feature-set';
import { placeInWindows } from './tr-windows';

/**
 * Audio read past the last TR when `maxTrs` stops reading early: the encoder looks a few frames ahead
 * (non-causal convolutions), so the last TR's codes equal the whole-file encoding's.
 */
export const ENCODEC_LOOKAHEAD_SECONDS = 1;

/**
 * The audio a run's features are made from, at `sampleRate` (planar with `channels: 2`): the run timeline
 * (./run-timeline), ended by `runTrs` and, with `maxTrs`, after maxTrs * tr seconds plus the look-ahead of `s.mode`.
 */
function timeline(placed: PlacedStimulus[], s: ExtractSettings, sampleRate: number, channels: 1 | 2, played?: PlayedStimulus[]): AsyncGenerator<Float32Array> {
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

/** The metadata rows (CSV columns) of a run's volumes. */
function metadataRows(nTrs: number, s: ExtractSettings, frames: number, nQ: number, source: string, played: PlayedStimulus[]): TrMetadata[] {
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

/** The frame series a run's features come from: the audio it is computed from and its frames' clock and TR windows. */
interface Series {
  /** Rate the audio is read at. */
  sampleRate: number;
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
  /** Models of families other than the default: its name and frame rate, recorded with the features. */
  model?: { name: string; frameRate: number };
}

/** The mel series: the mel settings' rate and hop, mono audio (the model is not used). */
function melSeries(s: ExtractSettings): Series {
  const m = s.mel;
  return {
    sampleRate: m.sampleRate,
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
function codecSeries(s: ExtractSettings, kind: FeatureKind, info: ModelInfo): Series {
  const rate = info.frame_rate;
  const nQ = modelCodebooks(info, s.bandwidth);
  return {
    sampleRate: info.sample_rate,
    lookahead: ENCODEC_LOOKAHEAD_SECONDS,
    clock: { rate, offset: 0.5 },
    rows: kind === 'codes' ? nQ : info.dimension,
    frames: framesPerTr(s.tr, rate),
    start: (k) => trStartFrame(k, s.tr, rate),
    nQ,
    // the default family's features name no model, as before there were others
    ...(familyOf(info) === DEFAULT_FAMILY ? {} : { model: { name: info.model, frameRate: rate } }),
  };
}

/** The number of volumes of a run of `samples` samples at `sampleRate`: runTrs, else as many as the audio fills; at most maxTrs. */
function volumesOf(s: ExtractSettings, samples: number, sampleRate: number): number {
  return Math.min(s.maxTrs, s.runTrs ?? defaultRunTrs(samples, s.tr, sampleRate));
}

/**
 * Takes a run's frame series block by block, in order: into TR windows (resample 'window'; window frames past the
 * series hold `pad`), or (after an HRF at the frame rate) into a volume resampler; then gives the run's features.
 */
class RunSink {
  private readonly windows?: Int16Array | Float32Array;
  private readonly resampler?: VolumeResampler;
  private readonly convolver?: FrameConvolver;
  private next = 0;

  constructor(
    private readonly s: ExtractSettings,
    private readonly x: Series,
    private readonly nTrs: number,
    kind: FeatureKind,
    pad = 0,
  ) {
    if (s.resample === 'window') {
      const size = nTrs * x.rows * x.frames;
      this.windows = kind === 'codes' ? new Int16Array(size) : new Float32Array(size).fill(pad);
    } else {
      this.resampler = new VolumeResampler(s.resample, x.rows, s.tr, x.clock, s.sliceTimeRef, nTrs);
      if (s.hrf !== 'none') this.convolver = new FrameConvolver(x.rows, hrfKernel(s.hrf, 1 / x.clock.rate));
    }
  }

  /** Frames [first, first + n) of the series, laid out [rows, n]. */
  add(data: ArrayLike<number>, first: number, n: number): void {
    if (this.windows) {
      placeInWindows(data, this.x.rows, first, n, this.nTrs, this.x.frames, this.x.start, this.windows);
      return;
    }
    const resampler = this.resampler as VolumeResampler;
    if (!this.convolver) {
      resampler.add(data, first, n);
      return;
    }
    // the convolution runs along the series, so it must see every frame once, in order
    if (first !== this.next) throw codedError('ENCODEC_INTERNAL', `internal error: frames ${first} arrived, ${this.next} expected`);
    this.next += n;
    resampler.add(this.convolver.push(data, n), first, n);
  }

  /** [nTrs, rows, frames] windows (the HRF applied along TRs), or [nTrs, rows] values at the volume times. */
  features(): Int16Array | Float32Array {
    if (this.windows) return applyHrf(this.windows, this.nTrs, this.s.hrf, this.s.tr);
    return (this.resampler as VolumeResampler).result(this.nTrs);
  }
}

/** A run's features before z-scoring and delays, with the series they come from. */
interface RunFeatures {
  nTrs: number;
  series: Series;
  features: Int16Array | Float32Array;
  /** encodec mode: what FeatureSet records of the encodings. */
  encoded: Pick<FeatureSet, 'modelSha256' | 'encodings'>;
}

/** Mel mode: the run's audio (the file itself when it plays alone from 0) as a mel spectrogram, at the mel rate. */
async function melRun(s: ExtractSettings, placed: PlacedStimulus[], plain: boolean, played: PlayedStimulus[]): Promise<RunFeatures> {
  const m = s.mel;
  const x = melSeries(s);
  const maxSeconds = s.maxTrs === Infinity ? undefined : s.maxTrs * s.tr + x.lookahead;
  const samples = plain
    ? (await loadAudio(placed[0].file, { sampleRate: m.sampleRate, maxSeconds })).samples
    : await collect(timeline(placed, s, m.sampleRate, 1, played));
  if (plain) played.push({ file: placed[0].file, onset: 0, start: 0, end: samples.length / m.sampleRate });
  const nTrs = volumesOf(s, samples.length, m.sampleRate);
  const sink = new RunSink(s, x, nTrs, 'mel', -m.topDb);
  if (nTrs > 0) {
    const spec = await melSpectrogram(samples, m);
    sink.add(spec.data, 0, spec.nFrames);
  }
  return { nTrs, series: x, features: sink.features(), encoded: {} };
}

/**
 * encodec mode, in two stages: the encode stage gives each stimulus's frames at the model's rate (from the cache, or
 * encoded once and cached); the align stage places them on the run (./run-frames) and never calls the model.
 */
async function codecRun(s: ExtractSettings, placed: PlacedStimulus[], plain: boolean, played: PlayedStimulus[], options: ExtractOptions): Promise<RunFeatures> {
  const kind = s.output;
  const model = await encodeModel(options.model, options);
  const cache = await openCache(options.cache);
  const encodings: (StimulusEncoding | undefined)[] = [];
  try {
    const x = codecSeries(s, kind, model.info);
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
    const encoded = {
      modelSha256: encodings.find((e) => e)?.entry.meta.model_sha256,
      encodings: encodings.flatMap((e, i) => (e ? [{ file: placed[i].file, sha256: e.entry.meta.source_sha256, cached: e.cached }] : [])),
    };
    const plan = planRun(placed, encodings.map((e) => e?.entry.meta.samples ?? 0), { sampleRate: x.sampleRate, runSamples, maxSamples });
    played.push(...plan.played);
    const nTrs = volumesOf(s, plan.samples, x.sampleRate);
    const codebooks = kind === 'embeddings' ? await encodingCodebooks(cache, model) : undefined;
    const sources: (StimulusFrames | undefined)[] = [];
    for (const e of encodings) sources.push(e ? await StimulusFrames.open(e.entry, { kind: kind as FrameKind, nQ: x.nQ, codebooks }) : undefined);
    const sink = new RunSink(s, x, nTrs, kind);
    if (plan.pieces.length > 0 && (nTrs > 0 || s.resample !== 'window')) {
      for await (const block of runFrameBlocks(plan, sources, x.sampleRate / x.clock.rate)) sink.add(block.data, block.first, block.n);
    }
    return { nTrs, series: x, features: sink.features(), encoded };
  } finally {
    for (const e of encodings) await e?.release();
    await cache.close();
    await model.close();
  }
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
  const played: PlayedStimulus[] = [];
  const run = s.mode === 'mel' ? await melRun(s, placed, plain, played) : await codecRun(s, placed, plain, played, options);
  if (!plain || s.runTrs !== undefined) checkStimulusInRun(played, run.nTrs, s.tr);
  return featureSet(s, run, placed[0].onset, src, played);
}

/** The FeatureSet of a run: its features z-scored and delayed as asked, their shape, metadata and settings. */
function featureSet(s: ExtractSettings, run: RunFeatures, onset: number, src: string, played: PlayedStimulus[]): FeatureSet {
  const { nTrs, series: x } = run;
  const mel = s.mode === 'mel';
  const kind: FeatureKind = mel ? 'mel' : s.output;
  const windowed = s.resample === 'window';
  let features = run.features;
  let shape = !windowed ? [nTrs, x.rows] : s.layout === 'flat' ? [nTrs, x.rows * x.frames] : [nTrs, x.rows, x.frames];
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
    metadata: metadataRows(nTrs, s, windowed ? x.frames : 1, x.nQ, src, played),
    tr: s.tr,
    layout: shape.length === 2 && (s.layout === 'flat' || !windowed || s.delays) ? 'flat' : 'tr',
    hrf: s.hrf,
    framesPerTr: windowed ? x.frames : 1,
    source: src,
    ...(mel ? { mel: s.mel } : { nQ: x.nQ, bandwidth: s.bandwidth }),
    ...(windowed ? {} : { resample: s.resample }),
    ...(s.delays ? { delays: s.delays } : {}),
    ...(s.zscore ? { zscore: true } : {}),
    onset,
    runTrs: s.runTrs,
    sliceTimeRef: s.sliceTimeRef,
    ...(x.model ? { model: x.model.name, frameRate: x.model.frameRate } : {}),
    ...run.encoded,
  };
  debug('features', () => {
    const hrf = s.hrf === 'none' ? '' : `, ${s.hrf} HRF`;
    const how = windowed ? `${x.frames} frames each` : `${s.resample} at t_k = (k + ${s.sliceTimeRef}) * tr`;
    return `'${src}': ${nTrs} volumes of ${s.tr} s (${how}${hrf}, onset ${onset} s) -> ${kind} (${shape.join(', ')})`;
  });
  return result;
}
