/**
 * Feature files: a NumPy `.npy` array (numpy.load reads it) plus a metadata `.csv` beside it, one row per TR
 * (pandas.read_csv reads it). Both are written to temporary files first and renamed into place, the `.csv`
 * before the `.npy`, so a reader (or a rerun that skips finished inputs) sees either both complete files or
 * no `.npy`.
 *
 * CSV columns: tr_index, start_time, end_time, n_frames, n_codebooks, bandwidth, encoding_mode, source,
 * then feature_kind (codes | embeddings | mel), hrf, layout, tr, and for mel sample_rate, n_fft, hop_length,
 * n_mels, top_db (empty otherwise).
 *
 * Reading auto-detects the kind: an integer array -> EnCodec codes (values 0..1023); a float array -> the
 * kind its CSV names, else mel when every value is <= 0 (dB relative to the maximum), else embeddings when
 * it has 128 rows per TR. Anything else is an error that says what was expected.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { ceilTrTimesRate, checkTr, framesPerTr } from './alignment';
import { tempPathFor } from '../common/atomic';
import { LATENT_DIM, MAX_CODEBOOKS } from '../codec/bandwidth';
import { checkCodeRange } from '../codec/codes';
import { DEFAULT_TR, FeatureKind, FeatureLayout, FeatureMode, FeatureSet, HrfOption, TrMetadata } from './features';
import { MelSettings, melSettings } from '../dsp/mel';
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
] as const;

/** The `.npy` and `.csv` paths for an output base (`out/movie`, `out/movie.npy` or `out/movie.csv`). */
export function featureFilesFor(outBase: string): FeatureFiles {
  const base = outBase.replace(/\.(npy|csv)$/i, '');
  return { npy: `${base}.npy`, csv: `${base}.csv` };
}

function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The metadata CSV text of a feature set. */
export function featuresCsv(result: FeatureSet): string {
  const lines = [COLUMNS.join(',')];
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
    };
    const all: Record<string, unknown> = { ...row, ...extra };
    lines.push(COLUMNS.map((c) => csvField(all[c])).join(','));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Writes `<outBase>.npy` and `<outBase>.csv` atomically (see the module notes) and returns their paths.
 * Existing files are replaced.
 */
export async function writeFeatures(outBase: string, result: FeatureSet): Promise<FeatureFiles> {
  const files = featureFilesFor(outBase);
  const parts: [string, Uint8Array][] = [
    [files.csv, Buffer.from(featuresCsv(result), 'utf8')],
    [files.npy, encodeNpy(result.features, result.shape)],
  ];
  const temps: string[] = [];
  try {
    for (const [target, bytes] of parts) {
      const temp = tempPathFor(target);
      temps.push(temp);
      const handle = await fs.promises.open(temp, 'wx');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    for (let i = 0; i < parts.length; i++) await fs.promises.rename(temps[i], parts[i][0]);
  } catch (err) {
    await Promise.all(temps.map((t) => fs.promises.rm(t, { force: true }).catch(() => undefined)));
    throw err;
  }
  return files;
}

/** Whether both files of an output base exist (a finished output). */
export function featuresExist(outBase: string): boolean {
  const files = featureFilesFor(outBase);
  return fs.existsSync(files.npy) && fs.existsSync(files.csv);
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

/** Parses CSV text (RFC 4180: quoted fields, doubled quotes) into rows of fields. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
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
  const csv = await readCsvIfPresent(featureFilesFor(npyPath).csv);
  const first = csv?.rows[0];
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
    if (csvKind === 'mel' || csvKind === 'embeddings') kind = csvKind;
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
  if (kind === 'embeddings' && layout === 'tr' && shape[1] !== LATENT_DIM) {
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
  const frames =
    layout === 'tr' ? shape[2] : kind === 'mel' && mel ? ceilTrTimesRate(tr, mel.sampleRate, mel.hopLength) : framesPerTr(tr);
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
  };
}
