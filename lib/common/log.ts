/**
 * Debug logging: what each stage of the pipeline did (loading, resampling, encoding, grouping into TRs),
 * with sizes and timings, written to stderr only so data written to stdout stays clean.
 *
 * Off by default. Turned on by the CLI's global `--verbose` flag ({@link setVerbose}), or by the `DEBUG`
 * environment variable selecting `encodec-native` as the [`debug`](https://www.npmjs.com/package/debug) package
 * reads it (it decides: a comma- or space-separated list where `*` patterns match and `-name` excludes):
 * `DEBUG=encodec-native`, `DEBUG=*`, `DEBUG=express,encodec-native`; `encodec-native:*` selects it too.
 *
 * Lines look like `encodec-native +0.412s audio: ffmpeg decoded 'talk.mp4' (44.1 kHz, 2 ch) -> 24 kHz, 31.2 s in 380 ms`.
 * They are formatted here, not by debug's own formatter, whose lines (a colour or a date, `+ms` since the
 * previous line) would change the documented format.
 *
 * @packageDocumentation
 */
import createDebug from 'debug';

/** The name matched against `DEBUG`, and the prefix of every line. */
export const LOG_NAMESPACE = 'encodec-native';

let verbose = false;
let sink: (line: string) => void = (line) => process.stderr.write(line);
const started = process.hrtime.bigint();
const logger = createDebug(LOG_NAMESPACE);
// debug reads DEBUG when it loads; a value set later (by a test or an embedding program) is taken up here.
let seenDebugEnv = process.env.DEBUG;

/** Turns debug logging on or off for this process, whatever `DEBUG` says (the CLI's `--verbose`). */
export function setVerbose(on: boolean): void {
  verbose = on;
}

/** Whether debug's current namespaces select `name`; `name:*` patterns select the bare name too, unless excluded. */
function selected(name: string): boolean {
  if (createDebug.enabled(name)) return true;
  if (!createDebug.enabled(`${name}:`)) return false;
  // debug 4.4 keeps exclusions as wildcard strings (older versions as RegExps).
  const skips = createDebug.skips as unknown as Array<string | RegExp>;
  return !skips.some((skip) =>
    typeof skip === 'string' ? new RegExp(`^${skip.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(name) : skip.test(name),
  );
}

/**
 * Whether a `DEBUG` value (comma/space list of patterns, `*` wildcards, `-pattern` exclusions) selects a name,
 * by debug's own matching. debug's enabled namespaces (and `process.env.DEBUG`, which it rewrites) are restored.
 */
export function debugSelects(value: string | undefined, name = LOG_NAMESPACE): boolean {
  if (!value) return false;
  const env = process.env.DEBUG;
  const previous = createDebug.disable();
  try {
    createDebug.enable(value);
    return selected(name);
  } finally {
    createDebug.enable(previous);
    if (env === undefined) delete process.env.DEBUG;
    else process.env.DEBUG = env;
  }
}

/** Whether debug lines are printed: `--verbose` was given or `DEBUG` selects `encodec-native`. */
export function isDebugEnabled(): boolean {
  if (verbose) return true;
  if (process.env.DEBUG !== seenDebugEnv) {
    seenDebugEnv = process.env.DEBUG;
    createDebug.enable(seenDebugEnv ?? '');
  }
  return logger.enabled || selected(LOG_NAMESPACE);
}

/**
 * Redirects debug lines (default: `process.stderr`). For embedding applications that collect logs;
 * returns the previous sink so it can be restored.
 */
export function setLogSink(write: (line: string) => void): (line: string) => void {
  const previous = sink;
  sink = write;
  return previous;
}

/** Prints one debug line for `stage` when logging is enabled (the message is built only then). */
export function debug(stage: string, message: string | (() => string)): void {
  if (!isDebugEnabled()) return;
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  const text = typeof message === 'function' ? message() : message;
  sink(`${LOG_NAMESPACE} +${elapsed.toFixed(3)}s ${stage}: ${text}\n`);
}

/** Milliseconds since `start` (a `performance.now()` value), formatted for log lines: `812 ms`, `3.41 s`. */
export function elapsedSince(start: number): string {
  const ms = performance.now() - start;
  return ms < 10_000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** A byte count for log lines: `512 B`, `3.2 KiB`, `45.1 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * Runs `work`, then logs `stage: <what> in <time>` (plus `describe(result)` when given) if logging is on.
 * Failures are logged as `failed after <time>` and rethrown unchanged.
 */
export async function timed<T>(stage: string, what: string, work: () => Promise<T>, describe?: (result: T) => string): Promise<T> {
  if (!isDebugEnabled()) return work();
  const start = performance.now();
  try {
    const result = await work();
    debug(stage, () => `${what}${describe ? ` ${describe(result)}` : ''} in ${elapsedSince(start)}`);
    return result;
  } catch (err) {
    debug(stage, () => `${what} failed after ${elapsedSince(start)}: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  }
}
