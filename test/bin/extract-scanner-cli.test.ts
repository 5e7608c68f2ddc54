/**
 * `encodec-native extract` on the scanner's clock, run as a user would: a BIDS run (events.tsv with stim_files, a
 * NIfTI-1 BOLD image and its sidecar, both written by nibabel) to an encoding-model matrix X in HDF5 (read by
 * h5py), output names after the events file, and the errors a wrong run setting gets (exit 2, nothing written).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { Encodec } from '../../lib/codec/codec';
import { threadsPerJob } from '../../lib/codec/threads';
import { toJson } from '../../lib/common/format';
import { readFeatures } from '../../lib/fmri/features-file';
import { loadAudio } from '../../lib/io/audio';
import { roundTripQuality } from '../../lib/quality/roundtrip-quality';
import { cli } from '../helpers/cli';
import { makeSpeech24k, makeWav24k } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { pythonJson } from '../helpers/python';
import { tempDir } from '../helpers/temp-dir';
import { validateBids } from '../helpers/bids-validator';

/** Writes a NIfTI-1 BOLD image (4x4x3 voxels, `volumes` volumes, TR `tr` s) with nibabel. */
function bold(file: string, volumes: number, tr: number): void {
  pythonJson(
    `import nibabel as nib
img = nib.Nifti1Image(np.zeros((4, 4, 3, ${volumes}), dtype=np.int16), np.eye(4))
img.header.set_zooms((3.0, 3.0, 3.0, ${tr}))
img.header.set_xyzt_units('mm', 'sec')
nib.save(img, data)
print('true')`,
    file,
  );
}

describe('extract CLI on the scanner clock', function () {
  const dir = tempDir('extract-scanner');
  let model: string;
  let func: string;
  let events: string[];
  let bolds: string[];

  before(async function () {
    model = await randomModel(0);
    const stimuli = path.join(dir, 'stimuli');
    fs.mkdirSync(stimuli);
    const a = await makeSpeech24k(dir, 'The first part of the movie starts here.', 4);
    const b = await makeSpeech24k(dir, 'And the second part of the movie follows.', 4);
    fs.copyFileSync(a, path.join(stimuli, 'part1.wav'));
    fs.copyFileSync(b, path.join(stimuli, 'part2.wav'));
    func = path.join(dir, 'sub-01', 'func');
    fs.mkdirSync(func, { recursive: true });
    events = [1, 2].map((run) => path.join(func, `sub-01_task-movie_run-${run}_events.tsv`));
    bolds = [1, 2].map((run) => path.join(func, `sub-01_task-movie_run-${run}_bold.nii.gz`));
    fs.writeFileSync(events[0], 'onset\tduration\tstim_file\n3.0\tn/a\tpart1.wav\n');
    fs.writeFileSync(events[1], 'onset\tduration\tstim_file\n1.5\t3.0\tpart2.wav\n');
    bold(bolds[0], 6, 1.5);
    bold(bolds[1], 5, 1.5);
    fs.writeFileSync(bolds[0].replace(/\.nii\.gz$/, '.json'), JSON.stringify({ RepetitionTime: 1.5, SliceTiming: [0, 0.75, 0.375, 1.125] }));
  });

  it('goes from two BIDS runs to X and run_onsets in one command (latents, lanczos, delays, z-score, h5, concat)', async function () {
    const out = path.join(dir, 'derivatives');
    // two workers: X holds the runs in input order whichever finishes first
    const r = cli([
      'extract', '--events', events[0], '--bold', bolds[0], '--events', events[1], '--bold', bolds[1],
      '--stimuli', path.join(dir, 'stimuli'), '--output', 'latents', '--resample', 'lanczos', '--delays', '1,2,3,4',
      '--zscore', '--format', 'h5', '--concat', '--out', out, '--model', model, '--jobs', '2',
    ]);
    expect(r.stderr).to.match(/2 written, 0 skipped, 0 failed/);
    expect(r.status, r.stderr).to.equal(0);
    // a BIDS derivative dataset: the source's sub-01/func/ mirrored, a description and a sidecar per output
    const file = path.join(out, 'sub-01', 'func', 'sub-01_task-movie_desc-encodec_features.h5');
    const got = pythonJson<{ X: number[]; onsets: number[]; times: number[]; fraction: number[]; ref: number[]; rootRef: boolean; trs: number[]; tr: number }>(
      `import h5py
f = h5py.File(data, 'r')
print(json.dumps({'X': list(f['X'].shape), 'onsets': f['run_onsets'][()].tolist(), 'times': f['frame_times'][()].tolist(),
  'fraction': f['stimulus_fraction'][()].tolist(), 'ref': f['run_slice_time_ref'][()].tolist(),
  'rootRef': 'slice_time_ref' in f.attrs, 'trs': f['run_trs'][()].tolist(), 'tr': float(f.attrs['tr'])}))`,
      file,
    );
    expect(got.X).to.deep.equal([11, 4 * 128]); // 6 + 5 volumes from dim[4]; 4 delays x 128 latents
    expect(got.onsets).to.deep.equal([0, 6]);
    expect(got.fraction).to.deep.equal([0, 0, 1, 1, 0.666667, 0, 0, 1, 1, 0, 0]); // 4 s from 3 s; 3 s from 1.5 s
    // run 1's sidecar: median SliceTiming 0.5625 s / TR 1.5 s; run 2 has none: 0. The runs differ, so no root
    // attribute may claim one value for both.
    expect(got.ref).to.deep.equal([0.375, 0]);
    expect(got.rootRef).to.equal(false);
    expect(got.trs).to.deep.equal([6, 5]);
    expect(got.tr).to.equal(1.5);
    expect(got.times.slice(0, 2)).to.deep.equal([0.5625, 2.0625]);
    const description = JSON.parse(fs.readFileSync(path.join(out, 'dataset_description.json'), 'utf8'));
    expect(description).to.include({ DatasetType: 'derivative' });
    expect(description.GeneratedBy[0].Name).to.equal('encodec-native');
    expect(description.GeneratedBy[0].Description).to.match(/extract --events .*--concat/);
    const sidecar = JSON.parse(fs.readFileSync(file.replace(/\.h5$/, '.json'), 'utf8'));
    expect(sidecar).to.include({ RepetitionTime: 1.5, FeatureKind: 'latents', Resampling: 'lanczos', NumberOfVolumes: 11 });
    expect(sidecar.DelaysInVolumes).to.deep.equal([1, 2, 3, 4]);
    expect(sidecar.ModelSHA256).to.match(/^[0-9a-f]{64}$/);
    expect(sidecar.Runs.map((x: { Volumes: number; SliceTimingReference: number }) => [x.Volumes, x.SliceTimingReference])).to.deep.equal([[6, 0.375], [5, 0]]);
    expect(sidecar).to.not.have.property('SliceTimingReference'); // the runs differ: per run only
    const { issues } = await validateBids(out);
    expect(issues.filter((i) => i.severity === 'error').map((i) => `${i.code} ${i.location ?? ''}`)).to.deep.equal([]);
    expect(got.times[6]).to.equal(0); // run 2's first volume at (0 + 0) * 1.5
  });

  it('names npy outputs after the events file and records the run timing in the .csv', async function () {
    const out = path.join(dir, 'npy');
    const r = cli(['extract', '--events', events[1], '--bold', bolds[1], '--stimuli', path.join(dir, 'stimuli'), '--out', out, '--model', model]);
    expect(r.status, r.stderr).to.equal(0);
    const base = path.join(out, 'sub-01', 'func', 'sub-01_task-movie_run-2_desc-encodec_features');
    const f = await readFeatures(`${base}.npy`);
    const sidecar = JSON.parse(fs.readFileSync(`${base}.json`, 'utf8'));
    expect(sidecar).to.include({ RepetitionTime: 1.5, FeatureKind: 'codes', Bandwidth: 3, Codebooks: 4, SliceTimingReference: 0, NumberOfVolumes: 5 });
    expect(sidecar.Stimuli).to.deep.equal([{ File: path.join(dir, 'stimuli', 'part2.wav'), Onset: 1.5, Duration: 3 }]);
    expect(f.shape).to.deep.equal([5, 4, 112]);
    expect(f.metadata.map((m) => m.stimulus_fraction)).to.deep.equal([0, 1, 1, 0, 0]);
    const csv = pythonJson<Record<string, (number | null)[]>>(`import csv, math
rows = list(csv.DictReader(open(data)))
col = lambda k: [None if math.isnan(float(r[k])) else float(r[k]) for r in rows]
print(json.dumps({k: col(k) for k in ['run_time_start', 'stimulus_time_start', 'stimulus_fraction']}))`, `${base}.csv`);
    expect(csv.run_time_start).to.deep.equal([0, 1.5, 3, 4.5, 6]);
    expect(csv.stimulus_time_start).to.deep.equal([null, 0, 1.5, null, null]); // NaN where no stimulus
  });

  it('--report scores the run extract encoded (silence, the stimulus from its onset cut to its duration, to the run end) beside the features', async function () {
    // run 2: 5 volumes of 1.5 s, part2.wav (4 s) from 1.5 s cut to its 3 s duration: 1.5 s silence, 3 s speech, 3 s silence
    const rate = 24000;
    const part2 = (await loadAudio(path.join(dir, 'stimuli', 'part2.wav'), { sampleRate: rate })).samples;
    const run = new Float32Array(5 * 1.5 * rate);
    run.set(part2.subarray(0, 3 * rate), 1.5 * rate);
    const runWav = await makeWav24k(dir, 'run-2-timeline.wav', [run], 'float32');
    const codec = await Encodec.load(model, { threads: threadsPerJob(1), warmup: false }); // the CLI's threads: the same numbers
    let expected: object;
    try {
      expected = JSON.parse(toJson({ input: events[1], ...(await roundTripQuality(runWav, { model: codec, bandwidth: 6 })) }));
    } finally {
      codec.dispose();
    }
    const base = 'sub-01_task-movie_run-2_desc-encodec_features';
    // the run timeline read a second time and coded whole (extract itself encodes each stimulus alone)
    for (const [name, extra] of [['codes', []], ['latents', ['--output', 'latents']]] as const) {
      const out = path.join(dir, `report-${name}`);
      const r = cli([
        'extract', '--events', events[1], '--bold', bolds[1], '--stimuli', path.join(dir, 'stimuli'), '--bandwidth', '6',
        '--report', '--out', out, '--model', model, ...extra,
      ]);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/round trip: SNR -?[\d.]+ dB/);
      const func = path.join(out, 'sub-01', 'func');
      expect(fs.readdirSync(func).sort()).to.deep.equal([`${base}.csv`, `${base}.json`, `${base}.npy`, `${base}.quality.json`]);
      const q = JSON.parse(fs.readFileSync(path.join(func, `${base}.quality.json`), 'utf8'));
      expect(q, name).to.deep.equal(expected);
      expect(q.seconds).to.equal(7.5);
    }

    // mel: the timeline read at the mel rate, Griffin-Lim per window
    const melOut = path.join(dir, 'report-mel');
    const m = cli(['extract', '--events', events[1], '--bold', bolds[1], '--stimuli', path.join(dir, 'stimuli'), '--mode', 'mel', '--report', '--out', melOut]);
    expect(m.status, m.stderr).to.equal(0);
    const mq = JSON.parse(fs.readFileSync(path.join(melOut, 'sub-01', 'func', `${base}.quality.json`), 'utf8'));
    expect(mq).to.include({ input: events[1], mode: 'mel', bandwidth: null, sampleRate: 22050, seconds: 7.5 });
    expect(mq.stoi).to.be.greaterThan(0.5); // Griffin-Lim keeps the speech intelligible; silence is left out
  });

  it('rejects run settings that disagree with the BOLD file or leave no stimulus in the run (exit 2, nothing written)', function () {
    const out = path.join(dir, 'bad');
    const base = ['--stimuli', path.join(dir, 'stimuli'), '--out', out, '--model', model];
    let r = cli(['extract', '--events', events[0], '--bold', bolds[0], '--tr', '2', ...base]);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--tr 2 disagrees with .*RepetitionTime = 1\.5 s/);
    r = cli(['extract', '--events', events[0], '--bold', bolds[0], '--run-trs', '7', ...base]);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--run-trs 7 disagrees with .*dim\[4\] = 6 volumes/);
    r = cli(['extract', path.join(dir, 'stimuli', 'part1.wav'), '--onset', '20', '--run-trs', '10', ...base]);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--onset 20 s is at or after the end of the run/);
    r = cli(['extract', path.join(dir, 'stimuli', 'part1.wav'), '--resample', 'mean', ...base]);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/codes are categorical/);
    r = cli(['extract', path.join(dir, 'stimuli', 'part1.wav'), '--concat', ...base]);
    expect(r.status).to.equal(2);
    expect(fs.existsSync(out) ? fs.readdirSync(out) : []).to.deep.equal([]);
  });

  it('accepts a negative --onset (the stimulus started before the run)', async function () {
    const out = path.join(dir, 'negative');
    const r = cli(['extract', path.join(dir, 'stimuli', 'part1.wav'), '--onset=-1.5', '--out', out, '--model', model]);
    expect(r.status, r.stderr).to.equal(0);
    const f = await readFeatures(path.join(out, 'part1.npy'));
    expect(f.shape[0]).to.equal(1); // floor((4 - 1.5) / 1.5)
    expect(f.metadata[0].stimulus_time_start).to.equal(1.5);
  });
});
