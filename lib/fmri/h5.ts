/**
 * Feature sets as HDF5 files (h5wasm, the HDF5 C library compiled to WebAssembly; its Node build reads and writes
 * host paths directly). h5py reads them as they are.
 *
 * One run: dataset `features` (float32, or int16 for codes, the FeatureSet's shape), `frame_times` (t_k, float64),
 * `run_time_start`, and one dataset per metadata column (float64 for numbers, strings otherwise); the settings
 * (kind, tr, hrf, layout, resample, delays, zscore, onset, run_trs, slice_time_ref, bandwidth / n_codebooks or the mel
 * settings, source; and for a model other than encodec_24khz its name `model` and `frame_rate`, 150 for encodec_48khz)
 * are attributes of the file's root.
 *
 * Several runs concatenated (`writeConcatH5`): `X` (the rows of all runs in order, float32: every run must have
 * the same columns), `run_onsets` (int64: the first row of each run), `frame_times` and `run_time_start` of all rows,
 * `run_sources` (one string per run), `run_trs`, `run_onset` and `run_slice_time_ref` (one value per run) and the
 * settings all runs share as root attributes; a setting whose value differs between runs is a dataset `run_<name>`
 * instead, never a root attribute: the layout the voxelwise tutorials and himalaya read.
 *
 * Files are written to a temporary name and renamed into place (no partial output), with HDF5's object times at
 * the Unix epoch, so the same data always gives the same bytes.
 */
import * as fs from 'node:fs';

import { tempPathFor } from '../common/atomic';
import type { FeatureSet } from './feature-set';
import { rangeError } from '../common/errors';
import { H5File, H5Group, h5wasm } from '../io/h5wasm';

/** The settings of a feature set, as root attributes (numbers and strings only; absent values left out). */
function settings(result: FeatureSet): Record<string, number | string> {
  const attrs: Record<string, number | string | undefined> = {
    feature_kind: result.kind,
    tr: result.tr,
    hrf: result.hrf,
    layout: result.layout,
    resample: result.resample ?? 'window',
    delays: result.delays?.join(' ') ?? '',
    zscore: result.zscore ? 'true' : 'false',
    onset: result.onset ?? 0,
    run_trs: result.runTrs,
    slice_time_ref: result.sliceTimeRef ?? 0,
    frames_per_tr: result.framesPerTr,
    bandwidth: result.bandwidth,
    n_codebooks: result.nQ,
    source: result.source,
    sample_rate: result.mel?.sampleRate,
    n_fft: result.mel?.nFft,
    hop_length: result.mel?.hopLength,
    n_mels: result.mel?.nMels,
    top_db: result.mel?.topDb,
    // models other than encodec_24khz only (24 kHz files stay as they were): the model and its code frames per second
    model: result.model,
    frame_rate: result.frameRate,
  };
  return Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined)) as Record<string, number | string>;
}

function writeAttributes(file: H5Group, attrs: Record<string, number | string>): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (typeof value === 'number') file.create_attribute(name, value, null, Number.isInteger(value) ? '<q' : '<d');
    else file.create_attribute(name, value);
  }
}

const INTEGER_COLUMNS = new Set(['tr_index', 'n_frames', 'n_codebooks']);

/** Writes the metadata columns of a run (or of several runs' rows) as datasets. */
function writeColumns(file: H5Group, rows: FeatureSet['metadata']): void {
  if (rows.length === 0) return;
  for (const key of Object.keys(rows[0]) as (keyof FeatureSet['metadata'][number])[]) {
    if (key === 'frame_time') continue; // written as frame_times
    const values = rows.map((r) => r[key]);
    if (INTEGER_COLUMNS.has(key)) {
      file.create_dataset({ name: key, data: BigInt64Array.from(values.map((v) => BigInt(v as number))) });
    } else if (values.every((v) => typeof v === 'number' || v === null)) {
      file.create_dataset({ name: key, data: Float64Array.from(values.map((v) => (v === null ? NaN : (v as number)))) });
    } else {
      file.create_dataset({ name: key, data: values.map((v) => (v === null || v === undefined ? '' : String(v))) });
    }
  }
}

/**
 * Runs `work` (synchronous) with the wall clock stopped at the Unix epoch. HDF5 stamps every object with the time
 * it was written (h5wasm offers no way to turn that off, and its clock is Date.now); with a fixed clock the same
 * data always gives the same bytes, so a `--concat` file merged from a job array's tasks equals, byte for byte,
 * the one a single process writes.
 */
function withFixedClock(work: () => void): void {
  const now = Date.now;
  Date.now = () => 0;
  try {
    work();
  } finally {
    Date.now = now;
  }
}

/** Runs `write` on a new HDF5 file at a temporary path, then renames it to `target`. */
async function writeAtomically(target: string, write: (file: H5File) => void): Promise<void> {
  const lib = await h5wasm();
  const temp = tempPathFor(target);
  try {
    withFixedClock(() => {
      const file = new lib.File(temp, 'w');
      try {
        write(file);
      } finally {
        file.close();
      }
    });
    await fs.promises.rename(temp, target);
  } catch (err) {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}

function frameTimes(result: FeatureSet): Float64Array {
  return Float64Array.from(result.metadata.map((m) => m.frame_time));
}

/** Writes one run's features as an HDF5 file at `target` (see the module notes). */
export async function writeFeaturesH5(target: string, result: FeatureSet): Promise<void> {
  await writeAtomically(target, (file) => {
    const dtype = result.features instanceof Int16Array ? '<h' : '<f';
    file.create_dataset({ name: 'features', data: result.features, shape: result.shape, dtype });
    file.create_dataset({ name: 'frame_times', data: frameTimes(result) });
    writeColumns(file, result.metadata);
    writeAttributes(file, settings(result));
  });
}

/** Settings every run has by definition of its own (stored per run, always). */
const PER_RUN_SETTINGS = new Set(['run_trs', 'onset', 'slice_time_ref']);

/**
 * The runs' settings split in two: those all runs share (root attributes) and, one value per run, those that
 * differ or are the run's own (`run_trs`, `onset`, `slice_time_ref`: datasets `run_<name>`), so no root attribute
 * claims a value for a run whose rows used another. `source` is written as `run_sources`.
 */
function splitSettings(results: FeatureSet[]): { shared: Record<string, number | string>; perRun: Record<string, (number | string | undefined)[]> } {
  const all = results.map(settings);
  const names = new Set(all.flatMap((s) => Object.keys(s)));
  names.delete('source');
  const shared: Record<string, number | string> = {};
  const perRun: Record<string, (number | string | undefined)[]> = {};
  for (const name of names) {
    const values = all.map((s) => s[name]);
    const same = values.every((v) => v === values[0]);
    if (PER_RUN_SETTINGS.has(name) || !same) perRun[name] = values;
    // a setting all runs share stays a root attribute (slice_time_ref too, as files before it had)
    if (same && values[0] !== undefined && name !== 'run_trs' && name !== 'onset') shared[name] = values[0];
  }
  return { shared, perRun };
}

/**
 * Writes several runs as one HDF5 file with `X` and `run_onsets` (see the module notes). Every run must have the
 * same number of columns; 3-D features are flattened per row.
 */
export async function writeConcatH5(target: string, results: FeatureSet[]): Promise<void> {
  if (results.length === 0) throw rangeError('no runs to concatenate');
  const width = (r: FeatureSet): number => r.shape.slice(1).reduce((a, b) => a * b, 1);
  const columns = width(results[0]);
  for (const r of results) {
    if (width(r) !== columns) {
      throw rangeError(`runs have different numbers of features per volume (${results[0].source}: ${columns}, ${r.source}: ${width(r)}); concatenate runs extracted with the same settings`);
    }
  }
  const rows = results.reduce((n, r) => n + r.shape[0], 0);
  const X = new Float32Array(rows * columns);
  const onsets: number[] = [];
  let at = 0;
  for (const r of results) {
    onsets.push(at / columns);
    X.set(r.features, at);
    at += r.features.length;
  }
  await writeAtomically(target, (file) => {
    file.create_dataset({ name: 'X', data: X, shape: [rows, columns], dtype: '<f' });
    file.create_dataset({ name: 'run_onsets', data: BigInt64Array.from(onsets.map(BigInt)) });
    file.create_dataset({ name: 'frame_times', data: Float64Array.from(results.flatMap((r) => Array.from(frameTimes(r)))) });
    writeColumns(file, results.flatMap((r) => r.metadata));
    file.create_dataset({ name: 'run_sources', data: results.map((r) => r.source) });
    const { shared, perRun } = splitSettings(results);
    for (const [name, values] of Object.entries(perRun)) {
      if (values.every((v) => v === undefined)) continue; // no run has it (run_trs of runs without --run-trs)
      const numeric = values.every((v) => typeof v === 'number' || v === undefined);
      const data = numeric
        ? values.every((v) => Number.isInteger(v))
          ? BigInt64Array.from(values.map((v) => BigInt(v as number)))
          : Float64Array.from(values.map((v) => (v === undefined ? NaN : (v as number)))) // NaN: the run has none
        : values.map((v) => (v === undefined ? '' : String(v)));
      file.create_dataset({ name: name.startsWith('run_') ? name : `run_${name}`, data }); // run_trs stays run_trs
    }
    writeAttributes(file, shared);
  });
}
