/**
 * What the encode stage needs from its caller's options: the cache to use (a folder, the default one, or none) and
 * the model (a loaded codec, or a model file loaded only if some input misses the cache).
 */
import { Device, Encodec } from '../codec/codec';
import { ModelInfo, readModelInfo, resolveModelPath } from '../model/model-file';
import { typeError } from '../common/errors';
import { EncodingCache } from './cache';
import { resolveCacheDir } from './cache-dir';
import { EncodeModel, modelCodebooks } from './encode-stage';
import { Codebooks } from './codebooks';

/**
 * The `cache` option: a folder; `true` or left out: the default folder (`$ENCODEC_CACHE`, else
 * `$XDG_CACHE_HOME/encodec-native/encodings`); `false`: no cache (a private scratch folder, removed after the call);
 * or an open EncodingCache.
 */
export type CacheOption = string | boolean | EncodingCache | undefined;

export async function openCache(option: CacheOption): Promise<EncodingCache> {
  if (option instanceof EncodingCache) return Object.assign(Object.create(EncodingCache.prototype), option, { close: async () => undefined }) as EncodingCache;
  if (option === false) return EncodingCache.scratch();
  if (option === undefined || option === true) return EncodingCache.at(resolveCacheDir());
  if (typeof option === 'string' && option !== '') return EncodingCache.at(resolveCacheDir(option));
  throw typeError('cache must be a folder path, true (the default folder), false (no cache) or an EncodingCache');
}

/** Whether `value` is an EncodeModel (a model loaded on first need, e.g. shared by a CLI worker's inputs). */
export function isEncodeModel(value: unknown): value is EncodeModel {
  return typeof value === 'object' && value !== null && !(value instanceof Encodec) && typeof (value as EncodeModel).codec === 'function' && typeof (value as EncodeModel).path === 'string';
}

/** An EncodeModel that is closed (its codec disposed, when it loaded one) after the work. */
export interface ClosableModel extends EncodeModel {
  close(): Promise<void>;
}

/**
 * The model of the encode stage: a loaded codec (used as is), or a model file (default: $ENCODEC_MODEL, then the
 * default path) whose metadata is read now and which is loaded only when an input must be encoded.
 */
export async function encodeModel(model: Encodec | EncodeModel | string | undefined, load: { device?: Device; threads?: number }): Promise<ClosableModel> {
  if (isEncodeModel(model)) return { ...model, close: async () => undefined }; // the caller's: it closes it
  if (model instanceof Encodec) {
    return { path: model.modelPath, info: model.info, device: model.device, codec: async () => model, close: async () => undefined };
  }
  const path = resolveModelPath(model);
  let info: ModelInfo;
  let loading: Promise<Encodec> | undefined;
  try {
    info = readModelInfo(path);
  } catch (err) {
    // libtorch's reader says more about a damaged file (truncated, corrupt, saved by a newer PyTorch)
    loading = Encodec.load(path, { device: load.device, threads: load.threads, warmup: false });
    (await loading).dispose();
    throw err;
  }
  return {
    path,
    info,
    device: load.device ?? 'cpu',
    // without warm-up, as lib/codec/with-codec.ts loads: it would only add to the run's time
    codec: () => (loading ??= Encodec.load(path, { device: load.device, threads: load.threads, warmup: false })),
    close: async () => {
      if (loading) (await loading.catch(() => undefined))?.dispose();
    },
  };
}

/** The model's codebooks for embeddings (kept in the cache; the model is loaded only when they are not there). */
export function encodingCodebooks(cache: EncodingCache, model: EncodeModel): Promise<Codebooks> {
  return modelCodebooks(cache, model);
}
