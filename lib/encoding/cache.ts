/**
 * The content-addressed cache of stimulus encodings (docs/cache.md).
 *
 * An entry's key is the SHA-256 of: the entry format, the input file's SHA-256, the model file's SHA-256, what is
 * stored (codes at full depth, or latents), `exact` (one pass instead of chunks), the device kind (cpu / cuda) and
 * the rate and channels the input is decoded at. Entries live in `DIR/<key[0..2]>/<key>/` (./entry).
 *
 * Writes are atomic: an entry is built in a hidden temporary folder beside its final place and renamed there. When
 * two processes (or two cluster tasks on a shared filesystem) build the same entry at once, the first rename wins;
 * the other finds the entry in place, checks it and removes its own copy, so both end with the same valid entry.
 * An entry that fails its checks (truncated, corrupt, edited, made for another key) is reported once, removed and
 * made again; it is never used.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { codedError } from '../common/errors';
import { sha256OfText } from './file-hash';
import { Entry, EntryMeta, InvalidEntry, META_FILE, StoredKind } from './entry';

/** Bumped when the encoding of a file changes for the same key parts (chunking, the silence frame, the layout). */
export const ENCODING_VERSION = 1;

/** The parts of a cache key. */
export interface KeyParts {
  sourceSha256: string;
  modelSha256: string;
  stored: StoredKind;
  exact: boolean;
  /** 'cpu' or 'cuda' (any CUDA device). */
  device: string;
  sampleRate: number;
  channels: number;
}

export function cacheKey(p: KeyParts): string {
  return sha256OfText(
    JSON.stringify([ENCODING_VERSION, p.sourceSha256, p.modelSha256, p.stored, p.exact, p.device, p.sampleRate, p.channels]),
  );
}

/** The device kind a device string belongs to: entries made on any CUDA device serve every CUDA device. */
export function deviceKind(device: string): string {
  return device.startsWith('cuda') ? 'cuda' : 'cpu';
}

/** How the cache reports an entry it threw away (once per entry and process). */
export type CacheWarning = (message: string) => void;

const reported = new Set<string>();

function defaultWarning(message: string): void {
  process.stderr.write(`encodec-native: ${message}\n`);
}

/** A summary of one entry, as `cache list` prints it. */
export interface EntrySummary {
  key: string;
  dir: string;
  bytes: number;
  /** Last use (the sidecar's modification time, touched on every use). */
  lastUsed: Date;
  meta?: EntryMeta;
  /** Why the entry is invalid (`verify` only). */
  problem?: string;
}

export class EncodingCache {
  private constructor(
    /** Where entries live. */
    readonly dir: string,
    /** True for a private folder that is removed by close() (`--no-cache`). */
    readonly temporary: boolean,
    private readonly warn: CacheWarning,
  ) {}

  /** The cache in `dir` (created on first write). */
  static at(dir: string, warn: CacheWarning = defaultWarning): EncodingCache {
    return new EncodingCache(path.resolve(dir), false, warn);
  }

  /**
   * A private, empty cache in the system's temporary folder, for `--no-cache`: encodings go through the same files
   * (so the output is the same as with a cache), and close() removes them.
   */
  static async scratch(warn: CacheWarning = defaultWarning): Promise<EncodingCache> {
    return new EncodingCache(await fs.promises.mkdtemp(path.join(os.tmpdir(), 'encodec-native-encodings-')), true, warn);
  }

  /** Folder of remembered file hashes (./file-hash); none for a scratch cache. */
  get hashDir(): string | undefined {
    return this.temporary ? undefined : path.join(this.dir, 'hashes');
  }

  entryDir(key: string): string {
    return path.join(this.dir, key.slice(0, 2), key);
  }

  /** The valid entry for `key`, or undefined; an invalid one is reported, removed, and undefined returned. */
  async lookup(key: string): Promise<Entry | undefined> {
    const dir = this.entryDir(key);
    if (!fs.existsSync(dir)) return undefined;
    try {
      const entry = await Entry.open(dir, key);
      const now = new Date();
      await fs.promises.utimes(path.join(dir, META_FILE), now, now).catch(() => undefined);
      return entry;
    } catch (err) {
      if (!(err instanceof InvalidEntry)) throw err;
      this.discard(dir, err.message);
      await removeDir(dir);
      return undefined;
    }
  }

  private discard(dir: string, why: string): void {
    // once per entry and problem: two tasks sharing a process must not repeat it; a later, new damage is reported
    if (reported.has(`${dir}\n${why}`)) return;
    reported.add(`${dir}\n${why}`);
    this.warn(`cache entry ${dir} is invalid (${why}): removed; encoding again`);
  }

  /** A new temporary folder for building the entry of `key` (see commit). */
  async building(key: string): Promise<string> {
    const parent = path.dirname(this.entryDir(key));
    await fs.promises.mkdir(parent, { recursive: true });
    return fs.promises.mkdtemp(path.join(parent, `.${key}.building-${process.pid}-`));
  }

  /**
   * Moves a built entry (`temp`, its sidecar written last) into place and opens it. If another process put the
   * entry in place first, that one is checked and used, and `temp` removed; if it is invalid, it is replaced.
   */
  async commit(key: string, temp: string): Promise<Entry> {
    const dir = this.entryDir(key);
    for (let attempt = 0; ; attempt++) {
      try {
        await fs.promises.rename(temp, dir);
        return await Entry.open(dir, key, true);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EISDIR') throw err;
        const theirs = await this.lookup(key);
        if (theirs) {
          await removeDir(temp);
          return theirs;
        }
        if (attempt >= 3) throw codedError('ENCODEC_INTERNAL', `cannot put the cache entry ${dir} in place (another process keeps writing it)`);
      }
    }
  }

  /** Every entry, valid or not (`verify`: each is checked, and `problem` says what is wrong). */
  async entries(verify = false): Promise<EntrySummary[]> {
    const out: EntrySummary[] = [];
    let shards: string[] = [];
    try {
      shards = (await fs.promises.readdir(this.dir)).filter((d) => /^[0-9a-f]{2}$/.test(d));
    } catch {
      return out;
    }
    for (const shard of shards.sort()) {
      for (const key of (await fs.promises.readdir(path.join(this.dir, shard))).sort()) {
        if (!/^[0-9a-f]{64}$/.test(key)) continue;
        const dir = path.join(this.dir, shard, key);
        const summary: EntrySummary = { key, dir, bytes: await dirBytes(dir), lastUsed: await lastUsed(dir) };
        try {
          summary.meta = JSON.parse(await fs.promises.readFile(path.join(dir, META_FILE), 'utf8')) as EntryMeta;
        } catch {
          summary.problem = `no readable ${META_FILE}`;
        }
        if (verify && !summary.problem) {
          try {
            await Entry.open(dir, key);
          } catch (err) {
            if (!(err instanceof InvalidEntry)) throw err;
            summary.problem = err.message;
          }
        }
        out.push(summary);
      }
    }
    return out;
  }

  /** Removes one entry. */
  async remove(key: string): Promise<void> {
    await removeDir(this.entryDir(key));
  }

  /**
   * Removes invalid entries (when `verify`), entries unused for longer than `olderThanMs`, then the least recently used
   * until the entries take at most `maxBytes`. Returns what was removed.
   */
  async prune(options: { maxBytes?: number; olderThanMs?: number; verify?: boolean; now?: number }): Promise<EntrySummary[]> {
    const now = options.now ?? Date.now();
    const all = await this.entries(options.verify ?? false);
    const removed: EntrySummary[] = [];
    const kept: EntrySummary[] = [];
    for (const e of all) {
      const old = options.olderThanMs !== undefined && now - e.lastUsed.getTime() > options.olderThanMs;
      (e.problem || old ? removed : kept).push(e);
    }
    if (options.maxBytes !== undefined) {
      kept.sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime());
      let total = kept.reduce((n, e) => n + e.bytes, 0);
      while (kept.length && total > options.maxBytes) {
        const e = kept.shift() as EntrySummary;
        total -= e.bytes;
        removed.push(e);
      }
    }
    for (const e of removed) await removeDir(e.dir);
    await this.removeStaleBuilds(now);
    return removed;
  }

  /** Removes every entry, the remembered hashes, the codebooks and abandoned builds. */
  async clear(): Promise<number> {
    const all = await this.entries();
    for (const e of all) await removeDir(e.dir);
    await removeDir(path.join(this.dir, 'hashes'));
    await removeDir(path.join(this.dir, 'codebooks'));
    // builds in progress (another process's) are left alone; only abandoned ones, as prune does
    await this.removeStaleBuilds(Date.now());
    return all.length;
  }

  /** Unfinished builds (a killed process's) older than an hour. */
  private async removeStaleBuilds(now: number): Promise<void> {
    let shards: string[] = [];
    try {
      shards = (await fs.promises.readdir(this.dir)).filter((d) => /^[0-9a-f]{2}$/.test(d));
    } catch {
      return;
    }
    for (const shard of shards) {
      for (const name of await fs.promises.readdir(path.join(this.dir, shard))) {
        if (!name.includes('.building-')) continue;
        const full = path.join(this.dir, shard, name);
        const age = now - (await fs.promises.stat(full)).mtimeMs;
        if (age > 3600_000) await removeDir(full);
      }
    }
  }

  /** Removes a scratch cache's folder (a shared cache is left as it is). */
  async close(): Promise<void> {
    if (this.temporary) await removeDir(this.dir);
  }
}

async function removeDir(dir: string): Promise<void> {
  await fs.promises.rm(dir, { recursive: true, force: true });
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await fs.promises.readdir(dir).catch(() => [] as string[])) {
    total += (await fs.promises.stat(path.join(dir, name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

async function lastUsed(dir: string): Promise<Date> {
  const stat = await fs.promises.stat(path.join(dir, META_FILE)).catch(() => fs.promises.stat(dir));
  return stat.mtime;
}
