/**
 * `encode` and `decode` with many inputs (`--out-dir`, `--manifest`, `--shard`, `--jobs`, resume, `--force`), run
 * as a user would: one output per input, identical to encoding each input alone, failures summarised; a sharded
 * run's work list read back by `status` and `merge`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { Encodec } from '../../lib/codec/codec';
import { loadAudio } from '../../lib/io/audio';
import { readCodesNpy } from '../../lib/io/codes-file';
import { readWav } from '../../lib/io/wav';
import { expectCodesWithinRounding } from '../helpers/assert';
import { cli } from '../helpers/cli';
import { makeSpeech } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

describe('encode / decode CLI with many inputs', function () {
  const dir = tempDir('codec-batch-cli');
  let model: string;
  let inputs: string[];
  let junk: string;

  before(async function () {
    model = await randomModel(0);
    const sources = [
      await makeSpeech(dir, 'Short.', 0.4),
      await makeSpeech(dir, 'A clip of a little over one second.', 1.3),
      await makeSpeech(dir, 'And a third clip, a little longer than two seconds.', 2.1),
    ];
    fs.mkdirSync(path.join(dir, 'in'));
    inputs = sources.map((s, i) => {
      const file = path.join(dir, 'in', `clip${i}.wav`);
      fs.copyFileSync(s, file);
      return file;
    });
    junk = path.join(dir, 'in', 'junk.flac');
    fs.writeFileSync(junk, Buffer.from('not audio at all '.repeat(40)));
  });

  it('encodes each input to DIR/<name>.npy as encoding it alone does, and reports failures', async function () {
    const out = path.join(dir, 'codes');
    const r = cli(['encode', ...inputs, junk, '--out-dir', out, '--model', model, '--bandwidth', '3']);
    expect(r.stderr).to.match(/encode: 4 inputs: 3 written, 0 skipped, 1 failed/);
    expect(r.stderr).to.match(/failed: .*junk\.flac: /);
    expect(r.status).to.equal(1);
    expect(fs.readdirSync(out).sort()).to.deep.equal(['clip0.npy', 'clip1.npy', 'clip2.npy']);
    expect(r.stdout.trim().split('\n')).to.have.length(3);
    // each file alone, as `encode FILE --out` encodes it (streamed in chunks): the same codes as encode(samples)
    const codec = await Encodec.load(model, { threads: 2, warmup: false });
    try {
      for (const input of inputs) {
        const single = await codec.encode((await loadAudio(input)).samples, { bandwidth: 3 });
        const pooled = await readCodesNpy(path.join(out, path.basename(input, '.wav') + '.npy'));
        expect(pooled.nQ).to.equal(4);
        expectCodesWithinRounding(pooled, single, input);
      }
    } finally {
      codec.dispose();
    }
  });

  it('skips inputs already done unless --force', function () {
    const out = path.join(dir, 'codes');
    const again = cli(['encode', ...inputs, '--out-dir', out, '--model', model, '--bandwidth', '3']);
    expect(again.stderr).to.match(/encode: 3 inputs: 0 written, 3 skipped, 0 failed/);
    expect(again.status).to.equal(0);
    const forced = cli(['encode', inputs[0], '--out-dir', out, '--model', model, '--bandwidth', '3', '--force']);
    expect(forced.stderr).to.match(/encode: 1 input: 1 written, 0 skipped, 0 failed/);
  });

  it('splits a manifest between shards and jobs, every input once', function () {
    const manifest = path.join(dir, 'list.txt');
    fs.writeFileSync(manifest, `# clips\n${inputs.map((i) => path.relative(dir, i)).join('\n')}\n`);
    const out = path.join(dir, 'sharded');
    const first = cli(['encode', '--manifest', manifest, '--shard', '0/2', '--out-dir', out, '--model', model, '--jobs', '2']);
    expect(first.stderr).to.match(/encode: 2 inputs \(shard 0\/2\): 2 written/);
    // the work list in the output folder: shard 1 (clip1) is not done yet
    const before = cli(['status', '--out', out, '--script', 'encode.sbatch']);
    expect(before.status).to.equal(1);
    expect(before.stdout).to.include('encode, 3 inputs in 2 shards: 2 done, 0 failed, 1 missing');
    expect(before.stdout).to.include(`missing ${inputs[1]}: no outcome recorded`);
    expect(before.stdout.split('\n')).to.include('sbatch --array=1 encode.sbatch');
    // the second as task 1 of a Slurm array
    const second = cli(['encode', '--manifest', manifest, '--shard', 'auto/2', '--out-dir', out, '--model', model], { SLURM_ARRAY_TASK_ID: '1' });
    expect(second.stderr).to.match(/encode: 1 input \(shard 1\/2 from SLURM_ARRAY_TASK_ID\): 1 written/);
    expect(fs.readdirSync(out).sort()).to.deep.equal(['.encodec-batch', 'clip0.npy', 'clip1.npy', 'clip2.npy']);
    const after = cli(['status', '--out', out, '--json']);
    expect(after.status).to.equal(0);
    const report = JSON.parse(after.stdout) as { command: string; complete: boolean; inputs: { input: string; outputs: string[] }[] };
    expect(report).to.include({ command: 'encode', complete: true });
    expect(report.inputs.map((i) => i.outputs)).to.deep.equal(['clip0', 'clip1', 'clip2'].map((n) => [path.join(out, `${n}.npy`)]));
    // merge has nothing to join for per-input outputs: it checks that all are done
    const merged = cli(['merge', '--out', out]);
    expect(merged.status, merged.stderr).to.equal(0);
    expect(merged.stderr).to.include('encode: 3 inputs in 2 shards: 3 done, 0 failed, 0 missing');
  });

  it('decodes many codes files to DIR/<name>.wav', async function () {
    const codesDir = path.join(dir, 'codes');
    const files = fs.readdirSync(codesDir).map((f) => path.join(codesDir, f));
    const out = path.join(dir, 'audio');
    const r = cli(['decode', ...files, '--out-dir', out, '--model', model]);
    expect(r.stderr).to.match(/decode: 3 inputs: 3 written, 0 skipped, 0 failed/);
    expect(r.status).to.equal(0);
    for (const f of files) {
      const codes = await readCodesNpy(f);
      const wav = await readWav(path.join(out, path.basename(f, '.npy') + '.wav'));
      expect(wav.samples[0].length).to.equal(codes.nFrames * 320);
    }
  });

  it('refuses mixed or missing outputs with exit code 2', function () {
    const two = cli(['encode', ...inputs.slice(0, 2), '--out', path.join(dir, 'x.npy'), '--model', model]);
    expect(two.status).to.equal(2);
    expect(two.stderr).to.match(/--out FILE takes exactly one input; .*--out-dir DIR/);
    const neither = cli(['encode', inputs[0], '--model', model]);
    expect(neither.status).to.equal(2);
    expect(neither.stderr).to.match(/pass --out FILE \(one input\) or --out-dir DIR/);
    const shard = cli(['decode', inputs[0], '--out-dir', dir, '--shard', '2/2', '--model', model]);
    expect(shard.status).to.equal(2);
    expect(shard.stderr).to.match(/--shard must be i\/N/);
  });
});
