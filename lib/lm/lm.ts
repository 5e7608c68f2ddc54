/**
 * Meta's entropy-coding language model (`encodec --lm`), run by the addon: it arithmetic-codes segments of codes
 * into bytes and back (native/lm_session.h; the coder is Meta's encodec/quantization/ac.py, ported bit for bit).
 * The `.ecdc` container around the payloads is lib/io/ecdc.ts.
 */
import { debug } from '../common/log';
import { LmInfo, parseLmInfo } from '../model/lm-file';
import { Codes, checkCodes } from '../codec/codes';
import { NativeLm, nativeBinding } from '../addon/native';
import { availableCores } from '../codec/threads';
import { codedError, rangeError, typeError } from '../common/errors';

/** Options of EncodecLm.load. */
export interface LmLoadOptions {
  /**
   * Intra-op threads of the LM's steps (default 1). The LM's probabilities, hence the coded bytes, depend on it
   * (torch's kernels split their work by thread count): a stream decodes only with the setting it was coded with.
   * Meta's `encodec` uses torch's default (all cores) unless run with OMP_NUM_THREADS=1; see docs/ecdc.md.
   */
  threads?: number;
  /**
   * Threads compressSegments codes on: up to `jobs` segments at once (an `encodec_48khz` file has one per second),
   * each on a thread of its own, and the threads no segment takes share the frames of a segment (a 24 kHz file is
   * one segment); default the cores. Each segment starts from a fresh LM state and every frame is computed the same
   * way on any thread, so the bytes do not depend on it. Used with 1 LM thread only (with more, segments are coded
   * one after another, frame by frame). Decoding is sequential whatever it is (where a segment begins is known
   * only once the one before it is decoded); with `jobs` >= 2 it shares each frame's work with one helper thread
   * (the same codes).
   */
  jobs?: number;
}

/** Segments decoded from one coded stream (see EncodecLm.decompressSegments). */
export interface LmDecodedSegments {
  /** Codes of each segment, [nQ, frames[i]]. */
  codes: Codes[];
  /** Byte offset (in the data) where each segment, its prefix included, begins. */
  offsets: number[];
  /** Byte offset where the last segment's stream ends. */
  end: number;
}

export class EncodecLm {
  /** The LM file's metadata (its codec, codebooks, source checkpoint ...). */
  readonly info: LmInfo;
  readonly lmPath: string;
  private lm: NativeLm | undefined;

  private constructor(lm: NativeLm, lmPath: string) {
    this.lm = lm;
    this.lmPath = lmPath;
    this.info = parseLmInfo(lm.metadata, lmPath);
  }

  /** Loads an LM file exported by `encodec-native model export` (from Meta's encodec_lm_*.th) or `model random --lm`. */
  static async load(lmPath: string, options: LmLoadOptions = {}): Promise<EncodecLm> {
    if (typeof lmPath !== 'string' || lmPath === '') throw typeError('lmPath must be the path of an LM file (.pt)');
    const threads = options.threads ?? 1;
    const jobs = options.jobs ?? Math.min(availableCores(), 1024);
    for (const [name, value] of [['threads', threads], ['jobs', jobs]] as const) {
      if (!Number.isInteger(value) || value < 1 || value > 1024) throw rangeError(`${name} must be an integer in [1, 1024], got ${String(value)}`);
    }
    const lm = await nativeBinding().loadLm(lmPath, { threads, jobs });
    debug('model', () => `loaded LM '${lmPath}', ${threads} threads, ${jobs} segments at once`);
    try {
      return new EncodecLm(lm, lmPath);
    } catch (err) {
      lm.dispose();
      throw err;
    }
  }

  /** The codec model this LM belongs to ('encodec_24khz' or 'encodec_48khz'). */
  get codec(): string {
    return this.info.codec;
  }

  /**
   * Arithmetic-codes each block of codes as one segment (Meta: fresh LM state and coder per segment, the LM's
   * input at frame t is 1 + the codes of frame t - 1), returning the coded bytes of each.
   */
  async compressSegments(segments: Codes[]): Promise<Uint8Array[]> {
    segments.forEach((codes, i) => checkCodes(codes, `segment ${i}`));
    const lm = this.live('compressSegments');
    for (const c of segments) {
      if (c.nQ > lm.nQ) throw rangeError(`the codes have ${c.nQ} codebooks; this LM codes at most ${lm.nQ}`);
    }
    return lm.compress(segments.map(({ data, nQ, nFrames }) => ({ data, nQ, nFrames })));
  }

  /**
   * Decodes consecutive coded segments from `data`: segment i is `prefixBytes` bytes the caller reads (Meta's
   * 48 kHz scale), then the coded stream of frames[i] frames of nQ codes. Rejects with an Error whose `code` is
   * 'ECDC_DESYNC' when the stream ends early or cannot have been written with this LM.
   */
  async decompressSegments(data: Uint8Array, nQ: number, frames: number[], prefixBytes = 0): Promise<LmDecodedSegments> {
    const decoded = await this.live('decompressSegments').decompress(data, nQ, frames, prefixBytes);
    return { codes: decoded.codes.map(({ data: d, nQ: q, nFrames }) => ({ data: d, nQ: q, nFrames })), offsets: decoded.offsets, end: decoded.end };
  }

  /**
   * Whether every segment coded or decoded so far ran the LM's C++ step (1 thread, where it reproduces the eager
   * model's bits on this machine) rather than the TorchScript module's; false before the first call.
   */
  get fastStep(): boolean {
    return this.live('fastStep').fastStep;
  }

  /**
   * Whether every segment compressSegments coded so far ran the LM on blocks of frames at once (its codes are
   * known beforehand; native/lm_block.h), rather than frame by frame; false before the first call.
   */
  get blockStep(): boolean {
    return this.live('blockStep').blockStep;
  }

  /**
   * Whether the C++ step computed the keys and values of past frames, in each variant the eager model's BLAS
   * products give them, with its own sums rather than with BLAS (native/lm_kv_plan.h: KvPlan); false before the
   * first call. Diagnostics, like fastStep.
   */
  get kvSums(): boolean {
    return this.live('kvSums').kvSums;
  }

  /**
   * Whether decompressSegments shared a decoded frame's work (its products, attention and output heads) with a
   * helper thread that ran part of it (native/lm_pair.h: with `jobs` >= 2, the C++ step); false before the first
   * call. Diagnostics, like fastStep: the codes are the same either way.
   */
  get pairedDecode(): boolean {
    return this.live('pairedDecode').pairedDecode;
  }

  /** Segments compressSegments codes at once (LmLoadOptions.jobs). */
  get jobs(): number {
    return this.live('jobs').jobs;
  }

  /** Frees the LM now (it is also freed when garbage-collected). */
  dispose(): void {
    this.lm?.dispose();
    this.lm = undefined;
  }

  private live(method: string): NativeLm {
    if (!this.lm) throw codedError('ENCODEC_DISPOSED', `cannot call ${method}(): the LM was disposed; load it again with EncodecLm.load()`);
    return this.lm;
  }
}
