/**
 * The command line with the 48 kHz stereo model: encode/decode (codes .npy with their scales beside them),
 * compress/decompress/reconstruct (.ecdc), model random/info, doctor; and the clear refusals (files of the other
 * model). `extract` with this model: test/bin/extract48-cli.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { Encodec } from '../../lib/codec/codec';
import { SegmentedCodes } from '../../lib/codec/codes';
import { toPlanar } from '../../lib/common/planar';
import { readEcdc } from '../../lib/io/ecdc';
import { readNpy } from '../../lib/io/npy';
import { readWav } from '../../lib/io/wav';
import { cli } from '../helpers/cli';
import { makeStereo48k } from '../helpers/media';
import { randomModel, randomModel48 } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

describe('CLI with encodec_48khz', function () {
  const dir = tempDir('cli48');
  let model: string;
  let model24: string;
  let wav: string;
  let planar: Float32Array;
  let T: number;

  before(async function () {
    model = (await randomModel48(0)).model;
    model24 = await randomModel(0);
    wav = await makeStereo48k(dir, 2.5);
    const { samples } = await readWav(wav);
    planar = toPlanar(samples);
    T = samples[0].length;
  });

  it('encode writes codes and their segment scales; decode reads both back to 48 kHz stereo; codes equal the API\'s', async function () {
    const codesFile = path.join(dir, 'codes.npy');
    const r = cli(['encode', wav, '--model', model, '--bandwidth', '12', '--threads', '2', '--out', codesFile]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/codes\.scales\.npy/);
    const codes = await readNpy(codesFile);
    const scales = await readNpy(path.join(dir, 'codes.scales.npy'));
    expect(codes.shape).to.deep.equal([8, 378]);
    expect(scales.shape).to.deep.equal([3]);
    const codec = await Encodec.load(model, { threads: 2, warmup: false });
    try {
      const expected = (await codec.encode(planar, { bandwidth: 12 })) as SegmentedCodes;
      expect(Array.from(codes.data as Int16Array)).to.deep.equal(Array.from(expected.data));
      expect(Array.from(scales.data as Float32Array)).to.deep.equal(Array.from(expected.scales));
      const out = path.join(dir, 'decoded.wav');
      const d = cli(['decode', codesFile, '--model', model, '--float', '--out', out]);
      expect(d.status, d.stderr).to.equal(0);
      const decoded = await readWav(out);
      expect([decoded.sampleRate, decoded.samples.length]).to.deep.equal([48000, 2]);
      const full = await codec.decode(expected);
      const perChannel = full.length / 2;
      expect(decoded.samples[0].length).to.equal(perChannel); // a .npy holds no audio length: untrimmed, as for 24 kHz
      expect(Array.from(decoded.samples[1].subarray(0, 200))).to.deep.equal(Array.from(full.subarray(perChannel, perChannel + 200)));
    } finally {
      codec.dispose();
    }
  });

  it('compress writes an encodec_48khz .ecdc; decompress and reconstruct give stereo trimmed to the original length', async function () {
    const ecdc = path.join(dir, 'film.ecdc');
    const r = cli(['compress', wav, '--model', model, '--bandwidth', '6', '--out', ecdc]);
    expect(r.status, r.stderr).to.equal(0);
    const file = await readEcdc(ecdc);
    expect(file.metadata).to.deep.equal({ model: 'encodec_48khz', audioLength: T, numCodebooks: 4, lm: false });
    expect(file.codes.scales?.length).to.equal(3);
    for (const command of ['decompress', 'reconstruct']) {
      const out = path.join(dir, `${command}.wav`);
      const d = cli([command, ecdc, '--model', model, '--out', out]);
      expect(d.status, `${command}: ${d.stderr}`).to.equal(0);
      const audio = await readWav(out);
      expect([audio.sampleRate, audio.samples.length, audio.samples[0].length]).to.deep.equal([48000, 2, T]);
    }
  });

  it('refuses files of the other model and codes without their scales with usage errors, writing nothing', async function () {
    const ecdc = path.join(dir, 'film.ecdc');
    const out = path.join(dir, 'never.wav');
    const wrongModel = cli(['decompress', ecdc, '--model', model24, '--out', out]);
    expect(wrongModel.status).to.equal(2);
    expect(wrongModel.stderr).to.match(/made with encodec_48khz, but the model .*is encodec_24khz/);
    const lone = path.join(dir, 'lone.npy');
    fs.copyFileSync(path.join(dir, 'codes.npy'), lone);
    const noScales = cli(['decode', lone, '--model', model, '--out', out]);
    expect(noScales.status).to.equal(2);
    expect(noScales.stderr).to.match(/no segment scales: codes of encodec_48khz need .*lone\.scales\.npy/);
    const codes24 = cli(['decode', path.join(dir, 'codes.npy'), '--model', model24, '--out', out]);
    expect(codes24.status).to.equal(2);
    expect(codes24.stderr).to.match(/holds codes of encodec_48khz, but the model is encodec_24khz/);
    expect(fs.existsSync(out)).to.equal(false);
  });

  it('model random --name, model info and doctor show which model a file holds', function () {
    const out = path.join(dir, 'r48.pt');
    const r = cli(['model', 'random', '--name', 'encodec_48khz', '--seed', '3', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    const info = cli(['model', 'info', out]);
    expect(info.status, info.stderr).to.equal(0);
    expect(info.stdout).to.match(/model\s+encodec_48khz/);
    expect(info.stdout).to.match(/48000 Hz, 2 channels \(stereo, planar\)/);
    expect(info.stdout).to.match(/3 kbps = 2 codebooks, 6 kbps = 4 codebooks, 12 kbps = 8 codebooks, 24 kbps = 16 codebooks/);
    expect(info.stdout).to.match(/segments\s+1 s \(48000 samples\) every 47520 samples/);
    const bad = cli(['model', 'random', '--name', 'encodec_96khz', '--out', out]);
    expect(bad.status).to.equal(2);
    const doctor = cli(['doctor', '--model', out, '--json']);
    const { checks } = JSON.parse(doctor.stdout) as { checks: Array<{ name: string; status: string; detail: string }> };
    const byName = Object.fromEntries(checks.map((c) => [c.name, c]));
    expect(byName.metadata.detail).to.match(/^encodec_48khz, 48000 Hz, 2 channels/);
    expect(byName['self-test'].status, byName['self-test'].detail).to.equal('ok');
  });

});
