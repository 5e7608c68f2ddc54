/**
 * `encodec-native extract`: TR-aligned features for many inputs (see lib/fmri/features.ts).
 *
 * Batch behaviour: inputs come from the arguments and/or `--manifest`; they are resolved, de-duplicated and
 * sorted, then `--shard i/N` keeps those at positions j with j % N == i (0-based), so N machines given the
 * same inputs split them without overlap whatever order the inputs were listed in. Each input writes
 * `OUT/<name without extension>.npy` and `.csv` atomically; an input whose two files exist is skipped unless
 * `--force`, so a killed run is resumed by running it again (its temporary files, once older than 10 minutes,
 * are removed then). A failing input is reported and the others
 * still run; the exit code is then 1 and a summary lists the failures.
 *
 * Scanner clock (docs/fmri.md): `--onset` / `--run-trs` place a media input on a run's timeline; a BIDS
 * `_events.tsv` input (`--events`, or listed in the manifest) places its stim_files, and writes
 * `OUT/<run>_desc-encodec_features.npy`; `--bold` reads the run's volumes, TR and slice-time reference.
 * `--format h5` writes one HDF5 file per input instead, and `--concat` one file with `X` and `run_onsets` for all.
 * A sharded run (`--shard i/N` or `auto/N` in a job array) keeps a work list in OUT (bin/work-list.ts): the
 * assignment and one outcome record per input, which `status` and `merge` read; with `--concat` each run's
 * features are kept there and `merge` writes the file once every shard is done.
 * With a 48 kHz model (encodec_48khz) inputs are read in stereo and the features have 150 frames/s (docs/fmri.md); a
 * bandwidth that model lacks is a usage error before any input is read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Command } from 'commander';

import { parseBandwidth } from '../../lib/codec/bandwidth';
import { Encodec } from '../../lib/codec/codec';
import { encodeModel } from '../../lib/encoding/context';
import type { EncodeModel } from '../../lib/encoding/encode-stage';
import { parseDevice } from '../../lib/codec/device';
import { extractFeatures, extractRunFeatures, extractedAudio } from '../../lib/fmri/features';
import { ExtractOptions, OptionNames, checkExtractOptions } from '../../lib/fmri/extract-options';
import type { FeatureSet } from '../../lib/fmri/feature-set';
import { BoldTiming, featuresNameForEvents, isEventsFile, readBoldTiming, readEvents } from '../../lib/fmri/bids';
import { writeConcatH5, writeFeaturesH5 } from '../../lib/fmri/h5';
import { derivativeBase, derivativeConcatBase, findBidsRoot, sidecarPathFor, writeBidsIgnore, writeDatasetDescription, writeSidecar } from '../../lib/fmri/bids-derivative';
import { concatSidecar, featureSidecar } from '../../lib/fmri/derivative-sidecar';
import { PACKAGE_VERSION } from '../../lib/common/package-root';
import { featureFilesFor, featuresExist, removeStalePartials, writeFeatures } from '../../lib/fmri/features-file';
import { ModelInfo, isSegmentedModel, modelCodebooks, readModelInfo, resolveModelPath } from '../../lib/model/model-file';
import { threadsPerJob } from '../../lib/codec/threads';
import { RoundTripTap, formatQuality, roundTripQuality } from '../../lib/quality/roundtrip-quality';
import { writeFileAtomic } from '../../lib/common/atomic';
import { formatNumber, plural, toJson } from '../../lib/common/format';
import { UsageError, addCacheOptions, parseIntegerOption, parseTrOption, makeOutDir } from '../cli-util';
import { BatchReporter, Outcome, SHARD_HELP, Shard, failure, outputStem, parseShard, readManifest, runWorkers, selectInputs } from '../batch';
import { WorkList } from '../work-list';
import { writeFeaturesPart } from '../../lib/fmri/features-part';

interface ExtractCliOptions {
  out: string;
  manifest?: string;
  shard?: Shard;
  model?: string;
  device: string;
  tr?: string;
  onset?: string;
  runTrs?: number;
  sliceTimeRef?: string;
  resample: string;
  delays?: string;
  zscore?: boolean;
  format: string;
  concat?: boolean;
  events: string[];
  stimuli?: string;
  bold: string[];
  bandwidth: string;
  maxTrs?: number;
  hrf: string;
  layout: string;
  mode: string;
  output: string;
  jobs: number;
  threads?: number;
  force?: boolean;
  exact?: boolean;
  report?: boolean;
  /** A folder (--cache DIR), false (--no-cache), or undefined (the default folder). */
  cache?: string | false;
}

/**
 * The features' output path without an extension: for a BIDS events file OUT/<run>_desc-encodec_features (or its
 * place in a derivative dataset), else the input's stem (outputStem).
 */
function featuresBase(outDir: string, input: string): string {
  if (isEventsFile(input)) return derivativeBase(outDir, input) ?? path.join(outDir, featuresNameForEvents(input));
  return outputStem(outDir, input);
}

/** Parses a number of seconds (any sign), or throws a UsageError naming the option. */
function parseSeconds(name: string, text: string): number {
  const value = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(value)) throw new UsageError(`${name} must be a number of seconds (e.g. 4.5 or -2), got '${text}'`);
  return value;
}

/** Parses `--delays 1,2,3,4`. */
function parseDelays(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (!parts.every((p) => /^[+-]?\d+$/.test(p))) {
    throw new UsageError(`--delays must be a comma-separated list of whole numbers of volumes (e.g. 1,2,3,4), got '${text}'`);
  }
  return parts.map(Number);
}

/**
 * The run settings a BOLD file gives, merged with the explicit options: an explicit --tr or --run-trs that
 * disagrees with the file is an error naming both values.
 */
async function boldOptions(bold: string, options: ExtractOptions, explicit: { tr: boolean; runTrs: boolean; sliceTimeRef: boolean }): Promise<ExtractOptions> {
  let timing: BoldTiming;
  try {
    timing = await readBoldTiming(bold);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (explicit.tr && Math.abs((options.tr as number) - timing.tr) > 1e-6) {
    throw new UsageError(`--tr ${options.tr} disagrees with ${timing.sources.tr} = ${timing.tr} s; leave --tr out or fix it`);
  }
  if (explicit.runTrs && options.runTrs !== timing.runTrs) {
    throw new UsageError(`--run-trs ${options.runTrs} disagrees with ${timing.sources.runTrs} = ${timing.runTrs} volumes; leave --run-trs out or fix it`);
  }
  return {
    ...options,
    tr: timing.tr,
    runTrs: timing.runTrs,
    sliceTimeRef: explicit.sliceTimeRef ? options.sliceTimeRef : timing.sliceTimeRef ?? options.sliceTimeRef,
  };
}

/** The name of the --concat file: the runs' shared BIDS entities without run-, else 'concat'. */
function concatFile(outDir: string, inputs: string[]): string {
  const bids = inputs.every(isEventsFile) ? derivativeConcatBase(outDir, inputs) : undefined;
  return bids ? `${bids}.h5` : path.join(outDir, `${concatName(inputs)}.h5`);
}

function concatName(inputs: string[]): string {
  const names = inputs.map((i) => path.basename(featuresBase('', i)).replace(/_run-[^_]+/, ''));
  return names.every((n) => n === names[0]) && isEventsFile(inputs[0]) ? names[0] : 'concat_desc-encodec_features';
}

/**
 * A usage error (before any input is read) when the model has no such bandwidth (encodec_48khz: 3, 6, 12, 24 kbps); a
 * model file whose metadata cannot be read is left to the load, which says what is wrong with it.
 */
function checkModelBandwidth(modelPath: string, bandwidth: number): void {
  let info: ModelInfo;
  try {
    info = readModelInfo(modelPath);
  } catch {
    return;
  }
  try {
    modelCodebooks(info, bandwidth);
  } catch (err) {
    throw new UsageError(`--bandwidth: ${(err as Error).message}`);
  }
}

/** What the extract options are called on the command line, for the messages of checkExtractOptions. */
const FLAG_NAMES: OptionNames = {
  tr: '--tr',
  bandwidth: '--bandwidth',
  maxTrs: '--max-trs',
  hrf: '--hrf',
  layout: '--layout',
  mode: '--mode',
  output: '--output',
  onset: '--onset',
  runTrs: '--run-trs',
  sliceTimeRef: '--slice-time-ref',
  resample: '--resample',
  delays: '--delays',
  zscore: '--zscore',
};

/** Checks the options of a run (`bold`: the BOLD file they were merged with), as usage errors naming the flag. */
function checkOptions(options: ExtractOptions, bold?: string): void {
  try {
    checkExtractOptions(options, FLAG_NAMES);
  } catch (err) {
    if (!(err instanceof RangeError || err instanceof TypeError)) throw err;
    throw new UsageError(bold ? `${bold}: ${err.message}` : err.message);
  }
}

function describe(result: FeatureSet, seconds: number): string {
  const nTrs = result.shape[0];
  const short = nTrs === 0 ? ` (shorter than one TR of ${result.tr} s)` : '';
  const e = result.encodings;
  const how = !e?.length ? '' : e.every((x) => x.cached) ? ', from the cache' : e.some((x) => x.cached) ? ', partly from the cache' : ', encoded';
  return `${plural(nTrs, 'TR')}, ${result.kind} (${result.shape.join(' x ')})${short}, took ${formatNumber(seconds, 2)} s${how}`;
}

export function extractCommand(): Command {
  return addCacheOptions(new Command('extract')
    .description('turn soundtracks (audio or video files) into TR-aligned features: OUT/<name>.npy + .csv per input')
    .argument('[inputs...]', 'audio or video files (any format ffmpeg reads)')
    .requiredOption('--out <dir>', 'output directory (created if missing)')
    .option('--manifest <file>', "file listing inputs, one per line ('#' comments; relative to the manifest's directory)")
    .option('--shard <i/N>', SHARD_HELP, parseShard)
    .option('--model <model.pt>', 'model file (default: $ENCODEC_MODEL, then the default cache path); unused with --mode mel')
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N'", 'cpu')
    .option('--tr <seconds>', 'fMRI repetition time in seconds (default 1.5, or the --bold file\'s)')
    .option('--onset <seconds>', "run time at which the stimulus's first sample plays (negative: it started before the run)")
    .option('--run-trs <n>', "the run's number of volumes (default: floor((onset + duration) / tr))", parseIntegerOption('--run-trs', 1))
    .option('--events <events.tsv>', 'a BIDS _events.tsv placing stim_files on a run (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--stimuli <dir>', "directory stim_file paths resolve against (BIDS stimuli/; default: the events file's directory)")
    .option('--bold <bold.nii[.gz]>', "the run's BOLD image (+ _bold.json sidecar): volumes, TR, slice-time reference (repeatable, one per --events)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--slice-time-ref <f>', "volume k's reference time is (k + f) * tr, 0..1 (default 0, or the sidecar's)")
    .option('--resample <method>', 'continuous kinds: window (frames per TR), mean or lanczos (one value per volume at its reference time)', 'window')
    .option('--delays <list>', 'FIR delays in volumes, e.g. 1,2,3,4: output (n_trs, n_delays * features)')
    .option('--zscore', "z-score each feature column over the run's volumes (before delays)")
    .option('--format <format>', 'npy (.npy + .csv) or h5 (one HDF5 file)', 'npy')
    .option('--concat', 'with --format h5: one file with X (all runs\' rows) and run_onsets')
    .option('--bandwidth <kbps>', 'bandwidth: 1.5, 3, 6, 12 or 24 kbps (2, 4, 8, 16, 32 codebooks; encodec_48khz: 3, 6, 12, 24 -> 2, 4, 8, 16)', '3')
    .option('--max-trs <n>', 'keep at most N TRs per input (stops reading after them)', parseIntegerOption('--max-trs', 1))
    .option('--hrf <model>', 'convolve with an HRF along TRs: none, glover or spm', 'none')
    .option('--layout <layout>', 'tr: (n_trs, rows, frames); flat: (n_trs, rows * frames)', 'tr')
    .option('--mode <mode>', 'encodec (codes/embeddings) or mel (no model)', 'encodec')
    .option('--output <kind>', 'with --mode encodec: codes, embeddings or latents (before quantization)', 'codes')
    .option('--jobs <n>', 'inputs processed at once (model threads = max(1, floor(cores / jobs)))', parseIntegerOption('--jobs', 1, 256), 1)
    .option('--threads <n>', "each model's intra-op threads (default: max(1, floor(cores / jobs)); in a job, the cores it was given)", parseIntegerOption('--threads', 1, 1024))
    .option('--exact', 'encode each input in one pass (exact whole-file codes; memory grows with length) instead of in chunks')
    .option('--force', 'redo inputs whose outputs already exist')
    .option('--report', 'also score the round trip (encode -> decode, or mel -> Griffin-Lim) of the audio extract read (a run: its timeline): SNR, SI-SNR, STOI, ESTOI in OUT/<name>.quality.json')
  )
    .action(async (args: string[], opts: ExtractCliOptions) => {
      const { options, runOptions, listed } = await extractSettings(args, opts);
      const device = parseDevice(opts.device, '--device');
      const everything = selectInputs(listed);
      const bids = await prepareOut(opts, everything);
      // sharded: the assignment and outcome records live in OUT; with --concat, `merge` writes the file
      const work = opts.shard
        ? await WorkList.open(opts.out, 'extract', everything, opts.shard, opts.concat ? path.relative(opts.out, concatFile(opts.out, everything)) : undefined)
        : undefined;
      const inputs = work ? work.inputs() : selectInputs(listed, opts.shard);

      const jobs = Math.max(1, Math.min(opts.jobs, inputs.length));
      const threads = opts.threads ?? threadsPerJob(jobs);
      const modelPath = options.mode === 'mel' ? undefined : resolveModelPath(opts.model);
      if (modelPath) checkModelBandwidth(modelPath, options.bandwidth as number);
      const reporter = new BatchReporter(inputs.length, process.stderr, work);
      // --concat's runs by input: written in input order, whichever worker extracted them
      const concatResults = new Map<string, FeatureSet>();
      const run: InputRun = { opts, options, runOptions, bids, work, concatResults };

      await runWorkers(inputs, jobs, async (take) => {
        // loaded on the first input that misses the cache (or at once for --report, which decodes)
        const model = modelPath ? await encodeModel(modelPath, { device, threads }) : undefined;
        try {
          for (let input = take(); input !== undefined; input = take()) {
            reporter.report(await extractInput(run, input, model, () => reporter.working(input)));
          }
        } finally {
          await model?.close();
        }
      });
      await reporter.flush();
      if (opts.concat && work) {
        process.stderr.write(`extract: --concat file is written by \`encodec-native merge --out ${opts.out}\` once every shard is done\n`);
      } else if (opts.concat) {
        await writeConcat(opts.out, inputs, concatResults, bids);
      }
      reporter.finish('extract', opts.shard);
    });
}

/** The options every input is extracted with, each BOLD run's own (merged with its file's timing), and the inputs. */
interface Settings {
  options: ExtractOptions;
  /** By resolved input path: the options of a run given a --bold file. */
  runOptions: Map<string, ExtractOptions>;
  listed: string[];
}

/** The command line -> the checked extract options (usage errors name the flag), before any input is read. */
async function extractSettings(args: string[], opts: ExtractCliOptions): Promise<Settings> {
  const options: ExtractOptions = {
    tr: opts.tr === undefined ? 1.5 : parseTrOption(opts.tr),
    onset: opts.onset === undefined ? undefined : parseSeconds('--onset', opts.onset),
    runTrs: opts.runTrs,
    sliceTimeRef: opts.sliceTimeRef === undefined ? undefined : parseSeconds('--slice-time-ref', opts.sliceTimeRef),
    resample: opts.resample as ExtractOptions['resample'],
    delays: opts.delays === undefined ? undefined : parseDelays(opts.delays),
    zscore: opts.zscore === true ? true : undefined,
    bandwidth: parseBandwidth(opts.bandwidth),
    maxTrs: opts.maxTrs,
    hrf: opts.hrf as ExtractOptions['hrf'],
    layout: opts.layout as ExtractOptions['layout'],
    mode: opts.mode as ExtractOptions['mode'],
    output: opts.mode === 'mel' && opts.output === 'codes' ? undefined : (opts.output as ExtractOptions['output']),
    exact: opts.exact === true,
    cache: opts.cache,
  };
  checkOptions(options);
  if (opts.format !== 'npy' && opts.format !== 'h5') throw new UsageError(`--format must be npy or h5, got '${opts.format}'`);
  if (opts.concat && opts.format !== 'h5') throw new UsageError('--concat writes one HDF5 file: add --format h5');
  if (opts.bold.length && opts.bold.length !== Math.max(1, opts.events.length)) {
    throw new UsageError(`${plural(opts.bold.length, '--bold', '--bold options')} for ${plural(opts.events.length, '--events', '--events options')}: give one --bold per --events, in the same order`);
  }
  if (opts.bold.length && args.length + (opts.manifest ? 1 : 0) > 0 && opts.events.length === 0 && args.length !== 1) {
    throw new UsageError('--bold describes one run: pass one input with it (or one --bold per --events)');
  }
  const explicit = { tr: opts.tr !== undefined, runTrs: opts.runTrs !== undefined, sliceTimeRef: opts.sliceTimeRef !== undefined };
  const boldFor = new Map<string, string>();
  opts.events.forEach((e, i) => opts.bold[i] !== undefined && boldFor.set(path.resolve(e), opts.bold[i]));
  if (opts.events.length === 0 && opts.bold.length === 1 && args.length === 1) boldFor.set(path.resolve(args[0]), opts.bold[0]);
  const runOptions = new Map<string, ExtractOptions>();
  for (const [input, bold] of boldFor) {
    const merged = await boldOptions(bold, options, explicit);
    checkOptions(merged, bold);
    runOptions.set(input, merged);
  }
  const listed = [...args, ...opts.events, ...(opts.manifest ? readManifest(opts.manifest) : [])];
  if (listed.length === 0) throw new UsageError('no inputs: pass audio/video files, --events FILE or --manifest FILE');
  const eventsInputs = listed.filter(isEventsFile);
  if (opts.onset !== undefined && eventsInputs.length) {
    throw new UsageError(`--onset places one media file; ${eventsInputs[0]} gives each stimulus its onset`);
  }
  return { options, runOptions, listed };
}

/**
 * Checks that no two inputs write the same output and that --out is a folder it can write, and makes it; with BIDS
 * events inputs, OUT is a BIDS derivative dataset (docs/fmri.md#bids-derivative-layout): writes its description.
 * Returns whether it is one.
 */
async function prepareOut(opts: ExtractCliOptions, everything: string[]): Promise<boolean> {
  const byName = new Map<string, string>();
  for (const input of everything) {
    const base = featuresBase(opts.out, input);
    const other = byName.get(base);
    if (other) throw new UsageError(`'${other}' and '${input}' would both write ${base}.${opts.format}; rename one or run them with different --out`);
    byName.set(base, input);
  }
  if (fs.existsSync(opts.out) && !fs.statSync(opts.out).isDirectory()) {
    throw new UsageError(`--out '${opts.out}' is a file; pass a directory (it is created if missing)`);
  }
  try {
    makeOutDir(opts.out); // removed at exit if nothing was written into it
    fs.accessSync(opts.out, fs.constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsageError(`cannot write to --out '${opts.out}' (${code}); pass a directory you can write to (it is created if missing)`);
  }
  const bids = everything.some((i) => isEventsFile(i) && derivativeBase(opts.out, i) !== undefined);
  if (bids) {
    const source = everything.find(isEventsFile);
    await writeDatasetDescription(opts.out, {
      name: 'encodec-native stimulus features',
      version: PACKAGE_VERSION,
      commandLine: ['encodec-native', ...process.argv.slice(2)].join(' '),
      sourceRoot: source ? findBidsRoot(source) : undefined,
    });
    await writeBidsIgnore(opts.out);
  }
  return bids;
}

/** What every input of one `extract` shares. */
interface InputRun {
  opts: ExtractCliOptions;
  options: ExtractOptions;
  runOptions: Map<string, ExtractOptions>;
  /** OUT is a BIDS derivative dataset. */
  bids: boolean;
  work: WorkList | undefined;
  concatResults: Map<string, FeatureSet>;
}

/**
 * Extracts one input and writes its outputs (skipped when they exist, unless --force): the features, the BIDS
 * sidecar, the --report scores, or for --concat the run kept for the file written at the end.
 */
async function extractInput(run: InputRun, input: string, model: EncodeModel | undefined, working: () => void): Promise<Outcome> {
  const { opts, options, work } = run;
  const base = featuresBase(opts.out, input);
  const files = featureFilesFor(base);
  const h5File = `${base}.h5`;
  const target = opts.format === 'h5' ? h5File : files.npy;
  await removeStalePartials(base);
  const qualityFile = `${base}.quality.json`;
  const bidsOutput = run.bids && isEventsFile(input) && derivativeBase(opts.out, input) !== undefined;
  // the files that hold the input's result, for the work list of a sharded run; sharded, --concat keeps each run's
  // features in a part file, which resumes like any output
  const partFile = work && opts.concat ? work.partPath(input) : undefined;
  const written = partFile ? [partFile] : opts.concat ? [] : opts.format === 'h5' ? [h5File] : [files.npy, files.csv];
  const outputs = [...written, ...(bidsOutput && !opts.concat ? [sidecarPathFor(target)] : []), ...(opts.report ? [qualityFile] : [])];
  const finished = partFile ? fs.existsSync(partFile) : opts.format === 'h5' ? fs.existsSync(h5File) : featuresExist(base);
  const done = finished && (!bidsOutput || opts.concat || fs.existsSync(sidecarPathFor(target)));
  if (!opts.force && (!opts.concat || partFile) && done && (!opts.report || fs.existsSync(qualityFile))) {
    return { input, status: 'skipped', message: `${partFile ?? target} exists (--force to redo)`, outputs };
  }
  working();
  const start = performance.now();
  try {
    await fs.promises.mkdir(path.dirname(base), { recursive: true }); // a BIDS derivative's sub-XX/func/
    const codec = opts.report && model ? await model.codec() : undefined;
    // The report scores the audio and codes extract streams when it can (streamed codes or embeddings): the run is
    // then read and encoded once; otherwise roundTripQuality reads the same run timeline again, as a stream. Either
    // way it scores what the features were made from: for an events file or an --onset / --run-trs, the run's
    // silence and stimuli, not a file on its own.
    const tapped = opts.report && codec !== undefined && options.mode !== 'mel' && !isSegmentedModel(codec.info);
    const tap = tapped ? new RoundTripTap(codec as Encodec, options.bandwidth as number) : undefined;
    const inputOptions: ExtractOptions = { ...(run.runOptions.get(input) ?? options), model, tap };
    const stimuli = isEventsFile(input) ? readEvents(input, opts.stimuli) : undefined;
    const result = stimuli ? await extractRunFeatures(stimuli, inputOptions, input) : await extractFeatures(input, inputOptions);
    let quality = '';
    if (opts.report) {
      // Written before the features, which mark the input as done: a rerun then never lacks a report.
      const q = tap && tap.samples > 0
        ? await tap.result(input)
        : await roundTripQuality(input, {
          mode: options.mode,
          model: codec,
          bandwidth: options.bandwidth,
          audio: extractedAudio(stimuli ?? [{ file: input, onset: inputOptions.onset ?? 0 }], inputOptions),
        });
      await writeFileAtomic(qualityFile, Buffer.from(toJson({ input, ...q })));
      quality = `; round trip: ${formatQuality(q)}`;
    }
    if (partFile) await writeFeaturesPart(partFile, result);
    else if (opts.concat) run.concatResults.set(input, result);
    else {
      if (opts.format === 'h5') await writeFeaturesH5(h5File, result);
      else await writeFeatures(base, result);
      // the sidecar last: an output without it is unfinished (redone by a rerun)
      if (bidsOutput) await writeSidecar(target, featureSidecar(result, { stimuli: stimuli?.map((x) => ({ file: x.file, onset: x.onset ?? 0, duration: x.duration })) }));
    }
    const where = opts.concat ? ' (for --concat)' : ` -> ${target}`;
    return { input, status: 'written', message: `${describe(result, (performance.now() - start) / 1000)}${where}${quality}`, outputs };
  } catch (err) {
    return failure(input, err);
  }
}

/** --concat on one machine: every run, in input order, into one HDF5 file (not written when a run failed). */
async function writeConcat(outDir: string, inputs: string[], results: Map<string, FeatureSet>, bids: boolean): Promise<void> {
  const runs = inputs.map((input) => results.get(input)).filter((r): r is FeatureSet => r !== undefined);
  if (runs.length !== inputs.length || runs.length === 0) {
    process.stderr.write('extract: --concat file not written: some runs failed\n');
    return;
  }
  const file = concatFile(outDir, inputs);
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  await writeConcatH5(file, runs);
  if (bids) await writeSidecar(file, concatSidecar(inputs, runs));
  process.stderr.write(`extract: ${plural(runs.length, 'run')} (${plural(runs.reduce((n, r) => n + r.shape[0], 0), 'volume')}) -> ${file}\n`);
}
