/**
 * Quality metrics (lib/metrics.ts, `encodec-native metrics`): STOI/ESTOI against pystoi's scores on synthesized
 * speech and degraded versions of it (test/fixtures/stoi), SNR/SI-SNR on signals with known answers, the
 * resampler, and the command line.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { codeAgreement, computeMetrics, resampleOctave, siSnr, snr, stoi } from '../../lib/quality/metrics';
import { readWav, writeWav } from '../../lib/io/wav';
import { cli } from '../helpers/cli';
import { ffmpeg } from '../helpers/media';
import { tempDir } from '../helpers/temp-dir';
import { PACKAGE_ROOT } from '../../lib/common/package-root';

const FIXTURES = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'stoi');

interface Scores {
  sample_rate: number;
  scores: Record<string, { stoi: number; estoi: number }>;
}

/** `n` samples of amp * sin(2 pi cycles t / n) (whole periods, so sines and cosines are orthogonal). */
function wave(n: number, cycles: number, amp = 1, phase = 0): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * cycles * i) / n + phase));
}

describe('quality metrics', function () {
  const scores = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'scores.json'), 'utf8')) as Scores;
  const degraded = Object.keys(scores.scores).filter((name) => fs.existsSync(path.join(FIXTURES, name)));
  let clean: Float32Array;
  const dir = tempDir('metrics');

  before(async function () {
    clean = (await readWav(path.join(FIXTURES, 'clean.wav'))).samples[0];
  });

  describe('STOI and ESTOI agree with pystoi', function () {
    it('has test vectors to compare with', function () {
      expect(degraded.length).to.be.at.least(3);
      expect(scores.sample_rate).to.equal(24000);
    });

    it('scores every degraded version within 0.005 of pystoi (STOI and ESTOI)', async function () {
      for (const name of degraded) {
        const test = (await readWav(path.join(FIXTURES, name))).samples[0];
        const n = Math.min(clean.length, test.length); // pystoi's scores: both truncated to the shorter
        const ref = clean.subarray(0, n);
        const got = { stoi: stoi(ref, test.subarray(0, n), 24000), estoi: stoi(ref, test.subarray(0, n), 24000, { extended: true }) };
        const want = scores.scores[name];
        expect(Math.abs(got.stoi - want.stoi), `${name}: STOI ${got.stoi} vs pystoi ${want.stoi}`).to.be.lessThan(0.005);
        expect(Math.abs(got.estoi - want.estoi), `${name}: ESTOI ${got.estoi} vs pystoi ${want.estoi}`).to.be.lessThan(0.005);
      }
    });

    it('gives 1 for a signal against itself and less for noise', function () {
      const ref = clean.subarray(0, 24000 * 3);
      expect(stoi(ref, ref, 24000)).to.be.closeTo(1, 1e-9);
      expect(stoi(ref, ref, 24000, { extended: true })).to.be.closeTo(1, 1e-6);
      let seed = 1;
      const noisy = Float32Array.from(ref, (v) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return v + 0.2 * (seed / 2 ** 30 - 1);
      });
      const s = stoi(ref, noisy, 24000);
      expect(s).to.be.lessThan(0.95).and.greaterThan(0.3);
    });

    it('scores at other sample rates (resampled to 10 kHz as pystoi does)', async function () {
      const at16k = path.join(dir, 'clean16k.wav');
      const noisy16k = path.join(dir, 'noise16k.wav');
      await ffmpeg(['-i', path.join(FIXTURES, 'clean.wav'), '-ar', '16000', at16k]);
      await ffmpeg(['-i', path.join(FIXTURES, 'noise_0dB.wav'), '-ar', '16000', noisy16k]);
      const a = (await readWav(at16k)).samples[0];
      const b = (await readWav(noisy16k)).samples[0];
      const n = Math.min(a.length, b.length);
      // The same pair at 16 kHz scores close to its 24 kHz score (both are band-limited to 5 kHz first).
      expect(stoi(a.subarray(0, n), b.subarray(0, n), 16000)).to.be.closeTo(scores.scores['noise_0dB.wav'].stoi, 0.02);
    });

    it('rejects unequal lengths, non-finite samples and clips too short to score, naming the fix', function () {
      expect(() => stoi(clean.subarray(0, 1000), clean.subarray(0, 999), 24000)).to.throw(RangeError, /trim both/);
      const nan = clean.slice(0, 24000);
      nan[5] = NaN;
      expect(() => stoi(clean.subarray(0, 24000), nan, 24000)).to.throw(RangeError, /NaN at index 5/);
      expect(() => stoi(clean.subarray(0, 4000), clean.subarray(0, 4000), 24000)).to.throw(RangeError, /at least 30.*longer clip/);
      expect(() => stoi(clean, clean, 0)).to.throw(RangeError, /sampleRate/);
      expect(() => stoi('abc' as unknown as Float32Array, clean, 24000)).to.throw(TypeError, /Float32Array/);
      expect(() => snr(new DataView(new ArrayBuffer(8)) as unknown as Float32Array, clean)).to.throw(TypeError, /ref must be/);
    });
  });

  describe('SNR and SI-SNR', function () {
    const n = 24000;
    const ref = wave(n, 50);

    it('gives 10 log10 of the energy ratio for an orthogonal error', function () {
      const error = wave(n, 50, 0.1, Math.PI / 2); // 0.1 cos: orthogonal to ref
      const test = ref.map((v, i) => v + error[i]);
      expect(snr(ref, test)).to.be.closeTo(20, 1e-9); // (1/2) / (0.01/2)
      expect(siSnr(ref, test)).to.be.closeTo(20, 1e-9);
    });

    it('SI-SNR ignores gain, SNR does not', function () {
      const half = ref.map((v) => 0.5 * v);
      expect(snr(ref, half)).to.be.closeTo(20 * Math.log10(2), 1e-9); // error 0.5 ref: 6.02 dB
      expect(siSnr(ref, half)).to.equal(Infinity);
      const other = wave(n, 77, 0.1);
      const noisy = ref.map((v, i) => v + other[i]);
      const scaled = noisy.map((v) => 3 * v);
      expect(siSnr(ref, scaled)).to.be.closeTo(siSnr(ref, noisy), 1e-9);
      expect(siSnr(ref, noisy)).to.be.closeTo(20, 1e-9);
      expect(snr(ref, scaled)).to.be.lessThan(0);
    });

    it('is Infinity for identical signals and rejects a silent reference', function () {
      expect(snr(ref, ref)).to.equal(Infinity);
      expect(() => snr(new Float64Array(10), ref.subarray(0, 10))).to.throw(RangeError, /silent/);
      expect(() => siSnr(new Float64Array(10), ref.subarray(0, 10))).to.throw(RangeError, /silent/);
    });

    it('computeMetrics compares the common length and reports STOI as null for clips too short to score', function () {
      const speech = clean.subarray(0, 24000 * 2);
      const longer = new Float32Array(speech.length + 320);
      longer.set(speech);
      const m = computeMetrics(speech, longer, 24000);
      expect(m.snr).to.equal(Infinity);
      expect(m.stoi).to.be.closeTo(1, 1e-9);
      const short = computeMetrics(speech.subarray(0, 2400), speech.subarray(0, 2400), 24000);
      expect(short.stoi).to.equal(null);
      expect(short.estoi).to.equal(null);
    });
  });

  describe('code agreement', function () {
    it('is the fraction of identical codes, and refuses blocks of different shapes', function () {
      const a = { data: Int16Array.from([1, 2, 3, 4, 5, 6, 7, 8]), nQ: 2, nFrames: 4 };
      const b = { data: Int32Array.from([1, 2, 3, 0, 5, 6, 0, 8]), nQ: 2, nFrames: 4 };
      expect(codeAgreement(a, a)).to.equal(1);
      expect(codeAgreement(a, b)).to.equal(0.75);
      expect(() => codeAgreement(a, { ...b, nQ: 4, nFrames: 2 })).to.throw(RangeError, /differ in shape: \[2, 4\] vs \[4, 2\]/);
    });
  });

  describe('resampling (pystoi resample_oct)', function () {
    it('keeps a pass-band tone, with length ceil(n p / q)', function () {
      const x = Float64Array.from({ length: 24000 }, (_, i) => Math.sin((2 * Math.PI * 1000 * i) / 24000));
      const y = resampleOctave(x, 24000, 10000);
      expect(y.length).to.equal(10000);
      let err = 0;
      for (let i = 1000; i < 9000; i++) err = Math.max(err, Math.abs(y[i] - Math.sin((2 * Math.PI * 1000 * i) / 10000)));
      expect(err).to.be.lessThan(2e-3);
    });

    it('removes a tone above the new Nyquist frequency (anti-aliasing)', function () {
      const x = Float64Array.from({ length: 24000 }, (_, i) => Math.sin((2 * Math.PI * 7000 * i) / 24000));
      const y = resampleOctave(x, 24000, 10000);
      let peak = 0;
      for (let i = 1000; i < 9000; i++) peak = Math.max(peak, Math.abs(y[i]));
      expect(peak).to.be.lessThan(0.01); // < -40 dB
    });
  });

  describe('encodec-native metrics', function () {
    it('prints the scores of a degraded file, as JSON too', function () {
      const r = cli(['metrics', path.join(FIXTURES, 'clean.wav'), path.join(FIXTURES, 'noise_0dB.wav'), '--json']);
      expect(r.status, r.stderr).to.equal(0);
      const out = JSON.parse(r.stdout);
      expect(out.stoi).to.be.closeTo(scores.scores['noise_0dB.wav'].stoi, 0.005);
      expect(out.estoi).to.be.closeTo(scores.scores['noise_0dB.wav'].estoi, 0.005);
      expect(out.snr).to.be.closeTo(0, 0.1); // white noise at 0 dB SNR
      expect(out.sampleRate).to.equal(24000);
      const text = cli(['metrics', path.join(FIXTURES, 'clean.wav'), path.join(FIXTURES, 'mp3_16k.wav')]);
      expect(text.status, text.stderr).to.equal(0);
      expect(text.stdout).to.match(/^SNR\s+-?\d+\.\d\d dB$/m);
      expect(text.stdout).to.match(/^STOI\s+0\.9\d{3}$/m);
      expect(text.stdout).to.match(/^ESTOI\s+0\.9\d{3}$/m);
    });

    it('compares the common length and resamples TEST to REF\'s rate, saying so', async function () {
      const speech = clean.subarray(0, 24000 * 3);
      const ref = path.join(dir, 'ref.wav');
      const cut = path.join(dir, 'cut-44k.wav');
      await writeWav(ref, speech, { sampleRate: 24000, format: 'float32' });
      await writeWav(path.join(dir, 'cut.wav'), speech.subarray(0, 24000 * 2), { sampleRate: 24000, format: 'float32' });
      await ffmpeg(['-i', path.join(dir, 'cut.wav'), '-ar', '44100', '-c:a', 'pcm_f32le', cut]);
      const r = cli(['metrics', ref, cut]);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.match(/has 72000 samples and .* 48000 at 24000 Hz; comparing the first 48000/);
      const json = JSON.parse(cli(['metrics', ref, cut, '--json']).stdout);
      expect(json.samples).to.deep.equal({ ref: 72000, test: 48000, compared: 48000 });
      expect(json.stoi).to.be.greaterThan(0.99); // the same speech, resampled there and back
      const same = JSON.parse(cli(['metrics', ref, ref, '--json']).stdout);
      expect(same).to.include({ snr: null, siSnr: null, identical: true });
      expect(same.stoi).to.be.closeTo(1, 1e-9);
    });

    it('fails clearly on missing files and a silent reference', async function () {
      const missing = cli(['metrics', path.join(dir, 'nope.wav'), path.join(FIXTURES, 'clean.wav')]);
      expect(missing.status).to.equal(1); // a missing input: exit 1 (docs/errors.md)
      expect(missing.stderr).to.match(/reference file '.*nope\.wav' does not exist/);
      const silent = path.join(dir, 'silent.wav');
      await writeWav(silent, new Float32Array(24000), { sampleRate: 24000, format: 'pcm16' });
      const r = cli(['metrics', silent, path.join(FIXTURES, 'clean.wav')]);
      expect(r.status).to.equal(2);
      expect(r.stderr).to.match(/^encodec-native: error: the reference is silent/);
      const usage = cli(['metrics', path.join(FIXTURES, 'clean.wav')]);
      expect(usage.status).to.equal(2);
      expect(usage.stderr).to.match(/missing required argument 'test'/);
    });
  });
});
