/**
 * `.ecdc` files (lib/ecdc.ts and the compress/decompress commands), checked byte by byte against a restatement
 * of Meta's own writer and reader (test/reference/ecdc_reference.py: BitPacker/BitUnpacker, `!4sBI` header).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { loadAudio } from '../../lib/io/audio';
import { BANDWIDTHS } from '../../lib/codec/bandwidth';
import { Encodec } from '../../lib/codec/codec';
import { Codes } from '../../lib/codec/codes';
import { decodeEcdc, encodeEcdc, readEcdc, writeEcdc } from '../../lib/io/ecdc';
import { readNpy, writeNpy } from '../../lib/io/npy';
import { readWav } from '../../lib/io/wav';
import { cli } from '../helpers/cli';
import { makeSpeech } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';
import { PACKAGE_ROOT } from '../../lib/common/package-root';

const REFERENCE = path.join(PACKAGE_ROOT, 'test', 'reference', 'ecdc_reference.py');

function reference(args: string[]): string {
  const r = spawnSync('/usr/bin/python3', [REFERENCE, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

function randomCodes(nQ: number, nFrames: number, seed: number): Codes {
  const data = new Int16Array(nQ * nFrames);
  let x = seed;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x % 1024;
  }
  data[0] = 1023; // extremes exercise every bit
  data[data.length - 1] = 0;
  return { data, nQ, nFrames };
}

describe('.ecdc files', function () {
  const dir = tempDir('ecdc');

  it('writes the header field by field: magic, version 0, big-endian length, the JSON Meta writes', function () {
    const codes = randomCodes(4, 3, 1);
    const bytes = encodeEcdc(codes, 700);
    expect(bytes.subarray(0, 4).toString('latin1')).to.equal('ECDC');
    expect(bytes[4]).to.equal(0);
    const json = '{"m": "encodec_24khz", "al": 700, "nc": 4, "lm": false}';
    expect(Array.from(bytes.subarray(5, 9))).to.deep.equal([0, 0, 0, json.length]);
    expect(bytes.subarray(9, 9 + json.length).toString('utf8')).to.equal(json);
    expect(bytes.length).to.equal(9 + json.length + Math.ceil((4 * 3 * 10) / 8));
  });

  it('packs 10-bit codes least-significant bits first, frame by frame, flushing the last partial byte', function () {
    // One frame of codes 1 and 2: bits 0..9 = 1, bits 10..19 = 2 -> bytes 0x01, 0x08, 0x00 (20 bits -> 3 bytes).
    const bytes = encodeEcdc({ data: new Int16Array([1, 2]), nQ: 2, nFrames: 1 }, 320);
    expect(Array.from(bytes.subarray(bytes.length - 3))).to.deep.equal([0x01, 0x08, 0x00]);
    // Frame-major order: [q0 t0, q1 t0, q0 t1, q1 t1] for data laid out [nQ, nFrames] = [[5, 6], [7, 8]].
    const two = decodeEcdc(encodeEcdc({ data: new Int16Array([5, 6, 7, 8]), nQ: 2, nFrames: 2 }, 640));
    expect(Array.from(two.codes.data)).to.deep.equal([5, 6, 7, 8]);
    const body = encodeEcdc({ data: new Int16Array([5, 6, 7, 8]), nQ: 2, nFrames: 2 }, 640).subarray(-5);
    const bits = BigInt(`0x${Buffer.from(body).reverse().toString('hex')}`);
    expect([0, 1, 2, 3].map((i) => Number((bits >> BigInt(10 * i)) & 1023n))).to.deep.equal([5, 7, 6, 8]);
  });

  it("is byte-identical to Meta's writer and reads what it writes, for every bandwidth and odd lengths", async function () {
    const cases: [number, number][] = [];
    for (const bw of BANDWIDTHS) cases.push([(bw * 1000) / 750, 75]);
    cases.push([2, 1], [4, 3], [2, 7], [32, 1], [8, 13]); // partial last bytes
    for (const [nQ, nFrames] of cases) {
      const codes = randomCodes(nQ, nFrames, nQ * 1000 + nFrames);
      const audioLength = nFrames * 320 - 123 > 0 ? nFrames * 320 - 123 : nFrames * 320;
      const ours = path.join(dir, `ours-${nQ}-${nFrames}.ecdc`);
      await writeEcdc(ours, codes, { audioLength });
      const npy = path.join(dir, `codes-${nQ}-${nFrames}.npy`);
      await writeNpy(npy, codes.data, [nQ, nFrames]);
      const theirs = path.join(dir, `theirs-${nQ}-${nFrames}.ecdc`);
      reference(['write', npy, String(audioLength), theirs]);
      expect(fs.readFileSync(ours).equals(fs.readFileSync(theirs)), `${nQ}x${nFrames}`).to.equal(true);

      const back = path.join(dir, `back-${nQ}-${nFrames}.npy`);
      const meta = JSON.parse(reference(['read', ours, back]));
      expect(meta).to.deep.equal({ m: 'encodec_24khz', al: audioLength, nc: nQ, lm: false });
      const read = await readNpy(back);
      expect(Array.from(read.data as BigInt64Array, Number)).to.deep.equal(Array.from(codes.data));

      const mine = await readEcdc(theirs);
      expect(mine.metadata).to.deep.equal({ model: 'encodec_24khz', audioLength, numCodebooks: nQ, lm: false });
      expect([mine.codes.nQ, mine.codes.nFrames]).to.deep.equal([nQ, nFrames]);
      expect(Array.from(mine.codes.data)).to.deep.equal(Array.from(codes.data));
    }
  });

  it('rejects truncated, corrupt and unsupported files with messages that say why', function () {
    const good = encodeEcdc(randomCodes(4, 10, 3), 3000);
    const header = (magic: string, version: number, json: string): Buffer => {
      const b = Buffer.alloc(9);
      b.write(magic, 0, 'latin1');
      b[4] = version;
      b.writeUInt32BE(Buffer.byteLength(json), 5);
      return Buffer.concat([b, Buffer.from(json), Buffer.alloc(64)]);
    };
    const cases: [Buffer, RegExp][] = [
      [good.subarray(0, 5), /too short for an ECDC header/],
      [good.subarray(0, 30), /truncated: the header announces/],
      [good.subarray(0, good.length - 1), /truncated: 3000 samples at 4 codebooks need 50 bytes/],
      [Buffer.concat([Buffer.from('RIFF'), good.subarray(4)]), /not an ECDC file \(magic "RIFF"/],
      [header('ECDC', 1, '{"m": "encodec_24khz", "al": 320, "nc": 2, "lm": false}'), /version 1 is not supported/],
      [header('ECDC', 0, '{"m": "encodec_24khz", "al": 320, "nc": 2, "lm": true}'), /language model \("lm": true\)/],
      [header('ECDC', 0, '{"m": "encodec_32khz", "al": 320, "nc": 2, "lm": false}'), /model 'encodec_32khz'.*encodec_24khz and encodec_48khz/],
      [header('ECDC', 0, '{"m": "encodec_48khz", "al": 320, "nc": 32, "lm": false}'), /"nc" \(codebooks\) must be an integer in \[1, 16\] for encodec_48khz/],
      [header('ECDC', 0, '{"m": "encodec_24khz", "al": 320, "nc": 40, "lm": false}'), /"nc".*\[1, 32\]/],
      [header('ECDC', 0, '{"m": "encodec_24khz", "al": -5, "nc": 2, "lm": false}'), /"al".*positive integer/],
      [header('ECDC', 0, '{"m": "encodec_24khz", "al": 3'), /not valid JSON/],
    ];
    for (const [bytes, pattern] of cases) expect(() => decodeEcdc(bytes, 'x.ecdc'), String(pattern)).to.throw(Error, pattern);
    expect(() => encodeEcdc(randomCodes(2, 3, 1), 2000)).to.throw(RangeError, /needs 7 frames/);
  });

  describe('compress / decompress commands', function () {
    let model: string;
    let speechWav: string;
    let samples: Float32Array;

    before(async function () {
      model = await randomModel(0);
      speechWav = await makeSpeech(dir, 'Compressed audio files move between tools.');
      samples = (await loadAudio(speechWav, { sampleRate: 24000 })).samples;
    });

    // every bandwidth's bytes are checked against Meta's writer above; the command at the two ends and the default
    it('round-trips at 1.5, 6 and 24 kbps: codes equal `encode`, audio trimmed to the original length', async function () {
      const codec = await Encodec.load(model, { threads: 2, warmup: false });
      try {
        for (const bw of [1.5, 6, 24]) {
          const out = path.join(dir, `speech-${bw}.ecdc`);
          const r = cli(['compress', speechWav, '--model', model, '--bandwidth', String(bw), '--out', out]);
          expect(r.status, r.stderr).to.equal(0);
          const file = await readEcdc(out);
          expect(file.metadata.audioLength).to.equal(samples.length);
          const expected = await codec.encode(samples, { bandwidth: bw });
          expect(file.codes.nQ).to.equal((bw * 1000) / 750);
          expect(Array.from(file.codes.data)).to.deep.equal(Array.from(expected.data));
          if (bw === 6) {
            const wav = path.join(dir, 'back.wav');
            const d = cli(['decompress', out, '--model', model, '--out', wav]);
            expect(d.status, d.stderr).to.equal(0);
            const audio = await readWav(wav);
            expect(audio.samples[0].length).to.equal(samples.length); // not nFrames * 320
            const viaDecode = path.join(dir, 'back.npy');
            expect(cli(['decode', out, '--model', model, '--out', viaDecode]).status).to.equal(0);
            const full = await codec.decode(expected);
            const arr = (await readNpy(viaDecode)).data as Float32Array;
            expect(arr.length).to.equal(samples.length);
            expect(Array.from(arr.subarray(0, 500))).to.deep.equal(Array.from(full.subarray(0, 500)));
          }
        }
      } finally {
        codec.dispose();
      }
    });

    it('fails cleanly on bad files and arguments, writing nothing', function () {
      const truncated = path.join(dir, 'truncated.ecdc');
      fs.writeFileSync(truncated, fs.readFileSync(path.join(dir, 'speech-6.ecdc')).subarray(0, 100));
      const out = path.join(dir, 'never.wav');
      const r = cli(['decompress', truncated, '--model', model, '--out', out]);
      expect(r.status).to.equal(1);
      expect(r.stderr).to.match(/truncated/);
      const wrongExt = cli(['decompress', speechWav, '--model', model, '--out', out]);
      expect(wrongExt.status).to.equal(2);
      expect(wrongExt.stderr).to.match(/reads \.ecdc files/);
      const badOut = cli(['compress', speechWav, '--model', model, '--out', path.join(dir, 'x.npy')]);
      expect(badOut.status).to.equal(2);
      expect(badOut.stderr).to.match(/--out must end in \.ecdc/);
      expect(fs.existsSync(out)).to.equal(false);
    });
  });
});
