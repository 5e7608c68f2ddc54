/**
 * Faithfulness of the 48 kHz stereo model (encodec_48khz): the exported TorchScript model run by the addon through
 * the library's segmenting and overlap-add, against the independent eager reference written the way Meta's code is
 * (test/reference/encodec48_reference.py: time-group norms, non-causal padding, normalised 1 s segments with 1 %
 * overlap, _linear_overlap_add), on the same seeded random checkpoint. Audio: real stereo speech (two espeak-ng
 * voices, 48 kHz): 2.5 s (three segments, the last one partial) at every bandwidth, 1 s (a full segment and a
 * 480-sample tail segment), and 47600 samples (a 149-frame segment and an 80-sample one).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { expect } from 'chai';

import { Encodec } from '../../lib/codec/codec';
import { SegmentedCodes } from '../../lib/codec/codes';
import { toPlanar } from '../../lib/common/planar';
import { readNpy } from '../../lib/io/npy';
import { readWav, writeWav } from '../../lib/io/wav';
import { snr } from '../../lib/quality/metrics';
import { makeStereo48k } from '../helpers/media';
import { randomModel48 } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

const SCRIPT = path.resolve(__dirname, '..', '..', '..', 'test', 'reference', 'parity48.py');

interface RefLine {
  bandwidth: number;
  n_q: number;
  samples: number;
  segments: number;
  segment_frames: number[];
  frames: number;
}

/** Runs the reference on a WAV; returns its summary lines (dumps in `dumpDir`). */
function reference(checkpoint: string, audio: string, bandwidths: number[], dumpDir: string): RefLine[] {
  const r = spawnSync('/usr/bin/python3', [SCRIPT, '--checkpoint', checkpoint, '--audio', audio, '--bandwidths', bandwidths.join(','), '--dump-dir', dumpDir, '--threads', '2'], {
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).to.equal(0);
  return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as RefLine);
}

describe('parity of encodec_48khz with the eager reference implementation', function () {
  const dir = tempDir('parity48');
  let codec: Encodec;
  let checkpoint: string;

  before(async function () {
    const paths = await randomModel48(1);
    checkpoint = paths.checkpoint;
    codec = await Encodec.load(paths.model, { threads: 2, warmup: false });
  });

  after(function () {
    codec?.dispose();
  });

  for (const { seconds, samples: cutTo, bandwidths } of [
    { seconds: 2.5, samples: undefined, bandwidths: [3, 6, 12, 24] },
    { seconds: 1, samples: undefined, bandwidths: [6] },
    { seconds: 1, samples: 47600, bandwidths: [12] },
  ]) {
    describe(`${cutTo ?? seconds * 48000} samples of stereo speech`, function () {
      let planar: Float32Array;
      let lines: RefLine[];
      const dumps = path.join(dir, `ref-${seconds}-${cutTo ?? 'all'}`);
      const npy = async (name: string) => readNpy(path.join(dumps, name));

      before(async function () {
        let wav = await makeStereo48k(dir, seconds);
        if (cutTo !== undefined) {
          const cut = path.join(dir, `stereo48k-${cutTo}.wav`);
          await writeWav(cut, (await readWav(wav)).samples.map((c) => c.subarray(0, cutTo)), { sampleRate: 48000, format: 'float32' });
          wav = cut;
        }
        const { samples, sampleRate } = await readWav(wav);
        expect(sampleRate).to.equal(48000);
        expect(samples.length).to.equal(2);
        planar = toPlanar(samples);
        lines = reference(checkpoint, wav, bandwidths, dumps);
        expect(lines.map((l) => l.bandwidth)).to.deep.equal(bandwidths);
      });

      for (const [i, bandwidth] of bandwidths.entries()) {
        it(`${bandwidth} kbps: codes >= 99.9 % identical to the reference's, the same segments and scales`, async function () {
          const line = lines[i];
          const ref = await npy(`codes_bw${bandwidth}.npy`);
          expect(ref.shape).to.deep.equal([line.n_q, line.frames]);
          const refScales = (await npy(`scales_bw${bandwidth}.npy`)).data as Float32Array;
          const codes = (await codec.encode(planar, { bandwidth })) as SegmentedCodes;
          expect([codes.nQ, codes.nFrames]).to.deep.equal([line.n_q, line.frames]);
          expect(codes.scales.length).to.equal(line.segments);
          expect(codes.segmentFrames).to.equal(150);
          for (let k = 0; k < line.segments; k++) {
            expect(Math.abs(codes.scales[k] - refScales[k]) / refScales[k], `scale ${k}`).to.be.below(1e-6);
          }
          const refData = ref.data as BigInt64Array;
          let same = 0;
          for (let j = 0; j < codes.data.length; j++) if (BigInt(codes.data[j]) === refData[j]) same++;
          const fraction = same / codes.data.length;
          expect(fraction, `${(100 * fraction).toFixed(3)} % identical`).to.be.at.least(0.999);
        });

        it(`${bandwidth} kbps: decoding the reference codes with their scales agrees >= 60 dB SNR (overlap-add included)`, async function () {
          const line = lines[i];
          const ref = await npy(`codes_bw${bandwidth}.npy`);
          const codes: SegmentedCodes = {
            data: Int32Array.from(ref.data as BigInt64Array, (v) => Number(v)),
            nQ: line.n_q,
            nFrames: line.frames,
            scales: (await npy(`scales_bw${bandwidth}.npy`)).data as Float32Array,
            segmentFrames: 150,
          };
          const decoded = await codec.decode(codes);
          const perChannel = decoded.length / 2;
          const lastFrames = line.segment_frames[line.segment_frames.length - 1];
          expect(perChannel).to.equal(47520 * (line.segments - 1) + 320 * lastFrames);
          const refAudio = (await npy(`audio_bw${bandwidth}.npy`)).data as Float32Array; // [2, T] planar
          const T = line.samples;
          expect(refAudio.length).to.equal(2 * T);
          const trimmed = toPlanar([decoded.subarray(0, T), decoded.subarray(perChannel, perChannel + T)]);
          expect(snr(refAudio, trimmed)).to.be.at.least(60);
        });
      }
    });
  }
});
