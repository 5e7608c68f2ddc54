/** Feature inspection (lib/inspect.ts, `encodec-native inspect`): real features, broken files, plots, CLI. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';
import { PNG } from 'pngjs';

import { Encodec } from '../../lib/codec/codec';
import { extractFeatures } from '../../lib/fmri/features';
import type { FeatureSet } from '../../lib/fmri/feature-set';
import { writeFeatures } from '../../lib/fmri/features-file';
import { formatInspection, inspectFeatures, plotFeatures } from '../../lib/report/inspect';
import { readNpy, writeNpy } from '../../lib/io/npy';
import { toJson } from '../../lib/common/format';
import { cli } from '../helpers/cli';
import { makeSpeech } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

async function expectRejection(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await promise;
  } catch (err) {
    expect((err as Error).message).to.match(pattern);
    return;
  }
  expect.fail(`expected a rejection matching ${pattern}`);
}

describe('inspect', function () {
  const dir = tempDir('inspect');
  let codec: Encodec;
  let codes: FeatureSet;
  let codesFile: string;
  let melFile: string;
  let speech: string;
  let modelPath: string;

  before(async function () {
    speech = await makeSpeech(dir, 'Inspecting features. The quick brown fox jumps over the lazy dog.', 4.6);
    modelPath = await randomModel(0);
    codec = await Encodec.load(modelPath, { threads: 1, warmup: false });
    codes = await extractFeatures(speech, { model: codec, tr: 1.5, bandwidth: 3 });
    codesFile = (await writeFeatures(path.join(dir, 'speech-codes'), codes)).npy;
    const mel = await extractFeatures(speech, { mode: 'mel', tr: 1.5, mel: { nMels: 128, nFft: 1024, hopLength: 256 } });
    melFile = (await writeFeatures(path.join(dir, 'speech-mel'), mel)).npy;
  });

  after(function () {
    codec?.dispose();
  });

  it('summarises real codes features: shape, kind, TRs, per-codebook usage, no warnings', async function () {
    const r = await inspectFeatures(codesFile);
    expect(r.kind).to.equal('codes');
    expect(r.dtype).to.equal('<i2');
    expect(r.shape).to.deep.equal([3, 4, 112]);
    expect(r.layout).to.equal('tr');
    expect([r.trCount, r.tr, r.durationSeconds]).to.deep.equal([3, 1.5, 4.5]);
    expect([r.channels, r.frames]).to.deep.equal([4, 112]);
    expect(r.codebooks).to.have.length(4);
    for (const c of r.codebooks ?? []) {
      // Recomputed independently from the feature array.
      const values: number[] = [];
      for (let t = 0; t < 3; t++) for (let f = 0; f < 112; f++) values.push(codes.features[(t * 4 + c.codebook) * 112 + f]);
      const counts = new Map<number, number>();
      values.forEach((v) => counts.set(v, (counts.get(v) ?? 0) + 1));
      const entropy = -[...counts.values()].reduce((h, n) => h + (n / values.length) * Math.log2(n / values.length), 0);
      expect(c.distinct).to.equal(counts.size);
      expect(c.entropyBits).to.be.closeTo(entropy, 1e-9);
      expect(c.min).to.equal(Math.min(...values));
      expect(c.max).to.equal(Math.max(...values));
    }
    expect(r.warnings, r.warnings.join('; ')).to.deep.equal([]);
    const text = formatInspection(r);
    expect(text).to.match(/kind:\s+codes/).and.match(/TRs:\s+3 x 1\.5 s = 4\.5 s/).and.match(/warnings:\s+none/);
  });

  it('recognises mel features (via readFeatures) and the flat codes layout', async function () {
    const mel = await inspectFeatures(melFile);
    expect(mel.kind).to.equal('mel');
    expect(mel.shape[0]).to.equal(3);
    expect(mel.shape[1]).to.equal(128);
    expect(mel.max).to.be.at.most(0);
    expect(mel.codebooks).to.equal(undefined);
    const flat = await inspectFeatures({ data: codes.features, shape: [3, 4 * 112] });
    expect(flat.layout).to.equal('flat');
    expect(flat.channels).to.equal(4);
    expect(flat.codebooks?.map((c) => c.distinct)).to.deep.equal((await inspectFeatures(codesFile)).codebooks?.map((c) => c.distinct));
  });

  it('warns about files that look wrong: all codes equal, codes out of range, zero codebook rows', async function () {
    const equal = await inspectFeatures({ data: new Int16Array(2 * 4 * 112).fill(17), shape: [2, 4, 112] });
    expect(equal.warnings.join('\n')).to.match(/all codes equal 17/);

    const outOfRange = Int32Array.from(codes.features);
    outOfRange[5] = 1024;
    outOfRange[6] = -3;
    const bad = await inspectFeatures({ data: outOfRange, shape: [3, 4, 112] });
    expect(bad.warnings.join('\n')).to.match(/2 values are outside the code range 0\.\.1023 \(min -3, max 1024\)/);

    // A table sized for 8 codebooks of which only 4 were filled.
    const table = new Int16Array(3 * 8 * 112);
    for (let t = 0; t < 3; t++) table.set(codes.features.subarray(t * 4 * 112, (t + 1) * 4 * 112), t * 8 * 112);
    const padded = await inspectFeatures({ data: table, shape: [3, 8, 112] });
    expect(padded.zeroChannels).to.deep.equal([4, 5, 6, 7]);
    expect(padded.warnings.join('\n')).to.match(/4 of 8 codebooks are all zero \(codebook 4, 5, 6, 7\)/);

    const file = path.join(dir, 'broken.npy');
    await writeNpy(file, outOfRange, [3, 4, 112]);
    const fromFile = await inspectFeatures(file);
    expect(fromFile.kind).to.equal('codes');
    expect(fromFile.warnings.join('\n')).to.match(/outside the code range/);
  });

  it('explains the all-zero first TRs of `extract --hrf glover` features (from the .csv) instead of warning', async function () {
    const out = path.join(dir, 'hrf');
    const run = cli(['extract', speech, '--out', out, '--hrf', 'glover', '--tr', '1.5', '--model', modelPath]);
    expect(run.status, run.stderr).to.equal(0);
    const file = path.join(out, `${path.basename(speech).replace(/\.[^.]+$/, '')}.npy`);
    const { data } = await readNpy(file);
    const trSize = 4 * 112;
    const rowIsZero = (t: number) => Array.from(data as Int16Array).slice(t * trSize, (t + 1) * trSize).every((v) => v === 0);
    expect([0, 1, 2].map(rowIsZero)).to.deep.equal([true, true, false]); // the file really has two zero TRs

    const r = await inspectFeatures(file);
    expect(r.hrf).to.equal('glover');
    expect(r.zeroTrs).to.deep.equal([0, 1]);
    expect(r.warnings, r.warnings.join('; ')).to.deep.equal([]);
    expect(r.notes.join('\n')).to.match(/2 of 3 TRs are all zero \(TR 0, 1\), as expected: .*causal glover HRF, which is 0 at lag 0/);
    const text = cli(['inspect', file]);
    expect(text.status, text.stderr).to.equal(0);
    expect(text.stdout).to.match(/note: .*as expected/).and.match(/warnings:\s+none/).and.not.match(/never filled/);

    // The explanation comes from the HRF the .csv names: the same array without it is suspicious.
    const bare = await inspectFeatures({ data: data as Int16Array, shape: [3, 4, 112] });
    expect(bare.hrf).to.equal('none');
    expect(bare.warnings.join('\n')).to.match(/2 of 3 TRs are all zero \(TR 0, 1\): rows never filled\?/);
    expect((await inspectFeatures({ data: data as Int16Array, shape: [3, 4, 112] }, { hrf: 'glover' })).warnings).to.deep.equal([]);
  });

  it('explains only the zero TRs an HRF makes: lag 0 for float features, none without an HRF', async function () {
    // Float features (mel) convolved with an HRF are exactly zero only where the kernel is: TR 0.
    const mel = new Float32Array(3 * 8 * 5).fill(-1);
    mel.fill(0, 0, 2 * 8 * 5);
    const r = await inspectFeatures({ data: mel, shape: [3, 8, 5], kind: 'mel' }, { hrf: 'spm' });
    expect(r.notes.join('\n')).to.match(/1 of 3 TRs are all zero \(TR 0\), as expected/);
    expect(r.warnings.join('\n')).to.match(/1 of 3 TRs are all zero \(TR 1\): rows never filled\?/);
    // Codes zero after the HRF's first TRs are still flagged.
    const late = Int16Array.from(codes.features);
    late.fill(0, 0, 4 * 112);
    late.fill(0, 2 * 4 * 112, 3 * 4 * 112);
    const codesLate = await inspectFeatures({ data: late, shape: [3, 4, 112] }, { hrf: 'glover' });
    expect(codesLate.notes.join('\n')).to.match(/1 of 3 TRs are all zero \(TR 0\), as expected/);
    expect(codesLate.warnings.join('\n')).to.match(/1 of 3 TRs are all zero \(TR 2\): rows never filled\?/);
    await expectRejection(inspectFeatures({ data: late, shape: [3, 4, 112] }, { hrf: 'boxcar' as never }), /hrf must be 'none', 'glover' or 'spm'/);
  });

  it('plots a per-codebook histogram and a TR x codebook map to a PNG', async function () {
    const png = path.join(dir, 'codes.png');
    await plotFeatures(codesFile, png);
    const img = PNG.sync.read(fs.readFileSync(png));
    expect(img.width).to.be.within(1500, 2200); // 800-unit panels at scale 2, plus axes and colour bar
    expect(img.height).to.be.within(900, 2000);
    const melPng = path.join(dir, 'mel.png');
    await plotFeatures(melFile, melPng);
    expect(PNG.sync.read(fs.readFileSync(melPng)).width).to.be.within(1500, 2200);
  });

  it('CLI: text, --json and --plot; clear errors for bad input', async function () {
    const text = cli(['inspect', codesFile]);
    expect(text.status, text.stderr).to.equal(0);
    expect(text.stdout).to.match(/shape:\s+\(3, 4, 112\)/);
    const json = cli(['inspect', codesFile, '--json']);
    expect(JSON.parse(json.stdout).codebooks).to.have.length(4);
    // numbers JSON cannot hold: the package's one rule (lib/common/format.ts toJson, docs/errors.md), null
    const nanFile = path.join(dir, 'non-finite.npy');
    await writeNpy(nanFile, new Float32Array([NaN, Infinity, -Infinity, NaN, NaN, NaN]), [1, 2, 3]);
    const nan = cli(['inspect', nanFile, '--json']);
    expect(nan.status, nan.stderr).to.equal(0);
    const parsed = JSON.parse(nan.stdout);
    expect(parsed.nonFinite).to.equal(6);
    for (const key of ['min', 'max', 'mean', 'std']) expect(parsed[key], key).to.equal(null);
    expect(nan.stdout).to.equal(toJson(await inspectFeatures(nanFile)));
    const png = path.join(dir, 'cli.png');
    const plotted = cli(['inspect', codesFile, '--plot', png]);
    expect(plotted.status, plotted.stderr).to.equal(0);
    expect(PNG.sync.read(fs.readFileSync(png)).width).to.be.greaterThan(0);

    const missing = cli(['inspect', path.join(dir, 'nope.npy')]);
    expect(missing.status).to.equal(1); // a missing input: exit 1 (docs/errors.md)
    expect(missing.stderr).to.match(/features file .*nope\.npy' does not exist/);
    const badPlot = cli(['inspect', codesFile, '--plot', path.join(dir, 'x.jpg')]);
    expect(badPlot.status).to.equal(2);
    expect(badPlot.stderr).to.match(/--plot must end in \.png/);
    const noDir = cli(['inspect', codesFile, '--plot', path.join(dir, 'missing-dir', 'x.png')]);
    expect(noDir.status).to.equal(2);
    expect(noDir.stderr).to.match(/directory .* does not exist/);
    const notNpy = path.join(dir, 'notes.npy');
    fs.writeFileSync(notNpy, 'not numpy');
    const garbage = cli(['inspect', notNpy]);
    expect(garbage.status).to.equal(1);
    expect(garbage.stderr).to.match(/^encodec-native: error: .*notes\.npy: not a \.npy file \(bad magic\)\n$/);
  });
});
