/**
 * Library entry points of the encode stage: a file's codes at a bandwidth (`encodeFile`) and its model-rate
 * features (`modelRateFrames`), read from the encoding cache when it holds the file, else encoded and kept there.
 * Codes at any bandwidth are the first rows of the cached full-depth codes.
 */
import { Device, Encodec } from '../codec/codec';
import { Codes } from '../codec/codes';
import { modelCodebooks as codebooksOf } from '../model/model-file';
import { rangeError, typeError } from '../common/errors';
import { CacheOption, encodeModel, encodingCodebooks, openCache } from './context';
import { EncodeModel, encodeStimulus } from './encode-stage';
import { FrameKind, StimulusFrames } from './frame-source';
import { FrameArray } from './npy-frames';
import { Entry } from './entry';

export interface EncodeFileOptions {
  /** A loaded codec, a model file (default: $ENCODEC_MODEL, then the default path), or a lazily loaded model. */
  model?: string | Encodec | EncodeModel;
  /** kbps (default 6). */
  bandwidth?: number;
  /** One pass instead of chunks (whole-file models). */
  exact?: boolean;
  /** The encoding cache (see lib/encoding/context.ts): a folder, true/undefined (the default), false (none). */
  cache?: CacheOption;
  device?: Device;
  threads?: number;
}

/**
 * Codes of a file at `bandwidth`, exactly what `codec.encodeStream(streamAudio(file))` gives (`exact`: what
 * `codec.encode(samples, { exact: true })` gives), with `scales` for a segmented model. Read from the cache when the
 * file was encoded before by this model (any bandwidth), else encoded (at full depth) and kept there.
 */
export async function encodeFile(file: string, options: EncodeFileOptions = {}): Promise<Codes> {
  if (typeof file !== 'string' || file === '') throw typeError('file must be the path of an audio or video file');
  const model = await encodeModel(options.model, options);
  const cache = await openCache(options.cache);
  try {
    const nQ = codebooksOf(model.info, options.bandwidth ?? 6);
    const e = await encodeStimulus(cache, model, file, { stored: 'codes', exact: options.exact });
    try {
      if (e.entry.nFrames === 0) throw rangeError(`'${file}' holds no audio samples: nothing to encode`);
      return await codesOf(e.entry, nQ);
    } finally {
      await e.release();
    }
  } finally {
    await cache.close();
    await model.close();
  }
}

/** Codes of the first `nQ` codebooks of an entry of codes, with its scales (segmented models). */
export async function codesOf(entry: Entry, nQ: number): Promise<Codes> {
  const n = entry.nFrames;
  const frames = await entry.readFrames(0, n);
  const data = new Int16Array(nQ * n);
  for (let t = 0; t < n; t++) for (let q = 0; q < nQ; q++) data[q * n + t] = frames[t * entry.rows + q];
  const scales = await entry.scales();
  const m = entry.meta;
  return { data, nQ, nFrames: n, ...(scales ? { scales, segmentFrames: (m.segment_samples as number) / m.hop_length } : {}) };
}

/** Model-rate features of a file (see modelRateFrames). */
export interface ModelRateFrames {
  kind: FrameKind;
  /** Time-major: data[t * columns + c], frame t centred at (t + 0.5) / samplingFrequency seconds. */
  data: FrameArray;
  nFrames: number;
  columns: number;
  samplingFrequency: number;
  startTime: number;
  columnNames: string[];
  model: string;
  modelSha256: string;
  sourceSha256: string;
  /** Codebooks (codes, embeddings), and kbps. */
  nQ?: number;
  bandwidth?: number;
  /** Whether the encoding came from the cache. */
  cached: boolean;
}

export interface ModelRateOptions extends EncodeFileOptions {
  /** 'codes' (default), 'embeddings' or 'latents'. */
  output?: FrameKind;
}

/**
 * A file's features at the model's own frame rate, on its uniform grid (75 frames/s for encodec_24khz, 150 for
 * encodec_48khz, whose segments are placed by time: lib/encoding/segment-grid.ts): codes of the bandwidth's codebooks,
 * their embeddings, or latents. What `encodec-native frames` writes; the align stage resamples the same frames.
 */
export async function modelRateFrames(file: string, options: ModelRateOptions = {}): Promise<ModelRateFrames> {
  if (typeof file !== 'string' || file === '') throw typeError('file must be the path of an audio or video file');
  const kind = options.output ?? 'codes';
  if (!['codes', 'embeddings', 'latents'].includes(kind)) throw rangeError(`unknown output '${String(kind)}'; use one of codes, embeddings, latents`);
  const model = await encodeModel(options.model, options);
  const cache = await openCache(options.cache);
  try {
    const { info } = model;
    const bandwidth = options.bandwidth ?? 6;
    const nQ = codebooksOf(info, bandwidth);
    const e = await encodeStimulus(cache, model, file, { stored: kind === 'latents' ? 'latents' : 'codes', exact: options.exact });
    try {
      const codebooks = kind === 'embeddings' ? await encodingCodebooks(cache, model) : undefined;
      const source = await StimulusFrames.open(e.entry, { kind, nQ, codebooks });
      const n = source.nFrames;
      const columns = source.rows;
      const data: FrameArray = kind === 'codes' ? new Int16Array(n * columns) : new Float32Array(n * columns);
      const step = 8192;
      for (let from = 0; from < n; from += step) {
        const to = Math.min(n, from + step);
        await source.load(from, to);
        for (let t = from; t < to; t++) source.copyFrame(t, data, 1, t * columns);
      }
      const prefix = kind === 'codes' ? 'codebook' : kind === 'embeddings' ? 'embedding' : 'latent';
      return {
        kind,
        data,
        nFrames: n,
        columns,
        samplingFrequency: info.frame_rate,
        startTime: 0.5 / info.frame_rate,
        columnNames: Array.from({ length: columns }, (_, c) => `${prefix}_${c}`),
        model: info.model,
        modelSha256: e.entry.meta.model_sha256,
        sourceSha256: e.entry.meta.source_sha256,
        ...(kind === 'latents' ? {} : { nQ, bandwidth }),
        cached: e.cached,
      };
    } finally {
      await e.release();
    }
  } finally {
    await cache.close();
    await model.close();
  }
}
