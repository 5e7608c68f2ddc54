/**
 * Where stimulus encodings are cached: an explicit directory (`--cache DIR`, `cache` option), else
 * `$ENCODEC_CACHE`, else `$XDG_CACHE_HOME/encodec-native/encodings`, else `~/.cache/encodec-native/encodings`.
 */
import * as os from 'node:os';
import * as path from 'node:path';

export function defaultCacheDir(): string {
  if (process.env.ENCODEC_CACHE) return path.resolve(process.env.ENCODEC_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'encodec-native', 'encodings');
}

/** The cache directory to use: `explicit` when given, else the default above. */
export function resolveCacheDir(explicit?: string): string {
  return explicit ? path.resolve(explicit) : defaultCacheDir();
}
