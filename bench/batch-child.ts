/**
 * Child process of `npm run bench`: memory of many varied clips in a process of its own, so that the peak RSS is
 * this work's alone (libtorch included). Clips of MIN-MAX s are cut (seeded) from SPEECH looped to SECONDS.
 *
 *   node dist/bench/batch-child.js batch MODEL.pt SPEECH.wav SECONDS COUNT MIN MAX
 *     encodeBatch(clips), then decodeBatch(codes): peak RSS after each, and the bytes of decoded audio the
 *     caller then holds (decodeBatch returns every clip's audio at once)
 *   node dist/bench/batch-child.js rss MODEL.pt SPEECH.wav SECONDS COUNT MIN MAX
 *     encodeMany then decodeMany over the clips: RSS after the first 100 clips and after all (rssOverClips)
 *
 * Prints JSON.
 */

import { loadAudio } from '../lib/io/audio';
import { Encodec } from '../lib/codec/codec';
import { peakRss } from '../lib/runtime/runtime';
import { loop, rssOverClips, variedClips } from './batch';

async function main(): Promise<void> {
  const [mode, modelPath, speechFile, secondsText, countText, minText, maxText] = process.argv.slice(2);
  if ((mode !== 'batch' && mode !== 'rss') || !maxText) {
    throw new Error('usage: batch-child batch|rss MODEL.pt SPEECH.wav SECONDS COUNT MIN MAX');
  }
  const audio = loop((await loadAudio(speechFile)).samples, Number(secondsText));
  const [count, min, max] = [Number(countText), Number(minText), Number(maxText)];
  const codec = await Encodec.load(modelPath);
  const loadedRssBytes = process.memoryUsage().rss;
  try {
    if (mode === 'rss') {
      const result = await rssOverClips(codec, audio, count, min, max);
      process.stdout.write(JSON.stringify({ ...result, loadedRssBytes }));
      return;
    }
    const clips = variedClips(audio, count, min, max);
    const start = performance.now();
    const codes = await codec.encodeBatch(clips, { bandwidth: 6 });
    const encodeSeconds = (performance.now() - start) / 1000;
    const encodePeakBytes = peakRss();
    const decoded = await codec.decodeBatch(codes);
    const decodePeakBytes = peakRss();
    const outputBytes = decoded.reduce((n, a) => n + a.byteLength, 0);
    process.stdout.write(JSON.stringify({ audioSeconds: outputBytes / 4 / 24000, encodeSeconds, loadedRssBytes, encodePeakBytes, decodePeakBytes, outputBytes }));
  } finally {
    codec.dispose();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
