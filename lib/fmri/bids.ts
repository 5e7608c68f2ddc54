/**
 * BIDS inputs of a run: the `_events.tsv` that places stimulus files on the run's clock, and the `_bold.nii[.gz]`
 * (+ its `_bold.json` sidecar) that gives the run's volume count, TR and slice-time reference.
 *
 * Events: columns `onset`, `duration` and `stim_file` (others are ignored); every row with a stim_file (not empty
 * or `n/a`) is a stimulus at its onset, cut to its duration when that is shorter than the file (`n/a`: the whole
 * file). stim_file paths resolve against the stimuli directory (BIDS `stimuli/`), else the events file's directory.
 *
 * BOLD: volumes = dim[4], TR = pixdim[4] (in the header's time unit); the sidecar's `RepetitionTime` wins over the
 * header, and its `StartTime` (fMRIPrep after slice-timing correction: the time the volume now represents) or else
 * the median of `SliceTiming` gives sliceTimeRef = that time / TR.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { parse } from 'csv-parse/sync';

import { StimulusPlacement } from './run-timeline';
import { readNiftiTiming } from './nifti';
import { rangeError } from '../common/errors';

/** Reads the stimuli of a BIDS events file (see the module notes). Throws a RangeError naming the file and row. */
export function readEvents(eventsFile: string, stimuliDir?: string): StimulusPlacement[] {
  let text: string;
  try {
    text = fs.readFileSync(eventsFile, 'utf8');
  } catch (err) {
    throw rangeError(`cannot read events file '${eventsFile}' (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let rows: Record<string, string>[];
  try {
    rows = parse(text, { delimiter: '\t', columns: true, skip_empty_lines: true, relax_column_count: true, trim: true }) as Record<string, string>[];
  } catch (err) {
    throw rangeError(`'${eventsFile}' is not a tab-separated events file: ${(err as Error).message}`);
  }
  const header = rows.length ? Object.keys(rows[0]) : [];
  for (const column of ['onset', 'duration', 'stim_file']) {
    if (rows.length && !header.includes(column)) {
      throw rangeError(`'${eventsFile}' has no '${column}' column (BIDS events need onset, duration and stim_file to place stimuli); it has: ${header.join(', ')}`);
    }
  }
  const base = stimuliDir ?? path.dirname(eventsFile);
  const stimuli: StimulusPlacement[] = [];
  rows.forEach((row, i) => {
    const file = row.stim_file;
    if (!file || file === 'n/a') return;
    const label = `${path.basename(eventsFile)} row ${i + 1} (${file})`;
    const onset = Number(row.onset);
    if (row.onset === '' || !Number.isFinite(onset)) throw rangeError(`${label}: onset '${row.onset}' is not a number of seconds`);
    let duration: number | undefined;
    if (row.duration !== undefined && row.duration !== '' && row.duration !== 'n/a') {
      duration = Number(row.duration);
      if (!(duration > 0) || !Number.isFinite(duration)) throw rangeError(`${label}: duration '${row.duration}' is not a positive number of seconds (or n/a)`);
    }
    const resolved = path.resolve(base, file);
    if (!fs.existsSync(resolved)) {
      const where = stimuliDir === undefined
        ? "beside the events file; BIDS keeps stimuli in the dataset's stimuli/ folder: pass it with --stimuli DIR (stimuliDir)"
        : `in the stimuli folder '${stimuliDir}'`;
      throw Object.assign(new Error(`${label}: '${resolved}' does not exist ${where}`), { code: 'ENOENT' });
    }
    stimuli.push({ file: resolved, onset, duration, label });
  });
  if (stimuli.length === 0) throw rangeError(`'${eventsFile}' has no row with a stim_file: nothing to place on the run`);
  return stimuli;
}

/** The output base name for an events file: `sub-01_task-movie_run-1_events.tsv` -> `sub-01_task-movie_run-1_desc-encodec_features`. */
export function featuresNameForEvents(eventsFile: string): string {
  const name = path.basename(eventsFile).replace(/\.tsv$/i, '');
  return `${name.replace(/_events$/i, '')}_desc-encodec_features`;
}

/** Whether a path names a BIDS events file. */
export function isEventsFile(file: string): boolean {
  return /_events\.tsv$/i.test(file);
}

/** A run's timing from its BOLD image and sidecar. */
export interface BoldTiming {
  /** Volumes (dim[4]). */
  runTrs: number;
  /** Seconds: the sidecar's RepetitionTime, else the header's pixdim[4]. */
  tr: number;
  /** From the sidecar's StartTime or SliceTiming (fraction of the TR), when it has one. */
  sliceTimeRef?: number;
  /** Where each value came from, for messages. */
  sources: { tr: string; runTrs: string; sliceTimeRef?: string };
}

/** The sidecar beside a BOLD image: `..._bold.nii.gz` -> `..._bold.json`. */
export function sidecarFor(boldFile: string): string {
  return boldFile.replace(/\.nii(\.gz)?$/i, '.json');
}

/** Reads a run's timing from its BOLD NIfTI header and the `_bold.json` sidecar beside it (see the module notes). */
export async function readBoldTiming(boldFile: string): Promise<BoldTiming> {
  const header = await readNiftiTiming(boldFile);
  const name = path.basename(boldFile);
  let tr = header.tr;
  const sources: BoldTiming['sources'] = { tr: `${name} pixdim[4]`, runTrs: `${name} dim[4]` };
  let sliceTimeRef: number | undefined;
  const sidecar = sidecarFor(boldFile);
  if (sidecar !== boldFile && fs.existsSync(sidecar)) {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(fs.readFileSync(sidecar, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw rangeError(`cannot read the sidecar '${sidecar}': ${(err as Error).message}`);
    }
    if (json.RepetitionTime !== undefined) {
      if (typeof json.RepetitionTime !== 'number' || !(json.RepetitionTime > 0)) {
        throw rangeError(`${sidecar}: RepetitionTime must be a positive number of seconds, got ${JSON.stringify(json.RepetitionTime)}`);
      }
      tr = json.RepetitionTime;
      sources.tr = `${path.basename(sidecar)} RepetitionTime`;
    }
    let reference: number | undefined;
    if (typeof json.StartTime === 'number') {
      reference = json.StartTime;
      sources.sliceTimeRef = `${path.basename(sidecar)} StartTime`;
    } else if (Array.isArray(json.SliceTiming) && json.SliceTiming.length && json.SliceTiming.every((t) => typeof t === 'number')) {
      const sorted = [...(json.SliceTiming as number[])].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      reference = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
      sources.sliceTimeRef = `median of ${path.basename(sidecar)} SliceTiming`;
    }
    if (reference !== undefined && Number.isFinite(tr)) {
      sliceTimeRef = reference / tr;
      if (!(sliceTimeRef >= 0 && sliceTimeRef <= 1)) {
        throw rangeError(`${sources.sliceTimeRef} ${reference} s is outside the TR of ${tr} s; fix the sidecar or pass --slice-time-ref`);
      }
    }
  }
  if (!Number.isFinite(tr)) throw rangeError(`${name} has no repetition time (pixdim[4] is not positive) and no sidecar RepetitionTime; pass --tr`);
  if (header.volumes < 1) throw rangeError(`${name} has dim[4] = ${header.volumes}: no volumes`);
  return { runTrs: header.volumes, tr, sliceTimeRef, sources };
}
