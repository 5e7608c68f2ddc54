/**
 * The fuzzer's cases for a segmented model (encodec_48khz: planar stereo in, codes with one scale per segment):
 * clips that are not planar stereo segments, codes without their scales or with scales that are not finite
 * float32, too many codebooks for the model, segmented codes that do not fit their scales, methods on the wrong
 * object, and calls after dispose().
 */
import { Encodec } from '../lib/codec/codec';
import { NativeModel } from '../lib/addon/native';
import type { FuzzCall } from './fuzzer';
import type { FuzzRandom } from './lm-cases';

export interface SegmentedTargets {
  native: NativeModel;
  codec: Encodec;
  /** Disposed after a call it had in flight finished. */
  dead: NativeModel;
  deadCodec: Encodec;
}

/** A valid planar stereo clip of 1..2000 samples per channel. */
function stereo(g: FuzzRandom): Float32Array {
  const n = 1 + g.int(2000);
  const f = 0.01 + g.random() * 0.3;
  return Float32Array.from({ length: 2 * n }, (_, i) => 0.3 * Math.sin((i % n) * f + (i < n ? 0 : 1)));
}

/** Well-formed codes of one segment (4 codebooks, 1..10 frames) with a scale. */
function segmentCodes(g: FuzzRandom): { data: Int16Array; nQ: number; nFrames: number; scale: number } {
  const nFrames = 1 + g.int(10);
  const data = Int16Array.from({ length: 4 * nFrames }, () => g.int(1024));
  return { data, nQ: 4, nFrames, scale: 0.01 + g.random() };
}

/** Something that is not planar stereo of finite samples, or (`segment`: for the native model) not one segment. */
function badStereo(g: FuzzRandom, segment: boolean): unknown {
  return g.pick<() => unknown>([
    () => g.junk(),
    () => new Float32Array(0),
    () => new Float32Array(2 * (1 + g.int(100)) + 1), // odd: not two channels of equal length
    // the native model codes one segment per clip (Encodec.encode cuts longer audio into segments)
    () => (segment ? new Float32Array(2 * (48001 + g.int(1000))) : new Float32Array(3)),
    () => {
      const c = stereo(g);
      c[g.int(c.length)] = g.pick([NaN, Infinity, -Infinity]);
      return c;
    },
  ])();
}

/** A segment's codes wrong in their scale, or in their codebook count for this model (16 at most). */
function badSegmentCodes(g: FuzzRandom): unknown {
  const good = segmentCodes(g);
  return g.pick<() => unknown>([
    () => ({ data: good.data, nQ: good.nQ, nFrames: good.nFrames }),
    () => ({ ...good, scale: g.pick<unknown>([NaN, Infinity, -Infinity, 1e39, '1', null, {}, [1], 1n]) }),
    () => ({ ...good, nQ: 32, data: new Int16Array(32 * good.nFrames) }),
    () => ({ ...good, data: good.data.map(() => g.pick([-1, 1024, 32767])) }),
  ])();
}

/** Segmented codes (as Encodec.encode returns them) made wrong in one way. */
function badSegmentedCodes(g: FuzzRandom): unknown {
  const nFrames = 150 + 1 + g.int(20); // two segments
  const good = { data: new Int16Array(4 * nFrames), nQ: 4, nFrames, scales: Float32Array.of(0.5, 0.25), segmentFrames: 150 };
  return g.pick<() => unknown>([
    () => ({ data: good.data, nQ: good.nQ, nFrames: good.nFrames }),
    () => ({ ...good, scales: good.scales.subarray(1) }),
    () => ({ ...good, scales: Float32Array.of(0.5, g.pick([NaN, Infinity, -Infinity])) }),
    () => ({ ...good, scales: g.junk() }),
    () => ({ ...good, segmentFrames: g.pick<unknown>([0, 75, 151, -150, 1.5, NaN, '150', null]) }),
    () => ({ ...good, nFrames: g.pick<unknown>([0, 2 ** 41, -1, NaN]) }),
  ])();
}

export function segmentedCases(g: FuzzRandom, t: SegmentedTargets): Array<() => FuzzCall> {
  const proto = Object.getPrototypeOf(t.native) as Record<string, unknown>;
  return [
    () => ({ name: '48k native.encode([bad stereo clip])', expect: 'error', run: () => t.native.encode([stereo(g), badStereo(g, true)].slice(g.int(2)) as Float32Array[], 4) }),
    () => ({ name: '48k native.encode(bad nQ)', expect: 'error', run: () => t.native.encode([stereo(g)], g.pick<unknown>([0, 17, 32, -4, 2.5, NaN, '4']) as number) }),
    () => ({ name: '48k native.decode([bad segment codes])', expect: 'error', run: () => t.native.decode([segmentCodes(g), badSegmentCodes(g)].slice(g.int(2)) as never) }),
    () => ({ name: '48k codec.encode(bad stereo clip)', expect: 'error', run: () => t.codec.encode(badStereo(g, false) as Float32Array) }),
    () => ({ name: '48k codec.encode(bad bandwidth)', expect: 'error', run: () => t.codec.encode(stereo(g), { bandwidth: g.pick<unknown>([1.5, 2, 48, NaN, '6']) as number }) }),
    () => ({ name: '48k codec.decode(bad segmented codes)', expect: 'error', run: () => t.codec.decode(badSegmentedCodes(g) as never) }),
    () => ({ name: '48k codec.decodeBatch(bad segmented codes)', expect: 'error', run: () => t.codec.decodeBatch([badSegmentedCodes(g)] as never) }),
    () => {
      const method = g.pick(['encode', 'decode']);
      const self = g.pick<unknown>([{}, null, t.codec, Object.create(proto)]);
      return { name: `48k native.${method}.call(wrong this)`, expect: 'error', run: () => (proto[method] as (...a: unknown[]) => unknown).call(self, [stereo(g)], 4) };
    },
    () => {
      const call = g.pick<() => unknown>([
        () => t.dead.encode([stereo(g)], 4),
        () => t.dead.decode([segmentCodes(g)]),
        () => t.deadCodec.encode(stereo(g)),
      ]);
      return { name: '48k call after dispose()', expect: 'error', run: call };
    },
  ];
}
