/**
 * Running the Python exporter (`exporter/export.py`), which turns a checkpoint (or seeded random weights)
 * into the TorchScript model file this package loads. It needs Python with PyTorch.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { PACKAGE_ROOT } from '../common/package-root';
import { codedError, typeError } from '../common/errors';
import { zipEntryNames } from './zip';
import type { FamilyName } from './family';

/** The exporter script shipped with the package. */
export const EXPORTER_SCRIPT = path.join(PACKAGE_ROOT, 'exporter', 'export.py');

/** The interpreter found (or being looked for): one probe per process, forgotten when it fails. */
let cachedPython: Promise<string> | undefined;

/** Whether `python -c 'import torch'` succeeds within 60 s (a child process: the event loop keeps running). */
function importsTorch(python: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(python, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60000 });
    child.on('error', () => resolve(false)); // not found, not executable
    child.on('close', (code) => resolve(code === 0)); // killed at the timeout: code null
  });
}

/**
 * Finds a Python interpreter that can `import torch`: `$ENCODEC_PYTHON`, then `/usr/bin/python3`
 * (Debian's python3-torch), then `python3` on the PATH. Rejects with ENCODEC_NO_PYTHON when none can.
 */
export function findPython(): Promise<string> {
  cachedPython ??= (async () => {
    const candidates = [process.env.ENCODEC_PYTHON, '/usr/bin/python3', 'python3'].filter(
      (c): c is string => typeof c === 'string' && c !== '',
    );
    for (const candidate of candidates) {
      if (await importsTorch(candidate)) return candidate;
    }
    throw codedError('ENCODEC_NO_PYTHON',
      `no Python with PyTorch found (tried ${candidates.join(', ')}). Install it (Debian/Ubuntu: ` +
        'apt-get install python3-torch) or point ENCODEC_PYTHON at a python that can `import torch`',
    );
  })();
  cachedPython.catch(() => {
    cachedPython = undefined; // a later call looks again (Python may have been installed since)
  });
  return cachedPython;
}

export interface ExportOptions {
  /** A checkpoint in Meta's (.th) or Hugging Face's (model.safetensors, pytorch_model.bin) layout. */
  checkpoint?: string;
  /** Export seeded random weights instead of a checkpoint (for tests and benchmarks). */
  random?: boolean;
  seed?: number;
  /**
   * With `random`: export a random entropy-coding LM for this codec ('encodec_24khz' or 'encodec_48khz') instead
   * of a codec model. (An LM checkpoint given as `checkpoint` is recognised without it.)
   */
  lm?: string;
  /** With `random`: which model (default 'encodec_24khz'). With `checkpoint`: the model it must hold (detected). */
  name?: FamilyName;
  /** With `random`: also write the random checkpoint here (.th via torch.save, or .safetensors). */
  checkpointOut?: string;
  /** Tensor names of `checkpointOut`: Meta's ('official', default) or Hugging Face's ('huggingface'). */
  layout?: 'official' | 'huggingface';
  /** Where to write the model (written atomically). */
  out: string;
  /** Called with each line the exporter prints on stderr (progress, warnings). */
  onLog?: (line: string) => void;
}

/** Exit status and message of a failed export (code ENCODEC_EXPORT). */
export class ExportError extends Error {
  readonly code = 'ENCODEC_EXPORT';
  constructor(message: string, readonly exitCode: number) {
    super(message);
    this.name = 'ExportError';
  }
}

/**
 * Refuses, before Python runs, a file that cannot be a checkpoint: a TorchScript archive (a model file, which is
 * code: torch.load would hand it to torch.jit.load and run it) or a file that is neither a PyTorch file (ZIP or
 * pickle) nor safetensors. Directories (a Hugging Face model folder) are left to the exporter.
 */
export function checkCheckpointFile(file: string): void {
  if (fs.statSync(file).isDirectory()) return;
  const head = Buffer.alloc(16);
  const fd = fs.openSync(file, 'r');
  let n: number;
  try {
    n = fs.readSync(fd, head, 0, 16, 0);
  } finally {
    fs.closeSync(fd);
  }
  if (n >= 2 && head[0] === 0x50 && head[1] === 0x4b) {
    let names: string[];
    try {
      names = zipEntryNames(file);
    } catch {
      return; // a damaged archive: the exporter says what torch makes of it
    }
    if (names.some((name) => /(^|\/)code\/|(^|\/)constants\.pkl$/.test(name))) {
      throw codedError('ENCODEC_MODEL_FILE',
        `'${file}' is already a model file (a TorchScript archive), not a checkpoint: use it directly ` +
          '(--model FILE; `model info FILE` shows what it holds), or export from the checkpoint it came from');
    }
    return;
  }
  if (n >= 1 && head[0] === 0x80) return; // a pickle (torch.save's legacy format)
  // safetensors: an 8-byte little-endian header length that fits the file, then the JSON header
  if (n >= 9 && head[8] === 0x7b && head.readBigUInt64LE(0) <= BigInt(fs.statSync(file).size - 8)) return;
  throw codedError('ENCODEC_MODEL_FILE',
    `'${file}' is not a checkpoint: neither a PyTorch file (ZIP archive or pickle) nor safetensors; pass Meta's ` +
      "encodec_24khz-d7cc33bc.th or Hugging Face's model.safetensors / pytorch_model.bin");
}

/** Runs the exporter; resolves when the model file is written. */
export async function exportModel(options: ExportOptions): Promise<void> {
  if (!options.out) throw typeError('out (the model file to write) is required');
  if (!options.random && !options.checkpoint) throw typeError('pass a checkpoint file, or random: true');
  if (options.checkpoint && !fs.existsSync(options.checkpoint)) {
    throw codedError('ENCODEC_MODEL_FILE', `checkpoint file '${options.checkpoint}' does not exist`);
  }
  if (options.checkpoint) checkCheckpointFile(options.checkpoint);
  const outDir = path.dirname(path.resolve(options.out));
  if (!fs.existsSync(outDir)) throw Object.assign(new Error(`output directory '${outDir}' does not exist; create it first`), { code: 'ENOENT' });
  const args = [EXPORTER_SCRIPT, '--out', options.out];
  if (options.random) {
    if (options.lm !== undefined) args.push('--lm', '--codec', options.lm);
    args.push('--random', '--seed', String(options.seed ?? 0));
    if (options.checkpointOut) args.push('--checkpoint-out', options.checkpointOut);
    if (options.layout) args.push('--layout', options.layout);
  } else {
    args.push('--checkpoint', options.checkpoint as string);
  }
  if (options.name) args.push('--name', options.name);
  const python = await findPython();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(python, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const lines: string[] = [];
    // The exporter's own error ('export.py: error: ...', possibly several lines) becomes the rejection's
    // message; it is not also logged, so the CLI prints it once.
    let errorAt = -1;
    let pending = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      pending += chunk;
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) {
        if (errorAt < 0 && /^[\w.]+\.py: error: /.test(line)) errorAt = lines.length;
        lines.push(line);
        if (errorAt < 0) options.onLog?.(line);
      }
    });
    child.on('error', (err) => reject(new ExportError(`could not run ${python}: ${err.message}`, 1)));
    child.on('close', (code) => {
      if (pending) lines.push(pending);
      if (code === 0) return resolve();
      const tail = errorAt >= 0 ? lines.slice(errorAt) : lines.slice(-8);
      const message = tail.filter((l) => l.trim() !== '').join('\n') || `exporter exited with code ${code}`;
      reject(new ExportError(message, code === 2 ? 2 : 1));
    });
  });
}
