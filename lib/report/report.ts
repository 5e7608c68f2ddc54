/**
 * Round-trip reports: how much of a stimulus survives the feature pipeline at each setting, to listen to,
 * look at and quantify.
 *
 * `roundTripReport(input, { outDir, ... })` runs the input through exactly what researchers' features go
 * through: `extractFeatures` (TR windows of codes, or mel bands) and back with `featuresToAudio` (frames at
 * their original positions, gap frames repeated). It writes into `outDir`:
 *
 * - `original.wav`: the input as the pipeline sees it (24 kHz mono, trimmed to n_trs x tr seconds);
 * - `reconstructed_<bw>kbps.wav` per bandwidth (mode 'encodec', 24 kHz), or `reconstructed_mel.wav`
 *   (mode 'mel': Griffin-Lim, at the mel rate, 22.05 kHz by default);
 * - `metrics.json` and `metrics.txt`: SNR, SI-SNR, STOI, ESTOI of each reconstruction against the original
 *   (at 24 kHz, or at the mel rate in mode 'mel', the original being re-read at that rate), the time spent
 *   extracting features (reading the input + encoding) and turning them back into audio, and the process's
 *   peak resident memory (a high-water mark: it includes everything run before in the process);
 * - `spectrograms.png`: log-mel spectrograms (80 Slaney mel bands, 1024-point FFT, hop 256, dB relative to
 *   each clip's maximum) of the original and of each reconstruction, stacked on one time axis with one
 *   colour bar.
 *
 * Griffin-Lim does not recover the phase of the original, so in mode 'mel' SNR and SI-SNR are near or below
 * 0 dB even when the result sounds close; STOI/ESTOI and the spectrograms are the meaningful comparison.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { samplesForTrs, trCountForSamples, checkTr } from '../fmri/alignment';
import { writeFilesAtomic } from '../common/atomic';
import { loadAudio } from '../io/audio';
import { SAMPLE_RATE, checkBandwidth, codebooksForBandwidth } from '../codec/bandwidth';
import { Device, Encodec } from '../codec/codec';
import { extractFeatures } from '../fmri/features';
import { featuresToAudio } from '../fmri/features-audio';
import type { FeatureMode } from '../fmri/feature-set';
import { debug, elapsedSince, formatBytes } from '../common/log';
import { MelOptions, hzToMel, melSettings, melSpectrogram } from '../dsp/mel';
import { QualityMetrics, computeMetrics } from '../quality/metrics';
import { requireWholeFileModel } from '../model/model-file';
import { withCodec } from '../codec/with-codec';
import { HeatmapPanel, stackedHeatmapSpec, writePng } from './plot';
import { peakRss } from '../runtime/runtime';
import { writeWav } from '../io/wav';
import { typeError, rangeError } from '../common/errors';
import { formatDb, formatScore, plural, toJson } from '../common/format';

/** Bandwidths compared when none are given: the lowest, the middle and the highest. */
export const DEFAULT_REPORT_BANDWIDTHS: readonly number[] = Object.freeze([1.5, 6, 24]);

/** Settings of the spectrogram pictures (not of the mel features). */
const PICTURE_MEL = { nFft: 1024, hopLength: 256, nMels: 80, topDb: 80 };

export interface RoundTripReportOptions {
  /** Directory to write into (created if missing). Files of an earlier report there are replaced. */
  outDir: string;
  /** Mode 'encodec': a loaded Encodec (not disposed), or a model file path (default: $ENCODEC_MODEL, then the cache path). */
  model?: string | Encodec;
  /** Mode 'encodec': bandwidths to compare, kbps (default 1.5, 6, 24). */
  bandwidths?: number[];
  /** TR in seconds (default 1.5): features are extracted per TR, as for fMRI. */
  tr?: number;
  /** Use at most this many TRs from the start of the input (default: all). */
  maxTrs?: number;
  /** 'encodec' (default) or 'mel' (the model-free mel / Griffin-Lim path). */
  mode?: FeatureMode;
  /** Mel feature settings for mode 'mel' (default: the feature pipeline's). */
  mel?: MelOptions;
  /** Pixels per unit of the spectrogram picture (default 1; 2 gives a sharper picture of four times the pixels). */
  pictureScale?: number;
  /** Threads and device when the model is loaded from a path. */
  threads?: number;
  device?: Device;
}

/** One reconstruction's scores and costs. */
export interface RoundTripResult {
  /** '1.5 kbps' or 'mel'. */
  label: string;
  /** kbps (mode 'encodec'), else null. */
  bandwidth: number | null;
  /** Codebooks (mode 'encodec'), else null. */
  codebooks: number | null;
  /** The reconstruction's file name in outDir. */
  file: string;
  /** Quality against the original (SNR/SI-SNR are Infinity for identical signals; STOI null when too short). */
  metrics: QualityMetrics;
  /** Seconds spent by extractFeatures (reading the input and encoding / computing the mel spectrogram). */
  encodeSeconds: number;
  /** Seconds spent by featuresToAudio (decoding / Griffin-Lim). */
  decodeSeconds: number;
  /** Peak resident memory of the process after this reconstruction, bytes (a high-water mark). */
  peakRssBytes: number;
}

/** What {@link roundTripReport} did and wrote. */
export interface RoundTripReport {
  input: string;
  outDir: string;
  mode: FeatureMode;
  tr: number;
  /** TRs used: floor(duration / tr), capped by maxTrs. */
  nTrs: number;
  /** nTrs x tr. */
  durationSeconds: number;
  /** Rate the metrics and spectrograms were computed at. */
  sampleRate: number;
  /** Model file (mode 'encodec'). */
  model?: string;
  /** Seconds spent loading the model (mode 'encodec' with a model path; 0 when a loaded Encodec was given). */
  modelLoadSeconds?: number;
  results: RoundTripResult[];
  /** Paths of everything written. */
  files: { original: string; reconstructions: string[]; metricsJson: string; metricsTxt: string; spectrograms: string };
}

/** 1.5 -> '1.5kbps', 6 -> '6kbps' (file-name form). */
function bandwidthTag(bandwidth: number): string {
  return `${bandwidth}kbps`;
}

function checkOptions(input: string, options: RoundTripReportOptions): Required<Pick<RoundTripReportOptions, 'tr' | 'mode'>> & { maxTrs: number; bandwidths: number[] } {
  if (typeof input !== 'string' || input === '') throw typeError('input must be the path of an audio or video file');
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object with at least { outDir }');
  if (typeof options.outDir !== 'string' || options.outDir === '') throw typeError('options.outDir must be the path of the directory to write the report into');
  const mode = options.mode ?? 'encodec';
  if (mode !== 'encodec' && mode !== 'mel') throw rangeError(`unknown mode '${String(mode)}'; use 'encodec' or 'mel'`);
  const tr = options.tr ?? 1.5;
  checkTr(tr);
  const maxTrs = options.maxTrs ?? Infinity;
  if (maxTrs !== Infinity && !(Number.isSafeInteger(maxTrs) && maxTrs >= 1)) throw rangeError(`maxTrs must be an integer >= 1, got ${String(maxTrs)}`);
  const given = options.bandwidths ?? DEFAULT_REPORT_BANDWIDTHS;
  if (!Array.isArray(given) || given.length === 0) throw typeError('bandwidths must be a non-empty array of kbps values (1.5, 3, 6, 12, 24)');
  given.forEach((b) => checkBandwidth(b));
  const bandwidths = [...new Set(given)].sort((a, b) => a - b);
  return { tr, mode, maxTrs, bandwidths };
}

/** Creates outDir if needed and checks it can be written, with an error that says what to do. */
async function prepareOutDir(outDir: string): Promise<void> {
  try {
    await fs.promises.mkdir(outDir, { recursive: true });
    await fs.promises.access(outDir, fs.constants.W_OK);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EEXIST' || e.code === 'ENOTDIR' ? 'a file of that name is in the way' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw Object.assign(new Error(`cannot write the report into '${outDir}': ${why} (${e.code ?? 'error'}); choose a writable directory`), { code: e.code });
  }
  if (!(await fs.promises.stat(outDir)).isDirectory()) throw Object.assign(new Error(`cannot write the report into '${outDir}': it is a file, not a directory`), { code: 'ENOTDIR' });
}

/** A signal's log-mel spectrogram for the picture, at `sampleRate`. */
async function pictureMel(samples: Float32Array, sampleRate: number): Promise<HeatmapPanel['matrix']> {
  const spec = await melSpectrogram(samples, { ...PICTURE_MEL, sampleRate });
  return { data: spec.data, rows: spec.nMels, cols: spec.nFrames };
}

/** The metrics.txt table. */
export function formatRoundTripReport(r: RoundTripReport): string {
  const lines = [
    `input:     ${r.input}`,
    `mode:      ${r.mode}${r.model ? `, model ${r.model} (loaded in ${(r.modelLoadSeconds ?? 0).toFixed(2)} s, not counted below)` : ''}`,
    `TRs:       ${r.nTrs} x ${r.tr} s = ${r.durationSeconds} s, metrics at ${r.sampleRate} Hz`,
    '',
    `${'setting'.padEnd(10)} ${'SNR'.padStart(12)} ${'SI-SNR'.padStart(12)} ${'STOI'.padStart(6)} ${'ESTOI'.padStart(6)} ${'encode s'.padStart(9)} ${'decode s'.padStart(9)} ${'peak RSS'.padStart(10)}  file`,
  ];
  for (const x of r.results) {
    lines.push(
      `${x.label.padEnd(10)} ${formatDb(x.metrics.snr).padStart(12)} ${formatDb(x.metrics.siSnr).padStart(12)} ` +
        `${formatScore(x.metrics.stoi).padStart(6)} ${formatScore(x.metrics.estoi).padStart(6)} ` +
        `${x.encodeSeconds.toFixed(2).padStart(9)} ${x.decodeSeconds.toFixed(2).padStart(9)} ${formatBytes(x.peakRssBytes).padStart(10)}  ${x.file}`,
    );
  }
  lines.push('', 'encode s: extracting features (reading the input + encoding); decode s: features back to audio;');
  lines.push('peak RSS: the process high-water mark after that setting. STOI/ESTOI: 0..1, higher is more intelligible.');
  if (r.mode === 'mel') lines.push('Griffin-Lim does not recover the original phase: SNR near or below 0 dB is expected; compare STOI and the spectrograms.');
  return `${lines.join('\n')}\n`;
}

/** JSON with Infinity/NaN as null (identical signals have infinite SNR). */
function reportJson(r: RoundTripReport): string {
  return toJson(r); // the package's rule: Infinity/NaN as null, `identical` beside each SNR
}

/** Hz ticks for a mel axis up to fMax, positioned in Slaney mel. */
function melTicks(fMax: number): { value: number; label: string }[] {
  return [0, 500, 1000, 2000, 4000, 8000, 16000]
    .filter((hz) => hz <= fMax)
    .map((hz) => ({ value: hzToMel(hz), label: hz >= 1000 ? `${hz / 1000}k` : String(hz) }));
}

/**
 * Runs the input through the feature pipeline and back at each setting and writes the report files (see
 * the module notes). Throws TypeError/RangeError for bad options, AudioError for an unreadable input, and an
 * Error naming the directory when outDir cannot be written.
 */
export async function roundTripReport(input: string, options: RoundTripReportOptions): Promise<RoundTripReport> {
  const s = checkOptions(input, options);
  if (!fs.existsSync(input)) throw Object.assign(new Error(`input file '${input}' does not exist`), { code: 'ENOENT' });
  const mel = melSettings(options.mel);
  const rate = s.mode === 'mel' ? mel.sampleRate : SAMPLE_RATE;
  const outDir = options.outDir;
  const start = performance.now();

  // The original as the pipeline sees it: 24 kHz mono, whole TRs only.
  const maxSeconds = s.maxTrs === Infinity ? undefined : s.maxTrs * s.tr;
  const loaded = await loadAudio(input, { sampleRate: SAMPLE_RATE, maxSeconds });
  const nTrs = Math.min(s.maxTrs, trCountForSamples(loaded.samples.length, s.tr));
  if (nTrs === 0) {
    throw rangeError(`'${input}' lasts ${loaded.duration.toFixed(3)} s, shorter than one TR (${s.tr} s); use a shorter tr or a longer input`);
  }
  const original24k = loaded.samples.subarray(0, samplesForTrs(nTrs, s.tr));
  await prepareOutDir(outDir);
  const files = {
    original: path.join(outDir, 'original.wav'),
    reconstructions: [] as string[],
    metricsJson: path.join(outDir, 'metrics.json'),
    metricsTxt: path.join(outDir, 'metrics.txt'),
    spectrograms: path.join(outDir, 'spectrograms.png'),
  };
  await writeWav(files.original, original24k, { sampleRate: SAMPLE_RATE });
  debug('report', () => `${nTrs} TRs x ${s.tr} s of '${input}' -> ${files.original}`);
  // In mode 'mel' the reconstruction is at the mel rate: compare against the original read at that rate.
  const reference = s.mode === 'mel' ? (await loadAudio(input, { sampleRate: rate, maxSeconds: nTrs * s.tr })).samples.subarray(0, samplesForTrs(nTrs, s.tr, rate)) : original24k;

  const results: RoundTripResult[] = [];
  const reconstructions: Float32Array[] = [];
  let modelPath: string | undefined;
  let modelLoadSeconds: number | undefined;
  const settle = async (label: string, bandwidth: number | null, file: string, run: () => Promise<{ encode: number; decode: number; samples: Float32Array }>) => {
    const { encode, decode, samples } = await run();
    const n = Math.min(reference.length, samples.length);
    const metrics = computeMetrics(reference.subarray(0, n), samples.subarray(0, n), rate);
    await writeWav(path.join(outDir, file), samples, { sampleRate: rate });
    files.reconstructions.push(path.join(outDir, file));
    reconstructions.push(samples);
    results.push({ label, bandwidth, codebooks: bandwidth === null ? null : codebooksForBandwidth(bandwidth), file, metrics, encodeSeconds: encode, decodeSeconds: decode, peakRssBytes: peakRss() });
    debug('report', () => `${label}: SNR ${formatDb(metrics.snr)}, STOI ${formatScore(metrics.stoi)}, encode ${encode.toFixed(2)} s, decode ${decode.toFixed(2)} s -> ${file}`);
  };
  const timedPair = async (extract: () => ReturnType<typeof extractFeatures>, back: (f: Awaited<ReturnType<typeof extractFeatures>>) => ReturnType<typeof featuresToAudio>) => {
    const t0 = performance.now();
    const features = await extract();
    const t1 = performance.now();
    const audio = await back(features);
    return { encode: (t1 - t0) / 1000, decode: (performance.now() - t1) / 1000, samples: audio.samples };
  };

  if (s.mode === 'mel') {
    await settle('mel', null, 'reconstructed_mel.wav', () =>
      timedPair(
        () => extractFeatures(input, { mode: 'mel', tr: s.tr, maxTrs: nTrs, mel }),
        (features) => featuresToAudio(features),
      ),
    );
  } else {
    const loadStart = performance.now();
    // warmed up: the report times each bandwidth, and the first one must not carry the one-off costs
    await withCodec(options.model, { threads: options.threads, device: options.device, warmup: true }, async (codec) => {
      modelLoadSeconds = (performance.now() - loadStart) / 1000;
      modelPath = codec.modelPath;
      requireWholeFileModel(codec.info, 'the roundtrip report');
      for (const bandwidth of s.bandwidths) {
        await settle(`${bandwidth} kbps`, bandwidth, `reconstructed_${bandwidthTag(bandwidth)}.wav`, () =>
          timedPair(
            () => extractFeatures(input, { model: codec, tr: s.tr, bandwidth, maxTrs: nTrs, mode: 'encodec' }),
            (features) => featuresToAudio(features, { model: codec }),
          ),
        );
      }
    });
  }

  const report: RoundTripReport = {
    input,
    outDir,
    mode: s.mode,
    tr: s.tr,
    nTrs,
    durationSeconds: Math.round(nTrs * s.tr * 1e6) / 1e6,
    sampleRate: rate,
    ...(modelPath ? { model: modelPath, modelLoadSeconds } : {}),
    results,
    files,
  };

  // Spectrograms at the comparison rate, on one time axis with one colour bar.
  const panels: HeatmapPanel[] = [{ title: `original (${path.basename(input)})`, matrix: await pictureMel(reference, rate) }];
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    const stoi = r.metrics.stoi === null ? '' : `, STOI ${r.metrics.stoi.toFixed(2)}`;
    const what = r.bandwidth === null ? `mel features -> Griffin-Lim (${mel.nMels} bands, ${mel.iterations} iterations)` : `${r.label} (${r.codebooks} codebooks)`;
    panels.push({ title: `${what}: SNR ${formatDb(r.metrics.snr)}${stoi}`, matrix: await pictureMel(reconstructions[i], rate) });
  }
  const fMax = rate / 2;
  const trStep = Math.max(1, Math.ceil(nTrs / 40)); // at most ~40 ticks
  await writePng(
    files.spectrograms,
    stackedHeatmapSpec(panels, {
      title: `${path.basename(input)}: log-mel spectrograms, ${nTrs} TRs x ${s.tr} s`,
      xDomain: [0, report.durationSeconds],
      xTitle: `time (s); ticks at TR boundaries${trStep > 1 ? ` (every ${plural(trStep, 'TR')})` : ''}`,
      xTicks: Array.from({ length: Math.floor(nTrs / trStep) + 1 }, (_, k) => Math.round(k * trStep * s.tr * 1e6) / 1e6),
      yDomain: [hzToMel(0), hzToMel(fMax)],
      yTitle: 'Hz (mel scale)',
      yTickLabels: melTicks(fMax),
      colorTitle: 'dB re max',
      colorDomain: [-PICTURE_MEL.topDb, 0],
      height: 130,
    }),
    // scale 1: the raster has about one column per output pixel already; scale 2 quadruples the pixels and bytes
    { scale: options.pictureScale ?? 1 },
  );
  // one pair: both written before either replaces a previous report's file, the JSON (the record) renamed last
  await writeFilesAtomic([
    [files.metricsTxt, Buffer.from(formatRoundTripReport(report))],
    [files.metricsJson, Buffer.from(reportJson(report))],
  ]);
  debug('report', () => `wrote ${outDir} (${results.length} reconstruction(s)) in ${elapsedSince(start)}`);
  return report;
}
