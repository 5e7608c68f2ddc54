/**
 * Pooled coding of many clips: the spans of every clip (exactly the spans `encode(clip)` / `decode(codes)` run,
 * lib/codec/chunk-plan.ts) go to the model several at a time, in pooled native calls (`encode_spans` /
 * `decode_spans`, exporter 1.6; 1.7 packs the LSTM windows of all of them into full rows, exporter/encodec_ts.py
 * through_pooled_windows) that run each span's convolutions as a span call does and the LSTM windows of all of
 * them as one batch. A clip's codes are therefore those of `encode(clip)` (up to the float rounding of a
 * larger matrix product: >= 99.9 % identical, 100 % on the test speech on the project's VM), whatever the other
 * clips are, and many short clips cost about what one long clip of their total length costs.
 *
 * The spans, in input order, are cut into packs of at most a span call's worth of input frames (neighbouring
 * spans of a clip share a pack), and the lanes (one native call per lane at a time, each on its share of the
 * threads) take the packs largest first from one queue, so that whatever a pack costs, the lanes finish
 * within about one small pack of each other. A pack that runs out of memory is run again in halves by the rule
 * `encode()`'s span calls follow (inHalvesOnOom).
 */
import { HOP_LENGTH } from './bandwidth';
import { ChunkPlan, ChunkSpan, chunkSpans, spanEnd } from './chunk-plan';
import { copyFrames, sliceFrames } from './code-frames';
import { DECODE_PARTS, ENCODE_PARTS, SpanParts, inHalvesOnOom } from './span-runners';
import type { Codes } from './codes';

/**
 * One pooled native call: several spans, each input holding its span's frames from `span.start`; `lane` is the
 * lane it runs on (-1: the only one, which may take all the threads).
 */
export type PoolCall<I, O> = (inputs: I[], spans: ChunkSpan[], lane: number) => Promise<O[]>;

interface Job<I> {
  item: number;
  span: ChunkSpan;
  input: I;
  frames: number;
}

/**
 * Runs jobs on `lanes` lanes at once, in packs taken from one queue, largest first (see above); a pack out of
 * memory runs again in halves on its lane (`parts` cut the inputs). Hands each job's output to `take` as its pack
 * ends, so that a pack's outputs can be freed once copied into place (not all held until the last pack).
 */
async function runLanes<I, O>(
  jobs: Job<I>[],
  lanes: number,
  plan: ChunkPlan,
  parts: SpanParts<I, O>,
  call: PoolCall<I, O>,
  take: (job: number, output: O) => void,
): Promise<void> {
  // the windows of one span call of `encode()`: the LSTM's step-serial matrix products cost nearly as much for
  // a batch of 4 rows as for 8, so packs are cut full (docs/performance.md#many-clips)
  const full = plan.batchWindows * (plan.chunkFrames + plan.contextFrames);
  const packs = cutPacks(jobs.map((job) => job.frames), full, lanes).map((pack) => ({
    jobs: pack,
    frames: pack.reduce((n, j) => n + jobs[j].frames, 0),
  }));
  packs.sort((a, b) => b.frames - a.frames); // stable: equal packs stay in input order
  const used = Math.min(lanes, packs.length);
  let next = 0;
  const settled = await Promise.allSettled(Array.from({ length: used }, async (_, lane) => {
    const onLane = inHalvesOnOom<I, O>((inputs, spans) => call(inputs, spans, used === 1 ? -1 : lane), parts, plan);
    while (next < packs.length) {
      const pack = packs[next++].jobs;
      try {
        const out = await onLane(pack.map((j) => jobs[j].input), pack.map((j) => jobs[j].span));
        pack.forEach((j, k) => take(j, out[k]));
      } catch (err) {
        next = packs.length; // the other lanes stop after their pack
        throw err;
      }
    }
  }));
  // every lane has stopped: the codec's next computation must not run beside one still working
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Packs of consecutive jobs (`frames` each): groups of `lanes` packs of up to `full` frames while more than one
 * such group remains, then the rest in `lanes` packs of about equal frames, each job in the pack its middle
 * frame falls in (as chunkSteps shares a clip's last step among the lanes): the lanes end together, where a
 * last short pack would run on one lane with the others idle (and a batch smaller than a group, cut into
 * packs of its share, would leave a small pack over).
 */
export function cutPacks(frames: number[], full: number, lanes: number): number[][] {
  const packs: number[][] = [];
  let remaining = frames.reduce((n, f) => n + f, 0);
  let i = 0;
  while (i < frames.length && remaining > lanes * full) {
    for (let k = 0; k < lanes && i < frames.length; k++) {
      const pack: number[] = [];
      let held = 0;
      while (i < frames.length && (pack.length === 0 || held + frames[i] <= full)) {
        held += frames[i];
        remaining -= frames[i];
        pack.push(i++);
      }
      packs.push(pack);
    }
  }
  const share = remaining / lanes;
  const rest: number[][] = Array.from({ length: lanes }, () => []);
  for (let at = 0; i < frames.length; i++) {
    rest[Math.min(lanes - 1, Math.floor((at + frames[i] / 2) / share))].push(i);
    at += frames[i];
  }
  return packs.concat(rest.filter((pack) => pack.length > 0));
}

/** The codes of each clip, as chunked `encode(clip)` gives them with `plan` on a runner of `lanes` lanes. */
export async function encodePooled(
  clips: Float32Array[],
  plan: ChunkPlan,
  lanes: number,
  call: PoolCall<Float32Array, Codes>,
): Promise<Codes[]> {
  const jobs: Job<Float32Array>[] = [];
  const totals = clips.map((clip, item) => {
    const totalFrames = Math.ceil(clip.length / HOP_LENGTH);
    for (const span of chunkSpans(totalFrames, plan, lanes)) {
      const input = clip.subarray(span.start * HOP_LENGTH, Math.min(spanEnd(span) * HOP_LENGTH, clip.length));
      jobs.push({ item, span, input, frames: spanEnd(span) - span.start });
    }
    return totalFrames;
  });
  const out: Codes[] = [];
  await runLanes(jobs, lanes, plan, ENCODE_PARTS, call, (j, block) => {
    const { item, span } = jobs[j];
    const total = totals[item];
    out[item] ??= { data: new Int16Array(block.nQ * total), nQ: block.nQ, nFrames: total };
    copyFrames(block, 0, span.frames, out[item].data, total, span.first);
  });
  return out;
}

/** The audio of each code block, as chunked `decode(codes)` gives it with `plan` on a runner of `lanes` lanes. */
export async function decodePooled(
  blocks: Codes[],
  plan: ChunkPlan,
  lanes: number,
  call: PoolCall<Codes, Float32Array>,
): Promise<Float32Array[]> {
  const jobs: Job<Codes>[] = [];
  blocks.forEach((codes, item) => {
    for (const span of chunkSpans(codes.nFrames, plan, lanes)) {
      jobs.push({ item, span, input: sliceFrames(codes, span.start, spanEnd(span) - span.start), frames: spanEnd(span) - span.start });
    }
  });
  const out: Float32Array[] = [];
  await runLanes(jobs, lanes, plan, DECODE_PARTS, call, (j, audio) => {
    const { item, span } = jobs[j];
    const samples = blocks[item].nFrames * HOP_LENGTH;
    // a block decoded by one span is that span's audio: kept as it is, not copied
    if (out[item] === undefined && audio.length === samples) out[item] = audio;
    else (out[item] ??= new Float32Array(samples)).set(audio, span.first * HOP_LENGTH);
  });
  return out;
}
