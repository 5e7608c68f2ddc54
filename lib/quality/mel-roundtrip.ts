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
import { windowEnd } from './windowed-metrics';
import { SampleWindow } from '../common/sample-window';

/** Mel round trip of a stream in windows of `windowSamples`: `push` the audio, get the restored audio back in order. */
export class MelRoundTrip {
  private readonly held = new SampleWindow();
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
