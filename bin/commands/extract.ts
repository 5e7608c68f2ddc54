/**
 * `encodec-native extract`: TR-aligned features for many inputs (see lib/features.ts).
 *
 * Batch behaviour: inputs come from the arguments and/or `--manifest`; they are resolved, de-duplicated and
 * sorted, then `--shard i/N` keeps those at positions j with j % N == i (0-based), so N machines given the
 * same inputs split them without overlap whatever order the inputs were listed in. Each input writes
 * `OUT/<name without extension>.npy` and `.csv` atomically; an input whose two files exist is skipped unless
 * `--force`, so a killed run is resumed by running it again (its temporary files, once older than 10 minutes,
 * are removed then). A failing input is reported and the others
 * still run; the exit code is then 1 and a summary lists the failures.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Command } from 'commander';

import { parseBandwidth } from '../../lib/codec/bandwidth';
import { Encodec } from '../../lib/codec/codec';
import { parseDevice } from '../../lib/codec/device';
import { ExtractOptions, FeatureSet, checkExtractOptions, extractFeatures } from '../../lib/fmri/features';
import { featureFilesFor, featuresExist, removeStalePartials, writeFeatures } from '../../lib/fmri/features-file';
import { resolveModelPath } from '../../lib/model/model-file';
import { threadsPerJob } from '../../lib/codec/threads';
import { formatQuality, roundTripQuality } from '../../lib/quality/roundtrip-quality';
import { writeFileAtomic } from '../../lib/common/atomic';
import { toJson } from '../../lib/common/format';
import { ENCODEC_LOOKAHEAD_SECONDS } from '../../lib/fmri/features';
import { UsageError, parseIntegerOption, parseTrOption } from '../cli-util';

interface ExtractCliOptions {
  out: string;
  manifest?: string;
  shard?: Shard;
  model?: string;
  device: string;
  tr: string;
  bandwidth: string;
  maxTrs?: number;
  hrf: string;
  layout: string;
  mode: string;
  output: string;
  jobs: number;
  force?: boolean;
  exact?: boolean;
  report?: boolean;
}

/** One of N disjoint parts of the input list. */
export interface Shard {
  index: number;
  count: number;
}

/** Parses `i/N` (0 <= i < N). */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) {
    throw new UsageError(`--shard must be i/N with 0 <= i < N (e.g. 0/4 ... 3/4), got '${text}'`);
  }
  return { index, count };
}

/**
 * Input paths listed in a manifest: one per line, blank lines and '#' comments ignored, relative paths
 * resolved against the manifest's directory.
 */
export function readManifest(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --manifest '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const dir = path.dirname(path.resolve(file));
  return text
    .split(/\r?\n/)
    .map((line) => line.replace(/(^|\s)#.*$/, '').trim())
    .filter((line) => line !== '')
    .map((line) => path.resolve(dir, line));
}

/** The inputs this run handles: resolved, de-duplicated, sorted, then this shard's part. */
export function selectInputs(inputs: string[], shard?: Shard): string[] {
  const all = [...new Set(inputs.map((p) => path.resolve(p)))].sort();
  return shard ? all.filter((_, j) => j % shard.count === shard.index) : all;
}

/** The output base for an input: OUT/<file name without its extension>. */
function outputBase(outDir: string, input: string): string {
  return path.join(outDir, path.basename(input, path.extname(input)));
}

interface Outcome {
  input: string;
  status: 'written' | 'skipped' | 'failed';
  message: string;
}

/** Progress on a terminal: one redrawn line on stderr. */
class ProgressBar {
  private done = 0;
  private failed = 0;
  constructor(private readonly total: number, private readonly stream: NodeJS.WriteStream) {}

  update(outcome?: Outcome, current?: string): void {
    if (outcome) {
      this.done++;
      if (outcome.status === 'failed') this.failed++;
    }
    const width = 30;
    const filled = this.total ? Math.round((width * this.done) / this.total) : width;
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const failed = this.failed ? `, ${this.failed} failed` : '';
    const name = current ? ` ${path.basename(current)}` : '';
    const columns = this.stream.columns || 80;
    const line = `[${bar}] ${this.done}/${this.total}${failed}${name}`.slice(0, columns - 1);
    this.stream.write(`\r\x1b[K${line}`);
  }

  finish(): void {
    this.stream.write('\n');
  }
}

function describe(result: FeatureSet, seconds: number): string {
  const nTrs = result.shape[0];
  const short = nTrs === 0 ? ` (shorter than one TR of ${result.tr} s)` : '';
  return `${nTrs} TRs, ${result.kind} (${result.shape.join(' x ')})${short} in ${seconds.toFixed(1)} s`;
}

export function extractCommand(): Command {
  return new Command('extract')
    .description('turn soundtracks (audio or video files) into TR-aligned features: OUT/<name>.npy + .csv per input')
    .argument('[inputs...]', 'audio or video files (any format ffmpeg reads)')
    .requiredOption('--out <dir>', 'output directory (created if missing)')
    .option('--manifest <file>', "file listing inputs, one per line ('#' comments; relative to the manifest's directory)")
    .option('--shard <i/N>', 'process only part i of N (0-based) of the sorted input list', parseShard)
    .option('--model <model.pt>', 'model file (default: $ENCODEC_MODEL, then the default cache path); unused with --mode mel')
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N'", 'cpu')
    .option('--tr <seconds>', 'fMRI repetition time in seconds', '1.5')
    .option('--bandwidth <kbps>', 'bandwidth: 1.5, 3, 6, 12 or 24 kbps (2, 4, 8, 16, 32 codebooks)', '3')
    .option('--max-trs <n>', 'keep at most N TRs per input (stops reading after them)', parseIntegerOption('--max-trs', 1))
    .option('--hrf <model>', 'convolve with an HRF along TRs: none, glover or spm', 'none')
    .option('--layout <layout>', 'tr: (n_trs, rows, frames); flat: (n_trs, rows * frames)', 'tr')
    .option('--mode <mode>', 'encodec (codes/embeddings) or mel (no model)', 'encodec')
    .option('--output <kind>', 'with --mode encodec: codes or embeddings', 'codes')
    .option('--jobs <n>', 'inputs processed at once (model threads = max(1, floor(cores / jobs)))', parseIntegerOption('--jobs', 1, 256), 1)
    .option('--exact', 'encode each input in one pass (exact whole-file codes; memory grows with length) instead of in chunks')
    .option('--force', 'redo inputs whose outputs already exist')
    .option('--report', 'also score the round trip (encode -> decode, or mel -> Griffin-Lim) against the input: SNR, SI-SNR, STOI, ESTOI in OUT/<name>.quality.json')
    .action(async (args: string[], opts: ExtractCliOptions) => {
      const options: ExtractOptions = {
        tr: parseTrOption(opts.tr),
        bandwidth: parseBandwidth(opts.bandwidth),
        maxTrs: opts.maxTrs,
        hrf: opts.hrf as ExtractOptions['hrf'],
        layout: opts.layout as ExtractOptions['layout'],
        mode: opts.mode as ExtractOptions['mode'],
        output: opts.mode === 'mel' && opts.output === 'codes' ? undefined : (opts.output as ExtractOptions['output']),
        exact: opts.exact === true,
      };
      try {
        checkExtractOptions(options);
      } catch (err) {
        throw new UsageError((err as Error).message.replace(/^unknown (hrf|layout|mode|output)/, 'unknown --$1').replace(/^maxTrs/, '--max-trs'));
      }
      const device = parseDevice(opts.device, '--device');
      const listed = [...args, ...(opts.manifest ? readManifest(opts.manifest) : [])];
      if (listed.length === 0) throw new UsageError('no inputs: pass audio/video files or --manifest FILE');
      const everything = selectInputs(listed);
      const byName = new Map<string, string>();
      for (const input of everything) {
        const base = outputBase(opts.out, input);
        const other = byName.get(base);
        if (other) throw new UsageError(`'${other}' and '${input}' would both write ${base}.npy; rename one or run them with different --out`);
        byName.set(base, input);
      }
      const inputs = selectInputs(listed, opts.shard);
      if (fs.existsSync(opts.out) && !fs.statSync(opts.out).isDirectory()) {
        throw new UsageError(`--out '${opts.out}' is a file; pass a directory (it is created if missing)`);
      }
      try {
        fs.mkdirSync(opts.out, { recursive: true });
        fs.accessSync(opts.out, fs.constants.W_OK);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        throw new UsageError(`cannot write to --out '${opts.out}' (${code}); pass a directory you can write to (it is created if missing)`);
      }

      const jobs = Math.max(1, Math.min(opts.jobs, inputs.length));
      const threads = threadsPerJob(jobs);
      const modelPath = options.mode === 'mel' ? undefined : resolveModelPath(opts.model);
      const progress = process.stderr.isTTY ? new ProgressBar(inputs.length, process.stderr) : undefined;
      const outcomes: Outcome[] = [];
      const report = (outcome: Outcome): void => {
        outcomes.push(outcome);
        if (progress) {
          if (outcome.status === 'failed') process.stderr.write(`\r\x1b[Kencodec-native: error: ${outcome.input}: ${outcome.message}\n`);
          progress.update(outcome);
        } else if (outcome.status === 'failed') {
          process.stderr.write(`encodec-native: error: ${outcome.input}: ${outcome.message}\n`);
        } else {
          process.stdout.write(`${outcome.status} ${outcome.input}: ${outcome.message}\n`);
        }
      };
      progress?.update();

      let next = 0;
      const worker = async (): Promise<void> => {
        let codec: Encodec | undefined;
        try {
          while (next < inputs.length) {
            const input = inputs[next++];
            const base = outputBase(opts.out, input);
            const files = featureFilesFor(base);
            await removeStalePartials(base);
            const qualityFile = `${base}.quality.json`;
            if (!opts.force && featuresExist(base) && (!opts.report || fs.existsSync(qualityFile))) {
              report({ input, status: 'skipped', message: `${files.npy} exists (--force to redo)` });
              continue;
            }
            progress?.update(undefined, input);
            const start = performance.now();
            try {
              if (modelPath && !codec) codec = await Encodec.load(modelPath, { device, threads });
              const result = await extractFeatures(input, { ...options, model: codec });
              let quality = '';
              if (opts.report) {
                // Written before the features, which mark the input as done: a rerun then never lacks a report.
                const q = await roundTripQuality(input, {
                  mode: options.mode,
                  model: codec,
                  bandwidth: options.bandwidth,
                  maxSeconds: options.maxTrs === undefined ? undefined : options.maxTrs * (options.tr as number) + ENCODEC_LOOKAHEAD_SECONDS,
                });
                await writeFileAtomic(qualityFile, Buffer.from(toJson({ input, ...q })));
                quality = `; round trip: ${formatQuality(q)}`;
              }
              await writeFeatures(base, result);
              report({ input, status: 'written', message: `${describe(result, (performance.now() - start) / 1000)} -> ${files.npy}${quality}` });
            } catch (err) {
              report({ input, status: 'failed', message: err instanceof Error ? err.message : String(err) });
            }
          }
        } finally {
          codec?.dispose();
        }
      };
      await Promise.all(Array.from({ length: jobs }, worker));
      progress?.finish();

      const count = (status: Outcome['status']): number => outcomes.filter((o) => o.status === status).length;
      const failed = outcomes.filter((o) => o.status === 'failed');
      const shard = opts.shard ? ` (shard ${opts.shard.index}/${opts.shard.count})` : '';
      process.stderr.write(`extract: ${inputs.length} inputs${shard}: ${count('written')} written, ${count('skipped')} skipped, ${failed.length} failed\n`);
      if (failed.length) {
        for (const f of failed) process.stderr.write(`  failed: ${f.input}: ${f.message}\n`);
        process.exitCode = 1;
      }
    });
}
