/**
 * The encode stage: an input file -> the model's frames on the model's own time grid, as a cache entry (./entry).
 * It knows nothing of TRs, runs or onsets (lib/fmri aligns the frames). An entry holds codes at the model's full
 * depth (residual VQ is sequential: codes at a lower bandwidth are their first rows), or the encoder's latents.
 *
 * A file is encoded as `extract` always streamed it: in chunks with left context (`exact`: in one pass), a segmented
 * model (encodec_48khz) segment by segment. An entry that reads only the start of a file (`maxSeconds` shorter than
 * the file) is not put in the cache: it is built in a private folder and removed by `release()`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Encodec } from '../codec/codec';
import { Codes } from '../codec/codes';
import { runtimeInfo } from '../runtime/runtime';
import { ModelInfo, isSegmentedModel } from '../model/model-file';
import { checkReadable, loadAudio, streamAudio } from '../io/audio';
import { codedError } from '../common/errors';
import { PACKAGE_VERSION } from '../common/package-root';
import { EncodingCache, cacheKey, deviceKind } from './cache';
import { Entry, EntryMeta, ENTRY_FORMAT, FRAMES_FILE, META_FILE, SCALES_FILE, SILENCE_FILE, StoredKind, entrySha256 } from './entry';
import { rememberedSha256, sha256OfFile } from './file-hash';
import { NpyFrameWriter } from './npy-frames';
import { Codebooks, readCodebooks, writeCodebooks } from './codebooks';

/** Silence is encoded as this many seconds of zeros, and the frame at SILENCE_FRAME (1.5 s at 75 frames/s) kept. */
const SILENCE_SECONDS = 2;
export const SILENCE_FRAME = 112;

/** Sees a fresh encoding as it streams: every block of audio before it is encoded, then its codes (at `nQ`). */
export interface EncodeTap {
  audio(block: Float32Array): void;
  /** Awaited before the encoding reads on. */
  codes(block: Codes): Promise<void>;
}

/** The model side of the encode stage: which model file, and the codec to encode with, loaded on first need. */
export interface EncodeModel {
  path: string;
  info: ModelInfo;
  device: string;
  /** The codec (loaded once, on the first cache miss). */
  codec(): Promise<Encodec>;
}

export interface EncodeRequest {
  stored: StoredKind;
  /** One pass over the whole file instead of chunks (whole-file models). */
  exact?: boolean;
  /** Read at most this many seconds (an entry cut short by it is not cached). */
  maxSeconds?: number;
  /** Shown a fresh streamed encoding of codes (not used on a cache hit, nor for latents or `exact`). */
  tap?: { nQ: number; tap: EncodeTap };
}

/** An entry to read, and what to do once read. */
export interface StimulusEncoding {
  entry: Entry;
  /** Whether it came from the cache (no model ran). */
  cached: boolean;
  /** Removes a transient entry (cut short by maxSeconds); nothing for a cached one. */
  release(): Promise<void>;
}

const modelHashes = new Map<string, Promise<string>>();

/** The model file's SHA-256 (remembered per process, and in the cache's hash records). */
export function modelSha256(cache: EncodingCache, modelPath: string): Promise<string> {
  const full = path.resolve(modelPath);
  let known = modelHashes.get(full);
  if (!known) {
    known = rememberedSha256(full, cache.hashDir);
    modelHashes.set(full, known);
    known.catch(() => modelHashes.delete(full));
  }
  return known;
}

/** The rows of full-depth codes: the codebooks of the model's highest bandwidth. */
export function fullDepth(info: ModelInfo): { bandwidth: number; nQ: number } {
  const bandwidth = Math.max(...info.bandwidths);
  return { bandwidth, nQ: info.codebooks_per_bandwidth[String(bandwidth)] };
}

/** Audio blocks counted (samples per channel). */
class Counted {
  samples = 0;
  constructor(private readonly channels: number) {}
  async *wrap(source: AsyncIterable<Float32Array>, tap?: EncodeTap): AsyncGenerator<Float32Array> {
    for await (const block of source) {
      this.samples += block.length / this.channels;
      tap?.audio(block);
      yield block;
    }
  }
}

/** `source`, or undefined when it ends before its first sample (the encoders refuse empty audio). */
async function unlessEmpty(source: AsyncGenerator<Float32Array>): Promise<AsyncGenerator<Float32Array> | undefined> {
  let first = await source.next();
  while (!first.done && first.value.length === 0) first = await source.next();
  if (first.done) return undefined;
  const head = first.value;
  return (async function* () {
    yield head;
    yield* source;
  })();
}

async function keyFor(cache: EncodingCache, model: EncodeModel, file: string, request: EncodeRequest): Promise<{ key: string; exact: boolean; sourceSha256: string; modelSha: string }> {
  const { info } = model;
  const exact = request.exact === true && !isSegmentedModel(info); // a segmented model has one way to encode
  await checkReadable(file); // a missing file is the reader's AudioError, not the hashing's raw ENOENT
  const [sourceSha256, modelSha] = await Promise.all([rememberedSha256(file, cache.hashDir), modelSha256(cache, model.path)]);
  const key = cacheKey({
    sourceSha256,
    modelSha256: modelSha,
    stored: request.stored,
    exact,
    device: deviceKind(model.device),
    sampleRate: info.sample_rate,
    channels: info.channels,
  });
  return { key, exact, sourceSha256, modelSha };
}

/** The cache's valid entry for `file` and `request`, or undefined (nothing is encoded). */
export async function cachedEncoding(cache: EncodingCache, model: EncodeModel, file: string, request: EncodeRequest): Promise<Entry | undefined> {
  return cache.lookup((await keyFor(cache, model, file, request)).key);
}

/**
 * The encoding of `file` for `request`: the cache's entry when it has a valid one, else encoded now (and put in the
 * cache unless cut short by maxSeconds).
 */
export async function encodeStimulus(cache: EncodingCache, model: EncodeModel, file: string, request: EncodeRequest): Promise<StimulusEncoding> {
  const { info } = model;
  const { key, exact, sourceSha256, modelSha } = await keyFor(cache, model, file, request);
  const found = await cache.lookup(key);
  if (found) return { entry: found, cached: true, release: async () => undefined };

  const codec = await model.codec();
  const temp = await cache.building(key);
  try {
    const built = await buildEntry(temp, codec, file, request, exact);
    const meta: Omit<EntryMeta, 'entry_sha256'> = {
      format: ENTRY_FORMAT,
      key,
      stored: request.stored,
      model: info.model,
      model_sha256: modelSha,
      exporter_version: info.exporter_version,
      source: path.resolve(file),
      source_sha256: sourceSha256,
      source_bytes: (await fs.promises.stat(file)).size,
      sample_rate: info.sample_rate,
      channels: info.channels,
      SamplingFrequency: info.frame_rate,
      StartTime: 0.5 / info.frame_rate,
      samples: built.samples,
      shape: [built.nFrames, built.rows],
      ...(isSegmentedModel(info) ? { segment_samples: info.segment_samples, segment_stride: info.segment_stride } : {}),
      hop_length: info.hop_length,
      exact,
      device: deviceKind(codec.device),
      libtorch_version: runtimeInfo().torchVersion,
      package_version: PACKAGE_VERSION,
      created: new Date().toISOString(),
      files: {},
    };
    for (const name of [FRAMES_FILE, SILENCE_FILE, ...(built.scales ? [SCALES_FILE] : [])]) {
      const full = path.join(temp, name);
      meta.files[name] = { bytes: (await fs.promises.stat(full)).size, sha256: await sha256OfFile(full) };
    }
    const sidecar: EntryMeta = { ...meta, entry_sha256: entrySha256(meta) };
    await fs.promises.writeFile(path.join(temp, META_FILE), JSON.stringify(sidecar, null, 2));
    // the codebooks too, once per model, so that embeddings of these codes never need the model
    if (request.stored === 'codes' && !cache.temporary) await modelCodebooks(cache, model);
    if (built.partial) {
      const entry = await Entry.open(temp, key, true);
      return { entry, cached: false, release: () => fs.promises.rm(temp, { recursive: true, force: true }) };
    }
    return { entry: await cache.commit(key, temp), cached: false, release: async () => undefined };
  } catch (err) {
    await fs.promises.rm(temp, { recursive: true, force: true });
    throw err;
  }
}

interface Built {
  samples: number;
  nFrames: number;
  rows: number;
  scales?: boolean;
  /** Read only the start of the file (maxSeconds). */
  partial: boolean;
}

async function buildEntry(dir: string, codec: Encodec, file: string, request: EncodeRequest, exact: boolean): Promise<Built> {
  const { info } = codec;
  const channels = info.channels === 2 ? 2 : 1;
  const codes = request.stored === 'codes';
  const { bandwidth, nQ } = fullDepth(info);
  const rows = codes ? nQ : info.dimension;
  const frames = await NpyFrameWriter.create(path.join(dir, FRAMES_FILE), codes ? 'int16' : 'float32', rows);
  const scales: number[] = [];
  const audio = new Counted(channels);
  const read = { sampleRate: info.sample_rate, channels: channels as 1 | 2, maxSeconds: request.maxSeconds };
  try {
    // a file without a sample is an encoding of no frames (zero TRs downstream), not an error
    if (exact) {
      const { samples } = await loadAudio(file, read);
      audio.samples = samples.length / channels;
      if (samples.length > 0) {
        const block = codes ? await codec.encode(samples, { bandwidth, exact: true }) : await codec.latents(samples, { exact: true });
        await frames.appendRows(block.data, block.nFrames);
      }
    } else if (codes) {
      const tap = request.tap;
      const stream = await unlessEmpty(audio.wrap(streamAudio(file, read), tap?.tap));
      for await (const block of stream ? codec.encodeStreamBlocks(stream, { bandwidth }) : []) {
        await frames.appendRows(block.data, block.nFrames);
        if (block.scales) scales.push(...block.scales);
        if (tap) await tap.tap.codes(prefixRows(block, tap.nQ));
      }
    } else {
      const stream = await unlessEmpty(audio.wrap(streamAudio(file, read)));
      for await (const block of stream ? codec.latentsStream(stream) : []) await frames.appendRows(block.data, block.nFrames);
    }
    await frames.close();
  } catch (err) {
    await frames.abandon();
    throw err;
  }
  if (scales.length) {
    const w = await NpyFrameWriter.create(path.join(dir, SCALES_FILE), 'float32', 1);
    await w.append(Float32Array.from(scales));
    await w.close();
  }
  await writeSilence(dir, codec, codes, bandwidth, rows);
  const partial = request.maxSeconds !== undefined && audio.samples >= Math.round(request.maxSeconds * info.sample_rate);
  return { samples: audio.samples, nFrames: frames.nFrames, rows, scales: scales.length > 0, partial };
}

/** Codes of the first `nQ` codebooks of a block (its first rows). */
export function prefixRows<T extends Codes>(block: T, nQ: number): T {
  if (block.nQ === nQ) return block;
  return { ...block, data: block.data.slice(0, nQ * block.nFrames), nQ };
}

/** The model's frame for digital silence: frame SILENCE_FRAME of SILENCE_SECONDS of zeros, coded as files are. */
async function writeSilence(dir: string, codec: Encodec, codes: boolean, bandwidth: number, rows: number): Promise<void> {
  const { info } = codec;
  const zeros = new Float32Array(SILENCE_SECONDS * info.sample_rate * info.channels);
  let frame: ArrayLike<number>;
  let n: number;
  if (codes) {
    const c = await codec.encodeStream([zeros], { bandwidth });
    frame = c.data;
    n = c.nFrames;
  } else {
    const l = await codec.latents(zeros);
    frame = l.data;
    n = l.nFrames;
  }
  if (n <= SILENCE_FRAME) throw codedError('ENCODEC_INTERNAL', `internal error: ${n} frames of silence`);
  const w = await NpyFrameWriter.create(path.join(dir, SILENCE_FILE), codes ? 'int16' : 'float32', rows);
  const one = codes ? new Int16Array(rows) : new Float32Array(rows);
  for (let r = 0; r < rows; r++) one[r] = frame[r * n + SILENCE_FRAME];
  await w.append(one);
  await w.close();
}

/** The model's codebooks, from the cache's copy, else from the codec (and kept in the cache). */
export async function modelCodebooks(cache: EncodingCache, model: EncodeModel): Promise<Codebooks> {
  const dir = path.join(cache.dir, 'codebooks');
  const sha = await modelSha256(cache, model.path);
  const kept = await readCodebooks(dir, sha);
  if (kept) return kept;
  const books = await (await model.codec()).codebooks();
  await writeCodebooks(dir, sha, books);
  return books;
}
