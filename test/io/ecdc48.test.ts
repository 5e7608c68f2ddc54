/**
 * `.ecdc` files of the 48 kHz model (lib/io/ecdc.ts): per segment a big-endian float32 scale and the segment's
 * packed codes, checked byte by byte against a restatement of Meta's compress_to_file / decompress_from_file
 * (test/reference/ecdc48_reference.py).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { expect } from 'chai';

import { SegmentedCodes } from '../../lib/codec/codes';
import { framesForSegmentedSamples, segmentCount } from '../../lib/codec/segments';
import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { decodeEcdc, encodeEcdc } from '../../lib/io/ecdc';
import { readNpy, writeNpy } from '../../lib/io/npy';
import { tempDir } from '../helpers/temp-dir';

const REFERENCE = path.join(PACKAGE_ROOT, 'test', 'reference', 'ecdc48_reference.py');
const GEOMETRY = { length: 48000, stride: 47520, hop: 320, channels: 2 };

function reference(args: string[]): string {
  const r = spawnSync('/usr/bin/python3', [REFERENCE, ...args], { encoding: 'utf8', cwd: path.dirname(REFERENCE) });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

function randomSegmentedCodes(nQ: number, audioLength: number, seed: number): SegmentedCodes {
  const nFrames = framesForSegmentedSamples(audioLength, GEOMETRY);
  const data = new Int16Array(nQ * nFrames);
  let x = seed;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x % 1024;
  }
  data[0] = 1023;
  data[data.length - 1] = 0;
  const scales = Float32Array.from({ length: segmentCount(audioLength, GEOMETRY) }, (_, k) => 0.01 * (k + 1) + 1e-8 * seed);
  return { data, nQ, nFrames, scales, segmentFrames: 150 };
}

describe('.ecdc files of encodec_48khz', function () {
  const dir = tempDir('ecdc48');

  it("is byte-identical to Meta's writer and reads what it writes: every bandwidth, Meta's segment edge cases", async function () {
    for (const nQ of [2, 4, 8, 16]) {
      for (const audioLength of [1, 480, 47520, 47521, 48000, 120000, 100001]) {
        const codes = randomSegmentedCodes(nQ, audioLength, nQ * 7 + audioLength);
        const ours = encodeEcdc(codes, audioLength);
        const codesFile = path.join(dir, 'codes.npy');
        const scalesFile = path.join(dir, 'scales.npy');
        await writeNpy(codesFile, BigInt64Array.from(codes.data, (v) => BigInt(v)), [nQ, codes.nFrames]);
        await writeNpy(scalesFile, codes.scales, [codes.scales.length]);
        const refFile = path.join(dir, 'ref.ecdc');
        reference(['write', codesFile, scalesFile, String(audioLength), refFile]);
        const theirs = (await import('node:fs')).readFileSync(refFile);
        expect(Buffer.compare(ours, theirs), `nQ ${nQ}, ${audioLength} samples`).to.equal(0);
        const back = decodeEcdc(theirs);
        expect(back.metadata).to.deep.equal({ model: 'encodec_48khz', audioLength, numCodebooks: nQ, lm: false });
        expect(Array.from(back.codes.data)).to.deep.equal(Array.from(codes.data));
        expect(Array.from(back.codes.scales as Float32Array)).to.deep.equal(Array.from(codes.scales));
        expect(back.codes.segmentFrames).to.equal(150);
        // and Meta's reader reads ours
        const oursFile = path.join(dir, 'ours.ecdc');
        (await import('node:fs')).writeFileSync(oursFile, ours);
        const meta = JSON.parse(reference(['read', oursFile, codesFile, scalesFile]));
        expect(meta).to.deep.equal({ m: 'encodec_48khz', al: audioLength, nc: nQ, lm: false });
        expect(Array.from((await readNpy(codesFile)).data as BigInt64Array, Number)).to.deep.equal(Array.from(codes.data));
        expect(Array.from((await readNpy(scalesFile)).data as Float32Array)).to.deep.equal(Array.from(codes.scales));
      }
    }
  });

  it('rejects truncated files, codes that do not fit the audio length, and too many codebooks', function () {
    const codes = randomSegmentedCodes(4, 120000, 3);
    const bytes = encodeEcdc(codes, 120000);
    expect(() => decodeEcdc(bytes.subarray(0, bytes.length - 1))).to.throw(/truncated: segment 2 of 3 needs/);
    expect(() => decodeEcdc(bytes.subarray(0, 70))).to.throw(/truncated/);
    expect(() => encodeEcdc(codes, 100000)).to.throw(RangeError, /makes 3 segments of .* frames in all, but the codes have 3 segments and 378 frames/);
    expect(() => encodeEcdc({ ...codes, scales: codes.scales.subarray(1) }, 120000)).to.throw(RangeError, /scales has 2 values/);
    const json = '{"m": "encodec_48khz", "al": 320, "nc": 32, "lm": false}';
    const header = Buffer.concat([Buffer.from('ECDC'), Buffer.from([0, 0, 0, 0, json.length]), Buffer.from(json)]);
    expect(() => decodeEcdc(header)).to.throw(/"nc" \(codebooks\) must be an integer in \[1, 16\]/);
  });
});
