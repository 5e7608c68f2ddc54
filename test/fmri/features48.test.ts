/**
 * The feature pipeline with the 48 kHz stereo model (encodec_48khz, seeded random weights): real stereo speech read at
 * 48 kHz, TR windows of floor(tr * 150) = 225 frames at TR 1.5, checked frame by frame against codec.encode /
 * embeddings / latents of the same audio placed by time (segment k starts at 0.99 k s, its frame j at 0.99 k + j / 150
 * s; grid frame n takes the frame of the latest segment started at its centre, (n + 0.5) / 150 s); a 1 kHz tone probe
 * that must land in its volume and change exactly its segment's frames; the resampler and HRF at 150 frames/s; and the
 * clear refusals.
 */
import * as path from 'node:path';

import { expect } from 'chai';

import { Encodec } from '../../lib/codec/codec';
import { toPlanar } from '../../lib/common/planar';
import { extractFeatures } from '../../lib/fmri/features';
import { featuresToAudio } from '../../lib/fmri/features-audio';
import type { FeatureSet } from '../../lib/fmri/feature-set';
import { hrfKernel } from '../../lib/fmri/hrf';
import { loadAudio } from '../../lib/io/audio';
import { writeWav } from '../../lib/io/wav';
import { rejects } from '../helpers/assert';
import { makeStereo48k, maxAbsDiff } from '../helpers/media';
import { randomModel48 } from '../helpers/model';
import { placeOnRunOracle } from '../helpers/python';
import { tempDir } from '../helpers/temp-dir';

const SECONDS = 3.2; // two TRs of 1.5 s; four segments (0, 0.99, 1.98, 2.97 s)
const PER_TR = 225; // floor(1.5 * 150)

/**
 * The frame of the joined segment codes that grid frame n (samples [320 n, 320 n + 320)) takes, by time: the latest
 * segment started at the grid frame's centre (segments start every 47520 samples), its frame holding the centre (its
 * last frame past its end). Meta's layout restated in samples, independently of lib/encoding/segment-grid.ts.
 */
function sourceFrame(n: number, samples: number): number {
  const centre = 320 * n + 160;
  const frames: number[] = [];
  for (let start = 0; start < samples; start += 47520) frames.push(Math.ceil(Math.min(48000, samples - start) / 320));
  let k = 0;
  while (k + 1 < frames.length && 47520 * (k + 1) <= centre) k++;
  const j = Math.min(Math.floor((centre - 47520 * k) / 320), frames[k] - 1);
  return frames.slice(0, k).reduce((a, b) => a + b, 0) + j;
}

/** The [rows, nFrames] series at grid frames 0..n-1 (by sourceFrame). */
function onGrid(series: { data: ArrayLike<number>; nFrames: number }, rows: number, samples: number): Float64Array {
  const n = Math.ceil(samples / 320);
  const out = new Float64Array(rows * n);
  for (let g = 0; g < n; g++) {
    const f = sourceFrame(g, samples);
    for (let r = 0; r < rows; r++) out[r * n + g] = series.data[r * series.nFrames + f];
  }
  return out;
}

/** Expects TR window k of 3-D features to be grid frames 225 k .. 225 k + 224 of `grid` ([rows, n]). */
function expectWindows(result: FeatureSet, grid: Float64Array, tolerance = 0): void {
  const [nTrs, rows, frames] = result.shape;
  const n = grid.length / rows;
  expect(frames).to.equal(PER_TR);
  for (let k = 0; k < nTrs; k++) {
    for (let r = 0; r < rows; r++) {
      for (let t = 0; t < frames; t++) {
        const got = result.features[(k * rows + r) * frames + t];
        const want = grid[r * n + PER_TR * k + t];
        if (!(Math.abs(got - want) <= tolerance)) throw new Error(`TR ${k} row ${r} frame ${t}: ${got}, grid frame ${PER_TR * k + t} holds ${want}`);
      }
    }
  }
}

describe('feature pipeline with encodec_48khz', function () {
  const dir = tempDir('features48');
  let codec: Encodec;
  let file: string;
  let stereo: Float32Array; // the file at 48 kHz, planar stereo
  let samples: number; // per channel
  let firstCodes: FeatureSet | undefined; // the default extraction

  before(async function () {
    codec = await Encodec.load((await randomModel48(0)).model, { threads: 2, warmup: false });
    file = await makeStereo48k(dir, SECONDS);
    const audio = await loadAudio(file, { sampleRate: 48000, channels: 2 });
    stereo = audio.samples;
    samples = stereo.length / 2;
  });

  after(function () {
    codec?.dispose();
  });

  it('codes: TR 1.5 gives 225 frames per TR, the codes codec.encode gives placed by time (not by index)', async function () {
    const result = await extractFeatures(file, { model: codec, tr: 1.5 });
    firstCodes = result;
    expect(result.kind).to.equal('codes');
    expect(result.shape).to.deep.equal([2, 2, PER_TR]); // 3 kbps = 2 codebooks for encodec_48khz
    expect([result.nQ, result.bandwidth, result.framesPerTr, result.model, result.frameRate]).to.deep.equal([2, 3, PER_TR, 'encodec_48khz', 150]);
    expect(result.metadata.map((m) => [m.tr_index, m.start_time, m.end_time, m.n_frames, m.n_codebooks])).to.deep.equal([
      [0, 0, 1.5, PER_TR, 2],
      [1, 1.5, 3, PER_TR, 2],
    ]);
    const codes = await codec.encode(stereo, { bandwidth: 3 });
    expect(codes.nFrames).to.be.greaterThan(Math.ceil(samples / 320)); // 150 frames per 0.99 s: the index runs ahead of time
    expectWindows(result, onGrid(codes, 2, samples));
    // by raw index (frame f at f / 150 s) TR 1 would hold other frames: the segment timing matters
    let same = 0;
    for (let t = 0; t < PER_TR; t++) if (result.features[(1 * 2 + 0) * PER_TR + t] === codes.data[PER_TR + t]) same++;
    expect(same).to.be.below(PER_TR * 0.5);
  });

  it('embeddings (6 kbps) and latents are the codec\'s placed the same way; mean and HRF work at 150 frames/s', async function () {
    const embeddings = await extractFeatures(file, { model: codec, tr: 1.5, output: 'embeddings', bandwidth: 6 });
    expect(embeddings.shape).to.deep.equal([2, 128, PER_TR]);
    expect(embeddings.nQ).to.equal(4);
    const e = await codec.embeddings(await codec.encode(stereo, { bandwidth: 6 }));
    expectWindows(embeddings, onGrid(e, 128, samples));

    const latents = await extractFeatures(file, { model: codec, tr: 1.5, output: 'latents' });
    const l = await codec.latents(stereo);
    const grid = onGrid(l, 128, samples);
    expectWindows(latents, grid, 1e-6);

    // mean: volume k averages the grid frames centred in [1.5 k, 1.5 k + 1.5), i.e. exactly its 225 window frames
    const mean = await extractFeatures(file, { model: codec, tr: 1.5, output: 'latents', resample: 'mean' });
    expect(mean.shape).to.deep.equal([2, 128]);
    for (let k = 0; k < 2; k++) {
      for (let r = 0; r < 128; r++) {
        let sum = 0;
        for (let t = 0; t < PER_TR; t++) sum += latents.features[(k * 128 + r) * PER_TR + t];
        expect(mean.features[k * 128 + r]).to.be.closeTo(sum / PER_TR, 1e-4);
      }
    }

    // HRF at the frame rate: causal convolution of the grid series with the kernel sampled every 1/150 s, then the mean
    const hrf = await extractFeatures(file, { model: codec, tr: 1.5, output: 'latents', resample: 'mean', hrf: 'glover' });
    const kernel = hrfKernel('glover', 1 / 150);
    const n = grid.length / 128;
    for (const r of [0, 57, 127]) {
      const convolved = new Float64Array(n);
      for (let j = 0; j < n; j++) for (let m = 0; m <= j && m < kernel.length; m++) convolved[j] += kernel[m] * grid[r * n + j - m];
      for (let k = 0; k < 2; k++) {
        let sum = 0;
        for (let t = 0; t < PER_TR; t++) sum += convolved[PER_TR * k + t];
        const want = sum / PER_TR;
        expect(hrf.features[k * 128 + r]).to.be.closeTo(want, 1e-4 * Math.max(1, Math.abs(want)));
      }
    }
  });

  it('a 0.2 s 1 kHz tone at 2.3 s (mono file, coded as both channels) lands in volume 1 and in its segment\'s frames only', async function () {
    const rate = 48000;
    const silence = new Float32Array(Math.round(SECONDS * rate));
    const probe = silence.slice();
    for (let i = Math.round(2.3 * rate); i < Math.round(2.5 * rate); i++) probe[i] = 0.5 * Math.sin((2 * Math.PI * 1000 * i) / rate);
    const probeFile = path.join(dir, 'probe.wav');
    const silenceFile = path.join(dir, 'silence.wav');
    await writeWav(probeFile, probe, { sampleRate: rate, format: 'float32' });
    await writeWav(silenceFile, silence, { sampleRate: rate, format: 'float32' });

    // latents/mean: volume 1 ([1.5, 3) s) changes, volume 0 does not
    const toneMean = await extractFeatures(probeFile, { model: codec, tr: 1.5, output: 'latents', resample: 'mean' });
    const quietMean = await extractFeatures(silenceFile, { model: codec, tr: 1.5, output: 'latents', resample: 'mean' });
    const volume = (f: FeatureSet, k: number): Float32Array => (f.features as Float32Array).subarray(k * 128, (k + 1) * 128);
    const scale = Math.max(...Array.from(quietMean.features, Math.abs));
    expect(maxAbsDiff(volume(toneMean, 0), volume(quietMean, 0))).to.be.below(1e-6 * scale);
    expect(maxAbsDiff(volume(toneMean, 1), volume(quietMean, 1))).to.be.above(1e-2 * scale);

    // latents/window: the frames that change are those of segment 2 (1.98 .. 2.97 s), grid frames 297 .. 444: with
    // frame n at (n + 0.5) / 150 s, (297.5 / 150, 444.5 / 150) = (1.983, 2.963); by raw index they would be 300 .. 449
    const tone = await extractFeatures(probeFile, { model: codec, tr: 1.5, output: 'latents' });
    const quiet = await extractFeatures(silenceFile, { model: codec, tr: 1.5, output: 'latents' });
    const changed: number[] = [];
    for (let k = 0; k < 2; k++) {
      for (let t = 0; t < PER_TR; t++) {
        let d = 0;
        for (let r = 0; r < 128; r++) d = Math.max(d, Math.abs(tone.features[(k * 128 + r) * PER_TR + t] - quiet.features[(k * 128 + r) * PER_TR + t]));
        if (d > 1e-4 * scale) changed.push(PER_TR * k + t);
      }
    }
    expect([changed[0], changed[changed.length - 1], changed.length]).to.deep.equal([297, 444, 148]);

    // the mono file is coded as the stereo pair (m, m)
    const l = await codec.latents(toPlanar([probe, probe]));
    expectWindows(tone, onGrid(l, 128, probe.length), 1e-6);
  });

  it('places the stereo stimulus, encoded alone, on the run: a negative onset starts into its frames, a positive one puts silence first', async function () {
    const grid = onGrid(await codec.encode(stereo, { bandwidth: 3 }), 2, samples);
    const zeros = await codec.encode(new Float32Array(2 * 2 * 48000), { bandwidth: 24 });
    const silence = [0, 1].map((r) => zeros.data[r * zeros.nFrames + 112]);
    const early = await extractFeatures(file, { model: codec, onset: -0.4 });
    const late = await extractFeatures(file, { model: codec, onset: 0.7 });
    expect(early.shape).to.deep.equal([1, 2, PER_TR]); // floor(2.8 / 1.5)
    expect(late.shape).to.deep.equal([2, 2, PER_TR]); // floor(3.9 / 1.5)
    const skip = Math.round(0.4 * 48000);
    const lead = Math.round(0.7 * 48000);
    expectWindows(early, Float64Array.from(placeOnRunOracle(grid, 2, silence, { runStart: 0, fileStart: skip, count: samples - skip, runSamples: samples - skip, hop: 320 })));
    expectWindows(late, Float64Array.from(placeOnRunOracle(grid, 2, silence, { runStart: lead, fileStart: 0, count: samples, runSamples: lead + samples, hop: 320 })));
    expect(late.metadata.map((m) => m.stimulus_fraction)).to.deep.equal([0.533333, 1]);
  });

  it('refuses a bandwidth the model lacks, and turning its codes back into audio, saying why', async function () {
    await rejects(extractFeatures(file, { model: codec, bandwidth: 1.5 }), RangeError, /unsupported bandwidth 1\.5 kbps for encodec_48khz; use one of 3, 6, 12, 24/);
    const codes = await extractFeatures(file, { model: codec, tr: 1.5, maxTrs: 1 }); // reads 1.5 s + 1 s of look-ahead
    expect(codes.shape).to.deep.equal([1, 2, PER_TR]);
    if (firstCodes) expect(Array.from(codes.features)).to.deep.equal(Array.from(firstCodes.features.subarray(0, 2 * PER_TR)));
    await rejects(featuresToAudio(codes), RangeError, /extracted with encodec_48khz, whose TR features cannot be turned back into audio.*scales/);
    // 24 kHz codes given the 48 kHz model to decode them
    const codes24 = { features: new Int16Array(2 * 4 * 112), shape: [2, 4, 112], tr: 1.5, kind: 'codes' as const };
    await rejects(featuresToAudio(codes24, { model: codec }), RangeError, /turning TR features back into audio runs encodec_24khz only/);
  });
});
