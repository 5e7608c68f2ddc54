/**
 * Child process of `npm run bench`: streaming-encodes one file at 6 kbps with the default chunking
 * (`Encodec.encodeStream(streamAudio(file))`) and prints its seconds, frames and peak RSS (libtorch included)
 * as JSON. A process of its own, so that the peak RSS is this encode's alone.
 *
 *   node dist/bench/stream-child.js MODEL.pt FILE
 */

import { streamAudio } from '../lib/io/audio';
import { Encodec } from '../lib/codec/codec';
import { peakRss } from '../lib/runtime/runtime';

async function main(): Promise<void> {
  const [modelPath, file] = process.argv.slice(2);
  if (!modelPath || !file) throw new Error('usage: stream-child MODEL.pt FILE');
  const codec = await Encodec.load(modelPath);
  const loadedRss = process.memoryUsage().rss;
  const start = performance.now();
  const codes = await codec.encodeStream(streamAudio(file), { bandwidth: 6 });
  const seconds = (performance.now() - start) / 1000;
  const maxRssBytes = peakRss();
  codec.dispose();
  process.stdout.write(JSON.stringify({ seconds, frames: codes.nFrames, maxRssBytes, loadedRssBytes: loadedRss }));
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
