/**
 * `encodec-native extract` and `reconstruct`, run as a user would: batches with failures, resumable atomic
 * outputs, manifests, shards, parallel jobs, bad options, and turning features back into audio.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { writeEcdc } from '../../lib/io/ecdc';
import { readFeatures } from '../../lib/fmri/features-file';
import { writeNpy } from '../../lib/io/npy';
import { readWav } from '../../lib/io/wav';
import { CLI, cli } from '../helpers/cli';
import { Movie, makeMovie, makeSpeech, makeVideoOnly } from '../helpers/media';
import { randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

function python(code: string): string {
  const r = spawnSync('/usr/bin/python3', ['-c', code], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

/** Files in a directory, sorted. */
function list(dir: string): string[] {
  return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

describe('extract / reconstruct CLI', function () {
  const dir = tempDir('extract');
  let model: string;
  let movie: Movie;
  let speech: string;
  let videoOnly: string;
  let junk: string;
  let copies: string[]; // a.wav, b.wav, c.wav: the same speech under three names

  before(async function () {
    model = await randomModel(0);
    movie = await makeMovie(dir, { text: 'Stimulus soundtrack for the scanner.' });
    speech = await makeSpeech(dir, 'One two three four five six.', 3.2);
    videoOnly = await makeVideoOnly(dir, 1);
    junk = path.join(dir, 'junk.mp3');
    fs.writeFileSync(junk, Buffer.from('definitely not audio '.repeat(50)));
    const inputs = path.join(dir, 'inputs');
    fs.mkdirSync(inputs);
    copies = ['a', 'b', 'c'].map((n) => path.join(inputs, `${n}.wav`));
    for (const c of copies) fs.copyFileSync(speech, c);
  });

  it('extracts each input to OUT/<name>.npy + .csv, with one summary line per file', function () {
    const out = path.join(dir, 'out1');
    const r = cli(['extract', movie.path, speech, '--out', out, '--model', model, '--bandwidth', '1.5']);
    expect(r.stderr).to.match(/extract: 2 inputs: 2 written, 0 skipped, 0 failed/);
    expect(r.status).to.equal(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).to.have.length(2);
    for (const line of lines) expect(line).to.match(/^.+: written, \d+ TRs?, codes \(\d+ x 2 x 112\), took [\d.]+ s(, encoded|, from the cache)? -> .+\.npy$/);
    const movieName = path.basename(movie.path, '.mp4');
    const speechName = path.basename(speech, '.wav');
    expect(list(out)).to.deep.equal([`${movieName}.csv`, `${movieName}.npy`, `${speechName}.csv`, `${speechName}.npy`].sort());
    const shown = python(
      `import numpy as np, csv; a = np.load('${out}/${speechName}.npy'); rows = list(csv.DictReader(open('${out}/${speechName}.csv')));` +
        `print(a.dtype, a.shape, len(rows), rows[-1]['tr_index'], rows[-1]['end_time'], rows[0]['source'])`,
    );
    expect(shown).to.equal(`int16 (2, 2, 112) 2 1 3 ${speech}`); // 3.2 s at TR 1.5 -> 2 TRs
  });

  it('--report scores the round trip per input (codec and mel) and redoes inputs that lack a report', function () {
    const out = path.join(dir, 'out-report');
    const name = path.basename(speech, '.wav');
    const plain = cli(['extract', speech, '--out', out, '--model', model]);
    expect(plain.status, plain.stderr).to.equal(0);
    expect(list(out)).to.deep.equal([`${name}.csv`, `${name}.npy`]);

    // Features exist but no report: --report redoes the input and adds its report.
    const r = cli(['extract', speech, '--out', out, '--model', model, '--bandwidth', '24', '--report']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^.+: written, .+ round trip: SNR -?[\d.]+ dB, SI-SNR -?[\d.]+ dB, STOI (-?[\d.]+|n\/a.*), ESTOI/m);
    expect(list(out)).to.deep.equal([`${name}.csv`, `${name}.npy`, `${name}.quality.json`]);
    const q = JSON.parse(fs.readFileSync(path.join(out, `${name}.quality.json`), 'utf8'));
    expect(q).to.include({ input: speech, mode: 'encodec', bandwidth: 24, sampleRate: 24000 });
    expect(q.seconds).to.be.closeTo(3.2, 0.01);
    expect(q.snr).to.be.a('number');
    // The random model's audio is noise: its round trip must score far below a faithful codec's.
    expect(q.stoi === null || q.stoi < 0.9, String(q.stoi)).to.equal(true);
    const again = cli(['extract', speech, '--out', out, '--model', model, '--report']);
    expect(again.stdout).to.match(/^.+: skipped, /);

    // Mel mode needs no model; Griffin-Lim keeps speech intelligible.
    const melOut = path.join(dir, 'out-report-mel');
    const m = cli(['extract', speech, '--out', melOut, '--mode', 'mel', '--report']);
    expect(m.status, m.stderr).to.equal(0);
    const mq = JSON.parse(fs.readFileSync(path.join(melOut, `${name}.quality.json`), 'utf8'));
    expect(mq).to.include({ mode: 'mel', bandwidth: null, sampleRate: 22050 });
    expect(mq.stoi).to.be.greaterThan(0.6);
  });

  it('skips inputs whose outputs exist, unless --force', function () {
    const out = path.join(dir, 'out1');
    const npy = path.join(out, `${path.basename(speech, '.wav')}.npy`);
    const before = fs.statSync(npy).mtimeMs;
    const again = cli(['extract', speech, '--out', out, '--model', model, '--bandwidth', '1.5']);
    expect(again.status).to.equal(0);
    expect(again.stdout).to.match(/^.+: skipped, .+\.npy exists \(--force to redo\)$/m);
    expect(again.stderr).to.match(/0 written, 1 skipped, 0 failed/);
    expect(fs.statSync(npy).mtimeMs).to.equal(before);
    const forced = cli(['extract', speech, '--out', out, '--model', model, '--bandwidth', '1.5', '--force']);
    expect(forced.status).to.equal(0);
    expect(forced.stderr).to.match(/1 written, 0 skipped, 0 failed/);
  });

  it('keeps going past bad inputs, reports them and exits 1', function () {
    const out = path.join(dir, 'out-bad');
    const missing = path.join(dir, 'missing.mp4');
    const r = cli(['extract', missing, videoOnly, junk, speech, '--out', out, '--model', model, '--bandwidth', '1.5', '--max-trs', '1']);
    expect(r.status).to.equal(1);
    expect(r.stdout).to.match(/speech.*: written, /m);
    expect(r.stderr).to.match(/extract: 4 inputs: 1 written, 0 skipped, 3 failed/);
    expect(r.stderr).to.include(`failed: ${missing}: cannot read audio file`);
    expect(r.stderr).to.match(new RegExp(`failed: ${videoOnly}: .*audio`));
    expect(r.stderr).to.include(`failed: ${junk}: `);
    const speechName = path.basename(speech, '.wav');
    expect(list(out)).to.deep.equal([`${speechName}.csv`, `${speechName}.npy`]); // nothing else, no partial files
  });

  it('reads inputs from a manifest and splits them into disjoint shards', function () {
    const manifest = path.join(dir, 'inputs', 'list.txt');
    fs.writeFileSync(manifest, ['# stimuli for run 1', 'c.wav', '', 'b.wav  # second', path.join(dir, 'inputs', 'a.wav'), 'gone.wav', ''].join('\n'));
    const out = path.join(dir, 'out-shards');
    const common = ['--out', out, '--manifest', manifest, '--mode', 'mel', '--max-trs', '1'];
    const first = cli(['extract', ...common, '--shard', '0/2']);
    // the second as task 1 of a Kubernetes Indexed Job
    const second = cli(['extract', ...common, '--shard', 'auto/2'], { JOB_COMPLETION_INDEX: '1' });
    // Sorted: a.wav, b.wav, c.wav, gone.wav -> shard 0 gets a and c, shard 1 gets b and the missing gone.wav.
    expect(first.status).to.equal(0);
    expect(first.stderr).to.match(/extract: 2 inputs \(shard 0\/2\): 2 written, 0 skipped, 0 failed/);
    expect(second.status).to.equal(1);
    expect(second.stderr).to.match(/extract: 2 inputs \(shard 1\/2 from JOB_COMPLETION_INDEX\): 1 written, 0 skipped, 1 failed/);
    expect(second.stderr).to.include(`failed: ${path.join(dir, 'inputs', 'gone.wav')}: cannot read audio file`);
    expect(list(out)).to.deep.equal(['.encodec-batch', 'a.csv', 'a.npy', 'b.csv', 'b.npy', 'c.csv', 'c.npy']);
    // the work list: status names the failure with its code and the shard to run again
    const status = cli(['status', '--out', out, '--json']);
    expect(status.status).to.equal(1);
    const report = JSON.parse(status.stdout) as { done: number; inputs: { input: string; state: string; code?: string; message?: string }[]; resubmit: { array: string } };
    expect(report.done).to.equal(3);
    expect(report.inputs.filter((i) => i.state !== 'done')).to.deep.include({ input: path.join(dir, 'inputs', 'gone.wav'), shard: 1, state: 'failed', code: 'ENCODEC_MEDIA', message: report.inputs[3].message });
    expect(report.resubmit.array).to.equal('1');
    const rerun = cli(['extract', ...common, '--shard', '1/3']);
    expect(rerun.status).to.equal(2);
    expect(rerun.stderr).to.match(/holds the work list of an earlier sharded run, and it splits the inputs into 2 shards, this run into 3/);
    expect(first.stdout).to.match(/a\.wav: written/).and.to.match(/c\.wav: written/);
    expect(second.stdout).to.match(/b\.wav: written/);
    expect(python(`import numpy as np; a = np.load('${out}/a.npy'); print(a.dtype, a.shape, a.max(), a.min() >= -80)`)).to.equal('float32 (1, 2048, 65) 0.0 True');
  });

  it('runs --jobs N inputs at once with the same results', function () {
    const out = path.join(dir, 'out-jobs');
    const r = cli(['extract', ...copies, '--out', out, '--model', model, '--bandwidth', '1.5', '--max-trs', '1', '--jobs', '2']);
    expect(r.status).to.equal(0);
    expect(r.stderr).to.match(/3 written/);
    const bytes = ['a', 'b', 'c'].map((n) => fs.readFileSync(path.join(out, `${n}.npy`)));
    expect(bytes[0].equals(bytes[1]) && bytes[1].equals(bytes[2])).to.equal(true);
  });

  it('leaves only complete outputs when killed, and a rerun finishes the rest', async function () {
    const out = path.join(dir, 'out-killed');
    const args = [CLI, 'extract', ...copies, speech, '--out', out, '--mode', 'mel', '--max-trs', '1'];
    await new Promise<void>((resolve) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        if (d.includes('written')) child.kill('SIGKILL');
      });
      child.on('close', () => resolve());
    });
    const done = list(out).filter((f) => f.endsWith('.npy'));
    expect(done.length).to.be.greaterThan(0);
    for (const f of done) {
      expect(list(out)).to.include(f.replace(/\.npy$/, '.csv'));
      const features = await readFeatures(path.join(out, f));
      expect(features.kind).to.equal('mel');
      expect(features.shape).to.deep.equal([1, 2048, 65]);
    }
    // A temporary file a killed run left an hour ago is cleaned up by the rerun; a fresh one (a live writer's) is not.
    const stale = path.join(out, '.a.npy.12345.abc.def.partial');
    const fresh = path.join(out, '.b.csv.12345.abc.def.partial');
    fs.writeFileSync(stale, 'partial');
    fs.writeFileSync(fresh, 'partial');
    const hourAgo = new Date(Date.now() - 3600 * 1000);
    fs.utimesSync(stale, hourAgo, hourAgo);
    const rerun = cli(args.slice(1));
    expect(rerun.status).to.equal(0);
    expect(rerun.stderr).to.include(`${done.length} skipped`);
    expect(list(out).filter((f) => f.endsWith('.npy'))).to.have.length(4);
    expect(fs.existsSync(stale)).to.equal(false);
    expect(fs.existsSync(fresh)).to.equal(true);
  });

  it('rejects bad options with exit code 2 before writing anything', function () {
    const out = path.join(dir, 'out-never');
    const cases: [string[], RegExp][] = [
      [['--tr', '0'], /--tr must be a positive number of seconds/],
      [['--max-trs', '0'], /--max-trs must be an integer >= 1/],
      [['--hrf', 'boxcar'], /unknown --hrf 'boxcar'; use one of none, glover, spm/],
      [['--layout', 'wide'], /unknown --layout 'wide'; use one of tr, flat/],
      [['--mode', 'mfcc'], /unknown --mode 'mfcc'; use one of encodec, mel/],
      [['--output', 'logits'], /unknown --output 'logits'; use one of codes, embeddings/],
      [['--mode', 'mel', '--output', 'embeddings'], /needs mode 'encodec'/],
      [['--shard', '2/2'], /--shard must be i\/N with 0 <= i < N/],
      [['--shard', 'half'], /--shard must be i\/N with 0 <= i < N/],
      [['--shard', '0/0'], /--shard must be i\/N with 0 <= i < N/],
      [['--shard', 'auto/4'], /--shard auto\/4 takes its index from a job array .* and none is set: submit it as an array job \(sbatch --array=0-3/],
      [['--tr', 'fast'], /--tr must be a positive number of seconds/],
      [['--bandwidth', '5'], /bandwidth/],
      [['--max-trs', 'many'], /--max-trs must be an integer >= 1/],
      [['--jobs', '0'], /--jobs must be an integer in \[1, 256\]/],
      [['--device', 'tpu'], /--device must be 'cpu', 'cuda' or 'cuda:N'/],
      [['--manifest', path.join(dir, 'no-such-list.txt')], /cannot read --manifest '.*no-such-list.txt': ENOENT/],
    ];
    for (const [extra, pattern] of cases) {
      const r = cli(['extract', speech, '--out', out, '--model', model, ...extra]);
      expect(r.status, extra.join(' ')).to.equal(2);
      expect(r.stderr).to.match(/^encodec-native: error: /);
      expect(r.stderr, extra.join(' ')).to.match(pattern);
    }
    // Output directories that cannot be written: a file, and a directory under a file.
    const blocker = path.join(dir, 'blocker-file');
    fs.writeFileSync(blocker, 'x');
    const asFile = cli(['extract', speech, '--out', blocker, '--model', model]);
    expect(asFile.status).to.equal(2);
    expect(asFile.stderr).to.match(/--out '.*blocker-file' is a file; pass a directory/);
    const under = cli(['extract', speech, '--out', path.join(blocker, 'sub'), '--model', model]);
    expect(under.status).to.equal(2);
    expect(under.stderr).to.match(/cannot write to --out '.*blocker-file\/sub' \(ENOTDIR\); pass a directory you can write to/);
    const none = cli(['extract', '--out', out]);
    expect(none.status).to.equal(2);
    expect(none.stderr).to.match(/no inputs: pass audio\/video files, --events FILE or --manifest FILE/);
    expect(fs.existsSync(out)).to.equal(false);
  });

  it('reconstructs codes, flat codes, mel and .ecdc files to WAV of the right length', async function () {
    const out = path.join(dir, 'out1');
    const speechNpy = path.join(out, `${path.basename(speech, '.wav')}.npy`);
    const wav = path.join(dir, 'speech-codes.wav');
    const r = cli(['reconstruct', speechNpy, '--model', model, '--out', wav]);
    expect(r.stderr).to.match(/codes \(2 x 2 x 112\), TR 1.5 s -> .*\(3\.000 s at 24000 Hz\)/);
    expect(r.status).to.equal(0);
    const decoded = await readWav(wav);
    expect(decoded.sampleRate).to.equal(24000);
    expect(decoded.samples[0].length).to.equal(72000);

    // The same codes in the flat layout at TR 1.0 s (3 TRs of 75 frames), with its .csv: the TR comes from the .csv.
    const tr1 = path.join(dir, 'out-tr1');
    expect(cli(['extract', speech, '--out', tr1, '--model', model, '--bandwidth', '1.5', '--tr', '1.0', '--layout', 'flat']).status).to.equal(0);
    const flatNpy = path.join(tr1, `${path.basename(speech, '.wav')}.npy`);
    expect(python(`import numpy as np; print(np.load('${flatNpy}').shape)`)).to.equal('(3, 150)');
    const flatWav = path.join(dir, 'speech-flat.wav');
    const f = cli(['reconstruct', flatNpy, '--model', model, '--out', flatWav]);
    expect(f.status).to.equal(0);
    expect((await readWav(flatWav)).samples[0].length).to.equal(3 * 24000);

    const melWav = path.join(dir, 'a-mel.wav');
    const m = cli(['reconstruct', path.join(dir, 'out-shards', 'a.npy'), '--out', melWav]);
    expect(m.status).to.equal(0);
    const mel = await readWav(melWav);
    expect(mel.sampleRate).to.equal(22050);
    expect(mel.samples[0].length).to.equal(Math.round(1.5 * 22050));

    // An .ecdc holding the speech's codes (its two TR windows back to back: 224 frames of 2 codebooks).
    const windows = await readFeatures(speechNpy);
    const codes = new Int16Array(2 * 224);
    for (let k = 0; k < 2; k++) {
      for (let q = 0; q < 2; q++) codes.set(windows.features.subarray((k * 2 + q) * 112, (k * 2 + q + 1) * 112), q * 224 + k * 112);
    }
    const ecdc = path.join(dir, 'speech.ecdc');
    const audioLength = 224 * 320 - 100;
    await writeEcdc(ecdc, { data: codes, nQ: 2, nFrames: 224 }, { audioLength });
    const ecdcWav = path.join(dir, 'speech-ecdc.wav');
    expect(cli(['reconstruct', ecdc, '--model', model, '--out', ecdcWav]).status).to.equal(0);
    expect((await readWav(ecdcWav)).samples[0].length).to.equal(audioLength);
  });

  it('rejects features it cannot reconstruct with exit code 2 and no output', async function () {
    const target = path.join(dir, 'never.wav');
    const positive = path.join(dir, 'positive.npy');
    await writeNpy(positive, new Float32Array(2 * 5 * 7).fill(1), [2, 5, 7]);
    const emb = path.join(dir, 'emb.npy');
    await writeNpy(emb, Float32Array.from({ length: 128 * 112 }, (_, i) => Math.cos(i)), [1, 128, 112]);
    const cases: [string[], RegExp][] = [
      [[positive], /positive values; expected EnCodec codes/],
      [[emb], /embeddings cannot be turned back into audio/],
      [[junk], /must be a \.npy written by `encodec-native extract` or an \.ecdc file/],
      [[emb, '--tr', '-1'], /--tr must be a positive number/],
    ];
    for (const [args, pattern] of cases) {
      const r = cli(['reconstruct', ...args, '--model', model, '--out', target]);
      expect(r.status, args.join(' ')).to.equal(2);
      expect(r.stderr, args.join(' ')).to.match(pattern);
    }
    const missing = cli(['reconstruct', path.join(dir, 'missing.npy'), '--model', model, '--out', target]);
    expect(missing.status).to.equal(1); // a missing input: exit 1 (docs/errors.md)
    expect(missing.stderr).to.match(/features file .* does not exist/);
    const wrongOut = cli(['reconstruct', emb, '--out', path.join(dir, 'x.mp3')]);
    expect(wrongOut.status).to.equal(2);
    expect(wrongOut.stderr).to.match(/--out must end in \.wav/);
    expect(fs.existsSync(target)).to.equal(false);
  });
});
