/**
 * `encodec-native metrics REF TEST`: SNR, SI-SNR, STOI and ESTOI of TEST against REF.
 *
 * Both files are read as mono (channels averaged). TEST is resampled (by ffmpeg) to REF's sample rate, and the
 * metrics are computed at that rate (STOI resamples to 10 kHz itself). When the lengths differ (a decoded clip is
 * padded to whole 320-sample frames), the first min(length) samples of each are compared and the command says so.
 */
import * as fs from 'node:fs';

import { Command } from 'commander';

import { loadAudio, probeAudio } from '../../lib/io/audio';
import { computeMetrics } from '../../lib/quality/metrics';
import { formatDb, formatScore, toJson, plural } from '../../lib/common/format';
import { probeWav } from '../../lib/io/wav';
import { UsageError, extensionOf, requireInputFile } from '../cli-util';

/** The sample rate of a file: from its WAV header, else from ffprobe. */
async function sampleRateOf(file: string): Promise<number> {
  if (extensionOf(file) === '.wav') {
    try {
      return (await probeWav(file)).sampleRate;
    } catch {
      // not a plain WAV after all: let ffprobe read it
    }
  }
  return (await probeAudio(file)).sampleRate;
}

export function metricsCommand(): Command {
  return new Command('metrics')
    .description('objective quality of TEST against the reference REF: SNR, SI-SNR, STOI and extended STOI')
    .argument('<ref>', 'reference (clean) audio: WAV, or any file ffmpeg reads')
    .argument('<test>', 'audio to score against it (e.g. the decoded output); resampled to REF\'s rate')
    .option('--json', 'print JSON')
    .action(async (ref: string, test: string, opts: { json?: boolean }) => {
      for (const [what, file] of [['reference', ref], ['test', test]]) {
        requireInputFile(`${what} file`, file);
      }
      const sampleRate = await sampleRateOf(ref);
      const [a, b] = await Promise.all([loadAudio(ref, { sampleRate }), loadAudio(test, { sampleRate })]);
      const compared = Math.min(a.samples.length, b.samples.length);
      if (compared === 0) throw new UsageError(`'${a.samples.length === 0 ? ref : test}' holds no audio samples`);
      const metrics = computeMetrics(a.samples, b.samples, sampleRate);
      const lengths = { ref: a.samples.length, test: b.samples.length, compared };
      if (opts.json) {
        // JSON has no Infinity: identical signals report snr/siSnr as null with "identical": true (toJson's rule).
        process.stdout.write(toJson({ ...metrics, sampleRate, samples: lengths }));
        return;
      }
      if (a.samples.length !== b.samples.length) {
        process.stderr.write(
          `note: '${ref}' has ${plural(a.samples.length, 'sample')} and '${test}' ${b.samples.length} at ${sampleRate} Hz; ` +
            `comparing the first ${compared}\n`,
        );
      }
      const score = (v: number | null): string => formatScore(v, 4, 'n/a (under 0.4 s of speech to score)');
      const rows: [string, string][] = [
        ['SNR', formatDb(metrics.snr)],
        ['SI-SNR', formatDb(metrics.siSnr)],
        ['STOI', score(metrics.stoi)],
        ['ESTOI', score(metrics.estoi)],
        ['compared', `${compared} samples (${(compared / sampleRate).toFixed(2)} s) at ${sampleRate} Hz`],
      ];
      for (const [k, v] of rows) process.stdout.write(`${k.padEnd(9)} ${v}\n`);
    });
}
