/**
 * `encodec-native merge --out DIR`: once every shard of a sharded run is done, joins what the tasks wrote into
 * the files one process writes for the same command: with `extract --concat`, the HDF5 file with `X` and
 * `run_onsets` of every run in input order, byte for byte the one a single-machine run writes (the runs are read
 * back bit for bit from the parts the records name: lib/fmri/features-part.ts). Per-input outputs need no
 * joining; merge then checks that all are done and prints the run's summary. Not done: nothing is written, exit 1.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Command } from 'commander';

import type { FeatureSet } from '../../lib/fmri/feature-set';
import { readFeaturesPart } from '../../lib/fmri/features-part';
import { writeConcatH5 } from '../../lib/fmri/h5';
import { isEventsFile } from '../../lib/fmri/bids';
import { derivativeConcatBase, writeSidecar } from '../../lib/fmri/bids-derivative';
import { concatSidecar } from '../../lib/fmri/derivative-sidecar';
import { UsageError } from '../cli-util';
import { batchStatus } from '../batch-status';
import { PART_EXT, planPath, readPlan } from '../work-list';
import { plural } from '../../lib/common/format';

export function mergeCommand(): Command {
  return new Command('merge')
    .description("join a finished sharded run's outputs into what one machine writes (extract --concat: the X / run_onsets HDF5 file)")
    .requiredOption('--out <dir>', 'the output folder of the sharded run')
    .action(async (opts: { out: string }) => {
      const out = path.resolve(opts.out);
      const plan = readPlan(out);
      if (!plan) {
        // a missing input (the run's work list), not bad usage: exit 1 (docs/errors.md)
        throw Object.assign(new Error(`${planPath(out)} does not exist: --out '${opts.out}' holds no sharded run (a run with --shard writes it)`), { code: 'ENOENT' });
      }
      const status = batchStatus(out, plan);
      const summary = `${plan.command}: ${plural(status.total, 'input')} in ${plural(status.shards, 'shard')}: ${status.done} done, ${status.failed} failed, ${status.missing} missing`;
      if (!status.complete) {
        process.stderr.write(
          `encodec-native: error: ${summary}; nothing merged. See \`encodec-native status --out ${opts.out}\`, then run: ${status.resubmit?.command}\n`,
        );
        process.exitCode = 1;
        return;
      }
      if (plan.concat) {
        const runs: FeatureSet[] = [];
        for (const s of status.inputs) {
          const part = s.outputs?.find((f) => f.endsWith(PART_EXT));
          if (!part) throw new UsageError(`the record of ${s.input} names no features for --concat: rerun its shard (${s.shard}) with --force`);
          runs.push(await readFeaturesPart(part));
        }
        const file = path.join(out, plan.concat);
        await fs.promises.mkdir(path.dirname(file), { recursive: true });
        await writeConcatH5(file, runs);
        // a BIDS derivative's concatenated runs carry a sidecar, as one machine writes it
        const inputs = status.inputs.map((s) => s.input);
        if (inputs.every(isEventsFile) && derivativeConcatBase(out, inputs) !== undefined) await writeSidecar(file, concatSidecar(inputs, runs));
        process.stderr.write(`${plan.command}: ${plural(runs.length, 'run')} (${plural(runs.reduce((n, r) => n + r.shape[0], 0), 'volume')}) -> ${file}\n`);
      }
      process.stderr.write(`${summary}\n`);
    });
}
