/**
 * Atomic file output: data is written to a temporary file beside the target and renamed over it,
 * so a reader (or a rerun after a crash) never sees a partial file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Temporary names handed out, so an interrupted process can remove the ones still there (removeTempFiles). */
const issued = new Set<string>();

/** The temporary name used while `target` is being written (hidden, unique per process and call). */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  const tag = `${process.pid}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}`;
  const temp = path.join(dir, `.${base}.${tag}.partial`);
  issued.add(temp);
  return temp;
}

/**
 * Removes the temporary files of writes still in flight (synchronously: for a process about to exit on Ctrl-C).
 * Finished writes were renamed away, so their names are gone already.
 */
export function removeTempFiles(): void {
  for (const temp of issued) fs.rmSync(temp, { force: true });
  issued.clear();
}

/** Bytes of one file: one buffer or several written in order. */
export type FileBytes = Uint8Array | Uint8Array[];

/** Creates `temp` (which must not exist) holding `chunks`, synced to disk. */
async function writeTemp(temp: string, chunks: FileBytes): Promise<void> {
  const handle = await fs.promises.open(temp, 'wx');
  try {
    for (const chunk of Array.isArray(chunks) ? chunks : [chunks]) {
      let offset = 0;
      while (offset < chunk.byteLength) {
        const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
        offset += bytesWritten;
      }
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `chunks` to `target` atomically (temp file, fsync, rename). */
export async function writeFileAtomic(target: string, chunks: FileBytes): Promise<void> {
  await writeFilesAtomic([[target, chunks]]);
}

/**
 * Writes several files that belong together: every part to its temporary file first, then the renames, in the
 * order given. A failure while writing leaves no part's target changed and no temporary file behind. The renames
 * are separate steps, so a crash between them can leave the first targets new and the rest old: a caller whose
 * files must match records that in the last one (features-file.ts records the `.npy`'s hash in its `.csv`).
 */
export async function writeFilesAtomic(parts: [target: string, chunks: FileBytes][]): Promise<void> {
  const temps: string[] = [];
  try {
    for (const [target, chunks] of parts) {
      temps.push(tempPathFor(target));
      await writeTemp(temps[temps.length - 1], chunks);
    }
    for (let i = 0; i < parts.length; i++) await fs.promises.rename(temps[i], parts[i][0]);
  } catch (err) {
    await Promise.all(temps.map((t) => fs.promises.rm(t, { force: true }).catch(() => undefined)));
    throw err;
  }
}
