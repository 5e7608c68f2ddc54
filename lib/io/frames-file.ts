/**
 * Native-rate ("model-rate") features as files users keep: one row per model frame, on the model's own time grid,
 * each file with a JSON sidecar in the form of a BIDS continuous recording.
 *
 * Formats (`base` is the path without extension):
 * - `npy`: `base.npy`, shape [nFrames, columns], `<i2` for codes, `<f4` otherwise; sidecar `base.json`.
 * - `h5`: `base.h5` with dataset `frames` (the same array, `<i2` / `<f4`), dataset `column_names` (strings) and the
 *   attributes `kind`, `sampling_frequency`, `start_time` and the meta fields (numbers and strings as they are,
 *   booleans, arrays and objects as JSON text) on `frames`; sidecar `base.json`.
 * - `tsv`: `base_stim.tsv.gz`, gzip-compressed tab-separated text WITHOUT a header row (BIDS continuous recordings
 *   name their columns in the sidecar's `Columns`), one row per frame; integers as integers, floats as the shortest
 *   decimal that reads back as the same float32; sidecar `base_stim.json`.
 *
 * The sidecar holds `SamplingFrequency` (frames per second), `StartTime` (seconds from the stimulus's first sample
 * to row 0), `Columns` (always, although BIDS requires it for tsv only), `FeatureKind`, then the meta fields.
 *
 * Every value must be finite (a frame series with NaN or infinity is a bug upstream, and BIDS tsv has no such
 * values). The data file and its sidecar are written to temporary files, then renamed into place: a failure leaves
 * neither target changed and no temporary file behind.
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';

import { tempPathFor } from '../common/atomic';
import { codedError, rangeError, typeError } from '../common/errors';
import { h5wasm, H5Dataset } from './h5wasm';
import { encodeNpy, readNpy } from './npy';

/** Model-rate features of one stimulus. */
export interface FrameSeries {
  kind: 'codes' | 'embeddings' | 'latents';
  /** time-major: data[t * columns + c], t = frame index */
  data: Int16Array | Float32Array;
  nFrames: number;
  columns: number;
  /** frames per second (75 for encodec_24khz, 150 for encodec_48khz) */
  samplingFrequency: number;
  /** seconds: time of row 0 relative to the stimulus's first sample (frame centres: 0.5 / samplingFrequency) */
  startTime: number;
  /** e.g. codebook_0..codebook_7, or latent_0..latent_127 / embedding_0.. */
  columnNames: string[];
  /** extra sidecar fields (model, model SHA-256, bandwidth, source file and its SHA-256, package version...) */
  meta?: Record<string, unknown>;
}

/** The formats {@link writeFramesFile} writes. */
export type FramesFormat = 'npy' | 'h5' | 'tsv';

const KINDS = ['codes', 'embeddings', 'latents'] as const;
/** Sidecar fields the writer owns; meta fields of these names are refused. */
const CORE_FIELDS = ['SamplingFrequency', 'StartTime', 'Columns', 'FeatureKind'];

/** The data file and sidecar paths of `base` in `format`. */
export function framesFilePaths(base: string, format: FramesFormat): { data: string; sidecar: string } {
  if (format === 'npy') return { data: `${base}.npy`, sidecar: `${base}.json` };
  if (format === 'h5') return { data: `${base}.h5`, sidecar: `${base}.json` };
  if (format === 'tsv') return { data: `${base}_stim.tsv.gz`, sidecar: `${base}_stim.json` };
  throw rangeError(`unknown frames format ${JSON.stringify(format)} (use npy, h5 or tsv)`);
}

/** Checks a series' shape, types and values; throws naming the first problem. */
function validate(series: FrameSeries): void {
  const { kind, data, nFrames, columns, samplingFrequency, startTime, columnNames } = series;
  if (!KINDS.includes(kind)) throw rangeError(`frame series kind ${JSON.stringify(kind)} is not one of ${KINDS.join(', ')}`);
  if (kind === 'codes' ? !(data instanceof Int16Array) : !(data instanceof Float32Array)) {
    throw typeError(`${kind} must be held in ${kind === 'codes' ? 'an Int16Array' : 'a Float32Array'}`);
  }
  if (!Number.isSafeInteger(nFrames) || nFrames < 0 || !Number.isSafeInteger(columns) || columns < 1) {
    throw rangeError(`frame series shape [${nFrames}, ${columns}] must be a non-negative number of frames and at least one column`);
  }
  if (data.length !== nFrames * columns) {
    throw rangeError(`frame series data holds ${data.length} values, not ${nFrames} frames x ${columns} columns = ${nFrames * columns}`);
  }
  if (!(Number.isFinite(samplingFrequency) && samplingFrequency > 0)) {
    throw rangeError(`samplingFrequency must be a positive number of frames per second, not ${samplingFrequency}`);
  }
  if (!Number.isFinite(startTime)) throw rangeError(`startTime must be a finite number of seconds, not ${startTime}`);
  if (!Array.isArray(columnNames) || columnNames.length !== columns) {
    throw rangeError(`columnNames has ${columnNames?.length} names for ${columns} columns`);
  }
  for (const name of columnNames) {
    if (typeof name !== 'string' || name === '' || /[\t\n\r]/.test(name)) {
      throw rangeError(`column name ${JSON.stringify(name)} must be a non-empty string without tabs or line breaks`);
    }
  }
  for (const key of Object.keys(series.meta ?? {})) {
    if (CORE_FIELDS.includes(key)) throw rangeError(`meta field ${key} is set by the frames writer itself; leave it out of meta`);
  }
}

/** The index of the first value that is not finite, or -1. */
function firstNonFinite(data: Int16Array | Float32Array, from = 0, to = data.length): number {
  if (data instanceof Int16Array) return -1;
  for (let i = from; i < to; i++) if (!Number.isFinite(data[i])) return i;
  return -1;
}

function nonFiniteError(series: FrameSeries, index: number): Error {
  const t = Math.floor(index / series.columns);
  return rangeError(`frame ${t}, column ${series.columnNames[index % series.columns]} holds ${series.data[index]}; frame series must be finite`);
}

/** The sidecar object: the BIDS continuous-recording fields, the kind, then the meta fields. */
function sidecarOf(series: FrameSeries): Record<string, unknown> {
  return {
    SamplingFrequency: series.samplingFrequency,
    StartTime: series.startTime,
    Columns: series.columnNames,
    FeatureKind: series.kind,
    ...(series.meta ?? {}),
  };
}

/**
 * The shortest decimal text that reads back (as float64, then rounded to float32) as the float32 value `v`.
 * More significant digits only bring a decimal closer to v, so the shortest precision is the least that works:
 * most float32 values need 7 to 9 digits, so 7 is tried first, then 8 (9 always suffice), and fewer by bisection.
 */
export function float32Text(v: number): string {
  // Up to 2^24 float32 steps are at most 1, so an integer's own digits are the shortest text.
  if (Number.isInteger(v) && Math.abs(v) <= 16777216) return Object.is(v, -0) ? '-0' : String(v);
  const fits = (digits: number): number | undefined => {
    const d = Number(v.toPrecision(digits));
    return Math.fround(d) === v ? d : undefined;
  };
  let best = fits(7);
  if (best === undefined) return String(fits(8) ?? Number(v.toPrecision(9)));
  let lo = 1;
  let hi = 7;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const d = fits(mid);
    if (d === undefined) lo = mid + 1;
    else [hi, best] = [mid, d];
  }
  return String(best);
}

/** Frames per chunk of tsv text: bounded memory whatever the series' length. */
const TSV_CHUNK_VALUES = 1 << 16;

/** Yields the tsv text of a series in chunks of whole rows; throws at the first value that is not finite. */
function* tsvChunks(series: FrameSeries): Generator<string> {
  const { data, columns, nFrames } = series;
  const rowsPerChunk = Math.max(1, Math.floor(TSV_CHUNK_VALUES / columns));
  const format = data instanceof Int16Array ? String : float32Text;
  for (let t0 = 0; t0 < nFrames; t0 += rowsPerChunk) {
    const t1 = Math.min(nFrames, t0 + rowsPerChunk);
    const bad = firstNonFinite(data, t0 * columns, t1 * columns);
    if (bad >= 0) throw nonFiniteError(series, bad);
    const lines: string[] = [];
    for (let t = t0; t < t1; t++) {
      const cells = new Array<string>(columns);
      for (let c = 0; c < columns; c++) cells[c] = format(data[t * columns + c]);
      lines.push(cells.join('\t'));
    }
    yield lines.join('\n') + '\n';
  }
}

async function syncFile(file: string): Promise<void> {
  const handle = await fs.promises.open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeTsvGz(temp: string, series: FrameSeries): Promise<void> {
  // Node's gzip header has mtime 0 and no file name, so equal series give equal bytes.
  await pipeline(tsvChunks(series), zlib.createGzip(), fs.createWriteStream(temp, { flags: 'wx' }));
  await syncFile(temp);
}

/** An attribute value h5wasm stores as it is (numbers, strings) or as JSON text. */
function attributeValue(value: unknown): number | string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number' || typeof value === 'string') return value;
  return JSON.stringify(value);
}

async function writeH5(temp: string, series: FrameSeries): Promise<void> {
  const lib = await h5wasm();
  const file = new lib.File(temp, 'w');
  try {
    const dtype = series.data instanceof Int16Array ? '<h' : '<f';
    file.create_dataset({ name: 'frames', data: series.data, shape: [series.nFrames, series.columns], dtype });
    file.create_dataset({ name: 'column_names', data: series.columnNames });
    const frames = file.get('frames') as { create_attribute: (name: string, value: unknown, shape?: null, dtype?: string | null) => void };
    const attrs: Record<string, unknown> = {
      kind: series.kind,
      sampling_frequency: series.samplingFrequency,
      start_time: series.startTime,
      ...(series.meta ?? {}),
    };
    for (const [name, raw] of Object.entries(attrs)) {
      const value = attributeValue(raw);
      if (value === undefined) continue;
      if (typeof value === 'number') frames.create_attribute(name, value, null, Number.isInteger(value) ? '<q' : '<d');
      else frames.create_attribute(name, value);
    }
  } finally {
    file.close();
  }
}

/**
 * Produces each part at its temporary path, then renames every part into place; on failure removes the
 * temporary files (see writeFilesAtomic in lib/common/atomic.ts for what a crash between the renames leaves).
 */
async function commit(parts: [target: string, produce: (temp: string) => Promise<void>][]): Promise<void> {
  const temps: string[] = [];
  try {
    for (const [target, produce] of parts) {
      const stat = await fs.promises.stat(target).catch(() => undefined);
      if (stat?.isDirectory()) throw rangeError(`${target} is a directory; choose another output name`);
      temps.push(tempPathFor(target));
      await produce(temps[temps.length - 1]);
    }
    for (let i = 0; i < parts.length; i++) await fs.promises.rename(temps[i], parts[i][0]);
  } catch (err) {
    await Promise.all(temps.map((t) => fs.promises.rm(t, { force: true }).catch(() => undefined)));
    throw err;
  }
}

async function writeBytes(temp: string, bytes: Uint8Array): Promise<void> {
  const handle = await fs.promises.open(temp, 'wx');
  try {
    let offset = 0;
    while (offset < bytes.byteLength) offset += (await handle.write(bytes, offset, bytes.byteLength - offset)).bytesWritten;
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a frame series as `base.npy`, `base.h5` or `base_stim.tsv.gz`, each with its JSON sidecar (see the module
 * notes), atomically. The tsv is streamed through gzip in bounded chunks.
 *
 * @returns the paths written: the data file, then the sidecar
 * @throws ENCODEC_BAD_INPUT for an inconsistent series or a value that is not finite; file-system errors as they are
 */
export async function writeFramesFile(base: string, series: FrameSeries, format: FramesFormat): Promise<string[]> {
  const paths = framesFilePaths(base, format);
  validate(series);
  if (format !== 'tsv') {
    const bad = firstNonFinite(series.data);
    if (bad >= 0) throw nonFiniteError(series, bad);
  }
  const sidecar = Buffer.from(`${JSON.stringify(sidecarOf(series), null, 2)}\n`);
  const produceData =
    format === 'npy'
      ? (temp: string) => writeBytes(temp, encodeNpy(series.data, [series.nFrames, series.columns]))
      : format === 'h5'
        ? (temp: string) => writeH5(temp, series)
        : (temp: string) => writeTsvGz(temp, series);
  await commit([
    [paths.data, produceData],
    [paths.sidecar, (temp) => writeBytes(temp, sidecar)],
  ]);
  return [paths.data, paths.sidecar];
}

/* ------------------------------------------------------------------------------------------------------ */
/* Reading                                                                                                 */

function formatError(file: string, what: string): Error {
  return codedError('ENCODEC_FILE_FORMAT', `${file}: ${what}`);
}

/** The format and sidecar of a frames data file, from its name. */
function classify(file: string): { format: FramesFormat; sidecar: string } {
  if (file.endsWith('_stim.tsv.gz')) return { format: 'tsv', sidecar: `${file.slice(0, -'.tsv.gz'.length)}.json` };
  if (file.endsWith('.npy')) return { format: 'npy', sidecar: `${file.slice(0, -'.npy'.length)}.json` };
  if (file.endsWith('.h5')) return { format: 'h5', sidecar: `${file.slice(0, -'.h5'.length)}.json` };
  throw rangeError(`${file} is not a frames file (expected .npy, .h5 or _stim.tsv.gz)`);
}

interface SidecarFields {
  kind: FrameSeries['kind'];
  samplingFrequency: number;
  startTime: number;
  columnNames: string[];
  meta: Record<string, unknown>;
}

async function readSidecar(file: string): Promise<SidecarFields> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(await fs.promises.readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') throw formatError(file, 'the sidecar of this frames file is missing');
    throw formatError(file, `not valid JSON (${(err as Error).message})`);
  }
  const { SamplingFrequency, StartTime, Columns, FeatureKind, ...meta } = json ?? {};
  if (typeof SamplingFrequency !== 'number' || !(SamplingFrequency > 0)) throw formatError(file, 'SamplingFrequency is missing or not a positive number');
  if (typeof StartTime !== 'number' || !Number.isFinite(StartTime)) throw formatError(file, 'StartTime is missing or not a number');
  if (!Array.isArray(Columns) || !Columns.every((c) => typeof c === 'string')) throw formatError(file, 'Columns is missing or not a list of names');
  if (!KINDS.includes(FeatureKind as FrameSeries['kind'])) throw formatError(file, `FeatureKind is not one of ${KINDS.join(', ')}`);
  return { kind: FeatureKind as FrameSeries['kind'], samplingFrequency: SamplingFrequency, startTime: StartTime, columnNames: Columns as string[], meta };
}

async function readTsvGz(file: string, columns: number, codes: boolean): Promise<{ data: Int16Array | Float32Array; nFrames: number }> {
  let data: Int16Array | Float32Array = codes ? new Int16Array(columns * 1024) : new Float32Array(columns * 1024);
  let nFrames = 0;
  const lines = readline.createInterface({ input: fs.createReadStream(file).pipe(zlib.createGunzip()), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line === '') continue;
    const cells = line.split('\t');
    if (cells.length !== columns) throw formatError(file, `row ${nFrames + 1} has ${cells.length} values, not the sidecar's ${columns} Columns`);
    if ((nFrames + 1) * columns > data.length) {
      const grown: Int16Array | Float32Array = codes ? new Int16Array(data.length * 2) : new Float32Array(data.length * 2);
      grown.set(data);
      data = grown;
    }
    for (let c = 0; c < columns; c++) {
      const v = Number(cells[c]);
      if (cells[c] === '' || !Number.isFinite(v) || (codes && (!Number.isInteger(v) || v < -32768 || v > 32767))) {
        throw formatError(file, `row ${nFrames + 1}, column ${c + 1} holds ${JSON.stringify(cells[c])}, not a ${codes ? 'code' : 'finite number'}`);
      }
      data[nFrames * columns + c] = v;
    }
    nFrames++;
  }
  return { data: data.slice(0, nFrames * columns), nFrames };
}

async function readH5(file: string): Promise<{ data: Int16Array | Float32Array; shape: number[] }> {
  const lib = await h5wasm();
  const h5 = new lib.File(file, 'r');
  try {
    const frames = h5.get('frames') as H5Dataset | null;
    if (!frames || typeof frames !== 'object' || !('shape' in frames)) throw formatError(file, "no dataset 'frames'");
    const value = frames.value;
    if (!(value instanceof Int16Array || value instanceof Float32Array)) throw formatError(file, "dataset 'frames' is neither int16 nor float32");
    return { data: value, shape: frames.shape ?? [] };
  } finally {
    h5.close();
  }
}

/**
 * Reads a frames file written by {@link writeFramesFile} (`.npy`, `.h5` or `_stim.tsv.gz`) with its sidecar.
 * Meta fields come back as the sidecar holds them.
 *
 * @throws ENCODEC_FILE_FORMAT when the file or its sidecar is missing fields, malformed or inconsistent
 */
export async function readFramesFile(file: string): Promise<FrameSeries> {
  const { format, sidecar } = classify(file);
  const fields = await readSidecar(sidecar);
  const columns = fields.columnNames.length;
  const codes = fields.kind === 'codes';
  let data: Int16Array | Float32Array;
  let nFrames: number;
  if (format === 'tsv') {
    ({ data, nFrames } = await readTsvGz(file, columns, codes));
  } else {
    let shape: number[];
    if (format === 'npy') {
      const array = await readNpy(file);
      if (!(array.data instanceof Int16Array || array.data instanceof Float32Array)) throw formatError(file, `dtype ${array.dtype} is neither <i2 nor <f4`);
      ({ data, shape } = { data: array.data, shape: array.shape });
    } else {
      ({ data, shape } = await readH5(file));
    }
    if (shape.length !== 2 || shape[1] !== columns) throw formatError(file, `shape [${shape.join(', ')}] does not match the sidecar's ${columns} Columns`);
    nFrames = shape[0];
  }
  if (codes !== data instanceof Int16Array) throw formatError(file, `FeatureKind ${fields.kind} does not match the ${data instanceof Int16Array ? 'int16' : 'float32'} data`);
  const series: FrameSeries = {
    kind: fields.kind,
    data,
    nFrames,
    columns,
    samplingFrequency: fields.samplingFrequency,
    startTime: fields.startTime,
    columnNames: fields.columnNames,
  };
  if (Object.keys(fields.meta).length > 0) series.meta = fields.meta;
  return series;
}
