/**
 * mocha's global setup for `npm test` (`--require`): makes every cached test model (test/helpers/model.ts) before
 * the test files run, two at a time, so that the files, run in parallel workers, find them made instead of each
 * exporting the same model at once. A single file run without it exports what it needs on first use.
 */
import { randomCheckpoint, randomLm, randomModel, randomModel48 } from './model';

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
