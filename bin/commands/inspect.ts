/**
 * `encodec-native inspect FEATURES.npy`: what a feature file holds (shape, dtype, kind, TRs, value range,
 * codebook usage) and warnings when it looks wrong; `--plot FILE.png` draws code histograms and a TR x
 * codebook map. The summary (or JSON) goes to stdout; warnings do not change the exit code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Command } from 'commander';

import { toJson } from '../../lib/common/format';
import { formatInspection, inspectFeatures, plotFeatures } from '../../lib/report/inspect';
import { UsageError, extensionOf, parseTrOption, requireInputFile } from '../cli-util';

export function inspectCommand(): Command {
  return new Command('inspect')
    .description('summarise a feature or codes .npy file (shape, kind, TRs, value range, codebook usage) and warn when it looks wrong')
    .argument('<features.npy>', 'features written by `extract`, or codes written by `encode`')
    .option('--plot <file.png>', 'also draw per-codebook code histograms and a TR x codebook heat map to this PNG')
    .option('--json', 'print the summary as JSON')
    .option('--tr <seconds>', 'TR in seconds (default: from the metadata .csv beside the file, else 1.5)', parseTrOption)
    .action(async (file: string, opts: { plot?: string; json?: boolean; tr?: number }) => {
      requireInputFile('features file', file);
      if (extensionOf(file) !== '.npy') throw new UsageError(`inspect reads .npy feature files, got '${file}'`);
      if (opts.plot !== undefined) {
        if (extensionOf(opts.plot) !== '.png') throw new UsageError(`--plot must end in .png, got '${opts.plot}'`);
        const dir = path.dirname(path.resolve(opts.plot));
        if (!fs.existsSync(dir)) throw new UsageError(`--plot directory '${dir}' does not exist; create it first`);
      }
      const report = await inspectFeatures(file, { tr: opts.tr });
      if (opts.plot !== undefined) await plotFeatures(file, opts.plot, { tr: opts.tr });
      process.stdout.write(opts.json ? toJson(report) : formatInspection(report)); // JSON: the package's rule for NaN/Infinity
      if (opts.plot !== undefined && !opts.json) process.stderr.write(`plot -> ${opts.plot}\n`);
    });
}
