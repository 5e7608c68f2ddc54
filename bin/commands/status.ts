/**
 * `encodec-native status --out DIR`: where a sharded run (a job array) stands, read from its work list
 * (bin/work-list.ts, bin/batch-status.ts): per shard and per input done, failed (with the error) or missing, and
 * the `sbatch --array=...` line that runs the shards not done again. Exit 0 only when every input is done, else 1.
 */
import * as path from 'node:path';

import { Command } from 'commander';

import { toJson } from '../../lib/common/format';
import { UsageError, parseIntegerOption } from '../cli-util';
import { readManifest, selectInputs } from '../batch';
import { BatchStatus, batchStatus } from '../batch-status';
import { Plan, makePlan, planDifference, planPath, readPlan } from '../work-list';
import { plural } from '../../lib/common/format';

interface StatusOptions {
  out: string;
  manifest?: string;
  shards?: number;
  script?: string;
  json?: boolean;
}

/** The plan in `out`, checked against --manifest / --shards when given; or, before any task ran, the one they make. */
function planFor(opts: StatusOptions): Plan {
  const found = readPlan(opts.out);
  const inputs = opts.manifest === undefined ? undefined : selectInputs(readManifest(opts.manifest));
  if (!found) {
    if (!inputs || opts.shards === undefined) {
      // a missing input (the run's work list), not bad usage: exit 1 (docs/errors.md)
      throw Object.assign(
        new Error(
          `${planPath(opts.out)} does not exist: no sharded task has started in --out '${opts.out}'. ` +
            'Pass --manifest FILE and --shards N to see the whole list as missing, or check --out',
        ),
        { code: 'ENOENT' },
      );
    }
    return makePlan('extract', inputs, opts.shards);
  }
  const wanted = makePlan(found.command, inputs ?? found.inputs.map((e) => e.input), opts.shards ?? found.shards, found.concat ?? undefined);
  const difference = planDifference(found, wanted);
  if (difference) throw new UsageError(`${planPath(opts.out)} does not match --manifest / --shards: ${difference}`);
  return found;
}

function printText(status: BatchStatus): void {
  const lines = [
    `${status.out}: ${status.command}, ${plural(status.total, 'input')} in ${plural(status.shards, 'shard')}: ${status.done} done, ${status.failed} failed, ${status.missing} missing`,
  ];
  for (const shard of status.perShard) {
    const parts = [`${shard.done}/${shard.inputs} done`];
    if (shard.failed) parts.push(`${shard.failed} failed`);
    if (shard.missing) parts.push(`${shard.missing} missing`);
    lines.push(`  shard ${shard.shard}: ${parts.join(', ')}`);
    for (const s of status.inputs.filter((i) => i.shard === shard.shard && i.state !== 'done')) {
      const why = s.state === 'failed' && s.code && !s.message?.startsWith(s.code) ? `${s.code}: ${s.message}` : s.message;
      lines.push(`    ${s.state} ${s.input}: ${why}`);
    }
  }
  if (status.resubmit) {
    const n = status.resubmit.shards.length;
    lines.push(`${n} shard${n === 1 ? '' : 's'} not done (${status.resubmit.array}); run them again with:`, status.resubmit.command);
    lines.push(`then: encodec-native merge --out ${status.out}`);
  } else {
    lines.push(`all done; next: encodec-native merge --out ${status.out}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function statusCommand(): Command {
  return new Command('status')
    .description('where a sharded run (--shard, a job array) stands: per input done, failed or missing, and the sbatch line to resubmit what is not done; exit 0 only when all is done')
    .requiredOption('--out <dir>', 'the output folder of the sharded run')
    .option('--manifest <file>', 'the inputs (needed only before any task has started; else checked against the work list)')
    .option('--shards <n>', 'the N of --shard auto/N (as --manifest)', parseIntegerOption('--shards', 1))
    .option('--script <file>', 'job script to name in the resubmit line (default: the one the tasks recorded, ENCODEC_JOB_SCRIPT)')
    .option('--json', 'print the status as JSON')
    .action((opts: StatusOptions) => {
      const status = batchStatus(path.resolve(opts.out), planFor(opts), opts.script);
      if (opts.json) process.stdout.write(toJson(status));
      else printText(status);
      if (!status.complete) process.exitCode = 1;
    });
}
