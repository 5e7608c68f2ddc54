/**
 * The mel round trip (mel spectrogram -> Griffin-Lim) of a stream of audio, window by window, for the round-trip
 * score of `extract --report --mode mel` in bounded memory.
 *
 * Griffin-Lim cannot run over a stream: it iterates over the whole spectrogram, starts from a random phase,
 * and the spectrogram is in dB relative to its maximum and the result scaled to a peak of 0.9 (lib/dsp/mel.ts).
 * So each window (the STOI windows of ./windowed-metrics, `windowEnd`) is turned into a mel spectrogram and
 * back on its own, with one FFT length (`nFft` samples) of the audio on each side so that its first and last
 * frames see their neighbours as in one pass; those margins are cut off again. A stream of one window (up to 1.5
 * windows long) is exactly one pass over the whole audio; over several windows each window has its own dB
 * reference, output level and initial phase.
 */
import { MelSettings, melSpectrogram, melToAudio } from '../dsp/mel';
import { codedError } from '../common/errors';
import { windowEnd } from './windowed-metrics';

/** A growing run of stream samples that forgets the oldest: holds samples [offset, offset + length). */
class HeldSamples {
  private buffer = new Float32Array(0);
  length = 0;
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

  /** A copy of stream samples [start, end), which must be held. */
  slice(start: number, end: number): Float32Array {
    if (start < this.offset || end > this.end) throw codedError('ENCODEC_INTERNAL', `internal error: samples ${start}..${end} are not held`);
    return this.buffer.slice(start - this.offset, end - this.offset);
  }

  dropBefore(start: number): void {
    const n = Math.min(Math.max(0, start - this.offset), this.length);
    this.buffer.copyWithin(0, n, this.length);
    this.length -= n;
    this.offset += n;
  }
}

/** Mel round trip of a stream in windows of `windowSamples`: `push` the audio, get the restored audio back in order. */
export class MelRoundTrip {
  private readonly held = new HeldSamples();
  /** Start of the next window. */
  private next = 0;
  private ended = false;

  constructor(
    private readonly settings: MelSettings,
    private readonly windowSamples: number,
  ) {}

  /** Adds the next block of audio; resolves with the restored audio of the windows it completes. */
  async push(block: Float32Array): Promise<Float32Array[]> {
    this.held.append(block);
    return this.restoreReady();
  }

  /** Restores the windows left. */
  async end(): Promise<Float32Array[]> {
    this.ended = true;
    return this.restoreReady();
  }

  private async restoreReady(): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    const margin = this.settings.nFft;
    for (;;) {
      const start = this.next;
      const end = windowEnd(start, this.held.end, this.ended, this.windowSamples);
      if (end === undefined || (!this.ended && this.held.end < end + margin)) return out;
      const from = Math.max(0, start - margin);
      const audio = this.held.slice(from, Math.min(this.held.end, end + margin));
      const restored = await melToAudio(await melSpectrogram(audio, this.settings), audio.length, this.settings);
      out.push(restored.slice(start - from, end - from));
      this.next = end;
      this.held.dropBefore(end - margin);
    }
  }
}
