/**
 * The round-trip score of `extract --report` (lib/quality/roundtrip-quality.ts) in bounded memory: streamed,
 * against the whole-signal computation it replaces (short inputs: the same numbers), against the whole-signal
 * SNR/SI-SNR and the documented combination of per-window STOIs (long inputs; segment counts and loudest frames
 * from a numpy transcription of pystoi), scored from extract's own stream (the tap), and never holding the
 * whole signal.
 */
import { expect } from 'chai';

import * as audioModule from '../../lib/io/audio';
import * as metricsModule from '../../lib/quality/metrics';
import { loadAudio } from '../../lib/io/audio';
import { Encodec } from '../../lib/codec/codec';
import { computeMetrics, siSnr, snr, stoi } from '../../lib/quality/metrics';
import { melSettings, melSpectrogram, melToAudio } from '../../lib/dsp/mel';
import { RoundTripTap, roundTripQuality } from '../../lib/quality/roundtrip-quality';
import { WindowedMetrics } from '../../lib/quality/windowed-metrics';
import { extractFeatures, extractedAudio } from '../../lib/fmri/features';
import { rejects } from '../helpers/assert';
import { makeSpeech24k, makeWav24k } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { pythonJson } from '../helpers/python';
import { tempDir } from '../helpers/temp-dir';

const RATE = 24000;

/** The documented STOI windows, written out: whole windows from the start, a remainder under half a window joining the last. */
function windowsOf(n: number, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start = 0;
  for (; n - start >= size; start += size) out.push([start, start + size]);
  if (start < n) {
    if (out.length > 0 && 2 * (n - start) < size) out[out.length - 1][1] = n;
    else out.push([start, n]);
  }
  return out;
}

/**
 * Per window of the reference: pystoi's 30-frame segment count and loudest frame (dB), from a numpy transcription
 * of pystoi's resample_oct, remove_silent_frames and stft framing.
 */
function pystoiWindowParts(windows: Float32Array[], rate: number): Array<{ segments: number; loudest: number }> {
  return pythonJson(
    `from scipy.signal import resample_poly
def resample_oct(x, p, q):
    g = np.gcd(p, q); p //= g; q //= g
    cutoff = 1.0 / (2 * max(p, q)); rejection = 60.0
    L = np.ceil((rejection - 8) / (28.714 * cutoff / 10))
    t = np.arange(-L, L + 1)
    h = np.kaiser(2 * L + 1, 0.1102 * (rejection - 8.7)) * 2 * p * cutoff * np.sinc(2 * cutoff * t)
    return resample_poly(x, p, q, window=h / np.sum(h))
out = []
for x in data['windows']:
    x = resample_oct(np.array(x, dtype=np.float64), 10000, data['rate'])
    w = np.hanning(258)[1:-1]
    frames = np.array([w * x[i:i + 256] for i in range(0, len(x) - 256, 128)])
    energies = 20 * np.log10(np.linalg.norm(frames, axis=1) + np.finfo(float).eps)
    kept = int(np.sum((np.max(energies) - 40 - energies) < 0))
    length = (kept - 1) * 128 + 256 if kept else 0
    stft_frames = len(range(0, length - 256, 128))
    out.append({'segments': max(stft_frames - 30 + 1, 0), 'loudest': float(np.max(energies))})
print(json.dumps(out))`,
    { windows: windows.map((w) => Array.from(w)), rate },
  );
}

/** Replaces `owner[name]` with a wrapper for the length of a test; `restore` puts every one back. */
function spyOn<T extends object, K extends keyof T>(owner: T, name: K, wrap: (original: T[K]) => T[K], restore: Array<() => void>): void {
  const original = owner[name];
  owner[name] = wrap(original);
  restore.push(() => {
    owner[name] = original;
  });
}

describe('round-trip quality in bounded memory', function () {
  const dir = tempDir('roundtrip-quality');
  let codec: Encodec;
  let short: string;
  let long: string;
  let longSamples: Float32Array;
  const restore: Array<() => void> = [];

  before(async function () {
    codec = await Encodec.load(await randomModel(0), { threads: 2, warmup: false });
    short = await makeSpeech24k(dir, 'One two three four five six.', 3.2);
    // 3 s of speech, 1 s of near-silence (about -80 dB), 2.3 s of speech: with 1 s windows, the fourth is the quiet one
    const a = (await loadAudio(await makeSpeech24k(dir, 'Volunteers watched a film in the scanner while its soundtrack played.', 3))).samples;
    const b = (await loadAudio(await makeSpeech24k(dir, 'Its soundtrack was encoded.', 2.3))).samples;
    let seed = 7;
    const quiet = Float32Array.from({ length: RATE }, () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return (seed / 2147483648 - 0.5) * 2e-4;
    });
    longSamples = new Float32Array(a.length + quiet.length + b.length);
    longSamples.set(a);
    longSamples.set(quiet, a.length);
    longSamples.set(b, a.length + quiet.length);
    long = await makeWav24k(dir, 'long.wav', [longSamples], 'float32');
  });

  afterEach(function () {
    while (restore.length > 0) (restore.pop() as () => void)();
  });

  after(function () {
    codec?.dispose();
  });

  /** The round trip as it was computed before streaming: whole audio, encode, decode, computeMetrics. */
  async function wholeSignal(file: string, bandwidth: number): Promise<{ ref: Float32Array; test: Float32Array }> {
    const ref = (await loadAudio(file, { sampleRate: RATE })).samples;
    const test = (await codec.decode(await codec.encode(ref, { bandwidth }))).subarray(0, ref.length);
    return { ref, test };
  }

  it('scores a short input as the whole-signal computation did (EnCodec)', async function () {
    const { ref, test } = await wholeSignal(short, 6);
    const before = computeMetrics(ref, test, RATE);
    const q = await roundTripQuality(short, { model: codec, bandwidth: 6 });
    expect(q).to.include({ mode: 'encodec', bandwidth: 6, sampleRate: RATE, seconds: ref.length / RATE });
    expect(q.snr).to.equal(before.snr); // the same sum in the same order
    expect(Math.abs(q.siSnr - before.siSnr)).to.be.below(1e-9 * Math.abs(before.siSnr));
    expect(before.stoi).to.be.a('number');
    expect([q.stoi, q.estoi]).to.deep.equal([before.stoi, before.estoi]); // one window: exactly stoi of the whole
  });

  it('scores a short input as the whole-signal computation did (mel, Griffin-Lim)', async function () {
    const s = melSettings({ nMels: 128, nFft: 1024, hopLength: 256 });
    const ref = (await loadAudio(short, { sampleRate: s.sampleRate })).samples;
    const before = computeMetrics(ref, await melToAudio(await melSpectrogram(ref, s), ref.length, s), s.sampleRate);
    const q = await roundTripQuality(short, { mode: 'mel', mel: s });
    expect(q).to.include({ mode: 'mel', bandwidth: null, sampleRate: s.sampleRate });
    expect(q.snr).to.equal(before.snr);
    expect(Math.abs(q.siSnr - before.siSnr)).to.be.below(1e-9 * Math.max(1, Math.abs(before.siSnr)));
    expect([q.stoi, q.estoi]).to.deep.equal([before.stoi, before.estoi]);
    expect(q.stoi).to.be.greaterThan(0.5); // Griffin-Lim keeps speech intelligible
  });

  it('over several windows: whole-signal SNR and SI-SNR, STOI the segment-weighted mean of the windows that are not silence', async function () {
    const { ref, test } = await wholeSignal(long, 3);
    const q = await roundTripQuality(long, { model: codec, bandwidth: 3, windowSeconds: 1 });
    expect(q.seconds).to.equal(ref.length / RATE);
    expect(q.snr).to.equal(snr(ref, test));
    expect(Math.abs(q.siSnr - siSnr(ref, test))).to.be.below(1e-9 * Math.abs(siSnr(ref, test)));

    const windows = windowsOf(ref.length, RATE);
    expect(windows.map(([a, b]) => (b - a) / RATE)).to.deep.equal([1, 1, 1, 1, 1, 1.3]);
    const parts = pystoiWindowParts(windows.map(([a, b]) => ref.subarray(a, b)), RATE);
    const loudest = Math.max(...parts.map((p) => p.loudest));
    const silent = parts.map((p) => loudest - 40 - p.loudest >= 0);
    expect(silent).to.deep.equal([false, false, false, true, false, false]); // the quiet second is left out
    const expected = (extended: boolean): { counted: number; all: number } => {
      let sum = 0;
      let all = 0;
      let segments = 0;
      let allSegments = 0;
      windows.forEach(([a, b], w) => {
        const score = stoi(ref.subarray(a, b), test.subarray(a, b), RATE, { extended });
        all += score * parts[w].segments;
        allSegments += parts[w].segments;
        if (silent[w]) return;
        sum += score * parts[w].segments;
        segments += parts[w].segments;
      });
      return { counted: sum / segments, all: all / allSegments };
    };
    const plain = expected(false);
    const extended = expected(true);
    expect(q.stoi).to.be.closeTo(plain.counted, 1e-9);
    expect(q.estoi).to.be.closeTo(extended.counted, 1e-9);
    expect(Math.abs(plain.all - plain.counted)).to.be.above(1e-4); // the quiet window would have changed it
    // and the windows do change the score against one whole-signal STOI (documented in docs/metrics.md)
    expect(q.stoi).to.not.equal(stoi(ref, test, RATE));
  });

  it('is scored from the stream extract reads and encodes (the tap): one reading, one encoding, the same numbers', async function () {
    const plainFeatures = await extractFeatures(long, { model: codec, bandwidth: 3 });
    const calls = { stream: 0, load: 0, encodeStream: 0, encode: 0, decode: 0 };
    spyOn(audioModule, 'streamAudio', (f) => ((...args: Parameters<typeof f>) => (calls.stream++, f(...args))) as typeof f, restore);
    spyOn(audioModule, 'loadAudio', (f) => ((...args: Parameters<typeof f>) => (calls.load++, f(...args))) as typeof f, restore);
    const proto = Encodec.prototype;
    spyOn(proto, 'encodeStreamBlocks', (f) => function (this: Encodec, ...args: Parameters<typeof f>) {
      calls.encodeStream++;
      return f.apply(this, args);
    }, restore);
    spyOn(proto, 'encode', (f) => function (this: Encodec, ...args: Parameters<typeof f>) {
      calls.encode++;
      return f.apply(this, args);
    }, restore);
    spyOn(proto, 'decode', (f) => function (this: Encodec, ...args: Parameters<typeof f>) {
      calls.decode++;
      return f.apply(this, args);
    }, restore);

    const tap = new RoundTripTap(codec, 3, { windowSeconds: 1 });
    const features = await extractFeatures(long, { model: codec, bandwidth: 3, tap, cache: false }); // a fresh encoding feeds the tap
    const q = await tap.result(long);
    // one encoding of the file (and one of 2 s of zeros: the silence frame a cache entry keeps)
    expect(calls).to.deep.equal({ stream: 1, load: 0, encodeStream: 2, encode: 0, decode: 0 });
    expect(features.features).to.deep.equal(plainFeatures.features); // the tap only watches
    while (restore.length > 0) (restore.pop() as () => void)();
    expect(q).to.deep.equal(await roundTripQuality(long, { model: codec, bandwidth: 3, windowSeconds: 1 }));

    // with maxTrs extract stops reading after maxTrs * tr + 1 s: what the CLI's fallback would read
    const head = new RoundTripTap(codec, 3, { windowSeconds: 1 });
    await extractFeatures(long, { model: codec, bandwidth: 3, tr: 1.5, maxTrs: 2, tap: head, cache: false });
    const headQ = await head.result(long);
    expect(headQ.seconds).to.equal(4);
    expect(headQ).to.deep.equal(await roundTripQuality(long, { model: codec, bandwidth: 3, maxSeconds: 2 * 1.5 + 1, windowSeconds: 1 }));

    // paths that do not stream codes leave the tap unfed: the CLI then reads the same timeline again
    for (const options of [{ exact: true }, { output: 'latents' as const }]) {
      const unfed = new RoundTripTap(codec, 3);
      await extractFeatures(long, { model: codec, bandwidth: 3, ...options, tap: unfed, cache: false });
      expect(unfed.samples, JSON.stringify(options)).to.equal(0);
    }
  });

  it('on a run timeline, scores the run the subject heard (silence and the stimulus from its onset, to the end of the run), read again', async function () {
    // 0.5 s of silence, then the 6.3 s file cut at the end of 4 volumes of 1.5 s (6 s)
    const run = { tr: 1.5, runTrs: 4, bandwidth: 3 };
    const stimuli = [{ file: long, onset: 0.5 }];
    const timeline = new Float32Array(6 * RATE);
    timeline.set(longSamples.subarray(0, 5.5 * RATE), 0.5 * RATE);
    const expected = await roundTripQuality(await makeWav24k(dir, 'timeline.wav', [timeline], 'float32'), { model: codec, bandwidth: 3, windowSeconds: 1 });
    expect(expected.seconds).to.equal(6);

    const bare = await extractFeatures(long, { model: codec, ...run, onset: 0.5 });
    const tap = new RoundTripTap(codec, 3, { windowSeconds: 1 });
    const features = await extractFeatures(long, { model: codec, ...run, onset: 0.5, tap, cache: false });
    expect(features.features).to.deep.equal(bare.features); // the tap only watches
    // extract encodes each stimulus alone, not the run: the tap is left unfed, and the CLI reads the run again
    expect(tap.samples).to.equal(0);

    // the second read of the same timeline (extractedAudio), as the CLI does for runs, latents, --exact and mel
    const audio = extractedAudio(stimuli, { ...run, mode: 'encodec' });
    expect(await roundTripQuality(long, { model: codec, bandwidth: 3, windowSeconds: 1, audio })).to.deep.equal(expected);
    const mel = await roundTripQuality(long, { mode: 'mel', audio: extractedAudio(stimuli, { ...run, mode: 'mel' }) });
    expect(mel.seconds).to.equal(6);
    await rejects(roundTripQuality(long, { model: codec, bandwidth: 3, audio: 'run.wav' as never }), TypeError, /audio must be a function/);
  });

  it('never holds the whole signal: streamed reading and coding, STOI on windows of at most 1.5 windows', async function () {
    const calls = { load: 0, encode: 0, decode: 0 };
    const scored: number[] = [];
    spyOn(audioModule, 'loadAudio', (f) => ((...args: Parameters<typeof f>) => (calls.load++, f(...args))) as typeof f, restore);
    spyOn(metricsModule, 'stoiParts', (f) => ((...args: Parameters<typeof f>) => (scored.push(args[0].length), f(...args))) as typeof f, restore);
    const proto = Encodec.prototype;
    spyOn(proto, 'encode', (f) => function (this: Encodec, ...args: Parameters<typeof f>) {
      calls.encode++;
      return f.apply(this, args);
    }, restore);
    spyOn(proto, 'decode', (f) => function (this: Encodec, ...args: Parameters<typeof f>) {
      calls.decode++;
      return f.apply(this, args);
    }, restore);
    await roundTripQuality(long, { model: codec, bandwidth: 3, windowSeconds: 1 });
    expect(calls).to.deep.equal({ load: 0, encode: 0, decode: 0 });
    expect(scored).to.have.length(2 * 6); // STOI and ESTOI per window
    expect(Math.max(...scored)).to.equal(1.3 * RATE);
    scored.length = 0;
    const mel = { nMels: 128, nFft: 1024, hopLength: 256 };
    const windowed = await roundTripQuality(long, { mode: 'mel', mel, windowSeconds: 2 });
    expect(calls.load).to.equal(0);
    expect(Math.max(...scored)).to.equal(Math.round(2.3 * 22050)); // windows of 2, 2 and 2.3 s
    // each window's Griffin-Lim audio lands where it belongs: about as intelligible as one pass over the whole
    const onePass = await roundTripQuality(long, { mode: 'mel', mel });
    expect(windowed.stoi).to.be.closeTo(onePass.stoi as number, 0.05);
    expect(onePass.stoi).to.be.greaterThan(0.5);
  });

  it('holds at most about a window of each signal, whatever their length', function () {
    const size = 2 * 8000;
    const m = new WindowedMetrics(8000, { windowSeconds: 2 });
    let seed = 3;
    const noise = (n: number, scale: number): Float32Array =>
      Float32Array.from({ length: n }, () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return (seed / 2147483648 - 0.5) * scale;
      });
    const block = 1000;
    let most = 0;
    const whole = { ref: new Float32Array(60 * 8000), test: new Float32Array(60 * 8000) };
    for (let at = 0; at < whole.ref.length; at += block) {
      const ref = noise(block, 1);
      const test = ref.map((v, i) => v + 0.1 * Math.sin(i));
      whole.ref.set(ref, at);
      whole.test.set(test, at);
      m.addRef(ref);
      m.addTest(test);
      most = Math.max(most, m.held);
    }
    expect(most).to.be.at.most(2 * (1.5 * size + block));
    const q = m.finish();
    expect(q.snr).to.equal(snr(whole.ref, whole.test));
    expect(Math.abs(q.siSnr - siSnr(whole.ref, whole.test))).to.be.below(1e-9 * Math.abs(siSnr(whole.ref, whole.test)));
  });

  it('rejects what has nothing to score', async function () {
    const empty = await makeWav24k(dir, 'empty.wav', [new Float32Array(0)]);
    await rejects(roundTripQuality(empty, { model: codec, bandwidth: 3 }), RangeError, /holds no audio samples to score/);
    await rejects(roundTripQuality(empty, { mode: 'mel' }), RangeError, /holds no audio samples to score/);
    await rejects(roundTripQuality(short, { bandwidth: 3 }), TypeError, /needs a loaded model/);
    await rejects(roundTripQuality(short, { model: codec, bandwidth: 5 }), RangeError, /unsupported bandwidth 5/);
    expect(() => new WindowedMetrics(RATE, { windowSeconds: 0.1 })).to.throw(RangeError, /windowSeconds must be/);
    const silent = new WindowedMetrics(RATE);
    silent.addRef(new Float32Array(RATE));
    silent.addTest(new Float32Array(RATE));
    expect(() => silent.finish()).to.throw(RangeError, /reference is silent/);
  });
});
