/**
 * Faithfulness: the exported TorchScript model, run by the addon, against an independent eager PyTorch
 * definition written the way Meta's code is (test/reference/encodec_reference.py: weight-norm hooks, reflect
 * padding, nn.LSTM, Euclidean codebooks), loading the same state_dict with strict=True. Checkpoints are made in
 * both layouts (Meta's .th and Hugging Face's model.safetensors) and go through `model export` like real ones.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { Encodec } from '../../lib/codec/codec';
import { exportModel } from '../../lib/model/exporter';
import { readNpy } from '../../lib/io/npy';
import { snr } from '../../lib/quality/metrics';
import { expectCodesWithinRounding } from '../helpers/assert';
import { CACHE_DIR } from '../helpers/model';
import { PACKAGE_ROOT } from '../../lib/common/package-root';

const N_QS = [2, 8, 32];

interface Manifest {
  dir: string;
  files: Record<string, string>;
  samples: number;
  frames: number;
  speech: boolean;
}

describe('parity with the eager reference implementation', function () {
  let manifest: Manifest;
  let audio: Float32Array;
  const file = (key: string): string => path.join(manifest.dir, manifest.files[key]);

  before(async function () {
    const dir = path.join(CACHE_DIR, 'parity');
    const script = path.join(PACKAGE_ROOT, 'test', 'reference', 'prepare_fixtures.py');
    const r = spawnSync('/usr/bin/python3', [script, '--dir', dir, '--seed', '1', '--seconds', '8', '--n-q', N_QS.join(',')], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).to.equal(0);
    manifest = JSON.parse(r.stdout) as Manifest;
    expect(manifest.speech, 'the fixture audio should contain espeak-ng speech').to.equal(true);
    audio = (await readNpy(file('audio'))).data as Float32Array;
    expect(audio.length).to.equal(manifest.samples);
  });

  for (const layout of ['official', 'huggingface'] as const) {
    describe(`${layout} checkpoint layout`, function () {
      let codec: Encodec;

      before(async function () {
        const checkpoint = file(`checkpoint_${layout}`);
        const model = path.join(manifest.dir, `exported-${layout}.pt`);
        if (!fs.existsSync(model) || fs.statSync(model).mtimeMs < fs.statSync(checkpoint).mtimeMs) {
          await exportModel({ checkpoint, out: model });
        }
        codec = await Encodec.load(model, { threads: 2, warmup: false });
        expect(codec.info.source.kind).to.equal(layout);
      });

      after(function () {
        codec?.dispose();
      });

      for (const nQ of N_QS) {
        it(`whole-file codes at ${nQ} codebooks are identical to the reference's up to float rounding`, async function () {
          const ref = await readNpy(file(`ref_codes_nq${nQ}`));
          expect(ref.shape).to.deep.equal([1, nQ, manifest.frames]);
          const refData = Int32Array.from(ref.data as BigInt64Array, (v) => Number(v));
          const bandwidth = (nQ * 750) / 1000;
          const codes = await codec.encode(audio, { bandwidth });
          expectCodesWithinRounding(codes, { data: refData, nQ, nFrames: manifest.frames }, `${nQ} codebooks`);
        });

        it(`decoding the reference codes at ${nQ} codebooks agrees >= 60 dB SNR, and so do the embeddings`, async function () {
          const ref = await readNpy(file(`ref_codes_nq${nQ}`));
          const data = Int32Array.from(ref.data as BigInt64Array, (v) => Number(v));
          const codes = { data, nQ, nFrames: manifest.frames };
          const decoded = await codec.decode(codes);
          const refAudio = (await readNpy(file(`ref_audio_nq${nQ}`))).data as Float32Array;
          expect(decoded.length).to.equal(refAudio.length);
          expect(snr(refAudio, decoded)).to.be.at.least(60);
          const embeddings = await codec.embeddings(codes);
          const refEmbeddings = (await readNpy(file(`ref_embeddings_nq${nQ}`))).data as Float32Array;
          expect(embeddings.data.length).to.equal(refEmbeddings.length);
          expect(snr(refEmbeddings, embeddings.data)).to.be.at.least(60);
        });
      }
    });
  }
});
