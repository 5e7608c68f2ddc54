/**
 * Frames files (model-rate features with a BIDS continuous-recording sidecar), read back by independent readers:
 * numpy.load, h5py, gzip + csv with float32 comparison, json (/usr/bin/python3).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import { expect } from 'chai';

import { float32Text, FrameSeries, FramesFormat, readFramesFile, writeFramesFile } from '../../lib/io/frames-file';
import { pythonJson } from '../helpers/python';
import { tempDir } from '../helpers/temp-dir';

/** A seeded generator (mulberry32): the same values every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function codesSeries(nFrames = 37, columns = 8): FrameSeries {
  const next = random(1);
  const data = Int16Array.from({ length: nFrames * columns }, () => Math.floor(next() * 1024));
  data[0] = 0;
  data[1] = 1023;
  return {
    kind: 'codes',
    data,
    nFrames,
    columns,
    samplingFrequency: 75,
    startTime: 0.5 / 75,
    columnNames: Array.from({ length: columns }, (_, c) => `codebook_${c}`),
    meta: { Model: 'encodec_24khz', ModelSHA256: 'ab'.repeat(32), Bandwidth: 6, Source: 'movie.wav' },
  };
}

function latentsSeries(nFrames = 29, columns = 16): FrameSeries {
  const next = random(2);
  // Wide dynamic range, so that the shortest float32 text needs anything from 1 to 9 digits.
  const data = Float32Array.from({ length: nFrames * columns }, () => (next() - 0.5) * 10 ** Math.floor(next() * 12 - 6));
  data.set([0, -0, 0.5, -3, 1e-7, 3.4028234663852886e38, -1.1754943508222875e-38, 1.401298464324817e-45, 16777216, 0.1]);
  return {
    kind: 'latents',
    data,
    nFrames,
    columns,
    samplingFrequency: 150,
    startTime: 0.5 / 150,
    columnNames: Array.from({ length: columns }, (_, c) => `latent_${c}`),
    meta: { Model: 'encodec_48khz', Nested: { a: [1, 2] }, Flag: true },
  };
}

/** Python: reads a frames file as the formats specify, returns values as float32 bit patterns / ints and the sidecar. */
const PY_READ = `
import gzip, csv, h5py, struct
f, fmt, sidecar = data['file'], data['format'], data['sidecar']
out = {'sidecar': json.load(open(sidecar))}
if fmt == 'npy':
    a = np.load(f)
elif fmt == 'h5':
    with h5py.File(f, 'r') as h:
        a = h['frames'][()]
        out['attrs'] = {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, 'item') else v) for k, v in h['frames'].attrs.items()}
        out['column_names'] = [c.decode() if isinstance(c, bytes) else c for c in h['column_names'][()]]
else:
    with gzip.open(f, 'rt', newline='') as g:
        rows = list(csv.reader(g, delimiter='\\t'))
    out['first_row'] = rows[0]
    dtype = np.int16 if out['sidecar']['FeatureKind'] == 'codes' else np.float32
    # float32 of the decimal text: numpy rounds the text to float64, then to float32, as readers do
    a = np.array([[float(x) if dtype == np.float32 else int(x) for x in r] for r in rows], dtype=np.float64).astype(dtype)
    out['loadtxt_equal'] = bool(np.array_equal(np.loadtxt(f, delimiter='\\t', dtype=np.float64, ndmin=2).astype(dtype), a))
out['dtype'] = a.dtype.str
out['shape'] = list(a.shape)
out['values'] = a.ravel().view(np.uint32).tolist() if a.dtype == np.float32 else a.ravel().astype(int).tolist()
print(json.dumps(out))
`;

interface PyRead {
  sidecar: Record<string, unknown>;
  attrs?: Record<string, unknown>;
  column_names?: string[];
  first_row?: string[];
  loadtxt_equal?: boolean;
  dtype: string;
  shape: number[];
  values: number[];
}

function bits(data: Float32Array): number[] {
  return Array.from(new Uint32Array(data.buffer, data.byteOffset, data.length));
}

describe('frames files', function () {
  this.timeout(60000);
  const dir = tempDir('frames');

  const cases: [string, () => FrameSeries][] = [
    ['codes', () => codesSeries()],
    ['latents', () => latentsSeries()],
  ];
  for (const [label, make] of cases) {
    for (const format of ['npy', 'h5', 'tsv'] as FramesFormat[]) {
      it(`writes ${label} as ${format}, read back exactly by Python and by readFramesFile`, async function () {
        const series = make();
        const base = path.join(dir, `${label}-${format}`);
        const written = await writeFramesFile(base, series, format);
        const expected =
          format === 'tsv' ? [`${base}_stim.tsv.gz`, `${base}_stim.json`] : [`${base}.${format}`, `${base}.json`];
        expect(written).to.deep.equal(expected);
        const py = pythonJson<PyRead>(PY_READ, { file: written[0], format, sidecar: written[1] });

        expect(py.shape).to.deep.equal([series.nFrames, series.columns]);
        expect(py.dtype).to.equal(series.kind === 'codes' ? '<i2' : '<f4');
        if (series.data instanceof Float32Array) expect(py.values).to.deep.equal(bits(series.data));
        else expect(py.values).to.deep.equal(Array.from(series.data));

        expect(py.sidecar.SamplingFrequency).to.equal(series.samplingFrequency);
        expect(py.sidecar.StartTime).to.equal(series.startTime);
        expect(py.sidecar.Columns).to.deep.equal(series.columnNames);
        expect(py.sidecar.FeatureKind).to.equal(series.kind);
        for (const [k, v] of Object.entries(series.meta ?? {})) expect(py.sidecar[k]).to.deep.equal(v);

        if (format === 'tsv') {
          // No header row: the first row holds the first frame's values.
          expect(py.first_row).to.have.length(series.columns);
          expect(py.first_row?.every((cell) => Number.isFinite(Number(cell)))).to.equal(true);
          expect(py.loadtxt_equal).to.equal(true);
          // Node's gzip header: no file name (FLG 0) and mtime 0, so equal series give equal bytes.
          const gz = fs.readFileSync(written[0]);
          expect([gz[3], gz.readUInt32LE(4)]).to.deep.equal([0, 0]);
        }
        if (format === 'h5') {
          expect(py.column_names).to.deep.equal(series.columnNames);
          expect(py.attrs?.kind).to.equal(series.kind);
          expect(py.attrs?.sampling_frequency).to.equal(series.samplingFrequency);
          expect(py.attrs?.start_time).to.equal(series.startTime);
          expect(py.attrs?.Model).to.equal(series.meta?.Model);
        }

        const back = await readFramesFile(written[0]);
        expect(back.kind).to.equal(series.kind);
        expect(back.data.constructor).to.equal(series.data.constructor);
        expect([back.nFrames, back.columns, back.samplingFrequency, back.startTime]).to.deep.equal([
          series.nFrames,
          series.columns,
          series.samplingFrequency,
          series.startTime,
        ]);
        expect(back.columnNames).to.deep.equal(series.columnNames);
        expect(back.meta).to.deep.equal(series.meta);
        if (series.data instanceof Float32Array) expect(bits(back.data as Float32Array)).to.deep.equal(bits(series.data));
        else expect(Array.from(back.data)).to.deep.equal(Array.from(series.data));
      });
    }
  }

  it('writes the shortest decimal that reads back as the same float32', function () {
    expect(float32Text(Math.fround(0.1))).to.equal('0.1'); // float32(0.1) = 0.100000001490116...
    expect(float32Text(Math.fround(1 / 3))).to.equal('0.33333334');
    expect(float32Text(-0)).to.equal('-0');
    expect(float32Text(16777216)).to.equal('16777216');
    expect(float32Text(1.401298464324817e-45)).to.equal('1e-45');
    expect(float32Text(Math.fround(1e20))).to.equal('100000000000000000000');
    const next = random(3);
    const values = Float32Array.from({ length: 2000 }, () => (next() - 0.5) * 10 ** Math.floor(next() * 80 - 44)); // finite: |v| < 5e35, denormals included
    expect(values.every(Number.isFinite)).to.equal(true);
    const texts = Array.from(values, float32Text);
    for (let i = 0; i < values.length; i++) expect(Math.fround(Number(texts[i])), texts[i]).to.equal(values[i]);
    // numpy agrees, and no shorter text would do: numpy's own shortest float32 repr has the same digits.
    const py = pythonJson<{ same: boolean[]; shortest: number[] }>(
      `v = np.array(data['bits'], dtype=np.uint32).view(np.float32)
t = np.array([float(x) for x in data['texts']]).astype(np.float32)
digits = lambda s: len(s.lower().split('e')[0].replace('-', '').replace('.', '').lstrip('0').rstrip('0') or '0')
print(json.dumps({'same': (t.view(np.uint32) == v.view(np.uint32)).tolist(),
  'shortest': [digits(np.format_float_positional(x, unique=True, trim='-') if 1e-5 < abs(x) < 1e16 else np.format_float_scientific(x, unique=True, trim='-')) - digits(s) for x, s in zip(v, data['texts'])]}))`,
      { bits: bits(values), texts },
    );
    expect(py.same.every(Boolean)).to.equal(true);
    expect(Math.min(...py.shortest)).to.be.at.least(0);
  });

  it('streams a long tsv in bounded chunks (many gzip writes, same bytes on a rerun)', async function () {
    const series = latentsSeries(20000, 16); // 320 000 values: several 64 Ki-value chunks
    const a = await writeFramesFile(path.join(dir, 'long-a'), series, 'tsv');
    const b = await writeFramesFile(path.join(dir, 'long-b'), series, 'tsv');
    expect(fs.readFileSync(a[0]).equals(fs.readFileSync(b[0]))).to.equal(true);
    const text = zlib.gunzipSync(fs.readFileSync(a[0])).toString();
    expect(text.split('\n')).to.have.length(20001); // 20000 rows and the final newline
    const back = await readFramesFile(a[0]);
    expect(bits(back.data as Float32Array)).to.deep.equal(bits(series.data as Float32Array));
  });

  describe('atomic writes', function () {
    const adir = tempDir('frames-atomic');

    function listing(d: string): string[] {
      return fs.readdirSync(d).sort();
    }

    it('leaves nothing when a value deep in a tsv stream is not finite (after chunks were written)', async function () {
      const sub = fs.mkdtempSync(path.join(adir, 'nan-'));
      const series = latentsSeries(20000, 16);
      (series.data as Float32Array)[series.data.length - 3] = NaN;
      const err = await writeFramesFile(path.join(sub, 'x'), series, 'tsv').catch((e: unknown) => e as Error & { code?: string });
      expect(err).to.be.instanceOf(Error);
      expect((err as { code?: string }).code).to.equal('ENCODEC_BAD_INPUT');
      expect((err as Error).message).to.match(/frame 19999, column latent_13 holds NaN/);
      expect(listing(sub)).to.deep.equal([]);
    });

    for (const format of ['npy', 'h5'] as FramesFormat[]) {
      it(`refuses a non-finite value in ${format} before writing anything`, async function () {
        const sub = fs.mkdtempSync(path.join(adir, `inf-${format}-`));
        const series = latentsSeries();
        (series.data as Float32Array)[5] = -Infinity;
        const err = await writeFramesFile(path.join(sub, 'x'), series, format).catch((e: unknown) => e as Error);
        expect((err as { code?: string }).code).to.equal('ENCODEC_BAD_INPUT');
        expect(listing(sub)).to.deep.equal([]);
      });
    }

    for (const format of ['npy', 'h5', 'tsv'] as FramesFormat[]) {
      it(`keeps an existing ${format} pair whole when a rewrite fails, and leaves no temporary file`, async function () {
        const sub = fs.mkdtempSync(path.join(adir, `keep-${format}-`));
        const base = path.join(sub, 'x');
        const paths = await writeFramesFile(base, codesSeries(), format);
        const before = paths.map((p) => fs.readFileSync(p));
        // The sidecar's name is taken by a directory: refused before anything is renamed.
        fs.rmSync(paths[1]);
        fs.mkdirSync(paths[1]);
        const err = await writeFramesFile(base, codesSeries(50), format).catch((e: unknown) => e as Error);
        expect((err as { code?: string }).code).to.equal('ENCODEC_BAD_INPUT');
        expect(fs.readFileSync(paths[0]).equals(before[0])).to.equal(true);
        expect(listing(sub)).to.deep.equal([...paths.map((p) => path.basename(p))].sort());
      });
    }

    it('leaves nothing in a directory it cannot write to', async function () {
      if (process.getuid?.() === 0) {
        // root writes to read-only directories, so the write fails in another way: a missing directory
        const err = await writeFramesFile(path.join(adir, 'missing', 'x'), codesSeries(), 'tsv').catch((e: unknown) => e as Error);
        expect((err as { code?: string }).code).to.equal('ENOENT');
        expect(fs.existsSync(path.join(adir, 'missing'))).to.equal(false);
        return;
      }
      const sub = fs.mkdtempSync(path.join(adir, 'ro-'));
      fs.chmodSync(sub, 0o555);
      try {
        for (const format of ['npy', 'h5', 'tsv'] as FramesFormat[]) {
          const err = await writeFramesFile(path.join(sub, 'x'), codesSeries(), format).catch((e: unknown) => e as Error);
          expect(err).to.be.instanceOf(Error);
          expect(listing(sub)).to.deep.equal([]);
        }
      } finally {
        fs.chmodSync(sub, 0o755);
      }
    });
  });

  describe('bad input', function () {
    const bdir = tempDir('frames-bad');
    const bad: [string, (s: FrameSeries) => void, RegExp][] = [
      ['codes in a Float32Array', (s) => (s.data = new Float32Array(s.data.length)), /Int16Array/],
      ['too few values', (s) => (s.data = s.data.slice(1)), /holds 295 values, not 37 frames x 8 columns/],
      ['a column name missing', (s) => s.columnNames.pop(), /7 names for 8 columns/],
      ['a tab in a column name', (s) => (s.columnNames[0] = 'a\tb'), /without tabs/],
      ['a zero sampling frequency', (s) => (s.samplingFrequency = 0), /samplingFrequency/],
      ['a meta field that shadows a core field', (s) => (s.meta = { StartTime: 1 }), /meta field StartTime/],
    ];
    for (const [what, spoil, message] of bad) {
      it(`refuses ${what}`, async function () {
        const series = codesSeries();
        spoil(series);
        const err = await writeFramesFile(path.join(bdir, 'x'), series, 'npy').catch((e: unknown) => e as Error);
        expect((err as { code?: string }).code).to.equal('ENCODEC_BAD_INPUT');
        expect((err as Error).message).to.match(message);
        expect(fs.readdirSync(bdir)).to.deep.equal([]);
      });
    }

    it('reports a frames file whose sidecar is missing or disagrees', async function () {
      const [npy, json] = await writeFramesFile(path.join(bdir, 'ok'), codesSeries(), 'npy');
      const sidecar = JSON.parse(fs.readFileSync(json, 'utf8')) as Record<string, unknown>;
      fs.writeFileSync(json, JSON.stringify({ ...sidecar, Columns: ['a', 'b'] }));
      const err = await readFramesFile(npy).catch((e: unknown) => e as Error);
      expect((err as { code?: string }).code).to.equal('ENCODEC_FILE_FORMAT');
      expect((err as Error).message).to.match(/does not match the sidecar's 2 Columns/);
      fs.rmSync(json);
      const missing = await readFramesFile(npy).catch((e: unknown) => e as Error);
      expect((missing as Error).message).to.match(/sidecar of this frames file is missing/);
      fs.rmSync(npy);
    });
  });
});
