/**
 * Reading an entry's frames as the align stage needs them: on the model's uniform frame grid (frame j covers samples
 * [hop j, hop (j + 1)) of the input), as codes of the first nQ codebooks, their embeddings, or latents, block by
 * block, so that only a window of frames is in memory. This is the one place the model families differ for the
 * align stage: a whole-file model's frames are the grid; a segmented model's joined segment frames are put on it by
 * lib/encoding/segment-grid.ts.
 */
import { SegmentGeometry } from '../codec/segments';
import { gridFrames } from './segment-grid';
import { SegmentGrid } from './segment-grid';
import { codedError } from '../common/errors';
import { Codebooks, dequantize } from './codebooks';
import { Entry } from './entry';
import { FrameArray } from './npy-frames';

export type FrameKind = 'codes' | 'embeddings' | 'latents';

/** Joined frames read from the entry at a time. */
const READ_FRAMES = 8192;
/** Frames per tile of the transpose. */
const TILE = 64;

/** A block of grid frames, laid out [rows, nFrames]. */
interface Block {
  data: FrameArray;
  first: number;
  n: number;
}

/** What frames to read: their kind, and for codes and embeddings the codebooks used (the first nQ). */
export interface FrameRequest {
  kind: FrameKind;
  nQ: number;
  /** Needed for embeddings. */
  codebooks?: Codebooks;
}

export class StimulusFrames {
  readonly rows: number;
  readonly integer: boolean;
  /** Grid frames: ceil(samples / hop). */
  readonly nFrames: number;
  private blocks: Block[] = [];
  private source: AsyncGenerator<Block> | undefined;
  private loadedTo = 0;

  private constructor(
    readonly entry: Entry,
    private readonly request: FrameRequest,
    /** The model's frame for silence, converted as the frames are ([rows]). */
    readonly silence: FrameArray,
  ) {
    this.rows = rowsOf(entry, request);
    this.integer = request.kind === 'codes';
    this.nFrames = entry.meta.samples === 0 ? 0 : gridFrames(entry.meta.samples, geometry(entry) ?? { hop: entry.meta.hop_length } as SegmentGeometry);
  }

  static async open(entry: Entry, request: FrameRequest): Promise<StimulusFrames> {
    checkRequest(entry, request);
    const silence = convert(await entry.silence(), 1, entry.rows, request);
    return new StimulusFrames(entry, request, silence);
  }

  /**
   * Makes grid frames [from, to) readable by `copyFrame` (to <= nFrames). Calls must not move backwards: `from` never
   * less than an earlier call's (frames before it are forgotten).
   */
  async load(from: number, to: number): Promise<void> {
    while (this.blocks.length && this.blocks[0].first + this.blocks[0].n <= from) this.blocks.shift();
    if (this.blocks.length && this.blocks[0].first > from) throw codedError('ENCODEC_INTERNAL', `internal error: frame ${from} was read and forgotten`);
    this.source ??= this.gridBlocks();
    while (this.loadedTo < Math.min(to, this.nFrames)) {
      const next = await this.source.next();
      if (next.done) throw codedError('ENCODEC_FILE_FORMAT', `${this.entry.dir}: ${this.loadedTo} frames, ${this.nFrames} expected`);
      this.loadedTo = next.value.first + next.value.n;
      if (next.value.first + next.value.n > from) this.blocks.push(next.value);
    }
  }

  /** Copies grid frame j's rows into out[r * stride + offset]. */
  copyFrame(j: number, out: FrameArray, stride: number, offset: number): void {
    this.copyFrames(j, 1, out, stride, offset);
  }

  /** Copies grid frames [j, j + count) into out[r * stride + offset + t] (t the frame's place in the range), row by row. */
  copyFrames(j: number, count: number, out: FrameArray, stride: number, offset: number): void {
    let done = 0;
    for (const b of this.blocks) {
      const from = j + done;
      if (done === count) break;
      if (from < b.first || from >= b.first + b.n) continue;
      const n = Math.min(count - done, b.first + b.n - from);
      const at = from - b.first;
      for (let r = 0; r < this.rows; r++) out.set(b.data.subarray(r * b.n + at, r * b.n + at + n), r * stride + offset + done);
      done += n;
    }
    if (done !== count) throw codedError('ENCODEC_INTERNAL', `internal error: frame ${j + done} is not loaded`);
  }

  /** Grid blocks in order, converted to the requested kind. */
  private async *gridBlocks(): AsyncGenerator<Block> {
    const { entry, request } = this;
    const g = geometry(entry);
    const pending: Block[] = [];
    const grid = g ? new SegmentGrid(g, this.rows, this.integer, (data, first, n) => pending.push({ data, first, n })) : undefined;
    for (let from = 0; from < entry.nFrames; from += READ_FRAMES) {
      const n = Math.min(READ_FRAMES, entry.nFrames - from);
      const block = convert(await entry.readFrames(from, from + n), n, entry.rows, request);
      if (!grid) {
        yield { data: block, first: from, n };
        continue;
      }
      grid.add(block, from, n);
      while (pending.length) yield pending.shift() as Block;
    }
    if (grid && entry.meta.samples > 0) {
      grid.finish(entry.meta.samples);
      while (pending.length) yield pending.shift() as Block;
    }
  }
}

function geometry(entry: Entry): SegmentGeometry | undefined {
  const m = entry.meta;
  if (m.segment_samples === undefined) return undefined;
  return { length: m.segment_samples, stride: m.segment_stride as number, hop: m.hop_length, channels: m.channels };
}

function rowsOf(entry: Entry, r: FrameRequest): number {
  if (r.kind === 'codes') return r.nQ;
  if (r.kind === 'embeddings') return (r.codebooks as Codebooks).dim;
  return entry.rows;
}

function checkRequest(entry: Entry, r: FrameRequest): void {
  const stored = entry.meta.stored;
  if ((r.kind === 'latents') !== (stored === 'latents')) {
    throw codedError('ENCODEC_INTERNAL', `internal error: ${r.kind} asked of an entry of ${stored}`);
  }
  if (r.kind !== 'latents' && (r.nQ < 1 || r.nQ > entry.rows)) throw codedError('ENCODEC_INTERNAL', `internal error: ${r.nQ} codebooks asked of ${entry.rows}`);
  if (r.kind === 'embeddings' && !r.codebooks) throw codedError('ENCODEC_INTERNAL', 'internal error: embeddings need the codebooks');
}

/** Time-major [n, stored rows] -> the requested kind, [rows, n]. */
function convert(frames: FrameArray, n: number, stored: number, r: FrameRequest): FrameArray {
  if (r.kind === 'latents') return transpose(frames, n, stored, stored) as Float32Array;
  const codes = transpose(frames, n, stored, r.nQ) as Int16Array;
  if (r.kind === 'codes') return codes;
  return dequantize(codes, r.nQ, n, r.nQ, r.codebooks as Codebooks);
}

/** The first `rows` of each time-major frame, laid out [rows, n]. */
function transpose(frames: FrameArray, n: number, stored: number, rows: number): FrameArray {
  const out = frames instanceof Int16Array ? new Int16Array(rows * n) : new Float32Array(rows * n);
  // in tiles of TILE frames, each written row by row (frame by frame would touch `rows` cache lines per frame);
  // one loop per array type, as a loop that sees both stays slow (polymorphic element access)
  if (frames instanceof Int16Array) {
    for (let t0 = 0; t0 < n; t0 += TILE) {
      const end = Math.min(n, t0 + TILE);
      for (let r = 0; r < rows; r++) for (let t = t0; t < end; t++) out[r * n + t] = frames[t * stored + r];
    }
  } else {
    for (let t0 = 0; t0 < n; t0 += TILE) {
      const end = Math.min(n, t0 + TILE);
      for (let r = 0; r < rows; r++) for (let t = t0; t < end; t++) out[r * n + t] = frames[t * stored + r];
    }
  }
  return out;
}
