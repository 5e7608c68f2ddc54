/**
 * Where a sharded run stands, from its work list (bin/work-list.ts): per input and per shard done, failed (with
 * the error) or missing, and the `sbatch --array=...` line that runs again the shards not done. An input is done
 * only when its record says so and every file the record names exists.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { OutcomeRecord, Plan, readRecords } from './work-list';

export interface InputStatus {
  input: string;
  shard: number;
  state: 'done' | 'failed' | 'missing';
  /** A failure's error code. */
  code?: string;
  /** Why it failed or is missing, or what was written. */
  message?: string;
  /** Done: the files holding its result (absolute). */
  outputs?: string[];
}

export interface ShardStatus {
  shard: number;
  inputs: number;
  done: number;
  failed: number;
  missing: number;
}

export interface BatchStatus {
  out: string;
  command: string;
  shards: number;
  total: number;
  done: number;
  failed: number;
  missing: number;
  /** Every input done. */
  complete: boolean;
  perShard: ShardStatus[];
  inputs: InputStatus[];
  /** The shards to run again (those with an input failed or missing) and how. */
  resubmit?: { shards: number[]; array: string; command: string };
}

/** `[0, 1, 2, 5, 7, 8]` as Slurm's `0-2,5,7-8`. */
export function arrayRanges(indices: number[]): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j === i ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j;
  }
  return parts.join(',');
}

/** A word for the shell: as it is when it is plain, else single-quoted. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function inputStatus(out: string, entry: Plan['inputs'][number], record: OutcomeRecord | undefined): InputStatus {
  const base = { input: entry.input, shard: entry.shard };
  if (!record) return { ...base, state: 'missing', message: 'no outcome recorded (not run yet, still running, or its task was killed)' };
  if (record.status === 'failed') return { ...base, state: 'failed', code: record.code, message: record.message };
  const outputs = record.outputs.map((f) => path.resolve(out, f));
  const gone = outputs.find((f) => !fs.existsSync(f));
  if (gone) return { ...base, state: 'missing', message: `${gone} was recorded but is gone` };
  return { ...base, state: 'done', message: record.message, outputs };
}

/**
 * The job script and folder to resubmit with: `script` when given, else the latest the records name
 * (ENCODEC_JOB_SCRIPT and Slurm's submit folder), else `<command>.sbatch` in the current folder.
 */
function resubmitCommand(plan: Plan, records: (OutcomeRecord | undefined)[], array: string, script?: string): string {
  const jobs = records
    .filter((r): r is OutcomeRecord => r?.job !== undefined)
    .sort((a, b) => a.time.localeCompare(b.time))
    .map((r) => r.job);
  const last = jobs[jobs.length - 1];
  const words = ['sbatch', `--array=${array}`];
  if (last?.submitDir) words.push(`--chdir=${last.submitDir}`);
  words.push(script ?? jobs.reverse().find((j) => j?.script)?.script ?? `${plan.command}.sbatch`);
  return words.map(shellWord).join(' ');
}

/** Where the run in `out` with `plan` stands (`script`: the job script to name in the resubmit line). */
export function batchStatus(out: string, plan: Plan, script?: string): BatchStatus {
  const records = readRecords(out, plan);
  const inputs = plan.inputs.map((entry, j) => inputStatus(out, entry, records[j]));
  const perShard: ShardStatus[] = Array.from({ length: plan.shards }, (_, shard) => {
    const mine = inputs.filter((s) => s.shard === shard);
    const count = (state: InputStatus['state']): number => mine.filter((s) => s.state === state).length;
    return { shard, inputs: mine.length, done: count('done'), failed: count('failed'), missing: count('missing') };
  });
  const count = (state: InputStatus['state']): number => inputs.filter((s) => s.state === state).length;
  const redo = perShard.filter((s) => s.failed + s.missing > 0).map((s) => s.shard);
  const status: BatchStatus = {
    out,
    command: plan.command,
    shards: plan.shards,
    total: inputs.length,
    done: count('done'),
    failed: count('failed'),
    missing: count('missing'),
    complete: redo.length === 0,
    perShard,
    inputs,
  };
  if (redo.length) {
    const array = arrayRanges(redo);
    status.resubmit = { shards: redo, array, command: resubmitCommand(plan, records, array, script) };
  }
  return status;
}
