/**
 * Model files are code (TorchScript): inspecting one must not run it. `model info` reads the metadata straight
 * from the ZIP container; here it runs with the native addon (and so libtorch, the only thing that could execute
 * the file) made impossible to load.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

import { expect } from 'chai';

import { CLI } from '../helpers/cli';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

describe('model trust', function () {
  const dir = tempDir('trust');
  let guard: string;

  before(function () {
    // Preloaded module: any attempt to load encodec-native's addon (which links libtorch), or node-gyp-build that
    // finds it, aborts loudly. Other addons (e.g. for plotting) may load.
    guard = path.join(dir, 'no-libtorch.js');
    fs.writeFileSync(
      guard,
      `const Module = require('node:module');
       const load = Module._load;
       Module._load = function (request, ...rest) {
         if (request === 'node-gyp-build' || /encodec_native/.test(request)) throw new Error('GUARD: tried to load ' + request);
         return load.call(this, request, ...rest);
       };
       const dlopen = process.dlopen;
       process.dlopen = function (module, filename, ...rest) {
         if (/encodec_native|libtorch/.test(filename)) throw new Error('GUARD: dlopen ' + filename);
         return dlopen.call(this, module, filename, ...rest);
       };`,
    );
  });

  function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, ['--require', guard, CLI, ...args], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('model info reads the metadata without loading libtorch or running the file', async function () {
    const model = await randomModel(0);
    const r = run(['model', 'info', model, '--json']);
    expect(r.stderr).to.not.match(/GUARD/);
    expect(r.status, r.stderr).to.equal(0);
    const info = JSON.parse(r.stdout);
    expect(info).to.include({ model: 'encodec_24khz', sample_rate: 24000, channels: 1 });
    expect(info.file.sha256).to.equal(crypto.createHash('sha256').update(fs.readFileSync(model)).digest('hex'));
  });

  it('the guard does stop commands that run the model (so the test above can fail)', async function () {
    const model = await randomModel(0);
    const wav = path.join(dir, 'x.wav');
    const { writeWav } = await import('../../lib/io/wav');
    await writeWav(wav, new Float32Array(2400), { sampleRate: 24000, format: 'pcm16' });
    const r = run(['encode', wav, '--model', model, '--out', path.join(dir, 'x.npy')]);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.match(/GUARD/);
  });
});
