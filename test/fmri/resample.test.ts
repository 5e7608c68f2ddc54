/**
 * Resampling continuous frame series at the volumes (lib/fmri/resample.ts) and the design-matrix steps
 * (lib/fmri/design.ts) against independent numpy implementations: the Huth lab's lanczosinterp2D formula, the mean of
 * the frames whose centres fall in each window, np.convolve for the frame-rate HRF, scipy-style z-score (ddof 0) and
 * the voxelwise tutorials' Delayer.
 */
import { expect } from 'chai';

import { FrameConvolver, VolumeResampler, lanczos } from '../../lib/fmri/resample';
import { checkDelays, delayColumns, zscoreColumns } from '../../lib/fmri/design';
import { hrfKernel } from '../../lib/fmri/hrf';
import { maxRelativeError, pythonJson } from '../helpers/python';

/** Deterministic pseudo-random numbers in [-1, 1). */
function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Feeds a [rows, nFrames] series to `add` in uneven blocks (as spans stream in). */
function feed(x: Float32Array, rows: number, nFrames: number, add: (block: Float32Array, first: number, n: number) => void): void {
  const sizes = [37, 500, 1, 263, 1000];
  for (let first = 0, i = 0; first < nFrames; i++) {
    const n = Math.min(sizes[i % sizes.length], nFrames - first);
    const block = new Float32Array(rows * n);
    for (let r = 0; r < rows; r++) block.set(x.subarray(r * nFrames + first, r * nFrames + first + n), r * n);
    add(block, first, n);
    first += n;
  }
}

const LANCZOS_PY = `
def lanczosfun(cutoff, t, window=3):
    t = t * cutoff
    val = window * np.sin(np.pi * t) * np.sin(np.pi * t / window) / (np.pi ** 2 * t ** 2)
    val[t == 0] = 1.0
    val[np.abs(t) > window] = 0.0
    return val
def lanczosinterp2D(data, oldtime, newtime, window=3, cutoff_mult=1.0):
    cutoff = 1 / np.mean(np.diff(newtime)) * cutoff_mult
    sincmat = np.zeros((len(newtime), len(oldtime)))
    for ndi in range(len(newtime)):
        sincmat[ndi, :] = lanczosfun(cutoff, newtime[ndi] - oldtime, window)
    return np.dot(sincmat, data)
`;

describe('resampling at the volumes', function () {
  const rows = 5;
  const nFrames = 2000; // 26.7 s at 75 Hz
  const tr = 1.5;
  const x = noise(rows * nFrames, 7);
  const clock = { rate: 75, offset: 0.5 };

  for (const sliceTimeRef of [0, 0.5]) {
    it(`lanczos equals lanczosinterp2D at t_k = (k + ${sliceTimeRef}) * tr, block by block`, function () {
      const nTrs = 17;
      const r = new VolumeResampler('lanczos', rows, tr, clock, sliceTimeRef);
      feed(x, rows, nFrames, (b, first, n) => r.add(b, first, n));
      const got = r.result(nTrs);
      const want = pythonJson<number[][]>(
        `${LANCZOS_PY}
x = np.array(data['x'], dtype=np.float64).reshape(${rows}, ${nFrames}).T
old = (np.arange(${nFrames}) + 0.5) * 320 / 24000
new = (np.arange(${nTrs}) + ${sliceTimeRef}) * ${tr}
print(json.dumps(lanczosinterp2D(x, old, new).tolist()))`,
        { x: Array.from(x) },
      );
      expect(got.length).to.equal(nTrs * rows);
      expect(maxRelativeError(got, want.flat(), 1e-3)).to.be.below(1e-5);
    });
  }

  it('mean takes the frames whose centres fall in [k tr, (k + 1) tr)', function () {
    const nTrs = 17;
    const r = new VolumeResampler('mean', rows, tr, clock, 0.5); // the window does not move with sliceTimeRef
    feed(x, rows, nFrames, (b, first, n) => r.add(b, first, n));
    const got = r.result(nTrs + 2); // volumes past the series hold no frame: 0
    const want = pythonJson<number[][]>(
      `x = np.array(data['x'], dtype=np.float64).reshape(${rows}, ${nFrames})
centres = (np.arange(${nFrames}) + 0.5) / 75
k = np.floor(centres / ${tr})
out = [x[:, k == v].mean(axis=1).tolist() if np.any(k == v) else [0.0] * ${rows} for v in range(${nTrs + 2})]
print(json.dumps(out))`,
      { x: Array.from(x) },
    );
    expect(maxRelativeError(got, want.flat(), 1e-3)).to.be.below(1e-5);
    expect(Array.from(got.subarray(nTrs * rows + rows))).to.deep.equal(new Array(rows).fill(0));
  });

  it('stops growing at maxTrs and keeps the first nTrs volumes', function () {
    const r = new VolumeResampler('lanczos', rows, tr, clock, 0, 4);
    feed(x, rows, nFrames, (b, first, n) => r.add(b, first, n));
    const full = new VolumeResampler('lanczos', rows, tr, clock, 0);
    feed(x, rows, nFrames, (b, first, n) => full.add(b, first, n));
    expect(Array.from(r.result(4))).to.deep.equal(Array.from(full.result(4)));
  });

  it('has the Lanczos kernel of the formula (1 at 0, 0 beyond a lobes)', function () {
    expect(lanczos(0, 1 / tr)).to.equal(1);
    expect(lanczos(3 * tr + 1e-9, 1 / tr)).to.equal(0);
    expect(lanczos(tr, 1 / tr)).to.be.closeTo(0, 1e-15); // sin(pi) = 0 at whole TRs
    const d = 0.4;
    const t = d / tr;
    expect(lanczos(d, 1 / tr)).to.be.closeTo((3 * Math.sin(Math.PI * t) * Math.sin((Math.PI * t) / 3)) / (Math.PI * t) ** 2, 1e-15);
  });

  it('convolves with the HRF at the frame rate as np.convolve, then resamples (nilearn compute_regressor)', function () {
    const nTrs = 17;
    const kernel = hrfKernel('glover', 1 / 75);
    expect(kernel.length).to.equal(2400); // nilearn: rint(32 / dt) samples at dt = 1/75 s
    const conv = new FrameConvolver(rows, kernel);
    const r = new VolumeResampler('lanczos', rows, tr, clock, 0);
    const convolved = new Float64Array(rows * nFrames);
    feed(x, rows, nFrames, (b, first, n) => {
      const y = conv.push(b, n);
      for (let row = 0; row < rows; row++) convolved.set(y.subarray(row * n, (row + 1) * n), row * nFrames + first);
      r.add(y, first, n);
    });
    const want = pythonJson<{ y: number[][]; v: number[][] }>(
      `${LANCZOS_PY}
from scipy.stats import gamma
dt = 1 / 75
n = int(np.rint(32 / dt))
t = np.linspace(0, 32, n)
h = gamma.pdf(t, 6 / 0.9, dt, 0.9) - 0.48 * gamma.pdf(t, 12 / 0.9, dt, 0.9)
h /= h.sum()
x = np.array(data['x'], dtype=np.float64).reshape(${rows}, ${nFrames})
y = np.array([np.convolve(row, h)[:${nFrames}] for row in x])
old = (np.arange(${nFrames}) + 0.5) * 320 / 24000
new = np.arange(${nTrs}) * ${tr}
print(json.dumps({'y': y.tolist(), 'v': lanczosinterp2D(y.T, old, new).tolist()}))`,
      { x: Array.from(x) },
    );
    expect(maxRelativeError(convolved, want.y.flat(), 1e-3)).to.be.below(1e-5);
    expect(maxRelativeError(r.result(nTrs), want.v.flat(), 1e-3)).to.be.below(1e-5);
  });
});

describe('design matrix: z-score and delays', function () {
  const nRows = 40;
  const nCols = 6;
  const x = noise(nRows * nCols, 3);
  for (let k = 0; k < nRows; k++) x[k * nCols + 2] = 0.25; // a constant column
  for (let k = 0; k < nRows; k++) x[k * nCols + 4] = 100 + 3 * x[k * nCols + 4]; // offset and scale

  it('z-scores each column (population std; a constant column becomes 0) as numpy does', function () {
    const got = zscoreColumns(x, nRows, nCols);
    const want = pythonJson<number[][]>(
      `x = np.array(data['x'], dtype=np.float64).reshape(${nRows}, ${nCols})
sd = x.std(axis=0)
z = np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1), 0.0)
print(json.dumps(z.tolist()))`,
      { x: Array.from(x) },
    );
    expect(maxRelativeError(got, want.flat(), 1e-3)).to.be.below(1e-5);
    for (let k = 0; k < nRows; k++) expect(got[k * nCols + 2]).to.equal(0);
  });

  it('delays as the Delayer: block d holds volume k - delay_d, zeros outside the run, in the order given', function () {
    const delays = [2, 0, 1, -1];
    const got = delayColumns(x, nRows, nCols, delays);
    const want = pythonJson<number[][]>(
      `x = np.array(data['x'], dtype=np.float32).reshape(${nRows}, ${nCols})
out = []
for d in ${JSON.stringify(delays)}:
    xd = np.zeros_like(x)
    if d > 0: xd[d:] = x[:-d]
    elif d < 0: xd[:d] = x[-d:]
    else: xd = x.copy()
    out.append(xd)
print(json.dumps(np.concatenate(out, axis=1).tolist()))`,
      { x: Array.from(x) },
    );
    expect(Array.from(got)).to.deep.equal(want.flat());
    const codes = delayColumns(Int16Array.from([1, 2, 3, 4]), 2, 2, [1]);
    expect(codes).to.be.instanceOf(Int16Array);
    expect(Array.from(codes)).to.deep.equal([0, 0, 1, 2]);
  });

  it('rejects bad delays naming the problem', function () {
    expect(() => checkDelays([])).to.throw(RangeError, /non-empty/);
    expect(() => checkDelays([1, 1.5])).to.throw(RangeError, /whole numbers/);
    expect(() => checkDelays([1, 2, 1])).to.throw(RangeError, /listed twice/);
    expect(checkDelays([0, 3])).to.deep.equal([0, 3]);
  });
});
