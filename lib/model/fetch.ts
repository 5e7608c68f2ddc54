/**
 * `model fetch`: download the official EnCodec weights (24 kHz by default, or `name: 'encodec_48khz'`), verify their
 * SHA-256, export a model file.
 *
 * Sources: Hugging Face `facebook/encodec_24khz` / `facebook/encodec_48khz` (model.safetensors; the hub states
 * each file's SHA-256 in its `X-Linked-Etag` header) or Meta's release (`encodec_24khz-d7cc33bc.th`,
 * `encodec_48khz-7e698e3e.th`, whose names carry the first 8 hex digits of their SHA-256, as torch.hub checks).
 * `HF_ENDPOINT` selects a Hugging Face mirror.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { tempPathFor } from '../common/atomic';
import { exportModel } from './exporter';
import { DEFAULT_FAMILY, FamilyName, familyNames, findFamily } from './family';
import { defaultModelPath } from './model-file';
import { codedError, rangeError } from '../common/errors';

export type FetchSource = 'huggingface' | 'meta';
/** The model families `fetchModel` can get (lib/model/family.ts). */
export type FetchModelName = FamilyName;

export interface FetchOptions {
  /** Which model: 'encodec_24khz' (default) or 'encodec_48khz'. */
  name?: FetchModelName;
  /** Model file to write (default: the default model path of the model, see `defaultModelPath()`). */
  out?: string;
  /** Where to download from (default 'huggingface'). */
  source?: FetchSource;
  /** Expected SHA-256 of the checkpoint; overrides the one the source states. */
  sha256?: string;
  /** Directory that keeps the downloaded checkpoint (default: beside the model file). */
  cacheDir?: string;
  /** Seconds to wait for the server to answer (default 30). */
  timeoutSeconds?: number;
  /** Progress callback: bytes received so far and the total when known. */
  onProgress?: (received: number, total: number | undefined) => void;
  onLog?: (line: string) => void;
}

export interface FetchResult {
  modelPath: string;
  checkpointPath: string;
  sha256: string;
}

function hfUrl(repo: string): string {
  const endpoint = (process.env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
  return `${endpoint}/${repo}/resolve/main/model.safetensors`;
}

function describeNetworkError(err: unknown, url: string): Error {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  const cause = e.cause?.code || e.cause?.message || e.message;
  const host = (() => {
    try {
      return new URL(url).host;
    } catch {
      return url;
    }
  })();
  return codedError('ENCODEC_DOWNLOAD', 
    `cannot download ${url}: ${host} is unreachable (${cause}). \`model fetch\` needs a network connection; ` +
      'offline, copy encodec_24khz-d7cc33bc.th or model.safetensors here from a connected machine and run ' +
      '`encodec-native model export --checkpoint FILE --out MODEL.pt`',
  );
}

/** Follows redirects by hand so the hub's X-Linked-Etag (SHA-256 of the LFS file) is seen on the way. */
export async function request(url: string, timeoutSeconds: number): Promise<{ response: Response; statedSha256?: string }> {
  let current = url;
  let statedSha256: string | undefined;
  for (let hop = 0; hop < 10; hop++) {
    let response: Response;
    try {
      response = await fetch(current, { redirect: 'manual', signal: AbortSignal.timeout(timeoutSeconds * 1000) });
    } catch (err) {
      throw describeNetworkError(err, current);
    }
    const linked = response.headers.get('x-linked-etag')?.replace(/^W\//, '').replace(/"/g, '');
    if (linked && /^[0-9a-f]{64}$/i.test(linked)) statedSha256 = linked.toLowerCase();
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      current = new URL(location, current).toString();
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw codedError('ENCODEC_DOWNLOAD', `cannot download ${current}: the server answered ${response.status} ${response.statusText}`);
    }
    return { response, statedSha256 };
  }
  throw codedError('ENCODEC_DOWNLOAD', `cannot download ${url}: too many redirects`);
}

/** Downloads, verifies and exports. Nothing is left at `out` unless every step succeeded. */
export async function fetchModel(options: FetchOptions = {}): Promise<FetchResult> {
  const source = options.source ?? 'huggingface';
  if (source !== 'huggingface' && source !== 'meta') {
    throw rangeError(`unknown source '${String(source)}'; use 'huggingface' or 'meta'`);
  }
  const name = options.name ?? DEFAULT_FAMILY.name;
  const release = findFamily(name)?.release;
  if (!release) throw rangeError(`unknown model '${String(name)}'; use ${familyNames()}`);
  if (options.sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(options.sha256)) {
    throw rangeError('sha256 must be 64 hexadecimal digits');
  }
  const modelPath = path.resolve(options.out ?? defaultModelPath(name));
  const cacheDir = path.resolve(options.cacheDir ?? path.dirname(modelPath));
  const url = source === 'meta' ? release.metaUrl : hfUrl(release.hfRepo);
  const checkpointPath = path.join(cacheDir, source === 'meta' ? path.basename(release.metaUrl) : `${name}.safetensors`);
  const { response, statedSha256 } = await request(url, options.timeoutSeconds ?? 30);
  // only once the server answers: an offline run leaves no empty cache folder behind
  fs.mkdirSync(cacheDir, { recursive: true });
  fs.mkdirSync(path.dirname(modelPath), { recursive: true });
  const expected = options.sha256?.toLowerCase() ?? statedSha256;
  if (!expected && source === 'huggingface') {
    await response.body?.cancel();
    throw codedError('ENCODEC_DOWNLOAD', `${url} did not state the file's SHA-256 (no X-Linked-Etag header); pass --sha256 HEX to verify it`);
  }

  const temp = tempPathFor(checkpointPath);
  try {
    const actual = await downloadTo(response, url, temp, options.onProgress);
    const ok = expected ? actual === expected : actual.startsWith(release.shaPrefix);
    if (!ok) {
      throw codedError('ENCODEC_DOWNLOAD', 
        `checksum mismatch for ${url}: SHA-256 ${actual}, expected ${expected ?? `${release.shaPrefix}...`}; ` +
          'the download is corrupt or was tampered with, and was deleted',
      );
    }
    fs.renameSync(temp, checkpointPath);
    options.onLog?.(`verified ${path.basename(checkpointPath)} (SHA-256 ${actual})`);
    await exportModel({ checkpoint: checkpointPath, out: modelPath, name, onLog: options.onLog });
    return { modelPath, checkpointPath, sha256: actual };
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

/** Streams a response body into a new file `temp`, returning its SHA-256 (hex). */
export async function downloadTo(
  response: Response,
  url: string,
  temp: string,
  onProgress?: (received: number, total: number | undefined) => void,
): Promise<string> {
  const total = Number(response.headers.get('content-length')) || undefined;
  const hash = crypto.createHash('sha256');
  let received = 0;
  const reader = response.body?.getReader();
  if (!reader) throw codedError('ENCODEC_DOWNLOAD', `cannot download ${url}: empty response`);
  const out = fs.createWriteStream(temp, { flags: 'wx' });
  // A write error (ENOSPC, EACCES, ...) rejects `failed` at once; every wait races it, so none hangs on 'drain'.
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), failed]);
      if (done) break;
      hash.update(value);
      received += value.byteLength;
      if (!out.write(value)) await Promise.race([new Promise<void>((r) => out.once('drain', () => r())), failed]);
      onProgress?.(received, total);
    }
    await Promise.race([new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve()))), failed]);
  } catch (err) {
    out.destroy();
    await reader.cancel().catch(() => undefined);
    const e = err as NodeJS.ErrnoException;
    throw codedError('ENCODEC_DOWNLOAD', `cannot download ${url} to '${temp}': ${e.message}`, { cause: err });
  }
  return hash.digest('hex');
}
