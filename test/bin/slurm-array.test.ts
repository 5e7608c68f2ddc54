/**
 * extract as a Slurm job array on a real single-node Slurm (test/helpers/slurm.ts): examples/slurm/extract.sbatch,
 * submitted as written over 8 real stimuli in 4 shards, one task cancelled mid-run; `status` must name exactly the
 * missing input and print the resubmit line, which is run; `merge` then writes the `--concat` file, compared byte for
 * byte with a one-machine run. The cancelled task is stopped at a known point: the second input of its shard is a
 * named pipe until then, so the task has written its first input and blocks reading the second when it is cancelled.
 * Jobs are waited for by polling squeue (no accounting here, so no sacct), outcomes read from the files.
 * Skipped, saying why, only where Slurm cannot be installed or started (no packages, not root).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { CLI, cli } from '../helpers/cli';
import { makeSpeech24k } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { Cluster, slurmUnavailable, startCluster } from '../helpers/slurm';
import { tempDir } from '../helpers/temp-dir';

const SCRIPT = path.join(PACKAGE_ROOT, 'examples', 'slurm', 'extract.sbatch');
const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel'];

/** Every file under `dir` but the work list, by relative path. */
function outputFiles(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const walk = (sub: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = path.join(sub, entry.name);
      if (entry.isDirectory()) {
        if (rel !== '.encodec-batch') walk(rel);
      } else {
        files.set(rel, fs.readFileSync(path.join(dir, rel)));
      }
    }
  };
  walk('');
  return files;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('extract as a Slurm job array (examples/slurm/extract.sbatch on a real Slurm)', function () {
  this.timeout(600000);
  const dir = tempDir('slurm');
  let cluster: Cluster | undefined;

  before(async function () {
    const why = slurmUnavailable();
    if (why) {
      console.log(`      skipped: ${why}`); // eslint-disable-line no-console
      this.skip();
    }
    cluster = await startCluster();
  });

  after(async function () {
    await cluster?.stop();
  });

  it('runs 8 stimuli in 4 shards, names the input of a cancelled task, resubmits it and merges byte for byte', async function () {
    const env = (cluster as Cluster).env;
    const model = await randomModel(0);
    const stimuli = path.join(dir, 'stimuli');
    fs.mkdirSync(stimuli);
    const inputs: string[] = [];
    for (const [i, word] of WORDS.entries()) {
      const file = path.join(stimuli, `stim-${i + 1}.wav`);
      fs.copyFileSync(await makeSpeech24k(dir, `${word} ${i + 1}`, 2 + (i % 3) * 0.5), file);
      inputs.push(file);
    }
    const manifest = path.join(dir, 'manifest.txt');
    fs.writeFileSync(manifest, `# the stimuli, listed out of order\n${[...inputs].reverse().map((f) => path.relative(dir, f)).join('\n')}\n`);
    const extractOptions = '--format h5 --concat --tr 1.5';

    // the one-machine run to compare with
    const single = path.join(dir, 'single');
    const r = cli(['extract', '--manifest', manifest, '--out', single, '--model', model, '--threads', '1', ...extractOptions.split(' ')]);
    expect(r.status, r.stderr).to.equal(0);

    // `encodec-native` on PATH as an install puts it there; the script's settings through the environment
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'encodec-native'), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`, { mode: 0o755 });
    const submitDir = path.join(dir, 'submit');
    fs.mkdirSync(submitDir);
    const out = path.join(dir, 'array');
    const jobEnv = {
      ...env,
      PATH: `${bin}:${env.PATH}`,
      MANIFEST: manifest,
      OUT_DIR: out,
      SHARDS: '4',
      THREADS: '1',
      EXTRACT_OPTIONS: extractOptions,
      ENCODEC_MODEL: model,
    };

    // shard 1 holds stim-2 and stim-6 (sorted positions 1 and 5): stim-6 is a pipe nobody writes to, for now
    const held = path.join(dir, 'stim-6.wav.real');
    fs.renameSync(inputs[5], held);
    expect(spawnSync('mkfifo', [inputs[5]]).status).to.equal(0);

    const submit = spawnSync('sbatch', ['--parsable', '--array=0-3', SCRIPT], { cwd: submitDir, env: jobEnv, encoding: 'utf8' });
    const job = submit.stdout.trim().split(';')[0];
    expect(job, submit.stderr).to.match(/^\d+$/);
    const records = path.join(out, '.encodec-batch', 'outcomes');
    const recorded = (): string[] => (fs.existsSync(records) ? fs.readdirSync(records).filter((f) => f.endsWith('.json')).sort() : []);
    // every input but stim-6 recorded: shards 0, 2 and 3 are finished and task 1 is blocked on the pipe
    for (let waited = 0; recorded().length < 7; waited += 500) {
      if (waited > 300000) throw new Error(`tasks did not finish: ${recorded().join(' ')}`);
      await sleep(250);
    }
    expect(spawnSync('scancel', [`${job}_1`], { env }).status).to.equal(0);
    await (cluster as Cluster).waitForJob(job);
    expect(recorded()).to.deep.equal(['0.json', '1.json', '2.json', '3.json', '4.json', '6.json', '7.json']);
    fs.rmSync(inputs[5]);
    fs.renameSync(held, inputs[5]);

    // status names exactly the missing input and the line that runs its shard again
    const line = `sbatch --array=1 --chdir=${submitDir} ${SCRIPT}`;
    let s = cli(['status', '--out', out], jobEnv);
    expect(s.status, s.stderr).to.equal(1);
    expect(s.stdout).to.include('8 inputs in 4 shards: 7 done, 0 failed, 1 missing');
    expect(s.stdout).to.include(`missing ${inputs[5]}:`);
    expect(s.stdout.split('\n')).to.include(line);
    s = cli(['status', '--out', out, '--json', '--manifest', manifest, '--shards', '4'], jobEnv);
    const json = JSON.parse(s.stdout) as { inputs: { input: string; state: string }[]; resubmit: { command: string; array: string } };
    expect(json.inputs.filter((i) => i.state !== 'done').map((i) => i.input)).to.deep.equal([inputs[5]]);
    expect(json.resubmit).to.include({ command: line, array: '1' });
    expect(cli(['merge', '--out', out], jobEnv).status).to.equal(1);
    expect(fs.existsSync(path.join(out, 'concat_desc-encodec_features.h5'))).to.equal(false);

    // the resubmit line as printed (with --parsable, to wait for its job), then merge
    const again = spawnSync('bash', ['-c', line.replace(/^sbatch /, 'sbatch --parsable ')], { cwd: dir, env: jobEnv, encoding: 'utf8' });
    expect(again.status, again.stderr).to.equal(0);
    const againJob = again.stdout.trim().split(';')[0];
    await (cluster as Cluster).waitForJob(againJob);
    // the task resumed: stim-2's features were kept, stim-6's extracted
    const log = fs.readFileSync(path.join(submitDir, `slurm-encodec-extract-${againJob}_1.out`), 'utf8');
    expect(log).to.match(/extract: 2 inputs \(shard 1\/4 from SLURM_ARRAY_TASK_ID\): 1 written, 1 skipped, 0 failed/);
    s = cli(['status', '--out', out], jobEnv);
    expect(s.status, s.stdout).to.equal(0);
    expect(s.stdout).to.include('8 inputs in 4 shards: 8 done, 0 failed, 0 missing');
    const m = cli(['merge', '--out', out], jobEnv);
    expect(m.status, m.stderr).to.equal(0);

    const expected = outputFiles(single);
    const actual = outputFiles(out);
    expect([...actual.keys()].sort()).to.deep.equal([...expected.keys()].sort());
    expect([...expected.keys()]).to.deep.equal(['concat_desc-encodec_features.h5']);
    for (const [name, bytes] of expected) expect((actual.get(name) as Buffer).equals(bytes), `${name} differs`).to.equal(true);
  });
});
