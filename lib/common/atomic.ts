/**
 * Atomic file output: data is written to a temporary file beside the target and renamed over it,
 * so a reader (or a rerun after a crash) never sees a partial file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The temporary name used while `target` is being written (hidden, unique per process and call). */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  const tag = `${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}`;
  return path.join(dir, `.${base}.${tag}.partial`);
}

/** Writes `chunks` to `target` atomically (temp file, fsync, rename). */
export async function writeFileAtomic(target: string, chunks: Uint8Array | Uint8Array[]): Promise<void> {
  const list = Array.isArray(chunks) ? chunks : [chunks];
  const temp = tempPathFor(target);
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(temp, 'wx');
    for (const chunk of list) {
      let offset = 0;
      while (offset < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
        offset += bytesWritten;
      }
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.promises.rename(temp, target);
  } catch (err) {
    if (handle) await handle.close().catch(() => undefined);
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/**
 * Runs `produce(tempPath)`, which must create the file at tempPath, then renames it to `target`.
 * On any failure the temporary file is removed and `target` is left untouched.
 */
export async function produceFileAtomic(target: string, produce: (tempPath: string) => Promise<void>): Promise<void> {
  const temp = tempPathFor(target);
  try {
    await produce(temp);
    await fs.promises.rename(temp, target);
  } catch (err) {
    await fs.promises.rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}
