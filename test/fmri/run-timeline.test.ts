/**
 * Features on the scanner's clock (lib/fmri/run-timeline.ts through extractFeatures / extractRunFeatures): the run
 * timeline, the per-volume timing columns, latents, resampling, the probe of issue 15, defaults unchanged, feature
 * file pairs and HDF5 output read by h5py. Seeded random-weight model; oracles in numpy.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import * as audioModule from '../../lib/io/audio';
import { streamAudio } from '../../lib/io/audio';
import { Encodec } from '../../lib/codec/codec';
import { trStartFrame, framesPerTr, trCountForSamples } from '../../lib/fmri/alignment';
import { extractFeatures, extractRunFeatures } from '../../lib/fmri/features';
import { featureFilesFor, featuresExist, readFeatures, writeFeatures } from '../../lib/fmri/features-file';
import { writeConcatH5, writeFeaturesH5 } from '../../lib/fmri/h5';
import { encodeNpy } from '../../lib/io/npy';
import { writeWav } from '../../lib/io/wav';
import { rejects } from '../helpers/assert';
import { makeSpeech24k } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { maxRelativeError, placeOnRunOracle, pythonJson } from '../helpers/python';
import { tempDir } from '../helpers/temp-dir';

const SR = 24000;

/** The probe stimulus: 6 s of silence with a 0.2 s 1 kHz tone at stimulus time 3.0 s. */
function probeSamples(): Float32Array {
  const x = new Float32Array(6 * SR);
  for (let i = 3 * SR; i < 3.2 * SR; i++) x[i] = 0.5 * Math.sin((2 * Math.PI * 1000 * i) / SR);
  return x;
}

/** Rows k of a (n, rows) matrix: Euclidean distance between rows a and b. */
function rowDistance(x: Float32Array, rows: number, a: number, b: number): number {
  let s = 0;
  for (let r = 0; r < rows; r++) s += (x[a * rows + r] - x[b * rows + r]) ** 2;
  return Math.sqrt(s);
}

describe('scanner clock', function () {
  const dir = tempDir('scanner-clock');
  let codec: Encodec;
  let probe: string;
  let speech: string;
  let speechSamples: Float32Array;

  before(async function () {
    codec = await Encodec.load(await randomModel(0), { threads: 2, warmup: false });
    probe = path.join(dir, 'probe.wav');
    await writeWav(probe, probeSamples(), { sampleRate: SR, format: 'float32' });
    speech = await makeSpeech24k(dir, 'Encoding models of the auditory cortex read these features.', 5);
    speechSamples = (await audioModule.loadAudio(speech)).samples;
  });

  after(function () {
    codec?.dispose();
  });

  it('keeps the default output of the previous code path byte for byte (codes, .npy and the old CSV columns)', async function () {
    // the previous code path, literally: stream the file, encode, n_trs = floor(samples / (tr * sr)), windows at floor(k tr 75)
    const blocks: Float32Array[] = [];
    for await (const b of streamAudio(speech, { sampleRate: SR })) blocks.push(b);
    const codes = await codec.encodeStream(blocks, { bandwidth: 3 });
    const samples = blocks.reduce((n, b) => n + b.length, 0);
    const nTrs = trCountForSamples(samples, 1.5);
    const frames = framesPerTr(1.5);
    const want = new Int16Array(nTrs * 4 * frames);
    for (let k = 0; k < nTrs; k++) {
      for (let q = 0; q < 4; q++) {
        for (let t = 0; t < frames; t++) want[(k * 4 + q) * frames + t] = codes.data[q * codes.nFrames + trStartFrame(k, 1.5) + t];
      }
    }
    const result = await extractFeatures(speech, { model: codec });
    expect(result.shape).to.deep.equal([nTrs, 4, frames]);
    const files = await writeFeatures(path.join(dir, 'default'), result);
    expect(Buffer.compare(fs.readFileSync(files.npy), Buffer.from(encodeNpy(want, [nTrs, 4, frames])))).to.equal(0);
    const lines = fs.readFileSync(files.csv, 'utf8').trim().split('\n');
    const old = 'tr_index,start_time,end_time,n_frames,n_codebooks,bandwidth,encoding_mode,source,feature_kind,hrf,layout,tr,sample_rate,n_fft,hop_length,n_mels,top_db';
    expect(lines[0].startsWith(`${old},`)).to.equal(true);
    expect(lines[1].startsWith(`0,0,1.5,112,4,3,encodec,${speech},codes,none,tr,1.5,,,,,,`)).to.equal(true);
  });

  it('gives latents (encoder output before quantization) chunked as encode, and refuses models older than exporter 1.5', async function () {
    const clip = speechSamples.subarray(0, 3 * SR); // under one chunk: chunked equals one pass
    const chunked = await codec.latents(clip);
    const exact = await codec.latents(clip, { exact: true });
    expect([chunked.dim, chunked.nFrames]).to.deep.equal([128, Math.ceil(clip.length / 320)]);
    expect(maxRelativeError(chunked.data, exact.data, 1e-2)).to.be.below(1e-4);
    const streamed: number[] = [];
    for await (const b of codec.latentsStream([speechSamples.subarray(0, 2 * SR), speechSamples.subarray(2 * SR)])) streamed.push(b.firstFrame, b.nFrames);
    expect(streamed[0]).to.equal(0);
    const old = await Encodec.load(await randomModel(0), { threads: 1, warmup: false });
    try {
      (old.info as { latents_span?: boolean }).latents_span = undefined; // as in a file of exporter 1.4
      await rejects(old.latents(clip), Error, /exported by exporter .* has no latents method; re-export it/);
    } finally {
      old.dispose();
    }
  });

  /** The model's frame for digital silence, as the encode stage keeps it: frame 112 of 2 s of zeros. */
  async function silenceOf(kind: 'codes' | 'latents', nQ = 4): Promise<number[]> {
    const zeros = new Float32Array(2 * SR);
    if (kind === 'latents') {
      const l = await codec.latents(zeros);
      return Array.from({ length: 128 }, (_, r) => l.data[r * l.nFrames + 112]);
    }
    const c = await codec.encode(zeros, { bandwidth: 24 });
    return Array.from({ length: nQ }, (_, r) => c.data[r * c.nFrames + 112]);
  }

  it('places the stimulus, encoded alone, at its onset: silence frames, its frames by time, silence to the end of the run', async function () {
    const onset = 2.25; // 168.75 frames: the stimulus's frames land half a frame off the run's grid
    const runTrs = 6;
    const codes = await codec.encode(speechSamples, { bandwidth: 3 });
    const r = await extractFeatures(speech, { model: codec, onset, runTrs });
    expect(r.shape).to.deep.equal([runTrs, 4, 112]);
    const runSamples = runTrs * 1.5 * SR;
    const count = Math.min(speechSamples.length, runSamples - onset * SR);
    const want = placeOnRunOracle(codes.data, 4, await silenceOf('codes'), { runStart: onset * SR, fileStart: 0, count, runSamples, hop: 320 });
    const n = want.length / 4;
    for (let k = 0; k < runTrs; k++) {
      for (let q = 0; q < 4; q++) {
        for (let t = 0; t < 112; t++) expect(r.features[(k * 4 + q) * 112 + t]).to.equal(want[q * n + trStartFrame(k, 1.5) + t]);
      }
    }
    const m = r.metadata;
    expect(m.map((v) => v.stimulus_fraction)).to.deep.equal([0, 0.5, 1, 1, 0.833333, 0]); // 5 s of speech from 2.25 s
    expect([m[1].stimulus_time_start, m[1].stimulus_time_end]).to.deep.equal([0, 0.75]);
    expect([m[2].run_time_start, m[2].run_time_end, m[2].stimulus_time_start]).to.deep.equal([3, 4.5, 0.75]);
    expect(Number.isNaN(m[0].stimulus_time_start) && Number.isNaN(m[0].stimulus_time_end)).to.equal(true);
  });

  it('starts a stimulus with a negative onset -onset seconds into its own frames (the first ones played before the run)', async function () {
    const r = await extractFeatures(speech, { model: codec, onset: -1.5, output: 'latents', resample: 'mean' });
    const latents = await codec.latents(speechSamples);
    expect(r.shape).to.deep.equal([2, 128]); // floor((5 - 1.5) / 1.5)
    const runSamples = speechSamples.length - 1.5 * SR;
    const placed = placeOnRunOracle(latents.data, 128, await silenceOf('latents'), { runStart: 0, fileStart: 1.5 * SR, count: runSamples, runSamples, hop: 320 });
    const want = pythonJson<number[][]>(
      `x = np.array(data, dtype=np.float64).reshape(128, -1)
c = (np.arange(x.shape[1]) + 0.5) / 75
print(json.dumps([x[:, np.floor(c / 1.5) == k].mean(axis=1).tolist() for k in range(2)]))`,
      placed,
    );
    expect(maxRelativeError(r.features, want.flat(), 1e-3)).to.be.below(1e-5);
    expect(r.metadata[0].stimulus_time_start).to.equal(1.5);
  });

  it('resamples latents of the run by Lanczos at (k + sliceTimeRef) tr, as lanczosinterp2D on the placed frames', async function () {
    const onset = 1;
    const runTrs = 5;
    const runSamples = runTrs * 2 * SR;
    const latents = await codec.latents(speechSamples);
    const placed = placeOnRunOracle(latents.data, 128, await silenceOf('latents'), { runStart: onset * SR, fileStart: 0, count: speechSamples.length, runSamples, hop: 320 });
    expect(placed.length).to.equal((128 * runSamples) / 320);
    const r = await extractFeatures(speech, { model: codec, onset, runTrs, tr: 2, output: 'latents', resample: 'lanczos', sliceTimeRef: 0.5 });
    const want = pythonJson<number[][]>(
      `x = np.array(data, dtype=np.float64).reshape(128, -1).T
old = (np.arange(x.shape[0]) + 0.5) * 320 / 24000
new = (np.arange(${runTrs}) + 0.5) * 2.0
d = (new[:, None] - old[None, :]) / 2.0
L = np.where(d == 0, 1.0, 3 * np.sin(np.pi * d) * np.sin(np.pi * d / 3) / np.where(d == 0, 1, (np.pi * d) ** 2))
L[np.abs(d) > 3] = 0
print(json.dumps((L @ x).tolist()))`,
      placed,
    );
    expect(r.shape).to.deep.equal([runTrs, 128]);
    expect(maxRelativeError(r.features, want.flat(), 1e-2)).to.be.below(1e-5);
    expect(r.metadata.map((m) => m.frame_time)).to.deep.equal([1, 3, 5, 7, 9]);
  });

  it('finds the probe tone (stimulus time 3.0 s, onset 4.5 s, TR 1.5) in volume 5, silence before the onset', async function () {
    const settings = { onset: 4.5, tr: 1.5, runTrs: 20 };
    const mel = await extractFeatures(probe, { ...settings, mode: 'mel' });
    const [, nMels, frames] = mel.shape;
    const peak = (k: number): number => (mel.features as Float32Array).subarray(k * nMels * frames, (k + 1) * nMels * frames).reduce((a, b) => Math.max(a, b), -Infinity);
    const peaks = Array.from({ length: 20 }, (_, k) => peak(k));
    expect(peaks.indexOf(Math.max(...peaks))).to.equal(5);
    for (let k = 0; k < 3; k++) expect(peaks[k]).to.equal(-80); // volumes before the onset: digital silence
    const melMean = await extractFeatures(probe, { ...settings, mode: 'mel', resample: 'mean' });
    const loud = Array.from({ length: 20 }, (_, k) => (melMean.features as Float32Array).subarray(k * nMels, (k + 1) * nMels).reduce((a, b) => Math.max(a, b), -Infinity));
    expect(loud.indexOf(Math.max(...loud))).to.equal(5);
    const lat = await extractFeatures(probe, { ...settings, model: codec, output: 'latents', resample: 'mean' });
    const change = Array.from({ length: 20 }, (_, k) => rowDistance(lat.features as Float32Array, 128, k, 2));
    expect(change.indexOf(Math.max(...change))).to.equal(5);
    expect(rowDistance(lat.features as Float32Array, 128, 1, 2)).to.be.below(change[5] * 1e-2); // silence is steady
    expect(lat.metadata.map((m) => m.stimulus_fraction)).to.deep.equal([0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect([lat.metadata[5].stimulus_time_start, lat.metadata[5].stimulus_time_end]).to.deep.equal([3, 4.5]);
  });

  it('places several stimuli of a run (BIDS events) and rejects overlapping ones, naming them', async function () {
    const r = await extractRunFeatures(
      [
        { file: probe, onset: 1.5, duration: 3 },
        { file: speech, onset: 6 },
      ],
      { model: codec, runTrs: 8, output: 'latents', resample: 'mean' },
      'run_events.tsv',
    );
    expect(r.shape).to.deep.equal([8, 128]);
    expect(r.metadata.map((m) => m.stimulus_fraction)).to.deep.equal([0, 1, 1, 0, 1, 1, 1, 0.333333]);
    expect(r.metadata[4].stim_file).to.equal(speech);
    expect(r.source).to.equal('run_events.tsv');
    await rejects(
      extractRunFeatures([{ file: probe, onset: 0, duration: 5, label: 'row 1' }, { file: speech, onset: 4, label: 'row 2' }], { model: codec }),
      RangeError,
      /row 1 .* overlaps row 2/,
    );
  });

  it('rejects bad run settings before reading anything, naming the value', async function () {
    await rejects(extractFeatures(speech, { model: codec, onset: 30, runTrs: 20 }), RangeError, /onset 30 s is at or after the end of the run/);
    await rejects(extractFeatures(speech, { model: codec, runTrs: 0 }), RangeError, /runTrs must be a positive whole number/);
    await rejects(extractFeatures(speech, { model: codec, runTrs: 2.5 }), RangeError, /runTrs must be a positive whole number.*2\.5/);
    await rejects(extractFeatures(speech, { model: codec, onset: NaN }), RangeError, /onset must be a finite number/);
    await rejects(extractFeatures(speech, { model: codec, resample: 'lanczos' }), RangeError, /codes are categorical/);
    await rejects(extractFeatures(speech, { model: codec, zscore: true }), RangeError, /zscore needs continuous/);
    await rejects(extractFeatures(speech, { model: codec, sliceTimeRef: 1.5 }), RangeError, /sliceTimeRef must be a number from 0 to 1/);
    await rejects(extractFeatures(speech, { model: codec, onset: -60 }), RangeError, /no stimulus plays inside the run/);
  });

  it('z-scores then delays the resampled features (n_trs, n_delays * 128)', async function () {
    const base = await extractFeatures(speech, { model: codec, output: 'latents', resample: 'mean', runTrs: 4 });
    const r = await extractFeatures(speech, { model: codec, output: 'latents', resample: 'mean', runTrs: 4, zscore: true, delays: [0, 2] });
    expect(r.shape).to.deep.equal([4, 256]);
    const want = pythonJson<number[][]>(
      `x = np.array(data, dtype=np.float64).reshape(4, 128)
sd = x.std(axis=0)
z = np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1), 0)
d2 = np.zeros_like(z); d2[2:] = z[:-2]
print(json.dumps(np.concatenate([z, d2], axis=1).tolist()))`,
      Array.from(base.features),
    );
    expect(maxRelativeError(r.features, want.flat(), 1e-3)).to.be.below(1e-5);
  });

  it('fails instead of writing 0 TRs when the audio reader throws a RangeError before the first sample', async function () {
    const original = audioModule.streamAudio;
    (audioModule as { streamAudio: typeof original }).streamAudio = async function* () {
      throw new RangeError('block size must be at least 1 sample, got 0');
    };
    try {
      await rejects(extractFeatures(speech, { model: codec, cache: false }), RangeError, /block size/);
    } finally {
      (audioModule as { streamAudio: typeof original }).streamAudio = original;
    }
    const empty = path.join(dir, 'empty.wav');
    await writeWav(empty, new Float32Array(0), { sampleRate: SR });
    expect((await extractFeatures(empty, { model: codec })).shape).to.deep.equal([0, 4, 112]); // genuinely empty: 0 TRs
  });

  it('treats a new .npy beside an older .csv (a crash between the renames) as unfinished', async function () {
    const a = await extractFeatures(speech, { model: codec, maxTrs: 1 });
    const b = await extractFeatures(speech, { model: codec, maxTrs: 2 });
    const base = path.join(dir, 'pair');
    const files = await writeFeatures(base, a);
    expect(featuresExist(base)).to.equal(true);
    const oldCsv = fs.readFileSync(files.csv);
    await writeFeatures(base, b);
    fs.writeFileSync(files.csv, oldCsv); // as if the run died after renaming the .npy
    expect(featuresExist(base)).to.equal(false);
    await rejects(readFeatures(files.npy), RangeError, /was written for another pair\.npy/);
    await writeFeatures(base, b);
    expect(featuresExist(base)).to.equal(true);
    expect((await readFeatures(featureFilesFor(base).npy)).shape).to.deep.equal([2, 4, 112]);
  });

  it('writes HDF5 files that h5py reads: features, frame_times, run_time_start, settings; X and run_onsets', async function () {
    const one = await extractFeatures(speech, { model: codec, output: 'latents', resample: 'lanczos', runTrs: 3, onset: 0.5, delays: [1, 2] });
    const two = await extractFeatures(probe, { model: codec, output: 'latents', resample: 'lanczos', runTrs: 4, delays: [1, 2] });
    const file = path.join(dir, 'run.h5');
    await writeFeaturesH5(file, one);
    const both = path.join(dir, 'all.h5');
    await writeConcatH5(both, [one, two]);
    const got = pythonJson<Record<string, unknown>>(
      `import h5py
f = h5py.File(data[0], 'r')
g = h5py.File(data[1], 'r')
print(json.dumps({
  'features': f['features'][()].tolist(), 'dtype': str(f['features'].dtype),
  'frame_times': f['frame_times'][()].tolist(), 'run_time_start': f['run_time_start'][()].tolist(),
  'stimulus_fraction': f['stimulus_fraction'][()].tolist(), 'onset': float(f.attrs['onset']),
  'resample': str(f.attrs['resample']), 'delays': str(f.attrs['delays']),
  'X': g['X'][()].shape, 'run_onsets': g['run_onsets'][()].tolist(), 'X_rows_4': g['X'][3].tolist(),
  'run_onset': g['run_onset'][()].tolist(), 'run_trs': g['run_trs'][()].tolist(), 'root_onset': 'onset' in g.attrs,
  'run_ref': g['run_slice_time_ref'][()].tolist(), 'ref': float(g.attrs['slice_time_ref']), 'tr': float(g.attrs['tr']),
}))`,
      [file, both],
    );
    expect(got.dtype).to.equal('float32');
    expect((got.features as number[][]).flat()).to.deep.equal(Array.from(one.features));
    expect(got.frame_times).to.deep.equal([0, 1.5, 3]);
    expect(got.run_time_start).to.deep.equal([0, 1.5, 3]);
    expect(got.stimulus_fraction).to.deep.equal([2 / 3, 1, 1].map((v) => Math.round(v * 1e6) / 1e6));
    expect([got.onset, got.resample, got.delays]).to.deep.equal([0.5, 'lanczos', '1 2']);
    expect(got.X).to.deep.equal([7, 256]);
    expect(got.run_onsets).to.deep.equal([0, 3]);
    expect(got.X_rows_4).to.deep.equal(Array.from(two.features.subarray(0, 256)));
    // each run's own settings, one value per run; a setting the runs share stays a root attribute
    expect([got.run_onset, got.run_trs, got.root_onset]).to.deep.equal([[0.5, 0], [3, 4], false]);
    expect([got.run_ref, got.ref, got.tr]).to.deep.equal([[0, 0], 0, 1.5]);
  });
});
