/**
 * Child process of `npm run bench`: the scanner-clock path of `extract` on one long file, latents resampled by
 * Lanczos at the volumes and FIR-delayed (`extractFeatures(file, { output: 'latents', resample: 'lanczos', delays:
 * [1, 2, 3, 4], onset, runTrs })`, streamed), on THREADS threads (default 2); prints its seconds, shape and peak RSS
 * (libtorch included) as JSON. A process of its own, so that the peak RSS is this run's alone.
 *
 *   node dist/bench/run-child.js MODEL.pt FILE SECONDS [THREADS]
 */

import { Encodec } from '../lib/codec/codec';
import { peakRss } from '../lib/runtime/runtime';
import { extractFeatures } from '../lib/fmri/features';

async function main(): Promise<void> {
  const [modelPath, file, secondsText, threadsText] = process.argv.slice(2);
  if (!modelPath || !file || !secondsText) throw new Error('usage: run-child MODEL.pt FILE SECONDS [THREADS]');
  const codec = await Encodec.load(modelPath, { threads: Number(threadsText ?? 2) });
  const loadedRss = process.memoryUsage().rss;
  const onset = 6; // the movie starts 6 s into the run, which ends 4.5 s after it
  const tr = 1.5;
  const runTrs = Math.floor((onset + Number(secondsText) + 4.5) / tr);
  const start = performance.now();
  const result = await extractFeatures(file, { model: codec, output: 'latents', resample: 'lanczos', delays: [1, 2, 3, 4], onset, tr, runTrs });
  const seconds = (performance.now() - start) / 1000;
  const maxRssBytes = peakRss();
  codec.dispose();
  process.stdout.write(JSON.stringify({ seconds, shape: result.shape, runSeconds: runTrs * tr, maxRssBytes, loadedRssBytes: loadedRss }));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
