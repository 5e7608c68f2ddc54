/**
 * `encodec-native reconstruct`: features (or an `.ecdc` file) back to audio, to listen to what the features
 * keep. Codes decode at 24 kHz; mel features are inverted with Griffin-Lim at their own rate (22.05 kHz by
 * default). TR features give exactly n_trs * tr seconds (see lib/fmri/features-audio.ts for how gaps are filled).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Command } from 'commander';

import { Encodec } from '../../lib/codec/codec';
import { parseDevice } from '../../lib/codec/device';
import { withCodec } from '../../lib/codec/with-codec';
import { readEcdc } from '../../lib/io/ecdc';
import { FeatureAudio, featuresToAudio } from '../../lib/fmri/features-audio';
import { readFeatures } from '../../lib/fmri/features-file';
import { writeWav } from '../../lib/io/wav';
import { UsageError, channelsOf, extensionOf, parseIntegerOption, parseTrOption, requireInputFile } from '../cli-util';
import { readEcdcForCodec } from '../ecdc-input';
import { plural } from '../../lib/common/format';

interface ReconstructCliOptions {
  out: string;
  model?: string;
  device: string;
  threads?: number;
  tr?: string;
  float?: boolean;
  lmModel?: string;
  lmThreads?: number;
}

function withModel<T>(opts: ReconstructCliOptions, work: (codec: Encodec) => Promise<T>): Promise<T> {
  return withCodec(opts.model, { device: parseDevice(opts.device, '--device'), threads: opts.threads }, work);
}

export function reconstructCommand(): Command {
  return new Command('reconstruct')
    .description('turn features (.npy from `extract`, with its .csv) or an .ecdc file back into a WAV file')
    .argument('<features>', 'features .npy (codes or mel), or an .ecdc file')
    .requiredOption('--out <out.wav>', 'WAV file to write')
    .option('--model <model.pt>', 'model file for codes (default: $ENCODEC_MODEL, then the default cache path)')
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N'", 'cpu')
    .option('--threads <n>', 'intra-op threads (default: all cores)', parseIntegerOption('--threads', 1, 1024))
    .option('--tr <seconds>', 'TR the features were extracted with (default: from the .csv, else 1.5)')
    .option('--float', 'write 32-bit float WAV instead of 16-bit PCM')
    .option('--lm-model <lm.pt>', 'entropy-coding LM for .ecdc files with "lm": true (default: $ENCODEC_LM_MODEL, then beside the model)')
    .option('--lm-threads <n>', "threads of the LM's steps (default 1; must match the writer's)", parseIntegerOption('--lm-threads', 1, 1024))
    .action(async (input: string, opts: ReconstructCliOptions) => {
      if (extensionOf(opts.out) !== '.wav') throw new UsageError(`--out must end in .wav, got '${opts.out}'`);
      const dir = path.dirname(path.resolve(opts.out));
      if (!fs.existsSync(dir)) throw new UsageError(`output directory '${dir}' does not exist; create it first`);
      const tr = opts.tr === undefined ? undefined : parseTrOption(opts.tr);
      requireInputFile('features file', input);
      const ext = extensionOf(input);
      let audio: FeatureAudio;
      let what: string;
      if (ext === '.ecdc') {
        const { codes, metadata, decoded } = await withModel(opts, async (codec) => {
          // refuses a file of the other model (exit 2) and decodes LM-coded files with their LM
          const file = await readEcdcForCodec(input, codec, opts.lmModel, opts.lmThreads);
          return { ...file, decoded: { samples: await codec.decode(file.codes), channels: codec.info.channels, sampleRate: codec.info.sample_rate } };
        });
        const channels = channelsOf(decoded.samples, decoded.channels, metadata.audioLength);
        await writeWav(opts.out, channels.length === 1 ? channels[0] : channels, { sampleRate: decoded.sampleRate, format: opts.float ? 'float32' : 'pcm16' });
        const seconds = (channels[0].length / decoded.sampleRate).toFixed(3);
        process.stderr.write(
          `${input}: ${plural(codes.nQ, 'codebook')} x ${plural(codes.nFrames, 'frame')}${metadata.lm ? ' (LM-coded)' : ''} -> ${opts.out} ` +
            `(${seconds} s at ${decoded.sampleRate} Hz, ${decoded.channels} channel(s))\n`,
        );
        return;
      } else if (ext === '.npy') {
        const features = await readFeatures(input, { tr });
        what = `${features.kind} (${features.shape.join(' x ')}), TR ${features.tr} s`;
        // codes of encodec_48khz (features.model) need no model: featuresToAudio says why they cannot be decoded
        if (features.kind === 'codes' && features.model === undefined) {
          audio = await withModel(opts, (codec) => featuresToAudio(features, { model: codec }));
        } else {
          audio = await featuresToAudio(features);
        }
      } else {
        throw new UsageError(`features must be a .npy written by \`encodec-native extract\` or an .ecdc file, got '${input}'`);
      }
      await writeWav(opts.out, audio.samples, { sampleRate: audio.sampleRate, format: opts.float ? 'float32' : 'pcm16' });
      const seconds = (audio.samples.length / audio.sampleRate).toFixed(3);
      process.stderr.write(`${input}: ${what} -> ${opts.out} (${seconds} s at ${audio.sampleRate} Hz)\n`);
    });
}
