/**
 * `encodec-native extract`: TR-aligned features for many inputs (see lib/features.ts).
 *
 * Batch behaviour (inputs, --manifest, --shard, --jobs, resume and --force, progress, failure summary) is the
 * shared runner's (bin/batch.ts). Each input writes `OUT/<name without extension>.npy` and `.csv` atomically;
 * an input whose two files exist is skipped unless `--force` (its temporary files, once older than 10 minutes,
 * are removed then).
 */
import * as fs from 'node:fs';

import { Command } from 'commander';

import { parseBandwidth } from '../../lib/codec/bandwidth';
import { Device, Encodec } from '../../lib/codec/codec';
import { ExtractOptions, FeatureSet, checkExtractOptions, extractFeatures } from '../../lib/fmri/features';
import { featureFilesFor, featuresExist, removeStalePartials, writeFeatures } from '../../lib/fmri/features-file';
import { resolveModelPath } from '../../lib/model/model-file';
import { threadsPerJob } from '../../lib/codec/threads';
import { formatQuality, roundTripQuality } from '../../lib/quality/roundtrip-quality';
import { writeFileAtomic } from '../../lib/common/atomic';
import { ENCODEC_LOOKAHEAD_SECONDS } from '../../lib/fmri/features';
import { UsageError, parseIntegerOption, parseTrOption } from '../cli-util';
import { BatchReporter, Shard, batchInputs, outputBase, parseShard, runWorkers } from '../batch';

interface ExtractCliOptions {
  out: string;
  manifest?: string;
  shard?: Shard;
  model?: string;
  device: string;
  tr: string;
  bandwidth: string;
  maxTrs?: number;
  hrf: string;
  layout: string;
  mode: string;
  output: string;
  jobs: number;
  force?: boolean;
  exact?: boolean;
  report?: boolean;
}

function describe(result: FeatureSet, seconds: number): string {
  const nTrs = result.shape[0];
  const short = nTrs === 0 ? ` (shorter than one TR of ${result.tr} s)` : '';
  return `${nTrs} TRs, ${result.kind} (${result.shape.join(' x ')})${short} in ${seconds.toFixed(1)} s`;
}

export function extractCommand(): Command {
  return new Command('extract')
    .description('turn soundtracks (audio or video files) into TR-aligned features: OUT/<name>.npy + .csv per input')
    .argument('[inputs...]', 'audio or video files (any format ffmpeg reads)')
    .requiredOption('--out <dir>', 'output directory (created if missing)')
    .option('--manifest <file>', "file listing inputs, one per line ('#' comments; relative to the manifest's directory)")
    .option('--shard <i/N>', 'process only part i of N (0-based) of the sorted input list', parseShard)
    .option('--model <model.pt>', 'model file (default: $ENCODEC_MODEL, then the default cache path); unused with --mode mel')
    .option('--device <device>', "'cpu', 'cuda' or 'cuda:N'", 'cpu')
    .option('--tr <seconds>', 'fMRI repetition time in seconds', '1.5')
    .option('--bandwidth <kbps>', 'bandwidth: 1.5, 3, 6, 12 or 24 kbps (2, 4, 8, 16, 32 codebooks)', '3')
    .option('--max-trs <n>', 'keep at most N TRs per input (stops reading after them)', parseIntegerOption('--max-trs', 1))
    .option('--hrf <model>', 'convolve with an HRF along TRs: none, glover or spm', 'none')
    .option('--layout <layout>', 'tr: (n_trs, rows, frames); flat: (n_trs, rows * frames)', 'tr')
    .option('--mode <mode>', 'encodec (codes/embeddings) or mel (no model)', 'encodec')
    .option('--output <kind>', 'with --mode encodec: codes or embeddings', 'codes')
    .option('--jobs <n>', 'inputs processed at once (model threads = max(1, floor(cores / jobs)))', parseIntegerOption('--jobs', 1, 256), 1)
    .option('--exact', 'encode each input in one pass (exact whole-file codes; memory grows with length) instead of in chunks')
    .option('--force', 'redo inputs whose outputs already exist')
    .option('--report', 'also score the round trip (encode -> decode, or mel -> Griffin-Lim) against the input: SNR, SI-SNR, STOI, ESTOI in OUT/<name>.quality.json')
    .action(async (args: string[], opts: ExtractCliOptions) => {
      const options: ExtractOptions = {
        tr: parseTrOption(opts.tr),
        bandwidth: parseBandwidth(opts.bandwidth),
        maxTrs: opts.maxTrs,
        hrf: opts.hrf as ExtractOptions['hrf'],
        layout: opts.layout as ExtractOptions['layout'],
        mode: opts.mode as ExtractOptions['mode'],
        output: opts.mode === 'mel' && opts.output === 'codes' ? undefined : (opts.output as ExtractOptions['output']),
        exact: opts.exact === true,
      };
      try {
        checkExtractOptions(options);
      } catch (err) {
        throw new UsageError((err as Error).message.replace(/^unknown (hrf|layout|mode|output)/, 'unknown --$1').replace(/^maxTrs/, '--max-trs'));
      }
      if (!/^(cpu|cuda|cuda:\d+)$/.test(opts.device)) throw new UsageError(`--device must be 'cpu', 'cuda' or 'cuda:N', got '${opts.device}'`);
      const inputs = batchInputs(args, opts, opts.out, '--out', '.npy', 'audio/video files');

      const jobs = Math.max(1, Math.min(opts.jobs, inputs.length));
      const threads = threadsPerJob(jobs);
      const modelPath = options.mode === 'mel' ? undefined : resolveModelPath(opts.model);
      const reporter = new BatchReporter(inputs.length);
      const report = (outcome: Parameters<BatchReporter['report']>[0]): void => reporter.report(outcome);

      await runWorkers(inputs, jobs, async (take) => {
        let codec: Encodec | undefined;
        try {
          for (let input = take(); input !== undefined; input = take()) {
            const base = outputBase(opts.out, input);
            const files = featureFilesFor(base);
            await removeStalePartials(base);
            const qualityFile = `${base}.quality.json`;
            if (!opts.force && featuresExist(base) && (!opts.report || fs.existsSync(qualityFile))) {
              report({ input, status: 'skipped', message: `${files.npy} exists (--force to redo)` });
              continue;
            }
            reporter.working(input);
            const start = performance.now();
            try {
              if (modelPath && !codec) codec = await Encodec.load(modelPath, { device: opts.device as Device, threads });
              const result = await extractFeatures(input, { ...options, model: codec });
              let quality = '';
              if (opts.report) {
                // Written before the features, which mark the input as done: a rerun then never lacks a report.
                const q = await roundTripQuality(input, {
                  mode: options.mode,
                  model: codec,
                  bandwidth: options.bandwidth,
                  maxSeconds: options.maxTrs === undefined ? undefined : options.maxTrs * (options.tr as number) + ENCODEC_LOOKAHEAD_SECONDS,
                });
                const json = JSON.stringify({ input, ...q }, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2);
                await writeFileAtomic(qualityFile, Buffer.from(`${json}\n`));
                quality = `; round trip: ${formatQuality(q)}`;
              }
              await writeFeatures(base, result);
              report({ input, status: 'written', message: `${describe(result, (performance.now() - start) / 1000)} -> ${files.npy}${quality}` });
            } catch (err) {
              report({ input, status: 'failed', message: err instanceof Error ? err.message : String(err) });
            }
          }
        } finally {
          codec?.dispose();
        }
      });
      reporter.finish('extract', opts.shard);
    });
}
