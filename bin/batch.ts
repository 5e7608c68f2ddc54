/**
 * The batch runner shared by `extract`, `encode` and `decode` with many inputs.
 *
 * Inputs come from the arguments and/or `--manifest`; they are resolved, de-duplicated and sorted, then
 * `--shard i/N` keeps those at positions j with j % N == i (0-based), so N machines given the same inputs split
 * them without overlap whatever order the inputs were listed in; `--shard auto/N` takes i from the job array's
 * variable (Slurm, Kubernetes Indexed Jobs, AWS Batch). A sharded run also writes a work list into the output
 * folder (the assignment, and one outcome record per input: bin/work-list.ts), which `status` and `merge` read.
 * Each input writes `OUT/<name without extension>.<ext>` atomically; an input whose outputs exist is skipped
 * unless `--force`, so a killed run is resumed by running it again. `--jobs N` runs N workers (each with its own
 * model of max(1, floor(cores / N)) threads). A failing input is reported and the others still run; the exit code
 * is then 1 and a summary lists the failures. On a terminal a progress bar (cli-progress) is redrawn on stderr;
 * otherwise each outcome is one line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { SingleBar } from 'cli-progress';

import { UsageError, makeOutDir } from './cli-util';
import { plural } from '../lib/common/format';
import { formatNumber } from '../lib/common/format';

/** One of N disjoint parts of the input list. */
export interface Shard {
  index: number;
  count: number;
  /** With `--shard auto/N`: the environment variable the index came from (SLURM_ARRAY_TASK_ID, ...). */
  source?: string;
}

/**
 * The variables array engines give each task its index in, in the order `--shard auto/N` reads them: Slurm job
 * arrays, Kubernetes Indexed Jobs, AWS Batch array jobs. The count is never read from the engine: a resubmitted
 * single Slurm index sees SLURM_ARRAY_TASK_COUNT=1.
 */
export const ARRAY_INDEX_VARIABLES = ['SLURM_ARRAY_TASK_ID', 'JOB_COMPLETION_INDEX', 'AWS_BATCH_JOB_ARRAY_INDEX'] as const;

/**
 * Parses `i/N` (0 <= i < N), or `auto/N`, whose index is the array task's (ARRAY_INDEX_VARIABLES in the
 * environment). A commander option parser for any batch command: `.option('--shard <i/N>', SHARD_HELP, parseShard)`.
 */
export function parseShard(text: string): Shard {
  return parseShardIn(text, process.env);
}

/** The `--shard` option's help text. */
export const SHARD_HELP =
  'process only part i of N (0-based) of the sorted input list; auto/N: i from the job array (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX)';

/** parseShard with the array variables read from `env`. */
export function parseShardIn(text: string, env: NodeJS.ProcessEnv): Shard {
  const auto = /^\s*auto\s*\/\s*(\d+)\s*$/i.exec(text);
  if (auto) return autoShard(Number(auto[1]), env);
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) {
    throw new UsageError(`--shard must be i/N with 0 <= i < N (e.g. 0/4 ... 3/4), or auto/N in a job array, got '${text}'`);
  }
  return { index, count };
}

/** `--shard auto/N`: the index from the first array variable set in `env`. */
function autoShard(count: number, env: NodeJS.ProcessEnv): Shard {
  if (!(count >= 1)) throw new UsageError(`--shard auto/N needs N >= 1 (the number of shards), got auto/${count}`);
  const source = ARRAY_INDEX_VARIABLES.find((name) => (env[name] ?? '').trim() !== '');
  if (!source) {
    throw new UsageError(
      `--shard auto/${formatNumber(count)} takes its index from a job array (${ARRAY_INDEX_VARIABLES.join(', ')}), and none is set: ` +
        `submit it as an array job (sbatch --array=0-${count - 1} ...), or pass --shard i/${count} by hand`,
    );
  }
  const text = (env[source] as string).trim();
  const index = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(index < count)) {
    throw new UsageError(`${source}=${text} is not a shard of --shard auto/${count} (0 ... ${count - 1}): submit the array as --array=0-${count - 1}, or pass the right N`);
  }
  return { index, count, source };
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

/** The output path of an input without an extension: OUT/<file name without its extension>. */
export function outputStem(outDir: string, input: string): string {
  return path.join(outDir, path.basename(input, path.extname(input)));
}

/** The batch options every batch command takes. */
export interface BatchCliOptions {
  manifest?: string;
  shard?: Shard;
  jobs: number;
  force?: boolean;
}

/**
 * The inputs of a run (arguments plus `--manifest`, this shard's part), after checking that no two of all the
 * inputs write the same output and that `outDir` is (or can be made) a writable directory. `outFlag` names the
 * option in messages (`--out`, `--out-dir`); `ext` is the main output's extension; `what` names the inputs.
 */
export function batchInputs(args: string[], opts: BatchCliOptions, outDir: string, outFlag: string, ext: string, what = 'input files'): string[] {
  const listed = [...args, ...(opts.manifest ? readManifest(opts.manifest) : [])];
  if (listed.length === 0) throw new UsageError(`no inputs: pass ${what} or --manifest FILE`);
  const byName = new Map<string, string>();
  for (const input of selectInputs(listed)) {
    const base = outputStem(outDir, input);
    const other = byName.get(base);
    if (other) throw new UsageError(`'${other}' and '${input}' would both write ${base}${ext}; rename one or run them with different ${outFlag}`);
    byName.set(base, input);
  }
  if (fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory()) {
    throw new UsageError(`${outFlag} '${outDir}' is a file; pass a directory (it is created if missing)`);
  }
  try {
    makeOutDir(outDir); // removed again at exit if the run leaves it empty
    fs.accessSync(outDir, fs.constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsageError(`cannot write to ${outFlag} '${outDir}' (${code}); pass a directory you can write to (it is created if missing)`);
  }
  return selectInputs(listed, opts.shard);
}

/** What became of one input. */
export interface Outcome {
  input: string;
  status: 'written' | 'skipped' | 'failed';
  message: string;
  /** A failure's stable error code (lib/common/errors.ts), when the error has one. */
  code?: string;
  /** The files that hold the input's result (written or skipped): what `status` and `merge` read back. */
  outputs?: string[];
}

/** The outcome of an input that failed with `err`. */
export function failure(input: string, err: unknown): Outcome {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return {
    input,
    status: 'failed',
    message: err instanceof Error ? err.message : String(err),
    ...(typeof code === 'string' ? { code } : {}),
  };
}

/** Keeps each outcome somewhere lasting (bin/work-list.ts: one record file per input). */
export interface OutcomeSink {
  record(outcome: Outcome): Promise<void>;
}

/** Reports outcomes as they come: a progress bar on a terminal, else one line per input. */
export class BatchReporter {
  readonly outcomes: Outcome[] = [];
  private readonly bar?: SingleBar;
  private failed = 0;
  /** The records written so far, in order (see flush). */
  private recorded: Promise<void> = Promise.resolve();

  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly sink?: OutcomeSink,
  ) {
    activeReporter = this;
    if (stream.isTTY) {
      this.bar = new SingleBar({
        stream,
        format: '[{bar}] {value}/{total}{failed} {name}',
        barCompleteChar: '#',
        barIncompleteChar: '-',
        barsize: 30,
        hideCursor: false,
        clearOnComplete: false,
      });
      this.bar.start(total, 0, { failed: '', name: '' });
    }
  }

  /** Shows which input is being worked on. */
  working(input: string): void {
    this.bar?.update({ name: path.basename(input) });
  }

  /** For Ctrl-C: what this batch has done so far, and how to go on. */
  interruptedSummary(): string {
    const written = this.outcomes.filter((o) => o.status === 'written').length;
    const skipped = this.outcomes.filter((o) => o.status === 'skipped').length;
    const left = this.total - this.outcomes.length;
    return `${written} written${skipped ? `, ${skipped} skipped` : ''}, ${left} not done; rerun the same command to resume (finished outputs are skipped)`;
  }

  /** Reports an outcome; with a sink, also records it (after the records before it; see flush). */
  report(outcome: Outcome): void {
    const sink = this.sink;
    if (sink) {
      this.recorded = this.recorded.then(() => sink.record(outcome));
      // a failed record is thrown by flush, not as an unhandled rejection that would end the process at once
      this.recorded.catch(() => undefined);
    }
    this.outcomes.push(outcome);
    if (outcome.status === 'failed') this.failed++;
    if (this.bar) {
      // a failure is printed above the bar, which is redrawn below it
      if (outcome.status === 'failed') {
        this.stream.write(`\r\x1b[Kencodec-native: error: ${outcome.input}: ${outcome.message}\n`);
      }
      this.bar.increment({ failed: this.failed ? `, ${this.failed} failed` : '', name: path.basename(outcome.input) });
    } else if (outcome.status === 'failed') {
      this.stream.write(`encodec-native: error: ${outcome.input}: ${outcome.message}\n`);
    } else {
      process.stdout.write(`${outcome.input}: ${outcome.status}, ${outcome.message}\n`);
    }
  }

  /** Waits for the records of every outcome reported so far; throws if one could not be written. */
  async flush(): Promise<void> {
    await this.recorded;
  }

  /** Ends the bar and prints the summary (`command: N inputs: ... written, ... skipped, ... failed`); exit code 1 on failures. */
  finish(command: string, shard?: Shard): void {
    this.bar?.stop();
    const count = (status: Outcome['status']): number => this.outcomes.filter((o) => o.status === status).length;
    const failed = this.outcomes.filter((o) => o.status === 'failed');
    const part = shard ? ` (shard ${shard.index}/${shard.count}${shard.source ? ` from ${shard.source}` : ''})` : '';
    this.stream.write(`${command}: ${plural(this.total, 'input')}${part}: ${count('written')} written, ${count('skipped')} skipped, ${failed.length} failed\n`);
    if (failed.length) {
      for (const f of failed) this.stream.write(`  failed: ${f.input}: ${f.message}\n`);
      process.exitCode = 1;
    }
  }
}

/** The batch of this process, if one has started (for the Ctrl-C message). */
let activeReporter: BatchReporter | undefined;

/** What an interrupted run has written: the batch's counts, or that no output is left half-written. */
export function interruptedSummary(): string {
  return activeReporter?.interruptedSummary() ?? 'no output was left half-written (each appears whole or not at all); rerun the same command';
}

/**
 * Runs `jobs` workers over `inputs` (each taken by the next free worker, in order). `worker(take)` is one
 * worker's loop: it calls `take()` for its next input (undefined when none are left) and reports each outcome.
 */
export async function runWorkers(inputs: string[], jobs: number, worker: (take: () => string | undefined) => Promise<void>): Promise<void> {
  let next = 0;
  const take = (): string | undefined => (next < inputs.length ? inputs[next++] : undefined);
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, inputs.length)) }, () => worker(take)));
}
