/** The command line (issue: model export/random/info/fetch, encode, decode), run as a user would. */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import * as path from 'node:path';

import { expect } from 'chai';

import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { readNpy, writeNpy } from '../../lib/io/npy';
import { readWav } from '../../lib/io/wav';
import { cli, cliAsync } from '../helpers/cli';
import { makeSpeech } from '../helpers/media';
import { randomCheckpoint, randomLm, randomModel } from '../helpers/model';
import { tempDir } from '../helpers/temp-dir';

const PY = '/usr/bin/python3';
const ROOT = PACKAGE_ROOT;

function python(code: string): string {
  const r = spawnSync(PY, ['-c', code], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

describe('CLI', function () {
  const dir = tempDir('cli');
  let model: string;
  let speechWav: string;

  before(async function () {
    model = await randomModel(0);
    speechWav = await makeSpeech(dir, 'Hello from the command line test. One two three four five.');
  });

  describe('model', function () {
    /**
     * `model export` of the random seed-3 checkpoint in `layout`, copied first to the file name a user has
     * (ckpt.th, model.safetensors): run once, by the first test that needs it; its result and output file.
     */
    const exported = new Map<string, Promise<{ ckpt: string; out: string; result: ReturnType<typeof cli> }>>();
    function exportLayout(layout: 'official' | 'huggingface'): Promise<{ ckpt: string; out: string; result: ReturnType<typeof cli> }> {
      let job = exported.get(layout);
      if (!job) {
        job = (async () => {
          const ckpt = path.join(dir, layout === 'official' ? 'ckpt.th' : 'model.safetensors');
          fs.copyFileSync((await randomCheckpoint(3))[layout], ckpt);
          const out = path.join(dir, `${layout}.pt`);
          return { ckpt, out, result: cli(['model', 'export', '--checkpoint', ckpt, '--out', out]) };
        })();
        exported.set(layout, job);
      }
      return job;
    }

    it('model info prints metadata without running the model, as text and JSON', function () {
      const text = cli(['model', 'info', model]);
      expect(text.status, text.stderr).to.equal(0);
      expect(text.stdout).to.match(/model\s+encodec_24khz/);
      expect(text.stdout).to.match(/sample rate\s+24000 Hz/);
      expect(text.stdout).to.match(/6 kbps = 8 codebooks/);
      expect(text.stdout).to.match(/source\s+random weights \(seed 0\)/);
      const json = cli(['model', 'info', model, '--json']);
      expect(json.status).to.equal(0);
      const info = JSON.parse(json.stdout);
      expect(info.max_codebooks).to.equal(32);
      expect(info.codebooks_per_bandwidth).to.deep.equal({ '1.5': 2, '3': 4, '6': 8, '12': 16, '24': 32 });
      expect(info.source.sha256).to.match(/^[0-9a-f]{64}$/);
      expect(info.exporter_version).to.be.a('string');
      expect(info.file.sha256).to.equal(crypto.createHash('sha256').update(fs.readFileSync(model)).digest('hex'));
    });

    it('model info fails clearly on files that are not models', function () {
      const notModel = path.join(dir, 'readme.pt');
      fs.writeFileSync(notModel, 'hello');
      const r = cli(['model', 'info', notModel]);
      expect(r.status).to.equal(1);
      expect(r.stderr).to.match(/not a TorchScript model file/);
      const missing = cli(['model', 'info', path.join(dir, 'missing.pt')]);
      expect(missing.status).to.equal(1);
      expect(missing.stderr).to.match(/does not exist/);
    });

    it('model random writes a loadable model with the requested seed', function () {
      const out = path.join(dir, 'seed7.pt');
      const r = cli(['model', 'random', '--out', out, '--seed', '7']);
      expect(r.status, r.stderr).to.equal(0);
      const info = JSON.parse(cli(['model', 'info', out, '--json']).stdout);
      expect(info.source).to.include({ kind: 'random', seed: 7 });
      const bad = cli(['model', 'random', '--out', path.join(dir, 'x.pt'), '--seed', 'abc']);
      expect(bad.status).to.equal(2);
      expect(bad.stderr).to.match(/--seed must be an integer/);
      expect(fs.existsSync(path.join(dir, 'x.pt'))).to.equal(false);
    });

    it('model export reads both checkpoint layouts and rejects broken checkpoints', async function () {
      for (const [layout, name] of [['official', 'ckpt.th'], ['huggingface', 'model.safetensors']] as const) {
        const { ckpt, out, result: r } = await exportLayout(layout);
        expect(r.status, r.stderr).to.equal(0);
        const info = JSON.parse(cli(['model', 'info', out, '--json']).stdout);
        expect(info.source.kind).to.equal(layout);
        expect(info.source.file).to.equal(name);
        expect(info.source.sha256).to.equal(crypto.createHash('sha256').update(fs.readFileSync(ckpt)).digest('hex'));
      }
      const broken = path.join(dir, 'broken.th');
      python(`
import torch
sd = torch.load(${JSON.stringify(path.join(dir, 'ckpt.th'))})
del sd['encoder.model.0.conv.conv.bias']
sd['encoder.model.3.conv.conv.weight_v'] = torch.zeros(3, 3, 3)
sd['extra.tensor'] = torch.zeros(1)
torch.save(sd, ${JSON.stringify(broken)})`);
      const out = path.join(dir, 'broken.pt');
      const r = cli(['model', 'export', '--checkpoint', broken, '--out', out]);
      expect(r.status).to.equal(1);
      expect(r.stderr).to.match(/encoder\.model\.0\.conv\.conv\.bias/);
      expect(r.stderr).to.match(/extra\.tensor/);
      expect(r.stderr).to.match(/encoder\.model\.3\.conv\.conv\.weight_v/);
      expect(fs.existsSync(out)).to.equal(false);
      expect(fs.readdirSync(dir).filter((f) => f.includes('partial') || f.startsWith('.broken'))).to.deep.equal([]);
    });

    it('model export refuses a model file (TorchScript) and a file that is no checkpoint, once, and claims "official" only for published files', async function () {
      const lm = (await randomLm('encodec_24khz', 0)).lm;
      for (const file of [model, lm]) {
        const out = path.join(dir, 'from-model.pt');
        const r = cli(['model', 'export', '--checkpoint', file, '--out', out]);
        expect(r.status, r.stderr).to.equal(1);
        expect(r.stderr).to.match(/is already a model file \(a TorchScript archive\), not a checkpoint: use it directly/);
        expect(r.stderr).to.not.match(/torch\.jit\.load|official/);
        expect(fs.existsSync(out)).to.equal(false);
      }
      const blob = path.join(dir, 'blob.th');
      fs.writeFileSync(blob, Buffer.alloc(4096, 7)); // not 'PK', not a pickle's 0x80, no safetensors header
      const r = cli(['model', 'export', '--checkpoint', blob, '--out', path.join(dir, 'blob.pt')]);
      expect(r.status).to.equal(1);
      expect(r.stderr).to.match(/is not a checkpoint: neither a PyTorch file/);
      expect(r.stderr).to.not.match(/pickle contains|allow-unsafe-pickle/);
      expect(r.stderr.split('\n').filter((l) => l.includes('blob.th'))).to.have.length(1); // printed once
      // a '{' where safetensors has its JSON is not enough: the header length before it must fit the file
      const brace = Buffer.alloc(4096, 7);
      brace[8] = 0x7b;
      fs.writeFileSync(blob, brace);
      expect(cli(['model', 'export', '--checkpoint', blob, '--out', path.join(dir, 'blob.pt')]).stderr).to.match(/is not a checkpoint: neither/);
      // the exporter refuses a model file on its own too (exporter/export.py used directly)
      const py = spawnSync('/usr/bin/python3', [path.join(PACKAGE_ROOT, 'exporter', 'export.py'), '--checkpoint', model, '--out', path.join(dir, 'py.pt')], { encoding: 'utf8' });
      expect(py.status).to.equal(1);
      expect(py.stderr).to.match(/already a model file/);
      // a random checkpoint in Meta's layout is exported, but its model file does not call itself official
      const { out, result } = await exportLayout('official');
      expect(result.status, result.stderr).to.equal(0);
      const info = cli(['model', 'info', out]);
      expect(info.stdout).to.match(/source\s+checkpoint \S+ in Meta's layout, not one of Meta's published files/);
      expect(info.stdout).to.not.match(/source\s+official/);
    });

    it('model fetch fails fast and clearly without a network, leaving nothing behind', async function () {
      const out = path.join(dir, 'fetched.pt');
      const started = Date.now();
      const r = await cliAsync(['model', 'fetch', '--out', out], { HF_ENDPOINT: 'http://127.0.0.1:9' });
      expect(r.status).to.equal(1);
      const inNewFolder = path.join(dir, 'offline-cache', 'encodec_24khz.pt');
      expect((await cliAsync(['model', 'fetch', '--out', inNewFolder], { HF_ENDPOINT: 'http://127.0.0.1:9' })).status).to.equal(1);
      expect(fs.existsSync(path.dirname(inNewFolder))).to.equal(false); // no empty cache folder left
      expect(r.stderr).to.match(/unreachable.*needs a network connection/);
      expect(r.stderr).to.match(/model export --checkpoint/);
      expect(Date.now() - started).to.be.lessThan(30000);
      expect(fs.existsSync(out)).to.equal(false);
    });

    it('model fetch downloads, verifies the SHA-256 the hub states, and exports (local mirror)', async function () {
      // A stand-in for huggingface.co on loopback: a 302 carrying X-Linked-Etag, then the file, as the hub does.
      const bytes = fs.readFileSync((await randomCheckpoint(3)).huggingface);
      const sha = crypto.createHash('sha256').update(bytes).digest('hex');
      let stated = sha;
      const lmBytes = fs.readFileSync((await randomLm('encodec_24khz', 0)).checkpoint);
      const server = http.createServer((req, res) => {
        if (req.url === '/encodec/v0/encodec_lm_24khz-1608e3c0.th') {
          res.writeHead(200, { 'content-length': String(lmBytes.length) });
          res.end(lmBytes); // random weights: not the SHA-256 its name promises
        } else if (req.url === '/facebook/encodec_24khz/resolve/main/model.safetensors') {
          res.writeHead(302, { location: '/cdn/blob', 'x-linked-etag': `"${stated}"` });
          res.end();
        } else if (req.url === '/cdn/blob') {
          res.writeHead(200, { 'content-length': String(bytes.length) });
          res.end(bytes);
        } else {
          res.writeHead(404);
          res.end();
        }
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      try {
        const out = path.join(dir, 'cache', 'fetched.pt');
        const ok = await cliAsync(['model', 'fetch', '--out', out, '--no-lm'], { HF_ENDPOINT: endpoint });
        expect(ok.status, ok.stderr).to.equal(0);
        expect(ok.stderr).to.include(`SHA-256 ${sha}`);
        const info = JSON.parse(cli(['model', 'info', out, '--json']).stdout);
        expect(info.source).to.include({ kind: 'huggingface', sha256: sha });
        expect(fs.existsSync(path.join(dir, 'cache', 'encodec_lm_24khz.pt'))).to.equal(false);

        // with the LM (the default): Meta's file name promises SHA-256 1608e3c0..., the mirror's bytes differ
        const withLm = path.join(dir, 'cache3', 'fetched.pt');
        const lmRun = await cliAsync(['model', 'fetch', '--out', withLm], { HF_ENDPOINT: endpoint, ENCODEC_META_ENDPOINT: `${endpoint}/encodec/v0` });
        expect(lmRun.status).to.equal(1);
        expect(lmRun.stderr).to.match(/checksum mismatch for .*encodec_lm_24khz-1608e3c0\.th.*expected 1608e3c0/);
        expect(fs.existsSync(withLm)).to.equal(true);
        expect(fs.readdirSync(path.join(dir, 'cache3')).sort()).to.deep.equal(['encodec_24khz.safetensors', 'fetched.pt']);

        stated = 'f'.repeat(64); // the hub says one thing, the bytes are another
        const badOut = path.join(dir, 'cache2', 'bad.pt');
        const bad = await cliAsync(['model', 'fetch', '--out', badOut], { HF_ENDPOINT: endpoint });
        expect(bad.status).to.equal(1);
        expect(bad.stderr).to.match(/checksum mismatch/);
        expect(fs.existsSync(badOut)).to.equal(false);
        expect(fs.readdirSync(path.join(dir, 'cache2'))).to.deep.equal([]);
      } finally {
        server.close();
      }
    });
  });

  describe('encode and decode', function () {
    it('encode writes codes as an integer .npy of shape [n_q, n_frames] that numpy reads', function () {
      const out = path.join(dir, 'codes.npy');
      const r = cli(['encode', speechWav, '--model', model, '--bandwidth', '3', '--out', out]);
      expect(r.status, r.stderr).to.equal(0);
      const seen = JSON.parse(python(`
import numpy, json
a = numpy.load(${JSON.stringify(out)})
print(json.dumps({"shape": list(a.shape), "dtype": str(a.dtype), "min": int(a.min()), "max": int(a.max())}))`));
      const duration = Number(python(`
import wave
w = wave.open(${JSON.stringify(speechWav)})
print(w.getnframes() / w.getframerate())`));
      expect(seen.shape[0]).to.equal(4);
      expect(Math.abs(seen.shape[1] - duration * 75)).to.be.lessThan(2);
      expect(seen.dtype).to.equal('int16');
      expect(seen.min).to.be.at.least(0);
      expect(seen.max).to.be.at.most(1023);
    });

    it('decode writes 24 kHz mono 16-bit WAV, float WAV with --float, or float32 .npy', async function () {
      const codes = path.join(dir, 'codes6.npy');
      expect(cli(['encode', speechWav, '--model', model, '--out', codes]).status).to.equal(0);
      const { shape } = await readNpy(codes);
      expect(shape[0]).to.equal(8); // default 6 kbps
      const wav = path.join(dir, 'out.wav');
      const r = cli(['decode', codes, '--model', model, '--out', wav]);
      expect(r.status, r.stderr).to.equal(0);
      const pcm = await readWav(wav);
      expect(pcm.sampleRate).to.equal(24000);
      expect(pcm.channels).to.equal(1);
      expect(pcm.format.bitsPerSample).to.equal(16);
      expect(pcm.samples[0].length).to.equal(shape[1] * 320);
      const fwav = path.join(dir, 'out-float.wav');
      expect(cli(['decode', codes, '--model', model, '--out', fwav, '--float']).status).to.equal(0);
      const flt = await readWav(fwav);
      expect(flt.format.bitsPerSample).to.equal(32);
      expect(flt.format.float).to.equal(true);
      const npy = path.join(dir, 'out.npy');
      expect(cli(['decode', codes, '--model', model, '--out', npy]).status).to.equal(0);
      const arr = await readNpy(npy);
      expect(arr.dtype).to.equal('<f4');
      expect(arr.shape).to.deep.equal([shape[1] * 320]);
      // The 16-bit file is the float samples rounded to 16 bits.
      const f = arr.data as Float32Array;
      for (let i = 0; i < f.length; i += 997) {
        expect(Math.abs(pcm.samples[0][i] - Math.max(-1, Math.min(1, f[i])))).to.be.lessThan(1 / 16384);
        expect(flt.samples[0][i]).to.equal(f[i]);
      }
    });

    it('finds the model through ENCODEC_MODEL, then the default cache path', function () {
      const out = path.join(dir, 'env.npy');
      const viaEnv = cli(['encode', speechWav, '--out', out], { ENCODEC_MODEL: model });
      expect(viaEnv.status, viaEnv.stderr).to.equal(0);
      const cache = path.join(dir, 'xdg');
      fs.mkdirSync(path.join(cache, 'encodec-native'), { recursive: true });
      const none = cli(['encode', speechWav, '--out', out], { ENCODEC_MODEL: '', XDG_CACHE_HOME: cache });
      expect(none.status).to.equal(1);
      expect(none.stderr).to.match(/no model yet: none at the default location .*encodec_24khz\.pt.*--model.*ENCODEC_MODEL.*model fetch/);
      fs.copyFileSync(model, path.join(cache, 'encodec-native', 'encodec_24khz.pt'));
      const viaDefault = cli(['encode', speechWav, '--out', out], { ENCODEC_MODEL: '', XDG_CACHE_HOME: cache });
      expect(viaDefault.status, viaDefault.stderr).to.equal(0);
    });

    it('rejects bad arguments with exit code 2 and writes no output', async function () {
      const out = path.join(dir, 'never.npy');
      const cases: [string[], RegExp][] = [
        [['encode', speechWav, '--model', model, '--bandwidth', '5', '--out', out], /unsupported bandwidth 5 kbps/],
        [['encode', speechWav, '--model', model, '--bandwidth', 'fast', '--out', out], /not a number/],
        [['encode', speechWav, '--model', model, '--out', path.join(dir, 'codes.txt')], /--out must end in \.npy/],
        [['encode', speechWav, '--model', model, '--out', path.join(dir, 'no', 'dir.npy')], /does not exist/],
        [['encode', speechWav, '--model', model, '--threads', '0', '--out', out], /--threads must be an integer/],
        [['encode', speechWav, '--model', model, '--device', 'tpu', '--out', out], /--device must be/],
        [['encode', '--model', model, '--out', out], /missing required argument/],
        [['frobnicate'], /unknown command/],
      ];
      for (const [args, pattern] of cases) {
        const r = cli(args);
        expect(r.status, args.join(' ')).to.equal(2);
        expect(r.stderr, args.join(' ')).to.match(pattern);
      }
      expect(fs.existsSync(out)).to.equal(false);

      const outWav = path.join(dir, 'never.wav');
      const floats = path.join(dir, 'float-codes.npy');
      await writeNpy(floats, new Float32Array([1, 2, 3, 4]), [2, 2]);
      const range = path.join(dir, 'range-codes.npy');
      await writeNpy(range, new Int32Array([1, 2, 1024, 4]), [2, 2]);
      const flat = path.join(dir, 'flat-codes.npy');
      await writeNpy(flat, new Int16Array([1, 2, 3, 4]), [4]);
      const decodeCases: [string, RegExp][] = [
        [floats, /integer dtype.*'<f4'/],
        [range, /1024.*outside \[0, 1023\]/],
        [flat, /shape \(n_q, n_frames\), got \(4\)/],
      ];
      for (const [file, pattern] of decodeCases) {
        const r = cli(['decode', file, '--model', model, '--out', outWav]);
        expect(r.status, file).to.equal(2);
        expect(r.stderr, file).to.match(pattern);
      }
      expect(fs.existsSync(outWav)).to.equal(false);
    });

    it('fails with exit code 1 on a missing or undecodable input and writes no output', function () {
      const out = path.join(dir, 'never2.npy');
      const missing = cli(['encode', path.join(dir, 'nope.wav'), '--model', model, '--out', out]);
      expect(missing.status).to.equal(1);
      expect(missing.stderr).to.match(/nope\.wav/);
      const junk = path.join(dir, 'junk.mp3');
      fs.writeFileSync(junk, crypto.randomBytes(5000));
      const bad = cli(['encode', junk, '--model', model, '--out', out]);
      expect(bad.status).to.equal(1);
      expect(bad.stderr).to.match(/junk\.mp3/);
      const corruptModel = path.join(dir, 'corrupt.pt');
      fs.writeFileSync(corruptModel, fs.readFileSync(model).subarray(0, 100000));
      const badModel = cli(['encode', speechWav, '--model', corruptModel, '--out', out]);
      expect(badModel.status).to.equal(1);
      expect(badModel.stderr).to.match(/corrupt or truncated/);
      expect(fs.existsSync(out)).to.equal(false);
    });
  });
});
