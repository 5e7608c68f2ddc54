/**
 * Round-trip quality of one input, for `extract --report`: how much of the sound survives the chosen
 * encoding. EnCodec mode encodes the audio at the bandwidth and decodes it again; mel mode turns the mel
 * spectrogram back into audio (Griffin-Lim). The result is scored against the input with lib/quality/metrics.ts.
 *
 * The audio scored is what extract reads (the first maxTrs * tr seconds with `maxTrs`; for a run, its timeline of
 * silence and stimuli given as `audio`), not the TR features themselves: an HRF-convolved feature set has no audio
 * to compare with. With encodec_48khz the audio is 48 kHz stereo, coded as the model codes it (segments and
 * scales), and the scores compare the mono mixes ((L + R) / 2) of the input and the decoded audio at 48 kHz, as
 * `metrics` compares files.
 *
 * Memory stays bounded whatever the input's length (the 24 kHz model and mel mode): the audio is streamed, encoded and decoded as it streams
 * (the codec's chunked streaming, the same codes and audio as encoding and decoding it whole with the default
 * chunking), and scored by ./windowed-metrics (STOI in windows; docs/metrics.md); mel mode runs Griffin-Lim per
 * window (./mel-roundtrip). `extract` does better still for the plain streamed codes: it hands this module the
 * audio and codes it already reads and computes ({@link RoundTripTap}), so the file is read and encoded once.
 */
import { loadAudio, streamAudio } from '../io/audio';
import { fromPlanar } from '../common/planar';
import { requireWholeFileModel } from '../model/model-file';
import { SAMPLE_RATE, checkBandwidth, codebooksForBandwidth } from '../codec/bandwidth';
import { Encodec } from '../codec/codec';
import { Codes } from '../codec/codes';
import { MelOptions, melSettings } from '../dsp/mel';
import { QualityMetrics } from './metrics';
import { DEFAULT_WINDOW_SECONDS, WindowedMetrics } from './windowed-metrics';
import { MelRoundTrip } from './mel-roundtrip';
import { codedError, typeError, rangeError } from '../common/errors';
import { formatDb, formatScore } from '../common/format';

export interface RoundTripQualityOptions {
  /** 'encodec' (default) or 'mel'. */
  mode?: 'encodec' | 'mel';
  /** The loaded model (EnCodec mode). */
  model?: Encodec;
  /** Bandwidth in kbps (EnCodec mode). */
  bandwidth?: number;
  /** Score only the first this many seconds of `input` (default: all); unused with `audio`. */
  maxSeconds?: number;
  /**
   * The audio to score instead of reading `input` (which then only names it): a fresh stream at the rate and
   * channels given per call (the model's: 24 kHz mono, or 48 kHz planar stereo blocks; the mel rate, mono), e.g. a
   * BIDS run's timeline (lib/fmri's extractedAudio).
   */
  audio?: (sampleRate: number, channels: 1 | 2) => AsyncIterable<Float32Array>;
  /** Mel settings (mel mode). */
  mel?: MelOptions;
  /** Seconds per STOI window, and per Griffin-Lim pass in mel mode (default 60; docs/metrics.md). */
  windowSeconds?: number;
}

/** Quality of a round trip: the metrics, plus what was compared. */
export interface RoundTripQuality extends QualityMetrics {
  mode: 'encodec' | 'mel';
  /** Bandwidth in kbps (EnCodec mode), or null. */
  bandwidth: number | null;
  /** Rate the comparison ran at (the model's, 24 or 48 kHz, for EnCodec; the mel rate for mel). */
  sampleRate: number;
  /** Seconds of audio compared. */
  seconds: number;
}

function noAudio(input: string): RangeError {
  return rangeError(`'${input}' holds no audio samples to score`);
}

/**
 * Encodes and decodes (or mel-inverts) the audio of `input` (or `options.audio`) as it streams and scores the
 * result against it.
 */
export async function roundTripQuality(input: string, options: RoundTripQualityOptions): Promise<RoundTripQuality> {
  const mode = options.mode ?? 'encodec';
  const windowSeconds = options.windowSeconds ?? DEFAULT_WINDOW_SECONDS;
  if (options.audio !== undefined && typeof options.audio !== 'function') {
    throw typeError('audio must be a function of (sampleRate, channels) giving a stream of Float32Array blocks');
  }
  const stream = (sampleRate: number): AsyncIterable<Float32Array> =>
    options.audio ? options.audio(sampleRate, 1) : streamAudio(input, { sampleRate, maxSeconds: options.maxSeconds });
  if (mode === 'mel') {
    const s = melSettings(options.mel);
    const scores = new WindowedMetrics(s.sampleRate, { windowSeconds });
    const mel = new MelRoundTrip(s, Math.round(windowSeconds * s.sampleRate));
    for await (const block of stream(s.sampleRate)) {
      scores.addRef(block);
      for (const restored of await mel.push(block)) scores.addTest(restored);
    }
    if (scores.samples === 0) throw noAudio(input);
    for (const restored of await mel.end()) scores.addTest(restored);
    return { ...scores.finish(), mode, bandwidth: null, sampleRate: s.sampleRate, seconds: scores.samples / s.sampleRate };
  }
  const { model, bandwidth } = options;
  if (!(model instanceof Encodec)) throw typeError('roundTripQuality needs a loaded model (Encodec) in EnCodec mode');
  if (model.info.channels === 2) {
    checkBandwidth(bandwidth);
    const rate = model.info.sample_rate;
    const samples = options.audio
      ? await collectPlanar(options.audio(rate, 2), 2)
      : (await loadAudio(input, { sampleRate: rate, channels: 2, maxSeconds: options.maxSeconds })).samples;
    return stereoRoundTrip(input, model, bandwidth as number, samples, windowSeconds);
  }
  const tap = new RoundTripTap(model, bandwidth as number, { windowSeconds });
  let ended = false;
  async function* read(): AsyncGenerator<Float32Array> {
    for await (const block of stream(SAMPLE_RATE)) {
      tap.audio(block);
      yield block;
    }
    ended = true;
  }
  try {
    for await (const codes of model.encodeStreamBlocks(read(), { bandwidth })) await tap.codes(codes);
  } catch (err) {
    if (ended && tap.samples === 0) throw noAudio(input); // the encoder's 'stream is empty', named after the input
    throw err;
  }
  return tap.result(input);
}

/**
 * The round trip of audio that is being encoded anyway (extract's streamed codes; `ExtractOptions.tap`): give it
 * each block of audio as it is read and each block of codes as it is encoded; it decodes the codes as they come
 * and scores the decoded audio against the audio, holding only about a window of each. The codes must be those
 * of the codec's default chunked streaming of that audio at `bandwidth` (then the result is that of
 * {@link roundTripQuality} on the same audio).
 */
export class RoundTripTap {
  private readonly decoder: ReturnType<Encodec['streamDecoder']>;
  private readonly scores: WindowedMetrics;
  private readonly nQ: number;

  constructor(
    model: Encodec,
    private readonly bandwidth: number,
    options: { windowSeconds?: number } = {},
  ) {
    if (!(model instanceof Encodec)) throw typeError('the round trip needs a loaded model (Encodec)');
    requireWholeFileModel(model.info, 'the round-trip quality score');
    checkBandwidth(bandwidth);
    this.nQ = codebooksForBandwidth(bandwidth);
    this.decoder = model.streamDecoder();
    this.scores = new WindowedMetrics(SAMPLE_RATE, { windowSeconds: options.windowSeconds });
  }

  /** Samples of audio seen. */
  get samples(): number {
    return this.scores.samples;
  }

  /** Samples held for scoring now (audio and decoded audio not yet scored). */
  get held(): number {
    return this.scores.held;
  }

  /** The next block of 24 kHz audio, as it is read (before it is encoded). */
  audio(block: Float32Array): void {
    this.scores.addRef(block);
  }

  /** The next block of codes of that audio, as it is encoded. */
  async codes(block: Codes): Promise<void> {
    if (block.nQ !== this.nQ) {
      throw codedError('ENCODEC_INTERNAL', `internal error: codes of ${block.nQ} codebooks for a round trip at ${this.bandwidth} kbps`);
    }
    for (const audio of await this.decoder.push(block)) this.scores.addTest(audio);
  }

  /** Decodes the codes left and scores the rest: the round trip's quality. `input` names the audio in errors. */
  async result(input: string): Promise<RoundTripQuality> {
    if (this.samples === 0) throw noAudio(input);
    for (const audio of await this.decoder.end()) this.scores.addTest(audio);
    // Decoding gives whole frames (a multiple of 320 samples): the scores compare over the audio's length.
    const metrics = this.scores.finish();
    return { ...metrics, mode: 'encodec', bandwidth: this.bandwidth, sampleRate: SAMPLE_RATE, seconds: this.samples / SAMPLE_RATE };
  }
}

/** Planar blocks of `channels` channels (each block's channel 0, then channel 1, ...) as one planar signal. */
async function collectPlanar(blocks: AsyncIterable<Float32Array>, channels: number): Promise<Float32Array> {
  const parts: Float32Array[][] = [];
  let n = 0;
  for await (const block of blocks) {
    parts.push(fromPlanar(block, channels).map((c) => c.slice()));
    n += block.length / channels;
  }
  const out = new Float32Array(n * channels);
  let at = 0;
  for (const part of parts) {
    part.forEach((c, ch) => out.set(c, ch * n + at));
    at += part[0].length;
  }
  return out;
}

/** Mono mix (L + R) / 2 of the first `n` samples of each channel of planar stereo `samples`. */
function monoMix(samples: Float32Array, n: number): Float32Array {
  const [left, right] = fromPlanar(samples, 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (left[i] + right[i]) / 2;
  return out;
}

/**
 * The round trip of a stereo model (encodec_48khz), scored on the mono mixes (see the module notes) by the same
 * windowed metrics. Unlike the 24 kHz path it holds the whole input and its decoded audio: the segmented model has
 * no streaming decoder yet.
 */
async function stereoRoundTrip(input: string, model: Encodec, bandwidth: number, samples: Float32Array, windowSeconds: number): Promise<RoundTripQuality> {
  const rate = model.info.sample_rate;
  const n = samples.length / 2;
  if (n === 0) throw noAudio(input);
  // the decoded audio covers whole segments: each channel is compared over the input's length
  const decoded = await model.decode(await model.encode(samples, { bandwidth }));
  const scores = new WindowedMetrics(rate, { windowSeconds });
  scores.addRef(monoMix(samples, n));
  scores.addTest(monoMix(decoded, n));
  return { ...scores.finish(), mode: 'encodec', bandwidth, sampleRate: rate, seconds: n / rate };
}

/** One line for a terminal: `SNR 12.3 dB, SI-SNR 11.0 dB, STOI 0.912, ESTOI 0.801`. */
export function formatQuality(q: QualityMetrics): string {
  const score = (v: number | null): string => formatScore(v, 3, 'n/a (under 0.4 s of speech)');
  return `SNR ${formatDb(q.snr, 1)}, SI-SNR ${formatDb(q.siSnr, 1)}, STOI ${score(q.stoi)}, ESTOI ${score(q.estoi)}`;
}
