/**
 * Pictures: Vega-Lite specs compiled by `vega-lite`, laid out and drawn to SVG by `vega` (headless, no
 * canvas), and rasterized to PNG by `@resvg/resvg-js` (a prebuilt Rust renderer).
 *
 * Heat maps (spectrograms, code maps) are not drawn as one SVG rectangle per cell: minutes of audio are
 * tens of thousands of frames x 80 mel bins, which would make SVGs of hundreds of MB and take minutes to lay
 * out. Instead the matrix is averaged down to a bounded grid (at most {@link MAX_RASTER_COLUMNS} columns,
 * about one per output pixel, so nothing visible is lost), coloured with the same Vega colour scheme the
 * colour bar uses, encoded as a PNG by `pngjs` and placed with Vega-Lite's `image` mark as a data URL. The
 * cost is then bounded whatever the duration, and the PNG stays small.
 *
 * Text needs a font: resvg does not read fontconfig, so DejaVu Sans (Debian `fonts-dejavu-core`, installed
 * by scripts/install-system-deps.sh) is loaded from its usual paths, else system fonts are scanned.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';

import { Resvg } from '@resvg/resvg-js';
import { PNG } from 'pngjs';
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite';

import { writeFileAtomic } from '../common/atomic';
import { debug, elapsedSince, formatBytes } from '../common/log';
import { codedError, rangeError } from '../common/errors';

/** A Vega-Lite specification (top level), as accepted by `vega-lite`'s `compile`. */
export type VegaLiteSpec = VegaLite.TopLevelSpec;

/**
 * Vega and Vega-Lite, loaded on first use: loading them takes longer than the rest of the CLI together, and
 * most commands draw nothing.
 */
function vegaLibs(): { vega: typeof Vega; vegaLite: typeof VegaLite } {
  return { vega: require('vega') as typeof Vega, vegaLite: require('vega-lite') as typeof VegaLite };
}

/** At most this many columns (time steps) reach a heat-map raster; more are averaged in groups. */
export const MAX_RASTER_COLUMNS = 2000;
/** At most this many rows reach a heat-map raster; more are averaged in groups. */
export const MAX_RASTER_ROWS = 512;

/** Sharp heat-map rasters are enlarged to about this many pixels wide and high (see {@link heatmapDataUrl}). */
const SHARP_TARGET_WIDTH = 1600;
const SHARP_TARGET_HEIGHT = 800;

/** Colour scheme of heat maps and their colour bars (perceptually uniform, readable in greyscale). */
export const HEATMAP_SCHEME = 'viridis';

/** Where DejaVu Sans lives on Debian/Ubuntu (fonts-dejavu-core) and Fedora/Arch. */
const FONT_CANDIDATES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf',
  '/usr/share/fonts/TTF/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
];
const FONT_FAMILY = 'DejaVu Sans';

export interface RenderOptions {
  /** Pixels per Vega-Lite unit (default 2: sharp text on high-density screens and in papers). */
  scale?: number;
  /** Background colour (default white; PNGs with transparent backgrounds read badly in dark viewers). */
  background?: string;
}

/** A matrix to draw as a heat map: `data[r * cols + c]`, row 0 drawn at the bottom. */
export interface Matrix {
  data: ArrayLike<number>;
  rows: number;
  cols: number;
}

/** Compiles a Vega-Lite spec and draws it as an SVG document. */
export async function vegaLiteToSvg(spec: VegaLiteSpec): Promise<string> {
  const start = performance.now();
  const { vega, vegaLite } = vegaLibs();
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Warn });
  try {
    const svg = await view.toSVG();
    debug('plot', () => `vega-lite -> SVG (${formatBytes(svg.length)}) in ${elapsedSince(start)}`);
    return svg;
  } finally {
    view.finalize();
  }
}

let fontFile: string | null | undefined;

/** DejaVu Sans if installed (cached lookup), else null (resvg then scans system fonts). */
function findFont(): string | null {
  if (fontFile === undefined) fontFile = FONT_CANDIDATES.find((f) => fs.existsSync(f)) ?? null;
  return fontFile;
}

/** Rasterizes an SVG document to PNG bytes. */
export function svgToPng(svg: string, options: RenderOptions = {}): Buffer {
  const scale = options.scale ?? 2;
  if (!(typeof scale === 'number' && scale > 0 && scale <= 16)) throw rangeError(`scale must be a number in (0, 16], got ${scale}`);
  const start = performance.now();
  const font = findFont();
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: options.background ?? 'white',
    font: font
      ? { loadSystemFonts: false, fontFiles: [font], defaultFontFamily: FONT_FAMILY, sansSerifFamily: FONT_FAMILY }
      : { loadSystemFonts: true },
  });
  const image = resvg.render();
  const png = image.asPng();
  debug('plot', () => `SVG -> PNG ${image.width} x ${image.height} (${formatBytes(png.length)}) in ${elapsedSince(start)}`);
  return png;
}

/** Compiles, draws and rasterizes a Vega-Lite spec to PNG bytes. */
export async function renderPng(spec: VegaLiteSpec, options: RenderOptions = {}): Promise<Buffer> {
  return svgToPng(await vegaLiteToSvg(spec), options);
}

/** Renders a Vega-Lite spec and writes the PNG atomically (no partial file on failure). */
export async function writePng(file: string, spec: VegaLiteSpec, options: RenderOptions = {}): Promise<void> {
  await writeFileAtomic(file, await renderPng(spec, options));
}

/** Width and height of a PNG from its IHDR chunk; throws if the bytes are not a PNG. */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  const buf = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (buf.length < 24 || signature.some((b, i) => buf[i] !== b) || buf.toString('latin1', 12, 16) !== 'IHDR') {
    throw codedError('ENCODEC_FILE_FORMAT', 'not a PNG image (bad signature or no IHDR chunk)');
  }
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

/** Parses Vega's `rgb(r, g, b)` / `#rrggbb` colour strings. */
function parseColor(text: string): [number, number, number] {
  const rgb = /rgb\(\s*(\d+),\s*(\d+),\s*(\d+)/.exec(text);
  if (rgb) return [+rgb[1], +rgb[2], +rgb[3]];
  const hex = /^#([0-9a-f]{6})$/i.exec(text);
  if (hex) {
    const v = parseInt(hex[1], 16);
    return [v >> 16, (v >> 8) & 255, v & 255];
  }
  throw codedError('ENCODEC_INTERNAL', `unexpected colour '${text}' from the Vega colour scheme`);
}

/** A 256-entry lookup table of the Vega colour scheme, so raster colours match the colour bar exactly. */
function colorTable(scheme: string): Uint8Array {
  const interpolate = vegaLibs().vega.scheme(scheme) as unknown;
  if (typeof interpolate !== 'function') throw rangeError(`unknown continuous Vega colour scheme '${scheme}'`);
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) table.set(parseColor((interpolate as (t: number) => string)(i / 255)), i * 3);
  return table;
}

/** Averages a matrix down to at most `maxRows x maxCols` cells (NaN cells are skipped). */
export function downsampleMatrix(m: Matrix, maxRows = MAX_RASTER_ROWS, maxCols = MAX_RASTER_COLUMNS): Matrix {
  checkMatrix(m);
  const rows = Math.min(m.rows, maxRows);
  const cols = Math.min(m.cols, maxCols);
  if (rows === m.rows && cols === m.cols) return m;
  const sum = new Float64Array(rows * cols);
  const count = new Uint32Array(rows * cols);
  for (let r = 0; r < m.rows; r++) {
    const rr = Math.floor((r * rows) / m.rows);
    for (let c = 0; c < m.cols; c++) {
      const v = m.data[r * m.cols + c];
      if (Number.isNaN(v)) continue;
      const i = rr * cols + Math.floor((c * cols) / m.cols);
      sum[i] += v;
      count[i]++;
    }
  }
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = count[i] ? sum[i] / count[i] : NaN;
  return { data, rows, cols };
}

function checkMatrix(m: Matrix): void {
  if (!Number.isInteger(m.rows) || !Number.isInteger(m.cols) || m.rows < 1 || m.cols < 1) {
    throw rangeError(`matrix must have at least 1 row and 1 column, got ${m.rows} x ${m.cols}`);
  }
  if (m.data.length !== m.rows * m.cols) {
    throw rangeError(`matrix data has ${m.data.length} values but rows x cols = ${m.rows} x ${m.cols}`);
  }
}

/**
 * A heat-map raster as a `data:image/png` URL: the matrix downsampled to a bounded grid, values mapped
 * linearly from `domain` onto the colour scheme (clamped), row 0 at the bottom, NaN transparent.
 */
export function heatmapDataUrl(m: Matrix, domain: [number, number], options: { scheme?: string; sharp?: boolean } = {}): string {
  const small = downsampleMatrix(m);
  const table = colorTable(options.scheme ?? HEATMAP_SCHEME);
  const [lo, hi] = domain;
  const span = hi > lo ? hi - lo : 1;
  // Sharp cells: repeat each cell into a block of pixels (renderers smooth scaled images, and resvg ignores
  // `image-rendering`), up to about the size the raster is displayed at. Blocks compress to almost nothing.
  const kx = options.sharp ? Math.max(1, Math.floor(SHARP_TARGET_WIDTH / small.cols)) : 1;
  const ky = options.sharp ? Math.max(1, Math.floor(SHARP_TARGET_HEIGHT / small.rows)) : 1;
  const width = small.cols * kx;
  const png = new PNG({ width, height: small.rows * ky });
  for (let r = 0; r < small.rows; r++) {
    const y = small.rows - 1 - r; // row 0 at the bottom
    for (let c = 0; c < small.cols; c++) {
      const v = small.data[r * small.cols + c];
      if (Number.isNaN(v)) continue; // stays transparent
      const t = Math.round(Math.min(1, Math.max(0, (v - lo) / span)) * 255);
      for (let dy = 0; dy < ky; dy++) {
        for (let dx = 0; dx < kx; dx++) {
          const o = ((y * ky + dy) * width + c * kx + dx) * 4;
          png.data[o] = table[t * 3];
          png.data[o + 1] = table[t * 3 + 1];
          png.data[o + 2] = table[t * 3 + 2];
          png.data[o + 3] = 255;
        }
      }
    }
  }
  return `data:image/png;base64,${PNG.sync.write(png).toString('base64')}`;
}

/** Smallest and largest finite value of a set of arrays ([0, 1] when there is none). */
export function finiteRange(arrays: ArrayLike<number>[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return Number.isFinite(lo) && Number.isFinite(hi) ? [lo, hi] : [0, 1];
}

/** One heat-map panel of a stacked figure. */
export interface HeatmapPanel {
  /** Panel title (shown above it). */
  title: string;
  /** The values; rows run along the y axis (row 0 at the bottom), columns along x. */
  matrix: Matrix;
}

/** Axes and colour bar of a stacked heat-map figure. */
export interface HeatmapAxes {
  /** x value at the left edge of column 0, and at the right edge of the last column (e.g. [0, seconds]). */
  xDomain: [number, number];
  xTitle: string;
  /** y value at the bottom edge of row 0 and the top edge of the last row. */
  yDomain: [number, number];
  yTitle: string;
  /**
   * y scale: 'linear', or 'htk-mel' when rows are evenly spaced in HTK mel (mel = 2595 log10(1 + f / 700) is
   * Vega's symlog scale with constant 700, so axis ticks in Hz land where those frequencies are).
   */
  yScale?: 'linear' | 'htk-mel';
  /** Tick values on the y axis (default: Vega's choice). */
  yTicks?: number[];
  /**
   * Ticks with their own labels (overrides `yTicks`): e.g. rows evenly spaced in mel with ticks labelled in
   * Hz, `{ value: hzToMel(1000), label: '1k' }`.
   */
  yTickLabels?: { value: number; label: string }[];
  /** Colour bar title (e.g. 'dB'). */
  colorTitle: string;
  /** Value range of the colours (default: the range of all panels' values), shared by all panels. */
  colorDomain?: [number, number];
  /**
   * Figure title; several lines as an array. Without a canvas Vega estimates text at about 0.8 em per character,
   * so a long one-line title widens the picture beyond what it draws: split it.
   */
  title?: string | string[];
  /** Width of each panel in Vega-Lite units (default 800). */
  width?: number;
  /** Height of each panel (default 160). */
  height?: number;
  /** Discrete x axis (TR indices): integer tick labels. */
  xIntegers?: boolean;
  /** Tick values on the x axis (e.g. the TR boundaries), each labelled; default: Vega's choice. */
  xTicks?: number[];
  /** Discrete rows (codebooks, channels): a tick at each row centre labelled with the row index. */
  rowLabels?: boolean;
  /**
   * Smooth the raster when it is scaled up (default true: spectrograms). False draws each cell as a sharp
   * block, for small discrete grids such as TR x codebook.
   */
  smooth?: boolean;
}

/**
 * A Vega-Lite spec of heat maps stacked on one shared x axis with one shared colour bar: each panel is an
 * `image` mark showing a raster (see the module notes), and an invisible layer carries the colour scale so
 * Vega-Lite draws the colour bar with the same scheme and domain the rasters were coloured with.
 */
export function stackedHeatmapSpec(panels: HeatmapPanel[], axes: HeatmapAxes): VegaLiteSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    ...(axes.title ? { title: { text: axes.title, fontSize: 15, anchor: 'start' } } : {}),
    config: FIGURE_CONFIG,
    spacing: 18,
    vconcat: heatmapPanelSpecs(panels, axes),
    resolve: { scale: { color: 'shared', x: 'shared' } },
  } as VegaLiteSpec;
}

/**
 * Axis label expression: 250, 500, 1k, 2.5k, 10k. (Vega's '~s' format picks one SI prefix for all ticks,
 * which prints 0 and 500 as '0k' and '0.5k'.)
 */
export const COMPACT_LABEL = "abs(datum.value) >= 1000 ? format(datum.value / 1000, '~g') + 'k' : format(datum.value, '~g')";

/** A Vega expression that labels each of the given tick values with its own text. */
function tickLabelExpr(ticks: { value: number; label: string }[]): string {
  return ticks.reduceRight(
    (rest, t) => `abs(datum.value - ${t.value}) < ${1e-6 * Math.max(1, Math.abs(t.value))} ? ${JSON.stringify(t.label)} : ${rest}`,
    "''",
  );
}

/** Tick positions at the centres of `rows` equal rows spanning [y0, y1], thinned to at most 32 ticks. */
function rowCentres(y0: number, y1: number, rows: number): number[] {
  const step = Math.ceil(rows / 32);
  const ticks: number[] = [];
  for (let r = 0; r < rows; r += step) ticks.push(y0 + ((r + 0.5) * (y1 - y0)) / rows);
  return ticks;
}

/** Vega-Lite config shared by every figure: the font resvg is given, no frame around views. */
export const FIGURE_CONFIG = { font: FONT_FAMILY, view: { stroke: null } };

/** The panels of {@link stackedHeatmapSpec}, for composing with other views in a `vconcat`. */
export function heatmapPanelSpecs(panels: HeatmapPanel[], axes: HeatmapAxes): object[] {
  if (!Array.isArray(panels) || panels.length === 0) throw rangeError('a figure needs at least one panel');
  const colorDomain = axes.colorDomain ?? finiteRange(panels.map((p) => p.matrix.data));
  const width = axes.width ?? 800;
  const height = axes.height ?? 160;
  const [x0, x1] = axes.xDomain;
  const [y0, y1] = axes.yDomain;
  const yScale = axes.yScale === 'htk-mel' ? { type: 'symlog' as const, constant: 700 } : { type: 'linear' as const };
  const layers = panels.map((panel, i) => ({
    title: { text: panel.title, anchor: 'start' as const, fontSize: 13 },
    width,
    height,
    layer: [
      {
        data: { values: [{ x: x0, y: y1, url: heatmapDataUrl(panel.matrix, colorDomain, { sharp: axes.smooth === false }) }] },
        mark: {
          type: 'image' as const,
          width,
          height,
          aspect: false,
          align: 'left' as const,
          baseline: 'top' as const,
        },
        encoding: {
          x: {
            field: 'x',
            type: 'quantitative' as const,
            scale: { domain: [x0, x1], nice: false, zero: false },
            axis: {
              title: i === panels.length - 1 ? axes.xTitle : null,
              labels: i === panels.length - 1,
              ...(axes.xIntegers ? { tickMinStep: 1, format: 'd' } : {}),
              ...(axes.xTicks ? { values: axes.xTicks, labelExpr: "format(datum.value, '~g')" } : {}),
            },
          },
          y: {
            field: 'y',
            type: 'quantitative' as const,
            scale: { ...yScale, domain: [y0, y1], nice: false, zero: false },
            axis: axes.rowLabels
              ? { title: axes.yTitle, values: rowCentres(y0, y1, panel.matrix.rows), labelExpr: 'floor(datum.value)' }
              : axes.yTickLabels
                ? { title: axes.yTitle, values: axes.yTickLabels.map((t) => t.value), labelExpr: tickLabelExpr(axes.yTickLabels), labelOverlap: false }
                : { title: axes.yTitle, labelExpr: COMPACT_LABEL, ...(axes.yTicks ? { values: axes.yTicks } : {}) },
          },
          url: { field: 'url', type: 'nominal' as const },
        },
      },
      {
        data: { values: [{ v: colorDomain[0] }, { v: colorDomain[1] }] },
        mark: { type: 'point' as const, opacity: 0 },
        encoding: {
          color: {
            field: 'v',
            type: 'quantitative' as const,
            scale: { scheme: HEATMAP_SCHEME, domain: colorDomain },
            // A colour bar longer than one panel would stretch every panel's row to fit it.
            legend: { title: axes.colorTitle, gradientLength: Math.max(60, height - 20), orient: 'right' as const },
          },
        },
      },
    ],
  }));
  return layers;
}
