/**
 * `encodec-native frames`: each input's features at the model's own frame rate (the first stage of `extract`, kept as
 * a file): `OUT/<name>.npy` (shape [frames, columns]), `.h5`, or `<name>_stim.tsv.gz` (BIDS continuous recording, no
 * header row), each with a JSON sidecar (SamplingFrequency, StartTime, Columns, model and hashes). Reads the encoding
 * cache, so a file `extract` already encoded is written without running the model.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Command } from 'commander';

import { parseBandwidth } from '../../lib/codec/bandwidth';
import { parseDevice } from '../../lib/codec/device';
import { threadsPerJob } from '../../lib/codec/threads';
import { encodeModel } from '../../lib/encoding/context';
import { modelRateFrames } from '../../lib/encoding/encode-file';
import { FrameKind } from '../../lib/encoding/frame-source';
import { FramesFormat, framesFilePaths, writeFramesFile } from '../../lib/io/frames-file';
import { modelCodebooks, readModelInfo, resolveModelPath } from '../../lib/model/model-file';
import { UsageError, addCacheOptions, parseIntegerOption } from '../cli-util';
import { BatchReporter, SHARD_HELP, Shard, batchInputs, failure, outputStem, parseShard, runWorkers, selectInputs } from '../batch';
import { WorkList } from '../work-list';
import { formatNumber, plural } from '../../lib/common/format';

interface FramesCliOptions {
  out: string;
  manifest?: string;
  shard?: Shard;
  model?: string;
  device: string;
  threads?: number;
  output: string;
  bandwidth: string;
  format: string;
  jobs: number;
  force?: boolean;
  exact?: boolean;
  cache?: string | false;
}

const OUTPUTS = ['codes', 'embeddings', 'latents'];
const FORMATS = ['npy', 'h5', 'tsv'];

export function framesCommand(): Command {
  return addCacheOptions(new Command('frames')
    .description('write each input\'s features at the model\'s frame rate (75 or 150 frames/s) with a BIDS sidecar: OUT/<name>.npy|.h5|_stim.tsv.gz + .json')
    .argument('[inputs...]', 'audio or video files (any format ffmpeg reads)')
    .requiredOption('--out <dir>', 'output directory (created if missing)')
    .option('--output <kind>', 'codes, embeddings or latents (before quantization)', 'codes')
    .option('--bandwidth <kbps>', 'codebooks of codes and embeddings: 1.5, 3, 6, 12 or 24 kbps (encodec_48khz: 3, 6, 12, 24)', '6')
    .option('--format <format>', 'npy ([frames, columns]), h5 (dataset frames) or tsv (BIDS _stim.tsv.gz, no header row)', 'npy')
    .option('--manifest <file>', "file listing inputs, one per line ('#' comments; relative to the manifest's directory)")
    .option('--shard <i/N>', SHARD_HELP, parseShard)
    .option('--jobs <n>', 'inputs processed at once (model threads = max(1, floor(cores / jobs)))', parseIntegerOption('--jobs', 1, 256), 1)
    .option('--model <model.pt>', 'model file (default: $ENCODEC_MODEL, then the default cache path)')
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N'", 'cpu')
    .option('--threads <n>', 'model threads (default: cores / jobs)', parseIntegerOption('--threads', 1, 1024))
    .option('--exact', 'encode each input in one pass (exact whole-file codes; memory grows with length) instead of in chunks')
    .option('--force', 'redo inputs whose outputs already exist')
  )
    .action(async (args: string[], opts: FramesCliOptions) => {
      if (!OUTPUTS.includes(opts.output)) throw new UsageError(`unknown --output '${opts.output}'; use one of ${OUTPUTS.join(', ')}`);
      if (!FORMATS.includes(opts.format)) throw new UsageError(`unknown --format '${opts.format}'; use one of ${FORMATS.join(', ')}`);
      const format = opts.format as FramesFormat;
      const bandwidth = parseBandwidth(opts.bandwidth);
      const device = parseDevice(opts.device, '--device');
      const modelPath = resolveModelPath(opts.model);
      try {
        modelCodebooks(readModelInfo(modelPath), bandwidth);
      } catch (err) {
        throw new UsageError(`--bandwidth: ${(err as Error).message}`);
      }
      const all = batchInputs(args, { ...opts, shard: undefined }, opts.out, '--out', format === 'tsv' ? '_stim.tsv.gz' : `.${format}`);
      // sharded: the assignment and one outcome record per input live in the output folder (status, merge)
      const work = opts.shard ? await WorkList.open(opts.out, 'frames', all, opts.shard) : undefined;
      const inputs = work ? work.inputs() : selectInputs(all, opts.shard);
      const jobs = Math.max(1, Math.min(opts.jobs, inputs.length));
      const threads = opts.threads ?? threadsPerJob(jobs);
      const reporter = new BatchReporter(inputs.length, process.stderr, work);
      await runWorkers(inputs, jobs, async (take) => {
        const model = await encodeModel(modelPath, { device, threads });
        try {
          for (let input = take(); input !== undefined; input = take()) {
            const base = outputStem(opts.out, input);
            const files = framesFilePaths(base, format);
            if (!opts.force && fs.existsSync(files.data) && fs.existsSync(files.sidecar)) {
              reporter.report({ input, status: 'skipped', message: `${files.data} exists (--force to redo)`, outputs: [files.data, files.sidecar] });
              continue;
            }
            reporter.working(input);
            const start = performance.now();
            try {
              const f = await modelRateFrames(input, { model, output: opts.output as FrameKind, bandwidth, exact: opts.exact === true, cache: opts.cache });
              await writeFramesFile(base, {
                kind: f.kind,
                data: f.data,
                nFrames: f.nFrames,
                columns: f.columns,
                samplingFrequency: f.samplingFrequency,
                startTime: f.startTime,
                columnNames: f.columnNames,
                meta: {
                  Model: f.model,
                  ModelSHA256: f.modelSha256,
                  Source: path.resolve(input),
                  SourceSHA256: f.sourceSha256,
                  ...(f.bandwidth !== undefined ? { Bandwidth: f.bandwidth, Codebooks: f.nQ } : {}),
                },
              }, format);
              const seconds = ((performance.now() - start) / 1000).toFixed(1);
              const how = f.cached ? 'from the cache' : 'encoded';
              reporter.report({ input, status: 'written', message: `${plural(f.nFrames, 'frame')} x ${formatNumber(f.columns)} ${f.kind} at ${formatNumber(f.samplingFrequency)} frames/s (${how}, ${seconds} s) -> ${files.data}`, outputs: [files.data, files.sidecar] });
            } catch (err) {
              reporter.report(failure(input, err));
            }
          }
        } finally {
          await model.close();
        }
      });
      await reporter.flush();
      reporter.finish('frames', opts.shard);
    });
}
