/**
 * SHA-256 of input and model files, remembered by path, size, modification time and inode in the cache's
 * `hashes/` folder, so that re-aligning a cached 5 GB video does not read it again. A changed file (any of the
 * four differs) is hashed afresh; a record is only a hint for that exact file state, never trusted otherwise.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { writeFileAtomic } from '../common/atomic';

interface HashRecord {
  path: string;
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
}

/** SHA-256 (hex) of a file's bytes, streamed. */
export async function sha256OfFile(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function sha256OfText(text: string): string {
  return crypto.createHash('sha256').update(text).digest('hex');
}

/**
 * SHA-256 of `file`, from the record in `dir` when the file is unchanged since it was made, else computed (and the
 * record written; a record that cannot be written only costs a re-read next time). Without `dir`, always computed.
 */
export async function rememberedSha256(file: string, dir: string | undefined): Promise<string> {
  const full = path.resolve(file);
  const stat = await fs.promises.stat(full);
  if (!dir) return sha256OfFile(full);
  const record = path.join(dir, `${sha256OfText(full)}.json`);
  try {
    const r = JSON.parse(await fs.promises.readFile(record, 'utf8')) as HashRecord;
    if (r.path === full && r.size === stat.size && r.mtimeMs === stat.mtimeMs && r.ino === stat.ino && /^[0-9a-f]{64}$/.test(r.sha256)) {
      return r.sha256;
    }
  } catch {
    // no record yet, or an unreadable one: hash the file
  }
  const sha256 = await sha256OfFile(full);
  const after = await fs.promises.stat(full);
  if (after.size === stat.size && after.mtimeMs === stat.mtimeMs) {
    const value: HashRecord = { path: full, size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, sha256 };
    await fs.promises
      .mkdir(dir, { recursive: true })
      .then(() => writeFileAtomic(record, Buffer.from(JSON.stringify(value))))
      .catch(() => undefined);
  }
  return sha256;
}
