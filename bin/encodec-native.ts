#!/usr/bin/env node
/** The encodec-native command line. Exit codes: 0 ok, 1 failure, 2 bad arguments or input values. */
import { Command } from 'commander';

import { reportError } from './cli-util';
import { compressCommand, decodeCommand, decompressCommand, encodeCommand } from './commands/codec';
import { modelCommand } from './commands/model';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { version } = require('../../package.json') as { version: string };

function program(): Command {
  const root = new Command('encodec-native')
    .description("Meta's EnCodec 24 kHz codec: encode audio to codes, decode codes to audio, prepare models")
    .version(version)
    .showHelpAfterError('(run with --help for usage)');
  root.addCommand(modelCommand());
  root.addCommand(encodeCommand());
  root.addCommand(decodeCommand());
  root.addCommand(compressCommand());
  root.addCommand(decompressCommand());
  // Usage errors throw (exit code 2 via reportError) instead of exiting with commander's code 1.
  const strict = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(strict);
  };
  strict(root);
  return root;
}

program()
  .parseAsync(process.argv)
  .catch(reportError);
