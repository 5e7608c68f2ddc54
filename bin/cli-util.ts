/** Shared pieces of the command line: error reporting, exit codes, option parsing. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { CommanderError, Command } from 'commander';

import { isInputError } from '../lib/common/errors';
import { isDebugEnabled } from '../lib/common/log';
import { fromPlanar } from '../lib/common/planar';

/** A bad command-line value (code ENCODEC_BAD_INPUT): reported with exit code 2. */
export class UsageError extends Error {
  readonly code = 'ENCODEC_BAD_INPUT';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Throws, unless `file` exists, an error with Node's code ENOENT (exit code 1: the input is at fault, not the
 * command line; docs/errors.md) naming what the file is for.
 */
export function requireInputFile(what: string, file: string): void {
  if (fs.existsSync(file)) return;
  throw Object.assign(new Error(`${what} '${file}' does not exist`), { code: 'ENOENT' });
}

/**
 * Creates the output folder `dir` (and missing parents). The folders this call created are removed when the
 * process exits if they are still empty, so a run that wrote nothing leaves no trace.
 */
export function makeOutDir(dir: string): void {
  const first = fs.mkdirSync(dir, { recursive: true });
  if (first === undefined) return;
  process.once('exit', () => {
    // from the innermost folder up to the first one created; rmdir refuses a folder that is not empty
    for (let d = path.resolve(dir); d.startsWith(path.resolve(first)); d = path.dirname(d)) {
      try {
        fs.rmdirSync(d);
      } catch {
        return;
      }
    }
  });
}

/**
 * Exit code for an error: 2 for the user's input (an error whose code says so: ENCODEC_BAD_INPUT,
 * ENCODEC_NO_SPEECH; see docs/errors.md), a failed export's own status, 1 for everything else (a TypeError
 * from a bug included).
 */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  const code = (err as { exitCode?: unknown } | null | undefined)?.exitCode;
  if (typeof code === 'number' && code > 0) return code;
  return isInputError(err) ? 2 : 1;
}

/**
 * Prints an error the way every command does (one line on stderr) and sets the exit code; the stack follows
 * only when debug logging is on (`--verbose`, or `DEBUG` selecting encodec-native: see lib/common/log.ts).
 */
export function reportError(err: unknown): void {
  if (err instanceof CommanderError) {
    process.exitCode = exitCodeFor(err); // commander has printed its message already
    return;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`encodec-native: error: ${message}\n`);
  if (isDebugEnabled() && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  process.exitCode = exitCodeFor(err);
}

/** Parses an integer option, or throws a UsageError naming the option and the accepted range. */
export function parseIntegerOption(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (text: string): number => {
    const value = /^[+-]?\d+$/.test(text.trim()) ? Number(text) : NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
      throw new UsageError(`${name} must be an integer ${range}, got '${text}'`);
    }
    return value;
  };
}

/** Parses a TR in seconds (a plain positive decimal such as 1.5), or throws a UsageError naming `--tr`. */
export function parseTrOption(text: string): number {
  const value = /^\s*\d*\.?\d+(e[+-]?\d+)?\s*$/i.test(text) ? Number(text) : NaN;
  if (!(value > 0)) throw new UsageError(`--tr must be a positive number of seconds (e.g. 1.5), got '${text}'`);
  return value;
}

/** Extension of a path, lower-cased, with the dot ('.wav'). */
export function extensionOf(file: string): string {
  const m = /\.[^./\\]+$/.exec(file);
  return m ? m[0].toLowerCase() : '';
}

/** Decoded planar audio as per-channel arrays, each trimmed to `length` samples when given. */
export function channelsOf(samples: Float32Array, channels: number, length?: number): Float32Array[] {
  return fromPlanar(samples, channels).map((c) => (length !== undefined ? c.subarray(0, length) : c));
}

/** `--cache DIR` and `--no-cache`, the same for every command that encodes (docs/cache.md). */
export function addCacheOptions(command: Command): Command {
  return command
    .option('--cache <dir>', 'encoding cache folder (default: $ENCODEC_CACHE, else $XDG_CACHE_HOME/encodec-native/encodings); see docs/cache.md')
    .option('--no-cache', 'encode afresh and keep nothing (the output is the same)');
}
