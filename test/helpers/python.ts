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
