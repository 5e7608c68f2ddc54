/**
 * A temporary directory per describe block. `const dir = tempDir('wav')` at the top of the block makes a fresh
 * directory at once (so `dir` is a plain path for the block's hooks and tests) and removes it, with everything
 * in it, after the block's tests. A block whose tests do not run (`--grep`) runs no hooks: its directory goes
 * when the process exits.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const left = new Set<string>();
process.once('exit', () => {
  for (const dir of left) fs.rmSync(dir, { recursive: true, force: true });
});

export function tempDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `encodec-${name}-`));
  left.add(dir);
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
    left.delete(dir);
  });
  return dir;
}
