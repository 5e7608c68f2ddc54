/**
 * Segmented coding, as Meta's EncodecModel does it for encodec_48khz (segment = 1 s, overlap = 1 %):
 *
 * - `encode`: the audio is cut at offsets `0, stride, 2 stride, ...` below its length (`range(0, T, stride)`,
 *   stride = 47520 samples) into segments of up to 48000 samples per channel (the last ones shorter: a 1 s clip
 *   gives a full segment and one of 480 samples); each segment is normalised by its own scale and encoded to
 *   `ceil(length / 320)` frames (150 for a full segment). The codes of all segments are joined along time:
 *   segment k's codes are frames `[150 k, 150 (k + 1))` but for the last two segments, which can be shorter
 *   (see segmentFrameCounts); `codes.scales[k]` is segment k's scale.
 * - `decode`: each segment's codes are decoded (times its scale) to `frames * 320` samples and the segments are
 *   joined by Meta's `_linear_overlap_add`: each weighted by a triangle over the first segment's length, summed at
 *   its offset, divided by the summed weights. The result has `stride * (segments - 1) + last segment's samples`
 *   samples per channel (trim it to the original length).
 *
 * Audio is planar: channel 0's samples, then channel 1's, in one Float32Array. Segments go through the model in
 * batches (equal-length segments batch well), so only a batch of segments is ever held as tensors.
 */
import { concatCodes, concatLatents } from './code-frames';
import { Codes, CodesBlock, Embeddings, LatentsBlock, SegmentedCodes } from './codes';
import type { ModelInfo } from '../model/model-file';
import { typeError, rangeError } from '../common/errors';

/** Where segments lie and how they are coded (from the model's metadata). */
export interface SegmentGeometry {
  /** Samples per channel of a full segment (48000). */
  length: number;
  /** Samples between the starts of consecutive segments (47520). */
  stride: number;
  /** Samples per code frame (320). */
  hop: number;
  /** Audio channels (2). */
  channels: number;
}

/** The segment geometry of a segmented model (its metadata); undefined for a whole-file model (encodec_24khz). */
export function segmentGeometryOf(info: ModelInfo): SegmentGeometry | undefined {
  if (info.segment_methods !== true) return undefined;
  return {
    length: info.segment_samples as number,
    stride: info.segment_stride as number,
    hop: info.hop_length,
    channels: info.channels,
  };
}

/** One segment's codes and scale as a native call returns them. */
export interface SegmentCodes {
  data: Int16Array | Int32Array;
  nQ: number;
  nFrames: number;
  scale: number;
}

/** Encodes a batch of planar segments (one native call). */
export type SegmentEncoder = (segments: Float32Array[]) => Promise<SegmentCodes[]>;
/** Decodes a batch of segments' codes (with their scales) to planar audio. */
export type SegmentDecoder = (segments: SegmentCodes[]) => Promise<Float32Array[]>;

/** Frames of a full segment: ceil(length / hop). */
export function framesPerSegment(g: SegmentGeometry): number {
  return Math.ceil(g.length / g.hop);
}

/** Segments Meta's encode cuts `samples` samples per channel into: one per offset in range(0, samples, stride). */
export function segmentCount(samples: number, g: SegmentGeometry): number {
  return Math.ceil(samples / g.stride);
}

/** Frames of each segment of `samples` samples per channel: ceil(min(samples - k stride, length) / hop). */
export function segmentFramesOf(samples: number, g: SegmentGeometry): number[] {
  const out: number[] = [];
  for (let k = 0; k < segmentCount(samples, g); k++) out.push(Math.ceil(Math.min(samples - k * g.stride, g.length) / g.hop));
  return out;
}

/** Frames of the codes of `samples` samples per channel (all segments together). */
export function framesForSegmentedSamples(samples: number, g: SegmentGeometry): number {
  return segmentFramesOf(samples, g).reduce((a, b) => a + b, 0);
}

/**
 * Frames of each of `segments` segments holding `nFrames` frames in all. Every segment but the last two is full;
 * the second-to-last is shorter than a full segment only when the last holds under `length - stride` samples, so
 * the split follows from the total (found by trying each length of the last segment). Throws a RangeError when no
 * audio length gives these counts.
 */
export function segmentFrameCounts(nFrames: number, segments: number, g: SegmentGeometry): number[] {
  const full = framesPerSegment(g);
  if (segments === 1 && nFrames >= 1 && nFrames <= full) return [nFrames];
  const rest = nFrames - full * (segments - 2); // frames of the last two segments
  if (segments >= 2 && rest >= 2) {
    for (let last = 1; last <= g.length; last += 1) {
      const a = Math.ceil(Math.min(last + g.stride, g.length) / g.hop);
      const b = Math.ceil(last / g.hop);
      if (a + b === rest) return [...Array<number>(segments - 2).fill(full), a, b];
      if (a + b > rest) break;
    }
  }
  throw rangeError(`${nFrames} frames do not fit ${segments} segments of at most ${full} frames (Meta's segments of some audio length)`);
}

/**
 * Samples per channel that decoding segments of these frame counts gives (before trimming): where the furthest
 * decoded segment ends. Meta's `_linear_overlap_add` sizes its output from the last segment alone,
 * `stride * (segments - 1) + last length`, and fails (a tensor shape mismatch) when the segment before it reaches
 * further, which happens when the last segment holds 161 to 320 samples (e.g. 47840 samples of audio: segments of
 * 150 and 1 frames); here the output covers every segment, the same samples everywhere Meta's covers.
 */
export function decodedSegmentedSamples(frameCounts: number[], g: SegmentGeometry): number {
  return Math.max(...frameCounts.map((frames, k) => k * g.stride + frames * g.hop));
}

/** Joins consecutive code blocks of segmented codes (e.g. encodeStreamBlocks' blocks) with their scales. */
export function concatSegmentedCodes(blocks: Codes[]): SegmentedCodes {
  const { data, nQ, nFrames } = concatCodes(blocks);
  const scales = new Float32Array(blocks.reduce((n, b) => n + (b.scales?.length ?? 0), 0));
  let k = 0;
  for (const b of blocks) {
    scales.set(b.scales ?? [], k);
    k += b.scales?.length ?? 0;
  }
  return { data, nQ, nFrames, scales, segmentFrames: blocks[0].segmentFrames as number };
}

/** Planar copy of samples [start, end) of each channel of planar `samples` (`perChannel` samples each). */
function cut(samples: Float32Array, perChannel: number, channels: number, start: number, end: number): Float32Array {
  const n = end - start;
  const out = new Float32Array(n * channels);
  for (let c = 0; c < channels; c++) out.set(samples.subarray(c * perChannel + start, c * perChannel + end), c * n);
  return out;
}

/** Joins the segment codes of consecutive segments (in order) into one codes object with their scales. */
function joinSegments(parts: SegmentCodes[], g: SegmentGeometry): SegmentedCodes {
  const { data, nQ, nFrames } = concatCodes(parts);
  return { data, nQ, nFrames, scales: Float32Array.from(parts, (p) => p.scale), segmentFrames: framesPerSegment(g) };
}

/** Encodes planar audio (`samples.length / channels` samples per channel) segment by segment, `batch` per call. */
export async function encodeSegmented(
  samples: Float32Array,
  g: SegmentGeometry,
  batch: number,
  encode: SegmentEncoder,
): Promise<SegmentedCodes> {
  const perChannel = samples.length / g.channels;
  const n = segmentCount(perChannel, g);
  const parts: SegmentCodes[] = [];
  for (let first = 0; first < n; first += batch) {
    const segments: Float32Array[] = [];
    for (let k = first; k < Math.min(first + batch, n); k++) {
      segments.push(cut(samples, perChannel, g.channels, k * g.stride, Math.min(k * g.stride + g.length, perChannel)));
    }
    parts.push(...(await encode(segments)));
  }
  return joinSegments(parts, g);
}

/**
 * Meta's segments of a stream of planar blocks of any length (each `channels` runs of equal length), in batches of up
 * to `batch` planar segments, in order: a segment is cut once its samples are all read (or the stream has ended).
 * Holds about one batch of segments of audio. Throws a TypeError / RangeError for a block that is not planar audio of
 * the model's channels, and a RangeError for an empty stream.
 */
export async function* segmentBatches(
  chunks: AsyncIterable<Float32Array> | Iterable<Float32Array>,
  g: SegmentGeometry,
  batch: number,
): AsyncGenerator<Float32Array[], void, undefined> {
  let held: Float32Array[] = Array.from({ length: g.channels }, () => new Float32Array(0));
  let heldStart = 0; // stream sample (per channel) of held[c][0]
  let total = 0; // samples per channel read so far
  let next = 0; // index of the next segment to cut
  let index = 0;

  const append = (block: Float32Array): void => {
    const n = block.length / g.channels;
    held = held.map((h, c) => {
      const grown = new Float32Array(h.length + n);
      grown.set(h);
      grown.set(block.subarray(c * n, (c + 1) * n), h.length);
      return grown;
    });
    total += n;
  };
  // Cuts segments [next, next + count) from the stream's first `available` samples per channel.
  const cutBatch = (count: number, available: number): Float32Array[] => {
    const segments: Float32Array[] = [];
    for (let k = next; k < next + count; k++) {
      const start = k * g.stride - heldStart;
      const end = Math.min(k * g.stride + g.length, available) - heldStart;
      const seg = new Float32Array((end - start) * g.channels);
      held.forEach((h, c) => seg.set(h.subarray(start, end), c * (end - start)));
      segments.push(seg);
    }
    next += count;
    const drop = Math.min(next * g.stride - heldStart, held[0].length); // the next segment starts there
    held = held.map((h) => h.slice(drop));
    heldStart += drop;
    return segments;
  };

  for await (const chunk of chunks) {
    if (!(chunk instanceof Float32Array)) {
      throw typeError(`stream block ${index} must be a Float32Array of planar samples, got ${chunk === null ? 'null' : typeof chunk}`);
    }
    if (chunk.length % g.channels !== 0) {
      throw rangeError(
        `stream block ${index} has ${chunk.length} samples, not a multiple of the model's ${g.channels} channels ` +
          '(each block is planar: channel 0\'s samples, then channel 1\'s)',
      );
    }
    index++;
    append(chunk);
    // a full segment k is ready once samples up to k * stride + length are held, and the stream goes on after it
    while (total >= (next + batch - 1) * g.stride + g.length) yield cutBatch(batch, total);
  }
  if (total === 0) throw rangeError('the audio stream is empty; pass at least one sample');
  const n = segmentCount(total, g);
  while (next < n) yield cutBatch(Math.min(batch, n - next), total);
}

/**
 * Streaming segmented encoding: planar blocks of any length in (see segmentBatches), code blocks out, one per batch
 * of segments, in order (`firstFrame` says where each starts; `scales` holds its segments' scales). Holds about one
 * batch of segments of audio. Concatenated, the blocks equal encodeSegmented's codes.
 */
export async function* encodeSegmentedStream(
  chunks: AsyncIterable<Float32Array> | Iterable<Float32Array>,
  g: SegmentGeometry,
  batch: number,
  encode: SegmentEncoder,
): AsyncGenerator<CodesBlock, void, undefined> {
  let firstFrame = 0;
  for await (const segments of segmentBatches(chunks, g, batch)) {
    const block = joinSegments(await encode(segments), g);
    yield { ...block, firstFrame };
    firstFrame += block.nFrames;
  }
}

/**
 * Streaming segmented latents: as encodeSegmentedStream, with each batch of segments run through `latents` (the
 * encoder's output for each normalised segment, [dim, frames]) and joined along time, so that frame f of the blocks
 * is frame f of the segments' codes.
 */
export async function* latentsSegmentedStream(
  chunks: AsyncIterable<Float32Array> | Iterable<Float32Array>,
  g: SegmentGeometry,
  batch: number,
  latents: (segments: Float32Array[]) => Promise<Embeddings[]>,
): AsyncGenerator<LatentsBlock, void, undefined> {
  let firstFrame = 0;
  for await (const segments of segmentBatches(chunks, g, batch)) {
    const block = concatLatents(await latents(segments));
    yield { ...block, firstFrame };
    firstFrame += block.nFrames;
  }
}

/** The segments of segmented codes (`codes.scales` one per segment; frames as segmentFrameCounts splits them). */
export function splitSegments(codes: SegmentedCodes, g: SegmentGeometry): SegmentCodes[] {
  const counts = segmentFrameCounts(codes.nFrames, codes.scales.length, g);
  const out: SegmentCodes[] = [];
  let start = 0;
  for (let k = 0; k < codes.scales.length; k++) {
    const frames = counts[k];
    const data = new Int16Array(codes.nQ * frames);
    for (let q = 0; q < codes.nQ; q++) data.set(codes.data.subarray(q * codes.nFrames + start, q * codes.nFrames + start + frames), q * frames);
    out.push({ data, nQ: codes.nQ, nFrames: frames, scale: codes.scales[k] });
    start += frames;
  }
  return out;
}

/**
 * Meta's `_linear_overlap_add`, in float32 arithmetic element by element as torch computes it (each product, sum
 * and quotient rounded to float32): weight = 0.5 - |t - 0.5| with t = linspace(0, 1, L + 2)[1:-1] over the first
 * segment's length L (here t = (i + 1) / (L + 1) rounded to float32, which can differ from torch.linspace's
 * vectorised rounding by one unit in the last place), out += weight * frame and sum += weight at each segment's
 * offset, out / sum at the end.
 */
export class OverlapAdd {
  readonly total: number;
  private readonly out: Float32Array;
  private readonly sum: Float32Array;
  private weight: Float32Array | undefined;
  private offset = 0;

  constructor(
    private readonly g: SegmentGeometry,
    total: number,
  ) {
    this.total = total;
    this.out = new Float32Array(total * g.channels);
    this.sum = new Float32Array(total);
  }

  /** Adds the next segment's decoded planar audio. */
  add(frame: Float32Array): void {
    const { channels } = this.g;
    const n = frame.length / channels;
    if (!this.weight) this.weight = triangle(n);
    const w = this.weight;
    if (n > w.length || this.offset + n > this.total) throw rangeError('internal error: a segment does not fit the overlap-add');
    const f = Math.fround;
    for (let c = 0; c < channels; c++) {
      const base = c * this.total + this.offset;
      for (let i = 0; i < n; i++) this.out[base + i] = f(this.out[base + i] + f(w[i] * frame[c * n + i]));
    }
    for (let i = 0; i < n; i++) this.sum[this.offset + i] = f(this.sum[this.offset + i] + w[i]);
    this.offset += this.g.stride;
  }

  /** The joined planar audio (`total` samples per channel). */
  result(): Float32Array {
    const { out, sum, total } = this;
    for (let c = 0; c < this.g.channels; c++) {
      for (let i = 0; i < total; i++) out[c * total + i] = out[c * total + i] / sum[i];
    }
    return out;
  }
}

function triangle(length: number): Float32Array {
  const f = Math.fround;
  const w = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const t = f((i + 1) / (length + 1));
    w[i] = f(0.5 - Math.abs(f(t - 0.5)));
  }
  return w;
}

/** Decodes segmented codes, `batch` segments per call, and joins them by overlap-add (planar output). */
export async function decodeSegmented(
  codes: SegmentedCodes,
  g: SegmentGeometry,
  batch: number,
  decode: SegmentDecoder,
): Promise<Float32Array> {
  const segments = splitSegments(codes, g);
  const ola = new OverlapAdd(g, decodedSegmentedSamples(segments.map((s) => s.nFrames), g));
  for (let first = 0; first < segments.length; first += batch) {
    for (const audio of await decode(segments.slice(first, first + batch))) ola.add(audio);
  }
  return ola.result();
}

/** Whether codes carry segment scales (codes of a segmented model). */
export function isSegmented(codes: Codes): codes is SegmentedCodes {
  return codes.scales !== undefined;
}
