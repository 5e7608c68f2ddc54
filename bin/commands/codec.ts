/** `encodec-native encode` and `decode`. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Command } from 'commander';

import { loadAudio } from '../../lib/audio';
import { parseBandwidth } from '../../lib/bandwidth';
import { Device, Encodec } from '../../lib/codec';
import { readCodesNpy, writeCodesNpy } from '../../lib/codes-file';
import { resolveModelPath } from '../../lib/model-file';
import { writeNpy } from '../../lib/npy';
import { writeWav } from '../../lib/wav';
import { UsageError, extensionOf, parseIntegerOption } from '../cli-util';

interface ModelOptions {
  model?: string;
  device: string;
  threads?: number;
}

function addModelOptions(command: Command): Command {
  return command
    .option('--model <model.pt>', 'model file (default: $ENCODEC_MODEL, then the default cache path)')
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N'", 'cpu')
    .option('--threads <n>', 'intra-op threads (default: all cores)', parseIntegerOption('--threads', 1, 1024));
}

function checkOutput(out: string, extensions: string[]): string {
  const ext = extensionOf(out);
  if (!extensions.includes(ext)) {
    throw new UsageError(`--out must end in ${extensions.join(' or ')}, got '${out}'`);
  }
  const dir = path.dirname(path.resolve(out));
  if (!fs.existsSync(dir)) throw new UsageError(`output directory '${dir}' does not exist; create it first`);
  return ext;
}

function checkDevice(device: string): Device {
  if (!/^(cpu|cuda|cuda:\d+)$/.test(device)) throw new UsageError(`--device must be 'cpu', 'cuda' or 'cuda:N', got '${device}'`);
  return device as Device;
}

async function loadModel(opts: ModelOptions): Promise<Encodec> {
  return Encodec.load(resolveModelPath(opts.model), { device: checkDevice(opts.device), threads: opts.threads });
}

export function encodeCommand(): Command {
  return addModelOptions(
    new Command('encode')
      .description('encode audio (any format ffmpeg reads; WAV without it) to codes: .npy of shape [n_q, n_frames], int16')
      .argument('<audio>', 'input audio or video file')
      .requiredOption('--out <codes.npy>', 'codes file to write')
      .option('--bandwidth <kbps>', 'bandwidth: 1.5, 3, 6, 12 or 24 kbps (2, 4, 8, 16, 32 codebooks)', '6'),
  ).action(async (audio: string, opts: ModelOptions & { out: string; bandwidth: string }) => {
    const bandwidth = parseBandwidth(opts.bandwidth);
    checkOutput(opts.out, ['.npy']);
    const codec = await loadModel(opts);
    try {
      const { samples } = await loadAudio(audio, { sampleRate: codec.info.sample_rate });
      const codes = await codec.encode(samples, { bandwidth });
      await writeCodesNpy(opts.out, codes);
      process.stderr.write(`${audio}: ${codes.nQ} codebooks x ${codes.nFrames} frames -> ${opts.out}\n`);
    } finally {
      codec.dispose();
    }
  });
}

export function decodeCommand(): Command {
  return addModelOptions(
    new Command('decode')
      .description('decode codes (.npy of shape [n_q, n_frames]) to 24 kHz mono audio (.wav or .npy float32)')
      .argument('<codes>', 'codes file (.npy)')
      .requiredOption('--out <file>', 'output: .wav (16-bit PCM, or 32-bit float with --float) or .npy (float32 samples)')
      .option('--float', 'write 32-bit float WAV instead of 16-bit PCM'),
  ).action(async (input: string, opts: ModelOptions & { out: string; float?: boolean }) => {
    const ext = checkOutput(opts.out, ['.wav', '.npy']);
    if (!fs.existsSync(input)) throw new UsageError(`codes file '${input}' does not exist`);
    if (extensionOf(input) !== '.npy') throw new UsageError(`codes file must be a .npy file, got '${input}'`);
    const codes = await readCodesNpy(input);
    const codec = await loadModel(opts);
    try {
      const samples = await codec.decode(codes);
      if (ext === '.npy') {
        await writeNpy(opts.out, samples, [samples.length]);
      } else {
        await writeWav(opts.out, samples, { sampleRate: codec.info.sample_rate, format: opts.float ? 'float32' : 'pcm16' });
      }
      const seconds = samples.length / codec.info.sample_rate;
      process.stderr.write(`${input}: ${codes.nQ} x ${codes.nFrames} codes -> ${seconds.toFixed(2)} s -> ${opts.out}\n`);
    } finally {
      codec.dispose();
    }
  });
}
