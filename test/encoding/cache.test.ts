/**
 * The encode stage and its cache (lib/encoding): residual VQ's prefix property on both models, embeddings from
 * stored codes equal to the model's, warm-cache features byte-identical to a fresh run without any model loaded,
 * and entries that are corrupt, truncated, edited, foreign or written by two processes at once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { Encodec } from '../../lib/codec/codec';
import { loadAudio, streamAudio } from '../../lib/io/audio';
import { EncodingCache } from '../../lib/encoding/cache';
import { encodeFile } from '../../lib/encoding/encode-file';
import { FRAMES_FILE, META_FILE } from '../../lib/encoding/entry';
import { extractFeatures } from '../../lib/fmri/features';
import type { FeatureSet } from '../../lib/fmri/feature-set';
import { makeSpeech24k, makeStereo48k } from '../helpers/media';
import { randomModel, randomModel48 } from '../helpers/model';
import { cliAsync } from '../helpers/cli';
import { pythonJson } from '../helpers/python';
import { tempDir } from '../helpers/temp-dir';

/** Counts Encodec.load calls while `work` runs. */
async function countingLoads<T>(work: () => Promise<T>): Promise<{ result: T; loads: number }> {
  const original = Encodec.load;
  let loads = 0;
  (Encodec as { load: typeof original }).load = async (...args: Parameters<typeof original>) => {
    loads++;
    return original.apply(Encodec, args);
  };
  try {
    return { result: await work(), loads };
  } finally {
    (Encodec as { load: typeof original }).load = original;
  }
}

function entryDirs(cacheDir: string): string[] {
  if (!fs.existsSync(cacheDir)) return [];
  return fs
    .readdirSync(cacheDir)
    .filter((d) => /^[0-9a-f]{2}$/.test(d))
    .flatMap((d) => fs.readdirSync(path.join(cacheDir, d)).map((k) => path.join(cacheDir, d, k)));
}

function sameFeatures(a: FeatureSet, b: FeatureSet): void {
  expect(a.shape).to.deep.equal(b.shape);
  expect(a.features.constructor).to.equal(b.features.constructor);
  expect(Buffer.from(a.features.buffer, a.features.byteOffset, a.features.byteLength).equals(Buffer.from(b.features.buffer, b.features.byteOffset, b.features.byteLength))).to.equal(true);
  expect(a.metadata).to.deep.equal(b.metadata);
}

describe('encoding cache', function () {
  const dir = tempDir('encoding-cache');
  let model24: string;
  let model48: string;
  let speech: string;
  let stereo: string;

  before(async function () {
    model24 = await randomModel(0);
    model48 = (await randomModel48(0)).model;
    speech = await makeSpeech24k(dir, 'Each stimulus is encoded once and aligned many times.', 3);
    stereo = await makeStereo48k(dir, 2.5);
  });

  it('stores full-depth codes whose first rows are the codes at every bandwidth, on both models', async function () {
    for (const [modelPath, file, bandwidths] of [
      [model24, speech, [1.5, 3, 6, 12, 24]],
      [model48, stereo, [3, 6, 12, 24]],
    ] as [string, string, number[]][]) {
      const codec = await Encodec.load(modelPath, { threads: 2, warmup: false });
      try {
        const cache = path.join(dir, `prefix-${codec.info.model}`);
        for (const bandwidth of bandwidths) {
          const fresh = await codec.encodeStream(streamAudio(file, { sampleRate: codec.info.sample_rate, channels: codec.info.channels as 1 | 2 }), { bandwidth });
          const cached = await encodeFile(file, { model: codec, bandwidth, cache });
          expect([cached.nQ, cached.nFrames]).to.deep.equal([fresh.nQ, fresh.nFrames]);
          expect(Array.from(cached.data)).to.deep.equal(Array.from(fresh.data), `${codec.info.model} at ${bandwidth} kbps`);
          if (fresh.scales) expect(Array.from(cached.scales as Float32Array)).to.deep.equal(Array.from(fresh.scales));
        }
        expect(entryDirs(cache)).to.have.length(1); // one encoding served every bandwidth
      } finally {
        codec.dispose();
      }
    }
  });

  it('computes embeddings from stored codes and codebooks bit for bit as the model dequantizes them', async function () {
    for (const [modelPath, file] of [
      [model24, speech],
      [model48, stereo],
    ]) {
      const codec = await Encodec.load(modelPath, { threads: 2, warmup: false });
      try {
        const cache = path.join(dir, `embed-${codec.info.model}`);
        const books = await codec.codebooks();
        expect([books.count, books.bins, books.dim]).to.deep.equal([codec.info.max_codebooks, 1024, 128]);
        const bandwidth = 12;
        const codes = await encodeFile(file, { model: codec, bandwidth, cache });
        const want = await codec.embeddings(codes);
        const got = await extractFeatures(file, { model: codec, bandwidth, output: 'embeddings', cache, resample: 'window', layout: 'tr', tr: 1 });
        // TR windows are frames [floor(k * rate), ...) of the grid; for the whole-file model the grid is the codes
        if (codec.info.model === 'encodec_24khz') {
          const [nTrs, rows, frames] = got.shape;
          for (let k = 0; k < nTrs; k++) {
            for (let r = 0; r < rows; r++) {
              for (let t = 0; t < frames; t++) {
                const a = got.features[(k * rows + r) * frames + t];
                const b = want.data[r * want.nFrames + k * 75 + t];
                if (!Object.is(a, b)) throw new Error(`TR ${k} row ${r} frame ${t}: ${a} != ${b}`);
              }
            }
          }
        } else {
          expect(got.shape[1]).to.equal(128);
        }
      } finally {
        codec.dispose();
      }
    }
  });

  for (const [name, which] of [
    ['encodec_24khz', 24],
    ['encodec_48khz', 48],
  ] as const) {
    it(`${name}: features from a warm cache equal a fresh run byte for byte (codes, embeddings at every bandwidth, latents) and load no model`, async function () {
      const modelPath = which === 24 ? model24 : model48;
      const file = which === 24 ? speech : stereo;
      const cache = path.join(dir, `warm-${name}`);
      const bandwidths = which === 24 ? [1.5, 3, 6, 12, 24] : [3, 6, 12, 24];
      const settings = [
        { output: 'codes' as const, bandwidth: bandwidths[0] },
        ...bandwidths.map((bandwidth) => ({ output: 'embeddings' as const, bandwidth, resample: 'lanczos' as const, zscore: true, delays: [1, 2] })),
        { output: 'embeddings' as const, bandwidth: bandwidths[1] },
        { output: 'latents' as const, resample: 'mean' as const, onset: 0.7, runTrs: 4 },
        { output: 'codes' as const, bandwidth: bandwidths[2], onset: -0.3, hrf: 'glover' as const },
      ];
      // the cache filled once (codes, then latents); the codebooks kept at the first embeddings
      const first = await countingLoads(() => extractFeatures(file, { model: modelPath, cache, threads: 2, ...settings[1] }));
      expect(first.loads).to.equal(1);
      await extractFeatures(file, { model: modelPath, cache, threads: 2, output: 'latents' });
      // the fresh runs (the oracle) share one model, loaded as a run given the path loads it (2 threads, no warm-up)
      const codec = await Encodec.load(modelPath, { threads: 2, warmup: false });
      try {
        for (const s of settings) {
          const fresh = await extractFeatures(file, { model: codec, cache: false, ...s });
          expect(fresh.encodings?.some((e) => e.cached), JSON.stringify(s)).to.equal(false);
          const warm = await countingLoads(() => extractFeatures(file, { model: modelPath, cache, threads: 2, ...s }));
          expect(warm.loads, JSON.stringify(s)).to.equal(0);
          sameFeatures(warm.result, fresh);
          expect(warm.result.encodings?.every((e) => e.cached)).to.equal(true);
        }
      } finally {
        codec.dispose();
      }
      expect(entryDirs(cache)).to.have.length(2); // codes and latents
    });
  }

  it('detects a corrupt, truncated, edited or foreign entry, reports it once, and encodes again', async function () {
    const cache = path.join(dir, 'damaged');
    const warnings: string[] = [];
    const store = EncodingCache.at(cache, (m) => warnings.push(m));
    const codec = await Encodec.load(model24, { threads: 2, warmup: false });
    try {
      const good = await encodeFile(speech, { model: codec, cache: store, bandwidth: 24 });
      const [entry] = entryDirs(cache);
      const frames = path.join(entry, FRAMES_FILE);
      const damage: [string, () => void][] = [
        ['corrupt', () => {
          const bytes = fs.readFileSync(frames);
          bytes[bytes.length - 3] ^= 0x40;
          fs.writeFileSync(frames, bytes);
        }],
        ['truncated', () => fs.truncateSync(frames, fs.statSync(frames).size - 64)],
        ['edited', () => {
          const meta = JSON.parse(fs.readFileSync(path.join(entry, META_FILE), 'utf8'));
          meta.samples += 1;
          fs.writeFileSync(path.join(entry, META_FILE), JSON.stringify(meta));
        }],
        ['foreign', () => {
          // another model's entry moved under this key: its sidecar names the other key
          const other = path.join(dir, 'foreign-src');
          fs.cpSync(entry, other, { recursive: true });
          const meta = JSON.parse(fs.readFileSync(path.join(other, META_FILE), 'utf8'));
          expect(meta.key).to.equal(path.basename(entry));
          fs.rmSync(entry, { recursive: true });
          fs.renameSync(other, entry);
          const m = JSON.parse(fs.readFileSync(path.join(entry, META_FILE), 'utf8'));
          m.key = 'f'.repeat(64);
          m.model_sha256 = '0'.repeat(64);
          const { entrySha256 } = require('../../lib/encoding/entry') as typeof import('../../lib/encoding/entry');
          m.entry_sha256 = entrySha256(m);
          fs.writeFileSync(path.join(entry, META_FILE), JSON.stringify(m));
        }],
      ];
      for (const [what, damageIt] of damage) {
        damageIt();
        warnings.length = 0;
        const again = await encodeFile(speech, { model: codec, cache: store, bandwidth: 24 });
        expect(Array.from(again.data), what).to.deep.equal(Array.from(good.data));
        expect(warnings, what).to.have.length(1);
        expect(warnings[0]).to.match(/invalid .*removed; encoding again/);
        // the replacement is valid and used without a word
        warnings.length = 0;
        await encodeFile(speech, { model: codec, cache: store, bandwidth: 24 });
        expect(warnings, what).to.have.length(0);
        expect(entryDirs(cache)).to.deep.equal([entry]);
      }
    } finally {
      codec.dispose();
    }
  });

  it('leaves one valid entry and correct outputs when two processes encode the same stimulus at once', async function () {
    const cache = path.join(dir, 'race');
    const outs = [path.join(dir, 'race-a'), path.join(dir, 'race-b')];
    const runs = await Promise.all(
      outs.map((out) => cliAsync(['extract', speech, '--out', out, '--model', model24, '--cache', cache, '--output', 'latents', '--resample', 'lanczos'])),
    );
    for (const r of runs) expect(r.status, r.stderr).to.equal(0);
    const fresh = await cliAsync(['extract', speech, '--out', path.join(dir, 'race-fresh'), '--model', model24, '--no-cache', '--output', 'latents', '--resample', 'lanczos']);
    expect(fresh.status, fresh.stderr).to.equal(0);
    const want = fs.readFileSync(path.join(dir, 'race-fresh', `${path.basename(speech, '.wav')}.npy`));
    for (const out of outs) expect(fs.readFileSync(path.join(out, `${path.basename(speech, '.wav')}.npy`)).equals(want)).to.equal(true);
    const dirs = entryDirs(cache);
    expect(dirs.filter((d) => !d.includes('.building-'))).to.have.length(1);
    expect(dirs.filter((d) => d.includes('.building-'))).to.deep.equal([]); // the loser removed its copy
    const verify = await cliAsync(['cache', 'verify', '--cache', cache]);
    expect(verify.status, verify.stderr).to.equal(0);
    expect(verify.stderr).to.match(/1 of 1 entry valid/);
    // every file extract writes, warm vs --no-cache: .npy, .csv and .h5 byte for byte
    const name = path.basename(speech, '.wav');
    for (const format of [['--format', 'npy'], ['--format', 'h5']]) {
      const args = ['extract', speech, '--model', model24, '--output', 'latents', '--resample', 'lanczos', '--delays', '1,2', ...format];
      const warm = await cliAsync([...args, '--out', path.join(dir, `race-warm-${format[1]}`), '--cache', cache]);
      const cold = await cliAsync([...args, '--out', path.join(dir, `race-cold-${format[1]}`), '--no-cache']);
      expect(warm.status, warm.stderr).to.equal(0);
      expect(warm.stdout).to.match(/from the cache/);
      expect(cold.stdout).to.match(/encoded/);
      const files = fs.readdirSync(path.join(dir, `race-cold-${format[1]}`)).sort();
      expect(files).to.deep.equal(format[1] === 'h5' ? [`${name}.h5`] : [`${name}.csv`, `${name}.npy`]);
      for (const f of files) {
        expect(fs.readFileSync(path.join(dir, `race-warm-${format[1]}`, f)).equals(fs.readFileSync(path.join(dir, `race-cold-${format[1]}`, f))), f).to.equal(true);
      }
    }
  });

  it('cache list / verify / prune / clear', async function () {
    const cache = path.join(dir, 'cli');
    for (const output of ['codes', 'latents']) {
      const r = await cliAsync(['frames', speech, '--out', path.join(dir, `cli-frames-${output}`), '--model', model24, '--cache', cache, '--output', output]);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.match(/encoded/);
    }
    const again = await cliAsync(['frames', speech, '--out', path.join(dir, 'cli-frames-again'), '--model', model24, '--cache', cache]);
    expect(again.stdout).to.match(/from the cache/);
    // numpy reads the frames file: [frames, 8] int16, the first 8 codebooks of the codes, frame-major; the sidecar
    const codes = await encodeFile(speech, { model: model24, bandwidth: 6, cache });
    const npy = path.join(dir, 'cli-frames-again', `${path.basename(speech, '.wav')}.npy`);
    const read = pythonJson<{ shape: number[]; dtype: string; flat: number[] }>(`x = np.load(data)\nprint(json.dumps({'shape': list(x.shape), 'dtype': str(x.dtype), 'flat': x.T.ravel().tolist()}))`, npy);
    expect([read.shape, read.dtype]).to.deep.equal([[codes.nFrames, 8], 'int16']);
    expect(read.flat).to.deep.equal(Array.from(codes.data));
    const sidecar = JSON.parse(fs.readFileSync(npy.replace(/\.npy$/, '.json'), 'utf8'));
    expect(sidecar).to.include({ SamplingFrequency: 75, StartTime: 0.5 / 75, FeatureKind: 'codes', Bandwidth: 6, Codebooks: 8 });
    expect(sidecar.Columns).to.deep.equal(Array.from({ length: 8 }, (_, c) => `codebook_${c}`));
    const list = JSON.parse((await cliAsync(['cache', 'list', '--cache', cache, '--json'])).stdout);
    expect(list.entries.map((e: { stored: string }) => e.stored).sort()).to.deep.equal(['codes', 'latents']);
    const codesEntry = list.entries.find((e: { stored: string }) => e.stored === 'codes');
    // codes at full depth: 32 int16 per frame, far under 40 MB per hour
    expect(codesEntry.bytes / codesEntry.seconds * 3600).to.be.below(40e6);
    // a damaged entry: verify exits 1 naming it; prune removes it
    const latents = list.entries.find((e: { stored: string }) => e.stored === 'latents');
    fs.truncateSync(path.join(latents.dir, FRAMES_FILE), 100);
    const verify = await cliAsync(['cache', 'verify', '--cache', cache]);
    expect(verify.status).to.equal(1);
    expect(verify.stdout).to.match(/INVALID.*frames\.npy holds 100 bytes/);
    const pruned = await cliAsync(['cache', 'prune', '--cache', cache, '--max-size', '20G']);
    expect(pruned.status, pruned.stderr).to.equal(0);
    expect(pruned.stderr).to.match(/removed 1 entry/);
    // least recently used first under --max-size; --older-than by last use
    const small = await cliAsync(['cache', 'prune', '--cache', cache, '--older-than', '30d']);
    expect(small.stderr).to.match(/removed 0 entries/);
    expect((await cliAsync(['cache', 'prune', '--cache', cache, '--max-size', '1K'])).stderr).to.match(/removed 1 entry/);
    expect((await cliAsync(['cache', 'prune', '--cache', cache, '--max-size', 'lots'])).status).to.equal(2);
    await cliAsync(['frames', speech, '--out', path.join(dir, 'cli-frames-3'), '--model', model24, '--cache', cache]);
    const cleared = await cliAsync(['cache', 'clear', '--cache', cache]);
    expect(cleared.stderr).to.match(/removed 1 entry/);
    expect(entryDirs(cache)).to.deep.equal([]);
  });

  it('extract --no-cache keeps nothing; a library call keeps one entry in the folder it is given', async function () {
    const cache = path.join(dir, 'nocache');
    const r = await cliAsync(['extract', speech, '--out', path.join(dir, 'nocache-out'), '--model', model24, '--cache', cache, '--no-cache']);
    expect(r.status, r.stderr).to.equal(0);
    expect(entryDirs(cache)).to.deep.equal([]);
    const samples = (await loadAudio(speech)).samples.length;
    const f = await extractFeatures(speech, { model: model24, cache, threads: 2 });
    expect(f.shape[0]).to.equal(Math.floor(samples / 24000 / 1.5));
    expect(entryDirs(cache)).to.have.length(1);
  });
});
