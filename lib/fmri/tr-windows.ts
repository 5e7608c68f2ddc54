/**
 * TR windows: the frames of TR k are the `frames` frames from `start(k)` (./alignment). Copies between a frame series
 * [rows, nFrames] and the windows [nTrs, rows, frames], both ways.
 */

/**
 * Copies the frames of a block of a [rows, *] series (frames [first, first + n)) into the TR windows that hold them
 * ([nTrs, rows, frames], TR k from frame start(k)); frames no window holds are skipped, window frames past the series
 * stay as `out` was made (its padding).
 */
export function placeInWindows(
  block: ArrayLike<number>,
  rows: number,
  first: number,
  n: number,
  nTrs: number,
  frames: number,
  start: (k: number) => number,
  out: Int16Array | Float32Array,
): void {
  for (let k = 0; k < nTrs; k++) {
    const s = start(k);
    const lo = Math.max(s, first);
    const hi = Math.min(s + frames, first + n);
    if (s >= first + n) break;
    if (hi <= lo) continue;
    for (let r = 0; r < rows; r++) {
      const dst = (k * rows + r) * frames - s;
      const src = r * n - first;
      for (let f = lo; f < hi; f++) out[dst + f] = block[src + f];
    }
  }
}

/**
 * The inverse: writes [nTrs, rows, frames] windows into a [rows, total] timeline at `start(k)`;
 * with `fillGaps`, a frame no window covers repeats the frame before it.
 */
export function placeWindows<T extends Int16Array | Float32Array>(
  src: ArrayLike<number>,
  [nTrs, rows, frames]: [number, number, number],
  total: number,
  start: (k: number) => number,
  out: T,
  fillGaps: boolean,
): T {
  const covered = new Uint8Array(total);
  for (let k = 0; k < nTrs; k++) {
    const s = start(k);
    for (let t = 0; t < frames && s + t < total; t++) {
      covered[s + t] = 1;
      for (let r = 0; r < rows; r++) out[r * total + s + t] = src[(k * rows + r) * frames + t];
    }
  }
  if (fillGaps) {
    for (let j = 1; j < total; j++) {
      if (covered[j]) continue;
      for (let r = 0; r < rows; r++) out[r * total + j] = out[r * total + j - 1];
    }
  }
  return out;
}
