/**
 * BIDS derivative outputs: names parsed from and built for BIDS files, the derivative dataset's
 * `dataset_description.json`, `.bidsignore` and JSON sidecars.
 *
 * A derivative output mirrors its source run: `OUT/sub-<label>/[ses-<label>/]func/` and the run's entities in the
 * order the BIDS specification lists them (sub, ses, sample, task, tracksys, acq, nuc, voi, ce, trc, stain, rec, dir,
 * run, mod, echo, flip, inv, mt, part, proc, hemi, space, split, recording, chunk, seg, res, den, label, desc),
 * with `desc-<label>` set and the suffix replaced (`_features` by default).
 *
 * `_features` is not a BIDS suffix, so {@link writeBidsIgnore} lists `*_features.*` in the dataset's `.bidsignore`
 * (the validator then skips those files instead of reporting NOT_INCLUDED). Model-rate frames written as BIDS
 * continuous recordings (`_stim.tsv.gz` + `_stim.json`) validate without it when named with `recording-<label>`:
 * the BIDS schema's rule for `_stim` in `func/` allows sub, ses, task, acq, ce, rec, dir, run and recording, not desc.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { tempPathFor, writeFileAtomic } from '../common/atomic';
import { codedError, rangeError } from '../common/errors';

/** The BIDS version the derivative datasets follow (the newest release the bundled validator's schema knows). */
export const BIDS_VERSION = '1.9.0';

/** The pipeline name written in `GeneratedBy`. */
export const GENERATED_BY_NAME = 'encodec-native';

/** Entity keys in the order the BIDS specification puts them in a file name. */
export const ENTITY_ORDER = [
  'sub', 'ses', 'sample', 'task', 'tracksys', 'acq', 'nuc', 'voi', 'ce', 'trc', 'stain', 'rec', 'dir', 'run', 'mod',
  'echo', 'flip', 'inv', 'mt', 'part', 'proc', 'hemi', 'space', 'split', 'recording', 'chunk', 'seg', 'res', 'den',
  'label', 'desc',
] as const;

/** A BIDS file name taken apart. */
export interface BidsEntities {
  sub: string;
  ses?: string;
  task?: string;
  acq?: string;
  run?: string;
  /** Every entity of the name, key -> label, in the name's order (sub, ses, task, acq and run included). */
  entities: Record<string, string>;
  /** `events`, `bold`, `stim`, ... */
  suffix: string;
  /** From the first dot of the name: `.tsv`, `.nii.gz`, `.tsv.gz`, ... ('' when none). */
  extension: string;
}

const LABEL = /^[a-zA-Z0-9]+$/;

/**
 * Parses a BIDS file name (`sub-01_ses-02_task-movie_run-1_events.tsv`; a path is reduced to its base name): the
 * name must start with `sub-`, each entity must be `key-label` with an alphanumeric label, no key may repeat, and a
 * suffix must follow the entities.
 *
 * @returns the entities, suffix and extension, or null when the name is not BIDS-shaped
 */
export function bidsEntities(file: string): BidsEntities | null {
  const name = path.basename(file);
  const dot = name.indexOf('.');
  const stem = dot < 0 ? name : name.slice(0, dot);
  const extension = dot < 0 ? '' : name.slice(dot);
  if (extension !== '' && !/^(\.[a-zA-Z0-9]+)+$/.test(extension)) return null;
  const parts = stem.split('_');
  if (parts.length < 2) return null;
  const suffix = parts.pop() as string;
  if (!LABEL.test(suffix)) return null;
  const entities: Record<string, string> = {};
  for (const part of parts) {
    const m = /^([a-zA-Z]+)-([a-zA-Z0-9]+)$/.exec(part);
    if (!m || m[1] in entities) return null;
    entities[m[1]] = m[2];
  }
  if (Object.keys(entities)[0] !== 'sub') return null;
  const result: BidsEntities = { sub: entities.sub, entities, suffix, extension };
  for (const key of ['ses', 'task', 'acq', 'run'] as const) if (key in entities) result[key] = entities[key];
  return result;
}

/** A file name from entities (sorted into the specification's order; unknown keys after the known ones) and a suffix. */
export function bidsName(entities: Record<string, string>, suffix: string): string {
  const rank = (key: string): number => {
    const i = (ENTITY_ORDER as readonly string[]).indexOf(key);
    return i < 0 ? ENTITY_ORDER.length - 1 : i; // unknown keys just before desc
  };
  const keys = Object.keys(entities).sort((a, b) => rank(a) - rank(b) || (a === 'desc' ? 1 : b === 'desc' ? -1 : 0));
  for (const key of keys) {
    if (!/^[a-zA-Z]+$/.test(key) || !LABEL.test(entities[key])) {
      throw rangeError(`BIDS entity ${key}-${entities[key]} must be letters, a dash, then letters and digits only`);
    }
  }
  if (!LABEL.test(suffix)) throw rangeError(`BIDS suffix ${JSON.stringify(suffix)} must be letters and digits only`);
  return [...keys.map((k) => `${k}-${entities[k]}`), suffix].join('_');
}

/** `sub-XX/[ses-YY/]func` for entities. */
function funcDir(outDir: string, entities: Record<string, string>): string {
  return path.join(outDir, `sub-${entities.sub}`, ...(entities.ses ? [`ses-${entities.ses}`] : []), 'func');
}

/**
 * The output base (no extension) of a source run's file in a derivative dataset:
 * `OUT/sub-XX/[ses-YY/]func/sub-XX_[ses-YY_]task-T_[acq-A_][run-R_]desc-<desc>_<suffix>`. The source's entities are
 * kept (a `desc` of its own is replaced).
 *
 * @param eventsFile the run's events (or BOLD) file
 * @returns undefined when the file's name is not BIDS-shaped
 */
export function derivativeBase(outDir: string, eventsFile: string, desc = 'encodec', suffix = 'features'): string | undefined {
  const parsed = bidsEntities(eventsFile);
  if (!parsed) return undefined;
  const entities = { ...parsed.entities, desc };
  return path.join(funcDir(outDir, entities), bidsName(entities, suffix));
}

/**
 * The base for a run's model-rate frames written as a BIDS continuous recording ({@link writeFramesFile} in
 * lib/io/frames-file.ts, format tsv, appends `_stim.tsv.gz` / `_stim.json`):
 * `OUT/sub-XX/[ses-YY/]func/sub-XX_[ses-YY_]task-T_[acq-A_][run-R_]recording-<recording>`. The `_stim` rule allows
 * `recording-<label>` where derivatives otherwise use `desc-<label>` (see the module notes); a source `desc` is dropped.
 *
 * @returns undefined when the file's name is not BIDS-shaped
 */
export function derivativeFramesBase(outDir: string, eventsFile: string, recording = 'encodec'): string | undefined {
  const parsed = bidsEntities(eventsFile);
  if (!parsed) return undefined;
  const { desc: _desc, ...kept } = parsed.entities;
  const entities = { ...kept, recording };
  const name = bidsName(entities, 'stim');
  return path.join(funcDir(outDir, entities), name.slice(0, -'_stim'.length));
}

/**
 * The output base of several runs concatenated: the entities all runs share, without `run`, in the same layout as
 * {@link derivativeBase}. An entity other than sub, ses and task that differs between runs (acq, say) is left out.
 *
 * @returns undefined when a name is not BIDS-shaped, when the runs differ in sub, ses or task, or when none is given
 */
export function derivativeConcatBase(outDir: string, eventsFiles: string[], desc = 'encodec', suffix = 'features'): string | undefined {
  const parsed = eventsFiles.map((f) => bidsEntities(f));
  if (parsed.length === 0 || parsed.some((p) => p === null)) return undefined;
  const all = parsed as BidsEntities[];
  const first = all[0].entities;
  for (const key of ['sub', 'ses', 'task']) {
    if (all.some((p) => p.entities[key] !== first[key])) return undefined;
  }
  const shared: Record<string, string> = {};
  for (const [key, label] of Object.entries(first)) {
    if (key !== 'run' && all.every((p) => p.entities[key] === label)) shared[key] = label;
  }
  const entities = { ...shared, desc };
  return path.join(funcDir(outDir, entities), bidsName(entities, suffix));
}

/**
 * The root of the BIDS dataset holding `file`: the nearest directory, from the file's own upwards, with a
 * `dataset_description.json`; undefined when there is none up to the file system's root.
 */
export function findBidsRoot(file: string): string | undefined {
  let dir = path.dirname(path.resolve(file));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'dataset_description.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** What {@link writeDatasetDescription} writes. */
export interface DatasetDescriptionOptions {
  /** The dataset's `Name`. */
  name: string;
  /** encodec-native's version (`GeneratedBy[0].Version`). */
  version: string;
  /** The command line that made the outputs, recorded in `GeneratedBy[0].Description`. */
  commandLine: string;
  /** The source dataset's root (see {@link findBidsRoot}): linked as `raw` in `DatasetLinks`, `SourceDatasets` [`bids:raw:`]. */
  sourceRoot?: string;
  /** `GeneratedBy[0].CodeURL`. */
  codeUrl?: string;
}

/** The description object (see {@link writeDatasetDescription}). */
export function datasetDescription(outDir: string, options: DatasetDescriptionOptions): Record<string, unknown> {
  const generatedBy: Record<string, string> = {
    Name: GENERATED_BY_NAME,
    Version: options.version,
    Description: `Command line: ${options.commandLine}`,
  };
  if (options.codeUrl) generatedBy.CodeURL = options.codeUrl;
  const description: Record<string, unknown> = {
    Name: options.name,
    BIDSVersion: BIDS_VERSION,
    DatasetType: 'derivative',
    GeneratedBy: [generatedBy],
  };
  if (options.sourceRoot !== undefined) {
    const source: Record<string, string> = { URL: 'bids:raw:' };
    const doi = readJson(path.join(options.sourceRoot, 'dataset_description.json'))?.DatasetDOI;
    if (typeof doi === 'string' && doi !== '') source.DOI = doi;
    description.SourceDatasets = [source];
    const relative = path.relative(path.resolve(outDir), path.resolve(options.sourceRoot)).split(path.sep).join('/');
    description.DatasetLinks = { raw: relative === '' ? '.' : relative };
  }
  return description;
}

function readJson(file: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a description was made by this package (any `GeneratedBy` entry named encodec-native). */
function generatedHere(description: Record<string, unknown>): boolean {
  const by = description.GeneratedBy;
  return Array.isArray(by) && by.some((entry) => (entry as { Name?: unknown } | null)?.Name === GENERATED_BY_NAME);
}

/**
 * Writes `OUT/dataset_description.json` for a derivative dataset: `Name`, `BIDSVersion`, `DatasetType: derivative`,
 * `GeneratedBy` [{ Name: encodec-native, Version, Description: "Command line: ...", CodeURL? }] (the specification
 * has no command-line field; `Description` is GeneratedBy's free-text account of the process), and, when the source
 * root is known, `SourceDatasets` [{ URL: "bids:raw:", DOI? }] with `DatasetLinks` { raw: the source root relative
 * to OUT } (a BIDS URI resolved through DatasetLinks, as the specification describes).
 *
 * An existing description made by encodec-native (an entry of GeneratedBy named so) is kept as it is, so a user's
 * edits survive reruns. The file is created with a hard link from a complete temporary file, which fails when the
 * name exists: of several processes (cluster tasks on a shared file system) writing at once, the first one's file
 * stays and the others keep it; none sees a partial file.
 *
 * @returns 'written' or 'kept'
 * @throws ENCODEC_BAD_INPUT when OUT already holds a dataset_description.json from another pipeline or one that is
 *   not a JSON object (it is left alone: choose another output directory)
 */
export async function writeDatasetDescription(outDir: string, options: DatasetDescriptionOptions): Promise<'written' | 'kept'> {
  const target = path.join(outDir, 'dataset_description.json');
  const check = (): 'kept' => {
    const existing = readJson(target);
    if (existing && generatedHere(existing)) return 'kept';
    throw rangeError(`${target} exists and was not made by ${GENERATED_BY_NAME}${existing ? '' : ' (it is not a JSON object)'}; write the features to another --out directory`);
  };
  if (fs.existsSync(target)) return check();
  await fs.promises.mkdir(outDir, { recursive: true });
  const temp = tempPathFor(target);
  await writeFileAtomic(temp, Buffer.from(`${JSON.stringify(datasetDescription(outDir, options), null, 2)}\n`));
  try {
    await fs.promises.link(temp, target);
    return 'written';
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return check();
    // File systems without hard links: a rename, atomic but last-writer-wins (every writer's file is complete).
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
      await fs.promises.rename(temp, target);
      return 'written';
    }
    throw err;
  } finally {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
  }
}

/** The `.bidsignore` patterns for outputs whose suffix BIDS does not define. */
export const DERIVATIVE_IGNORE_PATTERNS = ['*_features.*'];

/**
 * Makes sure `OUT/.bidsignore` lists `patterns` (default {@link DERIVATIVE_IGNORE_PATTERNS}), adding the missing
 * lines after any a user wrote. `_features` files (npy / csv / h5 and their JSON sidecars) are outputs BIDS has no
 * suffix for; without the ignore rule the validator reports each of them as NOT_INCLUDED.
 */
export async function writeBidsIgnore(outDir: string, patterns: string[] = DERIVATIVE_IGNORE_PATTERNS): Promise<void> {
  const target = path.join(outDir, '.bidsignore');
  let text = '';
  try {
    text = await fs.promises.readFile(target, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const present = new Set(text.split(/\r?\n/).map((l) => l.trim()));
  const missing = patterns.filter((p) => !present.has(p));
  if (missing.length === 0) return;
  const head = text === '' ? '# Outputs of encodec-native whose suffix BIDS does not define (features per volume).\n' : text.endsWith('\n') ? text : `${text}\n`;
  await fs.promises.mkdir(outDir, { recursive: true });
  await writeFileAtomic(target, Buffer.from(`${head}${missing.join('\n')}\n`));
}

/** The JSON sidecar path of an output: its extension (from the first dot of the name) replaced by `.json`. */
export function sidecarPathFor(output: string): string {
  if (output.endsWith('.json')) return output;
  const dir = path.dirname(output);
  const name = path.basename(output);
  const dot = name.indexOf('.');
  return path.join(dir, `${dot < 0 ? name : name.slice(0, dot)}.json`);
}

/** Throws when a value would not survive JSON (NaN, infinities, functions, undefined inside arrays...). */
function checkJson(value: unknown, where: string): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw rangeError(`sidecar field ${where} is ${value}; JSON has no such number`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkJson(v, `${where}[${i}]`));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) if (v !== undefined) checkJson(v, `${where}.${k}`);
  } else if (!['string', 'boolean'].includes(typeof value) && value !== null) {
    throw rangeError(`sidecar field ${where} is a ${typeof value}, which JSON cannot hold`);
  }
}

/**
 * Writes the JSON sidecar of an output atomically, beside it ({@link sidecarPathFor}: `x_features.npy` ->
 * `x_features.json`; a `.json` path is written as is). Fields whose value is undefined are left out.
 *
 * @returns the sidecar's path
 * @throws ENCODEC_BAD_INPUT for a value JSON cannot hold (NaN, infinity, a function, a bigint)
 */
export async function writeSidecar(output: string, fields: Record<string, unknown>): Promise<string> {
  const target = sidecarPathFor(output);
  const kept = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  for (const [k, v] of Object.entries(kept)) checkJson(v, k);
  await fs.promises.mkdir(path.dirname(target), { recursive: true });
  await writeFileAtomic(target, Buffer.from(`${JSON.stringify(kept, null, 2)}\n`));
  return target;
}

/** Reads a dataset's `dataset_description.json`. @throws ENCODEC_FILE_FORMAT when it is missing or not a JSON object. */
export function readDatasetDescription(root: string): Record<string, unknown> {
  const file = path.join(root, 'dataset_description.json');
  const value = readJson(file);
  if (!value) throw codedError('ENCODEC_FILE_FORMAT', `${file} is missing or not a JSON object`);
  return value;
}
