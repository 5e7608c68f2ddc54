/** Running the built CLI (dist/bin/encodec-native.js) as a user would, and other programs the tests start. */
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const CLI = path.resolve(__dirname, '..', '..', 'bin', 'encodec-native.js');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI synchronously with extra environment variables. */
export function cli(args: string[], env: Record<string, string | undefined> = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI without blocking the event loop (needed when the test also serves HTTP). */
export function cliAsync(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return runProcess(process.execPath, [CLI, ...args], env);
}

/** Runs a program without blocking the event loop; resolves with its exit status and output, whatever they are. */
export function runProcess(command: string, args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
