/**
 * What the feature pipeline produces: the kinds, modes and layouts of features, and the {@link FeatureSet} that
 * ./features makes, ./features-file, ./h5 and ./features-part write and read, and ./features-audio turns back into
 * audio.
 */
import type { HrfModel } from './hrf';
import type { Resample } from './resample';
import type { VolumeTiming } from './run-timeline';
import type { MelSettings } from '../dsp/mel';

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
/** One TR's row of metadata (the columns of the metadata CSV), with the volume's run timing. */
export interface TrMetadata extends VolumeTiming {
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
  // and the run timing of the volume (VolumeTiming, ./run-timeline): start_time / end_time equal run_time_start /
  // run_time_end
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
