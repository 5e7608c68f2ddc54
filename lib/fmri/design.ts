/**
 * Encoding-model design matrices from per-volume features (n_trs, features), row-major:
 *
 * - `zscore`: each column to mean 0 and standard deviation 1 over the run's volumes (population std, ddof 0;
 *   a constant column becomes 0), as scipy.stats.zscore / the voxelwise tutorials' StandardScaler do per run.
 * - `delays`: the FIR expansion of the voxelwise tutorials' `Delayer`: (n_trs, n_delays * features), block d
 *   holding the features of volume k - delays[d] (zeros where that volume is outside the run), in the order
 *   given; 0 keeps the volume itself, a negative delay takes a later volume.
 */
import { rangeError } from '../common/errors';

/** Parses and checks delays: integers (volumes), at least one, no repeats; `what` names them in errors. */
export function checkDelays(delays: unknown, what = 'delays'): number[] {
  if (!Array.isArray(delays) || delays.length === 0) {
    throw rangeError(`${what} must be a non-empty list of whole numbers of volumes, e.g. [1, 2, 3, 4]`);
  }
  const seen = new Set<number>();
  for (const d of delays) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d)) {
      throw rangeError(`${what} must be whole numbers of volumes (e.g. 1,2,3,4), got ${String(d)}`);
    }
    if (seen.has(d)) throw rangeError(`delay ${d} is listed twice; list each delay once`);
    seen.add(d);
  }
  return [...delays] as number[];
}

/** Z-scores the columns of a (nRows, nCols) row-major matrix (see the module notes); float64 arithmetic. */
export function zscoreColumns(data: ArrayLike<number>, nRows: number, nCols: number): Float32Array {
  if (data.length !== nRows * nCols) throw rangeError(`data has ${data.length} values, not ${nRows} x ${nCols}`);
  const out = new Float32Array(data.length);
  if (nRows === 0) return out;
  const mean = new Float64Array(nCols);
  const sq = new Float64Array(nCols);
  for (let k = 0; k < nRows; k++) for (let c = 0; c < nCols; c++) mean[c] += data[k * nCols + c];
  for (let c = 0; c < nCols; c++) mean[c] /= nRows;
  for (let k = 0; k < nRows; k++) {
    for (let c = 0; c < nCols; c++) {
      const d = data[k * nCols + c] - mean[c];
      sq[c] += d * d;
    }
  }
  for (let c = 0; c < nCols; c++) {
    const std = Math.sqrt(sq[c] / nRows);
    // a column constant up to float rounding carries no signal: 0, not rounding noise blown up
    const constant = !(std > 1e-12 * Math.max(1, Math.abs(mean[c])));
    for (let k = 0; k < nRows; k++) out[k * nCols + c] = constant ? 0 : (data[k * nCols + c] - mean[c]) / std;
  }
  return out;
}

/** The delayed design matrix (nRows, delays.length * nCols) of a (nRows, nCols) matrix (see the module notes). */
export function delayColumns<T extends Float32Array | Int16Array>(data: T, nRows: number, nCols: number, delays: number[]): T {
  if (data.length !== nRows * nCols) throw rangeError(`data has ${data.length} values, not ${nRows} x ${nCols}`);
  const width = delays.length * nCols;
  const out = new (data.constructor as { new (n: number): T })(nRows * width);
  for (let k = 0; k < nRows; k++) {
    delays.forEach((d, b) => {
      const src = k - d;
      if (src < 0 || src >= nRows) return;
      out.set(data.subarray(src * nCols, (src + 1) * nCols), k * width + b * nCols);
    });
  }
  return out;
}
