/**
 * `encodec-native extract --model <encodec_48khz>` run as a user would: .npy + .csv with 225 frames per TR and the model
 * and frame rate recorded, the same features as the API; HDF5 with the same attributes (read by h5py) and the round-trip
 * score of the stereo model; and the clear refusals (a bandwidth the model lacks, reconstruct and roundtrip).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { Encodec } from '../../lib/codec/codec';
import { threadsPerJob } from '../../lib/codec/threads';
import { toJson } from '../../lib/common/format';
import { fromPlanar } from '../../lib/common/planar';
import { extractFeatures } from '../../lib/fmri/features';
import { readFeatures } from '../../lib/fmri/features-file';
import { loadAudio } from '../../lib/io/audio';
import { writeWav } from '../../lib/io/wav';
import { roundTripQuality } from '../../lib/quality/roundtrip-quality';
import { cli } from '../helpers/cli';
import { makeStereo48k } from '../helpers/media';
import { randomModel48 } from '../helpers/model';
import { pythonJson } from '../helpers/python';
import { tempDir } from '../helpers/temp-dir';

describe('extract CLI with encodec_48khz', function () {
  const dir = tempDir('extract48');
  let model: string;
  let wav: string;

  before(async function () {
    model = (await randomModel48(0)).model;
    wav = await makeStereo48k(dir, 3.2);
  });

  it('writes codes of 225 frames per TR with the model and frame rate in the .csv, the same as the API; reconstruct refuses them', async function () {
    const out = path.join(dir, 'npy');
    const r = cli(['extract', wav, '--model', model, '--tr', '1.5', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/2 TRs, codes \(2 x 2 x 225\)/);
    const base = path.join(out, path.basename(wav, '.wav'));
    const header = pythonJson<{ columns: string[]; row: Record<string, string> }>(
      `import csv
rows = list(csv.DictReader(open(data)))
print(json.dumps({'columns': list(rows[0].keys()), 'row': rows[0]}))`,
      `${base}.csv`,
    );
    expect(header.columns.slice(-3)).to.deep.equal(['npy_sha256', 'model', 'frame_rate']);
    expect([header.row.model, header.row.frame_rate, header.row.n_frames, header.row.n_codebooks]).to.deep.equal(['encodec_48khz', '150', '225', '2']);
    const f = await readFeatures(`${base}.npy`);
    expect([f.kind, f.model, f.frameRate, f.framesPerTr]).to.deep.equal(['codes', 'encodec_48khz', 150, 225]);
    const codec = await Encodec.load(model, { threads: 2, warmup: false });
    try {
      const api = await extractFeatures(wav, { model: codec, tr: 1.5 });
      expect(f.shape).to.deep.equal(api.shape);
      expect(Array.from(f.features)).to.deep.equal(Array.from(api.features));
    } finally {
      codec.dispose();
    }
    const back = cli(['reconstruct', `${base}.npy`, '--model', model, '--out', path.join(dir, 'back.wav')]);
    expect(back.status).to.not.equal(0);
    expect(back.stderr).to.match(/extracted with encodec_48khz, whose TR features cannot be turned back into audio/);
    expect(fs.existsSync(path.join(dir, 'back.wav'))).to.equal(false);
  });

  it('writes HDF5 latents resampled per volume with the model attributes, and scores the stereo round trip (--report)', function () {
    const out = path.join(dir, 'h5');
    const r = cli(['extract', wav, '--model', model, '--output', 'latents', '--resample', 'mean', '--format', 'h5', '--report', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    const name = path.basename(wav, '.wav');
    const got = pythonJson<{ shape: number[]; model: string; rate: number; perTr: number }>(
      `import h5py
f = h5py.File(data, 'r')
a = f.attrs
print(json.dumps({'shape': list(f['features'].shape), 'model': str(a['model']), 'rate': int(a['frame_rate']), 'perTr': int(a['frames_per_tr'])}))`,
      path.join(out, `${name}.h5`),
    );
    expect(got).to.deep.equal({ shape: [2, 128], model: 'encodec_48khz', rate: 150, perTr: 1 });
    const q = JSON.parse(fs.readFileSync(path.join(out, `${name}.quality.json`), 'utf8'));
    expect([q.mode, q.bandwidth, q.sampleRate, q.seconds]).to.deep.equal(['encodec', 3, 48000, 3.2]);
    expect(q.snr).to.be.a('number');
  });

  it('--report on a BIDS run scores the stereo run extract encoded: silence, the stimulus from its onset, cut at the run end', async function () {
    const func = path.join(dir, 'func');
    fs.mkdirSync(func, { recursive: true });
    const events = path.join(func, 'sub-01_task-movie_run-1_events.tsv');
    fs.writeFileSync(events, `onset\tduration\tstim_file\n1.0\tn/a\t${wav}\n`);
    const out = path.join(dir, 'run-report');
    const r = cli(['extract', '--events', events, '--run-trs', '3', '--model', model, '--report', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    const q = JSON.parse(fs.readFileSync(path.join(out, 'sub-01', 'func', 'sub-01_task-movie_run-1_desc-encodec_features.quality.json'), 'utf8'));

    // the run: 3 volumes of 1.5 s, 1 s of silence, then the first 3.5 s of the 3.2 s file (all of it), then silence
    const rate = 48000;
    const [left, right] = fromPlanar((await loadAudio(wav, { sampleRate: rate, channels: 2 })).samples, 2);
    const run = [left, right].map((c) => {
      const out = new Float32Array(4.5 * rate);
      out.set(c.subarray(0, 3.5 * rate), rate);
      return out;
    });
    const runWav = path.join(dir, 'run-1-timeline.wav');
    await writeWav(runWav, run, { sampleRate: rate, format: 'float32' });
    const codec = await Encodec.load(model, { threads: threadsPerJob(1), warmup: false }); // the CLI's threads: the same numbers
    try {
      expect(q).to.deep.equal(JSON.parse(toJson({ input: events, ...(await roundTripQuality(runWav, { model: codec, bandwidth: 3 })) })));
    } finally {
      codec.dispose();
    }
    expect(q.seconds).to.equal(4.5);
  });

  it('refuses a bandwidth the model lacks before reading any input (exit 2), and the roundtrip report', function () {
    const r = cli(['extract', wav, '--model', model, '--bandwidth', '1.5', '--out', path.join(dir, 'bw')]);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--bandwidth: unsupported bandwidth 1\.5 kbps for encodec_48khz; use one of 3, 6, 12, 24/);
    expect(fs.existsSync(path.join(dir, 'bw', `${path.basename(wav, '.wav')}.npy`))).to.equal(false);
    const report = cli(['roundtrip', wav, '--model', model, '--out', path.join(dir, 'report')]);
    expect(report.status).to.not.equal(0);
    expect(report.stderr).to.match(/the roundtrip report runs encodec_24khz only: encodec_48khz decodes whole 1 s segments with their scales/);
  });
});
