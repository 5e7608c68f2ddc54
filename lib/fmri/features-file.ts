/**
 * Feature files: a NumPy `.npy` array (numpy.load reads it) plus a metadata `.csv` beside it, one row per TR
 * (pandas.read_csv reads it; written and read with csv-stringify / csv-parse). Both are written to temporary files
 * first and renamed into place, the `.npy` and then the `.csv`, and the `.csv` records the SHA-256 of the `.npy`
 * it belongs to (`npy_sha256`): a pair is complete only when both exist and the hash matches, so a crash between
 * the renames (a new `.npy` beside an older `.csv`) is seen as unfinished by `featuresExist` and by `readFeatures`.
 *
 * CSV columns: tr_index, start_time, end_time, n_frames, n_codebooks, bandwidth, encoding_mode, source,
 * then feature_kind (codes | embeddings | latents | mel), hrf, layout, tr, and for mel sample_rate, n_fft,
 * hop_length, n_mels, top_db (empty otherwise); then the run timeline (./run-timeline): run_time_start,
 * run_time_end, stimulus_time_start, stimulus_time_end (NaN where the volume holds no stimulus),
 * stimulus_fraction, stim_file, frame_time (t_k), and the settings resample, delays (e.g. "1 2 3 4"), zscore,
 * onset, run_trs, slice_time_ref, and npy_sha256; for features of a model other than encodec_24khz two more columns
 * at the end, model (encodec_48khz) and frame_rate (its code frames per second, 150), so that the frames per TR can
 * be read for what they are (a 24 kHz model's CSV has neither: 75 frames/s).
 *
 * Reading auto-detects the kind: an integer array -> EnCodec codes (values 0..1023); a float array -> the
 * kind its CSV names, else mel when every value is <= 0 (dB relative to the maximum), else embeddings when
 * it has 128 rows per TR. Anything else is an error that says what was expected.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';

import { ceilTrTimesRate, checkTr, framesPerTr } from './alignment';
import { writeFilesAtomic } from '../common/atomic';
import { LATENT_DIM, MAX_CODEBOOKS } from '../codec/bandwidth';
import { checkCodeRange } from '../codec/codes';
import { DEFAULT_TR, FeatureKind, FeatureLayout, FeatureMode, FeatureSet, HrfOption, TrMetadata } from './feature-set';
import { MelSettings, melSettings } from '../dsp/mel';
import type { Resample } from './resample';
import { encodeNpy, readNpy, toInt32Array, toNumberArray } from '../io/npy';
import { typeError, rangeError } from '../common/errors';

/** Paths of a written feature pair. */
export interface FeatureFiles {
  npy: string;
  csv: string;
}

export interface ReadFeaturesOptions {
  /** TR the features were made with (default: the CSV's, else 1.5). Needed to split flat layouts. */
  tr?: number;
}

const COLUMNS = [
  'tr_index', 'start_time', 'end_time', 'n_frames', 'n_codebooks', 'bandwidth', 'encoding_mode', 'source',
  'feature_kind', 'hrf', 'layout', 'tr', 'sample_rate', 'n_fft', 'hop_length', 'n_mels', 'top_db',
  'run_time_start', 'run_time_end', 'stimulus_time_start', 'stimulus_time_end', 'stimulus_fraction', 'stim_file',
  'frame_time', 'resample', 'delays', 'zscore', 'onset', 'run_trs', 'slice_time_ref', 'npy_sha256',
] as const;
/** Written after COLUMNS for models other than encodec_24khz only. */
const MODEL_COLUMNS = ['model', 'frame_rate'] as const;

/** The `.npy` and `.csv` paths for an output base (`out/movie`, `out/movie.npy` or `out/movie.csv`). */
export function featureFilesFor(outBase: string): FeatureFiles {
  const base = outBase.replace(/\.(npy|csv)$/i, '');
  return { npy: `${base}.npy`, csv: `${base}.csv` };
}

/** The metadata CSV text of a feature set (`npySha256`: the hash of the `.npy` it is written beside). */
export function featuresCsv(result: FeatureSet, npySha256 = ''): string {
  const records: Record<string, unknown>[] = [];
  const mel = result.kind === 'mel' ? result.mel : undefined;
  for (const row of result.metadata) {
    const extra = {
      feature_kind: result.kind,
      hrf: result.hrf,
      layout: result.layout,
      tr: result.tr,
      sample_rate: mel?.sampleRate,
      n_fft: mel?.nFft,
      hop_length: mel?.hopLength,
      n_mels: mel?.nMels,
      top_db: mel?.topDb,
      resample: result.resample ?? 'window',
      delays: result.delays?.join(' '),
      zscore: result.zscore ? 'true' : 'false',
      onset: result.onset ?? 0,
      run_trs: result.runTrs,
      slice_time_ref: result.sliceTimeRef ?? 0,
      npy_sha256: npySha256,
      model: result.model,
      frame_rate: result.frameRate,
    };
    records.push({ ...row, ...extra });
  }
  // numbers as String() writes them (NaN as 'NaN', which pandas reads as NaN); no quotes unless a field needs them
  const columns = result.model === undefined ? [...COLUMNS] : [...COLUMNS, ...MODEL_COLUMNS];
  return stringify(records, { header: true, columns, cast: { number: (v) => String(v) } });
}

/** SHA-256 (hex) of bytes. */
function sha256(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/** SHA-256 (hex) of a file, read in blocks (synchronously: feature files are checked before work starts). */
function sha256FileSync(file: string): string {
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Writes `<outBase>.npy` and `<outBase>.csv` atomically (see the module notes), creating their folder if missing, and
 * returns their paths.
 * Existing files are replaced.
 */
export async function writeFeatures(outBase: string, result: FeatureSet): Promise<FeatureFiles> {
  const files = featureFilesFor(outBase);
  const npy = encodeNpy(result.features, result.shape);
  // the folder is made as `extract --out` makes it (else the write fails naming a temp file the caller never chose)
  await fs.promises.mkdir(path.dirname(path.resolve(files.npy)), { recursive: true });
  // the .npy first, then the .csv holding its hash: see the module notes
  await writeFilesAtomic([
    [files.npy, npy],
    [files.csv, Buffer.from(featuresCsv(result, sha256(npy)), 'utf8')],
  ]);
  return files;
}

/**
 * Whether an output base holds a finished pair: both files, and the `.csv`'s `npy_sha256` is the `.npy`'s hash (a
 * `.csv` written before this check existed has none and counts as finished when both files exist).
 */
export function featuresExist(outBase: string): boolean {
  const files = featureFilesFor(outBase);
  if (!fs.existsSync(files.npy) || !fs.existsSync(files.csv)) return false;
  try {
    const recorded = recordedNpyHash(fs.readFileSync(files.csv, 'utf8'));
    return recorded === undefined || recorded === sha256FileSync(files.npy);
  } catch {
    return false;
  }
}

/** The `npy_sha256` a metadata CSV records (undefined: none, an older CSV or one with no rows). */
function recordedNpyHash(text: string): string | undefined {
  const rows = parseCsv(text);
  const column = rows[0]?.indexOf('npy_sha256') ?? -1;
  if (column < 0) return undefined;
  const value = rows[1]?.[column];
  return value ? value : undefined;
}

/**
 * Removes temporary files that a killed run left for an output base (`.NAME.npy.*.partial`,
 * `.NAME.csv.*.partial`) once they are older than `olderThanMs` (default 10 minutes). A live writer renames its
 * temporary file within seconds of creating it, so old ones are leftovers, whichever process or host made them.
 * Returns the paths removed.
 */
export async function removeStalePartials(outBase: string, olderThanMs = 10 * 60 * 1000): Promise<string[]> {
  const dir = path.dirname(outBase);
  const name = path.basename(featureFilesFor(outBase).npy, '.npy');
  let entries: string[];
  try {
    entries = await fs.promises.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const entry of entries) {
    if (!entry.endsWith('.partial') || !(entry.startsWith(`.${name}.npy.`) || entry.startsWith(`.${name}.csv.`))) continue;
    const file = path.join(dir, entry);
    try {
      if (Date.now() - (await fs.promises.stat(file)).mtimeMs < olderThanMs) continue;
      await fs.promises.rm(file, { force: true });
      removed.push(file);
    } catch {
      // gone already, or not ours to remove: leave it
    }
  }
  return removed;
}

/** Parses CSV text (RFC 4180: quoted fields, doubled quotes) into rows of fields (csv-parse). */
export function parseCsv(text: string): string[][] {
  return parse(text, { relax_column_count: true, skip_empty_lines: true }) as string[][];
}

interface CsvInfo {
  rows: Record<string, string>[];
}

async function readCsvIfPresent(file: string): Promise<CsvInfo | undefined> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const [header, ...body] = parseCsv(text);
  if (!header || !header.includes('tr_index')) {
    throw rangeError(`${file} is not a feature metadata CSV (no tr_index column); remove it or write it with \`encodec-native extract\``);
  }
  return { rows: body.filter((r) => r.length > 1).map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? '']))) };
}

function numberOrNull(text: string | undefined): number | null {
  return text === undefined || text === '' ? null : Number(text);
}

function metadataFrom(csv: CsvInfo): TrMetadata[] {
  return csv.rows.map((r) => ({
    tr_index: Number(r.tr_index),
    start_time: Number(r.start_time),
    end_time: Number(r.end_time),
    n_frames: Number(r.n_frames),
    n_codebooks: Number(r.n_codebooks),
    bandwidth: numberOrNull(r.bandwidth),
    encoding_mode: (r.encoding_mode || 'encodec') as FeatureMode,
    source: r.source ?? '',
    // CSVs written before the run timeline: run time = stimulus time = start_time
    run_time_start: Number(r.run_time_start || r.start_time),
    run_time_end: Number(r.run_time_end || r.end_time),
    stimulus_time_start: Number(r.stimulus_time_start || r.start_time),
    stimulus_time_end: Number(r.stimulus_time_end || r.end_time),
    stimulus_fraction: Number(r.stimulus_fraction || 1),
    stim_file: r.stim_file ?? r.source ?? '',
    frame_time: Number(r.frame_time || r.start_time),
  }));
}

const EXPECTED =
  'expected EnCodec codes (integers 0..1023, shape (n_trs, n_q, frames) or flat (n_trs, n_q * frames)), ' +
  'embeddings (float, (n_trs, 128, frames)) or mel (float dB <= 0, (n_trs, n_mels, frames)) as written by `encodec-native extract`';

/**
 * Reads a feature `.npy` (and its `.csv` when present), detecting the kind (see the module notes).
 * Throws a TypeError (wrong dtype) or RangeError (wrong shape or values) that says what was expected.
 */
export async function readFeatures(file: string, options: ReadFeaturesOptions = {}): Promise<FeatureSet> {
  const files = featureFilesFor(file);
  const npyPath = /\.npy$/i.test(file) ? file : files.npy;
  const { data, dtype, shape } = await readNpy(npyPath);
  const csvPath = featureFilesFor(npyPath).csv;
  const csv = await readCsvIfPresent(csvPath);
  const first = csv?.rows[0];
  if (first?.npy_sha256 && first.npy_sha256 !== sha256FileSync(npyPath)) {
    throw rangeError(`${csvPath} was written for another ${path.basename(npyPath)} (an interrupted or concurrent run?); extract this input again (--force)`);
  }
  const tr = options.tr ?? (first?.tr ? Number(first.tr) : DEFAULT_TR);
  checkTr(tr, options.tr === undefined && first?.tr ? `the tr in ${featureFilesFor(npyPath).csv}` : 'tr');
  const csvKind = first?.feature_kind as FeatureKind | undefined;
  if (shape.length !== 2 && shape.length !== 3) {
    throw rangeError(`${npyPath}: shape (${shape.join(', ')}) is not a feature array; ${EXPECTED}`);
  }
  const layout: FeatureLayout = shape.length === 2 ? 'flat' : 'tr';
  const kindCode = dtype.slice(1);
  let kind: FeatureKind;
  let features: Int16Array | Float32Array;
  if (/^[iu][1248]$/.test(kindCode)) {
    if (csvKind && csvKind !== 'codes') throw typeError(`${npyPath}: integer array but its CSV says '${csvKind}'; ${EXPECTED}`);
    const ints = toInt32Array(data, `${npyPath} values`);
    checkCodeRange(ints, `${npyPath} codes`);
    kind = 'codes';
    features = Int16Array.from(ints);
  } else if (kindCode === 'f4' || kindCode === 'f8') {
    features = data instanceof Float32Array ? data : Float32Array.from(toNumberArray(data));
    if (csvKind === 'mel' || csvKind === 'embeddings' || csvKind === 'latents') kind = csvKind;
    else if (csvKind) throw typeError(`${npyPath}: float array but its CSV says '${csvKind}'; ${EXPECTED}`);
    else if (layout === 'flat') {
      throw rangeError(`${npyPath}: a flat float array without its metadata .csv cannot be told apart (mel or embeddings); keep the .csv beside it`);
    } else if (features.every((v) => v <= 0)) kind = 'mel';
    else if (shape[1] === LATENT_DIM) kind = 'embeddings';
    else throw rangeError(`${npyPath}: float array of shape (${shape.join(', ')}) with positive values; ${EXPECTED}`);
  } else {
    throw typeError(`${npyPath}: dtype ${dtype} is not a feature dtype; ${EXPECTED}`);
  }
  if (kind === 'codes' && layout === 'tr' && (shape[1] < 1 || shape[1] > MAX_CODEBOOKS)) {
    throw rangeError(`${npyPath}: codes of shape (${shape.join(', ')}) have ${shape[1]} codebooks; ${EXPECTED}`);
  }
  if ((kind === 'embeddings' || kind === 'latents') && layout === 'tr' && shape[1] !== LATENT_DIM) {
    throw rangeError(`${npyPath}: embeddings must have ${LATENT_DIM} rows per TR, got shape (${shape.join(', ')})`);
  }
  let mel: MelSettings | undefined;
  if (kind === 'mel') {
    const n = (key: string): number | undefined => (first?.[key] ? Number(first[key]) : undefined);
    mel = melSettings({
      sampleRate: n('sample_rate'),
      nFft: n('n_fft'),
      hopLength: n('hop_length'),
      nMels: n('n_mels') ?? (layout === 'tr' ? shape[1] : undefined),
      topDb: n('top_db'),
    });
  }
  const metadata = csv ? metadataFrom(csv) : [];
  const frameRate = first?.frame_rate ? Number(first.frame_rate) : undefined;
  const frames =
    layout === 'tr'
      ? shape[2]
      : first?.n_frames
        ? Number(first.n_frames)
        : kind === 'mel' && mel
          ? ceilTrTimesRate(tr, mel.sampleRate, mel.hopLength)
          : framesPerTr(tr, frameRate);
  const resample = (first?.resample || 'window') as Resample;
  const nQ = kind === 'codes' && layout === 'tr' ? shape[1] : first?.n_codebooks ? Number(first.n_codebooks) : undefined;
  return {
    kind,
    features,
    shape: [...shape],
    metadata,
    tr,
    layout,
    hrf: ((first?.hrf as HrfOption | undefined) || 'none'),
    framesPerTr: frames,
    nQ,
    bandwidth: numberOrNull(first?.bandwidth) ?? undefined,
    mel,
    source: first?.source ?? path.resolve(npyPath),
    ...(resample !== 'window' ? { resample } : {}),
    ...(first?.delays ? { delays: first.delays.split(' ').map(Number) } : {}),
    ...(first?.zscore === 'true' ? { zscore: true } : {}),
    ...(first?.onset ? { onset: Number(first.onset) } : {}),
    ...(first?.run_trs ? { runTrs: Number(first.run_trs) } : {}),
    ...(first?.slice_time_ref ? { sliceTimeRef: Number(first.slice_time_ref) } : {}),
    ...(first?.model ? { model: first.model } : {}),
    ...(frameRate !== undefined ? { frameRate } : {}),
  };
}
