/**
 * Runs kept in part files (lib/fmri/features-part.ts) by the tasks of a job array give back, bit for bit, the
 * FeatureSets extract held in memory, so the `--concat` HDF5 file merged from them has exactly the bytes of the
 * one-process file; and HDF5 files of the same data have the same bytes whenever they are written (lib/fmri/h5.ts
 * stops HDF5's object clock). Mel features of real tones (no model needed), with delays and z-scoring.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { extractFeatures } from '../../lib/fmri/features';
import { readFeaturesPart, writeFeaturesPart } from '../../lib/fmri/features-part';
import { writeConcatH5, writeFeaturesH5 } from '../../lib/fmri/h5';
import { makeWav24k, tone } from '../helpers/media';
import { tempDir } from '../helpers/temp-dir';

describe('feature part files and reproducible HDF5 (lib/fmri/features-part.ts, lib/fmri/h5.ts)', function () {
  const dir = tempDir('features-part');

  it('merges parts into the same --concat bytes as the runs in memory, at any time', async function () {
    const a = await makeWav24k(dir, 'a.wav', [tone(3.2, 440)]);
    const b = await makeWav24k(dir, 'b.wav', [tone(2.4, 880, 24000, 0.3)]);
    const runs = [
      await extractFeatures(a, { mode: 'mel', tr: 1, delays: [0, 1], zscore: true }),
      await extractFeatures(b, { mode: 'mel', tr: 1, delays: [0, 1], zscore: true, onset: 0.5, runTrs: 4 }),
    ];
    const parts = runs.map((_, i) => path.join(dir, `${i}.featureset`));
    await Promise.all(runs.map((r, i) => writeFeaturesPart(parts[i], r)));
    const back = await Promise.all(parts.map(readFeaturesPart));
    expect(back[1]).to.deep.equal(runs[1]);
    expect(Buffer.from(back[0].features.buffer).equals(Buffer.from(runs[0].features.buffer))).to.equal(true);

    const memory = path.join(dir, 'memory.h5');
    const merged = path.join(dir, 'merged.h5');
    await writeConcatH5(memory, runs);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // HDF5 stamps objects in whole seconds
    await writeConcatH5(merged, back);
    expect(fs.readFileSync(merged).equals(fs.readFileSync(memory))).to.equal(true);
    await writeFeaturesH5(path.join(dir, 'one.h5'), runs[0]);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await writeFeaturesH5(path.join(dir, 'again.h5'), back[0]);
    expect(fs.readFileSync(path.join(dir, 'again.h5')).equals(fs.readFileSync(path.join(dir, 'one.h5')))).to.equal(true);
    // and the clock is the real one again afterwards
    expect(Date.now()).to.be.greaterThan(1e12);
  });
});
