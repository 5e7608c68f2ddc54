/**
 * Independent oracles: a Python snippet run by /usr/bin/python3 (numpy, scipy, nibabel, h5py), fed JSON on stdin as
 * `data` and printing JSON.
 */
import { spawnSync } from 'node:child_process';

/** Runs `code` with `data` (JSON-decoded) in scope; returns the JSON the snippet prints. */
export function pythonJson<T = unknown>(code: string, data: unknown = null): T {
  const script = `import json, sys\nimport numpy as np\ndata = json.loads(sys.stdin.read())\n${code}\n`;
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(data), encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Largest |a - b| / max(|b|, floor) over the elements. */
export function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), floor));
  return worst;
}

/**
 * numpy oracle of the run placement (lib/fmri/run-frames.ts): stimulus frames [rows, F] (row-major, on the model's
 * grid of `hop` samples) played from file sample `fileStart` for `count` samples at run sample `runStart`, in a run
 * of `runSamples` samples; run frame n takes the stimulus frame holding the file sample at its centre (or at its
 * first sample, for the partly filled frame at the stimulus's end), else `silence`. Returns [rows, ceil(runSamples / hop)].
 */
export function placeOnRunOracle(
  frames: ArrayLike<number>,
  rows: number,
  silence: ArrayLike<number>,
  p: { runStart: number; fileStart: number; count: number; runSamples: number; hop: number },
): number[] {
  return pythonJson<number[]>(
    `x = np.array(data['frames'], dtype=np.float64).reshape(${rows}, -1)
p = data['p']; hop = p['hop']
n = -(-p['runSamples'] // hop)
out = np.repeat(np.array(data['silence'], dtype=np.float64)[:, None], n, axis=1)
for j in range(n):
    start = j * hop
    for s in (start + hop / 2, start):
        if p['runStart'] <= s < p['runStart'] + p['count']:
            f = min(int((s - p['runStart'] + p['fileStart']) // hop), x.shape[1] - 1)
            out[:, j] = x[:, f]
            break
print(json.dumps(out.ravel().tolist()))`,
    { frames: Array.from(frames), silence: Array.from(silence), p },
  );
}
