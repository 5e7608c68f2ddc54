/** A window over a stream of samples, for the streaming coders and scorers (lib/codec, lib/quality). */
import { codedError } from './errors';

/**
 * A growing window of stream samples: holds samples [offset, offset + length) of the stream, appends blocks,
 * drops what no later window needs. Memory stays about one batch of windows.
 */
export class SampleWindow {
  private buffer = new Float32Array(0);
  length = 0;
  /** Stream index of buffer[0]. */
  offset = 0;

  get end(): number {
    return this.offset + this.length;
  }

  append(block: Float32Array): void {
    if (this.length + block.length > this.buffer.length) {
      const grown = new Float32Array(Math.max(this.length + block.length, this.buffer.length * 2));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
    }
    this.buffer.set(block, this.length);
    this.length += block.length;
  }

  /** Copies stream samples [start, end), which must be held, into a new array. */
  slice(start: number, end: number): Float32Array {
    if (start < this.offset || end > this.end) throw codedError('ENCODEC_INTERNAL', `internal error: samples ${start}..${end} are not held`);
    return this.buffer.slice(start - this.offset, end - this.offset);
  }

  /** Forgets samples before stream index `start`. */
  dropBefore(start: number): void {
    const n = Math.min(Math.max(0, start - this.offset), this.length);
    if (n === 0) return;
    this.buffer.copyWithin(0, n, this.length);
    this.length -= n;
    this.offset += n;
  }
}
