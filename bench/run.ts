/**
 * `npm run bench`: throughput and memory of encoding/decoding with the full-size (random-weight) model on
 * synthesized speech. Not a test: it measures, prints a table and writes JSON to bench/results/.
 *
 *   npm run bench [-- --quick] [-- --model MODEL.pt]
 *
 * Measures: encode/decode real-time factors (seconds of audio per second) at 3 and 6 kbps on 10 minutes of
 * speech, chunked (default; the fastest of 3 runs, all in the JSON) and whole-file (`exact`), with code agreement
 * and decode SNR between them; the intra-op thread count in effect in the worker (CPU time / wall time with 1
 * and N threads); peak RSS of streaming-encoding a synthesized 2-hour file (`encodeStream(streamAudio(file))` in
 * a child process); RSS over 1000 encode/decode cycles (leak check); the addon's overhead against a C++ program
 * calling the TorchScript module directly (bench/direct.cc); and multi-file throughput with several jobs sharing
 * the cores. Many clips (bench/batch.ts): 1000 clips of 0.5-12 s through encodeBatch / decodeBatch against one
 * long file of the same total audio (runs interleaved), their code agreement with encode(clip), the time to
 * the first code after Encodec.load against the steady state, and RSS after 100 and after 10 000 varied clips;
 * short clips (`--only short`): 150 clips of 0.3-3 s against one long file, each of 5 runs' ratios (min / median /
 * max).
 * `--quick` shrinks every size (1 minute of speech, a 10-minute stream, 100 cycles, 60 and 300 clips) for a smoke run.
 * The 48 kHz row: encodec_48khz (random weights) encoding 60 s of stereo speech on 2 threads, against the eager
 * reference (test/reference/encodec48_reference.py) run the way Meta's code runs (EncodecModel.encode, segments one
 * after another) on 2 threads; `--only-48k` runs just that row. The LM rows (`lm`: 24 kHz and 48 kHz; `lm48`: 48 kHz
 * only): `compress --lm` / `decompress` against plain ones in the same run (bench/lm.ts), the 48 kHz ones with the
 * LM coding one segment at a time and as many as there are cores.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { loadAudio } from '../lib/io/audio';
import { codeAgreement, snr } from '../lib/quality/metrics';
import { Encodec } from '../lib/codec/codec';
import { PACKAGE_ROOT } from '../lib/common/package-root';
import { runtimeInfo } from '../lib/runtime/runtime';
import { availableCores, threadsPerJob } from '../lib/codec/threads';
import { readNpy } from '../lib/io/npy';
import { readWav } from '../lib/io/wav';
import { toPlanar } from '../lib/common/planar';
import { ffmpeg, makeSpeech24k, makeStereo48k } from '../test/helpers/media';
import { randomLm, randomModel, randomModel48 } from '../test/helpers/model';
import { EncodecLm } from '../lib/lm/lm';
import { lmRow } from './lm';
import { firstCode, loop, manyClips, spread, variedClips } from './batch';

const RATE = 24000;
const TEXT =
  'In this experiment, participants watched full-length feature films inside the scanner. The soundtrack of ' +
  'each film was encoded by a neural audio codec, and the resulting codes were aligned to the acquisition of ' +
  'every volume. Speech, music and effects alternate, and the model must keep up with hours of audio.';

interface Options {
  quick: boolean;
  model?: string;
  /** Overrides of the sizes (seconds of speech, of the naive whole-file pass, of the stream; leak cycles). */
  speech?: number;
  naive?: number;
  stream?: number;
  cycles?: number;
  /** Seconds of stereo for the 48 kHz row (default 60). */
  stereo?: number;
  /** Rows to run (default: all); `--only-48k` is `--only 48k`. */
  only?: Set<Row>;
  /** Clips of the many-clips rows, of the short-clips row, and of the RSS check (with their longest length). */
  clips?: number;
  shortClips?: number;
  rssClips?: number;
  rssMax?: number;
  /** Runs of each timed row (the fastest counts). */
  reps?: number;
}

/** The bench's rows, in the order they run. */
const ROWS = ['first', 'many', 'short', 'rss', 'throughput', 'threads', 'overhead', 'leak', 'multi', 'stream', 'scanner', 'realign', '48k', 'lm', 'lm48'] as const;
type Row = (typeof ROWS)[number];

function parseRows(text: string | undefined): Set<Row> {
  const rows = (text ?? '').split(',').map((r) => r.trim());
  const unknown = rows.filter((r) => !(ROWS as readonly string[]).includes(r));
  if (unknown.length > 0 || rows.length === 0) throw new UsageError(`--only takes rows among ${ROWS.join(', ')}; got '${text}'`);
  return new Set(rows as Row[]);
}

function positive(text: string | undefined, name: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} needs a positive number, got '${text}'`);
  return value;
}

const USAGE = `usage: npm run bench [-- OPTIONS]
  --quick          smoke-run sizes (60 s of speech, a 10-minute stream, 100 cycles)
  --model M.pt     model file (default: a full-size random model, seed 0, exported once and cached)
  --speech S       seconds of speech for the encode/decode real-time factors (default 600)
  --naive S        seconds of it for the whole-file (exact) pass, the reference path (default 60)
  --stream S       seconds of the streamed file for peak RSS (default 7200)
  --cycles N       encode/decode cycles of the leak check (default 1000)
  --stereo S       seconds of 48 kHz stereo for the encodec_48khz row and the 48 kHz LM rows (default 60)
  --only ROWS      run only these rows (comma-separated): ${ROWS.join(', ')}
  --only-48k       the same as --only 48k (ours vs the eager reference, 2 threads each)
  --clips N        varied clips (0.5-12 s) of the many-clips rows (default 1000)
  --short-clips N  clips of 0.3-3 s of the short-clips row (default 150), in 5 interleaved runs (--reps N: N)
  --rss-clips N    varied clips of the RSS check (default 10000)
  --rss-max S      longest clip of the RSS check in seconds (default 1.5, so that 10000 clips take about 10
                   minutes; the quick run: 12)
  --reps N         runs of each timed row, the fastest counting (default 3; --quick 2)
`;

/** A bad command line: printed without a stack. */
class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const options: Options = { quick: false };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') options.quick = true;
    else if (argv[i] === '--model') options.model = argv[++i];
    else if (argv[i] === '--speech') options.speech = positive(argv[++i], '--speech');
    else if (argv[i] === '--naive') options.naive = positive(argv[++i], '--naive');
    else if (argv[i] === '--stream') options.stream = positive(argv[++i], '--stream');
    else if (argv[i] === '--cycles') options.cycles = Math.round(positive(argv[++i], '--cycles'));
    else if (argv[i] === '--stereo') options.stereo = positive(argv[++i], '--stereo');
    else if (argv[i] === '--only-48k') options.only = new Set(['48k']);
    else if (argv[i] === '--only') options.only = parseRows(argv[++i]);
    else if (argv[i] === '--clips') options.clips = Math.round(positive(argv[++i], '--clips'));
    else if (argv[i] === '--short-clips') options.shortClips = Math.round(positive(argv[++i], '--short-clips'));
    else if (argv[i] === '--rss-clips') options.rssClips = Math.round(positive(argv[++i], '--rss-clips'));
    else if (argv[i] === '--rss-max') options.rssMax = positive(argv[++i], '--rss-max');
    else if (argv[i] === '--reps') options.reps = Math.round(positive(argv[++i], '--reps'));
    else if (argv[i] === '--help' || argv[i] === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new UsageError(`unknown argument '${argv[i]}'\n${USAGE}`);
  }
  return options;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; seconds: number; cpuSeconds: number }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const value = await work();
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return { value, seconds, cpuSeconds: (used.user + used.system) / 1e6 };
}

const mib = (bytes: number): number => Math.round(bytes / 2 ** 20);
const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

/** The fastest of `reps` runs of `work` (a shared machine's noise only ever slows a run down). */
async function fastest<T>(reps: number, work: () => Promise<T>): Promise<{ value: T; seconds: number; all: number[] }> {
  const runs: { value: T; seconds: number }[] = [];
  for (let r = 0; r < reps; r++) runs.push(await timed(work));
  const best = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  return { value: best.value, seconds: best.seconds, all: runs.map((r) => r.seconds) };
}

/** Encode/decode real-time factors, chunked (fastest of `reps` runs) and whole-file, at one bandwidth. */
async function throughput(codec: Encodec, audio: Float32Array, naive: Float32Array, bandwidth: number, reps: number): Promise<Record<string, unknown>> {
  const seconds = audio.length / RATE;
  const naiveSeconds = naive.length / RATE;
  const enc = await fastest(reps, () => codec.encode(audio, { bandwidth }));
  const dec = await fastest(reps, () => codec.decode(enc.value));
  const rtfs = (run: { all: number[] }): string => run.all.map((t) => `${(seconds / t).toFixed(1)}x`).join(', ');
  log(`${bandwidth} kbps chunked: encode ${(seconds / enc.seconds).toFixed(1)}x, decode ${(seconds / dec.seconds).toFixed(1)}x (fastest of runs: encode ${rtfs(enc)}; decode ${rtfs(dec)})`);
  const encExact = await timed(() => codec.encode(naive, { bandwidth, exact: true }));
  const decExact = await timed(() => codec.decode(encExact.value, { exact: true }));
  log(`${bandwidth} kbps whole-file (${naiveSeconds} s): encode ${(naiveSeconds / encExact.seconds).toFixed(1)}x, decode ${(naiveSeconds / decExact.seconds).toFixed(1)}x`);
  const naiveChunked = await codec.encode(naive, { bandwidth });
  return {
    bandwidth,
    audioSeconds: seconds,
    encodeRtf: seconds / enc.seconds,
    decodeRtf: seconds / dec.seconds,
    encodeRuns: enc.all.map((t) => seconds / t),
    decodeRuns: dec.all.map((t) => seconds / t),
    naiveSeconds,
    exactEncodeRtf: naiveSeconds / encExact.seconds,
    exactDecodeRtf: naiveSeconds / decExact.seconds,
    encodeSpeedup: seconds / enc.seconds / (naiveSeconds / encExact.seconds),
    decodeSpeedup: seconds / dec.seconds / (naiveSeconds / decExact.seconds),
    codeAgreement: codeAgreement(naiveChunked, encExact.value),
    decodeSnrDb: snr(decExact.value, await codec.decode(encExact.value)),
  };
}

/** CPU time / wall time of a chunked encode with `threads` intra-op threads: the cores the worker really used. */
async function threadUse(modelPath: string, audio: Float32Array, threads: number): Promise<Record<string, number>> {
  const codec = await Encodec.load(modelPath, { threads });
  try {
    await codec.encode(audio.subarray(0, RATE)); // warm-up
    const run = await timed(() => codec.encode(audio));
    return { threads, coresUsed: run.cpuSeconds / run.seconds, encodeRtf: audio.length / RATE / run.seconds };
  } finally {
    codec.dispose();
  }
}

/** RSS over `cycles` encode+decode cycles of 1 s of speech (after 20 warm-up cycles). */
async function leakCheck(codec: Encodec, audio: Float32Array, cycles: number): Promise<Record<string, number>> {
  const clip = audio.subarray(0, RATE);
  for (let i = 0; i < 20; i++) await codec.decode(await codec.encode(clip));
  const start = process.memoryUsage().rss;
  const samples: number[] = [];
  for (let i = 0; i < cycles; i++) {
    await codec.decode(await codec.encode(clip));
    if ((i + 1) % Math.max(1, cycles / 10) === 0) samples.push(process.memoryUsage().rss);
  }
  const end = process.memoryUsage().rss;
  return { cycles, rssStartMiB: mib(start), rssEndMiB: mib(end), rssMaxMiB: mib(Math.max(...samples)), growthMiB: mib(end - start) };
}

/** The JSON that bench/`script` (a child process of its own, so that its peak RSS is its alone) prints. */
function childJson<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(__dirname, script), ...args], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${script} failed: ${stderr || err.message}`));
      resolve(JSON.parse(stdout) as T);
    });
  });
}

/** The JSON of bench/batch-child.ts in `mode` (batch: peak RSS of encodeBatch / decodeBatch; rss: RSS over clips). */
function batchChild(mode: 'batch' | 'rss', modelPath: string, speechFile: string, speechSeconds: number, count: number, min: number, max: number): Promise<Record<string, number>> {
  return childJson('batch-child.js', [mode, modelPath, speechFile, String(speechSeconds), String(count), String(min), String(max)]);
}

/** Peak RSS of streaming-encoding a long file, in a child process (bench/stream-child.ts). */
async function streamPeak(modelPath: string, file: string, seconds: number): Promise<Record<string, number>> {
  const result = await childJson<{ seconds: number; frames: number; maxRssBytes: number; loadedRssBytes: number }>('stream-child.js', [modelPath, file]);
  return {
    audioSeconds: seconds,
    frames: result.frames,
    loadedRssMiB: mib(result.loadedRssBytes),
    peakRssMiB: mib(result.maxRssBytes),
    rtf: seconds / result.seconds,
  };
}

/**
 * Peak RSS and speed of the scanner-clock path on a long file (latents + Lanczos + delays, bench/run-child.ts) in a
 * child process on 2 threads.
 */
async function scannerRun(modelPath: string, file: string, seconds: number): Promise<Record<string, number | string>> {
  const r = await childJson<{ seconds: number; shape: number[]; runSeconds: number; maxRssBytes: number; loadedRssBytes: number }>('run-child.js', [modelPath, file, String(seconds), '2']);
  return {
    runSeconds: r.runSeconds,
    threads: 2,
    shape: r.shape.join(' x '),
    loadedRssMiB: mib(r.loadedRssBytes),
    peakRssMiB: mib(r.maxRssBytes),
    rtf: r.runSeconds / r.seconds,
  };
}

/**
 * Encode once, align many (bench/realign-child.ts, each step in a process of its own): the first extract with an empty
 * cache (codes, then latents) against the single-stage cost (encodeStream at 3 kbps), then re-aligns from the warm
 * cache with new settings, and the cache's bytes per hour of audio.
 */
async function realign(modelPath: string, file: string, seconds: number, dir: string): Promise<{ steps: Record<string, unknown>[]; cache: Record<string, number> }> {
  const cache = path.join(dir, 'realign-cache');
  fs.rmSync(cache, { recursive: true, force: true });
  type Step = { step: string; seconds: number; shape: number[]; maxRssBytes: number; modelLoads: number };
  const run = (step: string): Promise<Step> => childJson<Step>('realign-child.js', [step, modelPath, file, cache]);
  const baseline = await run('baseline');
  const rows: Record<string, unknown>[] = [];
  const row = (r: Step, note: string): void => {
    rows.push({ step: r.step, seconds: r.seconds, peakRssMiB: mib(r.maxRssBytes), modelLoads: r.modelLoads, shape: r.shape.join(' x '), note });
    log(`realign ${r.step}: ${r.seconds.toFixed(1)} s, peak ${mib(r.maxRssBytes)} MiB, ${r.modelLoads} model load(s) ${note}`);
  };
  row(baseline, 'single-stage cost: encodeStream at 3 kbps');
  const first = await run('first-codes');
  row(first, `first extract, empty cache: ${(first.seconds / baseline.seconds).toFixed(2)}x the single-stage cost`);
  // the entry alone (not the model's codebooks or the remembered hashes)
  const codesBytes = fs.readdirSync(cache).filter((d) => /^[0-9a-f]{2}$/.test(d)).reduce((n, d) => n + dirBytes(path.join(cache, d)), 0);
  row(await run('first-latents'), 'first latents extract (encodes latents, keeps them)');
  for (const step of ['tr2-onset', 'lanczos-delays', 'bandwidth', 'embeddings']) row(await run(step), 'from the warm cache');
  return { steps: rows, cache: { audioSeconds: seconds, codesMiBPerHour: mib((codesBytes * 3600) / seconds), allMiB: mib(dirBytes(cache)) } };
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(full) : fs.statSync(full).size;
  }
  return total;
}

/** Builds bench/direct.cc (once per source change) into build/bench/direct. */
function buildDirect(): string {
  const source = path.join(PACKAGE_ROOT, 'bench', 'direct.cc');
  const binary = path.join(PACKAGE_ROOT, 'build', 'bench', 'direct');
  if (fs.existsSync(binary) && fs.statSync(binary).mtimeMs > fs.statSync(source).mtimeMs) return binary;
  fs.mkdirSync(path.dirname(binary), { recursive: true });
  // Debian's libtorch lives in /usr/include (already searched); an upstream one under $LIBTORCH
  const root = process.env.LIBTORCH;
  const include = root ? path.join(root, 'include') : '/usr/include';
  const flags = root ? ['-isystem', include, '-L', path.join(root, 'lib'), `-Wl,-rpath,${path.join(root, 'lib')}`] : [];
  log('compiling bench/direct.cc against libtorch');
  execFileSync('g++', [
    '-O2', '-std=c++17', ...flags, '-isystem', path.join(include, 'torch', 'csrc', 'api', 'include'),
    source, '-o', binary, '-ltorch', '-ltorch_cpu', '-lc10',
  ], { stdio: 'inherit' });
  return binary;
}

/** Whole-file encode+decode through the addon versus the same calls from C++ (median of `reps`). */
async function overhead(codec: Encodec, modelPath: string, audio: Float32Array, reps: number, dir: string): Promise<Record<string, number>> {
  const raw = path.join(dir, 'direct.f32');
  fs.writeFileSync(raw, Buffer.from(audio.buffer, audio.byteOffset, audio.byteLength));
  const direct = JSON.parse(
    execFileSync(buildDirect(), [modelPath, raw, String(codec.threads), String(reps), '8'], { encoding: 'utf8' }),
  ) as { encode: number[]; decode: number[] };
  const median = (v: number[]): number => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const encode: number[] = [];
  const decode: number[] = [];
  for (let r = 0; r < reps; r++) {
    const e = await timed(() => codec.encode(audio, { bandwidth: 6, exact: true }));
    const d = await timed(() => codec.decode(e.value, { exact: true }));
    encode.push(e.seconds);
    decode.push(d.seconds);
  }
  const addon = median(encode) + median(decode);
  const cxx = median(direct.encode) + median(direct.decode);
  return {
    audioSeconds: audio.length / RATE,
    addonEncodeS: median(encode),
    addonDecodeS: median(decode),
    directEncodeS: median(direct.encode),
    directDecodeS: median(direct.decode),
    overheadPercent: (addon / cxx - 1) * 100,
  };
}

/** `files` clips encoded by `jobs` models at once, each with threadsPerJob(jobs) threads: audio seconds per second. */
async function multiFile(modelPath: string, clips: Float32Array[], jobs: number): Promise<Record<string, number>> {
  const threads = threadsPerJob(jobs);
  const codecs = await Promise.all(Array.from({ length: jobs }, () => Encodec.load(modelPath, { threads })));
  try {
    let next = 0;
    const run = await timed(() =>
      Promise.all(
        codecs.map(async (codec) => {
          while (next < clips.length) await codec.encode(clips[next++], { bandwidth: 6 });
        }),
      ),
    );
    const seconds = clips.reduce((n, c) => n + c.length, 0) / RATE;
    return { jobs, threadsPerJob: threads, files: clips.length, audioSeconds: seconds, rtf: seconds / run.seconds };
  } finally {
    codecs.forEach((c) => c.dispose());
  }
}

/**
 * encodec_48khz: our encode of `seconds` of stereo speech (2 threads, fastest of `reps`) against the eager reference
 * run as Meta's code runs (EncodecModel.encode, 2 threads), at 6 kbps; with the code agreement between the two.
 */
async function stereo48k(seconds: number, reps: number, dir: string): Promise<Record<string, unknown>> {
  const { model, checkpoint } = await randomModel48(0);
  const clip = toPlanar((await readWav(await makeStereo48k(dir, 5))).samples);
  const half = clip.length / 2;
  const n = Math.round(seconds * 48000);
  const audio = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    audio[i] = clip[i % half];
    audio[n + i] = clip[half + (i % half)];
  }
  const codec = await Encodec.load(model, { threads: 2 });
  try {
    await codec.encode(audio.subarray(0, 2 * 48000).slice(), { bandwidth: 6 }); // warm-up
    const ours = await fastest(reps, () => codec.encode(audio, { bandwidth: 6 }));
    const raw = path.join(dir, 'stereo48k.f32');
    fs.writeFileSync(raw, Buffer.from(audio.buffer, audio.byteOffset, audio.byteLength));
    const dump = path.join(dir, 'ref-codes48.npy');
    const script = path.join(PACKAGE_ROOT, 'bench', 'bench48.py');
    const out = execFileSync('/usr/bin/python3', [script, '--checkpoint', checkpoint, '--audio', raw, '--threads', '2', '--bandwidth', '6', '--dump-codes', dump], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    const reference = JSON.parse(out.trim().split('\n').pop() as string) as { seconds: number };
    const refCodes = await readNpy(dump);
    const agreement = codeAgreement(ours.value, { data: refCodes.data as Int16Array, nQ: refCodes.shape[0], nFrames: refCodes.shape[1] });
    const row = {
      model: 'encodec_48khz',
      audioSeconds: seconds,
      threads: 2,
      bandwidth: 6,
      oursSeconds: +ours.seconds.toFixed(2),
      oursRtf: +(seconds / ours.seconds).toFixed(1),
      referenceSeconds: +reference.seconds.toFixed(2),
      referenceRtf: +(seconds / reference.seconds).toFixed(2),
      speedup: +(reference.seconds / ours.seconds).toFixed(2),
      codeAgreement: +agreement.toFixed(5),
      oursAll: ours.all.map((s) => +s.toFixed(2)),
    };
    log(`48 kHz stereo: ours ${row.oursSeconds} s, reference ${row.referenceSeconds} s for ${seconds} s -> ${row.speedup}x faster (codes ${(100 * agreement).toFixed(2)} % identical)`);
    return row;
  } finally {
    codec.dispose();
  }
}

/** The 24 kHz LM row: speech at 6 kbps, with the eager reference's LM loop. */
async function lm24RowsOf(modelPath: string, speech: Float32Array, reps: number, dir: string): Promise<Record<string, unknown>[]> {
  const lm24 = await randomLm('encodec_24khz', 0);
  const codec = await Encodec.load(modelPath);
  const lm = await EncodecLm.load(lm24.lm);
  try {
    const row = await lmRow(codec, lm, 'encodec_24khz', speech, 1, RATE, 6, reps, dir, lm24.checkpoint);
    log(`LM 24 kHz 6 kbps: compress --lm ${row.lmCompressS} s vs ${row.plainCompressS} s (${row.compressRatio}x), decompress ${row.lmDecompressS} s vs ${row.plainDecompressS} s (${row.decompressRatio}x), LM loop ${row.lmMsPerFrame} ms/frame coding, ${row.lmDecodeMsPerFrame} decoding; eager reference write-lm ${row.referenceLmLoopS} s`);
    return [row];
  } finally {
    codec.dispose();
    lm.dispose();
  }
}

/**
 * The 48 kHz LM rows: stereo at 6 and 24 kbps, the LM coding 1 segment at a time and then as many as there are
 * cores (LmLoadOptions.jobs; the same bytes), in the same run.
 */
async function lm48RowsOf(stereoSeconds: number, reps: number, dir: string): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  const [m48, lm48] = await Promise.all([randomModel48(0), randomLm('encodec_48khz', 1)]);
  const clip = toPlanar((await readWav(await makeStereo48k(dir, 5))).samples);
  const half = clip.length / 2;
  const n = Math.round(stereoSeconds * 48000);
  const stereo = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) {
    stereo[i] = clip[i % half];
    stereo[n + i] = clip[half + (i % half)];
  }
  const codec48 = await Encodec.load(m48.model, { threads: 2 });
  try {
    for (const bandwidth of [6, 24]) {
      for (const jobs of [...new Set([1, availableCores()])]) {
        const lm48k = await EncodecLm.load(lm48.lm, { jobs });
        try {
          const row = await lmRow(codec48, lm48k, 'encodec_48khz', stereo, 2, 48000, bandwidth, reps, dir, lm48.checkpoint);
          log(`LM 48 kHz ${bandwidth} kbps, ${jobs} segments at once: compress --lm ${row.lmCompressS} s vs ${row.plainCompressS} s (${row.compressRatio}x), decompress ${row.decompressRatio}x, LM loop ${row.lmMsPerFrame} ms/frame coding, ${row.lmDecodeMsPerFrame} decoding; eager reference write-lm ${row.referenceLmLoopS} s`);
          rows.push(row);
        } finally {
          lm48k.dispose();
        }
      }
    }
  } finally {
    codec48.dispose();
  }
  return rows;
}

function table(title: string, rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '';
  // per-run lists (arrays, or objects of them): in the JSON only
  const keys = Object.keys(rows[0]).filter((k) => typeof rows[0][k] !== 'object' || rows[0][k] === null);
  const cell = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v < 0.1 ? 4 : 2)) : String(v));
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (values: string[]): string => values.map((v, i) => v.padStart(widths[i])).join('  ');
  return [`\n${title}`, line(keys), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(keys.map((k) => cell(r[k]))))].join('\n');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const sizes = options.quick
    ? { speechSeconds: 60, naiveSeconds: 30, streamSeconds: 600, cycles: 100, overheadSeconds: 10, reps: 2, files: 4, fileSeconds: 10, clips: 60, rssClips: 300, rssMax: 12 }
    : { speechSeconds: 600, naiveSeconds: 60, streamSeconds: 7200, cycles: 1000, overheadSeconds: 30, reps: 3, files: 4, fileSeconds: 60, clips: 1000, rssClips: 10000, rssMax: 1.5 };
  sizes.clips = options.clips ?? sizes.clips;
  sizes.rssClips = options.rssClips ?? sizes.rssClips;
  sizes.rssMax = options.rssMax ?? sizes.rssMax;
  sizes.reps = options.reps ?? sizes.reps;
  sizes.speechSeconds = options.speech ?? sizes.speechSeconds;
  sizes.naiveSeconds = Math.min(options.naive ?? sizes.naiveSeconds, sizes.speechSeconds);
  sizes.streamSeconds = options.stream ?? sizes.streamSeconds;
  sizes.cycles = options.cycles ?? sizes.cycles;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'encodec-bench-'));
  const started = new Date();
  const stereoSeconds = options.stereo ?? (options.quick ? 20 : 60);
  const want = (row: Row): boolean => options.only === undefined || options.only.has(row);
  const needs24k = ROWS.some((row) => row !== '48k' && row !== 'lm48' && want(row));
  try {
    const results: Record<string, unknown> = {
      date: started.toISOString(),
      quick: options.quick,
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      sizes,
      machine: { cores: availableCores(), cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), loadAverage: os.loadavg() },
    };
    const tables: string[] = [];
    if (needs24k) {
      const modelPath = options.model ?? (await randomModel(0));
      const runtime = runtimeInfo();
      Object.assign(results, { torch: runtime.torchVersion, blas: runtime.blas.detail, model: modelPath });
      log(`model ${modelPath}; ${availableCores()} cores; BLAS: ${runtime.blas.detail}; ${options.quick ? 'quick' : 'full'} run`);
      const speechFile = await makeSpeech24k(dir, TEXT);
      const speech = (await loadAudio(speechFile)).samples;
      const audio = loop(speech, sizes.speechSeconds);

      if (want('first')) {
        // first, while no model has run in this process yet (oneDNN's primitive cache is process-wide)
        const first = await firstCode(modelPath, audio);
        log(`first code after load: ${first.map((f) => `${f.warmup ? 'with' : 'without'} warm-up ${f.firstMs.toFixed(0)} ms vs steady ${f.steadyMs.toFixed(0)} ms (${f.firstOverSteady.toFixed(1)}x; warm-up ${f.warmupMs.toFixed(0)} ms)`).join('; ')}`);
        results.firstCode = first;
        tables.push(table('Time to the first code after Encodec.load (1 s at 6 kbps; warmup 1: the default)', first));
      }

      if (['many', 'short', 'rss', 'throughput', 'overhead', 'leak'].some((row) => want(row as Row))) {
        const codec = await Encodec.load(modelPath);
        try {
          if (want('many')) {
            const many = await manyClips(codec, variedClips(audio, sizes.clips, 0.5, 12), sizes.reps, Math.max(1, Math.floor(sizes.clips / 100)));
            log(`many clips: encode ${(many.batchEncodeRtf as number).toFixed(1)}x vs long file ${(many.longEncodeRtf as number).toFixed(1)}x (${(100 * (many.encodeRatio as number)).toFixed(0)} %), decode ${(many.batchDecodeRtf as number).toFixed(1)}x vs ${(many.longDecodeRtf as number).toFixed(1)}x (${(100 * (many.decodeRatio as number)).toFixed(0)} %), agreement with encode(clip) ${(100 * (many.meanAgreement as number)).toFixed(3)} % (worst ${(100 * (many.worstAgreement as number)).toFixed(3)} %)`);
            const memory = await batchChild('batch', modelPath, speechFile, sizes.speechSeconds, sizes.clips, 0.5, 12);
            const batchMemory = {
              clips: sizes.clips,
              loadedRssMiB: mib(memory.loadedRssBytes),
              encodeBatchPeakMiB: mib(memory.encodePeakBytes),
              decodeBatchPeakMiB: mib(memory.decodePeakBytes),
              decodedAudioMiB: mib(memory.outputBytes),
              decodePeakLessAudioMiB: mib(memory.decodePeakBytes - memory.outputBytes),
            };
            log(`many clips, own process: peak RSS ${batchMemory.encodeBatchPeakMiB} MiB after encodeBatch, ${batchMemory.decodeBatchPeakMiB} MiB after decodeBatch, which returned ${batchMemory.decodedAudioMiB} MiB of audio`);
            results.manyClips = { ...many, memory: batchMemory };
            tables.push(table(`Many clips: ${sizes.clips} clips of 0.5-12 s, encodeBatch / decodeBatch vs one long file of the same audio (6 kbps, fastest of ${sizes.reps} interleaved runs)`, [many]));
            tables.push(table(`Many clips, peak RSS in a process of their own (encodeBatch, then decodeBatch, whose result holds every clip's audio)`, [batchMemory]));
          }
          if (want('short')) {
            // short clips: each run's ratio counts (not the fastest run), since a slow batch run is what users see
            const count = options.shortClips ?? (options.quick ? 40 : 150);
            const runs = options.reps ?? (options.quick ? 2 : 5);
            const many = await manyClips(codec, variedClips(audio, count, 0.3, 3, 3), runs, Math.max(1, Math.floor(count / 50)));
            const encode = spread(many.encodeRatios as number[]);
            const decode = spread(many.decodeRatios as number[]);
            const row = {
              clips: many.clips,
              audioSeconds: many.audioSeconds,
              runs,
              encodeRatioMin: encode.min,
              encodeRatioMedian: encode.median,
              encodeRatioMax: encode.max,
              decodeRatioMin: decode.min,
              decodeRatioMedian: decode.median,
              decodeRatioMax: decode.max,
              decodeCpuRatioMedian: spread(many.decodeCpuRatios as number[]).median,
              encodeCpuRatioMedian: spread(many.encodeCpuRatios as number[]).median,
              meanAgreement: many.meanAgreement,
            };
            log(`short clips: encodeBatch / long ${encode.min.toFixed(2)}-${encode.max.toFixed(2)} (median ${encode.median.toFixed(2)}), decodeBatch / long ${decode.min.toFixed(2)}-${decode.max.toFixed(2)} (median ${decode.median.toFixed(2)}) over ${runs} runs`);
            results.shortClips = { ...many, ...row };
            tables.push(table(`Short clips: ${count} clips of 0.3-3 s, encodeBatch / decodeBatch speed as a ratio to one long file of the same audio, each run's ratio (long and batch back to back), min / median / max of ${runs} interleaved runs (6 kbps)`, [row]));
          }
          if (want('rss')) {
            const rss = await batchChild('rss', modelPath, speechFile, sizes.speechSeconds, sizes.rssClips, 0.5, sizes.rssMax);
            log(`RSS over ${rss.clips} varied clips (0.5-${rss.maxSeconds} s): ${rss.rssAfter100MiB} MiB after 100, ${rss.rssAfterAllMiB} MiB after all (${rss.growthPercent.toFixed(1)} %)`);
            results.rssOverClips = { ...rss, note: `encodeMany then decodeMany of clips of 0.5-${sizes.rssMax} s, full-size model, own process` };
            tables.push(table(`RSS over ${sizes.rssClips} varied clips of 0.5-${sizes.rssMax} s in a process of their own (full-size model; encodeMany then decodeMany${sizes.rssMax < 12 ? `; clips up to ${sizes.rssMax} s, not 12 s, so that 10 000 fit the bench's time` : ''})`, [rss]));
          }
          if (want('throughput')) {
            const rtf = [];
            for (const bandwidth of [3, 6]) rtf.push(await throughput(codec, audio, audio.subarray(0, sizes.naiveSeconds * RATE), bandwidth, sizes.reps));
            results.throughput = rtf;
            tables.push(table(`Real-time factors on ${sizes.speechSeconds} s of speech, chunked (default); whole-file (exact: true) on the first ${sizes.naiveSeconds} s`, rtf));
          }
          if (want('overhead')) {
            const direct = await overhead(codec, modelPath, audio.subarray(0, sizes.overheadSeconds * RATE), sizes.reps, dir);
            log(`addon overhead ${direct.overheadPercent.toFixed(1)} %`);
            results.overhead = direct;
            tables.push(table(`Addon vs C++ calling the TorchScript module directly (whole-file encode+decode at 6 kbps, median of ${sizes.reps})`, [direct]));
          }
          if (want('leak')) {
            const leak = await leakCheck(codec, audio, sizes.cycles);
            log(`leak check: RSS ${leak.rssStartMiB} -> ${leak.rssEndMiB} MiB over ${leak.cycles} cycles`);
            results.leak = leak;
            tables.push(table('Leak check: RSS over encode+decode cycles of 1 s (MiB)', [leak]));
          }
        } finally {
          codec.dispose();
        }
      }

      if (want('threads')) {
        const threads = [await threadUse(modelPath, audio.subarray(0, 20 * RATE), 1), await threadUse(modelPath, audio.subarray(0, 20 * RATE), availableCores())];
        log(`threads: ${threads.map((t) => `${t.threads} -> ${t.coresUsed.toFixed(2)} cores busy`).join(', ')}`);
        results.threads = threads;
        tables.push(table('Intra-op threads set in the worker (CPU time / wall time of a chunked encode)', threads));
      }
      if (want('realign')) {
        const realignSeconds = options.stream ?? (options.quick ? 600 : 7200);
        const long = path.join(dir, 'realign.wav');
        await ffmpeg(['-y', '-loglevel', 'error', '-stream_loop', '-1', '-i', speechFile, '-t', String(realignSeconds), '-ar', '24000', '-ac', '1', long]);
        const r = await realign(options.model ?? (await randomModel(0)), long, realignSeconds, dir);
        results.realign = r;
        tables.push(table(`Encode once, align many: ${realignSeconds} s of audio, each step in a process of its own (2 cores)`, r.steps));
        tables.push(table('The encoding cache after those steps (codes at full depth, then latents)', [r.cache]));
      }
      if (want('multi')) {
        const clips = Array.from({ length: sizes.files }, (_, i) => loop(speech.subarray(i * 1000), sizes.fileSeconds));
        const jobs = [];
        for (const n of [1, 2, 4]) jobs.push(await multiFile(modelPath, clips, n));
        log(`multi-file: ${jobs.map((j) => `${j.jobs} jobs ${j.rtf.toFixed(1)}x`).join(', ')}`);
        results.multiFile = jobs;
        tables.push(table(`Multi-file throughput: ${sizes.files} files of ${sizes.fileSeconds} s, jobs x floor(cores / jobs) threads`, jobs));
      }
      if (want('lm')) results.lm = await lm24RowsOf(modelPath, audio.subarray(0, (options.quick ? 20 : 60) * RATE), options.quick ? 1 : sizes.reps, dir);
      if (want('stream') || want('scanner')) {
        const long = path.join(dir, 'long.flac');
        await ffmpeg(['-stream_loop', '-1', '-i', speechFile, '-t', String(sizes.streamSeconds), '-c:a', 'flac', long]);
        log(`streaming ${sizes.streamSeconds} s of FLAC through ffmpeg`);
        if (want('stream')) {
          const stream = await streamPeak(modelPath, long, sizes.streamSeconds);
          log(`streaming: RSS ${stream.loadedRssMiB} MiB after loading the model, peak ${stream.peakRssMiB} MiB, ${stream.rtf.toFixed(1)}x`);
          results.streaming = { ...stream, note: 'Encodec.encodeStream(streamAudio(file)) in a child process: the path extract takes (without --exact)' };
          tables.push(table(`Streaming encode of a ${(sizes.streamSeconds / 60).toFixed(0)}-minute FLAC (encodeStream(streamAudio(file)) in a child process, as extract does)`, [stream]));
        }
        if (want('scanner')) {
          const scanner = await scannerRun(modelPath, long, sizes.streamSeconds);
          log(`scanner clock (latents + lanczos + delays, 2 threads): peak ${scanner.peakRssMiB} MiB, ${(scanner.rtf as number).toFixed(1)}x`);
          results.scannerClock = { ...scanner, note: "extractFeatures(file, { output: 'latents', resample: 'lanczos', delays: [1,2,3,4], onset: 6, runTrs }) on 2 threads in a child process; targets: peak <= 1024 MiB, >= 30x" };
          tables.push(table(`Scanner clock: a ${(sizes.streamSeconds / 60).toFixed(0)}-minute run, latents + lanczos + delays 1-4 on 2 threads (extract's path, in a child process; targets <= 1024 MiB, >= 30x)`, [scanner]));
        }
      }
    }
    if (want('lm') || want('lm48')) {
      const lmRows = [...((results.lm as Record<string, unknown>[] | undefined) ?? []), ...(await lm48RowsOf(stereoSeconds, options.quick ? 1 : sizes.reps, dir))];
      results.lm = lmRows;
      tables.push(table(`compress --lm / decompress of the LM file vs plain compress / decompress in the same run (library calls; LM on 1 thread, lmJobs segments at once; codec on its default threads; fastest of ${options.quick ? 1 : sizes.reps}); referenceLmLoopS: the eager reference's write-lm process`, lmRows));
    }
    if (want('48k')) {
      const row48 = await stereo48k(stereoSeconds, options.quick ? 1 : sizes.reps, dir);
      results.stereo48k = row48;
      tables.push(table(`encodec_48khz: encoding ${stereoSeconds} s of 48 kHz stereo on 2 threads, vs the eager reference run as Meta's code runs`, [row48]));
    }

    const outDir = path.join(PACKAGE_ROOT, 'bench', 'results');
    fs.mkdirSync(outDir, { recursive: true });
    const outFile = path.join(outDir, `bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
    const m = results.machine as { cores: number; cpu?: string };
    console.log(`encodec-native bench (${results.command}) ${results.date}: ${m.cores} cores, ${m.cpu}${needs24k ? `, torch ${results.torch}, ${results.blas}` : ''}`);
    for (const t of tables) console.log(t);
    console.log(`\nJSON: ${path.relative(process.cwd(), outFile)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  const text = err instanceof UsageError ? err.message : err instanceof Error ? err.stack ?? err.message : String(err);
  process.stderr.write(`bench: error: ${text}\n`);
  process.exitCode = 1;
});
