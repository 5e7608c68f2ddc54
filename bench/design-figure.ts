/**
 * Draws docs/design-matrix.png, the picture of docs/fmri.md's scanner-clock section: the design matrix `X` of
 * one run as `extract` makes it (speech placed at onset 6 s in a run of 30 volumes of 1.5 s, latents resampled
 * by Lanczos at the volumes, z-scored, delays 1-4), one panel per delay block, volumes along x. The seeded random
 * model of the tests stands in for Meta's weights, so the values are not speech features, but the layout is.
 *
 *   npm run build:ts && node dist/bench/design-figure.js [OUT.png]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { PACKAGE_ROOT } from '../lib/common/package-root';
import { Encodec } from '../lib/codec/codec';
import { extractFeatures } from '../lib/fmri/features';
import { stackedHeatmapSpec, writePng } from '../lib/report/plot';
import { makeSpeech24k } from '../test/helpers/media';
import { randomModel } from '../test/helpers/model';

async function main(): Promise<void> {
  const out = process.argv[2] ?? path.join(PACKAGE_ROOT, 'docs', 'design-matrix.png');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'encodec-figure-'));
  const codec = await Encodec.load(await randomModel(0), { threads: 2 });
  try {
    const speech = await makeSpeech24k(
      dir,
      'The movie begins a few seconds into the run. Every volume of the scan gets one row of the design matrix, ' +
        'and every delay a block of columns, so that a linear model can learn the haemodynamic lag.',
    );
    const delays = [1, 2, 3, 4];
    const tr = 1.5;
    const r = await extractFeatures(speech, { model: codec, onset: 6, tr, runTrs: 30, output: 'latents', resample: 'lanczos', zscore: true, delays });
    const [nTrs, width] = r.shape;
    const block = width / delays.length;
    const panels = delays.map((d, b) => {
      // panel rows = latent dimensions, columns = volumes
      const data = new Float32Array(block * nTrs);
      for (let k = 0; k < nTrs; k++) for (let c = 0; c < block; c++) data[c * nTrs + k] = r.features[k * width + b * block + c];
      return { title: `columns ${b * block}-${(b + 1) * block - 1}: latents of volume k - ${d} (delay ${d} x ${tr} s)`, matrix: { data, rows: block, cols: nTrs } };
    });
    await writePng(
      out,
      stackedHeatmapSpec(panels, {
        // two lines: Vega estimates one long line wider than it draws (see HeatmapAxes.title)
        title: [`X: ${nTrs} volumes x ${width} columns`, `onset 6 s = volume 4; z-scored latents, lanczos, delays ${delays.join(',')}`],
        xDomain: [0, nTrs],
        xTitle: 'volume k (TR 1.5 s)',
        xIntegers: true,
        yDomain: [0, block],
        yTitle: 'latent',
        colorTitle: 'z',
        colorDomain: [-3, 3],
        width: 640,
        height: 110,
        smooth: false,
      }),
    );
    process.stdout.write(`${out}\n`);
  } finally {
    codec.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exitCode = 1;
});
