/**
 * The work list of a sharded run (bin/work-list.ts) and what status makes of it (bin/batch-status.ts): the plan
 * every task must agree on, records written after the outputs, a skip keeping an earlier done record, an output
 * that is gone counting as missing, the resubmit line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { UsageError } from '../../bin/cli-util';
import { arrayRanges, batchStatus, shellWord } from '../../bin/batch-status';
import { WorkList, ensurePlan, jobInfo, makePlan, readPlan, readRecords } from '../../bin/work-list';
import { tempDir } from '../helpers/temp-dir';

describe('work list of a sharded run (bin/work-list.ts, bin/batch-status.ts)', function () {
  const dir = tempDir('work-list');
  const inputs = ['a', 'b', 'c', 'd', 'e'].map((n) => path.join(dir, 'in', `${n}.wav`));

  it('writes the plan once and refuses a task whose inputs or shard count differ', async function () {
    const out = path.join(dir, 'plan');
    const plan = makePlan('extract', inputs, 2);
    expect(plan.inputs.map((e) => e.shard)).to.deep.equal([0, 1, 0, 1, 0]);
    // tasks starting together all write the same plan
    await Promise.all([ensurePlan(out, plan), ensurePlan(out, makePlan('extract', inputs, 2))]);
    expect(readPlan(out)).to.deep.equal(plan);
    await ensurePlan(out, makePlan('extract', inputs, 2)).catch((err: Error) => expect.fail(err.message));
    const cases: [ReturnType<typeof makePlan>, RegExp][] = [
      [makePlan('extract', inputs, 3), /splits the inputs into 2 shards, this run into 3/],
      [makePlan('extract', [...inputs, path.join(dir, 'f.wav')], 2), /its 5 inputs are not this run's 6 \(1 added, 0 removed; e\.g\. .*f\.wav is new\)/],
      [makePlan('encode', inputs, 2), /work list of 'extract', this is 'encode'/],
      [makePlan('extract', inputs, 2, 'concat.h5'), /made without --concat/],
    ];
    for (const [wanted, pattern] of cases) {
      const err = await ensurePlan(out, wanted).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(UsageError);
      expect((err as Error).message).to.match(pattern).and.to.match(/rerun with the same inputs and shard count/);
    }
  });

  it('records outcomes that status reads: done, failed with its code, missing, and outputs that are gone', async function () {
    const out = path.join(dir, 'records');
    const job = { engine: 'slurm' as const, job: '41', task: '0', submitDir: '/home/me/study', script: '/home/me/study/run it.sbatch' };
    const work0 = new WorkList(out, await ensurePlan(out, makePlan('extract', inputs, 2)), { index: 0, count: 2 }, job);
    expect(work0.inputs()).to.deep.equal([inputs[0], inputs[2], inputs[4]]);
    const written = (name: string): string => {
      const file = path.join(out, name);
      fs.writeFileSync(file, name);
      return file;
    };
    await work0.record({ input: inputs[0], status: 'written', message: 'ok', outputs: [written('a.npy'), written('a.csv')] });
    await work0.record({ input: inputs[2], status: 'failed', message: 'cannot read audio file', code: 'ENCODEC_MEDIA' });
    await work0.record({ input: inputs[4], status: 'written', message: 'ok', outputs: [written('e.npy')] });
    // a rerun that skips a done input keeps its record
    await work0.record({ input: inputs[0], status: 'skipped', message: 'exists', outputs: [path.join(out, 'a.npy')] });
    expect(readRecords(out, work0.plan)[0]).to.include({ status: 'done', message: 'ok' });
    expect(readRecords(out, work0.plan)[0]?.outputs).to.deep.equal(['a.npy', 'a.csv']);
    fs.rmSync(path.join(out, 'e.npy'));
    const work1 = new WorkList(out, work0.plan, { index: 1, count: 2 }, undefined);
    await work1.record({ input: inputs[3], status: 'skipped', message: 'exists', outputs: [written('d.npy')] });

    const status = batchStatus(out, work0.plan);
    expect(status.inputs.map((s) => s.state)).to.deep.equal(['done', 'missing', 'failed', 'done', 'missing']);
    expect(status.inputs[2]).to.include({ code: 'ENCODEC_MEDIA', message: 'cannot read audio file' });
    expect(status.inputs[4].message).to.equal(`${path.join(out, 'e.npy')} was recorded but is gone`);
    expect(status.inputs[0].outputs).to.deep.equal([path.join(out, 'a.npy'), path.join(out, 'a.csv')]);
    expect(status.perShard).to.deep.equal([
      { shard: 0, inputs: 3, done: 1, failed: 1, missing: 1 },
      { shard: 1, inputs: 2, done: 1, failed: 0, missing: 1 },
    ]);
    expect(status).to.include({ total: 5, done: 2, failed: 1, missing: 2, complete: false });
    expect(status.resubmit).to.deep.equal({ shards: [0, 1], array: '0-1', command: "sbatch --array=0-1 --chdir=/home/me/study '/home/me/study/run it.sbatch'" });
    expect(batchStatus(out, work0.plan, 'x.sbatch').resubmit?.command).to.equal('sbatch --array=0-1 --chdir=/home/me/study x.sbatch');
  });

  it('reads the array task from the engine variables and writes Slurm array ranges', function () {
    expect(jobInfo({ SLURM_JOB_ID: '9', SLURM_ARRAY_JOB_ID: '7', SLURM_ARRAY_TASK_ID: '2', SLURM_SUBMIT_DIR: '/s', ENCODEC_JOB_SCRIPT: '/s/x.sbatch' }))
      .to.deep.equal({ engine: 'slurm', job: '7', task: '2', submitDir: '/s', script: '/s/x.sbatch' });
    expect(jobInfo({ JOB_COMPLETION_INDEX: '3' })).to.deep.equal({ engine: 'kubernetes', task: '3', script: undefined });
    expect(jobInfo({})).to.equal(undefined);
    expect(arrayRanges([7, 0, 2, 1, 5, 8, 2])).to.equal('0-2,5,7-8');
    expect(shellWord("it's")).to.equal(`'it'\\''s'`);
    expect(shellWord('--chdir=/a/b')).to.equal('--chdir=/a/b');
  });
});
