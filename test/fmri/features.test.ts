/**
 * The feature pipeline (lib/features.ts, lib/features-file.ts) on a real movie: espeak-ng speech muxed into a
 * stereo 44.1 kHz AAC .mp4 with a video track, encoded by a seeded random-weight full-size EnCodec model.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import * as audioModule from '../../lib/io/audio';
import { loadAudio } from '../../lib/io/audio';
import { trStartFrame } from '../../lib/fmri/alignment';
import { Encodec } from '../../lib/codec/codec';
import { Codes } from '../../lib/codec/codes';
import { extractFeatures } from '../../lib/fmri/features';
import { featuresToAudio } from '../../lib/fmri/features-audio';
import type { FeatureSet } from '../../lib/fmri/feature-set';
import { readFeatures, writeFeatures } from '../../lib/fmri/features-file';
import { hrfKernel } from '../../lib/fmri/hrf';
import { melSpectrogram } from '../../lib/dsp/mel';
import { writeNpy } from '../../lib/io/npy';
import { writeWav } from '../../lib/io/wav';
import { rejects } from '../helpers/assert';
import { Movie, makeMovie, makeVideoOnly } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

function python(code: string): string {
  const r = spawnSync('/usr/bin/python3', ['-c', code], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

/** Expects TR window k of 3-D features to be the whole-file codes at frames floor(k * tr * 75) onwards. */
function expectWindowsFromWhole(result: FeatureSet, whole: { data: ArrayLike<number>; rows: number; nFrames: number }): void {
  const [nTrs, rows, frames] = result.shape;
  expect(rows).to.equal(whole.rows);
  for (let k = 0; k < nTrs; k++) {
    const start = trStartFrame(k, result.tr);
    for (let r = 0; r < rows; r++) {
      for (let t = 0; t < frames; t++) {
        const got = result.features[(k * rows + r) * frames + t];
        const want = whole.data[r * whole.nFrames + start + t];
        if (got !== want) throw new Error(`TR ${k} row ${r} frame ${t}: ${got} != whole-file ${want} at frame ${start + t}`);
      }
    }
  }
}

describe('feature pipeline', function () {
  const dir = tempDir('features');
  let codec: Encodec;
  let movie: Movie;
  let samples: Float32Array; // the movie's soundtrack at 24 kHz mono
  let whole: Codes; // whole-file codes at 3 kbps
  let base: FeatureSet; // default extraction (TR 1.5, 3 kbps)

  before(async function () {
    codec = await Encodec.load(await randomModel(0), { threads: 2, warmup: false });
    movie = await makeMovie(dir, { text: 'Features for functional imaging. The speaker reads a short sentence.' });
    samples = (await loadAudio(movie.path)).samples;
    whole = await codec.encode(samples, { bandwidth: 3, exact: true }); // one-pass whole-file encoding
    base = await extractFeatures(movie.path, { model: codec });
  });

  after(function () {
    codec?.dispose();
  });

  it('gives one block of codes per TR from a movie soundtrack', function () {
    const nTrs = Math.floor(samples.length / 36000);
    expect(nTrs).to.be.greaterThan(1);
    expect(base.kind).to.equal('codes');
    expect(base.features).to.be.instanceOf(Int16Array);
    expect(base.shape).to.deep.equal([nTrs, 4, 112]);
    expect(base.metadata).to.have.length(nTrs);
    expect(base.metadata[1]).to.deep.equal({
      tr_index: 1, start_time: 1.5, end_time: 3, n_frames: 112, n_codebooks: 4, bandwidth: 3, encoding_mode: 'encodec', source: movie.path,
      // the run timeline: with onset 0 run time is stimulus time
      run_time_start: 1.5, run_time_end: 3, stimulus_time_start: 1.5, stimulus_time_end: 3, stimulus_fraction: 1, stim_file: movie.path,
      frame_time: 1.5,
    });
  });

  it('takes each TR window from the whole-file codes at floor(k * tr * 75)', function () {
    expectWindowsFromWhole(base, { data: whole.data, rows: whole.nQ, nFrames: whole.nFrames });
  });

  it('has the right shapes at every bandwidth and at TR 1.0 / 2.0', async function () {
    const oneTr = path.join(dir, 'one-tr.wav');
    await writeWav(oneTr, padTo(samples, 1.6 * 24000), { sampleRate: 24000 });
    for (const [bandwidth, nQ] of [[1.5, 2], [6, 8], [12, 16], [24, 32]]) {
      const r = await extractFeatures(oneTr, { model: codec, bandwidth });
      expect(r.shape, `${bandwidth} kbps`).to.deep.equal([1, nQ, 112]);
      expect(r.metadata[0].bandwidth).to.equal(bandwidth);
    }
    for (const [tr, frames, exact] of [[1.0, 75, false], [2.0, 150, true]] as const) {
      const r = await extractFeatures(movie.path, { model: codec, tr, exact });
      expect(r.shape, `TR ${tr}`).to.deep.equal([Math.floor(samples.length / (tr * 24000)), 4, frames]);
      expectWindowsFromWhole(r, { data: whole.data, rows: whole.nQ, nFrames: whole.nFrames });
    }
  });

  it('counts TRs of a file of known duration', async function () {
    const wav = path.join(dir, 'exact-3.2s.wav');
    await writeWav(wav, padTo(samples, 3.2 * 24000), { sampleRate: 24000 });
    for (const [tr, n] of [[1.5, 2], [1.0, 3], [2.0, 1]]) {
      const r = await extractFeatures(wav, { model: codec, tr });
      expect(r.shape[0], `TR ${tr}`).to.equal(n);
    }
  });

  it('stops reading after maxTrs (plus a 1 s look-ahead) and keeps the whole-file codes', async function () {
    // The file is streamed (never held whole): count what the stream delivers.
    const original = audioModule.streamAudio;
    const reads: number[] = [];
    (audioModule as { streamAudio: typeof original }).streamAudio = async function* (file, options) {
      let n = 0;
      try {
        for await (const block of original(file, options)) {
          n += block.length;
          yield block;
        }
      } finally {
        reads.push(n);
      }
    };
    let r: FeatureSet;
    try {
      r = await extractFeatures(movie.path, { model: codec, maxTrs: 1, cache: false });
    } finally {
      (audioModule as { streamAudio: typeof original }).streamAudio = original;
    }
    expect(reads).to.deep.equal([Math.round(2.5 * 24000)]);
    expect(samples.length).to.be.greaterThan(3 * 24000);
    expect(r.shape).to.deep.equal([1, 4, 112]);
    expect(Array.from(r.features)).to.deep.equal(Array.from(base.features.subarray(0, 4 * 112)));
  });

  it('gives zero TRs for an input shorter than one TR', async function () {
    const wav = path.join(dir, 'short.wav');
    await writeWav(wav, samples.subarray(0, 24000), { sampleRate: 24000 });
    const r = await extractFeatures(wav, { model: codec });
    expect(r.shape).to.deep.equal([0, 4, 112]);
    expect(r.features.length).to.equal(0);
    expect(r.metadata).to.deep.equal([]);
    await rejects(featuresToAudio(r, { model: codec }), RangeError, /no TRs/);
  });

  it('reconstructs exactly n_trs * tr seconds, from 3-D and flat layouts alike', async function () {
    const audio = await featuresToAudio(base, { model: codec });
    expect(audio.sampleRate).to.equal(24000);
    expect(audio.samples.length).to.equal(base.shape[0] * 36000);
    // Frames at their original positions: the first TR's audio is the whole-file decode's.
    const firstFrames = 150;
    const head = new Int16Array(whole.nQ * firstFrames);
    for (let q = 0; q < whole.nQ; q++) head.set(whole.data.subarray(q * whole.nFrames, q * whole.nFrames + firstFrames), q * firstFrames);
    const decoded = await codec.decode({ data: head, nQ: whole.nQ, nFrames: firstFrames });
    let diff = 0;
    for (let i = 0; i < 24000; i++) diff = Math.max(diff, Math.abs(decoded[i] - audio.samples[i]));
    expect(diff).to.be.lessThan(0.05);

    const flat = await extractFeatures(movie.path, { model: codec, layout: 'flat', maxTrs: 2 });
    expect(flat.shape).to.deep.equal([2, 4 * 112]);
    expect(Array.from(flat.features)).to.deep.equal(Array.from(base.features.subarray(0, 2 * 4 * 112))); // codebook-major rows
    const fromFlat = await featuresToAudio(flat, { model: codec });
    const from3d = await featuresToAudio({ features: base.features.subarray(0, 2 * 4 * 112), shape: [2, 4, 112], tr: 1.5 }, { model: codec });
    expect(fromFlat.samples.length).to.equal(2 * 36000);
    expect(Array.from(fromFlat.samples)).to.deep.equal(Array.from(from3d.samples));
  });

  it('gives embeddings (float latents) sliced like the codes', async function () {
    const r = await extractFeatures(movie.path, { model: codec, output: 'embeddings', maxTrs: 2 });
    expect(r.kind).to.equal('embeddings');
    expect(r.features).to.be.instanceOf(Float32Array);
    expect(r.shape).to.deep.equal([2, 128, 112]);
    const latents = await codec.embeddings(whole);
    expectWindowsFromWhole(r, { data: latents.data, rows: 128, nFrames: latents.nFrames });
    await rejects(featuresToAudio(r, { model: codec }), RangeError, /embeddings cannot be turned back into audio/);
  });

  it('convolves codes with the HRF, rounding and clipping to [0, 1023]', async function () {
    const r = await extractFeatures(movie.path, { model: codec, hrf: 'glover' });
    expect(r.features).to.be.instanceOf(Int16Array);
    expect(r.shape).to.deep.equal(base.shape);
    const kernel = hrfKernel('glover', 1.5);
    const [nTrs, rows, frames] = base.shape;
    const size = rows * frames;
    for (let k = 0; k < nTrs; k++) {
      for (let j = 0; j < size; j += 37) {
        let v = 0;
        for (let m = 0; m <= k; m++) v += kernel[m] * base.features[(k - m) * size + j];
        expect(r.features[k * size + j]).to.equal(Math.min(1023, Math.max(0, Math.round(v))));
      }
    }
    // Causal: the kernel is 0 at lag 0, so the first TR (with nothing before it) is all zeros.
    expect(r.features.subarray(0, size).every((v) => v === 0)).to.equal(true);
  });

  it('gives mel features without a model, and turns them back into n_trs * tr seconds', async function () {
    const r = await extractFeatures(movie.path, { mode: 'mel' });
    const nTrs = Math.floor(samples.length / 36000);
    expect(r.kind).to.equal('mel');
    expect(r.shape).to.deep.equal([nTrs, 2048, 65]);
    expect(r.metadata[0]).to.include({ n_frames: 65, n_codebooks: 0, bandwidth: null, encoding_mode: 'mel' });
    const at22k = (await loadAudio(movie.path, { sampleRate: 22050 })).samples;
    const spec = await melSpectrogram(at22k);
    for (let k = 0; k < nTrs; k++) {
      const start = Math.floor((k * 1.5 * 22050) / 512);
      for (const [m, t] of [[100, 0], [700, 30], [1500, 64]]) {
        expect(r.features[(k * 2048 + m) * 65 + t]).to.equal(spec.data[m * spec.nFrames + start + t]);
      }
    }
    const audio = await featuresToAudio(r);
    expect(audio.sampleRate).to.equal(22050);
    expect(audio.samples.length).to.equal(nTrs * 1.5 * 22050);
  });

  it('writes .npy + .csv that numpy reads, and reads them back with the kind detected', async function () {
    const out = path.join(dir, 'movie-codes');
    const files = await writeFeatures(out, base);
    expect(files).to.deep.equal({ npy: `${out}.npy`, csv: `${out}.csv` });
    const shown = python(
      `import numpy as np, csv; a = np.load('${files.npy}'); rows = list(csv.DictReader(open('${files.csv}')));` +
        `print(a.dtype, a.shape, int(a[1, 2, 3]), len(rows), rows[1]['start_time'], rows[1]['feature_kind'])`,
    );
    const [nTrs] = base.shape;
    expect(shown).to.equal(`int16 (${nTrs}, 4, 112) ${base.features[(1 * 4 + 2) * 112 + 3]} ${nTrs} 1.5 codes`);
    const back = await readFeatures(files.npy);
    expect(back.kind).to.equal('codes');
    expect(back.shape).to.deep.equal(base.shape);
    expect(back.tr).to.equal(1.5);
    expect(back.metadata).to.deep.equal(base.metadata);
    expect(Array.from(back.features)).to.deep.equal(Array.from(base.features));

    // Detection without a CSV: float with 128 rows and positive values -> embeddings; all <= 0 -> mel.
    await writeNpy(path.join(dir, 'emb.npy'), Float32Array.from({ length: 2 * 128 * 112 }, (_, i) => Math.sin(i)), [2, 128, 112]);
    expect((await readFeatures(path.join(dir, 'emb.npy'))).kind).to.equal('embeddings');
    await writeNpy(path.join(dir, 'mel.npy'), new Float32Array(2 * 64 * 65).fill(-20), [2, 64, 65]);
    const mel = await readFeatures(path.join(dir, 'mel.npy'));
    expect(mel.kind).to.equal('mel');
    expect(mel.mel?.nMels).to.equal(64);
  });

  it('rejects bad inputs and options with errors that name the problem', async function () {
    await rejects(extractFeatures(path.join(dir, 'missing.mp4'), { model: codec }), audioModule.AudioError, /no such file/);
    await rejects(extractFeatures(await makeVideoOnly(dir), { model: codec }), audioModule.AudioError, /audio/);
    const junk = path.join(dir, 'junk.mp3');
    fs.writeFileSync(junk, Buffer.from('this is not an mp3 file at all, just text'.repeat(20)));
    await rejects(extractFeatures(junk, { model: codec }), audioModule.AudioError, /.+/);
    await rejects(extractFeatures(movie.path, { model: codec, tr: 0 }), RangeError, /tr must be a positive number of seconds/);
    await rejects(extractFeatures(movie.path, { model: codec, tr: -1.5 }), RangeError, /tr must be a positive/);
    await rejects(extractFeatures(movie.path, { model: codec, maxTrs: 0 }), RangeError, /maxTrs must be an integer >= 1/);
    await rejects(extractFeatures(movie.path, { model: codec, hrf: 'boxcar' as never }), RangeError, /unknown hrf 'boxcar'; use one of none, glover, spm/);
    await rejects(extractFeatures(movie.path, { model: codec, mode: 'mfcc' as never }), RangeError, /unknown mode 'mfcc'; use one of encodec, mel/);
    await rejects(extractFeatures(movie.path, { model: codec, layout: 'wide' as never }), RangeError, /unknown layout 'wide'; use one of tr, flat/);
    await rejects(extractFeatures(movie.path, { model: codec, bandwidth: 5 }), RangeError, /unsupported bandwidth 5/);

    // Feature files of the wrong dtype or shape.
    await writeNpy(path.join(dir, 'bool.npy'), new Uint8Array(8), [2, 4]);
    fs.writeFileSync(path.join(dir, 'bool.npy'), fs.readFileSync(path.join(dir, 'bool.npy')).toString('latin1').replace("'|u1'", "'|b1'"), 'latin1');
    await rejects(readFeatures(path.join(dir, 'bool.npy')), TypeError, /dtype \|b1 is not a feature dtype; expected EnCodec codes/);
    await writeNpy(path.join(dir, 'vector.npy'), new Int16Array(10), [10]);
    await rejects(readFeatures(path.join(dir, 'vector.npy')), RangeError, /shape \(10\) is not a feature array/);
    await writeNpy(path.join(dir, 'big.npy'), Int32Array.from([1, 2, 5000, 4]), [1, 2, 2]);
    await rejects(readFeatures(path.join(dir, 'big.npy')), RangeError, /5000.*outside \[0, 1023\]/);
    await writeNpy(path.join(dir, 'positive.npy'), new Float64Array(2 * 5 * 7).fill(1), [2, 5, 7]);
    await rejects(readFeatures(path.join(dir, 'positive.npy')), RangeError, /positive values; expected/);
    await rejects(featuresToAudio({ features: new Int16Array(2 * 4 * 100), shape: [2, 4, 100] }, { model: codec }), RangeError, /100 frames per TR but the TR gives 112/);

    // A missing folder is made, as `extract --out` makes it; no partial output when writing fails.
    const newDir = path.join(dir, 'no-such-dir', 'x');
    await writeFeatures(newDir, base);
    expect(fs.readdirSync(path.dirname(newDir)).sort()).to.deep.equal(['x.csv', 'x.npy']);
    const underFile = path.join(dir, 'vector.npy', 'x'); // a "folder" that is a file
    await rejects(writeFeatures(underFile, base), Error, /ENOTDIR|EEXIST/);
    expect(fs.statSync(path.join(dir, 'vector.npy')).isFile()).to.equal(true);
  });
});

/** `samples` cut or zero-padded to exactly `n` samples. */
function padTo(samples: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n);
  out.set(samples.subarray(0, n));
  return out;
}
