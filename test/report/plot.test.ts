/** Pictures (lib/plot.ts): Vega-Lite -> SVG -> PNG, heat-map rasters, text rendering, atomic writes. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';
import { PNG } from 'pngjs';
import { tempDir } from '../helpers/temp-dir';

import {
  MAX_RASTER_COLUMNS,
  VegaLiteSpec,
  downsampleMatrix,
  heatmapDataUrl,
  pngSize,
  renderPng,
  stackedHeatmapSpec,
  vegaLiteToSvg,
  writePng,
} from '../../lib/report/plot';

/** A fixed-size chart: no automatic sizing and no padding, so the PNG is exactly width x height x scale. */
function fixedSpec(width: number, height: number, layer: object[]): VegaLiteSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    width,
    height,
    autosize: { type: 'none' },
    padding: 0,
    config: { view: { stroke: null } },
    layer,
  } as VegaLiteSpec;
}

function decode(png: Buffer): PNG {
  return PNG.sync.read(png);
}

/** RGB of pixel (x, y). */
function pixel(img: PNG, x: number, y: number): [number, number, number] {
  const o = (y * img.width + x) * 4;
  return [img.data[o], img.data[o + 1], img.data[o + 2]];
}

describe('plot', function () {
  const dir = tempDir('plot');

  it('renders a Vega-Lite chart to a PNG of the expected size at each scale', async function () {
    const spec = fixedSpec(300, 120, [
      {
        data: { values: [{ x: 'a', y: 3 }, { x: 'b', y: 7 }] },
        mark: 'bar',
        encoding: { x: { field: 'x', type: 'nominal', axis: null }, y: { field: 'y', type: 'quantitative', axis: null } },
      },
    ]);
    for (const scale of [1, 2]) {
      const png = await renderPng(spec, { scale });
      const img = decode(png);
      expect([img.width, img.height]).to.deep.equal([300 * scale, 120 * scale]);
      expect(pngSize(png)).to.deep.equal({ width: 300 * scale, height: 120 * scale });
    }
  });

  it('draws text (a font is found): a black label darkens pixels on the white background', async function () {
    const spec = fixedSpec(200, 60, [
      { data: { values: [{}] }, mark: { type: 'text', text: 'EnCodec', fontSize: 40, color: 'black', x: 100, y: 30, align: 'center', baseline: 'middle' } },
    ]);
    const img = decode(await renderPng(spec, { scale: 1 }));
    let dark = 0;
    for (let y = 0; y < img.height; y++) {
      for (let x = 0; x < img.width; x++) if (pixel(img, x, y)[0] < 64) dark++;
    }
    // "EnCodec" at 40 px covers well over 500 pixels; with no usable font nothing is drawn.
    expect(dark).to.be.greaterThan(500);
    expect(pixel(img, 2, 2)).to.deep.equal([255, 255, 255]);
  });

  it('heat-map rasters use the colour bar scheme, put row 0 at the bottom and keep small grids as they are', function () {
    // 2 rows x 3 columns: row 0 = [0, 0.5, 1], row 1 all NaN (transparent).
    const url = heatmapDataUrl({ data: [0, 0.5, 1, NaN, NaN, NaN], rows: 2, cols: 3 }, [0, 1]);
    expect(url).to.match(/^data:image\/png;base64,/);
    const img = decode(Buffer.from(url.split(',')[1], 'base64'));
    expect([img.width, img.height]).to.deep.equal([3, 2]);
    expect(pixel(img, 0, 1)).to.deep.equal([0x44, 0x01, 0x54]); // viridis at 0 (#440154), bottom row
    expect(pixel(img, 2, 1)).to.deep.equal([0xfd, 0xe7, 0x25]); // viridis at 1 (#fde725)
    expect(img.data[(0 * 3 + 0) * 4 + 3]).to.equal(0); // NaN row: transparent
  });

  it('sharp rasters repeat cells into blocks instead of letting the renderer blur them', function () {
    const url = heatmapDataUrl({ data: [0, 1], rows: 1, cols: 2 }, [0, 1], { sharp: true });
    const img = decode(Buffer.from(url.split(',')[1], 'base64'));
    expect(img.width).to.equal(1600);
    expect(img.height).to.equal(800);
    expect(pixel(img, 799, 500)).to.deep.equal([0x44, 0x01, 0x54]);
    expect(pixel(img, 800, 500)).to.deep.equal([0xfd, 0xe7, 0x25]);
  });

  it('long matrices are averaged down to a bounded raster', function () {
    const cols = 10 * MAX_RASTER_COLUMNS;
    const data = Float32Array.from({ length: 2 * cols }, (_, i) => (i < cols ? i % 10 : 5));
    const small = downsampleMatrix({ data, rows: 2, cols });
    expect([small.rows, small.cols]).to.deep.equal([2, MAX_RASTER_COLUMNS]);
    expect(small.data[0]).to.be.closeTo(4.5, 1e-6); // mean of 0..9
    expect(small.data[MAX_RASTER_COLUMNS]).to.equal(5);
    expect(() => downsampleMatrix({ data: [1, 2, 3], rows: 2, cols: 2 })).to.throw(RangeError, /3 values but rows x cols = 2 x 2/);
  });

  it('stacked heat maps render one panel per matrix on a shared axis, fast and bounded for minutes of frames', async function () {
    // 10 minutes of 80-band frames at 24 kHz / hop 256: the raster is bounded, the SVG stays small.
    const rows = 80;
    const cols = 56250;
    const data = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[r * cols + c] = -80 + 80 * Math.abs(Math.sin(r / 9 + c / 900));
    const panel = (title: string) => ({ title, matrix: { data, rows, cols } });
    const axes = { xDomain: [0, 600] as [number, number], xTitle: 'time (s)', yDomain: [0, 12000] as [number, number], yTitle: 'Hz', colorTitle: 'dB' };
    const svg = await vegaLiteToSvg(stackedHeatmapSpec([panel('a'), panel('b')], axes));
    expect(svg.length).to.be.lessThan(3_000_000);
    expect(svg).to.include('>a</text>').and.include('>b</text>').and.include('>dB</text>');
    const two = decode(await renderPng(stackedHeatmapSpec([panel('a'), panel('b')], axes), { scale: 1 }));
    const three = decode(await renderPng(stackedHeatmapSpec([panel('a'), panel('b'), panel('c')], axes), { scale: 1 }));
    expect(two.width).to.equal(three.width);
    expect(three.height - two.height).to.be.within(160, 240); // one more 160-unit panel plus spacing and title
    expect(() => stackedHeatmapSpec([], axes)).to.throw(RangeError, /at least one panel/);
  });

  it('writePng writes atomically and leaves nothing when the directory is missing', async function () {
    const spec = fixedSpec(50, 40, [{ data: { values: [{}] }, mark: { type: 'rect', color: 'red' } }]);
    const file = path.join(dir, 'ok.png');
    await writePng(file, spec, { scale: 1 });
    expect(pngSize(fs.readFileSync(file))).to.deep.equal({ width: 50, height: 40 });
    expect(fs.readdirSync(dir)).to.deep.equal(['ok.png']);
    const bad = path.join(dir, 'no-such-dir', 'x.png');
    let failed = false;
    try {
      await writePng(bad, spec);
    } catch {
      failed = true;
    }
    expect(failed).to.equal(true);
    expect(fs.existsSync(path.dirname(bad))).to.equal(false);
    expect(() => pngSize(Buffer.from('GIF89a not a png at all'))).to.throw(/not a PNG/);
  });
});
