/**
 * Test models: seeded random-weight EnCodec models exported once by exporter/export.py and cached in
 * test/.cache, keyed by the exporter's source so a change to it re-exports them.
 */
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import './encoding-cache';
import { exportModel } from '../../lib/model/exporter';
import { PACKAGE_ROOT } from '../../lib/common/package-root';

export const CACHE_DIR = path.join(PACKAGE_ROOT, 'test', '.cache');

function exporterHash(): string {
  const hash = crypto.createHash('sha256');
  const dir = path.join(PACKAGE_ROOT, 'exporter');
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.py')).sort()) {
    hash.update(name).update(fs.readFileSync(path.join(dir, name)));
  }
  return hash.digest('hex').slice(0, 12);
}

const pending = new Map<string, Promise<string>>();

/** Path of the random model with `seed`, exported on first use. */
export function randomModel(seed = 0): Promise<string> {
  const file = path.join(CACHE_DIR, `random-seed${seed}-${exporterHash()}.pt`);
  let job = pending.get(file);
  if (!job) {
    job = (async () => {
      if (!fs.existsSync(file)) {
        fs.mkdirSync(CACHE_DIR, { recursive: true });
        await exportModel({ random: true, seed, out: file });
      }
      return file;
    })();
    pending.set(file, job);
  }
  return job;
}

/** The random encodec_48khz model with `seed` and its checkpoint in Meta's layout (for the eager reference). */
export function randomModel48(seed = 0): Promise<{ model: string; checkpoint: string }> {
  const base = path.join(CACHE_DIR, `random48-seed${seed}-${exporterHash()}`);
  const model = `${base}.pt`;
  const checkpoint = `${base}.th`;
  let job = pending.get(model);
  if (!job) {
    job = (async () => {
      if (!fs.existsSync(model) || !fs.existsSync(checkpoint)) {
        fs.mkdirSync(CACHE_DIR, { recursive: true });
        await exportModel({ random: true, name: 'encodec_48khz', seed, out: model, checkpointOut: checkpoint });
      }
      return model;
    })();
    pending.set(model, job);
  }
  return job.then(() => ({ model, checkpoint }));
}

const pendingCheckpoints = new Map<string, Promise<{ official: string; huggingface: string }>>();

/**
 * The random 24 kHz checkpoint with `seed` (exporter/random_checkpoint.py) in both layouts, Meta's (`.th`) and
 * Hugging Face's (`.safetensors`), made once: its weights take ~25 s to calibrate.
 */
export function randomCheckpoint(seed = 0): Promise<{ official: string; huggingface: string }> {
  const base = path.join(CACHE_DIR, `random-checkpoint-seed${seed}-${exporterHash()}`);
  let job = pendingCheckpoints.get(base);
  if (!job) {
    job = (async () => {
      const files = { official: `${base}.th`, huggingface: `${base}.safetensors` };
      if (!fs.existsSync(files.official) || !fs.existsSync(files.huggingface)) {
        fs.mkdirSync(CACHE_DIR, { recursive: true });
        const code = [
          'import sys',
          `sys.path.insert(0, ${JSON.stringify(path.join(PACKAGE_ROOT, 'exporter'))})`,
          'import random_checkpoint as rc',
          `sd = rc.make_random_state_dict(${seed})`,
          `rc.save_checkpoint(sd, ${JSON.stringify(files.official)}, "official")`,
          `rc.save_checkpoint(sd, ${JSON.stringify(files.huggingface)}, "huggingface")`,
        ].join('\n');
        await new Promise<void>((resolve, reject) => {
          execFile('/usr/bin/python3', ['-c', code], (err, _stdout, stderr) => (err ? reject(new Error(`random checkpoint: ${stderr || err.message}`)) : resolve()));
        });
      }
      return files;
    })();
    pendingCheckpoints.set(base, job);
  }
  return job;
}

const pendingLm = new Map<string, Promise<{ lm: string; checkpoint: string }>>();

/**
 * A random entropy-coding LM for `codec` with `seed`: the exported file (`lm`) and its weights in Meta's checkpoint
 * layout (`checkpoint`, for the eager reference), exported on first use.
 */
export function randomLm(codec: 'encodec_24khz' | 'encodec_48khz', seed = 0): Promise<{ lm: string; checkpoint: string }> {
  const base = path.join(CACHE_DIR, `random-lm-${codec}-seed${seed}-${exporterHash()}`);
  let job = pendingLm.get(base);
  if (!job) {
    job = (async () => {
      const files = { lm: `${base}.pt`, checkpoint: `${base}.th` };
      if (!fs.existsSync(files.lm) || !fs.existsSync(files.checkpoint)) {
        fs.mkdirSync(CACHE_DIR, { recursive: true });
        await exportModel({ random: true, lm: codec, seed, out: files.lm, checkpointOut: files.checkpoint });
      }
      return files;
    })();
    pendingLm.set(base, job);
  }
  return job;
}
