/**
 * Pooled coding of many clips: the spans of every clip (exactly the spans `encode(clip)` / `decode(codes)` run,
 * lib/codec/chunking.ts) go to the model several at a time, in pooled native calls (`encode_spans` /
 * `decode_spans`, exporter 1.6; 1.7 packs the LSTM windows of all of them into full rows, models/encodec_ts.py
 * through_pooled_windows) that run each span's convolutions as a span call does and the LSTM windows of all of
 * them as one batch. A clip's codes are therefore those of `encode(clip)` (up to the float rounding of a
 * larger matrix product: >= 99.9 % identical, 100 % on the test speech), whatever the other clips are, and
 * many short clips cost about what one long clip of their total length costs.
 *
 * Work is spread over the lanes (one native call per lane at a time, each on its share of the threads) by
 * frames, longest span first; each lane runs its spans in packs of at most `packFrames` input frames (a span
 * call's worth). A pack that runs out of memory is run again in halves by the rule `encode()`'s span calls
 * follow (inHalvesOnOom).
 */
import { HOP_LENGTH } from './bandwidth';
import {
  ChunkPlan,
  ChunkSpan,
  DECODE_PARTS,
  ENCODE_PARTS,
  SpanParts,
  chunkSpans,
  copyFrames,
  inHalvesOnOom,
  sliceFrames,
  spanEnd,
} from './chunking';
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
 * Runs jobs on `lanes` lanes at once: jobs assigned to the lane with the fewest frames so far (longest first,
 * so lanes end together), each lane's jobs in packs of at most `packFrames` frames (at least one job), a pack
 * out of memory again in halves on its lane (`parts` cut the inputs). Resolves with each job's output, in job order.
 */
async function runLanes<I, O>(
  jobs: Job<I>[],
  lanes: number,
  plan: ChunkPlan,
  parts: SpanParts<I, O>,
  call: PoolCall<I, O>,
): Promise<O[]> {
  // the windows of one span call of `encode()`: the LSTM's step-serial matrix products cost nearly as much for
  // a batch of 4 rows as for 8, so half-size packs ran the LSTM at up to 1.8x the cost (measured, exporter 1.7)
  const packFrames = plan.batchWindows * (plan.chunkFrames + plan.contextFrames);
  const order = jobs.map((_, i) => i).sort((a, b) => jobs[b].frames - jobs[a].frames || a - b);
  const used = Math.min(lanes, jobs.length);
  const load = new Array<number>(used).fill(0);
  const perLane: number[][] = Array.from({ length: used }, () => []);
  for (const j of order) {
    const lane = load.indexOf(Math.min(...load));
    perLane[lane].push(j);
    load[lane] += jobs[j].frames;
  }
  const outputs = new Array<O>(jobs.length);
  await Promise.all(perLane.map(async (mine, lane) => {
    const onLane = inHalvesOnOom<I, O>((inputs, spans) => call(inputs, spans, used === 1 ? -1 : lane), parts, plan);
    // back in input order within the lane: neighbouring spans of a clip share a pack
    mine.sort((a, b) => a - b);
    for (let i = 0; i < mine.length;) {
      const pack: number[] = [];
      let frames = 0;
      while (i < mine.length && (pack.length === 0 || frames + jobs[mine[i]].frames <= packFrames)) {
        frames += jobs[mine[i]].frames;
        pack.push(mine[i++]);
      }
      const out = await onLane(pack.map((j) => jobs[j].input), pack.map((j) => jobs[j].span));
      pack.forEach((j, k) => { outputs[j] = out[k]; });
    }
  }));
  return outputs;
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
  const blocks = await runLanes(jobs, lanes, plan, ENCODE_PARTS, call);
  const out: Codes[] = [];
  jobs.forEach((job, j) => {
    const total = totals[job.item];
    out[job.item] ??= { data: new Int16Array(blocks[j].nQ * total), nQ: blocks[j].nQ, nFrames: total };
    copyFrames(blocks[j], 0, job.span.frames, out[job.item].data, total, job.span.first);
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
  const audio = await runLanes(jobs, lanes, plan, DECODE_PARTS, call);
  const out = blocks.map((codes) => new Float32Array(codes.nFrames * HOP_LENGTH));
  jobs.forEach((job, j) => out[job.item].set(audio[j], job.span.first * HOP_LENGTH));
  return out;
}
