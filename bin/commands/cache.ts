/**
 * `encodec-native cache list|verify|prune|clear`: the encoding cache (lib/encoding/cache.ts, docs/cache.md).
 */
import { Command } from 'commander';

import { EncodingCache, EntrySummary } from '../../lib/encoding/cache';
import { resolveCacheDir } from '../../lib/encoding/cache-dir';
import { formatBytes } from '../../lib/common/log';
import { toJson } from '../../lib/common/format';
import { UsageError } from '../cli-util';

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
const AGE_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** Parses `20G`, `500M`, `1.5T`, `1048576` (binary units, as `du -h`). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$/i.exec(text);
  if (!m) throw new UsageError(`--max-size must be a size such as 20G, 500M or 1048576 (bytes), got '${text}'`);
  return Math.floor(Number(m[1]) * SIZE_UNITS[m[2].toUpperCase()]);
}

/** Parses `30d`, `12h`, `90m`, `2w`. */
export function parseAge(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$/i.exec(text);
  if (!m) throw new UsageError(`--older-than must be an age such as 30d, 12h, 90m or 2w, got '${text}'`);
  return Number(m[1]) * AGE_UNITS[m[2].toLowerCase()];
}

function row(e: EntrySummary): string {
  const m = e.meta;
  const what = m ? `${m.stored} ${m.model} ${m.shape[0]} frames (${(m.samples / m.sample_rate).toFixed(1)} s) of ${m.source}` : '(no sidecar)';
  return `${e.key.slice(0, 12)}  ${formatBytes(e.bytes).padStart(9)}  ${e.lastUsed.toISOString().slice(0, 19)}Z  ${what}${e.problem ? `  INVALID: ${e.problem}` : ''}`;
}

function json(e: EntrySummary): Record<string, unknown> {
  const m = e.meta;
  return {
    key: e.key,
    dir: e.dir,
    bytes: e.bytes,
    last_used: e.lastUsed.toISOString(),
    ...(m ? { stored: m.stored, model: m.model, model_sha256: m.model_sha256, source: m.source, source_sha256: m.source_sha256, frames: m.shape[0], seconds: m.samples / m.sample_rate, device: m.device } : {}),
    ...(e.problem ? { problem: e.problem } : {}),
  };
}

interface CacheCliOptions {
  cache?: string;
  json?: boolean;
}

function withCacheOption(c: Command): Command {
  return c
    .option('--cache <dir>', 'the cache folder (default: $ENCODEC_CACHE, else $XDG_CACHE_HOME/encodec-native/encodings)')
    .option('--json', 'print JSON');
}

export function cacheCommand(): Command {
  const cache = new Command('cache').description('list, check and prune the encoding cache (stimulus encodings extract and encode reuse)');
  cache.addCommand(
    withCacheOption(new Command('list').description('list the cached encodings: key, size, last use, what was encoded')).action(async (opts: CacheCliOptions) => {
      const c = EncodingCache.at(resolveCacheDir(opts.cache));
      const entries = await c.entries();
      if (opts.json) {
        process.stdout.write(toJson({ dir: c.dir, entries: entries.map(json) }));
        return;
      }
      for (const e of entries) process.stdout.write(`${row(e)}\n`);
      const total = entries.reduce((n, e) => n + e.bytes, 0);
      process.stderr.write(`${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}, ${formatBytes(total)} in ${c.dir}\n`);
    }),
  );
  cache.addCommand(
    withCacheOption(new Command('verify').description('check every entry against its recorded SHA-256s; exit 1 when one is invalid (prune removes it)')).action(
      async (opts: CacheCliOptions) => {
        const c = EncodingCache.at(resolveCacheDir(opts.cache));
        const entries = await c.entries(true);
        const bad = entries.filter((e) => e.problem);
        if (opts.json) process.stdout.write(toJson({ dir: c.dir, entries: entries.map(json) }));
        else for (const e of entries) process.stdout.write(`${e.problem ? 'INVALID' : 'ok     '}  ${row(e)}\n`);
        process.stderr.write(`${entries.length - bad.length} of ${entries.length} ${entries.length === 1 ? 'entry' : 'entries'} valid\n`);
        if (bad.length) process.exitCode = 1;
      },
    ),
  );
  cache.addCommand(
    withCacheOption(
      new Command('prune')
        .description('remove invalid entries, entries unused for longer than --older-than, then the least recently used until the cache fits --max-size')
        .option('--max-size <size>', 'keep at most this much, e.g. 20G, 500M')
        .option('--older-than <age>', 'remove entries unused for longer than this, e.g. 30d, 12h'),
    ).action(async (opts: CacheCliOptions & { maxSize?: string; olderThan?: string }) => {
      const maxBytes = opts.maxSize === undefined ? undefined : parseSize(opts.maxSize);
      const olderThanMs = opts.olderThan === undefined ? undefined : parseAge(opts.olderThan);
      const c = EncodingCache.at(resolveCacheDir(opts.cache));
      const removed = await c.prune({ maxBytes, olderThanMs, verify: true });
      if (opts.json) process.stdout.write(toJson({ dir: c.dir, removed: removed.map(json) }));
      else for (const e of removed) process.stdout.write(`removed  ${row(e)}\n`);
      const freed = removed.reduce((n, e) => n + e.bytes, 0);
      process.stderr.write(`removed ${removed.length} ${removed.length === 1 ? 'entry' : 'entries'} (${formatBytes(freed)}) from ${c.dir}\n`);
    }),
  );
  cache.addCommand(
    withCacheOption(new Command('clear').description('remove every entry (and the remembered file hashes and codebooks)')).action(async (opts: CacheCliOptions) => {
      const c = EncodingCache.at(resolveCacheDir(opts.cache));
      const n = await c.clear();
      if (opts.json) process.stdout.write(toJson({ dir: c.dir, removed: n }));
      process.stderr.write(`removed ${n} ${n === 1 ? 'entry' : 'entries'} from ${c.dir}\n`);
    }),
  );
  return cache;
}
