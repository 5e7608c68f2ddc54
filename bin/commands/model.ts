/** `encodec-native model ...`: export, random, info, fetch. */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { Command } from 'commander';

import { exportModel } from '../../lib/model/exporter';
import { fetchModel } from '../../lib/model/fetch';
import { fetchLm } from '../../lib/model/fetch-lm';
import { isLmMetadata, parseLmInfo, readModelMetadataJson } from '../../lib/model/lm-file';
import { defaultModelPath, isSegmentedModel, readModelInfo, sha256File } from '../../lib/model/model-file';
import { DEFAULT_FAMILY, FAMILIES, FamilyName, findFamily } from '../../lib/model/family';
import { describeSource } from '../../lib/model/published';
import { UsageError, parseIntegerOption, requireInputFile } from '../cli-util';
import { plural } from '../../lib/common/format';

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function checkOut(out: string): void {
  const dir = path.dirname(path.resolve(out));
  if (!fs.existsSync(dir)) throw new UsageError(`output directory '${dir}' does not exist; create it first`);
}

/** `model info` of an entropy-coding LM file. */
async function printLmInfo(file: string, json: string, asJson: boolean): Promise<void> {
  const info = parseLmInfo(json, file);
  const stat = fs.statSync(file);
  const sha256 = await sha256File(file);
  if (asJson) {
    process.stdout.write(`${JSON.stringify({ ...info, file: { path: file, bytes: stat.size, sha256 } }, null, 2)}\n`);
    return;
  }
  const rows: [string, string][] = [
    ['file', `${file} (${(stat.size / 1e6).toFixed(1)} MB)`],
    ['file sha256', sha256],
    ['model', `${info.model} (entropy-coding LM for ${info.codec} .ecdc files with --lm)`],
    ['codebooks', `${info.n_q} x ${info.card} codes, transformer ${info.num_layers} layers x ${info.dim}, past ${info.past_context} frames`],
    ['source', describeSource(info.source)],
    ['source sha256', info.source.sha256 ?? 'unknown'],
    ['exporter', `${info.exporter_version} (torch ${info.torch_version}), ${info.created}`],
  ];
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(14)} ${v}\n`);
}

/** A model name option: a family's name (lib/model/family.ts). */
function checkName(name: string): FamilyName {
  const family = findFamily(name);
  if (!family) throw new UsageError(`--name must be ${FAMILIES.map((f) => `'${f.name}'`).join(' or ')}, got '${name}'`);
  return family.name;
}

/** The help of a `--name` option: the families, the default first. */
const NAME_HELP = FAMILIES.map((f, i) => `'${f.name}'${i === 0 ? ' (default)' : ''}`).join(' or ');

export function modelCommand(): Command {
  const model = new Command('model').description('prepare and inspect model files');

  model
    .command('export')
    .description("export a checkpoint (Meta's .th or Hugging Face's model.safetensors / pytorch_model.bin) to a model file")
    .requiredOption('--checkpoint <file>', 'checkpoint file; its layout is detected automatically')
    .requiredOption('--out <model.pt>', 'model file to write')
    .action(async (opts: { checkpoint: string; out: string }) => {
      requireInputFile('checkpoint file', opts.checkpoint);
      checkOut(opts.out);
      await exportModel({ checkpoint: opts.checkpoint, out: opts.out, onLog: log });
      log(`wrote ${opts.out}`);
    });

  model
    .command('random')
    .description('export a model with seeded random weights (same architecture; for tests and benchmarks)')
    .requiredOption('--out <model.pt>', 'model file to write')
    .option('--seed <n>', 'random seed', parseIntegerOption('--seed', 0, 2 ** 31 - 1), 0)
    .option('--name <model>', NAME_HELP, DEFAULT_FAMILY.name)
    .option('--lm', "a random entropy-coding LM for the model named by --name, instead of the model")
    .action(async (opts: { out: string; seed: number; name: string; lm?: boolean }) => {
      checkOut(opts.out);
      const name = checkName(opts.name);
      if (opts.lm) {
        await exportModel({ random: true, seed: opts.seed, lm: name, out: opts.out, onLog: log });
      } else {
        await exportModel({ random: true, seed: opts.seed, name, out: opts.out, onLog: log });
      }
      log(`wrote ${opts.out}`);
    });

  model
    .command('info')
    .description("print a model file's metadata (read from the file; the model is not run)")
    .argument('<model.pt>', 'model file')
    .option('--json', 'print JSON')
    .action(async (file: string, opts: { json?: boolean }) => {
      const json = fs.existsSync(file) ? readModelMetadataJson(file) : undefined;
      if (json !== undefined && isLmMetadata(json)) return printLmInfo(file, json, opts.json === true);
      const info = readModelInfo(file);
      const stat = fs.statSync(file);
      const sha256 = await sha256File(file);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ...info, file: { path: file, bytes: stat.size, sha256 } }, null, 2)}\n`);
        return;
      }
      const rows: [string, string][] = [
        ['file', `${file} (${(stat.size / 1e6).toFixed(1)} MB)`],
        ['file sha256', sha256],
        ['model', info.model],
        ['sample rate', `${info.sample_rate} Hz, ${info.channels} channel${info.channels === 1 ? ' (mono)' : 's (stereo, planar)'}`],
        ['frame rate', `${info.frame_rate} frames/s (hop ${plural(info.hop_length, 'sample')})`],
        [
          'bandwidths',
          info.bandwidths.map((b) => `${b} kbps = ${info.codebooks_per_bandwidth[String(b)]} codebooks`).join(', '),
        ],
        ['codebooks', `${info.max_codebooks} x ${plural(info.codebook_size, 'entry', 'entries')}, dimension ${info.dimension}`],
        ...(isSegmentedModel(info)
          ? ([['segments', `${info.segment} s (${info.segment_samples} samples) every ${info.segment_stride} samples (overlap ${info.overlap}), normalised, one scale each`]] as [string, string][])
          : []),
        ['source', describeSource(info.source)],
        ['source sha256', info.source.sha256 ?? 'unknown'],
        ['exporter', `${info.exporter_version} (torch ${info.torch_version}), ${info.created}`],
      ];
      for (const [k, v] of rows) process.stdout.write(`${k.padEnd(14)} ${v}\n`);
    });

  model
    .command('fetch')
    .description("download facebook/encodec_24khz or encodec_48khz and Meta's entropy-coding LM for it (needs a network), verify their SHA-256 and export them")
    .option('--name <model>', NAME_HELP, DEFAULT_FAMILY.name)
    .option('--out <model.pt>', `model file to write (default ${defaultModelPath()}, or NAME.pt beside it); the LM goes beside it (encodec_lm_24khz.pt)`)
    .option('--source <name>', "'huggingface' (default) or 'meta'", 'huggingface')
    .option('--sha256 <hex>', 'expected SHA-256 of the checkpoint (default: the one the source states)')
    .option('--no-lm', "skip the LM (needed only for .ecdc files with --lm / \"lm\": true)")
    .action(async (opts: { out?: string; source: string; sha256?: string; name: string; lm: boolean }) => {
      if (opts.source !== 'huggingface' && opts.source !== 'meta') {
        throw new UsageError(`--source must be 'huggingface' or 'meta', got '${opts.source}'`);
      }
      const name = checkName(opts.name);
      let lastShown = 0;
      const result = await fetchModel({
        name,
        out: opts.out ?? defaultModelPath(name),
        source: opts.source,
        sha256: opts.sha256,
        onLog: log,
        onProgress: (received, total) => {
          if (!process.stderr.isTTY || received - lastShown < 1 << 20) return;
          lastShown = received;
          const pct = total ? ` (${((100 * received) / total).toFixed(0)} %)` : '';
          process.stderr.write(`\rdownloading ${(received / 1e6).toFixed(1)} MB${pct}`);
        },
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      log(`wrote ${result.modelPath}`);
      if (opts.lm) {
        const lm = await fetchLm({ codec: name, modelPath: result.modelPath, onLog: log });
        log(`wrote ${lm.lmPath}`);
      }
    });

  return model;
}
