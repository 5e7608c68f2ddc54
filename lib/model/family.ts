/**
 * The model families encodec-native runs, each described once: its rates, channels, bandwidths, segmenting and
 * normalisation, where its weights and its entropy-coding LM are published. Every layer asks this module about a
 * family (found by a model file's metadata `model`, an `.ecdc` header's `m` or a `--name` option) instead of testing
 * names; test/architecture/families.test.ts fails when a family name is tested elsewhere. The Python exporter's
 * counterpart is the `Family` of exporter/encodec_ts.py. Adding a family: docs/model-families.md.
 */

import { rangeError } from '../common/errors';

/** The families' names (a third family adds its name here and its description to FAMILIES). */
export type FamilyName = 'encodec_24khz' | 'encodec_48khz';

/** Meta's segmenting (EncodecModel's `segment` and `overlap`), in samples per channel as Meta computes them. */
export interface Segmenting {
  /** Seconds per segment (Meta's `segment`). */
  seconds: number;
  /** Fraction of a segment shared with the next (Meta's `overlap`). */
  overlap: number;
  /** Samples per channel of a full segment: int(seconds * sampleRate). */
  length: number;
  /** Samples between segment starts: max(1, int((1 - overlap) * length)). */
  stride: number;
  /** Code frames of a full segment: ceil(length / hopLength). */
  frames: number;
}

/** One model family. */
export interface ModelFamily {
  /** The name in model files' metadata (`model`), `.ecdc` headers (`m`) and `--name`. */
  readonly name: FamilyName;
  readonly sampleRate: number;
  readonly channels: number;
  /** Samples per code frame (the encoder's total stride). */
  readonly hopLength: number;
  /** Code frames per second. */
  readonly frameRate: number;
  /** Bandwidths in kbps, lowest first. */
  readonly bandwidths: readonly number[];
  /** Codebooks at the highest bandwidth. */
  readonly maxCodebooks: number;
  /**
   * Meta's segments, each normalised by its own scale, which the codes carry (lib/codec/segments.ts); undefined: the
   * whole file is coded as one sequence (chunked with left context: lib/codec/chunking.ts).
   */
  readonly segment?: Segmenting;
  /** Where the weights are published: Meta's URL (its name holds the SHA-256 prefix) and Hugging Face's repository. */
  readonly release: { metaUrl: string; shaPrefix: string; hfRepo: string };
  /** Meta's entropy-coding LM for the family's codes: its checkpoint file and the LM's metadata name. */
  readonly lm: { file: string; lmModel: string };
}

/** Where Meta publishes the checkpoints (codecs and LMs). */
export const META_ROOT = 'https://dl.fbaipublicfiles.com/encodec/v0/';

const DESCRIPTIONS: ModelFamily[] = [
  {
    name: 'encodec_24khz',
    sampleRate: 24000,
    channels: 1,
    hopLength: 320,
    frameRate: 75,
    bandwidths: [1.5, 3, 6, 12, 24],
    maxCodebooks: 32,
    release: { metaUrl: `${META_ROOT}encodec_24khz-d7cc33bc.th`, shaPrefix: 'd7cc33bc', hfRepo: 'facebook/encodec_24khz' },
    lm: { file: 'encodec_lm_24khz-1608e3c0.th', lmModel: 'encodec_lm_24khz' },
  },
  {
    name: 'encodec_48khz',
    sampleRate: 48000,
    channels: 2,
    hopLength: 320,
    frameRate: 150,
    bandwidths: [3, 6, 12, 24],
    maxCodebooks: 16,
    // segment 1 s, overlap 1 %: stride max(1, int((1 - 0.01) * 48000)) = 47520; each segment has its scale
    segment: { seconds: 1, overlap: 0.01, length: 48000, stride: 47520, frames: 150 },
    release: { metaUrl: `${META_ROOT}encodec_48khz-7e698e3e.th`, shaPrefix: '7e698e3e', hfRepo: 'facebook/encodec_48khz' },
    lm: { file: 'encodec_lm_48khz-7add9fc3.th', lmModel: 'encodec_lm_48khz' },
  },
];

/** The families, the default (what `model fetch` gets without `--name`) first. */
export const FAMILIES: readonly ModelFamily[] = Object.freeze(DESCRIPTIONS.map((f) => Object.freeze({
  ...f,
  bandwidths: Object.freeze([...f.bandwidths]),
  segment: f.segment && Object.freeze({ ...f.segment }),
  release: Object.freeze({ ...f.release }),
  lm: Object.freeze({ ...f.lm }),
})));

/** The default family: `model fetch` without `--name`, the default model path, features files that name no model. */
export const DEFAULT_FAMILY: ModelFamily = FAMILIES[0];

/** The family of this name, or undefined. */
export function findFamily(name: unknown): ModelFamily | undefined {
  return FAMILIES.find((f) => f.name === name);
}

/** The family of a model (its metadata's `model`); throws for a name no family has (parseModelInfo rejects those first). */
export function familyOf(info: { model: string }): ModelFamily {
  const family = findFamily(info.model);
  if (!family) throw rangeError(`unknown model '${info.model}'; encodec-native runs ${familyNames(' and ')}`);
  return family;
}

/** The families' names joined, e.g. "encodec_24khz or encodec_48khz". */
export function familyNames(join = ' or ', families: readonly ModelFamily[] = FAMILIES): string {
  return families.map((f) => f.name).join(join);
}

/** Whether a family codes Meta's normalised segments (rather than the whole file as one sequence). */
export function isSegmentedFamily(family: ModelFamily): boolean {
  return family.segment !== undefined;
}

/** The `--name` arguments `model fetch` needs for a family: none for the default. */
export function fetchNameArgs(name: string): string {
  return name === DEFAULT_FAMILY.name ? '' : ` --name ${name}`;
}

/** A family and its audio in words, e.g. "encodec_48khz (48 kHz stereo)". */
export function describeFamily(family: ModelFamily): string {
  return `${family.name} (${family.sampleRate / 1000} kHz ${family.channels === 1 ? 'mono' : 'stereo'})`;
}
