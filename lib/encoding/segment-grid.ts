/**
 * The time of segmented frames (encodec_48khz), and their regridding to one frame every hop (a uniform frame grid).
 *
 * Meta's 48 kHz model codes 1 s segments (48000 samples) that start every 47520 samples (lib/codec/segments.ts):
 * frame j of segment k covers samples [47520 k + 320 j, 47520 k + 320 (j + 1)), i.e. it starts at
 * `k * 0.99 + j / 150` seconds. A full segment has 150 frames, so the joined codes hold 150 frames per 0.99 s and a
 * frame's index in them is not its time (the drift is 1.5 frames per segment, 1 s every 99 s).
 *
 * The grid puts frame n at samples [320 n, 320 (n + 1)), time n / 150, as the 24 kHz model's frames are at 75 frames/s,
 * and fills it with the code frame of the segment that had started last at the grid frame's centre
 * c_n = 320 n + 160: segment k = min(floor(c_n / 47520), K - 1) of the K segments, its frame
 * j = min(floor((c_n - 47520 k) / 320), frames_k - 1), the frame whose samples hold c_n. Segment starts are 148.5 frames
 * apart, so an even segment's frames lie exactly on the grid (frame j of segment k is grid frame 148.5 k + j) and an
 * odd segment's lie half a frame off it: there grid frame n takes the code frame starting at c_n, 160 samples
 * (1/300 s, about 3.3 ms) after grid frame n starts. That half frame is the whole error of the rule: no code frame is
 * placed further from its own time. Each segment gives the grid its frames 0..147 or 0..148 (148.5 a segment on
 * average); its last one or two frames, which cover the start of the next segment, are not used. The last segment's
 * frames are used to the end of the audio (a grid frame whose centre lies past the audio's last sample repeats the
 * last frame), and the grid has ceil(samples / 320) frames, as the 24 kHz model's codes of that many samples.
 */
import { SegmentGeometry, framesPerSegment, framesForSegmentedSamples, segmentCount } from '../codec/segments';
import { codedError } from '../common/errors';

/** Where grid frame `n` comes from: segment `segment`, its frame `index`. */
export interface GridSource {
  segment: number;
  index: number;
}

/** Grid frames of `samples` samples per channel: ceil(samples / hop). */
export function gridFrames(samples: number, g: SegmentGeometry): number {
  return Math.ceil(samples / g.hop);
}

/**
 * The segment frame grid frame `n` takes (see the module notes), for audio of `samples` samples per channel.
 */
export function gridSource(n: number, samples: number, g: SegmentGeometry): GridSource {
  const centre = n * g.hop + g.hop / 2;
  const segments = segmentCount(samples, g);
  const segment = Math.min(Math.floor(centre / g.stride), segments - 1);
  const length = Math.min(samples - segment * g.stride, g.length);
  const index = Math.min(Math.floor((centre - segment * g.stride) / g.hop), Math.ceil(length / g.hop) - 1);
  return { segment, index };
}

/** Receives grid frames: `data` laid out [rows, nFrames], grid frames [firstFrame, firstFrame + nFrames). */
export type GridSink = (data: Float32Array | Int16Array, firstFrame: number, nFrames: number) => void;

/**
 * Regrids a stream of segmented frames (blocks [rows, nFrames] of the joined segment frames, in order, as
 * encodeStreamBlocks / latentsStream / embeddings of their blocks give them) onto the uniform grid, passing grid
 * frames on as soon as they are known. Holds about one block of frames. `finish(samples)` (the audio's samples per
 * channel) passes the rest on: the last segment's frames can only be placed once the audio's length is known.
 */
export class SegmentGrid {
  private held: Float32Array | Int16Array;
  /** Joined frame index of held frame 0, and how many frames are held. */
  private heldStart = 0;
  private heldFrames = 0;
  /** Joined frames received. */
  private received = 0;
  /** The next grid frame to pass on. */
  private next = 0;
  private readonly full: number;

  constructor(
    private readonly g: SegmentGeometry,
    private readonly rows: number,
    private readonly integer: boolean,
    private readonly sink: GridSink,
  ) {
    this.full = framesPerSegment(g);
    this.held = this.alloc(0);
  }

  private alloc(frames: number): Float32Array | Int16Array {
    return this.integer ? new Int16Array(this.rows * frames) : new Float32Array(this.rows * frames);
  }

  /** Adds joined segment frames [firstFrame, firstFrame + nFrames), `data` laid out [rows, nFrames]. */
  add(data: ArrayLike<number>, firstFrame: number, nFrames: number): void {
    if (firstFrame !== this.received) throw codedError('ENCODEC_INTERNAL', `internal error: segment frames ${firstFrame} arrived, ${this.received} expected`);
    const frames = this.heldFrames + nFrames;
    const grown = this.alloc(frames);
    for (let r = 0; r < this.rows; r++) {
      grown.set(this.held.subarray(r * this.heldFrames, (r + 1) * this.heldFrames), r * frames);
      for (let t = 0; t < nFrames; t++) grown[r * frames + this.heldFrames + t] = data[r * nFrames + t];
    }
    this.held = grown;
    this.heldFrames = frames;
    this.received += nFrames;
    // Segment k starts at joined frame full * k unless it is the last (only the last two can be short); grid frames
    // of segment k are known once a frame past full * (k + 1) has arrived: segment k + 1 exists, so k is not the last.
    const ready: number[] = [];
    for (;;) {
      const centre = this.next * this.g.hop + this.g.hop / 2;
      const segment = Math.floor(centre / this.g.stride);
      if (this.received <= this.full * (segment + 1)) break;
      ready.push(this.full * segment + Math.floor((centre - segment * this.g.stride) / this.g.hop));
      this.next++;
    }
    this.emit(ready);
    const segment = Math.floor((this.next * this.g.hop + this.g.hop / 2) / this.g.stride);
    this.drop(this.full * segment); // earlier segments are done with
  }

  /** Passes on the grid frames left, for audio of `samples` samples per channel (all its frames added). */
  finish(samples: number): void {
    if (samples === 0) return;
    if (this.received !== framesForSegmentedSamples(samples, this.g)) {
      throw codedError('ENCODEC_INTERNAL', `internal error: ${this.received} segment frames for ${samples} samples`);
    }
    const segments = segmentCount(samples, this.g);
    const lastLength = samples - (segments - 1) * this.g.stride;
    const lastStart = this.received - Math.ceil(lastLength / this.g.hop);
    const ready: number[] = [];
    for (; this.next < gridFrames(samples, this.g); this.next++) {
      const { segment, index } = gridSource(this.next, samples, this.g);
      ready.push((segment === segments - 1 ? lastStart : this.full * segment) + index);
    }
    this.emit(ready);
  }

  /** Passes on the grid frames taken from joined frames `sources` (in order, from `this.next - sources.length`). */
  private emit(sources: number[]): void {
    if (sources.length === 0) return;
    const out = this.alloc(sources.length);
    for (let i = 0; i < sources.length; i++) {
      const t = sources[i] - this.heldStart;
      if (t < 0 || t >= this.heldFrames) throw codedError('ENCODEC_INTERNAL', `internal error: segment frame ${sources[i]} is not held`);
      for (let r = 0; r < this.rows; r++) out[r * sources.length + i] = this.held[r * this.heldFrames + t];
    }
    this.sink(out, this.next - sources.length, sources.length);
  }

  /** Forgets held frames before joined frame `frame`. */
  private drop(frame: number): void {
    const n = Math.min(frame - this.heldStart, this.heldFrames);
    if (n <= 0) return;
    const frames = this.heldFrames - n;
    const kept = this.alloc(frames);
    for (let r = 0; r < this.rows; r++) kept.set(this.held.subarray(r * this.heldFrames + n, (r + 1) * this.heldFrames), r * frames);
    this.held = kept;
    this.heldFrames = frames;
    this.heldStart += n;
  }
}
