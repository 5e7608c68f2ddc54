/** `encodec-native encode` and `decode`. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Command } from 'commander';

import { loadAudio, streamAudio } from '../../lib/io/audio';
import { parseBandwidth } from '../../lib/codec/bandwidth';
import { Encodec } from '../../lib/codec/codec';
import { parseDevice } from '../../lib/codec/device';
import { withCodec } from '../../lib/codec/with-codec';
import { Codes } from '../../lib/codec/codes';
import { readCodesNpy, writeCodesNpy } from '../../lib/io/codes-file';
import { readEcdc, writeEcdc } from '../../lib/io/ecdc';
import { writeNpy } from '../../lib/io/npy';
import { writeWav } from '../../lib/io/wav';
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

/** Runs `work` with the model the options name (lib/codec/with-codec.ts), disposed afterwards. */
function withModel<T>(opts: ModelOptions, work: (codec: Encodec) => Promise<T>): Promise<T> {
  return withCodec(opts.model, { device: parseDevice(opts.device, '--device'), threads: opts.threads }, work);
}

export function encodeCommand(): Command {
  return addModelOptions(
    new Command('encode')
      .description('encode audio (any format ffmpeg reads; WAV without it) to codes: .npy of shape [n_q, n_frames], int16')
      .argument('<audio>', 'input audio or video file')
      .requiredOption('--out <codes.npy>', 'codes file to write')
      .option('--bandwidth <kbps>', 'bandwidth: 1.5, 3, 6, 12 or 24 kbps (2, 4, 8, 16, 32 codebooks)', '6')
      .option('--exact', 'encode the whole file in one pass (memory grows with length) instead of streaming it in chunks'),
  ).action(async (audio: string, opts: ModelOptions & { out: string; bandwidth: string; exact?: boolean }) => {
    const bandwidth = parseBandwidth(opts.bandwidth);
    checkOutput(opts.out, ['.npy']);
    await withModel(opts, async (codec) => {
      const sampleRate = codec.info.sample_rate;
      // streamed in chunks with left context (bounded memory); --exact loads the file and encodes it whole
      const codes = opts.exact
        ? await codec.encode((await loadAudio(audio, { sampleRate })).samples, { bandwidth, exact: true })
        : await codec.encodeStream(streamAudio(audio, { sampleRate }), { bandwidth });
      await writeCodesNpy(opts.out, codes);
      process.stderr.write(`${audio}: ${codes.nQ} codebooks x ${codes.nFrames} frames -> ${opts.out}\n`);
    });
  });
}

/** Codes from a `.npy` (shape [n_q, n_frames]) or an `.ecdc` file, with the audio length when the file states one. */
async function readCodesFile(input: string): Promise<{ codes: Codes; audioLength?: number }> {
  if (!fs.existsSync(input)) throw new UsageError(`codes file '${input}' does not exist`);
  const ext = extensionOf(input);
  if (ext === '.npy') return { codes: await readCodesNpy(input) };
  if (ext === '.ecdc') {
    const { codes, metadata } = await readEcdc(input);
    return { codes, audioLength: metadata.audioLength };
  }
  throw new UsageError(`codes file must be .npy or .ecdc, got '${input}'`);
}

/** Decodes codes and writes the audio (.wav 16-bit or float, or .npy float32), trimmed to `audioLength`. */
async function decodeToFile(input: string, opts: ModelOptions & { out: string; float?: boolean; exact?: boolean }): Promise<void> {
  const ext = checkOutput(opts.out, ['.wav', '.npy']);
  const { codes, audioLength } = await readCodesFile(input);
  await withModel(opts, async (codec) => {
    const decoded = await codec.decode(codes, { exact: opts.exact === true });
    const samples = audioLength !== undefined ? decoded.subarray(0, audioLength) : decoded;
    if (ext === '.npy') {
      await writeNpy(opts.out, samples, [samples.length]);
    } else {
      await writeWav(opts.out, samples, { sampleRate: codec.info.sample_rate, format: opts.float ? 'float32' : 'pcm16' });
    }
    const seconds = samples.length / codec.info.sample_rate;
    process.stderr.write(`${input}: ${codes.nQ} x ${codes.nFrames} codes -> ${seconds.toFixed(2)} s -> ${opts.out}\n`);
  });
}

const AUDIO_OUT_HELP = 'output: .wav (16-bit PCM, or 32-bit float with --float) or .npy (float32 samples)';

export function decodeCommand(): Command {
  return addModelOptions(
    new Command('decode')
      .description('decode codes (.npy of shape [n_q, n_frames], or .ecdc) to 24 kHz mono audio')
      .argument('<codes>', 'codes file (.npy or .ecdc)')
      .requiredOption('--out <file>', AUDIO_OUT_HELP)
      .option('--float', 'write 32-bit float WAV instead of 16-bit PCM')
      .option('--exact', 'decode in one pass (memory grows with length) instead of in chunks with left context'),
  ).action(decodeToFile);
}

export function compressCommand(): Command {
  return addModelOptions(
    new Command('compress')
      .description("compress audio to an .ecdc file that Meta's `encodec` tool reads (no language model)")
      .argument('<audio>', 'input audio or video file')
      .requiredOption('--out <file.ecdc>', '.ecdc file to write')
      .option('--bandwidth <kbps>', 'bandwidth: 1.5, 3, 6, 12 or 24 kbps', '6'),
  ).action(async (audio: string, opts: ModelOptions & { out: string; bandwidth: string }) => {
    const bandwidth = parseBandwidth(opts.bandwidth);
    checkOutput(opts.out, ['.ecdc']);
    await withModel(opts, async (codec) => {
      const { samples } = await loadAudio(audio, { sampleRate: codec.info.sample_rate });
      const codes = await codec.encode(samples, { bandwidth });
      await writeEcdc(opts.out, codes, { audioLength: samples.length });
      const bytes = fs.statSync(opts.out).size;
      process.stderr.write(`${audio}: ${codes.nQ} codebooks x ${codes.nFrames} frames -> ${opts.out} (${bytes} bytes)\n`);
    });
  });
}

export function decompressCommand(): Command {
  return addModelOptions(
    new Command('decompress')
      .description('decompress an .ecdc file to 24 kHz mono audio, trimmed to the original length')
      .argument('<file.ecdc>', '.ecdc file')
      .requiredOption('--out <file>', AUDIO_OUT_HELP)
      .option('--float', 'write 32-bit float WAV instead of 16-bit PCM')
      .option('--exact', 'decode in one pass (memory grows with length) instead of in chunks with left context'),
  ).action(async (input: string, opts: ModelOptions & { out: string; float?: boolean }) => {
    if (extensionOf(input) !== '.ecdc') throw new UsageError(`decompress reads .ecdc files, got '${input}'`);
    await decodeToFile(input, opts);
  });
}
