/**
 * lib/common/binary-json.ts: a value written and read back is the same value bit for bit, which JSON alone is not
 * (NaN, -0, undefined properties, typed arrays); damaged files are refused with ENCODEC_FILE_FORMAT.
 */
import { expect } from 'chai';

import { decodeBinaryJson, encodeBinaryJson } from '../../lib/common/binary-json';

function roundTrip(value: unknown): unknown {
  return decodeBinaryJson(Buffer.concat(encodeBinaryJson(value)), 'test');
}

describe('binary JSON (lib/common/binary-json.ts)', function () {
  it('gives back typed arrays, NaN, infinities, -0 and undefined properties exactly', function () {
    const features = Float32Array.from([1.5, -0, NaN, Infinity, 3.4028234663852886e38, 1e-45]);
    const value = {
      features: features.subarray(1), // a view with an offset: only its own bytes are kept
      codes: Int16Array.from([-32768, 0, 32767]),
      onsets: BigInt64Array.from([0n, 7n]),
      shape: [5],
      rows: [{ t: 0.1 + 0.2, gap: NaN, missing: undefined, neg: -0, name: 'a\u00e9' }, { t: -Infinity, gap: null }],
      nested: { deep: [[true, false, null]] },
    };
    const back = roundTrip(value) as typeof value;
    expect(back.features).to.be.instanceOf(Float32Array);
    expect(Buffer.from(back.features.buffer).equals(Buffer.from(features.buffer, 4))).to.equal(true);
    expect(Array.from(back.codes)).to.deep.equal([-32768, 0, 32767]);
    expect(Array.from(back.onsets)).to.deep.equal([0n, 7n]);
    expect(back.rows[0].t).to.equal(0.30000000000000004);
    expect(back.rows[0].gap).to.be.NaN;
    expect(Object.keys(back.rows[0])).to.deep.equal(['t', 'gap', 'missing', 'neg', 'name']);
    expect(back.rows[0].missing).to.equal(undefined);
    expect(Object.is(back.rows[0].neg, -0)).to.equal(true);
    expect(back.rows[0].name).to.equal('a\u00e9');
    expect(back.rows[1]).to.deep.equal({ t: -Infinity, gap: null });
    expect(back.nested).to.deep.equal({ deep: [[true, false, null]] });
  });

  it('refuses what it did not write, truncated files and values it cannot store', function () {
    const bytes = Buffer.concat(encodeBinaryJson({ x: Float64Array.from([1, 2]) }));
    expect(() => decodeBinaryJson(Buffer.from('{"x": 1}'), 'plain.json')).to.throw(/plain.json is not a file this tool wrote/).with.property('code', 'ENCODEC_FILE_FORMAT');
    expect(() => decodeBinaryJson(bytes.subarray(0, bytes.length - 1), 'cut')).to.throw(/cut is truncated or damaged/);
    expect(() => decodeBinaryJson(Buffer.concat([bytes, Buffer.from([0])]), 'long')).to.throw(/long has 1 bytes more/);
    expect(() => encodeBinaryJson({ when: new Date(0) })).to.throw(/cannot store a Date/).with.property('code', 'ENCODEC_INTERNAL');
    expect(() => encodeBinaryJson({ tag: { $number: 'NaN' } })).to.throw(/only key starts with '\$'/);
  });
});
