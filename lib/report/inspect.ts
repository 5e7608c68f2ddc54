/**
 * Inspection of a feature file (or array): what it holds and whether it looks right, before hours of
 * modelling are spent on it.
 *
 * Reports the shape, dtype, kind (EnCodec codes, embeddings, mel), TR count and duration, value range and,
 * for codes, per codebook the number of distinct codes and the usage entropy (bits; 10 bits = all 1024
 * codes equally used). Warns about files that look wrong: all codes equal (silence, or a broken encoder),
 * values outside 0..1023, codebooks or TRs that are all zero (a codebook table sized for more codebooks than
 * were filled), non-finite values. All-zero TRs at the start of features convolved with an HRF (the `hrf` the
 * `.csv` beside the file names) are explained in a note, not warned about: the causal kernel is 0 at lag 0 and
 * tiny at lag 1, so those TRs are zero by construction.
 *
 * Files are read with `readNpy` directly (not only through `readFeatures`) so that broken files, which
 * `readFeatures` rightly refuses, can still be inspected: integer arrays are taken as codes; for float arrays
 * the kind is what `readFeatures` detects, or 'unknown' with its error as a warning.
 *
 * Accepted code layouts: `(n_trs, n_q, frames)` (extract's default), `(n_trs, n_q * frames)` (extract's
 * flat layout, codebook-major; recognised when the row length is a valid codebook count times
 * `framesPerTr(tr)`), and `(n_q, n_frames)` (whole-clip codes from `encode`, grouped into TRs here).
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { framesPerTr, trCount } from '../fmri/alignment';
import { HRF_MODELS, HrfModel, hrfKernel } from '../fmri/hrf';
import { BANDWIDTHS, CODEBOOK_SIZE, FRAME_RATE, MAX_CODEBOOKS, codebooksForBandwidth } from '../codec/bandwidth';
import type { FeatureKind, HrfOption } from '../fmri/feature-set';
import { debug } from '../common/log';
import { NpyData, readNpy } from '../io/npy';
import { COMPACT_LABEL, FIGURE_CONFIG, VegaLiteSpec, heatmapPanelSpecs, writePng } from './plot';
import { typeError, rangeError } from '../common/errors';
import { ordinal } from '../common/format';


/** An in-memory feature array to inspect. */
export interface FeatureArray {
  /** Values in C (row-major) order. */
  data: NpyData | ArrayLike<number>;
  /** Dimensions. */
  shape: number[];
  /** What the values are (default: integer arrays are codes; float arrays need it said). */
  kind?: FeatureKind;
  /** NumPy dtype string, if known ('<i2', '<f4', ...). */
  dtype?: string;
}

export interface InspectOptions {
  /** TR in seconds, for the TR count and duration of whole-clip codes and for recognising the flat layout (default 1.5). */
  tr?: number;
  /**
   * The HRF the features were convolved with (default: the `hrf` of the `.csv` beside the file, else 'none'),
   * so that the all-zero TRs it makes at the start are explained rather than warned about.
   */
  hrf?: HrfOption;
}

/** Statistics of one codebook's codes. */
export interface CodebookStats {
  /** Codebook index (0 = coarsest). */
  codebook: number;
  /** Number of distinct codes used. */
  distinct: number;
  /** Entropy of the code usage distribution in bits (0: one code only; at most 10). */
  entropyBits: number;
  /** Smallest and largest code. */
  min: number;
  max: number;
  /** The most used code and the fraction of frames that use it. */
  mostCommon: { code: number; fraction: number };
}

/** What {@link inspectFeatures} found. */
export interface FeatureInspection {
  /** The file inspected, when one was given. */
  file?: string;
  kind: FeatureKind | 'unknown';
  /** NumPy dtype string ('<i2', '<f4', ...), or the typed array's name for in-memory data. */
  dtype: string;
  shape: number[];
  /** How the axes were read: 'tr' (n_trs, channels, frames), 'flat' (n_trs, n_q * frames), 'clip' (n_q, n_frames). */
  layout: 'tr' | 'flat' | 'clip' | 'other';
  /** TR used for TR counts and durations, seconds. */
  tr: number;
  /** Number of TRs (for whole-clip codes: whole TRs the clip covers), or null when the layout has none. */
  trCount: number | null;
  /** trCount x tr seconds, or null. */
  durationSeconds: number | null;
  /** Codebooks (codes) or channels (embedding dimensions, mel bands), or null. */
  channels: number | null;
  /** Frames per TR (or per clip), or null. */
  frames: number | null;
  /** Smallest, largest and mean finite value, and the standard deviation. */
  min: number;
  max: number;
  mean: number;
  std: number;
  /** Values that are NaN or infinite. */
  nonFinite: number;
  /** Per-codebook statistics (codes only). */
  codebooks?: CodebookStats[];
  /** Codebooks / channels whose values are all zero. */
  zeroChannels: number[];
  /** TRs whose values are all zero. */
  zeroTrs: number[];
  /** The HRF the features were convolved with ('none' when not). */
  hrf: HrfOption;
  /** Things that look odd but are explained (e.g. zero TRs an HRF makes), one sentence each. */
  notes: string[];
  /** Things that look wrong, one sentence each. */
  warnings: string[];
}

/** Codes per TR and codebook, with a uniform accessor over the three code layouts. */
interface Grid {
  layout: 'tr' | 'flat' | 'clip' | 'other';
  trs: number;
  channels: number;
  frames: number;
  /** Index into data of (TR t, channel c, frame f). */
  at(t: number, c: number, f: number): number;
}

function isIntegerData(data: FeatureArray['data'], dtype?: string): boolean {
  if (dtype) return /[iub]\d/.test(dtype);
  return !(data instanceof Float32Array || data instanceof Float64Array || Array.isArray(data));
}

function dtypeName(input: FeatureArray): string {
  if (input.dtype) return input.dtype;
  return ArrayBuffer.isView(input.data) ? input.data.constructor.name : 'number[]';
}

/** How to walk the array as (TR, channel, frame). */
function gridOf(shape: number[], kind: FeatureKind | 'unknown', tr: number, nQHint?: number): Grid {
  if (shape.length === 3) {
    const [trs, channels, frames] = shape;
    return { layout: 'tr', trs, channels, frames, at: (t, c, f) => (t * channels + c) * frames + f };
  }
  if (shape.length === 2 && kind === 'codes') {
    const [rows, cols] = shape;
    const nQ = nQHint ?? cols / framesPerTr(tr);
    const perTr = cols / nQ;
    const validCounts = BANDWIDTHS.map(codebooksForBandwidth);
    if (Number.isInteger(nQ) && Number.isInteger(perTr) && validCounts.includes(nQ)) {
      return { layout: 'flat', trs: rows, channels: nQ, frames: perTr, at: (t, c, f) => t * cols + c * perTr + f };
    }
    if (rows >= 1 && rows <= MAX_CODEBOOKS) {
      // Whole-clip codes (n_q, n_frames): TRs are consecutive windows of framesPerTr(tr) frames.
      const trs = Math.max(0, trCount(cols / FRAME_RATE, tr));
      return { layout: 'clip', trs, channels: rows, frames: cols, at: (t, c, f) => c * cols + f };
    }
  }
  if (shape.length === 2) {
    const [trs, channels] = shape;
    return { layout: 'other', trs, channels, frames: 1, at: (t, c) => t * channels + c };
  }
  return { layout: 'other', trs: 0, channels: 0, frames: 0, at: () => 0 };
}

/** Entropy in bits of a histogram with `total` counts. */
function entropyBits(counts: Uint32Array, total: number): number {
  let h = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i]) {
      const p = counts[i] / total;
      h -= p * Math.log2(p);
    }
  }
  return h === 0 ? 0 : h; // no -0
}

function valueAt(data: FeatureArray['data'], i: number): number {
  const v = (data as ArrayLike<number | bigint>)[i];
  return typeof v === 'bigint' ? Number(v) : v;
}

function codebookStats(input: FeatureArray, grid: Grid): CodebookStats[] {
  const perCodebook: CodebookStats[] = [];
  const counts = new Uint32Array(CODEBOOK_SIZE);
  const frameSpan = grid.layout === 'clip' ? 1 : grid.trs;
  for (let c = 0; c < grid.channels; c++) {
    counts.fill(0);
    let min = Infinity;
    let max = -Infinity;
    let total = 0;
    for (let t = 0; t < frameSpan; t++) {
      for (let f = 0; f < grid.frames; f++) {
        const v = valueAt(input.data, grid.at(t, c, f));
        if (v < min) min = v;
        if (v > max) max = v;
        if (Number.isInteger(v) && v >= 0 && v < CODEBOOK_SIZE) counts[v]++;
        total++;
      }
    }
    let distinct = 0;
    let best = 0;
    for (let k = 0; k < CODEBOOK_SIZE; k++) {
      if (counts[k]) distinct++;
      if (counts[k] > counts[best]) best = k;
    }
    const inRange = counts.reduce((a, b) => a + b, 0);
    perCodebook.push({
      codebook: c,
      distinct,
      entropyBits: inRange ? entropyBits(counts, inRange) : 0,
      min,
      max,
      mostCommon: { code: best, fraction: total ? counts[best] / total : 0 },
    });
  }
  return perCodebook;
}

/** Indices of channels (or TRs) whose values are all zero. */
function zeroSlices(input: FeatureArray, grid: Grid, axis: 'channel' | 'tr'): number[] {
  if (grid.layout === 'other' && grid.trs === 0) return [];
  const outer = axis === 'channel' ? grid.channels : grid.layout === 'clip' ? 0 : grid.trs;
  const zero: number[] = [];
  for (let o = 0; o < outer; o++) {
    let allZero = true;
    const trs = axis === 'channel' ? (grid.layout === 'clip' ? 1 : grid.trs) : 1;
    const chans = axis === 'channel' ? 1 : grid.channels;
    for (let a = 0; a < trs && allZero; a++) {
      for (let b = 0; b < chans && allZero; b++) {
        const t = axis === 'channel' ? a : o;
        const c = axis === 'channel' ? o : b;
        for (let f = 0; f < grid.frames; f++) {
          if (valueAt(input.data, grid.at(t, c, f)) !== 0) {
            allZero = false;
            break;
          }
        }
      }
    }
    if (allZero) zero.push(o);
  }
  return zero;
}

function listIndices(indices: number[]): string {
  return indices.length <= 8 ? indices.join(', ') : `${indices.slice(0, 8).join(', ')}, ... (${indices.length} in all)`;
}

function checkInput(input: FeatureArray): void {
  if (typeof input !== 'object' || input === null) throw typeError('features must be a file path or { data, shape, kind? }');
  const { data, shape } = input;
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw typeError('features.shape must be an array of non-negative integers');
  }
  if (!ArrayBuffer.isView(data) && !Array.isArray(data)) throw typeError('features.data must be a typed array or number[]');
  const size = shape.reduce((a, b) => a * b, 1);
  if ((data as ArrayLike<number>).length !== size) {
    throw rangeError(`features.data has ${(data as ArrayLike<number>).length} values but shape (${shape.join(', ')}) holds ${size}`);
  }
  if (input.kind !== undefined && !['codes', 'embeddings', 'latents', 'mel'].includes(input.kind)) {
    throw rangeError(`features.kind must be 'codes', 'embeddings', 'latents' or 'mel', got '${String(input.kind)}'`);
  }
}

/** A feature file's raw array, plus what `readFeatures` says about it (kind, TR, codebooks) when it accepts it. */
interface FileForInspection {
  input: FeatureArray;
  warnings: string[];
  tr?: number;
  nQ?: number;
  hrf?: HrfOption;
}

/** Reads a feature file for inspection: the raw array plus its kind. */
async function readForInspection(file: string): Promise<FileForInspection> {
  if (typeof file !== 'string' || file === '') throw typeError('features file must be a non-empty path');
  if (!fs.existsSync(file)) throw Object.assign(new Error(`features file '${file}' does not exist`), { code: 'ENOENT' });
  const { data, dtype, shape } = await readNpy(file);
  const integer = isIntegerData(data, dtype);
  try {
    // Loaded lazily: the feature-file module pulls in the whole feature pipeline.
    const { readFeatures } = await import('../fmri/features-file');
    const read = await readFeatures(file);
    return { input: { data, dtype, shape, kind: read.kind }, warnings: [], tr: read.tr, nQ: read.nQ, hrf: read.hrf };
  } catch (err) {
    // Integer arrays are codes whatever is wrong with them (the checks below say what); a float array
    // readFeatures refuses is of unknown kind, and its reason is worth showing.
    const why = `not a feature file readFeatures accepts: ${err instanceof Error ? err.message : String(err)}`;
    return { input: { data, dtype, shape, kind: integer ? 'codes' : undefined }, warnings: integer ? [] : [why] };
  }
}

/**
 * How many TRs at the start of features convolved with `hrf` are zero whatever the input: the causal
 * convolution makes TR k from kernel[0..k], and nilearn's kernels are 0 at lag 0 and below 1e-5 at lag 1 (TRs up
 * to 3 s). Codes are rounded, so TR k is 0 while 1023 * sum |kernel[0..k]| < 0.5; float features only where
 * the kernel is exactly 0.
 */
function hrfZeroTrs(hrf: HrfModel, tr: number, kind: FeatureKind | 'unknown'): number {
  let kernel: Float64Array;
  try {
    kernel = hrfKernel(hrf, tr);
  } catch {
    return 0; // a TR too long for a 32 s kernel: the pipeline could not have used this HRF
  }
  let bound = 0;
  let n = 0;
  for (const w of kernel) {
    bound += Math.abs(w);
    if (kind === 'codes' ? bound * (CODEBOOK_SIZE - 1) < 0.5 : bound === 0) n++;
    else break;
  }
  return n;
}

/**
 * Inspects a feature file (`.npy` written by `extract` or `encode`) or an in-memory array.
 *
 * @throws Error when the file is missing or not a `.npy`; TypeError/RangeError for malformed arrays
 */
export async function inspectFeatures(features: string | FeatureArray, options: InspectOptions = {}): Promise<FeatureInspection> {
  const fromFile = typeof features === 'string' ? await readForInspection(features) : undefined;
  const tr = options.tr ?? fromFile?.tr ?? 1.5;
  if (!(typeof tr === 'number' && Number.isFinite(tr) && tr > 0)) throw rangeError(`tr must be a number of seconds > 0, got ${String(tr)}`);
  if (options.hrf !== undefined && options.hrf !== 'none' && !HRF_MODELS.includes(options.hrf)) {
    throw rangeError(`hrf must be 'none', 'glover' or 'spm', got '${String(options.hrf)}'`);
  }
  const input = fromFile ? fromFile.input : features as FeatureArray;
  checkInput(input);
  const warnings = fromFile ? [...fromFile.warnings] : [];
  let hrf: HrfOption = options.hrf ?? fromFile?.hrf ?? 'none';
  if (hrf !== 'none' && !HRF_MODELS.includes(hrf)) {
    warnings.push(`the .csv beside the file names an unknown hrf '${String(hrf)}' (expected none, glover or spm)`);
    hrf = 'none';
  }
  const integer = isIntegerData(input.data, input.dtype);
  const kind: FeatureKind | 'unknown' = input.kind ?? (integer ? 'codes' : 'unknown');
  const grid = gridOf(input.shape, kind, tr, fromFile?.nQ);
  const n = (input.data as ArrayLike<number>).length;

  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sumSq = 0;
  let finite = 0;
  let outOfRange = 0;
  for (let i = 0; i < n; i++) {
    const v = valueAt(input.data, i);
    if (!Number.isFinite(v)) continue;
    finite++;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    sumSq += v * v;
    if (kind === 'codes' && !(Number.isInteger(v) && v >= 0 && v < CODEBOOK_SIZE)) outOfRange++;
  }
  const mean = finite ? sum / finite : NaN;
  const std = finite ? Math.sqrt(Math.max(0, sumSq / finite - mean * mean)) : NaN;
  const hasGrid = grid.channels > 0 && (grid.trs > 0 || grid.layout === 'clip');
  const codebooks = kind === 'codes' && hasGrid ? codebookStats(input, grid) : undefined;
  const zeroChannels = hasGrid ? zeroSlices(input, grid, 'channel') : [];
  const zeroTrs = hasGrid ? zeroSlices(input, grid, 'tr') : [];
  const channelWord = kind === 'codes' ? 'codebook' : 'channel';
  const notes: string[] = [];
  // Leading zero TRs the HRF makes are expected; only the others are suspicious.
  const expectedZero = hrf !== 'none' && grid.layout !== 'clip' ? hrfZeroTrs(hrf, tr, kind) : 0;
  const hrfZero = zeroTrs.filter((t) => t < expectedZero);
  const unexplainedZero = zeroTrs.filter((t) => t >= expectedZero);
  if (hrfZero.length > 0) {
    notes.push(
      `${hrfZero.length} of ${grid.trs} TRs are all zero (TR ${listIndices(hrfZero)}), as expected: the features were ` +
        `convolved with the causal ${hrf} HRF, which is 0 at lag 0 and nearly 0 at lag 1, so their first TRs carry no response yet`,
    );
  }

  if (n === 0) warnings.push('the array is empty (no TRs): the input was shorter than one TR, or --max-trs was 0');
  if (n - finite > 0) warnings.push(`${n - finite} values are NaN or infinite`);
  if (kind === 'codes' && !integer) warnings.push(`codes should have an integer dtype, got ${dtypeName(input)}`);
  if (kind === 'codes' && outOfRange > 0) {
    warnings.push(`${outOfRange} values are outside the code range 0..${CODEBOOK_SIZE - 1} (min ${min}, max ${max}): not EnCodec codes, or corrupted`);
  }
  if (kind === 'codes' && finite > 1 && min === max && !(min === 0 && unexplainedZero.length === 0)) {
    warnings.push(`all codes equal ${min}: silent input, or a broken encoder`);
  } else if (kind !== 'codes' && finite > 1 && min === max) {
    warnings.push(`all values equal ${min}`);
  }
  if (zeroChannels.length > 0 && zeroChannels.length < grid.channels) {
    warnings.push(
      `${zeroChannels.length} of ${grid.channels} ${channelWord}s are all zero (${channelWord} ${listIndices(zeroChannels)}): ` +
        `a table sized for more ${channelWord}s than were filled?`,
    );
  }
  if (unexplainedZero.length > 0 && zeroTrs.length < grid.trs) {
    warnings.push(`${unexplainedZero.length} of ${grid.trs} TRs are all zero (TR ${listIndices(unexplainedZero)}): rows never filled?`);
  }
  if (kind === 'codes' && grid.layout === 'other') {
    warnings.push(`shape (${input.shape.join(', ')}) is none of the code layouts (n_trs, n_q, frames), (n_trs, n_q * frames), (n_q, n_frames)`);
  }
  if (kind === 'codes' && hasGrid && grid.layout !== 'other' && !BANDWIDTHS.map(codebooksForBandwidth).includes(grid.channels)) {
    warnings.push(`${grid.channels} codebooks is no EnCodec bandwidth (2, 4, 8, 16 or 32 codebooks)`);
  }

  const trs = grid.layout === 'other' && input.shape.length !== 2 ? null : grid.trs;
  const report: FeatureInspection = {
    ...(typeof features === 'string' ? { file: features } : {}),
    kind,
    dtype: dtypeName(input),
    shape: [...input.shape],
    layout: grid.layout,
    tr,
    trCount: trs,
    durationSeconds: trs === null ? null : trs * tr,
    channels: hasGrid ? grid.channels : null,
    frames: hasGrid ? grid.frames : null,
    min: finite ? min : NaN,
    max: finite ? max : NaN,
    mean,
    std,
    nonFinite: n - finite,
    ...(codebooks ? { codebooks } : {}),
    zeroChannels,
    zeroTrs,
    hrf,
    notes,
    warnings,
  };
  debug('inspect', () => `${report.file ?? 'array'}: ${report.kind} (${report.shape.join(' x ')}, ${report.layout}), ${warnings.length} warning(s)`);
  return report;
}

function fmt(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(digits)));
}

/** A human-readable summary of an inspection, one fact per line. */
export function formatInspection(r: FeatureInspection): string {
  const lines: string[] = [];
  if (r.file) lines.push(`file:      ${r.file}`);
  lines.push(`kind:      ${r.kind}`);
  lines.push(`shape:     (${r.shape.join(', ')})  [${r.layout === 'tr' ? 'n_trs, ' + (r.kind === 'codes' ? 'n_q' : 'channels') + ', frames' : r.layout === 'flat' ? 'n_trs, n_q * frames' : r.layout === 'clip' ? 'n_q, n_frames' : 'unrecognised layout'}]`);
  lines.push(`dtype:     ${r.dtype}`);
  if (r.trCount !== null) lines.push(`TRs:       ${r.trCount} x ${r.tr} s = ${fmt(r.durationSeconds ?? 0)} s`);
  if (r.channels !== null) lines.push(`${r.kind === 'codes' ? 'codebooks' : 'channels'}: ${' '.repeat(r.kind === 'codes' ? 1 : 2)}${r.channels}, ${r.frames} frames${r.layout === 'clip' ? '' : ' per TR'}`);
  lines.push(`values:    min ${fmt(r.min)}, max ${fmt(r.max)}, mean ${fmt(r.mean)}, std ${fmt(r.std)}${r.nonFinite ? `, ${r.nonFinite} non-finite` : ''}`);
  if (r.codebooks) {
    lines.push('codebook  distinct  entropy(bits)  min   max   most common');
    for (const c of r.codebooks) {
      lines.push(
        `${String(c.codebook).padStart(8)}  ${String(c.distinct).padStart(8)}  ${c.entropyBits.toFixed(2).padStart(13)}  ` +
          `${String(c.min).padStart(4)}  ${String(c.max).padStart(4)}  ${c.mostCommon.code} (${(c.mostCommon.fraction * 100).toFixed(1)}%)`,
      );
    }
  }
  for (const n of r.notes) lines.push(`note:      ${n}`);
  for (const w of r.warnings) lines.push(`warning:   ${w}`);
  if (r.warnings.length === 0) lines.push('warnings:  none');
  return `${lines.join('\n')}\n`;
}

/** Codes per histogram bin of the per-codebook histograms (1024 codes -> 64 bins). */
const CODES_PER_BIN = 16;

/**
 * A Vega-Lite figure of a feature array: for codes, a code histogram per codebook (bins of 16 codes) above a
 * TR x codebook heat map of the code usage entropy within each TR; for float features, a value histogram
 * above a TR x channel heat map of the mean over each TR's frames.
 */
export function inspectionSpec(input: FeatureArray, options: InspectOptions & { title?: string; nQ?: number } = {}): VegaLiteSpec {
  checkInput(input);
  const tr = options.tr ?? 1.5;
  const integer = isIntegerData(input.data, input.dtype);
  const kind: FeatureKind | 'unknown' = input.kind ?? (integer ? 'codes' : 'unknown');
  const grid = gridOf(input.shape, kind, tr, options.nQ);
  if (grid.channels === 0 || (grid.trs === 0 && grid.layout !== 'clip')) {
    throw rangeError(`cannot plot features of shape (${input.shape.join(', ')}): no TRs or channels`);
  }
  const trs = grid.layout === 'clip' ? Math.max(1, grid.trs) : grid.trs;
  const perTr = grid.layout === 'clip' ? Math.max(1, Math.min(grid.frames, framesPerTr(tr))) : grid.frames;
  const cell = (t: number, c: number, f: number): number =>
    grid.layout === 'clip' ? valueAt(input.data, c * grid.frames + Math.min(grid.frames - 1, t * perTr + f)) : valueAt(input.data, grid.at(t, c, f));

  const map = new Float32Array(grid.channels * trs);
  let histogram: object;
  if (kind === 'codes') {
    const bins = CODEBOOK_SIZE / CODES_PER_BIN;
    const rows: { codebook: number; code: number; frames: number }[] = [];
    const counts = new Uint32Array(CODEBOOK_SIZE);
    for (let c = 0; c < grid.channels; c++) {
      const binCounts = new Uint32Array(bins);
      for (let t = 0; t < trs; t++) {
        counts.fill(0);
        for (let f = 0; f < perTr; f++) {
          const v = cell(t, c, f);
          if (Number.isInteger(v) && v >= 0 && v < CODEBOOK_SIZE) {
            counts[v]++;
            binCounts[Math.floor(v / CODES_PER_BIN)]++;
          }
        }
        const inRange = counts.reduce((a, b) => a + b, 0);
        map[c * trs + t] = inRange ? entropyBits(counts, inRange) : NaN;
      }
      binCounts.forEach((count, b) => rows.push({ codebook: c, code: b * CODES_PER_BIN, frames: count }));
    }
    const height = Math.max(14, Math.min(48, Math.floor(420 / grid.channels)));
    histogram = {
      title: { text: `code histogram per codebook (bins of ${CODES_PER_BIN} codes)`, anchor: 'start', fontSize: 13 },
      data: { values: rows },
      transform: [{ calculate: `datum.code + ${CODES_PER_BIN}`, as: 'codeEnd' }],
      facet: { row: { field: 'codebook', type: 'ordinal', header: { labelAngle: 0, labelAlign: 'left', title: 'codebook' } } },
      spacing: 2,
      spec: {
        width: 800,
        height,
        mark: { type: 'rect', color: '#4c78a8' },
        encoding: {
          x: { field: 'code', type: 'quantitative', scale: { domain: [0, CODEBOOK_SIZE], nice: false }, title: 'code' },
          x2: { field: 'codeEnd' },
          y: { field: 'frames', type: 'quantitative', title: null, axis: { tickCount: 2, labelExpr: COMPACT_LABEL } },
          y2: { datum: 0 },
        },
      },
      resolve: { scale: { y: 'independent' } },
    };
  } else {
    const finite: number[] = [];
    for (let t = 0; t < trs; t++) {
      for (let c = 0; c < grid.channels; c++) {
        let s = 0;
        for (let f = 0; f < perTr; f++) s += cell(t, c, f);
        map[c * trs + t] = s / perTr;
      }
    }
    const n = (input.data as ArrayLike<number>).length;
    const step = Math.max(1, Math.floor(n / 200_000)); // a bounded sample keeps the histogram fast
    for (let i = 0; i < n; i += step) {
      const v = valueAt(input.data, i);
      if (Number.isFinite(v)) finite.push(v);
    }
    histogram = {
      title: { text: `value histogram${step > 1 ? ` (every ${ordinal(step)} value)` : ''}`, anchor: 'start', fontSize: 13 },
      width: 800,
      height: 160,
      data: { values: finite.map((v) => ({ v })) },
      mark: { type: 'bar', color: '#4c78a8' },
      encoding: {
        x: { field: 'v', type: 'quantitative', bin: { maxbins: 60 }, title: kind === 'mel' ? 'dB' : 'value' },
        y: { aggregate: 'count', type: 'quantitative', title: 'values', axis: { labelExpr: COMPACT_LABEL } },
      },
    };
  }
  const channelWord = kind === 'codes' ? 'codebook' : kind === 'mel' ? 'mel band' : 'channel';
  const heatmap = heatmapPanelSpecs(
    [{ title: kind === 'codes' ? 'code usage entropy within each TR (bits)' : `mean over each TR's frames`, matrix: { data: map, rows: grid.channels, cols: trs } }],
    {
      xDomain: [0, trs],
      xTitle: 'TR',
      yDomain: [0, grid.channels],
      yTitle: channelWord,
      colorTitle: kind === 'codes' ? 'bits' : kind === 'mel' ? 'dB' : 'value',
      rowLabels: kind === 'codes',
      smooth: false,
      xIntegers: true,
      // Entropy from 0 to its maximum for a TR (all frames distinct), so colours compare across files.
      ...(kind === 'codes' ? { colorDomain: [0, Math.log2(Math.min(CODEBOOK_SIZE, perTr))] as [number, number] } : {}),
      height: Math.max(120, Math.min(300, grid.channels * 8)),
    },
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    ...(options.title ? { title: { text: options.title, fontSize: 15, anchor: 'start' } } : {}),
    config: FIGURE_CONFIG,
    spacing: 24,
    vconcat: [histogram, ...heatmap],
    resolve: { scale: { color: 'independent' } },
  } as VegaLiteSpec;
}

/** Draws {@link inspectionSpec} of a feature file or array to a PNG file (written atomically). */
export async function plotFeatures(features: string | FeatureArray, pngFile: string, options: InspectOptions = {}): Promise<void> {
  const file = typeof features === 'string' ? await readForInspection(features) : undefined;
  const input = file ? file.input : (features as FeatureArray);
  const title = typeof features === 'string' ? `${path.basename(features)}: (${input.shape.join(', ')}) ${input.kind ?? ''}` : undefined;
  await writePng(pngFile, inspectionSpec(input, { tr: options.tr ?? file?.tr, title, nQ: file?.nQ }));
}
