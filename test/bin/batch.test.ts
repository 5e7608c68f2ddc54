/**
 * The batch runner shared by extract, encode and decode (bin/batch.ts): input selection, shards, manifests,
 * workers, the progress bar and the failure summary.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';

import { expect } from 'chai';

import { BatchReporter, batchInputs, failure, parseShard, parseShardIn, readManifest, runWorkers, selectInputs } from '../../bin/batch';
import { UsageError } from '../../bin/cli-util';
import { tempDir } from '../helpers/temp-dir';

/** A stream that records what is written, as a terminal (isTTY) or a pipe. */
function sink(tty: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough() as unknown as NodeJS.WriteStream & PassThrough;
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  Object.assign(stream, {
    isTTY: tty,
    columns: 80,
    cursorTo: (x: number) => { text += `<cursor ${x}>`; return true; },
    clearLine: () => true,
    moveCursor: () => true,
  });
  return { stream, text: () => text };
}

describe('batch runner (bin/batch.ts)', function () {
  const dir = tempDir('batch-runner');

  it('splits sorted, de-duplicated inputs into disjoint shards covering all of them', function () {
    const inputs = ['c.wav', 'a.wav', 'b.wav', './a.wav', 'd.wav'].map((p) => path.join(dir, p));
    const shards = [0, 1, 2].map((i) => selectInputs(inputs, parseShard(`${i}/3`)));
    expect(shards.flat().sort()).to.deep.equal(selectInputs(inputs));
    expect(selectInputs(inputs)).to.have.length(4);
    expect(shards[0]).to.deep.equal([path.join(dir, 'a.wav'), path.join(dir, 'd.wav')]);
    expect(() => parseShard('3/3')).to.throw(UsageError, /--shard must be i\/N/);
  });

  it('takes the index of --shard auto/N from the job array, never the count', function () {
    expect(parseShardIn('auto/4', { SLURM_ARRAY_TASK_ID: '2', SLURM_ARRAY_TASK_COUNT: '1' })).to.deep.equal({ index: 2, count: 4, source: 'SLURM_ARRAY_TASK_ID' });
    expect(parseShardIn('auto/4', { JOB_COMPLETION_INDEX: '3' })).to.deep.equal({ index: 3, count: 4, source: 'JOB_COMPLETION_INDEX' });
    expect(parseShardIn(' AUTO / 4 ', { AWS_BATCH_JOB_ARRAY_INDEX: '0' })).to.deep.equal({ index: 0, count: 4, source: 'AWS_BATCH_JOB_ARRAY_INDEX' });
    // Slurm first, whatever else is set
    expect(parseShardIn('auto/4', { AWS_BATCH_JOB_ARRAY_INDEX: '0', SLURM_ARRAY_TASK_ID: '1' }).source).to.equal('SLURM_ARRAY_TASK_ID');
    expect(() => parseShardIn('auto/4', {})).to.throw(UsageError, /none is set: submit it as an array job \(sbatch --array=0-3 \.\.\.\), or pass --shard i\/4/);
    expect(() => parseShardIn('auto/4', { SLURM_ARRAY_TASK_ID: '4' })).to.throw(UsageError, /SLURM_ARRAY_TASK_ID=4 is not a shard of --shard auto\/4 \(0 \.\.\. 3\)/);
    expect(() => parseShardIn('auto/4', { SLURM_ARRAY_TASK_ID: 'x' })).to.throw(UsageError, /SLURM_ARRAY_TASK_ID=x is not a shard/);
    expect(() => parseShardIn('auto/0', { SLURM_ARRAY_TASK_ID: '0' })).to.throw(UsageError, /needs N >= 1/);
  });

  it('records each outcome through its sink, in order, before flush resolves', async function () {
    const recorded: string[] = [];
    const keeper = { record: async (o: { input: string; status: string; code?: string }) => { await new Promise((r) => setTimeout(r, 5)); recorded.push(`${o.input} ${o.status} ${o.code ?? ''}`); } };
    const reporter = new BatchReporter(2, sink(false).stream, keeper);
    reporter.report({ input: 'a', status: 'written', message: 'ok', outputs: ['a.npy'] });
    reporter.report(failure('b', Object.assign(new Error('bad'), { code: 'ENCODEC_MEDIA' })));
    await reporter.flush();
    expect(recorded).to.deep.equal(['a written ', 'b failed ENCODEC_MEDIA']);
    expect(failure('c', 'text')).to.deep.equal({ input: 'c', status: 'failed', message: 'text' });
    // a record that cannot be written fails flush (and does not end the process as an unhandled rejection)
    const broken = new BatchReporter(1, sink(false).stream, { record: () => Promise.reject(new Error('disk full')) });
    broken.report({ input: 'd', status: 'written', message: 'ok' });
    await new Promise((resolve) => setTimeout(resolve, 20));
    let thrown: unknown;
    await broken.flush().catch((err: unknown) => (thrown = err));
    expect((thrown as Error).message).to.equal('disk full');
  });

  it('reads manifests relative to their directory and refuses outputs that would collide', function () {
    const manifest = path.join(dir, 'list.txt');
    fs.writeFileSync(manifest, '# inputs\nsub/x.wav  # first\n\nsub/y.flac\n');
    expect(readManifest(manifest)).to.deep.equal([path.join(dir, 'sub', 'x.wav'), path.join(dir, 'sub', 'y.flac')]);
    const out = path.join(dir, 'out');
    expect(batchInputs([], { manifest, jobs: 1 }, out, '--out-dir', '.npy')).to.have.length(2);
    expect(fs.statSync(out).isDirectory()).to.equal(true);
    expect(() => batchInputs([path.join(dir, 'a', 'x.wav'), path.join(dir, 'b', 'x.flac')], { jobs: 1 }, out, '--out-dir', '.npy'))
      .to.throw(UsageError, /would both write .*x\.npy/);
    expect(() => batchInputs([], { jobs: 1 }, out, '--out-dir', '.npy', 'codes files')).to.throw(UsageError, /no inputs: pass codes files or --manifest FILE/);
  });

  it('hands every input to exactly one of the workers', async function () {
    const inputs = Array.from({ length: 9 }, (_, i) => `in${i}`);
    const seen: string[][] = [];
    await runWorkers(inputs, 3, async (take) => {
      const mine: string[] = [];
      seen.push(mine);
      for (let input = take(); input !== undefined; input = take()) {
        mine.push(input);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    });
    expect(seen).to.have.length(3);
    expect(seen.flat().sort()).to.deep.equal(inputs);
  });

  it('summarises outcomes with the failures listed, and draws a bar on a terminal', function () {
    const exitCode = process.exitCode;
    try {
      const tty = sink(true);
      const reporter = new BatchReporter(3, tty.stream);
      reporter.working('/x/one.wav');
      reporter.report({ input: '/x/one.wav', status: 'written', message: 'ok' });
      reporter.report({ input: '/x/two.wav', status: 'failed', message: 'broken file' });
      reporter.report({ input: '/x/three.wav', status: 'skipped', message: 'exists' });
      reporter.finish('encode', { index: 1, count: 2 });
      expect(tty.text()).to.match(/\[#{30}\] 3\/3, 1 failed three\.wav/);
      expect(tty.text()).to.match(/encodec-native: error: \/x\/two\.wav: broken file/);
      expect(tty.text()).to.match(/encode: 3 inputs \(shard 1\/2\): 1 written, 1 skipped, 1 failed\n {2}failed: \/x\/two\.wav: broken file\n/);
      expect(process.exitCode).to.equal(1);
    } finally {
      process.exitCode = exitCode;
    }
  });
});
