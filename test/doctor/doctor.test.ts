/**
 * `encodec-native doctor` (lib/doctor.ts): the checklist on this machine with a real model file, its failures
 * (no model, a file that is not a model, no ffmpeg), and the BLAS and checkpoint classification on their own.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { DoctorCheck, checkCheckpoint, checkLm, classifyBlas } from '../../lib/doctor/doctor';
import { ModelInfo, readModelInfo } from '../../lib/model/model-file';
import { runtimeInfo } from '../../lib/runtime/runtime';
import { cli } from '../helpers/cli';
import { randomLm, randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

interface DoctorJson {
  ok: boolean;
  checks: DoctorCheck[];
}

function byName(report: DoctorJson): Record<string, DoctorCheck> {
  return Object.fromEntries(report.checks.map((c) => [c.name, c]));
}

describe('encodec-native doctor', function () {
  const dir = tempDir('doctor');
  let model: string;

  before(async function () {
    model = await randomModel(0);
  });

  it('checks everything in order and runs a timed 1-second encode/decode (JSON)', function () {
    const r = cli(['doctor', '--model', model, '--threads', '2', '--json']);
    expect(r.status, r.stderr + r.stdout).to.equal(0);
    const report = JSON.parse(r.stdout) as DoctorJson;
    expect(report.ok).to.equal(true);
    expect(report.checks.map((c) => c.name)).to.deep.equal(['libtorch', 'blas', 'cuda', 'ffmpeg', 'model', 'metadata', 'checkpoint', 'lm', 'self-test']);
    const c = byName(report);
    expect(c.libtorch.status).to.equal('ok');
    expect(c.libtorch.detail).to.contain(`libtorch ${runtimeInfo().torchVersion}`);
    expect(c.cuda.detail).to.match(runtimeInfo().cudaAvailable ? /available, \d+ device/ : /not available/);
    expect(c.ffmpeg).to.include({ status: 'ok' });
    expect(c.ffmpeg.detail).to.match(/^ffmpeg \S+ .* ffprobe \S+/);
    expect(c.model).to.include({ status: 'ok' });
    expect(c.model.detail).to.contain(model);
    expect(c.metadata).to.include({ status: 'ok' });
    expect(c.metadata.detail).to.match(/encodec_24khz, 24000 Hz, 1 channel/);
    // A random-weight model works but is flagged: its codes are meaningless for features.
    expect(c.checkpoint).to.include({ status: 'warn' });
    expect(c.checkpoint.detail).to.match(/random weights \(seed 0\)/);
    expect(c.checkpoint.fix).to.match(/model fetch/);
    expect(c['self-test'].status).to.equal('ok');
    expect(c['self-test'].detail).to.match(/encode 1 s in \d+ ms \(\d+\.\dx real time\), decode in \d+ ms .* 2 threads on cpu/);
    expect(c['self-test'].detail).to.match(/load \d+ ms \(warm-up [1-9]\d* ms of it\), first round trip after load \d+ ms; steady state \(median of 3\): encode/);
  });

  it('checks the entropy-coding LM beside the model (or $ENCODEC_LM_MODEL): missing warns, the wrong codec fails', async function () {
    const [lm24, lm48] = await Promise.all([randomLm('encodec_24khz', 0), randomLm('encodec_48khz', 1)]);
    const home = path.join(dir, 'lm-home');
    fs.mkdirSync(home);
    const here = path.join(home, 'model.pt');
    fs.symlinkSync(model, here);
    const info = readModelInfo(here);
    const saved = process.env.ENCODEC_LM_MODEL;
    delete process.env.ENCODEC_LM_MODEL;
    try {
      const missing = checkLm(here, info);
      expect(missing).to.include({ name: 'lm', status: 'warn' });
      expect(missing.detail).to.contain(path.join(home, 'encodec_lm_24khz.pt'));
      expect(missing.fix).to.match(/model fetch/);
      const besides = path.join(home, 'encodec_lm_24khz.pt');
      fs.symlinkSync(lm48.lm, besides);
      const wrong = checkLm(here, info);
      expect(wrong).to.include({ status: 'fail' });
      expect(wrong.detail).to.match(/encodec_lm_48khz, which codes encodec_48khz files, not encodec_24khz's/);
      fs.unlinkSync(besides);
      fs.symlinkSync(lm24.lm, besides);
      const ok = checkLm(here, info);
      expect(ok).to.include({ status: 'ok' });
      expect(ok.detail).to.match(/encodec_lm_24khz, random weights \(seed 0\)/);
      process.env.ENCODEC_LM_MODEL = path.join(home, 'nothing.pt');
      expect(checkLm(here, info)).to.include({ status: 'warn' });
      fs.writeFileSync(process.env.ENCODEC_LM_MODEL, 'not a model');
      expect(checkLm(here, info)).to.include({ status: 'fail' });
    } finally {
      if (saved === undefined) delete process.env.ENCODEC_LM_MODEL;
      else process.env.ENCODEC_LM_MODEL = saved;
    }
  });

  it('names the BLAS this machine computes with', function () {
    const r = cli(['doctor', '--model', path.join(dir, 'none.pt'), '--json']);
    const blas = byName(JSON.parse(r.stdout) as DoctorJson).blas;
    // Debian picks the BLAS with update-alternatives: the doctor must name the one selected there.
    const alternative = '/etc/alternatives/libblas.so.3-x86_64-linux-gnu';
    if (fs.existsSync(alternative)) {
      const target = fs.realpathSync(alternative);
      if (/openblas/.test(target)) expect(blas).to.include({ status: 'ok' }).and.to.have.property('detail').that.matches(/^OpenBLAS/);
      else if (/\/blas\//.test(target)) expect(blas).to.include({ status: 'warn' });
    } else {
      expect(['ok', 'warn']).to.include(blas.status);
    }
  });

  it('prints one ok/WARN/FAIL line per check with the fix, and a summary', function () {
    const r = cli(['doctor', '--model', model, '--threads', '2']);
    expect(r.status, r.stderr).to.equal(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).to.match(/^ok {3}libtorch {3}libtorch \d/);
    expect(r.stdout).to.match(/^WARN checkpoint random weights/m);
    expect(r.stdout).to.match(/^ {16}fix: for real features, run `encodec-native model fetch`/m);
    expect(r.stdout).to.match(/^ok {3}self-test/m);
    expect(r.stdout).to.match(/^WARN lm {9}no LM at .*encodec_lm_24khz\.pt/m); // none in test/.cache
    expect(lines[lines.length - 1]).to.equal('no failures (2 warn, 0 fail)');
  });

  it('fails (exit 1) when there is no model, saying how to get one; warns without ffmpeg', function () {
    const r = cli(['doctor', '--model', path.join(dir, 'missing.pt'), '--json'], { FFMPEG_PATH: path.join(dir, 'no-ffmpeg') });
    expect(r.status).to.equal(1);
    const report = JSON.parse(r.stdout) as DoctorJson;
    expect(report.ok).to.equal(false);
    const c = byName(report);
    expect(c.model.status).to.equal('fail');
    expect(c.model.fix).to.match(/no model file at '.*missing\.pt' \(from --model\): check the path; to make one, run `encodec-native model fetch`/);
    expect(c.model.fix).to.match(/model random --out random\.pt/);
    expect(c['self-test']).to.include({ status: 'fail' });
    expect(c['self-test'].detail).to.match(/skipped/);
    expect(c.ffmpeg.status).to.equal('warn');
    expect(c.ffmpeg.detail).to.match(/no-ffmpeg.*not found/);
    expect(c.ffmpeg.fix).to.match(/apt-get install ffmpeg/);
    const text = cli(['doctor', '--model', path.join(dir, 'missing.pt')]);
    expect(text.status).to.equal(1);
    expect(text.stdout).to.match(/^FAIL model/m);
    expect(text.stdout.trimEnd().split('\n').pop()).to.match(/^FAILED \(\d+ warn, 2 fail\)$/);
  });

  it('on a fresh install (no --model, no ENCODEC_MODEL, nothing at the default path) warns "no model yet" with the fix, exit 0', function () {
    const home = path.join(dir, 'fresh-home');
    const r = cli(['doctor'], { XDG_CACHE_HOME: home, ENCODEC_MODEL: '' });
    expect(r.status, r.stdout).to.equal(0);
    expect(r.stdout).to.match(/^WARN model {6}no model yet/m);
    expect(r.stdout).to.match(/fix: no model yet: none at the default location .*Pass --model MODEL\.pt, set ENCODEC_MODEL, or run `encodec-native model fetch`/);
    expect(r.stdout).to.match(/^WARN self-test +skipped: no model to run yet/m);
    expect(r.stdout).to.not.match(/FAIL/);
    expect(fs.existsSync(home)).to.equal(false); // doctor wrote nothing
  });

  it('fails on a file that is not a model, and on bad options (exit 2)', function () {
    const bogus = path.join(dir, 'bogus.pt');
    fs.writeFileSync(bogus, 'definitely not a TorchScript archive');
    const r = cli(['doctor', '--model', bogus, '--json']);
    expect(r.status).to.equal(1);
    const c = byName(JSON.parse(r.stdout) as DoctorJson);
    expect(c.model.status).to.equal('ok');
    expect(c.metadata.status).to.equal('fail');
    expect(c.metadata.detail).to.match(/not a TorchScript model file/);
    expect(c.metadata.fix).to.match(/export the model again/);
    const bad = cli(['doctor', '--threads', 'many']);
    expect(bad.status).to.equal(2);
    expect(bad.stderr).to.match(/--threads must be an integer/);
  });

  describe('BLAS classification', function () {
    const line = (p: string): string => `7f12a000-7f12b000 r-xp 00000000 08:01 1234 ${p}`;

    it('warns about the reference BLAS with the apt fix', function () {
      const check = classifyBlas([line('/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0'), line('/usr/lib/x86_64-linux-gnu/libc.so.6')]);
      expect(check.status).to.equal('warn');
      expect(check.detail).to.match(/reference BLAS .*blas\/libblas\.so/);
      expect(check.fix).to.match(/apt-get install libopenblas0-openmp/);
      expect(check.fix).to.match(/update-alternatives --set libblas\.so\.3-x86_64-linux-gnu .*openblas-openmp/);
      // OpenBLAS mapped for another library does not help: libtorch's BLAS calls resolve through libblas.so.3.
      const both = classifyBlas([line('/usr/lib/x86_64-linux-gnu/blas/libblas.so.3'), line('/usr/lib/x86_64-linux-gnu/libopenblas.so.0')]);
      expect(both.status).to.equal('warn');
    });

    it('accepts optimised BLAS libraries', function () {
      const cases: Array<[string, RegExp]> = [
        ['/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3', /^OpenBLAS/],
        ['/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so', /^OpenBLAS/],
        ['/opt/intel/mkl/lib/libmkl_rt.so.2', /^Intel MKL/],
        ['/usr/lib/x86_64-linux-gnu/blis-openmp/libblas.so.3', /^BLIS/],
      ];
      for (const [p, name] of cases) {
        const check = classifyBlas([line(p)]);
        expect(check.status, p).to.equal('ok');
        expect(check.detail, p).to.match(name);
      }
    });

    it('falls back to libtorch\'s build configuration, and warns when it cannot tell', function () {
      expect(classifyBlas([], '  - BLAS_INFO=mkl\n')).to.include({ status: 'ok', detail: 'Intel MKL, linked into libtorch' });
      const unknown = classifyBlas([line('/usr/lib/libc.so.6')], '');
      expect(unknown.status).to.equal('warn');
      expect(unknown.fix).to.match(/libopenblas0-openmp/);
    });
  });

  describe('checkpoint check', function () {
    let info: ModelInfo;
    before(function () {
      info = readModelInfo(model);
    });
    const official = (sha256: string): ModelInfo => ({
      ...info,
      source: { kind: 'official', file: 'encodec_24khz-d7cc33bc.th', sha256, seed: null },
    });

    it("calls a checkpoint official only by Meta's published SHA-256 and fails an altered one", function () {
      const good = checkCheckpoint(official('d7cc33bcf1aad7f2dad9836f36431530744abeace3ca033005e3290ed4fa47bf'));
      expect(good.status).to.equal('ok');
      expect(good.detail).to.match(/^official: Meta's published encodec_24khz-d7cc33bc.th/);
      // the right prefix is not enough where the full digest is known
      const altered = checkCheckpoint(official(`d7cc33bc${'0'.repeat(56)}`));
      expect(altered.status).to.equal('fail');
      expect(altered.detail).to.match(/altered or is not Meta's/);
      // the 48 kHz file is known by the prefix its name carries, whatever the local file is called
      const other = checkCheckpoint({ ...info, model: 'encodec_48khz', source: { kind: 'official', file: 'weights.th', sha256: `7e698e3e${'1'.repeat(56)}`, seed: null } });
      expect(other.status).to.equal('ok');
      expect(other.detail).to.match(/Meta's published encodec_48khz-7e698e3e.th \(as weights.th\)/);
    });

    it("does not call a checkpoint in Meta's layout official when its SHA-256 is not a published one", function () {
      const check = checkCheckpoint({ ...info, source: { kind: 'official', file: 'lm24.pt', sha256: 'ab'.repeat(32), seed: null } });
      expect(check.status).to.equal('warn');
      expect(check.detail).to.not.match(/^official/);
      expect(check.detail).to.match(/not one of Meta's published files/);
      expect(check.fix).to.match(/model fetch`/);
      const check48 = checkCheckpoint({ ...info, model: 'encodec_48khz', source: { kind: 'random', file: null, sha256: null, seed: 0 } });
      expect(check48.fix).to.match(/model fetch --name encodec_48khz/);
    });

    it('warns when no checksum was recorded', function () {
      const check = checkCheckpoint({ ...info, source: { kind: 'huggingface', file: 'model.safetensors', sha256: null, seed: null } });
      expect(check.status).to.equal('warn');
    });
  });
});
