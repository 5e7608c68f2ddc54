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
 * the cores.
 * `--quick` shrinks every size (1 minute of speech, a 10-minute stream, 100 cycles) for a smoke run.
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { loadAudio } from '../lib/io/audio';
import { codeAgreement, snr } from '../lib/quality/metrics';
import { Encodec } from '../lib/codec/codec';
import { PACKAGE_ROOT } from '../lib/common/package-root';
import { runtimeInfo } from '../lib/codec/runtime';
import { availableCores, threadsPerJob } from '../lib/codec/threads';
import { ffmpeg, makeSpeech24k } from '../test/helpers/media';
import { randomModel } from '../test/helpers/model';

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
    else if (argv[i] === '--help' || argv[i] === '-h') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new UsageError(`unknown argument '${argv[i]}'\n${USAGE}`);
  }
  return options;
}

/** `seconds` of speech: the synthesized paragraph repeated. */
function loop(speech: Float32Array, seconds: number): Float32Array {
  const out = new Float32Array(Math.round(seconds * RATE));
  for (let at = 0; at < out.length; at += speech.length) out.set(speech.subarray(0, out.length - at), at);
  return out;
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

/** Peak RSS of streaming-encoding a long file, in a child process (bench/stream-child.ts). */
function streamPeak(modelPath: string, file: string, seconds: number): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(__dirname, 'stream-child.js'), modelPath, file], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`stream child failed: ${stderr || err.message}`));
      const result = JSON.parse(stdout) as { seconds: number; frames: number; maxRssBytes: number; loadedRssBytes: number };
      resolve({
        audioSeconds: seconds,
        frames: result.frames,
        loadedRssMiB: mib(result.loadedRssBytes),
        peakRssMiB: mib(result.maxRssBytes),
        rtf: seconds / result.seconds,
      });
    });
  });
}

/**
 * Peak RSS and speed of the scanner-clock path on a long file (latents + Lanczos + delays, bench/run-child.ts) in a
 * child process on 2 threads.
 */
function scannerRun(modelPath: string, file: string, seconds: number): Promise<Record<string, number | string>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(__dirname, 'run-child.js'), modelPath, file, String(seconds), '2'], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`run child failed: ${stderr || err.message}`));
      const r = JSON.parse(stdout) as { seconds: number; shape: number[]; runSeconds: number; maxRssBytes: number; loadedRssBytes: number };
      resolve({
        runSeconds: r.runSeconds,
        threads: 2,
        shape: r.shape.join(' x '),
        loadedRssMiB: mib(r.loadedRssBytes),
        peakRssMiB: mib(r.maxRssBytes),
        rtf: r.runSeconds / r.seconds,
      });
    });
  });
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

function table(title: string, rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '';
  const keys = Object.keys(rows[0]).filter((k) => !Array.isArray(rows[0][k])); // per-run lists: in the JSON
  const cell = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(v < 0.1 ? 4 : 2)) : String(v));
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => cell(r[k]).length)));
  const line = (values: string[]): string => values.map((v, i) => v.padStart(widths[i])).join('  ');
  return [`\n${title}`, line(keys), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(keys.map((k) => cell(r[k]))))].join('\n');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const sizes = options.quick
    ? { speechSeconds: 60, naiveSeconds: 30, streamSeconds: 600, cycles: 100, overheadSeconds: 10, reps: 2, files: 4, fileSeconds: 10 }
    : { speechSeconds: 600, naiveSeconds: 60, streamSeconds: 7200, cycles: 1000, overheadSeconds: 30, reps: 3, files: 4, fileSeconds: 60 };
  sizes.speechSeconds = options.speech ?? sizes.speechSeconds;
  sizes.naiveSeconds = Math.min(options.naive ?? sizes.naiveSeconds, sizes.speechSeconds);
  sizes.streamSeconds = options.stream ?? sizes.streamSeconds;
  sizes.cycles = options.cycles ?? sizes.cycles;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'encodec-bench-'));
  const started = new Date();
  try {
    const modelPath = options.model ?? (await randomModel(0));
    const runtime = runtimeInfo();
    log(`model ${modelPath}; ${availableCores()} cores; BLAS: ${runtime.blas.detail}; ${options.quick ? 'quick' : 'full'} run`);
    const speechFile = await makeSpeech24k(dir, TEXT);
    const speech = (await loadAudio(speechFile)).samples;
    const audio = loop(speech, sizes.speechSeconds);

    const codec = await Encodec.load(modelPath);
    const rtf = [];
    for (const bandwidth of [3, 6]) rtf.push(await throughput(codec, audio, audio.subarray(0, sizes.naiveSeconds * RATE), bandwidth, sizes.reps));
    const threads = [await threadUse(modelPath, audio.subarray(0, 20 * RATE), 1), await threadUse(modelPath, audio.subarray(0, 20 * RATE), availableCores())];
    log(`threads: ${threads.map((t) => `${t.threads} -> ${t.coresUsed.toFixed(2)} cores busy`).join(', ')}`);
    const direct = await overhead(codec, modelPath, audio.subarray(0, sizes.overheadSeconds * RATE), sizes.reps, dir);
    log(`addon overhead ${direct.overheadPercent.toFixed(1)} %`);
    const leak = await leakCheck(codec, audio, sizes.cycles);
    log(`leak check: RSS ${leak.rssStartMiB} -> ${leak.rssEndMiB} MiB over ${leak.cycles} cycles`);
    codec.dispose();

    const clips = Array.from({ length: sizes.files }, (_, i) => loop(speech.subarray(i * 1000), sizes.fileSeconds));
    const jobs = [];
    for (const n of [1, 2, 4]) jobs.push(await multiFile(modelPath, clips, n));
    log(`multi-file: ${jobs.map((j) => `${j.jobs} jobs ${j.rtf.toFixed(1)}x`).join(', ')}`);

    const long = path.join(dir, 'long.flac');
    await ffmpeg(['-stream_loop', '-1', '-i', speechFile, '-t', String(sizes.streamSeconds), '-c:a', 'flac', long]);
    log(`streaming ${sizes.streamSeconds} s of FLAC through ffmpeg`);
    const stream = await streamPeak(modelPath, long, sizes.streamSeconds);
    log(`streaming: RSS ${stream.loadedRssMiB} MiB after loading the model, peak ${stream.peakRssMiB} MiB, ${stream.rtf.toFixed(1)}x`);
    const scanner = await scannerRun(modelPath, long, sizes.streamSeconds);
    log(`scanner clock (latents + lanczos + delays, 2 threads): peak ${scanner.peakRssMiB} MiB, ${(scanner.rtf as number).toFixed(1)}x`);

    const results = {
      date: started.toISOString(),
      quick: options.quick,
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      sizes,
      machine: { cores: availableCores(), cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), loadAverage: os.loadavg() },
      torch: runtime.torchVersion,
      blas: runtime.blas.detail,
      model: modelPath,
      throughput: rtf,
      threads,
      overhead: direct,
      leak,
      multiFile: jobs,
      streaming: { ...stream, note: 'Encodec.encodeStream(streamAudio(file)) in a child process: the path extract takes (without --exact)' },
      scannerClock: { ...scanner, note: "extractFeatures(file, { output: 'latents', resample: 'lanczos', delays: [1,2,3,4], onset: 6, runTrs }) on 2 threads in a child process; targets: peak <= 1024 MiB, >= 30x" },
    };
    const outDir = path.join(PACKAGE_ROOT, 'bench', 'results');
    fs.mkdirSync(outDir, { recursive: true });
    const outFile = path.join(outDir, `bench-${started.toISOString().replace(/[:.]/g, '-')}.json`);
    fs.writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);

    console.log(`encodec-native bench (${results.command}) ${results.date}: ${results.machine.cores} cores, ${results.machine.cpu}, torch ${results.torch}, ${results.blas}`);
    console.log(table(`Real-time factors on ${sizes.speechSeconds} s of speech, chunked (default); whole-file (exact: true) on the first ${sizes.naiveSeconds} s`, rtf));
    console.log(table('Intra-op threads set in the worker (CPU time / wall time of a chunked encode)', threads));
    console.log(table(`Addon vs C++ calling the TorchScript module directly (whole-file encode+decode at 6 kbps, median of ${sizes.reps})`, [direct]));
    console.log(table('Leak check: RSS over encode+decode cycles of 1 s (MiB)', [leak]));
    console.log(table(`Multi-file throughput: ${sizes.files} files of ${sizes.fileSeconds} s, jobs x floor(cores / jobs) threads`, jobs));
    console.log(table(`Streaming encode of a ${(sizes.streamSeconds / 60).toFixed(0)}-minute FLAC (encodeStream(streamAudio(file)) in a child process, as extract does)`, [stream]));
    console.log(table(`Scanner clock: a ${(sizes.streamSeconds / 60).toFixed(0)}-minute run, latents + lanczos + delays 1-4 on 2 threads (extract's path, in a child process; targets <= 1024 MiB, >= 30x)`, [scanner]));
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
