/**
 * One cached stimulus encoding on disk: a folder holding an `.npy` per array and `entry.json`, its sidecar.
 *
 * - `frames.npy`: the model's frames, time-major [nFrames, rows]: codes at full depth (int16, rows = the model's
 *   codebooks: 32 for encodec_24khz, 16 for encodec_48khz) or latents (float32, rows = 128). Frames of a segmented
 *   model (encodec_48khz) are its segments' frames joined, as the codec gives them (see lib/encoding/segment-grid.ts).
 * - `scales.npy`: float32 [segments], codes of a segmented model: each segment's normalisation scale.
 * - `silence.npy`: [1, rows], the model's frame for digital silence (SILENCE_FRAME of 2 s of zeros), which the
 *   align stage gives the parts of a run no stimulus fills.
 * - `entry.json`: what was encoded, by which model, on what, and the SHA-256 and size of each file; `entry_sha256`
 *   hashes all of it, so that any change to any file or field is detected.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { codedError } from '../common/errors';
import { sha256OfFile, sha256OfText } from './file-hash';
import { FrameArray, NpyFrameHeader, readFrameBlock, readFrameHeader } from './npy-frames';

export const ENTRY_FORMAT = 1;
export const FRAMES_FILE = 'frames.npy';
export const SCALES_FILE = 'scales.npy';
export const SILENCE_FILE = 'silence.npy';
export const META_FILE = 'entry.json';

/** What an entry stores. */
export type StoredKind = 'codes' | 'latents';

/** The sidecar of an entry. */
export interface EntryMeta {
  format: number;
  /** The cache key the entry was made for (see ./cache-key). */
  key: string;
  stored: StoredKind;
  model: string;
  model_sha256: string;
  exporter_version: string;
  /** The input's path when the entry was made (informational: the entry serves any file with these bytes). */
  source: string;
  source_sha256: string;
  source_bytes: number;
  /** Audio rate and channels the input was decoded at (the model's). */
  sample_rate: number;
  channels: number;
  /** The model's frames per second, and the time of frame 0's centre (BIDS continuous-recording terms). */
  SamplingFrequency: number;
  StartTime: number;
  /** Samples per channel the input decoded to. */
  samples: number;
  /** [nFrames, rows] of frames.npy. */
  shape: [number, number];
  /** Segmented models: samples per segment, between segment starts, and per frame. */
  segment_samples?: number;
  segment_stride?: number;
  hop_length: number;
  /** Encoded in one pass (`exact`) rather than in chunks. */
  exact: boolean;
  /** 'cpu' or 'cuda' (see docs/cache.md: entries serve the device kind that made them). */
  device: string;
  libtorch_version: string;
  package_version: string;
  created: string;
  files: Record<string, { bytes: number; sha256: string }>;
  /** SHA-256 of this sidecar without this field (canonical JSON), which itself holds every file's SHA-256. */
  entry_sha256: string;
}

/** JSON with keys sorted at every level: the text `entry_sha256` hashes. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value as object).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function entrySha256(meta: Omit<EntryMeta, 'entry_sha256'> & { entry_sha256?: string }): string {
  const { entry_sha256: _, ...rest } = meta;
  return sha256OfText(canonicalJson(rest));
}

/** An entry found invalid: why, for the one report the cache makes of it. */
export class InvalidEntry extends Error {}

/** An entry opened for reading, after its files were checked against its sidecar. */
export class Entry {
  private constructor(
    readonly dir: string,
    readonly meta: EntryMeta,
    private readonly header: NpyFrameHeader,
  ) {}

  /**
   * Opens the entry in `dir` for `key`, checking everything: the sidecar's own hash, the key, each file's size and
   * SHA-256, and the frames' header against the recorded shape. Throws InvalidEntry saying what is wrong.
   * `justWritten`: this process wrote the files and their hashes a moment ago, so their sizes are checked but they
   * are not read and hashed a second time.
   */
  static async open(dir: string, key: string | undefined, justWritten = false): Promise<Entry> {
    let meta: EntryMeta;
    try {
      meta = JSON.parse(await fs.promises.readFile(path.join(dir, META_FILE), 'utf8')) as EntryMeta;
    } catch (err) {
      throw new InvalidEntry(`its ${META_FILE} is missing or not JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (meta === null || typeof meta !== 'object' || meta.format !== ENTRY_FORMAT) throw new InvalidEntry(`its ${META_FILE} is not of format ${ENTRY_FORMAT}`);
    if (typeof meta.entry_sha256 !== 'string' || entrySha256(meta) !== meta.entry_sha256) throw new InvalidEntry(`its ${META_FILE} does not match its entry_sha256 (edited or corrupt)`);
    if (key !== undefined && meta.key !== key) throw new InvalidEntry(`it was made for another key (${String(meta.key).slice(0, 12)}...)`);
    if (!meta.files || !meta.files[FRAMES_FILE] || !meta.files[SILENCE_FILE]) throw new InvalidEntry('its sidecar lists no frames or silence file');
    for (const [name, { bytes, sha256 }] of Object.entries(meta.files)) {
      const file = path.join(dir, name);
      let size: number;
      try {
        size = (await fs.promises.stat(file)).size;
      } catch {
        throw new InvalidEntry(`${name} is missing`);
      }
      if (size !== bytes) throw new InvalidEntry(`${name} holds ${size} bytes, not the ${bytes} recorded (truncated or overwritten)`);
      if (!justWritten && (await sha256OfFile(file)) !== sha256) throw new InvalidEntry(`${name} does not match its recorded SHA-256 (corrupt)`);
    }
    let header: NpyFrameHeader;
    try {
      header = await readFrameHeader(path.join(dir, FRAMES_FILE));
    } catch (err) {
      throw new InvalidEntry((err as Error).message);
    }
    if (header.nFrames !== meta.shape[0] || header.rows !== meta.shape[1]) throw new InvalidEntry(`${FRAMES_FILE} has shape (${header.nFrames}, ${header.rows}), not the recorded (${meta.shape.join(', ')})`);
    if ((header.dtype === 'int16') !== (meta.stored === 'codes')) throw new InvalidEntry(`${FRAMES_FILE} holds ${header.dtype}, wrong for ${meta.stored}`);
    return new Entry(dir, meta, header);
  }

  get nFrames(): number {
    return this.header.nFrames;
  }

  get rows(): number {
    return this.header.rows;
  }

  /** Frames [from, to), time-major. */
  readFrames(from: number, to: number): Promise<FrameArray> {
    return readFrameBlock(path.join(this.dir, FRAMES_FILE), this.header, from, to);
  }

  /** The model's frame for digital silence ([rows]). */
  async silence(): Promise<FrameArray> {
    const file = path.join(this.dir, SILENCE_FILE);
    const h = await readFrameHeader(file);
    if (h.rows !== this.rows || h.nFrames !== 1) throw codedError('ENCODEC_FILE_FORMAT', `${file}: not one frame of ${this.rows} values`);
    return readFrameBlock(file, h, 0, 1);
  }

  /** Segment scales (segmented models' codes), else undefined. */
  async scales(): Promise<Float32Array | undefined> {
    if (!this.meta.files[SCALES_FILE]) return undefined;
    const file = path.join(this.dir, SCALES_FILE);
    const h = await readFrameHeader(file);
    return (await readFrameBlock(file, h, 0, h.nFrames)) as Float32Array;
  }

  /** Bytes of its files. */
  get bytes(): number {
    return Object.values(this.meta.files).reduce((n, f) => n + f.bytes, 0);
  }
}
