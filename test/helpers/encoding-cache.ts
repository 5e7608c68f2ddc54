/**
 * Every test process (and the CLI processes it starts, which inherit its environment) keeps stimulus encodings in
 * a cache of its own, removed when it exits: a test never reads an entry another test run left, and never writes
 * to the user's cache.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

if (!process.env.ENCODEC_TEST_CACHE_OWNER) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'encodec-test-encodings-'));
  process.env.ENCODEC_CACHE = dir;
  process.env.ENCODEC_TEST_CACHE_OWNER = String(process.pid);
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
}

export const TEST_ENCODING_CACHE = process.env.ENCODEC_CACHE as string;
