/** Round-trip reports (lib/report.ts, `encodec-native roundtrip`) on a few seconds of synthesized speech. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';
import { PNG } from 'pngjs';

import { loadAudio } from '../../lib/io/audio';
import { computeMetrics } from '../../lib/quality/metrics';
import { roundTripReport } from '../../lib/report/report';
import { readWav } from '../../lib/io/wav';
import { cli } from '../helpers/cli';
import { makeSpeech } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

describe('roundtrip', function () {
  const dir = tempDir('roundtrip');
  let model: string;
  let speech: string;

  before(async function () {
    model = await randomModel(0);
    // 3.4 s of speech: 2 TRs of 1.5 s (3 s) are used.
    speech = await makeSpeech(dir, 'Round trip report. Listen, look and measure.', 3.4);
  });

  it('CLI writes the original, one reconstruction per bandwidth, metrics and a spectrogram picture', async function () {
    const out = path.join(dir, 'report');
    const r = cli(['roundtrip', speech, '--out', out, '--model', model, '--bandwidth', '1.5', '6', '--tr', '1.5', '--threads', '1']);
    expect(r.status, r.stderr).to.equal(0);
    expect(fs.readdirSync(out).sort()).to.deep.equal([
      'metrics.json',
      'metrics.txt',
      'original.wav',
      'reconstructed_1.5kbps.wav',
      'reconstructed_6kbps.wav',
      'spectrograms.png',
    ]);
    const original = await readWav(path.join(out, 'original.wav'));
    expect(original.sampleRate).to.equal(24000);
    expect(original.samples).to.have.length(1);
    expect(original.samples[0].length).to.equal(72000); // 2 TRs x 1.5 s x 24 kHz
    const source = await loadAudio(speech, { sampleRate: 24000 });
    // 16-bit PCM of the pipeline's input: equal to within quantization.
    const err = original.samples[0].reduce((m, v, i) => Math.max(m, Math.abs(v - source.samples[i])), 0);
    expect(err).to.be.lessThan(1 / 32767 + 1e-6);

    const json = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8'));
    expect(json.mode).to.equal('encodec');
    expect([json.nTrs, json.tr, json.durationSeconds, json.sampleRate]).to.deep.equal([2, 1.5, 3, 24000]);
    expect(json.results.map((x: { bandwidth: number }) => x.bandwidth)).to.deep.equal([1.5, 6]);
    expect(json.results.map((x: { codebooks: number }) => x.codebooks)).to.deep.equal([2, 8]);
    for (const x of json.results) {
      const rec = await readWav(path.join(out, x.file));
      expect(rec.sampleRate).to.equal(24000);
      expect(rec.samples[0].length).to.equal(72000);
      // The stored metrics are those of the written files (up to the 16-bit rounding of both).
      const again = computeMetrics(original.samples[0], rec.samples[0], 24000);
      expect(x.metrics.snr).to.be.closeTo(again.snr, 0.05);
      expect(x.metrics.stoi).to.be.a('number').and.closeTo(again.stoi as number, 0.02);
      expect(x.metrics.estoi).to.be.a('number');
      expect(x.encodeSeconds).to.be.greaterThan(0);
      expect(x.decodeSeconds).to.be.greaterThan(0);
      expect(x.peakRssBytes).to.be.greaterThan(50 * 1024 * 1024);
    }
    const text = fs.readFileSync(path.join(out, 'metrics.txt'), 'utf8');
    expect(text).to.match(/^1\.5 kbps\s+-?\d+\.\d\d dB\s+-?\d+\.\d\d dB\s+\d\.\d{3}\s+-?\d\.\d{3}/m);
    expect(text).to.match(/^6 kbps\s/m).and.match(/SNR\s+SI-SNR\s+STOI\s+ESTOI\s+encode s\s+decode s\s+peak RSS/);
    expect(r.stdout).to.equal(text); // the same table on stdout

    const png = PNG.sync.read(fs.readFileSync(path.join(out, 'spectrograms.png')));
    // Three 130-unit panels (original + 2 bandwidths) at scale 1, with titles, axes and a colour bar.
    expect(png.width).to.be.within(850, 1100);
    expect(png.height).to.be.within(3 * 130, 650);
  });

  it("mode 'mel': Griffin-Lim reconstruction at the mel rate, intelligible (STOI) though the phase is lost", async function () {
    const out = path.join(dir, 'mel');
    const report = await roundTripReport(speech, { outDir: out, mode: 'mel', tr: 1.5, mel: { nMels: 128, nFft: 1024, hopLength: 256 } });
    expect(report.results).to.have.length(1);
    const [mel] = report.results;
    expect(mel.label).to.equal('mel');
    expect(mel.bandwidth).to.equal(null);
    expect(report.sampleRate).to.equal(22050);
    const rec = await readWav(path.join(out, 'reconstructed_mel.wav'));
    expect(rec.sampleRate).to.equal(22050);
    expect(rec.samples[0].length).to.equal(66150); // 3 s at 22.05 kHz
    expect(mel.metrics.stoi).to.be.greaterThan(0.8);
    expect(fs.readdirSync(out).sort()).to.deep.equal(['metrics.json', 'metrics.txt', 'original.wav', 'reconstructed_mel.wav', 'spectrograms.png']);
    expect(fs.readFileSync(path.join(out, 'metrics.txt'), 'utf8')).to.match(/Griffin-Lim does not recover the original phase/);
  });

  it('writes metrics.txt and metrics.json as a pair: when the table cannot land, the old metrics.json stays', async function () {
    const out = path.join(dir, 'pair');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'metrics.json'), '{"old":true}');
    // a non-empty directory where metrics.txt goes: renaming the table over it fails
    fs.mkdirSync(path.join(out, 'metrics.txt', 'inside'), { recursive: true });
    let caught: Error | undefined;
    try {
      await roundTripReport(speech, { outDir: out, mode: 'mel', tr: 1.5, mel: { nMels: 64, nFft: 512, hopLength: 256 } });
    } catch (err) {
      caught = err as Error;
    }
    expect(caught?.message).to.match(/EISDIR|ENOTEMPTY|EPERM|EEXIST/);
    expect(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')).to.equal('{"old":true}');
    expect(fs.readdirSync(out).filter((f) => f.endsWith('.partial'))).to.deep.equal([]);
  });

  it('bad input: clear errors, exit codes, and no report files', async function () {
    const missing = cli(['roundtrip', path.join(dir, 'nope.wav'), '--out', path.join(dir, 'x'), '--model', model]);
    expect(missing.status).to.equal(1); // a missing input: exit 1 (docs/errors.md)
    expect(missing.stderr).to.match(/input file .*nope\.wav' does not exist/);
    const badBw = cli(['roundtrip', speech, '--out', path.join(dir, 'x'), '--model', model, '--bandwidth', '5']);
    expect(badBw.status).to.equal(2);
    expect(badBw.stderr).to.match(/--bandwidth: unsupported bandwidth 5 kbps; use one of 1\.5, 3, 6, 12, 24/);
    const badMode = cli(['roundtrip', speech, '--out', path.join(dir, 'x'), '--mode', 'wavelet']);
    expect(badMode.status).to.equal(2);
    expect(fs.existsSync(path.join(dir, 'x'))).to.equal(false);

    // A file where a directory is needed: the report cannot be written.
    const blocker = path.join(dir, 'blocker');
    fs.writeFileSync(blocker, 'a file');
    let caught: Error | undefined;
    try {
      await roundTripReport(speech, { outDir: path.join(blocker, 'report'), model, bandwidths: [1.5] });
    } catch (err) {
      caught = err as Error;
    }
    expect(caught?.message).to.match(/cannot write the report into '.*blocker\/report': a file of that name is in the way .*choose a writable directory/);
    const cliBlocked = cli(['roundtrip', speech, '--out', blocker, '--model', model]);
    expect(cliBlocked.status).to.equal(2);
    expect(cliBlocked.stderr).to.match(/--out '.*blocker' is a file; give a directory/);

    // Shorter than one TR.
    let short: Error | undefined;
    try {
      await roundTripReport(speech, { outDir: path.join(dir, 'short'), model, tr: 5 });
    } catch (err) {
      short = err as Error;
    }
    expect(short).to.be.instanceOf(RangeError);
    expect(short?.message).to.match(/lasts 3\.400 s, shorter than one TR \(5 s\)/);
    expect(fs.existsSync(path.join(dir, 'short'))).to.equal(false);
    let empty: Error | undefined;
    try {
      await roundTripReport(speech, { outDir: path.join(dir, 'empty'), bandwidths: [] });
    } catch (err) {
      empty = err as Error;
    }
    expect(empty).to.be.instanceOf(TypeError);
    expect(empty?.message).to.match(/bandwidths must be a non-empty array/);
  });
});
