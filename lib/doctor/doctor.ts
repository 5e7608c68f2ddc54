/**
 * The troubleshooting checklist, automated (`encodec-native doctor`): is libtorch there and which version, which
 * BLAS does it compute with, is CUDA usable, is ffmpeg there, is the model file found, is it a 24 kHz mono
 * EnCodec model made from Meta's checkpoint, and does a 1-second encode/decode work, how fast.
 *
 * Each check says ok, warn (works, but slowly or unverified) or fail (does not work), with the fix.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';

import { ffmpegPath, ffprobePath } from '../io/audio';
import { FRAME_RATE, SAMPLE_RATE, codebooksForBandwidth } from '../codec/bandwidth';
import { Encodec } from '../codec/codec';
import { decodedSegmentedSamples, framesForSegmentedSamples, segmentFramesOf } from '../codec/segments';
import { fetchNameArgs } from '../model/family';
import { ModelInfo, isSegmentedModel, readModelInfo, resolveModelPath } from '../model/model-file';
import { LM_CHECKPOINTS, defaultLmPath, readLmInfo } from '../model/lm-file';
import { PUBLISHED_CHECKPOINTS, describeSource, publishedCheckpoint } from '../model/published';
import { runtimeInfo } from '../runtime/runtime';

export { classifyBlas } from '../runtime/blas';
import { mappedLibraries } from '../runtime/blas';

export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One line of the report. */
export interface DoctorCheck {
  /** What was checked ('libtorch', 'blas', 'cuda', 'ffmpeg', 'model', 'metadata', 'checkpoint', 'self-test'). */
  name: string;
  status: CheckStatus;
  /** What was found. */
  detail: string;
  /** How to fix a warn or fail. */
  fix?: string;
}

export interface DoctorOptions {
  /** Model file (default: `$ENCODEC_MODEL`, then the default cache path, as every command resolves it). */
  model?: string;
  /** Threads for the self-test (default: all cores). */
  threads?: number;
}


/** ' (path of the mapped libtorch_cpu/libtorch library)', or '' where it cannot be seen. */
function libtorchLocation(): string {
  const line = mappedLibraries().find((l) => /\/libtorch(_cpu)?\.so/.test(l));
  return line ? ` (${line.trim().split(/\s+/).pop()})` : '';
}

/** First line of `cmd -version`, or the error that running it gave. */
function versionOf(cmd: string): Promise<{ version?: string; error?: string }> {
  return new Promise((resolve) => {
    execFile(cmd, ['-version'], { timeout: 30000 }, (err, stdout) => {
      if (err) resolve({ error: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : err.message.split('\n')[0] });
      else resolve({ version: /version\s+(\S+)/.exec(stdout)?.[1] ?? stdout.split('\n')[0] });
    });
  });
}

async function checkFfmpeg(): Promise<DoctorCheck> {
  const [ffmpeg, ffprobe] = await Promise.all([versionOf(ffmpegPath()), versionOf(ffprobePath())]);
  const fix =
    'install it (`apt-get install ffmpeg`, `brew install ffmpeg`) or point FFMPEG_PATH (and FFPROBE_PATH) at it; ' +
    'without it only WAV files can be read';
  if (ffmpeg.error) return { name: 'ffmpeg', status: 'warn', detail: `ffmpeg (${ffmpegPath()}): ${ffmpeg.error}`, fix };
  if (ffprobe.error) {
    return { name: 'ffmpeg', status: 'warn', detail: `ffmpeg ${ffmpeg.version}, but ffprobe (${ffprobePath()}): ${ffprobe.error}`, fix };
  }
  return { name: 'ffmpeg', status: 'ok', detail: `ffmpeg ${ffmpeg.version} (${ffmpegPath()}), ffprobe ${ffprobe.version}` };
}

/** Whether the model's source checkpoint is Meta's, by the SHA-256 recorded at export (lib/model/published.ts). */
export function checkCheckpoint(info: ModelInfo): DoctorCheck {
  const { kind, file, sha256, seed } = info.source;
  const fetchArgs = fetchNameArgs(info.model);
  const fetchFix = `for real features, run \`encodec-native model fetch${fetchArgs}\` (or \`model export\` on Meta's checkpoint)`;
  if (kind === 'random') {
    return { name: 'checkpoint', status: 'warn', detail: `random weights (seed ${seed}): for tests only, the codes mean nothing`, fix: fetchFix };
  }
  if (!sha256) return { name: 'checkpoint', status: 'warn', detail: `checkpoint ${file ?? ''} with no recorded SHA-256`, fix: fetchFix };
  const name = file ? file.split(/[\\/]/).pop() ?? file : '';
  const published = publishedCheckpoint(sha256);
  if (published) return { name: 'checkpoint', status: 'ok', detail: `${describeSource(info.source)}, SHA-256 ${sha256}` };
  const named = PUBLISHED_CHECKPOINTS.find((p) => p.file === name);
  if (named) {
    const expected = named.sha256.length === 64 ? `is ${named.sha256}` : `starts ${named.sha256}`;
    return {
      name: 'checkpoint',
      status: 'fail',
      detail: `${name} has SHA-256 ${sha256}, but Meta's release ${expected}: the file was altered or is not Meta's`,
      fix: fetchFix,
    };
  }
  if (kind === 'huggingface') return { name: 'checkpoint', status: 'ok', detail: `${describeSource(info.source)}, SHA-256 ${sha256}` };
  return { name: 'checkpoint', status: 'warn', detail: `${describeSource(info.source)} (SHA-256 ${sha256})`, fix: fetchFix };
}

/**
 * The entropy-coding LM that `compress --lm` and LM-coded `.ecdc` files use for this model ($ENCODEC_LM_MODEL, else
 * beside the model): missing is a warning (only those files need it), one that is broken or belongs to the other
 * codec fails, as the commands that need it would.
 */
export function checkLm(modelPath: string, info: ModelInfo): DoctorCheck {
  const spec = LM_CHECKPOINTS[info.model];
  if (!spec) return { name: 'lm', status: 'ok', detail: `no entropy-coding LM exists for ${info.model}` };
  const file = process.env.ENCODEC_LM_MODEL || defaultLmPath(modelPath, info.model);
  const fetchArgs = fetchNameArgs(info.model);
  const fix = `run \`encodec-native model fetch${fetchArgs}\` (gets it with the model), or \`model export --checkpoint ${spec.file} --out ${file}\``;
  if (!fs.existsSync(file)) {
    return { name: 'lm', status: 'warn', detail: `no LM at ${file}: \`compress --lm\` and LM-coded .ecdc files need it`, fix };
  }
  try {
    const lm = readLmInfo(file);
    if (lm.codec !== info.model) {
      return { name: 'lm', status: 'fail', detail: `${file} is ${lm.model}, which codes ${lm.codec} files, not ${info.model}'s`, fix };
    }
    const weights = lm.source.kind === 'random' ? `random weights (seed ${lm.source.seed}): for tests only` : describeSource(lm.source);
    return { name: 'lm', status: 'ok', detail: `${file}: ${lm.model}, ${weights}` };
  } catch (err) {
    return { name: 'lm', status: 'fail', detail: (err as Error).message, fix };
  }
}

/**
 * Encodes and decodes 1 s of a tone sweep, checking shapes and values; times the load (with its warm-up), the
 * first round trip after it and the steady state separately.
 */
async function selfTest(modelPath: string, threads?: number): Promise<DoctorCheck> {
  const fix = 'export the model again (`encodec-native model fetch` or `model export`); if it persists, report it with this output';
  let codec: Encodec | undefined;
  try {
    const loadStart = performance.now();
    codec = await Encodec.load(modelPath, threads ? { threads } : {});
    const loadMs = performance.now() - loadStart;
    // 1 s at the model's rate, in each of its channels (planar)
    const rate = codec.info.sample_rate;
    const channels = codec.info.channels;
    const samples = new Float32Array(rate * channels);
    for (let i = 0; i < rate; i++) {
      const t = i / rate;
      for (let c = 0; c < channels; c++) samples[c * rate + i] = 0.3 * Math.sin(2 * Math.PI * (200 * t + 400 * t * t)); // 200 -> 1000 Hz sweep
    }
    // Encodec.load warms the model up (oneDNN's primitives, libtorch's lazy set-up); the first call after
    // it is timed on its own, then the steady state as the median of three calls.
    const firstStart = performance.now();
    await codec.decode(await codec.encode(samples, { bandwidth: 6 }));
    const firstMs = performance.now() - firstStart;
    const encodeTimes: number[] = [];
    const decodeTimes: number[] = [];
    let codes = await codec.encode(samples, { bandwidth: 6 });
    let audio = await codec.decode(codes);
    for (let i = 0; i < 3; i++) {
      const encodeStart = performance.now();
      codes = await codec.encode(samples, { bandwidth: 6 });
      encodeTimes.push(performance.now() - encodeStart);
      const decodeStart = performance.now();
      audio = await codec.decode(codes);
      decodeTimes.push(performance.now() - decodeStart);
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[1];
    const encodeMs = median(encodeTimes);
    const decodeMs = median(decodeTimes);
    const problems: string[] = [];
    const segmented = isSegmentedModel(codec.info);
    const nQ = segmented ? codec.info.codebooks_per_bandwidth['6'] : codebooksForBandwidth(6);
    const geometry = { length: codec.info.segment_samples ?? rate, stride: codec.info.segment_stride ?? rate, hop: codec.info.hop_length, channels };
    const frames = segmented ? framesForSegmentedSamples(rate, geometry) : FRAME_RATE;
    if (codes.nQ !== nQ || codes.nFrames !== frames) problems.push(`codes are ${codes.nQ} x ${codes.nFrames}, expected ${nQ} x ${frames}`);
    const expected = segmented ? decodedSegmentedSamples(segmentFramesOf(rate, geometry), geometry) * channels : SAMPLE_RATE;
    if (audio.length !== expected) problems.push(`decoded ${audio.length} samples, expected ${expected}`);
    if (!audio.every(Number.isFinite)) problems.push('decoded audio holds NaN or Infinity');
    const timing =
      `load ${loadMs.toFixed(0)} ms (warm-up ${codec.warmupMs.toFixed(0)} ms of it), first round trip after load ${firstMs.toFixed(0)} ms; ` +
      `steady state (median of 3): encode 1 s in ${encodeMs.toFixed(0)} ms (${(1000 / encodeMs).toFixed(1)}x real time), ` +
      `decode in ${decodeMs.toFixed(0)} ms (${(1000 / decodeMs).toFixed(1)}x), ${codec.threads} threads on ${codec.device}`;
    if (problems.length) return { name: 'self-test', status: 'fail', detail: `${problems.join('; ')} (${timing})`, fix };
    return { name: 'self-test', status: 'ok', detail: timing };
  } catch (err) {
    return { name: 'self-test', status: 'fail', detail: `encode/decode failed: ${(err as Error).message}`, fix };
  } finally {
    codec?.dispose();
  }
}

/** Runs every check in order; later checks that depend on a failed one are skipped (reported as fail). */
export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  let nativeOk = false;
  try {
    const runtime = runtimeInfo();
    nativeOk = true;
    checks.push({ name: 'libtorch', status: 'ok', detail: `libtorch ${runtime.torchVersion}${libtorchLocation()}` });
    const { blas } = runtime;
    checks.push({ name: 'blas', status: blas.slow ? 'warn' : 'ok', detail: blas.detail, ...(blas.fix ? { fix: blas.fix } : {}) });
    checks.push(
      runtime.cudaAvailable
        ? { name: 'cuda', status: 'ok', detail: `available, ${runtime.cudaDeviceCount} device(s): use --device cuda` }
        : { name: 'cuda', status: 'ok', detail: 'not available (a CPU-only libtorch or no GPU): models run on the CPU; for GPUs build against a CUDA libtorch (see docs/building.md)' },
    );
  } catch (err) {
    checks.push({
      name: 'libtorch',
      status: 'fail',
      detail: (err as Error).message,
      fix: 'install libtorch (`apt-get install libtorch-dev libopenblas0-openmp` on Debian/Ubuntu) and run `npm rebuild encodec-native`',
    });
  }
  checks.push(await checkFfmpeg());

  let modelPath: string | undefined;
  try {
    modelPath = resolveModelPath(options.model);
    checks.push({ name: 'model', status: 'ok', detail: `${modelPath} (${(fs.statSync(modelPath).size / 1e6).toFixed(1)} MB)` });
  } catch (err) {
    // Nothing asked for and nothing at the default path: a fresh install, not a fault (the README runs doctor
    // before any model exists). A --model or $ENCODEC_MODEL that names no file is one.
    const asked = options.model !== undefined || !!process.env.ENCODEC_MODEL;
    checks.push({ name: 'model', status: asked ? 'fail' : 'warn', detail: asked ? 'no model file found' : 'no model yet', fix: (err as Error).message });
  }
  let info: ModelInfo | undefined;
  if (modelPath) {
    try {
      info = readModelInfo(modelPath);
      checks.push({
        name: 'metadata',
        status: 'ok',
        detail: `${info.model}, ${info.sample_rate} Hz, ${info.channels} channel${info.channels === 1 ? '' : 's'}, exporter ${info.exporter_version} (torch ${info.torch_version})`,
      });
      checks.push(checkCheckpoint(info));
      checks.push(checkLm(modelPath, info));
    } catch (err) {
      checks.push({ name: 'metadata', status: 'fail', detail: (err as Error).message, fix: 'export the model again with `encodec-native model export` or `model fetch`' });
    }
  }
  if (modelPath && info && nativeOk) {
    checks.push(await selfTest(modelPath, options.threads));
  } else if (checks.some((c) => c.status === 'fail')) {
    checks.push({ name: 'self-test', status: 'fail', detail: 'skipped: fix the failures above first' });
  } else {
    checks.push({ name: 'self-test', status: 'warn', detail: 'skipped: no model to run yet (see the model line above)' });
  }
  return checks;
}
