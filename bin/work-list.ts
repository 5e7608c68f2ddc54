/**
 * The work list of a sharded batch run (`--shard i/N` or `auto/N`), kept in the output folder so that the tasks
 * of a job array, `status` and `merge` agree on it from any machine that sees the folder:
 *
 * - `OUT/.encodec-batch/plan.json`: the command, the number of shards, the rule and every input with its shard.
 *   The first task writes it; every later task (a resubmitted one too) must compute the same plan, else it stops
 *   with a usage error before doing anything: the assignment never changes under a running array.
 * - `OUT/.encodec-batch/outcomes/<position>.json`: what became of the input at that position of the plan
 *   (done, failed with the error code and message, or skipped because its outputs existed), with the files that
 *   hold its result, written atomically after those files. A task killed at any moment leaves either a complete
 *   record of finished outputs or none (the input is then missing), never a record of partial output.
 * - `OUT/.encodec-batch/parts/<position>.featureset`: with `extract --concat`, each run's features until `merge`
 *   joins them (lib/fmri/features-part.ts).
 *
 * Readers find outputs through the records, never by recomputing output names.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { writeFileAtomic } from '../lib/common/atomic';
import { UsageError } from './cli-util';
import type { Outcome, OutcomeSink, Shard } from './batch';
import { formatNumber, plural } from '../lib/common/format';

/** The folder of the work list inside the output folder (hidden: BIDS tools and globs pass it by). */
export const WORK_DIR = '.encodec-batch';
/** The extension of `--concat` part files. */
export const PART_EXT = '.featureset';

const FORMAT = 'encodec-native work list 1';
const RULE = 'inputs sorted by absolute path; the input at position j goes to shard j % shards';

/** The assignment of inputs to shards. */
export interface Plan {
  format: string;
  command: string;
  shards: number;
  rule: string;
  /** With `extract --concat`: the file (relative to the output folder) `merge` writes from the parts. */
  concat: string | null;
  /** Every input (absolute, sorted) with its shard. */
  inputs: { input: string; shard: number }[];
}

/** The array task that wrote a record, from the engine's variables. */
export interface JobInfo {
  engine: 'slurm' | 'kubernetes' | 'aws-batch';
  job?: string;
  task?: string;
  /** Slurm: the folder sbatch was run in. */
  submitDir?: string;
  /** The job script (ENCODEC_JOB_SCRIPT, which examples/slurm/extract.sbatch sets). */
  script?: string;
}

/** One input's outcome, as a record file holds it. */
export interface OutcomeRecord {
  input: string;
  shard: number;
  status: 'done' | 'failed' | 'skipped';
  code?: string;
  message: string;
  /** The files holding the result, relative to the output folder. */
  outputs: string[];
  host: string;
  pid: number;
  job?: JobInfo;
  /** ISO time the record was written. */
  time: string;
}

/** The plan of `inputs` (resolved, de-duplicated, sorted: bin/batch.ts selectInputs) in `shards` shards. */
export function makePlan(command: string, inputs: string[], shards: number, concat?: string): Plan {
  return {
    format: FORMAT,
    command,
    shards,
    rule: RULE,
    concat: concat ?? null,
    inputs: inputs.map((input, j) => ({ input, shard: j % shards })),
  };
}

export function workDir(out: string): string {
  return path.join(out, WORK_DIR);
}

export function planPath(out: string): string {
  return path.join(workDir(out), 'plan.json');
}

/** The plan in `out`, or undefined when no sharded run has started there. */
export function readPlan(out: string): Plan | undefined {
  const file = planPath(out);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let plan: Plan;
  try {
    plan = JSON.parse(text) as Plan;
  } catch {
    throw new UsageError(`${file} is not a work list (not JSON); remove ${workDir(out)} to start the sharded run over`);
  }
  if (plan.format !== FORMAT) throw new UsageError(`${file} is not a work list this version reads (format '${String(plan.format)}')`);
  return plan;
}

/** How `found` differs from `wanted`, in words, or undefined when they are the same plan. */
export function planDifference(found: Plan, wanted: Plan): string | undefined {
  if (found.command !== wanted.command) return `it is a work list of '${found.command}', this is '${wanted.command}'`;
  if (found.shards !== wanted.shards) return `it splits the inputs into ${found.shards} shards, this run into ${wanted.shards}`;
  const had = new Set(found.inputs.map((e) => e.input));
  const has = new Set(wanted.inputs.map((e) => e.input));
  const added = wanted.inputs.filter((e) => !had.has(e.input));
  const removed = found.inputs.filter((e) => !has.has(e.input));
  if (added.length || removed.length) {
    const first = added.length ? `e.g. ${added[0].input} is new` : `e.g. ${removed[0].input} is no longer listed`;
    return `its ${plural(found.inputs.length, 'input')} are not this run's ${formatNumber(wanted.inputs.length)} (${added.length} added, ${removed.length} removed; ${first})`;
  }
  if (found.concat !== wanted.concat) return `it was ${found.concat ? `made with --concat (${found.concat})` : 'made without --concat'}, this run is ${wanted.concat ? 'with' : 'without'} it`;
  return undefined;
}

/**
 * The plan of a sharded run in `out`: `wanted` written there when no plan is (every task computes the same
 * bytes, so tasks starting together may all write it), else the plan there, which must equal `wanted`.
 */
export async function ensurePlan(out: string, wanted: Plan): Promise<Plan> {
  for (const sub of ['outcomes', 'parts']) await fs.promises.mkdir(path.join(workDir(out), sub), { recursive: true });
  const found = readPlan(out);
  if (found) {
    const difference = planDifference(found, wanted);
    if (difference) {
      throw new UsageError(
        `${planPath(out)} holds the work list of an earlier sharded run, and ${difference}: ` +
          `rerun with the same inputs and shard count, or use another output folder (or remove ${workDir(out)} to start over)`,
      );
    }
    return found;
  }
  await writeFileAtomic(planPath(out), Buffer.from(`${JSON.stringify(wanted, null, 1)}\n`));
  return wanted;
}

/** The array task this process is, from the engine's variables in `env`. */
export function jobInfo(env: NodeJS.ProcessEnv = process.env): JobInfo | undefined {
  const script = env.ENCODEC_JOB_SCRIPT || undefined;
  if (env.SLURM_ARRAY_TASK_ID !== undefined || env.SLURM_JOB_ID !== undefined) {
    return {
      engine: 'slurm',
      job: env.SLURM_ARRAY_JOB_ID ?? env.SLURM_JOB_ID,
      task: env.SLURM_ARRAY_TASK_ID,
      submitDir: env.SLURM_SUBMIT_DIR,
      script,
    };
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) return { engine: 'kubernetes', task: env.JOB_COMPLETION_INDEX, script };
  if (env.AWS_BATCH_JOB_ARRAY_INDEX !== undefined) {
    return { engine: 'aws-batch', job: env.AWS_BATCH_JOB_ID, task: env.AWS_BATCH_JOB_ARRAY_INDEX, script };
  }
  return undefined;
}

function recordPath(out: string, position: number): string {
  return path.join(workDir(out), 'outcomes', `${position}.json`);
}

/** The outcome records of every input of `plan` in `out`, by position (undefined: none written yet). */
export function readRecords(out: string, plan: Plan): (OutcomeRecord | undefined)[] {
  return plan.inputs.map((entry, position) => readRecordAt(recordPath(out, position), entry.input));
}

/** One task's part of a sharded run: its inputs, where its `--concat` parts go, and its outcome records. */
export class WorkList implements OutcomeSink {
  private readonly positions = new Map<string, number>();

  constructor(readonly out: string, readonly plan: Plan, readonly shard: Shard, private readonly job = jobInfo()) {
    plan.inputs.forEach((e, j) => this.positions.set(e.input, j));
  }

  /** The plan of `inputs` in `out` for `shard` (see ensurePlan), and this task's part of it. */
  static async open(out: string, command: string, inputs: string[], shard: Shard, concat?: string): Promise<WorkList> {
    const plan = await ensurePlan(out, makePlan(command, inputs, shard.count, concat));
    return new WorkList(out, plan, shard);
  }

  /** This shard's inputs, in plan order. */
  inputs(): string[] {
    return this.plan.inputs.filter((e) => e.shard === this.shard.index).map((e) => e.input);
  }

  private position(input: string): number {
    const position = this.positions.get(input);
    if (position === undefined) throw new Error(`${input} is not in the work list ${planPath(this.out)}`);
    return position;
  }

  /** Where `extract --concat` keeps the features of `input` for `merge`. */
  partPath(input: string): string {
    return path.join(workDir(this.out), 'parts', `${this.position(input)}${PART_EXT}`);
  }

  /** Writes the record of `outcome` (a skip keeps an earlier record of the input being done). */
  async record(outcome: Outcome): Promise<void> {
    const position = this.position(outcome.input);
    const file = recordPath(this.out, position);
    if (outcome.status === 'skipped') {
      if (readRecordAt(file, outcome.input)?.status === 'done') return;
    }
    const record: OutcomeRecord = {
      input: outcome.input,
      shard: this.plan.inputs[position].shard,
      status: outcome.status === 'written' ? 'done' : outcome.status,
      ...(outcome.code ? { code: outcome.code } : {}),
      message: outcome.message,
      outputs: (outcome.outputs ?? []).map((f) => path.relative(this.out, path.resolve(f))),
      host: os.hostname(),
      pid: process.pid,
      ...(this.job ? { job: this.job } : {}),
      time: new Date().toISOString(),
    };
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, Buffer.from(`${JSON.stringify(record, null, 1)}\n`));
  }
}

/** The record in `file` if it is one of `input` (none yet: undefined; records are renamed into place whole). */
function readRecordAt(file: string, input: string): OutcomeRecord | undefined {
  try {
    const record = JSON.parse(fs.readFileSync(file, 'utf8')) as OutcomeRecord;
    return record.input === input ? record : undefined;
  } catch {
    return undefined;
  }
}
