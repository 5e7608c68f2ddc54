/** TR alignment (lib/alignment.ts): exact frame arithmetic, no drift. */
import { expect } from 'chai';

import { framesPerTr, samplesForTrs, trCount, trCountForSamples, trStartFrame } from '../../lib/fmri/alignment';

describe('TR alignment', function () {
  it('has floor(tr * 75) frames per TR', function () {
    expect(framesPerTr(1.5)).to.equal(112);
    expect(framesPerTr(1.0)).to.equal(75);
    expect(framesPerTr(2.0)).to.equal(150);
    expect(framesPerTr(0.72)).to.equal(54);
  });

  it('starts TR k at exactly floor(k * tr * 75), with no drift', function () {
    expect(trStartFrame(0, 1.5)).to.equal(0);
    expect(trStartFrame(1, 1.5)).to.equal(112);
    expect(trStartFrame(2, 1.5)).to.equal(225);
    expect(trStartFrame(3, 1.5)).to.equal(337);
    expect(trStartFrame(900, 1.5)).to.equal(101250); // 1350 s * 75
    // Cases where floating-point k * tr * 75 falls just below the exact integer (e.g. 6 * 0.7 * 75 = 314.99...).
    expect(Math.floor(6 * 0.7 * 75)).to.equal(314);
    expect(trStartFrame(6, 0.7)).to.equal(315);
    expect(trStartFrame(18, 0.3)).to.equal(405);
    expect(trStartFrame(9, 0.72)).to.equal(486);
    expect(trStartFrame(14, 2.3)).to.equal(2415);
    // A long scan: each start is the exact value for a decimal TR of 2 decimals (integer arithmetic here).
    for (let k = 0; k < 5000; k += 7) expect(trStartFrame(k, 0.72)).to.equal(Math.floor((k * 72 * 75) / 100));
  });

  it('counts whole TRs exactly', function () {
    expect(trCount(7.4, 1.5)).to.equal(4);
    expect(trCount(7.4, 1.0)).to.equal(7);
    expect(trCount(7.4, 2.0)).to.equal(3);
    expect(trCount(4.5, 1.5)).to.equal(3);
    expect(Math.floor(0.3 / 0.1)).to.equal(2); // the float division is wrong here
    expect(trCount(0.3, 0.1)).to.equal(3);
    expect(trCount(1.0, 1.5)).to.equal(0);
    expect(trCountForSamples(36000 * 3, 1.5)).to.equal(3);
    expect(trCountForSamples(36000 * 3 - 1, 1.5)).to.equal(2);
    expect(samplesForTrs(3, 1.5)).to.equal(108000);
    expect(samplesForTrs(3, 1.5, 22050)).to.equal(99225);
  });

  it('rejects TRs that are not positive or shorter than one frame', function () {
    for (const bad of [0, -1.5, NaN, Infinity]) expect(() => framesPerTr(bad)).to.throw(RangeError, /tr must be a positive number/);
    expect(() => framesPerTr(0.01)).to.throw(RangeError, /shorter than one code frame/);
    expect(() => trStartFrame(-1, 1.5)).to.throw(RangeError, /non-negative integer/);
    expect(() => trCount(-1, 1.5)).to.throw(RangeError, /duration/);
  });
});
