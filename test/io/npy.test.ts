/** .npy reading and writing, checked against NumPy itself (/usr/bin/python3 with numpy). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { expect } from 'chai';

import { decodeNpy, encodeNpy, NpyData, readNpy, toInt32Array, toNumberArray, writeNpy } from '../../lib/io/npy';
import { run } from '../helpers/media';
import { tempDir } from '../helpers/temp-dir';

const PYTHON = '/usr/bin/python3';

async function python(code: string): Promise<string> {
  return (await run(PYTHON, ['-c', code])).toString();
}

/** One array per dtype, with its extreme values. */
const SAMPLES: Array<{ dtype: string; data: NpyData; shape: number[] }> = [
  { dtype: '|i1', data: Int8Array.from([-128, -1, 0, 1, 127, 5]), shape: [2, 3] },
  { dtype: '|u1', data: Uint8Array.from([0, 1, 128, 255]), shape: [4] },
  { dtype: '<i2', data: Int16Array.from([-32768, -2, 0, 3, 32767, 1023]), shape: [3, 2] },
  { dtype: '<u2', data: Uint16Array.from([0, 65535, 1, 40000]), shape: [2, 2] },
  { dtype: '<i4', data: Int32Array.from([-2147483648, 2147483647, 0, -7, 8, 9, 10, 11]), shape: [2, 2, 2] },
  { dtype: '<u4', data: Uint32Array.from([0, 4294967295, 12345678]), shape: [3, 1] },
  { dtype: '<i8', data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 0n, 9007199254740993n]), shape: [4] },
  { dtype: '<u8', data: BigUint64Array.from([0n, 2n ** 64n - 1n]), shape: [1, 2] },
  { dtype: '<f4', data: Float32Array.from([0, -0, 1.5, -3.25e-8, 3.4028234663852886e38, Infinity, -Infinity, NaN]), shape: [8] },
  { dtype: '<f8', data: Float64Array.from([Math.PI, -1e-300, 1.7976931348623157e308, NaN, -Infinity, 5e-324]), shape: [2, 3] },
];

/** Values as strings (exact for integers of any size, and for floats via JavaScript's shortest round-trip form). */
function asStrings(data: NpyData): string[] {
  return Array.from(data as ArrayLike<number | bigint>, (v) => (Object.is(v, -0) ? '-0' : String(v)));
}

/** Parses a Python float repr ('1.5', 'nan', '-inf', '-0.0'). */
function pyFloat(v: string): number {
  return v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(v);
}

/**
 * Python snippet: prints JSON [{dtype, shape, values}] for each file, values as repr(float) or str(int), and
 * saves each array again with numpy.save as FILE.resaved.npy.
 */
const PY_DUMP = `
import json, sys, numpy as np
out = []
for f in sys.argv[1:]:
    a = np.load(f)
    vals = [repr(float(v)) if a.dtype.kind == 'f' else str(int(v)) for v in a.ravel().tolist()]
    out.append({'dtype': a.dtype.str, 'shape': list(a.shape), 'values': vals})
    np.save(f + '.resaved.npy', a)
print(json.dumps(out))
`;

describe('npy', function () {
  this.timeout(30000);
  const dir = tempDir('npy');

  it('writes every dtype so that numpy.load reads the same dtype, shape and values', async function () {
    const files: string[] = [];
    for (const [i, s] of SAMPLES.entries()) {
      const file = path.join(dir, `w${i}.npy`);
      await writeNpy(file, s.data, s.shape);
      files.push(file);
    }
    const got = JSON.parse((await run(PYTHON, ['-c', PY_DUMP, ...files])).toString()) as Array<{ dtype: string; shape: number[]; values: string[] }>;
    for (const [i, s] of SAMPLES.entries()) {
      expect(got[i].dtype, s.dtype).to.equal(s.dtype);
      expect(got[i].shape, s.dtype).to.deep.equal(s.shape);
      if (s.data instanceof Float32Array || s.data instanceof Float64Array) {
        // deep.equal tells -0 from 0 and takes NaN as equal to NaN.
        expect(got[i].values.map(pyFloat), s.dtype).to.deep.equal(Array.from(s.data));
      } else {
        expect(got[i].values, s.dtype).to.deep.equal(asStrings(s.data));
      }
    }
    // Byte for byte what numpy.save writes for the same array (header text, padding to 64 bytes, data).
    for (const file of files) {
      expect(fs.readFileSync(file).equals(fs.readFileSync(`${file}.resaved.npy`)), path.basename(file)).to.equal(true);
    }
  });

  it('reads what numpy.save writes, for every dtype, byte order, fortran order and format version', async function () {
    await python(`
import numpy as np, os
d = ${JSON.stringify(dir)}
base = np.array([[-3, -1, 0], [1, 2, 100]])
for t in ['i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8', 'f4', 'f8']:
    a = np.abs(base) if t[0] == 'u' else base
    for bo in '<>':
        np.save(os.path.join(d, 'n_%s%s.npy' % ({'<': 'le', '>': 'be'}[bo], t)), a.astype(bo + t))
np.save(os.path.join(d, 'n_bool.npy'), np.array([True, False, True, True]))
np.save(os.path.join(d, 'n_fortran.npy'), np.asfortranarray(np.arange(24, dtype='<i4').reshape(2, 3, 4)))
np.save(os.path.join(d, 'n_fortran_be.npy'), np.asfortranarray(np.arange(6, dtype='>f8').reshape(2, 3) / 4))
np.save(os.path.join(d, 'n_scalar.npy'), np.float32(2.5))
np.save(os.path.join(d, 'n_empty.npy'), np.zeros((0, 3), dtype='<i2'))
np.save(os.path.join(d, 'n_big.npy'), np.array([-(2**63), 2**63 - 1, 2**53 + 1], dtype='<i8'))
for v in [(1, 0), (2, 0), (3, 0)]:
    with open(os.path.join(d, 'n_v%d.npy' % v[0]), 'wb') as f:
        np.lib.format.write_array(f, np.arange(6, dtype='<f4').reshape(3, 2) - 2.5, version=v)
np.save(os.path.join(d, 'n_c8.npy'), np.zeros(3, dtype='<c8'))
np.save(os.path.join(d, 'n_struct.npy'), np.zeros(2, dtype=[('a', '<i4'), ('b', '<f4')]))
np.save(os.path.join(d, 'n_str.npy'), np.array(['ab', 'c']))
`);
    const flat = [-3, -1, 0, 1, 2, 100];
    for (const t of ['i1', 'u1', 'i2', 'u2', 'i4', 'u4', 'i8', 'u8', 'f4', 'f8']) {
      for (const bo of ['le', 'be']) {
        const arr = await readNpy(path.join(dir, `n_${bo}${t}.npy`));
        const size = Number(t.slice(1));
        expect(arr.dtype, `${bo} ${t}`).to.equal(`${size === 1 ? '|' : '<'}${t}`);
        expect(arr.shape).to.deep.equal([2, 3]);
        const want = t[0] === 'u' ? flat.map(Math.abs) : flat;
        expect(Array.from(toNumberArray(arr.data)), `${bo} ${t}`).to.deep.equal(want);
      }
    }
    expect((await readNpy(path.join(dir, 'n_lei8.npy'))).data).to.be.instanceOf(BigInt64Array);
    expect((await readNpy(path.join(dir, 'n_beu8.npy'))).data).to.be.instanceOf(BigUint64Array);
    expect((await readNpy(path.join(dir, 'n_bef4.npy'))).data).to.be.instanceOf(Float32Array);

    const bool = await readNpy(path.join(dir, 'n_bool.npy'));
    expect(bool.dtype).to.equal('|b1');
    expect(bool.data).to.be.instanceOf(Uint8Array);
    expect(Array.from(bool.data as Uint8Array)).to.deep.equal([1, 0, 1, 1]);

    // Fortran-ordered arrays come back transposed into C order.
    const fo = await readNpy(path.join(dir, 'n_fortran.npy'));
    expect(fo.shape).to.deep.equal([2, 3, 4]);
    expect(Array.from(fo.data as Int32Array)).to.deep.equal(Array.from({ length: 24 }, (_, i) => i));
    const fobe = await readNpy(path.join(dir, 'n_fortran_be.npy'));
    expect(fobe.dtype).to.equal('<f8');
    expect(Array.from(fobe.data as Float64Array)).to.deep.equal([0, 0.25, 0.5, 0.75, 1, 1.25]);

    const scalar = await readNpy(path.join(dir, 'n_scalar.npy'));
    expect(scalar.shape).to.deep.equal([]);
    expect(Array.from(scalar.data as Float32Array)).to.deep.equal([2.5]);
    const empty = await readNpy(path.join(dir, 'n_empty.npy'));
    expect(empty.shape).to.deep.equal([0, 3]);
    expect(empty.data).to.be.instanceOf(Int16Array);
    expect(empty.data.length).to.equal(0);
    const big = await readNpy(path.join(dir, 'n_big.npy'));
    expect(Array.from(big.data as BigInt64Array)).to.deep.equal([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n]);

    for (const v of [1, 2, 3]) {
      const file = path.join(dir, `n_v${v}.npy`);
      expect(fs.readFileSync(file)[6], `version byte of v${v}`).to.equal(v);
      const arr = await readNpy(file);
      expect(arr.shape).to.deep.equal([3, 2]);
      expect(Array.from(arr.data as Float32Array)).to.deep.equal([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]);
    }

    await expectReject(readNpy(path.join(dir, 'n_c8.npy')), /n_c8\.npy: unsupported dtype '<c8'/);
    await expectReject(readNpy(path.join(dir, 'n_struct.npy')), /unsupported dtype .*structured/);
    await expectReject(readNpy(path.join(dir, 'n_str.npy')), /unsupported dtype '<U2'/);
  });

  it('rejects damaged files with errors that name the problem', async function () {
    const good = encodeNpy(new Float32Array(6), [2, 3]);
    expect(() => decodeNpy(Buffer.from('PK\x03\x04 not numpy at all'))).to.throw(/not a \.npy file \(bad magic\)/);
    expect(() => decodeNpy(good.subarray(0, good.length - 4))).to.throw(
      'header says shape (2, 3) = 6 values but the file holds 5',
    );
    expect(() => decodeNpy(good.subarray(0, good.length - 2))).to.throw(/holds 5 \(and 2 stray bytes\)/);
    expect(() => decodeNpy(Buffer.concat([good, Buffer.alloc(4)]))).to.throw(/= 6 values but the file holds 7/);
    expect(() => decodeNpy(good.subarray(0, 40))).to.throw(/truncated \.npy file/);
    const v9 = Buffer.from(good);
    v9[6] = 9;
    expect(() => decodeNpy(v9)).to.throw(/unsupported \.npy format version 9\.0/);
    const garbled = Buffer.from(good);
    garbled.write('{"descr\': <f4', 10, 'latin1');
    expect(() => decodeNpy(garbled)).to.throw(/not a valid \.npy header/);
    await expectReject(readNpy(path.join(dir, 'missing.npy')), /ENOENT.*missing\.npy/);
  });

  it('encodes in memory: round trip, 0-d and empty arrays, format 2.0 when the header needs it', function () {
    for (const s of SAMPLES) {
      const back = decodeNpy(encodeNpy(s.data, s.shape));
      expect(back.dtype).to.equal(s.dtype);
      expect(back.shape).to.deep.equal(s.shape);
      expect(back.data.constructor).to.equal(s.data.constructor);
      expect(asStrings(back.data)).to.deep.equal(asStrings(s.data));
    }
    // A view into a larger buffer is stored from its own start, not the buffer's.
    const view = Int16Array.of(1, 2, 7, -8, 9, 3).subarray(2, 5);
    expect(Array.from(decodeNpy(encodeNpy(view, [3])).data as Int16Array)).to.deep.equal([7, -8, 9]);
    // Decoding from an unaligned buffer position still gives an aligned copy.
    const enc = encodeNpy(Float64Array.from([1.25, -2]), [2]);
    const shifted = new Uint8Array(enc.length + 3);
    shifted.set(enc, 3);
    expect(Array.from(decodeNpy(shifted.subarray(3)).data as Float64Array)).to.deep.equal([1.25, -2]);

    const scalar = encodeNpy(Float32Array.of(4), []);
    expect(scalar.toString('latin1', 10, 80)).to.contain("'shape': (), }");
    expect(decodeNpy(scalar).shape).to.deep.equal([]);
    const empty = decodeNpy(encodeNpy(new Int32Array(0), [4, 0]));
    expect(empty.shape).to.deep.equal([4, 0]);

    const manyDims = new Array<number>(25000).fill(1);
    const big = encodeNpy(Float32Array.of(3), manyDims);
    expect(big[6], 'format version').to.equal(2);
    expect((12 + big.readUInt32LE(8)) % 64).to.equal(0);
    const back = decodeNpy(big);
    expect(back.shape.length).to.equal(25000);
    expect(Array.from(back.data as Float32Array)).to.deep.equal([3]);

    expect(() => encodeNpy(new Float32Array(5), [2, 3])).to.throw(RangeError, 'shape (2, 3) = 6 values but the data holds 5');
    expect(() => encodeNpy(new Float32Array(2), [-1, -2])).to.throw(RangeError, /non-negative integers/);
    expect(() => encodeNpy(new Float32Array(2), [2.5])).to.throw(RangeError, /non-negative integers/);
    expect(() => encodeNpy([1, 2] as unknown as Float32Array, [2])).to.throw(TypeError, /typed array/);
  });

  it('writes atomically: replaces an existing file whole, leaves nothing behind on failure', async function () {
    const file = path.join(dir, 'atomic.npy');
    await writeNpy(file, new Float32Array(1000).fill(1), [1000]);
    await writeNpy(file, Int16Array.of(1, 2), [2]);
    const arr = await readNpy(file);
    expect(arr.dtype).to.equal('<i2');
    expect(Array.from(arr.data as Int16Array)).to.deep.equal([1, 2]);
    await expectReject(writeNpy(path.join(dir, 'no-such-dir', 'x.npy'), Int16Array.of(1), [1]), /ENOENT/);
    await expectReject(writeNpy(file, Int16Array.of(1), [2]), /shape \(2,\) = 2 values but the data holds 1/);
    expect(Array.from((await readNpy(file)).data as Int16Array), 'untouched after a failed write').to.deep.equal([1, 2]);
    expect(fs.readdirSync(dir).filter((n) => n.includes('.partial'))).to.deep.equal([]);
  });

  it('toInt32Array and toNumberArray convert with range checks', function () {
    expect(Array.from(toInt32Array(BigInt64Array.from([-5n, 2147483647n, -2147483648n])))).to.deep.equal([-5, 2147483647, -2147483648]);
    expect(Array.from(toInt32Array(Uint16Array.of(65535, 3)))).to.deep.equal([65535, 3]);
    expect(Array.from(toInt32Array(Float64Array.of(2, -3)))).to.deep.equal([2, -3]);
    const same = Int32Array.of(1);
    expect(toInt32Array(same)).to.equal(same);
    expect(() => toInt32Array(BigInt64Array.of(0n, 2147483648n), 'code')).to.throw(RangeError, 'code 2147483648 at index 1 does not fit in a 32-bit integer');
    expect(() => toInt32Array(Uint32Array.of(4294967295))).to.throw(RangeError, /4294967295 at index 0/);
    expect(() => toInt32Array(Float32Array.of(0.5))).to.throw(RangeError, /0\.5 at index 0/);

    expect(Array.from(toNumberArray(BigInt64Array.from([-(2n ** 53n) + 1n, 42n])))).to.deep.equal([-(2 ** 53) + 1, 42]);
    expect(Array.from(toNumberArray(Int8Array.of(-128, 127)))).to.deep.equal([-128, 127]);
    expect(toNumberArray(Float32Array.of(1))).to.be.instanceOf(Float64Array);
    expect(() => toNumberArray(BigUint64Array.of(1n, 2n ** 53n))).to.throw(RangeError, /9007199254740992 at index 1/);
  });
});

async function expectReject(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  let error: unknown;
  try {
    await p;
  } catch (err) {
    error = err;
  }
  expect(error, `expected a rejection matching ${pattern}`).to.be.instanceOf(Error);
  expect((error as Error).message).to.match(pattern);
}
