/** Mel spectrograms and their inversion (lib/mel.ts over native/spectral.cc). */
import { expect } from 'chai';

import { hzToMel, melFilterbank, melSettings, melSpectrogram, melToAudio, melToHz } from '../../lib/dsp/mel';
import { nativeBinding } from '../../lib/addon/native';
import { correlation, tone } from '../helpers/media';

const SR = 22050;

/** Index of the band with the most energy in frame `t`. */
function loudestBand(data: Float32Array, nMels: number, nFrames: number, t: number): number {
  let best = 0;
  for (let m = 1; m < nMels; m++) if (data[m * nFrames + t] > data[best * nFrames + t]) best = m;
  return best;
}

/** Centre frequency of band m of the default bank (band edges evenly spaced in Slaney mel). */
function bandCentre(m: number, nMels = 2048, fMax = SR / 2): number {
  return melToHz((hzToMel(fMax) * (m + 1)) / (nMels + 1));
}

describe('mel spectrogram', function () {
  it("uses Slaney's mel scale", function () {
    expect(hzToMel(1000)).to.be.closeTo(15, 1e-12);
    expect(hzToMel(500)).to.be.closeTo(7.5, 1e-12);
    expect(hzToMel(6400)).to.be.closeTo(42, 1e-9); // 15 + 27 mel per factor 6.4 above 1 kHz
    for (const f of [20, 440, 999, 1000, 5000, 11025]) expect(melToHz(hzToMel(f))).to.be.closeTo(f, 1e-9);
  });

  it('builds area-normalised triangular filters', function () {
    const nMels = 64;
    const fb = melFilterbank({ nMels });
    const bins = 2049;
    expect(fb.length).to.equal(nMels * bins);
    const df = SR / 4096;
    for (const m of [20, 40, 63]) {
      const row = fb.subarray(m * bins, (m + 1) * bins);
      let area = 0;
      let peak = 0;
      for (let b = 0; b < bins; b++) {
        area += row[b] * df;
        if (row[b] > row[peak]) peak = b;
      }
      expect(area, `band ${m}`).to.be.closeTo(1, 0.02); // Slaney norm: unit area in Hz
      expect(peak * df).to.be.closeTo(bandCentre(m, nMels), 2 * df);
    }
  });

  it('has the documented shape, range and peak for a tone', async function () {
    const samples = tone(2, 440, SR, 0.5);
    const mel = await melSpectrogram(samples);
    expect(mel.nMels).to.equal(2048);
    expect(mel.nFrames).to.equal(1 + Math.floor(samples.length / 512));
    expect(mel.data.length).to.equal(mel.nMels * mel.nFrames);
    expect(mel.data.reduce((a, b) => Math.max(a, b), -Infinity)).to.equal(0);
    expect(mel.data.reduce((a, b) => Math.min(a, b), Infinity)).to.equal(-80);
    const band = loudestBand(mel.data, mel.nMels, mel.nFrames, 40);
    expect(bandCentre(band)).to.be.closeTo(440, 8);
  });

  it('gives the same spectrogram whatever the STFT block size', async function () {
    const samples = tone(1, 440, SR, 0.3).map((v, i) => v + 0.2 * Math.sin(i * 0.37) * Math.exp(-i / 9000));
    const fb = melFilterbank({ nMels: 128 });
    const whole = await nativeBinding().melSpectrogram(samples, fb, 128, 4096, 512);
    const blocked = await nativeBinding().melSpectrogram(samples, fb, 128, 4096, 512, 7);
    expect(whole.nFrames).to.equal(1 + Math.floor(SR / 512));
    expect(blocked.nFrames).to.equal(whole.nFrames);
    let worst = 0;
    let peak = 0;
    for (let i = 0; i < whole.data.length; i++) {
      worst = Math.max(worst, Math.abs(whole.data[i] - blocked.data[i]));
      peak = Math.max(peak, whole.data[i]);
    }
    expect(peak).to.be.greaterThan(0);
    expect(worst / peak).to.be.lessThan(1e-6);
  });

  it('turns mel back into audio of the requested length with the same spectrum', async function () {
    const samples = new Float32Array(SR * 2);
    for (let i = 0; i < samples.length; i++) {
      const t = i / SR;
      samples[i] = 0.4 * Math.sin(2 * Math.PI * (t < 1 ? 300 : 1200) * t) + 0.1 * Math.sin(2 * Math.PI * 3000 * t);
    }
    const options = { nMels: 256 };
    const mel = await melSpectrogram(samples, options);
    const audio = await melToAudio(mel, samples.length, options);
    expect(audio).to.be.instanceOf(Float32Array);
    expect(audio.length).to.equal(samples.length);
    expect(audio.reduce((a, b) => Math.max(a, Math.abs(b)), 0)).to.be.closeTo(0.9, 1e-6);
    const again = await melSpectrogram(audio, options);
    expect(correlation(mel.data, again.data)).to.be.greaterThan(0.9);
    // The pitch change at 1 s survives.
    expect(bandCentre(loudestBand(again.data, 256, again.nFrames, 20), 256)).to.be.closeTo(300, 40);
    expect(bandCentre(loudestBand(again.data, 256, again.nFrames, 70), 256)).to.be.closeTo(1200, 120);
  });

  it('rejects bad settings and arguments with clear errors', async function () {
    expect(() => melSettings({ nFft: 8 })).to.throw(RangeError, /nFft must be at least 16/);
    expect(() => melSettings({ hopLength: 4096 })).to.throw(RangeError, /hopLength must be an integer in \[1, 2048\]/);
    expect(() => melSettings({ fMax: 20000 })).to.throw(RangeError, /fMax <= sampleRate \/ 2/);
    let err: unknown;
    try {
      await melSpectrogram(new Float64Array(10) as unknown as Float32Array);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(TypeError);
    const nan = { data: new Float32Array(4 * 7).fill(-10), nMels: 4, nFrames: 7 };
    nan.data[5] = NaN;
    let nanErr: unknown;
    try {
      await melToAudio(nan, 100, { nMels: 4, nFft: 64, hopLength: 16 });
    } catch (e) {
      nanErr = e;
    }
    expect(nanErr).to.be.instanceOf(RangeError);
    expect((nanErr as Error).message).to.match(/mel holds NaN at index 5; mel values must be finite/);
    const binding = nativeBinding();
    expect(() => binding.melSpectrogram(new Float32Array(100), new Float32Array(10), 4, 64, 16)).to.throw(
      RangeError,
      /filterbank has 10 values; expected nMels x \(nFft \/ 2 \+ 1\) = 4 x 33/,
    );
    expect(() => binding.melSpectrogram([1, 2] as unknown as Float32Array, new Float32Array(132), 4, 64, 16)).to.throw(TypeError);
    expect(() => binding.melToAudio(new Float32Array(4 * 5), new Float32Array(132), 4, 64, 16, 32, 100)).to.throw(
      RangeError,
      /mel has 5 frames but 100 samples need 1 \+ length \/ hopLength = 7/,
    );
    expect(() => binding.melToAudio(new Float32Array(4 * 7), new Float32Array(132), 4, 64, 16, 0, 100)).to.throw(RangeError, /iterations/);
  });
});
