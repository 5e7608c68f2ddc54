/**
 * The JSON sidecar of a feature file in a BIDS derivative dataset (lib/fmri/bids-derivative.ts): how the features
 * were made, in BIDS terms where BIDS has them (RepetitionTime, SliceTimingReference as a fraction of the TR,
 * SamplingFrequency), else in plain names.
 */
import type { FeatureSet } from './feature-set';
import { DEFAULT_FAMILY } from '../model/family';

export function featureSidecar(result: FeatureSet, extra: { stimuli?: { file: string; onset: number; duration?: number }[] } = {}): Record<string, unknown> {
  const encodec = result.kind !== 'mel';
  return {
    Description: 'Stimulus features on the scanner clock, one row per volume (encodec-native extract)',
    RepetitionTime: result.tr,
    NumberOfVolumes: result.shape[0],
    SliceTimingReference: result.sliceTimeRef ?? 0,
    VolumeTiming: 'volume k is sampled at (k + SliceTimingReference) * RepetitionTime seconds of run time',
    FeatureKind: result.kind,
    Shape: result.shape,
    Layout: result.layout,
    Resampling: result.resample ?? 'window',
    FramesPerVolume: result.framesPerTr,
    HRF: result.hrf,
    DelaysInVolumes: result.delays ?? [],
    ZScore: result.zscore ? 'each column over this run\'s volumes, before delays' : false,
    RunOnset: result.onset ?? 0,
    ...(extra.stimuli ? { Stimuli: extra.stimuli.map((s) => ({ File: s.file, Onset: s.onset, ...(s.duration !== undefined ? { Duration: s.duration } : {}) })) } : {}),
    ...(encodec
      ? {
          Model: result.model ?? DEFAULT_FAMILY.name,
          ModelSHA256: result.modelSha256,
          ModelFrameRate: result.frameRate ?? 75,
          ...(result.kind === 'latents' ? {} : { Bandwidth: result.bandwidth, Codebooks: result.nQ }),
          StimulusSHA256: result.encodings?.map((e) => ({ File: e.file, SHA256: e.sha256 })),
        }
      : { Mel: result.mel }),
  };
}

/**
 * The sidecar of runs concatenated into one file (`extract --concat`): the settings all runs share, and per run
 * what may differ between them (volumes, slice-time reference, onset, the stimuli's SHA-256), never one run's value
 * for all.
 */
export function concatSidecar(inputs: string[], runs: FeatureSet[]): Record<string, unknown> {
  const shared = featureSidecar(runs[0]);
  for (const key of ['SliceTimingReference', 'RunOnset', 'Stimuli', 'StimulusSHA256', 'Shape']) delete shared[key];
  return {
    ...shared,
    NumberOfVolumes: runs.reduce((n, r) => n + r.shape[0], 0),
    Runs: inputs.map((events, k) => {
      const own = featureSidecar(runs[k]);
      return { Events: events, Volumes: runs[k].shape[0], SliceTimingReference: own.SliceTimingReference, RunOnset: own.RunOnset, ...(own.StimulusSHA256 ? { StimulusSHA256: own.StimulusSHA256 } : {}) };
    }),
  };
}
