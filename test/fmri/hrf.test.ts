/** HRF kernels (nilearn's definitions) and causal convolution along TRs (lib/hrf.ts). */
import { expect } from 'chai';

import { convolveHrf, hrfKernel, logGamma } from '../../lib/fmri/hrf';

/*
 * Reference values computed independently with Python's standard library (math.gamma, no scipy), following
 * nilearn's _gamma_difference_hrf literally:
 *   def pdf(x, a, loc, scale): y = (x - loc) / scale; return 0 if y <= 0 else y**(a-1) * exp(-y) / (gamma(a) * scale)
 *   n = round(32 / tr); t = [32 * i / (n - 1) for i in range(n)]
 *   h = [pdf(x, 6/0.9, tr, 0.9) - 0.48 * pdf(x, 12/0.9, tr, 0.9) for x in t]; h = [v / sum(h) for v in h]
 */
const GLOVER_TR_1_5 = [
  0.0, 3.07866860869e-8, 0.0488452921943, 0.353750650465, 0.554638179805, 0.429435444861, 0.170579939848,
  -0.0362824115872, -0.132611157421, -0.141269582017, -0.10821441786, -0.0683969705178, -0.0376687186523,
  -0.0186281256069, -0.00843571353859, -0.00354772200106, -0.00140051531811, -0.000523337462598,
  -0.000186367555561, -6.36014490347e-5, -2.08969716062e-5,
];
const GLOVER_TR_2 = [
  0.0, 2.01751055789e-7, 0.176964691376, 0.704668291507, 0.565567673524, 0.114403962313, -0.151757607418,
  -0.187636497441, -0.124808580054, -0.0612355617671, -0.024429732626, -0.00833403439849, -0.00251015464864,
  -0.000682646153815, -0.000170436989718, -3.95689737721e-5,
];

function factorial(n: number): number {
  let f = 1;
  for (let i = 2; i <= n; i++) f *= i;
  return f;
}

/** SPM's kernel in closed form: both gamma shapes are integers (6 and 16) with scale 1, so Gamma(a) = (a-1)!. */
function spmClosedForm(tr: number): number[] {
  const n = Math.round(32 / tr);
  const h: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = (32 * i) / (n - 1) - tr;
    h.push(y <= 0 ? 0 : (y ** 5 * Math.exp(-y)) / factorial(5) - (0.167 * y ** 15 * Math.exp(-y)) / factorial(15));
  }
  const sum = h.reduce((a, b) => a + b, 0);
  return h.map((v) => v / sum);
}

function close(actual: ArrayLike<number>, expected: number[], tol: number): void {
  expect(actual.length).to.equal(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i], `index ${i}`).to.be.closeTo(expected[i], tol);
}

describe('HRF', function () {
  it('log-gamma is accurate', function () {
    expect(logGamma(0.5)).to.be.closeTo(Math.log(Math.sqrt(Math.PI)), 1e-14);
    expect(logGamma(10)).to.be.closeTo(Math.log(362880), 1e-12);
    expect(logGamma(16)).to.be.closeTo(Math.log(factorial(15)), 1e-11);
    expect(logGamma(6 / 0.9)).to.be.closeTo(5.96366912428259, 1e-12); // Python: math.lgamma(6 / 0.9)
  });

  it("matches nilearn's Glover kernel", function () {
    close(hrfKernel('glover', 1.5), GLOVER_TR_1_5, 1e-10);
    close(hrfKernel('glover', 2), GLOVER_TR_2, 1e-10);
  });

  it("matches nilearn's SPM kernel (closed form)", function () {
    close(hrfKernel('spm', 2), spmClosedForm(2), 1e-12);
    close(hrfKernel('spm', 1.5), spmClosedForm(1.5), 1e-12);
    const k = hrfKernel('spm', 1.5);
    expect(k.reduce((a, b) => a + b, 0)).to.be.closeTo(1, 1e-12);
    expect(k.indexOf(Math.max(...k))).to.equal(4); // peak at t = 6.4 s (samples 1.6 s apart)
  });

  it('supports timeLength and oversampling', function () {
    expect(hrfKernel('glover', 2, { oversampling: 2 }).length).to.equal(32);
    expect(hrfKernel('glover', 2, { timeLength: 20 }).length).to.equal(10);
    expect(() => hrfKernel('glover', 2, { oversampling: 0 })).to.throw(RangeError, /oversampling/);
  });

  it('convolves causally along TRs, keeping the length', function () {
    const nTrs = 30;
    const size = 3;
    const impulse = new Float64Array(nTrs * size);
    impulse[5 * size + 1] = 2; // TR 5, feature 1
    const kernel = hrfKernel('glover', 1.5);
    const out = convolveHrf(impulse, nTrs, kernel);
    expect(out.length).to.equal(nTrs * size);
    for (let k = 0; k < nTrs; k++) {
      expect(out[k * size]).to.equal(0);
      expect(out[k * size + 2]).to.equal(0);
      const expected = k < 5 ? 0 : 2 * (kernel[k - 5] ?? 0);
      expect(out[k * size + 1], `TR ${k}`).to.be.closeTo(expected, 1e-15);
    }
    // The response lags the stimulus: its peak comes 4 TRs (6 s) after it.
    const column = Array.from({ length: nTrs }, (_, k) => out[k * size + 1]);
    expect(column.indexOf(Math.max(...column))).to.equal(9);
    // Changing a later TR never changes earlier outputs.
    const later = Float64Array.from(impulse);
    later[20 * size + 1] = 5;
    const out2 = convolveHrf(later, nTrs, kernel);
    for (let i = 0; i < 20 * size; i++) expect(out2[i]).to.equal(out[i]);
  });

  it('rejects unknown models and bad shapes', function () {
    expect(() => hrfKernel('canonical' as never, 1.5)).to.throw(RangeError, /unknown HRF model 'canonical'; use one of glover, spm/);
    expect(() => hrfKernel('spm', 0)).to.throw(RangeError, /tr must be a positive/);
    expect(() => convolveHrf(new Float64Array(7), 2, [1])).to.throw(RangeError, /not a multiple of nTrs/);
  });
});
