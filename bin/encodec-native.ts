#!/usr/bin/env node
/** The encodec-native command line. Exit codes (docs/errors.md): 0 ok, 1 failure (missing or unreadable input too), 2 bad usage. */
import { Command } from 'commander';

import { setVerbose } from '../lib/common/log';
import { removeTempFiles } from '../lib/common/atomic';
import { interruptedSummary } from './batch';
import { reportError } from './cli-util';
import { compressCommand, decodeCommand, decompressCommand, encodeCommand } from './commands/codec';
import { extractCommand } from './commands/extract';
import { modelCommand } from './commands/model';
import { reconstructCommand } from './commands/reconstruct';
import { metricsCommand } from './commands/metrics';
import { doctorCommand } from './commands/doctor';
import { inspectCommand } from './commands/inspect';
import { roundtripCommand } from './commands/roundtrip';
import { cacheCommand } from './commands/cache';
import { framesCommand } from './commands/frames';
import { statusCommand } from './commands/status';
import { mergeCommand } from './commands/merge';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { version } = require('../../package.json') as { version: string };

function program(): Command {
  const root = new Command('encodec-native')
    .description("Meta's EnCodec neural audio codecs (24 kHz mono, 48 kHz stereo): encode audio to codes and back, .ecdc files, fMRI features per TR, models")
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .option('--verbose', 'print each stage with sizes and timings to stderr (same as DEBUG=encodec-native)')
    // As soon as the flag is parsed, so errors in later option values also print their stack.
    .on('option:verbose', () => setVerbose(true))
    .hook('preAction', (root) => setVerbose(root.opts().verbose === true));
  root.addCommand(modelCommand());
  root.addCommand(encodeCommand());
  root.addCommand(decodeCommand());
  root.addCommand(compressCommand());
  root.addCommand(decompressCommand());
  root.addCommand(extractCommand());
  root.addCommand(statusCommand());
  root.addCommand(mergeCommand());
  root.addCommand(reconstructCommand());
  root.addCommand(metricsCommand());
  root.addCommand(doctorCommand());
  root.addCommand(roundtripCommand());
  root.addCommand(inspectCommand());
  root.addCommand(framesCommand());
  root.addCommand(cacheCommand());
  // Usage errors throw (exit code 2 via reportError) instead of exiting with commander's code 1.
  const strict = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(strict);
  };
  strict(root);
  return root;
}

// Ctrl-C: say what was done and how to go on, remove temporary files of writes in flight, exit 130 as shells do.
process.once('SIGINT', () => {
  removeTempFiles();
  process.stderr.write(`\nencodec-native: interrupted: ${interruptedSummary()}\n`);
  process.exit(130);
});

// A reader that stops early (`encodec-native doctor | head -3`) closes the pipe: stop quietly, like other tools.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

program()
  .parseAsync(process.argv)
  .catch(reportError);
