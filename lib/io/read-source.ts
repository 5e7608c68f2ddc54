/**
 * How the readers of lib/io/ take their input (readNpy, readWav): a path to read or the bytes themselves, decoded
 * by the format's decoder, a decoding error naming the file; file-system errors (ENOENT, ...) stay as they are.
 */
import * as fs from 'node:fs';

/** `decode` of the bytes of the file at `source`, or of `source` itself; decoding errors are prefixed with the path. */
export async function readDecoded<T>(source: string | Uint8Array, decode: (bytes: Uint8Array) => T): Promise<T> {
  if (typeof source !== 'string') return decode(source);
  const bytes = await fs.promises.readFile(source);
  try {
    return decode(bytes);
  } catch (err) {
    if (err instanceof Error) err.message = `${source}: ${err.message}`;
    throw err;
  }
}
