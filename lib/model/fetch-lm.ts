/**
 * `model fetch` (with the codec): download Meta's entropy-coding LM for `.ecdc --lm` files, verify its SHA-256
 * (Meta's file names carry its first 8 hex digits, as torch.hub checks) and export it beside the model.
 * Only Meta hosts the LMs (https://dl.fbaipublicfiles.com/encodec/v0/; `ENCODEC_META_ENDPOINT` names a mirror).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { tempPathFor } from '../common/atomic';
import { exportModel } from './exporter';
import { downloadTo, request } from './fetch';
import { DEFAULT_FAMILY, META_ROOT } from './family';
import { LM_CHECKPOINTS, defaultLmPath } from './lm-file';
import { codedError, rangeError, typeError } from '../common/errors';


function metaRoot(): string {
  const mirror = process.env.ENCODEC_META_ENDPOINT;
  return mirror ? `${mirror.replace(/\/+$/, '')}/` : META_ROOT;
}

export interface FetchLmOptions {
  /** The codec whose LM to get (default 'encodec_24khz'). */
  codec?: string;
  /** The codec model file the LM goes beside (the LM file is named for the codec); or `out`. */
  modelPath?: string;
  /** LM file to write (default: beside `modelPath`). */
  out?: string;
  /** Directory that keeps the downloaded checkpoint (default: beside the LM file). */
  cacheDir?: string;
  timeoutSeconds?: number;
  onProgress?: (received: number, total: number | undefined) => void;
  onLog?: (line: string) => void;
}

export interface FetchLmResult {
  lmPath: string;
  checkpointPath: string;
  sha256: string;
}

/** The URL of Meta's LM checkpoint for a codec. */
export function lmCheckpointUrl(codec: string): string {
  const spec = LM_CHECKPOINTS[codec];
  if (!spec) throw rangeError(`no entropy-coding LM exists for '${codec}'`);
  return metaRoot() + spec.file;
}

/** Downloads, verifies and exports the LM. Nothing is left at the LM path unless every step succeeded. */
export async function fetchLm(options: FetchLmOptions): Promise<FetchLmResult> {
  const codec = options.codec ?? DEFAULT_FAMILY.name;
  const url = lmCheckpointUrl(codec);
  if (!options.out && !options.modelPath) throw typeError('pass out (the LM file) or modelPath (the codec file it goes beside)');
  const lmPath = path.resolve(options.out ?? defaultLmPath(options.modelPath as string, codec));
  const cacheDir = path.resolve(options.cacheDir ?? path.dirname(lmPath));
  fs.mkdirSync(cacheDir, { recursive: true });
  fs.mkdirSync(path.dirname(lmPath), { recursive: true });
  const checkpointPath = path.join(cacheDir, LM_CHECKPOINTS[codec].file);
  const prefix = /-([0-9a-f]{8})\.th$/.exec(LM_CHECKPOINTS[codec].file)?.[1] as string;
  const { response } = await request(url, options.timeoutSeconds ?? 30);
  const temp = tempPathFor(checkpointPath);
  try {
    const actual = await downloadTo(response, url, temp, options.onProgress);
    if (!actual.startsWith(prefix)) {
      throw codedError('ENCODEC_DOWNLOAD', 
        `checksum mismatch for ${url}: SHA-256 ${actual}, expected ${prefix}...; the download is corrupt or was tampered with, and was deleted`,
      );
    }
    fs.renameSync(temp, checkpointPath);
    options.onLog?.(`verified ${path.basename(checkpointPath)} (SHA-256 ${actual})`);
    await exportModel({ checkpoint: checkpointPath, out: lmPath, onLog: options.onLog });
    return { lmPath, checkpointPath, sha256: actual };
  } finally {
    fs.rmSync(temp, { force: true });
  }
}
