/**
 * Entropy-coding LM files (Meta's encodec_lm_24khz / encodec_lm_48khz, exported by `exporter/export_lm.py`): their
 * metadata (read from the ZIP container without running anything), where they live by default, and which one a
 * command uses. An LM file belongs to one codec model (`codec`), whose `.ecdc` files it codes with `--lm`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { FAMILIES, fetchNameArgs } from './family';
import { ModelSource, parseMetadataJson } from './model-file';
import { readZipEntry } from './zip';
import { codedError } from '../common/errors';

/** The metadata stored in an LM file. */
export interface LmInfo {
  format: 'encodec-native-model';
  format_version: number;
  kind: 'lm';
  /** 'encodec_lm_24khz' or 'encodec_lm_48khz'. */
  model: string;
  /** The codec model whose codes it codes: 'encodec_24khz' or 'encodec_48khz'. */
  codec: string;
  sample_rate: number;
  frame_rate: number;
  /** Codebooks it predicts (32 for 24 kHz, 16 for 48 kHz); a file may use fewer. */
  n_q: number;
  card: number;
  dim: number;
  num_layers: number;
  num_heads: number;
  /** Frames of past the transformer attends to: int(3.5 * frame_rate). */
  past_context: number;
  source: ModelSource;
  exporter_version: string;
  torch_version: string;
  created: string;
}

/** Meta's LM checkpoint for each codec (https://dl.fbaipublicfiles.com/encodec/v0/...), from its family (lib/model/family.ts). */
export const LM_CHECKPOINTS: Record<string, { file: string; lmModel: string }> = Object.fromEntries(FAMILIES.map((f) => [f.name, f.lm]));

const METADATA_ENTRY = /^[^/]+\/extra\/encodec\.json$/;

/** Whether a model file's metadata JSON describes an LM (kind "lm"). */
export function isLmMetadata(json: string): boolean {
  try {
    return (JSON.parse(json) as { kind?: unknown }).kind === 'lm';
  } catch {
    return false;
  }
}

/** Parses and checks LM metadata JSON; throws an Error naming what is wrong (a codec model file included). */
export function parseLmInfo(json: string, origin: string): LmInfo {
  const info = parseMetadataJson<LmInfo>(json, origin, 'the LM');
  if (info.kind !== 'lm') {
    throw codedError('ENCODEC_MODEL_FILE', 
      `${origin} is a codec model ('${String(info.model)}'), not an entropy-coding LM: pass it as the model (--model) ` +
        'and the LM file (encodec_lm_24khz.pt / encodec_lm_48khz.pt) as --lm-model',
    );
  }
  if (!(info.codec in LM_CHECKPOINTS) || !Number.isInteger(info.n_q) || info.n_q < 1) {
    throw codedError('ENCODEC_MODEL_FILE', `${origin}: an LM for '${String(info.codec)}' with ${String(info.n_q)} codebooks is not supported`);
  }
  return info;
}

/** The raw metadata JSON of a model or LM file (undefined when the archive has none). */
export function readModelMetadataJson(file: string): string | undefined {
  if (!fs.existsSync(file)) throw codedError('ENCODEC_MODEL_FILE', `model file '${file}' does not exist`);
  let entry: Buffer | undefined;
  try {
    entry = readZipEntry(file, (name) => METADATA_ENTRY.test(name));
  } catch (err) {
    throw codedError('ENCODEC_MODEL_FILE', `'${file}' is not a TorchScript model file (${(err as Error).message}); export it again`);
  }
  return entry?.toString('utf8');
}

/** Reads an LM file's metadata without loading it. Throws when the file is missing or not an LM. */
export function readLmInfo(file: string): LmInfo {
  if (!fs.existsSync(file)) {
    throw codedError('ENCODEC_MODEL_FILE', `LM file '${file}' does not exist; get Meta's with \`encodec-native model fetch\` or export one with \`encodec-native model export --checkpoint encodec_lm_24khz-1608e3c0.th\``);
  }
  const json = readModelMetadataJson(file);
  if (json === undefined) throw codedError('ENCODEC_MODEL_FILE', `'${file}' is a TorchScript/ZIP file but not an encodec-native LM (no extra/encodec.json)`);
  return parseLmInfo(json, file);
}

/** The LM file name for a codec: encodec_lm_24khz.pt / encodec_lm_48khz.pt. */
export function lmFileName(codec: string): string {
  const spec = LM_CHECKPOINTS[codec];
  if (!spec) throw codedError('ENCODEC_MODEL_FILE', `no entropy-coding LM exists for '${codec}' (only ${Object.keys(LM_CHECKPOINTS).join(', ')})`);
  return `${spec.lmModel}.pt`;
}

/** The default LM location: beside the codec model file, named for the codec (encodec_lm_24khz.pt). */
export function defaultLmPath(modelPath: string, codec: string): string {
  return path.join(path.dirname(path.resolve(modelPath)), lmFileName(codec));
}

/**
 * Which LM file to use: the explicit path (--lm-model), else `$ENCODEC_LM_MODEL`, else the default beside the codec
 * model. Throws an Error naming the ways to provide one when none exists.
 */
export function resolveLmPath(explicit: string | undefined, modelPath: string, codec: string): string {
  const candidate = explicit || process.env.ENCODEC_LM_MODEL || defaultLmPath(modelPath, codec);
  if (!fs.existsSync(candidate)) {
    const from = explicit ? '--lm-model' : process.env.ENCODEC_LM_MODEL ? 'ENCODEC_LM_MODEL' : 'the default location, beside the model';
    throw codedError('ENCODEC_MODEL_FILE', 
      `no LM file at '${candidate}' (from ${from}); LM-compressed .ecdc files need Meta's entropy-coding LM for ` +
        `${codec}: run \`encodec-native model fetch${fetchNameArgs(codec)}\` (gets it with the model), or export ` +
        `${LM_CHECKPOINTS[codec]?.file ?? 'the LM checkpoint'} with \`encodec-native model export\`, and pass --lm-model FILE; ` +
        `with a random-weight test model, a random LM: \`encodec-native model random --lm${fetchNameArgs(codec)} --out ${candidate}\``,
    );
  }
  return candidate;
}
