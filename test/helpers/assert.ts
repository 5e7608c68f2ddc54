/** Assertions shared by the tests. */
import { expect } from 'chai';

import type { Codes } from '../../lib/codec/codes';
import { codeAgreement } from '../../lib/quality/metrics';

/** Awaits `promise`, expecting a rejection of class `type` whose message matches `pattern`; returns the error. */
export async function rejects(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => Error,
  pattern: RegExp,
): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(type);
    expect((err as Error).message).to.match(pattern);
    return err as Error;
  }
  throw new Error(`expected a rejection matching ${pattern}`);
}

/**
 * Expects `actual` to be the codes of `expected`'s computation up to float rounding, as pooled calls relate to a
 * clip coded alone: >= 99.9 % of the codes identical, or else at most 1 % of the frames (at least one) differing,
 * each from its second codebook on. (A near-tie at codebook 2 of a 16-codebook frame changes 14 codes: on a
 * 2.5 s clip of 377 frames, that alone is 0.23 %, and which sums round which way depends on the CPU's kernels.) Another batch composition rounds the same sums in
 * another order (kernels are chosen by shape and CPU); where that moves a latent across a near-tie of one
 * codebook, the codebooks after it quantise another residual, so the rest of that frame may differ too. A wrong
 * computation (another clip's audio, padding or offsets) changes the latents of a clip's first frames, and with
 * them its first codebook.
 */
export function expectCodesWithinRounding(actual: Codes, expected: Codes, label: string): void {
  expect([actual.nQ, actual.nFrames], `${label}: shape [nQ, nFrames]`).to.deep.equal([expected.nQ, expected.nFrames]);
  const { nQ, nFrames } = expected;
  const differing: string[] = [];
  let firstCodebook = 0;
  for (let f = 0; f < nFrames; f++) {
    for (let q = 0; q < nQ; q++) {
      if (actual.data[q * nFrames + f] !== expected.data[q * nFrames + f]) {
        differing.push(`frame ${f} from codebook ${q}`);
        if (q === 0) firstCodebook++;
        break;
      }
    }
  }
  const agreement = codeAgreement(actual, expected);
  const rounding = agreement >= 0.999 || (firstCodebook === 0 && differing.length <= Math.max(1, Math.floor(nFrames / 100)));
  expect(rounding, `${label}: ${(100 * agreement).toFixed(2)} % of ${nQ * nFrames} codes identical; ${differing.length} ` +
    `of ${nFrames} frames differ (${differing.slice(0, 5).join(', ')}${differing.length > 5 ? ', ...' : ''})`).to.equal(true);
}
