/**
 * The uniform frame grid of segmented codes (lib/encoding/segment-grid.ts): which segment frame each 150 frames/s grid
 * frame takes, checked against a search over every segment frame by time (written from Meta's layout: segment k starts
 * at sample 47520 k and frame j of it covers 320 samples from 47520 k + 320 j), the documented error bound (0 or half
 * a frame), and the streaming regridder against that mapping for any split of the frames into blocks.
 */
import { expect } from 'chai';

import { SegmentGrid, gridFrames, gridSource } from '../../lib/encoding/segment-grid';

const G = { length: 48000, stride: 47520, hop: 320, channels: 2 };

/** Meta's segments of `samples` samples: start and frame count of each (range(0, samples, stride)). */
function metaSegments(samples: number): Array<{ start: number; frames: number }> {
  const out: Array<{ start: number; frames: number }> = [];
  for (let start = 0; start < samples; start += 47520) out.push({ start, frames: Math.ceil(Math.min(48000, samples - start) / 320) });
  return out;
}

/**
 * The oracle: for grid frame n (samples [320 n, 320 n + 320)), the segment frame whose samples hold the grid frame's
 * centre, in the latest segment started by then (its last frame when the centre is past it), found by a search.
 */
function oracle(n: number, samples: number): { segment: number; index: number; joined: number; startSample: number } {
  const centre = 320 * n + 160;
  const segments = metaSegments(samples);
  let segment = -1;
  for (let k = 0; k < segments.length; k++) if (segments[k].start <= centre) segment = k;
  const s = segments[segment];
  let index = s.frames - 1;
  for (let j = 0; j < s.frames; j++) {
    if (s.start + 320 * j <= centre && centre < s.start + 320 * (j + 1)) index = j;
  }
  const joined = segments.slice(0, segment).reduce((a, b) => a + b.frames, 0) + index;
  return { segment, index, joined, startSample: s.start + 320 * index };
}

/** Lengths with every kind of segment tail: one sample, under a segment, [149, 1], [150, 1], [150, 2], longer. */
const LENGTHS = [1, 320, 47520, 47600, 47680, 47681, 47840, 48000, 95040 + 100, 47520 * 7 + 160, 47520 * 7 + 161, 10 * 48000, 123457];

describe('segment grid (encodec_48khz frames on a uniform 150 frames/s grid)', function () {
  it('takes, for each grid frame, the frame of the latest started segment that holds its centre', function () {
    for (const samples of LENGTHS) {
      expect(gridFrames(samples, G), `${samples} samples`).to.equal(Math.ceil(samples / 320));
      for (let n = 0; n < gridFrames(samples, G); n++) {
        const want = oracle(n, samples);
        expect(gridSource(n, samples, G), `${samples} samples, grid frame ${n}`).to.deep.equal({ segment: want.segment, index: want.index });
      }
    }
  });

  it('places every frame within half a frame of its time: exactly on even segments, 160 samples late on odd ones', function () {
    const samples = 20 * 48000;
    const late = new Set<number>();
    for (let n = 0; n < gridFrames(samples, G) - 1; n++) {
      const { segment, startSample } = oracle(n, samples);
      const error = startSample - 320 * n; // where the code frame starts, against where the grid frame starts
      expect(error, `grid frame ${n}`).to.equal(segment % 2 === 0 ? 0 : 160);
      late.add(error);
    }
    expect([...late].sort((a, b) => a - b)).to.deep.equal([0, 160]); // both kinds of segment occur
  });

  it('uses each segment frame at most once, in order, and each segment\'s frames from its first (148 or 149 of 150)', function () {
    const samples = 30 * 48000 + 12345;
    const used = new Map<number, number[]>();
    let last = -1;
    for (let n = 0; n < gridFrames(samples, G); n++) {
      const { segment, index } = gridSource(n, samples, G);
      const joined = oracle(n, samples).joined;
      expect(joined, `grid frame ${n}`).to.be.greaterThan(last);
      last = joined;
      used.set(segment, [...(used.get(segment) ?? []), index]);
    }
    const segments = metaSegments(samples);
    for (let k = 0; k < segments.length - 1; k++) {
      const indices = used.get(k) as number[];
      expect(indices[0], `segment ${k}`).to.equal(0);
      expect(indices.every((j, i) => j === i), `segment ${k}`).to.equal(true);
      expect(indices.length, `segment ${k}`).to.equal(k % 2 === 0 ? 148 : 149); // 148.5 grid frames per segment
    }
  });

  it('regrids a stream of segment frames in blocks of any size to the same frames, as soon as they are known', function () {
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return 1 + Math.floor((seed / 2147483648) * n);
    };
    for (const samples of LENGTHS) {
      for (const split of ['whole', 'segments of 8', 'random']) {
        const total = metaSegments(samples).reduce((a, b) => a + b.frames, 0);
        // two rows: the joined frame index, and its negative
        const data = new Float32Array(2 * total);
        for (let f = 0; f < total; f++) {
          data[f] = f;
          data[total + f] = -f;
        }
        const got: number[][] = [[], []];
        let expectedFirst = 0;
        const grid = new SegmentGrid(G, 2, false, (out, firstFrame, nFrames) => {
          expect(firstFrame).to.equal(expectedFirst);
          expectedFirst += nFrames;
          for (let t = 0; t < nFrames; t++) {
            got[0].push(out[t]);
            got[1].push(out[nFrames + t]);
          }
        });
        let at = 0;
        let ready = 0;
        while (at < total) {
          const n = split === 'whole' ? total : split === 'segments of 8' ? Math.min(8 * 150, total - at) : Math.min(random(400), total - at);
          const block = new Float32Array(2 * n);
          block.set(data.subarray(at, at + n));
          block.set(data.subarray(total + at, total + at + n), n);
          grid.add(block, at, n);
          at += n;
          expect(got[0].length).to.be.at.least(ready); // never takes frames back
          ready = got[0].length;
        }
        if (split === 'segments of 8' && total > 3 * 8 * 150) expect(ready).to.be.greaterThan(0); // long streams emit before the end
        grid.finish(samples);
        const want = Array.from({ length: gridFrames(samples, G) }, (_, n) => oracle(n, samples).joined);
        expect(got[0], `${samples} samples, ${split}`).to.deep.equal(want);
        expect(got[1], `${samples} samples, ${split}`).to.deep.equal(want.map((v) => -v));
      }
    }
  });

  it('keeps codes integers and refuses frames out of order or a length that does not fit them', function () {
    const got: number[] = [];
    const grid = new SegmentGrid(G, 1, true, (out) => got.push(...Array.from(out)));
    expect(() => grid.add(new Int16Array(3), 5, 3)).to.throw(/frames 5 arrived, 0 expected/);
    grid.add(Int16Array.from([1023, 7]), 0, 2);
    expect(() => grid.finish(48000)).to.throw(/2 segment frames for 48000 samples/);
    grid.finish(640);
    expect(got).to.deep.equal([1023, 7]);
  });
});
