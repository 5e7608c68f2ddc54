/**
 * Child process of `npm run bench` (row `realign`): one step of the two-stage pipeline on a long file, in a process of
 * its own so that its peak RSS is its own. Prints JSON: seconds, shape, peak RSS, whether a model was loaded.
 *
 *   node dist/bench/realign-child.js STEP MODEL.pt FILE CACHE_DIR
 *
 * STEP: `baseline` (the single-stage cost: encodeStream at 3 kbps, what extract computed before the cache),
 * `first-codes` / `first-latents` (extract with an empty cache: encode, keep, align), or a re-align from the warm
 * cache: `tr2-onset`, `lanczos-delays`, `bandwidth`, `embeddings`.
 */
import { Encodec } from '../lib/codec/codec';
import { peakRss } from '../lib/runtime/runtime';
import { streamAudio } from '../lib/io/audio';
import { extractFeatures } from '../lib/fmri/features';
import type { ExtractOptions } from '../lib/fmri/extract-options';

const STEPS: Record<string, ExtractOptions> = {
  'first-codes': { bandwidth: 3 },
  'first-latents': { output: 'latents', resample: 'lanczos' },
  'tr2-onset': { tr: 2, onset: 6, bandwidth: 3 },
  'lanczos-delays': { output: 'latents', resample: 'lanczos', delays: [1, 2, 3, 4], zscore: true, sliceTimeRef: 0.5 },
  bandwidth: { bandwidth: 12 },
  embeddings: { output: 'embeddings', bandwidth: 6, resample: 'lanczos', delays: [1, 2, 3, 4] },
};

async function main(): Promise<void> {
  const [step, modelPath, file, cache] = process.argv.slice(2);
  const loads = { count: 0 };
  const load = Encodec.load;
  (Encodec as { load: typeof load }).load = (...args: Parameters<typeof load>) => {
    loads.count++;
    return load.apply(Encodec, args);
  };
  let shape: number[];
  const start = performance.now();
  if (step === 'baseline') {
    const codec = await Encodec.load(modelPath, { warmup: false });
    const codes = await codec.encodeStream(streamAudio(file), { bandwidth: 3 });
    shape = [codes.nQ, codes.nFrames];
    codec.dispose();
  } else {
    const options = STEPS[step];
    if (!options) throw new Error(`unknown step ${step}`);
    shape = (await extractFeatures(file, { model: modelPath, cache, ...options })).shape;
  }
  const seconds = (performance.now() - start) / 1000;
  process.stdout.write(JSON.stringify({ step, seconds, shape, maxRssBytes: peakRss(), modelLoads: loads.count }));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
