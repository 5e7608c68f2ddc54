/**
 * `encodec-native encode` and `decode`, of one input (`--out FILE`) or many (`--out-dir DIR`, with the batch
 * options of bin/batch.ts: --manifest, --shard (i/N or auto/N, with the work list of bin/work-list.ts), --jobs,
 * resume and --force). Many inputs go through encodeMany / decodeMany, which pool the clips' windows into the
 * same native calls (lib/codec/pool.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Command } from 'commander';

import { loadAudio } from '../../lib/io/audio';
import { codesOf, encodeFile } from '../../lib/encoding/encode-file';
import { isSegmentedModel, modelCodebooks } from '../../lib/model/model-file';
import { cachedEncoding } from '../../lib/encoding/encode-stage';
import { encodeModel, openCache } from '../../lib/encoding/context';
import { parseBandwidth } from '../../lib/codec/bandwidth';
import { Device, Encodec } from '../../lib/codec/codec';
import { parseDevice } from '../../lib/codec/device';
import { withCodec } from '../../lib/codec/with-codec';
import { Codes } from '../../lib/codec/codes';
import { readCodesNpy, scalesPathFor, writeCodesNpy } from '../../lib/io/codes-file';
import { writeEcdc } from '../../lib/io/ecdc';
import { writeNpy } from '../../lib/io/npy';
import { writeWav } from '../../lib/io/wav';
import { threadsPerJob } from '../../lib/codec/threads';
import { UsageError, addCacheOptions, channelsOf, extensionOf, parseIntegerOption, requireInputFile } from '../cli-util';
import { BatchCliOptions, BatchReporter, SHARD_HELP, batchInputs, failure, outputStem, parseShard, runWorkers, selectInputs } from '../batch';
import { WorkList } from '../work-list';
import { loadLmForCodec, readEcdcForCodec } from '../ecdc-input';
import { formatNumber, plural } from '../../lib/common/format';

interface ModelOptions {
  model?: string;
  device: string;
  threads?: number;
  lmModel?: string;
  lmThreads?: number;
}

const LM_THREADS_HELP =
  "threads of the LM's steps (default 1): the coded bytes depend on it; a file written by Meta's `encodec --lm` with N torch threads decodes with N";
const LM_MODEL_HELP = "entropy-coding LM file for .ecdc files with \"lm\": true (default: $ENCODEC_LM_MODEL, then encodec_lm_24khz.pt beside the model)";

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
  return parseDevice(device, '--device');
}

/** Runs `work` with the model the options name (lib/codec/with-codec.ts: loaded without warm-up, disposed after). */
function withModel<T>(opts: ModelOptions, work: (codec: Encodec) => Promise<T>): Promise<T> {
  return withCodec(opts.model, { device: checkDevice(opts.device), threads: opts.threads }, work);
}

function addBatchOptions(command: Command): Command {
  return command
    .option('--out-dir <dir>', 'with many inputs: write DIR/<name>.<ext> per input (created if missing)')
    .option('--manifest <file>', "file listing inputs, one per line ('#' comments; relative to the manifest's directory)")
    .option('--shard <i/N>', SHARD_HELP, parseShard)
    .option('--jobs <n>', 'models at once (threads each = max(1, floor(cores / jobs)))', parseIntegerOption('--jobs', 1, 256), 1)
    .option('--force', 'redo inputs whose output already exists');
}

type BatchModelOptions = ModelOptions & BatchCliOptions & { out?: string; outDir?: string };

/** Whether the command runs on many inputs (`--out-dir` / `--manifest`) or one (`--out`); checks the mix. */
function isBatch(inputs: string[], opts: BatchModelOptions, argument: string): boolean {
  if (inputs.length === 0 && opts.manifest === undefined) {
    throw new UsageError(`missing required argument '${argument}': pass one file with --out FILE, or many with --out-dir DIR`);
  }
  if (opts.out !== undefined) {
    if (opts.outDir !== undefined || opts.manifest !== undefined || inputs.length !== 1) {
      throw new UsageError('--out FILE takes exactly one input; for many inputs (or --manifest) pass --out-dir DIR instead');
    }
    return false;
  }
  if (opts.outDir === undefined) throw new UsageError('pass --out FILE (one input) or --out-dir DIR (many inputs)');
  return true;
}

/**
 * Runs a batch command: each worker loads its model, then streams its inputs through `each(codec, inputs, report)`,
 * which reports one outcome per input (an input whose output exists is skipped unless --force, before `each`).
 */
async function runBatch(
  command: string,
  args: string[],
  opts: BatchModelOptions,
  ext: string,
  what: string,
  each: (codec: Encodec, inputs: AsyncGenerator<{ input: string; out: string }>, report: BatchReporter) => Promise<void>,
): Promise<void> {
  const outDir = opts.outDir as string;
  const all = batchInputs(args, { ...opts, shard: undefined }, outDir, '--out-dir', ext, what);
  const device = checkDevice(opts.device);
  // sharded: the assignment and one outcome record per input live in the output folder (status, merge)
  const work = opts.shard ? await WorkList.open(outDir, command, all, opts.shard) : undefined;
  const inputs = work ? work.inputs() : selectInputs(all, opts.shard);
  const jobs = Math.max(1, Math.min(opts.jobs, inputs.length));
  const threads = opts.threads ?? threadsPerJob(jobs);
  const report = new BatchReporter(inputs.length, process.stderr, work);
  await runWorkers(inputs, jobs, async (take) => {
    let exhausted = false;
    async function* todo(): AsyncGenerator<{ input: string; out: string }> {
      for (let input = take(); input !== undefined; input = take()) {
        const out = `${outputStem(outDir, input)}${ext}`;
        if (!opts.force && fs.existsSync(out)) {
          const scales = scalesPathFor(out);
          report.report({ input, status: 'skipped', message: `${out} exists (--force to redo)`, outputs: [out, ...(fs.existsSync(scales) ? [scales] : [])] });
          continue;
        }
        report.working(input);
        yield { input, out };
      }
      exhausted = true;
    }
    await withCodec(opts.model, { device, threads }, async (codec) => {
      // a failure of the model itself fails the inputs in flight; the worker then goes on with the rest
      while (!exhausted) await each(codec, todo(), report);
    });
  });
  await report.flush();
  report.finish(command, opts.shard);
}

/** An input in flight through encodeMany / decodeMany: reported once its output is written (or it failed). */
interface InFlight {
  input: string;
  out: string;
  start: number;
  audioLength?: number;
}

/** Reports every input still in flight as failed with `err`'s message. */
function failAll(pending: InFlight[], report: BatchReporter, err: unknown): void {
  for (const job of pending.splice(0)) report.report(failure(job.input, err));
}

async function encodeBatchCommand(args: string[], opts: BatchModelOptions & { bandwidth: string; exact?: boolean; cache?: string | false }): Promise<void> {
  const bandwidth = parseBandwidth(opts.bandwidth);
  // files found in the encoding cache are written from it; the rest are coded pooled (many clips at the speed of
  // one long file) and not kept, since pooled codes may differ from streamed ones at rare near-ties (docs/cache.md)
  const cache = opts.cache === false ? undefined : await openCache(opts.cache);
  await runBatch('encode', args, opts, '.npy', 'audio files', async (codec, todo, reporter) => {
    const pending: InFlight[] = [];
    const model = { path: codec.modelPath, info: codec.info, device: codec.device, codec: async () => codec };
    const nQ = modelCodebooks(codec.info, bandwidth);
    async function* clips(): AsyncGenerator<Float32Array> {
      for await (const { input, out } of todo) {
        const start = performance.now();
        try {
          const hit = cache ? await cachedEncoding(cache, model, input, { stored: 'codes', exact: opts.exact === true }) : undefined;
          if (hit && hit.nFrames > 0) {
            const codes = await codesOf(hit, nQ);
            await writeCodesNpy(out, codes);
            const scales = codes.scales ? ` (segment scales -> ${scalesPathFor(out)})` : '';
            reporter.report({ input, status: 'written', message: `${plural(codes.nQ, 'codebook')} x ${plural(codes.nFrames, 'frame')} -> ${out}${scales} (from the cache)`, outputs: [out, ...(codes.scales ? [scalesPathFor(out)] : [])] });
            continue;
          }
          const { samples } = await loadAudio(input, { sampleRate: codec.info.sample_rate, channels: codec.info.channels as 1 | 2 });
          if (samples.length === 0) throw new RangeError('the audio is empty');
          pending.push({ input, out, start });
          yield samples;
        } catch (err) {
          reporter.report(failure(input, err));
        }
      }
    }
    try {
      for await (const codes of codec.encodeMany(clips(), { bandwidth, exact: opts.exact === true })) {
        const job = pending.shift() as InFlight;
        try {
          await writeCodesNpy(job.out, codes);
          const seconds = formatNumber((performance.now() - job.start) / 1000, 2);
          const scales = codes.scales ? ` (segment scales -> ${scalesPathFor(job.out)})` : '';
          const outputs = [job.out, ...(codes.scales ? [scalesPathFor(job.out)] : [])];
          // clips are coded together in pooled calls, so these spans overlap: each runs from reading to writing
          reporter.report({ input: job.input, status: 'written', message: `${plural(codes.nQ, 'codebook')} x ${plural(codes.nFrames, 'frame')} -> ${job.out}${scales}, ${seconds} s from reading to writing`, outputs });
        } catch (err) {
          failAll([job], reporter, err);
        }
      }
    } catch (err) {
      failAll(pending, reporter, err);
    }
  });
}

export function encodeCommand(): Command {
  return addBatchOptions(addCacheOptions(addModelOptions(
    new Command('encode')
      .description(
        'encode audio (any format ffmpeg reads; WAV without it) to codes: .npy of shape [n_q, n_frames], int16 ' +
          '(with encodec_48khz also NAME.scales.npy, the segment scales)',
      )
      .argument('[audio...]', 'input audio or video files (one with --out; any number with --out-dir)')
      .option('--out <codes.npy>', 'codes file to write (one input)')
      .option('--bandwidth <kbps>', 'bandwidth: 1.5, 3, 6, 12 or 24 kbps (encodec_48khz: 3, 6, 12 or 24)', '6')
      .option('--exact', 'encode each file whole in one pass (memory grows with length) instead of streaming it in chunks'),
  ))).action(async (inputs: string[], opts: BatchModelOptions & { bandwidth: string; exact?: boolean }) => {
    if (isBatch(inputs, opts, 'audio')) return encodeBatchCommand(inputs, opts);
    const audio = inputs[0];
    const out = opts.out as string;
    const bandwidth = parseBandwidth(opts.bandwidth);
    checkOutput(out, ['.npy']);
    // streamed in chunks with left context (bounded memory); --exact loads the file and encodes it whole (encodec_48khz
    // streams its 1 s segments either way); from the encoding cache when the file was encoded before (any bandwidth)
    const model = await encodeModel(opts.model, { device: checkDevice(opts.device), threads: opts.threads });
    try {
      const codes = await encodeFile(audio, { model, bandwidth, exact: opts.exact === true, cache: (opts as { cache?: string | false }).cache });
      await writeCodesNpy(out, codes);
      const scales = codes.scales ? ` (segment scales -> ${scalesPathFor(out)})` : '';
      process.stderr.write(`${audio}: ${plural(codes.nQ, 'codebook')} x ${plural(codes.nFrames, 'frame')} -> ${out}${scales}\n`);
    } finally {
      await model.close();
    }
  });
}

/**
 * Codes from a `.npy` (shape [n_q, n_frames], segment scales beside it) or an `.ecdc` file (LM-compressed ones
 * decoded with the LM; a file of another model refused), with the audio length (per channel) and model when the
 * file states them.
 */
async function readCodesFile(
  input: string,
  codec: Encodec,
  lmModel?: string,
  lmThreads?: number,
  lmJobs?: number,
): Promise<{ codes: Codes; audioLength?: number; model?: string }> {
  const ext = extensionOf(input);
  if (ext === '.npy') return { codes: await readCodesNpy(input) };
  if (ext === '.ecdc') {
    const { codes, metadata } = await readEcdcForCodec(input, codec, lmModel, lmThreads, lmJobs);
    return { codes, audioLength: metadata.audioLength, model: metadata.model };
  }
  throw new UsageError(`codes file must be .npy or .ecdc, got '${input}'`);
}

/** Checks that codes read from `input` suit the codec's model (a clear usage error instead of a late failure). */
function checkCodesForModel(input: string, codes: Codes, model: string | undefined, codec: Encodec): void {
  if (model !== undefined && model !== codec.info.model) {
    throw new UsageError(`${input} was made with ${model}, but the model is ${codec.info.model} (${codec.modelPath}); pass --model with a ${model} model`);
  }
  if (isSegmentedModel(codec.info) && !codes.scales) {
    throw new UsageError(
      `${input} has no segment scales: codes of ${codec.info.model} need ${scalesPathFor(input)} (written beside them by \`encode\`)`,
    );
  }
  if (!isSegmentedModel(codec.info) && codes.scales) {
    throw new UsageError(`${input} has segment scales (${scalesPathFor(input)}): it holds codes of encodec_48khz, but the model is ${codec.info.model}`);
  }
}


/**
 * Writes decoded audio (.wav 16-bit or float, or .npy float32; channels planar in `decoded`), trimmed to
 * `audioLength`; returns its duration in seconds.
 */
async function writeDecoded(out: string, decoded: Float32Array, codec: Encodec, audioLength: number | undefined, float?: boolean): Promise<number> {
  const channels = channelsOf(decoded, codec.info.channels, audioLength);
  if (extensionOf(out) === '.npy') {
    const n = channels[0].length;
    const samples = channels.length === 1 ? channels[0] : Float32Array.from({ length: n * channels.length }, (_, i) => channels[Math.floor(i / n)][i % n]);
    await writeNpy(out, samples, channels.length === 1 ? [n] : [channels.length, n]);
  } else {
    await writeWav(out, channels.length === 1 ? channels[0] : channels, { sampleRate: codec.info.sample_rate, format: float ? 'float32' : 'pcm16' });
  }
  return channels[0].length / codec.info.sample_rate;
}

/** Decodes codes and writes the audio (.wav 16-bit or float, or .npy float32), trimmed to `audioLength`. */
async function decodeToFile(input: string, opts: ModelOptions & { out: string; float?: boolean; exact?: boolean }): Promise<void> {
  checkOutput(opts.out, ['.wav', '.npy']);
  requireInputFile(extensionOf(input) === '.ecdc' ? '.ecdc file' : 'codes file', input);
  if (!['.npy', '.ecdc'].includes(extensionOf(input))) throw new UsageError(`codes file must be .npy or .ecdc, got '${input}'`);
  await withModel(opts, async (codec) => {
    const { codes, audioLength, model } = await readCodesFile(input, codec, opts.lmModel, opts.lmThreads);
    checkCodesForModel(input, codes, model, codec);
    const decoded = await codec.decode(codes, isSegmentedModel(codec.info) ? {} : { exact: opts.exact === true });
    const seconds = await writeDecoded(opts.out, decoded, codec, audioLength, opts.float);
    process.stderr.write(`${input}: codes ${codes.nQ} x ${codes.nFrames} -> ${seconds.toFixed(2)} s -> ${opts.out}\n`);
  });
}

const AUDIO_OUT_HELP = 'output: .wav (16-bit PCM, or 32-bit float with --float) or .npy (float32 samples)';

async function decodeBatchCommand(args: string[], opts: BatchModelOptions & { float?: boolean; exact?: boolean; format: string }): Promise<void> {
  if (opts.format !== 'wav' && opts.format !== 'npy') throw new UsageError(`--format must be wav or npy, got '${opts.format}'`);
  await runBatch('decode', args, opts, `.${opts.format}`, 'codes files (.npy or .ecdc)', async (codec, todo, reporter) => {
    const pending: InFlight[] = [];
    async function* blocks(): AsyncGenerator<Codes> {
      for await (const { input, out } of todo) {
        const start = performance.now();
        try {
          // one LM thread: an LM file's decoding runs beside the codec's decoding of the files before it, which
          // takes the cores (a helper thread sharing the LM's frames would only wait for one)
          const { codes, audioLength, model } = await readCodesFile(input, codec, opts.lmModel, opts.lmThreads, 1);
          checkCodesForModel(input, codes, model, codec);
          pending.push({ input, out, start, audioLength });
          yield codes;
        } catch (err) {
          reporter.report(failure(input, err));
        }
      }
    }
    try {
      for await (const decoded of codec.decodeMany(blocks(), { exact: !isSegmentedModel(codec.info) && opts.exact === true })) {
        const job = pending.shift() as InFlight;
        try {
          const duration = await writeDecoded(job.out, decoded, codec, job.audioLength, opts.float);
          const seconds = formatNumber((performance.now() - job.start) / 1000, 2);
          reporter.report({ input: job.input, status: 'written', message: `${duration.toFixed(2)} s of audio -> ${job.out}, ${seconds} s from reading to writing`, outputs: [job.out] });
        } catch (err) {
          failAll([job], reporter, err);
        }
      }
    } catch (err) {
      failAll(pending, reporter, err);
    }
  });
}

export function decodeCommand(): Command {
  return addBatchOptions(addModelOptions(
    new Command('decode')
      .description('decode codes (.npy of shape [n_q, n_frames], or .ecdc) to audio at the model\'s rate and channels (24 kHz mono, 48 kHz stereo)')
      .argument('[codes...]', 'codes files (.npy or .ecdc; one with --out, any number with --out-dir)')
      .option('--out <file>', `${AUDIO_OUT_HELP} (one input)`)
      .option('--format <wav|npy>', 'with --out-dir: write DIR/<name>.wav or DIR/<name>.npy', 'wav')
      .option('--float', 'write 32-bit float WAV instead of 16-bit PCM')
      .option('--exact', 'decode in one pass (memory grows with length) instead of in chunks with left context')
      .option('--lm-model <lm.pt>', LM_MODEL_HELP)
      .option('--lm-threads <n>', LM_THREADS_HELP, parseIntegerOption('--lm-threads', 1, 1024)),
  )).action(async (inputs: string[], opts: BatchModelOptions & { float?: boolean; exact?: boolean; format: string }) => {
    if (isBatch(inputs, opts, 'codes')) return decodeBatchCommand(inputs, opts);
    await decodeToFile(inputs[0], { ...opts, out: opts.out as string });
  });
}

export function compressCommand(): Command {
  return addModelOptions(
    new Command('compress')
      .description("compress audio to an .ecdc file that Meta's `encodec` tool reads (with --lm: entropy-coded by Meta's language model)")
      .argument('<audio>', 'input audio or video file')
      .requiredOption('--out <file.ecdc>', '.ecdc file to write')
      .option('--bandwidth <kbps>', 'bandwidth: 1.5, 3, 6, 12 or 24 kbps (encodec_48khz: 3, 6, 12 or 24)', '6')
      .option('--lm', "entropy-code the codes with Meta's language model (Meta's `encodec --lm`; slower, smaller with Meta's LM)")
      .option('--lm-model <lm.pt>', 'LM file for --lm (default: $ENCODEC_LM_MODEL, then encodec_lm_24khz.pt / encodec_lm_48khz.pt beside the model)')
      .option('--lm-threads <n>', LM_THREADS_HELP, parseIntegerOption('--lm-threads', 1, 1024))
      .option('--lm-jobs <n>', 'threads the LM codes on: encodec_48khz segments at once, each on a thread of its own, the threads left sharing a segment\'s frames (default: the cores; the bytes do not depend on it)', parseIntegerOption('--lm-jobs', 1, 1024)),
  ).action(async (audio: string, opts: ModelOptions & { out: string; bandwidth: string; lm?: boolean; lmJobs?: number }) => {
    const bandwidth = parseBandwidth(opts.bandwidth);
    checkOutput(opts.out, ['.ecdc']);
    if ((opts.lmModel !== undefined || opts.lmThreads !== undefined) && !opts.lm) throw new UsageError('--lm-model and --lm-threads are used with --lm');
    if (opts.lmJobs !== undefined && !opts.lm) throw new UsageError('--lm-jobs is used with --lm');
    await withModel(opts, async (codec) => {
      // the LM first: a missing or wrong LM fails before any encoding
      const lm = opts.lm ? await loadLmForCodec(codec, opts.lmModel, opts.lmThreads, opts.lmJobs) : undefined;
      try {
        const channels = codec.info.channels as 1 | 2;
        const { samples } = await loadAudio(audio, { sampleRate: codec.info.sample_rate, channels });
        const codes = await codec.encode(samples, { bandwidth });
        await writeEcdc(opts.out, codes, { audioLength: samples.length / channels, lm });
      } finally {
        lm?.dispose();
      }
      const bytes = fs.statSync(opts.out).size;
      process.stderr.write(`${audio}: ${bandwidth} kbps${opts.lm ? ', LM-coded' : ''} -> ${opts.out} (${bytes} bytes)\n`);
    });
  });
}

export function decompressCommand(): Command {
  return addModelOptions(
    new Command('decompress')
      .description('decompress an .ecdc file to audio (24 kHz mono, or 48 kHz stereo for encodec_48khz files), trimmed to the original length')
      .argument('<file.ecdc>', '.ecdc file')
      .requiredOption('--out <file>', AUDIO_OUT_HELP)
      .option('--float', 'write 32-bit float WAV instead of 16-bit PCM')
      .option('--exact', 'decode in one pass (memory grows with length) instead of in chunks with left context')
      .option('--lm-model <lm.pt>', LM_MODEL_HELP)
      .option('--lm-threads <n>', LM_THREADS_HELP, parseIntegerOption('--lm-threads', 1, 1024)),
  ).action(async (input: string, opts: ModelOptions & { out: string; float?: boolean }) => {
    if (extensionOf(input) !== '.ecdc') throw new UsageError(`decompress reads .ecdc files, got '${input}'`);
    await decodeToFile(input, opts);
  });
}
