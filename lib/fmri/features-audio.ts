/**
 * TR features back to audio ({@link featuresToAudio}): frames go back to their original positions in a timeline of
 * exactly n_trs * tr seconds; a frame no TR window covers (the frames between windows, and the tail after the last
 * window) repeats the frame before it. EnCodec codes are decoded at 24 kHz; mel features are inverted with
 * Griffin-Lim at the mel rate. Embeddings and latents cannot be turned back into audio (the model decodes codes),
 * nor can encodec_48khz codes (its decoder needs whole segments and their scales, which TR features do not keep).
 */
import { FRAME_RATE, HOP_LENGTH, MAX_CODEBOOKS, SAMPLE_RATE } from '../codec/bandwidth';
import { checkCodeRange } from '../codec/codes';
import { Device, Encodec } from '../codec/codec';
import { withCodec } from '../codec/with-codec';
import { MelOptions, melSettings, melToAudio } from '../dsp/mel';
import { requireWholeFileModel } from '../model/model-file';
import { DEFAULT_FAMILY, findFamily } from '../model/family';
import { rangeError, typeError } from '../common/errors';
import { ceilTrTimesRate, checkTr, floorTrTimesRate, framesPerTr, samplesForTrs, trStartFrame } from './alignment';
import { DEFAULT_TR, FeatureInput, FeatureKind } from './feature-set';
import { oneOf } from './extract-options';
import { placeWindows } from './tr-windows';

export interface FeaturesToAudioOptions {
  /** The model for codes (a loaded Encodec, or a path; default as in extractFeatures). */
  model?: string | Encodec;
  /** TR the features were extracted with (default: the features' own `tr`, else 1.5). */
  tr?: number;
  /** What the features are (default: the features' own `kind`; Int16/Int32 data -> 'codes'). */
  kind?: FeatureKind;
  /** Mel settings (default: the features' own, else the defaults). */
  mel?: MelOptions;
  threads?: number;
  device?: Device;
}

/** Audio from `featuresToAudio`. */
export interface FeatureAudio {
  samples: Float32Array;
  /** 24000 for codes, the mel sampleRate (22050 by default) for mel. */
  sampleRate: number;
}

/** Resolves (n_trs, rows, frames) of features given 3-D, or flat with a known frames-per-TR. */
function featureDims(input: FeatureInput, frames: number, what: string): [number, number, number] {
  const { shape, features } = input;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw typeError('features.shape must be an array of non-negative integers');
  }
  let dims: [number, number, number];
  if (shape.length === 3) {
    if (shape[2] !== frames) {
      throw rangeError(
        `${what} features have ${shape[2]} frames per TR but the TR gives ${frames}; pass the tr they were extracted with`,
      );
    }
    dims = [shape[0], shape[1], shape[2]];
  } else if (shape.length === 2) {
    if (shape[1] % frames !== 0) {
      throw rangeError(
        `flat ${what} features have ${shape[1]} values per TR, not a multiple of the ${frames} frames per TR; pass the tr they were extracted with`,
      );
    }
    dims = [shape[0], shape[1] / frames, frames];
  } else {
    throw rangeError(`features must have shape (n_trs, rows, frames) or flat (n_trs, rows * frames), got (${shape.join(', ')})`);
  }
  if (features.length !== dims[0] * dims[1] * dims[2]) {
    throw rangeError(`features hold ${features.length} values but shape (${shape.join(', ')}) needs ${dims[0] * dims[1] * dims[2]}`);
  }
  if (dims[0] === 0) throw rangeError('features hold no TRs (the input was shorter than one TR); nothing to turn into audio');
  return dims;
}

/**
 * Audio from TR features (codes or mel; 3-D or flat), lasting exactly n_trs * tr seconds: frames go back to
 * their original positions and frames between windows repeat the frame before them (see the module notes).
 */
export async function featuresToAudio(input: FeatureInput, options: FeaturesToAudioOptions = {}): Promise<FeatureAudio> {
  if (typeof input !== 'object' || input === null || !ArrayBuffer.isView(input.features)) {
    throw typeError('features must be { features: Int16Array | Float32Array, shape } as returned by extractFeatures or readFeatures');
  }
  const tr = options.tr ?? input.tr ?? DEFAULT_TR;
  checkTr(tr);
  const integer = input.features instanceof Int16Array || input.features instanceof Int32Array;
  const kind = options.kind ?? input.kind ?? (integer ? 'codes' : undefined);
  if (kind === undefined) throw typeError("float features need kind 'mel' or 'embeddings'; pass { kind }");
  oneOf(kind, ['codes', 'embeddings', 'latents', 'mel'] as const, 'feature kind');
  if (kind === 'embeddings' || kind === 'latents') {
    throw rangeError(`${kind} cannot be turned back into audio (the model decodes codes); extract with output 'codes' to listen`);
  }
  if ((input.resample !== undefined && input.resample !== 'window') || input.delays !== undefined) {
    throw rangeError('resampled or delayed features hold no frames to turn back into audio; extract with resample window and no delays to listen');
  }
  if (kind === 'codes') {
    if (!integer) throw typeError(`codes must be integers (Int16Array or Int32Array), got ${input.features.constructor.name}`);
    if ((input.model !== undefined && findFamily(input.model) !== DEFAULT_FAMILY) || (input.frameRate !== undefined && input.frameRate !== FRAME_RATE)) {
      throw rangeError(
        `these codes were extracted with ${input.model ?? `a ${input.frameRate} frames/s model`}, whose TR features cannot be turned back into ` +
          'audio: its decoder needs each 1 s segment whole with its scale, and TR features keep neither the scales nor the segment ' +
          'frames the 150 frames/s grid leaves out (docs/models-48khz.md); to listen, encode and decode the file with that model (`encode` / `decode`)',
      );
    }
    const dims = featureDims(input, framesPerTr(tr), 'codes');
    const nQ = dims[1];
    if (nQ < 1 || nQ > MAX_CODEBOOKS) throw rangeError(`codes have ${nQ} codebooks; expected 1..${MAX_CODEBOOKS} (2, 4, 8, 16 or 32)`);
    checkCodeRange(input.features, 'codes');
    const length = samplesForTrs(dims[0], tr, SAMPLE_RATE);
    const total = Math.ceil(length / HOP_LENGTH);
    const data = placeWindows(input.features, dims, total, (k) => trStartFrame(k, tr), new Int16Array(nQ * total), true);
    const samples = await withCodec(options.model, options, (codec) => {
      requireWholeFileModel(codec.info, 'turning TR features back into audio');
      return codec.decode({ data, nQ, nFrames: total });
    });
    return { samples: samples.subarray(0, length), sampleRate: SAMPLE_RATE };
  }
  if (!(input.features instanceof Float32Array)) throw typeError(`mel features must be a Float32Array, got ${input.features.constructor.name}`);
  const m = melSettings({ ...input.mel, ...options.mel });
  const frames = ceilTrTimesRate(tr, m.sampleRate, m.hopLength);
  const dims = featureDims(input, frames, 'mel');
  if (dims[1] !== m.nMels) throw rangeError(`mel features have ${dims[1]} bands but the mel settings say ${m.nMels}; pass mel: { nMels: ${dims[1]} }`);
  const length = samplesForTrs(dims[0], tr, m.sampleRate);
  const total = 1 + Math.floor(length / m.hopLength);
  const spec = new Float32Array(m.nMels * total).fill(-m.topDb);
  placeWindows(input.features, dims, total, (k) => floorTrTimesRate(k, tr, m.sampleRate, m.hopLength), spec, true);
  const samples = await melToAudio({ data: spec, nMels: m.nMels, nFrames: total }, length, m);
  return { samples, sampleRate: m.sampleRate };
}
