/**
 * `encodec-native roundtrip INPUT --out DIR`: runs an input through the feature pipeline and back at each
 * bandwidth (or the mel / Griffin-Lim path) and writes the audio, metrics and spectrogram picture to DIR.
 */
import * as fs from 'node:fs';

import { Command } from 'commander';

import { parseBandwidth } from '../../lib/codec/bandwidth';
import { parseDevice } from '../../lib/codec/device';
import { DEFAULT_REPORT_BANDWIDTHS, formatRoundTripReport, roundTripReport } from '../../lib/report/report';
import { UsageError, parseIntegerOption, parseTrOption, requireInputFile, makeOutDir } from '../cli-util';

/** Collects repeated or space-separated `--bandwidth` values. */
function collectBandwidth(text: string, previous: number[] | undefined): number[] {
  let value: number;
  try {
    value = parseBandwidth(text);
  } catch (err) {
    throw new UsageError(`--bandwidth: ${(err as Error).message}`);
  }
  return [...(previous ?? []), value];
}

interface RoundtripCliOptions {
  out: string;
  model?: string;
  bandwidth?: number[];
  tr: number;
  maxTrs?: number;
  mode: string;
  threads?: number;
  device: string;
}

export function roundtripCommand(): Command {
  return new Command('roundtrip')
    .description(
      'encode INPUT into TR features and back at each bandwidth (or via mel + Griffin-Lim) and write original.wav, ' +
        'reconstructed_<bw>kbps.wav, metrics.json/.txt (SNR, SI-SNR, STOI, ESTOI, time, memory) and spectrograms.png to DIR',
    )
    .argument('<input>', 'audio or video file')
    .requiredOption('--out <dir>', 'directory to write the report into (created if missing)')
    .option('--model <model.pt>', 'model file (default: $ENCODEC_MODEL, then the default cache path)')
    .option(
      '--bandwidth <kbps...>',
      `bandwidths to compare: 1.5, 3, 6, 12, 24 (repeat or list; default ${DEFAULT_REPORT_BANDWIDTHS.join(' ')})`,
      collectBandwidth,
    )
    .option('--tr <seconds>', 'TR: features are extracted per TR as for fMRI', parseTrOption, 1.5)
    .option('--max-trs <n>', 'use only the first N TRs of the input', parseIntegerOption('--max-trs', 1))
    .option('--mode <mode>', "'encodec' (the codec) or 'mel' (mel features + Griffin-Lim, no model)", 'encodec')
    .option('--threads <n>', 'intra-op threads (default: all cores)', parseIntegerOption('--threads', 1, 1024))
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N'", 'cpu')
    .action(async (input: string, opts: RoundtripCliOptions) => {
      requireInputFile('input file', input);
      if (opts.mode !== 'encodec' && opts.mode !== 'mel') throw new UsageError(`--mode must be 'encodec' or 'mel', got '${opts.mode}'`);
      if (opts.mode === 'mel' && (opts.bandwidth || opts.model)) {
        throw new UsageError('--bandwidth and --model apply to --mode encodec; the mel path uses no model');
      }
      const device = parseDevice(opts.device, '--device');
      if (fs.existsSync(opts.out) && !fs.statSync(opts.out).isDirectory()) throw new UsageError(`--out '${opts.out}' is a file; give a directory`);
      makeOutDir(opts.out); // removed at exit if the report was refused before writing into it
      const report = await roundTripReport(input, {
        outDir: opts.out,
        model: opts.model,
        bandwidths: opts.bandwidth,
        tr: opts.tr,
        maxTrs: opts.maxTrs,
        mode: opts.mode,
        threads: opts.threads,
        device,
      });
      process.stdout.write(formatRoundTripReport(report));
      process.stderr.write(`report -> ${opts.out} (${report.files.reconstructions.length + 4} files)\n`);
    });
}
