/**
 * Bench rows of many clips (issue 17): varied-length clips through encodeBatch / decodeBatch against one long
 * file of the same total audio, code agreement with encode(clip), time to first code after load, and RSS over
 * many clips in one process.
 */
import { codeAgreement } from '../lib/quality/metrics';
import { Codes } from '../lib/codec/codes';
import { Encodec } from '../lib/codec/codec';
import { peakRss } from '../lib/runtime/runtime';

const RATE = 24000;
const mib = (bytes: number): number => Math.round(bytes / 2 ** 20);

/** `count` clips of `min`..`max` seconds (uniform, seeded; sample-exact lengths) cut from `speech`. */
export function variedClips(speech: Float32Array, count: number, min: number, max: number, seed = 1): Float32Array[] {
  let state = seed;
  const random = (): number => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  return Array.from({ length: count }, () => {
    const length = Math.round((min + (max - min) * random()) * RATE);
    const start = Math.floor(random() * Math.max(1, speech.length - length));
    return speech.subarray(start, start + length);
  });
}

/** `seconds` of speech: `speech` repeated. */
export function loop(speech: Float32Array, seconds: number): Float32Array {
  const out = new Float32Array(Math.round(seconds * RATE));
  for (let at = 0; at < out.length; at += speech.length) out.set(speech.subarray(0, out.length - at), at);
  return out;
}

function concat(clips: Float32Array[]): Float32Array {
  const out = new Float32Array(clips.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of clips) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function seconds(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return (performance.now() - start) / 1000;
}

/** Wall time of `work` in seconds, and the process's CPU time (all threads) over it. */
async function timed(work: () => Promise<unknown>): Promise<{ wall: number; cpu: number }> {
  const cpu = process.cpuUsage();
  const wall = await seconds(work);
  const used = process.cpuUsage(cpu);
  return { wall, cpu: (used.user + used.system) / 1e6 };
}

/**
 * Many varied clips against one long file of their total audio, 6 kbps, runs interleaved (long, batch, long,
 * batch, ...) so that the machine's drift hits both alike; the fastest run of each. Code agreement of every
 * `agreementEvery`-th clip with encode(clip).
 */
export async function manyClips(codec: Encodec, clips: Float32Array[], reps: number, agreementEvery: number): Promise<Record<string, unknown>> {
  const long = concat(clips);
  const total = long.length / RATE;
  const times = { longEncode: [] as number[], batchEncode: [] as number[], longDecode: [] as number[], batchDecode: [] as number[] };
  const cpu = { longEncode: [] as number[], batchEncode: [] as number[], longDecode: [] as number[], batchDecode: [] as number[] };
  const record = (key: keyof typeof times, t: { wall: number; cpu: number }): void => {
    times[key].push(t.wall);
    cpu[key].push(t.cpu);
  };
  let batchCodes: Codes[] = [];
  let longCodes: Codes | undefined;
  for (let r = 0; r < reps; r++) {
    record('longEncode', await timed(async () => { longCodes = await codec.encode(long, { bandwidth: 6 }); }));
    record('batchEncode', await timed(async () => { batchCodes = await codec.encodeBatch(clips, { bandwidth: 6 }); }));
    record('longDecode', await timed(() => codec.decode(longCodes as Codes)));
    record('batchDecode', await timed(() => codec.decodeBatch(batchCodes)));
  }
  const best = (xs: number[]): number => Math.min(...xs);
  let agree = 0;
  let checked = 0;
  let worst = 1;
  for (let i = 0; i < clips.length; i += agreementEvery) {
    const a = codeAgreement(batchCodes[i], await codec.encode(clips[i], { bandwidth: 6 }));
    agree += a;
    worst = Math.min(worst, a);
    checked++;
  }
  const lengths = clips.map((c) => c.length / RATE);
  return {
    clips: clips.length,
    minSeconds: Math.min(...lengths),
    maxSeconds: Math.max(...lengths),
    audioSeconds: total,
    longEncodeRtf: total / best(times.longEncode),
    batchEncodeRtf: total / best(times.batchEncode),
    encodeRatio: best(times.longEncode) / best(times.batchEncode),
    longDecodeRtf: total / best(times.longDecode),
    batchDecodeRtf: total / best(times.batchDecode),
    decodeRatio: best(times.longDecode) / best(times.batchDecode),
    agreementClips: checked,
    meanAgreement: agree / checked,
    worstAgreement: worst,
    runs: Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v.map((t) => total / t)])),
    // each run's own ratios (long and batch timed back to back in that run)
    encodeRatios: times.longEncode.map((t, r) => t / times.batchEncode[r]),
    decodeRatios: times.longDecode.map((t, r) => t / times.batchDecode[r]),
    // the same in CPU time: the work, without the waits (an idle lane, other processes on the cores)
    encodeCpuRatios: cpu.longEncode.map((t, r) => t / cpu.batchEncode[r]),
    decodeCpuRatios: cpu.longDecode.map((t, r) => t / cpu.batchDecode[r]),
  };
}

/** min / median / max of `xs`. */
export function spread(xs: number[]): { min: number; median: number; max: number } {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { min: sorted[0], median, max: sorted[sorted.length - 1] };
}

/** Time of the first encode of 1 s after Encodec.load against the steady state (median of 5), with and without warm-up. */
export async function firstCode(modelPath: string, speech: Float32Array): Promise<Record<string, number>[]> {
  const clip = speech.subarray(0, RATE);
  const rows: Record<string, number>[] = [];
  for (const warmup of [true, false]) {
    const loadStart = performance.now();
    const codec = await Encodec.load(modelPath, { warmup });
    const loadMs = performance.now() - loadStart;
    try {
      const first = await seconds(() => codec.encode(clip, { bandwidth: 6 }));
      const steady: number[] = [];
      for (let i = 0; i < 5; i++) steady.push(await seconds(() => codec.encode(clip, { bandwidth: 6 })));
      const median = [...steady].sort((a, b) => a - b)[2];
      rows.push({ warmup: warmup ? 1 : 0, loadMs, warmupMs: codec.warmupMs, firstMs: first * 1000, steadyMs: median * 1000, firstOverSteady: first / median });
    } finally {
      codec.dispose();
    }
  }
  return rows;
}

/** RSS after the first 100 clips and after all `count` (encodeMany then decodeMany over varied clips). */
export async function rssOverClips(codec: Encodec, speech: Float32Array, count: number, min: number, max: number): Promise<Record<string, number>> {
  const clips = variedClips(speech, count, min, max, 7);
  let done = 0;
  let after100 = 0;
  const start = performance.now();
  let codes: Codes[] = [];
  const flush = async (): Promise<void> => {
    for await (const audio of codec.decodeMany(codes)) void audio;
    codes = [];
  };
  for await (const c of codec.encodeMany(clips, { bandwidth: 6 })) {
    codes.push(c);
    done++;
    if (codes.length === 100) await flush();
    if (done === 100) after100 = process.memoryUsage().rss;
  }
  await flush();
  const end = process.memoryUsage().rss;
  return {
    clips: count,
    minSeconds: min,
    maxSeconds: max,
    rssAfter100MiB: mib(after100),
    rssAfterAllMiB: mib(end),
    growthPercent: (100 * (end - after100)) / after100,
    peakRssMiB: mib(peakRss()),
    minutes: (performance.now() - start) / 60000,
  };
}
