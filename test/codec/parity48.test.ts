/**
 * Faithfulness of the 48 kHz stereo model (encodec_48khz): the exported TorchScript model run by the addon through
 * the library's segmenting and overlap-add, against the independent eager reference written the way Meta's code is
 * (test/reference/encodec48_reference.py: time-group norms, non-causal padding, normalised 1 s segments with 1 %
 * overlap, _linear_overlap_add), on the same seeded random checkpoint. Audio: real stereo speech (two espeak-ng
 * voices, 48 kHz): 2.5 s (three segments, the last one partial) at every bandwidth, 1 s (a full segment and a
 * 480-sample tail segment), and 47600 samples (a 149-frame segment and an 80-sample one).
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { Encodec } from '../../lib/codec/codec';
import { SegmentedCodes } from '../../lib/codec/codes';
import { EncodecLm } from '../../lib/lm/lm';
import { toPlanar } from '../../lib/common/planar';
import { encodeEcdc, encodeEcdcLm } from '../../lib/io/ecdc';
import { readNpy, writeNpy } from '../../lib/io/npy';
import { readWav, writeWav } from '../../lib/io/wav';
import { snr } from '../../lib/quality/metrics';
import { expectCodesWithinRounding } from '../helpers/assert';
import { makeStereo48k } from '../helpers/media';
import { randomLm, randomModel48 } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

const REFERENCE_DIR = path.resolve(__dirname, '..', '..', '..', 'test', 'reference');
const SCRIPT = path.join(REFERENCE_DIR, 'parity48.py');

interface RefLine {
  bandwidth: number;
  n_q: number;
  samples: number;
  segments: number;
  segment_frames: number[];
  frames: number;
}

/**
 * Runs the reference on a WAV; returns its summary lines (dumps in `dumpDir`). With `decode: false` it dumps the codes
 * and scales only (no reference audio).
 */
function reference(checkpoint: string, audio: string, bandwidths: number[], dumpDir: string, threads = 2, decode = true): RefLine[] {
  const args = [SCRIPT, '--checkpoint', checkpoint, '--audio', audio, '--bandwidths', bandwidths.join(','), '--dump-dir', dumpDir, '--threads', String(threads)];
  const r = spawnSync('/usr/bin/python3', decode ? args : [...args, '--no-decode'], {
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
        it(`${bandwidth} kbps: codes identical to the reference's up to float rounding, the same segments and scales`, async function () {
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
          const refData = Int32Array.from(ref.data as BigInt64Array, (v) => Number(v));
          expectCodesWithinRounding(codes, { data: refData, nQ: line.n_q, nFrames: line.frames }, `${bandwidth} kbps`);
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

/** Runs a reference script of test/reference; its stdout. */
function python(script: string, args: string[]): string {
  const r = spawnSync('/usr/bin/python3', [path.join(REFERENCE_DIR, script), ...args], { encoding: 'utf8', cwd: REFERENCE_DIR });
  expect(r.status, r.stderr).to.equal(0);
  return r.stdout;
}

/** 10 s of planar stereo: a chirp under a slow swell with seeded noise, both channels different. */
function tenSecondsStereo(): Float32Array {
  const n = 480000;
  const out = new Float32Array(2 * n);
  let x = 31;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const noise = (x / 2 ** 32 - 0.5) * 0.1;
    const t = i / 48000;
    const tone = 0.3 * Math.sin(2 * Math.PI * 220 * t * (1 + t)) * Math.exp(-(((t % 2) - 1) ** 2));
    out[i] = tone + noise;
    out[n + i] = 0.7 * tone - 0.5 * noise;
  }
  return out;
}

/** Meta's scale computed exactly (float64 sum, rounded once): what the exporter before 1.8 gave. */
function correctlyRoundedScales(planar: Float32Array, segments: number): number[] {
  const n = planar.length / 2;
  const out: number[] = [];
  for (let k = 0; k < segments; k++) {
    const start = k * 47520;
    const end = Math.min(start + 48000, n);
    let sum = 0;
    for (let i = start; i < end; i++) {
      const mono = Math.fround(Math.fround(planar[i] + planar[n + i]) / 2);
      sum += mono * mono;
    }
    out.push(Math.fround(Math.fround(Math.sqrt(sum / (end - start))) + Math.fround(1e-8)));
  }
  return out;
}

describe("encodec_48khz scales are Meta's to the bit (10 s of stereo, 11 segments)", function () {
  const dir = tempDir('scales48');
  const planar = tenSecondsStereo();
  const samples = planar.length / 2;
  let model: string;
  let checkpoint: string;
  let lm: { lm: string; checkpoint: string };
  let audio: string;
  const refScales = new Map<number, Float32Array>();
  // Meta's LM file of given codes and scales (keyed by their bytes): the same input gives the same file, so a
  // thread count whose codes and scales equal an earlier one's is compared with that file, not a second run of
  // the reference's LM loop
  const lmReferences = new Map<string, string>();

  before(async function () {
    ({ model, checkpoint } = await randomModel48(1));
    lm = await randomLm('encodec_48khz', 1);
    audio = path.join(dir, 'stereo10.npy');
    await writeNpy(audio, planar, [2, samples]);
  });

  for (const threads of [1, 2]) {
    it(`with ${threads} thread${threads === 1 ? '' : 's'}: scales, codes, plain and LM .ecdc bytes equal the reference's`, async function () {
      const dumps = path.join(dir, `ref-${threads}`);
      const [line] = reference(checkpoint, audio, [6], dumps, threads, false); // the audio is not compared here
      expect(line.segments).to.equal(11);
      const theirScales = (await readNpy(path.join(dumps, 'scales_bw6.npy'))).data as Float32Array;
      refScales.set(threads, theirScales);
      const theirCodes = (await readNpy(path.join(dumps, 'codes_bw6.npy'))).data as BigInt64Array;
      const codec = await Encodec.load(model, { threads, warmup: false });
      let codes: SegmentedCodes;
      try {
        codes = (await codec.encode(planar, { bandwidth: 6 })) as SegmentedCodes;
      } finally {
        codec.dispose();
      }
      // bit for bit: the float32 values compared as their bit patterns
      const bits = (a: Float32Array) => Array.from(new Uint32Array(Float32Array.from(a).buffer));
      expect(bits(codes.scales)).to.deep.equal(bits(theirScales));
      expect(Array.from(codes.data)).to.deep.equal(Array.from(theirCodes, Number));

      // Meta's plain file of Meta's codes and scales
      const codesFile = path.join(dumps, 'codes_bw6.npy');
      const scalesFile = path.join(dumps, 'scales_bw6.npy');
      const plain = path.join(dumps, 'plain.ecdc');
      python('ecdc48_reference.py', ['write', codesFile, scalesFile, String(samples), plain]);
      expect(encodeEcdc(codes, samples).equals(fs.readFileSync(plain)), 'plain .ecdc').to.equal(true);

      // and its LM file: segment by segment, each scale before its payload
      const key = crypto.createHash('sha256').update(Buffer.from(codes.data.buffer, codes.data.byteOffset, codes.data.byteLength))
        .update(Buffer.from(theirScales.buffer, theirScales.byteOffset, theirScales.byteLength)).digest('hex');
      let lmFile = lmReferences.get(key);
      if (lmFile === undefined) {
        const segDir = path.join(dumps, 'segments');
        fs.mkdirSync(segDir, { recursive: true });
        let first = 0;
        for (const [k, f] of line.segment_frames.entries()) {
          const data = new Int16Array(codes.nQ * f);
          for (let q = 0; q < codes.nQ; q++) data.set(codes.data.subarray(q * codes.nFrames + first, q * codes.nFrames + first + f), q * f);
          await writeNpy(path.join(segDir, `codes_${k}.npy`), data, [codes.nQ, f]);
          first += f;
        }
        await writeNpy(path.join(segDir, 'scales.npy'), theirScales, [theirScales.length]);
        lmFile = path.join(dumps, 'lm.ecdc');
        python('ecdc_reference.py', ['write-lm', 'encodec_48khz', String(samples), segDir, lm.checkpoint, lmFile]);
        lmReferences.set(key, lmFile);
      }
      const lm48 = await EncodecLm.load(lm.lm);
      try {
        expect((await encodeEcdcLm(codes, samples, lm48)).equals(fs.readFileSync(lmFile)), 'LM .ecdc').to.equal(true);
      } finally {
        lm48.dispose();
      }
    });
  }

  it("tells Meta's float32 reduction from an exact one: the audio has a segment where they differ", function () {
    // Without such a segment the tests above would pass on a scale computed any other close way.
    expect(refScales.size, 'the tests above ran').to.equal(2);
    const exact = correctlyRoundedScales(planar, 11);
    const differing = [1, 2].map((t) => Array.from(refScales.get(t) as Float32Array).filter((s, k) => s !== exact[k]).length);
    expect(differing[0] + differing[1]).to.be.at.least(1);
  });
});
