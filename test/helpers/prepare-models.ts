/**
 * mocha's set-up for `npm test` (`--require`, loaded by the main process and by each parallel worker): makes every
 * cached test model (test/helpers/model.ts) before the test files run, two at a time, so that the files, run in
 * two workers at once, find them made instead of each exporting the same model. A single file run without it
 * exports what it needs on first use.
 */
import './encoding-cache';
import { randomCheckpoint, randomLm, randomModel, randomModel48 } from './model';

// Two workers share the cores, each with libtorch's and OpenBLAS's OpenMP threads: threads that wait at a barrier
// should sleep, not spin on a core the other worker needs (measured: the same files 82 s instead of 104 s).
// Set here, before any worker loads libtorch (libgomp reads it when it is loaded); the results do not depend on it.
process.env.OMP_WAIT_POLICY ??= 'PASSIVE';

const JOBS: (() => Promise<unknown>)[] = [
  () => randomModel(0),
  () => randomModel48(0),
  () => randomCheckpoint(3),
  () => randomModel48(1),
  () => randomLm('encodec_24khz', 0),
  () => randomLm('encodec_48khz', 1),
  () => randomLm('encodec_24khz', 3),
];

export async function mochaGlobalSetup(): Promise<void> {
  const start = Date.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < JOBS.length) await JOBS[next++]();
  };
  await Promise.all([worker(), worker()]);
  process.stderr.write(`test models ready in ${((Date.now() - start) / 1000).toFixed(1)} s (test/.cache)\n`);
}
