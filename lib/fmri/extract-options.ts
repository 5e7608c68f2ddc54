/**
 * The options of the feature pipeline ({@link ExtractOptions}) and their one check, {@link checkExtractOptions}, which
 * turns them into the settings the pipeline runs on (defaults filled in), or throws naming the bad option and the
 * fix. Callers with their own names for the options (the CLI's flags) pass them, so the message names what the user
 * typed.
 */
import { Device, Encodec } from '../codec/codec';
import { checkBandwidth } from '../codec/bandwidth';
import { MelOptions, MelSettings, melSettings } from '../dsp/mel';
import type { EncodeModel, EncodeTap } from '../encoding/encode-stage';
import { CacheOption, isEncodeModel } from '../encoding/context';
import { rangeError, typeError } from '../common/errors';
import { checkTr } from './alignment';
import { checkDelays } from './design';
import { RESAMPLE_METHODS, Resample, checkSliceTimeRef } from './resample';
import { checkRunTrs } from './run-timeline';
import {
  DEFAULT_FEATURE_BANDWIDTH,
  DEFAULT_TR,
  FEATURE_LAYOUTS,
  FEATURE_MODES,
  FEATURE_OUTPUTS,
  FeatureLayout,
  FeatureMode,
  FeatureOutput,
  HRF_OPTIONS,
  HrfOption,
} from './feature-set';

export type { EncodeTap } from '../encoding/encode-stage';

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

/** The checked options: every setting that shapes the features, with its default filled in. */
export interface ExtractSettings {
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

/** What a caller calls each option in its messages (the CLI: `--max-trs` for maxTrs); default: the option's own name. */
export type OptionNames = Partial<Record<keyof ExtractOptions, string>>;

/** `value` if it is one of `allowed`, else a RangeError naming `what` and the allowed values. */
export function oneOf<T extends string>(value: unknown, allowed: readonly T[], what: string): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw rangeError(`unknown ${what} '${String(value)}'; use one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** Checks extraction options, throwing a TypeError/RangeError that names the bad one (as `names` calls it) and the fix. */
export function checkExtractOptions(options: ExtractOptions = {}, names: OptionNames = {}): ExtractSettings {
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  const name = (key: keyof ExtractOptions): string => names[key] ?? key;
  const tr = options.tr ?? DEFAULT_TR;
  checkTr(tr, name('tr'));
  const bandwidth = options.bandwidth ?? DEFAULT_FEATURE_BANDWIDTH;
  checkBandwidth(bandwidth);
  const maxTrs = options.maxTrs ?? Infinity;
  if (maxTrs !== Infinity && (!Number.isSafeInteger(maxTrs) || maxTrs < 1)) {
    throw rangeError(`${name('maxTrs')} must be an integer >= 1 (or left out for all TRs), got ${String(maxTrs)}`);
  }
  const hrf = oneOf(options.hrf ?? 'none', HRF_OPTIONS, name('hrf'));
  const layout = oneOf(options.layout ?? 'tr', FEATURE_LAYOUTS, name('layout'));
  const mode = oneOf(options.mode ?? 'encodec', FEATURE_MODES, name('mode'));
  const output = oneOf(options.output ?? 'codes', FEATURE_OUTPUTS, name('output'));
  if (mode === 'mel' && options.output !== undefined && options.output !== 'codes') {
    throw rangeError(`output '${options.output}' needs mode 'encodec'; mode 'mel' always gives mel features`);
  }
  const model = options.model;
  if (model !== undefined && typeof model !== 'string' && !(model instanceof Encodec) && !isEncodeModel(model)) {
    throw typeError('model must be the path of a model file or a loaded Encodec');
  }
  const onset = options.onset ?? 0;
  if (typeof onset !== 'number' || !Number.isFinite(onset)) {
    throw rangeError(`${name('onset')} must be a finite number of seconds (run time of the stimulus's first sample), got ${String(onset)}`);
  }
  const runTrs = checkRunTrs(options.runTrs, name('runTrs'));
  if (runTrs !== undefined && onset >= runTrs * tr) {
    throw rangeError(`${name('onset')} ${onset} s is at or after the end of the run (runTrs ${runTrs} x tr ${tr} s = ${runTrs * tr} s): no stimulus plays inside the run`);
  }
  const sliceTimeRef = checkSliceTimeRef(options.sliceTimeRef ?? 0, name('sliceTimeRef'));
  const resample = oneOf(options.resample ?? 'window', RESAMPLE_METHODS, name('resample'));
  const codes = mode === 'encodec' && output === 'codes';
  if (codes && resample !== 'window') {
    throw rangeError(`resample '${resample}' needs continuous features (output latents or embeddings, or mode mel): codes are categorical, so averaging or interpolating them means nothing; use resample 'window'`);
  }
  const zscore = options.zscore ?? false;
  if (typeof zscore !== 'boolean') throw typeError(`zscore must be true or false, got ${typeof zscore}`);
  if (codes && zscore) {
    throw rangeError('zscore needs continuous features (output latents or embeddings, or mode mel): codes are categorical');
  }
  const delays = options.delays === undefined ? undefined : checkDelays(options.delays, name('delays'));
  return { tr, bandwidth, maxTrs, hrf, layout, mode, output, mel: melSettings(options.mel), onset, runTrs, sliceTimeRef, resample, delays, zscore };
}
