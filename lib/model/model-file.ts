/**
 * Model files: their metadata (read without running anything), where they live, and their checksums.
 *
 * A model file is a TorchScript archive written by `exporter/export.py`. Its metadata is the JSON entry
 * `<archive>/extra/encodec.json`, read here straight from the ZIP container: no code in the file runs.
 * TorchScript files can contain code that runs when the model is used, so load only files you trust.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { DEFAULT_FAMILY, FAMILIES, describeFamily, familyNames, findFamily, isSegmentedFamily } from './family';
import { readZipEntry } from './zip';
import { codedError, rangeError } from '../common/errors';

/** Where a model's weights came from. */
export interface ModelSource {
  kind: 'official' | 'huggingface' | 'random';
  file: string | null;
  sha256: string | null;
  seed: number | null;
}

/** The metadata stored in a model file. */
export interface ModelInfo {
  format: 'encodec-native-model';
  format_version: number;
  model: string;
  sample_rate: number;
  channels: number;
  frame_rate: number;
  hop_length: number;
  bandwidths: number[];
  codebooks_per_bandwidth: Record<string, number>;
  max_codebooks: number;
  codebook_size: number;
  dimension: number;
  source: ModelSource;
  exporter_version: string;
  /** 'lstm' (exporter 1.1+): a CPU batch runs its convolutions clip by clip and the LSTM batched; absent before. */
  cpu_batching?: string;
  /** true (exporter 1.2+): the model has encode_span / decode_span, chunked coding of a whole span per call. */
  span_methods?: boolean;
  /** Steps per segment of the CPU LSTM (exporter 1.3+: it runs in segments, so a span call holds less memory). */
  lstm_segment_steps?: number;
  /** Exporter 1.5+: pooled span methods (encode_spans / decode_spans) pad LSTM windows to multiples of this many frames. */
  pooled_span_quantum?: number;
  /** true (exporter 1.5+): the model has latents_span, the encoder's output before quantization (codec.latents). */
  latents_span?: boolean;
  /**
   * Segmented models (encodec_48khz): Meta's segment length in seconds (1) and overlap fraction (0.01), and the
   * same in samples per channel: a segment's length (48000) and the distance between segment starts (47520).
   */
  segment?: number;
  overlap?: number;
  segment_samples?: number;
  segment_stride?: number;
  /** Segmented models: audio is normalised per segment and the codes carry each segment's scale. */
  normalize?: boolean;
  /** true: the module has encode_segments / decode_segments (segmented models). */
  segment_methods?: boolean;
  torch_version: string;
  created: string;
}

const METADATA_ENTRY = /^[^/]+\/extra\/encodec\.json$/;

/**
 * The metadata JSON of an exported file (a codec model or an LM) parsed and its format checked, for the checks of
 * its kind; `what` names what to export again when it is not JSON.
 */
export function parseMetadataJson<T extends { format: string }>(json: string, origin: string, what: string): T {
  let info: T;
  try {
    info = JSON.parse(json) as T;
  } catch {
    throw codedError('ENCODEC_MODEL_FILE', `${origin}: its encodec.json metadata is not valid JSON; export ${what} again`);
  }
  if (info.format !== 'encodec-native-model') {
    throw codedError('ENCODEC_MODEL_FILE', `${origin}: metadata format is '${String(info.format)}', not 'encodec-native-model'`);
  }
  return info;
}

/** Parses and checks model metadata JSON; throws an Error naming what is wrong. */
export function parseModelInfo(json: string, origin: string): ModelInfo {
  const info = parseMetadataJson<ModelInfo>(json, origin, 'the model');
  const known = findFamily(info.model);
  if (!known || info.sample_rate !== known.sampleRate || info.channels !== known.channels) {
    throw codedError('ENCODEC_MODEL_FILE', 
      `${origin}: this is a '${info.model}' model (${info.sample_rate} Hz, ${info.channels} channel(s)); ` +
        `encodec-native supports ${FAMILIES.map(describeFamily).join(' and ')}`,
    );
  }
  if (isSegmentedFamily(known)) {
    const ok =
      info.segment_methods === true &&
      Number.isInteger(info.segment_samples) && (info.segment_samples as number) > 0 &&
      Number.isInteger(info.segment_stride) && (info.segment_stride as number) > 0 &&
      (info.segment_stride as number) <= (info.segment_samples as number);
    if (!ok) throw codedError('ENCODEC_MODEL_FILE', `${origin}: its '${info.model}' metadata lacks the segment geometry; export it again`);
  }
  return info;
}

/** Whether a model codes normalised segments (encodec_48khz) rather than whole files: its family's segmenting. */
export function isSegmentedModel(info: ModelInfo): boolean {
  const family = findFamily(info.model);
  return family !== undefined && isSegmentedFamily(family);
}

/**
 * Codebooks of `bandwidth` for a model (its metadata's codebooks_per_bandwidth); a RangeError naming the model's
 * bandwidths when it has no such bandwidth (encodec_48khz has no 1.5 kbps).
 */
export function modelCodebooks(info: ModelInfo, bandwidth: number): number {
  const nQ = info.bandwidths.includes(bandwidth) ? info.codebooks_per_bandwidth[String(bandwidth)] : undefined;
  if (nQ === undefined) {
    throw rangeError(`unsupported bandwidth ${bandwidth} kbps for ${info.model}; use one of ${info.bandwidths.join(', ')}`);
  }
  return nQ;
}

/**
 * Throws a RangeError naming `use` when the model is segmented, for work that needs a whole-file code stream: turning
 * TR features back into audio (and so the roundtrip report), which decodes TR windows of codes, while
 * encodec_48khz's decoder needs each 1 s segment whole with the scale it was normalised by, which TR features do not
 * keep. (The features pipeline itself runs either model: docs/fmri.md.)
 */
export function requireWholeFileModel(info: ModelInfo, use: string): void {
  if (isSegmentedModel(info)) {
    throw rangeError(
      `${use} runs ${familyNames(' or ', FAMILIES.filter((f) => !isSegmentedFamily(f)))} only: ${info.model} decodes whole 1 s segments with their scales, which TR features ` +
        'do not keep (see docs/models-48khz.md); use a 24 kHz model (`model fetch`), or encode/decode/compress with this one',
    );
  }
}

/**
 * Reads a model file's metadata without loading or running the model.
 * Throws when the file is missing, not a TorchScript archive, or not an encodec-native model.
 */
export function readModelInfo(modelPath: string): ModelInfo {
  if (!fs.existsSync(modelPath)) {
    throw codedError('ENCODEC_MODEL_FILE', `model file '${modelPath}' does not exist; create one with \`encodec-native model export\` or \`model random\``);
  }
  let entry: Buffer | undefined;
  try {
    entry = readZipEntry(modelPath, (name) => METADATA_ENTRY.test(name));
  } catch (err) {
    throw codedError('ENCODEC_MODEL_FILE', `'${modelPath}' is not a TorchScript model file (${(err as Error).message}); export it again`);
  }
  if (!entry) {
    throw codedError('ENCODEC_MODEL_FILE', `'${modelPath}' is a TorchScript/ZIP file but not an encodec-native model (no extra/encodec.json); export one with \`encodec-native model export\``);
  }
  return parseModelInfo(entry.toString('utf8'), modelPath);
}

/** SHA-256 (hex) of a file, streamed. */
export async function sha256File(filePath: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(filePath)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The default model location: `$XDG_CACHE_HOME/encodec-native/encodec_24khz.pt` (or `~/.cache/...`); for another
 * model (`encodec_48khz`) the same folder, `NAME.pt`.
 */
export function defaultModelPath(name: string = DEFAULT_FAMILY.name): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'encodec-native', `${name}.pt`);
}

/**
 * Resolves which model file to use: the explicit path, else `$ENCODEC_MODEL`, else the default cache path.
 * Throws an Error that lists the three ways to provide one when none exists.
 */
export function resolveModelPath(explicit?: string): string {
  const candidate = explicit || process.env.ENCODEC_MODEL || defaultModelPath();
  if (!fs.existsSync(candidate)) {
    const ways =
      'run `encodec-native model fetch` (needs a network; writes ' + defaultModelPath() + '), or try everything ' +
      'offline with a random-weight model: `encodec-native model random --out random.pt`, then --model random.pt';
    // the hint fits where the path came from: a wrong --model or ENCODEC_MODEL is a typo to fix first
    const message = explicit
      ? `no model file at '${candidate}' (from --model): check the path; to make one, ${ways}`
      : process.env.ENCODEC_MODEL
        ? `no model file at '${candidate}' (from ENCODEC_MODEL): fix or unset ENCODEC_MODEL; to make one, ${ways}`
        : `no model yet: none at the default location '${candidate}'. Pass --model MODEL.pt, set ENCODEC_MODEL, or ${ways}`;
    throw codedError('ENCODEC_MODEL_FILE', message);
  }
  return candidate;
}
