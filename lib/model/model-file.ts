/**
 * Model files: their metadata (read without running anything), where they live, and their checksums.
 *
 * A model file is a TorchScript archive written by `models/export.py`. Its metadata is the JSON entry
 * `<archive>/extra/encodec.json`, read here straight from the ZIP container: no code in the file runs.
 * TorchScript files can contain code that runs when the model is used, so load only files you trust.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { readZipEntry } from './zip';
import { codedError } from '../common/errors';

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
  torch_version: string;
  created: string;
}

const METADATA_ENTRY = /^[^/]+\/extra\/encodec\.json$/;

/** Parses and checks model metadata JSON; throws an Error naming what is wrong. */
export function parseModelInfo(json: string, origin: string): ModelInfo {
  let info: ModelInfo;
  try {
    info = JSON.parse(json) as ModelInfo;
  } catch {
    throw codedError('ENCODEC_MODEL_FILE', `${origin}: its encodec.json metadata is not valid JSON; export the model again`);
  }
  if (info.format !== 'encodec-native-model') {
    throw codedError('ENCODEC_MODEL_FILE', `${origin}: metadata format is '${String(info.format)}', not 'encodec-native-model'`);
  }
  if (info.model !== 'encodec_24khz' || info.sample_rate !== 24000 || info.channels !== 1) {
    throw codedError('ENCODEC_MODEL_FILE', 
      `${origin}: this is a '${info.model}' model (${info.sample_rate} Hz, ${info.channels} channel(s)); ` +
        'encodec-native supports encodec_24khz (24 kHz mono) only',
    );
  }
  return info;
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

/** The default model location: `$XDG_CACHE_HOME/encodec-native/encodec_24khz.pt` (or `~/.cache/...`). */
export function defaultModelPath(): string {
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'encodec-native', 'encodec_24khz.pt');
}

/**
 * Resolves which model file to use: the explicit path, else `$ENCODEC_MODEL`, else the default cache path.
 * Throws an Error that lists the three ways to provide one when none exists.
 */
export function resolveModelPath(explicit?: string): string {
  const candidate = explicit || process.env.ENCODEC_MODEL || defaultModelPath();
  if (!fs.existsSync(candidate)) {
    const from = explicit ? '--model' : process.env.ENCODEC_MODEL ? 'ENCODEC_MODEL' : 'the default location';
    throw codedError('ENCODEC_MODEL_FILE', 
      `no model file at '${candidate}' (from ${from}). Pass --model MODEL.pt, set ENCODEC_MODEL, ` +
        `or run \`encodec-native model fetch\` (writes ${defaultModelPath()}); ` +
        'for a test model run `encodec-native model random --out MODEL.pt`',
    );
  }
  return candidate;
}
