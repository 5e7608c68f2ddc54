/**
 * Round-trip quality of one input, for `extract --report`: how much of the sound survives the chosen
 * encoding. EnCodec mode encodes the audio at the bandwidth and decodes it again; mel mode turns the mel
 * spectrogram back into audio (Griffin-Lim). The result is scored against the input with lib/metrics.
 *
 * The audio scored is what extract reads (the first maxTrs * tr seconds with `maxTrs`), not the TR features
 * themselves: an HRF-convolved feature set has no audio to compare with. With encodec_48khz the audio is 48 kHz
 * stereo, coded as the model codes it (segments and scales), and the scores compare the mono mixes ((L + R) / 2) of
 * the input and the decoded audio at 48 kHz, as `metrics` compares files.
 */
import { loadAudio } from '../io/audio';
import { fromPlanar } from '../common/planar';
import { SAMPLE_RATE, checkBandwidth } from '../codec/bandwidth';
import { Encodec } from '../codec/codec';
import { MelOptions, melSettings, melSpectrogram, melToAudio } from '../dsp/mel';
import { QualityMetrics, computeMetrics } from './metrics';
import { typeError, rangeError } from '../common/errors';
import { formatDb, formatScore } from '../common/format';

export interface RoundTripQualityOptions {
  /** 'encodec' (default) or 'mel'. */
  mode?: 'encodec' | 'mel';
  /** The loaded model (EnCodec mode). */
  model?: Encodec;
  /** Bandwidth in kbps (EnCodec mode). */
  bandwidth?: number;
  /** Score only the first this many seconds (default: all). */
  maxSeconds?: number;
  /** Mel settings (mel mode). */
  mel?: MelOptions;
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

/** Encodes and decodes (or mel-inverts) the audio of `input` and scores the result against it. */
export async function roundTripQuality(input: string, options: RoundTripQualityOptions): Promise<RoundTripQuality> {
  const mode = options.mode ?? 'encodec';
  if (mode === 'mel') {
    const s = melSettings(options.mel);
    const { samples } = await loadAudio(input, { sampleRate: s.sampleRate, maxSeconds: options.maxSeconds });
    if (samples.length === 0) throw rangeError(`'${input}' holds no audio samples to score`);
    const restored = await melToAudio(await melSpectrogram(samples, s), samples.length, s);
    return { ...computeMetrics(samples, restored, s.sampleRate), mode, bandwidth: null, sampleRate: s.sampleRate, seconds: samples.length / s.sampleRate };
  }
  const { model, bandwidth } = options;
  if (!(model instanceof Encodec)) throw typeError('roundTripQuality needs a loaded model (Encodec) in EnCodec mode');
  checkBandwidth(bandwidth);
  if (model.info.channels === 2) return stereoRoundTrip(input, model, bandwidth, options.maxSeconds);
  const { samples } = await loadAudio(input, { sampleRate: SAMPLE_RATE, maxSeconds: options.maxSeconds });
  if (samples.length === 0) throw rangeError(`'${input}' holds no audio samples to score`);
  const decoded = await model.decode(await model.encode(samples, { bandwidth }));
  // Decoding gives whole frames (a multiple of 320 samples): compare over the input's length.
  const restored = decoded.subarray(0, samples.length);
  return { ...computeMetrics(samples, restored, SAMPLE_RATE), mode, bandwidth, sampleRate: SAMPLE_RATE, seconds: samples.length / SAMPLE_RATE };
}

/** Mono mix (L + R) / 2 of the first `n` samples of each channel of planar stereo `samples`. */
function monoMix(samples: Float32Array, n: number): Float32Array {
  const [left, right] = fromPlanar(samples, 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (left[i] + right[i]) / 2;
  return out;
}

/** The round trip of a stereo model (encodec_48khz), scored on the mono mixes (see the module notes). */
async function stereoRoundTrip(input: string, model: Encodec, bandwidth: number, maxSeconds: number | undefined): Promise<RoundTripQuality> {
  const rate = model.info.sample_rate;
  const { samples } = await loadAudio(input, { sampleRate: rate, channels: 2, maxSeconds });
  const n = samples.length / 2;
  if (n === 0) throw rangeError(`'${input}' holds no audio samples to score`);
  // the decoded audio covers whole segments: each channel is compared over the input's length
  const decoded = await model.decode(await model.encode(samples, { bandwidth }));
  const metrics = computeMetrics(monoMix(samples, n), monoMix(decoded, n), rate);
  return { ...metrics, mode: 'encodec', bandwidth, sampleRate: rate, seconds: n / rate };
}

/** One line for a terminal: `SNR 12.3 dB, SI-SNR 11.0 dB, STOI 0.912, ESTOI 0.801`. */
export function formatQuality(q: QualityMetrics): string {
  const score = (v: number | null): string => formatScore(v, 3, 'n/a (under 0.4 s of speech)');
  return `SNR ${formatDb(q.snr, 1)}, SI-SNR ${formatDb(q.siSnr, 1)}, STOI ${score(q.stoi)}, ESTOI ${score(q.estoi)}`;
}
