/** The Python exporter's runner (lib/model/exporter.ts): finding a Python with PyTorch without blocking. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { expect } from 'chai';

import { PACKAGE_ROOT } from '../../lib/common/package-root';
import { tempDir } from '../helpers/temp-dir';

/**
 * Runs findPython in a fresh Node process (its answer is cached per process) with ENCODEC_PYTHON set to
 * `python`, counting the ticks of a 10 ms timer while it probes; returns what it resolved to and the ticks.
 */
function probe(python: string): { found?: string; error?: { code?: string; message: string }; ticks: number; ms: number } {
  const script = `
    const { findPython } = require(${JSON.stringify(path.join(PACKAGE_ROOT, 'dist', 'lib', 'model', 'exporter.js'))});
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const start = Date.now();
    Promise.resolve()
      .then(() => findPython())
      .then((found) => ({ found }), (err) => ({ error: { code: err.code, message: err.message } }))
      .then((result) => {
        clearInterval(timer);
        process.stdout.write(JSON.stringify({ ...result, ticks, ms: Date.now() - start }));
      });
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ENCODEC_PYTHON: python } });
  if (r.status !== 0) throw new Error(`probe process failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('exporter: findPython', function () {
  const dir = tempDir('exporter');

  /** An executable that sleeps `seconds`, then exits with `status` (a python whose `import torch` takes that long). */
  function slowPython(name: string, seconds: number, status: number): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `#!/bin/sh\nsleep ${seconds}\nexit ${status}\n`, { mode: 0o755 });
    return file;
  }

  it('keeps the event loop running while the probe waits for Python', function () {
    const python = slowPython('slow-python', 1, 0);
    const result = probe(python);
    expect(result.found).to.equal(python);
    expect(result.ms).to.be.at.least(900);
    // ~100 ticks of a 10 ms timer in 1 s when the loop is free; none when the probe blocks it
    expect(result.ticks).to.be.at.least(10);
  });

  it('passes over an interpreter without PyTorch to the next candidate, without blocking either', function () {
    const python = slowPython('no-torch-python', 1, 1);
    const result = probe(python);
    expect(result.error, result.error?.message).to.equal(undefined);
    expect(result.found).to.be.oneOf(['/usr/bin/python3', 'python3']); // the next candidates (the tests' Python has torch)
    expect(result.ticks).to.be.at.least(10);
  });
});
